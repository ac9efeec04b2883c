"""PHY frame: what one OFDM burst carries, coded with LDPC.

Info bits of a burst: ``length u16 | payload | crc32`` padded with zeros to whole codewords.
The coded bits of all codewords are interleaved by a fixed pseudo-random permutation of the
burst, so a faded stretch of carriers costs every codeword a little instead of one codeword a
lot (802.11 interleaves for the same reason), then packed LSB-first into bytes, the order the
mapper puts them on QAM symbols.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from lgvsc_phy.constellation import BPSK, Constellation
from lgvsc_phy.header import PhyHeader, encode_header
from lgvsc_phy.ldpc import LdpcCode

LEN_BYTES, CRC_BYTES = 2, 4
FRAME_OVERHEAD_BYTES = LEN_BYTES + CRC_BYTES


@dataclass(frozen=True)
class DecodedFrame:
    payload: bytes | None  # None when the CRC failed
    snr_db: float
    ldpc_iterations: int
    codewords: int
    raw_bit_errors: int = 0  # channel (pre-FEC) bit errors on the systematic bits, if decoded
    raw_bits: int = 0


@cache
def interleaver(length: int) -> np.ndarray:
    """Fixed permutation of ``length`` coded bits (the same on every machine: seeded by length)."""
    return np.random.default_rng(0x4C47 + length).permutation(length)


class PhyFrameCodec:
    """Payload bytes <-> coded bytes (tx), QAM symbols -> payload bytes (rx)."""

    def __init__(self, code: LdpcCode, constellation: Constellation, max_iter: int = 50) -> None:
        self.code, self.constellation, self.max_iter = code, constellation, max_iter

    def codewords_for(self, payload_bytes: int) -> int:
        return -(-(payload_bytes + FRAME_OVERHEAD_BYTES) * 8 // self.code.k)

    def max_payload(self, codewords: int) -> int:
        return codewords * self.code.k // 8 - FRAME_OVERHEAD_BYTES

    def coded_bytes(self, payload_bytes: int) -> int:
        return self.codewords_for(payload_bytes) * self.code.n // 8

    def payload_symbols(self, payload_bytes: int) -> int:
        return self.codewords_for(payload_bytes) * self.code.n // self.constellation.bits_per_symbol

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > 0xFFFF:
            raise ValueError(f"payload of {len(payload)} bytes exceeds a PHY frame")
        body = struct.pack(">H", len(payload)) + payload
        body += struct.pack(">I", zlib.crc32(body))
        cws = self.codewords_for(len(payload))
        bits = np.zeros(cws * self.code.k, dtype=np.uint8)
        raw = np.unpackbits(np.frombuffer(body, dtype=np.uint8), bitorder="little")
        bits[: raw.size] = raw
        coded = self.code.encode(bits.reshape(cws, self.code.k)).reshape(-1)
        return np.packbits(coded[interleaver(coded.size)], bitorder="little").tobytes()

    def decode_symbols(self, symbols: np.ndarray, csi: np.ndarray | None = None) -> DecodedFrame:
        """Equalized symbols -> payload. ``csi``: per-symbol 1 / noise variance from the receiver's
        channel estimate; without it a decision-directed estimate scales the LLRs."""
        symbols = np.asarray(symbols, dtype=np.complex64)
        bps = self.constellation.bits_per_symbol
        cws = symbols.size * bps // self.code.n
        if cws == 0:
            return DecodedFrame(None, float("nan"), 0, 0)
        symbols = symbols[: cws * self.code.n // bps]
        if csi is not None and len(csi) >= symbols.size:
            per_symbol = 1.0 / np.maximum(np.asarray(csi[: symbols.size], dtype=np.float32), np.float32(1e-6))
            noise_var = float(per_symbol.sum(dtype=np.float64)) / per_symbol.size
        else:
            per_symbol = noise_var = self.constellation.noise_var_estimate(symbols)
        # Demapped straight into deinterleaved order (bit i of the burst goes to interleaver[i]).
        llr = self.constellation.llr(symbols, per_symbol, interleaver(cws * self.code.n)).reshape(cws, self.code.n)
        result = self.code.decode(llr, self.max_iter)
        snr_db = float(10 * np.log10(1.0 / max(noise_var, 1e-9)))
        iters = int(result.iterations.max())
        raw_errors = int(np.count_nonzero((llr[:, : self.code.k] < 0).view(np.uint8) ^ result.bits))
        raw_bits = cws * self.code.k
        body = np.packbits(result.bits.reshape(-1), bitorder="little").tobytes()
        (length,) = struct.unpack(">H", body[:LEN_BYTES])
        end = LEN_BYTES + length
        if end + CRC_BYTES > len(body):
            return DecodedFrame(None, snr_db, iters, cws)
        (crc,) = struct.unpack(">I", body[end : end + CRC_BYTES])
        if zlib.crc32(body[:end]) != crc:
            return DecodedFrame(None, snr_db, iters, cws)
        return DecodedFrame(body[LEN_BYTES:end], snr_db, iters, cws, raw_errors, raw_bits)


class BurstMapper:
    """Link PDU -> the complex symbols of one burst: the coded header on BPSK (three OFDM
    symbols' worth), then the LDPC-coded payload on the MCS's constellation."""

    def __init__(self, codec: PhyFrameCodec, mcs_index: int) -> None:
        self.codec, self.mcs_index = codec, mcs_index

    def header_symbols(self, payload_bytes: int, seq: int) -> np.ndarray:
        return BPSK.map(encode_header(PhyHeader(self.mcs_index, payload_bytes, seq)))

    def payload_symbols(self, payload: bytes) -> np.ndarray:
        coded = np.frombuffer(self.codec.encode(payload), dtype=np.uint8)
        return self.codec.constellation.map(np.unpackbits(coded, bitorder="little"))

    def symbols(self, payload: bytes, seq: int) -> np.ndarray:
        return np.concatenate([self.header_symbols(len(payload), seq), self.payload_symbols(payload)])
