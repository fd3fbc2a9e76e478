/* Anthropic Messages API (POST {base_url}/v1/messages).
 *
 * The client speaks OpenAI Chat Completions; this provider translates the
 * request into a Messages request, and the answer (a message object, or the
 * message_start / content_block_* / message_delta / message_stop event
 * stream) back into a chat.completion or chat.completion.chunk events.
 * docs/providers.md has the mapping tables and the reasons behind every
 * field that is rejected or dropped.
 *
 * Rules that shape the code:
 *   - Whatever has no Anthropic equivalent and would change the answer is
 *     refused with a 400 naming the parameter (cx->error, -EINVAL), so the
 *     gateway may try another route or tell the client exactly why. Harmless
 *     knobs are dropped.
 *   - The request is built as a jansson tree (it is small next to the
 *     network round trip) and dumped into the caller's capped body buffer.
 *   - Stream events are translated one by one as they arrive: nothing is
 *     buffered beyond the per-attempt state (anth_state_t, in the request
 *     pool), so time to first token is the provider's.
 *
 * Memory: every json_t built here is released before a function returns;
 * strings kept across events (chunk prefix, stop reason) live in cx->pool. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/json_tok.h"
#include "providers/anthropic_native.h"
#include "providers/provider.h"
#include "providers/translate.h"

#define ANTH_DEFAULT_VERSION "2023-06-01"
#define ANTH_DEFAULT_MAX_TOKENS 4096
#define ANTH_JSON_TOOL "json_response" /* the forced tool of response_format */
#define ANTH_MAX_MEDIA_TYPE 32

/* The content block that is open in a stream (blocks never interleave: each
 * has its start, deltas and stop before the next one starts). */
enum anth_block { AB_NONE, AB_TEXT, AB_THINKING, AB_TOOL, AB_JSON, AB_OTHER };

/* Per-attempt state: created by build (or by the first event when a test
 * feeds events alone), lives in cx->pool until the request ends. */
typedef struct {
    /* response_format was mapped to a forced tool: its input is the answer */
    bool json_mode;
    const char *json_tool;
    /* stream */
    bool started, finished;
    enum anth_block block;
    uint32_t tools;   /* tool_use blocks seen so far (the next event index) */
    size_t block_out; /* bytes of arguments/content streamed for the open tool block */
    char stop_reason[48];
    int64_t input_tokens, cache_read, cache_creation, output_tokens;
    int64_t cache_1h; /* usage.cache_creation.ephemeral_1h_input_tokens */
} anth_state_t;

/* ---- small helpers ---------------------------------------------------------------- */

static const char *vendor(const yr_call_ctx_t *cx)
{
    return yr_tr_vendor(cx, "anthropic");
}

static anth_state_t *state_of(yr_call_ctx_t *cx)
{
    if (cx->state == NULL)
        cx->state = yr_pcalloc(cx->pool, sizeof(anth_state_t));
    return cx->state;
}

static json_t *text_block(const char *text, size_t len)
{
    json_t *b = json_object();
    if (b != NULL && (yr_tr_set_new(b, "type", json_string("text")) < 0 ||
                      yr_tr_set_new(b, "text", json_stringn(text, len)) < 0)) {
        json_decref(b);
        return NULL;
    }
    return b;
}

/* ---- images ------------------------------------------------------------------------ */

static const char *const anth_image_types[] = {"image/jpeg", "image/png", "image/gif",
                                               "image/webp", NULL};

/* data:<media type>[;param...];base64,<data> -> a base64 image source. */
static int data_url_source(yr_call_ctx_t *cx, const char *url, size_t len, const char *param,
                           json_t **out)
{
    char media[ANTH_MAX_MEDIA_TYPE];
    yr_str_t data;
    int rc = yr_tr_data_url(cx, (yr_str_t){url, len}, param, anth_image_types,
                            "image/jpeg, image/png, image/gif and image/webp", media,
                            sizeof(media), &data);
    if (rc < 0)
        return rc;
    *out = json_object();
    if (*out == NULL || yr_tr_set_new(*out, "type", json_string("base64")) < 0 ||
        yr_tr_set_new(*out, "media_type", json_string(media)) < 0 ||
        yr_tr_set_new(*out, "data", json_stringn(data.ptr, data.len)) < 0)
        return -ENOMEM;
    return 0;
}

