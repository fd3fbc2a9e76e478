/* auth.h: the master key, a per-worker cache, and the store lookup behind
 * it. Everything here runs on the worker's loop thread. */
#include "auth/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKEN_LEN 512

typedef struct {
    unsigned char hash[YR_KEY_HASH_LEN];
    uint64_t expires_ns;
    int64_t key_id; /* 0 = known invalid */
    bool used;
} cache_entry_t;

struct yr_auth {
    yr_store_client_t *store;
    bool has_master;
    char master[MAX_TOKEN_LEN];
    size_t master_len;
    cache_entry_t cache[YR_AUTH_CACHE_SLOTS];
};

int yr_auth_init(yr_store_client_t *store, const char *master_key, yr_auth_t **out)
{
    yr_auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->store = store;
    size_t mlen = master_key ? strlen(master_key) : 0;
    if (mlen > MAX_TOKEN_LEN) {
        free(a);
        return -EINVAL;
    }
    if (mlen > 0) {
        a->has_master = true;
        memcpy(a->master, master_key, mlen);
        a->master_len = mlen;
    }
    *out = a;
    return 0;
}

void yr_auth_free(yr_auth_t *a)
{
    if (a != NULL)
        OPENSSL_cleanse(a, sizeof(*a));
    free(a);
}

yr_str_t yr_auth_bearer(yr_str_t h)
{
    if (h.len < 7 || !yr_str_ieq((yr_str_t){h.ptr, 7}, YR_STR("Bearer ")))
        return YR_STR_NULL;
    yr_str_t t = yr_str_trim((yr_str_t){h.ptr + 7, h.len - 7});
    return t.len > 0 && t.len <= MAX_TOKEN_LEN ? t : YR_STR_NULL;
}

static cache_entry_t *cache_slot(yr_auth_t *a, const unsigned char *h)
{
    uint32_t slot;
    memcpy(&slot, h, sizeof(slot));
    return &a->cache[slot % YR_AUTH_CACHE_SLOTS];
}

/* The answer of a store lookup is good for YR_AUTH_TTL_MS from when the
 * lookup started, so the entry never outlives a revoke by more than that.
 * Negative answers are cached too: a client retrying a bad key costs one
 * lookup per TTL. Store failures are not cached. */
static void cache_put(yr_auth_t *a, const unsigned char *h, uint64_t now_ns, int64_t key_id)
{
    cache_entry_t *e = cache_slot(a, h);
    memcpy(e->hash, h, YR_KEY_HASH_LEN);
    e->used = true;
    e->expires_ns = now_ns + (uint64_t)YR_AUTH_TTL_MS * 1000000u;
    e->key_id = key_id;
}

static void on_lookup(void *arg, int status, const yr_key_info_t *info)
{
    yr_auth_req_t *req = arg;
    req->op = NULL;
    if (status == 0 || status == -ENOENT)
        cache_put(req->auth, req->hash, req->now_ns, status == 0 ? info->id : 0);
    if (status == 0)
        req->identity = (yr_identity_t){.master = false, .key_id = info->id};
    req->cb(req, status == -ENOENT ? -EACCES : status);
}

int yr_auth_check(yr_auth_t *a, yr_auth_req_t *req, yr_str_t token, uint64_t now_ns, yr_auth_cb cb)
{
    req->auth = a;
    req->op = NULL;
    if (token.len == 0 || token.len > MAX_TOKEN_LEN)
        return -EACCES;
    /* Constant-time in the key's bytes; only the length is compared
     * openly (it is no secret: client keys all have the same length). */
    if (a->has_master && token.len == a->master_len &&
        CRYPTO_memcmp(token.ptr, a->master, token.len) == 0) {
        req->identity = (yr_identity_t){.master = true, .key_id = 0};
        return 0;
    }
    if (a->store == NULL)
        return -EACCES;
    yr_key_hash(token.ptr, token.len, req->hash);
    cache_entry_t *e = cache_slot(a, req->hash);
    if (e->used && e->expires_ns > now_ns &&
        CRYPTO_memcmp(e->hash, req->hash, YR_KEY_HASH_LEN) == 0) {
        if (e->key_id == 0)
            return -EACCES;
        req->identity = (yr_identity_t){.master = false, .key_id = e->key_id};
        return 0;
    }
    req->cb = cb;
    req->now_ns = now_ns;
    int rc = yr_store_lookup_async(a->store, req->hash, on_lookup, req, &req->op);
    return rc < 0 ? rc : -EINPROGRESS;
}

void yr_auth_cancel(yr_auth_req_t *req)
{
    if (req->op != NULL)
        yr_store_cancel(req->op);
    req->op = NULL;
}

bool yr_auth_pending(const yr_auth_req_t *req)
{
    return req->op != NULL;
}
