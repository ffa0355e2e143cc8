"""Decoders for the transfer syntaxes pydicom 3.0 does not know (JPEG XL, PS3.5 8.2.15;
Deflated Image Frame Compression, 8.2.16): pydicom 3.1 has them, with these names."""

from __future__ import annotations

from dicompress import uids

#: UID -> (name, keyword, our plugin module), as pydicom 3.1 names them.
NEW_SYNTAXES = {
    uids.JPEGXLLossless: ("JPEG XL Lossless", "JPEGXLLossless", "dicompress.plugins.jpegxl_decoder"),
    uids.JPEGXLJPEGRecompression: ("JPEG XL JPEG Recompression", "JPEGXLJPEGRecompression",
                                   "dicompress.plugins.jpegxl_decoder"),
    uids.JPEGXL: ("JPEG XL", "JPEGXL", "dicompress.plugins.jpegxl_decoder"),
    uids.DeflatedImageFrameCompression: ("Deflated Image Frame Compression",
                                         "DeflatedImageFrameCompression",
                                         "dicompress.plugins.deflate_frames_decoder"),
}


def decoder_for(uid: str, name: str, keyword: str):
    """pydicom's Decoder for `uid`, made if this pydicom has none.

    pydicom has no public way to add a transfer syntax it does not know (its
    ``register_transfer_syntax`` takes private UIDs only), so for pydicom 3.0 this
    one function teaches it through private names, as pydicom 3.1 has them itself:
    the UID dictionary entry (so ``UID.is_encapsulated`` and ``.name`` answer), the
    ``pydicom.uid`` constant, and the entry of ``_PIXEL_DATA_DECODERS`` that
    ``get_decoder`` reads. tests/test_jpegxl.py fails loudly if these names move.
    """
    import pydicom.uid
    from pydicom.pixels import get_decoder

    try:
        return get_decoder(uid)  # pydicom >= 3.1
    except NotImplementedError:
        pass
    from pydicom._uid_dict import UID_dictionary
    from pydicom.pixels.decoders import base

    UID_dictionary.setdefault(uid, (name, "Transfer Syntax", "", "", keyword))
    if not hasattr(pydicom.uid, keyword):
        setattr(pydicom.uid, keyword, pydicom.uid.UID(uid))
    decoder = base.Decoder(pydicom.uid.UID(uid))
    base._PIXEL_DATA_DECODERS[decoder.UID] = (decoder, "dicompress")
    return decoder


def layout_of(runner):
    """The frame layout pydicom's decode runner describes."""
    from dicompress.layout import FrameLayout

    return FrameLayout(
        rows=runner.rows, columns=runner.columns, samples_per_pixel=runner.samples_per_pixel,
        bits_allocated=runner.bits_allocated, bits_stored=runner.bits_stored,
        pixel_representation=runner.pixel_representation,
        photometric_interpretation=str(runner.photometric_interpretation),
    )


def teach_xyb() -> None:
    """Let pydicom 3.0 accept Photometric Interpretation XYB, as pydicom 3.1 does.

    PS3.3 C.7.6.3.1.2 defines XYB for JPEG XL (1.2.840.10008.1.2.4.112) frames coded in
    libjxl's XYB colour space (lossy colour; decoders give RGB). pydicom 3.0 checks the
    value against its ``PhotometricInterpretation`` enum before any decoder runs, and
    refuses it ("Unknown (0028,0004) 'Photometric Interpretation' value 'XYB'");
    pydicom 3.1 has the member. An Enum takes no new member through a public API, so
    the member is added to the two maps its lookups read (``_member_map_`` for
    ``PhotometricInterpretation[name]``, ``_value2member_map_`` for ``(value)``);
    tests/test_jpegxl.py fails loudly if these names move.
    """
    from pydicom.pixels.common import PhotometricInterpretation

    if "XYB" in PhotometricInterpretation.__members__:  # pydicom >= 3.1, or done
        return
    member = str.__new__(PhotometricInterpretation, "XYB")
    member._name_ = member._value_ = "XYB"
    PhotometricInterpretation._member_map_["XYB"] = member
    PhotometricInterpretation._value2member_map_["XYB"] = member


def register() -> None:
    """Give every new syntax's pydicom Decoder our plugin (idempotent), and teach
    pydicom 3.0 the XYB Photometric Interpretation of JPEG XL colour."""
    from dicompress.plugins import PLUGIN

    teach_xyb()

    for uid, (name, keyword, module) in NEW_SYNTAXES.items():
        decoder = decoder_for(uid, name, keyword)
        if PLUGIN not in decoder.available_plugins:
            try:
                decoder.add_plugin(PLUGIN, (module, "_decode_frame"))
            except ValueError as exc:  # registered before, unavailable here
                if "already" not in str(exc):
                    raise
