"""LGVSC bitstream -> video of exactly the source frame count, through a decoder backend.

Backends sit in a small registry (CompressAI style). Every backend places each received keyframe
at its frame index and fills the frames between neighbouring received keyframes of a shot:
``interp`` (CPU default) by motion-compensated interpolation, ``crossfade`` by blending,
``diffusers:<id>`` by a video diffusion model (``semantic.diffusion_decoder``) prompted with the
interval's description and motion. Before a shot's first keyframe and after its last the
picture holds. Lost keyframes simply widen an interval; with none at all the output is the
stream's colour layout (or mid-grey without one) at the right size, length and rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from semantic.bitstream import (
    TIMING_KINDS,
    BitstreamError,
    KeyframeImage,
    ParsedStream,
    Segment,
    SegmentType,
    StreamHeader,
    first_segment,
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
from semantic.track import TrackDecoder, base_units, decode_track, track_units
from semantic.tween_kernels import CRACK_BLUR, NO_MOTION, Affine, blend_weights, sample_maps, splat
from semantic.video_io import upscale


class DecoderError(ValueError):
    pass


@dataclass
class Keyframe:
    """A received keyframe; its full-size image is made when first needed and released after use,
    so a stream holds coded bytes (intra images) or coded-size pictures (the track), not full-size
    images."""

    frame: int
    data: bytes  # an intra-coded image (empty for a track keyframe)
    width: int  # the stream's resolution
    height: int
    _image: np.ndarray | None = None
    coded: np.ndarray | None = None  # a track keyframe as libdav1d decoded it, at its coded size
    from_base: bool = False  # a layered stream's base layer gave it (the track's copy was lost)

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
    keyframes_from_base: list[int] = field(default_factory=list)  # received keyframes the base layer gave
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
    units = track_units(parsed.segments, notes)
    if units:
        track = decode_track(units, header.width, header.height, len(plan) if plan else None)
        keyframes += track_keyframes(track, plan or [], header, notes)
    keyframes += base_keyframes(parsed.segments, plan or [], header, {k.frame for k in keyframes}, notes)
    by_frame = {k.frame: k for k in keyframes}  # one keyframe per frame, whichever came first
    return sorted(by_frame.values(), key=lambda k: k.frame), notes


def track_keyframes(track: TrackDecoder, plan: list[int], header: StreamHeader, notes: list[str] | None,
                    ordinals: list[int] | None = None) -> list[Keyframe]:
    """Keyframes for the decoded track units ``ordinals`` (default all), placed by ``plan``."""
    out, unplaced = [], []
    for i in sorted(track.images) if ordinals is None else ordinals:
        if i < len(plan) and plan[i] < header.frames:
            out.append(Keyframe(plan[i], b"", header.width, header.height, coded=track.images[i]))
        else:
            unplaced.append(i)
    if notes is not None:
        if unplaced:
            notes.append(f"{len(unplaced)} track keyframe(s) without a frame in the timing segment")
        if track.lost:
            lost = sorted(track.lost)
            shown = ", ".join(map(str, lost[:8])) + (", ..." if len(lost) > 8 else "")
            notes.append(f"{len(lost)} track keyframe(s) lost or without their reference: {shown}")
    return out


def base_keyframes(segments: list[Segment], plan: list[int], header: StreamHeader, have: set[int],
                   notes: list[str]) -> list[Keyframe]:
    """A layered stream's base layer, for the keyframes the track did not give (it travels on a
    more robust MCS: below the track's threshold it is all that arrives)."""
    stride, units = base_units(segments, notes)
    if not units:
        return []
    layer = decode_track(units, header.width, header.height, None)
    out = []
    for i in sorted(layer.images):
        if i * stride < len(plan) and plan[i * stride] < header.frames and plan[i * stride] not in have:
            out.append(Keyframe(plan[i * stride], b"", header.width, header.height, coded=layer.images[i],
                                from_base=True))
    if out:
        notes.append(f"{len(out)} keyframe(s) from the base layer")
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
    received keyframe; with none at all the output is the colour layout, else mid-grey. Never
    blends across a cut."""
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


FLOW_WIDTH = 320  # optical flow, motion models and occlusion reasoning on a copy this wide
STRAIGHT_MOTION_RATIO = 4.0  # path length / net displacement beyond which motion is not one straight move
FB_TRUSTED_PX, FB_FAILED_PX = 1.0, 3.0  # forward-backward disagreement (full-size px): flow trusted / not
FIT_GREY, MISFIT_GREY = 6.0, 16.0  # local mean |grey difference| under the global model: it fits / it does not
PAN_MODEL_PX = 3.0  # side-information pan over an interval (full-size px) from which it is a model candidate
GLOBAL_POINTS = 600  # flow vectors on a grid for the global fit
SPLAT_FLOOR = 0.02  # splat weight of a pixel nothing vouches for: it only fills what nothing else reaches


def _flow(src: np.ndarray, dst: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
    """Dense flow src -> dst between two small grey images (DIS), searched from ``init`` if given
    (a global motion too large for DIS's pyramid)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(src, dst, None if init is None else init.copy())


Similarity = tuple[complex, complex]  # z -> m z + t on pixel positions as complex numbers x + iy


def _power(model: Similarity, alpha: float) -> Similarity:
    """The similarity applied ``alpha`` times: where a pan, zoom and rotation is after that fraction."""
    m, t = model
    m_alpha = complex(np.exp(alpha * np.log(m)))
    return m_alpha, t * (alpha if abs(m - 1) < 1e-9 else (m_alpha - 1) / (m - 1))


def _matrix(model: Similarity) -> np.ndarray:
    m, t = model
    return np.array([[m.real, -m.imag, t.real], [m.imag, m.real, t.imag]])


def _displacement(model: Similarity, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """G(x) - x on the grid gx, gy: (h, w, 2) float32."""
    m, t = model
    return np.dstack([(m.real - 1) * gx - m.imag * gy + t.real,
                      m.imag * gx + (m.real - 1) * gy + t.imag]).astype(np.float32)


def _field(model: Similarity, alpha: float = 1.0) -> Affine:
    """The displacement field of ``model`` applied ``alpha`` times (``_displacement`` as coefficients)."""
    m, t = _power(model, alpha)
    return m - 1, t


def _less(f: Affine, g: Affine, k: float = 1.0) -> Affine:
    """The field f - k g."""
    return f[0] - k * g[0], f[1] - k * g[1]


def _inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = x.shape
    return (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)


def _pan_displacement(side: SideInfo, a: int, b: int) -> tuple[float, float] | None:
    """Net displacement (full-size px) from frame a to b by the side information's pan."""
    frames = side.keyframe_frames
    if not side.pan or len(side.pan) + 1 != len(frames):
        return None
    dx = dy = 0.0
    for lo, hi, (px, py) in zip(frames[:-1], frames[1:], side.pan, strict=True):
        overlap = min(hi, b) - max(lo, a)
        if overlap > 0:
            dx, dy = dx + px * overlap, dy + py * overlap
    return dx, dy


def _consistency(f_ab: np.ndarray, f_ba: np.ndarray, gx: np.ndarray, gy: np.ndarray,
                 scale: float) -> np.ndarray:
    """Per pixel of the first image, 1 where following f_ab then f_ba comes back (within
    FB_TRUSTED_PX at full size, ``scale`` px per small px), 0 from FB_FAILED_PX, and 0 where f_ab
    leaves the picture (that content is not in the other image)."""
    tx, ty = gx + f_ab[..., 0], gy + f_ab[..., 1]
    back = cv2.remap(f_ba, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = np.linalg.norm(f_ab + back, axis=2) * scale
    return np.clip((FB_FAILED_PX - error) / (FB_FAILED_PX - FB_TRUSTED_PX), 0.0, 1.0) * _inside(tx, ty)


def _residual(src: np.ndarray, warped: np.ndarray) -> np.ndarray:
    """Local mean |warped - (gain * src + offset)|: how far the other image, brought onto src by a
    motion model, is from src, with a global brightness change (a fade) taken out. The gain is
    the ratio of spreads, so that the gain from b to a is the inverse of that from a to b."""
    x, y = src.astype(np.float32), warped.astype(np.float32)
    spread_x, spread_y = float(x.std()), float(y.std())
    gain = float(np.clip(spread_y / spread_x, 0.5, 2.0)) if min(spread_x, spread_y) > 2.0 else 1.0
    return cv2.blur(np.abs(y - gain * x - (float(y.mean()) - gain * float(x.mean()))), (5, 5))


def _fit(src: np.ndarray, dst: np.ndarray, model: Similarity, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Per pixel of src, how well ``model`` maps it onto dst: 1 up to FIT_GREY of residual, 0 from
    MISFIT_GREY and where the model takes it out of the picture."""
    warped = cv2.warpAffine(dst, _matrix(model), src.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    fit = np.clip((MISFIT_GREY - _residual(src, warped)) / (MISFIT_GREY - FIT_GREY), 0.0, 1.0)
    d = _displacement(model, gx, gy)
    return fit * _inside(gx + d[..., 0], gy + d[..., 1])


def _global_model(ga: np.ndarray, gb: np.ndarray, f_ab: np.ndarray, trust: np.ndarray,
                  pan: tuple[float, float] | None) -> tuple[Similarity | None, str]:
    """The similarity (pan, zoom, rotation) that maps a onto b: fitted robustly (RANSAC) to the
    trusted flow vectors on a grid, or the side information's ``pan`` (small px over the
    interval), whichever leaves the smaller grey residual; None (with how: "none") when neither
    beats no motion at all. How: "fit" or "pan"."""
    h, w = ga.shape
    step = max(1, round(float(np.sqrt(h * w / GLOBAL_POINTS))))
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step].reshape(2, -1)
    keep = trust[ys, xs] > 0.5
    candidates: list[tuple[Similarity, str]] = [((1 + 0j, 0j), "none")]
    if keep.sum() >= 12:
        src = np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32)
        matrix, inliers = cv2.estimateAffinePartial2D(src, src + f_ab[ys[keep], xs[keep]], method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.0, maxIters=500, confidence=0.995,
                                                      refineIters=10)
        if matrix is not None and inliers.sum() >= max(12, 0.2 * keep.sum()):
            m = complex(matrix[0, 0], matrix[1, 0])
            if 0.5 <= abs(m) <= 2.0:
                candidates.append(((m, complex(matrix[0, 2], matrix[1, 2])), "fit"))
    if pan is not None:
        candidates.append(((1 + 0j, complex(*pan)), "pan"))
    best, best_error = candidates[0], None
    inner = (slice(step, -step), slice(step, -step)) if min(h, w) > 4 * step else (slice(None), slice(None))
    for model, how in candidates:
        warped = cv2.warpAffine(gb, _matrix(model), (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.warpAffine(np.ones_like(gb), _matrix(model), (w, h),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)[inner] > 0
        if valid.mean() < 0.25:
            continue
        error = float(_residual(ga[inner], warped[inner])[valid].mean())
        if best_error is None or error < best_error:
            best, best_error = (model, how), error
    return (None, "none") if best[1] == "none" else best


@dataclass
class _IntervalMotion:
    """How the content moves from keyframe a to keyframe b, on the small grid (FLOW_WIDTH wide)."""

    f_ab: np.ndarray  # (h, w, 2) small px: the dense flow where trusted, the global model elsewhere
    f_ba: np.ndarray
    matched_a: np.ndarray  # (h, w) 0..1: a's pixel is found in b (consistent flow, or the global model fits)
    matched_b: np.ndarray
    model: Similarity | None  # global motion a -> b (small px), if one beats no motion
    how: str  # where the model came from: "fit" (to the flow), "pan" (side information) or "none"
    scale: tuple[float, float]  # full-size px per small px (x, y)


def _interval_motion(image_a: np.ndarray, image_b: np.ndarray, pan: tuple[float, float] | None) -> _IntervalMotion:
    """Dense DIS flow both ways with a forward-backward check, and the global similarity that
    covers what the flow does not; ``pan``: the side information's displacement (full-size px)."""
    h, w = image_a.shape[:2]
    ws = min(FLOW_WIDTH, w)
    hs = max(MIN_SIDE, round(h * ws / w))  # DIS needs some height (a very wide picture is squeezed less)
    sx, sy = w / ws, h / hs
    ga, gb = (cv2.resize(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), (ws, hs), interpolation=cv2.INTER_AREA)
              for x in (image_a, image_b))
    gx, gy = np.meshgrid(np.arange(ws, dtype=np.float32), np.arange(hs, dtype=np.float32))
    pan_small = (pan[0] / sx, pan[1] / sy) if pan is not None and np.hypot(*pan) >= PAN_MODEL_PX else None
    f_ab, f_ba = _flow(ga, gb), _flow(gb, ga)
    c_a = _consistency(f_ab, f_ba, gx, gy, sx)
    model, how = _global_model(ga, gb, f_ab, c_a, pan_small)
    if how == "pan":  # the flow missed the global motion (beyond DIS's reach): search again from it
        f_ab = _flow(ga, gb, _displacement(model, gx, gy))
        f_ba = _flow(gb, ga, _displacement(_power(model, -1.0), gx, gy))
        c_a = _consistency(f_ab, f_ba, gx, gy, sx)
        model, how = _global_model(ga, gb, f_ab, c_a, pan_small)
    c_b = _consistency(f_ba, f_ab, gx, gy, sx)
    matched_a, matched_b = c_a, c_b
    if model is not None:
        inverse = _power(model, -1.0)
        f_ab = c_a[..., None] * f_ab + (1 - c_a[..., None]) * _displacement(model, gx, gy)
        f_ba = c_b[..., None] * f_ba + (1 - c_b[..., None]) * _displacement(inverse, gx, gy)
        matched_a = np.maximum(c_a, _fit(ga, gb, model, gx, gy))
        matched_b = np.maximum(c_b, _fit(gb, ga, inverse, gx, gy))
    return _IntervalMotion(f_ab, f_ba, matched_a.astype(np.float32), matched_b.astype(np.float32), model, how,
                           (sx, sy))


def _motion_compensated(a: Keyframe, b: Keyframe, side: SideInfo) -> Iterator[np.ndarray]:
    """Motion-compensated frames between keyframes a and b.

    Motion (``_interval_motion``): DIS flow both ways on a small grey copy; a flow vector is
    trusted where the forward-backward check passes. A global similarity (pan, zoom, rotation)
    is fitted by RANSAC to the trusted vectors, or taken from the side information's pan when
    the fit fails or leaves the larger residual (then the flow is searched again from it: DIS
    alone misses a pan of a hundred small pixels). Where the flow is not trusted, the global
    model moves the pixel, if it fits there (grey residual after taking out a fade's gain).

    Frame t (alpha of the way): every pixel of a and of b is splatted forward to where it is at
    t (straight along its flow, plus the global model's own curved path of zoom and rotation),
    carrying its displacement to a and to b; cracks take their neighbours'. Each output pixel
    then samples both keyframes, blended by time. Occlusion: where a's sample is clearly found
    in b and b's is not (b's pixel was hidden in a, or came in at the border), the pixel comes
    from b alone, and vice versa (``tween_kernels.OCCLUSION_MARGIN`` keeps flow noise from picking one side);
    where one keyframe's sample falls outside it, from the other. Where neither motion is
    vouched for (no trusted flow, no fitting global model), the plain cross-fade.

    The motion side information decides whether straight-line motion is plausible at all: if
    the content travelled far more than the mean displacement between the keyframes (it moved
    and came back, or the flow failed), the whole interval is cross-faded.
    """
    if b.frame - a.frame < 2:
        return
    if min(a.image.shape[:2]) < MIN_SIDE:  # too small for optical flow to say anything
        yield from _crossfade(a, b)
        return
    motion = _interval_motion(a.image, b.image, _pan_displacement(side, a.frame, b.frame))
    f_ab, f_ba, model = motion.f_ab, motion.f_ba, motion.model
    sx, sy = motion.scale
    path = side.path_length(a.frame, b.frame)
    net = float(np.mean(np.hypot(f_ab[..., 0] * sx, f_ab[..., 1] * sy)))  # a mean, as the side information's
    if path is not None and path > STRAIGHT_MOTION_RATIO * max(net, 1.0):
        yield from _crossfade(a, b)
        return
    h, w = a.image.shape[:2]
    hs, ws = f_ab.shape[:2]
    lost_a, lost_b = 1 - motion.matched_a, 1 - motion.matched_b
    # every pixel of a and of b carries its motion a -> b to where it is at time t, weighted by how
    # well it is vouched for
    f_ab, f_ba = (np.ascontiguousarray(f, np.float32) for f in (f_ab, f_ba))
    weight_a, weight_b = (np.ascontiguousarray(SPLAT_FLOOR + m, np.float32)
                          for m in (motion.matched_a, motion.matched_b))
    same_size = (w, h) == (ws, hs)  # the track search's evaluation size: the flow's own grid
    if not same_size:
        gx, gy = np.meshgrid(np.arange(ws, dtype=np.float32), np.arange(hs, dtype=np.float32))
        full = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
        to_full = np.array([sx, sy, sx, sy], np.float32)
    for t in range(a.frame + 1, b.frame):
        alpha = (t - a.frame) / (b.frame - a.frame)
        move_a = move_b = prior = bend = NO_MOTION  # where each pixel of a and of b is at time t: along its flow
        if model is not None:  # plus the global model's own curved path of zoom and rotation
            inverse = _power(model, -1.0)
            move_a = _less(_field(model, alpha), _field(model), alpha)
            move_b = _less(_field(inverse, 1 - alpha), _field(inverse), 1 - alpha)
            back = _field(model, -alpha)
            prior = _less(_field(model, 1 - alpha), back)  # the model's motion a -> b of what is at x at time t
            bend = _less(back, prior, -alpha)  # how far its path (zoom, rotation) is from a straight line
        acc = splat(f_ab, f_ba, weight_a, weight_b, alpha, move_a, move_b)
        acc += CRACK_BLUR * cv2.GaussianBlur(acc, (0, 0), 1.0)  # cracks (zoom in) take their neighbours' motion
        maps = sample_maps(acc, alpha, prior, bend)  # nothing landed at all: the global model's motion
        miss_a = cv2.remap(lost_a, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        miss_b = cv2.remap(lost_b, maps[2], maps[3], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        k = blend_weights(maps, miss_a, miss_b, alpha)
        if same_size:
            wa = cv2.remap(a.image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            wb = cv2.remap(b.image, maps[2], maps[3], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            k_a, k_b = k[0], k[1]
        else:
            disp = np.dstack([maps[0] - gx, maps[1] - gy, maps[2] - gx, maps[3] - gy]) * to_full
            disp_full = cv2.resize(disp, (w, h), interpolation=cv2.INTER_LINEAR)
            wa = cv2.remap(a.image, full + disp_full[..., :2], None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            wb = cv2.remap(b.image, full + disp_full[..., 2:], None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            k_full = cv2.resize(np.dstack([k[0], k[1]]), (w, h), interpolation=cv2.INTER_LINEAR)
            k_a, k_b = np.ascontiguousarray(k_full[..., 0]), np.ascontiguousarray(k_full[..., 1])
        out = cv2.blendLinear(wa, wb, k_a, k_b)
        warped = k_a + k_b
        if float(warped.min()) < 0.999:  # somewhere neither keyframe's motion is vouched for: cross-fade there
            plain = cv2.addWeighted(a.image, 1 - alpha, b.image, alpha, 0)
            out = cv2.blendLinear(out, plain, warped, np.maximum(1 - warped, 0))
        yield out


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
    side = side_info(parsed.segments, None, notes, header.frames)
    keyframes, kf_notes = received_keyframes(parsed, header, side.keyframe_frames)
    notes += kf_notes
    if not side.keyframe_frames and keyframes:
        notes.append("timing segment lost: shot cuts unknown, blending across them")
    if parsed.corrupt_regions:
        notes.append(f"{parsed.corrupt_regions} damaged or missing stretch(es) skipped")
    return DecodedVideo(lambda: backend(keyframes, header, side), header.fps, header, side.keyframe_frames,
                        [k.frame for k in keyframes], decoder, notes, [k.frame for k in keyframes if k.from_base])


def side_info(segments: list[Segment], plan: list[int] | None = None, notes: list[str] | None = None,
              frames: int | None = None) -> SideInfo:
    """What the stream says beside the keyframes, from whichever of its segments arrived (a
    timing segment that places keyframes outside the header's ``frames`` counts as damaged)."""
    expected, cuts = [], []
    timing = first_segment(segments, *TIMING_KINDS)
    if timing is not None:
        try:
            expected, cuts = timing_of(timing, frames)
        except BitstreamError as exc:
            if notes is not None:
                notes.append(str(exc))
    magnitude, pan = [], []
    if (seg := first_segment(segments, SegmentType.MOTION)) is not None:
        magnitude = unpack_motion(seg.payload)
    if (seg := first_segment(segments, SegmentType.PAN)) is not None:
        pan = unpack_pan(seg.payload)
    texts = {seg.index: decompress_text(seg.payload) for seg in segments if seg.type == SegmentType.TEXT}
    layout = None
    if (seg := first_segment(segments, SegmentType.LAYOUT)) is not None:
        try:
            layout = ColourLayout(*unpack_layout(seg.payload))
        except BitstreamError as exc:
            if notes is not None:
                notes.append(str(exc))
    return SideInfo(cuts, plan if plan is not None else expected, magnitude, pan,
                    {i: t for i, t in texts.items() if t}, layout)
