"""`lgvsc`: encode, decode, inspect, evaluate, and loop a video through the GNU Radio flowgraphs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from lgvsc.progress import Progress, progress_source
from lgvsc_phy.channel_profiles import ChannelError
from lgvsc_phy.channel_spec import add_channel_options, channel_settings, grc_argv
from lgvsc_phy.feedback import FeedbackError
from lgvsc_phy.link import LinkError, receiver_estimates
from lgvsc_phy.mcs import McsError
from lgvsc_phy.ports import DEFAULT_BASE_PORT, PORT_SPAN, Port, socket_addresses
from lgvsc_phy.runner import FlowgraphError, FlowgraphRunner
from lgvsc_phy.zmq_security import CurveClient, CurveServer, IqRelay, SecurityError, bind_warning, make_keys
from semantic.bitstream import BitstreamError
from semantic.decoder import DecodedVideo, DecoderError, decode_bitstream
from semantic.describe import DescribeError
from semantic.diffusion_decoder import DiffusionDecoderError, DiffusionSettings
from semantic.encoder import EncoderConfig, EncoderError, encode_source
from semantic.inspection import format_inspection, inspect_file
from semantic.memory import keep_freed_buffers
from semantic.metrics import VmafMeter, format_vmaf, psnr_frames, ssim_frames
from semantic.psss import PsssError
from semantic.video_io import VideoError, VideoInfo, write_video

EXIT_DEGRADED = 4  # the stream ended early (a fault, an interrupt, lost PDUs): what arrived was written
EXIT_BAD_INPUT, EXIT_INTERNAL = 2, 3
# Bad input or a failing environment (exit 2); anything else is a bug of ours (exit 3).
EXPECTED_ERRORS = (VideoError, EncoderError, DecoderError, DescribeError, BitstreamError, PsssError,
                   DiffusionDecoderError, FlowgraphError, LinkError, SecurityError, McsError, ChannelError,
                   FeedbackError, OSError)


def _budget(args: argparse.Namespace) -> Callable[[VideoInfo], int] | None:
    """--cbr counts on-air channel symbols: the byte budget needs the MCS arithmetic."""
    if args.bytes is not None or args.cbr is None:
        return None
    from lgvsc_phy.mcs import get_mcs

    mcs = get_mcs(args.mcs)
    return lambda info: mcs.stream_bytes_for(args.cbr * info.source_values)


def _write(path: str, decoded: DecodedVideo) -> int:
    frames = Progress(f"decoding ({decoded.backend})", decoded.header.frames).wrap(decoded.iter_frames())
    return write_video(path, frames, decoded.fps)  # streamed: any length


def _loss_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a loss fraction in [0, 1)")
    return value


def _image_args(parser: argparse.ArgumentParser, loss_from_channel: bool = False) -> None:
    parser.add_argument("--images", default="track", choices=["track", "intra"],
                        help="track: keyframes as one predictive AV1 track (default); intra: WebP/AVIF each")
    default = ("; default: the fading channel's outage at the chosen MCS (0 on awgn and multipath)"
               if loss_from_channel else "; default 0")
    parser.add_argument("--expected-loss", type=_loss_fraction, default=None if loss_from_channel else 0.0,
                        metavar="P", help="PDU loss the link is expected to show (0..1): the track gets more "
                                          f"recovery points{default}")


def cmd_encode(args: argparse.Namespace) -> int:
    source = progress_source(args.input, args.max_frames)
    config = EncoderConfig(byte_budget=args.bytes, budget_for=_budget(args), keyframes=args.keyframes,
                           describe=args.describe, psss=args.psss, keyframe_mode=args.keyframe_mode,
                           images=args.images, expected_loss=args.expected_loss)
    try:
        encoded = encode_source(source, config)
    except EncoderError as exc:
        if config.budget_for is None:
            raise
        raise EncoderError(f"--cbr {args.cbr:g} at {args.mcs} gives this video too few bytes: {exc}") from None
    Path(args.output).write_bytes(encoded.data)
    h = encoded.header
    keys = encoded.plan.frames
    shown = str(keys) if len(keys) <= 12 else f"[{', '.join(map(str, keys[:6]))}, ... {keys[-1]}]"
    print(f"{args.output}: {len(encoded.data)} bytes, {len(keys)} keyframes {shown}, "
          f"{h.frames} frames {h.width}x{h.height}")
    return 0


def _decoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decoder", default="interp",
                   help="interp (CPU default: motion-compensated), crossfade, or diffusers:<HF id or local path> "
                        "(image / first-last-frame-to-video diffusion)")
    d = DiffusionSettings()
    p.add_argument("--steps", type=int, default=d.steps, help="diffusers: denoising steps")
    p.add_argument("--guidance", type=float, default=d.guidance, help="diffusers: classifier-free guidance scale")
    p.add_argument("--gen-side", type=int, default=d.max_side, help="diffusers: long side of the generated frames")
    p.add_argument("--gen-frames", type=int, default=d.max_frames, help="diffusers: frames per generated clip")
    p.add_argument("--gen-seed", type=int, default=d.seed, help="diffusers: noise seed")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="diffusers: let the model repository run its own Python code (off by default)")


def _diffusion(args: argparse.Namespace) -> DiffusionSettings:
    return DiffusionSettings(steps=args.steps, guidance=args.guidance, max_side=args.gen_side,
                             max_frames=args.gen_frames, seed=args.gen_seed,
                             trust_remote_code=args.trust_remote_code)


def cmd_decode(args: argparse.Namespace) -> int:
    decoded = decode_bitstream(Path(args.input).read_bytes(), args.decoder, _diffusion(args))
    count = _write(args.output, decoded)
    print(f"{args.output}: {count} frames at {float(decoded.fps):.3f} fps, keyframes "
          f"{len(decoded.keyframes_received)}/{len(decoded.keyframes_expected) or '?'} ({decoded.backend})")
    for note in decoded.notes:
        print(f"  note: {note}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    data = Path(args.input).read_bytes()
    info = inspect_file(data, args.input)
    if args.contact_sheet:
        from semantic.contact_sheet import contact_sheet

        drawn = contact_sheet(data, Path(args.contact_sheet))
        print(f"{args.contact_sheet}: {drawn} keyframes", file=sys.stderr)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_inspection(info))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Streams both videos side by side: any length."""
    from semantic.video_io import iter_frames, probe_fps

    psnrs, ssims, n_ref, n_out, size, ref_size = [], [], 0, 0, None, None
    vmaf = VmafMeter()  # constant memory, like the lists of per-frame floats
    ref_iter, out_iter = iter_frames(args.reference), iter_frames(args.output)
    while True:
        ref, out = next(ref_iter, None), next(out_iter, None)
        if ref is None and out is None:
            break
        n_ref += ref is not None
        n_out += out is not None
        if ref is not None:
            ref_size = ref.shape
        if ref is None or out is None:
            continue
        if ref.shape != out.shape:
            raise VideoError(f"sizes differ: {ref.shape[1]}x{ref.shape[0]} vs {out.shape[1]}x{out.shape[0]}")
        size = ref.shape
        psnrs.append(float(psnr_frames(ref[None], out[None])[0]))
        ssims.append(float(ssim_frames(ref[None], out[None])[0]))
        vmaf.update(ref, out)
    h, w = (size or ref_size)[:2]
    result = {"frames_in": n_ref, "frames_out": n_out, "width": w, "height": h,
              "fps": float(probe_fps(args.reference)), "fps_out": float(probe_fps(args.output)),
              "source_values": w * h * 3 * n_ref, "psnr_db": float(np.mean(psnrs)) if psnrs else None,
              "ssim": float(np.mean(ssims)) if ssims else None, "vmaf": vmaf.mean(), "frames_compared": len(psnrs)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"PSNR {result['psnr_db']:.2f} dB, SSIM {result['ssim']:.4f}, VMAF {format_vmaf(result['vmaf'])} "
              f"over {len(psnrs)} frames ({n_ref} in, {n_out} out)")
    return 0


