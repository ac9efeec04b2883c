"""The C allocator's thresholds, raised for a video pipeline.

glibc's malloc serves every block over 128 kB (a 640x272 picture is 522 kB) with a fresh ``mmap``
and returns it to the kernel when freed, raising that threshold only after a large block is
freed. The codec, decoder and metrics allocate and free such pictures by the thousand (each
resize, decode, warp), so the kernel maps and zeroes new pages each time: one encode of bikes
took 1.2 million page faults and 4.2 s of system time, where buffers kept for reuse take 0.12
million and 1.6 s. Whether that happened depended on which arrays an unrelated step had freed
first; the entry points set the thresholds instead (process-wide, once; elsewhere a no-op).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # blocks up to this come from the heap and are reused (glibc's own ceiling)
TRIM_THRESHOLD = 256 << 20  # free heap kept before any is handed back


def keep_freed_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds; False where the C library has no ``mallopt``."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
