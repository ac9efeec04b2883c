"""semantic.vmaf_kernels' ADM and VIF features against vmaf-torch's own, on real and synthetic
pictures of awkward sizes, and the meter's score with and without them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from semantic import vmaf_kernels
from semantic.metrics import VmafMeter, _torch_threads, _vmaf_luma, _vmaf_model
from semantic.video_io import Video, read_video, write_video

pytestmark = pytest.mark.skipif(not vmaf_kernels.KERNELS, reason="the kernels need numba")
# Both compute in float32 in the same order up to the pooled sums (float64 here) and the 3x3
# masking sum: measured differences are up to 2e-6 on 1280x720.
FEATURE_TOL = 2e-5


def _torch_features(ref: np.ndarray, dist: np.ndarray) -> tuple[float, np.ndarray]:
    import torch

    model = _vmaf_model()
    r, d = (torch.from_numpy(x)[None, None] for x in (ref, dist))
    with _torch_threads(1):
        return float(model.compute_adm_score(r, d)[0, 0]), model.compute_vif_features(r, d)[0].numpy()


def _ours(ref: np.ndarray, dist: np.ndarray) -> tuple[float, np.ndarray]:
    windows = [w.numpy() for w in _vmaf_model().vif.blur_windows]
    return vmaf_kernels.adm_score(ref, dist), np.array(vmaf_kernels.vif_features(ref, dist, windows))


def _pairs(bikes_video: Video, tmp_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    frames = bikes_video.frames[:3]
    write_video(tmp_path / "crf36.mp4", frames, Fraction(25), crf=36)
    coded = read_video(tmp_path / "crf36.mp4").frames
    rng = np.random.default_rng(5)
    ref = _vmaf_luma(frames[2])
    pairs = {"h264 crf 36": (ref, _vmaf_luma(coded[2])),
             "blur": (ref, _vmaf_luma(cv2.GaussianBlur(frames[2], (0, 0), 2.0))),
             "identical": (ref, ref.copy()),
             "flat reference": (np.full_like(ref, 90.0), _vmaf_luma(coded[2])),
             "noise": (rng.uniform(0, 255, (64, 96)).astype(np.float32),
                       rng.uniform(0, 255, (64, 96)).astype(np.float32))}
    for w, h in ((71, 45), (70, 44), (33, 17), (17, 19), (181, 321)):  # odd sides pad differently
        pairs[f"{w}x{h}"] = tuple(cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in pairs["h264 crf 36"])
    return pairs


def test_features_are_vmaf_torchs(bikes_video: Video, tmp_path: Path) -> None:
    for name, (ref, dist) in _pairs(bikes_video, tmp_path).items():
        want_adm, want_vif = _torch_features(ref, dist)
        adm, vif = _ours(ref, dist)
        assert adm == pytest.approx(want_adm, abs=FEATURE_TOL), name
        assert np.allclose(vif, want_vif, atol=FEATURE_TOL), (name, vif, want_vif)


def test_distortion_lowers_both_features(bikes_video: Video, tmp_path: Path) -> None:
    """Not only equal to vmaf-torch: identical pictures score 1, coded ones less, and more blur
    less again (detail loss is what ADM and VIF measure)."""
    pairs = _pairs(bikes_video, tmp_path)
    same, coded = _ours(*pairs["identical"]), _ours(*pairs["h264 crf 36"])
    assert same[0] == 1.0 and np.allclose(same[1], 1.0, atol=1e-4)
    assert 0 < coded[0] < 1 and np.all((coded[1] > 0) & (coded[1] < 1))
    frame = bikes_video.frames[2]
    blurred = [_ours(_vmaf_luma(frame), _vmaf_luma(cv2.GaussianBlur(frame, (0, 0), s))) for s in (0.8, 1.6, 3.2)]
    assert blurred[0][0] > blurred[1][0] > blurred[2][0]
    assert np.all(blurred[0][1] > blurred[1][1]) and np.all(blurred[1][1] > blurred[2][1])


def test_meter_scores_alike_with_and_without_kernels(bikes_video: Video, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numba the meter falls back on vmaf-torch's features: the same VMAF either way."""
    ref = bikes_video.frames[:6]
    out = np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in ref])

    def scores() -> np.ndarray:
        meter = VmafMeter(batch=2, keep_frames=True)
        for r, o in zip(ref, out, strict=True):
            meter.update(r, o)
        return meter.frames()

    fast = scores()
    monkeypatch.setattr(vmaf_kernels, "KERNELS", False)
    assert np.allclose(fast, scores(), atol=1e-3) and 20 < fast.mean() < 95
