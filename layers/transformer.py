"""The transformer's layers: multi-head attention and the pre-LN transformer block, both built
from the attention of layers/attention.py, and their backward passes by the chain rule through
their parts (as the sandwich layers of layers/sandwich.py are).

Multi-head attention (Vaswani et al., 2017, section 3.2.2) projects with x W + b
(temporal_affine_forward), splits the E features into nh contiguous blocks of hs = E / nh (head j
reads features j hs to (j + 1) hs - 1), attends in every head at once (scaled dot-product
attention over the stacked (N, nh) axes: no loop over heads), joins the heads side by side again
and projects them with Wo, bo.

The pre-LN block (as in GPT-2; Xiong et al., 2020, "On layer normalization in the transformer
architecture") normalizes before each sublayer and adds its output to the residual stream:

    y = x + MHA(LN1(x))                            LN1(x) is query, key and value at once
    out = y + GELU(LN2(y) W1 + b1) W2 + b2         the feed-forward net, the same at every position

Backward walks it in reverse. x and y each reach the output twice, along the residual and through
their sublayer, so their gradients are sums of two terms; LN1(x), used as query, key and value,
gets the sum of the three gradients (the copy gate's rule).

Shape letters: N batch, T positions (Tq queries, Tk keys), E model width, nh heads, hs = E / nh
the width of one head, M the feed-forward net's hidden width (4 E in the paper).
"""

from __future__ import annotations

from layers.activations import GELU_APPROXIMATIONS, gelu_backward, gelu_forward
from layers.affine import affine_backward, affine_forward
from layers.attention import (attention_mask, causal_mask, scaled_dot_product_attention_backward,
                              scaled_dot_product_attention_forward, torch_attention)
from layers.cases import LayerCase, normal
from layers.normalization import layernorm_backward, layernorm_forward
from layers.temporal import temporal_affine_backward, temporal_affine_forward
from layers.validate import cache_type, check_cache, float_array, integer, param_array, returns_cache, upstream

__all__ = ["multihead_attention_forward", "multihead_attention_backward", "transformer_block_forward",
           "transformer_block_backward"]

MultiheadAttentionCache = cache_type("multihead_attention_forward", "q_cache k_cache v_cache attention o_cache")
TransformerBlockCache = cache_type("transformer_block_forward",
                                   "ln1_cache attention_cache ln2_cache fc1_cache gelu_cache fc2_cache")
# The projections of multi-head attention, in its argument order.
PROJECTIONS = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")


def multihead_arguments(fn, query, key, value, projections, num_heads, mask, x_name="query"):
    """Check multi-head attention's arguments (also the transformer block's, with its own fn).

    Args:
        fn: the calling function, for messages; query, key, value: its inputs.
        projections: (Wq, bq, Wk, bk, Wv, bv, Wo, bo); num_heads: nh; mask: as multihead_attention_forward's.
        x_name: what the messages call query (the transformer block's "x").

    Returns:
        (query, key, value, projections, nh, mask), the parameters converted to query's dtype when they
        are integer arrays and the mask to booleans (or None).

    Shape:
        query: (N, Tq, E); key, value: (N, Tk, E); W*: (E, E); b*: (E,)
        mask: (Tq, Tk), or 4-D and broadcastable to (N, nh, Tq, Tk)
    """
    query = float_array(fn, "query", query, ndim=3, batch=True)
    key = float_array(fn, "key", key, ndim=3, dtype=query.dtype)
    value = float_array(fn, "value", value, ndim=3, dtype=query.dtype)
    N, Tq, E = query.shape
    if key.shape[0] != N or key.shape[2] != E or value.shape != key.shape:
        raise ValueError(f"{fn}: query has shape {query.shape} but key has shape {key.shape} and value {value.shape}; "
                         f"key and value must both be ({N}, Tk, {E}).")
    if 0 in (Tq, E, key.shape[1]):
        raise ValueError(f"{fn}: query {query.shape} and key {key.shape} need Tq, Tk, E >= 1.")
    nh = integer(fn, "num_heads", num_heads, low=1)
    if E % nh:
        raise ValueError(f"{fn}: E = {E} features ({x_name} of shape {query.shape}) do not split into num_heads = {nh} "
                         f"heads; E must be a multiple of num_heads.")
    checked = []
    for name, p in zip(PROJECTIONS, projections):
        p = param_array(fn, name, p, query.dtype)
        want = (E,) if name.startswith("b") else (E, E)
        if p.shape != want:
            raise ValueError(f"{fn}: {name} must have shape {want} for E = {E} ({x_name} of shape {query.shape}), "
                             f"got {p.shape}.")
        checked.append(p)
    if mask is not None and getattr(mask, "ndim", 2) not in (2, 4):
        raise ValueError(f"{fn}: mask must be 2-D (Tq, Tk), for every sample and head, or 4-D, broadcastable to "
                         f"(N, nh, Tq, Tk); got shape {mask.shape} (a mask per sample is mask[:, None], "
                         f"(N, 1, Tq, Tk)).")
    return query, key, value, tuple(checked), nh, attention_mask(fn, mask, (N, nh, Tq, key.shape[1]))


