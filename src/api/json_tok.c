#include "api/json_tok.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    yr_jdoc_t *d;
    const unsigned char *p;
    size_t i, n;
    bool reject_dup;
    bool validate_only; /* every token lands in one scratch slot */
} parser_t;

static int fail(parser_t *ps, const char *why)
{
    ps->d->err = why;
    ps->d->err_off = ps->i;
    return -EINVAL;
}

static void skip_ws(parser_t *ps)
{
    while (ps->i < ps->n) {
        unsigned char c = ps->p[ps->i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        ps->i++;
    }
}

static int new_token(parser_t *ps, yr_jtype_t type, uint32_t *idx)
{
    yr_jdoc_t *d = ps->d;
    if (ps->validate_only) {
        *idx = 0;
        d->toks[0] = (yr_jtok_t){.start = (uint32_t)ps->i, .type = (uint8_t)type};
        return 0;
    }
    if (d->ntoks == d->cap) {
        if (d->cap >= YR_JSON_MAX_TOKENS)
            return -E2BIG;
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        yr_jtok_t *t = realloc(d->toks, (size_t)cap * sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        d->toks = t;
        d->cap = cap;
    }
    *idx = d->ntoks++;
    d->toks[*idx] = (yr_jtok_t){.start = (uint32_t)ps->i, .type = (uint8_t)type};
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 for the bytes that end a plain run inside a string: control
 * characters, '"', '\\' and non-ASCII (one load per byte instead of four
 * comparisons). */
static const unsigned char string_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* True when any of the 8 bytes at p is '"', '\\', a control character or
 * non-ASCII (SWAR: the classic "has zero byte" test, eight bytes at once). */
static inline bool special8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    uint64_t zero_q = (q - ones) & ~q, zero_b = (b - ones) & ~b;
    uint64_t below_space = (v - ones * 0x20) & ~v; /* high bit set: byte < 0x20 (or >= 0x80) */
    return ((zero_q | zero_b | below_space | v) & highs) != 0;
}

/* Reads a \u escape (backslash, u, four hex digits) at p; -1 when malformed. */
static int read_u(const unsigned char *p, size_t avail, uint32_t *v)
{
    if (avail < 6 || p[1] != 'u')
        return -1;
    *v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        *v = (*v << 4) | (uint32_t)h;
    }
    return 0;
}

static int parse_string(parser_t *ps, uint32_t *idx)
{
    ps->i++; /* the opening quote */
    int rc = new_token(ps, YR_JT_STRING, idx);
    if (rc < 0)
        return rc;
    bool escaped = false;
    while (ps->i < ps->n) {
        /* Fast scan over plain printable ASCII (0x20..0x7f but '"' and '\\').
         * Locals, not ps->i: char reads may alias ps, which would force a
         * reload and a store of ps->i per byte. */
        const unsigned char *p = ps->p;
        size_t i = ps->i, n = ps->n;
        while (i + 8 <= n && !special8(p + i))
            i += 8;
        while (i < n && !string_special[p[i]])
            i++;
        ps->i = i;
        if (ps->i >= ps->n)
            break;
        unsigned char c = ps->p[ps->i];
        if (c == '"') {
            yr_jtok_t *t = &ps->d->toks[*idx];
            t->end = (uint32_t)ps->i;
            t->escaped = escaped;
            t->next = *idx + 1;
            ps->i++;
            return 0;
        }
        if (c < 0x20)
            return fail(ps, "control character in string");
        if (c == '\\') {
            escaped = true;
            if (ps->i + 1 >= ps->n)
                break;
            unsigned char e = ps->p[ps->i + 1];
            if (e == 'u') {
                /* Same rules as jansson, so both accept the same texts: no
                 * \u0000, surrogates only as a high+low pair. */
                uint32_t v;
                if (read_u(ps->p + ps->i, ps->n - ps->i, &v) < 0)
                    return fail(ps, "invalid \\u escape");
                if (v == 0)
                    return fail(ps, "\\u0000 is not allowed");
                if (v >= 0xdc00 && v <= 0xdfff)
                    return fail(ps, "invalid Unicode: lone low surrogate");
                if (v >= 0xd800 && v <= 0xdbff) {
                    uint32_t lo;
                    if (ps->i + 12 > ps->n || ps->p[ps->i + 6] != '\\' ||
                        read_u(ps->p + ps->i + 6, ps->n - ps->i - 6, &lo) < 0 || lo < 0xdc00 ||
                        lo > 0xdfff)
                        return fail(ps, "invalid Unicode: lone high surrogate");
                    ps->i += 6;
                }
                ps->i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return fail(ps, "invalid escape");
            ps->i += 2;
            continue;
        }
        if (c < 0x80) {
            ps->i++;
            continue;
        }
        size_t l = utf8_len(ps->p + ps->i, ps->n - ps->i);
        if (l == 0)
            return fail(ps, "invalid UTF-8");
        ps->i += l;
    }
    return fail(ps, "unterminated string");
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(parser_t *ps, uint32_t *idx)
{
    int rc = new_token(ps, YR_JT_NUMBER, idx);
    if (rc < 0)
        return rc;
    const unsigned char *p = ps->p;
    size_t i = ps->i, n = ps->n;
    bool integer = true;
    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0') {
        i++;
    } else if (i < n && p[i] >= '1' && p[i] <= '9') {
        while (i < n && is_digit(p[i]))
            i++;
    } else {
        ps->i = i;
        return fail(ps, "invalid number");
    }
    if (i < n && p[i] == '.') {
        integer = false;
        i++;
        if (i >= n || !is_digit(p[i])) {
            ps->i = i;
            return fail(ps, "invalid number");
        }
        while (i < n && is_digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        integer = false;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || !is_digit(p[i])) {
            ps->i = i;
            return fail(ps, "invalid number");
        }
        while (i < n && is_digit(p[i]))
            i++;
    }
    /* Values jansson refuses (so both parsers agree): integers outside
     * int64, reals that overflow a double. */
    if (integer) {
        uint64_t v;
        size_t neg = p[ps->i] == '-';
        yr_str_t digits = {(const char *)p + ps->i + neg, i - ps->i - neg};
        if (yr_str_to_u64(digits, (uint64_t)INT64_MAX + neg, &v) < 0)
            return fail(ps, "integer out of range");
    } else {
        char tmp[64];
        size_t l = i - ps->i;
        if (l < sizeof(tmp)) {
            memcpy(tmp, p + ps->i, l);
            tmp[l] = '\0';
            errno = 0;
            double dv = strtod(tmp, NULL);
            if (errno == ERANGE && (dv > 1 || dv < -1))
                return fail(ps, "real number overflow");
        } else {
            /* Long spellings: only an exponent can overflow; be exact. */
            char *big = malloc(l + 1);
            if (big == NULL)
                return -ENOMEM;
            memcpy(big, p + ps->i, l);
            big[l] = '\0';
            errno = 0;
            double dv = strtod(big, NULL);
            free(big);
            if (errno == ERANGE && (dv > 1 || dv < -1))
                return fail(ps, "real number overflow");
        }
    }
    yr_jtok_t *t = &ps->d->toks[*idx];
    t->end = (uint32_t)i;
    t->integer = integer;
    t->next = *idx + 1;
    ps->i = i;
    return 0;
}

static int parse_literal(parser_t *ps, const char *word, yr_jtype_t type, uint32_t *idx)
{
    size_t l = strlen(word);
    if (ps->n - ps->i < l || memcmp(ps->p + ps->i, word, l) != 0)
        return fail(ps, "invalid literal");
    int rc = new_token(ps, type, idx);
    if (rc < 0)
        return rc;
    ps->i += l;
    ps->d->toks[*idx].end = (uint32_t)ps->i;
    ps->d->toks[*idx].next = *idx + 1;
    return 0;
}

static int parse_value(parser_t *ps, unsigned depth, uint32_t *idx);

/* A key for duplicate detection: decoded when it has escapes ("a" and
 * "\u0061" are the same key), so we agree with jansson. */
typedef struct {
    yr_str_t s;
    char *heap; /* decoded copy, or NULL */
} objkey_t;

static int key_load(const yr_jdoc_t *d, uint32_t tok, objkey_t *k)
{
    k->heap = NULL;
    k->s = yr_json_raw(d, (int)tok);
    if (!d->toks[tok].escaped)
        return 0;
    yr_buf_t b;
    yr_buf_init(&b, k->s.len + 1);
    if (yr_json_str_decode(d, (int)tok, &b) < 0) {
        yr_buf_free(&b);
        return -ENOMEM;
    }
    size_t n;
    k->heap = yr_buf_steal(&b, &n);
    k->s = (yr_str_t){k->heap ? k->heap : "", n};
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const objkey_t *x = a, *y = b;
    size_t n = x->s.len < y->s.len ? x->s.len : y->s.len;
    int c = n ? memcmp(x->s.ptr, y->s.ptr, n) : 0;
    if (c != 0)
        return c;
    return x->s.len < y->s.len ? -1 : x->s.len > y->s.len;
}

/* Duplicate keys in the object at tok: sorted, so a hostile object with
 * 100k members costs k log k, not k^2. Returns 1 when there are some. */
static int has_duplicate_keys(const yr_jdoc_t *d, uint32_t tok)
{
    uint32_t size = d->toks[tok].size;
    if (size < 2)
        return 0;
    objkey_t small[16];
    objkey_t *keys = size <= 16 ? small : malloc(size * sizeof(*keys));
    if (keys == NULL)
        return -ENOMEM;
    int rc = 0;
    uint32_t loaded = 0;
    for (uint32_t k = tok + 1; loaded < size; k = d->toks[k + 1].next) {
        if ((rc = key_load(d, k, &keys[loaded])) < 0)
            break;
        loaded++;
    }
    if (rc == 0) {
        qsort(keys, size, sizeof(*keys), key_cmp);
        for (uint32_t i = 1; i < size && rc == 0; i++)
            if (key_cmp(&keys[i - 1], &keys[i]) == 0)
                rc = 1;
    }
    for (uint32_t i = 0; i < loaded; i++)
        free(keys[i].heap);
    if (keys != small)
        free(keys);
    return rc;
}

/* After a member or element: ',' continues (returns 0, *closed false),
 * the closing byte ends the container (0, *closed true), anything else is
 * an error. */
static int next_or_close(parser_t *ps, char close, bool *closed)
{
    skip_ws(ps);
    if (ps->i < ps->n && (ps->p[ps->i] == ',' || ps->p[ps->i] == close)) {
        *closed = ps->p[ps->i] == close;
        ps->i++;
        return 0;
    }
    return fail(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* Records a finished object or array: its size, end and subtree bound. */
static void close_container(parser_t *ps, uint32_t idx, uint32_t size)
{
    yr_jtok_t *t = &ps->d->toks[idx];
    t->size = size;
    t->end = (uint32_t)ps->i;
    t->next = ps->d->ntoks;
}

static int parse_object(parser_t *ps, unsigned depth, uint32_t *idx)
{
    int rc = new_token(ps, YR_JT_OBJECT, idx);
    if (rc < 0)
        return rc;
    ps->i++;
    uint32_t size = 0;
    skip_ws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == '}') {
        ps->i++;
        goto done;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->i >= ps->n || ps->p[ps->i] != '"')
            return fail(ps, "expected a string key");
        uint32_t key;
        if ((rc = parse_string(ps, &key)) < 0)
            return rc;
        skip_ws(ps);
        if (ps->i >= ps->n || ps->p[ps->i] != ':')
            return fail(ps, "expected ':'");
        ps->i++;
        uint32_t val;
        if ((rc = parse_value(ps, depth + 1, &val)) < 0)
            return rc;
        size++;
        bool closed;
        if ((rc = next_or_close(ps, '}', &closed)) < 0)
            return rc;
        if (closed)
            break;
    }
done:
    close_container(ps, *idx, size);
    if (ps->reject_dup) {
        rc = has_duplicate_keys(ps->d, *idx);
        if (rc > 0)
            return fail(ps, "duplicate key");
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_array(parser_t *ps, unsigned depth, uint32_t *idx)
{
    int rc = new_token(ps, YR_JT_ARRAY, idx);
    if (rc < 0)
        return rc;
    ps->i++;
    uint32_t size = 0;
    skip_ws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == ']') {
        ps->i++;
        goto done;
    }
    for (;;) {
        uint32_t val;
        if ((rc = parse_value(ps, depth + 1, &val)) < 0)
            return rc;
        size++;
        bool closed;
        if ((rc = next_or_close(ps, ']', &closed)) < 0)
            return rc;
        if (closed)
            break;
    }
done:
    close_container(ps, *idx, size);
    return 0;
}

static int parse_value(parser_t *ps, unsigned depth, uint32_t *idx)
{
    if (depth > YR_JSON_MAX_DEPTH)
        return fail(ps, "nested too deeply");
    skip_ws(ps);
    if (ps->i >= ps->n)
        return fail(ps, "unexpected end of input");
    switch (ps->p[ps->i]) {
    case '{': return parse_object(ps, depth, idx);
    case '[': return parse_array(ps, depth, idx);
    case '"': return parse_string(ps, idx);
    case 't': return parse_literal(ps, "true", YR_JT_TRUE, idx);
    case 'f': return parse_literal(ps, "false", YR_JT_FALSE, idx);
    case 'n': return parse_literal(ps, "null", YR_JT_NULL, idx);
    default: return parse_number(ps, idx);
    }
}

int yr_json_parse(yr_jdoc_t *d, const char *js, size_t len, bool reject_dup)
{
    *d = (yr_jdoc_t){.js = js, .len = len};
    if (len > UINT32_MAX - 1) {
        d->err = "document too large";
        return -E2BIG;
    }
    parser_t ps = {.d = d, .p = (const unsigned char *)js, .n = len, .reject_dup = reject_dup};
    uint32_t root;
    int rc = parse_value(&ps, 0, &root);
    if (rc == -E2BIG)
        d->err = "too many JSON values";
    if (rc < 0)
        return rc;
    skip_ws(&ps);
    if (ps.i != ps.n)
        return fail(&ps, "trailing data after the JSON value");
    return 0;
}

int yr_json_validate(const char *js, size_t len)
{
    yr_jtok_t scratch;
    yr_jdoc_t d = {.js = js, .len = len, .toks = &scratch, .cap = 1};
    if (len > UINT32_MAX - 1)
        return -E2BIG;
    parser_t ps = {.d = &d, .p = (const unsigned char *)js, .n = len, .validate_only = true};
    uint32_t root;
    int rc = parse_value(&ps, 0, &root);
    if (rc < 0)
        return rc;
    skip_ws(&ps);
    return ps.i == ps.n ? 0 : -EINVAL;
}

void yr_json_free(yr_jdoc_t *d)
{
    free(d->toks);
    d->toks = NULL;
    d->ntoks = d->cap = 0;
}

yr_str_t yr_json_raw(const yr_jdoc_t *d, int tok)
{
    const yr_jtok_t *t = &d->toks[tok];
    return (yr_str_t){d->js + t->start, t->end - t->start};
}

/* Decodes a \u escape (with surrogate pairs) at s[i] (s[i] == 'u'). */
static int decode_u(const char *s, size_t n, size_t *i, uint32_t *cp)
{
    uint32_t v = 0;
    for (size_t k = 1; k <= 4; k++)
        v = (v << 4) | (uint32_t)hexval((unsigned char)s[*i + k]);
    *i += 5;
    if (v >= 0xd800 && v <= 0xdbff && *i + 6 <= n && s[*i] == '\\' && s[*i + 1] == 'u') {
        uint32_t lo = 0;
        for (size_t k = 2; k <= 5; k++)
            lo = (lo << 4) | (uint32_t)hexval((unsigned char)s[*i + k]);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            *i += 6;
        }
    }
    if (v >= 0xd800 && v <= 0xdfff)
        v = 0xfffd; /* a lone surrogate: jansson refuses these; be lenient */
    *cp = v;
    return 0;
}

static int put_utf8(yr_buf_t *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return yr_buf_append(out, b, n);
}

int yr_json_str_decode(const yr_jdoc_t *d, int tok, yr_buf_t *out)
{
    yr_str_t s = yr_json_raw(d, tok);
    if (!d->toks[tok].escaped)
        return yr_buf_append_str(out, s);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s.len;) {
        if (s.ptr[i] != '\\') {
            rc = yr_buf_append(out, s.ptr + i, 1);
            i++;
            continue;
        }
        char e = s.ptr[i + 1];
        if (e == 'u') {
            uint32_t cp;
            i++;
            decode_u(s.ptr, s.len, &i, &cp);
            rc = put_utf8(out, cp);
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = strchr(from, e);
        char c = k ? to[k - from] : e;
        rc = yr_buf_append(out, &c, 1);
        i += 2;
    }
    return rc;
}

bool yr_json_str_eq(const yr_jdoc_t *d, int tok, const char *s)
{
    if (tok < 0 || d->toks[tok].type != YR_JT_STRING)
        return false;
    if (!d->toks[tok].escaped)
        return yr_str_eq(yr_json_raw(d, tok), yr_str(s));
    yr_buf_t b;
    yr_buf_init(&b, strlen(s) * 4 + 16);
    bool eq =
        yr_json_str_decode(d, tok, &b) == 0 && yr_str_eq((yr_str_t){b.data, b.len}, yr_str(s));
    yr_buf_free(&b);
    return eq;
}

int yr_json_get(const yr_jdoc_t *d, int obj, const char *key)
{
    if (obj < 0 || d->toks[obj].type != YR_JT_OBJECT)
        return -1;
    uint32_t k = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < d->toks[obj].size; m++) {
        if (yr_json_str_eq(d, (int)k, key))
            return (int)k + 1;
        k = d->toks[k + 1].next;
    }
    return -1;
}

int yr_json_at(const yr_jdoc_t *d, int arr, uint32_t i)
{
    if (arr < 0 || d->toks[arr].type != YR_JT_ARRAY || i >= d->toks[arr].size)
        return -1;
    uint32_t k = (uint32_t)arr + 1;
    while (i-- > 0)
        k = d->toks[k].next;
    return (int)k;
}

bool yr_json_int(const yr_jdoc_t *d, int tok, int64_t *out)
{
    if (tok < 0 || d->toks[tok].type != YR_JT_NUMBER || !d->toks[tok].integer)
        return false;
    yr_str_t s = yr_json_raw(d, tok);
    bool neg = s.len > 0 && s.ptr[0] == '-';
    uint64_t v;
    if (yr_str_to_u64((yr_str_t){s.ptr + neg, s.len - neg}, (uint64_t)INT64_MAX, &v) < 0)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

json_t *yr_json_loadb(const char *js, size_t len, size_t flags, json_error_t *jerr)
{
    const char *nul = js != NULL ? memchr(js, '\0', len) : NULL;
    if (nul == NULL)
        return json_loadb(js ? js : "", len, flags, jerr);
    if (jerr != NULL) {
        memset(jerr, 0, sizeof(*jerr));
        int line = 1, column = 0;
        for (const char *p = js; p < nul; p++, column++)
            if (*p == '\n')
                line++, column = -1;
        jerr->line = line;
        jerr->column = column + 1;
        jerr->position = (int)(nul - js);
        snprintf(jerr->text, sizeof(jerr->text), "a NUL byte is not allowed in JSON");
        jerr->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_invalid_syntax;
    }
    return NULL;
}

int yr_json_load(const char *js, size_t len, size_t flags, json_t **out)
{
    json_error_t jerr;
    memset(&jerr, 0, sizeof(jerr)); /* jansson leaves it unset on some failures */
    *out = yr_json_loadb(js, len, flags | JSON_DECODE_ANY, &jerr);
    if (*out != NULL)
        return 0;
    switch (json_error_code(&jerr)) {
    case json_error_out_of_memory: return -ENOMEM;
    case json_error_unknown: /* failed without saying why: an allocation */
    case json_error_invalid_syntax:
    case json_error_premature_end_of_input:
    case json_error_end_of_input_expected:
        /* jansson's lexer reports a failed growth of its token buffer as a
         * syntax error: text that is valid JSON failed for memory. */
        return len > 0 && yr_json_validate(js, len) == 0 ? -ENOMEM : -EINVAL;
    default: return -EINVAL; /* \u0000, integers past int64, duplicate keys: refused as such */
    }
}
