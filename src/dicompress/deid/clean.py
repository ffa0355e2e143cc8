"""Clean Descriptors: a free-text value is kept only when it carries no identifier.

We cannot understand free text, so the test is strict and errs towards removing:
a value goes when it contains any word of a person's name found in the dataset (any
part of a name in a script written without spaces, such as Chinese or Japanese), any
other value the profile removes from the dataset or any word of four letters or more
of one (IDs, accession numbers, addresses, institution names, ...; punctuation and
spacing ignored), or anything shaped like an identifier (a date, a run of five or more
digits, an e-mail address, a phone number).
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


def _unspaced(text: str) -> bool:
    """Whether `text` is in a script written without spaces between words (CJK, Thai)."""
    return any(0x2E80 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF or
               0xF900 <= ord(c) <= 0xFAFF or 0x0E00 <= ord(c) <= 0x0E7F or
               0x3040 <= ord(c) <= 0x30FF for c in text)


def compact(text: str) -> str:
    """`normalise`d, then without the spaces: 'AB-1234' and 'ab 1234' both 'ab1234'."""
    return normalise(text).replace(" ", "")


def normalise(text: str) -> str:
    """Case, accents and punctuation folded away; words separated by single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


class Identifiers:
    """The identifying words and phrases of one dataset."""

    def __init__(self) -> None:
        self.words: set[str] = set()  # whole words that identify
        self.phrases: set[str] = set()  # compacted values, found anywhere in compacted text
        self.fragments: set[str] = set()  # name parts in unspaced scripts, found anywhere

    def add_value(self, value: str) -> None:
        text = normalise(value)
        if len(compact(value)) >= 3:
            self.phrases.add(compact(value))
        for word in text.split():
            if len(word) >= 4 and not word.isdigit():
                self.words.add(word)  # "St Elsewhere Hospital": "elsewhere" alone identifies
            if _unspaced(word):
                self.fragments.add(word)

    def add_person(self, value: str) -> None:
        """A PN value: each word of each component identifies (surnames, given names)."""
        self.add_value(value.replace("^", " ").replace("=", " "))
        for word in normalise(value.replace("^", " ").replace("=", " ")).split():
            if _unspaced(word):
                self.fragments.add(word)  # 王 in 王先生, 山田 in 山田太郎
                self.fragments.update(word[i:i + 2] for i in range(len(word) - 1))
                if len(word) <= 2:
                    self.fragments.add(word)
            elif len(word) >= 2:
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
            return "a name or a word of a value removed elsewhere"
        packed = norm.replace(" ", "")
        if any(fragment in packed for fragment in self.fragments):
            return "a person's name"
        if any(phrase in packed for phrase in self.phrases):
            return "a value removed elsewhere"
        return None
