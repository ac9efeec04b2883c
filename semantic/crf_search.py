"""The smallest CRF whose stream fits a byte budget, with as few encodes as possible: shared by the
separation baselines' search and the keyframe track's (each encode is a whole encode)."""

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
