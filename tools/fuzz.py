"""Fuzz the receiver: semantic streams and link PDUs, damaged the ways a radio link and an
attacker damage them, must never crash, hang or allocate without bound.

    python -m tools.fuzz --cases 100000 --pdu-cases 10000 [--workers 2] [--json out/fuzz.json]
    python -m tools.fuzz --replay stream:1234      # one case again, in this process, with its traceback

Stream cases mutate real LGVSC bitstreams (small clips cut from the bundled videos: a cut, odd
sizes, descriptions) with bit flips, bursts, zero-filled PDUs, truncation, insertion, deletion,
duplicated and reordered segments, lying length fields and forged segments and headers with
valid CRCs, then decode with ``interp``: the output must have exactly the header's frame count,
or, when no intact header is left, one ``DecoderError`` line. PDU cases cut a stream into link
PDUs, wrap them in PMT as the rx flowgraph does, and damage the messages (corrupt PMT, wrong
lengths, duplicates, reordering, replays from another stream, forged PDUs claiming huge offsets)
before the link's own receive gate (``accept_message``) and the progressive decoder.

Cases run in worker processes with an address-space limit; a case silent for ``--timeout``
seconds is a hang, a dead worker or an unexpected exception a crash. Each case is a pure
function of (seed, kind, index), so ``--replay`` reproduces any failure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import struct
import sys
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache

import numpy as np

KINDS = ("stream", "pdu")
CaseFn = Callable[[str, int, int], dict]


# ---------------------------------------------------------------- corpus


@lru_cache(maxsize=1)
def corpus() -> tuple[bytes, ...]:
    """Valid streams from real footage, small so a case decodes in milliseconds: bikes, a clip
    with a hard cut (bigbuckbunny then bikes), an odd-sized crop; with and without text; keyframe
    track and intra images."""
    import cv2

    from lgvsc.sample_videos import sample_video
    from semantic.encoder import EncoderConfig, FrameSource, encode_source
    from semantic.video_io import Video, read_video

    def small(name: str, size: tuple[int, int], frames: int, crop: slice = slice(None)) -> np.ndarray:
        v = read_video(sample_video(name), max_frames=frames).frames
        return np.stack([cv2.resize(f[crop], size, interpolation=cv2.INTER_AREA) for f in v])

    bikes = small("bikes", (96, 40), 24)
    cut = np.concatenate([small("bigbuckbunny", (96, 40), 12), bikes[:12]])
    odd = small("bigbuckbunny", (45, 37), 16, np.s_[20:220, 100:400])
    streams = []
    # The keyframe track by default; one stream of intra images (WebP/AVIF), the other mode; one
    # layered stream (a base layer beside the track).
    for frames, budget, describe, images, base in ((bikes, 1500, "tags", "track", None),
                                                   (cut, 2500, "tags", "track", None),
                                                   (odd, 900, "none", "track", None),
                                                   (bikes, 600, "none", "track", None),
                                                   (cut, 2000, "none", "intra", None),
                                                   (cut, 2500, "none", "track", 700)):
        video = Video(frames, Fraction(25))
        config = EncoderConfig(byte_budget=budget, describe=describe, images=images, base_bytes=base)
        encoded = encode_source(FrameSource.of_video(video), config)
        streams.append(encoded.data)
    return tuple(streams)


# ---------------------------------------------------------------- stream mutations


def _segment_starts(data: bytes) -> list[int]:
    from semantic.bitstream import SYNC

    out, pos = [], data.find(SYNC)
    while pos >= 0:
        out.append(pos)
        pos = data.find(SYNC, pos + 1)
    return out


def _flip(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.geometric(0.3))):
        i = int(rng.integers(len(out) * 8))
        out[i // 8] ^= 1 << (i % 8)
    return bytes(out)


def _burst(data: bytes, rng: np.random.Generator) -> bytes:
    start, n = int(rng.integers(len(data))), int(rng.integers(1, 64))
    return data[:start] + rng.bytes(n) + data[start + n:]


def _zero_pdu(data: bytes, rng: np.random.Generator) -> bytes:
    """A lost link PDU: a run of a PDU's size zero-filled, as the reassembly leaves it."""
    n = int(rng.choice([27, 66, 87, 180, 240]))
    start = int(rng.integers(len(data))) // n * n
    return data[:start] + bytes(min(n, len(data) - start)) + data[start + n:]


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(len(data) + 1))]


