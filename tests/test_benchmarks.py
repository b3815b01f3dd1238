"""Smoke test of the benchmarks: they run end to end on tiny sizes (no timing is asserted).

The focused benchmarks train_epoch, batchnorm and conv run through their main(argv) in this
process (`python -m benchmarks.<name>` is `sys.exit(main())`), sparing a subprocess's seconds of
importing PyTorch each; the suite, the gradcheck and grading benchmarks and the refusal of bad
arguments run as the real commands."""

import importlib
import pathlib
import re
import subprocess
import sys
import time

import pytest

import layers

from data.files import project_root

pytestmark = pytest.mark.bench

ROOT = project_root()


def _main_output(module, argv, capsys):
    """The stdout of benchmarks.<module>.main(argv), run in this process, after checking it returned 0."""
    capsys.readouterr()  # only this run's output
    assert importlib.import_module(f"benchmarks.{module}").main(argv) == 0
    return capsys.readouterr().out


def test_train_epoch_benchmark_runs_and_prints_its_table(capsys):
    """`python -m benchmarks.train_epoch --quick` exits 0 and prints one row with our timing."""
    out = _main_output("train_epoch", ["--quick", "--repeats", "1"], capsys)
    rows = [line for line in out.splitlines() if line.startswith("| quick |")]
    assert len(rows) == 1 and "20-16-4" in rows[0]
    assert "Target: ours / PyTorch <= 1.0x" in out


def test_batchnorm_benchmark_runs_and_prints_both_backward_passes(capsys):
    """`python -m benchmarks.batchnorm --quick` exits 0 with the graph, alt and ratio columns filled."""
    out = _main_output("batchnorm", ["--quick", "--repeats", "2"], capsys)
    rows = [line for line in out.splitlines() if line.startswith("| 8 x 16 |")]
    assert len(rows) == 1 and rows[0].count("|") == 7 and "x |" in rows[0]


def test_conv_benchmark_runs_and_prints_both_tables(capsys):
    """`python -m benchmarks.conv --quick` exits 0 with a convolution row and a pooling row."""
    out = _main_output("conv", ["--quick", "--repeats", "1"], capsys)
    rows = [line for line in out.splitlines() if line.startswith("| quick |")]
    assert len(rows) == 2, out
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


def test_grading_benchmark_runs_and_prints_its_table_with_floors():
    """`python -m benchmarks.grading --quick` exits 0, grades the reference to full marks and prints the floors."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.grading", "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| ") and "/" in line.split("|")[3])
    score, full = row.split("|")[3].strip().split("/")
    assert len(row.split("|")) == 8 and score == full and float(full) > 0
    start, forked, trip = (float(cell) for cell in row.split("|")[4:7])
    assert start > 0 and forked > 0 and trip > 0  # worker start, forked worker, round trip: all measured
    assert "no worker" in proc.stdout and re.search(r"\(\d+ cases passed, 0 failed\)", proc.stdout)


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory):
    """One `python -m benchmarks --quick` run with --docs: (folder, completed process)."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out),
                           "--docs", str(out / "docs" / "performance.md")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return out, proc


def _headings(text):
    return [line for line in text.splitlines() if line.startswith("#")]


def test_benchmark_suite_quick_run_writes_report_and_exits_zero(quick_suite):
    """`python -m benchmarks --quick` runs every layer family and both nets, and writes report.md."""
    tmp_path, proc = quick_suite
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report.md").read_text()
    assert report == proc.stdout[: len(report)]
    for family in ("affine", "relu", "softmax loss", "batchnorm (alt backward)", "layernorm", "dropout", "conv fast",
                   "max pool fast", "spatial batchnorm"):
        assert f"| {family} | quick |" in report, family
    # Every case its family declares bench=True has its row: the table reads the declarations.
    assert {c.label for c in layers.CASES if c.bench} == {
        line.split(" | ")[0][2:] for line in report.splitlines() if line.endswith(tuple("✓✗-|")) and "| quick |" in line
        and not line.startswith(("| FullyConnectedNet", "| ThreeLayerConvNet"))}
    for section in ("## Loss and gradients of one batch", "## One training epoch", "## Peak memory"):
        assert section in report
    assert report.count("| FullyConnectedNet (20-16-4) |") == 3
    assert report.count("| ThreeLayerConvNet (2 3x3 filters, hidden 4) |") == 3
    assert "<= 1.3x" in report and "GFLOP/s" in report and "its 3 matmuls alone" in report
    # The matmul floor is timed for the two GEMM layers (with its ratio when torch is there), and only them.
    for line in report.splitlines():
        if line.startswith("| affine | quick |") or line.startswith("| conv fast | quick |"):
            assert re.search(r"\| \d+\.\d{3}( \(\d+\.\d\dx\))? \|$", line), line
        elif line.startswith("| relu | quick |"):
            assert line.endswith("| - | - |"), line


