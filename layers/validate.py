"""Argument checks shared by every public layer, and the tagged caches of forward passes.

Each check raises at the public boundary with a message that names the function, the argument,
what was expected and what was received, so that a learner can fix the call without reading
this file. Nothing here broadcasts, upcasts or truncates: a value either passes unchanged or
is refused. The one conversion is exact: an integer parameter array (weights, biases, gamma,
beta) whose values x's float dtype represents exactly becomes that dtype (param_array).

Policies every layer follows through these checks:

- Float dtypes: float32 and float64 only. float16 (and longdouble) arrays are refused with a
  message saying to cast to float32: float16's largest value, 65504, is the square of 256, so
  the variances of normalization and the exponentials of softmax and sigmoid overflow, and
  scipy and BLAS have no float16 kernels (it would run as float64 or float32 and upcast).
- Numbers: wherever a Python number is accepted, so is a numpy scalar (np.float32(1.0),
  np.int64(3)). Numpy floating scalars keep their dtype as operands of the gates, like arrays.
  Integer parameters (sizes, strides, counts, seeds) take Python ints and numpy integer
  scalars, never bool or a whole float such as 2.0 (integer).
- Empty batches: a forward pass refuses an x with N = 0 samples (its leading axis; for the
  gates and activations, any operand with a zero-length leading axis), with a message that
  says so, instead of returning empty outputs. Batchnorm and the losses cannot average over no
  samples, so no layer runs on an empty batch and every one says why.
- Caches: each forward pass returns its cache as a small tagged tuple (a namedtuple made by
  cache_type, one type per forward function); its backward checks the type in O(1) and names
  the forward whose cache it expected. The tuple holds exactly what backward reads, unpacks as
  before (``x, w = cache``) and indexes as before (``cache[1]``).
"""

from __future__ import annotations

import collections
import functools
import math
import numbers
import sys

import numpy as np



def _describe(value) -> str:
    """A short description of a value for error messages: type, and shape and dtype if any."""
    if isinstance(value, (np.ndarray, np.generic)):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}" if _is_python_real(value) else type(value).__name__


def _is_python_real(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and not isinstance(value, np.generic)
    )


def _is_plain_number(value) -> bool:
    """A Python int or float, or a numpy integer scalar: a number without a float dtype of its own."""
    return _is_python_real(value) or isinstance(value, np.integer)


def _unsupported_float(fn: str, name: str, dtype) -> TypeError:
    return TypeError(
        f"{fn}: {name} is {dtype}, but chainrule computes in float32 or float64 only (float16 "
        f"overflows above 65504, in variances and exponentials); cast it with "
        f"{name}.astype(np.float32)."
    )


def _empty_batch(fn: str, name: str, shape) -> ValueError:
    return ValueError(
        f"{fn}: {name} holds no samples (shape {tuple(shape)}, N = 0); layers refuse empty "
        f"batches, so skip them before the call."
    )


def float_operands(fn: str, **operands):
    """Convert gate operands to arrays of one floating dtype.

    Python ints and floats, and numpy integer scalars, are accepted and take the dtype of the
    array operands (float64 when there are none), so ``multiply_forward(x32, 2.0)`` stays
    float32. Numpy arrays and numpy floating scalars must be float32 or float64, and all of
    them must share one dtype. An array with a zero-length leading axis (an empty batch) is
    refused.

    Returns:
        (arrays, dtype): the operands as numpy arrays, in the order given, and their dtype.
    """
    dtypes = {}
    for name, value in operands.items():
        if isinstance(value, np.integer):
            continue
        if isinstance(value, (np.ndarray, np.generic)):
            if value.dtype.kind != "f":
                raise TypeError(
                    f"{fn}: {name} must be a floating-point array, got {_describe(value)}; "
                    f"convert it with {name}.astype(np.float64)."
                )
            if value.dtype.char not in "fd":
                raise _unsupported_float(fn, name, value.dtype)
            if value.ndim and value.shape[0] == 0:
                raise _empty_batch(fn, name, value.shape)
            dtypes[name] = value.dtype
        elif not _is_python_real(value):
            raise TypeError(
                f"{fn}: {name} must be a Python number or a floating-point numpy array, "
                f"got {_describe(value)}."
            )
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} is {dtype}" for name, dtype in dtypes.items())
        raise TypeError(
            f"{fn}: array operands must share one dtype ({listed}); cast them to the same "
            f"dtype first, chainrule never upcasts silently."
        )
    dtype = next(iter(dtypes.values()), np.dtype(np.float64))
    arrays = tuple(np.asarray(value, dtype=dtype) for value in operands.values())
    return arrays, dtype


def scalar_if_0d(value):
    """A 0-d result becomes a numpy scalar (np.float64 is a Python float), as numpy's own ops do."""
    return value[()] if np.ndim(value) == 0 else value


