/* Bedrock Converse answers -> typed events; errors; the transport
 * (bedrock.h).
 *
 * A Converse answer is one object:
 *   {"output":{"message":{"role":"assistant","content":[blocks]}},
 *    "stopReason":"end_turn","usage":{...},"metrics":{...}}
 * ConverseStream sends the same as eventstream messages (framing.c), each
 * an event whose payload is that event's JSON:
 *   messageStart {role} · contentBlockStart {contentBlockIndex, start:{toolUse}}
 *   · contentBlockDelta {contentBlockIndex, delta:{text | toolUse{input} |
 *   reasoningContent{text | signature | redactedContent}}} · contentBlockStop
 *   · messageStop {stopReason} · metadata {usage, metrics}
 * metadata comes after messageStop and ends the answer. An exception
 * message (throttlingException, modelStreamErrorException, ...) may come
 * at any point after the 200: it becomes an ERROR event and -ECANCELED, so
 * the proxy fails over when nothing reached the client yet and sends an
 * explicit error otherwise; it is never dropped.
 *
 * Tool indexes: Bedrock numbers every content block; the OpenAI index
 * counts tool calls only (st->tool_of_block).
 *
 * State (yr_br_state_t) lives in cx->pool for the attempt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/json_tok.h"
#include "providers/bedrock.h"
#include "providers/sigv4.h"
#include "providers/translate.h"

yr_br_state_t *yr_bedrock_state(yr_call_ctx_t *cx)
{
    if (cx->state == NULL) {
        yr_br_state_t *st = yr_pcalloc(cx->pool, sizeof(yr_br_state_t));
        if (st != NULL)
            st->open_tool = -1;
        cx->state = st;
    }
    return cx->state;
}

typedef struct {
    yr_ev_fn fn;
    void *arg;
} sink_t;

static int emit(const sink_t *k, const yr_event_t *ev)
{
    return k->fn(k->arg, ev);
}

/* ---- usage and stop reasons ----------------------------------------------------------------- */

/* inputTokens leaves out the cache reads and writes (as Anthropic's
 * input_tokens does); prompt_tokens is all three. */
static bool read_usage(const json_t *u, yr_usage_t *out)
{
    if (!json_is_object(u))
        return false;
    int64_t in = yr_tr_int_field(u, "inputTokens"), rd = yr_tr_int_field(u, "cacheReadInputTokens"),
            wr = yr_tr_int_field(u, "cacheWriteInputTokens");
    *out = (yr_usage_t){
        .prompt_tokens = in + rd + wr,
        .completion_tokens = yr_tr_int_field(u, "outputTokens"),
        .cached_tokens = rd,
        .cache_write_tokens = wr,
        .present = true,
    };
    return true;
}

/* stopReason -> OpenAI's finish reason, the one table of this dialect. */
static yr_finish_t finish_of(const char *r)
{
    if (r == NULL)
        return YR_FINISH_STOP;
    if (strcmp(r, "max_tokens") == 0 || strcmp(r, "model_context_window_exceeded") == 0)
        return YR_FINISH_LENGTH;
    if (strcmp(r, "tool_use") == 0)
        return YR_FINISH_TOOL_CALLS;
    if (strcmp(r, "guardrail_intervened") == 0 || strcmp(r, "content_filtered") == 0)
        return YR_FINISH_CONTENT_FILTER;
    return YR_FINISH_STOP; /* end_turn, stop_sequence, and newer reasons */
}

static int emit_start(const sink_t *k, yr_call_ctx_t *cx, yr_br_state_t *st)
{
    st->started = true;
    return emit(k, &(yr_event_t){
                       .type = YR_EV_START,
                       .id = st->request_id[0] ? yr_str(st->request_id) : cx->request_id,
                       .name = yr_str(cx->route ? cx->route->model : ""),
                       .created = (int64_t)time(NULL),
                   });
}

static int emit_end(const sink_t *k, yr_call_ctx_t *cx, yr_br_state_t *st)
{
    st->finished = true;
    int rc = emit(k, &(yr_event_t){.type = YR_EV_FINISH, .finish = finish_of(st->stop_reason)});
    if (rc == 0 && st->usage.present) {
        cx->usage = st->usage;
        rc = emit(k, &(yr_event_t){.type = YR_EV_USAGE, .usage = st->usage});
    }
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_END});
    return rc;
}

