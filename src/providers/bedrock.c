/* Bedrock Converse requests from OpenAI chat requests (bedrock.h).
 *
 * The same rule as anthropic.c and gemini.c, with their shared pieces
 * (translate.c): translate what Converse has a faithful equivalent for,
 * drop what cannot change the answer, refuse the rest with a 400 naming the
 * parameter. Converse's own rules shape the rest:
 *   - messages alternate user / assistant: same-role turns merge (tool
 *     answers and the user message after them share one user turn);
 *   - a blank text block is refused by Bedrock: never sent;
 *   - toolUse.input is always an object ({} for a call without arguments);
 *   - toolChoice has no "none": the tools are left out instead, except when
 *     the history holds toolUse/toolResult blocks, which Bedrock accepts
 *     only with a toolConfig (then the tools go up without a toolChoice,
 *     or, when the client sent none, a spec per function the history
 *     names);
 *   - images go as bytes (base64 in JSON): the gateway fetches remote URLs
 *     first, behind its SSRF guard (the dialect's inline_images).
 *
 * Memory: every json_t built here is released before a function returns;
 * the path lives in cx->pool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/bedrock.h"
#include "providers/translate.h"

#define BR_DEFAULT_MAX_TOKENS 4096
#define BR_MAX_MEDIA_TYPE 32

static const char *vendor(const yr_call_ctx_t *cx)
{
    return yr_tr_vendor(cx, "bedrock");
}

static bool present(const json_t *v)
{
    return v != NULL && !json_is_null(v);
}

/* ---- model ids and paths -------------------------------------------------------------------- */

static bool unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

const char *yr_bedrock_path(yr_pool_t *pool, const char *model, bool stream)
{
    size_t mlen = strlen(model), n = sizeof("/model//converse-stream") + 3 * mlen;
    char *p = yr_palloc(pool, n);
    if (p == NULL)
        return NULL;
    size_t off = (size_t)snprintf(p, n, "/model/");
    for (size_t i = 0; i < mlen; i++) {
        if (unreserved(model[i]))
            p[off++] = model[i];
        else
            off += (size_t)snprintf(p + off, n - off, "%%%02X", (unsigned char)model[i]);
    }
    snprintf(p + off, n - off, "%s", stream ? "/converse-stream" : "/converse");
    return p;
}

bool yr_bedrock_is_claude(const char *model)
{
    return model != NULL &&
           (strstr(model, "anthropic.") != NULL || strstr(model, "claude") != NULL);
}

static bool is_nova(const char *model)
{
    return model != NULL && strstr(model, "amazon.nova") != NULL;
}

/* ---- content blocks ------------------------------------------------------------------------- */

typedef struct {
    yr_call_ctx_t *cx;
    const json_t *msgs;
    json_t *system;   /* SystemContentBlock[] */
    json_t *messages; /* Message[] */
    json_t *cur;      /* content of the last message */
    const char *cur_role;
    bool tool_blocks; /* a toolUse or toolResult went into the history */
} conv_t;

/* Appends blocks (consumed) as a turn of role, merged into the last turn
 * when it has the same role; an empty list adds nothing. */
static int push_blocks(conv_t *c, const char *role, json_t *blocks)
{
    return yr_tr_push_turn(c->messages, &c->cur, &c->cur_role, role, "content", blocks);
}

/* Only white space (newlines included): what Bedrock calls blank. */
static bool blank(yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!strchr(" \t\r\n\f\v", s.ptr[i]) || s.ptr[i] == '\0')
            return false;
    return true;
}

static int text_block(json_t *blocks, yr_str_t s)
{
    if (blank(s))
        return 0; /* Bedrock refuses a blank text block; it would say nothing */
    return yr_tr_append_new(blocks, json_pack("{s:s%}", "text", s.ptr, s.len));
}

static const char *const br_image_types[] = {"image/png", "image/jpeg", "image/gif", "image/webp",
                                             NULL};

