"""The keyframe track: a video's keyframes coded as one low-frame-rate AV1 sequence (libsvtav1
through PyAV, decoded by libdav1d), each keyframe predicted from the ones decoded before it,
intra at shot cuts and at the recovery points the rate control asks for.

Coding keyframes one by one (WebP/AVIF, ``semantic.image_codec``) pays a whole intra picture per
keyframe; a conventional codec predicts every picture from the last. The track gives LGVSC that
prediction back while the keyframes stay explicit: unit i of the track is exactly one shown
keyframe (an AV1 temporal unit, its temporal delimiter dropped), and units travel in
``TrackChunk`` segments of about a link PDU each, so a lost PDU costs whole units.

Loss stays graceful: a unit is decoded only when every unit since the last intra unit before
it was decoded; otherwise its reference may be missing and the keyframe counts as lost (the
decoder interpolates across it) rather than showing a corrupted prediction.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

import av
import cv2
import numpy as np

from semantic.bitstream import (
    MAX_SEGMENT_PAYLOAD,
    SEGMENT_OVERHEAD,
    BaseChunk,
    BitstreamError,
    Segment,
    SegmentType,
    TrackChunk,
)
from semantic.crf_search import refine_crf, smallest_fitting_crf, with_crf

ENCODER, DECODER = "libsvtav1", "libdav1d"
PRESET = "8"  # SVT-AV1's fast end: the rate control encodes the track a few dozen times
CRF_RANGE = (18, 63)
# SVT-AV1 4.1 reads memory it does not own at coded widths of 24 pixels or less (see
# semantic.separation): narrower tracks are coded this wide and scaled back.
MIN_WIDTH, MIN_HEIGHT = 32, 16
SCALES = (1.0, 0.75, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08)
THREADS = 2
TEMPORAL_DELIMITER = b"\x12\x00"  # OBU type 2, no payload: starts every temporal unit
OBU_SEQUENCE_HEADER = 1
CHUNK_BYTES = 400  # units per segment up to about this many bytes (a PDU carries 200-1400) ...
TRACK_CHUNKS = 16  # ... or, in larger tracks, in about this many segments
MAX_CHUNK_UNITS = 255
# A losing size whose whole-step CRF fills less than this share of the budget is refined in
# quarter steps and compared again: at SVT-AV1's coarse end one CRF step moves a track by 20 %
# (bikes, 480x204: 35.8 kB at 63, 37.2 at 62.5), and an unrefined size loses unfairly.
FAIR_FILL = 0.95
T = TypeVar("T")


class TrackError(RuntimeError):
    pass


def coded_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Even dimensions at ``scale``, never below what SVT-AV1 codes safely."""
    even = lambda v: max(2, int(round(v / 2)) * 2)  # noqa: E731
    return max(MIN_WIDTH, even(width * scale)), max(MIN_HEIGHT, even(height * scale))


def encode_units(images: list[np.ndarray], size: tuple[int, int], crf: float, intra: set[int],
                 keyint: int | None = None, rate: Fraction = Fraction(5)) -> list[bytes]:
    """One AV1 sequence of ``images`` at ``size`` and ``crf``: a list of units, one per image.
    Images at the indices in ``intra`` are coded as key frames, and so is every ``keyint``-th."""
    # SVT-AV1 prints its whole configuration to stderr per encode (dozens per search) unless its
    # log level, read from the environment when an encoder starts, says errors only.
    os.environ.setdefault("SVT_LOG", "1")
    ctx = av.CodecContext.create(ENCODER, "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = "yuv420p"
    ctx.framerate, ctx.time_base = rate, 1 / rate
    ctx.thread_count = THREADS
    ctx.options = with_crf({"preset": PRESET, "g": str(keyint or 100000), "svtav1-params": f"lp={THREADS}"},
                           ENCODER, crf)
    packets = []
    for i, image in enumerate(images):
        small = image if image.shape[1::-1] == size else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(small), format="rgb24")
        frame.pts = i
        if i in intra:
            frame.pict_type = av.video.frame.PictureType.I
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    if len(packets) != len(images):
        raise TrackError(f"{ENCODER} gave {len(packets)} temporal units for {len(images)} keyframes")
    return [_without_delimiter(bytes(p)) for p in sorted(packets, key=lambda p: p.pts)]


def _without_delimiter(unit: bytes) -> bytes:
    return unit[len(TEMPORAL_DELIMITER):] if unit.startswith(TEMPORAL_DELIMITER) else unit


def is_intra(unit: bytes) -> bool:
    """A unit the decoder can start from: the encoder puts a sequence header before a key frame."""
    return bool(unit) and (unit[0] >> 3) & 0x0F == OBU_SEQUENCE_HEADER


