"""One call per layer: check_layer compares every gradient of a backward pass with centered
differences, runs the side checks, and returns a CheckReport that explains what it found.

For a layer with upstream gradient dout, the function differentiated numerically is the scalar

    L(x_1, ..., x_k) = sum(forward(x_1, ..., x_k) * dout)

whose gradient is exactly what backward(dout, cache) returns. All differences are taken in
float64 on private copies of the inputs (float32 inputs are upcast, with a GradcheckWarning).

Tolerance, per element:  |a - n| <= atol + rtol * max(|a|, |n|)
    a: analytic, n: numeric. The automatic atol is the rounding noise of the difference quotient,
    ROUNDING_SAFETY * eps * S / h, with S = sum(|out * dout|) (for a loss, max(1, |loss|)).
Step: h = H_REL * max(1, |x_i|) per element (H_REL = cbrt(eps), which balances the O(h^2)
    truncation error against the O(eps / h) rounding error), or a fixed h when given.

Modes:
    "full": every element, 2 forward calls each.
    "fast": k probes u (signed: Rademacher or Gaussian, from a generator seeded by seed) compare
        (L(x + t v) - L(x - t v)) / 2t with <analytic, v>, v = u * max(1, |x|), with the same
        tolerance form (atol from rounding noise, never from sums of |u|); cost 2k calls per input
        whatever its size. A failing probe reruns the full check for that input (or, above
        FULL_RERUN_MAX elements, a bisection search with probes on halves down to blocks of
        SEARCH_LEAF elements), so the report still names the worst element.
    "auto": full for inputs of at most AUTO_FULL_MAX elements, fast above.

Kinks: where the one-sided differences (L(x + h) - L(x)) / h and (L(x) - L(x - h)) / h disagree
(by more than KINK_REL of their size, which a smooth function's do not), the element sits on a
kink (ReLU at 0, a max tie, the SVM hinge): it is listed as a kink, not counted as a mismatch.
The analytic value there is normally one of the two slopes or between them; when it is not
(several kinks meet, as when a whole row of ReLU inputs is exactly 0), the report says so.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np

from gradcheck.report import CheckReport, InputReport, SideCheck, gradient_hints, shape_hint

__all__ = ["check_layer", "check_loss", "check_model", "GradcheckWarning", "H_REL", "RTOL",
           "ROUNDING_SAFETY", "AUTO_FULL_MAX", "FULL_RERUN_MAX", "SEARCH_LEAF", "DEFAULT_PROBES",
           "KINK_REL", "LINEARITY_RTOL", "default_step"]

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
# backward(2 d1 - 3 d2) must equal 2 backward(d1) - 3 backward(d2) to this accuracy, relative to
# the largest gradient entries (rounding alone gives some 1e-15).
LINEARITY_RTOL = 1e-9


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


# ----------------------------------------------------------------------------- arguments


def _check_settings(fn, mode, seed, h, rtol, atol, probes, probe):
    if mode not in ("auto", "full", "fast"):
        raise ValueError(f"{fn}: mode must be 'auto', 'full' or 'fast', got {mode!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{fn}: seed must be an int, got {seed!r}.")
    if h is not None and (isinstance(h, bool) or not isinstance(h, numbers.Real) or not (np.isfinite(h) and h > 0)):
        raise ValueError(f"{fn}: h must be None (automatic) or a positive finite step, got {h!r}.")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is None and name == "atol":
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {value!r}.")
    if isinstance(probes, bool) or not isinstance(probes, numbers.Integral) or probes < 2:
        raise ValueError(f"{fn}: probes must be an int >= 2, got {probes!r}.")
    if probe not in ("rademacher", "gaussian"):
        raise ValueError(f"{fn}: probe must be 'rademacher' or 'gaussian', got {probe!r}.")


def _work_copies(fn, inputs):
    """float64 C-contiguous copies of the inputs, and the names of those that were not float64."""
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


def _leaves(out):
    """The arrays of a forward output: one array, a scalar, or a tuple/list of them."""
    if isinstance(out, (tuple, list)):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def _like(out, leaves):
    """Rebuild out's structure from a list of arrays."""
    return tuple(leaves) if isinstance(out, (tuple, list)) else leaves[0]


def _snapshot(obj):
    return copy.deepcopy(obj)


