"""One call per layer: check_layer compares every gradient of a backward pass with centered
differences, runs the side checks, and returns a CheckReport that explains what it found.

For a layer with upstream gradient dout, the function differentiated numerically is the scalar

    L(x_1, ..., x_k) = sum(forward(x_1, ..., x_k) * dout)

whose gradient is exactly what backward(dout, cache) returns. All differences are taken in
float64 on private copies of the inputs (float32 inputs are upcast, with a GradcheckWarning).

This module only orchestrates; the parts live beside it:
    gradcheck.engine    steps, tolerances, full / fast / auto modes, bisection, kinks
    gradcheck.contract  the side checks (purity, determinism, shapes, dtypes, linearity in dout)
    gradcheck.models    check_model and the model protocol
    gradcheck.report    CheckReport, and the hints read from the results

Tolerance, per element:  |a - n| <= atol + rtol * max(|a|, |n|), the automatic atol being
ROUNDING_SAFETY * eps * S / h with S = sum(|out * dout|) (for a loss, max(1, |loss|)).
Step: h = H_REL * max(1, |x_i|) per element, or a fixed h. See gradcheck.engine for the modes and
for how kinks (ReLU at 0, a max tie, the SVM hinge) are told apart from errors.

Shape letters: S_name is the shape of the input called name.
"""

from __future__ import annotations

import numpy as np

from gradcheck.contract import LINEARITY_RTOL, LayerContract, output_leaves
from gradcheck.engine import (
    AUTO_FULL_MAX,
    DEFAULT_PROBES,
    EPS,
    FULL_RERUN_MAX,
    H_REL,
    KINK_REL,
    ROUNDING_SAFETY,
    RTOL,
    SEARCH_LEAF,
    SEED_SALT,
    GradcheckWarning,
    Target,
    check_settings,
    compare,
    default_step,
    describe_atol,
    describe_h,
    warn_upcast,
    work_copies,
)
from gradcheck.models import check_model
from gradcheck.report import CheckReport, InputReport, hints_from_side_checks, shape_hint

__all__ = ["check_layer", "check_loss", "check_model", "GradcheckWarning", "H_REL", "RTOL",
           "ROUNDING_SAFETY", "AUTO_FULL_MAX", "FULL_RERUN_MAX", "SEARCH_LEAF", "DEFAULT_PROBES",
           "KINK_REL", "LINEARITY_RTOL", "default_step"]


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
        mode: "auto", "full" or "fast" (see gradcheck.engine).
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
    check_settings(fn, mode, seed, h, rtol, atol, probes, probe)
    params = dict(params or {})
    work, upcast = work_copies(fn, inputs)
    if upcast:
        warn_upcast(fn, upcast)
    names = list(work)
    layer = LayerContract(fn, forward, backward, names, work.values(), params)

    sides = layer.check_forward()
    rng = np.random.default_rng((int(seed), SEED_SALT))
    out_leaves = [o.astype(np.float64) for o in output_leaves(layer.out)]
    d_leaves = _dout_leaves(fn, dout, out_leaves, rng)
    noise = EPS * float(sum(np.sum(np.abs(o * d)) for o, d in zip(out_leaves, d_leaves)))
    originals = None
    if upcast:  # the dtype check runs on copies of the caller's own arrays
        originals = [np.array(inputs[n], copy=True) if isinstance(inputs[n], np.ndarray) else inputs[n] for n in names]
    sides += layer.check_backward(d_leaves, rng, originals)

    values = layer.values

    def objective():
        return sum(float(np.sum(np.asarray(o, dtype=np.float64) * d))
                   for o, d in zip(output_leaves(layer.forward(values)[0]), d_leaves))

    batch_size = values[0].shape[0] if values[0].ndim else None
    reports = []
    for name, x, g in zip(names, values, layer.grads):
        report = InputReport(name=name, shape=x.shape)
        reports.append(report)
        if np.shape(g) != x.shape:
            report.passed, report.note = False, f"not compared: d{name} has shape {np.shape(g)}, expected {x.shape}"
            hint = shape_hint(name, np.shape(g), x.shape, batch_size)
            if hint:
                report.hints.append(hint)
            continue
        target = Target(name, x, g, objective, noise, h, rtol, atol)
        compare(report, target, mode, rng, target.evaluate(), probes, probe, batch_size)
    side_hints = hints_from_side_checks(sides)
    for report in reports:
        if not report.passed:
            report.hints += side_hints
    target_name = f"{getattr(forward, '__name__', 'forward')} / {getattr(backward, '__name__', 'backward')}"
    return CheckReport(target=target_name, inputs=reports, side_checks=sides, seed=int(seed), h=describe_h(h),
                       mode=mode, rtol=rtol, atol=describe_atol(atol), forward_evaluations=layer.forward_calls,
                       backward_calls=layer.backward_calls, upcast=upcast)


def _dout_leaves(fn, dout, out_leaves, rng):
    """dout as float64 arrays, one per output array: drawn from rng when None, else checked against out."""
    if dout is None:
        return [rng.standard_normal(o.shape) for o in out_leaves]
    d_leaves = [np.asarray(d, dtype=np.float64) for d in output_leaves(dout)]
    shapes_out, shapes_d = [o.shape for o in out_leaves], [d.shape for d in d_leaves]
    if shapes_out != shapes_d:
        raise ValueError(f"{fn}: dout must be shaped like forward's output {shapes_out}, got {shapes_d}.")
    return d_leaves


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
