"""Sweep LGVSC and the H.264/H.265 separation baselines over videos x SNR x CBR x channel, each
point a Ray task running the real tx/channel/rx flowgraphs, into ``DIR/results.csv``.

    python -m tools.sweep --videos bikes bigbuckbunny --schemes lgvsc,h264,h265 \\
        --snr-db 0,5,10,20 --cbr 1e-3,1e-4 --channel awgn,multipath --out out/sweep

Every scheme at a point gets the same on-air symbol budget (``cbr x source values``, every
sample the tx emits counted) at the MCS its own probe burst chose, so the comparison is at equal
bandwidth. Resumable: points already in ``results.csv`` with status ``ok`` are skipped; failed
points are rerun. Ray runs locally (``ray.init()``) unless ``--address`` names a cluster, whose
nodes need this package installed (``pip install -e .``) and GNU Radio.

Each point starts three flowgraph processes, so a point asks Ray for ``--cpus-per-point`` CPUs
(2 by default): on a 2-core machine points run one at a time, as timing-sensitive DSP should.

A point that fails is a row with its reason, at once, and the sweep goes on: an exception in the
point, and also a worker that dies under it (a native crash, the OOM killer), which Ray does not
retry (a crash on an input crashes again; a resumed sweep reruns failed points).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lgvsc.progress import Progress
from lgvsc.sample_videos import NAMES, sample_video
from lgvsc_phy.channel_spec import ChannelConfig, channel_settings, report_field_names, report_fields

# lgvsc layers as `--layers auto` does (two without feedback); lgvsc-single and lgvsc-layered force
# one and two layers.
LGVSC_LAYERS = {"lgvsc": "auto", "lgvsc-single": "1", "lgvsc-layered": "2"}
SCHEMES = (*LGVSC_LAYERS, "h264", "h265", "av1")
COLUMNS = ["video", "scheme", "backends", *report_field_names(), "design_snr_db", "feedback_delay_s", "layers",
           "base_share",
           "cbr_target", "cbr_on_air",
           "per",
           "psnr_db", "ssim", "vmaf", "psss", "frames_out", "wall_s", "frames_in", "mcs", "stream_bytes",
           "on_air_symbols", "psss_backend", "status", "key", "input"]
PORT_BASE, PORT_STRIDE = 20000, 10  # each point's flowgraphs use ports base .. base+9, below the ephemeral range


class SweepError(ValueError):
    pass


@dataclass(frozen=True)
class Point:
    input: str  # absolute path
    scheme: str
    snr_db: float
    cbr: float
    channel: str
    seed: int = 1
    design_snr_db: float | None = None  # the transmitter plans for this SNR (None: it probes the link)
    doppler: float | None = None  # normalized Doppler of a fading channel (None: the channel's default)
    feedback_delay_s: float | None = None  # after the probe, per-PDU MCS from reports this old (None: none)

    @property
    def video(self) -> str:
        return Path(self.input).stem

    @property
    def key(self) -> str:
        """Stable across runs and machines for the same grid point (resume matches on it)."""
        digest = hashlib.sha1(str(Path(self.input).resolve()).encode()).hexdigest()[:6]
        # axes added later appear only when set: older results.csv keys stay valid for resuming
        design = "" if self.design_snr_db is None else f"_design{self.design_snr_db:g}"
        doppler = "" if self.doppler is None else f"_fd{self.doppler:g}"
        feedback = "" if self.feedback_delay_s is None else f"_fb{self.feedback_delay_s:g}"
        return (f"{self.video}-{digest}_{self.scheme}_{self.channel}_snr{self.snr_db:g}_cbr{self.cbr:g}_s{self.seed}"
                f"{design}{doppler}{feedback}")

    def channel_config(self) -> ChannelConfig:
        """The point's channel; what the grid does not vary keeps the channel's defaults."""
        doppler = {} if self.doppler is None else {"doppler": self.doppler}
        return ChannelConfig(snr_db=self.snr_db, channel=self.channel, seed=self.seed, **doppler)


@dataclass(frozen=True)
class PointSettings:
    """What every point shares."""

    out_dir: str
    decoder: str = "interp"
    psss: str = "classical"
    max_frames: int | None = None
    keep_videos: bool = True
    point_timeout_s: int | None = 1800  # the process running a point is killed after this (None: never)

    @property
    def encode_cache(self) -> Path:
        """Each distinct encoding is coded once per sweep (lgvsc.encode_cache)."""
        return Path(self.out_dir) / "encodings"


@dataclass
class Grid:
    videos: list[str]
    schemes: list[str]
    snr_db: list[float]
    cbr: list[float]
    channels: list[str]
    seeds: list[int] = field(default_factory=lambda: [1])
    design_snr_db: list[float | None] = field(default_factory=lambda: [None])
    doppler: list[float | None] = field(default_factory=lambda: [None])
    feedback_delay_s: list[float | None] = field(default_factory=lambda: [None])

    def points(self) -> list[Point]:
        """Every combination, except feedback with a design SNR (feedback adapts what a probe chose)."""
        return [Point(v, s, snr, c, ch, seed, design, fd, fb) for v in self.videos for ch in self.channels
                for fd in self.doppler for c in self.cbr for design in self.design_snr_db
                for fb in self.feedback_delay_s if fb is None or design is None
                for snr in self.snr_db for seed in self.seeds for s in self.schemes]


def resolve_video(name: str) -> str:
    """A bundled sample by name (``bikes``) or any video file."""
    if name in NAMES:
        return str(sample_video(name).resolve())
    path = Path(name)
    if not path.is_file():
        raise SweepError(f"no such video: {name} (bundled samples: {', '.join(NAMES)})")
    return str(path.resolve())


def _backends_text(backends: dict) -> str:
    return ";".join(f"{k}={v}" for k, v in backends.items())


PointRunner = Callable[[Point, PointSettings, int], dict]  # (point, settings, base port) -> row


def point_row(point: Point, settings: PointSettings) -> dict:
    """The columns a point's row has whatever happened to it."""
    return {"video": point.video, "scheme": point.scheme, **report_fields(point.channel_config()),
            "cbr_target": point.cbr, "design_snr_db": point.design_snr_db,
            "feedback_delay_s": point.feedback_delay_s, "key": point.key, "input": point.input,
            "psss_backend": settings.psss}


