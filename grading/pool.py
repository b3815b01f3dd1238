"""Worker processes: start one over a fresh scratch copy of a student tree, wait for it to answer,
kill it with everything it started; the zygote that forks them cheaply, and the Pool that hands
them out.

A worker is either a sandboxed process of its own (WorkerProcess: an interpreter started inside
fresh namespaces, which then imports numpy and scipy, about 0.6 s of CPU) or a fork of a zygote
(ForkedWorker): one sandboxed process per Pool that has imported numpy and scipy once and forks a
worker per request in a few hundredths of a second. Either way each worker gets its own fresh
scratch copy of the tree. At the root and userns levels a forked worker is the first process of
PID, mount, IPC, UTS and network namespaces of its own, inside the zygote's, with its copy at
/work, a private /tmp and its own /proc, and no privilege (worker.py): it cannot see or signal the
zygote, and killing it kills its namespace, as with a WorkerProcess. At the process level the
zygote (a child subreaper) forks it plainly, and killing it kills every process under the zygote
but the zygote; the Pool hands out one forked worker at a time, so all of them are its.

What confines each worker is in grading.confinement; grading.sandbox picks the isolation level
and is where the rest of the grader imports these names from.
"""

from __future__ import annotations

import ctypes
import json
import os
import pathlib
import secrets
import select
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


# The student packages a worker imports lazily, one module at a time (worker.LazyPackage).
PACKAGES = ("layers", "solver")

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


