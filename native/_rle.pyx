# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin wrapper of native/rle.c: check arguments, release the GIL, map error codes.

Private: the public surface is :mod:`dicompress.rle`.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport malloc, free

import threading

from dicompress.errors import CorruptPixelData

# Decoding 16/32-bit frames needs a plane-sized scratch buffer; a fresh one per
# frame costs page faults that show up next to a 1 GB/s decoder, so each thread
# keeps one (up to _SCRATCH_KEEP bytes) for the frames that follow.
_SCRATCH_KEEP = 64 * 1024 * 1024
_local = threading.local()


cdef bytearray _scratch(size_t size):
    buf = getattr(_local, "scratch", None)
    if buf is not None and len(buf) >= size:
        return buf
    buf = bytearray(size)
    if size <= _SCRATCH_KEEP:
        _local.scratch = buf
    return buf


cdef extern from "rle.h" nogil:
    int DCMP_RLE_OK
    int DCMP_RLE_INVALID_ARGUMENT
    int DCMP_RLE_OUTPUT_TOO_SMALL
    int DCMP_RLE_HEADER_TRUNCATED
    int DCMP_RLE_SEGMENT_COUNT
    int DCMP_RLE_SEGMENT_MISMATCH
    int DCMP_RLE_OFFSET_INVALID
    int DCMP_RLE_SEGMENT_SHORT
    int DCMP_RLE_SEGMENT_LONG

    ctypedef struct dcmp_rle_layout:
        size_t rows
        size_t columns
        int samples_per_pixel
        int bytes_per_sample
        int planar

    ctypedef struct dcmp_rle_report:
        int segment
        size_t expected
        size_t actual

    int dcmp_rle_segment_count(const dcmp_rle_layout *layout)
    size_t dcmp_rle_frame_size(const dcmp_rle_layout *layout)
    size_t dcmp_rle_encode_workspace(const dcmp_rle_layout *layout)
    ptrdiff_t dcmp_rle_encode(const uint8_t *src, size_t src_len,
                              const dcmp_rle_layout *layout,
                              uint8_t *work, size_t work_len)
    int dcmp_rle_gather(const uint8_t *work, const dcmp_rle_layout *layout,
                        uint8_t *dst, size_t dst_len)
    size_t dcmp_rle_decode_scratch(const dcmp_rle_layout *layout)
    int dcmp_rle_decode(const uint8_t *src, size_t src_len,
                        const dcmp_rle_layout *layout,
                        uint8_t *dst, size_t dst_len,
                        uint8_t *scratch, size_t scratch_len,
                        dcmp_rle_report *report)


cdef dcmp_rle_layout make_layout(rows, columns, samples_per_pixel, bytes_per_sample,
                                 planar) except *:
    if rows < 1 or columns < 1:
        raise ValueError(f"RLE needs at least one row and column, got {rows}x{columns}")
    if bytes_per_sample not in (1, 2, 4, 8):
        raise ValueError(
            f"RLE encodes 8, 16, 32 or 64 bits allocated, not {bytes_per_sample * 8}"
        )
    nseg = samples_per_pixel * bytes_per_sample
    if samples_per_pixel < 1 or nseg > 15:
        raise ValueError(
            f"{samples_per_pixel} samples of {bytes_per_sample * 8} bits need {nseg} "
            "RLE segments; PS3.5 G.2 allows at most 15"
        )
    cdef dcmp_rle_layout layout
    layout.rows = rows
    layout.columns = columns
    layout.samples_per_pixel = samples_per_pixel
    layout.bytes_per_sample = bytes_per_sample
    layout.planar = 1 if planar else 0
    return layout


