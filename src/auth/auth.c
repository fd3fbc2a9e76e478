/* auth.h: the master key, a per-worker cache, and the store lookup behind
 * it. Everything here runs on the worker's loop thread. */
#include "auth/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKEN_LEN YR_AUTH_MAX_TOKEN

typedef struct {
    unsigned char hash[YR_KEY_HASH_LEN];
    uint64_t expires_ns;
    int64_t key_id; /* 0 = known invalid */
    bool used;
    yr_key_info_t *info; /* malloc'ed when key_id != 0; NULL when memory ran out */
} cache_entry_t;

/* One store lookup in flight, and the requests waiting on its answer. */
typedef struct yr_auth_lookup {
    struct yr_auth_lookup *next; /* a->pending[slot] chain */
    yr_auth_t *auth;
    yr_store_op_t *op; /* NULL once answered */
    uint64_t started_ns;
    unsigned char hash[YR_KEY_HASH_LEN];
    yr_auth_req_t *head, *tail; /* waiters, in arrival order */
} lookup_t;

struct yr_auth {
    yr_store_client_t *store;
    bool has_master;
    /* Only the master key's SHA-256 is kept: a token is compared by its
     * hash, in constant time over 32 bytes, so neither its bytes nor its
     * length show in the timing. */
    unsigned char master_hash[YR_KEY_HASH_LEN];
    cache_entry_t cache[YR_AUTH_CACHE_SLOTS];
    lookup_t *pending[YR_AUTH_CACHE_SLOTS]; /* by the same slot as the cache */
};

