"""The folder of a hyperparameter search (solver.tuning): search.json, the trials, their tables, the plot.

search.json records what the search is, and a re-run must match it (open_search_folder); a trial's
run folder is read back on resume (read_finished_run). The report, each file written atomically (a
reader never sees half a file): results.csv and results.md (one row per trial, best validation accuracy first, failed trials last),
best.json (the best trial and the command that reruns it) and search.png (the course's scatter of
accuracy over log10 learning rate and log10 regularization, one panel for training accuracy and
one for validation accuracy).
"""

from __future__ import annotations

import csv
import io
import json
import math
import pathlib
import shlex
from dataclasses import dataclass, field

from data.files import atomic_write, write_atomically

__all__ = ["Trial", "SearchResult", "trial_from_outcome", "sort_trials", "write_tables", "write_report",
           "plot_search", "open_search_folder", "read_finished_run"]

# Where the plot puts regularization 0 (no log10): this far below the lowest positive one, on its own row.
ZERO_REG_OFFSET = 1.0


@dataclass
class Trial:
    """One finished trial: its configuration, seed, folder, command and scores (None when it failed)."""

    index: int
    config: dict
    seed: int
    folder: pathlib.Path
    command: list = field(default_factory=list, repr=False)  # the training command's words (no --out)
    status: str = "ok"
    train_acc: float | None = None
    val_acc: float | None = None
    seconds: float | None = None  # training seconds, as metrics.json records them
    wall_seconds: float | None = None  # the whole subprocess, start-up included (None when resumed)
    reason: str = ""
    resumed: bool = False  # read from a run folder an earlier run of the search completed
    metrics: dict = field(default_factory=dict, repr=False)  # metrics.json without its histories

    @property
    def ok(self) -> bool:
        """Whether the trial trained and wrote its run folder."""
        return self.status == "ok"


@dataclass
class SearchResult:
    """What a search did: trials sorted by validation accuracy (failed last), the files it wrote."""

    out: pathlib.Path
    trials: list
    files: dict

    @property
    def best(self):
        """The trial with the highest validation accuracy, or None if every trial failed."""
        return self.trials[0] if self.trials and self.trials[0].ok else None

    @property
    def failed(self):
        """The trials that failed, each with its reason."""
        return [t for t in self.trials if not t.ok]

    def __repr__(self):
        best = f"best val acc {self.best.val_acc:.4f} (trial {self.best.index})" if self.best else "no trial succeeded"
        return f"SearchResult({len(self.trials)} trials, {len(self.failed)} failed, {best}, out={str(self.out)!r})"


def trial_from_outcome(plan, folder, outcome, resumed=False):
    """The Trial of a plan (solver.tuning.plan_trials, with its "command") and its task's outcome.

    Args:
        plan: dict with index, config, seed and command.
        folder: the trial's run folder.
        outcome: what solver.tuning.run_trial returned ({"status", "metrics" or "reason"}).
        resumed: the run folder was finished before this run of the search.

    Returns:
        Trial.
    """
    trial = Trial(plan["index"], plan["config"], plan["seed"], pathlib.Path(folder), list(plan.get("command", [])),
                  resumed=resumed, wall_seconds=outcome.get("seconds"))
    if outcome["status"] != "ok":
        trial.status, trial.reason = "failed", outcome.get("reason") or "no reason given"
        return trial
    metrics = outcome["metrics"]
    trial.metrics, trial.train_acc, trial.val_acc = metrics, metrics.get("train_acc"), metrics["val_acc"]
    trial.seconds = metrics.get("train_seconds")
    return trial


def sort_trials(trials):
    """Best validation accuracy first, failed trials last, ties by trial number.

    Args:
        trials: iterable of Trial.

    Returns:
        a new sorted list.
    """
    return sorted(trials, key=lambda t: (not t.ok, -(t.val_acc or 0.0), t.index))


