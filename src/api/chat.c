#include "api/chat.h"

#include "api/json_tok.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(yr_api_error_t *err, yr_err_t kind, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(yr_api_error_t *err, yr_err_t kind, const char *param, const char *fmt, ...)
{
    err->err = kind;
    snprintf(err->param, sizeof(err->param), "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const char *const known_roles[] = {"system", "developer", "user",
                                          "assistant", "tool", "function"};


static int check_content_part(const yr_jdoc_t *d, int part, size_t i, size_t j, unsigned *uses,
                              yr_api_error_t *err)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu]", i, j);
    if (yr_json_type(d, part) != YR_JT_OBJECT)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s must be an object", param);
    int type = yr_json_get(d, part, "type");
    if (yr_json_type(d, type) != YR_JT_STRING)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s.type must be a string", param);
    if (yr_json_str_eq(d, type, "text") &&
        yr_json_type(d, yr_json_get(d, part, "text")) != YR_JT_STRING)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s.text must be a string", param);
    if (yr_json_str_eq(d, type, "image_url")) {
        *uses |= YR_USES_IMAGES;
        int iu = yr_json_get(d, part, "image_url");
        int url = yr_json_type(d, iu) == YR_JT_OBJECT ? yr_json_get(d, iu, "url") : iu;
        if (yr_json_type(d, url) != YR_JT_STRING)
            return fail(err, YR_E_INVALID_REQUEST, param, "%s.image_url.url must be a string",
                        param);
    }
    return 0;
}

/* Checks message i, and adds what it uses (images, tool results) to *uses. */
static int check_message(const yr_jdoc_t *d, int msg, size_t i, unsigned *uses,
                         yr_api_error_t *err)
{
    char param[64];
    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (yr_json_type(d, msg) != YR_JT_OBJECT)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s must be an object", param);
    int role = yr_json_get(d, msg, "role");
    snprintf(param, sizeof(param), "messages[%zu].role", i);
    if (yr_json_type(d, role) != YR_JT_STRING)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s is required and must be a string",
                    param);
    bool known = false;
    for (size_t k = 0; !known && k < sizeof(known_roles) / sizeof(known_roles[0]); k++)
        known = yr_json_str_eq(d, role, known_roles[k]);
    if (yr_json_str_eq(d, role, "tool"))
        *uses |= YR_USES_TOOLS;
    if (!known) {
        yr_str_t r = yr_json_raw(d, role);
        return fail(err, YR_E_INVALID_REQUEST, param,
                    "%s '%.*s' is not one of system, developer, user, assistant, tool", param,
                    (int)(r.len > 40 ? 40 : r.len), r.ptr);
    }
    int content = yr_json_get(d, msg, "content");
    snprintf(param, sizeof(param), "messages[%zu].content", i);
    if (content < 0 || yr_json_type(d, content) == YR_JT_NULL) {
        if (!yr_json_str_eq(d, role, "assistant"))
            return fail(err, YR_E_INVALID_REQUEST, param, "%s is required", param);
        return 0;
    }
    if (yr_json_type(d, content) == YR_JT_STRING)
        return 0;
    if (yr_json_type(d, content) != YR_JT_ARRAY)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s must be a string or an array", param);
    int part = content + 1;
    for (uint32_t j = 0; j < d->toks[content].size; j++) {
        int rc = check_content_part(d, part, i, j, uses, err);
        if (rc < 0)
            return rc;
        part = (int)d->toks[part].next;
    }
    return 0;
}

static int check_types(const yr_jdoc_t *d, yr_api_error_t *err)
{
    enum { NUMBER = 100, BOOLEAN };
    static const struct {
        const char *key;
        int type; /* yr_jtype_t, NUMBER (integer or real) or BOOLEAN */
    } fields[] = {
        {"stream", BOOLEAN},       {"temperature", NUMBER},       {"top_p", NUMBER},
        {"max_tokens", YR_JT_NUMBER}, {"max_completion_tokens", YR_JT_NUMBER},
        {"n", YR_JT_NUMBER},       {"tools", YR_JT_ARRAY},        {"stream_options", YR_JT_OBJECT},
        {"presence_penalty", NUMBER}, {"frequency_penalty", NUMBER}, {"seed", YR_JT_NUMBER},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        int v = yr_json_get(d, 0, fields[i].key);
        int t = yr_json_type(d, v);
        if (v < 0 || t == YR_JT_NULL)
            continue;
        bool ok;
        switch (fields[i].type) {
        case NUMBER: ok = t == YR_JT_NUMBER; break;
        case BOOLEAN: ok = t == YR_JT_TRUE || t == YR_JT_FALSE; break;
        case YR_JT_NUMBER: ok = t == YR_JT_NUMBER && d->toks[v].integer; break; /* integers */
        default: ok = t == fields[i].type; break;
        }
        if (!ok)
            return fail(err, YR_E_INVALID_REQUEST, fields[i].key, "'%s' has the wrong type",
                        fields[i].key);
    }
    int64_t v;
    if (yr_json_int(d, yr_json_get(d, 0, "max_tokens"), &v) && v < 1)
        return fail(err, YR_E_INVALID_REQUEST, "max_tokens", "'max_tokens' must be at least 1");
    int n = yr_json_get(d, 0, "n");
    if (n >= 0 && yr_json_type(d, n) == YR_JT_NUMBER && (!yr_json_int(d, n, &v) || v < 1 || v > 128))
        return fail(err, YR_E_INVALID_REQUEST, "n", "'n' must be between 1 and 128");
    return 0;
}

