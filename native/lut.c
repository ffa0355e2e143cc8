/*
 * Display LUTs: build (modality -> VOI -> presentation, PS3.3 C.11) and apply.
 *
 * The table is built once per image for the stored range (at most 65536
 * entries for 16-bit data), in double precision from the standard's
 * formulas, then applied by a gather loop. Inputs are clamped to the table,
 * so the gather never reads outside it.
 */
#include "lut.h"

#include <math.h>

/* clamp(k - first, 0, length - 1), without forming k - first in signed
   arithmetic: with first near INT64_MIN or INT64_MAX that overflows. */
static size_t clamp_index(int64_t k, int64_t first, size_t length)
{
    if (k <= first) return 0;
    uint64_t d = (uint64_t)k - (uint64_t)first; /* exact: the difference is in 1 .. 2^64 - 1 */
    return d > (uint64_t)(length - 1) ? length - 1 : (size_t)d;
}

static double table_value(const double *table, size_t length, int64_t first, double x)
{
    /* LUT input is an integer: round the (possibly rescaled) value, then clamp
       to the table's ends (C.11.1.1: values outside map to the first/last entry).
       The conversion saturates; NaN (only from dcmp_voi_value's own callers)
       takes the first entry. */
    double r = floor(x + 0.5);
    int64_t k;
    if (r >= 0x1p63) k = INT64_MAX;
    else if (r >= -0x1p63) k = (int64_t)r;
    else k = INT64_MIN;
    return table[clamp_index(k, first, length)];
}

static int all_finite(const double *table, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (!isfinite(table[i])) return 0;
    return 1;
}

double dcmp_voi_value(const dcmp_lut_spec *s, double x)
{
    double c = s->center, w = s->width, y;
    switch (s->function) {
    case DCMP_VOI_LINEAR:
        /* C.11.2.1.2.1 */
        if (x <= c - 0.5 - (w - 1.0) / 2.0) return 0.0;
        if (x > c - 0.5 + (w - 1.0) / 2.0) return 1.0;
        y = (x - (c - 0.5)) / (w - 1.0) + 0.5;
        break;
    case DCMP_VOI_LINEAR_EXACT:
        /* C.11.2.1.3.2 */
        if (x <= c - w / 2.0) return 0.0;
        if (x > c + w / 2.0) return 1.0;
        y = (x - c) / w + 0.5;
        break;
    case DCMP_VOI_SIGMOID:
        /* C.11.2.1.3.1 */
        y = 1.0 / (1.0 + exp(-4.0 * (x - c) / w));
        break;
    case DCMP_VOI_TABLE:
        y = table_value(s->voi_table, s->voi_length, s->voi_first, x) / s->voi_max;
        break;
    default: /* DCMP_VOI_RANGE */
        /* halved so that neither difference overflows for finite bounds
           (exact: scaling by 2 commutes with rounding) */
        y = (0.5 * x - 0.5 * s->range_min) / (0.5 * s->range_max - 0.5 * s->range_min);
        break;
    }
    /* NaN (a NaN x; finite parameters never give one) takes 0, never the cast */
    return y > 0.0 ? (y < 1.0 ? y : 1.0) : 0.0;
}

int dcmp_lut_build(const dcmp_lut_spec *s, void *lut)
{
    if (s->length == 0 || s->length > DCMP_LUT_MAX_LENGTH) return DCMP_LUT_INVALID_ARGUMENT;
    if (s->out_bits != 8 && s->out_bits != 16) return DCMP_LUT_INVALID_ARGUMENT;
    /* the stored values first .. first + length - 1 must be int64 */
    if (s->first > INT64_MAX - (int64_t)(s->length - 1)) return DCMP_LUT_INVALID_ARGUMENT;
    if (s->modality_table && s->modality_length == 0) return DCMP_LUT_INVALID_ARGUMENT;
    /* LUT Data are integers (C.11.1.1, C.11.2.1.1); a NaN or infinity there or
       in a parameter would reach the integer conversion below as NaN */
    if (s->modality_table && !all_finite(s->modality_table, s->modality_length))
        return DCMP_LUT_INVALID_ARGUMENT;
    switch (s->function) {
    case DCMP_VOI_LINEAR:
        if (!(s->width >= 1.0)) return DCMP_LUT_INVALID_ARGUMENT; /* C.11.2.1.2: width >= 1 */
        break;
    case DCMP_VOI_LINEAR_EXACT:
    case DCMP_VOI_SIGMOID:
        if (!(s->width > 0.0)) return DCMP_LUT_INVALID_ARGUMENT;
        break;
    case DCMP_VOI_TABLE:
        if (!s->voi_table || s->voi_length == 0 || !(s->voi_max > 0.0) || !isfinite(s->voi_max) ||
            !all_finite(s->voi_table, s->voi_length))
            return DCMP_LUT_INVALID_ARGUMENT;
        break;
    case DCMP_VOI_RANGE:
        if (!(s->range_max > s->range_min) || !isfinite(s->range_min) || !isfinite(s->range_max))
            return DCMP_LUT_INVALID_ARGUMENT;
        break;
    default:
        return DCMP_LUT_INVALID_ARGUMENT;
    }
    if (!isfinite(s->center) || !isfinite(s->width) || !isfinite(s->slope) || !isfinite(s->intercept))
        return DCMP_LUT_INVALID_ARGUMENT;

    const double top = s->out_bits == 8 ? 255.0 : 65535.0;
    for (size_t i = 0; i < s->length; i++) {
        double stored = (double)(s->first + (int64_t)i);
        double m = s->modality_table
                       ? table_value(s->modality_table, s->modality_length, s->modality_first, stored)
                       : stored * s->slope + s->intercept;
        double y = dcmp_voi_value(s, m);
        if (s->invert) y = 1.0 - y;
        double level = floor(y * top + 0.5);
        if (s->out_bits == 8) ((uint8_t *)lut)[i] = (uint8_t)level;
        else ((uint16_t *)lut)[i] = (uint16_t)level;
    }
    return DCMP_LUT_OK;
}

