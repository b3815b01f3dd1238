"""The result of check_layer / check_model: a verdict, a per-input table, side checks, hints.

A CheckReport is true when every compared gradient is within tolerance (kinks excepted) and
every side check passed. ``str(report)`` is a plain-text table, ``report._repr_html_()`` the same
as HTML for notebooks, and ``report.assert_ok()`` raises AssertionError with the table.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np

from gradcheck.contract import LINEAR_IN_DOUT, ZERO_DOUT, SideCheck

__all__ = ["InputReport", "SideCheck", "CheckReport", "gradient_hints", "shape_hint", "hints_from_side_checks"]

# A hint is offered when the analytic gradient is this close (relative L2 residual) to a simple
# transformation of the numeric one (a scale, a transpose, plus a multiple of the input).
HINT_FIT = 1e-3


@dataclasses.dataclass
class InputReport:
    """How one input's gradient compared.

    Attributes:
        name: the argument (or parameter) name.
        shape: the input's shape.
        mode: "full" (every element), "fast" (random probes only), "fast+full" (a probe failed,
            then every element), "fast+search" (a probe failed, then bisection over the elements).
        checked: elements compared one by one (0 when only probes ran).
        probes: directional probes run (fast mode).
        max_rel_error: the course's rel_error over the compared elements (or probes).
        worst: index of the worst element (None when only probes ran), with its analytic and
            numeric values, absolute and relative error and allowed error.
        mismatches: elements (or probes) outside the tolerance, kinks excluded.
        kinks: indices where the one-sided differences disagree: reported, not counted as errors.
        kinks_outside: how many of those have an analytic value outside the two one-sided slopes.
        passed: the verdict for this input.
        hints: what the pattern of the error suggests.
        note: why the input was not compared, when it was not.
    """

    name: str
    shape: tuple
    mode: str = "full"
    checked: int = 0
    probes: int = 0
    max_rel_error: float = 0.0
    worst: tuple | None = None
    worst_analytic: float = 0.0
    worst_numeric: float = 0.0
    worst_abs_error: float = 0.0
    worst_rel_error: float = 0.0
    worst_allowed: float = 0.0
    mismatches: int = 0
    kinks: list = dataclasses.field(default_factory=list)
    kinks_outside: int = 0
    passed: bool = True
    hints: list = dataclasses.field(default_factory=list)
    note: str = ""

    @property
    def shape_size(self):
        """The number of elements of the input."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclasses.dataclass
