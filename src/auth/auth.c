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
    yr_store_t *store;
    bool has_master;
    char master[MAX_TOKEN_LEN];
    size_t master_len;
    cache_entry_t cache[YR_AUTH_CACHE_SLOTS];
};

int yr_auth_init(yr_store_t *store, const char *master_key, yr_auth_t **out)
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
    OPENSSL_cleanse(a->master, sizeof(a->master));
    memcpy(a->master, master_key ? master_key : "", mlen);
    a->master_len = mlen;
    a->has_master = mlen > 0;
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

int yr_auth_check(yr_auth_t *a, yr_str_t token, uint64_t now_ns, yr_identity_t *id)
{
    if (token.len == 0 || token.len > MAX_TOKEN_LEN)
        return -EACCES;
    /* Constant-time in the key's bytes; only the length is compared
     * openly (it is no secret: client keys all have the same length). */
    if (a->has_master && token.len == a->master_len &&
        CRYPTO_memcmp(token.ptr, a->master, token.len) == 0) {
        *id = (yr_identity_t){.master = true, .key_id = 0};
        return 0;
    }
    unsigned char h[YR_KEY_HASH_LEN];
    yr_key_hash(token.ptr, token.len, h);
    if (a->store == NULL)
        return -EACCES;
    uint32_t slot;
    memcpy(&slot, h, sizeof(slot));
    cache_entry_t *e = &a->cache[slot % YR_AUTH_CACHE_SLOTS];
    if (e->used && e->expires_ns > now_ns && CRYPTO_memcmp(e->hash, h, sizeof(h)) == 0) {
        if (e->key_id == 0)
            return -EACCES;
        *id = (yr_identity_t){.master = false, .key_id = e->key_id};
        return 0;
    }
    yr_key_info_t info;
    int rc = yr_store_key_lookup(a->store, h, &info);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    memcpy(e->hash, h, sizeof(h));
    e->used = true;
    e->expires_ns = now_ns + (uint64_t)YR_AUTH_TTL_MS * 1000000u;
    e->key_id = rc == 0 ? info.id : 0;
    if (rc == -ENOENT)
        return -EACCES;
    *id = (yr_identity_t){.master = false, .key_id = info.id};
    return 0;
}
