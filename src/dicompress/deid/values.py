"""Elements as the de-identifying walk sees them: their VR (the dictionary's where the
file does not say), whether a value kept as read is one its VR can hold (PS3.5 6.2),
UIDs that name definitions rather than instances, values as text, and emptying."""

from __future__ import annotations

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom._uid_dict import UID_dictionary

from dicompress.errors import InvalidDicomFile


BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
NUMBER_VRS = {"FL", "FD", "SL", "SS", "SV", "UL", "US", "UV", "AT"}

# UIDs that name a definition, not an instance: never replaced, whatever their root.
_DEFINITION_UIDS = {"TransferSyntaxUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID",
                    "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID",
                    "ImplementationClassUID", "TemplateExtensionCreatorUID",
                    "ReferencedTransferSyntaxUIDInFile", "CodingSchemeRegistry"}

_VALID_VRS = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD",
              "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI",
              "UL", "UN", "UR", "US", "UT", "UV"}
_FIXED_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8}
_MAX_CHARS = {"AE": 16, "AS": 4, "CS": 16, "DA": 18, "DS": 16, "DT": 54, "IS": 12, "SH": 16,
              "TM": 28, "UI": 64, "LO": 64, "PN": 324}


def check_kept(ds: Dataset, tag: int, vr: str) -> None:
    """An element kept as read must be what its VR says: a damaged length can make a
    harmless attribute swallow the identifying ones after it (refused, never copied)."""
    value = raw_value = getattr(ds.get_item(tag), "value", None)  # raw, or converted already
    per_char = 1
    if isinstance(value, (bytes, bytearray)):
        size = _FIXED_SIZE.get(vr)
        if size and len(value) % size:
            raise InvalidDicomFile(f"{Tag(tag)} {vr} has {len(value)} bytes, not a multiple "
                                   f"of {size}")
        value, per_char = bytes(value).decode("latin-1"), 4  # up to 4 bytes a character
    elif isinstance(value, (list, MultiValue)):
        value = "\\".join(str(v) for v in value)
    if not isinstance(value, str) or vr not in _MAX_CHARS:
        return
    limit = _MAX_CHARS[vr] * (per_char if isinstance(raw_value, (bytes, bytearray)) else 1)
    for part in value.rstrip("\0 ").split("\\"):
        if len(part) > limit or any(ord(c) < 0x20 and c != "\x1b" for c in part):
            raise InvalidDicomFile(f"{Tag(tag)} {vr} holds a value no {vr} can hold "
                                   "(a damaged length?)")


def vr_of(ds: Dataset, tag: int) -> str:
    """The VR of an element without converting its value (the dictionary's when the file
    does not say: implicit VR, UN, or an ambiguous VR)."""
    vr = ds.get_item(tag).VR
    if vr is not None and vr not in _VALID_VRS and " or " not in vr:
        raise InvalidDicomFile(f"{Tag(tag)} has the VR {vr!r}, which is none")
    if vr is None or vr == "UN" or " or " in vr:
        try:
            return dictionary_VR(tag)
        except KeyError:
            return vr or "UN"
    return vr


def names_definition(elem: DataElement) -> bool:
    """Whether a UI element names definitions (SOP classes, syntaxes, coding schemes)
    rather than instances, by its keyword."""
    keyword = elem.keyword or ""
    return ("SOPClass" in keyword or "TransferSyntax" in keyword
            or keyword.endswith("ClassUID") or keyword in _DEFINITION_UIDS)


def registered(uid: str) -> bool:
    """A UID of the DICOM registry (or under its root): it names a definition, no one."""
    uid = uid.strip().rstrip("\0")
    return uid in UID_dictionary or uid.startswith("1.2.840.10008.")


def values_of(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, (list, MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def empty(elem: DataElement) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence()
    elif elem.VR in BINARY_VRS:
        elem.value = b""
    elif elem.VR in NUMBER_VRS:
        elem.value = None
    else:
        elem.value = ""
