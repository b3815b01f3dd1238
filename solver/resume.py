"""Saving and resuming a Solver's training: ``Solver.save_checkpoint`` and ``Solver.load_checkpoint``.

A checkpoint holds everything needed to resume (parameters, optimizer state, generator state,
histories) and the run's settings; resuming continues exactly as if training had never
stopped, and a Solver built with other settings (but for a longer num_epochs) is refused with
one CheckpointMismatch listing every difference. The file format itself (pickle-free .npz,
written atomically) and the checks of a file's contents are in solver.checkpoint.

Shape letters: N samples.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np

from solver.checkpoint import (AtLeast, CheckpointMismatch, checkpoint_problem, counters_problem, read_npz,
                               settings_differences, write_npz)

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "SEED_SETTINGS"]

CHECKPOINT_FORMAT = "chainrule-checkpoint"
CHECKPOINT_VERSION = 1
# Settings a resume may differ in: the seeds only start the generators and the initial weights,
# whose states the checkpoint replaces, so the run continues exactly whatever they are.
SEED_SETTINGS = ("seed", "model.seed")


class _CheckpointMixin:
    """The checkpoint methods of the Solver (solver.solver), which inherits them.

    They read and replace the Solver's training state: ``model``, ``best_params``,
    ``best_buffers``, ``optim_configs``, ``_base_lr``, the histories, ``epoch``, ``iteration``,
    ``best_val_acc``, ``best_epoch``, the generators ``_rng``, ``_eval_rng`` and
    ``_dropout_rng``, and the settings the Solver was built with.
    """

    def save_checkpoint(self, path):
        """Write the complete training state to an .npz file, atomically.

        The file holds the current and best parameters, every optimizer state array and
        setting, the epoch and iteration, the histories and the three generators' states, and
        reads back with ``np.load(path, allow_pickle=False)``.

        Args:
            path: destination file.

        Returns:
            The path written, as a pathlib.Path.

        Shape:
            (parameters as in model.params)
        """
        arrays = {}
        optim_settings = {}
        for name, config in self.optim_configs.items():
            optim_settings[name] = {}
            for key, value in config.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{name}/{key}"] = value
                else:
                    optim_settings[name][key] = value.item() if isinstance(value, np.generic) else value
        for name, value in self.model.params.items():
            arrays[f"params/{name}"] = value
            arrays[f"best_params/{name}"] = self.best_params[name]
        for name, value in self._buffers().items():
            arrays[f"buffers/{name}"] = value
            arrays[f"best_buffers/{name}"] = self.best_buffers[name]
        arrays["loss_history"] = np.asarray(self.loss_history, dtype=np.float64)
        arrays["train_acc_history"] = np.asarray(self.train_acc_history, dtype=np.float64)
        arrays["val_acc_history"] = np.asarray(self.val_acc_history, dtype=np.float64)
        meta = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "update_rule": self.update_rule_name, "batch_size": self.batch_size, "num_epochs": self.num_epochs,
            "epoch": self.epoch, "iteration": self.iteration, "best_val_acc": self.best_val_acc,
            "optim_settings": optim_settings, "base_lr": self._base_lr,
            "rng": self._rng.bit_generator.state, "eval_rng": self._eval_rng.bit_generator.state,
            "dropout_rng": self._dropout_rng.bit_generator.state, "settings": self._run_settings(),
        }
        path = pathlib.Path(path)
        write_npz(path, arrays, meta)
        return path

    def _run_settings(self):
        """Everything a resumed run must share with the run that wrote the checkpoint, JSON-ready.

        The model's constructor settings (when it has get_config), the update rule's
        hyperparameters, the schedule, the seed, the accuracy subsample sizes, and a summary
        of the training and validation sets (sizes, sample shape, dtype, a digest of the labels).
        update_rule and batch_size are recorded beside it; num_epochs may grow on resume.
        """
        get_config = getattr(self.model, "get_config", None)
        data = {}
        for split, X, y in (("train", self.X_train, self.y_train), ("val", self.X_val, self.y_val)):
            digest = hashlib.sha256(np.ascontiguousarray(y, dtype=np.int64).tobytes()).hexdigest()[:16]
            data[split] = f"{X.shape[0]} samples of {X.shape[1:]} {X.dtype}, labels sha256 {digest}"
        record = {
            "model": {"class": type(self.model).__name__, **get_config()} if callable(get_config) else None,
            "optim_config": self._hyperparameters,
            "lr_schedule": None if self.lr_schedule is None else repr(self.lr_schedule),
            "seed": self.seed, "num_train_samples": self.num_train_samples, "num_val_samples": self.num_val_samples,
            "data": data,
        }
        if getattr(self, "grad_clip", None) is not None:  # recorded only when set: older files match unclipped runs
            record["grad_clip"] = self.grad_clip
        # Through JSON and back, so that tuples become lists and numpy scalars numbers, as in the file.
        return json.loads(json.dumps(record, default=lambda v: v.item() if isinstance(v, np.generic) else repr(v)))

    def load_checkpoint(self, path):
        """Restore the training state from a file written by save_checkpoint.

        The Solver must have been built with the settings of the run that wrote the file: the
        same model (class and constructor settings, or parameter shapes for other models),
        update rule and hyperparameters, batch size, schedule, accuracy subsample sizes and
        data. Each difference is listed in one CheckpointMismatch (a ValueError). num_epochs may
        differ, to train longer (at least the epochs the file has done), and so may the seeds,
        which only start the generator states and weights that the file replaces. A file
        that is damaged or inconsistent (missing entries, non-finite or misshapen parameters or
        state, counters that disagree with the histories) is a ValueError naming the file and
        what is wrong. Nothing is changed unless the whole file is accepted. Call train()
        afterwards to continue from the saved epoch.

        Args:
            path: the checkpoint file.

        Returns:
            self, for chaining.

        Shape:
            (parameters as in model.params)
        """
        fn = "Solver.load_checkpoint"
        arrays, meta = read_npz(path, fn, CHECKPOINT_FORMAT)
        if meta.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{fn}: {path} is checkpoint version {meta.get('version')}; this chainrule reads "
                             f"version {CHECKPOINT_VERSION}.")
        problem = counters_problem(meta)
        if problem:
            raise ValueError(f"{fn}: {path} {problem}; it cannot be resumed.")
        differences = [(key, meta.get(key), mine) for key, mine in (("update_rule", self.update_rule_name),
                                                                     ("batch_size", self.batch_size))
                       if meta.get(key) != mine]
        saved_settings = meta.get("settings")
        if isinstance(saved_settings, dict):  # files written before chainrule recorded them lack it
            differences += [d for d in settings_differences(saved_settings, self._run_settings())
                            if d[0] not in SEED_SETTINGS]
        if meta["epoch"] > self.num_epochs:
            differences.append(("num_epochs", AtLeast(meta["epoch"], "the epochs it has done"), self.num_epochs))
        if differences:
            listed = "; ".join(f"{name}: {saved!r} in the file, {mine!r} here" for name, saved, mine in differences)
            raise CheckpointMismatch(f"{fn}: {path} was written by a run with other settings, so resuming would "
                                     f"not continue it: {listed}.", differences)
        if saved_settings is None:
            for name, current in self.model.params.items():
                saved = arrays.get(f"params/{name}")
                if saved is None or saved.shape != current.shape or saved.dtype != current.dtype:
                    got = "nothing" if saved is None else f"shape {saved.shape}, dtype {saved.dtype}"
                    raise ValueError(f"{fn}: {path} does not fit this model: parameter {name!r} is "
                                     f"{current.shape} {current.dtype} here, the file has {got}.")
        problem = checkpoint_problem(arrays, meta, self.model.params, self._buffers(), self.update_rule,
                                     self.iterations_per_epoch)
        if problem:
            raise ValueError(f"{fn}: {path} {problem}; it cannot be resumed.")

        for name in self.model.params:
            self.model.params[name] = arrays[f"params/{name}"]
            self.best_params[name] = arrays[f"best_params/{name}"]
            config = dict(meta["optim_settings"][name])
            prefix = f"optim/{name}/"
            config.update({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
            self.optim_configs[name] = config
        self._base_lr = meta["base_lr"]
        self.loss_history = arrays["loss_history"].tolist()
        self.train_acc_history = arrays["train_acc_history"].tolist()
        self.val_acc_history = arrays["val_acc_history"].tolist()
        self.epoch, self.iteration = meta["epoch"], meta["iteration"]
        self.best_val_acc = meta["best_val_acc"]
        # The first epoch reaching the best accuracy, as _record_accuracy keeps only strict improvements.
        self.best_epoch = int(np.argmax(self.val_acc_history)) if self.val_acc_history else 0
        buffers = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("buffers/")}
        if buffers:
            self.model.load_buffers(buffers)
            self.best_buffers = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("best_buffers/")}
        # Files written before the Solver owned the masks keep the model's mask generator as model_rng;
        # it was drawn from in the same order, so it continues those runs exactly too.
        dropout_state = meta.get("dropout_rng", meta.get("model_rng"))
        if dropout_state is not None:
            self._dropout_rng.bit_generator.state = dropout_state
        self._rng.bit_generator.state = meta["rng"]
        self._eval_rng.bit_generator.state = meta["eval_rng"]
        return self
