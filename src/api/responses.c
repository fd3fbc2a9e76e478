/* responses.h: the Responses API over the chat model. */
#include "api/responses.h"
#include "api/json_tok.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ITEMS 4096
#define MAX_OUTPUT_TEXT (32u << 20) /* all text, reasoning and arguments of one response */
#define NS_SEP "__"                 /* namespace tools: ns__name */

static int fail(yr_api_error_t *err, yr_err_t e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(yr_api_error_t *err, yr_err_t e, const char *param, const char *fmt, ...)
{
    err->err = e;
    snprintf(err->param, sizeof(err->param), "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

void yr_resp_info_free(yr_resp_info_t *info)
{
    json_decref(info->echo);
    json_decref(info->items);
    json_decref(info->namespaces);
    free(info->pass_body);
    info->echo = NULL;
    info->items = NULL;
    info->namespaces = NULL;
    info->pass_body = NULL;
}

int yr_resp_previous_id(const char *body, size_t len, char *id, yr_api_error_t *err)
{
    id[0] = '\0';
    json_t *req = yr_json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (req == NULL || !json_is_object(req)) {
        json_decref(req);
        return fail(err, YR_E_INVALID_JSON, NULL, "the body must be a JSON object");
    }
    json_t *p = json_object_get(req, "previous_response_id");
    int rc = 0;
    if (json_is_string(p)) {
        const char *v = json_string_value(p);
        size_t n = strlen(v);
        bool ok = n > 5 && n < 64 && strncmp(v, "resp_", 5) == 0;
        for (size_t i = 0; ok && i < n; i++)
            ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                 (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '-';
        if (ok)
            memcpy(id, v, n + 1);
        else
            rc = fail(err, YR_E_INVALID_REQUEST, "previous_response_id",
                      "previous_response_id is not a response id");
    } else if (p != NULL && !json_is_null(p)) {
        rc = fail(err, YR_E_INVALID_REQUEST, "previous_response_id",
                  "previous_response_id must be a string");
    }
    json_decref(req);
    return rc;
}

/* A string input as the item list the store keeps. */
static json_t *input_as_items(json_t *input)
{
    if (json_is_array(input))
        return json_incref(input);
    return json_pack("[{s:s, s:s, s:[{s:s, s:O}]}]", "type", "message", "role", "user", "content",
                     "type", "input_text", "text", input);
}

/* One content part of an input message -> a chat content part. */
static int convert_part(json_t *p, json_t *parts, const char *where, yr_api_error_t *err)
{
    const char *type = json_string_value(json_object_get(p, "type"));
    char param[192];
    snprintf(param, sizeof(param), "%s.type", where);
    if (type == NULL)
        return fail(err, YR_E_INVALID_REQUEST, param, "a content part needs a type");
    if (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 ||
        strcmp(type, "text") == 0) {
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(t)) {
            snprintf(param, sizeof(param), "%s.text", where);
            return fail(err, YR_E_INVALID_REQUEST, param, "text must be a string");
        }
        return json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", t));
    }
    if (strcmp(type, "input_image") == 0) {
        json_t *url = json_object_get(p, "image_url");
        if (!json_is_string(url)) {
            snprintf(param, sizeof(param), "%s.image_url", where);
            return fail(err, YR_E_INVALID_REQUEST, param,
                        "input_image needs an image_url (file_id uploads are not supported)");
        }
        json_t *img = json_pack("{s:O}", "url", url);
        json_t *detail = json_object_get(p, "detail");
        if (json_is_string(detail))
            json_object_set(img, "detail", detail);
        return json_array_append_new(parts,
                                     json_pack("{s:s, s:o}", "type", "image_url", "image_url", img));
    }
    if (strcmp(type, "refusal") == 0)
        return 0; /* a past refusal: nothing to send again */
    return fail(err, YR_E_INVALID_REQUEST, param, "content part type '%.40s' is not supported",
                type);
}

/* The message's content as chat content: a string stays a string. */
static json_t *convert_content(json_t *content, const char *where, yr_api_error_t *err, int *rc)
{
    *rc = 0;
    if (json_is_string(content))
        return json_incref(content);
    if (!json_is_array(content)) {
        char param[192];
        snprintf(param, sizeof(param), "%s.content", where);
        *rc = fail(err, YR_E_INVALID_REQUEST, param, "content must be a string or an array");
        return NULL;
    }
    json_t *parts = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        char w[160];
        snprintf(w, sizeof(w), "%s.content[%zu]", where, i);
        if ((*rc = convert_part(p, parts, w, err)) != 0) {
            json_decref(parts);
            return NULL;
        }
    }
    return parts;
}

/* What converting the input carries from item to item: provider state
 * opened from reasoning items (resp_state.h). */
typedef struct {
    const yr_resp_secret_t *secret;
    json_t *thinking; /* Anthropic blocks for the next assistant message */
    json_t *sigs;     /* call_id -> Gemini thought signature, from every reasoning item */
} conv_t;

/* Reasoning items sealed by this gateway: their blocks wait for the next
 * assistant message; signatures are collected first (an item may follow
 * the call it signs). Any other encrypted_content (OpenAI's) is not ours. */
static void open_reasoning(conv_t *cv, json_t *it, bool blocks)
{
    json_t *enc = json_object_get(it, "encrypted_content");
    if (!json_is_string(enc))
        return;
    json_t *st = yr_resp_state_open(cv->secret, json_string_value(enc), json_string_length(enc));
    if (st == NULL)
        return;
    json_t *b = json_object_get(st, "b"), *sg = json_object_get(st, "s");
    if (blocks && json_is_array(b))
        json_array_extend(cv->thinking, b);
    if (!blocks && json_is_object(sg))
        json_object_update(cv->sigs, sg);
    json_decref(st);
}

/* An assistant message takes the thinking blocks that came before it. */
static void take_thinking(conv_t *cv, json_t *m)
{
    if (json_array_size(cv->thinking) == 0 || json_object_get(m, "thinking_blocks") != NULL)
        return;
    json_object_set_new(m, "thinking_blocks", cv->thinking);
    cv->thinking = json_array();
}

/* The last assistant message of msgs when it holds tool calls only, to
 * append consecutive function_call items to; else a new one. */
static json_t *assistant_for_calls(json_t *msgs)
{
    size_t n = json_array_size(msgs);
    json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
    const char *role = json_string_value(json_object_get(last, "role"));
    if (last != NULL && role != NULL && strcmp(role, "assistant") == 0 &&
        json_is_array(json_object_get(last, "tool_calls")))
        return last;
    json_t *m = json_pack("{s:s, s:n, s:[]}", "role", "assistant", "content", "tool_calls");
    json_array_append_new(msgs, m);
    return m;
}

/* Items of OpenAI's built-in tools (web_search_call, code_interpreter_call,
 * their outputs, ...): what they did ran at OpenAI; a translated route has
 * no form for them. */
static bool builtin_item(const char *type)
{
    size_t n = strlen(type);
    return (n > 5 && strcmp(type + n - 5, "_call") == 0) ||
           (n > 12 && strcmp(type + n - 12, "_call_output") == 0);
}

/* A function_call item as a chat tool call: a namespaced call by its
 * qualified name; a Gemini thought signature the gateway sealed for it
 * where the Gemini dialect looks for one. */
static json_t *tool_call_of(conv_t *cv, json_t *it, json_t *call_id, json_t *name)
{
    json_t *args = json_object_get(it, "arguments");
    const char *ns = json_string_value(json_object_get(it, "namespace"));
    char qual[256];
    snprintf(qual, sizeof(qual), "%s%s%s", ns ? ns : "", ns ? NS_SEP : "", json_string_value(name));
    json_t *tc = json_pack("{s:O, s:s, s:{s:s, s:s}}", "id", call_id, "type", "function",
                           "function", "name", qual, "arguments",
                           json_is_string(args) ? json_string_value(args) : "{}");
    json_t *sig = json_object_get(cv->sigs, json_string_value(call_id));
    if (tc != NULL && json_is_string(sig))
        json_object_set_new(tc, "extra_content",
                            json_pack("{s:{s:O}}", "google", "thought_signature", sig));
    return tc;
}

static int convert_input(conv_t *cv, json_t *input, json_t *msgs, yr_api_error_t *err)
{
    if (json_is_string(input))
        return json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "user", "content",
                                                     input));
    if (!json_is_array(input))
        return fail(err, YR_E_INVALID_REQUEST, "input", "input must be a string or an array");
    if (json_array_size(input) > MAX_ITEMS)
        return fail(err, YR_E_INVALID_REQUEST, "input", "at most %d input items", MAX_ITEMS);
    size_t i;
    json_t *it;
    json_array_foreach(input, i, it)
    {
        const char *t = json_string_value(json_object_get(it, "type"));
        if (t != NULL && strcmp(t, "reasoning") == 0)
            open_reasoning(cv, it, false); /* the signatures first */
    }
    json_array_foreach(input, i, it)
    {
        char where[48];
        snprintf(where, sizeof(where), "input[%zu]", i);
        if (!json_is_object(it))
            return fail(err, YR_E_INVALID_REQUEST, where, "an input item must be an object");
        const char *type = json_string_value(json_object_get(it, "type"));
        const char *role = json_string_value(json_object_get(it, "role"));
        if (type == NULL || strcmp(type, "message") == 0) {
            if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 &&
                                 strcmp(role, "system") != 0 && strcmp(role, "developer") != 0)) {
                char param[96];
                snprintf(param, sizeof(param), "%s.role", where);
                return fail(err, YR_E_INVALID_REQUEST, param,
                            "role must be user, assistant, system or developer");
            }
            int rc;
            json_t *content = convert_content(json_object_get(it, "content"), where, err, &rc);
            if (rc != 0)
                return rc;
            json_t *m = json_pack("{s:s, s:o}", "role", role, "content", content);
            if (strcmp(role, "assistant") == 0)
                take_thinking(cv, m);
            json_array_append_new(msgs, m);
        } else if (strcmp(type, "function_call") == 0) {
            json_t *call_id = json_object_get(it, "call_id"), *name = json_object_get(it, "name");
            if (!json_is_string(call_id) || !json_is_string(name))
                return fail(err, YR_E_INVALID_REQUEST, where,
                            "a function_call item needs call_id and name");
            json_t *m = assistant_for_calls(msgs);
            take_thinking(cv, m);
            json_array_append_new(json_object_get(m, "tool_calls"),
                                  tool_call_of(cv, it, call_id, name));
        } else if (strcmp(type, "function_call_output") == 0) {
            json_t *call_id = json_object_get(it, "call_id"), *out = json_object_get(it, "output");
            if (!json_is_string(call_id))
                return fail(err, YR_E_INVALID_REQUEST, where,
                            "a function_call_output item needs call_id");
            char *text = json_is_string(out) ? NULL : json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
            json_array_append_new(
                msgs, json_pack("{s:s, s:O, s:s}", "role", "tool", "tool_call_id", call_id,
                                "content", json_is_string(out) ? json_string_value(out)
                                           : text != NULL      ? text
                                                               : ""));
            free(text);
        } else if (strcmp(type, "reasoning") == 0) {
            /* what the provider needs back (thinking blocks), when this
             * gateway sealed it; a summary alone is not sent again */
            open_reasoning(cv, it, true);
        } else if (strcmp(type, "item_reference") == 0) {
            return fail(err, YR_E_INVALID_REQUEST, where,
                        "item_reference is not supported: send the item, or use "
                        "previous_response_id");
        } else if (builtin_item(type)) {
            /* a built-in tool's call or output (it ran at OpenAI): nothing to send */
        } else {
            return fail(err, YR_E_INVALID_REQUEST, where, "input item type '%.40s' is not supported",
                        type);
        }
    }
    return 0;
}

