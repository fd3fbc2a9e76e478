/* GET /admin/routes and POST /admin/routes/reset (the master key or a UI
 * session: yr_gw_authenticate_master): what the
 * route layer knows about every configured route (route/health.h), and the
 * operator's "forget it, the provider is back". */
#include <http_parser.h>

#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "route/health.h"

static const char *circuit_name(yr_circuit_t c)
{
    switch (c) {
    case YR_CIRCUIT_OPEN: return "open";
    case YR_CIRCUIT_HALF_OPEN: return "half_open";
    default: return "closed";
    }
}

static int route_json(yr_buf_t *out, const yr_model_conf_t *m, const yr_route_conf_t *r,
                      int64_t now)
{
    yr_health_view_t v = {.ewma_ttfb_ms = -1, .remaining_requests = -1, .remaining_tokens = -1};
    yr_route_health_t *h = yr_health_of(r);
    if (h != NULL)
        yr_health_view(h, now, &v);
    int rc = yr_buf_append_str(out, YR_STR("{\"model\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(out, yr_str(m->id));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR(",\"provider\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(out, yr_str(r->provider->name));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR(",\"upstream_model\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(out, yr_str(r->model));
    if (rc == 0)
        rc = yr_buf_printf(
            out,
            ",\"own_key\":%s,\"strategy\":\"%s\",\"weight\":%u,\"max_concurrency\":%u,"
            "\"circuit\":\"%s\",\"available_in_ms\":%lld,\"inflight\":%u,"
            "\"consecutive_failures\":%u,\"ejections\":%u,\"ewma_ttfb_ms\":%.1f,"
            "\"remaining_requests\":%lld,\"remaining_tokens\":%lld,\"low_headroom\":%s}",
            r->api_key != NULL ? "true" : "false", yr_strategy_name(m->strategy), r->weight,
            r->max_concurrency, circuit_name(v.circuit),
            (long long)(v.not_before_ms > now ? v.not_before_ms - now : 0), v.inflight,
            v.consecutive_failures, v.ejections, v.ewma_ttfb_ms, (long long)v.remaining_requests,
            (long long)v.remaining_tokens, v.low_headroom ? "true" : "false");
    return rc;
}

static void routes_list(yr_gw_req_t *g)
{
    const yr_config_t *cfg = g->cfg;
    int64_t now = yr_health_now_ms();
    yr_buf_t out;
    yr_buf_init(&out, 16 * 1024 * 1024);
    int rc = yr_buf_append_str(&out, YR_STR("{\"object\":\"list\",\"data\":["));
    bool first = true;
    for (size_t i = 0; rc == 0 && i < cfg->nmodels; i++) {
        for (size_t j = 0; rc == 0 && j < cfg->models[i].nroutes; j++) {
            if (!first)
                rc = yr_buf_append_str(&out, YR_STR(","));
            first = false;
            if (rc == 0)
                rc = route_json(&out, &cfg->models[i], &cfg->models[i].routes[j], now);
        }
    }
    if (rc == 0)
        rc = yr_buf_append_str(&out, YR_STR("]}"));
    if (rc < 0)
        yr_gw_send_error(g, YR_E_INTERNAL, "route list too large", NULL, NULL, YR_STR_NULL);
    else
        yr_gw_send_json(g, 200, (yr_str_t){out.data, out.len}, NULL, 0);
    yr_buf_free(&out);
}

static void routes_reset(yr_gw_req_t *g)
{
    yr_health_clear_all();
    yr_log_info("%s: route health cleared by the admin API", g->id);
    yr_gw_send_json(g, 200, YR_STR("{\"reset\":true}"), NULL, 0);
}

bool yr_admin_routes(yr_gw_req_t *g)
{
    yr_http_req_t *req = g->http;
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    if (yr_str_eq(req->path, YR_STR("/admin/routes")) && get) {
        yr_gw_authenticate_master(g, routes_list);
        return true;
    }
    if (yr_str_eq(req->path, YR_STR("/admin/routes/reset")) && req->method == HTTP_POST) {
        yr_gw_authenticate_master(g, routes_reset);
        return true;
    }
    return false;
}
