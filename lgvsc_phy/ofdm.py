"""OFDM bursts in plain numpy: a reference modulator and a streaming burst receiver.

Burst layout (what tx.grc emits, checked sample for sample in the tests): two Schmidl-Cox
preamble symbols, three BPSK header symbols (``lgvsc_phy.header``: MCS, length, sequence,
convolutionally coded), payload OFDM symbols, then ``post_padding`` zeros. Every symbol
carries a cyclic prefix; pilots sit on all non-preamble symbols.

The receiver detects bursts with the Schmidl-Cox metric, estimates CFO from its phase, finds fine
timing by correlating with the known preamble, fits a sparse channel impulse response (matching
pursuit over both preamble symbols, which also yields the noise variance), tracks common phase on
the pilots, and returns equalized payload symbols with per-symbol channel state (1 / noise
variance). Its per-sample and per-symbol loops are compiled in ``lgvsc_phy.ofdm_kernels``.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from lgvsc_phy.constellation import BPSK
from lgvsc_phy.header import PhyHeader, conv_decode, conv_encode, decode_header, encode_header
from lgvsc_phy.mcs import MCS_BY_INDEX, Mcs
from lgvsc_phy.ofdm_kernels import (
    SCREEN_NONE,
    SCREEN_WAIT,
    ScreenSetup,
    centred_windows,
    clock_residual,
    dc_step,
    equalize,
    moving_average,
    rotate_carriers,
    schmidl_cox,
    screen,
    sparse_tap_fit,
)
from lgvsc_phy.ofdm_params import OfdmParams


class OfdmModulator:
    """Reference transmitter: a burst's complex symbols -> samples, exactly as tx.grc makes them
    (unit mean power on the used carriers, then ``post_padding`` zeros)."""

    def __init__(self, params: OfdmParams) -> None:
        self.p = params

    def _symbol(self, carriers: dict[int, complex]) -> np.ndarray:
        spec = np.zeros(self.p.fft_len, dtype=np.complex128)
        for k, v in carriers.items():
            spec[k + self.p.fft_len // 2] = v
        return self.to_time(spec)

    def to_time(self, centred: np.ndarray) -> np.ndarray:
        """One OFDM symbol from its carriers in centred order, cyclic prefix first."""
        x = np.fft.ifft(np.fft.ifftshift(centred)) * self.p.fft_len  # GNU Radio's IFFT is unnormalized
        return np.concatenate([x[-self.p.cp_len :], x])

    def _data_symbols(self, values: np.ndarray) -> list[np.ndarray]:
        n = self.p.data_carriers
        out = []
        for i in range(0, max(len(values), 1), n):
            chunk = values[i : i + n]
            carriers = dict(zip(self.p.occupied_carriers, chunk, strict=False))
            carriers.update(zip(self.p.pilot_carriers, self.p.pilot_symbols, strict=True))
            out.append(self._symbol(carriers))
        return out

    def burst(self, symbols: np.ndarray) -> np.ndarray:
        w1, w2 = self.p.sync_words()
        parts = [self.to_time(np.asarray(w1)), self.to_time(np.asarray(w2))]
        parts += self._data_symbols(np.asarray(symbols))
        x = np.concatenate(parts) * self.p.tx_scale()
        return np.concatenate([x, np.zeros(self.p.post_padding)]).astype(np.complex64)


@dataclass(frozen=True)
class RxBurst:
    start: int  # absolute sample index of the burst's first sample
    length: int  # payload bytes of the PHY frame (from the header)
    seq: int  # header sequence number
    mcs: str  # from the header
    symbols: np.ndarray  # equalized payload QAM symbols
    csi: np.ndarray  # per symbol 1 / noise variance of the equalized symbol
    snr_db: float  # Es/N0 estimate from the preamble fit
    cfo: float  # carrier offset in subcarrier spacings
    esnr_db: float = float("nan")  # effective SNR over the data carriers (capacity mapping)
    sfo_ppm: float = 0.0  # the receiver's sample clock offset estimate after this burst


@dataclass(frozen=True)
class _Pending:
    """A burst whose header is decoded; its payload may still be arriving."""

    start: int  # absolute sample index
    end: int  # absolute index just past its last OFDM symbol
    cfo: float
    chan: np.ndarray
    gain: np.ndarray  # per data carrier, 1 / noise variance after zero-forcing (float32)
    snr_db: float
    length: int
    seq: int
    mcs: Mcs
    noise_var: float = 1.0  # per carrier, of the channel fit
    esnr_db: float = float("nan")  # effective SNR of ``gain``


@dataclass
class SampleClockTracker:
    """The sample clock offset between two radios (fractional: 4e-6 is 4 ppm), tracked across
    bursts.

    Each burst gives an estimate and its precision (from the pilots, see
    ``OfdmBurstReceiver._clock_residual``); the tracker keeps their precision-weighted mean,
    each earlier burst's weight shrinking by ``forget`` per burst so a drifting clock is
    followed. One burst at low SNR measures a few ppm only to +-10 ppm; the mean of a dozen
    does better, and at high SNR, where a wrong slope costs most, one burst alone suffices.
    """

    forget: float = 0.9
    offset: float = 0.0
    precision: float = 0.0

    def update(self, estimate: float, precision: float) -> float:
        kept = self.precision * self.forget
        if kept + precision > 0:
            self.offset = (kept * self.offset + precision * estimate) / (kept + precision)
        self.precision = kept + precision
        return self.offset


@dataclass
class DcTracker:
    """A front end's DC offset, tracked as the stream's running mean and removed.

    Bursts carry nothing on the DC carrier and their data is random, so over ``time_constant``
    samples the signal averages out to ~1 / sqrt(time_constant) of its RMS (-48 dB for 2^16)
    while a DC offset stays. Left in, the DC lands between carriers once the CFO is removed and
    leaks into its neighbours: at -25 dBc it costs 64-QAM 5/6 more than 0.5 dB.
    """

    time_constant: float = 65536.0
    level: complex = 0j
    seen: int = 0

    def remove(self, chunk: np.ndarray) -> np.ndarray:
        if chunk.size == 0:
            return chunk
        self.seen += chunk.size
        # Early on, the plain mean of all samples so far; then an exponential average.
        alpha = max(chunk.size / self.seen, 1 - np.exp(-chunk.size / self.time_constant))
        self.level, out = dc_step(chunk, self.level, alpha)
        return out


@cache
def _steps(count: int, step: int = 1) -> np.ndarray:
    """0, step, 2 step, ... (``count`` of them), read-only: shared between calls."""
    out = np.arange(count) * step
    out.flags.writeable = False
    return out


def effective_snr_db(carrier_snr: np.ndarray) -> float:
    """The flat-channel SNR with the same mean capacity as these per-carrier SNRs (linear): what
    link adaptation should compare with AWGN thresholds on a frequency-selective channel."""
    snr = np.maximum(np.asarray(carrier_snr, dtype=float), 0.0)
    if snr.size == 0:
        return float("nan")
    mean_capacity = float(np.log1p(snr).sum()) / snr.size / math.log(2)  # bits per carrier
    return 10 * math.log10(max(2**mean_capacity - 1, 1e-12))


class SparseTapFit:
    """Sparse impulse response ``taps`` with ``y ~ design @ taps``, by orthogonal matching pursuit.

    A full least-squares fit of every delay of the grid is ill-conditioned here (52 of 64
    carriers are used, the first preamble symbol only on even ones) and its noise costs 1-2 dB.
    Instead, taps are added one at a time while the strongest normalized correlation with the
    residual stands clear of the noise (estimated from the full fit's residual), and the chosen
    taps are refitted jointly at each step. Everything runs on the Gram matrix, precomputed for
    the fixed design: a fit costs one product with the observations and a few tiny solves.
    """

    def __init__(self, design: np.ndarray, significant: float, max_taps: int) -> None:
        self.design_h = np.ascontiguousarray(design.conj().T)
        self.gram = self.design_h @ design
        self.pinv = np.linalg.pinv(design)
        self.full_dof = max(design.shape[0] - np.linalg.matrix_rank(design), 1)
        self.significant, self.max_taps = significant, max_taps

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Taps (one per design column, mostly zero) and the noise variance of the residual."""
        return sparse_tap_fit(self.design_h, self.gram, self.pinv, np.ascontiguousarray(y, dtype=np.complex128),
                              self.full_dof, self.significant, self.max_taps)


def integer_cfo_hypotheses(cfo_range: float) -> int:
    """How many integer CFO offsets (2 subcarrier spacings each) the receiver tests on each side
    to acquire |CFO| up to ``cfo_range`` spacings: it then acquires up to 1 + 2 x that."""
    if not cfo_range >= 1:
        raise ValueError(f"cfo_range must be at least 1 subcarrier spacing, got {cfo_range}")
    return int(np.ceil((cfo_range - 1) / 2 - 1e-9))


def cfo_range_warning(cfo: float, cfo_range: float) -> str | None:
    """A line for a loopback whose channel CFO the receiver cannot acquire at this range."""
    acquired = 1 + 2 * integer_cfo_hypotheses(cfo_range)
    if abs(cfo) < acquired:
        return None
    return (f"warning: --cfo {cfo:g} is beyond the receiver's +-{acquired:g} subcarrier spacings (--cfo-range "
            f"{cfo_range:g}): no burst will be received; give --cfo-range {abs(cfo) + 1:.0f}")


class OfdmBurstReceiver:
    """Streaming receiver: ``feed`` samples in any chunking, get complete bursts back."""

    TIMING_BACKOFF = 3  # FFT window starts this far inside the CP: absorbs timing jitter
    SMOOTH = 8  # detect on the metric averaged over this many samples: noise spikes are short
    MIN_PREAMBLE_CORRELATION = 0.15  # normalized preamble correlation that confirms a detection
    REFIT_BELOW_COHERENCE = 0.8  # preamble symbols' coherence (~SNR / (1 + SNR)): ~6 dB
    ANCHOR_WEIGHT = 1.0  # the preamble phase reference counts as this many symbols of pilots
    MAX_BUFFER = 1 << 20
    # A reported gap is filled with at most this many zeros: past the longest burst (BPSK's ~7000
    # samples) no burst spans it, so more zeros would only be searched through.
    MAX_GAP_FILL = 1 << 14
    SIGNIFICANT = 6.0  # add a tap while its correlation power exceeds this many noise variances
    MAX_TAPS = 8
    # A detection whose preamble did not correlate at the CFO read at the threshold crossing gets
    # a second look at the metric's peak only where the smoothed metric reached this. Noise's
    # false alarms reach 0.1 about half the time: in-process on 4 M samples of noise the receiver
    # took 0.63-0.66 s with the gate at 0.1, 0.51-0.52 at 0.15, 0.51-0.54 with no second look;
    # synthetic bpsk-1/2 bursts (1000 each at 0, -1 and -2 dB) were found alike at 0.1 and 0.15.
    SECOND_LOOK_GATE = 0.15
    # With a CFO range past 1 spacing the second look also tests the integer offsets, without
    # which such a burst is never found: there the gate stays at 0.1, what a preamble at -1 dB
    # reaches ~98 % of the time.
    INTEGER_CFO_GATE = 0.1

    def __init__(self, params: OfdmParams, threshold: float = 0.06, cfo_range: float = 1.0) -> None:
        """``cfo_range``: the largest |CFO| acquired, in subcarrier spacings. The preamble's
        half-symbol repetition measures CFO modulo 2 spacings; beyond 1 the receiver also tests
        integer offsets (``integer_cfo``), ceil((cfo_range - 1) / 2) on each side."""
        self.p, self.threshold = params, threshold
        self.buf = np.zeros(0, dtype=np.complex64)
        self.base = 0  # absolute index of buf[0]
        self.pos = 0  # absolute index where the search resumes
        self.headers_failed = 0
        self.false_alarms = 0
        self._clock_phase_step = 2 * np.pi * params.symbol_len / params.fft_len  # per symbol, carrier, offset
        self.pending: _Pending | None = None
        self.erased: list[tuple[int, int]] = []  # absolute [begin, end) of the zeros that fill gaps
        self.gaps_filled = 0
        self.strict = (0, threshold)  # (absolute end, threshold): a higher threshold inside the last burst
        self.clock = SampleClockTracker()
        self.dc = DcTracker()
        w1, w2 = (np.asarray(w) for w in params.sync_words())
        ref = OfdmModulator(params)
        preamble = np.concatenate([ref.to_time(w1), ref.to_time(w2)]).astype(np.complex128)
        self._build_channel_fit(w1, w2)
        sync_and_header = (params.sync_symbols + params.header_symbols) * params.symbol_len
        self.screen_setup = ScreenSetup(
            preamble, float(np.sum(np.abs(preamble) ** 2)), params.fft_len, params.symbol_len, params.cp_len,
            sync_and_header + 2 * params.symbol_len, sync_and_header, self.MIN_PREAMBLE_CORRELATION,
            0, self.SECOND_LOOK_GATE)
        self.set_cfo_range(cfo_range)
        half = params.fft_len // 2
        self.active = np.array(list(params.occupied_carriers) + list(params.pilot_carriers)) + half
        self.data_idx = np.array(params.occupied_carriers) + half
        self.pilot_idx = np.array(params.pilot_carriers) + half
        self.pilot_vals = np.asarray(params.pilot_symbols, dtype=complex)
        self.pilot_carriers = np.asarray(params.pilot_carriers, dtype=float)

    def set_cfo_range(self, cfo_range: float) -> None:
        """The largest |CFO| acquired from the next detection on, in subcarrier spacings."""
        search = integer_cfo_hypotheses(cfo_range)
        gate = self.INTEGER_CFO_GATE if search else self.SECOND_LOOK_GATE
        self.screen_setup = replace(self.screen_setup, cfo_search=search, second_look_gate=gate)

    @property
    def cfo_search(self) -> int:
        """Integer CFO hypotheses on each side of the fractional estimate (2 spacings each)."""
        return self.screen_setup.cfo_search

    def _build_channel_fit(self, w1: np.ndarray, w2: np.ndarray) -> None:
        """Sparse impulse-response fits: to both preamble symbols, and to those plus the header."""
        n, half = self.p.fft_len, self.p.fft_len // 2
        delays = np.arange(-2, self.p.cp_len + self.TIMING_BACKOFF + 1)
        k_all = np.arange(n) - half
        self.fourier = np.exp(-2j * np.pi * np.outer(k_all, delays) / n)  # (n, taps)
        self.rows1 = np.flatnonzero(w1)
        self.rows2 = np.flatnonzero(w2)
        self.preamble_rows = np.concatenate([self.rows1, n + self.rows2])  # into both symbols' spectra, flat
        self.ref1, self.ref2 = w1[self.rows1], w2[self.rows2]  # the preamble's known carriers
        self.common = np.intersect1d(self.rows1, self.rows2)
        # The residual CFO's phase step: sum(conj(pre0 w1*) pre1 w2*) over the common carriers.
        self.step_weights = np.conj(w2[self.common]) * w1[self.common]
        design = np.concatenate(
            [w1[self.rows1, None] * self.fourier[self.rows1], w2[self.rows2, None] * self.fourier[self.rows2]]
        )
        self.preamble_fit = SparseTapFit(design, self.SIGNIFICANT, self.MAX_TAPS)
        active = np.array(list(self.p.occupied_carriers) + list(self.p.pilot_carriers)) + half
        header_rows = np.tile(self.fourier[active], (self.p.header_symbols, 1))
        self.header_fit = SparseTapFit(np.concatenate([design, header_rows]), self.SIGNIFICANT, self.MAX_TAPS)
        # The symbol (from the burst's start) the channel fit refers to: the mean symbol index of
        # its training carriers (preamble and header), ~2.2.
        counts = np.array([self.rows1.size, self.rows2.size] + [active.size] * self.p.header_symbols)
        self.channel_epoch = float(np.arange(counts.size) @ counts / counts.sum())

    # -- streaming ---------------------------------------------------------------------------
    def feed(self, samples: np.ndarray, gaps: Sequence[tuple[int, int]] = ()) -> list[RxBurst]:
        """Take the next ``samples``; ``gaps`` lists (index into ``samples``, samples lost just
        before it), as a radio's overflow tags report them (``stream_time.GapMeter``). Each gap
        is filled with zeros, so a burst it cuts keeps its timing and loses only the symbols
        it covers, which its CSI marks as erasures."""
        chunk = self.dc.remove(np.asarray(samples, dtype=np.complex64))
        self.buf = np.concatenate([self.buf, self._fill_gaps(chunk, gaps) if gaps else chunk])
        bursts: list[RxBurst] = []
        if self.pending is not None:  # header already decoded: only wait for the payload
            if self.base + self.buf.size < self.pending.end:
                return bursts
            bursts.append(self._finish(self.pending))
            self.pos, self.pending = self._resume_after(self.pending), None
        metric, phase_ref = schmidl_cox(self.buf, self.p.fft_len // 2)
        smooth = moving_average(metric, self.SMOOTH)
        while True:
            rel = self.pos - self.base
            strict_end, strict_threshold = self.strict
            kind, d, start, cfo, false_alarms = screen(
                self.buf, metric, phase_ref, smooth, rel, strict_end - self.base, float(strict_threshold),
                float(self.threshold), self.screen_setup)
            self.false_alarms += false_alarms
            if kind == SCREEN_NONE:
                self.pos = self.base + max(rel, smooth.size)
                break
            if kind == SCREEN_WAIT:
                self.pos = self.base + d  # wait for the rest of the preamble and header
                break
            found = self._analyse(start, cfo, phase_ref)
            if found is None:  # bad header: resume after this above-threshold region
                after = np.flatnonzero(smooth[d:] <= self.threshold)
                self.pos = self.base + (d + int(after[0]) if after.size else smooth.size)
                continue
            if self.base + self.buf.size < found.end:
                self.pending, self.pos = found, self.base + d  # keep it; finish when the payload is in
                break
            bursts.append(self._finish(found))
            self.pos = self._resume_after(found)
        self._trim()
        return bursts

    def _fill_gaps(self, chunk: np.ndarray, gaps: Sequence[tuple[int, int]]) -> np.ndarray:
        pieces, at, where = [], 0, self.base + self.buf.size  # ``where``: absolute index of the next sample
        for index, lost in sorted(gaps):
            index, fill = min(max(int(index), at), chunk.size), min(int(lost), self.MAX_GAP_FILL)
            pieces.append(chunk[at:index])
            where += index - at
            if fill > 0:
                pieces.append(np.zeros(fill, dtype=chunk.dtype))
                self.erased.append((where, where + fill))
                self.gaps_filled += 1
                where += fill
            at = index
        pieces.append(chunk[at:])
        return np.concatenate(pieces)

    def _erased_symbols(self, first: int, count: int) -> np.ndarray:
        """Which of ``count`` OFDM symbols from absolute index ``first`` overlap filled gaps."""
        sym = self.p.symbol_len
        hit = np.zeros(count, dtype=bool)
        for begin, end in self.erased:
            if end <= first:  # a gap before these symbols (hi would be negative: a slice from the end)
                continue
            lo, hi = max((begin - first) // sym, 0), min(-(-(end - first) // sym), count)
            hit[lo:hi] = True
        return hit

    def _resume_after(self, burst: _Pending) -> int:
        """Where the search goes on after ``burst``: just past its header, not past its end.

        A gap in the stream (samples a radio's overflow lost) inside the payload makes the
        burst end earlier than its header says; searching from the header's end finds the next
        preamble wherever it really is, so one gap costs one burst, not two. Inside the burst's
        nominal span the detection threshold is raised to half the metric a preamble at this
        burst's SNR gives (``(snr / (1 + snr))**2``): the payload's own metric then seldom
        crosses it, where at the plain threshold it would every few symbols at low SNR.
        """
        snr = 10 ** (burst.snr_db / 10)
        self.strict = (burst.end, max(self.threshold, 0.5 * (snr / (1 + snr)) ** 2))
        return burst.start + (self.p.sync_symbols + self.p.header_symbols) * self.p.symbol_len

    @staticmethod
    @cache
    def _payload_symbols(mcs: Mcs, length: int) -> int:
        return mcs.codec().payload_symbols(length)

    def _burst_len(self, mcs: Mcs, length: int) -> int:
        """Samples from the burst's start to the end of its last OFDM symbol (padding excluded)."""
        return self.p.burst_samples(self._payload_symbols(mcs, length)) - self.p.post_padding

    def _trim(self) -> None:
        keep_from = max(0, self.pos - self.base - 2 * self.p.symbol_len)
        if keep_from > 0:
            self.buf = self.buf[keep_from:]
            self.base += keep_from
        if self.erased:
            self.erased = [gap for gap in self.erased if gap[1] > self.base]
        if self.buf.size > self.MAX_BUFFER:  # never grow without bound on garbage input
            drop = self.buf.size - self.MAX_BUFFER
            self.buf, self.base = self.buf[drop:], self.base + drop
            self.pos = max(self.pos, self.base)

    def _analyse(self, start: int, cfo: float, phase_ref: np.ndarray) -> _Pending | None:
        """CFO, channel and header of the burst at buffer index ``start`` (its preamble found by
        ``screen``, with the coarse ``cfo``); None where the header fails."""
        cp = self.p.cp_len
        # Fine CFO: average the half-symbol correlation over the part of the first preamble
        # symbol's plateau that echoes up to half the CP long cannot reach.
        plateau = phase_ref[start + cp // 2 : min(start + cp + 1, phase_ref.size)]
        if plateau.size:  # refines the fractional part; the integer part (screen's) stays
            fraction = cmath.phase(-complex(plateau.sum())) / math.pi
            cfo = fraction + 2 * round((cfo - fraction) / 2)
        # Residual CFO from the phase step between the two preamble symbols, twice: carrier by
        # carrier first (any residual the plateau leaves, up to ~0.4 spacings), then each symbol
        # against the sparse channel fit to both, a reference almost free of noise: at -1 dB the
        # first alone erred by 0.031 spacings rms and past 0.07 (enough to fail the header) on
        # 3 % of bursts, the second by 0.020 and never past 0.065. The fit needs the first: at a
        # large residual the two symbols' channel estimates cancel. Where the two symbols agree
        # (SNR above ~6 dB) the first is already good to ~0.005 spacings and the second, 26 us a
        # burst, is skipped.
        step, coherence = self._carrier_step(self._spectra(cfo, start, 0, 2))
        cfo += step
        if coherence < self.REFIT_BELOW_COHERENCE:
            cfo += self._fitted_step(self._spectra(cfo, start, 0, 2))
        known = self._spectra(cfo, start, 0, self.p.sync_symbols + self.p.header_symbols)  # preamble, header
        y = known[:2].reshape(-1)[self.preamble_rows]
        taps, noise_var = self.preamble_fit(y)
        chan = self.fourier @ taps  # (n,) centred
        gain = np.abs(chan[self.data_idx]) ** 2 / noise_var  # per data carrier: 1 / noise var after ZF
        hdr_spectra = known[self.p.sync_symbols :]
        hdr = self._equalize(hdr_spectra, chan, self.p.sync_symbols)
        header = self._decode_header(hdr, gain)
        mcs = MCS_BY_INDEX.get(header.mcs_index) if header else None
        if header is None or mcs is None:
            self.headers_failed += 1
            return None
        chan, noise_var = self._refine_with_header(y, header, hdr_spectra, chan)
        active = chan[self.active]
        snr = np.vdot(active, active).real / active.size / noise_var
        gain = np.abs(chan[self.data_idx]) ** 2 / noise_var
        start_abs = self.base + start
        return _Pending(start_abs, start_abs + self._burst_len(mcs, header.length), cfo, chan, gain.astype(np.float32),
                        float(10 * np.log10(snr)), header.length, header.seq, mcs, noise_var, effective_snr_db(gain))

    def _carrier_step(self, pre: np.ndarray) -> tuple[float, float]:
        """The CFO, in subcarrier spacings, that turns the preamble's second symbol against its
        first in their spectra ``pre``, summed carrier by carrier over the ~52 carriers both
        use; and the two symbols' coherence there (~SNR / (1 + SNR))."""
        first, second = pre[0, self.common], pre[1, self.common] * self.step_weights
        step = np.vdot(first, second)
        coherence = abs(step) / math.sqrt(max(np.vdot(first, first).real * np.vdot(second, second).real, 1e-30))
        return self._step_to_cfo(step), coherence

    def _fitted_step(self, pre: np.ndarray) -> float:
        """The same CFO from each preamble symbol's phase against the sparse channel fit to both."""
        chan = self.fourier @ self.preamble_fit(pre.reshape(-1)[self.preamble_rows])[0]
        first = np.vdot(chan[self.rows1] * self.ref1, pre[0, self.rows1])
        return self._step_to_cfo(np.vdot(chan[self.rows2] * self.ref2, pre[1, self.rows2]) * first.conjugate())

    def _step_to_cfo(self, step: complex) -> float:
        return cmath.phase(step) * self.p.fft_len / (2 * math.pi * self.p.symbol_len)

    def _finish(self, burst: _Pending) -> RxBurst:
        """Equalize the payload of an analysed burst whose samples are all in the buffer."""
        first_data = self.p.sync_symbols + self.p.header_symbols
        n_sym = self._payload_symbols(burst.mcs, burst.length)
        n_ofdm = (burst.end - burst.start) // self.p.symbol_len - first_data
        spectra = self._spectra(burst.cfo, burst.start - self.base, first_data, n_ofdm)
        # Sample clock: phase per carrier index, per unit of offset, at each payload symbol.
        per_offset = self._clock_phase_step * (first_data - self.channel_epoch + _steps(n_ofdm))
        erased = self._erased_symbols(burst.start + first_data * self.p.symbol_len, n_ofdm)
        heard = ~erased
        before = self.clock.offset
        residual, precision = (self._clock_residual(spectra, burst, per_offset, before) if not erased.any() else
                               self._clock_residual(spectra[heard], burst, per_offset[heard], before))
        rotate_carriers(spectra, per_offset * self.clock.update(before + residual, precision))
        spectra[erased] = 0  # partly filled symbols' pilots would pull the pilot phase line too
        data = self._equalize(spectra, burst.chan, first_data).reshape(-1)[:n_sym]
        csi = np.empty((n_ofdm, burst.gain.size), dtype=np.float32)
        csi[:] = burst.gain  # the carriers' gains, OFDM symbol by OFDM symbol
        csi[erased] = 0.0  # symbols a gap's zeros fill: erasures, no information
        return RxBurst(burst.start, burst.length, burst.seq, burst.mcs.name, data.astype(np.complex64),
                       csi.reshape(-1)[:n_sym],
                       burst.snr_db, burst.cfo, burst.esnr_db, self.clock.offset * 1e6)

    def _clock_residual(self, spectra: np.ndarray, burst: _Pending, per_offset: np.ndarray,
                        offset: float) -> tuple[float, float]:
        """The sample clock offset left once ``offset`` is undone, and its precision (1 / variance),
        from the pilots.

        A receiver clock fast by ``offset`` (1 + offset rx samples per tx sample) stretches the
        burst: the FFT window, placed at the nominal rate, leads each symbol by ``offset *
        symbol_len`` samples more per symbol since the channel fit, which turns carrier k by
        ``-offset * per_offset[t] * k``. After each symbol's common phase is removed, a weighted
        least-squares fit of that one slope, each pilot weighted by its SNR (phase variance
        1 / (2 SNR)).
        """
        pilot_chan = burst.chan[self.pilot_idx]
        weight = 2 * np.abs(pilot_chan) ** 2 / burst.noise_var
        return clock_residual(spectra, self.pilot_idx, np.conj(pilot_chan * self.pilot_vals), self.pilot_carriers,
                              per_offset, offset, weight)

    def _decode_header(self, hdr: np.ndarray, gain: np.ndarray) -> PhyHeader | None:
        """Decode the header; if its CRC fails, once more after a decision-directed phase fix.

        At the lowest SNRs the header's common phase (a few pilots and the preamble anchor) is
        off by tens of degrees, and the CFO residual turns it further from symbol to symbol.
        The Viterbi output, even with a wrong bit or two, re-encodes to mostly right symbols:
        they give each header symbol its own phase from all 48 carriers, not 4 pilots.
        """
        header = decode_header((hdr.real * gain).reshape(-1))
        if header is not None:
            return header
        guess = BPSK.map(conv_encode(conv_decode((hdr.real * gain).reshape(-1)))).reshape(hdr.shape)
        phase = np.angle(np.sum(hdr * np.conj(guess) * gain, axis=1))
        return decode_header(((hdr * np.exp(-1j * phase)[:, None]).real * gain).reshape(-1))

    def _refine_with_header(self, y_pre: np.ndarray, header: PhyHeader, spectra: np.ndarray,
                            chan: np.ndarray) -> tuple[np.ndarray, float]:
        """Refit the channel on the preamble and the decoded header together.

        Once its CRC holds, the header is known: re-encoded, its three symbols are 156 more
        training carriers beside the preamble's 78, which cuts the estimate's noise (and that
        of the noise variance) about threefold. Each header symbol is first turned back to the
        preamble's phase (its common phase against the first estimate), the reference the
        payload's pilot tracking is anchored to.
        """
        # On the active carriers (data, then pilots): the header's BPSK and the pilots, all +-1.
        known = np.empty((self.p.header_symbols, self.active.size))
        known[:, : self.data_idx.size] = (1.0 - 2.0 * encode_header(header)).reshape(self.p.header_symbols, -1)
        known[:, self.data_idx.size :] = self.pilot_vals.real
        # Multiplying by them turns each carrier into a plain channel observation with unchanged
        # noise, so the fit's design stays fixed (precomputed).
        obs = spectra[:, self.active] * known
        turn = np.conj(obs @ np.conj(chan[self.active]))  # each symbol's common phase, undone
        size = np.abs(turn)
        np.divide(turn, size, out=turn, where=size > 0)
        obs *= turn[:, None]
        taps, noise_var = self.header_fit(np.concatenate([y_pre, obs.reshape(-1)]))
        return self.fourier @ taps, noise_var

    def _spectra(self, cfo: float, start: int, first: int, count: int) -> np.ndarray:
        """Centred spectra of OFDM symbols ``first .. first + count`` of the burst at ``start``,
        CFO removed; each FFT window starts ``TIMING_BACKOFF`` samples inside the CP (the
        channel fit's delay grid accounts for that shift)."""
        sym, cp, n = self.p.symbol_len, self.p.cp_len, self.p.fft_len
        starts = (start + first * sym + cp - self.TIMING_BACKOFF) + _steps(count, sym)  # each symbol's window
        return np.fft.fft(centred_windows(self.buf, starts, n, cfo), axis=1)

    def _equalize(self, spectra: np.ndarray, chan: np.ndarray, first: int) -> np.ndarray:
        """Common phase per symbol from the pilots (``pilot_phase``), then zero-forcing on the
        data carriers."""
        return equalize(spectra, self.pilot_idx, np.conj(chan[self.pilot_idx] * self.pilot_vals), self.data_idx,
                        chan[self.data_idx], self.ANCHOR_WEIGHT)