def _insert(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(len(data) + 1))
    return data[:at] + rng.bytes(int(rng.integers(1, 200))) + data[at:]


def _delete(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(len(data)))
    return data[:at] + data[at + int(rng.integers(1, 200)):]


def _duplicate(data: bytes, rng: np.random.Generator) -> bytes:
    a = int(rng.integers(len(data)))
    b = min(len(data), a + int(rng.integers(1, 400)))
    at = int(rng.integers(len(data) + 1))
    return data[:at] + data[a:b] + data[at:]


def _reorder(data: bytes, rng: np.random.Generator) -> bytes:
    """Whole segments shuffled (the header copies stay where they are)."""
    starts = _segment_starts(data)
    if len(starts) < 3:
        return data
    pieces = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)], strict=True)]
    order = rng.permutation(len(pieces))
    return data[: starts[0]] + b"".join(pieces[i] for i in order)


def _lie_length(data: bytes, rng: np.random.Generator) -> bytes:
    """A segment's length field rewritten and its CRC recomputed, so the lie parses: the same
    type and index, packed around whatever bytes follow (zeros past the end)."""
    from semantic.bitstream import SEGMENT_PREFIX, Segment, SegmentType, segment_prefix_at

    starts = _segment_starts(data)
    if not starts:
        return data
    pos = int(rng.choice(starts))
    prefix = segment_prefix_at(data, pos)
    if prefix is None or prefix[0] not in {t.value for t in SegmentType}:
        return data  # a sync word inside a payload, or of no type: the parser passes it over anyway
    kind, index, _ = prefix
    length = int(rng.choice([0, 1, 2, 3, 7, 8, 0xFFFF, int(rng.integers(0x10000))]))
    start = pos + SEGMENT_PREFIX
    payload = data[start: start + length].ljust(length, b"\0")
    return data[:pos] + Segment(SegmentType(kind), index, payload).pack() + data[start + length:]


def _damage(payload: bytes, rng: np.random.Generator) -> bytes:
    """A packer's honest payload made to lie: bytes near the front rewritten (where every
    layout keeps its counts, lengths and modes), the end cut or extended, or left as packed."""
    out = bytearray(payload)
    how = int(rng.integers(4))
    if how == 0 and out:
        for _ in range(int(rng.integers(1, 3))):
            at = min(int(rng.geometric(0.4)) - 1, len(out) - 1)
            out[at] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, int(rng.integers(256))]))
    elif how == 1:
        del out[int(rng.integers(len(out) + 1)):]
    elif how == 2:
        out += rng.bytes(int(rng.integers(1, 8)))
    return bytes(out)


