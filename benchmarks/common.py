"""What every benchmark shares: thread control and interleaved timing.

Thread counts: numpy's BLAS (OpenBLAS in the PyPI wheels) starts one thread per core when it
is loaded, before any benchmark could set OPENBLAS_NUM_THREADS, so `set_threads` calls
OpenBLAS's own setter on every OpenBLAS library loaded in the process, and PyTorch's
`set_num_threads`, so both sides run with the same count.
"""

from __future__ import annotations

import ctypes
import math
import statistics
import time

from layers.validate import integer

__all__ = ["set_threads", "configure", "blas_libraries", "median_interleaved", "median_per_call", "load_torch", "torch_mlp",
           "SETTLE_SECONDS", "QUICK_TIMING"]

# Names of the OpenBLAS thread setter, by build (system library; numpy/scipy wheels' 64-bit
# interface with and without the scipy_ prefix).
_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads")
_GETTERS = ("openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads")

# Pause before each timed run: OpenMP (PyTorch) and OpenBLAS worker threads keep spinning for a
# while after a call, and would otherwise steal the cores from whichever side runs next.
SETTLE_SECONDS = 0.05

# A --quick run checks that the code runs and measures nothing: each sample is one call, with no
# settling pause (keyword arguments of median_per_call; settle_s alone for median_interleaved).
QUICK_TIMING = {"min_sample_s": 0.0, "settle_s": 0.0}


def blas_libraries():
    """Paths of the OpenBLAS libraries loaded in this process once numpy is (Linux; empty elsewhere).

    Returns:
        sorted list of str.
    """
    import numpy  # noqa: F401  (loads numpy's BLAS)

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def _first(lib, names):
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn
    return None


def set_threads(threads, torch=None):
    """Use `threads` threads in numpy's BLAS and, when given, in torch.

    Args:
        threads: int >= 1.
        torch: the imported torch module, or None.

    Returns:
        dict with "blas": the thread counts the OpenBLAS libraries report afterwards (empty when
        none was found, e.g. off Linux or with another BLAS), and "torch": torch's count or None.
    """
    threads = integer("set_threads", "threads", threads, low=1)
    counts = []
    for path in blas_libraries():
        lib = ctypes.CDLL(path)
        setter, getter = _first(lib, _SETTERS), _first(lib, _GETTERS)
        if setter is None or getter is None:
            continue
        setter.restype = None
        setter(ctypes.c_int(threads))
        counts.append(int(getter()))
    if torch is not None:
        torch.set_num_threads(threads)
    return {"blas": counts, "torch": torch.get_num_threads() if torch is not None else None}


def configure(threads, torch=None, tune_memory=True):
    """Set both sides' thread counts and (by default) keep freed heap memory, as training does.

    Args:
        threads: int >= 1, for numpy's BLAS and torch.
        torch: the imported torch module, or None.
        tune_memory: call solver.tune_allocator(), as ``python -m solver`` does; both sides
            share the process's allocator, so it applies to PyTorch too.

    Returns:
        set_threads' dict plus "allocator": "tuned" (applied), "glibc default" (not asked for) or
        "not glibc" (asked for, but the C library is another, so nothing changed).
    """
    from solver.memory import tune_allocator

    settings = set_threads(threads, torch)
    if not tune_memory:
        settings["allocator"] = "glibc default"
    else:
        settings["allocator"] = "tuned" if tune_allocator() else "not glibc"
    return settings


def median_interleaved(fns, repeats, settle_s=SETTLE_SECONDS):
    """Median wall time of each function, the functions taking turns so noise hits all alike.

    Args:
        fns: dict name -> callable with no arguments.
        repeats: timed runs of each, after one untimed warm-up run of each.
        settle_s: the pause before each timed run (0 in a --quick run).

    Returns:
        dict name -> median seconds.
    """
    repeats = integer("median_interleaved", "repeats", repeats, low=1)
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            if settle_s:
                time.sleep(settle_s)
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def median_per_call(fns, repeats, min_sample_s=0.02, settle_s=SETTLE_SECONDS):
    """Median seconds per call of each function, each sample looping enough calls to last min_sample_s.

    Looping amortizes what a single short call cannot: waking thread pools after the settle
    pause, timer resolution. The call counts are fixed from a warm-up call, then the functions
    take turns as in median_interleaved.

    Args:
        fns: dict name -> callable with no arguments.
        repeats: timed samples of each.
        min_sample_s: the least duration of one sample (0: one call per sample).
        settle_s: the pause before each timed sample, as in median_interleaved.

    Returns:
        dict name -> median seconds per call.
    """
    if not (isinstance(min_sample_s, (int, float)) and min_sample_s >= 0):
        raise ValueError(f"median_per_call: min_sample_s must be a number >= 0, got {min_sample_s!r}.")
    counts = {}
    for name, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        counts[name] = max(1, math.ceil(min_sample_s / max(time.perf_counter() - t0, 1e-7)))

    def looped(fn, n):
        def run():
            for _ in range(n):
                fn()
        return run

    medians = median_interleaved({k: looped(fn, counts[k]) for k, fn in fns.items()}, repeats, settle_s)
    return {k: v / counts[k] for k, v in medians.items()}


def load_torch():
    """The torch module when PyTorch is installed, else None (it is an optional benchmark extra)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_mlp(torch, input_dim, hidden_dims, num_classes):
    """The PyTorch twin of FullyConnectedNet: {Linear - ReLU} x len(hidden_dims) - Linear."""
    dims = [input_dim, *hidden_dims, num_classes]
    parts = []
    for i in range(len(dims) - 1):
        parts.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            parts.append(torch.nn.ReLU())
    return torch.nn.Sequential(*parts)
