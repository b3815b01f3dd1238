"""chainrule layers: each a pair of pure functions.

    out, cache = thing_forward(x, ...)
    dx, dparam, ... = thing_backward(dout, cache)   # in the order of forward's array inputs

Modules, one per family: gates (the lecture's add, multiply, max and copy), activations,
affine, losses, normalization (batchnorm, layernorm), dropout, conv, pooling, spatial_norm
(spatial batchnorm, groupnorm), sandwich. Every name is also importable from here, as in the course code:
``from layers import affine_forward``.

Policies shared by every layer (enforced by the checks in layers/validate.py, whose docstring
gives the reasons):

- dtypes: float32 and float64 only; float16 (and longdouble) inputs are refused at the boundary
  with a message to cast to float32. Nothing upcasts: float32 in, float32 out.
- numbers: a numpy scalar is accepted wherever a Python number is (np.float32(1.0), np.int64(2)).
- empty batches: every forward pass refuses N = 0 samples with a ValueError that says so.
- caches: each forward returns a tagged tuple (e.g. ReluCache) that unpacks and indexes like a
  plain one; its backward names the forward it expected when handed any other cache, and the
  cache never shares memory with ``out``, so editing ``out`` in place leaves backward unchanged.
"""

from layers.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from layers.affine import affine_backward, affine_forward
from layers.gates import (
    add_backward,
    add_forward,
    copy_backward,
    copy_forward,
    max_backward,
    max_forward,
    multiply_backward,
    multiply_forward,
)
from layers.conv import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive
from layers.dropout import dropout_backward, dropout_forward
from layers.losses import softmax_loss, svm_loss
from layers.normalization import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from layers.pooling import (
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
)
from layers.sandwich import (
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from layers.spatial_norm import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

__all__ = [
    "add_forward", "add_backward", "multiply_forward", "multiply_backward",
    "max_forward", "max_backward", "copy_forward", "copy_backward",
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "sigmoid_forward", "sigmoid_backward", "tanh_forward", "tanh_backward",
    "affine_forward", "affine_backward",
    "softmax_loss", "svm_loss",
    "affine_relu_forward", "affine_relu_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt", "layernorm_forward", "layernorm_backward",
    "dropout_forward", "dropout_backward",
    "affine_norm_relu_forward", "affine_norm_relu_backward",
    "conv_forward_naive", "conv_backward_naive", "conv_forward_fast", "conv_backward_fast",
    "max_pool_forward_naive", "max_pool_backward_naive", "max_pool_forward_fast", "max_pool_backward_fast",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward", "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
    "conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward",
]
