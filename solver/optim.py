"""First-order update rules.

Every rule has the same signature:

    next_w, config = rule(w, dw, config=None)

`w` is never modified; `next_w` is a new array of w's shape and dtype. `config` is a dict of
hyperparameters; missing ones are filled with the course defaults (``setdefault``), and the
rule's state (``velocity``, ``cache``, ``m``, ``v``, ``t``) lives in it too, so the same dict
must be passed back on the next step. The dict is updated in place and returned; so are its
state arrays (created by the rule on the first step), which saves a full-size temporary per
term on every step.

Notation in the equations: lr is the learning rate, mu the momentum, rho the decay rate,
eps the epsilon, and all arithmetic on arrays is elementwise.
"""

from __future__ import annotations

import math

import numpy as np

from layers.validate import float_array, integer, real_number

__all__ = ["sgd", "sgd_momentum", "nesterov", "rmsprop", "adam", "adamw", "UPDATE_RULES", "get_update_rule"]


def _start(fn: str, w, dw, config, defaults: dict) -> dict:
    """Validate w, dw and config, fill defaults, and check every hyperparameter."""
    w = float_array(fn, "w", w)
    dw = float_array(fn, "dw", dw, dtype=w.dtype)
    if dw.shape != w.shape:
        raise ValueError(f"{fn}: dw has shape {dw.shape} but w has shape {w.shape}; they must match.")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"{fn}: config must be a dict or None, got {type(config).__name__}.")
    for key, value in defaults.items():
        config.setdefault(key, value)
    checks = {
        "learning_rate": dict(low=0.0),
        "momentum": dict(low=0.0, high=1.0, high_open=True),
        "decay_rate": dict(low=0.0, high=1.0, high_open=True),
        "beta1": dict(low=0.0, high=1.0, high_open=True),
        "beta2": dict(low=0.0, high=1.0, high_open=True),
        "epsilon": dict(low=0.0),
        "weight_decay": dict(low=0.0),
    }
    for key in defaults:
        if key in ("learning_rate", "epsilon"):
            # One wording for every value outside (0, inf): negative, zero, inf or nan.
            value = config[key]
            try:
                positive = real_number(fn, f"config[{key!r}]", value, low=0.0) > 0
            except ValueError:
                positive = False
            if not positive:
                raise ValueError(f"{fn}: config[{key!r}] must be a finite number > 0, got {float(value)!r}.")
        if key in checks:
            # Stored back as a Python float: a numpy float64 scalar would upcast float32 weights.
            config[key] = real_number(fn, f"config[{key!r}]", config[key], **checks[key])
    return config


def _state(fn: str, config: dict, key: str, w: np.ndarray) -> np.ndarray:
    """The state array config[key], created as zeros like w, and checked against w."""
    state = config.get(key)
    if state is None:
        return np.zeros_like(w)
    if not isinstance(state, np.ndarray) or state.shape != w.shape or state.dtype != w.dtype:
        got = f"shape {state.shape}, dtype {state.dtype}" if isinstance(state, np.ndarray) else type(state).__name__
        raise ValueError(
            f"{fn}: config[{key!r}] must be an array of w's shape {w.shape} and dtype {w.dtype}, got {got}; "
            f"use one config dict per parameter."
        )
    return state


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent.

        w <- w - lr * dw

    Args:
        w: parameters.
        dw: gradient of the loss with respect to w.
        config: learning_rate (default 1e-2).

    Returns:
        (next_w, config).

    Shape:
        w, dw, next_w: any shape S, all equal
    """
    config = _start("sgd", w, dw, config, {"learning_rate": 1e-2})
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

        velocity <- mu * velocity - lr * dw
        w <- w + velocity

    Args:
        w: parameters.
        dw: gradient of the loss with respect to w.
        config: learning_rate (1e-2), momentum (0.9, in [0, 1)); state velocity (zeros).

    Returns:
        (next_w, config).

    Shape:
        w, dw, next_w, velocity: S
    """
    fn = "sgd_momentum"
    config = _start(fn, w, dw, config, {"learning_rate": 1e-2, "momentum": 0.9})
    # BEGIN SOLUTION
    v = config["velocity"] = _state(fn, config, "velocity", w)
    v *= config["momentum"]
    v -= config["learning_rate"] * dw
    return w + v, config
    # END SOLUTION


