"""Shared fixtures: real sample videos, clips derived from them, free TCP port ranges; the
unit / flowgraph markers (``pytest -m unit`` runs what needs no GNU Radio flowgraph)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lgvsc.sample_videos import sample_video
from lgvsc_phy.link import free_base_port
from semantic.video_io import Video, read_video, write_video


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes ``base_port`` starts flowgraphs (the ports are theirs); other flowgraph
    tests say so with ``@pytest.mark.flowgraph`` or a module's ``pytestmark``. The rest, slow
    sweeps aside, are unit tests."""
    for item in items:
        if "base_port" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.flowgraph)
        if not item.get_closest_marker("flowgraph") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def base_port() -> int:
    return free_base_port()


@pytest.fixture(scope="session")
def bikes() -> Path:
    return sample_video("bikes")


@pytest.fixture(scope="session")
def bikes_video(bikes: Path) -> Video:
    return read_video(bikes)


@pytest.fixture(scope="session")
def derived_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip no test has tuned for: bigbuckbunny cropped to an odd size, 3 frames in 4 kept
    (a new rate), with the head of bikes (resized) appended after a hard cut."""
    bbb = read_video(sample_video("bigbuckbunny"), max_frames=80)
    crop = bbb.frames[:, 101:101 + 239, 203:203 + 423]  # 423 x 239: odd width and height
    kept = crop[np.arange(len(crop)) % 4 != 3]
    import cv2

    head = read_video(sample_video("bikes"), max_frames=30).frames
    head = np.stack([cv2.resize(f, (423, 239), interpolation=cv2.INTER_AREA) for f in head])
    path = tmp_path_factory.mktemp("clips") / "derived.mkv"
    write_video(path, np.concatenate([kept, head]), Fraction(75, 4))  # 18.75 fps
    return path


@pytest.fixture(scope="session")
def tiny_mllm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random LLaVA saved to disk: load it as ``mllm:<path>``."""
    pytest.importorskip("transformers")
    from tiny_models import build_tiny_llava

    return str(build_tiny_llava(tmp_path_factory.mktemp("llava")))


@pytest.fixture(scope="session")
def heldout_clip(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - a factory
    """``heldout_clip(name)``: a clip of tools/heldout_corpus.py, built on first use (seconds)."""
    from tools.heldout_corpus import build_corpus

    directory = tmp_path_factory.mktemp("heldout")

    def clip(name: str) -> Path:
        return build_corpus(directory, [name]).clips[name]

    return clip
