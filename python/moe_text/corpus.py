"""Text files named by domain, checked and tokenised.

A domain is given on the command line as `NAME=FILE[,FILE...]` (the same
name again adds files). Every file must be a non-empty UTF-8 text file
without NUL bytes; anything else is a `TextError` naming the file and,
for bad bytes, the line, column and byte offset.
"""

import dataclasses
import os
import re

import numpy as np

_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


class TextError(Exception):
    """A bad text file or domain specification (the message names it)."""


@dataclasses.dataclass
class Domain:
    name: str
    files: list
    texts: list = dataclasses.field(default_factory=list)


def read_text(path):
    """The content of a UTF-8 text file, or TextError saying what is wrong."""
    if not os.path.exists(path):
        raise TextError(f"{path}: no such file")
    if os.path.isdir(path):
        raise TextError(f"{path}: is a directory, not a text file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise TextError(f"{path}: cannot be read: {error.strerror}") from None
    if not data:
        raise TextError(f"{path}: empty file")
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _position(data, nul)
        raise TextError(f"{path}: binary data, not text (NUL byte at line "
                        f"{line}, column {column}, byte offset {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        raise TextError(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} "
                        f"at line {line}, column {column}, byte offset "
                        f"{error.start})") from None
    if not text.strip():
        raise TextError(f"{path}: holds only whitespace")
    return text


def _position(data, offset):
    """1-based line and column (in bytes) of a byte offset."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def parse_domain_specs(specs, option="--data"):
    """Domains of `NAME=FILE[,FILE...]` specifications, in order of first
    appearance; a name given again gets more files."""
    domains = {}
    for spec in specs:
        name, sep, files = spec.partition("=")
        paths = [path for path in files.split(",") if path]
        if not sep or not paths:
            raise TextError(f"{option} {spec!r}: expected NAME=FILE[,FILE...]")
        if not _NAME.fullmatch(name):
            raise TextError(f"{option} {spec!r}: a domain name is made of "
                            "letters, digits and _.+-")
        domains.setdefault(name, Domain(name, [])).files.extend(paths)
    if not domains:
        raise TextError(f"no text given: use {option} NAME=FILE[,FILE...]")
    return list(domains.values())


def load_domains(specs, option="--data"):
    """Parses the specifications and reads (checks) every file."""
    domains = parse_domain_specs(specs, option)
    for domain in domains:
        domain.texts = [read_text(path) for path in domain.files]
    return domains


def parse_proportions(text, domains):
    """`NAME=WEIGHT,...` as probabilities over the domains (in their order);
    None gives every domain the same weight."""
    names = [domain.name for domain in domains]
    if text is None:
        return np.full(len(names), 1.0 / len(names))
    weights = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise TextError(f"--proportions {text!r}: expected NAME=WEIGHT,...")
        if name not in names:
            raise TextError(f"--proportions: no domain {name!r} (domains: "
                            f"{', '.join(names)})")
        try:
            weight = float(value)
        except ValueError:
            raise TextError(f"--proportions: weight {value!r} of {name} is "
                            "not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise TextError(f"--proportions: weight {value} of {name} must be "
                            "finite and >= 0")
        weights[name] = weight
    missing = [name for name in names if name not in weights]
    if missing:
        raise TextError(f"--proportions: no weight for {', '.join(missing)}")
    total = sum(weights.values())
    if total <= 0:
        raise TextError("--proportions: the weights sum to 0")
    return np.array([weights[name] / total for name in names])


def tokenize_text(tokenizer, text):
    """Token ids of a text, without special tokens (no BOS/EOS added)."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return np.asarray(ids, dtype=np.int64)


def tokenize_domains(tokenizer, domains, min_tokens=2):
    """{domain name: [token ids of each file]}; a file with fewer than
    min_tokens tokens is an error."""
    tokens = {}
    for domain in domains:
        per_file = []
        for path, text in zip(domain.files, domain.texts):
            ids = tokenize_text(tokenizer, text)
            if len(ids) < min_tokens:
                raise TextError(f"{path}: {len(ids)} token(s) after "
                                f"tokenization; at least {min_tokens} needed")
            per_file.append(ids)
        tokens[domain.name] = per_file
    return tokens
