"""The output's attributes: Image Pixel as the frames were coded, lossy marking and
derivation (PS3.3 C.7.6.1.1.5), File Meta Information (PS3.10 7.1)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any


from dicompress import uids
from dicompress.codecs import Codec
from dicompress.errors import InvalidDicomFile
from dicompress.layout import FrameLayout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Transfer syntaxes whose decoded pixels differ from what was acquired.
LOSSY_TRANSFER_SYNTAXES = frozenset(
    (uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit, uids.JPEGLSNearLossless, uids.JPEG2000,
     uids.HTJ2K, uids.JPEG2000MC, uids.JPEGXLJPEGRecompression, uids.JPEGXL)
)

# PS3.5 B.2: our own root would be registered; until then a UUID-derived one.
IMPLEMENTATION_CLASS_UID = "2.25.219083617519436327355305566470815263377"
IMPLEMENTATION_VERSION_NAME = "DICOMPRESS_01"

#: A DS value of 16 characters, unique enough to be found in the header bytes: the achieved
#: Lossy Image Compression Ratio, known only once every frame is coded, is patched over it.
PLACEHOLDER_DS = "0.00000000000017"


def output_dataset(ds: Dataset, codec: Codec, layout: FrameLayout,
                   attrs: dict[str, Any], *, transformed: bool = False) -> Dataset:
    """The header of the output: the source's, with the image attributes of what we write.

    A lossy codec marks the output as a new lossy derivative (new SOP Instance UID,
    method, ratio, derivation). Frames `transformed` without being decoded
    (`Codec.from_encoded`: the same JPEG bitstream in another container) add no loss and
    change no Image Pixel attribute: the source's are kept, lossy ones included."""
    out = ds  # the header read from the source; pixel data is written by the writer
    for keyword, value in attrs.items():
        setattr(out, keyword, value)
    for keyword, value in ({} if transformed else codec.output_attributes(layout)).items():
        setattr(out, keyword, value)
    if layout.samples_per_pixel == 1 and "PlanarConfiguration" in out:
        del out.PlanarConfiguration
    for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in out:
            delattr(out, keyword)

    source_lossy = (
        str(ds.file_meta.get("TransferSyntaxUID", "")) in LOSSY_TRANSFER_SYNTAXES
        or str(ds.get("LossyImageCompression", "")) == "01"
    )
    if source_lossy:
        # PS3.3 C.7.6.1.1.5: once lossy, always marked lossy.
        out.LossyImageCompression = "01"
    if not codec.lossless and not transformed:
        mark_lossy(out, codec, source_lossy)

    if "NumberOfFrames" in out or layout.number_of_frames > 1:
        out.NumberOfFrames = layout.number_of_frames

    from pydicom.uid import UID

    out.file_meta.TransferSyntaxUID = UID(codec.transfer_syntax_for(layout))
    complete_file_meta(out)
    return out


# PS3.16 CID 7202 (Source Image Purposes of Reference) and CID 7203 (derivation).
_UNCOMPRESSED_PREDECESSOR = ("121320", "Uncompressed predecessor")
_LOSSY_PREDECESSOR = ("121330", "Lossy compressed predecessor")
_LOSSY_COMPRESSION = ("113040", "Lossy Compression")


