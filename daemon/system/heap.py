"""Large allocations given back to the system as soon as they are freed (glibc).

glibc serves an allocation past its mmap threshold (128 KiB at start) with a mapping of its
own, unmapped when freed. But each such block freed raises the threshold to its size (up to
32 MiB): after the first 4 MiB request body is freed, later bodies, inflated payloads and
the parser's arenas come from the heap, where, freed among smaller blocks that live on, they
stay resident. A flood of large requests left the daemon 8-13 MB heavier for good, and
16 such buffers freed held 65 MiB. A fixed threshold keeps every large block a mapping of
its own (docs/security/memory.md). Elsewhere (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept fixed


def keep_large_blocks_unmapped_when_freed() -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
