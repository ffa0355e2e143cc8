/*
 * libFuzzer target for the display LUTs (native/lut.c).
 *
 * The input is read front to back; once it runs out every further byte reads
 * as zero, so any input is valid.
 *
 *   byte 0  bits 0-1  out_bits: 0, 2 = 8; 1 = 16; 3 = 7 (invalid, must be refused)
 *           bit 2     invert
 *           bit 3     Modality LUT table present (else Rescale Slope/Intercept)
 *           bit 4     VOI LUT table present
 *           bits 5-6  length: 0 = 1..256 (one byte), 1 = 1..70000 (three bytes),
 *                     2 = 256, 3 = 65536 (the kernels' full-table sizes)
 *           bit 7     the gather uses the table's own `first` (else one of its own)
 *   byte 1  VOI function, byte % 6 (5 is invalid and must be refused)
 *   then    length, first, slope, intercept,
 *           [modality table: count, int16 entries, one special entry], modality_first,
 *           center, width,
 *           [VOI table: count, uint16 entries, one special entry], voi_first, voi_max,
 *           range_min, range_max,
 *           the gather: input type, lut_length, first (unless bit 7), then the samples.
 *
 * An int64 or a double is one selector byte and then a few bytes: small
 * integers, fractions, raw bits, or one of a list of awkward values (NaN,
 * infinities, DBL_MAX, denormals, INT64_MIN/MAX, values next to 2^31, 2^53)
 * so that non-finite and overflowing attributes are tried often.
 *
 * Every buffer is malloc'ed with exactly the size the API implies (the table:
 * length * (out_bits / 8) bytes, so 0 bytes for out_bits 7), so ASan sees any
 * access past it; UBSan (float-cast-overflow, signed overflow) is fatal.
 * Checks, each ending in abort():
 *   - dcmp_lut_build returns OK or INVALID_ARGUMENT, and refuses out_bits 7
 *     and function 5;
 *   - a table it accepts has every entry in 0..255 / 0..65535 (UBSan's
 *     float-cast-overflow guards the conversion that could break this);
 *   - up to RECHECK_LENGTH entries: every entry is written (two builds into
 *     buffers pre-filled differently agree), and building with invert flipped
 *     gives the complement (within one level);
 *   - LINEAR, LINEAR_EXACT or RANGE with slope > 0 and no Modality LUT table
 *     is non-decreasing (non-increasing when inverted);
 *   - dcmp_voi_value of a finite modality value is in 0..1 for an accepted spec;
 *   - every gather output equals lut[clamp(src[i] - first, 0, lut_length - 1)]
 *     computed here without overflow, and lut_length 0 is refused.
 *
 * Build and run: tools/fuzz_lut.sh.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lut.h"

#define MAX_TABLE 300 /* Modality and VOI LUT entries */
/* The two extra builds (determinism, invert) only up to this length: every
   entry takes the same path, and three builds of 70000 entries would cut the
   execution rate by two thirds. */
#define RECHECK_LENGTH 4096

