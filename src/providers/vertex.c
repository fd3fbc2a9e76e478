/* Vertex AI: the transport (URLs, Bearer auth from the token cache, the
 * google.rpc error classes) and the two dialects it speaks, each the
 * existing one with Vertex's differences as options (vertex.h).
 *
 * Memory: URLs, header arrays and tokens are in cx->pool; rewritten bodies
 * in the attempt's body buffer. */
#include "providers/vertex.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/json_tok.h"
#include "providers/gcp_auth.h"
#include "providers/anthropic_native.h"
#include "providers/gemini.h"

/* ---- which publisher ------------------------------------------------------------ */

static const char *bare_model(const char *model)
{
    const char *slash = strrchr(model, '/');
    return slash ? slash + 1 : model;
}

bool yr_vertex_anthropic(const yr_route_conf_t *r)
{
    const char *pub = r->provider->publisher;
    if (pub != NULL)
        return strcmp(pub, "anthropic") == 0;
    return strncmp(bare_model(r->model ? r->model : ""), "claude", 6) == 0;
}

/* ---- URLs ---------------------------------------------------------------------------- */

/* Path-segment bytes that go as they are: RFC 3986 unreserved, and '@'
 * (Claude's versions, claude-sonnet-4@20250514, as Google writes them). */
static bool plain(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '@';
}

static const char *method_of(const yr_call_ctx_t *cx, bool anthropic)
{
    if (anthropic)
        return cx->chat->stream && !cx->count_tokens ? "streamRawPredict" : "rawPredict";
    return cx->count_tokens   ? "countTokens"
           : cx->chat->stream ? "streamGenerateContent?alt=sse"
                              : "generateContent";
}

/* {base}/v1/projects/{p}/locations/{l}/publishers/{pub}/models/{model}:{method};
 * method NULL: the one of the call (method_of). */
static char *vertex_url(yr_call_ctx_t *cx, const char *method)
{
    const yr_provider_conf_t *p = cx->route->provider;
    bool anthropic = yr_vertex_anthropic(cx->route);
    /* Claude's token counting has one endpoint; the model is in the body. */
    const char *model = anthropic && cx->count_tokens ? "count-tokens" : bare_model(cx->route->model);
    yr_buf_t b;
    yr_buf_init(&b, 8192);
    int rc = yr_buf_printf(&b, "%s/v1/projects/%s/locations/%s/publishers/%s/models/", p->base_url,
                           p->project, p->location, anthropic ? "anthropic" : "google");
    for (const char *m = model; rc == 0 && *m; m++)
        rc = plain(*m) ? yr_buf_append(&b, m, 1)
                       : yr_buf_printf(&b, "%%%02X", (unsigned)(unsigned char)*m);
    if (rc == 0)
        rc = yr_buf_printf(&b, ":%s", method ? method : method_of(cx, anthropic));
    char *url = rc == 0 ? yr_pstrndup(cx->pool, b.data, b.len) : NULL;
    yr_buf_free(&b);
    return url;
}

/* ---- the transport ------------------------------------------------------------------- */

static int vertex_credentials(yr_call_ctx_t *cx, yr_cred_done_fn done, void *arg,
                              yr_cred_wait_t **wait)
{
    const yr_provider_conf_t *p = cx->route->provider;
    *wait = NULL;
    cx->access_token = NULL;
    if (p->gcp_sa == NULL || yr_route_key(cx->route) != NULL)
        return 0; /* a static access token: the api_key */
    if (cx->gcp_tokens == NULL) {
        snprintf(cx->error.message, sizeof(cx->error.message),
                 "no token cache on this worker for service account %s", p->gcp_sa->client_email);
        return -EINVAL;
    }
    yr_gcp_token_req_t req = {.sa = p->gcp_sa,
                              .connect_timeout_ms = p->connect_timeout_ms,
                              .timeout_ms = p->timeout_ms};
    return yr_gcp_token_get(cx->gcp_tokens, &req, cx->pool, &cx->access_token, cx->error.message,
                            sizeof(cx->error.message), done, arg, wait);
}

/* The dialect's protocol headers without anthropic-version (Vertex takes
 * the version in the body), and the Bearer token when there is one. */
