"""Worker processes: start one over a fresh scratch copy of a student tree, wait for it to answer,
kill it with everything it started; the Pool that keeps one started ahead.

What confines each worker is in grading.confinement; grading.sandbox picks the isolation level
and is where the rest of the grader imports these names from.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from grading.channel import Channel, ChannelError
from grading.confinement import (LAUNCHER, LEVELS, NOBODY, PROCESS_LEVEL, ROOT_LEVEL, USERNS_LEVEL, Limits, Runtime,
                                 SandboxError, count_processes, environment, preexec, startup_seconds)

# The folder of worker.py and channel.py, the only grading files a worker gets.
HERE = pathlib.Path(__file__).resolve().parent


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


def _start_ticks(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (/proc/PID/stat field 22); None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _sweep_orphans(known: set[int], since: int | None = None) -> int:
    """Kill and reap our children that we did not start (orphans of a worker); returns how many.

    Only children started at or after ``since`` (clock ticks, see _start_ticks) count: a worker's
    orphans are younger than the worker, and the caller's own older children (a multiprocessing
    resource tracker, a pool of its own) are not the grader's to kill."""
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
            if int(stat[1]) == me and (since is None or int(stat[19]) >= since):
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
            nproc = count_processes(NOBODY) + limits.processes
        elif level == USERNS_LEVEL or os.geteuid() != 0:
            nproc = count_processes(os.geteuid()) + limits.processes
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
                env=environment(str(work), level), start_new_session=True, close_fds=True,
                pass_fds=(child_fd,), preexec_fn=preexec(limits, nproc))
        finally:
            os.close(out_write)
            child.close()
        self.birth = _start_ticks(self.process.pid)  # its orphans are no older than this
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
            _sweep_orphans({p.process.pid for p in _LIVE if p is not self}, self.birth)
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


def kill_all() -> int:
    """Kill every worker still alive (the end of grading); returns how many there were."""
    live = list(_LIVE)
    for worker in live:
        worker.kill()
    return len(live)
