"""Text normalisation shared by training and prediction.

Module-level functions only: they are pickled inside model artifacts.
"""

from __future__ import annotations

import re

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ESCAPED_NEWLINE = re.compile(r"\\n")
_ASCII_DIGITS = "0123456789"


def normalise(text: str) -> str:
    """Lower-case, and replace what identifies a person or an order with a placeholder.

    Order numbers, handles and links carry no routing signal but make every example
    unique; folding them lets the model learn from the words around them.

    Each substitution runs only when the text holds what its pattern needs (a literal
    ``\\n``; ``://`` or ``www.``; ``@``; a digit): scanning a short text with a regular
    expression costs more than the rest of this function, and most texts hold none of them.
    Whitespace runs collapse through ``str.split`` (the same characters as ``\\s``).
    """
    if "\\n" in text:
        text = _ESCAPED_NEWLINE.sub(" ", text)
    if "://" in text or "www." in text.lower():  # `www.` is matched ignoring case
        text = _URL.sub(" xurlx ", text)
    if "@" in text:
        text = _EMAIL.sub(" xemailx ", text)
        text = _MENTION.sub(" xuserx ", text)
    # \d is str.isdecimal: beyond ASCII there are other decimal digits, so only an ASCII
    # text without 0-9 can skip the scan
    if not text.isascii() or any(digit in text for digit in _ASCII_DIGITS):
        text = _NUMBER.sub(" 0 ", text)
    return " ".join(text.split()).lower()


def compose(text: str, title: str | None = None) -> str:
    """The text that is classified: a title (subject line) and the body."""
    if title and title.strip() and title.strip() not in text:
        return f"{title.strip()}\n{text}"
    return text