/*
 * The gather. The clamp compiles to two conditional moves; for 16-bit input
 * with a full 65536-entry table starting at the type's minimum it is skipped.
 */
#define DCMP_LUT_DEFINE(IN, INT, OUT, OUTT, FULL_FIRST, FULL_LENGTH)                      \
    int dcmp_lut_apply_##IN##_##OUT(const INT *src, size_t n, const OUTT *lut,           \
                                    size_t lut_length, int64_t first, OUTT *dst)         \
    {                                                                                    \
        if (lut_length == 0) return DCMP_LUT_INVALID_ARGUMENT;                           \
        if (FULL_LENGTH && lut_length == (size_t)FULL_LENGTH && first == FULL_FIRST) {   \
            const OUTT *base = lut - (FULL_FIRST);                                       \
            for (size_t i = 0; i < n; i++) dst[i] = base[src[i]];                        \
            return DCMP_LUT_OK;                                                          \
        }                                                                                \
        if (first < -((int64_t)1 << 62) || first > ((int64_t)1 << 62)) {                 \
            /* src[i] - first would overflow int64: take the difference in               \
               unsigned arithmetic (slower; no real table starts out here) */            \
            const uint64_t top = (uint64_t)(lut_length - 1);                             \
            for (size_t i = 0; i < n; i++) {                                             \
                const int64_t v = (int64_t)src[i];                                       \
                const uint64_t d = (uint64_t)v - (uint64_t)first;                        \
                dst[i] = lut[v < first ? 0 : (d > top ? top : d)];                       \
            }                                                                            \
            return DCMP_LUT_OK;                                                          \
        }                                                                                \
        /* |src[i]| < 2^32 and |first| <= 2^62: the difference fits */                   \
        const int64_t last =                                                             \
            lut_length - 1 > (size_t)INT64_MAX ? INT64_MAX : (int64_t)(lut_length - 1);  \
        for (size_t i = 0; i < n; i++) {                                                 \
            int64_t k = (int64_t)src[i] - first;                                         \
            k = k < 0 ? 0 : k;                                                           \
            k = k > last ? last : k;                                                     \
            dst[i] = lut[k];                                                             \
        }                                                                                \
        return DCMP_LUT_OK;                                                              \
    }

DCMP_LUT_DEFINE(u8, uint8_t, u8, uint8_t, 0, 256)
DCMP_LUT_DEFINE(i8, int8_t, u8, uint8_t, -128, 256)
DCMP_LUT_DEFINE(u16, uint16_t, u8, uint8_t, 0, 65536)
DCMP_LUT_DEFINE(i16, int16_t, u8, uint8_t, -32768, 65536)
DCMP_LUT_DEFINE(u32, uint32_t, u8, uint8_t, 0, 0)
DCMP_LUT_DEFINE(i32, int32_t, u8, uint8_t, 0, 0)
DCMP_LUT_DEFINE(u8, uint8_t, u16, uint16_t, 0, 256)
DCMP_LUT_DEFINE(i8, int8_t, u16, uint16_t, -128, 256)
DCMP_LUT_DEFINE(u16, uint16_t, u16, uint16_t, 0, 65536)
DCMP_LUT_DEFINE(i16, int16_t, u16, uint16_t, -32768, 65536)
DCMP_LUT_DEFINE(u32, uint32_t, u16, uint16_t, 0, 0)
DCMP_LUT_DEFINE(i32, int32_t, u16, uint16_t, 0, 0)
