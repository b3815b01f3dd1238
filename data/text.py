"""Python source as a character corpus: the standard library's own .py files, read offline.

Every machine that runs chainrule has a Python standard library, so this corpus needs no
download. Its folder is ``sysconfig.get_paths()["stdlib"]``; third-party packages installed under
it (``site-packages``, ``dist-packages``) are not the standard library and are left out, as are
``__pycache__`` folders. The files differ between Python versions, so the corpus is the same for
one seed on one installation, not across versions.

Files are split, whole, between validation and training: no file gives text to both. A
character vocabulary is built from the training text; index 0 is reserved for characters the
training text never shows (UNKNOWN_CHAR), which validation text may hold.

Shape letters: N windows (batch), T time steps (characters per window), V vocabulary size.
"""

from __future__ import annotations

import os
import pathlib
import sysconfig

import numpy as np

from layers.validate import integer, real_number

__all__ = ["UNKNOWN_CHAR", "UNKNOWN_INDEX", "stdlib_source_files", "load_python_text",
           "unigram_bits_per_char", "random_windows", "consecutive_windows"]

# Stands for every character not in the training text: U+FFFD, Unicode's own replacement
# character, so that decoded text stays a plain str of single characters.
UNKNOWN_CHAR = "\ufffd"
UNKNOWN_INDEX = 0
# Folders under the stdlib folder that hold other projects' code or compiled files.
_SKIPPED_FOLDERS = frozenset({"site-packages", "dist-packages", "__pycache__"})


def stdlib_source_files(root=None):
    """The .py files of the Python standard library, as sorted paths relative to its folder.

    Args:
        root: the folder to list; None for this interpreter's ``sysconfig.get_paths()["stdlib"]``.

    Returns:
        (root, files): root as a pathlib.Path and a sorted list of POSIX-style relative paths (str),
        site-packages, dist-packages and __pycache__ left out.

    Raises:
        FileNotFoundError: root is not a folder.
    """
    return _list_sources("stdlib_source_files", root)


def _list_sources(fn, root):
    """stdlib_source_files for fn, which the error message names."""
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{fn}: root must be a folder (str or path-like) or None, got {type(root).__name__}.")
    root = pathlib.Path(sysconfig.get_paths()["stdlib"] if root is None else root)
    if not root.is_dir():
        raise FileNotFoundError(f"{fn}: the standard library folder {root} does not exist.")
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in _SKIPPED_FOLDERS]
        rel = pathlib.Path(folder).relative_to(root)
        found += [(rel / name).as_posix() for name in names if name.endswith(".py")]
    return root, sorted(found)


def _read_until(root, files, budget):
    """Read files in order, skipping those that are not UTF-8, until budget characters are read.

    The last file read is cut at the budget, so the text is exactly budget characters long unless
    the files run out first.

    Returns:
        (text, used, rest): the text, the files it came from, the files not yet looked at.
    """
    parts, used, size = [], [], 0
    for position, name in enumerate(files):
        if size >= budget:
            return "".join(parts), used, files[position:]
        try:
            text = (root / name).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text:
            continue
        parts.append(text[:budget - size])
        used.append(name)
        size += len(parts[-1])
    return "".join(parts), used, []