/* {"type":"image_url","image_url":{"url":...}} -> {"type":"image","source":...}. */
static int image_block(yr_call_ctx_t *cx, const json_t *part, size_t mi, size_t pi, json_t **out)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu].image_url.url", mi, pi);
    json_t *iu = json_object_get(part, "image_url");
    json_t *urlv = json_is_object(iu) ? json_object_get(iu, "url") : iu;
    if (!json_is_string(urlv))
        return yr_tr_reject(cx, param, "%s must be a string", param);
    const char *url = json_string_value(urlv);
    size_t len = json_string_length(urlv);
    json_t *source = NULL;
    int rc;
    if (yr_tr_has_prefix_ci(url, len, "data:")) {
        rc = data_url_source(cx, url, len, param, &source);
    } else if (yr_tr_has_prefix_ci(url, len, "https://")) {
        source = json_object();
        rc = source && yr_tr_set_new(source, "type", json_string("url")) == 0 &&
                     yr_tr_set_new(source, "url", json_stringn(url, len)) == 0
                 ? 0
                 : -ENOMEM;
    } else {
        rc = yr_tr_reject(cx, param,
                    "%s must be an https:// URL or a data: URL; vendor '%s' fetches only https",
                    param, vendor(cx));
    }
    if (rc < 0) {
        json_decref(source);
        return rc;
    }
    /* Until it is set into b, source is ours to release (tests/torture
     * found it leaked when json_object() or the "type" failed). */
    json_t *b = json_object();
    if (b == NULL || yr_tr_set_new(b, "type", json_string("image")) < 0) {
        json_decref(source);
        json_decref(b);
        return -ENOMEM;
    }
    if (yr_tr_set_new(b, "source", source) < 0) {
        json_decref(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

/* ---- messages ----------------------------------------------------------------------- */

typedef struct {
    yr_call_ctx_t *cx;
    json_t *system;   /* array of text blocks */
    json_t *messages; /* the Anthropic messages */
    json_t *cur;      /* content array of the last message in messages */
    const char *cur_role;
} conv_t;

/* Appends blocks (consumed) as a message of role, merged into the previous
 * message when it has the same role: Anthropic wants alternating turns. */
static int push_blocks(conv_t *c, const char *role, json_t *blocks)
{
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return 0;
    }
    if (c->cur != NULL && strcmp(c->cur_role, role) == 0) {
        int rc = json_array_extend(c->cur, blocks) == 0 ? 0 : -ENOMEM;
        json_decref(blocks);
        return rc;
    }
    json_t *m = json_object();
    if (m == NULL || yr_tr_set_new(m, "role", json_string(role)) < 0 ||
        json_object_set(m, "content", blocks) < 0) {
        json_decref(m);
        json_decref(blocks);
        return -ENOMEM;
    }
    c->cur = blocks;
    json_decref(blocks); /* m holds it */
    c->cur_role = role;
    return yr_tr_append_new(c->messages, m);
}

static int copy_cache_control(const json_t *part, json_t *block)
{
    json_t *cc = json_object_get(part, "cache_control");
    if (!json_is_object(cc))
        return 0;
    return json_object_set(block, "cache_control", cc) == 0 ? 0 : -ENOMEM;
}

/* One OpenAI content part -> an Anthropic block appended to blocks. Which
 * part types are allowed depends on the message's role. */
static int convert_part(conv_t *c, const json_t *part, size_t mi, size_t pi, bool images,
                        json_t *blocks)
{
    yr_call_ctx_t *cx = c->cx;
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu]", mi, pi);
    if (!json_is_object(part))
        return yr_tr_reject(cx, param, "%s must be an object", param);
    const char *type = json_string_value(json_object_get(part, "type"));
    if (type == NULL)
        return yr_tr_reject(cx, param, "%s.type must be a string", param);
    json_t *b = NULL;
    if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
        json_t *t = json_object_get(part, type);
        if (!json_is_string(t))
            return yr_tr_reject(cx, param, "%s.%s must be a string", param, type);
        if (json_string_length(t) == 0)
            return 0; /* Anthropic refuses empty text blocks; an empty part says nothing */
        b = text_block(json_string_value(t), json_string_length(t));
        if (b == NULL)
            return -ENOMEM;
    } else if (strcmp(type, "image_url") == 0 && images) {
        int rc = image_block(cx, part, mi, pi, &b);
        if (rc < 0)
            return rc;
    } else {
        return yr_tr_reject(cx, param,
                      "content parts of type '%.40s' are not supported here by vendor '%s'", type,
                      vendor(cx));
    }
    if (copy_cache_control(part, b) < 0) {
        json_decref(b);
        return -ENOMEM;
    }
    return yr_tr_append_new(blocks, b);
}

/* A string or an array of parts -> a new array of blocks in *out. */
static int convert_content(conv_t *c, const json_t *content, size_t mi, bool images, json_t **out)
{
    json_t *blocks = json_array();
    if (blocks == NULL)
        return -ENOMEM;
    int rc = 0;
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            rc = yr_tr_append_new(blocks,
                            text_block(json_string_value(content), json_string_length(content)));
    } else if (json_is_array(content)) {
        size_t pi;
        json_t *part;
        json_array_foreach(content, pi, part)
        {
            if ((rc = convert_part(c, part, mi, pi, images, blocks)) < 0)
                break;
        }
    } else if (content != NULL && !json_is_null(content)) {
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].content", mi);
        rc = yr_tr_reject(c->cx, param, "%s must be a string or an array", param);
    }
    if (rc < 0) {
        json_decref(blocks);
        return rc;
    }
    *out = blocks;
    return 0;
}

static int convert_system(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *blocks;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, false, &blocks);
    if (rc < 0)
        return rc;
    rc = json_array_extend(c->system, blocks) == 0 ? 0 : -ENOMEM;
    json_decref(blocks);
    return rc;
}

static int convert_tool_call(conv_t *c, const json_t *tc, size_t mi, size_t k, json_t *blocks)
{
    yr_call_ctx_t *cx = c->cx;
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu]", mi, k);
    json_t *fn = json_object_get(tc, "function");
    json_t *type = json_object_get(tc, "type");
    if (!json_is_object(tc) || !json_is_object(fn))
        return yr_tr_reject(cx, param, "%s must be an object with a 'function'", param);
    if (type != NULL && !yr_tr_str_is(type, "function"))
        return yr_tr_reject(cx, param, "%s.type must be 'function'", param);
    json_t *id = json_object_get(tc, "id");
    json_t *name = json_object_get(fn, "name");
    if (!json_is_string(id) || json_string_length(id) == 0)
        return yr_tr_reject(cx, param, "%s.id must be a non-empty string", param);
    if (!json_is_string(name) || json_string_length(name) == 0)
        return yr_tr_reject(cx, param, "%s.function.name must be a non-empty string", param);
    char aparam[128];
    snprintf(aparam, sizeof(aparam), "%s.function.arguments", param);
    json_t *input = NULL;
    int rc = yr_tr_parse_arguments(cx, json_object_get(fn, "arguments"), aparam, &input);
    if (rc < 0)
        return rc;
    json_t *b = json_object();
    if (b == NULL || yr_tr_set_new(b, "type", json_string("tool_use")) < 0 ||
        json_object_set(b, "id", id) < 0 || json_object_set(b, "name", name) < 0) {
        json_decref(input); /* not handed over yet (tests/torture) */
        json_decref(b);
        return -ENOMEM;
    }
    if (yr_tr_set_new(b, "input", input) < 0) {
        json_decref(b);
        return -ENOMEM;
    }
    return yr_tr_append_new(blocks, b);
}

/* thinking_blocks (the form LiteLLM gives OpenAI clients, and the
 * Responses API's sealed reasoning state): the assistant turn's thinking and
 * redacted_thinking blocks, signatures and all, first in its content, as
 * Anthropic requires them back for tool use with extended thinking. */
