"""VMAF speed on this machine: the 250 frames of bikes.mp4 (640x272) against an H.264 CRF 32
copy, scored as lgvsc/loopback.py scores (VmafMeter, one pair at a time), at a few batch sizes,
torch thread counts and batches scored at once (worker threads).

    python -m tools.bench_vmaf [--clip bikes] [--frames 250] [--batches 0,1,2,4] [--threads 1,2] [--workers 1,2]

Batch 0 is VmafMeter's default (frames per pass from VMAF_BATCH_PIXELS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from lgvsc.sample_videos import sample_video
from semantic import metrics
from semantic.video_io import read_video, write_video


def _distorted(ref: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crf32.mp4"
        write_video(path, ref, Fraction(25), crf=32)
        return read_video(path).frames


def time_meter(ref: np.ndarray, out: np.ndarray, batch: int, workers: int) -> tuple[float, float]:
    """(seconds, mean VMAF) of one streamed pass."""
    meter = metrics.VmafMeter(batch=batch, workers=workers)
    t0 = time.perf_counter()
    for r, o in zip(ref, out, strict=True):
        meter.update(r, o)
    score = meter.mean()
    return time.perf_counter() - t0, float(score)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="bikes", help="a bundled sample (bigbuckbunny: 1280x720)")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--batches", default="0,1,2,4")
    ap.add_argument("--threads", default=str(metrics.VMAF_THREADS))
    ap.add_argument("--workers", default=f"1,{metrics.VMAF_WORKERS}", help="batches scored at once")
    args = ap.parse_args()
    ref = read_video(sample_video(args.clip), max_frames=args.frames).frames
    out = _distorted(ref)
    metrics.vmaf(ref[:2], out[:2])  # load the model outside the timing
    print(f"{len(ref)} frames {ref.shape[2]}x{ref.shape[1]}")
    for threads in (int(t) for t in args.threads.split(",")):
        metrics.VMAF_THREADS = threads
        for workers in (int(w) for w in args.workers.split(",")):
            for batch in (int(b) for b in args.batches.split(",")):
                seconds, score = time_meter(ref, out, batch, workers)
                print(f"{threads} threads, {workers} workers, batch {batch:2d}: {seconds:5.1f} s "
                      f"({1000 * seconds / len(ref):.0f} ms/frame), VMAF {score:.2f}", flush=True)


if __name__ == "__main__":
    main()
