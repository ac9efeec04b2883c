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
    frames: list[int]  # sorted keyframe indices, first and last included (one typical frame at the floor)
    cuts: list[int]  # first frame of every shot after the first
    change: np.ndarray  # per-frame content change score

    @property
    def shots(self) -> list[tuple[int, int]]:
        return shot_ranges(self.cuts, len(self.change))


def shot_ranges(cuts: list[int], total: int) -> list[tuple[int, int]]:
    """(first, last) frame of each shot; cuts outside the video or repeated are ignored."""
    starts = [0] + sorted({c for c in cuts if 0 < c < total})
    ends = [s - 1 for s in starts[1:]] + [total - 1]
    return list(zip(starts, ends, strict=True))


def select_keyframes(frames: np.ndarray, count: int, candidate_step: int = 1) -> KeyframePlan:
    """Pick ``count`` keyframes (clamped to 2..len(frames)); candidates every ``candidate_step``."""
    return select_keyframes_from(change_scores(thumbnails(frames)), thumbnails(frames, MODEL_THUMB), count,
                                 candidate_step)


def uniform_keyframes(change: np.ndarray, count: int) -> KeyframePlan:
    """About ``count`` keyframes evenly spaced within each shot, every shot's first and last
    frame among them: for dense keyframe tracks, where the greedy error model's placement gains
    nothing and its cost grows with frames x keyframes."""
    total = len(change)
    cuts = detect_cuts(change)
    stride = max(1.0, (total - 1) / max(count - 1, 1))
    frames: set[int] = set()
    for lo, hi in shot_ranges(cuts, total):
        steps = max(1, round((hi - lo) / stride))
        frames.update(int(round(lo + k * (hi - lo) / steps)) for k in range(steps + 1))
    return KeyframePlan(sorted(frames), cuts, change)


CUT_SEED_RATIO = 4  # keyframes per shot from which every shot's first frame is one


def select_keyframes_from(change: np.ndarray, model_thumbs: np.ndarray, count: int,
                          candidate_step: int = 1) -> KeyframePlan:
    """``select_keyframes`` from precomputed change scores and model thumbnails (streaming).

    A budget for one keyframe only gets the most typical frame: the one nearest the video's
    mean thumbnail (the decoder holds it for the whole video)."""
    total = len(change)
    cuts = detect_cuts(change)
    if count <= 1 or total == 1:
        typical = model_thumbs.mean(axis=0)
        return KeyframePlan([int(np.argmin(np.abs(model_thumbs - typical).mean(axis=(1, 2))))], cuts, change)
    count = int(np.clip(count, min(2, total), total))
    model = _ErrorModel(model_thumbs)
    shots = shot_ranges(cuts, total)
    step = max(1, candidate_step)
    candidates = set(range(0, total, step)) | set(cuts) | {c - 1 for c in cuts}
    start = [0, total - 1]
    if count >= CUT_SEED_RATIO * len(shots):
        # With keyframes to spare, a keyframe on each shot's first frame pays (bikes at 15 kB:
        # +0.3 dB); with few, the error model's mid-shot choices win (at 1.5 kB by 1.9 dB).
        start += cuts
    return KeyframePlan(_greedy(model, shots, start, candidates, count), cuts, change)


def _greedy(model: _ErrorModel, shots: list[tuple[int, int]], chosen: list[int], candidates: set[int],
            count: int) -> list[int]:
    """Add keyframes from ``candidates`` to ``chosen`` until ``count``, each where the model
    error drops most. Adding one only changes its own shot, so each shot keeps its best candidate
    and only the shot that changed is rescored: O(frames) per step, not O(frames x keyframes)."""
    chosen = sorted(set(chosen))
    keys = {sh: [k for k in chosen if sh[0] <= k <= sh[1]] for sh in shots}
    # An empty shot borrows the nearest keyframe; count its error that way so filling it pays.
    empty_cost = {sh: _shot_cost(model, sh, keys[sh], chosen) for sh in shots if not keys[sh]}
    pool = {sh: sorted(c for c in candidates if sh[0] <= c <= sh[1] and c not in chosen) for sh in shots}
    best = {sh: _best_in_shot(model, sh, keys[sh], pool[sh], empty_cost.get(sh)) for sh in shots}
    while len(chosen) < count:
        sh = max(best, key=lambda k: best[k][0])
        _, c = best[sh]
        if c is None:
            break
        keys[sh] = sorted(keys[sh] + [c])
        pool[sh].remove(c)
        chosen.append(c)
        best[sh] = _best_in_shot(model, sh, keys[sh], pool[sh], None)
    return sorted(chosen)


