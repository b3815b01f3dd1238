"""python -m benchmarks: the whole performance suite in one run (what `make bench` runs).

1. every layer family, forward and forward+backward, course and training sizes, against PyTorch
   CPU (benchmarks.layers), with the matrix-product layers' GFLOP/s as a fraction of numpy's own
   large-matmul speed measured in the same run, and the time of their three matrix products
   alone (forward, and backward's two, as single numpy matmuls): the floor for any
   implementation on numpy's BLAS, next to PyTorch's whole forward+backward;
2. the FullyConnectedNet's loss-and-gradients step against the same net in PyTorch;
3. one training epoch of the default FullyConnectedNet (`make train`) and of ThreeLayerConvNet,
   in samples per second, against an equivalent PyTorch loop;
4. peak memory (tracemalloc) of one training step of each net.

It writes a Markdown report and a bar chart (PNG) of the ours / PyTorch ratios, prints the
report, and exits 0 whatever the figures: only an error exits non-zero. The targets of the
performance issue are printed next to each figure. With --docs PATH (what `make bench` passes) it
also writes the report as the documentation page docs/performance.md, headed by the machine and
the date.

    python -m benchmarks [--quick] [--repeats N] [--threads T] [--default-allocator] [--out DIR] [--docs PATH]
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import re
import sys
import time
import tracemalloc

import numpy as np

from benchmarks.common import QUICK_TIMING, configure, load_torch, median_per_call, torch_mlp
from benchmarks.train_epoch import torch_epoch
from benchmarks.layers import CASES, QUICK_CASES, matmul_peak_gflops, time_case
from data.files import atomic_write, write_atomically

GEMM_PEAK_FRACTION_TARGET = 0.70
NET_STEP_TARGET = 1.0
PEAK_MATMUL_N = 2048


def _ratio(ours, theirs):
    return ours / theirs if ours and theirs else None


def _fmt_ms(seconds):
    return "-" if seconds is None else f"{1e3 * seconds:.3f}"


def _fmt_ratio(ratio, target):
    if ratio is None:
        return "-"
    mark = "" if target is None else (" ✓" if ratio <= target else " ✗")
    return f"{ratio:.2f}x{mark}"


def layer_rows(cases, repeats, torch, peak, timing=None):
    """Markdown rows of the layer table and the list of (label, ratio) for the chart (timing: as time_case's)."""
    rows, chart = [], []
    for case in cases:
        t = time_case(case, repeats, torch, timing)
        fb_ratio = _ratio(t["ours_fb"], t["torch_fb"])
        gflops = ""
        if case.flops:
            achieved = 3 * case.flops / t["ours_fb"] / 1e9  # backward does two products of the forward's size
            gflops = f"{achieved:.1f} ({achieved / peak:.0%} of peak)"
        target = "-" if case.target is None else f"<= {case.target:g}x"
        floor = "-"
        if t["products"] is not None:
            floor_ratio = _ratio(t["products"], t["torch_fb"])
            floor = _fmt_ms(t["products"]) + ("" if floor_ratio is None else f" ({floor_ratio:.2f}x)")
        rows.append(f"| {case.family} | {case.size} | {case.shapes} | {_fmt_ms(t['ours_fwd'])} | "
                    f"{_fmt_ms(t['torch_fwd'])} | {_fmt_ms(t['ours_fb'])} | {_fmt_ms(t['torch_fb'])} | "
                    f"{_fmt_ratio(fb_ratio, case.target)} | {target} | {gflops or '-'} | {floor} |")
        if fb_ratio is not None:
            chart.append((f"{case.family} ({case.size})", fb_ratio, case.target))
    return rows, chart


def _fc_spec(quick):
    # (input_dim, hidden_dims, num_classes, batch_size, samples): the `make train` net, or a tiny one.
    return (20, [16], 4, 8, 40) if quick else (64, [128, 64], 10, 50, 1257)


def _cnn_spec(quick):
    # (input_dim, num_filters, filter_size, hidden_dim, batch_size, samples): the ThreeLayerConvNet defaults.
    return ((1, 6, 6), 2, 3, 4, 4, 8) if quick else ((3, 32, 32), 32, 7, 100, 50, 500)


def _torch_cnn(torch, input_dim, num_filters, filter_size, hidden_dim):
    C, H, W = input_dim
    return torch.nn.Sequential(
        torch.nn.Conv2d(C, num_filters, filter_size, padding=(filter_size - 1) // 2), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(num_filters * (H // 2) * (W // 2), hidden_dim), torch.nn.ReLU(),
        torch.nn.Linear(hidden_dim, 10))


def _nets(quick):
    from solver import FullyConnectedNet, ThreeLayerConvNet

    d, hidden, classes, batch, n = _fc_spec(quick)
    fc = FullyConnectedNet(hidden, input_dim=d, num_classes=classes, weight_scale="he", seed=0)
    dims, filters, size, hidden_dim, cbatch, cn = _cnn_spec(quick)
    cnn = ThreeLayerConvNet(input_dim=dims, num_filters=filters, filter_size=size, hidden_dim=hidden_dim,
                            weight_scale="he", seed=0)
    return {"FullyConnectedNet": (fc, (d,), classes, batch, n, f"{d}-{'-'.join(map(str, hidden))}-{classes}"),
            "ThreeLayerConvNet": (cnn, dims, 10, cbatch, cn, f"{filters} {size}x{size} filters, hidden {hidden_dim}")}


def _torch_net(torch, name, quick):
    if name == "FullyConnectedNet":
        d, hidden, classes, _, _ = _fc_spec(quick)
        return torch_mlp(torch, d, hidden, classes)
    dims, filters, size, hidden_dim, _, _ = _cnn_spec(quick)
    return _torch_cnn(torch, dims, filters, size, hidden_dim)


def net_rows(quick, repeats, torch):
    """Rows for the loss-and-gradients step, the training epoch and the peak memory of a step."""
    from solver import Solver

    step_rows, epoch_rows, memory_rows, chart = [], [], [], []
    for name, (model, in_shape, classes, batch, n, label) in _nets(quick).items():
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, *in_shape), dtype=np.float32)
        y = rng.integers(0, classes, n)
        xb, yb = X[:batch], y[:batch]
        fns = {"ours": lambda: model.loss(xb, yb)}
        net = None
        if torch is not None:
            net = _torch_net(torch, name, quick)
            xb_t, yb_t = torch.from_numpy(xb), torch.from_numpy(yb)

            def torch_step():
                net.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(net(xb_t), yb_t).backward()

            fns["torch"] = torch_step
        t = median_per_call(fns, repeats, **(QUICK_TIMING if quick else {}))
        ratio = _ratio(t["ours"], t.get("torch"))
        target = NET_STEP_TARGET if name == "FullyConnectedNet" else None
        step_rows.append(f"| {name} ({label}) | {batch} | {_fmt_ms(t['ours'])} | {_fmt_ms(t.get('torch'))} | "
                         f"{_fmt_ratio(ratio, target)} | {'<= 1x' if target else '-'} |")
        if ratio is not None:
            chart.append((f"{name} step", ratio, target))

        data = {"X_train": X, "y_train": y, "X_val": X[:1], "y_val": y[:1]}
        ours_epoch = []
        theirs_epoch = []
        for r in range(repeats + 1):
            solver = Solver(model, data, update_rule="adam", batch_size=batch, num_epochs=1, seed=r, verbose=False,
                            num_train_samples=1, num_val_samples=1)
            start = time.perf_counter()
            solver.train()
            if r:
                ours_epoch.append(time.perf_counter() - start)
            if net is not None:
                parts = (torch, net, torch.optim.Adam(net.parameters(), lr=1e-3))
                order = torch.randperm(n)
                start = time.perf_counter()
                torch_epoch(parts, torch.from_numpy(X), torch.from_numpy(y), order, batch)
                if r:
                    theirs_epoch.append(time.perf_counter() - start)
        ours_s = float(np.median(ours_epoch))
        theirs_s = float(np.median(theirs_epoch)) if theirs_epoch else None
        epoch_rows.append(f"| {name} ({label}) | {n} | {n / ours_s:,.0f} | "
                          f"{'-' if theirs_s is None else f'{n / theirs_s:,.0f}'} | "
                          f"{_fmt_ratio(_ratio(ours_s, theirs_s), None)} |")

        tracemalloc.start()
        model.loss(xb, yb)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        memory_rows.append(f"| {name} ({label}) | {batch} | {peak / 2**20:.1f} MiB |")
    return step_rows, epoch_rows, memory_rows, chart


