"""Semantic codec benchmark on the bundled real videos (no radio): quality, size, speed, memory.

    python -m tools.bench_codec --json out/bench_codec.json [--quick]

For each clip and CBR (1e-4, 3e-4, 1e-3; the byte budget is what that many on-air symbols carry
at qpsk-1/2, as `lgvsc loopback --cbr` counts it): PSNR, SSIM, VMAF, PSSS of source vs output (backend
named), keyframes, bytes, encode and decode seconds and peak RSS (each run in a fresh process).
LPIPS and CLIP scores need weights that are not on this machine: reported as unavailable.
Also a rate-distortion comparison of keyframe image codecs at tiny sizes (WebP, AVIF, JPEG).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np
from PIL import Image, features

from semantic.memory import keep_freed_buffers
from semantic.metrics import format_vmaf

CLIPS = ("bikes", "bigbuckbunny", "carphone_pristine")
CBRS = (1e-4, 3e-4, 1e-3)


def _run(clip: str, cbr: float, decoder: str, queue: mp.Queue) -> None:
    """One clip at one CBR, streamed as `lgvsc loopback` does it (without the radio)."""
    keep_freed_buffers()  # as the `lgvsc` command does
    from lgvsc.loopback import Comparison
    from lgvsc.sample_videos import sample_video
    from lgvsc_phy.mcs import get_mcs
    from semantic.decoder import decode_bitstream
    from semantic.encoder import EncoderConfig, EncoderError, FrameSource, encode_source

    source = FrameSource.of_file(sample_video(clip))
    mcs = get_mcs("qpsk-1/2")
    row = {"clip": clip, "cbr_on_air": cbr, "decoder": decoder}
    try:
        t = time.perf_counter()
        encoded = encode_source(source, EncoderConfig(
            budget_for=lambda info: mcs.stream_bytes_for(cbr * info.source_values)))
        row["encode_s"] = time.perf_counter() - t
        h = encoded.header
        t = time.perf_counter()
        decoded = decode_bitstream(encoded.data, decoder)
        compared = Comparison(source, decoded, "classical", set())
        frames_out = sum(1 for _ in compared.frames())
        row["decode_s"] = time.perf_counter() - t  # decoding plus the per-frame metrics
        row.update(frames=h.frames, size=f"{h.width}x{h.height}", bytes=len(encoded.data),
                   keyframes=len(encoded.plan.frames), psnr_db=float(np.mean(compared.quality.psnr)),
                   ssim=float(np.mean(compared.quality.ssim)), vmaf=compared.quality.vmaf.mean(),
                   psss=compared.psss_value(), psss_backend="classical",
                   frames_out=frames_out, backends={**h.backends, "decoder": decoder},
                   keyframe_codecs=[img.codec for img in encoded.images] or [h.backends.get("img", "")])
    except EncoderError as exc:
        row["error"] = str(exc)
    row["lpips"] = row["clip_score"] = "unavailable (no weights on this machine)"
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(row)


def run_isolated(clip: str, cbr: float, decoder: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(clip, cbr, decoder, queue))
    proc.start()
    row = queue.get(timeout=900)
    proc.join()
    return row


def image_codecs(sizes: tuple[int, ...] = (300, 800, 2000)) -> dict:
    """PSNR of one keyframe per clip coded at each byte budget by each codec (best resolution and
    quality found by the same search the encoder uses for WebP)."""
    from lgvsc.sample_videos import sample_video
    from semantic.image_codec import MIN_SIDE
    from semantic.metrics import psnr
    from semantic.video_io import read_video

    codecs = {"webp": "WEBP", "jpeg": "JPEG"}
    if features.check("avif"):
        codecs["avif"] = "AVIF"
    out: dict = {}
    for clip in CLIPS:
        frame = read_video(sample_video(clip), max_frames=12).frames[-1]
        full = Image.fromarray(frame)
        for name, fmt in codecs.items():
            for budget in sizes:
                best = None
                for scale in np.geomspace(1.0, MIN_SIDE / min(full.size), 12):
                    size = (max(MIN_SIDE, round(full.width * scale)), max(MIN_SIDE, round(full.height * scale)))
                    img = full.resize(size, Image.LANCZOS) if scale < 1 else full
                    for quality in (90, 75, 60, 45, 30, 20, 10, 5, 1):
                        buf = io.BytesIO()
                        img.save(buf, format=fmt, quality=quality)
                        if buf.tell() <= budget:
                            back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB").resize(full.size))
                            score = psnr(frame[None], back[None])
                            if best is None or score > best[0]:
                                best = (score, size, quality, buf.tell())
                            break
                out.setdefault(clip, {}).setdefault(name, {})[str(budget)] = (
                    None if best is None else {"psnr_db": best[0], "size": f"{best[1][0]}x{best[1][1]}",
                                               "quality": best[2], "bytes": best[3]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quick", action="store_true", help="bikes only, and no cross-fade comparison")
    args = ap.parse_args()
    t0 = time.monotonic()
    clips = ("bikes",) if args.quick else CLIPS
    decoders = ("interp",) if args.quick else ("interp", "crossfade")
    rows = []
    for clip in clips:
        for cbr in CBRS:
            for decoder in decoders:
                row = run_isolated(clip, cbr, decoder)
                rows.append(row)
                if "error" in row:
                    print(f"{clip:18s} CBR {cbr:.0e} {decoder:9s} {row['error']}", flush=True)
                else:
                    print(f"{clip:18s} CBR {cbr:.0e} {decoder:9s} {row['bytes']:6d} B {row['keyframes']:3d} kf  "
                          f"PSNR {row['psnr_db']:.2f}  SSIM {row['ssim']:.3f}  VMAF {format_vmaf(row['vmaf'])}  "
                          f"PSSS {row['psss']:.3f}  "
                          f"enc {row['encode_s']:.1f}s dec {row['decode_s']:.1f}s  RSS {row['peak_rss_mb']:.0f} MB",
                          flush=True)
    result = {"runs": rows, "image_codecs": image_codecs(), "wall_s": time.monotonic() - t0}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    for clip, codecs in result["image_codecs"].items():
        print(clip, {c: {b: (round(v["psnr_db"], 2) if v else None) for b, v in r.items()} for c, r in codecs.items()})
    print(f"wrote {args.json} in {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