def float_array(fn: str, name: str, value, *, ndim=None, min_ndim=None, dtype=None, batch=False) -> np.ndarray:
    """Check that ``value`` is a float32 or float64 numpy array and return it unchanged.

    Args:
        fn, name: the calling function and the argument, for the error message.
        ndim: the exact number of dimensions required, if any.
        min_ndim: the least number of dimensions required, if any.
        dtype: the dtype ``value`` must have (to match the other inputs of the call), if any.
        batch: True for a layer's input, whose leading axis holds the N samples: N = 0 is refused.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{fn}: {name} must be a numpy array of floats, got {_describe(value)}; "
            f"wrap it with np.asarray({name}, dtype=np.float64)."
        )
    if value.dtype.char not in "fd":  # float32, float64 (either byte order); cheaper than np.issubdtype
        if value.dtype.kind == "f":
            raise _unsupported_float(fn, name, value.dtype)
        raise TypeError(
            f"{fn}: {name} must have a floating-point dtype, got {value.dtype}; "
            f"convert it with {name}.astype(np.float64)."
        )
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {value.shape}.")
    if min_ndim is not None and value.ndim < min_ndim:
        raise ValueError(
            f"{fn}: {name} must have at least {min_ndim} dimensions, got shape {value.shape}."
        )
    if batch and value.ndim and value.shape[0] == 0:
        raise _empty_batch(fn, name, value.shape)
    if dtype is not None and value.dtype != dtype:
        raise TypeError(
            f"{fn}: {name} has dtype {value.dtype} but the other inputs are {dtype}; "
            f"cast it with {name}.astype(np.{np.dtype(dtype).name}), chainrule never upcasts silently."
        )
    return value


def param_array(fn: str, name: str, value, dtype, *, ndim=None) -> np.ndarray:
    """Check a layer parameter (weights, biases, gamma, beta) against the input's float dtype.

    A floating-point array must have ``dtype`` already (float32 and float64 never mix). An
    integer array, such as the course's ``b = np.array([0, 128])``, is converted to ``dtype``
    when every value is exactly representable in it (a new array; ``value`` is untouched);
    integers that would round are refused, as are booleans and every other dtype.

    Args:
        fn, name: the calling function and the argument, for the error message.
        value: the parameter.
        dtype: the floating dtype of the layer's input x.
        ndim: the exact number of dimensions required, if any.

    Returns:
        ``value`` itself, or its exact conversion to ``dtype``.
    """
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        value = _exact_float(fn, name, value, np.dtype(dtype))
    return float_array(fn, name, value, ndim=ndim, dtype=dtype)


def _exact_float(fn: str, name: str, value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    converted = value.astype(dtype)
    # Every integer of magnitude <= 2**(mantissa bits + 1) is exact; only larger ones can round.
    limit = 2 ** (np.finfo(dtype).nmant + 1)
    info = np.iinfo(value.dtype)
    if info.max > limit or info.min < -limit:
        big = value > limit
        if value.dtype.kind == "i":
            big |= value < -limit
        for original, got in zip(value[big].tolist(), converted[big].tolist()):
            if int(got) != original:
                raise TypeError(
                    f"{fn}: {name} holds integers that {dtype} cannot represent exactly (x is {dtype}); "
                    f"got {original}, which would become {got!r}. Pass {name} as a floating-point "
                    f"array of x's dtype."
                )
    return converted


def upstream(fn: str, dout, shape: tuple, dtype) -> np.ndarray:
    """Check an upstream gradient against the forward output's shape and dtype.

    A Python number (or a numpy integer scalar) is accepted where the output is a scalar
    (shape ``()``); arrays and numpy floating scalars must match the output's shape and dtype
    exactly.
    """
    if _is_plain_number(dout) and shape == ():
        return np.asarray(dout, dtype=dtype)
    if not isinstance(dout, (np.ndarray, np.generic)):
        raise TypeError(
            f"{fn}: dout must be a numpy array of shape {shape} and dtype {np.dtype(dtype)}, "
            f"got {_describe(dout)}."
        )
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{fn}: dout has shape {dout.shape} but the forward output had shape {tuple(shape)}; "
            f"the upstream gradient must have the output's shape."
        )
    if dout.dtype != dtype:
        raise TypeError(
            f"{fn}: dout has dtype {dout.dtype} but the forward pass ran in {np.dtype(dtype)}; "
            f"cast it with dout.astype(np.{np.dtype(dtype).name})."
        )
    return np.asarray(dout)


def labels(fn: str, y, num_samples: int, num_classes: int) -> np.ndarray:
    """Check class labels: an integer array of shape (N,) with values in [0, C)."""
    if not isinstance(y, np.ndarray):
        raise TypeError(
            f"{fn}: y must be a numpy array of integer class labels, got {_describe(y)}."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"{fn}: y must hold integer class labels, got dtype {y.dtype}; "
            f"convert it with y.astype(np.int64) if the values are whole numbers."
        )
    if y.shape != (num_samples,):
        raise ValueError(
            f"{fn}: y must have shape ({num_samples},), one label per row of x, got shape {y.shape}."
        )
    if num_samples and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise ValueError(
            f"{fn}: labels must lie in [0, {num_classes}) for x with {num_classes} classes, "
            f"got {bad.size} out of range (first: {bad[0]})."
        )
    return y


def real_number(fn: str, name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Check a hyperparameter: a finite real number (Python or numpy), optionally within
    [low, high], with either end open if asked ((low, high], [low, high))."""
    if not (_is_python_real(value) or isinstance(value, (np.floating, np.integer))):
        raise TypeError(f"{fn}: {name} must be a real number, got {_describe(value)}.")
    value = float(value)
    interval = (f"{'(' if low_open else '['}{-np.inf if low is None else low}, "
                f"{np.inf if high is None else high}{')' if high_open or high is None else ']'}")
    if not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) or (
        high is not None and (value >= high if high_open else value > high)
    ):
        raise ValueError(f"{fn}: {name} must be a finite number in {interval}, got {value!r}.")
    return value