def _cell(value, exact):
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):
        return repr(value) if exact else f"{value:.3g}"
    return "" if value is None else str(value)


def _rows(trials, names, exact):
    for t in trials:
        scores = [t.train_acc, t.val_acc]
        cells = [repr(s) if exact and s is not None else "" if s is None else f"{s:.4f}" for s in scores]
        seconds = "" if t.seconds is None else repr(t.seconds) if exact else f"{t.seconds:.2f}"
        yield [str(t.index), str(t.seed), *(_cell(t.config.get(n), exact) for n in names), *cells, seconds]


def write_tables(out, trials, names):
    """Write results.csv (exact values, a reason column) and results.md (rounded) into out.

    Args:
        out: the search folder.
        trials: the Trials, in the order of the rows (sort_trials).
        names: the searched parameters, one column each.

    Returns:
        dict file name -> path written.
    """
    out = pathlib.Path(out)
    header = ["trial", "seed", *names, "train acc", "val acc", "seconds", "status"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*header, "reason"])
    for t, row in zip(trials, _rows(trials, names, exact=True)):
        writer.writerow([*row, t.status, t.reason])
    failed = sum(not t.ok for t in trials)
    lines = [f"# Search results: {len(trials)} trials, {failed} failed", "",
             "Best validation accuracy first; seconds of training. Each trial's run folder is trial-<trial>/.", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for t, row in zip(trials, _rows(trials, names, exact=False)):
        status = "ok" if t.ok else f"failed: {t.reason}".replace("|", "\\|")
        lines.append("| " + " | ".join([*row, status]) + " |")
    return {"results.csv": write_atomically(out / "results.csv", text.getvalue()),
            "results.md": write_atomically(out / "results.md", "\n".join(lines) + "\n")}


def _best_record(best):
    if best is None:
        return {"trial": None, "reason": "every trial failed; see results.md"}
    return {"trial": best.index, "seed": best.seed, "config": best.config, "train_acc": best.train_acc,
            "val_acc": best.val_acc, "test_acc": best.metrics.get("test_acc"), "folder": str(best.folder),
            "model": str(best.folder / "model.npz"), "command": shlex.join(["python", "-m", "solver", *best.command])}


def write_report(out, trials, names, previous_csv=None):
    """Write every report file: the tables, best.json and search.png.

    Args:
        out: the search folder.
        trials: the sorted Trials (sort_trials).
        names: the searched parameters.
        previous_csv: results.csv's text before this run of the search; when the new table is the
            same and search.png exists, the plot (a function of the table's trials) is not redrawn.

    Returns:
        dict file name -> path of each report file.
    """
    out = pathlib.Path(out)
    files = write_tables(out, trials, names)
    best = trials[0] if trials and trials[0].ok else None
    files["best.json"] = write_atomically(out / "best.json", json.dumps(_best_record(best), indent=1) + "\n")
    png = out / "search.png"
    unchanged = previous_csv is not None and png.is_file() and files["results.csv"].read_text() == previous_csv
    files["search.png"] = png if unchanged else plot_search(trials, png)
    return files


def _lr_and_reg(trial):
    """The trial's learning rate and regularization: the run's own settings, else its configuration."""
    settings = trial.metrics.get("settings", {})
    lr, reg = settings.get("learning_rate", trial.config.get("learning_rate")), settings.get("reg", trial.config.get("reg"))
    if not isinstance(lr, (int, float)) or lr <= 0:
        return None
    return lr, (reg if isinstance(reg, (int, float)) else 0.0)


def plot_search(trials, path):
    """The course's picture of a search: accuracy as colour over log10 learning rate and regularization.

    Two panels, training accuracy and validation accuracy, each with its colourbar; failed
    trials are grey crosses; regularization 0 sits on its own row below the others.

    Args:
        trials: Trials (those with no known learning rate are left out).
        path: destination .png file, written atomically.

    Returns:
        path, as a pathlib.Path.
    """
    # matplotlib is imported here, as in solver.plotting: importing solver costs no matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [(t, *where) for t in trials if (where := _lr_and_reg(t)) is not None]
    positive = [math.log10(reg) for _, _, reg in points if reg > 0]
    zero_row = (math.floor(min(positive)) if positive else 0.0) - ZERO_REG_OFFSET

    def xy(group):
        return ([math.log10(lr) for _, lr, _ in group], [math.log10(reg) if reg > 0 else zero_row for _, _, reg in group])

    ok, failed = [p for p in points if p[0].ok], [p for p in points if not p[0].ok]
    fig = Figure(figsize=(11, 4.5))  # placed by hand: constrained layout would double the drawing time
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.2)
    for ax, key, title in zip(fig.subplots(1, 2, sharey=True), ("train_acc", "val_acc"),
                              ("training accuracy", "validation accuracy")):
        if ok:
            x, y = xy(ok)
            dots = ax.scatter(x, y, s=100, c=[getattr(t, key) for t, _, _ in ok], cmap="coolwarm")
            fig.colorbar(dots, ax=ax, label=title)
        if failed:
            ax.scatter(*xy(failed), s=60, marker="x", color="0.5", label="failed")
            ax.legend(loc="best")
        ax.set(title=title if ok else f"{title}: no trial succeeded", xlabel="log10 learning rate",
               ylabel="log10 regularization strength")
        if any(reg == 0 for _, _, reg in points):
            ticks = list(range(math.ceil(zero_row + ZERO_REG_OFFSET), math.ceil(max(positive, default=zero_row)) + 1))
            ax.set_yticks([zero_row, *ticks], labels=["reg 0", *map(str, ticks)])
    path = pathlib.Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return path