/* One function tool (a top-level one, or one of a namespace's: then its
 * name is qualified, ns__name) as a chat tool. */
static int convert_function(json_t *t, const char *ns, json_t *out, const char *where,
                            yr_api_error_t *err)
{
    json_t *name = json_object_get(t, "name");
    if (!json_is_string(name)) {
        char param[64];
        snprintf(param, sizeof(param), "%s.name", where);
        return fail(err, YR_E_INVALID_REQUEST, param, "a function tool needs a name");
    }
    char qual[256];
    snprintf(qual, sizeof(qual), "%s%s%s", ns ? ns : "", ns ? NS_SEP : "", json_string_value(name));
    json_t *fn = json_pack("{s:s}", "name", qual);
    static const char *const keys[] = {"description", "parameters", "strict"};
    for (size_t k = 0; k < 3; k++) {
        json_t *v = json_object_get(t, keys[k]);
        if (v != NULL && !json_is_null(v))
            json_object_set(fn, keys[k], v);
    }
    return json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", fn));
}

static void note_dropped(yr_resp_info_t *info, const char *type)
{
    size_t off = strlen(info->dropped_tools);
    if (strstr(info->dropped_tools, type) != NULL)
        return;
    int n = snprintf(info->dropped_tools + off, sizeof(info->dropped_tools) - off, "%s%s",
                     off ? "," : "", type);
    if (n < 0 || (size_t)n >= sizeof(info->dropped_tools) - off)
        info->dropped_tools[off] = '\0';
}