def cmd_loopback(args: argparse.Namespace) -> int:
    from lgvsc.loopback import LoopbackOptions, run_loopback
    from lgvsc.report_html import write_html
    from lgvsc_phy.ofdm import cfo_range_warning

    if warning := cfo_range_warning(args.cfo, args.cfo_range):
        print(warning, file=sys.stderr)

    opts = LoopbackOptions(Path(args.input), Path(args.output), cbr=args.cbr, mcs=args.mcs, decoder=args.decoder,
                           **channel_settings(args),
                           diffusion=_diffusion(args), psss=args.psss, describe=args.describe,
                           protect=not args.no_protect, probe=not args.no_probe, images=args.images,
                           design_snr_db=args.design_snr_db, layers=args.layers, base_share=args.base_share,
                           feedback_delay_s=args.feedback_delay_s, sample_rate=args.sample_rate,
                           expected_loss=args.expected_loss, base_port=args.base_port, max_frames=args.max_frames,
                           cfo_range=args.cfo_range,
                           deadline_s=args.deadline)
    result = run_loopback(opts)
    r = result.report
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(r, indent=2))
    if args.html:
        write_html(Path(args.html), r, result.samples, result.psnr_per_frame, result.keyframe_images,
                   result.encoded.data)
    probe = f", probe {r['probe']['esnr_db']:.1f} dB effective" if r.get("probe") and r["probe"]["esnr_db"] else ""
    if r.get("design_snr_db") is not None:
        probe = f", planned for {r['design_snr_db']:g} dB"
    if r.get("feedback"):
        probe += f", feedback {r['feedback_delay_s']:g} s old: {r['feedback']['mcs_changes']} PDUs on another MCS"
    layers = ""
    if r["layers"] == 2:
        layers = f"; base layer on {r['base_mcs']}, {len(r['keyframes_from_base'])} keyframes from it"
    print(f"{args.output}: {r['frames_out']}/{r['frames_in']} frames; {r['mcs']} at {r['snr_db']} dB{probe} "
          f"({r['channel']}){layers}; PDUs {r['pdus_received']}/{r['pdus_sent']}; CBR payload {r['cbr_payload']:.2e}, "
          f"on-air {r['cbr_on_air']:.2e}; PSNR {r['psnr_db']:.2f} dB, SSIM {r['ssim']:.3f}, "
          f"VMAF {format_vmaf(r['vmaf'])} "
          f"[decoder {r['backends']['decoder']}]; {r['wall_s']:.1f} s")
    if r["fault"]:
        print(f"lgvsc: error: {r['fault']}; wrote a degraded video from {r['pdus_received']}/{r['pdus_sent']} "
              f"PDUs to {args.output}", file=sys.stderr)
        return EXIT_DEGRADED
    if r["header_lost"]:
        print(f"lgvsc: both copies of the stream header were lost ({r['pdus_received']}/{r['pdus_sent']} PDUs); "
              "decoded with the sender's header, as the baselines' receivers are given their stream's size",
              file=sys.stderr)
        return EXIT_DEGRADED
    return 0


