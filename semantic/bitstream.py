"""The LGVSC bitstream: a versioned header and independent, CRC-protected segments.

Layout (all integers big-endian)::

    stream header  "LGVS" | version u8 | header length u16 | header | crc32   (also repeated at the end)
    header         width u16 | height u16 | fps num u32 | fps den u32 | frames u32 | keyframes u16 |
                   backends (ASCII "role=name;..." up to 255 bytes, length-prefixed u8)
    segment        0xA5 0x5A | type u8 | index u16 | length u16 | payload | crc32

Segments parse independently: the parser scans for the sync word and keeps every segment whose
CRC holds, so a lost PDU (zero-filled by the link) costs only the segments it touched. The header
sits at both ends so either copy suffices.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction

import numpy as np

MAGIC = b"LGVS"
VERSION = 1
SYNC = b"\xa5\x5a"
_HEADER = struct.Struct(">HHIIIH")
_SEGMENT = struct.Struct(">2sBHH")
SEGMENT_OVERHEAD = _SEGMENT.size + 4
MAX_SEGMENT_PAYLOAD = 0xFFFF
# What a stream header may claim; beyond these it is treated as damaged (documented in README).
MAX_SIDE = 8192  # 8K UHD is 7680 x 4320
MAX_FRAMES = 1 << 24  # 155 hours at 30 fps
FPS_RANGE = (Fraction(1, 1000), Fraction(1000))


class BitstreamError(ValueError):
    pass


class SegmentType(IntEnum):
    KEYFRAME_IMAGE = 1  # payload: frame index u32 | coded width u16 | height u16 | image (bare VP8, WebP or AVIF)
    KEYFRAME_TIMING = 2  # payload: keyframe count u16 | keyframe frame indices | shot cut frames, u32 each
    TEXT = 3  # payload: description of keyframe interval ``index``, UTF-8 in raw DEFLATE (semantic.text_codec)
    MOTION = 4  # payload: per keyframe interval, mean motion in pixels/frame, float16 each
    PSSS = 5  # payload: per keyframe, P(Yes) against the previous keyframe, u8 (x 255)
    PAN = 6  # payload: per keyframe interval, dominant motion dx, dy in pixels/frame, float16 pairs


@dataclass(frozen=True)
class StreamHeader:
    width: int
    height: int
    fps: Fraction
    frames: int
    keyframes: int
    backends: dict[str, str] = field(default_factory=dict)

    def pack(self) -> bytes:
        tags = ";".join(f"{k}={v}" for k, v in self.backends.items()).encode("ascii")[:255]
        body = _HEADER.pack(self.width, self.height, self.fps.numerator, self.fps.denominator,
                            self.frames, self.keyframes) + bytes([len(tags)]) + tags
        block = MAGIC + bytes([VERSION]) + struct.pack(">H", len(body)) + body
        return block + struct.pack(">I", zlib.crc32(block))

    @classmethod
    def unpack_at(cls, data: bytes, pos: int) -> tuple[StreamHeader, int] | None:
        """Header starting at ``pos`` and the position after it, or None if absent or corrupt."""
        if data[pos : pos + 4] != MAGIC or len(data) < pos + 7:
            return None
        version = data[pos + 4]
        (length,) = struct.unpack_from(">H", data, pos + 5)
        end = pos + 7 + length
        if version != VERSION or end + 4 > len(data) or length < _HEADER.size + 1:
            return None
        if zlib.crc32(data[pos:end]) != struct.unpack_from(">I", data, end)[0]:
            return None
        w, h, num, den, frames, keyframes = _HEADER.unpack_from(data, pos + 7)
        tag_len = data[pos + 7 + _HEADER.size]
        tags = data[pos + 8 + _HEADER.size : pos + 8 + _HEADER.size + tag_len].decode("ascii", "replace")
        backends = dict(item.split("=", 1) for item in tags.split(";") if "=" in item)
        if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE and 0 < frames <= MAX_FRAMES and num and den):
            return None
        if not FPS_RANGE[0] <= Fraction(num, den) <= FPS_RANGE[1]:
            return None
        return cls(w, h, Fraction(num, den), frames, keyframes, backends), end + 4


@dataclass(frozen=True)
class Segment:
    type: SegmentType
    index: int
    payload: bytes

    def pack(self) -> bytes:
        if len(self.payload) > MAX_SEGMENT_PAYLOAD:
            raise BitstreamError(f"segment payload of {len(self.payload)} bytes is too long")
        body = _SEGMENT.pack(SYNC, int(self.type), self.index, len(self.payload)) + self.payload
        return body + struct.pack(">I", zlib.crc32(body))


@dataclass
class ParsedStream:
    header: StreamHeader | None
    segments: list[Segment]
    corrupt_regions: int  # stretches of bytes that held no valid segment (lost or damaged data)
    consumed: int = 0  # bytes up to the end of the last intact header or segment

    def of_type(self, kind: SegmentType) -> list[Segment]:
        return [s for s in self.segments if s.type == kind]


def pack_stream(header: StreamHeader, segments: list[Segment], trailing_header: bool = True) -> bytes:
    head = header.pack()
    return head + b"".join(s.pack() for s in segments) + (head if trailing_header else b"")


def parse_stream(data: bytes) -> ParsedStream:
    """Every intact header copy and segment in ``data``; never raises on damaged input."""
    header: StreamHeader | None = None
    segments: list[Segment] = []
    seen: set[tuple[int, int]] = set()
    corrupt, pos, in_gap, consumed = 0, 0, False, 0
    while pos < len(data):
        found = StreamHeader.unpack_at(data, pos) if data[pos : pos + 1] == MAGIC[:1] else None
        if found is not None:
            header = header or found[0]
            pos, in_gap = found[1], False
            consumed = pos
            continue
        seg = _segment_at(data, pos)
        if seg is not None:
            segment, pos = seg
            if (segment.type, segment.index) not in seen:  # repeated copies count once
                seen.add((segment.type, segment.index))
                segments.append(segment)
            in_gap = False
            consumed = pos
            continue
        if not in_gap:
            corrupt += 1
            in_gap = True
        nxt = min((i for i in (data.find(SYNC, pos + 1), data.find(MAGIC, pos + 1)) if i >= 0), default=len(data))
        pos = nxt
    return ParsedStream(header, segments, corrupt, consumed)


def _segment_at(data: bytes, pos: int) -> tuple[Segment, int] | None:
    if len(data) < pos + SEGMENT_OVERHEAD or data[pos : pos + 2] != SYNC:
        return None
    _, kind, index, length = _SEGMENT.unpack_from(data, pos)
    end = pos + _SEGMENT.size + length
    if end + 4 > len(data) or kind not in SegmentType._value2member_map_:
        return None
    if zlib.crc32(data[pos:end]) != struct.unpack_from(">I", data, end)[0]:
        return None
    return Segment(SegmentType(kind), index, data[pos + _SEGMENT.size : end]), end + 4


def pack_timing(keyframes: list[int], cuts: list[int]) -> bytes:
    return struct.pack(f">H{len(keyframes)}I{len(cuts)}I", len(keyframes), *keyframes, *cuts)


def unpack_timing(payload: bytes) -> tuple[list[int], list[int]]:
    """(keyframe frames, cut frames); raises BitstreamError on a malformed payload."""
    if len(payload) < 2 or (len(payload) - 2) % 4:
        raise BitstreamError("malformed timing segment")
    (count,) = struct.unpack_from(">H", payload)
    values = list(struct.unpack_from(f">{(len(payload) - 2) // 4}I", payload, 2))
    if count > len(values):
        raise BitstreamError("timing segment lists more keyframes than it holds")
    return values[:count], values[count:]


# Segment payloads: every layout is packed and parsed here and nowhere else. Parsers of float
# and byte arrays are lenient (a trailing partial value is dropped), as the decoder always was:
# a CRC-valid segment never makes one tool fail where another reads it.

_KEYFRAME_PREFIX = struct.Struct(">IHH")
KEYFRAME_PREFIX = _KEYFRAME_PREFIX.size


@dataclass(frozen=True)
class KeyframeImage:
    """A KEYFRAME_IMAGE payload: source frame index, coded size, image bytes."""

    frame: int
    width: int
    height: int
    data: bytes

    def pack(self) -> bytes:
        return _KEYFRAME_PREFIX.pack(self.frame, self.width, self.height) + self.data

    @classmethod
    def unpack(cls, payload: bytes) -> KeyframeImage:
        if len(payload) < KEYFRAME_PREFIX:
            raise BitstreamError(f"keyframe payload of {len(payload)} bytes is shorter than its {KEYFRAME_PREFIX}-byte "
                                 "prefix")
        frame, width, height = _KEYFRAME_PREFIX.unpack_from(payload)
        return cls(frame, width, height, payload[KEYFRAME_PREFIX:])


def pack_motion(magnitudes: list[float]) -> bytes:
    return np.asarray(magnitudes, dtype=">f2").tobytes()


def unpack_motion(payload: bytes) -> list[float]:
    """Mean motion per keyframe interval (pixels/frame)."""
    return [float(v) for v in np.frombuffer(payload[: len(payload) // 2 * 2], dtype=">f2")]


def pack_pan(pan: list[tuple[float, float]]) -> bytes:
    return np.asarray(pan, dtype=">f2").reshape(-1).tobytes()


def unpack_pan(payload: bytes) -> list[tuple[float, float]]:
    """Dominant motion (dx, dy) per keyframe interval (pixels/frame)."""
    pairs = np.frombuffer(payload[: len(payload) // 4 * 4], dtype=">f2").reshape(-1, 2)
    return [(float(dx), float(dy)) for dx, dy in pairs]


def pack_psss(p_previous: list[float]) -> bytes:
    return bytes(round(255 * min(max(p, 0.0), 1.0)) for p in p_previous)


def unpack_psss(payload: bytes) -> list[float]:
    """Each keyframe's P(Yes) against the previous keyframe."""
    return [b / 255 for b in payload]
