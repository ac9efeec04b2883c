"""Compiled (numba) per-frame loops of the ``interp`` decoder's motion-compensated tween, with
the numpy versions they must match (tests/test_tween_kernels.py).

The track search renders every frame of three or four candidate videos per encode on parallel
threads (``semantic.track_search``): about half of a bikes encode at CBR 1e-3. On its grid of
~40k pixels each of the ~100 numpy calls a frame made cost more in call overhead and GIL
contention than in arithmetic. Each loop here runs a frame's per-pixel work in one pass and
releases the GIL (the encode: 10.0 -> 8.8 s).

Displacement fields that a global motion model contributes are affine in the pixel position z
(x + iy on the small grid), z -> c1 z + c0; they are passed as ``Affine`` coefficients instead
of as arrays.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # GNU Radio Companion's system Python may lack numba: numpy below
    njit = None

Affine = tuple[complex, complex]  # the displacement field z -> c1 z + c0 (small px)
NO_MOTION: Affine = (0j, 0j)
CRACK_BLUR = 0.1  # share of the blurred splat added back: cracks (zoom in) take their neighbours' motion
OCCLUSION_MARGIN = 0.5  # one keyframe alone only where the evidence for it exceeds this (noise must not)


def affine_field(field: Affine, hs: int, ws: int) -> np.ndarray:
    """(hs, ws, 2) float32: the displacement c1 z + c0 at every grid point."""
    gx, gy = np.meshgrid(np.arange(ws, dtype=np.float64), np.arange(hs, dtype=np.float64))
    d = field[0] * (gx + 1j * gy) + field[1]
    return np.dstack([d.real, d.imag]).astype(np.float32)


def splat_numpy(f_ab: np.ndarray, f_ba: np.ndarray, weight_a: np.ndarray, weight_b: np.ndarray, alpha: float,
                move_a: Affine, move_b: Affine) -> np.ndarray:
    """Forward splatting of every pixel of a and of b to where it is at time ``alpha``: a's pixel
    moves by alpha f_ab + move_a, b's by (1 - alpha) f_ba + move_b, to the nearest grid point.
    Per grid point (hs, ws, 3) float32: the sum of the weights landing there, and of each
    pixel's motion a -> b (f_ab for a's, -f_ba for b's) times its weight."""
    hs, ws = weight_a.shape
    gx, gy = np.meshgrid(np.arange(ws, dtype=np.float32), np.arange(hs, dtype=np.float32))
    ma = alpha * f_ab + affine_field(move_a, hs, ws)
    mb = (1 - alpha) * f_ba + affine_field(move_b, hs, ws)
    weight = np.concatenate([weight_a, weight_b]).ravel()
    carried = np.concatenate([f_ab, -f_ba]).reshape(-1, 2)
    sums = np.stack([weight, carried[:, 0] * weight, carried[:, 1] * weight]).astype(np.float64)
    x = np.concatenate([gx + ma[..., 0], gx + mb[..., 0]])
    y = np.concatenate([gy + ma[..., 1], gy + mb[..., 1]])
    xi, yi = np.rint(x).astype(np.int32).ravel(), np.rint(y).astype(np.int32).ravel()
    index = np.where((xi.view(np.uint32) < ws) & (yi.view(np.uint32) < hs), yi * ws + xi, hs * ws)  # else a spare bin
    return np.stack([np.bincount(index, row, hs * ws + 1)[:-1] for row in sums], axis=-1).astype(np.float32).reshape(
        hs, ws, 3)


def _splat_loop(f_ab: np.ndarray, f_ba: np.ndarray, weight_a: np.ndarray, weight_b: np.ndarray, alpha: float,
                move_a: np.ndarray, move_b: np.ndarray) -> np.ndarray:
    """``splat_numpy``; the affine fields as float64 [c1.real, c1.imag, c0.real, c0.imag]."""
    hs, ws = weight_a.shape
    acc = np.zeros((hs, ws, 3))
    for side in range(2):
        flow, weight, coef = (f_ab, weight_a, move_a) if side == 0 else (f_ba, weight_b, move_b)
        k = alpha if side == 0 else 1.0 - alpha
        sign = 1.0 if side == 0 else -1.0
        for i in range(hs):
            for j in range(ws):
                fx, fy = flow[i, j, 0], flow[i, j, 1]
                x = np.rint(j + k * fx + (coef[0] * j - coef[1] * i + coef[2]))
                y = np.rint(i + k * fy + (coef[1] * j + coef[0] * i + coef[3]))
                if not (0 <= x < ws and 0 <= y < hs):  # also NaN
                    continue
                w = weight[i, j]
                xi, yi = int(x), int(y)
                acc[yi, xi, 0] += w
                acc[yi, xi, 1] += sign * fx * w
                acc[yi, xi, 2] += sign * fy * w
    return acc.astype(np.float32)


def sample_maps_numpy(acc: np.ndarray, alpha: float, prior: Affine, bend: Affine) -> np.ndarray:
    """(4, hs, ws) float32: where each grid point at time ``alpha`` samples a (x, y) and b (x, y).
    Its motion a -> b is the splatted mean (``acc`` after the crack fill), the global model's
    ``prior`` where nothing landed; ``bend`` is how far the model's own path (zoom, rotation)
    is from a straight line."""
    hs, ws = acc.shape[:2]
    gx, gy = np.meshgrid(np.arange(ws, dtype=np.float32), np.arange(hs, dtype=np.float32))
    p, b = affine_field(prior, hs, ws), affine_field(bend, hs, ws)
    motion = (acc[..., 1:] + 1e-3 * p) / (acc[..., :1] + 1e-3)
    to_a, to_b = b - alpha * motion, b + (1 - alpha) * motion
    return np.stack([gx + to_a[..., 0], gy + to_a[..., 1], gx + to_b[..., 0], gy + to_b[..., 1]]).astype(np.float32)