class CheckReport:
    """Everything check_layer or check_model found; true when all passed.

    Attributes:
        target: what was checked, e.g. "affine_forward / affine_backward".
        inputs: one InputReport per checked array.
        side_checks: SideCheck list.
        seed, h, mode, rtol, atol: the settings used (h and atol as descriptions when automatic).
        forward_evaluations: forward (or loss) calls spent on numeric differences.
        backward_calls: backward calls (side checks included).
        upcast: names of inputs that were not float64 and were checked on float64 copies.
    """

    target: str
    inputs: list
    side_checks: list
    seed: int
    h: str
    mode: str
    rtol: float
    atol: str
    forward_evaluations: int = 0
    backward_calls: int = 0
    upcast: list = dataclasses.field(default_factory=list)

    def __bool__(self):
        return all(r.passed for r in self.inputs) and all(s.passed for s in self.side_checks)

    def __getitem__(self, name):
        for r in self.inputs:
            if r.name == name:
                return r
        raise KeyError(f"CheckReport: no input named {name!r}; inputs are {[r.name for r in self.inputs]}.")

    @property
    def failures(self):
        """Names of the failed inputs and side checks."""
        return [r.name for r in self.inputs if not r.passed] + [s.name for s in self.side_checks if not s.passed]

    def assert_ok(self):
        """Raise AssertionError with the whole table unless everything passed.

        Returns:
            self, so that ``check_layer(...).assert_ok()`` can be chained.
        """
        if not self:
            raise AssertionError("gradient check failed: " + ", ".join(self.failures) + "\n" + str(self))
        return self

    def _rows(self):
        header = ["input", "shape", "mode", "checked", "max rel_error", "worst index", "analytic", "numeric",
                  "|diff|", "allowed", "mismatches", "kinks", "verdict"]
        rows = []
        for r in self.inputs:
            worst = "-" if r.worst is None else str(tuple(int(i) for i in r.worst))
            has_values = (r.worst is not None or r.probes) and not r.note.startswith("not compared")
            rows.append([
                r.name, str(tuple(r.shape)), r.mode,
                f"{r.checked}" + (f" + {r.probes} probes" if r.probes else ""),
                f"{r.max_rel_error:.1e}" if has_values else "-", worst,
                f"{r.worst_analytic:+.6e}" if has_values else "-",
                f"{r.worst_numeric:+.6e}" if has_values else "-",
                f"{r.worst_abs_error:.1e}" if has_values else "-",
                f"{r.worst_allowed:.1e}" if has_values else "-",
                str(r.mismatches), str(len(r.kinks)), "ok" if r.passed else "FAIL"])
        return header, rows

    def _summary(self):
        verdict = "passed" if self else "FAILED"
        up = f"; upcast to float64: {', '.join(self.upcast)}" if self.upcast else ""
        return (f"{self.target}: {verdict} (mode {self.mode}, seed {self.seed}, h {self.h}, rtol {self.rtol:g}, "
                f"atol {self.atol}; {self.forward_evaluations} forward evaluations, "
                f"{self.backward_calls} backward calls{up})")

    def _notes(self):
        lines = []
        for r in self.inputs:
            if r.note:
                lines.append(f"{r.name}: {r.note}")
            for hint in r.hints:
                lines.append(f"{r.name}: {hint}")
            if r.kinks:
                shown = ", ".join(str(tuple(int(i) for i in k)) for k in r.kinks[:5])
                more = f" and {len(r.kinks) - 5} more" if len(r.kinks) > 5 else ""
                lines.append(f"{r.name}: kink(s) at {shown}{more}: the one-sided differences disagree, so the "
                             f"gradient is not defined there (not counted as an error)")
                if r.kinks_outside:
                    lines.append(f"{r.name}: at {r.kinks_outside} of these kinks the analytic value is outside the two "
                                 f"one-sided slopes (several kinks meet there); draw inputs clear of kinks to check "
                                 f"those elements")
        return lines

    def __str__(self):
        header, rows = self._rows()
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
        lines = [self._summary(), "  ".join(h.ljust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        if self.side_checks:
            passed = sum(s.passed for s in self.side_checks)
            lines.append(f"side checks: {passed} of {len(self.side_checks)} passed")
            lines += [f"  {'ok  ' if s.passed else 'FAIL'}  {s.name}" + (f": {s.detail}" if s.detail else "")
                      for s in self.side_checks if not s.passed or s.detail]
        notes = self._notes()
        if notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in notes]
        return "\n".join(lines)

    def __repr__(self):
        return f"<CheckReport {self._summary()}>"

    def _repr_html_(self):
        header, rows = self._rows()
        esc = html.escape
        color = "#1a7f37" if self else "#cf222e"
        parts = [f"<div><p style='color:{color}'><b>{esc(self._summary())}</b></p>",
                 "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table>")
        if self.side_checks:
            parts.append("<ul>" + "".join(
                f"<li>{'ok' if s.passed else '<b>FAIL</b>'} {esc(s.name)}{': ' + esc(s.detail) if s.detail else ''}</li>"
                for s in self.side_checks) + "</ul>")
        notes = self._notes()
        if notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
        parts.append("</div>")
        return "".join(parts)


def _fit_scale(a, n):
    """(s, residual): the least-squares s in a ~ s n and ||a - s n|| / ||a||."""
    nn = float(np.dot(n, n))
    na = float(np.linalg.norm(a))
    if nn == 0 or na == 0:
        return None, np.inf
    s = float(np.dot(a, n)) / nn
    return s, float(np.linalg.norm(a - s * n)) / na


def gradient_hints(name, analytic, numeric, value, batch_size):
    """What a wrong gradient's pattern suggests, in words (empty when nothing clear).

    Args:
        name: the input's name, for the wording.
        analytic, numeric: the compared gradients.
        value: the input's value (for "differs by a multiple of the input").
        batch_size: N, the leading dimension of the first input (None when unknown).

    Returns:
        list of str.

    Shape:
        analytic, numeric, value: S (the input's shape)
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    hints = []
    scale = max(float(np.abs(n).max(initial=0)), float(np.abs(a).max(initial=0)))
    if scale == 0:
        return hints
    tiny = 1e-9 * scale
    zero_a = (np.abs(a) <= tiny) & (np.abs(n) > 1e3 * tiny)
    if zero_a.all() or (np.abs(a) <= tiny).all():
        return [f"the analytic d{name} is zero everywhere but the numeric one is not: a missing term, or the "
                f"gradient never written?"]
    s, residual = _fit_scale(a, n)
    if s is not None and residual < HINT_FIT:
        if abs(s + 1) < 1e-3:
            hints.append(f"the analytic d{name} is the numeric one with its sign flipped")
        elif batch_size and batch_size > 2 and abs(s - batch_size) < 1e-3 * batch_size:
            hints.append(f"the analytic d{name} is N = {batch_size} times the numeric one: forgot to average over "
                         f"the batch (divide by N)?")
        elif batch_size and batch_size > 2 and abs(s * batch_size - 1) < 1e-3:
            hints.append(f"the analytic d{name} is 1/N = 1/{batch_size} of the numeric one: divided by the batch "
                         f"size where it should not be, or twice?")
        elif abs(s - 2) < 2e-3:
            hints.append(f"the analytic d{name} is twice the numeric one: a factor of 2 (e.g. from d(x^2) or a "
                         f"0.5 in the loss)?")
        elif abs(s - 0.5) < 5e-4:
            hints.append(f"the analytic d{name} is half the numeric one: a factor of 2 missing?")
        elif abs(s - 1) > 1e-3:
            hints.append(f"the analytic d{name} is {s:.4g} times the numeric one: a constant factor is off")
    shape = np.shape(analytic)
    if len(shape) == 2 and shape[0] == shape[1] and shape[0] > 1:
        at = np.asarray(analytic, dtype=np.float64).T.ravel()
        if np.linalg.norm(at - n) < HINT_FIT * np.linalg.norm(n) and np.linalg.norm(a - n) > HINT_FIT * np.linalg.norm(n):
            hints.append(f"the analytic d{name} is the transpose of the numeric one")
    x = np.asarray(value, dtype=np.float64).ravel()
    if not hints and x.size == a.size and np.dot(x, x) > 0:
        d = a - n
        c = float(np.dot(d, x) / np.dot(x, x))
        if c != 0 and np.linalg.norm(d - c * x) < HINT_FIT * np.linalg.norm(d):
            hints.append(f"the analytic d{name} differs from the numeric one by {c:+.4g} * {name}: a regularization "
                         f"term (reg * {name}) missing or extra?")
    if not hints and zero_a.any():
        hints.append(f"the analytic d{name} is zero at {int(zero_a.sum())} element(s) where the numeric one is not")
    return hints


def shape_hint(name, grad_shape, input_shape, batch_size):
    """Why a gradient may have the wrong shape (a sentence), or "" when nothing is clear.

    Args:
        name: the input's name.
        grad_shape, input_shape: the shapes that should match.
        batch_size: N, or None.

    Returns:
        str.
    """
    grad_shape, input_shape = tuple(grad_shape), tuple(input_shape)
    if len(grad_shape) == len(input_shape) >= 2 and grad_shape == input_shape[::-1]:
        return f"d{name} is transposed"
    if batch_size and grad_shape[:1] == (batch_size,) and grad_shape[1:] == input_shape:
        return f"d{name} keeps the batch axis: sum it over the N = {batch_size} samples"
    if batch_size and grad_shape == (batch_size, *input_shape[1:]) and input_shape[:1] == (1,):
        return f"d{name} keeps the batch axis: sum it over the samples (keepdims)"
    if int(np.prod(grad_shape)) == int(np.prod(input_shape)):
        return f"d{name} has the right number of elements: reshape it to {input_shape}"
    return ""


def hints_from_side_checks(side_checks):
    """What the failed side checks say about every gradient that did not match, in words.

    Reads the checks' codes, never their names.

    Args:
        side_checks: list of SideCheck.

    Returns:
        list of str (empty when the failed checks suggest nothing).
    """
    failed = {s.code for s in side_checks if not s.passed}
    if failed & {ZERO_DOUT, LINEAR_IN_DOUT}:
        return ["backward does not use dout as a factor: multiply the local gradient by dout"]
    return []
