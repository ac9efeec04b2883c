"""Progress lines on stderr for long work (encoding and decoding passes over a video).

Shown only when stderr is a terminal (or when forced), so logs and tests stay clean; at most a
few updates a second, overwritten in place.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

from semantic.encoder import FrameSource
from semantic.video_io import probe_frame_count

T = TypeVar("T")


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 enabled: bool | None = None, interval_s: float = 0.25, unit: str = "frames") -> None:
        self.label, self.total, self.interval_s, self.unit = label, total, interval_s, unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled

    def line(self, done: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            width = 24
            filled = int(width * min(done, self.total) / self.total)
            bar = "#" * filled + "-" * (width - filled)
            eta = (self.total - done) / rate if rate > 0 else 0.0
            return f"{self.label} [{bar}] {done}/{self.total} {self.unit}, {rate:.1f}/s, {eta:.0f} s left"
        return f"{self.label}: {done} {self.unit}, {rate:.1f}/s"

    def wrap(self, items: Iterable[T]) -> Iterator[T]:
        if not self.enabled:
            yield from items
            return
        t0 = last = time.monotonic()
        done = 0
        try:
            for item in items:
                done += 1
                now = time.monotonic()
                if now - last >= self.interval_s:
                    self.stream.write("\r" + self.line(done, now - t0))
                    self.stream.flush()
                    last = now
                yield item
        finally:  # also when the consumer stops early (a pass that needs only the first frames)
            self.stream.write("\r" + self.line(done, time.monotonic() - t0) + "\n")
            self.stream.flush()

def progress_source(path: str | Path, max_frames: int | None = None) -> FrameSource:
    """A video file streamed (any length), with a progress line per pass on a terminal."""
    plain = FrameSource.of_file(path, max_frames)
    total = probe_frame_count(path)
    total = min(total, max_frames) if total and max_frames else total
    passes = itertools.count(1)
    return FrameSource(plain.fps, lambda: Progress(f"reading {Path(path).name} (pass {next(passes)})",
                                                   total).wrap(plain.open()))