def _sample_maps_loop(acc: np.ndarray, alpha: float, prior: np.ndarray, bend: np.ndarray) -> np.ndarray:
    hs, ws = acc.shape[:2]
    maps = np.empty((4, hs, ws), np.float32)
    for i in range(hs):
        for j in range(ws):
            px, py = prior[0] * j - prior[1] * i + prior[2], prior[1] * j + prior[0] * i + prior[3]
            bx, by = bend[0] * j - bend[1] * i + bend[2], bend[1] * j + bend[0] * i + bend[3]
            total = acc[i, j, 0] + 1e-3
            mx, my = (acc[i, j, 1] + 1e-3 * px) / total, (acc[i, j, 2] + 1e-3 * py) / total
            maps[0, i, j] = j + bx - alpha * mx
            maps[1, i, j] = i + by - alpha * my
            maps[2, i, j] = j + bx + (1 - alpha) * mx
            maps[3, i, j] = i + by + (1 - alpha) * my
    return maps


def blend_weights_numpy(maps: np.ndarray, miss_a: np.ndarray, miss_b: np.ndarray, alpha: float) -> np.ndarray:
    """(2, hs, ws) float32: how much of a's and of b's sample each grid point takes. By time, but
    from one keyframe alone where its sample is clearly not found in the other while the
    other's is (occlusion), or where the other's falls outside its picture; neither where
    both are lost (``miss_a``, ``miss_b``: 1 - matched at the samples), which the caller
    cross-fades."""
    hs, ws = miss_a.shape
    in_a, in_b = (((m[0] > -0.5) & (m[0] < ws - 0.5) & (m[1] > -0.5) & (m[1] < hs - 0.5)).astype(np.float32)
                  for m in (maps[:2], maps[2:]))
    only_a = np.clip((miss_a * (1 - miss_b) - OCCLUSION_MARGIN) / (1 - OCCLUSION_MARGIN), 0, 1)
    only_b = np.clip((miss_b * (1 - miss_a) - OCCLUSION_MARGIN) / (1 - OCCLUSION_MARGIN), 0, 1)
    fade = miss_a * miss_b
    both = 1 - only_a - only_b - fade
    k_a, k_b = (1 - alpha) * both + only_a, alpha * both + only_b
    # a sample from outside a keyframe is worthless: the other keyframe gives the pixel
    return np.stack([in_a * (k_a + (1 - in_b) * (k_b + fade)), in_b * (k_b + (1 - in_a) * (k_a + fade))]).astype(
        np.float32)


def _blend_weights_loop(maps: np.ndarray, miss_a: np.ndarray, miss_b: np.ndarray, alpha: float) -> np.ndarray:
    hs, ws = miss_a.shape
    k = np.empty((2, hs, ws), np.float32)
    for i in range(hs):
        for j in range(ws):
            ma, mb = miss_a[i, j], miss_b[i, j]
            in_a = 1.0 if -0.5 < maps[0, i, j] < ws - 0.5 and -0.5 < maps[1, i, j] < hs - 0.5 else 0.0
            in_b = 1.0 if -0.5 < maps[2, i, j] < ws - 0.5 and -0.5 < maps[3, i, j] < hs - 0.5 else 0.0
            only_a = min(max((ma * (1 - mb) - OCCLUSION_MARGIN) / (1 - OCCLUSION_MARGIN), 0.0), 1.0)
            only_b = min(max((mb * (1 - ma) - OCCLUSION_MARGIN) / (1 - OCCLUSION_MARGIN), 0.0), 1.0)
            fade = ma * mb
            both = 1 - only_a - only_b - fade
            k_a, k_b = (1 - alpha) * both + only_a, alpha * both + only_b
            k[0, i, j] = in_a * (k_a + (1 - in_b) * (k_b + fade))
            k[1, i, j] = in_b * (k_b + (1 - in_a) * (k_a + fade))
    return k


def _coefficients(field: Affine) -> np.ndarray:
    return np.array([field[0].real, field[0].imag, field[1].real, field[1].imag])


if njit is not None:
    _splat = njit(cache=True, nogil=True)(_splat_loop)
    _sample_maps = njit(cache=True, nogil=True)(_sample_maps_loop)
    blend_weights = njit(cache=True, nogil=True)(_blend_weights_loop)

    def splat(f_ab: np.ndarray, f_ba: np.ndarray, weight_a: np.ndarray, weight_b: np.ndarray, alpha: float,
              move_a: Affine, move_b: Affine) -> np.ndarray:
        return _splat(f_ab, f_ba, weight_a, weight_b, alpha, _coefficients(move_a), _coefficients(move_b))

    def sample_maps(acc: np.ndarray, alpha: float, prior: Affine, bend: Affine) -> np.ndarray:
        return _sample_maps(acc, alpha, _coefficients(prior), _coefficients(bend))
else:
    splat, sample_maps, blend_weights = splat_numpy, sample_maps_numpy, blend_weights_numpy