def _radio_specs(args: argparse.Namespace, role: str) -> list[tuple[str, str, list[str]]]:
    """The flowgraph for one direction (``role`` tx or rx): the USRP flowgraph with --usrp, else the
    ZMQ-IQ one. Its sockets toward the link are the loopback's; its IQ socket faces the other host."""
    sockets = socket_addresses(role, args.base_port)
    iq = "iq_out" if role == "tx" else "iq_in"
    own = {"mcs": args.mcs} if role == "tx" else {"cfo_range": args.cfo_range}
    if args.usrp is not None:
        del sockets[iq]
        radio = {"usrp_args": args.usrp, "freq": args.freq, "gain": args.gain, "rate": args.rate}
        if role == "tx":
            radio["amplitude"] = args.amplitude
        return [(f"{role}_usrp", f"{role}_usrp.grc", grc_argv({**own, **sockets, **radio}))]
    if args.curve_key:  # the relay faces the other host
        sockets[iq] = Port.RELAY_IQ.address(args.base_port)
    elif given := (args.iq_out if role == "tx" else args.iq_in):
        sockets[iq] = given
    elif role == "rx":  # no channel between: a sender on this host with the same base port
        sockets[iq] = Port.TX_IQ.address(args.base_port)
    return [(role, f"{role}.grc", grc_argv({**own, **sockets}))]