def bar_chart(chart, path):
    """A horizontal bar chart of ours / PyTorch ratios with the targets marked, written to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(chart) + 1.2))
    labels = [c[0] for c in chart]
    ratios = [c[1] for c in chart]
    colors = ["tab:green" if c[2] is None or c[1] <= c[2] else "tab:red" for c in chart]
    ax.barh(range(len(chart)), ratios, color=colors)
    for i, (_, _, target) in enumerate(chart):
        if target is not None:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="black")
    ax.axvline(1.0, color="gray", linestyle=":")
    ax.set_yticks(range(len(chart)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("ours / PyTorch CPU time (fwd+bwd); black tick: target; green met, red missed")
    fig.tight_layout()
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)


# The first lines of docs/performance.md: the page is rewritten whole by every `make bench`.
DOCS_GENERATED = ("<!-- Generated by `make bench` (python -m benchmarks --docs docs/performance.md). Do not edit: "
                  "change benchmarks/__main__.py and rerun. -->")
DOCS_INTRO = """\
`make bench` runs the whole suite: every layer family, forward and forward+backward, at a course-sized
and a training-sized shape against `torch.nn.functional` on the CPU with the same thread count (when
torch is installed: `.venv/bin/pip install torch==2.13.0`; it is never a dependency); the
matrix-product layers' GFLOP/s against numpy's own 2048^3 float32 matmul measured in the same run,
and the time of their three matrix products alone, the floor for any implementation on numpy's BLAS;
the FullyConnectedNet's loss-and-gradients step; one training epoch of the `make train` net and of
ThreeLayerConvNet against an equivalent PyTorch loop; the peak memory (tracemalloc) of a training
step. Each figure is the median of interleaved runs after a warm-up, each run looping a call for at
least 20 ms. A ratio is our time over PyTorch's: ✓ meets the target, ✗ misses it. Besides this
page the run writes `runs/bench/report.md` (the same tables) and `runs/bench/ratios.png` (the ratios
as bars, the targets marked), and it exits 0 whatever the figures.