def _forge_segment(data: bytes, rng: np.random.Generator) -> bytes:
    """A CRC-valid segment of any type whose payload lies: built by the bitstream's own packers
    from huge frame indices and sizes, NaN motion, unsorted or repeated frames, then damaged
    (counts beyond the payload, odd lengths, unknown modes); garbage images and text."""
    from semantic import bitstream as bs
    from semantic.bitstream import KeyframeImage, Segment, SegmentType

    def frames(n: int) -> list[int]:
        return sorted(int(v) for v in rng.choice([0, 1, 23, 24, 65535, 2**32 - 1, int(rng.integers(2**32))], n))

    def floats(n: int) -> list[float]:
        return [float(v) for v in rng.choice([np.nan, np.inf, -np.inf, 65504.0, -65504.0, -1.0, 2.0, 3.0], n)]

    def coefficients(n: int) -> tuple[int, ...]:
        return (int(rng.integers(256)), *(int(v) for v in rng.integers(-128, 128, n - 1)))

    kind = SegmentType(int(rng.choice([t.value for t in SegmentType])))
    chroma = int(rng.integers(1, 70))
    choices = {
        SegmentType.KEYFRAME_IMAGE: lambda: KeyframeImage(int(rng.choice([0, 5, 2**32 - 1])),
                                                          int(rng.choice([1, 96, 65535])),
                                                          int(rng.choice([1, 40, 65535])), rng.bytes(40)).pack(),
        SegmentType.KEYFRAME_TIMING: lambda: bs.pack_timing(frames(int(rng.integers(0, 8))),
                                                            frames(int(rng.integers(0, 4)))),
        SegmentType.MOTION: lambda: bs.pack_motion(floats(6)),
        SegmentType.PAN: lambda: bs.pack_pan(list(zip(floats(4), floats(4), strict=True))),
        SegmentType.PSSS: lambda: bs.pack_psss([float(p) for p in rng.uniform(-0.5, 1.5, int(rng.integers(0, 40)))]),
        SegmentType.TEXT: lambda: rng.bytes(int(rng.integers(0, 100))),
        SegmentType.TRACK: lambda: _forge_track(data, rng),
        SegmentType.BASE_TRACK: lambda: bytes([int(rng.choice([0, 1, 3, 255]))]) + _forge_track(data, rng),
        SegmentType.TIMING: lambda: bs.pack_timing_v2(frames(int(rng.integers(0, 30))),
                                                      frames(int(rng.integers(0, 4)))),
        SegmentType.LAYOUT: lambda: bs.pack_layout(coefficients(int(rng.integers(1, 70))), coefficients(chroma),
                                                   coefficients(chroma)),
    }
    payload = choices[kind]()
    lying = (SegmentType.KEYFRAME_IMAGE, SegmentType.TEXT, SegmentType.TRACK, SegmentType.BASE_TRACK)
    if kind not in lying:  # those lie already
        payload = _damage(payload, rng)
    segment = Segment(kind, int(rng.integers(0, 70000)) % 0x10000, payload).pack()
    at = int(rng.choice(_segment_starts(data) or [len(data)]))
    return data[:at] + segment + data[at:]


def _forge_track(data: bytes, rng: np.random.Generator) -> bytes:
    """A track chunk that lies: garbage, or the stream's own units damaged inside (AV1 data the
    decoder must survive), renumbered to any keyframe, with lengths that may not add up."""
    from semantic.bitstream import SegmentType, TrackChunk, parse_stream

    real = [unit for seg in parse_stream(data).of_type(SegmentType.TRACK) for unit in _units(seg.payload)]
    units = []
    for _ in range(int(rng.integers(1, 4))):
        unit = bytearray(real[int(rng.integers(len(real)))] if real and rng.random() < 0.8 else rng.bytes(30))
        for _ in range(int(rng.integers(1, 6))):
            if unit:
                unit[int(rng.integers(len(unit)))] ^= 1 << int(rng.integers(8))
        units.append(bytes(unit))
    payload = TrackChunk(int(rng.choice([0, 1, 5, 65535])), tuple(units)).pack()
    return payload if rng.random() < 0.8 else payload[: int(rng.integers(len(payload) + 1))]


def _units(payload: bytes) -> tuple[bytes, ...]:
    from semantic.bitstream import BitstreamError, TrackChunk

    try:
        return TrackChunk.unpack(payload).units
    except BitstreamError:
        return ()


def _lie_header(data: bytes, rng: np.random.Generator) -> bytes:
    """A CRC-valid stream header that lies: sizes beyond the limits, zero or absurd rates, a
    keyframe count or tag length that disagrees with the rest."""
    from semantic.bitstream import MAGIC, HeaderFields

    pos = data.find(MAGIC)
    found = HeaderFields.unpack_at(data, pos) if pos >= 0 else None
    if found is None:
        return data
    fields, end = found
    name, value = [("width", int(rng.choice([0, 9000, 65535]))), ("height", int(rng.choice([0, 65535]))),
                   ("fps_num", int(rng.choice([0, 1, 2**32 - 1]))), ("fps_den", int(rng.choice([0, 7]))),
                   ("frames", int(rng.choice([0, 1, 300, 2**32 - 1]))), ("keyframes", int(rng.integers(0x10000))),
                   ("tag_length", int(rng.integers(256)))][int(rng.integers(7))]
    return data[:pos] + replace(fields, **{name: value}).pack() + data[end:]