def _iq_relay(args: argparse.Namespace, role: str) -> IqRelay | None:
    """The CurveZMQ hop between hosts (``--curve-key``), or None; warns about exposed binds."""
    local = Port.RELAY_IQ.address(args.base_port)  # where the flowgraph meets the relay
    if role == "tx":
        if args.iq_out and (warning := bind_warning(args.iq_out, "the IQ stream", bool(args.curve_key))):
            print(f"lgvsc send: {warning}", file=sys.stderr)
        if not args.curve_key:
            return None
        if not args.iq_out or args.usrp is not None:
            raise SecurityError("--curve-key encrypts the IQ hop between hosts: give --iq-out (and no --usrp)")
        server = CurveServer(Path(args.curve_key), Path(args.curve_clients) if args.curve_clients else None)
        return IqRelay(local, args.iq_out, outbound=True, server=server)
    if not args.curve_key:
        return None
    if not args.iq_in or not args.curve_server_key or args.usrp is not None:
        raise SecurityError("--curve-key on receive needs --iq-in and --curve-server-key (the sender's .key)")
    client = CurveClient(Path(args.curve_key), Path(args.curve_server_key))
    return IqRelay(local, args.iq_in, outbound=False, client=client)


def _start_radio(runner: FlowgraphRunner, usrp: str | None) -> None:
    try:
        runner.start()
    except FlowgraphError as exc:
        if usrp is not None and "No devices found" in exc.stderr + str(exc):
            raise FlowgraphError(f"no USRP found for device args {usrp!r} (UHD: No devices found)") from None
        raise


def cmd_send(args: argparse.Namespace) -> int:
    from lgvsc.rate_control import choose_mcs, layering_for, plan_stream
    from lgvsc_phy.link import Link, LinkAddresses, send_stream
    from lgvsc_phy.protection import Protection

    source = progress_source(args.input, args.max_frames)
    mcs = choose_mcs(args.mcs, args.snr_db if args.snr_db is not None else -99.0)
    relay = _iq_relay(args, "tx")
    runner = FlowgraphRunner(specs=_radio_specs(args, "tx"))
    _start_radio(runner, args.usrp)  # first: a missing radio is reported before any encoding work
    if relay is not None:
        relay.start()
    try:
        config = EncoderConfig(describe=args.describe, images=args.images, expected_loss=args.expected_loss)
        if args.bytes is not None:
            encoded = encode_source(source, replace(config, byte_budget=args.bytes))
            protection = Protection.for_rate(mcs, 0 if args.no_protect else encoded.critical_bytes)
        else:
            layering = layering_for(args.layers, False, args.base_share)
            plan = plan_stream(source, args.cbr, mcs, config, protect=not args.no_protect, layering=layering)
            encoded, protection = plan.encoded, plan.protection
        with Link(LinkAddresses.from_base_port(args.base_port)) as link:
            for _ in range(args.repeat):
                count = send_stream(link, encoded.data, protection, check=runner.check)
        if relay is not None:  # the last bursts are still in the relay's queue
            time.sleep(0.5)
    finally:
        runner.stop()
        if relay is not None:
            relay.close()
    h = encoded.header
    cbr = count.samples / (h.width * h.height * 3 * h.frames)
    print(f"sent {len(encoded.data)} bytes ({len(encoded.plan.frames)} keyframes) as {count.bursts} bursts, "
          f"{count.samples} samples per copy, x{args.repeat}; on-air CBR {cbr:.2e} ({protection.describe()})")
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    """Decodes while receiving: once the stream's prefix is in, a writer thread renders the video
    as keyframes arrive (an interval waits for its closing keyframe, or for the stream's end)."""
    from lgvsc_phy.link import Link, LinkAddresses, receive_stream
    from semantic.progressive import ProgressiveStream

    stream = ProgressiveStream(args.decoder, _diffusion(args))
    outcome: dict = {}

    def write() -> None:
        try:
            stream.wait_ready()
            outcome["decoded"] = decoded = stream.decoded()
            outcome["count"] = _write(args.output, decoded)
        except Exception as exc:  # reported by the main thread, after the link is closed  # noqa: BLE001
            outcome["error"] = exc

    relay = _iq_relay(args, "rx")
    runner = FlowgraphRunner(specs=_radio_specs(args, "rx"))
    _start_radio(runner, args.usrp)
    if relay is not None:
        relay.start()
    writer = threading.Thread(target=write, name="lgvsc-writer", daemon=True)
    writer.start()
    stop = threading.Event()  # SIGTERM / Ctrl-C: stop receiving, keep and write what arrived
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Link(LinkAddresses.from_base_port(args.base_port)) as link:
            got = receive_stream(link, args.idle, args.deadline, check=runner.check, stop=stop,
                                 on_pdu=lambda pdu: stream.add(pdu.offset, pdu.payload),
                                 first_pdu_timeout_s=args.wait_first)
        if got.fault:  # said at once; writing the rest of the video may take a while
            print(f"lgvsc receive: {got.fault} after {got.pdus_received}/{got.pdus_total or '?'} PDUs; "
                  "writing what arrived", file=sys.stderr, flush=True)
    finally:
        stream.finish()
        runner.stop()
        if relay is not None:
            relay.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    writer.join()
    if not got.pdus_received:
        waited = min(args.deadline, args.wait_first if args.wait_first is not None else args.idle)
        # IQ from a flowgraph of the user's own reaches rx.grc's ZeroMQ source only with tags passed.
        own_iq = "; a sender of your own needs Pass Tags on its ZeroMQ sink" if args.iq_in else ""
        raise LinkError(got.fault or f"no PDU arrived within {waited:g} s (--wait-first waits longer for a sender "
                                     f"that starts later{own_iq})")
    if "error" in outcome:
        if got.fault:
            raise DecoderError(f"{got.fault}; {outcome['error']}") from None
        raise outcome["error"]
    degraded = bool(got.fault) or got.pdus_received < got.pdus_total
    if degraded and not got.fault:
        print(f"receive: no data for {args.idle:g} s, ended with {got.pdus_received}/{got.pdus_total} PDUs "
              f"(lost {len(got.lost_pdus)}); wrote what arrived", file=sys.stderr)
    decoded, count = outcome["decoded"], outcome["count"]
    decoded.keyframes_received = sorted(stream.images) if stream.plan is not None else decoded.keyframes_received
    report = {"pdus_received": got.pdus_received, "pdus_total": got.pdus_total, "lost_pdus": got.lost_pdus,
              "frames_out": count, "keyframes_received": decoded.keyframes_received,
              **receiver_estimates(got.meta),  # snr_estimate_db, cfo_estimate, sfo_estimate_ppm
              "backends": {**decoded.header.backends, "decoder": decoded.backend}, "wall_s": got.wall_s,
              "fault": got.fault}
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    print(f"{args.output}: {count} frames from {got.pdus_received}/{got.pdus_total} PDUs "
          f"(keyframes {len(decoded.keyframes_received)}/{len(decoded.keyframes_expected) or '?'})")
    return EXIT_DEGRADED if degraded else 0


