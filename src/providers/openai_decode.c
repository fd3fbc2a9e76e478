/* OpenAI chat.completion / chat.completion.chunk -> typed events.
 *
 * Both entry points read the JSON with the hot-path tokenizer (no DOM):
 * strings without escapes are emitted as slices of the body, escaped ones
 * are decoded into one scratch buffer reserved at the body's size up front
 * (a decoded string is never longer than its escaped form), so slices into
 * it stay valid while the whole message is checked. Each message is
 * checked completely first ("collect"), and only then emitted ("emit"): a
 * malformed chunk reaches the consumer not at all rather than halfway. */
#include "providers/openai_decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_tok.h"

/* ---- per-attempt stream state ------------------------------------------- */

typedef struct {
    char id[YR_OPENAI_TOOL_STR_MAX];
    char name[YR_OPENAI_TOOL_STR_MAX];
    size_t id_len, name_len;
    bool seen, started, ended;
    yr_buf_t held; /* argument fragments sent before the name */
} tool_t;

typedef struct {
    bool started, finished, ended, failed;
    tool_t *tools; /* heap, grown to the highest index seen + 1 */
    uint32_t ntools;
    size_t held_total;
} stream_t;

static void on_state_cleanup(void *arg)
{
    stream_t *st = arg;
    for (uint32_t i = 0; i < st->ntools; i++)
        yr_buf_free(&st->tools[i].held);
    free(st->tools);
}

static stream_t *stream_state(yr_call_ctx_t *cx)
{
    if (cx->state != NULL)
        return cx->state;
    stream_t *st = yr_pcalloc(cx->pool, sizeof(*st));
    if (st == NULL || yr_pool_cleanup_add(cx->pool, on_state_cleanup, st) < 0)
        return NULL;
    cx->state = st;
    return st;
}

