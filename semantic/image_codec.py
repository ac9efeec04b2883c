"""Keyframe images at a byte budget: the image codec (WebP or AVIF through Pillow) and the
resolution are chosen per keyframe by rate-distortion: whichever reconstructs the frame best
within the budget (tools/bench_codec.py measures the codecs against each other). A lossy WebP
travels as its bare VP8 key frame (``strip_riff``), 20 bytes less than the file."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, features

MIN_SIDE = 16  # below this a keyframe carries nothing useful


@dataclass(frozen=True)
class CodedImage:
    data: bytes
    width: int  # coded resolution (the decoder scales back to the stream's size)
    height: int
    quality: int
    codec: str = "webp"
    psnr_db: float = 0.0  # of the reconstruction at full size, as the encoder measured it


CODECS = ("webp", "avif") if features.check("avif") else ("webp",)


RIFF_VP8 = b"WEBPVP8 "  # a simple lossy WebP: RIFF size WEBP, then one "VP8 " chunk
VP8_START_CODE = b"\x9d\x01\x2a"  # bytes 3..5 of every VP8 key frame


def strip_riff(webp: bytes) -> bytes:
    """The VP8 key frame inside a simple lossy WebP, without the 20-byte RIFF wrapper that says
    nothing the VP8 frame does not (its own header carries the size): at the 100-300 B of a
    keyframe at CBR 1e-4 to 1e-3 those bytes are 7-20 % of the image. Other WebPs pass whole."""
    if webp[:4] == b"RIFF" and webp[8:16] == RIFF_VP8 and webp[16 + 4 + 3 : 16 + 4 + 6] == VP8_START_CODE:
        return webp[20 : 20 + int.from_bytes(webp[16:20], "little")]
    return webp


def wrap_riff(data: bytes) -> bytes:
    """A bare VP8 key frame (``strip_riff``) back into the WebP file Pillow reads; anything else
    (a whole WebP, AVIF) unchanged."""
    if data[3:6] != VP8_START_CODE:
        return data
    pad = b"\0" * (len(data) & 1)  # RIFF chunks are padded to even length
    return (b"RIFF" + (12 + len(data) + len(pad)).to_bytes(4, "little") + RIFF_VP8
            + len(data).to_bytes(4, "little") + data + pad)


def _save(img: Image.Image, quality: int, codec: str) -> bytes:
    buf = io.BytesIO()
    if codec == "webp":
        img.save(buf, format="WEBP", quality=quality, method=4)  # 6 is ~2x slower for ~3 % smaller
        return strip_riff(buf.getvalue())
    img.save(buf, format="AVIF", quality=quality, speed=8)
    return buf.getvalue()


def _best_quality(img: Image.Image, max_bytes: int, codec: str = "webp") -> tuple[bytes, int] | None:
    """Highest quality (binary search, 0..100) whose size fits, or None if even 0 does not."""
    lo, hi, best = 0, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = _save(img, mid, codec)
        if len(data) <= max_bytes:
            best, lo = (data, mid), mid + 1
        else:
            hi = mid - 1
    return best


def _scaled(full: Image.Image, scale: float) -> Image.Image:
    w, h = full.size
    if scale >= 1.0:
        return full
    return full.resize((max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale))), Image.LANCZOS)


def encode_image(rgb: np.ndarray, max_bytes: int, min_quality: int = 30,
                 codecs: tuple[str, ...] = CODECS) -> CodedImage:
    """The best reconstruction within ``max_bytes`` over ``codecs``; each codec gets the largest
    resolution at which ``min_quality`` fits, then the best quality there."""
    best = None
    for codec in codecs:
        coded = _encode_with(rgb, max_bytes, min_quality, codec)
        if coded is not None and (best is None or coded.psnr_db > best.psnr_db):
            best = coded
    best = best or _thumbnail(rgb, max_bytes)
    if best is None:
        h, w = rgb.shape[:2]
        raise ValueError(f"a {w}x{h} keyframe cannot fit {max_bytes} bytes at any size")
    return best


THUMBNAIL_SIDES = (12, 8, 4, 2, 1)  # long side of the last-resort thumbnails


def _thumbnail(rgb: np.ndarray, max_bytes: int) -> CodedImage | None:
    """Below ``MIN_SIDE`` a keyframe is only its colour layout, but that still beats none: busy
    content (noise, foliage) can need more than the floor's bytes even at 16 pixels."""
    h, w = rgb.shape[:2]
    for side in THUMBNAIL_SIDES:
        size = (max(1, round(side * w / max(w, h))), max(1, round(side * h / max(w, h))))
        small = Image.fromarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
        found = _best_quality(small, max_bytes)
        if found is not None:
            return CodedImage(found[0], size[0], size[1], found[1])
    return None


MIN_BITS_PER_PIXEL = 0.15  # no codec here codes a real frame at min_quality below this: caps the scale


def _encode_with(rgb: np.ndarray, max_bytes: int, min_quality: int, codec: str) -> CodedImage | None:
    """At low budgets a smaller, cleaner image beats a full-size blocky one. The scale is found by
    bisection (size grows with scale) below a cap the budget implies, then quality by bisection."""
    h, w = rgb.shape[:2]
    cap = min(1.0, float(np.sqrt(max_bytes * 8 / MIN_BITS_PER_PIXEL / (w * h))))
    if cap < 1.0:  # work from a copy at the cap: every probe below is then cheap
        rgb = cv2.resize(rgb, (max(MIN_SIDE, round(w * cap)), max(MIN_SIDE, round(h * cap))),
                         interpolation=cv2.INTER_AREA)
    full = Image.fromarray(rgb)
    lo, hi = MIN_SIDE / min(full.size), 1.0
    if len(_save(full, min_quality, codec)) > max_bytes:
        for _ in range(6):
            mid = float(np.sqrt(lo * hi))  # geometric: the size-vs-scale curve is a power law
            if len(_save(_scaled(full, mid), min_quality, codec)) <= max_bytes:
                lo = mid
            else:
                hi = mid
        scale = lo
    else:
        scale = hi
    img = _scaled(full, scale)
    found = _best_quality(img, max_bytes, codec)
    if found is None:
        return None
    back = decode_image(found[0], full.width, full.height).astype(np.float64)
    mse = float(np.mean((back - rgb) ** 2))  # at the working resolution: ranks codecs, cheaply
    return CodedImage(found[0], img.width, img.height, found[1], codec, 10 * np.log10(255**2 / max(mse, 1e-9)))


def decode_image(data: bytes, width: int, height: int) -> np.ndarray:
    """Keyframe bytes (bare VP8, WebP or AVIF) -> RGB at the stream's resolution. Raises
    ValueError on corrupt data."""
    try:
        with warnings.catch_warnings():  # the size is checked just below, before any pixel is decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(wrap_riff(data)))
        with opened as img:
            if img.width > max(width, MIN_SIDE) or img.height > max(height, MIN_SIDE):
                # the encoder never codes a keyframe larger than the video: a lie, and a way to
                # make the decoder allocate far more than the stream's size
                raise ValueError(f"keyframe of {img.width}x{img.height} in a {width}x{height} video")
            img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BICUBIC)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"corrupt keyframe image: {exc}") from None