/* image_url (a data: URL by now) -> {"image":{"format","source":{"bytes"}}}. */
static int image_block(yr_call_ctx_t *cx, const json_t *part, size_t mi, size_t pi, json_t *blocks)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu].image_url.url", mi, pi);
    json_t *iu = json_object_get(part, "image_url");
    json_t *urlv = json_is_object(iu) ? json_object_get(iu, "url") : iu;
    if (!json_is_string(urlv))
        return yr_tr_reject(cx, param, "%s must be a string", param);
    yr_str_t url = yr_tr_jslice(urlv);
    if (!yr_tr_has_prefix_ci(url.ptr, url.len, "data:"))
        return yr_tr_reject(cx, param,
                            "%s must be a data: URL for vendor '%s' (remote images are fetched "
                            "by the gateway first; this one was not)",
                            param, vendor(cx));
    char media[BR_MAX_MEDIA_TYPE];
    yr_str_t data;
    int rc = yr_tr_data_url(cx, url, param, br_image_types,
                            "image/png, image/jpeg, image/gif and image/webp", media, sizeof(media),
                            &data);
    if (rc < 0)
        return rc;
    return yr_tr_append_new(blocks, json_pack("{s:{s:s, s:{s:s%}}}", "image", "format", media + 6,
                                              "source", "bytes", data.ptr, data.len));
}

/* A part's cache_control (Anthropic's prompt caching, as clients write it
 * on OpenAI parts) -> a cachePoint after the block. */
static int cache_point(const json_t *part, json_t *blocks)
{
    if (!json_is_object(json_object_get(part, "cache_control")) || json_array_size(blocks) == 0)
        return 0;
    return yr_tr_append_new(blocks, json_pack("{s:{s:s}}", "cachePoint", "type", "default"));
}

/* A string or an array of parts -> a new array of blocks. images: the role
 * may carry images (user, tool). */
static int convert_content(conv_t *c, const json_t *content, size_t mi, bool images, json_t **out)
{
    json_t *blocks = json_array();
    if (blocks == NULL)
        return -ENOMEM;
    int rc = 0;
    char param[96];
    if (json_is_string(content)) {
        rc = text_block(blocks, yr_tr_jslice(content));
    } else if (json_is_array(content)) {
        size_t pi;
        json_t *part;
        json_array_foreach(content, pi, part)
        {
            snprintf(param, sizeof(param), "messages[%zu].content[%zu]", mi, pi);
            const char *type = json_string_value(json_object_get(part, "type"));
            if (type == NULL) {
                rc = yr_tr_reject(c->cx, param, "%s.type must be a string", param);
            } else if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
                json_t *t = json_object_get(part, type);
                rc = json_is_string(t)
                         ? text_block(blocks, yr_tr_jslice(t))
                         : yr_tr_reject(c->cx, param, "%s.%s must be a string", param, type);
            } else if (strcmp(type, "image_url") == 0 && images) {
                rc = image_block(c->cx, part, mi, pi, blocks);
            } else {
                rc = yr_tr_reject(c->cx, param,
                                  "content parts of type '%.40s' are not supported here by "
                                  "vendor '%s'",
                                  type, vendor(c->cx));
            }
            if (rc == 0)
                rc = cache_point(part, blocks);
            if (rc < 0)
                break;
        }
    } else if (present(content)) {
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

/* ---- messages ------------------------------------------------------------------------------- */

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
        return yr_tr_reject(c->cx, param,
                            "%s is empty; vendor '%s' does not accept empty user messages", param,
                            vendor(c->cx));
    }
    return push_blocks(c, "user", blocks);
}

/* The thinking a client kept for an assistant turn, in the form LiteLLM
 * and others use (thinking_blocks: {type thinking, thinking, signature} or
 * {type redacted_thinking, data}) -> reasoningContent blocks, first in the
 * turn as Bedrock wants them. */
