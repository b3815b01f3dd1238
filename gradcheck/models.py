"""check_model: every parameter gradient of a model's loss against centered differences, through a
small model protocol.

The model protocol (what check_model uses, and all it uses):

    model.params            dict name -> float array. Required. During the check it is rebound
                            to a dict of float64 copies, perturbed in place; the original dict is
                            rebound at the end (its arrays are never written).
    model.loss(X, y)        -> (loss, grads), grads keyed like params. Required.
    model.state()           -> a snapshot of everything besides params that loss or set_dtype may
                            change (normalization running statistics and modes, the dropout
                            generator's position, the compute dtype), independent of later calls
                            and deep-copyable. Optional, together with load_state.
    model.load_state(s)     puts a snapshot from state() back. check_model calls it once, after
                            the check, so the model is left exactly as it was.
    model.set_dtype(dtype)  from now on compute in dtype: params, buffers and X cast to it, in
                            place (params rebound to a new dict of new arrays). Optional; needs
                            state()/load_state(), which must record the dtype, since the check
                            calls set_dtype(np.float64) and load_state restores the rest.

solver.nets (TwoLayerNet, FullyConnectedNet) and solver.cnn (ThreeLayerConvNet) implement all
of it. A model with only params and loss (a small class of your own, the grader's remote view
of a submission's net) is still checked: with float64 copies of its params, its other state not
restored, and, if its params were not float64, a second GradcheckWarning that its loss may still
compute in its own dtype. Half a protocol (state without load_state, set_dtype without state) is
refused with a TypeError, since the model could not be restored.

Shape letters: N batch.
"""

from __future__ import annotations

import warnings

import numpy as np

from gradcheck import contract as C
from gradcheck.engine import (
    DEFAULT_PROBES,
    EPS,
    RTOL,
    SEED_SALT,
    GradcheckWarning,
    Target,
    check_settings,
    compare,
    describe_atol,
    describe_h,
    warn_upcast,
)
from gradcheck.report import CheckReport, InputReport

__all__ = ["check_model", "model_protocol", "loss_leaves_params_and_data_alone", "loss_is_deterministic",
           "grads_have_the_keys_of_params"]


def model_protocol(model, fn="check_model"):
    """Which optional parts of the model protocol a model has (see the module docstring).

    Args:
        model: the model.
        fn: the caller, for error messages.

    Returns:
        (stateful, typed): whether it has state()/load_state(), and set_dtype().

    Raises:
        TypeError: no params dict or loss method, or half a protocol.
    """
    if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
        raise TypeError(f"{fn}: model must have a params dict and a loss(X, y) method, got {type(model).__name__}.")
    has = {m: callable(getattr(model, m, None)) for m in ("state", "load_state", "set_dtype")}
    if has["state"] != has["load_state"]:
        missing = "load_state" if has["state"] else "state"
        raise TypeError(f"{fn}: {type(model).__name__} has {'state' if has['state'] else 'load_state'}() but no "
                        f"{missing}(); define both (to be left as it was) or neither.")
    if has["set_dtype"] and not has["state"]:
        raise TypeError(f"{fn}: {type(model).__name__} has set_dtype() but no state()/load_state(), so its dtype "
                        f"could not be restored after the check; define them too.")
    return has["state"], has["set_dtype"]


def check_model(model, X, y, *, names=None, seed=0, h=None, mode="auto", rtol=RTOL, atol=None,
                probes=DEFAULT_PROBES, probe="rademacher"):
    """Check a model's loss gradients (model.loss(X, y) -> (loss, grads)) for every parameter.

    The model runs in float64 (float32 parameters are checked on float64 copies, with a
    GradcheckWarning) and is left as it was: parameters, dtype and state restored through the
    model protocol of this module's docstring.

    Args:
        model: an object with a params dict and loss(X, y), and optionally state(),
            load_state() and set_dtype().
        X, y: a small batch and its integer labels.
        names: the parameters to check (default: all, in params order).
        seed, h, mode, rtol, atol, probes, probe: as for check_layer.

    Returns:
        CheckReport with one row per parameter.

    Shape:
        X: (N, ...); y: (N,)
    """
    fn = "check_model"
    stateful, typed = model_protocol(model, fn)
    check_settings(fn, mode, seed, h, rtol, atol, probes, probe)
    all_names = list(model.params)
    if names is None:
        names = all_names
    unknown = [n for n in names if n not in model.params]
    if unknown:
        raise ValueError(f"{fn}: names {unknown} are not parameters of the model; it has {all_names}.")
    original_params = model.params
    saved_state = model.state() if stateful else None
    upcast = [n for n, p in original_params.items() if np.asarray(p).dtype != np.float64]
    if upcast:
        warn_upcast(fn, upcast)
        if not typed:
            warnings.warn(f"{fn}: {type(model).__name__} has no set_dtype(), so its loss may still compute in its "
                          f"own dtype; build it in float64 for a precise check.", GradcheckWarning, stacklevel=2)
    counter = [0]
    X64 = np.array(X, dtype=np.float64) if np.issubdtype(np.asarray(X).dtype, np.floating) else np.array(X)
    try:
        model.params = _float64_copies(original_params)
        if typed:
            model.set_dtype(np.float64)
            model.params = _float64_copies(model.params)
        sides, reports = _check(model, names, X, X64, y, counter, seed, h, mode, rtol, atol, probes, probe)
    finally:
        model.params = original_params
        if stateful:
            model.load_state(saved_state)
    return CheckReport(target=f"{type(model).__name__}.loss", inputs=reports, side_checks=sides, seed=int(seed),
                       h=describe_h(h), mode=mode, rtol=rtol, atol=describe_atol(atol),
                       forward_evaluations=counter[0], backward_calls=0, upcast=upcast)