def cmd_keys(args: argparse.Namespace) -> int:
    public, secret = make_keys(args.directory, args.name)
    print(f"{public} (give this to the other host), {secret} (keep it here, mode 600)")
    return 0


def _radio_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--usrp", metavar="ARGS", help="UHD device args (e.g. 'type=b200'); without it IQ goes over ZMQ")
    p.add_argument("--freq", type=float, default=2.45e9, help="centre frequency in Hz")
    p.add_argument("--gain", type=float, default=30.0, help="gain in dB")
    p.add_argument("--rate", type=float, default=1e6, help="sample rate in S/s")
    p.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, help="first of the local ZMQ ports")
    p.add_argument("--curve-key", metavar="FILE.key_secret",
                   help="CurveZMQ: this host's secret key; encrypts the IQ hop between hosts (lgvsc keys)")


def _share(text: str) -> float | None:
    from lgvsc.rate_control import parse_base_share

    try:
        return parse_base_share(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _layer_args(parser: argparse.ArgumentParser, auto: str) -> None:
    from lgvsc.rate_control import BASE_SHARES, LAYER_CHOICES

    parser.add_argument("--layers", default="auto", choices=LAYER_CHOICES,
                        help="2: a base layer (coarser keyframes) on a robust MCS under the keyframe track, so a "
                             "receiver below the rate MCS's threshold still gets a whole video; 1: one layer; "
                             f"auto (default): {auto}")
    parser.add_argument("--base-share", type=_share, default=None, metavar="auto|FRACTION",
                        help="share of the on-air budget for the base layer; auto (default): the best of "
                             f"{', '.join(f'{s:g}' for s in BASE_SHARES)} for this video, by its PSNR over "
                             "receiver SNRs around the design SNR (one encode and two decodes each)")


def _cfo_range_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfo-range", type=float, default=1.0, metavar="SPACINGS",
                        help="the largest carrier offset the rx acquires, in subcarrier spacings (rate / 64); "
                             "default 1 (4 ppm at 2.45 GHz, 1 MS/s); 5 covers 20 ppm there, at some CPU on noise")


