/* yr_gw_authenticate_master (gateway/authn.h): the admin API's one
 * credential check, the master key or an admin UI session. Apart from
 * authn.c so its unit test does not pull the UI in. */
#include "gateway/authn.h"
#include "gateway/respond.h"
#include "gateway/ui.h"

static void master_only(yr_gw_req_t *g)
{
    if (!g->identity.master) {
        yr_gw_send_error(g, YR_E_FORBIDDEN, "the admin API needs the master key", NULL, NULL,
                         YR_STR_NULL);
        return;
    }
    g->admin_next(g);
}

void yr_gw_authenticate_master(yr_gw_req_t *g, yr_gw_authed_fn next)
{
    g->admin_next = next;
    if (!g->authed && yr_http_req_header(g->http, YR_STR("authorization")).len == 0 &&
        yr_ui_cookie(g->http).len > 0) {
        if (yr_ui_admin_session(g) != 0)
            return;
        g->identity = (yr_identity_t){.master = true};
        g->authed = true; /* a head check already made: the handler's answers at once */
        next(g);
        return;
    }
    yr_gw_authenticate(g, master_only);
}
