"""Tests for layers.conv: naive and fast convolution, geometry errors, chunking."""

import functools
import re

import numpy as np
import pytest

import layers.conv as conv_module
from gradcheck import rel_error
from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive
from layers.conv import conv_output_size
from layers.validate import NotAnInteger

pytestmark = pytest.mark.conv

# Naive and fast sum the same products in different orders (float64).
NAIVE_FAST_RTOL = 1e-9

GEOMETRIES = [  # x shape, w shape, stride, pad
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((3, 2, 9, 9), (5, 2, 3, 3), 2, 1),
    ((2, 3, 9, 9), (2, 3, 5, 5), 2, 0),
    ((2, 1, 6, 6), (3, 1, 1, 1), 1, 0),
    ((1, 2, 7, 6), (2, 2, 3, 2), 1, 0),
    ((2, 2, 5, 5), (3, 2, 3, 3), 3, 2),
    ((2, 8, 6, 5), (3, 8, 3, 3), 1, 1),  # C * HH * WW = 72 >= STACKED_MIN_K: single large products
]


def _inputs(x_shape, w_shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal(x_shape).astype(dtype), "w": rng.standard_normal(w_shape).astype(dtype),
            "b": rng.standard_normal(w_shape[0]).astype(dtype)}


def _named(fn, **kwargs):
    wrapped = functools.partial(fn, **kwargs)
    wrapped.__name__ = fn.__name__
    return wrapped


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", GEOMETRIES)
@pytest.mark.parametrize("products", ["per image", "stacked"])
def test_fast_matches_naive(x_shape, w_shape, stride, pad, products, monkeypatch):
    """Forward outputs and dx, dw, db of the fast version equal the naive loops to 1e-9, with
    the products done image by image and as single large ones."""
    monkeypatch.setattr(conv_module, "STACKED_MIN_K", 10**9 if products == "per image" else 1)
    inp = _inputs(x_shape, w_shape)
    param = {"stride": stride, "pad": pad}
    out_naive, cache_naive = conv_forward_naive(**inp, conv_param=param)
    out_fast, cache_fast = conv_forward_fast(**inp, conv_param=param)
    assert out_fast.shape == out_naive.shape and out_fast.flags.c_contiguous
    assert rel_error(out_fast, out_naive) < NAIVE_FAST_RTOL
    dout = np.random.default_rng(1).standard_normal(out_naive.shape)
    for slow, fast in zip(conv_backward_naive(dout, cache_naive), conv_backward_fast(dout, cache_fast)):
        assert rel_error(fast, slow) < NAIVE_FAST_RTOL


@pytest.mark.slow
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", GEOMETRIES[:3])
@pytest.mark.parametrize("version", ["naive", "fast"])
def test_conv_backward_matches_numeric_gradient(x_shape, w_shape, stride, pad, version):
    """dx, dw and db match centered differences, for both versions."""
    forward, backward = {"naive": (conv_forward_naive, conv_backward_naive),
                         "fast": (conv_forward_fast, conv_backward_fast)}[version]
    assert_backward_matches_numeric(_named(forward, conv_param={"stride": stride, "pad": pad}), backward,
                                    _inputs(x_shape, w_shape, seed=2))


def test_output_formula_on_the_course_shape():
    """x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1 gives (100, 25, 16, 16)."""
    assert conv_output_size("f", 31, 3, 2, 1) == 16
    assert conv_output_size("f", np.int64(31), np.int32(3), np.uint8(2), np.int16(1)) == 16
    out, _ = conv_forward_naive(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), np.ones(1),
                                {"stride": np.int64(2), "pad": np.int8(1)})  # numpy integers are ints
    assert out.shape == (1, 1, 3, 3)
    out, _ = conv_forward_fast(np.zeros((2, 3, 31, 31)), np.zeros((25, 3, 3, 3)), np.ones(25), {"stride": 2, "pad": 1})
    assert out.shape == (2, 25, 16, 16) and np.all(out == 1.0)


