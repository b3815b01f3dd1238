"""Tests for data.download, offline, against an HTTP server on 127.0.0.1 started by the tests."""

import hashlib
import http.server
import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest

import data.download as dl
from data import load_cifar10, load_mnist
from data.download import DatasetSpec, DownloadError, Remote, download_dataset
from datagen import MNIST_STEMS, tar_gz_of, write_cifar10, write_mnist

pytestmark = pytest.mark.data


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}  # path -> (body, mode) with mode "ok" or "truncate"
    hits = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits[self.path] = type(self).hits.get(self.path, 0) + 1
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, mode = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # "truncate" promises the whole body but sends half, then closes the connection.
        self.wfile.write(body if mode == "ok" else body[: len(body) // 2])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _md5(body):
    return hashlib.md5(body).hexdigest()


def _mnist_files(tmp_path):
    folder = tmp_path / "gen"
    write_mnist(folder)
    return {f"{stem}.gz": (folder / f"{stem}.gz").read_bytes() for stem in MNIST_STEMS.values()}


def _serve(base, prefix, files, mode="ok"):
    for name, body in files.items():
        _Handler.routes[f"/{prefix}/{name}"] = (body, mode)
    return {name: f"{base}/{prefix}/{name}" for name in files}


def _mnist_spec(urls, files, md5=None):
    remotes = tuple(Remote(name, tuple(urls[name]) if isinstance(urls[name], tuple) else (urls[name],),
                           (md5 or {}).get(name, _md5(body)), len(body)) for name, body in files.items())
    return DatasetSpec("mnist", remotes, tuple(files))


def test_download_installs_a_verified_dataset_that_loads(server, tmp_path):
    """Good files: the folder appears complete, loads, and no partial folder remains."""
    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, "good", files), files)
    folder, fetched = download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    assert fetched and folder == tmp_path / "store" / "mnist"
    assert os.listdir(tmp_path / "store") == ["mnist"]
    assert load_mnist(folder)[0].shape == (12, 28, 28)


def test_second_run_finds_the_data_and_does_nothing(server, tmp_path):
    """With the dataset in place no request is made and nothing changes."""
    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, "again", files), files)
    download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    before = dict(_Handler.hits)
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "store" / "mnist").iterdir()}
    stream = io.StringIO()
    _, fetched = download_dataset("mnist", tmp_path / "store", spec=spec, stream=stream)
    assert not fetched and "already present" in stream.getvalue()
    assert _Handler.hits == before
    assert stamp == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "store" / "mnist").iterdir()}


def test_truncated_download_leaves_nothing_behind(server, tmp_path):
    """A server that stops halfway: DownloadError saying 'truncated', and the store stays empty."""
    files = _mnist_files(tmp_path)
    urls = _serve(server, "good2", files)
    urls["t10k-images-idx3-ubyte.gz"] = _serve(server, "cut", {"t10k-images-idx3-ubyte.gz": files["t10k-images-idx3-ubyte.gz"]},
                                               mode="truncate")["t10k-images-idx3-ubyte.gz"]
    with pytest.raises(DownloadError, match=r"t10k-images-idx3-ubyte.gz from .*/cut/.*truncated"):
        download_dataset("mnist", tmp_path / "store", spec=_mnist_spec(urls, files), quiet=True)
    assert os.listdir(tmp_path / "store") == []


def test_wrong_checksum_is_refused_and_nothing_is_installed(server, tmp_path):
    """A file whose MD5 differs from the published one stops the install, naming both sums."""
    files = _mnist_files(tmp_path)
    urls = _serve(server, "good3", files)
    spec = _mnist_spec(urls, files, md5={"train-labels-idx1-ubyte.gz": "0" * 32})
    got = _md5(files["train-labels-idx1-ubyte.gz"])
    with pytest.raises(DownloadError, match=rf"train-labels-idx1-ubyte.gz from .* has MD5 {got}, but the published checksum is 0{{32}}"):
        download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    assert os.listdir(tmp_path / "store") == []


def test_a_failing_source_falls_back_to_the_next(server, tmp_path):
    """A 404 at the first URL is reported only if every URL fails; the second one is used."""
    files = _mnist_files(tmp_path)
    good = _serve(server, "good4", files)
    urls = {name: (f"{server}/missing/{name}", good[name]) for name in files}
    folder, fetched = download_dataset("mnist", tmp_path / "store", spec=_mnist_spec(urls, files), quiet=True)
    assert fetched and load_mnist(folder)[1].shape == (12,)


