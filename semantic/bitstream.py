"""The LGVSC bitstream: a versioned header and independent, CRC-protected segments.

Layout (all integers big-endian)::

    stream header  "LGVS" | version u8 | header length u16 | header | crc32   (also repeated at the end)
    header         width | height | fps num | fps den | frames | keyframes, varints each |
                   backends (tag codes, length-prefixed u8: see ``pack_tags``)
    header, v1-3   width u16 | height u16 | fps num u32 | fps den u32 | frames u32 | keyframes u16 |
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
# 2 added the keyframe track (TRACK) and compact timing (TIMING), 3 the base layer (BASE_TRACK),
# 4 the compact header (varints, backend tags as codes: 83 bytes became 26, which a 459-byte
# stream gives its keyframes); older streams still decode
VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
COMPACT_HEADER_VERSION = 4
SYNC = b"\xa5\x5a"
_HEADER = struct.Struct(">HHIIIH")
_SEGMENT = struct.Struct(">2sBHH")
SEGMENT_PREFIX = _SEGMENT.size  # sync word, type, index, payload length
SEGMENT_OVERHEAD = SEGMENT_PREFIX + 4
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
    TRACK = 7  # payload: a run of keyframes coded as one predictive video track (TrackChunk)
    TIMING = 8  # payload: KEYFRAME_TIMING's content as varint deltas, raw DEFLATE when shorter (pack_timing_v2)
    LAYOUT = 9  # payload: colour layout, Y count u8 | chroma count u8 | Y DC u8, Y ACs i8 | Cb, Cr (DC u8, ACs i8)
    BASE_TRACK = 10  # payload: a layered stream's base layer, a coarser track of every stride-th keyframe (BaseChunk)


@dataclass(frozen=True)
class HeaderFields:
    """A header block's fields as written, unchecked: the one layout StreamHeader packs and
    parses, and what a test or the fuzzer rewrites to forge a CRC-valid header that lies."""

    version: int
    width: int
    height: int
    fps_num: int
    fps_den: int
    frames: int
    keyframes: int
    tag_length: int  # the length byte of the backend tags (a forged one may disagree with ``tags``)
    tags: bytes  # the rest of the header: the backend tags

    def pack(self) -> bytes:
        numbers = (self.width, self.height, self.fps_num, self.fps_den, self.frames, self.keyframes)
        fixed = _varints(list(numbers)) if self.version >= COMPACT_HEADER_VERSION else _HEADER.pack(*numbers)
        body = fixed + bytes([self.tag_length]) + self.tags
        block = MAGIC + bytes([self.version]) + struct.pack(">H", len(body)) + body
        return block + struct.pack(">I", zlib.crc32(block))

    @classmethod
    def unpack_at(cls, data: bytes, pos: int) -> tuple[HeaderFields, int] | None:
        """The block at ``pos`` and the position after it, if its framing and CRC hold (any
        version and values: StreamHeader judges those), else None."""
        if data[pos : pos + 4] != MAGIC or len(data) < pos + 7:
            return None
        (length,) = struct.unpack_from(">H", data, pos + 5)
        end = pos + 7 + length
        if end + 4 > len(data) or length < 7:  # six one-byte varints and the tag length at least
            return None
        if zlib.crc32(data[pos:end]) != struct.unpack_from(">I", data, end)[0]:
            return None
        version, block = data[pos + 4], data[pos + 7 : end]
        try:
            numbers, body = _header_numbers(block, version)
        except (BitstreamError, struct.error):
            return None
        if body >= len(block):
            return None
        return cls(version, *numbers, block[body], block[body + 1 :]), end + 4


def _header_numbers(block: bytes, version: int) -> tuple[list[int], int]:
    """The six numbers at the start of a header block, and where the tag length sits."""
    if version < COMPACT_HEADER_VERSION:
        return list(_HEADER.unpack_from(block, 0)), _HEADER.size
    numbers, pos = [], 0
    for _ in range(6):
        value, pos = _read_varint(block, pos)
        numbers.append(value)
    return numbers, pos


# Backend tags a compact header writes as one byte each (code = position + 1); any other tag
# is written out as 0 | length u8 | ASCII "role=name". Append only: the codes are wire format.
KNOWN_TAGS = ("kf=error-model", "kf=psss", "psss=classical", "psss=none", "img=track-av1", "img=rd",
              "desc=none", "desc=tags")
MAX_TAG_BYTES = 255


def pack_tags(backends: dict[str, str]) -> bytes:
    """Backend tags for a compact header; a tag that would pass ``MAX_TAG_BYTES`` is left out."""
    out = bytearray()
    for role, name in backends.items():
        tag = f"{role}={name}"
        if tag in KNOWN_TAGS:
            item = bytes([KNOWN_TAGS.index(tag) + 1])
        else:
            raw = tag.encode("ascii", "replace")[:MAX_TAG_BYTES - 2]
            item = bytes([0, len(raw)]) + raw
        if len(out) + len(item) <= MAX_TAG_BYTES:
            out += item
    return bytes(out)


def unpack_tags(tags: bytes) -> dict[str, str]:
    """What ``pack_tags`` wrote; a code this version does not know is skipped, a written-out
    tag that runs past the end ends the list."""
    found, pos = [], 0
    while pos < len(tags):
        code, pos = tags[pos], pos + 1
        if code == 0:
            if pos >= len(tags) or pos + 1 + tags[pos] > len(tags):
                break
            found.append(tags[pos + 1 : pos + 1 + tags[pos]].decode("ascii", "replace"))
            pos += 1 + tags[pos]
        elif code <= len(KNOWN_TAGS):
            found.append(KNOWN_TAGS[code - 1])
    return dict(tag.split("=", 1) for tag in found if "=" in tag)


@dataclass(frozen=True)
class StreamHeader:
    width: int
    height: int
    fps: Fraction
    frames: int
    keyframes: int
    backends: dict[str, str] = field(default_factory=dict)

    def pack(self, version: int = VERSION) -> bytes:
        """The header block; an older ``version`` writes what its encoders wrote (tests of old streams)."""
        if version >= COMPACT_HEADER_VERSION:
            tags = pack_tags(self.backends)
        else:
            tags = ";".join(f"{k}={v}" for k, v in self.backends.items()).encode("ascii")[:MAX_TAG_BYTES]
        return HeaderFields(version, self.width, self.height, self.fps.numerator, self.fps.denominator, self.frames,
                            self.keyframes, len(tags), tags).pack()

    @classmethod
    def unpack_at(cls, data: bytes, pos: int) -> tuple[StreamHeader, int] | None:
        """Header starting at ``pos`` and the position after it, or None if absent, corrupt, of
        an unreadable version or beyond the limits."""
        found = HeaderFields.unpack_at(data, pos)
        if found is None:
            return None
        f, end = found
        if f.version not in READABLE_VERSIONS:
            return None
        if not (0 < f.width <= MAX_SIDE and 0 < f.height <= MAX_SIDE and 0 < f.frames <= MAX_FRAMES
                and f.fps_num and f.fps_den):
            return None
        fps = Fraction(f.fps_num, f.fps_den)
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            return None
        tags = f.tags[: f.tag_length]  # a lying tag length reads no further than the block
        if f.version >= COMPACT_HEADER_VERSION:
            backends = unpack_tags(tags)
        else:
            backends = dict(item.split("=", 1) for item in tags.decode("ascii", "replace").split(";") if "=" in item)
        return cls(f.width, f.height, fps, f.frames, f.keyframes, backends), end


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


def segment_prefix_at(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(type, index, payload length) as the segment prefix at ``pos`` states them, unchecked (any
    type value, no CRC), or None where no prefix starts."""
    if len(data) < pos + SEGMENT_PREFIX or data[pos : pos + 2] != SYNC:
        return None
    _, kind, index, length = _SEGMENT.unpack_from(data, pos)
    return kind, index, length


