/* The Anthropic Messages dialect: POST …/v1/messages (any path ending in
 * /messages) with x-api-key and anthropic-version, validated with the real
 * API's invalid_request_error messages; the message object; the event
 * stream (message_start, content_block_start / ping / content_block_delta /
 * content_block_stop per block, message_delta, message_stop, and a scripted
 * `event: error`); and the error shape {"type":"error","error":{type,message}}.
 *
 * Like openai.c this is a set of pure functions over the exchange: the
 * machinery in exchange.c does the I/O, scripting, pacing and faults. The
 * neutral reply (x->reply) is the same as the OpenAI dialect's, so both
 * dialects answer a prompt with the same text and token counts. */
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define THINKING_ECHO 40 /* bytes of the user text quoted in the thinking block */

/* ---- errors ------------------------------------------------------------------------ */

static void an_error_defaults(int status, sim_error_t *err)
{
    const char *type = status >= 500 ? "api_error" : "invalid_request_error";
    const char *msg;
    switch (status) {
    case 400: msg = "Invalid request."; break;
    case 401:
        type = "authentication_error";
        msg = "invalid x-api-key";
        break;
    case 402:
        type = "billing_error";
        msg = "Your credit balance is too low to access the Anthropic API.";
        break;
    case 403:
        type = "permission_error";
        msg = "Your API key does not have permission to use the specified resource.";
        break;
    case 404:
        type = "not_found_error";
        msg = "The requested resource could not be found.";
        break;
    case 413:
        type = "request_too_large";
        msg = "Request exceeds the maximum allowed number of bytes.";
        break;
    case 429:
        type = "rate_limit_error";
        msg = "Number of request tokens has exceeded your per-minute rate limit.";
        break;
    case 500: msg = "Internal server error"; break;
    case 529:
        type = "overloaded_error";
        msg = "Overloaded";
        break;
    default: msg = status >= 500 ? "Internal server error" : "Request failed."; break;
    }
    sim_error_set(err, status, type, NULL, "%s", msg);
}

/* The message a scripted stream_error of this type carries by default. */
static const char *stream_error_message(yr_str_t type)
{
    if (yr_str_eq(type, YR_STR("overloaded_error")))
        return "Overloaded";
    if (yr_str_eq(type, YR_STR("rate_limit_error")))
        return "Number of request tokens has exceeded your per-minute rate limit.";
    if (yr_str_eq(type, YR_STR("api_error")))
        return "Internal server error";
    return "An error occurred while streaming the response.";
}

static int an_render_error(const sim_error_t *err, yr_buf_t *b)
{
    int rc = yr_buf_append_str(b, YR_STR("{\"type\":\"error\",\"error\":{\"type\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->type.ptr ? err->type : YR_STR("api_error"));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"message\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->message.ptr ? err->message : YR_STR(""));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc;
}

/* ---- routing and auth ---------------------------------------------------------------- */

static bool path_ends(const yr_http_req_t *req, yr_str_t suffix)
{
    yr_str_t path = req->path;
    return path.len >= suffix.len &&
           memcmp(path.ptr + path.len - suffix.len, suffix.ptr, suffix.len) == 0;
}

/* POST /v1/messages/count_tokens (on Vertex AI: …/models/count-tokens:rawPredict):
 * validated like a message request without max_tokens; answers
 * {"input_tokens": N} (see an_render). */
static bool is_count_tokens(const yr_http_req_t *req)
{
    return path_ends(req, YR_STR("/messages/count_tokens")) ||
           path_ends(req, YR_STR("/models/count-tokens:rawPredict"));
}

static sim_route_t an_route(const yr_http_req_t *req)
{
    if (req->method == HTTP_POST && (path_ends(req, YR_STR("/messages")) ||
                                     path_ends(req, YR_STR("/messages/count_tokens"))))
        return SIM_ROUTE_CHAT;
    return SIM_ROUTE_NONE;
}

static int an_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    if (key.len == 0)
        return 0;
    yr_str_t h = yr_http_req_header(req, YR_STR("x-api-key"));
    if (h.ptr == NULL) {
        sim_error_set(err, 401, "authentication_error", NULL, "x-api-key header is required");
        return -EACCES;
    }
    if (sim_key_equal(yr_str_trim(h), key))
        return 0;
    sim_error_set(err, 401, "authentication_error", NULL, "invalid x-api-key");
    return -EACCES;
}

/* ---- request validation ------------------------------------------------------------------ */

