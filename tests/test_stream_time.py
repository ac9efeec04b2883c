"""Gaps from rx_time tags: the tags' values, the meter, gr-zeromq's tag header through a real
ZeroMQ source, and the channel's SampleDrops tagging its gaps as a USRP source does."""

from __future__ import annotations

import time

import numpy as np
import pmt
import pytest

from lgvsc_phy.impairments import SampleDrops
from lgvsc_phy.stream_time import RX_RATE, RX_TIME, GapMeter, split_zmq_message, time_of, time_pmt, zmq_header


@pytest.mark.parametrize("seconds", [0.0, 0.25, 3.000001, 1234567.75])
def test_rx_time_is_uhds_tuple_and_reads_back(seconds: float) -> None:
    value = time_pmt(seconds)
    assert pmt.is_uint64(pmt.tuple_ref(value, 0)) and pmt.is_real(pmt.tuple_ref(value, 1))
    assert 0 <= pmt.to_double(pmt.tuple_ref(value, 1)) < 1
    whole, fraction = time_of(value)
    assert whole + fraction == pytest.approx(seconds, abs=1e-9)


def test_time_of_refuses_what_is_not_rx_time() -> None:
    assert time_of(pmt.from_double(1.0)) is None
    assert time_of(pmt.make_tuple(pmt.from_double(1.0), pmt.from_double(0.5))) is None


def test_gap_meter_counts_the_samples_between_tags_that_did_not_arrive() -> None:
    meter = GapMeter()
    assert meter.time_tag(0, (5, 0.0)) == 0  # no rate yet: a reference only
    meter.set_rate(1e6)
    assert meter.time_tag(0, (5, 0.0)) == 0
    assert meter.time_tag(10_000, (5, 0.012)) == 2000  # 12 ms at 1 MS/s, 10000 samples came
    assert meter.time_tag(20_000, (5, 0.022)) == 0  # no overflow: the tag only repeats the time
    assert meter.time_tag(30_000, (1, 0.0)) == 0  # the radio's time was set anew: a new reference
    assert meter.time_tag(31_000, (1, 0.0015)) == 500


def test_gap_meter_is_exact_at_a_gps_clocks_seconds() -> None:
    """A radio on GPS or PC time reads ~1.7e9 s: one double resolves only ~0.24 us there, a
    sample at 4 MS/s, so whole seconds and fraction stay apart. 2000 tag pairs at 20 MS/s with
    nothing lost report no gap, and one real gap exactly."""
    rng = np.random.default_rng(0)
    meter = GapMeter(rate=20e6)
    for _ in range(2000):
        offset = int(rng.integers(0, 10**9))
        start = (1_700_000_000 + int(rng.integers(0, 10**6)), float(rng.integers(0, 20_000_000)) / 20e6)
        step = int(rng.integers(1, 10**6))
        meter.time_tag(offset, start)
        later = divmod(start[1] * 20e6 + step, 20e6)
        assert meter.time_tag(offset + step, (start[0] + int(later[0]), later[1] / 20e6)) == 0
    meter.time_tag(0, (1_700_000_123, 0.5))
    assert meter.time_tag(1000, (1_700_000_123, 0.5 + 3001 / 20e6)) == 2001


def test_sample_drops_report_where_each_gap_ends() -> None:
    x = np.arange(200_000).astype(np.complex64)
    drops = SampleDrops(1e-3, 10, seed=2)
    kept, resumes, offset_in, offset_out = [], [], 0, 0
    for chunk in np.array_split(x, 37):  # gaps that straddle chunks too
        out, here = drops.split(chunk)
        resumes += [(offset_out + i, offset_in + j) for i, j in here]
        kept.append(out)
        offset_in, offset_out = offset_in + chunk.size, offset_out + out.size
    y = np.concatenate(kept)
    assert y.size == x.size - drops.lost and drops.gaps > 100
    jumps = np.flatnonzero(np.diff(y.real) != 1) + 1
    assert [i for i, _ in resumes] == list(jumps)
    assert all(y[i].real == j for i, j in resumes)  # each names the input sample it resumes at


