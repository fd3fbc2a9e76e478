/* Request dispatch: request ids, the small endpoints (/health, /metrics,
 * /v1/models), authentication, and the error envelope every response uses. */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/errors.h"
#include "api/gemini_in.h"
#include "core/clock.h"
#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/content_log.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "gateway/ui.h"
#include "limits/limits.h"
#include "obs/obs.h"

static uint64_t rng_next(uint64_t s[2])
{
    /* xorshift128+: request ids need uniqueness, not secrecy. */
    uint64_t x = s[0];
    uint64_t const y = s[1];
    s[0] = y;
    x ^= x << 23;
    s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s[1] + y;
}

/* The request's gateway state: made at the head (yr_gateway_on_head) or,
 * for a request without a body, when it is complete. */
/* A request the proxy did not take ends: its access log line (proxied
 * requests log theirs in the proxy's finish). */
static void on_req_end(void *arg)
{
    yr_gw_req_t *g = arg;
    if (g->chat != NULL)
        return;
    const yr_key_info_t *key = g->identity.key;
    yr_obs_http_end(g->w->obs, g->request_id, g->http->method_name, g->http->path,
                    g->http->status, g->http->start_ns, uv_hrtime(), key ? key->name : NULL);
}

static yr_gw_req_t *gw_req_new(yr_http_req_t *req)
{
    if (req->data != NULL)
        return req->data;
    yr_worker_t *w = yr_http_server_ctx(req->server);
    yr_gw_req_t *g = yr_pcalloc(req->pool, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->http = req;
    g->w = w;
    /* 12 hex digits of wall-clock milliseconds, then 48 random bits: the
     * same shape as before, but ids sort by time, so the usage table's
     * unique (request_id, attempt) index grows at its right edge like the
     * others. With random ids every row landed on its own index page: about
     * one more WAL page per row, a page cache that could not hold the hot
     * set, and a checkpoint every few hundred rows. */
    uint64_t ms = (uint64_t)yr_wall_ms();
    int n = snprintf(g->id, sizeof(g->id), "req_%012llx%012llx",
                     (unsigned long long)(ms & 0xffffffffffffULL),
                     (unsigned long long)(rng_next(w->rng) & 0xffffffffffffULL));
    g->request_id = (yr_str_t){g->id, (size_t)n};
    /* First cleanup on the pool, so it runs last: the proxy's cleanup still
     * reads the config. */
    g->cfg = yr_cfg_gen_pin(w->gen, req->pool);
    if (g->cfg == NULL)
        return NULL;
    if (w->obs != NULL && yr_obs_logging(w->obs) &&
        yr_pool_cleanup_add(req->pool, on_req_end, g) < 0)
        return NULL;
    req->data = g;
    return g;
}

void yr_gateway_on_http_error(yr_http_req_t *req, int status, const char *code,
                              const char *message)
{
    yr_gw_req_t *g = gw_req_new(req);
    if (g == NULL) {
        yr_http_respond(req, 500, NULL, 0, YR_STR("text/plain"), YR_STR("out of memory"));
        return;
    }
    yr_err_t e;
    switch (status) {
    case 408: e = YR_E_REQUEST_TIMEOUT; break;
    case 413: e = YR_E_TOO_LARGE; break;
    case 431: e = YR_E_HEADERS_TOO_LARGE; break;
    case 503: e = YR_E_OVERLOADED; break;
    case 505: e = YR_E_HTTP_VERSION; break;
    default: e = YR_E_INVALID_REQUEST; break;
    }
    /* The server's own 503s are momentary (memory or connections full). */
    yr_gw_send_error(g, e, message, NULL, code, status == 503 ? YR_STR("1") : YR_STR_NULL);
}

static void handle_health(yr_gw_req_t *g)
{
    if (atomic_load(&g->w->rt->shutting_down))
        yr_gw_send_json(g, 503, YR_STR("{\"status\":\"shutting_down\"}"), NULL, 0);
    else
        yr_gw_send_json(g, 200, YR_STR("{\"status\":\"ok\"}"), NULL, 0);
}

static void handle_metrics(yr_gw_req_t *g)
{
    yr_runtime_t *rt = g->w->rt;
    yr_buf_t out;
    /* A cap, not an allocation: the GenAI histograms are ~16 KB per label
     * combination, and a large config can have a few thousand. */
    yr_buf_init(&out, 64 * 1024 * 1024);
    yr_store_stats_t st = {0};
    if (rt->store != NULL)
        yr_store_stats(rt->store, &st);
    if (yr_metrics_render(rt->all_metrics, rt->nworkers, &out) < 0 ||
        yr_obs_render(rt->all_obs, rt->nworkers, g->cfg, &out) < 0 ||
        yr_buf_printf(&out,
                      "# HELP yourouter_usage_rows_total Usage rows, by what became of them.\n"
                      "# TYPE yourouter_usage_rows_total counter\n"
                      "yourouter_usage_rows_total{result=\"written\"} %llu\n"
                      "yourouter_usage_rows_total{result=\"dropped\"} %llu\n"
                      "yourouter_usage_rows_total{result=\"failed\"} %llu\n"
                      "# HELP yourouter_usage_write_batches_total Usage transactions committed"
                      " (rows written / batches: rows per transaction).\n"
                      "# TYPE yourouter_usage_write_batches_total counter\n"
                      "yourouter_usage_write_batches_total %llu\n"
                      "# HELP yourouter_usage_write_retries_total Usage batches written again"
                      " after a failed write.\n"
                      "# TYPE yourouter_usage_write_retries_total counter\n"
                      "yourouter_usage_write_retries_total %llu\n"
                      "# HELP yourouter_usage_queue_depth Usage rows waiting to be written.\n"
                      "# TYPE yourouter_usage_queue_depth gauge\n"
                      "yourouter_usage_queue_depth %llu\n",
                      (unsigned long long)st.usage_written, (unsigned long long)st.usage_dropped,
                      (unsigned long long)st.usage_failed,
                      (unsigned long long)st.usage_batches,
                      (unsigned long long)st.usage_retries,
                      (unsigned long long)st.usage_depth) < 0) {
        yr_buf_free(&out);
        yr_gw_send_error(g, YR_E_INTERNAL, "metrics rendering failed", NULL, NULL, YR_STR_NULL);
        return;
    }
    yr_http_header_t h[1] = {{YR_STR("x-request-id"), g->request_id}};
    yr_http_respond(g->http, 200, h, 1, YR_STR("text/plain; version=0.0.4; charset=utf-8"),
                    (yr_str_t){out.data ? out.data : "", out.len});
    yr_buf_free(&out);
}

static void handle_models(yr_gw_req_t *g)
{
    const yr_config_t *cfg = g->cfg;
    yr_buf_t out;
    yr_buf_init(&out, 16 * 1024 * 1024);
    int rc = yr_buf_append_str(&out, YR_STR("{\"object\":\"list\",\"data\":["));
    const yr_key_policy_t *pol = g->identity.key ? &g->identity.key->policy : NULL;
    size_t shown = 0;
    for (size_t i = 0; rc == 0 && i < cfg->nmodels; i++) {
        const yr_model_conf_t *m = &cfg->models[i];
        if (!yr_key_allows_model(pol, yr_str(m->id)))
            continue; /* only the models the calling key may use */
        rc = yr_buf_append_str(&out, shown++ ? YR_STR(",{\"id\":") : YR_STR("{\"id\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(&out, yr_str(m->id));
        if (rc == 0)
            rc = yr_buf_printf(&out, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":",
                               (long long)g->w->rt->started_at);
        if (rc == 0)
            rc = yr_buf_append_json_str(
                &out, yr_str(m->nroutes ? m->routes[0].provider->name : "yourouter"));
        if (rc == 0)
            rc = yr_buf_append_str(&out, YR_STR("}"));
    }
    if (rc == 0)
        rc = yr_buf_append_str(&out, YR_STR("]}"));
    if (rc < 0)
        yr_gw_send_error(g, YR_E_INTERNAL, "model list too large", NULL, NULL, YR_STR_NULL);
    else
        yr_gw_send_json(g, 200, (yr_str_t){out.data, out.len}, NULL, 0);
    yr_buf_free(&out);
}

/* GET /v1beta/models and /v1beta/models/{model} (Gemini clients): the
 * models the calling key may use, as Gemini Model resources. */
static void handle_gemini_models(yr_gw_req_t *g)
{
    const yr_config_t *cfg = g->cfg;
    const yr_key_policy_t *pol = g->identity.key ? &g->identity.key->policy : NULL;
    yr_gem_req_info_t info;
    int one = yr_gem_parse_model_path(g->http->path, &info);
    yr_buf_t out;
    yr_buf_init(&out, 16 * 1024 * 1024);
    int rc = 0;
    if (one != -ENOENT) {
        const yr_model_conf_t *m =
            one == 0 ? yr_config_model(cfg, (yr_str_t){info.model, info.model_len}) : NULL;
        if (m == NULL || !yr_key_allows_model(pol, yr_str(m->id))) {
            char msg[400];
            snprintf(msg, sizeof(msg), "The model '%s' does not exist or is not served here",
                     info.model);
            yr_buf_free(&out);
            yr_gw_send_error(g, YR_E_MODEL_NOT_FOUND, msg, NULL, NULL, YR_STR_NULL);
            return;
        }
        rc = yr_gem_model_json(yr_str(m->id), &out);
    } else {
        rc = yr_buf_append_str(&out, YR_STR("{\"models\":["));
        size_t shown = 0;
        for (size_t i = 0; rc == 0 && i < cfg->nmodels; i++) {
            const yr_model_conf_t *m = &cfg->models[i];
            if (!yr_key_allows_model(pol, yr_str(m->id)))
                continue;
            if (shown++ > 0)
                rc = yr_buf_append_str(&out, YR_STR(","));
            if (rc == 0)
                rc = yr_gem_model_json(yr_str(m->id), &out);
        }
        if (rc == 0)
            rc = yr_buf_append_str(&out, YR_STR("]}"));
    }
    if (rc < 0)
        yr_gw_send_error(g, YR_E_INTERNAL, "model list too large", NULL, NULL, YR_STR_NULL);
    else
        yr_gw_send_json(g, 200, (yr_str_t){out.data, out.len}, NULL, 0);
    yr_buf_free(&out);
}

/* Length of the UTF-8 sequence at s[i] (1..4), or 0 when it is not a valid
 * one (RFC 3629: no overlongs, surrogates or code points past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len)
{
    unsigned char c = s[i];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || len - i < n)
        return 0;
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[i + k] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* The client's path for an error message: at most max bytes, cut between
 * characters (never inside one, or the JSON body would not be UTF-8), with
 * bytes that are not UTF-8 shown as '?'. Writes a NUL-terminated string. */
static void path_for_message(yr_str_t path, char *out, size_t cap, size_t max)
{
    const unsigned char *p = (const unsigned char *)path.ptr;
    size_t o = 0;
    if (max > cap - 4)
        max = cap - 4;
    for (size_t i = 0; i < path.len;) {
        size_t n = utf8_seq(p, i, path.len);
        size_t w = n ? n : 1;
        if (o + w > max) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (n)
            memcpy(out + o, p + i, n);
        else
            out[o] = '?';
        o += w;
        i += w;
    }
    out[o] = '\0';
}

static bool path_is(const yr_http_req_t *req, const char *p)
{
    return yr_str_eq(req->path, yr_str(p));
}

/* Whether the endpoint req is for authenticates its caller: it must match
 * the dispatch in yr_gateway_on_request (and the admin handlers). */
static bool authenticates(const yr_http_req_t *req)
{
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    bool post = req->method == HTTP_POST;
    if (path_is(req, "/v1/chat/completions") || path_is(req, "/chat/completions") ||
        path_is(req, "/v1/responses") || path_is(req, "/responses") ||
        path_is(req, "/v1/embeddings") || path_is(req, "/embeddings") ||
        path_is(req, "/v1/messages") || path_is(req, "/v1/messages/count_tokens") ||
        yr_gem_is_target(req->path))
        return post;
    if (yr_str_has_prefix(req->path, YR_STR("/v1beta/models")))
        return get;
    if (path_is(req, "/v1/models") || path_is(req, "/models") || path_is(req, "/admin/routes"))
        return get;
    if (path_is(req, "/admin/routes/reset"))
        return post;
    return path_is(req, "/admin/usage") || path_is(req, "/admin/keys") ||
           yr_str_has_prefix(req->path, YR_STR("/admin/keys/")) ||
           yr_str_has_prefix(req->path, YR_STR("/admin/stats/")) ||
           path_is(req, "/admin/requests");
}

static void head_authed(yr_gw_req_t *g)
{
    g->authed = true;
    yr_http_req_continue(g->http);
}

/* A head that announces a body: an endpoint that authenticates does it now,
 * before 100 Continue and before a byte of the body is buffered, so a
 * client without a valid key costs no body memory (issue 8). The lookup may
 * be async (the store thread); the body is read once it succeeded, and the
 * handler's own yr_gw_authenticate then answers at once. */
void yr_gateway_on_head(yr_http_req_t *req)
{
    yr_gw_req_t *g = gw_req_new(req);
    if (g == NULL) {
        yr_http_respond(req, 500, NULL, 0, YR_STR("text/plain"), YR_STR("out of memory"));
        return;
    }
    if (!authenticates(req)) {
        yr_http_req_continue(req);
        return;
    }
    /* Its 401 in the client's shape, and the key where its SDK sends it. */
    if (path_is(req, "/v1/messages") || path_is(req, "/v1/messages/count_tokens"))
        g->dialect = YR_DIALECT_ANTHROPIC;
    else if (path_is(req, "/v1/responses") || path_is(req, "/responses"))
        g->dialect = YR_DIALECT_RESPONSES;
    else if (yr_str_has_prefix(req->path, YR_STR("/v1beta/")))
        g->dialect = YR_DIALECT_GEMINI;
    yr_metrics_add(&g->w->metrics.http_requests, 1);
    g->counted = true;
    if (yr_str_has_prefix(req->path, YR_STR("/admin/")))
        yr_gw_authenticate_master(g, head_authed); /* the master key or a UI session */
    else
        yr_gw_authenticate(g, head_authed);
}

void yr_gateway_on_request(yr_http_req_t *req)
{
    yr_gw_req_t *g = gw_req_new(req);
    if (g == NULL) {
        yr_http_respond(req, 500, NULL, 0, YR_STR("text/plain"), YR_STR("out of memory"));
        return;
    }
    if (!g->counted)
        yr_metrics_add(&g->w->metrics.http_requests, 1);
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    bool post = req->method == HTTP_POST;
    if (path_is(req, "/v1/chat/completions") || path_is(req, "/chat/completions")) {
        if (!post)
            goto not_allowed;
        yr_proxy_chat(g);
        return;
    }
    if (path_is(req, "/v1/embeddings") || path_is(req, "/embeddings")) {
        if (!post)
            goto not_allowed;
        yr_proxy_embeddings(g);
        return;
    }
    if (yr_str_has_prefix(req->path, YR_STR("/v1/responses/")) && req->path.len > 14) {
        g->dialect = YR_DIALECT_RESPONSES;
        yr_proxy_responses_stored(g);
        return;
    }
    if (path_is(req, "/v1/responses") || path_is(req, "/responses")) {
        g->dialect = YR_DIALECT_RESPONSES;
        if (!post)
            goto not_allowed;
        yr_proxy_responses(g);
        return;
    }
    if (path_is(req, "/v1/messages") || path_is(req, "/v1/messages/count_tokens")) {
        g->dialect = YR_DIALECT_ANTHROPIC;
        if (!post)
            goto not_allowed;
        if (req->path.len > sizeof("/v1/messages") - 1)
            yr_proxy_count_tokens(g);
        else
            yr_proxy_messages(g);
        return;
    }
    if (yr_str_has_prefix(req->path, YR_STR("/v1beta/models")) && !yr_gem_is_target(req->path)) {
        g->dialect = YR_DIALECT_GEMINI;
        if (!get)
            goto not_allowed;
        yr_gw_authenticate(g, handle_gemini_models);
        return;
    }
    if (yr_gem_is_target(req->path)) {
        g->dialect = YR_DIALECT_GEMINI;
        if (!post)
            goto not_allowed;
        yr_proxy_gemini(g);
        return;
    }
    if (path_is(req, "/health") || path_is(req, "/healthz")) {
        if (!get)
            goto not_allowed;
        handle_health(g);
        return;
    }
    if (path_is(req, "/metrics")) {
        if (!get)
            goto not_allowed;
        handle_metrics(g);
        return;
    }
    if (path_is(req, "/v1/models") || path_is(req, "/models")) {
        if (!get)
            goto not_allowed;
        yr_gw_authenticate(g, handle_models);
        return;
    }
    if (yr_admin_routes(g) || yr_admin_stats(g) || yr_admin_keys(g) || yr_admin_content(g) ||
        yr_ui_handle(g))
        return;
    char msg[256], path[160];
    path_for_message(req->path, path, sizeof(path), 128);
    snprintf(msg, sizeof(msg), "no route for %.*s %s", (int)req->method_name.len,
             req->method_name.ptr, path);
    yr_gw_send_error(g, YR_E_NOT_FOUND, msg, NULL, NULL, YR_STR_NULL);
    return;
not_allowed:
    path_for_message(req->path, path, sizeof(path), 128);
    snprintf(msg, sizeof(msg), "method %.*s is not allowed on %s", (int)req->method_name.len,
             req->method_name.ptr, path);
    yr_gw_send_error(g, YR_E_METHOD_NOT_ALLOWED, msg, NULL, NULL, YR_STR_NULL);
}
