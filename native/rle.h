/*
 * DICOM RLE Lossless (PS3.5 Annex G) on byte buffers.
 *
 * Plain C99, no Python, no global state. Every read and write is bounded by a
 * length the caller passes; functions return DCMP_RLE_OK (0) or a negative
 * code below. Frames are described by a dcmp_rle_layout; samples are stored in
 * little-endian byte order, either pixel-interleaved (planar = 0) or one
 * plane per sample (planar = 1).
 */
#ifndef DCMP_RLE_H
#define DCMP_RLE_H

#include <stddef.h>
#include <stdint.h>

#define DCMP_RLE_OK 0
#define DCMP_RLE_INVALID_ARGUMENT (-1)   /* layout not encodable as RLE */
#define DCMP_RLE_OUTPUT_TOO_SMALL (-2)   /* destination smaller than needed */
#define DCMP_RLE_HEADER_TRUNCATED (-3)   /* fragment shorter than the 64-byte header */
#define DCMP_RLE_SEGMENT_COUNT (-4)      /* header segment count not in 1..15 */
#define DCMP_RLE_SEGMENT_MISMATCH (-5)   /* segment count disagrees with the layout */
#define DCMP_RLE_OFFSET_INVALID (-6)     /* offset not 64 / not increasing / past the end */
#define DCMP_RLE_SEGMENT_SHORT (-7)      /* segment ends before its plane is full */
#define DCMP_RLE_SEGMENT_LONG (-8)       /* segment holds more than its plane */

#define DCMP_RLE_HEADER_SIZE 64
#define DCMP_RLE_MAX_SEGMENTS 15

typedef struct {
    size_t rows;
    size_t columns;
    int samples_per_pixel;  /* 1..15 */
    int bytes_per_sample;   /* 1, 2, 4 or 8 */
    int planar;             /* 0: interleaved, 1: one plane per sample */
} dcmp_rle_layout;

/* Where and why a decode failed, for the error message. */
typedef struct {
    int segment;        /* index of the failing segment, -1 for the header */
    size_t expected;    /* bytes the plane needs, or segments the layout needs */
    size_t actual;      /* bytes decoded / segments found / offending offset */
} dcmp_rle_report;

/* Number of segments the layout needs, or a negative code. */
int dcmp_rle_segment_count(const dcmp_rle_layout *layout);

/* Bytes of raw frame data the layout describes (0 on overflow). */
size_t dcmp_rle_frame_size(const dcmp_rle_layout *layout);

/* Size of the workspace dcmp_rle_encode needs (0 on overflow). */
size_t dcmp_rle_encode_workspace(const dcmp_rle_layout *layout);

/*
 * Encode one frame. `work` must hold dcmp_rle_encode_workspace() bytes: the
 * header and each segment are built in their own region of it (so rows of all
 * segments are coded in one pass over the source). Returns the size of the
 * encoded fragment; dcmp_rle_gather() then copies it, contiguous, to its
 * final buffer of exactly that size.
 */
ptrdiff_t dcmp_rle_encode(const uint8_t *src, size_t src_len,
                          const dcmp_rle_layout *layout,
                          uint8_t *work, size_t work_len);

/* Copy the fragment built by dcmp_rle_encode into `dst` (size returned above). */
int dcmp_rle_gather(const uint8_t *work, const dcmp_rle_layout *layout,
                    uint8_t *dst, size_t dst_len);

/* Size of the scratch buffer dcmp_rle_decode needs (may be 0). */
size_t dcmp_rle_decode_scratch(const dcmp_rle_layout *layout);

/*
 * Decode one fragment into `dst` (dcmp_rle_frame_size bytes, little-endian
 * samples in the layout's planar order). `scratch` holds
 * dcmp_rle_decode_scratch() bytes. On error, `report` says where.
 */
int dcmp_rle_decode(const uint8_t *src, size_t src_len,
                    const dcmp_rle_layout *layout,
                    uint8_t *dst, size_t dst_len,
                    uint8_t *scratch, size_t scratch_len,
                    dcmp_rle_report *report);

/* Parse and validate the 64-byte header alone: segment count and offsets. */
int dcmp_rle_parse_header(const uint8_t *src, size_t src_len,
                          uint32_t offsets[DCMP_RLE_MAX_SEGMENTS + 1],
                          int *nsegments, dcmp_rle_report *report);

#endif
