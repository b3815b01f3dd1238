"""Download a dataset, verify its published checksums, and put it in place atomically.

    python -m data.download cifar10|mnist|fashion-mnist [--dir DIR] [--mirror URL] [--force] [--quiet]

Everything is fetched into a temporary folder inside DIR, each file checked against its
published size and MD5 as it streams in (nothing beyond the published size is read, whatever
the server says), archives extracted there (refusing members that would land outside it),
and only then is the finished dataset folder renamed into place. An interrupted (Ctrl-C or
SIGTERM), truncated or corrupt download therefore leaves nothing behind. A dataset already in
place is checked against its published checksums: intact, nothing is done; damaged or
incomplete, it is left untouched and the error gives the ``--force`` command, which fetches the
dataset again and replaces only the files that are missing or fail their checksums.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import os
import pathlib
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request

from data.paths import data_dir

__all__ = ["Remote", "DatasetSpec", "DATASETS", "download_dataset", "main"]

CHUNK = 1 << 16
TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Remote:
    """One file to fetch: its name, where from (tried in order), its published MD5 and size in bytes."""

    name: str
    urls: tuple
    md5: str
    size: int


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset: the folder it ends up in, its files, and whether the first is a tar archive.

    ``expected`` lists the files that must exist in the folder for it to count as present;
    ``checksums`` gives (name, MD5) of installed files that are not themselves remotes (the
    members of an archive), so that what is on disk can be verified.
    """

    folder: str
    remotes: tuple
    expected: tuple
    extract_tar: bool = False
    checksums: tuple = ()


def _mnist_like(folder, bases, md5s, sizes):
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    remotes = tuple(Remote(f"{s}.gz", tuple(b + f"{s}.gz" for b in bases), m, n)
                    for s, m, n in zip(stems, md5s, sizes))
    return DatasetSpec(folder, remotes, tuple(r.name for r in remotes))


