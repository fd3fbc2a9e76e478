/* Azure OpenAI: the OpenAI wire format over Azure's transport.
 *
 * Azure serves the same Chat Completions bodies as OpenAI; what differs is
 * how it is reached and a few stream habits:
 *   - two URL shapes. The v1 API (api_version "v1", the default):
 *       POST {base_url}/openai/v1/chat/completions, the deployment in the
 *       body's "model";
 *     the classic API (api_version a date such as 2024-10-21[-preview]):
 *       POST {base_url}/openai/deployments/{deployment}/chat/completions
 *            ?api-version={api_version}.
 *     The route's upstream model is the deployment name in both.
 *   - the key goes in "api-key: KEY", never in Authorization (a Bearer
 *     token there is read as an Entra ID token and refused);
 *   - rate-limit hints: retry-after and retry-after-ms, and
 *     x-ratelimit-remaining-requests / -tokens;
 *   - the content filter: a 400 with code content_filter (innererror code
 *     ResponsibleAIPolicyViolation) for a filtered prompt, finish_reason
 *     content_filter for filtered output, and stream chunks that carry only
 *     filter annotations (see yr_azure_stream_chunk).
 *
 * Kind azure = yr_dialect_azure (OpenAI's, with Azure's error shapes and
 * stream quirks) over yr_transport_azure. */
#include "providers/azure.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/json_tok.h"
#include "providers/openai.h"
#include "providers/openai_decode.h"
#include "providers/provider.h"

/* ---- the transport ---------------------------------------------------------------- */