def test_sample_drops_block_tags_rx_time_after_each_gap() -> None:
    from gnuradio import blocks, gr

    from lgvsc_phy.gr_blocks import SampleDrops as SampleDropsBlock

    x = np.arange(100_000).astype(np.complex64)
    block = SampleDropsBlock(1e-4, 50, seed=5, samp_rate=2e6)
    tb, sink = gr.top_block(), blocks.vector_sink_c()
    tb.connect(blocks.vector_source_c(x.tolist()), block, sink)
    tb.run()
    y = np.asarray(sink.data()).real
    meter, lost = GapMeter(), 0
    for tag in sink.tags():  # in the order the receiver sees them: rx_time, then rx_rate
        if pmt.symbol_to_string(tag.key) == RX_RATE:
            meter.set_rate(pmt.to_double(tag.value))
        else:
            whole, fraction = time_of(tag.value)
            lost += meter.time_tag(tag.offset, (whole, fraction))
            assert (whole + fraction) * 2e6 == pytest.approx(y[tag.offset])  # its time is its input sample's
    assert block.drops.gaps > 3 and lost == block.drops.lost == x.size - y.size


def test_a_zeromq_source_with_pass_tags_reads_our_header(base_port: int) -> None:
    """What bench_realtime sends to rx.grc: gr-zeromq's own source parses the header, places the
    tags on the right samples and keeps the samples whole."""
    import zmq
    from gnuradio import blocks, gr, zeromq

    address = f"tcp://127.0.0.1:{base_port}"
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.bind(address)
    tb, sink = gr.top_block(), blocks.vector_sink_c()
    tb.connect(zeromq.pull_source(gr.sizeof_gr_complex, 1, address, 100, True, -1), sink)
    tb.start()
    try:
        a, b = np.arange(100, dtype=np.complex64), np.arange(100, 300, dtype=np.complex64)
        push.send(zmq_header(0, [(0, RX_TIME, time_pmt(0.0)), (0, RX_RATE, pmt.from_double(1e6))]) + a.tobytes())
        push.send(zmq_header(100, [(150, RX_TIME, time_pmt(0.00075))]) + b.tobytes())
        deadline = time.monotonic() + 5
        while len(sink.data()) < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tb.stop()
        tb.wait()
        push.close(0)
        ctx.term()
    assert np.array_equal(np.asarray(sink.data()), np.concatenate([a, b]))
    tags = {(t.offset, pmt.symbol_to_string(t.key)): t.value for t in sink.tags()}
    assert set(tags) == {(0, RX_TIME), (0, RX_RATE), (150, RX_TIME)}
    assert sum(time_of(tags[(150, RX_TIME)])) == pytest.approx(0.00075)


def test_a_zeromq_sink_with_pass_tags_is_read_back(base_port: int) -> None:
    """What bench_realtime and the tx capture read from our flowgraphs: gr-zeromq's own sink
    writes the header, split_zmq_message gives back the offset, the tags and the samples."""
    import zmq
    from gnuradio import blocks, gr, zeromq

    address = f"tcp://127.0.0.1:{base_port}"
    x = np.arange(5000, dtype=np.complex64)
    tags = [gr.tag_utils.python_to_tag((k, pmt.intern(RX_TIME), time_pmt(k / 1e6), pmt.intern("t")))
            for k in (0, 1234)]
    tb = gr.top_block()
    tb.connect(blocks.vector_source_c(x.tolist(), False, 1, tags),
               zeromq.push_sink(gr.sizeof_gr_complex, 1, address, 100, True, -1))
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVTIMEO, 3000)
    pull.connect(address)
    got, found = [], []
    try:
        tb.start()
        while sum(len(g) for g in got) < x.nbytes:
            offset, here, samples = split_zmq_message(pull.recv())
            assert offset * 8 == sum(len(g) for g in got)  # each message says where it starts
            got.append(samples)
            found += here
        tb.wait()
    finally:
        pull.close(0)
        ctx.term()
    assert np.array_equal(np.frombuffer(b"".join(got), np.complex64), x)
    assert [(at, key) for at, key, _ in found] == [(0, RX_TIME), (1234, RX_TIME)]
    assert sum(time_of(found[1][2])) == pytest.approx(1234e-6)
    with pytest.raises(ValueError, match="pass_tags"):
        split_zmq_message(x.tobytes())
    with pytest.raises(ValueError, match="shorter"):
        split_zmq_message(b"\xf0\x5f\x01")