def _best_in_shot(model: _ErrorModel, shot: tuple[int, int], keys: list[int], pool: list[int],
                  empty_cost: float | None) -> tuple[float, int | None]:
    """(error reduction, candidate) of the best keyframe to add to ``shot``."""
    lo, hi = shot
    best: tuple[float, int | None] = (-math.inf, None)
    for c in pool:
        new = model.hold(c, lo, c - 1) + model.hold(c, c + 1, hi)
        if not keys:
            gain = (empty_cost if empty_cost is not None else math.inf) - new
        else:
            i = int(np.searchsorted(keys, c))
            if i == 0:
                old = model.hold(keys[0], lo, keys[0] - 1)
                new = model.hold(c, lo, c - 1) + model.fade(c, keys[0])
            elif i == len(keys):
                old = model.hold(keys[-1], keys[-1] + 1, hi)
                new = model.fade(keys[-1], c) + model.hold(c, c + 1, hi)
            else:
                old = model.fade(keys[i - 1], keys[i])
                new = model.fade(keys[i - 1], c) + model.fade(c, keys[i])
            gain = old - new
        if gain > best[0]:
            best = (gain, c)
    return best


def _shot_cost(model: _ErrorModel, shot: tuple[int, int], keys: list[int], chosen: list[int]) -> float:
    if keys:
        return model.shot(shot[0], shot[1], keys)
    nearest = min(chosen, key=lambda k: min(abs(k - shot[0]), abs(k - shot[1])))
    return model.hold(nearest, shot[0], shot[1])


# ---------------------------------------------------------------------------------------------
# PSSS-guided selection (the LGVSC paper's rule, plus a budget mode)
# ---------------------------------------------------------------------------------------------

CANDIDATE_SPACING_S = 0.2  # the paper samples candidates every 0.2 s: no keyframes closer than that
PAPER_THRESHOLD = 0.35  # new keyframe when S_rel against the last keyframe exceeds this


def candidate_frames(total: int, fps: float, cuts: list[int], spacing_s: float = CANDIDATE_SPACING_S) -> list[int]:
    """Every ``spacing_s`` seconds, plus each cut's first frame (so keyframes land on cuts)."""
    step = max(1, round(spacing_s * fps))
    return sorted(set(range(0, total, step)) | {c for c in cuts if 0 < c < total} | {total - 1})


class PairScores:
    """PSSS P(Yes) of frame pairs, each pair scored once (selection revisits pairs)."""

    def __init__(self, frames: np.ndarray, scorer, focus: str = "general") -> None:  # noqa: ANN001
        self.frames, self.scorer, self.focus = frames, scorer, focus
        self.cache: dict[tuple[int, int], float] = {}
        self._features: dict[int, object] = {}

    def p_yes(self, a: int, b: int) -> float:
        key = (a, b)
        if key not in self.cache:
            if hasattr(self.scorer, "features"):  # classical: reuse per-frame features
                fa = self._features.setdefault(a, self.scorer.features(self.frames[a]))
                fb = self._features.setdefault(b, self.scorer.features(self.frames[b]))
                self.cache[key] = self.scorer.probability(self.scorer.statistics(fa, fb))
            else:
                self.cache[key] = float(self.scorer.score([(self.frames[a], self.frames[b])], self.focus)[0])
        return self.cache[key]


