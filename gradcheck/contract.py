"""The contract a layer keeps besides its numbers, as checks that return SideCheck results.

Each check function compares what it is given and returns one SideCheck: a stable ``code`` for
programs (hints and tests match on it), a ``name`` in words for the table, the verdict and a
``detail`` of what was found. The functions call nothing, so check_layer and the tests' harness
run them on calls of their own; LayerContract runs a layer pair through the whole contract,
counting its calls. The arguments mean the same everywhere:

    names   the inputs' names, in forward's order; names[k]'s gradient is d<names[k]>
    before  a snapshot (snapshot()) taken before the call; after: the live objects after it
    grads   backward's result as a tuple, grads[k] belonging to names[k]
    dout    an array or a tuple of arrays, shaped like forward's output

Shape letters: S_k is the shape of input names[k], S_out of forward's output (each array of it).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

__all__ = ["SideCheck", "LayerContract", "snapshot", "differences", "output_leaves", "like_output",
           "forward_leaves_inputs_alone", "forward_is_deterministic", "forward_keeps_dtype",
           "backward_returns_one_gradient_per_input", "backward_leaves_dout_alone", "backward_leaves_cache_alone",
           "backward_leaves_inputs_alone", "gradients_have_input_shapes", "gradients_keep_input_dtypes",
           "gradients_own_their_memory", "backward_is_deterministic", "zero_dout_gives_zero_gradients",
           "backward_is_linear_in_dout", "LINEARITY_RTOL"]

# backward(2 d1 - 3 d2) must equal 2 backward(d1) - 3 backward(d2) to this accuracy, relative to
# the largest gradient entries (rounding alone gives some 1e-15).
LINEARITY_RTOL = 1e-9

# The codes: one per property, stable whatever the wording of the names.
FORWARD_LEAVES_INPUTS = "forward_leaves_inputs"
FORWARD_DETERMINISTIC = "forward_deterministic"
FORWARD_DTYPE = "forward_dtype"
ONE_GRADIENT_PER_INPUT = "one_gradient_per_input"
BACKWARD_LEAVES_DOUT = "backward_leaves_dout"
BACKWARD_LEAVES_CACHE = "backward_leaves_cache"
BACKWARD_LEAVES_INPUTS = "backward_leaves_inputs"
GRADIENT_SHAPES = "gradient_shapes"
GRADIENT_DTYPES = "gradient_dtypes"
GRADIENT_MEMORY = "gradient_memory"
BACKWARD_DETERMINISTIC = "backward_deterministic"
ZERO_DOUT = "zero_dout"
LINEAR_IN_DOUT = "linear_in_dout"
LOSS_LEAVES_ARGUMENTS = "loss_leaves_arguments"
LOSS_DETERMINISTIC = "loss_deterministic"
GRADIENT_KEYS = "gradient_keys"


@dataclasses.dataclass
class SideCheck:
    """One property checked besides the numbers.

    Attributes:
        name: the property in words, as the table shows it.
        passed: the verdict.
        detail: what was found ("" when there is nothing to say).
        code: the property's stable identifier (one of this module's codes, e.g. ZERO_DOUT);
            programs match on it, never on name.
    """

    name: str
    passed: bool
    detail: str = ""
    code: str = ""


def snapshot(obj):
    """A deep copy of obj, to compare with the original after a call (see differences)."""
    return copy.deepcopy(obj)


def differences(before, after, path):
    """Paths at which after differs from the snapshot before (arrays compared bitwise, NaN equal to NaN).

    Args:
        before: a snapshot (nested tuples, lists, dicts, arrays, other values).
        after: the live object.
        path: the name of the top level, e.g. "cache".

    Returns:
        list of str, e.g. ["cache[1]['mean']"]; empty when nothing changed. Other values are
        compared with ==: one whose == raises is not compared, and an object without an == of its
        own compares by identity, so its snapshot never equals it.
    """
    if isinstance(before, (tuple, list)):
        if not isinstance(after, (tuple, list)) or len(before) != len(after):
            return [path]
        return [p for k, (b, a) in enumerate(zip(before, after)) for p in differences(b, a, f"{path}[{k}]")]
    if isinstance(before, dict):
        if not isinstance(after, dict) or before.keys() != after.keys():
            return [path]
        return [p for k in before for p in differences(before[k], after[k], f"{path}[{k!r}]")]
    if isinstance(before, (np.ndarray, np.generic)):
        after = np.asarray(after)
        if before.shape != after.shape or not np.array_equal(before, after, equal_nan=True):
            return [path]
        return []
    try:
        return [] if before == after else [path]
    except Exception:  # an == that raises (arrays inside other objects, ...): not compared
        return []


def output_leaves(out):
    """The arrays of a forward output (one array, a scalar, or a tuple/list of them) as a list.

    Shape:
        out: S_out, or a tuple of them; result[k]: the k-th array's shape
    """
    if isinstance(out, (tuple, list)):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def like_output(out, leaves):
    """Rebuild out's structure (one array, or a tuple) from a list of arrays such as output_leaves gives.

    Shape:
        leaves[k]: the k-th array of the result
    """
    return tuple(leaves) if isinstance(out, (tuple, list)) else leaves[0]


def _alone(code, name, changed):
    return SideCheck(name, not changed, "changed: " + ", ".join(changed) if changed else "", code)


def _changed_inputs(names, before, after):
    return [names[k] for k in range(len(names)) if differences(before[k], after[k], names[k])]


# ----------------------------------------------------------------------------- forward


def forward_leaves_inputs_alone(names, before, after):
    """SideCheck FORWARD_LEAVES_INPUTS: forward did not change the arrays passed to it.

    Shape:
        before[k], after[k]: S_k
    """
    return _alone(FORWARD_LEAVES_INPUTS, "forward leaves its inputs alone", _changed_inputs(names, before, after))


def forward_is_deterministic(first, second):
    """SideCheck FORWARD_DETERMINISTIC: two forward outputs on the same inputs are equal bit for bit.

    Shape:
        first, second: S_out (NaN counts as equal to NaN)
    """
    a, b = output_leaves(first), output_leaves(second)
    same = len(a) == len(b) and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
    return SideCheck("forward is deterministic", same,
                     "" if same else "two calls on the same inputs differ (dropout without a fixed seed?)",
                     FORWARD_DETERMINISTIC)


def forward_keeps_dtype(out, dtype):
    """SideCheck FORWARD_DTYPE: every array of forward's output has dtype, the inputs' (dtype in = dtype out).

    Shape:
        out: S_out
    """
    leaves = output_leaves(out)
    wrong = [f"{'out' if len(leaves) == 1 else f'out[{k}]'} is {o.dtype}, expected {np.dtype(dtype)}"
             for k, o in enumerate(leaves) if o.dtype != dtype]
    return SideCheck("forward keeps its inputs' dtype", not wrong, "; ".join(wrong), FORWARD_DTYPE)


# ----------------------------------------------------------------------------- backward


def backward_returns_one_gradient_per_input(grads, names):
    """SideCheck ONE_GRADIENT_PER_INPUT: backward returned as many gradients as there are inputs."""
    ok = len(grads) == len(names)
    return SideCheck("backward returns one gradient per input", ok,
                     "" if ok else f"got {len(grads)} for inputs {names}", ONE_GRADIENT_PER_INPUT)


def backward_leaves_dout_alone(before, after):
    """SideCheck BACKWARD_LEAVES_DOUT: backward did not change dout.

    Shape:
        before, after: S_out
    """
    return _alone(BACKWARD_LEAVES_DOUT, "backward leaves dout alone", differences(before, after, "dout"))


def backward_leaves_cache_alone(before, after):
    """SideCheck BACKWARD_LEAVES_CACHE: backward did not change the cache (compared as differences does)."""
    return _alone(BACKWARD_LEAVES_CACHE, "backward leaves the cache alone", differences(before, after, "cache"))


def backward_leaves_inputs_alone(names, before, after):
    """SideCheck BACKWARD_LEAVES_INPUTS: the arrays forward received (which the cache may hold) are
    as backward found them.

    Shape:
        before[k], after[k]: S_k
    """
    return _alone(BACKWARD_LEAVES_INPUTS, "backward leaves the inputs alone", _changed_inputs(names, before, after))


def gradients_have_input_shapes(names, shapes, grads, what="inputs"):
    """SideCheck GRADIENT_SHAPES: each gradient has the shape of its input (what: "inputs" or "parameters").

    Shape:
        grads[k]: should be shapes[k] = S_k
    """
    wrong = [f"d{n} is {np.shape(g)}, {n} is {tuple(s)}" for n, s, g in zip(names, shapes, grads)
             if np.shape(g) != tuple(s)]
    return SideCheck(f"gradients have their {what}' shapes", not wrong, "; ".join(wrong), GRADIENT_SHAPES)


def gradients_keep_input_dtypes(names, dtypes, grads, what="inputs"):
    """SideCheck GRADIENT_DTYPES: each gradient has its input's dtype, dtypes[k] (what: "inputs" or "parameters").

    Shape:
        grads[k]: S_k
    """
    wrong = [f"d{n} is {np.asarray(g).dtype}, {n} is {np.dtype(d)}" for n, d, g in zip(names, dtypes, grads)
             if np.asarray(g).dtype != d]
    return SideCheck(f"gradients keep their {what}' dtype", not wrong, "; ".join(wrong), GRADIENT_DTYPES)


def gradients_own_their_memory(names, grads, dout, inputs):
    """SideCheck GRADIENT_MEMORY: no gradient shares memory with dout or an input (writing into one
    would change the other).

    Shape:
        grads[k], inputs[k]: S_k; dout: S_out
    """
    others = [("dout" if len(output_leaves(dout)) == 1 else f"dout[{k}]", d) for k, d in enumerate(output_leaves(dout))]
    others += list(zip(names, inputs))
    shared = [f"d{n} shares memory with {other}" for n, g in zip(names, grads) for other, value in others
              if isinstance(g, np.ndarray) and np.shares_memory(g, value)]
    return SideCheck("gradients own their memory", not shared, "; ".join(shared), GRADIENT_MEMORY)


def backward_is_deterministic(first, second):
    """SideCheck BACKWARD_DETERMINISTIC: two backward calls on the same dout and cache gave equal gradients.

    Shape:
        first[k], second[k]: S_k
    """
    same = len(first) == len(second) and all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
                                             for a, b in zip(first, second))
    return SideCheck("backward is deterministic", same, "" if same else "two calls on the same dout and cache differ",
                     BACKWARD_DETERMINISTIC)


def zero_dout_gives_zero_gradients(names, grads):
    """SideCheck ZERO_DOUT: backward of an all-zero dout gave all-zero gradients (grads: that call's).

    Shape:
        grads[k]: S_k
    """
    nonzero = [f"d{n}" for n, g in zip(names, grads) if np.any(np.asarray(g) != 0)]
    detail = f"{', '.join(nonzero)} not zero: backward does not scale with dout (ignores it?)" if nonzero else ""
    return SideCheck("zero dout gives zero gradients", not nonzero, detail, ZERO_DOUT)


def backward_is_linear_in_dout(names, g1, g2, mix, rtol=LINEARITY_RTOL):
    """SideCheck LINEAR_IN_DOUT: mix = backward(2 d1 - 3 d2) equals 2 g1 - 3 g2, where g1 = backward(d1)
    and g2 = backward(d2).

    The bound is rtol times the largest entries (not elementwise): backward passes that subtract
    means (batchnorm) make small entries from large terms, with rounding to match.

    Shape:
        g1[k], g2[k], mix[k]: S_k
    """
    nonlinear = []
    # A gradient that is exactly zero in theory (a bias before batchnorm) is rounding residue of
    # terms the size of the other gradients, so the bound also has a share of the overall scale.
    overall = max((float(np.abs(np.asarray(g, dtype=np.float64)).max(initial=0)) for g in (*g1, *g2)), default=0.0)
    for n, a, b, m in zip(names, g1, g2, mix):
        a, b, m = (np.asarray(t, dtype=np.float64) for t in (a, b, m))
        if a.shape == b.shape == m.shape:
            bound = rtol * (2 * np.abs(a).max(initial=0) + 3 * np.abs(b).max(initial=0) + overall)
            if np.any(np.abs(m - (2 * a - 3 * b)) > bound):
                nonlinear.append(f"d{n}")
    return SideCheck("backward is linear in dout", not nonlinear,
                     f"{', '.join(nonlinear)}: backward(2 d1 - 3 d2) != 2 backward(d1) - 3 backward(d2)"
                     if nonlinear else "", LINEAR_IN_DOUT)


# ----------------------------------------------------------------------------- a whole layer


class LayerContract:
    """A layer pair run through its whole contract on one set of inputs, every call counted.

    check_forward() runs forward twice; check_backward() runs backward on dout, again, on a zero
    dout and for the linearity test. Afterwards ``out``, ``cache``, ``values`` (fresh copies of the
    inputs, for the numeric comparison) and ``grads`` hold what the first calls returned. Backward
    is judged on the arrays the first forward received, which its cache may hold, as forward
    left them (``inputs_before``), so what forward itself did to them is not blamed on backward.

    Args:
        fn: the public caller, for error messages.
        forward: callable(*arrays, **params) -> (out, cache).
        backward: callable(dout, cache) -> one gradient or a tuple of them.
        names, values: the inputs' names and arrays, in forward's order.
        params: keyword arguments of forward.

    Shape:
        values[k]: S_name
    """

    def __init__(self, fn, forward, backward, names, values, params):
        self.fn, self._forward, self._backward, self.params = fn, forward, backward, params
        self.names, self.values = list(names), list(values)
        self.forward_calls = self.backward_calls = 0
        self.inputs_before = self._seen_by_backward = self.out = self.cache = self.grads = None

    def forward(self, values):
        """forward(*values, **params), counted; refuses a result that is not (out, cache)."""
        self.forward_calls += 1
        result = self._forward(*values, **self.params)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"{self.fn}: forward must return (out, cache), got {type(result).__name__}"
                            f"{f' of length {len(result)}' if isinstance(result, tuple) else ''}.")
        return result

    def backward(self, dout, cache):
        """backward(dout, cache), counted, as a tuple of gradients."""
        self.backward_calls += 1
        grads = self._backward(dout, cache)
        return grads if isinstance(grads, tuple) else (grads,)

    def check_forward(self):
        """Forward leaves its inputs alone and is deterministic: two SideChecks (sets out, cache, values)."""
        pristine = snapshot(self.values)
        self.out, self.cache = self.forward(self.values)
        sides = [forward_leaves_inputs_alone(self.names, pristine, self.values)]
        # The cache may hold these very arrays: backward is judged on them, from the state it finds them in.
        self._seen_by_backward, self.inputs_before = self.values, snapshot(self.values)
        self.values = [a.copy() for a in pristine]  # carry on from the original values either way
        sides.append(forward_is_deterministic(self.out, self.forward(self.values)[0]))
        return sides

    def check_backward(self, d_leaves, rng, originals=None):
        """Every backward property, in the table's order; sets grads (from dout = d_leaves).

        Args:
            d_leaves: dout as a list of arrays, one per output array.
            rng: Generator for the second dout of the linearity test.
            originals: the caller's inputs when they are not float64: the dtype check then runs
                forward and backward on them; None to check against float64.

        Returns:
            list of SideCheck.
        """
        names, out = self.names, self.out
        d_struct = like_output(out, d_leaves)
        saved_cache, saved_dout = snapshot(self.cache), snapshot(d_struct)
        grads = self.grads = self.backward(d_struct, self.cache)
        sides = [backward_returns_one_gradient_per_input(grads, names),
                 backward_leaves_dout_alone(saved_dout, d_struct),
                 backward_leaves_cache_alone(saved_cache, self.cache),
                 backward_leaves_inputs_alone(names, self.inputs_before, self._seen_by_backward),
                 gradients_have_input_shapes(names, [v.shape for v in self.values], grads)]
        d_struct, cache = snapshot(saved_dout), saved_cache
        if originals is not None:
            o_out, o_cache = self.forward(originals)
            o_d = like_output(o_out, [d.astype(o.dtype) if np.issubdtype(o.dtype, np.floating) else d
                                      for d, o in zip(d_leaves, output_leaves(o_out))])
            sides.append(gradients_keep_input_dtypes(names, [np.asarray(o).dtype for o in originals],
                                                     self.backward(o_d, o_cache)))
        else:
            sides.append(gradients_keep_input_dtypes(names, [np.dtype(np.float64)] * len(names), grads))
        sides.append(backward_is_deterministic(grads, self.backward(snapshot(d_struct), snapshot(cache))))
        zero = self.backward(like_output(out, [np.zeros_like(d) for d in d_leaves]), snapshot(cache))
        sides.append(zero_dout_gives_zero_gradients(names, zero))
        d2_leaves = [rng.standard_normal(d.shape) for d in d_leaves]
        g2 = self.backward(like_output(out, d2_leaves), snapshot(cache))
        mix = self.backward(like_output(out, [2 * a - 3 * b for a, b in zip(d_leaves, d2_leaves)]), snapshot(cache))
        sides.append(backward_is_linear_in_dout(names, grads, g2, mix))
        return sides
