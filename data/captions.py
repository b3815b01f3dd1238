"""Digit captions: strips of real handwritten digits captioned with their names, for a CaptioningRNN.

A strip is one to ``max_digits`` of the shipped 8x8 digits (data.digits) laid side by side, left
to right, on a fixed canvas of 8 x 32 pixels (room for four digits); the columns after the last
digit are zeros. Its caption names the digits in the same order, as the course's COCO captions
name what an image shows: ``<START> three one four <END>``, padded with ``<NULL>`` to a common
length. The layout of the returned dict follows the course's ``load_coco_data``.

No digit crosses splits: the digits are first split by ``load_digits(seed=seed)`` into training,
validation and test digits, and the strips of each split are built only from that split's digits.

Shape letters: N strips, F features per strip (8 * 32 = 256), L caption length
(max_digits + 2: the names plus <START> and <END>), K digits per strip at most (max_digits).
"""

from __future__ import annotations

import numpy as np

from data.digits import load_digits
from layers.validate import integer

__all__ = ["DIGIT_NAMES", "SPECIAL_TOKENS", "CANVAS_SHAPE", "MAX_DIGITS_PER_STRIP",
           "load_digit_captions", "decode_captions"]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The course's special words, in the course's order: <NULL> must be 0, the padding id.
SPECIAL_TOKENS = ("<NULL>", "<START>", "<END>", "<UNK>")
DIGIT_SIZE = 8
MAX_DIGITS_PER_STRIP = 4
CANVAS_SHAPE = (DIGIT_SIZE, DIGIT_SIZE * MAX_DIGITS_PER_STRIP)
SPLITS = ("train", "val", "test")
# Words that decode_captions leaves out of the text it returns.
_MARKERS = ("<NULL>", "<START>", "<END>")


def _vocabulary():
    """word_to_idx and idx_to_word: the four special words, then the ten digit names."""
    idx_to_word = list(SPECIAL_TOKENS) + list(DIGIT_NAMES)
    return {word: i for i, word in enumerate(idx_to_word)}, idx_to_word


def _strips(images, labels, num_strips, max_digits, rng, word_to_idx):
    """Draw num_strips strips from one split's digits.

    Each strip's length is uniform in 1..max_digits; its digits are drawn uniformly, with
    replacement, from the split's images.

    Returns:
        canvases (N, 8, 32), captions (N, L) int64, digit labels (N, K) int64 with -1 after the
        strip's last digit.
    """
    num_digits = len(images)
    lengths = rng.integers(1, max_digits + 1, size=num_strips)  # (N,)
    picks = rng.integers(0, num_digits, size=(num_strips, max_digits))  # (N, K)
    used = np.arange(max_digits) < lengths[:, None]  # (N, K)

    tiles = images[picks] * used[:, :, None, None]  # (N, K, 8, 8), unused slots blank
    canvas = np.zeros((num_strips,) + CANVAS_SHAPE, dtype=images.dtype)  # (N, 8, 32)
    canvas[:, :, :DIGIT_SIZE * max_digits] = tiles.transpose(0, 2, 1, 3).reshape(num_strips, DIGIT_SIZE, -1)

    digits = np.where(used, labels[picks], -1)  # (N, K)
    first_name = word_to_idx[DIGIT_NAMES[0]]
    captions = np.full((num_strips, max_digits + 2), word_to_idx["<NULL>"], dtype=np.int64)  # (N, L)
    captions[:, 0] = word_to_idx["<START>"]
    captions[:, 1:-1] = np.where(used, first_name + digits, word_to_idx["<NULL>"])
    captions[np.arange(num_strips), lengths + 1] = word_to_idx["<END>"]
    return canvas, captions, digits


