/* Typed events in, Gemini out: the encoder of the Gemini inbound endpoints
 * (the request half is gemini_in.c), and the framing of Gemini streams.
 *
 *   message  events are collected into parts; one GenerateContentResponse
 *            is appended at END;
 *   stream   every text (or shown reasoning) delta is a chunk of its own, a
 *            function call is one chunk when it ends (Gemini never streams
 *            partial arguments), and a last chunk carries finishReason and
 *            usageMetadata. Chunks are framed as SSE events (alt=sse) or as
 *            the elements of one streamed JSON array.
 *
 * Written directly with the sticky-error writer of anthropic_json.h. */
#include "api/anthropic_json.h"
#include "api/gemini_in.h"
#include "api/sse.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Longest id / name of a call, and signature, kept. */
#define TOOL_STR_MAX 256
#define SIGNATURE_MAX (1024 * 1024)

/* ---- framing ------------------------------------------------------------------ */

int yr_gem_frame_chunk(yr_gem_frame_t *f, yr_str_t json, yr_buf_t *out)
{
    if (f->closed)
        return -EINVAL;
    size_t start = out->len;
    yr_aj_w_t w = {out, 0};
    if (f->sse) {
        yr_aj_w_raw(&w, "data: ");
        yr_aj_w_bytes(&w, json);
        yr_aj_w_raw(&w, "\r\n\r\n");
    } else {
        yr_aj_w_raw(&w, f->opened ? ",\r\n" : "[");
        yr_aj_w_bytes(&w, json);
    }
    if (w.rc == 0)
        f->opened = true;
    return yr_aj_restore(out, start, w.rc);
}

int yr_gem_frame_end(yr_gem_frame_t *f, yr_buf_t *out)
{
    if (f->sse || f->closed)
        return 0;
    int rc = yr_buf_append_str(out, f->opened ? YR_STR("]") : YR_STR("[]"));
    if (rc == 0)
        f->closed = true;
    return rc;
}

int yr_gem_frame_error(yr_gem_frame_t *f, yr_err_t e, yr_str_t message, yr_buf_t *out)
{
    yr_buf_t body;
    yr_buf_init(&body, 4096);
    size_t start = out->len;
    int rc = yr_gem_error_body(e, message, &body);
    if (rc == 0)
        rc = yr_gem_frame_chunk(f, (yr_str_t){body.data, body.len}, out);
    if (rc == 0)
        rc = yr_gem_frame_end(f, out);
    yr_buf_free(&body);
    return yr_aj_restore(out, start, rc);
}

typedef struct {
    yr_gem_frame_t *f;
    yr_buf_t *out;
} reframe_t;

static int on_sse(const yr_sse_event_t *ev, void *arg)
{
    reframe_t *r = arg;
    yr_str_t d = yr_str_trim(ev->data);
    return d.len ? yr_gem_frame_chunk(r->f, d, r->out) : 0;
}

int yr_gem_frame_sse(yr_gem_frame_t *f, yr_str_t sse, yr_buf_t *out)
{
    size_t start = out->len;
    yr_sse_parser_t p;
    yr_sse_init(&p, YR_SSE_MAX_EVENT);
    reframe_t r = {f, out};
    int rc = yr_sse_feed(&p, sse.ptr, sse.len, on_sse, &r);
    if (rc == 0 && yr_sse_partial(&p))
        rc = -EINVAL; /* only whole events are handed over */
    yr_sse_free(&p);
    return yr_aj_restore(out, start, rc);
}

/* ---- the encoder ------------------------------------------------------------------ */

typedef enum { OPEN_NONE, OPEN_TEXT, OPEN_THOUGHT } open_t;

typedef struct {
    char id[TOOL_STR_MAX + 1];
    char name[TOOL_STR_MAX + 1];
    size_t id_len, name_len;
    yr_buf_t args;
    yr_buf_t sig;
    bool seen, written;
} gtool_t;

