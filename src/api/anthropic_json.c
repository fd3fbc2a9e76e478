/* Helpers shared by the two halves of the Anthropic inbound converter. */
#include "api/anthropic_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ---- small helpers --------------------------------------------------------- */

/* Undoes a partial append: on failure `out` is left as it was. */
int yr_aj_restore(yr_buf_t *b, size_t len, int rc)
{
    if (rc < 0 && b->len > len) {
        b->len = len;
        b->data[len] = '\0';
    }
    return rc;
}

yr_str_t yr_aj_jstr_slice(const json_t *s)
{
    return (yr_str_t){json_string_value(s), json_string_length(s)};
}

bool yr_aj_jstr_is(const json_t *s, const char *lit)
{
    return json_is_string(s) && strcmp(json_string_value(s), lit) == 0;
}

/* Absent and JSON null are the same for optional fields. */
json_t *yr_aj_opt_get(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int yr_aj_jset(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) == 0 ? 0 : -ENOMEM; /* steals v */
}

int yr_aj_jset_ref(json_t *obj, const char *key, json_t *v)
{
    return json_object_set(obj, key, v) == 0 ? 0 : -ENOMEM;
}

int yr_aj_jpush(json_t *arr, json_t *v)
{
    return json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM; /* steals v */
}

uint64_t yr_aj_fnv1a(yr_str_t s, uint64_t h)
{
    for (size_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.ptr[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

bool yr_aj_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Writes "msg_" + the id characters of src (a leading "chatcmpl-" dropped)
 * into dst; falls back to 16 hex digits of `hash` when nothing is left.
 * dst has room for 4 + ID_SUFFIX_MAX + 1 bytes. Returns the length. */
size_t yr_aj_make_msg_id(char *dst, yr_str_t src, uint64_t hash)
{
    const yr_str_t pfx = YR_STR("chatcmpl-");
    if (yr_str_has_prefix(src, pfx)) {
        src.ptr += pfx.len;
        src.len -= pfx.len;
    }
    memcpy(dst, "msg_", 4);
    size_t n = 4;
    for (size_t i = 0; i < src.len && n < 4 + ID_SUFFIX_MAX; i++)
        if (yr_aj_id_char(src.ptr[i]))
            dst[n++] = src.ptr[i];
    if (n == 4)
        n += (size_t)snprintf(dst + 4, ID_SUFFIX_MAX + 1, "%016" PRIx64, hash);
    dst[n] = '\0';
    return n;
}

/* ---- sticky-error JSON writer ---------------------------------------------- */

void yr_aj_w_raw(yr_aj_w_t *w, const char *s)
{
    if (w->rc == 0)
        w->rc = yr_buf_append(w->b, s, strlen(s));
}

void yr_aj_w_bytes(yr_aj_w_t *w, yr_str_t s)
{
    if (w->rc == 0)
        w->rc = yr_buf_append_str(w->b, s);
}

void yr_aj_w_str(yr_aj_w_t *w, yr_str_t s)
{
    if (w->rc == 0)
        w->rc = yr_buf_append_json_str(w->b, s);
}

void yr_aj_w_cstr(yr_aj_w_t *w, const char *s)
{
    yr_aj_w_str(w, yr_str(s));
}

void yr_aj_w_int(yr_aj_w_t *w, int64_t v)
{
    if (w->rc == 0)
        w->rc = yr_buf_printf(w->b, "%" PRId64, v);
}

/* Shortest of %.15g..%.17g that reads back as the same double, so 0.7 stays
 * "0.7" and nothing is rounded; integral values keep a ".0". */
int yr_aj_dump_real(yr_buf_t *b, double d)
{
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (n < 0 || (size_t)n >= sizeof(tmp))
            return -EINVAL;
        if (strtod(tmp, NULL) == d)
            break;
    }
    int rc = yr_buf_append(b, tmp, (size_t)n);
    if (rc == 0 && strspn(tmp, "-0123456789") == (size_t)n)
        rc = yr_buf_append(b, ".0", 2);
    return rc;
}

/* Compact JSON into b. jansson's parser bounds nesting (2048 levels), so the
 * recursion is bounded for every tree built from parsed input. */
int yr_aj_dump_json(yr_buf_t *b, json_t *v, unsigned depth)
{
    if (depth > 4096)
        return -EINVAL;
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        rc = yr_buf_append(b, "{", 1);
        bool first = true;
        for (void *it = json_object_iter(v); rc == 0 && it != NULL;
             it = json_object_iter_next(v, it)) {
            if (!first)
                rc = yr_buf_append(b, ",", 1);
            first = false;
            yr_str_t key = {json_object_iter_key(it), json_object_iter_key_len(it)};
            if (rc == 0)
                rc = yr_buf_append_json_str(b, key);
            if (rc == 0)
                rc = yr_buf_append(b, ":", 1);
            if (rc == 0)
                rc = yr_aj_dump_json(b, json_object_iter_value(it), depth + 1);
        }
        return rc ? rc : yr_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        rc = yr_buf_append(b, "[", 1);
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            if (i > 0)
                rc = yr_buf_append(b, ",", 1);
            if (rc == 0)
                rc = yr_aj_dump_json(b, json_array_get(v, i), depth + 1);
        }
        return rc ? rc : yr_buf_append(b, "]", 1);
    }
    case JSON_STRING: return yr_buf_append_json_str(b, yr_aj_jstr_slice(v));
    case JSON_INTEGER: return yr_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: return yr_aj_dump_real(b, json_real_value(v));
    case JSON_TRUE: return yr_buf_append_str(b, YR_STR("true"));
    case JSON_FALSE: return yr_buf_append_str(b, YR_STR("false"));
    case JSON_NULL: return yr_buf_append_str(b, YR_STR("null"));
    }
    return -EINVAL;
}

