"""The smallest picture a stream can carry: a colour layout (after MPEG-7's Colour Layout
Descriptor), the few lowest DCT coefficients of the video's mean 8x8 picture in YCbCr. It is
what a budget too small for any keyframe still buys: about 12 bytes give the scene's colours
and their rough arrangement, which beats mid-grey by several dB."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

GRID = 8
DC_STEP, AC_STEP = 8.0, 4.0  # quantizer steps: the DC of an 8x8 DCT spans 0..2040, ACs far less
# The zigzag scan of an 8x8 block: low frequencies first.
ZIGZAG = sorted(((y, x) for y in range(GRID) for x in range(GRID)),
                key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 else p[0]))
MAX_COEFFICIENTS = GRID * GRID


@dataclass(frozen=True)
class ColourLayout:
    """Quantized zigzag DCT coefficients per channel (Y, Cb, Cr), DC first."""

    y: tuple[int, ...]
    cb: tuple[int, ...]
    cr: tuple[int, ...]

    @classmethod
    def of_frames(cls, frames: Iterable[np.ndarray], luma: int = 6, chroma: int = 3) -> ColourLayout:
        """The layout of the frames' mean picture (the constant picture closest to all of them)."""
        total, count = np.zeros((GRID, GRID, 3)), 0
        for frame in frames:
            total += cv2.resize(frame, (GRID, GRID), interpolation=cv2.INTER_AREA)
            count += 1
        if not count:
            raise ValueError("a colour layout needs at least one frame")
        ycc = cv2.cvtColor(np.clip(total / count + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2YCrCb)
        y, cr, cb = (cv2.dct(ycc[..., c].astype(np.float32)) for c in range(3))
        return cls(_quantize(y, luma), _quantize(cb, chroma), _quantize(cr, chroma))

    def image(self, width: int, height: int) -> np.ndarray:
        """The layout as an RGB picture of the stream's size (smoothly interpolated)."""
        planes = [cv2.idct(_dequantize(c)) for c in (self.y, self.cr, self.cb)]
        ycc = np.clip(np.stack(planes, axis=-1) + 0.5, 0, 255).astype(np.uint8)
        rgb = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)


def _quantize(block: np.ndarray, keep: int) -> tuple[int, ...]:
    values = [block[p] for p in ZIGZAG[: min(max(keep, 1), MAX_COEFFICIENTS)]]
    dc = int(np.clip(round(values[0] / DC_STEP), 0, 255))
    return (dc, *(int(np.clip(round(v / AC_STEP), -128, 127)) for v in values[1:]))


def _dequantize(coefficients: tuple[int, ...]) -> np.ndarray:
    block = np.zeros((GRID, GRID), dtype=np.float32)
    for i, value in enumerate(coefficients[:MAX_COEFFICIENTS]):
        block[ZIGZAG[i]] = value * (DC_STEP if i == 0 else AC_STEP)
    return block