struct yr_gem_enc {
    bool stream, include_thoughts;
    yr_gem_frame_t frame;
    char model[YR_GEM_MODEL_MAX + 1];
    size_t model_len;
    char id[TOOL_STR_MAX + 1];
    size_t id_len;
    int64_t estimate;
    bool got_start, finish_seen, finished, failed;
    yr_finish_t finish;
    bool have_usage;
    yr_usage_t usage;
    gtool_t *tools;
    size_t ntools;
    /* message mode: the parts written so far, and the open text part */
    yr_buf_t parts;
    open_t open;
    yr_buf_t cur;
    yr_buf_t chunk; /* stream: one chunk's JSON */
};

static void copy_str(char *dst, size_t *dst_len, size_t max, yr_str_t s)
{
    *dst_len = s.len < max ? s.len : max;
    if (*dst_len > 0)
        memcpy(dst, s.ptr, *dst_len);
    dst[*dst_len] = '\0';
}

yr_gem_enc_t *yr_gem_enc_new(const yr_gem_enc_opts_t *o)
{
    yr_gem_enc_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->stream = o->stream;
    e->include_thoughts = o->include_thoughts;
    e->frame.sse = o->sse;
    e->estimate = o->input_tokens_estimate > 0 ? o->input_tokens_estimate : 0;
    copy_str(e->model, &e->model_len, YR_GEM_MODEL_MAX, o->model);
    copy_str(e->id, &e->id_len, TOOL_STR_MAX, o->id_seed);
    yr_buf_init(&e->parts, YR_GEM_ENC_MAX_MESSAGE);
    yr_buf_init(&e->cur, YR_GEM_ENC_MAX_MESSAGE);
    yr_buf_init(&e->chunk, YR_GEM_ENC_MAX_MESSAGE);
    return e;
}

void yr_gem_enc_free(yr_gem_enc_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->ntools; i++) {
        yr_buf_free(&e->tools[i].args);
        yr_buf_free(&e->tools[i].sig);
    }
    free(e->tools);
    yr_buf_free(&e->parts);
    yr_buf_free(&e->cur);
    yr_buf_free(&e->chunk);
    free(e);
}

static int64_t clamp0(int64_t v)
{
    return v > 0 ? v : 0;
}

/* Gemini counts thoughts apart from the candidates; the internal model
 * counts them inside completion_tokens. promptTokenCount includes cached
 * tokens in both. */
static void w_usage(yr_aj_w_t *w, const yr_gem_enc_t *e)
{
    yr_usage_t u = e->have_usage ? e->usage : (yr_usage_t){.prompt_tokens = e->estimate};
    int64_t prompt = clamp0(u.prompt_tokens), completion = clamp0(u.completion_tokens);
    int64_t thoughts =
        clamp0(u.reasoning_tokens) < completion ? clamp0(u.reasoning_tokens) : completion;
    int64_t cached = clamp0(u.cached_tokens) < prompt ? clamp0(u.cached_tokens) : prompt;
    yr_aj_w_raw(w, "{\"promptTokenCount\":");
    yr_aj_w_int(w, prompt);
    yr_aj_w_raw(w, ",\"candidatesTokenCount\":");
    yr_aj_w_int(w, completion - thoughts);
    yr_aj_w_raw(w, ",\"totalTokenCount\":");
    yr_aj_w_int(w, prompt + completion);
    if (cached > 0) {
        yr_aj_w_raw(w, ",\"cachedContentTokenCount\":");
        yr_aj_w_int(w, cached);
    }
    if (thoughts > 0) {
        yr_aj_w_raw(w, ",\"thoughtsTokenCount\":");
        yr_aj_w_int(w, thoughts);
    }
    yr_aj_w_raw(w, "}");
}

static const char *finish_reason(const yr_gem_enc_t *e)
{
    if (!e->finish_seen)
        return "STOP";
    switch (e->finish) {
    case YR_FINISH_LENGTH: return "MAX_TOKENS";
    case YR_FINISH_CONTENT_FILTER: return "SAFETY";
    default: return "STOP"; /* Gemini ends a turn of function calls with STOP too */
    }
}

