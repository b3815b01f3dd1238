"""Gradescope's results.json and the terminal score table, from a Grade.

results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/) carries a
top-level score, execution_time, output, visibility and stdout_visibility, one entry per test
with name, number, score, max_score, status, output and visibility, and, when the assignment
grades a model file, Gradescope's leaderboard: a list of {"name", "value", optional "order"}.
"""

from __future__ import annotations

import json
import pathlib

from data.files import write_atomically
from grading import manifest

# Characters of one test's output and of the summary in results.json: 45 tests stay under 100 kB.
TEST_OUTPUT_CHARS = 1800
SUMMARY_CHARS = 4000


def _cap(text: str, limit: int) -> str:
    suffix = " ...[truncated]"
    return text if len(text) <= limit else text[: limit - len(suffix)] + suffix


def summary(grade) -> str:
    """One paragraph: public tests passed, hidden tests' count, notes on the submission."""
    public = [t for t in grade.tests if not t.hidden]
    hidden = [t for t in grade.tests if t.hidden]
    passed = sum(t.status == "passed" for t in public)
    lines = [f"Public tests passed: {passed} of {len(public)}."]
    if hidden:
        lines.append(f"{len(hidden)} hidden tests are graded too; their results show once grades are published.")
    lines.extend(grade.notes)
    return "\n".join(lines)


def to_gradescope(grade) -> dict:
    """The results.json document for a Grade."""
    tests = []
    numbers: dict[str, int] = {}
    files = []
    for test in grade.tests:
        if test.file not in files:
            files.append(test.file)
        numbers[test.file] = numbers.get(test.file, 0) + 1
        tests.append({
            "name": test.name,
            "number": f"{files.index(test.file) + 1}.{numbers[test.file]}",
            "score": round(test.score, 4),
            "max_score": test.points,
            "status": test.status,
            "output": _cap(test.output(), TEST_OUTPUT_CHARS),
            "visibility": manifest.HIDDEN_VISIBILITY if test.hidden else manifest.PUBLIC_VISIBILITY,
        })
    return {
        "score": round(grade.score, 4),
        "execution_time": round(grade.seconds, 1),
        "output": _cap(summary(grade), SUMMARY_CHARS),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        **({"leaderboard": grade.leaderboard} if grade.leaderboard else {}),
    }


def write_results(grade, path) -> pathlib.Path:
    """Write results.json atomically (a temporary file renamed over the target)."""
    path = pathlib.Path(path)
    write_atomically(path, json.dumps(to_gradescope(grade), indent=2) + "\n", parents=True)
    return path


def write_log(grade, path) -> pathlib.Path:
    """Write what the submission printed during each test (as kept, bounded) to path, atomically."""
    path = pathlib.Path(path)
    chunks = [f"== {nodeid}\n{text}\n" for test in grade.tests for nodeid, text in test.printed.items()]
    write_atomically(path, "".join(chunks) or "the submission printed nothing\n", parents=True)
    return path


def table(grade, show_hidden: bool = True) -> str:
    """The score table for a terminal: one row per test, then the total and the summary."""
    rows = [(t.name + (" [hidden]" if t.hidden else ""), f"{t.score:g}/{t.points:g}", t.status)
            for t in grade.tests if show_hidden or not t.hidden]
    width = max([len(r[0]) for r in rows] + [4])
    lines = [f"{'test':<{width}}  {'score':>7}  status", "-" * (width + 17)]
    for name, score, status in rows:
        lines.append(f"{name:<{width}}  {score:>7}  {status}")
    lines.append("-" * (width + 17))
    lines.append(f"{'total':<{width}}  {grade.score:g}/{grade.max_score:g}")
    lines.append(summary(grade))
    return "\n".join(lines)
