/* The OpenAI Responses dialect, passthrough only: a Responses client on a
 * provider whose upstream speaks /v1/responses (yr_provider_responses_native)
 * gets its request sent up with only "model" spliced (or, with
 * previous_response_id, the conversation the gateway stored inlined), and
 * the response object or its typed SSE events validated and relayed as they
 * are. Usage comes from the response (response.completed in a stream); the
 * final response object is kept for the gateway's store, so a later
 * previous_response_id works on any route. docs/responses.md. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "providers/openai.h"
#include "providers/openai_decode.h"
#include "providers/openai_responses.h"
#include "providers/provider.h"

typedef struct {
    int64_t seq;     /* the last sequence_number relayed */
    json_t *created; /* response.created's response (for response.failed); owned */
    char *final;     /* the response as it ended (pool) */
} rpass_t;

static void on_state_cleanup(void *arg)
{
    rpass_t *st = arg;
    json_decref(st->created);
    st->created = NULL;
}

static rpass_t *state_of(yr_call_ctx_t *cx)
{
    if (cx->state == NULL) {
        rpass_t *st = yr_pcalloc(cx->pool, sizeof(*st));
        if (st == NULL || yr_pool_cleanup_add(cx->pool, on_state_cleanup, st) < 0)
            return NULL;
        st->seq = -1;
        cx->state = st;
    }
    return cx->state;
}

static int rp_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    *path = "/responses";
    *extra = NULL;
    if (state_of(cx) == NULL)
        return -ENOMEM;
    if (yr_str_eq(yr_str(cx->route->model), cx->chat->model)) {
        out->body = raw.ptr;
        out->body_len = raw.len;
        return 0;
    }
    return yr_provider_splice_model(cx, raw, body_buf, out);
}

static int64_t int_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* usage of a response object: input_tokens (cached ones included, as
 * OpenAI counts), output_tokens (reasoning included). */
static void read_usage(yr_call_ctx_t *cx, json_t *resp)
{
    json_t *u = json_object_get(resp, "usage");
    if (!json_is_object(u))
        return;
    cx->usage = (yr_usage_t){
        .prompt_tokens = int_at(u, "input_tokens", NULL),
        .completion_tokens = int_at(u, "output_tokens", NULL),
        .cached_tokens = int_at(u, "input_tokens_details", "cached_tokens"),
        .reasoning_tokens = int_at(u, "output_tokens_details", "reasoning_tokens"),
        .present = true,
    };
}

static int keep_final(yr_call_ctx_t *cx, json_t *resp)
{
    rpass_t *st = state_of(cx);
    char *s = json_dumps(resp, JSON_COMPACT);
    if (st == NULL || s == NULL) {
        free(s);
        return -ENOMEM;
    }
    size_t n = strlen(s);
    st->final = yr_palloc(cx->pool, n + 1);
    if (st->final != NULL)
        memcpy(st->final, s, n + 1);
    free(s);
    return st->final != NULL ? 0 : -ENOMEM;
}

static bool is_response(json_t *r)
{
    return json_is_object(r) && json_is_string(json_object_get(r, "id")) &&
           json_is_array(json_object_get(r, "output"));
}

static int rp_response(yr_call_ctx_t *cx, yr_str_t body)
{
    json_t *r = json_loadb(body.ptr, body.len, JSON_REJECT_DUPLICATES, NULL);
    int rc = is_response(r) ? 0 : -EINVAL;
    if (rc == 0) {
        read_usage(cx, r);
        rc = keep_final(cx, r);
    }
    json_decref(r);
    return rc;
}

/* The status an in-band failure stands for, by its code. */
static int failure_status(const char *code)
{
    if (code == NULL)
        return 500;
    if (strcmp(code, "rate_limit_exceeded") == 0)
        return 429;
    if (strcmp(code, "server_is_overloaded") == 0 || strcmp(code, "slow_down") == 0)
        return 503;
    if (strncmp(code, "invalid", 7) == 0 || strcmp(code, "context_length_exceeded") == 0)
        return 400;
    return 500;
}

