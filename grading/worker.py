"""The worker: runs the submission's code, and only that, on the grader's request.

    python -I -S worker.py FD [SITE_PACKAGES ...]
    python -I -S worker.py --zygote FD [SITE_PACKAGES ...]

Runs in the sandbox (grading.sandbox) with its channel on descriptor FD and nothing of the
grader in reach. Everything here is as untrusted as the student's code it runs: the grader
believes none of it and only decodes the plain data that comes back (grading.channel).

Requests (dicts) and answers:
    {"op": "init", "path": [...], "work": dir, "packages": [...]}      -> {"ok": True}
    {"op": "call", "target": "layers.affine_forward" | handle | [handle, "method"],
     "args": [...], "kwargs": {...}, "return_args": bool}               -> {"ok": True, "value": ...[, "args", "kwargs"]}
    {"op": "getattr", "obj": handle, "name": str}                       -> {"ok": True, "value": ...}
    {"op": "setattr", "obj": handle, "name": str, "value": ...}         -> {"ok": True}
    {"op": "standins", "names": [...]}                                  -> {"ok": True}
    {"op": "refuse", "modules": [...]}                                  -> {"ok": True}
    {"op": "release", "handles": [...]}                                 -> {"ok": True}
Failures answer {"ok": False, "error": {"type", "message", "where"}}. A stand-in layer asks the
grader {"op": "callback", "name", "args", "kwargs"} and waits for its answer. Importing a student
module is announced ({"op": "importing"} and {"op": "imported"}, "module"); one the grader
refused (its import hung, ended a worker or broke the channel before) is not run: the worker says
{"op": "refused", "module"} and the import raises ImportError, so the worker stays sound.

Student packages are imported lazily, one module at a time (``LazyPackage``): a syntax error in
layers/conv.py costs the calls that need conv, not every call that imports ``layers``.

With --zygote, FD is a control socket (SOCK_SEQPACKET) instead: the process imports numpy and
scipy.special once, answers b"ready", and then forks one worker per request, so a worker costs a
fork instead of an interpreter start and those imports (about 0.6 s of CPU). A request is a JSON
object {"work": dir, "env": {...}, "namespaces": bool, "uid": int or null} sent with two
descriptors, the new worker's channel and its output pipe; the zygote forks and answers
b"pid N", and when that child ends, b"exit N CODE". The child takes stdout and stderr from the
pipe and starts a session of its own. With "namespaces" (the root and userns levels, where the
zygote keeps the namespace's root and its capabilities, and runs nothing but this file) the child
unshares fresh PID, mount, IPC, UTS and network namespaces and forks the worker as their first
process: it mounts its own copy of the tree ("work") at /work, a private /tmp and its own /proc,
drops every capability, sets no_new_privs, becomes "uid" (nobody at the root level), checks all
of that in /proc/self/status, and only then serves; the child in between waits and ends as the
worker ended. So each worker holds what a worker started on its own held, and killing it kills
its namespace. At the process level the child just serves. Every worker reseeds numpy's global
generator (a fork would copy the zygote's state); the zygote never imports student code.

Standalone on purpose: only the standard library, numpy and channel.py beside it.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import signal
import socket
import sys
import traceback
import types

ZYGOTE_FLAG = "--zygote"
_ARGS = sys.argv[2:] if sys.argv[1:2] == [ZYGOTE_FLAG] else sys.argv[1:]
# -I -S leave out the script's folder and site-packages: the grader names them on the command line.
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
sys.path.extend(_ARGS[1:])
from channel import Channel, ChannelError, Handle  # noqa: E402

MESSAGE_CHARS = 400


# A top-level ``__all__ = [...]`` or ``(...)``: read without parsing the whole file (a worker
# reads every star-imported module of layers and solver at its start; parsing them all took 70 ms).
_ALL_LINE = re.compile(rb"^__all__[ \t]*=[ \t]*([\[(])", re.MULTILINE)


def _literal_all(source: bytes) -> list | None:
    """The names of source's first top-level ``__all__`` list or tuple of strings, found by its
    text alone; None when that is not plain enough to be sure (the caller then parses the file)."""
    if b"__all__" not in source:
        return []
    match = _ALL_LINE.search(source)
    if match is None:
        return None
    closing = b"]" if match.group(1) == b"[" else b")"
    end = source.find(closing, match.end())
    if end < 0:
        return None
    try:
        value = ast.literal_eval(source[match.start(1):end + 1].decode("utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        return None
    if source[:match.start()].count(b'"""') % 2 or source[:match.start()].count(b"'''") % 2:
        return None  # inside a triple-quoted string, perhaps: parse to be sure
    return list(value)