class NotAnInteger(TypeError, ValueError):
    """What integer raises for a value that is not an integer (a float, a bool, a string, None).

    Both a TypeError (the kind of value is wrong) and a ValueError (what most integer checks
    raised before there was one helper), as numpy's AxisError is both a ValueError and an
    IndexError: code that catches either keeps working.
    """


def integer(fn: str, name: str, value, *, low=None, high=None, allow_none=False, hint=None) -> int | None:
    """Check an integer parameter (a count, a size, a stride, a seed) and return it as a Python int.

    Python ints and numpy integer scalars (np.int64(3)) are accepted; bool and np.bool_ are
    refused, as is every non-integer, whole floats such as 2.0 included: nothing is truncated.

    Args:
        fn, name: the calling function and the argument, for the error message.
        value: the value to check.
        low, high: the allowed range, both ends included; None leaves that end open.
        allow_none: accept None too (returned as None), for "use the default" or "all".
        hint: how to fix the call, appended to the message after a semicolon, if any.

    Returns:
        value as a Python int, or None when allow_none and value is None.

    Raises:
        NotAnInteger (a TypeError and a ValueError): value is not an integer.
        ValueError: value is outside [low, high].
    """
    if type(value) is int:  # the common case, without the slower abstract-class check
        number = value
    elif value is None and allow_none:
        return None
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise NotAnInteger(_integer_message(fn, name, value, low, high, allow_none, hint))
    else:
        number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(_integer_message(fn, name, number, low, high, allow_none, hint))
    return number


def _integer_message(fn, name, got, low, high, allow_none, hint) -> str:
    if low is not None and high is not None:
        limits = f" in [{low}, {high}]"
    else:
        limits = f" >= {low}" if low is not None else f" <= {high}" if high is not None else ""
    fix = f"; {hint}." if hint else "."
    return f"{fn}: {name} must be an int{limits}{' or None' if allow_none else ''}, got {got!r}{fix}"


def cache_type(forward: str, fields: str):
    """The tagged tuple type of one forward pass's caches: a namedtuple named after the pass.

    Args:
        forward: the forward function's name, e.g. "relu_forward" (its cache type is ReluCache;
            the module that calls this keeps it under that name, so caches pickle).
        fields: the cache's items in order, space-separated, e.g. "mask dtype".

    Returns:
        the namedtuple class, with ``forward`` as a class attribute for error messages.
    """
    stem = forward.replace("_forward", "")
    name = "".join(part.capitalize() for part in stem.split("_")) + "Cache"
    kind = collections.namedtuple(name, fields, module=sys._getframe(1).f_globals.get("__name__"))
    kind.forward = forward
    return kind


def _describe_cache(cache) -> str:
    forward = getattr(type(cache), "forward", None)
    if isinstance(cache, tuple) and isinstance(forward, str):
        return f"a cache from {forward}"
    if isinstance(cache, (tuple, list)):
        return f"a {type(cache).__name__} of {len(cache)} items"
    return _describe(cache)


def returns_cache(kind):
    """Decorate a forward pass so that the plain tuple it returns as its cache becomes a ``kind``.

    The forward writes its cache as a plain tuple, as in the course code; the decorator checks its
    length and tags it, so that the backward pass can tell its own cache from any other.

    Args:
        kind: the cache type, from cache_type.

    Returns:
        the decorator.
    """
    fields = kind._fields

    def decorate(forward):
        @functools.wraps(forward)
        def tagged(*args, **kwargs):
            out, cache = forward(*args, **kwargs)
            if type(cache) is not kind:
                if type(cache) is not tuple or len(cache) != len(fields):
                    raise TypeError(
                        f"{kind.forward}: its cache must be a tuple of {len(fields)} items "
                        f"({', '.join(fields)}), got {_describe_cache(cache)}."
                    )
                cache = tuple.__new__(kind, cache)
            return out, cache

        return tagged

    return decorate


def check_cache(fn: str, cache, kind):
    """Check that backward ``fn`` received a cache made by ``kind.forward`` (one type check, O(1)).

    Args:
        fn: the backward function, for the message.
        cache: what it received.
        kind: the cache type it reads, from cache_type.

    Returns:
        ``cache`` unchanged, ready to unpack.
    """
    if type(cache) is not kind:
        raise TypeError(
            f"{fn}: cache is not from {kind.forward} (got {_describe_cache(cache)}); "
            f"pass the cache returned by {kind.forward}."
        )
    return cache