# Official locations, the checksums their publishers give and the files' sizes. MNIST's own site
# now often refuses plain downloads, so the mirror torchvision uses follows it; the checksum
# decides. The MD5s of CIFAR-10's extracted batches are those torchvision checks.
DATASETS = {
    "cifar10": DatasetSpec(
        "cifar-10-batches-py",
        (Remote("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                "c58f30108f718f92721af3b95e74349a", 170498071),),
        ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
         "batches.meta"),
        extract_tar=True,
        checksums=(("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                   ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                   ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                   ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                   ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
                   ("test_batch", "40351d587109b95175f43aff81a1287e"),
                   ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"))),
    "mnist": _mnist_like(
        "mnist", ("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432", "9fb629c4189551a2d022fa330f9573f3",
         "ec29112dd5afa0611ce80d1b7f02629c"),
        (9912422, 28881, 1648877, 4542)),
    "fashion-mnist": _mnist_like(
        "fashion-mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe", "bef4ecab320f06d8554ea6380940ec79",
         "bb300cfdad3c16e7a12a480ee83cd310"),
        (26421880, 29515, 4422102, 5148)),
}


class DownloadError(RuntimeError):
    """A dataset could not be fetched or verified; nothing was left behind."""


class _Bar:
    """A byte-count progress bar on a terminal; one line per file elsewhere; nothing when quiet."""

    def __init__(self, name, total, stream, quiet):
        self.name, self.total, self.stream, self.quiet = name, total, stream, quiet
        self.tty = not quiet and getattr(stream, "isatty", lambda: False)()
        self.done = 0
        if not quiet and not self.tty:
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            print(f"downloading {name}{size}", file=stream, flush=True)

    def advance(self, n):
        self.done += n
        if self.tty:
            if self.total:
                frac = self.done / self.total
                bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
                text = f"\r{self.name} [{bar}] {100 * frac:5.1f}% {self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
            else:
                text = f"\r{self.name} {self.done / 1e6:.1f} MB"
            self.stream.write(text + "\x1b[K")
            self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _fetch(url, dest, remote, stream, quiet):
    """Stream url into dest, returning its MD5; raises DownloadError on any network problem.

    The published size bounds everything: a Content-Length that differs is refused before the
    body is read, and a body without one is read to at most one byte past that size.
    """
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.strip() != str(remote.size):
                raise DownloadError(f"{remote.name} from {url} is {declared} bytes long, but the published file is "
                                    f"{remote.size}.")
            bar = _Bar(remote.name, remote.size, stream, quiet)
            with open(dest, "wb") as out:
                try:
                    while bar.done <= remote.size and (chunk := response.read(min(CHUNK, remote.size + 1 - bar.done))):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.advance(len(chunk))
                finally:
                    bar.close()
            if bar.done > remote.size:
                raise DownloadError(f"{remote.name} from {url} sends more than the published {remote.size} bytes.")
            if bar.done != remote.size:
                raise DownloadError(f"{remote.name} from {url} is truncated: got {bar.done} of {remote.size} bytes.")
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, http.client.IncompleteRead):
            reason = f"truncated: got {len(exc.partial)} bytes, {exc.expected} more expected"
        raise DownloadError(f"{remote.name} from {url}: {reason}") from None
    return digest.hexdigest()


def _extract_tar(archive, into):
    """Extract a tar archive, refusing links, devices and paths that leave ``into``."""
    into = into.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                target = (into / m.name).resolve()
                if not (m.isfile() or m.isdir()) or (target != into and into not in target.parents):
                    raise DownloadError(f"{archive.name}: refusing archive member {m.name!r} "
                                        f"(only plain files inside the archive's folder are allowed).")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, members=members, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(into, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive.name} is not a readable tar archive: {exc}") from None


def _md5_of(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _known_checksums(spec):
    """Installed file name -> published MD5, for every expected file whose checksum is known."""
    known = {} if spec.extract_tar else {r.name: r.md5 for r in spec.remotes}
    known.update(dict(spec.checksums))
    return {name: md5 for name, md5 in known.items() if name in spec.expected}


def check_installed(folder, spec):
    """Verify a dataset folder against the published checksums.

    Args:
        folder: the dataset's folder.
        spec: its DatasetSpec.

    Returns:
        (missing, damaged): the expected files that are absent, and (name, MD5 on disk,
        published MD5) for each that fails its checksum. Files without a known checksum are
        only required to exist.
    """
    missing = [name for name in spec.expected if not (folder / name).is_file()]
    damaged = []
    for name, md5 in _known_checksums(spec).items():
        if name not in missing and (got := _md5_of(folder / name)) != md5:
            damaged.append((name, got, md5))
    return missing, damaged


def download_dataset(name, directory=None, *, spec=None, mirror=None, quiet=False, stream=None, force=False):
    """Fetch, verify and install a dataset into ``directory/<its folder>``.

    A folder already in place is verified first. Intact, nothing is fetched. Missing files or
    failed checksums are a DownloadError naming them, unless ``force``: then the dataset is
    fetched and verified again and exactly those files (with ``force``, also expected files
    whose checksum is unknown) are replaced in the folder, each by an atomic rename; any other
    file there is left alone.

    Args:
        name: "cifar10", "mnist" or "fashion-mnist".
        directory: where datasets live (default: data.paths.data_dir()).
        spec: a DatasetSpec to use instead of DATASETS[name] (for tests and private mirrors).
        mirror: a base URL to fetch every file from instead (the published checksums still apply).
        quiet: print nothing.
        stream: where progress goes (sys.stderr by default).
        force: repair a damaged or incomplete dataset folder.

    Returns:
        (folder, fetched): the dataset's folder, and False if it was already present and intact.
    """
    fn = "download_dataset"
    if spec is None:
        if name not in DATASETS:
            raise ValueError(f"{fn}: name must be one of {sorted(DATASETS)}, got {name!r}.")
        spec = DATASETS[name]
    if mirror:
        base = mirror if mirror.endswith("/") else mirror + "/"
        spec = dataclasses.replace(spec, remotes=tuple(dataclasses.replace(r, urls=(base + r.name,))
                                                       for r in spec.remotes))
    stream = stream if stream is not None else sys.stderr
    directory = pathlib.Path(directory) if directory is not None else data_dir()
    final = directory / spec.folder
    again = f"python -m data.download {name} --dir {directory} --force"
    replace = None  # the files to put into an existing folder; None: install the whole folder
    if final.is_dir():
        missing, damaged = check_installed(final, spec)
        if not missing and not damaged and not (force and set(spec.expected) - set(_known_checksums(spec))):
            if not quiet:
                print(f"{name}: already present in {final}, checksums verified; nothing to do.", file=stream)
            return final, False
        if not force:
            wrong = [f"{n} has MD5 {got}, but the published checksum is {md5}" for n, got, md5 in damaged]
            wrong += [f"{n} is missing" for n in missing]
            what = "damaged" if damaged else "incomplete"
            raise DownloadError(f"{final} is {what}: {'; '.join(wrong)}. It was left untouched; fetch the "
                                f"dataset again and replace those files with: {again}")
        unverified = [n for n in spec.expected if n not in _known_checksums(spec)]
        replace = sorted(set(missing) | {n for n, _, _ in damaged} | set(unverified))
    elif final.exists():
        raise DownloadError(f"{final} is a file, not a {name} dataset folder; it was left untouched.")
    try:
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(0, "it is a file, not a folder")
        directory.mkdir(parents=True, exist_ok=True)
        work = pathlib.Path(tempfile.mkdtemp(prefix=f".{spec.folder}.partial-", dir=directory))
    except OSError as exc:
        raise DownloadError(f"cannot use {directory} as the data folder: {exc.strerror or exc}.") from None
    try:
        staged = work / spec.folder
        staged.mkdir()
        for remote in spec.remotes:
            dest = (work if spec.extract_tar else staged) / remote.name
            failures = []
            for url in remote.urls:
                try:
                    got = _fetch(url, dest, remote, stream, quiet)
                except DownloadError as exc:
                    failures.append(str(exc))
                    continue
                if got == remote.md5:
                    break
                failures.append(f"{remote.name} from {url} has MD5 {got}, but the published checksum is {remote.md5}")
            else:
                raise DownloadError(f"could not fetch a verified {remote.name}:\n  " + "\n  ".join(failures))
            if spec.extract_tar:
                _extract_tar(dest, work)
        missing, damaged = check_installed(staged, spec)
        if missing or damaged:
            wrong = [f"lacks {n}" for n in missing] + [f"{n} has MD5 {got}, expected {md5}" for n, got, md5 in damaged]
            raise DownloadError(f"the downloaded {name} {'; '.join(wrong)}; nothing was installed.")
        if replace is None:
            staged.rename(final)  # atomic: the folder appears complete or not at all
        else:
            for file_name in replace:
                os.replace(staged / file_name, final / file_name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quiet:
        done = "installed in" if replace is None else f"replaced {', '.join(replace)} in"
        print(f"{name}: {done} {final}", file=stream)
    return final, True


class _Terminated(BaseException):
    """SIGTERM, raised where the process is so that every cleanup (the partial folder) runs."""


def _on_sigterm(signum, frame):
    raise _Terminated


def main(argv=None):
    """Command-line entry point; returns the exit status (0 done or already present, 1 failed, 2 usage,
    130 or 143 interrupted by SIGINT or SIGTERM)."""
    p = argparse.ArgumentParser(prog="python -m data.download",
                                description="Download a dataset, verify its published checksums, install it atomically.")
    p.add_argument("name", choices=sorted(DATASETS), help="the dataset")
    p.add_argument("--dir", type=pathlib.Path, default=None,
                   help=f"the data folder; the dataset goes into DIR/<its folder> (default: $CHAINRULE_DATA or "
                        f"~/.cache/chainrule; now {data_dir()})")
    p.add_argument("--mirror", default=None, metavar="URL",
                   help="fetch every file from this base URL instead; the published checksums still apply")
    p.add_argument("--force", action="store_true",
                   help="repair a damaged or incomplete dataset: fetch it again and replace the files that are "
                        "missing or fail their checksums (other files in its folder are left alone)")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    args = p.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        download_dataset(args.name, args.dir, mirror=args.mirror, quiet=args.quiet, force=args.force)
    except DownloadError as exc:
        print(f"python -m data.download {args.name}: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated) as exc:
        print(f"python -m data.download {args.name}: interrupted; nothing partial was left behind.", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
