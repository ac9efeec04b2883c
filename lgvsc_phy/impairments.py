"""Radio front-end impairments in plain numpy, for what GNU Radio's own blocks do not model.

The channel flowgraph (grc_flowgraphs/channel.grc) applies the impairments in the order a real
link does: the transmitter's PA (``RappPa``), the air (multipath, fading), the receiver's
oscillator (CFO, phase noise) and sample clock (SFO), thermal noise, then the receiver's analog
front end (DC offset, IQ imbalance), its ADC (``Adc``) and the host (``SampleDrops``: samples an
overflow loses). GNU Radio models SFO (``filter.pfb_arb_resampler_ccf``), IQ imbalance
(``channels.iqbal_gen``) and DC offset (``blocks.add_const_cc``); the Rapp PA, an ADC that clips at
its full scale, and sample gaps are here, wrapped as blocks in ``lgvsc_phy.gr_blocks``.

Levels are relative to the transmitter's unit mean power (``OfdmParams.tx_scale``), the
reference of the SNR: back-off, full scale and DC level all refer to an RMS amplitude of 1.
Each model is the identity when off (the "off" value of each is named below), so a channel
without impairments gives bit-identical samples.
"""

from __future__ import annotations

import math

import numpy as np

PA_OFF = 0.0  # pa_backoff_db at or below this: linear PA (no compression)
DC_OFF_DBC = -200.0  # dc_offset_dbc at or below this: no DC offset
ADC_OFF = 0  # adc_bits: no quantization
ADC_HEADROOM_DB = 12.0  # ADC full scale above the signal's per-rail RMS: an AGC leaves room for OFDM's PAPR
GAP_SAMPLES = 2000  # samples one gap loses: of the order of one USB transport frame of a B2x0
# The sample rate the gaps' rx_time tags are stamped at (a receiver takes it from rx_rate; the
# simulated stream has no rate of its own).
DROPS_SAMPLE_RATE = 1e6


def rapp_gain(amplitude: np.ndarray, a_sat: float, p: float) -> np.ndarray:
    """Rapp AM/AM: output / input amplitude, ``1 / (1 + (A/A_sat)^2p)^(1/2p)``. No AM/PM (a
    solid-state PA, which is what Rapp's model describes)."""
    return 1.0 / (1.0 + (amplitude / a_sat) ** (2.0 * p)) ** (1.0 / (2.0 * p))


