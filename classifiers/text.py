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
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, and replace what identifies a person or an order with a placeholder.

    Order numbers, handles and links carry no routing signal but make every example
    unique; folding them lets the model learn from the words around them.
    """
    text = _ESCAPED_NEWLINE.sub(" ", text)
    text = _URL.sub(" xurlx ", text)
    text = _EMAIL.sub(" xemailx ", text)
    text = _MENTION.sub(" xuserx ", text)
    text = _NUMBER.sub(" 0 ", text)
    return _SPACE.sub(" ", text).strip().lower()


def compose(text: str, title: str | None = None) -> str:
    """The text that is classified: a title (subject line) and the body."""
    if title and title.strip() and title.strip() not in text:
        return f"{title.strip()}\n{text}"
    return text
