"""The receiver's compiled loops against their numpy references, on random and real bursts."""

from __future__ import annotations

import numpy as np
import pytest

from lgvsc_phy import ofdm_kernels as k


def _noise(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size) + 1j * rng.standard_normal(size)).astype(np.complex64)


@pytest.mark.parametrize("size", [0, 64, 65, 200, 5000])
def test_schmidl_cox_matches_numpy(size: int) -> None:
    r = _noise(size, size)
    metric, corr = k.schmidl_cox(r, 32)
    ref_metric, ref_corr = k.schmidl_cox_numpy(r, 32)
    assert metric.shape == ref_metric.shape == (max(size - 64, 0),)
    np.testing.assert_allclose(metric, ref_metric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(corr, ref_corr, rtol=1e-6, atol=1e-6)


def test_schmidl_cox_finds_a_repeated_half() -> None:
    """A half-symbol repetition gives metric 1 where the window sits on it, about 1/32 on noise."""
    half = _noise(32, 1)
    r = np.concatenate([_noise(300, 2) * 0.01, half, half, _noise(300, 3) * 0.01])
    metric, _ = k.schmidl_cox(r, 32)
    assert metric[300] == pytest.approx(1.0, abs=1e-3)
    assert np.median(metric[:200]) < 0.1


@pytest.mark.parametrize("width", [1, 8])
def test_moving_average_matches_numpy(width: int) -> None:
    x = np.abs(_noise(1000, 4)).astype(float)  # the metric is float64
    np.testing.assert_allclose(k.moving_average(x, width), k.moving_average_numpy(x, width), rtol=1e-9)
    assert k.moving_average(x[:width - 1], width).size == 0


def test_derotated_windows_match_numpy() -> None:
    buf = _noise(3000, 5)
    starts = np.array([13, 93, 173, 2900], dtype=np.int64)
    for cfo in (0.0, 0.37, -0.41):
        np.testing.assert_allclose(k.derotated_windows(buf, starts, 64, cfo),
                                   k.derotated_windows_numpy(buf, starts, 64, cfo), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("count", [1, 3, 4, 10, 40])
def test_pilot_phase_matches_numpy(count: int) -> None:
    """A phase line with noise: both versions agree and recover it."""
    rng = np.random.default_rng(count)
    t = np.arange(count)
    truth = 0.4 + 0.03 * t
    pil = 4 * np.exp(1j * truth) + 0.3 * (rng.standard_normal(count) + 1j * rng.standard_normal(count))
    phase = k.pilot_phase(pil, 1.0)
    np.testing.assert_allclose(phase, k.pilot_phase_numpy(pil, 1.0), atol=1e-9)
    if count >= 4:
        assert np.max(np.abs(phase - truth)) < 0.15


@pytest.mark.parametrize("cfo", [0.0, 0.37, -0.8])
def test_preamble_search_matches_numpy(cfo: float) -> None:
    """The compiled search (float32 inner products) finds the same start as numpy's correlate,
    with power and energy to float32 precision; a segment shorter than the preamble gives -1."""
    rng = np.random.default_rng(4)
    preamble = rng.standard_normal(160) + 1j * rng.standard_normal(160)
    buf = (0.3 * (rng.standard_normal(3000) + 1j * rng.standard_normal(3000))).astype(np.complex64)
    buf[1203:1363] += (preamble * np.exp(2j * np.pi * cfo * np.arange(1203, 1363) / 64)).astype(np.complex64)
    got, want = k.preamble_search(buf, 1000, 1500, cfo, 64, preamble), k.preamble_search_numpy(buf, 1000, 1500, cfo, 64,
                                                                                                preamble)
    assert got[0] == want[0] == 203
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-4)
    assert k.preamble_search(buf, 0, 100, cfo, 64, preamble)[0] == -1


def test_rotate_carriers_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    spectra = rng.standard_normal((7, 64)) + 1j * rng.standard_normal((7, 64))
    angle = rng.uniform(-0.1, 0.1, 7)
    angle[2] = 0.0
    a, b = spectra.copy(), spectra.copy()
    k.rotate_carriers(a, angle)
    k.rotate_carriers_numpy(b, angle)
    np.testing.assert_allclose(a, b, atol=1e-12)
