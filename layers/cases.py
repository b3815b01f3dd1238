"""Layer declarations: each family declares its cases once, beside its code.

A LayerCase names a forward/backward pair and says how to make valid inputs for it, at a given
size and dtype. Everything that runs layers generically reads these declarations and keeps no
list of its own:

- ``python -m gradcheck`` and the tests check every case at the "check" size in float64
  (gradcheck.registry; inputs drawn clear of the case's kinks);
- the graded tests grade every case declared ``graded=True`` against reference data that
  ``python -m grading make-reference`` builds from the same declaration (grading/reference.py);
- ``python -m benchmarks`` times every case declared ``bench=True`` at its "course" and
  "training" sizes in float32, next to PyTorch where the case names its equivalent and next to
  the matrix products alone where it names them (benchmarks/layers.py).

Adding a layer: write the pair in its family file, append a LayerCase to that file's CASES,
test what is particular to it in the family's test file, and add its row to docs/layers.md.

A case's ``make(rng, size, dtype)`` returns ``(inputs, params)``: inputs maps the forward's
differentiable arguments, in its positional order, to arrays of ``dtype``; params holds its
other arguments (labels, settings dicts), passed by keyword. The sizes:

- "check": a few dozen elements, for centered differences of every element;
- "course": the sizes of the course's notebooks;
- "training": the sizes of a training step on a real net.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["LayerCase", "SIZES", "ELEMENTWISE_SHAPES", "normal", "elementwise"]

SIZES = ("check", "course", "training")
KINDS = ("layer", "loss")
# (N, D) of the elementwise activations' cases at each size.
ELEMENTWISE_SHAPES = {"check": (4, 5), "course": (100, 100), "training": (256, 4096)}


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """One declared case of a layer pair.

    Attributes:
        name: unique name: the forward function's, plus a variant in parentheses when a family
            declares several cases of one forward ("conv_forward_fast (stride 2)").
        forward: the forward function; a loss returns (loss, dx) instead of (out, cache).
        backward: the backward function; None for a loss.
        make: callable(rng, size, dtype) -> (inputs, params); see the module docstring.
        kind: "layer" or "loss".
        kinks: callable(inputs, params) -> float, the distance from the inputs to the nearest
            kink in input units (None for a smooth layer).
        check: keyword settings for check_layer / check_loss (e.g. {"rtol": 1e-6}).
        torch: callable(torch, tensors, params) -> tensor, the PyTorch equivalent of forward's
            output, tensors mapping the input names to tensors (None when PyTorch has none).
        torch_exact: the PyTorch equivalent computes the same values (False for dropout, whose
            random mask differs): it is compared by the tests, not only timed by the benchmark.
        graded: graded against reference data by grading/graded_tests/test_declared.py; False for
            the cases that hand-written graded tests already cover.
        bench: timed by the layer benchmark at the course and training sizes.
        target: the benchmark's largest acceptable ours / PyTorch ratio (fwd+bwd), one number
            or a dict size -> number; None for no target.
        gemm: callable(inputs, params) -> (rows, inner, cols) when forward's work is one
            (rows, inner) @ (inner, cols) product: the benchmark then times that product and
            backward's two alone (the floor) and counts GFLOP/s.
    """

    name: str
    forward: Callable
    backward: Callable | None
    make: Callable
    kind: str = "layer"
    kinks: Callable | None = None
    check: Mapping = dataclasses.field(default_factory=dict)
    torch: Callable | None = None
    torch_exact: bool = True
    graded: bool = True
    bench: bool = True
    target: float | Mapping | None = None
    gemm: Callable | None = None

    def __post_init__(self):
        where = f"LayerCase({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"LayerCase: name must be a non-empty str, got {self.name!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}.")
        if not callable(self.forward) or not callable(self.make):
            raise TypeError(f"{where}: forward and make must be callables.")
        if (self.backward is None) != (self.kind == "loss"):
            raise ValueError(f"{where}: a loss has no backward and a layer needs one "
                             f"(kind {self.kind!r}, backward {self.backward!r}).")
        for field in ("kinks", "torch", "gemm"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise TypeError(f"{where}: {field} must be None or a callable, got {value!r}.")
        if not isinstance(self.check, Mapping):
            raise TypeError(f"{where}: check must be a dict of check_layer settings, got {self.check!r}.")
        for size, ratio in self._targets().items():
            if size not in SIZES or not isinstance(ratio, numbers.Real) or not ratio > 0:
                raise ValueError(f"{where}: target must be a positive number or a dict size -> positive number "
                                 f"with sizes in {SIZES}, got {self.target!r}.")

    def _targets(self) -> dict:
        if self.target is None:
            return {}
        if isinstance(self.target, Mapping):
            return dict(self.target)
        return dict.fromkeys(SIZES, self.target)

    def target_at(self, size: str) -> float | None:
        """The benchmark target ratio at size (None: no target)."""
        return self._targets().get(size)

    def build(self, size: str = "check", dtype=np.float64, seed: int = 0):
        """The case's (inputs, params) at size and dtype, from a generator seeded with seed.

        Raises:
            ValueError: size is not one of SIZES, or make returned inputs of another dtype.
        """
        if size not in SIZES:
            raise ValueError(f"{self.name}.build: size must be one of {SIZES}, got {size!r}.")
        dtype = np.dtype(dtype)
        inputs, params = self.make(np.random.default_rng(seed), size, dtype)
        return self.validated(inputs, params, dtype)

    def validated(self, inputs, params, dtype):
        """inputs and params as make returned them, after checking they are what the declaration promises."""
        if not isinstance(inputs, dict) or not inputs or not isinstance(params, dict):
            raise TypeError(f"{self.name}: make must return (inputs dict, params dict), got "
                            f"({type(inputs).__name__}, {type(params).__name__}).")
        wrong = {k: str(np.asarray(v).dtype) for k, v in inputs.items()
                 if not isinstance(v, np.ndarray) or v.dtype != dtype}
        if wrong:
            raise ValueError(f"{self.name}: make returned inputs {wrong}, expected {dtype} arrays.")
        return inputs, params

    @property
    def label(self) -> str:
        """The name without "_forward", with spaces: "conv_forward_fast" -> "conv fast"."""
        return self.name.replace("_forward", "").replace("_", " ")


def normal(rng, shape, dtype, *, scale=1.0, shift=0.0) -> np.ndarray:
    """shift + scale * a standard normal draw of shape, as dtype (drawn in float64 first, so the
    same seed gives the same values in float32 and float64, up to rounding).

    Shape:
        result: shape
    """
    return (shift + scale * rng.standard_normal(shape)).astype(dtype, copy=False)


def elementwise(scale=1.0, **params):
    """The make of an elementwise activation's case: x = scale * a standard normal draw of the
    size's ELEMENTWISE_SHAPES, and params (the same at every size).

    Args:
        scale: the spread of x (larger reaches further into a saturating function's tails).
        **params: the forward's other arguments (negative_slope=0.1, ...).

    Returns:
        make(rng, size, dtype) -> ({"x": array}, params).

    Shape:
        x: ELEMENTWISE_SHAPES[size]
    """
    def make(rng, size, dtype):
        return {"x": normal(rng, ELEMENTWISE_SHAPES[size], dtype, scale=scale)}, dict(params)
    return make
