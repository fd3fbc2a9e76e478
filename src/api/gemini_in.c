/* Gemini GenerateContentRequest in, OpenAI chat request out. See
 * docs/gemini_inbound.md for the mapping tables.
 *
 * Parsed with jansson, checked field by field, and rebuilt as an OpenAI
 * request tree that yr_aj_dump_json() writes into the caller's capped
 * buffer (the same path as anthropic_in.c, whose helpers are shared through
 * anthropic_json.h). The answer's half is gemini_out.c. */
#include "api/gemini_in.h"
#include "api/anthropic_json.h"
#include "api/json_tok.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(err, path, sub, ...) yr_aj_fail((err), YR_E_INVALID_REQUEST, (path), (sub), __VA_ARGS__)
/* Nesting of a Gemini Schema converted to JSON Schema. */
#define SCHEMA_DEPTH_MAX 64

/* ---- the URL ------------------------------------------------------------------ */

static const yr_str_t target_prefixes[] = {YR_STR("/v1beta/models/"), YR_STR("/v1/models/")};

static const struct {
    yr_str_t name;
    yr_gem_method_t method;
} methods[] = {
    {YR_STR("generateContent"), YR_GEM_GENERATE},
    {YR_STR("streamGenerateContent"), YR_GEM_STREAM},
    {YR_STR("countTokens"), YR_GEM_COUNT},
};

/* The part after the prefix, or an empty slice when path has none. */
static yr_str_t target_tail(yr_str_t path)
{
    for (size_t i = 0; i < ARRAY_LEN(target_prefixes); i++)
        if (yr_str_has_prefix(path, target_prefixes[i]))
            return (yr_str_t){path.ptr + target_prefixes[i].len, path.len - target_prefixes[i].len};
    return YR_STR_NULL;
}

bool yr_gem_is_target(yr_str_t path)
{
    yr_str_t t = target_tail(path);
    return t.len > 0 && memchr(t.ptr, ':', t.len) != NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into info->model; -EINVAL when malformed, too long,
 * empty, or holding a '/' or a control byte. */
static int decode_model(yr_str_t s, yr_gem_req_info_t *info)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '%') {
            if (i + 2 >= s.len)
                return -EINVAL;
            int hi = hexval(s.ptr[i + 1]);
            int lo = hexval(s.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '/' || n >= YR_GEM_MODEL_MAX)
            return -EINVAL;
        info->model[n++] = (char)ch;
    }
    info->model[n] = '\0';
    info->model_len = n;
    return n > 0 ? 0 : -EINVAL;
}

/* alt=sse among the &-separated query parameters. */
static bool query_alt_sse(yr_str_t q)
{
    size_t i = 0;
    while (i < q.len) {
        const char *amp = memchr(q.ptr + i, '&', q.len - i);
        size_t end = amp ? (size_t)(amp - q.ptr) : q.len;
        if (yr_str_eq((yr_str_t){q.ptr + i, end - i}, YR_STR("alt=sse")))
            return true;
        i = end + 1;
    }
    return false;
}

int yr_gem_parse_target(yr_str_t path, yr_str_t query, yr_gem_req_info_t *info, yr_api_error_t *err)
{
    memset(info, 0, sizeof(*info));
    memset(err, 0, sizeof(*err));
    yr_str_t t = target_tail(path);
    const char *colon = t.len ? memrchr(t.ptr, ':', t.len) : NULL;
    if (colon == NULL)
        return yr_aj_fail(err, YR_E_NOT_FOUND, "", "", "no such method");
    yr_str_t model = {t.ptr, (size_t)(colon - t.ptr)};
    yr_str_t method = {colon + 1, t.len - model.len - 1};
    bool known = false;
    for (size_t i = 0; i < ARRAY_LEN(methods) && !known; i++) {
        if (yr_str_eq(method, methods[i].name)) {
            info->method = methods[i].method;
            known = true;
        }
    }
    if (!known)
        return yr_aj_fail(err, YR_E_NOT_FOUND, "", "",
                          "method '%.*s' is not served here; this gateway serves generateContent, "
                          "streamGenerateContent and countTokens",
                          (int)(method.len > 64 ? 64 : method.len), method.ptr);
    if (decode_model(model, info) < 0)
        return BAD(err, "model", "",
                   "the model name in the URL is empty, malformed or longer than %d bytes",
                   YR_GEM_MODEL_MAX);
    info->stream = info->method == YR_GEM_STREAM;
    info->sse = query_alt_sse(query);
    return 0;
}

int yr_gem_parse_model_path(yr_str_t path, yr_gem_req_info_t *info)
{
    memset(info, 0, sizeof(*info));
    if (yr_str_eq(path, YR_STR("/v1beta/models")))
        return -ENOENT;
    yr_str_t t =
        yr_str_has_prefix(path, target_prefixes[0])
            ? (yr_str_t){path.ptr + target_prefixes[0].len, path.len - target_prefixes[0].len}
            : YR_STR_NULL;
    if (t.len == 0)
        return yr_str_eq(path, YR_STR("/v1beta/models/")) ? -ENOENT : -EINVAL;
    return decode_model(t, info);
}

int yr_gem_model_json(yr_str_t id, yr_buf_t *out)
{
    size_t start = out->len;
    yr_buf_t name;
    yr_buf_init(&name, id.len + 8);
    int rc = yr_buf_append_str(&name, YR_STR("models/"));
    if (rc == 0)
        rc = yr_buf_append_str(&name, id);
    yr_aj_w_t w = {out, rc};
    yr_aj_w_raw(&w, "{\"name\":");
    yr_aj_w_str(&w, (yr_str_t){name.data, name.len});
    yr_buf_free(&name);
    yr_aj_w_raw(&w, ",\"displayName\":");
    yr_aj_w_str(&w, id);
    yr_aj_w_raw(&w, ",\"supportedGenerationMethods\":[\"generateContent\","
                    "\"streamGenerateContent\",\"countTokens\"]}");
    return yr_aj_restore(out, start, w.rc);
}

/* ---- the body: light check ------------------------------------------------------ */

