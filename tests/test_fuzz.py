"""Fuzzing the receiver (bounded versions of tools/fuzz.py) and the limits that keep it bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgvsc_phy.framing import MAX_STREAM_BYTES, FramingError, LinkPdu, Reassembly
from lgvsc_phy.link import accept_message
from lgvsc_phy.pmt_codec import PmtError, decode_pdu, encode_pdu
from semantic.bitstream import MAGIC, VERSION, HeaderFields, KeyframeImage, Segment, SegmentType, StreamHeader
from semantic.decoder import decode_bitstream
from tools import fuzz

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_bounded_stream_and_pdu_fuzz_find_nothing() -> None:
    """The CI-sized run of the long fuzz target; every mutator gets exercised."""
    stream = fuzz.run_fuzz("stream", 1500, seed=7, workers=2)
    pdus = fuzz.run_fuzz("pdu", 300, seed=7, workers=2)
    for report in (stream, pdus):
        assert report.crashes == 0 and report.hangs == 0, report.failures[:3]
        assert report.outcomes["decoded"] > 0 and report.outcomes["no-header"] > 0
    assert set(stream.mutations) == set(fuzz.STREAM_MUTATORS)
    assert stream.cases == 1500 and pdus.cases == 300


def _misbehaving_case(kind: str, seed: int, index: int) -> dict:
    if index == 3:
        time.sleep(60)
    if index == 5:
        raise RuntimeError("boom")
    if index == 7:
        os._exit(9)
    return {"outcome": "decoded", "mutations": ["flip"]}


def test_the_harness_catches_hangs_crashes_and_dying_workers() -> None:
    t = time.monotonic()
    report = fuzz.run_fuzz("stream", 12, workers=2, timeout_s=1.0, case_fn=_misbehaving_case)
    # The hung case sleeps 60 s: ending well before that shows it was cut at its 1 s timeout, not
    # waited out and flagged afterwards (a few seconds idle; the margin is for a loaded machine).
    assert time.monotonic() - t < 45
    assert report.cases == 12 and report.hangs == 1 and report.crashes == 2
    assert {f["case"] for f in report.failures} == {"stream:3", "stream:5", "stream:7"}
    assert report.outcomes["decoded"] == 9  # the cases after each failure still ran


@FAST
@given(st.integers(0, 2**32 - 1), st.lists(st.sampled_from(sorted(fuzz.STREAM_MUTATORS)), min_size=1, max_size=4))
def test_any_mutation_decodes_to_the_exact_count_or_one_line(seed: int, names: list[str]) -> None:
    rng = np.random.default_rng(seed)
    data = fuzz.corpus()[seed % len(fuzz.corpus())]
    for name in names:
        data = fuzz.STREAM_MUTATORS[name](data, rng) if data else data
    assert fuzz.check_stream(data) in ("decoded", "no-header")


@FAST
@given(st.binary(max_size=400))
def test_link_gate_rejects_garbage_quietly(data: bytes) -> None:
    """Each layer fails only with its own error type, and the gate not at all."""
    try:
        decode_pdu(data)
    except PmtError:
        pass
    try:
        LinkPdu.unpack(data)
    except FramingError:
        pass
    got = Reassembly(None, 0, {})
    assert accept_message(got, data) is None or len(got.received) == 1


def test_forged_pdus_cannot_claim_unbounded_memory() -> None:
    for total, offset in ((2**32 - 1, 0), (5, 2**32 - 200), (5, MAX_STREAM_BYTES)):
        forged = LinkPdu(1, 0, total, offset, b"x" * 10).pack()
        with pytest.raises(FramingError, match="limits"):
            LinkPdu.unpack(forged)
        assert accept_message(Reassembly(None, 0, {}), encode_pdu(forged)) is None


@pytest.mark.parametrize("name,value", [("width", 9000), ("height", 0), ("fps_num", 2**32 - 1), ("fps_den", 0),
                                        ("frames", 2**32 - 1), ("version", VERSION + 1)])
def test_headers_beyond_the_limits_count_as_damaged(name: str, value: int) -> None:
    data = fuzz.corpus()[4]  # a stream with its header at both ends (a small track drops the copy)
    fields, end = HeaderFields.unpack_at(data, 0)
    forged = replace(fields, **{name: value}).pack() + data[end:]
    assert HeaderFields.unpack_at(forged, 0) is not None  # its CRC holds ...
    assert StreamHeader.unpack_at(forged, 0) is None  # ... yet the first copy is rejected ...
    assert decode_bitstream(forged).header.frames == 24  # ... the intact copy at the end decodes


def test_a_keyframe_claiming_a_huge_size_is_dropped_not_allocated() -> None:
    data = fuzz.corpus()[0]
    lie = Segment(SegmentType.KEYFRAME_IMAGE, 77, KeyframeImage(3, 65535, 65535, data[-200:]).pack()).pack()
    decoded = decode_bitstream(data[:-40] + lie + data[-40:])
    assert any("claims 65535x65535" in n for n in decoded.notes)
    assert len(list(decoded.iter_frames())) == 24


def test_cli_decode_of_fuzzed_files(tmp_path: Path) -> None:
    """Damaged: exact frame count, exit 0. Header destroyed: one line, non-zero exit."""
    data = fuzz.corpus()[1]
    rng = np.random.default_rng(3)
    damaged, headless = tmp_path / "damaged.lgv", tmp_path / "headless.lgv"
    damaged.write_bytes(fuzz._zero_pdu(fuzz._flip(data, rng), rng))
    headless.write_bytes(data.replace(MAGIC, b"XXXX"))
    out = tmp_path / "out.mp4"
    ok = subprocess.run([sys.executable, "-m", "lgvsc.cli", "decode", str(damaged), "-o", str(out)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    from semantic.video_io import probe_frame_count

    assert probe_frame_count(out) == 24
    bad = subprocess.run([sys.executable, "-m", "lgvsc.cli", "decode", str(headless), "-o", str(tmp_path / "x.mp4")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "header" in bad.stderr
    assert "Traceback" not in bad.stderr
