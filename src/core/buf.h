/* Slices and the one growable buffer type. Every buffer has a hard cap: going
 * past it is an error (-E2BIG), never a silent realloc. */
#ifndef YR_BUF_H
#define YR_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *ptr;
    size_t len;
} yr_str_t;

#define YR_STR(lit) ((yr_str_t){(lit), sizeof(lit) - 1})
#define YR_STR_NULL ((yr_str_t){NULL, 0})

static inline yr_str_t yr_str(const char *cstr)
{
    return (yr_str_t){cstr, cstr ? strlen(cstr) : 0};
}

static inline bool yr_str_eq(yr_str_t a, yr_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool yr_str_ieq(yr_str_t a, yr_str_t b);
bool yr_str_has_prefix(yr_str_t s, yr_str_t prefix);
yr_str_t yr_str_trim(yr_str_t s);
/* Parses a non-negative decimal integer in [0, max]; returns 0 or -EINVAL. */
__attribute__((warn_unused_result)) int yr_str_to_u64(yr_str_t s, uint64_t max, uint64_t *out);

typedef struct {
    char *data; /* heap memory owned by the buffer; NUL-terminated when len>0 */
    size_t len;
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
} yr_buf_t;

/* Initialises an empty buffer that may grow to max bytes. No allocation. */
void yr_buf_init(yr_buf_t *b, size_t max);
void yr_buf_free(yr_buf_t *b);
void yr_buf_reset(yr_buf_t *b);
/* Appends; returns 0, -E2BIG when past max, -ENOMEM. */
__attribute__((warn_unused_result)) int yr_buf_append(yr_buf_t *b, const void *p, size_t n);
__attribute__((warn_unused_result)) int yr_buf_append_str(yr_buf_t *b, yr_str_t s);
__attribute__((warn_unused_result, format(printf, 2, 3))) int yr_buf_printf(yr_buf_t *b,
                                                                          const char *fmt, ...);
/* Makes room for n more bytes; returns 0, -E2BIG or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_buf_reserve(yr_buf_t *b, size_t n);
/* Drops the first n bytes (n <= len). */
void yr_buf_consume(yr_buf_t *b, size_t n);
/* Moves the data out: the caller owns the returned heap memory. */
char *yr_buf_steal(yr_buf_t *b, size_t *len);

/* Appends s as a JSON string literal (with quotes), escaping as RFC 8259. */
__attribute__((warn_unused_result)) int yr_buf_append_json_str(yr_buf_t *b, yr_str_t s);

#endif
