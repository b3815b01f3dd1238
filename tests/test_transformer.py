"""Tests for layers.transformer: multi-head attention and the pre-LN transformer block.

The generic properties run over the declared cases in tests/test_registry.py; here is what is
particular to them: heads are contiguous blocks of features attending alone, masks broadcast over
samples and heads, self-attention's three gradients, the block's residual stream, and agreement
with PyTorch under padding masks with a fully masked row."""

import math

import numpy as np
import pytest

import layers
from harness import assert_backward_matches_numeric, assert_dtype_preserved, random_dout
from layers import (
    causal_mask,
    multihead_attention_backward,
    multihead_attention_forward,
    scaled_dot_product_attention_forward,
    transformer_block_backward,
    transformer_block_forward,
)
from layers.attention import padding_mask
from layers.transformer import multihead_arguments, torch_block, torch_multihead

# The sequence layers' marker (setup.cfg has no attention marker of its own yet).
pytestmark = pytest.mark.attention

# The same float64 operations rearranged (heads one at a time) agree up to rounding.
EXACT = 1e-12
# float64 outputs and gradients against PyTorch's plain ops and autograd (as tests/test_registry.py).
TORCH_RTOL = 1e-10
TORCH_ATOL = 1e-12
# float32 results against exact sums (weights summing to 1): a few float32 roundings.
FLOAT32_RTOL = 1e-5
MHA = "multihead_attention_forward"
BLOCK = "transformer_block_forward"


def _mha_inputs(N=2, Tq=3, Tk=4, E=6, seed=0, dtype=np.float64):
    """query, key, value and the eight projections, as a dict in multihead_attention_forward's order."""
    rng = np.random.default_rng(seed)
    inputs = {"query": rng.standard_normal((N, Tq, E)), "key": rng.standard_normal((N, Tk, E)),
              "value": rng.standard_normal((N, Tk, E))}
    for name in ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo"):
        inputs[name] = rng.standard_normal((E,) if name.startswith("b") else (E, E)) / math.sqrt(E)
    return {k: v.astype(dtype) for k, v in inputs.items()}


def _block_inputs(seed=0):
    """The declared block case's float64 inputs (N, T, E, nh, M) = (2, 3, 4, 2, 8), and its params."""
    return layers.case(BLOCK).build("check", np.float64, seed=seed)


# -- multi-head attention

def _per_head_reference(p, num_heads, mask=None):
    """Multi-head attention computed one head at a time with 2-D arrays, the heads then concatenated."""
    N, Tq, E = p["query"].shape
    hs = E // num_heads
    out = np.empty((N, Tq, E))
    for n in range(N):
        heads = []
        for h in range(num_heads):
            cols = slice(h * hs, (h + 1) * hs)
            q = p["query"][n] @ p["Wq"][:, cols] + p["bq"][cols]
            k = p["key"][n] @ p["Wk"][:, cols] + p["bk"][cols]
            v = p["value"][n] @ p["Wv"][:, cols] + p["bv"][cols]
            head_mask = None if mask is None else mask if mask.ndim == 2 else mask[n, min(h, mask.shape[1] - 1)]
            heads.append(scaled_dot_product_attention_forward(q, k, v, head_mask)[0])
        out[n] = np.concatenate(heads, axis=1) @ p["Wo"] + p["bo"]
    return out


@pytest.mark.parametrize("num_heads", [1, 2, 3, 6])
def test_multihead_attention_is_each_head_attending_alone_then_concatenated(num_heads):
    """Splitting E into contiguous blocks, one per head, and attending in all at once equals a loop over heads."""
    p = _mha_inputs()
    out, cache = multihead_attention_forward(*p.values(), num_heads)
    np.testing.assert_allclose(out, _per_head_reference(p, num_heads), rtol=EXACT, atol=EXACT)
    assert cache.attention.weights.shape == (2, num_heads, 3, 4)


def test_multihead_mask_broadcasts_over_samples_and_heads():
    """A (Tq, Tk) mask, the same as (1, 1, Tq, Tk) and as its copy in every sample and head; a (N, 1, Tq, Tk)
    padding mask with a fully masked row equals the per-head loop."""
    p = _mha_inputs(Tq=4, Tk=4)
    mask = causal_mask(4)
    out, _ = multihead_attention_forward(*p.values(), 3, mask)
    np.testing.assert_allclose(out, _per_head_reference(p, 3, mask), rtol=EXACT, atol=EXACT)
    np.testing.assert_array_equal(multihead_attention_forward(*p.values(), 3, mask[None, None])[0], out)
    np.testing.assert_array_equal(multihead_attention_forward(*p.values(), 3, np.tile(mask, (2, 3, 1, 1)))[0], out)
    padding = padding_mask(np.random.default_rng(3), 2, 4, 4)
    out, cache = multihead_attention_forward(*p.values(), 3, padding)
    np.testing.assert_allclose(out, _per_head_reference(p, 3, padding), rtol=EXACT, atol=EXACT)
    assert not cache.attention.weights[-1, :, -1].any()
    np.testing.assert_array_equal(out[-1, -1], p["bo"])  # a fully masked query: zero heads, then the bias


