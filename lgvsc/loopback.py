"""The loopback job: video -> semantic bitstream -> tx/channel/rx flowgraphs -> video + report.

This is the only place (with the CLI) that wires semantic/ and lgvsc_phy/ together.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import numpy as np

from lgvsc.encode_cache import cached, source_identity
from lgvsc.progress import Progress, progress_source
from lgvsc.rate_control import PROBE_MCS, Probe, layering_for, link_mcs, plan_stream, protection_share
from lgvsc_phy import channel_profiles
from lgvsc_phy.channel_spec import B2X0_SAMPLE_RATE, ChannelConfig, channel_settings, report_fields
from lgvsc_phy.feedback import FeedbackError, feedback_for
from lgvsc_phy.link import Link, LinkAddresses, TransferResult, receiver_estimates
from lgvsc_phy.mcs import THRESHOLD_DB, Mcs
from lgvsc_phy.ports import DEFAULT_BASE_PORT
from lgvsc_phy.runner import FlowgraphRunner, LoopbackConfig
from lgvsc_phy.theory import fading_outage
from semantic.bitstream import parse_stream
from semantic.decoder import DecodedVideo, DecoderError, decode_bitstream
from semantic.diffusion_decoder import DiffusionSettings
from semantic.encoder import EncodedVideo, EncoderConfig, EncoderError, FrameSource
from semantic.metrics import FrameQuality
from semantic.psss import PSSS_WIDTH, get_psss
from semantic.video_io import VideoInfo, write_video


@dataclass(frozen=True)
class LoopbackOptions(ChannelConfig):
    """The job's settings; the channel's (snr_db, channel, ...) are ChannelConfig's keywords."""

    input: Path
    output: Path | None  # None: measured, not written (a sweep that keeps no videos)
    _: KW_ONLY
    cbr: float = 1e-3
    mcs: str = "auto"
    decoder: str = "interp"
    describe: str = "none"  # description backend
    protect: bool = True  # critical prefix on a more robust MCS
    probe: bool = True  # --mcs auto: choose from the effective SNR a probe burst measures
    design_snr_db: float | None = None  # --mcs auto: plan for this SNR, never probe or ask the channel
    feedback_delay_s: float | None = None  # after the probe, each PDU's MCS from receiver reports this old
    sample_rate: float = B2X0_SAMPLE_RATE  # the radio rate the simulated air time stands for (feedback delay)
    diffusion: DiffusionSettings | None = None  # for decoder diffusers:<id>
    psss: str = "classical"
    images: str = "track"  # keyframe images: the predictive AV1 track, or intra (WebP/AVIF each)
    expected_loss: float | None = None  # PDU loss the track's recovery points are planned for (None: ``planned_loss``)
    layers: str = "auto"  # "2": a base layer on a robust MCS; "auto": layered when planned for a design SNR
    base_share: float | None = None  # of the on-air budget, for the base layer; None: fitted per video
    encode_cache: Path | None = None  # keep encodings here (a sweep: one stream for every actual SNR)
    base_port: int = DEFAULT_BASE_PORT
    cfo_range: float = 1.0  # the rx's largest acquired |CFO|, subcarrier spacings
    max_frames: int | None = None
    idle_timeout_s: float = 3.0
    deadline_s: float = 600.0


@dataclass
class LoopbackResult:
    report: dict
    encoded: EncodedVideo
    decoded: DecodedVideo
    transfer: TransferResult
    psnr_per_frame: np.ndarray
    samples: dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> (source, output), for the HTML page
    keyframe_images: dict[int, np.ndarray]  # received keyframes as decoded