def test_benchmark_suite_writes_the_docs_page_with_machine_date_and_report(quick_suite):
    """--docs writes the performance page atomically: generated header, machine, date, flags, the report's tables."""
    from benchmarks.__main__ import DOCS_GENERATED, build_parser, flag_table, machine_summary

    out, proc = quick_suite
    assert proc.returncode == 0, proc.stderr
    folder = out / "docs"
    assert [p.name for p in folder.iterdir()] == ["performance.md"]  # no temporary file left behind
    page = (folder / "performance.md").read_text()
    report = (out / "report.md").read_text()
    lines = page.splitlines()
    assert lines[0] == "# Performance" and lines[2] == DOCS_GENERATED
    assert re.search(rf"^Generated by `python -m benchmarks --quick .*` on {time.strftime('%Y')}-\d\d-\d\d\. "
                     r"A `--quick` run", page, re.M), page[:600]
    assert f"Machine: {machine_summary()}." in lines
    assert flag_table(build_parser()) in page
    assert report.split("\n", 1)[1].strip() in page  # every table of the report, unchanged


def test_committed_performance_page_has_the_generated_layout(quick_suite):
    """docs/performance.md reads as `make bench` writes it: same header lines, same sections in the same order."""
    from benchmarks.__main__ import DOCS_GENERATED, build_parser, flag_table

    out, proc = quick_suite
    assert proc.returncode == 0, proc.stderr
    committed = (ROOT / "docs" / "performance.md").read_text()
    generated = (out / "docs" / "performance.md").read_text()
    assert committed.splitlines()[:3] == ["# Performance", "", DOCS_GENERATED]
    assert re.search(r"^Generated by `.+` on \d{4}-\d\d-\d\d\.", committed, re.M)
    assert re.search(r"^Machine: .+\.$", committed, re.M)
    assert flag_table(build_parser()) in committed, "docs/performance.md's flag table is stale: rerun make bench"
    assert _headings(committed) == _headings(generated)


def test_make_bench_writes_the_docs_page_except_on_quick_runs():
    """`make -n bench` passes --docs docs/performance.md; with ARGS=--quick it does not."""
    full = subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    quick = subprocess.run(["make", "-n", "bench", "ARGS=--quick"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert full.returncode == 0 and quick.returncode == 0, full.stderr + quick.stderr
    run = [line for line in full.stdout.splitlines() if "-m benchmarks" in line]
    quick_run = [line for line in quick.stdout.splitlines() if "-m benchmarks" in line]
    assert len(run) == 1 and "--docs docs/performance.md" in run[0]
    assert len(quick_run) == 1 and "--docs" not in quick_run[0] and "--quick" in quick_run[0]


def test_benchmark_suite_refuses_bad_arguments(tmp_path):
    """A zero repeat count is a usage error (exit 2), not a crash."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--repeats", "0", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--repeats and --threads must be >= 1" in proc.stderr


def test_bar_chart_marks_targets(tmp_path):
    """bar_chart writes a PNG for a list of (label, ratio, target)."""
    from benchmarks.__main__ import bar_chart

    bar_chart([("affine (training)", 0.9, 1.0), ("conv fast (training)", 1.6, 1.2), ("net", 1.1, None)],
              tmp_path / "ratios.png")
    assert (tmp_path / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ratios.png"]


def test_median_per_call_divides_by_the_loop_count():
    """A function that sleeps 2 ms is reported at about 2 ms per call, whatever the loop length."""
    from benchmarks.common import median_per_call

    calls = {"n": 0}

    def nap():
        calls["n"] += 1
        time.sleep(0.002)

    per_call = median_per_call({"nap": nap}, repeats=2, min_sample_s=0.01)["nap"]
    assert 0.002 <= per_call < 0.02
    # Two calibration calls, then a warm-up and two samples of the same loop length k >= 2
    # (10 ms / 2 ms naps gives k = 5, fewer when a nap oversleeps).
    loop = (calls["n"] - 2) / 3
    assert loop == int(loop) and loop >= 2, calls["n"]
    with pytest.raises(ValueError, match="min_sample_s must be a number >= 0"):
        median_per_call({"nap": nap}, repeats=1, min_sample_s=-1)


def test_quick_timing_makes_every_sample_a_single_call():
    """With QUICK_TIMING (what --quick runs use) a function runs twice to calibrate, once to warm up, then once per repeat."""
    from benchmarks.common import QUICK_TIMING, median_per_call

    calls = []
    per_call = median_per_call({"count": lambda: calls.append(1)}, repeats=3, **QUICK_TIMING)["count"]
    assert len(calls) == 2 + 1 + 3 and per_call >= 0, len(calls)


def test_search_benchmark_runs_and_prints_trials_per_minute(capsys):
    """`python -m benchmarks.search --quick` exits 0 with a row per executor, the same trials found on each."""
    out = _main_output("search", ["--quick"], capsys)
    rows = [line for line in out.splitlines() if line.startswith(("| local pool |", "| dask LocalCluster |"))]
    assert len(rows) == 3 and [row.split(" | ")[1] for row in rows[:2]] == ["1", "2"], out
    assert "on every executor: yes." in out and "trials per minute per core" in out
