"""Read a Gradescope export's ``submission_metadata.yml`` without a YAML library.

An export (an assignment's "Export Submissions", unzipped) is a folder holding ``submission_metadata.yml``
and one ``submission_<id>/`` folder per submission. The metadata is Ruby-style YAML written by
Psych: symbol keys with a leading colon, sequences at their parent key's indentation::

    ---
    submission_216975964:
      :submitters:
      - :name: Ada Student
        :sid: '0675'
        :email: ada@example.edu
      :created_at: 2023-12-02 02:52:07.938335000 Z
      :score: 0.0
      :results:
        ...
      :history: []

Only the submitters are read (name, sid and email; the other keys are skipped whatever they
hold, block scalars included). The parser is strict about what it reads: a top-level key that
is not ``submission_<digits>``, a submission without ``:submitters:``, a duplicate key, a
submitter field that is a block scalar, a flow collection, a tag, an anchor or an alias is a
MetadataError naming the line. Runtime dependencies stay numpy, scipy and matplotlib.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

__all__ = ["METADATA_NAME", "MAX_METADATA_BYTES", "Submitter", "MetadataError", "parse_metadata", "read_metadata",
           "is_export", "student_key"]

METADATA_NAME = "submission_metadata.yml"
# A course of a thousand submissions with their histories stays far below this.
MAX_METADATA_BYTES = 64_000_000
# What a student key may look like: it names a folder of the results.
SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
SUBMITTER_FIELDS = (":name", ":sid", ":email")

_TOP = re.compile(r"(submission_[0-9]+):\s*")
_FIELD = re.compile(r"(:[A-Za-z_][A-Za-z0-9_]*):(?: (.*))?")


class MetadataError(ValueError):
    """submission_metadata.yml does not have the structure of a Gradescope export."""


@dataclass(frozen=True)
class Submitter:
    """One student of a submission, as the export names them (None where the export has no value)."""

    name: str | None
    sid: str | None
    email: str | None


def _scalar(raw: str, where: str) -> str | None:
    """The value of one scalar written by Psych: plain, single- or double-quoted, or empty (nil)."""
    raw = raw.strip()
    if raw in ("", "~", "null"):
        return None
    if raw[0] in "|>[{!&*":
        raise MetadataError(f"{where}: a block scalar, flow collection, tag, anchor or alias ({raw[:20]!r}) "
                            "is not expected in a submitter field.")
    if raw[0] == "'":
        if len(raw) < 2 or raw[-1] != "'" or "'" in raw[1:-1].replace("''", ""):
            raise MetadataError(f"{where}: unterminated single-quoted value {raw[:40]!r}.")
        return raw[1:-1].replace("''", "'")
    if raw[0] == '"':
        try:
            return str(json.loads(raw))
        except ValueError:
            raise MetadataError(f"{where}: double-quoted value {raw[:40]!r} is not terminated or uses an "
                                "escape this reader does not know.") from None
    return raw


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse_metadata(text: str, source: str = METADATA_NAME) -> dict[str, tuple[Submitter, ...]]:
    """The submitters of each submission of an export, in the file's order.

    Args:
        text: the contents of submission_metadata.yml.
        source: how error messages name the file.

    Returns:
        dict submission folder name (``submission_<id>``) -> tuple of Submitter (empty for a
        submission without submitters).

    Raises:
        TypeError: text is not a str.
        MetadataError: the text does not have the export's structure (the message names the line).
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_metadata: text must be a str, got {type(text).__name__}.")
    found: dict[str, list[dict] | None] = {}
    current = None  # the submission being read
    in_submitters = False  # reading the :submitters: sequence of current
    fields: dict | None = None  # the submitter being read
    last = None  # (fields, key) of the last submitter field, for folded continuation lines
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        where = f"{source} line {number}"
        if "\t" in line[:_indent(line) + 1]:
            raise MetadataError(f"{where}: tabs are not allowed in YAML indentation.")
        if not line.strip():
            continue
        indent = _indent(line)
        body = line[indent:].rstrip()
        if indent == 0:
            if body == "---" and not found and current is None:
                continue
            match = _TOP.fullmatch(body)
            if not match:
                raise MetadataError(f"{where}: expected a key like 'submission_123456:', got {body[:60]!r}.")
            current = match.group(1)
            if current in found:
                raise MetadataError(f"{where}: {current} appears twice.")
            found[current] = None
            in_submitters, fields, last = False, None, None
            continue
        if current is None:
            raise MetadataError(f"{where}: an indented line before the first submission key.")
        if indent == 2 and not body.startswith("- "):
            match = _FIELD.fullmatch(body)
            if not match:
                raise MetadataError(f"{where}: expected a key like ':submitters:' under {current}, got {body[:60]!r}.")
            in_submitters, fields, last = False, None, None
            if match.group(1) == ":submitters":
                if found[current] is not None:
                    raise MetadataError(f"{where}: {current} has :submitters: twice.")
                value = (match.group(2) or "").strip()
                if value not in ("", "[]"):
                    raise MetadataError(f"{where}: :submitters: must be a list, got {value[:40]!r}.")
                found[current] = []
                in_submitters = value == ""
            continue
        if not in_submitters:
            continue  # inside the value of a key this reader skips
        if indent == 2:  # "- :field: value": a new submitter
            fields = {}
            found[current].append(fields)
            indent, body = 4, body[2:].lstrip(" ")
            if _indent(line[4:]) != 0:
                raise MetadataError(f"{where}: expected '- :name: ...' with one space after the dash.")
        if fields is None:
            raise MetadataError(f"{where}: a submitter field before the first '- ' of :submitters:.")
        if indent == 4:
            match = _FIELD.fullmatch(body)
            if not match:
                raise MetadataError(f"{where}: expected a submitter field like ':sid: ...', got {body[:60]!r}.")
            key = match.group(1)
            if key in fields:
                raise MetadataError(f"{where}: the submitter has {key} twice.")
            fields[key] = match.group(2) or ""
            last = (fields, key, where)
        elif indent > 4 and last is not None and last[0] is fields:
            fields[last[1]] += " " + body  # Psych folds a long plain or quoted value onto more lines
        else:
            raise MetadataError(f"{where}: unexpected indentation in :submitters: of {current}.")
    result = {}
    for key, submitters in found.items():
        if submitters is None:
            raise MetadataError(f"{source}: {key} has no :submitters: key.")
        people = []
        for fields_ in submitters:
            values = {name: _scalar(fields_[name], f"{source}: {key} {name}") if name in fields_ else None
                      for name in SUBMITTER_FIELDS}
            people.append(Submitter(name=values[":name"], sid=values[":sid"], email=values[":email"]))
        result[key] = tuple(people)
    return result


