/* Authentication of a gateway request: the client key (Bearer, or x-api-key
 * for Anthropic clients) -> g->identity. The continuation runs only when the
 * key is valid, at once or later (a store lookup); otherwise the 401 (or
 * the 503 of a store failure) is sent and it never runs. */
#ifndef YR_GW_AUTHN_H
#define YR_GW_AUTHN_H

#include "gateway/gateway.h"

typedef void (*yr_gw_authed_fn)(yr_gw_req_t *g);

void yr_gw_authenticate(yr_gw_req_t *g, yr_gw_authed_fn next);

/* The admin API's check, the one place it is made: the master key as a
 * bearer token, or (without an Authorization header) the admin UI's session
 * cookie with its CSRF token (gateway/ui.h). next runs with
 * g->identity.master set; otherwise 401 (no or a bad credential), 403 (a
 * client key, or a session call without its CSRF token) or 503 is sent. */
void yr_gw_authenticate_master(yr_gw_req_t *g, yr_gw_authed_fn next);

#endif