typedef struct {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t byte(reader *r)
{
    if (r->n == 0) return 0;
    r->n--;
    return *r->p++;
}

static uint64_t bytes_le(reader *r, int count)
{
    uint64_t v = 0;
    for (int k = 0; k < count; k++) v |= (uint64_t)byte(r) << (8 * k);
    return v;
}

static int64_t read_i64(reader *r)
{
    static const int64_t awkward[16] = {
        INT64_MIN,          INT64_MAX,          INT64_MIN + 1,        INT64_MAX - 1,
        INT32_MIN,          INT32_MAX,          (int64_t)1 << 32,     -((int64_t)1 << 32),
        -128,               -32768,             0,                    65535,
        (int64_t)1 << 53,   -((int64_t)1 << 53), INT64_MAX - 70000,   INT64_MIN + 70000,
    };
    switch (byte(r) & 7) {
    case 0: case 1: case 2: return (int16_t)bytes_le(r, 2);
    case 3: return (int8_t)byte(r);
    case 4: return (int32_t)bytes_le(r, 4);
    case 5: return (int64_t)bytes_le(r, 8);
    case 6: return awkward[byte(r) & 15];
    default: return (int64_t)bytes_le(r, 2); /* 0..65535 */
    }
}

static double special_double(uint8_t k)
{
    static const double awkward[16] = {
        NAN,  INFINITY, -INFINITY, 1e308, -1e308, DBL_MAX, -DBL_MAX, DBL_MIN,
        5e-324, -0.0,   0.0,       1.0,   -1.0,   0.5,     1e18,     -1e300,
    };
    return awkward[k & 15];
}

static double read_double(reader *r)
{
    switch (byte(r) & 7) {
    case 0: case 1: return (int16_t)bytes_le(r, 2);
    case 2: case 3: return (int16_t)bytes_le(r, 2) / 256.0;
    case 4: return (int8_t)byte(r);
    case 5: {
        uint64_t bits = bytes_le(r, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    case 6: return special_double(byte(r));
    default: return (int32_t)bytes_le(r, 4);
    }
}

static void *xmalloc(size_t n)
{
    /* malloc(0) under ASan is a live pointer with no addressable bytes */
    void *p = malloc(n);
    if (p == NULL && n != 0) abort();
    return p;
}

/* count 1..300 entries: int16 (modality) or uint16 (VOI) values, then one special entry */
static double *read_table(reader *r, size_t *count, int is_signed)
{
    size_t n = (size_t)(bytes_le(r, 2) % MAX_TABLE) + 1;
    double *t = xmalloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = bytes_le(r, 2);
        t[i] = is_signed ? (double)(int16_t)v : (double)(uint16_t)v;
    }
    uint8_t s = byte(r), at = byte(r);
    if (s & 0x80) t[at % n] = special_double(s);
    *count = n;
    return t;
}

static void fail(const char *what, const dcmp_lut_spec *s, size_t i)
{
    fprintf(stderr,
            "fuzz_lut: %s (entry %zu; first %lld, length %zu, out_bits %d, function %d, "
            "invert %d, slope %g, intercept %g, modality table %zu from %lld, center %g, "
            "width %g, voi table %zu from %lld, voi_max %g, range %g..%g)\n",
            what, i, (long long)s->first, s->length, s->out_bits, s->function, s->invert,
            s->slope, s->intercept, s->modality_length, (long long)s->modality_first,
            s->center, s->width, s->voi_length, (long long)s->voi_first, s->voi_max,
            s->range_min, s->range_max);
    abort();
}

static unsigned entry(const void *lut, int out_bits, size_t i)
{
    return out_bits == 8 ? ((const uint8_t *)lut)[i] : ((const uint16_t *)lut)[i];
}

/* Build into an exact-size buffer pre-filled with `fill`; NULL if refused. */
static void *build(const dcmp_lut_spec *s, uint8_t fill)
{
    size_t bytes = s->length * (size_t)(s->out_bits / 8);
    void *lut = xmalloc(bytes);
    if (bytes) memset(lut, fill, bytes);
    int rc = dcmp_lut_build(s, lut);
    if (rc != DCMP_LUT_OK && rc != DCMP_LUT_INVALID_ARGUMENT) fail("build returned an unknown code", s, 0);
    if (rc != DCMP_LUT_OK) {
        free(lut);
        return NULL;
    }
    if (s->out_bits != 8 && s->out_bits != 16) fail("build accepted out_bits other than 8 and 16", s, 0);
    if (s->function < DCMP_VOI_LINEAR || s->function > DCMP_VOI_RANGE) fail("build accepted an unknown function", s, 0);
    return lut;
}

static void check_build(const dcmp_lut_spec *s, const void *lut)
{
    const int bits = s->out_bits;
    const unsigned top = bits == 8 ? 255u : 65535u;

    for (size_t i = 0; i < s->length; i++)
        if (entry(lut, bits, i) > top) fail("entry out of range", s, i);

    if (s->length <= RECHECK_LENGTH) {
        void *again = build(s, 0x5A);
        if (again == NULL) fail("build is not deterministic", s, 0);
        if (memcmp(again, lut, s->length * (size_t)(bits / 8)) != 0)
            fail("build left entries unwritten or is not deterministic", s, 0);
        free(again);

        dcmp_lut_spec flipped = *s;
        flipped.invert = !s->invert;
        void *inv = build(&flipped, 0xC3);
        if (inv == NULL) fail("build refused the same spec inverted", s, 0);
        for (size_t i = 0; i < s->length; i++) {
            long sum = (long)entry(lut, bits, i) + (long)entry(inv, bits, i);
            if (sum < (long)top - 1 || sum > (long)top + 1) fail("inverted table is not the complement", s, i);
        }
        free(inv);
    }

    /* the rescale and these VOI functions are compositions of monotonic,
       correctly rounded operations (SIGMOID's exp is libm's, not checked) */
    if ((s->function == DCMP_VOI_LINEAR || s->function == DCMP_VOI_LINEAR_EXACT ||
         s->function == DCMP_VOI_RANGE) && s->slope > 0.0 && s->modality_table == NULL) {
        for (size_t i = 1; i < s->length; i++) {
            unsigned a = entry(lut, bits, i - 1), b = entry(lut, bits, i);
            if (s->invert ? b > a : b < a) fail("linear table is not monotonic", s, i);
        }
    }

    /* The display value of any finite modality value is in 0..1. */
    const double xs[] = {0.0, 1.0, -1.0, s->center, s->intercept, s->range_min, s->range_max,
                         s->modality_table ? s->modality_table[0] : s->slope * (double)s->first,
                         1e300, -1e300, DBL_MAX, -DBL_MAX};
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        if (!isfinite(xs[k])) continue;
        double y = dcmp_voi_value(s, xs[k]);
        if (!(y >= 0.0 && y <= 1.0)) fail("dcmp_voi_value of a finite value is not in 0..1", s, k);
    }
}

/* lut[clamp(v - first, 0, length - 1)], computed without overflow */
static size_t expected_index(int64_t v, int64_t first, size_t length)
{
    if (v < first) return 0;
    uint64_t d = (uint64_t)v - (uint64_t)first; /* exact: the true difference is in 0..2^64-1 */
    return d > (uint64_t)(length - 1) ? length - 1 : (size_t)d;
}

#define GATHER(IN, INT, OUT, OUTT)                                                          \
    static void gather_##IN##_##OUT(const uint8_t *bytes, size_t nbytes, const void *table,   \
                                    size_t lut_length, int64_t first)                         \
    {                                                                                       \
        size_t n = nbytes / sizeof(INT);                                                    \
        INT *src = xmalloc(n * sizeof(INT));                                                \
        OUTT *dst = xmalloc(n * sizeof(OUTT));                                              \
        const OUTT *lut = table;                                                            \
        if (n) memcpy(src, bytes, n * sizeof(INT));                                         \
        for (size_t i = 0; i < n; i++) dst[i] = (OUTT)(0xA5A5u ^ i);                        \
        if (dcmp_lut_apply_##IN##_##OUT(src, n, lut, lut_length, first, dst) != DCMP_LUT_OK) \
            abort();                                                                        \
        for (size_t i = 0; i < n; i++) {                                                    \
            if (dst[i] != lut[expected_index((int64_t)src[i], first, lut_length)]) {        \
                fprintf(stderr,                                                             \
                        "fuzz_lut: dcmp_lut_apply_" #IN "_" #OUT " sample %zu = %lld, "     \
                        "first %lld, lut_length %zu: got %u, want %u\n",                    \
                        i, (long long)src[i], (long long)first, lut_length, (unsigned)dst[i], \
                        (unsigned)lut[expected_index((int64_t)src[i], first, lut_length)]);  \
                abort();                                                                    \
            }                                                                               \
        }                                                                                   \
        /* an empty table is refused before anything is read or written */                 \
        OUTT *none = xmalloc(0);                                                            \
        if (dcmp_lut_apply_##IN##_##OUT(src, n, none, 0, first, dst) != DCMP_LUT_INVALID_ARGUMENT) \
            abort();                                                                        \
        free(none);                                                                         \
        free(dst);                                                                          \
        free(src);                                                                          \
    }

GATHER(u8, uint8_t, u8, uint8_t)
GATHER(i8, int8_t, u8, uint8_t)
GATHER(u16, uint16_t, u8, uint8_t)
GATHER(i16, int16_t, u8, uint8_t)
GATHER(u32, uint32_t, u8, uint8_t)
GATHER(i32, int32_t, u8, uint8_t)
GATHER(u8, uint8_t, u16, uint16_t)
GATHER(i8, int8_t, u16, uint16_t)
GATHER(u16, uint16_t, u16, uint16_t)
GATHER(i16, int16_t, u16, uint16_t)
GATHER(u32, uint32_t, u16, uint16_t)
GATHER(i32, int32_t, u16, uint16_t)
#undef GATHER

typedef void (*gather_fn)(const uint8_t *, size_t, const void *, size_t, int64_t);

static const gather_fn gathers[2][6] = {
    {gather_u8_u8, gather_i8_u8, gather_u16_u8, gather_i16_u8, gather_u32_u8, gather_i32_u8},
    {gather_u8_u16, gather_i8_u16, gather_u16_u16, gather_i16_u16, gather_u32_u16, gather_i32_u16},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int out_bits[4] = {8, 16, 8, 7};
    reader r = {data, size};
    const uint8_t flags = byte(&r);
    dcmp_lut_spec s;
    memset(&s, 0, sizeof s);

    s.out_bits = out_bits[flags & 3];
    s.invert = (flags >> 2) & 1;
    s.function = byte(&r) % 6;
    switch ((flags >> 5) & 3) {
    case 0: s.length = (size_t)byte(&r) + 1; break;
    case 1: s.length = (size_t)(bytes_le(&r, 3) % 70000) + 1; break;
    case 2: s.length = 256; break;
    default: s.length = 65536; break;
    }
    s.first = read_i64(&r);
    s.slope = read_double(&r);
    s.intercept = read_double(&r);
    double *mtable = NULL, *vtable = NULL;
    if (flags & 0x08) mtable = read_table(&r, &s.modality_length, 1);
    s.modality_table = mtable;
    s.modality_first = read_i64(&r);
    s.center = read_double(&r);
    s.width = read_double(&r);
    if (flags & 0x10) vtable = read_table(&r, &s.voi_length, 0);
    s.voi_table = vtable;
    s.voi_first = read_i64(&r);
    s.voi_max = read_double(&r);
    s.range_min = read_double(&r);
    s.range_max = read_double(&r);

    void *lut = build(&s, 0xA5);
    if (lut != NULL) check_build(&s, lut);

    /* The gather: the built table's first lut_length entries, or made-up ones. */
    const uint8_t kind = byte(&r);
    const int wide = lut != NULL ? s.out_bits == 16 : (kind >> 7) & 1;
    const size_t lut_length = (size_t)(bytes_le(&r, 3) % s.length) + 1;
    const int64_t first = (flags & 0x80) ? s.first : read_i64(&r);
    void *table = xmalloc(lut_length * (wide ? 2u : 1u));
    for (size_t i = 0; i < lut_length; i++) {
        unsigned v = lut != NULL ? entry(lut, s.out_bits, i) : (unsigned)(i * 2654435761u >> 7);
        if (wide) ((uint16_t *)table)[i] = (uint16_t)v;
        else ((uint8_t *)table)[i] = (uint8_t)v;
    }
    gathers[wide][kind % 6](r.p, r.n, table, lut_length, first);

    free(table);
    free(lut);
    free(vtable);
    free(mtable);
    return 0;
}