def _segment_at(data: bytes, pos: int) -> tuple[Segment, int] | None:
    prefix = segment_prefix_at(data, pos) if len(data) >= pos + SEGMENT_OVERHEAD else None
    if prefix is None:
        return None
    kind, index, length = prefix
    end = pos + SEGMENT_PREFIX + length
    if end + 4 > len(data) or kind not in SegmentType._value2member_map_:
        return None
    if zlib.crc32(data[pos:end]) != struct.unpack_from(">I", data, end)[0]:
        return None
    return Segment(SegmentType(kind), index, data[pos + SEGMENT_PREFIX : end]), end + 4


TIMING_KINDS = (SegmentType.TIMING, SegmentType.KEYFRAME_TIMING)  # where a stream holds both, the compact one


def first_segment(segments: list[Segment], *kinds: SegmentType) -> Segment | None:
    """The one segment of ``kinds`` that every reader (decoder, inspect, contact sheet) uses: of
    the first kind present, the first in stream order. Another copy under another index, stale
    or forged, is ignored by all of them alike."""
    for kind in kinds:
        found = next((seg for seg in segments if seg.type == kind), None)
        if found is not None:
            return found
    return None


def _varints(values: list[int]) -> bytes:
    out = bytearray()
    for v in values:
        while v >= 0x80:
            out.append(0x80 | (v & 0x7F))
            v >>= 7
        out.append(v)
    return bytes(out)