/* Function tools as chat tools; namespace tools flattened to their
 * functions with qualified names (mapped back by the encoder); built-in
 * tools (web_search, file_search, code_interpreter, computer_use, custom,
 * ...) run only at OpenAI: dropped, and named for x-yourouter-dropped. */
static int convert_tools(json_t *tools, json_t *out, yr_resp_info_t *info, yr_api_error_t *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char where[48];
        snprintf(where, sizeof(where), "tools[%zu]", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        int rc = 0;
        if (type == NULL) {
            char param[64];
            snprintf(param, sizeof(param), "%s.type", where);
            return fail(err, YR_E_INVALID_REQUEST, param, "a tool needs a type");
        }
        if (strcmp(type, "function") == 0) {
            rc = convert_function(t, NULL, out, where, err);
        } else if (strcmp(type, "namespace") == 0) {
            const char *ns = json_string_value(json_object_get(t, "name"));
            json_t *inner = json_object_get(t, "tools");
            if (ns == NULL || !json_is_array(inner))
                return fail(err, YR_E_INVALID_REQUEST, where,
                            "a namespace tool needs a name and tools");
            if (info->namespaces == NULL)
                info->namespaces = json_array();
            json_array_append_new(info->namespaces, json_string(ns));
            size_t k;
            json_t *f;
            json_array_foreach(inner, k, f)
            {
                char w[96];
                snprintf(w, sizeof(w), "%s.tools[%zu]", where, k);
                const char *ft = json_string_value(json_object_get(f, "type"));
                if (ft != NULL && strcmp(ft, "function") == 0)
                    rc = rc ? rc : convert_function(f, ns, out, w, err);
                else
                    note_dropped(info, ft ? ft : "unknown");
            }
        } else {
            note_dropped(info, type);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* tool_choice -> the chat form; a choice that requires a tool this route
 * cannot run is a 400 naming it (dropping it would change the answer). */
static int convert_tool_choice(json_t *req, json_t *chat, yr_resp_info_t *info,
                               yr_api_error_t *err)
{
    json_t *tc = json_object_get(req, "tool_choice");
    bool have = json_object_get(chat, "tools") != NULL;
    if (json_is_string(tc)) {
        const char *v = json_string_value(tc);
        if (strcmp(v, "required") == 0 && !have && info->dropped_tools[0] != '\0')
            return fail(err, YR_E_INVALID_REQUEST, "tool_choice",
                        "tool_choice 'required' needs a tool, and this route cannot run the "
                        "built-in tools of the request (%s)",
                        info->dropped_tools);
        if (have)
            json_object_set(chat, "tool_choice", tc);
        return 0;
    }
    if (!json_is_object(tc))
        return 0;
    const char *t = json_string_value(json_object_get(tc, "type"));
    if (t == NULL)
        return fail(err, YR_E_INVALID_REQUEST, "tool_choice.type", "tool_choice needs a type");
    if (strcmp(t, "function") == 0) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        const char *ns = json_string_value(json_object_get(tc, "namespace"));
        if (name == NULL)
            return fail(err, YR_E_INVALID_REQUEST, "tool_choice.name",
                        "tool_choice of type function needs a name");
        char qual[256];
        snprintf(qual, sizeof(qual), "%s%s%s", ns ? ns : "", ns ? NS_SEP : "", name);
        if (have)
            json_object_set_new(chat, "tool_choice",
                                json_pack("{s:s, s:{s:s}}", "type", "function", "function",
                                          "name", qual));
        return 0;
    }
    if (strcmp(t, "allowed_tools") == 0) {
        /* the subset is advisory here: its mode says whether a call is required */
        const char *mode = json_string_value(json_object_get(tc, "mode"));
        if (have)
            json_object_set_new(chat, "tool_choice",
                                json_string(mode && strcmp(mode, "required") == 0 ? "required"
                                                                                  : "auto"));
        return 0;
    }
    /* a built-in tool (web_search_preview, file_search, code_interpreter, mcp, ...) */
    return fail(err, YR_E_INVALID_REQUEST, "tool_choice",
                "tool_choice requires the built-in tool '%.60s', which this route cannot run "
                "(only OpenAI routes run built-in tools)",
                t);
}

/* What the response object repeats back. */
static void put_echo(json_t *req, yr_resp_info_t *info)
{
    info->echo = json_object();
    static const char *const echo[] = {"instructions", "tools",  "tool_choice", "temperature",
                                       "top_p",        "text",   "reasoning",   "metadata",
                                       "parallel_tool_calls", "max_output_tokens",
                                       "previous_response_id", "user"};
    for (size_t k = 0; k < sizeof(echo) / sizeof(echo[0]); k++) {
        json_t *v = json_object_get(req, echo[k]);
        if (v != NULL)
            json_object_set(info->echo, echo[k], v);
    }
}

/* A reasoning item whose encrypted_content this gateway sealed (for a
 * translated route): meaningless to a Responses upstream, which would refuse
 * it as unverifiable. */
static bool ours(json_t *it)
{
    const char *t = json_string_value(json_object_get(it, "type"));
    const char *enc = json_string_value(json_object_get(it, "encrypted_content"));
    return t != NULL && strcmp(t, "reasoning") == 0 && enc != NULL && strncmp(enc, "yr1.", 4) == 0;
}

static bool any_ours(json_t *items, size_t from)
{
    for (size_t i = from; i < json_array_size(items); i++)
        if (ours(json_array_get(items, i)))
            return true;
    return false;
}

/* With previous_response_id, a Responses upstream gets the whole
 * conversation (the gateway's store has it, the upstream may not):
 * previous_response_id removed, input = the stored items without their ids
 * (they are ours or another account's) and without reasoning items (their
 * encrypted_content is another route's), then this request's items as the
 * client sent them (from index nprev on), but for reasoning this gateway
 * sealed. Also used without previous_response_id when the input holds such
 * reasoning (a conversation moved from a translated route). */
static char *pass_body_of(json_t *req, json_t *items, size_t nprev)
{
    json_t *copy = json_deep_copy(req);
    json_t *in = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *t = json_string_value(json_object_get(it, "type"));
        if (i >= nprev && !ours(it)) {
            json_array_append(in, it);
            continue;
        }
        if (t != NULL && strcmp(t, "reasoning") == 0)
            continue;
        json_t *c = json_copy(it);
        json_object_del(c, "id");
        json_object_del(c, "status");
        json_array_append_new(in, c);
    }
    json_object_del(copy, "previous_response_id");
    json_object_set_new(copy, "input", in);
    char *s = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return s;
}

int yr_resp_request_to_openai(const char *body, size_t len, const char *prev_items,
                              const char *prev_response, const yr_resp_secret_t *secret,
                              yr_resp_info_t *info, yr_buf_t *out, yr_api_error_t *err)
{
    memset(info, 0, sizeof(*info));
    info->store = true;
    info->max_output_tokens = -1;
    json_error_t je;
    json_t *req = yr_json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (req == NULL || !json_is_object(req)) {
        json_decref(req);
        return fail(err, YR_E_INVALID_JSON, NULL, "the body must be a JSON object");
    }
    int rc = 0;
    bool readable = false;
    json_t *chat = json_object(), *msgs = json_array();
    json_t *model = json_object_get(req, "model");
    if (!json_is_string(model) || json_string_length(model) == 0 ||
        json_string_length(model) >= sizeof(info->model)) {
        rc = fail(err, YR_E_INVALID_REQUEST, "model", "model is required");
        goto out;
    }
    snprintf(info->model, sizeof(info->model), "%s", json_string_value(model));
    json_object_set(chat, "model", model);
    info->stream = json_is_true(json_object_get(req, "stream"));
    json_t *store = json_object_get(req, "store");
    info->store = store == NULL || json_is_null(store) || json_is_true(store);
    json_t *prev = json_object_get(req, "previous_response_id");
    info->has_previous = json_is_string(prev);
    json_t *instructions = json_object_get(req, "instructions");
    if (json_is_string(instructions))
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content",
                                              instructions));
    json_t *input = json_object_get(req, "input");
    if (input == NULL) {
        rc = fail(err, YR_E_INVALID_REQUEST, "input", "input is required");
        goto out;
    }
    /* The conversation so far: the previous response's input and output,
     * then this request's input. */
    info->items = json_array();
    if (prev_items != NULL && prev_response != NULL) {
        json_t *pi = json_loads(prev_items, 0, NULL), *pr = json_loads(prev_response, 0, NULL);
        json_t *po = json_object_get(pr, "output");
        if (json_is_array(pi))
            json_array_extend(info->items, pi);
        size_t k;
        json_t *o;
        json_array_foreach(po, k, o)
        {
            /* reasoning too: the provider state sealed in it goes back */
            if (json_is_string(json_object_get(o, "type")))
                json_array_append(info->items, o);
        }
        json_decref(pi);
        json_decref(pr);
    }
    size_t nprev = json_array_size(info->items);
    json_t *mine = input_as_items(input);
    if (mine != NULL)
        json_array_extend(info->items, mine);
    json_decref(mine);
    if (json_array_size(info->items) > MAX_ITEMS) {
        rc = fail(err, YR_E_INVALID_REQUEST, "input", "at most %d input items", MAX_ITEMS);
        goto out;
    }
    if ((prev_items != NULL || any_ours(info->items, nprev)) &&
        (info->pass_body = pass_body_of(req, info->items, nprev)) == NULL) {
        rc = fail(err, YR_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    json_t *inc = json_object_get(req, "include");
    size_t k;
    json_t *v;
    json_array_foreach(inc, k, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), "reasoning.encrypted_content") ==
                                          0) info->include_enc = true;
    put_echo(req, info);
    /* From here on the request is readable: a failure is only that this
     * translation cannot express it (a Responses upstream may still take it). */
    readable = true;
    conv_t cv = {.secret = secret, .thinking = json_array(), .sigs = json_object()};
    rc = convert_input(&cv, prev_items != NULL ? info->items : input, msgs, err);
    json_decref(cv.thinking);
    json_decref(cv.sigs);
    if (rc != 0)
        goto out;
    if (json_array_size(msgs) == 0) {
        rc = fail(err, YR_E_INVALID_REQUEST, "input", "input has no messages");
        goto out;
    }
    json_object_set(chat, "messages", msgs);
    json_t *tools = json_object_get(req, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        json_t *ct = json_array();
        rc = convert_tools(tools, ct, info, err);
        if (rc == 0 && json_array_size(ct) > 0)
            json_object_set(chat, "tools", ct);
        json_decref(ct);
        if (rc != 0)
            goto out;
    }
    if ((rc = convert_tool_choice(req, chat, info, err)) != 0)
        goto out;
    static const char *const same[] = {"temperature", "top_p", "parallel_tool_calls", "user"};
    for (size_t j = 0; j < 4; j++) {
        json_t *sv = json_object_get(req, same[j]);
        if (sv != NULL && !json_is_null(sv))
            json_object_set(chat, same[j], sv);
    }
    json_t *mot = json_object_get(req, "max_output_tokens");
    if (json_is_integer(mot)) {
        info->max_output_tokens = json_integer_value(mot);
        json_object_set(chat, "max_completion_tokens", mot);
    }
    json_t *effort = json_object_get(json_object_get(req, "reasoning"), "effort");
    if (json_is_string(effort))
        json_object_set(chat, "reasoning_effort", effort);
    json_t *fmt = json_object_get(json_object_get(req, "text"), "format");
    const char *ft = json_string_value(json_object_get(fmt, "type"));
    if (ft != NULL && strcmp(ft, "json_schema") == 0) {
        /* "o": steals the reference, so a default made here is not leaked */
        json_t *name = json_object_get(fmt, "name"), *schema = json_object_get(fmt, "schema");
        json_t *js = json_pack("{s:o, s:o}", "name",
                               name ? json_incref(name) : json_string("response"), "schema",
                               schema ? json_incref(schema) : json_object());
        json_t *strict = json_object_get(fmt, "strict");
        if (json_is_boolean(strict))
            json_object_set(js, "strict", strict);
        json_object_set_new(chat, "response_format",
                            json_pack("{s:s, s:o}", "type", "json_schema", "json_schema", js));
    } else if (ft != NULL && strcmp(ft, "json_object") == 0) {
        json_object_set_new(chat, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    if (info->stream) {
        json_object_set_new(chat, "stream", json_true());
        json_object_set_new(chat, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    char *s = json_dumps(chat, JSON_COMPACT);
    if (s == NULL) {
        rc = fail(err, YR_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    size_t had = out->len;
    if (yr_buf_append_str(out, yr_str(s)) < 0) {
        out->len = had;
        rc = fail(err, YR_E_TOO_LARGE, NULL, "the converted request is too large");
        rc = -E2BIG;
    }
    free(s);
out:
    json_decref(msgs);
    json_decref(chat);
    json_decref(req);
    if (rc != 0 && !readable) {
        yr_resp_info_free(info);
        info->model[0] = '\0';
    }
    return rc;
}

/* ---- the encoder ------------------------------------------------------------ */

/* IT_REFUSAL is a message whose content part is a refusal. */
typedef enum { IT_MESSAGE, IT_REASONING, IT_CALL, IT_REFUSAL } item_kind_t;

typedef struct {
    item_kind_t kind;
    char id[96];
    uint32_t tool_index; /* IT_CALL: the event stream's index */
    char call_id[128];
    char name[128];
    char ns[128];  /* IT_CALL: the namespace of a flattened namespace tool, or "" */
    yr_buf_t text; /* message text, reasoning summary, or call arguments */
    json_t *blocks;     /* IT_REASONING: the provider's thinking blocks (Anthropic), to seal */
    size_t block_start; /* ... the text of the block being received starts here */
    char *enc;          /* IT_REASONING: the sealed provider state (malloc'ed), or NULL */
    bool done;
    bool incomplete; /* the answer was cut (max_output_tokens, content filter) */
} item_t;

struct yr_resp_enc {
    char id[64];
    char model[256];
    bool stream;
    const yr_resp_info_t *info;
    int64_t created;
    int64_t input_estimate;
    yr_resp_secret_t secret;
    size_t text_bytes; /* of every item: capped at MAX_OUTPUT_TEXT */
    uint64_t seq;
    item_t items[64];
    size_t nitems;
    int open; /* the item receiving text deltas (message or reasoning), -1: none */
    yr_finish_t finish;
    yr_usage_t usage;
    bool started, ended, failed;
    uint64_t counter;
    char *final; /* the response object as it ended, as stored (malloc'ed) */
};

yr_resp_enc_t *yr_resp_enc_new(const yr_resp_enc_opts_t *o)
{
    yr_resp_enc_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    snprintf(e->id, sizeof(e->id), "resp_%.*s", (int)(o->id_seed.len > 40 ? 40 : o->id_seed.len),
             o->id_seed.ptr);
    for (char *c = e->id + 5; *c; c++) /* req_... -> resp_req... : keep it [A-Za-z0-9_] */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            *c = '_';
    snprintf(e->model, sizeof(e->model), "%.*s", (int)o->model.len, o->model.ptr);
    e->stream = o->stream;
    e->info = o->info;
    e->created = (int64_t)time(NULL);
    e->input_estimate = o->input_tokens_estimate;
    e->secret = o->secret;
    e->open = -1;
    return e;
}

void yr_resp_enc_free(yr_resp_enc_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nitems; i++) {
        yr_buf_free(&e->items[i].text);
        json_decref(e->items[i].blocks);
        free(e->items[i].enc);
    }
    free(e->final);
    free(e);
}

static const char *item_prefix(item_kind_t k)
{
    return k == IT_MESSAGE || k == IT_REFUSAL ? "msg" : k == IT_REASONING ? "rs" : "fc";
}

static item_t *item_new(yr_resp_enc_t *e, item_kind_t k)
{
    if (e->nitems >= sizeof(e->items) / sizeof(e->items[0]))
        return NULL;
    item_t *it = &e->items[e->nitems++];
    memset(it, 0, sizeof(*it));
    it->kind = k;
    char base[64];
    snprintf(base, sizeof(base), "%s", e->id + 5);
    snprintf(it->id, sizeof(it->id), "%s_%s_%llu", item_prefix(k), base,
             (unsigned long long)++e->counter);
    yr_buf_init(&it->text, MAX_OUTPUT_TEXT);
    return it;
}

static json_t *usage_json(const yr_resp_enc_t *e)
{
    int64_t in = e->usage.present ? e->usage.prompt_tokens : e->input_estimate;
    int64_t out = e->usage.completion_tokens;
    return json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}", "input_tokens", (json_int_t)in,
                     "input_tokens_details", "cached_tokens", (json_int_t)e->usage.cached_tokens,
                     "output_tokens", (json_int_t)out, "output_tokens_details",
                     "reasoning_tokens", (json_int_t)e->usage.reasoning_tokens, "total_tokens",
                     (json_int_t)(in + out));
}

/* with_enc: a reasoning item's encrypted_content (the client asked for
 * it, or the store keeps it). */
static json_t *item_json(const item_t *it, bool final, bool with_enc)
{
    const char *status = final || it->done ? "completed" : "in_progress";
    yr_str_t t = {it->text.data ? it->text.data : "", it->text.len};
    switch (it->kind) {
    case IT_MESSAGE:
    case IT_REFUSAL: {
        json_t *content = json_array();
        if ((final || it->done) && it->kind == IT_MESSAGE)
            json_array_append_new(content,
                                  json_pack("{s:s, s:s%, s:[], s:[]}", "type", "output_text",
                                            "text", t.ptr, t.len, "annotations", "logprobs"));
        else if (final || it->done)
            json_array_append_new(content, json_pack("{s:s, s:s%}", "type", "refusal", "refusal",
                                                     t.ptr, t.len));
        return json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "message", "id", it->id, "status",
                         it->incomplete ? "incomplete" : status, "role", "assistant", "content",
                         content);
    }
    case IT_REASONING: {
        json_t *summary = json_array();
        if ((final || it->done) && t.len > 0)
            json_array_append_new(summary,
                                  json_pack("{s:s, s:s%}", "type", "summary_text", "text", t.ptr,
                                            t.len));
        json_t *r = json_pack("{s:s, s:s, s:o}", "type", "reasoning", "id", it->id, "summary",
                              summary);
        if (r != NULL && with_enc && it->enc != NULL)
            json_object_set_new(r, "encrypted_content", json_string(it->enc));
        return r;
    }
    case IT_CALL: {
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s%, s:s}", "type", "function_call", "id",
                              it->id, "call_id", it->call_id, "name", it->name, "arguments",
                              final || it->done ? t.ptr : "", final || it->done ? t.len : 0,
                              "status", status);
        if (c != NULL && it->ns[0] != '\0')
            json_object_set_new(c, "namespace", json_string(it->ns));
        return c;
    }
    }
    return json_null();
}

