"""The separation baseline through the same tx, channel and rx flowgraphs as LGVSC: H.264 or
H.265 coded to the bytes the same on-air symbol budget carries at the MCS the probe chooses,
sent as plain link PDUs (no unequal protection: the baseline has no semantic prefix), decoded
with concealment to exactly the source frame count.

    python -m tools.baseline_loopback VIDEO --scheme h264 --snr-db 10 --cbr 1e-3 [--channel multipath]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import numpy as np

from lgvsc.encode_cache import cached, source_identity
from lgvsc.loopback import semantic_similarity
from lgvsc.rate_control import PROBE_MCS, link_mcs, stream_bytes_near
from lgvsc_phy.channel_spec import B2X0_SAMPLE_RATE, ChannelConfig, add_channel_options, channel_settings, report_fields
from lgvsc_phy.feedback import FeedbackError, feedback_for
from lgvsc_phy.link import Link, LinkAddresses
from lgvsc_phy.ofdm import cfo_range_warning
from lgvsc_phy.protection import Protection
from lgvsc_phy.runner import FlowgraphRunner, LoopbackConfig
from semantic.encoder import FrameSource
from semantic.metrics import FrameQuality
from semantic.separation import SCHEMES, SeparationError, decode, encode_to_budget
from semantic.video_io import write_video


@dataclass(frozen=True)
class BaselineOptions(ChannelConfig):
    """The baseline's settings; the channel's (snr_db, channel, ...) are ChannelConfig's keywords."""

    input: Path
    scheme: str
    _: KW_ONLY
    cbr: float = 1e-3
    base_port: int = 52101
    max_frames: int | None = None
    psss: str = "classical"
    output: Path | None = None  # the video as a player shows it
    design_snr_db: float | None = None  # plan the MCS for this SNR, no probe (None: probe, then adapt)
    feedback_delay_s: float | None = None  # after the probe, each PDU's MCS from receiver reports this old
    sample_rate: float = B2X0_SAMPLE_RATE  # the radio rate the simulated air time stands for
    encode_cache: Path | None = None  # keep encodings here (lgvsc.encode_cache)
    cfo_range: float = 1.0  # the rx's largest acquired |CFO|, subcarrier spacings


def backends(scheme: str, psss: str) -> dict[str, str]:
    codec = SCHEMES[scheme]
    return {"source": f"{codec.encoder} (PyAV)", "decoder": f"FFmpeg {codec.decoder} + concealment", "psss": psss}


def _scores(frames: list[np.ndarray], out: list[np.ndarray]) -> dict[str, float | None]:
    """Mean PSNR, SSIM and VMAF, frame by frame."""
    if len(out) != len(frames):
        raise ValueError(f"{len(out)} frames decoded for {len(frames)}")
    quality = FrameQuality()
    for ref, got in zip(frames, out, strict=True):
        quality.update(ref, got)
    return {"psnr_db": float(np.mean(quality.psnr)), "ssim": float(np.mean(quality.ssim)), "vmaf": quality.vmaf.mean()}


def run_baseline_loopback(opts: BaselineOptions) -> dict:
    if opts.feedback_delay_s is not None and opts.design_snr_db is not None:
        raise FeedbackError("--feedback-delay-s adapts the MCS a probe chose: not with --design-snr-db")
    t0 = time.monotonic()
    source = FrameSource.of_file(opts.input, opts.max_frames)
    frames = list(source.open())  # not stacked: a second copy of a 720p clip cost 1-2 s in page faults
    if not frames:
        raise SeparationError(f"{opts.input}: no frames")
    values = len(frames) * frames[0].size
    config = LoopbackConfig(mcs=PROBE_MCS, base_port=opts.base_port, cfo_range=opts.cfo_range,
                            **channel_settings(opts))
    with FlowgraphRunner(config) as runner, Link(LinkAddresses.from_base_port(opts.base_port)) as link:
        probe, mcs = link_mcs(link, "auto", opts.design_snr_db, True, None, runner.check)
        protection = Protection.uniform(mcs)
        budget = stream_bytes_near(protection, opts.cbr * values)
        try:
            key = ("baseline", source_identity(opts.input), opts.max_frames, opts.scheme, budget)
            coded = cached(opts.encode_cache, key, lambda: encode_to_budget(source, opts.scheme, budget))
            transfer = link.transfer(coded.data, protection, check=runner.check,
                                     feedback=feedback_for(opts.feedback_delay_s, opts.sample_rate, mcs))
            received, on_air, pdus = transfer.data, transfer.tx_samples, (transfer.pdus_received, transfer.pdus_sent)
            pdu_snr, feedback = transfer.pdu_snr_db(), transfer.feedback
        except SeparationError:  # nothing fits: what a player shows is grey, and nothing is sent
            coded, received, on_air, pdus, pdu_snr, feedback = None, b"", 0, (0, 0), [], None
    grey = np.full_like(frames[0], 128)
    out = [grey] * len(frames) if coded is None else list(decode(received, coded))
    if opts.output is not None:
        write_video(opts.output, iter(out), source.fps)
    scores = _scores(frames, out)
    return {"input": str(opts.input), "scheme": opts.scheme, **report_fields(opts), "cbr_target": opts.cbr,
            "mcs": mcs.name, "design_snr_db": opts.design_snr_db,
            "feedback_delay_s": opts.feedback_delay_s, "feedback": feedback,
            "probe_esnr_db": None if probe is None else probe.esnr_db, "stream_bytes_budget": budget,
            "stream_bytes": len(coded.data) if coded else 0,
            "coded": None if coded is None else {"size": f"{coded.width}x{coded.height}", "crf": coded.crf,
                                                 "stride": coded.stride},
            "on_air_symbols": on_air, "cbr_on_air": on_air / values, "frames_in": len(frames),
            "pdus_received": pdus[0], "pdus_sent": pdus[1], "pdu_snr_db": pdu_snr,
            "per": 1 - pdus[0] / pdus[1] if pdus[1] else None, "frames_out": len(out),
            **scores,
            "psss": semantic_similarity(frames, out, opts.psss), "psss_backend": opts.psss,
            "backends": backends(opts.scheme, opts.psss), "wall_s": time.monotonic() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("--scheme", default="h264", choices=list(SCHEMES))
    add_channel_options(ap, required=["snr_db"])
    ap.add_argument("--cbr", type=float, default=1e-3)
    ap.add_argument("--base-port", type=int, default=52101)
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--design-snr-db", type=float,
                    help="plan the MCS for this SNR without probing (the channel's --snr-db stays unknown)")
    ap.add_argument("--feedback-delay-s", type=float, metavar="SECONDS",
                    help="after the probe, each PDU on the MCS the receiver's newest report this old calls for")
    ap.add_argument("--sample-rate", type=float, default=B2X0_SAMPLE_RATE,
                    help="the radio rate the simulated air time stands for (counts the feedback delay)")
    ap.add_argument("--cfo-range", type=float, default=1.0, metavar="SPACINGS",
                    help="the largest carrier offset the rx acquires, subcarrier spacings (as lgvsc loopback)")
    args = ap.parse_args()
    if warning := cfo_range_warning(args.cfo, args.cfo_range):
        print(warning, file=sys.stderr)
    opts = BaselineOptions(Path(args.input), args.scheme, cbr=args.cbr, base_port=args.base_port,
                           max_frames=args.max_frames, design_snr_db=args.design_snr_db, cfo_range=args.cfo_range,
                           feedback_delay_s=args.feedback_delay_s, sample_rate=args.sample_rate,
                           **channel_settings(args))
    report = run_baseline_loopback(opts)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
