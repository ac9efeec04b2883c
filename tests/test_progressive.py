"""Decoding while the stream arrives: same frames as decoding the finished stream, frames out
before the end, lost keyframes widen intervals, nothing arrives in order required."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lgvsc_phy.framing import split_stream
from semantic.decoder import decode_bitstream
from semantic.encoder import EncoderConfig, encode_video
from semantic.progressive import ProgressiveStream


@pytest.fixture(scope="module")
def stream(bikes_video) -> bytes:  # noqa: ANN001
    return encode_video(bikes_video, EncoderConfig(byte_budget=6000, psss="none")).data


def _collect(progressive: ProgressiveStream, out: list) -> threading.Thread:
    def run() -> None:
        progressive.wait_ready()
        out.extend(progressive.decoded().iter_frames())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_frames_come_out_before_the_stream_ends_and_match_the_batch_decode(stream: bytes) -> None:
    pdus = split_stream(stream, 1, 400)
    progressive, frames = ProgressiveStream(), []
    thread = _collect(progressive, frames)
    for pdu in pdus[: len(pdus) * 2 // 3]:
        progressive.add(pdu.offset, pdu.payload)
    deadline = time.monotonic() + 30
    while not frames and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < len(frames) < 250  # rendering started, and waits for the rest
    for pdu in pdus[len(pdus) * 2 // 3 :]:
        progressive.add(pdu.offset, pdu.payload)
    progressive.finish()
    thread.join(60)
    np.testing.assert_array_equal(np.stack(frames), decode_bitstream(stream).frames)


def test_lost_and_reordered_pdus_still_give_every_frame(stream: bytes) -> None:
    pdus = split_stream(stream, 1, 400)
    keep = [p for i, p in enumerate(pdus) if i != len(pdus) // 2]  # one keyframe's bytes lost
    keep[3:6] = keep[3:6][::-1]  # and some out of order
    progressive, frames = ProgressiveStream(), []
    thread = _collect(progressive, frames)
    for pdu in keep:
        progressive.add(pdu.offset, pdu.payload)
    progressive.finish()
    thread.join(60)
    assembled = bytearray(len(stream))
    for pdu in keep:
        assembled[pdu.offset : pdu.offset + len(pdu.payload)] = pdu.payload
    assert len(frames) == 250
    np.testing.assert_array_equal(np.stack(frames), decode_bitstream(bytes(assembled)).frames)


def test_a_stream_without_its_prefix_decodes_at_the_end(stream: bytes) -> None:
    pdus = split_stream(stream, 1, 400)
    progressive = ProgressiveStream()
    for pdu in pdus[1:]:  # the header and timing at the front are lost; the copies at the end remain
        progressive.add(pdu.offset, pdu.payload)
    progressive.finish()
    assert not progressive.wait_ready() or progressive.plan is not None
    assert len(progressive.decoded().frames) == 250
