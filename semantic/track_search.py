"""Rate-distortion search over the keyframe track's structure: how many keyframes (up to every
frame), where (``semantic.keyframes``), at which resolution and CRF (``semantic.track.fit_track``),
judged on what the decoder really shows: the track decoded by libdav1d and the frames between
keyframes rendered by the ``interp`` decoder, against the source, at a reduced evaluation size.

With a keyframe on every frame the track is plain AV1 of the whole video, so the search can
always fall back to the best conventional coding and pays only the side information; with
fewer keyframes the same bytes buy sharper keyframes and the decoder's motion-compensated
interpolation fills the rest. Which wins depends on the clip and the budget: the search
measures it instead of guessing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from semantic.bitstream import StreamHeader
from semantic.decoder import FLOW_WIDTH, Keyframe, SideInfo, Tween, render_planned
from semantic.keyframes import KeyframePlan
from semantic.metrics import psnr_frames
from semantic.track import TrackCoding, fit_crf, fit_track, refine_track
from semantic.video_io import upscale

EVAL_WIDTH = FLOW_WIDTH  # candidates are compared at the width the decoder's flows run at
EVAL_BYTES = 256 << 20  # the evaluation copy of the video stays under this (narrower for long videos)
STORE_BYTES = 768 << 20  # the source frames the track codes from stay under this
RENDER_THREADS = max(1, min(4, os.cpu_count() or 1))  # candidates' intervals rendered at once
STRIDES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# Bytes per frame per 100k source pixels at which each stride was best on the bundled clips
# (2026-11-30): ~3.4 -> stride 8, ~36 -> stride 2; stride ~ 13 / sqrt(that). Only the start of
# the search: it then walks to the measured best.
STRIDE_FIT = 13.0


def store_width(frames: int, width: int, height: int, limit: int) -> int:
    """The widest copy of ``frames`` frames that fits ``limit`` bytes as RGB (never upscaled)."""
    per_frame = max(1, limit // max(frames, 1))
    return int(min(width, max(32, math.sqrt(per_frame / 3 * width / height))))


def shrink(frame: np.ndarray, width: int) -> np.ndarray:
    if frame.shape[1] <= width:
        return frame
    h = max(8, round(frame.shape[0] * width / frame.shape[1]))
    return cv2.resize(frame, (width, h), interpolation=cv2.INTER_AREA)


def count_for_stride(frames: int, stride: int) -> int:
    return max(1, math.ceil((frames - 1) / stride) + 1) if stride < frames else 1


def start_stride(budget: int, frames: int, width: int, height: int) -> int:
    per_frame = budget / max(frames, 1) / max(width * height / 1e5, 1e-3)
    guess = STRIDE_FIT / math.sqrt(max(per_frame, 1e-3))
    return min(STRIDES, key=lambda s: abs(math.log(s / max(guess, 1.0))))


GUESS_BITS_PER_PIXEL = 0.1  # what AV1 at its coarsest CRF spends per keyframe pixel (bikes: 0.07 to 0.3)


def first_scale(budget: int, images: list[np.ndarray]) -> float:
    """Where the resolution search starts when nothing better is known."""
    h, w = images[0].shape[:2]
    return min(1.0, math.sqrt(budget * 8 / (len(images) * w * h * GUESS_BITS_PER_PIXEL)))


def _intra(plan: KeyframePlan) -> set[int]:
    """The keyframes (by position) that open a shot: intra units, recovery points."""
    cuts = set(plan.cuts)
    return {i for i, t in enumerate(plan.frames) if t in cuts}


def keyframe_psnr(decoded: list[np.ndarray], refs: list[np.ndarray]) -> float:
    """Mean PSNR of the decoded keyframes, scaled as the decoder scales them, against the
    stored source frames: at the evaluation size a coarser resolution's lost detail would
    not show, and a search would trade resolution for CRF wrongly."""
    h, w = refs[0].shape[:2]
    scaled = np.empty_like(refs[0])  # one buffer: a fresh full-size copy per keyframe cost more in page faults
    return float(np.mean([psnr_frames(r[None], upscale(d, w, h, scaled)[None])[0]
                          for r, d in zip(refs, decoded, strict=True)]))


class NoTrackFits(ValueError):
    pass


MAX_TRACK_UNITS = 0xFFFF  # a chunk numbers its first unit in 16 bits


@dataclass(frozen=True)
class Candidate:
    plan: KeyframePlan
    coding: TrackCoding
    score: float  # mean PSNR of the rendered video, estimated at the stored size (``_full_size_score``)


@dataclass
class TrackSearch:
    """Everything a candidate needs; ``best`` walks the strides from a predicted start."""

    store: dict[int, np.ndarray]  # source frames (every frame, at the store width)
    reference: np.ndarray  # (T, h, w, 3) the source at the evaluation size
    fps: Fraction
    select: Callable[[int], KeyframePlan]  # keyframe count -> keyframe plan
    track_budget: Callable[[KeyframePlan], int]  # bytes left for the track's chunks
    tween: Tween
    motion: Callable[[list[int]], tuple[list[float], list[tuple[float, float]]]]  # per interval, full size
    full_width: int
    intra_every: int | None = None  # recovery point every this many keyframes (None: at cuts only)
    last_scale: float | None = None  # the coded scale the last candidate chose: where the next one starts

    def evaluate(self, count: int, render: bool = True) -> Candidate | None:
        """The best coding of ``count`` keyframes, scored by the rendered video (or, without
        ``render``, by its keyframes alone: enough when nothing is compared with it)."""
        plan = self.select(count)
        budget = self.track_budget(plan)
        if budget <= 0:
            return None
        images = [self.store[t] for t in plan.frames]
        intra = _intra(plan)
        coding = fit_track(images, budget, lambda decoded: keyframe_psnr(decoded, images), intra,
                           self.intra_every, self._rate(plan), self.last_scale or first_scale(budget, images))
        if coding is None:
            return None
        self.last_scale = coding.size[0] / images[0].shape[1]
        return Candidate(plan, coding, self._full_size_score(plan, coding) if render else coding.quality)

    def refit(self, plan: KeyframePlan, size: tuple[int, int], budget: int) -> TrackCoding | None:
        """The chosen structure again at ``size``, its CRF fitted to a smaller ``budget``."""
        intra = _intra(plan)
        return fit_crf([self.store[t] for t in plan.frames], size, budget, intra, self.intra_every, self._rate(plan))

    def refine(self, plan: KeyframePlan, coding: TrackCoding, budget: int) -> TrackCoding:
        """The chosen coding at the finest CRF that still fits ``budget`` (``refine_track``)."""
        intra = _intra(plan)
        return refine_track([self.store[t] for t in plan.frames], coding, budget, intra, self.intra_every,
                            self._rate(plan))

    def _rate(self, plan: KeyframePlan) -> Fraction:
        rate = self.fps * len(plan.frames) / max(len(self.reference), 1)
        return Fraction(rate).limit_denominator(1000) or Fraction(1)

    def _full_size_score(self, plan: KeyframePlan, coding: TrackCoding) -> float:
        """Mean PSNR of the rendered video, rendered at the evaluation size and moved to the stored
        size by what the keyframes lose between the two (their detail, which the evaluation size
        hides), frames between keyframes assumed to lose as much: else sparser, sharper keyframes
        are underrated (bigbuckbunny at 43 kB: 0.2 dB lost to a denser track)."""
        scores = self._render_psnr(plan, coding)
        at_eval_size = float(np.mean([scores[t] for t in plan.frames]))
        return float(np.mean(scores)) - (at_eval_size - coding.quality)

    def _render_psnr(self, plan: KeyframePlan, coding: TrackCoding) -> list[float]:
        """Per-frame PSNR of the video the decoder renders from this candidate, at the evaluation
        size. The intervals between keyframes are independent, so they are rendered on parallel
        threads (OpenCV and NumPy release the GIL): the same frames ``render_planned`` shows, in a
        fraction of the time."""
        total, h, w = len(self.reference), *self.reference.shape[1:3]
        header = StreamHeader(w, h, self.fps, total, len(plan.frames))
        motion, pan = self.motion(plan.frames)
        k = w / self.full_width  # side information in pixels of the evaluation size
        side = SideInfo(plan.cuts, plan.frames, [m * k for m in motion], [(x * k, y * k) for x, y in pan])
        keyframes = [Keyframe(t, b"", w, h, coded=img) for t, img in zip(plan.frames, coding.decoded, strict=True)]
        intervals: list[tuple[Keyframe, Keyframe]] = []

        def deferred(a: Keyframe, b: Keyframe, _side: SideInfo) -> Iterator[None]:
            intervals.append((a, b))
            return iter([None] * max(b.frame - a.frame - 1, 0))

        scores = [math.nan if frame is None else self._psnr(t, frame) for t, frame in
                  enumerate(render_planned(plan.frames, header, side, deferred, lambda i: keyframes[i]))]

        def interval_scores(pair: tuple[Keyframe, Keyframe]) -> list[tuple[int, float]]:
            a, b = pair
            return [(t, self._psnr(t, frame)) for t, frame in zip(range(a.frame + 1, b.frame),
                                                                  self.tween(a, b, side), strict=True)]

        with ThreadPoolExecutor(RENDER_THREADS) as pool:
            for done in pool.map(interval_scores, intervals):
                for t, score in done:
                    scores[t] = score
        return scores

    def _psnr(self, t: int, frame: np.ndarray) -> float:
        return float(psnr_frames(self.reference[t][None], frame[None])[0])

    def best(self, start: int, fixed_count: int | None = None) -> Candidate:
        """The best candidate found by walking the strides from ``start`` while quality grows
        (quality against stride is unimodal on every clip measured: more keyframes first buy
        motion, then starve each keyframe of bytes)."""
        total = len(self.reference)
        if fixed_count is not None:
            found = self.evaluate(min(max(fixed_count, 1), total, MAX_TRACK_UNITS), render=False)
            if found is None:
                raise NoTrackFits(f"no track of {fixed_count} keyframes fits the budget")
            return found
        strides = [s for s in STRIDES if s < total and count_for_stride(total, s) <= MAX_TRACK_UNITS] + [total]
        tried: dict[int, Candidate | None] = {}

        def at(i: int) -> float:
            if i not in tried:
                tried[i] = self.evaluate(count_for_stride(total, strides[i]))
            found = tried[i]
            return -math.inf if found is None else found.score

        i = min(range(len(strides)), key=lambda j: abs(strides[j] - start))
        while at(i) == -math.inf and i + 1 < len(strides):  # nothing fits: fewer keyframes
            i += 1
        for step in (-1, 1):
            while 0 <= i + step < len(strides) and at(i + step) > at(i):
                i += step
        if tried.get(i) is None:
            raise NoTrackFits("no keyframe track fits the budget")
        return tried[i]
