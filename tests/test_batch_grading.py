"""Tests of batch grading (grading.batch and grading.batch_files; the metadata parser: test_gradescope_export.py).

The gradings run the real grader in real subprocesses, from a copy of the project whose graded
tests are the optimizer tests only (SMALL_GRADER_FILES): the same grader, sandbox and results,
at about 4 s per submission instead of 7 to 18. Argument checks and CLI refusals are fast and unmarked.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import shutil
import time
import zipfile

import pytest
from grading_support import ROOT, copy_project, fill_with_reference, run_grading
from hostile_attacks import append, code
from hostile_payloads import FLOOD
from test_gradescope_export import EXPORT_METADATA

from grading import manifest
from grading.__main__ import main
from grading.batch import MARKER_NAME, BatchError, _Progress, default_submission_timeout, grade_all
from grading.batch_files import find_submissions

SMALL_GRADER_FILES = ("test_optim.py", "conftest.py", "grading_checks.py")
OPTIM = "test_optim.py::"
OPTIM_TESTS = [OPTIM + name for name in ("test_sgd_momentum_first_two_steps", "test_rmsprop_first_step",
                                          "test_adam_first_step_has_size_learning_rate",
                                          "test_update_rules_match_reference_over_five_steps")]
FULL_MARKS = 6.0
TIMEOUT_S = 10.0  # per test: the crash is seen at once, no submission here hangs in a test
LIMIT_S = 120.0  # whole submission, where a test does not check the limit itself
HANG_LIMIT_S = 7.0  # long enough for the grader to start and reach the hanging import
HANG_COMM = "cr-batch-hang"  # /proc/PID/comm of the hanging worker
# Not SIGKILL to itself: a PID namespace's first process ignores that.
CRASH = "import os as _hostile_os\n_hostile_os._exit(70)"
HANG = f'import ctypes\nctypes.CDLL(None).prctl(15, b"{HANG_COMM}", 0, 0, 0)\nwhile True:\n    pass'
DISTRIBUTED_MISSING = "the dask executor needs the optional cluster extra: pip install 'chainrule[cluster]'"


@pytest.fixture(scope="module")
def small_grader(tmp_path_factory) -> pathlib.Path:
    """A copy of the grader whose graded tests are the optimizer tests only."""
    root = copy_project(tmp_path_factory.mktemp("grader"))
    for path in (root / manifest.GRADED_TESTS_DIR).iterdir():
        if path.name not in SMALL_GRADER_FILES:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> pathlib.Path:
    """The untouched student release."""
    out = tmp_path_factory.mktemp("release") / "student"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    return out


def _reference_copy(release: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    shutil.copytree(release, dest)
    return fill_with_reference(dest)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory, release) -> pathlib.Path:
    """ada: the reference solution; bob: the release; cy.zip: the reference zipped; eve: floods and
    crashes at import."""
    folder = tmp_path_factory.mktemp("submissions") / "class"
    folder.mkdir()
    _reference_copy(release, folder / "ada")
    shutil.copytree(release, folder / "bob")
    with zipfile.ZipFile(folder / "cy.zip", "w") as archive:
        for rel in manifest.STUDENT_FILES:
            archive.write(ROOT / rel, f"project/{rel}")
    append(_reference_copy(release, folder / "eve"), "solver/optim.py", code(FLOOD, "cr-batch-flood"), CRASH)
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "notes.txt").write_text("not a submission\n")
    (folder / "linked").symlink_to(folder / "ada")
    return folder


def _batch(submissions, out, root, **options):
    stream = io.StringIO()
    options = {"jobs": 2, "timeout": TIMEOUT_S, "submission_timeout": LIMIT_S, **options}
    summary = grade_all(submissions, out, root=root, stream=stream, **options)
    return summary, stream.getvalue()


@pytest.fixture(scope="module")
def local_batch(tmp_path_factory, submissions, small_grader):
    """The class graded once with two jobs on the local process pool."""
    return _batch(submissions, tmp_path_factory.mktemp("local") / "results", small_grader)


def _scores(out: pathlib.Path, student: str) -> dict[str, float]:
    return {t["name"]: t["score"] for t in json.loads((out / student / "results.json").read_text())["tests"]}


def _gradebook(out: pathlib.Path) -> list[dict]:
    with open(out / "gradebook.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.grading
def test_batch_gives_each_submission_its_own_score(local_batch):
    """The reference and its zip get full marks, the release and the crashing flood none; nothing errs."""
    summary, _ = local_batch
    assert summary.graded == ["ada", "bob", "cy", "eve"] and not summary.errors and not summary.skipped
    for student, expected in {"ada": FULL_MARKS, "bob": 0.0, "cy": FULL_MARKS, "eve": 0.0}.items():
        scores = _scores(summary.out, student)
        assert list(scores) == OPTIM_TESTS, f"{student}: tests {list(scores)}"
        assert sum(scores.values()) == expected, f"{student}: got {scores}, expected a total of {expected}"
        assert (summary.out / student / "grade.log").is_file(), f"{student}: no grade.log"


@pytest.mark.grading
def test_gradebook_has_a_sorted_row_per_student_with_points_per_test(local_batch):
    """gradebook.csv: student, total, max, one column per test, status, seconds, reason; sorted rows."""
    summary, _ = local_batch
    rows = _gradebook(summary.out)
    assert list(rows[0]) == ["student", "total", "max", *OPTIM_TESTS, "status", "seconds", "reason"]
    assert [r["student"] for r in rows] == ["ada", "bob", "cy", "eve"]
    ada, eve = rows[0], rows[3]
    assert (ada["total"], ada["max"], ada["status"], ada[OPTIM_TESTS[-1]]) == ("6", "6", "graded", "3"), ada
    assert (eve["total"], eve[OPTIM_TESTS[0]], eve["reason"]) == ("0", "0", ""), eve
    assert all(float(r["seconds"]) > 0 for r in rows), [r["seconds"] for r in rows]


@pytest.mark.grading
def test_batch_notes_links_and_strays_and_reports_progress(local_batch):
    """A linked entry is refused and a stray file ignored, with notes; hidden entries pass silently;
    off a terminal, each finished submission is one line."""
    summary, progress = local_batch
    assert summary.notes == ["refused linked: a symbolic link (links are not followed).",
                             "ignored notes.txt: neither a folder nor a .zip."]
    assert "DS_Store" not in progress
    finished = [line for line in progress.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in finished] == ["[1/4", "[2/4", "[3/4", "[4/4"], progress
    assert {line.split("] ", 1)[1] for line in finished} == {"ada: 6/6", "bob: 0/6", "cy: 6/6", "eve: 0/6"}, progress


@pytest.mark.grading
def test_rerun_skips_the_graded_and_regrade_grades_again(local_batch, submissions, small_grader, tmp_path):
    """A re-run into the same folder grades nothing and keeps the gradebook; regrade grades again."""
    summary, _ = local_batch
    out = tmp_path / "results"
    shutil.copytree(summary.out, out)
    again, _ = _batch(submissions, out, small_grader)
    assert again.skipped == ["ada", "bob", "cy", "eve"] and not again.graded, again
    assert _gradebook(out) == _gradebook(summary.out)
    only_ada = tmp_path / "only-ada"
    shutil.copytree(submissions / "ada", only_ada / "ada")
    results = out / "ada" / "results.json"
    stamp = results.stat().st_mtime_ns
    regraded, _ = _batch(only_ada, out, small_grader, regrade=True)
    assert regraded.graded == ["ada"] and not regraded.skipped, regraded
    assert results.stat().st_mtime_ns > stamp, "regrade did not write results.json again"
    assert [r["student"] for r in _gradebook(out)] == ["ada"] and (out / "eve" / "results.json").is_file()


@pytest.mark.grading
def test_gradescope_export_names_students_by_sid_and_notes_a_missing_folder(release, small_grader, tmp_path):
    """An export's students are named by sid (a group by both, joined by '+'), with name and email
    columns; a listed submission without its folder is an error row, and the others are graded."""
    export = tmp_path / "assignment_77_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text(EXPORT_METADATA)
    _reference_copy(release, export / "submission_1001")
    (export / "README.txt").write_text("a stray file")
    summary, _ = _batch(export, tmp_path / "results", small_grader)
    assert summary.graded == ["0612"], summary
    assert summary.errors == {"0613+614": "submission_1002/ is not a folder of the export",
                              "0615": "submission_1003/ is not a folder of the export"}
    assert summary.notes == ["ignored README.txt: not a submission listed in submission_metadata.yml."]
    rows = {row["student"]: row for row in _gradebook(summary.out)}
    assert list(rows) == ["0612", "0613+614", "0615"]
    assert list(rows["0612"])[:5] == ["student", "name", "email", "total", "max"]
    assert (rows["0612"]["name"], rows["0612"]["email"], rows["0612"]["total"]) == ("Ada Quill", "ada@example.edu", "6")
    assert (rows["0613+614"]["name"], rows["0613+614"]["email"], rows["0613+614"]["status"]) == \
        ("Bo O'Neil; Cy Dee", "bo@example.edu", "error")


@pytest.mark.grading
def test_dask_cluster_grades_the_class_as_the_local_pool_does(local_batch, submissions, small_grader, tmp_path):
    """The same class through a real dask LocalCluster (two workers on 127.0.0.1) gets the same score per test."""
    pytest.importorskip("distributed", reason=DISTRIBUTED_MISSING)
    from distributed import Client, LocalCluster

    local, _ = local_batch
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        summary, _ = _batch(submissions, tmp_path / "results", small_grader, executor="dask", client=client,
                            jobs=None)
    assert summary.executor == "dask" and summary.graded == local.graded, summary
    for student in local.graded:
        assert _scores(summary.out, student) == _scores(local.out, student), student
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in _gradebook(summary.out)] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in _gradebook(local.out)]


def _hanging_workers() -> list[int]:
    """Live processes named HANG_COMM (zombies waiting to be reaped aside)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:][:1]
        if name == HANG_COMM and state != "Z":
            found.append(int(entry))
    return found


