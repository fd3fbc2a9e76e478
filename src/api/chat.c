#include "api/chat.h"

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

static bool role_known(const char *role)
{
    for (size_t i = 0; i < sizeof(known_roles) / sizeof(known_roles[0]); i++)
        if (strcmp(role, known_roles[i]) == 0)
            return true;
    return false;
}

static int check_content_part(json_t *part, size_t i, size_t j, yr_api_error_t *err)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu]", i, j);
    if (!json_is_object(part))
        return fail(err, YR_E_INVALID_REQUEST, param, "%s must be an object", param);
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type == NULL)
        return fail(err, YR_E_INVALID_REQUEST, param, "%s.type must be a string", param);
    if (strcmp(type, "text") == 0 && !json_is_string(json_object_get(part, "text")))
        return fail(err, YR_E_INVALID_REQUEST, param, "%s.text must be a string", param);
    if (strcmp(type, "image_url") == 0) {
        json_t *iu = json_object_get(part, "image_url");
        json_t *url = json_is_object(iu) ? json_object_get(iu, "url") : iu;
        if (!json_is_string(url))
            return fail(err, YR_E_INVALID_REQUEST, param, "%s.image_url.url must be a string",
                        param);
    }
    return 0;
}

static int check_message(json_t *msg, size_t i, yr_api_error_t *err)
{
    char param[64];
    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (!json_is_object(msg))
        return fail(err, YR_E_INVALID_REQUEST, param, "%s must be an object", param);
    json_t *role = json_object_get(msg, "role");
    snprintf(param, sizeof(param), "messages[%zu].role", i);
    if (!json_is_string(role))
        return fail(err, YR_E_INVALID_REQUEST, param, "%s is required and must be a string",
                    param);
    if (!role_known(json_string_value(role)))
        return fail(err, YR_E_INVALID_REQUEST, param,
                    "%s '%.40s' is not one of system, developer, user, assistant, tool", param,
                    json_string_value(role));
    json_t *content = json_object_get(msg, "content");
    snprintf(param, sizeof(param), "messages[%zu].content", i);
    bool is_assistant = strcmp(json_string_value(role), "assistant") == 0;
    if (content == NULL || json_is_null(content)) {
        if (!is_assistant)
            return fail(err, YR_E_INVALID_REQUEST, param, "%s is required", param);
        return 0;
    }
    if (json_is_string(content))
        return 0;
    if (!json_is_array(content))
        return fail(err, YR_E_INVALID_REQUEST, param, "%s must be a string or an array", param);
    size_t j;
    json_t *part;
    json_array_foreach(content, j, part) {
        int rc = check_content_part(part, i, j, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int check_types(json_t *root, yr_api_error_t *err)
{
    static const struct {
        const char *key;
        int type; /* JSON_* or -1 = number (integer or real) */
    } fields[] = {
        {"stream", JSON_TRUE},     {"temperature", -1},       {"top_p", -1},
        {"max_tokens", JSON_INTEGER}, {"max_completion_tokens", JSON_INTEGER},
        {"n", JSON_INTEGER},       {"tools", JSON_ARRAY},     {"stream_options", JSON_OBJECT},
        {"presence_penalty", -1},  {"frequency_penalty", -1}, {"seed", JSON_INTEGER},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(root, fields[i].key);
        if (v == NULL || json_is_null(v))
            continue;
        bool ok;
        switch (fields[i].type) {
        case -1: ok = json_is_number(v); break;
        case JSON_TRUE: ok = json_is_boolean(v); break;
        default: ok = (int)json_typeof(v) == fields[i].type; break;
        }
        if (!ok)
            return fail(err, YR_E_INVALID_REQUEST, fields[i].key, "'%s' has the wrong type",
                        fields[i].key);
    }
    json_t *mt = json_object_get(root, "max_tokens");
    if (json_is_integer(mt) && json_integer_value(mt) < 1)
        return fail(err, YR_E_INVALID_REQUEST, "max_tokens", "'max_tokens' must be at least 1");
    json_t *n = json_object_get(root, "n");
    if (json_is_integer(n) && (json_integer_value(n) < 1 || json_integer_value(n) > 128))
        return fail(err, YR_E_INVALID_REQUEST, "n", "'n' must be between 1 and 128");
    return 0;
}

int yr_chat_parse(const char *body, size_t len, yr_chat_req_t *out, yr_api_error_t *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(err, YR_E_INVALID_JSON, NULL,
                    "We could not parse the JSON body of your request: %s (line %d, column %d)",
                    jerr.text, jerr.line, jerr.column);
    int rc;
    if (!json_is_object(root)) {
        rc = fail(err, YR_E_INVALID_REQUEST, NULL, "the request body must be a JSON object");
        goto out;
    }
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        rc = fail(err, YR_E_INVALID_REQUEST, "model",
                  model ? "'model' must be a non-empty string"
                        : "you must provide a model parameter");
        goto out;
    }
    json_t *messages = json_object_get(root, "messages");
    if (!json_is_array(messages)) {
        rc = fail(err, YR_E_INVALID_REQUEST, "messages",
                  messages ? "'messages' must be an array" : "'messages' is a required property");
        goto out;
    }
    if (json_array_size(messages) == 0) {
        rc = fail(err, YR_E_INVALID_REQUEST, "messages",
                  "'messages' must contain at least one message");
        goto out;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if ((rc = check_message(m, i, err)) < 0)
            goto out;
    }
    if ((rc = check_types(root, err)) < 0)
        goto out;
    out->root = root;
    out->model = (yr_str_t){json_string_value(model), json_string_length(model)};
    out->stream = json_is_true(json_object_get(root, "stream"));
    json_t *so = json_object_get(root, "stream_options");
    out->include_usage = json_is_true(json_object_get(so, "include_usage"));
    return 0;
out:
    json_decref(root);
    return rc;
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