static int thinking_blocks(conv_t *c, const json_t *msg, size_t mi, json_t **blocks)
{
    const json_t *tb = json_object_get(msg, "thinking_blocks");
    if (!json_is_array(tb) || json_array_size(tb) == 0)
        return 0;
    json_t *all = json_array();
    if (all == NULL)
        return -ENOMEM;
    size_t k;
    const json_t *b;
    json_array_foreach(tb, k, b)
    {
        const char *t = json_string_value(json_object_get(b, "type"));
        bool ok = t != NULL &&
                  ((strcmp(t, "thinking") == 0 &&
                    json_is_string(json_object_get(b, "thinking")) &&
                    json_is_string(json_object_get(b, "signature"))) ||
                   (strcmp(t, "redacted_thinking") == 0 &&
                    json_is_string(json_object_get(b, "data"))));
        if (!ok) {
            json_decref(all);
            char param[80];
            snprintf(param, sizeof(param), "messages[%zu].thinking_blocks[%zu]", mi, k);
            return yr_tr_reject(c->cx, param,
                                "%s must be a thinking block (thinking, signature) or a "
                                "redacted_thinking block (data)",
                                param);
        }
        json_t *copy = t[0] == 't' ? json_pack("{s:s, s:O, s:O}", "type", "thinking", "thinking",
                                               json_object_get(b, "thinking"), "signature",
                                               json_object_get(b, "signature"))
                                   : json_pack("{s:s, s:O}", "type", "redacted_thinking", "data",
                                               json_object_get(b, "data"));
        if (yr_tr_append_new(all, copy) < 0) {
            json_decref(all);
            return -ENOMEM;
        }
    }
    if (json_array_extend(all, *blocks) < 0) {
        json_decref(all);
        return -ENOMEM;
    }
    json_decref(*blocks);
    *blocks = all;
    return 0;
}

static int convert_assistant(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *blocks;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, false, &blocks);
    if (rc < 0)
        return rc;
    if ((rc = thinking_blocks(c, msg, mi, &blocks)) < 0) {
        json_decref(blocks);
        return rc;
    }
    json_t *calls = json_object_get(msg, "tool_calls");
    if (calls != NULL && !json_is_null(calls)) {
        if (!json_is_array(calls)) {
            json_decref(blocks);
            char param[48];
            snprintf(param, sizeof(param), "messages[%zu].tool_calls", mi);
            return yr_tr_reject(c->cx, param, "%s must be an array", param);
        }
        size_t k;
        json_t *tc;
        json_array_foreach(calls, k, tc)
        {
            if ((rc = convert_tool_call(c, tc, mi, k, blocks)) < 0) {
                json_decref(blocks);
                return rc;
            }
        }
    }
    /* An empty assistant turn says nothing; Anthropic would refuse it. */
    return push_blocks(c, "assistant", blocks);
}

/* role "tool" -> a tool_result block in a user turn (consecutive results
 * and a user message right after them share that turn, in order). */
static int convert_tool_result(conv_t *c, const json_t *msg, size_t mi)
{
    yr_call_ctx_t *cx = c->cx;
    char param[64];
    json_t *id = json_object_get(msg, "tool_call_id");
    if (!json_is_string(id) || json_string_length(id) == 0) {
        snprintf(param, sizeof(param), "messages[%zu].tool_call_id", mi);
        return yr_tr_reject(cx, param, "%s must be a non-empty string", param);
    }
    json_t *content = json_object_get(msg, "content");
    json_t *b = json_object();
    json_t *blocks = json_array();
    int rc = b && blocks ? 0 : -ENOMEM;
    if (rc == 0)
        rc = yr_tr_set_new(b, "type", json_string("tool_result"));
    if (rc == 0)
        rc = json_object_set(b, "tool_use_id", id) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && json_is_string(content)) {
        if (json_string_length(content) > 0)
            rc = json_object_set(b, "content", content) == 0 ? 0 : -ENOMEM;
    } else if (rc == 0) {
        json_t *parts = NULL;
        rc = convert_content(c, content, mi, true, &parts);
        if (rc == 0 && json_array_size(parts) > 0)
            rc = json_object_set(b, "content", parts) == 0 ? 0 : -ENOMEM;
        json_decref(parts);
    }
    if (rc == 0) {
        rc = yr_tr_append_new(blocks, b);
        b = NULL;
    }
    if (rc < 0) {
        json_decref(b);
        json_decref(blocks);
        return rc;
    }
    return push_blocks(c, "user", blocks);
}

static int convert_user(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *blocks;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, true, &blocks);
    if (rc < 0)
        return rc;
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].content", mi);
        return yr_tr_reject(c->cx, param, "%s is empty; vendor '%s' does not accept empty user messages",
                      param, vendor(c->cx));
    }
    return push_blocks(c, "user", blocks);
}

/* {"role","content":[{"type":"text","text":s}]} -> {"role","content":s}:
 * the same request, shorter and easier to read in recordings. */
static void collapse_single_text(json_t *messages)
{
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *content = json_object_get(m, "content");
        json_t *b = json_array_get(content, 0);
        if (json_array_size(content) == 1 && json_object_size(b) == 2 &&
            yr_tr_str_is(json_object_get(b, "type"), "text"))
            json_object_set(m, "content", json_object_get(b, "text"));
    }
}

static int convert_messages(yr_call_ctx_t *cx, json_t *root, json_t *req)
{
    conv_t c = {.cx = cx, .system = json_array(), .messages = json_array()};
    int rc = c.system && c.messages ? 0 : -ENOMEM;
    json_t *msgs = json_object_get(root, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (rc < 0)
            break;
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL) {
            char param[48];
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            rc = yr_tr_reject(cx, param, "%s must be a string", param);
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            rc = convert_system(&c, m, i);
        } else if (strcmp(role, "user") == 0) {
            rc = convert_user(&c, m, i);
        } else if (strcmp(role, "assistant") == 0) {
            rc = convert_assistant(&c, m, i);
        } else if (strcmp(role, "tool") == 0) {
            rc = convert_tool_result(&c, m, i);
        } else {
            char param[48];
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            rc = yr_tr_reject(cx, param,
                        "%s '%.40s' is not supported by vendor '%s'; use 'tool' messages and "
                        "'tools' instead of the legacy function calling",
                        param, role, vendor(cx));
        }
    }
    if (rc == 0 && json_array_size(c.messages) == 0)
        rc = yr_tr_reject(cx, "messages",
                    "'messages' needs at least one user or assistant message for vendor '%s' "
                    "(system messages alone are not a conversation)",
                    vendor(cx));
    json_t *first = json_array_get(c.system, 0);
    if (rc == 0 && json_array_size(c.system) == 1 && json_object_size(first) == 2)
        rc = json_object_set(req, "system", json_object_get(first, "text"));
    else if (rc == 0 && json_array_size(c.system) > 0)
        rc = json_object_set(req, "system", c.system);
    if (rc == 0) {
        collapse_single_text(c.messages);
        rc = json_object_set(req, "messages", c.messages);
    }
    json_decref(c.system);
    json_decref(c.messages);
    return rc < 0 ? rc : 0;
}

