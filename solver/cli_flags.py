"""The flags of ``python -m solver``: the parser, the defaults that depend on the dataset, the range
each numeric flag must lie in, and the flag behind each setting a checkpoint records.

solver.cli runs the command with them (and re-exports these names).
"""

from __future__ import annotations

import argparse
import math
import pathlib

from solver.optim import UPDATE_RULES
from solver.schedules import SCHEDULES

IMAGE_DATASETS = ("digits", "spiral", "mnist", "fashion-mnist", "cifar10")
# The sequence datasets train the models of solver.sequence_cli.
DATASETS = (*IMAGE_DATASETS, "digit-captions", "python-text")
MODELS = ("fc", "cnn", "rnn", "lstm", "gru", "transformer")
# Settings that depend on the dataset when their flag is not given. Fashion-MNIST with these
# reaches about 89% test accuracy in about 10 s on 2 cores.
# With --model cnn, Fashion-MNIST reaches about 90.6% (against 89.4% for the default fully
# connected net) in 3 epochs.
_SMALL = {"hidden_dims": [128, 64], "epochs": 30, "batch_size": 50, "lr_schedule": "none", "filter_size": 3,
          "cnn_epochs": 30, "model": "fc", "learning_rate": 1e-3}
_LARGE = {"hidden_dims": [256, 128], "epochs": 8, "batch_size": 100, "lr_schedule": "cosine", "filter_size": 5,
          "cnn_epochs": 3, "model": "fc", "learning_rate": 1e-3}
# The sequence models clip their gradients' global norm at 5 (recurrent nets need it).
_SEQUENCE = {"lr_schedule": "cosine", "grad_clip": 5.0, "wordvec_dim": 64, "filter_size": None, "cnn_epochs": None}
DATASET_DEFAULTS = {"digits": _SMALL, "spiral": _SMALL, "mnist": _LARGE, "fashion-mnist": _LARGE,
                    "cifar10": {**_LARGE, "epochs": 10, "batch_size": 200, "cnn_epochs": 5},
                    "digit-captions": {**_SEQUENCE, "model": "lstm", "hidden_dims": [256], "epochs": 10,
                                       "batch_size": 50, "learning_rate": 3e-3, "wordvec_dim": 32},
                    "python-text": {**_SEQUENCE, "model": "lstm", "hidden_dims": [256], "epochs": 4, "batch_size": 32,
                                    "learning_rate": 3e-3, "seq_len": 64, "max_chars": 2_000_000}}
# ThreeLayerConvNet defaults of the command (the class's own defaults are the course's).
CNN_HIDDEN_DIM = 100
CNN_FILTERS = 32

# The range of every numeric flag, checked after parsing; each range has one wording.
POSITIVE, NON_NEGATIVE, UNIT = "a finite number > 0", "a finite number >= 0", "a number in (0, 1]"
FLOAT_RANGES = {"learning_rate": POSITIVE, "lr_decay": UNIT, "warmup_epochs": NON_NEGATIVE, "reg": NON_NEGATIVE,
                "dropout_keep_ratio": UNIT, "grad_clip": POSITIVE}
INT_MINIMA = {"epochs": 1, "batch_size": 1, "print_every": 1, "filters": 1, "filter_size": 1, "seed": 0, "seq_len": 2,
              "max_chars": 1000, "wordvec_dim": 1}
