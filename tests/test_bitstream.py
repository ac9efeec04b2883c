"""Every segment layout and the stream header round-trip through semantic.bitstream's one packer
and one parser per layout, and the parsers refuse or bound what does not fit."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import pytest

from semantic.bitstream import (
    SEGMENT_PREFIX,
    TIMING_KINDS,
    VERSION,
    BaseChunk,
    BitstreamError,
    HeaderFields,
    KeyframeImage,
    Segment,
    SegmentType,
    StreamHeader,
    TrackChunk,
    first_segment,
    pack_layout,
    pack_motion,
    pack_pan,
    pack_psss,
    pack_stream,
    pack_tags,
    pack_timing,
    pack_timing_v2,
    parse_stream,
    segment_prefix_at,
    timing_of,
    unpack_layout,
    unpack_motion,
    unpack_pan,
    unpack_psss,
    unpack_tags,
    unpack_timing,
    unpack_timing_v2,
)
from semantic.decoder import side_info
from semantic.inspection import inspect_stream
from semantic.text_codec import compress_text, decompress_text

HEADER = StreamHeader(640, 360, Fraction(30000, 1001), 300, 4, {"keyframes": "psss", "images": "track"})


def _one_of_each() -> list[Segment]:
    """A segment of every type, each from its packer."""
    payloads = {
        SegmentType.KEYFRAME_IMAGE: KeyframeImage(17, 96, 54, b"\x9d\x01\x2a image").pack(),
        SegmentType.KEYFRAME_TIMING: pack_timing([0, 17, 299], [120]),
        SegmentType.TEXT: compress_text("a cyclist rides past"),
        SegmentType.MOTION: pack_motion([0.5, 3.25]),
        SegmentType.PSSS: pack_psss([1.0, 0.2, 0.0]),
        SegmentType.PAN: pack_pan([(1.5, -2.0), (0.0, 0.25)]),
        SegmentType.TRACK: TrackChunk(1, (b"unit one", b"unit two")).pack(),
        SegmentType.TIMING: pack_timing_v2([0, 17, 299], [120]),
        SegmentType.BASE_TRACK: BaseChunk(3, TrackChunk(0, (b"base unit",))).pack(),
        SegmentType.LAYOUT: pack_layout((130, -3, 4), (120, 1), (128, -1)),
    }
    assert set(payloads) == set(SegmentType)  # a new segment type needs its round trip here
    return [Segment(kind, i, payload) for i, (kind, payload) in enumerate(payloads.items())]


def test_every_segment_type_round_trips_through_a_stream() -> None:
    segments = _one_of_each()
    parsed = parse_stream(pack_stream(HEADER, segments))
    assert parsed.header == HEADER and parsed.segments == segments and parsed.corrupt_regions == 0
    by_type = {seg.type: seg.payload for seg in parsed.segments}
    assert KeyframeImage.unpack(by_type[SegmentType.KEYFRAME_IMAGE]) == KeyframeImage(17, 96, 54, b"\x9d\x01\x2a image")
    assert unpack_timing(by_type[SegmentType.KEYFRAME_TIMING]) == ([0, 17, 299], [120])
    assert unpack_timing_v2(by_type[SegmentType.TIMING]) == ([0, 17, 299], [120])
    assert decompress_text(by_type[SegmentType.TEXT]) == "a cyclist rides past"
    assert unpack_motion(by_type[SegmentType.MOTION]) == [0.5, 3.25]  # exact in float16
    assert unpack_pan(by_type[SegmentType.PAN]) == [(1.5, -2.0), (0.0, 0.25)]
    assert unpack_psss(by_type[SegmentType.PSSS]) == [1.0, 51 / 255, 0.0]
    assert TrackChunk.unpack(by_type[SegmentType.TRACK]) == TrackChunk(1, (b"unit one", b"unit two"))
    assert unpack_layout(by_type[SegmentType.LAYOUT]) == ((130, -3, 4), (120, 1), (128, -1))
    assert BaseChunk.unpack(by_type[SegmentType.BASE_TRACK]) == BaseChunk(3, TrackChunk(0, (b"base unit",)))


def test_header_fields_are_the_one_header_layout_and_old_versions_still_read() -> None:
    block = HEADER.pack()
    fields, end = HeaderFields.unpack_at(block, 0)
    assert end == len(block) and fields.pack() == block and fields.version == VERSION
    assert (fields.width, fields.height, fields.fps_num, fields.fps_den) == (640, 360, 30000, 1001)
    assert StreamHeader.unpack_at(HEADER.pack(version=1), 0)[0] == HEADER  # version 1 streams still decode
    assert StreamHeader.unpack_at(replace(fields, version=VERSION + 1).pack(), 0) is None
    # A tag length that lies reads no further than its own CRC-protected block.
    lie = replace(fields, tag_length=255).pack()
    assert StreamHeader.unpack_at(lie + b"x=y" * 100, 0)[0].backends == HEADER.backends
    assert StreamHeader.unpack_at(replace(fields, tag_length=3).pack(), 0)[0].backends == {}
    damaged = bytearray(block)
    damaged[9] ^= 1
    assert HeaderFields.unpack_at(bytes(damaged), 0) is None


def test_compact_header_is_a_fraction_of_version_3_and_says_the_same() -> None:
    header = StreamHeader(640, 272, Fraction(25), 250, 250, {"kf": "error-model", "psss": "classical",
                                                            "img": "track-av1", "desc": "none"})
    compact, old = header.pack(), header.pack(version=3)
    assert len(old) == 83 and len(compact) == 26  # 7 framing, 10 varints, tag length, 4 codes, CRC
    assert StreamHeader.unpack_at(compact, 0) == (header, len(compact))
    assert StreamHeader.unpack_at(old, 0) == (header, len(old))  # version 3 streams still decode
    assert StreamHeader.unpack_at(HEADER.pack(), 0)[0] == HEADER  # 30000/1001 fps and unknown tags survive


def test_backend_tags_known_by_code_others_written_out() -> None:
    tags = {"kf": "psss", "psss": "mllm:Qwen/Qwen2-VL-2B-Instruct", "img": "track-av1", "desc": "tags"}
    packed = pack_tags(tags)
    assert len(packed) == 3 + 2 + len("psss=mllm:Qwen/Qwen2-VL-2B-Instruct")
    assert unpack_tags(packed) == tags
    assert unpack_tags(bytes([200]) + packed) == tags  # a newer encoder's code is skipped
    assert unpack_tags(packed[:5]) == {"kf": "psss"}  # a written-out tag cut short ends the list
    long = {f"r{i}": "x" * 60 for i in range(6)}
    assert len(pack_tags(long)) <= 255 and len(unpack_tags(pack_tags(long))) == 3  # whole tags only


def test_segment_prefix_reads_what_the_packer_wrote() -> None:
    packed = Segment(SegmentType.PAN, 513, b"12345").pack()
    assert segment_prefix_at(packed, 0) == (SegmentType.PAN, 513, 5)
    assert packed[SEGMENT_PREFIX:-4] == b"12345"
    assert segment_prefix_at(packed, 1) is None and segment_prefix_at(packed[:3], 0) is None


def test_parsers_refuse_malformed_payloads_with_bitstream_errors() -> None:
    for unpack, bad in ((KeyframeImage.unpack, b"\0" * 7), (unpack_timing, b"\0\x05\0\0\0\x01"),
                        (unpack_timing, b"\0"), (unpack_timing_v2, b"\x02"), (TrackChunk.unpack, b"\0\0\x02\x01"),
                        (unpack_layout, b"\x03\x01\x80"), (unpack_layout, b"\0\0"), (BaseChunk.unpack, b""),
                        (BaseChunk.unpack, b"\0" + TrackChunk(0, (b"u",)).pack())):
        with pytest.raises(BitstreamError):
            unpack(bad)
    # The lenient array parsers drop a trailing partial value instead of failing.
    assert unpack_motion(pack_motion([1.0]) + b"\x01") == [1.0]
    assert unpack_pan(pack_pan([(1.0, 2.0)]) + b"\x01\x02\x03") == [(1.0, 2.0)]
    assert math.isnan(unpack_motion(pack_motion([math.nan]))[0])
    with pytest.raises(BitstreamError):
        pack_layout((), (1,), (1,))
    with pytest.raises(BitstreamError):
        TrackChunk(0, ()).pack()
    with pytest.raises(BitstreamError):
        BaseChunk(256, TrackChunk(0, (b"u",))).pack()


def test_every_reader_takes_the_same_timing_and_side_segment() -> None:
    """Where a stream holds two of a kind (stale or forged, under other indices), the first wins
    everywhere; the compact timing wins over the old one."""
    old = Segment(SegmentType.KEYFRAME_TIMING, 0, pack_timing([0, 5], []))
    new = Segment(SegmentType.TIMING, 0, pack_timing_v2([0, 9], []))
    motion = [Segment(SegmentType.MOTION, i, pack_motion([float(i)])) for i in (4, 2)]
    segments = [old, *motion, new]
    assert first_segment(segments, *TIMING_KINDS) is new
    assert first_segment([old], *TIMING_KINDS) is old
    assert first_segment(segments, SegmentType.MOTION) is motion[0]
    assert first_segment(segments, SegmentType.LAYOUT) is None
    assert timing_of(new, frames=10) == ([0, 9], [])
    with pytest.raises(BitstreamError):
        timing_of(new, frames=9)
    info = inspect_stream(pack_stream(replace(HEADER, frames=10), segments))
    side = side_info(parse_stream(pack_stream(replace(HEADER, frames=10), segments)).segments, None, None, 10)
    assert info["timing"]["keyframe_frames"] == side.keyframe_frames == [0, 9]
    assert info["motion_px_per_frame"] == side.motion == [4.0]
