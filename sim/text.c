/* Pure text helpers of the simulator: UTF-8 boundaries, words, stream pieces,
 * deterministic ids. No I/O, no globals: unit tests include this file. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t sim_utf8_floor(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    /* Back up over continuation bytes to the start of the cut sequence. */
    while (n > 0 && is_cont((unsigned char)s[n]))
        n--;
    return n;
}

size_t sim_utf8_count(yr_str_t s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += !is_cont((unsigned char)s.ptr[i]);
    return n;
}

size_t sim_count_words(yr_str_t s)
{
    size_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.len; i++) {
        bool sp = is_space((unsigned char)s.ptr[i]);
        if (!sp && !in_word)
            n++;
        in_word = !sp;
    }
    return n;
}

yr_str_t sim_first_words(yr_str_t s, size_t n)
{
    size_t words = 0;
    for (size_t i = 0; i < s.len; i++) {
        bool sp = is_space((unsigned char)s.ptr[i]);
        bool starts = !sp && (i == 0 || is_space((unsigned char)s.ptr[i - 1]));
        if (starts && words++ == n) {
            size_t end = i;
            while (end > 0 && is_space((unsigned char)s.ptr[end - 1]))
                end--;
            return (yr_str_t){s.ptr, end};
        }
    }
    return s;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (!is_cont(p[i]))
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

json_t *sim_json_string(const char *p, size_t len)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0 || (n == 1 && u[i] == 0))
            break;
        i += n;
    }
    if (i == len)
        return json_stringn(p, len);
    /* Rare: rebuild with U+FFFD for every invalid byte (and NUL). */
    yr_buf_t b;
    yr_buf_init(&b, len * 3 + 1);
    int rc = 0;
    for (i = 0; rc == 0 && i < len;) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0 || (n == 1 && u[i] == 0)) {
            rc = yr_buf_append(&b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            rc = yr_buf_append(&b, p + i, n);
            i += n;
        }
    }
    json_t *s = rc == 0 ? json_stringn(b.data ? b.data : "", b.len) : NULL;
    yr_buf_free(&b);
    return s;
}

const char *sim_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sim_random_alnum(uint64_t seed, char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t state = seed;
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 10 == 0)
            r = splitmix64(&state);
        out[i] = alphabet[r % 62];
        r /= 62;
    }
    out[n] = '\0';
}

/* ---- stream pieces --------------------------------------------------------- */

void sim_pieces_init(sim_pieces_t *p, yr_str_t s, size_t chunks)
{
    memset(p, 0, sizeof(*p));
    p->s = s;
    if (chunks > 0) {
        p->cps = sim_utf8_count(s);
        p->chunks = chunks < p->cps ? chunks : p->cps;
        if (p->chunks == 0)
            p->chunks = SIZE_MAX; /* chunks mode with nothing to split */
    }
}

static bool next_word(sim_pieces_t *p, yr_str_t *piece)
{
    const char *s = p->s.ptr;
    size_t len = p->s.len, i = p->off;
    if (i >= len)
        return false;
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    while (i < len && !is_space((unsigned char)s[i]))
        i++;
    size_t j = i;
    while (j < len && is_space((unsigned char)s[j]))
        j++;
    if (j == len)
        i = len; /* trailing whitespace stays with the last word */
    *piece = (yr_str_t){s + p->off, i - p->off};
    p->off = i;
    return true;
}

bool sim_pieces_next(sim_pieces_t *p, yr_str_t *piece)
{
    if (p->chunks == 0)
        return next_word(p, piece);
    if (p->chunks == SIZE_MAX || p->done >= p->chunks)
        return false;
    p->done++;
    size_t end_cp = p->done == p->chunks ? p->cps : p->done * p->cps / p->chunks;
    size_t i = p->off;
    while (p->cp_off < end_cp && i < p->s.len) {
        i++;
        while (i < p->s.len && is_cont((unsigned char)p->s.ptr[i]))
            i++;
        p->cp_off++;
    }
    if (p->done == p->chunks)
        i = p->s.len;
    *piece = (yr_str_t){p->s.ptr + p->off, i - p->off};
    p->off = i;
    return true;
}

size_t sim_pieces_count(yr_str_t s, size_t chunks)
{
    if (s.len == 0)
        return 0;
    if (chunks == 0) {
        size_t w = sim_count_words(s);
        return w ? w : 1;
    }
    size_t cps = sim_utf8_count(s);
    return chunks < cps ? chunks : cps;
}

size_t sim_args_chunks(yr_str_t args)
{
    size_t cps = sim_utf8_count(args);
    size_t n = (cps + 7) / 8;
    return n < 2 ? 2 : n;
}

/* ---- usage ----------------------------------------------------------------- */

int sim_append_usage(yr_buf_t *out, json_t *base, const json_t *override, const char *total_key,
                     const char *a_key, const char *b_key)
{
    if (base == NULL)
        return -ENOMEM;
    if (override != NULL) {
        json_object_update_recursive(base, (json_t *) override);
        if (total_key != NULL && json_object_get(override, total_key) == NULL) {
            json_int_t a = json_integer_value(json_object_get(base, a_key));
            json_int_t b = json_integer_value(json_object_get(base, b_key));
            json_object_set_new(base, total_key, json_integer(a + b));
        }
    }
    char *s = json_dumps(base, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(base);
    if (s == NULL)
        return -ENOMEM;
    int rc = yr_buf_append_str(out, yr_str(s));
    free(s);
    return rc;
}

/* ---- errors ------------------------------------------------------------------ */

void sim_error_set(sim_error_t *err, int status, const char *type, const char *code,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msgbuf, sizeof(err->msgbuf), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof(err->msgbuf))
        len = sim_utf8_floor(err->msgbuf, sizeof(err->msgbuf) - 1, sizeof(err->msgbuf) - 1);
    err->msgbuf[len] = '\0';
    err->status = status;
    err->message = (yr_str_t){err->msgbuf, len};
    err->type = type ? yr_str(type) : YR_STR_NULL;
    err->code = code ? yr_str(code) : YR_STR_NULL;
    err->param = YR_STR_NULL;
    err->filtered = YR_STR_NULL;
    err->retry_delay = err->quota_id = YR_STR_NULL;
}

void sim_error_param(sim_error_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->parambuf, sizeof(err->parambuf), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof(err->parambuf))
        len = sizeof(err->parambuf) - 1;
    err->param = (yr_str_t){err->parambuf, len};
}

bool sim_key_equal(yr_str_t a, yr_str_t b)
{
    return a.len == b.len && (a.len == 0 || CRYPTO_memcmp(a.ptr, b.ptr, a.len) == 0);
}
