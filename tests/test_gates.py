"""Tests for layers.gates: the lecture's add, multiply, max and copy gates."""

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import (
    add_backward,
    add_forward,
    copy_backward,
    copy_forward,
    max_backward,
    max_forward,
    multiply_backward,
    multiply_forward,
    sigmoid_backward,
    sigmoid_forward,
)

pytestmark = pytest.mark.gates

# The lecture's examples are exact small integers, so they must match to rounding only.
EXACT = 1e-12
# The lecture prints the sigmoid neuron's gradients rounded to two decimals.
LECTURE_ROUNDING = 5e-3

BINARY_GATES = [
    (add_forward, add_backward),
    (multiply_forward, multiply_backward),
    (max_forward, max_backward),
]
# Pairs of shapes that broadcast, including 0-d and leading/inner length-1 axes.
SHAPES = [((), ()), ((4,), (4,)), ((3, 4), (4,)), ((2, 1, 5), (3, 1)), ((), (2, 3)), ((2, 3, 4), (2, 3, 4))]


def _operands(x_shape, y_shape, seed=0):
    rng = np.random.default_rng(seed)
    # Keep x and y apart so no max tie lies within the finite-difference step.
    x = rng.uniform(0.5, 2.0, x_shape) * rng.choice([-1, 1], x_shape)
    y = rng.uniform(0.5, 2.0, y_shape) * rng.choice([-1, 1], y_shape) + 0.1
    return {"x": np.asarray(x, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)}