/* ---- shared by the request converters ------------------------------------ */

/* Flat token cost of an image or PDF in the estimate (about a full-size
 * 1092x1092 image: width * height / 750). */
#define EST_TOKENS_PER_IMAGE 1600
#define EST_TOKENS_PER_MESSAGE 4

/* Fills err: param = path + sub, message = "param: <fmt>". Returns -EINVAL. */
int yr_aj_fail(yr_api_error_t *err, yr_err_t kind, const char *path, const char *sub,
               const char *fmt, ...)
{
    err->err = kind;
    snprintf(err->param, sizeof(err->param), "%s%s", path, sub);
    size_t n = 0;
    err->message[0] = '\0';
    if (err->param[0] != '\0') {
        int w = snprintf(err->message, sizeof(err->message), "%s: ", err->param);
        n = w < 0 ? 0 : (size_t)w;
        if (n >= sizeof(err->message))
            n = sizeof(err->message) - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message + n, sizeof(err->message) - n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Maps a non-validation failure onto err. */
int yr_aj_fail_rc(yr_api_error_t *err, int rc)
{
    if (rc == -E2BIG) {
        err->err = YR_E_TOO_LARGE;
        err->param[0] = '\0';
        snprintf(err->message, sizeof(err->message),
                 "the request is too large for the gateway once converted");
    } else if (rc != -EINVAL) {
        err->err = YR_E_INTERNAL;
        err->param[0] = '\0';
        snprintf(err->message, sizeof(err->message), "out of memory converting the request");
        rc = -ENOMEM;
    }
    return rc;
}

json_t *yr_aj_text_part(json_t *text)
{
    json_t *p = json_object();
    if (p == NULL || yr_aj_jset(p, "type", json_string("text")) < 0 ||
        yr_aj_jset_ref(p, "text", text) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* Standard base64 alphabet with at most two '=' at the end. */
bool yr_aj_base64_ok(yr_str_t s)
{
    size_t pad = 0;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.ptr[i];
        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                         (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return false;
    }
    return s.len > 0 && pad <= 2;
}

/* "data:<media_type>;base64,<data>" as a JSON string. */
json_t *yr_aj_data_url(size_t body_len, json_t *media_type, json_t *data)
{
    yr_buf_t b;
    yr_buf_init(&b, body_len + 64);
    int rc = yr_buf_append_str(&b, YR_STR("data:"));
    if (rc == 0)
        rc = yr_buf_append_str(&b, yr_aj_jstr_slice(media_type));
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR(";base64,"));
    if (rc == 0)
        rc = yr_buf_append_str(&b, yr_aj_jstr_slice(data));
    json_t *s = rc == 0 ? json_stringn_nocheck(b.data, b.len) : NULL;
    yr_buf_free(&b);
    return s;
}

json_t *yr_aj_image_url_part(json_t *url)
{
    json_t *inner = json_object();
    json_t *p = json_object();
    if (inner == NULL || p == NULL || yr_aj_jset(inner, "url", url) < 0 ||
        yr_aj_jset(p, "type", json_string("image_url")) < 0) {
        json_decref(inner);
        json_decref(p);
        return NULL;
    }
    if (yr_aj_jset(p, "image_url", inner) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* Whether an OpenAI strict json_schema would accept schema: every object
 * schema closed (additionalProperties false) with all its properties
 * required. Values of enum, const, default and examples are data, not
 * schemas. Conservative: false when unsure. */
bool yr_aj_strict_ok(json_t *s, unsigned depth)
{
    if (depth > 64)
        return false;
    if (json_is_array(s)) {
        size_t i;
        json_t *v;
        json_array_foreach(s, i, v)
        {
            if (!yr_aj_strict_ok(v, depth + 1))
                return false;
        }
        return true;
    }
    if (!json_is_object(s))
        return true;
    json_t *props = json_object_get(s, "properties");
    if (yr_aj_jstr_is(json_object_get(s, "type"), "object") || json_is_object(props)) {
        if (!json_is_false(json_object_get(s, "additionalProperties")))
            return false;
        json_t *req = json_object_get(s, "required");
        const char *key;
        json_t *v;
        json_object_foreach(props, key, v)
        {
            bool listed = false;
            size_t i;
            json_t *r;
            json_array_foreach(req, i, r) listed = listed || yr_aj_jstr_is(r, key);
            if (!listed)
                return false;
        }
    }
    static const char *const data_keys[] = {"enum", "const", "default", "examples"};
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
    {
        bool data = false;
        for (size_t i = 0; i < ARRAY_LEN(data_keys); i++)
            data = data || strcmp(key, data_keys[i]) == 0;
        if (!data && !yr_aj_strict_ok(v, depth + 1))
            return false;
    }
    return true;
}

/* ---- token estimate --------------------------------------------------------- */

static void est_content(json_t *content, uint64_t *bytes, uint64_t *extra)
{
    if (json_is_string(content)) {
        *bytes += json_string_length(content);
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        json_t *type = json_object_get(p, "type");
        if (yr_aj_jstr_is(type, "text"))
            *bytes += json_string_length(json_object_get(p, "text"));
        else
            *extra += EST_TOKENS_PER_IMAGE; /* image_url or file */
    }
}

/* The estimate of a converted request (see the header). */
int yr_aj_estimate_openai(json_t *req, size_t len, int64_t *tokens)
{
    uint64_t bytes = 0, extra = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        extra += EST_TOKENS_PER_MESSAGE;
        est_content(json_object_get(m, "content"), &bytes, &extra);
        size_t j;
        json_t *call;
        json_array_foreach(json_object_get(m, "tool_calls"), j, call)
        {
            json_t *fn = json_object_get(call, "function");
            bytes += json_string_length(json_object_get(fn, "name"));
            bytes += json_string_length(json_object_get(fn, "arguments"));
        }
    }
    yr_buf_t schema;
    yr_buf_init(&schema, len + 64);
    int rc = 0;
    json_t *t;
    json_array_foreach(json_object_get(req, "tools"), i, t)
    {
        yr_buf_reset(&schema);
        rc = yr_aj_dump_json(&schema, json_object_get(t, "function"), 0);
        if (rc < 0)
            break;
        bytes += schema.len;
    }
    yr_buf_free(&schema);
    uint64_t est = (bytes + 3) / 4 + extra;
    *tokens = est > 0 ? (int64_t)est : 1;
    return rc;
}
