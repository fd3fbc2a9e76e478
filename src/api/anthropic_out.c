/* Typed events in, Anthropic out: the encoder of the Anthropic inbound
 * endpoint (the request half is anthropic_in.c). One encoder type serves
 * both modes:
 *
 *   stream   each event becomes the Anthropic events it implies, appended
 *            as soon as they can be sent (message_start with START, its
 *            usage START's when the provider sent some with its opening
 *            message, else the input estimate);
 *   message  events are collected into content blocks and the whole
 *            message JSON is appended at END.
 *
 * Written directly with the sticky-error writer: these shapes are small and
 * fixed. */
#include "api/anthropic_in.h"
#include "api/anthropic_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest id / name of a tool call the encoder keeps. */
#define TOOL_STR_MAX 256
/* Longest matched stop sequence reported back. */
#define STOP_SEQ_MAX 4096
/* Longest thinking signature (or redacted_thinking data) kept in a message. */
#define SIGNATURE_MAX (1024 * 1024)
#define FNV_SEED 0xcbf29ce484222325ULL

typedef enum { BLK_NONE, BLK_THINKING, BLK_TEXT, BLK_TOOL } blk_t;

typedef struct {
    char id[TOOL_STR_MAX + 1];
    char name[TOOL_STR_MAX + 1];
    size_t id_len, name_len;
    bool seen;     /* TOOL_START arrived */
    bool opened;   /* stream: its block was started; message: it was written */
    bool closed;   /* stream: its block was stopped */
    bool ended;    /* TOOL_END arrived */
    yr_buf_t held; /* stream: fragments not sent yet; message: all arguments */
    /* Shape of the argument text so far, to tell when it is a complete JSON
     * object (then the call is over and the next one may open). */
    uint32_t depth;
    bool started, in_str, esc, broken;
} enc_tool_t;

struct yr_anth_enc {
    bool stream;
    char model[YR_ANTH_MODEL_MAX + 1];
    size_t model_len;
    char id[4 + ID_SUFFIX_MAX + 1];
    bool have_id;
    uint64_t hash; /* of what arrived: the id when there is none */
    int64_t estimate;
    bool got_start; /* START arrived */
    bool begun;     /* stream: message_start was sent */
    bool finish_seen, finished, failed, refusal, tools_sent;
    blk_t open;
    bool open_signed; /* the open thinking block got its signature */
    size_t open_tool;
    uint32_t next_block; /* Anthropic index of the next content block */
    enc_tool_t *tools;
    size_t ntools;
    size_t held_total;
    yr_finish_t finish;
    yr_buf_t stop_seq;
    bool have_stop_seq;
    bool have_usage;
    yr_usage_t usage;
    /* message mode */
    yr_buf_t content; /* the JSON of the blocks written so far */
    yr_buf_t cur;     /* the text of the open text or thinking block */
    yr_buf_t sig;     /* the open thinking block's signature */
};

/* ---- shared -------------------------------------------------------------- */

static int64_t clamp0(int64_t v)
{
    return v > 0 ? v : 0;
}

/* Anthropic counts input apart from cache reads and writes; the internal
 * model counts every input token in prompt_tokens. */
static void w_usage(yr_aj_w_t *w, const yr_usage_t *u, bool output, bool message)
{
    int64_t prompt = clamp0(u->prompt_tokens);
    int64_t cached = clamp0(u->cached_tokens) < prompt ? clamp0(u->cached_tokens) : prompt;
    int64_t written = clamp0(u->cache_write_tokens);
    yr_aj_w_raw(w, "{\"input_tokens\":");
    yr_aj_w_int(w, clamp0(prompt - cached - written));
    yr_aj_w_raw(w, ",\"cache_creation_input_tokens\":");
    yr_aj_w_int(w, written);
    yr_aj_w_raw(w, ",\"cache_read_input_tokens\":");
    yr_aj_w_int(w, cached);
    yr_aj_w_raw(w, ",\"output_tokens\":");
    yr_aj_w_int(w, output ? clamp0(u->completion_tokens) : 0);
    /* The SDKs' Usage type has these too (nullable): a message carries them
     * so that strictly validating clients accept it. */
    if (message)
        yr_aj_w_raw(w, ",\"cache_creation\":null,\"server_tool_use\":null,\"service_tier\":null");
    yr_aj_w_raw(w, "}");
}

