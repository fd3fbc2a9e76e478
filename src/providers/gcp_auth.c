/* Google service-account tokens: key file parsing, the RS256 assertion, the
 * token exchange and the per-worker cache (gcp_auth.h has the contract).
 *
 * The exchange is RFC 7523 as Google documents it for server-to-server
 * apps: POST {token_uri} with
 *   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={JWT}
 * where the JWT is {"alg":"RS256","typ":"JWT","kid":private_key_id} .
 * {"iss":client_email,"scope":...,"aud":token_uri,"iat":now,"exp":now+3600}
 * signed with RSASSA-PKCS1-v1_5 / SHA-256. The answer is
 * {"access_token","expires_in","token_type":"Bearer"}, or
 * {"error","error_description"}.
 *
 * Ownership: an entry per service account (malloc'ed, freed with the cache);
 * its token, request body and response buffer are the entry's heap; a wait
 * is malloc'ed by yr_gcp_token_get and freed right before its callback runs
 * or by yr_gcp_token_cancel. */
#include "providers/gcp_auth.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "api/json_tok.h"
#include "core/log.h"

#define JWT_LIFETIME_S 3600
#define MAX_ASSERTION (16 * 1024)
#define MAX_TOKEN_RESPONSE (64 * 1024)
#define MAX_ENTRIES 64            /* service accounts cached per worker */
#define REFRESH_MARGIN_MS 300000  /* refresh Google's 1-hour tokens 5 min early */
#define STALE_MARGIN_MS 10000     /* never start a call with less than this left */
#define REFRESH_RETRY_MS 5000     /* after a failed background refresh */
#define EXCHANGE_TIMEOUT_MS 30000 /* a token exchange never takes longer */

/* ---- base64url ------------------------------------------------------------- */

int yr_base64url(const void *p, size_t n, yr_buf_t *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = p;
    if (n > SIZE_MAX / 2)
        return -E2BIG;
    int rc = yr_buf_reserve(out, (n + 2) / 3 * 4 + 1);
    for (size_t i = 0; rc == 0 && i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        size_t k = n - i >= 3 ? 3 : n - i;
        if (k > 1)
            v |= (uint32_t)s[i + 1] << 8;
        if (k > 2)
            v |= s[i + 2];
        char q[4] = {abc[(v >> 18) & 63], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
        rc = yr_buf_append(out, q, k + 1);
    }
    return rc;
}

/* ---- the key file ------------------------------------------------------------ */

static int sa_fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -EINVAL;
}

static EVP_PKEY *load_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

static const char *sa_string(yr_pool_t *pool, json_t *root, const char *key, bool *oom)
{
    const char *v = json_string_value(json_object_get(root, key));
    if (v == NULL || v[0] == '\0')
        return NULL;
    char *c = yr_pstrndup(pool, v, strlen(v));
    if (c == NULL)
        *oom = true;
    return c;
}