/* status: completed, incomplete, in_progress or failed. */
static json_t *response_json(const yr_resp_enc_t *e, const char *status, json_t *error,
                             bool with_enc)
{
    json_t *output = json_array();
    if (strcmp(status, "in_progress") != 0)
        for (size_t i = 0; i < e->nitems; i++)
            json_array_append_new(output, item_json(&e->items[i], true, with_enc));
    json_t *r = json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o}", "id", e->id, "object",
                          "response", "created_at", (json_int_t)e->created, "status", status,
                          "model", e->model, "output", output, "error",
                          error != NULL ? error : json_null(), "incomplete_details",
                          strcmp(status, "incomplete") == 0
                              ? json_pack("{s:s}", "reason",
                                          e->finish == YR_FINISH_CONTENT_FILTER
                                              ? "content_filter"
                                              : "max_output_tokens")
                              : json_null());
    /* the request's settings, as OpenAI repeats them */
    json_t *echo = e->info != NULL ? e->info->echo : NULL;
    json_object_set_new(r, "instructions", json_null());
    json_object_set_new(r, "tools", json_array());
    json_object_set_new(r, "tool_choice", json_string("auto"));
    json_object_set_new(r, "parallel_tool_calls", json_true());
    json_object_set_new(r, "temperature", json_real(1.0));
    json_object_set_new(r, "top_p", json_real(1.0));
    json_object_set_new(r, "max_output_tokens", json_null());
    json_object_set_new(r, "previous_response_id", json_null());
    json_object_set_new(r, "reasoning", json_pack("{s:n, s:n}", "effort", "summary"));
    json_object_set_new(r, "text", json_pack("{s:{s:s}}", "format", "type", "text"));
    json_object_set_new(r, "metadata", json_object());
    json_object_set_new(r, "truncation", json_string("disabled"));
    json_object_set_new(r, "user", json_null());
    json_object_set_new(r, "store", json_boolean(e->info != NULL && e->info->store));
    const char *key;
    json_t *v;
    json_object_foreach(echo, key, v) json_object_set(r, key, v);
    if (strcmp(status, "in_progress") != 0)
        json_object_set_new(r, "usage", usage_json(e));
    else
        json_object_set_new(r, "usage", json_null());
    return r;
}