/* The finish reason (in OpenAI's terms) -> Anthropic's stop_reason. */
static const char *stop_reason(const yr_anth_enc_t *e)
{
    if (e->refusal || (e->finish_seen && e->finish == YR_FINISH_CONTENT_FILTER))
        return "refusal";
    if (e->finish_seen && e->finish == YR_FINISH_LENGTH)
        return "max_tokens";
    if (e->tools_sent)
        return "tool_use";
    if (e->have_stop_seq)
        return "stop_sequence";
    return "end_turn";
}

static void w_stop(yr_aj_w_t *w, const yr_anth_enc_t *e)
{
    const char *reason = stop_reason(e);
    yr_aj_w_raw(w, "\"stop_reason\":");
    yr_aj_w_cstr(w, reason);
    yr_aj_w_raw(w, ",\"stop_sequence\":");
    if (strcmp(reason, "stop_sequence") == 0)
        yr_aj_w_str(w, (yr_str_t){e->stop_seq.data, e->stop_seq.len});
    else
        yr_aj_w_raw(w, "null");
}

/* The message id, made once: from the seed, START's id, or a hash. */
static const char *msg_id(yr_anth_enc_t *e)
{
    if (!e->have_id) {
        /* A stream's hash is of little more than START: the encoder's
         * address keeps two id-less streams apart. */
        yr_aj_make_msg_id(e->id, YR_STR_NULL, e->stream ? e->hash ^ (uintptr_t)e : e->hash);
        e->have_id = true;
    }
    return e->id;
}

static void w_tool_id(yr_aj_w_t *w, yr_anth_enc_t *e, const enc_tool_t *t, size_t j)
{
    if (t->id_len > 0) {
        yr_aj_w_str(w, (yr_str_t){t->id, t->id_len});
        return;
    }
    char tmp[4 + ID_SUFFIX_MAX + 32];
    snprintf(tmp, sizeof(tmp), "toolu_%s_%zu", msg_id(e) + 4, j);
    yr_aj_w_cstr(w, tmp);
}

yr_anth_enc_t *yr_anth_enc_new(yr_str_t model, yr_str_t id_seed, bool stream,
                               int64_t input_tokens_estimate)
{
    yr_anth_enc_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->stream = stream;
    e->estimate = clamp0(input_tokens_estimate);
    e->model_len = model.len < YR_ANTH_MODEL_MAX ? model.len : YR_ANTH_MODEL_MAX;
    if (e->model_len > 0)
        memcpy(e->model, model.ptr, e->model_len);
    if (id_seed.len > 0) {
        yr_aj_make_msg_id(e->id, id_seed, yr_aj_fnv1a(id_seed, FNV_SEED));
        e->have_id = true;
    }
    e->hash = FNV_SEED;
    yr_buf_init(&e->stop_seq, STOP_SEQ_MAX);
    yr_buf_init(&e->content, YR_ANTH_ENC_MAX_MESSAGE);
    yr_buf_init(&e->cur, YR_ANTH_ENC_MAX_MESSAGE);
    yr_buf_init(&e->sig, SIGNATURE_MAX);
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
    yr_buf_free(&e->content);
    yr_buf_free(&e->cur);
    yr_buf_free(&e->sig);
    free(e);
}

bool yr_anth_enc_done(const yr_anth_enc_t *e)
{
    return e->finished || e->failed;
}

