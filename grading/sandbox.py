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
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from grading.channel import Channel, ChannelError

ROOT_LEVEL, USERNS_LEVEL, PROCESS_LEVEL = "root", "userns", "process"
LEVELS = (ROOT_LEVEL, USERNS_LEVEL, PROCESS_LEVEL)
ISOLATION_ENV = "CHAINRULE_GRADER_ISOLATION"
NOBODY = 65534
HERE = pathlib.Path(__file__).resolve().parent
# Seconds a new worker may take to start Python and import numpy ($CHAINRULE_GRADER_STARTUP_S overrides).
STARTUP_ENV = "CHAINRULE_GRADER_STARTUP_S"
STARTUP_S = 30.0


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

LAUNCHER = r"""#!/bin/bash
# Runs as (namespace) root inside fresh namespaces: builds the worker's root file system, then
# drops to the worker. Arguments: NEWROOT WORK BOOT PYHOME RUNAS SETPRIV EXE FD SITE...
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
if [ "$RUNAS" = "-" ]; then IDS=""; else IDS="--reuid=$RUNAS --regid=$RUNAS --clear-groups"; fi
SITES=(); for ((j = 0; j < i; j++)); do SITES+=("/site/$j"); done
exec chroot "$R" "$SETPRIV" $IDS --inh-caps=-all --bounding-set=-all --no-new-privs -- "$EXE" -I -S /boot/worker.py "$FD" "${SITES[@]}"
"""


class SandboxError(RuntimeError):
    """The worker could not be started (the grader's fault or the machine's, never the submission's)."""


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


