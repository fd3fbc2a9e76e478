/* Anthropic Messages API in, OpenAI chat out, and back. See
 * docs/anthropic_inbound.md for the mapping tables.
 *
 * Requests are parsed with jansson, checked in the order the Anthropic API
 * reports problems (body, model, max_tokens, messages, then the optional
 * fields), and rebuilt as a jansson tree that dump_json() writes into the
 * caller's capped buffer. Responses and stream events are written directly
 * with the sticky-error writer `w_t`: they are small and their shape is
 * fixed. */
#include "api/anthropic_in.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Longest id / name of a tool call the stream encoder keeps. */
#define TOOL_STR_MAX 256
/* Longest matched stop sequence reported back. */
#define STOP_SEQ_MAX 4096
/* Longest message id suffix. */
#define ID_SUFFIX_MAX 64
/* Flat token cost of an image or PDF in the estimate (about a full-size
 * 1092x1092 image: width * height / 750). */
#define EST_TOKENS_PER_IMAGE 1600
#define EST_TOKENS_PER_MESSAGE 4

/* ---- small helpers --------------------------------------------------------- */

/* Undoes a partial append: on failure `out` is left as it was. */
static int restore(yr_buf_t *b, size_t len, int rc)
{
    if (rc < 0 && b->len > len) {
        b->len = len;
        b->data[len] = '\0';
    }
    return rc;
}

static yr_str_t jstr_slice(const json_t *s)
{
    return (yr_str_t){json_string_value(s), json_string_length(s)};
}

static bool jstr_is(const json_t *s, const char *lit)
{
    return json_is_string(s) && strcmp(json_string_value(s), lit) == 0;
}

/* Absent and JSON null are the same for optional fields. */
static json_t *opt_get(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int jset(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) == 0 ? 0 : -ENOMEM; /* steals v */
}

static int jset_ref(json_t *obj, const char *key, json_t *v)
{
    return json_object_set(obj, key, v) == 0 ? 0 : -ENOMEM;
}

static int jpush(json_t *arr, json_t *v)
{
    return json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM; /* steals v */
}

static uint64_t fnv1a(yr_str_t s, uint64_t h)
{
    for (size_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.ptr[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Writes "msg_" + the id characters of src (a leading "chatcmpl-" dropped)
 * into dst; falls back to 16 hex digits of `hash` when nothing is left.
 * dst has room for 4 + ID_SUFFIX_MAX + 1 bytes. Returns the length. */
static size_t make_msg_id(char *dst, yr_str_t src, uint64_t hash)
{
    static const yr_str_t pfx = YR_STR("chatcmpl-");
    if (yr_str_has_prefix(src, pfx)) {
        src.ptr += pfx.len;
        src.len -= pfx.len;
    }
    memcpy(dst, "msg_", 4);
    size_t n = 4;
    for (size_t i = 0; i < src.len && n < 4 + ID_SUFFIX_MAX; i++)
        if (id_char(src.ptr[i]))
            dst[n++] = src.ptr[i];
    if (n == 4)
        n += (size_t)snprintf(dst + 4, ID_SUFFIX_MAX + 1, "%016" PRIx64, hash);
    dst[n] = '\0';
    return n;
}

/* ---- sticky-error JSON writer ---------------------------------------------- */

typedef struct {
    yr_buf_t *b;
    int rc;
} w_t;

static void w_raw(w_t *w, const char *s)
{
    if (w->rc == 0)
        w->rc = yr_buf_append(w->b, s, strlen(s));
}

static void w_bytes(w_t *w, yr_str_t s)
{
    if (w->rc == 0)
        w->rc = yr_buf_append_str(w->b, s);
}

static void w_str(w_t *w, yr_str_t s)
{
    if (w->rc == 0)
        w->rc = yr_buf_append_json_str(w->b, s);
}

static void w_cstr(w_t *w, const char *s)
{
    w_str(w, yr_str(s));
}

static void w_int(w_t *w, int64_t v)
{
    if (w->rc == 0)
        w->rc = yr_buf_printf(w->b, "%" PRId64, v);
}

/* Shortest of %.15g..%.17g that reads back as the same double, so 0.7 stays
 * "0.7" and nothing is rounded; integral values keep a ".0". */
static int dump_real(yr_buf_t *b, double d)
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
static int dump_json(yr_buf_t *b, json_t *v, unsigned depth)
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
                rc = dump_json(b, json_object_iter_value(it), depth + 1);
        }
        return rc ? rc : yr_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        rc = yr_buf_append(b, "[", 1);
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            if (i > 0)
                rc = yr_buf_append(b, ",", 1);
            if (rc == 0)
                rc = dump_json(b, json_array_get(v, i), depth + 1);
        }
        return rc ? rc : yr_buf_append(b, "]", 1);
    }
    case JSON_STRING: return yr_buf_append_json_str(b, jstr_slice(v));
    case JSON_INTEGER: return yr_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: return dump_real(b, json_real_value(v));
    case JSON_TRUE: return yr_buf_append_str(b, YR_STR("true"));
    case JSON_FALSE: return yr_buf_append_str(b, YR_STR("false"));
    case JSON_NULL: return yr_buf_append_str(b, YR_STR("null"));
    }
    return -EINVAL;
}

/* ---- request errors -------------------------------------------------------- */

