"""Progress lines: on a terminal only, one line per pass, the count right."""

from __future__ import annotations

import io
from pathlib import Path

from lgvsc.progress import Progress, progress_source


def test_progress_counts_and_stays_silent_off_a_terminal() -> None:
    out = io.StringIO()
    assert list(Progress("work", 5, stream=out, enabled=True, interval_s=0).wrap(range(5))) == list(range(5))
    assert out.getvalue().endswith("work [########################] 5/5 frames, " + out.getvalue().split(", ")[-2]
                                   + ", 0 s left\n")
    quiet = io.StringIO()
    assert list(Progress("work", 5, stream=quiet).wrap(range(5))) == list(range(5))  # StringIO is no tty
    assert quiet.getvalue() == ""


def test_progress_source_reads_every_frame_each_pass(bikes: Path) -> None:
    source = progress_source(bikes, max_frames=30)
    assert sum(1 for _ in source.open()) == 30 and sum(1 for _ in source.open()) == 30
