"""The training command: ``python -m solver`` (what ``make train`` runs).

Trains a FullyConnectedNet, prints progress, reports train/val/test accuracy, and writes a run
folder with history.png, metrics.json and model.npz (the best parameters; load it with
``solver.load_model``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import pathlib
import sys
import time

import numpy as np

from data import load_digits, make_spiral
from solver.checkpoint import atomic_write, save_model
from solver.nets import FullyConnectedNet
from solver.optim import UPDATE_RULES
from solver.plotting import plot_history
from solver.schedules import SCHEDULES, make_schedule
from solver.solver import Solver

DATASETS = ("digits", "spiral")
# Spiral points per class in each split; the three splits are independent draws.
SPIRAL_SIZES = {"train": 300, "val": 100, "test": 100}


def _weight_scale(text):
    if text in ("he", "xavier"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, 'he' or 'xavier', got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for flags and options whose default is 'absent'."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser():
    """The argument parser of ``python -m solver``; every flag and its default.

    Args:
        (none)

    Returns:
        An argparse.ArgumentParser.

    Shape:
        (no arrays)
    """
    p = argparse.ArgumentParser(
        prog="python -m solver",
        description="Train a fully connected net and write a run folder with history.png, "
                    "metrics.json and model.npz.",
        formatter_class=_HelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits: the 1,797 real 8x8 handwritten digits shipped in data/; spiral: 3 noisy spiral arms")
    p.add_argument("--hidden-dims", type=int, nargs="*", default=[128, 64], metavar="H",
                   help="hidden layer sizes (none for a softmax classifier)")
    p.add_argument("--update-rule", choices=sorted(UPDATE_RULES), default="adam", help="update rule")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="base learning rate")
    p.add_argument("--lr-schedule", choices=["none", *sorted(SCHEDULES)], default="none",
                   help="learning-rate schedule over the run ('step' drops 10x at 50%% and 75%%)")
    p.add_argument("--lr-decay", type=float, default=1.0,
                   help="multiply the learning rate by this after each epoch (the course's lr_decay)")
    p.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warmup length, in epochs")
    p.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=50, help="samples per update")
    p.add_argument("--reg", type=float, default=0.0, help="L2 regularization strength")
    p.add_argument("--weight-scale", type=_weight_scale, default="he",
                   help="std of the initial weights: a number, 'he' or 'xavier'")
    p.add_argument("--seed", type=int, default=0, help="seed for the weights, the split and the shuffling")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="run folder (default: runs/<dataset>-<date>-<time>)")
    p.add_argument("--checkpoints", action="store_true",
                   help="also write a checkpoint after every epoch, to <out>/checkpoints/checkpoint_epoch_<e>.npz")
    p.add_argument("--resume", type=pathlib.Path, default=None, metavar="CHECKPOINT",
                   help="continue from a checkpoint written with --checkpoints (same settings)")
    p.add_argument("--print-every", type=int, default=100, help="log the loss every this many iterations")
    p.add_argument("--quiet", action="store_true", help="print only the final accuracies")
    return p


def load_dataset(name, seed):
    """The data dict (X_train, y_train, X_val, y_val, X_test, y_test) for a dataset name.

    Args:
        name: one of DATASETS.
        seed: seed of the split (digits) or of the draws (spiral).

    Returns:
        dict of float32 inputs and int64 labels.

    Shape:
        digits: X_* (N, 1, 8, 8); spiral: X_* (N, 2)
    """
    if name == "digits":
        data = load_digits(seed=seed)
        data.pop("mean_image")
        return data
    if name == "spiral":
        data = {}
        for i, (split, size) in enumerate(SPIRAL_SIZES.items()):
            data[f"X_{split}"], data[f"y_{split}"] = make_spiral(num_per_class=size, seed=seed + i)
        return data
    raise ValueError(f"load_dataset: name must be one of {DATASETS}, got {name!r}.")


def main(argv=None):
    """Run the training command; returns the process exit status (0 on success).

    Args:
        argv: the arguments (sys.argv[1:] when None).

    Returns:
        0, or 2 after an argument error (printed by argparse).

    Shape:
        (no arrays)
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--print-every", args.print_every)):
        if value < 1:
            parser.error(f"{flag} must be >= 1, got {value}")
    out = args.out or pathlib.Path("runs") / f"{args.dataset}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if args.quiet else print

    data = load_dataset(args.dataset, args.seed)
    input_dim = int(np.prod(data["X_train"].shape[1:]))
    num_classes = int(data["y_train"].max()) + 1
    try:
        model = FullyConnectedNet(args.hidden_dims, input_dim=input_dim, num_classes=num_classes, reg=args.reg,
                                  weight_scale=args.weight_scale, dtype=np.float32, seed=args.seed)
        schedule = None
        if args.lr_schedule != "none":
            schedule = make_schedule(args.lr_schedule, num_epochs=args.epochs, warmup_epochs=args.warmup_epochs)
        elif args.warmup_epochs:
            schedule = make_schedule("constant", warmup_epochs=args.warmup_epochs, decay=args.lr_decay)
        solver = Solver(model, data, update_rule=args.update_rule,
                        optim_config={"learning_rate": args.learning_rate},
                        lr_decay=1.0 if schedule is not None else args.lr_decay, lr_schedule=schedule,
                        batch_size=args.batch_size, num_epochs=args.epochs, num_train_samples=None,
                        print_every=args.print_every, verbose=not args.quiet, seed=args.seed,
                        checkpoint_name=str(out / "checkpoints" / "checkpoint") if args.checkpoints else None)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    if args.checkpoints:
        (out / "checkpoints").mkdir(exist_ok=True)
    if args.resume is not None:
        solver.load_checkpoint(args.resume)
        say(f"Resumed from {args.resume} at epoch {solver.epoch}.")

    say(f"{model}\n{solver}")
    start = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - start

    accuracy = {split: solver.check_accuracy(data[f"X_{split}"], data[f"y_{split}"]) for split in ("train", "val", "test")}
    metrics = {
        "dataset": args.dataset, "settings": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
        "model": repr(model), "train_seconds": seconds, "epochs_done": solver.epoch, "iterations": solver.iteration,
        "best_val_acc": solver.best_val_acc, "train_acc": accuracy["train"], "val_acc": accuracy["val"],
        "test_acc": accuracy["test"], "loss_history": solver.loss_history,
        "train_acc_history": solver.train_acc_history, "val_acc_history": solver.val_acc_history,
    }
    with atomic_write(out / "metrics.json", mode="w") as f:
        json.dump(metrics, f, indent=1)
    plot_history(solver, out / "history.png")
    save_model(model, out / "model.npz")
    print(f"train acc {accuracy['train']:.4f}  val acc {accuracy['val']:.4f}  test acc {accuracy['test']:.4f}  "
          f"({seconds:.1f} s training)")
    print(f"wrote {out / 'history.png'}, {out / 'metrics.json'}, {out / 'model.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
