# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin wrapper of native/lut.c: check arguments, release the GIL.

Private: the public surface is :mod:`dicompress.voi`.
"""
from libc.stdint cimport uint8_t, uint16_t, int8_t, int16_t, uint32_t, int32_t, int64_t

import numpy as np


cdef extern from "lut.h" nogil:
    int DCMP_LUT_OK
    ctypedef struct dcmp_lut_spec:
        int64_t first
        size_t length
        double slope, intercept
        const double *modality_table
        size_t modality_length
        int64_t modality_first
        int function
        double center, width
        const double *voi_table
        size_t voi_length
        int64_t voi_first
        double voi_max
        double range_min, range_max
        int invert
        int out_bits

    int dcmp_lut_build(const dcmp_lut_spec *spec, void *lut)
    int dcmp_lut_apply_u8_u8(const uint8_t *, size_t, const uint8_t *, size_t, int64_t, uint8_t *)
    int dcmp_lut_apply_i8_u8(const int8_t *, size_t, const uint8_t *, size_t, int64_t, uint8_t *)
    int dcmp_lut_apply_u16_u8(const uint16_t *, size_t, const uint8_t *, size_t, int64_t, uint8_t *)
    int dcmp_lut_apply_i16_u8(const int16_t *, size_t, const uint8_t *, size_t, int64_t, uint8_t *)
    int dcmp_lut_apply_u32_u8(const uint32_t *, size_t, const uint8_t *, size_t, int64_t, uint8_t *)
    int dcmp_lut_apply_i32_u8(const int32_t *, size_t, const uint8_t *, size_t, int64_t, uint8_t *)
    int dcmp_lut_apply_u8_u16(const uint8_t *, size_t, const uint16_t *, size_t, int64_t, uint16_t *)
    int dcmp_lut_apply_i8_u16(const int8_t *, size_t, const uint16_t *, size_t, int64_t, uint16_t *)
    int dcmp_lut_apply_u16_u16(const uint16_t *, size_t, const uint16_t *, size_t, int64_t, uint16_t *)
    int dcmp_lut_apply_i16_u16(const int16_t *, size_t, const uint16_t *, size_t, int64_t, uint16_t *)
    int dcmp_lut_apply_u32_u16(const uint32_t *, size_t, const uint16_t *, size_t, int64_t, uint16_t *)
    int dcmp_lut_apply_i32_u16(const int32_t *, size_t, const uint16_t *, size_t, int64_t, uint16_t *)


FUNCTIONS = {"linear": 0, "linear_exact": 1, "sigmoid": 2, "table": 3, "range": 4}


def build(long long first, size_t length, *, int out_bits=8, double slope=1.0,
          double intercept=0.0, modality_table=None, long long modality_first=0,
          str function="linear", double center=0.0, double width=1.0, voi_table=None,
          long long voi_first=0, double voi_max=1.0, double range_min=0.0,
          double range_max=1.0, bint invert=False):
    """Return the display table for stored values first .. first + length - 1."""
    cdef dcmp_lut_spec spec
    cdef const double[::1] mtable
    cdef const double[::1] vtable
    if function not in FUNCTIONS:
        raise ValueError(f"unknown VOI function {function!r}")
    spec.first = first
    spec.length = length
    spec.slope = slope
    spec.intercept = intercept
    spec.modality_table = NULL
    spec.modality_length = 0
    spec.modality_first = modality_first
    if modality_table is not None:
        mtable = np.ascontiguousarray(modality_table, dtype=np.float64)
        if mtable.shape[0] == 0:
            raise ValueError("empty Modality LUT")
        spec.modality_table = &mtable[0]
        spec.modality_length = mtable.shape[0]
    spec.function = FUNCTIONS[function]
    spec.center = center
    spec.width = width
    spec.voi_table = NULL
    spec.voi_length = 0
    spec.voi_first = voi_first
    spec.voi_max = voi_max
    if voi_table is not None:
        vtable = np.ascontiguousarray(voi_table, dtype=np.float64)
        if vtable.shape[0] == 0:
            raise ValueError("empty VOI LUT")
        spec.voi_table = &vtable[0]
        spec.voi_length = vtable.shape[0]
    spec.range_min = range_min
    spec.range_max = range_max
    spec.invert = 1 if invert else 0
    spec.out_bits = out_bits
    lut = np.empty(length, dtype=np.uint8 if out_bits == 8 else np.uint16)
    cdef uint8_t[::1] raw = lut.view(np.uint8)
    cdef int rc
    with nogil:
        rc = dcmp_lut_build(&spec, <void *>&raw[0])
    if rc != DCMP_LUT_OK:
        raise ValueError(
            f"invalid display LUT: function {function}, center {center}, width {width}, "
            f"length {length}"
        )
    return lut


def apply(src, lut, long long first, out):
    """out.flat[i] = lut[clamp(src.flat[i] - first)]; src and out C-contiguous, same size."""
    cdef size_t n = src.size
    if out.size != n:
        raise ValueError("out and src differ in size")
    cdef const uint8_t[::1] s = src.reshape(-1).view(np.uint8) if n else np.zeros(1, np.uint8)
    cdef const uint8_t[::1] l = lut.view(np.uint8)
    cdef uint8_t[::1] d = out.reshape(-1).view(np.uint8) if n else np.zeros(2, np.uint8)
    cdef size_t m = lut.size
    cdef str kind = src.dtype.str[1:]
    cdef bint wide = lut.dtype == np.uint16
    cdef const void *sp = &s[0]
    cdef const void *lp = &l[0]
    cdef void *dp = &d[0]
    if m == 0:
        raise ValueError("empty table")
    if (out.dtype == np.uint16) != wide:
        raise ValueError("out and lut differ in type")
    if kind not in ("u1", "i1", "u2", "i2", "u4", "i4"):
        raise TypeError(f"unsupported sample type {src.dtype}")
    cdef int code = ("u1", "i1", "u2", "i2", "u4", "i4").index(kind) + (6 if wide else 0)
    with nogil:
        if code == 0: dcmp_lut_apply_u8_u8(<const uint8_t *>sp, n, <const uint8_t *>lp, m, first, <uint8_t *>dp)
        elif code == 1: dcmp_lut_apply_i8_u8(<const int8_t *>sp, n, <const uint8_t *>lp, m, first, <uint8_t *>dp)
        elif code == 2: dcmp_lut_apply_u16_u8(<const uint16_t *>sp, n, <const uint8_t *>lp, m, first, <uint8_t *>dp)
        elif code == 3: dcmp_lut_apply_i16_u8(<const int16_t *>sp, n, <const uint8_t *>lp, m, first, <uint8_t *>dp)
        elif code == 4: dcmp_lut_apply_u32_u8(<const uint32_t *>sp, n, <const uint8_t *>lp, m, first, <uint8_t *>dp)
        elif code == 5: dcmp_lut_apply_i32_u8(<const int32_t *>sp, n, <const uint8_t *>lp, m, first, <uint8_t *>dp)
        elif code == 6: dcmp_lut_apply_u8_u16(<const uint8_t *>sp, n, <const uint16_t *>lp, m, first, <uint16_t *>dp)
        elif code == 7: dcmp_lut_apply_i8_u16(<const int8_t *>sp, n, <const uint16_t *>lp, m, first, <uint16_t *>dp)
        elif code == 8: dcmp_lut_apply_u16_u16(<const uint16_t *>sp, n, <const uint16_t *>lp, m, first, <uint16_t *>dp)
        elif code == 9: dcmp_lut_apply_i16_u16(<const int16_t *>sp, n, <const uint16_t *>lp, m, first, <uint16_t *>dp)
        elif code == 10: dcmp_lut_apply_u32_u16(<const uint32_t *>sp, n, <const uint16_t *>lp, m, first, <uint16_t *>dp)
        else: dcmp_lut_apply_i32_u16(<const int32_t *>sp, n, <const uint16_t *>lp, m, first, <uint16_t *>dp)
    return out
