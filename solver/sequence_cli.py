"""The sequence half of ``python -m solver``: captioning the digit strips and modelling Python text.

    python -m solver --dataset digit-captions --model lstm      # CaptioningRNN (rnn, lstm or gru)
    python -m solver --dataset python-text --model transformer  # CharLM (rnn, lstm, gru or transformer)

solver.cli parses the flags and runs the run folder, resuming, training and writing; this module
checks the flags that only sequence models take, loads the data in the Solver's layout, builds
the model and its SequenceSolver, prints samples after every epoch, and scores the result.

Shape letters: N samples, T time steps.
"""

from __future__ import annotations

import numpy as np

from data.captions import decode_captions, load_digit_captions
from data.text import consecutive_windows, load_python_text, unigram_bits_per_char
from solver.captioning import CELLS, CaptioningRNN
from solver.charlm import CELL_TYPES, CharLM
from solver.sequence import SequenceSolver

__all__ = ["SEQUENCE_DATASETS", "SEQUENCE_MODELS", "check_flags", "load_sequence_dataset", "build", "evaluate"]

# dataset -> the --model values it takes
SEQUENCE_MODELS = {"digit-captions": tuple(CELLS), "python-text": CELL_TYPES}
SEQUENCE_DATASETS = tuple(SEQUENCE_MODELS)
# Flags of the image nets that no sequence model has, and the value that means "not given".
IMAGE_ONLY_FLAGS = {"reg": 0.0, "normalization": "none", "dropout_keep_ratio": 1.0, "weight_scale": "he",
                    "filters": None, "filter_size": None}
# Images of the test split shown with their greedy captions after each epoch.
SHOWN_CAPTIONS = 4
# Training strips of digit-captions: the 1,257 training digits combine into many more strips than
# the loader's default, and more strips keep the captioner from learning them by heart (test
# exact-caption accuracy of the default LSTM: 0.85 with 5,000 strips, 0.90 with 10,000, 0.92 with 20,000).
CAPTION_TRAIN_STRIPS = 20_000


def check_flags(parser, args):
    """Exit 2 (parser.error) when a flag does not apply to the sequence dataset or its model."""
    models = SEQUENCE_MODELS[args.dataset]
    if args.model not in models:
        parser.error(f"--dataset {args.dataset} trains --model {' | '.join(models)}, got --model {args.model}")
    given = [f"--{k.replace('_', '-')}" for k, unset in IMAGE_ONLY_FLAGS.items() if getattr(args, k) != unset]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        parser.error(f"{', '.join(given)} {verb} to the image nets (--model fc or cnn), not to --dataset {args.dataset}")
    if args.hidden_dims is not None and len(args.hidden_dims) != 1:
        parser.error(f"--dataset {args.dataset} has one hidden size: give --hidden-dims exactly one, "
                     f"got {args.hidden_dims}")
    if args.dataset != "python-text" and (args.seq_len is not None or args.max_chars is not None):
        parser.error("--seq-len and --max-chars apply to --dataset python-text only")


def load_sequence_dataset(args):
    """The Solver's data dict (X_*, y_* for train, val and, for captions, test) and the dataset's own dict.

    Args:
        args: the parsed flags (dataset, seed, seq_len, max_chars).

    Returns:
        (data, raw): data for the SequenceSolver; raw as data.captions / data.text return it.

    Shape:
        digit-captions: X_* (N, 256) features, y_* (N, 6) captions; python-text: X_*, y_* (N, seq_len)
    """
    if args.dataset == "digit-captions":
        raw = load_digit_captions(num_train=CAPTION_TRAIN_STRIPS, seed=args.seed)
        data = {f"{key}_{split}": raw[f"{split}_{field}"] for split in ("train", "val", "test")
                for key, field in (("X", "features"), ("y", "captions"))}
        return data, raw
    raw = load_python_text(max_chars=args.max_chars, seed=args.seed)
    data = {}
    for split in ("train", "val"):
        data[f"X_{split}"], data[f"y_{split}"] = consecutive_windows(raw[split], args.seq_len)
    return data, raw


def build(args, data, raw, say, schedule, lr_decay):
    """The model and its SequenceSolver, with samples printed by ``say`` after every epoch.

    Args:
        args: the parsed flags; data, raw: from load_sequence_dataset; say: print, or a no-op.
        schedule, lr_decay: the Solver's lr_schedule and lr_decay, as solver.cli makes them.

    Returns:
        (model, solver).

    Raises:
        ValueError, TypeError: a setting the model or the Solver refuses.
    """
    hidden = args.hidden_dims[0]
    if args.dataset == "digit-captions":
        model = CaptioningRNN(raw["word_to_idx"], input_dim=data["X_train"].shape[1], wordvec_dim=args.wordvec_dim,
                              hidden_dim=hidden, cell_type=args.model, dtype=np.float32, seed=args.seed)

        def show(solver):
            shown = data["X_test"][:SHOWN_CAPTIONS]
            said = decode_captions(model.sample(shown, max_length=data["y_test"].shape[1] - 1), raw["idx_to_word"])
            truth = decode_captions(data["y_test"][:SHOWN_CAPTIONS], raw["idx_to_word"])
            say("  samples: " + " | ".join(f"{s!r} (true {t!r})" for s, t in zip(said, truth)))
    else:
        model = CharLM(raw["idx_to_char"], wordvec_dim=args.wordvec_dim, hidden_dim=hidden, cell_type=args.model,
                       max_length=args.seq_len, dtype=np.float32, seed=args.seed)

        def show(solver):
            text = model.sample("def ", 160, temperature=0.8, seed=solver.epoch)
            say("  sample: " + text.replace("\n", "\n          "))
    solver = SequenceSolver(model, data, on_epoch=show, update_rule=args.update_rule,
                            optim_config={"learning_rate": args.learning_rate}, grad_clip=args.grad_clip,
                            lr_decay=lr_decay, lr_schedule=schedule,
                            batch_size=args.batch_size, num_epochs=args.epochs, num_train_samples=1000,
                            print_every=args.print_every, verbose=not args.quiet, seed=args.seed)
    return model, solver


def evaluate(args, model, solver, data, raw):
    """Score the trained model (the best parameters): metrics for metrics.json and the line to print.

    Args:
        args, model, solver: the run's; data, raw: from load_sequence_dataset.

    Returns:
        (metrics dict, summary line).
    """
    splits = [s for s in ("train", "val", "test") if f"X_{s}" in data]
    accuracy = {s: solver.check_accuracy(data[f"X_{s}"], data[f"y_{s}"]) for s in splits}
    metrics = {f"{s}_acc": accuracy[s] for s in splits}
    if args.dataset == "digit-captions":
        line = "exact-caption accuracy: " + "  ".join(f"{s} {accuracy[s]:.4f}" for s in splits)
        return metrics, line
    bits = model.bits_per_char(data["X_val"], data["y_val"])
    baseline = unigram_bits_per_char(raw["train"], raw["val"], len(raw["idx_to_char"]))
    metrics.update(val_bits_per_char=bits, unigram_bits_per_char=baseline,
                   sample=model.sample("def ", 300, temperature=0.8, seed=args.seed))
    line = (f"val bits/char {bits:.3f} (unigram baseline {baseline:.3f}); next-char accuracy: "
            + "  ".join(f"{s} {accuracy[s]:.4f}" for s in splits))
    return metrics, line