/* Makes slots 0..n-1 exist (n <= YR_OPENAI_MAX_TOOLS). */
static int grow_tools(stream_t *st, uint32_t n)
{
    if (n <= st->ntools)
        return 0;
    tool_t *t = realloc(st->tools, n * sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    memset(t + st->ntools, 0, (n - st->ntools) * sizeof(*t));
    for (uint32_t k = st->ntools; k < n; k++)
        yr_buf_init(&t[k].held, YR_OPENAI_MAX_HELD);
    st->tools = t;
    st->ntools = n;
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct {
    yr_jdoc_t d;
    yr_buf_t scratch; /* decoded strings; reserved once, never moves */
} reader_t;

/* Room for every string of the body decoded (never longer than escaped)
 * plus one join of content parts (never longer than the body either). */
static int scratch_ready(reader_t *r)
{
    return r->scratch.cap > 0 ? 0 : yr_buf_reserve(&r->scratch, 2 * r->d.len + 16);
}

/* tok -> *out: a string (decoded when escaped), or empty when tok is absent
 * or null. -EINVAL for any other type. */
static int read_str(reader_t *r, int tok, yr_str_t *out)
{
    *out = YR_STR_NULL;
    int type = yr_json_type(&r->d, tok);
    if (type == 0 || type == YR_JT_NULL)
        return 0;
    if (type != YR_JT_STRING)
        return -EINVAL;
    if (!r->d.toks[tok].escaped) {
        *out = yr_json_raw(&r->d, tok);
        return 0;
    }
    if (scratch_ready(r) < 0)
        return -ENOMEM;
    size_t at = r->scratch.len;
    int rc = yr_json_str_decode(&r->d, tok, &r->scratch);
    if (rc < 0)
        return rc;
    *out = (yr_str_t){r->scratch.data + at, r->scratch.len - at};
    return 0;
}

static int read_key_str(reader_t *r, int obj, const char *key, yr_str_t *out)
{
    return read_str(r, yr_json_get(&r->d, obj, key), out);
}

/* Absent and null are the same; anything else must have the given type. */
static bool opt_type(const reader_t *r, int tok, int type)
{
    int t = yr_json_type(&r->d, tok);
    return t == 0 || t == YR_JT_NULL || t == type;
}

static bool present(const reader_t *r, int tok)
{
    int t = yr_json_type(&r->d, tok);
    return t != 0 && t != YR_JT_NULL;
}

static int64_t count_of(const reader_t *r, int tok)
{
    int64_t v;
    return yr_json_int(&r->d, tok, &v) && v > 0 ? v : 0;
}

static void read_usage(const reader_t *r, int u, yr_usage_t *out)
{
    const yr_jdoc_t *d = &r->d;
    *out = (yr_usage_t){
        .prompt_tokens = count_of(r, yr_json_get(d, u, "prompt_tokens")),
        .completion_tokens = count_of(r, yr_json_get(d, u, "completion_tokens")),
        .cached_tokens = count_of(
            r, yr_json_get(d, yr_json_get(d, u, "prompt_tokens_details"), "cached_tokens")),
        .reasoning_tokens = count_of(
            r, yr_json_get(d, yr_json_get(d, u, "completion_tokens_details"), "reasoning_tokens")),
        .present = true,
    };
}

static yr_finish_t map_finish(const reader_t *r, int fr)
{
    const yr_jdoc_t *d = &r->d;
    if (yr_json_str_eq(d, fr, "length"))
        return YR_FINISH_LENGTH;
    if (yr_json_str_eq(d, fr, "tool_calls") || yr_json_str_eq(d, fr, "function_call"))
        return YR_FINISH_TOOL_CALLS;
    if (yr_json_str_eq(d, fr, "content_filter"))
        return YR_FINISH_CONTENT_FILTER;
    return YR_FINISH_STOP; /* "stop" and anything unknown */
}

/* The stop string vLLM ("stop_reason") or SGLang ("matched_stop") report
 * for finish_reason "stop"; empty when they report none, or a token id. */
static int read_stop_seq(reader_t *r, int choice, int fr, yr_str_t *out)
{
    *out = YR_STR_NULL;
    if (!yr_json_str_eq(&r->d, fr, "stop"))
        return 0;
    int s = yr_json_get(&r->d, choice, "stop_reason");
    if (yr_json_type(&r->d, s) != YR_JT_STRING)
        s = yr_json_get(&r->d, choice, "matched_stop");
    if (yr_json_type(&r->d, s) != YR_JT_STRING)
        return 0;
    int rc = read_str(r, s, out);
    if (rc == 0 && out->len > YR_OPENAI_STOP_SEQ_MAX)
        *out = YR_STR_NULL;
    return rc;
}

/* ---- one message, collected ---------------------------------------------- */

typedef struct {
    uint32_t index;
    yr_str_t id, name, args;
    yr_str_t signature; /* extra_content.google.thought_signature (Google's
                         * OpenAI-compatible endpoint), or empty */
} call_t;

typedef struct {
    yr_str_t id, model;
    int64_t created;
    yr_str_t reasoning, content, refusal;
    call_t *calls; /* heap */
    uint32_t ncalls;
    bool finish_present;
    yr_finish_t finish;
    yr_str_t stop_seq;
    bool usage_present;
    yr_usage_t usage;
} msg_t;

/* Joins the text parts of message.content (a string, null, or an array of
 * parts) into one slice: a single part is a slice as it is; several are
 * copied into the scratch buffer, which has room for them. */
static int read_content(reader_t *r, int c, yr_str_t *out)
{
    *out = YR_STR_NULL;
    if (yr_json_type(&r->d, c) != YR_JT_ARRAY)
        return read_str(r, c, out);
    size_t nparts = 0, at = 0;
    int p = c + 1;
    for (uint32_t i = 0; i < r->d.toks[c].size; i++, p = (int)r->d.toks[p].next) {
        if (yr_json_type(&r->d, p) != YR_JT_OBJECT)
            return -EINVAL;
        if (!yr_json_str_eq(&r->d, yr_json_get(&r->d, p, "type"), "text"))
            continue; /* image parts and the like: not text */
        int t = yr_json_get(&r->d, p, "text");
        yr_str_t s;
        if (yr_json_type(&r->d, t) != YR_JT_STRING || read_str(r, t, &s) < 0)
            return -EINVAL;
        if (nparts++ == 0) {
            *out = s;
            continue;
        }
        if (nparts == 2) { /* a second part: join from here on */
            if (scratch_ready(r) < 0)
                return -ENOMEM;
            at = r->scratch.len;
            if (yr_buf_append_str(&r->scratch, *out) < 0)
                return -ENOMEM;
        }
        if (yr_buf_append_str(&r->scratch, s) < 0)
            return -ENOMEM;
        *out = (yr_str_t){r->scratch.data + at, r->scratch.len - at};
    }
    return 0;
}

/* One entry of tool_calls. In a stream, the index comes from the entry
 * (its position when absent) and arguments must be a string fragment; in a
 * completion, the position is the index and arguments may be an object. */
static int read_call(reader_t *r, int tc, uint32_t pos, bool stream, call_t *out)
{
    const yr_jdoc_t *d = &r->d;
    if (yr_json_type(d, tc) != YR_JT_OBJECT)
        return -EINVAL;
    int fn = yr_json_get(d, tc, "function");
    int index = yr_json_get(d, tc, "index");
    int type = yr_json_get(d, tc, "type");
    int args = yr_json_get(d, fn, "arguments");
    if (!opt_type(r, fn, YR_JT_OBJECT) || !opt_type(r, index, YR_JT_NUMBER))
        return -EINVAL;
    int64_t ix = pos;
    if (stream && present(r, index) && !yr_json_int(d, index, &ix))
        return -EINVAL;
    if (ix < 0 || ix >= YR_OPENAI_MAX_TOOLS)
        return -EINVAL;
    out->index = (uint32_t)ix;
    if (read_key_str(r, tc, "id", &out->id) < 0 || read_key_str(r, fn, "name", &out->name) < 0 ||
        out->id.len > YR_OPENAI_TOOL_STR_MAX || out->name.len > YR_OPENAI_TOOL_STR_MAX)
        return -EINVAL;
    /* Lenient: a signature of another shape is not ours to judge. */
    int sig = yr_json_get(d, yr_json_get(d, yr_json_get(d, tc, "extra_content"), "google"),
                          "thought_signature");
    if (yr_json_type(d, sig) != YR_JT_STRING || read_str(r, sig, &out->signature) < 0)
        out->signature = YR_STR_NULL;
    if (!stream) {
        if (present(r, type) && !yr_json_str_eq(d, type, "function"))
            return -EINVAL;
        if (out->name.len == 0)
            return -EINVAL;
        if (yr_json_type(d, args) == YR_JT_OBJECT) { /* the object itself */
            out->args = yr_json_raw(d, args);
            return 0;
        }
    }
    return read_str(r, args, &out->args);
}

static int read_calls(reader_t *r, int calls, bool stream, msg_t *m)
{
    if (!opt_type(r, calls, YR_JT_ARRAY))
        return -EINVAL;
    if (!present(r, calls) || r->d.toks[calls].size == 0)
        return 0;
    uint32_t n = r->d.toks[calls].size;
    if (n > YR_OPENAI_MAX_TOOLS)
        return -EINVAL;
    m->calls = calloc(n, sizeof(*m->calls));
    if (m->calls == NULL)
        return -ENOMEM;
    int tc = calls + 1;
    for (uint32_t i = 0; i < n; i++, tc = (int)r->d.toks[tc].next) {
        int rc = read_call(r, tc, i, stream, &m->calls[i]);
        if (rc < 0)
            return rc;
    }
    m->ncalls = n;
    return 0;
}

/* message (completion) or delta (chunk): the text fields and tool calls. */
static int read_delta(reader_t *r, int obj, bool stream, msg_t *m)
{
    int rc = read_key_str(r, obj, "reasoning_content", &m->reasoning);
    if (rc == 0 && m->reasoning.ptr == NULL)
        rc = read_key_str(r, obj, "reasoning", &m->reasoning);
    if (rc == 0)
        rc = stream ? read_key_str(r, obj, "content", &m->content)
                    : read_content(r, yr_json_get(&r->d, obj, "content"), &m->content);
    if (rc == 0)
        rc = read_key_str(r, obj, "refusal", &m->refusal);
    if (rc == 0)
        rc = read_calls(r, yr_json_get(&r->d, obj, "tool_calls"), stream, m);
    return rc;
}

static int read_choice(reader_t *r, int choice, bool stream, msg_t *m)
{
    const yr_jdoc_t *d = &r->d;
    int body = yr_json_get(d, choice, stream ? "delta" : "message");
    int fr = yr_json_get(d, choice, "finish_reason");
    if (!opt_type(r, fr, YR_JT_STRING))
        return -EINVAL;
    if (stream ? !opt_type(r, body, YR_JT_OBJECT) : yr_json_type(d, body) != YR_JT_OBJECT)
        return -EINVAL;
    m->finish_present = present(r, fr);
    if (m->finish_present) {
        m->finish = map_finish(r, fr);
        int rc = read_stop_seq(r, choice, fr, &m->stop_seq);
        if (rc < 0)
            return rc;
    }
    return present(r, body) ? read_delta(r, body, stream, m) : 0;
}

/* The top level shared by completions and chunks. One choice is decoded: a
 * completion's first, a chunk's first with index 0 (or none). The gateway
 * never asks for n > 1, and a client of the Anthropic format could not be
 * shown a second one anyway. */
static int read_msg(reader_t *r, bool stream, msg_t *m)
{
    const yr_jdoc_t *d = &r->d;
    if (yr_json_type(d, 0) != YR_JT_OBJECT)
        return -EINVAL;
    int choices = yr_json_get(d, 0, "choices");
    int usage = yr_json_get(d, 0, "usage");
    if (!opt_type(r, choices, YR_JT_ARRAY) || !opt_type(r, usage, YR_JT_OBJECT) ||
        read_key_str(r, 0, "id", &m->id) < 0 || read_key_str(r, 0, "model", &m->model) < 0)
        return -EINVAL;
    int64_t created;
    if (yr_json_int(d, yr_json_get(d, 0, "created"), &created) && created > 0)
        m->created = created;
    if (present(r, usage)) {
        read_usage(r, usage, &m->usage);
        m->usage_present = true;
    }
    uint32_t n = present(r, choices) ? d->toks[choices].size : 0;
    if (!stream && n == 0)
        return -EINVAL;
    int ch = choices + 1;
    bool taken = false;
    for (uint32_t i = 0; i < n; i++, ch = (int)d->toks[ch].next) {
        int idx = yr_json_get(d, ch, "index");
        int64_t v = 0;
        if (yr_json_type(d, ch) != YR_JT_OBJECT || !opt_type(r, idx, YR_JT_NUMBER) ||
            (present(r, idx) && !yr_json_int(d, idx, &v)))
            return -EINVAL;
        /* A completion's first choice is the answer whatever its index. */
        if (taken || (stream ? v != 0 : i > 0))
            continue;
        int rc = read_choice(r, ch, stream, m);
        if (rc < 0)
            return rc;
        taken = true;
    }
    return 0;
}

static int reader_open(reader_t *r, yr_str_t text)
{
    yr_buf_init(&r->scratch, 2 * text.len + 16);
    int rc = yr_json_parse(&r->d, text.ptr ? text.ptr : "", text.len, false);
    return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
}

static void reader_close(reader_t *r, msg_t *m)
{
    free(m->calls);
    yr_json_free(&r->d);
    yr_buf_free(&r->scratch);
}

/* ---- emitting ------------------------------------------------------------ */

static int emit(yr_ev_fn fn, void *arg, yr_event_t ev)
{
    return fn(arg, &ev);
}

static int emit_text(yr_ev_fn fn, void *arg, yr_ev_type_t type, yr_str_t s)
{
    return s.len > 0 ? emit(fn, arg, (yr_event_t){.type = type, .text = s}) : 0;
}

/* START carries the usage of the message that opens the answer, if any, so
 * that an encoder writing a header at once (Anthropic's message_start) can
 * show it; the USAGE event that follows has it too. */
static int emit_start(yr_ev_fn fn, void *arg, const msg_t *m)
{
    return emit(fn, arg,
                (yr_event_t){.type = YR_EV_START,
                             .id = m->id,
                             .name = m->model,
                             .created = m->created,
                             .usage = m->usage_present ? m->usage : (yr_usage_t){0}});
}

static int emit_texts(yr_ev_fn fn, void *arg, const msg_t *m)
{
    int rc = emit_text(fn, arg, YR_EV_REASONING, m->reasoning);
    if (rc == 0)
        rc = emit_text(fn, arg, YR_EV_TEXT, m->content);
    if (rc == 0)
        rc = emit_text(fn, arg, YR_EV_REFUSAL, m->refusal);
    return rc;
}

static int emit_finish(yr_ev_fn fn, void *arg, const msg_t *m)
{
    return emit(
        fn, arg,
        (yr_event_t){.type = YR_EV_FINISH, .finish = m->finish, .stop_sequence = m->stop_seq});
}

int yr_openai_decode_response(yr_call_ctx_t *cx, yr_str_t body, yr_ev_fn fn, void *arg)
{
    (void)cx;
    reader_t r;
    msg_t m = {0};
    int rc = reader_open(&r, body);
    if (rc == 0)
        rc = read_msg(&r, false, &m);
    if (rc == 0)
        rc = emit_start(fn, arg, &m);
    if (rc == 0)
        rc = emit_texts(fn, arg, &m);
    for (uint32_t i = 0; rc == 0 && i < m.ncalls; i++) {
        const call_t *c = &m.calls[i];
        rc = emit(fn, arg,
                  (yr_event_t){.type = YR_EV_TOOL_START,
                               .index = c->index,
                               .id = c->id,
                               .name = c->name,
                               .signature = c->signature});
        if (rc == 0)
            rc = c->args.len
                     ? emit(fn, arg,
                            (yr_event_t){
                                .type = YR_EV_TOOL_ARGS, .index = c->index, .text = c->args})
                     : 0;
        if (rc == 0)
            rc = emit(fn, arg, (yr_event_t){.type = YR_EV_TOOL_END, .index = c->index});
    }
    if (rc == 0 && m.finish_present)
        rc = emit_finish(fn, arg, &m);
    if (rc == 0 && m.usage_present)
        rc = emit(fn, arg, (yr_event_t){.type = YR_EV_USAGE, .usage = m.usage});
    if (rc == 0)
        rc = emit(fn, arg, (yr_event_t){.type = YR_EV_END});
    reader_close(&r, &m);
    return rc;
}

/* ---- stream -------------------------------------------------------------- */

/* Checks the chunk's tool deltas against the state, without changing it:
 * indexes in range, held bytes within the cap, and at a finish_reason no
 * call left without a name. */
static int check_calls(const stream_t *st, const msg_t *m)
{
    bool touched[YR_OPENAI_MAX_TOOLS] = {false}, named[YR_OPENAI_MAX_TOOLS] = {false};
    size_t held = st->held_total;
    for (uint32_t i = 0; i < m->ncalls; i++) {
        const call_t *c = &m->calls[i];
        const tool_t *t = c->index < st->ntools ? &st->tools[c->index] : NULL;
        touched[c->index] = true;
        named[c->index] = named[c->index] || c->name.len > 0 || (t && t->name_len > 0);
        /* Held: before the name, and the fragment that joins held ones. */
        if (!(t && t->started) && (!named[c->index] || (t && t->held.len > 0))) {
            if (c->args.len > YR_OPENAI_MAX_HELD - held)
                return -E2BIG;
            held += c->args.len;
        }
    }
    if (!m->finish_present || st->finished)
        return 0;
    for (uint32_t k = 0; k < YR_OPENAI_MAX_TOOLS; k++) {
        const tool_t *t = k < st->ntools ? &st->tools[k] : NULL;
        if ((touched[k] || (t && t->seen)) && !named[k] && !(t && t->name_len > 0))
            return -EINVAL; /* a tool call that never got a name */
    }
    return 0;
}

static int grow_for(stream_t *st, const msg_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->ncalls; i++)
        if (m->calls[i].index + 1 > n)
            n = m->calls[i].index + 1;
    return grow_tools(st, n);
}

static void keep_str(char *dst, size_t *len, yr_str_t s)
{
    if (*len > 0 || s.len == 0)
        return; /* the first non-empty value wins */
    memcpy(dst, s.ptr, s.len);
    *len = s.len;
}

static int stream_call(stream_t *st, const call_t *c, yr_ev_fn fn, void *arg)
{
    tool_t *t = &st->tools[c->index];
    t->seen = true;
    if (t->started)
        return c->args.len > 0
                   ? emit(fn, arg,
                          (yr_event_t){.type = YR_EV_TOOL_ARGS, .index = c->index, .text = c->args})
                   : 0;
    keep_str(t->id, &t->id_len, c->id);
    keep_str(t->name, &t->name_len, c->name);
    yr_str_t args = c->args;
    int rc = 0;
    if (t->name_len == 0 || t->held.len > 0) { /* checked against the cap */
        rc = yr_buf_append_str(&t->held, c->args);
        if (rc < 0)
            return rc;
        st->held_total += c->args.len;
        args = (yr_str_t){t->held.data, t->held.len};
    }
    if (t->name_len == 0)
        return 0; /* held until the name comes */
    t->started = true;
    rc = emit(fn, arg,
              (yr_event_t){.type = YR_EV_TOOL_START,
                           .index = c->index,
                           .id = {t->id, t->id_len},
                           .name = {t->name, t->name_len},
                           .signature = c->signature});
    /* What was held goes with this fragment, as one. */
    if (rc == 0 && args.len > 0)
        rc = emit(fn, arg, (yr_event_t){.type = YR_EV_TOOL_ARGS, .index = c->index, .text = args});
    st->held_total -= t->held.len;
    yr_buf_free(&t->held);
    return rc;
}

/* TOOL_END for every started call not ended yet, in index order. */
static int end_calls(stream_t *st, yr_ev_fn fn, void *arg)
{
    for (uint32_t k = 0; k < st->ntools; k++) {
        tool_t *t = &st->tools[k];
        if (!t->started || t->ended)
            continue;
        t->ended = true;
        int rc = emit(fn, arg, (yr_event_t){.type = YR_EV_TOOL_END, .index = k});
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int stream_done(stream_t *st, yr_ev_fn fn, void *arg, bool *done)
{
    for (uint32_t k = 0; k < st->ntools; k++)
        if (st->tools[k].seen && !st->tools[k].started)
            return -EINVAL; /* a tool call that never got a name */
    int rc = 0;
    if (!st->started) {
        st->started = true;
        rc = emit(fn, arg, (yr_event_t){.type = YR_EV_START});
    }
    if (rc == 0)
        rc = end_calls(st, fn, arg);
    st->ended = true;
    if (rc == 0)
        rc = emit(fn, arg, (yr_event_t){.type = YR_EV_END});
    if (rc == 0)
        *done = true;
    return rc;
}

/* {"error": {...}} in the stream: vLLM and others report failures so. */
static int stream_error(reader_t *r, int err, stream_t *st, yr_ev_fn fn, void *arg)
{
    yr_str_t msg = YR_STR_NULL, type = YR_STR_NULL;
    const yr_jdoc_t *d = &r->d;
    if (yr_json_type(d, err) == YR_JT_OBJECT) {
        (void)read_key_str(r, err, "message", &msg);
        (void)read_key_str(r, err, "type", &type);
    } else {
        (void)read_str(r, err, &msg);
    }
    int64_t code = 0;
    int status = 500;
    if (yr_json_int(d, yr_json_get(d, err, "code"), &code) && code >= 400 && code <= 599)
        status = (int)code;
    else if (memmem(type.ptr ? type.ptr : "", type.len, "rate_limit", 10) != NULL)
        status = 429;
    else if (memmem(type.ptr ? type.ptr : "", type.len, "overloaded", 10) != NULL)
        status = 529;
    else if (yr_str_eq(type, YR_STR("invalid_request_error")))
        status = 400;
    st->ended = true; /* ERROR is the tail of the sequence */
    return emit(
        fn, arg,
        (yr_event_t){.type = YR_EV_ERROR, .status = status, .error_type = type, .text = msg});
}

static int stream_chunk(reader_t *r, stream_t *st, yr_ev_fn fn, void *arg)
{
    msg_t m = {0};
    int err = yr_json_get(&r->d, 0, "error");
    if (yr_json_type(&r->d, 0) == YR_JT_OBJECT && present(r, err)) {
        int rc = stream_error(r, err, st, fn, arg);
        return rc < 0 ? rc : 0;
    }
    int rc = read_msg(r, true, &m);
    if (rc == 0 && st->finished && (m.reasoning.len || m.content.len || m.refusal.len || m.ncalls))
        rc = -EINVAL; /* output after the end of the choice */
    if (rc == 0)
        rc = check_calls(st, &m);
    if (rc == 0)
        rc = grow_for(st, &m);
    if (rc < 0) {
        free(m.calls);
        return rc == -ENOMEM || rc == -E2BIG ? rc : -EINVAL;
    }
    /* Checked: from here on only the consumer (or memory) can fail. */
    if (!st->started) {
        st->started = true;
        rc = emit_start(fn, arg, &m);
    }
    if (rc == 0 && m.usage_present)
        rc = emit(fn, arg, (yr_event_t){.type = YR_EV_USAGE, .usage = m.usage});
    if (rc == 0)
        rc = emit_texts(fn, arg, &m);
    for (uint32_t i = 0; rc == 0 && i < m.ncalls; i++)
        rc = stream_call(st, &m.calls[i], fn, arg);
    if (rc == 0 && m.finish_present && !st->finished) { /* a repeated one is ignored */
        st->finished = true;
        rc = end_calls(st, fn, arg);
        if (rc == 0)
            rc = emit_finish(fn, arg, &m);
    }
    free(m.calls);
    return rc;
}

int yr_openai_decode_event(yr_call_ctx_t *cx, const yr_sse_event_t *m, yr_ev_fn fn, void *arg,
                           bool *done)
{
    *done = false;
    stream_t *st = stream_state(cx);
    if (st == NULL)
        return -ENOMEM;
    if (st->ended || st->failed)
        return -EINVAL;
    int rc;
    if (yr_str_eq(yr_str_trim(m->data), YR_STR("[DONE]"))) {
        rc = stream_done(st, fn, arg, done);
    } else {
        reader_t r;
        rc = reader_open(&r, m->data);
        if (rc == 0)
            rc = stream_chunk(&r, st, fn, arg);
        yr_json_free(&r.d);
        yr_buf_free(&r.scratch);
    }
    if (rc < 0)
        st->failed = true;
    return rc;
}
