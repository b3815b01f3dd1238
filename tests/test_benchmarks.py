"""Smoke test of the benchmarks: they run end to end on tiny sizes (no timing is asserted)."""

import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.bench

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_train_epoch_benchmark_runs_and_prints_its_table():
    """`python -m benchmarks.train_epoch --quick` exits 0 and prints one row with our timing."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.train_epoch", "--quick", "--repeats", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| quick |")]
    assert len(rows) == 1 and "20-16-4" in rows[0]
    assert "Target: ours / PyTorch <= 1.0x" in proc.stdout


def test_batchnorm_benchmark_runs_and_prints_both_backward_passes():
    """`python -m benchmarks.batchnorm --quick` exits 0 with the graph, alt and ratio columns filled."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.batchnorm", "--quick", "--repeats", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 8 x 16 |")]
    assert len(rows) == 1 and rows[0].count("|") == 7 and "x |" in rows[0]
