"""Modulation and coding schemes and the channel-symbol cost of sending bytes.

Everything here is arithmetic on the frame layout: the cost of a PDU is known before anything
runs, and the tests check it against the samples the tx flowgraph really emits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lgvsc_phy.constellation import CONSTELLATIONS, Constellation
from lgvsc_phy.framing import OVERHEAD_BYTES
from lgvsc_phy.ldpc import LdpcCode, get_code
from lgvsc_phy.ofdm_params import OfdmParams
from lgvsc_phy.phy_frame import BurstMapper, PhyFrameCodec


@dataclass(frozen=True)
class Mcs:
    name: str
    modulation: str
    code_name: str
    codewords_per_pdu: int = 2
    min_snr_db: float = 0.0  # lowest Es/N0 at which `auto` picks it (threshold + margin)
    index: int = 0  # carried in the burst header
    ofdm: OfdmParams = field(default_factory=OfdmParams.default)

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per payload QAM symbol."""
        return self.constellation.bits_per_symbol * self.code.rate

    @property
    def constellation(self) -> Constellation:
        return CONSTELLATIONS[self.modulation]

    @property
    def code(self) -> LdpcCode:
        return get_code(self.code_name)

    def codec(self) -> PhyFrameCodec:
        return PhyFrameCodec(self.code, self.constellation)

    def mapper(self) -> BurstMapper:
        return BurstMapper(self.codec(), self.index)

    @property
    def max_link_pdu_bytes(self) -> int:
        """Largest link PDU (header + payload + CRC) one burst carries."""
        return self.codec().max_payload(self.codewords_per_pdu)

    @property
    def max_stream_bytes_per_pdu(self) -> int:
        return self.max_link_pdu_bytes - OVERHEAD_BYTES

    def burst_cost(self, link_pdu_bytes: int) -> tuple[int, int]:
        """(payload QAM symbols, on-air samples) of one burst carrying a link PDU of that size."""
        payload = self.codec().payload_symbols(link_pdu_bytes)
        return payload, self.ofdm.burst_samples(payload)

    def burst_breakdown(self, link_pdu_bytes: int) -> dict[str, int]:
        """Where the on-air samples of one burst go; the values add up to ``burst_cost()[1]``."""
        o = self.ofdm
        payload = self.codec().payload_symbols(link_pdu_bytes)
        data_ofdm = -(-payload // o.data_carriers)
        return {"payload": payload, "fill": data_ofdm * o.data_carriers - payload,
                "pilots": data_ofdm * len(o.pilot_carriers), "guard": data_ofdm * (o.fft_len - o.used_carriers),
                "cyclic_prefix": data_ofdm * o.cp_len, "preamble": o.sync_symbols * o.symbol_len,
                "header": o.header_symbols * o.symbol_len, "padding": o.post_padding}

    def stream_cost(self, stream_bytes: int) -> tuple[int, int, int]:
        """(PDUs, payload symbols, on-air samples) to send a stream of ``stream_bytes``."""
        per = self.max_stream_bytes_per_pdu
        full, rest = divmod(stream_bytes, per)
        sizes = [per] * full + ([rest] if rest or not full else [])
        costs = [self.burst_cost(s + OVERHEAD_BYTES) for s in sizes]
        return len(sizes), sum(c[0] for c in costs), sum(c[1] for c in costs)

    def stream_bytes_for(self, on_air_budget: float) -> int:
        """Largest stream (bytes) whose on-air cost fits ``on_air_budget`` samples."""
        # at most one byte per sample
        return largest_fitting(lambda size: self.stream_cost(size)[2], on_air_budget, max(1, int(on_air_budget)))


def largest_fitting(cost: Callable[[int], float], budget: float, upper: int) -> int:
    """The largest size in [0, ``upper``] whose ``cost`` fits ``budget`` (costs grow with size)."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


# Es/N0 (dB) where coded PER reaches 1e-2 over AWGN through the flowgraphs, measured by
# tools/bench_phy.py (600 PDUs a point, 2026-11-26; refresh from its JSON). `auto` picks the
# fastest MCS whose threshold plus AUTO_MARGIN_DB the channel meets.
THRESHOLD_DB = {
    "bpsk-1/2": -1.0, "bpsk-2/3": 0.6, "bpsk-3/4": 1.6, "bpsk-5/6": 2.9,  # two codewords a PDU
    "qpsk-1/2": 1.7, "qpsk-2/3": 3.6, "qpsk-3/4": 4.7, "qpsk-5/6": 5.8,
    "16qam-1/2": 7.0, "16qam-2/3": 9.6, "16qam-3/4": 10.8, "16qam-5/6": 12.2,
    "64qam-1/2": 11.6, "64qam-2/3": 14.8, "64qam-3/4": 16.2, "64qam-5/6": 17.9,
}
AUTO_MARGIN_DB = 1.5
# Codewords a full burst carries: ~41 OFDM symbols of payload, except BPSK's 81. A burst's fixed
# cost (preamble, header, padding: 560 samples) and the link PDU's 26 bytes of headers and CRCs
# took 24 % of a one-codeword BPSK burst, and BPSK is what the video gets at 0 dB.
_CODEWORDS = {"bpsk": 2, "qpsk": 2, "16qam": 4, "64qam": 6}


def _table() -> dict[str, Mcs]:
    table = {}
    for mod in ("bpsk", "qpsk", "16qam", "64qam"):
        for rate in ("1/2", "2/3", "3/4", "5/6"):
            name = f"{mod}-{rate}"
            table[name] = Mcs(name, mod, f"802.11n-1944-{rate}", _CODEWORDS[mod], THRESHOLD_DB[name] + AUTO_MARGIN_DB,
                              index=len(table))
    return table


MCS_TABLE: dict[str, Mcs] = _table()
MCS_BY_INDEX: dict[int, Mcs] = {m.index: m for m in MCS_TABLE.values()}


class McsError(ValueError):
    pass


def get_mcs(name: str) -> Mcs:
    try:
        return MCS_TABLE[name]
    except (KeyError, TypeError):
        raise McsError(f"unknown MCS {name!r}; known: {', '.join(MCS_TABLE)}, auto") from None


def auto_mcs(snr_db: float) -> Mcs:
    """Fastest MCS whose ``min_snr_db`` the channel meets; the most robust one otherwise."""
    fits = [m for m in MCS_TABLE.values() if m.min_snr_db <= snr_db]
    if not fits:
        return min(MCS_TABLE.values(), key=lambda m: m.min_snr_db)
    return max(fits, key=lambda m: (m.spectral_efficiency, -m.min_snr_db))