def _differences(before, after, path):
    """Paths at which after differs from the snapshot before (arrays compared bitwise)."""
    if isinstance(before, (tuple, list)):
        if not isinstance(after, (tuple, list)) or len(before) != len(after):
            return [path]
        return [p for k, (b, a) in enumerate(zip(before, after)) for p in _differences(b, a, f"{path}[{k}]")]
    if isinstance(before, dict):
        if not isinstance(after, dict) or before.keys() != after.keys():
            return [path]
        return [p for k in before for p in _differences(before[k], after[k], f"{path}[{k!r}]")]
    if isinstance(before, (np.ndarray, np.generic)):
        after = np.asarray(after)
        if before.shape != after.shape or not np.array_equal(before, after, equal_nan=True):
            return [path]
        return []
    try:
        return [] if before == after else [path]
    except Exception:  # objects without a usable ==: judge by identity of their snapshot
        return []


# ----------------------------------------------------------------------------- numerics


class _Target:
    """One array being checked: perturbed in place, its objective re-evaluated each time."""

    def __init__(self, name, x, analytic, objective, noise, h, rtol, atol, counter):
        self.name, self.x, self.objective = name, x, objective
        self.a = np.asarray(analytic, dtype=np.float64).reshape(-1)
        self.flat = x.reshape(-1)  # a view: x is C-contiguous
        self.noise, self.h, self.rtol, self.atol, self.counter = noise, h, rtol, atol, counter

    def _eval(self):
        self.counter[0] += 1
        return float(self.objective())

    def full(self, idx, L0):
        """Per-element comparison at flat indices idx: numeric, diff, allowed, and two masks: kinks,
        and kinks where the analytic value is outside the one-sided slopes (several kinks meet)."""
        n, dp, dm, steps = (np.empty(idx.size) for _ in range(4))
        for k, i in enumerate(idx):
            old = self.flat[i]
            step = self.h if self.h is not None else H_REL * max(1.0, abs(old))
            up, down = old + step, old - step
            self.flat[i] = up
            Lp = self._eval()
            self.flat[i] = down
            Lm = self._eval()
            self.flat[i] = old
            hp, hm = up - old, old - down  # the steps actually taken, after rounding
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
        """One directional comparison along u (zero outside subset): (analytic, numeric, allowed)."""
        scale = np.ones_like(self.flat) if self.h is not None else np.maximum(1.0, np.abs(self.flat))
        v = u * scale
        if subset is not None:
            mask = np.zeros(v.size, dtype=bool)
            mask[subset] = True
            v = np.where(mask, v, 0.0)
        t = self.h if self.h is not None else H_REL
        x0 = self.flat.copy()
        try:
            self.flat[...] = x0 + t * v
            Lp = self._eval()
            self.flat[...] = x0 - t * v
            Lm = self._eval()
        finally:
            self.flat[...] = x0
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


def _rel(a, n):
    return np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))


def _fill_from_elements(report, target, idx, L0, batch_size):
    """Compare elements idx one by one and write the outcome into report."""
    n, diff, allowed, kink, outside = target.full(idx, L0)
    a = target.a[idx]
    bad = (diff > allowed) & ~kink
    report.checked += int(idx.size)
    report.mismatches = int(bad.sum())
    smooth = ~kink
    rel = _rel(a, n)
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
    report.max_rel_error = float(_rel(a, n).max())
    report.worst_analytic, report.worst_numeric = float(a[k]), float(n[k])
    report.worst_abs_error, report.worst_rel_error = float(diff[k]), float(_rel(a[k], n[k]))
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


def _check_target(report, target, mode, rng, L0, probes, probe, batch_size):
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


# ----------------------------------------------------------------------------- layers


def _describe_h(h):
    return f"{h:g}" if h is not None else "cbrt(eps)*max(1,|x|)"


def _upcast_warning(fn, upcast):
    warnings.warn(f"{fn}: {', '.join(upcast)} not float64; checking float64 copies (in single precision, "
                  f"relative errors of 1e-2 are normal even for correct code).", GradcheckWarning, stacklevel=3)


