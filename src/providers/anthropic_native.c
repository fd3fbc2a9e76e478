/* Anthropic client -> Anthropic provider: the Messages API passed through.
 * Only "model" is spliced; the client's anthropic-version and anthropic-beta
 * headers are forwarded (the provider's configured version when the client
 * sent none), and responses are validated, then relayed as they are. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/json_tok.h"
#include "providers/anthropic_native.h"
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

int yr_anth_pass_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                       yr_upstream_req_t *out, const char **path, const char *const **extra)
{
    const yr_provider_conf_t *p = cx->route->provider;
    /* The client's model is the gateway's model id; the upstream may call it
     * something else. */
    int rc = yr_provider_splice_model(cx, raw, body_buf, out);
    if (rc < 0)
        return rc;
    *path = cx->count_tokens ? "/v1/messages/count_tokens" : "/v1/messages";
    /* The client's own anthropic-version wins: it knows what it speaks. */
    yr_str_t version = cx->client_version.len ? cx->client_version : yr_str(p->anthropic_version);
    const char **h = yr_palloc(cx->pool, 3 * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    size_t n = 0;
    if ((h[n++] = yr_transport_header(cx->pool, "anthropic-version", version.ptr, version.len)) ==
        NULL)
        return -ENOMEM;
    if (cx->client_beta.len > 0 &&
        (h[n++] = yr_transport_header(cx->pool, "anthropic-beta", cx->client_beta.ptr,
                                      cx->client_beta.len)) == NULL)
        return -ENOMEM;
    h[n] = NULL;
    *extra = h;
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
    if (json_is_integer(cc))
        cx->usage.cache_write_tokens = json_integer_value(cc);
    json_t *split = json_object_get(usage, "cache_creation");
    json_t *h1 = json_object_get(split, "ephemeral_1h_input_tokens");
    if (json_is_integer(h1))
        cx->usage.cache_write_1h_tokens = json_integer_value(h1);
    if (json_is_integer(outp))
        cx->usage.completion_tokens = json_integer_value(outp);
    cx->usage.present = true;
}

int yr_anth_pass_response(yr_call_ctx_t *cx, yr_str_t body)
{
    json_t *root;
    int lrc = yr_json_load(body.ptr, body.len, 0, &root);
    if (lrc < 0)
        return lrc;
    bool ok = json_is_object(root) &&
              (cx->count_tokens ? json_is_integer(json_object_get(root, "input_tokens"))
                                : json_is_array(json_object_get(root, "content")));
    if (ok)
        read_usage(cx, json_object_get(root, "usage"));
    json_decref(root);
    return ok ? 0 : -EINVAL;
}

int yr_anth_pass_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_buf_t *out, bool *done)
{
    json_t *root;
    int lrc = yr_json_load(ev->data.ptr, ev->data.len, 0, &root);
    if (lrc < 0 || !json_is_object(root)) {
        json_decref(root);
        return lrc < 0 ? lrc : -EINVAL;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    yr_str_t name = ev->event.len ? ev->event : yr_str(type ? type : "");
    int rc = 0;
    if (yr_str_eq(name, YR_STR("error"))) {
        json_t *e = json_object_get(root, "error");
        const char *etype = json_string_value(json_object_get(e, "type"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        yr_provider_inband_error(cx, etype, msg ? msg : "error", yr_anthropic_error_status(etype));
        rc = -ECANCELED;
    } else {
        if (yr_str_eq(name, YR_STR("message_start")))
            read_usage(cx, json_object_get(json_object_get(root, "message"), "usage"));
        else if (yr_str_eq(name, YR_STR("message_delta")))
            read_usage(cx, json_object_get(root, "usage"));
        else if (yr_str_eq(name, YR_STR("message_stop")))
            *done = true;
    }
    if (rc < 0)
        goto out;
    /* name may point into root (a message without an event: line): root
     * is released only after it was copied out. */
    rc = yr_buf_append_str(out, YR_STR("event: "));
    if (rc == 0)
        rc = yr_buf_append_str(out, name);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\ndata: "));
    if (rc == 0)
        rc = yr_buf_append_str(out, ev->data);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\n\n"));
out:
    json_decref(root);
    return rc;
}

