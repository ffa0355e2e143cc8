"""One file through the pipeline: read -> frames -> encode -> mark -> write -> verify.

The stages are in `dicompress.pipeline`; this module only composes them. Files of the
common shape take the fast path first (`dicompress.direct`: the header as byte ranges of
the parsed file, no pydicom); every other file, and every file the fast path declines,
goes the general way (the header read by pydicom). Both write through the one writer
(`pipeline.write.output_file`) and are read back by the one verifier.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress import direct
from dicompress.codecs import Codec, get_codec
from dicompress.digests import HASHES, file_digest
from dicompress.errors import (AlreadyInTarget, DicompressError, NotAnImage, UnsupportedLayout,
                               UnsupportedTransferSyntax)
from dicompress.layout import FrameLayout
from dicompress.pipeline.decoded import (as_rgb, us_colour, us_colour_as_rgb,
                                         us_planar_configuration)
from dicompress.pipeline.encode import LossStats, frame_encoder, frame_views
from dicompress.pipeline.frames import bounded_map, start_decoding
from dicompress.pipeline.header import DatasetHeader
from dicompress.pipeline.mark import output_dataset
from dicompress.pipeline.read import (check_regular, errors_named, read_header,
                                      transfer_syntax_of)
from dicompress.pipeline.result import Loss, TranscodeOptions, TranscodeResult
from dicompress.pipeline.stored import checked_frames, encoded_frames
from dicompress.pipeline.write import MAX_BOT_OFFSET, output_file

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def transcode_file(source: Path | str, destination: Path | str, target: str | Codec,
                   options: TranscodeOptions | None = None, **option_values) -> TranscodeResult:
    """Transcode one file to `target`, writing `destination` only once verified.

    Every error names the file. Nothing is written at `destination` unless the whole
    output was written and read back as meant (and, for lossless targets, every frame
    decoded bit-exact). `destination` may be `source` itself: the original is replaced
    only then. Options are given as a `TranscodeOptions`, or as its fields by keyword.

    Raises
    ------
    NotDicom, NotAnImage
        The file is not DICOM, or carries no pixel data (callers skip these).
    DicompressError
        Anything else that stopped this file (a damaged file, a layout the target cannot
        code, a failed verification, the disk).
    """
    if options is None:
        options = TranscodeOptions(**option_values)
    elif option_values:
        options = dataclasses.replace(options, **option_values)
    source, destination = Path(source), Path(destination)
    with errors_named(source):
        return _transcode(source, destination, get_codec(target), options)


def _transcode(source: Path, destination: Path, codec: Codec,
               options: TranscodeOptions) -> TranscodeResult:
    if options.digest is not None and options.digest not in HASHES:  # before anything is written
        raise UnsupportedTransferSyntax(f"unknown hash {options.digest!r}: one of {', '.join(HASHES)}")
    threads = options.threads if options.threads is not None else (os.cpu_count() or 1)
    size = check_regular(source)  # a FIFO named *.dcm must not hang the run
    if options.prepare is None and not options.extended_offsets:  # the bulk of an archive
        done = direct.transcode(source, destination, codec, size=size, options=options,
                                threads=threads)
        if done is not None:
            return done
    return _general(source, destination, codec, options, threads, size)


def _general(source: Path, destination: Path, codec: Codec, options: TranscodeOptions,
             threads: int, size: int) -> TranscodeResult:
    """The general path: the header read by pydicom, frames decoded by pydicom's decoders."""
    result = TranscodeResult(source=source, size_in=size, lossy=not codec.lossless)
    if options.digest:
        result.digest_in = file_digest(source, options.digest)
    ds = read_header(source)
    result.modality = str(ds.get("Modality", ""))
    result.transfer_syntax_in = transfer_syntax_of(ds)
    if "PixelData" not in ds:
        raise NotAnImage("no Pixel Data (not an image)")
    declared = FrameLayout.from_dataset(ds)
    if options.skip_same_syntax:
        try:
            same = codec.transfer_syntax_for(declared) == result.transfer_syntax_in
        except DicompressError:
            same = False
        if same:
            from pydicom.uid import UID

            raise AlreadyInTarget(f"already {UID(result.transfer_syntax_in).name}")
    if declared.bits_allocated == 1:
        codec.check_layout(declared)  # raises for codecs that need whole bytes
    if codec.takes_encoded(result.transfer_syntax_in):
        return _recoded(source, destination, codec, options, threads, ds, declared, result)

    layout, attrs, first, frames = start_decoding(source, ds, declared)
    if us_colour_as_rgb(us_colour(ds), layout, codec):
        layout, attrs, first, frames = as_rgb(layout, attrs, first, frames)
    layout = us_planar_configuration(ds, layout)
    codec.check_layout(layout)
    frame_filter = options.prepare(ds, layout) if options.prepare is not None else None
    stats = LossStats(frame_views(ds))  # read before the header becomes the output's
    out = output_dataset(ds, codec, layout, attrs)
    result.transfer_syntax_out = str(out.file_meta.TransferSyntaxUID)

    many = layout.number_of_frames > 1
    codec_threads = 1 if many else (options.codec_threads or threads)
    # every frame must match frame 1
    encode = frame_encoder(codec, layout, first.shape, first.dtype,
                           verify=options.verify and (options.decode_check or not codec.lossless),
                           codec_threads=codec_threads, frame_filter=frame_filter, stats=stats)
    extended = options.extended_offsets
    if extended is None:  # auto: when offsets might pass 4 GiB
        extended = (codec.encapsulated and
                    layout.frame_bytes * layout.number_of_frames * 1.05 > MAX_BOT_OFFSET)
    stored_bytes = layout.pixel_data_bytes
    with output_file(destination, DatasetHeader(out), layout,
                     pixels="encapsulated" if codec.encapsulated else "native",
                     extended_offsets=bool(extended), verify=options.verify,
                     before_replace=options.before_replace,
                     digest=options.digest) as (writer, written):
        for data in bounded_map(lambda item: encode(item[1], index=item[0]),
                                enumerate(itertools.chain([first], frames)),
                                threads if many else 1):
            writer.add(data)
        del first
        ratio = None if codec.lossless else stored_bytes / max(1, writer.encoded_bytes)
        writer.finish(patch=f"{ratio:.4g}" if ratio is not None else None)
    result.verified = written.verified
    result.size_out = written.size
    result.digest_out = written.digest
    result.frames = writer.frames
    result.ratio_pixels = stored_bytes / max(1, writer.encoded_bytes)
    if stats.count:
        result.loss = Loss(stats.psnr, stats.max_error, stats.max_abs_error_modality,
                           stats.max_display_error, stats.window)
    result.destination = destination
    return result


