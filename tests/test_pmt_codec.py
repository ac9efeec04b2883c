"""Our pure-Python PMT codec against GNU Radio's own pmt, byte for byte."""

from __future__ import annotations

import numpy as np
import pmt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgvsc_phy.pmt_codec import PmtError, decode_pair, decode_pdu, encode_pair, encode_pdu


def gr_pdu(payload: bytes, meta: pmt.pmt_t = pmt.PMT_NIL) -> bytes:
    return pmt.serialize_str(pmt.cons(meta, pmt.init_u8vector(len(payload), list(payload))))


@given(st.binary(max_size=600))
@settings(max_examples=50, deadline=None)
def test_encode_matches_gnuradio(payload: bytes) -> None:
    assert encode_pdu(payload) == gr_pdu(payload)


def test_encode_with_metadata_matches_gnuradio() -> None:
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, pmt.intern("count"), pmt.from_long(7))
    meta = pmt.dict_add(meta, pmt.intern("snr_db"), pmt.from_double(3.25))
    # Keys in the order they are added, as with pmt.dict_add (which serializes the last one first).
    assert encode_pdu(b"abc", {"count": 7, "snr_db": 3.25}) == gr_pdu(b"abc", meta)


def test_decode_gnuradio_metadata_types() -> None:
    meta = pmt.make_dict()
    for key, value in (("i", pmt.from_long(-5)), ("u", pmt.from_uint64(2**40)), ("d", pmt.from_double(1.5)),
                       ("s", pmt.intern("qpsk")), ("b", pmt.PMT_T),
                       ("v", pmt.init_f32vector(3, [1.0, 2.0, 3.5]))):
        meta = pmt.dict_add(meta, pmt.intern(key), value)
    got_meta, payload = decode_pdu(gr_pdu(b"\x00\xff", meta))
    assert payload == b"\x00\xff"
    assert got_meta["i"] == -5 and got_meta["u"] == 2**40 and got_meta["d"] == 1.5
    assert got_meta["s"] == "qpsk" and got_meta["b"] is True
    assert list(got_meta["v"]) == [1.0, 2.0, 3.5]


@pytest.mark.parametrize("bad", [b"", b"\x07", b"\x07\x06\x0a\x00\xff\xff\xff\xff\x01\x00", b"\x02\x00\x01a",
                                 gr_pdu(b"x") + b"junk"])
def test_decode_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(PmtError):
        decode_pdu(bad)


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_decode_never_crashes_on_garbage(data: bytes) -> None:
    try:
        decode_pdu(data)
    except PmtError:
        pass


@pytest.mark.parametrize("dtype", [np.complex64, np.float32, np.uint8])
def test_sample_pairs_match_gnu_radio_byte_for_byte(dtype: type) -> None:
    """What the receiver hands the decoder: cons({..., csi: f32vector}, c32vector), built by us."""
    rng = np.random.default_rng(3)
    values = (rng.standard_normal(37) * 100).astype(dtype) if dtype != np.complex64 else \
        (rng.standard_normal(37) + 1j * rng.standard_normal(37)).astype(dtype)
    csi = rng.random(5).astype(np.float32)
    meta = pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("csi"), pmt.init_f32vector(5, csi.tolist())),
                        pmt.intern("seq"), pmt.from_long(7))
    init = {np.complex64: pmt.init_c32vector, np.float32: pmt.init_f32vector, np.uint8: pmt.init_u8vector}[dtype]
    reference = pmt.serialize_str(pmt.cons(meta, init(values.size, values.tolist())))
    assert encode_pair({"csi": csi, "seq": 7}, values if dtype != np.uint8 else values.tobytes()) == reference
    got_meta, got = decode_pair(reference)
    assert got_meta["seq"] == 7 and np.array_equal(got_meta["csi"], csi)
    assert (got == values.tobytes()) if dtype == np.uint8 else (np.array_equal(got, values) and got.dtype == dtype)


def test_decode_pair_rejects_damage() -> None:
    good = encode_pair({"seq": 1}, np.ones(4, np.complex64))
    for bad in (good[:-1], good + b"\x00", b"\x06", bytes([0x07, 0x0A, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00])):
        with pytest.raises(PmtError):
            decode_pair(bad)
