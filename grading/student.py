"""The trusted side's handle on a submission: call its functions in a sandboxed worker.

A graded test never imports student code. It asks the ``student`` fixture instead:

    out, cache = student.call("layers.affine_forward", x, w, b)
    dx, dw, db = student.call("layers.affine_backward", dout, cache)

Arguments travel as plain data (grading.channel), results come back the same way; whatever is
not plain data (a cache holding a dtype, a model) stays in the worker and comes back as a
Handle that can be passed to later calls. Every call shares the test's time budget; a call
that overruns it, crashes the worker or breaks the protocol kills the worker and fails the
test with a SubmissionError that says what happened. Nothing the worker sends is believed
beyond being the value its code returned.

Nets are graded with stand-in layers (``use_standins``): the worker's stand-in sends each call
back over the channel, and the grader answers it with its own reference layer. The reference
code never enters the worker, and a broken layer of the student's costs only that layer's tests.
"""

from __future__ import annotations

import time

import numpy as np

from grading.channel import ChannelError, Handle
from grading.sandbox import Pool, SandboxError

# Stand-in calls one test may make (a net's numeric gradient check needs some thousands).
MAX_CALLBACKS = 200_000
# Characters of the submission's own exception message shown in a verdict.
MESSAGE_CHARS = 300


class SubmissionError(Exception):
    """A call into the submission did not return a value (it raised, hung, crashed or lied)."""


class SubmissionRaised(SubmissionError):
    """The submission's code raised an exception."""

    def __init__(self, target: str, error: dict):
        self.type = str(error.get("type", "Exception"))[:80]
        self.where = str(error.get("where", ""))[:200]
        self.detail = str(error.get("message", ""))[:MESSAGE_CHARS]
        where = f" at {self.where}" if self.where else ""
        super().__init__(f"{target}: the submission raised {self.type}{where}: {self.detail!r}")

    @property
    def is_import_error(self) -> bool:
        """Whether a student file could not be imported (syntax or import error)."""
        return self.type in ("SyntaxError", "IndentationError", "TabError", "ImportError", "ModuleNotFoundError")


class SubmissionTimeout(SubmissionError):
    """A call ran past the test's time limit."""


class SubmissionCrashed(SubmissionError):
    """The worker ended or closed its channel during a call."""


class SubmissionProtocolError(SubmissionError):
    """The worker sent something that is not a valid answer."""


class SubmissionNotTried(SubmissionError):
    """A call needed a student module whose import hung, ended the worker or broke the channel in an earlier test."""


def _mirror(original, after) -> None:
    """Copy in-place changes the worker made to arguments back into the caller's objects."""
    if isinstance(original, np.ndarray) and isinstance(after, np.ndarray):
        if original.shape == after.shape and original.dtype == after.dtype and original.flags.writeable:
            np.copyto(original, after)
    elif isinstance(original, dict) and isinstance(after, dict):
        for key in list(original):
            if key not in after:
                del original[key]
        for key, value in after.items():
            if key in original and isinstance(original[key], (np.ndarray, dict, list)):
                _mirror(original[key], value)
                if not isinstance(original[key], type(value)) or (
                        isinstance(value, np.ndarray) and np.shape(original[key]) != value.shape):
                    original[key] = value
            else:
                original[key] = value
    elif isinstance(original, (list, tuple)) and isinstance(after, (list, tuple)) and len(original) == len(after):
        for a, b in zip(original, after):
            _mirror(a, b)
        if isinstance(original, list):
            original[:] = [a if isinstance(a, (np.ndarray, dict, list)) else b for a, b in zip(original, after)]


