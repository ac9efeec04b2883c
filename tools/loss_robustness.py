"""LGVSC vs the separation baselines (H.264, H.265, AV1) at the same bytes when link PDUs are lost.

Every stream is cut into the PDUs the link would send at ``--mcs``; a random fraction of them
is zero-filled, as the link's reassembly does with lost PDUs; each is then decoded (LGVSC's
``interp``, FFmpeg with concealment) to the exact frame count and compared with the source.
LGVSC runs twice: its stream for a clean link (long prediction chains in the keyframe track),
and its stream for the loss the link is expected to show (``EncoderConfig.expected_loss``:
more recovery points), as its rate control would choose once the link reports that loss.

    python -m tools.loss_robustness VIDEO [--bytes 15000] [--mcs 16qam-1/2] [--loss 0 0.03 0.1 0.3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.protection import Protection
from semantic.decoder import DecoderError, decode_bitstream
from semantic.encoder import EncoderConfig, FrameSource, encode_source
from semantic.metrics import psnr_frames
from semantic.separation import SCHEMES, decode, encode_to_budget


def lose(data: bytes, protection: Protection, fraction: float, rng: np.random.Generator) -> bytes:
    pdus = protection.pdus(data, 1)
    lost = set(rng.choice(len(pdus), int(round(fraction * len(pdus))), replace=False).tolist())
    out = bytearray(data)
    for pdu, _ in pdus:
        if pdu.seq in lost:
            out[pdu.offset : pdu.offset + len(pdu.payload)] = bytes(len(pdu.payload))
    return bytes(out)


def _psnr(frames: np.ndarray, decoded: np.ndarray) -> float:
    return float(np.mean(psnr_frames(frames, decoded)))


def _lgvsc_frames(damaged: bytes, frames: np.ndarray) -> np.ndarray:
    """What LGVSC's receiver shows; with both header copies lost, mid-grey at the session's size
    and length, the rule the baselines' undecodable streams follow."""
    try:
        return decode_bitstream(damaged).frames
    except DecoderError:
        return np.full_like(frames, 128)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("--bytes", type=int, default=15000)
    ap.add_argument("--mcs", default="16qam-1/2")
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    ap.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.03, 0.1, 0.3])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    source = FrameSource.of_file(args.input)
    frames = np.stack(list(source.open()))

    def lgvsc(expected_loss: float) -> bytes:
        return encode_source(source, EncoderConfig(byte_budget=args.bytes, psss="none",
                                                   expected_loss=expected_loss)).data

    clean = lgvsc(0.0)
    baselines = {scheme: encode_to_budget(source, scheme, args.bytes) for scheme in args.schemes}
    link = Protection.uniform(get_mcs(args.mcs))
    rows = []
    for fraction in args.loss:
        adapted = clean if fraction == 0 else lgvsc(fraction)
        streams = {"lgvsc": (clean, None), "lgvsc_adapted": (adapted, None)}
        streams.update({scheme: (coded.data, coded) for scheme, coded in baselines.items()})
        scores: dict[str, list[float]] = {name: [] for name in streams}
        for trial in range(args.trials):
            for name, (data, coded) in streams.items():
                # every scheme meets the same draw of lost PDU numbers in a trial
                damaged = lose(data, link, fraction, np.random.default_rng([3, trial, int(fraction * 1000)]))
                out = _lgvsc_frames(damaged, frames) if coded is None else np.stack(list(decode(damaged, coded)))
                scores[name].append(_psnr(frames, out))
        row = {"pdu_loss": fraction, **{f"{name}_psnr_db": float(np.mean(v)) for name, v in scores.items()}}
        best = max(args.schemes, key=lambda scheme: row[f"{scheme}_psnr_db"])
        row["best_baseline"], row["margin_db"] = best, row["lgvsc_adapted_psnr_db"] - row[f"{best}_psnr_db"]
        rows.append(row)
        print(f"PDU loss {fraction:4.2f}: LGVSC {row['lgvsc_psnr_db']:5.2f} dB, adapted to the loss "
              f"{row['lgvsc_adapted_psnr_db']:5.2f} dB; " + ", ".join(f"{s} {row[s + '_psnr_db']:5.2f}"
                                                                   for s in args.schemes)
              + f" dB; margin over {best} {row['margin_db']:+.2f} dB", flush=True)
    result = {"bytes": {"lgvsc": len(clean), **{s: len(c.data) for s, c in baselines.items()}}, "mcs": args.mcs,
              "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
