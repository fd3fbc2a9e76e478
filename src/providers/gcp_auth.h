/* Google service-account credentials: OAuth 2.0 access tokens for Vertex AI.
 *
 *   1. yr_gcp_sa_parse (at config load): the service-account JSON key file
 *      -> client_email, the PEM private key (checked to load as RSA),
 *      token_uri, project_id, and an id that names this exact credential.
 *   2. yr_gcp_jwt: an RS256 JWT assertion (RFC 7523) for the token_uri,
 *      scope cloud-platform, signed with EVP_DigestSign.
 *   3. the token exchange: POST token_uri, grant_type jwt-bearer, done on
 *      the worker's loop through its upstream client; {access_token,
 *      expires_in} cached per worker (yr_gcp_tokens_t).
 *
 * The cache (one per worker, worker thread only): a token is served while it
 * has more than a few seconds left; in the last minutes of its life (5 min
 * for Google's 1-hour tokens, half the life of a short one) a request is
 * served the current token at once and one refresh starts behind it.
 * Without a usable token the request waits for the fetch; every request that
 * arrives meanwhile waits on the same fetch. A failed exchange fails all of
 * its waiters with a message that names the service account (client_email)
 * and says what the token endpoint answered; it is never cached, so the next
 * request tries again.
 *
 * Secrets: the private key stays in the config's pool; the assertion and the
 * token live in heap buffers of the cache and in the requests' pools, and
 * none of them is ever logged or put in a message. */
#ifndef YR_GCP_AUTH_H
#define YR_GCP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/pool.h"
#include "providers/transport.h"
#include "upstream/upstream.h"

#define YR_GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define YR_GCP_TOKEN_URI "https://oauth2.googleapis.com/token"
#define YR_GCP_MAX_SA_JSON (64 * 1024)  /* a key file is ~2.3 KB */
#define YR_GCP_MAX_TOKEN (8 * 1024)     /* Google's access tokens are far shorter */

/* A parsed service account; every string in the pool it was parsed into. */
typedef struct yr_gcp_sa {
    const char *client_email;
    const char *private_key;    /* PEM (PKCS#8) */
    const char *private_key_id; /* the JWT's kid; may be NULL */
    const char *token_uri;      /* default YR_GCP_TOKEN_URI */
    const char *project_id;     /* may be NULL */
    /* SHA-256 of client_email, token_uri and private_key: the cache key, so a
     * reload with another key never gets the old key's token. */
    uint8_t id[32];
} yr_gcp_sa_t;

/* Parses a service-account key file's JSON (type "service_account").
 * Returns 0, or -EINVAL with a message in err that quotes no secret, or
 * -ENOMEM. */
__attribute__((warn_unused_result)) int yr_gcp_sa_parse(yr_pool_t *pool, const char *json,
                                                         size_t len, yr_gcp_sa_t *out, char *err,
                                                         size_t errlen);

/* The signed assertion for sa at unix time now (valid one hour), appended to
 * out. 0, -EINVAL (the key does not sign), -ENOMEM or -E2BIG. */
__attribute__((warn_unused_result)) int yr_gcp_jwt(const yr_gcp_sa_t *sa, int64_t now,
                                                    yr_buf_t *out);

/* A token endpoint's answer: a 200's access_token (copied into token, cap
 * bytes) and expires_in (seconds; 3600 when absent). 0, -ENOMEM, or -EINVAL
 * with why filled (the endpoint's error and error_description for an error
 * body). */
int yr_gcp_token_parse(int status, yr_str_t body, char *token, size_t cap, int64_t *expires_in,
                       char *why, size_t whylen);

/* Base64url without padding (RFC 7515 §2), appended to out. */
__attribute__((warn_unused_result)) int yr_base64url(const void *p, size_t n, yr_buf_t *out);

/* ---- the per-worker cache ------------------------------------------------ */

typedef struct yr_gcp_tokens yr_gcp_tokens_t;

/* The cache of a worker whose upstream client is up (owned by the caller;
 * both on the same loop). 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_gcp_tokens_new(yr_upstream_t *up,
                                                           yr_gcp_tokens_t **out);
/* Cancels a fetch in flight and frees everything. No waiter may be left
 * (each request cancels its own before it ends). */
void yr_gcp_tokens_free(yr_gcp_tokens_t *t);

/* What a token request needs: the account, and the provider's timeouts for
 * the exchange (connect, whole transfer). */
typedef struct {
    const yr_gcp_sa_t *sa;
    uint32_t connect_timeout_ms, timeout_ms;
} yr_gcp_token_req_t;

/* A token for req. Returns 0 with *token (a copy in pool) when one is
 * usable now; 1 when done(arg, rc) will run later on the loop (then *token
 * is set, or err filled, before it runs; yr_gcp_token_cancel(*wait) instead
 * and done never runs); a negative code with err filled on failure. err must
 * stay valid as long as the wait (it is usually in the request's pool). */
__attribute__((warn_unused_result)) int yr_gcp_token_get(yr_gcp_tokens_t *t,
                                                          const yr_gcp_token_req_t *req,
                                                          yr_pool_t *pool, const char **token,
                                                          char *err, size_t errlen,
                                                          yr_cred_done_fn done, void *arg,
                                                          yr_cred_wait_t **wait);
void yr_gcp_token_cancel(yr_cred_wait_t *wait);
/* The provider refused token (a 401): when it is still the one cached for
 * sa it is dropped, so the next request fetches a new one. */
void yr_gcp_token_rejected(yr_gcp_tokens_t *t, const yr_gcp_sa_t *sa, const char *token);
/* Exchanges started so far on this worker (tests, metrics). */
uint64_t yr_gcp_tokens_fetches(const yr_gcp_tokens_t *t);

#endif