def _count_processes(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _preexec(limits: Limits, nproc: int | None):
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


def _environment(work: str, level: str) -> dict:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "HOME": "/work" if level != PROCESS_LEVEL else work, "TMPDIR": "/tmp" if level != PROCESS_LEVEL else work,
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    # Some processors need these for OpenBLAS to compute correctly (see the machine notes).
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


_SUBREAPER = [False]


def _become_subreaper() -> None:
    """Orphaned descendants of a worker become our children, so they can be found and killed."""
    if _SUBREAPER[0] or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(36, 1, 0, 0, 0) == 0:  # PR_SET_CHILD_SUBREAPER
            _SUBREAPER[0] = True
    except (OSError, AttributeError):
        pass


def _sweep_orphans(known: set[int]) -> int:
    """Kill and reap our children that we did not start (orphans of a worker); returns how many."""
    killed = 0
    me = os.getpid()
    for _ in range(20):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in known:
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == me:
                found.append(int(entry))
        if not found:
            return killed
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                killed += 1
            except (ProcessLookupError, ChildProcessError):
                pass
    return killed


class WorkerProcess:
    """One sandboxed worker over a fresh scratch copy of a student tree.

    Args:
        tree: the student tree (the student version with the submission's files in it).
        level: one of LEVELS.
        limits: Limits.
        runtime: Runtime (default: the grader's interpreter).
    """

    def __init__(self, tree: pathlib.Path, level: str, limits: Limits, runtime: Runtime | None = None):
        if level not in LEVELS:
            raise ValueError(f"WorkerProcess: level must be one of {LEVELS}, got {level!r}.")
        self.level, self.limits = level, limits
        runtime = runtime or Runtime.current()
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="chainrule-worker-"))
        work, boot = self.scratch / "work", self.scratch / "boot"
        shutil.copytree(tree, work, symlinks=True)
        boot.mkdir()
        for name in ("worker.py", "channel.py"):
            shutil.copyfile(HERE / name, boot / name)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child_fd = child.fileno()  # kept at the same number in the worker
        out_read, out_write = os.pipe()
        nproc = None
        if level == ROOT_LEVEL:
            for path in (work, *work.rglob("*")):
                os.lchown(path, NOBODY, NOBODY)
            nproc = _count_processes(NOBODY) + limits.processes
        elif level == USERNS_LEVEL or os.geteuid() != 0:
            nproc = _count_processes(os.geteuid()) + limits.processes
        exe, pyhome = runtime.stdlib_inside(level)
        if level == PROCESS_LEVEL:
            command = [exe, "-I", "-S", str(boot / "worker.py"), str(child_fd), *runtime.sites]
            self.inside_work, self.inside_sites = str(work), list(runtime.sites)
        else:
            (self.scratch / "root").mkdir()
            (boot / "launch.sh").write_text(LAUNCHER)
            unshare = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
            if level == USERNS_LEVEL:
                unshare[1:1] = ["--user", "--map-root-user"]
            runas = str(NOBODY) if level == ROOT_LEVEL else "-"
            command = [*unshare, "--", "bash", str(boot / "launch.sh"), str(self.scratch / "root"), str(work),
                       str(boot), pyhome, runas, shutil.which("setpriv") or "/usr/bin/setpriv", exe,
                       str(child_fd), *runtime.sites]
            self.inside_work = "/work"
            self.inside_sites = [f"/site/{i}" for i in range(len(runtime.sites))]
        self.output = bytearray()
        self.output_total = 0
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out_write, stderr=out_write, cwd=self.scratch,
                env=_environment(str(work), level), start_new_session=True, close_fds=True,
                pass_fds=(child_fd,), preexec_fn=_preexec(limits, nproc))
        finally:
            os.close(out_write)
            child.close()
        try:  # readable once the worker has ended, even while a child of it keeps the channel open
            self.pidfd = os.pidfd_open(self.process.pid)
        except (AttributeError, OSError):  # before Linux 5.3: a crash shows only as the channel closing
            self.pidfd = None
        self.channel = Channel(parent, max_frame_bytes=limits.frame_bytes, max_total_bytes=limits.total_bytes,
                               peer_fd=self.pidfd)
        self._drain = threading.Thread(target=self._drain_output, args=(out_read,), daemon=True)
        self._drain.start()
        self.started = time.monotonic()
        self.ready = False
        self.dead = False
        self.channel.send({"op": "init", "path": self.inside_sites, "work": self.inside_work,
                           "packages": ["layers", "solver"]})

    def _drain_output(self, fd: int) -> None:
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                self.output_total += len(chunk)
                room = self.limits.output_bytes - len(self.output)
                if room > 0:
                    self.output += chunk[:room]
        except OSError:
            return
        finally:
            os.close(fd)

    def wait_ready(self) -> None:
        """Wait for the worker's answer to init (SandboxError if it never comes)."""
        if self.ready:
            return
        try:
            answer = self.channel.recv(timeout=max(0.0, startup_seconds() - (time.monotonic() - self.started)))
        except (TimeoutError, EOFError, ChannelError) as exc:
            self.kill()
            said = bytes(self.output).decode("utf-8", "replace").strip().splitlines()
            raise SandboxError(f"the worker did not start ({type(exc).__name__}: {exc}); "
                               f"its output: {said[-1] if said else 'none'}") from None
        if not (isinstance(answer, dict) and answer.get("ok") is True):
            self.kill()
            raise SandboxError(f"the worker did not start: it answered {answer!r:.200}")
        self.ready = True

    def kill(self) -> None:
        """Kill the worker and everything it started; remove its scratch folder (idempotent)."""
        if self.dead:
            return
        self.dead = True
        if self.level != PROCESS_LEVEL and self._kill_namespace_first():
            pass  # unshare reaped the namespace's first process, which reaped the rest as it died
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        if self.level == PROCESS_LEVEL:
            # Before waiting for the output to end: a daemon that left the process group may hold the pipe.
            _sweep_orphans({p.process.pid for p in _LIVE if p is not self})
        self.channel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self._drain.join(timeout=5)
        shutil.rmtree(self.scratch, ignore_errors=True)
        _LIVE.discard(self)

    def _kill_namespace_first(self) -> bool:
        """Kill the PID namespace's first process while unshare still waits for it; True once unshare exited.

        Killing unshare first would orphan that process to the machine's init, which may take its
        time to reap it (and a zombie still shows the submission's name); this way unshare reaps it,
        and the dying namespace reaps everything else inside it.
        """
        pid = self.process.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                children = [int(c) for c in handle.read().split()]
        except (OSError, ValueError):
            return False
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return True

    def output_text(self, start: int = 0) -> str:
        """What the worker printed from byte start on, up to the cap, with a note when more was cut."""
        text = bytes(self.output[start:]).decode("utf-8", "replace")
        if self.output_total > len(self.output) and self.output_total > start:
            text += f"\n...[{self.output_total - max(start, len(self.output))} more bytes not kept]"
        return text


_LIVE: set = set()


def start_worker(tree, level: str, limits: Limits, runtime: Runtime | None = None) -> WorkerProcess:
    """A started WorkerProcess (its init answer is awaited on first use)."""
    if level == PROCESS_LEVEL:
        _become_subreaper()
    worker = WorkerProcess(pathlib.Path(tree), level, limits, runtime)
    _LIVE.add(worker)
    return worker


class Pool:
    """Hands out fresh workers, keeping one started ahead so its startup overlaps the last test."""

    def __init__(self, tree, level: str, limits: Limits):
        self.tree, self.level, self.limits = pathlib.Path(tree), level, limits
        self.runtime = Runtime.current()
        self.spare: WorkerProcess | None = None
        self.started = 0

    def take(self) -> WorkerProcess:
        """A worker of its own for the caller, who must kill it when done."""
        worker = self.spare or self._start()
        self.spare = self._start()
        return worker

    def _start(self) -> WorkerProcess:
        self.started += 1
        return start_worker(self.tree, self.level, self.limits, self.runtime)

    def close(self) -> None:
        """Kill the spare worker."""
        if self.spare is not None:
            self.spare.kill()
            self.spare = None


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


def kill_all() -> int:
    """Kill every worker still alive (the end of grading); returns how many there were."""
    live = list(_LIVE)
    for worker in live:
        worker.kill()
    return len(live)
