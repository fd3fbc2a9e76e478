/* The simulator's Google Gemini dialect (generativelanguage v1beta):
 *
 *   POST …/models/{model}:generateContent            a GenerateContentResponse
 *   POST …/models/{model}:streamGenerateContent?alt=sse   the same, one per
 *        SSE event ("data: {json}\r\n\r\n"), no terminator
 *   POST …/models/{model}:countTokens                {"totalTokens": N}
 *
 * Shapes as the API sends them: usageMetadata cumulative on every event;
 * one function call per event; thought parts when includeThoughts is set;
 * a thoughtSignature on the first call of each step; on Gemini 3 models the
 * finishReason in its own last event. Validation covers what a gateway gets
 * wrong: unknown fields, schema keywords the API refuses, both thinking
 * knobs at once, function responses that do not match the calls, and, on
 * Gemini 3, a step of the current turn whose first call lacks its
 * signature. docs/sim.md lists it all. */
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define GM_THINK_ECHO 40
#define GM_DUMMY_SIGNATURE "skip_thought_signature_validator"

/* ---- errors ------------------------------------------------------------------------------ */

static void gm_error_defaults(int status, sim_error_t *err)
{
    const char *st, *msg;
    switch (status) {
    case 400: st = "INVALID_ARGUMENT"; msg = "Request contains an invalid argument."; break;
    case 401:
        st = "UNAUTHENTICATED";
        msg = "Request had invalid authentication credentials.";
        break;
    case 403: st = "PERMISSION_DENIED"; msg = "The caller does not have permission"; break;
    case 404: st = "NOT_FOUND"; msg = "Requested entity was not found."; break;
    case 429:
        st = "RESOURCE_EXHAUSTED";
        msg = "You exceeded your current quota, please check your plan and billing details.";
        break;
    case 503: st = "UNAVAILABLE"; msg = "The model is overloaded. Please try again later."; break;
    case 504: st = "DEADLINE_EXCEEDED"; msg = "Deadline expired before operation could complete."; break;
    default:
        st = status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
        msg = status >= 500 ? "An internal error has occurred. Please retry or report in "
                              "https://developers.generativeai.google/guide/troubleshooting"
                            : "Request contains an invalid argument.";
        break;
    }
    sim_error_set(err, status, st, NULL, "%s", msg);
}

/* {"error":{"code","message","status"(,"details":[...])}}: ErrorInfo from
 * the code (a reason such as API_KEY_INVALID), QuotaFailure and RetryInfo
 * from the behaviour. */
static int gm_render_error(const sim_error_t *err, yr_buf_t *b)
{
    int rc = yr_buf_printf(b, "{\"error\":{\"code\":%d,\"message\":", err->status);
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->message.ptr ? err->message : YR_STR(""));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"status\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->type.ptr ? err->type : YR_STR("INTERNAL"));
    bool details = err->code.len > 0 || err->quota_id.len > 0 || err->retry_delay.len > 0;
    if (rc == 0 && details)
        rc = yr_buf_append_str(b, YR_STR(",\"details\":["));
    const char *sep = "";
    if (rc == 0 && err->code.len > 0) {
        rc = yr_buf_append_str(b, YR_STR("{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
                                         "\"reason\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(b, err->code);
        if (rc == 0)
            rc = yr_buf_append_str(b, YR_STR(",\"domain\":\"googleapis.com\"}"));
        sep = ",";
    }
    if (rc == 0 && err->quota_id.len > 0) {
        rc = yr_buf_printf(b, "%s{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
                              "\"violations\":[{\"quotaMetric\":\"generativelanguage.googleapis.com/"
                              "generate_content_free_tier_requests\",\"quotaId\":",
                           sep);
        if (rc == 0)
            rc = yr_buf_append_json_str(b, err->quota_id);
        if (rc == 0)
            rc = yr_buf_append_str(b, YR_STR(",\"quotaValue\":\"250\"}]}"));
        sep = ",";
    }
    if (rc == 0 && err->retry_delay.len > 0) {
        rc = yr_buf_printf(b, "%s{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                              "\"retryDelay\":",
                           sep);
        if (rc == 0)
            rc = yr_buf_append_json_str(b, err->retry_delay);
        if (rc == 0)
            rc = yr_buf_append(b, "}", 1);
    }
    if (rc == 0 && details)
        rc = yr_buf_append(b, "]", 1);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc;
}

/* ---- routing and auth ----------------------------------------------------------------------- */

enum gm_method { GM_NONE, GM_GENERATE, GM_STREAM, GM_COUNT };

static enum gm_method method_of(const yr_http_req_t *req, yr_str_t *model)
{
    yr_str_t p = req->path;
    static const struct {
        const char *suffix;
        enum gm_method m;
    } methods[] = {{":generateContent", GM_GENERATE},
                   {":streamGenerateContent", GM_STREAM},
                   {":countTokens", GM_COUNT}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        yr_str_t s = yr_str(methods[i].suffix);
        if (p.len <= s.len || memcmp(p.ptr + p.len - s.len, s.ptr, s.len) != 0)
            continue;
        const char *end = p.ptr + p.len - s.len, *start = end;
        while (start > p.ptr && start[-1] != '/')
            start--;
        if (start - p.ptr < 8 || memcmp(start - 7, "models/", 7) != 0 || start == end)
            return GM_NONE;
        if (model != NULL)
            *model = (yr_str_t){start, (size_t)(end - start)};
        return methods[i].m;
    }
    return GM_NONE;
}

static sim_route_t gm_route(const yr_http_req_t *req)
{
    return req->method == HTTP_POST && method_of(req, NULL) != GM_NONE ? SIM_ROUTE_CHAT
                                                                       : SIM_ROUTE_NONE;
}

/* ?key=K in the query (the API accepts it; a gateway should not use it). */
static yr_str_t query_key(const yr_http_req_t *req)
{
    yr_str_t q = req->query;
    for (size_t i = 0; i + 4 <= q.len; i++) {
        if ((i == 0 || q.ptr[i - 1] == '&') && memcmp(q.ptr + i, "key=", 4) == 0) {
            size_t j = i + 4;
            while (j < q.len && q.ptr[j] != '&')
                j++;
            return (yr_str_t){q.ptr + i + 4, j - i - 4};
        }
    }
    return YR_STR_NULL;
}

static int gm_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    if (key.len == 0)
        return 0;
    yr_str_t h = yr_http_req_header(req, YR_STR("x-goog-api-key"));
    if (h.ptr == NULL)
        h = query_key(req);
    if (h.ptr == NULL) {
        sim_error_set(err, 403, "PERMISSION_DENIED", NULL,
                      "Method doesn't allow unregistered callers (callers without established "
                      "identity). Please use API Key or other form of API consumer identity to "
                      "call this API.");
        return -EACCES;
    }
    if (sim_key_equal(yr_str_trim(h), key))
        return 0;
    sim_error_set(err, 400, "INVALID_ARGUMENT", "API_KEY_INVALID",
                  "API key not valid. Please pass a valid API key.");
    return -EACCES;
}