@pytest.mark.parametrize("forward, backward", BINARY_GATES, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("x_shape, y_shape", SHAPES)
def test_binary_gate_backward_matches_numeric_gradient(forward, backward, x_shape, y_shape):
    """Each binary gate's dx and dy match centered differences, broadcasting included."""
    assert_backward_matches_numeric(forward, backward, _operands(x_shape, y_shape))


@pytest.mark.parametrize("forward, backward", BINARY_GATES, ids=lambda f: getattr(f, "__name__", ""))
def test_binary_gate_is_pure(forward, backward):
    """Forward and backward leave inputs, dout and cache unchanged and return fresh arrays."""
    assert_pure(forward, backward, _operands((3, 4), (3, 4)))


@pytest.mark.parametrize("forward, backward", BINARY_GATES, ids=lambda f: getattr(f, "__name__", ""))
def test_binary_gate_keeps_float32(forward, backward):
    """float32 operands give float32 outputs and gradients, even with a broadcast operand."""
    ops = {k: v.astype(np.float32) for k, v in _operands((3, 4), (4,)).items()}
    assert_dtype_preserved(forward, backward, ops)


def test_python_numbers_take_the_array_dtype():
    """A Python float operand does not upcast a float32 array."""
    out, cache = multiply_forward(np.ones(3, dtype=np.float32), 2.5)
    dx, dy = multiply_backward(np.ones(3, dtype=np.float32), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert np.asarray(dy).dtype == np.float32 and np.shape(dy) == ()
    assert float(dy) == pytest.approx(3.0, abs=EXACT)


@pytest.mark.parametrize("forward, backward", BINARY_GATES, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("number", [np.int64(2), np.int32(-3), np.uint8(4)], ids=repr)
def test_numpy_integer_scalars_work_like_python_ints(forward, backward, number):
    """An np.int64 operand is taken like the Python int of its value: same output, gradients and dtype."""
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    want_out, want_cache = forward(x, int(number))
    got_out, got_cache = forward(x, number)
    assert got_out.dtype == np.float32
    np.testing.assert_array_equal(got_out, want_out)
    dout = np.ones((2, 3), np.float32)
    for name, got, want in zip(("dx", "dy"), backward(dout, got_cache), backward(dout, want_cache)):
        assert np.asarray(got).dtype == np.float32, f"{name} is {np.asarray(got).dtype}"
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert backward(np.int64(1), forward(2.0, number)[1]) == backward(1, forward(2.0, int(number))[1])


@pytest.mark.parametrize("forward", [add_forward, multiply_forward, max_forward])
@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
def test_binary_gate_refuses_float16_and_longdouble(forward, dtype):
    """float32 and float64 only: a float16 array or numpy scalar is refused with the cast to use."""
    name = forward.__name__
    for y in (np.ones(3, dtype), dtype(1.0)):
        with pytest.raises(TypeError, match=rf"{name}: y is {np.dtype(dtype)}, but chainrule computes in float32 or "
                                            rf"float64 only .*cast it with y.astype\(np.float32\)"):
            forward(np.ones(3, np.float32), y)


@pytest.mark.parametrize("forward", [add_forward, multiply_forward, max_forward])
def test_binary_gate_rejects_bad_operands(forward):
    """Shapes that do not broadcast, mixed dtypes, integer arrays and lists are refused by name."""
    name = forward.__name__
    with pytest.raises(ValueError, match=rf"{name}: x of shape \(3,\) and y of shape \(4,\)"):
        forward(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match=rf"{name}: array operands must share one dtype \(x is float32, y is float64\)"):
        forward(np.zeros(3, np.float32), np.zeros(3))
    with pytest.raises(TypeError, match=rf"{name}: x must be a floating-point array, got array of shape \(3,\) and dtype int64"):
        forward(np.arange(3), 1.0)
    with pytest.raises(TypeError, match=rf"{name}: y must be a Python number or a floating-point numpy array, got list"):
        forward(1.0, [1.0, 2.0])
    with pytest.raises(TypeError, match=rf"{name}: x must be"):
        forward(True, 1.0)


@pytest.mark.parametrize("forward, backward", BINARY_GATES, ids=lambda f: getattr(f, "__name__", ""))
def test_binary_gate_backward_rejects_bad_dout(forward, backward):
    """An upstream gradient of the wrong shape or dtype is refused, naming the backward."""
    _, cache = forward(np.zeros((2, 3)), np.ones(3))
    name = backward.__name__
    with pytest.raises(ValueError, match=rf"{name}: dout has shape \(3,\) but the forward output had shape \(2, 3\)"):
        backward(np.ones(3), cache)
    with pytest.raises(TypeError, match=rf"{name}: dout has dtype float32 but the forward pass ran in float64"):
        backward(np.ones((2, 3), np.float32), cache)


@pytest.mark.lecture
def test_lecture_circuit_x_plus_y_times_z():
    """f = (x + y) z at x=-2, y=5, z=-4: f=-12, df/dx = df/dy = z = -4, df/dz = x + y = 3."""
    q, add_cache = add_forward(-2.0, 5.0)
    f, mul_cache = multiply_forward(q, -4.0)
    assert q == 3.0 and f == -12.0
    dq, dz = multiply_backward(1.0, mul_cache)  # df/df = 1 starts the backward pass
    dx, dy = add_backward(dq, add_cache)
    assert (dx, dy, dz, dq) == (-4.0, -4.0, 3.0, -4.0)
    assert all(isinstance(g, float) for g in (dx, dy, dz))


@pytest.mark.lecture
def test_lecture_sigmoid_neuron():
    """f = sigmoid(w0 x0 + w1 x1 + w2) at w=[2,-3,-3], x=[-1,-2]: the lecture's gradients."""
    w0, w1, w2, x0, x1 = 2.0, -3.0, -3.0, -1.0, -2.0
    a, c_a = multiply_forward(w0, x0)
    b, c_b = multiply_forward(w1, x1)
    s, c_s = add_forward(a, b)
    dot, c_dot = add_forward(s, w2)
    f, c_f = sigmoid_forward(dot)
    assert dot == 1.0 and f == pytest.approx(0.7310585786300049, abs=EXACT)

    ddot = sigmoid_backward(1.0, c_f)
    ds, dw2 = add_backward(ddot, c_dot)
    da, db = add_backward(ds, c_s)
    dw0, dx0 = multiply_backward(da, c_a)
    dw1, dx1 = multiply_backward(db, c_b)

    local = f * (1 - f)  # the sigmoid's local gradient, (1 - 0.73) * 0.73 = 0.2
    got = [dw0, dx0, dw1, dx1, dw2]
    exact = [x0 * local, w0 * local, x1 * local, w1 * local, local]
    assert got == pytest.approx(exact, abs=EXACT)
    assert got == pytest.approx([-0.2, 0.39, -0.39, -0.59, 0.2], abs=LECTURE_ROUNDING)


@pytest.mark.lecture
def test_lecture_gradient_flow_patterns():
    """add distributes, multiply swaps, max routes, copy adds: the lecture's numbers."""
    _, cache = add_forward(3.0, 4.0)
    assert add_backward(2.0, cache) == (2.0, 2.0)

    out, cache = multiply_forward(2.0, 3.0)
    assert out == 6.0 and multiply_backward(5.0, cache) == (5.0 * 3.0, 2.0 * 5.0)

    out, cache = max_forward(4.0, 5.0)
    assert out == 5.0 and max_backward(9.0, cache) == (0.0, 9.0)

    outs, cache = copy_forward(7.0)
    assert outs == (7.0, 7.0) and copy_backward((4.0, 2.0), cache) == 6.0


def test_max_tie_routes_whole_gradient_to_x():
    """Where x == y the gradient goes to x only, so dx + dy equals dout elementwise."""
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 5.0, 3.0])
    _, cache = max_forward(x, y)
    dx, dy = max_backward(np.array([10.0, 20.0, 30.0]), cache)
    np.testing.assert_array_equal(dx, [10.0, 0.0, 30.0])
    np.testing.assert_array_equal(dy, [0.0, 20.0, 0.0])


def test_broadcast_gradient_is_summed_to_input_shape():
    """A (4,) operand added to a (3, 4) array receives the column sums of dout."""
    x, y = np.zeros((3, 4)), np.zeros(4)
    dout = np.arange(12.0).reshape(3, 4)
    _, cache = add_forward(x, y)
    dx, dy = add_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout)
    np.testing.assert_array_equal(dy, [12.0, 15.0, 18.0, 21.0])


