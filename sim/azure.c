/* The Azure OpenAI dialect: OpenAI's Chat Completions bodies behind Azure's
 * front door. Both API shapes are served:
 *   classic  POST /openai/deployments/{deployment}/chat/completions?api-version=DATE
 *            the model is the deployment from the path;
 *   v1       POST /openai/v1/chat/completions (api-version absent, "preview"
 *            or "latest"); the model is the body's (the deployment name).
 * What Azure adds to OpenAI's answers, and what a gateway must cope with:
 *   - the key in "api-key"; Azure's own 401 bodies {"error":{"code","message"}};
 *   - 404 "Resource not found" when the classic path has no api-version,
 *     400 "API version not supported" for one it does not know;
 *   - content filter results: prompt_filter_results on the answer (and as a
 *     first stream chunk with "choices": [] and empty id/model), per-choice
 *     content_filter_results, an annotation chunk without delta after each
 *     finish, finish_reason "content_filter" for filtered output, and the
 *     400 content_filter error (innererror ResponsibleAIPolicyViolation);
 *   - 429s with retry-after and retry-after-ms.
 * Validation, text, tool calls and token counts are the OpenAI dialect's: its
 * rendering is reused and decorated here (with jansson: this dialect is not
 * the benchmark's hot path). */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define FILTER_DEFAULT "violence" /* the category a bare finish_reason content_filter names */

static const yr_str_t classic_prefix = YR_STR("/openai/deployments/");
static const yr_str_t v1_path = YR_STR("/openai/v1/chat/completions");
static const yr_str_t chat_suffix = YR_STR("/chat/completions");

/* ---- paths and the api-version ---------------------------------------------------------- */

/* The (still escaped) deployment of a classic chat path, or a NULL slice. */
static yr_str_t classic_deployment(yr_str_t path)
{
    if (!yr_str_has_prefix(path, classic_prefix) ||
        path.len < classic_prefix.len + chat_suffix.len + 1 ||
        memcmp(path.ptr + path.len - chat_suffix.len, chat_suffix.ptr, chat_suffix.len) != 0)
        return YR_STR_NULL;
    yr_str_t d = {path.ptr + classic_prefix.len, path.len - classic_prefix.len - chat_suffix.len};
    return memchr(d.ptr, '/', d.len) == NULL ? d : YR_STR_NULL;
}

static sim_route_t az_route(const yr_http_req_t *req)
{
    if (req->method != HTTP_POST)
        return SIM_ROUTE_NONE; /* GET …/models: the OpenAI dialect answers */
    if (yr_str_eq(req->path, v1_path) || classic_deployment(req->path).ptr != NULL)
        return SIM_ROUTE_CHAT;
    return SIM_ROUTE_NONE;
}

/* The value of name in a query string (undecoded); ptr NULL when absent. */
static yr_str_t query_param(yr_str_t q, yr_str_t name)
{
    while (q.len > 0) {
        const char *amp = memchr(q.ptr, '&', q.len);
        yr_str_t kv = {q.ptr, amp ? (size_t)(amp - q.ptr) : q.len};
        if (kv.len > name.len && memcmp(kv.ptr, name.ptr, name.len) == 0 && kv.ptr[name.len] == '=')
            return (yr_str_t){kv.ptr + name.len + 1, kv.len - name.len - 1};
        if (kv.len == name.len && memcmp(kv.ptr, name.ptr, name.len) == 0)
            return (yr_str_t){kv.ptr + kv.len, 0};
        q = amp ? (yr_str_t){amp + 1, q.len - kv.len - 1} : YR_STR_NULL;
    }
    return YR_STR_NULL;
}

static bool digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

/* YYYY-MM-DD or YYYY-MM-DD-preview: the shape of every dated version. */
static bool dated_version(yr_str_t v)
{
    if (v.len != 10 && !(v.len == 18 && memcmp(v.ptr + 10, "-preview", 8) == 0))
        return false;
    return digits(v.ptr, 4) && v.ptr[4] == '-' && digits(v.ptr + 5, 2) && v.ptr[7] == '-' &&
           digits(v.ptr + 8, 2);
}

