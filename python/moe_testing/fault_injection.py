"""Fault injection for the staged outputs of the exports.

    python -m moe_testing.fault_injection --work DIR [--seed 13] [--points 5] \\
        --hf NEW.mlir OLD.mlir --onnx NEW.mlir OLD.mlir \\
        --gguf NEW.mlir OLD.mlir --decompose MODULE.mlir a,b

For each export (`moe-translate --export-hf`, `--export-onnx`,
`--export-gguf`, the factor files of `moe-opt --moe-decompose-experts`),
NEW.mlir is exported over the export of OLD.mlir (or over nothing), and
every run is compared, file list and SHA-256 of every file, with
uninterrupted reference runs:

- kill: SIGKILL, SIGTERM and SIGINT at seeded random points spread over the
  measured duration of the export (one very early, one near the end, one as
  soon as the staging directory appears): the destination is the old or the
  complete new content, nothing else changes, the process dies of the
  signal sent (or finished first); after SIGTERM and SIGINT nothing is
  staged any more, after SIGKILL the next run of the same destination
  publishes the new content and leaves no staging;
- full file system (a tmpfs with no room, or room for half the output) and
  read-only file system (a tmpfs remounted ro): a non-zero exit with a
  message that names the destination, the old content kept, nothing staged;
- symbolic links at the destination (refused, or with --force the link
  itself replaced and its target kept) and at its parent directory;
- a destination created while the export runs (the export is stopped with
  SIGSTOP once its staging directory exists).

The mounts are made in a mount namespace of their own (`unshare -m`, or
`unshare -rm` when not root), so they vanish with it; when none can be made
the run fails and says why. Binaries come from $MOE_BIN (else PATH).

Prints one line per scenario, `<export> <scenario>: ok (...)` or
`<export> <scenario>: FAILED: ...`, then `<n> scenarios, <m> failed`, and
exits 1 when any failed.
"""

import argparse
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time

NAMESPACE_ENV = "MOE_FAULT_INJECTION_NAMESPACE"
LEFTOVER_MARKS = (".moe-staging-", ".moe-replaced-")
CRASH_MARKS = ("Stack dump", "PLEASE submit a bug report", "Segmentation fault")


def _tool(name):
    directory = os.environ.get("MOE_BIN")
    return os.path.join(directory, name) if directory else shutil.which(name) or name


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------
# The exports: where each writes and how it is run.

class Export:
    """`dest(root)` is the path given to the tool; `command(root, variant,
    force)` runs it, variant "new" or "old"."""

    def __init__(self, name, dest_name, command, extra=()):
        self.name = name
        self.dest_name = dest_name
        # What the export writes: the destination and files beside it.
        self.entries = (dest_name,) + tuple(extra)
        self._command = command

    def dest(self, root):
        return os.path.join(root, self.dest_name)

    def command(self, root, variant, force):
        return self._command(self.dest(root), variant, force)


def _hf(new, old):
    def command(dest, variant, force):
        args = [_tool("moe-translate"), "--export-hf", new if variant == "new" else old,
                "-o", dest]
        if variant == "old":
            args.append("--shard-size=20MB")  # another file list than new's
        return args + (["--force"] if force else [])
    return Export("hf", "out", command)


def _onnx(new, old):
    def command(dest, variant, force):
        args = [_tool("moe-translate"), "--export-onnx", new if variant == "new" else old,
                "-o", dest]
        if variant == "old":
            args.append("--onnx-moe=fused")  # another model file than new's
        return args + (["--force"] if force else [])
    return Export("onnx", "model.onnx", command, extra=("model.onnx.data",))


def _gguf(new, old):
    def command(dest, variant, force):
        args = [_tool("moe-translate"), "--export-gguf", new if variant == "new" else old,
                "-o", dest]
        if variant == "old":
            args.append("--gguf-type=f16")  # another size than new's
        return args + (["--force"] if force else [])
    return Export("gguf", "model.gguf", command)


def _decompose(module, experts):
    def command(dest, variant, force):
        # The factor files are always replaced: there is no --force.
        rank = 4 if variant == "new" else 2
        return [_tool("moe-opt"), module,
                f"--moe-decompose-experts=experts={experts} rank={rank} output-dir={dest}",
                "-o", os.devnull]
    return Export("decompose", "factors", command)


