"""The ``interp`` decoder's frame interpolation measured against its first version and the plain
cross-fade, on the bundled clips (bikes, bigbuckbunny) and the held-out corpus.

    python -m tools.interp_compare                          # every clip, ~3.5 min of CPU on 2 cores
    python -m tools.interp_compare --speed                  # ms per interval, 640x272 and 1280x720
    python -m tools.interp_compare --clips bikes photo_pan_cut --spacings 8 --keyframes coded

Keyframes sit every N frames (``--spacings``, 4 8 16) of each shot, plus each shot's last frame:
uniform spacing rather than ``select_keyframes``, so that every method fills the same intervals
and N is the interval length being measured. Shots come from the cuts the encoder's analysis
detects (``semantic.analysis``), as in a real stream: no interval crosses a detected cut. The
keyframes are either the source frames (``original``) or real lossy keyframes (``coded``:
``encode_image`` at ``--bytes``, decoded the way a receiver decodes them). The side information
(motion, pan per interval, cuts) is what the encoder would send for that keyframe plan. Frames
come out of the decoder's own ``render_planned`` with each method's tween; PSNR and SSIM are
measured on the interpolated frames only (keyframes are the same for every method).

Long clips are cut to keep a run short: each shot keeps its first frames, as many as
``--pixels`` allows (at least 17: one interval of 16), at most ``--shot-frames``.

``old`` is a verbatim copy of the interp decoder before global motion and occlusion handling
(``interp_v1`` below), kept here only to measure against.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lgvsc.sample_videos import sample_video
from semantic.analysis import analyse
from semantic.bitstream import StreamHeader
from semantic.decoder import TWEENS, Keyframe, SideInfo, Tween, render_planned
from semantic.image_codec import encode_image
from semantic.keyframes import shot_ranges
from semantic.metrics import psnr_frames, ssim_frames
from semantic.video_io import read_video
from tools.heldout_corpus import build_corpus

# --- the interp decoder as it was before (semantic/decoder.py at c165b72), for comparison only ---

V1_FLOW_WIDTH = 320
V1_STRAIGHT_MOTION_RATIO = 4.0


def _v1_flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    h, w = src.shape[:2]
    width = min(V1_FLOW_WIDTH, w)
    height = max(8, round(h * width / w))
    grey = [cv2.resize(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA)
            for x in (src, dst)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    small = dis.calc(grey[0], grey[1], None)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) * (w / width)


def interp_v1(a: Keyframe, b: Keyframe, side: SideInfo) -> Iterator[np.ndarray]:
    """Warp both keyframes along their DIS flows and blend by time; cross-fade where the flows
    disagree, and over the whole interval when the side information's path length says the
    content went far beyond the net displacement."""
    if b.frame - a.frame < 2:
        return
    f_ab, f_ba = _v1_flow(a.image, b.image), _v1_flow(b.image, a.image)
    path = side.path_length(a.frame, b.frame)
    net = float(np.median(np.linalg.norm(f_ab, axis=2)))
    if path is not None and path > V1_STRAIGHT_MOTION_RATIO * max(net, 1.0):
        yield from TWEENS["crossfade"](a, b, side)
        return
    h, w = a.image.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = cv2.remap(f_ba, gx + f_ab[..., 0], gy + f_ab[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = np.linalg.norm(f_ab + back, axis=2)
    trust = np.clip(1.5 - error / 2.0, 0.0, 1.0)[..., None]
    fa, fb = a.image.astype(np.float32), b.image.astype(np.float32)
    for t in range(a.frame + 1, b.frame):
        alpha = (t - a.frame) / (b.frame - a.frame)
        wa = cv2.remap(a.image, gx - alpha * f_ab[..., 0], gy - alpha * f_ab[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        wb = cv2.remap(b.image, gx - (1 - alpha) * f_ba[..., 0], gy - (1 - alpha) * f_ba[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        warped = (1 - alpha) * wa + alpha * wb
        plain = (1 - alpha) * fa + alpha * fb
        yield np.clip(trust * warped + (1 - trust) * plain + 0.5, 0, 255).astype(np.uint8)


# --- the comparison ---

METHODS: dict[str, Tween] = {"old": interp_v1, "new": TWEENS["interp"], "crossfade": TWEENS["crossfade"]}
BUNDLED = ("bikes", "bigbuckbunny")
TIE_DB = 0.05  # a gain smaller than this is a tie


@dataclass
class Cell:
    """One clip at one keyframe spacing from one kind of keyframe: every method's scores."""

    clip: str
    size: str
    spacing: int
    keyframes: str
    frames: int  # interpolated frames measured
    intervals: int  # intervals with at least one frame to fill
    psnr: dict[str, float] = field(default_factory=dict)
    ssim: dict[str, float] = field(default_factory=dict)
    ms_per_interval: dict[str, float] = field(default_factory=dict)


