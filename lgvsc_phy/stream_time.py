"""Sample gaps from stream time tags, as a USRP source reports its overflows.

When the host falls behind, a UHD receiver loses whole transport frames of samples (an
overflow, "O" on the console). GNU Radio's ``usrp_source`` then tags the next sample with
``rx_time`` (a tuple: whole seconds as uint64, fractional seconds as double) and ``rx_rate``, as it
tags the stream's first sample. The samples lost between two tags are the time between them at
the sample rate less the samples that arrived. ``GapMeter`` turns tags into those counts; the
receiver fills each gap with as many zeros, so the symbols after it stay where the burst's
header put them, and the LDPC decoder treats the filled symbols as erasures.

``SampleDrops`` (the channel's model of overflows) tags its stream the same way. Every IQ hop
between our flowgraphs over ZeroMQ passes tags (tx.grc -> channel.grc -> rx.grc, and tx.grc ->
rx.grc for ``lgvsc send``/``receive``): each message starts with gr-zeromq's tag header, which
``zmq_header`` writes and ``split_zmq_message`` reads for code outside GNU Radio.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import pmt

RX_TIME = "rx_time"
RX_RATE = "rx_rate"
# gr-zeromq's tag header (gr-zeromq/lib/tag_headers.cc): magic, version, stream offset, tag count.
_ZMQ_MAGIC, _ZMQ_VERSION = 0x5FF0, 0x01
# A tag's source id, as gr-zeromq serializes it.
_SRCID = pmt.intern("lgvsc")


def time_pmt(seconds: float) -> pmt.pmt_t:
    """``rx_time``'s value for ``seconds``: (uint64 whole seconds, double fraction), as UHD."""
    whole = math.floor(seconds)
    return pmt.make_tuple(pmt.from_uint64(int(whole)), pmt.from_double(seconds - whole))


def time_of(value: pmt.pmt_t) -> tuple[int, float] | None:
    """(whole seconds, fraction) of an ``rx_time`` value, kept apart: one double of a GPS- or
    PC-clock time (~1.7e9 s) resolves only ~0.24 us, a sample at 4 MS/s. None where the value
    is not UHD's (uint64, double) tuple."""
    if not pmt.is_tuple(value) or pmt.length(value) != 2:
        return None
    whole, fraction = pmt.tuple_ref(value, 0), pmt.tuple_ref(value, 1)
    if not (pmt.is_uint64(whole) and pmt.is_real(fraction)):
        return None
    return pmt.to_uint64(whole), pmt.to_double(fraction)


def zmq_header(offset: int, tags: Sequence[tuple[int, str, pmt.pmt_t]] = ()) -> bytes:
    """The header gr-zeromq's sinks put before a message's samples when they pass tags:
    ``offset`` is the message's first sample in the sender's stream, and each tag is
    (stream offset, key, value). A ZeroMQ source with ``pass_tags`` needs it on every message."""
    head = struct.pack("<HBQQ", _ZMQ_MAGIC, _ZMQ_VERSION, offset, len(tags))
    body = b"".join(struct.pack("<Q", at) + pmt.serialize_str(pmt.intern(key)) + pmt.serialize_str(value)
                    + pmt.serialize_str(_SRCID) for at, key, value in tags)
    return head + body


def split_zmq_message(message: bytes) -> tuple[int, list[tuple[int, str, pmt.pmt_t]], bytes]:
    """(stream offset, tags, sample bytes) of a message a gr-zeromq sink with ``pass_tags`` sent."""
    if len(message) < struct.calcsize("<HBQQ"):
        raise ValueError("not a gr-zeromq message with tags: shorter than its header")
    magic, version, offset, count = struct.unpack_from("<HBQQ", message)
    if (magic, version) != (_ZMQ_MAGIC, _ZMQ_VERSION):
        raise ValueError("not a gr-zeromq message with tags (pass_tags off at the sender?)")
    at, tags = struct.calcsize("<HBQQ"), []
    for _ in range(count):
        (tag_offset,) = struct.unpack_from("<Q", message, at)
        key, at = _read_pmt(message, at + 8)
        value, at = _read_pmt(message, at)
        _srcid, at = _read_pmt(message, at)
        tags.append((tag_offset, pmt.symbol_to_string(key), value))
    return offset, tags, message[at:]


def _read_pmt(message: bytes, at: int) -> tuple[pmt.pmt_t, int]:
    """The PMT serialized at ``at`` and where the next field starts (pmt's Python API does not
    say how many bytes it read: its own serialization's length tells)."""
    value = pmt.deserialize_str(message[at:])
    return value, at + len(pmt.serialize_str(value))


@dataclass
class GapMeter:
    """Samples lost before each ``rx_time`` tag: the tag's time against the last tag's, at the
    rate of the last ``rx_rate`` tag, less the samples between them. Without a rate, or where
    the time goes back (a radio whose time was set anew), a tag only becomes the new reference."""

    rate: float = 0.0
    _ref: tuple[int, int, float] | None = None  # (stream offset, whole s, fraction) of the last rx_time tag

    def set_rate(self, rate: float) -> None:
        if rate > 0:
            self.rate = float(rate)

    def time_tag(self, offset: int, time: tuple[int, float]) -> int:
        """Samples missing just before stream ``offset``, whose time is ``time`` (``time_of``)."""
        ref, self._ref = self._ref, (offset, *time)
        if ref is None or self.rate <= 0:
            return 0
        elapsed = (time[0] - ref[1]) * self.rate + (time[1] - ref[2]) * self.rate
        return max(round(elapsed) - (offset - ref[0]), 0)