@pytest.mark.parametrize("products", ["per image", "stacked"])
def test_chunked_and_recomputed_paths_give_the_same_results(products, monkeypatch):
    """With a tiny chunk budget and no cached patches, results equal the one-chunk path exactly."""
    monkeypatch.setattr(conv_module, "STACKED_MIN_K", 10**9 if products == "per image" else 1)
    inp = _inputs((5, 2, 6, 6), (3, 2, 3, 3), seed=3)
    param = {"stride": 1, "pad": 1}
    out, cache = conv_forward_fast(**inp, conv_param=param)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    grads = conv_backward_fast(dout, cache)
    assert cache[-1] is not None and len(cache[-1]) == 1
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 2 * 18 * 36 * 8)  # two images per chunk
    monkeypatch.setattr(conv_module, "CACHE_BYTES", 0)  # backward unfolds again
    out2, cache2 = conv_forward_fast(**inp, conv_param=param)
    assert cache2[-1] is None
    np.testing.assert_array_equal(out2, out)
    for a, b in zip(conv_backward_fast(dout, cache2), grads):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_conv_fast_can_skip_dx():
    """need_dx=False returns None for dx and the same dw and db."""
    inp = _inputs((2, 2, 5, 5), (3, 2, 3, 3))
    out, cache = conv_forward_fast(**inp, conv_param={"stride": 1, "pad": 1})
    dout = np.ones_like(out)
    dx, dw, db = conv_backward_fast(dout, cache)
    none, dw2, db2 = conv_backward_fast(dout, cache, need_dx=False)
    assert none is None and dx.shape == inp["x"].shape
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("forward, backward", [(conv_forward_naive, conv_backward_naive),
                                               (conv_forward_fast, conv_backward_fast)], ids=["naive", "fast"])