Why each missed target is missed, measured against its floor, and the focused benchmarks
(`python -m benchmarks.<name>`): [performance-notes.md](performance-notes.md)."""


def machine_summary():
    """One line naming the machine: CPU model, cores, OS, Python, numpy and its BLAS.

    Returns:
        str.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # the build information is optional; the page still names numpy
        blas = "BLAS unknown"
    return (f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}; numpy {np.__version__} ({blas})")


def flag_table(parser):
    """The Markdown table of the parser's flags: flag, default, meaning.

    Args:
        parser: an argparse.ArgumentParser.

    Returns:
        str, one row per option (help aside).
    """
    rows = ["| `python -m benchmarks` flag | default | meaning |", "| --- | --- | --- |"]
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flag = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs != 0:
            flag = ", ".join(f"`{o} {action.metavar or action.dest.upper()}`" for o in action.option_strings)
        default = "off" if action.nargs == 0 else ("all cores" if action.dest == "threads" else f"`{action.default}`")
        if action.default is None and action.nargs != 0:
            default = "none"
        meaning = re.sub(r"\s*\(default[^)]*\)$", "", action.help)  # the default has its own column
        rows.append(f"| {flag} | {default} | {meaning} |")
    return "\n".join(rows)


def docs_page(report, *, machine, date, command, flags, quick=False):
    """The documentation page docs/performance.md: a generated header, then the report.

    Args:
        report: the Markdown report main() writes to report.md (its first line, the title, is replaced).
        machine: the line naming the machine (machine_summary()).
        date: the run's date, YYYY-MM-DD.
        command: the command that produced the figures.
        flags: the flag table (flag_table(parser)).
        quick: a --quick run, whose figures measure nothing; the page says so.

    Returns:
        str, ending with a newline.
    """
    body = report.split("\n", 1)[1].strip("\n")
    note = " A `--quick` run: tiny sizes and one repeat of one call, so the figures measure nothing." if quick else ""
    return "\n".join([
        "# Performance", "", DOCS_GENERATED, "",
        f"Generated by `{command}` on {date}.{note}", "", f"Machine: {machine}.", "",
        DOCS_INTRO, "", flags, "", body, ""])


