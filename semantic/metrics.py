"""Quality metrics on RGB uint8 videos of equal shape: PSNR, SSIM (Wang et al. 2004) and
VMAF v0.6.1 (Netflix; computed by vmaf-torch, checked against libvmaf in tests/test_vmaf.py).
VMAF needs the ``vmaf`` extra (PyTorch); without it every VMAF figure is None ("n/a")."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

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


# --- VMAF v0.6.1 -------------------------------------------------------------------------------

# torch intra-op threads while scoring (restored afterwards). One: on 2 cores, 2 threads were no faster
# idle and 10x slower beside another busy process (OpenMP barriers), as in a loopback run (bench_vmaf.py).
VMAF_THREADS = 1
# Luma pixels per forward pass: one 640x272 frame. Bigger batches spill the caches (bench_vmaf.py:
# 2-4 frames of 640x272 or 2 of 1280x720 ran up to 1.7x slower per frame); small frames batch up.
VMAF_BATCH_PIXELS = 200_000
# vmaf-torch's VIF pyramid reflect-pads 1 px at its 4th scale (side / 8), so sides under 17 px fail
# (libvmaf segfaults on 16x16). Smaller frames are upscaled by the least integer factor, bicubic, ref
# and out alike; larger ones stay native, where we match libvmaf (even 20x18 within about 1 point).
VMAF_MIN_SIDE = 17
# BT.601 limited range (16-235), as FFmpeg's rgb24 -> yuv420p writes the Y plane libvmaf reads;
# PyAV decodes to RGB with the inverse, so this recovers the coded luma to +-1.
_Y601 = np.array([[0.299, 0.587, 0.114, 0.0]]) * 219 / 255 + [[0, 0, 0, 16]]


def luma_bt601(frame: np.ndarray) -> np.ndarray:
    """8-bit Y plane of an RGB uint8 frame (H, W, 3), rounded as libvmaf gets it from yuv420p."""
    return cv2.transform(frame, _Y601)


def _vmaf_luma(frame: np.ndarray) -> np.ndarray:
    y = luma_bt601(frame)
    h, w = y.shape
    if min(h, w) < VMAF_MIN_SIDE:
        k = -(-VMAF_MIN_SIDE // min(h, w))
        y = cv2.resize(y, (w * k, h * k), interpolation=cv2.INTER_CUBIC)
    return y.astype(np.float32)


def _sep_blur(x, weight, stride=1):  # noqa: ANN001, ANN202 - vmaf_torch.utils.fast_gaussian_blur's signature
    """vmaf-torch's separable 'valid' blur (x: [N, 1, H, W], pre-padded) by OpenCV. oneDNN's 1-channel
    convolution slows super-linearly once a plane outgrows L2: VMAF of a 1280x720 frame took 1.0-1.4 s
    with it, 0.17-0.33 s with this (bench_vmaf.py); same values up to float rounding (tests)."""
    import torch

    k = weight.numel() // 2
    taps = weight.reshape(-1).numpy()
    planes = [cv2.sepFilter2D(np.ascontiguousarray(p), cv2.CV_32F, taps, taps, borderType=cv2.BORDER_CONSTANT)
              [k:p.shape[0] - k:stride, k:p.shape[1] - k:stride] for p in x.reshape(-1, *x.shape[-2:]).numpy()]
    return torch.from_numpy(np.stack(planes)).reshape(*x.shape[:-2], *planes[0].shape)


VMAF_MISSING = "n/a (pip install 'lgvsc[vmaf]')"


@cache
def vmaf_available() -> bool:
    return importlib.util.find_spec("vmaf_torch") is not None


def format_vmaf(value: float | None) -> str:
    return VMAF_MISSING if value is None else f"{value:.1f}"


@cache
def _vmaf_model():  # noqa: ANN202 - vmaf_torch.VMAF, imported lazily (it pulls pandas)
    import vmaf_torch.motion
    import vmaf_torch.vif
    from vmaf_torch import VMAF

    vmaf_torch.vif.fast_gaussian_blur = vmaf_torch.motion.fast_gaussian_blur = _sep_blur  # inference only
    return VMAF(clip_score=True).eval()  # libvmaf clips v0.6.1 to [0, 100] too


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(before)


class VmafMeter:
    """VMAF v0.6.1 of frame pairs fed one at a time (RGB uint8, equal shapes), in constant memory.

    Pairs are scored in batches of ``batch`` frames (default: about VMAF_BATCH_PIXELS of luma);
    between batches only the last reference's blurred luma and the newest frame's features are
    kept, because libvmaf's motion2 for frame i is min(SAD(i, i-1), SAD(i+1, i)): frame i's score
    is final once frame i+1 arrives, and the last frame takes its own SAD. ``mean()`` may be read
    at any time and feeding may go on after it. Without the ``vmaf`` extra it measures nothing
    and ``mean()`` is None.
    """

    def __init__(self, batch: int | None = None, keep_frames: bool = False) -> None:
        self.batch = batch
        self._ref: list[np.ndarray] = []
        self._out: list[np.ndarray] = []
        self._prev_blur = None  # torch.Tensor [1, 1, H, W]: blurred luma of the last scored reference
        self._held = None  # torch.Tensor [1, 6]: adm, SAD to previous, vif x4 of the newest scored frame
        self._sum, self._count = 0.0, 0
        self._frames: list[float] | None = [] if keep_frames else None
        self._shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return self._count + (self._held is not None) + len(self._ref)

    def update(self, ref: np.ndarray, out: np.ndarray) -> None:
        _check(ref, out)
        if not vmaf_available():
            return
        if self._shape not in (None, ref.shape):  # motion compares consecutive references
            raise ValueError(f"frame size changed: {self._shape} then {ref.shape}")
        self._shape = ref.shape
        self._ref.append(_vmaf_luma(ref))
        self._out.append(_vmaf_luma(out))
        self.batch = self.batch or max(1, VMAF_BATCH_PIXELS // self._ref[0].size)
        if len(self._ref) >= self.batch:
            self._score_pending()

    def _score_pending(self) -> None:
        if not self._ref:
            return
        import torch
        from vmaf_torch.utils import vmaf_pad

        model = _vmaf_model()
        with _torch_threads(VMAF_THREADS):
            ref = torch.from_numpy(np.stack(self._ref)).unsqueeze(1)
            out = torch.from_numpy(np.stack(self._out)).unsqueeze(1)
            self._ref, self._out = [], []
            blur = _sep_blur(vmaf_pad(ref, [2] * 4), weight=model.motion.blur_win)  # libvmaf's 5-tap filter
            prev = torch.cat([blur[:1] if self._prev_blur is None else self._prev_blur, blur[:-1]])
            self._prev_blur = blur[-1:]
            sad = (blur - prev).abs().mean(dim=(-1, -2))  # [B, 1]; 0 for the very first frame
            feats = torch.cat([model.compute_adm_score(ref, out), sad, model.compute_vif_features(ref, out)], dim=-1)
            if self._held is not None:
                feats = torch.cat([self._held, feats])
            final = feats[:-1].clone()
            final[:, 1] = torch.minimum(feats[:-1, 1], feats[1:, 1])  # motion2
            self._held = feats[-1:]
            self._add(model.svm(final)[:, 0].tolist())

    def _add(self, scores: list[float]) -> None:
        self._sum += sum(scores)
        self._count += len(scores)
        if self._frames is not None:
            self._frames.extend(scores)

    def _last(self) -> float:
        with _torch_threads(VMAF_THREADS):
            return float(_vmaf_model().svm(self._held)[0, 0])

    def mean(self) -> float | None:
        """Mean VMAF over the pairs fed so far (libvmaf's pooled mean); None before any."""
        self._score_pending()
        if self._held is None:
            return None
        return (self._sum + self._last()) / (self._count + 1)

    def frames(self) -> np.ndarray:
        """Per-frame VMAF so far (needs ``keep_frames=True``)."""
        if self._frames is None:
            raise ValueError("VmafMeter(keep_frames=True) keeps per-frame scores")
        self._score_pending()
        return np.array(self._frames + ([self._last()] if self._held is not None else []))


def vmaf_frames(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-frame VMAF v0.6.1 of RGB uint8 videos (T, H, W, 3), on BT.601 luma; motion from ``ref``."""
    _check(ref, out)
    meter = VmafMeter(keep_frames=True)
    for r, o in zip(ref, out, strict=True):
        meter.update(r, o)
    return meter.frames()


def vmaf(ref: np.ndarray, out: np.ndarray) -> float | None:
    """Mean of per-frame VMAF (libvmaf's pooled mean); None without the ``vmaf`` extra."""
    return float(vmaf_frames(ref, out).mean()) if vmaf_available() else None
