"""Tests for data.files: the project root, and atomic writes (no torn file, no temporary left)."""

import os
import pathlib
import re
import stat
import subprocess
import sys
import threading

import pytest

from data.files import atomic_write, project_root, write_atomically

pytestmark = pytest.mark.data


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_project_root_holds_the_packages():
    """project_root() is the folder with layers/, solver/, data/, grading/ and setup.cfg: this test's parent's parent."""
    root = project_root()
    assert root.is_absolute() and root == root.resolve()
    assert root == pathlib.Path(__file__).resolve().parents[1]
    for entry in ("layers", "solver", "data", "grading", "gradcheck", "setup.cfg"):
        assert (root / entry).exists(), entry


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    """An exception mid-write leaves the previous content and no temporary file."""
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, mode="w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_replaces_by_rename_with_normal_permissions(tmp_path):
    """A completed write replaces the file by a rename (a new inode); its mode follows the umask like open()."""
    path = tmp_path / "out.txt"
    path.write_text("old")
    inode = path.stat().st_ino
    with atomic_write(path, mode="w") as f:
        f.write("new")
    assert path.read_text() == "new" and path.stat().st_ino != inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_names_a_missing_folder_unless_asked_to_create_it(tmp_path):
    """A missing folder is refused by name; parents=True creates it."""
    with pytest.raises(FileNotFoundError, match=r"^atomic_write: the folder .*nowhere does not exist \(writing x\.npz\)\.$"):
        with atomic_write(tmp_path / "nowhere" / "x.npz"):
            pass
    assert not (tmp_path / "nowhere").exists()
    with atomic_write(tmp_path / "made" / "deep" / "x.bin", parents=True) as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "made" / "deep" / "x.bin").read_bytes() == b"\x00\x01"


def test_atomic_write_refuses_other_modes(tmp_path):
    """Only "wb" and "w": appending or reading cannot be atomic replacements."""
    for mode in ("a", "r+b", "x"):
        with pytest.raises(ValueError, match=rf"^atomic_write: mode must be 'wb' or 'w', got {re.escape(repr(mode))}\.$"):
            with atomic_write(tmp_path / "x", mode=mode):
                pass
    assert os.listdir(tmp_path) == []


def test_write_atomically_takes_bytes_or_text_and_exact_permissions(tmp_path):
    """bytes are written as they are, str as text; permissions=0o644 holds under a strict umask."""
    old = os.umask(0o077)
    try:
        write_atomically(tmp_path / "a.bin", b"\xff\x00", permissions=0o644, fsync=False)
        returned = write_atomically(str(tmp_path / "b.txt"), "caf\u00e9\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"\xff\x00"
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert returned == tmp_path / "b.txt" and returned.read_text() == "caf\u00e9\n"
    assert stat.S_IMODE(returned.stat().st_mode) == 0o600  # 0o666 under umask 0o077, as open() would
    with pytest.raises(TypeError, match=r"^write_atomically: data must be bytes or str, got list\.$"):
        write_atomically(tmp_path / "c", [1, 2])
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.txt"]


def test_concurrent_writers_never_share_a_temporary(tmp_path):
    """Threads writing the same destination each get their own temporary; the file ends whole."""
    path = tmp_path / "shared.bin"
    payloads = [bytes([k]) * 100_000 for k in range(8)]
    threads = [threading.Thread(target=write_atomically, args=(path, p), kwargs={"fsync": False}) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in payloads
    assert os.listdir(tmp_path) == ["shared.bin"]


def test_importing_data_files_loads_no_numpy():
    """grading's stdlib-only modules import data.files; the data package loads its loaders only on use."""
    code = ("import sys, data.files; assert 'numpy' not in sys.modules, 'numpy loaded'; "
            "from data import load_digits; assert 'numpy' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project_root(), timeout=120)
    assert proc.returncode == 0, proc.stderr