def failed_row(point: Point, settings: PointSettings, exc: BaseException, wall_s: float | None = None) -> dict:
    reason = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(exc).__name__}: {exc}")  # Ray colours its task names
    return {**point_row(point, settings), "status": f"error: {' '.join(reason.split())}", "wall_s": wall_s}


@contextmanager
def point_deadline(seconds: int | None) -> Iterator[None]:
    """The process ends if the block has not finished after ``seconds``. A codec that deadlocks
    in C (SVT-AV1 once did, its threads all waiting on semaphores) never returns to Python, so
    nothing gentler would reach it: SIGALRM's default action ends the worker, the sweep records
    the point as failed (its worker died) and goes on; the flowgraphs die with their parent."""
    signal.alarm(seconds or 0)
    try:
        yield
    finally:
        signal.alarm(0)


def run_point(point: Point, settings: PointSettings, base_port: int) -> dict:
    """One grid point through the flowgraphs; a failure is a row with its reason, not an exception,
    so one bad point does not end a sweep."""
    from semantic.memory import keep_freed_buffers

    t0 = time.monotonic()
    keep_freed_buffers()  # a worker process is an entry point too, as `lgvsc` is
    row = point_row(point, settings)
    output = Path(settings.out_dir) / "videos" / f"{point.key}.mp4" if settings.keep_videos else None
    try:
        with point_deadline(settings.point_timeout_s):
            report = _run(point, settings, base_port, output)
    except Exception as exc:  # noqa: BLE001 - recorded in the row; the sweep goes on
        return failed_row(point, settings, exc, time.monotonic() - t0)
    save_bursts(Path(settings.out_dir), point.key, report.get("pdu_snr_db") or [])
    return {**row, "backends": _backends_text(report["backends"]), "cbr_on_air": report["cbr_on_air"],
            "per": report["per"], "psnr_db": report["psnr_db"], "ssim": report["ssim"], "vmaf": report["vmaf"],
            "psss": report["psss"], "frames_out": report["frames_out"], "frames_in": report["frames_in"],
            "mcs": report["mcs"], "layers": report.get("layers", 1), "base_share": report.get("base_share"),
            "stream_bytes": report["stream_bytes"], "on_air_symbols": report["on_air_symbols"],
            "status": "ok", "wall_s": time.monotonic() - t0}