/* Azure's front-door errors have only a code and a message. */
static void front_door(sim_error_t *err, int status, const char *code, const char *msg)
{
    sim_error_set(err, status, NULL, code, "%s", msg);
}

/* The api-version rules of each shape; 0 or -EINVAL with err filled. */
static int check_version(const yr_http_req_t *req, sim_error_t *err)
{
    yr_str_t v = query_param(req->query, YR_STR("api-version"));
    if (yr_str_has_prefix(req->path, YR_STR("/openai/v1/"))) { /* chat, embeddings */
        if (v.ptr == NULL || yr_str_eq(v, YR_STR("preview")) || yr_str_eq(v, YR_STR("latest")))
            return 0;
    } else {
        if (v.ptr == NULL) {
            /* Azure answers a missing api-version as an unknown resource. */
            front_door(err, 404, "404", "Resource not found");
            return -EINVAL;
        }
        if (dated_version(v))
            return 0;
    }
    front_door(err, 400, "BadRequest", "API version not supported");
    return -EINVAL;
}

/* The api-version first (Azure routes on it), then the key. */
static int az_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    if (check_version(req, err) < 0)
        return -EINVAL;
    if (key.len == 0)
        return 0;
    yr_str_t presented = yr_http_req_header(req, YR_STR("api-key"));
    if (presented.ptr == NULL) {
        if (yr_http_req_header(req, YR_STR("authorization")).ptr != NULL)
            front_door(err, 401, "401",
                       "Unauthorized. Access token is missing, invalid, audience is incorrect "
                       "(https://cognitiveservices.azure.com), or have expired.");
        else
            front_door(err, 401, "401",
                       "Access denied due to missing subscription key. Make sure to include "
                       "subscription key when making requests to an API.");
        return -EACCES;
    }
    if (sim_key_equal(yr_str_trim(presented), key))
        return 0;
    front_door(err, 401, "401",
               "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
               "provide a valid key for an active subscription and use a correct regional API "
               "endpoint for your resource.");
    return -EACCES;
}

