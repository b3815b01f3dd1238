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


def test_conv_benchmark_runs_and_prints_both_tables():
    """`python -m benchmarks.conv --quick` exits 0 with a convolution row and a pooling row."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.conv", "--quick", "--repeats", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| quick |")]
    assert len(rows) == 2, proc.stdout
    conv_row, pool_row = rows
    assert "(2, 2, 7, 7), (3, 2, 3, 3), 1, 1" in conv_row and conv_row.count("|") == 10
    assert "(2, 2, 8, 8)" in pool_row and pool_row.count("|") == 7


def test_set_threads_changes_what_openblas_reports():
    """set_threads(1) then set_threads(2): every OpenBLAS numpy loaded reports the count just set."""
    from benchmarks.common import blas_libraries, set_threads

    if not blas_libraries():
        pytest.skip("no OpenBLAS library is loaded (another BLAS, or not Linux)")
    assert set_threads(1)["blas"] == [1] * len(blas_libraries())
    assert set_threads(2)["blas"] == [2] * len(blas_libraries())
    with pytest.raises(ValueError, match=r"set_threads: threads must be an int >= 1, got 0"):
        set_threads(0)


def test_median_interleaved_runs_each_function_once_per_round_plus_warm_up():
    """Each function runs repeats + 1 times, in turn, and gets a median time >= 0."""
    from benchmarks.common import median_interleaved

    calls = []
    medians = median_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 4
    assert set(medians) == {"a", "b"} and all(v >= 0 for v in medians.values())
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        median_interleaved({}, 0)


def test_gradcheck_benchmark_runs_and_prints_both_parts():
    """`python -m benchmarks.gradcheck --quick` exits 0 with the cost table and the detection table."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gradcheck", "--quick", "--seeds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("| full | passed |") for line in lines)
    assert any(line.startswith("| fast | passed |") for line in lines)
    assert sum(line.startswith("| 1e-05 |") or line.startswith("| 1 |") for line in lines) == 2