/* ---- parameters ----------------------------------------------------------------------- */

/* Parameters Anthropic has no equivalent for (translate.c: the same for
 * every translating vendor; Anthropic has no penalties either). */
static int check_unsupported(yr_call_ctx_t *cx, json_t *root)
{
    return yr_tr_check_unsupported(cx, root, false);
}

static int put_max_tokens(yr_call_ctx_t *cx, json_t *root, json_t *req, int64_t budget)
{
    int64_t max;
    int rc = yr_tr_max_tokens(cx, root, &max);
    if (rc < 0)
        return rc;
    if (max == 0) {
        const yr_provider_conf_t *p = cx->route ? cx->route->provider : NULL;
        max = p && p->default_max_tokens ? p->default_max_tokens : ANTH_DEFAULT_MAX_TOKENS;
    }
    /* Anthropic wants max_tokens > budget_tokens; OpenAI's limit also covers
     * reasoning, so a limit at or under the budget becomes budget + limit. */
    if (budget > 0 && max <= budget)
        max += budget;
    return yr_tr_set_new(req, "max_tokens", json_integer(max));
}

static int put_sampling(yr_call_ctx_t *cx, json_t *root, json_t *req, int64_t budget)
{
    const json_t *t, *tp;
    json_t *stop;
    int rc = yr_tr_claude_sampling(cx, root, budget, &t, &tp);
    if (rc == 0 && t != NULL && json_object_set(req, "temperature", (json_t *)t) < 0)
        rc = -ENOMEM;
    if (rc == 0 && tp != NULL && json_object_set(req, "top_p", (json_t *)tp) < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = yr_tr_stop(cx, root, &stop);
    if (rc == 0 && stop != NULL)
        rc = yr_tr_set_new(req, "stop_sequences", stop);
    if (rc < 0)
        return rc;
    json_t *user = json_object_get(root, "user");
    if (user == NULL || json_is_null(user))
        user = json_object_get(root, "safety_identifier");
    if (json_is_string(user) && json_string_length(user) > 0) {
        json_t *md = json_object();
        if (md == NULL || json_object_set(md, "user_id", user) < 0 ||
            yr_tr_set_new(req, "metadata", md) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- tools ------------------------------------------------------------------------------- */

static int convert_tools(yr_call_ctx_t *cx, json_t *tools, json_t *req)
{
    json_t *out = json_array();
    if (out == NULL)
        return -ENOMEM;
    int rc = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char param[48];
        snprintf(param, sizeof(param), "tools[%zu]", i);
        json_t *fn = json_object_get(t, "function");
        json_t *type = json_object_get(t, "type");
        json_t *name = json_object_get(fn, "name");
        json_t *desc = json_object_get(fn, "description");
        if (!json_is_object(t) || (type != NULL && !yr_tr_str_is(type, "function"))) {
            rc = yr_tr_reject(cx, param, "%s: only tools of type 'function' are supported by vendor '%s'",
                        param, vendor(cx));
            break;
        }
        if (!json_is_object(fn) || !json_is_string(name) || json_string_length(name) == 0) {
            rc = yr_tr_reject(cx, param, "%s.function.name must be a non-empty string", param);
            break;
        }
        json_t *o = json_object();
        rc = o && json_object_set(o, "name", name) == 0 ? 0 : -ENOMEM;
        if (rc == 0 && json_is_string(desc))
            rc = json_object_set(o, "description", desc) == 0 ? 0 : -ENOMEM;
        if (rc == 0)
            rc = yr_tr_set_new(o, "input_schema",
                               yr_tr_object_schema(json_object_get(fn, "parameters")));
        if (rc == 0)
            rc = yr_tr_append_new(out, o);
        else
            json_decref(o);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = json_object_set(req, "tools", out) == 0 ? 0 : -ENOMEM;
    json_decref(out);
    return rc;
}

/* tool_choice and parallel_tool_calls -> Anthropic's tool_choice. */
static int convert_tool_choice(yr_call_ctx_t *cx, json_t *root, json_t *req, int64_t budget)
{
    json_t *tc = json_object_get(root, "tool_choice");
    const char *type = "auto";
    json_t *name = NULL;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "auto") == 0)
            type = "auto";
        else if (strcmp(s, "none") == 0)
            type = "none";
        else if (strcmp(s, "required") == 0)
            type = "any";
        else
            return yr_tr_reject(cx, "tool_choice",
                          "'tool_choice' must be none, auto, required or a "
                          "{\"type\":\"function\",...} object");
    } else if (json_is_object(tc)) {
        name = json_object_get(json_object_get(tc, "function"), "name");
        if (!json_is_string(name))
            return yr_tr_reject(cx, "tool_choice", "'tool_choice.function.name' must be a string");
        type = "tool";
    } else if (tc != NULL && !json_is_null(tc)) {
        return yr_tr_reject(cx, "tool_choice", "'tool_choice' must be a string or an object");
    }
    bool forced = strcmp(type, "any") == 0 || strcmp(type, "tool") == 0;
    if (forced && budget > 0)
        return yr_tr_reject(cx, "tool_choice",
                      "a forced 'tool_choice' cannot be combined with 'reasoning_effort' for "
                      "vendor '%s' (extended thinking does not allow forced tool use)",
                      vendor(cx));
    bool serial = json_is_false(json_object_get(root, "parallel_tool_calls"));
    if (tc == NULL && !serial)
        return 0; /* Anthropic's default is auto with parallel calls */
    json_t *o = json_object();
    int rc = o ? yr_tr_set_new(o, "type", json_string(type)) : -ENOMEM;
    if (rc == 0 && name != NULL)
        rc = json_object_set(o, "name", name) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && serial && strcmp(type, "none") != 0)
        rc = yr_tr_set_new(o, "disable_parallel_tool_use", json_true());
    if (rc == 0)
        return yr_tr_set_new(req, "tool_choice", o);
    json_decref(o);
    return rc;
}

