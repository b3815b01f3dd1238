"""Tests for layers.attention: softmax, scaled dot-product attention, the causal mask and the
positional encoding (multi-head attention and the transformer block: tests/test_transformer.py).

The generic properties (the declared cases' full gradient checks, purity, float32 kept, N = 0 and
float16 refused, foreign caches refused, agreement with PyTorch autograd) run over the declared
cases in tests/test_registry.py; here is what is particular to attention: worked examples, masks
(fully masked rows included) and the sinusoidal table."""

import math
import warnings

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, random_dout
from layers import (
    causal_mask,
    positional_encoding,
    scaled_dot_product_attention_backward,
    scaled_dot_product_attention_forward,
    softmax_backward,
    softmax_forward,
)
from layers.attention import attention_mask, padding_mask, torch_attention

# The sequence layers' marker (setup.cfg has no attention marker of its own yet).
pytestmark = pytest.mark.attention

# Worked examples and rearrangements of the same float64 operations (heads one by one, a mask of
# another dtype) agree up to rounding.
EXACT = 1e-12
# float64 outputs and gradients against PyTorch's plain ops and autograd (as tests/test_registry.py).
TORCH_RTOL = 1e-10
TORCH_ATOL = 1e-12
# float32 results against the same computation in float64: a few float32 roundings.
FLOAT32_RTOL = 1e-5
# Underflow to 0 is what a softmax of far-apart scores should do; overflow, 0 / 0 and inf - inf are bugs.
NO_FLOAT_TROUBLE = dict(divide="raise", over="raise", invalid="raise")
SDPA = "scaled_dot_product_attention_forward"


def _qkv(N=2, nh=3, Tq=4, Tk=5, d=6, dv=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape).astype(dtype) for shape in
                 ((N, nh, Tq, d), (N, nh, Tk, d), (N, nh, Tk, dv)))


# -- softmax

def test_softmax_worked_example_and_its_backward():
    """softmax(log 1, log 2, log 3) = (1, 2, 3) / 6; with dout = e_0, dx = y (e_0 - y_0)."""
    x = np.log(np.array([[1.0, 2.0, 3.0]]))
    y, cache = softmax_forward(x)
    np.testing.assert_allclose(y, [[1 / 6, 2 / 6, 3 / 6]], rtol=EXACT)
    dx = softmax_backward(np.array([[1.0, 0.0, 0.0]]), cache)
    np.testing.assert_allclose(dx, [[1 / 6 * 5 / 6, -2 / 6 / 6, -3 / 6 / 6]], rtol=EXACT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_sums_to_one_and_large_inputs_neither_overflow_nor_warn(dtype, axis):
    """Each slice along axis sums to 1, and scores of order 1e4 (exp overflows past 89 in float32)
    give the softmax of their differences, with no warning."""
    x = (1e4 * np.random.default_rng(0).standard_normal((3, 4, 5))).astype(dtype)
    with warnings.catch_warnings(), np.errstate(**NO_FLOAT_TROUBLE):
        warnings.simplefilter("error")
        y, _ = softmax_forward(x, axis=axis)
        shifted, _ = softmax_forward(x - x.max(axis=axis, keepdims=True), axis=axis)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=axis), 1, rtol=10 * np.finfo(dtype).eps)
    np.testing.assert_allclose(y, shifted, rtol=EXACT)


def test_softmax_backward_matches_numeric_gradient_along_every_axis():
    """Every element of dx matches centered differences, whichever axis softmax normalizes over."""
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    for axis in (0, 1, 2, -2):
        assert_backward_matches_numeric(softmax_forward, softmax_backward, {"x": x}, params={"axis": axis})


def test_softmax_refuses_a_bad_axis_and_an_empty_one():
    """axis outside [-ndim, ndim), not an int, or of length 0: refused, naming softmax_forward and axis."""
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"softmax_forward: axis must be an int in \[-2, 1\], got 2"):
        softmax_forward(x, axis=2)
    with pytest.raises(TypeError, match="softmax_forward: axis must be an int"):
        softmax_forward(x, axis=1.0)
    with pytest.raises(ValueError, match="softmax_forward: x has no values along axis 1"):
        softmax_forward(np.zeros((2, 0)), axis=1)


# -- scaled dot-product attention

