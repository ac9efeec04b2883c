"""The base layer of a layered stream: a second, coarser keyframe track of every stride-th keyframe.

A broadcast reaches receivers at many SNRs and a fading link changes faster than feedback, so
the transmitter cannot pick one MCS that is both fast and always received. The layered stream
sends its critical prefix and this base layer on robust MCSs and the keyframe track on the
fast one: a receiver that loses the track's PDUs still has every stride-th keyframe at a low
resolution, and the decoder interpolates a whole video from them instead of showing grey.

The base layer costs bytes that duplicate the track where both arrive; the rate control gives
it a share of the on-air budget (``lgvsc.rate_control.Layering``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from semantic.bitstream import SEGMENT_OVERHEAD, BaseChunk, Segment, SegmentType
from semantic.keyframes import KeyframePlan
from semantic.track import CHUNK_BYTES, chunk_units, fit_track
from semantic.track_search import first_scale, keyframe_psnr, start_stride

MAX_STRIDE = 0xFF


def base_stride(budget: int, plan: KeyframePlan, frames: int, width: int, height: int) -> int:
    """Every how many of the track's keyframes the base layer codes one: the keyframe spacing
    that measured best for this many bytes (``start_stride``), in units of the track's own."""
    spacing = frames / max(len(plan.frames), 1)
    return max(1, min(MAX_STRIDE, round(start_stride(budget, frames, width, height) / spacing)))


def base_layer_segments(store: dict[int, np.ndarray], frames: int, plan: KeyframePlan,
                        budget: int, fps: Fraction) -> list[Segment]:
    """BASE_TRACK segments of at most ``budget`` bytes (none when nothing fits): the track's
    keyframes 0, s, 2s, ... of a ``frames``-frame video at the best resolution and CRF that fit,
    judged against the stored source frames at full size as the track is (``keyframe_psnr``),
    intra where a shot cut falls since the previous base keyframe."""
    height, width = store[plan.frames[0]].shape[:2]
    stride = base_stride(budget, plan, frames, width, height)
    while stride <= MAX_STRIDE:
        segments = _coded(store, frames, plan, budget, fps, stride)
        if segments is not None:
            return segments
        if stride >= len(plan.frames):
            break
        stride *= 2  # fewer keyframes
    return []


def _coded(store: dict[int, np.ndarray], frames: int, plan: KeyframePlan, budget: int, fps: Fraction,
           stride: int) -> list[Segment] | None:
    ordinals = list(range(0, len(plan.frames), stride))
    picked = [plan.frames[o] for o in ordinals]
    images = [store[t] for t in picked]
    intra = {j for j in range(1, len(picked)) if any(picked[j - 1] < c <= picked[j] for c in plan.cuts)}
    # Each chunk's segment carries the stride byte besides what fit_track counts (chunks: one
    # per CHUNK_BYTES at most, and one more per intra unit).
    room = budget - math.ceil(budget / CHUNK_BYTES) - len(intra) - 1
    rate = Fraction(fps * len(picked) / max(frames, 1)).limit_denominator(1000) or Fraction(1)
    if room <= 0:
        return None
    coding = fit_track(images, room, lambda decoded: keyframe_psnr(decoded, images), intra, None, rate,
                       first_scale(room, images))
    if coding is None:
        return None
    segments = [Segment(SegmentType.BASE_TRACK, i, BaseChunk(stride, chunk).pack())
                for i, chunk in enumerate(chunk_units(coding.units))]
    return segments if sum(SEGMENT_OVERHEAD + len(s.payload) for s in segments) <= budget else None