/* ---- a whole answer ------------------------------------------------------------------------- */

static int emit_tool(const sink_t *k, yr_br_state_t *st, const json_t *use)
{
    const json_t *input = json_object_get(use, "input");
    bool has_args = json_is_object(input) && json_object_size(input) > 0;
    char *args = has_args ? json_dumps(input, JSON_COMPACT) : NULL;
    if (has_args && args == NULL)
        return -ENOMEM; /* never "{}" in place of the model's arguments */
    uint32_t index = st->tools++;
    int rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_START,
                                   .index = index,
                                   .id = yr_tr_jslice(json_object_get(use, "toolUseId")),
                                   .name = yr_tr_jslice(json_object_get(use, "name"))});
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_ARGS,
                                   .index = index,
                                   .text = args ? yr_str(args) : YR_STR("{}")});
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_END, .index = index});
    free(args);
    return rc;
}

static int emit_reasoning(const sink_t *k, const json_t *rc_block)
{
    const json_t *rt = json_object_get(rc_block, "reasoningText");
    yr_str_t redacted = yr_tr_jslice(json_object_get(rc_block, "redactedContent"));
    if (redacted.len > 0)
        return emit(
            k, &(yr_event_t){.type = YR_EV_REASONING, .signature = redacted, .redacted = true});
    yr_str_t text = yr_tr_jslice(json_object_get(rt, "text"));
    yr_str_t sig = yr_tr_jslice(json_object_get(rt, "signature"));
    if (text.len == 0 && sig.len == 0)
        return 0;
    return emit(k, &(yr_event_t){.type = YR_EV_REASONING, .text = text, .signature = sig});
}

/* Every block checked before anything is emitted: a broken answer fails
 * over instead of reaching the client half-translated. */
static bool valid_answer(const json_t *root)
{
    const json_t *content =
        json_object_get(json_object_get(json_object_get(root, "output"), "message"), "content");
    if (!json_is_array(content))
        return false;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        const json_t *use = json_object_get(b, "toolUse"), *text = json_object_get(b, "text");
        if (!json_is_object(b) || (text != NULL && !json_is_string(text)) ||
            (use != NULL && (!json_is_string(json_object_get(use, "toolUseId")) ||
                             !json_is_string(json_object_get(use, "name")))))
            return false;
    }
    return true;
}

static int br_response(yr_call_ctx_t *cx, yr_str_t body, yr_ev_fn fn, void *arg)
{
    yr_br_state_t *st = yr_bedrock_state(cx);
    if (st == NULL)
        return -ENOMEM;
    json_t *root;
    int lrc = yr_json_load(body.ptr, body.len, 0, &root);
    if (lrc < 0 || !json_is_object(root) || !valid_answer(root)) {
        json_decref(root);
        return lrc < 0 ? lrc : -EINVAL;
    }
    sink_t k = {fn, arg};
    const char *stop = json_string_value(json_object_get(root, "stopReason"));
    snprintf(st->stop_reason, sizeof(st->stop_reason), "%s", stop ? stop : "");
    read_usage(json_object_get(root, "usage"), &st->usage);
    int rc = emit_start(&k, cx, st);
    const json_t *content =
        json_object_get(json_object_get(json_object_get(root, "output"), "message"), "content");
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        if (rc < 0)
            break;
        if (json_object_get(b, "text") != NULL)
            rc = emit(&k, &(yr_event_t){.type = YR_EV_TEXT,
                                        .text = yr_tr_jslice(json_object_get(b, "text"))});
        else if (json_object_get(b, "toolUse") != NULL)
            rc = emit_tool(&k, st, json_object_get(b, "toolUse"));
        else if (json_object_get(b, "reasoningContent") != NULL)
            rc = emit_reasoning(&k, json_object_get(b, "reasoningContent"));
        /* image, document, citations, guardContent...: nothing to show */
    }
    if (rc == 0)
        rc = emit_end(&k, cx, st);
    json_decref(root);
    return rc;
}

/* ---- the stream ----------------------------------------------------------------------------- */

static int block_index(const json_t *root, size_t *out)
{
    json_t *v = json_object_get(root, "contentBlockIndex");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= YR_BR_MAX_BLOCKS)
        return -EINVAL;
    *out = (size_t)json_integer_value(v);
    return 0;
}