class RappPa:
    """A solid-state PA by Rapp's model, driven at ``backoff_db`` input back-off: the saturation
    amplitude is ``backoff_db`` above the unit RMS of the signal. Small-signal gain 1, so the
    SNR's reference is unchanged; ``smoothness`` is Rapp's p (large: a hard limiter)."""

    def __init__(self, backoff_db: float = PA_OFF, smoothness: float = 2.0) -> None:
        self.backoff_db, self.smoothness = float(backoff_db), float(smoothness)

    @property
    def on(self) -> bool:
        return self.backoff_db > PA_OFF

    @property
    def a_sat(self) -> float:
        return 10.0 ** (self.backoff_db / 20.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.on:
            return x
        gain = rapp_gain(np.abs(x), self.a_sat, self.smoothness)
        return (x * gain).astype(x.dtype, copy=False)


def dc_offset(dbc: float) -> complex:
    """The DC a front end adds at ``dbc`` below the unit-power signal, at 45 degrees (on I and Q
    alike); 0 when off."""
    if dbc <= DC_OFF_DBC:
        return 0j
    return 10.0 ** (dbc / 20.0) * complex(math.sqrt(0.5), math.sqrt(0.5))


def iq_imbalance_coefficients(magnitude_db: float, phase_deg: float) -> tuple[complex, complex]:
    """``(a, b)`` with ``y = a x + b conj(x)``: GNU Radio's ``iqbal_gen`` in receiver mode, which
    makes I' = g (I cos(phi) + Q sin(phi)) and Q' = Q, so a = (1 + g e^-j phi) / 2 and
    b = (g e^j phi - 1) / 2 (a = 1, b = 0 without imbalance)."""
    g, phi = 10.0 ** (magnitude_db / 20.0), math.radians(phase_deg)
    return (1.0 + g * complex(math.cos(phi), -math.sin(phi))) / 2, (g * complex(math.cos(phi), math.sin(phi)) - 1.0) / 2


def image_rejection_db(magnitude_db: float, phase_deg: float) -> float:
    """Image rejection |a|^2 / |b|^2 of ``iq_imbalance_coefficients``: (1 + 2 g cos(phi) + g^2) /
    (1 - 2 g cos(phi) + g^2). Infinite without imbalance."""
    a, b = iq_imbalance_coefficients(magnitude_db, phase_deg)
    return math.inf if abs(b) < 1e-15 else 10.0 * math.log10(abs(a) ** 2 / abs(b) ** 2)


def undo_iq_imbalance(y: np.ndarray, a: complex, b: complex) -> np.ndarray:
    """x from ``y = a x + b conj(x)``: what a receiver that knows the imbalance recovers."""
    return (np.conj(a) * y - b * np.conj(y)) / (abs(a) ** 2 - abs(b) ** 2)


class Adc:
    """A ``bits``-bit ADC on I and Q: a mid-rise quantizer over [-FS, FS] per rail, clipping at
    full scale. FS is ``headroom_db`` above the per-rail RMS (1/sqrt 2) of a unit-power signal,
    as an AGC would set it. ``bits`` 0: off."""

    def __init__(self, bits: int = ADC_OFF, headroom_db: float = ADC_HEADROOM_DB) -> None:
        self.bits, self.headroom_db = int(bits), float(headroom_db)

    @property
    def on(self) -> bool:
        return self.bits > ADC_OFF

    @property
    def full_scale(self) -> float:
        return 10.0 ** (self.headroom_db / 20.0) / math.sqrt(2.0)

    def quantize(self, v: np.ndarray) -> np.ndarray:
        """One rail (real): the level's centre, clipped to the outermost levels."""
        levels = 2**self.bits
        step = 2.0 * self.full_scale / levels
        code = np.clip(np.floor(v / step), -levels // 2, levels // 2 - 1)
        return (code + 0.5) * step

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.on:
            return x
        return (self.quantize(x.real) + 1j * self.quantize(x.imag)).astype(x.dtype, copy=False)


class SampleDrops:
    """Gaps in a sample stream, as a receiver's overflows leave them: each sample starts a gap
    with probability ``rate`` (gaps a sample), and a gap loses ``gap`` samples. Streaming: call
    it on consecutive chunks; the result is the chunk less the samples lost."""

    def __init__(self, rate: float = 0.0, gap: int = GAP_SAMPLES, seed: int = 0) -> None:
        self.rate, self.gap = float(rate), int(gap)
        self.rng = np.random.default_rng(seed)
        self.gaps = 0  # gaps started so far
        self.lost = 0  # samples lost so far
        self._to_drop = 0  # samples of the current gap still to lose
        self._resume_due = False  # a gap ended; the next sample kept is the first after it
        self._next_gap = self._draw()  # samples kept before the next gap starts

    @property
    def on(self) -> bool:
        return self.rate > 0

    def set_rate(self, rate: float) -> None:
        self.rate = float(rate)
        self._next_gap = self._draw()

    def _draw(self) -> int | float:
        return int(self.rng.geometric(self.rate)) - 1 if self.rate > 0 else math.inf

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.split(x)[0]

    def split(self, x: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The chunk less the samples lost, and (index in the result, index in ``x``) of the
        first sample after each gap that ends here: where a radio's overflow tag would go."""
        if not self.on and not self._to_drop and not self._resume_due:
            return x, []
        keep, resumes = self.advance(x.size)
        lost_before = np.cumsum(~keep)
        return x[keep], [(i - int(lost_before[i]), i) for i in resumes]

    def advance(self, n: int) -> tuple[np.ndarray, list[int]]:
        """The next ``n`` samples: which are kept, and the first kept after each gap."""
        keep = np.ones(n, dtype=bool)
        resumes: list[int] = []
        i = 0
        while i < n:
            if self._to_drop:
                k = min(self._to_drop, n - i)
                keep[i : i + k] = False
                self._to_drop -= k
                self.lost += k
                i += k
                self._resume_due = self._to_drop == 0
                continue
            if self._resume_due and self._next_gap > 0:  # (a gap right after a gap extends it)
                resumes.append(i)
                self._resume_due = False
            if self._next_gap >= n - i:
                self._next_gap -= n - i
                break
            i += int(self._next_gap)
            self._next_gap = self._draw()
            self._to_drop = self.gap
            self.gaps += 1
        return keep, resumes