int yr_gcp_sa_parse(yr_pool_t *pool, const char *json, size_t len, yr_gcp_sa_t *out, char *err,
                    size_t errlen)
{
    *out = (yr_gcp_sa_t){0};
    if (len > YR_GCP_MAX_SA_JSON)
        return sa_fail(err, errlen, "the service-account JSON is larger than 64 KiB");
    json_t *root = NULL;
    int lrc = yr_json_load(json, len, JSON_REJECT_DUPLICATES, &root);
    if (lrc == -ENOMEM)
        return lrc;
    if (!json_is_object(root)) {
        json_decref(root);
        /* never quote the text: it is a private key */
        return sa_fail(err, errlen, "the service-account credentials are not a JSON object");
    }
    int rc = 0;
    bool oom = false;
    const char *type = json_string_value(json_object_get(root, "type"));
    out->client_email = sa_string(pool, root, "client_email", &oom);
    out->private_key = sa_string(pool, root, "private_key", &oom);
    out->private_key_id = sa_string(pool, root, "private_key_id", &oom);
    out->token_uri = sa_string(pool, root, "token_uri", &oom);
    out->project_id = sa_string(pool, root, "project_id", &oom);
    if (oom) {
        rc = -ENOMEM;
    } else if (type == NULL || strcmp(type, "service_account") != 0) {
        rc = sa_fail(err, errlen,
                     "the credentials are not a service-account key (\"type\" must be "
                     "\"service_account\"; user and external-account credentials are not "
                     "supported: use api_key with an access token for those)");
    } else if (out->client_email == NULL || strlen(out->client_email) > 254) {
        rc = sa_fail(err, errlen, "the service-account JSON has no valid \"client_email\"");
    } else if (out->private_key == NULL) {
        rc = sa_fail(err, errlen, "the service-account JSON has no \"private_key\"");
    } else if (out->token_uri != NULL && strncmp(out->token_uri, "https://", 8) != 0 &&
               strncmp(out->token_uri, "http://", 7) != 0) {
        rc = sa_fail(err, errlen, "the service-account JSON's \"token_uri\" is not an http(s) URL");
    }
    json_decref(root);
    if (rc < 0)
        return rc;
    if (out->token_uri == NULL)
        out->token_uri = YR_GCP_TOKEN_URI;
    EVP_PKEY *k = load_key(out->private_key);
    bool rsa = k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA;
    EVP_PKEY_free(k);
    if (!rsa)
        return sa_fail(err, errlen,
                       "the service-account JSON's \"private_key\" is not a PEM RSA private key");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, out->client_email, strlen(out->client_email) + 1) == 1 &&
              EVP_DigestUpdate(md, out->token_uri, strlen(out->token_uri) + 1) == 1 &&
              EVP_DigestUpdate(md, out->private_key, strlen(out->private_key)) == 1 &&
              EVP_DigestFinal_ex(md, out->id, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -ENOMEM;
}

/* ---- the assertion ------------------------------------------------------------ */

static int b64_json(yr_buf_t *out, const yr_buf_t *json)
{
    return yr_base64url(json->data, json->len, out);
}

int yr_gcp_jwt(const yr_gcp_sa_t *sa, int64_t now, yr_buf_t *out)
{
    yr_buf_t h, c;
    yr_buf_init(&h, 4096);
    yr_buf_init(&c, 4096);
    int rc = yr_buf_append_str(&h, YR_STR("{\"alg\":\"RS256\",\"typ\":\"JWT\""));
    if (rc == 0 && sa->private_key_id != NULL) {
        rc = yr_buf_append_str(&h, YR_STR(",\"kid\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(&h, yr_str(sa->private_key_id));
    }
    if (rc == 0)
        rc = yr_buf_append_str(&h, YR_STR("}"));
    if (rc == 0)
        rc = yr_buf_append_str(&c, YR_STR("{\"iss\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(&c, yr_str(sa->client_email));
    if (rc == 0)
        rc = yr_buf_printf(&c, ",\"scope\":\"%s\",\"aud\":", YR_GCP_SCOPE);
    if (rc == 0)
        rc = yr_buf_append_json_str(&c, yr_str(sa->token_uri));
    if (rc == 0)
        rc = yr_buf_printf(&c, ",\"iat\":%lld,\"exp\":%lld}", (long long)now,
                           (long long)(now + JWT_LIFETIME_S));
    size_t start = out->len;
    if (rc == 0)
        rc = b64_json(out, &h);
    if (rc == 0)
        rc = yr_buf_append(out, ".", 1);
    if (rc == 0)
        rc = b64_json(out, &c);
    yr_buf_free(&h);
    yr_buf_free(&c);
    if (rc < 0)
        return rc;

    EVP_PKEY *k = load_key(sa->private_key);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024]; /* RSA-8192 at most */
    size_t siglen = 0;
    if (k == NULL || md == NULL || EVP_PKEY_get_size(k) > (int)sizeof(sig) ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)out->data + start,
                       out->len - start) != 1 ||
        siglen > sizeof(sig) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out->data + start,
                       out->len - start) != 1)
        rc = -EINVAL;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    if (rc == 0)
        rc = yr_buf_append(out, ".", 1);
    if (rc == 0)
        rc = yr_base64url(sig, siglen, out);
    OPENSSL_cleanse(sig, sizeof(sig));
    return rc;
}

/* ---- the answer ---------------------------------------------------------------- */