/* response_format json_schema / json_object -> one forced tool whose input
 * is the answer (Anthropic's documented way to get schema-shaped JSON). */
static int convert_response_format(yr_call_ctx_t *cx, json_t *root, json_t *req, int64_t budget,
                                   bool *json_mode)
{
    *json_mode = false;
    json_t *rf = json_object_get(root, "response_format");
    if (rf == NULL || json_is_null(rf))
        return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (type == NULL)
        return yr_tr_reject(cx, "response_format", "'response_format.type' must be a string");
    if (strcmp(type, "text") == 0)
        return 0;
    json_t *schema = NULL, *name = NULL, *desc = NULL;
    if (strcmp(type, "json_schema") == 0) {
        json_t *js = json_object_get(rf, "json_schema");
        schema = json_object_get(js, "schema");
        name = json_object_get(js, "name");
        desc = json_object_get(js, "description");
        if (!json_is_object(schema))
            return yr_tr_reject(cx, "response_format",
                          "'response_format.json_schema.schema' must be an object");
        json_t *st = json_object_get(schema, "type");
        if (st != NULL && !yr_tr_str_is(st, "object"))
            return yr_tr_reject(cx, "response_format",
                          "vendor '%s' needs a JSON schema whose root is an object", vendor(cx));
    } else if (strcmp(type, "json_object") != 0) {
        return yr_tr_reject(cx, "response_format",
                      "'response_format.type' must be text, json_object or json_schema");
    }
    json_t *tools = json_object_get(root, "tools");
    if (json_array_size(tools) > 0)
        return yr_tr_reject(cx, "response_format",
                      "'response_format' cannot be combined with 'tools' for vendor '%s' "
                      "(it is implemented as a forced tool call)",
                      vendor(cx));
    if (budget > 0)
        return yr_tr_reject(cx, "response_format",
                      "'response_format' cannot be combined with 'reasoning_effort' for vendor "
                      "'%s' (extended thinking does not allow forced tool use)",
                      vendor(cx));
    const char *tool = json_is_string(name) && json_string_length(name) > 0
                           ? json_string_value(name)
                           : ANTH_JSON_TOOL;
    json_t *t = json_object();
    int rc = t ? yr_tr_set_new(t, "name", json_string(tool)) : -ENOMEM;
    if (rc == 0 && json_is_string(desc))
        rc = json_object_set(t, "description", desc) == 0 ? 0 : -ENOMEM;
    if (rc == 0)
        rc = yr_tr_set_new(t, "input_schema",
                     schema ? yr_tr_object_schema(schema) : json_pack("{s:s}", "type", "object"));
    if (rc == 0)
        rc = yr_tr_set_new(req, "tools", json_pack("[o]", t));
    else
        json_decref(t);
    if (rc == 0)
        rc = yr_tr_set_new(req, "tool_choice", json_pack("{s:s, s:s}", "type", "tool", "name", tool));
    if (rc < 0)
        return rc;
    anth_state_t *st = state_of(cx);
    if (st == NULL || (st->json_tool = yr_pstrndup(cx->pool, tool, strlen(tool))) == NULL)
        return -ENOMEM;
    st->json_mode = *json_mode = true;
    return 0;
}

/* ---- build_chat ---------------------------------------------------------------------------- */

static int build_body(yr_call_ctx_t *cx, json_t *root, json_t *req)
{
    int64_t budget;
    int rc = check_unsupported(cx, root);
    if (rc == 0)
        rc = yr_tr_thinking_budget(cx, root, &budget);
    if (rc == 0)
        rc = yr_tr_set_new(req, "model", json_string(cx->route->model));
    if (rc == 0)
        rc = put_max_tokens(cx, root, req, budget);
    if (rc == 0)
        rc = convert_messages(cx, root, req);
    bool json_mode = false;
    if (rc == 0)
        rc = convert_response_format(cx, root, req, budget, &json_mode);
    json_t *tools = json_object_get(root, "tools");
    if (rc == 0 && tools != NULL && !json_is_null(tools) && !json_is_array(tools))
        rc = yr_tr_reject(cx, "tools", "'tools' must be an array");
    if (rc == 0 && !json_mode && json_array_size(tools) > 0) {
        rc = convert_tools(cx, tools, req);
        if (rc == 0)
            rc = convert_tool_choice(cx, root, req, budget);
    } else if (rc == 0 && !json_mode) {
        json_t *tc = json_object_get(root, "tool_choice");
        if (tc != NULL && !json_is_null(tc) && !yr_tr_str_is(tc, "none") && !yr_tr_str_is(tc, "auto"))
            rc = yr_tr_reject(cx, "tool_choice", "'tool_choice' requires 'tools'");
    }
    if (rc == 0 && budget > 0)
        rc = yr_tr_set_new(
            req, "thinking",
            json_pack("{s:s, s:I}", "type", "enabled", "budget_tokens", (json_int_t)budget));
    if (rc == 0)
        rc = put_sampling(cx, root, req, budget);
    if (rc == 0 && cx->chat->stream)
        rc = yr_tr_set_new(req, "stream", json_true());
    return rc;
}

/* anthropic-version (the configured one) and the client's anthropic-beta:
 * the Messages API's protocol headers, for the transport to send. */