def _recoded(source: Path, destination: Path, codec: Codec, options: TranscodeOptions,
             threads: int, ds: Dataset, layout: FrameLayout,
             result: TranscodeResult) -> TranscodeResult:
    """Frames transformed from the source's encoding without being decoded (a JPEG
    recompressed as JPEG XL, and back): no new loss, so no new UID and no new lossy
    marking (PS3.5 8.2.15); the transform checks its own round trip."""
    codec.check_layout(layout)
    syntax_in = result.transfer_syntax_in
    # before the header changes; each checked against it before native code sees it
    frames = checked_frames(encoded_frames(source, ds, layout.number_of_frames), syntax_in,
                            layout)
    if options.prepare is not None and options.prepare(ds, layout) is not None:
        raise UnsupportedLayout(f"{codec.name} transforms the frames as they are encoded: "
                                "blanking needs them decoded; choose another target")
    out = output_dataset(ds, codec, layout, {}, transformed=True)
    result.transfer_syntax_out = str(out.file_meta.TransferSyntaxUID)
    result.lossy = False

    def recode(fragment: bytes) -> bytes:
        data = codec.from_encoded(fragment, syntax_in, layout)
        if data is None:
            raise UnsupportedLayout(f"{codec.name} cannot take this frame as it is encoded")
        return data

    many = layout.number_of_frames > 1
    with output_file(destination, DatasetHeader(out), layout, pixels="encapsulated",
                     verify=options.verify, before_replace=options.before_replace,
                     digest=options.digest) as (writer, written):
        for data in bounded_map(recode, frames, threads if many else 1):
            writer.add(data)
        writer.finish()
    result.verified = written.verified
    result.size_out = written.size
    result.digest_out = written.digest
    result.frames = writer.frames
    result.ratio_pixels = layout.pixel_data_bytes / max(1, writer.encoded_bytes)
    result.destination = destination
    return result


__all__ = ["TranscodeOptions", "TranscodeResult", "transcode_file"]