STREAM_MUTATORS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "flip": _flip, "burst": _burst, "zero_pdu": _zero_pdu, "truncate": _truncate, "insert": _insert,
    "delete": _delete, "duplicate": _duplicate, "reorder": _reorder, "lie_length": _lie_length,
    "forge_segment": _forge_segment, "lie_header": _lie_header,
}


def mutate_stream(data: bytes, rng: np.random.Generator) -> tuple[bytes, list[str]]:
    names = [str(n) for n in rng.choice(list(STREAM_MUTATORS), int(rng.integers(1, 4)))]
    for name in names:
        if data:
            data = STREAM_MUTATORS[name](data, rng)
    return data, names


def check_stream(data: bytes) -> str:
    """'decoded' or 'no-header'; raises on any failure of the receiver's promises, and when
    `inspect` cannot read what the decoder takes."""
    from semantic.bitstream import parse_stream
    from semantic.decoder import DecoderError, decode_bitstream
    from semantic.inspection import format_inspection, inspect_stream

    format_inspection(inspect_stream(data))

    header = parse_stream(data).header
    try:
        decoded = decode_bitstream(data, "interp")
    except DecoderError as exc:
        if header is not None or "\n" in str(exc):
            raise AssertionError(f"DecoderError with an intact header, or not one line: {exc}") from exc
        return "no-header"
    _check_frames(decoded)
    return "decoded"


def _check_frames(decoded: object) -> None:
    h = decoded.header
    count = 0
    for frame in decoded.iter_frames():
        if frame.shape != (h.height, h.width, 3) or frame.dtype != np.uint8:
            raise AssertionError(f"frame {count} is {frame.shape} {frame.dtype}, not {h.height}x{h.width}x3 uint8")
        count += 1
    if count != h.frames:
        raise AssertionError(f"{count} frames out, header says {h.frames}")


# ---------------------------------------------------------------- PDU mutations


def _messages(data: bytes, stream_id: int, mcs: str = "qpsk-1/2") -> list[bytes]:
    from lgvsc_phy.mcs import get_mcs
    from lgvsc_phy.pmt_codec import encode_pdu
    from lgvsc_phy.protection import Protection

    pdus = Protection.uniform(get_mcs(mcs)).pdus(data, stream_id)
    return [encode_pdu(p.pack(), {"snr_db": 10.0, "mcs": m.name, "seq": p.seq}) for p, m in pdus]


def _forged_pdu(rng: np.random.Generator, stream_id: int) -> bytes:
    """A CRC-valid link PDU that lies about its place: offsets and totals up to 2^32."""
    from lgvsc_phy.framing import LinkPdu
    from lgvsc_phy.pmt_codec import encode_pdu

    total = int(rng.choice([1, 5, 2**20, 2**32 - 1]))
    seq = int(rng.integers(0, min(total, 2**31) + 1))
    offset = int(rng.choice([0, 100, 2**26, 2**32 - 200]))
    return encode_pdu(LinkPdu(stream_id, seq, total, offset, rng.bytes(int(rng.integers(0, 120)))).pack())


def _pmt_damage(msg: bytes, rng: np.random.Generator) -> bytes:
    how = int(rng.integers(5))
    if how == 0:
        return _flip(msg, rng)
    if how == 1:
        return msg[: int(rng.integers(len(msg) + 1))]
    if how == 2:
        return msg + rng.bytes(int(rng.integers(1, 50)))
    if how == 3:  # the u8vector's length field lies
        out = bytearray(msg)
        at = msg.find(b"\x0a\x00")
        if at >= 0 and at + 6 <= len(out):
            struct.pack_into(">I", out, at + 2, int(rng.choice([0, 1, 2**31, 2**32 - 1])))
        return bytes(out)
    return rng.bytes(int(rng.integers(0, 80)))