int yr_gem_peek(const char *body, size_t len, yr_api_error_t *err)
{
    memset(err, 0, sizeof(*err));
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, body ? body : "", len, true);
    if (rc == -ENOMEM) {
        yr_json_free(&d);
        return yr_aj_fail_rc(err, rc);
    }
    if (rc < 0)
        rc = yr_aj_fail(err, YR_E_INVALID_JSON, "", "",
                        "Invalid JSON payload received: %s (at byte %zu)",
                        d.err ? d.err : "too large", d.err_off);
    else if (yr_json_type(&d, 0) != YR_JT_OBJECT)
        rc = BAD(err, "", "", "the request body must be a JSON object");
    yr_json_free(&d);
    return rc;
}

/* ---- the body: conversion ---------------------------------------------------------- */

typedef struct {
    yr_api_error_t *err;
    json_t *msgs;    /* OpenAI messages being built */
    json_t *pending; /* calls of the previous model turn: [{id, name}] not yet answered */
    size_t pending_at;
    json_t *all_ids; /* every call id so far: they must be unique */
    size_t body_len;
} conv_t;

/* The key of a Part that says what it holds; NULL (and a 400) when none or
 * several of them are set. */
static const char *const part_kinds[] = {
    "text",           "inlineData",          "fileData", "functionCall", "functionResponse",
    "executableCode", "codeExecutionResult",
};

static const char *part_kind(conv_t *c, json_t *part, const char *path, int *rc)
{
    if (!json_is_object(part)) {
        *rc = BAD(c->err, path, "", "a part must be an object");
        return NULL;
    }
    const char *kind = NULL;
    for (size_t i = 0; i < ARRAY_LEN(part_kinds); i++) {
        if (yr_aj_opt_get(part, part_kinds[i]) == NULL)
            continue;
        if (kind != NULL) {
            *rc = BAD(c->err, path, "",
                      "a part holds exactly one of text, inlineData, "
                      "fileData, functionCall, functionResponse (got %s and %s)",
                      kind, part_kinds[i]);
            return NULL;
        }
        kind = part_kinds[i];
    }
    if (kind == NULL) {
        *rc = BAD(c->err, path, "",
                  "a part must hold one of text, inlineData, fileData, functionCall, "
                  "functionResponse");
        return NULL;
    }
    if (strcmp(kind, "executableCode") == 0 || strcmp(kind, "codeExecutionResult") == 0) {
        *rc = BAD(c->err, path, "",
                  "%s parts are not supported by this gateway (code execution "
                  "runs on Google's servers)",
                  kind);
        return NULL;
    }
    json_t *thought = yr_aj_opt_get(part, "thought");
    json_t *sig = yr_aj_opt_get(part, "thoughtSignature");
    if (thought != NULL && !json_is_boolean(thought)) {
        *rc = BAD(c->err, path, ".thought", "must be a boolean");
        return NULL;
    }
    if (sig != NULL && !json_is_string(sig)) {
        *rc = BAD(c->err, path, ".thoughtSignature", "must be a string");
        return NULL;
    }
    return kind;
}

