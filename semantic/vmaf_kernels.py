"""VMAF v0.6.1's ADM and VIF features of one frame pair in compiled loops (numba) and OpenCV
filters, held to vmaf-torch's own features in tests/test_vmaf_kernels.py; vmaf-torch's SVM
still turns them into the score (``semantic.metrics``).

vmaf-torch builds each feature from whole-image tensor operations: ADM's decoupling, contrast
masking and pooling, and VIF's per-pixel terms, each a pass over memory with a temporary. On
bigbuckbunny's 1280x720 that was ~130 ms a frame on one thread, about a quarter of a sweep
point. Here each scale's per-pixel work is one or two passes, with vmaf-torch's float32
arithmetic in its order (only the pooled sums are float64), and the wavelet is one loop.

Padding follows vmaf-torch (libvmaf's ``dcb|abcdef|fed``): before the first sample a reflection
without repeat, after the last one with repeat.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

try:
    from numba import njit
except ImportError:  # GNU Radio Companion's system Python may lack numba: vmaf-torch's path then
    njit = None

DB2_LO = np.array([0.482962913144690, 0.836516303737469, 0.224143868041857, -0.129409522550921], np.float32)
DB2_HI = np.array([-0.129409522550921, -0.224143868041857, 0.836516303737469, -0.482962913144690], np.float32)
ADM_RFACTORS = np.array([[0.017382, 0.017382, 0.005891], [0.031985, 0.031985, 0.014299],
                         [0.043373, 0.043373, 0.024397], [0.045673, 0.045673, 0.031313]], np.float32)
ADM_GAIN_LIMIT = 100.0  # enhancement gain limit (VMAF, not VMAF NEG)
ADM_BORDER = 0.1  # share of each side left out of the pooling
VIF_GAIN_LIMIT = 100.0
VIF_SIGMA_NSQ = 2.0
VIF_SIGMA_MAX_INV = 4.0 / (255.0 * 255.0)


def _mirror(i: int, n: int) -> int:
    return -i if i < 0 else (2 * n - 1 - i if i >= n else i)


def _dwt2_loop(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One level of the db2 wavelet (vmaf-torch's strided conv2d): the approximation, and the
    horizontal, vertical and diagonal details as one (3, ...) array; ceil(h/2) x ceil(w/2), float32."""
    h, w = x.shape
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    vlo = np.empty((h2, w), np.float32)
    vhi = np.empty((h2, w), np.float32)
    for i in range(h2):
        r0, r1, r2, r3 = _mirror(2 * i - 1, h), _mirror(2 * i, h), _mirror(2 * i + 1, h), _mirror(2 * i + 2, h)
        for j in range(w):
            a, b, c, d = x[r0, j], x[r1, j], x[r2, j], x[r3, j]
            vlo[i, j] = lo[0] * a + lo[1] * b + lo[2] * c + lo[3] * d
            vhi[i, j] = hi[0] * a + hi[1] * b + hi[2] * c + hi[3] * d
    approx = np.empty((h2, w2), np.float32)
    details = np.empty((3, h2, w2), np.float32)  # horizontal, vertical, diagonal
    for i in range(h2):
        for j in range(w2):
            c0, c1, c2, c3 = _mirror(2 * j - 1, w), _mirror(2 * j, w), _mirror(2 * j + 1, w), _mirror(2 * j + 2, w)
            a, b, c, d = vlo[i, c0], vlo[i, c1], vlo[i, c2], vlo[i, c3]
            approx[i, j] = lo[0] * a + lo[1] * b + lo[2] * c + lo[3] * d
            details[1, i, j] = hi[0] * a + hi[1] * b + hi[2] * c + hi[3] * d
            a, b, c, d = vhi[i, c0], vhi[i, c1], vhi[i, c2], vhi[i, c3]
            details[0, i, j] = lo[0] * a + lo[1] * b + lo[2] * c + lo[3] * d
            details[2, i, j] = hi[0] * a + hi[1] * b + hi[2] * c + hi[3] * d
    return approx, details