/* ---- requests -------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The deployment with %XX escapes resolved, in pool. */
static yr_str_t unescape(yr_pool_t *pool, yr_str_t s)
{
    char *out = yr_palloc(pool, s.len + 1);
    if (out == NULL)
        return YR_STR_NULL;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        int hi = s.ptr[i] == '%' && i + 2 < s.len ? hex_value(s.ptr[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(s.ptr[i + 2]) : -1;
        if (lo >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s.ptr[i];
        }
    }
    out[n] = '\0';
    return (yr_str_t){out, n};
}

/* OpenAI's validation; on the classic path the deployment is the model
 * (the body's model, if any, is ignored as Azure does). */
static int az_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    yr_str_t dep = classic_deployment(x->req->path);
    if (dep.ptr == NULL || !json_is_object(body))
        return sim_dialect_openai.parse(x, body, err);
    dep = unescape(x->pool, dep);
    /* Recordings share the parsed body: give this exchange its own top
     * level (the members stay shared, and the prompt points into them). */
    json_t *own = json_copy(body);
    if (dep.ptr == NULL || own == NULL ||
        json_object_set_new(own, "model", sim_json_string(dep.ptr, dep.len)) < 0) {
        json_decref(own);
        return -ENOMEM;
    }
    json_decref(x->body);
    x->body = own;
    return sim_dialect_openai.parse(x, own, err);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void az_error_defaults(int status, sim_error_t *err)
{
    switch (status) {
    case 401:
        front_door(err, 401, "401",
                   "Access denied due to invalid subscription key or wrong API endpoint. Make "
                   "sure to provide a valid key for an active subscription and use a correct "
                   "regional API endpoint for your resource.");
        break;
    case 404:
        front_door(err, 404, "DeploymentNotFound",
                   "The API deployment for this resource does not exist. If you created the "
                   "deployment within the last 5 minutes, please wait a moment and try again.");
        break;
    case 429:
        front_door(err, 429, "429",
                   "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                   "have exceeded call rate limit of your current OpenAI S0 pricing tier. "
                   "Please retry after the time in the retry-after header.");
        break;
    default: sim_dialect_openai.error_defaults(status, err); break;
    }
}

static void az_filter_error(yr_str_t category, sim_error_t *err)
{
    sim_error_set(err, 400, NULL, "content_filter",
                  "The response was filtered due to the prompt triggering Azure OpenAI's content "
                  "management policy. Please modify your prompt and retry. To learn more about "
                  "our content filtering policies please read our documentation: "
                  "https://go.microsoft.com/fwlink/?linkid=2198766");
    err->param = YR_STR("prompt");
    err->filtered = category;
}

/* {"hate":{"filtered":false,"severity":"safe"},...}, with category flagged.
 * The prompt's results include the jailbreak shield, the output's the
 * protected-material checks. New reference or NULL. */
static json_t *filter_results(bool prompt, yr_str_t category)
{
    static const char *const rated[] = {"hate", "self_harm", "sexual", "violence"};
    json_t *r = json_object();
    for (size_t i = 0; r != NULL && i < sizeof(rated) / sizeof(rated[0]); i++) {
        bool hit = yr_str_eq(category, yr_str(rated[i]));
        json_object_set_new(
            r, rated[i],
            json_pack("{s:b, s:s}", "filtered", hit, "severity", hit ? "medium" : "safe"));
    }
    const char *const detected[] = {prompt ? "jailbreak" : "protected_material_code",
                                    prompt ? NULL : "protected_material_text"};
    for (size_t i = 0; r != NULL && i < 2 && detected[i] != NULL; i++) {
        bool hit = yr_str_eq(category, yr_str(detected[i]));
        json_object_set_new(r, detected[i],
                            json_pack("{s:b, s:b}", "filtered", hit, "detected", hit));
    }
    return r;
}

static int dump_into(json_t *v, yr_buf_t *out)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = s != NULL ? yr_buf_append_str(out, yr_str(s)) : -ENOMEM;
    free(s);
    return rc;
}

static int az_render_error(const sim_error_t *err, yr_buf_t *b)
{
    if (yr_str_eq(err->code, YR_STR("content_filter"))) {
        yr_str_t cat = err->filtered.ptr ? err->filtered : YR_STR(FILTER_DEFAULT);
        json_t *e = json_pack(
            "{s:{s:s%, s:n, s:s%, s:s, s:i, s:{s:s, s:o}}}", "error", "message", err->message.ptr,
            err->message.len, "type", "param", err->param.ptr ? err->param.ptr : "prompt",
            err->param.ptr ? err->param.len : 6, "code", "content_filter", "status", err->status,
            "innererror", "code", "ResponsibleAIPolicyViolation", "content_filter_result",
            filter_results(true, cat));
        int rc = e != NULL ? dump_into(e, b) : -ENOMEM;
        json_decref(e);
        return rc;
    }
    if (err->type.ptr != NULL || err->param.ptr != NULL)
        return sim_dialect_openai.render_error(err, b); /* the model's own validation */
    int rc = yr_buf_append_str(b, YR_STR("{\"error\":{\"code\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->code.ptr ? err->code : YR_STR(""));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"message\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->message);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* The category that filtered the output, or a NULL slice. */
static yr_str_t output_filtered(const sim_exchange_t *x)
{
    if (!yr_str_eq(x->reply.finish_override, YR_STR("content_filter")))
        return YR_STR_NULL;
    return x->beh.content_filter.ptr ? x->beh.content_filter : YR_STR(FILTER_DEFAULT);
}

static json_t *prompt_filter_results(void)
{
    return json_pack("[{s:i, s:o}]", "prompt_index", 0, "content_filter_results",
                     filter_results(true, YR_STR_NULL));
}

/* OpenAI's rendering in `from` (a JSON object), decorated and dumped to out. */
typedef int (*decorate_fn)(sim_exchange_t *x, json_t *v);

static int redo(sim_exchange_t *x, yr_str_t from, decorate_fn fn, yr_buf_t *out)
{
    json_t *v = json_loadb(from.ptr, from.len, 0, NULL);
    int rc = v != NULL ? fn(x, v) : -ENOMEM;
    if (rc == 0)
        rc = dump_into(v, out);
    json_decref(v);
    return rc;
}

static int decorate_answer(sim_exchange_t *x, json_t *v)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(v, "choices"), i, c)
    {
        json_object_set_new(c, "content_filter_results", filter_results(false, output_filtered(x)));
    }
    return json_object_set_new(v, "prompt_filter_results", prompt_filter_results());
}

