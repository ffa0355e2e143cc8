"""Clean Descriptors: a free-text value is kept only when it carries no identifier.

We cannot understand free text, so the test is strict and errs towards removing:
a value goes when it contains any word of a person's name found in the dataset, any
other value the profile removes from the dataset (IDs, accession numbers, addresses,
institution names, ...), or anything shaped like an identifier (a date, a run of five
or more digits, an e-mail address, a phone number).
"""

from __future__ import annotations

import re
import unicodedata

_PATTERNS = (
    (re.compile(r"\d[\d\s./-]{3,}\d"), "a number or date"),  # 5+ characters of digits
    (re.compile(r"\d{5,}"), "a long number"),
    (re.compile(r"[^\s@]+@[^\s@]+\.\w+"), "an e-mail address"),
    (re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b"), "a date"),
    (re.compile(r"\+?\(?\d{2,4}\)?[\s.-]\d{3}[\s.-]\d{3,4}"), "a phone number"),
)


def normalise(text: str) -> str:
    """Case, accents and punctuation folded away; words separated by single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


class Identifiers:
    """The identifying words and phrases of one dataset."""

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.phrases: set[str] = set()

    def add_value(self, value: str) -> None:
        text = normalise(value)
        if len(text) >= 3:
            self.phrases.add(text)

    def add_person(self, value: str) -> None:
        """A PN value: each word of each component identifies (surnames, given names)."""
        self.add_value(value.replace("^", " ").replace("=", " "))
        for word in normalise(value).split():
            if len(word) >= 2:
                self.words.add(word)

    def found_in(self, text: str) -> str | None:
        """Why `text` cannot be kept (what kind of identifier it holds), or None."""
        for pattern, what in _PATTERNS:
            if pattern.search(text):
                return what
        norm = normalise(text)
        if not norm:
            return None
        if self.words.intersection(norm.split()):
            return "a person's name"
        padded = f" {norm} "
        for phrase in self.phrases:
            if f" {phrase} " in padded:
                return "a value removed elsewhere"
        return None
