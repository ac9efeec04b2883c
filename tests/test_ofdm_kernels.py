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


def test_centred_windows_give_the_shifted_spectrum() -> None:
    """(-1)^k on the window's samples is fftshift on its spectrum: carriers come out centred."""
    buf = _noise(3000, 6)
    starts = np.array([0, 80, 1333], dtype=np.int64)
    plain = np.fft.fftshift(np.fft.fft(k.derotated_windows_numpy(buf, starts, 64, 0.23), axis=1), axes=1)
    for windows in (k.centred_windows(buf, starts, 64, 0.23), k.centred_windows_numpy(buf, starts, 64, 0.23)):
        np.testing.assert_allclose(np.fft.fft(windows, axis=1), plain, rtol=1e-4, atol=1e-4)


def test_dc_step_matches_numpy() -> None:
    chunk = _noise(517, 7) + np.complex64(0.3 - 0.2j)
    level, out = k.dc_step(chunk, 0.1j, 0.25)
    ref_level, ref_out = k.dc_step_numpy(chunk, 0.1j, 0.25)
    assert level == pytest.approx(ref_level, abs=1e-9)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, ref_out, atol=1e-6)


def _spectra_and_pilots(count: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    spectra = rng.standard_normal((count, 64)) + 1j * rng.standard_normal((count, 64))
    pilot_idx = np.array([11, 25, 39, 53], dtype=np.int64)
    pilot_ref = np.exp(1j * rng.uniform(-np.pi, np.pi, 4))
    return spectra, pilot_idx, pilot_ref


@pytest.mark.parametrize("count", [1, 3, 20])
def test_equalize_matches_numpy(count: int) -> None:
    spectra, pilot_idx, pilot_ref = _spectra_and_pilots(count, count)
    data_idx = np.array([i for i in range(6, 59) if i not in (11, 25, 32, 39, 53)], dtype=np.int64)
    chan = np.random.default_rng(9).standard_normal(data_idx.size) + 1.5 + 0.5j
    np.testing.assert_allclose(k.equalize(spectra, pilot_idx, pilot_ref, data_idx, chan, 1.0),
                               k.equalize_numpy(spectra, pilot_idx, pilot_ref, data_idx, chan, 1.0), atol=1e-9)


def test_clock_residual_matches_numpy_and_recovers_a_slope() -> None:
    """Pilots turned by a phase linear in carrier and symbol (a sample clock offset): the fit
    finds the offset, and both versions agree on it and on its precision."""
    count, true_offset = 12, 3e-4
    _, pilot_idx, pilot_ref = _spectra_and_pilots(count, 1)
    carriers = (pilot_idx - 32).astype(float)
    per_offset = 2 * np.pi * 80 / 64 * (np.arange(count) + 5.0)
    slope = -np.outer(per_offset, carriers)
    rng = np.random.default_rng(2)
    spectra = np.zeros((count, 64), dtype=complex)
    spectra[:, pilot_idx] = np.exp(1j * (true_offset * slope + rng.uniform(-1, 1, (count, 1)))) / pilot_ref
    weight = np.full(4, 50.0)
    got = k.clock_residual(spectra, pilot_idx, pilot_ref, carriers, per_offset, 1e-4, weight)
    want = k.clock_residual_numpy(spectra, pilot_idx, pilot_ref, carriers, per_offset, 1e-4, weight)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert got[0] == pytest.approx(true_offset - 1e-4, rel=1e-6)
    assert k.clock_residual(spectra, pilot_idx, pilot_ref, carriers, per_offset * 0, 0.0, weight) == (0.0, 0.0)


@pytest.mark.parametrize("taps", [[(3, 1.0)], [(2, 0.9), (7, 0.4j), (12, -0.2)]])
def test_sparse_tap_fit_matches_numpy_and_finds_the_taps(taps: list[tuple[int, complex]]) -> None:
    """The receiver's own preamble design: a sparse response plus noise gives the same taps and
    noise variance from both versions, the true delays among them."""
    from lgvsc_phy.mcs import get_mcs
    from lgvsc_phy.ofdm import OfdmBurstReceiver

    fit = OfdmBurstReceiver(get_mcs("qpsk-1/2").ofdm).preamble_fit
    truth = np.zeros(fit.gram.shape[0], dtype=complex)
    for delay, gain in taps:
        truth[delay] = gain
    rng = np.random.default_rng(len(taps))
    y = fit.design_h.conj().T @ truth
    y = y + 0.05 * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size))
    args = (fit.design_h, fit.gram, fit.pinv, y, fit.full_dof, fit.significant, fit.max_taps)
    got_taps, got_noise = k.sparse_tap_fit(*args)
    want_taps, want_noise = k.sparse_tap_fit_numpy(*args)
    np.testing.assert_allclose(got_taps, want_taps, atol=1e-9)
    assert got_noise == pytest.approx(want_noise, rel=1e-9)
    assert set(np.flatnonzero(got_taps)) >= {d for d, _ in taps}
    assert got_noise == pytest.approx(0.05**2 * 2, rel=0.5)


