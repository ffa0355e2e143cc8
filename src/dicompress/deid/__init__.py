"""De-identification: the PS3.15 Annex E Basic Application Level Confidentiality Profile.

table.py      the standard's Table E.1-1 with its option columns (generated)
profile.py    which action an attribute gets under the chosen options
keys.py       UIDs, pseudonyms and date shifts derived from the run's secret key
dates.py      whole-day date shifts;  clean.py  whether free text identifies
deidentify.py the walk over a dataset, and the marking
burned_in.py  files whose pixels may show identity; blanking rectangles
files.py      whole files: header rewritten, pixel data copied (or blanked)
"""

from dicompress.deid.deidentify import (DeidConfig, Deidentifier, DeidReport, collect_identifiers,
                                        descriptor_identifies)
from dicompress.errors import DeidError
from dicompress.deid.files import BurnedInRefused, deidentify_file, preparer, renamed
from dicompress.deid.profile import OPTIONS, Profile

__all__ = ["BurnedInRefused", "DeidConfig", "DeidError", "DeidReport", "Deidentifier",
           "OPTIONS", "Profile", "collect_identifiers", "descriptor_identifies", "deidentify_file", "preparer", "renamed"]
