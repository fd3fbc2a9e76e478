/* The shared pieces of the translating dialects (translate.h). */
#include "providers/translate.h"

#include "api/images.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int yr_tr_reject(yr_call_ctx_t *cx, const char *param, const char *fmt, ...)
{
    cx->error.err = YR_E_INVALID_REQUEST;
    snprintf(cx->error.param, sizeof(cx->error.param), "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cx->error.message, sizeof(cx->error.message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

const char *yr_tr_vendor(const yr_call_ctx_t *cx, const char *dflt)
{
    return cx->route && cx->route->provider && cx->route->provider->name ? cx->route->provider->name
                                                                         : dflt;
}

int yr_tr_set_new(json_t *obj, const char *key, json_t *v)
{
    if (v == NULL)
        return -ENOMEM;
    return json_object_set_new(obj, key, v) == 0 ? 0 : -ENOMEM;
}

int yr_tr_append_new(json_t *arr, json_t *v)
{
    if (v == NULL)
        return -ENOMEM;
    return json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM;
}


int yr_tr_push_turn(json_t *turns, json_t **cur, const char **cur_role, const char *role,
                    const char *key, json_t *blocks)
{
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return 0;
    }
    if (*cur != NULL && strcmp(*cur_role, role) == 0) {
        int rc = json_array_extend(*cur, blocks) == 0 ? 0 : -ENOMEM;
        json_decref(blocks);
        return rc;
    }
    json_t *m = json_object();
    if (m == NULL || yr_tr_set_new(m, "role", json_string(role)) < 0 ||
        json_object_set(m, key, blocks) < 0) {
        json_decref(m);
        json_decref(blocks);
        return -ENOMEM;
    }
    *cur = blocks;
    json_decref(blocks); /* m holds it */
    *cur_role = role;
    return yr_tr_append_new(turns, m);
}

bool yr_tr_str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

yr_str_t yr_tr_jslice(const json_t *v)
{
    return json_is_string(v) ? (yr_str_t){json_string_value(v), json_string_length(v)}
                             : YR_STR_NULL;
}

int64_t yr_tr_int_field(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

bool yr_tr_has_prefix_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

int yr_tr_parse_arguments(yr_call_ctx_t *cx, const json_t *args, const char *param, json_t **out)
{
    if (args == NULL || json_is_null(args)) {
        *out = json_object();
        return *out ? 0 : -ENOMEM;
    }
    if (json_is_object(args)) { /* some clients send the object itself */
        *out = json_incref((json_t *)args);
        return 0;
    }
    if (!json_is_string(args))
        return yr_tr_reject(cx, param, "%s must be a string of JSON", param);
    yr_str_t s = yr_str_trim((yr_str_t){json_string_value(args), json_string_length(args)});
    if (s.len == 0) {
        *out = json_object();
        return *out ? 0 : -ENOMEM;
    }
    json_error_t jerr;
    json_t *v = json_loadb(s.ptr, s.len, 0, &jerr);
    if (!json_is_object(v)) {
        json_decref(v);
        return yr_tr_reject(cx, param,
                            "%s must be a JSON object (vendor '%s' needs tool input as an "
                            "object)%s%s",
                            param, yr_tr_vendor(cx, "?"), v == NULL ? ": " : "",
                            v == NULL ? jerr.text : "");
    }
    *out = v;
    return 0;
}

int yr_tr_data_url(yr_call_ctx_t *cx, yr_str_t url, const char *param,
                   const char *const *accepted, const char *accepted_text, char *media,
                   size_t media_size, yr_str_t *data)
{
    yr_str_t mt, b64;
    if (!yr_data_url_parse(url, &mt, &b64)) {
        const char *p = url.ptr + 5, *end = url.ptr + url.len;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (comma == NULL)
            return yr_tr_reject(cx, param, "%s is not a valid data URL (no ',' before the data)",
                                param);
        if (comma - p < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
            return yr_tr_reject(cx, param,
                                "%s must be a base64 data URL (data:image/png;base64,...)", param);
        return yr_tr_reject(cx, param, "%s has no valid media type or no valid base64 data",
                            param);
    }
    if (mt.len == 0 || mt.len >= media_size)
        return yr_tr_reject(cx, param, "%s has no valid media type", param);
    for (size_t i = 0; i < mt.len; i++)
        media[i] = (char)((mt.ptr[i] >= 'A' && mt.ptr[i] <= 'Z') ? mt.ptr[i] - 'A' + 'a' : mt.ptr[i]);
    media[mt.len] = '\0';
    if (strcmp(media, "image/jpg") == 0 && media_size > sizeof("image/jpeg")) /* a common misspelling */
        memcpy(media, "image/jpeg", sizeof("image/jpeg"));
    for (size_t i = 0; accepted[i] != NULL; i++) {
        if (strcmp(media, accepted[i]) == 0) {
            *data = b64;
            return 0;
        }
    }
    return yr_tr_reject(cx, param, "image type '%s' is not supported by vendor '%s' (it accepts %s)",
                        media, yr_tr_vendor(cx, "?"), accepted_text);
}

const json_t *yr_tr_find_tool_call(const json_t *messages, size_t mi, const char *tool_call_id)
{
    for (size_t i = mi; i-- > 0;) {
        const json_t *m = json_array_get(messages, i);
        if (!yr_tr_str_is(json_object_get(m, "role"), "assistant"))
            continue;
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc)
        {
            if (yr_tr_str_is(json_object_get(tc, "id"), tool_call_id))
                return tc;
        }
    }
    return NULL;
}

typedef struct {
    yr_buf_t *buf;
    int rc;
} dump_ctx_t;

static int on_dump(const char *p, size_t n, void *data)
{
    dump_ctx_t *d = data;
    if (d->rc == 0) /* sticky: jansson may call again after a failure */
        d->rc = yr_buf_append(d->buf, p, n);
    return d->rc == 0 ? 0 : -1;
}

int yr_tr_dump(const json_t *v, yr_buf_t *buf)
{
    dump_ctx_t d = {.buf = buf};
    /* jansson 2.14 does not stop at every failure of the callback: it may
     * go on calling it and return 0 (found by tests/torture: one failed
     * append left a hole in the middle of the body). The callback's sticky
     * result decides. */
    int rc = json_dump_callback(v, on_dump, &d, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (d.rc < 0)
        return d.rc;
    return rc < 0 ? -ENOMEM : 0;
}

json_t *yr_tr_object_schema(const json_t *params)
{
    if (!json_is_object(params))
        return json_pack("{s:s, s:{}}", "type", "object", "properties");
    if (json_object_get(params, "type") != NULL)
        return json_incref((json_t *)params);
    json_t *copy = json_object();
    if (copy == NULL || yr_tr_set_new(copy, "type", json_string("object")) < 0 ||
        json_object_update(copy, (json_t *)params) < 0) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

/* ---- parameters ---------------------------------------------------------------------------- */

static bool present(const json_t *v)
{
    return v != NULL && !json_is_null(v);
}

static bool nonzero_number(const json_t *v)
{
    return json_is_number(v) && json_number_value(v) != 0.0;
}

int yr_tr_check_unsupported(yr_call_ctx_t *cx, const json_t *root, bool penalties)
{
    const char *vendor = yr_tr_vendor(cx, "?");
    json_t *n = json_object_get(root, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1)
        return yr_tr_reject(cx, "n",
                            "'n' > 1 is not supported by vendor '%s' (one choice per request)",
                            vendor);
    if (json_is_true(json_object_get(root, "logprobs")))
        return yr_tr_reject(cx, "logprobs", "'logprobs' is not supported by vendor '%s'", vendor);
    json_t *tl = json_object_get(root, "top_logprobs");
    if (present(tl) && !(json_is_integer(tl) && json_integer_value(tl) == 0))
        return yr_tr_reject(cx, "top_logprobs", "'top_logprobs' is not supported by vendor '%s'",
                            vendor);
    static const char *const pens[] = {"presence_penalty", "frequency_penalty"};
    for (size_t i = 0; !penalties && i < 2; i++)
        if (nonzero_number(json_object_get(root, pens[i])))
            return yr_tr_reject(cx, pens[i],
                                "'%s' is not supported by vendor '%s' (send 0 or omit it)",
                                pens[i], vendor);
    json_t *lb = json_object_get(root, "logit_bias");
    if (present(lb) && !(json_is_object(lb) && json_object_size(lb) == 0))
        return yr_tr_reject(cx, "logit_bias", "'logit_bias' is not supported by vendor '%s'",
                            vendor);
    if (present(json_object_get(root, "audio")))
        return yr_tr_reject(cx, "audio", "audio output is not supported by vendor '%s'", vendor);
    size_t i;
    json_t *mod;
    json_array_foreach(json_object_get(root, "modalities"), i, mod)
    {
        if (yr_tr_str_is(mod, "audio"))
            return yr_tr_reject(cx, "modalities", "audio output is not supported by vendor '%s'",
                                vendor);
    }
    static const char *const legacy[] = {"functions", "function_call", "web_search_options"};
    for (i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
        if (present(json_object_get(root, legacy[i])))
            return yr_tr_reject(cx, legacy[i], "'%s' is not supported by vendor '%s'%s",
                                legacy[i], vendor,
                                i < 2 ? "; use 'tools' and 'tool_choice'" : "");
    return 0;
}

int yr_tr_max_tokens(yr_call_ctx_t *cx, const json_t *root, int64_t *max)
{
    *max = 0;
    const char *key = "max_completion_tokens";
    json_t *v = json_object_get(root, key);
    if (!present(v)) {
        key = "max_tokens";
        v = json_object_get(root, key);
    }
    if (!present(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return yr_tr_reject(cx, key, "'%s' must be an integer >= 1", key);
    *max = json_integer_value(v);
    return 0;
}

int yr_tr_stop(yr_call_ctx_t *cx, const json_t *root, json_t **out)
{
    *out = NULL;
    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop)) {
        *out = json_pack("[O]", stop);
        return *out ? 0 : -ENOMEM;
    }
    if (json_is_array(stop)) {
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s)
        {
            if (!json_is_string(s))
                return yr_tr_reject(cx, "stop", "'stop' must be a string or an array of strings");
        }
        *out = json_array_size(stop) > 0 ? json_incref(stop) : NULL;
        return 0;
    }
    if (present(stop))
        return yr_tr_reject(cx, "stop", "'stop' must be a string or an array of strings");
    return 0;
}

int yr_tr_thinking_budget(yr_call_ctx_t *cx, const json_t *root, int64_t *budget)
{
    *budget = 0;
    json_t *re = json_object_get(root, "reasoning_effort");
    if (!present(re))
        return 0;
    const char *e = json_string_value(re);
    if (e == NULL)
        return yr_tr_reject(cx, "reasoning_effort", "'reasoning_effort' must be a string");
    if (strcmp(e, "low") == 0)
        *budget = 1024;
    else if (strcmp(e, "medium") == 0)
        *budget = 4096;
    else if (strcmp(e, "high") == 0)
        *budget = 16384;
    else if (strcmp(e, "minimal") != 0 && strcmp(e, "none") != 0)
        return yr_tr_reject(cx, "reasoning_effort",
                            "'reasoning_effort' must be one of none, minimal, low, medium, high");
    return 0;
}

int yr_tr_claude_sampling(yr_call_ctx_t *cx, const json_t *root, int64_t budget,
                          const json_t **temperature, const json_t **top_p)
{
    const char *vendor = yr_tr_vendor(cx, "?");
    *temperature = *top_p = NULL;
    json_t *t = json_object_get(root, "temperature");
    if (json_is_number(t)) {
        double v = json_number_value(t);
        if (v < 0 || v > 1)
            return yr_tr_reject(cx, "temperature",
                                "'temperature' must be between 0 and 1 for vendor '%s' (its "
                                "range); %g would mean something else there",
                                vendor, v);
        if (budget > 0 && v != 1.0)
            return yr_tr_reject(cx, "temperature",
                                "'temperature' cannot be combined with 'reasoning_effort' for "
                                "vendor '%s' (extended thinking samples at temperature 1)",
                                vendor);
        *temperature = t;
    }
    json_t *tp = json_object_get(root, "top_p");
    if (json_is_number(tp)) {
        if (budget > 0 && json_number_value(tp) < 0.95)
            return yr_tr_reject(cx, "top_p",
                                "'top_p' below 0.95 cannot be combined with 'reasoning_effort' "
                                "for vendor '%s' (extended thinking)",
                                vendor);
        *top_p = tp;
    }
    return 0;
}