static int protocol_headers(yr_call_ctx_t *cx, yr_str_t version, const char *const **extra)
{
    const char **h = yr_palloc(cx->pool, 3 * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    size_t n = 0;
    if ((h[n++] = yr_transport_header(cx->pool, "anthropic-version", version.ptr, version.len)) ==
        NULL)
        return -ENOMEM;
    if (cx->client_beta.len > 0 && /* the client opted into a beta: pass it on */
        (h[n++] = yr_transport_header(cx->pool, "anthropic-beta", cx->client_beta.ptr,
                                      cx->client_beta.len)) == NULL)
        return -ENOMEM;
    h[n] = NULL;
    *extra = h;
    return 0;
}

static yr_str_t configured_version(const yr_call_ctx_t *cx)
{
    const yr_provider_conf_t *p = cx->route->provider;
    return yr_str(p->anthropic_version && p->anthropic_version[0] ? p->anthropic_version
                                                                    : ANTH_DEFAULT_VERSION);
}

static int anth_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                      const char **path, const char *const **extra)
{
    (void)raw; /* the parsed request (cx->chat->root) is what gets translated */
    json_t *req = json_object();
    if (req == NULL || state_of(cx) == NULL) {
        json_decref(req);
        return -ENOMEM;
    }
    int rc = build_body(cx, cx->chat->root, req);
    if (rc == 0)
        rc = yr_tr_dump(req, body_buf);
    json_decref(req);
    if (rc < 0)
        return rc;
    out->body = body_buf->data;
    out->body_len = body_buf->len;
    *path = "/v1/messages";
    return protocol_headers(cx, configured_version(cx), extra);
}

/* ---- responses: message objects and stream events -> typed events ------------------- */

static const char *str_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* Anthropic stop_reason -> finish reason; the one table of this dialect. */
static yr_finish_t finish_of(const char *stop_reason, bool json_mode)
{
    if (stop_reason == NULL)
        return YR_FINISH_STOP;
    if (strcmp(stop_reason, "max_tokens") == 0 ||
        strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return YR_FINISH_LENGTH;
    if (strcmp(stop_reason, "tool_use") == 0)
        return json_mode ? YR_FINISH_STOP : YR_FINISH_TOOL_CALLS;
    if (strcmp(stop_reason, "refusal") == 0)
        return YR_FINISH_CONTENT_FILTER;
    return YR_FINISH_STOP; /* end_turn, stop_sequence, pause_turn and anything newer */
}

/* Anthropic counts input, cache reads and cache writes apart; the internal
 * model's prompt_tokens is their sum. */
static yr_usage_t usage_of(const anth_state_t *st)
{
    return (yr_usage_t){
        .prompt_tokens = st->input_tokens + st->cache_read + st->cache_creation,
        .completion_tokens = st->output_tokens,
        .cached_tokens = st->cache_read,
        .cache_write_tokens = st->cache_creation,
        .cache_write_1h_tokens = st->cache_1h,
        .present = true,
    };
}

static void read_usage_counts(anth_state_t *st, const json_t *u, bool only_present)
{
    static const struct {
        const char *key;
        size_t off;
    } fields[] = {
        {"input_tokens", offsetof(anth_state_t, input_tokens)},
        {"cache_read_input_tokens", offsetof(anth_state_t, cache_read)},
        {"cache_creation_input_tokens", offsetof(anth_state_t, cache_creation)},
        {"output_tokens", offsetof(anth_state_t, output_tokens)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!only_present || json_object_get(u, fields[i].key) != NULL)
            *(int64_t *)((char *)st + fields[i].off) = yr_tr_int_field(u, fields[i].key);
    /* the write's split by lifetime, when the API gives it */
    const json_t *cc = json_object_get(u, "cache_creation");
    if (json_is_object(cc))
        st->cache_1h = yr_tr_int_field(cc, "ephemeral_1h_input_tokens");
    else if (!only_present)
        st->cache_1h = 0;
}

static char *dump_compact(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

typedef struct {
    yr_ev_fn fn;
    void *arg;
} sink_t;

static int emit(const sink_t *k, const yr_event_t *ev)
{
    return k->fn(k->arg, ev);
}

static int emit_text(const sink_t *k, yr_ev_type_t type, yr_str_t text)
{
    if (text.len == 0)
        return 0;
    return emit(k, &(yr_event_t){.type = type, .text = text});
}

static int emit_tool_args(const sink_t *k, anth_state_t *st, yr_str_t frag)
{
    if (frag.len == 0)
        return 0;
    st->block_out += frag.len;
    return emit(k, &(yr_event_t){.type = YR_EV_TOOL_ARGS, .index = st->tools - 1, .text = frag});
}

/* The forced tool's input is the answer's content (response_format). */
static int emit_json_content(const sink_t *k, anth_state_t *st, yr_str_t frag)
{
    st->block_out += frag.len;
    return emit_text(k, YR_EV_TEXT, frag);
}

static int emit_start(const sink_t *k, yr_call_ctx_t *cx, const json_t *msg)
{
    yr_str_t id = yr_tr_jslice(json_object_get(msg, "id"));
    yr_str_t model = yr_tr_jslice(json_object_get(msg, "model"));
    return emit(k, &(yr_event_t){
                       .type = YR_EV_START,
                       .id = id.len ? id : cx->request_id,
                       .name = model.len ? model : yr_str(cx->route ? cx->route->model : ""),
                       .created = (int64_t)time(NULL),
                   });
}

/* USAGE, and the same figures in cx->usage (what the attempt is billed). */
static int emit_usage(const sink_t *k, yr_call_ctx_t *cx, const anth_state_t *st)
{
    cx->usage = usage_of(st);
    return emit(k, &(yr_event_t){.type = YR_EV_USAGE, .usage = cx->usage});
}

static int emit_end(const sink_t *k, yr_call_ctx_t *cx, anth_state_t *st, yr_finish_t finish)
{
    int rc = emit(k, &(yr_event_t){.type = YR_EV_FINISH, .finish = finish});
    if (rc == 0)
        rc = emit_usage(k, cx, st);
    if (rc == 0)
        rc = emit(k, &(yr_event_t){.type = YR_EV_END});
    return rc;
}

/* One content block of a message object. *json_answer: the forced tool's
 * input was already taken as the answer. */
static int message_block(const sink_t *k, anth_state_t *st, const json_t *blk, bool *json_answer)
{
    const char *type = json_string_value(json_object_get(blk, "type"));
    if (type == NULL)
        return -EINVAL;
    if (strcmp(type, "text") == 0) {
        json_t *t = json_object_get(blk, "text");
        if (!json_is_string(t))
            return -EINVAL;
        return st->json_mode ? 0 : emit_text(k, YR_EV_TEXT, yr_tr_jslice(t));
    }
    if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0) {
        bool redacted = type[0] == 'r';
        yr_str_t sig = yr_tr_jslice(json_object_get(blk, redacted ? "data" : "signature"));
        yr_str_t text = redacted ? YR_STR("") : yr_tr_jslice(json_object_get(blk, "thinking"));
        if (text.len == 0 && sig.len == 0)
            return 0;
        return emit(k, &(yr_event_t){.type = YR_EV_REASONING, .text = text, .signature = sig,
                                     .redacted = redacted});
    }
    if (strcmp(type, "tool_use") != 0)
        return 0; /* server tool blocks and future types: nothing to show */
    json_t *id = json_object_get(blk, "id"), *name = json_object_get(blk, "name");
    json_t *input = json_object_get(blk, "input");
    if (!json_is_string(id) || !json_is_string(name))
        return -EINVAL;
    char *args = input ? dump_compact(input) : NULL;
    if (input != NULL && args == NULL)
        return -ENOMEM; /* never "{}" in place of the model's arguments */
    yr_str_t a = args ? yr_str(args) : YR_STR("{}");
    int rc;
    if (st->json_mode && !*json_answer && strcmp(json_string_value(name), st->json_tool) == 0) {
        *json_answer = true;
        rc = emit_text(k, YR_EV_TEXT, a);
    } else {
        uint32_t index = st->tools++;
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_START, .index = index, .id = yr_tr_jslice(id),
                                   .name = yr_tr_jslice(name)});
        if (rc == 0)
            rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_ARGS, .index = index, .text = a});
        if (rc == 0)
            rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_END, .index = index});
    }
    free(args);
    return rc;
}