static int convert_thinking(const json_t *msg, json_t *blocks)
{
    size_t i;
    json_t *tb;
    json_array_foreach(json_object_get(msg, "thinking_blocks"), i, tb)
    {
        const char *type = json_string_value(json_object_get(tb, "type"));
        yr_str_t text = yr_tr_jslice(json_object_get(tb, "thinking"));
        yr_str_t sig = yr_tr_jslice(json_object_get(tb, "signature"));
        yr_str_t data = yr_tr_jslice(json_object_get(tb, "data"));
        json_t *b = NULL;
        if (type != NULL && strcmp(type, "thinking") == 0 && sig.len > 0)
            b = json_pack("{s:{s:{s:s%, s:s%}}}", "reasoningContent", "reasoningText", "text",
                          text.ptr ? text.ptr : "", text.len, "signature", sig.ptr, sig.len);
        else if (type != NULL && strcmp(type, "redacted_thinking") == 0 && data.len > 0)
            b = json_pack("{s:{s:s%}}", "reasoningContent", "redactedContent", data.ptr, data.len);
        else
            continue; /* unsigned thinking cannot be replayed: Bedrock would refuse it */
        if (yr_tr_append_new(blocks, b) < 0)
            return -ENOMEM;
    }
    return 0;
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
    json_t *input = NULL; /* "" and null become {}: Bedrock needs an object */
    int rc = yr_tr_parse_arguments(cx, json_object_get(fn, "arguments"), aparam, &input);
    if (rc < 0)
        return rc;
    json_t *use = json_pack("{s:O, s:O, s:o}", "toolUseId", id, "name", name, "input", input);
    c->tool_blocks = true;
    return yr_tr_append_new(blocks, json_pack("{s:o}", "toolUse", use));
}

static int convert_assistant(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *blocks = json_array(), *text = NULL;
    int rc = blocks ? convert_thinking(msg, blocks) : -ENOMEM;
    if (rc == 0)
        rc = convert_content(c, json_object_get(msg, "content"), mi, false, &text);
    if (rc == 0) {
        rc = json_array_extend(blocks, text) == 0 ? 0 : -ENOMEM;
        json_decref(text);
    }
    json_t *calls = json_object_get(msg, "tool_calls");
    if (rc == 0 && present(calls) && !json_is_array(calls)) {
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].tool_calls", mi);
        rc = yr_tr_reject(c->cx, param, "%s must be an array", param);
    }
    size_t k;
    json_t *tc;
    json_array_foreach(calls, k, tc)
    {
        if (rc == 0)
            rc = convert_tool_call(c, tc, mi, k, blocks);
    }
    if (rc < 0) {
        json_decref(blocks);
        return rc;
    }
    return push_blocks(c, "assistant", blocks); /* an empty assistant turn is dropped */
}

/* role "tool" -> a toolResult block in a user turn. Its content: the text
 * (blank text becomes no block: an empty content list), or the parts (text
 * and images). status "error" when the message says is_error (LiteLLM's
 * and the Anthropic form), else left out (Bedrock's default is success). */
static int convert_tool_result(conv_t *c, const json_t *msg, size_t mi)
{
    yr_call_ctx_t *cx = c->cx;
    json_t *id = json_object_get(msg, "tool_call_id");
    if (!json_is_string(id) || json_string_length(id) == 0) {
        char param[64];
        snprintf(param, sizeof(param), "messages[%zu].tool_call_id", mi);
        return yr_tr_reject(cx, param, "%s must be a non-empty string", param);
    }
    json_t *content = NULL;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, true, &content);
    if (rc < 0)
        return rc;
    json_t *tr = json_pack("{s:O, s:o}", "toolUseId", id, "content", content);
    if (tr != NULL && json_is_true(json_object_get(msg, "is_error")) &&
        yr_tr_set_new(tr, "status", json_string("error")) < 0) {
        json_decref(tr);
        return -ENOMEM;
    }
    json_t *blocks = json_array();
    rc = tr && blocks ? yr_tr_append_new(blocks, json_pack("{s:o}", "toolResult", tr)) : -ENOMEM;
    if (rc < 0 && blocks == NULL)
        json_decref(tr);
    if (rc < 0) {
        json_decref(blocks);
        return rc;
    }
    c->tool_blocks = true;
    return push_blocks(c, "user", blocks);
}