def test_self_attention_returns_one_gradient_per_argument_which_the_caller_adds():
    """With one array as query, key and value, backward returns three separate gradients whose sum matches
    centered differences of the output with respect to that array."""
    p = _mha_inputs(Tq=4, Tk=4)
    x, projections = p["query"], list(p.values())[3:]
    out, cache = multihead_attention_forward(x, x, x, *projections, 2, causal_mask(4))
    grads = multihead_attention_backward(random_dout(out, 0), cache)
    assert len(grads) == 11 and len({id(g) for g in grads[:3]}) == 3
    assert not any(np.shares_memory(grads[i], grads[j]) for i, j in ((0, 1), (0, 2), (1, 2)))

    def forward(x):
        return multihead_attention_forward(x, x, x, *projections, 2, causal_mask(4))

    def backward(dout, cache):
        dquery, dkey, dvalue = multihead_attention_backward(dout, cache)[:3]
        return dquery + dkey + dvalue

    (dx,) = assert_backward_matches_numeric(forward, backward, {"x": x})
    np.testing.assert_allclose(dx, grads[0] + grads[1] + grads[2], rtol=EXACT)


def test_multihead_attention_refuses_bad_heads_masks_and_shapes():
    """num_heads not a positive int or not dividing E, a 3-D mask, wrong projections: refused, naming
    multihead_attention_forward and the argument."""
    p = _mha_inputs()
    args = list(p.values())
    with pytest.raises(ValueError, match=rf"^{MHA}: E = 6 features \(query of shape \(2, 3, 6\)\) do not split into "
                                         r"num_heads = 4 heads; E must be a multiple of num_heads"):
        multihead_attention_forward(*args, 4)
    for heads, error in ((0, ValueError), (2.0, TypeError), (True, TypeError), (None, TypeError)):
        with pytest.raises(error, match=f"^{MHA}: num_heads must be an int >= 1"):
            multihead_attention_forward(*args, heads)
    with pytest.raises(ValueError, match=rf"^{MHA}: mask must be 2-D \(Tq, Tk\).* got shape \(2, 3, 4\)"):
        multihead_attention_forward(*args, 2, np.ones((2, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match=rf"^{MHA}: mask has shape \(3, 3\), which does not broadcast"):
        multihead_attention_forward(*args, 2, causal_mask(3))
    bad = dict(p, Wk=p["Wk"][:, :4])
    with pytest.raises(ValueError, match=rf"^{MHA}: Wk must have shape \(6, 6\) for E = 6 .* got \(6, 4\)"):
        multihead_attention_forward(*bad.values(), 2)
    bad = dict(p, value=p["value"][:, :3])
    with pytest.raises(ValueError, match=rf"^{MHA}: query has shape .* key and value must both be \(2, Tk, 6\)"):
        multihead_attention_forward(*bad.values(), 2)
    with pytest.raises(ValueError, match=f"^{MHA}: query must be 3-D"):
        multihead_attention_forward(p["query"][0], *args[1:], 2)


def test_multihead_arguments_converts_integer_weights_and_the_mask():
    """Integer projections become query's dtype and a 0/1 mask booleans, as every layer's parameters do."""
    p = _mha_inputs(Tq=4, Tk=4, dtype=np.float32)
    p["bo"] = np.arange(6)
    checked = multihead_arguments("f", p["query"], p["key"], p["value"], list(p.values())[3:], 2,
                                  causal_mask(4).astype(np.int8))
    assert checked[3][-1].dtype == np.float32 and checked[4] == 2 and checked[5].dtype == bool


def test_multihead_attention_keeps_float32():
    """float32 inputs give a float32 output and eleven float32 gradients, each shaped like its input."""
    assert_dtype_preserved(multihead_attention_forward, multihead_attention_backward,
                           _mha_inputs(dtype=np.float32), params={"num_heads": 3, "mask": causal_mask(4)[1:]})


def test_multihead_attention_agrees_with_pytorch_under_a_padding_mask():
    """Output and the eleven gradients equal PyTorch's plain ops under autograd, fully masked row included."""
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install chainrule[bench])")
    p = _mha_inputs(N=3, Tq=4, Tk=5)
    params = {"num_heads": 3, "mask": padding_mask(np.random.default_rng(1), 3, 4, 5)}
    tensors = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in p.items()}
    theirs = torch_multihead(torch, tensors["query"], tensors["key"], tensors["value"], tensors, params)
    out, cache = multihead_attention_forward(*p.values(), **params)
    np.testing.assert_allclose(out, theirs.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    dout = random_dout(out, 0)
    theirs.backward(torch.from_numpy(dout))
    for (name, tensor), grad in zip(tensors.items(), multihead_attention_backward(dout, cache)):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL, err_msg=f"d{name}")


