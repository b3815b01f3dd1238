"""chainrule layers: each a pair of pure functions.

    out, cache = thing_forward(x, ...)
    dx, dparam, ... = thing_backward(dout, cache)   # in the order of forward's array inputs

Modules, one per family: gates (the lecture's add, multiply, max and copy), activations
(relu and its relatives), saturating (sigmoid, tanh),
affine, losses, normalization (batchnorm, layernorm), dropout, conv, pooling, spatial_norm
(spatial batchnorm, groupnorm), sandwich, rnn (the vanilla RNN), lstm (the LSTM and the GRU),
temporal (word embedding, temporal affine, temporal softmax loss), attention (softmax, scaled
dot-product attention, the causal mask, the positional encoding), transformer (multi-head
attention, the pre-LN transformer block). Every name in a family's
``__all__`` is also importable from here, as in the course code: ``from layers import affine_forward``.

Each family declares its cases beside its code (``CASES``, see layers/cases.py); ``CASES``
here is all of them, in family order, and ``case(name)`` finds one.

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

from layers import (activations, affine, attention, conv, dropout, gates, losses, lstm, normalization, pooling, rnn,
                    sandwich, saturating, spatial_norm, temporal, transformer)
from layers.activations import *  # noqa: F401,F403  (each family's __all__)
from layers.affine import *  # noqa: F401,F403
from layers.attention import *  # noqa: F401,F403
from layers.conv import *  # noqa: F401,F403
from layers.dropout import *  # noqa: F401,F403
from layers.gates import *  # noqa: F401,F403
from layers.losses import *  # noqa: F401,F403
from layers.lstm import *  # noqa: F401,F403
from layers.normalization import *  # noqa: F401,F403
from layers.pooling import *  # noqa: F401,F403
from layers.rnn import *  # noqa: F401,F403
from layers.saturating import *  # noqa: F401,F403
from layers.sandwich import *  # noqa: F401,F403
from layers.spatial_norm import *  # noqa: F401,F403
from layers.temporal import *  # noqa: F401,F403
from layers.transformer import *  # noqa: F401,F403

# The families in the order of the course, which is the order of CASES and of __all__.
FAMILIES = (gates, activations, saturating, affine, losses, normalization, dropout, conv, pooling, spatial_norm, sandwich,
            rnn, lstm, temporal, attention, transformer)

# The layer pairs and losses (a family's __all__ may also export its tuning constants).
__all__ = [name for family in FAMILIES for name in family.__all__
           if name.endswith("_loss") or "_forward" in name or "_backward" in name]

# Every declared case of every family (layers.cases.LayerCase).
CASES = tuple(declared for family in FAMILIES for declared in getattr(family, "CASES", ()))


def case(name: str):
    """The declared LayerCase called name.

    Raises:
        KeyError: no case has that name (the message lists the names).
    """
    for declared in CASES:
        if declared.name == name:
            return declared
    raise KeyError(f"layers.case: no case {name!r}; cases are {[c.name for c in CASES]}.")


def family_of(declared) -> str:
    """The module name of the family that declares a case ("activations" for relu_forward)."""
    for family in FAMILIES:
        if declared in getattr(family, "CASES", ()):
            return family.__name__.rpartition(".")[2]
    raise KeyError(f"layers.family_of: {declared!r} is not declared by any family.")