@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4)])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_copy_backward_matches_numeric_gradient(shape, n):
    """copy_backward equals the centered difference of sum_k <copy_k(x), dout_k>."""
    from gradcheck import eval_numerical_gradient, rel_error

    from harness import GRAD_RTOL

    rng = np.random.default_rng(1)
    x = np.asarray(rng.standard_normal(shape))
    douts = tuple(np.asarray(rng.standard_normal(shape)) for _ in range(n))
    outs, cache = copy_forward(x, n=n)
    assert len(outs) == n and all(np.shape(o) == shape for o in outs)
    dx = copy_backward(douts, cache)

    def f(v):
        return sum(float(np.sum(o * d)) for o, d in zip(copy_forward(v, n=n)[0], douts))

    numeric = eval_numerical_gradient(f, x.copy(), verbose=False)
    assert np.shape(dx) == shape
    assert rel_error(dx, numeric) < GRAD_RTOL


def test_copy_is_pure_and_outputs_are_independent():
    """copy_forward returns arrays that do not share memory with x or with each other."""
    x = np.arange(6.0).reshape(2, 3)
    saved = x.copy()
    outs, cache = copy_forward(x, n=3)
    outs[0][0, 0] = 100.0
    np.testing.assert_array_equal(x, saved)
    assert not np.shares_memory(outs[1], outs[2])
    douts = (np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)))
    dx = copy_backward(douts, cache)
    assert all(not np.shares_memory(dx, d) for d in douts)
    np.testing.assert_array_equal(douts[0], np.ones((2, 3)))


def test_copy_keeps_float32():
    """copy of a float32 array gives float32 copies and a float32 gradient."""
    outs, cache = copy_forward(np.ones(3, np.float32), n=2)
    assert all(o.dtype == np.float32 for o in outs)
    assert copy_backward((np.ones(3, np.float32),) * 2, cache).dtype == np.float32


def test_copy_rejects_bad_arguments():
    """Bad n, a wrong count of douts, or a dout of the wrong shape are refused by name."""
    with pytest.raises(ValueError, match=r"copy_forward: n must be an int >= 1, got 0"):
        copy_forward(np.ones(2), n=0)
    with pytest.raises(ValueError, match=r"copy_forward: n must be an int >= 1, got 2.0"):
        copy_forward(np.ones(2), n=2.0)
    with pytest.raises(TypeError, match=r"copy_forward: x must be a floating-point array"):
        copy_forward(np.ones(2, dtype=int))
    _, cache = copy_forward(np.ones(2), n=3)
    with pytest.raises(ValueError, match=r"copy_backward: douts must be a tuple or list of 3 upstream gradients, one per copy, got tuple of length 2"):
        copy_backward((np.ones(2), np.ones(2)), cache)
    with pytest.raises(ValueError, match=r"copy_backward \(douts\[1\]\): dout has shape \(3,\)"):
        copy_backward((np.ones(2), np.ones(3), np.ones(2)), cache)