/* What the request's top level uses that a model may lack (the messages'
 * images and tool results were seen while checking them). */
static unsigned scan_uses(const yr_jdoc_t *d, yr_chat_req_t *out)
{
    unsigned uses = 0;
    int tools = yr_json_get(d, 0, "tools");
    if (yr_json_type(d, tools) == YR_JT_ARRAY && d->toks[tools].size > 0)
        uses |= YR_USES_TOOLS;
    int rf = yr_json_get(d, 0, "response_format");
    if (yr_json_type(d, rf) == YR_JT_OBJECT &&
        yr_json_str_eq(d, yr_json_get(d, rf, "type"), "json_schema"))
        uses |= YR_USES_JSON_SCHEMA;
    int re = yr_json_get(d, 0, "reasoning_effort");
    if (re >= 0 && yr_json_type(d, re) != YR_JT_NULL)
        uses |= YR_USES_REASONING;
    if (yr_json_type(d, re) == YR_JT_STRING && !d->toks[re].escaped)
        out->effort = yr_json_raw(d, re);
    return uses;
}

static int check_request(yr_chat_req_t *out, const yr_jdoc_t *d, yr_api_error_t *err)
{
    if (yr_json_type(d, 0) != YR_JT_OBJECT)
        return fail(err, YR_E_INVALID_REQUEST, NULL, "the request body must be a JSON object");
    int model = yr_json_get(d, 0, "model");
    if (yr_json_type(d, model) != YR_JT_STRING || d->toks[model].end == d->toks[model].start)
        return fail(err, YR_E_INVALID_REQUEST, "model",
                    model >= 0 ? "'model' must be a non-empty string"
                               : "you must provide a model parameter");
    int messages = yr_json_get(d, 0, "messages");
    if (yr_json_type(d, messages) != YR_JT_ARRAY)
        return fail(err, YR_E_INVALID_REQUEST, "messages",
                    messages >= 0 ? "'messages' must be an array"
                                  : "'messages' is a required property");
    if (d->toks[messages].size == 0)
        return fail(err, YR_E_INVALID_REQUEST, "messages",
                    "'messages' must contain at least one message");
    int m = messages + 1;
    for (uint32_t i = 0; i < d->toks[messages].size; i++) {
        int rc = check_message(d, m, i, &out->uses, err);
        if (rc < 0)
            return rc;
        m = (int)d->toks[m].next;
    }
    int rc = check_types(d, err);
    if (rc < 0)
        return rc;
    if (d->toks[model].escaped) {
        if (yr_json_str_decode(d, model, &out->model_buf) < 0)
            return fail(err, YR_E_INVALID_REQUEST, "model", "'model' is too long");
        out->model = (yr_str_t){out->model_buf.data, out->model_buf.len};
    } else {
        out->model = yr_json_raw(d, model);
    }
    out->stream = yr_json_type(d, yr_json_get(d, 0, "stream")) == YR_JT_TRUE;
    int so = yr_json_get(d, 0, "stream_options");
    out->include_usage = yr_json_type(d, yr_json_get(d, so, "include_usage")) == YR_JT_TRUE;
    out->max_tokens = -1;
    if (!yr_json_int(d, yr_json_get(d, 0, "max_completion_tokens"), &out->max_tokens) &&
        !yr_json_int(d, yr_json_get(d, 0, "max_tokens"), &out->max_tokens))
        out->max_tokens = -1;
    out->uses |= scan_uses(d, out);
    if (!yr_json_int(d, yr_json_get(d, 0, "max_tokens"), &out->max_tokens_param))
        out->max_tokens_param = -1;
    if (!yr_json_int(d, yr_json_get(d, 0, "max_completion_tokens"),
                     &out->max_completion_tokens_param))
        out->max_completion_tokens_param = -1;
    return 0;
}

