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
# The distances of the layers with kinks live beside the layers (their families' declarations),
# except relu's, which each activation's declaration computes inline.
from layers.gates import max_kink_distance
from layers.losses import svm_kink_distance
from layers.pooling import max_pool_kink_distance
from layers.validate import integer

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
        inputs: whatever draw returns; its float arrays' largest |value| sets the automatic h
    """
    if not callable(draw) or not callable(distance):
        raise TypeError("draw_clear_of_kinks: draw and distance must be callables.")
    max_draws = integer("draw_clear_of_kinks", "max_draws", max_draws, low=1)
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
    """The largest |value| of the float arrays in inputs (arrays, or dicts, tuples and lists of them)."""
    if isinstance(inputs, dict):
        return max((_largest(v) for v in inputs.values()), default=1.0)
    if isinstance(inputs, (tuple, list)):
        return max((_largest(v) for v in inputs), default=1.0)
    if isinstance(inputs, np.ndarray) and inputs.size and np.issubdtype(inputs.dtype, np.floating):
        return float(np.max(np.abs(inputs)))
    return 1.0


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