def _codepoints(text):
    """The code points of a str as an int64 array, without a Python loop over characters."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)  # (len(text),)


def load_python_text(max_chars=2_000_000, validation_fraction=0.1, seed=0, root=None):
    """The standard library's Python source as training and validation character ids, split by file.

    The sorted file list is shuffled by a generator seeded with ``seed``; files are taken in that
    order, validation first, until validation holds ``round(validation_fraction * max_chars)``
    characters, then training until it holds ``max_chars``. The file that crosses a cap is cut at
    it, so both caps are met exactly unless the files run out. Files that are not valid UTF-8 are
    skipped. Files are concatenated as they are, newlines untranslated (each normally ends with one).

    The vocabulary is the set of characters in the training text, in code-point order, at indices
    1 to V - 1; index 0 (UNKNOWN_INDEX) is UNKNOWN_CHAR, U+FFFD, which every validation character
    absent from training maps to (U+FFFD itself maps there too).

    Args:
        max_chars: characters of training text (>= 1).
        validation_fraction: the validation text's size as a fraction of max_chars, in (0, 1].
        seed: seed of the file shuffle (an int >= 0).
        root: the folder to read; None for this interpreter's standard library.

    Returns:
        dict with ``train`` and ``val`` (int64 character ids in [0, V)), ``char_to_idx`` (dict
        str -> int), ``idx_to_char`` (list of V one-character str), ``train_files`` and
        ``val_files`` (the relative paths used, in reading order), ``root`` (the folder, str) and
        ``num_unknown_val`` (validation characters mapped to UNKNOWN_INDEX).

    Raises:
        FileNotFoundError: root is not a folder.
        ValueError: the folder holds too little UTF-8 source to give both splits some text.

    Shape:
        train: (max_chars,) unless the files run out
        val: (round(validation_fraction * max_chars),) unless the files run out
    """
    fn = "load_python_text"
    max_chars = integer(fn, "max_chars", max_chars, low=1)
    fraction = real_number(fn, "validation_fraction", validation_fraction, low=0.0, high=1.0, low_open=True)
    seed = integer(fn, "seed", seed, low=0)
    val_chars = max(1, round(fraction * max_chars))

    root, files = _list_sources(fn, root)
    order = np.random.default_rng(seed).permutation(len(files))
    shuffled = [files[i] for i in order]
    val_text, val_files, rest = _read_until(root, shuffled, val_chars)
    train_text, train_files, _ = _read_until(root, rest, max_chars)
    if not train_text or not val_text:
        raise ValueError(f"{fn}: {root} holds too little UTF-8 Python source for both splits "
                         f"({len(val_text)} validation and {len(train_text)} training characters read).")

    # Training ids: rank among the training text's distinct characters, shifted past UNKNOWN_INDEX.
    train_points = _codepoints(train_text)
    vocab_points = np.unique(train_points)  # sorted
    vocab_points = vocab_points[vocab_points != ord(UNKNOWN_CHAR)]
    idx_to_char = [UNKNOWN_CHAR] + [chr(p) for p in vocab_points.tolist()]
    char_to_idx = {char: i for i, char in enumerate(idx_to_char)}
    train_ids = _lookup(vocab_points, train_points)
    val_ids = _lookup(vocab_points, _codepoints(val_text))
    return {
        "train": train_ids, "val": val_ids,
        "char_to_idx": char_to_idx, "idx_to_char": idx_to_char,
        "train_files": train_files, "val_files": val_files, "root": str(root),
        "num_unknown_val": int(np.count_nonzero(val_ids == UNKNOWN_INDEX)),
    }


def _lookup(vocab_points, points):
    """Ids of code points in a sorted vocabulary (index + 1), UNKNOWN_INDEX for those not in it."""
    where = np.searchsorted(vocab_points, points)  # (n,)
    clipped = np.minimum(where, len(vocab_points) - 1)
    found = vocab_points[clipped] == points if len(vocab_points) else np.zeros(len(points), dtype=bool)
    return np.where(found, where + 1, UNKNOWN_INDEX).astype(np.int64)


def _ids(fn, name, ids, *, vocab_size=None, min_length=1):
    """Check a 1-D integer array of character ids, at least min_length long, within [0, vocab_size)."""
    if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
        got = f"dtype {ids.dtype}" if isinstance(ids, np.ndarray) else type(ids).__name__
        raise TypeError(f"{fn}: {name} must be a numpy array of integer character ids, got {got}.")
    if ids.ndim != 1 or len(ids) < min_length:
        raise ValueError(f"{fn}: {name} must be 1-D with at least {min_length} ids, got shape {ids.shape}.")
    if vocab_size is not None and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)]
        raise ValueError(f"{fn}: {name} must hold ids in [0, {vocab_size}) for vocab_size {vocab_size}, "
                         f"got {bad.size} out of range (first: {bad[0]}).")
    return ids


def unigram_bits_per_char(train_ids, val_ids, vocab_size):
    """The unigram baseline: bits per character of the validation text under training frequencies.

    p(c) = (count of c in train + 1) / (len(train) + V), add-one (Laplace) smoothing, so that a
    character unseen in training costs a finite number of bits. The result is
    -mean(log2 p(val_ids)): what a model that ignores context pays per character.

    Args:
        train_ids: training character ids.
        val_ids: validation character ids.
        vocab_size: V, the number of ids (len(idx_to_char)).

    Returns:
        float, bits per character.

    Shape:
        train_ids: (n_train,)
        val_ids: (n_val,)
    """
    fn = "unigram_bits_per_char"
    vocab_size = integer(fn, "vocab_size", vocab_size, low=1)
    train_ids = _ids(fn, "train_ids", train_ids, vocab_size=vocab_size)
    val_ids = _ids(fn, "val_ids", val_ids, vocab_size=vocab_size)
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0  # (V,)
    log2_p = np.log2(counts) - np.log2(counts.sum())
    return float(-log2_p[val_ids].mean())


def _generator(fn, rng):
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(integer(fn, "rng", rng, low=0, hint="pass a np.random.Generator or a seed"))


def random_windows(ids, batch_size, seq_len, rng):
    """Draw N windows of T characters at random starts, with the next character as the target.

    Starts are uniform over every position that leaves room for T + 1 characters, so windows may
    overlap and cross file boundaries. y[i, t] = x[i, t + 1] for t < T - 1, and y[i, T - 1] is the
    character after the window.

    Args:
        ids: the character ids of one split (at least seq_len + 1 of them).
        batch_size: N, windows to draw (>= 1).
        seq_len: T, characters per window (>= 1).
        rng: a np.random.Generator (advanced by the draw) or an int seed.

    Returns:
        (x, y): inputs and targets, int64.

    Shape:
        ids: (n,)
        x, y: (N, T)
    """
    fn = "random_windows"
    batch_size = integer(fn, "batch_size", batch_size, low=1)
    seq_len = integer(fn, "seq_len", seq_len, low=1)
    ids = _ids(fn, "ids", ids, min_length=seq_len + 1)
    rng = _generator(fn, rng)
    starts = rng.integers(0, len(ids) - seq_len, size=batch_size)  # (N,)
    rows = starts[:, None] + np.arange(seq_len + 1)  # (N, T + 1)
    window = ids[rows].astype(np.int64, copy=False)
    return window[:, :-1], window[:, 1:]


def consecutive_windows(ids, seq_len):
    """Cut one split into non-overlapping windows, in order, for evaluation over the whole text.

    Window i covers ids[i T : (i + 1) T] with targets shifted by one; the tail that does not fill
    a window is left out (fewer than T + 1 characters of the text).

    Args:
        ids: the character ids of one split (at least seq_len + 1 of them).
        seq_len: T, characters per window (>= 1).

    Returns:
        (x, y): inputs and targets, int64, with y[i, t] the id after x[i, t].

    Shape:
        ids: (n,)
        x, y: (N, T), N = (n - 1) // T
    """
    fn = "consecutive_windows"
    seq_len = integer(fn, "seq_len", seq_len, low=1)
    ids = _ids(fn, "ids", ids, min_length=seq_len + 1)
    num_windows = (len(ids) - 1) // seq_len
    end = num_windows * seq_len
    x = ids[:end].reshape(num_windows, seq_len).astype(np.int64)  # (N, T)
    y = ids[1:end + 1].reshape(num_windows, seq_len).astype(np.int64)  # (N, T)
    return x, y
