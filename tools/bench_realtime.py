"""Real-time margin of the receiver: rx.grc fed at a fixed live rate, as a USRP source would feed it.

    python -m tools.bench_realtime [--rates 1e6 2e6 5e6] [--seconds 10] [--json OUT.json]

A loopback (tx -> channel -> rx over ZeroMQ) runs as fast as the CPU allows, so its throughput says
nothing about whether the receiver keeps up with a radio. A radio delivers samples at R per second
by its clock, whether the host is ready or not, through a bounded buffer: when the host falls
behind, samples are lost (UHD prints "O"). This benchmark stands in for that:

1. Record real IQ once: the real tx.grc and channel.grc (AWGN, ``--snr``) carry full-size PDUs
   alternating over ``--mcs`` (default qpsk-1/2 and 16qam-1/2); what the channel emits is captured
   off its ZeroMQ socket. As in a live link with PDUs waiting, the bursts lie back to back as
   tx.grc emits them: the busiest stream the receiver can see.
2. A feeder binds rx.grc's IQ input and pushes the capture (looped) at exactly R samples per
   second of wall clock, in messages of ``--chunk`` samples (2000: about one B200 USB packet, what
   GNU Radio's usrp_source hands the next block per work call), with non-blocking sends. Its queue
   is bounded (send high-water mark: ``--buffer-ms`` of samples), and so is the rx's ZeroMQ receive
   queue (1000 messages, the ZeroMQ default rx.grc keeps): a chunk the sockets will not take is
   dropped and counted as an overflow, as UHD counts an "O". The receiver runs as rx_usrp.grc
   runs it on a radio, on multiples of ``--batch`` samples (16384; 0: each message as it comes,
   as rx.grc does in a loopback, whose stream ends).
3. The rx process's CPU time (user + sys, all threads, from /proc/<pid>/stat) is read after the
   flowgraph is ready and ``--warmup`` seconds of samples went through (numba loading and grcc
   compiling stay out), and again once the rx has drained what was fed (its CPU use fell to
   idle). ``rx_cpu_s_per_s`` is the CPU seconds it spent per second of samples offered
   (the stream's seconds: with no overflow, all of them reached it);
   what one core has left below 1 is the margin for the rest of a live system.
   ``rx_threads_cpu_s_per_s`` splits it by thread (the table's "rx block": the receiver block's
   own thread, where its Python runs; the rest is GNU Radio's ZeroMQ blocks and their I/O).

The rx's queue alone holds about a second of samples (1000 chunks at 2 MS/s), far more than a
radio's, so falling behind shows first as lag: each decoded PDU carries its burst's sample index,
and the lag is how far the fed stream is ahead of it when the PDU comes out. A rate is *sustained*
when no chunk overflowed, the lag stayed under ``--max-lag`` and the rx decoded what it was fed.

A live receiver also listens while nothing is sent: unless ``--no-idle``, each rate is measured a
second time on noise alone (complex Gaussian at the capture's noise power), where every false
alarm of the burst detector costs a preamble check. No PDU shows the lag there, so a rate is
sustained when nothing overflowed and the rx used under 0.9 CPU s/s (its work runs on one Python
thread).

The machine may be shared: the 1-minute load average at the start is printed and reported. CPU
seconds per second depend little on load (waiting is not counted), lag and overflows more.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pmt
import zmq

from lgvsc_phy.channel_spec import ChannelConfig, flowgraph_args, grc_argv
from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.pmt_codec import PmtError, decode_pair, decode_pdu, encode_pdu
from lgvsc_phy.ports import LOCALHOST, Port, socket_addresses
from lgvsc_phy.runner import FlowgraphRunner
from lgvsc_phy.stream_time import RX_RATE, RX_TIME, split_zmq_message, time_pmt, zmq_header

DEFAULT_RATES = (1e6, 2e6, 5e6)
DEFAULT_BASE_PORT = 52301
CLK_TCK = os.sysconf("SC_CLK_TCK")
RECEIVER_THREAD = "lgvsc_ofdm_rece"  # the receiver block's thread name as /proc shows it (15 characters)


@dataclass(frozen=True)
class RealtimeConfig:
    """One benchmark run: the capture's make-up, the feeder's pacing and buffer, the pass criteria."""

    rates: tuple[float, ...] = DEFAULT_RATES
    seconds: float = 10.0  # seconds of samples measured per rate (after the warm-up)
    warmup_s: float = 1.0  # seconds of samples fed before the CPU figure starts
    chunk: int = 2000  # samples per message: about one B200 USB packet (usrp_source returns one per work call)
    buffer_ms: float = 50.0  # the feeder's own queue, in ms of samples: about a B200's host-side buffers
    base_port: int = DEFAULT_BASE_PORT
    mcs: tuple[str, ...] = ("qpsk-1/2", "16qam-1/2")
    snr_db: float = 20.0
    capture_pdus: int = 40
    sync_threshold: float = 0.06
    batch: int = 16384  # the receiver works on multiples of this many samples, as rx_usrp.grc's does on a radio
    max_lag_s: float = 0.25  # sustained only if the decoder never fell further behind the feed
    quiet_s: float = 0.5  # drained: no PDU for this long after the feed stopped (and the rx idle)
    drain_timeout_s: float = 60.0
    idle: bool = True  # also feed an idle channel (noise alone) at each rate
    max_idle_cpu: float = 0.9  # on noise alone no PDU shows the lag: sustained only below this CPU


@dataclass
class Capture:
    """IQ as the channel flowgraph emitted it: ``bursts`` whole bursts back to back."""

    samples: np.ndarray  # complex64
    bursts: int

    @property
    def bursts_per_sample(self) -> float:
        return self.bursts / self.samples.size


@dataclass
class RateResult:
    rate: float
    rx_cpu_s_per_s: float
    fed_s: float  # seconds of samples in the measured window
    overflow_chunks: int
    overflow_samples: int
    pdus: int  # decoded in the measured window
    pdus_expected: int
    crc_fail: int
    header_fail: int
    max_lag_s: float
    drain_s: float  # after the feed stopped, until the last PDU came out
    feeder_late_s: float  # how far the feeder itself fell behind the clock (a loaded host)
    feeder_cpu_s_per_s: float  # this process (feeder, PDU listener, ZeroMQ I/O): what UHD would cost instead
    # rx_cpu_s_per_s by the rx's threads, summed per thread name (the receiver block's thread
    # is "lgvsc_ofdm_rece..."; the rest is GNU Radio's ZeroMQ blocks and their I/O threads)
    rx_threads_cpu_s_per_s: dict[str, float] = field(default_factory=dict)
    sustained: bool = False


# -- recording -------------------------------------------------------------------------------------


def idle_capture(capture: Capture, snr_db: float, seed: int = 1) -> Capture:
    """What a radio receives while nothing is sent: complex Gaussian noise (as channel.grc's noise
    source makes it) at the capture's noise power, as long as the capture."""
    noise_power = float(np.mean(np.abs(capture.samples) ** 2)) / (1 + 10 ** (snr_db / 10))
    rng = np.random.default_rng(seed)
    n = capture.samples.size
    noise = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * math.sqrt(noise_power / 2)
    return Capture(noise.astype(np.complex64), 0)


