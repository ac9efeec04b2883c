"""Link adaptation from delayed feedback: the transmitter's bookkeeping on its own, then a stale
probe corrected by the receiver's reports over the real tx, channel and rx flowgraphs."""

from __future__ import annotations

import os

import pytest

from lgvsc_phy.feedback import (
    FADING_MARGIN_DB,
    DelayedFeedback,
    FeedbackError,
    auto_ladder,
    faster,
    feedback_for,
    more_robust,
)
from lgvsc_phy.link import Link, LinkAddresses
from lgvsc_phy.mcs import auto_mcs, get_mcs
from lgvsc_phy.protection import Protection
from lgvsc_phy.runner import FlowgraphRunner, LoopbackConfig

BPSK, QPSK = get_mcs("bpsk-1/2"), get_mcs("qpsk-1/2")
PDU = 1000  # link PDU bytes (a 64-QAM PDU is this size; on qpsk-1/2 one burst of 5 codewords)


def _cost(mcs, pdus: int = 1) -> int:  # noqa: ANN001
    return pdus * mcs.burst_cost(PDU)[1]


def test_the_ladder_steps_one_rung_and_stays_at_its_ends() -> None:
    ladder = auto_ladder()
    assert ladder[0] == BPSK and ladder[-1] == get_mcs("64qam-5/6")
    assert [faster(m) for m in ladder[:-1]] == ladder[1:] and [more_robust(m) for m in ladder[1:]] == ladder[:-1]
    assert more_robust(BPSK) == BPSK and faster(ladder[-1]) == ladder[-1]


def test_without_delay_each_burst_waits_for_the_last_report() -> None:
    fb = DelayedFeedback(0, QPSK)
    fb.plan([_cost(QPSK)] * 4)
    assert fb.ready() and fb.send(QPSK, True, PDU) == QPSK
    assert not fb.ready()  # stop and wait: burst 0's report is due before burst 1 starts
    fb.report(0, 20.0)
    assert fb.ready() and fb.wanted() == auto_mcs(20.0 - FADING_MARGIN_DB)
    assert fb.send(QPSK, True, PDU) == auto_mcs(20.0 - FADING_MARGIN_DB)  # faster: always affordable
    fb.report(1, None)  # lost: one rung down from what it went on
    assert fb.wanted() == more_robust(auto_mcs(20.0 - FADING_MARGIN_DB))


def test_robust_choices_are_paid_from_what_faster_ones_saved() -> None:
    fb = DelayedFeedback(0, QPSK)
    fb.plan([_cost(QPSK)] * 4)
    fb.send(QPSK, True, PDU)
    fb.report(0, 0.0)  # a fade: the report wants bpsk, but nothing was saved yet
    assert fb.wanted() == BPSK and fb.slack() == 0 and fb.send(QPSK, True, PDU) == QPSK
    fb.report(1, 30.0)  # a good spell: 16-QAM or faster banks air time
    assert fb.send(QPSK, True, PDU).spectral_efficiency >= 2 * QPSK.spectral_efficiency and fb.slack() > 0
    fb.report(2, 0.0)  # the next fade: the savings buy a more robust burst than planned, as far as they go
    chosen = fb.send(QPSK, True, PDU)
    assert chosen.spectral_efficiency < QPSK.spectral_efficiency and fb.slack() >= 0
    assert fb.air <= _cost(QPSK, 4)  # never more air time than the plan


def test_a_delay_keeps_the_probe_until_a_report_is_old_enough() -> None:
    burst = _cost(QPSK)
    fb = DelayedFeedback(int(2.5 * burst), QPSK)
    fb.plan([burst] * 6)
    for _ in range(3):  # bursts 0-2 start before burst 0's report can be in
        assert fb.due() == 0 and fb.send(QPSK, True, PDU) == QPSK
    assert fb.due() == 0 and fb.ready()
    fb.send(QPSK, True, PDU)
    assert fb.due() == 1 and not fb.ready()  # the next burst starts 3 bursts after burst 0 ended
    fb.report(0, 9.0)
    assert fb.wanted() == auto_mcs(9.0 - FADING_MARGIN_DB)
    fb.report(0, 30.0)  # a late duplicate does not rewrite what was acted on
    assert fb.wanted() == auto_mcs(9.0 - FADING_MARGIN_DB)


def test_reports_out_of_order_hold_back_until_the_gap_is_heard() -> None:
    fb = DelayedFeedback(0, QPSK)
    fb.plan([_cost(QPSK)] * 5)
    for _ in range(3):
        fb.send(QPSK, False, PDU)
    fb.report(2, 12.0)
    fb.report(1, 12.0)
    assert fb.heard == 0 and list(fb.unheard()) == [0, 1, 2] and not fb.ready()
    fb.report(0, None)
    assert fb.heard == 3 and not fb.unheard() and fb.ready()
    fb.report(7, 12.0)  # never sent: ignored
    assert fb.heard == 3 and 7 not in fb.reports
    planned = [_cost(QPSK)] * 3
    assert fb.slack() == sum(planned) - fb.air == 0  # sent as planned: nothing saved


def test_planned_mcs_stays_where_feedback_does_not_apply() -> None:
    fb = DelayedFeedback(0, QPSK)
    fb.plan([_cost(BPSK), _cost(BPSK), _cost(QPSK)])
    assert fb.send(BPSK, False, PDU) == BPSK  # a protected prefix keeps its robust MCS
    fb.report(0, 25.0)
    assert fb.send(BPSK, False, PDU) == BPSK
    fb.report(1, 25.0)
    assert fb.send(QPSK, True, PDU) == auto_mcs(25.0 - FADING_MARGIN_DB)
    assert fb.summary()["pdu_mcs"] == ["bpsk-1/2", "bpsk-1/2", auto_mcs(25.0 - FADING_MARGIN_DB).name]


def test_feedback_delay_in_seconds_becomes_samples() -> None:
    assert feedback_for(None, 1e6, QPSK) is None
    assert feedback_for(0.002, 1e6, QPSK).delay_samples == 2000
    with pytest.raises(FeedbackError):
        feedback_for(-1.0, 1e6, QPSK)


def test_feedback_corrects_a_stale_probe_over_the_flowgraphs(base_port: int) -> None:
    # The probe said bpsk-1/2; the channel is at 22 dB. The first burst goes as planned, its report
    # comes back before the next one starts, and the rest of the stream rides a faster MCS.
    data = os.urandom(4000)
    fb = DelayedFeedback(0, BPSK)
    with FlowgraphRunner(LoopbackConfig(mcs="qpsk-1/2", snr_db=22.0, base_port=base_port)) as runner:
        with Link(LinkAddresses.from_base_port(base_port)) as link:
            res = link.transfer(data, Protection.uniform(BPSK), idle_timeout_s=2.0, deadline_s=60,
                                check=runner.check, feedback=fb)
    assert res.data == data and res.lost_pdus == []
    used = res.feedback["pdu_mcs"]
    assert len(used) == res.pdus_sent and used[0] == "bpsk-1/2"
    assert all(get_mcs(name).spectral_efficiency >= 3 for name in used[1:])  # 64-QAM at 22 dB, not BPSK
    assert res.feedback["mcs_changes"] == res.pdus_sent - 1
    assert res.feedback["feedback_on_air_samples"] == res.tx_samples  # our air clock is the tx's
    assert res.tx_samples < sum(fb.planned)  # the faster MCS saved air time