class RemoteStudent:
    """Calls into one submission for one test.

    Args:
        pool: where fresh workers come from.
        timeout: seconds all of this test's calls may take together.
        standins: name -> trusted callable, what use_standins may install.
    """

    def __init__(self, pool: Pool, timeout: float, standins: dict | None = None, worker=None,
                 broken_imports: dict | None = None):
        self.pool = pool
        # module -> why it failed to import in an earlier test (shared by the tests of a submission)
        self.broken_imports = broken_imports if broken_imports is not None else {}
        self.importing: list[str] = []  # student modules whose import has started and not ended
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.available_standins = dict(standins or {})
        self.standins: dict = {}
        self.worker = worker  # a worker shared with earlier tests of the same file, or None
        self.output_start = len(worker.output) if worker is not None else 0
        self.tainted = False  # a hang, a crash or garbage: the worker is not handed on
        self.objects: dict[int, object] = {}
        self.callbacks = 0
        self.outputs: list[str] = []

    # -- the worker
    def _worker(self):
        # A worker handed on from the previous test serves this one only with the same stand-ins
        # installed (none, or the same names): stand-ins cannot be taken out of a worker.
        if (self.worker is not None and not self.worker.dead and self._installed(self.worker)
                and self._installed(self.worker) != sorted(self.standins)):
            self.worker.kill()
            self.worker = None
        if self.worker is None or self.worker.dead:
            self.worker = None
            self.output_start = 0
            try:
                self.worker = self.pool.take()
                self.worker.wait_ready()
            except SandboxError as exc:
                raise SubmissionCrashed(f"the sandbox could not start the submission's process: {exc}") from None
        if self.standins and self._installed(self.worker) != sorted(self.standins):
            self.worker.standins = sorted(self.standins)  # before the request, which comes back here
            self._request({"op": "standins", "names": sorted(self.standins)}, "installing stand-in layers")
        # The modules whose import broke an earlier worker: this one refuses to run them again (it
        # says so, and the call fails here), so a test that needs one costs no fresh worker.
        if self.broken_imports and getattr(self.worker, "refused", []) != sorted(self.broken_imports):
            self.worker.refused = sorted(self.broken_imports)
            self._request({"op": "refuse", "modules": sorted(self.broken_imports)}, "refusing broken modules")
        return self.worker

    @staticmethod
    def _installed(worker) -> list:
        return getattr(worker, "standins", [])

    def close(self, keep: bool = False):
        """End this test's use of the worker, keeping what it printed during the test.

        Args:
            keep: hand the worker on (returned) unless the test tainted it; otherwise kill it.

        Returns:
            The worker when it is handed on, else None.
        """
        worker, self.worker = self.worker, None
        if worker is None:
            return None
        handed_on = keep and not self.tainted and not worker.dead
        if not handed_on:
            worker.kill()
        text = worker.output_text(self.output_start)
        if text.strip():
            self.outputs.append(text)
        return worker if handed_on else None

    def _fail(self, error_type, message):
        self.tainted = True
        self.close()
        raise error_type(message)

    def _to_handle(self, obj) -> Handle:
        number = len(self.objects) + 1
        self.objects[number] = obj
        return Handle("R", number)

    def _resolve(self, value):
        if isinstance(value, Handle):
            if value.side != "R" or value.number not in self.objects:
                raise ValueError("an object that is not the grader's")
            return self.objects[value.number]
        if isinstance(value, tuple):
            return tuple(self._resolve(v) for v in value)
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def _answer_callback(self, worker, request: dict) -> None:
        self.callbacks += 1
        name = request.get("name")
        if self.callbacks > MAX_CALLBACKS:
            self._fail(SubmissionProtocolError, f"more than {MAX_CALLBACKS} stand-in calls in one test")
        if name not in self.standins:
            self._send_to(worker, {"ok": False, "message": f"no stand-in {name!r}"})
            return
        try:
            args, kwargs = self._resolve(request.get("args", [])), self._resolve(request.get("kwargs", {}))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise TypeError("malformed arguments")
            answer = {"ok": True, "value": self.standins[name](*args, **kwargs)}
        except Exception as exc:  # the reference layer refused what the student's net passed it
            answer = {"ok": False, "message": f"{type(exc).__name__}: {str(exc)[:MESSAGE_CHARS]}"}
        self._send_to(worker, answer, self._to_handle)

    def _send_to(self, worker, answer, to_handle=None):
        try:
            worker.channel.send(answer, to_handle)
        except EOFError:
            self._fail(SubmissionCrashed, "the submission's process ended during a stand-in layer's call")

    def _not_tried(self, what: str, module: str) -> str:
        return (f"{what}: needs {module}, which could not be imported in an earlier test "
                f"({self.broken_imports[module]}); not tried again")

    def _request(self, request: dict, what: str):
        worker = self._worker()
        try:
            worker.channel.send(request)
        except EOFError:
            self._fail(SubmissionCrashed, f"{what}: the submission's process was gone before the call")
        refused = None  # a broken module the worker said it did not import: the call fails once it answers
        while True:
            left = self.deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                answer = worker.channel.recv(timeout=left)
            except TimeoutError:
                during = f" while importing {self.importing[-1]}" if self.importing else ""
                if self.importing:
                    self.broken_imports[self.importing[-1]] = f"its import ran past a test's limit of {self.timeout:g} s"
                self._fail(SubmissionTimeout, f"{what}: timed out{during}; the test's calls ran past its limit of "
                                              f"{self.timeout:g} s and the submission's process was stopped")
            except EOFError:
                code = worker.exit_code(timeout=0.5)  # it closed its channel: a moment to exit, for the code
                during = f" while importing {self.importing[-1]}" if self.importing else ""
                if self.importing:
                    self.broken_imports[self.importing[-1]] = "the submission's process ended during its import"
                self._fail(SubmissionCrashed, f"{what}: the submission's process ended during the call{during}"
                                              + (f" (exit code {code})" if code is not None else ""))
            except ChannelError as exc:
                during = f" while importing {self.importing[-1]}" if self.importing else ""
                if self.importing:
                    self.broken_imports[self.importing[-1]] = "its import broke the channel"
                self._fail(SubmissionProtocolError,
                           f"{what}: the submission's process sent an invalid answer{during} ({exc})")
            if isinstance(answer, dict) and answer.get("op") == "refused":
                module = answer.get("module")
                if not isinstance(module, str) or module not in self.broken_imports:
                    self._fail(SubmissionProtocolError, f"{what}: the submission's process sent an invalid notice")
                refused = refused or module
                continue
            if isinstance(answer, dict) and answer.get("op") in ("importing", "imported"):
                module = answer.get("module")
                if not isinstance(module, str):
                    self._fail(SubmissionProtocolError, f"{what}: the submission's process sent an invalid notice")
                if answer["op"] == "imported":
                    if module in self.importing:
                        self.importing.remove(module)
                    continue
                if module in self.broken_imports:  # a worker that runs it anyway is not kept
                    self._fail(SubmissionNotTried, self._not_tried(what, module))
                self.importing.append(module)
                continue
            if isinstance(answer, dict) and answer.get("op") == "callback":
                self._answer_callback(worker, answer)
                continue
            self.importing.clear()
            if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
                self._fail(SubmissionProtocolError, f"{what}: the submission's process sent an invalid answer")
            if refused is not None:  # whatever the call made of the refusal, it needed that module
                raise SubmissionNotTried(self._not_tried(what, refused))
            if not answer["ok"]:
                error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
                raised = SubmissionRaised(what, error)
                raise raised  # an exception leaves the worker sound: it serves the file's next test
            return answer

    # -- the API graded tests use (grading_checks.LocalStudent has the same one)
    def call(self, target: str, *args, **kwargs):
        """target(*args, **kwargs) in the submission; its return value."""
        return self._request({"op": "call", "target": target, "args": list(args), "kwargs": kwargs},
                             _name(target))["value"]

    def call_with_args(self, target, *args, **kwargs):
        """(value, args, kwargs) with the arguments as the call left them (to see in-place changes)."""
        answer = self._request({"op": "call", "target": target, "args": list(args), "kwargs": kwargs,
                                "return_args": True}, _name(target))
        return answer["value"], answer.get("args"), answer.get("kwargs")

    def function(self, target):
        """A callable standing for target; in-place changes to its arguments are copied back."""
        def call(*args, **kwargs):
            value, args_after, kwargs_after = self.call_with_args(target, *args, **kwargs)
            _mirror(list(args), args_after)
            _mirror(kwargs, kwargs_after)
            return value

        call.__name__ = _name(target).rsplit(".", 1)[-1]
        return call

    def getattr(self, obj, name: str):
        """getattr(obj, name) in the submission."""
        return self._request({"op": "getattr", "obj": obj, "name": name}, f"{name}")["value"]

    def setattr(self, obj, name: str, value) -> None:
        """setattr(obj, name, value) in the submission."""
        self._request({"op": "setattr", "obj": obj, "name": name, "value": value}, f"setting {name}")

    def model(self, target: str, *args, **kwargs) -> "RemoteModel":
        """A net built by the submission's target(*args, **kwargs), driven from here."""
        return RemoteModel(self, self.call(target, *args, **kwargs), _name(target))

    def use_standins(self, names) -> None:
        """From now on the submission's modules call the grader's layers of these names."""
        unknown = [n for n in names if n not in self.available_standins]
        if unknown:
            raise ValueError(f"use_standins: no stand-ins {unknown}; there are {sorted(self.available_standins)}.")
        self.standins = {n: self.available_standins[n] for n in names}
        self._worker()


class RemoteModel:
    """A model in the worker, with params kept here: what check_model and the net tests drive.

    Each loss() sends the current params over, calls the model's loss and copies back any
    in-place change the call made to them.
    """

    def __init__(self, student: RemoteStudent, handle, name: str):
        if not isinstance(handle, Handle):
            raise SubmissionProtocolError(f"{name}: the submission's constructor did not return a model object")
        self._student, self._handle, self._name = student, handle, name
        params = student.getattr(handle, "params")
        if not isinstance(params, dict):
            raise AssertionError(f"{name}.params: expected a dict of arrays, got {type(params).__name__}")
        self.params = params

    def loss(self, X, y=None):
        """The submission's model.loss(X) or model.loss(X, y), with this object's params."""
        self._student.setattr(self._handle, "params", self.params)
        args = (X,) if y is None else (X, y)
        value = self._student.call([self._handle, "loss"], *args)
        after = self._student.getattr(self._handle, "params")
        _mirror(self.params, after)
        return value

    def __repr__(self) -> str:
        return f"<the submission's {self._name}>"


def _name(target) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, list) and len(target) == 2:
        return f"model.{target[1]}"
    return "a submission object"
