"""The one executor under batch grading and hyperparameter search: a local process pool or a dask cluster.

    from solver.executor import open_executor, run_command
    with open_executor(jobs=2) as pool:                       # concurrent.futures.ProcessPoolExecutor
        ...
    with open_executor(kind="dask", scheduler="tcp://host:8786") as pool:   # a dask.distributed cluster
        ...

Both yield a ``concurrent.futures.Executor``; callers only ``submit`` and read futures, so nothing
about distribution is home-made. dask is an optional extra (``pip install chainrule[cluster]``),
imported only when asked for.

The work itself (one grading, one training trial) runs as a real subprocess started by
``run_command`` inside the executor's worker, with BLAS pinned to one thread (``PINNED_ENV``):
J jobs then use J cores, never J times two BLAS threads fighting for them, and a submission or
trial that crashes, hangs or floods ends only its own subprocess.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

KINDS = ("local", "dask")
# One BLAS/OpenMP thread per job (read by OpenBLAS, MKL, BLIS, Accelerate and OpenMP at start-up).
PINNED_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
# What run_command keeps of a command's output (its last bytes): enough for a reason, never a flood.
OUTPUT_TAIL_BYTES = 4000
DASK_MISSING = ("the dask executor needs the optional extra: pip install 'chainrule[cluster]' "
                "(dask and distributed)")


def default_jobs() -> int:
    """The cores this process may use (os.sched_getaffinity where the platform has it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def check_jobs(fn: str, jobs) -> int:
    """jobs as a positive int, or TypeError/ValueError naming fn and the argument."""
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"{fn}: jobs must be a positive int, got {type(jobs).__name__} {jobs!r}.")
    if jobs < 1:
        raise ValueError(f"{fn}: jobs must be a positive int, got {jobs}.")
    return jobs


def dask_available() -> bool:
    """Whether dask.distributed imports here (the cluster extra is installed)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def open_executor(jobs: int | None = None, kind: str = "local", scheduler: str | None = None, client=None):
    """A concurrent.futures.Executor for the duration of a ``with`` block.

    Args:
        jobs: local: worker processes (default: the cores available); dask without a scheduler or
            client: the workers of the LocalCluster started for the block. Ignored when the
            cluster already exists.
        kind: "local" (a process pool, spawn start method, nothing to install) or "dask".
        scheduler: kind "dask" only: the address of a running scheduler, like "tcp://10.0.0.5:8786".
        client: kind "dask" only: a connected ``dask.distributed.Client`` to use (not closed here).

    Yields:
        The executor. Leaving the block waits for submitted work and shuts down what was started
        here (the pool, or the Client and LocalCluster), never a cluster passed in.

    Raises:
        ValueError: unknown kind, scheduler or client given with kind "local", both given.
        RuntimeError: kind "dask" without the cluster extra installed.
    """
    if kind not in KINDS:
        raise ValueError(f"open_executor: kind must be one of {KINDS}, got {kind!r}.")
    jobs = default_jobs() if jobs is None else check_jobs("open_executor", jobs)
    if kind == "local":
        if scheduler is not None or client is not None:
            raise ValueError("open_executor: scheduler and client are for kind='dask'; kind is 'local'.")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    if scheduler is not None and client is not None:
        raise ValueError("open_executor: give a scheduler address or a client, not both.")
    if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
        raise ValueError(f"open_executor: scheduler must be an address like 'tcp://HOST:PORT', got {scheduler!r}.")
    if not dask_available():
        raise RuntimeError(f"open_executor: {DASK_MISSING}.")
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if client is None:
            if scheduler is None:
                cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                           host="127.0.0.1", dashboard_address=None))
                scheduler = cluster.scheduler_address
            client = stack.enter_context(Client(scheduler))
        pool = client.get_executor(pure=False)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True)


def executor_kind(pool: Executor) -> str:
    """'local' for a process pool, 'dask' for a dask ClientExecutor (for reports)."""
    return "local" if isinstance(pool, ProcessPoolExecutor) else "dask"


@dataclass
class CommandResult:
    """What one subprocess did: its exit code (None when killed at the timeout), output tails, seconds."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _tail(file) -> str:
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - OUTPUT_TAIL_BYTES))
    return file.read().decode("utf-8", "replace")


def _parents() -> dict[int, list[int]]:
    """parent pid -> its children's pids, for every process this one can see in /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    return children


def kill_tree(pid: int) -> int:
    """SIGKILL pid and every process descended from it, in whatever session or group each runs.

    A process group is not enough: the grader starts each sandboxed worker in a session of its
    own, so killing a hung grading's group left a worker spinning in the submission's code. Each
    process found is stopped first (SIGSTOP), so nothing forks or reparents while the tree is
    walked; the walk repeats until it finds nothing new. Off Linux (no /proc) only pid's group.

    Args:
        pid: the root of the tree (a child of this process, not yet reaped).

    Returns:
        How many processes were signalled.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise ValueError(f"kill_tree: pid must be an int > 1, got {pid!r}.")
    found: list[int] = []
    if os.path.isdir("/proc/self"):
        for _ in range(20):
            children, frontier, before = _parents(), [pid], len(found)
            while frontier:
                current = frontier.pop()
                if current not in found:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(current, signal.SIGSTOP)
                        found.append(current)
                frontier.extend(children.get(current, []))
            if len(found) == before:
                break
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for current in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(current, signal.SIGKILL)
    return len(found)


def run_command(args: list[str], timeout: float | None = None, cwd: str | None = None) -> CommandResult:
    """Run ``python args...`` (this interpreter) as a subprocess with BLAS pinned to one thread.

    Runs on the executor's worker, so a crash, hang or flood there ends this subprocess only; at
    the timeout it is killed with everything it started (kill_tree), sandboxed workers included,
    and the temporary files it left (it ran with a private TMPDIR) are removed.

    Args:
        args: the arguments after the interpreter, e.g. ["-m", "solver", "--epochs", "2"].
        timeout: seconds before the subprocess is killed (None: no limit).
        cwd: its working folder (default: this process's).

    Returns:
        The CommandResult (the last OUTPUT_TAIL_BYTES of stdout and stderr each).
    """
    if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise TypeError(f"run_command: args must be a list of str, got {args!r}.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"run_command: timeout must be None or a positive number of seconds, got {timeout!r}.")
    begin = time.monotonic()
    # Output goes to unnamed temporary files (bounded memory whatever the command prints); the
    # command's own temporary files go to a private TMPDIR, removed after it, killed or not.
    with tempfile.TemporaryDirectory(prefix="chainrule-command-", ignore_cleanup_errors=True) as scratch, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        env = dict(os.environ, **PINNED_ENV, TMPDIR=scratch)
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            kill_tree(proc.pid)
        except BaseException:  # interrupted (Ctrl-C reaches this worker too): leave nothing running
            kill_tree(proc.pid)
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what it left behind in its session too
            proc.wait()
        return CommandResult(code, _tail(out), _tail(err), time.monotonic() - begin)
