/* Google Gemini answers -> typed events; errors; the passthrough trio; the
 * transport (gemini.h).
 *
 * A non-streamed answer and each event of :streamGenerateContent?alt=sse
 * are the same object, a GenerateContentResponse:
 *   {"candidates":[{"content":{"role":"model","parts":[...]},
 *                   "finishReason":"STOP","index":0}],
 *    "promptFeedback":{"blockReason":...},
 *    "usageMetadata":{...}, "modelVersion":..., "responseId":...}
 * so one function decodes both. In a stream usageMetadata is cumulative and
 * repeated on every event (the last one wins, never a sum), parallel calls
 * may come in separate events (each at parts[0]: the OpenAI index is a
 * stream-wide counter), the finishReason may come alone in the last event,
 * and nothing like [DONE] follows: the event with a finishReason (or a
 * blocked prompt) ends the answer.
 *
 * State (gem_state_t) lives in cx->pool for the attempt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/json_tok.h"
#include "providers/gemini.h"
#include "api/json_tok.h"
#include "providers/translate.h"

typedef struct {
    bool started, finished;
    uint32_t tools;  /* calls seen in the whole answer: the next OpenAI index */
    bool blocked;    /* promptFeedback.blockReason */
    char finish[48]; /* the last finishReason seen */
    yr_usage_t usage;
} gem_state_t;

static gem_state_t *state_of(yr_call_ctx_t *cx)
{
    if (cx->state == NULL)
        cx->state = yr_pcalloc(cx->pool, sizeof(gem_state_t));
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

/* ---- usage and finish reasons ------------------------------------------------------------- */

/* promptTokenCount already includes the cached tokens; the answer is the
 * candidates plus the thinking (OpenAI's completion_tokens cover reasoning). */
static bool read_usage(const json_t *um, yr_usage_t *u)
{
    if (!json_is_object(um))
        return false;
    int64_t thoughts = yr_tr_int_field(um, "thoughtsTokenCount");
    *u = (yr_usage_t){
        .prompt_tokens = yr_tr_int_field(um, "promptTokenCount") +
                         yr_tr_int_field(um, "toolUsePromptTokenCount"),
        .completion_tokens = yr_tr_int_field(um, "candidatesTokenCount") + thoughts,
        .cached_tokens = yr_tr_int_field(um, "cachedContentTokenCount"),
        .reasoning_tokens = thoughts,
        .present = true,
    };
    return true;
}

/* finishReason -> OpenAI's, the one table of this dialect. STOP with calls
 * is tool_calls: the calls and the STOP may come in different events. */
static yr_finish_t finish_of(const gem_state_t *st)
{
    static const char *const filtered[] = {
        "SAFETY",      "RECITATION",       "BLOCKLIST",        "PROHIBITED_CONTENT",
        "SPII",        "LANGUAGE",         "IMAGE_SAFETY",     "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION", NULL};
    const char *f = st->finish;
    if (st->blocked)
        return YR_FINISH_CONTENT_FILTER;
    if (strcmp(f, "MAX_TOKENS") == 0)
        return YR_FINISH_LENGTH;
    for (size_t i = 0; filtered[i] != NULL; i++)
        if (strcmp(f, filtered[i]) == 0)
            return YR_FINISH_CONTENT_FILTER;
    /* STOP, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS,
     * OTHER, and newer reasons: the answer ended. */
    return st->tools > 0 ? YR_FINISH_TOOL_CALLS : YR_FINISH_STOP;
}

/* ---- one GenerateContentResponse ------------------------------------------------------------ */

static int emit_start(const sink_t *k, yr_call_ctx_t *cx, gem_state_t *st, const json_t *root)
{
    if (st->started)
        return 0;
    st->started = true;
    yr_str_t id = yr_tr_jslice(json_object_get(root, "responseId"));
    yr_str_t model = yr_tr_jslice(json_object_get(root, "modelVersion"));
    return emit(k, &(yr_event_t){
                       .type = YR_EV_START,
                       .id = id.len ? id : cx->request_id,
                       .name = model.len ? model : yr_str(cx->route ? cx->route->model : ""),
                       .created = (int64_t)time(NULL),
                   });
}

static int emit_call(const sink_t *k, gem_state_t *st, const json_t *part)
{
    const json_t *fc = json_object_get(part, "functionCall");
    const json_t *args = json_object_get(fc, "args");
    char *text = json_is_object(args) ? json_dumps(args, JSON_COMPACT) : NULL;
    if (json_is_object(args) && text == NULL)
        return -ENOMEM; /* never "{}" in place of the model's arguments */
    uint32_t index = st->tools++;
    int rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_START,
                                   .index = index,
                                   .id = yr_tr_jslice(json_object_get(fc, "id")),
                                   .name = yr_tr_jslice(json_object_get(fc, "name")),
                                   .signature = yr_tr_jslice(json_object_get(part, "thoughtSignature"))});
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_ARGS,
                                   .index = index,
                                   .text = text ? yr_str(text) : YR_STR("{}")});
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_END, .index = index});
    free(text);
    return rc;
}

