/* Client key -> caller identity. One yr_auth_t per worker (not shared), used
 * on that worker's loop thread only: it holds the worker's store client and a
 * small cache of recent lookups whose entries live YR_AUTH_TTL_MS, so a
 * revoked key stops working within that time without a database read per
 * request.
 *
 * The master key and cache hits are answered at once; anything else starts
 * an asynchronous lookup on the store thread and answers through a callback
 * on the worker's loop (libuv style: the caller owns the yr_auth_req_t, which
 * must stay valid until the callback ran or yr_auth_cancel() was called). */
#ifndef YR_AUTH_H
#define YR_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define YR_AUTH_TTL_MS 500
#define YR_AUTH_MAX_TOKEN 512 /* bytes; a longer token can never be valid */
#define YR_STR_VALUE_(x) #x
#define YR_STR_VALUE(x) YR_STR_VALUE_(x)
#define YR_AUTH_CACHE_SLOTS 1024

typedef struct {
    bool master;
    int64_t key_id; /* 0 for the master key */
    /* The key's row (name, policy, spend at lookup); NULL for the master key.
     * From yr_auth_check / the callback it points into the auth's cache and
     * is valid until the next call into this auth: copy it to keep it. */
    const yr_key_info_t *key;
} yr_identity_t;

typedef struct yr_auth yr_auth_t;
typedef struct yr_auth_req yr_auth_req_t;

/* status: 0 (req->identity is set), -EACCES (unknown or revoked key), or
 * another negative code: the store failed (the caller answers 503, never
 * 401). Runs on the loop thread of the auth's store client. */
typedef void (*yr_auth_cb)(yr_auth_req_t *req, int status);

/* Caller-owned (a request pool is the usual home). Fields after `identity`
 * are private. */
struct yr_auth_req {
    void *data;             /* the caller's */
    yr_identity_t identity; /* the answer, on success */
    /* private */
    yr_auth_cb cb;
    struct yr_auth_lookup *lookup; /* the lookup this waits on; NULL if none */
    yr_auth_req_t *prev, *next;    /* its waiters */
};

/* store may be NULL (only the master key works); master_key may be NULL.
 * The store client stays owned by the caller and must outlive the auth. */
__attribute__((warn_unused_result)) int yr_auth_init(yr_store_client_t *store,
                                                     const char *master_key, yr_auth_t **out);
/* Every request started must have called back or been cancelled. */
void yr_auth_free(yr_auth_t *auth);

/* Replaces the master key (NULL or "" for none), as a config reload does;
 * the old one is wiped. The key is copied. Call it on the auth's own
 * thread. 0, or -EINVAL when the key is longer than any token can be (then
 * the old key stays). */
__attribute__((warn_unused_result)) int yr_auth_set_master_key(yr_auth_t *auth,
                                                                const char *master_key);

/* Extracts the token from "Bearer <token>"; YR_STR_NULL when malformed. */
yr_str_t yr_auth_bearer(yr_str_t authorization);

/* Checks token; now_ns is a monotonic clock (uv_hrtime).
 * - 0: valid, answered now (master key or a cached key): req->identity set.
 * - -EACCES: invalid, answered now.
 * - -EINPROGRESS: a store lookup was started; cb(req, status) runs later on
 *   the loop, unless yr_auth_cancel(req) is called first.
 * - another negative code: the lookup could not be started (store queue
 *   full, store closing, out of memory): a store failure, 503.
 * The callback never runs unless -EINPROGRESS was returned. Checks of one
 * key that miss the cache while its lookup is in flight wait on that same
 * lookup (one store op, however many requests). The token is not kept. */
__attribute__((warn_unused_result)) int
yr_auth_check(yr_auth_t *auth, yr_auth_req_t *req, yr_str_t token, uint64_t now_ns, yr_auth_cb cb);
/* Cancels a lookup still pending (a no-op when there is none): its callback
 * never runs, and req may be freed right after. */
void yr_auth_cancel(yr_auth_req_t *req);
/* Whether req has a lookup in flight. */
bool yr_auth_pending(const yr_auth_req_t *req);

#endif