static int convert_messages(conv_t *c, json_t *req)
{
    yr_call_ctx_t *cx = c->cx;
    int rc = c->system && c->messages ? 0 : -ENOMEM;
    size_t i;
    json_t *m;
    json_array_foreach(c->msgs, i, m)
    {
        if (rc < 0)
            break;
        const char *role = json_string_value(json_object_get(m, "role"));
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (role == NULL)
            rc = yr_tr_reject(cx, param, "%s must be a string", param);
        else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
            rc = convert_system(c, m, i);
        else if (strcmp(role, "user") == 0)
            rc = convert_user(c, m, i);
        else if (strcmp(role, "assistant") == 0)
            rc = convert_assistant(c, m, i);
        else if (strcmp(role, "tool") == 0)
            rc = convert_tool_result(c, m, i);
        else
            rc = yr_tr_reject(cx, param,
                              "%s '%.40s' is not supported by vendor '%s'; use 'tool' messages "
                              "and 'tools' instead of the legacy function calling",
                              param, role, vendor(cx));
    }
    if (rc == 0 && json_array_size(c->messages) == 0)
        rc = yr_tr_reject(cx, "messages",
                          "'messages' needs at least one user or assistant message for vendor "
                          "'%s' (system messages alone are not a conversation)",
                          vendor(cx));
    if (rc == 0 && json_array_size(c->system) > 0)
        rc = json_object_set(req, "system", c->system) == 0 ? 0 : -ENOMEM;
    if (rc == 0)
        rc = json_object_set(req, "messages", c->messages) == 0 ? 0 : -ENOMEM;
    return rc;
}

/* ---- tools ---------------------------------------------------------------------------------- */

static int tool_spec(json_t *specs, const json_t *name, const json_t *desc, const json_t *params)
{
    json_t *schema = yr_tr_object_schema(params);
    json_t *spec =
        schema ? json_pack("{s:O, s:{s:o}}", "name", name, "inputSchema", "json", schema) : NULL;
    if (spec != NULL && json_is_string(desc) && json_string_length(desc) > 0 &&
        json_object_set(spec, "description", (json_t *)desc) < 0) {
        json_decref(spec);
        return -ENOMEM;
    }
    return yr_tr_append_new(specs, spec ? json_pack("{s:o}", "toolSpec", spec) : NULL);
}

static int convert_tools(yr_call_ctx_t *cx, const json_t *tools, json_t *specs)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char param[48];
        snprintf(param, sizeof(param), "tools[%zu]", i);
        json_t *fn = json_object_get(t, "function");
        json_t *type = json_object_get(t, "type");
        json_t *name = json_object_get(fn, "name");
        if (!json_is_object(t) || (type != NULL && !yr_tr_str_is(type, "function")))
            return yr_tr_reject(cx, param,
                                "%s: only tools of type 'function' are supported by vendor '%s'",
                                param, vendor(cx));
        if (!json_is_object(fn) || !json_is_string(name) || json_string_length(name) == 0)
            return yr_tr_reject(cx, param, "%s.function.name must be a non-empty string", param);
        int rc = tool_spec(specs, name, json_object_get(fn, "description"),
                           json_object_get(fn, "parameters"));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The history has tool blocks but the client sent no tools (the last step
 * of a loop often drops them): a spec per function the history names, so
 * that Bedrock accepts the history. */
