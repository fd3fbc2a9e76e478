/* OpenAI out, Anthropic back: the non-streamed message and the stream
 * encoder of the Anthropic inbound endpoint (the request half is
 * anthropic_in.c). Written directly with the sticky-error writer: these
 * shapes are small and fixed. */
#include "api/anthropic_in.h"
#include "api/anthropic_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest id / name of a tool call the stream encoder keeps. */
#define TOOL_STR_MAX 256
/* Longest matched stop sequence reported back. */
#define STOP_SEQ_MAX 4096

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

static void w_usage(yr_aj_w_t *w, const usage_t *u)
{
    yr_aj_w_raw(w, "{\"input_tokens\":");
    yr_aj_w_int(w, u->input);
    yr_aj_w_raw(w, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":");
    yr_aj_w_int(w, u->cached);
    yr_aj_w_raw(w, ",\"output_tokens\":");
    yr_aj_w_int(w, u->output);
    yr_aj_w_raw(w, "}");
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
    if (!yr_aj_jstr_is(fr, "stop"))
        return NULL;
    json_t *s = json_object_get(choice, "stop_reason");
    if (!json_is_string(s))
        s = json_object_get(choice, "matched_stop");
    return json_is_string(s) && json_string_length(s) > 0 ? s : NULL;
}