def test_zero_queries_attend_uniformly_and_average_the_values():
    """q = 0 gives every score 0, so each query's weights are 1 / Tk and its output the mean of v."""
    q, k, v = _qkv()
    out, cache = scaled_dot_product_attention_forward(np.zeros_like(q), k, v)
    np.testing.assert_allclose(cache.weights, 1 / k.shape[-2], rtol=EXACT)
    np.testing.assert_allclose(out, np.broadcast_to(v.mean(axis=-2, keepdims=True), out.shape), rtol=EXACT)


def test_attention_worked_example_by_hand():
    """d = 4 (scale 1/2), q = (2, 0, 0, 0), keys e_0 and 0: scores (1, 0), weights (e, 1) / (e + 1);
    with dout = 1 every gradient follows from ds = w0 w1 (1, -1)."""
    q, k, v = np.array([[2.0, 0, 0, 0]]), np.array([[1.0, 0, 0, 0], [0, 0, 0, 0]]), np.array([[1.0], [0.0]])
    out, cache = scaled_dot_product_attention_forward(q, k, v)
    e = math.e
    w0, w1 = e / (e + 1), 1 / (e + 1)
    np.testing.assert_allclose(cache.weights, [[w0, w1]], rtol=EXACT)
    np.testing.assert_allclose(out, [[w0]], rtol=EXACT)
    dq, dk, dv = scaled_dot_product_attention_backward(np.ones((1, 1)), cache)
    np.testing.assert_allclose(dv, [[w0], [w1]], rtol=EXACT)
    np.testing.assert_allclose(dq, [[w0 * w1 / 2, 0, 0, 0]], rtol=EXACT)
    np.testing.assert_allclose(dk, [[w0 * w1, 0, 0, 0], [-w0 * w1, 0, 0, 0]], rtol=EXACT)


def test_causal_mask_is_lower_triangular_and_refuses_bad_lengths():
    """causal_mask(3): query i may attend keys 0 to i; T must be an int >= 1."""
    np.testing.assert_array_equal(causal_mask(3), [[True, False, False], [True, True, False], [True, True, True]])
    assert causal_mask(1).dtype == bool and causal_mask(np.int64(2)).shape == (2, 2)
    with pytest.raises(ValueError, match="causal_mask: T must be an int >= 1, got 0"):
        causal_mask(0)
    with pytest.raises(TypeError, match="causal_mask: T must be an int"):
        causal_mask(2.0)


def test_causal_attention_sees_only_the_past():
    """Under the causal mask output row 0 is v[0], and changing the keys and values of the last
    position changes no earlier output; its gradient gets nothing from earlier queries."""
    q, k, v = _qkv(Tq=4, Tk=4)
    mask = causal_mask(4)
    out, cache = scaled_dot_product_attention_forward(q, k, v, mask)
    np.testing.assert_allclose(out[..., 0, :], v[..., 0, :], rtol=EXACT)
    assert np.all(np.triu(cache.weights, 1) == 0)
    k2, v2 = k.copy(), v.copy()
    k2[..., -1, :] += 5.0
    v2[..., -1, :] -= 3.0
    out2, _ = scaled_dot_product_attention_forward(q, k2, v2, mask)
    np.testing.assert_array_equal(out2[..., :-1, :], out[..., :-1, :])
    dout = np.zeros_like(out)
    dout[..., :-1, :] = 1.0  # the loss reads every output but the last
    _, dk, dv = scaled_dot_product_attention_backward(dout, cache)
    assert not dk[..., -1, :].any() and not dv[..., -1, :].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fully_masked_rows_give_zero_output_and_zero_gradients_without_warnings(dtype):
    """A query that may attend no key gets weights 0, output 0 and dq 0, and adds nothing to dk and
    dv: the same gradients as attention without that query; no NaN, no warning."""
    q, k, v = _qkv(dtype=dtype)
    mask = np.ones((2, 1, 4, 5), dtype=bool)
    mask[1, :, 2] = False  # sample 1's query 2, in every head
    mask[0, :, :, 3] = False  # and a masked key
    with warnings.catch_warnings(), np.errstate(**NO_FLOAT_TROUBLE):
        warnings.simplefilter("error")
        out, cache = scaled_dot_product_attention_forward(q, k, v, mask)
        dout = random_dout(out, 1)
        dq, dk, dv = scaled_dot_product_attention_backward(dout, cache)
    for array in (out, cache.weights, dq, dk, dv):
        assert array.dtype == dtype and np.all(np.isfinite(array))
    assert not out[1, :, 2].any() and not cache.weights[1, :, 2].any() and not dq[1, :, 2].any()
    assert not cache.weights[0, :, :, 3].any() and not dk[0, :, 3].any() and not dv[0, :, 3].any()
    keep = [0, 1, 3]  # sample 1 without its masked query
    _, alone = scaled_dot_product_attention_forward(q[1:, :, keep], k[1:], v[1:])
    _, dk_alone, dv_alone = scaled_dot_product_attention_backward(dout[1:, :, keep], alone)
    rtol = FLOAT32_RTOL if dtype == np.float32 else EXACT
    np.testing.assert_allclose(dk[1:], dk_alone, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dv[1:], dv_alone, rtol=rtol, atol=rtol)