def check_layer(forward, backward, inputs, *, params=None, dout=None, seed=0, h=None, mode="auto",
                rtol=RTOL, atol=None, probes=DEFAULT_PROBES, probe="rademacher"):
    """Check a layer's backward pass against centered differences, and its contract.

    Args:
        forward: callable(*arrays, **params) -> (out, cache); out is an array, a scalar, or a
            tuple of arrays.
        backward: callable(dout, cache) -> the gradients of the arrays, in inputs' order (one
            array for a single input).
        inputs: dict argument name -> float array, in forward's positional order.
        params: dict of keyword arguments that are not differentiated (conv_param, labels, ...).
        dout: the upstream gradient (shaped like out); default: standard normal from seed.
        seed: seeds dout and the probes (a private generator; numpy's global state is untouched).
        h: a fixed step for every element; None for H_REL * max(1, |x_i|).
        mode: "auto", "full" or "fast" (see the module docstring).
        rtol: relative tolerance.
        atol: absolute tolerance; None for the rounding noise of the difference quotient.
        probes: probes per input in fast mode (>= 2).
        probe: "rademacher" (+-1) or "gaussian" probe entries.

    Returns:
        CheckReport: true when every gradient matched (kinks excepted) and every side check passed.

    Shape:
        inputs[name]: any shape S_name; dout: out's shape
    """
    fn = "check_layer"
    if not callable(forward) or not callable(backward):
        raise TypeError(f"{fn}: forward and backward must be callables, got {type(forward).__name__} and "
                        f"{type(backward).__name__}.")
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"{fn}: params must be a dict of keyword arguments or None, got {type(params).__name__}.")
    _check_settings(fn, mode, seed, h, rtol, atol, probes, probe)
    params = dict(params or {})
    work, upcast = _work_copies(fn, inputs)
    if upcast:
        _upcast_warning(fn, upcast)
    names = list(work)
    values = [work[n] for n in names]
    counter = [0]
    target_name = f"{getattr(forward, '__name__', 'forward')} / {getattr(backward, '__name__', 'backward')}"

    def run_forward(vals):
        counter[0] += 1
        result = forward(*vals, **params)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"{fn}: forward must return (out, cache), got {type(result).__name__}"
                            f"{f' of length {len(result)}' if isinstance(result, tuple) else ''}.")
        return result

    backward_calls = [0]

    def run_backward(d, cache):
        backward_calls[0] += 1
        grads = backward(d, cache)
        return grads if isinstance(grads, tuple) else (grads,)

    sides = []
    saved_inputs = _snapshot(values)
    out, cache = run_forward(values)
    changed = [names[k] for k in range(len(names)) if _differences(saved_inputs[k], values[k], names[k])]
    sides.append(SideCheck("forward leaves its inputs alone", not changed, "changed: " + ", ".join(changed) if changed else ""))
    values = [a.copy() for a in saved_inputs]  # carry on from the original values either way
    work = dict(zip(names, values))
    out_leaves = [o.astype(np.float64) for o in _leaves(out)]
    again = [o.astype(np.float64) for o in _leaves(run_forward(values)[0])]
    same = len(again) == len(out_leaves) and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(again, out_leaves))
    sides.append(SideCheck("forward is deterministic", same,
                           "" if same else "two calls on the same inputs differ (dropout without a fixed seed?)"))

    rng = np.random.default_rng((int(seed), SEED_SALT))
    if dout is None:
        d_leaves = [rng.standard_normal(o.shape) for o in out_leaves]
    else:
        d_leaves = [np.asarray(d, dtype=np.float64) for d in _leaves(dout)]
        shapes_out, shapes_d = [o.shape for o in out_leaves], [d.shape for d in d_leaves]
        if shapes_out != shapes_d:
            raise ValueError(f"{fn}: dout must be shaped like forward's output {shapes_out}, got {shapes_d}.")
    d_struct = _like(out, d_leaves)
    noise = EPS * float(sum(np.sum(np.abs(o * d)) for o, d in zip(out_leaves, d_leaves)))

    saved_cache, saved_dout = _snapshot(cache), _snapshot(d_struct)
    grads = run_backward(d_struct, cache)
    sides.append(SideCheck("backward returns one gradient per input", len(grads) == len(names),
                           "" if len(grads) == len(names) else f"got {len(grads)} for inputs {names}"))
    changed = _differences(saved_dout, d_struct, "dout")
    sides.append(SideCheck("backward leaves dout alone", not changed, "changed: " + ", ".join(changed) if changed else ""))
    changed = _differences(saved_cache, cache, "cache")
    sides.append(SideCheck("backward leaves the cache alone", not changed, "changed: " + ", ".join(changed) if changed else ""))
    changed = [names[k] for k in range(len(names)) if _differences(saved_inputs[k], values[k], names[k])]
    sides.append(SideCheck("backward leaves the inputs alone", not changed, "changed: " + ", ".join(changed) if changed else ""))
    d_struct = _snapshot(saved_dout)
    cache = saved_cache

    shape_problems, hints_by_name = [], {}
    batch_size = values[0].shape[0] if values[0].ndim else None
    for name, v, g in zip(names, values, grads):
        if np.shape(g) != v.shape:
            shape_problems.append(f"d{name} is {np.shape(g)}, {name} is {v.shape}")
            hint = shape_hint(name, np.shape(g), v.shape, batch_size)
            if hint:
                hints_by_name[name] = hint
    sides.append(SideCheck("gradients have their inputs' shapes", not shape_problems, "; ".join(shape_problems)))

    if upcast:
        originals = [np.array(inputs[n], copy=True) if isinstance(inputs[n], np.ndarray) else inputs[n] for n in names]
        o_out, o_cache = run_forward(originals)
        o_leaves = _leaves(o_out)
        o_d = _like(o_out, [d.astype(o.dtype) if np.issubdtype(o.dtype, np.floating) else d
                            for d, o in zip(d_leaves, o_leaves)])
        o_grads = run_backward(o_d, o_cache)
        dtype_pairs = [(n, np.asarray(inputs[n]).dtype, np.asarray(g).dtype) for n, g in zip(names, o_grads)]
    else:
        dtype_pairs = [(n, np.dtype(np.float64), np.asarray(g).dtype) for n, g in zip(names, grads)]
    wrong = [f"d{n} is {got}, {n} is {want}" for n, want, got in dtype_pairs if got != want]
    sides.append(SideCheck("gradients keep their inputs' dtype", not wrong, "; ".join(wrong)))

    grads2 = run_backward(_snapshot(d_struct), _snapshot(cache))
    same = len(grads2) == len(grads) and all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
                                             for a, b in zip(grads, grads2))
    sides.append(SideCheck("backward is deterministic", same, "" if same else "two calls on the same dout and cache differ"))

    zero = run_backward(_like(out, [np.zeros_like(d) for d in d_leaves]), _snapshot(cache))
    nonzero = [f"d{n}" for n, g in zip(names, zero) if np.any(np.asarray(g) != 0)]
    sides.append(SideCheck("zero dout gives zero gradients", not nonzero,
                           f"{', '.join(nonzero)} not zero: backward does not scale with dout (ignores it?)"
                           if nonzero else ""))

    d2_leaves = [rng.standard_normal(d.shape) for d in d_leaves]
    g2 = run_backward(_like(out, d2_leaves), _snapshot(cache))
    mix = run_backward(_like(out, [2 * a - 3 * b for a, b in zip(d_leaves, d2_leaves)]), _snapshot(cache))
    nonlinear = []
    # A gradient that is exactly zero in theory (a bias before batchnorm) is rounding residue of
    # terms the size of the other gradients, so the bound also has a share of the overall scale.
    overall = max((float(np.abs(np.asarray(g, dtype=np.float64)).max(initial=0)) for g in (*grads, *g2)), default=0.0)
    for n, g1, gb, gm in zip(names, grads, g2, mix):
        g1, gb, gm = (np.asarray(t, dtype=np.float64) for t in (g1, gb, gm))
        if g1.shape == gb.shape == gm.shape:
            # Scaled by the largest entries, not elementwise: backward passes that subtract means
            # (batchnorm) produce small entries from large terms, with rounding to match.
            bound = LINEARITY_RTOL * (2 * np.abs(g1).max(initial=0) + 3 * np.abs(gb).max(initial=0) + overall)
            if np.any(np.abs(gm - (2 * g1 - 3 * gb)) > bound):
                nonlinear.append(f"d{n}")
    sides.append(SideCheck("backward is linear in dout", not nonlinear,
                           f"{', '.join(nonlinear)}: backward(2 d1 - 3 d2) != 2 backward(d1) - 3 backward(d2)"
                           if nonlinear else ""))
    sides.append(SideCheck("inputs are float64", True,
                           f"{', '.join(upcast)} upcast from single precision for the check" if upcast else ""))

    reports = []
    for i, (name, g) in enumerate(zip(names, grads)):
        report = InputReport(name=name, shape=values[i].shape)
        reports.append(report)
        if np.shape(g) != values[i].shape:
            report.passed, report.note = False, f"not compared: d{name} has shape {np.shape(g)}, expected {values[i].shape}"
            if name in hints_by_name:
                report.hints.append(hints_by_name[name])
            continue

        def objective(i=i):
            return sum(float(np.sum(np.asarray(o, dtype=np.float64) * d))
                       for o, d in zip(_leaves(forward(*values, **params)[0]), d_leaves))

        target = _Target(name, values[i], g, objective, noise, h, rtol, atol, counter)
        L0 = target._eval()
        _check_target(report, target, mode, rng, L0, probes, probe, batch_size)
    _hint_from_sides(reports, sides)
    return CheckReport(target=target_name, inputs=reports, side_checks=sides, seed=int(seed), h=_describe_h(h),
                       mode=mode, rtol=rtol, atol="auto (rounding noise)" if atol is None else f"{atol:g}",
                       forward_evaluations=counter[0], backward_calls=backward_calls[0], upcast=upcast)