/* ---- validation ------------------------------------------------------------------------------- */

static int invalid(sim_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int invalid(sim_error_t *err, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sim_error_set(err, 400, "INVALID_ARGUMENT", NULL, "%s", msg);
    return -EINVAL;
}

static int unknown_name(sim_error_t *err, const char *name, const char *at)
{
    if (at[0] == '\0')
        return invalid(err, "Invalid JSON payload received. Unknown name \"%.64s\": Cannot find "
                            "field.", name);
    return invalid(err, "Invalid JSON payload received. Unknown name \"%.64s\" at '%.120s': "
                        "Cannot find field.", name, at);
}

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* Gemini's Schema is an OpenAPI 3.0 subset: these JSON Schema keywords are
 * unknown fields there (a 400 naming them), and type is one string. */
static const char *const schema_fields[] = {
    "type",     "format",   "title",         "description",   "nullable",  "enum",
    "maxItems", "minItems", "properties",    "required",      "minProperties", "maxProperties",
    "minLength", "maxLength", "pattern",     "example",       "anyOf",     "propertyOrdering",
    "default",  "items",    "minimum",       "maximum",       NULL};

static int check_schema(const json_t *s, const char *at, size_t depth, bool root, sim_error_t *err)
{
    if (!json_is_object(s) || depth > 64)
        return invalid(err, "Invalid value at '%.120s': a schema must be an object", at);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v)
    {
        if (!in_list(schema_fields, k))
            return unknown_name(err, k, at);
    }
    json_t *type = json_object_get(s, "type");
    if (type != NULL && !json_is_string(type))
        return invalid(err, "Invalid value at '%.120s.type' (type.googleapis.com/"
                            "google.ai.generativelanguage.v1beta.Type), %s", at,
                       json_is_array(type) ? "a list of types" : "not a string");
    const char *t = json_string_value(type);
    json_t *props = json_object_get(s, "properties");
    if (t == NULL && json_object_get(s, "anyOf") == NULL)
        return invalid(err, "* GenerateContentRequest.%s.type: must be specified when not using "
                            "one_of, any_of or all_of fields", at);
    if (root && t != NULL && strcasecmp(t, "object") == 0 && json_object_size(props) == 0)
        return invalid(err, "* GenerateContentRequest.%s.properties: should be non-empty for "
                            "OBJECT type", at);
    bool array = t != NULL && strcasecmp(t, "array") == 0;
    if (array && json_object_get(s, "items") == NULL)
        return invalid(err, "* GenerateContentRequest.%s.items: missing field.", at);
    if (!array && json_object_get(s, "items") != NULL)
        return invalid(err, "* GenerateContentRequest.%s.items: field predicate failed: $type == "
                            "Type.ARRAY", at);
    size_t ri;
    json_t *rn;
    json_array_foreach(json_object_get(s, "required"), ri, rn)
    {
        if (!json_is_string(rn) || json_object_get(props, json_string_value(rn)) == NULL)
            return invalid(err, "* GenerateContentRequest.%s.required[%zu]: property is not "
                                "defined", at, ri);
    }
    char sub[200];
    json_object_foreach(props, k, v)
    {
        snprintf(sub, sizeof(sub), "%s.properties[%s].value", at, k);
        if (check_schema(v, sub, depth + 1, false, err) < 0)
            return -EINVAL;
    }
    json_t *items = json_object_get(s, "items");
    snprintf(sub, sizeof(sub), "%s.items", at);
    if (items != NULL && check_schema(items, sub, depth + 1, false, err) < 0)
        return -EINVAL;
    size_t i;
    json_array_foreach(json_object_get(s, "anyOf"), i, v)
    {
        snprintf(sub, sizeof(sub), "%s.any_of[%zu]", at, i);
        if (check_schema(v, sub, depth + 1, false, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static bool is_gemini3(yr_str_t model)
{
    return model.len > 8 && memcmp(model.ptr, "gemini-", 7) == 0 && model.ptr[7] >= '3' &&
           model.ptr[7] <= '9';
}

static bool base64ish(yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || c == '-' || c == '_'))
            return false;
    }
    return s.len > 0;
}

static const char *const part_fields[] = {
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "thought",
    "thoughtSignature", "executableCode", "codeExecutionResult", "videoMetadata", NULL};

static int check_part(const json_t *p, size_t ci, size_t pi, const char *role, sim_error_t *err)
{
    char at[96];
    snprintf(at, sizeof(at), "contents[%zu].parts[%zu]", ci, pi);
    if (!json_is_object(p) || json_object_size(p) == 0)
        return invalid(err, "* GenerateContentRequest.%s.data: required oneof field 'data' must "
                            "have one initialized field", at);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)p, k, v)
    {
        if (!in_list(part_fields, k))
            return unknown_name(err, k, at);
    }
    json_t *sig = json_object_get(p, "thoughtSignature");
    if (sig != NULL && !yr_str_eq((yr_str_t){json_string_value(sig), json_string_length(sig)},
                                  YR_STR(GM_DUMMY_SIGNATURE)) &&
        !(json_is_string(sig) &&
          base64ish((yr_str_t){json_string_value(sig), json_string_length(sig)})))
        return invalid(err, "Invalid value at '%s.thought_signature' (TYPE_BYTES), Base64 "
                            "decoding failed", at);
    json_t *text = json_object_get(p, "text");
    if (text != NULL && !json_is_string(text))
        return invalid(err, "Invalid value at '%s.text' (TYPE_STRING)", at);
    json_t *id = json_object_get(p, "inlineData");
    if (id != NULL && (!json_is_string(json_object_get(id, "mimeType")) ||
                       json_string_length(json_object_get(id, "data")) == 0))
        return invalid(err, "* GenerateContentRequest.%s.inline_data: mimeType and data are "
                            "required", at);
    json_t *fc = json_object_get(p, "functionCall");
    if (fc != NULL && (strcmp(role, "model") != 0 || !json_is_string(json_object_get(fc, "name"))))
        return invalid(err, "* GenerateContentRequest.%s.function_call: a functionCall with a "
                            "name belongs in a model turn", at);
    json_t *fr = json_object_get(p, "functionResponse");
    if (fr != NULL && (!json_is_string(json_object_get(fr, "name")) ||
                       !json_is_object(json_object_get(fr, "response"))))
        return invalid(err, "* GenerateContentRequest.%s.function_response: name and a response "
                            "object are required", at);
    return 0;
}