# ---------------------------------------------------------------------------
# States of a directory tree: relative path -> kind and content hash.

def _digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _digest_or_none(path):
    try:
        return _digest(path)
    except OSError:
        return None


def snapshot(root):
    state = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, root)
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                state[rel] = "link " + os.readlink(full)
            elif stat.S_ISDIR(mode):
                state[rel] = "dir"
            elif stat.S_ISREG(mode):
                state[rel] = "file " + _digest(full)
            else:
                state[rel] = "special"
    return state


def split_leftovers(state):
    """(state without staging/replaced entries, the leftover entries)."""
    clean, leftovers = {}, []
    for rel, value in state.items():
        if any(mark in part for part in rel.split(os.sep) for mark in LEFTOVER_MARKS):
            if not any(mark in part for part in os.path.dirname(rel).split(os.sep)
                       for mark in LEFTOVER_MARKS):
                leftovers.append(rel)
        else:
            clean[rel] = value
    return clean, sorted(leftovers)


def describe_difference(actual, expected):
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    parts = []
    for label, names in (("missing", missing), ("unexpected", extra), ("changed", changed)):
        if names:
            parts.append(f"{label} {', '.join(names[:4])}" + (" ..." if len(names) > 4 else ""))
    return "; ".join(parts) or "equal"


def under(rel, entries):
    return any(rel == entry or rel.startswith(entry + os.sep) for entry in entries)


def with_dest(state, entries, content):
    """`state` with everything at or under `entries` replaced by the entries
    of `content` there."""
    result = {k: v for k, v in state.items() if not under(k, entries)}
    result.update({k: v for k, v in content.items() if under(k, entries)})
    return result


def write_sentinels(root):
    """Files beside the destination that no run may touch."""
    os.makedirs(os.path.join(root, "sibling"), exist_ok=True)
    with open(os.path.join(root, "keep.txt"), "w") as f:
        f.write("not an output\n")
    with open(os.path.join(root, "sibling", "data.bin"), "wb") as f:
        f.write(random.Random(5).randbytes(65536))


def copy_tree(source, target):
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)


# ---------------------------------------------------------------------------
# Running the tools.

def _default_sigint():
    # A background job of a non-interactive shell starts with SIGINT ignored;
    # the interrupt of a terminal is what is simulated here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Run:
    def __init__(self, args, log):
        self.log = log
        self.out = open(log, "w+b")
        self.start = time.monotonic()
        self.process = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT,
                                        preexec_fn=_default_sigint)

    def wait(self):
        self.returncode = self.process.wait()
        self.elapsed = time.monotonic() - self.start
        self.out.seek(0)
        self.output = self.out.read().decode(errors="replace")
        self.out.close()
        return self.returncode


def run(args, log):
    r = Run(args, log)
    r.wait()
    return r


def staging_exists(root, dest):
    """Whether a staging directory is in `root` or in `dest` (the factors of
    moe-decompose-experts are staged inside their output directory)."""
    for directory in (root, dest):
        try:
            if any(mark in name for name in os.listdir(directory)
                   for mark in LEFTOVER_MARKS):
                return True
        except OSError:
            pass
    return False


def wait_until(r, ready, timeout=30.0):
    """Polls `ready()` until it holds or the process ended; true when it held
    while the process ran."""
    deadline = time.monotonic() + timeout
    while r.process.poll() is None and time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(0.0001)  # leaves the tool a core of the two
    return False


def check_no_crash(r, what):
    for mark in CRASH_MARKS:
        if mark in r.output:
            raise Failure(f"{what}: crash output ({mark!r}):\n{r.output[-2000:]}")