def _hint_from_sides(reports, sides):
    failed = {s.name for s in sides if not s.passed}
    if "zero dout gives zero gradients" in failed or "backward is linear in dout" in failed:
        for r in reports:
            if not r.passed:
                r.hints.append("backward does not use dout as a factor: multiply the local gradient by dout")


def check_loss(loss, inputs, *, params=None, **settings):
    """check_layer for a loss function returning (loss, dx), such as softmax_loss and svm_loss.

    Args:
        loss: callable(*arrays, **params) -> (loss value, gradient of the loss w.r.t. the first array).
        inputs: dict with the one differentiated array, e.g. {"x": scores}.
        params: the other arguments, e.g. {"y": labels}.
        **settings: as for check_layer (seed, h, mode, rtol, atol, probes, probe).

    Returns:
        CheckReport.

    Shape:
        x: (N, C); y: (N,)
    """
    if not callable(loss):
        raise TypeError(f"check_loss: loss must be a callable returning (loss, dx), got {type(loss).__name__}.")
    if not isinstance(inputs, dict) or len(inputs) != 1:
        raise TypeError(f"check_loss: inputs must be a dict with exactly one array (the scores), got {inputs!r:.80}.")

    def forward(*arrays, **kw):
        value, dx = loss(*arrays, **kw)
        return np.float64(value), dx

    def backward(dout, dx):
        return dx * dout

    forward.__name__ = getattr(loss, "__name__", "loss")
    backward.__name__ = "its gradient"
    return check_layer(forward, backward, inputs, params=params, **settings)


