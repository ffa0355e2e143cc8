"""pydicom encoding plugin: every syntax pydicom 3.0 has an Encoder for, through the
dicompress codec table (``ds.compress(uid, encoding_plugin="dicompress")``).

RLE Lossless, JPEG-LS lossless and near-lossless, JPEG 2000 lossless and lossy: the
same codecs `transcode` uses (`dicompress.codecs.get_codec` by transfer syntax UID),
so the codestream's precision and sign follow Bits Stored and Pixel Representation.
pydicom 3.0 has no Encoder for JPEG baseline/extended or HTJ2K; `dicompress.compress`
writes those.

Options: pydicom's own (``jls_error``; ``j2k_cr`` or ``j2k_psnr``, one value: a
dicompress J2K codestream has ``layers`` that each double the quality) or the codec's
(``near``, ``ratio``, ``psnr``, ``resolutions``, ...; `dicompress.codecs` lists them).

Colour: pydicom's ``compress`` keeps the dataset's Photometric Interpretation, so RGB
is coded component by component (no multi-component transform, which would make it
YBR_RCT or YBR_ICT, PS3.5 8.2.4); a dataset that says YBR_RCT or YBR_ICT holds RGB
pixels that are coded with the transform, as pydicom's pylibjpeg plugin does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dicompress import uids

_SYNTAXES = (uids.RLELossless, uids.JPEGLSLossless, uids.JPEGLSNearLossless,
             uids.JPEG2000Lossless, uids.JPEG2000)
ENCODER_DEPENDENCIES = {
    uids.RLELossless: ("numpy",),
    uids.JPEGLSLossless: ("numpy", "imagecodecs>=2024.1.1"),
    uids.JPEGLSNearLossless: ("numpy", "imagecodecs>=2024.1.1"),
    uids.JPEG2000Lossless: ("numpy", "glymur>=0.12"),
    uids.JPEG2000: ("numpy", "glymur>=0.12"),
}
#: Photometric Interpretations that say "RGB pixels, coded with the colour transform".
_TRANSFORMED = {"YBR_RCT": "RGB", "YBR_ICT": "RGB"}


def is_available(uid: str) -> bool:
    return uid in _SYNTAXES


def _encode_frame(src: bytes, runner) -> bytes:
    """One frame of pixels handed over by pydicom, encoded by the dicompress codec."""
    from dicompress.codecs import get_codec
    from dicompress.layout import FrameLayout

    if runner.get_option("byteorder", "<") != "<":
        raise ValueError("only little-endian input is supported")
    codec = get_codec(str(runner.transfer_syntax))
    codec = codec.configure(**_options(codec, runner))
    photometric = str(runner.photometric_interpretation)
    layout = FrameLayout(
        rows=runner.rows, columns=runner.columns, samples_per_pixel=runner.samples_per_pixel,
        bits_allocated=runner.bits_allocated, bits_stored=runner.bits_stored,
        pixel_representation=runner.pixel_representation,
        photometric_interpretation=_TRANSFORMED.get(photometric, photometric),
    )
    implied = codec.output_attributes(layout).get("PhotometricInterpretation", photometric)
    if implied != photometric and photometric not in _TRANSFORMED:
        # The codec would transform the colour, and pydicom would keep saying RGB:
        # coded component by component instead (what a YBR_FULL layout means to it).
        layout = dataclasses.replace(layout, photometric_interpretation="YBR_FULL")
    codec.check_layout(layout)
    if (runner.samples_per_pixel > 1 and runner.planar_configuration == 1
            and runner.transfer_syntax in (uids.JPEG2000Lossless, uids.JPEG2000)):
        # A J2K codestream holds component images; pydicom 3.0 reads what its J2K
        # decoders give back by the dataset's Planar Configuration, which its compress()
        # keeps: 1 would be misread (PS3.5 8.2.4 wants 0).
        raise ValueError("Planar Configuration 1 would be kept by pydicom's compress() and "
                         "misread after decoding (JPEG 2000 frames are colour-by-pixel): "
                         "use dicompress.compress(ds, ...), which sets it to 0")
    return codec.encode_frame(_frame(src, runner, layout), layout)


def _options(codec, runner) -> dict:
    """The codec's settings from pydicom's options and the codec's own names."""
    options = {spec.name: runner.get_option(spec.name) for spec in codec.specs
               if runner.get_option(spec.name) is not None}
    error = runner.get_option("jls_error")
    if error:
        if codec.spec("near") is None:
            raise ValueError(f"jls_error is for JPEG-LS Near Lossless, not {codec.transfer_syntax}")
        options["near"] = int(error)
    for name, ours in (("j2k_cr", "ratio"), ("j2k_psnr", "psnr")):
        values = runner.get_option(name)
        if values:
            if codec.spec(ours) is None:
                raise ValueError(f"{name} is for JPEG 2000 (lossy), not {codec.transfer_syntax}")
            if len(values) != 1:
                raise ValueError(f"give one {name} value: dicompress's J2K layers each "
                                 "double the quality (the 'layers' option)")
            options[ours] = float(values[0])
    return options


def _frame(src: bytes, runner, layout) -> np.ndarray:
    """`src` as the codec takes it: rows x columns [x samples] in the Bits Allocated
    container. pydicom hands over the smallest container of Bits Stored, and frames of
    a dataset with Planar Configuration 1 colour-by-plane (JPEG-LS: arrays too)."""
    dtype = layout.dtype
    pixels = layout.rows * layout.columns * layout.samples_per_pixel
    have = len(src) // pixels if pixels else dtype.itemsize
    arr = np.frombuffer(src, dtype=f"<{dtype.kind}{have}", count=pixels)
    arr = arr.astype(dtype, copy=False)
    samples = layout.samples_per_pixel
    planar = (samples > 1 and runner.planar_configuration == 1
              and (not runner.is_array or runner.transfer_syntax in
                   (uids.JPEGLSLossless, uids.JPEGLSNearLossless)))
    if planar:
        return np.ascontiguousarray(arr.reshape(samples, layout.rows, layout.columns)
                                    .transpose(1, 2, 0))
    return arr.reshape(layout.frame_shape)
