from __future__ import annotations

import os

import pytest

from lgvsc_phy.framing import OVERHEAD_BYTES, FramingError, LinkPdu, Reassembly, split_stream


def test_round_trip_and_sizes() -> None:
    data = os.urandom(5000)
    pdus = split_stream(data, stream_id=3, max_pdu_bytes=237)
    assert all(len(p.pack()) <= 237 for p in pdus)
    assert [p.seq for p in pdus] == list(range(len(pdus)))
    got = Reassembly(None, 0, {})
    for p in reversed(pdus):
        assert got.add(LinkPdu.unpack(p.pack()))
    assert got.complete and got.assemble() == (data, [])


def test_every_single_bit_flip_is_detected() -> None:
    packed = split_stream(b"hello semantic world", 1, 64)[0].pack()
    for i in range(len(packed) * 8):
        bad = bytearray(packed)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FramingError):
            LinkPdu.unpack(bytes(bad))


def test_losses_are_reported_and_zero_filled() -> None:
    data = bytes(range(256)) * 8
    pdus = split_stream(data, 1, 100)
    chunk = 100 - OVERHEAD_BYTES
    got = Reassembly(None, 0, {})
    for p in pdus:
        if p.seq not in (2, 5):
            got.add(p)
    assembled, gaps = got.assemble()
    assert got.lost == [2, 5] and not got.complete
    assert gaps == [(2 * chunk, 3 * chunk), (5 * chunk, 6 * chunk)]
    assert assembled[:2 * chunk] == data[:2 * chunk] and assembled[2 * chunk:3 * chunk] == bytes(chunk)


def test_strays_and_duplicates_are_ignored() -> None:
    a, b = split_stream(b"a" * 300, 1, 100), split_stream(b"b" * 300, 2, 100)
    got = Reassembly(None, 0, {})
    assert got.add(a[0]) and not got.add(a[0]) and not got.add(b[1])