def chunk_units(units: list[bytes], first: int = 0, target: int | None = None) -> list[TrackChunk]:
    """Consecutive units grouped into chunks of about ``target`` bytes (one unit at least; by
    default ``CHUNK_BYTES``, or a ``TRACK_CHUNKS``-th of a larger track), each intra unit first
    in its chunk. A segment costs 14 bytes of framing: 400-byte chunks took 4 % of a 39 kB
    track. Larger ones lose little more to a lost PDU, since the loss rule drops every unit after
    a lost one up to the next intra unit anyway, and that unit never shares a lost chunk."""
    target = target or max(CHUNK_BYTES, sum(map(len, units)) // TRACK_CHUNKS)
    chunks, run, size = [], [], 0
    for i, unit in enumerate(units):
        if run and (size + len(unit) > target or len(run) == MAX_CHUNK_UNITS or is_intra(unit)):
            chunks.append(TrackChunk(first + i - len(run), tuple(run)))
            run, size = [], 0
        run.append(unit)
        size += len(unit)
    if run:
        chunks.append(TrackChunk(first + len(units) - len(run), tuple(run)))
    return chunks


MAX_UNIT_BYTES = MAX_SEGMENT_PAYLOAD - 3 - 3  # a unit alone in a chunk (prefix and its length) fills one segment


def track_bytes(units: list[bytes], target: int | None = None) -> int | float:
    """What ``units`` cost in the stream: their chunks as segments (infinite when a unit cannot
    travel at all: an intra picture at generous settings can outgrow a segment)."""
    if any(len(unit) > MAX_UNIT_BYTES for unit in units):
        return math.inf
    return sum(SEGMENT_OVERHEAD + len(c.pack()) for c in chunk_units(units, 0, target))


MAX_DECODED_BYTES = 1 << 30  # decoded pictures a track may hold; units beyond are lost (a forged stream's)


class TrackDecoder:
    """Decodes units in order as chunks arrive; a unit whose reference chain is broken (a unit
    since the last intra one is missing or failed) is lost, never shown. Pictures stay at their
    coded size (what the encoder's store allows: at most ``STORE_BYTES`` in all for an honest
    stream) and are kept for the whole decode, up to ``MAX_DECODED_BYTES``; the caller scales them."""

    def __init__(self, max_width: int, max_height: int) -> None:
        even = lambda v: v + (v & 1)  # noqa: E731 - an odd-sized video is coded one pixel larger
        self.max_size = (max(even(max_width), MIN_WIDTH), max(even(max_height), MIN_HEIGHT))
        self.units: dict[int, bytes] = {}
        self.images: dict[int, np.ndarray] = {}
        self.lost: set[int] = set()
        self.next = 0  # the first unit not yet decoded or given up
        self._broken = True  # nothing to predict from until an intra unit decodes
        self._ctx: av.CodecContext | None = None
        self._held = 0  # bytes of decoded pictures

    def add(self, chunk: TrackChunk) -> list[int]:
        """Store the chunk's units; returns the units decoded because of it."""
        for i, unit in enumerate(chunk.units):
            self.units.setdefault(chunk.first + i, unit)
        return self._advance(final=False)

    def finish(self, count: int | None = None) -> list[int]:
        """The stream ended: decode past the gaps, from the next intra unit after each."""
        last = max(self.units, default=-1) if count is None else count - 1
        return self._advance(final=True, last=last)

    def _advance(self, final: bool, last: int = -1) -> list[int]:
        done = []
        while self.next in self.units or (final and self.next <= last):
            unit = self.units.pop(self.next, None)
            if unit is None or (self._broken and not is_intra(unit)):
                self._broken = self._broken or unit is None
                self.lost.add(self.next)
            elif (image := self._decode(unit, self.next)) is None:
                self._broken = True
                self.lost.add(self.next)
            else:
                self._broken = False
                self.images[self.next] = image
                done.append(self.next)
            self.next += 1
        return done

    def _decode(self, unit: bytes, index: int) -> np.ndarray | None:
        if self._ctx is None or is_intra(unit):  # a fresh decoder at each recovery point: no state survives
            self._ctx = av.CodecContext.create(DECODER, "r")
            self._ctx.thread_count = 1
            self._ctx.options = {"max_frame_delay": "1", "max_pixels": str(self.max_size[0] * self.max_size[1])}
        packet = av.Packet(TEMPORAL_DELIMITER + unit)
        packet.pts = index
        try:
            frames = self._ctx.decode(packet)
        except (av.FFmpegError, ValueError, MemoryError):
            return None
        if len(frames) != 1:
            return None
        frame = frames[0]
        if frame.width > self.max_size[0] or frame.height > self.max_size[1]:
            return None
        self._held += 3 * frame.width * frame.height
        return frame.to_ndarray(format="rgb24") if self._held <= MAX_DECODED_BYTES else None


def track_units(segments: list[Segment], notes: list[str] | None = None) -> dict[int, bytes]:
    """The units the TRACK segments carry, by keyframe index: chunks in segment-index order, the
    first copy of a unit wins (what the decoder, inspect and the contact sheet all read)."""
    units: dict[int, bytes] = {}
    for chunk in _intact(segments, SegmentType.TRACK, TrackChunk.unpack, "track", notes):
        _add_units(units, chunk)
    return units


def base_units(segments: list[Segment], notes: list[str] | None = None) -> tuple[int, dict[int, bytes]]:
    """The base layer's stride and units by base index (unit i is keyframe i x stride); chunks
    naming another stride than the first intact one are dropped (stride 0: no base layer)."""
    stride, units = 0, {}
    for base in _intact(segments, SegmentType.BASE_TRACK, BaseChunk.unpack, "base layer", notes):
        if stride and base.stride != stride:
            if notes is not None:
                notes.append(f"base layer chunk at keyframe {base.chunk.first}: stride {base.stride}, not {stride}")
            continue
        stride = base.stride
        _add_units(units, base.chunk)
    return stride, units


def _intact(segments: list[Segment], kind: SegmentType, unpack: Callable[[bytes], T], what: str,
            notes: list[str] | None) -> Iterator[T]:
    """The payloads of ``kind`` in segment-index order that parse; why the others did not, in ``notes``."""
    for seg in sorted((s for s in segments if s.type == kind), key=lambda s: s.index):
        try:
            yield unpack(seg.payload)
        except BitstreamError as exc:
            if notes is not None:
                notes.append(f"{what} segment {seg.index}: {exc}")


def _add_units(units: dict[int, bytes], chunk: TrackChunk) -> None:
    for i, unit in enumerate(chunk.units):
        units.setdefault(chunk.first + i, unit)


def decode_track(units: dict[int, bytes], width: int, height: int, count: int | None) -> TrackDecoder:
    """A finished decode of ``units`` (``count`` keyframes expected, or as many as there are)."""
    decoder = TrackDecoder(width, height)
    for i in sorted(units):
        decoder.add(TrackChunk(i, (units[i],)))
    decoder.finish(count)
    return decoder


def decode_units(units: list[bytes], width: int, height: int) -> list[np.ndarray | None]:
    """Every unit of an intact track, decoded (None where a unit fails)."""
    decoder = TrackDecoder(width, height)
    for chunk in chunk_units(units):
        decoder.add(chunk)
    decoder.finish(len(units))
    return [decoder.images.get(i) for i in range(len(units))]


@dataclass(frozen=True)
class TrackCoding:
    units: list[bytes]
    size: tuple[int, int]  # coded width, height
    crf: float
    quality: float  # what ``fit_track``'s quality function gave the decoded keyframes
    decoded: list[np.ndarray]  # what the receiver decodes, at the coded size


Quality = Callable[[list[np.ndarray]], float]  # decoded keyframes (coded size) -> higher is better


@dataclass
class _Coder:
    """Encodes one set of keyframes at any (CRF, size); each size's scaled copies are made once,
    not once per encode (a search encodes a size a handful of times)."""

    images: list[np.ndarray]
    intra: set[int]
    keyint: int | None
    rate: Fraction
    _scaled: dict[tuple[int, int], list[np.ndarray]] = field(default_factory=dict)

    def cost(self, crf: float, size: tuple[int, int]) -> tuple[int, list[bytes]]:
        """(bytes of the chunks, units) of one encode."""
        if size not in self._scaled:
            self._scaled[size] = [image if image.shape[1::-1] == size else
                                  cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in self.images]
        units = encode_units(self._scaled[size], size, crf, self.intra, self.keyint, self.rate)
        return track_bytes(units), units


def fit_track(images: list[np.ndarray], budget: int, quality: Quality, intra: set[int] | None = None,
              keyint: int | None = None, rate: Fraction = Fraction(5), start_scale: float | None = None,
              sizes_tried: int = 2) -> TrackCoding | None:
    """The best-quality (resolution, CRF) whose chunks fit ``budget`` bytes, or None if none
    does. Like the separation baseline's search, the two largest resolutions that fit at the
    coarsest CRF are compared on decoded quality, each at the smallest CRF that fits (found
    from a prediction, the stream halving every ~6 CRF steps, by galloping then bisection).
    The largest fitting resolution is looked for from ``start_scale`` (e.g. what a neighbouring
    keyframe count chose) up or down: two or three encodes instead of one per scale."""
    h, w = images[0].shape[:2]
    sizes = list(dict.fromkeys(coded_size(w, h, scale) for scale in SCALES))  # largest first, no repeats
    coder = _Coder(images, intra or set(), keyint, rate)
    first = _largest_fitting(sizes, lambda size: coder.cost(CRF_RANGE[1], size), budget, start_scale, w)
    if first is None:
        return None
    codings: list[TrackCoding] = []
    index, coarsest = first
    for size in sizes[index : index + sizes_tried]:
        if coarsest is None:
            coarsest = coder.cost(CRF_RANGE[1], size)
            if coarsest[0] > budget:  # a smaller size is not always a smaller stream
                continue
        crf, units = smallest_fitting_crf(lambda crf, size=size: coder.cost(crf, size), CRF_RANGE, budget, coarsest)
        coarsest = None
        codings.append(_coding(units, size, crf, quality))
    best = max(codings, key=lambda c: c.quality, default=None)
    for coding in codings:  # a loser that left bytes unused is compared again at the bytes it would get
        if coding is not best and track_bytes(coding.units) < FAIR_FILL * budget:
            crf, units = refine_crf(lambda crf, size=coding.size: coder.cost(crf, size), coding.crf, CRF_RANGE,
                                    budget, coding.units)
            if crf != coding.crf and (refined := _coding(units, coding.size, crf, quality)).quality > best.quality:
                best = refined
    return best


def _coding(units: list[bytes], size: tuple[int, int], crf: float, quality: Quality) -> TrackCoding:
    decoded = _decoded(units, size)
    return TrackCoding(units, size, crf, quality(decoded), decoded)


def fit_crf(images: list[np.ndarray], size: tuple[int, int], budget: int, intra: set[int] | None = None,
            keyint: int | None = None, rate: Fraction = Fraction(5)) -> TrackCoding | None:
    """The track at exactly ``size``, at the smallest CRF whose chunks fit ``budget`` (None if
    even the coarsest does not): a chosen structure refitted to fewer bytes."""
    coder = _Coder(images, intra or set(), keyint, rate)
    coarsest = coder.cost(CRF_RANGE[1], size)
    if coarsest[0] > budget:
        return None
    crf, units = smallest_fitting_crf(lambda crf: coder.cost(crf, size), CRF_RANGE, budget, coarsest)
    return TrackCoding(units, size, crf, 0.0, _decoded(units, size))


def refine_track(images: list[np.ndarray], coding: TrackCoding, budget: int, intra: set[int] | None = None,
                 keyint: int | None = None, rate: Fraction = Fraction(5)) -> TrackCoding:
    """``coding`` at the finest CRF below its own whose chunks still fit ``budget`` (quarter
    steps, ``refine_crf``): the bytes a whole CRF step left unused. A coding already refined
    (a fractional CRF) is kept."""
    if not float(coding.crf).is_integer():
        return coding
    coder = _Coder(images, intra or set(), keyint, rate)
    crf, units = refine_crf(lambda crf: coder.cost(crf, coding.size), coding.crf, CRF_RANGE, budget, coding.units)
    if crf == coding.crf:
        return coding
    return TrackCoding(units, coding.size, crf, coding.quality, _decoded(units, coding.size))


def _decoded(units: list[bytes], size: tuple[int, int]) -> list[np.ndarray]:
    """Every unit decoded, as a receiver that got them all decodes them."""
    decoded = decode_units(units, *size)
    if any(d is None for d in decoded):
        raise TrackError(f"{DECODER} could not decode a track {ENCODER} made at {size[0]}x{size[1]}")
    return decoded  # type: ignore[return-value]


def _largest_fitting(sizes: list[tuple[int, int]], at_coarsest: Callable[[tuple[int, int]], tuple[int, list[bytes]]],
                     budget: int, start_scale: float | None, width: int
                     ) -> tuple[int, tuple[int, list[bytes]]] | None:
    """Index of the largest size whose coarsest encode fits, with that encode; the stream grows
    with the size, so the search walks from the start up while it fits, or down until it does."""
    start = 0 if start_scale is None else min(range(len(sizes)), key=lambda i: abs(sizes[i][0] - start_scale * width))
    result = at_coarsest(sizes[start])
    if result[0] <= budget:
        found = (start, result)
        for i in range(start - 1, -1, -1):
            result = at_coarsest(sizes[i])
            if result[0] > budget:
                break
            found = (i, result)
        return found
    for i in range(start + 1, len(sizes)):
        result = at_coarsest(sizes[i])
        if result[0] <= budget:
            return i, result
    return None