def nesterov(w, dw, config=None):
    """Nesterov momentum, in the form that keeps w at the look-ahead point.

        velocity_prev = velocity
        velocity <- mu * velocity - lr * dw
        w <- w - mu * velocity_prev + (1 + mu) * velocity

    Args:
        w: parameters.
        dw: gradient of the loss with respect to w.
        config: learning_rate (1e-2), momentum (0.9, in [0, 1)); state velocity (zeros).

    Returns:
        (next_w, config).

    Shape:
        w, dw, next_w, velocity: S
    """
    fn = "nesterov"
    config = _start(fn, w, dw, config, {"learning_rate": 1e-2, "momentum": 0.9})
    # BEGIN SOLUTION
    mu = config["momentum"]
    v = config["velocity"] = _state(fn, config, "velocity", w)
    next_w = w - mu * v  # the -mu * velocity_prev term, before v is updated in place
    v *= mu
    v -= config["learning_rate"] * dw
    next_w += (1 + mu) * v
    return next_w, config
    # END SOLUTION


def rmsprop(w, dw, config=None):
    """RMSProp: scale each step by a running average of squared gradients.

        cache <- rho * cache + (1 - rho) * dw^2
        w <- w - lr * dw / (sqrt(cache) + eps)

    Args:
        w: parameters.
        dw: gradient of the loss with respect to w.
        config: learning_rate (1e-2), decay_rate rho (0.99), epsilon (1e-8); state cache (zeros).

    Returns:
        (next_w, config).

    Shape:
        w, dw, next_w, cache: S
    """
    fn = "rmsprop"
    config = _start(fn, w, dw, config, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8})
    # BEGIN SOLUTION
    rho = config["decay_rate"]
    cache = config["cache"] = _state(fn, config, "cache", w)
    cache *= rho
    cache += (1 - rho) * (dw * dw)
    step = np.sqrt(cache)
    step += config["epsilon"]
    np.divide(dw, step, out=step)
    step *= config["learning_rate"]
    return np.subtract(w, step, out=step), config
    # END SOLUTION


def _adam_step(fn: str, w, dw, config):
    """lr * m_hat / (sqrt(v_hat) + eps), as a new array; updates m, v (in place) and t.

    Computed in the efficient form of Kingma and Ba (section 2), with both bias corrections
    folded into two scalars, which is algebraically the same:
        lr * m_hat / (sqrt(v_hat) + eps) = lr_t * m / (sqrt(v) + eps * sqrt(1 - beta2^t)),
        lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).
    """
    b1, b2 = config["beta1"], config["beta2"]
    t = integer(fn, "config['t'] (steps taken)", config.get("t", 0), low=0)
    t = config["t"] = t + 1  # incremented before use, so the first step has t = 1
    # BEGIN SOLUTION
    m = config["m"] = _state(fn, config, "m", w)
    v = config["v"] = _state(fn, config, "v", w)
    m *= b1
    m += (1 - b1) * dw
    v *= b2
    sq = dw * dw
    sq *= 1 - b2
    v += sq
    root_c2 = math.sqrt(1 - b2**t)
    step = np.sqrt(v, out=sq)  # reuse the buffer
    step += config["epsilon"] * root_c2
    np.divide(m, step, out=step)
    step *= config["learning_rate"] * root_c2 / (1 - b1**t)
    return step
    # END SOLUTION


def adam(w, dw, config=None):
    """Adam (Kingma and Ba, 2015) with bias correction.

        t <- t + 1
        m <- beta1 * m + (1 - beta1) * dw
        v <- beta2 * v + (1 - beta2) * dw^2
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    Args:
        w: parameters.
        dw: gradient of the loss with respect to w.
        config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8);
            state m, v (zeros) and t (0).

    Returns:
        (next_w, config).

    Shape:
        w, dw, next_w, m, v: S
    """
    config = _start("adam", w, dw, config,
                    {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8})
    step = _adam_step("adam", w, dw, config)
    return np.subtract(w, step, out=step), config


def adamw(w, dw, config=None):
    """AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay.

    The decay shrinks w directly instead of entering dw, so Adam's scaling does not weaken it:

        (m, v, t, m_hat, v_hat as in adam)
        w <- w - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w)

    Args:
        w: parameters.
        dw: gradient of the loss with respect to w (without any L2 term).
        config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
            weight_decay (1e-2); state m, v (zeros) and t (0).

    Returns:
        (next_w, config).

    Shape:
        w, dw, next_w, m, v: S
    """
    config = _start("adamw", w, dw, config, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                             "epsilon": 1e-8, "weight_decay": 1e-2})
    step = _adam_step("adamw", w, dw, config)
    step += (config["learning_rate"] * config["weight_decay"]) * w
    return np.subtract(w, step, out=step), config


UPDATE_RULES = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "nesterov": nesterov,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
}


def get_update_rule(name):
    """Look up an update rule by name.

    Args:
        name: one of the keys of UPDATE_RULES, or a callable rule, returned as it is.

    Returns:
        The rule function.
    """
    if callable(name):
        return name
    if name not in UPDATE_RULES:
        raise ValueError(f"update_rule must be one of {sorted(UPDATE_RULES)} or a callable, got {name!r}.")
    return UPDATE_RULES[name]