# ----------------------------------------------------------------------------- models


def check_model(model, X, y, *, names=None, seed=0, h=None, mode="auto", rtol=RTOL, atol=None,
                probes=DEFAULT_PROBES, probe="rademacher"):
    """Check a model's loss gradients (model.loss(X, y) -> (loss, grads)) for every parameter.

    The model is left as it was: its parameters, dtype and normalization state are restored.
    float32 models are checked with float64 copies of their parameters and X (GradcheckWarning).

    Args:
        model: an object with a params dict and loss(X, y).
        X, y: a small batch and its integer labels.
        names: the parameters to check (default: all, in params order).
        seed, h, mode, rtol, atol, probes, probe: as for check_layer.

    Returns:
        CheckReport with one row per parameter.

    Shape:
        X: (N, ...); y: (N,)
    """
    fn = "check_model"
    if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
        raise TypeError(f"{fn}: model must have a params dict and a loss(X, y) method, got {type(model).__name__}.")
    _check_settings(fn, mode, seed, h, rtol, atol, probes, probe)
    all_names = list(model.params)
    if names is None:
        names = all_names
    unknown = [n for n in names if n not in model.params]
    if unknown:
        raise ValueError(f"{fn}: names {unknown} are not parameters of the model; it has {all_names}.")
    original_params = model.params
    original_dtype = getattr(model, "dtype", None)
    state_attrs = [a for a in ("norm_params", "bn_params", "dropout_rng") if hasattr(model, a)]
    saved_state = {a: _snapshot(getattr(model, a)) for a in state_attrs}
    upcast = [n for n, p in original_params.items() if np.asarray(p).dtype != np.float64]
    if upcast:
        _upcast_warning(fn, upcast)
    counter = [0]
    X64 = np.array(X, dtype=np.float64) if np.issubdtype(np.asarray(X).dtype, np.floating) else np.array(X)
    try:
        model.params = {k: np.array(v, dtype=np.float64, order="C", copy=True) for k, v in original_params.items()}
        if upcast and original_dtype is not None:
            model.dtype = np.dtype(np.float64)
            for attr in ("norm_params", "bn_params"):
                for param in getattr(model, attr, None) or []:
                    for key in ("running_mean", "running_var"):
                        if isinstance(param.get(key), np.ndarray):
                            param[key] = param[key].astype(np.float64)

        def loss_and_grads():
            counter[0] += 1
            return model.loss(X64, y)

        def objective():
            return model.loss(X64, y)[0]

        sides = []
        saved = _snapshot(model.params)
        X_saved, y_saved = X64.copy(), np.array(y, copy=True)
        loss0, grads = loss_and_grads()
        changed = _differences(saved, model.params, "params") + _differences(X_saved, X64, "X") + \
            _differences(y_saved, np.asarray(y), "y")
        sides.append(SideCheck("loss leaves the parameters and data alone", not changed,
                               "changed: " + ", ".join(changed) if changed else ""))
        loss1, grads1 = loss_and_grads()
        same = loss1 == loss0 and grads.keys() == grads1.keys() and all(
            np.array_equal(grads[k], grads1[k], equal_nan=True) for k in grads)
        sides.append(SideCheck("loss is deterministic", same,
                               "" if same else "two calls differ (dropout in a net built with seed=None?)"))
        keys_ok = set(grads) == set(model.params)
        sides.append(SideCheck("grads has the keys of params", keys_ok, "" if keys_ok else
                               f"missing {sorted(set(model.params) - set(grads))}, extra {sorted(set(grads) - set(model.params))}"))
        bad_shapes = [f"d{k} is {np.shape(grads[k])}, {k} is {model.params[k].shape}" for k in names
                      if k in grads and np.shape(grads[k]) != model.params[k].shape]
        sides.append(SideCheck("gradients have their parameters' shapes", not bad_shapes, "; ".join(bad_shapes)))
        bad_dtypes = [f"d{k} is {np.asarray(grads[k]).dtype}" for k in names
                      if k in grads and np.asarray(grads[k]).dtype != np.float64]
        sides.append(SideCheck("gradients keep their parameters' dtype", not bad_dtypes, "; ".join(bad_dtypes)))
        sides.append(SideCheck("parameters are float64", True,
                               f"{', '.join(upcast)} upcast from single precision for the check" if upcast else ""))

        noise = EPS * max(1.0, abs(float(loss0)))
        rng = np.random.default_rng((int(seed), SEED_SALT))
        batch_size = int(np.shape(X)[0]) if np.ndim(X) else None
        reports = []
        for name in names:
            report = InputReport(name=name, shape=model.params[name].shape)
            reports.append(report)
            if name not in grads or np.shape(grads[name]) != model.params[name].shape:
                report.passed = False
                report.note = "not compared: no gradient of the right shape"
                continue
            target = _Target(name, model.params[name], grads[name], objective, noise, h, rtol, atol, counter)
            _check_target(report, target, mode, rng, float(loss0), probes, probe, batch_size)
    finally:
        model.params = original_params
        if original_dtype is not None:
            model.dtype = original_dtype
        for attr, value in saved_state.items():
            setattr(model, attr, value)
    name = type(model).__name__
    return CheckReport(target=f"{name}.loss", inputs=reports, side_checks=sides, seed=int(seed), h=_describe_h(h),
                       mode=mode, rtol=rtol, atol="auto (rounding noise)" if atol is None else f"{atol:g}",
                       forward_evaluations=counter[0], backward_calls=0, upcast=upcast)