static size_t count_parts(const json_t *content, const char *field)
{
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(json_object_get(content, "parts"), i, p)
    {
        if (json_object_get(p, field) != NULL)
            n++;
    }
    return n;
}

/* A user content with something besides function responses starts a turn. */
static bool starts_turn(const json_t *content)
{
    const char *role = json_string_value(json_object_get(content, "role"));
    if (role != NULL && strcmp(role, "user") != 0)
        return false;
    return json_array_size(json_object_get(content, "parts")) >
           count_parts(content, "functionResponse");
}

static int check_contents(sim_exchange_t *x, const json_t *contents, sim_error_t *err)
{
    if (!json_is_array(contents) || json_array_size(contents) == 0)
        return invalid(err, "* GenerateContentRequest.contents: contents is not specified");
    size_t turn = 0, i;
    json_t *c;
    json_array_foreach(contents, i, c)
    {
        if (!json_is_object(c))
            return invalid(err, "Invalid value at 'contents[%zu]' (Content)", i);
        const char *k;
        json_t *v;
        json_object_foreach(c, k, v)
        {
            if (strcmp(k, "role") != 0 && strcmp(k, "parts") != 0) {
                char at[32];
                snprintf(at, sizeof(at), "contents[%zu]", i);
                return unknown_name(err, k, at);
            }
        }
        json_t *rv = json_object_get(c, "role");
        const char *role = rv ? json_string_value(rv) : "user";
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "model") != 0))
            return invalid(err, "Please use a valid role: user, model.");
        json_t *parts = json_object_get(c, "parts");
        if (!json_is_array(parts) || json_array_size(parts) == 0)
            return invalid(err, "* GenerateContentRequest.contents[%zu].parts: contents.parts "
                                "must not be empty.", i);
        size_t pi;
        json_t *p;
        json_array_foreach(parts, pi, p)
        {
            if (check_part(p, i, pi, role, err) < 0)
                return -EINVAL;
        }
        if (starts_turn(c))
            turn = i;
        size_t calls = count_parts(c, "functionCall");
        json_t *next = json_array_get(contents, i + 1);
        if (calls > 0 && next != NULL && count_parts(next, "functionResponse") != calls)
            return invalid(err, "Please ensure that the number of function response parts is "
                                "equal to the number of function call parts of the function "
                                "call turn.");
    }
    if (!is_gemini3(x->prompt.model))
        return 0;
    /* Gemini 3: each step of the current turn keeps its first call's signature. */
    for (i = turn; i < json_array_size(contents); i++) {
        c = json_array_get(contents, i);
        size_t pi, pos = 0;
        json_t *p;
        json_array_foreach(json_object_get(c, "parts"), pi, p)
        {
            json_t *fc = json_object_get(p, "functionCall");
            if (fc == NULL)
                continue;
            if (pos++ == 0 && json_object_get(p, "thoughtSignature") == NULL)
                return invalid(err, "Function call is missing a thought_signature in "
                                    "functionCall parts. This is required for tools to work "
                                    "correctly, and missing thought_signature may lead to "
                                    "degraded model performance. Additional data, function "
                                    "call `default_api:%.64s` , position %zu. Please refer to "
                                    "https://ai.google.dev/gemini-api/docs/thought-signatures "
                                    "for more details.",
                               json_string_value(json_object_get(fc, "name")), pi + 1);
        }
    }
    return 0;
}