def _declared_all(folder: str, submodule: str) -> list | None:
    """The names in a submodule's literal ``__all__``, read from its source without running it
    (``from layers.activations import *`` in a package's __init__); [] when it has none, None
    when its source cannot be read (importing it then says why, as file:line). A plain literal
    is read from the text alone, so a module with a syntax error below it still names its
    exports (and importing one of them says why)."""
    path = os.path.join(folder, *submodule.split(".")) + ".py"
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError:
        return None
    found = _literal_all(source)
    if found is not None:
        return found
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "__all__" and isinstance(node.value, (ast.List, ast.Tuple))):
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


class LazyPackage(types.ModuleType):
    """A student package whose names import their own submodule on first use."""

    def __init__(self, name: str, folder: str, standins: dict):
        super().__init__(name)
        self.__path__ = [folder]
        self.__file__ = os.path.join(folder, "__init__.py")
        self.__package__ = name
        self._chainrule_where = {}
        self._chainrule_unread = []  # star-imported submodules whose __all__ could not be read
        self._chainrule_standins = standins
        try:
            with open(self.__file__, "rb") as handle:
                tree = ast.parse(handle.read())
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if node.module == name:  # from layers import optim: a submodule
                        self._chainrule_where[alias.asname or alias.name] = (f"{name}.{alias.name}", None)
                    elif node.module.startswith(name + ".") and alias.name == "*":
                        exported = _declared_all(folder, node.module[len(name) + 1:])
                        if exported is None:
                            self._chainrule_unread.append(node.module)
                        for item in exported or ():
                            self._chainrule_where[item] = (node.module, item)
                    elif node.module.startswith(name + "."):
                        self._chainrule_where[alias.asname or alias.name] = (node.module, alias.name)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._chainrule_standins:
            return self._chainrule_standins[attr]
        module_name, inner = self._chainrule_where.get(attr, (f"{self.__name__}.{attr}", None))
        folder = self.__path__[0]
        is_submodule = os.path.isfile(os.path.join(folder, attr + ".py")) or os.path.isfile(
            os.path.join(folder, attr, "__init__.py"))
        if attr not in self._chainrule_where and not is_submodule:
            for unread in self._chainrule_unread:  # the name may be there: importing it raises its error
                module = importlib.import_module(unread)
                if hasattr(module, attr):
                    return getattr(module, attr)
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        module = importlib.import_module(module_name)
        return module if inner is None else getattr(module, inner)


class ImportNotices:
    """A meta path entry that tells the grader when a student module starts and ends importing.

    It wraps the loader the other finders found; the grader uses the notices to name a module
    whose import hangs or kills the worker, and fails later tests that need it at once instead
    of waiting for it again. Such a module, once the grader has named it in ``refused``, is not
    run again: its import raises ImportError here, so those tests need no fresh worker.
    """

    def __init__(self, channel, packages, refused):
        self.channel, self.packages, self.refused = channel, packages, refused

    def find_spec(self, name, path=None, target=None):
        """The spec the other finders give, its loader wrapped, for modules of the student packages."""
        if name.split(".")[0] not in self.packages:
            return None
        if name in self.refused:
            self.channel.send({"op": "refused", "module": name})
            raise ImportError(f"{name} is not imported again: its import failed in an earlier test", name=name)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = NoticeLoader(spec.loader, self.channel)
                return spec
        return None


