"""YAML with line numbers: PyYAML's node graph read into values that
remember where they were written, so that every error can name the line.

`load(path)` returns a `Located` tree: mappings as dicts of key -> Located
(duplicate keys are an error, which PyYAML alone silently resolves to the
last), sequences as lists of Located, scalars as the Python values of
PyYAML's safe loader (str, int, float, bool, None).
"""

import dataclasses

import yaml


class ConfigError(Exception):
    """A user-facing error in a config file; the message names the file, line
    and key."""


@dataclasses.dataclass
class Located:
    value: object
    line: int       # 1-based
    key_lines: dict = dataclasses.field(default_factory=dict)  # mappings: key -> line


def _convert(loader, node, path):
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        # Merge keys (<<: *anchor) bring keys that the mapping's own override.
        own = {id(key_node) for key_node, _ in node.value
               if key_node.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)
        values, key_lines, merged = {}, {}, set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ConfigError(f"{path}:{key_line}: keys must be strings, "
                                  f"got {key!r}")
            if key in values and key not in merged:
                raise ConfigError(f"{path}:{key_line}: key '{key}' given twice "
                                  f"(first on line {key_lines[key]})")
            merged.discard(key)
            if id(key_node) not in own:
                merged.add(key)
            values[key] = _convert(loader, value_node, path)
            key_lines[key] = key_line
        return Located(values, line, key_lines)
    if isinstance(node, yaml.SequenceNode):
        return Located([_convert(loader, item, path) for item in node.value], line)
    return Located(loader.construct_object(node, deep=True), line)


def load(path):
    """The document of the YAML file `path` as a Located tree."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{path}: empty file")
        return _convert(loader, node, path)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ConfigError(f"{where}: invalid YAML: {error.problem or error.context}") \
            from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    finally:
        loader.dispose()
