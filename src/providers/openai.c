/* The OpenAI Chat Completions dialect (OpenAI, Azure and every compatible
 * server). An OpenAI client's request is forwarded byte for byte with only
 * "model" rewritten, and the answer is validated, not re-encoded (the hot
 * path). For other clients the answer is decoded into events
 * (openai_decode.c) and encoded in the client's format. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/json_tok.h"
#include "providers/openai.h"
#include "providers/openai_decode.h"
#include "providers/provider.h"

static int dump_to_buf(const char *p, size_t n, void *arg)
{
    return yr_buf_append(arg, p, n) == 0 ? 0 : -1;
}

/* The request: the client's bytes (an OpenAI client), or the OpenAI request
 * an Anthropic client's was converted to. Either way only "model" changes,
 * unless the gateway rewrote the tree (inlined images). */
int yr_openai_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    const yr_route_conf_t *route = cx->route;
    const yr_chat_req_t *chat = cx->chat;
    yr_str_t upstream_model = yr_str(route->model);
    *path = "/chat/completions";
    *extra = NULL;
    if (chat->rewritten) {
        /* The gateway changed the request (inlined images): serialise the
         * tree; the client's bytes no longer say what to send. */
        if (json_object_set_new(chat->root, "model", json_string(route->model)) < 0 ||
            json_dump_callback(chat->root, dump_to_buf, body_buf,
                               JSON_COMPACT | JSON_REAL_PRECISION(15)) < 0)
            return -ENOMEM;
        out->body = body_buf->data;
        out->body_len = body_buf->len;
        return 0;
    }
    if (yr_str_eq(upstream_model, chat->model)) {
        out->body = raw.ptr;
        out->body_len = raw.len;
        return 0;
    }
    return yr_provider_splice_model(cx, raw, body_buf, out);
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

/* Validates a JSON object (with an array "choices" when need_choices) and
 * records its usage. 0 or -EINVAL. */
static int check_object(yr_call_ctx_t *cx, yr_str_t text, bool need_choices)
{
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, text.ptr, text.len, false);
    if (rc == 0 && (yr_json_type(&d, 0) != YR_JT_OBJECT ||
                    (need_choices &&
                     yr_json_type(&d, yr_json_get(&d, 0, "choices")) != YR_JT_ARRAY)))
        rc = -EINVAL;
    if (rc == 0)
        read_usage(&d, &cx->usage);
    yr_json_free(&d);
    return rc < 0 ? -EINVAL : 0;
}

int yr_openai_pass_response(yr_call_ctx_t *cx, yr_str_t body)
{
    return check_object(cx, body, true) < 0 ? -EINVAL : 0;
}

/* Whether a (valid) chunk has "usage" followed by an object, not null. A
 * string value containing the word only costs a needless parse. */
static bool has_usage_object(yr_str_t s)
{
    const char *end = s.ptr + s.len, *p = s.ptr;
    while ((p = memmem(p, (size_t)(end - p), "\"usage\"", 7)) != NULL) {
        p += 7;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p < end && *p == '{')
            return true;
    }
    return false;
}

/* The HTTP status an in-band error stands for: a numeric code, else its
 * type (as the decoder reads it, openai_decode.c). */
static int inband_status(const yr_provider_error_t *e)
{
    uint64_t n;
    if (yr_str_to_u64(yr_str(e->code), 599, &n) == 0 && n >= 400)
        return (int)n;
    if (strstr(e->type, "rate_limit") != NULL || strcmp(e->code, "rate_limit_exceeded") == 0)
        return 429;
    if (strstr(e->type, "overloaded") != NULL)
        return 529;
    if (strcmp(e->type, "invalid_request_error") == 0)
        return 400;
    return 500;
}

/* Whether a string token holds more than "" (null and absent do not). */
static bool nonempty_str(const yr_jdoc_t *d, int tok)
{
    return tok >= 0 && yr_json_type(d, tok) == YR_JT_STRING && d->toks[tok].end > d->toks[tok].start;
}

/* Whether a chunk carries something the client must see as an answer:
 * text, reasoning, a refusal, a tool call or a finish. The opening chunk
 * (role, content "") and usage-only chunks do not. */
