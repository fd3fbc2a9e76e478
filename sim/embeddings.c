/* Embeddings: OpenAI's POST <anything>/embeddings (Azure's deployments and
 * v1 paths end the same way) and Gemini's models/{m}:batchEmbedContents and
 * :embedContent. The vectors are derived from the input, so a test can
 * check order and dimensions: component 0 is the input's length (bytes of
 * a string, or the number of tokens of a token array), the others a hash
 * of it in [0, 1). Default 16 dimensions; `dimensions` (OpenAI) or
 * `outputDimensionality` (Gemini) set it. OpenAI's encoding_format base64
 * is little-endian float32, as the API sends it. Vertex AI's
 * publishers/google/models/{m}:predict (instances/predictions, with a
 * token_count per input) is here too, routed and authed by vertex.c.
 * docs/sim.md. */
#include <errno.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define DEFAULT_DIMS 16
#define MAX_DIMS 4096
#define MAX_INPUTS 2048

static bool has_suffix(yr_str_t s, yr_str_t suffix)
{
    return s.len >= suffix.len && memcmp(s.ptr + s.len - suffix.len, suffix.ptr, suffix.len) == 0;
}

static bool is_azure(const yr_http_req_t *req)
{
    return yr_str_has_prefix(req->path, YR_STR("/openai/"));
}

static sim_route_t oe_route(const yr_http_req_t *req)
{
    return req->method == HTTP_POST && has_suffix(req->path, YR_STR("/embeddings"))
               ? SIM_ROUTE_CHAT
               : SIM_ROUTE_NONE;
}

static sim_route_t ge_route(const yr_http_req_t *req)
{
    return req->method == HTTP_POST && (has_suffix(req->path, YR_STR(":batchEmbedContents")) ||
                                        has_suffix(req->path, YR_STR(":embedContent")))
               ? SIM_ROUTE_CHAT
               : SIM_ROUTE_NONE;
}

static int oe_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    return is_azure(req) ? sim_dialect_azure.check_auth(req, key, err)
                         : sim_oai_check_auth(req, key, err);
}

static uint64_t fnv1a(const char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* One vector of dims components for an input of length len hashing to h. */
static void vector(float *v, size_t dims, size_t len, uint64_t h)
{
    v[0] = (float)len;
    for (size_t j = 1; j < dims; j++) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        v[j] = (float)((h >> 40) & 0xffff) / 65536.0f;
    }
}

/* The inputs of a request, as (len, hash). */
typedef struct {
    size_t n, dims;
    size_t *len;
    uint64_t *hash;
    uint64_t tokens;
    bool base64;
} emb_req_t;

static int with_param(sim_error_t *err, const char *param)
{
    if (param != NULL)
        sim_error_param(err, "%s", param);
    return -EINVAL;
}

/* A 400 in OpenAI's shape (sim_error_set checks the format). */
#define bad(err, param, ...)                                                                       \
    (sim_error_set((err), 400, "invalid_request_error", NULL, __VA_ARGS__),                        \
     with_param((err), (param)))

static emb_req_t *req_of(sim_exchange_t *x, size_t n)
{
    emb_req_t *r = yr_pcalloc(x->pool, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->n = n;
    r->len = yr_pcalloc(x->pool, (n ? n : 1) * sizeof(*r->len));
    r->hash = yr_pcalloc(x->pool, (n ? n : 1) * sizeof(*r->hash));
    x->dstate = r; /* non-streamed: the dialect's own use of the slot */
    return r->len && r->hash ? r : NULL;
}

/* A string or an array of token ids -> one input. */
static int one_input(emb_req_t *r, size_t i, const json_t *v, sim_error_t *err)
{
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return bad(err, "input",
                       "'$.input' is invalid. Please check the API reference: "
                       "https://platform.openai.com/docs/api-reference.%s",
                       "");
        r->len[i] = json_string_length(v);
        r->hash[i] = fnv1a(json_string_value(v), json_string_length(v), 0xcbf29ce484222325ull);
        r->tokens += (r->len[i] + 3) / 4;
        return 0;
    }
    if (json_is_array(v) && json_array_size(v) > 0) {
        uint64_t h = 0xcbf29ce484222325ull;
        size_t k;
        const json_t *t;
        json_array_foreach(v, k, t)
        {
            if (!json_is_integer(t))
                return bad(err, "input", "'$.input' is invalid: token ids must be integers.%s", "");
            char b[24];
            int m = snprintf(b, sizeof(b), "%lld,", (long long)json_integer_value(t));
            h = fnv1a(b, (size_t)m, h);
        }
        r->len[i] = json_array_size(v);
        r->hash[i] = h;
        r->tokens += r->len[i];
        return 0;
    }
    return bad(err, "input",
               "'$.input' is invalid. Please check the API reference: "
               "https://platform.openai.com/docs/api-reference.%s",
               "");
}