int yr_anth_response(yr_call_ctx_t *cx, yr_str_t body, yr_ev_fn fn, void *arg)
{
    anth_state_t *st = state_of(cx);
    if (st == NULL)
        return -ENOMEM;
    json_t *root;
    int rc = yr_json_load(body.ptr, body.len, 0, &root);
    json_t *content = json_object_get(root, "content");
    if (rc == 0 && !(json_is_object(root) && json_is_array(content)))
        rc = -EINVAL;
    /* Validate every block before anything is emitted: a broken answer
     * fails over instead of reaching the client half-translated. */
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk)
    {
        json_t *type = json_object_get(blk, "type");
        if (!json_is_string(type) ||
            (yr_tr_str_is(type, "text") && !json_is_string(json_object_get(blk, "text"))) ||
            (yr_tr_str_is(type, "tool_use") && (!json_is_string(json_object_get(blk, "id")) ||
                                             !json_is_string(json_object_get(blk, "name")))))
            rc = -EINVAL;
    }
    sink_t k = {fn, arg};
    if (rc == 0) {
        read_usage_counts(st, json_object_get(root, "usage"), false);
        rc = emit_start(&k, cx, root);
    }
    bool json_answer = false;
    json_array_foreach(content, i, blk)
    {
        if (rc == 0)
            rc = message_block(&k, st, blk, &json_answer);
    }
    if (rc == 0)
        rc = emit_end(&k, cx, st,
                      finish_of(json_string_value(json_object_get(root, "stop_reason")),
                                st->json_mode && json_answer));
    json_decref(root);
    return rc;
}

static int on_message_start(const sink_t *k, yr_call_ctx_t *cx, anth_state_t *st, json_t *root)
{
    if (st->started)
        return 0;
    json_t *msg = json_object_get(root, "message");
    if (!json_is_object(msg))
        return -EINVAL;
    st->started = true;
    read_usage_counts(st, json_object_get(msg, "usage"), false);
    int rc = emit_start(k, cx, msg);
    if (rc == 0)
        rc = emit_usage(k, cx, st);
    return rc;
}

static int on_block_start(const sink_t *k, anth_state_t *st, json_t *root)
{
    json_t *cb = json_object_get(root, "content_block");
    const char *type = json_string_value(json_object_get(cb, "type"));
    if (type == NULL)
        return -EINVAL;
    st->block_out = 0;
    if (strcmp(type, "text") == 0) {
        st->block = AB_TEXT;
        return st->json_mode ? 0 : emit_text(k, YR_EV_TEXT, yr_tr_jslice(json_object_get(cb, "text")));
    }
    if (strcmp(type, "thinking") == 0) {
        st->block = AB_THINKING;
        return emit_text(k, YR_EV_REASONING, yr_tr_jslice(json_object_get(cb, "thinking")));
    }
    if (strcmp(type, "redacted_thinking") == 0) {
        st->block = AB_OTHER;
        yr_str_t data = yr_tr_jslice(json_object_get(cb, "data"));
        return data.len ? emit(k, &(yr_event_t){.type = YR_EV_REASONING, .signature = data,
                                                .redacted = true})
                        : 0;
    }
    if (strcmp(type, "tool_use") != 0) {
        st->block = AB_OTHER; /* server tools, future types */
        return 0;
    }
    json_t *id = json_object_get(cb, "id"), *name = json_object_get(cb, "name");
    json_t *input = json_object_get(cb, "input");
    if (!json_is_string(id) || !json_is_string(name))
        return -EINVAL;
    /* Anthropic sends input {} here and the JSON in deltas; anything else is
     * streamed as the first fragment so that no argument is lost. */
    char *first = json_object_size(input) > 0 ? dump_compact(input) : NULL;
    if (json_object_size(input) > 0 && first == NULL)
        return -ENOMEM;
    int rc = 0;
    if (st->json_mode && strcmp(json_string_value(name), st->json_tool) == 0) {
        st->block = AB_JSON;
        if (first != NULL)
            rc = emit_json_content(k, st, yr_str(first));
    } else {
        st->block = AB_TOOL;
        st->tools++;
        rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_START, .index = st->tools - 1,
                                   .id = yr_tr_jslice(id), .name = yr_tr_jslice(name)});
        if (rc == 0 && first != NULL)
            rc = emit_tool_args(k, st, yr_str(first));
    }
    free(first);
    return rc;
}