def open_search_folder(fn, out, record, resume):
    """Create the search folder with its search.json, or check that the search it holds is this one.

    Args:
        fn: the function named in error messages.
        out: the folder, a pathlib.Path.
        record: what search.json records (plain JSON data: dataset, seed, grid, space, fixed).
        resume: False refuses a folder that already holds a search.

    Returns:
        None.

    Raises:
        ValueError: out holds another search (naming each difference), a damaged search.json,
            or other files and no search.json.
    """
    path = out / "search.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{fn}: {path} is damaged ({exc}); give another out folder.") from None
        if not resume:
            raise ValueError(f"{fn}: {out} already holds a search; pass resume=True to continue it, or another out.")

        def flat(rec):  # one entry per searched parameter, so the message names the one that changed
            space = rec.get("space") if isinstance(rec.get("space"), dict) else {}
            return {**{k: v for k, v in rec.items() if k != "space"}, **{f"space[{k!r}]": v for k, v in space.items()}}

        then, now = flat(saved), flat(record)
        differences = [f"{key}: {then.get(key, 'absent')!r} there, {now.get(key, 'absent')!r} now"
                       for key in dict.fromkeys([*now, *then]) if then.get(key) != now.get(key)]
        if differences:
            raise ValueError(f"{fn}: {path} was written by another search; use the same settings to resume it, or "
                             f"another out folder. Differences: {'; '.join(differences)}.")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{fn}: out {out} exists and holds no search.json; give a new or empty folder.")
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(record, indent=1) + "\n")


def read_finished_run(folder):
    """metrics.json of a run folder the training command completed, without its histories.

    Args:
        folder: a trial's run folder.

    Returns:
        dict, or None when the folder holds no finished run: metrics.json missing, damaged or
        without val_acc, or model.npz (written last) missing.
    """
    try:
        metrics = json.loads((pathlib.Path(folder) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    complete = (isinstance(metrics, dict) and isinstance(metrics.get("val_acc"), (int, float))
                and (pathlib.Path(folder) / "model.npz").is_file())
    return {k: v for k, v in metrics.items() if not k.endswith("_history")} if complete else None