static int history_specs(const conv_t *c, json_t *specs)
{
    size_t i, k;
    json_t *m, *tc;
    json_array_foreach(c->msgs, i, m)
    {
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc)
        {
            json_t *name = json_object_get(json_object_get(tc, "function"), "name");
            bool seen = false;
            size_t j;
            json_t *s;
            json_array_foreach(specs, j, s)
            {
                seen = seen ||
                       json_equal(json_object_get(json_object_get(s, "toolSpec"), "name"), name);
            }
            if (json_is_string(name) && !seen) {
                int rc = tool_spec(specs, name, NULL, NULL);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* tool_choice -> toolChoice ({auto}, {any}, {tool:{name}}); NULL for none
 * (and when absent: Bedrock's default is auto). */
static int tool_choice(yr_call_ctx_t *cx, const json_t *root, int64_t budget, bool *none,
                       json_t **out)
{
    json_t *tc = json_object_get(root, "tool_choice");
    *out = NULL;
    *none = false;
    if (!present(tc) || yr_tr_str_is(tc, "auto"))
        return 0;
    if (yr_tr_str_is(tc, "none")) {
        *none = true;
        return 0;
    }
    json_t *name = NULL;
    if (json_is_object(tc)) {
        name = json_object_get(json_object_get(tc, "function"), "name");
        if (!json_is_string(name))
            return yr_tr_reject(cx, "tool_choice", "'tool_choice.function.name' must be a string");
    } else if (!yr_tr_str_is(tc, "required")) {
        return yr_tr_reject(cx, "tool_choice",
                            "'tool_choice' must be none, auto, required or a "
                            "{\"type\":\"function\",...} object");
    }
    if (budget > 0)
        return yr_tr_reject(cx, "tool_choice",
                            "a forced 'tool_choice' cannot be combined with 'reasoning_effort' "
                            "for vendor '%s' (extended thinking does not allow forced tool use)",
                            vendor(cx));
    *out = name ? json_pack("{s:{s:O}}", "tool", "name", name) : json_pack("{s:{}}", "any");
    return *out ? 0 : -ENOMEM;
}

static int put_tools(conv_t *c, const json_t *root, int64_t budget, json_t *req)
{
    yr_call_ctx_t *cx = c->cx;
    json_t *tools = json_object_get(root, "tools");
    if (present(tools) && !json_is_array(tools))
        return yr_tr_reject(cx, "tools", "'tools' must be an array");
    bool none;
    json_t *choice = NULL;
    int rc = 0;
    if (json_array_size(tools) > 0) {
        rc = tool_choice(cx, root, budget, &none, &choice);
    } else {
        json_t *tc = json_object_get(root, "tool_choice");
        none = true;
        if (present(tc) && !yr_tr_str_is(tc, "none") && !yr_tr_str_is(tc, "auto"))
            rc = yr_tr_reject(cx, "tool_choice", "'tool_choice' requires 'tools'");
    }
    if (rc < 0 || (none && !c->tool_blocks))
        return rc; /* "none": no tools at all, Converse has no such choice */
    json_t *specs = json_array();
    rc = specs ? convert_tools(cx, tools, specs) : -ENOMEM;
    if (rc == 0 && json_array_size(specs) == 0)
        rc = history_specs(c, specs);
    json_t *tcfg = rc == 0 ? json_pack("{s:O}", "tools", specs) : NULL;
    json_decref(specs);
    if (rc == 0 && tcfg == NULL)
        rc = -ENOMEM;
    if (rc == 0 && choice != NULL) {
        rc = yr_tr_set_new(tcfg, "toolChoice", choice);
        choice = NULL;
    }
    json_decref(choice);
    if (rc == 0)
        return yr_tr_set_new(req, "toolConfig", tcfg);
    json_decref(tcfg);
    return rc;
}

/* ---- parameters ----------------------------------------------------------------------------- */

static int check_unsupported(yr_call_ctx_t *cx, const json_t *root)
{
    int rc = yr_tr_check_unsupported(cx, root, false);
    if (rc < 0)
        return rc;
    json_t *rf = json_object_get(root, "response_format");
    const char *t = json_string_value(json_object_get(rf, "type"));
    if (present(rf) && (t == NULL || strcmp(t, "text") != 0))
        return yr_tr_reject(cx, "response_format",
                            "'response_format' %s is not supported by vendor '%s' (Converse has "
                            "no JSON mode; describe the shape in a tool instead)",
                            t ? t : "", vendor(cx));
    return 0;
}

/* reasoning_effort -> additionalModelRequestFields: Claude's thinking with
 * a token budget (translate.c's table), Nova's reasoningConfig with the
 * effort itself; other models take no such field (dropped). */
static int put_reasoning(yr_call_ctx_t *cx, const json_t *root, int64_t budget, json_t *req)
{
    const char *model = cx->route->model;
    json_t *extra = NULL;
    if (yr_bedrock_is_claude(model) && budget > 0) {
        extra = json_pack("{s:{s:s, s:I}}", "thinking", "type", "enabled", "budget_tokens",
                          (json_int_t)budget);
    } else if (is_nova(model)) {
        const char *e = json_string_value(json_object_get(root, "reasoning_effort"));
        if (e != NULL &&
            (strcmp(e, "low") == 0 || strcmp(e, "medium") == 0 || strcmp(e, "high") == 0))
            extra = json_pack("{s:{s:s, s:s}}", "reasoningConfig", "type", "enabled",
                              "maxReasoningEffort", e);
        else
            return 0;
    } else {
        return 0;
    }
    return yr_tr_set_new(req, "additionalModelRequestFields", extra);
}

static int put_inference(yr_call_ctx_t *cx, const json_t *root, int64_t budget, json_t *req)
{
    int64_t max;
    const json_t *t, *tp;
    json_t *stop = NULL;
    int rc = yr_tr_max_tokens(cx, root, &max);
    if (rc == 0)
        rc = yr_tr_claude_sampling(cx, root, budget, &t, &tp);
    if (rc == 0)
        rc = yr_tr_stop(cx, root, &stop);
    if (rc < 0)
        return rc;
    if (budget > 0) {
        /* Claude wants maxTokens > budget_tokens; OpenAI's limit covers the
         * reasoning too, so a limit at or under the budget adds up. */
        const yr_provider_conf_t *p = cx->route->provider;
        if (max == 0)
            max = p && p->default_max_tokens ? p->default_max_tokens : BR_DEFAULT_MAX_TOKENS;
        if (max <= budget)
            max += budget;
    }
    json_t *ic = json_object();
    rc = ic ? 0 : -ENOMEM;
    if (rc == 0 && max > 0)
        rc = yr_tr_set_new(ic, "maxTokens", json_integer(max));
    if (rc == 0 && t != NULL)
        rc = json_object_set(ic, "temperature", (json_t *)t) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && tp != NULL)
        rc = json_object_set(ic, "topP", (json_t *)tp) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && stop != NULL) {
        rc = yr_tr_set_new(ic, "stopSequences", stop);
        stop = NULL;
    }
    json_decref(stop);
    if (rc == 0 && json_object_size(ic) > 0)
        return yr_tr_set_new(req, "inferenceConfig", ic);
    json_decref(ic);
    return rc;
}

/* ---- build ---------------------------------------------------------------------------------- */

int yr_bedrock_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                     const char **path, const char *const **extra)
{
    (void)raw; /* the parsed request (cx->chat->root) is what gets translated */
    const json_t *root = cx->chat->root;
    if (yr_bedrock_state(cx) == NULL)
        return -ENOMEM;
    json_t *req = json_object();
    conv_t c = {.cx = cx,
                .msgs = json_object_get(root, "messages"),
                .system = json_array(),
                .messages = json_array()};
    int64_t budget = 0;
    int rc = req ? check_unsupported(cx, root) : -ENOMEM;
    if (rc == 0 && yr_bedrock_is_claude(cx->route->model))
        rc = yr_tr_thinking_budget(cx, root, &budget);
    if (rc == 0)
        rc = convert_messages(&c, req);
    if (rc == 0)
        rc = put_tools(&c, root, budget, req);
    if (rc == 0)
        rc = put_inference(cx, root, budget, req);
    if (rc == 0)
        rc = put_reasoning(cx, root, budget, req);
    if (rc == 0)
        rc = yr_tr_dump(req, body_buf);
    json_decref(c.system);
    json_decref(c.messages);
    json_decref(req);
    if (rc < 0)
        return rc;
    out->body = body_buf->data;
    out->body_len = body_buf->len;
    *path = yr_bedrock_path(cx->pool, cx->route->model, cx->chat->stream);
    *extra = NULL;
    return *path ? 0 : -ENOMEM;
}