def load_digit_captions(num_train=5000, num_validation=500, num_test=1000, max_digits=4, seed=0,
                        dtype=np.float32, subtract_mean=True):
    """Strips of one to max_digits real digits captioned with their names, split like the digits.

    The 1,797 digits are split by ``load_digits(seed=seed)`` (1,257 training, 180 validation and
    360 test digits); the strips of each split use only that split's digits. A strip's length is
    uniform in 1..max_digits and its digits are drawn uniformly with replacement; each split has
    its own generator, spawned from ``seed``, so changing one split's size leaves the others'
    strips unchanged. The same seed gives the same dict.

    Pixels are in [0, 1] (the digits' 0..16 counts divided by 16). The features are the flattened
    canvases; with subtract_mean the training strips' mean feature vector is subtracted from every
    split (as load_digits does for images). The images are the canvases themselves, uncentered,
    for display.

    Args:
        num_train: training strips (>= 1).
        num_validation: validation strips (>= 0).
        num_test: test strips (>= 0).
        max_digits: most digits on one strip, in [1, 4] (the canvas is four digits wide).
        seed: seed of the digits' split and of the strips (an int >= 0).
        dtype: np.float32 or np.float64 for features and images.
        subtract_mean: subtract the training mean from the features of every split.

    Returns:
        dict with ``word_to_idx`` (<NULL>=0, <START>=1, <END>=2, <UNK>=3, then "zero" to "nine"
        as 4 to 13), ``idx_to_word`` (the list inverse to it), ``mean_features`` (what was
        subtracted; zeros without subtract_mean), and for each split in train, val, test:
        ``{split}_features`` (dtype), ``{split}_captions`` (int64 word ids), ``{split}_images``
        (dtype), ``{split}_digits`` (int64 labels 0..9 of the strip's digits, left to right, -1
        after the last) and ``{split}_image_idxs`` (int64, arange(N): one caption per strip, the
        course's caption-to-feature index).

    Shape:
        {split}_features: (N, F), F = 256
        {split}_captions: (N, L), L = max_digits + 2
        {split}_images: (N, 8, 32)
        {split}_digits: (N, K), K = max_digits
        {split}_image_idxs: (N,)
        mean_features: (F,)
    """
    fn = "load_digit_captions"
    counts = {
        "train": integer(fn, "num_train", num_train, low=1),
        "val": integer(fn, "num_validation", num_validation, low=0),
        "test": integer(fn, "num_test", num_test, low=0),
    }
    max_digits = integer(fn, "max_digits", max_digits, low=1, high=MAX_DIGITS_PER_STRIP,
                         hint=f"the canvas {CANVAS_SHAPE} holds at most {MAX_DIGITS_PER_STRIP} digits")
    seed = integer(fn, "seed", seed, low=0)
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{fn}: dtype must be np.float32 or np.float64, got {np.dtype(dtype)}.")
    if not isinstance(subtract_mean, (bool, np.bool_)):
        raise TypeError(f"{fn}: subtract_mean must be True or False, got {type(subtract_mean).__name__}.")

    digits = load_digits(seed=seed, dtype=dtype, subtract_mean=False)
    word_to_idx, idx_to_word = _vocabulary()
    generators = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(len(SPLITS))]
    out = {"word_to_idx": word_to_idx, "idx_to_word": idx_to_word}
    for split, rng in zip(SPLITS, generators):
        images = digits[f"X_{split}"][:, 0]  # (n, 8, 8)
        canvas, captions, labels = _strips(images, digits[f"y_{split}"], counts[split], max_digits, rng,
                                           word_to_idx)
        out[f"{split}_images"] = canvas
        out[f"{split}_features"] = canvas.reshape(len(canvas), -1)  # (N, F)
        out[f"{split}_captions"] = captions
        out[f"{split}_digits"] = labels
        out[f"{split}_image_idxs"] = np.arange(counts[split], dtype=np.int64)

    num_features = CANVAS_SHAPE[0] * CANVAS_SHAPE[1]
    mean = out["train_features"].mean(axis=0) if subtract_mean else np.zeros(num_features, dtype=dtype)
    for split in SPLITS:
        out[f"{split}_features"] = out[f"{split}_features"] - mean  # a new array, images untouched
    out["mean_features"] = mean
    return out


def decode_captions(captions, idx_to_word):
    """Turn word ids back into text: <NULL> and <START> left out, everything from <END> on dropped.

    Unlike the course's function of the same name, the markers <START> and <END> are not kept in
    the text, so that a decoded caption reads as the digit names alone ("three one four") and
    compares directly with a reference. <UNK> is kept as it is.

    Args:
        captions: integer array of word ids, one caption or a batch of them.
        idx_to_word: list (or tuple) of words, the vocabulary's idx_to_word.

    Returns:
        one str for a 1-D captions array; a list of N str for a 2-D one.

    Shape:
        captions: (L,) or (N, L)
    """
    fn = "decode_captions"
    if not isinstance(idx_to_word, (list, tuple)) or not all(isinstance(w, str) for w in idx_to_word):
        raise TypeError(f"{fn}: idx_to_word must be a list of str (the vocabulary's idx_to_word), "
                        f"got {type(idx_to_word).__name__}.")
    if not isinstance(captions, np.ndarray) or not np.issubdtype(captions.dtype, np.integer):
        got = f"dtype {captions.dtype}" if isinstance(captions, np.ndarray) else type(captions).__name__
        raise TypeError(f"{fn}: captions must be a numpy array of integer word ids, got {got}.")
    if captions.ndim not in (1, 2):
        raise ValueError(f"{fn}: captions must be 1-D (L,) or 2-D (N, L), got shape {captions.shape}.")
    if captions.size and (captions.min() < 0 or captions.max() >= len(idx_to_word)):
        bad = captions[(captions < 0) | (captions >= len(idx_to_word))]
        raise ValueError(f"{fn}: word ids must lie in [0, {len(idx_to_word)}) for a vocabulary of "
                         f"{len(idx_to_word)} words, got {bad.size} out of range (first: {bad[0]}).")
    rows = captions[None] if captions.ndim == 1 else captions
    decoded = []
    for row in rows.tolist():
        words = []
        for idx in row:
            word = idx_to_word[idx]
            if word == "<END>":
                break
            if word not in _MARKERS:
                words.append(word)
        decoded.append(" ".join(words))
    return decoded[0] if captions.ndim == 1 else decoded
