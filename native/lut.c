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

static int64_t clamp_index(int64_t k, int64_t last)
{
    return k < 0 ? 0 : (k > last ? last : k);
}

static double table_value(const double *table, size_t length, int64_t first, double x)
{
    /* LUT input is an integer: round the (possibly rescaled) value, then clamp
       to the table's ends (C.11.1.1: values outside map to the first/last entry). */
    double r = floor(x + 0.5);
    int64_t k;
    if (r < -9.0e18) k = INT64_MIN / 2;
    else if (r > 9.0e18) k = INT64_MAX / 2;
    else k = (int64_t)r;
    return table[clamp_index(k - first, (int64_t)length - 1)];
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
        y = (x - s->range_min) / (s->range_max - s->range_min);
        break;
    }
    return y < 0.0 ? 0.0 : (y > 1.0 ? 1.0 : y);
}

int dcmp_lut_build(const dcmp_lut_spec *s, void *lut)
{
    if (s->length == 0 || s->length > DCMP_LUT_MAX_LENGTH) return DCMP_LUT_INVALID_ARGUMENT;
    if (s->out_bits != 8 && s->out_bits != 16) return DCMP_LUT_INVALID_ARGUMENT;
    if (s->modality_table && s->modality_length == 0) return DCMP_LUT_INVALID_ARGUMENT;
    switch (s->function) {
    case DCMP_VOI_LINEAR:
        if (!(s->width >= 1.0)) return DCMP_LUT_INVALID_ARGUMENT; /* C.11.2.1.2: width >= 1 */
        break;
    case DCMP_VOI_LINEAR_EXACT:
    case DCMP_VOI_SIGMOID:
        if (!(s->width > 0.0)) return DCMP_LUT_INVALID_ARGUMENT;
        break;
    case DCMP_VOI_TABLE:
        if (!s->voi_table || s->voi_length == 0 || !(s->voi_max > 0.0))
            return DCMP_LUT_INVALID_ARGUMENT;
        break;
    case DCMP_VOI_RANGE:
        if (!(s->range_max > s->range_min)) return DCMP_LUT_INVALID_ARGUMENT;
        break;
    default:
        return DCMP_LUT_INVALID_ARGUMENT;
    }
    if (!isfinite(s->center) || !isfinite(s->slope) || !isfinite(s->intercept))
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
        const int64_t last = (int64_t)lut_length - 1;                                    \
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
