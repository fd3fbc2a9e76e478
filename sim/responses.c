/* The OpenAI Responses dialect (POST <anything>/responses): request
 * validation with OpenAI's messages, the response object, and the typed
 * SSE event sequence (response.created, response.in_progress, per item
 * output_item.added / content_part.added / *.delta / *.done /
 * output_item.done, then response.completed or response.incomplete), every
 * event with a sequence_number. Reasoning items (with encrypted_content
 * when include asks for it) when the request sets reasoning.effort.
 * Stateless: previous_response_id is refused as unknown, so a gateway that
 * must inline a conversation is caught. Errors and faults are OpenAI's
 * (openai.c's shape, the machinery's scripting). docs/sim.md. */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define ENC_PREFIX "enc_sim_"
#define REASONING_TOKENS 8

static bool has_suffix(yr_str_t s, yr_str_t suffix)
{
    return s.len >= suffix.len && memcmp(s.ptr + s.len - suffix.len, suffix.ptr, suffix.len) == 0;
}

static sim_route_t rs_route(const yr_http_req_t *req)
{
    if (req->method == HTTP_POST && has_suffix(req->path, YR_STR("/responses")))
        return SIM_ROUTE_CHAT;
    return SIM_ROUTE_NONE;
}

static const char *str_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static int with_param(sim_error_t *err, const char *param)
{
    if (param != NULL)
        sim_error_param(err, "%s", param);
    return -EINVAL;
}

/* A 400 in OpenAI's shape (sim_error_set checks the format). */
#define bad(err, param, code, ...)                                                                 \
    (sim_error_set((err), 400, "invalid_request_error", (code), __VA_ARGS__),                      \
     with_param((err), (param)))

/* The text of a message's content (a string, or input_text/output_text
 * parts), appended to acc ("\n"-joined); its bytes counted. */
static int content_text(const json_t *content, const char *where, yr_buf_t *acc, uint64_t *bytes,
                        size_t *images, sim_error_t *err)
{
    if (json_is_string(content)) {
        *bytes += json_string_length(content);
        return acc ? yr_buf_append(acc, json_string_value(content), json_string_length(content))
                   : 0;
    }
    if (!json_is_array(content))
        return bad(err, where, "invalid_type",
                   "Invalid type for '%s': expected a string or an array.", where);
    size_t i;
    const json_t *p;
    json_array_foreach(content, i, p)
    {
        const char *t = json_string_value(json_object_get(p, "type"));
        if (t != NULL && (strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0)) {
            const json_t *text = json_object_get(p, "text");
            if (!json_is_string(text))
                return bad(err, where, "missing_required_parameter",
                           "Missing required parameter: '%s.text'.", where);
            *bytes += json_string_length(text);
            if (acc != NULL && acc->len > 0 && yr_buf_append(acc, "\n", 1) < 0)
                return -ENOMEM;
            if (acc != NULL &&
                yr_buf_append(acc, json_string_value(text), json_string_length(text)) < 0)
                return -ENOMEM;
        } else if (t != NULL && strcmp(t, "input_image") == 0) {
            (*images)++;
        } else if (t == NULL || (strcmp(t, "refusal") != 0 && strcmp(t, "input_file") != 0)) {
            return bad(err, where, "invalid_value",
                       "Invalid value: '%s'. Supported values are: "
                       "'input_text', 'input_image', 'output_text', 'refusal', and 'input_file'.",
                       t ? t : "null");
        }
    }
    return 0;
}

static bool known_call(const json_t *input, size_t upto, const char *call_id)
{
    for (size_t i = 0; i < upto; i++) {
        const json_t *it = json_array_get(input, i);
        const char *t = json_string_value(json_object_get(it, "type"));
        const char *c = json_string_value(json_object_get(it, "call_id"));
        if (t != NULL && c != NULL && strcmp(t, "function_call") == 0 && strcmp(c, call_id) == 0)
            return true;
    }
    return false;
}