int yr_chat_parse(const char *body, size_t len, yr_chat_req_t *out, yr_api_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->body = body;
    out->len = len;
    yr_buf_init(&out->model_buf, 4096);
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, body, len, true);
    if (rc == -EINVAL)
        rc = fail(err, YR_E_INVALID_JSON, NULL,
                  "We could not parse the JSON body of your request: %s (at byte %zu)", d.err,
                  d.err_off);
    else if (rc == -ENOMEM)
        (void)fail(err, YR_E_INTERNAL, NULL, "out of memory reading the request");
    else if (rc < 0)
        rc = fail(err, YR_E_INVALID_JSON, NULL, "the JSON body is too complex: %s",
                  d.err ? d.err : "too many values");
    else
        rc = check_request(out, &d, err);
    out->nvalues = d.ntoks;
    yr_json_free(&d);
    return rc;
}

void yr_chat_free(yr_chat_req_t *req)
{
    json_decref(req->root);
    req->root = NULL;
    yr_buf_free(&req->model_buf);
}

int yr_chat_load_root(yr_chat_req_t *req)
{
    if (req->root != NULL)
        return 0;
    return yr_json_load(req->body, req->len, JSON_REJECT_DUPLICATES, &req->root);
}

/* ---- byte-preserving rewrite ------------------------------------------------ */

static size_t skip_ws(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* p[i] is '"': returns the index just past the closing quote, or n. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return n;
}

/* Skips one JSON value starting at p[i] (already validated text). */
static size_t skip_value(const char *p, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (p[i] == '"')
        return skip_string(p, i, n);
    if (p[i] == '{' || p[i] == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            char c = p[i];
            if (c == '"') {
                i = skip_string(p, i, n) - 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return n;
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\n' &&
           p[i] != '\r' && p[i] != '\t')
        i++;
    return i;
}

int yr_json_replace_top_string(const char *p, size_t n, const char *key, yr_str_t value,
                               yr_buf_t *out)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(p, 0, n);
    if (i >= n || p[i] != '{')
        return -EINVAL;
    i++;
    while (i < n) {
        i = skip_ws(p, i, n);
        if (i >= n || p[i] == '}')
            break;
        if (p[i] != '"')
            return -EINVAL;
        size_t kstart = i + 1;
        size_t kend = skip_string(p, i, n); /* past the closing quote */
        i = skip_ws(p, kend, n);
        if (i >= n || p[i] != ':')
            return -EINVAL;
        i = skip_ws(p, i + 1, n);
        size_t vstart = i;
        size_t vend = skip_value(p, i, n);
        /* Keys with escapes never match a plain key; fine for "model". */
        if (kend - 1 - kstart == klen && memcmp(p + kstart, key, klen) == 0) {
            int rc = yr_buf_reserve(out, n + value.len + 2);
            if (rc == 0)
                rc = yr_buf_append(out, p, vstart);
            if (rc == 0)
                rc = yr_buf_append_json_str(out, value);
            if (rc == 0)
                rc = yr_buf_append(out, p + vend, n - vend);
            return rc;
        }
        i = skip_ws(p, vend, n);
        if (i < n && p[i] == ',')
            i++;
    }
    return -ENOENT;
}

int yr_json_edit_top(const char *p, size_t n, const char *const *keys, const yr_str_t *values,
                     size_t nkeys, yr_buf_t *out)
{
    size_t i = skip_ws(p, 0, n);
    if (i >= n || p[i] != '{')
        return -EINVAL;
    int rc = yr_buf_reserve(out, n + 64);
    if (rc == 0)
        rc = yr_buf_append(out, "{", 1);
    bool first = true;
    for (i++; rc == 0 && i < n;) {
        i = skip_ws(p, i, n);
        if (i >= n || p[i] == '}')
            break;
        if (p[i] != '"')
            return -EINVAL;
        size_t kstart = i, kend = skip_string(p, i, n);
        i = skip_ws(p, kend, n);
        if (i >= n || p[i] != ':')
            return -EINVAL;
        size_t vstart = skip_ws(p, i + 1, n), vend = skip_value(p, vstart, n);
        size_t k = 0; /* keys with escapes never match a plain key */
        while (k < nkeys && !(kend - kstart - 2 == strlen(keys[k]) &&
                              memcmp(p + kstart + 1, keys[k], kend - kstart - 2) == 0))
            k++;
        if (k == nkeys || values[k].ptr != NULL) {
            if (!first)
                rc = yr_buf_append(out, ",", 1);
            if (rc == 0)
                rc = yr_buf_append(out, p + kstart, (k == nkeys ? vend : vstart) - kstart);
            if (rc == 0 && k < nkeys)
                rc = yr_buf_append(out, values[k].ptr, values[k].len);
            first = false;
        }
        i = skip_ws(p, vend, n);
        if (i < n && p[i] == ',')
            i++;
    }
    return rc == 0 ? yr_buf_append(out, "}", 1) : rc;
}