static int oe_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    memset(p, 0, sizeof(*p));
    p->n = 1;
    if (!json_is_object(body))
        return bad(err, NULL, "We could not parse the JSON body of your request.%s", "");
    const json_t *model = json_object_get(body, "model");
    if (!json_is_string(model) && !is_azure(x->req))
        return bad(err, "model", "you must provide a model parameter%s", "");
    if (json_is_string(model))
        p->model = (yr_str_t){json_string_value(model), json_string_length(model)};
    const json_t *in = json_object_get(body, "input");
    /* a string, an array of strings, an array of tokens, an array of arrays of tokens */
    bool list =
        json_is_array(in) && json_array_size(in) > 0 && !json_is_integer(json_array_get(in, 0));
    size_t n = list ? json_array_size(in) : 1;
    if (in == NULL || n > MAX_INPUTS)
        return bad(err, "input", "'input' is required and takes at most 2048 items.%s", "");
    emb_req_t *r = req_of(x, n);
    if (r == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = one_input(r, i, list ? json_array_get(in, i) : in, err);
        if (rc < 0)
            return rc;
    }
    const json_t *dims = json_object_get(body, "dimensions");
    r->dims = DEFAULT_DIMS;
    if (dims != NULL) {
        if (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
            json_integer_value(dims) > MAX_DIMS)
            return bad(err, "dimensions",
                       "Invalid 'dimensions': expected an integer from 1 to "
                       "4096.%s",
                       "");
        r->dims = (size_t)json_integer_value(dims);
    }
    const char *fmt = json_string_value(json_object_get(body, "encoding_format"));
    if (fmt != NULL && strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0)
        return bad(err, "encoding_format",
                   "Invalid value: '%s'. Supported values are: 'float' "
                   "and 'base64'.",
                   fmt);
    r->base64 = fmt != NULL && strcmp(fmt, "base64") == 0;
    p->prompt_bytes = r->tokens * 4;
    return 0;
}

static int append_floats(yr_buf_t *b, const float *v, size_t dims)
{
    int rc = yr_buf_append(b, "[", 1);
    for (size_t j = 0; rc == 0 && j < dims; j++)
        rc = yr_buf_printf(b, "%s%.9g", j ? "," : "", (double)v[j]);
    return rc == 0 ? yr_buf_append(b, "]", 1) : rc;
}

static int append_base64(yr_buf_t *b, const float *v, size_t dims)
{
    unsigned char raw[MAX_DIMS * 4];
    for (size_t j = 0; j < dims; j++) {
        uint32_t u;
        memcpy(&u, &v[j], 4);
        for (int k = 0; k < 4; k++)
            raw[j * 4 + (size_t)k] = (unsigned char)(u >> (8 * k)); /* little-endian */
    }
    char out[MAX_DIMS * 4 / 3 * 4 + 8];
    int n = EVP_EncodeBlock((unsigned char *)out, raw, (int)(dims * 4));
    int rc = yr_buf_append(b, "\"", 1);
    if (rc == 0)
        rc = yr_buf_append(b, out, (size_t)n);
    return rc == 0 ? yr_buf_append(b, "\"", 1) : rc;
}

static int oe_render(sim_exchange_t *x, yr_buf_t *b)
{
    const emb_req_t *r = x->dstate;
    float v[MAX_DIMS];
    int rc = yr_buf_append_str(b, YR_STR("{\"object\":\"list\",\"data\":["));
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        vector(v, r->dims, r->len[i], r->hash[i]);
        rc = yr_buf_printf(
            b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (rc == 0)
            rc = r->base64 ? append_base64(b, v, r->dims) : append_floats(b, v, r->dims);
        if (rc == 0)
            rc = yr_buf_append(b, "}", 1);
    }
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("],\"model\":"));
    if (rc == 0)
        rc =
            yr_buf_append_json_str(b, x->prompt.model.ptr ? x->prompt.model : YR_STR("deployment"));
    if (rc == 0)
        rc = yr_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}",
                           (unsigned long long)r->tokens, (unsigned long long)r->tokens);
    return rc;
}

/* ---- Gemini ------------------------------------------------------------------- */

/* A 400 in Gemini's shape. */
#define gbad(err, ...) (sim_error_set((err), 400, "INVALID_ARGUMENT", NULL, __VA_ARGS__), -EINVAL)

