"""Tests for grading.submission.gather: the layouts it accepts and the hostile inputs it refuses."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
import tracemalloc
import zipfile

import pytest

from grading.submission import MISSING, Intake, SubmissionError, gather, is_zip_submission

pytestmark = pytest.mark.grading

STUDENT = ("layers/affine.py", "solver/optim.py")
BASE = {"layers/affine.py": b"# base affine\n", "solver/optim.py": b"# base optim\n"}
AFFINE = b"def affine_forward(x, w, b):\n    return x @ w + b\n"
OPTIM = b"def sgd(w, dw, config=None):\n    return w - dw\n"
# A FIFO must be refused at once; a gather still running after this many seconds is a failure.
FIFO_TIMEOUT_S = 5.0


@pytest.fixture
def dest(tmp_path):
    """A workspace holding the unimplemented base version of each student file."""
    root = tmp_path / "workspace"
    for rel, data in BASE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def make_submission(tmp_path, kind, files):
    """Write ``files`` ({relative name: bytes}) as a folder or as a .zip; return its path."""
    if kind == "folder":
        root = tmp_path / "submission"
        root.mkdir()
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def assert_base_kept(dest, rel):
    assert (dest / rel).read_bytes() == BASE[rel], f"{rel}: the base version was replaced"


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_project_layout_at_the_top_is_copied_without_notes(tmp_path, dest, kind):
    """Student files in the project layout at the top are copied byte for byte and raise no note."""
    sub = make_submission(tmp_path, kind, {"layers/affine.py": AFFINE, "solver/optim.py": OPTIM,
                                           "conftest.py": b"import os\n"})
    intake = gather(sub, dest, STUDENT)
    assert intake == Intake(copied=list(STUDENT), notes=[])
    assert (dest / "layers/affine.py").read_bytes() == AFFINE
    assert (dest / "solver/optim.py").read_bytes() == OPTIM
    assert not (dest / "conftest.py").exists(), "a file outside student_files was copied"


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_project_one_folder_down_is_copied_with_a_note_naming_the_folder(tmp_path, dest, kind):
    """A zipped project folder is used when it is the only top-level folder holding student files."""
    sub = make_submission(tmp_path, kind, {"myproject/layers/affine.py": AFFINE,
                                           "__MACOSX/myproject/layers/._affine.py": b"\x00\x05junk",
                                           "notes/readme.txt": b"hello"})
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == ["layers/affine.py"]
    assert intake.notes[0] == "the files were taken from the folder myproject/ of the submission."
    assert intake.notes[1:] == [f"solver/optim.py: {MISSING}"]
    assert (dest / "layers/affine.py").read_bytes() == AFFINE


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_flat_files_are_taken_by_base_name_with_one_note(tmp_path, dest, kind):
    """Files side by side at the top are matched by base name, and the layout is noted once."""
    sub = make_submission(tmp_path, kind, {"affine.py": AFFINE, "optim.py": OPTIM, ".DS_Store": b"\x00"})
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == list(STUDENT)
    assert len(intake.notes) == 1 and "side by side" in intake.notes[0], intake.notes
    assert (dest / "solver/optim.py").read_bytes() == OPTIM


def test_flat_files_sharing_a_base_name_are_refused(tmp_path, dest):
    """In a flat submission, student files with the same base name cannot be told apart and are refused."""
    sub = make_submission(tmp_path, "folder", {"__init__.py": b"x = 1\n"})
    intake = gather(sub, dest, ("layers/__init__.py", "solver/__init__.py"))
    assert intake.copied == []
    assert [note.split(":")[0] for note in intake.notes[1:]] == ["layers/__init__.py", "solver/__init__.py"]
    assert all("several student files are named __init__.py" in note for note in intake.notes[1:]), intake.notes
    assert not (dest / "layers/__init__.py").exists()


def test_two_project_folders_are_ambiguous_and_neither_is_used(tmp_path, dest):
    """With student files in two top-level folders, neither is guessed and the student is told."""
    sub = make_submission(tmp_path, "folder", {"v1/layers/affine.py": AFFINE, "v2/layers/affine.py": AFFINE})
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == []
    assert "several folders (v1, v2)" in intake.notes[0], intake.notes
    assert_base_kept(dest, "layers/affine.py")


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_missing_files_are_noted_in_student_files_order(tmp_path, dest, kind):
    """Each student file absent from the submission gets the 'not in the submission' note, in order."""
    sub = make_submission(tmp_path, kind, {"README.md": b"I did my best"})
    intake = gather(sub, dest, ("solver/optim.py", "layers/affine.py"))
    assert intake.copied == []
    assert intake.notes == [f"solver/optim.py: {MISSING}", f"layers/affine.py: {MISSING}"]
    assert MISSING == "not in the submission; the unimplemented version was graded."
    assert_base_kept(dest, "layers/affine.py")


def test_non_utf8_bytes_are_copied_byte_exact(tmp_path, dest):
    """A file that is not valid UTF-8 is copied unchanged from a folder and from a zip."""
    garbage = b"\xff\xfe\x00def f(:\r\n\x80\xc3("
    for kind in ("folder", "zip"):
        (tmp_path / kind).mkdir()
        sub = make_submission(tmp_path / kind, kind, {"layers/affine.py": garbage})
        intake = gather(sub, dest, STUDENT)
        assert intake.copied == ["layers/affine.py"], (kind, intake.notes)
        assert (dest / "layers/affine.py").read_bytes() == garbage, kind


def test_files_are_replaced_atomically_with_mode_644_and_no_temp_files(tmp_path, dest):
    """Each copy replaces the base file by rename (a new inode), is mode 0o644 and leaves no temp file."""
    base_inode = (dest / "layers/affine.py").stat().st_ino
    sub = make_submission(tmp_path, "folder", {"layers/affine.py": AFFINE, "solver/optim.py": OPTIM,
                                               "solver/nets.py": b"class Net: pass\n"})
    old_umask = os.umask(0o077)
    try:
        gather(sub, dest, (*STUDENT, "solver/nets.py"))
    finally:
        os.umask(old_umask)
    assert (dest / "layers/affine.py").stat().st_ino != base_inode, "the base file was written in place"
    for rel in (*STUDENT, "solver/nets.py"):
        mode = stat.S_IMODE((dest / rel).stat().st_mode)
        assert mode == 0o644, f"{rel}: mode {oct(mode)}, expected 0o644"
    assert sorted(os.listdir(dest / "layers")) == ["affine.py"]
    assert sorted(os.listdir(dest / "solver")) == ["nets.py", "optim.py"]


# Folder submissions: links and special files.
def test_symlinked_student_file_is_refused(tmp_path, dest):
    """A student file that is a link to another file of the submission is refused, the base kept."""
    sub = make_submission(tmp_path, "folder", {"elsewhere/affine.py": AFFINE})
    (sub / "layers").mkdir()
    (sub / "layers/affine.py").symlink_to("../elsewhere/affine.py")
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == []
    assert intake.notes[0].startswith("layers/affine.py: not taken: layers/affine.py is a symbolic link")
    assert_base_kept(dest, "layers/affine.py")


def test_symlink_to_a_system_file_is_refused(tmp_path, dest):
    """A student file linking to a file outside the submission (/etc/passwd) is never read."""
    sub = make_submission(tmp_path, "folder", {"solver/optim.py": OPTIM})
    (sub / "layers").mkdir()
    (sub / "layers/affine.py").symlink_to("/etc/passwd")
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == ["solver/optim.py"]
    assert "symbolic link" in intake.notes[0], intake.notes
    assert_base_kept(dest, "layers/affine.py")


@pytest.mark.parametrize("target", ["outside", "/etc"])
def test_symlinked_parent_folder_is_refused(tmp_path, dest, target):
    """A student file below a folder that is a link (to a folder holding affine.py, or /etc) is refused."""
    outside = tmp_path / "outside"
    (outside).mkdir()
    (outside / "affine.py").write_bytes(AFFINE)
    sub = make_submission(tmp_path, "folder", {"solver/optim.py": OPTIM})
    (sub / "layers").symlink_to(outside if target == "outside" else target)
    intake = gather(sub, dest, (*STUDENT, "layers/passwd"))
    assert intake.copied == ["solver/optim.py"]
    assert intake.notes[0] == ("layers/affine.py: not taken: layers/affine.py is below layers, which is a "
                               "symbolic link (links are not followed); the unimplemented version was graded.")
    assert_base_kept(dest, "layers/affine.py")
    assert not (dest / "layers/passwd").exists()


def test_symlinked_project_folder_one_level_down_is_not_followed(tmp_path, dest):
    """A top-level link to a project folder is not entered when looking for the one-folder-down layout."""
    project = tmp_path / "real_project"
    (project / "layers").mkdir(parents=True)
    (project / "layers/affine.py").write_bytes(AFFINE)
    sub = make_submission(tmp_path, "folder", {"README.md": b"see myproject"})
    (sub / "myproject").symlink_to(project)
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == []
    assert_base_kept(dest, "layers/affine.py")


def test_fifo_in_place_of_a_student_file_is_refused_without_blocking(tmp_path, dest):
    """A FIFO where a student file should be is refused at once: gather never opens it for reading."""
    sub = make_submission(tmp_path, "folder", {"solver/optim.py": OPTIM})
    (sub / "layers").mkdir()
    os.mkfifo(sub / "layers/affine.py")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(intake=gather(sub, dest, STUDENT)), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(FIFO_TIMEOUT_S)
    assert not worker.is_alive(), f"gather still running after {FIFO_TIMEOUT_S} s: it blocked on the FIFO"
    assert time.monotonic() - started < FIFO_TIMEOUT_S
    intake = outcome["intake"]
    assert intake.copied == ["solver/optim.py"]
    assert intake.notes[0].startswith("layers/affine.py: not taken: layers/affine.py is a FIFO"), intake.notes
    assert_base_kept(dest, "layers/affine.py")


def test_folder_or_socket_in_place_of_a_student_file_is_refused(tmp_path, dest):
    """A folder named like a student file, or a socket, is refused as not a regular file."""
    sub = make_submission(tmp_path, "folder", {"layers/affine.py/inner.py": AFFINE})
    (sub / "solver").mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sub / "solver/optim.py"))
        intake = gather(sub, dest, STUDENT)
    finally:
        server.close()
    assert intake.copied == []
    assert "is a folder, not a regular file" in intake.notes[0], intake.notes
    assert "is a socket, not a regular file" in intake.notes[1], intake.notes


def test_file_over_the_size_cap_is_refused_and_one_at_the_cap_is_copied(tmp_path, dest):
    """A file of max_file_bytes is copied; one byte more and it is refused with a note."""
    cap = 1000
    sub = make_submission(tmp_path, "folder", {"layers/affine.py": b"#" * (cap + 1), "solver/optim.py": b"#" * cap})
    intake = gather(sub, dest, STUDENT, max_file_bytes=cap)
    assert intake.copied == ["solver/optim.py"]
    assert intake.notes == ["layers/affine.py: not taken: layers/affine.py is larger than the 1000-byte limit; "
                            "the unimplemented version was graded."]
    assert_base_kept(dest, "layers/affine.py")


# Zip submissions.
def _patch(path, old, new):
    """Replace bytes in a file (same length), e.g. to put a NUL into a member name."""
    raw = path.read_bytes()
    assert len(old) == len(new) and old in raw
    path.write_bytes(raw.replace(old, new))


@pytest.mark.parametrize("name", ["../layers/affine.py", "/layers/affine.py", "layers\\affine.py",
                                  "layers/affine.py\0"])
def test_unsafe_member_names_are_never_used(tmp_path, dest, name):
    """Members that are absolute or hold '..', a backslash or NUL are not copied, and noted once."""
    written = name.replace("\0", "X")
    sub = make_submission(tmp_path, "zip", {written: AFFINE, "solver/optim.py": OPTIM})
    if "\0" in name:
        _patch(sub, written.encode(), name.encode())
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == ["solver/optim.py"]
    unsafe_notes = [note for note in intake.notes if "never used" in note]
    assert len(unsafe_notes) == 1, intake.notes
    assert f"layers/affine.py: {MISSING}" in intake.notes
    assert_base_kept(dest, "layers/affine.py")
    assert not (tmp_path / "layers").exists() and not (dest.parent / "layers").exists()


def test_symlink_member_is_refused(tmp_path, dest):
    """A zip member whose unix mode says symbolic link is refused, never read as a file."""
    sub = tmp_path / "links.zip"
    with zipfile.ZipFile(sub, "w") as zf:
        link = zipfile.ZipInfo("layers/affine.py")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("solver/optim.py", OPTIM)
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == ["solver/optim.py"]
    assert intake.notes == ["layers/affine.py: not taken: layers/affine.py is a symbolic link (links are not "
                            "followed); the unimplemented version was graded."]
    assert_base_kept(dest, "layers/affine.py")


def test_duplicate_member_names_refuse_that_file(tmp_path, dest):
    """A student file present twice in the zip is refused rather than guessing which copy counts."""
    sub = tmp_path / "dup.zip"
    with zipfile.ZipFile(sub, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("layers/affine.py", AFFINE)
        zf.writestr("layers/affine.py", b"import os; os.system('rm -rf /')\n")
        zf.writestr("solver/optim.py", OPTIM)
    intake = gather(sub, dest, STUDENT)
    assert intake.copied == ["solver/optim.py"]
    assert "appears 2 times in the zip" in intake.notes[0], intake.notes
    assert_base_kept(dest, "layers/affine.py")


def _peak_bytes_of(call):
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_bomb_member_is_refused_after_inflating_at_most_the_cap(tmp_path, dest):
    """A 20 MB member of zeros (about 20 KB compressed) is refused while holding only about the 1 MB cap."""
    cap = 1_000_000
    sub = make_submission(tmp_path, "zip", {"layers/affine.py": bytes(20_000_000), "solver/optim.py": OPTIM})
    assert sub.stat().st_size < 200_000
    intake, peak = _peak_bytes_of(lambda: gather(sub, dest, STUDENT, max_file_bytes=cap))
    assert intake.copied == ["solver/optim.py"]
    assert "is larger than the 1000000-byte limit" in intake.notes[0], intake.notes
    assert peak < 4 * cap, f"gather held {peak} bytes at its peak; the cap is {cap}"
    assert_base_kept(dest, "layers/affine.py")


def test_member_lying_about_its_size_is_refused_after_inflating_at_most_the_cap(tmp_path, dest):
    """A member declaring 100 bytes but inflating to 20 MB is refused, holding only about the 1 MB cap."""
    cap = 1_000_000
    sub = make_submission(tmp_path, "zip", {"layers/affine.py": bytes(20_000_000)})
    with zipfile.ZipFile(sub) as zf:
        (info,) = zf.infolist()
    _patch(sub, info.file_size.to_bytes(4, "little"), (100).to_bytes(4, "little"))
    intake, peak = _peak_bytes_of(lambda: gather(sub, dest, STUDENT, max_file_bytes=cap))
    assert intake.copied == []
    assert "could not be decompressed" in intake.notes[0], intake.notes
    assert peak < 4 * cap, f"gather held {peak} bytes at its peak; the cap is {cap}"
    assert_base_kept(dest, "layers/affine.py")


@pytest.mark.parametrize("content", [b"this is not a zip", b"PK\x03\x04" + bytes(100), None])
def test_corrupt_zip_is_refused_as_a_whole(tmp_path, dest, content):
    """Garbage, a bare header, or a real zip cut in half raise SubmissionError naming gather."""
    path = tmp_path / "broken.zip"
    if content is None:
        make_submission(tmp_path, "zip", {"layers/affine.py": os.urandom(5000)}).rename(path)
        path.write_bytes(path.read_bytes()[:2500])
    else:
        path.write_bytes(content)
    with pytest.raises(SubmissionError, match="gather: .*broken.zip is not a readable zip file"):
        gather(path, dest, STUDENT)
    assert_base_kept(dest, "layers/affine.py")


def test_zip_with_too_many_members_is_refused(tmp_path, dest):
    """A zip with more than max_members members raises SubmissionError before any file is copied."""
    sub = make_submission(tmp_path, "zip", {"layers/affine.py": AFFINE, **{f"f{i}.txt": b"" for i in range(5)}})
    with pytest.raises(SubmissionError, match="gather: the zip .* has 6 members; at most 5 are accepted"):
        gather(sub, dest, STUDENT, max_members=5)
    assert gather(sub, dest, STUDENT, max_members=6).copied == ["layers/affine.py"]


def test_zip_declaring_more_than_the_total_cap_is_refused(tmp_path, dest):
    """A zip whose declared uncompressed sizes add up past max_total_bytes raises SubmissionError."""
    sub = make_submission(tmp_path, "zip", {"layers/affine.py": AFFINE, "big.bin": bytes(3_000_000)})
    declared = 3_000_000 + len(AFFINE)
    with pytest.raises(SubmissionError, match=f"declares {declared} bytes uncompressed, over the 2000000-byte limit"):
        gather(sub, dest, STUDENT, max_total_bytes=2_000_000)
    assert_base_kept(dest, "layers/affine.py")


# Arguments.
def test_submission_that_is_missing_or_not_a_folder_or_zip_is_refused(tmp_path, dest):
    """A missing path, or a file not ending in .zip, raises SubmissionError naming gather and the path."""
    with pytest.raises(SubmissionError, match=r"gather: the submission .*nowhere does not exist"):
        gather(tmp_path / "nowhere", dest, STUDENT)
    (tmp_path / "work.tar").write_bytes(b"")
    with pytest.raises(SubmissionError, match=r"gather: the submission .*work.tar is neither a folder nor a .zip"):
        gather(tmp_path / "work.tar", dest, STUDENT)


def test_bad_dest_student_files_or_caps_raise_value_error(tmp_path, dest):
    """dest not a folder, a malformed student path or a non-positive cap raise ValueError naming gather."""
    sub = make_submission(tmp_path, "folder", {"layers/affine.py": AFFINE})
    with pytest.raises(ValueError, match="gather: dest must be an existing folder"):
        gather(sub, tmp_path / "no_such_dest", STUDENT)
    with pytest.raises(ValueError, match="gather: student_files must be a sequence"):
        gather(sub, dest, "layers/affine.py")
    for bad in ("../affine.py", "/layers/affine.py", "layers\\affine.py", ""):
        with pytest.raises(ValueError, match="gather: each of student_files must be a relative POSIX path"):
            gather(sub, dest, [bad])
    with pytest.raises(ValueError, match="gather: max_file_bytes must be a positive integer; got 0"):
        gather(sub, dest, STUDENT, max_file_bytes=0)
    assert_base_kept(dest, "layers/affine.py")


def test_is_zip_submission_needs_an_existing_file_ending_in_zip(tmp_path):
    """is_zip_submission is true only for an existing file named *.zip, whatever the case."""
    (tmp_path / "a.ZIP").write_bytes(b"")
    (tmp_path / "folder.zip").mkdir()
    assert is_zip_submission(tmp_path / "a.ZIP")
    assert not is_zip_submission(tmp_path / "folder.zip")
    assert not is_zip_submission(tmp_path / "missing.zip")