/* One GenerateContentResponse around the JSON of its parts. last: with
 * finishReason and (always) usageMetadata. */
static void w_response(yr_aj_w_t *w, const yr_gem_enc_t *e, yr_str_t parts, bool last)
{
    yr_aj_w_raw(w, "{\"candidates\":[{\"content\":{");
    if (parts.len > 0) {
        yr_aj_w_raw(w, "\"parts\":[");
        yr_aj_w_bytes(w, parts);
        yr_aj_w_raw(w, "],");
    }
    yr_aj_w_raw(w, "\"role\":\"model\"}");
    if (last) {
        yr_aj_w_raw(w, ",\"finishReason\":");
        yr_aj_w_cstr(w, finish_reason(e));
    }
    yr_aj_w_raw(w, ",\"index\":0}]");
    if (last || e->have_usage) {
        yr_aj_w_raw(w, ",\"usageMetadata\":");
        w_usage(w, e);
    }
    yr_aj_w_raw(w, ",\"modelVersion\":");
    yr_aj_w_str(w, (yr_str_t){e->model, e->model_len});
    yr_aj_w_raw(w, ",\"responseId\":");
    yr_aj_w_str(w, (yr_str_t){e->id, e->id_len});
    yr_aj_w_raw(w, "}");
}

static void w_text_part(yr_aj_w_t *w, yr_str_t text, bool thought)
{
    yr_aj_w_raw(w, "{\"text\":");
    yr_aj_w_str(w, text);
    if (thought)
        yr_aj_w_raw(w, ",\"thought\":true");
    yr_aj_w_raw(w, "}");
}

/* A functionCall part: arguments that parse as a JSON object are copied
 * byte for byte; anything else becomes {} (args must be an object). */
static void w_call_part(yr_aj_w_t *w, const gtool_t *t)
{
    yr_str_t a = {t->args.data ? t->args.data : "", t->args.len};
    json_t *parsed = json_loadb(a.ptr, a.len, JSON_DECODE_INT_AS_REAL, NULL);
    yr_aj_w_raw(w, "{\"functionCall\":{");
    if (t->id_len > 0) {
        yr_aj_w_raw(w, "\"id\":");
        yr_aj_w_str(w, (yr_str_t){t->id, t->id_len});
        yr_aj_w_raw(w, ",");
    }
    yr_aj_w_raw(w, "\"name\":");
    yr_aj_w_str(w, (yr_str_t){t->name, t->name_len});
    yr_aj_w_raw(w, ",\"args\":");
    yr_aj_w_bytes(w, json_is_object(parsed) ? a : YR_STR("{}"));
    yr_aj_w_raw(w, "}");
    if (t->sig.len > 0) {
        yr_aj_w_raw(w, ",\"thoughtSignature\":");
        yr_aj_w_str(w, (yr_str_t){t->sig.data, t->sig.len});
    }
    yr_aj_w_raw(w, "}");
    json_decref(parsed);
}

/* Stream: one chunk holding parts (already JSON), framed into out. */
static int emit_chunk(yr_gem_enc_t *e, yr_str_t parts, bool last, yr_buf_t *out)
{
    yr_buf_reset(&e->chunk);
    yr_aj_w_t w = {&e->chunk, 0};
    w_response(&w, e, parts, last);
    return w.rc ? w.rc
                : yr_gem_frame_chunk(&e->frame, (yr_str_t){e->chunk.data, e->chunk.len}, out);
}

static int emit_text_chunk(yr_gem_enc_t *e, yr_str_t text, bool thought, yr_buf_t *out)
{
    yr_buf_t part;
    yr_buf_init(&part, text.len * 6 + 64);
    yr_aj_w_t w = {&part, 0};
    w_text_part(&w, text, thought);
    int rc = w.rc ? w.rc : emit_chunk(e, (yr_str_t){part.data, part.len}, false, out);
    yr_buf_free(&part);
    return rc;
}