def bursts_path(out_dir: Path, key: str) -> Path:
    return out_dir / "bursts" / f"{key}.json"


def save_bursts(out_dir: Path, key: str, pdu_snr_db: list[float | None]) -> None:
    """Per PDU in sending order, the SNR the receiver estimated on its burst (null: lost): what a
    fading channel did to each burst, beside what was lost (``tools.degradation`` plots it)."""
    path = bursts_path(out_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pdu_snr_db": pdu_snr_db}))


def load_bursts(out_dir: Path, key: str) -> list[float | None] | None:
    path = bursts_path(out_dir, key)
    return json.loads(path.read_text())["pdu_snr_db"] if path.is_file() else None


def _run(point: Point, settings: PointSettings, base_port: int, output: Path | None) -> dict:
    channel = channel_settings(point.channel_config())
    if point.scheme in LGVSC_LAYERS:
        from lgvsc.loopback import LoopbackOptions, run_loopback

        opts = LoopbackOptions(Path(point.input), output, cbr=point.cbr, decoder=settings.decoder, psss=settings.psss,
                               base_port=base_port, max_frames=settings.max_frames,
                               design_snr_db=point.design_snr_db, layers=LGVSC_LAYERS[point.scheme],
                               feedback_delay_s=point.feedback_delay_s,
                               encode_cache=settings.encode_cache, **channel)
        return run_loopback(opts).report
    from tools.baseline_loopback import BaselineOptions, run_baseline_loopback

    return run_baseline_loopback(BaselineOptions(Path(point.input), point.scheme, cbr=point.cbr, base_port=base_port,
                                                 max_frames=settings.max_frames, psss=settings.psss, output=output,
                                                 design_snr_db=point.design_snr_db,
                                                 feedback_delay_s=point.feedback_delay_s,
                                                 encode_cache=settings.encode_cache, **channel))


def read_results(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["key"]: row for row in csv.DictReader(f)}


def write_results(path: Path, rows: dict[str, dict]) -> None:
    """Atomically (a sweep killed mid-write leaves the previous file)."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in sorted(rows.values(), key=lambda r: (r["video"], r["channel"], float(r["cbr_target"]),
                                                         float(r["snr_db"]), r["scheme"])):
            writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    os.replace(tmp, path)


def _cell(value: object) -> object:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def sweep(grid: Grid, settings: PointSettings, address: str | None = None, cpus_per_point: float = 2.0,
          progress: bool | None = None, port_base: int = PORT_BASE, runner: PointRunner = run_point) -> Path:
    """Run the grid's missing points on Ray, writing ``results.csv`` as each one finishes.
    ``runner`` runs one point in a Ray worker (tests pass one whose worker dies)."""
    import ray

    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    rows = read_results(results)
    points = grid.points()
    todo = [p for p in points if rows.get(p.key, {}).get("status") != "ok"]
    skipped = len(points) - len(todo)
    if skipped:
        print(f"sweep: {skipped} points already done in {results}, {len(todo)} to run", file=sys.stderr)
    if not todo:
        return results
    _init_ray(ray, address)
    try:
        # No retries: a worker that died on a point (a native crash) would die again, each retry
        # costing a worker start and the point's run, and the sweep would end when they ran out.
        task = ray.remote(num_cpus=cpus_per_point, max_retries=0)(runner)
        pending = {task.remote(p, settings, port_base + PORT_STRIDE * i): p for i, p in enumerate(todo)}
        rows_done = _as_done(ray, pending, settings)
        for row in Progress("sweep", len(todo), enabled=progress, unit="points").wrap(rows_done):
            rows[row["key"]] = row
            write_results(results, rows)
            if row["status"] != "ok":
                print(f"\nsweep: {row['key']}: {row['status']}", file=sys.stderr)
    finally:
        ray.shutdown()
    return results


def _init_ray(ray: object, address: str | None) -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:  # a small object store: rows are tiny, and /dev/shm in containers is small
        ray.init(object_store_memory=128 * 2**20, **kwargs)


def _as_done(ray: object, pending: dict, settings: PointSettings) -> Iterator[dict]:
    """Each task's row as it finishes; a task that Ray reports failed (its worker died, or an
    error the point did not catch) becomes a failed row of its point."""
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        point = pending.pop(done[0])
        try:
            row = ray.get(done[0])
        except ray.exceptions.RayError as exc:
            row = failed_row(point, settings, exc)
        yield row


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _optional_floats(text: str) -> list[float | None]:
    """An axis whose values may include ``none`` (the option off): ``none,0.005``."""
    return [None if v.strip().lower() == "none" else float(v) for v in text.split(",") if v]


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise SweepError(f"unknown {what} {', '.join(bad) or '(none)'}; known: {', '.join(allowed)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="+", required=True, help=f"files, or bundled samples: {', '.join(NAMES)}")
    ap.add_argument("--schemes", default="lgvsc,h264,h265")
    ap.add_argument("--snr-db", default="0,5,10,20")
    ap.add_argument("--cbr", default="1e-3,1e-4")
    ap.add_argument("--channel", default="awgn,multipath")
    ap.add_argument("--seeds", default="1", help="channel seeds (repeats of each point)")
    ap.add_argument("--doppler", default="",
                    help="normalized Doppler values of the fading channels (an axis; default: the channel's)")
    ap.add_argument("--design-snr-db", default="",
                    help="SNRs the transmitter plans for, without probing (an axis; default: it probes the link)")
    ap.add_argument("--feedback-delay-s", default="",
                    help="feedback delays (s): after the probe, each PDU's MCS from the receiver's reports this old "
                         "(an axis, 'none' for one probe and no feedback, the default; not combined with "
                         "--design-snr-db)")
    ap.add_argument("--out", required=True, help="results directory (resumed when it exists)")
    ap.add_argument("--address", help="an existing Ray cluster (default: a local one)")
    ap.add_argument("--cpus-per-point", type=float, default=2.0)
    ap.add_argument("--decoder", default="interp")
    ap.add_argument("--psss", default="classical")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--no-videos", action="store_true", help="do not keep the output videos")
    ap.add_argument("--point-timeout", type=int, default=1800,
                    help="seconds before the process running a point is killed (the point fails; 0: never)")
    ap.add_argument("--port-base", type=int, default=PORT_BASE,
                    help=f"point i's flowgraphs use ports base+{PORT_STRIDE}i .. base+{PORT_STRIDE}i+{PORT_STRIDE - 1}")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lgvsc_phy.channel_profiles import names as channel_names

    try:
        grid = Grid([resolve_video(v) for v in args.videos], _names(args.schemes, SCHEMES, "scheme"),
                    _floats(args.snr_db), _floats(args.cbr), _names(args.channel, channel_names(), "channel"),
                    [int(s) for s in args.seeds.split(",") if s], _floats(args.design_snr_db) or [None],
                    _floats(args.doppler) or [None], _optional_floats(args.feedback_delay_s) or [None])
    except (SweepError, ValueError) as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return 2
    settings = PointSettings(str(Path(args.out).resolve()), args.decoder, args.psss, args.max_frames,
                             not args.no_videos, args.point_timeout or None)
    results = sweep(grid, settings, args.address, args.cpus_per_point, port_base=args.port_base)
    rows = read_results(results)
    failed = [r for r in rows.values() if r["status"] != "ok"]
    print(f"sweep: {len(rows)} points in {results}, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

