"""The identifiers a dataset holds (the values the profile takes out of it, at any depth),
and the Clean Descriptors test for text shown outside DICOM (captions, file names).

Either header export holds goes in: a pydicom Dataset, or a `direct.view.HeaderView`
(which gives its text elements itself: an export of such files does not import pydicom)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dicompress.deid.clean import Identifiers
from dicompress.deid.profile import CLEAN, KEEP, Profile, rule_for

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.direct.view import HeaderView

PIXEL_DATA = 0x7FE00010
#: The VRs of text (PS3.5 6.2): the values that can identify someone.
TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
            "UC", "UR", "UT", "UI"}


def _text_elements(ds: Dataset) -> Iterator[tuple[int, str, list[str]]]:
    """(tag, VR, values as text) of every text element of a pydicom Dataset, at any
    depth, File Meta Information and Pixel Data aside."""
    from dicompress.deid.values import values_of

    for tag in list(ds.keys()):
        if tag == PIXEL_DATA or tag >> 16 == 0x0002:
            continue
        try:
            elem = ds[tag]
        except Exception:
            continue  # unreadable: the walk reports it
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from _text_elements(item)
        elif elem.VR in TEXT_VRS:
            yield int(elem.tag), elem.VR, values_of(elem)


def collect_identifiers(ds: Dataset | HeaderView, profile: Profile | None = None
                        ) -> Identifiers:
    """The values the profile takes out of `ds` (at any depth): text kept or shown
    elsewhere (a description, an exported image's caption) must not repeat them."""
    profile = profile or Profile()
    found = Identifiers()
    own = getattr(type(ds), "text_elements", None)  # a HeaderView walks its own bytes
    for tag, vr, values in (own(ds) if own is not None else _text_elements(ds)):
        rule = rule_for(tag)
        if rule is None or tag >> 16 & 1 or profile.action(rule) in (KEEP, CLEAN):
            continue
        for value in values:
            if vr == "PN":
                found.add_person(value)
            else:
                found.add_value(value)
    return found


def descriptor_identifies(ds: Dataset | HeaderView, text: str) -> str | None:
    """Why `text` (a description from `ds`) cannot be shown without identifying, or None:
    the Clean Descriptors test, for captions and file names outside DICOM."""
    return collect_identifiers(ds, Profile(frozenset({"clean-descriptors"}))).found_in(text)
