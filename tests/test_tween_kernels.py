"""The interp decoder's compiled per-frame loops against their numpy references, on random fields
and on a real interval (bikes), with and without a global motion model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from semantic import tween_kernels as k

pytestmark = pytest.mark.skipif(k.njit is None, reason="numba is missing: the loops are the numpy references")

ZOOM_PAN = (0.03 + 0.01j, 1.5 - 0.7j)  # a displacement field: a slight zoom and rotation, and a pan


def _fields(seed: int, hs: int = 37, ws: int = 53) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    f_ab = (rng.standard_normal((hs, ws, 2)) * 4).astype(np.float32)
    f_ba = (rng.standard_normal((hs, ws, 2)) * 4).astype(np.float32)
    w_a, w_b = (rng.uniform(0.02, 1.02, (hs, ws)).astype(np.float32) for _ in range(2))
    return f_ab, f_ba, w_a, w_b


@pytest.mark.parametrize("model", [k.NO_MOTION, ZOOM_PAN])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.9])
def test_splat_matches_numpy(model: k.Affine, alpha: float) -> None:
    f_ab, f_ba, w_a, w_b = _fields(1)
    inverse = (-model[0], -model[1])
    got = k.splat(f_ab, f_ba, w_a, w_b, alpha, model, inverse)
    want = k.splat_numpy(f_ab, f_ba, w_a, w_b, alpha, model, inverse)
    assert got.shape == want.shape == (37, 53, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    # everything that lands inside is counted once: the weights landing sum to at most all of them
    assert 0 < got[..., 0].sum() <= w_a.sum() + w_b.sum() + 1e-2


def test_splat_without_motion_puts_every_pixel_back_in_place() -> None:
    f_ab, f_ba, w_a, w_b = (np.zeros_like(x) for x in _fields(2))
    w_a[:], w_b[:] = 0.5, 0.25
    np.testing.assert_allclose(k.splat(f_ab, f_ba, w_a, w_b, 0.3, k.NO_MOTION, k.NO_MOTION)[..., 0], 0.75)


@pytest.mark.parametrize("model", [k.NO_MOTION, ZOOM_PAN])
def test_sample_maps_and_blend_weights_match_numpy(model: k.Affine) -> None:
    f_ab, f_ba, w_a, w_b = _fields(3)
    acc = k.splat_numpy(f_ab, f_ba, w_a, w_b, 0.4, model, model)
    acc += k.CRACK_BLUR * cv2.GaussianBlur(acc, (0, 0), 1.0)
    maps = k.sample_maps(acc, 0.4, model, (model[0] * 0.5, model[1] * 0.5))
    np.testing.assert_allclose(maps, k.sample_maps_numpy(acc, 0.4, model, (model[0] * 0.5, model[1] * 0.5)),
                               rtol=1e-5, atol=1e-3)
    rng = np.random.default_rng(4)
    miss_a, miss_b = (rng.uniform(0, 1, w_a.shape).astype(np.float32) for _ in range(2))
    weights = k.blend_weights(maps, miss_a, miss_b, 0.4)
    np.testing.assert_allclose(weights, k.blend_weights_numpy(maps, miss_a, miss_b, 0.4), atol=1e-5)
    inside = (maps[0] > 0) & (maps[0] < 52) & (maps[1] > 0) & (maps[1] < 36)
    inside &= (maps[2] > 0) & (maps[2] < 52) & (maps[3] > 0) & (maps[3] < 36)
    total = weights.sum(axis=0)[inside]
    np.testing.assert_allclose(total, 1 - (miss_a * miss_b)[inside], atol=1e-5)  # the rest is cross-faded


@pytest.mark.parametrize("width", [320, 640])  # the flow's own grid (the track search), and a decoded video
def test_the_tween_matches_its_numpy_reference_on_real_video(width: int) -> None:
    """The whole interval rendered with the compiled loops and with the numpy references gives
    the same frames (to rounding), on bikes (a camera pan: a global model), at the flow's size
    and at full size (where the small grid's maps are scaled up)."""
    from lgvsc.sample_videos import sample_video
    from semantic import decoder
    from semantic.video_io import read_video

    video = read_video(sample_video("bikes"), 9)
    height = round(272 * width / 640)
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in video.frames]
    a, b = (decoder.Keyframe(t, b"", width, height, coded=frames[t]) for t in (0, 8))
    side = decoder.SideInfo([], [0, 8], [], [])
    assert decoder._interval_motion(a.image, b.image, None).model is not None  # the model's fields are used
    compiled = list(decoder._motion_compensated(a, b, side))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("splat", "sample_maps", "blend_weights"):
            patch.setattr(decoder, name, getattr(k, f"{name}_numpy"))
        reference = list(decoder._motion_compensated(a, b, side))
    assert len(compiled) == 7
    for got, want in zip(compiled, reference, strict=True):
        assert np.abs(got.astype(int) - want).max() <= 2
