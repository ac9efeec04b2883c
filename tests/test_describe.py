"""Descriptions: the text codec, dominant motion, the tags and mllm describers, and their
place in the bitstream (budget, inspect, decoding unaffected)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semantic.analysis import analyse
from semantic.bitstream import SegmentType, parse_stream
from semantic.decoder import decode_bitstream
from semantic.describe import DescribeError, IntervalView, TagDescriber, get_describer, motion_phrase
from semantic.encoder import EncoderConfig, encode_video
from semantic.text_codec import compress_text, decompress_text
from semantic.video_io import Video, read_video


@pytest.mark.parametrize("text", ["", "a man rides a bike along a forest road, camera pans left",
                                  "Ein Radfahrer fährt über eine Brücke 🚲", "x" * 900])
def test_text_codec_round_trip(text: str) -> None:
    assert decompress_text(compress_text(text)) == text


def test_text_codec_dictionary_pays_and_damage_is_none() -> None:
    caption = "a cyclist riding a bike on a road through green trees, camera pans left, fast motion"
    assert len(compress_text(caption)) < 0.75 * len(caption.encode())
    packed = compress_text(caption)
    assert decompress_text(packed[:-3]) is None  # truncated
    assert decompress_text(b"\xff" * 20) is None  # not DEFLATE
    assert decompress_text(compress_text("y" * 5000)) is None  # inflates past the cap


def test_motion_phrase_names_camera_moves() -> None:
    assert motion_phrase(0.1, (0.0, 0.0)) == "static"
    assert motion_phrase(3.0, (-2.8, 0.1)) == "camera pans right, moderate motion"  # content moves left
    assert motion_phrase(8.0, (0.2, 7.5)) == "camera tilts up, fast motion"  # content moves down
    assert motion_phrase(3.0, (0.1, 0.2)) == "moderate motion"  # things move, the camera does not


def _panned_clip(frame: np.ndarray, shift: int, frames: int = 24) -> Video:
    """A window sliding right over a real frame: the content moves left by ``shift`` px/frame."""
    h, w = frame.shape[:2]
    width = w - shift * frames
    return Video(np.stack([frame[:, t * shift : t * shift + width] for t in range(frames)]), 25)


def test_analysis_measures_the_pan(bikes_video) -> None:  # noqa: ANN001
    clip = _panned_clip(bikes_video.frames[100], 3)
    a = analyse(iter(clip.frames), clip.fps)
    (dx, dy), = a.interval_pan([0, len(clip.frames) - 1])
    assert abs(dx + 3) < 0.6 and abs(dy) < 0.5, (dx, dy)
    assert TagDescriber().describe([IntervalView(clip.frames[0], clip.frames[-1], 3.0, (dx, dy))])[0].endswith(
        "camera pans right, moderate motion")


def test_tags_name_the_colour() -> None:
    green = np.zeros((64, 96, 3), np.uint8)
    green[..., 1] = 130
    dark = np.full((64, 96, 3), 20, np.uint8)
    words = TagDescriber().describe([IntervalView(green, green, 0.0, (0, 0)), IntervalView(dark, dark, 0.0, (0, 0))])
    assert words == ["green scene, static", "dark grey scene, static"]


def test_unknown_describer_is_a_clear_error() -> None:
    with pytest.raises(DescribeError, match="unknown description backend"):
        get_describer("gpt")
    assert get_describer("none") is None


def test_tags_travel_in_the_stream_within_the_budget(bikes_video) -> None:  # noqa: ANN001
    budget = 6000
    enc = encode_video(bikes_video, EncoderConfig(byte_budget=budget, describe="tags"))
    assert len(enc.data) <= budget
    parsed = parse_stream(enc.data)
    texts = {s.index: decompress_text(s.payload) for s in parsed.of_type(SegmentType.TEXT)}
    assert texts == {i: t for i, t in enumerate(enc.descriptions) if t}
    assert len(enc.descriptions) == len(enc.plan.frames) - 1
    assert parsed.header.backends["desc"] == "tags"
    assert len(decode_bitstream(enc.data).frames) == len(bikes_video.frames)


def test_mllm_captions_are_deterministic_and_inspectable(tiny_mllm: str, bikes: Path, tmp_path: Path) -> None:
    video = read_video(bikes, max_frames=60)
    config = EncoderConfig(keyframes=3, describe=f"mllm:{tiny_mllm}", psss="none")
    first = encode_video(video, config)
    assert first.data == encode_video(video, config).data  # greedy decoding: same words, same bytes
    assert len(first.descriptions) == 2 and any(first.descriptions)
    stream = tmp_path / "s.lgv"
    stream.write_bytes(first.data)
    out = subprocess.run([sys.executable, "-m", "lgvsc.cli", "inspect", str(stream), "--json"], capture_output=True,
                         text=True, check=True)
    info = json.loads(out.stdout)
    assert [t["text"] for t in info["text"]] == [t for t in first.descriptions if t]
    assert info["backends"]["desc"] == f"mllm:{tiny_mllm}"
    assert len(info["pan_px_per_frame"]) == len(info["motion_px_per_frame"]) == 2