static int emit_part(const sink_t *k, gem_state_t *st, const json_t *part)
{
    if (json_object_get(part, "functionCall") != NULL)
        return emit_call(k, st, part);
    yr_str_t text = yr_tr_jslice(json_object_get(part, "text"));
    if (text.len == 0)
        return 0; /* empty text, a lone signature, inlineData, code parts: nothing to show */
    bool thought = json_is_true(json_object_get(part, "thought"));
    return emit(k, &(yr_event_t){.type = thought ? YR_EV_REASONING : YR_EV_TEXT, .text = text});
}

/* Checks the shapes events are made from, so a broken answer fails over
 * before anything of it reaches the client. */
static bool valid_response(const json_t *root)
{
    if (!json_is_object(root))
        return false;
    const json_t *cands = json_object_get(root, "candidates");
    if (cands != NULL && !json_is_array(cands))
        return false;
    if (cands == NULL && json_object_get(root, "promptFeedback") == NULL &&
        json_object_get(root, "usageMetadata") == NULL)
        return false;
    const json_t *parts = json_object_get(json_object_get(json_array_get(cands, 0), "content"),
                                          "parts");
    if (parts != NULL && !json_is_array(parts))
        return false;
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        const json_t *fc = json_object_get(p, "functionCall");
        if (!json_is_object(p) || (fc != NULL && !json_is_string(json_object_get(fc, "name"))))
            return false;
    }
    return true;
}

static int emit_end(const sink_t *k, yr_call_ctx_t *cx, gem_state_t *st)
{
    st->finished = true;
    int rc = emit(k, &(yr_event_t){.type = YR_EV_FINISH, .finish = finish_of(st)});
    if (rc == 0 && st->usage.present) {
        cx->usage = st->usage;
        rc = emit(k, &(yr_event_t){.type = YR_EV_USAGE, .usage = st->usage});
    }
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_END});
    return rc;
}

static void inband_details(yr_call_ctx_t *cx, const json_t *err);

/* An {"error":{...}} in place of an answer (in a stream). */
static int inband_error(const sink_t *k, yr_call_ctx_t *cx, const json_t *err)
{
    const char *status = json_string_value(json_object_get(err, "status"));
    json_t *code = json_object_get(err, "code");
    int http = json_is_integer(code) && json_integer_value(code) >= 400 &&
                       json_integer_value(code) <= 599
                   ? (int)json_integer_value(code)
                   : yr_gemini_status_http(status);
    yr_provider_inband_error(cx, status ? status : "INTERNAL",
                             json_string_value(json_object_get(err, "message")), http);
    inband_details(cx, err);
    int rc = emit(k, &(yr_event_t){.type = YR_EV_ERROR, .status = cx->error_status,
                                   .error_type = yr_str(cx->error_type),
                                   .text = yr_str(cx->error.message)});
    return rc < 0 ? rc : -ECANCELED;
}

