"""Keyframe images at a byte budget: WebP through Pillow, resolution scaled as part of the budget."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

MIN_SIDE = 16  # below this a keyframe carries nothing useful


@dataclass(frozen=True)
class CodedImage:
    data: bytes
    width: int  # coded resolution (the decoder scales back to the stream's size)
    height: int
    quality: int


def _webp(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=6)
    return buf.getvalue()


def _best_quality(img: Image.Image, max_bytes: int) -> tuple[bytes, int] | None:
    """Highest quality (binary search, 0..100) whose size fits, or None if even 0 does not."""
    lo, hi, best = 0, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = _webp(img, mid)
        if len(data) <= max_bytes:
            best, lo = (data, mid), mid + 1
        else:
            hi = mid - 1
    return best


def encode_image(rgb: np.ndarray, max_bytes: int, min_quality: int = 30) -> CodedImage:
    """Largest resolution, then highest quality, that fits ``max_bytes``.

    Scales down in steps of 0.8 while the best fitting quality stays below ``min_quality``:
    at low budgets a smaller sharp image beats a full-size blocky one.
    """
    h, w = rgb.shape[:2]
    full = Image.fromarray(rgb)
    scale, fallback = 1.0, None
    while True:
        size = (max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale)))
        img = full if scale == 1.0 else full.resize(size, Image.LANCZOS)
        found = _best_quality(img, max_bytes)
        if found is not None:
            coded = CodedImage(found[0], img.width, img.height, found[1])
            if found[1] >= min_quality:
                return coded
            fallback = fallback or coded
        if min(size) <= MIN_SIDE:
            if fallback is not None:
                return fallback
            if found is None:
                raise ValueError(f"a {w}x{h} keyframe cannot fit {max_bytes} bytes at any size")
            return coded
        scale *= 0.8


def decode_image(data: bytes, width: int, height: int) -> np.ndarray:
    """WebP bytes -> RGB at the stream's resolution. Raises ValueError on corrupt data."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BICUBIC)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"corrupt keyframe image: {exc}") from None
