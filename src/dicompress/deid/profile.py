"""The profile as data: which action PS3.15 Table E.1-1 gives an attribute, with options.

Actions (PS3.15 E.1.1 and Table E.1-1 key):
  X remove; Z zero-length (or dummy) value; D non-zero-length dummy value; K keep
  (sequences: keep, and apply the profile to their items); C clean (keep only what is
  known not to identify); U replace a UID by one consistent across the run.
Combinations name what the attribute's type allows. We do not carry every IOD's
attribute types, so a combination takes the choice that keeps every IOD conformant:
X/Z -> Z, X/D, Z/D and X/Z/D -> D, X/Z/U* -> U (a UID), the items' UIDs replaced (a
sequence), Z otherwise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from dicompress.deid import table

REMOVE, ZERO, DUMMY, KEEP, CLEAN, UID = "X", "Z", "D", "K", "C", "U"

#: The options we implement: flag name -> (table column, PS3.16 CID 7050 code, meaning).
OPTIONS = {
    "retain-full-dates": ("full_dates", "113106",
                          "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-modified-dates": ("modified_dates", "113107",
                              "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain-patient-chars": ("patient_chars", "113108", "Retain Patient Characteristics Option"),
    "retain-device-id": ("device_id", "113109", "Retain Device Identity Option"),
    "retain-institution-id": ("institution_id", "113112", "Retain Institution Identity Option"),
    "retain-uids": ("uids", "113110", "Retain UIDs Option"),
    "clean-descriptors": ("descriptors", "113105", "Clean Descriptors Option"),
    "clean-structured-content": ("structured_content", "113104", "Clean Structured Content Option"),
    "clean-graphics": ("graphics", "113103", "Clean Graphics Option"),
    "retain-safe-private": ("safe_private", "113111", "Retain Safe Private Option"),
}
BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_DATA = ("113101", "Clean Pixel Data Option")

_COMBINATIONS = {"X/Z": ZERO, "X/D": DUMMY, "Z/D": DUMMY, "X/Z/D": DUMMY, "X/Z/U*": "U*"}
_PREFERENCE = {KEEP: 0, CLEAN: 1}  # of two options' actions, the one that retains more

#: Private attributes kept by --retain-safe-private: (creator, group, element low byte).
#: A small subset of PS3.15 Table E.3.10-1, the ones describing how the image was
#: acquired (diffusion b-values and directions), which research needs and which
#: carry no identity.
SAFE_PRIVATE = frozenset({
    ("SIEMENS MR HEADER", 0x0019, 0x0C),  # B_value
    ("SIEMENS MR HEADER", 0x0019, 0x0D),  # DiffusionDirectionality
    ("SIEMENS MR HEADER", 0x0019, 0x0E),  # DiffusionGradientDirection
    ("SIEMENS MR HEADER", 0x0019, 0x27),  # B_matrix
    ("GEMS_PARM_01", 0x0043, 0x39),  # slop_int_6..9 (b-value)
    ("Philips MR Imaging DD 001", 0x2001, 0x03),  # Diffusion B-Factor
})


@dataclass(frozen=True)
class Rule:
    name: str
    basic: str
    options: dict[str, str]  # table column -> action, only where the table has one


@functools.cache
def rules() -> tuple[dict[int, Rule], dict[tuple[int, int], Rule], Rule]:
    """(exact tags, masked tags as (mask, value), the private attributes' rule)."""
    exact: dict[int, Rule] = {}
    masked: dict[tuple[int, int], Rule] = {}
    private = None
    for line in table.TABLE.splitlines():
        fields = line.split()
        key, basic = fields[0], fields[1]
        values = fields[2:2 + len(table.OPTIONS)]
        rule = Rule(" ".join(fields[2 + len(table.OPTIONS):]), basic,
                    {column: v for column, v in zip(table.OPTIONS, values) if v != "-"})
        if key == "private":
            private = rule
        elif "x" in key:
            mask = int("".join("0" if c == "x" else "F" for c in key), 16)
            masked[(mask, int(key.replace("x", "0"), 16))] = rule
        else:
            exact[int(key, 16)] = rule
    assert private is not None
    return exact, masked, private


def rule_for(tag: int) -> Rule | None:
    """The table's rule for `tag` (a private tag gets the private attributes' rule)."""
    exact, masked, private = rules()
    rule = exact.get(tag)
    if rule is not None:
        return rule
    for (mask, value), rule in masked.items():
        if tag & mask == value:
            return rule
    if (tag >> 16) & 1:
        return private
    return None


@dataclass(frozen=True)
class Profile:
    """The basic profile and the chosen options (flag names of `OPTIONS`)."""

    options: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = self.options - OPTIONS.keys()
        if unknown:
            raise ValueError(f"unknown de-identification options: {', '.join(sorted(unknown))}")
        if {"retain-full-dates", "retain-modified-dates"} <= self.options:
            raise ValueError("retain-full-dates and retain-modified-dates exclude each other")

    @functools.cached_property
    def _columns(self) -> tuple[str, ...]:
        return tuple(OPTIONS[name][0] for name in sorted(self.options))

    def action(self, rule: Rule) -> str:
        """The action for `rule` under this profile: one of X Z D K C U U*."""
        chosen = [rule.options[c] for c in self._columns if c in rule.options]
        if chosen:
            return min(chosen, key=lambda a: _PREFERENCE.get(a, 9))
        return _COMBINATIONS.get(rule.basic, rule.basic)

    def basic_action(self, rule: Rule) -> str:
        """What the profile does without options (where cleaning could not keep a value)."""
        return _COMBINATIONS.get(rule.basic, rule.basic)

    def codes(self) -> list[tuple[str, str]]:
        """CID 7050 codes of the profile and options, for De-identification Method Code Sequence."""
        return [BASIC_PROFILE] + sorted(OPTIONS[name][1:] for name in self.options)

    def method(self) -> list[str]:
        """De-identification Method (0012,0063): one value (LO, 64 characters) per part."""
        return [f"PS3.15 E.1 {BASIC_PROFILE[1]}"] + [meaning for _, meaning in self.codes()[1:]]
