/*
 * libFuzzer target for the DICOM RLE codec (native/rle.c).
 *
 * Input: three layout bytes, then the payload.
 *   byte 0  bit 0     mode: 0 = payload is an RLE fragment to decode,
 *                           1 = payload is raw pixels to encode
 *           bits 1-2  bytes_per_sample: 1, 2, 4, 8 (8 only with one sample)
 *           bit 3     samples_per_pixel: 1 or 3
 *           bit 4     planar configuration: 0 or 1
 *           bit 5     wide rows: columns - 1 takes all of byte 2 plus 256
 *   byte 1  rows - 1     (low 6 bits: 1..64)
 *   byte 2  columns - 1  (low 6 bits: 1..64; with bit 5 of byte 0: 257..512,
 *                         and rows cut so the frame has at most 4096 pixels)
 *
 * Wide rows matter for the encoder: it codes each row of a segment on its own
 * (PS3.5 G.3.1), so with at most 64 columns it never reaches a 128-byte
 * literal, a 128-byte run, or the packet-boundary cases of encode_row.
 *
 * Every buffer is malloc'ed with exactly the size the API reports, so ASan
 * sees any read or write past it. Checks, each ending in abort():
 *   - a fragment that decodes is re-encoded (dcmp_rle_encode + gather) and
 *     decoded again, and must give the same frame bit for bit;
 *   - raw pixels are encoded and decoded and must come back unchanged;
 *   - every fragment the encoder writes obeys PS3.5 G.3/G.5: no -128 code,
 *     no packet crossing a row, segments of even length, nothing after the
 *     plane but the one padding byte;
 *   - a successful decode writes every byte of the frame (two decodes into
 *     buffers pre-filled with different bytes must agree).
 *
 * Build and run: tools/fuzz_rle.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rle.h"

#define LAYOUT_BYTES 3
#define MAX_PIXELS 4096 /* 64 x 64; wide frames are cut to this */

static void fail(const char *what, const dcmp_rle_layout *L)
{
    fprintf(stderr, "fuzz_rle_decode: %s (rows %zu, columns %zu, samples %d, bytes %d, planar %d)\n",
            what, L->rows, L->columns, L->samples_per_pixel, L->bytes_per_sample, L->planar);
    abort();
}

static void *xmalloc(size_t n)
{
    /* malloc(0) under ASan is a live pointer with no addressable bytes */
    void *p = malloc(n);
    if (p == NULL && n != 0) abort();
    return p;
}

