"""The notebooks: stored without outputs, and each runs top to bottom on a fresh kernel."""

from __future__ import annotations

import json
import time

import nbclient
import nbformat
import pytest

from data.files import project_root

pytestmark = pytest.mark.notebooks

NOTEBOOK_DIR = project_root() / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# The budget: each notebook within 2 minutes on 2 cores (they take 3-7 s here).
NOTEBOOK_LIMIT_S = 120


def test_the_six_notebooks_are_there():
    """One notebook per topic, numbered in reading order."""
    assert [p.name for p in NOTEBOOKS] == [
        "01_backprop_graphs.ipynb", "02_fully_connected.ipynb", "03_batchnorm.ipynb",
        "04_dropout.ipynb", "05_convnets.ipynb", "06_knn_and_linear_classifiers.ipynb"]


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
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=NOTEBOOK_LIMIT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - start
    assert elapsed < NOTEBOOK_LIMIT_S, f"{path.name} took {elapsed:.0f} s (limit {NOTEBOOK_LIMIT_S} s)"
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"
