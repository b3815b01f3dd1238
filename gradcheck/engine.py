"""The numeric engine of check_layer and check_model: steps, tolerances, the element-by-element
comparison, random probes, the bisection search and kink detection.

Every difference is a centered one taken with gradcheck.numeric's centered_pair (one element) or
directional_pair (the whole array along a probe direction), on a float64 array that the engine
perturbs in place and restores. The function differentiated is a scalar objective L (for a layer,
sum(forward(...) * dout); for a model, its loss).

Tolerance, per element:  |a - n| <= atol + rtol * max(|a|, |n|)
    a: analytic, n: numeric. The automatic atol is the rounding noise of the difference quotient,
    ROUNDING_SAFETY * noise / h, where noise = eps * S is the rounding noise of one evaluation of L.
Step: h = H_REL * max(1, |x_i|) per element (H_REL = cbrt(eps), which balances the O(h^2)
    truncation error against the O(eps / h) rounding error), or a fixed h when given.

Modes:
    "full": every element, 2 evaluations each.
    "fast": k probes u (signed: Rademacher or Gaussian) compare (L(x + t v) - L(x - t v)) / 2t with
        <analytic, v>, v = u * max(1, |x|), with the same tolerance form; cost 2k evaluations per
        input whatever its size. A failing probe reruns the full comparison (or, above
        FULL_RERUN_MAX elements, a bisection search with probes on halves down to blocks of
        SEARCH_LEAF elements), so the report still names the worst element.
    "auto": full for inputs of at most AUTO_FULL_MAX elements, fast above.

Kinks: where the one-sided differences (L(x + h) - L(x)) / h and (L(x) - L(x - h)) / h disagree by
more than KINK_REL of their size (a smooth function's do not), the element is a kink, listed and
not counted as a mismatch; kinks_outside counts those whose analytic value is outside the two
one-sided slopes (several kinks meet).

Shape letters: S is the checked array's shape, P its number of elements.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from gradcheck.numeric import centered_pair, directional_pair, relative_errors
from gradcheck.report import gradient_hints
from layers.validate import integer

__all__ = ["Target", "compare", "check_settings", "work_copies", "default_step", "describe_h", "describe_atol",
           "warn_upcast", "GradcheckWarning", "EPS", "H_REL", "RTOL", "ROUNDING_SAFETY", "AUTO_FULL_MAX",
           "FULL_RERUN_MAX", "SEARCH_LEAF", "SEARCH_MAX_LEAVES", "SEED_SALT", "DEFAULT_PROBES", "KINK_REL"]

EPS = float(np.finfo(np.float64).eps)
# Relative step: cbrt(eps) ~ 6e-6 minimizes truncation (h^2) plus rounding (eps / h) error.
H_REL = float(np.cbrt(EPS))
# Default relative tolerance. A correct float64 layer lands near 1e-9 or below (truncation error
# about h^2 ~ 4e-11 relative); a bug is almost always off by more than 1e-4.
RTOL = 1e-7
# The rounding noise of an evaluated sum is at most about eps * S; this safety factor covers the
# few roundings in forward and in the difference.
ROUNDING_SAFETY = 10
# "auto" compares every element of inputs up to this size, and probes larger ones.
AUTO_FULL_MAX = 4096
# After a failed probe, inputs up to this size are compared element by element; larger ones
# are searched by bisection.
FULL_RERUN_MAX = 20_000
# Bisection stops at blocks of this many elements, compared one by one...
SEARCH_LEAF = 64
# ...and explores at most this many failing blocks.
SEARCH_MAX_LEAVES = 8
# The check's generator is seeded with (seed, SEED_SALT), so that its dout and probes differ from
# the draws of a caller's default_rng(seed) (with the same seed, dout would equal x, and x.T @ dout
# would be symmetric: a transposed gradient would go unnoticed).
SEED_SALT = 0x67726164
# Probes per input in fast mode.
DEFAULT_PROBES = 4
# One-sided differences that disagree by more than this fraction of their size mark a kink (a
# smooth function's disagree by about h * |f''|, some 1e-6 of it).
KINK_REL = 1e-3


class GradcheckWarning(UserWarning):
    """Something about the check itself deserves attention (e.g. float32 inputs were upcast)."""


def default_step(x):
    """The per-element step check_layer uses: H_REL * max(1, |x|).

    Args:
        x: the input array.

    Returns:
        float64 array of steps.

    Shape:
        x, result: S
    """
    return H_REL * np.maximum(1.0, np.abs(np.asarray(x, dtype=np.float64)))


# ----------------------------------------------------------------------------- settings


def check_settings(fn, mode, seed, h, rtol, atol, probes, probe):
    """Refuse bad check settings before any work, naming fn, the setting and the value.

    Args:
        fn: the public function, for the messages.
        mode, seed, h, rtol, atol, probes, probe: as for check_layer.

    Returns:
        None; raises ValueError or TypeError.
    """
    if mode not in ("auto", "full", "fast"):
        raise ValueError(f"{fn}: mode must be 'auto', 'full' or 'fast', got {mode!r}.")
    integer(fn, "seed", seed)
    if h is not None and (isinstance(h, bool) or not isinstance(h, numbers.Real) or not (np.isfinite(h) and h > 0)):
        raise ValueError(f"{fn}: h must be None (automatic) or a positive finite step, got {h!r}.")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is None and name == "atol":
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {value!r}.")
    integer(fn, "probes", probes, low=2)
    if probe not in ("rademacher", "gaussian"):
        raise ValueError(f"{fn}: probe must be 'rademacher' or 'gaussian', got {probe!r}.")


def work_copies(fn, inputs):
    """float64 C-contiguous private copies of the inputs, and the names of those that were not float64.

    Args:
        fn: the public function, for the messages.
        inputs: dict name -> floating-point array or real number.

    Returns:
        (work, upcast): dict name -> float64 array, and the list of upcast names.

    Shape:
        inputs[name], work[name]: S_name
    """
    if not isinstance(inputs, dict) or not inputs:
        raise TypeError(f"{fn}: inputs must be a non-empty dict of argument name -> array, got {inputs!r:.80}.")
    work, upcast = {}, []
    for name, value in inputs.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = np.float64(value)
        if not isinstance(value, (np.ndarray, np.floating)) or not np.issubdtype(np.asarray(value).dtype, np.floating):
            got = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(f"{fn}: inputs[{name!r}] must be a floating-point array (labels and other "
                            f"non-differentiable arguments go in params), got {got}.")
        if np.asarray(value).dtype != np.float64:
            upcast.append(name)
        work[name] = np.array(value, dtype=np.float64, order="C", copy=True)
    return work, upcast


def describe_h(h):
    """The step as the report shows it: the fixed h, or the automatic rule."""
    return f"{h:g}" if h is not None else "cbrt(eps)*max(1,|x|)"


def describe_atol(atol):
    """The absolute tolerance as the report shows it: the fixed atol, or "auto (rounding noise)"."""
    return "auto (rounding noise)" if atol is None else f"{atol:g}"


def warn_upcast(fn, upcast):
    """Warn (GradcheckWarning, attributed to the caller of fn) that the named inputs are checked as float64 copies."""
    warnings.warn(f"{fn}: {', '.join(upcast)} not float64; checking float64 copies (in single precision, "
                  f"relative errors of 1e-2 are normal even for correct code).", GradcheckWarning, stacklevel=3)


# ----------------------------------------------------------------------------- one array


class Target:
    """One float64 array under check, perturbed in place while its objective is re-evaluated.

    Args:
        name: the input's (or parameter's) name.
        x: the C-contiguous float64 array the objective reads; perturbed and always restored.
        analytic: the gradient to check, shaped like x.
        objective: callable() -> the scalar L at the current x.
        noise: the rounding noise of one evaluation of L (eps times the size of its terms).
        h, rtol, atol: the step (None: automatic), the relative and absolute (None: automatic) tolerance.

    Shape:
        x, analytic: S
    """

    def __init__(self, name, x, analytic, objective, noise, h, rtol, atol):
        self.name, self.x, self.objective = name, x, objective
        self.a = np.asarray(analytic, dtype=np.float64).reshape(-1)
        self.flat = x.reshape(-1)  # a view: x is C-contiguous
        self.noise, self.h, self.rtol, self.atol = noise, h, rtol, atol

    def evaluate(self, _x=None):
        """L at the current x, as a Python float (numeric's helpers pass x, which the objective reads anyway)."""
        return float(self.objective())

    def full(self, idx, L0):
        """Compare the elements at flat indices idx one by one (L0: L at x).

        Returns:
            (numeric, diff, allowed, kink, outside): the centered differences, |a - n|, the allowed
            error, and two masks: kinks, and kinks where the analytic value is outside the one-sided
            slopes.

        Shape:
            idx and every result: (K,)
        """
        n, dp, dm, steps = (np.empty(idx.size) for _ in range(4))
        for k, i in enumerate(idx):
            step = self.h if self.h is not None else H_REL * max(1.0, abs(self.flat[i]))
            Lp, Lm, hp, hm = centered_pair(self.evaluate, self.flat, i, step)
            n[k] = (Lp - Lm) / (hp + hm)
            dp[k], dm[k] = (Lp - L0) / hp, (L0 - Lm) / hm
            steps[k] = min(hp, hm)
        a = self.a[idx]
        atol = self.atol if self.atol is not None else ROUNDING_SAFETY * self.noise / steps
        diff = np.abs(a - n)
        allowed = atol + self.rtol * np.maximum(np.abs(a), np.abs(n))
        lo, hi = np.minimum(dp, dm), np.maximum(dp, dm)
        jump = hi - lo
        kink = (diff > allowed) & (jump > KINK_REL * np.maximum(np.abs(dp), np.abs(dm)) + 4 * atol)
        outside = kink & ((a < lo - allowed) | (a > hi + allowed))
        return n, diff, allowed, kink, outside

    def probe(self, u, subset=None):
        """One directional comparison along u (zero outside the flat indices subset).

        Returns:
            (analytic, numeric, allowed): <a, v>, the centered difference along v, the allowed error.

        Shape:
            u: (P,); subset: (K,) or None
        """
        scale = np.ones_like(self.flat) if self.h is not None else np.maximum(1.0, np.abs(self.flat))
        v = u * scale
        if subset is not None:
            mask = np.zeros(v.size, dtype=bool)
            mask[subset] = True
            v = np.where(mask, v, 0.0)
        t = self.h if self.h is not None else H_REL
        Lp, Lm = directional_pair(self.evaluate, self.flat, v, t)
        numeric = (Lp - Lm) / (2 * t)
        analytic = float(np.dot(self.a, v))
        atol = self.atol if self.atol is not None else (
            ROUNDING_SAFETY * (self.noise / t + EPS * float(np.dot(np.abs(self.a), np.abs(v)))))
        allowed = atol + self.rtol * max(abs(analytic), abs(numeric))
        return analytic, numeric, allowed


def _draw(rng, size, probe):
    if probe == "gaussian":
        return rng.standard_normal(size)
    return rng.choice(np.array([-1.0, 1.0]), size=size)


def _fill_from_elements(report, target, idx, L0, batch_size):
    """Compare elements idx one by one and write the outcome into report."""
    n, diff, allowed, kink, outside = target.full(idx, L0)
    a = target.a[idx]
    bad = (diff > allowed) & ~kink
    report.checked += int(idx.size)
    report.mismatches = int(bad.sum())
    smooth = ~kink
    rel = relative_errors(a, n)
    report.max_rel_error = float(rel[smooth].max(initial=0.0))
    ratio = np.where(smooth, diff / np.maximum(allowed, 1e-300), -1.0)
    k = int(np.argmax(ratio)) if idx.size else 0
    if idx.size:
        report.worst = np.unravel_index(int(idx[k]), target.x.shape)
        report.worst_analytic, report.worst_numeric = float(a[k]), float(n[k])
        report.worst_abs_error, report.worst_rel_error = float(diff[k]), float(rel[k])
        report.worst_allowed = float(allowed[k])
    report.kinks = [np.unravel_index(int(i), target.x.shape) for i in idx[kink]]
    report.kinks_outside = int(outside.sum())
    report.passed = report.mismatches == 0
    if not report.passed and idx.size == target.a.size:
        numeric = np.zeros(target.a.size)
        numeric[idx] = n
        report.hints += gradient_hints(report.name, target.a.reshape(target.x.shape),
                                       numeric.reshape(target.x.shape), target.x, batch_size)


def _probe_all(report, target, rng, probes, probe):
    """Run the probes; record the worst; return True when all passed."""
    results = [target.probe(_draw(rng, target.a.size, probe)) for _ in range(probes)]
    report.probes += probes
    a, n, allowed = (np.array(col) for col in zip(*results))
    diff = np.abs(a - n)
    k = int(np.argmax(diff / np.maximum(allowed, 1e-300)))
    report.max_rel_error = float(relative_errors(a, n).max())
    report.worst_analytic, report.worst_numeric = float(a[k]), float(n[k])
    report.worst_abs_error, report.worst_rel_error = float(diff[k]), float(relative_errors(a[k], n[k]))
    report.worst_allowed = float(allowed[k])
    report.mismatches = int((diff > allowed).sum())
    return report.mismatches == 0


def _search(report, target, rng, L0, probe, batch_size):
    """Bisection with probes on halves down to SEARCH_LEAF blocks, then compare those elements."""
    failed_probes = report.mismatches
    pending, leaves = [np.arange(target.a.size)], []
    while pending and len(leaves) < SEARCH_MAX_LEAVES:
        block = pending.pop()
        if block.size <= SEARCH_LEAF:
            leaves.append(block)
            continue
        for half in np.array_split(block, 2):
            for _ in range(2):
                report.probes += 1
                a, n, allowed = target.probe(_draw(rng, target.a.size, probe), half)
                if abs(a - n) > allowed:
                    pending.append(half)
                    break
    if leaves:
        _fill_from_elements(report, target, np.sort(np.concatenate(leaves)), L0, batch_size)
        if report.mismatches:
            report.note = f"counts are among the {report.checked} elements the bisection search isolated"
        elif pending:
            report.passed, report.mismatches = False, failed_probes
            report.note = "probes failed; the bisection search hit its limit before isolating the elements"
    else:
        report.passed, report.mismatches = False, failed_probes
        report.note = "probes failed, but no half of the input did on its own (an error near the tolerance?)"


def compare(report, target, mode, rng, L0, probes, probe, batch_size):
    """Check target's gradient in the given mode and write the outcome into report.

    Args:
        report: the InputReport to fill (mode, counts, worst element, kinks, hints, verdict).
        target: the Target.
        mode: "auto", "full" or "fast".
        rng: the check's Generator (draws the probes).
        L0: the objective at the unperturbed x.
        probes, probe: probes per input in fast mode, and their kind.
        batch_size: N, for the hints (None when unknown).

    Returns:
        None.
    """
    size = target.a.size
    use_full = mode == "full" or (mode == "auto" and size <= AUTO_FULL_MAX)
    if use_full:
        report.mode = "full"
        _fill_from_elements(report, target, np.arange(size), L0, batch_size)
        return
    report.mode = "fast"
    if _probe_all(report, target, rng, probes, probe):
        report.passed = True
        return
    if size <= FULL_RERUN_MAX:
        report.mode = "fast+full"
        _fill_from_elements(report, target, np.arange(size), L0, batch_size)
    else:
        report.mode = "fast+search"
        _search(report, target, rng, L0, probe, batch_size)
