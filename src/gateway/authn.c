/* gateway/authn.h: the client key of a request -> its identity. */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/respond.h"

/* 0 when the caller presented a valid key; otherwise the 401 is sent. */
static int check_key(yr_gw_req_t *g, yr_identity_t *id)
{
    yr_str_t h = yr_http_req_header(g->http, YR_STR("authorization"));
    yr_str_t token = yr_auth_bearer(h);
    if (token.len == 0 && g->dialect == YR_DIALECT_ANTHROPIC) {
        /* The Anthropic SDK sends its key as x-api-key. */
        token = yr_http_req_header(g->http, YR_STR("x-api-key"));
        if (token.len > 0)
            h = token;
    }
    if (token.len == 0) {
        yr_gw_send_error(g, YR_E_UNAUTHORIZED,
                         h.len ? "the Authorization header must be 'Bearer <key>'"
                               : "missing API key: send 'Authorization: Bearer <key>'"
                                 " (or x-api-key on /v1/messages)",
                         NULL, NULL, YR_STR_NULL);
        return -EACCES;
    }
    int rc = yr_auth_check(g->w->auth, token, uv_hrtime(), id);
    if (rc == -EACCES) {
        yr_gw_send_error(g, YR_E_UNAUTHORIZED, "invalid API key", NULL, NULL, YR_STR_NULL);
        return rc;
    }
    if (rc < 0) {
        yr_log_error("key lookup failed: %s", strerror(-rc));
        yr_gw_send_error(g, YR_E_INTERNAL, "could not verify the API key", NULL, NULL,
                         YR_STR_NULL);
        return rc;
    }
    return 0;
}

void yr_gw_authenticate(yr_gw_req_t *g, yr_gw_authed_fn next)
{
    if (check_key(g, &g->identity) == 0)
        next(g);
}