static bool str_nonempty(json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static bool mime_is(json_t *mt, const char *prefix)
{
    return json_is_string(mt) && strncmp(json_string_value(mt), prefix, strlen(prefix)) == 0;
}

/* {"type":"file","file":{"filename","file_data":data URL}} for a PDF. */
static json_t *pdf_part(conv_t *c, json_t *mt, json_t *data)
{
    json_t *url = yr_aj_data_url(c->body_len, mt, data);
    return url ? json_pack("{s:s, s:{s:s, s:o}}", "type", "file", "file", "filename",
                           "document.pdf", "file_data", url)
               : NULL;
}

/* {"type":"input_audio","input_audio":{"data","format"}}: OpenAI takes wav and mp3. */
static json_t *audio_part(json_t *data, const char *format)
{
    return json_pack("{s:s, s:{s:O, s:s}}", "type", "input_audio", "input_audio", "data", data,
                     "format", format);
}

/* inlineData {mimeType, data} -> an OpenAI content part in *out. */
static int conv_inline(conv_t *c, json_t *in, const char *path, json_t **out)
{
    *out = NULL;
    if (!json_is_object(in))
        return BAD(c->err, path, ".inlineData", "must be an object");
    json_t *mt = json_object_get(in, "mimeType");
    json_t *data = json_object_get(in, "data");
    if (!str_nonempty(mt))
        return BAD(c->err, path, ".inlineData.mimeType", "must be a non-empty string");
    if (!json_is_string(data) || !yr_aj_base64_ok(yr_aj_jstr_slice(data)))
        return BAD(c->err, path, ".inlineData.data", "must be non-empty standard base64");
    const char *m = json_string_value(mt);
    if (mime_is(mt, "image/")) {
        json_t *url = yr_aj_data_url(c->body_len, mt, data);
        *out = url ? yr_aj_image_url_part(url) : NULL;
    } else if (strcmp(m, "application/pdf") == 0) {
        *out = pdf_part(c, mt, data);
    } else if (strcmp(m, "audio/wav") == 0 || strcmp(m, "audio/x-wav") == 0) {
        *out = audio_part(data, "wav");
    } else if (strcmp(m, "audio/mp3") == 0 || strcmp(m, "audio/mpeg") == 0) {
        *out = audio_part(data, "mp3");
    } else {
        return BAD(c->err, path, ".inlineData.mimeType",
                   "inline data of type '%.64s' is not supported by this gateway (images, "
                   "application/pdf, audio/wav and audio/mp3 are)",
                   m);
    }
    return *out ? 0 : -ENOMEM;
}

/* fileData {mimeType, fileUri} -> an image_url part: only web images can be
 * given to other providers (the gateway fetches them when a route needs
 * them inline). */
static int conv_file(conv_t *c, json_t *fd, const char *path, json_t **out)
{
    *out = NULL;
    if (!json_is_object(fd))
        return BAD(c->err, path, ".fileData", "must be an object");
    json_t *uri = json_object_get(fd, "fileUri");
    json_t *mt = yr_aj_opt_get(fd, "mimeType");
    if (!str_nonempty(uri))
        return BAD(c->err, path, ".fileData.fileUri", "must be a non-empty string");
    if (mt != NULL && !json_is_string(mt))
        return BAD(c->err, path, ".fileData.mimeType", "must be a string");
    yr_str_t u = yr_aj_jstr_slice(uri);
    bool web = yr_str_has_prefix(u, YR_STR("https://")) || yr_str_has_prefix(u, YR_STR("http://"));
    if (!web || strstr(json_string_value(uri), "generativelanguage.googleapis.com") != NULL)
        return BAD(c->err, path, ".fileData.fileUri",
                   "only http(s) image URLs can be routed to other providers; Files API and "
                   "gs:// URIs are not supported by this gateway");
    if (mt != NULL && !mime_is(mt, "image/"))
        return BAD(c->err, path, ".fileData.mimeType",
                   "file data of type '%.64s' is not supported by this gateway (images are)",
                   json_string_value(mt));
    *out = yr_aj_image_url_part(json_incref(uri));
    return *out ? 0 : -ENOMEM;
}

/* Puts parts in msg as "content": one text part becomes a plain string. */
static int set_parts(json_t *msg, json_t *parts)
{
    json_t *only = json_array_size(parts) == 1 ? json_array_get(parts, 0) : NULL;
    if (only != NULL && yr_aj_jstr_is(json_object_get(only, "type"), "text"))
        return yr_aj_jset_ref(msg, "content", json_object_get(only, "text"));
    return yr_aj_jset_ref(msg, "content", parts);
}

static int push_msg(conv_t *c, const char *role, json_t *parts)
{
    json_t *msg = json_object();
    int rc = msg ? yr_aj_jset(msg, "role", json_string(role)) : -ENOMEM;
    if (rc == 0)
        rc = set_parts(msg, parts);
    if (rc == 0) {
        rc = yr_aj_jpush(c->msgs, msg);
        msg = NULL;
    }
    json_decref(msg);
    return rc;
}

/* The pending call a functionResponse answers: by id when it has one, else
 * the first unanswered call of that name. Removed from pending; its id in
 * *id (a new reference). */
static int match_call(conv_t *c, json_t *fr, const char *path, json_t **id)
{
    *id = NULL;
    json_t *name = json_object_get(fr, "name");
    json_t *rid = yr_aj_opt_get(fr, "id");
    if (!str_nonempty(name))
        return BAD(c->err, path, ".functionResponse.name", "must be a non-empty string");
    if (rid != NULL && !json_is_string(rid))
        return BAD(c->err, path, ".functionResponse.id", "must be a string");
    size_t i;
    json_t *call;
    json_array_foreach(c->pending, i, call)
    {
        bool by_id = str_nonempty(rid) && json_equal(json_object_get(call, "id"), rid);
        bool by_name = !str_nonempty(rid) && json_equal(json_object_get(call, "name"), name);
        if (by_id || by_name) {
            *id = json_incref(json_object_get(call, "id"));
            json_array_remove(c->pending, i);
            return 0;
        }
    }
    return BAD(c->err, path, ".functionResponse",
               "functionResponse '%.64s'%s%.64s%s answers no functionCall of the previous model "
               "turn (each functionCall must be answered by one functionResponse in the next "
               "content)",
               json_string_value(name), rid ? " (id '" : "", rid ? json_string_value(rid) : "",
               rid ? "')" : "");
}

/* A functionResponse -> {"role":"tool","tool_call_id","content"}: the
 * response object serialised (OpenAI tool messages carry text). */
static int conv_function_response(conv_t *c, json_t *fr, const char *path)
{
    if (!json_is_object(fr))
        return BAD(c->err, path, ".functionResponse", "must be an object");
    json_t *resp = json_object_get(fr, "response");
    if (!json_is_object(resp))
        return BAD(c->err, path, ".functionResponse.response",
                   resp ? "must be an object" : "is required");
    json_t *fparts = yr_aj_opt_get(fr, "parts");
    if (fparts != NULL && (!json_is_array(fparts) || json_array_size(fparts) > 0))
        return BAD(c->err, path, ".functionResponse.parts",
                   "multimodal function responses are not supported by this gateway");
    json_t *id;
    int rc = match_call(c, fr, path, &id);
    if (rc < 0)
        return rc;
    yr_buf_t text;
    yr_buf_init(&text, c->body_len + 64);
    rc = yr_aj_dump_json(&text, resp, 0);
    json_t *msg = rc == 0 ? json_pack("{s:s, s:o, s:s%}", "role", "tool", "tool_call_id", id,
                                      "content", text.data, text.len)
                          : NULL;
    if (rc == 0)
        rc = msg ? yr_aj_jpush(c->msgs, msg) : -ENOMEM;
    else
        json_decref(id);
    yr_buf_free(&text);
    return rc;
}

/* Some calls of the previous model turn were not answered. */
static int unanswered(conv_t *c)
{
    json_t *call = json_array_get(c->pending, 0);
    return BAD(c->err, "contents", "",
               "functionCall '%.64s' (contents.%zu) has no functionResponse in the next content; "
               "each functionCall must be answered there",
               json_string_value(json_object_get(call, "name")), c->pending_at);
}

/* A user content: functionResponse parts first (one tool message each, in
 * order), then one user message with everything else. */
static int conv_user(conv_t *c, size_t i, json_t *parts_in)
{
    json_t *parts = json_array();
    int rc = parts ? 0 : -ENOMEM;
    size_t j;
    json_t *p;
    json_array_foreach(parts_in, j, p)
    {
        if (rc < 0)
            break;
        char path[96];
        snprintf(path, sizeof(path), "contents.%zu.parts.%zu", i, j);
        const char *kind = part_kind(c, p, path, &rc);
        if (kind == NULL)
            break;
        json_t *part = NULL;
        if (strcmp(kind, "text") == 0) {
            json_t *text = json_object_get(p, "text");
            if (!json_is_string(text))
                rc = BAD(c->err, path, ".text", "must be a string");
            else if (!json_is_true(yr_aj_opt_get(p, "thought")) &&
                     (part = yr_aj_text_part(text)) == NULL)
                rc = -ENOMEM;
        } else if (strcmp(kind, "inlineData") == 0) {
            rc = conv_inline(c, json_object_get(p, "inlineData"), path, &part);
        } else if (strcmp(kind, "fileData") == 0) {
            rc = conv_file(c, json_object_get(p, "fileData"), path, &part);
        } else if (strcmp(kind, "functionResponse") == 0) {
            rc = conv_function_response(c, json_object_get(p, "functionResponse"), path);
        } else {
            rc = BAD(c->err, path, "", "%s parts are only allowed in model turns", kind);
        }
        if (rc == 0 && part != NULL)
            rc = yr_aj_jpush(parts, part);
    }
    if (rc == 0 && json_array_size(c->pending) > 0)
        rc = unanswered(c);
    if (rc == 0 && json_array_size(parts) > 0)
        rc = push_msg(c, "user", parts);
    json_decref(parts);
    return rc;
}

/* A functionCall (+ the part's thoughtSignature) -> an OpenAI tool call.
 * Calls without an id get "call_<content>_<part>": stable for the same
 * history, unique within it, and within every provider's id charset. */
static int conv_function_call(conv_t *c, json_t *p, size_t i, size_t j, const char *path,
                              json_t *calls)
{
    json_t *fc = json_object_get(p, "functionCall");
    if (!json_is_object(fc))
        return BAD(c->err, path, ".functionCall", "must be an object");
    json_t *name = json_object_get(fc, "name");
    json_t *args = yr_aj_opt_get(fc, "args");
    json_t *fid = yr_aj_opt_get(fc, "id");
    if (!str_nonempty(name))
        return BAD(c->err, path, ".functionCall.name", "must be a non-empty string");
    if (args != NULL && !json_is_object(args))
        return BAD(c->err, path, ".functionCall.args", "must be an object");
    if (fid != NULL && !json_is_string(fid))
        return BAD(c->err, path, ".functionCall.id", "must be a string");
    char made[48];
    snprintf(made, sizeof(made), "call_%zu_%zu", i, j);
    const char *id = str_nonempty(fid) ? json_string_value(fid) : made;
    if (json_object_get(c->all_ids, id) != NULL)
        return BAD(c->err, path, ".functionCall.id", "functionCall ids must be unique (%.64s)", id);
    if (json_object_set_new(c->all_ids, id, json_true()) != 0)
        return -ENOMEM;
    yr_buf_t a;
    yr_buf_init(&a, c->body_len + 64);
    int rc = args ? yr_aj_dump_json(&a, args, 0) : yr_buf_append_str(&a, YR_STR("{}"));
    json_t *call = rc == 0 ? json_pack("{s:s, s:s, s:{s:O, s:s%}}", "id", id, "type", "function",
                                       "function", "name", name, "arguments", a.data, a.len)
                           : NULL;
    yr_buf_free(&a);
    if (rc < 0)
        return rc;
    json_t *sig = yr_aj_opt_get(p, "thoughtSignature");
    if (call != NULL && str_nonempty(sig) &&
        json_object_set_new(call, "extra_content",
                            json_pack("{s:{s:O}}", "google", "thought_signature", sig)) != 0)
        rc = -ENOMEM;
    json_t *pend = json_pack("{s:s, s:O}", "id", id, "name", name);
    if (call == NULL || pend == NULL || rc < 0) {
        json_decref(call);
        json_decref(pend);
        return -ENOMEM;
    }
    if (yr_aj_jpush(calls, call) < 0) {
        json_decref(pend);
        return -ENOMEM;
    }
    return yr_aj_jpush(c->pending, pend);
}

/* A model content: text joined (Gemini text parts are pieces of one text),
 * functionCall parts as tool_calls, thought parts dropped. */
static int conv_model(conv_t *c, size_t i, json_t *parts_in)
{
    json_t *calls = json_array();
    yr_buf_t text;
    yr_buf_init(&text, c->body_len + 16);
    bool has_text = false;
    int rc = calls ? 0 : -ENOMEM;
    json_array_clear(c->pending);
    c->pending_at = i;
    size_t j;
    json_t *p;
    json_array_foreach(parts_in, j, p)
    {
        if (rc < 0)
            break;
        char path[96];
        snprintf(path, sizeof(path), "contents.%zu.parts.%zu", i, j);
        const char *kind = part_kind(c, p, path, &rc);
        if (kind == NULL)
            break;
        if (strcmp(kind, "text") == 0) {
            json_t *s = json_object_get(p, "text");
            if (!json_is_string(s)) {
                rc = BAD(c->err, path, ".text", "must be a string");
            } else if (!json_is_true(yr_aj_opt_get(p, "thought"))) {
                rc = yr_buf_append_str(&text, yr_aj_jstr_slice(s));
                has_text = true;
            }
        } else if (strcmp(kind, "functionCall") == 0) {
            rc = conv_function_call(c, p, i, j, path, calls);
        } else {
            rc = BAD(c->err, path, "",
                     "%s parts are not supported in model turns by this gateway (text and "
                     "functionCall are)",
                     kind);
        }
    }
    json_t *msg = NULL;
    if (rc == 0 && (has_text || json_array_size(calls) > 0)) {
        msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                        has_text ? json_stringn_nocheck(text.data ? text.data : "", text.len)
                                 : json_null());
        rc = msg ? 0 : -ENOMEM;
        if (rc == 0 && json_array_size(calls) > 0)
            rc = yr_aj_jset_ref(msg, "tool_calls", calls);
        if (rc == 0) {
            rc = yr_aj_jpush(c->msgs, msg);
            msg = NULL;
        }
    }
    json_decref(msg);
    json_decref(calls);
    yr_buf_free(&text);
    return rc;
}

