/* POST /v1/embeddings on every route kind that can embed: OpenAI's format in
 * and out. OpenAI-compatible and Azure routes pass the client's body through
 * (model spliced; Azure's transport puts the deployment in the URL); Gemini
 * routes are translated to batchEmbedContents (dimensions ->
 * outputDimensionality) and the answer back to OpenAI's list, with
 * encoding_format base64 (little-endian float32, as OpenAI sends it) done
 * here; Vertex routes (the google publisher) likewise to the model's
 * :predict (instances / predictions, with Vertex's token counts). Pure functions, no I/O. docs/providers.md. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "providers/azure.h"
#include "providers/embeddings.h"
#include "providers/gemini.h"
#include "providers/openai.h"
#include "providers/openai_decode.h"
#include "providers/provider.h"
#include "providers/vertex.h"

#define MAX_INPUTS 2048  /* OpenAI's limit per request */
#define GEMINI_BATCH 100 /* batchEmbedContents' limit */
#define VERTEX_BATCH 250 /* :predict's limit (text-embedding-005) */
#define MAX_DIMS 65536

static int reject(yr_call_ctx_t *cx, const char *param, const char *msg)
{
    cx->error.err = YR_E_INVALID_REQUEST;
    snprintf(cx->error.param, sizeof(cx->error.param), "%s", param);
    snprintf(cx->error.message, sizeof(cx->error.message), "%s", msg);
    return -EINVAL;
}

/* ---- OpenAI and Azure: passthrough ------------------------------------------ */

static int oe_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    *path = "/embeddings";
    *extra = NULL;
    if (yr_str_eq(yr_str(cx->route->model), cx->chat->model)) {
        out->body = raw.ptr;
        out->body_len = raw.len;
        return 0;
    }
    return yr_provider_splice_model(cx, raw, body_buf, out);
}

static int oe_response(yr_call_ctx_t *cx, yr_str_t body)
{
    json_t *r = json_loadb(body.ptr, body.len, 0, NULL);
    int rc = json_is_object(r) && json_is_array(json_object_get(r, "data")) ? 0 : -EINVAL;
    json_t *u = json_object_get(r, "usage");
    if (rc == 0 && json_is_object(u)) {
        json_t *pt = json_object_get(u, "prompt_tokens");
        cx->usage = (yr_usage_t){.prompt_tokens = json_is_integer(pt) ? json_integer_value(pt) : 0,
                                 .present = true};
    }
    json_decref(r);
    return rc;
}

static int no_event(yr_call_ctx_t *cx, const yr_frame_t *m, yr_buf_t *out, bool *done)
{
    (void)cx;
    (void)m;
    (void)out;
    *done = true;
    return -EINVAL; /* embeddings never stream */
}

const yr_dialect_ops_t yr_dialect_openai_embed = {
    .name = "openai-embeddings",
    .native_client = YR_DIALECT_EMBEDDINGS,
    .build = oe_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_openai_parse_error,
    .pass_build = oe_build,
    .pass_response = oe_response,
    .pass_event = no_event,
};

const yr_dialect_ops_t yr_dialect_azure_embed = {
    .name = "azure-embeddings",
    .native_client = YR_DIALECT_EMBEDDINGS,
    .build = oe_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_azure_parse_error,
    .pass_build = oe_build,
    .pass_response = oe_response,
    .pass_event = no_event,
};

/* ---- translated routes: Gemini and Vertex ------------------------------------- */

typedef struct {
    bool base64;
    size_t n;
    int64_t estimate; /* prompt tokens: bytes / 4 (Gemini reports none) */
} gemb_t;

/* The request of a translated route: encoding_format and dimensions
 * checked, at most max inputs, every one a string. The parsed body in
 * *req (the caller's to free), the state in cx->state. */