/* One object: its parts as events; *ended once it carried the answer's end. */
static int decode_object(const sink_t *k, yr_call_ctx_t *cx, gem_state_t *st, const json_t *root,
                         bool *ended)
{
    *ended = false;
    const json_t *err = json_object_get(root, "error");
    if (json_is_object(err))
        return inband_error(k, cx, err);
    if (!valid_response(root))
        return -EINVAL;
    int rc = emit_start(k, cx, st, root);
    if (rc < 0)
        return rc;
    if (read_usage(json_object_get(root, "usageMetadata"), &st->usage))
        cx->usage = st->usage;
    const json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
    const json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        if ((rc = emit_part(k, st, p)) < 0)
            return rc;
    }
    const char *fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr != NULL && fr[0] != '\0') {
        snprintf(st->finish, sizeof(st->finish), "%s", fr);
        *ended = true;
    }
    const char *block =
        json_string_value(json_object_get(json_object_get(root, "promptFeedback"), "blockReason"));
    if (cand == NULL && block != NULL) {
        st->blocked = true; /* the prompt was refused: no candidate at all */
        *ended = true;
    }
    return 0;
}

int yr_gem_response(yr_call_ctx_t *cx, yr_str_t body, yr_ev_fn fn, void *arg)
{
    gem_state_t *st = state_of(cx);
    if (st == NULL)
        return -ENOMEM;
    json_t *root;
    int rc = yr_json_load(body.ptr, body.len, 0, &root);
    sink_t k = {fn, arg};
    bool ended;
    if (rc == 0)
        rc = json_is_object(root) && json_object_get(root, "error") == NULL
                 ? decode_object(&k, cx, st, root, &ended)
                 : -EINVAL;
    /* No finishReason in a full answer: it ended all the same. An empty
     * candidate (the budget went to thinking) is a valid answer too. */
    if (rc == 0)
        rc = emit_end(&k, cx, st);
    json_decref(root);
    return rc;
}

int yr_gem_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_ev_fn fn, void *arg, bool *done)
{
    gem_state_t *st = state_of(cx);
    if (st == NULL)
        return -ENOMEM;
    if (st->finished)
        return 0;
    sink_t k = {fn, arg};
    yr_str_t data = yr_str_trim(m->data);
    if (yr_str_eq(data, YR_STR("[DONE]"))) { /* not Gemini's, but harmless */
        int rc = st->started ? emit_end(&k, cx, st) : -EINVAL;
        if (rc == 0)
            *done = true;
        return rc;
    }
    json_t *root;
    int rc = yr_json_load(data.ptr, data.len, 0, &root);
    if (json_is_array(root) && json_array_size(root) == 1) { /* an error wrapped in [...] */
        json_t *inner = json_incref(json_array_get(root, 0));
        json_decref(root);
        root = inner;
    }
    bool ended = false;
    if (rc == 0)
        rc = json_is_object(root) ? decode_object(&k, cx, st, root, &ended) : -EINVAL;
    if (rc == 0 && ended) {
        rc = emit_end(&k, cx, st);
        if (rc == 0)
            *done = true;
    }
    json_decref(root);
    return rc;
}

/* ---- errors -------------------------------------------------------------------------------------- */

static const struct {
    const char *status;
    int http;
} rpc_statuses[] = {
    {"INVALID_ARGUMENT", 400},  {"FAILED_PRECONDITION", 400}, {"OUT_OF_RANGE", 400},
    {"UNAUTHENTICATED", 401},   {"PERMISSION_DENIED", 403},   {"NOT_FOUND", 404},
    {"ABORTED", 409},           {"ALREADY_EXISTS", 409},      {"RESOURCE_EXHAUSTED", 429},
    {"CANCELLED", 499},         {"UNIMPLEMENTED", 501},       {"INTERNAL", 500},
    {"UNKNOWN", 500},           {"DATA_LOSS", 500},           {"UNAVAILABLE", 503},
    {"DEADLINE_EXCEEDED", 504},
};