/* Message mode: writes the open text or thought part into parts. */
static int msg_close(yr_gem_enc_t *e)
{
    yr_aj_w_t w = {&e->parts, 0};
    if (e->open != OPEN_NONE) {
        if (e->parts.len > 0)
            yr_aj_w_raw(&w, ",");
        w_text_part(&w, (yr_str_t){e->cur.data ? e->cur.data : "", e->cur.len},
                    e->open == OPEN_THOUGHT);
    }
    e->open = OPEN_NONE;
    yr_buf_reset(&e->cur);
    return w.rc;
}

static int msg_text(yr_gem_enc_t *e, yr_str_t text, open_t kind)
{
    int rc = e->open == kind ? 0 : msg_close(e);
    e->open = kind;
    return rc == 0 ? yr_buf_append_str(&e->cur, text) : rc;
}

/* A call is over: its part goes out (stream: as a chunk of its own). */
static int tool_write(yr_gem_enc_t *e, gtool_t *t, yr_buf_t *out)
{
    if (t->written)
        return 0;
    t->written = true;
    if (e->stream) {
        yr_buf_t part;
        yr_buf_init(&part, t->args.len * 2 + t->sig.len + 1024);
        yr_aj_w_t w = {&part, 0};
        w_call_part(&w, t);
        int rc = w.rc ? w.rc : emit_chunk(e, (yr_str_t){part.data, part.len}, false, out);
        yr_buf_free(&part);
        return rc;
    }
    int rc = msg_close(e);
    yr_aj_w_t w = {&e->parts, rc};
    if (e->parts.len > 0)
        yr_aj_w_raw(&w, ",");
    w_call_part(&w, t);
    return w.rc;
}

static int tools_flush(yr_gem_enc_t *e, yr_buf_t *out)
{
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < e->ntools; k++)
        if (e->tools[k].seen)
            rc = tool_write(e, &e->tools[k], out);
    return rc;
}

