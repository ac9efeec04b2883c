"""The ``diffusers:<id>`` decoder with a tiny random Wan first-last-frame-to-video pipeline that
the test builds, saves and loads back through ``DiffusionPipeline.from_pretrained``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semantic.decoder import DecoderError, SideInfo, decode_bitstream
from semantic.diffusion_decoder import DiffusionSettings
from semantic.encoder import EncoderConfig, encode_video
from semantic.video_io import read_video

# Small enough for the CPU: 32 px long side, 2 steps, clips of 9 frames (longer intervals chain).
TINY = DiffusionSettings(steps=2, max_side=32, max_frames=9)


@pytest.fixture(scope="module")
def tiny_wan(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("diffusers")
    from tiny_models import build_tiny_wan_i2v

    return str(build_tiny_wan_i2v(tmp_path_factory.mktemp("wan")))


@pytest.fixture(scope="module")
def stream(bikes: Path) -> tuple[bytes, int, list[int]]:
    video = read_video(bikes, max_frames=45)  # a cut at frame 30: two shots
    enc = encode_video(video, EncoderConfig(keyframes=4, describe="tags", psss="none"))
    return enc.data, len(video.frames), enc.plan.frames


def test_generated_video_has_exact_length_and_the_keyframes(tiny_wan: str, stream) -> None:  # noqa: ANN001
    data, frames, keyframes = stream
    generated = decode_bitstream(data, f"diffusers:{tiny_wan}", TINY)
    assert generated.backend == f"diffusers:{tiny_wan}"
    out = generated.frames
    reference = decode_bitstream(data, "crossfade").frames
    assert out.shape == reference.shape and len(out) == frames
    for k in keyframes:  # the received keyframes themselves, not the model's copies
        np.testing.assert_array_equal(out[k], reference[k])
    between = [t for t in range(frames) if t not in keyframes and keyframes[0] < t < keyframes[-1]]
    assert np.abs(out[between].astype(int) - reference[between]).mean() > 1.0  # generated, not blended
    np.testing.assert_array_equal(decode_bitstream(data, f"diffusers:{tiny_wan}", TINY).frames, out)  # seeded


def test_long_intervals_are_generated_as_chained_clips(tiny_wan: str) -> None:
    from semantic.diffusion_decoder import DiffusionTween

    model = DiffusionTween(tiny_wan, TINY)
    assert (model.temporal, model.max_clip, model.first_last) == (4, 9, True)
    assert model.clip_frames(6) == 9 and model.clip_frames(2) == 5 and model.clip_frames(40) == 9
    assert model.generation_size(640, 272) == (32, 16)
    first = np.zeros((40, 64, 3), np.uint8)
    last = np.full((40, 64, 3), 255, np.uint8)
    span = list(model.span(first, last, 30, "a video", seed=3))  # 30 frames from clips of 9: 4 clips
    assert len(span) == 30 and all(f.shape == (40, 64, 3) and f.dtype == np.uint8 for f in span)


def test_prompt_carries_description_and_motion() -> None:
    side = SideInfo(keyframe_frames=[0, 20, 40], motion=[3.0, 0.1], pan=[(-2.9, 0.0), (0.0, 0.0)],
                    descriptions={0: "a cyclist on a road"})
    assert side.prompt(0, 20) == "a cyclist on a road, camera pans right, moderate motion"
    assert side.prompt(20, 40) == "static"
    assert SideInfo().prompt(0, 9) == "a video"  # side information lost


def test_cli_decodes_with_the_model_and_rejects_a_bad_one(tiny_wan: str, stream, tmp_path: Path) -> None:  # noqa: ANN001
    data, frames, _ = stream
    src = tmp_path / "s.lgv"
    src.write_bytes(data)
    out = tmp_path / "gen.mp4"
    run = subprocess.run([sys.executable, "-m", "lgvsc.cli", "decode", str(src), "-o", str(out), "--decoder",
                          f"diffusers:{tiny_wan}", "--steps", "2", "--gen-side", "32", "--gen-frames", "9"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(read_video(out).frames) == frames
    bad = subprocess.run([sys.executable, "-m", "lgvsc.cli", "decode", str(src), "-o", str(tmp_path / "x.mp4"),
                          "--decoder", f"diffusers:{tmp_path / 'missing'}"], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "cannot load diffusion pipeline" in bad.stderr.strip().splitlines()[-1]
    with pytest.raises(DecoderError, match="unknown decoder"):
        decode_bitstream(data, "sora")