def build_parser():
    """The argument parser of ``python -m benchmarks``.

    Returns:
        An argparse.ArgumentParser.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite runs, measures nothing")
    parser.add_argument("--repeats", type=int, default=15, metavar="N",
                        help="timed runs per figure, whose median is reported (default 15)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), metavar="T",
                        help="threads for numpy's BLAS and PyTorch (default: all cores)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc malloc's thresholds alone instead of calling solver.tune_allocator() "
                             "as training does; both sides share the process's allocator")
    parser.add_argument("--out", default="runs/bench", metavar="DIR",
                        help="folder for report.md and ratios.png (default runs/bench)")
    parser.add_argument("--docs", type=pathlib.Path, default=None, metavar="PATH",
                        help="also write the report as a documentation page there, with the machine and the date "
                             "(make bench: docs/performance.md)")
    return parser


def main(argv=None) -> int:
    """Run the suite; returns 0 (figures never fail it), 2 on bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error(f"--repeats and --threads must be >= 1, got {args.repeats} and {args.threads}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch = load_torch()
    threads = configure(args.threads, torch, tune_memory=not args.default_allocator)
    repeats = 1 if args.quick else args.repeats
    timing = QUICK_TIMING if args.quick else None  # one call per figure: a quick run measures nothing
    peak = matmul_peak_gflops(64 if args.quick else PEAK_MATMUL_N, repeats, timing)
    rows, chart = layer_rows(QUICK_CASES if args.quick else CASES, repeats, torch, peak, timing)
    step_rows, epoch_rows, memory_rows, net_chart = net_rows(args.quick, repeats, torch)
    chart += net_chart

    torch_note = f"PyTorch {torch.__version__}" if torch is not None else "PyTorch not installed (pip install torch)"
    report = "\n".join([
        "# chainrule benchmarks",
        "",
        f"float32; {torch_note}; threads: numpy BLAS {threads['blas'] or 'unknown'}, PyTorch {threads['torch'] or '-'}; allocator {threads['allocator']}; "
        f"medians of {repeats} interleaved runs after a warm-up. numpy's float32 "
        f"{64 if args.quick else PEAK_MATMUL_N}^3 matmul: {peak:.1f} GFLOP/s (the peak below).",
        "",
        "## Layers (milliseconds)",
        "",
        "| layer | size | shapes | ours fwd | PyTorch fwd | ours fwd+bwd | PyTorch fwd+bwd | ratio fwd+bwd | target "
        f"| GFLOP/s fwd+bwd (target >= {GEMM_PEAK_FRACTION_TARGET:.0%} at training size) "
        "| its 3 matmuls alone (/ PyTorch fwd+bwd) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "## Loss and gradients of one batch (milliseconds)",
        "",
        "| net | batch | ours | PyTorch | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
        *step_rows,
        "",
        "## One training epoch (samples per second, Adam)",
        "",
        "| net | samples | ours | PyTorch | time ratio |",
        "| --- | --- | --- | --- | --- |",
        *epoch_rows,
        "",
        "## Peak memory of one loss-and-gradients step (tracemalloc)",
        "",
        "| net | batch | peak |",
        "| --- | --- | --- |",
        *memory_rows,
        "",
    ])
    report_path = out / "report.md"
    write_atomically(report_path, report, parents=True)
    if chart:
        bar_chart(chart, out / "ratios.png")
    print(report)
    print(f"wrote {report_path}" + (f" and {out / 'ratios.png'}" if chart else " (no chart without PyTorch)"))
    if args.docs is not None:
        command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
        write_atomically(args.docs, docs_page(report, machine=machine_summary(), date=datetime.date.today().isoformat(),
                                              command=command, flags=flag_table(parser), quick=args.quick), parents=True)
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
