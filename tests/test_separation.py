"""The H.264 / H.265 separation baseline: fits its byte budget, and always decodes to exactly
the source frame count, whatever the link did to the stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semantic.encoder import FrameSource
from semantic.metrics import psnr_frames
from semantic.separation import CodedVideo, SeparationError, decode, encode, encode_to_budget, strip_sei
from semantic.video_io import read_video


@pytest.fixture(scope="module")
def clip(bikes: Path) -> tuple[FrameSource, np.ndarray]:
    return FrameSource.of_file(bikes, max_frames=60), read_video(bikes, max_frames=60).frames


@pytest.mark.parametrize("scheme", ["h264", "h265"])
def test_fits_the_budget_and_decodes_exactly(clip, scheme: str) -> None:  # noqa: ANN001
    source, frames = clip
    coded = encode_to_budget(source, scheme, 3000)
    assert len(coded.data) <= 3000 and coded.frames == 60
    out = np.stack(list(decode(coded.data, coded)))
    assert out.shape == frames.shape
    assert np.mean(psnr_frames(frames, out)) > 16.0


def test_sei_is_stripped_and_the_stream_still_decodes(clip) -> None:  # noqa: ANN001
    source, frames = clip
    raw = encode(list(frames[:5]), source.fps, "h264", 40, (160, 68))
    assert strip_sei(raw, "h264") == raw  # encode already strips it ...
    assert b"x264" not in raw  # ... x264's option string is gone
    coded = CodedVideo(raw, "h264", 160, 68, 40, 5, source.fps, (640, 272))
    assert len(list(decode(raw, coded))) == 5


@pytest.mark.parametrize("damage", ["hole", "truncated", "garbage", "empty"])
def test_damaged_streams_give_exact_counts(clip, damage: str) -> None:  # noqa: ANN001
    source, _ = clip
    coded = encode_to_budget(source, "h264", 6000)
    data = coded.data
    data = {"hole": data[:200] + bytes(400) + data[600:], "truncated": data[: len(data) // 3],
            "garbage": np.random.default_rng(1).bytes(len(data)), "empty": b""}[damage]
    out = list(decode(data, coded))
    assert len(out) == 60 and all(f.shape == (272, 640, 3) for f in out)
    if damage in ("garbage", "empty"):
        assert all(float(f.mean()) == 128.0 for f in out)  # nothing decodable: grey, as a player shows


def test_tiny_budgets_keep_few_frames_instead_of_failing(clip) -> None:  # noqa: ANN001
    """Down to a single coded frame held for the whole clip: what a player would show."""
    source, frames = clip
    coded = encode_to_budget(source, "h264", 150)
    assert len(coded.data) <= 150 and coded.stride >= 8
    assert len(list(decode(coded.data, coded))) == len(frames)


def test_impossible_budgets_and_unknown_schemes_are_clear_errors(clip) -> None:  # noqa: ANN001
    source, _ = clip
    with pytest.raises(SeparationError, match="cannot fit"):
        encode_to_budget(source, "h264", 30)
    with pytest.raises(SeparationError, match="unknown separation scheme"):
        encode_to_budget(source, "vp9", 5000)


def test_baseline_through_the_flowgraphs(bikes: Path, base_port: int) -> None:
    """The same flowgraphs, probe and on-air budget as LGVSC; exact frame count; budget kept."""
    from tools.baseline_loopback import BaselineOptions, run_baseline_loopback

    r = run_baseline_loopback(BaselineOptions(bikes, "h264", 10.0, cbr=1e-3, base_port=base_port, max_frames=60))
    assert r["frames_out"] == 60 and r["mcs"] == "16qam-1/2" and r["per"] == 0.0
    assert 0.9e-3 <= r["cbr_on_air"] <= 1.1e-3 and r["stream_bytes"] <= r["stream_bytes_budget"]
    assert r["psnr_db"] > 18.0


def test_loss_model_zero_fills_whole_pdus() -> None:
    from lgvsc_phy.mcs import get_mcs
    from lgvsc_phy.protection import Protection
    from tools.loss_robustness import lose

    link, data = Protection.uniform(get_mcs("qpsk-1/2")), bytes(range(256)) * 40
    rng = np.random.default_rng(0)
    assert lose(data, link, 0.0, rng) == data and lose(data, link, 1.0, rng) == bytes(len(data))
    half = lose(data, link, 0.5, rng)
    pdus = link.pdus(data, 1)
    zeroed = [p for p, _ in pdus if half[p.offset : p.offset + len(p.payload)] == bytes(len(p.payload))]
    assert len(zeroed) == round(0.5 * len(pdus))
