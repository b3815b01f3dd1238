"""Tests for solver.tuning and `python -m solver search`: the space, its seeding, and real searches.

The space, seeding and refusals are checked in this process (no trial runs). The searches run real
`python -m solver` trials on the spiral set (2 epochs, one small hidden layer) through a real
process pool and, when the cluster extra is installed, a real dask.distributed LocalCluster; those
tests are marked cli, so `make test-quick` leaves them out.
"""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from solver import search
from solver.search_cli import main as search_main
from solver.search_cli import parse_alternatives
from solver.tuning import PARAMETERS, check_space, plan_trials, run_trial
from solver.tuning_report import (
    Trial,
    open_search_folder,
    plot_search,
    read_finished_run,
    sort_trials,
    trial_from_outcome,
    write_report,
    write_tables,
)

# Trials that differ only in where they run compute the same thing in the same order (one BLAS
# thread each, same seeds): their accuracies must agree exactly.
SAME_RUN_ACC_TOL = 0.0
# Sampling checks over SAMPLES draws: the mean of a uniform draw (in log10 for log-uniform ranges)
# lies within this many of its standard errors of the middle of the range.
SAMPLES = 4000
MEAN_Z_TOL = 4.0
SPACE = {"learning_rate": (1e-3, 1e-1), "reg": [0.0, (1e-5, 1e-2)], "hidden_dims": [[8], [16]]}
FIXED = {"epochs": 2, "batch_size": 100}
SEED = 7


def test_same_seed_gives_the_same_trials_and_another_seed_other_ones():
    """plan_trials is a function of (space, seed): twice the same, and different under another seed."""
    first, again = plan_trials(SPACE, 5, seed=SEED), plan_trials(SPACE, 5, seed=SEED)
    assert first == again
    other = plan_trials(SPACE, 5, seed=SEED + 1)
    assert [p["config"] for p in other] != [p["config"] for p in first]
    assert len({p["seed"] for p in first}) == 5, "every trial trains with a seed of its own"


def test_trial_i_is_the_same_whatever_the_number_of_trials():
    """SeedSequence.spawn is prefix-stable, so trial i of a 3-trial search is trial i of a 10-trial one."""
    children = np.random.SeedSequence(SEED).spawn(10)
    assert [c.spawn_key for c in np.random.SeedSequence(SEED).spawn(3)] == [c.spawn_key for c in children[:3]]
    assert plan_trials(SPACE, 3, seed=SEED) == plan_trials(SPACE, 10, seed=SEED)[:3]


def test_ranges_are_log_uniform_for_scales_and_uniform_for_the_keep_ratio():
    """Draws stay inside their range; log10 of a scale and the keep ratio itself average to the middle."""
    plans = plan_trials({"learning_rate": (1e-4, 1e-2), "dropout_keep_ratio": (0.5, 1.0), "reg": [0.0, (1e-5, 1e-1)]},
                        SAMPLES, seed=0)
    lr = np.array([p["config"]["learning_rate"] for p in plans])
    keep = np.array([p["config"]["dropout_keep_ratio"] for p in plans])
    reg = np.array([p["config"]["reg"] for p in plans])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-2 and keep.min() >= 0.5 and keep.max() <= 1.0
    for name, values, low, high in (("log10 learning_rate", np.log10(lr), -4, -2), ("dropout_keep_ratio", keep, 0.5, 1),
                                    ("log10 reg (nonzero)", np.log10(reg[reg > 0]), -5, -1)):
        standard_error = (high - low) / math.sqrt(12 * len(values))
        z = abs(values.mean() - (low + high) / 2) / standard_error
        assert z < MEAN_Z_TOL, f"{name}: mean {values.mean():.4f}, middle {(low + high) / 2}, z = {z:.1f}"
    zero_share = np.mean(reg == 0)
    assert abs(zero_share - 0.5) < MEAN_Z_TOL * math.sqrt(0.25 / SAMPLES), f"reg 0 in {zero_share:.3f} of trials"


