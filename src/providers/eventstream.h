/* The AWS event stream encoding (application/vnd.amazon.eventstream), the
 * framing of Bedrock's ConverseStream and every other AWS streaming API:
 *
 *   total length (u32) | headers length (u32) | prelude CRC32 (u32)
 *   headers: { name length (u8), name, type (u8), value }*
 *   payload
 *   message CRC32 (u32, over every byte before it)
 *
 * All integers are big-endian; the CRC is the IEEE one of zlib's crc32.
 * Header values come in ten types (bool true/false carry no bytes; byte,
 * short, int, long, timestamp are 1/2/4/8/8-byte signed integers; byte
 * array and string are a u16 length and the bytes; uuid is 16 bytes).
 *
 * The decoder verifies both CRCs and every length before anything of a
 * message is believed, and caps a message at max (at most
 * YR_ES_MAX_MESSAGE) and its header block at YR_ES_MAX_HEADERS_BYTES.
 * Messages are cut incrementally: bytes may arrive split anywhere.
 *
 * Memory: a parser owns one buffer (freed by yr_es_free) holding only the
 * unfinished tail of a message; a yr_es_message_t points into the parser's
 * buffer or the caller's bytes and is valid only during the callback. */
#ifndef YR_EVENTSTREAM_H
#define YR_EVENTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define YR_ES_MAX_MESSAGE (24u * 1024 * 1024)
#define YR_ES_MAX_HEADERS_BYTES (128u * 1024)
#define YR_ES_MAX_HEADERS 64
#define YR_ES_PRELUDE 12
#define YR_ES_MIN_MESSAGE 16

typedef enum {
    YR_ES_BOOL_TRUE = 0,
    YR_ES_BOOL_FALSE = 1,
    YR_ES_BYTE = 2,
    YR_ES_SHORT = 3,
    YR_ES_INT = 4,
    YR_ES_LONG = 5,
    YR_ES_BYTES = 6,
    YR_ES_STRING = 7,
    YR_ES_TIMESTAMP = 8, /* milliseconds since the epoch */
    YR_ES_UUID = 9,
} yr_es_type_t;

typedef struct {
    yr_str_t name;
    yr_es_type_t type;
    int64_t num;    /* bool (1/0), byte, short, int, long, timestamp */
    yr_str_t bytes; /* byte array, string, uuid (16 bytes) */
} yr_es_header_t;

typedef struct {
    uint32_t total_len, headers_len, prelude_crc, message_crc;
    yr_es_header_t headers[YR_ES_MAX_HEADERS];
    size_t nheaders;
    yr_str_t payload;
} yr_es_message_t;

/* One complete message (n is its total length) -> m. 0, or -EPROTO when a
 * CRC, a length or a header is wrong, -E2BIG past the caps. */
__attribute__((warn_unused_result)) int yr_es_decode(const uint8_t *p, size_t n, size_t max,
                                                     yr_es_message_t *m);

/* The value of a string header, or YR_STR_NULL. */
yr_str_t yr_es_header_str(const yr_es_message_t *m, const char *name);

typedef int (*yr_es_fn)(const yr_es_message_t *m, void *arg);

typedef struct {
    yr_buf_t buf;
    size_t max;
} yr_es_parser_t;

void yr_es_init(yr_es_parser_t *p, size_t max);
void yr_es_free(yr_es_parser_t *p);
/* Feeds bytes; fn runs for every complete message. Returns 0, fn's
 * non-zero value, -EPROTO (corrupt) or -E2BIG (past the caps). After an
 * error the stream is unusable. */
__attribute__((warn_unused_result)) int yr_es_feed(yr_es_parser_t *p, const char *data, size_t n,
                                                   yr_es_fn fn, void *arg);
bool yr_es_partial(const yr_es_parser_t *p);

/* Appends one message with the given headers (strings, byte arrays and the
 * numeric types) and payload to out. 0, -E2BIG or -ENOMEM. For the
 * simulator and the tests. */
__attribute__((warn_unused_result)) int yr_es_encode(yr_buf_t *out, const yr_es_header_t *h,
                                                     size_t nh, yr_str_t payload);

#endif
