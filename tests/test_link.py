"""PDUs through the tx, channel and rx flowgraphs as three real processes over ZeroMQ."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from lgvsc_phy.link import Link, LinkAddresses
from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.runner import FlowgraphRunner, LoopbackConfig


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purpose
        return f.read().split(")")[-1].split()[0] != "Z"


def transfer(snr_db: float, base_port: int, size: int = 6000, mcs: str = "qpsk-1/2", **kw):  # noqa: ANN003, ANN201
    m = get_mcs(mcs)
    data = os.urandom(size)
    with FlowgraphRunner(LoopbackConfig(mcs=mcs, snr_db=snr_db, base_port=base_port, **kw)) as runner:
        with Link(LinkAddresses.from_base_port(base_port)) as link:
            result = link.transfer(data, m.max_link_pdu_bytes, idle_timeout_s=2.0, deadline_s=60, check=runner.check)
            return data, result


@pytest.mark.parametrize("mcs", ["qpsk-1/2", "16qam-1/2"])
def test_byte_exact_at_high_snr(mcs: str, base_port: int) -> None:
    data, res = transfer(25.0, base_port, mcs=mcs)
    assert res.lost_pdus == [] and res.data == data
    m = get_mcs(mcs)
    assert res.tx_bursts == res.pdus_sent
    assert res.tx_samples == m.stream_cost(len(data))[2]  # measured on-air == frame arithmetic
    assert all(abs(meta["snr_db"] - 25.0) < 3 for meta in res.meta)


def test_cfo_and_multipath_at_moderate_snr(base_port: int) -> None:
    data, res = transfer(20.0, base_port, channel="multipath", cfo=0.2)
    assert res.pdus_received >= 0.8 * res.pdus_sent


def test_very_low_snr_reports_losses_without_hanging(base_port: int) -> None:
    data, res = transfer(-5.0, base_port, size=3000)
    # Ended by its own rule (every burst judged, or 2 s idle: seconds), not cut at transfer()'s
    # 60 s deadline; the cap only tells the two apart, so a loaded machine has room under it.
    assert res.wall_s < 50
    assert res.pdus_received < res.pdus_sent
    assert res.lost_pdus and len(res.data) == len(data)
    assert res.tx_bursts == res.pdus_sent  # the transmitter did send them all


@pytest.mark.parametrize("victim,sig", [("rx", signal.SIGKILL), ("channel", signal.SIGKILL),
                                        ("tx", signal.SIGKILL), ("channel", signal.SIGSTOP)])
def test_a_flowgraph_dying_or_stalling_mid_stream(victim: str, sig: int, base_port: int) -> None:
    """Reported promptly (2 s promised); what arrived before is kept (the transfer returns it, with the
    fault); no process outlives the runner, a stopped one included."""
    runner = FlowgraphRunner(LoopbackConfig(snr_db=20, base_port=base_port))
    runner.start()
    pids = runner.pids()
    target = next(fg for fg in runner.flowgraphs if fg.name == victim)
    injected: list[float] = []

    def check() -> None:  # the fault lands mid-stream, once the first PDUs are through
        if not injected and link.rx_count.decoded >= 20:
            os.kill(target.proc.pid, sig)
            injected.append(time.monotonic())
        runner.check()

    try:
        with Link(LinkAddresses.from_base_port(base_port)) as link:
            res = link.transfer(os.urandom(60000), 237, idle_timeout_s=30, deadline_s=30, check=check)
        # The promise is 2 s (one check per 100 ms poll; 0.3 s measured beside two CPU hogs). A
        # 2 s wall-clock assert fails on a loaded machine; a check that missed the fault would
        # wait out the 30 s idle timeout (and leave res.fault empty), so this cap still catches it.
        assert injected and time.monotonic() - injected[0] < 10.0
        assert res.fault and victim in res.fault
        assert ("signal 9" in res.fault) if sig == signal.SIGKILL else ("stopped" in res.fault)
        assert 10 <= res.pdus_received < res.pdus_sent
        assert res.data[:237 - 20] != bytes(237 - 20)  # the first PDU's bytes are there
    finally:
        runner.stop()
    time.sleep(0.2)
    assert not [p for p in pids if _alive(p)]


@pytest.mark.parametrize("impairment", [
    {"channel": "rayleigh", "doppler": 2e-5},
    {"channel": "rician", "doppler": 1e-4},
    {"timing_offset": 0.5},
    {"phase_noise": 0.02},
    {"cfo": 0.4},
])
def test_each_impairment_is_survived(impairment: dict, base_port: int) -> None:
    data, res = transfer(22.0, base_port, size=4000, **impairment)
    assert res.pdus_received >= 0.8 * res.pdus_sent, res.lost_pdus


def test_twenty_ppm_cfo_needs_the_cfo_range(base_port: int) -> None:
    """3.14 subcarrier spacings (20 ppm at 2.45 GHz, 1 MS/s) through channel.grc: rx.grc with
    its CFO range at 5 receives every PDU and reports the offset."""
    data, res = transfer(15.0, base_port, size=4000, cfo=3.14, cfo_range=5.0)
    assert res.lost_pdus == [] and res.data == data
    assert all(abs(meta["cfo"] - 3.14) < 0.05 for meta in res.meta)


def test_impairments_really_change_the_signal() -> None:
    """The channel's parameters reach its blocks: the fading and fractional-delay paths differ."""
    from lgvsc_phy.channel_profiles import fractional_delay, taps

    assert len(taps("awgn", 0.5)) > 1 and abs(sum(fractional_delay(0.0)) - 1) < 1e-9
    assert np.argmax(np.abs(fractional_delay(0.0))) == 8


