"""Every `lgvsc` command and keyframe mode over the held-out corpus (tools/heldout_corpus.py),
at CBR 1e-4 to 1e-2 and byte budgets from 1 to 1e6, each command a real process as a user runs it.

    python -m tools.corpus_matrix out/heldout --out out/heldout/matrix.csv            # the whole matrix
    python -m tools.corpus_matrix out/heldout --clips photo_pan_cut --budgets cbr=1e-3

A case passes when it gives the exact frame count (encode -> inspect -> decode -> evaluate, or
loopback, or send -> receive) or refuses in one clear line with exit status 2 for a reason the
input earns (today only a budget below the stream's minimum). A crash, a hang (past
``--case-timeout``), an internal error (exit 3), a bare or multi-line message, any other refusal
of a valid clip, or a wrong frame count, size or rate fails it.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from lgvsc_phy.link import free_base_port
from semantic.video_io import VideoError, iter_frames, probe_fps
from tools.heldout_corpus import build_corpus

LGVSC = [sys.executable, "-m", "lgvsc.cli"]
ROOT = Path(__file__).resolve().parent.parent
MODES = ("error-model", "psss")
BUDGETS = ("cbr=1e-4", "cbr=1e-3", "cbr=1e-2", "bytes=1", "bytes=100", "bytes=3000", "bytes=1000000")
LOOPBACK_BUDGETS = ("cbr=1e-3",)


@dataclass(frozen=True)
class Case:
    clip: str
    command: str  # encode (then inspect, decode, evaluate), loopback, send-receive
    mode: str  # keyframe mode (encode) or "-" (the commands that choose it themselves)
    budget: str  # cbr=X or bytes=N

    @property
    def budget_args(self) -> list[str]:
        kind, value = self.budget.split("=")
        return [f"--{kind}", value]


@dataclass
class Outcome:
    clip: str
    command: str
    mode: str
    budget: str
    status: str  # ok, refused (exit 2, one clear line), FAIL
    detail: str
    wall_s: float


def cases(clips: list[str], budgets: tuple[str, ...] = BUDGETS, modes: tuple[str, ...] = MODES,
          loopback_budgets: tuple[str, ...] = LOOPBACK_BUDGETS, send_receive: tuple[str, ...] = ()) -> list[Case]:
    out = [Case(c, "encode", m, b) for c in clips for m in modes for b in budgets]
    out += [Case(c, "loopback", "-", b) for c in clips for b in loopback_budgets]
    out += [Case(c, "send-receive", "-", "cbr=1e-3") for c in send_receive]
    return out


class CaseFailure(AssertionError):
    pass


class Refused(Exception):
    pass


def _run(args: list[object], timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([*LGVSC, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CaseFailure(f"hang: `lgvsc {args[0]}` still running after {timeout_s:g} s") from None


BARE = re.compile(r"^lgvsc \w+: error: [\W\d_]*$")  # a message with no words (e.g. a bare number)
# The one refusal a valid clip earns: a budget that cannot carry even the stream header ("below
# the minimum" is the intra-image mode's floor, kept for old figures).
BUDGET_FLOOR = ("stream header: nothing can be sent", "below the minimum")


def _checked(result: subprocess.CompletedProcess, step: str,
             refusals: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Pass exit 0 through; exit 2 with one clear line naming one of ``refusals`` is a refusal;
    anything else fails."""
    if result.returncode == 0:
        return result
    lines = result.stderr.strip().splitlines()
    if (result.returncode == 2 and len(lines) == 1 and not BARE.match(lines[0])
            and any(reason in lines[0] for reason in refusals)):
        raise Refused(lines[0])
    what = f"signal {-result.returncode}" if result.returncode < 0 else f"exit {result.returncode}"
    raise CaseFailure(f"{step}: {what}: {' | '.join(lines[-3:])[:300]}")


def _frames_of(path: Path) -> tuple[int, int, int, Fraction]:
    """(frames, width, height, fps) by decoding, as a player sees the file."""
    count, shape = 0, (0, 0)
    for frame in iter_frames(path):
        count, shape = count + 1, frame.shape[:2]
    return count, shape[1], shape[0], probe_fps(path)


def _expect_video(path: Path, truth: dict, step: str) -> None:
    try:
        frames, w, h, fps = _frames_of(path)
    except VideoError as exc:
        raise CaseFailure(f"{step}: output unreadable: {exc}") from None
    want = (truth["frames"], truth["width"], truth["height"], Fraction(truth["fps"]))
    if (frames, w, h) != want[:3] or abs(float(fps) - float(want[3])) > 1e-3 * float(want[3]):
        raise CaseFailure(f"{step}: got {frames} frames {w}x{h} @ {fps}, source {want[0]} frames "
                          f"{want[1]}x{want[2]} @ {want[3]}")