/* "models/{m}" of the path. */
static yr_str_t path_model(const yr_http_req_t *req)
{
    yr_str_t p = req->path;
    const char *m = memmem(p.ptr, p.len, "models/", 7);
    const char *colon = m ? memchr(m, ':', (size_t)(p.ptr + p.len - m)) : NULL;
    return m && colon ? (yr_str_t){m, (size_t)(colon - m)} : YR_STR_NULL;
}

static int content_input(emb_req_t *r, size_t i, const json_t *req, yr_str_t model,
                         sim_error_t *err)
{
    const json_t *m = json_object_get(req, "model");
    if (model.len > 0 && json_is_string(m) &&
        !yr_str_eq((yr_str_t){json_string_value(m), json_string_length(m)}, model))
        return gbad(err, "Model in the request (%s) does not match the model in the URL.",
                    json_string_value(m));
    const json_t *parts = json_object_get(json_object_get(req, "content"), "parts");
    if (!json_is_array(parts) || json_array_size(parts) == 0)
        return gbad(err, "* EmbedContentRequest.content: contents is not specified%s", "");
    uint64_t h = 0xcbf29ce484222325ull;
    size_t len = 0, k;
    const json_t *p;
    json_array_foreach(parts, k, p)
    {
        const json_t *t = json_object_get(p, "text");
        if (!json_is_string(t))
            return gbad(err, "* EmbedContentRequest.content.parts: only text parts here%s", "");
        h = fnv1a(json_string_value(t), json_string_length(t), h);
        len += json_string_length(t);
    }
    r->len[i] = len;
    r->hash[i] = h;
    r->tokens += (len + 3) / 4;
    const json_t *d = json_object_get(req, "outputDimensionality");
    if (d != NULL) {
        if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > MAX_DIMS)
            return gbad(err, "* outputDimensionality must be between 1 and 4096%s", "");
        r->dims = (size_t)json_integer_value(d);
    }
    return 0;
}

static int ge_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    memset(p, 0, sizeof(*p));
    p->n = 1;
    if (!json_is_object(body))
        return gbad(err, "Invalid JSON payload received.%s", "");
    yr_str_t model = path_model(x->req);
    p->model = model;
    bool batch = has_suffix(x->req->path, YR_STR(":batchEmbedContents"));
    const json_t *reqs = json_object_get(body, "requests");
    if (batch &&
        (!json_is_array(reqs) || json_array_size(reqs) == 0 || json_array_size(reqs) > 100))
        return gbad(err, "* BatchEmbedContentsRequest.requests: between 1 and 100 requests%s", "");
    size_t n = batch ? json_array_size(reqs) : 1;
    emb_req_t *r = req_of(x, n);
    if (r == NULL)
        return -ENOMEM;
    r->dims = DEFAULT_DIMS;
    for (size_t i = 0; i < n; i++) {
        int rc = content_input(r, i, batch ? json_array_get(reqs, i) : body, model, err);
        if (rc < 0)
            return rc;
    }
    p->prompt_bytes = r->tokens * 4;
    return 0;
}

static int ge_render(sim_exchange_t *x, yr_buf_t *b)
{
    const emb_req_t *r = x->dstate;
    bool batch = has_suffix(x->req->path, YR_STR(":batchEmbedContents"));
    float v[MAX_DIMS];
    int rc = yr_buf_append_str(b, batch ? YR_STR("{\"embeddings\":[") : YR_STR("{\"embedding\":"));
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        vector(v, r->dims, r->len[i], r->hash[i]);
        rc = yr_buf_append_str(b, i ? YR_STR(",{\"values\":") : YR_STR("{\"values\":"));
        if (rc == 0)
            rc = append_floats(b, v, r->dims);
        if (rc == 0)
            rc = yr_buf_append(b, "}", 1);
    }
    if (rc == 0)
        rc = yr_buf_append_str(b, batch ? YR_STR("]}") : YR_STR("}"));
    return rc;
}

static int ge_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    return sim_dialect_gemini.check_auth(req, key, err);
}

static void ge_error_defaults(int status, sim_error_t *err)
{
    sim_dialect_gemini.error_defaults(status, err);
}

static int ge_render_error(const sim_error_t *err, yr_buf_t *out)
{
    return sim_dialect_gemini.render_error(err, out);
}

/* ---- Vertex AI: publishers/google/models/{m}:predict ---------------------------- */

/* {"instances":[{"content","task_type"?,"title"?}],"parameters":{
 * "outputDimensionality"?,"autoTruncate"?}}; Gemini's error shape. */
