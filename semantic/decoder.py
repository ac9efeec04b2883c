"""LGVSC bitstream -> video of exactly the source frame count, through a decoder backend.

Backends sit in a small registry (CompressAI style). Every backend places each received keyframe
at its frame index and fills the frames between neighbouring received keyframes of a shot:
``interp`` (CPU default) by motion-compensated interpolation, ``crossfade`` by blending,
``diffusers:<id>`` by a video diffusion model (``semantic.diffusion_decoder``) prompted with the
interval's description and motion. Before a shot's first keyframe and after its last the
picture holds. Lost keyframes simply widen an interval; with none at all the output is mid-grey
at the right size, length and rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from semantic.bitstream import (
    BitstreamError,
    KeyframeImage,
    ParsedStream,
    Segment,
    SegmentType,
    StreamHeader,
    TrackChunk,
    parse_stream,
    timing_of,
    unpack_layout,
    unpack_motion,
    unpack_pan,
)
from semantic.colour_layout import ColourLayout
from semantic.diffusion_decoder import DiffusionDecoderError, DiffusionSettings, DiffusionTween, prompt_for
from semantic.image_codec import MIN_SIDE, decode_image
from semantic.keyframes import shot_ranges
from semantic.text_codec import decompress_text
from semantic.track import TrackDecoder
from semantic.video_io import upscale


class DecoderError(ValueError):
    pass


@dataclass
class Keyframe:
    """A received keyframe; its image is decoded when first needed and released after use, so
    a long stream holds only coded bytes (a few kB per keyframe), not full-size images."""

    frame: int
    data: bytes  # an intra-coded image (empty for a track keyframe)
    width: int  # the stream's resolution
    height: int
    _image: np.ndarray | None = None
    coded: np.ndarray | None = None  # a track keyframe as libdav1d decoded it, at its coded size

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            if self.coded is not None:
                self._image = upscale(self.coded, self.width, self.height)
            else:
                self._image = decode_image(self.data, self.width, self.height)
        return self._image

    def release(self) -> None:
        self._image = None


@dataclass
class DecodedVideo:
    """Frames are produced on demand by ``iter_frames`` (memory independent of length);
    ``frames`` materializes them, for short clips and tests."""

    render: Callable[[], Iterator[np.ndarray]]
    fps: Fraction
    header: StreamHeader
    keyframes_expected: list[int]  # from the timing segment (may be empty if it was lost)
    keyframes_received: list[int]
    backend: str
    notes: list[str] = field(default_factory=list)
    _frames: np.ndarray | None = None

    def iter_frames(self) -> Iterator[np.ndarray]:
        return self.render()

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = np.stack(list(self.render()))
        return self._frames


def keyframe_of(seg: Segment, header: StreamHeader) -> Keyframe | str:
    """The keyframe a KEYFRAME_IMAGE segment carries, or why it is unusable. Its image is decoded
    once here, at its small coded size, so a keyframe that passes cannot fail later."""
    try:
        image = KeyframeImage.unpack(seg.payload)
    except BitstreamError as exc:
        return f"keyframe segment {seg.index}: {exc}"
    frame, coded_w, coded_h = image.frame, image.width, image.height
    if frame >= header.frames:
        return f"keyframe segment {seg.index} points past the last frame"
    if not (0 < coded_w <= max(header.width, MIN_SIDE) and 0 < coded_h <= max(header.height, MIN_SIDE)):
        return f"keyframe segment {seg.index} claims {coded_w}x{coded_h} in a {header.width}x{header.height} video"
    try:
        decode_image(image.data, coded_w, coded_h)
    except ValueError as exc:
        return f"keyframe segment {seg.index}: {exc}"
    return Keyframe(frame, image.data, header.width, header.height)


def received_keyframes(parsed: ParsedStream, header: StreamHeader,
                       plan: list[int] | None = None) -> tuple[list[Keyframe], list[str]]:
    """Intra-coded keyframes and the keyframe track's (placed by ``plan``, the timing segment's
    keyframe frames), sorted by frame; what could not be used is explained in the notes."""
    keyframes, notes = [], []
    for seg in parsed.of_type(SegmentType.KEYFRAME_IMAGE):
        keyframe = keyframe_of(seg, header)
        if isinstance(keyframe, str):
            notes.append(keyframe)
        else:
            keyframes.append(keyframe)
    chunks = parsed.of_type(SegmentType.TRACK)
    if chunks:
        track = TrackDecoder(header.width, header.height)
        for seg in sorted(chunks, key=lambda seg: seg.index):
            try:
                track.add(TrackChunk.unpack(seg.payload))
            except BitstreamError as exc:
                notes.append(f"track segment {seg.index}: {exc}")
        track.finish(len(plan) if plan else None)
        keyframes += track_keyframes(track, plan or [], header, notes)
    by_frame = {k.frame: k for k in keyframes}  # one keyframe per frame, whichever came first
    return sorted(by_frame.values(), key=lambda k: k.frame), notes


def track_keyframes(track: TrackDecoder, plan: list[int], header: StreamHeader, notes: list[str] | None,
                    ordinals: list[int] | None = None) -> list[Keyframe]:
    """Keyframes for the decoded track units ``ordinals`` (default all), placed by ``plan``."""
    out = []
    for i in sorted(track.images) if ordinals is None else ordinals:
        if i < len(plan) and plan[i] < header.frames:
            out.append(Keyframe(plan[i], b"", header.width, header.height, coded=track.images[i]))
        elif notes is not None:
            notes.append(f"track keyframe {i} has no frame in the timing segment")
    if track.lost and notes is not None:
        notes.append(f"track keyframes lost or without their reference: {sorted(track.lost)}")
    return out


@dataclass(frozen=True)
class SideInfo:
    """What the bitstream says beside the keyframes (any of it may have been lost)."""

    cuts: list[int] = field(default_factory=list)
    keyframe_frames: list[int] = field(default_factory=list)  # as sent (timing segment)
    motion: list[float] = field(default_factory=list)  # px/frame per sent keyframe interval
    pan: list[tuple[float, float]] = field(default_factory=list)  # dominant dx, dy px/frame per interval
    descriptions: dict[int, str] = field(default_factory=dict)  # by sent keyframe interval
    layout: ColourLayout | None = None  # shown where no keyframe arrived at all (instead of mid-grey)

    def interval_of(self, frame: int) -> int | None:
        """Index of the sent keyframe interval that starts at keyframe ``frame``."""
        try:
            i = self.keyframe_frames.index(frame)
        except ValueError:
            return None
        return i if i + 1 < len(self.keyframe_frames) else None

    def prompt(self, a: int, b: int) -> str:
        """Words for the generative decoder: the description and the motion from frame a to b."""
        i = self.interval_of(a)
        path = self.path_length(a, b)
        motion = None if path is None else path / max(b - a, 1)
        pan = self.pan[i] if i is not None and i < len(self.pan) else None
        return prompt_for(self.descriptions.get(i) if i is not None else None, motion, pan)

    def path_length(self, a: int, b: int) -> float | None:
        """Pixels the content travels from frame a to b by the motion side information."""
        if len(self.motion) + 1 != len(self.keyframe_frames):
            return None
        total = 0.0
        for (lo, hi), m in zip(zip(self.keyframe_frames[:-1], self.keyframe_frames[1:], strict=True), self.motion,
                               strict=True):
            overlap = min(hi, b) - max(lo, a)
            if overlap > 0:
                total += float(m) * overlap
        return total


Tween = Callable[[Keyframe, Keyframe, SideInfo], Iterator[np.ndarray]]  # frames a.frame + 1 .. b.frame - 1


Resolve = Callable[[int], "Keyframe | None"]  # i -> keyframe i of the plan, None if lost (may block)


def _render(keyframes: list[Keyframe], header: StreamHeader, side: SideInfo, tween: Tween) -> Iterator[np.ndarray]:
    """All received keyframes known up front (decoding a file or a finished transfer)."""
    by_frame = {k.frame: k for k in keyframes}
    plan = sorted(set(side.keyframe_frames) | set(by_frame))
    return render_planned(plan, header, side, tween, lambda i: by_frame.get(plan[i]))


def render_planned(plan: list[int], header: StreamHeader, side: SideInfo, tween: Tween,
                   resolve: Resolve) -> Iterator[np.ndarray]:
    """Frames in order from the keyframe plan (frame indices), asking ``resolve`` for each
    keyframe only when the output reaches it: a receiver can render while the rest of the
    stream is still on the air. Per shot: ``tween`` between its received keyframes, hold before
    the first and after the last. A shot whose keyframes were all lost shows the nearest
    received keyframe; with none at all the output is mid-grey. Never blends across a cut."""
    for lo, hi in shot_ranges(side.cuts, header.frames):
        previous: Keyframe | None = None
        for i in (i for i, f in enumerate(plan) if lo <= f <= hi):
            current = resolve(i)
            if current is None:
                continue
            if previous is None:
                for _ in range(lo, current.frame + 1):
                    yield current.image
            else:
                yield from tween(previous, current, side)
                yield current.image
                previous.release()
            previous = current
        if previous is not None:
            for _ in range(previous.frame + 1, hi + 1):
                yield previous.image
            previous.release()
            continue
        nearest = _nearest(plan, resolve, lo, hi)
        if nearest:
            filler = nearest.image
        elif side.layout is not None:
            filler = side.layout.image(header.width, header.height)
        else:
            filler = np.full((header.height, header.width, 3), 128, dtype=np.uint8)
        for _ in range(lo, hi + 1):
            yield filler
        if nearest:
            nearest.release()


def _nearest(plan: list[int], resolve: Resolve, lo: int, hi: int) -> Keyframe | None:
    received = [k for k in (resolve(i) for i in range(len(plan))) if k is not None]
    return min(received, key=lambda k: min(abs(k.frame - lo), abs(k.frame - hi)), default=None)


def _crossfade(a: Keyframe, b: Keyframe, side: SideInfo | None = None) -> Iterator[np.ndarray]:
    fa, fb = a.image.astype(np.float32), b.image.astype(np.float32)
    for t in range(a.frame + 1, b.frame):
        alpha = (t - a.frame) / (b.frame - a.frame)
        yield np.clip((1 - alpha) * fa + alpha * fb + 0.5, 0, 255).astype(np.uint8)


FLOW_WIDTH = 320  # optical flow on a copy this wide; flows are scaled back up
STRAIGHT_MOTION_RATIO = 4.0  # path length / net displacement beyond which motion is not one straight move


def _flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Dense flow src -> dst at full resolution (DIS on a small grey copy, scaled back up)."""
    h, w = src.shape[:2]
    width = min(FLOW_WIDTH, w)
    height = max(8, round(h * width / w))
    grey = [cv2.resize(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA)
            for x in (src, dst)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    small = dis.calc(grey[0], grey[1], None)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) * (w / width)


