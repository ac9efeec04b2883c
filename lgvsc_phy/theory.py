"""Reference curves: uncoded BER of Gray QAM over AWGN, the normal-approximation bound
(Polyanskiy-Poor-Verdu) for a finite block over the constellation-constrained AWGN channel, and
the outage probability of flat Rayleigh and Rician fading."""

from __future__ import annotations

import numpy as np
from scipy.stats import ncx2, norm

from lgvsc_phy.constellation import Constellation


def uncoded_ber(constellation: Constellation, esn0_db: float | np.ndarray) -> np.ndarray:
    """Exact bit error rate of a Gray-labelled square (or BPSK) constellation over AWGN.

    Each point's decision region is a product of intervals (a rectangle), so the probability of
    deciding any other point is a product of Gaussian interval probabilities; weight by the bit
    differences and average over the points.
    """
    pts = np.asarray(constellation.points)
    bps = constellation.bits_per_symbol
    esn0 = 10 ** (np.atleast_1d(np.asarray(esn0_db, dtype=float)) / 10)
    sigma = np.sqrt(1 / (2 * esn0))  # per dimension, unit symbol energy
    levels_i, levels_q = np.unique(pts.real.round(9)), np.unique(pts.imag.round(9))

    def interval(levels: np.ndarray, index: int, centre: float) -> np.ndarray:
        lo = -np.inf if index == 0 else (levels[index - 1] + levels[index]) / 2
        hi = np.inf if index == len(levels) - 1 else (levels[index] + levels[index + 1]) / 2
        return norm.cdf((hi - centre) / sigma) - norm.cdf((lo - centre) / sigma)

    ber = np.zeros_like(esn0)
    for value, p in enumerate(pts):
        for other, q in enumerate(pts):
            if other == value:
                continue
            i = int(np.argmin(abs(levels_i - q.real)))
            j = int(np.argmin(abs(levels_q - q.imag)))
            prob = interval(levels_i, i, p.real)
            if len(levels_q) > 1:
                prob = prob * interval(levels_q, j, p.imag)
            ber += prob * bin(value ^ other).count("1")
    return ber / (len(pts) * bps)


def information_density_stats(constellation: Constellation, esn0_db: float, samples: int = 40000,
                              seed: int = 0, carrier_gains: np.ndarray | None = None) -> tuple[float, float]:
    """(capacity C, dispersion V) in bits per channel use for uniform inputs, by Monte Carlo.

    ``carrier_gains`` (power gains |H_k|^2, known to the receiver) makes it the static
    frequency-selective channel an OFDM block sees: its symbols spread evenly over the carriers,
    so C is the mean of the carriers' capacities and, the carrier of each symbol being fixed,
    V the mean of their dispersions (not the variance over all symbols, which would add the
    spread of the carriers' capacities).
    """
    rng = np.random.default_rng(seed)
    pts = np.asarray(constellation.points)
    gains = np.ones(1) if carrier_gains is None else np.asarray(carrier_gains, dtype=float)
    per_carrier = max(1, samples // gains.size)
    noise_var = (10 ** (-esn0_db / 10) / gains)[None, :]  # after equalization, per carrier
    shape = (per_carrier, gains.size)
    x = pts[rng.integers(0, len(pts), shape)]
    y = x + np.sqrt(noise_var / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    d = -np.abs(y[..., None] - pts) ** 2 / noise_var[..., None]  # log-likelihoods up to a constant
    own = -np.abs(y - x) ** 2 / noise_var
    top = d.max(axis=-1)
    log_mix = top + np.log(np.exp(d - top[..., None]).mean(axis=-1))
    density = (own - log_mix) / np.log(2)
    return float(density.mean()), float(density.var(axis=0).mean())


def normal_approximation_snr_db(constellation: Constellation, block_bits: int, rate: float, error_rate: float,
                                lo_db: float = -10.0, hi_db: float = 30.0,
                                carrier_gains: np.ndarray | None = None) -> float:
    """Es/N0 at which a code of ``block_bits`` coded bits and ``rate`` can reach ``error_rate``:
    n C - sqrt(n V) Q^-1(eps) + log2(n) / 2 = k, with n channel uses (complex symbols); over
    AWGN, or over the static carriers ``carrier_gains`` (see ``information_density_stats``)."""
    n = block_bits / constellation.bits_per_symbol
    k = block_bits * rate
    q = norm.isf(error_rate)

    def achievable(snr_db: float) -> float:
        c, v = information_density_stats(constellation, snr_db, carrier_gains=carrier_gains)
        return n * c - np.sqrt(n * v) * q + 0.5 * np.log2(n)

    for _ in range(40):  # bisection; common random numbers keep achievable() monotone
        mid = (lo_db + hi_db) / 2
        if achievable(mid) >= k:
            hi_db = mid
        else:
            lo_db = mid
    return hi_db


def fading_outage(fading: str, threshold_db: float, mean_snr_db: float, k_factor: float = 4.0) -> float:
    """P(instantaneous SNR < ``threshold_db``) on a flat fading channel of mean SNR ``mean_snr_db``:
    a burst that sees a fade below its MCS's threshold is lost. Rayleigh: 1 - exp(-th / mean).
    Rician with factor K: the power gain times 2(K + 1) is noncentral chi-square with 2 degrees of
    freedom and noncentrality 2K. No fading ("none"): 0."""
    ratio = 10 ** ((threshold_db - mean_snr_db) / 10)
    if fading == "none":
        return 0.0
    if fading == "rayleigh":
        return float(-np.expm1(-ratio))
    if fading == "rician":
        return float(ncx2.cdf(2 * (k_factor + 1) * ratio, 2, 2 * k_factor))
    raise ValueError(f"unknown fading model {fading!r}")