/* Ends the open toolUse block ({} when no input was streamed). */
static int close_tool(const sink_t *k, yr_br_state_t *st)
{
    if (st->open_tool < 0)
        return 0;
    uint32_t index = (uint32_t)st->open_tool;
    int rc =
        st->tool_args == 0
            ? emit(k, &(yr_event_t){.type = YR_EV_TOOL_ARGS, .index = index, .text = YR_STR("{}")})
            : 0;
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_END, .index = index});
    st->open_tool = -1;
    return rc;
}

static int on_block_start(const sink_t *k, yr_br_state_t *st, const json_t *root)
{
    size_t bi;
    const json_t *use = json_object_get(json_object_get(root, "start"), "toolUse");
    if (block_index(root, &bi) < 0)
        return -EINVAL;
    if (use == NULL)
        return 0; /* text and reasoning blocks open with their first delta */
    const json_t *id = json_object_get(use, "toolUseId"), *name = json_object_get(use, "name");
    if (!json_is_string(id) || !json_is_string(name) || st->tool_of_block[bi] != 0)
        return -EINVAL;
    int rc = close_tool(k, st);
    if (rc < 0)
        return rc;
    uint32_t index = st->tools++;
    st->tool_of_block[bi] = (uint16_t)(index + 1);
    st->open_tool = (int32_t)index;
    st->tool_args = 0;
    return emit(k, &(yr_event_t){.type = YR_EV_TOOL_START,
                                 .index = index,
                                 .id = yr_tr_jslice(id),
                                 .name = yr_tr_jslice(name)});
}

static int on_block_delta(const sink_t *k, yr_br_state_t *st, const json_t *root)
{
    size_t bi;
    const json_t *d = json_object_get(root, "delta");
    if (block_index(root, &bi) < 0 || !json_is_object(d))
        return -EINVAL;
    const json_t *text = json_object_get(d, "text"), *use = json_object_get(d, "toolUse");
    const json_t *rsn = json_object_get(d, "reasoningContent");
    if (text != NULL) {
        if (!json_is_string(text))
            return -EINVAL;
        yr_str_t t = yr_tr_jslice(text);
        return t.len ? emit(k, &(yr_event_t){.type = YR_EV_TEXT, .text = t}) : 0;
    }
    if (use != NULL) {
        const json_t *in = json_object_get(use, "input");
        if (!json_is_string(in) || st->tool_of_block[bi] == 0)
            return -EINVAL; /* input for a block that is no tool call */
        yr_str_t frag = yr_tr_jslice(in);
        if (frag.len == 0)
            return 0;
        st->tool_args += frag.len;
        return emit(k, &(yr_event_t){.type = YR_EV_TOOL_ARGS,
                                     .index = (uint32_t)st->tool_of_block[bi] - 1,
                                     .text = frag});
    }
    if (rsn != NULL) {
        yr_str_t t = yr_tr_jslice(json_object_get(rsn, "text"));
        yr_str_t sig = yr_tr_jslice(json_object_get(rsn, "signature"));
        yr_str_t red = yr_tr_jslice(json_object_get(rsn, "redactedContent"));
        if (red.len > 0)
            return emit(k,
                        &(yr_event_t){.type = YR_EV_REASONING, .signature = red, .redacted = true});
        if (t.len == 0 && sig.len == 0)
            return 0;
        return emit(k, &(yr_event_t){.type = YR_EV_REASONING, .text = t, .signature = sig});
    }
    return 0; /* citations and future delta kinds */
}

static int on_block_stop(const sink_t *k, yr_br_state_t *st, const json_t *root)
{
    size_t bi;
    if (block_index(root, &bi) < 0)
        return -EINVAL;
    if (st->tool_of_block[bi] != 0 && st->open_tool == (int32_t)st->tool_of_block[bi] - 1)
        return close_tool(k, st);
    return 0;
}

/* An exception (or error) message in the stream (framing.h: its event is
 * "exception:TYPE" or "error:CODE"): explicit, never dropped. */
