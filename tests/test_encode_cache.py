"""A sweep's encodings are coded once per distinct key, and a damaged entry is coded again."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lgvsc.encode_cache import cached, source_identity


def test_each_key_is_made_once_and_damage_is_remade(tmp_path: Path) -> None:
    calls: list[int] = []

    def make(value: int) -> dict:
        calls.append(value)
        return {"stream": bytes([value]) * 10}

    cache = tmp_path / "enc"
    assert cached(cache, ("a", 1), lambda: make(1)) == {"stream": b"\x01" * 10}
    assert cached(cache, ("a", 1), lambda: make(9)) == {"stream": b"\x01" * 10}  # not made again
    assert cached(cache, ("a", 2), lambda: make(2)) == {"stream": b"\x02" * 10}
    assert calls == [1, 2] and len(list(cache.glob("*.pickle"))) == 2 and not list(cache.glob("*.tmp"))
    for entry in cache.glob("*.pickle"):
        entry.write_bytes(entry.read_bytes()[:5])  # truncated
    assert cached(cache, ("a", 1), lambda: make(3)) == {"stream": b"\x03" * 10}
    assert cached(None, ("a", 1), lambda: make(4)) == {"stream": b"\x04" * 10}  # no directory: no cache


def test_an_edited_input_is_another_key(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    before = source_identity(video)
    os.utime(video, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert source_identity(video) != before and source_identity(video)[0] == str(video.resolve())
