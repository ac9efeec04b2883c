"""Modulation and coding schemes and the channel-symbol cost of sending bytes.

Everything here is arithmetic on the frame layout: the cost of a PDU is known before anything
runs, and the tests check it against the samples the tx flowgraph really emits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lgvsc_phy.constellation import CONSTELLATIONS, Constellation
from lgvsc_phy.framing import OVERHEAD_BYTES
from lgvsc_phy.ldpc import LdpcCode, get_code
from lgvsc_phy.ofdm_params import OfdmParams
from lgvsc_phy.phy_frame import PhyFrameCodec


@dataclass(frozen=True)
class Mcs:
    name: str
    modulation: str
    code_name: str
    codewords_per_pdu: int = 2
    min_snr_db: float = 0.0  # lowest Es/N0 at which `auto` picks it (code and header threshold + margin)
    ofdm: OfdmParams = field(default_factory=OfdmParams.default)

    @property
    def constellation(self) -> Constellation:
        return CONSTELLATIONS[self.modulation]

    @property
    def code(self) -> LdpcCode:
        return get_code(self.code_name)

    def codec(self) -> PhyFrameCodec:
        return PhyFrameCodec(self.code, self.constellation)

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

    def stream_cost(self, stream_bytes: int) -> tuple[int, int, int]:
        """(PDUs, payload symbols, on-air samples) to send a stream of ``stream_bytes``."""
        per = self.max_stream_bytes_per_pdu
        full, rest = divmod(stream_bytes, per)
        sizes = [per] * full + ([rest] if rest or not full else [])
        costs = [self.burst_cost(s + OVERHEAD_BYTES) for s in sizes]
        return len(sizes), sum(c[0] for c in costs), sum(c[1] for c in costs)

    def stream_bytes_for(self, on_air_budget: float) -> int:
        """Largest stream (bytes) whose on-air cost fits ``on_air_budget`` samples."""
        lo, hi = 0, max(1, int(on_air_budget))  # at most one byte per sample
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.stream_cost(mid)[2] <= on_air_budget:
                lo = mid
            else:
                hi = mid - 1
        return lo


# The uncoded BPSK header (GNU Radio's packet_header_ofdm format) fails 1 % of bursts near
# 7.7 dB Es/N0, so no MCS is picked below ~8 dB by `auto`; the code thresholds are from loopback
# runs through the flowgraphs (QPSK-1/2 decodes from ~2 dB once the header is through).
_CODE = "802.11n-1944-1/2"
MCS_TABLE: dict[str, Mcs] = {
    m.name: m
    for m in (
        Mcs("bpsk-1/2", "bpsk", _CODE, codewords_per_pdu=1, min_snr_db=8.0),
        Mcs("qpsk-1/2", "qpsk", _CODE, codewords_per_pdu=2, min_snr_db=8.0),
        Mcs("16qam-1/2", "16qam", _CODE, codewords_per_pdu=4, min_snr_db=15.0),
        Mcs("64qam-1/2", "64qam", _CODE, codewords_per_pdu=6, min_snr_db=21.0),
    )
}


def get_mcs(name: str) -> Mcs:
    try:
        return MCS_TABLE[name]
    except KeyError:
        raise KeyError(f"unknown MCS {name!r}; known: {', '.join(MCS_TABLE)}, auto") from None


def auto_mcs(snr_db: float) -> Mcs:
    """Fastest MCS whose ``min_snr_db`` the channel meets; the most robust one otherwise."""
    fits = [m for m in MCS_TABLE.values() if m.min_snr_db <= snr_db]
    if not fits:
        return min(MCS_TABLE.values(), key=lambda m: m.min_snr_db)
    return max(fits, key=lambda m: m.constellation.bits_per_symbol * m.code.rate)