def check_clear_failure(r, what, names, reasons):
    """A non-zero exit (not a signal) with a message naming one of `names`
    and one of `reasons`, and never the staging directory."""
    if r.returncode <= 0:
        raise Failure(f"{what}: exit status {r.returncode}, expected a failure "
                      f"(output: {r.output.strip()[-500:]!r})")
    check_no_crash(r, what)
    if not any(name in r.output for name in names):
        raise Failure(f"{what}: the message does not name {names[0]}: {r.output.strip()!r}")
    if not any(reason in r.output for reason in reasons):
        raise Failure(f"{what}: the message does not say {reasons[0]!r}: {r.output.strip()!r}")
    if any(mark in r.output for mark in LEFTOVER_MARKS):
        raise Failure(f"{what}: the message names a staging path: {r.output.strip()!r}")


def expect_state(root, expected, what, allow_leftovers=False):
    clean, leftovers = split_leftovers(snapshot(root))
    if leftovers and not allow_leftovers:
        raise Failure(f"{what}: left behind {', '.join(leftovers)}")
    for label, state in expected.items():
        if clean == state:
            return label, leftovers
    raise Failure(f"{what}: the tree is none of {', '.join(expected)}: " + "; ".join(
        f"vs {label}: {describe_difference(clean, state)}" for label, state in expected.items()))


# ---------------------------------------------------------------------------
# The scenarios of one export.