def _code(value: str, meaning: str) -> Dataset:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def mark_lossy(out: Dataset, codec: Codec, source_lossy: bool) -> None:
    """Mark `out` as a lossy derivative of the image it was read as (PS3.3 C.7.6.1.1.5).

    Lossy Image Compression "01"; the achieved ratio and the method appended to
    their multi-valued lists (the ratio is a placeholder the writer patches); a new
    SOP Instance UID; the source referenced in Source Image Sequence as the
    uncompressed (or lossy compressed) predecessor; Derivation Description and
    Code Sequence (113040 Lossy Compression), for an Enhanced multi-frame object
    in its Derivation Image Functional Group instead (PS3.3 C.7.6.16.2.6). Image
    Type is left alone: lossy
    compression is told by the attributes above, and making Value 1 DERIVED breaks
    the conditions of modules such as MR Pulse Sequence (dciodvfy reports them).
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.multival import MultiValue

    def values(keyword: str) -> list[str]:
        value = out.get(keyword)
        if value is None or value == "":
            return []
        return [str(v) for v in (value if isinstance(value, MultiValue) else [value])]

    out.LossyImageCompression = "01"
    out.LossyImageCompressionRatio = values("LossyImageCompressionRatio") + [PLACEHOLDER_DS]
    out.LossyImageCompressionMethod = values("LossyImageCompressionMethod") + [codec.lossy_method]

    original = str(out.get("SOPInstanceUID", "") or "")
    references = []
    if original:
        source = Dataset()
        if "SOPClassUID" in out:
            source.ReferencedSOPClassUID = out.SOPClassUID
        source.ReferencedSOPInstanceUID = original
        source.PurposeOfReferenceCodeSequence = [
            _code(*(_LOSSY_PREDECESSOR if source_lossy else _UNCOMPRESSED_PREDECESSOR))
        ]
        references.append(source)
    # The same source and settings give the same new UID: a run repeated (a resumed
    # batch, a gateway resending after a crash) makes a duplicate, never a second image.
    out.SOPInstanceUID = derived_uid(
        original + "\0" + json.dumps(codec.get_config(), sort_keys=True, default=str)
    ) if original else pydicom.uid.generate_uid()

    settings = ", ".join(f"{k} {v}" for k, v in codec.get_config().items()
                         if k not in ("name", "transfer_syntax") and v is not None)
    note = f"Lossy compression by dicompress: {codec.name} ({codec.lossy_method}" + \
        (f"; {settings})" if settings else ")")
    if "SharedFunctionalGroupsSequence" in out and out.SharedFunctionalGroupsSequence:
        _derive_in_functional_groups(out, references, note)
        return
    if references:
        out.SourceImageSequence = references
    previous = str(out.get("DerivationDescription", "") or "")
    out.DerivationDescription = (f"{previous}; {note}" if previous else note)[:1024]
    derivation = list(out.get("DerivationCodeSequence", []))
    derivation.append(_code(*_LOSSY_COMPRESSION))
    out.DerivationCodeSequence = derivation


def _derive_in_functional_groups(out: Dataset, references: list, note: str) -> None:
    """An Enhanced multi-frame object's derivation: an item of the Derivation Image
    Functional Group (PS3.3 C.7.6.16.2.6), Derivation Image Sequence, which holds the
    Derivation Description, Derivation Code Sequence and Source Image Sequence these
    objects do not carry at the top level. The item goes where the source keeps that
    group: into every Per-Frame Functional Groups item if it is per frame there, else
    into the Shared Functional Groups (C.7.6.16: a functional group is one or the
    other); earlier derivations are kept."""
    import copy

    from pydicom.dataset import Dataset

    item = Dataset()
    item.DerivationDescription = note[:1024]
    item.DerivationCodeSequence = [_code(*_LOSSY_COMPRESSION)]
    item.SourceImageSequence = references
    per_frame = list(out.get("PerFrameFunctionalGroupsSequence", []))
    if any("DerivationImageSequence" in group for group in per_frame):
        groups = per_frame
    else:
        groups = [out.SharedFunctionalGroupsSequence[0]]
    for n, group in enumerate(groups):
        existing = list(group.get("DerivationImageSequence", []))
        group.DerivationImageSequence = existing + [item if n == 0 else copy.deepcopy(item)]
    if references:
        # Enhanced CT/MR/XA/... Image modules: Source Image Evidence Sequence is
        # required where Source Image Sequence is present (Hierarchical SOP Instance
        # Reference Macro, PS3.3 C.17.2.1): the source is in this study and series.
        study = Dataset()
        study.StudyInstanceUID = out.get("StudyInstanceUID", "")
        series = Dataset()
        series.SeriesInstanceUID = out.get("SeriesInstanceUID", "")
        instance = Dataset()
        instance.ReferencedSOPClassUID = references[0].get("ReferencedSOPClassUID", "")
        instance.ReferencedSOPInstanceUID = references[0].ReferencedSOPInstanceUID
        series.ReferencedSOPSequence = [instance]
        study.ReferencedSeriesSequence = [series]
        out.SourceImageEvidenceSequence = list(out.get("SourceImageEvidenceSequence", [])) + [study]


def derived_uid(text: str) -> str:
    """A UID under 2.25 made from `text` (a UUID of version 8 of its SHA-256)."""
    return uids.uid_from_digest(hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest())


def complete_file_meta(ds: Dataset) -> None:
    """Give `ds` the preamble and File Meta Information of PS3.10 7.1."""
    import pydicom

    ds.preamble = ds.get("preamble") or b"\0" * 128
    meta = ds.file_meta
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    for keyword, name in (("MediaStorageSOPClassUID", "SOP Class UID"),
                          ("MediaStorageSOPInstanceUID", "SOP Instance UID")):
        if not str(meta.get(keyword, "") or "").strip("\0 "):  # a damaged source's
            raise InvalidDicomFile(f"no {name}: a Part 10 file names it in its File Meta "
                                   "Information (PS3.10 7.1)")
    pydicom.dataset.validate_file_meta(meta, enforce_standard=True)