def _split_heads(x, nh):
    """(N, T, E) -> (N, nh, T, hs), a view: head j holds features j hs to (j + 1) hs - 1."""
    N, T, E = x.shape
    return x.reshape(N, T, nh, E // nh).transpose(0, 2, 1, 3)


def _join_heads(x):
    """(N, nh, T, hs) -> (N, T, nh hs), the heads side by side (a copy)."""
    N, nh, T, hs = x.shape
    return x.transpose(0, 2, 1, 3).reshape(N, T, nh * hs)


@returns_cache(MultiheadAttentionCache)
def multihead_attention_forward(query, key, value, Wq, bq, Wk, bk, Wv, bv, Wo, bo, num_heads, mask=None):
    """Multi-head attention: project, attend in num_heads heads at once, join the heads, project.

    Self-attention passes one array as query, key and value; its backward still returns three
    gradients, one per argument, which the caller adds up.

    Args:
        query: the sequences that ask; key, value: the sequences attended to.
        Wq, bq, Wk, bk, Wv, bv: the projections x W + b of the queries, keys and values.
        Wo, bo: the output projection of the joined heads.
        num_heads: nh, an int >= 1 dividing E.
        mask: None, or booleans or 0/1 numbers (True / 1: may attend), (Tq, Tk) for every sample and
            head or 4-D broadcastable to (N, nh, Tq, Tk) (e.g. (N, 1, Tq, Tk) for every head alike).

    Returns:
        out: the attended sequences.
        cache: (q_cache, k_cache, v_cache, attention, o_cache); cache.attention.weights are the weights.

    Shape:
        query, out: (N, Tq, E); key, value: (N, Tk, E); W*: (E, E); b*: (E,)
        cache.attention.weights: (N, nh, Tq, Tk)
    """
    query, key, value, (Wq, bq, Wk, bk, Wv, bv, Wo, bo), nh, mask = multihead_arguments(
        "multihead_attention_forward", query, key, value, (Wq, bq, Wk, bk, Wv, bv, Wo, bo), num_heads, mask)
    # BEGIN SOLUTION
    Q, q_cache = temporal_affine_forward(query, Wq, bq)     # (N, Tq, E)
    K, k_cache = temporal_affine_forward(key, Wk, bk)       # (N, Tk, E)
    V, v_cache = temporal_affine_forward(value, Wv, bv)     # (N, Tk, E)
    heads, attention = scaled_dot_product_attention_forward(
        _split_heads(Q, nh), _split_heads(K, nh), _split_heads(V, nh), mask)   # (N, nh, Tq, hs)
    out, o_cache = temporal_affine_forward(_join_heads(heads), Wo, bo)        # (N, Tq, E) @ (E, E) -> (N, Tq, E)
    # END SOLUTION
    return out, (q_cache, k_cache, v_cache, attention, o_cache)


def multihead_attention_backward(dout, cache):
    """Backward pass of multi-head attention: the output projection, the heads, the three input projections.

    Args:
        dout: upstream gradient; cache: from multihead_attention_forward.

    Returns:
        dquery, dkey, dvalue, dWq, dbq, dWk, dbk, dWv, dbv, dWo, dbo: the eleven gradients of forward's
        array inputs, in its order (three separate arrays even when query, key and value were one).

    Shape:
        dout, dquery: (N, Tq, E); dkey, dvalue: (N, Tk, E); dW*: (E, E); db*: (E,)
    """
    fn = "multihead_attention_backward"
    q_cache, k_cache, v_cache, attention, o_cache = check_cache(fn, cache, MultiheadAttentionCache)
    dout = upstream(fn, dout, o_cache.x.shape, o_cache.x.dtype)
    nh = attention.q.shape[1]
    # BEGIN SOLUTION
    dheads, dWo, dbo = temporal_affine_backward(dout, o_cache)                  # (N, Tq, E)
    dq, dk, dv = scaled_dot_product_attention_backward(_split_heads(dheads, nh), attention)  # (N, nh, T, hs)
    dquery, dWq, dbq = temporal_affine_backward(_join_heads(dq), q_cache)       # (N, Tq, E)
    dkey, dWk, dbk = temporal_affine_backward(_join_heads(dk), k_cache)         # (N, Tk, E)
    dvalue, dWv, dbv = temporal_affine_backward(_join_heads(dv), v_cache)       # (N, Tk, E)
    # END SOLUTION
    return dquery, dkey, dvalue, dWq, dbq, dWk, dbk, dWv, dbv, dWo, dbo


def _block_parameters(fn, x, named):
    """The block's parameters besides attention's, checked against x: its dtype (integer arrays are
    converted) and their shapes. named maps ln1_gamma, ln1_beta, ln2_gamma, ln2_beta, W1, b1, W2, b2
    to their values; returns the checked values under the same names.

    Shape:
        x: (N, T, E); ln*_gamma, ln*_beta, b2: (E,); W1: (E, M); b1: (M,); W2: (M, E)
    """
    E = x.shape[2]
    checked = {name: param_array(fn, name, value, x.dtype, ndim=2 if name in ("W1", "W2") else None)
               for name, value in named.items()}
    M = checked["W1"].shape[1]
    want = {"W1": ((E, M), "(E, M)"), "b1": ((M,), "(M,)"), "W2": ((M, E), "(M, E)")}
    for name, value in checked.items():
        shape, layout = want.get(name, ((E,), "(E,)"))
        if value.shape != shape:
            raise ValueError(f"{fn}: {name} must have shape {layout} = {shape} for x of shape {x.shape} (E = {E}, "
                             f"M = {M} from W1 of shape {checked['W1'].shape}), got {value.shape}.")
    return checked


@returns_cache(TransformerBlockCache)
def transformer_block_forward(x, ln1_gamma, ln1_beta, Wq, bq, Wk, bk, Wv, bv, Wo, bo, ln2_gamma, ln2_beta,
                              W1, b1, W2, b2, num_heads, mask=None, ln_param=None, approximate="none"):
    """A pre-LN transformer block: self-attention and a feed-forward net, each after a layer norm
    and added to the residual stream (the equations are in the module docstring).

    Args:
        x: the input sequences.
        ln1_gamma, ln1_beta: the first layer norm's scale and shift (before attention).
        Wq, bq, Wk, bk, Wv, bv, Wo, bo: the self-attention's projections, as for multihead_attention_forward.
        ln2_gamma, ln2_beta: the second layer norm's scale and shift (before the feed-forward net).
        W1, b1, W2, b2: the feed-forward net, GELU(h W1 + b1) W2 + b2 at every position.
        num_heads: nh, an int >= 1 dividing E.
        mask: as for multihead_attention_forward; causal_mask(T) for a decoder.
        ln_param: both layer norms' ln_param ({"eps": 1e-5} by default).
        approximate: GELU's form, "none" (exact, the default) or "tanh" (GPT-2's).

    Returns:
        out: the block's output, the new residual stream.
        cache: (ln1_cache, attention_cache, ln2_cache, fc1_cache, gelu_cache, fc2_cache), its parts'
            caches; cache.attention_cache.attention.weights are the attention weights.

    Shape:
        x, out: (N, T, E); ln*_gamma, ln*_beta, b*, b2: (E,); W*: (E, E); W1: (E, M); b1: (M,); W2: (M, E)
    """
    fn = "transformer_block_forward"
    x = float_array(fn, "x", x, ndim=3, batch=True)
    x, _, _, attention_params, nh, mask = multihead_arguments(fn, x, x, x, (Wq, bq, Wk, bk, Wv, bv, Wo, bo),
                                                              num_heads, mask, x_name="x")
    p = _block_parameters(fn, x, dict(ln1_gamma=ln1_gamma, ln1_beta=ln1_beta, ln2_gamma=ln2_gamma, ln2_beta=ln2_beta,
                                      W1=W1, b1=b1, W2=W2, b2=b2))
    if ln_param is not None and not isinstance(ln_param, dict):
        raise TypeError(f"{fn}: ln_param must be None or a dict such as {{'eps': 1e-5}}, "
                        f"got {type(ln_param).__name__}.")
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"{fn}: approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r}.")
    ln_param = {} if ln_param is None else ln_param
    N, T, E = x.shape
    # BEGIN SOLUTION
    h1, ln1_cache = layernorm_forward(x.reshape(N * T, E), p["ln1_gamma"], p["ln1_beta"], ln_param)  # (N T, E)
    h1 = h1.reshape(N, T, E)
    a, attention_cache = multihead_attention_forward(h1, h1, h1, *attention_params, nh, mask)     # (N, T, E)
    y = x + a                                                                                        # the residual
    h2, ln2_cache = layernorm_forward(y.reshape(N * T, E), p["ln2_gamma"], p["ln2_beta"], ln_param)  # (N T, E)
    z, fc1_cache = affine_forward(h2, p["W1"], p["b1"])        # (N T, E) @ (E, M) -> (N T, M)
    g, gelu_cache = gelu_forward(z, approximate)
    f, fc2_cache = affine_forward(g, p["W2"], p["b2"])         # (N T, M) @ (M, E) -> (N T, E)
    out = y + f.reshape(N, T, E)                               # the residual
    # END SOLUTION
    return out, (ln1_cache, attention_cache, ln2_cache, fc1_cache, gelu_cache, fc2_cache)