@pytest.mark.parametrize("snr_db,cfo,cfo_range", [(3.0, 0.0, 1.0), (12.0, 0.0, 1.0), (3.0, 3.14, 5.0),
                                                  (12.0, -2.3, 9.0)])
def test_screen_matches_numpy_on_a_burst_stream(snr_db: float, cfo: float, cfo_range: float) -> None:
    """The whole detector search, compiled and in numpy, walked over noise then real bursts with
    a strict region: the same detections, starts, false alarms and waits at every step; with a
    CFO beyond one spacing, the integer offset found too."""
    from lgvsc_phy.mcs import get_mcs
    from lgvsc_phy.ofdm import OfdmBurstReceiver
    from tests.test_rx_robustness import add_noise, burst_stream

    _, bursts = burst_stream("qpsk-1/2", 4)
    x = np.concatenate([np.zeros(3000, np.complex64)] + bursts)
    x = add_noise(x * np.exp(2j * np.pi * cfo * np.arange(x.size) / 64), "qpsk-1/2", snr_db)
    rx = OfdmBurstReceiver(get_mcs("qpsk-1/2").ofdm, cfo_range=cfo_range)
    metric, corr = k.schmidl_cox(x, 32)
    smooth = k.moving_average(metric, rx.SMOOTH)
    rel, found, false_alarms, steps = 0, 0, 0, 0
    while steps < 50:
        steps += 1
        args = (x, metric, corr, smooth, rel, 2000, 0.4, rx.threshold, rx.screen_setup)
        got, want = k.screen(*args), k.screen_numpy(*args)
        assert got[:3] == want[:3] and got[4] == want[4]
        assert got[3] == pytest.approx(want[3], abs=1e-9)
        false_alarms += got[4]
        if got[0] != k.SCREEN_FOUND:
            break
        found += 1
        if cfo_range > 1:  # the coarse CFO, its integer part right
            assert got[3] == pytest.approx(cfo, abs=0.3)
        rel = got[2] + rx.screen_setup.header_span
    assert found == 4  # then nothing, or a crossing too near the end to analyse
    if snr_db < 5:  # at 3 dB the payloads and noise cross the plain threshold
        assert false_alarms > 0


@pytest.mark.parametrize("g", [-2, 0, 1, 2])
def test_integer_cfo_matches_numpy_and_finds_the_offset(g: int) -> None:
    """A real preamble at 0 dB turned by 0.3 + 2g spacings: told the fractional 0.3, both
    versions pick g among -2 .. 2."""
    from lgvsc_phy.mcs import get_mcs
    from lgvsc_phy.ofdm import OfdmBurstReceiver
    from tests.test_rx_robustness import add_noise, burst_stream

    rx = OfdmBurstReceiver(get_mcs("qpsk-1/2").ofdm, cfo_range=5.0)
    _, bursts = burst_stream("qpsk-1/2", 1)
    x = np.concatenate([np.zeros(400, np.complex64), bursts[0][:800]])
    x = add_noise(x * np.exp(2j * np.pi * (0.3 + 2 * g) * np.arange(x.size) / 64), "qpsk-1/2", 0.0, seed=g + 5)
    preamble = rx.screen_setup.preamble
    for peak in (400, 408, 416):  # anywhere on the first symbol's plateau
        assert k.integer_cfo(x, peak, 0.3, 64, 16, preamble, 2) == g
        assert k.integer_cfo_numpy(x, peak, 0.3, 64, 16, preamble, 2) == g
