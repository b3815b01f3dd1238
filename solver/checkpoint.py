"""Files: atomic writes, pickle-free .npz reading, and saving and loading trained models.

Everything is written to a temporary file in the destination folder and renamed over the
destination only once complete, so an interrupted write never leaves a half-written file
under the real name. Everything is read with ``np.load(path, allow_pickle=False)``: a file
can hold arrays and text, never code.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
import zipfile

import numpy as np

__all__ = ["atomic_write", "write_npz", "read_npz", "save_model", "load_model"]

MODEL_FORMAT = "chainrule-model"


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path``; on success rename it to ``path``, else delete it.

    Args:
        path: the destination; its folder must exist.
        mode: "wb" or "w".

    Returns:
        A context manager yielding the open temporary file.

    Shape:
        (no arrays)
    """
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"atomic_write: the folder {path.parent} does not exist (writing {path.name}).")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{fn}: no such file: {path}.") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{fn}: {path} is not {what}: {exc}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{fn}: {path} is not {what}: it holds a single array.")
    with loaded:
        arrays = {key: loaded[key] for key in loaded.files}
    meta_text = arrays.pop("meta", None)
    try:
        meta = json.loads(str(meta_text)) if meta_text is not None else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        raise ValueError(f"{fn}: {path} is not {what}: its metadata does not say format={expected_format!r}.")
    return arrays, meta


def _model_classes():
    from solver.cnn import ThreeLayerConvNet
    from solver.nets import FullyConnectedNet, TwoLayerNet

    return {cls.__name__: cls for cls in (FullyConnectedNet, TwoLayerNet, ThreeLayerConvNet)}


def save_model(model, path):
    """Save a net (its constructor settings, parameters and running averages) to an .npz file.

    Args:
        model: a FullyConnectedNet, TwoLayerNet or ThreeLayerConvNet.
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
