"""solver.executor: the one executor under search and batch grading, and its subprocess runner."""

from __future__ import annotations

import os
import pathlib
import time

import pytest

from solver.executor import (OUTPUT_TAIL_BYTES, PINNED_ENV, check_jobs, dask_available, default_jobs, executor_kind,
                             kill_tree, open_executor, run_command)

# A subprocess killed at its timeout is gone within this long (start-up of the interpreter included).
KILL_SLACK_S = 10.0


def _square(x):
    return x * x


@pytest.mark.slow
def test_the_local_pool_runs_submitted_work_in_worker_processes():
    with open_executor(jobs=2) as pool:
        assert executor_kind(pool) == "local"
        assert [f.result() for f in [pool.submit(_square, n) for n in range(5)]] == [0, 1, 4, 9, 16]
        assert pool.submit(os.getpid).result() != os.getpid()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"kind": "spark"}, ValueError, "kind must be one of ('local', 'dask'), got 'spark'"),
    ({"jobs": 0}, ValueError, "jobs must be a positive int, got 0"),
    ({"jobs": 2.0}, TypeError, "jobs must be a positive int, got float 2.0"),
    ({"scheduler": "tcp://127.0.0.1:8786"}, ValueError, "scheduler and client are for kind='dask'"),
    ({"kind": "dask", "scheduler": "127.0.0.1:8786"}, ValueError, "an address like 'tcp://HOST:PORT'"),
    ({"kind": "dask", "scheduler": "tcp://h:1", "client": object()}, ValueError, "not both"),
])
def test_bad_executor_arguments_are_refused_by_name(kwargs, error, message):
    with pytest.raises(error) as caught:
        with open_executor(**kwargs):
            pass
    assert message in str(caught.value)


def test_jobs_default_to_the_cores_this_process_may_use():
    assert default_jobs() == len(os.sched_getaffinity(0)) and check_jobs("f", 3) == 3


@pytest.mark.slow
@pytest.mark.skipif(not dask_available(), reason="the cluster extra is not installed: pip install 'chainrule[cluster]'")
def test_the_dask_executor_starts_a_local_cluster_and_runs_the_same_work():
    with open_executor(jobs=2, kind="dask") as pool:
        assert executor_kind(pool) == "dask"
        assert [f.result() for f in [pool.submit(_square, n) for n in range(5)]] == [0, 1, 4, 9, 16]


def test_run_command_pins_blas_to_one_thread_and_keeps_output_tails():
    code = ("import os, sys; print(','.join(os.environ[k] for k in sorted(%r))); "
            "sys.stdout.write('x' * 100000); sys.stderr.write('oops')" % sorted(PINNED_ENV))
    done = run_command(["-c", code])
    assert done.ok and done.returncode == 0 and done.stderr == "oops"
    assert len(done.stdout.encode()) == OUTPUT_TAIL_BYTES and set(done.stdout) == {"x"}
    short = run_command(["-c", "import os; print(','.join(os.environ[k] for k in sorted(%r)))" % sorted(PINNED_ENV)])
    assert short.stdout.strip() == ",".join("1" for _ in PINNED_ENV)


@pytest.mark.slow
def test_run_command_kills_at_the_timeout_with_everything_it_started(tmp_path):
    """The child starts a grandchild in a session of its own (as the grader starts its workers); both go."""
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(600)")
    begin = time.monotonic()
    done = run_command(["-c", code], timeout=3)
    assert done.returncode is None and not done.ok and time.monotonic() - begin < 3 + KILL_SLACK_S
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + KILL_SLACK_S
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild), "the grandchild outlived the timeout"


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, waiting for whoever adopted it to reap it)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_run_command_gives_the_command_a_private_temporary_folder_and_removes_it():
    done = run_command(["-c", "import tempfile, os; d = tempfile.gettempdir(); open(os.path.join(d, 'f'), 'w'); print(d)"])
    folder = pathlib.Path(done.stdout.strip())
    assert folder.name.startswith("chainrule-command-") and not folder.exists()


@pytest.mark.parametrize("args, timeout, message", [
    ("-c pass", None, "args must be a list of str"),
    (["-c", 1], None, "args must be a list of str"),
    (["-c", "pass"], 0, "timeout must be None or a positive number"),
    (["-c", "pass"], True, "timeout must be None or a positive number"),
])
def test_run_command_refuses_bad_arguments(args, timeout, message):
    with pytest.raises((TypeError, ValueError), match=message):
        run_command(args, timeout=timeout)


def test_kill_tree_refuses_a_pid_that_would_signal_everything():
    for pid in (0, 1, -1, True):
        with pytest.raises(ValueError, match="kill_tree: pid must be an int > 1"):
            kill_tree(pid)