def _zsocket(ctx: zmq.Context, kind: int, address: str, bind: bool = False, timeout_ms: int = 200) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.bind(address) if bind else sock.connect(address)
    return sock


def _capture_specs(cfg: RealtimeConfig) -> list[tuple[str, str, list[str]]]:
    channel = flowgraph_args(ChannelConfig(snr_db=cfg.snr_db, channel="awgn"))
    return [("tx", "tx.grc", grc_argv({"mcs": cfg.mcs[0], **socket_addresses("tx", cfg.base_port)})),
            ("channel", "channel.grc", [*channel, *grc_argv(socket_addresses("channel", cfg.base_port))])]


def _burst_ends(stats: zmq.Socket, ends: dict[int, int]) -> None:
    """Fold the tx's burst counter messages waiting on ``stats`` into ``ends`` (burst -> its end sample)."""
    while True:
        try:
            meta, _ = decode_pair(stats.recv(zmq.NOBLOCK))
        except zmq.Again:
            return
        except PmtError:
            continue
        ends[int(meta.get("bursts", 0))] = int(meta.get("samples", 0))


def record_capture(cfg: RealtimeConfig) -> Capture:
    """``cfg.capture_pdus`` full PDUs, MCS alternating over ``cfg.mcs``, through tx.grc and channel.grc.
    One more burst follows them: GNU Radio's buffers keep the tail of the last burst sent until more
    samples push it out."""
    rng = np.random.default_rng(1)
    ctx = zmq.Context()
    addr = lambda port: port.address(cfg.base_port, LOCALHOST)  # noqa: E731
    try:
        with FlowgraphRunner(specs=_capture_specs(cfg)) as runner:
            pdu_in, stats = _zsocket(ctx, zmq.PUSH, addr(Port.PDU_IN)), _zsocket(ctx, zmq.PULL, addr(Port.TX_STATS))
            iq = _zsocket(ctx, zmq.PULL, addr(Port.CHANNEL_IQ))
            time.sleep(0.3)  # connections up before the first burst
            for i in range(cfg.capture_pdus + 1):
                mcs = get_mcs(cfg.mcs[i % len(cfg.mcs)])
                payload = rng.integers(0, 256, mcs.max_link_pdu_bytes, dtype=np.uint8).tobytes()
                pdu_in.send(encode_pdu(payload, {"mcs": mcs.name}))
            chunks, got, ends, idle_since = [], 0, {}, time.monotonic()
            while got < ends.get(cfg.capture_pdus, math.inf):
                runner.check()
                _burst_ends(stats, ends)
                try:
                    chunks.append(np.frombuffer(split_zmq_message(iq.recv())[2], np.complex64))
                    got, idle_since = got + chunks[-1].size, time.monotonic()
                except zmq.Again:
                    if time.monotonic() - idle_since > 10.0:
                        raise RuntimeError(f"capture stalled: {got} samples, tx bursts {len(ends)}") from None
    finally:
        ctx.destroy(0)
    samples = np.concatenate(chunks)[: ends[cfg.capture_pdus]]
    return Capture(np.ascontiguousarray(samples, np.complex64), cfg.capture_pdus)