static const char *const top_fields[] = {"contents", "tools", "toolConfig", "safetySettings",
                                         "systemInstruction", "generationConfig",
                                         "cachedContent", "x_sim", NULL};
static const char *const gc_fields[] = {
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
    "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
    "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
    "thinkingConfig", "mediaResolution", "speechConfig", "enableEnhancedCivicAnswers", NULL};

static int check_generation_config(sim_exchange_t *x, const json_t *gc, sim_error_t *err)
{
    if (gc == NULL)
        return 0;
    if (!json_is_object(gc))
        return invalid(err, "Invalid value at 'generation_config' (GenerationConfig)");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)gc, k, v)
    {
        if (!in_list(gc_fields, k))
            return unknown_name(err, k, "generation_config");
    }
    json_t *rs = json_object_get(gc, "responseSchema");
    if (rs != NULL && json_object_get(gc, "responseJsonSchema") != NULL)
        return invalid(err, "responseSchema and responseJsonSchema cannot both be set.");
    if (rs != NULL && check_schema(rs, "generation_config.response_schema", 0, false, err) < 0)
        return -EINVAL;
    json_t *tc = json_object_get(gc, "thinkingConfig");
    if (tc != NULL) {
        bool budget = json_object_get(tc, "thinkingBudget") != NULL;
        bool level = json_object_get(tc, "thinkingLevel") != NULL;
        if (budget && level)
            return invalid(err, "You can only set only one of thinking budget and thinking "
                                "level.");
        if (level && !is_gemini3(x->prompt.model))
            return invalid(err, "Thinking level is not supported for this model.");
    }
    json_t *n = json_object_get(gc, "candidateCount");
    if (n != NULL && (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 8))
        return invalid(err, "* GenerateContentRequest.generation_config.candidate_count: must be "
                            "between 1 and 8");
    json_t *max = json_object_get(gc, "maxOutputTokens");
    if (max != NULL && (!json_is_integer(max) || json_integer_value(max) < 1))
        return invalid(err, "* GenerateContentRequest.generation_config.max_output_tokens: must "
                            "be positive");
    return 0;
}

static bool function_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64 || !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') ||
                                  n[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || strchr("_.:-", n[i]) != NULL))
            return false;
    return true;
}

static int check_tools(sim_exchange_t *x, const json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    json_t *tools = json_object_get(body, "tools");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        size_t j;
        json_t *d;
        json_array_foreach(json_object_get(t, "functionDeclarations"), j, d)
        {
            char at[96];
            snprintf(at, sizeof(at), "tools[%zu].function_declarations[%zu]", i, j);
            if (!json_is_string(json_object_get(d, "name")))
                return invalid(err, "* GenerateContentRequest.%s.name: Name cannot be empty.", at);
            if (!function_name_ok(json_string_value(json_object_get(d, "name"))))
                return invalid(err, "* GenerateContentRequest.%s.name: [FIELD_INVALID] Invalid "
                                    "function name. Must start with a letter or an underscore. "
                                    "Must be a-z, A-Z, 0-9, or contain underscores (_), dots (.), "
                                    "colons (:), or dashes (-), with a maximum length of 64.", at);
            const char *k;
            json_t *v;
            json_object_foreach(d, k, v)
            {
                if (strcmp(k, "name") != 0 && strcmp(k, "description") != 0 &&
                    strcmp(k, "parameters") != 0 && strcmp(k, "parametersJsonSchema") != 0 &&
                    strcmp(k, "response") != 0 && strcmp(k, "behavior") != 0)
                    return unknown_name(err, k, at);
            }
            json_t *params = json_object_get(d, "parameters");
            if (params != NULL && json_object_get(d, "parametersJsonSchema") != NULL)
                return invalid(err, "parameters and parametersJsonSchema cannot both be set.");
            char pat[120];
            snprintf(pat, sizeof(pat), "%s.parameters", at);
            if (params != NULL && check_schema(params, pat, 0, true, err) < 0)
                return -EINVAL;
            if (!p->has_tools)
                p->forced_tool = (yr_str_t){json_string_value(json_object_get(d, "name")),
                                            json_string_length(json_object_get(d, "name"))};
            p->has_tools = true;
        }
    }
    json_t *fcc = json_object_get(json_object_get(body, "toolConfig"), "functionCallingConfig");
    const char *mode = json_string_value(json_object_get(fcc, "mode"));
    json_t *allowed = json_object_get(fcc, "allowedFunctionNames");
    if (mode != NULL && strcmp(mode, "AUTO") != 0 && strcmp(mode, "ANY") != 0 &&
        strcmp(mode, "NONE") != 0 && strcmp(mode, "VALIDATED") != 0)
        return invalid(err, "Invalid value at 'tool_config.function_calling_config.mode' "
                            "(type.googleapis.com/google.ai.generativelanguage.v1beta."
                            "FunctionCallingConfig.Mode), \"%.32s\"", mode);
    if (allowed != NULL && (mode == NULL || strcmp(mode, "ANY") != 0))
        return invalid(err, "allowed_function_names should only be set when the Mode is ANY.");
    p->tool_choice = SIM_TOOLS_AUTO;
    if (mode != NULL && strcmp(mode, "NONE") == 0)
        p->tool_choice = SIM_TOOLS_NONE;
    if (mode != NULL && strcmp(mode, "ANY") == 0) {
        p->tool_choice = SIM_TOOLS_REQUIRED;
        if (json_array_size(allowed) == 1) {
            json_t *name = json_array_get(allowed, 0);
            p->tool_choice = SIM_TOOLS_NAMED;
            p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
        }
    }
    return 0;
}