def clip_paths(corpus: Path, names: list[str] | None) -> dict[str, Path]:
    paths = {name: sample_video(name) for name in BUNDLED if not names or name in names}
    held = [n for n in names or [] if n not in BUNDLED]
    if not names or held:
        paths |= build_corpus(corpus, held or None).clips
    return paths


def load_clip(path: Path, pixels: float, shot_frames: int) -> tuple[np.ndarray, object]:
    """The clip with each shot cut to its first frames (see the module notes), and its analysis."""
    video = read_video(path, max_frames=2000)
    frames = video.frames
    t, h, w = frames.shape[:3]
    shots = shot_ranges(analyse(iter(frames), video.fps).cuts, t)
    keep = max(17, int(pixels / (w * h) / len(shots)))
    keep = min(keep, shot_frames)
    frames = np.concatenate([frames[lo : min(hi + 1, lo + keep)] for lo, hi in shots])
    return frames, analyse(iter(frames), video.fps)


def keyframe_plan(shots: list[tuple[int, int]], spacing: int) -> list[int]:
    """Every ``spacing`` frames from each shot's first, and each shot's last frame."""
    return sorted({f for lo, hi in shots for f in (*range(lo, hi + 1, spacing), hi)})


def timed(tween: Tween, spent: list[float]) -> Tween:
    """``tween`` with the seconds each interval takes appended to ``spent`` (keyframe decoding
    excluded)."""

    def run(a: Keyframe, b: Keyframe, side: SideInfo) -> Iterator[np.ndarray]:
        a.image, b.image  # noqa: B018 - decode before the clock starts
        start = time.perf_counter()
        frames = list(tween(a, b, side))
        if frames:
            spent.append(time.perf_counter() - start)
        yield from frames

    return run


def measure(frames: np.ndarray, analysis, plan: list[int], keyframe: Callable[[int], Keyframe],  # noqa: ANN001
            methods: dict[str, Tween], ssim: bool) -> tuple[dict, dict, dict, int, int]:
    t, h, w = frames.shape[:3]
    header = StreamHeader(w, h, analysis.info.fps, t, len(plan))
    side = SideInfo(analysis.cuts, plan, analysis.interval_motion(plan), analysis.interval_pan(plan))
    keys = set(plan)
    psnr, ssims, speed, count, intervals = {}, {}, {}, 0, 0
    for name, tween in methods.items():
        spent: list[float] = []
        out = render_planned(plan, header, side, timed(tween, spent), lambda i: keyframe(plan[i]))
        p, s = [], []
        for index, frame in enumerate(out):
            if index not in keys:
                p.append(float(psnr_frames(frames[index : index + 1], frame[None])[0]))
                if ssim:
                    s.append(float(ssim_frames(frames[index : index + 1], frame[None])[0]))
        psnr[name], ssims[name] = float(np.mean(p)) if p else float("nan"), float(np.mean(s)) if s else float("nan")
        speed[name] = 1e3 * float(np.mean(spent)) if spent else float("nan")
        count, intervals = len(p), len(spent)
    return psnr, ssims, speed, count, intervals


