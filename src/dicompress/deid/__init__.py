"""De-identification: the PS3.15 Annex E Basic Application Level Confidentiality Profile.

table.py      the standard's Table E.1-1 with its option columns (generated)
profile.py    which action an attribute gets under the chosen options
keys.py       UIDs, pseudonyms and date shifts derived from the run's secret key
dates.py      whole-day date shifts;  clean.py  whether free text identifies
deidentify.py the walk over a dataset, and the marking
values.py     an element's VR, whether a kept value fits it, values as text
identifiers.py the identifiers a dataset holds; the Clean Descriptors test for captions
burned_in.py  files whose pixels may show identity; blanking rectangles
files.py      whole files: header rewritten, pixel data copied (or blanked)
"""

from __future__ import annotations

import importlib

from dicompress.errors import DeidError

# Names load from their modules when first used (PEP 562): the CLI reads OPTIONS to build
# its arguments without importing pydicom, which the rest needs.
_EXPORTS = {
    "DeidConfig": "deidentify", "Deidentifier": "deidentify", "DeidReport": "deidentify",
    "collect_identifiers": "identifiers", "descriptor_identifies": "identifiers",
    "BurnedInRefused": "files", "deidentify_file": "files", "preparer": "files",
    "renamed": "files", "OPTIONS": "profile", "Profile": "profile",
}

__all__ = ["BurnedInRefused", "DeidConfig", "DeidError", "DeidReport", "Deidentifier",
           "OPTIONS", "Profile", "collect_identifiers", "descriptor_identifies", "deidentify_file",
           "preparer", "renamed"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