int yr_gemini_status_http(const char *status)
{
    for (size_t i = 0; status != NULL && i < sizeof(rpc_statuses) / sizeof(rpc_statuses[0]); i++)
        if (strcmp(status, rpc_statuses[i].status) == 0)
            return rpc_statuses[i].http;
    return 500;
}

/* google.protobuf.Duration in JSON: "57s", "1.5s", "0.250s" -> ms; -1. */
static int64_t duration_ms(const char *s)
{
    if (s == NULL)
        return -1;
    int64_t whole = 0, frac = 0, scale = 1000;
    size_t i = 0, n = strlen(s);
    if (n == 0 || n > 24)
        return -1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        whole = whole * 10 + (s[i] - '0');
    if (i == 0)
        return -1;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            if (scale > 1) {
                scale /= 10;
                frac += (s[i] - '0') * scale;
            }
    return i + 1 == n && s[i] == 's' && whole < 100000000 ? whole * 1000 + frac : -1;
}

static bool has_type(const json_t *detail, const char *suffix)
{
    const char *t = json_string_value(json_object_get(detail, "@type"));
    size_t n = t ? strlen(t) : 0, m = strlen(suffix);
    return n >= m && strcmp(t + n - m, suffix) == 0;
}

void yr_gemini_parse_error(yr_str_t body, yr_provider_error_t *out)
{
    *out = (yr_provider_error_t){.retry_after_ms = -1};
    json_t *root = json_loadb(body.ptr ? body.ptr : "", body.len, 0, NULL);
    json_t *obj = json_is_array(root) ? json_array_get(root, 0) : root;
    json_t *e = json_object_get(obj, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    const char *status = json_string_value(json_object_get(e, "status"));
    if (m != NULL)
        snprintf(out->message, sizeof(out->message), "%s", m);
    snprintf(out->type, sizeof(out->type), "%s", status ? status : "");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(e, "details"), i, d)
    {
        if (has_type(d, "google.rpc.RetryInfo")) {
            out->retry_after_ms = duration_ms(json_string_value(json_object_get(d, "retryDelay")));
        } else if (has_type(d, "google.rpc.ErrorInfo") && out->code[0] == '\0') {
            const char *reason = json_string_value(json_object_get(d, "reason"));
            snprintf(out->code, sizeof(out->code), "%s", reason ? reason : "");
        } else if (has_type(d, "google.rpc.QuotaFailure")) {
            size_t j;
            json_t *v;
            json_array_foreach(json_object_get(d, "violations"), j, v)
            {
                const char *qid = json_string_value(json_object_get(v, "quotaId"));
                if (qid != NULL && strstr(qid, "PerDay") != NULL)
                    snprintf(out->code, sizeof(out->code), "quota_exceeded_per_day");
            }
        }
    }
    if (out->code[0] == '\0')
        snprintf(out->code, sizeof(out->code), "%s", out->type);
    json_decref(root);
}

/* The retry hint and code of an in-stream error, as parse_error reads them
 * from an HTTP error body. */
static void inband_details(yr_call_ctx_t *cx, const json_t *err)
{
    json_t *wrap = json_pack("{s:O}", "error", err);
    char *text = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
    json_decref(wrap);
    if (text == NULL)
        return;
    yr_provider_error_t perr;
    yr_gemini_parse_error(yr_str(text), &perr);
    free(text);
    cx->error_retry_after_ms = perr.retry_after_ms > 0 ? perr.retry_after_ms : 0;
    snprintf(cx->error_code, sizeof(cx->error_code), "%s", perr.code);
}

/* Gemini's statuses over the generic table: a per-day quota is spent for
 * the day on this route; an invalid key comes as a 400 with the reason
 * API_KEY_INVALID. */
