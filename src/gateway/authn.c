/* gateway/authn.h: the client key of a request -> its identity.
 *
 * The master key and cached keys are answered in the call; anything else
 * waits for a store lookup. The waiting state lives in the request pool, and
 * a pool cleanup cancels the lookup if the pool goes first (the client
 * disconnected): then neither the continuation nor an error ever runs. */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/respond.h"

typedef struct {
    yr_auth_req_t req; /* req.data = this */
    yr_gw_req_t *g;
    yr_gw_authed_fn next;
} authn_t;

/* Why h (an Authorization or x-api-key value) carries no usable key. */
static const char *token_problem(yr_str_t h)
{
    if (h.len == 0)
        return "missing API key: send 'Authorization: Bearer <key>'"
               " (or x-api-key on /v1/messages, x-goog-api-key on /v1beta)";
    bool bearer = h.len >= 7 && yr_str_ieq((yr_str_t){h.ptr, 7}, YR_STR("Bearer "));
    yr_str_t rest = bearer ? yr_str_trim((yr_str_t){h.ptr + 7, h.len - 7}) : h;
    if (bearer && rest.len > YR_AUTH_MAX_TOKEN)
        return "the API key is too long to be valid (at most " YR_STR_VALUE(YR_AUTH_MAX_TOKEN)
               " bytes): check the Authorization header";
    return "the Authorization header must be 'Bearer <key>'";
}

/* The token the client sent, or YR_STR_NULL after sending the 401. */
static yr_str_t client_token(yr_gw_req_t *g)
{
    yr_str_t h = yr_http_req_header(g->http, YR_STR("authorization"));
    yr_str_t token = yr_auth_bearer(h);
    if (token.len == 0 && g->dialect == YR_DIALECT_ANTHROPIC) {
        /* The Anthropic SDK sends its key as x-api-key. */
        token = yr_http_req_header(g->http, YR_STR("x-api-key"));
        if (token.len > 0)
            h = token;
    }
    if (token.len == 0 && g->dialect == YR_DIALECT_GEMINI) {
        /* The Google GenAI SDK sends its key as x-goog-api-key. */
        token = yr_http_req_header(g->http, YR_STR("x-goog-api-key"));
        if (token.len > 0)
            h = token;
    }
    if (token.len == 0)
        yr_gw_send_error(g, YR_E_UNAUTHORIZED, token_problem(h), NULL, NULL, YR_STR_NULL);
    return token;
}

/* Runs the continuation, or sends the error for status. */
static void finish(authn_t *an, int status)
{
    yr_gw_req_t *g = an->g;
    if (status == 0) {
        g->identity = an->req.identity;
        if (g->identity.key != NULL) {
            /* The auth's copy lives in its cache: the request keeps its own. */
            yr_key_info_t *k = yr_palloc(g->http->pool, sizeof(*k));
            if (k == NULL) {
                yr_gw_send_error(g, YR_E_INTERNAL, "out of memory", NULL, NULL, YR_STR_NULL);
                return;
            }
            *k = *g->identity.key;
            g->identity.key = k;
        }
        an->next(g);
        return;
    }
    if (status == -EACCES) {
        yr_gw_send_error(g, YR_E_UNAUTHORIZED, "invalid API key", NULL, NULL, YR_STR_NULL);
        return;
    }
    /* The key may be fine: say so with a 503 the client can retry, never a
     * 401 that tells it to throw the key away. */
    yr_log_error("key lookup failed: %s", strerror(-status));
    yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "could not verify the API key, retry later", NULL,
                     NULL, YR_STR_NULL);
}

static void on_authed(yr_auth_req_t *req, int status)
{
    finish(req->data, status);
}

/* The pool is going away: a lookup still in flight must not call back into
 * it. After the lookup completed this is a no-op. */
static void on_pool_cleanup(void *data)
{
    authn_t *an = data;
    yr_auth_cancel(&an->req);
}

void yr_gw_authenticate(yr_gw_req_t *g, yr_gw_authed_fn next)
{
    if (g->authed) {
        next(g); /* at the head (yr_gateway_on_head), with g->identity set */
        return;
    }
    yr_str_t token = client_token(g);
    if (token.len == 0)
        return;
    authn_t *an = yr_pcalloc(g->http->pool, sizeof(*an));
    if (an == NULL) {
        yr_gw_send_error(g, YR_E_INTERNAL, "out of memory", NULL, NULL, YR_STR_NULL);
        return;
    }
    an->req.data = an;
    an->g = g;
    an->next = next;
    int rc = yr_auth_check(g->w->auth, &an->req, token, uv_hrtime(), on_authed);
    if (rc != -EINPROGRESS) {
        finish(an, rc);
        return;
    }
    if (yr_pool_cleanup_add(g->http->pool, on_pool_cleanup, an) != 0) {
        yr_auth_cancel(&an->req);
        yr_gw_send_error(g, YR_E_INTERNAL, "out of memory", NULL, NULL, YR_STR_NULL);
    }
}
