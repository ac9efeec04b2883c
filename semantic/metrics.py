"""Quality metrics on RGB uint8 videos of equal shape: PSNR, SSIM (Wang et al. 2004) and
VMAF v0.6.1 (Netflix; vmaf-torch's model, features from semantic.vmaf_kernels, checked against
libvmaf in tests/test_vmaf.py).
VMAF needs the ``vmaf`` extra (PyTorch); without it every VMAF figure is None ("n/a")."""

from __future__ import annotations

import importlib.util
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

import cv2
import numpy as np

from semantic import vmaf_kernels

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


def mean_psnr(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean per-frame PSNR over (reference, output) frame pairs taken one at a time: a long or
    large video is never held whole."""
    return float(np.mean([psnr_frames(ref[None], out[None])[0] for ref, out in pairs]))


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
# Batches scored at once, each on a thread of its own at VMAF_THREADS intra-op threads: torch's, numba's and
# OpenCV's kernels release the GIL, and a batch needs only the previous raw reference (motion), so
# batches are independent until the SVM. On 2 idle cores bigbuckbunny's 132 frames of 1280x720
# took 0.21 s a frame on one thread (bench_vmaf.py), most of a sweep point's CPU time.
VMAF_WORKERS = 2
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


# vmaf-torch's ADM wavelet (db2, 4 taps, stride 2) as four strided multiply-adds: its 1-channel
# conv2d, 60 calls a frame, took 6 of bigbuckbunny's 28 CPU s of VMAF (132 frames of 1280x720).
def _dwt2_pass(x, taps, dim: int):  # noqa: ANN001, ANN202 - torch tensors, imported lazily
    """One pass along ``dim`` (-2: vertical, -1: horizontal), padded as vmaf-torch pads it."""
    from vmaf_torch.utils import vmaf_pad

    tail = 1 if x.shape[dim] % 2 == 0 else 2
    xp, w = vmaf_pad(x, (0, 0, 1, tail) if dim == -2 else (1, tail, 0, 0)), taps.reshape(-1)
    n = (xp.shape[dim] - w.numel()) // 2 + 1
    every_other = (..., slice(None, None, 2)) + ((slice(None),) if dim == -2 else ())
    return sum(w[k] * xp.narrow(dim, k, 2 * n - 1)[every_other] for k in range(w.numel()))


def _dwt2_vertical_pass(self, x, taps):  # noqa: ANN001, ANN202 - ADM.dwt2_vertical_pass's signature
    return _dwt2_pass(x, taps, -2)


def _dwt2_horizontal_pass(self, x, taps):  # noqa: ANN001, ANN202 - ADM.dwt2_horizontal_pass's signature
    return _dwt2_pass(x, taps, -1)


VMAF_MISSING = "n/a (pip install 'lgvsc[vmaf]')"


@cache
def vmaf_available() -> bool:
    return importlib.util.find_spec("vmaf_torch") is not None


def format_vmaf(value: float | None) -> str:
    return VMAF_MISSING if value is None else f"{value:.1f}"


@cache
def _vmaf_model():  # noqa: ANN202 - vmaf_torch.VMAF, imported lazily (it pulls pandas)
    import vmaf_torch.adm
    import vmaf_torch.motion
    import vmaf_torch.vif
    from vmaf_torch import VMAF

    vmaf_torch.vif.fast_gaussian_blur = vmaf_torch.motion.fast_gaussian_blur = _sep_blur  # inference only
    vmaf_torch.adm.ADM.dwt2_vertical_pass = _dwt2_vertical_pass
    vmaf_torch.adm.ADM.dwt2_horizontal_pass = _dwt2_horizontal_pass
    return VMAF(clip_score=True).eval()  # libvmaf clips v0.6.1 to [0, 100] too


class _TorchThreads:
    """Holds torch's intra-op threads at ``n`` while any scoring thread is inside (restored when the
    last leaves): the setting is the process's, and several batches may be scored at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside, self._before = 0, 0

    @contextmanager
    def __call__(self, n: int) -> Iterator[None]:
        import torch

        with self._lock:
            if self._inside == 0:
                self._before = torch.get_num_threads()
            self._inside += 1
            torch.set_num_threads(n)
        try:
            with torch.inference_mode():  # per thread
                yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    torch.set_num_threads(self._before)


_torch_threads = _TorchThreads()


def _batch_features(refs: list[np.ndarray], outs: list[np.ndarray], previous: np.ndarray | None):  # noqa: ANN202
    """[B, 6] features of a batch of luma pairs (torch.Tensor): adm, the mean absolute difference of
    each blurred reference to the one before it (``previous``, the last raw reference of the batch
    before; 0 for the very first frame), vif at 4 scales. ADM and VIF come from
    ``semantic.vmaf_kernels`` (vmaf-torch's own where numba is missing)."""
    import torch
    from vmaf_torch.utils import vmaf_pad

    model = _vmaf_model()
    with _torch_threads(VMAF_THREADS):
        ref = torch.from_numpy(np.stack(refs)).unsqueeze(1)
        chain = ref if previous is None else torch.cat([torch.from_numpy(previous)[None, None], ref])
        blur = _sep_blur(vmaf_pad(chain, [2] * 4), weight=model.motion.blur_win)  # libvmaf's 5-tap filter
        if previous is None:
            blur = torch.cat([blur[:1], blur])
        sad = (blur[1:] - blur[:-1]).abs().mean(dim=(-1, -2))  # [B, 1]
        if not vmaf_kernels.KERNELS:
            out = torch.from_numpy(np.stack(outs)).unsqueeze(1)
            return torch.cat([model.compute_adm_score(ref, out), sad, model.compute_vif_features(ref, out)], dim=-1)
    windows = [w.numpy() for w in model.vif.blur_windows]
    adm = [[vmaf_kernels.adm_score(r, o)] for r, o in zip(refs, outs, strict=True)]
    vif = [vmaf_kernels.vif_features(r, o, windows) for r, o in zip(refs, outs, strict=True)]
    return torch.cat([torch.tensor(adm, dtype=sad.dtype), sad, torch.tensor(vif, dtype=sad.dtype)], dim=-1)


