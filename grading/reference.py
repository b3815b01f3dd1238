"""Reference data for the hidden graded tests: inputs and the reference solution's outputs.

    python -m grading make-reference      # regenerate grading/reference/*.npz and SHA256SUMS

Every case is built from a fixed seed by the library itself (the instructor's reference
solution), stored as a plain ``.npz`` (loadable with ``allow_pickle=False``), and listed with
its SHA-256 in ``SHA256SUMS``. The autograder refuses to grade when a file is missing, extra
or altered (``verify``).

Two sources of cases:

- CASES below: the hand-written cases of the hand-written graded tests, one file each
  (``affine.npz``);
- DECLARED: every layer case its family declares ``graded=True`` (layers/cases.py), graded by
  grading/graded_tests/test_declared.py. They are stored one file per family
  (``layers_activations.npz``), each array under ``<case name>/<array>``: the inputs by name,
  then ``out``, ``dout`` and ``d<input>`` for each input (a loss: ``loss`` and ``dx``). So a new
  layer adds no file of its own.
"""

from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np

import layers
import layers as L
from data.files import write_atomically
from gradcheck.registry import check_inputs
from solver import FullyConnectedNet, ThreeLayerConvNet, TwoLayerNet
from solver import optim

HASHES_NAME = "SHA256SUMS"
# The file of a family's declared cases: layers_<family>.npz, its arrays named <case>/<array>.
FAMILY_FILE_PREFIX = "layers_"
KEY_SEPARATOR = "/"


class ReferenceError(RuntimeError):
    """The reference data is missing, extra or does not match its recorded hash."""


def _affine(rng):
    x, w, b = rng.standard_normal((4, 2, 3, 2)), rng.standard_normal((12, 5)), rng.standard_normal(5)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.affine_backward(dout, cache)
    return dict(x=x, w=w, b=b, out=out, dout=dout, dx=dx, dw=dw, db=db)


def _relu(rng):
    x = rng.standard_normal((5, 7))
    out, cache = L.relu_forward(x)
    dout = rng.standard_normal(x.shape)
    return dict(x=x, out=out, dout=dout, dx=L.relu_backward(dout, cache))


def _loss(fn):
    def make(rng):
        x, y = 30 * rng.standard_normal((6, 5)), rng.integers(0, 5, size=6)
        loss, dx = fn(x, y)
        return dict(x=x, y=y, loss=np.float64(loss), dx=dx)
    return make


def _batchnorm(mode):
    def make(rng):
        x = 3 + 2 * rng.standard_normal((8, 5))
        gamma, beta = 1 + rng.random(5), rng.standard_normal(5)
        running_mean, running_var = rng.standard_normal(5), 1 + rng.random(5)
        param = {"mode": mode, "momentum": 0.8, "running_mean": running_mean.copy(), "running_var": running_var.copy()}
        out, cache = L.batchnorm_forward(x, gamma, beta, param)
        dout = rng.standard_normal(out.shape)
        dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)
        return dict(x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var,
                    out=out, new_running_mean=param["running_mean"], new_running_var=param["running_var"],
                    dout=dout, dx=dx, dgamma=dgamma, dbeta=dbeta)
    return make


def _layernorm(rng):
    x = 3 + 2 * rng.standard_normal((4, 6))
    gamma, beta = 1 + rng.random(6), rng.standard_normal(6)
    out, cache = L.layernorm_forward(x, gamma, beta, {"eps": 1e-5})
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = L.layernorm_backward(dout, cache)
    return dict(x=x, gamma=gamma, beta=beta, out=out, dout=dout, dx=dx, dgamma=dgamma, dbeta=dbeta)


def _dropout(rng):
    return dict(x=rng.standard_normal((10, 20)), dout=rng.standard_normal((10, 20)))


def _conv(rng):
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = L.conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.conv_backward_naive(dout, cache)
    return dict(x=x, w=w, b=b, out=out, dout=dout, dx=dx, dw=dw, db=db)