static int conv_contents(conv_t *c, json_t *contents)
{
    if (!json_is_array(contents))
        return BAD(c->err, "contents", "", contents ? "must be a list" : "is required");
    if (json_array_size(contents) == 0)
        return BAD(c->err, "contents", "", "must not be empty");
    size_t i;
    json_t *ct;
    json_array_foreach(contents, i, ct)
    {
        char path[64];
        snprintf(path, sizeof(path), "contents.%zu", i);
        if (!json_is_object(ct))
            return BAD(c->err, path, "", "must be an object");
        json_t *role = yr_aj_opt_get(ct, "role");
        json_t *parts = json_object_get(ct, "parts");
        bool model = yr_aj_jstr_is(role, "model");
        if (role != NULL && !model && !yr_aj_jstr_is(role, "user"))
            return BAD(c->err, path, ".role", "must be 'user' or 'model'");
        if (!json_is_array(parts) || json_array_size(parts) == 0)
            return BAD(c->err, path, ".parts", parts ? "must be a non-empty list" : "is required");
        int rc;
        if (model) {
            if (json_array_size(c->pending) > 0)
                return unanswered(c);
            rc = conv_model(c, i, parts);
        } else {
            rc = conv_user(c, i, parts);
        }
        if (rc < 0)
            return rc;
    }
    return json_array_size(c->pending) > 0 ? unanswered(c) : 0;
}

/* systemInstruction: a Content of text parts (or, leniently, a string) ->
 * one leading system message, parts joined with "\n". */
