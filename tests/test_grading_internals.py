"""Unit tests of the grader's parts: the comparison helper, the channel codec, the worker and its
sandbox, the trusted side's student handle."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from grading_support import ROOT

from grading import manifest, sandbox
from grading.channel import HEADER, MAX_DEPTH, Channel, ChannelError, Handle, decode, encode
from grading.release import strip_python
from data.files import project_root
from grading.grade import load_reference
from grading.student import (
    RemoteModel,
    RemoteStudent,
    SubmissionNotTried,
    SubmissionProtocolError,
    SubmissionCrashed,
    SubmissionRaised,
    SubmissionTimeout,
    _mirror,
)

pytestmark = pytest.mark.grading


def _graded_module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / manifest.GRADED_TESTS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _graded_module("grading_checks")


class AlwaysEqual:
    def __eq__(self, other):
        return True


def test_assert_matches_reports_sizes_never_the_expected_values():
    """A mismatch names what, how many, the largest error and its index, but not the expected numbers."""
    expected = np.array([[1.2345678, 2.0], [3.0, 4.0]])
    got = expected.copy()
    got[1, 0] += 0.5
    with pytest.raises(AssertionError) as info:
        checks.assert_matches("layer out", got, expected)
    message = str(info.value)
    assert "layer out: 1 of 4 values are off; largest absolute error 0.5" in message and "(1, 0)" in message
    assert "1.23" not in message and "3.5" not in message
    checks.assert_matches("layer out", expected + 1e-12, expected)


@pytest.mark.parametrize("got, words", [
    (AlwaysEqual(), "expected an array of numbers, got AlwaysEqual"),
    (np.zeros((2, 3)), r"shape \(2, 3\), expected \(3, 2\)"),
    (np.full((3, 2), np.nan), "6 of 6 values are NaN or infinite"),
])
def test_as_float64_and_shapes_stop_tricks_and_mistakes(got, words):
    """Objects that are not numbers, wrong shapes and NaNs fail with a plain message."""
    with pytest.raises(AssertionError, match=words):
        checks.assert_matches("x", got, np.zeros((3, 2)))
    with pytest.raises(AssertionError, match="expected an array of numbers"):
        checks.as_float64("x", {"a": 1})


def test_strip_python_refuses_kinds_a_file_may_not_hold():
    """A hidden-test region in library code is an error naming the line."""
    text = "x = 1\n# BEGIN HIDDEN TESTS\ny = 2\n# END HIDDEN TESTS\n"
    with pytest.raises(ValueError, match="m.py:2: HIDDEN TESTS regions are not allowed"):
        strip_python(text, "m.py", allowed=("SOLUTION",))
    new, regions, names = strip_python(text, "t.py", allowed=("HIDDEN TESTS",))
    assert new == "x = 1\n" and names == [] and len(regions) == 1


def test_autograder_zip_rejects_bad_targets(tmp_path):
    """autograder_zip wants a .zip in an existing folder, and names the problem."""
    from grading.autograder import autograder_zip

    with pytest.raises(ValueError, match="must end in .zip"):
        autograder_zip(tmp_path / "out.tar")
    with pytest.raises(ValueError, match="does not exist"):
        autograder_zip(tmp_path / "missing" / "out.zip")
    assert list(tmp_path.iterdir()) == []


def test_channel_round_trips_plain_data_exactly():
    """Every plain type comes back equal, arrays with their dtype, shape and bytes."""
    value = {"none": None, "flags": (True, False), "int": -(2**63), "float": 1.5e-300, "text": "d\u00e9j\u00e0",
             "raw": b"\x00\xff", "list": [np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(2.5)],
             "empty": np.zeros((0, 4)), "c": np.array([1 + 2j]), "dtype": np.dtype(np.float32),
             "handle": Handle("r", 7), "bools": np.array([True, False])}
    back = decode(encode(value))
    assert back.keys() == value.keys() and back["text"] == value["text"] and back["int"] == -(2**63)
    assert back["dtype"] == np.float32 and back["handle"] == Handle("r", 7) and back["flags"] == (True, False)
    for got, want in zip(back["list"], value["list"]):
        assert got.dtype == np.asarray(want).dtype and np.array_equal(got, want)
    assert back["empty"].shape == (0, 4) and back["c"].dtype == np.complex128


@pytest.mark.parametrize("value, words", [
    (np.array([object()]), "do not travel"),
    (object(), "not plain data"),
    ({1: 2}, "not plain data"),
    (2**64, "64-bit range"),
])
def test_channel_refuses_what_is_not_plain_data(value, words):
    """Object arrays, arbitrary objects, non-str keys and huge ints are refused when no handle maker is given."""
    with pytest.raises(ChannelError, match=words):
        encode(value)


def test_channel_keeps_other_objects_behind_handles():
    """With to_handle, a non-plain object (an ndarray subclass included) travels as a handle."""
    class Sub(np.ndarray):
        pass

    kept = []

    def to_handle(obj):
        kept.append(obj)
        return Handle("r", len(kept))

    back = decode(encode((object(), np.zeros(3).view(Sub), 1), to_handle))
    assert back == (Handle("r", 1), Handle("r", 2), 1) and isinstance(kept[1], Sub)


@pytest.mark.parametrize("data, words", [
    (b"a\x03<f8\x01" + struct.pack("<Q", 10**12), "bytes are left"),
    (b"l" + struct.pack("<I", 10**9), "exceeds"),
    (b"s" + struct.pack("<I", 5) + b"ab", "early"),
    (b"a\x03|O8\x00", "do not travel"),
    (b"N" + b"N", "left over"),
    (b"Q", "unknown tag"),
    (b"t\x01\x00\x00\x00" * (MAX_DEPTH + 2) + b"N", "nesting deeper"),
    (b"d\x01\x00\x00\x00i" + b"\x00" * 8 + b"N", "not a str"),
])
def test_channel_decoder_checks_sizes_before_allocating(data, words):
    """Counts, sizes, dtypes and depth are checked against what is there, before anything is allocated."""
    with pytest.raises(ChannelError, match=words):
        decode(data)


def test_channel_refuses_an_oversized_frame_before_reading_it_and_reads_big_frames_in_linear_time():
    """A header over the cap is refused at once; a 64 MiB frame decodes in well under a second."""
    left, right = socket.socketpair()
    try:
        reader = Channel(right, max_frame_bytes=1024)
        left.sendall(HEADER.pack(2**62))
        with pytest.raises(ChannelError, match="over the cap"):
            reader.recv(timeout=5)
        big = np.ones(8 * 1024 * 1024)  # 64 MiB
        reader = Channel(right, max_frame_bytes=128 * 1024 * 1024)
        started = time.monotonic()
        writer = Channel(left)
        import threading
        thread = threading.Thread(target=writer.send, args=(big,))
        thread.start()
        back = reader.recv(timeout=30)
        thread.join()
        assert np.array_equal(back, big)
        # Linear: one pass over 64 MiB; a quadratic reader (appending chunks) takes minutes.
        assert time.monotonic() - started < 10
    finally:
        left.close()
        right.close()


def test_channel_recv_times_out_and_sees_a_closed_peer():
    """recv raises TimeoutError when nothing comes in time and EOFError when the other side closes."""
    left, right = socket.socketpair()
    reader = Channel(right)
    with pytest.raises(TimeoutError):
        reader.recv(timeout=0.2)
    left.sendall(HEADER.pack(10) + b"abc")
    left.close()
    with pytest.raises(EOFError):
        reader.recv(timeout=5)
    right.close()


def test_mirror_copies_in_place_changes_back():
    """Arrays changed in the worker are copied into the caller's arrays; dicts gain and lose keys."""
    x = np.zeros(3)
    param = {"mode": "train", "gone": 1}
    _mirror([x, param], [np.array([1.0, 2.0, 3.0]), {"mode": "train", "running_mean": np.ones(2)}])
    assert x.tolist() == [1.0, 2.0, 3.0] and set(param) == {"mode", "running_mean"}
    y = np.zeros(2)
    _mirror([y], [np.zeros(5)])  # a different shape cannot be an in-place change: left alone
    assert y.shape == (2,)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A small student tree: a layers package with working, raising, hanging and exiting functions."""
    root = tmp_path_factory.mktemp("tree")
    (root / "layers").mkdir()
    (root / "layers/__init__.py").write_text("from layers.good import double, Box\nfrom layers.bad import boom\n"
                                             "from layers.starred import *\n")
    (root / "layers/starred.py").write_text("__all__ = ['triple']\n\ndef triple(x):\n    return 3 * x\n\n"
                                            "def hidden(x):\n    return x\n")
    (root / "layers/good.py").write_text(
        "import numpy as np\n\ndef double(x):\n    x *= 2\n    return x, np.dtype(x.dtype)\n\n"
        "class Box:\n    def __init__(self):\n        self.params = {'w': np.ones(2)}\n"
        "    def loss(self, X, y=None):\n        return float(X.sum() + self.params['w'].sum())\n\n"
        "def hang():\n    while True:\n        pass\n\ndef leave():\n    import os\n    os._exit(3)\n\n"
        "def garble():\n    import os, sys\n    os.write(int(sys.argv[1]), b'\\xff' * 16)\n    return 1\n\n"
        "def daemon(path):\n    import os, time\n    if os.fork() == 0:\n        os.setsid()\n"
        "        pid = os.fork()\n        if pid == 0:\n            time.sleep(120)\n"
        "        open(path, 'w').write(str(pid))\n        os._exit(0)\n    time.sleep(0.5)\n    return 1\n")
    (root / "layers/bad.py").write_text("def boom(:\n")
    (root / "layers/dies.py").write_text("import os\nos._exit(4)\n\ndef f():\n    return 1\n")
    return root


@pytest.fixture
def pool(tree):
    pool = sandbox.Pool(tree, sandbox.PROCESS_LEVEL, sandbox.Limits(memory_mb=0))
    yield pool
    pool.close()
    sandbox.kill_all()


def test_remote_student_calls_keep_objects_behind_handles_and_mirror_arguments(pool):
    """Results come back as data, non-plain parts as handles usable in later calls; in-place changes show."""
    student = RemoteStudent(pool, timeout=30)
    x = np.arange(3.0)
    (out, dtype), args, _ = student.call_with_args("layers.double", x)
    assert out.tolist() == [0.0, 2.0, 4.0] and dtype == np.float64 and args[0].tolist() == [0.0, 2.0, 4.0]
    assert x.tolist() == [0.0, 1.0, 2.0]  # call_with_args reports changes; function() copies them back
    # `from layers.starred import *` exports the names of starred.py's __all__, read without running it
    assert student.call("layers.triple", 2.0) == 6.0
    with pytest.raises(SubmissionRaised, match="has no attribute 'hidden'"):
        student.call("layers.hidden", 2.0)
    doubled = student.function("layers.double")
    doubled(x)
    assert x.tolist() == [0.0, 2.0, 4.0]
    model = student.model("layers.Box")
    assert isinstance(model, RemoteModel) and model.loss(np.ones(2)) == 4.0
    model.params["w"] = np.zeros(2)
    assert model.loss(np.ones(2)) == 2.0
    student.close()


def test_a_module_whose_import_ended_a_worker_is_refused_later_without_a_fresh_worker(pool):
    """The first import of layers/dies.py ends its worker; a later test that needs it fails at once as
    not tried again, and its worker, which refused the import, stays alive for that test's other calls."""
    broken = {}
    first = RemoteStudent(pool, timeout=30, broken_imports=broken)
    with pytest.raises(SubmissionCrashed, match="while importing layers.dies"):
        first.call("layers.dies.f")
    first.close()
    assert set(broken) == {"layers.dies"}
    later = RemoteStudent(pool, timeout=30, broken_imports=broken)
    assert later.call("layers.double", np.ones(1))[0].tolist() == [2.0]
    started = pool.started
    with pytest.raises(SubmissionNotTried, match="needs layers.dies, which could not be imported in an earlier test"):
        later.call("layers.dies.f")
    assert later.call("layers.double", np.ones(1))[0].tolist() == [2.0]
    assert pool.started == started  # the same worker answered: no fresh one was started for the refusal
    later.close()