def _max_pool(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    out, cache = L.max_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    dout = rng.standard_normal(out.shape)
    return dict(x=x, out=out, dout=dout, dx=L.max_pool_backward_naive(dout, cache))


def _spatial(kind):
    def make(rng):
        x = 2 + rng.standard_normal((3, 4, 5, 5))
        shape = (4,) if kind == "spatial_batchnorm" else (1, 4, 1, 1)
        gamma, beta = 1 + rng.random(shape), rng.standard_normal(shape)
        if kind == "spatial_batchnorm":
            out, cache = L.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
            dout = rng.standard_normal(out.shape)
            dx, dgamma, dbeta = L.spatial_batchnorm_backward(dout, cache)
        else:
            out, cache = L.spatial_groupnorm_forward(x, gamma, beta, 2, {"eps": 1e-5})
            dout = rng.standard_normal(out.shape)
            dx, dgamma, dbeta = L.spatial_groupnorm_backward(dout, cache)
        return dict(x=x, gamma=gamma, beta=beta, out=out, dout=dout, dx=dx, dgamma=dgamma, dbeta=dbeta)
    return make


def _rule(name):
    def make(rng):
        rule = getattr(optim, name)
        w, dws = rng.standard_normal((3, 4)), rng.standard_normal((5, 3, 4))
        ws, current, config = [], w.copy(), {"learning_rate": 0.05}
        for dw in dws:
            current, config = rule(current, dw, config)
            ws.append(current.copy())
        return dict(w=w, dws=dws, ws=np.stack(ws))
    return make


def _net_for_reference(kind):
    """The small net a hidden test grades; the test builds the same one."""
    if kind == "FullyConnectedNet":
        return FullyConnectedNet([6, 5], input_dim=8, num_classes=4, reg=0.3, weight_scale=0.5,
                                 dtype=np.float64, seed=0), (5, 8)
    if kind == "TwoLayerNet":
        return TwoLayerNet(input_dim=8, hidden_dim=6, num_classes=4, weight_scale=0.5, reg=0.2,
                           dtype=np.float64, seed=0), (5, 8)
    return ThreeLayerConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4,
                             weight_scale=0.3, reg=0.1, dtype=np.float64, seed=0), (5, 2, 6, 6)


def _net(kind):
    def make(rng):
        model, x_shape = _net_for_reference(kind)
        for name, value in model.params.items():
            model.params[name] = rng.standard_normal(value.shape) * 0.5
        X, y = rng.standard_normal(x_shape), rng.integers(0, 4, size=x_shape[0])
        scores = model.loss(X)
        loss, grads = model.loss(X, y)
        arrays = dict(X=X, y=y, scores=scores, loss=np.float64(loss))
        arrays.update({f"param_{k}": v for k, v in model.params.items()})
        arrays.update({f"grad_{k}": v for k, v in grads.items()})
        return arrays
    return make


def _knn(rng):
    from solver.classifiers import KNearestNeighbor

    X_train, X_test = rng.integers(0, 17, (40, 16)).astype(np.float64), rng.integers(0, 17, (12, 16)).astype(np.float64)
    y_train = rng.integers(0, 4, 40)
    model = KNearestNeighbor()
    model.train(X_train, y_train)
    return dict(X_train=X_train, y_train=y_train, X_test=X_test, dists=model.compute_distances_two_loops(X_test),
                pred_k1=model.predict(X_test, k=1), pred_k5=model.predict(X_test, k=5))


def _linear_loss(name):
    def make(rng):
        from solver.classifiers import softmax_loss_naive, svm_loss_naive

        W, X, y = 0.01 * rng.standard_normal((9, 4)), 3 * rng.standard_normal((20, 9)), rng.integers(0, 4, 20)
        loss, dW = {"linear_svm": svm_loss_naive, "linear_softmax": softmax_loss_naive}[name](W, X, y, 0.5)
        return dict(W=W, X=X, y=y, reg=np.float64(0.5), loss=np.float64(loss), dW=dW)
    return make


CASES = {
    "affine": _affine,
    "relu": _relu,
    "softmax_loss": _loss(L.softmax_loss),
    "svm_loss": _loss(L.svm_loss),
    "batchnorm_train": _batchnorm("train"),
    "batchnorm_test": _batchnorm("test"),
    "layernorm": _layernorm,
    "dropout": _dropout,
    "conv": _conv,
    "max_pool": _max_pool,
    "spatial_batchnorm": _spatial("spatial_batchnorm"),
    "spatial_groupnorm": _spatial("spatial_groupnorm"),
    "sgd_momentum": _rule("sgd_momentum"),
    "rmsprop": _rule("rmsprop"),
    "adam": _rule("adam"),
    "FullyConnectedNet": _net("FullyConnectedNet"),
    "TwoLayerNet": _net("TwoLayerNet"),
    "ThreeLayerConvNet": _net("ThreeLayerConvNet"),
    "knn": _knn,
    "linear_svm": _linear_loss("linear_svm"),
    "linear_softmax": _linear_loss("linear_softmax"),
}


# The declared layer cases that are graded (test_declared.py), in family order.
DECLARED = [case for case in layers.CASES if case.graded]


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def build_case(name: str) -> dict:
    """The arrays of one reference case, hand-written or declared, from its own fixed seed
    (stable under reordering)."""
    if name in CASES:
        return CASES[name](np.random.default_rng(_seed(name)))
    return build_declared(layers.case(name))


def declared_inputs(case) -> tuple[dict, dict]:
    """The (inputs, params) of a declared case's reference: its check inputs from its own seed."""
    return check_inputs(case, _seed(case.name))