static int text_inputs(yr_call_ctx_t *cx, yr_str_t raw, size_t max, const char *too_many,
                       json_t **req)
{
    gemb_t *st = yr_pcalloc(cx->pool, sizeof(*st));
    json_t *r = *req = json_loadb(raw.ptr, raw.len, 0, NULL);
    json_t *in = json_object_get(r, "input");
    json_t *dims = json_object_get(r, "dimensions");
    const char *fmt = json_string_value(json_object_get(r, "encoding_format"));
    if (st == NULL || r == NULL)
        return st == NULL ? -ENOMEM : reject(cx, "", "the body must be a JSON object");
    cx->state = st;
    st->base64 = fmt != NULL && strcmp(fmt, "base64") == 0;
    if (fmt != NULL && !st->base64 && strcmp(fmt, "float") != 0)
        return reject(cx, "encoding_format", "encoding_format must be 'float' or 'base64'");
    if (dims != NULL && !json_is_null(dims) &&
        (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
         json_integer_value(dims) > MAX_DIMS))
        return reject(cx, "dimensions", "dimensions must be a positive integer");
    bool list = json_is_array(in);
    st->n = list ? json_array_size(in) : 1;
    if (st->n == 0 || st->n > max)
        return reject(cx, "input", st->n == 0 ? "input must not be empty" : too_many);
    for (size_t i = 0; i < st->n; i++) {
        json_t *v = list ? json_array_get(in, i) : in;
        if (!json_is_string(v))
            return reject(cx, "input",
                          "Gemini and Vertex routes embed text only: input must be a string or "
                          "an array of strings (token arrays are not supported)");
        st->estimate += (int64_t)(json_string_length(v) + 3) / 4;
    }
    return 0;
}

/* Input i of a request text_inputs accepted. */
static json_t *text_at(json_t *req, size_t i)
{
    json_t *in = json_object_get(req, "input");
    return json_is_array(in) ? json_array_get(in, i) : in;
}

/* The integer dimensions of a request, or NULL. */
static json_t *dims_of(json_t *req)
{
    json_t *d = json_object_get(req, "dimensions");
    return json_is_integer(d) ? d : NULL;
}

/* root, compact, as the upstream body. */
static int set_body(json_t *root, yr_buf_t *body_buf, yr_upstream_req_t *out)
{
    char *s = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    int rc = s != NULL ? yr_buf_append_str(body_buf, yr_str(s)) : -ENOMEM;
    free(s);
    out->body = body_buf->data;
    out->body_len = body_buf->len;
    return rc;
}

static int ge_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    *extra = NULL;
    json_t *req;
    int rc = text_inputs(cx, raw, GEMINI_BATCH, "at most 100 inputs per request on Gemini routes",
                         &req);
    if (rc < 0) {
        json_decref(req);
        return rc;
    }
    const gemb_t *st = cx->state;
    char model[512];
    snprintf(model, sizeof(model), "%s%s", strncmp(cx->route->model, "models/", 7) ? "models/" : "",
             cx->route->model);
    json_t *reqs = json_array();
    json_t *root = json_pack("{s:o}", "requests", reqs);
    for (size_t i = 0; rc == 0 && i < st->n; i++) {
        json_t *r = json_pack("{s:s, s:{s:[{s:O}]}}", "model", model, "content", "parts", "text",
                              text_at(req, i));
        if (r != NULL && dims_of(req) != NULL)
            json_object_set(r, "outputDimensionality", dims_of(req));
        if (json_array_append_new(reqs, r) < 0)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = set_body(root, body_buf, out);
    json_decref(root);
    json_decref(req);
    if (rc == 0) {
        *path = yr_gemini_path(cx->pool, cx->route->model, "batchEmbedContents");
        rc = *path ? 0 : -ENOMEM;
    }
    return rc;
}