/* A string, or null/absent; anything else is malformed. */
static int opt_string(json_t *obj, const char *key, yr_str_t *out)
{
    json_t *v = yr_aj_opt_get(obj, key);
    *out = YR_STR_NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -EINVAL;
    *out = yr_aj_jstr_slice(v);
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
    json_t *c = yr_aj_opt_get(msg, "content");
    if (c == NULL)
        return 0;
    if (json_is_string(c))
        return yr_buf_append_str(text, yr_aj_jstr_slice(c));
    if (!json_is_array(c))
        return -EINVAL;
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (!json_is_object(p))
            return -EINVAL;
        if (!yr_aj_jstr_is(json_object_get(p, "type"), "text"))
            continue;
        if (!json_is_string(t))
            return -EINVAL;
        int rc = yr_buf_append_str(text, yr_aj_jstr_slice(t));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Writes "," before every list item but the first. */
static void w_item(yr_aj_w_t *w, bool *first)
{
    if (!*first)
        yr_aj_w_raw(w, ",");
    *first = false;
}

static int check_tool_call(json_t *call)
{
    json_t *type = yr_aj_opt_get(call, "type");
    json_t *fn = json_object_get(call, "function");
    json_t *name = json_object_get(fn, "name");
    json_t *args = yr_aj_opt_get(fn, "arguments");
    if (!json_is_object(call) || (type != NULL && !yr_aj_jstr_is(type, "function")) ||
        !json_is_string(name) || json_string_length(name) == 0 ||
        (args != NULL && !json_is_string(args) && !json_is_object(args)))
        return -EINVAL;
    return 0;
}

/* One (checked) tool call -> a tool_use block. Arguments that parse as a
 * JSON object are copied byte for byte (numbers keep their spelling); empty
 * or invalid arguments become {}. */
static void w_tool_use(yr_aj_w_t *w, json_t *call, size_t i, const char *msg_id)
{
    json_t *fn = json_object_get(call, "function");
    json_t *id = json_object_get(call, "id");
    json_t *args = yr_aj_opt_get(fn, "arguments");
    yr_aj_w_raw(w, "{\"type\":\"tool_use\",\"id\":");
    if (json_is_string(id) && json_string_length(id) > 0) {
        yr_aj_w_str(w, yr_aj_jstr_slice(id));
    } else {
        char tmp[4 + ID_SUFFIX_MAX + 32];
        snprintf(tmp, sizeof(tmp), "toolu_%s_%zu", msg_id + 4, i);
        yr_aj_w_cstr(w, tmp);
    }
    yr_aj_w_raw(w, ",\"name\":");
    yr_aj_w_str(w, yr_aj_jstr_slice(json_object_get(fn, "name")));
    yr_aj_w_raw(w, ",\"input\":");
    if (json_is_object(args)) { /* some servers send the object itself */
        if (w->rc == 0)
            w->rc = yr_aj_dump_json(w->b, args, 0);
    } else {
        yr_str_t a = args ? yr_aj_jstr_slice(args) : YR_STR("");
        json_t *parsed = json_loadb(a.ptr, a.len, JSON_DECODE_INT_AS_REAL, NULL);
        /* jansson accepted it: valid JSON, no trailing garbage, safe to copy. */
        yr_aj_w_bytes(w, json_is_object(parsed) ? a : YR_STR("{}"));
        json_decref(parsed);
    }
    yr_aj_w_raw(w, "}");
}

static int write_response(json_t *root, yr_str_t completion, yr_str_t model, yr_aj_w_t *w)
{
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *fr = yr_aj_opt_get(choice, "finish_reason");
    json_t *calls = yr_aj_opt_get(msg, "tool_calls");
    yr_str_t reasoning, refusal, oid;
    if (!json_is_object(msg) || (fr != NULL && !json_is_string(fr)) ||
        (calls != NULL && !json_is_array(calls)) || reasoning_of(msg, &reasoning) < 0 ||
        opt_string(msg, "refusal", &refusal) < 0 || opt_string(root, "id", &oid) < 0)
        return -EINVAL;
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call)
    {
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
    yr_aj_make_msg_id(id, oid, yr_aj_fnv1a(completion, 0xcbf29ce484222325ULL));
    if (model.len == 0)
        model = yr_aj_jstr_slice(json_object_get(root, "model"));

    yr_aj_w_raw(w, "{\"id\":");
    yr_aj_w_cstr(w, id);
    yr_aj_w_raw(w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    yr_aj_w_str(w, model.ptr ? model : YR_STR(""));
    yr_aj_w_raw(w, ",\"content\":[");
    bool first = true;
    if (reasoning.len > 0) {
        w_item(w, &first);
        yr_aj_w_raw(w, "{\"type\":\"thinking\",\"thinking\":");
        yr_aj_w_str(w, reasoning);
        yr_aj_w_raw(w, ",\"signature\":\"\"}");
    }
    if (text.len > 0) {
        w_item(w, &first);
        yr_aj_w_raw(w, "{\"type\":\"text\",\"text\":");
        yr_aj_w_str(w, (yr_str_t){text.data, text.len});
        yr_aj_w_raw(w, "}");
    }
    json_array_foreach(calls, i, call)
    {
        w_item(w, &first);
        w_tool_use(w, call, i, id);
    }
    json_t *stop = matched_stop(choice);
    bool tools = json_array_size(calls) > 0;
    const char *reason = map_finish(json_string_value(fr), tools, refused, stop != NULL);
    yr_aj_w_raw(w, "],\"stop_reason\":");
    yr_aj_w_cstr(w, reason);
    yr_aj_w_raw(w, ",\"stop_sequence\":");
    if (strcmp(reason, "stop_sequence") == 0)
        yr_aj_w_str(w, yr_aj_jstr_slice(stop));
    else
        yr_aj_w_raw(w, "null");
    usage_t u = usage_from(json_object_get(root, "usage"));
    yr_aj_w_raw(w, ",\"usage\":");
    w_usage(w, &u);
    yr_aj_w_raw(w, "}");
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
    yr_aj_w_t w = {out, 0};
    int rc = write_response(root, completion, model, &w);
    json_decref(root);
    return yr_aj_restore(out, start, rc);
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
        yr_aj_make_msg_id(e->id, id_seed, yr_aj_fnv1a(id_seed, 0xcbf29ce484222325ULL));
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

static void ev_begin(yr_aj_w_t *w, const char *name)
{
    yr_aj_w_raw(w, "event: ");
    yr_aj_w_raw(w, name);
    yr_aj_w_raw(w, "\ndata: ");
}

static void ev_end(yr_aj_w_t *w)
{
    yr_aj_w_raw(w, "\n\n");
}

static void emit_message_start(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    ev_begin(w, "message_start");
    yr_aj_w_raw(w, "{\"type\":\"message_start\",\"message\":{\"id\":");
    yr_aj_w_cstr(w, e->id);
    yr_aj_w_raw(w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    yr_aj_w_str(w, (yr_str_t){e->model, e->model_len});
    yr_aj_w_raw(w, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    usage_t u = e->usage;
    u.output = 0; /* nothing generated yet */
    w_usage(w, &u);
    yr_aj_w_raw(w, "}}");
    ev_end(w);
    ev_begin(w, "ping");
    yr_aj_w_raw(w, "{\"type\":\"ping\"}");
    ev_end(w);
}

static void emit_close(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    if (e->open == BLK_NONE)
        return;
    ev_begin(w, "content_block_stop");
    yr_aj_w_raw(w, "{\"type\":\"content_block_stop\",\"index\":");
    yr_aj_w_int(w, (int64_t)e->next_block - 1);
    yr_aj_w_raw(w, "}");
    ev_end(w);
    if (e->open == BLK_TOOL)
        e->tools[e->open_tool].closed = true;
    e->open = BLK_NONE;
}

static void emit_block_start_head(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    ev_begin(w, "content_block_start");
    yr_aj_w_raw(w, "{\"type\":\"content_block_start\",\"index\":");
    yr_aj_w_int(w, e->next_block++);
    yr_aj_w_raw(w, ",\"content_block\":");
}

static void emit_delta(yr_anth_enc_t *e, yr_aj_w_t *w, const char *type, const char *field,
                       yr_str_t s)
{
    ev_begin(w, "content_block_delta");
    yr_aj_w_raw(w, "{\"type\":\"content_block_delta\",\"index\":");
    yr_aj_w_int(w, (int64_t)e->next_block - 1);
    yr_aj_w_raw(w, ",\"delta\":{\"type\":\"");
    yr_aj_w_raw(w, type);
    yr_aj_w_raw(w, "\",\"");
    yr_aj_w_raw(w, field);
    yr_aj_w_raw(w, "\":");
    yr_aj_w_str(w, s);
    yr_aj_w_raw(w, "}}");
    ev_end(w);
}

/* Opens a thinking or text block unless one of that kind is open. */
static void open_plain(yr_anth_enc_t *e, yr_aj_w_t *w, blk_t kind)
{
    if (e->open == kind)
        return;
    emit_close(e, w);
    emit_block_start_head(e, w);
    yr_aj_w_raw(w, kind == BLK_TEXT
                       ? "{\"type\":\"text\",\"text\":\"\"}}"
                       : "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}");
    ev_end(w);
    e->open = kind;
}

/* Opens the tool_use block of call j and sends what was held back for it. */
static void open_tool(yr_anth_enc_t *e, yr_aj_w_t *w, size_t j)
{
    enc_tool_t *t = &e->tools[j];
    emit_close(e, w);
    emit_block_start_head(e, w);
    yr_aj_w_raw(w, "{\"type\":\"tool_use\",\"id\":");
    if (t->id_len > 0) {
        yr_aj_w_str(w, (yr_str_t){t->id, t->id_len});
    } else {
        char tmp[4 + ID_SUFFIX_MAX + 32];
        snprintf(tmp, sizeof(tmp), "toolu_%s_%zu", e->id + 4, j);
        yr_aj_w_cstr(w, tmp);
    }
    yr_aj_w_raw(w, ",\"name\":");
    yr_aj_w_str(w, (yr_str_t){t->name, t->name_len});
    yr_aj_w_raw(w, ",\"input\":{}}}");
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
static void advance_tools(yr_anth_enc_t *e, yr_aj_w_t *w)
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
static int enc_tool_delta(yr_anth_enc_t *e, json_t *tc, size_t pos, yr_aj_w_t *w)
{
    if (!json_is_object(tc))
        return -EINVAL;
    json_t *index = yr_aj_opt_get(tc, "index");
    json_t *fn = yr_aj_opt_get(tc, "function");
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
static int enc_close_all(yr_anth_enc_t *e, yr_aj_w_t *w)
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

static int enc_finish_reason(yr_anth_enc_t *e, json_t *choice, const char *fr, yr_aj_w_t *w)
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
        if (yr_buf_append_str(&e->stop_seq, yr_aj_jstr_slice(stop)) < 0)
            return -ENOMEM;
        e->have_stop_seq = true;
    }
    e->finish_seen = true;
    return enc_close_all(e, w);
}

static int enc_choice(yr_anth_enc_t *e, json_t *choice, yr_aj_w_t *w)
{
    json_t *delta = yr_aj_opt_get(choice, "delta");
    json_t *fr = yr_aj_opt_get(choice, "finish_reason");
    if ((delta != NULL && !json_is_object(delta)) || (fr != NULL && !json_is_string(fr)))
        return -EINVAL;
    yr_str_t reasoning, content, refusal;
    json_t *calls = yr_aj_opt_get(delta, "tool_calls");
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
    json_array_foreach(calls, k, tc)
    {
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

static int enc_choices(yr_anth_enc_t *e, json_t *choices, yr_aj_w_t *w)
{
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch)
    {
        json_t *idx = yr_aj_opt_get(ch, "index");
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

static int enc_chunk(yr_anth_enc_t *e, yr_str_t data, yr_aj_w_t *w)
{
    json_t *root = json_loadb(data.ptr, data.len, 0, NULL);
    json_t *choices = yr_aj_opt_get(root, "choices");
    json_t *usage = yr_aj_opt_get(root, "usage");
    yr_str_t cid;
    int rc = -EINVAL;
    if (!json_is_object(root) || yr_aj_opt_get(root, "error") != NULL ||
        (choices != NULL && !json_is_array(choices)) || (usage != NULL && !json_is_object(usage)) ||
        opt_string(root, "id", &cid) < 0)
        goto out;
    if (usage != NULL) {
        e->usage = usage_from(usage);
        e->have_usage = true;
    }
    if (!e->started) {
        if (!e->have_id)
            yr_aj_make_msg_id(e->id, cid, yr_aj_fnv1a(data, 0xcbf29ce484222325ULL) ^ (uintptr_t)e);
        e->have_id = true;
        emit_message_start(e, w);
        e->started = true;
    }
    rc = enc_choices(e, choices, w);
out:
    json_decref(root);
    return rc;
}

static int enc_end(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    if (!e->started) {
        if (!e->have_id)
            yr_aj_make_msg_id(e->id, YR_STR_NULL, (uintptr_t)e);
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
    yr_aj_w_raw(w, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    yr_aj_w_cstr(w, stop);
    yr_aj_w_raw(w, ",\"stop_sequence\":");
    if (strcmp(stop, "stop_sequence") == 0)
        yr_aj_w_str(w, (yr_str_t){e->stop_seq.data, e->stop_seq.len});
    else
        yr_aj_w_raw(w, "null");
    yr_aj_w_raw(w, "},\"usage\":");
    if (e->have_usage) {
        w_usage(w, &e->usage);
    } else {
        yr_aj_w_raw(w, "{\"output_tokens\":0}");
    }
    yr_aj_w_raw(w, "}");
    ev_end(w);
    ev_begin(w, "message_stop");
    yr_aj_w_raw(w, "{\"type\":\"message_stop\"}");
    ev_end(w);
    return w->rc;
}

/* Runs one step with `out` restored and the encoder failed on error. */
static int enc_step(yr_anth_enc_t *e, yr_buf_t *out, int rc, size_t start)
{
    if (rc < 0) {
        e->failed = true;
        return yr_aj_restore(out, start, rc);
    }
    return 0;
}

int yr_anth_enc_event(yr_anth_enc_t *e, yr_str_t data, yr_buf_t *out)
{
    if (e->failed || e->finished)
        return -EINVAL;
    size_t start = out->len;
    yr_aj_w_t w = {out, 0};
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
    yr_aj_w_t w = {out, 0};
    int rc = enc_end(e, &w);
    if (rc == 0)
        e->finished = true;
    return enc_step(e, out, rc, start);
}

int yr_anth_enc_error(yr_anth_enc_t *e, const char *type, const char *message, yr_buf_t *out)
{
    size_t start = out->len;
    yr_aj_w_t w = {out, 0};
    ev_begin(&w, "error");
    yr_aj_w_raw(&w, "{\"type\":\"error\",\"error\":{\"type\":");
    yr_aj_w_cstr(&w, type ? type : "api_error");
    yr_aj_w_raw(&w, ",\"message\":");
    yr_aj_w_cstr(&w, message ? message : "");
    yr_aj_w_raw(&w, "}}");
    ev_end(&w);
    e->failed = true; /* the stream is over either way */
    return yr_aj_restore(out, start, w.rc);
}