static int conv_system(conv_t *c, json_t *si)
{
    if (si == NULL)
        return 0;
    json_t *text = NULL;
    if (json_is_string(si)) {
        text = json_incref(si);
    } else {
        json_t *parts = json_is_object(si) ? json_object_get(si, "parts") : NULL;
        if (!json_is_array(parts))
            return BAD(c->err, "systemInstruction", ".parts", "must be a list of text parts");
        yr_buf_t b;
        yr_buf_init(&b, c->body_len + 16);
        int rc = 0;
        size_t i;
        json_t *p;
        json_array_foreach(parts, i, p)
        {
            char path[64];
            snprintf(path, sizeof(path), "systemInstruction.parts.%zu", i);
            json_t *s = json_is_object(p) ? json_object_get(p, "text") : NULL;
            if (!json_is_string(s))
                rc = BAD(c->err, path, ".text", "system instructions may hold text parts only");
            else if (i > 0)
                rc = yr_buf_append(&b, "\n", 1);
            if (rc == 0)
                rc = yr_buf_append_str(&b, yr_aj_jstr_slice(s));
            if (rc < 0)
                break;
        }
        if (rc == 0)
            text = json_stringn_nocheck(b.data ? b.data : "", b.len);
        yr_buf_free(&b);
        if (rc < 0)
            return rc;
        if (text == NULL)
            return -ENOMEM;
    }
    int rc = 0;
    if (json_string_length(text) > 0) {
        json_t *msg = json_pack("{s:s, s:O}", "role", "system", "content", text);
        rc = msg == NULL || json_array_insert_new(c->msgs, 0, msg) != 0 ? -ENOMEM : 0;
    }
    json_decref(text);
    return rc;
}

/* ---- tools -------------------------------------------------------------------- */

/* A Gemini Schema (OpenAPI 3.0 subset: upper-case types, nullable,
 * propertyOrdering) -> JSON Schema, in a new tree. */