class Comparison:
    """Walks source and output together while the output is written: per-frame PSNR and SSIM,
    running VMAF, PSSS on evenly spaced pairs, and the few frames the HTML page shows."""

    def __init__(self, source: FrameSource, decoded: DecodedVideo, psss: str, keyframes: set[int],
                 shown: int = 6, psss_samples: int = 24) -> None:
        total = decoded.header.frames
        self.source, self.decoded, self.psss_backend, self.keyframes = source, decoded, psss, keyframes
        self.shown = set(np.linspace(0, total - 1, shown).round().astype(int).tolist())
        self.psss_picks = set(np.linspace(0, total - 1, min(psss_samples, total)).round().astype(int).tolist())
        self.quality = FrameQuality()
        self.samples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.psss_pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.keyframe_images: dict[int, np.ndarray] = {}

    def frames(self) -> Iterator[np.ndarray]:
        src_iter = self.source.open()
        frames = Progress(f"decoding ({self.decoded.backend})", self.decoded.header.frames).wrap(
            self.decoded.iter_frames())
        for t, out in enumerate(frames):
            src = next(src_iter, None)
            if src is not None and src.shape == out.shape:
                self.quality.update(src, out)
                if t in self.shown:
                    self.samples[t] = (src, out)
                if t in self.psss_picks:
                    self.psss_pairs.append((FrameSource.shrink(src, PSSS_WIDTH), FrameSource.shrink(out, PSSS_WIDTH)))
            if t in self.keyframes:
                self.keyframe_images[t] = out
            yield out

    def psss_value(self) -> float | None:
        if self.psss_backend == "none" or not self.psss_pairs:
            return None
        return float(np.mean(get_psss(self.psss_backend).score(self.psss_pairs)))


def semantic_similarity(source: np.ndarray, output: np.ndarray, backend: str, samples: int = 24) -> float | None:
    """Mean PSSS P(Yes) between source and reconstructed frames at the instants and size
    ``Comparison`` uses, so that LGVSC and the baselines are scored alike."""
    if backend == "none" or len(source) == 0:
        return None
    picks = np.unique(np.linspace(0, len(source) - 1, min(samples, len(source))).round().astype(int))
    pairs = [(FrameSource.shrink(source[t], PSSS_WIDTH), FrameSource.shrink(output[t], PSSS_WIDTH)) for t in picks]
    return float(np.mean(get_psss(backend).score(pairs)))


def settled_link(opts: LoopbackOptions) -> bool:
    """Whether the MCS is chosen from the channel's real SNR (a probe, or told) on a channel that
    does not change, with no loss expected: a link whose PDUs all arrive."""
    static = channel_profiles.profile(opts.channel).fading == "none"
    lossless = not opts.expected_loss and opts.drop_rate == 0  # sample gaps lose PDUs at any SNR
    return opts.mcs == "auto" and opts.design_snr_db is None and static and lossless


def planned_loss(opts: LoopbackOptions, mcs: Mcs, probe: Probe | None) -> float:
    """The PDU loss the stream is planned for: as given, else the outage of the channel's fading at
    the MCS's threshold and the SNR the transmitter planned with (the probe's, the design SNR, or
    the one it was told). One probe says nothing of the fades to come, but the transmitter knows
    its link fades (a mobile radio does): on Rayleigh a stream planned for a clean link lost every
    keyframe to one early fade (the held-out zoom clip, 10.3 dB against H.265's 14.4)."""
    if opts.expected_loss is not None:
        return opts.expected_loss
    fading = channel_profiles.profile(opts.channel).fading
    if fading == "none":
        return 0.0
    if probe is not None and probe.esnr_db is None:
        return 1.0  # the probe itself was lost
    if probe is not None:
        snr = probe.esnr_db
    else:
        snr = opts.design_snr_db if opts.design_snr_db is not None else opts.snr_db
    return fading_outage(fading, THRESHOLD_DB[mcs.name], snr, opts.k_factor)


def check_feedback(opts: LoopbackOptions) -> None:
    """Feedback adapts what a probe chose: it needs ``--mcs auto`` with a probe, and no design SNR."""
    if opts.feedback_delay_s is None:
        return
    if opts.mcs != "auto" or opts.design_snr_db is not None or not opts.probe:
        raise FeedbackError("--feedback-delay-s adapts the MCS a probe chose: use it with --mcs auto, a probe, "
                         "and no --design-snr-db")
    feedback_for(opts.feedback_delay_s, opts.sample_rate, PROBE_MCS)  # raises on a bad delay or rate