# -- the transformer block

def test_transformer_block_with_zero_output_projections_is_the_identity():
    """With Wo, bo, W2 and b2 zero both sublayers add 0: the block passes the residual stream x through."""
    inputs, params = _block_inputs()
    for name in ("Wo", "bo", "W2", "b2"):
        inputs[name] = np.zeros_like(inputs[name])
    out, _ = transformer_block_forward(*inputs.values(), **params)
    np.testing.assert_array_equal(out, inputs["x"])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_transformer_block_backward_matches_numeric_gradient_under_a_padding_mask(approximate):
    """All seventeen gradients match centered differences, under a padding mask with a fully masked row."""
    inputs, params = _block_inputs(seed=1)
    params = dict(params, mask=padding_mask(np.random.default_rng(0), 2, 3, 3), approximate=approximate)
    grads = assert_backward_matches_numeric(transformer_block_forward, transformer_block_backward, inputs, params)
    assert len(grads) == 17


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_transformer_block_agrees_with_pytorch_autograd(approximate):
    """The block's output and gradients equal PyTorch's plain ops (layer_norm, gelu, matmuls) under autograd."""
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install chainrule[bench])")
    inputs, params = _block_inputs(seed=2)
    params = dict(params, mask=padding_mask(np.random.default_rng(1), 2, 3, 3), approximate=approximate,
                  ln_param={"eps": 1e-3})
    tensors = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in inputs.items()}
    theirs = torch_block(torch, tensors, params)
    out, cache = transformer_block_forward(*inputs.values(), **params)
    np.testing.assert_allclose(out, theirs.detach().numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL)
    dout = random_dout(out, 0)
    theirs.backward(torch.from_numpy(dout))
    for (name, tensor), grad in zip(tensors.items(), transformer_block_backward(dout, cache)):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=TORCH_RTOL, atol=TORCH_ATOL, err_msg=f"d{name}")


def test_transformer_block_keeps_float32_and_exposes_the_attention_weights():
    """float32 in, float32 out and gradients; the cache holds the causal attention weights of every head."""
    inputs, params = layers.case(BLOCK).build("check", np.float32)
    assert_dtype_preserved(transformer_block_forward, transformer_block_backward, inputs, params)
    _, cache = transformer_block_forward(*inputs.values(), **params)
    weights = cache.attention_cache.attention.weights
    assert weights.shape == (2, 2, 3, 3) and weights.dtype == np.float32 and np.all(np.triu(weights, 1) == 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1, rtol=FLOAT32_RTOL)


def test_transformer_block_refuses_bad_parameters_naming_them():
    """Wrong feed-forward and layer-norm shapes, E % num_heads, a bad approximate or ln_param: refused by name."""
    inputs, params = _block_inputs()
    cases = [
        (dict(inputs, W2=inputs["W2"][:5]), {}, ValueError, r"W2 must have shape \(M, E\) = \(8, 4\) .* got \(5, 4\)"),
        (dict(inputs, b1=inputs["b1"][:4]), {}, ValueError, r"b1 must have shape \(M,\) = \(8,\)"),
        (dict(inputs, ln2_beta=inputs["ln2_beta"][:3]), {}, ValueError, r"ln2_beta must have shape \(E,\) = \(4,\)"),
        (inputs, {"num_heads": 3}, ValueError, r"E = 4 features \(x of shape \(2, 3, 4\)\) do not split"),
        (inputs, {"approximate": "fast"}, ValueError, "approximate must be one of"),
        (inputs, {"ln_param": 1e-5}, TypeError, "ln_param must be None or a dict"),
        (dict(inputs, x=inputs["x"][0]), {}, ValueError, "x must be 3-D"),
    ]
    for arrays, settings, error, words in cases:
        with pytest.raises(error, match=f"^{BLOCK}: {words}"):
            transformer_block_forward(*arrays.values(), **{**params, **settings})
