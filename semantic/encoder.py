"""Video -> LGVSC bitstream: keyframes (one predictive AV1 track, or WebP/AVIF images each) at a byte
budget, their timing, motion, descriptions, and a header."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from semantic.analysis import Analysis, analyse
from semantic.base_layer import base_layer_segments
from semantic.bitstream import (
    KEYFRAME_PREFIX,
    MAX_SEGMENT_PAYLOAD,
    SEGMENT_OVERHEAD,
    KeyframeImage,
    Segment,
    SegmentType,
    StreamHeader,
    pack_layout,
    pack_motion,
    pack_pan,
    pack_psss,
    pack_stream,
    pack_timing,
    pack_timing_v2,
    parse_stream,
    unpack_layout,
    unpack_motion,
    unpack_pan,
)
from semantic.colour_layout import ColourLayout
from semantic.decoder import get_decoder_tween
from semantic.describe import Describer, IntervalView, get_describer
from semantic.image_codec import CodedImage, encode_image
from semantic.keyframes import (
    CANDIDATE_SPACING_S,
    KeyframePlan,
    candidate_frames,
    select_keyframes_from,
    select_keyframes_psss_from,
    uniform_keyframes,
)
from semantic.metrics import psnr_frames
from semantic.psss import PSSS_WIDTH, get_psss
from semantic.text_codec import compress_text
from semantic.track import chunk_units
from semantic.track_search import (
    EVAL_BYTES,
    EVAL_WIDTH,
    STORE_BYTES,
    NoTrackFits,
    TrackSearch,
    shrink,
    start_stride,
    store_width,
)
from semantic.video_io import Video, VideoInfo, iter_frames, probe_fps

MIN_IMAGE_BYTES = 100  # a WebP/AVIF thumbnail still says something at this size
MAX_IMAGE_BYTES = MAX_SEGMENT_PAYLOAD - KEYFRAME_PREFIX  # what one keyframe segment can carry


class EncoderError(ValueError):
    pass


@dataclass(frozen=True)
class EncoderConfig:
    byte_budget: int | None = None  # whole bitstream, headers and segments included
    budget_for: Callable[[VideoInfo], int] | None = None  # budget from what the analysis pass finds (e.g. CBR)
    keyframes: int | None = None  # fixed count instead of one derived from the budget
    bytes_per_keyframe: int = 900  # target for calm content when deriving the count (busy content: less)
    default_keyframe_bytes: int = 4000  # per keyframe when no budget is given
    psss: str = "classical"  # PSSS backend: scores every keyframe against the previous one; "none" skips it
    keyframe_mode: str = "error-model"  # or "psss": the paper's rule (S_rel > 0.35; budget mode with a budget)
    describe: str = "none"  # description backend: none, tags, mllm:<id>
    text_share: float = 0.15  # descriptions may take at most this share of a byte budget
    images: str = "track"  # keyframe images: "track" (one predictive AV1 track) or "intra" (WebP/AVIF each)
    expected_loss: float = 0.0  # PDU loss the link is expected to show: the track gets recovery points
    base_bytes: int | None = None  # a layered stream: bytes for its base layer (semantic.base_layer); None: one layer


@dataclass
class EncodedVideo:
    data: bytes
    plan: KeyframePlan
    images: list[CodedImage]
    motion: list[float]
    header: StreamHeader
    descriptions: list[str] = field(default_factory=list)  # per keyframe interval, as sent ("" when none)
    segment_bytes: dict[str, int] = field(default_factory=dict)
    critical_bytes: int = 0  # the prefix holding the header, timing, motion, text and PSSS
    base_layer_bytes: int = 0  # a layered stream's base layer, right after the critical prefix


MAX_CANDIDATES = 1500  # keyframe candidates per video: every frame for short clips, sparser beyond
MAX_CUTS = 64  # cuts sent in the timing segment; more only cost the decoder a blend


@dataclass(frozen=True)
class Layout:
    """What the stream carries besides keyframe images; redundancy goes first when bytes are short."""

    keyframes: int
    cuts: int
    header_bytes: int
    psss: bool
    repeat_timing: bool = True  # timing again at the end: it says which keyframes went missing
    trailing_header: bool = True  # header again at the end: survives the loss of the first PDU

    @property
    def overhead(self) -> int:
        timing = SEGMENT_OVERHEAD + 2 + 4 * (self.keyframes + self.cuts)
        motion = 2 * SEGMENT_OVERHEAD + 6 * max(self.keyframes - 1, 0)  # magnitude and pan
        psss = SEGMENT_OVERHEAD + self.keyframes if self.psss else 0
        images = self.keyframes * (SEGMENT_OVERHEAD + KEYFRAME_PREFIX)
        return (self.header_bytes * (1 + self.trailing_header) + timing * (1 + self.repeat_timing) + motion + psss
                + images)


def _useful_count(count: int, cuts: int) -> int:
    """Two keyframes sit at the clip's two ends: across several shot cuts they predict nothing
    in between, and one typical keyframe held does better (bikes, 5 cuts, at 430 B: 12.1 dB
    against 13.3 dB)."""
    return 1 if count == 2 and cuts > 1 else count


def plan_layout(budget: int | None, count: int, cuts: int, header_bytes: int, psss: bool) -> tuple[Layout, int]:
    """Keyframe count, redundancy and bytes per image that fit ``budget``."""
    if budget is None:
        return Layout(count, cuts, header_bytes, psss), 0
    floor = 1  # one typical keyframe, held: the least a video can be
    # Redundancy goes first when bytes are short (kept while the images still get three times
    # their floor), then the PSSS scores (informative, not needed to decode).
    options = ((True, True, psss), (False, True, psss), (False, False, psss), (False, False, False))
    while True:
        for repeat_timing, trailing, with_psss in options:
            layout = Layout(count, cuts, header_bytes, with_psss, repeat_timing, trailing)
            per_image = (budget - layout.overhead) // count
            if per_image >= (3 * MIN_IMAGE_BYTES if trailing and repeat_timing else MIN_IMAGE_BYTES):
                return layout, per_image
        if count <= floor:
            need = layout.overhead + count * MIN_IMAGE_BYTES
            raise EncoderError(f"byte budget {budget} is below the minimum of {need} bytes for this video")
        count = _useful_count(count - 1, cuts)


CALM_CHANGE = 0.005  # mean per-frame thumbnail change of a calm clip (bigbuckbunny: 0.0049)
SHOT_KEYFRAME_BYTES = 150  # a keyframe per shot pays from this many bytes each


def keyframe_count(info: VideoInfo, config: EncoderConfig, change: float = CALM_CHANGE, shots: int = 1) -> int:
    """How many keyframes a budget buys: the bytes per keyframe grow with the square root of the
    bytes per second and fall with content change to the power 0.6. Fitted to keyframe-count
    scans on the bundled clips (2026-11-26, PSNR after `interp`): calm bigbuckbunny peaks at
    ~280 B a keyframe at 160 B/s and ~2.1 kB at 8 kB/s; busy bikes (5 times the change, 6 shots)
    at ~160 B at 310 B/s and ~580 B at 3.9 kB/s. Every shot wants its own."""
    by_time = max(2, math.floor(info.duration_s / CANDIDATE_SPACING_S) + 1)
    ceiling = min(info.frames, by_time)
    if config.keyframes is not None:
        return int(np.clip(config.keyframes, min(2, info.frames), info.frames))
    if config.byte_budget is None:
        return min(ceiling, max(2, round(info.duration_s)))  # about one per second
    per_second = config.byte_budget / max(info.duration_s, 1e-3)
    target = config.bytes_per_keyframe * (CALM_CHANGE / max(change, CALM_CHANGE)) ** 0.6
    target = float(np.clip(target * math.sqrt(per_second / 1500), MIN_IMAGE_BYTES, 6000))
    count = max(round(config.byte_budget / target), min(shots, config.byte_budget // SHOT_KEYFRAME_BYTES))
    return _useful_count(int(np.clip(count, min(2, info.frames), ceiling)), shots - 1)


@dataclass(frozen=True)
class FrameSource:
    """Frames that can be read more than once: the encoder makes two streaming passes (analysis,
    then the keyframes), so memory does not grow with the video's length."""

    fps: Fraction
    open: Callable[[], Iterator[np.ndarray]]

    @classmethod
    def of_video(cls, video: Video) -> FrameSource:
        return cls(video.fps, lambda: iter(video.frames))

    @classmethod
    def of_file(cls, path: str | Path, max_frames: int | None = None) -> FrameSource:
        return cls(probe_fps(path), lambda: iter_frames(path, max_frames))

    def collect(self, wanted: set[int], max_width: int | None = None) -> dict[int, np.ndarray]:
        """The frames at the ``wanted`` indices (optionally scaled down to ``max_width``)."""
        out = {}
        for t, frame in enumerate(self.open()):
            if t in wanted:
                out[t] = self.shrink(frame, max_width) if max_width else frame
                if len(out) == len(wanted):
                    break
        return out

    @staticmethod
    def shrink(frame: np.ndarray, max_width: int) -> np.ndarray:
        if frame.shape[1] <= max_width:
            return frame
        h = max(8, round(frame.shape[0] * max_width / frame.shape[1]))
        return cv2.resize(frame, (max_width, h), interpolation=cv2.INTER_AREA)


