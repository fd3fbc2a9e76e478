/* The synchronous store API over a backend (store/backend.h): url dispatch,
 * key generation and the name rules, which are the same for every database.
 * The backends only run SQL. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/backend.h"

#define KEY_RANDOM_BYTES 32
#define KEY_NAME_MAX 127

_Static_assert(sizeof(YR_KEY_PREFIX) - 1 + (KEY_RANDOM_BYTES * 4 + 2) / 3 == YR_KEY_LEN,
               "YR_KEY_LEN must match the key encoding");
_Static_assert(YR_KEY_LEN < YR_KEY_MAX_LEN, "YR_KEY_MAX_LEN must hold a key and its NUL");
_Static_assert(YR_KEY_PREFIX_LEN < sizeof(((yr_key_info_t *)0)->prefix), "prefix field");
_Static_assert(KEY_NAME_MAX < sizeof(((yr_key_info_t *)0)->name), "name field");

void yr_store_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- opening --------------------------------------------------------------- */

/* Picks the backend for a storage url and what follows its scheme. Never
 * echoes the url in an error: a postgres url may carry a password. */
static int parse_url(const char *url, const yr_store_backend_t **be, const char **target, char *err,
                     size_t errlen)
{
    yr_str_t u = yr_str(url);
    if (url == NULL || u.len == 0) {
        yr_store_set_err(err, errlen, "storage url is empty");
        return -EINVAL;
    }
    *be = &yr_store_sqlite;
    if (strcmp(url, "sqlite::memory:") == 0) {
        *target = ":memory:";
        return 0;
    }
    if (yr_str_has_prefix(u, YR_STR("sqlite://"))) {
        *target = url + strlen("sqlite://");
        if (**target != '\0')
            return 0;
        yr_store_set_err(err, errlen, "storage url 'sqlite://' has no path (use sqlite://FILE)");
        return -EINVAL;
    }
    if (yr_str_has_prefix(u, YR_STR("postgres://")) ||
        yr_str_has_prefix(u, YR_STR("postgresql://"))) {
        *be = &yr_store_postgres;
        *target = url; /* libpq takes the url itself */
        return 0;
    }
    const char *colon = strchr(url, ':');
    size_t slen = colon != NULL ? (size_t)(colon - url) : 0;
    for (size_t i = 0; i < slen; i++)
        if (!((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z')))
            slen = 0;
    if (slen > 0 && slen <= 16)
        yr_store_set_err(err, errlen,
                         "unsupported storage url scheme '%.*s' (use sqlite://FILE, "
                         "sqlite::memory: or postgres://...)",
                         (int)slen, url);
    else
        yr_store_set_err(err, errlen,
                         "storage url must start with sqlite:// or postgres:// (e.g. "
                         "sqlite://yourouter.db)");
    return -EINVAL;
}

int yr_store_open(const char *url, yr_store_t **out, char *err, size_t errlen)
{
    const yr_store_backend_t *be = NULL;
    const char *target = NULL;
    int rc = parse_url(url, &be, &target, err, errlen);
    if (rc != 0)
        return rc;
    rc = be->open(target, out, err, errlen);
    if (rc == 0)
        (*out)->be = be;
    return rc;
}

void yr_store_close(yr_store_t *s)
{
    if (s != NULL)
        s->be->close(s);
}

/* ---- keys ------------------------------------------------------------------ */

/* SHA256() looks the algorithm up in OpenSSL 3's provider tables on every
 * call; the fetched EVP_MD is immutable and thread-safe, so fetch it once. */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void yr_key_hash(const char *key, size_t len, unsigned char out[YR_KEY_HASH_LEN])
{
    pthread_once(&g_sha256_once, sha256_fetch);
    if (g_sha256 == NULL || EVP_Digest(key, len, out, NULL, g_sha256, NULL) != 1)
        SHA256((const unsigned char *)key, len, out);
}

static bool name_is_valid(const char *name)
{
    size_t len = strnlen(name, KEY_NAME_MAX + 1);
    bool all_digits = true;
    if (len == 0 || len > KEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool digit = c >= '0' && c <= '9';
        if (!(digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
              c == '-'))
            return false;
        all_digits = all_digits && digit;
    }
    return !all_digits;
}

/* RFC 4648 §5 base64url without padding; out must hold 4*ceil(n/3)+1 bytes. */
static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)in[i] << 16;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (left > 1)
            out[o++] = abc[(v >> 6) & 63];
        if (left > 2)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
}

static int make_key(char key[YR_KEY_MAX_LEN])
{
    unsigned char raw[KEY_RANDOM_BYTES];
    size_t plen = sizeof(YR_KEY_PREFIX) - 1;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        yr_log_error("store: RAND_bytes failed: cannot create a key");
        return -EIO;
    }
    memcpy(key, YR_KEY_PREFIX, plen);
    base64url(raw, sizeof(raw), key + plen);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

static bool policy_is_valid(const yr_key_policy_t *p)
{
    if (p == NULL)
        return true;
    if (p->rpm < 0 || p->tpm < 0 || p->max_concurrency < 0 || p->expires_at < 0)
        return false;
    if (p->log_retention_s < 0 || p->log_retention_s > YR_CONTENT_RETENTION_MAX ||
        (!p->log_content && p->log_retention_s != 0))
        return false;
    for (int i = 0; i < YR_BUDGET__COUNT; i++)
        if (p->budget_micros[i] < 0)
            return false;
    return memchr(p->allowed_models, '\0', sizeof(p->allowed_models)) != NULL &&
           memchr(p->allowed_vendors, '\0', sizeof(p->allowed_vendors)) != NULL &&
           memchr(p->metadata, '\0', sizeof(p->metadata)) != NULL;
}

/* A new secret, its hash and its displayable prefix. */
static int new_secret(char key[YR_KEY_MAX_LEN], unsigned char hash[YR_KEY_HASH_LEN],
                      char prefix[YR_KEY_PREFIX_LEN + 1])
{
    int rc = make_key(key);
    if (rc != 0)
        return rc;
    yr_key_hash(key, YR_KEY_LEN, hash);
    memcpy(prefix, key, YR_KEY_PREFIX_LEN);
    prefix[YR_KEY_PREFIX_LEN] = '\0';
    return 0;
}

int yr_store_key_create(yr_store_t *s, const char *name, char *key_out, yr_key_info_t *info)
{
    return yr_store_key_create_with(s, name, NULL, key_out, info);
}

int yr_store_key_create_with(yr_store_t *s, const char *name, const yr_key_policy_t *policy,
                             char *key_out, yr_key_info_t *info)
{
    char key[YR_KEY_MAX_LEN];
    unsigned char hash[YR_KEY_HASH_LEN];
    char prefix[YR_KEY_PREFIX_LEN + 1];
    int64_t now = (int64_t)time(NULL);
    int64_t id = 0;
    int rc;
    if (name == NULL || !name_is_valid(name) || !policy_is_valid(policy))
        return -EINVAL;
    rc = new_secret(key, hash, prefix);
    if (rc != 0)
        goto out;
    rc = s->be->key_insert(s, name, hash, prefix, now, policy, &id);
    if (rc != 0)
        goto out;
    memcpy(key_out, key, YR_KEY_LEN + 1);
    if (info != NULL) {
        memset(info, 0, sizeof(*info));
        if (policy != NULL)
            info->policy = *policy;
        info->id = id;
        snprintf(info->name, sizeof(info->name), "%s", name);
        snprintf(info->prefix, sizeof(info->prefix), "%s", prefix);
        info->created_at = now;
        info->revoked_at = 0;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int yr_store_key_list(yr_store_t *s, yr_key_list_fn fn, void *arg)
{
    return s->be->key_list(s, fn, arg);
}

/* A key named by its id (all digits: names never are) or its name. 0, or
 * -ENOENT when nothing could match (-EINVAL: NULL). */
static int which_key(const char *name_or_id, size_t *name_len, int64_t *id)
{
    yr_str_t arg = yr_str(name_or_id);
    uint64_t n;
    *id = 0;
    *name_len = arg.len;
    if (name_or_id == NULL)
        return -EINVAL;
    if (arg.len > 0 && strspn(name_or_id, "0123456789") == arg.len) {
        if (yr_str_to_u64(arg, INT64_MAX, &n) != 0 || n == 0)
            return -ENOENT; /* larger than any id, or no id at all */
        *id = (int64_t)n;
        return 0;
    }
    return arg.len > KEY_NAME_MAX || arg.len == 0 ? -ENOENT : 0;
}

int yr_store_key_revoke_info(yr_store_t *s, const char *name_or_id, yr_key_info_t *info)
{
    size_t len;
    int64_t id;
    int rc = which_key(name_or_id, &len, &id);
    if (rc != 0)
        return rc;
    return s->be->key_revoke(s, id > 0 ? NULL : name_or_id, id > 0 ? 0 : len, id,
                             (int64_t)time(NULL), info);
}

int yr_store_key_update(yr_store_t *s, const char *name_or_id, const yr_key_policy_t *policy,
                        yr_key_info_t *info)
{
    size_t len;
    int64_t id;
    if (!policy_is_valid(policy))
        return -EINVAL;
    int rc = which_key(name_or_id, &len, &id);
    return rc != 0 ? rc : s->be->key_update(s, name_or_id, len, id, policy, info);
}

int yr_store_key_rotate(yr_store_t *s, const char *name_or_id, int64_t grace_s, char *key_out,
                        yr_key_info_t *info)
{
    char key[YR_KEY_MAX_LEN];
    unsigned char hash[YR_KEY_HASH_LEN];
    char prefix[YR_KEY_PREFIX_LEN + 1];
    size_t len;
    int64_t id;
    if (grace_s < 0)
        return -EINVAL;
    int rc = which_key(name_or_id, &len, &id);
    if (rc == 0)
        rc = new_secret(key, hash, prefix);
    if (rc == 0)
        rc = s->be->key_rotate(s, name_or_id, len, id, hash, prefix,
                               (int64_t)time(NULL) + grace_s, info);
    if (rc == 0)
        memcpy(key_out, key, YR_KEY_LEN + 1);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int yr_store_key_get(yr_store_t *s, const char *name_or_id, yr_key_info_t *info)
{
    size_t len;
    int64_t id;
    int rc = which_key(name_or_id, &len, &id);
    return rc != 0 ? rc : s->be->key_get(s, name_or_id, len, id, info);
}

int yr_store_usage_totals(yr_store_t *s, yr_usage_by_t by, int64_t since_ms, int64_t key_id,
                          yr_usage_total_fn fn, void *arg)
{
    return s->be->usage_totals(s, by, since_ms, key_id, fn, arg);
}

void yr_usage_class(const yr_usage_row_t *r, char *buf, size_t cap)
{
    yr_str_t c = yr_str_eq(r->outcome, YR_STR("ok")) ? YR_STR("ok")
                 : r->error_class.len > 0           ? r->error_class
                 : r->outcome.len > 0               ? r->outcome
                                                    : YR_STR("unknown");
    snprintf(buf, cap, "%.*s", (int)c.len, c.ptr);
}

int64_t yr_usage_hbucket(int64_t v)
{
    int64_t unit = v < 100 ? 1 : v < 1000 ? 10 : v < 10000 ? 100 : v < 100000 ? 1000 : 10000;
    return v / unit * unit;
}

int yr_store_usage_series(yr_store_t *s, const yr_usage_query_t *q, yr_usage_total_fn fn,
                          void *arg)
{
    if (q->bucket_ms <= 0 || (q->by != YR_USAGE_BY_MODEL && q->by != YR_USAGE_BY_VENDOR &&
                              q->by != YR_USAGE_BY_KEY && q->by != YR_USAGE_BY_CLASS &&
                              q->by != YR_USAGE_BY_NONE))
        return -EINVAL;
    return s->be->usage_series(s, q, fn, arg);
}

int yr_store_usage_hist(yr_store_t *s, const yr_usage_query_t *q, yr_usage_hist_fn fn, void *arg)
{
    return q->bucket_ms > 0 ? s->be->usage_hist(s, q, fn, arg) : -EINVAL;
}

int yr_store_usage_recent(yr_store_t *s, const yr_recent_query_t *q, yr_usage_rec_fn fn, void *arg)
{
    return q->limit >= 1 && q->limit <= 200 ? s->be->usage_recent(s, q, fn, arg) : -EINVAL;
}

int yr_store_key_page(yr_store_t *s, const yr_key_page_t *q, yr_key_list_fn fn, void *arg)
{
    return q->limit >= 1 && q->limit <= 500 ? s->be->key_page(s, q, fn, arg) : -EINVAL;
}

int yr_store_key_revoke(yr_store_t *s, const char *name_or_id)
{
    return yr_store_key_revoke_info(s, name_or_id, NULL);
}

int yr_store_key_lookup(yr_store_t *s, const unsigned char *hash, yr_key_info_t *info)
{
    return s->be->key_lookup(s, hash, (int64_t)time(NULL), info);
}

int yr_store_usage_write(yr_store_t *s, const yr_usage_row_t *rows, size_t n)
{
    if (n == 0)
        return 0;
    return s->be->usage_write(s, rows, n);
}

int yr_store_response_put(yr_store_t *s, const char *id, int64_t key_id, int64_t created_ms,
                          const char *input_items, const char *response)
{
    return s->be->response_put(s, id, key_id, created_ms, input_items, response);
}

int yr_store_response_get(yr_store_t *s, const char *id, int64_t key_id, char **input_items,
                          char **response)
{
    *input_items = *response = NULL;
    return s->be->response_get(s, id, key_id, input_items, response);
}

int yr_store_response_delete(yr_store_t *s, const char *id, int64_t key_id)
{
    return s->be->response_delete(s, id, key_id);
}

int yr_store_response_purge(yr_store_t *s, int64_t before_ms)
{
    return s->be->response_purge(s, before_ms);
}

int yr_store_content_put(yr_store_t *s, const yr_content_row_t *row)
{
    if (row->request_id[0] == '\0' || row->request_len > YR_CONTENT_MAX ||
        row->response_len > YR_CONTENT_MAX)
        return -EINVAL;
    return s->be->content_put(s, row);
}

int yr_store_content_get(yr_store_t *s, const char *id, int64_t now_ms, yr_content_row_t *row)
{
    memset(row, 0, sizeof(*row));
    return s->be->content_get(s, id, now_ms, row);
}

int yr_store_content_purge(yr_store_t *s, int64_t now_ms, int64_t *deleted)
{
    int64_t n = 0;
    int rc = s->be->content_purge(s, now_ms, &n);
    if (deleted != NULL)
        *deleted = n;
    return rc;
}

void yr_content_row_free(yr_content_row_t *row)
{
    free(row->request);
    free(row->response);
    row->request = row->response = NULL;
}