static int az_render(sim_exchange_t *x, yr_buf_t *b)
{
    yr_buf_t tmp;
    yr_buf_init(&tmp, SIM_MAX_RESPONSE);
    int rc = sim_dialect_openai.render(x, &tmp);
    if (rc == 0)
        rc = redo(x, (yr_str_t){tmp.data, tmp.len}, decorate_answer, b);
    yr_buf_free(&tmp);
    return rc;
}

/* ---- streaming ------------------------------------------------------------------------------ */

/* x->dstate is Azure's; the OpenAI dialect's own state (which its
 * stream_next finds in x->dstate) is swapped in around each of its calls. */
typedef struct {
    void *oai;
    bool prompt_sent;
    bool annotation_due; /* after a finish: one annotation chunk */
    size_t annotation_index;
    size_t content_len; /* bytes streamed, for the annotation's offsets */
} az_stream_t;

static az_stream_t *az_state(sim_exchange_t *x)
{
    return x->dstate;
}

/* The OpenAI dialect's next event, rendered into out. */
static int oai_next(sim_exchange_t *x, az_stream_t *st, yr_buf_t *out)
{
    if (st->oai == NULL &&
        (st->oai = yr_pcalloc(x->pool, sim_dialect_openai.stream_state_size)) == NULL)
        return -ENOMEM;
    x->dstate = st->oai;
    int rc = sim_dialect_openai.stream_next(x, out);
    x->dstate = st;
    return rc;
}

static int decorate_chunk(sim_exchange_t *x, json_t *v)
{
    az_stream_t *st = az_state(x);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(v, "choices"), i, c)
    {
        json_t *delta = json_object_get(c, "delta");
        const char *text = json_string_value(json_object_get(delta, "content"));
        const char *finish = json_string_value(json_object_get(c, "finish_reason"));
        /* Only chunks with content were rated; the others carry {}. */
        json_t *cfr = text != NULL && text[0] != '\0' ? filter_results(false, YR_STR_NULL)
                      : finish != NULL && output_filtered(x).ptr != NULL
                          ? filter_results(false, output_filtered(x))
                          : json_object();
        json_object_set_new(c, "content_filter_results", cfr);
        st->content_len += text != NULL ? strlen(text) : 0;
        if (finish != NULL) {
            st->annotation_due = true;
            st->annotation_index = (size_t)json_integer_value(json_object_get(c, "index"));
        }
    }
    return 0;
}

static int sse_json(yr_buf_t *out, json_t *v)
{
    int rc = v != NULL ? yr_buf_append_str(out, YR_STR("data: ")) : -ENOMEM;
    if (rc == 0)
        rc = dump_into(v, out);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\n\n"));
    json_decref(v);
    return rc;
}

/* The asynchronous filter's verdict on what was streamed: no delta. */
static int annotation_chunk(sim_exchange_t *x, az_stream_t *st, yr_buf_t *out)
{
    st->annotation_due = false;
    json_int_t end = (json_int_t)st->content_len;
    json_t *v = json_pack(
        "{s:s, s:s, s:I, s:s%, s:[{s:I, s:n, s:o, s:{s:I, s:i, s:I}}]}", "id", x->id, "object",
        "chat.completion.chunk", "created", (json_int_t)x->created, "model", x->prompt.model.ptr,
        x->prompt.model.len, "choices", "index", (json_int_t)st->annotation_index, "finish_reason",
        "content_filter_results", filter_results(false, output_filtered(x)),
        "content_filter_offsets", "check_offset", end, "start_offset", 0, "end_offset", end);
    return sse_json(out, v);
}