def test_grid_runs_the_cartesian_product_in_parameter_order():
    """grid=True plans every combination once, later parameters varying fastest, numpy arrays as lists."""
    plans = plan_trials({"normalization": ["none", "batchnorm"], "learning_rate": np.array([1e-3, 1e-2])}, grid=True)
    assert [p["config"] for p in plans] == [
        {"learning_rate": lr, "normalization": norm} for lr in (1e-3, 1e-2) for norm in ("none", "batchnorm")]
    assert [p["index"] for p in plans] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"plan_trials: the grid has 4 points; leave trials out \(or give 4\), got 3"):
        plan_trials({"normalization": ["none", "batchnorm"], "learning_rate": [1e-3, 1e-2]}, 3, grid=True)
    with pytest.raises(ValueError, match=r"plan_trials: a grid takes lists of values; space\['learning_rate'\] has a range"):
        plan_trials({"learning_rate": (1e-3, 1e-2)}, grid=True)


@pytest.mark.parametrize("space, error, message", [
    ([1e-3], TypeError, "space must be a non-empty dict of parameter -> spec, got [0.001]"),
    ({"lr": (1e-3, 1e-2)}, ValueError, "space has the unknown parameter 'lr'; the parameters are learning_rate, reg"),
    ({"hidden_dims": [64, 128]}, TypeError, "space['hidden_dims'] must be a list of choices, each a list of layer sizes"),
    ({"hidden_dims": [[64, 0]]}, ValueError, "space['hidden_dims'][0] entries must be an int >= 1, got 0"),
    ({"learning_rate": -1e-3}, ValueError, "space['learning_rate'] must be a finite number in (0.0, inf), got -0.001"),
    ({"reg": (0, 1e-1)}, ValueError, "space['reg'] is sampled log-uniformly, so its low end must be > 0, got (0, 0.1)"),
    ({"learning_rate": (1e-2, 1e-3)}, ValueError, "space['learning_rate'] must be a range (low, high) with low < high"),
    ({"learning_rate": (1e-3, 1e-2, 1e-1)}, ValueError, "must be a range (low, high) of 2 numbers"),
    ({"dropout_keep_ratio": 1.5}, ValueError, "space['dropout_keep_ratio'] must be a finite number in (0.0, 1.0]"),
    ({"normalization": ["none", "groupnorm"]}, ValueError, "space['normalization'] must be one of ('none', 'batchnorm'"),
    ({"update_rule": ("adam", "sgd")}, TypeError, "space['update_rule'] takes a list of choices, not a range"),
    ({"weight_scale": []}, ValueError, "space['weight_scale'] is an empty list; give at least one value"),
])
def test_bad_spaces_name_the_parameter_what_it_takes_and_what_it_got(space, error, message):
    """Each malformed space is refused before anything runs, the message naming the function and the parameter."""
    with pytest.raises(error, match="plan_trials: ") as caught:
        plan_trials(space, 2)
    assert message in str(caught.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"dataset": "imagenet"}, "search: dataset must be one of ('digits', 'spiral'"),
    ({"fixed": {"epoch": 2}}, "search: fixed['epoch'] is not a flag of python -m solver; they are"),
    ({"fixed": {"seed": 2}}, "search: fixed['seed'] is not allowed: each trial's seed is drawn from the search seed"),
    ({"fixed": {"learning_rate": 1e-3}}, "search: learning_rate is both searched (in space) and fixed"),
    ({"fixed": {"epochs": 0}}, "search: fixed['epochs'] must be an int >= 1, got 0"),
    ({"fixed": {"model": "mlp"}}, "search: fixed: argument --model: invalid choice: 'mlp'"),
    ({"fixed": {"checkpoints": "yes"}}, "search: fixed['checkpoints'] is an on/off flag: give True or False"),
    ({"executor": "slurm"}, "search: executor must be one of ('local', 'dask'), got 'slurm'"),
    ({"scheduler": "tcp://127.0.0.1:8786"}, "search: scheduler and client are for executor='dask'"),
    ({"executor": "dask", "scheduler": "127.0.0.1:8786"}, "search: scheduler must be an address like 'tcp://HOST:PORT'"),
    ({"executor": "dask", "client": "tcp://127.0.0.1:8786"}, "search: client must be a dask.distributed.Client, got str"),
    ({"jobs": 0}, "search: jobs must be an int >= 1 or None, got 0"),
    ({"trials": None}, "search: trials must be an int >= 1, got None; random search draws that many"),
    ({"timeout": 0}, "search: timeout must be a finite number in (0.0, inf), got 0.0"),
])
def test_search_refuses_bad_arguments_before_creating_anything(tmp_path, kwargs, message):
    """A wrong argument of search raises, naming it, and out is not created."""
    arguments = {"trials": 2, "out": tmp_path / "out", **kwargs}
    with pytest.raises((TypeError, ValueError)) as caught:
        search({"learning_rate": (1e-3, 1e-1)}, **arguments)
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_check_space_gives_plain_json_data_in_parameter_order():
    """Ranges become {"low", "high"}, numbers floats, single values one-item lists; the order is PARAMETERS'."""
    checked = check_space({"update_rule": "adam", "hidden_dims": [(64,)], "reg": [0, (1e-5, 1e-1)]})
    assert checked == {"reg": [0.0, {"low": 1e-5, "high": 1e-1}], "hidden_dims": [[64]], "update_rule": ["adam"]}
    assert list(checked) == ["reg", "hidden_dims", "update_rule"] and json.loads(json.dumps(checked)) == checked