static bool is_v1(const yr_provider_conf_t *p)
{
    return p->api_version == NULL || strcmp(p->api_version, "v1") == 0;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *yr_azure_url(yr_pool_t *pool, const yr_provider_conf_t *p, const char *deployment,
                   const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    yr_buf_t b;
    yr_buf_init(&b, 3 * 4096);
    int rc = yr_buf_append_str(&b, yr_str(p->base_url));
    if (rc == 0 && is_v1(p)) {
        rc = yr_buf_append_str(&b, YR_STR("/openai/v1"));
        if (rc == 0)
            rc = yr_buf_append_str(&b, yr_str(path));
    } else if (rc == 0) {
        /* The deployment is one path segment: escape what could end it. */
        rc = yr_buf_append_str(&b, YR_STR("/openai/deployments/"));
        const unsigned char *c = (const unsigned char *)(deployment ? deployment : "");
        for (; rc == 0 && *c; c++) {
            char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            rc = unreserved(*c) ? yr_buf_append(&b, (const char *)c, 1) : yr_buf_append(&b, esc, 3);
        }
        if (rc == 0)
            rc = yr_buf_printf(&b, "%s?api-version=%s", path, p->api_version);
    }
    char *url = rc == 0 ? yr_pstrndup(pool, b.data, b.len) : NULL;
    yr_buf_free(&b);
    return url;
}

static int azure_prepare(struct yr_call_ctx *cx, const char *path, const char *const *extra,
                         yr_upstream_req_t *out)
{
    const yr_provider_conf_t *p = cx->route->provider;
    size_t nextra = 0;
    while (extra != NULL && extra[nextra] != NULL)
        nextra++;
    const char **h = yr_palloc(cx->pool, (5 + nextra) * sizeof(*h));
    out->url = yr_azure_url(cx->pool, p, cx->route->model, path);
    if (out->url == NULL || h == NULL)
        return -ENOMEM;
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = cx->chat->stream ? "Accept: text/event-stream" : "Accept: application/json";
    h[n++] = "User-Agent: yourouter/0.1";
    const char *key = yr_route_key(cx->route);
    if (key != NULL && key[0] != '\0' &&
        (h[n++] = yr_transport_header(cx->pool, "api-key", key, strlen(key))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nextra; i++)
        h[n++] = extra[i];
    h[n] = NULL;
    out->headers = h;
    yr_transport_timeouts(p, out);
    return 0;
}

/* A header count ("4999"); -1 when absent or not a number. */
static int64_t count_of(yr_str_t v)
{
    uint64_t n;
    v = yr_str_trim(v);
    if (v.len == 0 || yr_str_to_u64(v, INT64_MAX, &n) < 0)
        return -1;
    return (int64_t)n;
}

void yr_azure_head_info(int status, yr_header_fn header, void *arg, int64_t now_unix,
                        yr_head_info_t *info)
{
    *info = (yr_head_info_t){
        .status = status,
        .retry_after_ms =
            yr_retry_after_ms(header(arg, "retry-after"), header(arg, "retry-after-ms"), now_unix),
        .remaining_requests = count_of(header(arg, "x-ratelimit-remaining-requests")),
        .remaining_tokens = count_of(header(arg, "x-ratelimit-remaining-tokens")),
        .reset_requests_ms = -1, /* Azure announces no reset times */
        .reset_tokens_ms = -1,
    };
}

static yr_str_t call_header(void *arg, const char *name)
{
    return yr_upstream_header(arg, name);
}

static void azure_process_header(struct yr_call_ctx *cx, const yr_upstream_call_t *call,
                                 yr_head_info_t *info)
{
    (void)cx;
    yr_azure_head_info(yr_upstream_status(call), call_header, (void *)call, (int64_t)time(NULL),
                       info);
}

static yr_outcome_t azure_classify(int status, const yr_provider_error_t *perr)
{
    /* A filtered prompt fails the same way on every deployment that shares
     * the filter policy: the client must change the request. */
    if (perr != NULL && (strcmp(perr->code, "content_filter") == 0 ||
                         strcmp(perr->code, "ResponsibleAIPolicyViolation") == 0))
        return YR_OUT_CLIENT_ERROR;
    return yr_transport_classify_status(status, perr);
}

const yr_transport_ops_t yr_transport_azure = {
    .name = "azure",
    .framing = YR_FRAME_SSE,
    .prepare = azure_prepare,
    .process_header = azure_process_header,
    .classify = azure_classify,
};

/* ---- error bodies ---------------------------------------------------------------------- */

/* OpenAI's error shape, plus what Azure adds: the filter named only in
 * innererror, and the API Management front door's {"statusCode","message"}. */
void yr_azure_parse_error(yr_str_t body, yr_provider_error_t *out)
{
    yr_openai_parse_error(body, out);
    json_t *root = json_loadb(body.ptr ? body.ptr : "", body.len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        json_t *inner = json_object_get(json_object_get(e, "innererror"), "code");
        if (out->code[0] == '\0' && json_is_string(inner) &&
            strcmp(json_string_value(inner), "ResponsibleAIPolicyViolation") == 0)
            snprintf(out->code, sizeof(out->code), "content_filter");
    } else if (json_is_object(root)) {
        json_t *m = json_object_get(root, "message"), *sc = json_object_get(root, "statusCode");
        if (json_is_string(m))
            snprintf(out->message, sizeof(out->message), "%s", json_string_value(m));
        if (json_is_integer(sc))
            snprintf(out->code, sizeof(out->code), "%lld", (long long)json_integer_value(sc));
        else if (json_is_string(sc))
            snprintf(out->code, sizeof(out->code), "%s", json_string_value(sc));
    }
    json_decref(root);
}

/* ---- stream chunks ------------------------------------------------------------------- */

/* Where a choice without "delta" gets one: right after its '{'. */
static int put_deltas(yr_str_t data, const yr_jdoc_t *d, int choices, yr_buf_t *scratch)
{
    size_t from = 0;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < d->toks[choices].size; i++) {
        int c = yr_json_at(d, choices, i);
        if (yr_json_type(d, c) != YR_JT_OBJECT || yr_json_get(d, c, "delta") >= 0)
            continue;
        size_t at = d->toks[c].start + 1;
        rc = yr_buf_append(scratch, data.ptr + from, at - from);
        if (rc == 0)
            rc = d->toks[c].size > 0 ? yr_buf_append_str(scratch, YR_STR("\"delta\":{},"))
                                     : yr_buf_append_str(scratch, YR_STR("\"delta\":{}"));
        from = at;
    }
    if (rc == 0)
        rc = yr_buf_append(scratch, data.ptr + from, data.len - from);
    return rc;
}

int yr_azure_stream_chunk(yr_str_t data, yr_buf_t *scratch, yr_str_t *out)
{
    *out = data;
    if (yr_str_eq(data, YR_STR("[DONE]")))
        return 0;
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, data.ptr, data.len, false);
    if (rc == 0 && yr_json_type(&d, 0) != YR_JT_OBJECT)
        rc = -EINVAL;
    int choices = rc == 0 ? yr_json_get(&d, 0, "choices") : -1;
    if (rc == 0 && choices < 0 && yr_json_type(&d, yr_json_get(&d, 0, "error")) == YR_JT_OBJECT)
        rc = -ECANCELED; /* {"error":{...}} in place of a chunk */
    if (rc < 0 || yr_json_type(&d, choices) != YR_JT_ARRAY) {
        yr_json_free(&d);
        return rc == -ENOMEM || rc == -ECANCELED ? rc : rc < 0 ? -EINVAL : 0;
    }
    bool usage = yr_json_type(&d, yr_json_get(&d, 0, "usage")) == YR_JT_OBJECT;
    bool carries = false, missing = false;
    for (uint32_t i = 0; i < d.toks[choices].size; i++) {
        int c = yr_json_at(&d, choices, i);
        if (yr_json_type(&d, c) != YR_JT_OBJECT)
            continue;
        bool delta = yr_json_get(&d, c, "delta") >= 0;
        bool finish = yr_json_type(&d, yr_json_get(&d, c, "finish_reason")) == YR_JT_STRING;
        missing = missing || !delta;
        carries = carries || delta || finish;
    }
    if (!carries && !usage) {
        /* The prompt's filter results (choices: [], id: "") or an output
         * annotation (content_filter_results and no delta): nothing for the
         * client, and a choices[0] it would index into is not there. */
        *out = (yr_str_t){data.ptr, 0};
    } else if (missing) {
        yr_buf_reset(scratch);
        rc = put_deltas(data, &d, choices, scratch);
        if (rc == 0)
            *out = (yr_str_t){scratch->data, scratch->len};
    }
    yr_json_free(&d);
    return rc;
}