static json_t *schema_to_json(json_t *s, unsigned depth)
{
    if (depth > SCHEMA_DEPTH_MAX)
        return NULL;
    if (!json_is_object(s))
        return json_deep_copy(s);
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
    {
        json_t *nv = NULL;
        if (strcmp(key, "propertyOrdering") == 0 || strcmp(key, "nullable") == 0)
            continue;
        if (strcmp(key, "type") == 0 && json_is_string(v)) {
            char t[32];
            size_t n =
                json_string_length(v) < sizeof(t) - 1 ? json_string_length(v) : sizeof(t) - 1;
            for (size_t k = 0; k < n; k++) {
                char ch = json_string_value(v)[k];
                t[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
            }
            t[n] = '\0';
            if (strcmp(t, "type_unspecified") == 0)
                continue;
            nv = json_is_true(json_object_get(s, "nullable")) ? json_pack("[s,s]", t, "null")
                                                              : json_string(t);
        } else if (strcmp(key, "properties") == 0 && json_is_object(v)) {
            nv = json_object();
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
            {
                if (nv != NULL && json_object_set_new(nv, pk, schema_to_json(pv, depth + 1)) != 0) {
                    json_decref(nv);
                    nv = NULL;
                }
            }
        } else if (strcmp(key, "items") == 0) {
            nv = schema_to_json(v, depth + 1);
        } else if (strcmp(key, "anyOf") == 0 && json_is_array(v)) {
            nv = json_array();
            size_t k;
            json_t *e;
            json_array_foreach(v, k, e)
            {
                if (nv != NULL && json_array_append_new(nv, schema_to_json(e, depth + 1)) != 0) {
                    json_decref(nv);
                    nv = NULL;
                }
            }
        } else {
            nv = json_deep_copy(v);
        }
        if (nv == NULL || json_object_set_new(out, key, nv) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static int conv_declaration(conv_t *c, json_t *fd, const char *path, json_t *names, json_t *out)
{
    if (!json_is_object(fd))
        return BAD(c->err, path, "", "must be an object");
    json_t *name = json_object_get(fd, "name");
    json_t *desc = yr_aj_opt_get(fd, "description");
    json_t *params = yr_aj_opt_get(fd, "parameters");
    json_t *pjs = yr_aj_opt_get(fd, "parametersJsonSchema");
    if (!str_nonempty(name))
        return BAD(c->err, path, ".name", "must be a non-empty string");
    if (json_object_get(names, json_string_value(name)) != NULL)
        return BAD(c->err, path, ".name", "function names must be unique (%.64s)",
                   json_string_value(name));
    if (json_object_set_new(names, json_string_value(name), json_true()) != 0)
        return -ENOMEM;
    if (desc != NULL && !json_is_string(desc))
        return BAD(c->err, path, ".description", "must be a string");
    if (params != NULL && pjs != NULL)
        return BAD(c->err, path, "", "parameters and parametersJsonSchema cannot both be set");
    if ((params != NULL && !json_is_object(params)) || (pjs != NULL && !json_is_object(pjs)))
        return BAD(c->err, path, params ? ".parameters" : ".parametersJsonSchema",
                   "must be an object");
    json_t *schema = pjs      ? json_incref(pjs)
                     : params ? schema_to_json(params, 0)
                              : json_pack("{s:s, s:{}}", "type", "object", "properties");
    if (schema == NULL)
        return params ? BAD(c->err, path, ".parameters", "nested too deeply") : -ENOMEM;
    json_t *fn = json_pack("{s:O, s:o}", "name", name, "parameters", schema);
    if (fn != NULL && desc != NULL && yr_aj_jset_ref(fn, "description", desc) < 0) {
        json_decref(fn);
        fn = NULL;
    }
    json_t *t = fn ? json_pack("{s:s, s:o}", "type", "function", "function", fn) : NULL;
    return t ? yr_aj_jpush(out, t) : -ENOMEM;
}

/* Tools Gemini runs itself: other providers cannot. */
static const char *const server_tools[] = {
    "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext",          "fileSearch",
    "googleMaps",   "computerUse",           "retrieval",     "enterpriseWebSearch",
};

static int conv_tool(conv_t *c, json_t *tool, size_t i, json_t *names, json_t *out)
{
    char path[64];
    snprintf(path, sizeof(path), "tools.%zu", i);
    if (!json_is_object(tool))
        return BAD(c->err, path, "", "must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(tool, key, v)
    {
        if (strcmp(key, "functionDeclarations") == 0) {
            if (!json_is_array(v))
                return BAD(c->err, path, ".functionDeclarations", "must be a list");
            size_t j;
            json_t *fd;
            json_array_foreach(v, j, fd)
            {
                char fpath[128];
                snprintf(fpath, sizeof(fpath), "%.40s.functionDeclarations.%zu", path, j);
                int rc = conv_declaration(c, fd, fpath, names, out);
                if (rc < 0)
                    return rc;
            }
            continue;
        }
        for (size_t k = 0; k < ARRAY_LEN(server_tools); k++)
            if (strcmp(key, server_tools[k]) == 0)
                return BAD(c->err, path, "",
                           "the %s tool is not supported by this gateway (it runs on Google's "
                           "servers); only functionDeclarations can be routed to other providers",
                           key);
        return BAD(c->err, path, "", "unknown tool '%.48s'", key);
    }
    return 0;
}

/* Keeps only the tools named in allowed (an array of strings). */
static int filter_tools(conv_t *c, json_t *tools, json_t *allowed)
{
    size_t i;
    json_t *n;
    json_array_foreach(allowed, i, n)
    {
        char path[96];
        snprintf(path, sizeof(path), "toolConfig.functionCallingConfig.allowedFunctionNames.%zu",
                 i);
        if (!json_is_string(n))
            return BAD(c->err, path, "", "must be a string");
        bool found = false;
        size_t k;
        json_t *t;
        json_array_foreach(tools, k, t) found =
            found || json_equal(json_object_get(json_object_get(t, "function"), "name"), n);
        if (!found)
            return BAD(c->err, path, "", "'%.64s' is not a declared function",
                       json_string_value(n));
    }
    for (size_t k = json_array_size(tools); k-- > 0;) {
        json_t *name =
            json_object_get(json_object_get(json_array_get(tools, k), "function"), "name");
        bool keep = false;
        json_array_foreach(allowed, i, n) keep = keep || json_equal(n, name);
        if (!keep && json_array_remove(tools, k) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* toolConfig.functionCallingConfig -> tool_choice (and the tools allowed). */
static int conv_tool_config(conv_t *c, json_t *root, json_t *tools, json_t *req)
{
    json_t *tc = yr_aj_opt_get(root, "toolConfig");
    if (tc == NULL)
        return 0;
    if (!json_is_object(tc))
        return BAD(c->err, "toolConfig", "", "must be an object");
    json_t *fcc = yr_aj_opt_get(tc, "functionCallingConfig");
    if (fcc == NULL)
        return 0;
    if (!json_is_object(fcc))
        return BAD(c->err, "toolConfig.functionCallingConfig", "", "must be an object");
    json_t *mode = yr_aj_opt_get(fcc, "mode");
    json_t *allowed = yr_aj_opt_get(fcc, "allowedFunctionNames");
    if (mode != NULL && !json_is_string(mode))
        return BAD(c->err, "toolConfig.functionCallingConfig.mode", "", "must be a string");
    const char *m = mode ? json_string_value(mode) : "AUTO";
    bool any = strcmp(m, "ANY") == 0, validated = strcmp(m, "VALIDATED") == 0;
    if (!any && !validated && strcmp(m, "AUTO") != 0 && strcmp(m, "NONE") != 0 &&
        strcmp(m, "MODE_UNSPECIFIED") != 0)
        return BAD(c->err, "toolConfig.functionCallingConfig.mode", "",
                   "must be one of AUTO, ANY, NONE, VALIDATED");
    if (allowed != NULL && (!json_is_array(allowed) || (!any && !validated)))
        return BAD(c->err, "toolConfig.functionCallingConfig.allowedFunctionNames", "",
                   json_is_array(allowed) ? "may be set only with mode ANY or VALIDATED"
                                          : "must be a list");
    if (json_array_size(tools) == 0)
        return 0; /* OpenAI refuses tool_choice without tools */
    if (json_array_size(allowed) > 0) {
        int rc = filter_tools(c, tools, allowed);
        if (rc < 0)
            return rc;
    }
    const char *choice = any ? "required" : strcmp(m, "NONE") == 0 ? "none" : "auto";
    if (any && json_array_size(tools) == 1)
        return yr_aj_jset(
            req, "tool_choice",
            json_pack(
                "{s:s, s:{s:O}}", "type", "function", "function", "name",
                json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name")));
    return yr_aj_jset(req, "tool_choice", json_string(choice));
}

static int conv_tools(conv_t *c, json_t *root, json_t *req)
{
    json_t *tools = yr_aj_opt_get(root, "tools");
    if (tools != NULL && !json_is_array(tools))
        return BAD(c->err, "tools", "", "must be a list");
    json_t *out = json_array();
    json_t *names = json_object();
    int rc = out && names ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < json_array_size(tools); i++)
        rc = conv_tool(c, json_array_get(tools, i), i, names, out);
    if (rc == 0)
        rc = conv_tool_config(c, root, out, req);
    if (rc == 0 && json_array_size(out) > 0)
        rc = yr_aj_jset_ref(req, "tools", out);
    json_decref(out);
    json_decref(names);
    return rc;
}

/* ---- generationConfig --------------------------------------------------------------- */

/* A number within [lo, hi] copied under the OpenAI name. */
static int copy_number(conv_t *c, json_t *gc, const char *key, const char *to, double lo, double hi,
                       json_t *req)
{
    json_t *v = yr_aj_opt_get(gc, key);
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return BAD(c->err, "generationConfig.", key, "must be a number between %g and %g", lo, hi);
    return yr_aj_jset_ref(req, to, v);
}

static int conv_thinking(conv_t *c, json_t *gc, yr_gem_req_info_t *info, json_t *req)
{
    json_t *tc = yr_aj_opt_get(gc, "thinkingConfig");
    if (tc == NULL)
        return 0;
    const char *p = "generationConfig.thinkingConfig";
    if (!json_is_object(tc))
        return BAD(c->err, p, "", "must be an object");
    json_t *inc = yr_aj_opt_get(tc, "includeThoughts");
    json_t *budget = yr_aj_opt_get(tc, "thinkingBudget");
    json_t *level = yr_aj_opt_get(tc, "thinkingLevel");
    if (inc != NULL && !json_is_boolean(inc))
        return BAD(c->err, p, ".includeThoughts", "must be a boolean");
    info->include_thoughts = json_is_true(inc);
    if (budget != NULL && level != NULL)
        return BAD(c->err, p, "", "thinkingBudget and thinkingLevel cannot both be set");
    const char *effort = NULL;
    if (budget != NULL) {
        if (!json_is_integer(budget) || json_integer_value(budget) < -1)
            return BAD(c->err, p, ".thinkingBudget", "must be an integer >= -1");
        json_int_t b = json_integer_value(budget);
        /* -1 (dynamic) and 0 (off) leave it to the model: Chat Completions
         * has no portable switch for either. */
        if (b > 0)
            effort = b <= 2048 ? "low" : b <= 8192 ? "medium" : "high";
    } else if (level != NULL) {
        static const char *const levels[] = {"minimal", "low", "medium", "high"};
        char lower[16] = "";
        if (json_is_string(level) && json_string_length(level) < sizeof(lower))
            for (size_t k = 0; k <= json_string_length(level); k++) {
                char ch = json_string_value(level)[k];
                lower[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
            }
        for (size_t k = 0; k < ARRAY_LEN(levels) && effort == NULL; k++)
            if (strcmp(lower, levels[k]) == 0)
                effort = levels[k];
        if (effort == NULL && strcmp(lower, "thinking_level_unspecified") != 0)
            return BAD(c->err, p, ".thinkingLevel", "must be one of MINIMAL, LOW, MEDIUM, HIGH");
    }
    return effort ? yr_aj_jset(req, "reasoning_effort", json_string(effort)) : 0;
}

/* responseMimeType + responseSchema / responseJsonSchema -> response_format. */
static int conv_response_format(conv_t *c, json_t *gc, json_t *req)
{
    json_t *mt = yr_aj_opt_get(gc, "responseMimeType");
    json_t *schema = yr_aj_opt_get(gc, "responseSchema");
    json_t *js = yr_aj_opt_get(gc, "responseJsonSchema");
    if (js == NULL)
        js = yr_aj_opt_get(gc, "_responseJsonSchema");
    if (mt != NULL && !json_is_string(mt))
        return BAD(c->err, "generationConfig.responseMimeType", "", "must be a string");
    bool json_out = yr_aj_jstr_is(mt, "application/json");
    if (mt != NULL && !json_out && !yr_aj_jstr_is(mt, "text/plain"))
        return BAD(c->err, "generationConfig.responseMimeType", "",
                   "'%.64s' is not supported by this gateway (application/json and text/plain "
                   "are)",
                   json_string_value(mt));
    if (schema != NULL && js != NULL)
        return BAD(c->err, "generationConfig", "",
                   "responseSchema and responseJsonSchema cannot both be set");
    json_t *given = schema ? schema : js;
    if (given != NULL && !json_out)
        return BAD(c->err, "generationConfig.responseMimeType", "",
                   "must be application/json when a response schema is set");
    if (given != NULL && !json_is_object(given))
        return BAD(c->err, "generationConfig.", schema ? "responseSchema" : "responseJsonSchema",
                   "must be an object");
    if (!json_out)
        return 0;
    if (given == NULL)
        return yr_aj_jset(req, "response_format", json_pack("{s:s}", "type", "json_object"));
    json_t *s = schema ? schema_to_json(schema, 0) : json_incref(js);
    if (s == NULL)
        return BAD(c->err, "generationConfig.responseSchema", "", "nested too deeply");
    json_t *rf = json_pack("{s:s, s:{s:s, s:o, s:b}}", "type", "json_schema", "json_schema", "name",
                           "response", "schema", s, "strict", yr_aj_strict_ok(s, 0));
    return rf ? yr_aj_jset(req, "response_format", rf) : -ENOMEM;
}

static int conv_generation(conv_t *c, json_t *root, yr_gem_req_info_t *info, json_t *req)
{
    json_t *gc = yr_aj_opt_get(root, "generationConfig");
    if (gc == NULL)
        return 0;
    if (!json_is_object(gc))
        return BAD(c->err, "generationConfig", "", "must be an object");
    int rc = copy_number(c, gc, "temperature", "temperature", 0, 2, req);
    if (rc == 0)
        rc = copy_number(c, gc, "topP", "top_p", 0, 1, req);
    if (rc == 0)
        rc = copy_number(c, gc, "presencePenalty", "presence_penalty", -2, 2, req);
    if (rc == 0)
        rc = copy_number(c, gc, "frequencyPenalty", "frequency_penalty", -2, 2, req);
    if (rc < 0)
        return rc;
    json_t *v = yr_aj_opt_get(gc, "maxOutputTokens");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1))
        return BAD(c->err, "generationConfig.maxOutputTokens", "", "must be an integer >= 1");
    if (v != NULL && (rc = yr_aj_jset_ref(req, "max_tokens", v)) < 0)
        return rc;
    v = yr_aj_opt_get(gc, "seed");
    if (v != NULL && !json_is_integer(v))
        return BAD(c->err, "generationConfig.seed", "", "must be an integer");
    if (v != NULL && (rc = yr_aj_jset_ref(req, "seed", v)) < 0)
        return rc;
    v = yr_aj_opt_get(gc, "topK"); /* checked, then dropped: OpenAI has no top-k */
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0))
        return BAD(c->err, "generationConfig.topK", "", "must be a non-negative integer");
    v = yr_aj_opt_get(gc, "candidateCount");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1))
        return BAD(c->err, "generationConfig.candidateCount", "", "must be an integer >= 1");
    if (v != NULL && json_integer_value(v) > 1)
        return BAD(c->err, "generationConfig.candidateCount", "",
                   "more than one candidate is not supported by this gateway");
    v = yr_aj_opt_get(gc, "stopSequences");
    if (v != NULL) {
        if (!json_is_array(v))
            return BAD(c->err, "generationConfig.stopSequences", "", "must be a list");
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s) if (!json_is_string(s)) return BAD(
            c->err, "generationConfig.stopSequences", "", "must be a list of strings");
        if (json_array_size(v) > 0 && (rc = yr_aj_jset_ref(req, "stop", v)) < 0)
            return rc;
    }
    v = yr_aj_opt_get(gc, "responseModalities");
    if (v != NULL) {
        size_t i;
        json_t *m;
        if (!json_is_array(v))
            return BAD(c->err, "generationConfig.responseModalities", "", "must be a list");
        json_array_foreach(v, i, m) if (!yr_aj_jstr_is(m, "TEXT")) return BAD(
            c->err, "generationConfig.responseModalities", "",
            "only TEXT output is supported by this gateway");
    }
    rc = conv_response_format(c, gc, req);
    return rc == 0 ? conv_thinking(c, gc, info, req) : rc;
}

/* safetySettings: checked and accepted, not mapped (no other provider has
 * per-category thresholds); cachedContent names content stored at Google. */
static int conv_misc(conv_t *c, json_t *root)
{
    json_t *ss = yr_aj_opt_get(root, "safetySettings");
    if (ss != NULL) {
        if (!json_is_array(ss))
            return BAD(c->err, "safetySettings", "", "must be a list");
        size_t i;
        json_t *s;
        json_array_foreach(ss, i, s)
        {
            if (!json_is_object(s) || !json_is_string(json_object_get(s, "category")) ||
                !json_is_string(json_object_get(s, "threshold"))) {
                char path[48];
                snprintf(path, sizeof(path), "safetySettings.%zu", i);
                return BAD(c->err, path, "",
                           "must be an object with string category and threshold");
            }
        }
    }
    if (yr_aj_opt_get(root, "cachedContent") != NULL)
        return BAD(c->err, "cachedContent", "",
                   "cached contents are stored at Google and are not supported by this gateway");
    return 0;
}

static int conv_root(conv_t *c, json_t *root, yr_gem_req_info_t *info, json_t *req)
{
    if (!json_is_object(root))
        return BAD(c->err, "", "", "the request body must be a JSON object");
    int rc = yr_aj_jset(req, "model", json_stringn_nocheck(info->model, info->model_len));
    if (rc == 0)
        rc = yr_aj_jset_ref(req, "messages", c->msgs);
    if (rc == 0)
        rc = conv_contents(c, json_object_get(root, "contents"));
    if (rc == 0)
        rc = conv_system(c, yr_aj_opt_get(root, "systemInstruction"));
    if (rc == 0 && info->stream) {
        rc = yr_aj_jset(req, "stream", json_true());
        if (rc == 0)
            rc = yr_aj_jset(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (rc == 0)
        rc = conv_generation(c, root, info, req);
    if (rc == 0)
        rc = conv_tools(c, root, req);
    if (rc == 0)
        rc = conv_misc(c, root);
    return rc;
}

/* Parses, validates and converts root (or the body when root is NULL);
 * *out_req is owned by the caller. */
static int conv_body(const char *body, size_t len, yr_gem_req_info_t *info, json_t **out_req,
                     yr_api_error_t *err, bool counting)
{
    *out_req = NULL;
    memset(err, 0, sizeof(*err));
    json_error_t jerr;
    json_t *root = yr_json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return yr_aj_fail(err, YR_E_INVALID_JSON, "", "",
                          "Invalid JSON payload received: %s (line %d, column %d)", jerr.text,
                          jerr.line, jerr.column);
    json_t *src = root;
    json_t *gcr = counting ? yr_aj_opt_get(root, "generateContentRequest") : NULL;
    int rc = 0;
    if (gcr != NULL) {
        if (yr_aj_opt_get(root, "contents") != NULL)
            rc = BAD(err, "", "", "contents and generateContentRequest cannot both be set");
        src = gcr;
    }
    conv_t c = {.err = err,
                .msgs = json_array(),
                .pending = json_array(),
                .all_ids = json_object(),
                .body_len = len};
    json_t *req = json_object();
    if (rc == 0)
        rc = c.msgs && c.pending && c.all_ids && req ? 0 : -ENOMEM;
    if (rc == 0)
        rc = conv_root(&c, src, info, req);
    json_decref(c.msgs);
    json_decref(c.pending);
    json_decref(c.all_ids);
    json_decref(root);
    if (rc < 0) {
        json_decref(req);
        return yr_aj_fail_rc(err, rc);
    }
    *out_req = req;
    return 0;
}

int yr_gem_request_to_openai(const char *body, size_t len, yr_gem_req_info_t *info, yr_buf_t *out,
                             yr_api_error_t *err)
{
    info->include_thoughts = false;
    info->input_tokens_estimate = 0;
    json_t *req;
    int rc = conv_body(body, len, info, &req, err, false);
    if (rc < 0)
        return rc;
    size_t start = out->len;
    rc = yr_aj_restore(out, start, yr_aj_dump_json(out, req, 0));
    if (rc == 0)
        rc = yr_aj_estimate_openai(req, len, &info->input_tokens_estimate);
    json_decref(req);
    return rc < 0 ? yr_aj_fail_rc(err, yr_aj_restore(out, start, rc)) : 0;
}

int yr_gem_count_tokens_estimate(const char *body, size_t len, int64_t *tokens, yr_api_error_t *err)
{
    *tokens = 0;
    yr_gem_req_info_t info = {.model = "count", .model_len = 5};
    json_t *req;
    int rc = conv_body(body, len, &info, &req, err, true);
    if (rc < 0)
        return rc;
    rc = yr_aj_estimate_openai(req, len, tokens);
    json_decref(req);
    return rc < 0 ? yr_aj_fail_rc(err, rc) : 0;
}

/* ---- errors ------------------------------------------------------------------------ */

int yr_gem_error_status(yr_err_t e)
{
    return e == YR_E_MODEL_NOT_FOUND ? 404 : yr_err_info(e)->status;
}

const char *yr_gem_error_status_name(yr_err_t e)
{
    switch (yr_gem_error_status(e)) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 429: return "RESOURCE_EXHAUSTED";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: break;
    }
    return yr_gem_error_status(e) < 500 ? "INVALID_ARGUMENT" : "INTERNAL";
}

int yr_gem_error_body(yr_err_t e, yr_str_t message, yr_buf_t *out)
{
    size_t start = out->len;
    yr_aj_w_t w = {out, 0};
    yr_aj_w_raw(&w, "{\"error\":{\"code\":");
    yr_aj_w_int(&w, yr_gem_error_status(e));
    yr_aj_w_raw(&w, ",\"message\":");
    yr_aj_w_str(&w, message.ptr ? message : YR_STR(""));
    yr_aj_w_raw(&w, ",\"status\":");
    yr_aj_w_cstr(&w, yr_gem_error_status_name(e));
    yr_aj_w_raw(&w, "}}");
    return yr_aj_restore(out, start, w.rc);
}
