/* Persistent store: client keys (and later usage). One yr_store_t is one
 * database connection, used by one thread only; each worker opens its own.
 * Schema migrations run in yr_store_open(). */
#ifndef YR_STORE_H
#define YR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YR_KEY_HASH_LEN 32     /* SHA-256 */
#define YR_KEY_MAX_LEN 64      /* a printed client key, with its NUL */
#define YR_KEY_PREFIX "yr-"
#define YR_KEY_LEN 46          /* "yr-" + 43 base64url chars (32 random bytes) */
#define YR_KEY_PREFIX_LEN 10   /* characters kept in yr_key_info_t.prefix */

typedef struct yr_store yr_store_t;

typedef struct {
    int64_t id;
    char name[128];
    char prefix[16];  /* first characters of the key, safe to display */
    int64_t created_at; /* unix seconds */
    int64_t revoked_at; /* 0 when active */
} yr_key_info_t;

/* Opens url ("sqlite://PATH", "sqlite::memory:") and migrates the schema.
 * Returns 0 and *out (caller owns; yr_store_close) or a negative code with a
 * message in err. */
__attribute__((warn_unused_result)) int yr_store_open(const char *url, yr_store_t **out,
                                                       char *err, size_t errlen);
void yr_store_close(yr_store_t *store);

/* Creates a key: writes the printable key (NUL-terminated) into key_out, which
 * must hold YR_KEY_MAX_LEN bytes, and stores only its SHA-256. -EEXIST when an
 * active key already has that name; -EINVAL unless name is 1..127 characters
 * of [A-Za-z0-9._-] and not all digits (all digits means an id to revoke).
 * info may be NULL. */
__attribute__((warn_unused_result)) int yr_store_key_create(yr_store_t *store, const char *name,
                                                             char *key_out, yr_key_info_t *info);
/* Calls fn for every key, oldest first. info is valid only during the call;
 * fn must not call back into the same store. */
__attribute__((warn_unused_result)) int yr_store_key_list(yr_store_t *store,
                                                           void (*fn)(const yr_key_info_t *,
                                                                      void *),
                                                           void *arg);
/* Revokes the active key with this name, or with this numeric id.
 * Returns 0, or -ENOENT when no active key matches. */
__attribute__((warn_unused_result)) int yr_store_key_revoke(yr_store_t *store,
                                                             const char *name_or_id);
/* The same, and fills info (when not NULL) with the key just revoked, so a
 * caller can say which key an id or name resolved to. */
__attribute__((warn_unused_result)) int yr_store_key_revoke_info(yr_store_t *store,
                                                                  const char *name_or_id,
                                                                  yr_key_info_t *info);
/* Finds an active key by the SHA-256 of its text. 0 (info filled when not
 * NULL), -ENOENT when unknown or revoked, other negatives on errors. */
__attribute__((warn_unused_result)) int yr_store_key_lookup(yr_store_t *store,
                                                             const unsigned char *hash,
                                                             yr_key_info_t *info);

/* SHA-256 of a key's text (the stored form). */
void yr_key_hash(const char *key, size_t len, unsigned char out[YR_KEY_HASH_LEN]);

#endif