def compare_clip(name: str, path: Path, args: argparse.Namespace, methods: dict[str, Tween]) -> list[Cell]:
    frames, analysis = load_clip(path, args.pixels, args.shot_frames)
    t, h, w = frames.shape[:3]
    shots = shot_ranges(analysis.cuts, t)
    plans = {n: keyframe_plan(shots, n) for n in args.spacings}
    coded: dict[int, bytes] = {}
    if "coded" in args.keyframes:
        for f in sorted(set().union(*plans.values())):
            coded[f] = encode_image(frames[f], args.bytes).data
    sources = {"original": lambda f: Keyframe(f, b"", w, h, _image=frames[f]),
               "coded": lambda f: Keyframe(f, coded[f], w, h)}
    cells = []
    for n in args.spacings:
        for kind in args.keyframes:
            psnr, ssim, speed, count, intervals = measure(frames, analysis, plans[n], sources[kind], methods,
                                                          not args.no_ssim)
            cells.append(Cell(name, f"{w}x{h}", n, kind, count, intervals, psnr, ssim, speed))
    return cells


def print_clip(cells: list[Cell], methods: list[str], file=sys.stdout) -> None:  # noqa: ANN001
    c0 = cells[0]
    print(f"\n{c0.clip} ({c0.size}, shots cut to the measured frames)", file=file)
    head = "  N  keyframes  frames " + " ".join(f"{m:>9}" for m in methods) + "  new-old  new-cf   SSIM " + \
        " ".join(f"{m[:5]:>6}" for m in methods) + "   ms/interval " + " ".join(f"{m[:5]:>6}" for m in methods)
    print(head, file=file)
    for c in cells:
        if not c.frames:
            print(f"{c.spacing:3d}  {c.keyframes:9s}  {0:6d}  (no frame between keyframes)", file=file)
            continue
        gain_old = c.psnr["new"] - c.psnr["old"] if "old" in c.psnr and "new" in c.psnr else float("nan")
        gain_cf = c.psnr["new"] - c.psnr["crossfade"] if "crossfade" in c.psnr and "new" in c.psnr else float("nan")
        print(f"{c.spacing:3d}  {c.keyframes:9s}  {c.frames:6d} " + " ".join(f"{c.psnr[m]:9.2f}" for m in methods)
              + f"  {gain_old:+7.2f} {gain_cf:+7.2f}        " + " ".join(f"{c.ssim[m]:6.3f}" for m in methods)
              + "               " + " ".join(f"{c.ms_per_interval[m]:6.0f}" for m in methods), file=file)


