/* AWS Signature Version 4 (sigv4.h). */
#include "providers/sigv4.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_MAX_TEXT (64u * 1024)
#define SIGV4_MAX_SEGMENTS 128
#define SIGV4_MAX_PARAMS 64

static const char hexd[] = "0123456789abcdef";

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[p[i] >> 4];
        out[2 * i + 1] = hexd[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void yr_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    hex(md, sizeof(md), out);
}

void yr_sigv4_out_init(yr_sigv4_out_t *o)
{
    yr_buf_init(&o->creq, SIGV4_MAX_TEXT);
    yr_buf_init(&o->sts, SIGV4_MAX_TEXT);
    yr_buf_init(&o->signed_headers, SIGV4_MAX_TEXT);
    yr_buf_init(&o->authorization, SIGV4_MAX_TEXT);
    o->signature[0] = '\0';
}

void yr_sigv4_out_free(yr_sigv4_out_t *o)
{
    yr_buf_free(&o->creq);
    yr_buf_free(&o->sts);
    yr_buf_free(&o->signed_headers);
    yr_buf_free(&o->authorization);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 3986 encoding of everything but the unreserved characters (and '/'
 * when keep_slash). */
static int encode(yr_buf_t *b, yr_str_t s, bool keep_slash)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        char esc[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
        int rc = unreserved(c) || (keep_slash && c == '/') ? yr_buf_append(b, &s.ptr[i], 1)
                                                           : yr_buf_append(b, esc, 3);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int decode(yr_buf_t *b, yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '%' && i + 2 < s.len && hexval(s.ptr[i + 1]) >= 0 && hexval(s.ptr[i + 2]) >= 0) {
            c = (char)(hexval(s.ptr[i + 1]) << 4 | hexval(s.ptr[i + 2]));
            i += 2;
        }
        int rc = yr_buf_append(b, &c, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The path with "." and ".." segments resolved and empty segments dropped;
 * a trailing '/' is kept. */
static int normalize_path(yr_str_t path, yr_buf_t *out)
{
    yr_str_t seg[SIGV4_MAX_SEGMENTS];
    size_t n = 0, i = 0;
    while (i < path.len) {
        size_t j = i;
        while (j < path.len && path.ptr[j] != '/')
            j++;
        yr_str_t s = {path.ptr + i, j - i};
        if (s.len == 0 || yr_str_eq(s, YR_STR("."))) {
            /* nothing */
        } else if (yr_str_eq(s, YR_STR(".."))) {
            if (n > 0)
                n--;
        } else if (n == SIGV4_MAX_SEGMENTS) {
            return -E2BIG;
        } else {
            seg[n++] = s;
        }
        i = j + 1;
    }
    bool trailing = path.len > 0 && path.ptr[path.len - 1] == '/';
    int rc = yr_buf_append(out, "/", 1);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        rc = yr_buf_append_str(out, seg[k]);
        if (rc == 0 && (k + 1 < n || trailing))
            rc = yr_buf_append(out, "/", 1);
    }
    return rc;
}

static int canonical_uri(const yr_sigv4_req_t *r, yr_buf_t *b)
{
    yr_str_t path = r->path.len ? r->path : YR_STR("/");
    yr_buf_t norm;
    yr_buf_init(&norm, SIGV4_MAX_TEXT);
    int rc = 0;
    if (r->normalize) {
        rc = normalize_path(path, &norm);
        path = (yr_str_t){norm.data, norm.len};
    }
    if (rc == 0)
        rc = encode(b, path, true);
    yr_buf_free(&norm);
    return rc;
}

typedef struct {
    char *key, *value; /* encoded, heap (in one yr_buf_t each) */
    size_t klen, vlen;
} param_t;

static int param_cmp(const void *a, const void *b)
{
    const param_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* Each key and value decoded and encoded again, sorted by key then value. */
static int canonical_query(yr_str_t q, yr_buf_t *b)
{
    param_t ps[SIGV4_MAX_PARAMS];
    yr_buf_t texts[SIGV4_MAX_PARAMS * 2];
    size_t n = 0, i = 0;
    int rc = 0;
    while (rc == 0 && i < q.len) {
        size_t j = i;
        while (j < q.len && q.ptr[j] != '&')
            j++;
        yr_str_t p = {q.ptr + i, j - i};
        i = j + 1;
        if (p.len == 0)
            continue;
        if (n == SIGV4_MAX_PARAMS) {
            rc = -E2BIG;
            break;
        }
        const char *eq = memchr(p.ptr, '=', p.len);
        yr_str_t k = {p.ptr, eq ? (size_t)(eq - p.ptr) : p.len};
        yr_str_t v = eq ? (yr_str_t){eq + 1, p.len - k.len - 1} : YR_STR("");
        yr_buf_t *kb = &texts[2 * n], *vb = &texts[2 * n + 1];
        yr_buf_t tmp;
        yr_buf_init(kb, SIGV4_MAX_TEXT);
        yr_buf_init(vb, SIGV4_MAX_TEXT);
        n++;
        yr_buf_init(&tmp, SIGV4_MAX_TEXT);
        rc = decode(&tmp, k);
        if (rc == 0)
            rc = encode(kb, (yr_str_t){tmp.data, tmp.len}, false);
        yr_buf_reset(&tmp);
        if (rc == 0)
            rc = decode(&tmp, v);
        if (rc == 0)
            rc = encode(vb, (yr_str_t){tmp.data, tmp.len}, false);
        yr_buf_free(&tmp);
        ps[n - 1] = (param_t){kb->data ? kb->data : "", vb->data ? vb->data : "", kb->len, vb->len};
    }
    if (rc == 0)
        qsort(ps, n, sizeof(ps[0]), param_cmp);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (k > 0)
            rc = yr_buf_append(b, "&", 1);
        if (rc == 0)
            rc = yr_buf_append(b, ps[k].key, ps[k].klen);
        if (rc == 0)
            rc = yr_buf_append(b, "=", 1);
        if (rc == 0)
            rc = yr_buf_append(b, ps[k].value, ps[k].vlen);
    }
    for (size_t k = 0; k < 2 * n; k++)
        yr_buf_free(&texts[k]);
    return rc;
}

typedef struct {
    char name[128];
    size_t order; /* position in the request: repeated names keep their order */
    yr_str_t value;
} hdr_t;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* Trimmed, with every run of spaces and tabs inside collapsed to one. */
static int append_value(yr_buf_t *b, yr_str_t v)
{
    v = yr_str_trim(v);
    bool space = false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (c == ' ' || c == '\t') {
            space = true;
            continue;
        }
        if (space && yr_buf_append(b, " ", 1) < 0)
            return -ENOMEM;
        space = false;
        if (yr_buf_append(b, &c, 1) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int canonical_headers(const yr_sigv4_req_t *r, yr_buf_t *b, yr_buf_t *signed_headers)
{
    hdr_t hs[YR_SIGV4_MAX_HEADERS];
    if (r->nheaders > YR_SIGV4_MAX_HEADERS)
        return -EINVAL;
    for (size_t i = 0; i < r->nheaders; i++) {
        yr_str_t nm = yr_str_trim(r->headers[i].name);
        if (nm.len == 0 || nm.len >= sizeof(hs[i].name))
            return -EINVAL;
        for (size_t k = 0; k < nm.len; k++) {
            char c = nm.ptr[k];
            hs[i].name[k] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        hs[i].name[nm.len] = '\0';
        hs[i].order = i;
        hs[i].value = r->headers[i].value;
    }
    qsort(hs, r->nheaders, sizeof(hs[0]), hdr_cmp);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->nheaders; i++) {
        bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (repeat) {
            rc = yr_buf_append(b, ",", 1);
        } else {
            if (i > 0)
                rc = yr_buf_append(b, "\n", 1);
            if (rc == 0 && signed_headers->len > 0)
                rc = yr_buf_append(signed_headers, ";", 1);
            if (rc == 0)
                rc = yr_buf_append_str(signed_headers, yr_str(hs[i].name));
            if (rc == 0)
                rc = yr_buf_append_str(b, yr_str(hs[i].name));
            if (rc == 0)
                rc = yr_buf_append(b, ":", 1);
        }
        if (rc == 0)
            rc = append_value(b, hs[i].value);
    }
    if (rc == 0 && r->nheaders > 0)
        rc = yr_buf_append(b, "\n", 1);
    return rc;
}

static int canonical_request(const yr_sigv4_req_t *r, yr_sigv4_out_t *o)
{
    yr_buf_t *b = &o->creq;
    int rc = yr_buf_printf(b, "%s\n", r->method);
    if (rc == 0)
        rc = canonical_uri(r, b);
    if (rc == 0)
        rc = yr_buf_append(b, "\n", 1);
    if (rc == 0)
        rc = canonical_query(r->query, b);
    if (rc == 0)
        rc = yr_buf_append(b, "\n", 1);
    if (rc == 0)
        rc = canonical_headers(r, b, &o->signed_headers);
    if (rc == 0)
        rc = yr_buf_printf(b, "\n%s\n%s", o->signed_headers.data ? o->signed_headers.data : "",
                           r->payload_hash);
    return rc;
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len) !=
                   NULL
               ? 0
               : -ENOMEM;
}

/* The signing key, HMAC("AWS4"+secret, date) -> region -> service ->
 * "aws4_request", depends on nothing else: each thread keeps the last one
 * (keyed by the secret's SHA-256, never the secret itself), so a worker
 * signing for one provider derives it once a day instead of four HMACs per
 * request (~12 us of ~40 on the test VM). */
static int signing_key(const yr_sigv4_key_t *k, const char *date, unsigned char out[32])
{
    static __thread struct {
        bool valid;
        unsigned char secret_hash[32];
        char date[9], region[64], service[64];
        unsigned char key[32];
    } cache;
    size_t slen = strlen(k->secret_key);
    unsigned char sh[32];
    SHA256((const unsigned char *)k->secret_key, slen, sh);
    if (cache.valid && CRYPTO_memcmp(cache.secret_hash, sh, 32) == 0 &&
        strcmp(cache.date, date) == 0 && strcmp(cache.region, k->region) == 0 &&
        strcmp(cache.service, k->service) == 0) {
        memcpy(out, cache.key, 32);
        return 0;
    }
    char *seed = malloc(slen + 5);
    if (seed == NULL)
        return -ENOMEM;
    memcpy(seed, "AWS4", 4);
    memcpy(seed + 4, k->secret_key, slen + 1);
    unsigned char a[32];
    int rc = hmac(seed, slen + 4, date, a);
    OPENSSL_cleanse(seed, slen + 4);
    free(seed);
    if (rc == 0)
        rc = hmac(a, 32, k->region, out);
    if (rc == 0)
        rc = hmac(out, 32, k->service, a);
    if (rc == 0)
        rc = hmac(a, 32, "aws4_request", out);
    OPENSSL_cleanse(a, sizeof(a));
    bool fits =
        strlen(k->region) < sizeof(cache.region) && strlen(k->service) < sizeof(cache.service);
    cache.valid = rc == 0 && fits;
    if (cache.valid) {
        memcpy(cache.secret_hash, sh, 32);
        snprintf(cache.date, sizeof(cache.date), "%s", date);
        snprintf(cache.region, sizeof(cache.region), "%s", k->region);
        snprintf(cache.service, sizeof(cache.service), "%s", k->service);
        memcpy(cache.key, out, 32);
    }
    return rc;
}

int yr_sigv4_sign(const yr_sigv4_req_t *r, const yr_sigv4_key_t *k, yr_sigv4_out_t *o)
{
    if (k->amz_date == NULL || strlen(k->amz_date) != 16 || k->amz_date[8] != 'T')
        return -EINVAL;
    char date[9];
    memcpy(date, k->amz_date, 8);
    date[8] = '\0';
    yr_buf_reset(&o->creq);
    yr_buf_reset(&o->sts);
    yr_buf_reset(&o->signed_headers);
    yr_buf_reset(&o->authorization);
    int rc = canonical_request(r, o);
    if (rc < 0)
        return rc;
    char creq_hash[65];
    yr_sha256_hex(o->creq.data, o->creq.len, creq_hash);
    rc = yr_buf_printf(&o->sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", k->amz_date,
                       date, k->region, k->service, creq_hash);
    if (rc < 0)
        return rc;
    unsigned char a[32], b[32];
    rc = signing_key(k, date, b);
    if (rc == 0)
        rc = hmac(b, 32, o->sts.data, a);
    if (rc == 0) {
        hex(a, 32, o->signature);
        rc = yr_buf_printf(&o->authorization,
                           "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                           "SignedHeaders=%s, Signature=%s",
                           k->access_key, date, k->region, k->service, o->signed_headers.data,
                           o->signature);
    }
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    return rc;
}

/* "Name=value" at the start of s (after spaces); the value ends at ',' or
 * the end. */
static bool take_field(yr_str_t *s, const char *name, yr_str_t *value)
{
    yr_str_t t = yr_str_trim(*s);
    size_t n = strlen(name);
    if (t.len <= n || memcmp(t.ptr, name, n) != 0 || t.ptr[n] != '=')
        return false;
    const char *v = t.ptr + n + 1, *end = t.ptr + t.len;
    const char *comma = memchr(v, ',', (size_t)(end - v));
    *value = (yr_str_t){v, (size_t)((comma ? comma : end) - v)};
    *s = comma ? (yr_str_t){comma + 1, (size_t)(end - comma - 1)} : YR_STR("");
    return true;
}

int yr_sigv4_parse_auth(yr_str_t authz, yr_sigv4_auth_t *out)
{
    *out = (yr_sigv4_auth_t){0};
    yr_str_t scheme = YR_STR("AWS4-HMAC-SHA256 ");
    if (!yr_str_has_prefix(authz, scheme))
        return -EINVAL;
    yr_str_t s = {authz.ptr + scheme.len, authz.len - scheme.len}, cred;
    if (!take_field(&s, "Credential", &cred) ||
        !take_field(&s, "SignedHeaders", &out->signed_headers) ||
        !take_field(&s, "Signature", &out->signature) || yr_str_trim(s).len != 0)
        return -EINVAL;
    /* AK/DATE/REGION/SERVICE/aws4_request */
    yr_str_t *parts[] = {&out->access_key, &out->date, &out->region, &out->service};
    const char *p = cred.ptr, *end = cred.ptr + cred.len;
    for (size_t i = 0; i < 4; i++) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        if (slash == NULL || slash == p)
            return -EINVAL;
        *parts[i] = (yr_str_t){p, (size_t)(slash - p)};
        p = slash + 1;
    }
    if (!yr_str_eq((yr_str_t){p, (size_t)(end - p)}, YR_STR("aws4_request")) ||
        out->signature.len != 64)
        return -EINVAL;
    return 0;
}
