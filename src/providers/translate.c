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