int yr_gcp_token_parse(int status, yr_str_t body, char *token, size_t cap, int64_t *expires_in,
                       char *why, size_t whylen)
{
    json_t *root = NULL;
    if (yr_json_load(body.ptr ? body.ptr : "", body.len, 0, &root) == -ENOMEM) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    const char *at = json_string_value(json_object_get(root, "access_token"));
    json_t *exp = json_object_get(root, "expires_in");
    int rc = 0;
    if (status == 200 && at != NULL && at[0] != '\0' && strlen(at) < cap) {
        bool printable = true;
        for (const char *p = at; *p; p++)
            printable = printable && *p > 0x20 && *p < 0x7f;
        if (printable) {
            memcpy(token, at, strlen(at) + 1);
            *expires_in = json_is_integer(exp) ? json_integer_value(exp) : JWT_LIFETIME_S;
            json_decref(root);
            return 0;
        }
    }
    const char *e = json_string_value(json_object_get(root, "error"));
    const char *d = json_string_value(json_object_get(root, "error_description"));
    if (e == NULL) /* a google.rpc status body: {"error":{"message":...}} */
        d = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
    if (status == 200)
        snprintf(why, whylen, "the token endpoint's answer has no usable access_token");
    else if (e != NULL || d != NULL)
        snprintf(why, whylen, "HTTP %d: %.64s%s%.300s", status, e ? e : "", e && d ? ": " : "",
                 d ? d : "");
    else
        snprintf(why, whylen, "HTTP %d", status);
    rc = -EINVAL;
    json_decref(root);
    return rc;
}

/* ---- the cache ------------------------------------------------------------------ */

typedef struct entry entry_t;

struct yr_cred_wait {
    entry_t *e;
    yr_cred_wait_t *next;
    yr_pool_t *pool;
    const char **token;
    char *err;
    size_t errlen;
    yr_cred_done_fn done;
    void *arg;
};

struct entry {
    entry_t *next;
    yr_gcp_tokens_t *t;
    uint8_t id[32];
    char email[256];
    char *token;         /* malloc'ed; NULL: none */
    uint64_t refresh_ms; /* monotonic: refresh in the background from here */
    uint64_t stale_ms;   /* ... and wait for a new one from here */
    uint64_t retry_ms;   /* no background refresh before this (after a failure) */
    /* the exchange in flight */
    yr_upstream_call_t *call;
    uint64_t started_ms;
    char *url;
    const char *headers[4];
    yr_buf_t body, resp;
    yr_cred_wait_t *waiters;    /* waiting for it */
    yr_cred_wait_t *delivering; /* being told its result */
};

struct yr_gcp_tokens {
    yr_upstream_t *up;
    entry_t *entries;
    size_t n;
    uint64_t fetches;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

int yr_gcp_tokens_new(yr_upstream_t *up, yr_gcp_tokens_t **out)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    (*out)->up = up;
    return 0;
}

static void drop_token(entry_t *e)
{
    if (e->token != NULL) {
        OPENSSL_cleanse(e->token, strlen(e->token));
        free(e->token);
        e->token = NULL;
    }
}

static void end_fetch(entry_t *e)
{
    if (e->body.data != NULL)
        OPENSSL_cleanse(e->body.data, e->body.len);
    yr_buf_free(&e->body);
    yr_buf_free(&e->resp);
    free(e->url);
    e->url = NULL;
    e->call = NULL;
}

static void entry_free(entry_t *e)
{
    if (e->call != NULL)
        yr_upstream_cancel(e->call);
    end_fetch(e);
    drop_token(e);
    free(e);
}

void yr_gcp_tokens_free(yr_gcp_tokens_t *t)
{
    if (t == NULL)
        return;
    for (entry_t *e = t->entries, *next; e != NULL; e = next) {
        next = e->next;
        while (e->waiters != NULL) { /* none should be left: each ends as cancelled */
            yr_cred_wait_t *w = e->waiters;
            e->waiters = w->next;
            free(w);
        }
        entry_free(e);
    }
    free(t);
}

uint64_t yr_gcp_tokens_fetches(const yr_gcp_tokens_t *t)
{
    return t ? t->fetches : 0;
}

static bool idle(const entry_t *e)
{
    return e->call == NULL && e->waiters == NULL && e->delivering == NULL;
}

/* The entry of sa; a new one when absent (evicting idle entries without a
 * usable token when the table is full). NULL when out of memory. */