/* Appends `event: TYPE\ndata: {...,"type","sequence_number"}\n\n`; takes data. */
static int emit(yr_resp_enc_t *e, const char *type, json_t *data, yr_buf_t *out)
{
    if (data == NULL)
        return -ENOMEM;
    json_object_set_new(data, "type", json_string(type));
    json_object_set_new(data, "sequence_number", json_integer((json_int_t)e->seq++));
    char *s = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (s == NULL)
        return -ENOMEM;
    int rc = yr_buf_printf(out, "event: %s\ndata: %s\n\n", type, s);
    free(s);
    return rc;
}

static bool client_enc(const yr_resp_enc_t *e)
{
    return e->info != NULL && e->info->include_enc;
}

/* A reasoning item's provider state sealed into its encrypted_content. */
static int seal_item(yr_resp_enc_t *e, item_t *it, json_t *state)
{
    if (state == NULL)
        return -ENOMEM;
    free(it->enc);
    it->enc = yr_resp_state_seal(&e->secret, state);
    json_decref(state);
    return 0;
}

static int close_open(yr_resp_enc_t *e, yr_buf_t *out)
{
    if (e->open < 0)
        return 0;
    item_t *it = &e->items[e->open];
    size_t idx = (size_t)e->open;
    e->open = -1;
    it->done = true;
    if (it->kind == IT_REASONING && json_array_size(it->blocks) > 0 &&
        seal_item(e, it, json_pack("{s:i, s:O}", "v", 1, "b", it->blocks)) < 0)
        return -ENOMEM;
    if (!e->stream)
        return 0;
    yr_str_t t = {it->text.data ? it->text.data : "", it->text.len};
    int rc = 0;
    if (it->kind == IT_MESSAGE || it->kind == IT_REFUSAL) {
        bool ref = it->kind == IT_REFUSAL;
        rc = emit(e, ref ? "response.refusal.done" : "response.output_text.done",
                  ref ? json_pack("{s:s, s:I, s:i, s:s%}", "item_id", it->id, "output_index",
                                  (json_int_t)idx, "content_index", 0, "refusal", t.ptr, t.len)
                      : json_pack("{s:s, s:I, s:i, s:s%, s:[]}", "item_id", it->id,
                                  "output_index", (json_int_t)idx, "content_index", 0, "text",
                                  t.ptr, t.len, "logprobs"),
                  out);
        json_t *part = ref ? json_pack("{s:s, s:s%}", "type", "refusal", "refusal", t.ptr, t.len)
                           : json_pack("{s:s, s:s%, s:[], s:[]}", "type", "output_text", "text",
                                       t.ptr, t.len, "annotations", "logprobs");
        if (rc == 0)
            rc = emit(e, "response.content_part.done",
                      json_pack("{s:s, s:I, s:i, s:o}", "item_id", it->id, "output_index",
                                (json_int_t)idx, "content_index", 0, "part", part),
                      out);
        else
            json_decref(part);
    } else if (t.len > 0) {
        rc = emit(e, "response.reasoning_summary_text.done",
                  json_pack("{s:s, s:I, s:i, s:s%}", "item_id", it->id, "output_index",
                            (json_int_t)idx, "summary_index", 0, "text", t.ptr, t.len),
                  out);
        if (rc == 0)
            rc = emit(e, "response.reasoning_summary_part.done",
                      json_pack("{s:s, s:I, s:i, s:{s:s, s:s%}}", "item_id", it->id,
                                "output_index", (json_int_t)idx, "summary_index", 0, "part",
                                "type", "summary_text", "text", t.ptr, t.len),
                      out);
    }
    if (rc == 0)
        rc = emit(e, "response.output_item.done",
                  json_pack("{s:I, s:o}", "output_index", (json_int_t)idx, "item",
                            item_json(it, true, client_enc(e))),
                  out);
    return rc;
}