def _encode_chain(case: Case, clip: Path, truth: dict, work: Path, timeout_s: float) -> str:
    lgv, out = work / "s.lgv", work / "d.mp4"
    _checked(_run(["encode", clip, "-o", lgv, *case.budget_args, "--keyframe-mode", case.mode], timeout_s), "encode",
             BUDGET_FLOOR)
    info = json.loads(_checked(_run(["inspect", lgv, "--json"], timeout_s), "inspect").stdout)
    if info.get("frames") != truth["frames"] or (info.get("width"), info.get("height")) != (truth["width"],
                                                                                           truth["height"]):
        raise CaseFailure(f"inspect: header says {info.get('frames')} frames {info.get('width')}x{info.get('height')}")
    _checked(_run(["inspect", lgv], timeout_s), "inspect (text)")
    _checked(_run(["decode", lgv, "-o", out], timeout_s), "decode")
    _expect_video(out, truth, "decode")
    ev = json.loads(_checked(_run(["evaluate", clip, out, "--json"], timeout_s), "evaluate").stdout)
    if ev["frames_in"] != ev["frames_out"] or ev["psnr_db"] is None:
        raise CaseFailure(f"evaluate: {ev['frames_in']} in, {ev['frames_out']} out")
    return f"{lgv.stat().st_size} B, {len(info['keyframes'])} keyframes, PSNR {ev['psnr_db']:.2f} dB"


def _loopback(case: Case, clip: Path, truth: dict, work: Path, timeout_s: float) -> str:
    out, report = work / "l.mp4", work / "r.json"
    _checked(_run(["loopback", clip, "-o", out, "--snr-db", 10, *case.budget_args, "--report", report,
                   "--base-port", free_base_port(6)], timeout_s), "loopback", BUDGET_FLOOR)
    _expect_video(out, truth, "loopback")
    rep = json.loads(report.read_text())
    return f"{rep['mcs']}, PDUs {rep['pdus_received']}/{rep['pdus_sent']}, PSNR {rep['psnr_db']:.2f} dB"


def _send_receive(case: Case, clip: Path, truth: dict, work: Path, timeout_s: float) -> str:
    out = work / "rx.mp4"
    rx_port, tx_port = free_base_port(8), free_base_port(8)
    receiver = subprocess.Popen([*LGVSC, "receive", "-o", str(out), "--base-port", str(rx_port), "--iq-in",
                                 f"tcp://127.0.0.1:{tx_port + 1}", "--timeout", "3", "--wait-first",
                                 str(timeout_s), "--deadline", str(timeout_s)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        _checked(_run(["send", clip, *case.budget_args, "--base-port", tx_port], timeout_s), "send", BUDGET_FLOOR)
        stdout, stderr = receiver.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CaseFailure(f"hang: receive still running after {timeout_s:g} s") from None
    finally:
        receiver.kill()
        receiver.wait()
    _checked(subprocess.CompletedProcess(receiver.args, receiver.returncode, stdout, stderr), "receive")
    _expect_video(out, truth, "receive")
    return stdout.strip().splitlines()[-1] if stdout.strip() else ""


RUNNERS = {"encode": _encode_chain, "loopback": _loopback, "send-receive": _send_receive}


def run_case(case: Case, clip: Path, truth: dict, timeout_s: float = 300.0) -> Outcome:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lgvsc-matrix-") as tmp:
        try:
            status, detail = "ok", RUNNERS[case.command](case, clip, truth, Path(tmp), timeout_s)
        except Refused as exc:
            status, detail = "refused", str(exc)
        except (CaseFailure, OSError, ValueError, KeyError) as exc:
            status, detail = "FAIL", str(exc)
    return Outcome(case.clip, case.command, case.mode, case.budget, status, detail, time.monotonic() - t0)


def run_matrix(corpus_dir: Path, todo: list[Case], workers: int = 1, timeout_s: float = 300.0) -> Iterator[Outcome]:
    """Build the clips the cases need, then run the cases (``workers`` at a time), as they finish."""
    corpus = build_corpus(corpus_dir, sorted({c.clip for c in todo}))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_case, c, corpus.clips[c.clip], corpus.truth[c.clip], timeout_s) for c in todo]
        for future in futures:
            yield future.result()


def write_csv(path: Path, outcomes: list[Outcome]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(asdict(outcomes[0]))) if outcomes else None
        if writer is not None:
            writer.writeheader()
            writer.writerows(asdict(o) for o in outcomes)


def main(argv: list[str] | None = None) -> int:
    from tools.heldout_corpus import CLIPS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="corpus directory (built when missing)")
    ap.add_argument("--clips", nargs="+", default=[c.name for c in CLIPS])
    ap.add_argument("--budgets", nargs="+", default=list(BUDGETS))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--loopback-budgets", nargs="*", default=list(LOOPBACK_BUDGETS))
    ap.add_argument("--send-receive", nargs="*", default=["photo_pan_cut", "odd_639x359_objects"],
                    help="clips also sent and received as two processes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--case-timeout", type=float, default=300.0)
    ap.add_argument("--out", type=Path, help="write every outcome to this CSV")
    args = ap.parse_args(argv)
    todo = cases(args.clips, tuple(args.budgets), tuple(args.modes), tuple(args.loopback_budgets),
                 tuple(args.send_receive))
    outcomes = []
    for o in run_matrix(args.corpus, todo, args.workers, args.case_timeout):
        outcomes.append(o)
        print(f"{o.status:7s} {o.clip:22s} {o.command:12s} {o.mode:11s} {o.budget:14s} {o.wall_s:6.1f} s  {o.detail}",
              flush=True)
    if args.out:
        write_csv(args.out, outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "refused", "FAIL")}
    print(f"corpus matrix: {len(outcomes)} cases: {counts['ok']} ok, {counts['refused']} refused in one line, "
          f"{counts['FAIL']} failed")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
