"""Tests for grading.markers: region parsing, malformed markers and stubs."""

from __future__ import annotations

import pytest

from grading.markers import (
    HIDDEN,
    Region,
    SOLUTION,
    MarkerError,
    begin_marker,
    enclosing_name,
    end_marker,
    find_regions,
    strip_lines,
    stub_lines,
)

pytestmark = pytest.mark.grading

SOURCE = '''class Net:
    def loss(self, X):
        """Doc."""
        scores = X
        # BEGIN SOLUTION
        scores = scores * 2
        if scores.any():
            scores = scores + 1
        # END SOLUTION
        return scores


def helper(x):
    # BEGIN SOLUTION
    return x + 1
    # END SOLUTION
'''


def test_strip_lines_stubs_each_region_at_its_indentation_naming_the_function():
    """Each solution region becomes a TODO comment and a raise at the BEGIN marker's indentation."""
    lines, regions = strip_lines(SOURCE.split("\n"), "pkg/mod.py")
    assert [r.kind for r in regions] == [SOLUTION, SOLUTION]
    text = "\n".join(lines)
    assert '        raise NotImplementedError("Net.loss is not implemented yet: write it in pkg/mod.py")' in lines
    assert '    raise NotImplementedError("helper is not implemented yet: write it in pkg/mod.py")' in lines
    assert "scores * 2" not in text and "x + 1" not in text
    assert "        return scores" in lines  # code after a region stays
    compile(text, "pkg/mod.py", "exec")


def test_hidden_regions_are_dropped_whole():
    """A hidden-test region leaves no line behind, not even its markers."""
    lines = ["def test_a():", "    pass", "# BEGIN HIDDEN TESTS", "def test_b():", "    pass", "# END HIDDEN TESTS", ""]
    out, regions = strip_lines(lines, "t.py")
    assert out == ["def test_a():", "    pass", ""]
    assert regions == [Region(HIDDEN, 2, 5, "")]


@pytest.mark.parametrize("lines, line, words", [
    (["# BEGIN SOLUTION", "# BEGIN SOLUTION", "# END SOLUTION"], 2, "do not nest"),
    (["x = 1", "# BEGIN SOLUTION", "y = 2"], 2, "never closed"),
    (["x = 1", "# END SOLUTION"], 2, "without a matching"),
    (["# BEGIN SOLUTION", "# END HIDDEN TESTS"], 2, "expected '# END SOLUTION'"),
    (["def f():", "    # BEGIN SOLUTION", "    pass", "# END SOLUTION"], 4, "indented"),
    (["#begin solution", "pass"], 1, "not spelled exactly"),
    (["# END SOLUTIONS"], 1, "not spelled exactly"),
    (["    ## Begin Hidden Tests"], 1, "not spelled exactly"),
])
def test_malformed_markers_raise_with_file_and_line(lines, line, words):
    """Nested, unclosed, unmatched, mismatched, misindented and misspelt markers name file:line."""
    with pytest.raises(MarkerError, match=words) as info:
        find_regions(lines, "layers/x.py")
    assert str(info.value).startswith(f"layers/x.py:{line}: ")
    assert info.value.line == line


def test_marker_words_inside_code_are_not_markers():
    """Only a line that is exactly the comment counts; mentions in strings or prose do not."""
    lines = ['MARK = "# BEGIN SOLUTION"', "x = 1  # see # END SOLUTION", "# the BEGIN SOLUTION marker"]
    assert find_regions(lines, "f.py") == []


def test_enclosing_name_and_stub_text():
    """enclosing_name walks out to Class.method; a module-level region names the file."""
    lines = SOURCE.split("\n")
    assert enclosing_name(lines, 4, "        ") == "Net.loss"
    assert enclosing_name(["# BEGIN SOLUTION"], 0, "") is None
    assert stub_lines(None, "m.py", "")[1] == 'raise NotImplementedError("this part of m.py is not implemented yet: write it in m.py")'
    assert begin_marker(SOLUTION) == "# BEGIN SOLUTION" and end_marker(HIDDEN) == "# END HIDDEN TESTS"