def _adm_scale_loop(o: np.ndarray, t: np.ndarray, rf: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """(numerator, denominator) of one ADM scale: ``o`` and ``t`` are the reference's and the
    distorted picture's (3, h, w) details (horizontal, vertical, diagonal), ``rf`` the scale's CSF
    factors, ``box`` (left, top, right, bottom) the pooled region. Decoupling into the restored
    picture and the additive impairment, contrast masking by the impairment's 3x3 neighbourhood,
    Minkowski pooling (p = 3) per band."""
    _, h, w = o.shape
    left, top, right, bottom = box[0], box[1], box[2], box[3]
    eps = np.float32(1e-30)
    cos_1deg_sq = np.float32(math.cos(math.pi / 180.0) ** 2)
    gain = np.float32(ADM_GAIN_LIMIT)
    impairment = np.empty((3, h, w), np.float32)  # |CSF-weighted additive impairment|
    restored = np.empty((3, h, w), np.float32)  # |CSF-weighted restored picture|
    den = np.zeros(3)
    for i in range(h):
        for j in range(w):
            ot_dp = o[0, i, j] * t[0, i, j] + o[1, i, j] * t[1, i, j]
            o_mag_sq = o[0, i, j] * o[0, i, j] + o[1, i, j] * o[1, i, j]
            t_mag_sq = t[0, i, j] * t[0, i, j] + t[1, i, j] * t[1, i, j]
            aligned = ot_dp >= 0 and ot_dp * ot_dp >= cos_1deg_sq * o_mag_sq * t_mag_sq
            pooled = top <= i < bottom and left <= j < right
            for b in range(3):
                ob, tb = o[b, i, j], t[b, i, j]
                r = min(max(tb / (ob + eps), np.float32(0.0)), np.float32(1.0)) * ob
                if aligned and r > 0:
                    r = min(r * gain, tb)
                if aligned and r < 0:
                    r = max(r * gain, tb)
                impairment[b, i, j] = abs(rf[b] * (tb - r))
                restored[b, i, j] = abs(r * rf[b])
                if pooled:
                    den[b] += float(abs(rf[b] * ob)) ** 3
    edge, centre = np.float32(1.0 / 30.0), np.float32(1.0 / 15.0)
    num = np.zeros(3)
    for i in range(max(top, 0), min(bottom, h)):
        i0, i2 = _mirror(i - 1, h), _mirror(i + 1, h)
        for j in range(max(left, 0), min(right, w)):
            j0, j2 = _mirror(j - 1, w), _mirror(j + 1, w)
            threshold = np.float32(0.0)
            for b in range(3):
                m = impairment[b]
                ring = m[i0, j0] + m[i0, j] + m[i0, j2] + m[i, j0] + m[i, j2] + m[i2, j0] + m[i2, j] + m[i2, j2]
                threshold += edge * ring + centre * m[i, j]
            for b in range(3):
                x = restored[b, i, j] - threshold
                if x > 0:
                    num[b] += float(x) ** 3
    return _pooled(num, box), _pooled(den, box)


def _pooled(cubes: np.ndarray, box: np.ndarray) -> float:
    area = float((box[3] - box[1]) * (box[2] - box[0]))
    return cubes[0] ** (1 / 3) + cubes[1] ** (1 / 3) + cubes[2] ** (1 / 3) + 3 * (area / 32) ** (1 / 3)


def _vif_scale_loop(mu1: np.ndarray, mu2: np.ndarray, xx: np.ndarray, yy: np.ndarray,
                    xy: np.ndarray) -> tuple[float, float]:
    """(numerator, denominator) of one VIF scale from the local means of reference and distorted
    picture and the local means of their squares and product."""
    h, w = mu1.shape
    tiny, nsq = np.float32(1e-10), np.float32(VIF_SIGMA_NSQ)
    gain, max_inv = np.float32(VIF_GAIN_LIMIT), np.float32(VIF_SIGMA_MAX_INV)
    one, zero = np.float32(1.0), np.float32(0.0)
    num = den = 0.0
    for i in range(h):
        for j in range(w):
            m1, m2 = mu1[i, j], mu2[i, j]
            s1 = max(xx[i, j] - m1 * m1, zero)
            s2 = max(yy[i, j] - m2 * m2, zero)
            s12 = xy[i, j] - m1 * m2
            g = s12 / (s1 + tiny)
            sv = s2 - g * s12
            if s1 < tiny:
                g, sv, s1 = zero, s2, zero
            if s2 < tiny:
                g, sv = zero, zero
            if g < 0:
                g, sv = zero, s2
            if sv <= tiny:
                sv = tiny
            g = min(g, gain)
            if s1 < nsq:
                num += float(one - s2 * max_inv)
                den += 1.0
            else:
                if s12 >= 0:
                    num += float(np.log2(one + (g * g * s1) / (sv + nsq)))
                den += float(np.log2(one + s1 / nsq))
    return num, den


if njit is not None:
    _mirror = njit(cache=True, nogil=True, inline="always")(_mirror)
    _dwt2 = njit(cache=True, nogil=True)(_dwt2_loop)
    _pooled = njit(cache=True, nogil=True)(_pooled)
    _adm_scale = njit(cache=True, nogil=True)(_adm_scale_loop)
    _vif_scale = njit(cache=True, nogil=True)(_vif_scale_loop)
KERNELS = njit is not None  # without numba the loops above would take minutes a frame


def adm_score(ref: np.ndarray, dist: np.ndarray) -> float:
    """ADM2 of two luma pictures (float32, 0-255): detail loss over four wavelet scales."""
    h, w = ref.shape
    nums, dens = 0.0, 0.0
    a_ref, a_dist = ref, dist
    for scale in range(4):
        a_ref, o = _dwt2(a_ref, DB2_LO, DB2_HI)
        a_dist, t = _dwt2(a_dist, DB2_LO, DB2_HI)
        num, den = _adm_scale(o, t, ADM_RFACTORS[scale], _adm_box(*a_ref.shape))
        nums, dens = nums + num, dens + den
    limit = 1e-10 * (w * h) / (1920 * 1080)
    nums, dens = (0.0 if nums < limit else nums), (0.0 if dens < limit else dens)
    return 1.0 if dens == 0 else nums / dens


def _adm_box(height: int, width: int) -> np.ndarray:
    """(left, top, right, bottom) of the pooled region, rounded in float32 as vmaf-torch does."""
    k, half = np.float32(ADM_BORDER), np.float32(0.5)
    left = int(np.floor(np.float32(width) * k - half))
    top = int(np.floor(np.float32(height) * k - half))
    return np.array([left, top, width - left, height - top], np.int64)


def vif_features(ref: np.ndarray, dist: np.ndarray, windows: list[np.ndarray]) -> list[float]:
    """VIF at four scales of two luma pictures (float32, 0-255); ``windows`` are the scales'
    Gaussian taps (vmaf-torch's, so both compute with the same float32 weights)."""
    ref, dist = ref - np.float32(128), dist - np.float32(128)
    features = []
    for scale, win in enumerate(windows):
        if scale > 0:  # blur and keep every other sample: floor(side / 2)
            h, w = ref.shape
            ref = np.ascontiguousarray(_blur(ref, win)[: h // 2 * 2 : 2, : w // 2 * 2 : 2])
            dist = np.ascontiguousarray(_blur(dist, win)[: h // 2 * 2 : 2, : w // 2 * 2 : 2])
        num, den = _vif_scale(_blur(ref, win), _blur(dist, win), _blur(ref * ref, win), _blur(dist * dist, win),
                              _blur(ref * dist, win))
        features.append(num / den)
    return features


def _blur(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """vmaf-torch's reflect-padded separable Gaussian, same size."""
    return cv2.sepFilter2D(x, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REFLECT_101)