def loss_leaves_params_and_data_alone(params_before, params, X_before, X, y_before, y):
    """SideCheck LOSS_LEAVES_ARGUMENTS: model.loss(X, y) changed neither the parameters nor X nor y.

    Shape:
        params_before[name], params[name]: the parameter's shape; X_before, X: (N, ...); y_before, y: (N,)
    """
    changed = C.differences(params_before, params, "params") + C.differences(X_before, X, "X") + \
        C.differences(y_before, y, "y")
    return C.SideCheck("loss leaves the parameters and data alone", not changed,
                       "changed: " + ", ".join(changed) if changed else "", C.LOSS_LEAVES_ARGUMENTS)


def loss_is_deterministic(first, second):
    """SideCheck LOSS_DETERMINISTIC: two (loss, grads) results of model.loss on one batch are equal bit for bit.

    Shape:
        grads[name]: the parameter's shape
    """
    (loss0, grads0), (loss1, grads1) = first, second
    same = loss1 == loss0 and grads0.keys() == grads1.keys() and all(
        np.array_equal(grads0[k], grads1[k], equal_nan=True) for k in grads0)
    detail = "" if same else "two calls differ (dropout in a net built with seed=None?)"
    return C.SideCheck("loss is deterministic", same, detail, C.LOSS_DETERMINISTIC)


def grads_have_the_keys_of_params(grads, params):
    """SideCheck GRADIENT_KEYS: the grads dict of model.loss has exactly the keys of model.params."""
    ok = set(grads) == set(params)
    return C.SideCheck("grads has the keys of params", ok, "" if ok else
                       f"missing {sorted(set(params) - set(grads))}, extra {sorted(set(grads) - set(params))}",
                       C.GRADIENT_KEYS)


def _float64_copies(params):
    return {k: np.array(v, dtype=np.float64, order="C", copy=True) for k, v in params.items()}


def _check(model, names, X, X64, y, counter, seed, h, mode, rtol, atol, probes, probe):
    """The side checks and the per-parameter comparison, on a model already in float64."""
    def loss_and_grads():
        counter[0] += 1
        return model.loss(X64, y)

    def objective():
        counter[0] += 1
        return model.loss(X64, y)[0]

    params = model.params
    saved = C.snapshot(params)
    X_saved, y_saved = X64.copy(), np.array(y, copy=True)
    loss0, grads = loss_and_grads()
    sides = [loss_leaves_params_and_data_alone(saved, params, X_saved, X64, y_saved, np.asarray(y)),
             loss_is_deterministic((loss0, grads), loss_and_grads()),
             grads_have_the_keys_of_params(grads, params)]
    present = [k for k in names if k in grads]
    sides.append(C.gradients_have_input_shapes(present, [params[k].shape for k in present],
                                               [grads[k] for k in present], what="parameters"))
    sides.append(C.gradients_keep_input_dtypes(present, [np.dtype(np.float64)] * len(present),
                                               [grads[k] for k in present], what="parameters"))

    noise = EPS * max(1.0, abs(float(loss0)))
    rng = np.random.default_rng((int(seed), SEED_SALT))
    batch_size = int(np.shape(X)[0]) if np.ndim(X) else None
    reports = []
    for name in names:
        report = InputReport(name=name, shape=params[name].shape)
        reports.append(report)
        if name not in grads or np.shape(grads[name]) != params[name].shape:
            report.passed = False
            report.note = "not compared: no gradient of the right shape"
            continue
        target = Target(name, params[name], grads[name], objective, noise, h, rtol, atol)
        compare(report, target, mode, rng, float(loss0), probes, probe, batch_size)
    return sides, reports
