"""Our pure-Python PMT codec against GNU Radio's own pmt, byte for byte."""

from __future__ import annotations

import pmt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgvsc_phy.pmt_codec import PmtError, decode_pdu, encode_pdu


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