static const char *const *vertex_extra(yr_call_ctx_t *cx, const char *const *extra)
{
    size_t n = 0;
    while (extra != NULL && extra[n] != NULL)
        n++;
    const char **h = yr_palloc(cx->pool, (n + 2) * sizeof(*h));
    if (h == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncasecmp(extra[i], "anthropic-version:", 18) != 0)
            h[k++] = extra[i];
    if (cx->access_token != NULL) {
        size_t len = strlen(cx->access_token) + sizeof("Authorization: Bearer ");
        char *line = yr_palloc(cx->pool, len);
        if (line == NULL)
            return NULL;
        snprintf(line, len, "Authorization: Bearer %s", cx->access_token);
        h[k++] = line;
    }
    h[k] = NULL;
    return h;
}

static int prepare_method(yr_call_ctx_t *cx, const char *method, const char *const *extra,
                          yr_upstream_req_t *out)
{
    out->url = vertex_url(cx, method);
    if (out->url == NULL)
        return -ENOMEM;
    yr_transport_timeouts(cx->route->provider, out);
    const char *const *h = vertex_extra(cx, extra);
    if (h == NULL)
        return -ENOMEM;
    /* A static token (api_key) is the auth line of the common headers. */
    return yr_transport_common_headers(cx, "Authorization", "Bearer ", h, out);
}

static int vertex_prepare(yr_call_ctx_t *cx, const char *path, const char *const *extra,
                          yr_upstream_req_t *out)
{
    (void)path; /* the dialect's Gemini API or Anthropic path: Vertex has its own */
    return prepare_method(cx, NULL, extra, out);
}

/* Text embeddings are the publisher model's :predict (embeddings.c). */
static int vertex_embed_prepare(yr_call_ctx_t *cx, const char *path, const char *const *extra,
                                yr_upstream_req_t *out)
{
    (void)path;
    return prepare_method(cx, "predict", extra, out);
}

static void vertex_head(yr_call_ctx_t *cx, const yr_upstream_call_t *call, yr_head_info_t *info)
{
    yr_transport_generic_head(cx, call, info);
    if (info->status == 401 && cx->access_token != NULL)
        yr_gcp_token_rejected(cx->gcp_tokens, cx->route->provider->gcp_sa, cx->access_token);
}

const yr_transport_ops_t yr_transport_vertex = {
    .name = "vertex",
    .framing = YR_FRAME_SSE,
    .credentials = vertex_credentials,
    .cancel_credentials = yr_gcp_token_cancel,
    .prepare = vertex_prepare,
    .process_header = vertex_head,
    .classify = yr_gemini_classify,
};

const yr_transport_ops_t yr_transport_vertex_embed = {
    .name = "vertex",
    .framing = YR_FRAME_SSE,
    .credentials = vertex_credentials,
    .cancel_credentials = yr_gcp_token_cancel,
    .prepare = vertex_embed_prepare,
    .process_header = vertex_head,
    .classify = yr_gemini_classify,
};

/* ---- Gemini on Vertex ------------------------------------------------------------------ */

static const yr_gemini_opts_t vertex_gemini_opts = {.role_required = true};

static int vg_pass_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                         yr_upstream_req_t *out, const char **path, const char *const **extra)
{
    return yr_gemini_pass_build_opts(cx, raw, body_buf, out, path, extra, &vertex_gemini_opts);
}

/* The translated build already gives every content a role (gemini.c). */
const yr_dialect_ops_t yr_dialect_vertex_gemini = {
    .name = "vertex-gemini",
    .native_client = YR_DIALECT_GEMINI,
    .needs_tree = true,
    .inline_images = true,
    .build = yr_gemini_build,
    .response = yr_gem_response,
    .event = yr_gem_event,
    .parse_error = yr_gemini_parse_error,
    .pass_build = vg_pass_build,
    .pass_response = yr_gemini_pass_response,
    .pass_event = yr_gemini_pass_event,
};

