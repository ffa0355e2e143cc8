"""The identifiers a dataset holds (the values the profile takes out of it, at any depth),
and the Clean Descriptors test for text shown outside DICOM (captions, file names)."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicompress.deid.clean import Identifiers
from dicompress.deid.profile import CLEAN, KEEP, Profile, rule_for
from dicompress.deid.values import PIXEL_DATA, TEXT_VRS, values_of


def collect_identifiers(ds: Dataset, profile: Profile | None = None) -> Identifiers:
    """The values the profile takes out of `ds` (at any depth): text kept or shown
    elsewhere (a description, an exported image's caption) must not repeat them."""
    profile = profile or Profile()
    found = Identifiers()

    def collect(ds: Dataset) -> None:
        for tag in list(ds.keys()):
            if tag == PIXEL_DATA or tag >> 16 == 0x0002:
                continue
            try:
                elem = ds[tag]
            except Exception:
                continue  # unreadable: the walk reports it
            if elem.VR == "SQ":
                for item in elem.value or ():
                    collect(item)
                continue
            rule = rule_for(elem.tag)
            if rule is None or elem.VR not in TEXT_VRS or elem.tag >> 16 & 1:
                continue
            if profile.action(rule) in (KEEP, CLEAN):
                continue
            for value in values_of(elem):
                if elem.VR == "PN":
                    found.add_person(value)
                else:
                    found.add_value(value)

    collect(ds)
    return found


def descriptor_identifies(ds: Dataset, text: str) -> str | None:
    """Why `text` (a description from `ds`) cannot be shown without identifying, or None:
    the Clean Descriptors test, for captions and file names outside DICOM."""
    return collect_identifiers(ds, Profile(frozenset({"clean-descriptors"}))).found_in(text)
