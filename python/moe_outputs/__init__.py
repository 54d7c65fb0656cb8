"""Outputs of the Python tools that appear whole or not at all.

Each output is written under a temporary name beside its target (the same
file system, so that publishing is a rename) and every output of a run is
renamed onto its target together once all are complete; a run that fails
leaves none of them and no temporary behind. Published outputs get the
usual mode (0666 or 0777 less the umask), not the private one of the
temporary. The C++ tools follow the same rules (lib/Support/StagedOutput).

    with StagedOutputs("moe-eval") as outputs:
        write_json(outputs.path("results.json"))
        outputs.publish()
"""

import os
import shutil
import tempfile


class StagedOutputs:
    def __init__(self, tool, replace_directories=False):
        """`tool` names the temporaries (`.<tool>-...`); an existing
        directory at a target is replaced only with `replace_directories`
        (a file is always replaced)."""
        self.prefix = f".{tool}-"
        self.replace_directories = replace_directories
        self.pairs = []

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.discard()
        return False

    def path(self, target, directory=False):
        """The temporary to write `target`'s content to: an empty file with
        target's extension, or with `directory` an empty directory."""
        parent = os.path.dirname(os.path.abspath(target))
        if directory:
            staged = tempfile.mkdtemp(dir=parent, prefix=self.prefix)
        else:
            handle, staged = tempfile.mkstemp(dir=parent, prefix=self.prefix,
                                              suffix=os.path.splitext(target)[1])
            os.close(handle)
        self.pairs.append((staged, target))
        return staged

    def publish(self):
        """Renames every output onto its target. A directory being replaced
        is moved aside first and removed after, so the target is always the
        old or the new content."""
        umask = os.umask(0)
        os.umask(umask)
        for staged, target in self.pairs:
            is_directory = os.path.isdir(staged)
            os.chmod(staged, (0o777 if is_directory else 0o666) & ~umask)
            aside = None
            if os.path.isdir(target) and not os.path.islink(target):
                if not self.replace_directories:
                    raise FileExistsError(f"{target}: exists")
                aside = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(target)),
                                         prefix=self.prefix)
                os.replace(target, os.path.join(aside, "replaced"))
            os.replace(staged, target)
            if aside:
                shutil.rmtree(aside, ignore_errors=True)
        self.pairs = []

    def discard(self):
        """Removes the temporaries of outputs not published."""
        for staged, _ in self.pairs:
            if os.path.isdir(staged) and not os.path.islink(staged):
                shutil.rmtree(staged, ignore_errors=True)
            elif os.path.lexists(staged):
                os.unlink(staged)
        self.pairs = []
