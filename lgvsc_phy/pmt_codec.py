"""Pure-Python codec for GNU Radio's serialized PMT, enough for PDUs over ZeroMQ.

GNU Radio's ``zeromq.*_msg_*`` blocks send ``pmt.serialize_str(pdu)``, where a PDU is
``cons(metadata_dict_or_nil, u8vector)``. This module writes and reads that format byte for byte
(tags from gnuradio/pmt/pmt_serial_tags.h), so the semantic processes need no GNU Radio.
Parsing is bounded: lengths are checked against the remaining bytes and nesting depth is capped.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

import numpy as np

PST_TRUE, PST_FALSE, PST_SYMBOL, PST_INT32, PST_DOUBLE = 0x00, 0x01, 0x02, 0x03, 0x04
PST_COMPLEX, PST_NULL, PST_PAIR, PST_VECTOR, PST_DICT = 0x05, 0x06, 0x07, 0x08, 0x09
PST_UNIFORM_VECTOR, PST_UINT64, PST_TUPLE, PST_INT64 = 0x0A, 0x0B, 0x0C, 0x0D

# Uniform-vector subtypes: numpy dtype of the elements, big-endian on the wire. u8 vectors are
# read back as bytes, the others as native-endian numpy arrays.
_UVECTOR = {
    0x00: np.dtype("u1"), 0x01: np.dtype("i1"), 0x02: np.dtype(">u2"), 0x03: np.dtype(">i2"),
    0x04: np.dtype(">u4"), 0x05: np.dtype(">i4"), 0x06: np.dtype(">u8"), 0x07: np.dtype(">i8"),
    0x08: np.dtype(">f4"), 0x09: np.dtype(">f8"), 0x0A: np.dtype(">c8"), 0x0B: np.dtype(">c16"),
}
_UVECTOR_OF = {dt.newbyteorder("="): subtype for subtype, dt in _UVECTOR.items()}
MAX_DEPTH = 32


class PmtError(ValueError):
    """A byte string that is not a valid serialized PMT (or not a PDU)."""


def encode_pdu(payload: bytes, meta: dict[str, Any] | None = None) -> bytes:
    """Serialize ``cons(meta or NIL, u8vector(payload))`` exactly as ``pmt.serialize_str`` does."""
    car = _encode_dict(meta) if meta else bytes([PST_NULL])
    return bytes([PST_PAIR]) + car + _encode_u8vector(payload)


def encode_pair(meta: dict[str, Any] | None, data: bytes | np.ndarray) -> bytes:
    """``cons(meta or NIL, uniform vector)``: a PDU of bytes, or of complex/float samples (what
    the receiver hands the decoder). Much faster than building the PMT element by element."""
    car = _encode_dict(meta) if meta else bytes([PST_NULL])
    return bytes([PST_PAIR]) + car + _encode_value(data)


def decode_pair(data: bytes) -> tuple[dict[str, Any], Any]:
    """Parse ``cons(meta, value)``; uniform vectors come back as numpy arrays (u8: bytes)."""
    reader = _Reader(data)
    if reader.u8() != PST_PAIR:
        raise PmtError("not a pair")
    meta = reader.read(0)
    value = reader.read(0)
    if meta is not None and not isinstance(meta, dict):
        raise PmtError("pair metadata is not a dict")
    if reader.pos != len(data):
        raise PmtError(f"{len(data) - reader.pos} trailing bytes after pair")
    return meta or {}, value


def decode_pdu(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a serialized PDU; returns (metadata, payload). Raises PmtError on anything else."""
    value, end = _Reader(data).read_pair_pdu()
    if end != len(data):
        raise PmtError(f"{len(data) - end} trailing bytes after PDU")
    return value


def _encode_u8vector(payload: bytes) -> bytes:
    # npad = 1 pad byte after the length, as GNU Radio writes it (for every element type).
    return bytes([PST_UNIFORM_VECTOR, 0x00]) + struct.pack(">I", len(payload)) + b"\x01\x00" + payload


def _encode_uvector(values: np.ndarray) -> bytes:
    subtype = _UVECTOR_OF.get(values.dtype.newbyteorder("="))
    if subtype is None:
        raise PmtError(f"no PMT uniform vector of {values.dtype}")
    raw = np.ascontiguousarray(values.reshape(-1), dtype=_UVECTOR[subtype]).tobytes()
    return bytes([PST_UNIFORM_VECTOR, subtype]) + struct.pack(">I", values.size) + b"\x01\x00" + raw


@lru_cache(maxsize=256)  # metadata keys repeat in every PDU; bounded for arbitrary strings
def _encode_symbol(name: str) -> bytes:
    raw = name.encode()
    return bytes([PST_SYMBOL]) + struct.pack(">H", len(raw)) + raw