MAX_VARINT_BYTES = 5  # 35 bits: more than any count or frame index here


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise BitstreamError("varint runs past the end of its payload")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos + i + 1
    raise BitstreamError("varint longer than 5 bytes")


TIMING_RAW, TIMING_DEFLATE = 0, 1
MAX_TIMING_VALUES = 1 << 20  # keyframes plus cuts a timing payload may claim (its inflated size is bounded by it)


def pack_timing_v2(keyframes: list[int], cuts: list[int]) -> bytes:
    """Keyframe and cut frames as varint deltas: a keyframe on every frame costs one byte each,
    and DEFLATE shrinks a regular spacing to a few bytes (``pack_timing`` spends 4 per frame)."""
    def deltas(values: list[int]) -> list[int]:
        out = [b - a for a, b in zip([0, *values], values, strict=False)]
        if any(d < 0 for d in out):
            raise BitstreamError("timing frames must be non-negative and ascending")
        return out

    body = _varints([len(keyframes), *deltas(keyframes), len(cuts), *deltas(cuts)])
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = packed.compress(body) + packed.flush()
    return bytes([TIMING_DEFLATE]) + deflated if len(deflated) < len(body) else bytes([TIMING_RAW]) + body


def unpack_timing_v2(payload: bytes) -> tuple[list[int], list[int]]:
    """(keyframe frames, cut frames) from ``pack_timing_v2``; raises BitstreamError when malformed."""
    if not payload or payload[0] not in (TIMING_RAW, TIMING_DEFLATE):
        raise BitstreamError("malformed timing segment")
    body = payload[1:]
    if payload[0] == TIMING_DEFLATE:
        inflate = zlib.decompressobj(-15)
        try:
            body = inflate.decompress(body, MAX_VARINT_BYTES * MAX_TIMING_VALUES)
        except zlib.error:
            raise BitstreamError("timing segment does not inflate") from None
    pos, lists = 0, []
    for _ in range(2):
        count, pos = _read_varint(body, pos)
        if count > MAX_TIMING_VALUES:
            raise BitstreamError("timing segment claims too many frames")
        values, frame = [], 0
        for k in range(count):
            delta, pos = _read_varint(body, pos)
            if k and not delta and not lists:  # keyframes strictly ascend (unit i is keyframe i)
                raise BitstreamError("timing segment repeats a keyframe frame")
            frame += delta
            values.append(frame)
        lists.append(values)
    return lists[0], lists[1]