static int parse_input(sim_exchange_t *x, const json_t *input, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    if (json_is_string(input)) {
        p->last_user_text = (yr_str_t){json_string_value(input), json_string_length(input)};
        p->prompt_bytes += json_string_length(input);
        return 0;
    }
    if (!json_is_array(input))
        return bad(err, "input", "invalid_type",
                   "Invalid type for 'input': expected one of a string or an array%s.", "");
    size_t i;
    const json_t *it;
    json_array_foreach(input, i, it)
    {
        char where[48];
        snprintf(where, sizeof(where), "input[%zu]", i);
        const char *t = json_string_value(json_object_get(it, "type"));
        const char *role = json_string_value(json_object_get(it, "role"));
        if (t == NULL || strcmp(t, "message") == 0) {
            if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
                                 strcmp(role, "system") != 0 && strcmp(role, "developer") != 0))
                return bad(err, where, "invalid_value",
                           "Invalid value for '%s.role': expected one of 'user', 'assistant', "
                           "'system' or 'developer'.",
                           where);
            bool user = strcmp(role, "user") == 0;
            yr_buf_t *acc = NULL;
            yr_buf_t tmp;
            yr_buf_init(&tmp, 1u << 20);
            if (user)
                acc = &tmp;
            size_t images = 0;
            int rc = content_text(json_object_get(it, "content"), where, acc, &p->prompt_bytes,
                                  &images, err);
            if (rc == 0 && user && (tmp.len > 0 || images > 0)) {
                char *s = yr_palloc(x->pool, tmp.len + 1);
                if (s == NULL)
                    rc = -ENOMEM;
                else {
                    memcpy(s, tmp.data ? tmp.data : "", tmp.len);
                    p->last_user_text = (yr_str_t){s, tmp.len};
                    p->images = images;
                }
            }
            yr_buf_free(&tmp);
            if (rc < 0)
                return rc;
        } else if (strcmp(t, "function_call") == 0) {
            if (!json_is_string(json_object_get(it, "call_id")) ||
                !json_is_string(json_object_get(it, "name")))
                return bad(err, where, "missing_required_parameter",
                           "Missing required parameter: '%s.call_id'.", where);
            p->prompt_bytes += json_string_length(json_object_get(it, "arguments"));
        } else if (strcmp(t, "function_call_output") == 0) {
            const char *cid = json_string_value(json_object_get(it, "call_id"));
            if (cid == NULL)
                return bad(err, where, "missing_required_parameter",
                           "Missing required parameter: '%s.call_id'.", where);
            if (!known_call(input, i, cid))
                return bad(err, "input", NULL,
                           "No tool call found for function call output with call_id %s.", cid);
            p->prompt_bytes += json_string_length(json_object_get(it, "output"));
        } else if (strcmp(t, "reasoning") == 0) {
            const char *enc = json_string_value(json_object_get(it, "encrypted_content"));
            if (enc != NULL && strncmp(enc, ENC_PREFIX, strlen(ENC_PREFIX)) != 0)
                return bad(err, NULL, "invalid_encrypted_content",
                           "The encrypted content for item %s could not be verified.",
                           str_or(json_object_get(it, "id"), "(no id)"));
        } else if (strcmp(t, "item_reference") == 0) {
            return bad(err, where, NULL, "Item with id '%s' not found.",
                       str_or(json_object_get(it, "id"), ""));
        }
        /* other built-in item types: accepted */
    }
    return 0;
}

static int parse_tools(sim_exchange_t *x, const json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    const json_t *tools = json_object_get(body, "tools");
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        char where[48];
        snprintf(where, sizeof(where), "tools[%zu].type", i);
        if (type == NULL)
            return bad(err, where, "missing_required_parameter",
                       "Missing required parameter: '%s'.", where);
        if (strcmp(type, "function") == 0) {
            const json_t *name = json_object_get(t, "name");
            if (!json_is_string(name))
                return bad(err, "tools", "missing_required_parameter",
                           "Missing required parameter: 'tools[].name'.%s", "");
            if (!p->has_tools)
                p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
            p->has_tools = true;
        }
    }
    const json_t *c = json_object_get(body, "tool_choice");
    if (json_is_string(c)) {
        const char *v = json_string_value(c);
        p->tool_choice = strcmp(v, "none") == 0       ? SIM_TOOLS_NONE
                         : strcmp(v, "required") == 0 ? SIM_TOOLS_REQUIRED
                                                      : SIM_TOOLS_AUTO;
    } else if (json_is_object(c) &&
               strcmp(str_or(json_object_get(c, "type"), ""), "function") == 0) {
        const json_t *name = json_object_get(c, "name");
        if (!json_is_string(name))
            return bad(err, "tool_choice.name", "missing_required_parameter",
                       "Missing required parameter: 'tool_choice.name'.%s", "");
        p->tool_choice = SIM_TOOLS_NAMED;
        p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
    }
    if (p->tool_choice == SIM_TOOLS_REQUIRED && !p->has_tools)
        p->tool_choice = SIM_TOOLS_AUTO; /* built-in tools only: nothing to force here */
    return 0;
}

