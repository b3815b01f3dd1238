"""Inputs that stay clear of kinks, and how far common layers' inputs are from theirs.

A kink is a point where a layer is continuous but not differentiable: ReLU at 0, the max gate
at a tie, a max-pool window whose two largest values tie, the SVM hinge where a margin is 0.
A centered difference that straddles one measures the average of the two one-sided slopes, so
a correct backward pass seems wrong there. check_layer recognizes kinks; for a clean check,
draw inputs whose distance to every kink is several steps h:

    inputs = draw_clear_of_kinks(lambda rng: {"x": rng.standard_normal((4, 5))},
                                 lambda inp: relu_kink_distance(inp["x"]))

Shape letters: N batch, C channels or classes, H W image.
"""

from __future__ import annotations

import numbers

import numpy as np

from gradcheck.check import H_REL

__all__ = ["draw_clear_of_kinks", "relu_kink_distance", "max_kink_distance", "max_pool_kink_distance",
           "svm_kink_distance", "KINK_MARGIN", "MAX_DRAWS"]

# Inputs must be at least this many steps h from every kink.
KINK_MARGIN = 10
# Redraws before giving up.
MAX_DRAWS = 100


def draw_clear_of_kinks(draw, distance, *, margin=KINK_MARGIN, h=None, max_draws=MAX_DRAWS, seed=0):
    """Draw inputs until they are more than margin * h from every kink.

    Args:
        draw: callable(rng) -> inputs (any object, usually a dict of arrays), rng a numpy Generator.
        distance: callable(inputs) -> the smallest distance from the inputs to a kink, in input units.
        margin: required distance in steps.
        h: the step; None for check_layer's automatic one at the largest |x| of the inputs
            (H_REL * max(1, max |x|)).
        max_draws: redraws before raising.
        seed: seed of the private generator passed to draw.

    Returns:
        the first inputs clear of kinks.

    Raises:
        RuntimeError: no draw was clear after max_draws tries (the message gives the best distance).

    Shape:
        (whatever draw returns)
    """
    if not callable(draw) or not callable(distance):
        raise TypeError("draw_clear_of_kinks: draw and distance must be callables.")
    if isinstance(max_draws, bool) or not isinstance(max_draws, numbers.Integral) or max_draws < 1:
        raise ValueError(f"draw_clear_of_kinks: max_draws must be an int >= 1, got {max_draws!r}.")
    if not (isinstance(margin, numbers.Real) and margin > 0):
        raise ValueError(f"draw_clear_of_kinks: margin must be a positive number, got {margin!r}.")
    rng = np.random.default_rng(seed)
    best = -np.inf
    for _ in range(int(max_draws)):
        inputs = draw(rng)
        step = h if h is not None else H_REL * max(1.0, _largest(inputs))
        d = float(distance(inputs))
        if d > margin * step:
            return inputs
        best = max(best, d)
    raise RuntimeError(f"draw_clear_of_kinks: no draw in {max_draws} was more than {margin} * h = {margin * step:.2e} "
                       f"from a kink (best {best:.2e}); draw from a wider range or lower the margin.")


def _largest(inputs):
    values = inputs.values() if isinstance(inputs, dict) else (inputs if isinstance(inputs, (tuple, list)) else [inputs])
    sizes = [float(np.max(np.abs(v))) for v in values
             if isinstance(v, np.ndarray) and v.size and np.issubdtype(v.dtype, np.floating)]
    return max(sizes, default=1.0)


def relu_kink_distance(x):
    """Distance from x to ReLU's (and leaky ReLU's) kink at 0: min |x|.

    Args:
        x: the input.

    Returns:
        float (inf for an empty x).

    Shape:
        x: any
    """
    x = np.asarray(x, dtype=np.float64)
    return float(np.abs(x).min()) if x.size else float("inf")


def max_kink_distance(x, y):
    """Distance from (x, y) to the max gate's tie x == y: min |x - y| (broadcast as the gate does).

    Args:
        x, y: the gate's inputs.

    Returns:
        float.

    Shape:
        x, y: broadcastable
    """
    d = np.abs(np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64))
    return float(d.min()) if d.size else float("inf")


def max_pool_kink_distance(x, pool_param):
    """Distance to a tie in a max-pool window: the smallest gap between a window's two largest values.

    Args:
        x: the pooling input.
        pool_param: dict with "pool_height", "pool_width", "stride".

    Returns:
        float (inf when every window has one element).

    Shape:
        x: (N, C, H, W)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"max_pool_kink_distance: x must be (N, C, H, W), got shape {x.shape}.")
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param.get("stride", 1)
    windows = np.lib.stride_tricks.sliding_window_view(x, (ph, pw), axis=(2, 3))[:, :, ::s, ::s]
    flat = windows.reshape(*windows.shape[:4], ph * pw)  # (N, C, H', W', ph * pw)
    if flat.shape[-1] < 2:
        return float("inf")
    top2 = np.sort(flat, axis=-1)[..., -2:]
    return float((top2[..., 1] - top2[..., 0]).min())


def svm_kink_distance(x, y):
    """Distance to the SVM hinge: min over samples i and classes j != y_i of |x_ij - x_iy_i + 1|.

    Args:
        x: class scores.
        y: integer labels.

    Returns:
        float.

    Shape:
        x: (N, C); y: (N,)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"svm_kink_distance: x must be (N, C) and y (N,), got {x.shape} and {y.shape}.")
    margins = np.abs(x - x[np.arange(x.shape[0]), y][:, None] + 1.0)
    margins[np.arange(x.shape[0]), y] = np.inf
    return float(margins.min())