/* A scripted stream_error: Azure (like OpenAI) puts an error object where
 * a chunk would be, then ends the stream without [DONE]. */
static int error_event(sim_exchange_t *x, yr_buf_t *out)
{
    const sim_behaviour_t *b = &x->beh;
    bool server = yr_str_eq(b->stream_error, YR_STR("server_error"));
    yr_str_t msg = b->error_message.ptr ? b->error_message
                   : server ? YR_STR("The server had an error while processing your request. "
                                     "Sorry about that!")
                            : YR_STR("An error occurred while streaming the response.");
    json_t *v = json_pack("{s:{s:s%, s:s%, s:n, s:n}}", "error", "message", msg.ptr, msg.len,
                          "type", b->stream_error.ptr, b->stream_error.len, "param", "code");
    return sse_json(out, v);
}

static int az_stream_next(sim_exchange_t *x, yr_buf_t *out)
{
    az_stream_t *st = az_state(x);
    const sim_behaviour_t *b = &x->beh;
    if (b->stream_error.len > 0 &&
        x->events >= (uint64_t)(b->stream_error_after >= 0 ? b->stream_error_after : 1))
        return error_event(x, out) < 0 ? -ENOMEM : SIM_EVENT_LAST;
    if (!st->prompt_sent) {
        st->prompt_sent = true;
        json_t *v =
            json_pack("{s:[], s:i, s:s, s:s, s:s, s:o}", "choices", "created", 0, "id", "", "model",
                      "", "object", "", "prompt_filter_results", prompt_filter_results());
        return sse_json(out, v) < 0 ? -ENOMEM : SIM_EVENT;
    }
    if (st->annotation_due)
        return annotation_chunk(x, st, out) < 0 ? -ENOMEM : SIM_EVENT;
    yr_buf_t tmp;
    yr_buf_init(&tmp, SIM_MAX_RESPONSE);
    int rc = oai_next(x, st, &tmp);
    yr_str_t data = {tmp.data, tmp.len};
    bool chunk = rc == SIM_EVENT && yr_str_has_prefix(data, YR_STR("data: {")) &&
                 memmem(data.ptr, data.len, "\"choices\":[]", 12) == NULL;
    if (chunk) {
        int r2 = yr_buf_append_str(out, YR_STR("data: "));
        if (r2 == 0)
            r2 = redo(x, (yr_str_t){data.ptr + 6, data.len - 8}, decorate_chunk, out);
        if (r2 == 0)
            r2 = yr_buf_append_str(out, YR_STR("\n\n"));
        rc = r2 < 0 ? -ENOMEM : rc;
    } else if (rc > 0 && yr_buf_append(out, data.ptr, data.len) < 0) {
        rc = -ENOMEM; /* [DONE] and the usage chunk go as OpenAI sends them */
    }
    yr_buf_free(&tmp);
    return rc;
}

static size_t az_stream_events(const sim_exchange_t *x)
{
    /* The prompt's chunk, and one annotation per choice. */
    return sim_dialect_openai.stream_events(x) + 1 + x->prompt.n;
}

/* ---- the table ------------------------------------------------------------------------------- */

const sim_dialect_t sim_dialect_azure = {
    .name = "azure",
    .route = az_route,
    .check_auth = az_check_auth,
    .parse = az_parse,
    .error_defaults = az_error_defaults,
    .render_error = az_render_error,
    .render = az_render,
    .stream_state_size = sizeof(az_stream_t),
    .stream_next = az_stream_next,
    .stream_events = az_stream_events,
    .stream_content_type = YR_STR("text/event-stream; charset=utf-8"),
    .malformed_event = YR_STR("data: {not json\n\n"),
    .render_models = NULL,
    .filter_error = az_filter_error,
    .retry_after_ms = true,
};
