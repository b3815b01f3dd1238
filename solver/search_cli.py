"""``python -m solver search``: hyperparameter search from the command line (solver.tuning.search).

    python -m solver search --trials 20 --jobs 2 --out runs/search \\
        --learning-rate 1e-4:1e-2 --reg 0 1e-5:1e-1 --hidden-dims 64 128,64 --epochs 10

Each searched flag takes alternatives, separated by spaces or commas: a value, or a range LOW:HIGH
(log-uniform for --learning-rate, --reg and --weight-scale, uniform for --dropout-keep-ratio); one
alternative is picked uniformly per trial. --hidden-dims takes choices of layer sizes joined by
commas (128,64), ``none`` for no hidden layer. Every other flag of ``python -m solver`` (--epochs,
--model, --batch-size, ...) is passed to every trial as it is.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shlex
import sys

from solver import tuning
from solver.cli_flags import DATASETS
from solver.cli_flags import build_parser as build_training_parser

PROG = "python -m solver search"
USAGE = (f"{PROG} --out DIR (--trials N | --grid) [--jobs J] [--executor local|dask] [--scheduler tcp://HOST:PORT] "
         "[--seed S] [searched flags] [other flags of python -m solver]")
# Rows of the results table printed at the end (all of them are in results.md).
TOP_ROWS = 5
HELP = {
    "learning_rate": "learning rates: values and LOW:HIGH ranges (log-uniform), e.g. 1e-4:1e-2",
    "reg": "L2 strengths: values and LOW:HIGH ranges (log-uniform, LOW > 0), e.g. 0 1e-5:1e-1",
    "weight_scale": "initial weight std: numbers, he, xavier and LOW:HIGH ranges (log-uniform)",
    "dropout_keep_ratio": "keep probabilities in (0, 1]: values and LOW:HIGH ranges (uniform), e.g. 0.5:1",
    "hidden_dims": "hidden layer choices, sizes joined by commas, none for no hidden layer, e.g. 64 128,64",
    "normalization": f"choices among {', '.join(tuning.CHOICES['normalization'])}",
    "update_rule": f"choices among {', '.join(tuning.CHOICES['update_rule'])}",
    "lr_schedule": f"choices among {', '.join(tuning.CHOICES['lr_schedule'])}",
}


def _flag(name):
    return "--" + name.replace("_", "-")


def build_parser():
    """The argument parser of ``python -m solver search`` (the training flags are passed through).

    Returns:
        An argparse.ArgumentParser; parse with parse_known_args, the rest being training flags.
    """
    from solver.executor import KINDS

    p = argparse.ArgumentParser(prog=PROG, usage=USAGE, allow_abbrev=False,
                                description="Random or grid search over the training command's settings: each "
                                            "trial is a python -m solver run writing OUT/trial-<i>/.",
                                epilog="Any other flag of python -m solver (--epochs, --model, --batch-size, ...) "
                                       "is given to every trial. A re-run with the same settings resumes.")
    p.add_argument("--out", type=pathlib.Path, required=True, metavar="DIR", help="the search folder")
    p.add_argument("--trials", type=int, default=None, metavar="N", help="trials to draw (random search)")
    p.add_argument("--grid", action="store_true", help="run every combination of the given values instead")
    p.add_argument("--jobs", type=int, default=None, metavar="J", help="trials at a time (default: the cores available)")
    p.add_argument("--executor", choices=KINDS, default="local",
                   help="local: a process pool; dask: a dask.distributed cluster (pip install 'chainrule[cluster]')")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="with --executor dask: a running dask scheduler (default: a local cluster of --jobs workers)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="search seed: the same seed draws the same trials")
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="the dataset of every trial")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="seconds before a trial is stopped and marked failed")
    for name in tuning.PARAMETERS:
        p.add_argument(_flag(name), nargs="+", default=None, metavar="ALT", help=HELP[name])
    return p


def parse_alternatives(name, words):
    """The space entry of one searched flag from its words (spaces or commas separate alternatives).

    Args:
        name: a parameter of solver.tuning.PARAMETERS.
        words: the flag's words, e.g. ["0", "1e-5:1e-1"] for --reg.

    Returns:
        list of alternatives for solver.tuning.search: numbers, (low, high) ranges, strings, or
        for hidden_dims lists of layer sizes.

    Raises:
        ValueError: a word that is neither a number, a range nor a choice, naming the flag.
    """
    flag = _flag(name)
    if name == "hidden_dims":
        choices = []
        for word in words:
            try:
                choices.append([] if word.lower() == "none" else [int(size) for size in word.split(",")])
            except ValueError:
                raise ValueError(f"{flag}: each choice is layer sizes joined by commas, like 128,64, or none; "
                                 f"got {word!r}") from None
        return choices
    parts = [part for word in words for part in word.split(",")]
    if not all(parts):
        raise ValueError(f"{flag}: an empty alternative in {' '.join(words)!r}")
    if name in tuning.CHOICES:
        return parts
    alternatives = []
    for part in parts:
        if name == "weight_scale" and part in ("he", "xavier"):
            alternatives.append(part)
            continue
        try:
            alternatives.append(tuple(float(end) for end in part.split(":")) if ":" in part else float(part))
        except ValueError:
            raise ValueError(f"{flag}: expected numbers or LOW:HIGH ranges, got {part!r}") from None
    return alternatives


def _fixed_flags(parser, extra):
    """The training flags among the words the search parser left, as {setting: value} (exit 2 if wrong)."""
    training = build_training_parser()
    for action in training._actions:
        action.default = argparse.SUPPRESS  # only the flags given
    training.error = parser.error
    fixed = vars(training.parse_args(extra))
    for name in fixed:
        if name in tuning.OWN_FLAGS:
            parser.error(f"{_flag(name)} is not a flag of a search: {tuning.OWN_FLAGS[name]}")
    return fixed


def _in_flag_words(exc):
    """search's message as the command says it: fixed['epochs'] and space['reg'] become --epochs and --reg."""
    return re.sub(r"(?:fixed|space)\['(\w+)'\]", lambda m: _flag(m.group(1)), str(exc).removeprefix("search: "))


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