/* An `error` event or response.failed before the client saw content: a
 * provider failure that fails over. */
static int inband(yr_call_ctx_t *cx, json_t *err)
{
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    yr_provider_inband_error(cx, code, msg ? msg : "the response failed", failure_status(code));
    snprintf(cx->error_code, sizeof(cx->error_code), "%s", code ? code : "");
    return -ECANCELED;
}

static int relay(yr_buf_t *out, const char *type, yr_str_t data)
{
    return yr_buf_printf(out, "event: %s\ndata: %.*s\n\n", type, (int)data.len, data.ptr);
}

static int rp_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_buf_t *out, bool *done)
{
    rpass_t *st = state_of(cx);
    if (st == NULL)
        return -ENOMEM;
    if (yr_str_eq(m->data, YR_STR("[DONE]")))
        return 0; /* not sent by OpenAI here; harmless if a proxy adds it */
    json_t *ev = json_loadb(m->data.ptr, m->data.len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || type == NULL || strlen(type) > 128) {
        json_decref(ev);
        return -EINVAL;
    }
    json_t *seq = json_object_get(ev, "sequence_number");
    if (json_is_integer(seq) && json_integer_value(seq) > st->seq)
        st->seq = json_integer_value(seq);
    json_t *resp = json_object_get(ev, "response");
    int rc = 0;
    bool opening = strcmp(type, "response.created") == 0 ||
                   strcmp(type, "response.in_progress") == 0 ||
                   strcmp(type, "response.queued") == 0;
    if (strcmp(type, "error") == 0 || strcmp(type, "response.failed") == 0) {
        json_t *err = strcmp(type, "error") == 0 ? ev : json_object_get(resp, "error");
        if (!cx->content_seen) {
            rc = inband(cx, err);
            json_decref(ev);
            return rc;
        }
        *done = true; /* after content: the client gets the failure as it came */
    } else if (strcmp(type, "response.completed") == 0 ||
               strcmp(type, "response.incomplete") == 0) {
        if (!is_response(resp)) {
            json_decref(ev);
            return -EINVAL;
        }
        read_usage(cx, resp);
        rc = keep_final(cx, resp);
        *done = true;
        cx->content_seen = true;
    } else if (strcmp(type, "response.created") == 0 && json_is_object(resp)) {
        json_decref(st->created);
        st->created = json_incref(resp);
    } else if (!opening) {
        cx->content_seen = true;
    }
    if (rc == 0)
        rc = relay(out, type, m->data);
    json_decref(ev);
    return rc;
}

int yr_oai_resp_pass_failed(yr_call_ctx_t *cx, const char *code, yr_str_t message, yr_buf_t *out)
{
    rpass_t *st = state_of(cx);
    if (st == NULL)
        return -ENOMEM;
    json_t *r = st->created != NULL ? json_deep_copy(st->created)
                                    : json_pack("{s:s, s:s, s:[]}", "id", "resp_failed", "object",
                                                "response", "output");
    if (r == NULL)
        return -ENOMEM;
    json_object_set_new(r, "status", json_string("failed"));
    json_object_set_new(
        r, "error", json_pack("{s:s, s:s%}", "code", code, "message", message.ptr, message.len));
    json_t *ev = json_pack("{s:s, s:I, s:o}", "type", "response.failed", "sequence_number",
                           (json_int_t)(st->seq + 1), "response", r);
    char *s = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    int rc = s != NULL ? relay(out, "response.failed", yr_str(s)) : -ENOMEM;
    free(s);
    return rc;
}

const char *yr_oai_resp_pass_final(const yr_call_ctx_t *cx)
{
    const rpass_t *st = cx->state;
    return st != NULL ? st->final : NULL;
}

const yr_dialect_ops_t yr_dialect_openai_responses = {
    .name = "openai-responses",
    .native_client = YR_DIALECT_RESPONSES,
    /* never translated: Responses clients only, always passed through */
    .build = yr_openai_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_openai_parse_error,
    .pass_build = rp_build,
    .pass_response = rp_response,
    .pass_event = rp_event,
    .pass_marks_content = true,
};
