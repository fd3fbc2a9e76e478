/* Client key -> caller identity. One yr_auth_t per worker (not shared): it
 * holds the worker's store connection and a small cache of recent lookups
 * whose entries live YR_AUTH_TTL_MS, so a revoked key stops working within
 * that time without a database read per request. */
#ifndef YR_AUTH_H
#define YR_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define YR_AUTH_TTL_MS 500
#define YR_AUTH_CACHE_SLOTS 1024

typedef struct {
    bool master;
    int64_t key_id; /* 0 for the master key */
} yr_identity_t;

typedef struct yr_auth yr_auth_t;

/* store may be NULL (only the master key works); master_key may be NULL.
 * The store stays owned by the caller and must outlive the auth. */
__attribute__((warn_unused_result)) int yr_auth_init(yr_store_t *store, const char *master_key,
                                                      yr_auth_t **out);
void yr_auth_free(yr_auth_t *auth);

/* Replaces the master key (NULL or "" for none), as a config reload does;
 * the old one is wiped. The key is copied. Call it on the auth's own
 * thread. 0, or -EINVAL when the key is longer than any token can be (then
 * the old key stays). */
__attribute__((warn_unused_result)) int yr_auth_set_master_key(yr_auth_t *auth,
                                                                const char *master_key);

/* Extracts the token from "Bearer <token>"; YR_STR_NULL when malformed. */
yr_str_t yr_auth_bearer(yr_str_t authorization);

/* 0 and *id when token is valid, -EACCES when not, other negatives on a
 * store failure. now_ns is a monotonic clock (uv_hrtime). */
__attribute__((warn_unused_result)) int yr_auth_check(yr_auth_t *auth, yr_str_t token,
                                                       uint64_t now_ns, yr_identity_t *id);

#endif