def test_conv_is_pure_and_keeps_float32(forward, backward):
    """Inputs, dout and the cache stay unchanged; float32 stays float32."""
    wrapped = _named(forward, conv_param={"stride": 1, "pad": 1})
    assert_pure(wrapped, backward, _inputs((2, 2, 5, 5), (3, 2, 3, 3)))
    assert_dtype_preserved(wrapped, backward, _inputs((2, 2, 5, 5), (3, 2, 3, 3), dtype=np.float32))


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
def test_bad_geometry_names_every_number(forward):
    """A filter that does not fit, one larger than the input, or a channel mismatch is refused."""
    name = forward.__name__
    inp = _inputs((2, 3, 8, 8), (4, 3, 3, 3))
    with pytest.raises(ValueError, match=rf"^{name}: the filter does not fit along H: \(H \+ 2 \* pad - filter\) / stride = "
                                         r"\(8 \+ 2 \* 0 - 3\) / 2 = 5/2 is not a whole number; change conv_param\['pad'\], "
                                         r"conv_param\['stride'\] or w's HH \(shape \(4, 3, 3, 3\)\) so that the stride "
                                         r"divides H \+ 2 \* pad - filter\.$"):
        forward(**inp, conv_param={"stride": 2, "pad": 0})
    with pytest.raises(ValueError, match=rf"^{name}: the filter \(9 along H\) is larger than the padded input \(H = 8 \+ 2 \* pad 0 = 8\); "
                                         r"w's HH \(shape \(4, 3, 9, 9\)\) must be at most 8, or conv_param\['pad'\] at least 1\.$"):
        forward(inp["x"], np.zeros((4, 3, 9, 9)), inp["b"], {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match=rf"^{name}: the filter \(8 along W\) is larger than the padded input \(W = 5 \+ 2 \* pad 1 = 7\); "
                                         r"w's WW \(shape \(4, 3, 3, 8\)\) must be at most 7, or conv_param\['pad'\] at least 2\.$"):
        forward(inp["x"][:, :, :, :5], np.zeros((4, 3, 3, 8)), inp["b"], {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=rf"{name}: x has 3 channels \(shape \(2, 3, 8, 8\)\) but w has 2 \(shape \(4, 2, 3, 3\)\)"):
        forward(inp["x"], np.zeros((4, 2, 3, 3)), inp["b"], {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=rf"{name}: b must have shape \(4,\), one bias per filter"):
        forward(inp["x"], inp["w"], np.zeros(3), {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=rf"{name}: conv_param\['stride'\] must be an int >= 1, got 0"):
        forward(**inp, conv_param={"stride": 0, "pad": 1})
    for bad in (1.0, True, "1", None):
        with pytest.raises(NotAnInteger, match=rf"^{name}: conv_param\['pad'\] must be an int >= 0, got {re.escape(repr(bad))}\.$"):
            forward(**inp, conv_param={"stride": 1, "pad": bad})
    with pytest.raises(ValueError, match=rf"{name}: conv_param has unknown key\(s\) \['padding'\]"):
        forward(**inp, conv_param={"stride": 1, "padding": 1})
    with pytest.raises(ValueError, match=rf"{name}: x must be 4-D, got shape \(3, 8, 8\)"):
        forward(inp["x"][0], inp["w"], inp["b"], {"stride": 1, "pad": 1})


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
def test_integer_bias_of_the_courses_image_filter_demo_works(forward):
    """b = np.array([0, 128]) (and integer filters) give the same maps as their float copies, in x's dtype."""
    rng = np.random.default_rng(7)
    w = np.zeros((2, 3, 3, 3), dtype=np.int64)
    w[0, :, 1, 1] = [1, 2, 1]  # a grayscale-like filter and an edge filter, both integers
    w[1, 2] = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    b = np.array([0, 128])
    for dtype in (np.float32, np.float64):
        x = rng.uniform(0, 255, (2, 3, 6, 6)).astype(dtype)
        out, cache = forward(x, w, b, {"stride": 1, "pad": 1})
        expected, _ = forward(x, w.astype(dtype), b.astype(dtype), {"stride": 1, "pad": 1})
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)
        backward = conv_backward_naive if forward is conv_forward_naive else conv_backward_fast
        _, dw, db = backward(np.ones_like(out), cache)
        assert dw.dtype == dtype and db.dtype == dtype


@pytest.mark.parametrize("forward", [conv_forward_naive, conv_forward_fast])
def test_parameters_that_would_change_or_mix_dtypes_are_still_refused(forward):
    """float32/float64 mixes, booleans, objects and integers that would round are TypeErrors naming the argument."""
    name = forward.__name__
    x32 = _inputs((1, 2, 4, 4), (2, 2, 3, 3), dtype=np.float32)
    param = {"stride": 1, "pad": 1}
    with pytest.raises(TypeError, match=rf"{name}: w has dtype float64 but the other inputs are float32"):
        forward(x32["x"], x32["w"].astype(np.float64), x32["b"], param)
    with pytest.raises(TypeError, match=rf"{name}: b must have a floating-point dtype, got bool"):
        forward(x32["x"], x32["w"], np.array([True, False]), param)
    with pytest.raises(TypeError, match=rf"{name}: b must have a floating-point dtype, got object"):
        forward(x32["x"], x32["w"], np.array([0, 128], dtype=object), param)
    with pytest.raises(TypeError, match=rf"{name}: b holds integers that float32 cannot represent exactly \(x is float32\); "
                                        r"got 16777217, which would become 16777216.0"):
        forward(x32["x"], x32["w"], np.array([0, 2**24 + 1]), param)
    with pytest.raises(TypeError, match=rf"{name}: b holds integers that float64 cannot represent exactly"):
        forward(x32["x"].astype(np.float64), x32["w"].astype(np.float64), np.array([2**63 - 1, 0], np.uint64), param)
    assert forward(x32["x"], x32["w"], np.array([2**30, -2**30]), param)[0].dtype == np.float32  # large but exact
