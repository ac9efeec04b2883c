"""Send a byte stream as PDUs into the tx flowgraph and reassemble what the rx flowgraph returns.

Pure pyzmq + our PMT codec: the semantic side never imports GNU Radio. Every socket has
LINGER 0, a receive timeout and a bounded message size, so nothing here blocks forever.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import zmq

from lgvsc_phy.feedback import DelayedFeedback
from lgvsc_phy.framing import FramingError, LinkPdu, Reassembly, split_stream
from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.pmt_codec import PmtError, decode_pdu, encode_pdu
from lgvsc_phy.ports import LOCALHOST, PORT_SPAN, Port
from lgvsc_phy.protection import Protection
from lgvsc_phy.runner import FlowgraphError

MAX_MESSAGE_BYTES = 1 << 16  # bounded: a PDU is a few hundred bytes, a stats dict less
TX_COUNT_WAIT_S = 2.0  # after the last PDU came back, how long the tx's counters may still take


class LinkError(RuntimeError):
    pass


@dataclass(frozen=True)
class LinkAddresses:
    """ZeroMQ endpoints of the flowgraphs (they bind; the link connects); each field is named
    after its ``Port``."""

    pdu_in: str  # tx flowgraph's PDU input
    tx_stats: str  # tx flowgraph's burst counter
    pdu_out: str  # rx flowgraph's decoded PDUs
    rx_stats: str  # rx flowgraph's decoder counters

    @classmethod
    def from_base_port(cls, base: int, host: str = LOCALHOST) -> LinkAddresses:
        return cls(**{f.name: Port[f.name.upper()].address(base, host) for f in fields(cls)})


def free_base_port(span: int = PORT_SPAN, host: str = LOCALHOST) -> int:
    """First of ``span`` consecutive free TCP ports on ``host``, for flowgraphs run side by side
    (tests, the held-out matrix). Drawn at random below the OS's ephemeral range: a port there
    can be taken by any outgoing connection (ZeroMQ's own among them) between this check and
    the flowgraph's bind."""
    low = _ephemeral_low()
    rng = random.Random()  # its own generator: callers' seeds must not make parallel runs collide
    for _ in range(200):
        base = rng.randrange(10000, max(10001, low - span))
        if all(_port_free(host, p) for p in range(base, base + span)):
            return base
    raise OSError(f"no {span} consecutive free ports on {host}")


def _ephemeral_low() -> int:
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class TxCount:
    """What the tx flowgraph reported emitting (its burst counter's cumulative figures)."""

    bursts: int = 0
    samples: int = 0


@dataclass
class RxCount:
    """What the rx flowgraph's decoder reported (cumulative): frames that passed and failed CRC,
    and gaps in the stream (radio overflows) its receiver filled from their rx_time tags."""

    crc_ok: int = 0
    crc_fail: int = 0
    gaps_filled: int = 0

    @property
    def decoded(self) -> int:
        return self.crc_ok + self.crc_fail


class _Pacer:
    """Keeps at most ``IN_FLIGHT`` PDUs between the link and the rx decoder's verdict.

    Handing the tx thousands of PDUs at once let it run far ahead of the receiver: tens of MB
    of IQ piled up in the ZeroMQ queues, and once a queue hit its high-water mark the chain
    sometimes crawled on at a few bursts a second (1 transfer in 8 of 1500 PDUs took 25 s
    instead of 4). A burst the rx never detects is never judged, so when no verdict comes for
    ``STALL_S`` the outstanding PDUs are written off and the next ones go out; before the
    stream's first verdict (or write-off) the wait is ``FIRST_STALL_S``, since freshly started
    flowgraphs can take longer than ``STALL_S`` over their first burst.
    """

    IN_FLIGHT = 48  # bursts: enough to keep tx, channel and rx all busy
    STALL_S = 0.5
    FIRST_STALL_S = 5.0

    def __init__(self, total: int) -> None:
        self.total, self.sent, self.written_off = total, 0, 0
        self.judged, self.last_progress = 0, time.monotonic()

    @property
    def settled(self) -> int:
        """PDUs no longer waited on: judged, or written off. A late verdict on a PDU written off
        does not count twice (it once let a written-off first PDU mark every next one lost)."""
        return max(self.judged, self.written_off)

    def release(self, judged: int, now: float, cap: int | None = None) -> range:
        """The PDUs that may go now (at most up to ``cap``: a transmitter waiting for feedback)."""
        stall_s = self.STALL_S if self.settled else self.FIRST_STALL_S  # a dead link pays the long wait once
        if judged > self.judged:
            self.judged, self.last_progress = judged, now
        elif self.sent > self.settled and now - self.last_progress > stall_s:
            self.written_off, self.last_progress = self.sent, now
        allowed = min(self.total, self.settled + self.IN_FLIGHT, self.total if cap is None else cap)
        start, self.sent = self.sent, max(self.sent, allowed)
        return range(start, self.sent)


@dataclass
class TransferResult:
    data: bytes  # reassembled stream, lost ranges zero-filled
    lost_pdus: list[int]
    lost_ranges: list[tuple[int, int]]
    pdus_sent: int
    pdus_received: int
    tx_bursts: int
    tx_samples: int  # on-air samples the tx flowgraph emitted for this stream
    rejected: int  # PDUs that arrived but failed the link CRC or belonged elsewhere
    wall_s: float
    meta: list[dict] = field(default_factory=list)  # per received PDU: rx metadata (snr_db, ...)
    constellation: tuple[str, np.ndarray] | None = None  # a sample of equalized symbols from the rx
    fault: str | None = None  # a flowgraph died or stopped mid-stream: what arrived before is kept
    feedback: dict | None = None  # with delayed feedback: the MCS each PDU went on (DelayedFeedback.summary)
    gaps_filled: int = 0  # stream gaps (radio overflows) the receiver filled from their rx_time tags

    @property
    def complete(self) -> bool:
        return not self.lost_pdus

    def pdu_snr_db(self) -> list[float | None]:
        """Per PDU in sending order, the SNR the receiver estimated on its burst (None: lost, or
        not measured): on a fading channel, what each burst really saw beside what was lost."""
        seen = {int(m["seq"]): float(m["snr_db"]) for m in self.meta if "seq" in m and "snr_db" in m}
        return [seen.get(seq) for seq in range(self.pdus_sent)]


def receiver_estimates(meta: list[dict]) -> dict[str, float | None]:
    """What the receiver measured on the decoded PDUs' bursts (``meta``): mean SNR (dB), mean CFO
    (subcarrier spacings) and its last sample clock offset estimate (ppm, tracked over the
    stream). The first things to read when a radio link misbehaves; None where nothing arrived."""
    def mean(key: str) -> float | None:
        values = [float(m[key]) for m in meta if key in m]
        return float(np.mean(values)) if values else None

    sfo = [float(m["sfo_ppm"]) for m in meta if "sfo_ppm" in m]
    return {"snr_estimate_db": mean("snr_db"), "cfo_estimate": mean("cfo"),
            "sfo_estimate_ppm": sfo[-1] if sfo else None}


class Link:
    """One ZeroMQ session with running tx and rx flowgraphs."""

    def __init__(self, addresses: LinkAddresses, poll_ms: int = 100) -> None:
        self.addresses, self.poll_ms = addresses, poll_ms
        self.ctx = zmq.Context()
        self.tx = self._socket(zmq.PUSH, addresses.pdu_in)
        self.stats = self._socket(zmq.PULL, addresses.tx_stats)
        self.rx = self._socket(zmq.PULL, addresses.pdu_out)
        self.rx_stats = self._socket(zmq.PULL, addresses.rx_stats)
        self.count = TxCount()
        self.rx_count = RxCount()
        self.constellation: tuple[str, np.ndarray] | None = None  # (MCS, equalized symbols) last sampled

    def _socket(self, kind: int, address: str) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.setsockopt(zmq.RCVTIMEO, self.poll_ms)
        sock.setsockopt(zmq.SNDTIMEO, 2000)
        sock.connect(address)
        return sock

    def close(self) -> None:
        for sock in (self.tx, self.stats, self.rx, self.rx_stats):
            sock.close(0)
        self.ctx.term()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending -----------------------------------------------------------------------------
    def send_pdu(self, payload: bytes, mcs: str | None = None) -> None:
        """One link PDU to the tx flowgraph; ``mcs`` overrides the flowgraph's for this burst."""
        try:
            self.tx.send(encode_pdu(payload, {"mcs": mcs} if mcs else None))
        except zmq.Again:
            raise LinkError(f"tx flowgraph at {self.addresses.pdu_in} does not take PDUs (2 s timeout)") from None

    def _pdus(self, data: bytes, stream_id: int, plan: int | Protection) -> list[tuple[LinkPdu, str | None]]:
        """``data`` cut into PDUs, each with the MCS that carries it (None: the flowgraph's)."""
        if isinstance(plan, Protection):
            return [(pdu, mcs.name) for pdu, mcs in plan.pdus(data, stream_id)]
        return [(pdu, None) for pdu in split_stream(data, stream_id, plan)]

    def send_all(self, data: bytes, stream_id: int, plan: int | Protection) -> list[LinkPdu]:
        """Send all PDUs at once (for a transmitter alone: nothing downstream to pace on)."""
        pairs = self._pdus(data, stream_id, plan)
        for pdu, mcs in pairs:
            self.send_pdu(pdu.pack(), mcs)
        return [pdu for pdu, _ in pairs]

    def drain_stats(self) -> bool:
        """Read pending counters from both flowgraphs; True if anything new arrived."""
        news = False
        for sock, target in ((self.stats, self.count), (self.rx_stats, self.rx_count)):
            while True:
                try:
                    msg = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    meta, _ = decode_pdu(msg)
                except PmtError:
                    continue
                for key in vars(target):
                    if key in meta:
                        setattr(target, key, int(meta[key]))
                if isinstance(meta.get("constellation"), np.ndarray):
                    self.constellation = (str(meta.get("constellation_mcs")), meta["constellation"])
                news = True
        return news

    def _await_tx_count(self, bursts: int, timeout_s: float = TX_COUNT_WAIT_S) -> None:
        """Read counters until the tx has reported ``bursts`` bursts in all, or ``timeout_s``.
        The last PDUs can come back from the rx before the tx's counter messages for them (on
        a loaded machine a whole short transfer once did: it counted 0 samples on air)."""
        deadline = time.monotonic() + timeout_s
        self.drain_stats()
        while self.count.bursts < bursts and time.monotonic() < deadline:
            time.sleep(0.005)
            self.drain_stats()

    # -- one stream --------------------------------------------------------------------------
    def _collect(self, got: Reassembly, stream_id: int) -> list[dict]:
        """The PDUs waiting on the rx socket, until one poll comes back empty."""
        metas = []
        while True:
            try:
                msg = self.rx.recv()
            except zmq.Again:
                return metas
            accepted = accept_message(got, msg, stream_id)
            if accepted is not None:
                metas.append(accepted[1])

    def transfer(
        self,
        data: bytes,
        max_pdu_bytes: int | Protection,
        stream_id: int = 1,
        idle_timeout_s: float = 3.0,
        deadline_s: float = 600.0,
        check: Callable[[], None] | None = None,
        feedback: DelayedFeedback | None = None,
    ) -> TransferResult:
        """Send ``data`` and collect what comes back.

        Ends when every PDU arrived; or once the tx flowgraph has emitted every burst and the rx
        decoder has judged as many frames (the rest were never detected), or nothing new came
        from either flowgraph for ``idle_timeout_s``; or at ``deadline_s``. ``check`` is called
        every poll (the runner's crash check) and may raise. With ``feedback`` each PDU planned
        on the rate MCS goes on the MCS the receiver's reports, as old as its delay, call for.
        """
        t0 = time.monotonic()
        self.drain_stats()
        base = TxCount(self.count.bursts, self.count.samples)
        rx_base, gaps_base = self.rx_count.decoded, self.rx_count.gaps_filled
        queue = self._pdus(data, stream_id, max_pdu_bytes)
        pdus = [pdu for pdu, _ in queue]
        pacer = _Pacer(len(queue))
        if feedback is not None:
            feedback.plan([(get_mcs(mcs) if mcs else feedback.first).burst_cost(len(pdu.pack()))[1]
                           for pdu, mcs in queue])
        got = Reassembly(None, 0, {})
        metas: list[dict] = []
        rejected = 0
        last_event = time.monotonic()
        fault = None
        newest = -1  # the highest PDU number that arrived
        while not got.complete:
            fault = _fault(check)
            now = time.monotonic()
            if fault or now - t0 > deadline_s:
                break
            if self.drain_stats():
                last_event = now  # a flowgraph is still working through the queue
            judged = self.rx_count.decoded - rx_base
            if feedback is None:
                for i in pacer.release(judged, now):
                    self.send_pdu(queue[i][0].pack(), queue[i][1])
            else:
                self._send_on_feedback(feedback, pacer, queue, got, newest, judged, now, _rate_name(max_pdu_bytes))
            all_sent = pacer.sent == len(queue) and self.count.bursts - base.bursts >= len(pdus)
            all_judged = self.rx_count.decoded - rx_base >= len(pdus)
            finishing = all_sent and (all_judged or now - last_event > idle_timeout_s)
            try:
                # Once finishing, the PDUs the decoder published before its counters may still
                # be in flight on the other socket: read until one poll comes back empty.
                msg = self.rx.recv()
            except zmq.Again:
                if finishing:
                    break
                continue
            last_event = time.monotonic()
            accepted = accept_message(got, msg, stream_id)
            if accepted is None:
                rejected += 1
            else:
                metas.append(accepted[1])
                newest = max(newest, accepted[0].seq)
                if feedback is not None:
                    feedback.report(accepted[0].seq, _esnr(accepted[1]))
        if fault:  # what the rx already decoded is still on its way: keep it
            metas += self._collect(got, stream_id)
            self.drain_stats()
        else:
            self._await_tx_count(base.bursts + len(pdus))
        if got.stream_id is None:
            got = Reassembly(stream_id, len(pdus), {})
        assembled, ranges = got.assemble()
        if len(assembled) < len(data) and got.lost:
            # The tail is lost too: we know the length we sent, so mark the tail as lost.
            start = len(assembled)
            assembled += bytes(len(data) - start)
            if not ranges or ranges[-1][1] != start:
                ranges.append((start, len(data)))
            else:
                ranges[-1] = (ranges[-1][0], len(data))
        return TransferResult(
            data=assembled,
            lost_pdus=got.lost,
            lost_ranges=ranges,
            pdus_sent=len(pdus),
            pdus_received=len(got.received),
            gaps_filled=self.rx_count.gaps_filled - gaps_base,
            tx_bursts=self.count.bursts - base.bursts,
            tx_samples=self.count.samples - base.samples,
            rejected=rejected,
            wall_s=time.monotonic() - t0,
            meta=metas,
            constellation=self.constellation,
            fault=fault,
            feedback=None if feedback is None else feedback.summary(),
        )

    def _send_on_feedback(self, feedback: DelayedFeedback, pacer: _Pacer, queue: list[tuple[LinkPdu, str | None]],
                          got: Reassembly, newest: int, judged: int, now: float, rate: str | None) -> None:
        """Each next PDU once the reports due before its burst starts are in. A PDU reports as
        lost (no ACK) once a later one arrived, or the rx judged as many bursts (it failed its
        CRC), or the pacer wrote it off (never detected)."""
        pacer.release(judged, now, cap=pacer.sent)  # only brings the pacer's verdicts up to date
        for i in feedback.unheard():
            if i not in feedback.reports and i not in got.received and (i < newest or pacer.settled > i):
                feedback.report(i, None)
        while feedback.ready():
            released = pacer.release(judged, now, cap=pacer.sent + 1)
            if not released:
                return
            pdu, planned = queue[released[0]]
            wire = pdu.pack()
            mcs = feedback.send(get_mcs(planned) if planned else feedback.first, planned in (None, rate), len(wire))
            self.send_pdu(wire, mcs.name)


@dataclass
class ReceivedStream:
    data: bytes  # reassembled, lost ranges zero-filled (a lost tail is simply missing)
    lost_pdus: list[int]
    pdus_received: int
    pdus_total: int  # from the PDU headers; 0 if nothing arrived
    wall_s: float
    meta: list[dict] = field(default_factory=list)
    fault: str | None = None  # the rx flowgraph died or stopped, or the receive was interrupted


def _rate_name(plan: int | Protection) -> str | None:
    """The MCS of the PDUs feedback adapts (None: every PDU goes on the flowgraph's MCS)."""
    return plan.rate.name if isinstance(plan, Protection) else None


def _esnr(meta: dict) -> float | None:
    """The effective SNR the receiver measured on a PDU's burst (its plain SNR if none)."""
    value = meta.get("esnr_db", meta.get("snr_db"))
    return None if value is None else float(value)


def _fault(check: Callable[[], None] | None) -> str | None:
    """The runner's crash check as a value: a fault ends a stream, it does not discard it."""
    if check is None:
        return None
    try:
        check()
    except FlowgraphError as exc:
        return str(exc)
    return None


def send_stream(link: Link, data: bytes, max_pdu_bytes: int | Protection, stream_id: int = 1, deadline_s: float = 120.0,
                check: Callable[[], None] | None = None) -> TxCount:
    """Send ``data`` and wait until the tx flowgraph has emitted every burst; returns what it
    emitted for this stream (bursts, samples)."""
    link.drain_stats()
    base = TxCount(link.count.bursts, link.count.samples)
    pdus = link.send_all(data, stream_id, max_pdu_bytes)
    t0 = time.monotonic()
    while link.count.bursts - base.bursts < len(pdus):
        if check is not None:
            check()
        if time.monotonic() - t0 > deadline_s:
            raise LinkError(f"tx flowgraph emitted {link.count.bursts - base.bursts}/{len(pdus)} bursts "
                            f"in {deadline_s:.0f} s")
        time.sleep(0.05)
        link.drain_stats()
    return TxCount(link.count.bursts - base.bursts, link.count.samples - base.samples)


def accept_message(got: Reassembly, msg: bytes, stream_id: int | None = None) -> tuple[LinkPdu, dict] | None:
    """One message from the rx flowgraph into ``got``: the PDU and its metadata, or None for
    anything malformed, corrupt, foreign (another stream), duplicated or replayed. The single
    gate between the radio and the semantic decoder (and what tools/fuzz.py attacks)."""
    try:
        meta, payload = decode_pdu(msg)
        pdu = LinkPdu.unpack(payload)
    except (PmtError, FramingError):
        return None
    if stream_id is not None and pdu.stream_id != stream_id:
        return None
    return (pdu, {**meta, "seq": pdu.seq}) if got.add(pdu) else None


def receive_stream(link: Link, idle_timeout_s: float = 5.0, deadline_s: float = 120.0,
                   check: Callable[[], None] | None = None,
                   on_pdu: Callable[[LinkPdu], None] | None = None,
                   stop: threading.Event | None = None,
                   first_pdu_timeout_s: float | None = None) -> ReceivedStream:
    """Collect one stream's PDUs: until complete, ``idle_timeout_s`` of silence (counted from
    the call, then from each arrival; before the first PDU ``first_pdu_timeout_s`` when given,
    for a sender that starts later), or ``deadline_s``; a fault (``check`` raising) or ``stop``
    ends it early with what arrived and ``fault`` set. ``on_pdu`` sees each new PDU of the
    stream as it arrives (to decode while receiving)."""
    t0 = time.monotonic()
    got = Reassembly(None, 0, {})
    metas: list[dict] = []
    last = None
    fault = None
    while not got.complete:
        fault = _fault(check) or ("interrupted" if stop is not None and stop.is_set() else None)
        if fault:
            break
        now = time.monotonic()
        silence = idle_timeout_s if last is not None or first_pdu_timeout_s is None else first_pdu_timeout_s
        if now - t0 > deadline_s or now - (last if last is not None else t0) > silence:
            break
        link.drain_stats()
        try:
            msg = link.rx.recv()
        except zmq.Again:
            continue
        accepted = accept_message(got, msg)
        if accepted is not None:
            metas.append(accepted[1])
            last = time.monotonic()
            if on_pdu is not None:
                on_pdu(accepted[0])
    data, _ = got.assemble()
    return ReceivedStream(data, got.lost, len(got.received), got.total, time.monotonic() - t0, metas, fault)