static int on_block_delta(const sink_t *k, anth_state_t *st, json_t *root)
{
    json_t *delta = json_object_get(root, "delta");
    const char *type = json_string_value(json_object_get(delta, "type"));
    if (type == NULL)
        return -EINVAL;
    if (strcmp(type, "text_delta") == 0)
        return st->json_mode ? 0 : emit_text(k, YR_EV_TEXT, yr_tr_jslice(json_object_get(delta, "text")));
    if (strcmp(type, "thinking_delta") == 0)
        return emit_text(k, YR_EV_REASONING, yr_tr_jslice(json_object_get(delta, "thinking")));
    if (strcmp(type, "signature_delta") == 0) {
        yr_str_t sig = yr_tr_jslice(json_object_get(delta, "signature"));
        return sig.len ? emit(k, &(yr_event_t){.type = YR_EV_REASONING, .signature = sig}) : 0;
    }
    if (strcmp(type, "input_json_delta") == 0) {
        json_t *pj = json_object_get(delta, "partial_json");
        if (!json_is_string(pj) || (st->block != AB_TOOL && st->block != AB_JSON))
            return -EINVAL;
        return st->block == AB_JSON ? emit_json_content(k, st, yr_tr_jslice(pj))
                                    : emit_tool_args(k, st, yr_tr_jslice(pj));
    }
    return 0; /* citations_delta and future delta types */
}

static int on_block_stop(const sink_t *k, anth_state_t *st)
{
    /* A tool with no input streamed no fragment: "{}" keeps arguments valid JSON. */
    int rc = 0;
    if (st->block == AB_TOOL) {
        if (st->block_out == 0)
            rc = emit_tool_args(k, st, YR_STR("{}"));
        if (rc == 0)
            rc = emit(k, &(yr_event_t){.type = YR_EV_TOOL_END, .index = st->tools - 1});
    } else if (st->block == AB_JSON && st->block_out == 0) {
        rc = emit_json_content(k, st, YR_STR("{}"));
    }
    st->block = AB_NONE;
    return rc;
}

static int on_message_delta(const sink_t *k, yr_call_ctx_t *cx, anth_state_t *st, json_t *root)
{
    const char *stop =
        json_string_value(json_object_get(json_object_get(root, "delta"), "stop_reason"));
    if (stop != NULL)
        snprintf(st->stop_reason, sizeof(st->stop_reason), "%s", stop);
    /* Counts in message_delta are cumulative; input and cache counts are
     * repeated there by newer API versions (and then win). */
    read_usage_counts(st, json_object_get(root, "usage"), true);
    return emit_usage(k, cx, st);
}

static int on_error_event(const sink_t *k, yr_call_ctx_t *cx, json_t *root)
{
    json_t *e = json_object_get(root, "error");
    const char *type = str_or(json_object_get(e, "type"), "api_error");
    yr_provider_inband_error(cx, type, json_string_value(json_object_get(e, "message")),
                             yr_anthropic_error_status(type)); /* overloaded_error: 529 */
    int rc = emit(k, &(yr_event_t){.type = YR_EV_ERROR, .status = cx->error_status,
                                   .error_type = yr_str(cx->error_type),
                                   .text = yr_str(cx->error.message)});
    return rc < 0 ? rc : -ECANCELED;
}

int yr_anth_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_ev_fn fn, void *arg, bool *done)
{
    anth_state_t *st = state_of(cx);
    if (st == NULL)
        return -ENOMEM;
    json_t *root;
    int lrc = yr_json_load(ev->data.ptr, ev->data.len, 0, &root);
    if (lrc < 0 || !json_is_object(root)) {
        json_decref(root);
        return lrc < 0 ? lrc : -EINVAL;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    char evname[32];
    if (type == NULL && ev->event.len > 0 && ev->event.len < sizeof(evname)) {
        memcpy(evname, ev->event.ptr, ev->event.len); /* data without "type": trust event: */
        evname[ev->event.len] = '\0';
        type = evname;
    }
    sink_t k = {fn, arg};
    int rc = 0;
    if (type == NULL) {
        rc = -EINVAL;
    } else if (strcmp(type, "error") == 0) {
        rc = on_error_event(&k, cx, root);
    } else if (strcmp(type, "message_start") == 0) {
        rc = on_message_start(&k, cx, st, root);
    } else if (strcmp(type, "ping") == 0 || st->finished) {
        rc = 0;
    } else if (!st->started &&
               (strncmp(type, "content_block_", 14) == 0 || strncmp(type, "message_", 8) == 0)) {
        rc = -EINVAL; /* the message's events before the message itself */
    } else if (strcmp(type, "content_block_start") == 0) {
        rc = on_block_start(&k, st, root);
    } else if (strcmp(type, "content_block_delta") == 0) {
        rc = on_block_delta(&k, st, root);
    } else if (strcmp(type, "content_block_stop") == 0) {
        rc = on_block_stop(&k, st);
    } else if (strcmp(type, "message_delta") == 0) {
        rc = on_message_delta(&k, cx, st, root);
    } else if (strcmp(type, "message_stop") == 0) {
        st->finished = true;
        rc = emit_end(&k, cx, st,
                      finish_of(st->stop_reason[0] ? st->stop_reason : NULL, st->json_mode));
        if (rc == 0)
            *done = true;
    }
    /* Unknown event types are ignored: Anthropic may add new ones. */
    json_decref(root);
    return rc;
}

/* ---- errors ---------------------------------------------------------------------------------- */

void yr_anth_parse_error(yr_str_t body, yr_provider_error_t *out)
{
    *out = (yr_provider_error_t){.retry_after_ms = -1};
    json_t *root = json_loadb(body.ptr ? body.ptr : "", body.len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *t = json_string_value(json_object_get(e, "type"));
    const char *m = json_string_value(json_object_get(e, "message"));
    if (m != NULL)
        snprintf(out->message, sizeof(out->message), "%s", m);
    snprintf(out->type, sizeof(out->type), "%s", t ? t : "");
    snprintf(out->code, sizeof(out->code), "%s", t ? t : "");
    json_decref(root);
}

const yr_dialect_ops_t yr_dialect_anthropic = {
    .name = "anthropic",
    .native_client = YR_DIALECT_ANTHROPIC,
    .hold_first_event = true, /* overloaded_error often follows message_start */
    .needs_tree = true,
    .build = anth_build,
    .response = yr_anth_response,
    .event = yr_anth_event,
    .parse_error = yr_anth_parse_error,
    .pass_build = yr_anth_pass_build,
    .pass_response = yr_anth_pass_response,
    .pass_event = yr_anth_pass_event,
};
