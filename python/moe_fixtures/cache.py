"""The on-disk fixture cache, safe for parallel lit workers.

Layout: ``<root>/<key>/<name>/`` holds a finished fixture, where root is
``$MOE_FIXTURE_CACHE`` (else ``$XDG_CACHE_HOME/moe-fixtures``, else
``~/.cache/moe-fixtures``) and key hashes the sources that define fixture
contents (catalog, models, adapters, tokenizer) and the installed versions of
torch, transformers, peft, safetensors and tokenizers: editing a recipe or
upgrading a library starts a fresh key directory, and older ones are simply
no longer used (delete them at will).

A fixture is built under an exclusive ``fcntl`` lock
(``<root>/<key>/.<name>.lock``) into a temporary sibling directory that is
renamed into place when complete, so a fixture directory that exists is
always whole. Its files are made read-only because :func:`materialise`
hard-links them into test directories: tests must replace a materialised file
rather than write into it (or ask for a copy).
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

from .catalog import FIXTURES, AdapterSpec

CONTENT_MODULES = ("catalog.py", "models.py", "adapters.py", "tokenizer.py")
LIBRARIES = ("torch", "transformers", "peft", "safetensors", "tokenizers")


class FixtureError(Exception):
    """A user-facing error: bad arguments or an unusable destination."""


def root():
    """The cache root directory (not created)."""
    if os.environ.get("MOE_FIXTURE_CACHE"):
        return Path(os.environ["MOE_FIXTURE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "moe-fixtures"


def _library_versions():
    """Versions of LIBRARIES read from their .dist-info directory names.

    Cheaper than importlib.metadata, which alone takes ~50 ms to import.
    """
    versions = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name[:-len(".dist-info")].partition("-")
                if dist.lower() in LIBRARIES:
                    versions.setdefault(dist.lower(), version)
    return versions


def key():
    """The hash naming the cache generation of the current recipes."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for module in CONTENT_MODULES:
        digest.update((here / module).read_bytes())
    digest.update(repr(sorted(_library_versions().items())).encode())
    return digest.hexdigest()[:16]


def ensure(name):
    """Returns the cache directory of fixture ``name``, building it if needed
    (and, first, the fixtures it is derived from)."""
    return _ensure(name, root() / key())


def _ensure(name, generation):
    fixture = FIXTURES[name]
    final = generation / name
    if final.is_dir():
        return final
    inputs = {dep: _ensure(dep, generation) for dep in fixture.spec.requires}
    generation.mkdir(parents=True, exist_ok=True)
    with _locked(generation / f".{name}.lock"):
        if final.is_dir():
            return final
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=generation))
        try:
            _build(fixture.spec, scratch, inputs)
            _make_read_only(scratch)
            os.rename(scratch, final)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return final


@contextlib.contextmanager
def _locked(path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(spec, dest, inputs):
    """Runs the recipe with torch, transformers and peft imported only now."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        if isinstance(spec, AdapterSpec):
            from . import adapters as recipe
        else:
            from . import models as recipe
        recipe.build(spec, dest, inputs)


def _make_read_only(directory):
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def prepare_destination(dest):
    """Creates dest (and its parents); an existing dest must be an empty
    directory."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FixtureError(f"destination {dest} exists and is not an empty "
                           "directory")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def materialise(source, dest, copy=False):
    """Recreates the directory tree ``source`` at the new directory ``dest``,
    hard-linking its files (copying them where linking fails, or always when
    ``copy``; copies are writable)."""
    dest = prepare_destination(dest)
    for path in sorted(source.rglob("*")):
        target = dest / path.relative_to(source)
        if path.is_dir():
            target.mkdir()
            continue
        if not copy:
            try:
                os.link(path, target)
                continue
            except OSError:
                pass
        shutil.copyfile(path, target)
