"""The zygote that forks the grader's workers (grading.pool.Zygote, ForkedWorker and Pool).

A Pool forks each worker from one sandboxed process that imported numpy and scipy once. What a
worker started on its own guaranteed must hold for a forked one too: a fresh copy of the tree, a
fresh /tmp and random state, no module of an earlier worker, everything it started killed with it;
and a submission that attacks its zygote costs only its own tests. Real processes throughout, at
the process level and at the strongest level this machine starts.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

import pytest

from grading import pool as pool_module
from grading import sandbox
from grading.student import RemoteStudent, SubmissionCrashed

pytestmark = pytest.mark.grading


def _level(name: str) -> str:
    """A level by name, "strongest" being the one this machine starts (found when first asked)."""
    return sandbox.isolation() if name == "strongest" else name


def _namespaced(level: str) -> None:
    """Skip unless a worker of this namespace level starts here (as root, both do)."""
    why = sandbox._probe(level, sandbox.Limits())
    if why:
        pytest.skip(f"no {level} worker starts here: {why}")

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
    parent = os.getppid()
    os.kill(parent, signal.SIGKILL)
    return parent


def _named(token):
    with open("/proc/thread-self/comm", "w") as handle:
        handle.write(token)


def headless(token):
    """A child whose main thread exits while another thread of it lives on (it shows as a zombie)."""
    import ctypes, threading, time
    pid = os.fork()
    if pid == 0:
        thread = threading.Thread(target=lambda: (_named(token), time.sleep(120)))
        thread.start()
        time.sleep(0.2)
        ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: only the calling thread ends
    time.sleep(0.5)
    return pid


def hopping(token):
    """A child that forks and exits over and over, so its number keeps changing."""
    import time
    if os.fork() == 0:
        os.setsid()
        while True:
            _named(token)
            if os.fork() != 0:
                os._exit(0)
            time.sleep(0.02)  # long enough for a scan of /proc to see it, short enough to keep hopping
    time.sleep(0.3)
    return 1


def lock_tmp():
    """A folder in /tmp that its owner made unreadable, with a file in it."""
    import tempfile
    folder = os.path.join(tempfile.gettempdir(), "locked")
    os.makedirs(os.path.join(folder, "inner"))
    open(os.path.join(folder, "inner", "file"), "w").write("x")
    os.chmod(os.path.join(folder, "inner"), 0)
    os.chmod(folder, 0)
    return folder


def signal_parent(name):
    import signal
    os.kill(os.getppid(), getattr(signal, name))
    return os.getppid()


def leave(code):
    os._exit(code)


def writable(paths):
    """Which of paths this worker can create a file in."""
    found = []
    for path in paths:
        try:
            with open(os.path.join(path, "probe-write"), "w") as handle:
                handle.write("x")
            found.append(path)
        except OSError:
            pass
    return found


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


@pytest.fixture(params=[sandbox.PROCESS_LEVEL, "strongest"])
def pool(request, tree):
    level = _level(request.param)
    if request.param == "strongest" and level == sandbox.PROCESS_LEVEL:
        pytest.skip("the strongest level here is 'process', already tested")
    pool = sandbox.Pool(tree, level, sandbox.Limits())
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
    first_copy = first.worker.scratch
    first.close()
    second = RemoteStudent(pool, timeout=30)
    note, temp, attribute, redrawn, loaded, second_cwd = second.call("layers.probe.look")
    second_copy = second.worker.scratch
    second.close()
    assert (note, temp, attribute, loaded) == (False, False, False, [])
    assert redrawn != drawn, "numpy's global generator was not reseeded after the fork"
    assert second_copy != first_copy and pool.zygote.forks == 2
    assert not first_copy.exists() and not second_copy.exists(), "a worker's copy was left behind"
    if pool.level == sandbox.PROCESS_LEVEL:
        assert (cwd, second_cwd) == (str(first_copy), str(second_copy))
    else:  # each in its own mount namespace, with its own copy at /work as a worker started alone
        assert cwd == second_cwd == "/work"


def test_a_submission_that_kills_its_zygote_costs_only_its_own_tests(tree):
    """At the process level the worker can kill its zygote (its parent, the same user): the next
    test gets a new zygote and a working worker, and nothing of the old one is left running."""
    plain = sandbox.Pool(tree, sandbox.PROCESS_LEVEL, sandbox.Limits())
    try:
        attacker = RemoteStudent(plain, timeout=30)
        old = plain.zygote
        old.wait_ready()
        assert attacker.call("layers.probe.kill_parent") == old.pid
        attacker.close()
        after = RemoteStudent(plain, timeout=30)
        assert after.call("layers.twice", 4) == 8
        after.close()
        assert plain.zygote is not old and old.dead and not pool_module._alive(old.host_pid)
    finally:
        plain.close()


@pytest.mark.parametrize("level", [sandbox.ROOT_LEVEL, sandbox.USERNS_LEVEL])
def test_a_namespaced_worker_sees_neither_its_zygote_nor_an_earlier_worker(tree, level):
    """In its own PID namespace the worker is process 1 and has no parent it can address: its /proc
    lists its own processes only, never the zygote (which keeps its privileges) or another worker;
    it can write its /work and /tmp and nothing else of the root it shares with the zygote."""
    _namespaced(level)
    pool = sandbox.Pool(tree, level, sandbox.Limits())
    try:
        for _ in range(2):
            student = RemoteStudent(pool, timeout=30)
            assert student.call("os.getpid") == 1 and student.call("os.getppid") == 0
            assert student.call("os.listdir", "/proc/self/task") == ["1"]
            assert sorted(p for p in student.call("os.listdir", "/proc") if p.isdigit()) == ["1"]
            assert student.call("layers.probe.writable", ["/", "/boot", "/dev", "/site", "/work", "/tmp"]) == [
                "/work", "/tmp"]
            student.close()
        leaving = RemoteStudent(pool, timeout=30)  # its exit code comes back through two processes
        with pytest.raises(SubmissionCrashed, match=r"ended during the call \(exit code 3\)"):
            leaving.call("layers.probe.leave", 3)
        leaving.close()
    finally:
        pool.close()


def test_a_killed_forked_worker_takes_every_process_it_started(pool):
    """A worker's children, even ones that left its session, die with it; the zygote lives on."""
    student = RemoteStudent(pool, timeout=30)
    started = student.call("subprocess.Popen", ["sleep", "120"], start_new_session=True)
    assert started is not None
    below = pool_module._descendants(pool.zygote.host_pid)
    sleeping = [pid for pid in below if pathlib.Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"]
    assert len(sleeping) == 1, below
    student.close()
    assert pool_module._descendants(pool.zygote.host_pid) == []
    # Read independently of the kill's own walk: the sleep's number is gone, or a zombie, or reused.
    stat = pathlib.Path(f"/proc/{sleeping[0]}/stat")
    state = stat.read_text().rsplit(")", 1)[1].split()[0] if stat.exists() else "gone"
    assert state in ("gone", "Z", "X") or "sleep" not in stat.read_text(), state
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


def _running(token: str) -> list[str]:
    """Threads anywhere on this machine whose name is token (an attack's survivors)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/comm") as handle:
                    if handle.read().strip() == token:
                        with open(f"/proc/{pid}/task/{task}/stat") as stat:
                            if stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                                found.append(f"{pid}/{task}")
            except OSError:
                pass
    return found


def _gone(token: str, seconds: float = 3.0) -> list[str]:
    """token's survivors once the kill has had its moment (a SIGKILL is not instant)."""
    deadline = time.monotonic() + seconds
    while _running(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _running(token)


@pytest.mark.parametrize("attack", ["headless", "hopping"])
def test_nothing_a_worker_started_outlives_it(pool, attack):
    """A process whose main thread exited while another runs, and a chain of processes that fork and
    exit to keep changing number, both die with the worker (the old design killed a whole namespace)."""
    token = "zy" + uuid.uuid4().hex[:12]
    student = RemoteStudent(pool, timeout=30)
    student.call(f"layers.probe.{attack}", token)
    assert any(_running(token) for _ in range(20)), "the attack did not start"
    student.close()
    assert _gone(token) == [], f"{attack}: a process the worker started outlived it"
    after = RemoteStudent(pool, timeout=30)
    assert after.call("layers.twice", 3) == 6
    after.close()


def test_a_zygote_that_its_worker_can_signal_ignores_sigint_and_is_replaced_when_stopped(tree):
    """At the process level the zygote is the worker's parent and the same user: SIGINT, which Python
    would turn into KeyboardInterrupt, leaves it serving, and one stopped by SIGSTOP is replaced at
    the next test without a wait (the namespace levels hide it from the worker altogether)."""
    plain = sandbox.Pool(tree, sandbox.PROCESS_LEVEL, sandbox.Limits())
    try:
        old = plain.zygote
        student = RemoteStudent(plain, timeout=30)
        assert student.call("layers.probe.signal_parent", "SIGINT") == old.pid
        student.close()
        again = RemoteStudent(plain, timeout=30)
        assert again.call("layers.twice", 2) == 4 and plain.zygote is old
        again.call("layers.probe.signal_parent", "SIGSTOP")
        again.close()
        started = time.monotonic()
        last = RemoteStudent(plain, timeout=30)
        assert last.call("layers.twice", 1) == 2
        last.close()
        assert plain.zygote is not old and old.dead
        assert time.monotonic() - started < pool_module.FORK_ANSWER_S, "the stopped zygote was waited for"
    finally:
        plain.close()


def test_a_locked_folder_in_tmp_does_not_reach_the_next_worker(pool):
    """A folder its owner made unreadable (mode 0) in the worker's temporary folder is gone for the next one."""
    student = RemoteStudent(pool, timeout=30)
    folder = student.call("layers.probe.lock_tmp")
    student.close()
    after = RemoteStudent(pool, timeout=30)
    assert after.call("os.path.exists", folder) is False
    after.close()


def test_a_workers_quick_read_of_all_agrees_with_parsing_every_library_file():
    """worker._literal_all reads a star-imported module's ``__all__`` from its text; wherever it
    answers, the answer is the full parse's, for every file of the library and for the traps."""
    script = r'''
import ast, json, pathlib, sys
sys.argv = ["worker.py", "0"]
sys.path.insert(0, "grading")
import worker

def parsed(source):
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "__all__" and isinstance(node.value, (ast.List, ast.Tuple))):
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []

answered, disagree = 0, []
for path in sorted(pathlib.Path(".").glob("*/*.py")):
    source = path.read_bytes()
    quick = worker._literal_all(source)
    if quick is not None:
        answered += 1
        if quick != parsed(source):
            disagree.append(str(path))
traps = {
    "in a docstring": b'"""\n__all__ = ["fake"]\n"""\n__all__ = ["real"]\n',
    "a bracket in a name": b'__all__ = ["a]b"]\n',
    "not strings": b'__all__ = [name for name in ()]\n',
    "a syntax error after it": b'__all__ = ["f"]\ndef f(:\n',
}
print(json.dumps({"answered": answered, "disagree": disagree,
                  "traps": {k: worker._literal_all(v) for k, v in traps.items()}}))
'''
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=pathlib.Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["disagree"] == [] and found["answered"] >= 20, found
    assert found["traps"] == {"in a docstring": None, "a bracket in a name": None, "not strings": None,
                              "a syntax error after it": ["f"]}


def test_a_zygote_refuses_a_malformed_request_and_goes_on_serving(tree):
    """A request that is not the grader's JSON, or carries the wrong descriptors, is answered with
    an error (the descriptors closed), and the next well-formed fork still works."""
    import socket

    zygote = sandbox.start_zygote(sandbox.PROCESS_LEVEL, sandbox.Limits())
    try:
        zygote.wait_ready()
        read, write = os.pipe()
        try:
            socket.send_fds(zygote.control, [b"{not json"], [read, write])
            assert zygote._receive(10, "answer").startswith(b"error")
            socket.send_fds(zygote.control, [json.dumps({"work": "/", "env": {}, "namespaces": False,
                                                         "uid": None}).encode()], [read])
            assert zygote._receive(10, "answer") == b"error a fork request carries 2 descriptors, got 1"
        finally:
            os.close(read)
            os.close(write)
        worker = zygote.fork(tree)
        worker.wait_ready()
        worker.kill()
    finally:
        zygote.kill()
    assert not zygote.scratch.exists()