def mutate_messages(msgs: list[bytes], stream_id: int, rng: np.random.Generator) -> tuple[list[bytes], list[str]]:
    names = []
    for _ in range(int(rng.integers(1, 4))):
        how = str(rng.choice(["drop", "duplicate", "reorder", "replay", "damage", "forge", "garbage"]))
        names.append(how)
        if how == "drop" and msgs:
            keep = rng.random(len(msgs)) > rng.uniform(0.05, 0.6)
            msgs = [m for m, k in zip(msgs, keep, strict=True) if k]
        elif how == "duplicate" and msgs:
            msgs = msgs + [msgs[int(i)] for i in rng.integers(0, len(msgs), int(rng.integers(1, 6)))]
        elif how == "reorder":
            msgs = [msgs[int(i)] for i in rng.permutation(len(msgs))]
        elif how == "replay":  # PDUs of another stream: same id with another length, or another id
            other = corpus()[int(rng.integers(len(corpus())))]
            foreign = _messages(other[: int(rng.integers(1, len(other)))],
                                stream_id if rng.random() < 0.5 else stream_id + 1)
            at = int(rng.integers(len(msgs) + 1))
            msgs = msgs[:at] + foreign[: int(rng.integers(1, 8))] + msgs[at:]
        elif how == "damage" and msgs:
            i = int(rng.integers(len(msgs)))
            msgs = msgs[:i] + [_pmt_damage(msgs[i], rng)] + msgs[i + 1:]
        elif how == "forge":
            msgs = msgs[:] + [_forged_pdu(rng, stream_id) for _ in range(int(rng.integers(1, 4)))]
        elif how == "garbage":
            msgs = [rng.bytes(int(rng.integers(0, 300)))] + msgs
    return msgs, names


def check_messages(msgs: list[bytes]) -> str:
    """Through the link's receive gate and the progressive decoder, as ``lgvsc receive`` does."""
    from lgvsc_phy.framing import MAX_STREAM_BYTES, Reassembly
    from lgvsc_phy.link import accept_message
    from semantic.decoder import DecoderError
    from semantic.progressive import ProgressiveStream

    got, stream = Reassembly(None, 0, {}), ProgressiveStream("interp")
    for msg in msgs:
        accepted = accept_message(got, msg)
        if accepted is not None:
            stream.add(accepted[0].offset, accepted[0].payload)
    stream.finish()
    if len(stream.data) > MAX_STREAM_BYTES:
        raise AssertionError(f"receiver holds {len(stream.data)} bytes")
    try:
        decoded = stream.decoded()
    except DecoderError as exc:
        if "\n" in str(exc):
            raise AssertionError(f"multi-line error: {exc}") from exc
        return "no-header"
    _check_frames(decoded)
    return "decoded"


# ---------------------------------------------------------------- cases and the harness


def run_case(kind: str, seed: int, index: int) -> dict:
    """One case, deterministic in (seed, kind, index): {'outcome', 'mutations'}."""
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    base = corpus()[int(rng.integers(len(corpus())))]
    if kind == "stream":
        data, names = mutate_stream(base, rng)
        return {"outcome": check_stream(data), "mutations": names}
    stream_id = int(rng.integers(1, 0xFFF0))
    msgs, names = mutate_messages(_messages(base, stream_id, str(rng.choice(["bpsk-1/2", "qpsk-2/3", "16qam-3/4"]))),
                                  stream_id, rng)
    return {"outcome": check_messages(msgs), "mutations": names}


def _limit_memory(max_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def _worker(case_fn: CaseFn, kind: str, seed: int, indices: list[int], conn: object, mem_bytes: int) -> None:
    _limit_memory(mem_bytes)
    if case_fn is run_case:
        corpus()  # before the first case's clock starts
    conn.send(("ready",))
    for i in indices:
        conn.send(("start", i))
        try:
            result = case_fn(kind, seed, i)
            conn.send(("ok", i, result["outcome"], result["mutations"]))
        except BaseException as exc:  # noqa: BLE001 - every failure is a finding, reported to the parent
            conn.send(("crash", i, f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=-3)))


@dataclass
class KindReport:
    cases: int = 0
    crashes: int = 0
    hangs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    mutations: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict:
        return {"cases": self.cases, "crashes": self.crashes, "hangs": self.hangs, "outcomes": dict(self.outcomes),
                "mutations": dict(self.mutations), "failures": self.failures[:50], "wall_s": round(self.wall_s, 1),
                "cases_per_s": round(self.cases / self.wall_s, 1) if self.wall_s else None}


