"""What confines a worker at every isolation level: the level names, its Limits, the Runtime it
runs, the launcher script that builds its root file system at the namespace levels, the rlimits
set before it starts, and its scrubbed environment.

grading.pool starts workers with these and grading.sandbox picks the level; the rest of the
grader imports every name from grading.sandbox.
"""

from __future__ import annotations

import os
import pathlib
import resource
import sys
from dataclasses import dataclass

ROOT_LEVEL, USERNS_LEVEL, PROCESS_LEVEL = "root", "userns", "process"
LEVELS = (ROOT_LEVEL, USERNS_LEVEL, PROCESS_LEVEL)
NOBODY = 65534
# Seconds a new worker may take to start Python and import numpy ($CHAINRULE_GRADER_STARTUP_S overrides).
STARTUP_ENV = "CHAINRULE_GRADER_STARTUP_S"
STARTUP_S = 30.0


class SandboxError(RuntimeError):
    """The worker could not be started: the grader's fault or the machine's, or (at the process
    level, where a worker can signal its zygote) a zygote the submission stopped or killed."""


def startup_seconds() -> float:
    """STARTUP_S, or the positive number of seconds in $CHAINRULE_GRADER_STARTUP_S."""
    text = os.environ.get(STARTUP_ENV)
    if not text:
        return STARTUP_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SandboxError(f"${STARTUP_ENV} must be a positive number of seconds, got {text!r}.")
    return value


@dataclass(frozen=True)
class Limits:
    """What one worker may use."""

    memory_mb: int = 4096        # address space (RLIMIT_AS), 0 for none
    processes: int = 64          # processes and threads beyond those its user already runs
    file_mb: int = 64            # largest file it may write (RLIMIT_FSIZE)
    output_bytes: int = 64_000   # what is kept of its stdout and stderr
    frame_bytes: int = 64 * 1024 * 1024      # one message from the worker
    total_bytes: int = 1024 * 1024 * 1024    # all its messages together


@dataclass(frozen=True)
class Runtime:
    """The Python the worker runs and where its packages are (outside any sandbox)."""

    exe: str
    home: str
    sites: tuple[str, ...]

    @classmethod
    def current(cls) -> "Runtime":
        """The interpreter running the grader, and the folders numpy and scipy come from."""
        import numpy
        import scipy

        home = os.path.realpath(sys.base_prefix)
        exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
        if not exe.startswith(home + os.sep):
            exe = os.path.realpath(os.path.join(home, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"))
        sites = []
        for module in (numpy, scipy):
            folder = str(pathlib.Path(module.__file__).resolve().parent.parent)
            if folder not in sites:
                sites.append(folder)
        return cls(exe=exe, home=home, sites=tuple(sites))

    def stdlib_inside(self, level: str) -> tuple[str, str]:
        """(executable, PYHOME to bind) as seen inside the sandbox of level."""
        if level == PROCESS_LEVEL or self.home.startswith("/usr/") or self.home == "/usr":
            return self.exe, ""
        return "/python" + self.exe[len(self.home):], self.home


LAUNCHER = r"""#!/bin/bash
# Runs as (namespace) root inside fresh namespaces: builds the worker's root file system, then
# drops to the worker. Arguments: NEWROOT WORK BOOT PYHOME RUNAS SETPRIV EXE FD SITE... (RUNAS: a uid,
# "-" for the namespace's own, or "zygote" to start grading.pool's zygote, which keeps them)
set -eu
R="$1"; WORK="$2"; BOOT="$3"; PYHOME="$4"; RUNAS="$5"; SETPRIV="$6"; EXE="$7"; FD="$8"; shift 8
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=64m chainrule-worker "$R"
ro() { mount --bind "$1" "$2"; mount -o remount,bind,ro,nosuid "$2" 2>/dev/null || mount -o remount,bind,ro "$2"; }
for d in usr bin sbin lib lib32 lib64 libx32 etc; do
    if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"
    elif [ -d "/$d" ]; then mkdir "$R/$d"; ro "/$d" "$R/$d"; fi
done
mkdir "$R/dev" "$R/proc" "$R/boot" "$R/work" "$R/site"
for n in null zero full random urandom; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mkdir -m 1777 "$R/tmp"
if [ -n "$PYHOME" ]; then mkdir "$R/python"; ro "$PYHOME" "$R/python"; fi
i=0
for s in "$@"; do mkdir "$R/site/$i"; ro "$s" "$R/site/$i"; i=$((i + 1)); done
cp "$BOOT/worker.py" "$BOOT/channel.py" "$R/boot/"
mount --bind "$WORK" "$R/work"
cd /
if [ "$RUNAS" = "-" ] || [ "$RUNAS" = "zygote" ]; then IDS=""; else IDS="--reuid=$RUNAS --regid=$RUNAS --clear-groups"; fi
SITES=(); for ((j = 0; j < i; j++)); do SITES+=("/site/$j"); done
if [ "$RUNAS" = "zygote" ]; then  # grading.pool's zygote: it drops every privilege in each worker it forks
    exec chroot "$R" "$EXE" -I -S /boot/worker.py --zygote "$FD" "${SITES[@]}"
fi
exec chroot "$R" "$SETPRIV" $IDS --inh-caps=-all --bounding-set=-all --no-new-privs -- "$EXE" -I -S /boot/worker.py "$FD" "${SITES[@]}"
"""


def count_processes(uid: int) -> int:
    """How many processes uid runs on this machine (RLIMIT_NPROC counts them all)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def preexec(limits: Limits, nproc: int | None):
    """The function the worker's process runs before exec: limits' rlimits, and nproc processes when given."""
    def apply():
        if limits.memory_mb:
            size = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return apply


def environment(work: str, level: str) -> dict:
    """The worker's whole environment: scrubbed, BLAS on one thread, HOME and TMPDIR where it may write."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "HOME": "/work" if level != PROCESS_LEVEL else work, "TMPDIR": "/tmp" if level != PROCESS_LEVEL else work,
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    # Some processors need these for OpenBLAS to compute correctly (see the machine notes).
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