# -- the receiver side -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all its threads."""
    return _stat_cpu_seconds(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds of process ``pid``'s live threads, summed per thread name."""
    by_name: dict[str, float] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{task}/comm").read().strip()
            seconds = _stat_cpu_seconds(f"/proc/{pid}/task/{task}/stat")
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        by_name[name] = by_name.get(name, 0.0) + seconds
    return by_name


def _stat_cpu_seconds(path: str) -> float:
    fields = open(path).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class PduListener:
    """Collects the rx's decoded PDUs (sample index of each burst, arrival time) and last counters."""

    ctx: zmq.Context
    base_port: int
    starts: list[tuple[float, int]] = field(default_factory=list)  # (arrival monotonic, burst start)
    stats: dict = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        pdus = _zsocket(self.ctx, zmq.PULL, Port.PDU_OUT.address(self.base_port), timeout_ms=50)
        stats = _zsocket(self.ctx, zmq.PULL, Port.RX_STATS.address(self.base_port), timeout_ms=0)
        poller = zmq.Poller()
        for sock in (pdus, stats):
            poller.register(sock, zmq.POLLIN)
        try:
            while not self.stop.is_set():
                for sock, _ in poller.poll(50):
                    self._take(sock is pdus, sock.recv())
        finally:
            pdus.close(0)
            stats.close(0)

    def _take(self, is_pdu: bool, raw: bytes) -> None:
        try:
            meta = decode_pdu(raw)[0] if is_pdu else decode_pair(raw)[0]
        except PmtError:
            return
        if is_pdu:
            self.starts.append((time.monotonic(), int(meta.get("start", -1))))
        else:
            self.stats = {k: v for k, v in meta.items() if k in ("bursts", "crc_ok", "crc_fail", "header_fail")}


@dataclass
class Feeder:
    """Pushes ``capture`` (looped) at ``rate`` samples per second of wall clock, non-blocking: a chunk
    the bounded sockets refuse is dropped (an overflow). ``sent`` counts the samples the rx got,
    ``offered`` those due, sent or dropped.
    Like a USRP source, it tags the first sample, and the first after each overflow, with
    ``rx_time`` and ``rx_rate`` (rx.grc's ZeroMQ source passes tags): the rx fills the gap, so
    its sample indices count what was offered, sent or dropped (``log``, ``offered_at``)."""

    sock: zmq.Socket
    capture: Capture
    rate: float
    chunk: int
    offered: int = 0  # samples due so far, sent or dropped
    sent: int = 0
    dropped_chunks: int = 0
    late_s: float = 0.0
    log: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, offered) after each chunk

    def __post_init__(self) -> None:
        self._ring = np.concatenate([self.capture.samples, self.capture.samples[: self.chunk]])
        self._clock0: float | None = None
        self._overflowed = False

    def feed(self, samples: int) -> None:
        """Feed ``samples`` more, keeping the wall-clock schedule of all fed before."""
        if self._clock0 is None:
            self._clock0 = time.monotonic()
        target = self.offered + samples
        while self.offered < target:
            due = self._clock0 + (self.offered + self.chunk) / self.rate
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            else:
                self.late_s = max(self.late_s, now - due)
            self._push(min(self.chunk, target - self.offered))

    def _push(self, n: int) -> None:
        pos = self.offered % self.capture.samples.size
        tags = []
        if self.sent == 0 or self._overflowed:  # the radio's time of this sample, as a USRP source tags it
            tags = [(self.sent, RX_TIME, time_pmt(self.offered / self.rate)),
                    (self.sent, RX_RATE, pmt.from_double(self.rate))]
        try:
            self.sock.send(zmq_header(self.sent, tags) + self._ring[pos : pos + n].tobytes(), zmq.NOBLOCK, copy=True)
            self.sent += n
            self._overflowed = False
        except zmq.Again:
            self.dropped_chunks += 1
            self._overflowed = True
        self.offered += n
        self.log.append((time.monotonic(), self.offered))

    def offered_at(self, times: np.ndarray) -> np.ndarray:
        """Samples offered (the rx's stream position) by each monotonic time of ``times``."""
        log = np.array(self.log or [(0.0, 0)], dtype=float)
        i = np.searchsorted(log[:, 0], times, side="right")
        return np.where(i > 0, log[np.maximum(i - 1, 0), 1], 0.0)