static int on_exception(const sink_t *k, yr_call_ctx_t *cx, const yr_frame_t *m, bool error)
{
    const char *colon = memchr(m->event.ptr, ':', m->event.len);
    yr_str_t t = {colon + 1, (size_t)(m->event.ptr + m->event.len - colon - 1)};
    char type[64], message[400];
    snprintf(type, sizeof(type), "%.*s", (int)(t.len < 63 ? t.len : 63), t.ptr);
    message[0] = '\0';
    if (error) { /* :error-message is the text itself */
        snprintf(message, sizeof(message), "%.*s", (int)(m->data.len < 399 ? m->data.len : 399),
                 m->data.ptr ? m->data.ptr : "");
    } else {
        json_t *root = NULL;
        if (yr_json_load(m->data.ptr, m->data.len, 0, &root) == -ENOMEM)
            return -ENOMEM;
        const char *msg = json_string_value(json_object_get(root, "message"));
        if (msg == NULL)
            msg = json_string_value(json_object_get(root, "Message"));
        snprintf(message, sizeof(message), "%s", msg ? msg : "");
        json_decref(root);
    }
    yr_provider_inband_error(cx, type[0] ? type : "InternalServerException", message,
                             yr_bedrock_error_status(type));
    snprintf(cx->error_code, sizeof(cx->error_code), "%s", type);
    int rc = emit(k, &(yr_event_t){.type = YR_EV_ERROR,
                                   .status = cx->error_status,
                                   .error_type = yr_str(cx->error_type),
                                   .text = yr_str(cx->error.message)});
    return rc < 0 ? rc : -ECANCELED;
}

static int br_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_ev_fn fn, void *arg, bool *done)
{
    yr_br_state_t *st = yr_bedrock_state(cx);
    if (st == NULL)
        return -ENOMEM;
    sink_t k = {fn, arg};
    if (yr_str_has_prefix(m->event, YR_STR("exception:")))
        return on_exception(&k, cx, m, false);
    if (yr_str_has_prefix(m->event, YR_STR("error:")))
        return on_exception(&k, cx, m, true);
    if (st->finished)
        return 0;
    json_t *root;
    int lrc = yr_json_load(m->data.ptr, m->data.len, 0, &root);
    if (lrc < 0 || !json_is_object(root)) {
        json_decref(root);
        return lrc < 0 ? lrc : -EINVAL;
    }
    yr_str_t t = m->event;
    int rc = 0;
    if (yr_str_eq(t, YR_STR("messageStart"))) {
        rc = st->started ? 0 : emit_start(&k, cx, st);
    } else if (!st->started) {
        rc = -EINVAL; /* the message's events before the message itself */
    } else if (yr_str_eq(t, YR_STR("contentBlockStart"))) {
        rc = on_block_start(&k, st, root);
    } else if (yr_str_eq(t, YR_STR("contentBlockDelta"))) {
        rc = on_block_delta(&k, st, root);
    } else if (yr_str_eq(t, YR_STR("contentBlockStop"))) {
        rc = on_block_stop(&k, st, root);
    } else if (yr_str_eq(t, YR_STR("messageStop"))) {
        const char *r = json_string_value(json_object_get(root, "stopReason"));
        snprintf(st->stop_reason, sizeof(st->stop_reason), "%s", r ? r : "");
        st->stopped = true;
        rc = close_tool(&k, st);
    } else if (yr_str_eq(t, YR_STR("metadata"))) {
        if (read_usage(json_object_get(root, "usage"), &st->usage))
            cx->usage = st->usage;
        if (st->stopped) { /* metadata follows messageStop: the answer is complete */
            rc = emit_end(&k, cx, st);
            if (rc == 0)
                *done = true;
        }
    }
    /* Unknown event types are ignored: Bedrock may add new ones. */
    json_decref(root);
    return rc;
}

/* ---- errors --------------------------------------------------------------------------------- */

static const struct {
    const char *type; /* compared case-insensitively: exceptions in a stream are camelCase */
    int status;
} br_errors[] = {
    {"ThrottlingException", 429},       {"ServiceQuotaExceededException", 429},
    {"ModelNotReadyException", 429},    {"ServiceUnavailableException", 503},
    {"ModelTimeoutException", 408},     {"ValidationException", 400},
    {"AccessDeniedException", 403},     {"UnrecognizedClientException", 403},
    {"InvalidSignatureException", 403}, {"ExpiredTokenException", 403},
    {"ResourceNotFoundException", 404}, {"InternalServerException", 500},
    {"ModelErrorException", 502},       {"ModelStreamErrorException", 502},
};