static int invalid(sim_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int invalid(sim_error_t *err, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sim_error_set(err, 400, "invalid_request_error", NULL, "%s", msg);
    return -EINVAL;
}

static const char *type_of(const json_t *block)
{
    return json_string_value(json_object_get(block, "type"));
}

typedef struct {
    uint64_t bytes;     /* text of the whole prompt */
    size_t last_user;   /* the user message whose text the reply quotes */
    json_t *prev_tools; /* tool_use ids of the previous message (array) */
} scan_t;

static int check_text(const json_t *blk, const char *where, sim_error_t *err, scan_t *s)
{
    const json_t *t = json_object_get(blk, "text");
    if (t == NULL)
        return invalid(err, "%s.text: Field required", where);
    if (!json_is_string(t))
        return invalid(err, "%s.text: Input should be a valid string", where);
    if (json_string_length(t) == 0)
        return invalid(err, "%s: text content blocks must be non-empty", where);
    s->bytes += json_string_length(t);
    return 0;
}

static int check_image(const json_t *blk, const char *where, sim_error_t *err)
{
    const json_t *src = json_object_get(blk, "source");
    if (!json_is_object(src))
        return invalid(err, "%s.source: Field required", where);
    const char *st = type_of(src);
    if (st != NULL && strcmp(st, "base64") == 0) {
        const char *mt = json_string_value(json_object_get(src, "media_type"));
        const json_t *data = json_object_get(src, "data");
        if (mt == NULL)
            return invalid(err, "%s.source.base64.media_type: Field required", where);
        if (strcmp(mt, "image/jpeg") != 0 && strcmp(mt, "image/png") != 0 &&
            strcmp(mt, "image/gif") != 0 && strcmp(mt, "image/webp") != 0)
            return invalid(err,
                           "%s.source.base64.media_type: Input should be 'image/jpeg', "
                           "'image/png', 'image/gif' or 'image/webp'",
                           where);
        if (!json_is_string(data) || json_string_length(data) == 0)
            return invalid(err, "%s.source.base64.data: Field required", where);
        return 0;
    }
    if (st != NULL && strcmp(st, "url") == 0) {
        if (!json_is_string(json_object_get(src, "url")))
            return invalid(err, "%s.source.url.url: Field required", where);
        return 0;
    }
    return invalid(err,
                   "%s.source: Input tag '%.40s' found using 'type' does not match any of the "
                   "expected tags: 'base64', 'url'",
                   where, st ? st : "");
}

static bool in_array(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static int check_tool_result(const json_t *blk, size_t mi, const char *where, sim_error_t *err,
                             scan_t *s)
{
    const char *id = json_string_value(json_object_get(blk, "tool_use_id"));
    if (id == NULL)
        return invalid(err, "%s.tool_use_id: Field required", where);
    if (!in_array(s->prev_tools, id))
        return invalid(err,
                       "messages.%zu.content: unexpected `tool_use_id` found in `tool_result` "
                       "blocks: %.80s. Each `tool_result` block must have a corresponding "
                       "`tool_use` block in the previous message.",
                       mi, id);
    const json_t *c = json_object_get(blk, "content");
    if (json_is_string(c)) {
        s->bytes += json_string_length(c);
    } else if (json_is_array(c)) {
        size_t i;
        const json_t *inner;
        json_array_foreach(c, i, inner)
        {
            char w[96];
            snprintf(w, sizeof(w), "%s.content.%zu", where, i);
            const char *t = type_of(inner);
            int rc = t && strcmp(t, "text") == 0    ? check_text(inner, w, err, s)
                     : t && strcmp(t, "image") == 0 ? check_image(inner, w, err)
                                                    : invalid(err,
                                                              "%s.type: Input should be "
                                                              "'text' or 'image'",
                                                              w);
            if (rc < 0)
                return rc;
        }
    } else if (c != NULL) {
        return invalid(err, "%s.content: Input should be a valid string or list", where);
    }
    return 0;
}

static const char *const block_types[] = {
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
};

static int check_block(const json_t *blk, size_t mi, size_t bi, bool assistant, sim_error_t *err,
                       scan_t *s, json_t *tool_ids, size_t *texts)
{
    char where[64];
    snprintf(where, sizeof(where), "messages.%zu.content.%zu", mi, bi);
    if (!json_is_object(blk))
        return invalid(err, "%s: Input should be a valid dictionary", where);
    const char *t = type_of(blk);
    if (t == NULL)
        return invalid(err, "%s.type: Field required", where);
    bool known = false;
    for (size_t i = 0; i < sizeof(block_types) / sizeof(block_types[0]); i++)
        known = known || strcmp(t, block_types[i]) == 0;
    if (!known)
        return invalid(err,
                       "%s: Input tag '%.40s' found using 'type' does not match any of the "
                       "expected tags",
                       where, t);
    if (strcmp(t, "text") == 0) {
        (*texts)++;
        return check_text(blk, where, err, s);
    }
    if (strcmp(t, "image") == 0) {
        (*texts)++;
        return check_image(blk, where, err);
    }
    if (strcmp(t, "tool_use") == 0) {
        const char *id = json_string_value(json_object_get(blk, "id"));
        if (!assistant)
            return invalid(err, "%s: tool_use blocks may only appear in assistant messages", where);
        if (id == NULL || !json_is_string(json_object_get(blk, "name")))
            return invalid(err, "%s: tool_use blocks need a string id and name", where);
        if (!json_is_object(json_object_get(blk, "input")))
            return invalid(err, "%s.input: Input should be a valid dictionary", where);
        return json_array_append_new(tool_ids, json_string(id)) == 0 ? 0 : -ENOMEM;
    }
    if (strcmp(t, "tool_result") == 0) {
        if (assistant)
            return invalid(err, "%s: tool_result blocks may only appear in user messages", where);
        return check_tool_result(blk, mi, where, err, s);
    }
    return 0;
}

/* tool_use ids of the previous message must all be answered by tool_result
 * blocks in this one. */
static int check_answered(const json_t *content, size_t mi, const json_t *prev_tools,
                          sim_error_t *err)
{
    size_t i;
    const json_t *id;
    json_array_foreach(prev_tools, i, id)
    {
        bool found = false;
        size_t k;
        const json_t *blk;
        json_array_foreach(content, k, blk)
        {
            const char *t = type_of(blk);
            const char *ref = json_string_value(json_object_get(blk, "tool_use_id"));
            if (t && strcmp(t, "tool_result") == 0 && ref &&
                strcmp(ref, json_string_value(id)) == 0)
                found = true;
        }
        if (!found)
            return invalid(err,
                           "messages.%zu: `tool_use` ids were found without `tool_result` blocks "
                           "immediately after: %.80s. Each `tool_use` block must have a "
                           "corresponding `tool_result` block in the next message.",
                           mi - 1, json_string_value(id));
    }
    return 0;
}

/* A mid-conversation system message (newer models take instructions this
 * way): text only, after a user turn or a tool result, never first. */
static int check_system_message(const json_t *m, size_t mi, sim_error_t *err, scan_t *s)
{
    if (mi == 0)
        return invalid(err, "messages: first message must use the \"user\" role");
    if (json_array_size(s->prev_tools) > 0)
        return invalid(err,
                       "messages.%zu: a system message must follow a user turn or a tool result",
                       mi);
    const json_t *content = json_object_get(m, "content");
    if (json_is_string(content) && json_string_length(content) > 0) {
        s->bytes += json_string_length(content);
        return 0;
    }
    if (!json_is_array(content) || json_array_size(content) == 0)
        return invalid(err, "messages.%zu.content: system messages need text", mi);
    size_t bi;
    const json_t *blk;
    json_array_foreach(content, bi, blk)
    {
        const char *t = type_of(blk);
        if (t == NULL || strcmp(t, "text") != 0)
            return invalid(err, "messages.%zu.content.%zu: system messages take text blocks only",
                           mi, bi);
        char where[64];
        snprintf(where, sizeof(where), "messages.%zu.content.%zu", mi, bi);
        if (check_text(blk, where, err, s) < 0)
            return -EINVAL;
    }
    return 0;
}

static int check_message(const json_t *m, size_t mi, size_t n, sim_error_t *err, scan_t *s)
{
    if (!json_is_object(m))
        return invalid(err, "messages.%zu: Input should be a valid dictionary", mi);
    const char *role = json_string_value(json_object_get(m, "role"));
    if (role != NULL && strcmp(role, "system") == 0)
        return check_system_message(m, mi, err, s);
    if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
        return invalid(err, "messages.%zu.role: Input should be 'user', 'assistant' or 'system'",
                       mi);
    bool assistant = strcmp(role, "assistant") == 0;
    if (mi == 0 && assistant)
        return invalid(err, "messages: first message must use the \"user\" role");
    const json_t *content = json_object_get(m, "content");
    if (content == NULL)
        return invalid(err, "messages.%zu.content: Field required", mi);
    bool empty = json_is_string(content) ? json_string_length(content) == 0
                                         : json_is_array(content) && json_array_size(content) == 0;
    if (empty && !(assistant && mi + 1 == n))
        return invalid(err,
                       "messages.%zu: all messages must have non-empty content except for the "
                       "optional final assistant message",
                       mi);
    json_t *tool_ids = json_array();
    if (tool_ids == NULL)
        return -ENOMEM;
    size_t texts = 0;
    int rc = 0;
    if (json_is_string(content)) {
        s->bytes += json_string_length(content);
        texts = 1;
    } else if (json_is_array(content)) {
        size_t bi;
        const json_t *blk;
        json_array_foreach(content, bi, blk)
        {
            if ((rc = check_block(blk, mi, bi, assistant, err, s, tool_ids, &texts)) < 0)
                break;
        }
        if (rc == 0 && !assistant)
            rc = check_answered(content, mi, s->prev_tools, err);
    } else {
        rc = invalid(err, "messages.%zu.content: Input should be a valid string or list", mi);
    }
    if (rc == 0 && !assistant && json_is_string(content) && json_array_size(s->prev_tools) > 0)
        rc = check_answered(NULL, mi, s->prev_tools, err);
    if (rc == 0 && !assistant && (texts > 0 || s->last_user == SIZE_MAX))
        s->last_user = mi;
    json_decref(s->prev_tools);
    s->prev_tools = tool_ids;
    return rc;
}

/* The text parts of message mi, "\n"-joined, and its image count. */
static int user_text(sim_exchange_t *x, const json_t *m)
{
    sim_prompt_t *p = &x->prompt;
    const json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        p->last_user_text = (yr_str_t){json_string_value(content), json_string_length(content)};
        return 0;
    }
    yr_buf_t b;
    yr_buf_init(&b, SIM_MAX_BODY);
    int rc = 0;
    size_t i;
    const json_t *blk;
    json_array_foreach(content, i, blk)
    {
        const char *t = type_of(blk);
        if (t && strcmp(t, "image") == 0)
            p->images++;
        if (t == NULL || strcmp(t, "text") != 0 || rc < 0)
            continue;
        const json_t *text = json_object_get(blk, "text");
        rc = b.len ? yr_buf_append(&b, "\n", 1) : 0;
        if (rc == 0)
            rc = yr_buf_append(&b, json_string_value(text), json_string_length(text));
    }
    char *s = rc == 0 ? yr_pstrndup(x->pool, b.data ? b.data : "", b.len) : NULL;
    p->last_user_text = (yr_str_t){s, b.len};
    yr_buf_free(&b);
    return s ? 0 : -ENOMEM;
}

static int parse_messages(sim_exchange_t *x, const json_t *msgs, sim_error_t *err)
{
    if (msgs == NULL)
        return invalid(err, "messages: Field required");
    if (!json_is_array(msgs))
        return invalid(err, "messages: Input should be a valid list");
    size_t n = json_array_size(msgs);
    if (n == 0)
        return invalid(err, "messages: at least one message is required");
    scan_t s = {.last_user = SIZE_MAX, .prev_tools = json_array()};
    int rc = s.prev_tools ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_message(json_array_get(msgs, i), i, n, err, &s);
    json_decref(s.prev_tools);
    if (rc < 0)
        return rc;
    x->prompt.prompt_bytes += s.bytes;
    return user_text(x, json_array_get(msgs, s.last_user));
}

static int parse_system(sim_exchange_t *x, const json_t *sys, sim_error_t *err)
{
    if (sys == NULL || json_is_null(sys))
        return 0;
    if (json_is_string(sys)) {
        x->prompt.prompt_bytes += json_string_length(sys);
        return 0;
    }
    if (!json_is_array(sys))
        return invalid(err, "system: Input should be a valid string or list");
    scan_t s = {0};
    size_t i;
    const json_t *blk;
    json_array_foreach(sys, i, blk)
    {
        char where[32];
        snprintf(where, sizeof(where), "system.%zu", i);
        const char *t = type_of(blk);
        if (t == NULL || strcmp(t, "text") != 0)
            return invalid(err, "%s.type: Input should be 'text'", where);
        int rc = check_text(blk, where, err, &s);
        if (rc < 0)
            return rc;
    }
    x->prompt.prompt_bytes += s.bytes;
    return 0;
}

static int parse_tools(sim_exchange_t *x, const json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    const json_t *tools = json_object_get(body, "tools");
    if (tools != NULL && !json_is_array(tools))
        return invalid(err, "tools: Input should be a valid list");
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *name = json_object_get(t, "name");
        const char *type = type_of(t);
        if (!json_is_object(t) || !json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) > 128)
            return invalid(err, "tools.%zu.name: Field required (1 to 128 characters)", i);
        bool custom = type == NULL || strcmp(type, "custom") == 0;
        const json_t *schema = json_object_get(t, "input_schema");
        if (custom && !json_is_object(schema))
            return invalid(err, "tools.%zu.custom.input_schema: Field required", i);
        if (custom && !json_is_string(json_object_get(schema, "type")))
            return invalid(err, "tools.%zu.custom.input_schema.type: Field required", i);
        if (i == 0)
            p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
    }
    p->has_tools = json_array_size(tools) > 0;
    const json_t *tc = json_object_get(body, "tool_choice");
    if (tc == NULL)
        return 0;
    const char *type = type_of(tc);
    if (!json_is_object(tc) || type == NULL)
        return invalid(err, "tool_choice: Input should be a valid dictionary");
    const json_t *dp = json_object_get(tc, "disable_parallel_tool_use");
    if (dp != NULL && !json_is_boolean(dp))
        return invalid(err, "tool_choice.disable_parallel_tool_use: Input should be a valid "
                            "boolean");
    if (strcmp(type, "auto") == 0) {
        p->tool_choice = SIM_TOOLS_AUTO;
    } else if (strcmp(type, "none") == 0) {
        p->tool_choice = SIM_TOOLS_NONE;
    } else if (strcmp(type, "any") == 0) {
        p->tool_choice = SIM_TOOLS_REQUIRED;
    } else if (strcmp(type, "tool") == 0) {
        const json_t *name = json_object_get(tc, "name");
        if (!json_is_string(name))
            return invalid(err, "tool_choice.tool.name: Field required");
        p->tool_choice = SIM_TOOLS_NAMED;
        p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
    } else {
        return invalid(err,
                       "tool_choice: Input tag '%.40s' found using 'type' does not match any of "
                       "the expected tags: 'auto', 'any', 'tool', 'none'",
                       type);
    }
    return 0;
}