def transformer_block_backward(dout, cache):
    """Backward pass of the pre-LN transformer block: the feed-forward net, then attention, each
    gradient of the residual stream the sum of its two paths.

    Args:
        dout: upstream gradient; cache: from transformer_block_forward.

    Returns:
        dx, dln1_gamma, dln1_beta, dWq, dbq, dWk, dbk, dWv, dbv, dWo, dbo, dln2_gamma, dln2_beta, dW1, db1,
        dW2, db2: the seventeen gradients of forward's array inputs, in its order.

    Shape:
        dout, dx: (N, T, E); the others shaped like their parameters
    """
    fn = "transformer_block_backward"
    ln1_cache, attention_cache, ln2_cache, fc1_cache, gelu_cache, fc2_cache = check_cache(fn, cache,
                                                                                          TransformerBlockCache)
    N, T, E = attention_cache.q_cache.x.shape
    dout = upstream(fn, dout, (N, T, E), ln1_cache.xhat.dtype)
    # BEGIN SOLUTION
    dg, dW2, db2 = affine_backward(dout.reshape(N * T, E), fc2_cache)   # (N T, M)
    dz = gelu_backward(dg, gelu_cache)
    dh2, dW1, db1 = affine_backward(dz, fc1_cache)                      # (N T, E)
    dy_norm, dln2_gamma, dln2_beta = layernorm_backward(dh2, ln2_cache)
    dy = dout + dy_norm.reshape(N, T, E)      # y reaches out along the residual and through LN2 and the net
    dq, dk, dv, dWq, dbq, dWk, dbk, dWv, dbv, dWo, dbo = multihead_attention_backward(dy, attention_cache)
    dh1 = dq + dk + dv                        # LN1(x) was query, key and value: the copy gate adds
    dx_norm, dln1_gamma, dln1_beta = layernorm_backward(dh1.reshape(N * T, E), ln1_cache)
    dx = dy + dx_norm.reshape(N, T, E)        # x reaches y along the residual and through LN1 and attention
    # END SOLUTION
    return (dx, dln1_gamma, dln1_beta, dWq, dbq, dWk, dbk, dWv, dbv, dWo, dbo, dln2_gamma, dln2_beta, dW1, db1,
            dW2, db2)


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