int yr_bedrock_error_status(const char *type)
{
    for (size_t i = 0; type != NULL && i < sizeof(br_errors) / sizeof(br_errors[0]); i++)
        if (strcasecmp(type, br_errors[i].type) == 0)
            return br_errors[i].status;
    return 500;
}

/* The body says only {"message"} ("Message" from some front ends); the
 * type is in x-amzn-ErrorType (process_header keeps it), or "__type" when
 * a proxy moved it into the body. */
static void br_parse_error(yr_str_t body, yr_provider_error_t *out)
{
    *out = (yr_provider_error_t){.retry_after_ms = -1};
    json_t *root = json_loadb(body.ptr ? body.ptr : "", body.len, 0, NULL);
    const char *m = json_string_value(json_object_get(root, "message"));
    if (m == NULL)
        m = json_string_value(json_object_get(root, "Message"));
    if (m != NULL)
        snprintf(out->message, sizeof(out->message), "%s", m);
    const char *t = json_string_value(json_object_get(root, "__type"));
    if (t != NULL) {
        const char *hash = strrchr(t, '#'); /* "com.amazon...#ValidationException" */
        snprintf(out->type, sizeof(out->type), "%s", hash ? hash + 1 : t);
    }
    json_decref(root);
}

static yr_outcome_t br_classify(int status, const yr_provider_error_t *perr)
{
    const char *t = perr ? perr->type : "";
    if (t[0] == '\0')
        t = perr ? perr->code : "";
    if (strcasecmp(t, "ThrottlingException") == 0 ||
        strcasecmp(t, "ServiceQuotaExceededException") == 0)
        return YR_OUT_RATE_LIMITED;
    if (strcasecmp(t, "ServiceUnavailableException") == 0 ||
        strcasecmp(t, "ModelNotReadyException") == 0)
        return YR_OUT_OVERLOADED;
    if (strcasecmp(t, "ModelTimeoutException") == 0)
        return YR_OUT_TIMEOUT;
    if (strcasecmp(t, "ValidationException") == 0)
        return YR_OUT_CLIENT_ERROR;
    if (strcasecmp(t, "AccessDeniedException") == 0 ||
        strcasecmp(t, "UnrecognizedClientException") == 0 ||
        strcasecmp(t, "InvalidSignatureException") == 0 ||
        strcasecmp(t, "ExpiredTokenException") == 0)
        return YR_OUT_AUTH;
    if (strcasecmp(t, "ModelStreamErrorException") == 0 ||
        strcasecmp(t, "ModelErrorException") == 0 || strcasecmp(t, "InternalServerException") == 0)
        return YR_OUT_SERVER_ERROR;
    return yr_transport_classify_status(status, perr);
}

/* ---- transport ------------------------------------------------------------------------------ */

/* x-amzn-ErrorType ("ThrottlingException:http://internal.amazon.com/...":
 * the part before ':') and x-amzn-RequestId (the response id). */
static void br_process_header(yr_call_ctx_t *cx, const yr_upstream_call_t *call,
                              yr_head_info_t *info)
{
    yr_transport_generic_head(cx, call, info);
    yr_str_t et = yr_upstream_header(call, "x-amzn-errortype");
    const char *colon = et.len ? memchr(et.ptr, ':', et.len) : NULL;
    if (colon != NULL)
        et.len = (size_t)(colon - et.ptr);
    snprintf(info->error_type, sizeof(info->error_type), "%.*s",
             (int)(et.len < sizeof(info->error_type) ? et.len : sizeof(info->error_type) - 1),
             et.ptr ? et.ptr : "");
    yr_br_state_t *st = yr_bedrock_state(cx);
    yr_str_t id = yr_upstream_header(call, "x-amzn-requestid");
    if (st != NULL && id.len > 0 && id.len < sizeof(st->request_id))
        snprintf(st->request_id, sizeof(st->request_id), "%.*s", (int)id.len, id.ptr);
}

/* host[:port] of base_url: what the Host header says and SigV4 signs. */
static yr_str_t url_authority(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    return (yr_str_t){p, n};
}

static int add(yr_call_ctx_t *cx, const char **h, size_t *n, const char *name, yr_str_t v)
{
    h[*n] = yr_transport_header(cx->pool, name, v.ptr, v.len);
    return h[(*n)++] ? 0 : -ENOMEM;
}

/* Signs the call: the headers to sign are Content-Type, Host, X-Amz-Date
 * and X-Amz-Security-Token (temporary credentials). */