static bool chunk_has_content(const yr_jdoc_t *d)
{
    int choices = yr_json_get(d, 0, "choices");
    if (choices < 0 || yr_json_type(d, choices) != YR_JT_ARRAY)
        return false;
    for (uint32_t i = 0; i < d->toks[choices].size; i++) {
        int ch = yr_json_at(d, choices, i);
        int fin = yr_json_get(d, ch, "finish_reason");
        if (fin >= 0 && yr_json_type(d, fin) != YR_JT_NULL)
            return true;
        int delta = yr_json_get(d, ch, "delta");
        if (delta < 0 || yr_json_type(d, delta) != YR_JT_OBJECT)
            continue;
        int calls = yr_json_get(d, delta, "tool_calls");
        if (nonempty_str(d, yr_json_get(d, delta, "content")) ||
            nonempty_str(d, yr_json_get(d, delta, "refusal")) ||
            nonempty_str(d, yr_json_get(d, delta, "reasoning_content")) ||
            nonempty_str(d, yr_json_get(d, delta, "reasoning")) ||
            (calls >= 0 && yr_json_type(d, calls) == YR_JT_ARRAY && d->toks[calls].size > 0))
            return true;
    }
    return false;
}

int yr_openai_pass_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_buf_t *out, bool *done)
{
    if (yr_str_eq(ev->data, YR_STR("[DONE]"))) {
        *done = true;
        return yr_buf_append_str(out, YR_STR("data: [DONE]\n\n"));
    }
    /* Chunks are relayed as they are: validate without tokens, and read
     * the usage only from the chunk that carries one ("usage": null is on
     * every chunk when include_usage is set). */
    yr_str_t t = yr_str_trim(ev->data);
    if (t.len == 0 || t.ptr[0] != '{' || yr_json_validate(ev->data.ptr, ev->data.len) < 0)
        return -EINVAL;
    /* Tokens only for the first chunks (until one has content, which
     * commits the stream) and for a chunk that may be an error. */
    bool maybe_error = memmem(ev->data.ptr, ev->data.len, "\"error\"", 7) != NULL;
    if (!cx->content_seen || maybe_error) {
        yr_jdoc_t d;
        int rc = yr_json_parse(&d, ev->data.ptr, ev->data.len, false);
        bool inband = rc == 0 && yr_json_get(&d, 0, "error") >= 0 &&
                      yr_json_get(&d, 0, "choices") < 0;
        if (rc == 0 && !inband && !cx->content_seen)
            cx->content_seen = chunk_has_content(&d);
        yr_json_free(&d);
        if (rc < 0)
            return rc == -ENOMEM ? rc : -EINVAL;
        if (inband) {
            /* {"error": {...}} instead of a chunk (vLLM, proxies, OpenAI
             * itself on overload): a provider failure, never relayed as an
             * answer. Before the client saw content it fails over. */
            yr_provider_error_t e;
            yr_openai_parse_error(ev->data, &e);
            yr_provider_inband_error(cx, e.type[0] ? e.type : e.code,
                                     e.message[0] ? e.message : "error event", inband_status(&e));
            snprintf(cx->error.param, sizeof(cx->error.param), "%s", e.param);
            snprintf(cx->error_code, sizeof(cx->error_code), "%s", e.code);
            return -ECANCELED;
        }
    }
    /* Usage comes only when asked for (stream_options.include_usage). */
    if (cx->chat->include_usage && has_usage_object(ev->data) &&
        check_object(cx, ev->data, false) < 0)
        return -EINVAL;
    int rc = yr_buf_append_str(out, YR_STR("data: "));
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

void yr_openai_parse_error(yr_str_t body, yr_provider_error_t *out)
{
    *out = (yr_provider_error_t){.retry_after_ms = -1};
    json_t *root = json_loadb(body.ptr ? body.ptr : "", body.len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        copy_str(json_object_get(e, "message"), out->message, sizeof(out->message));
        copy_str(json_object_get(e, "param"), out->param, sizeof(out->param));
        copy_str(json_object_get(e, "type"), out->type, sizeof(out->type));
        copy_str(json_object_get(e, "code"), out->code, sizeof(out->code));
    } else if (json_is_string(e)) {
        copy_str(e, out->message, sizeof(out->message));
    }
    json_decref(root);
}

const yr_dialect_ops_t yr_dialect_openai = {
    .name = "openai",
    .native_client = YR_DIALECT_OPENAI,
    .build = yr_openai_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_openai_parse_error,
    .pass_build = yr_openai_build,
    .pass_response = yr_openai_pass_response,
    .pass_event = yr_openai_pass_event,
    .pass_marks_content = true,
};