def run_loopback(opts: LoopbackOptions) -> LoopbackResult:
    """Everything streams: the source is read twice by the encoder and once for the metrics, the
    output is written as it is decoded, so memory does not grow with the video's length."""
    check_feedback(opts)
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    source = progress_source(opts.input, opts.max_frames)
    config = LoopbackConfig(mcs=PROBE_MCS, base_port=opts.base_port, cfo_range=opts.cfo_range,
                            **channel_settings(opts))
    t = time.monotonic()
    probe = None
    with FlowgraphRunner(config) as runner:
        timings["flowgraph_start_s"] = time.monotonic() - t
        with Link(LinkAddresses.from_base_port(opts.base_port)) as link:
            # Link adaptation as a radio does it: measure, then choose (the probe's samples are
            # reported, and counted in cbr_on_air_with_probe); or plan for a design SNR.
            probe, mcs = link_mcs(link, opts.mcs, opts.design_snr_db, opts.probe, opts.snr_db, runner.check)
            t = time.monotonic()
            try:  # the flowgraphs wait meanwhile
                loss = planned_loss(opts, mcs, probe)
                config = EncoderConfig(psss=opts.psss, describe=opts.describe, images=opts.images,
                                       expected_loss=loss)
                layering = layering_for(opts.layers, opts.design_snr_db is None, opts.base_share, opts.design_snr_db)
                share = protection_share(settled_link(opts))
                key = ("lgvsc", source_identity(opts.input), opts.max_frames, opts.cbr, mcs.name, config, opts.protect,
                       layering, share)
                plan = cached(opts.encode_cache, key, lambda: plan_stream(source, opts.cbr, mcs, config,
                                                                          protect=opts.protect, layering=layering,
                                                                          max_protection_share=share))
            except EncoderError as exc:
                raise EncoderError(f"{mcs.name} at CBR {opts.cbr:g}: {exc}") from None
            encoded, protection = plan.encoded, plan.protection
            timings["encode_s"] = time.monotonic() - t
            transfer = link.transfer(encoded.data, protection, idle_timeout_s=opts.idle_timeout_s,
                                     deadline_s=opts.deadline_s, check=runner.check,
                                     feedback=feedback_for(opts.feedback_delay_s, opts.sample_rate, mcs))
    h = encoded.header
    info = VideoInfo(h.width, h.height, h.fps, h.frames)
    timings["link_s"] = transfer.wall_s

    t = time.monotonic()
    if transfer.fault:  # said now; decoding what arrived may take a while
        print(f"loopback: {transfer.fault}; decoding the {transfer.pdus_received}/{transfer.pdus_sent} PDUs "
              "that arrived", file=sys.stderr, flush=True)
    data, header_lost = transfer.data, parse_stream(transfer.data).header is None
    if header_lost:
        # Judged as the baselines are, whose FFmpeg receiver is given its stream's size and frame
        # count: with the sender's header the decoder shows whatever else arrived (the colour
        # layout, a base layer) or mid-grey, at the exact length.
        data = h.pack() + data
    try:
        decoded = decode_bitstream(data, opts.decoder, opts.diffusion)
    except DecoderError as exc:
        why = f"{transfer.fault}; " if transfer.fault else ""
        raise DecoderError(f"{why}{transfer.pdus_received}/{transfer.pdus_sent} PDUs arrived ({mcs.name} at "
                           f"{opts.snr_db:g} dB, {opts.channel}); {exc}") from None
    compared = Comparison(source, decoded, opts.psss, set(decoded.keyframes_received))
    if opts.output is None:  # encoding the output cost a sweep 3 s a 720p point
        frames_out = sum(1 for _ in compared.frames())
    else:
        frames_out = write_video(opts.output, compared.frames(), decoded.fps)
    timings["decode_and_metrics_s"] = time.monotonic() - t
    per_frame_psnr = np.array(compared.quality.psnr)
    ssim_value = float(np.mean(compared.quality.ssim)) if compared.quality.ssim else 0.0
    psss_value = compared.psss_value()

    _, payload_symbols, on_air_expected = protection.cost(len(encoded.data))
    raw_bits = sum(int(m.get("raw_bits", 0)) for m in transfer.meta)
    raw_errors = sum(int(m.get("raw_bit_errors", 0)) for m in transfer.meta)
    sent = np.frombuffer(encoded.data, dtype=np.uint8)
    got = np.frombuffer(transfer.data[: len(encoded.data)].ljust(len(encoded.data), b"\0"), dtype=np.uint8)
    stream_bit_errors = int(np.unpackbits(sent ^ got).sum())
    report = {
        "input": str(opts.input),
        "output": None if opts.output is None else str(opts.output),
        "frames_in": info.frames,  # counted by the encoder's analysis pass
        "frames_out": frames_out,
        "width": info.width,
        "height": info.height,
        "fps": float(info.fps),
        "source_values": info.source_values,
        "cbr_target": opts.cbr,
        "on_air_budget_symbols": plan.on_air_target,
        "rate_control_attempts": plan.attempts,
        "stream_bytes": len(encoded.data),
        "critical_bytes": encoded.critical_bytes,
        "segment_bytes": encoded.segment_bytes,
        "payload_symbols": payload_symbols,
        "on_air_symbols": transfer.tx_samples,  # measured: the tx flowgraph's burst counter
        "on_air_symbols_expected": on_air_expected,
        "on_air_breakdown": protection.breakdown(encoded.data),
        "cbr_payload": payload_symbols / info.source_values,
        "cbr_on_air": transfer.tx_samples / info.source_values,
        "probe": None if probe is None else {"esnr_db": probe.esnr_db, "snr_db": probe.snr_db,
                                             "samples": probe.samples},
        "cbr_on_air_with_probe": (transfer.tx_samples + (probe.samples if probe else 0)) / info.source_values,
        **report_fields(opts),
        "design_snr_db": opts.design_snr_db,  # None: the MCS came from a probe (or was named)
        "expected_loss": config.expected_loss,  # what the track's recovery points were planned for
        "expected_loss_from": "given" if opts.expected_loss is not None else "channel",
        "feedback_delay_s": opts.feedback_delay_s,  # None: one probe, no feedback during the stream
        "feedback": transfer.feedback,  # with feedback: the MCS each PDU went on
        **receiver_estimates(transfer.meta),  # snr_estimate_db, cfo_estimate, sfo_estimate_ppm
        "mcs": mcs.name,
        "protection": protection.describe(),
        "robust_mcs": protection.robust.name,
        "layers": 2 if encoded.base_layer_bytes else 1,
        "base_mcs": protection.tiers[0].mcs.name if protection.tiers else None,
        "base_layer_bytes": encoded.base_layer_bytes,
        "base_share": plan.base_share if encoded.base_layer_bytes else None,  # chosen or as given
        "base_share_scores": [s.as_dict() for s in plan.base_share_scores or []] or None,  # --base-share auto
        "keyframes_from_base": decoded.keyframes_from_base,
        "pdus_sent": transfer.pdus_sent,
        "pdus_received": transfer.pdus_received,
        "lost_pdus": transfer.lost_pdus,
        "gaps_filled": transfer.gaps_filled,  # stream gaps the receiver filled (--drop-rate, radio overflows)
        "pdu_snr_db": transfer.pdu_snr_db(),
        "ber": raw_errors / raw_bits if raw_bits else None,  # channel (pre-FEC) BER on decoded PDUs
        "stream_ber": stream_bit_errors / max(1, 8 * len(encoded.data)),  # after the link, lost = errors
        "per": 1 - transfer.pdus_received / max(1, transfer.pdus_sent),
        "fault": transfer.fault,  # a flowgraph died or stalled mid-stream (the video is what arrived)
        "header_lost": header_lost,  # both copies lost: decoded with the sender's header, as the baselines are
        "keyframes_sent": encoded.plan.frames,
        "keyframes_received": decoded.keyframes_received,
        "shot_cuts": encoded.plan.cuts,
        "psnr_db": float(per_frame_psnr.mean()),
        "ssim": ssim_value,
        "vmaf": compared.quality.vmaf.mean(),  # VMAF v0.6.1 on the frames PSNR and SSIM compare
        "psss": psss_value,  # mean P(same content) of source vs output frames, every 0.2 s
        "psss_backend": opts.psss,
        "backends": {**encoded.header.backends, "decoder": decoded.backend},
        "decoder_notes": decoded.notes,
        "constellation": None if transfer.constellation is None else {
            "mcs": transfer.constellation[0],
            "points": [[round(float(z.real), 4), round(float(z.imag), 4)] for z in transfer.constellation[1]]},
        "timings": timings,
        "wall_s": time.monotonic() - t0,
    }
    return LoopbackResult(report, encoded, decoded, transfer, per_frame_psnr, compared.samples,
                          compared.keyframe_images)