yr_outcome_t yr_gemini_classify(int status, const yr_provider_error_t *perr)
{
    if (perr != NULL) {
        if (strcmp(perr->code, "quota_exceeded_per_day") == 0)
            return YR_OUT_QUOTA;
        if (strcmp(perr->code, "API_KEY_INVALID") == 0 ||
            strcmp(perr->type, "UNAUTHENTICATED") == 0 ||
            strcmp(perr->type, "PERMISSION_DENIED") == 0)
            return YR_OUT_AUTH;
        if (strcmp(perr->type, "RESOURCE_EXHAUSTED") == 0)
            return YR_OUT_RATE_LIMITED;
        if (strcmp(perr->type, "UNAVAILABLE") == 0)
            return YR_OUT_OVERLOADED;
        if (strcmp(perr->type, "DEADLINE_EXCEEDED") == 0)
            return YR_OUT_TIMEOUT;
        if (strcmp(perr->type, "INTERNAL") == 0)
            return YR_OUT_SERVER_ERROR;
        if (strcmp(perr->type, "INVALID_ARGUMENT") == 0)
            return YR_OUT_CLIENT_ERROR;
    }
    return yr_transport_classify_status(status, perr);
}

/* ---- passthrough ---------------------------------------------------------------------------------- */

/* Whether every element of the body's top-level "contents" has a role
 * (a non-empty string); true when there is nothing to look at. */
static bool roles_present(yr_str_t raw)
{
    yr_jdoc_t d;
    bool ok = true;
    if (yr_json_parse(&d, raw.ptr, raw.len, false) == 0) {
        int contents = yr_json_get(&d, 0, "contents");
        for (uint32_t i = 0; ok && yr_json_type(&d, contents) == YR_JT_ARRAY &&
                             i < d.toks[contents].size;
             i++) {
            int role = yr_json_get(&d, yr_json_at(&d, contents, i), "role");
            ok = yr_json_type(&d, role) == YR_JT_STRING && d.toks[role].end > d.toks[role].start;
        }
    }
    yr_json_free(&d);
    return ok;
}

/* body_buf <- raw with "role":"user" on every content that has none.
 * -EINVAL (cx->error filled) for a body jansson refuses (an integer past
 * int64): it cannot be rewritten. */
static int add_roles(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf)
{
    json_t *root = NULL;
    int rc = yr_json_load(raw.ptr, raw.len, 0, &root);
    if (rc == -EINVAL) {
        snprintf(cx->error.message, sizeof(cx->error.message),
                 "a content without a role could not be given one: the request holds a value "
                 "the gateway cannot re-encode (an integer past 64 bits?)");
        cx->error.param[0] = '\0';
        cx->error.err = YR_E_INVALID_REQUEST;
    }
    json_t *contents = json_object_get(root, "contents");
    size_t i;
    json_t *c;
    json_array_foreach(contents, i, c)
    {
        const char *role = json_string_value(json_object_get(c, "role"));
        if (rc == 0 && json_is_object(c) && (role == NULL || role[0] == '\0'))
            rc = json_object_set_new(c, "role", json_string("user")) == 0 ? 0 : -ENOMEM;
    }
    if (rc == 0)
        rc = yr_tr_dump(root, body_buf);
    json_decref(root);
    return rc;
}

int yr_gemini_pass_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                         yr_upstream_req_t *out, const char **path, const char *const **extra)
{
    return yr_gemini_pass_build_opts(cx, raw, body_buf, out, path, extra,
                                     &(yr_gemini_opts_t){0});
}

int yr_gemini_pass_build_opts(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                              yr_upstream_req_t *out, const char **path,
                              const char *const **extra, const yr_gemini_opts_t *opts)
{
    /* The model is in the path: the body goes as it is (unless a role must
     * be added). */
    out->body = raw.ptr;
    out->body_len = raw.len;
    if (opts->role_required && !roles_present(raw)) {
        int rc = add_roles(cx, raw, body_buf);
        if (rc < 0)
            return rc;
        out->body = body_buf->data;
        out->body_len = body_buf->len;
    }
    const char *method = cx->count_tokens   ? "countTokens"
                         : cx->chat->stream ? "streamGenerateContent?alt=sse"
                                            : "generateContent";
    *path = yr_gemini_path(cx->pool, cx->route->model, method);
    *extra = NULL;
    return *path ? 0 : -ENOMEM;
}

