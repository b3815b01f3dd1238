"""The training command: ``python -m solver`` (what ``make train`` runs).

Trains a FullyConnectedNet (or with ``--model cnn`` a ThreeLayerConvNet; on ``--dataset digit-captions``
a CaptioningRNN and on ``--dataset python-text`` a CharLM, see solver.sequence_cli), prints
progress, reports train/val/test accuracy, and writes a run
folder with history.png, metrics.json and model.npz (the best parameters; load it with
``solver.load_model``). The flags, their per-dataset defaults and their ranges are in
solver.cli_flags (build_parser and its tables are importable from here too).
"""

from __future__ import annotations

import datetime
import itertools
import json
import pathlib
import sys
import time

import numpy as np

from data import get_cifar10_data, get_fashion_mnist_data, get_mnist_data, load_digits, make_spiral
from data.files import atomic_write
from solver.checkpoint import MODEL_FORMAT, CheckpointMismatch, folder_problem, read_npz, save_model
from solver.cli_flags import (  # noqa: F401 (the tables are re-exported, as solver.cli defined them)
    CNN_FILTERS,
    CNN_HIDDEN_DIM,
    DATASET_DEFAULTS,
    DATASETS,
    FLOAT_RANGES,
    INT_MINIMA,
    NON_NEGATIVE,
    POSITIVE,
    SETTING_FLAGS,
    UNIT,
    _check_ranges,
    build_parser,
)
from solver.cnn import ThreeLayerConvNet
from solver.memory import tune_allocator
from solver.nets import FullyConnectedNet
from solver.plotting import plot_history
from solver.schedules import make_schedule
from solver import sequence_cli
from solver.solver import CHECKPOINT_FORMAT, Solver

# Spiral points per class in each split; the three splits are independent draws.
SPIRAL_SIZES = {"train": 300, "val": 100, "test": 100}


def load_dataset(name, seed, root=None):
    """The data dict (X_train, y_train, X_val, y_val, X_test, y_test) for a dataset name.

    Args:
        name: one of DATASETS.
        seed: seed of the split (digits) or of the draws (spiral); the official sets keep
            their official train/test split.
        root: folder of mnist, fashion-mnist or cifar10 (None: the default places).

    Returns:
        dict of float32 inputs and int64 labels; cifar10 pixels are scaled to [0, 1] scale
        (after the course's mean subtraction), so the default He initialization fits them.

    Shape:
        digits: X_* (N, 1, 8, 8); spiral: X_* (N, 2); mnist, fashion-mnist: X_* (N, 1, 28, 28);
        cifar10: X_* (N, 3, 32, 32)
    """
    if name == "digits":
        data = load_digits(seed=seed)
    elif name == "spiral":
        data = {}
        for i, (split, size) in enumerate(SPIRAL_SIZES.items()):
            data[f"X_{split}"], data[f"y_{split}"] = make_spiral(num_per_class=size, seed=seed + i)
    elif name == "mnist":
        data = get_mnist_data(num_training=None, num_test=None, root=root)
    elif name == "fashion-mnist":
        data = get_fashion_mnist_data(num_training=None, num_test=None, root=root)
    elif name == "cifar10":
        data = get_cifar10_data(num_training=None, num_test=None, root=root)
        for key in ("X_train", "X_val", "X_test"):
            data[key] /= 255
    else:
        raise ValueError(f"load_dataset: name must be one of {DATASETS}, got {name!r}.")
    data.pop("mean_image", None)
    return data


def _fail(message, status=1):
    """Print the one-line reason of an expected failure and return its exit status."""
    print(f"python -m solver: {message}", file=sys.stderr)
    return status


def _schedule(args, num_epochs):
    """(lr_schedule, lr_decay) for the Solver; --lr-decay goes with none or constant only (main checks)."""
    if args.lr_schedule not in ("none", "constant"):
        return make_schedule(args.lr_schedule, num_epochs=num_epochs, warmup_epochs=args.warmup_epochs), 1.0
    if args.lr_schedule == "constant" or args.warmup_epochs:
        return make_schedule("constant", warmup_epochs=args.warmup_epochs, decay=args.lr_decay), 1.0
    return None, args.lr_decay


def _differences_by_flag(differences):
    """'--flag: X in the checkpoint, Y given' for each differing setting, one entry per flag."""
    def text(value):
        return "none" if value is None else value if isinstance(value, str) else repr(value)

    shown = {}
    for name, saved, given in differences:
        flag = SETTING_FLAGS.get(name, name)
        shown.setdefault(flag, f"{flag}: {text(saved)} in the checkpoint, {text(given)} given")
    return "; ".join(shown.values())


def _read_resume(path):
    """The checkpoint's meta, or the one-line reason it cannot be resumed from."""
    try:
        return read_npz(path, "--resume", CHECKPOINT_FORMAT)[1], None
    except (FileNotFoundError, ValueError) as exc:
        try:
            read_npz(path, "--resume", MODEL_FORMAT)
        except (FileNotFoundError, ValueError):
            return None, str(exc)
        return None, (f"--resume: {path} is a model file (the best parameters of a finished run), not a checkpoint; "
                      f"resume from DIR/checkpoints/checkpoint_epoch_<e>.npz of a run made with --checkpoints")


