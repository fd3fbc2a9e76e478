/* AWS event stream framing (eventstream.h). */
#include "providers/eventstream.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be_n(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t crc(uint32_t start, const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(start, p, (uInt)n);
}

/* Checks the prelude of a message that starts at p (12 bytes there):
 * lengths within the caps and the prelude's CRC. *total its length. */
static int check_prelude(const uint8_t *p, size_t max, uint32_t *total)
{
    uint32_t t = be32(p), h = be32(p + 4);
    if (crc(0, p, 8) != be32(p + 8))
        return -EPROTO;
    if (t < YR_ES_MIN_MESSAGE || h > t - YR_ES_MIN_MESSAGE)
        return -EPROTO;
    if (t > max || h > YR_ES_MAX_HEADERS_BYTES)
        return -E2BIG;
    *total = t;
    return 0;
}

/* The fixed size of a value type's bytes; -1 for the length-prefixed
 * ones, -2 for an unknown type. */
static int value_size(uint8_t type)
{
    static const int sizes[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    return type < sizeof(sizes) / sizeof(sizes[0]) ? sizes[type] : -2;
}

static int parse_headers(const uint8_t *p, size_t n, yr_es_message_t *m)
{
    size_t off = 0;
    m->nheaders = 0;
    while (off < n) {
        if (m->nheaders == YR_ES_MAX_HEADERS)
            return -E2BIG;
        yr_es_header_t *h = &m->headers[m->nheaders++];
        size_t nlen = p[off++];
        if (nlen == 0 || nlen > n - off || n - off - nlen < 1)
            return -EPROTO;
        h->name = (yr_str_t){(const char *)p + off, nlen};
        off += nlen;
        uint8_t type = p[off++];
        int size = value_size(type);
        h->type = (yr_es_type_t)type;
        h->num = 0;
        h->bytes = YR_STR_NULL;
        if (size == -2)
            return -EPROTO;
        if (size == -1) {
            if (n - off < 2)
                return -EPROTO;
            size = (int)be_n(p + off, 2);
            off += 2;
        }
        if ((size_t)size > n - off)
            return -EPROTO;
        const uint8_t *v = p + off;
        switch (h->type) {
        case YR_ES_BOOL_TRUE: h->num = 1; break;
        case YR_ES_BOOL_FALSE: h->num = 0; break;
        case YR_ES_BYTE: h->num = (int8_t)v[0]; break;
        case YR_ES_SHORT: h->num = (int16_t)be_n(v, 2); break;
        case YR_ES_INT: h->num = (int32_t)be_n(v, 4); break;
        case YR_ES_LONG:
        case YR_ES_TIMESTAMP: h->num = (int64_t)be_n(v, 8); break;
        case YR_ES_BYTES:
        case YR_ES_STRING:
        case YR_ES_UUID: h->bytes = (yr_str_t){(const char *)v, (size_t)size}; break;
        }
        off += (size_t)size;
    }
    return 0;
}

int yr_es_decode(const uint8_t *p, size_t n, size_t max, yr_es_message_t *m)
{
    if (max == 0 || max > YR_ES_MAX_MESSAGE)
        max = YR_ES_MAX_MESSAGE;
    if (n < YR_ES_MIN_MESSAGE)
        return -EPROTO;
    uint32_t total;
    int rc = check_prelude(p, max, &total);
    if (rc < 0)
        return rc;
    if (total != n)
        return -EPROTO;
    m->total_len = total;
    m->headers_len = be32(p + 4);
    m->prelude_crc = be32(p + 8);
    m->message_crc = be32(p + n - 4);
    /* The whole message first: nothing of a corrupt one is read. */
    if (crc(0, p, n - 4) != m->message_crc)
        return -EPROTO;
    rc = parse_headers(p + YR_ES_PRELUDE, m->headers_len, m);
    if (rc < 0)
        return rc;
    size_t pstart = YR_ES_PRELUDE + m->headers_len;
    m->payload = (yr_str_t){(const char *)p + pstart, n - 4 - pstart};
    return 0;
}

yr_str_t yr_es_header_str(const yr_es_message_t *m, const char *name)
{
    yr_str_t want = yr_str(name);
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->headers[i].type == YR_ES_STRING && yr_str_eq(m->headers[i].name, want))
            return m->headers[i].bytes;
    return YR_STR_NULL;
}

void yr_es_init(yr_es_parser_t *p, size_t max)
{
    p->max = max == 0 || max > YR_ES_MAX_MESSAGE ? YR_ES_MAX_MESSAGE : max;
    yr_buf_init(&p->buf, p->max);
}

void yr_es_free(yr_es_parser_t *p)
{
    yr_buf_free(&p->buf);
}