static int check_number(const json_t *body, const char *key, double min, double max,
                        sim_error_t *err)
{
    const json_t *v = json_object_get(body, key);
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return invalid(err, "%s: Input should be a valid number", key);
    if (json_number_value(v) < min)
        return invalid(err, "%s: Input should be greater than or equal to %g", key, min);
    if (json_number_value(v) > max)
        return invalid(err, "%s: Input should be less than or equal to %g", key, max);
    return 0;
}

static bool thinking_enabled(const json_t *body)
{
    const json_t *th = json_object_get(body, "thinking");
    return json_is_object(th) && strcmp(type_of(th) ? type_of(th) : "", "enabled") == 0;
}

static int parse_thinking(const json_t *body, uint64_t max_tokens, sim_error_t *err)
{
    const json_t *th = json_object_get(body, "thinking");
    if (th == NULL)
        return 0;
    const char *type = type_of(th);
    if (!json_is_object(th) || type == NULL ||
        (strcmp(type, "enabled") != 0 && strcmp(type, "disabled") != 0))
        return invalid(err,
                       "thinking: Input tag '%.40s' found using 'type' does not match any of "
                       "the expected tags: 'enabled', 'disabled'",
                       type ? type : "");
    if (strcmp(type, "disabled") == 0)
        return 0;
    const json_t *bt = json_object_get(th, "budget_tokens");
    if (!json_is_integer(bt))
        return invalid(err, "thinking.enabled.budget_tokens: Field required");
    if (json_integer_value(bt) < 1024)
        return invalid(err, "thinking.enabled.budget_tokens: Input should be greater than or "
                            "equal to 1024");
    if ((uint64_t)json_integer_value(bt) >= max_tokens)
        return invalid(err, "`max_tokens` must be greater than `thinking.budget_tokens`. Please "
                            "consult our documentation at "
                            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking");
    const json_t *t = json_object_get(body, "temperature");
    if (t != NULL && json_number_value(t) != 1.0)
        return invalid(err, "`temperature` may only be set to 1 when thinking is enabled. Please "
                            "consult our documentation at "
                            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking");
    const json_t *tp = json_object_get(body, "top_p");
    if (tp != NULL && json_number_value(tp) < 0.95)
        return invalid(err, "`top_p` must be greater than or equal to 0.95 or unset when thinking "
                            "is enabled.");
    if (json_object_get(body, "top_k") != NULL)
        return invalid(err, "`top_k` must be unset when thinking is enabled.");
    const char *tc = type_of(json_object_get(body, "tool_choice"));
    if (tc != NULL && (strcmp(tc, "any") == 0 || strcmp(tc, "tool") == 0))
        return invalid(err, "Thinking may not be enabled when tool_choice forces tool use.");
    return 0;
}

/* Top-level fields the Messages API knows; anything else is an error there
 * ("Extra inputs are not permitted"), which catches a gateway that leaks an
 * OpenAI field. x_sim (scripting) is the simulator's own. */
static const char *const known_fields[] = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "output_format",
    "output_config",
    "inference_geo",
    "cache_control",
    "x_sim",
};

static int check_fields(const json_t *body, sim_error_t *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(known_fields) / sizeof(known_fields[0]); i++)
            known = known || strcmp(key, known_fields[i]) == 0;
        if (!known)
            return invalid(err, "%.64s: Extra inputs are not permitted", key);
    }
    return 0;
}