class VmafMeter:
    """VMAF v0.6.1 of frame pairs fed one at a time (RGB uint8, equal shapes), in bounded memory.

    Pairs are scored in batches of ``batch`` frames (default: about VMAF_BATCH_PIXELS of luma),
    up to ``workers`` batches at once on threads of their own while feeding goes on; at most
    twice that many wait. libvmaf's motion2 for frame i is min(SAD(i, i-1), SAD(i+1, i)), so a
    batch takes the last raw reference of the one before, and frame i's score is final once
    frame i+1's features are in; the last frame takes its own SAD. ``mean()`` may be read at any
    time and feeding may go on after it. Without the ``vmaf`` extra it measures nothing and
    ``mean()`` is None.
    """

    def __init__(self, batch: int | None = None, keep_frames: bool = False, workers: int | None = None) -> None:
        self.batch = batch
        self.workers = VMAF_WORKERS if workers is None else max(1, workers)
        self._ref: list[np.ndarray] = []
        self._out: list[np.ndarray] = []
        self._last_ref: np.ndarray | None = None  # the last reference luma handed to a batch
        self._jobs: deque[tuple[Future, int]] = deque()  # batches being scored, in order, with their sizes
        self._pool: ThreadPoolExecutor | None = None
        self._held = None  # torch.Tensor [1, 6]: adm, SAD to previous, vif x4 of the newest scored frame
        self._sum, self._count = 0.0, 0
        self._frames: list[float] | None = [] if keep_frames else None
        self._shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return self._count + (self._held is not None) + len(self._ref) + sum(n for _, n in self._jobs)

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
            self._submit()
            self._fold(everything=False)

    def _submit(self) -> None:
        if not self._ref:
            return
        args = (self._ref, self._out, self._last_ref)
        self._last_ref, self._ref, self._out = self._ref[-1], [], []
        if self.workers == 1:
            job: Future = Future()
            job.set_result(_batch_features(*args))
        else:
            self._pool = self._pool or ThreadPoolExecutor(self.workers, thread_name_prefix="vmaf")
            job = self._pool.submit(_batch_features, *args)
        self._jobs.append((job, len(args[0])))

    def _fold(self, everything: bool) -> None:
        """Score the batches whose features are in, in order (all of them if ``everything``,
        waiting; else waiting only while more than twice ``workers`` are outstanding)."""
        import torch

        while self._jobs and (everything or self._jobs[0][0].done() or len(self._jobs) > 2 * self.workers):
            feats = self._jobs.popleft()[0].result()
            if self._held is not None:
                feats = torch.cat([self._held, feats])
            final = feats[:-1].clone()
            final[:, 1] = torch.minimum(feats[:-1, 1], feats[1:, 1])  # motion2
            self._held = feats[-1:]
            if len(final):
                with _torch_threads(VMAF_THREADS):
                    self._add(_vmaf_model().svm(final)[:, 0].tolist())
        if everything and self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _add(self, scores: list[float]) -> None:
        self._sum += sum(scores)
        self._count += len(scores)
        if self._frames is not None:
            self._frames.extend(scores)

    def _last(self) -> float:
        with _torch_threads(VMAF_THREADS):
            return float(_vmaf_model().svm(self._held)[0, 0])

    def _settle(self) -> None:
        self._submit()
        self._fold(everything=True)

    def mean(self) -> float | None:
        """Mean VMAF over the pairs fed so far (libvmaf's pooled mean); None before any."""
        self._settle()
        if self._held is None:
            return None
        return (self._sum + self._last()) / (self._count + 1)

    def frames(self) -> np.ndarray:
        """Per-frame VMAF so far (needs ``keep_frames=True``)."""
        if self._frames is None:
            raise ValueError("VmafMeter(keep_frames=True) keeps per-frame scores")
        self._settle()
        return np.array(self._frames + ([self._last()] if self._held is not None else []))


class FrameQuality:
    """Per-frame PSNR and SSIM, and VMAF streamed, of frame pairs fed one at a time: what a
    loopback, the baselines' and the benchmarks report, without holding a video."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.vmaf = VmafMeter()  # constant memory: batches of frames, plus the previous reference

    def update(self, ref: np.ndarray, out: np.ndarray) -> None:
        self.psnr.append(float(psnr_frames(ref[None], out[None])[0]))
        self.ssim.append(float(ssim_frames(ref[None], out[None])[0]))
        self.vmaf.update(ref, out)


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