/* A new item, announced (stream). */
static item_t *open_item(yr_resp_enc_t *e, item_kind_t k, yr_buf_t *out, int *rc)
{
    item_t *it = item_new(e, k);
    if (it == NULL) {
        *rc = -E2BIG;
        return NULL;
    }
    int idx = (int)(e->nitems - 1);
    *rc = 0;
    if (!e->stream || k == IT_CALL)
        return it;
    *rc = emit(e, "response.output_item.added",
               json_pack("{s:i, s:o}", "output_index", idx, "item", item_json(it, false, false)),
               out);
    if (*rc == 0 && k == IT_MESSAGE)
        *rc = emit(e, "response.content_part.added",
                   json_pack("{s:s, s:i, s:i, s:{s:s, s:s, s:[], s:[]}}", "item_id", it->id,
                             "output_index", idx, "content_index", 0, "part", "type",
                             "output_text", "text", "", "annotations", "logprobs"),
                   out);
    if (*rc == 0 && k == IT_REFUSAL)
        *rc = emit(e, "response.content_part.added",
                   json_pack("{s:s, s:i, s:i, s:{s:s, s:s}}", "item_id", it->id, "output_index",
                             idx, "content_index", 0, "part", "type", "refusal", "refusal", ""),
                   out);
    return *rc == 0 ? it : NULL;
}