static int tool_start(yr_gem_enc_t *e, const yr_event_t *ev)
{
    if (ev->index >= YR_GEM_ENC_MAX_TOOLS || ev->name.len == 0 || ev->name.len > TOOL_STR_MAX ||
        ev->id.len > TOOL_STR_MAX)
        return -EINVAL;
    size_t j = ev->index;
    if (j >= e->ntools) {
        gtool_t *t = realloc(e->tools, (j + 1) * sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        memset(t + e->ntools, 0, (j + 1 - e->ntools) * sizeof(*t));
        for (size_t k = e->ntools; k <= j; k++) {
            yr_buf_init(&t[k].args, YR_GEM_ENC_MAX_MESSAGE);
            yr_buf_init(&t[k].sig, SIGNATURE_MAX);
        }
        e->tools = t;
        e->ntools = j + 1;
    }
    gtool_t *t = &e->tools[j];
    if (t->seen)
        return -EINVAL;
    t->seen = true;
    copy_str(t->id, &t->id_len, TOOL_STR_MAX, ev->id);
    copy_str(t->name, &t->name_len, TOOL_STR_MAX, ev->name);
    return yr_buf_append_str(&t->sig, ev->signature);
}

static gtool_t *tool_known(yr_gem_enc_t *e, uint32_t index)
{
    return index < e->ntools && e->tools[index].seen ? &e->tools[index] : NULL;
}

static int end_event(yr_gem_enc_t *e, yr_aj_w_t *w, yr_buf_t *out)
{
    int rc = tools_flush(e, out);
    if (rc < 0)
        return rc;
    if (e->stream) {
        rc = emit_chunk(e, YR_STR_NULL, true, out);
        return rc == 0 ? yr_gem_frame_end(&e->frame, out) : rc;
    }
    if ((rc = msg_close(e)) < 0)
        return rc;
    w_response(w, e, (yr_str_t){e->parts.data, e->parts.len}, true);
    return w->rc;
}

static void on_start(yr_gem_enc_t *e, const yr_event_t *ev)
{
    e->got_start = true;
    if (ev->usage.present) {
        e->usage = ev->usage;
        e->have_usage = true;
    }
    if (e->id_len == 0)
        copy_str(e->id, &e->id_len, TOOL_STR_MAX, ev->id);
    if (e->model_len == 0)
        copy_str(e->model, &e->model_len, YR_GEM_MODEL_MAX, ev->name);
}

static int output_event(yr_gem_enc_t *e, const yr_event_t *ev, yr_aj_w_t *w, yr_buf_t *out)
{
    gtool_t *t;
    switch (ev->type) {
    case YR_EV_TEXT:
    case YR_EV_REFUSAL: /* a refusal is the model's answer: shown as text */
        if (ev->text.len == 0)
            return 0;
        return e->stream ? emit_text_chunk(e, ev->text, false, out)
                         : msg_text(e, ev->text, OPEN_TEXT);
    case YR_EV_REASONING:
        /* Shown only when the client asked (includeThoughts); signatures of
         * other providers' reasoning mean nothing to a Gemini client. */
        if (!e->include_thoughts || ev->redacted || ev->text.len == 0)
            return 0;
        return e->stream ? emit_text_chunk(e, ev->text, true, out)
                         : msg_text(e, ev->text, OPEN_THOUGHT);
    case YR_EV_TOOL_START: return tool_start(e, ev);
    case YR_EV_TOOL_ARGS:
        if ((t = tool_known(e, ev->index)) == NULL)
            return -EINVAL;
        if (t->written) /* a late fragment: harmless only if it adds nothing */
            return yr_str_trim(ev->text).len == 0 ? 0 : -EINVAL;
        return yr_buf_append_str(&t->args, ev->text);
    case YR_EV_TOOL_END:
        return (t = tool_known(e, ev->index)) == NULL ? -EINVAL : tool_write(e, t, out);
    case YR_EV_FINISH:
        e->finish = ev->finish;
        e->finish_seen = true;
        return tools_flush(e, out);
    case YR_EV_END: return end_event(e, w, out);
    default: return -EINVAL;
    }
}

static bool is_output(yr_ev_type_t t)
{
    return t == YR_EV_TEXT || t == YR_EV_REASONING || t == YR_EV_REFUSAL || t == YR_EV_TOOL_START ||
           t == YR_EV_TOOL_ARGS;
}

int yr_gem_enc_event(yr_gem_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (e->failed || e->finished)
        return -EINVAL;
    size_t start = out->len;
    yr_aj_w_t w = {out, 0};
    int rc = 0;
    if (ev->type == YR_EV_START) {
        if (e->got_start)
            rc = -EINVAL;
        else
            on_start(e, ev);
    } else if (ev->type == YR_EV_USAGE) {
        e->usage = ev->usage;
        e->have_usage = true;
    } else if (ev->type == YR_EV_ERROR || (e->finish_seen && is_output(ev->type))) {
        rc = -EINVAL; /* not for encoders; output after the end of the answer */
    } else if (ev->type == YR_EV_FINISH && e->finish_seen) {
        rc = 0; /* a repeated one changes nothing */
    } else {
        e->got_start = true;
        rc = output_event(e, ev, &w, out);
        if (rc == 0 && ev->type == YR_EV_END)
            e->finished = true;
    }
    if (rc < 0) {
        e->failed = true;
        return yr_aj_restore(out, start, rc);
    }
    return 0;
}

int yr_gem_enc_sink(void *arg, const yr_event_t *ev)
{
    yr_gem_sink_t *s = arg;
    return yr_gem_enc_event(s->enc, ev, s->out);
}

int yr_gem_enc_error(yr_gem_enc_t *e, yr_err_t err, yr_str_t message, yr_buf_t *out)
{
    e->failed = true; /* the stream is over either way */
    return yr_gem_frame_error(&e->frame, err, message, out);
}
