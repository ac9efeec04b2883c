"""LGVSC bitstream -> video of exactly the source frame count, through a decoder backend.

Backends sit in a small registry (CompressAI style). ``interp`` is the CPU default: it places
every received keyframe at its frame index and fills the frames between neighbouring received
keyframes by cross-fading; before the first and after the last it holds. Lost keyframes simply
widen an interval; with none at all the output is mid-grey at the right size, length and rate.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from semantic.bitstream import BitstreamError, ParsedStream, SegmentType, StreamHeader, parse_stream, unpack_timing
from semantic.image_codec import decode_image


class DecoderError(ValueError):
    pass


@dataclass
class Keyframe:
    frame: int
    image: np.ndarray  # (H, W, 3) uint8 at the stream's resolution


@dataclass
class DecodedVideo:
    frames: np.ndarray
    fps: Fraction
    header: StreamHeader
    keyframes_expected: list[int]  # from the timing segment (may be empty if it was lost)
    keyframes_received: list[int]
    backend: str
    notes: list[str] = field(default_factory=list)


def received_keyframes(parsed: ParsedStream, header: StreamHeader) -> tuple[list[Keyframe], list[str]]:
    keyframes, notes = [], []
    for seg in parsed.of_type(SegmentType.KEYFRAME_IMAGE):
        if len(seg.payload) < 8:
            notes.append(f"keyframe segment {seg.index} too short")
            continue
        frame, _, _ = struct.unpack_from(">IHH", seg.payload)
        if frame >= header.frames:
            notes.append(f"keyframe segment {seg.index} points past the last frame")
            continue
        try:
            image = decode_image(seg.payload[8:], header.width, header.height)
        except ValueError as exc:
            notes.append(f"keyframe segment {seg.index}: {exc}")
            continue
        keyframes.append(Keyframe(frame, image))
    keyframes.sort(key=lambda k: k.frame)
    return keyframes, notes


def shot_ranges(cuts: list[int], total: int) -> list[tuple[int, int]]:
    starts = [0] + sorted({c for c in cuts if 0 < c < total})
    return list(zip(starts, [s - 1 for s in starts[1:]] + [total - 1], strict=True))


def interp_frames(keyframes: list[Keyframe], header: StreamHeader, cuts: list[int]) -> np.ndarray:
    """Per shot: cross-fade between its keyframes, hold before the first and after the last.

    A shot whose keyframes were all lost shows the nearest received keyframe; with none at all
    the output is mid-grey. Never blends across a cut.
    """
    out = np.empty((header.frames, header.height, header.width, 3), dtype=np.uint8)
    if not keyframes:
        out.fill(128)
        return out
    for lo, hi in shot_ranges(cuts, header.frames):
        inside = [k for k in keyframes if lo <= k.frame <= hi]
        if not inside:
            nearest = min(keyframes, key=lambda k: min(abs(k.frame - lo), abs(k.frame - hi)))
            out[lo : hi + 1] = nearest.image
            continue
        out[lo : inside[0].frame + 1] = inside[0].image
        out[inside[-1].frame : hi + 1] = inside[-1].image
        for a, b in zip(inside[:-1], inside[1:], strict=True):
            fa, fb = a.image.astype(np.float32), b.image.astype(np.float32)
            for t in range(a.frame + 1, b.frame):
                alpha = (t - a.frame) / (b.frame - a.frame)
                out[t] = np.clip((1 - alpha) * fa + alpha * fb + 0.5, 0, 255).astype(np.uint8)
            out[b.frame] = b.image
    return out


Backend = Callable[[list[Keyframe], StreamHeader, list[int]], np.ndarray]
DECODERS: dict[str, Backend] = {"interp": interp_frames}


def get_decoder(name: str) -> Backend:
    if name in DECODERS:
        return DECODERS[name]
    if name.startswith("diffusers:"):
        raise DecoderError("the diffusers decoder backend is not built yet (see the decoder issue)")
    raise DecoderError(f"unknown decoder {name!r}; known: {', '.join(DECODERS)}")


def decode_bitstream(data: bytes, decoder: str = "interp") -> DecodedVideo:
    backend = get_decoder(decoder)
    parsed = parse_stream(data)
    if parsed.header is None:
        raise DecoderError("bitstream has no intact stream header (both copies lost or not an LGVSC file)")
    header = parsed.header
    keyframes, notes = received_keyframes(parsed, header)
    expected, cuts = [], []
    for seg in parsed.of_type(SegmentType.KEYFRAME_TIMING)[:1]:
        try:
            expected, cuts = unpack_timing(seg.payload)
        except BitstreamError as exc:
            notes.append(str(exc))
    if not expected and keyframes:
        notes.append("timing segment lost: shot cuts unknown, blending across them")
    if parsed.corrupt_regions:
        notes.append(f"{parsed.corrupt_regions} damaged or missing stretch(es) skipped")
    frames = backend(keyframes, header, cuts)
    return DecodedVideo(frames, header.fps, header, expected, [k.frame for k in keyframes], decoder, notes)