def test_pacer_keeps_a_window_and_writes_off_undetected_bursts() -> None:
    from lgvsc_phy.link import _Pacer

    pacer = _Pacer(200)
    assert pacer.release(0, 0.0) == range(0, _Pacer.IN_FLIGHT)
    assert pacer.release(0, 0.1) == range(_Pacer.IN_FLIGHT, _Pacer.IN_FLIGHT)  # window full
    assert pacer.release(10, 0.2) == range(_Pacer.IN_FLIGHT, _Pacer.IN_FLIGHT + 10)  # 10 judged: 10 more go
    # No verdict for longer than STALL_S (bursts the rx never saw): the outstanding ones are written off.
    released = pacer.release(10, 0.2 + _Pacer.STALL_S + 0.01)
    assert len(released) == _Pacer.IN_FLIGHT
    while pacer.sent < 200:
        pacer.release(pacer.sent, 10.0)
    assert pacer.sent == 200 and pacer.release(200, 11.0) == range(200, 200)


def test_pacer_waits_longer_for_the_first_verdict_and_counts_a_late_one_once() -> None:
    """Fresh flowgraphs took over STALL_S for their first burst: the first PDU was written off,
    then its late verdict counted as a second PDU settled, so with feedback every next PDU was
    reported lost the moment the one before it arrived (a 22 dB stream went all on BPSK in 3
    runs of 8 of test_feedback's flowgraph test)."""
    from lgvsc_phy.link import _Pacer

    t0 = time.monotonic()
    pacer = _Pacer(200)
    assert pacer.release(0, t0, cap=1) == range(0, 1)  # a transmitter waiting for feedback on PDU 0
    pacer.release(0, t0 + 2 * _Pacer.STALL_S, cap=1)
    assert pacer.settled == 0  # still waiting for the first verdict
    pacer.release(0, t0 + _Pacer.FIRST_STALL_S + 0.01, cap=1)
    assert pacer.settled == 1  # written off at last
    assert pacer.release(1, t0 + _Pacer.FIRST_STALL_S + 0.02, cap=2) == range(1, 2)
    assert pacer.settled == 1  # PDU 0's late verdict: PDU 1 is not settled by it
    pacer.release(2, t0 + _Pacer.FIRST_STALL_S + 0.03, cap=3)
    assert pacer.settled == 2
    dead = _Pacer(200)  # nothing ever judged: the long wait once, then the usual one
    dead.release(0, t0)
    dead.release(0, t0 + _Pacer.FIRST_STALL_S + 0.01)
    assert dead.settled == _Pacer.IN_FLIGHT
    dead.release(0, t0 + _Pacer.FIRST_STALL_S + _Pacer.STALL_S + 0.02)
    assert dead.settled == 2 * _Pacer.IN_FLIGHT
