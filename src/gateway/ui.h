/* The admin web UI (docs/ui.md): pages and assets under /ui, the master-key
 * login that opens a session cookie, and the session + CSRF check that lets
 * the UI call the admin API. */
#ifndef YR_GW_UI_H
#define YR_GW_UI_H

#include "gateway/gateway.h"

/* Handles /ui and everything under it; false when the path is not the UI's. */
bool yr_ui_handle(yr_gw_req_t *g);

/* The session cookie's value in req (YR_STR_NULL when none). */
yr_str_t yr_ui_cookie(const yr_http_req_t *req);

/* An admin API call that carries the session cookie: 0 when the session is
 * live, the x-csrf-token header is its CSRF token and the Origin (if any) is
 * this host's; otherwise the 401 or 403 was sent and -1 returned. */
int yr_ui_admin_session(yr_gw_req_t *g);

/* Headers every response to req carries for the UI's sake (no-store on
 * /admin and /ui, and the UI's security headers); at most cap. */
size_t yr_ui_response_headers(const yr_http_req_t *req, yr_http_header_t *out, size_t cap);

#endif