static int tool_slot(yr_anth_enc_t *e, uint32_t index, enc_tool_t **out)
{
    if (index >= YR_ANTH_ENC_MAX_TOOLS)
        return -EINVAL;
    size_t j = index;
    if (j >= e->ntools) {
        enc_tool_t *t = realloc(e->tools, (j + 1) * sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        memset(t + e->ntools, 0, (j + 1 - e->ntools) * sizeof(*t));
        size_t cap = e->stream ? YR_ANTH_ENC_MAX_PENDING : YR_ANTH_ENC_MAX_MESSAGE;
        for (size_t k = e->ntools; k <= j; k++)
            yr_buf_init(&t[k].held, cap);
        e->tools = t;
        e->ntools = j + 1;
    }
    *out = &e->tools[j];
    return 0;
}

static int copy_small(char *dst, size_t *dst_len, yr_str_t s)
{
    if (s.len > TOOL_STR_MAX)
        return -EINVAL;
    if (s.len > 0)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    *dst_len = s.len;
    return 0;
}

/* TOOL_START: a new call with a name. */
static int tool_begin(yr_anth_enc_t *e, const yr_event_t *ev, enc_tool_t **out)
{
    enc_tool_t *t;
    int rc = tool_slot(e, ev->index, &t);
    if (rc < 0)
        return rc;
    if (t->seen || ev->name.len == 0)
        return -EINVAL; /* started twice, or a call without a name */
    if (copy_small(t->id, &t->id_len, ev->id) < 0 ||
        copy_small(t->name, &t->name_len, ev->name) < 0)
        return -EINVAL;
    t->seen = true;
    *out = t;
    return 0;
}

/* TOOL_ARGS / TOOL_END: a call that was started. */
static int tool_known(yr_anth_enc_t *e, const yr_event_t *ev, enc_tool_t **out)
{
    if (ev->index >= e->ntools || !e->tools[ev->index].seen)
        return -EINVAL;
    *out = &e->tools[ev->index];
    return 0;
}

static void on_start(yr_anth_enc_t *e, const yr_event_t *ev)
{
    e->got_start = true;
    if (ev->usage.present) { /* reported with the opening message */
        e->usage = ev->usage;
        e->have_usage = true;
    }
    if (!e->have_id && ev->id.len > 0) {
        yr_aj_make_msg_id(e->id, ev->id, yr_aj_fnv1a(ev->id, FNV_SEED));
        e->have_id = true;
    }
    if (e->model_len == 0) {
        e->model_len = ev->name.len < YR_ANTH_MODEL_MAX ? ev->name.len : YR_ANTH_MODEL_MAX;
        if (e->model_len > 0)
            memcpy(e->model, ev->name.ptr, e->model_len);
    }
}

static int on_finish(yr_anth_enc_t *e, const yr_event_t *ev)
{
    e->finish = ev->finish;
    e->finish_seen = true;
    if (ev->stop_sequence.len > 0 && ev->stop_sequence.len <= STOP_SEQ_MAX) {
        yr_buf_reset(&e->stop_seq);
        if (yr_buf_append_str(&e->stop_seq, ev->stop_sequence) < 0)
            return -ENOMEM;
        e->have_stop_seq = true;
    }
    return 0;
}

static void hash_event(yr_anth_enc_t *e, const yr_event_t *ev)
{
    uint64_t h = yr_aj_fnv1a(ev->id, e->hash ^ (uint64_t)ev->type);
    h = yr_aj_fnv1a(ev->name, h);
    h = yr_aj_fnv1a(ev->text, h);
    e->hash = yr_aj_fnv1a(ev->signature, h);
}

/* ---- stream -------------------------------------------------------------- */

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
    yr_aj_w_cstr(w, msg_id(e));
    yr_aj_w_raw(w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    yr_aj_w_str(w, (yr_str_t){e->model, e->model_len});
    yr_aj_w_raw(w, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    /* The provider's figures when it sent them with its opening message;
     * else the estimate (clients such as LangChain read input tokens only
     * here). */
    yr_usage_t u = e->have_usage ? e->usage : (yr_usage_t){.prompt_tokens = e->estimate};
    w_usage(w, &u, false, true); /* nothing generated yet */
    yr_aj_w_raw(w, "}}");
    ev_end(w);
    ev_begin(w, "ping");
    yr_aj_w_raw(w, "{\"type\":\"ping\"}");
    ev_end(w);
}

static void begin(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    if (e->begun)
        return;
    emit_message_start(e, w);
    e->begun = true;
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
    e->open_signed = false;
}

/* Opens the tool_use block of call j and sends what was held back for it. */
static void open_tool(yr_anth_enc_t *e, yr_aj_w_t *w, size_t j)
{
    enc_tool_t *t = &e->tools[j];
    emit_close(e, w);
    emit_block_start_head(e, w);
    yr_aj_w_raw(w, "{\"type\":\"tool_use\",\"id\":");
    w_tool_id(w, e, t, j);
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

/* The lowest-index call that was started and has no block yet. */
static bool next_held(const yr_anth_enc_t *e, size_t *j)
{
    for (size_t k = 0; k < e->ntools; k++) {
        const enc_tool_t *t = &e->tools[k];
        if (t->seen && !t->opened) {
            *j = k;
            return true;
        }
    }
    return false;
}

/* Nothing, or a tool block whose arguments are complete, is in the way of
 * the next held call: open it (and close it again if it has ended). */
static void advance_tools(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    size_t j;
    while (
        w->rc == 0 &&
        (e->open == BLK_NONE || (e->open == BLK_TOOL && tool_complete(&e->tools[e->open_tool]))) &&
        next_held(e, &j)) {
        open_tool(e, w, j);
        if (e->tools[j].ended)
            emit_close(e, w);
    }
}

static bool all_space(yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] != ' ' && s.ptr[i] != '\t' && s.ptr[i] != '\n' && s.ptr[i] != '\r')
            return false;
    return true;
}

static bool free_to_open(const yr_anth_enc_t *e)
{
    return e->open != BLK_TOOL || tool_complete(&e->tools[e->open_tool]);
}

static int stream_tool_start(yr_anth_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w)
{
    enc_tool_t *t;
    int rc = tool_begin(e, ev, &t);
    if (rc < 0)
        return rc;
    if (free_to_open(e))
        open_tool(e, w, ev->index);
    advance_tools(e, w);
    return w->rc;
}

static int stream_tool_args(yr_anth_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w)
{
    enc_tool_t *t;
    size_t j = ev->index;
    int rc = tool_known(e, ev, &t);
    if (rc < 0)
        return rc;
    if (t->closed) /* a late fragment: harmless only if it adds nothing */
        return all_space(ev->text) ? 0 : -EINVAL;
    args_scan(t, ev->text);
    if (e->open == BLK_TOOL && e->open_tool == j) {
        if (ev->text.len > 0)
            emit_delta(e, w, "input_json_delta", "partial_json", ev->text);
    } else {
        if (ev->text.len > YR_ANTH_ENC_MAX_PENDING - e->held_total)
            return -E2BIG;
        if ((rc = yr_buf_append_str(&t->held, ev->text)) < 0)
            return rc;
        e->held_total += ev->text.len;
        if (free_to_open(e))
            open_tool(e, w, j);
    }
    advance_tools(e, w);
    return w->rc;
}

static int stream_tool_end(yr_anth_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w)
{
    enc_tool_t *t;
    int rc = tool_known(e, ev, &t);
    if (rc < 0)
        return rc;
    t->ended = true;
    if (e->open == BLK_TOOL && e->open_tool == ev->index) {
        emit_close(e, w);
        advance_tools(e, w);
    }
    return w->rc;
}

static void stream_reasoning(yr_anth_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w)
{
    if (ev->redacted) { /* opaque: a block of its own, start and stop */
        emit_close(e, w);
        emit_block_start_head(e, w);
        yr_aj_w_raw(w, "{\"type\":\"redacted_thinking\",\"data\":");
        yr_aj_w_str(w, ev->signature);
        yr_aj_w_raw(w, "}}");
        ev_end(w);
        e->open = BLK_THINKING;
        emit_close(e, w);
        return;
    }
    if (ev->text.len > 0) {
        if (e->open == BLK_THINKING && e->open_signed)
            emit_close(e, w); /* a signed block is complete: this is a new one */
        open_plain(e, w, BLK_THINKING);
        emit_delta(e, w, "thinking_delta", "thinking", ev->text);
    }
    if (ev->signature.len > 0) {
        if (e->open == BLK_THINKING && e->open_signed)
            emit_close(e, w);
        open_plain(e, w, BLK_THINKING);
        emit_delta(e, w, "signature_delta", "signature", ev->signature);
        e->open_signed = true;
    }
}

/* Closes the open block and sends every held-back call, in index order. */
static int close_all(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    emit_close(e, w);
    for (size_t k = 0; w->rc == 0 && k < e->ntools; k++) {
        enc_tool_t *t = &e->tools[k];
        if (!t->seen || t->opened)
            continue;
        open_tool(e, w, k);
        emit_close(e, w);
    }
    return w->rc;
}

static int stream_end(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    begin(e, w);
    int rc = close_all(e, w);
    if (rc < 0)
        return rc;
    ev_begin(w, "message_delta");
    yr_aj_w_raw(w, "{\"type\":\"message_delta\",\"delta\":{");
    w_stop(w, e);
    yr_aj_w_raw(w, "},\"usage\":");
    if (e->have_usage)
        w_usage(w, &e->usage, true, false); /* the exact figures, input included */
    else
        yr_aj_w_raw(w, "{\"output_tokens\":0}");
    yr_aj_w_raw(w, "}");
    ev_end(w);
    ev_begin(w, "message_stop");
    yr_aj_w_raw(w, "{\"type\":\"message_stop\"}");
    ev_end(w);
    return w->rc;
}

static int stream_event(yr_anth_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w)
{
    switch (ev->type) {
    case YR_EV_TEXT:
    case YR_EV_REFUSAL:
        if (ev->text.len == 0)
            return 0;
        begin(e, w);
        open_plain(e, w, BLK_TEXT); /* an OpenAI refusal is shown as text */
        emit_delta(e, w, "text_delta", "text", ev->text);
        e->refusal = e->refusal || ev->type == YR_EV_REFUSAL;
        return w->rc;
    case YR_EV_REASONING:
        begin(e, w);
        stream_reasoning(e, ev, w);
        return w->rc;
    case YR_EV_TOOL_START: begin(e, w); return stream_tool_start(e, ev, w);
    case YR_EV_TOOL_ARGS: begin(e, w); return stream_tool_args(e, ev, w);
    case YR_EV_TOOL_END: begin(e, w); return stream_tool_end(e, ev, w);
    case YR_EV_FINISH: begin(e, w); return on_finish(e, ev) < 0 ? -ENOMEM : close_all(e, w);
    case YR_EV_END: return stream_end(e, w);
    default: return -EINVAL;
    }
}

/* ---- message ------------------------------------------------------------- */

static void w_item(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    if (e->content.len > 0)
        yr_aj_w_raw(w, ",");
}

/* Writes the open text or thinking block into content. */
static int msg_close(yr_anth_enc_t *e)
{
    yr_aj_w_t w = {&e->content, 0};
    if (e->open == BLK_TEXT) {
        w_item(e, &w);
        yr_aj_w_raw(&w, "{\"type\":\"text\",\"text\":");
        yr_aj_w_str(&w, (yr_str_t){e->cur.data, e->cur.len});
        yr_aj_w_raw(&w, "}");
    } else if (e->open == BLK_THINKING) {
        w_item(e, &w);
        yr_aj_w_raw(&w, "{\"type\":\"thinking\",\"thinking\":");
        yr_aj_w_str(&w, (yr_str_t){e->cur.data, e->cur.len});
        yr_aj_w_raw(&w, ",\"signature\":");
        yr_aj_w_str(&w, (yr_str_t){e->sig.data, e->sig.len});
        yr_aj_w_raw(&w, "}");
    }
    e->open = BLK_NONE;
    e->open_signed = false;
    yr_buf_reset(&e->cur);
    yr_buf_reset(&e->sig);
    return w.rc;
}

static int msg_open(yr_anth_enc_t *e, blk_t kind)
{
    return e->open == kind ? 0 : msg_close(e);
}

/* A tool_use block: arguments that parse as a JSON object are copied byte
 * for byte (numbers keep their spelling); empty or invalid arguments become
 * {} (a tool input must be an object: the client's tool then fails on
 * missing parameters and can tell the model, which can retry). */
static int msg_tool(yr_anth_enc_t *e, size_t j)
{
    enc_tool_t *t = &e->tools[j];
    yr_aj_w_t w = {&e->content, 0};
    yr_str_t a = {t->held.data ? t->held.data : "", t->held.len};
    json_t *parsed = json_loadb(a.ptr, a.len, JSON_DECODE_INT_AS_REAL, NULL);
    w_item(e, &w);
    yr_aj_w_raw(&w, "{\"type\":\"tool_use\",\"id\":");
    w_tool_id(&w, e, t, j);
    yr_aj_w_raw(&w, ",\"name\":");
    yr_aj_w_str(&w, (yr_str_t){t->name, t->name_len});
    yr_aj_w_raw(&w, ",\"input\":");
    /* jansson accepted it: valid JSON, no trailing garbage, safe to copy. */
    yr_aj_w_bytes(&w, json_is_object(parsed) ? a : YR_STR("{}"));
    yr_aj_w_raw(&w, "}");
    json_decref(parsed);
    t->opened = true;
    e->tools_sent = true;
    e->held_total -= t->held.len;
    yr_buf_free(&t->held);
    return w.rc;
}

static int msg_reasoning(yr_anth_enc_t *e, const yr_event_t *ev)
{
    int rc;
    if (ev->redacted) {
        if ((rc = msg_close(e)) < 0)
            return rc;
        yr_aj_w_t w = {&e->content, 0};
        w_item(e, &w);
        yr_aj_w_raw(&w, "{\"type\":\"redacted_thinking\",\"data\":");
        yr_aj_w_str(&w, ev->signature);
        yr_aj_w_raw(&w, "}");
        return w.rc;
    }
    if (ev->text.len == 0 && ev->signature.len == 0)
        return 0;
    /* A signed block is complete: more reasoning starts a new one. */
    rc = e->open == BLK_THINKING && !e->open_signed ? 0 : msg_close(e);
    e->open = BLK_THINKING;
    if (rc == 0)
        rc = yr_buf_append_str(&e->cur, ev->text);
    if (rc == 0 && ev->signature.len > 0) {
        rc = yr_buf_append_str(&e->sig, ev->signature);
        e->open_signed = true;
    }
    return rc;
}

static int msg_write(yr_anth_enc_t *e, yr_aj_w_t *w)
{
    int rc = msg_close(e);
    for (size_t k = 0; rc == 0 && k < e->ntools; k++)
        if (e->tools[k].seen && !e->tools[k].opened)
            rc = msg_tool(e, k);
    if (rc < 0)
        return rc;
    yr_aj_w_raw(w, "{\"id\":");
    yr_aj_w_cstr(w, msg_id(e));
    yr_aj_w_raw(w, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    yr_aj_w_str(w, (yr_str_t){e->model, e->model_len});
    yr_aj_w_raw(w, ",\"content\":[");
    yr_aj_w_bytes(w, (yr_str_t){e->content.data ? e->content.data : "", e->content.len});
    yr_aj_w_raw(w, "],");
    w_stop(w, e);
    yr_aj_w_raw(w, ",\"usage\":");
    yr_usage_t none = {0};
    w_usage(w, e->have_usage ? &e->usage : &none, true, true);
    yr_aj_w_raw(w, "}");
    return w->rc;
}

static int msg_event(yr_anth_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w)
{
    enc_tool_t *t;
    int rc;
    hash_event(e, ev);
    switch (ev->type) {
    case YR_EV_TEXT:
    case YR_EV_REFUSAL:
        if (ev->text.len == 0)
            return 0;
        e->refusal = e->refusal || ev->type == YR_EV_REFUSAL;
        if ((rc = msg_open(e, BLK_TEXT)) < 0)
            return rc;
        e->open = BLK_TEXT;
        return yr_buf_append_str(&e->cur, ev->text);
    case YR_EV_REASONING: return msg_reasoning(e, ev);
    case YR_EV_TOOL_START:
        if ((rc = tool_begin(e, ev, &t)) < 0)
            return rc;
        return msg_close(e);
    case YR_EV_TOOL_ARGS:
        if ((rc = tool_known(e, ev, &t)) < 0)
            return rc;
        if (t->opened)
            return all_space(ev->text) ? 0 : -EINVAL;
        if (ev->text.len > YR_ANTH_ENC_MAX_MESSAGE - e->held_total)
            return -E2BIG;
        e->held_total += ev->text.len;
        return yr_buf_append_str(&t->held, ev->text);
    case YR_EV_TOOL_END:
        if ((rc = tool_known(e, ev, &t)) < 0)
            return rc;
        t->ended = true;
        return t->opened ? 0 : msg_tool(e, ev->index);
    case YR_EV_FINISH: return on_finish(e, ev);
    case YR_EV_END: return msg_write(e, w);
    default: return -EINVAL;
    }
}

/* ---- entry points -------------------------------------------------------- */

/* Runs one step with `out` restored and the encoder failed on error. */
static int enc_step(yr_anth_enc_t *e, yr_buf_t *out, int rc, size_t start)
{
    if (rc < 0) {
        e->failed = true;
        return yr_aj_restore(out, start, rc);
    }
    return 0;
}

static bool is_output(yr_ev_type_t t)
{
    return t == YR_EV_TEXT || t == YR_EV_REASONING || t == YR_EV_REFUSAL || t == YR_EV_TOOL_START ||
           t == YR_EV_TOOL_ARGS || t == YR_EV_TOOL_END;
}

int yr_anth_enc_event(yr_anth_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (e->failed || e->finished)
        return -EINVAL;
    size_t start = out->len;
    yr_aj_w_t w = {out, 0};
    int rc = 0;
    if (ev->type == YR_EV_START) {
        if (e->got_start) {
            rc = -EINVAL;
        } else {
            on_start(e, ev);
            if (e->stream)
                begin(e, &w); /* message_start goes out at once */
            else
                hash_event(e, ev);
            rc = w.rc;
        }
    } else if (ev->type == YR_EV_USAGE) {
        e->usage = ev->usage;
        e->have_usage = true;
    } else if (ev->type == YR_EV_ERROR ||
               (e->finish_seen && is_output(ev->type) && ev->type != YR_EV_TOOL_END)) {
        rc = -EINVAL; /* not for encoders; output after the end of the answer */
    } else if (ev->type == YR_EV_FINISH && e->finish_seen) {
        rc = 0; /* a repeated one changes nothing */
    } else {
        e->got_start = true; /* an event before START implies one */
        rc = e->stream ? stream_event(e, ev, &w) : msg_event(e, ev, &w);
        if (rc == 0 && ev->type == YR_EV_END)
            e->finished = true;
    }
    return enc_step(e, out, rc, start);
}

int yr_anth_enc_sink(void *arg, const yr_event_t *ev)
{
    yr_anth_sink_t *s = arg;
    return yr_anth_enc_event(s->enc, ev, s->out);
}

int yr_anth_enc_finish(yr_anth_enc_t *e, yr_buf_t *out)
{
    if (e->failed)
        return -EINVAL;
    if (e->finished)
        return 0;
    return yr_anth_enc_event(e, &(yr_event_t){.type = YR_EV_END}, out);
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