def _rx_specs(cfg: RealtimeConfig) -> list[tuple[str, str, list[str]]]:
    return [("rx", "rx.grc", grc_argv({"sync_threshold": cfg.sync_threshold, "batch": cfg.batch,
                                       **socket_addresses("rx", cfg.base_port)}))]


def _wait_drained(listener: PduListener, runner: FlowgraphRunner, cfg: RealtimeConfig, since: float) -> float:
    """Wait until the rx is done with what was fed: no PDU came for ``cfg.quiet_s`` and its CPU use
    fell below a tenth of a core (on noise alone no PDU tells); return the time of the last PDU."""
    pid, deadline = runner.pids()[0], since + cfg.drain_timeout_s
    cpu, t = cpu_seconds(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        runner.check()
        cpu_now, t_now = cpu_seconds(pid), time.monotonic()
        busy, cpu, t = (cpu_now - cpu) / (t_now - t), cpu_now, t_now
        last = max(listener.starts[-1][0] if listener.starts else since, since)
        if t_now - last > cfg.quiet_s and busy < 0.1:
            return last
    return time.monotonic()


def _max_lag(listener: PduListener, feeder: Feeder, lo: int, hi: int) -> float:
    seen = np.array([(t, s) for t, s in listener.starts if lo <= s < hi], dtype=float).reshape(-1, 2)
    lags = feeder.offered_at(seen[:, 0]) - seen[:, 1]
    return float(lags.max(initial=0.0)) / feeder.rate


def send_hwm(cfg: RealtimeConfig, rate: float) -> int:
    """Chunks the feeder's own queue holds (its send high-water mark): ``cfg.buffer_ms`` of samples."""
    return max(1, math.ceil(cfg.buffer_ms * 1e-3 * rate / cfg.chunk))


def measure_rate(capture: Capture, rate: float, cfg: RealtimeConfig) -> RateResult:
    """Start rx.grc, feed it ``cfg.warmup_s + cfg.seconds`` of samples at ``rate``, return the figures."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, send_hwm(cfg, rate))
    sock.bind(Port.CHANNEL_IQ.address(cfg.base_port))
    feeder = Feeder(sock, capture, rate, cfg.chunk)
    listener = PduListener(ctx, cfg.base_port)
    try:
        with FlowgraphRunner(specs=_rx_specs(cfg)) as runner:
            thread = listener.start()
            pid = runner.pids()[0]
            feeder.feed(round(cfg.warmup_s * rate))
            runner.check()
            cpu0, own0, sent0, drop0 = cpu_seconds(pid), time.process_time(), feeder.offered, feeder.dropped_chunks
            threads0 = thread_cpu_seconds(pid)
            feeder.feed(round(cfg.seconds * rate))
            measured = feeder.offered
            # A radio's samples never stop: one batch more, so that the receiver's last batch is
            # whole (its CPU is counted, its PDUs are not).
            feeder.feed(cfg.batch)
            fed_end = time.monotonic()
            last_pdu = _wait_drained(listener, runner, cfg, fed_end)
            cpu1, own1, threads1 = cpu_seconds(pid), time.process_time(), thread_cpu_seconds(pid)
            listener.stop.set()
            thread.join(2.0)
    finally:
        sock.close(0)
        ctx.destroy(0)
    fed_s = (measured - sent0) / rate
    pdus = sum(sent0 <= s < measured for _, s in listener.starts)
    drops = feeder.dropped_chunks - drop0
    return RateResult(
        rate=rate, rx_cpu_s_per_s=(cpu1 - cpu0) / fed_s if fed_s else math.inf, fed_s=fed_s,
        overflow_chunks=drops, overflow_samples=drops * feeder.chunk, pdus=pdus,
        pdus_expected=round((measured - sent0) * capture.bursts_per_sample),
        crc_fail=int(listener.stats.get("crc_fail", 0)), header_fail=int(listener.stats.get("header_fail", 0)),
        max_lag_s=_max_lag(listener, feeder, sent0, measured), drain_s=max(0.0, last_pdu - fed_end),
        feeder_late_s=feeder.late_s, feeder_cpu_s_per_s=(own1 - own0) / fed_s if fed_s else math.inf,
        rx_threads_cpu_s_per_s={name: (t - threads0.get(name, 0.0)) / fed_s for name, t in threads1.items()
                                if fed_s and t > threads0.get(name, 0.0)})


def _judge(r: RateResult, cfg: RealtimeConfig) -> RateResult:
    """Sustained: no overflow, and with bursts a bounded lag and the PDUs decoded; on noise alone
    (no PDU to time) CPU below ``cfg.max_idle_cpu`` (the rx's work runs on one Python thread)."""
    if r.pdus_expected == 0:
        r.sustained = r.overflow_chunks == 0 and r.rx_cpu_s_per_s < cfg.max_idle_cpu
    else:
        r.sustained = r.overflow_chunks == 0 and r.max_lag_s <= cfg.max_lag_s and r.pdus >= 0.95 * r.pdus_expected
    return r


# -- the report ------------------------------------------------------------------------------------


def rate_key(rate: float) -> str:
    """1e6 -> "1e6", 2.5e6 -> "2.5e6" (the JSON keys of bench_phy's ``realtime``)."""
    exp = int(math.floor(math.log10(rate)))
    return f"{rate / 10 ** exp:g}e{exp}"


@dataclass
class Run:
    load_avg: float  # 1-minute load average at the start
    capture: Capture
    results: list[RateResult]  # bursts back to back, one per rate
    idle: list[RateResult]  # noise alone, one per rate (empty unless cfg.idle)


def run(cfg: RealtimeConfig) -> Run:
    load = os.getloadavg()[0]
    capture = record_capture(cfg)
    results = [_judge(measure_rate(capture, rate, cfg), cfg) for rate in cfg.rates]
    noise = idle_capture(capture, cfg.snr_db)
    idle = [_judge(measure_rate(noise, rate, cfg), cfg) for rate in cfg.rates] if cfg.idle else []
    return Run(load, capture, results, idle)


def summarize(run: Run, cfg: RealtimeConfig) -> dict:
    load, capture, results = run.load_avg, run.capture, run.results
    by_rate = lambda attr, rs=results: {rate_key(r.rate): getattr(r, attr) for r in rs}  # noqa: E731
    idle = {"rx_idle_cpu_s_per_s": by_rate("rx_cpu_s_per_s", run.idle), "idle_overflows":
            by_rate("overflow_chunks", run.idle), "idle_sustained": by_rate("sustained", run.idle),
            "idle_results": [asdict(r) for r in run.idle]} if run.idle else {}
    return {"rx_cpu_s_per_s": by_rate("rx_cpu_s_per_s"), "overflows": by_rate("overflow_chunks"),
            "pdus": {rate_key(r.rate): {"decoded": r.pdus, "expected": r.pdus_expected} for r in results},
            "sustained": by_rate("sustained"), "max_lag_s": by_rate("max_lag_s"), "load_avg": load,
            "cpu_count": os.cpu_count(), "capture": {"samples": int(capture.samples.size), "bursts": capture.bursts,
                                                     "mcs": list(cfg.mcs), "snr_db": cfg.snr_db},
            "seconds": cfg.seconds, "chunk": cfg.chunk, "batch": cfg.batch, "buffer_ms": cfg.buffer_ms,
            "results": [asdict(r) for r in results], **idle}


def realtime_margin(rates: list[float], seconds: float, base_port: int) -> dict:
    """For bench_phy: ``{"rx_cpu_s_per_s": {"1e6": x, ...}, "overflows": {...}, "pdus": {...},
    "load_avg": ...}`` (plus ``sustained``, ``max_lag_s`` and per-rate details)."""
    cfg = RealtimeConfig(rates=tuple(rates), seconds=seconds, base_port=base_port)
    return summarize(run(cfg), cfg)


def print_table(summary: dict) -> None:
    print(f"load average (1 min) at start: {summary['load_avg']:.2f} on {summary['cpu_count']} CPUs "
          "(shared machine: other work competes)")
    cap = summary["capture"]
    print(f"capture: {cap['bursts']} bursts ({'/'.join(cap['mcs'])}, {cap['snr_db']:g} dB AWGN) "
          f"in {cap['samples']} samples, looped")
    print(f"{'input':>6} {'rate':>5} {'rx CPU s/s':>10} {'rx block':>8} {'overflows':>9} {'PDUs':>11} {'max lag':>8} "
          f"{'drain':>6} {'late':>6} sustained")
    for label, key in (("bursts", "results"), ("idle", "idle_results")):
        for r in summary.get(key, []):
            _print_row(label, r)


def receiver_block_cpu(r: dict) -> float:
    """CPU s/s of the receiver block's own thread (GNU Radio names it after the block, cut to 15
    characters): the Python work, as against the scheduler's and ZeroMQ's threads."""
    return sum(v for name, v in r.get("rx_threads_cpu_s_per_s", {}).items() if name.startswith(RECEIVER_THREAD))


def _print_row(label: str, r: dict) -> None:
    print(f"{label:>6} {r['rate'] / 1e6:4.1f}M {r['rx_cpu_s_per_s']:10.3f} {receiver_block_cpu(r):8.3f} "
          f"{r['overflow_chunks']:9d} "
          f"{r['pdus']:5d}/{r['pdus_expected']:<5d} {r['max_lag_s'] * 1e3:6.0f}ms {r['drain_s']:5.1f}s "
          f"{r['feeder_late_s'] * 1e3:4.0f}ms {'yes' if r['sustained'] else 'NO'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", nargs="+", type=float, default=list(DEFAULT_RATES))
    ap.add_argument("--seconds", type=float, default=RealtimeConfig.seconds)
    ap.add_argument("--warmup", type=float, default=RealtimeConfig.warmup_s)
    ap.add_argument("--chunk", type=int, default=RealtimeConfig.chunk, help="samples per message")
    ap.add_argument("--batch", type=int, default=RealtimeConfig.batch,
                    help="the receiver works on multiples of this many samples (rx_usrp.grc: 16384; 0: each message)")
    ap.add_argument("--mcs", nargs="+", default=list(RealtimeConfig.mcs))
    ap.add_argument("--snr", type=float, default=RealtimeConfig.snr_db)
    ap.add_argument("--buffer-ms", type=float, default=RealtimeConfig.buffer_ms)
    ap.add_argument("--max-lag", type=float, default=RealtimeConfig.max_lag_s)
    ap.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    ap.add_argument("--no-idle", action="store_true", help="skip the idle channel (noise alone)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    cfg = RealtimeConfig(rates=tuple(args.rates), seconds=args.seconds, warmup_s=args.warmup, chunk=args.chunk,
                         buffer_ms=args.buffer_ms, mcs=tuple(args.mcs), snr_db=args.snr, max_lag_s=args.max_lag,
                         base_port=args.base_port, idle=not args.no_idle, batch=args.batch)
    summary = summarize(run(cfg), cfg)
    print_table(summary)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
