/* Helpers shared by the two halves of the Anthropic inbound converter. */
#include "api/anthropic_json.h"

#include <errno.h>
#include <inttypes.h>
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
