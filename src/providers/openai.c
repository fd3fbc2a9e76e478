/* OpenAI Chat Completions (and every OpenAI-compatible server). The client
 * already speaks this dialect, so the request is forwarded byte for byte with
 * only "model" rewritten, and responses are validated, not re-encoded. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/json_tok.h"
#include "providers/provider.h"

static int dump_to_buf(const char *p, size_t n, void *arg)
{
    return yr_buf_append(arg, p, n) == 0 ? 0 : -1;
}

static int openai_build_chat(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                             yr_upstream_req_t *out)
{
    const yr_route_conf_t *route = cx->route;
    const yr_chat_req_t *chat = cx->chat;
    yr_pool_t *pool = cx->pool;
    const yr_provider_conf_t *p = route->provider;
    yr_str_t upstream_model = yr_str(route->model);
    if (chat->rewritten) {
        /* The gateway changed the request (inlined images): serialise the
         * tree; the client's bytes no longer say what to send. */
        if (json_object_set_new(chat->root, "model", json_string(route->model)) < 0 ||
            json_dump_callback(chat->root, dump_to_buf, body_buf,
                               JSON_COMPACT | JSON_REAL_PRECISION(15)) < 0)
            return -ENOMEM;
        out->body = body_buf->data;
        out->body_len = body_buf->len;
    } else if (yr_str_eq(upstream_model, chat->model)) {
        out->body = raw.ptr;
        out->body_len = raw.len;
    } else {
        int rc = yr_json_replace_top_string(raw.ptr, raw.len, "model", upstream_model, body_buf);
        if (rc == -ENOENT) {
            /* jansson accepted a key spelled with escapes ("\u006dodel"). */
            snprintf(cx->error.message, sizeof(cx->error.message),
                     "the 'model' key must be written without escape sequences");
            snprintf(cx->error.param, sizeof(cx->error.param), "model");
            cx->error.err = YR_E_INVALID_REQUEST;
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
        out->body = body_buf->data;
        out->body_len = body_buf->len;
    }
    size_t ulen = strlen(p->base_url) + sizeof("/chat/completions");
    char *url = yr_palloc(pool, ulen);
    const char **h = yr_palloc(pool, 5 * sizeof(*h));
    if (url == NULL || h == NULL)
        return -ENOMEM;
    snprintf(url, ulen, "%s/chat/completions", p->base_url);
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = chat->stream ? "Accept: text/event-stream" : "Accept: application/json";
    h[n++] = "User-Agent: yourouter/0.1";
    if (p->api_key != NULL && p->api_key[0] != '\0') {
        size_t alen = strlen(p->api_key) + sizeof("Authorization: Bearer ");
        char *auth = yr_palloc(pool, alen);
        if (auth == NULL)
            return -ENOMEM;
        snprintf(auth, alen, "Authorization: Bearer %s", p->api_key);
        h[n++] = auth;
    }
    h[n] = NULL;
    out->url = url;
    out->headers = h;
    out->connect_timeout_ms = p->connect_timeout_ms;
    out->first_byte_timeout_ms = p->first_byte_timeout_ms;
    out->timeout_ms = p->timeout_ms;
    return 0;
}

/* Validation and usage use the tokenizer, not a DOM: this runs for every
 * response and every streamed chunk. */
static void read_usage(const yr_jdoc_t *d, yr_usage_t *usage)
{
    int u = yr_json_get(d, 0, "usage");
    if (yr_json_type(d, u) != YR_JT_OBJECT)
        return;
    int64_t v;
    if (yr_json_int(d, yr_json_get(d, u, "prompt_tokens"), &v))
        usage->prompt_tokens = v;
    if (yr_json_int(d, yr_json_get(d, u, "completion_tokens"), &v))
        usage->completion_tokens = v;
    if (yr_json_int(d, yr_json_get(d, yr_json_get(d, u, "prompt_tokens_details"), "cached_tokens"),
                    &v))
        usage->cached_tokens = v;
    usage->present = true;
}

static int openai_chat_response(yr_call_ctx_t *cx, yr_str_t body, yr_buf_t *out,
                                yr_str_t *client)
{
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, body.ptr, body.len, false);
    if (rc == 0 && (yr_json_type(&d, 0) != YR_JT_OBJECT ||
                    yr_json_type(&d, yr_json_get(&d, 0, "choices")) != YR_JT_ARRAY))
        rc = -EINVAL;
    if (rc == 0)
        read_usage(&d, &cx->usage);
    yr_json_free(&d);
    if (rc < 0)
        return -EINVAL;
    (void)out;
    *client = body;
    return 0;
}

static int openai_chat_event(yr_call_ctx_t *cx, const yr_sse_event_t *ev, yr_buf_t *out,
                             bool *done)
{
    if (yr_str_eq(ev->data, YR_STR("[DONE]"))) {
        *done = true;
        return yr_buf_append_str(out, YR_STR("data: [DONE]\n\n"));
    }
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, ev->data.ptr, ev->data.len, false);
    if (rc == 0 && yr_json_type(&d, 0) != YR_JT_OBJECT)
        rc = -EINVAL;
    if (rc == 0)
        read_usage(&d, &cx->usage);
    yr_json_free(&d);
    if (rc < 0)
        return -EINVAL;
    rc = yr_buf_append_str(out, YR_STR("data: "));
    if (rc == 0)
        rc = yr_buf_append_str(out, ev->data);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\n\n"));
    return rc;
}

static void copy_str(json_t *v, char *dst, size_t cap)
{
    if (cap == 0)
        return;
    dst[0] = '\0';
    if (json_is_string(v))
        snprintf(dst, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(dst, cap, "%lld", (long long)json_integer_value(v));
}

static void openai_parse_error(yr_str_t body, yr_api_error_t *err, char *type, size_t typelen,
                               char *code, size_t codelen)
{
    json_t *root = json_loadb(body.ptr, body.len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        copy_str(json_object_get(e, "message"), err->message, sizeof(err->message));
        copy_str(json_object_get(e, "param"), err->param, sizeof(err->param));
        copy_str(json_object_get(e, "type"), type, typelen);
        copy_str(json_object_get(e, "code"), code, codelen);
    } else if (json_is_string(e)) {
        copy_str(e, err->message, sizeof(err->message));
    }
    json_decref(root);
}

const yr_provider_ops_t yr_provider_openai = {
    .kind = "openai",
    .build_chat = openai_build_chat,
    .chat_response = openai_chat_response,
    .chat_event = openai_chat_event,
    .parse_error = openai_parse_error,
};