/* ---- Claude on Vertex ------------------------------------------------------------------ */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int yr_vertex_claude_body(yr_str_t raw, bool count_tokens, yr_buf_t *body_buf, yr_str_t *out)
{
    static const char version[] = "\"anthropic_version\":\"" YR_VERTEX_ANTHROPIC_VERSION "\"";
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, raw.ptr, raw.len, false);
    if (rc < 0 || yr_json_type(&d, 0) != YR_JT_OBJECT) {
        yr_json_free(&d);
        return rc < 0 ? rc : -EINVAL;
    }
    bool has_version = yr_json_get(&d, 0, "anthropic_version") >= 0;
    int mv = count_tokens ? -1 : yr_json_get(&d, 0, "model");
    yr_buf_t b;
    yr_buf_init(&b, body_buf->max);
    *out = raw;
    if (mv >= 0) {
        /* "model": v -> the version member (or nothing, with its comma) */
        size_t ks = d.toks[mv - 1].start - 1; /* the key's opening quote */
        size_t ve = d.toks[mv].end + (d.toks[mv].type == YR_JT_STRING ? 1 : 0);
        if (!has_version) {
            rc = yr_buf_append(&b, raw.ptr, ks);
            if (rc == 0)
                rc = yr_buf_append(&b, version, sizeof(version) - 1);
            if (rc == 0)
                rc = yr_buf_append(&b, raw.ptr + ve, raw.len - ve);
        } else {
            size_t after = ve;
            while (after < raw.len && is_ws(raw.ptr[after]))
                after++;
            if (after < raw.len && raw.ptr[after] == ',') {
                ve = after + 1; /* drop the comma behind it */
            } else {
                while (ks > 0 && raw.ptr[ks - 1] != ',' && raw.ptr[ks - 1] != '{')
                    ks--;
                if (ks > 0 && raw.ptr[ks - 1] == ',')
                    ks--; /* the last member: drop the comma before it */
            }
            rc = yr_buf_append(&b, raw.ptr, ks);
            if (rc == 0)
                rc = yr_buf_append(&b, raw.ptr + ve, raw.len - ve);
        }
    } else if (!has_version) {
        /* count_tokens: keep the model, put the version first */
        size_t brace = d.toks[0].start + 1;
        bool empty = d.toks[0].size == 0;
        rc = yr_buf_append(&b, raw.ptr, brace);
        if (rc == 0)
            rc = yr_buf_append(&b, version, sizeof(version) - 1);
        if (rc == 0 && !empty)
            rc = yr_buf_append(&b, ",", 1);
        if (rc == 0)
            rc = yr_buf_append(&b, raw.ptr + brace, raw.len - brace);
    } else {
        yr_json_free(&d);
        yr_buf_free(&b);
        return 0; /* nothing to change */
    }
    yr_json_free(&d);
    if (rc < 0) {
        yr_buf_free(&b);
        return rc;
    }
    yr_buf_free(body_buf);
    *body_buf = b;
    *out = (yr_str_t){body_buf->data, body_buf->len};
    return 0;
}

static int claude_body(yr_call_ctx_t *cx, int rc, yr_buf_t *body_buf, yr_upstream_req_t *out)
{
    if (rc < 0)
        return rc;
    yr_str_t body;
    rc = yr_vertex_claude_body((yr_str_t){out->body, out->body_len}, cx->count_tokens, body_buf,
                               &body);
    if (rc == -EINVAL) {
        snprintf(cx->error.message, sizeof(cx->error.message), "the request is not a JSON object");
        cx->error.err = YR_E_INVALID_REQUEST;
    }
    if (rc < 0)
        return rc;
    out->body = body.ptr;
    out->body_len = body.len;
    return 0;
}

static int vc_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    return claude_body(cx, yr_dialect_anthropic.build(cx, raw, body_buf, out, path, extra),
                       body_buf, out);
}

static int vc_pass_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                         yr_upstream_req_t *out, const char **path, const char *const **extra)
{
    return claude_body(cx, yr_anth_pass_build(cx, raw, body_buf, out, path, extra),
                       body_buf, out);
}

/* Claude's own errors are Anthropic's; Vertex's (auth, quota, a model not
 * enabled in the project) are google.rpc statuses. */
static void vc_parse_error(yr_str_t body, yr_provider_error_t *out)
{
    yr_anth_parse_error(body, out);
    if (out->type[0] == '\0')
        yr_gemini_parse_error(body, out);
}

const yr_dialect_ops_t yr_dialect_vertex_anthropic = {
    .name = "vertex-anthropic",
    .native_client = YR_DIALECT_ANTHROPIC,
    .hold_first_event = true,
    .needs_tree = true,
    .inline_images = true, /* Claude on Vertex takes no image URLs: base64 only */
    .build = vc_build,
    .response = yr_anth_response,
    .event = yr_anth_event,
    .parse_error = vc_parse_error,
    .pass_build = vc_pass_build,
    .pass_response = yr_anth_pass_response,
    .pass_event = yr_anth_pass_event,
};
