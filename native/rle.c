/*
 * DICOM RLE Lossless, PS3.5 Annex G.
 *
 * Encoder: an optimal parse per row, in one forward pass.
 *   PS3.5 G.3.1 has each row of a byte segment encoded on its own, runs of
 *   three or more identical bytes as Replicate Runs, and never the -128 code.
 *   Within those rules the cost of a row is
 *       (bytes in literal runs) + (number of literal packets) + 2 * (replicate packets)
 *   Runs of three or more are always replicated (never costs more than
 *   carrying them in a literal), so what is left between them are single bytes
 *   and two-byte repeats ("pairs"). A pair costs 2 either way, so the only
 *   thing to minimise is the number of literal packets: a greedy cover that
 *   fills literal packets to 128 bytes and turns a pair into a replicate
 *   packet exactly when it starts a packet (pending literal empty or full) or
 *   straddles the 128-byte boundary. The leftover byte of a run of 128k+1
 *   joins the pending literal when it has room, else the next one. Tests check
 *   the result against an exhaustive dynamic programme on random rows.
 *
 * Decoder: each segment expands into a byte plane (memcpy/memset per
 * packet), then planes are merged into little-endian samples. Every packet
 * is checked against both the input and the output length.
 */
#include "rle.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define ROW_BUDGET(n) ((n) + (n) / 64 + 4)

/* ------------------------------------------------------------------ layout */

int dcmp_rle_segment_count(const dcmp_rle_layout *layout)
{
    int bps = layout->bytes_per_sample;
    if (bps != 1 && bps != 2 && bps != 4 && bps != 8) return DCMP_RLE_INVALID_ARGUMENT;
    if (layout->samples_per_pixel < 1) return DCMP_RLE_INVALID_ARGUMENT;
    if (layout->planar != 0 && layout->planar != 1) return DCMP_RLE_INVALID_ARGUMENT;
    int n = bps * layout->samples_per_pixel;
    if (n > DCMP_RLE_MAX_SEGMENTS) return DCMP_RLE_INVALID_ARGUMENT;
    return n;
}

static int mul_overflows(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}

/* Pixels per frame, 0 on overflow or empty frame. */
static size_t frame_pixels(const dcmp_rle_layout *layout)
{
    size_t n;
    if (mul_overflows(layout->rows, layout->columns, &n)) return 0;
    return n;
}

size_t dcmp_rle_frame_size(const dcmp_rle_layout *layout)
{
    int nseg = dcmp_rle_segment_count(layout);
    size_t size;
    if (nseg < 0) return 0;
    if (mul_overflows(frame_pixels(layout), (size_t)nseg, &size)) return 0;
    return size;
}

static size_t segment_region(const dcmp_rle_layout *layout)
{
    size_t region;
    size_t budget = ROW_BUDGET(layout->columns);
    if (budget < layout->columns) return 0;
    if (mul_overflows(layout->rows, budget, &region)) return 0;
    if (region > SIZE_MAX - 2) return 0;
    return region + 2;
}