bool yr_es_partial(const yr_es_parser_t *p)
{
    return p->buf.len > 0;
}

static int deliver(yr_es_parser_t *p, const uint8_t *msg, size_t n, yr_es_fn fn, void *arg)
{
    yr_es_message_t m;
    int rc = yr_es_decode(msg, n, p->max, &m);
    return rc < 0 ? rc : fn(&m, arg);
}

/* Completes the buffered message from data; *used is what it took. */
static int fill_buffered(yr_es_parser_t *p, const uint8_t *data, size_t n, size_t *used,
                         yr_es_fn fn, void *arg)
{
    *used = 0;
    if (p->buf.len < YR_ES_PRELUDE) {
        size_t take = YR_ES_PRELUDE - p->buf.len < n ? YR_ES_PRELUDE - p->buf.len : n;
        int rc = yr_buf_append(&p->buf, data, take);
        if (rc < 0)
            return rc;
        *used += take;
        if (p->buf.len < YR_ES_PRELUDE)
            return 0;
    }
    uint32_t total;
    int rc = check_prelude((const uint8_t *)p->buf.data, p->max, &total);
    if (rc < 0)
        return rc;
    size_t want = total - p->buf.len, take = want < n - *used ? want : n - *used;
    if ((rc = yr_buf_append(&p->buf, data + *used, take)) < 0)
        return rc;
    *used += take;
    if (p->buf.len < total)
        return 0;
    rc = deliver(p, (const uint8_t *)p->buf.data, total, fn, arg);
    yr_buf_reset(&p->buf);
    return rc;
}

int yr_es_feed(yr_es_parser_t *p, const char *data, size_t n, yr_es_fn fn, void *arg)
{
    const uint8_t *d = (const uint8_t *)data;
    while (n > 0) {
        if (p->buf.len > 0) {
            size_t used;
            int rc = fill_buffered(p, d, n, &used, fn, arg);
            if (rc != 0)
                return rc;
            d += used;
            n -= used;
            continue;
        }
        /* Whole messages straight from the caller's bytes: no copy. */
        uint32_t total;
        int rc;
        if (n >= YR_ES_PRELUDE && (rc = check_prelude(d, p->max, &total)) < 0)
            return rc;
        if (n < YR_ES_PRELUDE || n < total) {
            size_t used;
            return fill_buffered(p, d, n, &used, fn, arg);
        }
        if ((rc = deliver(p, d, total, fn, arg)) != 0)
            return rc;
        d += total;
        n -= total;
    }
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)(v & 0xff);
}

int yr_es_encode(yr_buf_t *out, const yr_es_header_t *h, size_t nh, yr_str_t payload)
{
    size_t hlen = 0;
    for (size_t i = 0; i < nh; i++) {
        int size = value_size((uint8_t)h[i].type);
        if (size == -2 || h[i].name.len == 0 || h[i].name.len > 255 ||
            (size == -1 && h[i].bytes.len > 65535) ||
            (h[i].type == YR_ES_UUID && h[i].bytes.len != 16))
            return -EINVAL;
        hlen += 2 + h[i].name.len + (size == -1 ? 2 + h[i].bytes.len : (size_t)size);
    }
    if (hlen > YR_ES_MAX_HEADERS_BYTES || payload.len > YR_ES_MAX_MESSAGE)
        return -E2BIG;
    size_t total = YR_ES_MIN_MESSAGE + hlen + payload.len;
    if (total > YR_ES_MAX_MESSAGE)
        return -E2BIG;
    int rc = yr_buf_reserve(out, total);
    if (rc < 0)
        return rc;
    uint8_t *start = (uint8_t *)out->data + out->len, *w = start;
    put_be(w, total, 4);
    put_be(w + 4, hlen, 4);
    put_be(w + 8, crc(0, w, 8), 4);
    w += YR_ES_PRELUDE;
    for (size_t i = 0; i < nh; i++) {
        *w++ = (uint8_t)h[i].name.len;
        memcpy(w, h[i].name.ptr, h[i].name.len);
        w += h[i].name.len;
        *w++ = (uint8_t)h[i].type;
        int size = value_size((uint8_t)h[i].type);
        if (size == -1) {
            put_be(w, h[i].bytes.len, 2);
            w += 2;
        }
        if (size == -1 || h[i].type == YR_ES_UUID) {
            if (h[i].bytes.len)
                memcpy(w, h[i].bytes.ptr, h[i].bytes.len);
            w += h[i].bytes.len;
        } else if (size > 0) {
            put_be(w, (uint64_t)h[i].num, (size_t)size);
            w += size;
        }
    }
    if (payload.len)
        memcpy(w, payload.ptr, payload.len);
    w += payload.len;
    put_be(w, crc(0, start, (size_t)(w - start)), 4);
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}