static int append_vector(yr_buf_t *b, json_t *values, bool base64)
{
    size_t n = json_array_size(values), i;
    json_t *v;
    if (!base64) {
        char *s = json_dumps(values, JSON_COMPACT | JSON_REAL_PRECISION(9));
        int rc = s != NULL ? yr_buf_append_str(b, yr_str(s)) : -ENOMEM;
        free(s);
        return rc;
    }
    if (n > MAX_DIMS)
        return -E2BIG;
    unsigned char *raw = malloc(n * 4 + 1);
    char *out = malloc(4 * ((n * 4 + 2) / 3) + 1);
    int rc = raw && out ? 0 : -ENOMEM;
    json_array_foreach(values, i, v)
    {
        float f = (float)json_number_value(v);
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int k = 0; rc == 0 && k < 4; k++)
            raw[i * 4 + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    if (rc == 0) {
        int m = EVP_EncodeBlock((unsigned char *)out, raw, (int)(n * 4));
        rc = yr_buf_printf(b, "\"%.*s\"", m, out);
    }
    free(raw);
    free(out);
    return rc;
}

/* OpenAI's list from the upstream's items (one per input, in order; the
 * vector of each is values_of(item)), in cx->pass_out, with prompt_tokens
 * as the usage. */
static int write_list(yr_call_ctx_t *cx, json_t *items, json_t *(*values_of)(json_t *),
                      int64_t prompt_tokens)
{
    const gemb_t *st = cx->state;
    if (st == NULL || !json_is_array(items) || json_array_size(items) != st->n)
        return -EINVAL;
    yr_buf_t b;
    yr_buf_init(&b, 256u << 20);
    int rc = yr_buf_append_str(&b, YR_STR("{\"object\":\"list\",\"data\":["));
    size_t i;
    json_t *e;
    json_array_foreach(items, i, e)
    {
        json_t *values = values_of(e);
        if (rc == 0 && !json_is_array(values))
            rc = -EINVAL;
        if (rc == 0)
            rc = yr_buf_printf(
                &b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (rc == 0)
            rc = append_vector(&b, values, st->base64);
        if (rc == 0)
            rc = yr_buf_append(&b, "}", 1);
    }
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR("],\"model\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(&b, cx->chat->model);
    if (rc == 0)
        rc = yr_buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                           (long long)prompt_tokens, (long long)prompt_tokens);
    if (rc == 0) {
        char *copy = yr_palloc(cx->pool, b.len);
        if (copy == NULL)
            rc = -ENOMEM;
        else {
            memcpy(copy, b.data, b.len);
            cx->pass_out = (yr_str_t){copy, b.len};
            cx->usage = (yr_usage_t){.prompt_tokens = prompt_tokens, .present = true};
        }
    }
    yr_buf_free(&b);
    return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
}

static json_t *gemini_values(json_t *e)
{
    return json_object_get(e, "values");
}

/* {"embeddings":[{"values":[...]}...]} -> OpenAI's list, in cx->pass_out. */
static int ge_response(yr_call_ctx_t *cx, yr_str_t body)
{
    const gemb_t *st = cx->state;
    json_t *r = json_loadb(body.ptr, body.len, 0, NULL);
    int rc = write_list(cx, json_object_get(r, "embeddings"), gemini_values,
                        st != NULL ? st->estimate : 0);
    json_decref(r);
    return rc;
}

const yr_dialect_ops_t yr_dialect_gemini_embed = {
    .name = "gemini-embeddings",
    .native_client = YR_DIALECT_EMBEDDINGS,
    .needs_tree = false,
    .build = ge_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_gemini_parse_error,
    .pass_build = ge_build,
    .pass_response = ge_response,
    .pass_event = no_event,
};

/* ---- Vertex AI: publishers/google/models/{m}:predict --------------------------- */

/* {"instances":[{"content":...}...],"parameters":{"outputDimensionality"}};
 * the transport (yr_transport_vertex_embed) puts the model and :predict
 * in the URL. Vertex takes up to 250 instances (some models, such as
 * gemini-embedding-001, only 1: their 400 is the client's). */
static int ve_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    *extra = NULL;
    *path = "";
    json_t *req;
    int rc = text_inputs(cx, raw, VERTEX_BATCH, "at most 250 inputs per request on Vertex routes",
                         &req);
    if (rc < 0) {
        json_decref(req);
        return rc;
    }
    const gemb_t *st = cx->state;
    json_t *inst = json_array();
    json_t *root = json_pack("{s:o}", "instances", inst);
    for (size_t i = 0; rc == 0 && i < st->n; i++)
        if (json_array_append_new(inst, json_pack("{s:O}", "content", text_at(req, i))) < 0)
            rc = -ENOMEM;
    if (rc == 0 && dims_of(req) != NULL &&
        json_object_set_new(root, "parameters",
                            json_pack("{s:O}", "outputDimensionality", dims_of(req))) < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = set_body(root, body_buf, out);
    json_decref(root);
    json_decref(req);
    return rc;
}

static json_t *vertex_values(json_t *p)
{
    return json_object_get(json_object_get(p, "embeddings"), "values");
}

/* {"predictions":[{"embeddings":{"values","statistics":{"token_count"}}}]}
 * -> OpenAI's list; prompt_tokens is the sum of the token counts (the
 * estimate when Vertex gives none). */
static int ve_response(yr_call_ctx_t *cx, yr_str_t body)
{
    const gemb_t *st = cx->state;
    json_t *r = json_loadb(body.ptr, body.len, 0, NULL);
    json_t *preds = json_object_get(r, "predictions"), *p;
    int64_t tokens = 0;
    bool counted = json_array_size(preds) > 0;
    size_t i;
    json_array_foreach(preds, i, p)
    {
        json_t *tc = json_object_get(
            json_object_get(json_object_get(p, "embeddings"), "statistics"), "token_count");
        /* a number: Vertex's JSON of a protobuf Struct may write 7.0 */
        if (!json_is_number(tc) || json_number_value(tc) < 0 || json_number_value(tc) > 1e12)
            counted = false;
        else
            tokens += (int64_t)json_number_value(tc);
    }
    int rc = write_list(cx, preds, vertex_values, counted ? tokens : st ? st->estimate : 0);
    json_decref(r);
    return rc;
}

const yr_dialect_ops_t yr_dialect_vertex_embed = {
    .name = "vertex-embeddings",
    .native_client = YR_DIALECT_EMBEDDINGS,
    .needs_tree = false,
    .build = ve_build,
    .response = yr_openai_decode_response,
    .event = yr_openai_decode_event,
    .parse_error = yr_gemini_parse_error,
    .pass_build = ve_build,
    .pass_response = ve_response,
    .pass_event = no_event,
};

const yr_provider_kind_ops_t *yr_provider_embed_kind(const yr_route_conf_t *r)
{
    static const yr_provider_kind_ops_t kinds[] = {
        {YR_KIND_OPENAI, &yr_dialect_openai_embed, &yr_transport_bearer},
        {YR_KIND_AZURE, &yr_dialect_azure_embed, &yr_transport_azure},
        {YR_KIND_GEMINI, &yr_dialect_gemini_embed, &yr_transport_gemini},
        {YR_KIND_VERTEX, &yr_dialect_vertex_embed, &yr_transport_vertex_embed},
    };
    yr_provider_kind_t kind = r->provider->kind;
    if (kind == YR_KIND_VERTEX && yr_vertex_anthropic(r))
        return NULL; /* Claude does not embed */
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    return NULL;
}

int yr_embed_peek(const char *body, size_t len, char *model, size_t cap, yr_api_error_t *err)
{
    json_t *r = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *m = json_object_get(r, "model"), *in = json_object_get(r, "input");
    int rc = 0;
    err->param[0] = '\0';
    if (!json_is_object(r)) {
        err->err = YR_E_INVALID_JSON;
        snprintf(err->message, sizeof(err->message), "the body must be a JSON object");
        rc = -EINVAL;
    } else if (!json_is_string(m) || json_string_length(m) == 0 || json_string_length(m) >= cap) {
        err->err = YR_E_INVALID_REQUEST;
        snprintf(err->param, sizeof(err->param), "model");
        snprintf(err->message, sizeof(err->message), "model is required");
        rc = -EINVAL;
    } else if (!json_is_string(in) && !(json_is_array(in) && json_array_size(in) > 0 &&
                                        json_array_size(in) <= MAX_INPUTS)) {
        err->err = YR_E_INVALID_REQUEST;
        snprintf(err->param, sizeof(err->param), "input");
        snprintf(err->message, sizeof(err->message),
                 "input must be a string or a non-empty array (at most %d items)", MAX_INPUTS);
        rc = -EINVAL;
    } else {
        snprintf(model, cap, "%s", json_string_value(m));
    }
    json_decref(r);
    return rc;
}
