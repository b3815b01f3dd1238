"""Solution and hidden-test markers: find the regions, check they are well formed, cut them out.

One pair of markers per kind, each alone on its line (indentation allowed):

    # BEGIN SOLUTION            # BEGIN HIDDEN TESTS
    ...reference code...        ...tests only the autograder runs...
    # END SOLUTION              # END HIDDEN TESTS

In the student version a solution region becomes a stub at the BEGIN marker's indentation
that raises ``NotImplementedError`` naming the enclosing function; a hidden-test region is
dropped. Regions do not nest. A line that looks like a marker but is not spelled exactly
(``#begin solution``, ``# END SOLUTIONS``) is an error, so a typo cannot leak a solution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOLUTION = "SOLUTION"
HIDDEN = "HIDDEN TESTS"
KINDS = (SOLUTION, HIDDEN)

# Anything a human might have meant as a marker; exact spelling is checked afterwards.
_LOOSE = re.compile(r"^\s*#+\s*(begin|end)\b[\s_-]*(solution|hidden)", re.IGNORECASE)
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)|^(\s*)class\s+([A-Za-z_]\w*)")


class MarkerError(ValueError):
    """A malformed marker: names the file and the 1-based line."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Region:
    """Lines begin..end (0-based, inclusive, markers included) of one kind."""

    kind: str
    begin: int
    end: int
    indent: str

    def body(self, lines: list[str]) -> list[str]:
        """The lines strictly between the two markers."""
        return lines[self.begin + 1 : self.end]


def begin_marker(kind: str) -> str:
    """The exact BEGIN comment for a kind (SOLUTION or HIDDEN)."""
    return f"# BEGIN {kind}"


def end_marker(kind: str) -> str:
    """The exact END comment for a kind (SOLUTION or HIDDEN)."""
    return f"# END {kind}"


def _classify(stripped: str) -> tuple[str, str] | None:
    for kind in KINDS:
        if stripped == begin_marker(kind):
            return "BEGIN", kind
        if stripped == end_marker(kind):
            return "END", kind
    return None


def find_regions(lines: list[str], path: str) -> list[Region]:
    """Every marked region of the lines, in order.

    Args:
        lines: the file's lines (without line endings).
        path: the file's name, for error messages.

    Returns:
        The regions, each with its kind, marker lines and the BEGIN marker's indentation.

    Raises:
        MarkerError: a nested region, an unclosed one, an END without its BEGIN, an END of
            the other kind, END at another indentation than its BEGIN, or a misspelt marker.
    """
    regions: list[Region] = []
    open_kind = open_line = open_indent = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        found = _classify(stripped)
        if found is None:
            if _LOOSE.match(line):
                raise MarkerError(
                    path, i + 1,
                    f"{stripped!r} looks like a marker but is not spelled exactly; write "
                    f"'{begin_marker(SOLUTION)}', '{end_marker(SOLUTION)}', '{begin_marker(HIDDEN)}' "
                    f"or '{end_marker(HIDDEN)}' alone on the line.",
                )
            continue
        edge, kind = found
        indent = line[: len(line) - len(line.lstrip())]
        if edge == "BEGIN":
            if open_kind is not None:
                raise MarkerError(
                    path, i + 1,
                    f"'{stripped}' inside the {open_kind} region opened at line {open_line + 1}; "
                    "regions do not nest.",
                )
            open_kind, open_line, open_indent = kind, i, indent
            continue
        if open_kind is None:
            raise MarkerError(path, i + 1, f"'{stripped}' without a matching '{begin_marker(kind)}' before it.")
        if kind != open_kind:
            raise MarkerError(
                path, i + 1,
                f"'{stripped}' closes the {open_kind} region opened at line {open_line + 1}; "
                f"expected '{end_marker(open_kind)}'.",
            )
        if indent != open_indent:
            raise MarkerError(
                path, i + 1,
                f"'{stripped}' is indented {len(indent)} columns but its BEGIN at line "
                f"{open_line + 1} is indented {len(open_indent)}; indent both alike.",
            )
        regions.append(Region(kind, open_line, i, open_indent))
        open_kind = None
    if open_kind is not None:
        raise MarkerError(
            path, open_line + 1,
            f"'{begin_marker(open_kind)}' is never closed; add '{end_marker(open_kind)}'.",
        )
    return regions


def enclosing_name(lines: list[str], index: int, indent: str) -> str | None:
    """The name of the innermost def (as Class.method) enclosing line `index`, or None."""
    names: list[str] = []
    width = len(indent)
    for j in range(index - 1, -1, -1):
        match = _DEF.match(lines[j])
        if not match:
            continue
        lead = match.group(1) if match.group(1) is not None else match.group(3)
        if len(lead) < width:
            names.append(match.group(2) or match.group(4))
            width = len(lead)
            if width == 0:
                break
    if not names:
        return None
    return ".".join(reversed(names))


def stub_lines(name: str | None, path: str, indent: str) -> list[str]:
    """What replaces a solution region in the student version."""
    what = f"{name}" if name else f"this part of {path}"
    return [
        f"{indent}# TODO: your code here. The reference solution was removed from this spot.",
        f'{indent}raise NotImplementedError("{what} is not implemented yet: write it in {path}")',
    ]


def strip_lines(lines: list[str], path: str, keep=None) -> tuple[list[str], list[Region]]:
    """The student version of a file's lines: solution regions stubbed, hidden tests dropped.

    Args:
        lines: the reference file's lines.
        path: the file's path relative to the project root (named in errors and stubs).
        keep: None, or a function of a solution region's enclosing name (as Class.method, or
            path outside any def) returning True for a region that keeps its solution (only
            its marker lines go): an earlier assignment's region in an assignment's release.

    Returns:
        (new lines, regions found).
    """
    if keep is not None and not callable(keep):
        raise TypeError(f"strip_lines: keep must be None or a function of a region's name, got {keep!r}.")
    regions = find_regions(lines, path)
    out: list[str] = []
    start = 0
    for region in regions:
        out.extend(lines[start : region.begin])
        if region.kind == SOLUTION:
            name = enclosing_name(lines, region.begin, region.indent)
            if keep is not None and keep(name or path):
                out.extend(region.body(lines))
            else:
                out.extend(stub_lines(name, path, region.indent))
        start = region.end + 1
    out.extend(lines[start:])
    return out, regions