static int rs_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    memset(p, 0, sizeof(*p));
    p->n = 1;
    if (!json_is_object(body))
        return bad(err, NULL, NULL, "We could not parse the JSON body of your request.%s", "");
    const json_t *model = json_object_get(body, "model");
    if (!json_is_string(model))
        return bad(err, "model", "missing_required_parameter",
                   "Missing required parameter: 'model'.%s", "");
    p->model = (yr_str_t){json_string_value(model), json_string_length(model)};
    const json_t *prev = json_object_get(body, "previous_response_id");
    if (json_is_string(prev))
        return bad(err, "previous_response_id", "previous_response_not_found",
                   "Previous response with id '%s' not found.", json_string_value(prev));
    const json_t *input = json_object_get(body, "input");
    if (input == NULL)
        return bad(err, "input", "missing_required_parameter",
                   "Missing required parameter: 'input'.%s", "");
    int rc = parse_input(x, input, err);
    if (rc == 0)
        rc = parse_tools(x, body, err);
    const json_t *mot = json_object_get(body, "max_output_tokens");
    if (rc == 0 && mot != NULL && !json_is_null(mot)) {
        if (!json_is_integer(mot) || json_integer_value(mot) < 16) {
            sim_error_set(err, 400, "invalid_request_error", "integer_below_min_value",
                          "Invalid 'max_output_tokens': integer below minimum value. Expected a "
                          "value >= 16, but got %lld instead.",
                          (long long)(json_is_integer(mot) ? json_integer_value(mot) : 0));
            sim_error_param(err, "max_output_tokens");
            return -EINVAL;
        }
        p->max_tokens = (uint64_t)json_integer_value(mot);
    }
    const json_t *stream = json_object_get(body, "stream");
    if (rc == 0 && stream != NULL && !json_is_null(stream) && !json_is_boolean(stream))
        return bad(err, "stream", "invalid_type",
                   "Invalid type for 'stream': expected a boolean.%s", "");
    p->stream = json_is_true(stream);
    p->include_usage = true;
    return rc;
}

/* ---- the response ------------------------------------------------------------ */

static bool reasoning_on(const sim_exchange_t *x)
{
    const char *e =
        json_string_value(json_object_get(json_object_get(x->body, "reasoning"), "effort"));
    return e != NULL && strcmp(e, "none") != 0;
}

static bool wants_summary(const sim_exchange_t *x)
{
    return json_is_string(json_object_get(json_object_get(x->body, "reasoning"), "summary"));
}

static bool wants_enc(const sim_exchange_t *x)
{
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(x->body, "include"), i,
                       v) if (json_is_string(v) &&
                              strcmp(json_string_value(v), "reasoning.encrypted_content") ==
                                  0) return true;
    return false;
}

static void resp_id(const sim_exchange_t *x, const char *prefix, char *out, size_t n)
{
    snprintf(out, n, "%s_%s", prefix, x->id + 9);
}

static json_t *usage_json(const sim_exchange_t *x)
{
    const sim_reply_t *r = &x->reply;
    json_int_t rt = reasoning_on(x) ? REASONING_TOKENS : 0;
    json_int_t in = (json_int_t)(x->prompt.prompt_bytes / 4 ? x->prompt.prompt_bytes / 4 : 1);
    json_int_t out = (json_int_t)r->completion_tokens + rt;
    json_t *u =
        json_pack("{s:I, s:{s:i}, s:I, s:{s:I}, s:I}", "input_tokens", in, "input_tokens_details",
                  "cached_tokens", 0, "output_tokens", out, "output_tokens_details",
                  "reasoning_tokens", rt, "total_tokens", in + out);
    if (u != NULL && json_is_object(r->usage_override))
        json_object_update(u, r->usage_override);
    return u;
}