def test_remote_student_turns_failures_into_submission_errors(pool):
    """A syntax error names file and line (the worker's LazyPackage imports one submodule at a time, so
    layers.double still works beside the broken layers/bad.py); a hang is a timeout; an exit is a crash;
    bytes forged on the channel are a protocol error; each kills only that worker."""
    student = RemoteStudent(pool, timeout=30)
    with pytest.raises(SubmissionRaised, match=r"SyntaxError at layers/bad.py:1") as info:
        student.call("layers.boom")
    assert info.value.is_import_error
    assert student.call("layers.double", np.ones(1))[0].tolist() == [2.0]  # a fresh worker for the next call
    with pytest.raises(SubmissionCrashed, match="ended during the call .exit code 3."):
        student.call("layers.good.leave")
    with pytest.raises(SubmissionProtocolError, match="invalid answer .a frame of .* bytes is over the cap"):
        student.call("layers.good.garble")
    assert student.call("layers.double", np.ones(1))[0].tolist() == [2.0]
    student.close()
    quick = RemoteStudent(pool, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(SubmissionTimeout, match="limit of 1 s"):
        quick.call("layers.good.hang")
    assert time.monotonic() - started < 5
    quick.close()


def test_a_killed_worker_takes_its_orphans_but_never_the_callers_older_children(pool, tmp_path):
    """At the process level the grader adopts a worker's orphans and kills them with the worker; a
    child this process started before the worker (a multiprocessing resource tracker, say) lives on."""
    older = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        student = RemoteStudent(pool, timeout=30)
        assert student.call("layers.good.daemon", str(tmp_path / "orphan")) == 1
        orphan = int((tmp_path / "orphan").read_text())
        student.close()
        sandbox.kill_all()
        assert not pathlib.Path(f"/proc/{orphan}").exists(), "the worker's orphan outlived it"
        assert older.poll() is None, "the grader killed a child it did not start"
    finally:
        older.kill()
        older.wait()


def test_workers_start_at_the_detected_isolation_level_and_leave_nothing_behind(tree):
    """The strongest level starts here and answers; its scratch folder is gone once it is killed."""
    level = sandbox.isolation()
    assert level in sandbox.LEVELS
    worker = sandbox.start_worker(tree, level, sandbox.Limits())
    worker.wait_ready()
    scratch = worker.scratch
    worker.kill()
    assert not scratch.exists() and worker.process.returncode is not None


def test_reference_cases_load_into_memory_as_plain_arrays():
    """load_reference verifies the hashes and returns every case's arrays, none of them objects: each
    hand-written case, and each declared graded case split out of its family's file."""
    from grading.reference import CASES, DECLARED

    cases = load_reference(project_root() / manifest.REFERENCE_DIR)
    assert set(cases) == set(CASES) | {c.name for c in DECLARED}
    assert {"affine", "knn", "linear_svm", "leaky_relu_forward"} <= set(cases)
    assert set(cases["leaky_relu_forward"]) == {"x", "out", "dout", "dx"}
    assert all(isinstance(a, np.ndarray) and a.dtype != object for case in cases.values() for a in case.values())


def test_local_student_runs_the_graded_checks_in_process():
    """Outside the autograder the same checks call the library directly (check_layer_case, check_net)."""
    assert checks.check_layer_case(checks.LocalStudent(), "affine_forward", seed=0)
    assert checks.check_layer_case(checks.LocalStudent(), "softmax_loss", seed=1)
    rng = np.random.default_rng(0)
    report = checks.check_net(checks.LocalStudent(), "solver.TwoLayerNet", rng.standard_normal((3, 8)),
                              rng.integers(0, 4, 3), input_dim=8, hidden_dim=6, num_classes=4, dtype=np.float64, seed=0)
    assert report, report
    with pytest.raises(AssertionError, match="expected a pair .out, cache., got int"):
        checks._checked(lambda x: 3, "forward")(np.ones(2))


def test_isolation_is_described_for_every_level():
    """Each level has its one-sentence description for results.json, naming the level."""
    for level in sandbox.LEVELS:
        assert sandbox.describe(level).startswith(f"Isolation: {level.replace('userns', 'user namespace')}")


def test_startup_limit_follows_the_environment_and_refuses_nonsense(monkeypatch):
    """$CHAINRULE_GRADER_STARTUP_S overrides the 30 s a worker may take to start; a non-positive value is refused."""
    monkeypatch.delenv(sandbox.STARTUP_ENV, raising=False)
    assert sandbox.startup_seconds() == sandbox.STARTUP_S == 30.0
    monkeypatch.setenv(sandbox.STARTUP_ENV, "4")
    assert sandbox.startup_seconds() == 4.0
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(sandbox.STARTUP_ENV, bad)
        with pytest.raises(sandbox.SandboxError, match="CHAINRULE_GRADER_STARTUP_S must be a positive number"):
            sandbox.startup_seconds()


def test_grading_commands_pin_blas_to_one_thread_unless_told_otherwise():
    """python -m grading sets one BLAS thread before numpy loads (the grader and its worker take
    turns); a thread count the caller set is kept."""
    script = "import os, grading.__main__, numpy; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    unset = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                           cwd=project_root(), timeout=60)
    chosen = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**env, "OPENBLAS_NUM_THREADS": "2"}, cwd=project_root(), timeout=60)
    assert (unset.stdout.strip(), chosen.stdout.strip()) == ("1", "2"), (unset.stderr, chosen.stderr)