def _progress(trial, done, total, eta):
    """One line per finished trial: what it scored (or why it failed), and the ETA of the rest."""
    what = (f"val acc {trial.val_acc:.4f}  train acc {trial.train_acc:.4f}  ({trial.seconds:.2f} s training, "
            f"{trial.wall_seconds:.1f} s in all)" if trial.ok else f"failed: {trial.reason}")
    print(f"[{done}/{total}] trial {trial.index:3d}  {what}  (ETA {_clock(eta)})", flush=True)


def main(argv=None):
    """Run ``python -m solver search``; returns the exit status.

    Args:
        argv: the arguments after ``search`` (sys.argv[2:] when None).

    Returns:
        0 when at least one trial succeeded; 1 when every trial failed, the folder cannot be
        written or the cluster cannot be reached; 2 after a usage error (printed by argparse);
        130 when interrupted (a re-run resumes).
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(sys.argv[2:] if argv is None else argv)
    space = {}
    try:
        for name in tuning.PARAMETERS:
            if getattr(args, name) is not None:
                space[name] = parse_alternatives(name, getattr(args, name))
        if space:
            tuning.check_space(space, fn="search", label=_flag)
    except (TypeError, ValueError) as exc:
        parser.error(_in_flag_words(exc))
    if not space:
        parser.error(f"give at least one searched flag ({', '.join(map(_flag, tuning.PARAMETERS))}), "
                     "e.g. --learning-rate 1e-4:1e-2")
    if args.trials is None and not args.grid:
        parser.error("give --trials N (random search) or --grid (every combination)")
    for flag, value in (("--trials", args.trials), ("--jobs", args.jobs)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be an int >= 1, got {value}")
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout must be a number of seconds > 0, got {args.timeout}")
    ranges = [name for name, alternatives in space.items() if any(isinstance(a, tuple) for a in alternatives)]
    if args.grid and ranges:
        parser.error(f"--grid takes lists of values, but {_flag(ranges[0])} has a range LOW:HIGH")
    fixed = _fixed_flags(parser, extra)
    try:
        result = tuning.search(space, out=args.out, trials=args.trials, dataset=args.dataset, seed=args.seed,
                               jobs=args.jobs, executor=args.executor, scheduler=args.scheduler, grid=args.grid,
                               fixed=fixed, timeout=args.timeout, on_trial=_progress)
    except (TypeError, ValueError) as exc:
        parser.error(_in_flag_words(exc))
    except (RuntimeError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the finished trials are kept in {args.out}: run the same command to resume.",
              file=sys.stderr)
        return 130
    resumed = sum(t.resumed for t in result.trials)
    if resumed:
        print(f"{resumed} trials were already finished in {result.out} and were read, not run again.")
    table = [line for line in result.files["results.md"].read_text().splitlines() if line.startswith("|")]
    print("\n" + "\n".join(table[:2 + TOP_ROWS]) + (f"\n... ({len(table) - 2 - TOP_ROWS} more)"
                                                     if len(table) > 2 + TOP_ROWS else ""))
    best = result.best
    if best is None:
        print(f"{PROG}: every trial failed; the reasons are in {result.files['results.md']}", file=sys.stderr)
        return 1
    print(f"\nbest: trial {best.index}, val acc {best.val_acc:.4f}: {best.config}\n"
          f"rerun it: {shlex.join(['python', '-m', 'solver', *best.command])}")
    print(f"wrote {', '.join(str(path) for path in result.files.values())}")
    return 0
