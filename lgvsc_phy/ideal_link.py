"""The PHY with a perfect receiver: the same PDUs, code, interleaver, mapping and decoder as the
flowgraphs, but the channel applied per data carrier in the frequency domain and the receiver
told the exact channel and noise variance (no sync, no estimation).

What this link loses against AWGN is the channel's own cost for our code; what the real
receiver loses beyond it is implementation loss. ``tools/bench_phy.py`` reports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lgvsc_phy import impairments as imp
from lgvsc_phy.channel_profiles import taps
from lgvsc_phy.mcs import Mcs, get_mcs
from lgvsc_phy.ofdm import OfdmModulator
from lgvsc_phy.phy_frame import interleaver


def carrier_gains(mcs: Mcs, channel: str) -> np.ndarray:
    """Frequency response of the profile's tapped delay line on the data carriers, in the
    order the mapper fills them (its unit energy is spread over all FFT bins, as on the air)."""
    p = mcs.ofdm
    spectrum = np.fft.fftshift(np.fft.fft(np.asarray(taps(channel)), p.fft_len))
    return spectrum[np.asarray(p.occupied_carriers) + p.fft_len // 2]


@dataclass
class IdealLink:
    mcs_name: str
    channel: str = "awgn"
    seed: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.mcs = get_mcs(self.mcs_name)
        self.rng = np.random.default_rng(self.seed)
        self.gains = carrier_gains(self.mcs, self.channel)

    def pdu_error_rate(self, snr_db: float, pdus: int) -> float:
        """Fraction of full-size PDUs (all codewords of a burst) decoded wrongly at this Es/N0."""
        code, const = self.mcs.code, self.mcs.constellation
        cws = self.mcs.codewords_per_pdu
        perm = interleaver(cws * code.n)
        noise_var = 10 ** (-snr_db / 10)
        failed = 0
        for _ in range(pdus):
            info = self.rng.integers(0, 2, (cws, code.k), dtype=np.uint8)
            sent = const.map(code.encode(info).reshape(-1)[perm])
            gain = np.resize(self.gains, sent.size)
            noise = self.rng.standard_normal(sent.size) + 1j * self.rng.standard_normal(sent.size)
            received = gain * sent + np.sqrt(noise_var / 2) * noise
            llr = const.llr((received / gain).astype(np.complex64), (noise_var / np.abs(gain) ** 2).astype(np.float32),
                            perm)
            failed += bool(np.any(code.decode(llr.reshape(cws, code.n)).bits != info))
        return failed / pdus


@dataclass
class IdealImpairedLink:
    """The ideal receiver behind a radio front end's impairments (``impairments`` holds channel
    parameters: ``pa_backoff_db``, ``pa_smoothness``, ``dc_offset_dbc``, ``iq_imbalance_db``,
    ``iq_phase_deg``, ``adc_bits``, ``drop_rate``; CFO and SFO are known to it, so they cost
    nothing and are ignored).

    Whole bursts go through the same models as channel.grc, in its order (PA, noise, DC, IQ
    imbalance, ADC, gaps). The receiver knows every linear impairment exactly and undoes it
    (DC, IQ imbalance), knows the burst's timing, and is told the PA's linear gain and the
    actual error variance of each burst (thermal noise plus what the PA and the ADC distort):
    what no receiver can undo (compression, quantization, samples lost) is all it pays. It
    knows each gap, as a radio's overflow tags tell our receiver: a burst a gap cuts into is
    lost where the gap reaches its preamble or header, and otherwise decoded with the symbols
    the gap touched erased.
    """

    mcs_name: str
    impairments: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        self.mcs = get_mcs(self.mcs_name)
        self.rng = np.random.default_rng(self.seed)
        cfg = self.impairments
        self.pa = imp.RappPa(cfg.get("pa_backoff_db", imp.PA_OFF), cfg.get("pa_smoothness", 2.0))
        self.dc = imp.dc_offset(cfg.get("dc_offset_dbc", imp.DC_OFF_DBC))
        self.iq = imp.iq_imbalance_coefficients(cfg.get("iq_imbalance_db", 0.0), cfg.get("iq_phase_deg", 0.0))
        self.adc = imp.Adc(int(cfg.get("adc_bits", imp.ADC_OFF)))
        self.drops = imp.SampleDrops(cfg.get("drop_rate", 0.0), seed=self.seed + 1)
        self.modulator = OfdmModulator(self.mcs.ofdm)

    def _received(self, burst: np.ndarray, snr_db: float) -> np.ndarray:
        x = self.pa(burst) + self.mcs.ofdm.noise_voltage(snr_db) * (
            self.rng.standard_normal(burst.size) + 1j * self.rng.standard_normal(burst.size)) / np.sqrt(2)
        a, b = self.iq
        y = self.adc((a * (x + self.dc) + b * np.conj(x + self.dc)).astype(np.complex64))
        return imp.undo_iq_imbalance(y.astype(np.complex128), a, b) - self.dc

    def _carriers(self, samples: np.ndarray, symbols: int) -> np.ndarray:
        """Data carriers of the burst's first ``symbols`` OFDM symbols (exact timing), in the
        order the modulator fills them."""
        p = self.mcs.ofdm
        body = samples[: symbols * p.symbol_len].reshape(symbols, p.symbol_len)[:, p.cp_len :]
        spectra = np.fft.fftshift(np.fft.fft(body, axis=1), axes=1)
        return spectra[:, np.asarray(p.occupied_carriers) + p.fft_len // 2]

    def pdu_error_rate(self, snr_db: float, pdus: int) -> float:
        """Fraction of full-size PDUs lost at this Es/N0."""
        m, p = self.mcs, self.mcs.ofdm
        mapper, codec = m.mapper(), m.codec()
        failed = 0
        for seq in range(pdus):
            payload = self.rng.bytes(m.max_link_pdu_bytes)
            sent = mapper.symbols(payload, seq)
            burst = self.modulator.burst(sent).astype(np.complex128)
            keep, _ = self.drops.advance(burst.size)
            samples = self._received(burst, snr_db)
            samples[~keep] = 0  # a gap, filled with zeros as our receiver fills it
            known = (p.sync_symbols + p.header_symbols) * p.symbol_len
            if not keep[:known].all():  # a gap in the preamble or header: the burst is not found
                failed += 1
                continue
            n_ofdm = -(-sent.size // p.data_carriers)
            grid = self._carriers(samples[p.sync_symbols * p.symbol_len :], n_ofdm).reshape(-1)[: sent.size]
            heard = keep[known - p.header_symbols * p.symbol_len :][: n_ofdm * p.symbol_len]
            clear = np.repeat(heard.reshape(n_ofdm, p.symbol_len).all(axis=1), p.data_carriers)[: sent.size]
            gain = np.vdot(sent[clear], grid[clear]) / np.vdot(sent[clear], sent[clear])  # the PA's (Bussgang) gain
            error_var = float(np.mean(np.abs(grid[clear] - gain * sent[clear]) ** 2)) / abs(gain) ** 2
            header = mapper.header_symbols(len(payload), seq).size
            eq = (grid / gain)[header:].astype(np.complex64)
            csi = np.where(clear, 1 / error_var, 0.0).astype(np.float32)[header:]  # gap symbols: erasures
            frame = codec.decode_symbols(eq, csi)
            failed += frame.payload != payload
        return failed / pdus
