"""The transformer decoder of solver.charlm's CharLM(cell_type="transformer"): its parameters, its
forward pass and its backward pass, built from the layers.

    x0 = W_embed[chars] + P[:T]                        P = positional_encoding(T, E)
    x_i = transformer_block(x_{i-1}, block i's params, causal mask)      i = 1..L
    scores = LN_f(x_L) W_vocab + b_vocab

Block i's parameters are the block's own names with i appended (``Wq1``, ``ln2_gamma1``, ...).

Shape letters: N sequences, T positions, E model width, M feed-forward width, V vocabulary.
"""

from __future__ import annotations

import math

import numpy as np

from layers import (layernorm_backward, layernorm_forward, temporal_affine_backward, temporal_affine_forward,
                    transformer_block_backward, transformer_block_forward, word_embedding_backward,
                    word_embedding_forward)
from layers.attention import causal_mask, positional_encoding

__all__ = ["BLOCK_PARAMS", "init_params", "forward", "backward"]

# A block's array arguments, in transformer_block_forward's order.
BLOCK_PARAMS = ("ln1_gamma", "ln1_beta", "Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo", "ln2_gamma", "ln2_beta",
                "W1", "b1", "W2", "b2")


def init_params(draw, V, E, M, num_layers):
    """Initial float64 parameters of a decoder of num_layers blocks.

    Character vectors have std 0.5, the scale of the positional table's entries (rms 0.71), so
    neither drowns the other; projections have std 1 / sqrt(fan-in), and each block's last
    projection of a sublayer (Wo, W2) is further scaled by 1 / sqrt(2 num_layers), so the residual
    stream grows little with depth (as in GPT-2). Layer norms start as the identity, biases at 0.

    Args:
        draw: draw(shape) -> standard normal float64 array (solver.net_common.normal_draws).
        V, E, M: vocabulary, model width, feed-forward width; num_layers: blocks.

    Returns:
        dict name -> array.

    Shape:
        W_embed: (V, E); Wq_i..Wo_i: (E, E); W1_i: (E, M); W2_i: (M, E); W_vocab: (E, V)
    """
    depth = 1 / math.sqrt(2 * num_layers)
    p = {"W_embed": 0.5 * draw((V, E))}
    for i in range(1, num_layers + 1):
        p[f"ln1_gamma{i}"], p[f"ln1_beta{i}"] = np.ones(E), np.zeros(E)
        for name in ("Wq", "Wk", "Wv", "Wo"):
            p[f"{name}{i}"] = draw((E, E)) / math.sqrt(E) * (depth if name == "Wo" else 1)
            p[f"b{name[1]}{i}"] = np.zeros(E)
        p[f"ln2_gamma{i}"], p[f"ln2_beta{i}"] = np.ones(E), np.zeros(E)
        p[f"W1{i}"], p[f"b1{i}"] = draw((E, M)) / math.sqrt(E), np.zeros(M)
        p[f"W2{i}"], p[f"b2{i}"] = draw((M, E)) / math.sqrt(M) * depth, np.zeros(E)
    p["gamma_f"], p["beta_f"] = np.ones(E), np.zeros(E)
    p["W_vocab"], p["b_vocab"] = draw((E, V)) / math.sqrt(E), np.zeros(V)
    return p


def forward(params, x, num_layers, num_heads):
    """Scores of the next character at every position.

    Args:
        params: the decoder's parameters (init_params' names); x: character indices.
        num_layers: blocks; num_heads: attention heads per block.

    Returns:
        (scores, caches), caches for backward.

    Shape:
        x: (N, T); scores: (N, T, V)
    """
    N, T = x.shape
    W_embed = params["W_embed"]
    emb, embed_cache = word_embedding_forward(x, W_embed)  # (N, T, E)
    h = emb + positional_encoding(T, W_embed.shape[1], dtype=W_embed.dtype)  # the table broadcasts over N
    mask = causal_mask(T)
    block_caches = []
    for i in range(1, num_layers + 1):
        h, cache = transformer_block_forward(h, *(params[f"{name}{i}"] for name in BLOCK_PARAMS), num_heads, mask)
        block_caches.append(cache)
    E = h.shape[2]
    hf, final_cache = layernorm_forward(h.reshape(N * T, E), params["gamma_f"], params["beta_f"], {})
    scores, vocab_cache = temporal_affine_forward(hf.reshape(N, T, E), params["W_vocab"], params["b_vocab"])
    return scores, (embed_cache, block_caches, final_cache, vocab_cache)


def backward(dscores, caches, num_layers):
    """The gradient of every parameter, from the gradient of the scores.

    Args:
        dscores: upstream gradient of the scores; caches: from forward; num_layers: blocks.

    Returns:
        dict keyed like the parameters.

    Shape:
        dscores: (N, T, V)
    """
    embed_cache, block_caches, final_cache, vocab_cache = caches
    grads = {}
    dhf, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
    N, T, E = dhf.shape
    dh, grads["gamma_f"], grads["beta_f"] = layernorm_backward(dhf.reshape(N * T, E), final_cache)
    dh = dh.reshape(N, T, E)
    for i in range(num_layers, 0, -1):  # the blocks in reverse; each returns its input's gradient first
        dh, *block_grads = transformer_block_backward(dh, block_caches[i - 1])
        grads.update({f"{name}{i}": g for name, g in zip(BLOCK_PARAMS, block_grads)})
    # The positional table is a constant: the embedding's gradient is the stream's, unchanged.
    grads["W_embed"] = word_embedding_backward(dh, embed_cache)
    return grads
