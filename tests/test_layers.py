"""Layered LGVSC: a base layer (a coarser keyframe track) on a robust MCS under the keyframe track,
so a receiver below the track's threshold still decodes a whole video; the tiers' arithmetic, the
rate control's split, and the decoder's use of whichever layers arrived."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from lgvsc.cli import build_parser
from lgvsc.rate_control import (
    BASE_SHARES,
    HIGH,
    LOW,
    MAX_FIT_ENCODES,
    NO_CLIFF,
    START_SHARE,
    Layering,
    layering_for,
    parse_base_share,
    plan_stream,
)
from lgvsc_phy.mcs import THRESHOLD_DB, get_mcs
from lgvsc_phy.protection import Protection, Tier
from semantic.bitstream import SegmentType, parse_stream
from semantic.decoder import decode_bitstream
from semantic.encoder import EncoderConfig, FrameSource, encode_source
from semantic.inspection import format_inspection, inspect_stream
from semantic.metrics import psnr_frames
from semantic.progressive import ProgressiveStream
from semantic.video_io import Video, read_video


def test_three_tiers_split_pdus_and_cost() -> None:
    p = Protection(get_mcs("16qam-1/2"), get_mcs("bpsk-1/2"), 150, (Tier(1200, get_mcs("qpsk-2/3")),))
    data = os.urandom(6000)
    pdus = p.pdus(data, 3)
    assert b"".join(pdu.payload for pdu, _ in pdus) == data
    for pdu, mcs in pdus:
        lo, hi = pdu.offset, pdu.offset + len(pdu.payload)
        tier = "bpsk-1/2" if hi <= 150 else "qpsk-2/3" if lo >= 150 and hi <= 1200 else "16qam-1/2"
        assert mcs.name == tier and (tier != "16qam-1/2" or lo >= 1200)
    assert p.cost(len(data))[2] == sum(m.burst_cost(len(pdu.pack()))[1] for pdu, m in pdus)
    fit = p.stream_bytes_for(p.cost(len(data))[2])
    assert fit >= len(data) and p.cost(fit + 1)[2] > p.cost(len(data))[2]
    assert p.protected_bytes == 1200 and "qpsk-2/3 for bytes 150-1200" in p.describe()
    # a stream that ends inside the base tier never touches the rate MCS
    assert {m.name for _, m in p.pdus(data[:900], 3)} == {"bpsk-1/2", "qpsk-2/3"}


def test_the_base_mcs_keeps_its_margin_and_auto_layers_only_without_feedback() -> None:
    layering = Layering()
    for rate in ("qpsk-3/4", "16qam-1/2", "64qam-2/3"):
        base = layering.base_mcs(get_mcs(rate))
        assert THRESHOLD_DB[base.name] <= THRESHOLD_DB[rate] - layering.base_margin_db
    assert not layering.applies_to(get_mcs("bpsk-1/2"))  # nothing is more robust than the most robust
    assert layering_for("auto", feedback=True) is None and layering_for("auto", feedback=False) == layering
    assert layering_for("2", feedback=True) == layering and layering_for("1", feedback=False) is None
    with pytest.raises(ValueError):
        layering_for("3", feedback=False)


def test_the_base_share_is_auto_unless_a_fraction_is_given() -> None:
    assert parse_base_share("auto") is None and parse_base_share("0.3") == 0.3
    for bad in ("0", "1", "-0.2", "most"):
        with pytest.raises(ValueError):
            parse_base_share(bad)
    assert layering_for("2", feedback=False).base_share is None  # fitted per video
    assert layering_for("2", feedback=False, base_share=0.3, design_snr_db=10.0) == \
        Layering(base_share=0.3, design_snr_db=10.0)
    with pytest.raises(ValueError):
        layering_for("2", feedback=False, base_share=1.5)
    for argv, share in ((["x.mp4"], None), (["x.mp4", "--base-share", "auto"], None),
                        (["x.mp4", "--base-share", "0.18"], 0.18)):
        assert build_parser().parse_args(["loopback", *argv, "-o", "y.mp4", "--snr-db", "9"]).base_share == share


def _moving_clip(frames: int = 40, blur: float = 0.0) -> np.ndarray:
    """A textured scene panning under a moving disc: content neither layer codes exactly
    (``blur``: a smoother texture, which a coarse base layer renders well)."""
    rng = np.random.default_rng(5)
    texture = (rng.random((200, 320, 3)) * 255).astype(np.uint8)
    texture = np.asarray(np.repeat(np.repeat(texture[::8, ::8], 8, 0), 8, 1)[:200, :320])
    if blur:
        texture = cv2.normalize(cv2.GaussianBlur(texture, (0, 0), blur), None, 0, 255, cv2.NORM_MINMAX)
    out = []
    for t in range(frames):
        frame = np.roll(texture, 2 * t, axis=1)[:144, :176].copy()
        yy, xx = np.mgrid[:144, :176]
        frame[(yy - 72) ** 2 + (xx - 20 - 3 * t) ** 2 < 300] = (250, 30, 30)
        out.append(frame)
    return np.stack(out)


def _decoded_psnr(data: bytes, reference: np.ndarray) -> float:
    decoded = decode_bitstream(data)
    assert decoded.frames.shape == reference.shape  # every frame, whatever arrived
    return float(np.mean(psnr_frames(reference, decoded.frames)))


def test_the_base_layer_alone_gives_a_whole_video_and_the_track_improves_it() -> None:
    clip = _moving_clip()
    encoded = encode_source(FrameSource.of_video(Video(clip, Fraction(10))),
                            EncoderConfig(byte_budget=3000, base_bytes=700, psss="none"))
    parsed = parse_stream(encoded.data)
    assert parsed.of_type(SegmentType.BASE_TRACK) and parsed.of_type(SegmentType.LAYOUT)
    assert 0 < encoded.base_layer_bytes <= 700 and len(encoded.data) <= 3000
    # stream order: prefix, base layer, track; what the tiers protect is exactly prefix + base
    head = encoded.critical_bytes + encoded.base_layer_bytes
    assert not parse_stream(encoded.data[:head]).of_type(SegmentType.TRACK)
    assert len(parse_stream(encoded.data[:head]).of_type(SegmentType.BASE_TRACK)) == \
        len(parsed.of_type(SegmentType.BASE_TRACK))
    lost_track = encoded.data[:head] + bytes(len(encoded.data) - head)
    lost_base = encoded.data[: encoded.critical_bytes] + bytes(len(encoded.data) - encoded.critical_bytes)
    full, base_only, prefix_only = (_decoded_psnr(d, clip) for d in (encoded.data, lost_track, lost_base))
    assert full > base_only + 1.0 and base_only > prefix_only + 1.0, (full, base_only, prefix_only)
    decoded = decode_bitstream(lost_track)
    assert decoded.keyframes_from_base and set(decoded.keyframes_from_base) <= set(encoded.plan.frames)
    assert not decode_bitstream(encoded.data).keyframes_from_base  # the track wins where it arrived
    text = format_inspection(inspect_stream(encoded.data))
    assert "base layer" in text


def test_the_live_receiver_falls_back_to_the_base_layer() -> None:
    clip = _moving_clip()
    encoded = encode_source(FrameSource.of_video(Video(clip, Fraction(10))),
                            EncoderConfig(byte_budget=3000, base_bytes=700, psss="none"))
    head = encoded.critical_bytes + encoded.base_layer_bytes
    stream = ProgressiveStream()
    stream.add(0, encoded.data[:head])  # the track's PDUs never came
    stream.finish()
    frames = np.stack(list(stream.decoded().iter_frames()))
    offline = decode_bitstream(encoded.data[:head] + bytes(len(encoded.data) - head)).frames
    assert frames.shape == clip.shape and np.array_equal(frames, offline)


def test_rate_control_splits_the_budget_into_layers(bikes: Path) -> None:
    """CBR 1e-3 at 16qam-1/2: prefix on bpsk-1/2, the base layer on the MCS 3 dB down, about a
    quarter of the on-air budget in the base, the whole stream within the CBR tolerance."""
    source = FrameSource.of_file(bikes, max_frames=75)
    mcs = get_mcs("16qam-1/2")
    plan = plan_stream(source, 1e-3, mcs, EncoderConfig(psss="none"), layering=Layering(base_share=0.25))
    e, p = plan.encoded, plan.protection
    assert e.base_layer_bytes and p.tiers == (Tier(e.critical_bytes + e.base_layer_bytes, Layering().base_mcs(mcs)),)
    assert plan.base_share == 0.25 and plan.base_share_scores is None  # a given share is used as given
    assert p.robust.name == "bpsk-1/2" and p.robust_bytes == e.critical_bytes
    assert LOW * plan.on_air_target <= plan.on_air_planned <= HIGH * plan.on_air_target
    base_air = p.cost(p.protected_bytes)[2] - p.cost(e.critical_bytes)[2]
    assert 0.1 < base_air / plan.on_air_target <= 0.25 + 0.02
    reference = read_video(bikes, max_frames=75).frames
    head = p.protected_bytes
    assert _decoded_psnr(e.data, reference) > _decoded_psnr(e.data[:head] + bytes(len(e.data) - head), reference)


def test_auto_base_share_is_fitted_from_the_candidates() -> None:
    """--base-share auto: the layered stream at each candidate share, scored by decoding it as the
    receivers above and below the rate MCS's threshold would; the choice follows the scores."""
    clip = _moving_clip(blur=12)
    source = FrameSource.of_video(Video(clip, Fraction(10)))
    mcs = get_mcs("16qam-1/2")
    plan = plan_stream(source, 1e-2, mcs, EncoderConfig(psss="none"), layering=Layering(design_snr_db=10.0))
    scores = plan.base_share_scores
    shares = [s.share for s in scores]
    assert 2 <= len(scores) <= MAX_FIT_ENCODES and shares == sorted(shares) and START_SHARE in shares
    assert all(min(BASE_SHARES) <= s <= max(BASE_SHARES) for s in shares) and plan.base_share in shares
    kept = [s for s in scores if s.no_cliff] or scores
    assert plan.base_share == max(kept, key=lambda s: s.expected_psnr_db).share
    for s in scores:
        assert s.full_psnr_db > s.base_psnr_db and s.no_cliff == (s.base_psnr_db >= NO_CLIFF * s.full_psnr_db)
        # design 10 dB over 4..20 dB: qpsk-2/3's threshold (3.6) up to 16qam-1/2's (7.0) gets the base only
        assert s.expected_psnr_db == pytest.approx((3 * s.base_psnr_db + 14 * s.full_psnr_db) / 17)
    e, p = plan.encoded, plan.protection
    assert e.base_layer_bytes and p.tiers == (Tier(e.critical_bytes + e.base_layer_bytes, Layering().base_mcs(mcs)),)
    chosen = next(s for s in scores if s.share == plan.base_share)
    assert _decoded_psnr(e.data, clip) == pytest.approx(chosen.full_psnr_db)  # the stream sent is the one scored
    assert LOW * plan.on_air_target <= plan.on_air_planned <= HIGH * plan.on_air_target
