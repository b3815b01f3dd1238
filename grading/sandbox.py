"""Start, limit and kill the worker that runs a submission's code.

Three isolation levels, the strongest that this machine allows (``isolation()``):

    root    the grader is root: new mount, network, PID, IPC and UTS namespaces; the worker
            sees a fresh root file system holding only the system folders (read-only), the
            Python runtime and its site-packages (read-only), and its own scratch copy of the
            student tree at /work; it runs as the unprivileged user nobody, with no
            capabilities and no_new_privs. It cannot read the grader's files, signal or ptrace
            the grader, or reach the network.
    userns  not root, but unprivileged user namespaces work: the same namespaces and file
            system view, the worker keeps the grader's uid outside but holds no capability.
    process neither: the worker is a separate process in its own session with a scrubbed
            environment and the limits below, in a scratch folder; it can still read what the
            grader's user can read and signal the grader's processes.

In every level: limits on address space, file size, core dumps, processes (RLIMIT_NPROC); no
descriptor but the channel and the output pipe; BLAS pinned to one thread; a process group
killed as a whole (in the namespace levels, the PID namespace dies with its first process, so
nothing of the submission survives). Output is drained by a thread and kept up to a cap.

A Pool forks its workers from a zygote (grading.pool.Zygote): one process per grading in the
sandbox of its level, which has imported numpy and scipy and forks one worker at a time, each over
its own fresh copy of the tree and, at the root and userns levels, in fresh namespaces of its own
with every privilege dropped, so it holds what a worker started on its own holds.

The work is split by job: grading.confinement holds the levels, the Limits, the Runtime, the
launcher and the worker's environment; grading.pool starts, tracks and kills the workers and
hands them out through a Pool; this module picks the level (``isolation()``) and describes it.
Every name of the three is importable from here, which is where the rest of the grader takes them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from grading.confinement import (LAUNCHER, LEVELS, NOBODY, PROCESS_LEVEL, ROOT_LEVEL, STARTUP_ENV, STARTUP_S,
                                 USERNS_LEVEL, Limits, Runtime, SandboxError, startup_seconds)
from grading.pool import HERE, ForkedWorker, Pool, WorkerProcess, Zygote, kill_all, start_worker, start_zygote

__all__ = ["ROOT_LEVEL", "USERNS_LEVEL", "PROCESS_LEVEL", "LEVELS", "ISOLATION_ENV", "NOBODY", "HERE", "STARTUP_ENV",
           "STARTUP_S", "LAUNCHER", "SandboxError", "Limits", "Runtime", "WorkerProcess", "Zygote", "ForkedWorker",
           "Pool", "startup_seconds", "start_worker", "start_zygote", "isolation", "isolation_with_worker", "describe", "kill_all"]

ISOLATION_ENV = "CHAINRULE_GRADER_ISOLATION"


_DETECTED: dict = {}


def _probe(level: str, limits: Limits) -> str:
    """'' when a worker of level starts and answers here, else why not."""
    with tempfile.TemporaryDirectory(prefix="chainrule-probe-") as tmp:
        worker = None
        try:
            worker = start_worker(tmp, level, limits)
            worker.wait_ready()
            return ""
        except (SandboxError, OSError) as exc:
            return str(exc)
        finally:
            if worker is not None:
                worker.kill()


def isolation_with_worker(tree, limits: Limits) -> tuple[str, "WorkerProcess | None"]:
    """(level, a ready worker over tree at that level or None): isolation() without a wasted probe.

    When the level is not known yet, the probe is a real worker over tree, which the caller
    keeps (a Pool's first spare) instead of starting another.
    """
    if os.environ.get(ISOLATION_ENV, "") or "level" in _DETECTED:
        return isolation(limits), None
    for candidate in _candidates():
        worker = None
        try:
            worker = start_worker(tree, candidate, limits)
            worker.wait_ready()
        except (SandboxError, OSError):
            if worker is not None:
                worker.kill()
            continue
        _DETECTED["level"] = candidate
        return candidate, worker
    _DETECTED["level"] = PROCESS_LEVEL
    return PROCESS_LEVEL, None


def _candidates() -> list[str]:
    if sys.platform.startswith("linux") and all(shutil.which(t) for t in ("unshare", "setpriv", "chroot", "mount")):
        return [ROOT_LEVEL] if os.geteuid() == 0 else [USERNS_LEVEL]
    return []


def isolation(limits: Limits | None = None) -> str:
    """The strongest level that starts on this machine (or $CHAINRULE_GRADER_ISOLATION if set)."""
    wanted = os.environ.get(ISOLATION_ENV, "")
    if wanted:
        if wanted not in LEVELS:
            raise SandboxError(f"${ISOLATION_ENV} must be one of {LEVELS}, got {wanted!r}.")
        return wanted
    if "level" in _DETECTED:
        return _DETECTED["level"]
    limits = limits or Limits()
    level = PROCESS_LEVEL
    for candidate in _candidates():
        if not _probe(candidate, limits):
            level = candidate
            break
    _DETECTED["level"] = level
    return level


def describe(level: str) -> str:
    """One sentence for results.json on what the worker could and could not reach."""
    return {
        ROOT_LEVEL: "Isolation: root (the submission ran as user nobody in its own mount, PID and network "
                    "namespaces, seeing only system folders, Python and its own files).",
        USERNS_LEVEL: "Isolation: user namespace (own mount, PID and network namespaces, no capabilities, "
                      "seeing only system folders, Python and its own files).",
        PROCESS_LEVEL: "Isolation: process only (a separate process with limits; it could read what the "
                       "grader's user can read).",
    }[level]
