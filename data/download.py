"""Download a dataset, verify its published checksums, and put it in place atomically.

    python -m data.download cifar10|mnist|fashion-mnist [--dir DIR] [--mirror URL] [--quiet]

Everything is fetched into a temporary folder inside DIR, each file checked against its
published MD5 as it streams in, archives extracted there (refusing members that would land
outside it), and only then is the finished dataset folder renamed into place. An interrupted,
truncated or corrupt download therefore leaves nothing behind, and a dataset already in place
is never written over: a second run finds it and does nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import pathlib
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request

from data.paths import data_dir

__all__ = ["Remote", "DatasetSpec", "DATASETS", "download_dataset", "main"]

CHUNK = 1 << 16
TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Remote:
    """One file to fetch: its name, where from (tried in order) and its published MD5."""

    name: str
    urls: tuple
    md5: str


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset: the folder it ends up in, its files, and whether the first is a tar archive.

    ``expected`` lists the files that must exist in the folder for it to count as present.
    """

    folder: str
    remotes: tuple
    expected: tuple
    extract_tar: bool = False


def _mnist_like(folder, bases, md5s):
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    remotes = tuple(Remote(f"{s}.gz", tuple(b + f"{s}.gz" for b in bases), m) for s, m in zip(stems, md5s))
    return DatasetSpec(folder, remotes, tuple(r.name for r in remotes))


# Official locations and the checksums their publishers give. MNIST's own site now often
# refuses plain downloads, so the mirror torchvision uses follows it; the checksum decides.
DATASETS = {
    "cifar10": DatasetSpec(
        "cifar-10-batches-py",
        (Remote("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                "c58f30108f718f92721af3b95e74349a"),),
        ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
         "batches.meta"),
        extract_tar=True),
    "mnist": _mnist_like(
        "mnist", ("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432", "9fb629c4189551a2d022fa330f9573f3",
         "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion-mnist": _mnist_like(
        "fashion-mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe", "bef4ecab320f06d8554ea6380940ec79",
         "bb300cfdad3c16e7a12a480ee83cd310")),
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
    """Stream url into dest, returning its MD5; raises DownloadError on any network problem."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            bar = _Bar(remote.name, total, stream, quiet)
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.advance(len(chunk))
            finally:
                bar.close()
            if total and bar.done != total:
                raise DownloadError(f"{remote.name} from {url} is truncated: got {bar.done} of {total} bytes.")
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


def _is_present(folder, spec):
    return folder.is_dir() and all((folder / name).is_file() for name in spec.expected)


def download_dataset(name, directory=None, *, spec=None, mirror=None, quiet=False, stream=None):
    """Fetch, verify and install a dataset into ``directory/<its folder>``.

    Args:
        name: "cifar10", "mnist" or "fashion-mnist".
        directory: where datasets live (default: data.paths.data_dir()).
        spec: a DatasetSpec to use instead of DATASETS[name] (for tests and private mirrors).
        mirror: a base URL to fetch every file from instead (the published checksums still apply).
        quiet: print nothing.
        stream: where progress goes (sys.stderr by default).

    Returns:
        (folder, fetched): the dataset's folder, and False if it was already present.

    Shape:
        (no arrays)
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
    if _is_present(final, spec):
        if not quiet:
            print(f"{name}: already present in {final}; nothing to do.", file=stream)
        return final, False
    if final.exists():
        missing = [n for n in spec.expected if not (final / n).is_file()]
        raise DownloadError(f"{final} exists but is not a complete {name} dataset (missing {missing}); it was left "
                            f"untouched. Move it away and run again.")
    directory.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{spec.folder}.partial-", dir=directory))
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
        missing = [n for n in spec.expected if not (staged / n).is_file()]
        if missing:
            raise DownloadError(f"the downloaded {name} lacks {missing}; nothing was installed.")
        staged.rename(final)  # atomic: the folder appears complete or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quiet:
        print(f"{name}: installed in {final}", file=stream)
    return final, True


def main(argv=None):
    """Command-line entry point; returns the exit status (0 done or already present, 1 failed)."""
    p = argparse.ArgumentParser(prog="python -m data.download",
                                description="Download a dataset, verify its published checksums, install it atomically.")
    p.add_argument("name", choices=sorted(DATASETS), help="the dataset")
    p.add_argument("--dir", type=pathlib.Path, default=None,
                   help=f"where datasets live (default: $CHAINRULE_DATA or ~/.cache/chainrule; now {data_dir()})")
    p.add_argument("--mirror", default=None, metavar="URL",
                   help="fetch every file from this base URL instead; the published checksums still apply")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    args = p.parse_args(argv)
    try:
        download_dataset(args.name, args.dir, mirror=args.mirror, quiet=args.quiet)
    except DownloadError as exc:
        print(f"python -m data.download {args.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
