"""python -m solver on the sequence datasets: real subprocesses, real data, real run folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from solver import load_model
from solver.charlm import CharLM
from solver.cli import main

pytestmark = [pytest.mark.cli, pytest.mark.rnn]

# Measured: one epoch (20,000 strips) of the default LSTM (H 256) captions 0.85 of the test
# strips exactly; the untrained model captions none.
CAPTION_ACCURACY_AFTER_ONE_EPOCH = 0.7


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "solver", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def test_digit_captions_train_print_samples_and_score_exact_captions(tmp_path):
    proc = run("--dataset", "digit-captions", "--epochs", 1, "--out", tmp_path, "--print-every", 1000)
    assert proc.stdout.count("samples: ") == 2  # before training and after the epoch
    assert "(true 'nine six seven')" in proc.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_acc"] >= CAPTION_ACCURACY_AFTER_ONE_EPOCH
    assert metrics["settings"]["model"] == "lstm" and metrics["settings"]["grad_clip"] == 5.0
    assert f"exact-caption accuracy: train {metrics['train_acc']:.4f}" in proc.stdout
    assert (tmp_path / "history.png").stat().st_size > 0


def test_python_text_transformer_beats_the_unigram_baseline_and_saves_a_sampler(tmp_path):
    proc = run("--dataset", "python-text", "--model", "transformer", "--max-chars", 60000, "--epochs", 1,
               "--hidden-dims", 128, "--out", tmp_path, "--quiet")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val_bits_per_char"] < metrics["unigram_bits_per_char"]
    assert "test_acc" not in metrics and metrics["sample"].startswith("def ")
    assert f"val bits/char {metrics['val_bits_per_char']:.3f}" in proc.stdout
    model = load_model(tmp_path / "model.npz")
    assert isinstance(model, CharLM) and model.cell_type == "transformer"
    assert model.sample("import ", 10, seed=0).startswith("import ")


@pytest.mark.parametrize("flags, message", [
    (["--model", "lstm"], "--model lstm is a sequence model: it trains on --dataset digit-captions or python-text"),
    (["--dataset", "digit-captions", "--model", "transformer"],
     "--dataset digit-captions trains --model rnn | lstm | gru, got --model transformer"),
    (["--dataset", "python-text", "--reg", "0.1"], "--reg applies to the image nets"),
    (["--dataset", "python-text", "--hidden-dims", "8", "8"], "give --hidden-dims exactly one"),
    (["--seq-len", "8"], "apply to the sequence datasets only"),
    (["--dataset", "digit-captions", "--max-chars", "5000"], "apply to --dataset python-text only"),
    (["--dataset", "python-text", "--grad-clip", "0"], "--grad-clip must be a finite number > 0"),
])
def test_flags_that_do_not_apply_are_refused_before_anything_is_made(flags, message, tmp_path, capsys):
    """In process (the command's main), as argparse exits: status 2, the reason on stderr, no run folder."""
    with pytest.raises(SystemExit) as stopped:
        main([*flags, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and message in err, err
    assert not (tmp_path / "run").exists()
