/* resp_state.h: sealing provider state into encrypted_content. */
#include "api/resp_state.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "yr1."
#define PREFIX_LEN 4
#define MAC_LEN 32

static int mac(const yr_resp_secret_t *s, const char *json, size_t len, unsigned char out[MAC_LEN])
{
    /* HMAC-SHA256 over the prefix and the JSON (OpenSSL 3's EVP interface) */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_HMAC, NULL, s->key, s->key_len);
    size_t outlen = MAC_LEN;
    int rc = md != NULL && pk != NULL &&
                     EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
                     EVP_DigestSignUpdate(md, PREFIX, PREFIX_LEN) == 1 &&
                     EVP_DigestSignUpdate(md, json, len) == 1 &&
                     EVP_DigestSignFinal(md, out, &outlen) == 1 && outlen == MAC_LEN
                 ? 0
                 : -1;
    EVP_PKEY_free(pk);
    EVP_MD_CTX_free(md);
    return rc;
}

void yr_resp_secret_derive(const char *material, unsigned char key[32])
{
    static const char domain[] = "yourouter responses state v1";
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, domain, sizeof(domain)) != 1 ||
        EVP_DigestUpdate(md, material, strlen(material)) != 1 ||
        EVP_DigestFinal_ex(md, key, &n) != 1)
        memset(key, 0, 32);
    EVP_MD_CTX_free(md);
}

char *yr_resp_state_seal(const yr_resp_secret_t *s, const json_t *state)
{
    if (s == NULL || s->key_len == 0 || !json_is_object(state))
        return NULL;
    char *json = json_dumps(state, JSON_COMPACT);
    if (json == NULL)
        return NULL;
    size_t len = strlen(json);
    unsigned char m[MAC_LEN];
    char *out = NULL;
    if (len > YR_RESP_STATE_MAX / 2 || mac(s, json, len, m) < 0)
        goto done;
    size_t b64 = 4 * ((len + 2) / 3);
    out = malloc(PREFIX_LEN + b64 + 1 + 4 * ((MAC_LEN + 2) / 3) + 1);
    if (out == NULL)
        goto done;
    memcpy(out, PREFIX, PREFIX_LEN);
    int n =
        EVP_EncodeBlock((unsigned char *)out + PREFIX_LEN, (const unsigned char *)json, (int)len);
    size_t off = PREFIX_LEN + (size_t)n;
    out[off++] = '.';
    n = EVP_EncodeBlock((unsigned char *)out + off, m, MAC_LEN);
    out[off + (size_t)n] = '\0';
done:
    free(json);
    return out;
}

/* Standard base64 -> bytes (malloc'ed, NUL-terminated); NULL when invalid. */
static unsigned char *unbase64(const char *p, size_t len, size_t *outlen)
{
    if (len == 0 || len % 4 != 0 || len > YR_RESP_STATE_MAX)
        return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    int n = EVP_DecodeBlock(out, (const unsigned char *)p, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    size_t pad = p[len - 1] == '=' ? (p[len - 2] == '=' ? 2 : 1) : 0;
    *outlen = (size_t)n - pad;
    out[*outlen] = '\0';
    return out;
}

json_t *yr_resp_state_open(const yr_resp_secret_t *s, const char *text, size_t len)
{
    if (s == NULL || s->key_len == 0 || text == NULL || len <= PREFIX_LEN ||
        len > YR_RESP_STATE_MAX || memcmp(text, PREFIX, PREFIX_LEN) != 0)
        return NULL;
    const char *body = text + PREFIX_LEN;
    const char *dot = memchr(body, '.', len - PREFIX_LEN);
    if (dot == NULL)
        return NULL;
    size_t jl, ml;
    unsigned char *json = unbase64(body, (size_t)(dot - body), &jl);
    unsigned char *m = unbase64(dot + 1, len - PREFIX_LEN - (size_t)(dot - body) - 1, &ml);
    unsigned char want[MAC_LEN];
    json_t *state = NULL;
    if (json != NULL && m != NULL && ml == MAC_LEN && mac(s, (const char *)json, jl, want) == 0 &&
        CRYPTO_memcmp(want, m, MAC_LEN) == 0) {
        state = json_loadb((const char *)json, jl, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(state)) {
            json_decref(state);
            state = NULL;
        }
    }
    free(json);
    free(m);
    return state;
}