def _encode_value(value: Any) -> bytes:
    if value is None:
        return bytes([PST_NULL])
    if isinstance(value, bool):
        return bytes([PST_TRUE if value else PST_FALSE])
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return bytes([PST_INT32]) + struct.pack(">i", value)
        return bytes([PST_INT64]) + struct.pack(">q", value)
    if isinstance(value, float):
        return bytes([PST_DOUBLE]) + struct.pack(">d", value)
    if isinstance(value, str):
        return _encode_symbol(value)
    if isinstance(value, (bytes, bytearray)):
        return _encode_u8vector(bytes(value))
    if isinstance(value, np.ndarray):
        return _encode_uvector(value)
    raise PmtError(f"cannot encode {type(value).__name__} as PMT")


_DICT_ENTRY = bytes([PST_DICT, PST_PAIR])


def _encode_dict(meta: dict[str, Any]) -> bytes:
    # GNU Radio serializes a dict as nested pairs: (key . value) . rest, ending in NIL;
    # dict_add prepends, so the last key added comes first.
    parts = []
    for key, value in reversed(meta.items()):
        parts += (_DICT_ENTRY, _encode_symbol(key), _encode_value(value))
    parts.append(bytes([PST_NULL]))
    return b"".join(parts)


# The link decodes several messages per burst: precompiled layouts, not struct's format cache.
_STRUCTS = {fmt: struct.Struct(">" + fmt) for fmt in ("H", "I", "i", "Q", "q", "d", "dd")}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PmtError(f"truncated PMT: need {n} bytes at offset {self.pos}, have {len(self.data) - self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise PmtError(f"truncated PMT: need 1 byte at offset {self.pos}")
        self.pos += 1
        return self.data[self.pos - 1]

    def unpack(self, fmt: str) -> Any:
        layout = _STRUCTS.get(fmt) or struct.Struct(">" + fmt)
        if self.pos + layout.size > len(self.data):
            raise PmtError(f"truncated PMT: need {layout.size} bytes at offset {self.pos}")
        self.pos += layout.size
        return layout.unpack_from(self.data, self.pos - layout.size)

    def read_pair_pdu(self) -> tuple[tuple[dict[str, Any], bytes], int]:
        if self.u8() != PST_PAIR:
            raise PmtError("not a PDU: expected a pair")
        meta = self.read(0)
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise PmtError("not a PDU: metadata is not a dict")
        payload = self.read(0)
        if not isinstance(payload, (bytes, bytearray)):
            raise PmtError("not a PDU: payload is not a u8vector")
        return (meta, bytes(payload)), self.pos

    def read(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise PmtError("PMT nested too deeply")
        tag = self.u8()
        if tag == PST_NULL:
            return None
        if tag in (PST_TRUE, PST_FALSE):
            return tag == PST_TRUE
        if tag == PST_SYMBOL:
            (n,) = self.unpack("H")
            return self.take(n).decode("utf-8", errors="replace")
        if tag == PST_INT32:
            return self.unpack("i")[0]
        if tag == PST_UINT64:
            return self.unpack("Q")[0]
        if tag == PST_INT64:
            return self.unpack("q")[0]
        if tag == PST_DOUBLE:
            return self.unpack("d")[0]
        if tag == PST_COMPLEX:
            re, im = self.unpack("dd")
            return complex(re, im)
        if tag == PST_PAIR:
            return (self.read(depth + 1), self.read(depth + 1))
        if tag == PST_DICT:
            return self.read_dict(depth)
        if tag in (PST_VECTOR, PST_TUPLE):
            (n,) = self.unpack("I")
            if n > len(self.data) - self.pos:
                raise PmtError("vector longer than message")
            return tuple(self.read(depth + 1) for _ in range(n))
        if tag == PST_UNIFORM_VECTOR:
            return self.read_uvector()
        raise PmtError(f"unknown PMT tag 0x{tag:02x} at offset {self.pos - 1}")

    def read_dict(self, depth: int) -> dict[str, Any]:
        # We are just past a PST_DICT: expect (key . value) then the rest of the dict.
        entries: dict[str, Any] = {}
        while True:
            if self.u8() != PST_PAIR:
                raise PmtError("malformed dict entry")
            key = self.read(depth + 1)
            entries.setdefault(str(key), self.read(depth + 1))
            nxt = self.u8()
            if nxt == PST_NULL:
                return entries
            if nxt != PST_DICT:
                raise PmtError("malformed dict tail")

    def read_uvector(self) -> Any:
        subtype = self.u8()
        (n,) = self.unpack("I")
        npad = self.u8()
        self.take(npad)
        if subtype not in _UVECTOR:
            raise PmtError(f"unknown uniform vector type 0x{subtype:02x}")
        dtype = _UVECTOR[subtype]
        raw = self.take(n * dtype.itemsize)
        if subtype == 0x00:
            return raw
        return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
