"""The Solver: trains a model with minibatch gradient descent and keeps the best parameters.

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    num_epochs=10, batch_size=100, seed=0)
    solver.train()
    solver.best_val_acc, solver.loss_history, solver.train_acc_history, solver.val_acc_history

The model is anything with a ``params`` dict of arrays and a ``loss(X, y=None)`` method that
returns scores without labels and ``(loss, grads)`` with them (see solver.nets). A model may
also have ``buffers()`` / ``load_buffers(dict)`` (state that is not trained, such as batchnorm's
running averages); the Solver then keeps the buffers with the best parameters and puts them in
checkpoints. A model with a ``dropout_rng`` attribute (solver.nets) gets the Solver's own
dropout generator there for the length of ``train()`` (the attribute is restored afterwards):
the masks change every step, come from the Solver's seed, and their generator's state travels
in checkpoints. So a seeded net, whose masks are otherwise fixed for gradient checks, trains
with fresh masks.

What differs from the course's Solver, on purpose:
- each epoch visits every training sample once, in a fresh shuffled order, and the last,
  smaller batch is kept rather than dropped;
- the same seed gives the same loss_history, bit for bit; all randomness of training (the
  dropout masks included) comes from the Solver's own generators, never numpy's global state;
- best_params starts as a copy of the initial parameters and only ever holds finite values;
- a non-finite loss or parameter stops training with FloatingPointError naming the iteration;
- checkpoints hold everything needed to resume (parameters, optimizer state, generator state,
  histories) and the run's settings; resuming continues exactly as if training had never
  stopped, and a Solver built with other settings (but for a longer num_epochs) is refused
  (``save_checkpoint`` and ``load_checkpoint``, whose code is in solver.resume).

Shape letters: N samples, C classes.
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np

from layers.validate import integer, labels, real_number
from solver.checkpoint import CheckpointMismatch, folder_problem
from solver.optim import get_update_rule
from solver.progress import Progress
from solver.resume import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, SEED_SETTINGS, _CheckpointMixin  # noqa: F401
from solver.schedules import ConstantSchedule, Schedule, make_schedule

__all__ = ["Solver", "CHECKPOINT_FORMAT", "CheckpointMismatch"]

# Every option, its default and its meaning. Unknown options are refused.
OPTIONS = {
    "update_rule": "sgd",        # name in solver.optim.UPDATE_RULES, or a callable rule
    "optim_config": None,        # hyperparameters for the rule (learning_rate, momentum, ...)
    "lr_decay": 1.0,             # multiply the learning rate by this after every epoch
    "lr_schedule": None,         # a solver.schedules.Schedule, or a schedule name ("cosine", ...)
    "batch_size": 100,           # samples per update; the last batch of an epoch may be smaller
    "num_epochs": 10,            # passes over the training set
    "num_train_samples": 1000,   # training samples scored for train accuracy (None: all)
    "num_val_samples": None,     # validation samples scored for val accuracy (None: all)
    "checkpoint_name": None,     # if set, write <checkpoint_name>_epoch_<e>.npz after each epoch (folder: by train())
    "print_every": 10,           # log the loss every this many iterations (when verbose)
    "verbose": True,             # print progress
    "seed": None,                # seed of the shuffling, subsampling and dropout-mask generators
    "grad_clip": None,           # if set, scale each step's gradients down to at most this global L2 norm
}
REQUIRED_DATA = ("X_train", "y_train", "X_val", "y_val")


def _unit_interval(fn, name, value):
    """A factor in (0, 1], with one wording for every value outside it."""
    try:
        checked = real_number(fn, name, value, low=0.0, high=1.0)
    except ValueError:
        checked = 0.0
    if checked == 0:
        raise ValueError(f"{fn}: {name} must be in (0, 1], got {float(value)!r}.")
    return checked


class Solver(_CheckpointMixin):
    """Trains a classification model; see the module docstring and OPTIONS for the settings.

    Args:
        model: an object with ``params`` (dict of arrays) and ``loss(X, y=None)``.
        data: dict with X_train, y_train, X_val, y_val (other keys, e.g. X_test, are ignored).
        **options: any of OPTIONS.

    Shape:
        X_train: (N_train, ...), y_train: (N_train,), X_val: (N_val, ...), y_val: (N_val,)
    """

    def __init__(self, model, data, **options):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"Solver: unknown option(s) {unknown}; valid options are {sorted(OPTIONS)}.")
        settings = {**OPTIONS, **options}
        if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
            raise TypeError(f"Solver: model must have a params dict and a loss method, got {type(model).__name__}.")
        self.model = model
        # Labels are checked against the model's class count when it declares one.
        self._num_classes = int(getattr(model, "num_classes", np.iinfo(np.int64).max))
        self._set_data(data)

        self.update_rule_name = settings["update_rule"] if isinstance(settings["update_rule"], str) else getattr(
            settings["update_rule"], "__name__", repr(settings["update_rule"]))
        self.update_rule = get_update_rule(settings["update_rule"])
        optim_config = settings["optim_config"] or {}
        if not isinstance(optim_config, dict):
            raise TypeError(f"Solver: optim_config must be a dict or None, got {type(optim_config).__name__}.")
        self.optim_config = dict(optim_config)
        self.batch_size = integer("Solver", "batch_size", settings["batch_size"], low=1)
        self.num_epochs = integer("Solver", "num_epochs", settings["num_epochs"], low=1)
        self.num_train_samples = integer("Solver", "num_train_samples", settings["num_train_samples"], low=1,
                                         allow_none=True)
        self.num_val_samples = integer("Solver", "num_val_samples", settings["num_val_samples"], low=1, allow_none=True)
        self.print_every = integer("Solver", "print_every", settings["print_every"], low=1)
        self.verbose = bool(settings["verbose"])
        self.seed = integer("Solver", "seed", settings["seed"], low=0, allow_none=True)
        self.checkpoint_name = settings["checkpoint_name"]
        if self.checkpoint_name is not None:
            if not isinstance(self.checkpoint_name, (str, os.PathLike)):
                raise TypeError(f"Solver: checkpoint_name must be a path or None, got "
                                f"{type(self.checkpoint_name).__name__}.")
            # Checked now rather than when the first epoch ends; train() creates the folder.
            problem = folder_problem(pathlib.Path(self.checkpoint_name).parent)
            if problem:
                raise ValueError(f"Solver: checkpoint_name {str(self.checkpoint_name)!r} cannot be written: {problem}.")
        self.grad_clip = settings["grad_clip"]
        if self.grad_clip is not None:
            self.grad_clip = real_number("Solver", "grad_clip", self.grad_clip, low=0.0, low_open=True)
        self.lr_decay = _unit_interval("Solver", "lr_decay", settings["lr_decay"])
        self.lr_schedule = self._make_schedule(settings["lr_schedule"])
        self._reset()

    def _set_data(self, data):
        if not isinstance(data, dict):
            raise TypeError(f"Solver: data must be a dict with keys {list(REQUIRED_DATA)}, got {type(data).__name__}.")
        missing = [k for k in REQUIRED_DATA if k not in data]
        if missing:
            raise ValueError(f"Solver: data is missing {missing}; it needs {list(REQUIRED_DATA)}.")
        for split in ("train", "val"):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if not isinstance(X, np.ndarray) or X.ndim < 2 or X.shape[0] == 0:
                raise ValueError(f"Solver: data['X_{split}'] must be a non-empty array of shape (N, ...), got "
                                 f"{getattr(X, 'shape', type(X).__name__)}.")
            self._check_targets(split, X, y)
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

    def _check_targets(self, split, X, y):
        """data['y_<split>'] checked against data['X_<split>']: one class label per sample."""
        labels(f"Solver (data['y_{split}'])", y, X.shape[0], self._num_classes)

    def _make_schedule(self, lr_schedule):
        if lr_schedule is not None and self.lr_decay != 1.0:
            raise ValueError("Solver: give lr_decay or lr_schedule, not both; lr_decay=d is "
                             "lr_schedule=ConstantSchedule(decay=d).")
        if isinstance(lr_schedule, str):
            return make_schedule(lr_schedule, num_epochs=self.num_epochs)
        if lr_schedule is not None and not isinstance(lr_schedule, Schedule):
            raise TypeError(f"Solver: lr_schedule must be a Schedule, a schedule name or None, got {lr_schedule!r}.")
        if lr_schedule is None and self.lr_decay != 1.0:
            return ConstantSchedule(decay=self.lr_decay)
        return lr_schedule

    def _reset(self):
        self.epoch = 0
        self.iteration = 0
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.best_val_acc = None
        self.best_epoch = 0  # the epoch after which best_params were taken (0: the initial ones)
        self.grad_norm = None  # the last step's global gradient norm, before clipping
        self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        self.best_buffers = self._buffers(copy=True)
        train_seq, eval_seq, dropout_seq = np.random.SeedSequence(self.seed).spawn(3)
        self._rng = np.random.default_rng(train_seq)  # shuffles the training set
        self._eval_rng = np.random.default_rng(eval_seq)  # picks samples for accuracy checks
        self._dropout_rng = np.random.default_rng(dropout_seq)  # lent to model.dropout_rng in train()
        self.optim_configs = {}
        self._base_lr = {}
        # The rule's hyperparameters with its defaults filled in, as checkpoints record them.
        self._hyperparameters = dict(self.optim_config)
        for name, w in self.model.params.items():
            config = dict(self.optim_config)
            # A step on a throwaway copy fills the rule's defaults and validates the hyperparameters
            # now, rather than after the first epoch; it also reveals the base learning rate.
            probe = dict(config)
            self.update_rule(np.zeros(1, w.dtype), np.zeros(1, w.dtype), probe)
            self._base_lr[name] = probe.get("learning_rate")
            self._hyperparameters = {k: v for k, v in probe.items() if not isinstance(v, np.ndarray) and k != "t"}
            self.optim_configs[name] = config

    def _buffers(self, copy=False):
        buffers = self.model.buffers() if callable(getattr(self.model, "buffers", None)) else {}
        return {k: v.copy() for k, v in buffers.items()} if copy else buffers

    def __repr__(self):
        return (f"Solver(model={type(self.model).__name__}, update_rule={self.update_rule_name!r}, "
                f"optim_config={self.optim_config}, lr_decay={self.lr_decay}, lr_schedule={self.lr_schedule!r}, "
                f"batch_size={self.batch_size}, num_epochs={self.num_epochs}, seed={self.seed}, "
                f"epoch={self.epoch}, iteration={self.iteration})")

    @property
    def iterations_per_epoch(self):
        """Updates per epoch: ceil(N_train / batch_size), the last batch possibly smaller."""
        return math.ceil(self.X_train.shape[0] / self.batch_size)

    def _step(self, X_batch, y_batch):
        loss, grads = self.model.loss(X_batch, y_batch)
        where = f"iteration {self.iteration + 1} (epoch {self.epoch + 1})"
        if not np.isfinite(loss):
            raise FloatingPointError(f"Solver: the loss became {loss} at {where}; training stopped and the model "
                                     f"keeps its best parameters. Try a smaller learning rate.")
        missing = [name for name in self.model.params if name not in grads]
        if missing:
            raise KeyError(f"Solver: model.loss returned no gradient for parameter(s) {missing}.")
        # The global norm over every parameter's gradient, before clipping (recorded for plots).
        self.grad_norm = math.sqrt(sum(float(np.vdot(grads[name], grads[name])) for name in self.model.params))
        if self.grad_clip is not None and self.grad_norm > self.grad_clip:
            scale = self.grad_clip / self.grad_norm  # one factor for all: the step keeps its direction
            grads = {name: g * np.asarray(scale, dtype=g.dtype) for name, g in grads.items()}
        factor = None
        if self.lr_schedule is not None:
            factor = self.lr_schedule.factor(self.iteration, self.iterations_per_epoch, self.num_epochs)
        for name, w in self.model.params.items():
            config = self.optim_configs[name]
            if factor is not None and self._base_lr[name] is not None:
                config["learning_rate"] = self._base_lr[name] * factor
            next_w, self.optim_configs[name] = self.update_rule(w, grads[name], config)
            if not np.all(np.isfinite(next_w)):
                raise FloatingPointError(f"Solver: parameter {name!r} became non-finite at {where}; training "
                                         f"stopped and the model keeps its best parameters. Try a smaller learning rate.")
            self.model.params[name] = next_w
        return float(loss)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of samples whose highest score is the true label, computed in batches.

        Args:
            X: inputs.
            y: integer labels.
            num_samples: if set and smaller than N, score a random subset of this size (drawn
                from the Solver's private evaluation generator).
            batch_size: samples per forward pass, which bounds memory.

        Returns:
            Accuracy as a Python float in [0, 1].

        Shape:
            X: (N, ...), y: (N,)
        """
        if not isinstance(X, np.ndarray) or X.ndim < 1:
            raise TypeError(f"Solver.check_accuracy: X must be a numpy array of shape (N, ...), got {type(X).__name__}.")
        y = labels("Solver.check_accuracy", y, X.shape[0], self._num_classes)
        num_samples = integer("Solver.check_accuracy", "num_samples", num_samples, low=1, allow_none=True)
        batch_size = integer("Solver.check_accuracy", "batch_size", batch_size, low=1)
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            idx = np.sort(self._eval_rng.choice(N, num_samples, replace=False))
            X, y, N = X[idx], y[idx], num_samples
        if N == 0:
            raise ValueError("Solver.check_accuracy: X holds no samples.")
        correct = 0
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            correct += int(np.sum(np.argmax(scores, axis=1) == y[start:start + batch_size]))
        return correct / N

    def _record_accuracy(self, progress):
        train_acc = self.check_accuracy(self.X_train, self.y_train, num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        progress.log(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:.6f}; val_acc: {val_acc:.6f}")
        if self.best_val_acc is None or val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_epoch = self.epoch
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
            self.best_buffers = self._buffers(copy=True)

    def train(self):
        """Train until num_epochs epochs are done (continuing from a loaded checkpoint, if any).

        Accuracies are recorded before the first update (epoch 0) and after every epoch, so
        the histories have num_epochs + 1 entries. At the end, or when training stops with an
        error, the model gets the best parameters seen (by validation accuracy; ``best_epoch``
        says after which epoch), and the buffers (running averages) it had at that moment. With
        a checkpoint_name, its folder is created here (with its parents) if missing.

        Returns:
            self, for chaining.

        Shape:
            loss_history: (iterations,), train_acc_history and val_acc_history: (num_epochs + 1,)
        """
        total = self.num_epochs * self.iterations_per_epoch
        progress = Progress(total, enabled=self.verbose)
        N = self.X_train.shape[0]
        if self.checkpoint_name is not None:
            pathlib.Path(self.checkpoint_name).parent.mkdir(parents=True, exist_ok=True)
        lends_rng = hasattr(self.model, "dropout_rng")
        if lends_rng:
            own_rng, self.model.dropout_rng = self.model.dropout_rng, self._dropout_rng
        try:
            if not self.val_acc_history:
                self._record_accuracy(progress)
            while self.epoch < self.num_epochs:
                order = self._rng.permutation(N)
                for start in range(0, N, self.batch_size):
                    batch = order[start:start + self.batch_size]
                    loss = self._step(self.X_train[batch], self.y_train[batch])
                    self.loss_history.append(loss)
                    self.iteration += 1
                    if self.iteration % self.print_every == 0:
                        progress.log(f"(Iteration {self.iteration} / {total}) loss: {loss:.6f}")
                    progress.update(self.iteration, self.epoch + 1, self.num_epochs, loss)
                self.epoch += 1
                self._record_accuracy(progress)
                if self.checkpoint_name is not None:
                    self.save_checkpoint(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")
        finally:
            progress.close()
            if lends_rng:
                self.model.dropout_rng = own_rng
            self.model.params.update({k: v.copy() for k, v in self.best_params.items()})
            if self.best_buffers:
                self.model.load_buffers(self.best_buffers)
        return self
