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
#include "api/anthropic_json.h"
#include "api/json_tok.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request errors -------------------------------------------------------- */

#define BAD(err, path, sub, ...) yr_aj_fail((err), YR_E_INVALID_REQUEST, (path), (sub), __VA_ARGS__)

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

/* The "type" of content block blk, or NULL with the 400 recorded in *rc. */
static const char *block_type(conv_t *c, json_t *blk, const char *bpath, int *rc)
{
    if (!json_is_object(blk)) {
        *rc = BAD(c->err, bpath, "", "Input should be an object");
        return NULL;
    }
    json_t *type = json_object_get(blk, "type");
    if (!json_is_string(type)) {
        *rc = BAD(c->err, bpath, ".type", type ? "Input should be a string" : "Field required");
        return NULL;
    }
    return json_string_value(type);
}

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
    if (yr_aj_jstr_is(type, "base64")) {
        json_t *mt = json_object_get(src, "media_type");
        bool known = false;
        for (size_t i = 0; json_is_string(mt) && i < ARRAY_LEN(media); i++)
            known = known || strcmp(json_string_value(mt), media[i]) == 0;
        if (!known)
            return BAD(c->err, path, ".source.media_type",
                       "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'");
        json_t *data = json_object_get(src, "data");
        if (!json_is_string(data) || !yr_aj_base64_ok(yr_aj_jstr_slice(data)))
            return BAD(c->err, path, ".source.data",
                       data ? "the image data must be a non-empty base64 string"
                            : "Field required");
        url = yr_aj_data_url(c->body_len, mt, data);
    } else if (yr_aj_jstr_is(type, "url")) {
        json_t *u = json_object_get(src, "url");
        if (!json_is_string(u) || json_string_length(u) == 0)
            return BAD(c->err, path, ".source.url",
                       u ? "Input should be a non-empty string" : "Field required");
        url = json_incref(u);
    } else if (yr_aj_jstr_is(type, "file")) {
        return BAD(c->err, path, ".source",
                   "file sources (Files API) are not supported by this gateway");
    } else {
        return BAD(c->err, path, ".source.type", "Input should be 'base64', 'url' or 'file'");
    }
    if (url == NULL)
        return -ENOMEM;
    *part = yr_aj_image_url_part(url);
    return *part ? 0 : -ENOMEM;
}