def timing_of(segment: Segment, frames: int | None = None) -> tuple[list[int], list[int]]:
    """(keyframe frames, cut frames) of a KEYFRAME_TIMING or TIMING segment; BitstreamError if
    malformed, or (given the header's ``frames``) if it places a keyframe past the video: a forged
    plan of a million keyframes would otherwise cost the renderer time per entry."""
    keyframes, cuts = (unpack_timing_v2 if segment.type == SegmentType.TIMING else unpack_timing)(segment.payload)
    if frames is not None and (len(keyframes) > frames or any(not 0 <= t < frames for t in keyframes)
                               or len(cuts) > frames):
        raise BitstreamError("timing segment places keyframes outside the video")
    return keyframes, cuts


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


@dataclass(frozen=True)
class TrackChunk:
    """A TRACK payload: consecutive units of the keyframe track, keyframe ``first`` (an index
    into the timing segment's keyframe list) onwards. Layout: first u16 | count u8 | each unit's
    length as a varint | the units. A unit is one AV1 temporal unit without its temporal
    delimiter: exactly one shown keyframe (``semantic.track``)."""

    first: int
    units: tuple[bytes, ...]

    def pack(self) -> bytes:
        if not 0 < len(self.units) <= 0xFF:
            raise BitstreamError(f"a track chunk holds 1 to 255 units, not {len(self.units)}")
        return struct.pack(">HB", self.first, len(self.units)) + _varints([len(u) for u in self.units]) + \
            b"".join(self.units)

    @classmethod
    def unpack(cls, payload: bytes) -> TrackChunk:
        if len(payload) < 3:
            raise BitstreamError(f"track chunk of {len(payload)} bytes is shorter than its 3-byte prefix")
        first, count = struct.unpack_from(">HB", payload)
        pos, lengths = 3, []
        for _ in range(count):
            length, pos = _read_varint(payload, pos)
            lengths.append(length)
        if pos + sum(lengths) != len(payload) or not count:
            raise BitstreamError("track chunk's unit lengths do not add up to its payload")
        units = []
        for length in lengths:
            units.append(payload[pos : pos + length])
            pos += length
        return cls(first, tuple(units))

    @staticmethod
    def overhead(units: list[bytes]) -> int:
        """Bytes a chunk adds to its units (prefix and lengths; not the segment's own)."""
        return 3 + len(_varints([len(u) for u in units]))


@dataclass(frozen=True)
class BaseChunk:
    """A BASE_TRACK payload: stride u8 | a TrackChunk whose unit i is keyframe ``i x stride``
    (an index into the timing segment's keyframe list). The base layer is a second, coarser
    track of every stride-th keyframe: it travels on a more robust MCS than the keyframe track,
    and the decoder uses it for the keyframes the track lost."""

    stride: int
    chunk: TrackChunk

    def pack(self) -> bytes:
        if not 0 < self.stride <= 0xFF:
            raise BitstreamError(f"a base layer's stride is 1 to 255, not {self.stride}")
        return bytes([self.stride]) + self.chunk.pack()

    @classmethod
    def unpack(cls, payload: bytes) -> BaseChunk:
        if not payload or not payload[0]:
            raise BitstreamError("base layer chunk without a stride")
        return cls(payload[0], TrackChunk.unpack(payload[1:]))


def pack_layout(y: tuple[int, ...], cb: tuple[int, ...], cr: tuple[int, ...]) -> bytes:
    """A colour layout's quantized coefficients (``semantic.colour_layout``), DC first per channel."""
    if not (y and cb and len(cb) == len(cr)):
        raise BitstreamError("a colour layout needs a DC per channel")
    signed = lambda values: bytes([values[0]]) + struct.pack(f">{len(values) - 1}b", *values[1:])  # noqa: E731
    return bytes([len(y), len(cb)]) + signed(y) + signed(cb) + signed(cr)


def unpack_layout(payload: bytes) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    if len(payload) < 2 or not payload[0] or not payload[1] or len(payload) != 2 + payload[0] + 2 * payload[1]:
        raise BitstreamError("malformed colour layout segment")
    out, pos = [], 2
    for n in (payload[0], payload[1], payload[1]):
        out.append((payload[pos], *struct.unpack_from(f">{n - 1}b", payload, pos + 1)))
        pos += n
    return out[0], out[1], out[2]


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
