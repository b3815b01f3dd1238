"""Keep freed heap memory in the process, so numpy's fresh arrays stop page-faulting.

Every layer call returns fresh arrays, and a training step frees them all again. glibc's
malloc hands memory above its trim threshold (dynamic, a few MiB once arrays of that size have
been freed) back to the operating system when it is freed, and serves arrays above its mmap
threshold with fresh mappings. Either way the next step's arrays land on pages the kernel must
fault in and zero again, one 4 KiB page at a time. Measured at 256 x 1024 float32: about 1,000
minor page faults per batchnorm forward pass, half its time; with the settings below, none.

``tune_allocator`` raises the two thresholds for the whole process. The cost is memory held: up
to ``trim_mib`` of freed heap stays with the process instead of going back to the system. It
changes no result, only where memory comes from. The training command (``python -m solver``)
and the benchmarks call it once at start; a training loop of your own can too.
"""

from __future__ import annotations

import ctypes

from layers.validate import integer

__all__ = ["tune_allocator", "MMAP_THRESHOLD_LIMIT_MIB"]

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above half its heap size, 32 MiB on 64-bit systems.
MMAP_THRESHOLD_LIMIT_MIB = 32


def _glibc():
    """The C library when it is glibc (it has gnu_get_libc_version and mallopt), else None."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded in this process
    except (OSError, TypeError):  # Windows has no such handle (TypeError there)
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def tune_allocator(trim_mib=256, mmap_mib=MMAP_THRESHOLD_LIMIT_MIB):
    """Raise glibc malloc's trim and mmap thresholds for this process (see the module docstring).

    Args:
        trim_mib: freed memory at the top of the heap kept rather than returned to the system,
            in MiB (1 to 4096).
        mmap_mib: arrays smaller than this come from the heap rather than from fresh mappings,
            in MiB (1 to 32, glibc's limit).

    Returns:
        True when the settings were applied; False when the C library is not glibc (macOS,
        Windows, musl), where nothing is changed.
    """
    trim = integer("tune_allocator", "trim_mib (MiB)", trim_mib, low=1, high=4096)
    mmap = integer("tune_allocator", "mmap_mib (MiB)", mmap_mib, low=1, high=MMAP_THRESHOLD_LIMIT_MIB)
    libc = _glibc()
    if libc is None:
        return False
    # Setting either threshold turns off glibc's own adjustment of both, so set both.
    for param, mib in ((_M_MMAP_THRESHOLD, mmap), (_M_TRIM_THRESHOLD, trim)):
        if libc.mallopt(param, mib * 2**20) != 1:
            raise OSError(f"tune_allocator: glibc's mallopt refused parameter {param} = {mib} MiB.")
    return True