static int parse_scalars(sim_prompt_t *p, const json_t *body, bool count_tokens, sim_error_t *err)
{
    const json_t *model = json_object_get(body, "model");
    if (model == NULL)
        return invalid(err, "model: Field required");
    if (!json_is_string(model))
        return invalid(err, "model: Input should be a valid string");
    p->model = (yr_str_t){json_string_value(model), json_string_length(model)};
    const json_t *mt = json_object_get(body, "max_tokens");
    if (mt == NULL && count_tokens) {
        p->max_tokens = 1;
        return 0;
    }
    if (mt == NULL)
        return invalid(err, "max_tokens: Field required");
    if (!json_is_integer(mt))
        return invalid(err, "max_tokens: Input should be a valid integer");
    if (json_integer_value(mt) < 1)
        return invalid(err, "max_tokens: Input should be greater than or equal to 1");
    p->max_tokens = (uint64_t)json_integer_value(mt);
    const json_t *stream = json_object_get(body, "stream");
    if (stream != NULL && !json_is_boolean(stream))
        return invalid(err, "stream: Input should be a valid boolean");
    p->stream = json_is_true(stream);
    int rc = check_number(body, "temperature", 0, 1, err);
    if (rc == 0)
        rc = check_number(body, "top_p", 0, 1, err);
    const json_t *tk = json_object_get(body, "top_k");
    if (rc == 0 && tk != NULL && (!json_is_integer(tk) || json_integer_value(tk) < 0))
        rc = invalid(err, "top_k: Input should be a valid integer >= 0");
    const json_t *ss = json_object_get(body, "stop_sequences");
    size_t i;
    const json_t *s;
    if (rc == 0 && ss != NULL && !json_is_array(ss))
        rc = invalid(err, "stop_sequences: Input should be a valid list");
    json_array_foreach(ss, i, s)
    {
        if (rc == 0 && !json_is_string(s))
            rc = invalid(err, "stop_sequences.%zu: Input should be a valid string", i);
    }
    const json_t *md = json_object_get(body, "metadata");
    const json_t *uid = json_object_get(md, "user_id");
    if (rc == 0 && md != NULL && !json_is_object(md))
        rc = invalid(err, "metadata: Input should be a valid dictionary");
    if (rc == 0 && uid != NULL && !json_is_null(uid) && !json_is_string(uid))
        rc = invalid(err, "metadata.user_id: Input should be a valid string");
    return rc;
}

