/* Anthropic client -> Anthropic provider: the Messages API passed through.
 * Only "model" is spliced; the client's anthropic-version and anthropic-beta
 * headers are forwarded (the provider's configured version when the client
 * sent none), and responses are validated, then relayed as they are. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "providers/provider.h"

static const struct {
    const char *type;
    int status;
} error_statuses[] = {
    {"invalid_request_error", 400}, {"authentication_error", 401},
    {"billing_error", 402},         {"permission_error", 403},
    {"not_found_error", 404},       {"request_too_large", 413},
    {"rate_limit_error", 429},      {"api_error", 500},
    {"timeout_error", 504},         {"overloaded_error", 529},
};

int yr_anthropic_error_status(const char *type)
{
    for (size_t i = 0; type != NULL && i < sizeof(error_statuses) / sizeof(error_statuses[0]);
         i++)
        if (strcmp(type, error_statuses[i].type) == 0)
            return error_statuses[i].status;
    return 500;
}

static int native_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                        yr_upstream_req_t *out)
{
    const yr_provider_conf_t *p = cx->route->provider;
    /* The client's model is the gateway's model id; the upstream may call it
     * something else. */
    int rc = yr_provider_splice_model(cx, raw, body_buf, out);
    if (rc < 0)
        return rc;
    out->url = yr_provider_url(cx->pool, p, cx->count_tokens ? "/v1/messages/count_tokens"
                                                              : "/v1/messages");
    const char **h = yr_palloc(cx->pool, 7 * sizeof(*h));
    if (out->url == NULL || h == NULL)
        return -ENOMEM;
    yr_str_t version = cx->client_version.len ? cx->client_version : yr_str(p->anthropic_version);
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = cx->chat->stream ? "Accept: text/event-stream" : "Accept: application/json";
    h[n++] = yr_provider_header(cx->pool, "anthropic-version", version.ptr, version.len);
    if (cx->client_beta.len > 0)
        h[n++] = yr_provider_header(cx->pool, "anthropic-beta", cx->client_beta.ptr,
                                    cx->client_beta.len);
    if (p->api_key != NULL && p->api_key[0] != '\0')
        h[n++] = yr_provider_header(cx->pool, "x-api-key", p->api_key, strlen(p->api_key));
    h[n] = NULL;
    for (size_t i = 0; i < n; i++)
        if (h[i] == NULL)
            return -ENOMEM;
    out->headers = h;
    yr_provider_timeouts(p, out);
    return 0;
}

static void read_usage(yr_call_ctx_t *cx, json_t *usage)
{
    if (!json_is_object(usage))
        return;
    json_t *in = json_object_get(usage, "input_tokens");
    json_t *outp = json_object_get(usage, "output_tokens");
    json_t *cr = json_object_get(usage, "cache_read_input_tokens");
    json_t *cc = json_object_get(usage, "cache_creation_input_tokens");
    if (json_is_integer(in))
        cx->usage.prompt_tokens = json_integer_value(in) + json_integer_value(cr) +
                                  json_integer_value(cc);
    if (json_is_integer(cr))
        cx->usage.cached_tokens = json_integer_value(cr);
    if (json_is_integer(outp))
        cx->usage.completion_tokens = json_integer_value(outp);
    cx->usage.present = true;
}

static int native_response(yr_call_ctx_t *cx, yr_str_t body)
{
    json_t *root = json_loadb(body.ptr, body.len, 0, NULL);
    bool ok = json_is_object(root) &&
              (cx->count_tokens ? json_is_integer(json_object_get(root, "input_tokens"))
                                : json_is_array(json_object_get(root, "content")));
    if (ok)
        read_usage(cx, json_object_get(root, "usage"));
    json_decref(root);
    return ok ? 0 : -EINVAL;
}

static int native_event(yr_call_ctx_t *cx, const yr_sse_event_t *ev, yr_buf_t *out, bool *done)
{
    json_t *root = json_loadb(ev->data.ptr, ev->data.len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    yr_str_t name = ev->event.len ? ev->event : yr_str(type ? type : "");
    int rc = 0;
    if (yr_str_eq(name, YR_STR("error"))) {
        json_t *e = json_object_get(root, "error");
        const char *etype = json_string_value(json_object_get(e, "type"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        snprintf(cx->error.message, sizeof(cx->error.message), "%s", msg ? msg : "error");
        snprintf(cx->error_type, sizeof(cx->error_type), "%s", etype ? etype : "api_error");
        cx->error_status = yr_anthropic_error_status(etype);
        bool retryable;
        cx->error.err = yr_err_from_upstream_status(cx->error_status, &retryable);
        rc = -ECANCELED;
    } else {
        if (yr_str_eq(name, YR_STR("message_start")))
            read_usage(cx, json_object_get(json_object_get(root, "message"), "usage"));
        else if (yr_str_eq(name, YR_STR("message_delta")))
            read_usage(cx, json_object_get(root, "usage"));
        else if (yr_str_eq(name, YR_STR("message_stop")))
            *done = true;
    }
    json_decref(root);
    if (rc < 0)
        return rc;
    rc = yr_buf_append_str(out, YR_STR("event: "));
    if (rc == 0)
        rc = yr_buf_append_str(out, name);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\ndata: "));
    if (rc == 0)
        rc = yr_buf_append_str(out, ev->data);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\n\n"));
    return rc;
}

static const yr_native_ops_t anthropic_native = {
    .build = native_build,
    .response = native_response,
    .event = native_event,
};

const yr_native_ops_t *yr_native_ops(yr_provider_kind_t k, yr_dialect_t d)
{
    if (k == YR_KIND_ANTHROPIC && d == YR_DIALECT_ANTHROPIC)
        return &anthropic_native;
    return NULL;
}