@pytest.mark.grading
def test_a_hanging_submission_is_stopped_at_its_limit_without_stopping_the_others(release, small_grader, tmp_path):
    """A submission spinning in an import is killed at the whole-submission limit, its sandboxed
    worker too, and is an error row with the reason, as is a corrupt zip; the other one is graded meanwhile."""
    folder = tmp_path / "class"
    _reference_copy(release, folder / "ada")
    append(_reference_copy(release, folder / "hal"), "solver/optim.py", HANG)
    (folder / "zed.zip").write_bytes(b"PK\x03\x04 not really a zip")
    begin = time.monotonic()
    summary, _ = _batch(folder, tmp_path / "results", small_grader, timeout=60.0, submission_timeout=HANG_LIMIT_S)
    assert summary.graded == ["ada"], summary
    assert summary.errors["hal"] == f"stopped after {HANG_LIMIT_S:g} s, the whole-submission time limit"
    assert "not a readable zip file" in summary.errors["zed"] and "\n" not in summary.errors["zed"], summary.errors
    assert time.monotonic() - begin < HANG_LIMIT_S + 30, "the batch waited for more than the hanging grading's limit"
    deadline = time.monotonic() + 5
    while _hanging_workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _hanging_workers(), "the hanging submission's worker outlived its grading"
    row = _gradebook(summary.out)[1]
    assert (row["student"], row["status"], row["total"]) == ("hal", "error", ""), row
    assert row["reason"].startswith("stopped after"), row