static dcmp_rle_layout read_layout(const uint8_t *data)
{
    static const int bytes[4] = {1, 2, 4, 8};
    dcmp_rle_layout L;
    L.samples_per_pixel = (data[0] & 0x08) ? 3 : 1;
    L.bytes_per_sample = bytes[(data[0] >> 1) & 3];
    if (L.bytes_per_sample == 8 && L.samples_per_pixel == 3) L.bytes_per_sample = 4; /* 24 > 15 segments */
    L.planar = (data[0] >> 4) & 1;
    L.rows = (size_t)(data[1] & 63) + 1;
    if (data[0] & 0x20) {
        L.columns = (size_t)data[2] + 257;
        if (L.rows * L.columns > MAX_PIXELS) L.rows = MAX_PIXELS / L.columns;
    } else {
        L.columns = (size_t)(data[2] & 63) + 1;
    }
    return L;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* What the encoder writes must follow PS3.5 G.3.1 and G.5, not just decode. */
static void check_conformance(const uint8_t *frag, size_t len, const dcmp_rle_layout *L)
{
    int nseg = dcmp_rle_segment_count(L);
    size_t plane = L->rows * L->columns;
    if (len < DCMP_RLE_HEADER_SIZE || (len & 1)) fail("encoded fragment too short or odd", L);
    if (le32(frag) != (uint32_t)nseg) fail("encoded segment count wrong", L);
    for (int k = nseg; k < DCMP_RLE_MAX_SEGMENTS; k++)
        if (le32(frag + 4 + 4 * k) != 0) fail("unused header offset not zero", L);
    for (int k = 0; k < nseg; k++) {
        size_t start = le32(frag + 4 + 4 * k);
        size_t stop = k + 1 < nseg ? le32(frag + 8 + 4 * k) : len;
        if (start < DCMP_RLE_HEADER_SIZE || stop > len || stop <= start) fail("encoded offsets invalid", L);
        if ((start | stop) & 1) fail("encoded segment of odd length (G.5)", L);
        const uint8_t *s = frag + start;
        size_t n = stop - start, p = 0, o = 0;
        while (o < plane) {
            if (p >= n) fail("encoded segment short", L);
            int h = (int8_t)s[p++];
            if (h == -128) fail("encoder wrote the -128 code (G.3.1)", L);
            size_t run = h >= 0 ? (size_t)h + 1 : (size_t)(1 - h);
            if (h < 0 && run < 2) fail("encoder wrote a one-byte replicate run", L);
            if ((o % L->columns) + run > L->columns) fail("encoded packet crosses a row (G.3.1)", L);
            p += h >= 0 ? run : 1;
            if (p > n) fail("encoded packet runs past its segment", L);
            o += run;
        }
        if (n - p > 1) fail("encoded segment has more than one byte after its plane", L);
    }
}

/* Encode `frame` and return the gathered fragment (caller frees). */
static uint8_t *encode(const uint8_t *frame, size_t frame_len, const dcmp_rle_layout *L,
                       size_t *out_len)
{
    size_t work_len = dcmp_rle_encode_workspace(L);
    if (work_len == 0) fail("encode workspace size 0 for a valid layout", L);
    uint8_t *work = xmalloc(work_len);
    ptrdiff_t size = dcmp_rle_encode(frame, frame_len, L, work, work_len);
    if (size < DCMP_RLE_HEADER_SIZE) fail("encoder failed on a valid frame", L);
    uint8_t *frag = xmalloc((size_t)size);
    if (dcmp_rle_gather(work, L, frag, (size_t)size) != DCMP_RLE_OK) fail("gather failed", L);
    free(work);
    check_conformance(frag, (size_t)size, L);
    *out_len = (size_t)size;
    return frag;
}

/* Decode into a fresh exact-size buffer pre-filled with `fill`; NULL on error. */
static uint8_t *decode(const uint8_t *frag, size_t frag_len, const dcmp_rle_layout *L,
                       uint8_t fill, int *rc_out)
{
    size_t frame_len = dcmp_rle_frame_size(L);
    size_t scratch_len = dcmp_rle_decode_scratch(L);
    uint8_t *dst = xmalloc(frame_len);
    uint8_t *scratch = xmalloc(scratch_len);
    dcmp_rle_report report;
    memset(dst, fill, frame_len);
    int rc = dcmp_rle_decode(frag, frag_len, L, dst, frame_len, scratch, scratch_len, &report);
    free(scratch);
    *rc_out = rc;
    if (rc > 0 || rc < DCMP_RLE_SEGMENT_LONG) fail("decoder returned an unknown code", L);
    if (rc != DCMP_RLE_OK) {
        /* header errors come before the count is matched against the layout,
           so the segment may be any of the header's 15 */
        if (report.segment < -1 || report.segment >= DCMP_RLE_MAX_SEGMENTS)
            fail("error report names a segment that does not exist", L);
        free(dst);
        return NULL;
    }
    return dst;
}

/* Encode `frame`, decode the result, and insist on the same bytes. */
static void round_trip(const uint8_t *frame, size_t frame_len, const dcmp_rle_layout *L)
{
    size_t frag_len;
    int rc;
    uint8_t *frag = encode(frame, frame_len, L, &frag_len);
    uint8_t *back = decode(frag, frag_len, L, 0x5A, &rc);
    if (back == NULL) fail("decoder rejected the encoder's output", L);
    if (memcmp(back, frame, frame_len) != 0) fail("round trip is not bit-exact", L);
    free(back);
    free(frag);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < LAYOUT_BYTES) return 0;
    const dcmp_rle_layout L = read_layout(data);
    const uint8_t *payload = data + LAYOUT_BYTES;
    const size_t payload_len = size - LAYOUT_BYTES;
    const size_t frame_len = dcmp_rle_frame_size(&L);
    if (dcmp_rle_segment_count(&L) < 1 || dcmp_rle_segment_count(&L) > DCMP_RLE_MAX_SEGMENTS ||
        frame_len == 0)
        fail("harness built an invalid layout", &L);

    if (data[0] & 1) {
        /* Raw pixels: the payload, repeated to fill the frame (zeros if empty). */
        uint8_t *frame = xmalloc(frame_len);
        for (size_t i = 0; i < frame_len; i++)
            frame[i] = payload_len ? payload[i % payload_len] : 0;
        round_trip(frame, frame_len, &L);
        free(frame);
        return 0;
    }

    /* Fragment: copy it so the decoder's reads are bounded by this allocation. */
    uint8_t *frag = xmalloc(payload_len);
    if (payload_len) memcpy(frag, payload, payload_len);
    int rc;
    uint8_t *frame = decode(frag, payload_len, &L, 0xA5, &rc);
    if (frame != NULL) {
        int rc2;
        uint8_t *again = decode(frag, payload_len, &L, 0x3C, &rc2);
        if (again == NULL || memcmp(again, frame, frame_len) != 0)
            fail("decode left bytes of the frame unwritten or is not deterministic", &L);
        free(again);
        round_trip(frame, frame_len, &L);
        free(frame);
    }
    free(frag);
    return 0;
}