static entry_t *entry_of(yr_gcp_tokens_t *t, const yr_gcp_sa_t *sa, uint64_t now)
{
    for (entry_t *e = t->entries; e != NULL; e = e->next)
        if (memcmp(e->id, sa->id, sizeof(e->id)) == 0)
            return e;
    if (t->n >= MAX_ENTRIES) {
        for (entry_t **pp = &t->entries; *pp != NULL;) {
            entry_t *e = *pp;
            if (idle(e) && (e->token == NULL || now >= e->stale_ms)) {
                *pp = e->next;
                entry_free(e);
                t->n--;
            } else {
                pp = &e->next;
            }
        }
        if (t->n >= MAX_ENTRIES)
            return NULL;
    }
    entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->t = t;
    memcpy(e->id, sa->id, sizeof(e->id));
    snprintf(e->email, sizeof(e->email), "%s", sa->client_email);
    e->next = t->entries;
    t->entries = e;
    t->n++;
    return e;
}

/* Tells every waiter the result (rc; the token is e->token when 0). A
 * callback may start another get on this entry, or cancel a wait still in
 * the list: each wait leaves the list before its callback runs. */
static void deliver(entry_t *e, int rc, const char *why)
{
    e->delivering = e->waiters;
    e->waiters = NULL;
    while (e->delivering != NULL) {
        yr_cred_wait_t *w = e->delivering;
        e->delivering = w->next;
        int r = rc;
        if (r == 0) {
            *w->token = yr_pstrndup(w->pool, e->token, strlen(e->token));
            if (*w->token == NULL)
                r = -ENOMEM;
        }
        if (r < 0 && w->errlen > 0)
            snprintf(w->err, w->errlen, "%s", r == -ENOMEM ? "out of memory" : why);
        yr_cred_done_fn done = w->done;
        void *arg = w->arg;
        free(w);
        done(arg, r);
    }
}

static int on_token_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    entry_t *e = data;
    (void)call;
    return yr_buf_append(&e->resp, p, n) == 0 ? YR_UP_CONTINUE : YR_UP_ABORT;
}

static void on_token_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    entry_t *e = data;
    int status = yr_upstream_status(call);
    char token[YR_GCP_MAX_TOKEN];
    char why[512], msg[900];
    int64_t expires_in = 0;
    int rc;
    if (err != YR_UP_OK) {
        snprintf(why, sizeof(why), "%s",
                 err == YR_UP_EABORTED ? "the answer is larger than 64 KiB"
                                       : yr_upstream_error_text(call));
        rc = -EIO;
    } else {
        rc = yr_gcp_token_parse(status, (yr_str_t){e->resp.data, e->resp.len}, token,
                                sizeof(token), &expires_in, why, sizeof(why));
    }
    uint64_t started = e->started_ms;
    snprintf(msg, sizeof(msg),
             "could not get an access token for service account %s from %s: %s", e->email,
             e->url ? e->url : "?", why);
    end_fetch(e);
    if (rc == 0) {
        drop_token(e);
        e->token = strdup(token);
        OPENSSL_cleanse(token, sizeof(token));
        if (e->token == NULL) {
            rc = -ENOMEM;
        } else {
            /* The token's life counts from when we asked for it. */
            uint64_t life = expires_in > 0 ? (uint64_t)expires_in * 1000u : 0;
            uint64_t refresh = life / 2 < REFRESH_MARGIN_MS ? life / 2 : REFRESH_MARGIN_MS;
            uint64_t stale = life / 10 < STALE_MARGIN_MS ? life / 10 : STALE_MARGIN_MS;
            e->refresh_ms = started + life - refresh;
            e->stale_ms = started + life - stale;
            e->retry_ms = 0;
            yr_log_debug("access token for service account %s: valid for %lld s", e->email,
                         (long long)expires_in);
        }
    } else {
        e->retry_ms = now_ms() + REFRESH_RETRY_MS;
        yr_log_warn("%s", msg);
    }
    deliver(e, rc, msg);
}

static const yr_upstream_cbs_t token_cbs = {
    .on_data = on_token_data,
    .on_done = on_token_done,
};