# Numeric flags that may stay unset (None): their range applies only when given.
OPTIONAL_FLOATS = ("grad_clip",)
# The flag behind each setting a checkpoint records (Solver.load_checkpoint names the settings).
SETTING_FLAGS = {
    "update_rule": "--update-rule", "batch_size": "--batch-size", "num_epochs": "--epochs",
    "optim_config.learning_rate": "--learning-rate", "lr_schedule": "--lr-schedule, --warmup-epochs or --lr-decay",
    "seed": "--seed", "model.seed": "--seed", "model.class": "--model", "model.hidden_dims": "--hidden-dims",
    "model.hidden_dim": "--hidden-dims", "model.num_filters": "--filters", "model.filter_size": "--filter-size",
    "model.reg": "--reg", "model.dropout_keep_ratio": "--dropout-keep-ratio",
    "model.normalization": "--normalization", "model.weight_scale": "--weight-scale",
    "model.input_dim": "--dataset", "model.cell_type": "--model", "model.wordvec_dim": "--wordvec-dim",
    "model.word_to_idx": "--dataset", "model.idx_to_char": "--dataset or --max-chars", "model.max_length": "--seq-len",
    "model.num_layers": "--model", "model.num_heads": "--model", "model.num_classes": "--dataset", "data.train": "--dataset",
    "data.val": "--dataset", "grad_clip": "--grad-clip",
}


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

    Returns:
        An argparse.ArgumentParser.
    """
    p = argparse.ArgumentParser(
        prog="python -m solver",
        description="Train a fully connected or convolutional net and write a run folder with history.png, "
                    "metrics.json and model.npz.",
        formatter_class=_HelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits: the 1,797 real 8x8 handwritten digits shipped in data/; spiral: 3 noisy spiral "
                        "arms; mnist, fashion-mnist, cifar10: the official sets (python -m data.download NAME); "
                        "digit-captions: strips of 1-4 digits captioned with their names; python-text: the Python "
                        "standard library's sources, one character at a time")
    p.add_argument("--data-dir", type=pathlib.Path, default=None, metavar="DIR",
                   help="the data folder: DIR/mnist, DIR/fashion-mnist, DIR/cifar-10-batches-py, as "
                        "`python -m data.download NAME --dir DIR` writes them (default: $CHAINRULE_DATA or "
                        "~/.cache/chainrule; fashion-mnist also Debian's /usr/share/datasets/fashion-mnist)")
    p.add_argument("--model", choices=MODELS, default=None,
                   help="fc: FullyConnectedNet; cnn: ThreeLayerConvNet (conv - relu - 2x2 pool - affine - relu - "
                        "affine), for the image datasets (default fc); rnn, lstm, gru: the recurrent cell of "
                        "CaptioningRNN (digit-captions) or CharLM (python-text), transformer: CharLM's decoder "
                        "(python-text) (default lstm)")
    p.add_argument("--hidden-dims", type=int, nargs="*", default=None, metavar="H",
                   help="hidden layer sizes; none for a softmax classifier (default: 128 64 for digits and "
                        "spiral, 256 128 for the others); with --model cnn exactly one, the hidden layer (default 100)")
    p.add_argument("--filters", type=int, default=None, help="convolution filters (--model cnn; default: 32)")
    p.add_argument("--filter-size", type=int, default=None,
                   help="convolution filter size, odd (--model cnn; default: 3 for digits, 5 for the others)")
    p.add_argument("--update-rule", choices=sorted(UPDATE_RULES), default="adam", help="update rule")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="base learning rate (default: 0.001; 0.003 for digit-captions and python-text)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="scale each step's gradients down to at most this global L2 norm (default: none; 5 for "
                        "digit-captions and python-text)")
    p.add_argument("--wordvec-dim", type=int, default=None,
                   help="word / character vector size of the sequence models (default: 32 for digit-captions, "
                        "64 for python-text; the model width of --model transformer)")
    p.add_argument("--seq-len", type=int, default=None,
                   help="characters per training sequence (--dataset python-text; default 64)")
    p.add_argument("--max-chars", type=int, default=None,
                   help="characters of training text (--dataset python-text; default 2000000, validation a tenth)")
    p.add_argument("--lr-schedule", choices=["none", *sorted(SCHEDULES)], default=None,
                   help="learning-rate schedule over the run ('step' drops 10x at 50%% and 75%%) "
                        "(default: none for digits and spiral, cosine for the others)")
    p.add_argument("--lr-decay", type=float, default=1.0,
                   help="multiply the learning rate by this after each epoch (the course's lr_decay); with "
                        "--lr-schedule none or constant, which it implies when no schedule is given")
    p.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warmup length, in epochs")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training set (default: 30 for digits and spiral, 8 for mnist and "
                        "fashion-mnist, 10 for cifar10; with --model cnn 30, 3 and 5)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per update (default: 50 for digits and spiral, 100 for mnist and "
                        "fashion-mnist, 200 for cifar10)")
    p.add_argument("--reg", type=float, default=0.0, help="L2 regularization strength")
    p.add_argument("--normalization", choices=["none", "batchnorm", "layernorm"], default="none",
                   help="normalization after each hidden affine layer")
    p.add_argument("--dropout-keep-ratio", type=float, default=1.0,
                   help="probability of keeping a hidden unit in training (1 = no dropout)")
    p.add_argument("--weight-scale", type=_weight_scale, default="he",
                   help="std of the initial weights: a number, 'he' or 'xavier'")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the weights, the split, the shuffling and the dropout masks")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="run folder, created when training starts (default: runs/<dataset>-<date>-<time>, "
                        "with -2, -3, ... appended when that is taken)")
    p.add_argument("--checkpoints", action="store_true",
                   help="also write a checkpoint after every epoch, to <out>/checkpoints/checkpoint_epoch_<e>.npz")
    p.add_argument("--resume", type=pathlib.Path, default=None, metavar="CHECKPOINT",
                   help="continue from a checkpoint written with --checkpoints; every setting must be the "
                        "checkpoint's, except a larger --epochs and --out, --checkpoints, --data-dir, "
                        "--print-every, --quiet")
    p.add_argument("--print-every", type=int, default=100, help="log the loss every this many iterations")
    p.add_argument("--quiet", action="store_true", help="print only the final accuracies")
    return p


def _check_ranges(parser, args):
    """Exit 2 naming the first flag outside its range (FLOAT_RANGES, INT_MINIMA)."""
    for key, rule in FLOAT_RANGES.items():
        value = getattr(args, key)
        if value is None and key in OPTIONAL_FLOATS:
            continue
        low_ok = value > 0 if rule in (POSITIVE, UNIT) else value >= 0
        if not (math.isfinite(value) and low_ok and (rule != UNIT or value <= 1)):
            parser.error(f"--{key.replace('_', '-')} must be {rule}, got {value!r}")
    for key, low in INT_MINIMA.items():
        value = getattr(args, key)
        if value is not None and value < low:
            parser.error(f"--{key.replace('_', '-')} must be an int >= {low}, got {value}")