def build_declared(case) -> dict:
    """A declared case's reference arrays: inputs, out, dout and the gradients (a loss: loss, dx).

    Shape:
        as the case's "check" size; out, dout: forward's output; d<input>: that input's
    """
    inputs, params = declared_inputs(case)
    arrays = dict(inputs)
    arrays.update({name: value for name, value in params.items() if isinstance(value, np.ndarray)})
    copies = [value.copy() for value in inputs.values()]
    if case.kind == "loss":
        loss, dx = case.forward(*copies, **params)
        arrays.update(loss=np.float64(loss), dx=dx)
        return arrays
    out, cache = case.forward(*copies, **params)
    dout = np.random.default_rng([_seed(case.name), 1]).standard_normal(np.shape(out))
    grads = case.backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    arrays.update(out=out, dout=dout)
    arrays.update({f"d{name}": grad for name, grad in zip(inputs, grads)})
    return arrays


def reference_files() -> dict[str, dict]:
    """Every reference file's stem -> its arrays: one per hand-written case, one per family of declared cases."""
    files = {name: build_case(name) for name in CASES}
    for case in DECLARED:
        family = files.setdefault(FAMILY_FILE_PREFIX + layers.family_of(case), {})
        family.update({f"{case.name}{KEY_SEPARATOR}{key}": value for key, value in build_declared(case).items()})
    return files


def split_file(stem: str, arrays: dict) -> dict[str, dict]:
    """One stored file's arrays as case name -> arrays (a family file holds several cases)."""
    if not stem.startswith(FAMILY_FILE_PREFIX):
        return {stem: arrays}
    cases: dict[str, dict] = {}
    for key, value in arrays.items():
        case, _, array = key.rpartition(KEY_SEPARATOR)
        cases.setdefault(case, {})[array] = value
    return cases


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in sorted(arrays.items())})
    return buffer.getvalue()


# A stored file whose arrays all equal the fresh ones to this relative accuracy (another BLAS or
# numpy rounds differently, some 1e-15) is kept as it is, so regenerating changes no hash for noise.
REGENERATE_RTOL = 1e-12


def _unchanged(path: pathlib.Path, arrays: dict) -> bool:
    """path holds exactly these array names, each equal to the fresh array within REGENERATE_RTOL."""
    if not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as stored:
        if sorted(stored.files) != sorted(arrays):
            return False
        for key in stored.files:
            old, new = stored[key], np.asarray(arrays[key])
            if old.shape != new.shape or old.dtype != new.dtype or not np.allclose(old, new, rtol=REGENERATE_RTOL,
                                                                                    atol=0):
                return False
    return True


def write_reference(directory) -> dict[str, str]:
    """Regenerate every case into directory (atomically, file by file) and write SHA256SUMS.

    A file whose stored arrays equal the fresh ones within REGENERATE_RTOL is left untouched.

    Args:
        directory: the reference folder (created if missing).

    Returns:
        file name -> its SHA-256.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, arrays in reference_files().items():
        path = directory / f"{name}.npz"
        if _unchanged(path, arrays):
            hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
            continue
        data = _npz_bytes(arrays)
        write_atomically(path, data)
        hashes[path.name] = hashlib.sha256(data).hexdigest()
    for stale in directory.glob("*.npz"):
        if stale.name not in hashes:
            stale.unlink()
    listing = "".join(f"{digest}  {file}\n" for file, digest in sorted(hashes.items()))
    write_atomically(directory / HASHES_NAME, listing.encode())
    return hashes


def verify(directory) -> int:
    """Check the reference folder against its SHA256SUMS; returns the number of files checked.

    Raises:
        ReferenceError: SHA256SUMS missing, a listed file missing or altered, or an unlisted .npz.
    """
    directory = pathlib.Path(directory)
    listing = directory / HASHES_NAME
    if not listing.is_file():
        raise ReferenceError(f"reference data: {listing} is missing; run python -m grading make-reference.")
    expected = {}
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        digest, _, file = line.partition("  ")
        if len(digest) != 64 or not file:
            raise ReferenceError(f"reference data: {listing}:{number} is not '<sha256>  <file>': {line!r}.")
        expected[file] = digest
    for file, digest in sorted(expected.items()):
        path = directory / file
        if not path.is_file():
            raise ReferenceError(f"reference data: {path} is listed in {HASHES_NAME} but missing.")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise ReferenceError(
                f"reference data: {path} has SHA-256 {actual}, but {HASHES_NAME} records {digest}; "
                "it was altered or is stale (python -m grading make-reference regenerates it)."
            )
    extra = sorted(p.name for p in directory.glob("*.npz") if p.name not in expected)
    if extra:
        raise ReferenceError(f"reference data: {extra} in {directory} are not listed in {HASHES_NAME}.")
    return len(expected)
