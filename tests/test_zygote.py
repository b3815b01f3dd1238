"""The zygote that forks the grader's workers (grading.pool.Zygote, ForkedWorker and Pool).

A Pool forks each worker from one sandboxed process that imported numpy and scipy once. What a
worker started on its own guaranteed must hold for a forked one too: a fresh copy of the tree, a
fresh /tmp and random state, no module of an earlier worker, everything it started killed with it;
and a submission that attacks its zygote costs only its own tests. Real processes throughout, at
the process level and at the strongest level this machine starts.
"""

from __future__ import annotations

import os

import pytest

from grading import pool as pool_module
from grading import sandbox
from grading.student import RemoteStudent, SubmissionCrashed

STRONGEST = sandbox.isolation()
LEVELS = sorted({sandbox.PROCESS_LEVEL, STRONGEST})

PROBE = '''import os, sys, tempfile

import numpy as np


def mark():
    """Leave traces a later worker must not see; return what this worker drew."""
    open("note.txt", "w").write("left by an earlier worker")
    open(os.path.join(tempfile.gettempdir(), "left.txt"), "w").write("left by an earlier worker")
    np.left_by_an_earlier_worker = True
    return os.getcwd(), float(np.random.rand())


def look():
    """What this worker finds: traces, its random draw, the student modules already imported."""
    loaded = sorted(m for m in sys.modules if m.startswith("layers.") and m != "layers.probe")
    return (os.path.exists("note.txt"), os.path.exists(os.path.join(tempfile.gettempdir(), "left.txt")),
            hasattr(np, "left_by_an_earlier_worker"), float(np.random.rand()), loaded, os.getcwd())


def kill_parent():
    import signal
    os.kill(os.getppid(), signal.SIGKILL)
    return os.getppid()


def read_parent(name):
    try:
        with open(f"/proc/{os.getppid()}/{name}", "rb") as handle:
            handle.read(16)
        return "read"
    except OSError as exc:
        return type(exc).__name__
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("zygote-tree")
    (root / "layers").mkdir()
    (root / "layers/__init__.py").write_text("from layers.other import twice\n")
    (root / "layers/other.py").write_text("def twice(x):\n    return 2 * x\n")
    (root / "layers/probe.py").write_text(PROBE)
    return root


@pytest.fixture(params=LEVELS)
def pool(request, tree):
    pool = sandbox.Pool(tree, request.param, sandbox.Limits())
    yield pool
    pool.close()
    sandbox.kill_all()


def test_a_forked_worker_starts_as_fresh_as_one_started_on_its_own(pool):
    """No file, /tmp file, module attribute, student module or random state of an earlier worker
    reaches the next one; each has its own copy of the tree, and the earlier copy is removed."""
    first = RemoteStudent(pool, timeout=30)
    assert first.call("layers.twice", 21) == 42  # imports layers.other in the first worker
    cwd, drawn = first.call("layers.probe.mark")
    assert first.call("layers.probe.look")[:3] == (True, True, True)  # the traces are real
    first.close()
    second = RemoteStudent(pool, timeout=30)
    note, temp, attribute, redrawn, loaded, second_cwd = second.call("layers.probe.look")
    second.close()
    assert (note, temp, attribute, loaded) == (False, False, False, [])
    assert redrawn != drawn, "numpy's global generator was not reseeded after the fork"
    assert second_cwd != cwd and pool.zygote.forks == 2
    assert not (pool.zygote.work / os.path.basename(cwd)).exists(), "the first worker's copy was left behind"


def test_a_submission_that_signals_its_zygote_costs_only_its_own_tests(pool):
    """At the namespace levels the zygote is the namespace's first process, which a SIGKILL from
    inside cannot end; at the process level it dies, and the next test gets a new zygote with a
    working worker while nothing of the old one is left running."""
    attacker = RemoteStudent(pool, timeout=30)
    old = pool.zygote
    old.wait_ready()
    old_host = old.host_pid
    attacker.call("layers.probe.kill_parent")
    attacker.close()
    after = RemoteStudent(pool, timeout=30)
    assert after.call("layers.twice", 4) == 8
    after.close()
    if pool.level == sandbox.PROCESS_LEVEL:
        assert pool.zygote is not old and old.dead and not pool_module._alive(old_host)
    else:
        assert pool.zygote is old and pool_module._alive(old_host)


@pytest.mark.skipif(STRONGEST == sandbox.PROCESS_LEVEL, reason="isolation is 'process': no namespace here")
def test_a_worker_cannot_read_its_zygotes_memory_or_environment(tree):
    """The zygote is not dumpable: the worker, the same user in the same namespace, cannot open its
    /proc files (nor ptrace it), while its own are readable."""
    strongest = sandbox.Pool(tree, STRONGEST, sandbox.Limits())
    try:
        student = RemoteStudent(strongest, timeout=30)
        assert student.call("os.getppid") == 1  # its parent is the zygote, the namespace's first process
        assert student.call("layers.probe.read_parent", "mem") == "PermissionError"
        assert student.call("layers.probe.read_parent", "environ") == "PermissionError"
        assert student.call("os.access", "/proc/self/environ", os.R_OK) is True
        student.close()
    finally:
        strongest.close()


def test_a_killed_forked_worker_takes_every_process_it_started(pool):
    """A worker's children, even ones that left its session, die with it; the zygote lives on."""
    student = RemoteStudent(pool, timeout=30)
    started = student.call("subprocess.Popen", ["sleep", "120"], start_new_session=True)
    assert started is not None
    assert len(pool_module._descendants(pool.zygote.host_pid)) == 2  # the worker and its sleep
    student.close()
    assert pool_module._descendants(pool.zygote.host_pid) == []
    assert pool_module._alive(pool.zygote.host_pid)


def test_pool_refuses_a_bad_level_or_fork_flag(tree):
    """Pool names the argument and what it got."""
    with pytest.raises(ValueError, match="Pool: level must be one of"):
        sandbox.Pool(tree, "container", sandbox.Limits())
    with pytest.raises(TypeError, match="Pool: fork must be True or False, got str 'yes'"):
        sandbox.Pool(tree, sandbox.PROCESS_LEVEL, sandbox.Limits(), fork="yes")


def test_a_pool_without_fork_starts_a_process_per_worker(tree):
    """fork=False keeps the old way: a WorkerProcess each, one started ahead, no zygote."""
    plain = sandbox.Pool(tree, sandbox.PROCESS_LEVEL, sandbox.Limits(), fork=False)
    try:
        student = RemoteStudent(plain, timeout=30)
        assert student.call("layers.twice", 5) == 10
        assert isinstance(student.worker, sandbox.WorkerProcess) and plain.zygote is None
        assert isinstance(plain.spare, sandbox.WorkerProcess)
        student.close()
    finally:
        plain.close()