def _code_keyframes(source: FrameSource, keyframes: list[int], per_image: int,
                    scorer) -> tuple[list[CodedImage], list[float]]:  # noqa: ANN001
    """Code each keyframe as the stream passes it (only the coded bytes are kept), scoring PSSS
    against the previous keyframe on the way when ``scorer`` is given."""
    wanted = set(keyframes)
    images: dict[int, CodedImage] = {}
    p_prev: list[float] = []
    previous = None
    for t, frame in enumerate(source.open()):
        if t not in wanted:
            continue
        images[t] = encode_image(frame, per_image)
        small = FrameSource.shrink(frame, PSSS_WIDTH)
        if scorer is not None:
            p_prev.append(1.0 if previous is None else float(scorer.score([(previous, small)])[0]))
        previous = small
        if len(images) == len(wanted):
            break
    return [images[t] for t in keyframes], p_prev


DESCRIBE_WIDTH = 448  # describers see keyframes at this width (what captioning models take in)


def _describe(source: FrameSource, keyframes: list[int], motion: list[float], pan: list[tuple[float, float]],
              describer: Describer, cap: int | None) -> tuple[list[str], list[Segment]]:
    """One description per keyframe interval, shortened (last words first, longest caption
    first) until the compressed segments fit ``cap`` bytes."""
    frames = source.collect(set(keyframes), max_width=DESCRIBE_WIDTH)
    views = [IntervalView(frames[a], frames[b], m, p)
             for a, b, m, p in zip(keyframes[:-1], keyframes[1:], motion, pan, strict=True)]
    texts = [t.strip() for t in describer.describe(views)]

    def pack(texts: list[str]) -> list[Segment]:
        return [Segment(SegmentType.TEXT, i, compress_text(t)) for i, t in enumerate(texts) if t]

    segments = pack(texts)
    while cap is not None and segments and sum(len(s.pack()) for s in segments) > cap:
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        texts[longest] = " ".join(texts[longest].split()[:-1])
        segments = pack(texts)
    return texts, segments


