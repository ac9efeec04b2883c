"""Measure ``--base-share auto`` on a video without the radio: the layered stream at each candidate
share (full-SNR and base-only PSNR, the fit's score), the share the fit chose, and the one-layer
stream's PSNR, for the layering cost (one layer minus layered, at full SNR).

    python -m tools.base_share VIDEO [VIDEO ...] [--cbr 1e-3] [--design-snr-db 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lgvsc.rate_control import Layering, plan_stream, stream_psnr
from lgvsc_phy.mcs import auto_mcs
from semantic.encoder import EncoderConfig, FrameSource


def measure(video: Path, cbr: float, design_snr_db: float, max_frames: int | None = None) -> dict:
    source = FrameSource.of_file(video, max_frames)
    mcs = auto_mcs(design_snr_db)
    config = EncoderConfig(psss="none")
    t = time.monotonic()
    single = plan_stream(source, cbr, mcs, config)
    single_s = time.monotonic() - t
    single_psnr = stream_psnr(source, single.encoded.data)
    t = time.monotonic()
    layered = plan_stream(source, cbr, mcs, config, layering=Layering(design_snr_db=design_snr_db))
    fit_s = time.monotonic() - t
    rows = []
    for s in layered.base_share_scores or []:
        rows.append({**s.as_dict(), "layering_cost_db": single_psnr - s.full_psnr_db,
                     "base_over_full": s.base_psnr_db / s.full_psnr_db})
    return {"video": str(video), "cbr": cbr, "design_snr_db": design_snr_db, "mcs": mcs.name,
            "single_layer_psnr_db": single_psnr, "single_layer_encode_s": single_s,
            "chosen_share": layered.base_share, "fit_s": fit_s, "candidates": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--cbr", type=float, default=1e-3)
    ap.add_argument("--design-snr-db", type=float, default=10.0)
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    for video in args.videos:
        r = measure(video, args.cbr, args.design_snr_db, args.max_frames)
        results.append(r)
        print(f"{video.name}: {r['mcs']}, one layer {r['single_layer_psnr_db']:.2f} dB "
              f"(encode {r['single_layer_encode_s']:.0f} s); auto chose {r['chosen_share']} in {r['fit_s']:.0f} s")
        for c in r["candidates"]:
            mark = "*" if c["share"] == r["chosen_share"] else " "
            print(f"  {mark} share {c['share']:.2f}: full {c['full_psnr_db']:.2f}, base-only {c['base_psnr_db']:.2f} "
                  f"({100 * c['base_over_full']:.0f} %), cost {c['layering_cost_db']:+.2f} dB, "
                  f"expected {c['expected_psnr_db']:.2f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