int yr_auth_init(yr_store_client_t *store, const char *master_key, yr_auth_t **out)
{
    yr_auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->store = store;
    int rc = yr_auth_set_master_key(a, master_key);
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int yr_auth_set_master_key(yr_auth_t *a, const char *master_key)
{
    size_t mlen = master_key ? strlen(master_key) : 0;
    if (mlen > MAX_TOKEN_LEN)
        return -EINVAL;
    OPENSSL_cleanse(a->master_hash, sizeof(a->master_hash));
    if (mlen > 0)
        yr_key_hash(master_key, mlen, a->master_hash);
    a->has_master = mlen > 0;
    return 0;
}

void yr_auth_free(yr_auth_t *a)
{
    if (a == NULL)
        return;
    /* Nothing should be pending; if something is, its callbacks must not
     * run into a freed auth, and its memory must not leak. */
    for (size_t i = 0; i < YR_AUTH_CACHE_SLOTS; i++) {
        while (a->pending[i] != NULL) {
            lookup_t *lk = a->pending[i];
            a->pending[i] = lk->next;
            for (yr_auth_req_t *r = lk->head; r != NULL; r = r->next)
                r->lookup = NULL;
            yr_store_cancel(lk->op);
            free(lk);
        }
    }
    for (size_t i = 0; i < YR_AUTH_CACHE_SLOTS; i++)
        free(a->cache[i].info);
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

static size_t slot_of(const unsigned char *h)
{
    uint32_t slot;
    memcpy(&slot, h, sizeof(slot));
    return slot % YR_AUTH_CACHE_SLOTS;
}

/* The answer of a store lookup is good for YR_AUTH_TTL_MS from when the
 * lookup started, so the entry never outlives a revoke by more than that.
 * Negative answers are cached too: a client retrying a bad key costs one
 * lookup per TTL. Store failures are not cached. */
static void cache_put(yr_auth_t *a, const unsigned char *h, uint64_t now_ns,
                      const yr_key_info_t *info)
{
    cache_entry_t *e = &a->cache[slot_of(h)];
    if (info != NULL && e->info == NULL)
        e->info = malloc(sizeof(*e->info));
    if (info != NULL && e->info == NULL) {
        e->used = false; /* not cached: the next request looks it up again */
        return;
    }
    memcpy(e->hash, h, YR_KEY_HASH_LEN);
    e->used = true;
    e->expires_ns = now_ns + (uint64_t)YR_AUTH_TTL_MS * 1000000u;
    e->key_id = info != NULL ? info->id : 0;
    if (info != NULL)
        *e->info = *info;
}

/* ---- lookups in flight ---------------------------------------------------- */

static lookup_t *pending_find(yr_auth_t *a, const unsigned char *h)
{
    for (lookup_t *lk = a->pending[slot_of(h)]; lk != NULL; lk = lk->next)
        if (CRYPTO_memcmp(lk->hash, h, YR_KEY_HASH_LEN) == 0)
            return lk;
    return NULL;
}

static void pending_remove(lookup_t *lk)
{
    lookup_t **p = &lk->auth->pending[slot_of(lk->hash)];
    while (*p != NULL && *p != lk)
        p = &(*p)->next;
    if (*p == lk)
        *p = lk->next;
}

static void waiter_add(lookup_t *lk, yr_auth_req_t *req)
{
    req->lookup = lk;
    req->next = NULL;
    req->prev = lk->tail;
    if (lk->tail != NULL)
        lk->tail->next = req;
    else
        lk->head = req;
    lk->tail = req;
}

static void waiter_remove(lookup_t *lk, yr_auth_req_t *req)
{
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        lk->head = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    else
        lk->tail = req->prev;
    req->lookup = NULL;
    req->prev = req->next = NULL;
}

/* The store answered: cache it, then answer every waiter. The lookup is out
 * of the pending table first, so a callback that checks the same key again
 * starts afresh (or hits the cache) instead of joining a finished lookup. */
static void on_lookup(void *arg, int status, const yr_key_info_t *info)
{
    lookup_t *lk = arg;
    yr_auth_req_t *req;
    int answer = status == -ENOENT ? -EACCES : status;
    lk->op = NULL;
    pending_remove(lk);
    if (status == 0 || status == -ENOENT)
        cache_put(lk->auth, lk->hash, lk->started_ns, status == 0 ? info : NULL);
    /* Pop before calling: a callback may cancel (unlink) another waiter. */
    while ((req = lk->head) != NULL) {
        waiter_remove(lk, req);
        if (status == 0)
            req->identity = (yr_identity_t){.master = false, .key_id = info->id, .key = info};
        req->cb(req, answer);
    }
    free(lk);
}

/* Joins the lookup of h in flight, or starts one. */
static int lookup_join(yr_auth_t *a, yr_auth_req_t *req, const unsigned char *h, uint64_t now_ns)
{
    lookup_t *lk = pending_find(a, h);
    if (lk == NULL) {
        lk = calloc(1, sizeof(*lk));
        if (lk == NULL)
            return -ENOMEM;
        lk->auth = a;
        lk->started_ns = now_ns;
        memcpy(lk->hash, h, YR_KEY_HASH_LEN);
        int rc = yr_store_lookup_async(a->store, h, on_lookup, lk, &lk->op);
        if (rc < 0) {
            free(lk);
            return rc;
        }
        lookup_t **slot = &a->pending[slot_of(h)];
        lk->next = *slot;
        *slot = lk;
    }
    waiter_add(lk, req);
    return -EINPROGRESS;
}

/* ---- the check ------------------------------------------------------------ */

int yr_auth_check(yr_auth_t *a, yr_auth_req_t *req, yr_str_t token, uint64_t now_ns, yr_auth_cb cb)
{
    unsigned char h[YR_KEY_HASH_LEN];
    req->lookup = NULL;
    req->prev = req->next = NULL;
    req->cb = cb;
    if (token.len == 0 || token.len > MAX_TOKEN_LEN)
        return -EACCES;
    yr_key_hash(token.ptr, token.len, h);
    if (a->has_master && CRYPTO_memcmp(h, a->master_hash, sizeof(h)) == 0) {
        req->identity = (yr_identity_t){.master = true, .key_id = 0};
        return 0;
    }
    if (a->store == NULL)
        return -EACCES;
    cache_entry_t *e = &a->cache[slot_of(h)];
    if (e->used && e->expires_ns > now_ns && CRYPTO_memcmp(e->hash, h, sizeof(h)) == 0) {
        if (e->key_id == 0)
            return -EACCES;
        req->identity = (yr_identity_t){.master = false, .key_id = e->key_id, .key = e->info};
        return 0;
    }
    return lookup_join(a, req, h, now_ns);
}

void yr_auth_cancel(yr_auth_req_t *req)
{
    lookup_t *lk = req->lookup;
    if (lk == NULL)
        return;
    waiter_remove(lk, req);
    /* The last waiter gone from a lookup still in flight: nobody wants the
     * answer. (While on_lookup runs, op is NULL and it frees lk itself.) */
    if (lk->head == NULL && lk->op != NULL) {
        yr_store_cancel(lk->op);
        pending_remove(lk);
        free(lk);
    }
}

bool yr_auth_pending(const yr_auth_req_t *req)
{
    return req->lookup != NULL;
}
