"""The PHY with a perfect receiver: the same PDUs, code, interleaver, mapping and decoder as the
flowgraphs, but the channel applied per data carrier in the frequency domain and the receiver
told the exact channel and noise variance (no sync, no estimation).

What this link loses against AWGN is the channel's own cost for our code; what the real
receiver loses beyond it is implementation loss. ``tools/bench_phy.py`` reports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lgvsc_phy.channel_profiles import taps
from lgvsc_phy.mcs import Mcs, get_mcs
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
            llr = const.llr((received / gain).astype(np.complex64), (noise_var / np.abs(gain) ** 2).astype(np.float32))
            ordered = np.empty_like(llr)
            ordered[perm] = llr
            failed += bool(np.any(code.decode(ordered.reshape(cws, code.n)).bits != info))
        return failed / pdus
