"""Run the .grc flowgraphs as separate processes, as a user would from GNU Radio Companion.

Each .grc is compiled with ``grcc`` (cached by content) and started with the GNU Radio-capable
Python. A flowgraph is ready when its generated main prints its "Press Enter to quit" prompt.
A monitor thread notices a flowgraph that dies and keeps its stderr tail, so ``check()`` reports
a crash within one poll. Stopping escalates Enter -> SIGTERM -> SIGKILL on the process group, and
children get PR_SET_PDEATHSIG, so no process outlives us.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

# The flowgraphs ship inside the package (a link to grc_flowgraphs/ in a checkout, copies in a wheel).
GRC_DIR = Path(__file__).resolve().parent / "flowgraphs"
BLOCKS_DIR = GRC_DIR / "blocks"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where lgvsc_phy imports from, for the flowgraphs
READY_PROMPT = "Press Enter to quit"


def default_cache_dir() -> Path:
    """Where compiled flowgraphs are kept: ``$LGVSC_CACHE_DIR``, else the user's cache directory."""
    if explicit := os.environ.get("LGVSC_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lgvsc" / "grc"


class FlowgraphError(RuntimeError):
    """A flowgraph failed; ``stderr`` holds the tail of what it printed."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def _grc_env() -> dict[str, str]:
    env = dict(os.environ)
    # Our own blocks come from BLOCKS_DIR; GRC's per-user library (~/.grc_gnuradio, where `make
    # setup` links them for GUI users) would load them a second time, with a warning per block.
    env["GRC_HIER_PATH"] = str(default_cache_dir() / "hier")
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(filter(None, [str(BLOCKS_DIR), env.get("GRC_BLOCKS_PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Three flowgraphs share the cores: a BLAS thread pool per process would only contend.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def compile_flowgraph(grc: Path, cache_dir: Path | None = None) -> Path:
    """Compile ``grc`` with grcc into a content-addressed cache; return the generated .py.

    grcc writes into a fresh directory that is then renamed into place: a concurrent process
    (a Ray worker, a second test) sees either no entry or a whole one, never a half-written
    script; when two compile at once, the first rename wins and the other's copy is dropped."""
    grc = Path(grc)
    digest = hashlib.sha256(grc.read_bytes())
    for yml in sorted(BLOCKS_DIR.glob("*.yml")):
        digest.update(yml.read_bytes())
    root = Path(cache_dir or default_cache_dir())
    out_dir = root / f"{grc.stem}-{digest.hexdigest()[:16]}"
    if existing := sorted(out_dir.glob("*.py")):
        return existing[0]
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{grc.stem}-", dir=root))
    try:
        proc = subprocess.run(["grcc", "-o", str(work), str(grc)], env=_grc_env(), capture_output=True, text=True)
        if proc.returncode != 0 or not list(work.glob("*.py")):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise FlowgraphError(f"grcc failed on {grc.name}: {' | '.join(tail)}")
        try:
            work.rename(out_dir)
        except OSError:  # another process put its (identical) copy there first
            if not list(out_dir.glob("*.py")):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sorted(out_dir.glob("*.py"))[0]


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGKILL to the child when the parent dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class FlowgraphProcess:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    stderr_tail: deque = field(default_factory=lambda: deque(maxlen=40))
    ready: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_grc_env(),
            start_new_session=True,  # own process group: killpg reaches its children too
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        buf = b""
        while chunk := self.proc.stdout.read1(4096):
            buf = (buf + chunk)[-4096:]
            if READY_PROMPT.encode() in buf:
                self.ready.set()

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def wait_ready(self, timeout_s: float) -> bool:
        """True once the prompt appeared; False on timeout or if the process died first."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.05):
            if self.crashed or time.monotonic() > deadline:
                return False
        return True

    @property
    def crashed(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None and not self.stopping

    @property
    def suspended(self) -> bool:
        """Stopped by a signal (SIGSTOP, SIGTSTP, a debugger): alive but processing nothing."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] in ("T", "t")

    def describe_crash(self) -> str:
        rc = self.proc.returncode if self.proc else None
        how = f"signal {-rc}" if rc is not None and rc < 0 else f"exit code {rc}"
        last = [ln for ln in self.stderr_tail if ln.strip()][-3:]
        return f"{self.name} flowgraph died ({how}): {' | '.join(last) or 'no stderr'}"

    def stop(self, grace_s: float = 2.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.stopping = True
        if self.suspended:  # cannot drain, and would sit on SIGTERM until continued
            os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.stdin.write(b"\n")  # the generated main stops and waits on Enter
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        for sig, wait_s in ((None, grace_s), (signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
            if sig is not None:
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
            try:
                self.proc.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # leftovers in its group (none expected) go too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class LoopbackConfig:
    """Parameters of the tx -> channel -> rx chain; every address derives from ``base_port``:
    +0 PDUs in, +1 IQ tx->channel, +2 tx counters, +3 IQ channel->rx, +4 PDUs out, +5 rx counters."""

    mcs: str = "qpsk-1/2"
    snr_db: float = 20.0
    channel: str = "awgn"
    cfo: float = 0.0
    timing_offset: float = 0.0  # fraction of a sample
    doppler: float = 1e-5  # normalized fD * Ts, fading profiles only
    k_factor: float = 4.0  # Rician
    phase_noise: float = 0.0  # magnitude (rad) of GNU Radio's phase_noise_gen
    seed: int = 1
    base_port: int = 52001
    host: str = "127.0.0.1"
    sync_threshold: float = 0.06

    def addr(self, offset: int) -> str:
        return f"tcp://{self.host}:{self.base_port + offset}"


class FlowgraphRunner:
    """Starts flowgraphs (by default the tx, channel and rx of a loopback); ``check()`` raises on a
    crash; ``stop()`` cleans up. ``specs``: (name, .grc file name, command-line arguments)."""

    def __init__(self, config: LoopbackConfig | None = None, python: str = sys.executable,
                 cache_dir: Path | None = None, specs: list[tuple[str, str, list[str]]] | None = None) -> None:
        self.config, self.python, self.cache_dir, self.specs = config or LoopbackConfig(), python, cache_dir, specs
        self.flowgraphs: list[FlowgraphProcess] = []
        self._state_read_at = -float("inf")

    def _argv(self, grc: str, *args: str) -> list[str]:
        script = compile_flowgraph(GRC_DIR / grc, self.cache_dir)
        return [self.python, "-u", str(script), *args]

    def plan(self) -> list[FlowgraphProcess]:
        if self.specs is not None:
            return [FlowgraphProcess(name, self._argv(grc, *args)) for name, grc, args in self.specs]
        c = self.config
        return [
            FlowgraphProcess("rx", self._argv(
                "rx.grc", f"--iq-in={c.addr(3)}", f"--pdu-out={c.addr(4)}", f"--stats-out={c.addr(5)}",
                f"--sync-threshold={c.sync_threshold}")),
            FlowgraphProcess("channel", self._argv(
                "channel.grc", f"--iq-in={c.addr(1)}", f"--iq-out={c.addr(3)}", f"--snr-db={c.snr_db}",
                f"--cfo={c.cfo}", f"--profile={c.channel}", f"--seed={c.seed}", f"--timing-offset={c.timing_offset}",
                f"--doppler={c.doppler}", f"--k-factor={c.k_factor}", f"--phase-noise={c.phase_noise}")),
            FlowgraphProcess("tx", self._argv(
                "tx.grc", f"--mcs={c.mcs}", f"--pdu-in={c.addr(0)}", f"--iq-out={c.addr(1)}",
                f"--stats-out={c.addr(2)}")),
        ]

    def start(self, timeout_s: float = 30.0) -> None:
        self.flowgraphs = self.plan()
        try:
            for fg in self.flowgraphs:
                fg.start()
            deadline = time.monotonic() + timeout_s
            for fg in self.flowgraphs:
                while not fg.ready.wait(0.05):
                    self.check()
                    if time.monotonic() > deadline:
                        raise FlowgraphError(f"{fg.name} flowgraph not ready after {timeout_s:.0f} s")
        except BaseException:
            self.stop()
            raise

    SUSPEND_POLL_S = 0.1  # the link calls check() per message: /proc reads cost more than a burst

    def check(self) -> None:
        for fg in self.flowgraphs:
            if fg.crashed:
                time.sleep(0.1)  # let the reader threads collect the last lines
                raise FlowgraphError(fg.describe_crash(), "\n".join(fg.stderr_tail))
        now = time.monotonic()
        if now - self._state_read_at < self.SUSPEND_POLL_S:
            return
        self._state_read_at = now
        for fg in self.flowgraphs:
            if fg.suspended:
                raise FlowgraphError(f"{fg.name} flowgraph is stopped (pid {fg.proc.pid}, SIGSTOP?): the chain stalls")

    def stop(self) -> None:
        # Upstream first, so downstream never sees a half-closed input as data.
        for fg in reversed(self.flowgraphs):
            fg.stop()

    def pids(self) -> list[int]:
        return [fg.proc.pid for fg in self.flowgraphs if fg.proc is not None]

    def __enter__(self) -> FlowgraphRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
