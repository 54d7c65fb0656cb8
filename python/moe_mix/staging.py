"""The output of a run appears complete or not at all.

Everything is written into a staging directory beside OUT (same file
system), renamed to OUT once every step has succeeded. Intermediate files
(imported and mixed modules, prompt files) live in a work directory beside
it, removed in every case. An existing OUT is replaced only with --force
(an empty directory counts as absent, as for moe-translate --export-hf),
and the old one is removed only once the new one is in place; a failed or
interrupted run removes what it made, parent directories included.
"""

import os
import shutil
import tempfile

from .yaml_source import ConfigError


def _occupied(path):
    """Whether `path` holds something that --force would have to replace."""
    if os.path.isdir(path) and not os.path.islink(path):
        return bool(os.listdir(path))
    return os.path.lexists(path)


class StagedOutput:
    def __init__(self, out, force):
        self.out = os.path.abspath(out)
        self.force = force
        self.stage = self.work = None
        self._created_parents = []
        if _occupied(self.out) and not force:
            raise ConfigError(f"{out}: already exists (use --force to replace it)")

    def __enter__(self):
        parent = os.path.dirname(self.out)
        missing = []
        while not os.path.isdir(parent):
            if os.path.lexists(parent):
                raise ConfigError(f"{self.out}: {parent} is not a directory")
            missing.append(parent)
            parent = os.path.dirname(parent)
        try:
            for directory in reversed(missing):
                os.mkdir(directory)
                self._created_parents.append(directory)
            name = os.path.basename(self.out)
            self.stage = tempfile.mkdtemp(dir=os.path.dirname(self.out),
                                          prefix=f".{name}.moe-mix-")
            self.work = tempfile.mkdtemp(dir=os.path.dirname(self.out),
                                         prefix=f".{name}.moe-mix-work-")
        except OSError as error:
            self._remove()
            raise ConfigError(f"{self.out}: cannot create the output's directory "
                              f"({error.strerror}: {error.filename})") from None
        return self

    def publish(self):
        """Renames the staging directory to OUT (after moving away any old
        OUT, which is removed once the new one is in place)."""
        old = None
        if os.path.lexists(self.out):
            if _occupied(self.out) and not self.force:
                raise ConfigError(f"{self.out}: appeared while moe-mix ran (use "
                                  "--force to replace it)")
            old = tempfile.mkdtemp(dir=os.path.dirname(self.out),
                                   prefix=f".{os.path.basename(self.out)}.moe-mix-old-")
            os.rename(self.out, os.path.join(old, "previous"))
        os.chmod(self.stage, 0o777 & ~_umask())
        os.rename(self.stage, self.out)
        self.stage = None
        self._created_parents = []
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _remove(self):
        for directory in (self.stage, self.work):
            if directory and os.path.lexists(directory):
                shutil.rmtree(directory, ignore_errors=True)
        for directory in reversed(self._created_parents):
            try:
                os.rmdir(directory)
            except OSError:
                pass
        self.stage = self.work = None
        self._created_parents = []

    def __exit__(self, kind, value, traceback):
        if self.work and os.path.lexists(self.work):
            shutil.rmtree(self.work, ignore_errors=True)
        self.work = None
        self._remove()
        return False


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