@dataclass
class _Worker:
    proc: mp.Process
    conn: object
    todo: deque[int]  # indices not yet reported, in the order the worker runs them
    current: int | None = None  # the case running now
    since: float = 0.0


def run_fuzz(kind: str, cases: int, seed: int = 1, workers: int = 2, timeout_s: float = 10.0,
             mem_bytes: int = 3 << 30, case_fn: CaseFn = run_case) -> KindReport:
    """``cases`` cases over ``workers`` processes; a worker that dies or goes silent is replaced
    and resumes after the case that killed it."""
    # spawn, not fork: a fork of a process whose thread pools (OpenMP, OpenCV) are busy or
    # initialized can deadlock in the child, which would read as a hang of the receiver
    ctx = mp.get_context("spawn")
    report, t0 = KindReport(), time.monotonic()
    live: list[_Worker] = []

    def start(todo: list[int]) -> None:
        if todo:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(case_fn, kind, seed, todo, child, mem_bytes), daemon=True)
            proc.start()
            child.close()
            live.append(_Worker(proc, parent, deque(todo)))

    for w in range(workers):
        start(list(range(cases))[w::workers])
    while live:
        for worker in list(live):
            if _pump(worker, report, kind):
                continue
            hung = worker.current is not None and time.monotonic() - worker.since > timeout_s
            if not worker.todo:
                worker.proc.join(5)
            elif not hung and worker.proc.is_alive():
                continue
            else:
                worker.proc.kill()
                worker.proc.join()
                culprit = worker.todo.popleft()  # cases run in order: the next unreported one
                why = "hang" if hung else f"worker died (exit {worker.proc.exitcode})"
                _record(report, kind, ("hang" if hung else "crash", culprit, why, ""))
                start(list(worker.todo))
            live.remove(worker)
    report.wall_s = time.monotonic() - t0
    return report


def _pump(worker: _Worker, report: KindReport, kind: str) -> bool:
    """Take one message from the worker; False when there is none."""
    if not worker.conn.poll(0.02):
        return False
    try:
        msg = worker.conn.recv()
    except EOFError:
        return False
    if msg[0] == "ready":
        pass
    elif msg[0] == "start":
        worker.current, worker.since = msg[1], time.monotonic()
    else:
        worker.current = None
        worker.todo.popleft()
        _record(report, kind, msg)
    return True


def _record(report: KindReport, kind: str, msg: tuple) -> None:
    status, index = msg[0], msg[1]
    report.cases += 1
    if status == "ok":
        report.outcomes[msg[2]] += 1
        report.mutations.update(msg[3])
        return
    if status == "hang":
        report.hangs += 1
    else:
        report.crashes += 1
    report.failures.append({"case": f"{kind}:{index}", "error": msg[2], "trace": msg[3]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="stream cases")
    ap.add_argument("--pdu-cases", type=int, help="PDU cases (default: a tenth of --cases)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds a case may take before it is a hang")
    ap.add_argument("--mem-gb", type=float, default=3.0, help="address-space limit per worker")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--replay", metavar="KIND:INDEX", help="run one case here, with its traceback")
    args = ap.parse_args(argv)
    if args.replay:
        kind, index = args.replay.split(":")
        print(json.dumps(run_case(kind, args.seed, int(index))))
        return 0
    pdu_cases = args.pdu_cases if args.pdu_cases is not None else max(1, args.cases // 10)
    summary = {}
    for kind, n in (("stream", args.cases), ("pdu", pdu_cases)):
        report = run_fuzz(kind, n, args.seed, args.workers, args.timeout, int(args.mem_gb * 2**30))
        summary[kind] = report.as_dict()
        print(f"fuzz {kind}: {report.cases} cases, {report.crashes} crashes, {report.hangs} hangs, "
              f"{dict(report.outcomes)}, {report.wall_s:.0f} s ({summary[kind]['cases_per_s']}/s)")
        for failure in report.failures[:5]:
            print(f"  {failure['case']}: {failure['error']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 1 if any(s["crashes"] or s["hangs"] for s in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