@pytest.mark.slow
def test_a_padding_mask_is_gradient_checked_and_equal_to_pytorch():
    """Attention under a padding mask with a fully masked row matches centered differences and PyTorch."""
    q, k, v = _qkv(N=3, nh=2, Tq=3, Tk=4, d=3, dv=2)
    mask = padding_mask(np.random.default_rng(0), 3, 3, 4)
    assert not mask[-1, 0, -1].any() and mask[0].all()
    inputs = {"q": q, "k": k, "v": v}
    grads = assert_backward_matches_numeric(scaled_dot_product_attention_forward, scaled_dot_product_attention_backward,
                                            inputs, params={"mask": mask})
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install chainrule[bench])")
    tensors = {name: torch.from_numpy(value.copy()).requires_grad_(True) for name, value in inputs.items()}
    theirs = torch_attention(torch, *tensors.values(), mask)
    out, _ = scaled_dot_product_attention_forward(q, k, v, mask)
    np.testing.assert_allclose(out, theirs.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    theirs.backward(torch.from_numpy(random_dout(out, 0)))
    for (name, tensor), grad in zip(tensors.items(), grads):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL, err_msg=f"d{name}")


def test_a_mask_broadcasts_over_heads_and_0_1_numbers_mean_booleans():
    """A (N, 1, Tq, Tk) mask is that mask in every head; 0/1 integers and floats are the same mask as booleans."""
    q, k, v = _qkv()
    mask = np.random.default_rng(2).random((2, 1, 4, 5)) < 0.7
    mask[..., 0] = True
    out, cache = scaled_dot_product_attention_forward(q, k, v, mask)
    every_head, _ = scaled_dot_product_attention_forward(q, k, v, np.repeat(mask, 3, axis=1))
    np.testing.assert_array_equal(out, every_head)
    assert np.all(cache.weights[~np.broadcast_to(mask, cache.weights.shape)] == 0)
    for numbers in (mask.astype(np.int64), mask.astype(np.uint8), mask.astype(np.float32)):
        np.testing.assert_array_equal(scaled_dot_product_attention_forward(q, k, v, numbers)[0], out)


def test_masked_keys_change_nothing():
    """What a masked key and its value hold does not change the output."""
    q, k, v = _qkv()
    mask = np.ones(5, dtype=bool)
    mask[[1, 4]] = False  # (Tk,): the same keys hidden from every query
    out, _ = scaled_dot_product_attention_forward(q, k, v, mask)
    k2, v2 = k.copy(), v.copy()
    k2[..., [1, 4], :], v2[..., [1, 4], :] = 1e3, -1e3
    np.testing.assert_array_equal(scaled_dot_product_attention_forward(q, k2, v2, mask)[0], out)


@pytest.mark.parametrize("mask, error, words", [
    ([[True]], TypeError, "mask must be None or a numpy array of booleans"),
    (np.ones((4, 5), dtype=complex), ValueError, "mask must hold booleans .* got dtype complex128"),
    (np.array([["yes"] * 5] * 4), ValueError, "mask must hold booleans .* got dtype <U3"),
    (np.full((4, 5), 2), ValueError, "mask must hold only 0 and 1 .* got 2"),
    (np.full((4, 5), np.nan), ValueError, "mask must hold only 0 and 1 .* got nan"),
    (np.ones((4, 4), dtype=bool), ValueError, r"mask has shape \(4, 4\), which does not broadcast to the scores' "
                                              r"shape \(2, 3, 4, 5\)"),
    (np.ones((2, 2, 3, 4, 5), dtype=bool), ValueError, r"mask has shape \(2, 2, 3, 4, 5\)"),
])
def test_attention_refuses_bad_masks_naming_the_function(mask, error, words):
    """A mask of the wrong type, dtype, values or shape is refused with the function's name and the fix."""
    with pytest.raises(error, match=f"^{SDPA}: {words}"):
        scaled_dot_product_attention_forward(*_qkv(), mask)