static int start_fetch(entry_t *e, const yr_gcp_token_req_t *req, uint64_t now, char *err,
                       size_t errlen)
{
    static const char grant[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
    yr_buf_init(&e->body, MAX_ASSERTION);
    yr_buf_init(&e->resp, MAX_TOKEN_RESPONSE);
    int rc = yr_buf_append(&e->body, grant, sizeof(grant) - 1);
    if (rc == 0)
        rc = yr_gcp_jwt(req->sa, (int64_t)time(NULL), &e->body); /* base64url: no escaping */
    e->url = rc == 0 ? strdup(req->sa->token_uri) : NULL;
    if (rc == 0 && e->url == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        e->headers[0] = "Content-Type: application/x-www-form-urlencoded";
        e->headers[1] = "Accept: application/json";
        e->headers[2] = "User-Agent: yourouter/0.1";
        e->headers[3] = NULL;
        uint32_t total = req->timeout_ms > 0 && req->timeout_ms < EXCHANGE_TIMEOUT_MS
                             ? req->timeout_ms
                             : EXCHANGE_TIMEOUT_MS;
        yr_upstream_req_t ur = {
            .url = e->url,
            .body = e->body.data,
            .body_len = e->body.len,
            .headers = e->headers,
            .connect_timeout_ms = req->connect_timeout_ms,
            .first_byte_timeout_ms = total,
            .timeout_ms = total,
            .max_body = MAX_TOKEN_RESPONSE,
            .http2 = true, /* Google's token endpoint speaks it */
        };
        rc = yr_upstream_start(e->t->up, &ur, &token_cbs, e, &e->call);
    }
    if (rc < 0) {
        snprintf(err, errlen, "could not get an access token for service account %s: %s",
                 e->email,
                 rc == -EINVAL ? "its private key does not sign" : "could not start the exchange");
        end_fetch(e);
        return rc;
    }
    e->started_ms = now;
    e->t->fetches++;
    return 0;
}

int yr_gcp_token_get(yr_gcp_tokens_t *t, const yr_gcp_token_req_t *req, yr_pool_t *pool,
                     const char **token, char *err, size_t errlen, yr_cred_done_fn done, void *arg,
                     yr_cred_wait_t **wait)
{
    *wait = NULL;
    uint64_t now = now_ms();
    entry_t *e = entry_of(t, req->sa, now);
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (e->token != NULL && now < e->stale_ms) {
        if (now >= e->refresh_ms && e->call == NULL && now >= e->retry_ms) {
            char ignored[256];
            (void)start_fetch(e, req, now, ignored, sizeof(ignored)); /* behind this request */
        }
        *token = yr_pstrndup(pool, e->token, strlen(e->token));
        if (*token == NULL) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        return 0;
    }
    if (e->call == NULL) {
        int rc = start_fetch(e, req, now, err, errlen);
        if (rc < 0)
            return rc;
    }
    yr_cred_wait_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM; /* the fetch goes on for the others */
    }
    *w = (yr_cred_wait_t){.e = e,
                          .next = e->waiters,
                          .pool = pool,
                          .token = token,
                          .err = err,
                          .errlen = errlen,
                          .done = done,
                          .arg = arg};
    e->waiters = w;
    *wait = w;
    return 1;
}

static bool unlink_wait(yr_cred_wait_t **list, yr_cred_wait_t *w)
{
    for (yr_cred_wait_t **pp = list; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            return true;
        }
    return false;
}

void yr_gcp_token_cancel(yr_cred_wait_t *w)
{
    if (w == NULL)
        return;
    entry_t *e = w->e;
    if (unlink_wait(&e->waiters, w) || unlink_wait(&e->delivering, w))
        free(w);
    /* A fetch nobody waits for any more still finishes: its token will be
     * wanted by the next request. */
}

void yr_gcp_token_rejected(yr_gcp_tokens_t *t, const yr_gcp_sa_t *sa, const char *token)
{
    if (t == NULL || sa == NULL || token == NULL)
        return;
    for (entry_t *e = t->entries; e != NULL; e = e->next)
        if (memcmp(e->id, sa->id, sizeof(e->id)) == 0) {
            if (e->token != NULL && strcmp(e->token, token) == 0) {
                yr_log_info("the access token of service account %s was refused: dropped",
                            e->email);
                drop_token(e);
            }
            return;
        }
}