size_t dcmp_rle_encode_workspace(const dcmp_rle_layout *layout)
{
    int nseg = dcmp_rle_segment_count(layout);
    size_t region = segment_region(layout), regions, rowbuf;
    if (nseg < 0 || region == 0 || frame_pixels(layout) == 0) return 0;
    if (mul_overflows(region, (size_t)nseg, &regions)) return 0;
    if (mul_overflows(layout->columns, (size_t)nseg, &rowbuf)) return 0;
    if (regions > SIZE_MAX - rowbuf - DCMP_RLE_HEADER_SIZE) return 0;
    return DCMP_RLE_HEADER_SIZE + regions + rowbuf;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* ----------------------------------------------------------------- scanning */

/* First k in [i, n-1) with r[k] == r[k+1], or n if there is none. */
static inline size_t find_pair(const uint8_t *r, size_t i, size_t n)
{
#if defined(__SSE2__)
    while (i + 17 <= n) {
        __m128i a = _mm_loadu_si128((const __m128i *)(r + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(r + i + 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b));
        if (mask) return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#else
    while (i + 9 <= n) {
        uint64_t a, b;
        memcpy(&a, r + i, 8);
        memcpy(&b, r + i + 1, 8);
        uint64_t x = a ^ b;
        uint64_t z = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
        if (z) break; /* resolve the exact byte below */
        i += 8;
    }
#endif
    for (; i + 1 < n; i++)
        if (r[i] == r[i + 1]) return i;
    return n;
}

/* Length of the run of r[i] starting at i (at least 1). */
static inline size_t run_length(const uint8_t *r, size_t i, size_t n)
{
    size_t k = i + 1;
    const uint8_t v = r[i];
#if defined(__SSE2__)
    __m128i vv = _mm_set1_epi8((char)v);
    while (k + 16 <= n) {
        __m128i a = _mm_loadu_si128((const __m128i *)(r + k));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, vv)) ^ 0xFFFFu;
        if (mask) return k + (size_t)__builtin_ctz(mask) - i;
        k += 16;
    }
#endif
    while (k < n && r[k] == v) k++;
    return k - i;
}

/* ------------------------------------------------------------------ encoder */

static inline uint8_t *put_literal(uint8_t *o, const uint8_t *p, size_t len)
{
    /* 1 <= len <= 128 */
    *o++ = (uint8_t)(len - 1);
    memcpy(o, p, len);
    return o + len;
}

static inline uint8_t *put_replicate(uint8_t *o, uint8_t v, size_t len)
{
    /* 2 <= len <= 128: header is 1 - len as a signed byte, never -128 */
    *o++ = (uint8_t)(257 - len);
    *o++ = v;
    return o;
}

/* Emit the pending literal [*lit, end) in packets of at most 128 bytes. */
static inline uint8_t *flush_literal(uint8_t *o, const uint8_t *r, size_t lit, size_t end)
{
    while (end - lit > 128) {
        o = put_literal(o, r + lit, 128);
        lit += 128;
    }
    if (end > lit) o = put_literal(o, r + lit, end - lit);
    return o;
}

/* Encode one row of n bytes; returns the new output position. */
static uint8_t *encode_row(const uint8_t *r, size_t n, uint8_t *o)
{
    size_t lit = 0; /* pending literal is [lit, j) */
    size_t j = 0;

    for (;;) {
        j = find_pair(r, j, n);
        if (j >= n) break;
        /* Greedy: full literal packets leave as soon as they are full. */
        while (j - lit > 128) {
            o = put_literal(o, r + lit, 128);
            lit += 128;
        }
        size_t m = j - lit;
        size_t len = run_length(r, j, n);
        uint8_t v = r[j];

        if (len == 2) {
            if (m >= 1 && m <= 126) {
                /* a pair inside a literal costs the same as two literal bytes */
                j += 2;
                continue;
            }
            /* the pair starts a packet (m == 0 or 128) or straddles the
               128-byte boundary (m == 127): a replicate packet saves one */
            if (m) o = put_literal(o, r + lit, m);
            o = put_replicate(o, v, 2);
            j += 2;
            lit = j;
            continue;
        }

        /* Run of three or more: replicate (PS3.5 G.3.1). */
        size_t full = len / 128, rest = len % 128;
        size_t next = j + len;
        if (rest == 1) {
            if (m >= 1 && m <= 127) {
                /* the odd byte rides in the pending literal for one byte */
                o = put_literal(o, r + lit, m + 1);
            } else {
                if (m) o = put_literal(o, r + lit, m);
                next -= 1; /* the odd byte starts the next literal */
            }
            rest = 0;
        } else if (m) {
            o = put_literal(o, r + lit, m);
        }
        for (size_t k = 0; k < full; k++) o = put_replicate(o, v, 128);
        if (rest) o = put_replicate(o, v, rest);
        j = j + len;
        lit = next;
    }
    return flush_literal(o, r, lit, n);
}

/* Split one row of `columns` pixels into its byte planes, segment order. */
static void split_row(const uint8_t *src, const dcmp_rle_layout *L, size_t row,
                      uint8_t *planes)
{
    const size_t cols = L->columns;
    const int bps = L->bytes_per_sample, spp = L->samples_per_pixel;
    const size_t npix = L->rows * cols;

    if (bps == 2 && (spp == 1 || L->planar)) {
        for (int s = 0; s < spp; s++) {
            const uint8_t *in = src + ((size_t)s * npix + row * cols) * 2;
            uint8_t *hi = planes + (size_t)(2 * s) * cols, *lo = hi + cols;
            for (size_t c = 0; c < cols; c++) {
                lo[c] = in[2 * c];
                hi[c] = in[2 * c + 1];
            }
        }
        return;
    }
    for (int s = 0; s < spp; s++) {
        const uint8_t *base;
        size_t stride; /* bytes between consecutive samples s */
        if (L->planar) {
            base = src + ((size_t)s * npix + row * cols) * (size_t)bps;
            stride = (size_t)bps;
        } else {
            base = src + (row * cols * (size_t)spp + (size_t)s) * (size_t)bps;
            stride = (size_t)bps * (size_t)spp;
        }
        for (int b = 0; b < bps; b++) {
            /* segment byte b is the (bps-1-b)-th byte of the little-endian
               sample: most significant first (PS3.5 G.2) */
            uint8_t *out = planes + (size_t)(s * bps + b) * cols;
            const uint8_t *in = base + (bps - 1 - b);
            if (stride == 1) {
                memcpy(out, in, cols);
            } else {
                for (size_t c = 0; c < cols; c++) out[c] = in[c * stride];
            }
        }
    }
}

ptrdiff_t dcmp_rle_encode(const uint8_t *src, size_t src_len,
                          const dcmp_rle_layout *layout,
                          uint8_t *work, size_t work_len)
{
    int nseg = dcmp_rle_segment_count(layout);
    if (nseg < 0) return DCMP_RLE_INVALID_ARGUMENT;
    size_t need = dcmp_rle_encode_workspace(layout);
    size_t frame = dcmp_rle_frame_size(layout);
    if (need == 0 || frame == 0) return DCMP_RLE_INVALID_ARGUMENT;
    if (src_len < frame) return DCMP_RLE_INVALID_ARGUMENT;
    if (work_len < need) return DCMP_RLE_OUTPUT_TOO_SMALL;

    const size_t cols = layout->columns, rows = layout->rows;
    const size_t region = segment_region(layout);
    uint8_t *header = work;
    uint8_t *regions = work + DCMP_RLE_HEADER_SIZE;
    uint8_t *planes = regions + region * (size_t)nseg;
    uint8_t *pos[DCMP_RLE_MAX_SEGMENTS];
    uint8_t *end[DCMP_RLE_MAX_SEGMENTS];

    for (int k = 0; k < nseg; k++) {
        pos[k] = regions + region * (size_t)k;
        end[k] = pos[k] + region;
    }
    /* One row at a time, all segments: the source is read once. */
    for (size_t row = 0; row < rows; row++) {
        const uint8_t *plane = planes;
        if (nseg == 1) {
            plane = src + row * cols; /* 8-bit monochrome: encode in place */
        } else {
            split_row(src, layout, row, planes);
        }
        for (int k = 0; k < nseg; k++) {
            if ((size_t)(end[k] - pos[k]) < ROW_BUDGET(cols)) return DCMP_RLE_OUTPUT_TOO_SMALL;
            pos[k] = encode_row(nseg == 1 ? plane : planes + (size_t)k * cols, cols, pos[k]);
        }
    }

    /* Header: segment count and offsets of contiguous, even-length segments. */
    memset(header, 0, DCMP_RLE_HEADER_SIZE);
    put_le32(header, (uint32_t)nseg);
    size_t offset = DCMP_RLE_HEADER_SIZE;
    for (int k = 0; k < nseg; k++) {
        size_t len = (size_t)(pos[k] - (regions + region * (size_t)k));
        if (len & 1) *pos[k]++ = 0, len++; /* PS3.5 G.5: pad to even length */
        if (offset > UINT32_MAX) return DCMP_RLE_INVALID_ARGUMENT;
        put_le32(header + 4 + 4 * k, (uint32_t)offset);
        offset += len;
    }
    if (offset > (size_t)PTRDIFF_MAX) return DCMP_RLE_INVALID_ARGUMENT;
    return (ptrdiff_t)offset;
}

int dcmp_rle_gather(const uint8_t *work, const dcmp_rle_layout *layout,
                    uint8_t *dst, size_t dst_len)
{
    int nseg = dcmp_rle_segment_count(layout);
    size_t region = segment_region(layout);
    if (nseg < 0 || region == 0 || dst_len < DCMP_RLE_HEADER_SIZE) return DCMP_RLE_INVALID_ARGUMENT;
    memcpy(dst, work, DCMP_RLE_HEADER_SIZE);
    for (int k = 0; k < nseg; k++) {
        size_t start = get_le32(work + 4 + 4 * k);
        size_t stop = (k + 1 < nseg) ? get_le32(work + 8 + 4 * k) : dst_len;
        if (stop < start || stop > dst_len || stop - start > region) return DCMP_RLE_OUTPUT_TOO_SMALL;
        memcpy(dst + start, work + DCMP_RLE_HEADER_SIZE + region * (size_t)k, stop - start);
    }
    return DCMP_RLE_OK;
}

/* ------------------------------------------------------------------ decoder */

int dcmp_rle_parse_header(const uint8_t *src, size_t src_len,
                          uint32_t offsets[DCMP_RLE_MAX_SEGMENTS + 1],
                          int *nsegments, dcmp_rle_report *report)
{
    report->segment = -1;
    report->expected = DCMP_RLE_HEADER_SIZE;
    report->actual = src_len;
    if (src_len < DCMP_RLE_HEADER_SIZE) return DCMP_RLE_HEADER_TRUNCATED;

    uint32_t n = get_le32(src);
    report->actual = n;
    if (n < 1 || n > DCMP_RLE_MAX_SEGMENTS) return DCMP_RLE_SEGMENT_COUNT;
    for (uint32_t k = 0; k < n; k++) offsets[k] = get_le32(src + 4 + 4 * k);
    offsets[n] = src_len > UINT32_MAX ? UINT32_MAX : (uint32_t)src_len;
    for (uint32_t k = 0; k < n; k++) {
        report->segment = (int)k;
        report->actual = offsets[k];
        if (k == 0 && offsets[0] != DCMP_RLE_HEADER_SIZE) {
            report->expected = DCMP_RLE_HEADER_SIZE;
            return DCMP_RLE_OFFSET_INVALID;
        }
        /* each segment starts after the previous one and inside the fragment */
        report->expected = k ? offsets[k - 1] : DCMP_RLE_HEADER_SIZE;
        if (offsets[k] >= src_len || (k && offsets[k] <= offsets[k - 1]))
            return DCMP_RLE_OFFSET_INVALID;
    }
    *nsegments = (int)n;
    report->segment = -1;
    return DCMP_RLE_OK;
}

/*
 * The checked packet loop, from input position p and output position o: every
 * packet is bounded by both buffers; after the output is full only the one
 * padding byte of G.5 (or -128 no-ops) may remain. Writes bytes into `plane`,
 * or, with `hi` set, 16-bit little-endian samples into `dst16` whose high
 * bytes come from `hi`.
 */
static int decode_checked(const uint8_t *s, size_t n, size_t p, size_t o, size_t out_len,
                          uint8_t *plane, const uint8_t *hi, uint8_t *dst16, size_t *decoded)
{
    while (o < out_len) {
        if (p >= n) {
            *decoded = o;
            return DCMP_RLE_SEGMENT_SHORT;
        }
        int h = (int8_t)s[p++];
        if (h == -128) continue; /* no operation (PS3.5 G.3.2) */
        size_t len = h >= 0 ? (size_t)h + 1 : (size_t)(1 - h);
        size_t need = h >= 0 ? len : 1; /* input bytes the packet carries */
        if (need > n - p) {
            *decoded = h >= 0 ? o + (n - p) : o;
            return DCMP_RLE_SEGMENT_SHORT;
        }
        if (len > out_len - o) {
            *decoded = o + len;
            return DCMP_RLE_SEGMENT_LONG;
        }
        if (hi) {
            uint8_t *d = dst16 + 2 * o;
            for (size_t i = 0; i < len; i++) {
                d[2 * i] = h >= 0 ? s[p + i] : s[p];
                d[2 * i + 1] = hi[o + i];
            }
        } else if (h >= 0) {
            memcpy(plane + o, s + p, len);
        } else {
            memset(plane + o, s[p], len);
        }
        p += need;
        o += len;
    }
    *decoded = o;
    while (p < n) {
        if (s[p] != 0x80 && p + 1 < n) {
            *decoded = o + 1;
            return DCMP_RLE_SEGMENT_LONG;
        }
        p++;
    }
    return DCMP_RLE_OK;
}

/*
 * Expand one segment into `out` (exactly `out_len` bytes). A packet that would
 * run past either buffer is an error; after the plane is full only the one
 * padding byte of G.5 may remain.
 */
static int decode_segment(const uint8_t *s, size_t n, uint8_t *out, size_t out_len,
                          size_t *decoded)
{
    size_t p = 0, o = 0;
    /* Fast loop: while 130 bytes of input and 128 of output remain, every
       packet fits; short packets are copied as whole 16/32-byte blocks (the
       bytes past the packet are overwritten by the packets that follow). */
    while (n - p >= 130 && out_len - o >= 128 + 32) {
        int h = (int8_t)s[p];
        if (h >= 0) {
            size_t len = (size_t)h + 1;
            if (len <= 16) {
                memcpy(out + o, s + p + 1, 16);
            } else if (len <= 32) {
                memcpy(out + o, s + p + 1, 32);
            } else {
                memcpy(out + o, s + p + 1, len);
            }
            p += len + 1;
            o += len;
        } else if (h != -128) {
            size_t len = (size_t)(1 - h);
            uint8_t v = s[p + 1];
            if (len <= 16) {
                memset(out + o, v, 16);
            } else {
                memset(out + o, v, len);
            }
            p += 2;
            o += len;
        } else {
            p += 1; /* -128: no operation (PS3.5 G.3.2) */
        }
    }
    return decode_checked(s, n, p, o, out_len, out, NULL, NULL, decoded);
}

/*
 * 16-bit fast path: expand the low-byte segment straight into little-endian
 * samples, taking each sample's high byte from the already-decoded high plane
 * `hi`. Saves writing and re-reading a whole byte plane. Same checks as
 * decode_segment; every packet is bounded by both buffers.
 */
#if defined(__SSE2__)
/* Interleave `chunks` x 16 low bytes (`lo`, or the byte `v` when lo is NULL)
   with the high bytes at `hi` into little-endian samples at `d`. */
static inline void interleave16(uint8_t *d, const uint8_t *lo, uint8_t v, const uint8_t *hi,
                                size_t chunks)
{
    __m128i vv = _mm_set1_epi8((char)v);
    for (size_t k = 0; k < chunks; k++) {
        __m128i l = lo ? _mm_loadu_si128((const __m128i *)(lo + 16 * k)) : vv;
        __m128i h = _mm_loadu_si128((const __m128i *)(hi + 16 * k));
        _mm_storeu_si128((__m128i *)(d + 32 * k), _mm_unpacklo_epi8(l, h));
        _mm_storeu_si128((__m128i *)(d + 32 * k + 16), _mm_unpackhi_epi8(l, h));
    }
}
#endif

static int decode_low_segment16(const uint8_t *s, size_t n, const uint8_t *hi,
                                uint8_t *dst, size_t npix, size_t *decoded)
{
    size_t p = 0, o = 0;
#if defined(__SSE2__)
    /* Fast loop: whole 16-sample blocks, with room for the overshoot in both
       buffers (later packets overwrite it). */
    while (n - p >= 130 && npix - o >= 128 + 16) {
        int h = (int8_t)s[p];
        if (h >= 0) {
            size_t len = (size_t)h + 1;
            interleave16(dst + 2 * o, s + p + 1, 0, hi + o, (len + 15) / 16);
            p += len + 1;
            o += len;
        } else if (h != -128) {
            size_t len = (size_t)(1 - h);
            interleave16(dst + 2 * o, NULL, s[p + 1], hi + o, (len + 15) / 16);
            p += 2;
            o += len;
        } else {
            p += 1;
        }
    }
#endif
    return decode_checked(s, n, p, o, npix, NULL, hi, dst, decoded);
}

size_t dcmp_rle_decode_scratch(const dcmp_rle_layout *layout)
{
    size_t npix = frame_pixels(layout), size;
    if (layout->bytes_per_sample == 1 && (layout->planar || layout->samples_per_pixel == 1))
        return 0; /* segments decode straight into the output */
    if (mul_overflows(npix, (size_t)layout->bytes_per_sample, &size)) return 0;
    return size;
}

/* Merge bps byte planes (most significant first) into little-endian samples. */
static void merge_planes(const uint8_t *planes, size_t npix, int bps, uint8_t *dst,
                         size_t stride)
{
    if (bps == 2 && stride == 2) {
        const uint8_t *hi = planes, *lo = planes + npix;
        for (size_t i = 0; i < npix; i++) {
            dst[2 * i] = lo[i];
            dst[2 * i + 1] = hi[i];
        }
        return;
    }
    for (int b = 0; b < bps; b++) {
        const uint8_t *plane = planes + (size_t)b * npix;
        uint8_t *d = dst + (bps - 1 - b);
        for (size_t i = 0; i < npix; i++) d[i * stride] = plane[i];
    }
}

int dcmp_rle_decode(const uint8_t *src, size_t src_len,
                    const dcmp_rle_layout *layout,
                    uint8_t *dst, size_t dst_len,
                    uint8_t *scratch, size_t scratch_len,
                    dcmp_rle_report *report)
{
    uint32_t offsets[DCMP_RLE_MAX_SEGMENTS + 1];
    int nfound = 0;
    int nseg = dcmp_rle_segment_count(layout);
    size_t npix = frame_pixels(layout);
    size_t frame = dcmp_rle_frame_size(layout);

    report->segment = -1;
    report->expected = 0;
    report->actual = 0;
    if (nseg < 0 || npix == 0 || frame == 0) return DCMP_RLE_INVALID_ARGUMENT;
    if (dst_len < frame) return DCMP_RLE_OUTPUT_TOO_SMALL;
    if (scratch_len < dcmp_rle_decode_scratch(layout)) return DCMP_RLE_OUTPUT_TOO_SMALL;

    int rc = dcmp_rle_parse_header(src, src_len, offsets, &nfound, report);
    if (rc) return rc;
    if (nfound != nseg) {
        report->expected = (size_t)nseg;
        report->actual = (size_t)nfound;
        return DCMP_RLE_SEGMENT_MISMATCH;
    }

    const int bps = layout->bytes_per_sample, spp = layout->samples_per_pixel;
    const int direct = (bps == 1 && (layout->planar || spp == 1));
    /* 16-bit samples stored one plane per sample: fuse the merge into the
       low-byte segment */
    const int fused16 = (bps == 2 && (layout->planar || spp == 1));
    for (int s = 0; s < spp; s++) {
        if (fused16) {
            size_t decoded = 0;
            int k = 2 * s;
            rc = decode_segment(src + offsets[k], offsets[k + 1] - offsets[k], scratch, npix,
                                &decoded);
            if (!rc) {
                k++;
                rc = decode_low_segment16(src + offsets[k], offsets[k + 1] - offsets[k],
                                          scratch, dst + (size_t)s * npix * 2, npix, &decoded);
            }
            if (rc) {
                report->segment = k;
                report->expected = npix;
                report->actual = decoded;
                return rc;
            }
            continue;
        }
        for (int b = 0; b < bps; b++) {
            int k = s * bps + b;
            uint8_t *plane = direct ? dst + (size_t)s * npix : scratch + (size_t)b * npix;
            size_t decoded = 0;
            rc = decode_segment(src + offsets[k], offsets[k + 1] - offsets[k], plane, npix,
                                &decoded);
            if (rc) {
                report->segment = k;
                report->expected = npix;
                report->actual = decoded;
                return rc;
            }
        }
        if (direct) continue;
        /* place sample s: planar output holds each sample as a plane */
        if (layout->planar) {
            merge_planes(scratch, npix, bps, dst + (size_t)s * npix * (size_t)bps, (size_t)bps);
        } else {
            merge_planes(scratch, npix, bps, dst + (size_t)s * (size_t)bps,
                         (size_t)bps * (size_t)spp);
        }
    }
    return DCMP_RLE_OK;
}