static json_t *reasoning_item(const sim_exchange_t *x, bool done)
{
    char id[64];
    resp_id(x, "rs", id, sizeof(id));
    json_t *summary = json_array();
    if (done && wants_summary(x)) {
        char text[128];
        yr_str_t u = x->prompt.last_user_text;
        snprintf(text, sizeof(text), "Thinking about %.*s", (int)sim_utf8_floor(u.ptr, u.len, 60),
                 u.ptr ? u.ptr : "");
        json_array_append_new(summary,
                              json_pack("{s:s, s:s}", "type", "summary_text", "text", text));
    }
    json_t *it = json_pack("{s:s, s:s, s:o}", "type", "reasoning", "id", id, "summary", summary);
    if (done && wants_enc(x)) {
        char enc[96];
        snprintf(enc, sizeof(enc), ENC_PREFIX "%s", id);
        json_object_set_new(it, "encrypted_content", json_string(enc));
    }
    return it;
}

static json_t *message_item(const sim_exchange_t *x, bool done)
{
    char id[64];
    resp_id(x, "msg", id, sizeof(id));
    const sim_reply_t *r = &x->reply;
    json_t *content = json_array();
    if (done)
        json_array_append_new(content, json_pack("{s:s, s:s%, s:[], s:[]}", "type", "output_text",
                                                 "text", r->text.ptr ? r->text.ptr : "",
                                                 r->text.len, "annotations", "logprobs"));
    const char *status = !done                            ? "in_progress"
                         : r->finish == SIM_FINISH_LENGTH ? "incomplete"
                                                          : "completed";
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "message", "id", id, "status", status,
                     "role", "assistant", "content", content);
}

static json_t *call_item(const sim_exchange_t *x, size_t k, bool done)
{
    const sim_call_t *c = &x->reply.calls[k];
    char id[64];
    snprintf(id, sizeof(id), "fc_%s_%zu", x->id + 9, k);
    return json_pack("{s:s, s:s, s:s%, s:s%, s:s%, s:s}", "type", "function_call", "id", id,
                     "call_id", c->id.ptr, c->id.len, "name", c->name.ptr, c->name.len, "arguments",
                     done ? c->arguments.ptr : "", done ? c->arguments.len : 0, "status",
                     done ? "completed" : "in_progress");
}

static const char *status_of(const sim_exchange_t *x)
{
    return x->reply.finish == SIM_FINISH_LENGTH ? "incomplete" : "completed";
}

static json_t *response_json(const sim_exchange_t *x, const char *status)
{
    char id[64];
    resp_id(x, "resp", id, sizeof(id));
    bool final = strcmp(status, "in_progress") != 0;
    json_t *output = json_array();
    if (final) {
        if (reasoning_on(x))
            json_array_append_new(output, reasoning_item(x, true));
        if (x->reply.has_text)
            json_array_append_new(output, message_item(x, true));
        for (size_t k = 0; k < x->reply.ncalls; k++)
            json_array_append_new(output, call_item(x, k, true));
    }
    const json_t *b = x->body;
    json_t *r = json_pack(
        "{s:s, s:s, s:I, s:s, s:n, s:o, s:s%, s:o, s:b, s:O?, s:o, s:o, s:s, s:b, s:o}", "id", id,
        "object", "response", "created_at", (json_int_t)x->created, "status", status, "error",
        "incomplete_details",
        strcmp(status, "incomplete") == 0 ? json_pack("{s:s}", "reason", "max_output_tokens")
                                          : json_null(),
        "model", x->prompt.model.ptr, x->prompt.model.len, "output", output, "parallel_tool_calls",
        !json_is_false(json_object_get(b, "parallel_tool_calls")), "instructions",
        json_object_get(b, "instructions"), "tools",
        json_object_get(b, "tools") ? json_incref(json_object_get(b, "tools")) : json_array(),
        "tool_choice",
        json_object_get(b, "tool_choice") ? json_incref(json_object_get(b, "tool_choice"))
                                          : json_string("auto"),
        "truncation", "disabled", "store", !json_is_false(json_object_get(b, "store")), "usage",
        final ? usage_json(x) : json_null());
    if (r != NULL && json_object_get(r, "instructions") == NULL)
        json_object_set_new(r, "instructions", json_null());
    if (r != NULL)
        json_object_set_new(r, "text",
                            json_object_get(b, "text")
                                ? json_incref(json_object_get(b, "text"))
                                : json_pack("{s:{s:s}}", "format", "type", "text"));
    return r;
}

static int append_json(yr_buf_t *out, json_t *v)
{
    if (v == NULL)
        return -ENOMEM;
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (s == NULL)
        return -ENOMEM;
    int rc = yr_buf_append_str(out, yr_str(s));
    free(s);
    return rc;
}