/* The text of one content's parts (joined by \n), its images, and bytes. */
static void read_content(sim_exchange_t *x, const json_t *c, yr_buf_t *text, size_t *images)
{
    size_t i;
    json_t *p;
    *images = 0;
    json_array_foreach(json_object_get(c, "parts"), i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t) && !json_is_true(json_object_get(p, "thought"))) {
            if ((text->len > 0 && yr_buf_append(text, "\n", 1) < 0) ||
                yr_buf_append(text, json_string_value(t), json_string_length(t)) < 0)
                break; /* past the cap: the quote is cut */
        }
        if (json_object_get(p, "inlineData") || json_object_get(p, "fileData"))
            (*images)++;
    }
    (void)x;
}

static int gm_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    enum gm_method m = method_of(x->req, &p->model);
    p->n = 1;
    p->stream = m == GM_STREAM;
    if (!json_is_object(body))
        return invalid(err, "Invalid JSON payload received. Expected an object.");
    if (m == GM_STREAM && !yr_str_eq(x->req->query, YR_STR("alt=sse")) &&
        memmem(x->req->query.ptr ? x->req->query.ptr : "", x->req->query.len, "alt=sse", 7) == NULL)
        return invalid(err, "yourouter-sim streams only with ?alt=sse (the JSON-array form is not "
                            "simulated)");
    json_t *req = body;
    if (m == GM_COUNT && json_is_object(json_object_get(body, "generateContentRequest")))
        req = json_object_get(body, "generateContentRequest");
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v)
    {
        if (!in_list(top_fields, k) && !(m == GM_COUNT && strcmp(k, "model") == 0))
            return unknown_name(err, k, "");
    }
    json_t *contents = json_object_get(req, "contents");
    if (check_contents(x, contents, err) < 0)
        return -EINVAL;
    json_t *gc = json_object_get(req, "generationConfig");
    if (check_generation_config(x, gc, err) < 0 || check_tools(x, req, err) < 0)
        return -EINVAL;
    json_t *max = json_object_get(gc, "maxOutputTokens");
    p->max_tokens = json_is_integer(max) ? (uint64_t)json_integer_value(max) : 0;
    /* what the reply quotes: the last user content that says something */
    yr_buf_t text;
    yr_buf_init(&text, SIM_MAX_BODY);
    size_t i;
    json_t *c;
    json_array_foreach(contents, i, c)
    {
        size_t images;
        yr_buf_reset(&text);
        read_content(x, c, &text, &images);
        p->prompt_bytes += text.len;
        if (starts_turn(c)) {
            p->last_user_text = (yr_str_t){yr_pstrndup(x->pool, text.data ? text.data : "", text.len),
                                           text.len};
            p->images = images;
        }
    }
    json_t *sys = json_object_get(req, "systemInstruction");
    if (sys != NULL) {
        size_t images;
        yr_buf_reset(&text);
        read_content(x, sys, &text, &images);
        p->prompt_bytes += text.len;
    }
    yr_buf_free(&text);
    return 0;
}

/* ---- rendering ------------------------------------------------------------------------------- */

static bool include_thoughts(const sim_exchange_t *x)
{
    const json_t *tc = json_object_get(json_object_get(x->body, "generationConfig"), "thinkingConfig");
    return json_is_true(json_object_get(tc, "includeThoughts"));
}

/* Signatures come with thinking: always on Gemini 3, when asked on 2.5. */
static bool signs(const sim_exchange_t *x)
{
    return is_gemini3(x->prompt.model) || include_thoughts(x);
}

static yr_str_t thinking_text(sim_exchange_t *x)
{
    yr_str_t u = x->prompt.last_user_text;
    size_t n = sim_utf8_floor(u.ptr ? u.ptr : "", u.len, GM_THINK_ECHO);
    size_t len = sizeof("Thinking about: ") - 1 + n;
    char *s = yr_palloc(x->pool, len + 1);
    if (s == NULL)
        return YR_STR("Thinking.");
    memcpy(s, "Thinking about: ", sizeof("Thinking about: ") - 1);
    if (n > 0)
        memcpy(s + len - n, u.ptr, n);
    s[len] = '\0';
    return (yr_str_t){s, len};
}

/* A base64-looking stand-in for the opaque signature of step i. */
static void signature(const sim_exchange_t *x, size_t i, char out[49])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = x->id; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    memcpy(out, "Cs", 2);
    sim_random_alnum(h + i, out + 2, 46);
}

