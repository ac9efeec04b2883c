"""After `make setup`, GRC's tools find the blocks and lgvsc_phy with no environment variables.

A GRC user opens a .grc by double-click or from any directory, with neither GRC_BLOCKS_PATH nor
PYTHONPATH set, and GRC runs the generated script with /usr/bin/python3, not the venv. These
tests do the same: grcc from a temporary directory with those variables removed, and the
generated scripts' first project import under /usr/bin/python3 in an empty environment. They
skip only when tools/install_grc.sh has not run for this checkout (`make test` runs it first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FLOWGRAPHS = REPO / "grc_flowgraphs"
BLOCKS = FLOWGRAPHS / "blocks"
SYSTEM_PYTHON = "/usr/bin/python3"
GRC_USER_LIB = Path.home() / ".grc_gnuradio"  # GRC's default, with GRC_HIER_PATH unset
# What runner.py and a shell might set and a double-clicked GRC does not have.
REMOVED_VARIABLES = ("GRC_BLOCKS_PATH", "GRC_HIER_PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def _user_site() -> Path:
    out = subprocess.run([SYSTEM_PYTHON, "-c", "import site; print(site.getusersitepackages())"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _why_not_installed() -> str | None:
    """None when install_grc.sh linked this checkout's blocks and package (not another checkout's)."""
    if shutil.which("grcc") is None or not Path(SYSTEM_PYTHON).exists():
        return "GNU Radio's grcc or /usr/bin/python3 is missing: run `make setup`"
    expected = {GRC_USER_LIB / block.name: block for block in BLOCKS.glob("*.block.yml")}
    expected[_user_site() / "lgvsc_phy"] = REPO / "lgvsc_phy"
    for link, target in expected.items():
        if not link.is_symlink() or link.resolve() != target.resolve():
            return f"tools/install_grc.sh has not linked {link} to this checkout: run `make setup`"
    return None


NOT_INSTALLED = _why_not_installed()
pytestmark = [pytest.mark.flowgraph, pytest.mark.skipif(NOT_INSTALLED is not None, reason=NOT_INSTALLED or "")]


def _bare_env() -> dict[str, str]:
    """The caller's environment less what a double-clicked GRC would not have."""
    return {key: value for key, value in os.environ.items() if key not in REMOVED_VARIABLES}


def _empty_env() -> dict[str, str]:
    """What `env -i` leaves, plus where the user site is."""
    env = {"HOME": str(Path.home()), "PATH": "/usr/bin:/bin"}
    if "PYTHONUSERBASE" in os.environ:
        env["PYTHONUSERBASE"] = os.environ["PYTHONUSERBASE"]
    return env


@pytest.mark.parametrize("grc", sorted(FLOWGRAPHS.glob("*.grc")), ids=lambda p: p.name)
def test_grcc_compiles_from_another_directory_without_variables(grc: Path, tmp_path: Path) -> None:
    out = subprocess.run(["grcc", "-o", str(tmp_path / "out"), str(grc)], cwd=tmp_path, env=_bare_env(),
                         capture_output=True, text=True, timeout=120)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-2000:]
    assert "Missing Block" not in log, log[-2000:]
    assert list((tmp_path / "out").glob("*.py")), log[-2000:]


def test_system_python_imports_the_blocks_from_anywhere(tmp_path: Path) -> None:
    # What every generated script imports first; env -i: no PYTHONPATH, no venv, a foreign cwd.
    code = "import lgvsc_phy.gr_blocks as b, pathlib; print(pathlib.Path(b.__file__).resolve())"
    out = subprocess.run([SYSTEM_PYTHON, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=_empty_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()) == (REPO / "lgvsc_phy" / "gr_blocks.py").resolve()