def test_cifar10_archive_is_extracted_into_place(server, tmp_path):
    """A tar.gz laid out like the official archive is verified, extracted and renamed into place."""
    train_x, _, _, _ = write_cifar10(tmp_path / "gen" / "cifar-10-batches-py")
    body = tar_gz_of(tmp_path / "gen" / "cifar-10-batches-py", "cifar-10-batches-py")
    url = _serve(server, "cifar", {"cifar-10-python.tar.gz": body})["cifar-10-python.tar.gz"]
    spec = DatasetSpec("cifar-10-batches-py", (Remote("cifar-10-python.tar.gz", (url,), _md5(body), len(body)),),
                       dl.DATASETS["cifar10"].expected, extract_tar=True)
    folder, _ = download_dataset("cifar10", tmp_path / "store", spec=spec, quiet=True)
    assert os.listdir(tmp_path / "store") == ["cifar-10-batches-py"]
    X_train = load_cifar10(folder)[0]
    assert X_train[0, 0, 0, 0] == train_x[0, 0]


def test_archive_members_outside_the_folder_are_refused(server, tmp_path):
    """A tar whose member would land outside the extraction folder is refused; nothing is written."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    body = buf.getvalue()
    url = _serve(server, "evil", {"cifar-10-python.tar.gz": body})["cifar-10-python.tar.gz"]
    spec = DatasetSpec("cifar-10-batches-py", (Remote("cifar-10-python.tar.gz", (url,), _md5(body), len(body)),),
                       ("data_batch_1",), extract_tar=True)
    with pytest.raises(DownloadError, match=r"refusing archive member '\.\./escaped\.txt'"):
        download_dataset("cifar10", tmp_path / "store", spec=spec, quiet=True)
    assert os.listdir(tmp_path / "store") == [] and not (tmp_path / "escaped.txt").exists()


def test_an_incomplete_existing_folder_is_left_untouched(server, tmp_path):
    """A folder that is there but incomplete is neither used nor overwritten."""
    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, "good5", files), files)
    existing = tmp_path / "store" / "mnist"
    existing.mkdir(parents=True)
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match=r"store/mnist is incomplete: train-images-idx3-ubyte.gz is missing.*"
                                             r"left untouched.*--dir .*store --force"):
        download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    assert os.listdir(existing) == ["notes.txt"]


def test_an_interrupted_download_leaves_nothing_behind(server, tmp_path, monkeypatch):
    """Ctrl-C during the third file: the partial folder is removed."""
    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, "good6", files), files)
    real_fetch, calls = dl._fetch, []

    def fetch_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_fetch(*args, **kwargs)

    monkeypatch.setattr(dl, "_fetch", fetch_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    assert os.listdir(tmp_path / "store") == []


def test_command_line_verifies_published_checksums_even_from_a_mirror(server, tmp_path):
    """`python -m data.download mnist --mirror URL`: generated files fail the published size; exit 1."""
    files = _mnist_files(tmp_path)
    _serve(server, "mirror", files)
    proc = subprocess.run([sys.executable, "-m", "data.download", "mnist", "--dir", str(tmp_path / "store"),
                           "--mirror", f"{server}/mirror", "--quiet"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "bytes long, but the published file is 9912422" in proc.stderr
    assert os.listdir(tmp_path / "store") == []


@pytest.mark.slow
def test_command_line_help_and_bad_name():
    """--help lists the datasets and flags; an unknown dataset exits 2."""
    proc = subprocess.run([sys.executable, "-m", "data.download", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for word in ("cifar10", "mnist", "fashion-mnist", "--dir", "--mirror", "--quiet"):
        assert word in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "data.download", "imagenet"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'imagenet'" in proc.stderr


def test_published_checksums_are_well_formed():
    """Every remote has a 32-hex-digit MD5 and at least one https or http URL ending in its name."""
    for name, spec in dl.DATASETS.items():
        for remote in spec.remotes:
            assert len(remote.md5) == 32 and int(remote.md5, 16) >= 0, name
            assert remote.urls and all(u.startswith(("https://", "http://")) and u.endswith(remote.name)
                                       for u in remote.urls), name


def test_debian_fashion_mnist_files_need_no_download():
    """The four Fashion-MNIST names the downloader expects are the names the loaders and Debian use."""
    assert dl.DATASETS["fashion-mnist"].expected == tuple(f"{s}.gz" for s in MNIST_STEMS.values())
    assert np.all([name.endswith(".gz") for name in dl.DATASETS["mnist"].expected])


def test_progress_bar_on_a_terminal_and_one_line_per_file_elsewhere(server, tmp_path):
    """A terminal sees a redrawn bar with percentages; a pipe sees 'downloading NAME (size)' lines."""
    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, "bar", files), files)
    tty, pipe = FakeTTY(), io.StringIO()
    download_dataset("mnist", tmp_path / "a", spec=spec, stream=tty)
    download_dataset("mnist", tmp_path / "b", spec=spec, stream=pipe)
    assert "\rtrain-images-idx3-ubyte.gz [" in tty.getvalue() and "100.0%" in tty.getvalue()
    lines = pipe.getvalue().splitlines()
    assert lines[0].startswith("downloading train-images-idx3-ubyte.gz (") and lines[-1].startswith("mnist: installed in")


def _install(server, tmp_path, prefix):
    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, prefix, files), files)
    folder, _ = download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    return files, spec, folder


def test_a_damaged_dataset_is_reported_and_force_replaces_only_the_damaged_file(server, tmp_path):
    """A corrupted file fails its checksum: refused with the --force command, then repaired; other files stay."""
    files, spec, folder = _install(server, tmp_path, "repair")
    broken = folder / "t10k-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:-7] + b"garbage")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match=rf"store/mnist is damaged: t10k-images-idx3-ubyte.gz has MD5 [0-9a-f]{{32}}, "
                                            rf"but the published checksum is {_md5(files['t10k-images-idx3-ubyte.gz'])}\. "
                                            rf"It was left untouched.*python -m data.download mnist --dir .*store --force"):
        download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    assert broken.read_bytes().endswith(b"garbage")
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p != broken}
    stream = io.StringIO()
    _, fetched = download_dataset("mnist", tmp_path / "store", spec=spec, stream=stream, force=True)
    assert fetched and "replaced t10k-images-idx3-ubyte.gz in" in stream.getvalue()
    assert broken.read_bytes() == files["t10k-images-idx3-ubyte.gz"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p != broken}
    assert sorted(os.listdir(tmp_path / "store")) == ["mnist"] and load_mnist(folder)[2].shape == (5, 28, 28)


def test_force_fills_an_incomplete_folder_and_keeps_other_files(server, tmp_path):
    """--force on a folder missing files fetches and adds exactly those, leaving the user's own files."""
    files = _mnist_files(tmp_path)
    spec = _mnist_spec(_serve(server, "fill", files), files)
    existing = tmp_path / "store" / "mnist"
    existing.mkdir(parents=True)
    (existing / "notes.txt").write_text("mine")
    download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True, force=True)
    assert sorted(os.listdir(existing)) == sorted([*files, "notes.txt"]) and (existing / "notes.txt").read_text() == "mine"


