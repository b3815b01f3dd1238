"""Checkpoint files: pickle-free .npz writing and reading, and saving and loading trained models.

Everything is written through data.files.atomic_write (a temporary file in the destination
folder, renamed over the destination only once complete), so an interrupted write never leaves
a half-written file under the real name. Everything is read with
``np.load(path, allow_pickle=False)``: a file can hold arrays and text, never code.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import zipfile
import zlib

import numpy as np

from data.files import atomic_write

__all__ = ["write_npz", "read_npz", "save_model", "load_model", "folder_problem", "CheckpointMismatch",
           "settings_differences", "counters_problem", "checkpoint_problem"]

MODEL_FORMAT = "chainrule-model"


def write_npz(path, arrays: dict, meta: dict):
    """Write arrays and a JSON-able ``meta`` dict to an .npz file, atomically.

    Args:
        path: destination file (the name is used as given; no ".npz" is appended).
        arrays: name -> numpy array.
        meta: JSON-serializable settings, stored as the text array "meta".

    Returns:
        None.

    Shape:
        (any)
    """
    with atomic_write(path) as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def read_npz(path, fn: str, expected_format: str):
    """Read an .npz written by write_npz and check its "format" in meta.

    Each member's .npy header is read before its data: a member whose header declares more
    bytes than the member holds (damaged, or crafted to exhaust memory) is refused without
    allocating anything, and so is a member that fails its CRC check or holds objects.

    Args:
        path: the file.
        fn: the caller, for error messages.
        expected_format: the meta "format" value the file must have.

    Returns:
        (arrays, meta): a dict of arrays (loaded into memory) and the meta dict.

    Shape:
        (any)
    """
    path = pathlib.Path(path)
    what = f"a {expected_format} file (.npz written by chainrule)"
    if not path.exists():
        raise FileNotFoundError(f"{fn}: no such file: {path}.")
    if path.is_dir():
        raise ValueError(f"{fn}: {path} is a folder, not {what}.")
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                single = f.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX
            raise ValueError(f"{fn}: {path} is not {what}: "
                             + ("it holds a single array." if single else "it is not an .npz (zip) archive."))
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                problem = _member_problem(archive, info)
                if problem:
                    raise ValueError(f"{fn}: {path} is damaged: member {info.filename!r} {problem}.")
        with np.load(path, allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError) as exc:
        raise ValueError(f"{fn}: {path} is damaged or not {what}: {exc}") from None
    except ValueError as exc:
        if str(exc).startswith(f"{fn}: "):
            raise
        raise ValueError(f"{fn}: {path} is damaged or not {what}: {exc}") from None
    meta_text = arrays.pop("meta", None)
    try:
        meta = json.loads(str(meta_text)) if meta_text is not None and meta_text.dtype.kind == "U" else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        raise ValueError(f"{fn}: {path} is not {what}: its metadata does not say format={expected_format!r}.")
    return arrays, meta


# Deflate never compresses better than about 1032:1; a member claiming more is not a real one.
_MAX_DEFLATE_RATIO = 1032


def _member_problem(archive, info):
    """Why one member of an .npz cannot be a sound .npy array, or None; reads only its header."""
    if not info.filename.endswith(".npy"):
        return "is not an .npy array"
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        return f"declares {info.file_size} bytes but stores {info.compress_size}"
    if info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1) + 1024:
        return f"declares {info.file_size} bytes from {info.compress_size} compressed ones"
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        header = member.tell()
    if dtype.hasobject:
        return "holds Python objects (a pickle), which chainrule never loads"
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if declared != info.file_size - header:
        return f"declares shape {tuple(shape)} {dtype} ({declared} bytes) but holds {info.file_size - header} bytes"
    return None


def _model_classes():
    from solver.captioning import CaptioningRNN
    from solver.charlm import CharLM
    from solver.cnn import ThreeLayerConvNet
    from solver.nets import FullyConnectedNet, TwoLayerNet

    return {cls.__name__: cls for cls in (FullyConnectedNet, TwoLayerNet, ThreeLayerConvNet, CaptioningRNN, CharLM)}


def save_model(model, path):
    """Save a net (its constructor settings, parameters and running averages) to an .npz file.

    Args:
        model: a FullyConnectedNet, TwoLayerNet, ThreeLayerConvNet, CaptioningRNN or CharLM.
        path: destination file, written atomically.

    Returns:
        None.

    Shape:
        (parameters as in model.params)
    """
    name = type(model).__name__
    if _model_classes().get(name) is not type(model):
        raise TypeError(f"save_model: model must be one of {sorted(_model_classes())}, got {name}.")
    meta = {"format": MODEL_FORMAT, "version": 1, "class": name, "config": model.get_config()}
    arrays = {f"params/{k}": v for k, v in model.params.items()}
    buffers = model.buffers() if hasattr(model, "buffers") else {}
    arrays.update({f"buffers/{k}": v for k, v in buffers.items()})
    write_npz(path, arrays, meta)


def load_model(path):
    """Load a net saved by save_model (or the model.npz of a training run).

    Args:
        path: the file.

    Returns:
        The net, of the saved class, with the saved settings, parameters and running averages.

    Shape:
        (parameters as saved)
    """
    arrays, meta = read_npz(path, "load_model", MODEL_FORMAT)
    cls = _model_classes().get(meta.get("class"))
    if cls is None or not isinstance(meta.get("config"), dict):
        raise ValueError(f"load_model: {path} names model class {meta.get('class')!r}, which this chainrule does "
                         f"not have.")
    config = dict(meta["config"])
    config["dtype"] = np.dtype(config["dtype"])
    if "input_dim" in config and isinstance(config["input_dim"], list):
        config["input_dim"] = tuple(config["input_dim"])
    # Older files carry dropout_seed, since retired; it only chose dropout masks, never the parameters.
    config.pop("dropout_seed", None)
    # With seed=None the constructor draws its (soon replaced) weights from numpy's global
    # generator; loading a file must not move that state.
    global_state = np.random.get_state()
    try:
        model = cls(**config)
    finally:
        np.random.set_state(global_state)
    for key, current in model.params.items():
        saved = arrays.get(f"params/{key}")
        if saved is None or saved.shape != current.shape or saved.dtype != current.dtype:
            raise ValueError(f"load_model: {path} has no parameter {key} of shape {current.shape} and dtype "
                             f"{current.dtype} for the net it describes.")
        model.params[key] = saved
    buffers = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("buffers/")}
    if buffers or (hasattr(model, "buffers") and model.buffers()):
        model.load_buffers(buffers)
    return model


def folder_problem(folder):
    """Why files cannot be written into ``folder`` (created with its parents if missing), or None.

    Args:
        folder: the folder files will go into; it need not exist yet.

    Returns:
        A reason naming the path that is in the way (a file, an unwritable folder), or None.
    """
    probe = pathlib.Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"the folder {probe} is not writable"
    return None


class CheckpointMismatch(ValueError):
    """A checkpoint written with other settings than the Solver loading it has.

    ``differences`` lists ``(setting, value in the file, value here)`` for each setting that differs.
    """

    def __init__(self, message, differences):
        super().__init__(message)
        self.differences = differences


class AtLeast:
    """A lower bound shown as a value in a difference, e.g. num_epochs "at least 4"."""

    def __init__(self, low, why):
        self.low, self.why = low, why

    def __repr__(self):
        return f"at least {self.low} ({self.why})"


_ABSENT = type("Absent", (), {"__repr__": lambda self: "nothing"})()


def settings_differences(saved, mine, prefix=""):
    """(name, in the file, here) for every leaf where two nested settings dicts differ.

    Args:
        saved: the settings a checkpoint recorded (from JSON).
        mine: the same record for the loading Solver (passed through JSON too, so tuples are lists).
        prefix: dotted path of the dicts, for the names.

    Returns:
        A list of (dotted name, saved value, own value), sorted by name.
    """
    out = []
    for key in sorted(set(saved) | set(mine)):
        a, b = saved.get(key, _ABSENT), mine.get(key, _ABSENT)
        if isinstance(a, dict) and isinstance(b, dict):
            out += settings_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _array_problem(arrays, key, like):
    """Why arrays[key] cannot stand in for ``like`` (missing, other shape or dtype, non-finite), or None."""
    value = arrays.get(key)
    if value is None:
        return f"lacks {key}"
    if value.shape != like.shape or value.dtype != like.dtype:
        return f"has {key} of shape {value.shape} and dtype {value.dtype}, but the model's is {like.shape} {like.dtype}"
    if not np.all(np.isfinite(value)):
        return f"has non-finite values in {key}"
    return None


def counters_problem(meta):
    """What is wrong with a checkpoint's epoch counters on their own (see checkpoint_problem), or None.

    Args:
        meta: the checkpoint's settings dict (its meta.json).

    Returns:
        A phrase completing "the checkpoint ...", or None when the counters are usable.
    """
    for key in ("num_epochs", "epoch", "iteration", "optim_settings", "base_lr", "rng", "eval_rng"):
        if key not in meta:
            return f"lacks the setting {key!r}"
    num_epochs, epoch = meta["num_epochs"], meta["epoch"]
    if not _is_int(num_epochs) or num_epochs < 1:
        return f"has num_epochs={num_epochs!r}; expected an int >= 1"
    if not _is_int(epoch) or not 0 <= epoch <= num_epochs:
        return f"is at epoch {epoch!r}, outside 0..{num_epochs} (its num_epochs)"
    return None


def checkpoint_problem(arrays, meta, params, buffers, update_rule, iterations_per_epoch):
    """What makes a checkpoint's contents unusable for resuming a Solver, or None.

    Checks every entry a resume reads: the counters against each other and the histories, the
    parameters (current and best) and buffers against the model's shapes and dtypes and for
    finite values, the optimizer state by one trial step of the update rule on copies, and the
    generator states.

    Args:
        arrays, meta: as read_npz returns them.
        params: the model's parameters (name -> array), the reference shapes and dtypes.
        buffers: the model's buffers (name -> array), possibly empty.
        update_rule: the update rule callable.
        iterations_per_epoch: updates per epoch of the loading Solver.

    Returns:
        A reason (completing "<path> ...") or None.

    Shape:
        (parameters as in params)
    """
    problem = counters_problem(meta)
    if problem:
        return problem
    epoch, iteration = meta["epoch"], meta["iteration"]
    if not _is_int(iteration) or iteration != epoch * iterations_per_epoch:
        return (f"has iteration={iteration!r} after {epoch} epochs; at {iterations_per_epoch} updates per epoch "
                f"that must be {epoch * iterations_per_epoch}")
    histories = {}
    for key in ("loss_history", "train_acc_history", "val_acc_history"):
        value = arrays.get(key)
        if value is None or value.ndim != 1 or value.dtype.kind != "f" or not np.all(np.isfinite(value)):
            return f"lacks a finite 1-D float array {key}"
        histories[key] = value
    if len(histories["loss_history"]) != iteration:
        return f"has {len(histories['loss_history'])} losses in loss_history for {iteration} iterations"
    accuracies = len(histories["val_acc_history"])
    fresh = accuracies == 0 and epoch == 0  # saved before train() recorded anything
    if accuracies != len(histories["train_acc_history"]) or not (accuracies == epoch + 1 or fresh):
        return (f"has {len(histories['train_acc_history'])} train and {accuracies} val accuracies after {epoch} "
                f"epochs; expected {epoch + 1} of each")
    for key in ("train_acc_history", "val_acc_history"):
        if np.any((histories[key] < 0) | (histories[key] > 1)):
            return f"has accuracies outside [0, 1] in {key}"
    best = meta.get("best_val_acc")
    expected_best = float(np.max(histories["val_acc_history"])) if accuracies else None
    if best != expected_best:
        return f"has best_val_acc={best!r}, but the best of its val_acc_history is {expected_best!r}"

    saved_names = sorted(k.split("/", 1)[1] for k in arrays if k.startswith("params/"))
    if saved_names != sorted(params):
        return f"holds parameters {saved_names} but the model has {sorted(params)}"
    optim_settings, base_lr = meta["optim_settings"], meta["base_lr"]
    if not isinstance(optim_settings, dict) or not isinstance(base_lr, dict):
        return "has optim_settings or base_lr that are not dicts"
    for name, current in params.items():
        for prefix in ("params", "best_params"):
            problem = _array_problem(arrays, f"{prefix}/{name}", current)
            if problem:
                return problem
        settings, lr = optim_settings.get(name), base_lr.get(name, _ABSENT)
        lr_ok = lr is None or (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0)
        if not isinstance(settings, dict) or not lr_ok:
            return f"lacks a valid optimizer setting or base learning rate for {name!r}"
        prefix = f"optim/{name}/"
        state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        for key, value in state.items():
            if not np.all(np.isfinite(value)):
                return f"has non-finite values in {prefix}{key}"
        trial = {**settings, **{k: v.copy() for k, v in state.items()}}
        try:
            update_rule(current.copy(), np.zeros_like(current), trial)
        except (ValueError, TypeError, KeyError) as exc:
            return f"has optimizer state for {name!r} that the update rule refuses: {str(exc).rstrip('.')}"
    for prefix in ("buffers", "best_buffers"):
        saved = sorted(k.split("/", 1)[1] for k in arrays if k.startswith(prefix + "/"))
        if saved != sorted(buffers):
            return f"holds {prefix} {saved} but the model has {sorted(buffers)}"
        for name, current in buffers.items():
            problem = _array_problem(arrays, f"{prefix}/{name}", current)
            if problem:
                return problem
    for key in ("rng", "eval_rng", "dropout_rng", "model_rng"):
        if key in meta:
            try:
                np.random.default_rng().bit_generator.state = meta[key]
            except (TypeError, ValueError, KeyError) as exc:
                return f"has an invalid generator state {key!r} ({type(exc).__name__}: {exc})"
    return None
