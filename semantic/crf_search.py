"""The smallest CRF whose stream fits a byte budget, with as few encodes as possible: shared by the
separation baselines' search and the keyframe track's (each encode is a whole encode).

The search walks whole CRF steps, each about 12 % of the stream, so what it finds may leave a
tenth of the budget unused. ``refine_crf`` then tries the quarter steps between the winner and
the step below it (libx264, libx265 and SVT-AV1 all take fractional CRFs): two encodes more,
spent only on the setting a search finally chose, for LGVSC's track and the baselines alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

Coded = TypeVar("Coded")


def smallest_fitting_crf(cost: Callable[[int], tuple[float, Coded]], crf_range: tuple[int, int], budget: int,
                         coarsest: tuple[float, Coded]) -> tuple[int, Coded]:
    """(CRF, what ``cost`` coded there) for the smallest CRF in ``crf_range`` whose size fits
    ``budget``, given ``coarsest``, the (fitting) result at the range's coarsest CRF. The stream
    roughly halves every 6 CRF steps, so the search starts at that prediction; until the answer
    is bracketed each next probe is where the line through the last two sizes (log size against
    CRF: the encoder's own rate there) meets the budget, at least one step on; then it bisects.
    Usually 3-4 encodes, where a plain bisection of 18..51 takes 5-6 and galloping 4-5."""
    lo, hi = crf_range  # the answer lies in [lo, hi]; hi fits
    fits = {hi: coarsest[1]}
    last = (hi, float(np.log(max(coarsest[0], 1))))
    target = float(np.log(max(budget, 1)))
    probe = _secant(last, last, target)  # one point: 6 steps a halving
    fit_seen = fail_seen = False
    while lo < hi:
        if fit_seen and fail_seen:
            probe = (lo + hi) // 2
        probe = min(max(probe, lo), hi - 1)
        size, coded = cost(probe)
        here = (probe, float(np.log(max(size, 1))))
        if size <= budget:
            hi, fit_seen, fits[probe] = probe, True, coded
        else:
            lo, fail_seen = probe + 1, True
        probe = _secant(last, here, target)
        probe = min(probe, here[0] - 1) if size <= budget else max(probe, here[0] + 1)
        last = here
    return lo, fits[lo]


def _secant(a: tuple[int, float], b: tuple[int, float], target: float) -> int:
    """The CRF where the line through (CRF, log size) points ``a`` and ``b`` reaches ``target``;
    with no usable slope (equal sizes, or growing with CRF), 6 steps a halving; halfway between
    the two where a size is not finite (a cost that marks a setting unusable)."""
    if not (np.isfinite(a[1]) and np.isfinite(b[1])):
        return round((a[0] + b[0]) / 2)
    slope = (b[1] - a[1]) / (b[0] - a[0]) if b[0] != a[0] else 0.0
    if slope >= 0:
        slope = -np.log(2) / 6
    return round(b[0] + (target - b[1]) / slope)


CRF_STEP = 0.25  # the finest CRF step SVT-AV1 takes (x264 and x265 take any)


def refine_crf(cost: Callable[[float], tuple[float, Coded]], crf: float, crf_range: tuple[int, int], budget: int,
               fitted: Coded) -> tuple[float, Coded]:
    """(CRF, what ``cost`` coded there) for the smallest quarter step in (crf - 1, crf] whose size
    fits ``budget``, given ``fitted``, what ``crf`` coded; by bisection, two encodes."""
    lo, hi = max(crf - 1, crf_range[0] - CRF_STEP), crf  # lo is known not to fit (or out of range)
    best = (crf, fitted)
    while hi - lo > CRF_STEP:
        probe = lo + round((hi - lo) / 2 / CRF_STEP) * CRF_STEP
        size, coded = cost(probe)
        if size <= budget:
            hi, best = probe, (probe, coded)
        else:
            lo = probe
    return best


def with_crf(options: dict[str, str], encoder: str, crf: float) -> dict[str, str]:
    """``options`` plus ``crf`` as ``encoder`` takes it: an integer CRF as it always was; a
    fractional one to two places, which SVT-AV1 takes only among its own parameters."""
    if float(crf).is_integer():
        return {**options, "crf": str(int(crf))}
    if encoder == "libsvtav1":
        params = options.get("svtav1-params")
        return {**options, "svtav1-params": f"{params}:crf={crf:.2f}" if params else f"crf={crf:.2f}"}
    return {**options, "crf": f"{crf:.2f}"}