def summary(cells: list[Cell], file=sys.stdout) -> None:  # noqa: ANN001
    measured = [c for c in cells if c.frames]
    print("\nSummary over", len(measured), "cells (clip x N x keyframes), PSNR of interpolated frames:", file=file)
    for ref in ("old", "crossfade"):
        if not measured or ref not in measured[0].psnr or "new" not in measured[0].psnr:
            continue
        gains = np.array([c.psnr["new"] - c.psnr[ref] for c in measured])
        ssim_gains = [c.ssim["new"] - c.ssim[ref] for c in measured if not np.isnan(c.ssim.get("new", np.nan))]
        wins, losses = int((gains > TIE_DB).sum()), int((gains < -TIE_DB).sum())
        print(f"  new vs {ref:9s}: mean {gains.mean():+.2f} dB (median {np.median(gains):+.2f}, min {gains.min():+.2f},"
              f" max {gains.max():+.2f}); wins {wins}, losses {losses}, ties {len(gains) - wins - losses}"
              f" (|gain| <= {TIE_DB} dB)" + (f"; SSIM mean {np.mean(ssim_gains):+.4f}" if ssim_gains else ""),
              file=file)
        for kind in sorted({c.keyframes for c in measured}):
            for n in sorted({c.spacing for c in measured}):
                g = [c.psnr["new"] - c.psnr[ref] for c in measured if c.keyframes == kind and c.spacing == n]
                if g:
                    print(f"      {kind:9s} N={n:2d}: mean {np.mean(g):+.2f} dB over {len(g)} clips, "
                          f"wins {sum(x > TIE_DB for x in g)}, losses {sum(x < -TIE_DB for x in g)}", file=file)
        lost = [c for c in measured if c.psnr["new"] - c.psnr[ref] < -TIE_DB]
        for c in lost:
            print(f"      loses to {ref}: {c.clip} N={c.spacing} {c.keyframes}: "
                  f"{c.psnr['new'] - c.psnr[ref]:+.2f} dB", file=file)
    for m in measured[0].ms_per_interval if measured else []:
        by_size: dict[str, list[float]] = {}
        for c in measured:
            by_size.setdefault(c.size, []).append(c.ms_per_interval[m] / max(c.spacing - 1, 1))
        print(f"  {m:9s} ms per interpolated frame: "
              + ", ".join(f"{s} {np.nanmean(v):.1f}" for s, v in by_size.items()), file=file)


def speed(repeats: int = 5, file=sys.stdout) -> None:  # noqa: ANN001
    """Milliseconds per interval, wall clock and CPU (all threads), best of ``repeats``, original
    keyframes, no side information, on bikes (640x272) and bigbuckbunny (1280x720)."""
    print(f"\nms per interval, wall (CPU), best of {repeats}", file=file)
    for name in BUNDLED:
        frames = read_video(sample_video(name), max_frames=17).frames
        t, h, w = frames.shape[:3]
        for n in (4, 8, 16):
            a, b = (Keyframe(f, b"", w, h, _image=frames[f]) for f in (0, n))
            best = {}
            for method, tween in METHODS.items():
                spent = []
                for _ in range(repeats):
                    start, cpu = time.perf_counter(), time.process_time()
                    for _frame in tween(a, b, SideInfo()):
                        pass
                    spent.append((time.perf_counter() - start, time.process_time() - cpu))
                best[method] = (1e3 * min(s[0] for s in spent), 1e3 * min(s[1] for s in spent))
            print(f"  {w}x{h} N={n:2d}: " + "  ".join(f"{m} {v[0]:5.0f} ({v[1]:4.0f} CPU)" for m, v in best.items()),
                  file=file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("out/heldout"), help="held-out corpus directory (built "
                    "there when missing, ~15 s)")
    ap.add_argument("--clips", nargs="+", help="only these clips (bundled or held-out names)")
    ap.add_argument("--spacings", nargs="+", type=int, default=[4, 8, 16])
    ap.add_argument("--keyframes", nargs="+", choices=("original", "coded"), default=["original", "coded"])
    ap.add_argument("--bytes", type=int, default=1500, help="coded keyframe size (default 1500)")
    ap.add_argument("--pixels", type=float, default=10e6, help="pixels kept per clip (default 10e6)")
    ap.add_argument("--shot-frames", type=int, default=97, help="frames kept per shot at most (default 97)")
    ap.add_argument("--no-ssim", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every cell here")
    ap.add_argument("--speed", action="store_true", help="only time each method per interval on the bundled clips")
    args = ap.parse_args(argv)
    if args.speed:
        speed()
        return 0
    start = time.perf_counter()
    cells: list[Cell] = []
    for name, path in clip_paths(args.corpus, args.clips).items():
        clip_cells = compare_clip(name, path, args, METHODS)
        print_clip(clip_cells, list(METHODS))
        sys.stdout.flush()
        cells += clip_cells
    summary(cells)
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stdout)
    if args.json:
        args.json.write_text(json.dumps([c.__dict__ for c in cells], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
