"""Keyframe selection: deterministic, CPU-only, any length.

Content change is the mean absolute difference of small grey thumbnails between consecutive
frames. Shot cuts (a jump far above the typical change) split the video into shots; the decoder
never blends across a cut, and the cuts travel in the bitstream.

Keyframes are then chosen greedily to minimise the thumbnail error of the decoder's own model
(cross-fade between keyframes of a shot, hold at the shot's ends), so the count a byte budget
allows goes where it buys the most: one per shot first, more where content moves. Interval
errors come from prefix sums in O(D) each, so a step costs O(candidates * D). The first and last
frames are always keyframes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

THUMB = 48  # grey thumbnail side for the change score
MODEL_THUMB = 16  # side of the thumbnails the error model runs on


def thumbnails(frames: np.ndarray, side: int = THUMB) -> np.ndarray:
    """(T, side, side) float32 grey thumbnails in [0, 1]."""
    out = np.empty((len(frames), side, side), dtype=np.float32)
    for i, frame in enumerate(frames):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA) / 255.0
    return out


def change_scores(thumbs: np.ndarray) -> np.ndarray:
    """Content change from frame t-1 to t (index 0 is 0)."""
    diff = np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2))
    return np.concatenate([[0.0], diff]).astype(np.float64)


def detect_cuts(change: np.ndarray, ratio: float = 6.0, floor: float = 0.08) -> list[int]:
    """Frames that start a new shot: change far above the median and above an absolute floor."""
    if change.size < 3:
        return []
    typical = float(np.median(change[1:])) + 1e-3
    return [int(t) for t in np.flatnonzero((change > ratio * typical) & (change > floor)) if t > 0]


class _ErrorModel:
    """Squared thumbnail error of reconstructing frames [lo, hi] from keyframes, in O(D)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x.reshape(len(x), -1).astype(np.float64)  # (T, D)
        t = np.arange(len(x), dtype=np.float64)[:, None]
        zero = np.zeros((1, self.x.shape[1]))
        self.s1 = np.concatenate([zero, np.cumsum(self.x, axis=0)])  # sum x_t
        self.st = np.concatenate([zero, np.cumsum(t * self.x, axis=0)])  # sum t x_t
        self.sq = np.concatenate([[0.0], np.cumsum((self.x**2).sum(axis=1))])  # sum |x_t|^2

    def hold(self, k: int, lo: int, hi: int) -> float:
        """Frames lo..hi shown as keyframe k."""
        if hi < lo:
            return 0.0
        xk, n = self.x[k], hi - lo + 1
        return float(self.sq[hi + 1] - self.sq[lo] - 2 * xk @ (self.s1[hi + 1] - self.s1[lo]) + n * xk @ xk)

    def fade(self, a: int, b: int) -> float:
        """Frames strictly between keyframes a < b cross-faded."""
        lo, hi = a + 1, b - 1
        if hi < lo:
            return 0.0
        span = b - a
        sum_x = self.s1[hi + 1] - self.s1[lo]
        sum_alpha_x = (self.st[hi + 1] - self.st[lo] - a * sum_x) / span  # sum alpha_t x_t
        alpha = (np.arange(lo, hi + 1) - a) / span
        xa, xb = self.x[a], self.x[b]
        cross = 2 * (xa @ (sum_x - sum_alpha_x)) + 2 * (xb @ sum_alpha_x)
        pred = ((1 - alpha) ** 2).sum() * (xa @ xa) + (alpha**2).sum() * (xb @ xb)
        pred += 2 * ((1 - alpha) * alpha).sum() * (xa @ xb)
        return float(self.sq[hi + 1] - self.sq[lo] - cross + pred)

    def shot(self, lo: int, hi: int, keys: list[int]) -> float:
        """Error of shot lo..hi given its sorted keyframes (hold outside, fade between)."""
        if not keys:
            return math.inf
        cost = self.hold(keys[0], lo, keys[0] - 1) + self.hold(keys[-1], keys[-1] + 1, hi)
        return cost + sum(self.fade(a, b) for a, b in zip(keys[:-1], keys[1:], strict=True))


@dataclass(frozen=True)
class KeyframePlan:
    frames: list[int]  # sorted keyframe indices, first and last included
    cuts: list[int]  # first frame of every shot after the first
    change: np.ndarray  # per-frame content change score

    @property
    def shots(self) -> list[tuple[int, int]]:
        return shot_ranges(self.cuts, len(self.change))


def shot_ranges(cuts: list[int], total: int) -> list[tuple[int, int]]:
    starts = [0] + sorted(c for c in cuts if 0 < c < total)
    ends = [s - 1 for s in starts[1:]] + [total - 1]
    return list(zip(starts, ends, strict=True))


def select_keyframes(frames: np.ndarray, count: int, candidate_step: int = 1) -> KeyframePlan:
    """Pick ``count`` keyframes (clamped to 2..len(frames)); candidates every ``candidate_step``."""
    total = len(frames)
    change = change_scores(thumbnails(frames))
    cuts = detect_cuts(change)
    count = int(np.clip(count, min(2, total), total))
    model = _ErrorModel(thumbnails(frames, MODEL_THUMB))
    shots = shot_ranges(cuts, total)
    chosen = sorted({0, total - 1})
    keys = {s: [k for k in chosen if s[0] <= k <= s[1]] for s in shots}
    # An empty shot borrows the nearest keyframe; count its error that way so filling it pays.
    costs = {s: _shot_cost(model, s, keys[s], chosen) for s in shots}
    candidates = [t for t in range(0, total, max(1, candidate_step))] + [c for c in cuts] + [c - 1 for c in cuts]
    candidates = sorted(set(candidates) - set(chosen))
    while len(chosen) < count and candidates:
        best, best_gain, best_cost = None, -math.inf, 0.0
        for c in candidates:
            s = next(sh for sh in shots if sh[0] <= c <= sh[1])
            new_cost = model.shot(s[0], s[1], sorted(keys[s] + [c]))
            gain = costs[s] - new_cost
            if gain > best_gain:
                best, best_gain, best_cost = c, gain, new_cost
        s = next(sh for sh in shots if sh[0] <= best <= sh[1])
        keys[s] = sorted(keys[s] + [best])
        costs[s] = best_cost
        chosen = sorted(chosen + [best])
        candidates.remove(best)
    return KeyframePlan(chosen, cuts, change)


def _shot_cost(model: _ErrorModel, shot: tuple[int, int], keys: list[int], chosen: list[int]) -> float:
    if keys:
        return model.shot(shot[0], shot[1], keys)
    nearest = min(chosen, key=lambda k: min(abs(k - shot[0]), abs(k - shot[1])))
    return model.hold(nearest, shot[0], shot[1])