static int add_text(yr_resp_enc_t *e, item_t *it, yr_str_t d)
{
    if (d.len > MAX_OUTPUT_TEXT - e->text_bytes || yr_buf_append(&it->text, d.ptr, d.len) < 0)
        return -E2BIG;
    e->text_bytes += d.len;
    return 0;
}

/* A text, refusal or reasoning delta: into the open item of that kind, or
 * a new one. */
static int text_delta(yr_resp_enc_t *e, item_kind_t k, yr_str_t d, yr_buf_t *out)
{
    int rc = 0;
    if (e->open >= 0 && e->items[e->open].kind != k)
        rc = close_open(e, out);
    if (rc != 0)
        return rc;
    if (e->open < 0) {
        if (open_item(e, k, out, &rc) == NULL)
            return rc;
        e->open = (int)(e->nitems - 1);
    }
    item_t *it = &e->items[e->open];
    if (d.len == 0)
        return 0;
    bool first = it->text.len == 0;
    if ((rc = add_text(e, it, d)) != 0)
        return rc;
    if (!e->stream)
        return 0;
    if (k == IT_MESSAGE)
        return emit(e, "response.output_text.delta",
                    json_pack("{s:s, s:i, s:i, s:s%, s:[]}", "item_id", it->id, "output_index",
                              e->open, "content_index", 0, "delta", d.ptr, d.len, "logprobs"),
                    out);
    if (k == IT_REFUSAL)
        return emit(e, "response.refusal.delta",
                    json_pack("{s:s, s:i, s:i, s:s%}", "item_id", it->id, "output_index",
                              e->open, "content_index", 0, "delta", d.ptr, d.len),
                    out);
    if (first)
        rc = emit(e, "response.reasoning_summary_part.added",
                  json_pack("{s:s, s:i, s:i, s:{s:s, s:s}}", "item_id", it->id, "output_index",
                            e->open, "summary_index", 0, "part", "type", "summary_text", "text",
                            ""),
                  out);
    return rc ? rc
              : emit(e, "response.reasoning_summary_text.delta",
                     json_pack("{s:s, s:i, s:i, s:s%}", "item_id", it->id, "output_index",
                               e->open, "summary_index", 0, "delta", d.ptr, d.len),
                     out);
}

/* Reasoning: its text is the summary; a signature ends one Anthropic
 * thinking block (kept, with its text, for encrypted_content); redacted
 * thinking is a block of opaque data. */
static int reasoning(yr_resp_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    int rc = text_delta(e, IT_REASONING, ev->redacted ? YR_STR("") : ev->text, out);
    if (rc != 0 || ev->signature.len == 0)
        return rc;
    item_t *it = &e->items[e->open];
    if (it->blocks == NULL && (it->blocks = json_array()) == NULL)
        return -ENOMEM;
    json_t *b;
    if (ev->redacted) {
        b = json_pack("{s:s, s:s%}", "type", "redacted_thinking", "data", ev->signature.ptr,
                      ev->signature.len);
    } else {
        const char *t = it->text.data ? it->text.data + it->block_start : "";
        b = json_pack("{s:s, s:s%, s:s%}", "type", "thinking", "thinking", t,
                      it->text.len - it->block_start, "signature", ev->signature.ptr,
                      ev->signature.len);
        it->block_start = it->text.len;
    }
    return b != NULL && json_array_append_new(it->blocks, b) == 0 ? 0 : -ENOMEM;
}

static item_t *call_of(yr_resp_enc_t *e, uint32_t index, size_t *idx)
{
    for (size_t i = 0; i < e->nitems; i++) {
        if (e->items[i].kind == IT_CALL && e->items[i].tool_index == index) {
            *idx = i;
            return &e->items[i];
        }
    }
    return NULL;
}

/* A call's name: a flattened namespace tool's (ns__name) back as name and
 * namespace. */
static void call_name(const yr_resp_enc_t *e, item_t *it, yr_str_t name)
{
    json_t *nss = e->info != NULL ? e->info->namespaces : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(nss, i, v)
    {
        size_t n = json_string_length(v);
        if (name.len > n + 2 && memcmp(name.ptr, json_string_value(v), n) == 0 &&
            memcmp(name.ptr + n, NS_SEP, 2) == 0) {
            snprintf(it->ns, sizeof(it->ns), "%s", json_string_value(v));
            snprintf(it->name, sizeof(it->name), "%.*s", (int)(name.len - n - 2), name.ptr + n + 2);
            return;
        }
    }
    snprintf(it->name, sizeof(it->name), "%.*s", (int)name.len, name.ptr);
}

/* Gemini binds a thought signature to a call: a reasoning item right
 * before it carries the signature, sealed, keyed by the call's id. */
static int call_signature(yr_resp_enc_t *e, const item_t *call, yr_str_t sig, yr_buf_t *out)
{
    int rc = 0;
    if (open_item(e, IT_REASONING, out, &rc) == NULL)
        return rc;
    e->open = (int)(e->nitems - 1);
    item_t *rs = &e->items[e->open];
    json_t *s = json_object();
    if (s == NULL || json_object_set_new(s, call->call_id, json_stringn(sig.ptr, sig.len)) < 0) {
        json_decref(s);
        return -ENOMEM;
    }
    if ((rc = seal_item(e, rs, json_pack("{s:i, s:o}", "v", 1, "s", s))) != 0)
        return rc;
    return close_open(e, out);
}