def _missing_folders(folder):
    """The folders from the topmost missing ancestor of ``folder`` down to it (empty if it exists)."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def _make_run_folder(out, dataset):
    """Create the run folder; returns (folder, the folders created, outermost first).

    Without --out the name is runs/<dataset>-<date>-<time>, made unique by an exclusive mkdir
    (-2, -3, ... when another run took it, even within the same second).
    """
    if out is not None:
        created = _missing_folders(out)
        out.mkdir(parents=True, exist_ok=True)
        return out, created
    base = pathlib.Path("runs") / f"{dataset}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    created = _missing_folders(base.parent)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder, [*created, folder]


def _remove_empty(folders):
    """Remove those of the given folders (ours) that are empty, innermost first; files are never removed."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


def main(argv=None):
    """Run the training command; returns the process exit status (0 on success).

    Args:
        argv: the arguments (sys.argv[1:] when None).

    Returns:
        0; 1 when a file is missing, damaged or cannot be written, or training fails; 2 after an
        invalid value or combination of flags (printed by argparse); 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = dict(DATASET_DEFAULTS[args.dataset])
    cnn_epochs, cnn_filter_size = defaults.pop("cnn_epochs"), defaults.pop("filter_size")
    sequence = args.dataset in sequence_cli.SEQUENCE_DATASETS
    default_model = defaults.pop("model")
    args.model = args.model or default_model
    if args.lr_schedule is None and args.lr_decay != 1.0:
        defaults["lr_schedule"] = "none"  # --lr-decay is itself a schedule: the course's
    if sequence:
        sequence_cli.check_flags(parser, args)
    elif args.model not in ("fc", "cnn"):
        parser.error(f"--model {args.model} is a sequence model: it trains on --dataset "
                     f"{' or '.join(sequence_cli.SEQUENCE_DATASETS)}")
    elif args.wordvec_dim is not None or args.seq_len is not None or args.max_chars is not None:
        parser.error("--wordvec-dim, --seq-len and --max-chars apply to the sequence datasets only")
    if args.model == "cnn":
        if args.dataset == "spiral":
            parser.error("--model cnn needs images; the spiral set is points in the plane (use --model fc)")
        if args.hidden_dims is not None and len(args.hidden_dims) != 1:
            parser.error(f"--model cnn has one hidden layer: give --hidden-dims exactly one size, got {args.hidden_dims}")
        if args.normalization != "none" or args.dropout_keep_ratio != 1.0:
            parser.error("--normalization and --dropout-keep-ratio apply to --model fc only "
                         f"(got --normalization {args.normalization} --dropout-keep-ratio {args.dropout_keep_ratio})")
        defaults["epochs"] = cnn_epochs
        defaults["hidden_dims"] = [CNN_HIDDEN_DIM]
        defaults["filters"] = CNN_FILTERS
        defaults["filter_size"] = cnn_filter_size
    elif args.filters is not None or args.filter_size is not None:
        parser.error("--filters and --filter-size apply to --model cnn only")
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    _check_ranges(parser, args)
    if args.lr_schedule not in ("none", "constant") and args.lr_decay != 1.0:
        parser.error(f"give --lr-decay or --lr-schedule {args.lr_schedule}, not both: --lr-decay is the "
                     f"constant schedule's per-epoch factor (--lr-schedule constant or none)")
    problem = folder_problem(args.out if args.out is not None else pathlib.Path("runs"))
    if problem:
        return _fail(f"cannot write the run folder {args.out or 'runs/'}: {problem}")
    resumed = None
    if args.resume is not None:
        resumed, problem = _read_resume(args.resume)
        if problem:
            return _fail(problem)
    # On resume a step schedule keeps its drops where the original run had them (50% and 75% of its epochs).
    saved_epochs = resumed.get("num_epochs") if resumed else None
    schedule_epochs = saved_epochs if isinstance(saved_epochs, int) and saved_epochs >= 1 else args.epochs
    schedule, lr_decay = _schedule(args, schedule_epochs)
    say = (lambda *a: None) if args.quiet else print
    tune_allocator()  # this process is ours: keep freed heap memory for the next step (solver.memory)

    try:
        if sequence:
            data, raw = sequence_cli.load_sequence_dataset(args)
        else:
            data = load_dataset(args.dataset, args.seed, args.data_dir)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(exc)
    input_dim = int(np.prod(data["X_train"].shape[1:]))
    num_classes = int(data["y_train"].max()) + 1
    try:
        if sequence:
            model, solver = sequence_cli.build(args, data, raw, say, schedule, lr_decay)
        elif args.model == "cnn":
            model = ThreeLayerConvNet(input_dim=data["X_train"].shape[1:], num_filters=args.filters,
                                      filter_size=args.filter_size,
                                      hidden_dim=args.hidden_dims[0],
                                      num_classes=num_classes, weight_scale=args.weight_scale, reg=args.reg,
                                      dtype=np.float32, seed=args.seed)
        else:
            model = FullyConnectedNet(args.hidden_dims, input_dim=input_dim, num_classes=num_classes, reg=args.reg,
                                      weight_scale=args.weight_scale, dtype=np.float32, seed=args.seed,
                                      normalization=None if args.normalization == "none" else args.normalization,
                                      dropout_keep_ratio=args.dropout_keep_ratio)
        if not sequence:
            solver = Solver(model, data, update_rule=args.update_rule,
                            optim_config={"learning_rate": args.learning_rate}, grad_clip=args.grad_clip,
                            lr_decay=lr_decay, lr_schedule=schedule,
                            batch_size=args.batch_size, num_epochs=args.epochs,
                            print_every=args.print_every, verbose=not args.quiet, seed=args.seed)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    if args.resume is not None:
        differences = []
        try:
            solver.load_checkpoint(args.resume)
        except CheckpointMismatch as exc:
            differences = list(exc.differences)
        except (FileNotFoundError, ValueError) as exc:
            return _fail(exc)
        # The Solver lets seeds differ (the file replaces what they start); the command records its
        # --seed in metrics.json, so it must be the run's.
        saved = resumed.get("settings")
        if isinstance(saved, dict) and saved.get("seed", args.seed) != args.seed:
            differences.insert(0, ("seed", saved["seed"], args.seed))
        if differences:
            parser.error(f"--resume {args.resume} was written with other settings; give the ones its run was "
                         f"started with: {_differences_by_flag(differences)}")

    # Everything is checked: only now does the run folder appear.
    try:
        out, created = _make_run_folder(args.out, args.dataset)
    except OSError as exc:
        return _fail(f"cannot create the run folder {args.out or 'runs/'}: {exc.strerror or exc}")
    checkpoints = out / "checkpoints"
    if args.checkpoints:
        # Set now that the folder's name is known; train() creates checkpoints/ inside the checked run folder.
        created += _missing_folders(checkpoints)
        solver.checkpoint_name = str(checkpoints / "checkpoint")
    if resumed is not None:
        longer = (f"; training to epoch {args.epochs} (its run had {saved_epochs})"
                  if isinstance(saved_epochs, int) and args.epochs != saved_epochs else "")
        say(f"Resumed from {args.resume} at epoch {solver.epoch}{longer}.")
    say(f"{model}\n{solver}")
    start = time.perf_counter()
    try:
        # Overflow ends in a non-finite loss or parameter, which the Solver reports in one line.
        with np.errstate(over="ignore", invalid="ignore"):
            solver.train()
    except (FloatingPointError, OSError, KeyboardInterrupt) as exc:
        _remove_empty(created)
        kept = sorted(checkpoints.glob("checkpoint_epoch_*.npz")) if args.checkpoints else []
        note = f" The checkpoints of the finished epochs are kept in {checkpoints}." if kept else ""
        if isinstance(exc, KeyboardInterrupt):
            return _fail(f"interrupted in epoch {solver.epoch + 1}.{note}", 130)
        if isinstance(exc, OSError):
            return _fail(f"cannot write {exc.filename or 'a checkpoint'}: {exc.strerror or exc}")
        return _fail(f"{exc}{note}")
    seconds = time.perf_counter() - start

    if sequence:
        scores, summary = sequence_cli.evaluate(args, model, solver, data, raw)
    else:
        scores = {f"{split}_acc": solver.check_accuracy(data[f"X_{split}"], data[f"y_{split}"])
                  for split in ("train", "val", "test")}
        summary = (f"train acc {scores['train_acc']:.4f}  val acc {scores['val_acc']:.4f}  "
                   f"test acc {scores['test_acc']:.4f}")
    settings = {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()}
    settings["out"] = str(out)
    metrics = {
        "dataset": args.dataset, "settings": settings,
        "model": repr(model), "train_seconds": seconds, "epochs_done": solver.epoch, "iterations": solver.iteration,
        # The accuracies below score the best parameters, those after epoch scored_epoch.
        "scored_epoch": solver.best_epoch,
        "best_val_acc": solver.best_val_acc, **scores, "loss_history": solver.loss_history,
        "train_acc_history": solver.train_acc_history, "val_acc_history": solver.val_acc_history,
    }
    if resumed is not None:
        metrics["resumed_from"] = {"checkpoint": str(args.resume), "epoch": resumed.get("epoch"),
                                   "num_epochs": saved_epochs}
    try:
        with atomic_write(out / "metrics.json", mode="w") as f:
            json.dump(metrics, f, indent=1)
        plot_history(solver, out / "history.png")
        save_model(model, out / "model.npz")
    except OSError as exc:
        return _fail(f"cannot write the results into {out}: {exc.strerror or exc}")
    print(f"{summary}  (parameters after epoch {solver.best_epoch} of {solver.epoch}, the best val acc; "
          f"{seconds:.1f} s training)")
    print(f"wrote {out / 'history.png'}, {out / 'metrics.json'}, {out / 'model.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