# (N, Tq, Tk, E, nh) of multi-head attention and (N, T, E, nh, M) of the block at each size. N differs
# from the other arrays' leading lengths, so the empty-batch test cuts the batch alone.
_MHA = {"check": (2, 3, 5, 4, 2), "course": (10, 20, 20, 64, 4), "training": (32, 64, 64, 256, 8)}
_BLOCK = {"check": (2, 3, 4, 2, 8), "course": (10, 20, 64, 4, 256), "training": (32, 64, 256, 8, 1024)}


def _projections(rng, E, dtype):
    """Wq, bq, ..., Wo, bo: weights of scale 1 / sqrt(E), which keep the scores of order 1."""
    return {name: normal(rng, (E,), dtype, scale=0.5) if name.startswith("b") else normal(rng, (E, E), dtype,
                                                                                           scale=E**-0.5)
            for name in PROJECTIONS}


def _make_mha(causal=False):
    def make(rng, size, dtype):
        N, Tq, Tk, E, nh = _MHA[size]
        Tk = Tq if causal else Tk
        inputs = {"query": normal(rng, (N, Tq, E), dtype), "key": normal(rng, (N, Tk, E), dtype),
                  "value": normal(rng, (N, Tk, E), dtype), **_projections(rng, E, dtype)}
        return inputs, ({"num_heads": nh, "mask": causal_mask(Tq)} if causal else {"num_heads": nh})
    return make


