"""What moe-mix shows while it works: one line per step. On a terminal the
line of the running step is redrawn a few times a second with its elapsed
time and progress (layers calibrated, bytes written); elsewhere (logs, CI)
each step prints one line when it ends."""

import sys
import threading
import time


class Display:
    def __init__(self, stream=None, live=None, quiet=False):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self._lock = threading.Lock()

    def steps(self, total):
        self._total = total
        self._index = 0

    def step(self, label, detail=""):
        self._index += 1
        step = _Step(self, f"[{self._index}/{self._total}] {label:<12}", detail)
        step.name = label
        return step

    def note(self, text):
        """A line of its own (warnings), between step lines."""
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.write(text.rstrip() + "\n")
            self.stream.flush()


class _Step:
    """A running step; `progress` sets the text after its label."""

    def __init__(self, display, label, detail):
        self.display = display
        self.label = label
        self.detail = detail
        self.progress_text = ""
        self.poll = None           # optional callable -> progress text
        self.warnings = []         # printed after the step's line
        self._stop = threading.Event()

    def progress(self, text):
        self.progress_text = text

    def _line(self, elapsed, done=False):
        parts = [self.label, self.detail]
        if self.progress_text and not done:
            parts.append(self.progress_text)
        text = "  ".join(part for part in parts if part)
        return f"{text}  {elapsed:.1f} s"

    def _tick(self):
        while not self._stop.wait(0.2):
            if self.poll:
                self.progress_text = self.poll()
            with self.display._lock:
                self.display.stream.write(
                    "\r\033[K" + self._line(time.monotonic() - self.start))
                self.display.stream.flush()

    def __enter__(self):
        self.start = time.monotonic()
        if self.display.live and not self.display.quiet:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind, value, traceback):
        self.elapsed = time.monotonic() - self.start
        if self.display.live and not self.display.quiet:
            self._stop.set()
            self._thread.join()
        if self.display.quiet:
            for warning in self.warnings:
                self.display.stream.write(warning.rstrip() + "\n")
            return False
        with self.display._lock:
            if self.display.live:
                self.display.stream.write("\r\033[K")
            if kind is None:
                if self.poll:
                    self.progress_text = self.poll()
                    self.detail = "  ".join(p for p in (self.detail, self.progress_text) if p)
                self.display.stream.write(self._line(self.elapsed, done=True) + "\n")
            else:
                self.display.stream.write(self._line(self.elapsed, done=True)
                                          + "  failed\n")
            for warning in self.warnings:
                self.display.stream.write(warning.rstrip() + "\n")
            self.display.stream.flush()
        return False