def encode_video(video: Video, config: EncoderConfig) -> EncodedVideo:
    return encode_source(FrameSource.of_video(video), config)


def encode_source(source: FrameSource, config: EncoderConfig, analysis: Analysis | None = None) -> EncodedVideo:
    """Two passes over ``source``: analysis (skipped when given, e.g. by a rate controller that
    encodes the same video at several budgets), then keyframe coding. The keyframe track keeps
    the frames the analysis pass reads, while they fit ``STORE_BYTES``: one pass instead of two."""
    kept: dict[int, np.ndarray] | None = None
    if analysis is None:
        kept = {} if config.images == "track" else None
        analysis = analyse(_keeping(source.open(), kept, STORE_BYTES), source.fps)
    info = analysis.info
    if config.byte_budget is None and config.budget_for is not None:
        config = replace(config, byte_budget=int(config.budget_for(info)))
    if config.images == "track" and track_fits_memory(info):
        return encode_track_stream(source, config, analysis, kept if kept and len(kept) == info.frames else None)
    if config.images not in ("track", "intra"):
        raise EncoderError(f"unknown keyframe image mode {config.images!r}; known: track, intra")
    keyframes = "psss" if config.keyframe_mode == "psss" else "error-model"
    backends = {"kf": keyframes, "psss": config.psss, "img": "rd", "desc": config.describe}
    n_cuts = min(MAX_CUTS, len(analysis.cuts))
    probe = StreamHeader(info.width, info.height, info.fps, info.frames, 0, backends)
    count = keyframe_count(info, config, float(analysis.change.mean()), len(analysis.cuts) + 1)
    layout, per_image = plan_layout(config.byte_budget, count, n_cuts, len(probe.pack()),
                                    config.psss != "none")
    per_image = per_image or config.default_keyframe_bytes
    count = layout.keyframes
    header = StreamHeader(info.width, info.height, info.fps, info.frames, count, backends)
    scorer = None if config.psss == "none" else get_psss(config.psss)
    if config.keyframe_mode == "psss" and count > 1:
        if scorer is None:
            raise EncoderError("keyframe mode 'psss' needs a PSSS backend")
        wanted = set(candidate_frames(info.frames, float(info.fps), analysis.cuts))
        candidates = source.collect(wanted, max_width=PSSS_WIDTH)
        plan, p_prev = select_keyframes_psss_from(analysis.change, analysis.model_thumbs, candidates,
                                                  float(info.fps), count, scorer)
    elif config.keyframe_mode in ("error-model", "psss"):  # psss with one keyframe: the typical frame
        step = max(1, math.ceil(info.frames / MAX_CANDIDATES))
        plan = select_keyframes_from(analysis.change, analysis.model_thumbs, count, step)
        p_prev = None
    else:
        raise EncoderError(f"unknown keyframe mode {config.keyframe_mode!r}; known: error-model, psss")
    motion, pan = analysis.interval_motion(plan.frames), analysis.interval_pan(plan.frames)
    descriptions, text_segments = [], []
    describer = get_describer(config.describe)
    if describer is not None and len(plan.frames) > 1:
        text_cap = None
        if config.byte_budget is not None:  # text never pushes the images below their floor
            text_cap = max(0, min(int(config.text_share * config.byte_budget), (per_image - MIN_IMAGE_BYTES) * count))
        descriptions, text_segments = _describe(source, plan.frames, motion, pan, describer, text_cap)
        if config.byte_budget is not None:
            per_image -= -(-sum(len(s.pack()) for s in text_segments) // count)
    # A keyframe is one segment: at generous budgets (1 MB for a few 720p keyframes) the image
    # would outgrow the segment's 16-bit length; more bytes than that buy nothing visible anyway.
    per_image = min(per_image, MAX_IMAGE_BYTES)
    images, scored = _code_keyframes(source, plan.frames, per_image, scorer if p_prev is None else None)
    if p_prev is None:
        p_prev = scored
    cuts = plan.cuts[:MAX_CUTS]
    timing = Segment(SegmentType.KEYFRAME_TIMING, 0, pack_timing(plan.frames, cuts))
    # What every output frame depends on goes first (the link may protect this prefix more),
    # the keyframe images after it, and the redundant copies at the very end.
    segments = [timing, Segment(SegmentType.MOTION, 0, pack_motion(motion)),
                Segment(SegmentType.PAN, 0, pack_pan(pan))]
    segments += text_segments
    if p_prev and layout.psss:
        segments.append(Segment(SegmentType.PSSS, 0, pack_psss(p_prev)))
    critical_bytes = len(header.pack()) + sum(len(seg.pack()) for seg in segments)
    segments += [
        Segment(SegmentType.KEYFRAME_IMAGE, i, KeyframeImage(t, img.width, img.height, img.data).pack())
        for i, (t, img) in enumerate(zip(plan.frames, images, strict=True))
    ]
    if layout.repeat_timing:
        segments.append(timing)
    data = pack_stream(header, segments, trailing_header=layout.trailing_header)
    sizes = {"header": len(header.pack()) * (1 + layout.trailing_header),
             "timing": len(timing.pack()) * (1 + layout.repeat_timing),
             "keyframe_images": sum(len(s.pack()) for s in segments if s.type == SegmentType.KEYFRAME_IMAGE),
             "motion": sum(len(s.pack()) for s in segments if s.type in (SegmentType.MOTION, SegmentType.PAN)),
             "text": sum(len(s.pack()) for s in text_segments),
             "psss": sum(len(s.pack()) for s in segments if s.type == SegmentType.PSSS)}
    return EncodedVideo(data, plan, images, motion, header, descriptions, sizes, critical_bytes)


# -- the keyframe track ----------------------------------------------------------------------

REDUNDANCY_SHARE = 0.03  # trailing header and repeated timing while they cost at most this share
LOSSY_REDUNDANCY_SHARE = 0.10  # ... or this much when the link is expected to lose PDUs
SIDE_SHARE = 0.03  # motion, pan and PSSS scores ride along while they cost at most this share
RECOVERY_LOSS_PRODUCT = 0.2  # a recovery point every 0.2 / loss keyframes: at 10 % PDU loss every 2nd


MIN_STORE_WIDTH = 320  # the track codes from in-memory copies at least this wide (or the source's width)


def track_fits_memory(info: VideoInfo) -> bool:
    """Whether the track's copies of every frame fit ``STORE_BYTES`` wide enough to code from; a
    longer video (some 8 minutes of 640x272, 3 of 720p) is coded as intra images, which stream
    in constant memory (the stream's ``img`` backend says which)."""
    return store_width(info.frames, info.width, info.height, STORE_BYTES) >= min(info.width, MIN_STORE_WIDTH)


def recovery_interval(expected_loss: float) -> int | None:
    """Keyframes between intra keyframes for the loss the link is expected to show (None: only
    at shot cuts). A lost unit costs the rest of its chain, so the chain shortens as loss grows."""
    if expected_loss <= 0:
        return None
    return max(1, round(RECOVERY_LOSS_PRODUCT / expected_loss))


@dataclass(frozen=True)
class _TrackSide:
    """The segments besides the track for one keyframe plan, and what they leave the track."""

    segments: list[Segment]  # timing, motion, pan, text, PSSS: the critical prefix after the header
    timing: Segment
    redundant: bool  # trailing header and repeated timing
    track_budget: int


def _track_side(plan: KeyframePlan, analysis: Analysis, header: StreamHeader, budget: int | None,
                config: EncoderConfig, p_prev: list[float] | None, extra: list[Segment]) -> _TrackSide:
    """``extra``: the colour layout and descriptions, in the prefix after motion."""
    timing = Segment(SegmentType.TIMING, 0, pack_timing_v2(plan.frames, plan.cuts[:MAX_CUTS]))
    segments = [timing]
    share = budget if budget is not None else math.inf
    motion = analysis.interval_motion(plan.frames)
    side = [Segment(SegmentType.MOTION, 0, pack_motion(motion)),
            Segment(SegmentType.PAN, 0, pack_pan(analysis.interval_pan(plan.frames)))]
    if motion and sum(len(seg.pack()) for seg in side) <= SIDE_SHARE * share:
        segments += side
    segments += extra
    if p_prev and len(p_prev) + SEGMENT_OVERHEAD <= SIDE_SHARE * share / 3:
        segments.append(Segment(SegmentType.PSSS, 0, pack_psss(p_prev)))
    head = len(header.pack())
    limit = LOSSY_REDUNDANCY_SHARE if config.expected_loss > 0 else REDUNDANCY_SHARE
    redundant = head + len(timing.pack()) <= limit * share
    used = head * (1 + redundant) + sum(len(seg.pack()) for seg in segments) + redundant * len(timing.pack())
    used += config.base_bytes or 0  # reserved for the base layer
    return _TrackSide(segments, timing, redundant, (budget if budget is not None else 0) - used)


GREEDY_MAX_KEYFRAMES = 48  # denser tracks are spaced evenly per shot (the greedy search costs frames x keyframes)


def _keeping(frames: Iterator[np.ndarray], kept: dict[int, np.ndarray] | None, limit: int) -> Iterator[np.ndarray]:
    """``frames`` passed through, each also kept in ``kept`` until they outgrow ``limit`` bytes
    (then ``kept`` is emptied and stays so: the caller reads the source again)."""
    total = 0
    for t, frame in enumerate(frames):
        if kept is not None and total <= limit:
            total += frame.nbytes
            if total <= limit:
                kept[t] = frame
            else:
                kept.clear()
        yield frame


def encode_track_stream(source: FrameSource, config: EncoderConfig, analysis: Analysis,
                        kept: dict[int, np.ndarray] | None = None) -> EncodedVideo:
    """The keyframes as one predictive AV1 track, its structure chosen by rate-distortion on the
    decoder's real output (``semantic.track_search``)."""
    info = analysis.info
    keyframes = "psss" if config.keyframe_mode == "psss" else "error-model"
    if config.keyframe_mode not in ("error-model", "psss"):
        raise EncoderError(f"unknown keyframe mode {config.keyframe_mode!r}; known: error-model, psss")
    backends = {"kf": keyframes, "psss": config.psss, "img": "track-av1", "desc": config.describe}
    scorer = None if config.psss == "none" else get_psss(config.psss)
    if config.keyframe_mode == "psss" and scorer is None:
        raise EncoderError("keyframe mode 'psss' needs a PSSS backend")
    store_w = store_width(info.frames, info.width, info.height, STORE_BYTES)
    if kept is not None:  # the analysis pass's frames
        store = {t: FrameSource.shrink(frame, store_w) for t, frame in kept.items()}
    else:
        store = source.collect(set(range(info.frames)), max_width=store_w)
    eval_w = min(EVAL_WIDTH, store_width(info.frames, info.width, info.height, EVAL_BYTES))
    reference = np.stack([shrink(store[t], eval_w) for t in range(info.frames)])
    p_prev_by_count: dict[int, list[float]] = {}
    step = max(1, math.ceil(info.frames / MAX_CANDIDATES))
    # A layered stream's prefix also carries the colour layout: what a receiver shows when
    # even the base layer is lost, instead of mid-grey.
    prefix_layout = [_layout_segment(store.values(), BASE_LAYOUT)] if config.base_bytes else []

    def select(count: int) -> KeyframePlan:
        if config.keyframe_mode == "psss" and count > 1:
            wanted = candidate_frames(info.frames, float(info.fps), analysis.cuts)
            candidates = {t: FrameSource.shrink(store[t], PSSS_WIDTH) for t in wanted}
            plan, p_prev_by_count[count] = select_keyframes_psss_from(
                analysis.change, analysis.model_thumbs, candidates, float(info.fps), count, scorer)
            return plan
        if count > GREEDY_MAX_KEYFRAMES:
            return uniform_keyframes(analysis.change, count)
        return select_keyframes_from(analysis.change, analysis.model_thumbs, count, step)

    probe = StreamHeader(info.width, info.height, info.fps, info.frames, 0, backends)

    def side_for(plan: KeyframePlan) -> _TrackSide:
        # PSSS scores count as sent (a placeholder of their size) wherever they would be
        placeholder = [1.0] * len(plan.frames) if scorer is not None else None
        header = replace(probe, keyframes=len(plan.frames))  # as sent: the count's varint may be 2 bytes
        return _track_side(plan, analysis, header, config.byte_budget, config, placeholder, prefix_layout)

    def track_budget(plan: KeyframePlan) -> int:
        if config.byte_budget is None:
            return config.default_keyframe_bytes * len(plan.frames)
        return side_for(plan).track_budget

    def motion_sent(frames: list[int]) -> tuple[list[float], list[tuple[float, float]]]:
        """The motion side information the stream will carry for these keyframes (none when it
        costs too much): the search renders with what the decoder gets."""
        side = side_for(KeyframePlan(frames, analysis.cuts, analysis.change))
        kinds = {seg.type for seg in side.segments}
        sent = SegmentType.MOTION in kinds
        motion = unpack_motion(pack_motion(analysis.interval_motion(frames))) if sent else []
        return motion, unpack_pan(pack_pan(analysis.interval_pan(frames))) if sent else []

    search = TrackSearch(store, reference, info.fps, select, track_budget, get_decoder_tween("interp"),
                         motion_sent, info.width, recovery_interval(config.expected_loss))
    fixed = config.keyframes
    if config.byte_budget is None and fixed is None:
        fixed = keyframe_count(info, config, float(analysis.change.mean()), len(analysis.cuts) + 1)
    try:
        best = search.best(start_stride(max(track_budget(select(2)), 1), info.frames, info.width, info.height), fixed)
    except NoTrackFits as exc:  # not even one keyframe fits: the colour layout, or the header alone
        if fixed is not None and config.keyframes is not None:
            raise EncoderError(f"{config.keyframes} keyframes do not fit {config.byte_budget} bytes: {exc}") from None
        return _layout_stream(store.values(), probe, config.byte_budget or 0, analysis)
    if fixed is None and config.byte_budget is not None:  # a few keyframes at a tiny size can lose to it
        layout = _layout_stream(store.values(), probe, config.byte_budget, analysis)
        if _layout_score(layout, store) > best.score:
            return layout
    plan = best.plan
    header = StreamHeader(info.width, info.height, info.fps, info.frames, len(plan.frames), backends)
    p_prev = p_prev_by_count.get(len(plan.frames))
    if p_prev is None and scorer is not None:
        small = [FrameSource.shrink(store[t], PSSS_WIDTH) for t in plan.frames]
        p_prev = [1.0] + [float(scorer.score([(a, b)])[0]) for a, b in zip(small[:-1], small[1:], strict=True)]
    motion = analysis.interval_motion(plan.frames)
    descriptions, text = [], []
    describer = get_describer(config.describe)
    if describer is not None and len(plan.frames) > 1:
        cap = None if config.byte_budget is None else int(config.text_share * config.byte_budget)
        descriptions, text = _describe(source, plan.frames, motion, analysis.interval_pan(plan.frames), describer, cap)
    side = _track_side(plan, analysis, header, config.byte_budget, config, p_prev, prefix_layout + text)
    coding = best.coding
    if text and config.byte_budget is not None:  # the descriptions took bytes the search gave the track
        coding = search.refit(plan, best.coding.size, side.track_budget)
        if coding is None:  # no room for both: the track keeps its bytes, the text goes
            text, descriptions = [], []
            side = _track_side(plan, analysis, header, config.byte_budget, config, p_prev, prefix_layout)
            coding = best.coding
    if config.byte_budget is not None:  # the whole CRF step the search stopped at may leave bytes unused
        coding = search.refine(plan, coding, side.track_budget)
    chunks = [Segment(SegmentType.TRACK, i, c.pack()) for i, c in enumerate(chunk_units(coding.units))]
    base = base_layer_segments(store, len(reference), plan, config.base_bytes, info.fps) if config.base_bytes else []
    if config.base_bytes and not base:
        raise EncoderError(f"no base layer fits {config.base_bytes} bytes")
    segments = side.segments + base + chunks + ([side.timing] if side.redundant else [])
    data = pack_stream(header, segments, trailing_header=side.redundant)
    critical = len(header.pack()) + sum(len(seg.pack()) for seg in side.segments)
    sizes = {"header": len(header.pack()) * (1 + side.redundant),
             "timing": len(side.timing.pack()) * (1 + side.redundant),
             "keyframe_images": sum(len(seg.pack()) for seg in chunks),
             "motion": sum(len(s.pack()) for s in side.segments if s.type in (SegmentType.MOTION, SegmentType.PAN)),
             "text": sum(len(s.pack()) for s in text),
             "psss": sum(len(s.pack()) for s in side.segments if s.type == SegmentType.PSSS),
             "layout": sum(len(s.pack()) for s in prefix_layout),
             "base_layer": sum(len(s.pack()) for s in base)}
    return EncodedVideo(data, plan, [], motion, header, descriptions, sizes, critical, sizes["base_layer"])


def _layout_score(layout: EncodedVideo, store: dict[int, np.ndarray]) -> float:
    """PSNR of a layout stream's (constant) picture against the stored source frames: the size
    at which the track search scores its candidates."""
    segments = parse_stream(layout.data).of_type(SegmentType.LAYOUT)
    if not segments:
        return -math.inf
    h, w = next(iter(store.values())).shape[:2]
    image = ColourLayout(*unpack_layout(segments[0].payload)).image(w, h)
    return float(np.mean([psnr_frames(frame[None], image[None])[0] for frame in store.values()]))


LAYOUT_SIZES = ((28, 10), (15, 6), (6, 3), (3, 1), (1, 1))  # luma, chroma coefficients, richest first
BASE_LAYOUT = LAYOUT_SIZES[1]  # in a layered stream's prefix: some 40 bytes


def _layout_segment(frames: Iterable[np.ndarray], size: tuple[int, int]) -> Segment:
    layout = ColourLayout.of_frames(list(frames), *size)
    return Segment(SegmentType.LAYOUT, 0, pack_layout(layout.y, layout.cb, layout.cr))


def _layout_stream(frames: Iterable[np.ndarray], header: StreamHeader, budget: int, analysis: Analysis
                   ) -> EncodedVideo:
    """Below the smallest keyframe: the richest colour layout that fits with the header, else the
    header alone (the decoder still returns a video of exact length and rate)."""
    head = len(header.pack())
    if budget < head:
        raise EncoderError(f"byte budget {budget} is below the {head}-byte stream header: nothing can be sent")
    frames = list(frames)
    segments = []
    for size in LAYOUT_SIZES:
        segment = _layout_segment(frames, size)
        if head + len(segment.pack()) <= budget:
            segments = [segment]
            break
    header = replace(header, keyframes=0)
    data = pack_stream(header, segments, trailing_header=False)
    plan = KeyframePlan([], analysis.cuts, analysis.change)
    sizes = {"header": head, "layout": sum(len(seg.pack()) for seg in segments)}
    return EncodedVideo(data, plan, [], [], header, [], sizes, len(data))
