"""Tests of grading.gradescope_export: reading submission_metadata.yml and naming the students."""

from __future__ import annotations

import pytest

from grading.gradescope_export import MetadataError, Submitter, parse_metadata, student_key

# An export of three submissions (one a group, one whose folder tests/test_batch_grading.py leaves out),
# with the results and history keys a real export has, and values that look like keys inside them.
EXPORT_METADATA = """---
submission_1001:
  :submitters:
  - :name: Ada Quill
    :sid: '0612'
    :email: ada@example.edu
  :created_at: 2026-11-30 22:45:14.344165000 Z
  :score: 0.0
  :status: processed
  :results:
    score: 0.0
    tests: []
    output: |-
      not: a key
      - nor a list item
    extra_data:
  :history: []
submission_1002:
  :submitters:
  - :name: Bo O'Neil
    :sid: '0613'
    :email: bo@example.edu
  - :name: "Cy Dee"
    :sid: 614
    :email:
  :created_at: 2026-12-01 05:25:21.716840000 Z
  :score: 0.0
  :history:
  - :submitters: []
    :created_at: 2026-11-30 02:07:23.037492000 Z
    :score: 0.0
    :id: 216255674
submission_1003:
  :submitters:
  - :name: Dee Gone
    :sid: '0615'
"""


def test_parse_metadata_reads_the_submitters_and_skips_the_rest():
    """Names, sids (quoted or not) and emails (nil when empty) are read; results and history are skipped."""
    parsed = parse_metadata(EXPORT_METADATA)
    assert list(parsed) == ["submission_1001", "submission_1002", "submission_1003"]
    assert parsed["submission_1001"] == (Submitter("Ada Quill", "0612", "ada@example.edu"),)
    assert parsed["submission_1002"] == (Submitter("Bo O'Neil", "0613", "bo@example.edu"),
                                         Submitter("Cy Dee", "614", None))
    assert parsed["submission_1003"] == (Submitter("Dee Gone", "0615", None),)


def test_parse_metadata_folds_long_values_and_unquotes():
    """A value Psych wrapped onto a second line is joined with a space; '' inside single quotes is one quote."""
    text = ("submission_7:\n  :submitters:\n  - :name: 'Ann Marie\n      D''Arcy'\n    :sid: '1'\n"
            "  :submitters_count: 1\n")
    assert parse_metadata(text)["submission_7"] == (Submitter("Ann Marie D'Arcy", "1", None),)
    assert parse_metadata("submission_8:\n  :submitters: []\n") == {"submission_8": ()}


@pytest.mark.parametrize("text, message", [
    ("students:\n  :submitters: []\n", "line 1: expected a key like 'submission_123456:'"),
    ("submission_1:\n  :score: 1.0\n", "submission_1 has no :submitters: key"),
    ("submission_1:\n  :submitters: []\nsubmission_1:\n  :submitters: []\n", "line 3: submission_1 appears twice"),
    ("submission_1:\n\t:submitters: []\n", "line 2: tabs are not allowed"),
    ("submission_1:\n  :submitters:\n  - :name: |-\n      Ada\n", "a block scalar"),
    ("submission_1:\n  :submitters:\n  - :name: &a Ada\n", "anchor or alias"),
    ("submission_1:\n  :submitters:\n  - :sid: '1\n", "unterminated single-quoted value"),
    ("submission_1:\n  :submitters:\n  - :sid: '1'\n    :sid: '2'\n", "line 4: the submitter has :sid twice"),
    ("  :submitters: []\n", "line 1: an indented line before the first submission key"),
])
def test_parse_metadata_refuses_what_an_export_does_not_hold(text, message):
    """Anything but the export's structure is a MetadataError naming the line or the submission."""
    with pytest.raises(MetadataError, match=message):
        parse_metadata(text, source="submission_metadata.yml")


def test_student_key_prefers_sids_then_emails_then_the_folder():
    """sid, else email; a group joins them with '+'; anything that could not name a folder falls back."""
    assert student_key("submission_1", [Submitter("A", "0612", "a@x.edu")]) == "0612"
    assert student_key("submission_1", [Submitter("A", None, "a@x.edu"), Submitter("B", "7", None)]) == "a@x.edu+7"
    assert student_key("submission_1", [Submitter("A", "../etc", None)]) == "submission_1"
    assert student_key("submission_1", []) == "submission_1"
    with pytest.raises(ValueError, match="student_key: submission must be a folder name"):
        student_key("../x", [])
