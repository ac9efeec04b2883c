"""Decoding while the stream is still arriving: a receiver writes the video as segments come in.

The stream's critical prefix (header, keyframe timing, motion, text) comes first, then the
keyframe images in order. Once the prefix is in, the output can start: ``render_planned``
walks the keyframe plan and asks for each keyframe only when the video reaches it, and this
class answers as soon as that keyframe's segment has arrived, or with None once the stream has
ended without it (a lost keyframe only widens an interval). Bytes go in as link PDUs arrive
(any order, gaps allowed); the contiguous prefix is parsed incrementally, what lies beyond a
gap once the stream has ended (so the output equals decoding the finished stream).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from semantic.bitstream import (
    TIMING_KINDS,
    BitstreamError,
    SegmentType,
    StreamHeader,
    TrackChunk,
    parse_stream,
    timing_of,
)
from semantic.decoder import (
    DecodedVideo,
    Keyframe,
    SideInfo,
    base_keyframes,
    decode_bitstream,
    get_decoder_tween,
    keyframe_of,
    render_planned,
    side_info,
    track_keyframes,
)
from semantic.diffusion_decoder import DiffusionSettings
from semantic.track import TrackDecoder


class ProgressiveStream:
    """Thread-safe: the receive loop calls ``add`` and ``finish``; a writer thread iterates
    ``frames()`` once ``wait_ready`` says the prefix is in."""

    def __init__(self, decoder: str = "interp", diffusion: DiffusionSettings | None = None) -> None:
        self.decoder, self.diffusion = decoder, diffusion
        self.data = bytearray()
        self.covered = bytearray()
        self.contiguous = 0  # bytes from the start with no gap
        self.parsed = 0  # bytes of that prefix already parsed
        self.header: StreamHeader | None = None
        self.segments: list = []
        self.seen: set = set()
        self.images: dict[int, Keyframe] = {}
        self.plan: list[int] | None = None
        self.track: TrackDecoder | None = None  # the keyframe track, decoded as its chunks arrive
        self.base: dict[int, Keyframe] = {}  # a layered stream's base layer: where the track lost keyframes
        self.ended = False
        self.cond = threading.Condition()

    # -- receive side ------------------------------------------------------------------------
    def add(self, offset: int, payload: bytes) -> None:
        with self.cond:
            end = offset + len(payload)
            if end > len(self.data):
                grow = end - len(self.data)
                self.data += bytes(grow)
                self.covered += bytes(grow)
            self.data[offset:end] = payload
            self.covered[offset:end] = b"\x01" * len(payload)
            while self.contiguous < len(self.covered) and self.covered[self.contiguous]:
                self.contiguous += 1
            self._parse()
            self.cond.notify_all()

    def finish(self) -> None:
        """The stream is over: what lies beyond a gap (lost PDUs, zero-filled) is parsed now."""
        with self.cond:
            self._parse(len(self.data))
            if self.header is not None and self.plan is not None:
                self.base = {k.frame: k for k in base_keyframes(self.segments, self.plan, self.header,
                                                                set(self.images), [])}
            self.ended = True
            self.cond.notify_all()

    def _parse(self, end: int | None = None) -> None:
        parsed = parse_stream(bytes(self.data[self.parsed : self.contiguous if end is None else end]))
        self.parsed += parsed.consumed
        self.header = self.header or parsed.header
        for seg in parsed.segments:
            if (seg.type, seg.index) in self.seen:  # the copies at the end
                continue
            self.seen.add((seg.type, seg.index))
            self.segments.append(seg)
            if seg.type in TIMING_KINDS and self.plan is None:  # the first to arrive: rendering starts early
                try:
                    self.plan = timing_of(seg, self.header.frames if self.header else None)[0]
                except ValueError:
                    pass
            elif seg.type == SegmentType.KEYFRAME_IMAGE and self.header:
                keyframe = keyframe_of(seg, self.header)
                if isinstance(keyframe, Keyframe):
                    self.images[keyframe.frame] = keyframe
            elif seg.type == SegmentType.TRACK and self.header:
                try:
                    self._track().add(TrackChunk.unpack(seg.payload))
                except BitstreamError:
                    pass
        self._place_track(end is not None)

    def _track(self) -> TrackDecoder:
        if self.track is None:
            self.track = TrackDecoder(self.header.width, self.header.height)
        return self.track

    def _place_track(self, final: bool) -> None:
        """Decoded track units become keyframes once the plan says where they go; at the end
        the units past a gap decode from their next recovery point."""
        if self.track is None or self.plan is None:
            return
        if final:
            self.track.finish(len(self.plan))
        for keyframe in track_keyframes(self.track, self.plan, self.header, None,
                                        [i for i in self.track.images
                                         if i < len(self.plan) and self.plan[i] not in self.images]):
            self.images.setdefault(keyframe.frame, keyframe)

    # -- writer side -------------------------------------------------------------------------
    def wait_ready(self) -> bool:
        """Block until rendering can start progressively (True: prefix in, first keyframe
        arrived) or the stream ended first (False: decode what arrived, all at once)."""
        with self.cond:
            self.cond.wait_for(lambda: self.ended or (self.header and self.plan is not None and self.images))
            return not self.ended or bool(self.header and self.plan is not None)

    def _resolve(self, i: int) -> Keyframe | None:
        frame = self.plan[i]
        with self.cond:
            self.cond.wait_for(lambda: frame in self.images or self.ended)
            keyframe = self.images.get(frame)
            return keyframe if keyframe is not None else self.base.get(frame)

    def decoded(self) -> DecodedVideo:
        """The video, rendered on demand: progressively if the prefix arrived before the end."""
        if self.header is None or self.plan is None:
            return decode_bitstream(bytes(self.data), self.decoder, self.diffusion)
        with self.cond:
            side: SideInfo = side_info(self.segments, self.plan, None, self.header.frames)
        tween = get_decoder_tween(self.decoder, self.diffusion)
        header, plan = self.header, list(self.plan)

        def render() -> Iterator[np.ndarray]:
            return render_planned(plan, header, side, tween, self._resolve)

        received = lambda: sorted(self.images)  # noqa: E731 - grows while the stream arrives
        return DecodedVideo(render, header.fps, header, plan, received(), self.decoder)
