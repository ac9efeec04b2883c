"""Unequal protection and rate control: arithmetic, the tx following each PDU's MCS through the
real flowgraphs, and budgets that land within 10 % of the on-air CBR target."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from lgvsc.loopback import LoopbackOptions, settled_link
from lgvsc.rate_control import HIGH, LOW, MAX_PROTECTION_SHARE, SETTLED_PROTECTION_SHARE, plan_stream
from lgvsc_phy.link import Link, LinkAddresses
from lgvsc_phy.mcs import MCS_TABLE, THRESHOLD_DB, get_mcs
from lgvsc_phy.protection import Protection, robust_mcs_for
from lgvsc_phy.runner import FlowgraphRunner, LoopbackConfig
from semantic.bitstream import SegmentType, parse_stream
from semantic.encoder import EncoderConfig, FrameSource


@pytest.mark.parametrize("rate", list(MCS_TABLE))
def test_robust_mcs_has_the_margin(rate: str) -> None:
    robust = robust_mcs_for(get_mcs(rate))
    assert THRESHOLD_DB[robust.name] <= THRESHOLD_DB[rate] - 3.0 or robust.name == "bpsk-1/2"


def test_pdus_and_cost_follow_the_boundary() -> None:
    p = Protection(get_mcs("64qam-3/4"), get_mcs("qpsk-1/2"), robust_bytes=300)
    data = os.urandom(5000)
    pdus = p.pdus(data, 7)
    assert b"".join(pdu.payload for pdu, _ in pdus) == data
    assert all(pdu.offset + len(pdu.payload) <= 300 for pdu, m in pdus if m.name == "qpsk-1/2")
    assert all(pdu.offset >= 300 for pdu, m in pdus if m.name == "64qam-3/4")
    assert [pdu.seq for pdu, _ in pdus] == list(range(len(pdus))) and {pdu.total for pdu, _ in pdus} == {len(pdus)}
    cost = sum(m.burst_cost(len(pdu.pack()))[1] for pdu, m in pdus)
    assert p.cost(len(data)) == (len(pdus), sum(m.burst_cost(len(pdu.pack()))[0] for pdu, m in pdus), cost)
    fit = p.stream_bytes_for(cost)
    assert p.cost(fit)[2] <= cost < p.cost(fit + 1)[2]


def test_a_prefix_on_the_rate_mcs_shares_its_pdus() -> None:
    """At bpsk-1/2 the prefix's robust MCS is the rate MCS: it must not cost a burst of its own
    (it once did, and a 13056-sample budget carried 265 bytes instead of 312)."""
    rate = get_mcs("bpsk-1/2")
    protected, uniform = Protection.for_rate(rate, 48), Protection.uniform(rate)
    data = os.urandom(300)
    assert [m for _, m in protected.pdus(data, 1)] == [rate] * len(uniform.pdus(data, 1))
    assert protected.cost(300) == uniform.cost(300)
    assert protected.stream_bytes_for(13056) == uniform.stream_bytes_for(13056) == 312


def test_tx_follows_each_pdus_mcs(base_port: int) -> None:
    """One stream, its head on bpsk-1/2 and the rest on 16qam-3/4, through the three flowgraphs:
    byte exact, and the on-air samples the tx counted equal the protection arithmetic."""
    p = Protection(get_mcs("16qam-3/4"), get_mcs("bpsk-1/2"), robust_bytes=400)
    data = os.urandom(5000)
    with FlowgraphRunner(LoopbackConfig(mcs="qpsk-1/2", snr_db=25.0, base_port=base_port)) as runner:
        with Link(LinkAddresses.from_base_port(base_port)) as link:
            # Ends as soon as every PDU is in; the idle timeout only ends a stalled transfer, so a
            # generous one costs nothing here and keeps a CPU-starved rx from losing the tail.
            res = link.transfer(data, p, idle_timeout_s=10.0, deadline_s=60, check=runner.check)
    assert res.data == data and res.lost_pdus == []
    assert res.tx_samples == p.cost(len(data))[2]
    assert {m["mcs"] for m in res.meta} == {"bpsk-1/2", "16qam-3/4"}


@pytest.mark.parametrize("cbr,mcs", [(1e-3, "16qam-1/2"), (1e-4, "qpsk-1/2"), (3e-4, "bpsk-1/2")])
def test_rate_control_lands_within_ten_percent(bikes: Path, cbr: float, mcs: str) -> None:
    source = FrameSource.of_file(bikes)
    plan = plan_stream(source, cbr, get_mcs(mcs), EncoderConfig(psss="none"))
    assert LOW * plan.on_air_target <= plan.on_air_planned <= HIGH * plan.on_air_target, plan.attempts
    assert plan.protection.cost(len(plan.encoded.data))[2] == plan.on_air_planned
    # The protected prefix holds the header and timing (motion too where it is worth its bytes);
    # the keyframe track comes after it.
    head = parse_stream(plan.encoded.data[: plan.encoded.critical_bytes])
    assert head.header is not None and head.of_type(SegmentType.TIMING)
    assert not head.of_type(SegmentType.TRACK) and not head.of_type(SegmentType.KEYFRAME_IMAGE)


def test_tiniest_budget_still_sends_keyframes(bikes: Path) -> None:
    """CBR 1e-4 at bpsk-1/2 (0 dB): 13056 on-air samples, two two-codeword bursts. The keyframe
    track fits several small predicted keyframes there (intra images fitted one to three),
    interpolated over the whole video."""
    from semantic.decoder import decode_bitstream

    plan = plan_stream(FrameSource.of_file(bikes), 1e-4, get_mcs("bpsk-1/2"), EncoderConfig(psss="none"))
    assert len(plan.encoded.plan.frames) >= 2
    assert LOW * plan.on_air_target <= plan.on_air_planned <= HIGH * plan.on_air_target
    assert len(decode_bitstream(plan.encoded.data).frames) == 250


@pytest.mark.parametrize("cbr,rate,most,protected", [(1e-3, "qpsk-2/3", MAX_PROTECTION_SHARE, True),
                                                       (1e-4, "qpsk-2/3", MAX_PROTECTION_SHARE, False),
                                                       (3e-4, "16qam-1/2", MAX_PROTECTION_SHARE, True),
                                                       (3e-4, "16qam-1/2", SETTLED_PROTECTION_SHARE, False)])
def test_protection_only_where_it_costs_little(bikes: Path, cbr: float, rate: str, most: float,
                                               protected: bool) -> None:
    """qpsk-2/3: at CBR 1e-3 the bpsk-2/3 prefix costs under 10 % of the video's bytes and is
    kept; at 1e-4 its bursts would take 40 % (2.9 dB measured), so the prefix rides the rate MCS.
    16qam-1/2 at 3e-4: its qpsk-2/3 burst takes 3-9 % (by the prefix's size), kept where PDUs
    may be lost, dropped on a settled link (2 % at most)."""
    mcs = get_mcs(rate)
    plan = plan_stream(FrameSource.of_file(bikes), cbr, mcs, EncoderConfig(psss="none"), max_protection_share=most)
    assert (plan.protection.robust != mcs) == protected
    share = plan.protection.stream_bytes_for(plan.on_air_target) / \
        Protection.uniform(mcs).stream_bytes_for(plan.on_air_target)
    assert share >= 1 - most or not protected


def test_a_settled_link_is_static_probed_and_lossless(tmp_path: Path) -> None:
    opts = LoopbackOptions(tmp_path / "in.mp4", tmp_path / "out.mp4")
    assert settled_link(opts)
    for change in ({"channel": "rayleigh"}, {"design_snr_db": 10.0}, {"mcs": "qpsk-1/2"}, {"expected_loss": 0.1},
                   {"drop_rate": 1e-6}):
        assert not settled_link(replace(opts, **change)), change