static int an_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    if (yr_http_req_header(x->req, YR_STR("anthropic-version")).ptr == NULL)
        return invalid(err, "anthropic-version: header is required");
    return sim_anthropic_parse_body(x, body, err);
}

int sim_anthropic_parse_body(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    memset(p, 0, sizeof(*p));
    p->n = 1;
    if (!json_is_object(body))
        return invalid(err, "There was an error parsing the body of your request: it must be a "
                            "JSON object.");
    int rc = check_fields(body, err);
    if (rc == 0)
        rc = parse_scalars(p, body, is_count_tokens(x->req), err);
    if (rc == 0)
        rc = parse_system(x, json_object_get(body, "system"), err);
    if (rc == 0)
        rc = parse_messages(x, json_object_get(body, "messages"), err);
    if (rc == 0)
        rc = parse_tools(x, body, err);
    if (rc == 0)
        rc = parse_thinking(body, p->max_tokens, err);
    return rc;
}

/* ---- the reply ------------------------------------------------------------------------- */

/* msg_01 + 22 characters of the exchange's id: the same sequence every run. */
static void message_id(const sim_exchange_t *x, char out[32])
{
    memcpy(out, "msg_01", 6);
    memcpy(out + 6, x->id + 9, 22); /* x->id is "chatcmpl-" + 29 alphanumerics */
    out[28] = '\0';
}

/* Generated call ids become toolu_…; scripted ids are kept verbatim. */
static yr_str_t tool_id(const sim_exchange_t *x, size_t i, char buf[40])
{
    const sim_call_t *c = &x->reply.calls[i];
    const json_t *scripted = json_array_get(x->beh.tool_calls, i);
    if (json_object_get(scripted, "id") != NULL || c->id.len != 29 ||
        memcmp(c->id.ptr, "call_", 5) != 0)
        return c->id;
    memcpy(buf, "toolu_01", 8);
    memcpy(buf + 8, c->id.ptr + 5, 24);
    return (yr_str_t){buf, 32};
}