/* ---- the dialect: OpenAI's, with Azure's error shapes and stream quirks ---------------
 * Azure speaks OpenAI's wire format with a few additions (filter results,
 * a content filter error). An OpenAI client on an Azure route still gets a
 * passthrough, but of OpenAI-shaped chunks: many clients index choices[0]
 * of every chunk, which Azure's filter chunks do not have. Translated
 * clients go through the OpenAI decoder, which tolerates the quirks. */

#define AZURE_MAX_CHUNK (4u << 20) /* one rewritten stream chunk */

/* The HTTP status an error event stands for: Azure's numeric codes ("429"),
 * the filter's 400, else a server error. */
static int event_status(const yr_provider_error_t *e)
{
    uint64_t n;
    if (yr_str_to_u64(yr_str(e->code), 599, &n) == 0 && n >= 400)
        return (int)n;
    if (strcmp(e->code, "content_filter") == 0 || strcmp(e->type, "invalid_request_error") == 0)
        return 400;
    if (strcmp(e->code, "rate_limit_exceeded") == 0)
        return 429;
    return 500;
}

/* An error event mid-stream: like an HTTP error of its status before the
 * first byte (the proxy may fail over), an SSE error after it. */
static int stream_error(yr_call_ctx_t *cx, yr_str_t data)
{
    yr_provider_error_t e;
    yr_azure_parse_error(data, &e);
    yr_provider_inband_error(cx, e.type[0] ? e.type : e.code,
                             e.message[0] ? e.message : "error event", event_status(&e));
    snprintf(cx->error.param, sizeof(cx->error.param), "%s", e.param);
    return -ECANCELED;
}

static int azure_pass_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_buf_t *out, bool *done)
{
    yr_buf_t fixed;
    yr_buf_init(&fixed, AZURE_MAX_CHUNK);
    yr_str_t data;
    int rc = yr_azure_stream_chunk(ev->data, &fixed, &data);
    if (rc == -ECANCELED)
        rc = stream_error(cx, ev->data);
    if (rc == 0 && data.len > 0) {
        yr_frame_t e = *ev;
        e.data = data;
        rc = yr_openai_pass_event(cx, &e, out, done);
    }
    yr_buf_free(&fixed);
    return rc;
}

const yr_dialect_ops_t yr_dialect_azure = {
    .name = "azure-openai",
    .native_client = YR_DIALECT_OPENAI,
    .build = yr_openai_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_azure_parse_error,
    .pass_build = yr_openai_build,
    .pass_response = yr_openai_pass_response,
    .pass_event = azure_pass_event,
    .pass_marks_content = true,
};