def _make_block(rng, size, dtype):
    N, T, E, nh, M = _BLOCK[size]

    def norm(prefix):
        return {f"{prefix}_gamma": normal(rng, (E,), dtype, scale=0.1, shift=1.0),
                f"{prefix}_beta": normal(rng, (E,), dtype, scale=0.1)}

    inputs = {"x": normal(rng, (N, T, E), dtype), **norm("ln1"), **_projections(rng, E, dtype), **norm("ln2"),
              "W1": normal(rng, (E, M), dtype, scale=E**-0.5), "b1": normal(rng, (M,), dtype, scale=0.5),
              "W2": normal(rng, (M, E), dtype, scale=M**-0.5), "b2": normal(rng, (E,), dtype, scale=0.5)}
    return inputs, {"num_heads": nh, "mask": causal_mask(T)}


def torch_multihead(torch, query, key, value, t, p):
    """multihead_attention_forward in plain PyTorch ops: t maps Wq, ..., bo to tensors, p holds num_heads
    and the mask (None or absent: none).

    Shape:
        query: (N, Tq, E); key, value: (N, Tk, E); result: (N, Tq, E)
    """
    N, Tq, E = query.shape
    nh = p["num_heads"]

    def heads(x, W, b):  # (N, T, E) -> (N, nh, T, hs)
        return (x @ t[W] + t[b]).reshape(N, x.shape[1], nh, E // nh).transpose(1, 2)

    out = torch_attention(torch, heads(query, "Wq", "bq"), heads(key, "Wk", "bk"), heads(value, "Wv", "bv"),
                          p.get("mask"))                                      # (N, nh, Tq, hs)
    return out.transpose(1, 2).reshape(N, Tq, E) @ t["Wo"] + t["bo"]


def torch_block(torch, t, p):
    """transformer_block_forward in plain PyTorch ops: t maps its argument names to tensors, p holds
    num_heads and, if given, mask, ln_param and approximate."""
    F, E = torch.nn.functional, t["x"].shape[-1]
    eps = (p.get("ln_param") or {}).get("eps", 1e-5)
    h1 = F.layer_norm(t["x"], (E,), t["ln1_gamma"], t["ln1_beta"], eps=eps)
    y = t["x"] + torch_multihead(torch, h1, h1, h1, t, p)
    h2 = F.layer_norm(y, (E,), t["ln2_gamma"], t["ln2_beta"], eps=eps)
    return y + F.gelu(h2 @ t["W1"] + t["b1"], approximate=p.get("approximate", "none")) @ t["W2"] + t["b2"]


def _torch_mha(torch, t, p):
    return torch_multihead(torch, t["query"], t["key"], t["value"], t, p)


CASES = (
    LayerCase("multihead_attention_forward", multihead_attention_forward, multihead_attention_backward, _make_mha(),
              torch=_torch_mha, target={"training": 2.0}),
    LayerCase("multihead_attention_forward (causal)", multihead_attention_forward, multihead_attention_backward,
              _make_mha(causal=True), graded=False, bench=False, torch=_torch_mha),
    LayerCase("transformer_block_forward", transformer_block_forward, transformer_block_backward, _make_block,
              graded=False, bench=False, torch=torch_block),
)
