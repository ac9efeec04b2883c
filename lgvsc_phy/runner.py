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

from lgvsc_phy.channel_spec import ChannelConfig, flowgraph_args, grc_argv
from lgvsc_phy.ports import DEFAULT_BASE_PORT, LOCALHOST, socket_addresses

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
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(filter(None, [str(BLOCKS_DIR), env.get("GRC_BLOCKS_PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Three flowgraphs share the cores: a BLAS thread pool per process would only contend.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def _grc_options(grc: Path) -> dict:
    """The Options block's parameters of a .grc (its ``id`` names the generated module)."""
    import yaml  # GRC's own dependency: wherever grcc runs, PyYAML is installed

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(grc).read_text(), Loader=loader)["options"]["parameters"]


def is_hier_block(grc: Path) -> bool:
    """Whether ``grc`` generates a hier block (Options ``generate_options: hb``): a block that
    other flowgraphs instantiate, compiled into a block library instead of run on its own."""
    return str(_grc_options(grc).get("generate_options", "")).startswith("hb")


def hier_block_sources(grc_dir: Path = GRC_DIR) -> list[Path]:
    return [grc for grc in sorted(Path(grc_dir).glob("*.grc")) if is_hier_block(grc)]


def flowgraph_sources(grc_dir: Path = GRC_DIR) -> list[Path]:
    """The .grc files that run as flowgraphs (every .grc but the hier blocks)."""
    return [grc for grc in sorted(Path(grc_dir).glob("*.grc")) if not is_hier_block(grc)]


def _grcc(grc: Path, out_dir: Path, hier_library: Path) -> Path:
    """grcc ``grc`` into ``out_dir`` with ``hier_library`` as the only hier-block library: GRC's
    per-user one (~/.grc_gnuradio, where `make setup` links our blocks for GUI users) may hold
    stale copies, and would load our blocks a second time; return the generated module."""
    env = _grc_env()
    env["GRC_HIER_PATH"] = str(hier_library)
    proc = subprocess.run(["grcc", "-o", str(out_dir), str(grc)], env=env, capture_output=True, text=True)
    module = out_dir / f"{_grc_options(grc)['id']}.py"
    if proc.returncode != 0 or not module.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise FlowgraphError(f"grcc failed on {grc.name}: {' | '.join(tail)}")
    return module


def _compile_hier_blocks_into(work: Path, grc_dir: Path) -> list[Path]:
    """Every hier block of ``grc_dir`` into the empty directory ``work``: ``<id>.py`` (the module
    flowgraphs import) and ``<id>.block.yml`` (what GRC reads). In name order, each compile
    sees the blocks compiled before it."""
    written = []
    for grc in hier_block_sources(grc_dir):
        module = _grcc(grc, work, hier_library=work)
        written += [module, module.with_suffix(".block.yml")]
    return written


def compile_hier_blocks(dest: Path, grc_dir: Path = GRC_DIR) -> list[Path]:
    """Compile the hier blocks of ``grc_dir`` into the hier-block library ``dest``; return the
    files written there (``<id>.py`` and ``<id>.block.yml`` per block). Each file is made in a
    temporary directory and renamed into place, so GRC never reads half a block. For GNU Radio
    Companion's GUI: ``compile_hier_blocks(Path.home() / ".grc_gnuradio")``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".lgvsc-hier-", dir=dest))
    try:
        installed = []
        for path in _compile_hier_blocks_into(work, grc_dir):
            # The block's documentation names the module's path: the final one, not the temporary.
            path.write_text(path.read_text().replace(str(work), str(dest)))
            installed.append(path.replace(dest / path.name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return installed


def _digest(paths: list[Path], *extra: str) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for text in extra:
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def _rename_into_place(work: Path, final: Path) -> None:
    """A whole directory appears at ``final`` or none: when two processes compile at once, the
    first rename wins and the other's (identical) copy is dropped."""
    try:
        work.rename(final)
    except OSError:
        if not final.is_dir():
            raise


def _cached_hier_library(grc_dir: Path, root: Path) -> Path:
    """The hier blocks of ``grc_dir`` compiled under ``root/hier/<digest of their sources>``."""
    block_yml = sorted(BLOCKS_DIR.glob("*.yml"))
    library = root / "hier" / _digest([*hier_block_sources(grc_dir), *block_yml])
    if library.is_dir():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".lib-", dir=library.parent))
    try:
        _compile_hier_blocks_into(work, grc_dir)
        _rename_into_place(work, library)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return library


def compile_flowgraph(grc: Path, cache_dir: Path | None = None) -> Path:
    """Compile ``grc`` with grcc into a content-addressed cache; return the generated .py.

    The hier blocks beside ``grc`` are compiled first, and their sources are part of the cache
    key: editing one recompiles every flowgraph. Their modules are copied next to the script,
    which Python searches first, so a compiled flowgraph runs the blocks it was compiled with.
    grcc writes into a fresh directory that is then renamed into place: a concurrent process
    (a Ray worker, a second test) sees either no entry or a whole one, never a half-written
    script."""
    grc = Path(grc)
    if is_hier_block(grc):
        raise ValueError(f"{grc.name} is a hier block: compile it with compile_hier_blocks")
    root = Path(cache_dir or default_cache_dir())
    library = _cached_hier_library(grc.parent, root)
    out_dir = root / f"{grc.stem}-{_digest([grc], library.name)}"  # the library's name covers the block YAML
    script = out_dir / f"{_grc_options(grc)['id']}.py"
    if script.is_file():
        return script
    work = Path(tempfile.mkdtemp(prefix=f".{grc.stem}-", dir=root))
    try:
        _grcc(grc, work, library)
        for module in library.glob("*.py"):
            shutil.copy2(module, work)
        _rename_into_place(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return script


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
class LoopbackConfig(ChannelConfig):
    """The tx -> channel -> rx chain: the channel's parameters (keyword-only, see channel_spec), the
    tx's MCS, the rx's sync threshold and CFO range; every address derives from ``base_port`` (see ports.Port)."""

    mcs: str = "qpsk-1/2"
    base_port: int = DEFAULT_BASE_PORT
    host: str = LOCALHOST
    sync_threshold: float = 0.06
    cfo_range: float = 1.0  # the rx's largest acquired |CFO|, subcarrier spacings (OfdmBurstReceiver)


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
        own_args = {"rx": grc_argv({"sync_threshold": c.sync_threshold, "cfo_range": c.cfo_range}),
                    "channel": flowgraph_args(c), "tx": grc_argv({"mcs": c.mcs})}
        return [FlowgraphProcess(name, self._argv(f"{name}.grc", *args,
                                                  *grc_argv(socket_addresses(name, c.base_port, c.host))))
                for name, args in own_args.items()]

    def start(self, timeout_s: float = 120.0) -> None:
        """Start every flowgraph and wait until each is ready. The first start after an install
        compiles the receiver's numba kernels (over 30 s on a loaded 2-core machine); a crash
        still ends the wait within one poll."""
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