static void response_id(const sim_exchange_t *x, char out[24])
{
    memcpy(out, x->id + 9, 23); /* x->id is "chatcmpl-" + 29 alphanumerics */
    out[23] = '\0';
}

static uint64_t thought_tokens(sim_exchange_t *x)
{
    if (x->beh.empty_candidate)
        return x->prompt.max_tokens ? x->prompt.max_tokens : 64;
    return include_thoughts(x) || is_gemini3(x->prompt.model)
               ? sim_count_words(thinking_text(x))
               : 0;
}

/* usageMetadata for `cands` candidate tokens and `thoughts` so far. */
static int append_usage(sim_exchange_t *x, yr_buf_t *b, uint64_t cands, uint64_t thoughts)
{
    const sim_reply_t *r = &x->reply;
    json_t *u = json_pack("{s:I}", "promptTokenCount", (json_int_t)r->prompt_tokens);
    if (u == NULL)
        return -ENOMEM;
    if (cands > 0)
        json_object_set_new(u, "candidatesTokenCount", json_integer((json_int_t)cands));
    json_object_set_new(u, "totalTokenCount",
                        json_integer((json_int_t)(r->prompt_tokens + cands + thoughts)));
    json_object_set_new(u, "promptTokensDetails",
                        json_pack("[{s:s, s:I}]", "modality", "TEXT", "tokenCount",
                                  (json_int_t)r->prompt_tokens));
    if (thoughts > 0)
        json_object_set_new(u, "thoughtsTokenCount", json_integer((json_int_t)thoughts));
    if (r->usage_override != NULL)
        json_object_update_recursive(u, r->usage_override);
    return sim_append_usage(b, u, NULL, NULL, NULL, NULL);
}

static yr_str_t finish_reason(const sim_exchange_t *x)
{
    const sim_reply_t *r = &x->reply;
    if (r->finish_override.ptr != NULL)
        return r->finish_override;
    if (x->beh.empty_candidate || r->finish == SIM_FINISH_LENGTH)
        return YR_STR("MAX_TOKENS");
    return YR_STR("STOP"); /* function calls end with STOP too */
}