static yr_str_t stop_reason(const sim_reply_t *r)
{
    if (r->finish_override.ptr != NULL)
        return r->finish_override;
    switch (r->finish) {
    case SIM_FINISH_LENGTH: return YR_STR("max_tokens");
    case SIM_FINISH_TOOL_CALLS: return YR_STR("tool_use");
    case SIM_FINISH_STOP: break;
    }
    return YR_STR("end_turn");
}

/* "Thinking about: " + the first bytes of the user's text (in the pool). */
static yr_str_t thinking_text(sim_exchange_t *x)
{
    yr_str_t u = x->prompt.last_user_text;
    size_t n = sim_utf8_floor(u.ptr ? u.ptr : "", u.len, THINKING_ECHO);
    size_t len = sizeof("Thinking about: ") - 1 + n;
    char *s = yr_palloc(x->pool, len + 1);
    if (s == NULL)
        return YR_STR("Thinking.");
    memcpy(s, "Thinking about: ", sizeof("Thinking about: ") - 1);
    if (n > 0)
        memcpy(s + len - n, u.ptr, n);
    s[len] = '\0';
    return (yr_str_t){s, len};
}

/* A stand-in for the opaque signature: derived from the message id. */
static void signature(const sim_exchange_t *x, char out[65])
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const char *p = x->id; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    sim_random_alnum(h, out, 64);
}

static uint64_t output_tokens(sim_exchange_t *x)
{
    uint64_t n = x->reply.completion_tokens;
    if (thinking_enabled(x->body))
        n += sim_count_words(thinking_text(x));
    return n;
}

/* {"input_tokens",…,"output_tokens",…} merged with the scripted usage. */
static int append_usage(sim_exchange_t *x, yr_buf_t *b, uint64_t output, bool start)
{
    const sim_reply_t *r = &x->reply;
    json_t *u = json_pack("{s:I, s:i, s:i, s:I, s:s}", "input_tokens", (json_int_t)r->prompt_tokens,
                          "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0,
                          "output_tokens", (json_int_t)output, "service_tier", "standard");
    if (u == NULL)
        return -ENOMEM;
    if (r->usage_override != NULL)
        json_object_update_recursive(u, r->usage_override);
    if (start) /* message_start reports the first token only */
        json_object_set_new(u, "output_tokens", json_integer(1));
    return sim_append_usage(b, u, NULL, NULL, NULL, NULL);
}

static uint64_t final_output(sim_exchange_t *x)
{
    const json_t *ov = json_object_get(x->reply.usage_override, "output_tokens");
    return json_is_integer(ov) ? (uint64_t)json_integer_value(ov) : output_tokens(x);
}

static int append_tool_use(sim_exchange_t *x, yr_buf_t *b, size_t i, bool empty_input)
{
    char idbuf[40];
    const sim_call_t *c = &x->reply.calls[i];
    int rc = yr_buf_append_str(b, YR_STR("{\"type\":\"tool_use\",\"id\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, tool_id(x, i, idbuf));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"name\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, c->name);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"input\":"));
    if (rc == 0 && empty_input) {
        rc = yr_buf_append_str(b, YR_STR("{}"));
    } else if (rc == 0) {
        /* the arguments as a value; text that is not JSON becomes {} */
        json_t *v = json_loadb(c->arguments.ptr, c->arguments.len, JSON_DECODE_ANY, NULL);
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
        rc = yr_buf_append_str(b, s ? yr_str(s) : YR_STR("{}"));
        free(s);
        json_decref(v);
    }
    if (rc == 0)
        rc = yr_buf_append(b, "}", 1);
    return rc;
}

static int append_message_head(sim_exchange_t *x, yr_buf_t *b)
{
    char id[32];
    message_id(x, id);
    int rc = yr_buf_printf(
        b, "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", id);
    if (rc == 0)
        rc = yr_buf_append_json_str(b, x->prompt.model);
    return rc;
}