@pytest.mark.slow
def test_a_command_killed_at_its_limit_leaves_no_temporary_files():
    """run_command (the batch's subprocess) gives the command a private TMPDIR, removed even when it is killed."""
    from solver.executor import run_command

    done = run_command(["-c", "import tempfile, time; print(tempfile.mkdtemp(), flush=True); time.sleep(60)"],
                       timeout=1.5)
    assert done.returncode is None and done.stdout.strip(), done
    assert not os.path.exists(done.stdout.strip()), f"{done.stdout.strip()} outlived the command"


@pytest.mark.slow
def test_default_submission_timeout_counts_the_graded_cases(small_grader):
    """The whole-submission limit is the startup allowance plus 1.5 timeouts per graded case (6 here)."""
    assert default_submission_timeout(2.0, small_grader) == pytest.approx(120.0 + 1.5 * 2.0 * 6)


def test_progress_bar_on_a_terminal_shows_done_and_eta():
    """On a terminal the progress is one redrawn line with the count and an ETA."""
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = _Progress(2, stream, True)
    bar.finished("ada", "6/6")
    assert "ETA --:--" in stream.getvalue() and "] 1/2 submissions ETA 00:" in stream.getvalue()
    bar.finished("bob", "0/6")
    assert stream.getvalue().endswith("bob: 0/6\x1b[K\n") and "\n" not in stream.getvalue()[:-1]


def test_find_submissions_refuses_two_entries_for_one_student(tmp_path):
    """A folder and a zip with one name are refused with both paths."""
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada.zip").write_bytes(b"")
    with pytest.raises(BatchError, match="find_submissions: .* would both be graded as student 'ada'"):
        find_submissions(tmp_path)