def encode(const uint8_t[::1] src not None, size_t rows, size_t columns,
           int samples_per_pixel, int bytes_per_sample, bint planar=False):
    """Return one RLE fragment for a frame of little-endian samples."""
    cdef dcmp_rle_layout layout = make_layout(
        rows, columns, samples_per_pixel, bytes_per_sample, planar
    )
    cdef size_t frame = dcmp_rle_frame_size(&layout)
    if <size_t>src.shape[0] != frame:
        raise ValueError(
            f"a {rows}x{columns} frame of {samples_per_pixel} x {bytes_per_sample * 8}-bit "
            f"samples is {frame} bytes, got {src.shape[0]}"
        )
    cdef size_t work_len = dcmp_rle_encode_workspace(&layout)
    if work_len == 0:
        raise ValueError("frame too large to encode")
    cdef uint8_t *work = <uint8_t *>malloc(work_len)
    if work == NULL:
        raise MemoryError()
    cdef ptrdiff_t size
    cdef uint8_t *dst
    cdef int rc
    try:
        with nogil:
            size = dcmp_rle_encode(&src[0], frame, &layout, work, work_len)
        if size < 0:
            raise ValueError(f"RLE encoder failed with code {size}")
        out = PyBytes_FromStringAndSize(NULL, size)
        dst = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            rc = dcmp_rle_gather(work, &layout, dst, size)
        if rc != DCMP_RLE_OK:
            raise ValueError(f"RLE encoder failed to assemble the fragment (code {rc})")
        return out
    finally:
        free(work)


cdef str describe(int code, dcmp_rle_report *report, int nsegments):
    cdef int seg = report.segment
    if code == DCMP_RLE_HEADER_TRUNCATED:
        return (f"the fragment is {report.actual} bytes, shorter than the "
                f"{report.expected}-byte RLE header")
    if code == DCMP_RLE_SEGMENT_COUNT:
        return (f"RLE header says {report.actual} segments; "
                "PS3.5 G.5 allows 1 to 15")
    if code == DCMP_RLE_SEGMENT_MISMATCH:
        return (f"RLE header says {report.actual} segments but the image needs "
                f"{report.expected} (samples per pixel x bytes per sample)")
    if code == DCMP_RLE_OFFSET_INVALID:
        if seg == 0:
            return f"RLE segment 1 starts at offset {report.actual}; it must start at 64"
        return (f"RLE segment {seg + 1} offset {report.actual} is not after the "
                f"previous segment (offset {report.expected}) and inside the fragment")
    if code == DCMP_RLE_SEGMENT_SHORT:
        return (f"RLE segment {seg + 1} of {nsegments} ends after {report.actual} bytes; "
                f"the image needs {report.expected}")
    if code == DCMP_RLE_SEGMENT_LONG:
        return (f"RLE segment {seg + 1} of {nsegments} holds more data than the "
                f"{report.expected} bytes the image needs")
    if code == DCMP_RLE_OUTPUT_TOO_SMALL:
        return "output buffer too small"
    return f"invalid arguments (code {code})"


def decode(const uint8_t[::1] src not None, uint8_t[::1] dst not None, size_t rows,
           size_t columns, int samples_per_pixel, int bytes_per_sample,
           bint planar=False):
    """Decode one RLE fragment into `dst` (little-endian samples).

    Raises CorruptPixelData when the fragment disagrees with itself or the layout.
    """
    cdef dcmp_rle_layout layout = make_layout(
        rows, columns, samples_per_pixel, bytes_per_sample, planar
    )
    cdef size_t frame = dcmp_rle_frame_size(&layout)
    if <size_t>dst.shape[0] < frame:
        raise ValueError(f"output buffer holds {dst.shape[0]} bytes, the frame needs {frame}")
    cdef size_t scratch_len = dcmp_rle_decode_scratch(&layout)
    cdef uint8_t[::1] scratch_view
    cdef uint8_t *scratch = NULL
    cdef dcmp_rle_report report
    cdef int rc
    cdef const uint8_t *src_ptr = &src[0] if src.shape[0] else NULL
    cdef uint8_t dummy = 0
    if src_ptr == NULL:
        src_ptr = &dummy
    if scratch_len:
        scratch_view = _scratch(scratch_len)
        scratch = &scratch_view[0]
    with nogil:
        rc = dcmp_rle_decode(src_ptr, src.shape[0], &layout, &dst[0], frame,
                             scratch, scratch_len, &report)
    if rc != DCMP_RLE_OK:
        raise CorruptPixelData(
            describe(rc, &report, samples_per_pixel * bytes_per_sample)
        )
