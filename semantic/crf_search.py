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
    roughly halves every 6 CRF steps, so the search starts at that prediction and gallops away
    from it until the answer is bracketed, then bisects: 2-3 encodes where a plain bisection of
    18..51 takes 5-6."""
    lo, hi = crf_range  # the answer lies in [lo, hi]; hi fits
    fits = {hi: coarsest[1]}
    probe = round(hi - 6 * float(np.log2(max(budget, 1) / max(coarsest[0], 1))))
    step, fit_seen, fail_seen = 1, False, False
    while lo < hi:
        if fit_seen and fail_seen:
            probe = (lo + hi) // 2
        probe = min(max(probe, lo), hi - 1)
        size, coded = cost(probe)
        if size <= budget:
            hi, fit_seen, fits[probe] = probe, True, coded
            probe -= step
        else:
            lo, fail_seen = probe + 1, True
            probe += step
        step *= 2
    return lo, fits[lo]


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
