"""The reference curves the PHY benchmark measures against, each held to closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from lgvsc_phy.constellation import CONSTELLATIONS
from lgvsc_phy.theory import fading_outage, information_density_stats, normal_approximation_snr_db, uncoded_ber

SNRS_DB = np.array([0.0, 4.0, 8.0, 12.0])


def test_uncoded_ber_matches_closed_forms() -> None:
    esn0 = 10 ** (SNRS_DB / 10)
    # BPSK: Q(sqrt(2 Es/N0)); Gray QPSK is two BPSKs at half the energy: Q(sqrt(Es/N0)).
    assert np.allclose(uncoded_ber(CONSTELLATIONS["bpsk"], SNRS_DB), norm.sf(np.sqrt(2 * esn0)), rtol=1e-9)
    assert np.allclose(uncoded_ber(CONSTELLATIONS["qpsk"], SNRS_DB), norm.sf(np.sqrt(esn0)), rtol=1e-9)
    # Gray 16-QAM, exact: (3 Q(a) + 2 Q(3a) - Q(5a)) / 4 with a = sqrt(Es / (5 N0)).
    a = np.sqrt(esn0 / 5)
    exact = (3 * norm.sf(a) + 2 * norm.sf(3 * a) - norm.sf(5 * a)) / 4
    assert np.allclose(uncoded_ber(CONSTELLATIONS["16qam"], SNRS_DB), exact, rtol=1e-9)


def test_capacity_limits_and_qpsk_as_two_bpsks() -> None:
    qpsk, bpsk = CONSTELLATIONS["qpsk"], CONSTELLATIONS["bpsk"]
    low = information_density_stats(qpsk, -20.0)[0]
    assert low == pytest.approx(0.01 * math.log2(math.e), rel=0.05)  # C ~ SNR log2(e) at low SNR
    assert information_density_stats(CONSTELLATIONS["64qam"], 30.0)[0] == pytest.approx(6.0, abs=0.02)
    # Each QPSK axis is a BPSK with half the symbol energy: C_qpsk(s) = 2 C_bpsk(s - 3.01 dB).
    for snr in (-2.0, 2.0, 6.0):
        c_qpsk = information_density_stats(qpsk, snr, samples=200000)[0]
        c_bpsk = information_density_stats(bpsk, snr - 10 * math.log10(2), samples=200000)[0]
        assert c_qpsk == pytest.approx(2 * c_bpsk, abs=0.01)


def test_normal_approximation_approaches_capacity_with_block_length() -> None:
    qpsk = CONSTELLATIONS["qpsk"]
    snrs = [normal_approximation_snr_db(qpsk, n, 0.5, 1e-2) for n in (648, 1944, 64800)]
    assert snrs[0] > snrs[1] > snrs[2]
    assert information_density_stats(qpsk, snrs[2])[0] == pytest.approx(1.0, abs=0.02)  # rate 1/2 of 2 bits


def test_static_carriers_shift_and_cost_snr() -> None:
    qpsk = CONSTELLATIONS["qpsk"]
    awgn = normal_approximation_snr_db(qpsk, 1944, 0.5, 1e-2)
    # Equal gains are a flat channel: the bound moves by the gain and no more.
    flat = normal_approximation_snr_db(qpsk, 1944, 0.5, 1e-2, carrier_gains=np.full(48, 2.0))
    assert flat == pytest.approx(awgn - 10 * math.log10(2), abs=0.02)
    # Unequal gains of the same mean cost SNR (capacity is concave in the gain).
    selective = normal_approximation_snr_db(qpsk, 1944, 0.5, 1e-2, carrier_gains=np.tile([0.2, 1.8], 24))
    assert selective > awgn + 0.5


def test_dispersion_is_per_carrier() -> None:
    """A carrier erased and one noiseless: each symbol's information is certain (0 or 2 bits),
    so the dispersion is ~0, not the variance of 0-or-2 over all symbols (1)."""
    c, v = information_density_stats(CONSTELLATIONS["qpsk"], 0.0, carrier_gains=np.array([1e-6, 1e6]))
    assert c == pytest.approx(1.0, abs=0.01)
    assert v < 0.01


def test_fading_outage_matches_closed_forms_and_monte_carlo() -> None:
    assert fading_outage("none", 5.0, 0.0) == 0.0
    # Rayleigh: the power gain is exponential with mean 1.
    assert fading_outage("rayleigh", 3.6, 5.8) == pytest.approx(1 - math.exp(-(10 ** -0.22)), rel=1e-12)
    assert fading_outage("rician", 3.6, 5.8, k_factor=1e-9) == pytest.approx(fading_outage("rayleigh", 3.6, 5.8))
    # Rician K = 4: a line-of-sight part of power K / (K + 1) plus a Rayleigh part, drawn.
    rng = np.random.default_rng(0)
    k, n = 4.0, 400_000
    h = math.sqrt(k / (k + 1)) + math.sqrt(1 / (2 * (k + 1))) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    drawn = float(np.mean(np.abs(h) ** 2 < 10 ** (-2.2 / 10)))
    assert fading_outage("rician", 3.6, 5.8, k_factor=k) == pytest.approx(drawn, abs=0.003)
    assert fading_outage("rayleigh", 0.0, 30.0) < 0.002 < 0.99 < fading_outage("rayleigh", 20.0, 0.0)
    with pytest.raises(ValueError, match="unknown fading"):
        fading_outage("nakagami", 0.0, 10.0)