static int tool_start(yr_resp_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    int rc = close_open(e, out);
    if (rc != 0)
        return rc;
    item_t tmp = {0};
    if (ev->id.len > 0) {
        snprintf(tmp.call_id, sizeof(tmp.call_id), "%.*s", (int)ev->id.len, ev->id.ptr);
    } else { /* providers without call ids (Gemini): stable ones per response */
        char base[64];
        snprintf(base, sizeof(base), "%s", e->id + 5);
        snprintf(tmp.call_id, sizeof(tmp.call_id), "call_%s_%u", base, ev->index);
    }
    if (ev->signature.len > 0 && e->secret.key_len > 0 &&
        (rc = call_signature(e, &tmp, ev->signature, out)) != 0)
        return rc;
    item_t *it = open_item(e, IT_CALL, out, &rc);
    if (it == NULL)
        return rc;
    it->tool_index = ev->index;
    memcpy(it->call_id, tmp.call_id, sizeof(it->call_id));
    call_name(e, it, ev->name);
    if (e->stream)
        rc = emit(e, "response.output_item.added",
                  json_pack("{s:I, s:o}", "output_index", (json_int_t)(e->nitems - 1), "item",
                            item_json(it, false, false)),
                  out);
    return rc;
}

/* A call's end: its arguments, then the item. */
static int call_done(yr_resp_enc_t *e, item_t *it, size_t idx, yr_buf_t *out)
{
    it->done = true;
    if (!e->stream)
        return 0;
    yr_str_t t = {it->text.data ? it->text.data : "", it->text.len};
    int rc = emit(e, "response.function_call_arguments.done",
                  json_pack("{s:s, s:I, s:s%}", "item_id", it->id, "output_index",
                            (json_int_t)idx, "arguments", t.ptr, t.len),
                  out);
    if (rc == 0)
        rc = emit(e, "response.output_item.done",
                  json_pack("{s:I, s:o}", "output_index", (json_int_t)idx, "item",
                            item_json(it, true, false)),
                  out);
    return rc;
}

static int end(yr_resp_enc_t *e, yr_buf_t *out)
{
    bool incomplete = e->finish == YR_FINISH_LENGTH || e->finish == YR_FINISH_CONTENT_FILTER;
    if (incomplete && e->open >= 0 && e->items[e->open].kind != IT_REASONING)
        e->items[e->open].incomplete = true;
    int rc = close_open(e, out);
    /* calls the provider never ended: ended now, so no item is left open */
    for (size_t i = 0; rc == 0 && i < e->nitems; i++)
        if (e->items[i].kind == IT_CALL && !e->items[i].done)
            rc = call_done(e, &e->items[i], i, out);
    e->ended = true;
    if (rc != 0)
        return rc;
    const char *status = incomplete ? "incomplete" : "completed";
    json_t *stored = response_json(e, status, NULL, true);
    e->final = stored != NULL ? json_dumps(stored, JSON_COMPACT) : NULL;
    json_decref(stored);
    json_t *r = e->final != NULL ? response_json(e, status, NULL, client_enc(e)) : NULL;
    if (r == NULL)
        return -ENOMEM;
    if (e->stream)
        return emit(e, incomplete ? "response.incomplete" : "response.completed",
                    json_pack("{s:o}", "response", r), out);
    char *s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    rc = s != NULL ? yr_buf_append_str(out, yr_str(s)) : -ENOMEM;
    free(s);
    return rc;
}

int yr_resp_enc_event(yr_resp_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (e->ended || e->failed)
        return -EINVAL;
    size_t had = out->len;
    int rc = 0;
    if (!e->started && ev->type != YR_EV_ERROR) {
        e->started = true;
        if (e->stream) {
            rc = emit(e, "response.created",
                      json_pack("{s:o}", "response", response_json(e, "in_progress", NULL, false)),
                      out);
            if (rc == 0)
                rc = emit(e, "response.in_progress",
                          json_pack("{s:o}", "response",
                                    response_json(e, "in_progress", NULL, false)),
                          out);
        }
    }
    if (rc != 0) {
        out->len = had;
        return rc;
    }
    switch (ev->type) {
    case YR_EV_START:
        if (ev->usage.present)
            e->usage = ev->usage;
        break;
    case YR_EV_TEXT: rc = text_delta(e, IT_MESSAGE, ev->text, out); break;
    case YR_EV_REFUSAL: rc = text_delta(e, IT_REFUSAL, ev->text, out); break;
    case YR_EV_REASONING: rc = reasoning(e, ev, out); break;
    case YR_EV_TOOL_START: rc = tool_start(e, ev, out); break;
    case YR_EV_TOOL_ARGS: {
        size_t idx;
        item_t *it = call_of(e, ev->index, &idx);
        if (it == NULL) {
            rc = -EINVAL;
            break;
        }
        rc = add_text(e, it, ev->text);
        if (rc == 0 && e->stream && ev->text.len > 0)
            rc = emit(e, "response.function_call_arguments.delta",
                      json_pack("{s:s, s:I, s:s%}", "item_id", it->id, "output_index",
                                (json_int_t)idx, "delta", ev->text.ptr, ev->text.len),
                      out);
        break;
    }
    case YR_EV_TOOL_END: {
        size_t idx;
        item_t *it = call_of(e, ev->index, &idx);
        if (it != NULL && !it->done)
            rc = call_done(e, it, idx, out);
        break;
    }
    case YR_EV_FINISH: e->finish = ev->finish; break;
    case YR_EV_USAGE: e->usage = ev->usage; break;
    case YR_EV_END: rc = end(e, out); break;
    case YR_EV_ERROR: rc = -EINVAL; break;
    }
    if (rc != 0)
        out->len = had;
    return rc;
}

const char *yr_resp_enc_final(const yr_resp_enc_t *e)
{
    return e->final;
}

const char *yr_resp_enc_id(const yr_resp_enc_t *e)
{
    return e->id;
}

int yr_resp_enc_fail(yr_resp_enc_t *e, yr_err_t err, yr_str_t message, yr_buf_t *out)
{
    e->failed = true;
    /* OpenAI's Responses error codes: server_error or rate_limit_exceeded */
    const char *code = err == YR_E_RATE_LIMITED ? "rate_limit_exceeded" : "server_error";
    json_t *error = json_pack("{s:s, s:s%}", "code", code, "message", message.ptr, message.len);
    return emit(e, "response.failed",
                json_pack("{s:o}", "response", response_json(e, "failed", error, client_enc(e))),
                out);
}