class NoticeLoader:
    """A loader that sends {"op": "importing"} before and {"op": "imported"} after the module runs."""

    def __init__(self, inner, channel):
        self.inner, self.channel = inner, channel

    def create_module(self, spec):
        """What the wrapped loader creates."""
        return self.inner.create_module(spec)

    def exec_module(self, module):
        """Run the module between the two notices."""
        self.channel.send({"op": "importing", "module": module.__name__})
        try:
            self.inner.exec_module(module)
        finally:
            self.channel.send({"op": "imported", "module": module.__name__})

    def __getattr__(self, name):
        return getattr(self.inner, name)


class Worker:
    """The object table and the request loop."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.objects: dict[int, object] = {}
        self.next_number = 1
        self.work = os.getcwd()
        self.standins: dict = {}
        self.packages: tuple = ()
        self.refused: set = set()  # modules the grader will not have imported again

    # -- handles
    def to_handle(self, obj) -> Handle:
        number = self.next_number
        self.next_number += 1
        self.objects[number] = obj
        return Handle("r", number)

    def resolve(self, value):
        if isinstance(value, Handle):
            if value.side == "R":
                return value  # a grader-side object: opaque here, sent back as it came
            if value.number not in self.objects:
                raise KeyError(f"no object #{value.number}")
            return self.objects[value.number]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    # -- errors
    def relative(self, path) -> str:
        path = str(path or "")
        prefix = self.work.rstrip("/") + "/"
        return path[len(prefix):] if path.startswith(prefix) else os.path.basename(path)

    def error(self, exc: BaseException) -> dict:
        try:
            message = str(exc)
        except BaseException:  # a hostile __str__
            message = "<the exception's message could not be shown>"
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f"{self.relative(exc.filename)}:{exc.lineno}"
            message = exc.msg or message
        else:
            prefix = self.work.rstrip("/") + "/"
            for frame in reversed(traceback.extract_tb(exc.__traceback__)):
                if str(frame.filename).startswith(prefix):
                    where = f"{self.relative(frame.filename)}:{frame.lineno} in {frame.name}"
                    break
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + " ...[truncated]"
        return {"ok": False, "error": {"type": type(exc).__name__, "message": message, "where": where}}

    # -- requests
    def target(self, target):
        if isinstance(target, str):
            parts = target.split(".")
            obj = importlib.import_module(parts[0])
            for part in parts[1:]:
                obj = getattr(obj, part)
            return obj
        if isinstance(target, list) and len(target) == 2 and isinstance(target[1], str):
            return getattr(self.resolve(target[0]), target[1])
        return self.resolve(target)

    def install_standins(self, names):
        for name in names:
            self.standins[name] = self.make_standin(name)
        for module_name, module in list(sys.modules.items()):
            if module is not None and module_name.split(".")[0] in self.packages:
                for name, standin in self.standins.items():
                    if name in getattr(module, "__dict__", {}):
                        setattr(module, name, standin)

    def make_standin(self, name):
        def standin(*args, **kwargs):
            self.channel.send({"op": "callback", "name": name, "args": list(args), "kwargs": kwargs},
                              self.to_handle)  # raises EOFError if the grader is gone
            answer = self.channel.recv()
            if not isinstance(answer, dict) or not answer.get("ok"):
                message = answer.get("message", "refused") if isinstance(answer, dict) else "refused"
                raise RuntimeError(f"the grader's stand-in {name} refused the call: {message}")
            return answer.get("value")

        standin.__name__ = name
        return standin

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "call":
            fn = self.target(request["target"])
            args = list(self.resolve(request.get("args", [])))
            kwargs = self.resolve(request.get("kwargs", {}))
            if self.standins:
                self.install_standins([])
            value = fn(*args, **kwargs)
            answer = {"ok": True, "value": value}
            if request.get("return_args"):
                answer["args"], answer["kwargs"] = args, kwargs
            return answer
        if op == "getattr":
            return {"ok": True, "value": getattr(self.resolve(request["obj"]), request["name"])}
        if op == "setattr":
            setattr(self.resolve(request["obj"]), request["name"], self.resolve(request["value"]))
            return {"ok": True}
        if op == "standins":
            self.install_standins(request["names"])
            return {"ok": True}
        if op == "refuse":
            self.refused.update(str(name) for name in request["modules"])
            return {"ok": True}
        if op == "release":
            for h in request.get("handles", []):
                if isinstance(h, Handle):
                    self.objects.pop(h.number, None)
            return {"ok": True}
        raise ValueError(f"unknown request {op!r}")

    def init(self, request: dict) -> None:
        os.chdir(request["work"])
        self.work = os.getcwd()
        boot = os.path.dirname(os.path.abspath(__file__))
        stdlib = [p for p in sys.path if p and os.path.abspath(p) != boot]
        sys.path[:] = [self.work, *stdlib]
        self.packages = tuple(request.get("packages", ()))
        for name in self.packages:
            folder = os.path.join(self.work, name)
            if os.path.isdir(folder):
                sys.modules[name] = LazyPackage(name, folder, self.standins)
        import numpy  # noqa: F401  (loaded before the first timed call)
        import scipy.special  # noqa: F401
        sys.meta_path.insert(0, ImportNotices(self.channel, self.packages, self.refused))

    def serve(self) -> None:
        while True:
            try:
                request = self.channel.recv()
            except (EOFError, ChannelError):
                return
            try:
                if not isinstance(request, dict):
                    raise ValueError("a request must be a dict")
                if request.get("op") == "init":
                    self.init(request)
                    answer = {"ok": True, "pid": os.getpid()}
                else:
                    answer = self.handle(request)
            except BaseException as exc:  # the submission may raise anything, SystemExit included
                answer = self.error(exc)
            try:
                self.channel.send(answer, self.to_handle)
            except EOFError:
                return
            except (ChannelError, RecursionError, ValueError) as exc:
                self.channel.send(self.error(ChannelError(f"the result could not be sent: {exc}")))


_LIBC: list = []


def _libc():
    """The C library, loaded once (a zygote's forks inherit it)."""
    if not _LIBC:
        import ctypes

        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def _prctl(option: int, value: int) -> None:
    """prctl(option, value); an OSError naming the option when it fails."""
    import ctypes

    if _libc().prctl(option, value, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl({option}, {value}): {os.strerror(error)}")


def _call(name: str, *args) -> None:
    """A libc call that returns 0 or -1 with errno; an OSError naming it when it fails."""
    import ctypes

    if getattr(_libc(), name)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}: {os.strerror(error)}")


# Linux constants (sched.h, sys/mount.h, linux/prctl.h, linux/capability.h).
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, \
    0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, \
    1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 4, 23, 24, 28
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
# SECBIT_NOROOT and the locks of it, of the uid-change fixup and of keep-caps; no ambient raise, locked.
SECUREBITS = 0x01 | 0x02 | 0x08 | 0x20 | 0x40 | 0x80
# What the zygote keeps to build a worker: CAP_SETGID, CAP_SETUID, CAP_SETPCAP and CAP_SYS_ADMIN.
ZYGOTE_CAPS = (6, 7, 8, 21)
_CAP_VERSION_3 = 0x20080522


def _capabilities(keep=()) -> None:
    """Keep only the capabilities in keep: in the bounding set, and as effective and permitted
    (none inheritable). Needs CAP_SETPCAP for the bounding set when anything is dropped there."""
    import ctypes

    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    libc = _libc()
    for cap in range(last + 1):
        if cap not in keep and libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1:  # still there
            _prctl(PR_CAPBSET_DROP, cap)
    mask = [0, 0]
    for cap in keep:
        mask[cap // 32] |= 1 << (cap % 32)
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(mask[0], mask[0], 0, mask[1], mask[1], 0)  # {effective, permitted, inheritable} x 2
    _call("capset", header, data)


def _confine(uid) -> None:
    """Drop to the worker: no_new_privs, locked securebits, every capability (bounding, ambient,
    effective, permitted, inheritable), and user and group uid with no supplementary groups (None
    keeps the namespace's uid 0, as at the userns level). Then read /proc/self/status back and
    refuse to go on unless all of it holds."""
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_SECUREBITS, SECUREBITS)
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _capabilities(())
    facts = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            facts[key] = value.split()
    held = [k for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if int(facts.get(k, ["1"])[0], 16)]
    ids = None if uid is None else [str(uid)] * 4
    if held or facts.get("NoNewPrivs") != ["1"] or (ids is not None and (
            facts.get("Uid") != ids or facts.get("Gid") != ids or facts.get("Groups") != [])):
        raise OSError(f"the worker kept privileges: {held} NoNewPrivs={facts.get('NoNewPrivs')} "
                      f"Uid={facts.get('Uid')} Gid={facts.get('Gid')} Groups={facts.get('Groups')}")


def _namespace_worker(request: dict) -> None:
    """In a fresh PID, mount, IPC, UTS and network namespace, as their first process: a session of
    its own; its own copy of the tree at /work, a private /tmp and the namespace's own /proc, and
    everything else read-only (the zygote's root file system is not its to change); its process
    limit; then every privilege dropped (_confine), and death with the process that waits for it.
    Killing this process kills all it started."""
    import resource

    os.setsid()  # not in the group of the process that waits for it: kill(0, ...) reaches only its own
    _call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    _call("mount", request["work"].encode(), b"/work", None, MS_BIND | MS_REC, None)
    _call("mount", b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777,size=64m")
    _call("mount", b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    _call("mount", None, b"/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, None)
    if request.get("nproc") is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (request["nproc"], request["nproc"]))
    _confine(request.get("uid"))
    _prctl(PR_SET_DUMPABLE, 1)  # a change of user cleared it; an exec'd worker would have it again
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the change of user, which clears it
    os.chdir("/work")


def _wait_for_worker(pid: int, channel_fd: int) -> None:
    """The child between the zygote and a namespaced worker: hold no privilege, wait for the worker,
    and end as it ended. Never returns."""
    code = 70
    try:
        os.close(channel_fd)
        _capabilities(())
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except BaseException:  # noqa: BLE001 - it must never return into the zygote's loop
        os.kill(pid, signal.SIGKILL)
    finally:
        _die_as(code)


_CONTROL: list = []  # the zygote's control socket, where _reap reports each worker's end
_FORKED: set = set()  # the workers this zygote forked (orphans it reaps go unreported)


def _reap(signum=None, frame=None) -> None:
    """Reap every ended child (so its CPU time is counted and no zombie stays), and tell the
    grader a worker's exit code (b"exit PID CODE", negative for a signal, as subprocess says)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid not in _FORKED:
            continue
        _FORKED.discard(pid)
        for control in _CONTROL:
            try:  # never blocks: a report the grader has no room for is dropped
                control.send(b"exit %d %d" % (pid, os.waitstatus_to_exitcode(status)), socket.MSG_DONTWAIT)
            except (OSError, ValueError):
                pass


def _parse_fork(message: bytes) -> dict:
    request = json.loads(message.decode("utf-8"))
    if not (isinstance(request, dict) and isinstance(request.get("work"), str)
            and isinstance(request.get("env", {}), dict) and isinstance(request.get("namespaces"), bool)
            and all(request.get(k) is None or type(request.get(k)) is int for k in ("uid", "nproc"))):
        raise ValueError("a fork request is {'work': str, 'env': dict, 'namespaces': bool, 'uid': int or None, "
                         "'nproc': int or None}")
    return request


def _die_as(code: int) -> None:
    """End this process the way the worker ended: by the same signal, or with the same code."""
    if code < 0:
        try:
            if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
                signal.signal(-code, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})
            os.kill(os.getpid(), -code)
        except (OSError, ValueError):
            pass
        os._exit(128 - code)  # a signal whose default is to be ignored: the shell's code for it
    os._exit(code if 0 <= code < 256 else 70)


def _become_worker(control, channel_fd: int, output_fd: int, request: dict) -> None:
    """The forked child: a worker of its own on channel_fd, printing to output_fd. Never returns.

    With "namespaces", this child unshares fresh namespaces and forks the worker as their first
    process, waits for it and ends as it ended (the zygote reports that as the worker's exit)."""
    code = 70
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        _CONTROL.clear()
        control.close()
        os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        if output_fd not in (1, 2):
            os.close(output_fd)
        if request["namespaces"]:
            _call("unshare", CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)
            pid = os.fork()
            if pid:
                _wait_for_worker(pid, channel_fd)
            _namespace_worker(request)
        else:
            _prctl(PR_SET_DUMPABLE, 1)  # an ordinary process again, as a freshly started worker is
        sys.argv[1:] = [str(channel_fd), *_ARGS[1:]]  # what a worker started on its own is given
        os.environ.update({str(k): str(v) for k, v in request.get("env", {}).items()})
        if "tempfile" in sys.modules:  # it caches the folder it found: look again, under the new TMPDIR
            sys.modules["tempfile"].tempdir = None
        import numpy

        numpy.random.seed()  # a fresh process seeds from the system; a fork would reuse the zygote's state
        code = 0
        Worker(Channel(socket.socket(fileno=channel_fd))).serve()
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the zygote's loop
        if code != 0:  # it did not become a worker: say why, for the grader's "did not start"
            try:
                os.write(2, f"the forked worker did not start: {type(exc).__name__}: {exc}\n".encode()[:400])
            except OSError:
                pass
        code = code or 70
    finally:
        os._exit(code)


def zygote(fd: int) -> None:
    """Import what every worker needs, then fork a worker per request on control socket fd."""
    import gc

    import numpy  # noqa: F401  (what a worker's init would import; every fork inherits it)
    import scipy.special  # noqa: F401

    try:  # at the process level its workers are its user's: they must not ptrace it or read its memory
        _prctl(PR_SET_DUMPABLE, 0)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # a worker's orphans stay under it, where the grader kills them
    except (OSError, AttributeError):
        pass
    if os.getpid() == 1:  # the first process of the sandbox's namespaces: keep only what building a worker needs
        _capabilities(ZYGOTE_CAPS)
    control = socket.socket(fileno=fd)
    _CONTROL.append(control)
    # The first process of a PID namespace gets only the signals it handles: SIGINT would end it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap)
    gc.freeze()  # a child's collections then leave the inherited objects (and their pages) alone
    control.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 65536, 2)
        except OSError:
            return
        if not message:
            return  # the grader closed the control socket
        try:
            request = _parse_fork(message)
            if len(fds) != 2:
                raise ValueError(f"a fork request carries 2 descriptors, got {len(fds)}")
        except ValueError as exc:
            for extra in fds:
                os.close(extra)
            control.send(f"error {exc}"[:400].encode())
            continue
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped only once it is in _FORKED
        try:
            pid = os.fork()
        except OSError as exc:  # its user's process limit, or memory
            pid = None
            failure = f"error fork: {exc}"
        if pid == 0:
            _become_worker(control, fds[0], fds[1], request)
        if pid is not None:
            _FORKED.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        for passed in fds:
            os.close(passed)
        control.send(b"pid %d" % pid if pid is not None else failure[:400].encode())


def main(argv) -> None:
    """Serve requests on the descriptor named in argv[1] until the grader closes it (or, after
    --zygote, fork a worker per request on the control socket named next)."""
    if argv[1:2] == [ZYGOTE_FLAG]:
        zygote(int(argv[2]))
        return
    fd = int(argv[1])
    sock = socket.socket(fileno=fd)
    Worker(Channel(sock)).serve()


if __name__ == "__main__":
    main(sys.argv)
