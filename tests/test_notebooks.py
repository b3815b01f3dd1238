"""The notebooks: stored without outputs, each runs top to bottom on a fresh kernel, and the sequence
notebooks (6 and 7) print the checks and results their text describes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import time

import nbclient
import nbformat
import pytest

from data.files import project_root

pytestmark = pytest.mark.notebooks

NOTEBOOK_DIR = project_root() / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# The budget: each notebook within 2 minutes on 2 cores (they take 5-25 s here, kernel start included,
# on a machine busy with other work).
NOTEBOOK_LIMIT_S = 120
# Kernels running at once when the notebooks execute (the machine has 2 cores).
KERNELS = 2
# Each notebook is executed once per session; the checks of its outputs read that run.
_executed: dict = {}


def test_the_eight_notebooks_are_there():
    """One notebook per topic, numbered in the course's order (assignment 1's classifiers first)."""
    assert [p.name for p in NOTEBOOKS] == [
        "00_knn_and_linear_classifiers.ipynb", "01_backprop_graphs.ipynb", "02_fully_connected.ipynb",
        "03_batchnorm.ipynb", "04_dropout.ipynb", "05_convnets.ipynb", "06_rnn_captioning.ipynb",
        "07_attention.ipynb"]


def _execute(path):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=NOTEBOOK_LIMIT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.monotonic()
    # KERNELS kernels share the 2 cores, so each gets one BLAS thread (two each made the run 50.8 s
    # instead of 39.0 s here); this thread's own event loop, closed when the run ends.
    asyncio.run(client.async_execute(env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}))
    return notebook, time.monotonic() - start


def executed(path):
    """The notebook at path run top to bottom on a fresh python3 kernel, and its run time in s.

    The first call runs every notebook, KERNELS at a time (each kernel is its own process; a
    notebook is mostly one core's work), and keeps the runs for the session."""
    if not _executed:
        with concurrent.futures.ThreadPoolExecutor(max_workers=KERNELS) as pool:
            runs = {p: pool.submit(_execute, p) for p in NOTEBOOKS}
            _executed.update({p: run.result() for p, run in runs.items()})
    return _executed[path]


def printed(notebook):
    """Everything the notebook's code cells printed or showed as text, in order."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "text/plain" in output.get("data", {}):
                texts.append(output["data"]["text/plain"])
    return "\n".join(texts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    """No outputs, no execution counts, and every cell has an id (nbformat 4.5)."""
    notebook = json.loads(path.read_text())
    assert (notebook["nbformat"], notebook["nbformat_minor"]) >= (4, 5)
    for number, cell in enumerate(notebook["cells"], start=1):
        assert cell.get("id"), f"{path.name} cell {number} has no id"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name} cell {number} was saved with outputs"
            assert cell["execution_count"] is None, f"{path.name} cell {number} was saved with an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    """Every cell executes without error on a fresh python3 kernel, within the time limit, and plots render."""
    notebook, elapsed = executed(path)
    assert elapsed < NOTEBOOK_LIMIT_S, f"{path.name} took {elapsed:.0f} s (limit {NOTEBOOK_LIMIT_S} s)"
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"


def test_rnn_notebook_checks_bptt_and_shows_the_lstm_keeping_its_gradient():
    """Notebook 6: both recurrent layers and the captioner pass their checks, the LSTM's gradient at t = 0
    (forget bias 1) is far larger than the tanh RNN's, and the printed test accuracy is a fraction."""
    text = printed(executed(NOTEBOOK_DIR / "06_rnn_captioning.ipynb")[0])
    for target in ("rnn_forward / rnn_backward", "lstm_forward / lstm_backward", "CaptioningRNN.loss"):
        assert f"{target}: passed" in text, target
    norms = {name: float(value) for name, value in re.findall(r"^(tanh RNN|LSTM, forget bias 1) .*at t = 0: (\S+)",
                                                             text, flags=re.MULTILINE)}
    assert set(norms) == {"tanh RNN", "LSTM, forget bias 1"}, text
    assert norms["LSTM, forget bias 1"] > 1e3 * norms["tanh RNN"], norms
    accuracy = re.search(r"exact-caption accuracy on 1000 test strips: ([0-9.]+)", text)
    assert accuracy and 0.5 < float(accuracy.group(1)) <= 1, text[-2000:]


def test_attention_notebook_checks_the_layers_and_beats_the_unigram_baseline():
    """Notebook 7: attention, multi-head attention and the block pass their checks, the character model's
    validation bits per character are below the unigram baseline, and its sample continues "def "."""
    text = printed(executed(NOTEBOOK_DIR / "07_attention.ipynb")[0])
    for target in ("scaled_dot_product_attention_forward / scaled_dot_product_attention_backward",
                   "multihead_attention_forward / multihead_attention_backward",
                   "transformer_block_forward / transformer_block_backward"):
        assert f"{target}: passed" in text, target
    bits = re.search(r"validation bits per character: ([0-9.]+) \(unigram baseline ([0-9.]+)\)", text)
    assert bits and float(bits.group(1)) < float(bits.group(2)) - 0.5, text[-2000:]
    assert re.search(r"^def ", text, flags=re.MULTILINE), "no sample continuing 'def '"