def test_every_built_in_dataset_can_be_verified_on_disk():
    """Each expected file of each official dataset has a published checksum, so 'already present' is checked."""
    for name, spec in dl.DATASETS.items():
        assert sorted(dl._known_checksums(spec)) == sorted(spec.expected), name
        assert all(remote.size > 0 for remote in spec.remotes), name


class _Unbounded(http.server.BaseHTTPRequestHandler):
    """Serves `body` under the paths "/nolength" (no Content-Length) and "/liar" (a Content-Length of 10)."""

    body = b""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        if self.path == "/liar":
            self.send_header("Content-Length", "10")
        self.end_headers()
        try:
            self.wfile.write(self.body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("path, message", [("/nolength", r"sends more than the published 1000 bytes"),
                                           ("/liar", r"is 10 bytes long, but the published file is 1000")])
def test_the_published_size_bounds_what_is_read_whatever_the_server_says(tmp_path, path, message):
    """A body without Content-Length is cut one byte past the published size; a wrong Content-Length is refused."""
    _Unbounded.body = b"x" * (8 << 20)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unbounded)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    spec = DatasetSpec("mnist", (Remote("train-images-idx3-ubyte.gz", (url,), "0" * 32, 1000),),
                       ("train-images-idx3-ubyte.gz",))
    try:
        with pytest.raises(DownloadError, match=message):
            download_dataset("mnist", tmp_path / "store", spec=spec, quiet=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert os.listdir(tmp_path / "store") == []


def test_a_data_folder_that_is_a_file_fails_in_one_line(tmp_path):
    """`--dir FILE` exits 1 with one line naming the file."""
    (tmp_path / "afile").write_text("")
    proc = subprocess.run([sys.executable, "-m", "data.download", "mnist", "--dir", str(tmp_path / "afile")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert f"cannot use {tmp_path / 'afile'} as the data folder: it is a file, not a folder" in proc.stderr


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Promises `size` bytes, sends a few, then waits until `release` is set."""

    size, release = 0, threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 1000)
        self.wfile.flush()
        self.release.wait(60)

    def log_message(self, *args):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_download_leaves_no_partial_folder(tmp_path, sig, status):
    """SIGTERM or SIGINT while a file streams in: the .partial folder is removed and the command says so."""
    _Stalling.size = dl.DATASETS["mnist"].remotes[0].size
    _Stalling.release.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "data.download", "mnist", "--dir", str(store), "--quiet",
                             "--mirror", f"http://127.0.0.1:{httpd.server_address[1]}/"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not any((p / "mnist" / "train-images-idx3-ubyte.gz").exists() for p in store.glob(".mnist.partial-*")):
            assert time.monotonic() < deadline and proc.poll() is None, "the download never started"
            time.sleep(0.05)
        time.sleep(0.2)  # let the first bytes arrive
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        _Stalling.release.set()
        if proc.poll() is None:
            proc.kill()
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == status and "interrupted" in err and "Traceback" not in err
    assert os.listdir(store) == []