def _design_snr_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--design-snr-db", type=float,
                        help="with --mcs auto: plan MCS, protection and budget for this SNR (dB) without probing; "
                             "the channel's --snr-db stays unknown to the transmitter (broadcast, no feedback)")


def _feedback_args(parser: argparse.ArgumentParser) -> None:
    from lgvsc_phy.channel_spec import B2X0_SAMPLE_RATE

    parser.add_argument("--feedback-delay-s", type=float, metavar="SECONDS",
                        help="with --mcs auto and a probe: the receiver reports each burst's SNR back, and each "
                             "PDU goes on the MCS the newest report that is this old calls for (default: one probe "
                             "at the start, no feedback)")
    parser.add_argument("--sample-rate", type=float, default=B2X0_SAMPLE_RATE,
                        help=f"the radio rate the simulated air time stands for, to count --feedback-delay-s in "
                             f"samples (default {B2X0_SAMPLE_RATE:g}; --doppler is per sample too)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lgvsc", description=__doc__,
                                epilog="exit status: 0 done, 2 bad input or environment, 3 internal error (a bug: "
                                       "rerun with --debug for the traceback), 4 degraded (the stream ended early; "
                                       "what arrived was written)")
    debug_help = "show tracebacks instead of one-line errors"
    p.add_argument("--debug", action="store_true", help=debug_help)
    # --debug after the command too (lgvsc encode IN -o OUT --debug); SUPPRESS keeps the top-level value
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_parser_with(debug))

    e = sub.add_parser("encode", help="video -> LGVSC bitstream")
    e.add_argument("input", help="any FFmpeg-readable video")
    e.add_argument("-o", "--output", required=True, help="bitstream file (.lgv)")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--cbr", type=float, help="on-air CBR target; the byte budget follows from --mcs")
    g.add_argument("--bytes", type=int, help="byte budget of the whole bitstream")
    e.add_argument("--keyframes", type=int, help="fixed keyframe count instead of one derived from the budget")
    e.add_argument("--mcs", default="qpsk-1/2", help="MCS used to turn --cbr into bytes (default qpsk-1/2)")
    e.add_argument("--psss", default="classical",
                   help="PSSS backend: classical (CPU, calibrated image statistics), mllm:<HF id or path>, none")
    e.add_argument("--keyframe-mode", default="error-model", choices=["error-model", "psss"],
                   help="error-model: where the decoder gains most (default); psss: the paper's S_rel > 0.35 rule")
    e.add_argument("--describe", default="none",
                   help="descriptions per keyframe interval: none (default), tags (CPU words from colour and "
                        "motion), mllm:<HF id or path> (vision-language captions)")
    e.add_argument("--max-frames", type=int, help="encode only the first N frames")
    _image_args(e)
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="LGVSC bitstream -> video (exactly the source frame count and rate)")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    _decoder_args(d)
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("inspect", help="print every element of a bitstream")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    i.add_argument("--contact-sheet", metavar="PNG", help="also draw the keyframes with their captions")
    i.set_defaults(func=cmd_inspect)

    v = sub.add_parser("evaluate", help="PSNR, SSIM and VMAF of a reconstruction against its reference")
    v.add_argument("reference")
    v.add_argument("output")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_evaluate)

    lb = sub.add_parser("loopback", help="through the tx, channel and rx flowgraphs as separate processes")
    lb.add_argument("input")
    lb.add_argument("-o", "--output", required=True)
    add_channel_options(lb, required=["snr_db"])
    lb.add_argument("--cbr", type=float, default=1e-3, help="on-air CBR target that sets the byte budget")
    lb.add_argument("--mcs", default="auto",
                    help="auto, or bpsk|qpsk|16qam|64qam with -1/2|-2/3|-3/4|-5/6, e.g. qpsk-3/4")
    _decoder_args(lb)
    lb.add_argument("--psss", default="classical", help="PSSS backend for keyframe scores and the report")
    lb.add_argument("--describe", default="none", help="description backend: none, tags, mllm:<HF id or path>")
    lb.add_argument("--no-probe", action="store_true",
                    help="with --mcs auto: choose from --snr-db instead of the effective SNR a probe burst measures")
    _design_snr_arg(lb)
    _feedback_args(lb)
    _layer_args(lb, "layered with --design-snr-db (no feedback), one layer when a probe adapts the link")
    lb.add_argument("--no-protect", action="store_true",
                    help="send the stream's critical prefix (header, timing, motion, text) on the rate MCS too")
    lb.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                    help=f"first of the {PORT_SPAN} TCP ports used on 127.0.0.1")
    lb.add_argument("--max-frames", type=int, help="send only the first N frames")
    _cfo_range_arg(lb)
    lb.add_argument("--deadline", type=float, default=600.0, help="give up on the link after this many seconds")
    _image_args(lb, loss_from_channel=True)
    lb.add_argument("--report", help="write the report JSON here")
    lb.add_argument("--html", help="write a side-by-side HTML report here")
    lb.set_defaults(func=cmd_loopback)

    snd = sub.add_parser("send", help="encode and transmit a video (USRP with --usrp, else IQ over ZMQ)")
    snd.add_argument("input")
    g = snd.add_mutually_exclusive_group()
    g.add_argument("--cbr", type=float, default=1e-3, help="on-air CBR target that sets the byte budget")
    g.add_argument("--bytes", type=int, help="byte budget of the bitstream")
    snd.add_argument("--mcs", default="qpsk-1/2",
                     help="MCS, or auto with --snr-db (the receiver follows it from the burst headers)")
    snd.add_argument("--snr-db", "--design-snr-db", type=float,
                     help="the Es/N0 the transmission is planned for (--mcs auto): there is no feedback")
    snd.add_argument("--describe", default="none", help="description backend: none, tags, mllm:<HF id or path>")
    snd.add_argument("--no-protect", action="store_true", help="no more robust MCS for the critical prefix")
    _layer_args(snd, "layered (a transmission has no feedback); with --bytes, one layer")
    snd.add_argument("--iq-out", help="ZMQ address the IQ is pushed on (bind), default the base port + 1")
    snd.add_argument("--amplitude", type=float, default=0.25, help="digital back-off for the USRP")
    snd.add_argument("--repeat", type=int, default=1, help="send the stream this many times")
    snd.add_argument("--max-frames", type=int)
    _image_args(snd)
    snd.add_argument("--curve-clients", metavar="DIR", help="with --curve-key: only receivers whose public "
                     "key (.key) is in DIR may connect")
    _radio_args(snd)
    snd.set_defaults(func=cmd_send)

    rcv = sub.add_parser("receive", help="receive a video (USRP with --usrp, else IQ over ZMQ) and decode it")
    rcv.add_argument("-o", "--output", required=True)
    rcv.add_argument("--iq-in", help="ZMQ address to pull IQ from (e.g. tcp://sender:52002)")
    rcv.add_argument("--timeout", "--idle", dest="idle", type=float, default=5.0,
                     help="end after this many seconds of silence, counted from the start and from each PDU "
                          "(then write what arrived)")
    rcv.add_argument("--wait-first", type=float, metavar="S",
                     help="before the first PDU, wait this long instead of --timeout (a sender started later)")
    rcv.add_argument("--deadline", type=float, default=120.0, help="give up after this many seconds")
    _decoder_args(rcv)
    rcv.add_argument("--report", help="write a JSON report here")
    rcv.add_argument("--curve-server-key", metavar="FILE.key", help="with --curve-key: the sender's public key")
    _cfo_range_arg(rcv)
    _radio_args(rcv)
    rcv.set_defaults(func=cmd_receive)

    k = sub.add_parser("keys", help="make a CurveZMQ key pair for send/receive across hosts")
    k.add_argument("directory")
    k.add_argument("name", help="e.g. the host's name: writes NAME.key (public) and NAME.key_secret")
    k.set_defaults(func=cmd_keys)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.monotonic()
    keep_freed_buffers()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("lgvsc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`lgvsc inspect S.lgv | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except EXPECTED_ERRORS as exc:
        if args.debug:
            raise
        print(f"lgvsc {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        print(f"lgvsc {args.command}: internal error after {time.monotonic() - t0:.1f} s: {type(exc).__name__}: "
              f"{_one_line(exc)} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    """The message's first line (a KeyError's without its quotes), or the exception's type."""
    text = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _parser_with(*parents: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """Subcommand parsers that inherit ``parents``' options."""
    class Parser(argparse.ArgumentParser):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["parents"] = [*kwargs.get("parents", []), *parents]
            super().__init__(*args, **kwargs)
    return Parser


if __name__ == "__main__":
    sys.exit(main())