def _folder(fn: str, folder) -> str:
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"{fn}: folder must be a path (str or os.PathLike), got {type(folder).__name__} {folder!r}.")
    return os.fspath(folder)


def is_export(folder) -> bool:
    """Whether folder holds a submission_metadata.yml (a regular file, not a link).

    Args:
        folder: a path.

    Returns:
        bool.

    Raises:
        TypeError: folder is not a path.
    """
    path = os.path.join(_folder("is_export", folder), METADATA_NAME)
    return os.path.isfile(path) and not os.path.islink(path)


def read_metadata(folder) -> dict[str, tuple[Submitter, ...]]:
    """parse_metadata of the export folder's submission_metadata.yml.

    Args:
        folder: the export folder.

    Returns:
        As parse_metadata.

    Raises:
        TypeError: folder is not a path.
        MetadataError: the file is missing, a link, too large, not UTF-8 or malformed.
    """
    path = os.path.join(_folder("read_metadata", folder), METADATA_NAME)
    if not is_export(folder):
        raise MetadataError(f"read_metadata: {path} is missing or not a regular file.")
    size = os.path.getsize(path)
    if size > MAX_METADATA_BYTES:
        raise MetadataError(f"read_metadata: {path} is {size} bytes, over the {MAX_METADATA_BYTES}-byte limit.")
    with open(path, "rb") as handle:
        data = handle.read(MAX_METADATA_BYTES + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MetadataError(f"read_metadata: {path} is not UTF-8 ({error.reason} at byte {error.start}).") from None
    return parse_metadata(text.replace("\r\n", "\n"), source=path)


def student_key(submission: str, submitters) -> str:
    """The name a submission's results go under: its students' sids (else emails) joined by '+'.

    A student without a usable sid or email (one that could not name a folder: empty, too long,
    or with characters outside letters, digits and ``._@+-``) makes the whole key fall back to
    the submission's folder name.

    Args:
        submission: the folder name, like "submission_216975964".
        submitters: a sequence of Submitter.

    Returns:
        str, safe as a folder name.

    Raises:
        ValueError: submission itself is not a safe folder name.
        TypeError: submitters holds something other than Submitter.
    """
    if not (isinstance(submission, str) and SAFE_KEY.fullmatch(submission)):
        raise ValueError(f"student_key: submission must be a folder name like 'submission_123', got {submission!r}.")
    submitters = list(submitters)
    if not all(isinstance(person, Submitter) for person in submitters):
        raise TypeError(f"student_key: submitters must be Submitter objects, got {submitters!r:.120}.")
    keys = []
    for person in submitters:
        usable = [value for value in (person.sid, person.email) if value and SAFE_KEY.fullmatch(value)]
        if not usable:
            return submission
        keys.append(usable[0])
    key = "+".join(keys)
    return key if keys and len(key) <= 200 else submission