def psss_keyframes(candidates: list[int], scores: PairScores, threshold: float,
                   cuts: frozenset[int] = frozenset()) -> list[int]:
    """The paper's rule: walk the candidates; a candidate whose S_rel = 1 - 2 P(Yes) against the
    last keyframe exceeds ``threshold`` becomes a keyframe. First and last always, and the first
    frame of every hard cut (the decoder must not blend across it)."""
    keys = [candidates[0]]
    for c in candidates[1:-1]:
        if c in cuts or 1 - 2 * scores.p_yes(keys[-1], c) > threshold:
            keys.append(c)
    if candidates[-1] != keys[-1]:
        keys.append(candidates[-1])
    return keys


def psss_keyframes_for_count(candidates: list[int], scores: PairScores, count: int,
                             cuts: frozenset[int] = frozenset()) -> tuple[list[int], float]:
    """Budget mode: the lowest threshold (most keyframes) whose selection fits ``count``; cuts
    are kept while the count allows, strongest first."""
    lo, hi = -1.0, 1.0  # S_rel range; at hi only first, last and cuts remain
    best = psss_keyframes(candidates, scores, hi, cuts)
    best_threshold = hi
    if len(best) > count:
        return sorted(best[:1] + best[-1:] + sorted(cuts)[: max(0, count - 2)]), hi
    for _ in range(14):
        mid = (lo + hi) / 2
        keys = psss_keyframes(candidates, scores, mid, cuts)
        if len(keys) <= count:
            best, best_threshold, hi = keys, mid, mid
        else:
            lo = mid
    return best, best_threshold


def select_keyframes_psss(frames: np.ndarray, fps: float, count: int | None, scorer,  # noqa: ANN001
                          threshold: float = PAPER_THRESHOLD) -> tuple[KeyframePlan, list[float]]:
    """PSSS-guided keyframes: the paper's threshold rule, or with ``count`` the budget mode;
    a budget left over after the semantic changes are covered goes to the error model's picks.
    Returns the plan and each keyframe's P(Yes) against the previous keyframe (1 for the first)."""
    return select_keyframes_psss_from(change_scores(thumbnails(frames)), thumbnails(frames, MODEL_THUMB), frames,
                                      fps, count, scorer, threshold)


def select_keyframes_psss_from(change: np.ndarray, model_thumbs: np.ndarray, frames, fps: float,  # noqa: ANN001
                               count: int | None, scorer, threshold: float = PAPER_THRESHOLD,  # noqa: ANN001
                               ) -> tuple[KeyframePlan, list[float]]:
    """The same from precomputed statistics; ``frames`` only needs ``frames[t]`` for candidates."""
    total = len(change)
    cuts = detect_cuts(change)
    scores = PairScores(frames, scorer)
    candidates = candidate_frames(total, fps, cuts)
    cut_set = frozenset(cuts)
    if count is None:
        keys = psss_keyframes(candidates, scores, threshold, cut_set)
    else:
        keys, _ = psss_keyframes_for_count(candidates, scores, max(count, min(2, total)), cut_set)
        if len(keys) < count:
            keys = _fill_by_error(model_thumbs, keys, cuts, count, candidates)
    plan = KeyframePlan(sorted(set(keys)), cuts, change)
    p_prev = [1.0] + [scores.p_yes(a, b) for a, b in zip(plan.frames[:-1], plan.frames[1:], strict=True)]
    return plan, p_prev


def _fill_by_error(model_thumbs: np.ndarray, keys: list[int], cuts: list[int], count: int,
                   candidates: list[int]) -> list[int]:
    """Add keyframes where the decoder's error model gains most, keeping the given ones. Only
    ``candidates`` qualify: they are the frames PSSS was given to score (the caller collects
    no others), so every keyframe gets its P(Yes) against the previous one."""
    total = len(model_thumbs)
    return _greedy(_ErrorModel(model_thumbs), shot_ranges(cuts, total), keys, set(candidates), count)
