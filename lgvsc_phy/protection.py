"""Unequal error protection of a stream: its first bytes on a robust MCS, the rest on the rate MCS.

The semantic encoder puts what every frame of the output depends on (stream header, keyframe
timing and shot cuts, motion, descriptions, PSSS) at the front of the bitstream and the keyframe
images after it. Sending that prefix on an MCS a few dB more robust than the one the link
adapted to costs a few hundred symbols and keeps a marginal link from losing the whole video:
a lost keyframe only widens an interval, a lost header or timing segment costs much more.

Each burst's header names its MCS, so the receiver needs no plan; the transmitter takes the
MCS of each PDU from its metadata (``BurstMapper``). Costs are arithmetic, as in ``mcs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lgvsc_phy.framing import LinkPdu
from lgvsc_phy.mcs import MCS_TABLE, THRESHOLD_DB, Mcs, largest_fitting

ROBUST_MARGIN_DB = 3.0  # the prefix's MCS works at least this much below the rate MCS


def robust_mcs_for(rate: Mcs, margin_db: float = ROBUST_MARGIN_DB) -> Mcs:
    """The most efficient MCS whose threshold is ``margin_db`` below ``rate``'s (bpsk-1/2 at
    the bottom of the table)."""
    limit = THRESHOLD_DB[rate.name] - margin_db
    fits = [m for m in MCS_TABLE.values() if THRESHOLD_DB[m.name] <= limit]
    if not fits:
        return min(MCS_TABLE.values(), key=lambda m: THRESHOLD_DB[m.name])
    return max(fits, key=lambda m: (m.spectral_efficiency, -THRESHOLD_DB[m.name]))


@dataclass(frozen=True)
class Tier:
    """Stream bytes up to ``end`` (from where the tier before ends) go on ``mcs``."""

    end: int
    mcs: Mcs


@dataclass(frozen=True)
class Protection:
    """Bytes ``[0, robust_bytes)`` of a stream go on ``robust``, then each of ``tiers`` (a
    layered stream's base layer) on its own MCS, the rest on ``rate``."""

    rate: Mcs
    robust: Mcs
    robust_bytes: int = 0
    tiers: tuple[Tier, ...] = ()

    @classmethod
    def uniform(cls, mcs: Mcs) -> Protection:
        return cls(mcs, mcs, 0)

    @classmethod
    def for_rate(cls, rate: Mcs, robust_bytes: int) -> Protection:
        return cls(rate, robust_mcs_for(rate), robust_bytes)

    def _pieces(self, stream_bytes: int) -> list[tuple[int, int, Mcs]]:
        """(first byte, end, MCS) of each tier the stream reaches, the rate tier last."""
        pieces, lo = [], 0
        for end, mcs in ((self.robust_bytes, self.robust), *((t.end, t.mcs) for t in self.tiers)):
            hi = min(max(end, lo), stream_bytes)
            if hi > lo:
                pieces.append((lo, hi, mcs))
            lo = max(lo, hi)
        if stream_bytes > lo or not pieces:
            pieces.append((lo, stream_bytes, self.rate))
        merged = pieces[:1]
        for piece in pieces[1:]:  # neighbouring tiers on one MCS share their PDUs (at bpsk-1/2 the prefix's
            if piece[2] == merged[-1][2]:  # robust MCS is the rate MCS: no burst of its own)
                merged[-1] = (merged[-1][0], piece[1], piece[2])
            else:
                merged.append(piece)
        return merged

    @property
    def protected_bytes(self) -> int:
        """Where the rate tier starts."""
        return max((self.robust_bytes, *(t.end for t in self.tiers)))

    def pdus(self, data: bytes, stream_id: int) -> list[tuple[LinkPdu, Mcs]]:
        """PDUs sized for the MCS that carries them; a PDU never straddles a tier boundary."""
        pieces: list[tuple[int, int, Mcs]] = []
        for lo, hi, mcs in self._pieces(len(data)):
            step = mcs.max_stream_bytes_per_pdu
            pieces += [(off, min(off + step, hi), mcs) for off in range(lo, hi, step)]
        if not pieces:  # an empty stream still sends one (empty) PDU
            pieces = [(0, 0, self.rate)]
        total = len(pieces)
        return [(LinkPdu(stream_id, i, total, lo, data[lo:hi]), mcs) for i, (lo, hi, mcs) in enumerate(pieces)]

    def cost(self, stream_bytes: int) -> tuple[int, int, int]:
        """(PDUs, payload symbols, on-air samples) to send a stream of ``stream_bytes``."""
        costs = [mcs.stream_cost(hi - lo) for lo, hi, mcs in self._pieces(stream_bytes)]
        return tuple(sum(c[i] for c in costs) for i in range(3))  # type: ignore[return-value]

    def breakdown(self, data: bytes) -> dict[str, int]:
        """On-air samples of the whole stream by what they carry (payload, pilots, CP, ...)."""
        total: dict[str, int] = {}
        for pdu, mcs in self.pdus(data, 0):
            for key, value in mcs.burst_breakdown(len(pdu.pack())).items():
                total[key] = total.get(key, 0) + value
        return total

    def stream_bytes_for(self, on_air_budget: float) -> int:
        """Largest stream (bytes, the protected tiers included) that fits ``on_air_budget`` samples."""
        head = self.protected_bytes
        if head and self.cost(head)[2] > on_air_budget:
            return 0
        # Tiers on one MCS share PDUs, so the cost is no sum of parts; the rate MCS carries the most.
        upper = max(head, self.rate.stream_bytes_for(on_air_budget))
        return largest_fitting(lambda size: self.cost(size)[2], on_air_budget, upper)

    def describe(self) -> str:
        parts = [(lo, hi, mcs) for lo, hi, mcs in self._pieces(self.protected_bytes)]
        if all(mcs == self.rate for _, _, mcs in parts):
            return self.rate.name
        return ", ".join(f"{mcs.name} for bytes {lo}-{hi}" for lo, hi, mcs in parts) + f", then {self.rate.name}"