static int sign(yr_call_ctx_t *cx, const yr_upstream_req_t *out, yr_str_t host, const char *path,
                const char **h, size_t *n)
{
    const yr_provider_conf_t *p = cx->route->provider;
    char date[17];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    char hash[65];
    yr_sha256_hex(out->body ? out->body : "", out->body_len, hash);
    yr_sigv4_hdr_t sh[4] = {
        {YR_STR("content-type"), YR_STR("application/json")},
        {YR_STR("host"), host},
        {YR_STR("x-amz-date"), yr_str(date)},
    };
    size_t nsh = 3;
    if (p->aws_session_token != NULL)
        sh[nsh++] = (yr_sigv4_hdr_t){YR_STR("x-amz-security-token"), yr_str(p->aws_session_token)};
    yr_sigv4_req_t r = {.method = "POST",
                        .path = yr_str(path),
                        .headers = sh,
                        .nheaders = nsh,
                        .payload_hash = hash};
    yr_sigv4_key_t key = {.access_key = p->aws_access_key_id,
                          .secret_key = p->aws_secret_access_key,
                          .region = p->region ? p->region : "us-east-1",
                          .service = "bedrock",
                          .amz_date = date};
    yr_sigv4_out_t o;
    yr_sigv4_out_init(&o);
    int rc = yr_sigv4_sign(&r, &key, &o);
    if (rc == 0)
        rc = add(cx, h, n, "X-Amz-Date", yr_str(date));
    if (rc == 0 && p->aws_session_token != NULL)
        rc = add(cx, h, n, "X-Amz-Security-Token", yr_str(p->aws_session_token));
    if (rc == 0)
        rc = add(cx, h, n, "Authorization", (yr_str_t){o.authorization.data, o.authorization.len});
    yr_sigv4_out_free(&o);
    return rc;
}

static int br_prepare(yr_call_ctx_t *cx, const char *path, const char *const *extra,
                      yr_upstream_req_t *out)
{
    (void)extra;
    const yr_provider_conf_t *p = cx->route->provider;
    out->url = yr_transport_url(cx->pool, p, path);
    if (out->url == NULL)
        return -ENOMEM;
    yr_transport_timeouts(p, out);
    const char **h = yr_palloc(cx->pool, 9 * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = cx->chat->stream ? "Accept: application/vnd.amazon.eventstream"
                              : "Accept: application/json";
    h[n++] = "User-Agent: yourouter/0.1";
    yr_str_t host = url_authority(p->base_url);
    /* The Host header is set here, not by the HTTP client, so that what is
     * signed is what is sent. */
    int rc = add(cx, h, &n, "Host", host);
    const char *key = yr_route_key(cx->route);
    if (rc == 0 && key != NULL && key[0] != '\0') {
        /* a Bedrock API key: no SigV4 */
        size_t klen = strlen(key);
        char *v = yr_palloc(cx->pool, klen + 8);
        if (v == NULL)
            return -ENOMEM;
        memcpy(v, "Bearer ", 7);
        memcpy(v + 7, key, klen + 1);
        rc = add(cx, h, &n, "Authorization", yr_str(v));
    } else if (rc == 0 && p->aws_access_key_id != NULL && p->aws_secret_access_key != NULL) {
        rc = sign(cx, out, host, path, h, &n);
    } else if (rc == 0) {
        snprintf(cx->error.message, sizeof(cx->error.message),
                 "provider '%s' has no AWS credentials", p->name ? p->name : "bedrock");
        cx->error.err = YR_E_INTERNAL;
        return -EINVAL;
    }
    h[n] = NULL;
    out->headers = h;
    return rc;
}

const yr_transport_ops_t yr_transport_bedrock = {
    .name = "bedrock",
    .framing = YR_FRAME_EVENTSTREAM,
    .prepare = br_prepare,
    .process_header = br_process_header,
    .classify = br_classify,
};

const yr_dialect_ops_t yr_dialect_bedrock = {
    .name = "bedrock",
    .native_client = (yr_dialect_t)-1, /* no client speaks Converse: never passthrough */
    .needs_tree = true,
    .inline_images = true, /* Converse takes image bytes only (or S3 locations) */
    .build = yr_bedrock_build,
    .response = br_response,
    .event = br_event,
    .parse_error = br_parse_error,
};