def test_attention_refuses_inconsistent_shapes_and_dtypes():
    """k, v that do not fit q, mixed dtypes and empty axes are refused, naming the argument and shapes."""
    q, k, v = _qkv()
    cases = [
        ((q, k[..., :5], v), ValueError, r"k has shape \(2, 3, 5, 5\) but q has shape \(2, 3, 4, 6\)"),
        ((q, k[:1], v), ValueError, r"k has shape \(1, 3, 5, 6\)"),
        ((q, k, v[..., :4, :]), ValueError, r"v has shape \(2, 3, 4, 3\) but k has shape \(2, 3, 5, 6\)"),
        ((q, k.astype(np.float32), v), TypeError, "k has dtype float32 but the other inputs are float64"),
        ((q[..., :0], k[..., :0], v), ValueError, r"q \(2, 3, 4, 0\), k .* need at least one query, one key"),
        ((q[0, 0, 0], k, v), ValueError, "q must have at least 2 dimensions"),
    ]
    for args, error, words in cases:
        with pytest.raises(error, match=f"^{SDPA}: {words}"):
            scaled_dot_product_attention_forward(*args)


def test_attention_keeps_float32_and_agrees_with_float64():
    """float32 in gives float32 out and gradients, equal to the float64 ones to float32's rounding."""
    q, k, v = _qkv()
    mask = causal_mask(5)[1:]  # (4, 5)
    out, cache = scaled_dot_product_attention_forward(q, k, v, mask)
    dout = random_dout(out, 0)
    grads = scaled_dot_product_attention_backward(dout, cache)
    small = [a.astype(np.float32) for a in (q, k, v)]
    out32, cache32 = scaled_dot_product_attention_forward(*small, mask)
    grads32 = scaled_dot_product_attention_backward(dout.astype(np.float32), cache32)
    for name, got, want in zip(("out", "dq", "dk", "dv"), (out32, *grads32), (out, *grads)):
        assert got.dtype == np.float32, name
        np.testing.assert_allclose(got, want, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL, err_msg=name)


def test_attention_mask_helper_returns_booleans_or_none():
    """attention_mask gives None for None, a boolean mask itself, and booleans for 0/1 numbers."""
    mask = causal_mask(3)
    assert attention_mask("f", None, (3, 3)) is None and attention_mask("f", mask, (2, 3, 3)) is mask
    assert attention_mask("f", mask.astype(np.float64), (3, 3)).dtype == bool


# -- positional encoding

def test_positional_encoding_values_and_layout():
    """Row 0 is [0, 1, 0, 1, ...]; P[pos, 2i] = sin(pos / 10000^(2i/D)), P[pos, 2i+1] its cos; each pair
    lies on the unit circle."""
    P = positional_encoding(50, 8)
    assert P.shape == (50, 8) and P.dtype == np.float64
    np.testing.assert_array_equal(P[0], [0, 1, 0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(P[1, :2], [math.sin(1), math.cos(1)], rtol=EXACT)
    np.testing.assert_allclose(P[7, 4:6], [math.sin(7 / 10000 ** (4 / 8)), math.cos(7 / 10000 ** (4 / 8))],
                               rtol=EXACT)
    np.testing.assert_allclose(P[:, 0::2] ** 2 + P[:, 1::2] ** 2, 1, rtol=EXACT)


def test_positional_encoding_with_odd_width_and_float32():
    """An odd D ends with a sin column without its cos; dtype=np.float32 gives the float32 table."""
    P = positional_encoding(6, 5)
    np.testing.assert_allclose(P[:, 4], np.sin(np.arange(6) / 10000 ** (4 / 5)), rtol=EXACT)
    np.testing.assert_array_equal(P[:, :4], positional_encoding(6, 5)[:, :4])
    P32 = positional_encoding(6, 5, dtype=np.float32)
    assert P32.dtype == np.float32
    np.testing.assert_allclose(P32, P, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL)
    assert positional_encoding(1, 1).tolist() == [[0.0]]


def test_positional_encoding_refuses_bad_sizes_and_dtypes():
    """T and D must be ints >= 1 and dtype float32 or float64, named in the message."""
    with pytest.raises(ValueError, match="positional_encoding: T must be an int >= 1, got 0"):
        positional_encoding(0, 4)
    with pytest.raises(TypeError, match="positional_encoding: D must be an int"):
        positional_encoding(3, 4.0)
    for dtype in (np.float16, np.int64, "nonsense"):
        with pytest.raises(TypeError, match="positional_encoding: dtype must be np.float64 or np.float32"):
            positional_encoding(3, 4, dtype=dtype)
