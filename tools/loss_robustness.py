"""LGVSC vs the H.264/H.265 baseline at the same bytes when link PDUs are lost.

Both streams are cut into the PDUs the link would send at ``--mcs``; a random fraction of them
is zero-filled, as the link's reassembly does with lost PDUs; each is then decoded (LGVSC's
``interp``, FFmpeg with concealment) to the exact frame count and compared with the source.

    python -m tools.loss_robustness VIDEO [--bytes 15000] [--mcs 16qam-1/2] [--loss 0 0.03 0.1 0.3]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from lgvsc_phy.mcs import get_mcs
from lgvsc_phy.protection import Protection
from semantic.decoder import decode_bitstream
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("--bytes", type=int, default=15000)
    ap.add_argument("--mcs", default="16qam-1/2")
    ap.add_argument("--scheme", default="h264", choices=list(SCHEMES))
    ap.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.03, 0.1, 0.3])
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    source = FrameSource.of_file(args.input)
    frames = np.stack(list(source.open()))
    lgvsc = encode_source(source, EncoderConfig(byte_budget=args.bytes, psss="none")).data
    baseline = encode_to_budget(source, args.scheme, args.bytes)
    link = Protection.uniform(get_mcs(args.mcs))
    rng = np.random.default_rng(3)
    rows = []
    for fraction in args.loss:
        a, b = [], []
        for _ in range(args.trials):
            a.append(float(np.mean(psnr_frames(frames, decode_bitstream(lose(lgvsc, link, fraction, rng)).frames))))
            b.append(float(np.mean(psnr_frames(frames, np.stack(list(decode(lose(baseline.data, link, fraction, rng),
                                                                            baseline)))))))
        rows.append({"pdu_loss": fraction, "lgvsc_psnr_db": float(np.mean(a)),
                     f"{args.scheme}_psnr_db": float(np.mean(b))})
        print(f"PDU loss {fraction:4.2f}: LGVSC (interp) {np.mean(a):5.2f} dB   {args.scheme} {np.mean(b):5.2f} dB",
              flush=True)
    print(json.dumps({"bytes": [len(lgvsc), len(baseline.data)], "mcs": args.mcs, "rows": rows}))


if __name__ == "__main__":
    main()
