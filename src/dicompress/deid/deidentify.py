"""Applying the profile to a dataset: every attribute, at every depth of sequences."""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from dicompress.deid import keys as K
from dicompress.deid.clean import Identifiers
from dicompress.deid.dates import shift_da, shift_dt
from dicompress.deid.identifiers import collect_identifiers
from dicompress.deid.profile import (CLEAN, CLEAN_PIXEL_DATA, DUMMY, KEEP, REMOVE, SAFE_PRIVATE,
                                     UID, ZERO, Profile, Rule, rule_for)
from dicompress.deid.identifiers import PIXEL_DATA, TEXT_VRS
from dicompress.deid.values import (BINARY_VRS, NUMBER_VRS, check_kept,
                                    empty, names_definition, registered, values_of, vr_of)
from dicompress.pipeline.read import foreign_error
from dicompress.errors import DeidError, DicompressError, InvalidDicomFile

_PATIENT_NAME, _PATIENT_ID, _ISSUER = 0x00100010, 0x00100020, 0x00100021
# X/Z sequences that are Type 2 in their modules (present, maybe empty): emptied, not removed.
_TYPE_2_SEQUENCES = {0x00400555}  # Acquisition Context Sequence (PS3.3 C.7.6.14)
# In a dummy item: the text replaced; what gives the item its structure kept.
_FREE_TEXT_VRS = {"AE", "AS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT", "UR"}
_STRUCTURE = {"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
              "LongCodeValue", "URNCodeValue", "ValueType", "RelationshipType",
              "ContinuityOfContent", "TemplateIdentifier", "MappingResource",
              "GraphicType", "BoundingBoxAnnotationUnits", "AnchorPointAnnotationUnits",
              "GraphicAnnotationUnits"}
_DUMMY = {"AE": "ANONYMOUS", "AS": "000D", "CS": "ANONYMIZED", "DA": "19000101",
          "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0", "UR": "urn:anonymized"}

# Sequences replaced by dummy values whose items are trees (a structured report's content,
# graphic annotations): their codes are kept so the tree stays valid; in any other
# sequence with D (an institution's code, a person's identification code) the codes are
# the identity, and are replaced like all other text.
_STRUCTURED = {0x0040A730, 0x00700001}  # Content Sequence, Graphic Annotation Sequence


@dataclass(frozen=True)
class DeidConfig:
    """What de-identification a run does: picklable, for worker processes."""

    options: frozenset[str] = frozenset()
    key: bytes = b""
    mapping: str | None = None  # CSV of pseudonyms
    allow_burned_in: bool = False
    blank: tuple[tuple[int, int, int, int], ...] = ()  # x, y, width, height

    def settings(self) -> dict:
        """For a journal: the run's choices, the key only by fingerprint."""
        return {"options": sorted(self.options), "key": K.fingerprint(self.key),
                "mapping": str(Path(self.mapping).resolve()) if self.mapping else None,
                "allow_burned_in": self.allow_burned_in, "blank": [list(b) for b in self.blank]}

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"DeidConfig({json.dumps(self.settings())})"


@dataclass
class DeidReport:
    actions: Counter = field(default_factory=Counter)
    #: keyword (or tag) -> why the clean option could not keep it
    cleaned: dict[str, str] = field(default_factory=dict)