def _motion_compensated(a: Keyframe, b: Keyframe, side: SideInfo) -> Iterator[np.ndarray]:
    """Warp both keyframes along the optical flow between them and blend by time.

    Frame t (alpha of the way from a to b) samples a at x - alpha * F_ab(x) and b at
    x - (1 - alpha) * F_ba(x). Where the two flows disagree (occlusions, content the flow cannot
    follow) the warp is not trusted and the pixel falls back to the plain cross-fade. The motion
    side information decides whether straight-line motion is plausible at all: if the content
    travelled far more than the net displacement between the keyframes (it moved and came back,
    or the flow failed), the whole interval is cross-faded.
    """
    if b.frame - a.frame < 2:
        return
    f_ab, f_ba = _flow(a.image, b.image), _flow(b.image, a.image)
    path = side.path_length(a.frame, b.frame)
    net = float(np.median(np.linalg.norm(f_ab, axis=2)))
    if path is not None and path > STRAIGHT_MOTION_RATIO * max(net, 1.0):
        yield from _crossfade(a, b)
        return
    h, w = a.image.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    # Forward-backward check: following F_ab then F_ba should return to the start.
    back = cv2.remap(f_ba, gx + f_ab[..., 0], gy + f_ab[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = np.linalg.norm(f_ab + back, axis=2)
    trust = np.clip(1.5 - error / 2.0, 0.0, 1.0)[..., None]  # 1 up to 1 px disagreement, 0 from 3 px
    fa, fb = a.image.astype(np.float32), b.image.astype(np.float32)
    for t in range(a.frame + 1, b.frame):
        alpha = (t - a.frame) / (b.frame - a.frame)
        wa = cv2.remap(a.image, gx - alpha * f_ab[..., 0], gy - alpha * f_ab[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        wb = cv2.remap(b.image, gx - (1 - alpha) * f_ba[..., 0], gy - (1 - alpha) * f_ba[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        warped = (1 - alpha) * wa + alpha * wb
        plain = (1 - alpha) * fa + alpha * fb
        yield np.clip(trust * warped + (1 - trust) * plain + 0.5, 0, 255).astype(np.uint8)


def generative_tween(model: DiffusionTween) -> Tween:
    """Frames between two keyframes from a video diffusion model, seeded by the interval."""

    def tween(a: Keyframe, b: Keyframe, side: SideInfo) -> Iterator[np.ndarray]:
        length = b.frame - a.frame + 1
        if length < 3:
            return
        frames = model.span(a.image, b.image, length, side.prompt(a.frame, b.frame), model.settings.seed + a.frame)
        for k, frame in enumerate(frames):
            if 0 < k < length - 1:
                yield frame

    return tween


Backend = Callable[[list[Keyframe], StreamHeader, SideInfo], Iterator[np.ndarray]]
# interp: motion-compensated interpolation between a shot's keyframes; crossfade: the plain blend
# it is measured against. diffusers:<id> is built on demand (get_decoder_tween).
TWEENS: dict[str, Tween] = {"interp": _motion_compensated, "crossfade": _crossfade}


def get_decoder_tween(name: str, diffusion: DiffusionSettings | None = None) -> Tween:
    """How the backend ``name`` fills an interval; ``diffusers:<id>`` loads its pipeline here."""
    if name in TWEENS:
        return TWEENS[name]
    if name.startswith("diffusers:") and len(name) > 10:
        try:
            return generative_tween(DiffusionTween(name[10:], diffusion))
        except DiffusionDecoderError as exc:
            raise DecoderError(str(exc)) from None
    raise DecoderError(f"unknown decoder {name!r}; known: {', '.join(TWEENS)}, diffusers:<HF id or local path>")


def get_decoder(name: str, diffusion: DiffusionSettings | None = None) -> Backend:
    """The backend for ``name`` (the whole video from its received keyframes)."""
    tween = get_decoder_tween(name, diffusion)
    return lambda keyframes, header, side: _render(keyframes, header, side, tween)


def decode_bitstream(data: bytes, decoder: str = "interp", diffusion: DiffusionSettings | None = None) -> DecodedVideo:
    backend = get_decoder(decoder, diffusion)
    parsed = parse_stream(data)
    if parsed.header is None:
        raise DecoderError("bitstream has no intact stream header (both copies lost or not an LGVSC file)")
    header = parsed.header
    notes: list[str] = []
    side = side_info(parsed.segments, None, notes)
    keyframes, kf_notes = received_keyframes(parsed, header, side.keyframe_frames)
    notes += kf_notes
    if not side.keyframe_frames and keyframes:
        notes.append("timing segment lost: shot cuts unknown, blending across them")
    if parsed.corrupt_regions:
        notes.append(f"{parsed.corrupt_regions} damaged or missing stretch(es) skipped")
    return DecodedVideo(lambda: backend(keyframes, header, side), header.fps, header, side.keyframe_frames,
                        [k.frame for k in keyframes], decoder, notes)


def side_info(segments: list[Segment], plan: list[int] | None = None, notes: list[str] | None = None) -> SideInfo:
    """What the stream says beside the keyframes, from whichever of its segments arrived."""
    def first(kind: SegmentType) -> Segment | None:
        return next((seg for seg in segments if seg.type == kind), None)

    expected, cuts = [], []
    timing = first(SegmentType.TIMING) or first(SegmentType.KEYFRAME_TIMING)
    if timing is not None:
        try:
            expected, cuts = timing_of(timing)
        except BitstreamError as exc:
            if notes is not None:
                notes.append(str(exc))
    magnitude, pan = [], []
    if (seg := first(SegmentType.MOTION)) is not None:
        magnitude = unpack_motion(seg.payload)
    if (seg := first(SegmentType.PAN)) is not None:
        pan = unpack_pan(seg.payload)
    texts = {seg.index: decompress_text(seg.payload) for seg in segments if seg.type == SegmentType.TEXT}
    layout = None
    if (seg := first(SegmentType.LAYOUT)) is not None:
        try:
            layout = ColourLayout(*unpack_layout(seg.payload))
        except BitstreamError as exc:
            if notes is not None:
                notes.append(str(exc))
    return SideInfo(cuts, plan if plan is not None else expected, magnitude, pan,
                    {i: t for i, t in texts.items() if t}, layout)