static int vp_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    memset(p, 0, sizeof(*p));
    p->n = 1;
    if (!json_is_object(body))
        return gbad(err, "Invalid JSON payload received.%s", "");
    const json_t *inst = json_object_get(body, "instances");
    if (!json_is_array(inst) || json_array_size(inst) == 0 || json_array_size(inst) > 250)
        return gbad(err, "* instances: between 1 and 250 instances are required%s", "");
    size_t n = json_array_size(inst), i;
    emb_req_t *r = req_of(x, n);
    if (r == NULL)
        return -ENOMEM;
    r->dims = DEFAULT_DIMS;
    const json_t *params = json_object_get(body, "parameters"), *v;
    const json_t *d = json_object_get(params, "outputDimensionality");
    if (d != NULL) {
        if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > MAX_DIMS)
            return gbad(err, "* outputDimensionality must be between 1 and 4096%s", "");
        r->dims = (size_t)json_integer_value(d);
    }
    json_array_foreach(inst, i, v)
    {
        const json_t *c = json_object_get(v, "content");
        if (!json_is_string(c))
            return gbad(err, "* instances[%zu].content: a string is required", i);
        r->len[i] = json_string_length(c);
        r->hash[i] = fnv1a(json_string_value(c), json_string_length(c), 0xcbf29ce484222325ull);
        r->tokens += (r->len[i] + 3) / 4;
    }
    p->prompt_bytes = r->tokens * 4;
    return 0;
}

/* {"predictions":[{"embeddings":{"values":[...],"statistics":{"token_count","truncated"}}}],
 * "metadata":{"billableCharacterCount"}}; token_count is the input's (bytes + 3) / 4. */
static int vp_render(sim_exchange_t *x, yr_buf_t *b)
{
    const emb_req_t *r = x->dstate;
    float v[MAX_DIMS];
    size_t chars = 0;
    int rc = yr_buf_append_str(b, YR_STR("{\"predictions\":["));
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        vector(v, r->dims, r->len[i], r->hash[i]);
        chars += r->len[i];
        rc = yr_buf_append_str(b, i ? YR_STR(",{\"embeddings\":{\"values\":")
                                    : YR_STR("{\"embeddings\":{\"values\":"));
        if (rc == 0)
            rc = append_floats(b, v, r->dims);
        if (rc == 0)
            rc = yr_buf_printf(b, ",\"statistics\":{\"token_count\":%zu,\"truncated\":false}}}",
                               (r->len[i] + 3) / 4);
    }
    if (rc == 0)
        rc = yr_buf_printf(b, "],\"metadata\":{\"billableCharacterCount\":%zu}}", chars);
    return rc;
}

static int no_stream(sim_exchange_t *x, yr_buf_t *b)
{
    (void)x;
    (void)b;
    return -EINVAL;
}

static size_t no_events(const sim_exchange_t *x)
{
    (void)x;
    return 1;
}

const sim_dialect_t sim_dialect_embeddings = {
    .name = "embeddings",
    .route = oe_route,
    .check_auth = oe_check_auth,
    .parse = oe_parse,
    .error_defaults = sim_oai_error_defaults,
    .render_error = sim_oai_render_error,
    .render = oe_render,
    .stream_state_size = 1,
    .stream_next = no_stream,
    .stream_events = no_events,
    .stream_content_type = YR_STR("text/event-stream"),
    .malformed_event = YR_STR("{"),
};

const sim_dialect_t sim_dialect_gemini_embed = {
    .name = "gemini-embeddings",
    .route = ge_route,
    .check_auth = ge_check_auth,
    .parse = ge_parse,
    .error_defaults = ge_error_defaults,
    .render_error = ge_render_error,
    .render = ge_render,
    .stream_state_size = 1,
    .stream_next = no_stream,
    .stream_events = no_events,
    .stream_content_type = YR_STR("text/event-stream"),
    .malformed_event = YR_STR("{"),
};

/* Vertex's predict body and answer; vertex.c copies it with the route and
 * the token check (sim_dialect_vertex_embed). */
const sim_dialect_t sim_dialect_vertex_predict = {
    .name = "vertex-embeddings",
    .route = ge_route, /* replaced */
    .check_auth = ge_check_auth, /* replaced */
    .parse = vp_parse,
    .error_defaults = ge_error_defaults,
    .render_error = ge_render_error,
    .render = vp_render,
    .stream_state_size = 1,
    .stream_next = no_stream,
    .stream_events = no_events,
    .stream_content_type = YR_STR("text/event-stream"),
    .malformed_event = YR_STR("{"),
};