class Deidentifier:
    """The profile, key and pseudonyms of a run; `apply(ds)` de-identifies one dataset."""

    def __init__(self, config: DeidConfig) -> None:
        if not config.key:
            raise DeidError("de-identification needs a key")
        self.config = config
        self.profile = Profile(config.options)
        self.mapping = K.load_mapping(config.mapping) if config.mapping else None

    # -- replacements ------------------------------------------------------------------
    def uid(self, value: str) -> str:
        """The replacement of a UID (an HMAC: cheap, so not cached; archives are large)."""
        value = str(value).strip().rstrip("\0")
        return K.replacement_uid(self.config.key, value) if value else value

    def _patient(self, ds: Dataset) -> tuple[str, str, int]:
        """(new Patient ID, new Patient's Name, date shift) of the dataset's patient."""
        original = str(ds.get("PatientID", "") or "").strip()
        issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
        who = f"{issuer}\\{original}" if original else f"name\\{ds.get('PatientName', '')}"
        if self.mapping is not None:
            mapped = self.mapping.get(original)
            if mapped is None:
                raise DeidError("the patient's ID is not in the mapping file"
                                + ("" if original else " (the file has no Patient ID)"))
            return (mapped.patient_id, mapped.patient_name or mapped.patient_id,
                    mapped.date_shift if mapped.date_shift is not None
                    else K.date_shift_days(self.config.key, who))
        new_id = K.pseudonym(self.config.key, "patient", who)
        return new_id, new_id, K.date_shift_days(self.config.key, who)

    # -- the walk ----------------------------------------------------------------------
    def apply(self, ds: Dataset, *, blanked: bool = False) -> DeidReport:
        """De-identify `ds` in place (its File Meta Information too); Pixel Data untouched.
        Safe to call from several threads: each call keeps its file's state to itself."""
        try:
            return copy.copy(self)._apply(ds, blanked)
        except DicompressError:
            raise
        except Exception as exc:
            translated = foreign_error(exc)  # a value pydicom cannot convert or write
            if translated is None:
                raise  # a bug of ours keeps its traceback
            raise translated from exc

    def _apply(self, ds: Dataset, blanked: bool) -> DeidReport:
        report = DeidReport()
        new_id, new_name, self._shift = self._patient(ds)
        self._names = {str(ds.get("PatientName", "") or ""): new_name}
        self._ids = {str(ds.get("PatientID", "") or ""): new_id}
        self._identifiers = (collect_identifiers(ds, self.profile)
                             if self.profile.options & _CLEANS_TEXT else Identifiers())
        self._walk(ds, report)
        self._mark(ds, blanked)
        if getattr(ds, "preamble", None):
            ds.preamble = b"\0" * 128  # free for any use (PS3.10 7.1): text has been seen there
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self._clean_meta(ds, meta)
        return report

    def _clean_meta(self, ds: Dataset, meta: Dataset) -> None:
        """File Meta Information rebuilt from what PS3.10 needs: nothing else of the
        sender's (addresses, AE titles, private information) is kept."""
        kept = {"FileMetaInformationVersion": b"\x00\x01"}
        for keyword in ("MediaStorageSOPClassUID", "TransferSyntaxUID"):
            if keyword in meta:
                kept[keyword] = meta[keyword].value
        if "SOPClassUID" in ds:
            kept["MediaStorageSOPClassUID"] = ds.SOPClassUID
        instance = ds.get("SOPInstanceUID") or (
            meta.get("MediaStorageSOPInstanceUID") and (
                meta.MediaStorageSOPInstanceUID if "retain-uids" in self.profile.options
                else self.uid(meta.MediaStorageSOPInstanceUID)))
        for tag in list(meta.keys()):
            del meta[tag]
        for keyword, value in kept.items():
            setattr(meta, keyword, value)
        if instance:
            meta.MediaStorageSOPInstanceUID = instance

    @staticmethod
    def _element(ds: Dataset, tag: int) -> DataElement:
        try:
            return ds[tag]
        except Exception as exc:  # a value pydicom cannot convert
            raise InvalidDicomFile(f"{Tag(tag)} cannot be read ({type(exc).__name__}: "
                                   f"{exc})") from exc

    def _walk(self, ds: Dataset, report: DeidReport, dummy: str | None = None) -> None:
        """Apply the profile to `ds`. In a `dummy` item (of a sequence to be replaced by
        dummy values) text no row names is replaced too; codes ("structured" and "clean"
        only) and numbers keep the item's structure (a structured report stays a valid
        tree). In a "clean" item (Clean Structured Content, Clean Graphics) text is kept
        when it passes the Clean Descriptors test; names are replaced whatever they say."""
        private_kept: set[int] = set()  # private creator tags whose block keeps an element
        for tag in list(ds.keys()):
            group = tag >> 16
            if group in (0x0000, 0x0002, 0x0004):  # command, File Meta and DICOMDIR groups
                del ds[tag]  # inside a data set: never (AE titles, file IDs)
                continue
            if tag == PIXEL_DATA:
                continue  # left raw and deferred, never loaded
            if tag & 0xFFFF == 0:  # group lengths (retired): wrong once anything goes
                del ds[tag]
                continue
            if 0x6000 <= group <= 0x601E and not group & 1:
                # an overlay: its data and comments are removed (X), so is the rest of
                # its Overlay Plane module, which would be incomplete without them
                del ds[tag]
                report.actions[REMOVE] += 1
                continue
            if tag >> 16 & 1:  # private
                if 0x0010 <= tag & 0xFFFF < 0x0100:
                    continue  # creators: decided once their blocks are done
                if self._safe_private(ds, tag):
                    private_kept.add((tag & 0xFFFF0000) | (tag & 0xFF00) >> 8)
                    report.actions[KEEP] += 1
                else:
                    del ds[tag]
                    report.actions[REMOVE] += 1
                continue
            rule = rule_for(tag)
            if rule is None and tag not in DicomDictionary:
                del ds[tag]  # an attribute no dictionary knows, in an even group: unknown
                report.actions[REMOVE] += 1  # content, as risky as a private one
                continue
            known = None
            if rule is None:
                vr, known = vr_of(ds, tag), dictionary_VR(tag)
                if not dummy and vr not in _LOOK_INSIDE and known not in _LOOK_INSIDE:
                    check_kept(ds, tag, vr)
                    report.actions[KEEP] += 1  # kept as read, never converted: the cheap path
                    continue
                if known in ("PN", "DA", "DT"):  # a name or date no row names: as the
                    rule = _SAFETY_NET[known]   # table treats its kind (Study Date's dates)
            elem = self._element(ds, tag)
            if rule is None:
                if dummy and elem.VR in _FREE_TEXT_VRS and (
                        dummy == "all" or elem.keyword not in _STRUCTURE):
                    if dummy == "clean" and elem.VR != "PN" and not any(
                            self._identifiers.found_in(v) for v in values_of(elem)):
                        report.actions[CLEAN] += 1  # clean text in cleaned content stays
                        continue
                    report.actions[DUMMY] += 1
                    self._dummy(elem, report)
                    continue
                if (elem.VR == "UI" or known == "UI") and not names_definition(elem):
                    report.actions[UID] += 1  # an instance's UID no row names: replaced too
                    self._replace_uids(elem)
                    continue
                if elem.VR == "UR" and elem.keyword not in _URL_DEFINITIONS:
                    report.actions[REMOVE] += 1  # an address (retrieve URLs name the PACS)
                    del ds[tag]
                    continue
                report.actions[KEEP] += 1
                if elem.VR == "SQ":
                    for item in elem.value or ():
                        self._walk(item, report, dummy)
                continue
            self._act(ds, elem, rule, self.profile.action(rule), report)
        for tag in [t for t in ds.keys() if t >> 16 & 1 and 0x10 <= t & 0xFFFF < 0x100]:
            if tag not in private_kept:
                del ds[tag]

    def _safe_private(self, ds: Dataset, tag: int) -> bool:
        if "retain-safe-private" not in self.profile.options:
            return False
        group, element = tag >> 16, tag & 0xFFFF
        creator = ds.get((group << 16) | (element >> 8))
        if creator is None:
            return False
        return (str(creator.value).strip(), group, element & 0xFF) in SAFE_PRIVATE

    def _act(self, ds: Dataset, elem: DataElement, rule: Rule, action: str,
             report: DeidReport) -> None:
        vr, tag = elem.VR, elem.tag
        if action == CLEAN:
            kept = self._clean(elem, report)
            if kept:
                report.actions[CLEAN] += 1
                return
            action = self.profile.basic_action(rule)
        report.actions[action] += 1
        if action == REMOVE:
            del ds[tag]
        elif action == KEEP:
            if vr == "SQ":
                for item in elem.value or ():
                    self._walk(item, report)
        elif tag == _PATIENT_ID or tag == _PATIENT_NAME:
            self._pseudonym(elem)
        elif action == ZERO and vr == "SQ" and rule.basic == "X/Z" and tag not in _TYPE_2_SEQUENCES:
            del ds[tag]  # present with no item breaks a Type 3 sequence; absent does not
            report.actions[REMOVE] += 1
        elif action == ZERO:
            empty(elem)
        elif action == DUMMY:
            self._dummy(elem, report)
        elif action in (UID, "U*"):
            if vr == "UI":
                self._replace_uids(elem)
            elif vr == "SQ":  # X/Z/U*: the items keep their references, UIDs replaced
                for item in elem.value or ():
                    self._walk(item, report)
            else:
                empty(elem)
        else:  # pragma: no cover - the table has no other action
            raise DeidError(f"unknown action {action!r} for {elem.tag}")

    def _pseudonym(self, elem: DataElement) -> None:
        value = str(elem.value or "")
        if not value.strip():
            return  # empty stays empty
        known = self._names if elem.tag == _PATIENT_NAME else self._ids
        new = known.get(value)
        if new is None:  # another patient's, inside a sequence
            new = K.pseudonym(self.config.key, "other", value)
        elem.value = new

    def _replace_uids(self, elem: DataElement) -> None:
        if "retain-uids" in self.profile.options:
            return
        values = [v if registered(v) else self.uid(v) for v in values_of(elem)]
        elem.value = values if elem.VM > 1 else (values[0] if values else elem.value)

    def _dummy(self, elem: DataElement, report: DeidReport) -> None:
        vr = elem.VR
        if vr == "SQ":  # the same items, every value in them a dummy or replaced
            mode = "structured" if elem.tag in _STRUCTURED else "all"
            for item in elem.value or ():
                self._walk(item, report, dummy=mode)
        elif vr == "UI":
            if values_of(elem):
                self._replace_uids(elem)
            else:
                elem.value = K.replacement_uid(self.config.key, "dummy")
        elif vr in BINARY_VRS:
            elem.value = bytes(len(elem.value or b""))
        elif vr in NUMBER_VRS:
            elem.value = 0
        else:
            elem.value = _DUMMY.get(vr, "ANONYMIZED")

    def _clean(self, elem: DataElement, report: DeidReport) -> bool:
        """Whether `elem` can stay (changed as the clean action asks: dates shifted)."""
        vr = elem.VR
        name = elem.keyword or str(elem.tag)
        if vr in ("DA", "DT"):
            if "retain-modified-dates" not in self.profile.options:
                return False
            shift = shift_da if vr == "DA" else shift_dt
            shifted = [shift(v, self._shift) for v in values_of(elem)]
            if any(v is None for v in shifted):
                report.cleaned[name] = "a date that cannot be read"
                return False
            elem.value = shifted if elem.VM > 1 else (shifted[0] if shifted else elem.value)
            return True
        if vr == "TM":
            return True  # whole-day shifts leave the time of day as it was
        if vr == "SQ":  # structured content, graphics: the tree kept, text that names goes
            for item in elem.value or ():
                self._walk(item, report, dummy="clean")
            return True
        if vr in TEXT_VRS:
            for value in values_of(elem):
                why = self._identifiers.found_in(value)
                if why:
                    report.cleaned[name] = why
                    return False
            return True
        if vr in BINARY_VRS:
            return False  # text stored as bytes cannot be read to be cleaned
        return True  # numbers: nothing to clean

    # -- marking -----------------------------------------------------------------------
    def _mark(self, ds: Dataset, blanked: bool) -> None:
        """PS3.15 E.1.1: say what was done (Patient Identity Removed and the method)."""
        ds.PatientIdentityRemoved = "YES"
        codes = self.profile.codes() + ([CLEAN_PIXEL_DATA] if blanked else [])
        ds.DeidentificationMethod = self.profile.method()
        items = Sequence()
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = items
        options = self.profile.options
        ds.LongitudinalTemporalInformationModified = (
            "UNMODIFIED" if "retain-full-dates" in options
            else "MODIFIED" if "retain-modified-dates" in options else "REMOVED")
        if blanked:
            ds.BurnedInAnnotation = "NO"


_URL_DEFINITIONS = {"URNCodeValue", "CodingSchemeURL"}  # names of codes, not addresses
# Names and dates no row lists get the treatment the table gives their kind.
_SAFETY_NET = {"PN": Rule("a name no row lists", "Z", {}),
               "DA": Rule("a date no row lists", "Z", {"full_dates": "K", "modified_dates": "C"}),
               "DT": Rule("a date-time no row lists", "X/D", {"full_dates": "K",
                                                             "modified_dates": "C"})}
_CLEANS_TEXT = {"clean-descriptors", "retain-patient-chars", "clean-structured-content",
                "clean-graphics"}  # options with C on text
_LOOK_INSIDE = {"UI", "UR", "SQ", "PN", "DA", "DT"}  # no row, yet their values may need work