def _made_trials(tmp_path):
    """Three Trials as run_trial's outcomes describe them: two that trained (a tie at 0.5) and one that failed."""
    def outcome(val, lr, reg):
        return {"status": "ok", "seconds": 2.0, "metrics": {"val_acc": val, "train_acc": val + 0.1, "train_seconds": 0.5,
                                                            "test_acc": val, "settings": {"learning_rate": lr, "reg": reg}}}

    plans = [{"index": i, "config": {"learning_rate": lr, "reg": reg}, "seed": 10 + i, "command": ["--dataset", "spiral"]}
             for i, (lr, reg) in enumerate([(1e-3, 0.0), (1e-2, 1e-4), (1e-1, 1e-2)])]
    return [trial_from_outcome(plans[0], tmp_path / "trial-000", outcome(0.5, 1e-3, 0.0)),
            trial_from_outcome(plans[1], tmp_path / "trial-001", {"status": "failed", "reason": "the loss became nan"}),
            trial_from_outcome(plans[2], tmp_path / "trial-002", outcome(0.5, 1e-1, 1e-2))]


@pytest.mark.slow
def test_report_sorts_by_val_acc_failed_last_and_writes_every_file(tmp_path):
    """sort_trials puts ties in trial order and failures last; write_report writes both tables, best.json and a PNG."""
    trials = sort_trials(_made_trials(tmp_path))
    assert all(isinstance(t, Trial) for t in trials) and [t.index for t in trials] == [0, 2, 1]
    assert trials[2].reason == "the loss became nan" and trials[2].val_acc is None
    files = write_report(tmp_path, trials, ["learning_rate", "reg"])
    assert sorted(files) == ["best.json", "results.csv", "results.md", "search.png"]
    rows = list(csv.reader(files["results.csv"].read_text().splitlines()))
    assert rows[0] == ["trial", "seed", "learning_rate", "reg", "train acc", "val acc", "seconds", "status", "reason"]
    assert rows[3] == ["1", "11", "0.01", "0.0001", "", "", "", "failed", "the loss became nan"]
    assert "| 1 | 11 | 0.01 | 0.0001 |  |  |  | failed: the loss became nan |" in files["results.md"].read_text()
    assert json.loads(files["best.json"].read_text())["command"] == "python -m solver --dataset spiral"
    assert files["search.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_tables(tmp_path, trials[2:], ["learning_rate"])["results.md"].read_text().count("| failed") == 1
    assert plot_search([], tmp_path / "empty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_folder_counts_as_finished_only_with_metrics_and_model(tmp_path):
    """read_finished_run: None until metrics.json (with val_acc) and model.npz are both there; histories dropped."""
    (tmp_path / "metrics.json").write_text(json.dumps({"val_acc": 0.5, "loss_history": [1.0], "settings": {}}))
    assert read_finished_run(tmp_path) is None, "model.npz is written last: without it the run did not finish"
    (tmp_path / "model.npz").write_bytes(b"")
    assert read_finished_run(tmp_path) == {"val_acc": 0.5, "settings": {}}
    (tmp_path / "metrics.json").write_text("{\"val_acc\": 0.5")
    assert read_finished_run(tmp_path) is None and read_finished_run(tmp_path / "missing") is None


def test_open_search_folder_creates_or_matches_and_names_each_difference(tmp_path):
    """A new folder gets search.json; the same record again passes; another one is refused, each difference named."""
    record = {"format": "f", "seed": 0, "space": {"reg": [0.0], "learning_rate": [1e-3]}, "fixed": []}
    open_search_folder("search", tmp_path / "s", record, resume=True)
    assert json.loads((tmp_path / "s" / "search.json").read_text()) == record
    open_search_folder("search", tmp_path / "s", record, resume=True)
    with pytest.raises(ValueError) as caught:
        open_search_folder("search", tmp_path / "s", {**record, "seed": 1, "space": {"reg": [0.0]}}, resume=True)
    assert "seed: 0 there, 1 now; space['learning_rate']: [0.001] there, 'absent' now" in str(caught.value)


def test_flag_words_parse_into_values_ranges_and_layer_choices():
    """Spaces or commas separate alternatives; LOW:HIGH is a range; --hidden-dims joins sizes with commas."""
    assert parse_alternatives("reg", ["0", "1e-5:1e-1"]) == [0.0, (1e-5, 1e-1)]
    assert parse_alternatives("learning_rate", ["1e-3,3e-3", "1e-2"]) == [1e-3, 3e-3, 1e-2]
    assert parse_alternatives("weight_scale", ["he", "1e-3:1e-1"]) == ["he", (1e-3, 1e-1)]
    assert parse_alternatives("hidden_dims", ["64", "128,64", "none"]) == [[64], [128, 64], []]
    assert parse_alternatives("update_rule", ["adam,sgd_momentum"]) == ["adam", "sgd_momentum"]
    assert set(PARAMETERS) == {"learning_rate", "reg", "weight_scale", "dropout_keep_ratio", "hidden_dims",
                               "normalization", "update_rule", "lr_schedule"}


@pytest.mark.parametrize("argv, message", [
    (["--trials", "2"], "the following arguments are required: --out"),
    (["--out", "OUT", "--learning-rate", "1e-3:1e-1"], "give --trials N (random search) or --grid"),
    (["--out", "OUT", "--trials", "2"], "give at least one searched flag (--learning-rate, --reg"),
    (["--out", "OUT", "--trials", "0", "--reg", "1e-3"], "--trials must be an int >= 1, got 0"),
    (["--out", "OUT", "--trials", "2", "--reg", "0:1"], "--reg is sampled log-uniformly, so its low end must be > 0"),
    (["--out", "OUT", "--trials", "2", "--learning-rate", "fast"], "--learning-rate: expected numbers or LOW:HIGH"),
    (["--out", "OUT", "--trials", "2", "--hidden-dims", "64;32"], "--hidden-dims: each choice is layer sizes joined"),
    (["--out", "OUT", "--grid", "--reg", "1e-5:1e-1"], "--grid takes lists of values, but --reg has a range"),
    (["--out", "OUT", "--trials", "2", "--reg", "1e-3", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (["--out", "OUT", "--trials", "2", "--reg", "1e-3", "--resume", "c.npz"], "--resume is not a flag of a search"),
    (["--out", "OUT", "--trials", "2", "--reg", "1e-3", "--epochs", "0"], "--epochs must be an int >= 1, got 0"),
])
def test_cli_usage_errors_exit_2_with_a_one_line_reason(tmp_path, capsys, argv, message):
    """`python -m solver search` refuses bad flags with exit 2: a usage line, then one line naming the flag."""
    argv = [str(tmp_path / "out") if word == "OUT" else word for word in argv]
    with pytest.raises(SystemExit) as stopped:
        search_main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert stopped.value.code == 2 and "Traceback" not in err
    assert len(lines) == 2 and lines[0].startswith("usage: python -m solver search"), err
    assert message in lines[1], err
    assert not (tmp_path / "out").exists()


def _local(out, trials):
    return search(SPACE, trials=trials, dataset="spiral", out=out, seed=SEED, jobs=2, fixed=FIXED)


@pytest.fixture(scope="module")
def local_search(tmp_path_factory):
    """A 3-trial search on the local process pool: (out folder, SearchResult)."""
    out = tmp_path_factory.mktemp("search") / "local"
    return out, _local(out, 3)


@pytest.mark.cli
def test_search_writes_run_folders_a_sorted_table_the_best_and_a_png(local_search):
    """Each trial has its run folder; results.csv is sorted by val acc; best.json is its top row; search.png is a PNG."""
    out, result = local_search
    assert [t.status for t in result.trials] == ["ok"] * 3, [t.reason for t in result.trials]
    for trial in result.trials:
        assert {p.name for p in trial.folder.iterdir()} >= {"metrics.json", "model.npz", "history.png"}
        settings = json.loads((trial.folder / "metrics.json").read_text())["settings"]
        assert settings["seed"] == trial.seed and settings["learning_rate"] == trial.config["learning_rate"]
        assert settings["epochs"] == FIXED["epochs"] and settings["hidden_dims"] == trial.config["hidden_dims"]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["trial", "seed", "learning_rate", "reg", "hidden_dims", "train acc", "val acc", "seconds",
                             "status", "reason"]
    accuracies = [float(row["val acc"]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert [int(r["trial"]) for r in rows] == [t.index for t in result.trials]
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == int(rows[0]["trial"]) == result.best.index and best["val_acc"] == accuracies[0]
    assert best["command"].startswith("python -m solver --dataset spiral --epochs 2 --batch-size 100 --learning-rate")
    assert (out / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results.md").read_text().count("| ok |") == 3
    assert sorted(p.name for p in out.iterdir()) == ["best.json", "results.csv", "results.md", "search.json",
                                                     "search.png", *(f"trial-{i:03d}" for i in range(3))]


@pytest.mark.cli
def test_a_rerun_resumes_finished_trials_without_running_them_again(local_search):
    """The same search again reads every trial from its folder, leaving the folder untouched; fewer trials read a prefix."""
    out, first = local_search
    stamps = {t.index: (t.folder / "metrics.json").stat().st_mtime_ns for t in first.trials}
    again = _local(out, 3)
    assert all(t.resumed for t in again.trials)
    assert {t.index: (t.folder / "metrics.json").stat().st_mtime_ns for t in again.trials} == stamps
    assert [(t.index, t.config, t.seed, t.val_acc) for t in again.trials] == [
        (t.index, t.config, t.seed, t.val_acc) for t in first.trials]
    fewer = _local(out, 2)
    assert sorted(t.index for t in fewer.trials) == [0, 1] and all(t.resumed for t in fewer.trials)
    _local(out, 3)  # the tables list all three again


@pytest.mark.cli
def test_a_rerun_with_other_settings_is_refused_naming_what_differs(local_search, tmp_path):
    """Another seed, space or fixed flag into the same folder raises before running, naming each difference."""
    out, _ = local_search
    with pytest.raises(ValueError, match=r"search: .*search.json was written by another search.* seed: 7 there, 8 now"):
        search(SPACE, trials=3, dataset="spiral", out=out, seed=8, fixed=FIXED)
    with pytest.raises(ValueError) as caught:
        search({**SPACE, "hidden_dims": [[8]]}, trials=3, dataset="spiral", out=out, seed=SEED, fixed={"epochs": 3})
    assert "fixed: ['--epochs', '2', '--batch-size', '100'] there, ['--epochs', '3'] now" in str(caught.value)
    assert "space['hidden_dims']: [[8], [16]] there, [[8]] now" in str(caught.value)
    with pytest.raises(ValueError, match="search: .* already holds a search; pass resume=True"):
        search(SPACE, trials=3, dataset="spiral", out=out, seed=SEED, fixed=FIXED, resume=False)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and holds no search.json; give a new or empty folder"):
        search(SPACE, trials=1, out=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.cli
def test_dask_local_cluster_runs_the_same_trials_as_the_local_pool(local_search, tmp_path):
    """Through a real LocalCluster (2 workers on 127.0.0.1) the same seed gives the same configurations,
    training seeds and accuracies as the local process pool."""
    pytest.importorskip("distributed", reason="the dask executor needs the cluster extra: pip install 'chainrule[cluster]'")
    from distributed import Client, LocalCluster

    local = {t.index: t for t in local_search[1].trials}
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        result = search(SPACE, trials=3, dataset="spiral", out=tmp_path / "dask", seed=SEED, fixed=FIXED,
                        executor="dask", client=client)
        assert client.status == "running", "search must leave a client it was given open"
    assert len(result.trials) == 3
    for trial in result.trials:
        twin = local[trial.index]
        assert (trial.status, trial.config, trial.seed) == (twin.status, twin.config, twin.seed), trial.index
        for name in ("train_acc", "val_acc"):
            got, expected = getattr(trial, name), getattr(twin, name)
            assert abs(got - expected) <= SAME_RUN_ACC_TOL, f"trial {trial.index} {name}: dask {got}, local {expected}"


@pytest.mark.cli
def test_cli_search_records_a_failing_trial_with_its_reason_and_goes_on(tmp_path, capsys):
    """A grid whose second learning rate diverges: exit 0, a progress line per trial, the failure last with its reason.

    The search command's main runs in this process (the next test runs `python -m solver search` itself)."""
    status = search_main(["--grid", "--jobs", "2", "--out", str(tmp_path / "s"), "--dataset", "spiral",
                          "--learning-rate", "1e-2,1e30", "--hidden-dims", "8", "--epochs", "1"])
    out = capsys.readouterr().out
    assert status == 0, out
    progress = [line for line in out.splitlines() if line.startswith("[")]
    assert len(progress) == 2 and all("(ETA " in line for line in progress), out
    with open(tmp_path / "s" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["trial"], r["status"]) for r in rows] == [("0", "ok"), ("1", "failed")]
    assert "the loss became nan" in rows[1]["reason"] and rows[1]["val acc"] == ""
    assert "best: trial 0" in out and "rerun it: python -m solver --dataset spiral" in out


@pytest.mark.cli
def test_trials_that_cannot_run_fail_with_their_reason_and_exit_1(tmp_path):
    """A missing dataset fails every trial with the download command; a timeout names itself; the CLI exits 1."""
    proc = subprocess.run([sys.executable, "-m", "solver", "search", "--trials", "1", "--jobs", "1", "--out",
                           str(tmp_path / "s"), "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
                           "--learning-rate", "1e-3"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "every trial failed" in proc.stderr.splitlines()[-1] and "Traceback" not in proc.stderr
    assert "not found" in proc.stdout and "Download it with: python -m data.download mnist" in proc.stdout
    assert json.loads((tmp_path / "s" / "best.json").read_text())["trial"] is None
    result = search({"learning_rate": 1e-3}, trials=1, dataset="spiral", out=tmp_path / "t", jobs=1, timeout=0.05)
    assert result.best is None and result.failed[0].reason == "killed after the timeout of 0.05 s"


@pytest.mark.cli
def test_run_trial_reports_the_training_commands_own_reason(tmp_path):
    """run_trial returns plain data: a refused flag comes back failed with the command's one-line reason."""
    outcome = run_trial(["--epochs", "0", "--out", str(tmp_path / "t"), "--quiet"], str(tmp_path / "t"))
    assert outcome["status"] == "failed" and outcome["reason"] == "error: --epochs must be an int >= 1, got 0", outcome
    with pytest.raises(TypeError, match="run_trial: args must be a list of str"):
        run_trial("--epochs 0", str(tmp_path / "t"))
