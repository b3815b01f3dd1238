"""What the nets of solver.nets and solver.cnn share besides their loss: dtype and seed checks,
weight initialization, and the model protocol methods of the fully connected nets.

The protocol (``_NetState``, which FullyConnectedNet inherits) is two protocols in one:
- the Solver's: ``buffers()`` returns batchnorm's running averages (state that is not trained but
  that the model needs at test time) and ``load_buffers(...)`` restores them, so the Solver keeps
  them with the best parameters and in checkpoints;
- gradcheck's (gradcheck/models.py), which check_model uses to run a net in float64 and leave it
  exactly as it was: ``state()`` snapshots everything ``loss`` may change besides params (the
  dtype, the normalization params with batchnorm's running averages, the dropout generator's
  position), ``load_state(state)`` restores it, and ``set_dtype(dtype)`` switches the dtype the
  net computes in.

Shape letters: H_i the units of hidden layer i.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from layers.validate import integer, real_number

__all__ = ["FLOAT_DTYPES", "check_seed", "init_scale", "normal_draws"]

FLOAT_DTYPES = (np.float32, np.float64)


def check_seed(cls: str, seed):
    """A net's seed: None or an int >= 0 (returned as a Python int).

    Args:
        cls: the caller, for error messages.
        seed: the value given.

    Returns:
        None or int.
    """
    return integer(cls, "seed", seed, low=0, allow_none=True,
                   hint="None draws from numpy's global generator, in the course's order")


def normal_draws(seed):
    """Standard normal draws for initial weights: from numpy's global generator when seed is None
    (``np.random.randn``, as the course draws them), else from the private generator made from seed.

    Args:
        seed: None, or anything np.random.default_rng accepts (an int, a SeedSequence).

    Returns:
        draw(shape) -> float64 array of that shape.

    Shape:
        draw(shape): shape
    """
    if seed is None:
        return lambda shape: np.random.randn(*shape)
    rng = np.random.default_rng(seed)
    return lambda shape: rng.standard_normal(shape)


def init_scale(weight_scale, fan_in: int, fan_out: int, cls: str = "FullyConnectedNet") -> float:
    """The standard deviation of a layer's initial weights.

    Args:
        weight_scale: a positive number used as it is; "he" for sqrt(2 / fan_in) (He et al.,
            2015, suited to relu); "xavier" for sqrt(2 / (fan_in + fan_out)) (Glorot and
            Bengio, 2010).
        fan_in, fan_out: the layer's input and output sizes.
        cls: the caller, for error messages.

    Returns:
        The standard deviation, a float.
    """
    if weight_scale == "he":
        return math.sqrt(2.0 / fan_in)
    if weight_scale == "xavier":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if isinstance(weight_scale, str):
        raise ValueError(f"{cls}: weight_scale must be a positive number, 'he' or 'xavier', got {weight_scale!r}.")
    scale = real_number(cls, "weight_scale", weight_scale, low=0.0)
    if scale <= 0:
        raise ValueError(f"{cls}: weight_scale must be > 0, got {scale!r}.")
    return scale


class _NetState:
    """The model protocol methods of FullyConnectedNet (see the module docstring).

    The net provides ``params`` (dict of arrays), ``dtype`` (a numpy dtype), ``normalization``
    (None, "batchnorm" or "layernorm"), ``norm_params`` (one dict per hidden layer, with
    ``running_mean`` and ``running_var`` under batchnorm) and ``dropout_rng`` (None or a
    Generator).
    """

    def buffers(self):
        """Batchnorm's running averages, keyed running_mean1, running_var1, ... (empty otherwise).

        Returns:
            dict of arrays (the model's own; copy them to keep a snapshot).

        Shape:
            running_mean_i, running_var_i: (H_i,)
        """
        if self.normalization != "batchnorm":
            return {}
        out = {}
        for i, param in enumerate(self.norm_params, start=1):
            out[f"running_mean{i}"] = param["running_mean"]
            out[f"running_var{i}"] = param["running_var"]
        return out

    def load_buffers(self, buffers):
        """Restore the running averages returned by buffers().

        Args:
            buffers: dict with exactly the keys of buffers(), arrays of the same shapes and dtype.

        Returns:
            None.

        Shape:
            running_mean_i, running_var_i: (H_i,)
        """
        cls = type(self).__name__
        mine = self.buffers()
        if sorted(buffers) != sorted(mine):
            raise ValueError(f"{cls}.load_buffers: expected buffers {sorted(mine)}, got {sorted(buffers)}.")
        for key, value in buffers.items():
            if not isinstance(value, np.ndarray) or value.shape != mine[key].shape or value.dtype != self.dtype:
                raise ValueError(f"{cls}.load_buffers: {key} must be an array of shape {mine[key].shape} and dtype "
                                 f"{self.dtype}.")
        for i, param in enumerate(self.norm_params, start=1):
            param["running_mean"] = buffers[f"running_mean{i}"].copy()
            param["running_var"] = buffers[f"running_var{i}"].copy()

    def state(self):
        """A snapshot of what loss (or set_dtype) may change besides params, for load_state.

        Later calls do not change it: it holds the dtype, copies of the normalization params
        (batchnorm's running averages and mode), and the dropout generator with its position.

        Returns:
            dict.

        Shape:
            running_mean_i, running_var_i in it: (H_i,)
        """
        rng = self.dropout_rng
        return {"dtype": self.dtype, "norm_params": copy.deepcopy(self.norm_params), "dropout_rng": rng,
                "dropout_rng_state": None if rng is None else rng.bit_generator.state}

    def load_state(self, state):
        """Put back a snapshot from state(): the dtype, the normalization params (in the same dicts)
        and the dropout generator, rewound to where it was.

        Args:
            state: what state() returned (it may be loaded more than once).

        Returns:
            None.

        Shape:
            running_mean_i, running_var_i in it: (H_i,)
        """
        cls = type(self).__name__
        keys = ["dropout_rng", "dropout_rng_state", "dtype", "norm_params"]
        if not isinstance(state, dict) or sorted(state) != keys or len(state["norm_params"]) != len(self.norm_params):
            raise ValueError(f"{cls}.load_state: state must be what {cls}.state() returned (a dict with {keys} and "
                             f"{len(self.norm_params)} normalization params), got {state!r:.100}.")
        self.dtype = np.dtype(state["dtype"])
        for param, saved in zip(self.norm_params, state["norm_params"]):
            param.clear()
            param.update(copy.deepcopy(saved))
        self.dropout_rng = state["dropout_rng"]
        if self.dropout_rng is not None:
            self.dropout_rng.bit_generator.state = state["dropout_rng_state"]

    def set_dtype(self, dtype):
        """Compute in dtype from now on: params and batchnorm's running averages are cast to it (and
        X in loss). params is rebound to a new dict of new arrays; the old ones are left alone.

        Args:
            dtype: np.float32 or np.float64.

        Returns:
            None.

        Shape:
            params and running averages keep their shapes
        """
        cls = type(self).__name__
        if np.dtype(dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
            raise ValueError(f"{cls}.set_dtype: dtype must be np.float32 or np.float64, got {np.dtype(dtype)}.")
        self.dtype = np.dtype(dtype)
        self.params = {k: v.astype(self.dtype) for k, v in self.params.items()}
        for param in self.norm_params:
            for key in ("running_mean", "running_var"):
                if isinstance(param.get(key), np.ndarray):
                    param[key] = param[key].astype(self.dtype)


class _DtypeState:
    """gradcheck's model protocol for models whose only state besides params is their dtype
    (solver.cnn's ThreeLayerConvNet, solver.captioning's CaptioningRNN, solver.charlm's CharLM)."""

    def state(self):
        """A snapshot of what set_dtype changes besides params: the dtype.

        Returns:
            dict.
        """
        return {"dtype": self.dtype}

    def load_state(self, state):
        """Put back a snapshot from state().

        Args:
            state: what state() returned.

        Returns:
            None.
        """
        cls = type(self).__name__
        if not isinstance(state, dict) or sorted(state) != ["dtype"]:
            raise ValueError(f"{cls}.load_state: state must be what {cls}.state() returned (a dict with ['dtype']), "
                             f"got {state!r:.100}.")
        self.dtype = np.dtype(state["dtype"])

    def set_dtype(self, dtype):
        """Compute in dtype from now on; params is rebound to a new dict of new arrays.

        Args:
            dtype: np.float32 or np.float64.

        Returns:
            None.
        """
        cls = type(self).__name__
        if np.dtype(dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
            raise ValueError(f"{cls}.set_dtype: dtype must be np.float32 or np.float64, got {np.dtype(dtype)}.")
        self.dtype = np.dtype(dtype)
        self.params = {k: v.astype(self.dtype) for k, v in self.params.items()}