static int rs_render(sim_exchange_t *x, yr_buf_t *b)
{
    return append_json(b, response_json(x, status_of(x)));
}

/* ---- the stream: every event built at once, then one per call ---------------- */

typedef struct {
    json_t *events; /* array of event objects (type, ... ; sequence_number added) */
    size_t next;
} rs_stream_t;

static void on_stream_cleanup(void *arg)
{
    rs_stream_t *st = arg;
    json_decref(st->events);
    st->events = NULL;
}

static void ev(json_t *events, const char *type, json_t *data)
{
    if (data == NULL)
        return;
    json_object_set_new(data, "type", json_string(type));
    json_object_set_new(data, "sequence_number", json_integer((json_int_t)json_array_size(events)));
    json_array_append_new(events, data);
}

static void text_events(sim_exchange_t *x, json_t *events, size_t oi)
{
    const sim_reply_t *r = &x->reply;
    json_t *item = message_item(x, false);
    const char *id = json_string_value(json_object_get(item, "id"));
    char iid[64];
    snprintf(iid, sizeof(iid), "%s", id);
    ev(events, "response.output_item.added",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)oi, "item", item));
    ev(events, "response.content_part.added",
       json_pack("{s:s, s:I, s:i, s:{s:s, s:s, s:[], s:[]}}", "item_id", iid, "output_index",
                 (json_int_t)oi, "content_index", 0, "part", "type", "output_text", "text", "",
                 "annotations", "logprobs"));
    for (size_t round = 0; round < (r->repeat ? r->repeat : 1); round++) {
        sim_pieces_t pc;
        sim_pieces_init(&pc, r->text, r->chunks);
        yr_str_t piece;
        while (sim_pieces_next(&pc, &piece))
            ev(events, "response.output_text.delta",
               json_pack("{s:s, s:I, s:i, s:s%, s:[]}", "item_id", iid, "output_index",
                         (json_int_t)oi, "content_index", 0, "delta", piece.ptr, piece.len,
                         "logprobs"));
    }
    yr_str_t t = r->text;
    ev(events, "response.output_text.done",
       json_pack("{s:s, s:I, s:i, s:s%, s:[]}", "item_id", iid, "output_index", (json_int_t)oi,
                 "content_index", 0, "text", t.ptr ? t.ptr : "", t.len, "logprobs"));
    ev(events, "response.content_part.done",
       json_pack("{s:s, s:I, s:i, s:{s:s, s:s%, s:[], s:[]}}", "item_id", iid, "output_index",
                 (json_int_t)oi, "content_index", 0, "part", "type", "output_text", "text",
                 t.ptr ? t.ptr : "", t.len, "annotations", "logprobs"));
    ev(events, "response.output_item.done",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)oi, "item", message_item(x, true)));
}

static void reasoning_events(sim_exchange_t *x, json_t *events, size_t oi)
{
    json_t *done = reasoning_item(x, true);
    const char *iid = json_string_value(json_object_get(done, "id"));
    ev(events, "response.output_item.added",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)oi, "item", reasoning_item(x, false)));
    json_t *sum = json_array_get(json_object_get(done, "summary"), 0);
    if (sum != NULL) {
        const char *text = json_string_value(json_object_get(sum, "text"));
        ev(events, "response.reasoning_summary_part.added",
           json_pack("{s:s, s:I, s:i, s:{s:s, s:s}}", "item_id", iid, "output_index",
                     (json_int_t)oi, "summary_index", 0, "part", "type", "summary_text", "text",
                     ""));
        ev(events, "response.reasoning_summary_text.delta",
           json_pack("{s:s, s:I, s:i, s:s}", "item_id", iid, "output_index", (json_int_t)oi,
                     "summary_index", 0, "delta", text));
        ev(events, "response.reasoning_summary_text.done",
           json_pack("{s:s, s:I, s:i, s:s}", "item_id", iid, "output_index", (json_int_t)oi,
                     "summary_index", 0, "text", text));
        ev(events, "response.reasoning_summary_part.done",
           json_pack("{s:s, s:I, s:i, s:{s:s, s:s}}", "item_id", iid, "output_index",
                     (json_int_t)oi, "summary_index", 0, "part", "type", "summary_text", "text",
                     text));
    }
    ev(events, "response.output_item.done",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)oi, "item", done));
}

