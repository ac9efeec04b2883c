"""Link adaptation from delayed receiver feedback: each PDU's MCS from the newest report the
transmitter can have when its burst starts.

A probe taken once at the start goes stale on a fading channel. A link with a return channel does
better: the receiver reports each burst's effective SNR (or nothing: the PDU was lost, no ACK came)
and the transmitter picks the next burst's MCS from it. The report is old by the time it arrives:
the burst's own length plus the feedback delay (``--feedback-delay-s``: the return link's latency
and the receiver's processing). Time here is air time, counted in samples the transmitter puts on
air, so the fading channel (which advances per sample) and the feedback clock agree however fast
the simulation runs; the link holds a PDU back until every report due before its burst starts
has come in, as a real transmitter would already have it.

The stream's bytes were fixed when it was planned, so a faster MCS buys nothing but spare air
time, and a more robust one costs air time the plan did not have: the rule keeps the stream within
the on-air samples its plan would have used (equal on-air symbols, as every comparison here is
made). Each adapted PDU goes on the fastest MCS the reported effective SNR allows with a fading
margin (``auto_mcs`` of the report minus ``margin_db``: the report is old, the channel has moved),
or after a lost PDU one rung more robust than the MCS it went on; a choice more robust than the
plan is paid from what faster choices saved, and where the savings do not cover it the choice
moves back toward the plan. Only the PDUs planned on the stream's rate MCS are adapted; a
protected prefix or base layer keeps its robust MCS.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

from lgvsc_phy.mcs import MCS_TABLE, Mcs, auto_mcs


class FeedbackError(ValueError):
    pass


# Subtracted from a report before choosing an MCS from it: a Rayleigh channel's SNR moves by
# several dB within a coherence time, and the report is at least one burst plus the delay old.
FADING_MARGIN_DB = 3.0


def auto_ladder() -> list[Mcs]:
    """The MCSs ``auto`` ever picks, most robust first (each one's own threshold picks it)."""
    return sorted({auto_mcs(m.min_snr_db) for m in MCS_TABLE.values()}, key=lambda m: m.min_snr_db)


def _rung(mcs: Mcs, step: int) -> Mcs:
    ladder = auto_ladder()
    i = next((k for k, m in enumerate(ladder) if m.min_snr_db >= mcs.min_snr_db), len(ladder) - 1)
    if ladder[i] != mcs and step > 0:
        i -= 1  # off the ladder: its neighbour below counts as its own rung going up
    return ladder[min(max(i + step, 0), len(ladder) - 1)]


def more_robust(mcs: Mcs) -> Mcs:
    """The next rung down the ``auto`` ladder (the bottom rung stays)."""
    return _rung(mcs, -1)


def faster(mcs: Mcs) -> Mcs:
    """The next rung up the ``auto`` ladder (the top rung stays)."""
    return _rung(mcs, 1)


@dataclass(frozen=True)
class Burst:
    start: int  # air sample where the burst starts, from the stream's first burst
    end: int
    mcs: Mcs
    adapted: bool  # its MCS came from feedback (a rate-tier PDU), not from the plan


@dataclass
class DelayedFeedback:
    """The transmitter's view: what it sent when, and the reports that came back."""

    delay_samples: int  # from a burst's end to its report reaching the transmitter
    first: Mcs  # until a report is old enough to be in: the probe's choice
    margin_db: float = FADING_MARGIN_DB  # subtracted from a report before choosing from it
    planned: list[int] = field(default_factory=list)  # on-air samples each PDU costs as planned (``plan``)
    bursts: list[Burst] = field(default_factory=list)
    reports: dict[int, float | None] = field(default_factory=dict)  # PDU -> esnr dB, None: lost
    # Kept as they change so each poll of a long stream costs O(1), not O(PDUs sent):
    heard: int = field(default=0, init=False)  # reports 0 .. heard-1 are all in
    _planned_before: list[int] = field(default_factory=lambda: [0], init=False, repr=False)  # prefix sums

    def __post_init__(self) -> None:
        if self.delay_samples < 0:
            raise FeedbackError(f"feedback delay {self.delay_samples} samples: must be >= 0")

    @property
    def air(self) -> int:
        """Where the next burst starts."""
        return self.bursts[-1].end if self.bursts else 0

    def due(self) -> int:
        """How many PDUs' reports reach the transmitter before the next burst starts (bursts are
        sent in order, their ends ascending, so those are always the first ones)."""
        return bisect_right(self.bursts, self.air - self.delay_samples, key=lambda b: b.end)

    def ready(self) -> bool:
        """Whether every report due before the next burst is in (else the link waits for them)."""
        return self.heard >= self.due()

    def unheard(self) -> range:
        """The PDUs sent from the first one whose report has not come (later ones may have theirs)."""
        return range(self.heard, len(self.bursts))

    def plan(self, planned_samples: list[int]) -> None:
        """The on-air samples each PDU of the stream costs on its planned MCS, in sending order:
        what the stream may spend in all."""
        self.planned = list(planned_samples)
        self._planned_before = list(accumulate(self.planned, initial=0))

    def wanted(self) -> Mcs:
        """What the newest report calls for, before the air-time budget has its say."""
        n = self.due()
        if n == 0:
            return self.first
        last = self.reports.get(n - 1)
        return more_robust(self.bursts[n - 1].mcs) if last is None else auto_mcs(last - self.margin_db)

    def slack(self) -> int:
        """Samples the stream may still spend beyond its plan for the PDUs not yet sent: what the
        bursts sent so far saved against their plan (0 before ``plan``)."""
        if not self.planned:
            return 0
        return self._planned_before[min(len(self.bursts), len(self.planned))] - self.air

    def choice(self, planned: Mcs, link_pdu_bytes: int) -> Mcs:
        """The MCS for the next (adapted) PDU: what the report wants, moved toward ``planned``
        (one rung at a time) until its extra air time fits the slack."""
        mcs = self.wanted()
        cost = planned.burst_cost(link_pdu_bytes)[1]
        while mcs.burst_cost(link_pdu_bytes)[1] - cost > self.slack():
            if mcs.spectral_efficiency >= planned.spectral_efficiency or faster(mcs) == mcs:
                return planned
            mcs = faster(mcs)
        return mcs

    def send(self, planned: Mcs, adapt: bool, link_pdu_bytes: int) -> Mcs:
        """The MCS the next PDU goes on (``planned`` unless ``adapt``), its burst booked on air."""
        mcs = self.choice(planned, link_pdu_bytes) if adapt else planned
        _, samples = mcs.burst_cost(link_pdu_bytes)
        self.bursts.append(Burst(self.air, self.air + samples, mcs, adapt))
        return mcs

    def report(self, pdu: int, esnr_db: float | None) -> None:
        """What came back for PDU ``pdu``: its burst's effective SNR, or None (lost). The first
        word stands: a late copy does not rewrite what the transmitter already acted on."""
        if 0 <= pdu < len(self.bursts):
            self.reports.setdefault(pdu, esnr_db)
            while self.heard in self.reports:
                self.heard += 1

    def summary(self) -> dict:
        """For reports: the MCS each PDU went on, and how many changed from the first."""
        names = [b.mcs.name for b in self.bursts]
        adapted = [b for b in self.bursts if b.adapted]
        return {"feedback_delay_samples": self.delay_samples, "pdu_mcs": names,
                "mcs_changes": sum(b.mcs != self.first for b in adapted),
                "feedback_on_air_samples": self.air}


def feedback_for(delay_s: float | None, sample_rate: float, first: Mcs) -> DelayedFeedback | None:
    """Delayed feedback for a link at ``sample_rate`` (None without a delay: one probe, no feedback)."""
    if delay_s is None:
        return None
    if delay_s < 0 or sample_rate <= 0:
        raise FeedbackError(f"feedback delay {delay_s:g} s at {sample_rate:g} S/s: need a delay >= 0 and a rate > 0")
    return DelayedFeedback(round(delay_s * sample_rate), first)