int yr_gemini_pass_response(yr_call_ctx_t *cx, yr_str_t body)
{
    json_t *root;
    int lrc = yr_json_load(body.ptr, body.len, 0, &root);
    if (lrc < 0)
        return lrc;
    bool ok = cx->count_tokens ? json_is_object(root) && json_object_get(root, "error") == NULL
                               : valid_response(root) && json_object_get(root, "error") == NULL;
    if (ok && read_usage(json_object_get(root, "usageMetadata"), &cx->usage) == false &&
        cx->count_tokens) {
        json_t *t = json_object_get(root, "totalTokens");
        if (json_is_integer(t))
            cx->usage = (yr_usage_t){.prompt_tokens = json_integer_value(t), .present = true};
    }
    json_decref(root);
    return ok ? 0 : -EINVAL;
}

int yr_gemini_pass_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_buf_t *out, bool *done)
{
    json_t *root;
    int rc = yr_json_load(m->data.ptr, m->data.len, 0, &root);
    if (rc < 0)
        return rc;
    json_t *obj = json_is_array(root) ? json_array_get(root, 0) : root;
    const json_t *err = json_object_get(obj, "error");
    if (json_is_object(err)) {
        const char *status = json_string_value(json_object_get(err, "status"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        yr_provider_inband_error(cx, status ? status : "INTERNAL", msg ? msg : "error",
                                 yr_gemini_status_http(status));
        inband_details(cx, err);
        rc = -ECANCELED;
    } else if (!valid_response(obj)) {
        rc = -EINVAL;
    } else {
        read_usage(json_object_get(obj, "usageMetadata"), &cx->usage);
        const json_t *cand = json_array_get(json_object_get(obj, "candidates"), 0);
        const char *fr = json_string_value(json_object_get(cand, "finishReason"));
        if ((fr != NULL && fr[0] != '\0') ||
            (cand == NULL && json_object_get(json_object_get(obj, "promptFeedback"), "blockReason")))
            *done = true;
    }
    json_decref(root);
    if (rc < 0)
        return rc;
    rc = yr_buf_append_str(out, YR_STR("data: "));
    if (rc == 0)
        rc = yr_buf_append_str(out, m->data);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\r\n\r\n"));
    return rc;
}

/* ---- transport ------------------------------------------------------------------------------------ */

/* The key goes in x-goog-api-key, never in ?key= (URLs end up in logs). */
static int gem_prepare(yr_call_ctx_t *cx, const char *path, const char *const *extra,
                       yr_upstream_req_t *out)
{
    out->url = yr_transport_url(cx->pool, cx->route->provider, path);
    if (out->url == NULL)
        return -ENOMEM;
    yr_transport_timeouts(cx->route->provider, out);
    return yr_transport_common_headers(cx, "x-goog-api-key", "", extra, out);
}

const yr_transport_ops_t yr_transport_gemini = {
    .name = "gemini",
    .framing = YR_FRAME_SSE,
    .prepare = gem_prepare,
    .process_header = yr_transport_generic_head,
    .classify = yr_gemini_classify,
};

const yr_dialect_ops_t yr_dialect_gemini = {
    .name = "gemini",
    .native_client = YR_DIALECT_GEMINI,
    .needs_tree = true,
    .inline_images = true, /* Gemini takes images inline (or Files API URIs only) */
    .build = yr_gemini_build,
    .response = yr_gem_response,
    .event = yr_gem_event,
    .parse_error = yr_gemini_parse_error,
    .pass_build = yr_gemini_pass_build,
    .pass_response = yr_gemini_pass_response,
    .pass_event = yr_gemini_pass_event,
};