class Harness:
    def __init__(self, export, work, rng, points):
        self.export = export
        self.work = os.path.join(work, export.name)
        self.rng = rng
        self.points = points
        self.counter = 0
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)

    def fresh(self, template=None, parent=None):
        self.counter += 1
        root = os.path.join(parent or self.work, f"run{self.counter}")
        os.makedirs(root, exist_ok=True)
        if template:
            copy_tree(self.templates[template], root)
        return root

    def log(self, root):
        return root + ".log"

    def prepare(self):
        """Templates (sentinels only; sentinels and the old export) and the
        states an uninterrupted run makes of them."""
        self.templates = {}
        for template in ("empty", "old"):
            root = os.path.join(self.work, "template-" + template)
            os.makedirs(root)
            write_sentinels(root)
            if template == "old":
                r = run(self.export.command(root, "old", False), self.log(root))
                if r.returncode != 0:
                    raise Failure(f"the old export failed:\n{r.output}")
                if self.export.name == "decompose":
                    # An unrelated file in the output directory is kept.
                    with open(os.path.join(self.export.dest(root), "notes.txt"), "w") as f:
                        f.write("mine\n")
            self.templates[template] = root
        self.before = {t: snapshot(r) for t, r in self.templates.items()}
        self.after = {}
        durations, staged_at = [], []
        for template, repeats in (("empty", 1), ("old", 3)):
            for _ in range(repeats):
                root = self.fresh(template)
                r = Run(self.export.command(root, "new", True), self.log(root))
                wait_until(r, lambda: staging_exists(root, self.export.dest(root)))
                staged_at.append(time.monotonic() - r.start)
                r.wait()
                if r.returncode != 0:
                    raise Failure(f"the reference export failed:\n{r.output}")
                state, leftovers = split_leftovers(snapshot(root))
                if leftovers:
                    raise Failure(f"the reference export left {leftovers}")
                if template in self.after and self.after[template] != state:
                    raise Failure("two reference exports differ: "
                                  + describe_difference(state, self.after[template]))
                self.after[template] = state
                durations.append(r.elapsed)
        entries = self.export.entries
        if with_dest(self.before["old"], entries, self.after["old"]) != self.after["old"]:
            raise Failure("the reference export changed files beside its destination")
        new_files = {k: v for k, v in self.after["empty"].items() if under(k, entries)}
        old_files = {k: v for k, v in self.before["old"].items() if under(k, entries)}
        if new_files == old_files:
            raise Failure("the old and the new export are the same: the test could not "
                          "tell them apart")
        self.duration = sorted(durations)[len(durations) // 2]
        self.staged_at = min(staged_at)
        self.new_bytes = sum(os.path.getsize(os.path.join(root, k))
                             for k, v in self.after["empty"].items() if v.startswith("file")
                             and under(k, entries))
        return (f"{len(new_files)} new entries, {self.new_bytes} bytes, "
                f"{self.duration * 1000:.0f} ms, staging after "
                f"{min(staged_at) * 1000:.0f} ms")

    def alternatives(self, template):
        """What an interrupted run may leave: the old or the new content, and
        for moe-decompose-experts, whose destinations are its factor files,
        any of them old or new (and its output directory made or not)."""
        before, after = self.before[template], self.after[template]
        if self.export.name != "decompose":
            return {"old": before, "new": after}
        dest = self.export.dest_name
        units = sorted(k for k, v in after.items() if k.startswith(dest + os.sep)
                       and v.startswith("file") and before.get(k) != v)
        result = {"old": before}
        for mask in range(1 << len(units)):
            state = dict(before)
            state.setdefault(dest, "dir")
            for i, unit in enumerate(units):
                if mask >> i & 1:
                    state[unit] = after[unit]
            fresh = [u for i, u in enumerate(units) if mask >> i & 1]
            label = ("new" if len(fresh) == len(units) else
                     "+".join(os.path.basename(u) for u in fresh) + " new" if fresh
                     else "old, directory made")
            result.setdefault(label, state)
        return result

    # -- signals --------------------------------------------------------------

    def kill_points(self):
        """(phase, seconds): the reading phase counts from the start, the
        writing phase from the moment the staging directory appears (the
        moment varies more from run to run than writing takes). One point
        very early, one while reading, the others while writing, the last
        near its end; and ("stop", 0): stopped with SIGSTOP as soon as the
        staging directory is there, so that the signal lands while staging."""
        staged, write = self.staged_at, max(self.duration - self.staged_at, 0.001)
        return ([("start", self.rng.uniform(0.0, 0.05 * staged)),
                 ("start", self.rng.uniform(0.05 * staged, staged))]
                + [("staging", self.rng.uniform(0.0, 0.85 * write))
                   for _ in range(self.points - 4)]
                + [("staging", self.rng.uniform(0.85 * write, write)), ("stop", 0.0)])

    def kills(self, sig):
        outcomes = {}
        leftovers_after = 0
        points = self.kill_points()
        for index, point in enumerate(points):
            template = ("old", "empty")[index % 2]
            root = self.fresh(template)
            phase, seconds = point
            what = f"{sig.name} {seconds * 1000:.1f} ms after {phase} over {template}"
            dest = self.export.dest(root)
            if phase == "stop":
                r, staged = self._stopped_while_staging(root, template, what)
            else:
                r = Run(self.export.command(root, "new", True), self.log(root))
                begin = r.start
                if phase == "staging" and wait_until(r, lambda: staging_exists(root, dest)):
                    begin = time.monotonic()
                time.sleep(max(0.0, begin + seconds - time.monotonic()))
                staged = staging_exists(root, dest)
            try:
                r.process.send_signal(sig)
                if phase == "stop":
                    r.process.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            r.wait()
            check_no_crash(r, what)
            if r.returncode not in (0, -sig):
                raise Failure(f"{what}: exit status {r.returncode}, expected {-sig} "
                              f"(or 0 when it finished first):\n{r.output[-1500:]}")
            expected = (self.alternatives(template) if r.returncode != 0
                        else {"new": self.after[template]})
            label, leftovers = expect_state(root, expected, what,
                                            allow_leftovers=sig == signal.SIGKILL)
            key = ("finished" if r.returncode == 0 else
                   ("killed while staging" if staged is True else
                    "killed while between files" if staged else "killed")
                   + f", {label} kept")
            outcomes[key] = outcomes.get(key, 0) + 1
            if sig == signal.SIGKILL:
                leftovers_after += bool(leftovers)
                rerun = run(self.export.command(root, "new", True), self.log(root) + ".rerun")
                if rerun.returncode != 0:
                    raise Failure(f"{what}: the next run failed:\n{rerun.output}")
                expect_state(root, {"new": self.after[template]}, what + ", then the next run")
        if not any(key.startswith("killed while") for key in outcomes):
            raise Failure(f"{sig.name}: no kill landed while the export was staging")
        detail = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        if sig == signal.SIGKILL:
            detail += f"; {leftovers_after} left staging, removed by the next run"
        return len(points), detail

    def _stopped_while_staging(self, root, template, what):
        """Starts the new export and stops it (SIGSTOP) while its staging
        directory is there, so that the next signal lands while it stages
        (the factor files of moe-decompose-experts are staged for a moment
        only): (the run, True), or fails after 5 tries."""
        dest = self.export.dest(root)
        for attempt in range(5):
            if attempt:
                shutil.rmtree(root)
                os.makedirs(root)
                copy_tree(self.templates[template], root)
            r = Run(self.export.command(root, "new", True), self.log(root))
            if wait_until(r, lambda: staging_exists(root, dest)):
                r.process.send_signal(signal.SIGSTOP)
                if staging_exists(root, dest):
                    return r, True
                r.process.send_signal(signal.SIGCONT)
            r.wait()
        if self.export.name == "decompose":
            # Its factor files are staged for well under a millisecond each:
            # stopped once the first is published, the next still to come.
            first = sorted(k for k, v in self.after[template].items()
                           if v.startswith("file") and under(k, self.export.entries)
                           and self.before[template].get(k) != v)[0]
            for attempt in range(5):
                shutil.rmtree(root)
                os.makedirs(root)
                copy_tree(self.templates[template], root)
                r = Run(self.export.command(root, "new", True), self.log(root))
                if wait_until(r, lambda: _digest_or_none(os.path.join(root, first))
                              == self.after[template][first][len("file "):]):
                    r.process.send_signal(signal.SIGSTOP)
                    return r, "between files"
                r.wait()
        raise Failure(f"{what}: could not stop the export while it staged in 5 tries")

    # -- file systems ---------------------------------------------------------

    def _mount(self, root, size):
        os.makedirs(root, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                                 "tmpfs", root], capture_output=True, text=True)
        if result.returncode != 0:
            raise Failure(f"cannot mount a tmpfs at {root}: {result.stderr.strip()}")

    def _remount(self, root, options):
        result = subprocess.run(["mount", "-o", "remount," + options, root],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise Failure(f"cannot remount {root} {options}: {result.stderr.strip()}")

    def _umount(self, root):
        subprocess.run(["umount", root], capture_output=True)

    def _used(self, root):
        s = os.statvfs(root)
        return (s.f_blocks - s.f_bfree) * s.f_frsize

    def _fs_run(self, template, what, room, readonly=False):
        root = os.path.join(self.work, f"mnt{self.counter}")
        self.counter += 1
        self._mount(root, 4 * self.new_bytes + (64 << 20))
        try:
            copy_tree(self.templates[template], root)
            if readonly:
                self._remount(root, "ro")
            else:
                self._remount(root, f"size={self._used(root) + room}")
            r = run(self.export.command(root, "new", True), root + ".log")
            reason = "Read-only file system" if readonly else "No space left on device"
            dest = self.export.dest(root)
            check_clear_failure(r, what, [dest, root + ":"], [reason])
            expect_state(root, {k: v for k, v in self.alternatives(template).items()
                                if k != "new"}, what)
        finally:
            self._umount(root)

    def full_fs(self):
        self._fs_run("old", "full (no room) over old", room=0)
        self._fs_run("old", "full (half the output) over old", room=self.new_bytes // 2)
        self._fs_run("empty", "full (half the output) over nothing", room=self.new_bytes // 2)
        return 3, "the old content kept, nothing staged"

    def read_only_fs(self):
        self._fs_run("old", "read-only over old", room=0, readonly=True)
        self._fs_run("empty", "read-only over nothing", room=0, readonly=True)
        return 2, "the old content kept, nothing staged"

    # -- symbolic links -------------------------------------------------------

    def symlinks(self):
        n = 0
        if self.export.name == "decompose":
            # A factor file that is a link: the link is replaced, its target kept.
            root = self.fresh("old")
            link = os.path.join(self.export.dest(root), "a.safetensors")
            os.rename(link, os.path.join(root, "real-a.safetensors"))
            os.symlink(os.path.join("..", "real-a.safetensors"), link)
            before = snapshot(root)
            r = run(self.export.command(root, "new", True), self.log(root))
            if r.returncode != 0:
                raise Failure(f"factor file a link: the export failed:\n{r.output}")
            expected = with_dest(before, self.export.entries, self.after["old"])
            expect_state(root, {"the link replaced": expected}, "factor file a link")
            n += 1
        elif self.export.name in ("hf", "gguf"):
            for force in (False, True):
                root = self.fresh("old")
                real = "real-" + self.export.dest_name
                os.rename(self.export.dest(root), os.path.join(root, real))
                os.symlink(real, self.export.dest(root))
                before = snapshot(root)
                what = "destination a link" + (" with --force" if force else "")
                r = run(self.export.command(root, "new", force), self.log(root))
                if force:
                    if r.returncode != 0:
                        raise Failure(f"{what}: the export failed:\n{r.output}")
                    expected = with_dest(before, self.export.entries, self.after["old"])
                    expect_state(root, {"the link replaced": expected}, what)
                else:
                    check_clear_failure(r, what, [self.export.dest(root)],
                                        ["--force replaces it"])
                    expect_state(root, {"unchanged": before}, what)
                n += 1
            if self.export.name == "gguf":
                # A link to a directory is a link too: replaced, the
                # directory and what is in it kept.
                root = self.fresh("empty")
                os.makedirs(os.path.join(root, "real-dir"))
                _write(os.path.join(root, "real-dir", "model.gguf"))
                os.symlink("real-dir", self.export.dest(root))
                before = snapshot(root)
                what = "destination a link to a directory with --force"
                r = run(self.export.command(root, "new", True), self.log(root))
                if r.returncode != 0:
                    raise Failure(f"{what}: the export failed:\n{r.output}")
                expected = with_dest(before, self.export.entries, self.after["empty"])
                expect_state(root, {"the link replaced": expected}, what)
                n += 1
        else:
            for linked in ("model.onnx", "model.onnx.data"):
                root = self.fresh("old")
                path = os.path.join(root, linked)
                os.rename(path, os.path.join(root, "real-" + linked))
                os.symlink("real-" + linked, path)
                before = snapshot(root)
                what = f"{linked} a link"
                r = run(self.export.command(root, "new", True), self.log(root))
                check_clear_failure(r, what, [path], ["symbolic link"])
                expect_state(root, {"unchanged": before}, what)
                n += 1
        # A parent directory that is a link: the output lands in its target.
        top = self.fresh()
        os.makedirs(os.path.join(top, "real"))
        write_sentinels(os.path.join(top, "real"))
        os.symlink("real", os.path.join(top, "link"))
        r = run(self.export.command(os.path.join(top, "link"), "new", False), self.log(top))
        if r.returncode != 0:
            raise Failure(f"parent directory a link: the export failed:\n{r.output}")
        expect_state(os.path.join(top, "real"), {"new": self.after["empty"]},
                     "parent directory a link")
        return n + 1, "links replaced or refused, never followed into"

    # -- a destination that appears while the export runs --------------------

    def _racing(self, what, intrude, ready=None):
        """Runs the new export without --force over nothing, stops it once
        `ready(root)` (by default: once it stages), lets `intrude(root)`
        create things, resumes it."""
        ready = ready or (lambda root: staging_exists(root, self.export.dest(root)))
        for attempt in range(5):
            root = self.fresh("empty")
            r = Run(self.export.command(root, "new", False), self.log(root))
            if not wait_until(r, lambda: ready(root)):
                r.wait()
                continue
            r.process.send_signal(signal.SIGSTOP)
            if ready(root) and r.process.poll() is None:
                intrude(root)
                before, _ = split_leftovers(snapshot(root))
                r.process.send_signal(signal.SIGCONT)
                r.wait()
                return root, r, before
            r.process.send_signal(signal.SIGCONT)
            r.wait()
        raise Failure(f"{what}: could not stop the export while it staged in 5 tries")

    def concurrent(self):
        n = 0
        dest = self.export.dest
        if self.export.name == "decompose":
            def intrude(root):
                with open(os.path.join(dest(root), "b.safetensors"), "w") as f:
                    f.write("intruder\n")
            # The output directory is made first, long before the files.
            root, r, before = self._racing("factor file created meanwhile", intrude,
                                           ready=lambda root: os.path.isdir(dest(root)))
            if r.returncode != 0:
                raise Failure(f"factor file created meanwhile: the export failed:\n{r.output}")
            expect_state(root, {"new": self.after["empty"]}, "factor file created meanwhile")
            return 1, "the factor file replaced whole"
        exists = "exists (--force replaces it)"
        intruders = {
            "hf": [("a directory", lambda root: (os.mkdir(dest(root)), _write(
                os.path.join(dest(root), "intruder.txt"))), exists),
                   ("an empty directory", lambda root: os.mkdir(dest(root)), exists)],
            "onnx": [("the model file", lambda root: _write(dest(root)), exists),
                     ("the data file", lambda root: _write(dest(root) + ".data"), exists)],
            "gguf": [("the model file", lambda root: _write(dest(root)), exists),
                     ("a directory", lambda root: os.mkdir(dest(root)), "is a directory")],
        }[self.export.name]
        for label, intrude, reason in intruders:
            what = f"{label} created meanwhile"
            root, r, before = self._racing(what, intrude)
            check_clear_failure(r, what, [dest(root)], [reason])
            expect_state(root, {"unchanged": before}, what)
            n += 1
        return n, "never replaced without --force"


def _write(path):
    with open(path, "w") as f:
        f.write("intruder\n")


# ---------------------------------------------------------------------------

def _in_namespace(argv):
    """Runs the driver again inside a mount namespace of its own, so that the
    tmpfs mounts vanish with it whatever happens."""
    attempts = [["unshare", "-m", "--propagation", "private"]] if os.geteuid() == 0 else []
    attempts.append(["unshare", "-r", "-m", "--propagation", "private"])
    env = dict(os.environ, **{NAMESPACE_ENV: "1"})
    errors = []
    for prefix in attempts:
        probe = subprocess.run(prefix + ["true"], capture_output=True, text=True)
        if probe.returncode != 0:
            errors.append(f"{' '.join(prefix)}: {probe.stderr.strip()}")
            continue
        return subprocess.run(prefix + [sys.executable, "-m", "moe_testing.fault_injection"]
                              + argv, env=env).returncode
    print("FAILED: no mount namespace for the file-system scenarios: " + "; ".join(errors),
          flush=True)
    return 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="scratch directory (emptied)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--points", type=int, default=5,
                        help="kill points per signal and export (at least 3)")
    parser.add_argument("--hf", nargs=2, metavar=("NEW", "OLD"))
    parser.add_argument("--onnx", nargs=2, metavar=("NEW", "OLD"))
    parser.add_argument("--gguf", nargs=2, metavar=("NEW", "OLD"))
    parser.add_argument("--decompose", nargs=2, metavar=("MODULE", "EXPERTS"))
    args = parser.parse_args(argv)
    if args.points < 3:
        parser.error("--points must be at least 3")
    if not os.environ.get(NAMESPACE_ENV):
        return _in_namespace(argv)

    exports = []
    if args.hf:
        exports.append(_hf(*args.hf))
    if args.onnx:
        exports.append(_onnx(*args.onnx))
    if args.gguf:
        exports.append(_gguf(*args.gguf))
    if args.decompose:
        exports.append(_decompose(*args.decompose))
    if not exports:
        parser.error("nothing to test: give --hf, --onnx, --gguf or --decompose")

    total = failed = 0
    for export in exports:
        harness = Harness(export, os.path.abspath(args.work),
                          random.Random(f"{args.seed}-{export.name}"), args.points)
        try:
            print(f"{export.name} reference: {harness.prepare()}", flush=True)
        except Failure as failure:
            print(f"{export.name} reference: FAILED: {failure}", flush=True)
            total, failed = total + 1, failed + 1
            continue
        scenarios = [(sig.name, lambda sig=sig: harness.kills(sig))
                     for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)]
        scenarios += [("full file system", harness.full_fs),
                      ("read-only file system", harness.read_only_fs),
                      ("symbolic links", harness.symlinks),
                      ("created meanwhile", harness.concurrent)]
        for label, scenario in scenarios:
            total += 1
            try:
                runs, detail = scenario()
                print(f"{export.name} {label}: ok ({runs} runs: {detail})", flush=True)
            except Failure as failure:
                failed += 1
                print(f"{export.name} {label}: FAILED: {failure}", flush=True)
    print(f"{total} scenarios, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