static int append_text_part(yr_buf_t *b, yr_str_t text, bool thought, const char *sig)
{
    int rc = yr_buf_append_str(b, YR_STR("{\"text\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, text);
    if (rc == 0 && thought)
        rc = yr_buf_append_str(b, YR_STR(",\"thought\":true"));
    if (rc == 0 && sig != NULL)
        rc = yr_buf_printf(b, ",\"thoughtSignature\":\"%s\"", sig);
    if (rc == 0)
        rc = yr_buf_append(b, "}", 1);
    return rc;
}

/* {"functionCall":{"name","args"(,"id")}(,"thoughtSignature")}: an id only
 * when the script gave one (the API often sends none). */
static int append_call_part(sim_exchange_t *x, yr_buf_t *b, size_t i)
{
    const sim_call_t *c = &x->reply.calls[i];
    json_t *args = json_loadb(c->arguments.ptr, c->arguments.len, 0, NULL);
    if (!json_is_object(args)) {
        json_decref(args);
        args = json_object();
    }
    json_t *fc = json_pack("{s:s%, s:o}", "name", c->name.ptr, c->name.len, "args", args);
    const json_t *scripted_id = json_object_get(json_array_get(x->beh.tool_calls, i), "id");
    if (fc != NULL && scripted_id != NULL)
        json_object_set(fc, "id", (json_t *)scripted_id);
    json_t *part = fc ? json_pack("{s:o}", "functionCall", fc) : NULL;
    if (part != NULL && i == 0 && signs(x)) {
        char sig[49];
        signature(x, 0, sig);
        json_object_set_new(part, "thoughtSignature", json_string(sig));
    }
    char *s = part ? json_dumps(part, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(part);
    if (s == NULL)
        return -ENOMEM;
    int rc = yr_buf_append_str(b, yr_str(s));
    free(s);
    return rc;
}

/* The envelope: {"candidates":[{"content":{"parts":[PARTS],"role":"model"}
 * (,"finishReason")," index":0}],"usageMetadata",…}. The caller writes the
 * parts between open and close. */
static int open_response(yr_buf_t *b)
{
    return yr_buf_append_str(b, YR_STR("{\"candidates\":[{\"content\":{\"parts\":["));
}

static int close_response(sim_exchange_t *x, yr_buf_t *b, yr_str_t finish, uint64_t cands,
                          uint64_t thoughts)
{
    char rid[24];
    response_id(x, rid);
    int rc = yr_buf_append_str(b, YR_STR("],\"role\":\"model\"}"));
    if (rc == 0 && finish.len > 0) {
        rc = yr_buf_append_str(b, YR_STR(",\"finishReason\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(b, finish);
    }
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"index\":0}],\"usageMetadata\":"));
    if (rc == 0)
        rc = append_usage(x, b, cands, thoughts);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"modelVersion\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, x->prompt.model);
    if (rc == 0)
        rc = yr_buf_printf(b, ",\"responseId\":\"%s\"}", rid);
    return rc;
}

/* A prompt the safety filter refused: no candidates at all. */
static int render_blocked(sim_exchange_t *x, yr_buf_t *b)
{
    char rid[24];
    response_id(x, rid);
    int rc = yr_buf_append_str(b, YR_STR("{\"promptFeedback\":{\"blockReason\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, x->beh.block_reason);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"safetyRatings\":[{\"category\":"
                                         "\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":"
                                         "\"HIGH\",\"blocked\":true}]},\"usageMetadata\":"));
    if (rc == 0)
        rc = append_usage(x, b, 0, 0);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"modelVersion\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, x->prompt.model);
    if (rc == 0)
        rc = yr_buf_printf(b, ",\"responseId\":\"%s\"}", rid);
    return rc;
}

static uint64_t answer_tokens(const sim_exchange_t *x)
{
    return x->beh.empty_candidate ? 0 : x->reply.completion_tokens;
}

static int gm_render(sim_exchange_t *x, yr_buf_t *b)
{
    const sim_reply_t *r = &x->reply;
    if (method_of(x->req, NULL) == GM_COUNT)
        return yr_buf_printf(b, "{\"totalTokens\":%llu,\"promptTokensDetails\":[{\"modality\":"
                                "\"TEXT\",\"tokenCount\":%llu}]}",
                             (unsigned long long)r->prompt_tokens,
                             (unsigned long long)r->prompt_tokens);
    if (x->beh.block_reason.len > 0)
        return render_blocked(x, b);
    if (x->beh.empty_candidate) { /* {"content":{"role":"model"}}: no parts at all */
        char rid[24];
        response_id(x, rid);
        int rc = yr_buf_append_str(b, YR_STR("{\"candidates\":[{\"content\":{\"role\":\"model\"},"
                                             "\"finishReason\":\"MAX_TOKENS\",\"index\":0}],"
                                             "\"usageMetadata\":"));
        if (rc == 0)
            rc = append_usage(x, b, 0, thought_tokens(x));
        if (rc == 0)
            rc = yr_buf_append_str(b, YR_STR(",\"modelVersion\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(b, x->prompt.model);
        if (rc == 0)
            rc = yr_buf_printf(b, ",\"responseId\":\"%s\"}", rid);
        return rc;
    }
    int rc = open_response(b);
    const char *sep = "";
    if (rc == 0 && include_thoughts(x)) {
        rc = append_text_part(b, thinking_text(x), true, NULL);
        sep = ",";
    }
    char sig[49];
    signature(x, 0, sig);
    if (rc == 0 && r->has_text) {
        rc = yr_buf_append_str(b, yr_str(sep));
        if (rc == 0) /* Gemini 3 signs the last part of an answer without calls */
            rc = append_text_part(b, r->text, false,
                                  r->ncalls == 0 && is_gemini3(x->prompt.model) ? sig : NULL);
        sep = ",";
    }
    for (size_t i = 0; rc == 0 && i < r->ncalls; i++) {
        rc = yr_buf_append_str(b, yr_str(sep));
        if (rc == 0)
            rc = append_call_part(x, b, i);
        sep = ",";
    }
    if (rc == 0)
        rc = close_response(x, b, finish_reason(x), answer_tokens(x), thought_tokens(x));
    return rc;
}

/* ---- streaming -------------------------------------------------------------------------------- */

enum gm_phase { GS_THOUGHTS, GS_TEXT, GS_CALLS, GS_FINAL, GS_DONE };

typedef struct {
    enum gm_phase phase;
    bool init;
    sim_pieces_t pieces;
    yr_str_t thinking;
    size_t round, call;
    size_t text_left;   /* text pieces still to send */
    uint64_t words;     /* answer words sent (the cumulative candidatesTokenCount) */
    uint64_t thoughts;  /* thinking words sent */
} gm_stream_t;

/* Gemini 3 sends the finishReason in an event of its own; older models put
 * it on the last content event. */
static bool separate_finish(const sim_exchange_t *x)
{
    return is_gemini3(x->prompt.model) || x->reply.ncalls > 0;
}

static int frame_open(yr_buf_t *b)
{
    return yr_buf_append_str(b, YR_STR("data: "));
}

static int frame_close(yr_buf_t *b)
{
    return yr_buf_append_str(b, YR_STR("\r\n\r\n"));
}

static int stream_error(sim_exchange_t *x, yr_buf_t *b)
{
    sim_error_t e = {0};
    const sim_behaviour_t *beh = &x->beh;
    int status = 503;
    yr_str_t st = beh->stream_error;
    if (yr_str_eq(st, YR_STR("RESOURCE_EXHAUSTED")))
        status = 429;
    else if (yr_str_eq(st, YR_STR("INTERNAL")))
        status = 500;
    else if (yr_str_eq(st, YR_STR("INVALID_ARGUMENT")))
        status = 400;
    gm_error_defaults(status, &e);
    e.type = st;
    e.retry_delay = beh->retry_delay;
    e.quota_id = beh->quota_id;
    if (beh->error_message.ptr != NULL)
        e.message = beh->error_message;
    int rc = frame_open(b);
    if (rc == 0)
        rc = gm_render_error(&e, b);
    if (rc == 0)
        rc = frame_close(b);
    return rc;
}

/* The last event: a finishReason alone, or a blocked prompt. */
static int event_final(sim_exchange_t *x, gm_stream_t *st, yr_buf_t *b)
{
    int rc = frame_open(b);
    if (rc == 0 && x->beh.block_reason.len > 0) {
        rc = render_blocked(x, b);
    } else if (rc == 0 && x->beh.empty_candidate) {
        rc = gm_render(x, b);
    } else if (rc == 0) {
        rc = open_response(b);
        if (rc == 0)
            rc = yr_buf_append_str(b, YR_STR("{\"text\":\"\"}"));
        if (rc == 0)
            rc = close_response(x, b, finish_reason(x), answer_tokens(x), st->thoughts);
    }
    if (rc == 0)
        rc = frame_close(b);
    return rc;
}

static int gm_stream_next(sim_exchange_t *x, yr_buf_t *b)
{
    gm_stream_t *st = x->dstate;
    const sim_reply_t *r = &x->reply;
    const sim_behaviour_t *beh = &x->beh;
    yr_str_t piece;
    if (beh->stream_error.len > 0 &&
        x->events >= (uint64_t)(beh->stream_error_after >= 0 ? beh->stream_error_after : 1))
        return stream_error(x, b) < 0 ? -ENOMEM : SIM_EVENT_LAST;
    if (!st->init) {
        st->init = true;
        st->thinking = thinking_text(x);
        sim_pieces_init(&st->pieces, st->thinking, 0);
        st->phase = include_thoughts(x) ? GS_THOUGHTS : GS_TEXT;
        if (!include_thoughts(x))
            st->thoughts = thought_tokens(x); /* thinking that is not shown still counts */
        if (beh->block_reason.len > 0)
            st->phase = GS_FINAL;
        if (st->phase == GS_TEXT)
            sim_pieces_init(&st->pieces, r->text, r->chunks);
        st->text_left = r->has_text && !beh->empty_candidate
                            ? sim_pieces_count(r->text, r->chunks) * r->repeat
                            : 0;
    }
    int rc;
    for (;;) {
        switch (st->phase) {
        case GS_THOUGHTS:
            if (sim_pieces_next(&st->pieces, &piece)) {
                st->thoughts += sim_count_words(piece);
                rc = frame_open(b);
                if (rc == 0)
                    rc = open_response(b);
                if (rc == 0)
                    rc = append_text_part(b, piece, true, NULL);
                if (rc == 0)
                    rc = close_response(x, b, YR_STR_NULL, st->words, st->thoughts);
                if (rc == 0)
                    rc = frame_close(b);
                return rc < 0 ? -ENOMEM : SIM_EVENT;
            }
            st->thoughts = thought_tokens(x);
            st->phase = GS_TEXT;
            sim_pieces_init(&st->pieces, r->text, r->chunks);
            break;
        case GS_TEXT: {
            if (st->text_left == 0) {
                st->phase = r->ncalls > 0 ? GS_CALLS : GS_FINAL;
                break;
            }
            if (!sim_pieces_next(&st->pieces, &piece)) {
                st->round++;
                sim_pieces_init(&st->pieces, r->text, r->chunks);
                continue;
            }
            st->text_left--;
            st->words += sim_count_words(piece);
            bool last = st->text_left == 0 && !separate_finish(x);
            if (last)
                st->words = answer_tokens(x);
            rc = frame_open(b);
            if (rc == 0)
                rc = open_response(b);
            if (rc == 0)
                rc = append_text_part(b, piece, false, NULL);
            if (rc == 0)
                rc = close_response(x, b, last ? finish_reason(x) : YR_STR_NULL, st->words,
                                    st->thoughts);
            if (rc == 0)
                rc = frame_close(b);
            if (last)
                st->phase = GS_DONE;
            return rc < 0 ? -ENOMEM : last ? SIM_EVENT_LAST : SIM_EVENT;
        }
        case GS_CALLS:
            if (st->call >= r->ncalls) {
                st->phase = GS_FINAL;
                break;
            }
            /* one call per event, each at parts[0] */
            rc = frame_open(b);
            if (rc == 0)
                rc = open_response(b);
            if (rc == 0)
                rc = append_call_part(x, b, st->call);
            st->call++;
            if (rc == 0)
                rc = close_response(x, b, YR_STR_NULL, st->words, st->thoughts);
            if (rc == 0)
                rc = frame_close(b);
            return rc < 0 ? -ENOMEM : SIM_EVENT;
        case GS_FINAL:
            st->phase = GS_DONE;
            return event_final(x, st, b) < 0 ? -ENOMEM : SIM_EVENT_LAST;
        case GS_DONE: return SIM_EVENT_LAST;
        }
    }
}

static size_t gm_stream_events(const sim_exchange_t *x)
{
    const sim_reply_t *r = &x->reply;
    if (x->beh.block_reason.len > 0)
        return 1;
    size_t n = r->ncalls + (separate_finish(x) || !r->has_text ? 1 : 0);
    if (r->has_text && !x->beh.empty_candidate)
        n += sim_pieces_count(r->text, r->chunks) * r->repeat;
    return n;
}

const sim_dialect_t sim_dialect_gemini = {
    .name = "gemini",
    .route = gm_route,
    .check_auth = gm_check_auth,
    .parse = gm_parse,
    .error_defaults = gm_error_defaults,
    .render_error = gm_render_error,
    .render = gm_render,
    .stream_state_size = sizeof(gm_stream_t),
    .stream_next = gm_stream_next,
    .stream_events = gm_stream_events,
    .stream_content_type = YR_STR("text/event-stream"),
    .malformed_event = YR_STR("data: {not json\r\n\r\n"),
    .render_models = NULL,
};
