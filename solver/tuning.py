"""Hyperparameter search over the training command: random (log-uniform where it fits) or grid.

    from solver import search
    result = search({"learning_rate": (1e-4, 1e-2), "reg": [0.0, (1e-5, 1e-1)], "hidden_dims": [[64], [128, 64]]},
                    trials=20, dataset="digits", out="runs/search", fixed={"epochs": 10})
    result.best.config, result.best.val_acc

The space maps each searched setting (PARAMETERS) to a spec: a value, a range ``(low, high)``, or a
list of alternatives, each a value or a range, one picked uniformly per trial. Ranges are sampled
log-uniformly for the scales (learning_rate, reg, weight_scale) and uniformly for
dropout_keep_ratio; ``[0.0, (1e-5, 1e-1)]`` tries no regularization against a log-uniform one.
hidden_dims takes a list of choices, each a list of layer sizes. A grid search takes lists of values
and runs their cartesian product.

Trial i is drawn from ``default_rng(SeedSequence(seed).spawn(trials)[i])``, its training seed
first: the same seed gives the same trials whatever the jobs or the executor, and since spawn's
children are numbered, trial i is the same whatever the number of trials. Each trial is a real
``python -m solver`` subprocess (solver.executor.run_command) run on a concurrent.futures.Executor
(solver.executor.open_executor: a local process pool, or dask) and writes its run folder
out/trial-<i>/. The search writes out/search.json (what it is, for resume), results.csv and
results.md (best validation accuracy first, failed trials last), best.json and search.png (the
course's scatter plot of accuracy over learning rate and regularization). A re-run with the same
settings resumes: trials whose folder holds a finished run are read, not run again.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import os
import pathlib
import time

import numpy as np

from layers.validate import integer, real_number
from solver.cli_flags import DATASETS, FLOAT_RANGES, INT_MINIMA, NON_NEGATIVE, POSITIVE, UNIT, build_parser
from solver.optim import UPDATE_RULES
from solver.schedules import SCHEDULES
from solver.tuning_report import (
    SearchResult,
    Trial,
    open_search_folder,
    read_finished_run,
    sort_trials,
    trial_from_outcome,
    write_report,
    write_tables,
)

__all__ = ["search", "plan_trials", "check_space", "run_trial", "Trial", "SearchResult", "PARAMETERS"]

# The searched settings, in the order trials draw them, and how a range of each is sampled (None: no ranges).
PARAMETERS = {"learning_rate": "log", "reg": "log", "weight_scale": "log", "dropout_keep_ratio": "uniform",
              "hidden_dims": None, "normalization": None, "update_rule": None, "lr_schedule": None}
CHOICES = {"normalization": ("none", "batchnorm", "layernorm"), "update_rule": tuple(sorted(UPDATE_RULES)),
           "lr_schedule": ("none", *sorted(SCHEDULES))}
SEARCH_FORMAT = "chainrule-search-1"
# A grid larger than this is refused (a mistyped list would otherwise plan millions of trials).
MAX_GRID = 10_000
# Flags the search sets itself, so `fixed` may not.
OWN_FLAGS = {"out": "each trial writes out/trial-<i>", "seed": "each trial's seed is drawn from the search seed",
             "dataset": "give it as search's dataset", "quiet": "trials always run quiet",
             "resume": "trials start fresh (a re-run of the search resumes it)"}


def _space_label(name):
    return f"space[{name!r}]"


def _number(fn, where, rule, value):
    """A float in the range the training command gives its flag (solver.cli_flags' wording)."""
    return real_number(fn, where, value, low=0.0, low_open=rule != NON_NEGATIVE, high=1.0 if rule == UNIT else None)


def _check_value(fn, where, name, value):
    """One value of a parameter, as the training command takes it (ints become floats)."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise ValueError(f"{fn}: {where} must be one of {CHOICES[name]}, got {value!r}.")
        return value
    if name == "weight_scale" and value in ("he", "xavier"):
        return value
    return _number(fn, where, FLOAT_RANGES.get(name, POSITIVE), value)


def _check_range(fn, where, name, spec):
    if PARAMETERS[name] is None:
        raise TypeError(f"{fn}: {where} takes a list of choices, not a range; got {spec!r}.")
    if len(spec) != 2:
        raise ValueError(f"{fn}: {where} must be a range (low, high) of 2 numbers, got {spec!r}.")
    low, high = (_number(fn, f"{where} range ends", FLOAT_RANGES.get(name, POSITIVE), v) for v in spec)
    if not low < high:
        raise ValueError(f"{fn}: {where} must be a range (low, high) with low < high, got {spec!r}.")
    if PARAMETERS[name] == "log" and low <= 0:
        raise ValueError(f"{fn}: {where} is sampled log-uniformly, so its low end must be > 0, got {spec!r}; to "
                         f"try {name} 0 as well, give 0 as an alternative of its own beside a range starting above 0 "
                         f"(like {high / 1e4:g} to {high:g}).")
    return {"low": low, "high": high}


def check_space(space, fn="search", label=_space_label):
    """The space in its checked form: each parameter's list of alternatives, in PARAMETERS order.

    Args:
        space: dict parameter -> spec (see the module docstring); numpy arrays count as lists.
        fn: the function named in error messages.
        label: parameter name -> how messages name it (default "space['name']").

    Returns:
        dict parameter -> list of alternatives, each a value (float, str, or for hidden_dims a list
        of ints) or a range {"low": ..., "high": ...}; plain JSON data.

    Raises:
        TypeError, ValueError: naming the parameter, what it takes and what it got.
    """
    if not isinstance(space, dict) or not space:
        raise TypeError(f"{fn}: space must be a non-empty dict of parameter -> spec, got {space!r}.")
    unknown = [name for name in space if name not in PARAMETERS]
    if unknown:
        raise ValueError(f"{fn}: space has the unknown parameter {unknown[0]!r}; the parameters are "
                         f"{', '.join(PARAMETERS)} (other settings go in fixed).")
    checked = {}
    for name in (n for n in PARAMETERS if n in space):
        spec, where = space[name], label(name)
        spec = spec.tolist() if isinstance(spec, np.ndarray) else spec
        if name == "hidden_dims":
            if not (isinstance(spec, list) and spec and all(isinstance(c, (list, tuple)) for c in spec)):
                raise TypeError(f"{fn}: {where} must be a list of choices, each a list of layer sizes, e.g. "
                                f"[[64], [128, 64]] ([] for none), got {spec!r}.")
            checked[name] = [[integer(fn, f"{where}[{i}] entries", size, low=1) for size in choice]
                             for i, choice in enumerate(spec)]
            continue
        items = spec if isinstance(spec, list) else [spec]
        if not items:
            raise ValueError(f"{fn}: {where} is an empty list; give at least one value.")
        checked[name] = [_check_range(fn, where, name, item) if isinstance(item, tuple)
                         else _check_value(fn, where, name, item) for item in items]
    return checked


def _draw(rng, name, alternatives):
    pick = alternatives[int(rng.integers(len(alternatives)))]
    if not isinstance(pick, dict):
        return list(pick) if isinstance(pick, list) else pick
    low, high = pick["low"], pick["high"]
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if PARAMETERS[name] == "log" else rng.uniform(low, high)
    return min(max(float(value), low), high)  # exp(log(x)) may round just outside


def plan_trials(space, trials=None, *, seed=0, grid=False, fn="plan_trials"):
    """The trials a search runs: each one's configuration and training seed.

    Args:
        space: as for search (checked with check_space).
        trials: random search: how many, an int >= 1; grid: None (the whole grid) or its size.
        seed: the search seed, an int >= 0; children = SeedSequence(seed).spawn(trials).
        grid: run the cartesian product of the lists instead of drawing.
        fn: the function named in error messages.

    Returns:
        list of dicts {"index": i, "config": {parameter: value}, "seed": training seed}; trial i
        depends only on (space, seed, grid) and i.

    Raises:
        TypeError, ValueError: a bad space, trials or seed, a range in grid mode, a grid larger than MAX_GRID.
    """
    checked = check_space(space, fn)
    seed = integer(fn, "seed", seed, low=0)
    if not isinstance(grid, bool):
        raise TypeError(f"{fn}: grid must be True or False, got {grid!r}.")
    if grid:
        for name, alternatives in checked.items():
            if any(isinstance(a, dict) for a in alternatives):
                raise ValueError(f"{fn}: a grid takes lists of values; space[{name!r}] has a range ({space[name]!r}).")
        size = math.prod(len(a) for a in checked.values())
        if size > MAX_GRID:
            raise ValueError(f"{fn}: the grid has {size} points, more than MAX_GRID = {MAX_GRID}; shorten its lists.")
        if trials is not None and trials != size:
            raise ValueError(f"{fn}: the grid has {size} points; leave trials out (or give {size}), got {trials!r}.")
        trials = size
    trials = integer(fn, "trials", trials, low=1, hint=None if trials is not None else "random search draws that many")
    points = itertools.product(*checked.values()) if grid else itertools.repeat(None)
    plans = []
    for i, (child, point) in enumerate(zip(np.random.SeedSequence(seed).spawn(trials), points)):
        rng = np.random.default_rng(child)
        train_seed = int(rng.integers(2**31))  # the training command's --seed (an int >= 0)
        config = (dict(zip(checked, (list(v) if isinstance(v, list) else v for v in point))) if grid
                  else {name: _draw(rng, name, alternatives) for name, alternatives in checked.items()})
        plans.append({"index": i, "config": config, "seed": train_seed})
    return plans


def _word(value):
    return repr(value) if isinstance(value, float) else str(value)


def _flag_words(fn, fixed, space):
    """The training-command words of the fixed flags, checked by its own parser."""
    if fixed is None:
        return []
    if not isinstance(fixed, dict):
        raise TypeError(f"{fn}: fixed must be a dict of training flag -> value, e.g. {{'epochs': 5}}, got {fixed!r}.")
    parser = build_parser()
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    words = []
    for key, value in fixed.items():
        name = key.lstrip("-").replace("-", "_") if isinstance(key, str) else key
        if name in OWN_FLAGS:
            raise ValueError(f"{fn}: fixed[{key!r}] is not allowed: {OWN_FLAGS[name]}.")
        if name in space:
            raise ValueError(f"{fn}: {name} is both searched (in space) and fixed; give it in one of them.")
        if name not in actions:
            raise ValueError(f"{fn}: fixed[{key!r}] is not a flag of python -m solver; they are "
                             f"{', '.join(sorted(set(actions) - set(OWN_FLAGS)))}.")
        action = actions[name]
        flag = action.option_strings[-1]
        if action.nargs == 0:
            if not isinstance(value, bool):
                raise TypeError(f"{fn}: fixed[{key!r}] is an on/off flag: give True or False, got {value!r}.")
            words += [flag] if value else []
            continue
        if value is None:  # as if not given: the training command's default
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if action.type is pathlib.Path:  # the trials run in another folder
            values = [pathlib.Path(v).expanduser().resolve() for v in values]
        if name in FLOAT_RANGES:
            _number(fn, f"fixed[{key!r}]", FLOAT_RANGES[name], value)
        if name in INT_MINIMA:
            integer(fn, f"fixed[{key!r}]", value, low=INT_MINIMA[name])
        words += [flag, *map(_word, values)]

    def refuse(message):
        raise ValueError(f"{fn}: fixed: {message}.")

    parser.error = refuse  # its types and choices, as each trial's command will check them
    parser.parse_args(words)
    return words


def _config_words(config):
    words = []
    for name, value in config.items():
        flag = "--" + name.replace("_", "-")
        words += [flag, *map(str, value)] if name == "hidden_dims" else [flag, _word(value)]
    return words


def _reason(stderr):
    """Why the training command failed, in one line: its own message (which may span lines), else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    own = [i for i, line in enumerate(lines) if line.startswith("python -m solver: ")]
    return " ".join(lines[own[-1]:]).removeprefix("python -m solver: ") if own else (lines[-1] if lines else "")


def run_trial(args, folder, timeout=None):
    """The task of one trial, run on an executor's worker: ``python -m solver args`` in a subprocess.

    Args:
        args: the training command's words, which must include ``--out folder``.
        folder: the trial's run folder (absolute, reachable from the worker).
        timeout: seconds before the subprocess is killed, or None.

    Returns:
        {"status": "ok", "metrics": metrics.json without its histories, "seconds": wall seconds}, or
        {"status": "failed", "reason": the command's one-line reason (or its stderr's last line),
        "seconds": ...}: plain data.
    """
    from solver.executor import run_command

    if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise TypeError(f"run_trial: args must be a list of str, got {args!r}.")
    # The subprocess imports the solver package this worker imported (from the folder holding it).
    done = run_command(["-m", "solver", *args], timeout=timeout, cwd=str(pathlib.Path(__file__).resolve().parents[1]))
    if done.returncode is None:
        return {"status": "failed", "reason": f"killed after the timeout of {timeout:g} s", "seconds": done.seconds}
    metrics = read_finished_run(folder) if done.ok else None
    if metrics is None:
        reason = _reason(done.stderr) or f"exit status {done.returncode}"
        reason = reason if not done.ok else f"exit status 0 but no complete metrics.json in {folder}"
        return {"status": "failed", "reason": reason, "seconds": done.seconds}
    return {"status": "ok", "metrics": metrics, "seconds": done.seconds}


def _check_arguments(fn, dataset, out, jobs, executor, scheduler, client, resume, timeout, on_trial):
    """search's other arguments, checked before anything is created; returns (jobs, timeout)."""
    from solver.executor import DASK_MISSING, KINDS, dask_available

    if dataset not in DATASETS:
        raise ValueError(f"{fn}: dataset must be one of {DATASETS}, got {dataset!r}.")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"{fn}: out must be a folder path, got {out!r}.")
    if executor not in KINDS:
        raise ValueError(f"{fn}: executor must be one of {KINDS}, got {executor!r}.")
    if executor == "local" and (scheduler is not None or client is not None):
        raise ValueError(f"{fn}: scheduler and client are for executor='dask'; executor is 'local'.")
    if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
        raise ValueError(f"{fn}: scheduler must be an address like 'tcp://HOST:PORT', got {scheduler!r}.")
    if client is not None and not hasattr(client, "get_executor"):
        raise TypeError(f"{fn}: client must be a dask.distributed.Client, got {type(client).__name__}.")
    if executor == "dask" and client is None and not dask_available():
        raise RuntimeError(f"{fn}: {DASK_MISSING}.")
    if not isinstance(resume, bool):
        raise TypeError(f"{fn}: resume must be True or False, got {resume!r}.")
    if on_trial is not None and not callable(on_trial):
        raise TypeError(f"{fn}: on_trial must be callable or None, got {on_trial!r}.")
    timeout = None if timeout is None else real_number(fn, "timeout", timeout, low=0.0, low_open=True)
    return integer(fn, "jobs", jobs, low=1, allow_none=True), timeout


