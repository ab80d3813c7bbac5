"""Whole numbers typed into query strings and headers, read without surprises."""

from __future__ import annotations


def parse_count(text: str | None, *, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative int, or None when it is not one.

    Only ASCII digits count (``str.isdigit`` accepts "²", which ``int`` refuses), and at most
    ``max_digits`` of them (a 5,000-digit value is beyond any id or count, and beyond what
    ``int`` converts)."""
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
