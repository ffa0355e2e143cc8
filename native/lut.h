/*
 * The grayscale display pipeline of PS3.3 C.11 as a lookup table over the
 * stored values, and the gather kernels that apply it.
 *
 * Plain C99, no Python, no global state. A table covers the stored values
 * first .. first + length - 1; the apply kernels clamp every input to that
 * range, so no stored value, however wrong the attributes that describe it,
 * indexes outside the table.
 */
#ifndef DCMP_LUT_H
#define DCMP_LUT_H

#include <stddef.h>
#include <stdint.h>

#define DCMP_LUT_OK 0
#define DCMP_LUT_INVALID_ARGUMENT (-1)

/* VOI functions (C.11.2.1.2, C.11.2.1.3) */
#define DCMP_VOI_LINEAR 0
#define DCMP_VOI_LINEAR_EXACT 1
#define DCMP_VOI_SIGMOID 2
#define DCMP_VOI_TABLE 3   /* VOI LUT Sequence */
#define DCMP_VOI_RANGE 4   /* no VOI: map [range_min, range_max] linearly */

#define DCMP_LUT_MAX_LENGTH ((size_t)1 << 24)

typedef struct {
    /* stored values the table covers */
    int64_t first;
    size_t length;
    /* Modality LUT (C.11.1): a table, or Rescale Slope/Intercept when table is NULL */
    double slope, intercept;
    const double *modality_table;
    size_t modality_length;
    int64_t modality_first;
    /* VOI LUT (C.11.2) */
    int function;
    double center, width;
    const double *voi_table;  /* values 0 .. voi_max */
    size_t voi_length;
    int64_t voi_first;
    double voi_max;
    double range_min, range_max; /* DCMP_VOI_RANGE */
    /* Presentation (C.11.6): 1 to invert (MONOCHROME1, INVERSE) */
    int invert;
    int out_bits; /* 8 or 16 */
} dcmp_lut_spec;

/* Fill `lut` (length entries of uint8_t for out_bits 8, uint16_t for 16). */
int dcmp_lut_build(const dcmp_lut_spec *spec, void *lut);

/* The display value (0..1) of one modality value under the VOI of `spec`. */
double dcmp_voi_value(const dcmp_lut_spec *spec, double modality_value);

/* out[i] = lut[clamp(src[i] - first, 0, lut_length - 1)] */
#define DCMP_LUT_DECLARE(IN, INT, OUT, OUTT)                                              \
    int dcmp_lut_apply_##IN##_##OUT(const INT *src, size_t n, const OUTT *lut,           \
                                    size_t lut_length, int64_t first, OUTT *dst);
DCMP_LUT_DECLARE(u8, uint8_t, u8, uint8_t)
DCMP_LUT_DECLARE(i8, int8_t, u8, uint8_t)
DCMP_LUT_DECLARE(u16, uint16_t, u8, uint8_t)
DCMP_LUT_DECLARE(i16, int16_t, u8, uint8_t)
DCMP_LUT_DECLARE(u32, uint32_t, u8, uint8_t)
DCMP_LUT_DECLARE(i32, int32_t, u8, uint8_t)
DCMP_LUT_DECLARE(u8, uint8_t, u16, uint16_t)
DCMP_LUT_DECLARE(i8, int8_t, u16, uint16_t)
DCMP_LUT_DECLARE(u16, uint16_t, u16, uint16_t)
DCMP_LUT_DECLARE(i16, int16_t, u16, uint16_t)
DCMP_LUT_DECLARE(u32, uint32_t, u16, uint16_t)
DCMP_LUT_DECLARE(i32, int32_t, u16, uint16_t)
#undef DCMP_LUT_DECLARE

#endif
