"""Quality metrics on RGB uint8 videos of equal shape: PSNR and SSIM (Wang et al. 2004)."""

from __future__ import annotations

import cv2
import numpy as np

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _check(ref: np.ndarray, out: np.ndarray) -> None:
    if ref.shape != out.shape:
        raise ValueError(f"videos differ in shape: {ref.shape} vs {out.shape}")


def psnr_frames(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB over all RGB values, capped at 100 dB for identical frames."""
    _check(ref, out)
    values = ref[0].size if len(ref) else 1
    # cv2.norm sums squared differences in C without a float copy of the video.
    sse = np.array([cv2.norm(r, o, cv2.NORM_L2SQR) for r, o in zip(ref, out, strict=True)], dtype=np.float64)
    mse = sse / values
    return np.where(mse > 0, 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), 100.0)


def psnr(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean of per-frame PSNR (the usual video figure)."""
    return float(psnr_frames(ref, out).mean())


def _ssim_grey(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float32), b.astype(np.float32)
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2)
    return float(np.mean(num / den))


def ssim_frames(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-frame SSIM on luma (BT.601), Gaussian window 11 / sigma 1.5."""
    _check(ref, out)
    grey = lambda f: cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)  # noqa: E731
    return np.array([_ssim_grey(grey(r), grey(o)) for r, o in zip(ref, out, strict=True)])


def ssim(ref: np.ndarray, out: np.ndarray) -> float:
    return float(ssim_frames(ref, out).mean())
