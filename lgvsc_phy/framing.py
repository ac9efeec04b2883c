"""Link-layer PDU framing: a byte stream cut into CRC32-protected, numbered PDUs.

Wire format of one PDU (big-endian)::

    magic 0x4C 'L' | version u8 | stream_id u16 | seq u32 | total u32 | offset u32 | payload | crc32 u32

``total`` (PDUs in the stream) travels in every PDU, so a receiver knows what it lost even when the
first or last PDU is missing; ``offset`` places the payload in the stream, so a loss leaves a gap of
known position rather than shifting everything after it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = 0x4C
VERSION = 1
_HEADER = struct.Struct(">BBHIII")
HEADER_BYTES = _HEADER.size
CRC_BYTES = 4
OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
# Bounds on what a PDU may claim, so a forged or corrupted one (CRC32 passes by chance once in
# 4e9) cannot make the receiver allocate gigabytes: a semantic stream is kilobytes, a 10-minute
# 720p one 2.3 MB, and the H.264 baselines stay far below these.
MAX_STREAM_PDUS = 1 << 20
MAX_STREAM_BYTES = 64 << 20


class FramingError(ValueError):
    """A PDU that fails its CRC or is malformed."""


@dataclass(frozen=True)
class LinkPdu:
    stream_id: int
    seq: int
    total: int
    offset: int
    payload: bytes

    def pack(self) -> bytes:
        body = _HEADER.pack(MAGIC, VERSION, self.stream_id, self.seq, self.total, self.offset) + self.payload
        return body + struct.pack(">I", zlib.crc32(body))

    @classmethod
    def unpack(cls, data: bytes) -> LinkPdu:
        if len(data) < OVERHEAD_BYTES:
            raise FramingError(f"PDU too short ({len(data)} bytes)")
        body, (crc,) = data[:-CRC_BYTES], struct.unpack(">I", data[-CRC_BYTES:])
        if zlib.crc32(body) != crc:
            raise FramingError("PDU CRC32 mismatch")
        magic, version, stream_id, seq, total, offset = _HEADER.unpack_from(body)
        if magic != MAGIC or version != VERSION:
            raise FramingError(f"unknown PDU magic/version {magic:#x}/{version}")
        if seq >= total:
            raise FramingError(f"PDU seq {seq} >= total {total}")
        payload = body[HEADER_BYTES:]
        if total > MAX_STREAM_PDUS or offset + len(payload) > MAX_STREAM_BYTES:
            raise FramingError(f"PDU claims {total} PDUs / offset {offset}: beyond the receiver's limits")
        return cls(stream_id, seq, total, offset, payload)


def split_stream(data: bytes, stream_id: int, max_pdu_bytes: int) -> list[LinkPdu]:
    """Cut ``data`` into PDUs of at most ``max_pdu_bytes`` on the wire (header and CRC included)."""
    chunk = max_pdu_bytes - OVERHEAD_BYTES
    if chunk <= 0:
        raise ValueError(f"max_pdu_bytes {max_pdu_bytes} leaves no room for payload")
    offsets = list(range(0, max(len(data), 1), chunk))
    total = len(offsets)
    return [LinkPdu(stream_id, i, total, off, data[off : off + chunk]) for i, off in enumerate(offsets)]


@dataclass
class Reassembly:
    """What arrived of one stream: bytes in place, gaps zero-filled and listed."""

    stream_id: int | None
    total: int
    received: dict[int, LinkPdu]

    def add(self, pdu: LinkPdu) -> bool:
        """Keep ``pdu`` if it belongs to this stream; False for strays and duplicates."""
        if self.stream_id is None:
            self.stream_id, self.total = pdu.stream_id, pdu.total
        if pdu.stream_id != self.stream_id or pdu.total != self.total or pdu.seq in self.received:
            return False
        self.received[pdu.seq] = pdu
        return True

    @property
    def lost(self) -> list[int]:
        return [i for i in range(self.total) if i not in self.received]

    @property
    def complete(self) -> bool:
        return self.total > 0 and len(self.received) == self.total

    def assemble(self) -> tuple[bytes, list[tuple[int, int]]]:
        """Return the stream with lost ranges zero-filled, and those (start, end) byte ranges."""
        if not self.received:
            return b"", []
        end = max(p.offset + len(p.payload) for p in self.received.values())
        out = bytearray(end)
        covered = bytearray(end)
        for pdu in self.received.values():
            out[pdu.offset : pdu.offset + len(pdu.payload)] = pdu.payload
            covered[pdu.offset : pdu.offset + len(pdu.payload)] = b"\x01" * len(pdu.payload)
        return bytes(out), _zero_runs(covered)


def _zero_runs(mask: bytearray) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, v in enumerate(mask):
        if not v and start is None:
            start = i
        elif v and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs
