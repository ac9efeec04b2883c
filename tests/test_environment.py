"""environment.yml (conda-forge, for radioconda users) names every runtime dependency of pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"torch": "pytorch", "opencv-python-headless": "opencv", "pillow": "pillow"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_environment_yml_names_every_runtime_dependency() -> None:
    deps = _names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    text = (ROOT / "environment.yml").read_text().lower()
    listed = set(re.findall(r"^\s*-\s*([a-z0-9_.\-]+)", text, flags=re.M))
    missing = {d for d in deps if CONDA_NAMES.get(d, d) not in listed}
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    for tool in ("gnuradio", "python", "ffmpeg"):
        assert tool in listed


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (ROOT / "README.md").read_text()
