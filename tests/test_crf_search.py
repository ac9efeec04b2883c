"""The CRF searches shared by LGVSC's track and the baselines: whole steps, then quarter steps,
checked on a model of the stream size and on the real encoders."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from semantic.crf_search import refine_crf, smallest_fitting_crf, with_crf
from semantic.separation import encode
from semantic.track import encode_units, track_bytes


def _size(crf: float) -> int:  # halves every 6 steps, as the encoders roughly do
    return int(40000 * 2 ** (-(crf - 30) / 6))


def test_whole_then_quarter_steps_find_the_smallest_fitting_crf() -> None:
    tried: list[float] = []

    def cost(crf: float) -> tuple[int, float]:
        tried.append(crf)
        return _size(crf), crf

    budget = 33000  # fits from CRF 31.67 on
    crf, _ = smallest_fitting_crf(cost, (18, 63), budget, (_size(63), 63))
    assert crf == 32
    tried.clear()
    fine, coded = refine_crf(cost, crf, (18, 63), budget, crf)
    assert fine == coded == 31.75 and len(tried) == 2 and _size(fine) <= budget < _size(fine - 0.25)
    assert refine_crf(cost, 18, (18, 63), 10**9, 18) == (18, 18)  # nothing below the range


@pytest.mark.parametrize("halving", [3.0, 6.0, 11.0])
def test_the_secant_search_finds_what_brute_force_finds(halving: float) -> None:
    """Over budgets across the range and encoders whose rate is not the 6-steps-a-halving guess
    (nor a straight line: a bend at CRF 40), the smallest fitting CRF, in few encodes."""
    def size(crf: float) -> int:
        bend = 1.5 if crf > 40 else 1.0
        return int(1e6 * 2 ** (-(crf - 18) / halving * bend) + 50)

    rng = np.random.default_rng(4)
    for budget in np.unique(rng.integers(size(51), size(18) + 1000, 200)):
        tried: list[int] = []

        def cost(crf: int, tried: list[int] = tried) -> tuple[int, int]:
            tried.append(crf)
            return size(crf), crf

        crf, coded = smallest_fitting_crf(cost, (18, 51), int(budget), (size(51), 51))
        want = min(c for c in range(18, 52) if size(c) <= budget)
        assert crf == coded == want, (budget, tried)
        assert len(tried) == len(set(tried)) <= 7, tried


def test_a_cost_that_marks_settings_unusable_still_finds_the_answer() -> None:
    """The track's cost is infinite where a setting cannot be coded at all."""
    def cost(crf: int) -> tuple[float, int]:
        return (float("inf") if crf < 30 else _size(crf)), crf

    assert smallest_fitting_crf(cost, (18, 63), 10**9, (_size(63), 63)) == (30, 30)
    assert smallest_fitting_crf(cost, (18, 63), 33000, (_size(63), 63))[0] == 32


def test_crf_options_keep_whole_steps_as_they_were() -> None:
    assert with_crf({"preset": "8"}, "libsvtav1", 40) == {"preset": "8", "crf": "40"}
    assert with_crf({"svtav1-params": "lp=2"}, "libsvtav1", 40.25) == {"svtav1-params": "lp=2:crf=40.25"}
    assert with_crf({}, "libx265", 40.5) == {"crf": "40.50"}


@pytest.fixture(scope="module")
def frames(bikes_video) -> list[np.ndarray]:  # noqa: ANN001
    return list(bikes_video.frames[:24])


@pytest.mark.parametrize("scheme", ["h264", "h265", "av1"])
def test_baseline_encoders_take_quarter_steps(frames: list[np.ndarray], scheme: str) -> None:
    # A half step must reach the encoder (not be rounded away); its size need not fall strictly
    # between its neighbours': rate control is not monotonic at that grain, and CPUs differ (CI saw
    # h264 CRF 36.5 two bytes above CRF 36).
    streams = [encode(frames, Fraction(25), scheme, crf, (320, 136)) for crf in (36, 36.5, 37)]
    assert streams[1] not in (streams[0], streams[2])
    assert len(streams[0]) > len(streams[2])


def test_the_track_takes_quarter_steps(frames: list[np.ndarray]) -> None:
    sizes = [track_bytes(encode_units(frames, (320, 136), crf, {0})) for crf in (40, 40.25, 40.5, 41)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4
