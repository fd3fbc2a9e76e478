#include "core/buf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

bool yr_str_ieq(yr_str_t a, yr_str_t b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (tolower((unsigned char)a.ptr[i]) != tolower((unsigned char)b.ptr[i]))
            return false;
    return true;
}

bool yr_str_has_prefix(yr_str_t s, yr_str_t prefix)
{
    return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

yr_str_t yr_str_trim(yr_str_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

int yr_str_to_u64(yr_str_t s, uint64_t max, uint64_t *out)
{
    if (s.len == 0 || s.len > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s.ptr[i] - '0');
        if (d > max || v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

void yr_buf_init(yr_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void yr_buf_free(yr_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void yr_buf_reset(yr_buf_t *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int yr_buf_reserve(yr_buf_t *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -E2BIG;
    size_t need = b->len + n + 1; /* room for the NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int yr_buf_append(yr_buf_t *b, const void *p, size_t n)
{
    int rc = yr_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int yr_buf_append_str(yr_buf_t *b, yr_str_t s)
{
    return yr_buf_append(b, s.ptr, s.len);
}

int yr_buf_printf(yr_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    int rc = n < 0 ? -EINVAL : yr_buf_reserve(b, (size_t)n);
    if (rc == 0) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
    return rc;
}

void yr_buf_consume(yr_buf_t *b, size_t n)
{
    if (n >= b->len) {
        yr_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *yr_buf_steal(yr_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

int yr_buf_append_json_str(yr_buf_t *b, yr_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = yr_buf_append(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; rc == 0 && i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = yr_buf_append(b, s.ptr + run, i - run);
        run = i + 1;
        if (rc != 0)
            break;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"': rc = yr_buf_append(b, "\\\"", 2); break;
        case '\\': rc = yr_buf_append(b, "\\\\", 2); break;
        case '\n': rc = yr_buf_append(b, "\\n", 2); break;
        case '\r': rc = yr_buf_append(b, "\\r", 2); break;
        case '\t': rc = yr_buf_append(b, "\\t", 2); break;
        default: rc = yr_buf_append(b, esc, 6); break;
        }
    }
    if (rc == 0)
        rc = yr_buf_append(b, s.ptr + run, s.len - run);
    if (rc == 0)
        rc = yr_buf_append(b, "\"", 1);
    return rc;
}