def search(space, *, out, trials=None, dataset="digits", seed=0, jobs=None, executor="local", scheduler=None,
           client=None, grid=False, fixed=None, resume=True, timeout=None, on_trial=None):
    """Run a random or grid search; each trial is ``python -m solver`` writing out/trial-<i>/.

    Args:
        space: dict parameter -> spec (module docstring; check_space).
        out: the search folder (new, empty, or holding this same search, which is resumed).
        trials: random: the number of trials, int >= 1; grid: None (the whole grid).
        dataset: one of the training command's datasets.
        seed: the search seed, int >= 0: it fixes every trial's configuration and training seed.
        jobs: trials at a time on the local pool, or workers of a dask LocalCluster (default: the cores).
        executor: "local" (process pool) or "dask" (scheduler, client, or a LocalCluster started here).
        scheduler: executor "dask": address of a running scheduler, "tcp://HOST:PORT".
        client: executor "dask": a connected dask.distributed.Client (left open).
        grid: run the cartesian product of the space's lists.
        fixed: other training flags for every trial, dict flag -> value, e.g. {"epochs": 5, "model": "fc"}.
        resume: False refuses an out folder that already holds a search.
        timeout: seconds before a trial's subprocess is killed (None: no limit).
        on_trial: called as on_trial(trial, done, total, eta_seconds) after each trial run here.

    Returns:
        SearchResult; a failed trial is recorded with its reason and never stops the search.

    Raises:
        TypeError, ValueError: a bad argument, or out holding another search (naming what differs).
        RuntimeError: executor "dask" without the cluster extra. OSError: out cannot be written.
    """
    fn = "search"
    plans = plan_trials(space, trials, seed=seed, grid=grid, fn=fn)
    checked = check_space(space, fn)
    jobs, timeout = _check_arguments(fn, dataset, out, jobs, executor, scheduler, client, resume, timeout, on_trial)
    words = ["--dataset", dataset, *_flag_words(fn, fixed, checked)]
    out = pathlib.Path(out).expanduser().resolve()
    record = {"format": SEARCH_FORMAT, "dataset": dataset, "seed": seed, "grid": grid, "space": checked,
              "fixed": words[2:]}
    open_search_folder(fn, out, record, resume)
    previous_csv = (out / "results.csv").read_text() if (out / "results.csv").is_file() else None
    done, pending = [], []
    for plan in plans:
        folder = out / f"trial-{plan['index']:03d}"
        plan["command"] = [*words, *_config_words(plan["config"]), "--seed", str(plan["seed"])]
        metrics = read_finished_run(folder)
        if metrics is not None and metrics.get("settings", {}).get("seed") == plan["seed"]:
            done.append(trial_from_outcome(plan, folder, {"status": "ok", "metrics": metrics}, resumed=True))
        else:
            pending.append((plan, folder))
    if pending:
        from solver.executor import open_executor  # here: importing solver costs no executor

        with open_executor(jobs, executor, scheduler, client) as pool:
            futures = {pool.submit(run_trial, [*plan["command"], "--out", str(folder), "--quiet"], str(folder),
                                   timeout): (plan, folder) for plan, folder in pending}
            start = time.monotonic()
            try:
                for ran, future in enumerate(concurrent.futures.as_completed(futures), 1):
                    try:
                        outcome = future.result()
                    except Exception as exc:  # the worker itself failed (e.g. a dask worker died)
                        outcome = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                    done.append(trial_from_outcome(*futures[future], outcome))
                    write_tables(out, sort_trials(done), list(checked))
                    if on_trial is not None:
                        on_trial(done[-1], ran, len(pending), (time.monotonic() - start) / ran * (len(pending) - ran))
            finally:
                for future in futures:
                    future.cancel()  # on an interrupt: those not started yet
    trials = sort_trials(done)
    files = {"search.json": out / "search.json", **write_report(out, trials, list(checked), previous_csv)}
    return SearchResult(out, trials, files)