static int push_text(json_t *parts, json_t *text)
{
    json_t *p = yr_aj_text_part(text);
    return p ? yr_aj_jpush(parts, p) : -ENOMEM;
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
    if (yr_aj_jstr_is(type, "base64")) {
        if (!yr_aj_jstr_is(json_object_get(src, "media_type"), "application/pdf"))
            return BAD(c->err, path, ".source.media_type", "Input should be 'application/pdf'");
        if (!json_is_string(data) || !yr_aj_base64_ok(yr_aj_jstr_slice(data)))
            return BAD(c->err, path, ".source.data",
                       "the document data must be a non-empty base64 string");
        json_t *title = json_object_get(blk, "title");
        json_t *file = json_object();
        json_t *p = json_object();
        int rc = file && p ? 0 : -ENOMEM;
        if (rc == 0)
            rc = yr_aj_jset(file, "filename",
                            json_is_string(title) && json_string_length(title) > 0
                                ? json_incref(title)
                                : json_string("document.pdf"));
        if (rc == 0)
            rc = yr_aj_jset(file, "file_data",
                            yr_aj_data_url(c->body_len, json_object_get(src, "media_type"), data));
        if (rc == 0)
            rc = yr_aj_jset(p, "type", json_string("file"));
        if (rc == 0) {
            rc = yr_aj_jset(p, "file", file);
            file = NULL;
        }
        if (rc == 0) {
            rc = yr_aj_jpush(parts, p);
            p = NULL;
        }
        json_decref(file);
        json_decref(p);
        return rc;
    }
    if (yr_aj_jstr_is(type, "text")) {
        if (!json_is_string(data))
            return BAD(c->err, path, ".source.data", "Field required");
        return push_text(parts, data);
    }
    if (yr_aj_jstr_is(type, "content")) {
        json_t *content = json_object_get(src, "content");
        if (json_is_string(content))
            return push_text(parts, content);
        if (!json_is_array(content))
            return BAD(c->err, path, ".source.content",
                       "Input should be a valid string or a list of blocks");
        size_t i;
        json_t *b;
        json_array_foreach(content, i, b)
        {
            char sub[96];
            snprintf(sub, sizeof(sub), "%.50s.source.content.%zu", path, i);
            json_t *t = json_object_get(b, "type");
            int rc;
            if (yr_aj_jstr_is(t, "text") && json_is_string(json_object_get(b, "text"))) {
                rc = push_text(parts, json_object_get(b, "text"));
            } else if (yr_aj_jstr_is(t, "image")) {
                json_t *p;
                rc = conv_image(c, b, sub, &p);
                if (rc == 0)
                    rc = yr_aj_jpush(parts, p);
            } else {
                rc = BAD(c->err, sub, "", "only text and image blocks are allowed here");
            }
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (yr_aj_jstr_is(type, "url") || yr_aj_jstr_is(type, "file"))
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
    json_t *is_error = yr_aj_opt_get(blk, "is_error");
    if (is_error != NULL && !json_is_boolean(is_error))
        return BAD(c->err, path, ".is_error", "Input should be a valid boolean");

    yr_buf_t text;
    yr_buf_init(&text, c->body_len + 16);
    int rc = json_is_true(is_error) ? yr_buf_append_str(&text, YR_STR("Error: ")) : 0;
    json_t *content = yr_aj_opt_get(blk, "content");
    if (json_is_string(content)) {
        if (rc == 0)
            rc = yr_buf_append_str(&text, yr_aj_jstr_slice(content));
    } else if (json_is_array(content)) {
        bool first = true;
        size_t i;
        json_t *b;
        json_array_foreach(content, i, b)
        {
            if (rc < 0)
                break;
            char sub[96];
            snprintf(sub, sizeof(sub), "%.50s.content.%zu", path, i);
            json_t *t = json_object_get(b, "type");
            if (yr_aj_jstr_is(t, "text") && json_is_string(json_object_get(b, "text"))) {
                if (!first)
                    rc = yr_buf_append(&text, "\n", 1);
                if (rc == 0)
                    rc = yr_buf_append_str(&text, yr_aj_jstr_slice(json_object_get(b, "text")));
                first = false;
            } else if (yr_aj_jstr_is(t, "image")) {
                json_t *p;
                rc = conv_image(c, b, sub, &p);
                if (rc == 0)
                    rc = yr_aj_jpush(images, p);
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
        rc = yr_aj_jset(msg, "role", json_string("tool"));
    if (rc == 0)
        rc = yr_aj_jset_ref(msg, "tool_call_id", id);
    if (rc == 0)
        rc = yr_aj_jset(msg, "content", json_stringn_nocheck(text.data ? text.data : "", text.len));
    if (rc == 0) {
        rc = yr_aj_jpush(c->msgs, msg);
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
    if (only != NULL && yr_aj_jstr_is(json_object_get(only, "type"), "text"))
        return yr_aj_jset_ref(msg, "content", json_object_get(only, "text"));
    return yr_aj_jset_ref(msg, "content", parts);
}

static int push_role_msg(conv_t *c, const char *role, json_t *parts)
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
    json_array_foreach(content, j, blk)
    {
        if (rc < 0)
            break;
        char bpath[96];
        snprintf(bpath, sizeof(bpath), "messages.%zu.content.%zu", i, j);
        const char *t = block_type(c, blk, bpath, &rc);
        if (t == NULL)
            break;
        if (strcmp(t, "text") == 0) {
            json_t *text = json_object_get(blk, "text");
            rc = json_is_string(text) ? push_text(parts, text)
                                      : BAD(c->err, bpath, ".text", "Field required");
        } else if (strcmp(t, "image") == 0) {
            json_t *p;
            rc = conv_image(c, blk, bpath, &p);
            if (rc == 0)
                rc = yr_aj_jpush(parts, p);
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
    int rc = yr_aj_dump_json(&args, input, 0);
    json_t *fn = json_object();
    json_t *call = json_object();
    if (rc == 0 && (fn == NULL || call == NULL))
        rc = -ENOMEM;
    if (rc == 0)
        rc = yr_aj_jset_ref(fn, "name", name);
    if (rc == 0)
        rc = yr_aj_jset(fn, "arguments", json_stringn_nocheck(args.data, args.len));
    if (rc == 0)
        rc = yr_aj_jset_ref(call, "id", id);
    if (rc == 0)
        rc = yr_aj_jset(call, "type", json_string("function"));
    if (rc == 0) {
        rc = yr_aj_jset(call, "function", fn);
        fn = NULL;
    }
    if (rc == 0) {
        rc = yr_aj_jpush(calls, call);
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
        rc = yr_buf_append_str(&text, yr_aj_jstr_slice(content));
    }
    size_t j;
    json_t *blk;
    json_array_foreach(content, j, blk)
    { /* no-op for a string */
        if (rc < 0)
            break;
        char bpath[96];
        snprintf(bpath, sizeof(bpath), "messages.%zu.content.%zu", i, j);
        const char *t = block_type(c, blk, bpath, &rc);
        if (t == NULL)
            break;
        if (strcmp(t, "text") == 0) {
            json_t *s = json_object_get(blk, "text");
            if (!json_is_string(s)) {
                rc = BAD(c->err, bpath, ".text", "Field required");
                break;
            }
            if (has_text)
                rc = yr_buf_append(&text, "\n", 1);
            if (rc == 0)
                rc = yr_buf_append_str(&text, yr_aj_jstr_slice(s));
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
        rc = msg ? yr_aj_jset(msg, "role", json_string("assistant")) : -ENOMEM;
        if (rc == 0)
            rc = yr_aj_jset(msg, "content",
                            has_text ? json_stringn_nocheck(text.data ? text.data : "", text.len)
                                     : json_null());
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

/* A system prompt (a string, or a list of text blocks joined with "\n":
 * several providers reject array system content) -> *text (new reference),
 * or a 400 naming path. cache_control is ignored. */
static int system_text(conv_t *c, json_t *system, const char *path, json_t **text)
{
    *text = NULL;
    if (json_is_string(system)) {
        *text = json_incref(system);
        return 0;
    }
    if (!json_is_array(system))
        return BAD(c->err, path, "", "Input should be a valid string or a list of text blocks");
    yr_buf_t b;
    yr_buf_init(&b, c->body_len + 16);
    int rc = 0;
    size_t i;
    json_t *blk;
    json_array_foreach(system, i, blk)
    {
        char bpath[96];
        snprintf(bpath, sizeof(bpath), "%.64s.%zu", path, i);
        json_t *s = json_object_get(blk, "text");
        if (!yr_aj_jstr_is(json_object_get(blk, "type"), "text"))
            rc = BAD(c->err, bpath, ".type", "Input should be 'text'");
        else if (!json_is_string(s))
            rc = BAD(c->err, bpath, ".text", "Field required");
        else if (i > 0)
            rc = yr_buf_append(&b, "\n", 1);
        if (rc == 0)
            rc = yr_buf_append_str(&b, yr_aj_jstr_slice(s));
        if (rc < 0)
            break;
    }
    if (rc == 0) {
        *text = json_stringn_nocheck(b.data ? b.data : "", b.len);
        rc = *text ? 0 : -ENOMEM;
    }
    yr_buf_free(&b);
    return rc;
}

/* {"role":"system","content":text}, first or appended to the messages. */
static int push_system(conv_t *c, json_t *text, bool first)
{
    json_t *msg = json_object();
    int rc = msg ? yr_aj_jset(msg, "role", json_string("system")) : -ENOMEM;
    if (rc == 0)
        rc = yr_aj_jset_ref(msg, "content", text);
    if (rc == 0 && (first ? json_array_insert(c->msgs, 0, msg) : json_array_append(c->msgs, msg)))
        rc = -ENOMEM;
    json_decref(msg);
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
        bool user = yr_aj_jstr_is(role, "user");
        bool system = yr_aj_jstr_is(role, "system");
        if (!user && !system && !yr_aj_jstr_is(role, "assistant")) {
            rc = BAD(c->err, path, ".role",
                     role ? "Input should be 'user', 'assistant' or 'system'" : "Field required");
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
        if (empty && !(i + 1 == n && !user && !system)) {
            rc = BAD(c->err, path, "",
                     "all messages must have non-empty content except for the optional final "
                     "assistant message");
            break;
        }
        if (system) {
            /* Current clients send these mid-conversation: an OpenAI system
             * message at the same place. Not between a tool_use and its
             * tool_result, which must follow each other in both formats. */
            if (json_object_size(expected) > 0) {
                rc = unanswered(c, expected, expected_at);
                break;
            }
            json_t *text;
            char cpath[112];
            snprintf(cpath, sizeof(cpath), "%.96s.content", path);
            rc = system_text(c, content, cpath, &text);
            if (rc == 0)
                rc = push_system(c, text, false);
            json_decref(text);
            continue;
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

/* system: one leading system message (none when empty). */
static int conv_system(conv_t *c, json_t *system)
{
    if (system == NULL)
        return 0;
    json_t *text;
    int rc = system_text(c, system, "system", &text);
    if (rc == 0 && json_string_length(text) > 0)
        rc = push_system(c, text, true);
    json_decref(text);
    return rc;
}

/* A number in [0, 1] copied to the OpenAI request under the same name. */
static int conv_unit(conv_t *c, json_t *root, const char *key, json_t *req)
{
    json_t *v = yr_aj_opt_get(root, key);
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
        return BAD(c->err, key, "", "Input should be a number between 0 and 1");
    return yr_aj_jset_ref(req, key, v);
}

static int conv_sampling(conv_t *c, json_t *root, json_t *req)
{
    int rc = conv_unit(c, root, "temperature", req);
    if (rc == 0)
        rc = conv_unit(c, root, "top_p", req);
    if (rc < 0)
        return rc;
    json_t *top_k = yr_aj_opt_get(root, "top_k"); /* checked, then dropped */
    if (top_k != NULL && (!json_is_integer(top_k) || json_integer_value(top_k) < 0))
        return BAD(c->err, "top_k", "", "Input should be a non-negative integer");
    json_t *stop = yr_aj_opt_get(root, "stop_sequences");
    if (stop == NULL)
        return 0;
    if (!json_is_array(stop))
        return BAD(c->err, "stop_sequences", "", "Input should be a valid list");
    size_t i;
    json_t *s;
    json_array_foreach(stop, i, s)
    {
        if (!json_is_string(s)) {
            char path[64];
            snprintf(path, sizeof(path), "stop_sequences.%zu", i);
            return BAD(c->err, path, "", "Input should be a valid string");
        }
    }
    return json_array_size(stop) > 0 ? yr_aj_jset_ref(req, "stop", stop) : 0;
}

static int conv_tool(conv_t *c, json_t *tool, size_t i, json_t *names, json_t *out)
{
    char path[64];
    snprintf(path, sizeof(path), "tools.%zu", i);
    if (!json_is_object(tool))
        return BAD(c->err, path, "", "Input should be an object");
    json_t *type = yr_aj_opt_get(tool, "type");
    if (type != NULL && !yr_aj_jstr_is(type, "custom"))
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
    if (!yr_aj_jstr_is(json_object_get(schema, "type"), "object"))
        return BAD(c->err, path, ".input_schema.type", "Input should be 'object'");
    json_t *desc = yr_aj_opt_get(tool, "description");
    if (desc != NULL && !json_is_string(desc))
        return BAD(c->err, path, ".description", "Input should be a valid string");
    json_t *strict = yr_aj_opt_get(tool, "strict");
    if (strict != NULL && !json_is_boolean(strict))
        return BAD(c->err, path, ".strict", "Input should be a valid boolean");

    json_t *fn = json_object();
    json_t *t = json_object();
    int rc = fn && t ? 0 : -ENOMEM;
    if (rc == 0)
        rc = yr_aj_jset_ref(fn, "name", name);
    if (rc == 0 && desc != NULL)
        rc = yr_aj_jset_ref(fn, "description", desc);
    if (rc == 0)
        rc = yr_aj_jset_ref(fn, "parameters", schema);
    if (rc == 0 && strict != NULL)
        rc = yr_aj_jset_ref(fn, "strict", strict);
    if (rc == 0)
        rc = yr_aj_jset(t, "type", json_string("function"));
    if (rc == 0) {
        rc = yr_aj_jset(t, "function", fn);
        fn = NULL;
    }
    if (rc == 0) {
        rc = yr_aj_jpush(out, t);
        t = NULL;
    }
    json_decref(fn);
    json_decref(t);
    return rc;
}

static int conv_tool_choice(conv_t *c, json_t *root, bool have_tools, json_t *req)
{
    json_t *tc = yr_aj_opt_get(root, "tool_choice");
    if (tc == NULL)
        return 0;
    if (!json_is_object(tc))
        return BAD(c->err, "tool_choice", "", "Input should be an object");
    json_t *type = json_object_get(tc, "type");
    json_t *dp = yr_aj_opt_get(tc, "disable_parallel_tool_use");
    if (dp != NULL && !json_is_boolean(dp))
        return BAD(c->err, "tool_choice", ".disable_parallel_tool_use",
                   "Input should be a valid boolean");
    json_t *choice;
    if (yr_aj_jstr_is(type, "auto")) {
        choice = json_string("auto");
    } else if (yr_aj_jstr_is(type, "any")) {
        choice = json_string("required");
    } else if (yr_aj_jstr_is(type, "none")) {
        choice = json_string("none");
    } else if (yr_aj_jstr_is(type, "tool")) {
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
    int rc = yr_aj_jset(req, "tool_choice", choice);
    if (rc == 0 && json_is_true(dp) && !yr_aj_jstr_is(type, "none"))
        rc = yr_aj_jset(req, "parallel_tool_calls", json_false());
    return rc;
}

static int conv_tools(conv_t *c, json_t *root, json_t *req)
{
    json_t *tools = yr_aj_opt_get(root, "tools");
    if (tools != NULL && !json_is_array(tools))
        return BAD(c->err, "tools", "", "Input should be a valid list");
    json_t *out = json_array();
    json_t *names = json_object();
    int rc = out && names ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < json_array_size(tools); i++)
        rc = conv_tool(c, json_array_get(tools, i), i, names, out);
    if (rc == 0 && json_array_size(out) > 0)
        rc = yr_aj_jset_ref(req, "tools", out);
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
    json_t *th = yr_aj_opt_get(root, "thinking");
    if (th != NULL) {
        if (!json_is_object(th))
            return BAD(c->err, "thinking", "", "Input should be an object");
        json_t *type = json_object_get(th, "type");
        if (yr_aj_jstr_is(type, "enabled")) {
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
        } else if (yr_aj_jstr_is(type, "adaptive")) {
            info->thinking = true; /* the model decides: no effort hint */
        } else if (!yr_aj_jstr_is(type, "disabled")) {
            return BAD(c->err, "thinking", ".type",
                       "Input should be 'enabled', 'adaptive' or 'disabled'");
        }
    }
    /* output_config.effort is the direct knob when present. */
    json_t *oc = yr_aj_opt_get(root, "output_config");
    json_t *e = json_is_object(oc) ? json_object_get(oc, "effort") : NULL;
    if (yr_aj_jstr_is(e, "low") || yr_aj_jstr_is(e, "medium") || yr_aj_jstr_is(e, "high"))
        effort = json_string_value(e);
    else if (yr_aj_jstr_is(e, "xhigh") || yr_aj_jstr_is(e, "max"))
        effort = "high";
    return effort ? yr_aj_jset(req, "reasoning_effort", json_string(effort)) : 0;
}

/* output_config.format (structured outputs; the beta spelled it
 * output_format) -> response_format json_schema. Never dropped: a format
 * that cannot be mapped is a 400. strict when OpenAI's strict rules allow
 * it; otherwise the schema still goes, followed best-effort. */
static int conv_output_format(conv_t *c, json_t *root, json_t *req)
{
    json_t *oc = yr_aj_opt_get(root, "output_config");
    if (oc != NULL && !json_is_object(oc))
        return BAD(c->err, "output_config", "", "Input should be an object");
    const char *path = "output_config.format";
    json_t *fmt = yr_aj_opt_get(oc, "format");
    if (fmt == NULL) {
        path = "output_format";
        fmt = yr_aj_opt_get(root, "output_format");
    }
    if (fmt == NULL)
        return 0;
    if (!json_is_object(fmt))
        return BAD(c->err, path, "", "Input should be an object");
    if (!yr_aj_jstr_is(json_object_get(fmt, "type"), "json_schema"))
        return BAD(c->err, path, ".type", "Input should be 'json_schema'");
    json_t *schema = json_object_get(fmt, "schema");
    if (!json_is_object(schema))
        return BAD(c->err, path, ".schema",
                   schema ? "Input should be an object" : "Field required");
    json_t *rf = json_pack("{s:s, s:{s:s, s:O, s:b}}", "type", "json_schema", "json_schema", "name",
                           "response", "schema", schema, "strict", yr_aj_strict_ok(schema, 0));
    return rf ? yr_aj_jset(req, "response_format", rf) : -ENOMEM;
}

static int conv_metadata(conv_t *c, json_t *root, json_t *req)
{
    json_t *md = yr_aj_opt_get(root, "metadata");
    if (md == NULL)
        return 0;
    if (!json_is_object(md))
        return BAD(c->err, "metadata", "", "Input should be an object");
    json_t *uid = yr_aj_opt_get(md, "user_id");
    if (uid == NULL)
        return 0;
    if (!json_is_string(uid))
        return BAD(c->err, "metadata", ".user_id", "Input should be a valid string");
    return json_string_length(uid) > 0 ? yr_aj_jset_ref(req, "user", uid) : 0;
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

    json_t *mt = yr_aj_opt_get(root, "max_tokens");
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

    int rc = yr_aj_jset_ref(req, "model", model);
    if (rc == 0)
        rc = yr_aj_jset_ref(req, "messages", c->msgs);
    if (rc == 0)
        rc = conv_messages(c, messages);
    if (rc == 0)
        rc = conv_system(c, yr_aj_opt_get(root, "system"));
    if (rc == 0 && mt != NULL)
        rc = yr_aj_jset_ref(req, "max_tokens", mt);
    if (rc == 0)
        rc = conv_sampling(c, root, req);
    if (rc < 0)
        return rc;
    json_t *stream = yr_aj_opt_get(root, "stream");
    if (stream != NULL && !json_is_boolean(stream))
        return BAD(c->err, "stream", "", "Input should be a valid boolean");
    info->stream = json_is_true(stream);
    if (info->stream) {
        rc = yr_aj_jset(req, "stream", json_true());
        if (rc == 0)
            rc = yr_aj_jset(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (rc == 0)
        rc = conv_metadata(c, root, req);
    if (rc == 0)
        rc = conv_tools(c, root, req);
    if (rc == 0)
        rc = conv_thinking(c, root, max_tokens, req, info);
    if (rc == 0)
        rc = conv_output_format(c, root, req);
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
    json_t *root = yr_json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return yr_aj_fail(err, YR_E_INVALID_JSON, "", "",
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
        return yr_aj_fail_rc(err, rc);
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
    rc = yr_aj_restore(out, start, yr_aj_dump_json(out, req, 0));
    /* Reported in message_start, before the provider's own figure. */
    if (rc == 0)
        rc = yr_aj_estimate_openai(req, len, &info->input_tokens_estimate);
    json_decref(req);
    return rc < 0 ? yr_aj_fail_rc(err, yr_aj_restore(out, start, rc)) : 0;
}

/* ---- passthrough: the light check ------------------------------------------ */

int yr_anth_peek(const char *body, size_t len, yr_anth_req_info_t *info, yr_api_error_t *err)
{
    memset(info, 0, sizeof(*info));
    memset(err, 0, sizeof(*err));
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, body ? body : "", len, true);
    if (rc == -ENOMEM) {
        yr_json_free(&d);
        return yr_aj_fail_rc(err, rc);
    }
    if (rc < 0) {
        rc = yr_aj_fail(err, YR_E_INVALID_JSON, "", "",
                   "the request body is not valid JSON: %s (at byte %zu)",
                   d.err ? d.err : "too large", d.err_off);
        goto out;
    }
    if (yr_json_type(&d, 0) != YR_JT_OBJECT) {
        rc = BAD(err, "", "", "the request body must be a JSON object");
        goto out;
    }
    int model = yr_json_get(&d, 0, "model");
    yr_buf_t m;
    yr_buf_init(&m, YR_ANTH_MODEL_MAX);
    if (yr_json_type(&d, model) != YR_JT_STRING) {
        rc = BAD(err, "model", "",
                 model >= 0 ? "Input should be a non-empty string" : "Field required");
    } else if ((rc = yr_json_str_decode(&d, model, &m)) < 0 || m.len == 0) {
        rc = rc == -E2BIG ? BAD(err, "model", "", "must be at most %d bytes", YR_ANTH_MODEL_MAX)
             : rc < 0     ? yr_aj_fail_rc(err, rc)
                          : BAD(err, "model", "", "Input should be a non-empty string");
    } else {
        memcpy(info->model, m.data, m.len);
        info->model[m.len] = '\0';
        info->model_len = m.len;
    }
    yr_buf_free(&m);
    if (rc < 0)
        goto out;
    int stream = yr_json_get(&d, 0, "stream");
    int st = yr_json_type(&d, stream);
    if (st != 0 && st != YR_JT_NULL && st != YR_JT_TRUE && st != YR_JT_FALSE) {
        rc = BAD(err, "stream", "", "Input should be a valid boolean");
        goto out;
    }
    info->stream = st == YR_JT_TRUE;
    int type = yr_json_get(&d, yr_json_get(&d, 0, "thinking"), "type");
    info->thinking = yr_json_str_eq(&d, type, "enabled") || yr_json_str_eq(&d, type, "adaptive");
out:
    yr_json_free(&d);
    return rc;
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
    rc = yr_aj_estimate_openai(req, len, tokens);
    json_decref(req);
    return rc < 0 ? yr_aj_fail_rc(err, rc) : 0;
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
    yr_aj_w_t w = {out, 0};
    yr_aj_w_raw(&w, "{\"type\":\"error\",\"error\":{\"type\":");
    yr_aj_w_cstr(&w, yr_anth_error_type(e));
    yr_aj_w_raw(&w, ",\"message\":");
    yr_aj_w_str(&w, message.ptr ? message : YR_STR(""));
    yr_aj_w_raw(&w, "},\"request_id\":");
    if (request_id.len > 0)
        yr_aj_w_str(&w, request_id);
    else
        yr_aj_w_raw(&w, "null");
    yr_aj_w_raw(&w, "}");
    return yr_aj_restore(out, start, w.rc);
}