def _stat(path: str) -> list[bytes] | None:
    """The fields of a /proc/.../stat file after the command name (field 3 on), None when gone."""
    try:
        with open(path, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (/proc/PID/stat field 22); None when gone."""
    fields = _stat(f"/proc/{pid}/stat")
    return int(fields[19]) if fields and len(fields) > 19 else None


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



def _children(pid: int) -> list[int]:
    """The children of every thread of pid (none when it is gone)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
        except (OSError, ValueError):
            pass
    return found


def _alive(pid: int) -> bool:
    """Whether pid exists with a thread that is not a zombie (a leader that exited while its other
    threads run shows as a zombie, and is still alive)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        fields = _stat(f"/proc/{pid}/task/{task}/stat")
        if fields and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _parent(pid: int) -> int | None:
    fields = _stat(f"/proc/{pid}/stat")
    return int(fields[1]) if fields and len(fields) > 1 else None


def _stopped(pid: int) -> bool:
    """Whether pid is stopped (SIGSTOP) or traced: a zygote like that answers nothing."""
    fields = _stat(f"/proc/{pid}/stat")
    return bool(fields) and fields[0] in (b"T", b"t")


def _descendants(pid: int) -> list[int]:
    """Every live process below pid, parents before their children."""
    found, seen, queue = [], set(), _children(pid)
    while queue:
        child = queue.pop(0)
        if child not in seen:
            seen.add(child)
            if _alive(child):
                found.append(child)
            queue += _children(child)
    return found


def _kill_below(root: int) -> bool:
    """SIGKILL every live process below root until none is left; False if they kept appearing.

    Each is signalled through a pidfd opened first and then checked to still be below root (its
    parent is root or one already found), so a number reused by another process is never hit.
    Best effort: a process that exits by itself while a pass reads /proc hands its children to
    root after root's list was read, and that pass misses them; so it takes two passes in a row
    that find nothing. Only a PID namespace makes a kill certain, which is why the namespace
    levels give each worker one and use this as a second sweep.
    """
    empty = 0
    for _ in range(KILL_PASSES):
        left = _descendants(root)
        if not left:
            empty += 1
            if empty == 2:
                return True
        else:
            empty = 0
            below = {root, *left}
            for pid in left:
                _kill_if_below(pid, below)
        time.sleep(0.001)
    return False


def _kill_if_below(pid: int, parents: set) -> None:
    """SIGKILL pid through a pidfd opened first, if its parent is then still one of parents (so a
    number that was reused by an unrelated process in between is never hit)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone already
    try:
        if _parent(pid) in parents:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def _namespace_pid(pid: int) -> int | None:
    """pid's number in its innermost PID namespace (the last NSpid field), None when gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return pid  # a kernel without NSpid has no nested namespaces to tell apart


def _open_pidfd(pid: int) -> int | None:
    try:  # readable once the process has ended, even while a child of it keeps a channel open
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: a crash shows only as the channel closing
        return None


def _copy_tree(tree: pathlib.Path, work: pathlib.Path, level: str) -> None:
    shutil.copytree(tree, work, symlinks=True)
    if level == ROOT_LEVEL:
        for path in (work, *work.rglob("*")):
            os.lchown(path, NOBODY, NOBODY)


# Passes of SIGKILL over a zygote's processes before its whole sandbox is taken down instead.
KILL_PASSES = 200
# Seconds a zygote may take to answer a fork request (it forks at once; a stopped one is replaced).
FORK_ANSWER_S = 10.0


class _Launched:
    """A process started in the sandbox of its level (a worker, or a zygote), and how it is killed."""

    def _launch(self, work: pathlib.Path, level: str, limits: Limits, runtime: Runtime, child_fd: int,
                zygote: bool = False) -> int:
        """Start the sandboxed python of worker.py with child_fd kept; returns the read end of its output."""
        self.level, self.limits = level, limits
        boot = self.scratch / "boot"
        boot.mkdir()
        for name in ("worker.py", "channel.py"):
            shutil.copyfile(HERE / name, boot / name)
        out_read, out_write = os.pipe()
        nproc = None
        if zygote and level != PROCESS_LEVEL:
            pass  # each forked worker gets its own, counted when it is forked (ForkedWorker)
        elif level == ROOT_LEVEL:
            nproc = count_processes(NOBODY) + limits.processes
        elif level == USERNS_LEVEL or os.geteuid() != 0:
            nproc = count_processes(os.geteuid()) + limits.processes
        exe, pyhome = runtime.stdlib_inside(level)
        if level == PROCESS_LEVEL:
            flags = ["--zygote"] if zygote else []
            command = [exe, "-I", "-S", str(boot / "worker.py"), *flags, str(child_fd), *runtime.sites]
            self.inside_work, self.inside_sites = str(work), list(runtime.sites)
        else:
            (self.scratch / "root").mkdir()
            (boot / "launch.sh").write_text(LAUNCHER)
            unshare = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
            if level == USERNS_LEVEL:
                unshare[1:1] = ["--user", "--map-root-user"]
            runas = "zygote" if zygote else str(NOBODY) if level == ROOT_LEVEL else "-"
            command = [*unshare, "--", "bash", str(boot / "launch.sh"), str(self.scratch / "root"), str(work),
                       str(boot), pyhome, runas, shutil.which("setpriv") or "/usr/bin/setpriv", exe,
                       str(child_fd), *runtime.sites]
            self.inside_work = "/work"
            self.inside_sites = [f"/site/{i}" for i in range(len(runtime.sites))]
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out_write, stderr=out_write, cwd=self.scratch,
                env=environment(str(work), level), start_new_session=True, close_fds=True,
                pass_fds=(child_fd,), preexec_fn=preexec(limits, nproc))
        except BaseException:
            os.close(out_read)
            raise
        finally:
            os.close(out_write)
        self.pid = self.process.pid
        self.birth = _start_ticks(self.pid)  # its orphans are no older than this
        return out_read

    def kill(self) -> None:
        """Kill the process and everything it started; remove its scratch folder (idempotent)."""
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
        if self.level == PROCESS_LEVEL and self._sweep_since() is not None:
            # Before waiting for the output to end: a daemon that left the process group may hold the pipe.
            _sweep_orphans({p.pid for p in _LIVE if p is not self}, self._sweep_since())
        self._release()
        shutil.rmtree(self.scratch, ignore_errors=True)
        _LIVE.discard(self)

    def _sweep_since(self) -> int | None:
        """Orphans of this process are no older than this (clock ticks); None: it can have none."""
        return self.birth

    def _kill_namespace_first(self) -> bool:
        """Kill the PID namespace's first process while unshare still waits for it; True once unshare exited.

        Killing unshare first would orphan that process to the machine's init, which may take its
        time to reap it (and a zombie still shows the submission's name); this way unshare reaps it,
        and the dying namespace reaps everything else inside it.
        """
        for child in _children(self.process.pid):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return True


class _Output:
    """What a sandboxed process printed, drained by a thread and kept up to limits.output_bytes."""

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


class _Serving(_Output):
    """A worker's side of things: its channel, its pidfd, its output drained by a thread."""

    channel = None
    pidfd = None
    _drain = None

    def _serve(self, sock, out_read: int, pid: int, work: str, sites: list) -> None:
        self.output = bytearray()
        self.output_total = 0
        self.pidfd = _open_pidfd(pid)
        self.channel = Channel(sock, max_frame_bytes=self.limits.frame_bytes,
                               max_total_bytes=self.limits.total_bytes, peer_fd=self.pidfd)
        self._drain = threading.Thread(target=self._drain_output, args=(out_read,), daemon=True)
        self._drain.start()
        self.started = time.monotonic()
        self.ready = False
        self.channel.send({"op": "init", "path": sites, "work": work, "packages": list(PACKAGES)})

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

    def _release(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if self._drain is not None:
            self._drain.join(timeout=5)

    def output_text(self, start: int = 0) -> str:
        """What the worker printed from byte start on, up to the cap, with a note when more was cut."""
        text = bytes(self.output[start:]).decode("utf-8", "replace")
        if self.output_total > len(self.output) and self.output_total > start:
            text += f"\n...[{self.output_total - max(start, len(self.output))} more bytes not kept]"
        return text


# Exit reports a zygote's Pool keeps at most (a hostile zygote could send any number).
MAX_EXITS_KEPT = 10_000


class WorkerProcess(_Launched, _Serving):
    """One sandboxed worker process of its own over a fresh scratch copy of a student tree.

    Args:
        tree: the student tree (the student version with the submission's files in it).
        level: one of LEVELS.
        limits: Limits.
        runtime: Runtime (default: the grader's interpreter).
    """

    def __init__(self, tree: pathlib.Path, level: str, limits: Limits, runtime: Runtime | None = None):
        if level not in LEVELS:
            raise ValueError(f"WorkerProcess: level must be one of {LEVELS}, got {level!r}.")
        self.dead = False
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="chainrule-worker-"))
        work = self.scratch / "work"
        _copy_tree(tree, work, level)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            out_read = self._launch(work, level, limits, runtime or Runtime.current(), child.fileno())
        finally:
            child.close()
        self._serve(parent, out_read, self.process.pid, self.inside_work, self.inside_sites)

    def exit_code(self, timeout: float) -> int | None:
        """The worker's exit code once it has ended (negative: the signal), None if not within timeout."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


class Zygote(_Launched, _Output):
    """One sandboxed process that has imported numpy and scipy and forks a worker per request.

    It runs exactly as a WorkerProcess would (same namespaces, user, limits and environment) but
    never imports student code; see worker.py for its side. The Pool keeps one per grading.

    Args:
        level: one of LEVELS.
        limits: Limits (each forked worker inherits them).
        runtime: Runtime (default: the grader's interpreter).
    """

    def __init__(self, level: str, limits: Limits, runtime: Runtime | None = None):
        if level not in LEVELS:
            raise ValueError(f"Zygote: level must be one of {LEVELS}, got {level!r}.")
        self.dead = False
        self.ready = False
        self.forks = 0
        self.exits: dict[int, int] = {}  # namespace pid -> exit code, as the zygote reported them
        self.last_birth: int | None = None  # when its latest worker started (clock ticks)
        self.host_pid: int | None = None  # the zygote itself (inside unshare at the namespace levels)
        self.output = bytearray()
        self.output_total = 0
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="chainrule-zygote-"))
        self.work = self.scratch / "work"  # the workers' copies, one folder each, seen inside as /work
        self.work.mkdir(mode=0o755)
        self.stage = self.scratch / "stage"  # where a copy is made, out of every worker's sight
        self.stage.mkdir(mode=0o700)
        self.control, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            out_read = self._launch(self.work, level, limits, runtime or Runtime.current(), child.fileno(),
                                    zygote=True)
        except BaseException:
            self.control.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        finally:
            child.close()
        self.pidfd = _open_pidfd(self.process.pid)
        self._drain = threading.Thread(target=self._drain_output, args=(out_read,), daemon=True)
        self._drain.start()
        self.started = time.monotonic()

    def _receive(self, timeout: float, what: str) -> bytes:
        """The zygote's next answer that is not an exit report (those are kept in self.exits)."""
        deadline = time.monotonic() + timeout
        waited = [self.control] if self.pidfd is None else [self.control, self.pidfd]
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select(waited, [], [], max(0.0, left))
            if self.control not in ready or left < 0:  # a stream of exit reports does not stretch the wait
                said = bytes(self.output).decode("utf-8", "replace").strip().splitlines()
                reason = "it ended" if ready and self.control not in ready else f"no answer within {timeout:g} s"
                raise SandboxError(f"the zygote did not {what} ({reason}); its output: "
                                   f"{said[-1] if said else 'none'}")
            try:
                answer = self.control.recv(4096)
            except OSError as exc:
                raise SandboxError(f"the zygote did not {what} ({exc})") from None
            if not answer:
                raise SandboxError(f"the zygote did not {what} (it closed its control socket)")
            if not self._note_exit(answer):
                return answer

    def _note_exit(self, answer: bytes) -> bool:
        """Keep an exit report b"exit PID CODE" (True), or say it is none (False)."""
        words = answer.split()
        if len(words) != 3 or words[0] != b"exit":
            return False
        try:
            pid, code = int(words[1]), int(words[2])
        except ValueError:
            return False
        if len(self.exits) < MAX_EXITS_KEPT:
            self.exits[pid] = code
        return True

    def exit_code(self, pid: int, timeout: float) -> int | None:
        """The exit code the zygote reported for its child pid (its namespace's number), None if none in time."""
        deadline = time.monotonic() + timeout
        while pid not in self.exits:
            left = deadline - time.monotonic()
            if left <= 0 or self.dead:
                return None
            ready, _, _ = select.select([self.control], [], [], left)
            if not ready:
                return None
            try:
                answer = self.control.recv(4096)
            except OSError:
                return None
            if not answer:
                return None
            self._note_exit(answer)
        return self.exits.pop(pid)

    def wait_ready(self) -> None:
        """Wait for the zygote's b"ready" (SandboxError, and the zygote killed, if it never comes)."""
        if self.ready:
            return
        try:
            answer = self._receive(max(0.0, startup_seconds() - (time.monotonic() - self.started)), "start")
            if answer != b"ready":
                raise SandboxError(f"the zygote did not start: it answered {answer!r:.200}")
        except SandboxError:
            self.kill()
            raise
        self.host_pid = self.process.pid
        if self.level != PROCESS_LEVEL:  # the namespace's first process: unshare's only child
            children = _children(self.process.pid)
            if len(children) != 1:
                self.kill()
                raise SandboxError(f"the zygote did not start: unshare has {len(children)} children")
            self.host_pid = children[0]
        self.ready = True

    def fork(self, tree) -> "ForkedWorker":
        """A new worker over its own fresh copy of tree (SandboxError when the zygote cannot fork it)."""
        self.wait_ready()
        if self.dead or not _alive(self.host_pid) or _stopped(self.host_pid):
            raise SandboxError("the zygote is gone or stopped")
        if not _kill_below(self.host_pid):  # one worker at a time: nothing of an earlier one may be left
            raise SandboxError("processes kept appearing under the zygote")
        self.exits.clear()  # earlier workers' codes: never asked for again
        return ForkedWorker(self, pathlib.Path(tree))

    def kill(self) -> None:
        """Kill the zygote and every worker under it; remove its scratch folder (idempotent)."""
        if self.dead:
            return
        if self.level == PROCESS_LEVEL and self.host_pid is not None:
            # Its workers left its process group (setsid); at the namespace levels they die with it.
            _kill_below(self.host_pid)
        super().kill()

    def _sweep_since(self) -> int | None:
        # The zygote runs no student code: only its last worker's orphans may have come to the grader
        # (its earlier workers' were killed while it lived); a caller's younger children are not theirs.
        return self.last_birth

    def _release(self) -> None:
        self.control.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self._drain.join(timeout=5)


class ForkedWorker(_Serving):
    """A worker forked by a Zygote, over its own fresh scratch copy of the tree.

    self.pid is the zygote's child. At the namespace levels that child has unshared fresh
    namespaces and waits for its only child, the worker, which is their first process: killing
    the worker kills the namespace. Then, at every level, everything still under the zygote is
    killed: the Pool hands out one worker of a zygote at a time, so all of it is this worker's
    (at the process level its orphans are the zygote's children, the zygote being a subreaper).
    """

    def __init__(self, zygote: Zygote, tree: pathlib.Path):
        self.zygote, self.limits, self.level = zygote, zygote.limits, zygote.level
        self.dead = False
        zygote.forks += 1
        # Made out of sight and renamed into /work whole: a process of the submission (at the levels
        # where /work is its to write) can neither guess the name beforehand nor swap a link in.
        name = f"w{zygote.forks}-{secrets.token_hex(8)}"
        staged = zygote.stage / name
        self.scratch = zygote.work / name
        try:
            _copy_tree(tree, staged, self.level)
            os.rename(staged, self.scratch)
        except OSError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            raise SandboxError(f"the worker's copy of the tree could not be made ({exc})") from None
        self.namespaced = self.level != PROCESS_LEVEL
        copy = f"{zygote.inside_work}/{name}"
        # In its own namespaces the worker finds its copy at /work, as one started on its own does.
        inside = "/work" if self.namespaced else copy
        env = {} if self.namespaced else {"HOME": copy, "TMPDIR": copy}
        nproc = None
        if self.namespaced:  # its user's processes now, plus its own allowance (RLIMIT_NPROC counts them all)
            nproc = count_processes(NOBODY if self.level == ROOT_LEVEL else os.geteuid()) + self.limits.processes
        request = {"work": copy, "env": env, "namespaces": self.namespaced,
                   "uid": NOBODY if self.level == ROOT_LEVEL else None, "nproc": nproc}
        try:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise SandboxError(f"no channel for the worker ({exc})") from None
        try:
            out_read, out_write = os.pipe()
        except OSError as exc:
            parent.close()
            child.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise SandboxError(f"no output pipe for the worker ({exc})") from None
        try:
            try:
                socket.send_fds(zygote.control, [json.dumps(request).encode()], [child.fileno(), out_write])
            except OSError as exc:
                raise SandboxError(f"the zygote did not take the request ({exc})") from None
            finally:
                child.close()
                os.close(out_write)
            answer = zygote._receive(FORK_ANSWER_S, "fork a worker")
            self.nspid, self.pid = self._find(answer, out_read)
        except BaseException:
            parent.close()
            os.close(out_read)
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        zygote.last_birth = _start_ticks(self.pid)
        _LIVE.add(self)
        try:
            self._serve(parent, out_read, self.pid, inside, zygote.inside_sites)
        except (EOFError, OSError) as exc:  # it ended before its first request
            self.kill()
            raise SandboxError(f"the forked worker ended before it started ({exc})") from None

    def _find(self, answer: bytes, out_read: int) -> tuple[int, int]:
        """(namespace pid, host pid) of the child the zygote says it forked (its child with that number)."""
        number = answer[4:] if answer.startswith(b"pid ") else b""
        if not number.isdigit():
            raise SandboxError(f"the zygote did not fork a worker: it answered {answer!r:.200}")
        for child in _children(self.zygote.host_pid):
            if _namespace_pid(child) == int(number):
                return int(number), child
        # Ended already, and reaped: what it printed says why (it never served anything yet).
        said = b""
        if select.select([out_read], [], [], 0.5)[0]:
            said = os.read(out_read, 400)
        code = self.zygote.exit_code(int(number), 0.5)
        raise SandboxError(f"the forked worker ended before it started (exit code {code}): "
                           f"{said.decode('utf-8', 'replace').strip() or 'it printed nothing'}")

    def exit_code(self, timeout: float) -> int | None:
        """The worker's exit code once it has ended (negative: the signal), None if not within timeout."""
        return self.zygote.exit_code(self.nspid, timeout)

    def kill(self) -> None:
        """Kill the worker and everything under the zygote but the zygote; remove its copy (idempotent)."""
        if self.dead:
            return
        self.dead = True
        if self.namespaced and self.pidfd is not None and not select.select([self.pidfd], [], [], 0)[0]:
            # The worker is the first process of its own PID namespace, the only child of self.pid
            # (still alive, so its number is still its own): killing it kills that namespace.
            for child in _children(self.pid):
                _kill_if_below(child, {self.pid})
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
        if self.zygote.dead or not _alive(self.zygote.host_pid) or _stopped(self.zygote.host_pid):
            self.zygote.kill()  # its namespace is gone, or (process level) it sweeps the orphans it left
        elif not _kill_below(self.zygote.host_pid):  # they keep forking: take the whole sandbox down
            self.zygote.kill()
        if self.pidfd is not None:
            select.select([self.pidfd], [], [], 5)
        self._release()
        shutil.rmtree(self.scratch, ignore_errors=True)
        _LIVE.discard(self)


_LIVE: set = set()


def start_worker(tree, level: str, limits: Limits, runtime: Runtime | None = None) -> WorkerProcess:
    """A started WorkerProcess (its init answer is awaited on first use)."""
    if level == PROCESS_LEVEL:
        _become_subreaper()
    worker = WorkerProcess(pathlib.Path(tree), level, limits, runtime)
    _LIVE.add(worker)
    return worker


def start_zygote(level: str, limits: Limits, runtime: Runtime | None = None) -> Zygote:
    """A started Zygote (its b"ready" is awaited on the first fork)."""
    if level == PROCESS_LEVEL:
        _become_subreaper()
    zygote = Zygote(level, limits, runtime)
    _LIVE.add(zygote)
    return zygote


class Pool:
    """Hands out fresh workers: forks of one zygote (the default), or processes of their own.

    Args:
        tree: the student tree every worker gets a fresh copy of.
        level: one of LEVELS.
        limits: Limits.
        fork: fork workers from a zygote started now (it boots while the caller goes on); False
            starts a WorkerProcess per worker, keeping one started ahead so its startup overlaps
            the last test.

    A spare set by the caller (the probe's worker of isolation_with_worker) is handed out first.
    A zygote's workers live one at a time: taking a new one kills the last one still alive.
    """

    def __init__(self, tree, level: str, limits: Limits, fork: bool = True):
        if level not in LEVELS:
            raise ValueError(f"Pool: level must be one of {LEVELS}, got {level!r}.")
        if not isinstance(fork, bool):
            raise TypeError(f"Pool: fork must be True or False, got {type(fork).__name__} {fork!r}.")
        self.tree, self.level, self.limits, self.fork = pathlib.Path(tree), level, limits, fork
        self.runtime = Runtime.current()
        self.spare = None
        self.started = 0
        self.zygote: Zygote | None = None
        self.current: ForkedWorker | None = None
        if fork:
            try:  # it boots while the caller goes on; one that cannot start fails at the first take()
                self.zygote = start_zygote(level, limits, self.runtime)
            except (OSError, subprocess.SubprocessError):
                self.zygote = None

    def take(self):
        """A worker of its own for the caller, who must kill it when done."""
        if self.spare is not None:
            worker, self.spare = self.spare, None
            if not self.fork:
                self.spare = self._start()
            return worker
        if not self.fork:
            worker = self._start()
            self.spare = self._start()
            return worker
        if self.current is not None:
            self.current.kill()  # one at a time: a kill sweeps everything under the zygote
        self.started += 1
        for attempt in range(2):
            try:
                if self.zygote is None or self.zygote.dead:
                    self.zygote = start_zygote(self.level, self.limits, self.runtime)
                self.current = self.zygote.fork(self.tree)
                return self.current
            except (SandboxError, OSError, subprocess.SubprocessError) as exc:
                # At the process level a submission may kill or stop its zygote: the next test gets a new one.
                if self.zygote is not None:
                    self.zygote.kill()
                if attempt:
                    raise exc if isinstance(exc, SandboxError) else SandboxError(
                        f"the zygote could not start ({type(exc).__name__}: {exc})") from None
        raise AssertionError("unreachable")

    def _start(self) -> WorkerProcess:
        self.started += 1
        return start_worker(self.tree, self.level, self.limits, self.runtime)

    def close(self) -> None:
        """Kill the spare worker, the last forked one and the zygote."""
        for held in (self.spare, self.current, self.zygote):
            if held is not None:
                held.kill()
        self.spare = self.current = self.zygote = None


def kill_all() -> int:
    """Kill every worker still alive (the end of grading); returns how many there were."""
    live = list(_LIVE)
    for worker in live:
        worker.kill()
    return len(live)