static int an_render(sim_exchange_t *x, yr_buf_t *b)
{
    const sim_reply_t *r = &x->reply;
    if (is_count_tokens(x->req))
        return yr_buf_printf(b, "{\"input_tokens\":%llu}", (unsigned long long)r->prompt_tokens);
    int rc = append_message_head(x, b);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"content\":["));
    bool comma = false;
    if (rc == 0 && thinking_enabled(x->body)) {
        char sig[65];
        signature(x, sig);
        rc = yr_buf_append_str(b, YR_STR("{\"type\":\"thinking\",\"thinking\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(b, thinking_text(x));
        if (rc == 0)
            rc = yr_buf_printf(b, ",\"signature\":\"%s\"}", sig);
        comma = true;
    }
    if (rc == 0 && r->has_text) {
        rc = yr_buf_append_str(b, comma ? YR_STR(",{\"type\":\"text\",\"text\":")
                                        : YR_STR("{\"type\":\"text\",\"text\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(b, r->text);
        if (rc == 0)
            rc = yr_buf_append(b, "}", 1);
        comma = true;
    }
    for (size_t i = 0; rc == 0 && i < r->ncalls; i++) {
        rc = comma ? yr_buf_append(b, ",", 1) : 0;
        if (rc == 0)
            rc = append_tool_use(x, b, i, false);
        comma = true;
    }
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("],\"stop_reason\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, stop_reason(r));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"stop_sequence\":null,\"usage\":"));
    if (rc == 0)
        rc = append_usage(x, b, final_output(x), false);
    if (rc == 0)
        rc = yr_buf_append(b, "}", 1);
    return rc;
}

/* ---- streaming ------------------------------------------------------------------------------ */

enum an_phase {
    AN_MESSAGE_START,
    AN_THINK_START,
    AN_THINK_DELTA,
    AN_THINK_SIGNATURE,
    AN_THINK_STOP,
    AN_TEXT_START,
    AN_TEXT_DELTA,
    AN_TEXT_STOP,
    AN_CALL_START,
    AN_CALL_DELTA,
    AN_CALL_STOP,
    AN_MESSAGE_DELTA,
    AN_MESSAGE_STOP,
};

typedef struct {
    enum an_phase phase;
    size_t index; /* content block index */
    size_t call;
    size_t round; /* rounds of text pieces done (behaviour 'repeat') */
    bool ping_due, pinged;
    sim_pieces_t pieces;
    yr_str_t thinking;
} an_stream_t;

/* "event: NAME\ndata: " */
static int event_open(yr_buf_t *b, const char *name)
{
    return yr_buf_printf(b, "event: %s\ndata: ", name);
}

static int event_close(yr_buf_t *b)
{
    return yr_buf_append_str(b, YR_STR("\n\n"));
}

static int ev_message_start(sim_exchange_t *x, yr_buf_t *b)
{
    int rc = event_open(b, "message_start");
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("{\"type\":\"message_start\",\"message\":"));
    if (rc == 0)
        rc = append_message_head(x, b);
    if (rc == 0)
        rc = yr_buf_append_str(
            b, YR_STR(",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":"));
    if (rc == 0)
        rc = append_usage(x, b, 1, true);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc == 0 ? event_close(b) : rc;
}

/* content_block_start with the block's JSON in block. */
static int ev_block_start(an_stream_t *st, yr_buf_t *b, yr_str_t block)
{
    int rc = event_open(b, "content_block_start");
    if (rc == 0)
        rc = yr_buf_printf(
            b, "{\"type\":\"content_block_start\",\"index\":%zu,\"content_block\":", st->index);
    if (rc == 0)
        rc = yr_buf_append_str(b, block);
    if (rc == 0)
        rc = yr_buf_append(b, "}", 1);
    if (!st->pinged)
        st->ping_due = st->pinged = true; /* the API pings after the first block opens */
    return rc == 0 ? event_close(b) : rc;
}

/* content_block_delta {"type":dtype,field:value} */
static int ev_delta(an_stream_t *st, yr_buf_t *b, const char *dtype, const char *field,
                    yr_str_t value)
{
    int rc = event_open(b, "content_block_delta");
    if (rc == 0)
        rc = yr_buf_printf(b,
                           "{\"type\":\"content_block_delta\",\"index\":%zu,\"delta\":{\"type\":"
                           "\"%s\",\"%s\":",
                           st->index, dtype, field);
    if (rc == 0)
        rc = yr_buf_append_json_str(b, value);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc == 0 ? event_close(b) : rc;
}

static int ev_block_stop(an_stream_t *st, yr_buf_t *b)
{
    int rc = event_open(b, "content_block_stop");
    if (rc == 0)
        rc = yr_buf_printf(b, "{\"type\":\"content_block_stop\",\"index\":%zu}", st->index++);
    return rc == 0 ? event_close(b) : rc;
}

static int ev_message_delta(sim_exchange_t *x, yr_buf_t *b)
{
    int rc = event_open(b, "message_delta");
    if (rc == 0)
        rc =
            yr_buf_append_str(b, YR_STR("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, stop_reason(&x->reply));
    if (rc == 0)
        rc = yr_buf_printf(b, ",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%llu}}",
                           (unsigned long long)final_output(x));
    return rc == 0 ? event_close(b) : rc;
}

static int ev_error(sim_exchange_t *x, yr_buf_t *b)
{
    const sim_behaviour_t *beh = &x->beh;
    int rc = event_open(b, "error");
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("{\"type\":\"error\",\"error\":{\"type\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, beh->stream_error);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"message\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, beh->error_message.ptr
                                           ? beh->error_message
                                           : yr_str(stream_error_message(beh->stream_error)));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc == 0 ? event_close(b) : rc;
}

static int block_json(yr_buf_t *tmp, sim_exchange_t *x, an_stream_t *st)
{
    yr_buf_reset(tmp);
    return append_tool_use(x, tmp, st->call, true);
}

/* The phase after the text (or after the thinking block when there is no text). */
static enum an_phase after_text(const sim_reply_t *r)
{
    return r->ncalls > 0 ? AN_CALL_START : AN_MESSAGE_DELTA;
}

static int an_stream_next(sim_exchange_t *x, yr_buf_t *b)
{
    an_stream_t *st = x->dstate;
    const sim_reply_t *r = &x->reply;
    const sim_behaviour_t *beh = &x->beh;
    yr_str_t piece;
    int rc;
    if (beh->stream_error.len > 0 &&
        x->events >= (uint64_t)(beh->stream_error_after >= 0 ? beh->stream_error_after : 1))
        return ev_error(x, b) < 0 ? -ENOMEM : SIM_EVENT_LAST;
    if (st->ping_due) {
        st->ping_due = false;
        rc = yr_buf_append_str(b, YR_STR("event: ping\ndata: {\"type\": \"ping\"}\n\n"));
        return rc < 0 ? -ENOMEM : SIM_EVENT;
    }
    for (;;) {
        switch (st->phase) {
        case AN_MESSAGE_START:
            st->phase = thinking_enabled(x->body) ? AN_THINK_START
                        : r->has_text             ? AN_TEXT_START
                                                  : after_text(r);
            return ev_message_start(x, b) < 0 ? -ENOMEM : SIM_EVENT;
        case AN_THINK_START:
            st->thinking = thinking_text(x);
            sim_pieces_init(&st->pieces, st->thinking, 0);
            st->phase = AN_THINK_DELTA;
            rc = ev_block_start(st, b,
                                YR_STR("{\"type\":\"thinking\",\"thinking\":\"\","
                                       "\"signature\":\"\"}"));
            return rc < 0 ? -ENOMEM : SIM_EVENT;
        case AN_THINK_DELTA:
            if (sim_pieces_next(&st->pieces, &piece))
                return ev_delta(st, b, "thinking_delta", "thinking", piece) < 0 ? -ENOMEM
                                                                                : SIM_EVENT;
            st->phase = AN_THINK_SIGNATURE;
            break;
        case AN_THINK_SIGNATURE: {
            char sig[65];
            signature(x, sig);
            st->phase = AN_THINK_STOP;
            rc = ev_delta(st, b, "signature_delta", "signature", yr_str(sig));
            return rc < 0 ? -ENOMEM : SIM_EVENT;
        }
        case AN_THINK_STOP:
            st->phase = r->has_text ? AN_TEXT_START : after_text(r);
            return ev_block_stop(st, b) < 0 ? -ENOMEM : SIM_EVENT;
        case AN_TEXT_START:
            sim_pieces_init(&st->pieces, r->text, r->chunks);
            st->phase = AN_TEXT_DELTA;
            rc = ev_block_start(st, b, YR_STR("{\"type\":\"text\",\"text\":\"\"}"));
            return rc < 0 ? -ENOMEM : SIM_EVENT;
        case AN_TEXT_DELTA:
            if (sim_pieces_next(&st->pieces, &piece))
                return ev_delta(st, b, "text_delta", "text", piece) < 0 ? -ENOMEM : SIM_EVENT;
            if (++st->round < r->repeat) {
                sim_pieces_init(&st->pieces, r->text, r->chunks);
                break;
            }
            st->phase = AN_TEXT_STOP;
            break;
        case AN_TEXT_STOP:
            st->phase = after_text(r);
            return ev_block_stop(st, b) < 0 ? -ENOMEM : SIM_EVENT;
        case AN_CALL_START: {
            yr_buf_t tmp;
            yr_buf_init(&tmp, SIM_MAX_RESPONSE);
            rc = block_json(&tmp, x, st);
            if (rc == 0)
                rc = ev_block_start(st, b, (yr_str_t){tmp.data, tmp.len});
            yr_buf_free(&tmp);
            const sim_call_t *c = &r->calls[st->call];
            sim_pieces_init(&st->pieces, c->arguments, sim_args_chunks(c->arguments));
            st->phase = AN_CALL_DELTA;
            return rc < 0 ? -ENOMEM : SIM_EVENT;
        }
        case AN_CALL_DELTA:
            if (sim_pieces_next(&st->pieces, &piece))
                return ev_delta(st, b, "input_json_delta", "partial_json", piece) < 0 ? -ENOMEM
                                                                                      : SIM_EVENT;
            st->phase = AN_CALL_STOP;
            break;
        case AN_CALL_STOP:
            st->phase = ++st->call < r->ncalls ? AN_CALL_START : AN_MESSAGE_DELTA;
            return ev_block_stop(st, b) < 0 ? -ENOMEM : SIM_EVENT;
        case AN_MESSAGE_DELTA:
            st->phase = AN_MESSAGE_STOP;
            return ev_message_delta(x, b) < 0 ? -ENOMEM : SIM_EVENT;
        case AN_MESSAGE_STOP:
            rc = yr_buf_append_str(b, YR_STR("event: message_stop\ndata: "
                                             "{\"type\":\"message_stop\"}\n\n"));
            return rc < 0 ? -ENOMEM : SIM_EVENT_LAST;
        }
    }
}

static size_t an_stream_events(const sim_exchange_t *x)
{
    const sim_reply_t *r = &x->reply;
    size_t n = 3; /* message_start, message_delta, message_stop */
    size_t blocks = 0;
    if (thinking_enabled(x->body)) {
        yr_str_t u = x->prompt.last_user_text;
        size_t echo = sim_utf8_floor(u.ptr ? u.ptr : "", u.len, THINKING_ECHO);
        /* "Thinking about: " is two words, plus the quoted ones */
        size_t words = 2 + sim_count_words((yr_str_t){u.ptr, echo});
        n += 3 + words; /* start, deltas, signature, stop */
        blocks++;
    }
    if (r->has_text) {
        n += 2 + sim_pieces_count(r->text, r->chunks) * r->repeat;
        blocks++;
    }
    for (size_t i = 0; i < r->ncalls; i++) {
        n += 2 + sim_pieces_count(r->calls[i].arguments, sim_args_chunks(r->calls[i].arguments));
        blocks++;
    }
    return n + (blocks > 0); /* the ping */
}

const sim_dialect_t sim_dialect_anthropic = {
    .name = "anthropic",
    .route = an_route,
    .check_auth = an_check_auth,
    .parse = an_parse,
    .error_defaults = an_error_defaults,
    .render_error = an_render_error,
    .render = an_render,
    .stream_state_size = sizeof(an_stream_t),
    .stream_next = an_stream_next,
    .stream_events = an_stream_events,
    .stream_content_type = YR_STR("text/event-stream; charset=utf-8"),
    .malformed_event = YR_STR("event: content_block_delta\ndata: {not json\n\n"),
    .render_models = NULL, /* GET …/models is answered by the OpenAI dialect */
};