static void call_events(sim_exchange_t *x, json_t *events, size_t k, size_t oi)
{
    json_t *done = call_item(x, k, true);
    const char *iid = json_string_value(json_object_get(done, "id"));
    ev(events, "response.output_item.added",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)oi, "item", call_item(x, k, false)));
    yr_str_t args = x->reply.calls[k].arguments;
    sim_pieces_t pc;
    sim_pieces_init(&pc, args, sim_args_chunks(args));
    yr_str_t piece;
    while (sim_pieces_next(&pc, &piece))
        ev(events, "response.function_call_arguments.delta",
           json_pack("{s:s, s:I, s:s%}", "item_id", iid, "output_index", (json_int_t)oi, "delta",
                     piece.ptr, piece.len));
    ev(events, "response.function_call_arguments.done",
       json_pack("{s:s, s:I, s:s%}", "item_id", iid, "output_index", (json_int_t)oi, "arguments",
                 args.ptr, args.len));
    ev(events, "response.output_item.done",
       json_pack("{s:I, s:o}", "output_index", (json_int_t)oi, "item", done));
}

/* A scripted stream_error: response.failed with that code after
 * stream_error_after events (default 1). */
static void build_events(sim_exchange_t *x, rs_stream_t *st)
{
    json_t *events = json_array();
    st->events = events;
    ev(events, "response.created", json_pack("{s:o}", "response", response_json(x, "in_progress")));
    ev(events, "response.in_progress",
       json_pack("{s:o}", "response", response_json(x, "in_progress")));
    size_t oi = 0;
    if (reasoning_on(x))
        reasoning_events(x, events, oi++);
    if (x->reply.has_text)
        text_events(x, events, oi++);
    for (size_t k = 0; k < x->reply.ncalls; k++)
        call_events(x, events, k, oi++);
    const char *status = status_of(x);
    ev(events, strcmp(status, "incomplete") == 0 ? "response.incomplete" : "response.completed",
       json_pack("{s:o}", "response", response_json(x, status)));
    const sim_behaviour_t *b = &x->beh;
    if (b->stream_error.ptr != NULL) {
        size_t at = b->stream_error_after >= 0 ? (size_t)b->stream_error_after : 1;
        while (json_array_size(events) > at)
            json_array_remove(events, json_array_size(events) - 1);
        json_t *r = response_json(x, "failed");
        json_object_set_new(r, "error",
                            json_pack("{s:s%, s:s}", "code", b->stream_error.ptr,
                                      b->stream_error.len, "message",
                                      "The model failed to produce a response."));
        json_object_set_new(r, "usage", json_null());
        ev(events, "response.failed", json_pack("{s:o}", "response", r));
    }
}

static rs_stream_t *stream_of(const sim_exchange_t *x)
{
    rs_stream_t *st = x->dstate;
    if (st->events == NULL) {
        if (yr_pool_cleanup_add(x->pool, on_stream_cleanup, st) < 0)
            return NULL;
        build_events((sim_exchange_t *)x, st);
    }
    return st;
}

static int rs_stream_next(sim_exchange_t *x, yr_buf_t *b)
{
    rs_stream_t *st = stream_of(x);
    if (st == NULL || st->events == NULL)
        return -ENOMEM;
    json_t *e = json_array_get(st->events, st->next);
    if (e == NULL)
        return -EINVAL;
    st->next++;
    int rc = yr_buf_printf(b, "event: %s\ndata: ", json_string_value(json_object_get(e, "type")));
    if (rc == 0)
        rc = append_json(b, json_incref(e));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("\n\n"));
    if (rc < 0)
        return rc;
    return st->next >= json_array_size(st->events) ? SIM_EVENT_LAST : SIM_EVENT;
}

static size_t rs_stream_events(const sim_exchange_t *x)
{
    rs_stream_t *st = stream_of(x);
    return st != NULL ? json_array_size(st->events) : 1;
}

const sim_dialect_t sim_dialect_responses = {
    .name = "responses",
    .route = rs_route,
    .check_auth = sim_oai_check_auth,
    .parse = rs_parse,
    .error_defaults = sim_oai_error_defaults,
    .render_error = sim_oai_render_error,
    .render = rs_render,
    .stream_state_size = sizeof(rs_stream_t),
    .stream_next = rs_stream_next,
    .stream_events = rs_stream_events,
    .stream_content_type = YR_STR("text/event-stream"),
    .malformed_event = YR_STR(
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\n\n"),
};