def test_grade_all_refuses_an_out_inside_submissions_or_a_foreign_one(tmp_path):
    """out inside submissions is a ValueError; an existing folder not written by grade-all a BatchError."""
    (tmp_path / "class" / "ada").mkdir(parents=True)
    with pytest.raises(ValueError, match="grade_all: out .* must not be inside the submissions folder"):
        grade_all(tmp_path / "class", tmp_path / "class" / "results", progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(BatchError, match="was not written by grade-all"):
        grade_all(tmp_path / "class", tmp_path / "mine", progress=False)
    assert os.listdir(tmp_path / "mine") == ["thesis.tex"]


def test_grade_all_refuses_to_resume_results_of_another_assignment(tmp_path):
    """Results graded for one assignment are not mixed with another's in one gradebook (unless regrade)."""
    (tmp_path / "class" / "ada").mkdir(parents=True)
    (tmp_path / "results" / "ada").mkdir(parents=True)
    (tmp_path / "results" / MARKER_NAME).write_text(json.dumps({"assignment": "a1"}))
    (tmp_path / "results" / "ada" / "results.json").write_text(json.dumps({"score": 1, "tests": []}))
    with pytest.raises(BatchError, match="holds results for assignment 'a1', not 'a2'"):
        grade_all(tmp_path / "class", tmp_path / "results", assignment="a2", progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"jobs": 0}, "grade_all: jobs must be a positive int, got 0"),
    ({"executor": "spark"}, "grade_all: executor must be one of"),
    ({"scheduler": "tcp://127.0.0.1:1"}, "grade_all: scheduler and client are for executor='dask'"),
    ({"timeout": -1}, "grade_all: timeout must be a positive number of seconds, got -1"),
    ({"submission_timeout": float("nan")}, "grade_all: submission_timeout must be a positive number"),
    ({"memory_mb": 1.5}, "grade_all: memory_mb must be a non-negative int"),
    ({"assignment": ""}, "grade_all: assignment must be"),
    ({"regrade": "yes"}, "grade_all: regrade must be True or False"),
])
def test_grade_all_names_the_bad_argument(tmp_path, kwargs, message):
    """Each bad argument is refused before anything is read or written, naming it and what it got."""
    with pytest.raises((TypeError, ValueError), match=message):
        grade_all(tmp_path / "class", tmp_path / "results", **kwargs)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("argv, code, message", [
    (["--jobs", "0"], 2, "python -m grading grade-all: jobs must be a positive int, got 0."),
    (["--executor", "dask", "--scheduler", "localhost"], 2,
     "python -m grading grade-all: scheduler must be an address like 'tcp://HOST:PORT', got 'localhost'."),
    (["--scheduler", "tcp://127.0.0.1:1"], 2,
     "python -m grading grade-all: scheduler and client are for executor='dask'; executor is 'local'."),
])
def test_cli_usage_errors_are_one_line_with_exit_code_2(tmp_path, capsys, argv, code, message):
    """A bad flag value: exit 2, one line naming it, no traceback."""
    (tmp_path / "class").mkdir()
    assert main(["grade-all", str(tmp_path / "class"), "--out", str(tmp_path / "results"), *argv]) == code
    assert capsys.readouterr().err == message + "\n"


def test_cli_dask_without_the_extra_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    """--executor dask where distributed does not import: exit 1, one line naming the extra to install."""
    monkeypatch.setattr("solver.executor.dask_available", lambda: False)
    (tmp_path / "class").mkdir()
    assert main(["grade-all", str(tmp_path / "class"), "--out", str(tmp_path / "results"), "--executor", "dask"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'chainrule[cluster]'" in err, err


def test_cli_missing_out_is_a_usage_error(tmp_path, capsys):
    """Without --out, argparse refuses with exit code 2 and says which flag is missing."""
    with pytest.raises(SystemExit) as stopped:
        main(["grade-all", str(tmp_path)])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].endswith("the following arguments are required: --out")


def test_cli_unreadable_input_is_one_line_with_exit_code_1(tmp_path, capsys):
    """A missing folder, and an export whose metadata is malformed, fail with exit 1 and one line."""
    assert main(["grade-all", str(tmp_path / "nowhere"), "--out", str(tmp_path / "results")]) == 1
    expected = f"python -m grading grade-all: SUBMISSIONS {tmp_path / 'nowhere'} is not a folder.\n"
    assert capsys.readouterr().err == expected
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "submission_metadata.yml").write_text("submission_1:\n  :submitters: Ada\n")
    assert main(["grade-all", str(tmp_path / "export"), "--out", str(tmp_path / "results")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "submission_metadata.yml line 2: :submitters: must be a list" in err, err
