"""chainrule datasets that need no download: ``load_digits`` (real 8x8 handwritten digits,
shipped in this folder; see data/README.md) and ``make_spiral`` (the classic toy set)."""

from data.digits import DIGITS_PATH, DIGITS_SHA256, load_digits, make_spiral

__all__ = ["DIGITS_PATH", "DIGITS_SHA256", "load_digits", "make_spiral"]