/* Fills err: param = path + sub, message = "param: <fmt>". Returns -EINVAL. */
static int failk(yr_api_error_t *err, yr_err_t kind, const char *path, const char *sub,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int failk(yr_api_error_t *err, yr_err_t kind, const char *path, const char *sub,
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

#define BAD(err, path, sub, ...) failk((err), YR_E_INVALID_REQUEST, (path), (sub), __VA_ARGS__)

/* Maps a non-validation failure onto err. */
static int fail_rc(yr_api_error_t *err, int rc)
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

/* ---- request: content blocks ---------------------------------------------- */

typedef struct {
    yr_api_error_t *err;
    json_t *msgs;    /* OpenAI messages being built */
    json_t *all_ids; /* every tool_use id so far: they must be unique */
    size_t body_len; /* bounds scratch buffers */
} conv_t;

/* Block types Anthropic accepts that cannot be routed to other providers. */
static const char *const unsupported_blocks[] = {
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
    "tool_search_tool_result",
    "tool_reference",
};

static int bad_block_type(conv_t *c, const char *path, const char *type)
{
    for (size_t i = 0; i < ARRAY_LEN(unsupported_blocks); i++)
        if (strcmp(type, unsupported_blocks[i]) == 0)
            return BAD(c->err, path, ".type",
                       "content blocks of type '%s' are not supported by this gateway", type);
    return BAD(c->err, path, ".type",
               "unknown content block type '%.48s'; expected one of text, image, document, "
               "tool_use, tool_result, thinking, redacted_thinking",
               type);
}

static json_t *text_part(json_t *text)
{
    json_t *p = json_object();
    if (p == NULL || jset(p, "type", json_string("text")) < 0 || jset_ref(p, "text", text) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* Standard base64 alphabet with at most two '=' at the end. */
static bool base64_ok(yr_str_t s)
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
static json_t *data_url(conv_t *c, json_t *media_type, json_t *data)
{
    yr_buf_t b;
    yr_buf_init(&b, c->body_len + 64);
    int rc = yr_buf_append_str(&b, YR_STR("data:"));
    if (rc == 0)
        rc = yr_buf_append_str(&b, jstr_slice(media_type));
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR(";base64,"));
    if (rc == 0)
        rc = yr_buf_append_str(&b, jstr_slice(data));
    json_t *s = rc == 0 ? json_stringn_nocheck(b.data, b.len) : NULL;
    yr_buf_free(&b);
    return s;
}

static json_t *image_url_part(json_t *url)
{
    json_t *inner = json_object();
    json_t *p = json_object();
    if (inner == NULL || p == NULL || jset(inner, "url", url) < 0 ||
        jset(p, "type", json_string("image_url")) < 0) {
        json_decref(inner);
        json_decref(p);
        return NULL;
    }
    if (jset(p, "image_url", inner) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* An image block -> {"type":"image_url","image_url":{"url":...}} in *part. */
static int conv_image(conv_t *c, json_t *blk, const char *path, json_t **part)
{
    static const char *const media[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
    *part = NULL;
    json_t *src = json_object_get(blk, "source");
    if (!json_is_object(src))
        return BAD(c->err, path, ".source", src ? "Input should be an object" : "Field required");
    json_t *type = json_object_get(src, "type");
    json_t *url;
    if (jstr_is(type, "base64")) {
        json_t *mt = json_object_get(src, "media_type");
        bool known = false;
        for (size_t i = 0; json_is_string(mt) && i < ARRAY_LEN(media); i++)
            known = known || strcmp(json_string_value(mt), media[i]) == 0;
        if (!known)
            return BAD(c->err, path, ".source.media_type",
                       "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'");
        json_t *data = json_object_get(src, "data");
        if (!json_is_string(data) || !base64_ok(jstr_slice(data)))
            return BAD(c->err, path, ".source.data",
                       data ? "the image data must be a non-empty base64 string"
                            : "Field required");
        url = data_url(c, mt, data);
    } else if (jstr_is(type, "url")) {
        json_t *u = json_object_get(src, "url");
        if (!json_is_string(u) || json_string_length(u) == 0)
            return BAD(c->err, path, ".source.url",
                       u ? "Input should be a non-empty string" : "Field required");
        url = json_incref(u);
    } else if (jstr_is(type, "file")) {
        return BAD(c->err, path, ".source",
                   "file sources (Files API) are not supported by this gateway");
    } else {
        return BAD(c->err, path, ".source.type", "Input should be 'base64', 'url' or 'file'");
    }
    if (url == NULL)
        return -ENOMEM;
    *part = image_url_part(url);
    return *part ? 0 : -ENOMEM;
}

static int push_text(json_t *parts, json_t *text)
{
    json_t *p = text_part(text);
    return p ? jpush(parts, p) : -ENOMEM;
}

/* A document block -> parts appended to `parts`. PDF (base64) becomes an
 * OpenAI file part; plain text and content sources become text/image parts. */
static int conv_document(conv_t *c, json_t *blk, const char *path, json_t *parts)
{
    json_t *src = json_object_get(blk, "source");
    if (!json_is_object(src))
        return BAD(c->err, path, ".source", src ? "Input should be an object" : "Field required");
    json_t *type = json_object_get(src, "type");
    json_t *data = json_object_get(src, "data");
    if (jstr_is(type, "base64")) {
        if (!jstr_is(json_object_get(src, "media_type"), "application/pdf"))
            return BAD(c->err, path, ".source.media_type", "Input should be 'application/pdf'");
        if (!json_is_string(data) || !base64_ok(jstr_slice(data)))
            return BAD(c->err, path, ".source.data",
                       "the document data must be a non-empty base64 string");
        json_t *title = json_object_get(blk, "title");
        json_t *file = json_object();
        json_t *p = json_object();
        int rc = file && p ? 0 : -ENOMEM;
        if (rc == 0)
            rc = jset(file, "filename",
                      json_is_string(title) && json_string_length(title) > 0
                          ? json_incref(title)
                          : json_string("document.pdf"));
        if (rc == 0)
            rc = jset(file, "file_data", data_url(c, json_object_get(src, "media_type"), data));
        if (rc == 0)
            rc = jset(p, "type", json_string("file"));
        if (rc == 0) {
            rc = jset(p, "file", file);
            file = NULL;
        }
        if (rc == 0) {
            rc = jpush(parts, p);
            p = NULL;
        }
        json_decref(file);
        json_decref(p);
        return rc;
    }
    if (jstr_is(type, "text")) {
        if (!json_is_string(data))
            return BAD(c->err, path, ".source.data", "Field required");
        return push_text(parts, data);
    }
    if (jstr_is(type, "content")) {
        json_t *content = json_object_get(src, "content");
        if (json_is_string(content))
            return push_text(parts, content);
        if (!json_is_array(content))
            return BAD(c->err, path, ".source.content",
                       "Input should be a valid string or a list of blocks");
        size_t i;
        json_t *b;
        json_array_foreach(content, i, b) {
            char sub[96];
            snprintf(sub, sizeof(sub), "%.50s.source.content.%zu", path, i);
            json_t *t = json_object_get(b, "type");
            int rc;
            if (jstr_is(t, "text") && json_is_string(json_object_get(b, "text"))) {
                rc = push_text(parts, json_object_get(b, "text"));
            } else if (jstr_is(t, "image")) {
                json_t *p;
                rc = conv_image(c, b, sub, &p);
                if (rc == 0)
                    rc = jpush(parts, p);
            } else {
                rc = BAD(c->err, sub, "", "only text and image blocks are allowed here");
            }
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (jstr_is(type, "url") || jstr_is(type, "file"))
        return BAD(c->err, path, ".source",
                   "document sources of type '%s' are not supported by this gateway",
                   json_string_value(type));
    return BAD(c->err, path, ".source.type",
               "Input should be 'base64', 'text', 'content', 'url' or 'file'");
}

/* A tool_result block -> one {"role":"tool"} message pushed on c->msgs; its
 * images go to `images` (OpenAI tool messages carry text only). */
static int conv_tool_result(conv_t *c, json_t *blk, const char *path, json_t *expected,
                            json_t *images)
{
    json_t *id = json_object_get(blk, "tool_use_id");
    if (!json_is_string(id) || json_string_length(id) == 0)
        return BAD(c->err, path, ".tool_use_id",
                   id ? "Input should be a non-empty string" : "Field required");
    if (expected == NULL || json_object_get(expected, json_string_value(id)) == NULL)
        return BAD(c->err, path, "",
                   "unexpected tool_use_id found in tool_result blocks: %.64s. Each tool_result "
                   "block must have a corresponding tool_use block in the previous message.",
                   json_string_value(id));
    json_object_del(expected, json_string_value(id)); /* answered (once) */
    json_t *is_error = opt_get(blk, "is_error");
    if (is_error != NULL && !json_is_boolean(is_error))
        return BAD(c->err, path, ".is_error", "Input should be a valid boolean");

    yr_buf_t text;
    yr_buf_init(&text, c->body_len + 16);
    int rc = json_is_true(is_error) ? yr_buf_append_str(&text, YR_STR("Error: ")) : 0;
    json_t *content = opt_get(blk, "content");
    if (json_is_string(content)) {
        if (rc == 0)
            rc = yr_buf_append_str(&text, jstr_slice(content));
    } else if (json_is_array(content)) {
        bool first = true;
        size_t i;
        json_t *b;
        json_array_foreach(content, i, b) {
            if (rc < 0)
                break;
            char sub[96];
            snprintf(sub, sizeof(sub), "%.50s.content.%zu", path, i);
            json_t *t = json_object_get(b, "type");
            if (jstr_is(t, "text") && json_is_string(json_object_get(b, "text"))) {
                if (!first)
                    rc = yr_buf_append(&text, "\n", 1);
                if (rc == 0)
                    rc = yr_buf_append_str(&text, jstr_slice(json_object_get(b, "text")));
                first = false;
            } else if (jstr_is(t, "image")) {
                json_t *p;
                rc = conv_image(c, b, sub, &p);
                if (rc == 0)
                    rc = jpush(images, p);
            } else {
                rc = BAD(c->err, sub, "",
                         "tool_result content may hold only text and image blocks here");
            }
        }
    } else if (content != NULL) {
        rc = BAD(c->err, path, ".content", "Input should be a valid string or a list of blocks");
    }
    if (rc == 0 && json_is_true(is_error) && text.len == 7)
        text.len = 5; /* "Error" alone, not "Error: " */
    json_t *msg = rc == 0 ? json_object() : NULL;
    if (rc == 0 && msg == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = jset(msg, "role", json_string("tool"));
    if (rc == 0)
        rc = jset_ref(msg, "tool_call_id", id);
    if (rc == 0)
        rc = jset(msg, "content", json_stringn_nocheck(text.data ? text.data : "", text.len));
    if (rc == 0) {
        rc = jpush(c->msgs, msg);
        msg = NULL;
    }
    json_decref(msg);
    yr_buf_free(&text);
    return rc;
}

/* Puts parts in msg as "content": one text part becomes a plain string. */
static int set_parts(json_t *msg, json_t *parts)
{
    json_t *only = json_array_size(parts) == 1 ? json_array_get(parts, 0) : NULL;
    if (only != NULL && jstr_is(json_object_get(only, "type"), "text"))
        return jset_ref(msg, "content", json_object_get(only, "text"));
    return jset_ref(msg, "content", parts);
}

static int push_role_msg(conv_t *c, const char *role, json_t *parts)
{
    json_t *msg = json_object();
    int rc = msg ? jset(msg, "role", json_string(role)) : -ENOMEM;
    if (rc == 0)
        rc = set_parts(msg, parts);
    if (rc == 0) {
        rc = jpush(c->msgs, msg);
        msg = NULL;
    }
    json_decref(msg);
    return rc;
}

/* A user message: tool_result blocks first (one tool message each, in
 * order), then one user message with everything else. `expected` holds the
 * tool_use ids of the previous assistant message still to be answered. */
static int conv_user(conv_t *c, size_t i, json_t *content, json_t *expected)
{
    if (json_is_string(content)) {
        json_t *parts = json_array();
        int rc = parts ? push_text(parts, content) : -ENOMEM;
        if (rc == 0)
            rc = push_role_msg(c, "user", parts);
        json_decref(parts);
        return rc;
    }
    json_t *parts = json_array();
    json_t *images = json_array(); /* from tool results */
    int rc = parts && images ? 0 : -ENOMEM;
    size_t j;
    json_t *blk;
    json_array_foreach(content, j, blk) {
        if (rc < 0)
            break;
        char bpath[96];
        snprintf(bpath, sizeof(bpath), "messages.%zu.content.%zu", i, j);
        if (!json_is_object(blk)) {
            rc = BAD(c->err, bpath, "", "Input should be an object");
            break;
        }
        json_t *type = json_object_get(blk, "type");
        if (!json_is_string(type)) {
            rc = BAD(c->err, bpath, ".type", type ? "Input should be a string" : "Field required");
            break;
        }
        const char *t = json_string_value(type);
        if (strcmp(t, "text") == 0) {
            json_t *text = json_object_get(blk, "text");
            rc = json_is_string(text) ? push_text(parts, text)
                                      : BAD(c->err, bpath, ".text", "Field required");
        } else if (strcmp(t, "image") == 0) {
            json_t *p;
            rc = conv_image(c, blk, bpath, &p);
            if (rc == 0)
                rc = jpush(parts, p);
        } else if (strcmp(t, "document") == 0) {
            rc = conv_document(c, blk, bpath, parts);
        } else if (strcmp(t, "tool_result") == 0) {
            rc = conv_tool_result(c, blk, bpath, expected, images);
        } else if (strcmp(t, "tool_use") == 0 || strcmp(t, "thinking") == 0 ||
                   strcmp(t, "redacted_thinking") == 0) {
            rc = BAD(c->err, bpath, ".type", "%s blocks are only allowed in assistant messages", t);
        } else {
            rc = bad_block_type(c, bpath, t);
        }
    }
    /* Images returned by tools lead the user message after the tool messages. */
    if (rc == 0 && json_array_extend(images, parts) != 0)
        rc = -ENOMEM;
    if (rc == 0 && json_array_size(images) > 0)
        rc = push_role_msg(c, "user", images);
    json_decref(parts);
    json_decref(images);
    return rc;
}

/* A tool_use block -> one OpenAI tool call appended to calls; its id goes
 * into ids (what the next user message must answer). */
static int conv_tool_use(conv_t *c, json_t *blk, const char *path, json_t *calls, json_t *ids)
{
    json_t *id = json_object_get(blk, "id");
    json_t *name = json_object_get(blk, "name");
    json_t *input = json_object_get(blk, "input");
    if (!json_is_string(id) || json_string_length(id) == 0)
        return BAD(c->err, path, ".id",
                   id ? "Input should be a non-empty string" : "Field required");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return BAD(c->err, path, ".name",
                   name ? "Input should be a non-empty string" : "Field required");
    if (!json_is_object(input))
        return BAD(c->err, path, ".input",
                   input ? "Input should be a valid dictionary" : "Field required");
    if (json_object_get(c->all_ids, json_string_value(id)) != NULL)
        return BAD(c->err, path, ".id", "tool_use ids must be unique (%.64s)",
                   json_string_value(id));
    if (json_object_set(c->all_ids, json_string_value(id), json_true()) != 0 ||
        json_object_set(ids, json_string_value(id), json_true()) != 0)
        return -ENOMEM;

    yr_buf_t args;
    yr_buf_init(&args, c->body_len + 64);
    int rc = dump_json(&args, input, 0);
    json_t *fn = json_object();
    json_t *call = json_object();
    if (rc == 0 && (fn == NULL || call == NULL))
        rc = -ENOMEM;
    if (rc == 0)
        rc = jset_ref(fn, "name", name);
    if (rc == 0)
        rc = jset(fn, "arguments", json_stringn_nocheck(args.data, args.len));
    if (rc == 0)
        rc = jset_ref(call, "id", id);
    if (rc == 0)
        rc = jset(call, "type", json_string("function"));
    if (rc == 0) {
        rc = jset(call, "function", fn);
        fn = NULL;
    }
    if (rc == 0) {
        rc = jpush(calls, call);
        call = NULL;
    }
    json_decref(fn);
    json_decref(call);
    yr_buf_free(&args);
    return rc;
}

/* An assistant message: text blocks joined with "\n" as the content string,
 * tool_use blocks as tool_calls, thinking dropped. The tool_use ids go into
 * *ids_out (a new object owned by the caller). */
static int conv_assistant(conv_t *c, size_t i, json_t *content, json_t **ids_out)
{
    json_t *ids = json_object();
    *ids_out = ids;
    if (ids == NULL)
        return -ENOMEM;
    json_t *calls = json_array();
    yr_buf_t text;
    yr_buf_init(&text, c->body_len + 16);
    bool has_text = false;
    int rc = calls ? 0 : -ENOMEM;
    if (rc == 0 && json_is_string(content)) {
        has_text = json_string_length(content) > 0;
        rc = yr_buf_append_str(&text, jstr_slice(content));
    }
    size_t j;
    json_t *blk;
    json_array_foreach(content, j, blk) { /* no-op for a string */
        if (rc < 0)
            break;
        char bpath[96];
        snprintf(bpath, sizeof(bpath), "messages.%zu.content.%zu", i, j);
        if (!json_is_object(blk)) {
            rc = BAD(c->err, bpath, "", "Input should be an object");
            break;
        }
        json_t *type = json_object_get(blk, "type");
        if (!json_is_string(type)) {
            rc = BAD(c->err, bpath, ".type", type ? "Input should be a string" : "Field required");
            break;
        }
        const char *t = json_string_value(type);
        if (strcmp(t, "text") == 0) {
            json_t *s = json_object_get(blk, "text");
            if (!json_is_string(s)) {
                rc = BAD(c->err, bpath, ".text", "Field required");
                break;
            }
            if (has_text)
                rc = yr_buf_append(&text, "\n", 1);
            if (rc == 0)
                rc = yr_buf_append_str(&text, jstr_slice(s));
            has_text = true;
        } else if (strcmp(t, "tool_use") == 0) {
            rc = conv_tool_use(c, blk, bpath, calls, ids);
        } else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) {
            /* Dropped: OpenAI chat has no field to send reasoning back. */
        } else if (strcmp(t, "image") == 0 || strcmp(t, "document") == 0 ||
                   strcmp(t, "tool_result") == 0) {
            rc = BAD(c->err, bpath, ".type", "%s blocks are only allowed in user messages", t);
        } else {
            rc = bad_block_type(c, bpath, t);
        }
    }
    json_t *msg = NULL;
    if (rc == 0 && (has_text || json_array_size(calls) > 0)) {
        msg = json_object();
        rc = msg ? jset(msg, "role", json_string("assistant")) : -ENOMEM;
        if (rc == 0)
            rc = jset(msg, "content",
                      has_text ? json_stringn_nocheck(text.data ? text.data : "", text.len)
                               : json_null());
        if (rc == 0 && json_array_size(calls) > 0)
            rc = jset_ref(msg, "tool_calls", calls);
        if (rc == 0) {
            rc = jpush(c->msgs, msg);
            msg = NULL;
        }
    }
    json_decref(msg);
    json_decref(calls);
    yr_buf_free(&text);
    return rc;
}

/* Some tool_use ids of message `at` got no tool_result in the next message. */
static int unanswered(conv_t *c, json_t *ids, size_t at)
{
    void *it = json_object_iter(ids);
    return BAD(c->err, "messages", "",
               "tool_use ids were found without tool_result blocks immediately after: %.64s "
               "(messages.%zu). Each tool_use block must have a corresponding tool_result "
               "block in the next message.",
               it ? json_object_iter_key(it) : "", at);
}

static int conv_messages(conv_t *c, json_t *messages)
{
    size_t n = json_array_size(messages);
    json_t *expected = NULL; /* tool_use ids of the previous assistant message */
    size_t expected_at = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *m = json_array_get(messages, i);
        char path[96];
        snprintf(path, sizeof(path), "messages.%zu", i);
        if (!json_is_object(m)) {
            rc = BAD(c->err, path, "", "Input should be an object");
            break;
        }
        json_t *role = json_object_get(m, "role");
        bool user = jstr_is(role, "user");
        if (!user && !jstr_is(role, "assistant")) {
            rc = BAD(c->err, path, ".role",
                     role ? "Input should be 'user' or 'assistant'" : "Field required");
            break;
        }
        json_t *content = json_object_get(m, "content");
        if (!json_is_string(content) && !json_is_array(content)) {
            rc = BAD(c->err, path, ".content",
                     content ? "Input should be a valid string or a list of content blocks"
                             : "Field required");
            break;
        }
        bool empty = json_is_string(content) ? json_string_length(content) == 0
                                             : json_array_size(content) == 0;
        if (empty && !(i + 1 == n && !user)) {
            rc = BAD(c->err, path, "",
                     "all messages must have non-empty content except for the optional final "
                     "assistant message");
            break;
        }
        if (!user && json_object_size(expected) > 0) {
            rc = unanswered(c, expected, expected_at);
            break;
        }
        if (user) {
            rc = conv_user(c, i, content, expected);
            if (rc == 0 && json_object_size(expected) > 0) /* conv_user removed the answered */
                rc = unanswered(c, expected, expected_at);
            json_decref(expected);
            expected = NULL;
        } else {
            json_decref(expected);
            expected = NULL;
            rc = conv_assistant(c, i, content, &expected);
            expected_at = i;
        }
    }
    json_decref(expected);
    return rc;
}

/* ---- request: top level ---------------------------------------------------- */

/* system: a string or a list of text blocks -> one leading system message. */
static int conv_system(conv_t *c, json_t *system)
{
    if (system == NULL)
        return 0;
    json_t *text = NULL;
    if (json_is_string(system)) {
        text = json_incref(system);
    } else if (json_is_array(system)) {
        yr_buf_t b;
        yr_buf_init(&b, c->body_len + 16);
        int rc = 0;
        size_t i;
        json_t *blk;
        json_array_foreach(system, i, blk) {
            char path[64];
            snprintf(path, sizeof(path), "system.%zu", i);
            json_t *s = json_object_get(blk, "text");
            if (!jstr_is(json_object_get(blk, "type"), "text"))
                rc = BAD(c->err, path, ".type", "Input should be 'text'");
            else if (!json_is_string(s))
                rc = BAD(c->err, path, ".text", "Field required");
            else if (i > 0)
                rc = yr_buf_append(&b, "\n", 1);
            if (rc == 0)
                rc = yr_buf_append_str(&b, jstr_slice(s));
            if (rc < 0)
                break;
        }
        if (rc == 0)
            text = json_stringn_nocheck(b.data ? b.data : "", b.len);
        yr_buf_free(&b);
        if (rc < 0)
            return rc;
    } else {
        return BAD(c->err, "system", "", "Input should be a valid string or a list of text blocks");
    }
    if (text == NULL)
        return -ENOMEM;
    int rc = 0;
    if (json_string_length(text) > 0) {
        json_t *msg = json_object();
        rc = msg ? jset(msg, "role", json_string("system")) : -ENOMEM;
        if (rc == 0)
            rc = jset_ref(msg, "content", text);
        if (rc == 0) {
            rc = json_array_insert_new(c->msgs, 0, msg) == 0 ? 0 : -ENOMEM;
            msg = NULL;
        }
        json_decref(msg);
    }
    json_decref(text);
    return rc;
}

/* A number in [0, 1] copied to the OpenAI request under the same name. */
static int conv_unit(conv_t *c, json_t *root, const char *key, json_t *req)
{
    json_t *v = opt_get(root, key);
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
        return BAD(c->err, key, "", "Input should be a number between 0 and 1");
    return jset_ref(req, key, v);
}

static int conv_sampling(conv_t *c, json_t *root, json_t *req)
{
    int rc = conv_unit(c, root, "temperature", req);
    if (rc == 0)
        rc = conv_unit(c, root, "top_p", req);
    if (rc < 0)
        return rc;
    json_t *top_k = opt_get(root, "top_k"); /* checked, then dropped */
    if (top_k != NULL && (!json_is_integer(top_k) || json_integer_value(top_k) < 0))
        return BAD(c->err, "top_k", "", "Input should be a non-negative integer");
    json_t *stop = opt_get(root, "stop_sequences");
    if (stop == NULL)
        return 0;
    if (!json_is_array(stop))
        return BAD(c->err, "stop_sequences", "", "Input should be a valid list");
    size_t i;
    json_t *s;
    json_array_foreach(stop, i, s) {
        if (!json_is_string(s)) {
            char path[64];
            snprintf(path, sizeof(path), "stop_sequences.%zu", i);
            return BAD(c->err, path, "", "Input should be a valid string");
        }
    }
    return json_array_size(stop) > 0 ? jset_ref(req, "stop", stop) : 0;
}

static int conv_tool(conv_t *c, json_t *tool, size_t i, json_t *names, json_t *out)
{
    char path[64];
    snprintf(path, sizeof(path), "tools.%zu", i);
    if (!json_is_object(tool))
        return BAD(c->err, path, "", "Input should be an object");
    json_t *type = opt_get(tool, "type");
    if (type != NULL && !jstr_is(type, "custom"))
        return BAD(c->err, path, ".type",
                   "tool type '%.48s' is not supported by this gateway; only custom tools "
                   "(name, description, input_schema) can be routed to other providers",
                   json_is_string(type) ? json_string_value(type) : "?");
    json_t *name = json_object_get(tool, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return BAD(c->err, path, ".name",
                   name ? "Input should be a non-empty string" : "Field required");
    if (json_object_get(names, json_string_value(name)) != NULL)
        return BAD(c->err, "tools", "", "Tool names must be unique (%.64s)",
                   json_string_value(name));
    if (json_object_set(names, json_string_value(name), json_true()) != 0)
        return -ENOMEM;
    json_t *schema = json_object_get(tool, "input_schema");
    if (!json_is_object(schema))
        return BAD(c->err, path, ".input_schema",
                   schema ? "Input should be an object" : "Field required");
    if (!jstr_is(json_object_get(schema, "type"), "object"))
        return BAD(c->err, path, ".input_schema.type", "Input should be 'object'");
    json_t *desc = opt_get(tool, "description");
    if (desc != NULL && !json_is_string(desc))
        return BAD(c->err, path, ".description", "Input should be a valid string");
    json_t *strict = opt_get(tool, "strict");
    if (strict != NULL && !json_is_boolean(strict))
        return BAD(c->err, path, ".strict", "Input should be a valid boolean");

    json_t *fn = json_object();
    json_t *t = json_object();
    int rc = fn && t ? 0 : -ENOMEM;
    if (rc == 0)
        rc = jset_ref(fn, "name", name);
    if (rc == 0 && desc != NULL)
        rc = jset_ref(fn, "description", desc);
    if (rc == 0)
        rc = jset_ref(fn, "parameters", schema);
    if (rc == 0 && strict != NULL)
        rc = jset_ref(fn, "strict", strict);
    if (rc == 0)
        rc = jset(t, "type", json_string("function"));
    if (rc == 0) {
        rc = jset(t, "function", fn);
        fn = NULL;
    }
    if (rc == 0) {
        rc = jpush(out, t);
        t = NULL;
    }
    json_decref(fn);
    json_decref(t);
    return rc;
}

static int conv_tool_choice(conv_t *c, json_t *root, bool have_tools, json_t *req)
{
    json_t *tc = opt_get(root, "tool_choice");
    if (tc == NULL)
        return 0;
    if (!json_is_object(tc))
        return BAD(c->err, "tool_choice", "", "Input should be an object");
    json_t *type = json_object_get(tc, "type");
    json_t *dp = opt_get(tc, "disable_parallel_tool_use");
    if (dp != NULL && !json_is_boolean(dp))
        return BAD(c->err, "tool_choice", ".disable_parallel_tool_use",
                   "Input should be a valid boolean");
    json_t *choice;
    if (jstr_is(type, "auto")) {
        choice = json_string("auto");
    } else if (jstr_is(type, "any")) {
        choice = json_string("required");
    } else if (jstr_is(type, "none")) {
        choice = json_string("none");
    } else if (jstr_is(type, "tool")) {
        json_t *name = json_object_get(tc, "name");
        if (!json_is_string(name) || json_string_length(name) == 0)
            return BAD(c->err, "tool_choice", ".name",
                       name ? "Input should be a non-empty string" : "Field required");
        choice = json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name);
    } else {
        return BAD(c->err, "tool_choice", ".type",
                   "Input should be 'auto', 'any', 'tool' or 'none'");
    }
    if (!have_tools) { /* OpenAI refuses tool_choice without tools */
        json_decref(choice);
        return 0;
    }
    int rc = jset(req, "tool_choice", choice);
    if (rc == 0 && json_is_true(dp) && !jstr_is(type, "none"))
        rc = jset(req, "parallel_tool_calls", json_false());
    return rc;
}

static int conv_tools(conv_t *c, json_t *root, json_t *req)
{
    json_t *tools = opt_get(root, "tools");
    if (tools != NULL && !json_is_array(tools))
        return BAD(c->err, "tools", "", "Input should be a valid list");
    json_t *out = json_array();
    json_t *names = json_object();
    int rc = out && names ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < json_array_size(tools); i++)
        rc = conv_tool(c, json_array_get(tools, i), i, names, out);
    if (rc == 0 && json_array_size(out) > 0)
        rc = jset_ref(req, "tools", out);
    if (rc == 0)
        rc = conv_tool_choice(c, root, json_array_size(out) > 0, req);
    json_decref(out);
    json_decref(names);
    return rc;
}

/* thinking -> reasoning_effort. max_tokens < 0 when not required (counting). */
static int conv_thinking(conv_t *c, json_t *root, json_int_t max_tokens, json_t *req,
                         yr_anth_req_info_t *info)
{
    const char *effort = NULL;
    json_t *th = opt_get(root, "thinking");
    if (th != NULL) {
        if (!json_is_object(th))
            return BAD(c->err, "thinking", "", "Input should be an object");
        json_t *type = json_object_get(th, "type");
        if (jstr_is(type, "enabled")) {
            json_t *budget = json_object_get(th, "budget_tokens");
            if (!json_is_integer(budget))
                return BAD(c->err, "thinking", ".budget_tokens",
                           budget ? "Input should be a valid integer" : "Field required");
            json_int_t b = json_integer_value(budget);
            if (b < 1024)
                return BAD(c->err, "thinking", ".budget_tokens",
                           "Input should be greater than or equal to 1024");
            if (max_tokens >= 0 && b >= max_tokens)
                return BAD(c->err, "max_tokens", "",
                           "max_tokens must be greater than thinking.budget_tokens");
            effort = b <= 2048 ? "low" : b <= 8192 ? "medium" : "high";
            info->thinking = true;
        } else if (jstr_is(type, "adaptive")) {
            info->thinking = true; /* the model decides: no effort hint */
        } else if (!jstr_is(type, "disabled")) {
            return BAD(c->err, "thinking", ".type",
                       "Input should be 'enabled', 'adaptive' or 'disabled'");
        }
    }
    /* output_config.effort is the direct knob when present. */
    json_t *oc = opt_get(root, "output_config");
    json_t *e = json_is_object(oc) ? json_object_get(oc, "effort") : NULL;
    if (jstr_is(e, "low") || jstr_is(e, "medium") || jstr_is(e, "high"))
        effort = json_string_value(e);
    else if (jstr_is(e, "max"))
        effort = "high";
    return effort ? jset(req, "reasoning_effort", json_string(effort)) : 0;
}

static int conv_metadata(conv_t *c, json_t *root, json_t *req)
{
    json_t *md = opt_get(root, "metadata");
    if (md == NULL)
        return 0;
    if (!json_is_object(md))
        return BAD(c->err, "metadata", "", "Input should be an object");
    json_t *uid = opt_get(md, "user_id");
    if (uid == NULL)
        return 0;
    if (!json_is_string(uid))
        return BAD(c->err, "metadata", ".user_id", "Input should be a valid string");
    return json_string_length(uid) > 0 ? jset_ref(req, "user", uid) : 0;
}

/* Validates the parsed body and builds the OpenAI request in *out_req
 * (owned by the caller). need_max_tokens is false for count_tokens. */
static int conv_root(conv_t *c, json_t *root, bool need_max_tokens, json_t *req,
                     yr_anth_req_info_t *info)
{
    if (!json_is_object(root))
        return BAD(c->err, "", "", "the request body must be a JSON object");
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) || json_string_length(model) == 0)
        return BAD(c->err, "model", "",
                   model ? "Input should be a non-empty string" : "Field required");
    if (json_string_length(model) > YR_ANTH_MODEL_MAX)
        return BAD(c->err, "model", "", "must be at most %d bytes", YR_ANTH_MODEL_MAX);
    memcpy(info->model, json_string_value(model), json_string_length(model) + 1);
    info->model_len = json_string_length(model);

    json_t *mt = opt_get(root, "max_tokens");
    json_int_t max_tokens = -1;
    if (need_max_tokens || mt != NULL) {
        if (mt == NULL)
            return BAD(c->err, "max_tokens", "", "Field required");
        if (!json_is_integer(mt))
            return BAD(c->err, "max_tokens", "", "Input should be a valid integer");
        if (json_integer_value(mt) < 1)
            return BAD(c->err, "max_tokens", "", "Input should be greater than or equal to 1");
        max_tokens = json_integer_value(mt);
    }
    json_t *messages = json_object_get(root, "messages");
    if (!json_is_array(messages))
        return BAD(c->err, "messages", "",
                   messages ? "Input should be a valid list" : "Field required");
    if (json_array_size(messages) == 0)
        return BAD(c->err, "messages", "", "at least one message is required");

    int rc = jset_ref(req, "model", model);
    if (rc == 0)
        rc = jset_ref(req, "messages", c->msgs);
    if (rc == 0)
        rc = conv_messages(c, messages);
    if (rc == 0)
        rc = conv_system(c, opt_get(root, "system"));
    if (rc == 0 && mt != NULL)
        rc = jset_ref(req, "max_tokens", mt);
    if (rc == 0)
        rc = conv_sampling(c, root, req);
    if (rc < 0)
        return rc;
    json_t *stream = opt_get(root, "stream");
    if (stream != NULL && !json_is_boolean(stream))
        return BAD(c->err, "stream", "", "Input should be a valid boolean");
    info->stream = json_is_true(stream);
    if (info->stream) {
        rc = jset(req, "stream", json_true());
        if (rc == 0)
            rc = jset(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (rc == 0)
        rc = conv_metadata(c, root, req);
    if (rc == 0)
        rc = conv_tools(c, root, req);
    if (rc == 0)
        rc = conv_thinking(c, root, max_tokens, req, info);
    return rc;
}

/* Parses, validates and converts; *out_req is owned by the caller. */
static int conv_body(const char *body, size_t len, bool need_max_tokens, json_t **out_req,
                     yr_anth_req_info_t *info, yr_api_error_t *err)
{
    *out_req = NULL;
    memset(info, 0, sizeof(*info));
    memset(err, 0, sizeof(*err));
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return failk(err, YR_E_INVALID_JSON, "", "",
                     "the request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
    conv_t c = {.err = err, .msgs = json_array(), .all_ids = json_object(), .body_len = len};
    json_t *req = json_object();
    int rc = c.msgs && c.all_ids && req ? 0 : -ENOMEM;
    if (rc == 0)
        rc = conv_root(&c, root, need_max_tokens, req, info);
    json_decref(c.msgs);
    json_decref(c.all_ids);
    json_decref(root);
    if (rc < 0) {
        json_decref(req);
        return fail_rc(err, rc);
    }
    *out_req = req;
    return 0;
}

int yr_anth_request_to_openai(const char *body, size_t len, yr_buf_t *out, yr_anth_req_info_t *info,
                              yr_api_error_t *err)
{
    json_t *req;
    int rc = conv_body(body, len, true, &req, info, err);
    if (rc < 0)
        return rc;
    size_t start = out->len;
    rc = restore(out, start, dump_json(out, req, 0));
    json_decref(req);
    return rc < 0 ? fail_rc(err, rc) : 0;
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
    json_array_foreach(content, i, p) {
        json_t *type = json_object_get(p, "type");
        if (jstr_is(type, "text"))
            *bytes += json_string_length(json_object_get(p, "text"));
        else
            *extra += EST_TOKENS_PER_IMAGE; /* image_url or file */
    }
}

int yr_anth_count_tokens_estimate(const char *body, size_t len, int64_t *tokens,
                                  yr_api_error_t *err)
{
    *tokens = 0;
    yr_anth_req_info_t info;
    json_t *req;
    int rc = conv_body(body, len, false, &req, &info, err);
    if (rc < 0)
        return rc;
    uint64_t bytes = 0, extra = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(req, "messages"), i, m) {
        extra += EST_TOKENS_PER_MESSAGE;
        est_content(json_object_get(m, "content"), &bytes, &extra);
        size_t j;
        json_t *call;
        json_array_foreach(json_object_get(m, "tool_calls"), j, call) {
            json_t *fn = json_object_get(call, "function");
            bytes += json_string_length(json_object_get(fn, "name"));
            bytes += json_string_length(json_object_get(fn, "arguments"));
        }
    }
    yr_buf_t schema;
    yr_buf_init(&schema, len + 64);
    json_t *t;
    json_array_foreach(json_object_get(req, "tools"), i, t) {
        yr_buf_reset(&schema);
        rc = dump_json(&schema, json_object_get(t, "function"), 0);
        if (rc < 0)
            break;
        bytes += schema.len;
    }
    yr_buf_free(&schema);
    json_decref(req);
    if (rc < 0)
        return fail_rc(err, rc);
    uint64_t est = (bytes + 3) / 4 + extra;
    *tokens = est > 0 ? (int64_t)est : 1;
    return 0;
}

/* ---- errors ------------------------------------------------------------------ */

const char *yr_anth_error_type(yr_err_t e)
{
    int status = yr_err_info(e)->status;
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "overloaded_error";
    case 504: return "timeout_error";
    default: break;
    }
    return status < 500 ? "invalid_request_error" : "api_error";
}

int yr_anth_error_status(yr_err_t e)
{
    return yr_err_info(e)->status;
}

int yr_anth_error_body(yr_err_t e, yr_str_t message, yr_str_t request_id, yr_buf_t *out)
{
    size_t start = out->len;
    w_t w = {out, 0};
    w_raw(&w, "{\"type\":\"error\",\"error\":{\"type\":");
    w_cstr(&w, yr_anth_error_type(e));
    w_raw(&w, ",\"message\":");
    w_str(&w, message.ptr ? message : YR_STR(""));
    w_raw(&w, "},\"request_id\":");
    if (request_id.len > 0)
        w_str(&w, request_id);
    else
        w_raw(&w, "null");
    w_raw(&w, "}");
    return restore(out, start, w.rc);
}

/* ---- response ------------------------------------------------------------------ */

typedef struct {
    int64_t input, output, cached;
} usage_t;

/* usage from an OpenAI usage object; fields that are not integers count 0. */
static usage_t usage_from(json_t *u)
{
    usage_t r = {0, 0, 0};
    json_t *pt = json_object_get(u, "prompt_tokens");
    json_t *ct = json_object_get(u, "completion_tokens");
    json_t *cached = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    int64_t prompt = json_is_integer(pt) && json_integer_value(pt) > 0 ? json_integer_value(pt) : 0;
    r.output = json_is_integer(ct) && json_integer_value(ct) > 0 ? json_integer_value(ct) : 0;
    r.cached =
        json_is_integer(cached) && json_integer_value(cached) > 0 ? json_integer_value(cached) : 0;
    if (r.cached > prompt)
        r.cached = prompt;
    r.input = prompt - r.cached;
    return r;
}

static void w_usage(w_t *w, const usage_t *u)
{
    w_raw(w, "{\"input_tokens\":");
    w_int(w, u->input);
    w_raw(w, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":");
    w_int(w, u->cached);
    w_raw(w, ",\"output_tokens\":");
    w_int(w, u->output);
    w_raw(w, "}");
}

/* OpenAI finish_reason -> Anthropic stop_reason. */
static const char *map_finish(const char *fr, bool tool_blocks, bool refusal, bool stop_seq)
{
    if (refusal || (fr && strcmp(fr, "content_filter") == 0))
        return "refusal";
    if (fr && strcmp(fr, "length") == 0)
        return "max_tokens";
    if (tool_blocks)
        return "tool_use";
    if (stop_seq)
        return "stop_sequence";
    return "end_turn";
}

/* The stop string vLLM ("stop_reason") or SGLang ("matched_stop") report
 * for finish_reason "stop"; NULL when they report none or a token id. */
static json_t *matched_stop(json_t *choice)
{
    json_t *fr = json_object_get(choice, "finish_reason");
    if (!jstr_is(fr, "stop"))
        return NULL;
    json_t *s = json_object_get(choice, "stop_reason");
    if (!json_is_string(s))
        s = json_object_get(choice, "matched_stop");
    return json_is_string(s) && json_string_length(s) > 0 ? s : NULL;
}

/* A string, or null/absent; anything else is malformed. */
static int opt_string(json_t *obj, const char *key, yr_str_t *out)
{
    json_t *v = opt_get(obj, key);
    *out = YR_STR_NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -EINVAL;
    *out = jstr_slice(v);
    return 0;
}

/* reasoning_content (DeepSeek, vLLM) or reasoning (OpenRouter, newer vLLM). */
static int reasoning_of(json_t *obj, yr_str_t *out)
{
    int rc = opt_string(obj, "reasoning_content", out);
    if (rc == 0 && out->ptr == NULL)
        rc = opt_string(obj, "reasoning", out);
    return rc;
}

/* message.content: a string, null, or an array of text parts. */
static int content_text(json_t *msg, yr_buf_t *text)
{
    json_t *c = opt_get(msg, "content");
    if (c == NULL)
        return 0;
    if (json_is_string(c))
        return yr_buf_append_str(text, jstr_slice(c));
    if (!json_is_array(c))
        return -EINVAL;
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        json_t *t = json_object_get(p, "text");
        if (!json_is_object(p))
            return -EINVAL;
        if (!jstr_is(json_object_get(p, "type"), "text"))
            continue;
        if (!json_is_string(t))
            return -EINVAL;
        int rc = yr_buf_append_str(text, jstr_slice(t));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Writes "," before every list item but the first. */
static void w_item(w_t *w, bool *first)
{
    if (!*first)
        w_raw(w, ",");
    *first = false;
}

static int check_tool_call(json_t *call)
{
    json_t *type = opt_get(call, "type");
    json_t *fn = json_object_get(call, "function");
    json_t *name = json_object_get(fn, "name");
    json_t *args = opt_get(fn, "arguments");
    if (!json_is_object(call) || (type != NULL && !jstr_is(type, "function")) ||
        !json_is_string(name) || json_string_length(name) == 0 ||
        (args != NULL && !json_is_string(args) && !json_is_object(args)))
        return -EINVAL;
    return 0;
}

/* One (checked) tool call -> a tool_use block. Arguments that parse as a
 * JSON object are copied byte for byte (numbers keep their spelling); empty
 * or invalid arguments become {}. */
static void w_tool_use(w_t *w, json_t *call, size_t i, const char *msg_id)
{
    json_t *fn = json_object_get(call, "function");
    json_t *id = json_object_get(call, "id");
    json_t *args = opt_get(fn, "arguments");
    w_raw(w, "{\"type\":\"tool_use\",\"id\":");
    if (json_is_string(id) && json_string_length(id) > 0) {
        w_str(w, jstr_slice(id));
    } else {
        char tmp[4 + ID_SUFFIX_MAX + 32];
        snprintf(tmp, sizeof(tmp), "toolu_%s_%zu", msg_id + 4, i);
        w_cstr(w, tmp);
    }
    w_raw(w, ",\"name\":");
    w_str(w, jstr_slice(json_object_get(fn, "name")));
    w_raw(w, ",\"input\":");
    if (json_is_object(args)) { /* some servers send the object itself */
        if (w->rc == 0)
            w->rc = dump_json(w->b, args, 0);
    } else {
        yr_str_t a = args ? jstr_slice(args) : YR_STR("");
        json_t *parsed = json_loadb(a.ptr, a.len, JSON_DECODE_INT_AS_REAL, NULL);
        /* jansson accepted it: valid JSON, no trailing garbage, safe to copy. */
        w_bytes(w, json_is_object(parsed) ? a : YR_STR("{}"));
        json_decref(parsed);
    }
    w_raw(w, "}");
}

static int write_response(json_t *root, yr_str_t completion, yr_str_t model, w_t *w)
{
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *fr = opt_get(choice, "finish_reason");
    json_t *calls = opt_get(msg, "tool_calls");
    yr_str_t reasoning, refusal, oid;
    if (!json_is_object(msg) || (fr != NULL && !json_is_string(fr)) ||
        (calls != NULL && !json_is_array(calls)) || reasoning_of(msg, &reasoning) < 0 ||
        opt_string(msg, "refusal", &refusal) < 0 || opt_string(root, "id", &oid) < 0)
        return -EINVAL;
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        if (check_tool_call(call) < 0)
            return -EINVAL;
    }
    yr_buf_t text;
    yr_buf_init(&text, completion.len);
    int rc = content_text(msg, &text);
    bool refused = rc == 0 && text.len == 0 && refusal.len > 0;
    if (refused)
        rc = yr_buf_append_str(&text, refusal);
    if (rc < 0) {
        yr_buf_free(&text);
        return rc;
    }
    char id[4 + ID_SUFFIX_MAX + 1];
    make_msg_id(id, oid, fnv1a(completion, 0xcbf29ce484222325ULL));
    if (model.len == 0)
        model = jstr_slice(json_object_get(root, "model"));

    w_raw(w, "{\"id\":");
    w_cstr(w, id);
    w_raw(w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    w_str(w, model.ptr ? model : YR_STR(""));
    w_raw(w, ",\"content\":[");
    bool first = true;
    if (reasoning.len > 0) {
        w_item(w, &first);
        w_raw(w, "{\"type\":\"thinking\",\"thinking\":");
        w_str(w, reasoning);
        w_raw(w, ",\"signature\":\"\"}");
    }
    if (text.len > 0) {
        w_item(w, &first);
        w_raw(w, "{\"type\":\"text\",\"text\":");
        w_str(w, (yr_str_t){text.data, text.len});
        w_raw(w, "}");
    }
    json_array_foreach(calls, i, call) {
        w_item(w, &first);
        w_tool_use(w, call, i, id);
    }
    json_t *stop = matched_stop(choice);
    bool tools = json_array_size(calls) > 0;
    const char *reason = map_finish(json_string_value(fr), tools, refused, stop != NULL);
    w_raw(w, "],\"stop_reason\":");
    w_cstr(w, reason);
    w_raw(w, ",\"stop_sequence\":");
    if (strcmp(reason, "stop_sequence") == 0)
        w_str(w, jstr_slice(stop));
    else
        w_raw(w, "null");
    usage_t u = usage_from(json_object_get(root, "usage"));
    w_raw(w, ",\"usage\":");
    w_usage(w, &u);
    w_raw(w, "}");
    yr_buf_free(&text);
    return w->rc;
}

int yr_anth_response_from_openai(yr_str_t completion, yr_str_t model, yr_buf_t *out)
{
    json_t *root = json_loadb(completion.ptr ? completion.ptr : "", completion.len, 0, NULL);
    if (!json_is_object(root) || json_array_size(json_object_get(root, "choices")) == 0) {
        json_decref(root);
        return -EINVAL;
    }
    size_t start = out->len;
    w_t w = {out, 0};
    int rc = write_response(root, completion, model, &w);
    json_decref(root);
    return restore(out, start, rc);
}

/* ---- stream encoder ------------------------------------------------------------ */

typedef enum { BLK_NONE, BLK_THINKING, BLK_TEXT, BLK_TOOL } blk_t;

typedef struct {
    char id[TOOL_STR_MAX + 1];
    char name[TOOL_STR_MAX + 1];
    size_t id_len, name_len;
    bool seen, opened, closed;
    yr_buf_t held; /* argument fragments not sent yet, in order */
    /* Shape of the argument text so far, to tell when it is a complete JSON
     * object (then the call is over and the next one may open). */
    uint32_t depth;
    bool started, in_str, esc, broken;
} enc_tool_t;

struct yr_anth_enc {
    char model[YR_ANTH_MODEL_MAX + 1];
    size_t model_len;
    char id[4 + ID_SUFFIX_MAX + 1];
    bool have_id;
    bool started, finish_seen, finished, failed, refusal, tools_sent;
    blk_t open;
    size_t open_tool;
    uint32_t next_block; /* Anthropic index of the next content block */
    enc_tool_t *tools;
    size_t ntools;
    size_t held_total;
    const char *finish_reason; /* a static string; NULL until one arrived */
    yr_buf_t stop_seq;
    bool have_stop_seq;
    bool have_usage;
    usage_t usage;
};

yr_anth_enc_t *yr_anth_enc_new(yr_str_t model, yr_str_t id_seed)
{
    yr_anth_enc_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->model_len = model.len < YR_ANTH_MODEL_MAX ? model.len : YR_ANTH_MODEL_MAX;
    if (e->model_len > 0)
        memcpy(e->model, model.ptr, e->model_len);
    if (id_seed.len > 0) {
        make_msg_id(e->id, id_seed, fnv1a(id_seed, 0xcbf29ce484222325ULL));
        e->have_id = true;
    }
    yr_buf_init(&e->stop_seq, STOP_SEQ_MAX);
    return e;
}

void yr_anth_enc_free(yr_anth_enc_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->ntools; i++)
        yr_buf_free(&e->tools[i].held);
    free(e->tools);
    yr_buf_free(&e->stop_seq);
    free(e);
}

bool yr_anth_enc_done(const yr_anth_enc_t *e)
{
    return e->finished || e->failed;
}

static void ev_begin(w_t *w, const char *name)
{
    w_raw(w, "event: ");
    w_raw(w, name);
    w_raw(w, "\ndata: ");
}

static void ev_end(w_t *w)
{
    w_raw(w, "\n\n");
}

static void emit_message_start(yr_anth_enc_t *e, w_t *w)
{
    ev_begin(w, "message_start");
    w_raw(w, "{\"type\":\"message_start\",\"message\":{\"id\":");
    w_cstr(w, e->id);
    w_raw(w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    w_str(w, (yr_str_t){e->model, e->model_len});
    w_raw(w, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    usage_t u = e->usage;
    u.output = 0; /* nothing generated yet */
    w_usage(w, &u);
    w_raw(w, "}}");
    ev_end(w);
    ev_begin(w, "ping");
    w_raw(w, "{\"type\":\"ping\"}");
    ev_end(w);
}

static void emit_close(yr_anth_enc_t *e, w_t *w)
{
    if (e->open == BLK_NONE)
        return;
    ev_begin(w, "content_block_stop");
    w_raw(w, "{\"type\":\"content_block_stop\",\"index\":");
    w_int(w, (int64_t)e->next_block - 1);
    w_raw(w, "}");
    ev_end(w);
    if (e->open == BLK_TOOL)
        e->tools[e->open_tool].closed = true;
    e->open = BLK_NONE;
}

static void emit_block_start_head(yr_anth_enc_t *e, w_t *w)
{
    ev_begin(w, "content_block_start");
    w_raw(w, "{\"type\":\"content_block_start\",\"index\":");
    w_int(w, e->next_block++);
    w_raw(w, ",\"content_block\":");
}

static void emit_delta(yr_anth_enc_t *e, w_t *w, const char *type, const char *field, yr_str_t s)
{
    ev_begin(w, "content_block_delta");
    w_raw(w, "{\"type\":\"content_block_delta\",\"index\":");
    w_int(w, (int64_t)e->next_block - 1);
    w_raw(w, ",\"delta\":{\"type\":\"");
    w_raw(w, type);
    w_raw(w, "\",\"");
    w_raw(w, field);
    w_raw(w, "\":");
    w_str(w, s);
    w_raw(w, "}}");
    ev_end(w);
}

/* Opens a thinking or text block unless one of that kind is open. */
static void open_plain(yr_anth_enc_t *e, w_t *w, blk_t kind)
{
    if (e->open == kind)
        return;
    emit_close(e, w);
    emit_block_start_head(e, w);
    w_raw(w, kind == BLK_TEXT ? "{\"type\":\"text\",\"text\":\"\"}}"
                              : "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}");
    ev_end(w);
    e->open = kind;
}

/* Opens the tool_use block of call j and sends what was held back for it. */
static void open_tool(yr_anth_enc_t *e, w_t *w, size_t j)
{
    enc_tool_t *t = &e->tools[j];
    emit_close(e, w);
    emit_block_start_head(e, w);
    w_raw(w, "{\"type\":\"tool_use\",\"id\":");
    if (t->id_len > 0) {
        w_str(w, (yr_str_t){t->id, t->id_len});
    } else {
        char tmp[4 + ID_SUFFIX_MAX + 32];
        snprintf(tmp, sizeof(tmp), "toolu_%s_%zu", e->id + 4, j);
        w_cstr(w, tmp);
    }
    w_raw(w, ",\"name\":");
    w_str(w, (yr_str_t){t->name, t->name_len});
    w_raw(w, ",\"input\":{}}}");
    ev_end(w);
    t->opened = true;
    e->open = BLK_TOOL;
    e->open_tool = j;
    e->tools_sent = true;
    if (t->held.len > 0) {
        emit_delta(e, w, "input_json_delta", "partial_json", (yr_str_t){t->held.data, t->held.len});
        e->held_total -= t->held.len;
        yr_buf_free(&t->held);
    }
}

static bool tool_complete(const enc_tool_t *t)
{
    return t->started && t->depth == 0 && !t->in_str && !t->broken;
}

static void args_scan(enc_tool_t *t, yr_str_t f)
{
    for (size_t i = 0; i < f.len; i++) {
        char ch = f.ptr[i];
        if (t->in_str) {
            if (t->esc)
                t->esc = false;
            else if (ch == '\\')
                t->esc = true;
            else if (ch == '"')
                t->in_str = false;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
            continue;
        if (!t->started) {
            t->started = true;
            t->depth = 1;
            t->broken = ch != '{';
        } else if (t->depth == 0) {
            t->broken = true; /* text after the complete value */
        } else if (ch == '"') {
            t->in_str = true;
        } else if (ch == '{' || ch == '[') {
            t->depth++;
        } else if (ch == '}' || ch == ']') {
            t->depth--;
        }
    }
}

/* The lowest-index call that was seen, has a name and is not open yet. */
static bool next_held(const yr_anth_enc_t *e, size_t *j)
{
    for (size_t k = 0; k < e->ntools; k++) {
        const enc_tool_t *t = &e->tools[k];
        if (t->seen && !t->opened && t->name_len > 0) {
            *j = k;
            return true;
        }
    }
    return false;
}

/* While the open call's arguments are complete, move on to a held one. */
static void advance_tools(yr_anth_enc_t *e, w_t *w)
{
    size_t j;
    while (w->rc == 0 && e->open == BLK_TOOL && tool_complete(&e->tools[e->open_tool]) &&
           next_held(e, &j))
        open_tool(e, w, j);
}

static int tool_slot(yr_anth_enc_t *e, json_int_t index, enc_tool_t **out)
{
    if (index < 0 || index >= YR_ANTH_ENC_MAX_TOOLS)
        return -EINVAL;
    size_t j = (size_t)index;
    if (j >= e->ntools) {
        enc_tool_t *t = realloc(e->tools, (j + 1) * sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        memset(t + e->ntools, 0, (j + 1 - e->ntools) * sizeof(*t));
        for (size_t k = e->ntools; k <= j; k++)
            yr_buf_init(&t[k].held, YR_ANTH_ENC_MAX_PENDING);
        e->tools = t;
        e->ntools = j + 1;
    }
    *out = &e->tools[j];
    return 0;
}

static bool all_space(yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] != ' ' && s.ptr[i] != '\t' && s.ptr[i] != '\n' && s.ptr[i] != '\r')
            return false;
    return true;
}

static int copy_small(char *dst, size_t *dst_len, yr_str_t s)
{
    if (*dst_len > 0 || s.len == 0)
        return 0; /* the first non-empty value wins */
    if (s.len > TOOL_STR_MAX)
        return -EINVAL;
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    *dst_len = s.len;
    return 0;
}

/* One element of delta.tool_calls. */
static int enc_tool_delta(yr_anth_enc_t *e, json_t *tc, size_t pos, w_t *w)
{
    if (!json_is_object(tc))
        return -EINVAL;
    json_t *index = opt_get(tc, "index");
    json_t *fn = opt_get(tc, "function");
    if ((index != NULL && !json_is_integer(index)) || (fn != NULL && !json_is_object(fn)))
        return -EINVAL;
    yr_str_t id, name, args;
    if (opt_string(tc, "id", &id) < 0 || opt_string(fn, "name", &name) < 0 ||
        opt_string(fn, "arguments", &args) < 0)
        return -EINVAL;
    enc_tool_t *t;
    size_t j;
    int rc = tool_slot(e, index ? json_integer_value(index) : (json_int_t)pos, &t);
    if (rc < 0)
        return rc;
    j = (size_t)(t - e->tools);
    if (t->closed) /* a late fragment: harmless only if it adds nothing */
        return all_space(args) ? 0 : -EINVAL;
    if (copy_small(t->id, &t->id_len, id) < 0 || copy_small(t->name, &t->name_len, name) < 0)
        return -EINVAL;
    t->seen = true;
    args_scan(t, args);
    if (e->open == BLK_TOOL && e->open_tool == j) {
        if (args.len > 0)
            emit_delta(e, w, "input_json_delta", "partial_json", args);
    } else {
        if (args.len > YR_ANTH_ENC_MAX_PENDING - e->held_total)
            return -E2BIG;
        if ((rc = yr_buf_append_str(&t->held, args)) < 0)
            return rc;
        e->held_total += args.len;
        bool free_to_open = e->open != BLK_TOOL || tool_complete(&e->tools[e->open_tool]);
        if (free_to_open && t->name_len > 0)
            open_tool(e, w, j);
    }
    advance_tools(e, w);
    return w->rc;
}

/* Closes the open block and sends every held-back call, in index order. */
static int enc_close_all(yr_anth_enc_t *e, w_t *w)
{
    emit_close(e, w);
    for (size_t k = 0; w->rc == 0 && k < e->ntools; k++) {
        enc_tool_t *t = &e->tools[k];
        if (!t->seen || t->opened)
            continue;
        if (t->name_len == 0)
            return -EINVAL; /* a tool call that never got a name */
        open_tool(e, w, k);
        emit_close(e, w);
    }
    return w->rc;
}

static int enc_finish_reason(yr_anth_enc_t *e, json_t *choice, const char *fr, w_t *w)
{
    static const char *const known[] = {"stop", "length", "tool_calls", "function_call",
                                        "content_filter"};
    e->finish_reason = "stop";
    for (size_t i = 0; i < ARRAY_LEN(known); i++)
        if (strcmp(fr, known[i]) == 0)
            e->finish_reason = known[i];
    json_t *stop = matched_stop(choice);
    if (stop != NULL && json_string_length(stop) <= STOP_SEQ_MAX) {
        yr_buf_reset(&e->stop_seq);
        if (yr_buf_append_str(&e->stop_seq, jstr_slice(stop)) < 0)
            return -ENOMEM;
        e->have_stop_seq = true;
    }
    e->finish_seen = true;
    return enc_close_all(e, w);
}

static int enc_choice(yr_anth_enc_t *e, json_t *choice, w_t *w)
{
    json_t *delta = opt_get(choice, "delta");
    json_t *fr = opt_get(choice, "finish_reason");
    if ((delta != NULL && !json_is_object(delta)) || (fr != NULL && !json_is_string(fr)))
        return -EINVAL;
    yr_str_t reasoning, content, refusal;
    json_t *calls = opt_get(delta, "tool_calls");
    if (reasoning_of(delta, &reasoning) < 0 || opt_string(delta, "content", &content) < 0 ||
        opt_string(delta, "refusal", &refusal) < 0 || (calls != NULL && !json_is_array(calls)))
        return -EINVAL;
    if (e->finish_seen && (reasoning.len || content.len || refusal.len || json_array_size(calls)))
        return -EINVAL; /* output after the end of the choice */
    if (reasoning.len > 0) {
        open_plain(e, w, BLK_THINKING);
        emit_delta(e, w, "thinking_delta", "thinking", reasoning);
    }
    if (content.len > 0) {
        open_plain(e, w, BLK_TEXT);
        emit_delta(e, w, "text_delta", "text", content);
    }
    if (refusal.len > 0) { /* an OpenAI refusal is shown as text */
        open_plain(e, w, BLK_TEXT);
        emit_delta(e, w, "text_delta", "text", refusal);
        e->refusal = true;
    }
    size_t k;
    json_t *tc;
    json_array_foreach(calls, k, tc) {
        if (w->rc < 0)
            break;
        int rc = enc_tool_delta(e, tc, k, w);
        if (rc < 0)
            return rc;
    }
    if (w->rc == 0 && fr != NULL && !e->finish_seen)
        return enc_finish_reason(e, choice, json_string_value(fr), w);
    return w->rc;
}

static int enc_choices(yr_anth_enc_t *e, json_t *choices, w_t *w)
{
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch) {
        json_t *idx = opt_get(ch, "index");
        if (!json_is_object(ch) || (idx != NULL && !json_is_integer(idx)))
            return -EINVAL;
        if (idx != NULL && json_integer_value(idx) != 0)
            continue; /* n > 1 is never requested; only choice 0 is shown */
        int rc = enc_choice(e, ch, w);
        if (rc < 0)
            return rc;
    }
    return w->rc;
}

static int enc_chunk(yr_anth_enc_t *e, yr_str_t data, w_t *w)
{
    json_t *root = json_loadb(data.ptr, data.len, 0, NULL);
    json_t *choices = opt_get(root, "choices");
    json_t *usage = opt_get(root, "usage");
    yr_str_t cid;
    int rc = -EINVAL;
    if (!json_is_object(root) || opt_get(root, "error") != NULL ||
        (choices != NULL && !json_is_array(choices)) || (usage != NULL && !json_is_object(usage)) ||
        opt_string(root, "id", &cid) < 0)
        goto out;
    if (usage != NULL) {
        e->usage = usage_from(usage);
        e->have_usage = true;
    }
    if (!e->started) {
        if (!e->have_id)
            make_msg_id(e->id, cid, fnv1a(data, 0xcbf29ce484222325ULL) ^ (uintptr_t)e);
        e->have_id = true;
        emit_message_start(e, w);
        e->started = true;
    }
    rc = enc_choices(e, choices, w);
out:
    json_decref(root);
    return rc;
}

static int enc_end(yr_anth_enc_t *e, w_t *w)
{
    if (!e->started) {
        if (!e->have_id)
            make_msg_id(e->id, YR_STR_NULL, (uintptr_t)e);
        emit_message_start(e, w);
        e->started = true;
    }
    if (!e->finish_seen) {
        int rc = enc_close_all(e, w);
        if (rc < 0)
            return rc;
    }
    const char *stop = map_finish(e->finish_reason, e->tools_sent, e->refusal, e->have_stop_seq);
    ev_begin(w, "message_delta");
    w_raw(w, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    w_cstr(w, stop);
    w_raw(w, ",\"stop_sequence\":");
    if (strcmp(stop, "stop_sequence") == 0)
        w_str(w, (yr_str_t){e->stop_seq.data, e->stop_seq.len});
    else
        w_raw(w, "null");
    w_raw(w, "},\"usage\":");
    if (e->have_usage) {
        w_usage(w, &e->usage);
    } else {
        w_raw(w, "{\"output_tokens\":0}");
    }
    w_raw(w, "}");
    ev_end(w);
    ev_begin(w, "message_stop");
    w_raw(w, "{\"type\":\"message_stop\"}");
    ev_end(w);
    return w->rc;
}

/* Runs one step with `out` restored and the encoder failed on error. */
static int enc_step(yr_anth_enc_t *e, yr_buf_t *out, int rc, size_t start)
{
    if (rc < 0) {
        e->failed = true;
        return restore(out, start, rc);
    }
    return 0;
}

int yr_anth_enc_event(yr_anth_enc_t *e, yr_str_t data, yr_buf_t *out)
{
    if (e->failed || e->finished)
        return -EINVAL;
    size_t start = out->len;
    w_t w = {out, 0};
    yr_str_t d = yr_str_trim(data);
    int rc;
    if (yr_str_eq(d, YR_STR("[DONE]"))) {
        rc = enc_end(e, &w);
        if (rc == 0)
            e->finished = true;
    } else {
        rc = enc_chunk(e, data.ptr ? data : YR_STR(""), &w);
    }
    return enc_step(e, out, rc, start);
}

int yr_anth_enc_finish(yr_anth_enc_t *e, yr_buf_t *out)
{
    if (e->failed)
        return -EINVAL;
    if (e->finished)
        return 0;
    size_t start = out->len;
    w_t w = {out, 0};
    int rc = enc_end(e, &w);
    if (rc == 0)
        e->finished = true;
    return enc_step(e, out, rc, start);
}

int yr_anth_enc_error(yr_anth_enc_t *e, const char *type, const char *message, yr_buf_t *out)
{
    size_t start = out->len;
    w_t w = {out, 0};
    ev_begin(&w, "error");
    w_raw(&w, "{\"type\":\"error\",\"error\":{\"type\":");
    w_cstr(&w, type ? type : "api_error");
    w_raw(&w, ",\"message\":");
    w_cstr(&w, message ? message : "");
    w_raw(&w, "}}");
    ev_end(&w);
    e->failed = true; /* the stream is over either way */
    return restore(out, start, w.rc);
}
