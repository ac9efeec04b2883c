"""Encodings kept on disk between the points of a sweep.

A broadcast sends one stream to receivers at many SNRs; a sweep over the actual SNR at a fixed
design SNR is exactly that, so every point gets the same encoded stream, coded once (the rate
control's few encodes take as long as the link and decode together). Entries are keyed by the
input file's identity (path, size, modification time) and every setting that shapes the
encoding; a damaged or unreadable entry is coded again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def source_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def cached(directory: Path | None, key: tuple, make: Callable[[], T]) -> T:
    """``make()``, or what it returned before for ``key`` (the cache is off without a directory).
    Only this program writes the directory: its entries are pickles and are trusted as such."""
    if directory is None:
        return make()
    path = directory / (hashlib.sha1(repr(key).encode()).hexdigest() + ".pickle")
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        pass  # absent, damaged, or from another version of the code: coded again below
    value = make()
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(value, f)
    os.replace(tmp, path)  # atomic: parallel points writing one key leave one whole entry
    return value
