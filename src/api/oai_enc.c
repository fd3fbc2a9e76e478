/* The OpenAI Chat Completions encoder: typed events -> chat.completion(.chunk)
 * JSON. See oai_enc.h for the mapping; the shapes follow OpenAI's published
 * schemas (tests/schemas/openai.json checks them). */
#include "api/oai_enc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

/* A response id or model name longer than this is not a name. */
#define MAX_NAME (64 * 1024)
/* The cap of every buffer the encoder keeps; what it keeps for END is held
 * to the caller's out->max as well (see hold()). */
#define MAX_HELD ((size_t)1 << 30)
/* Parallel tool calls in one answer. */
#define MAX_TOOLS 4096

#define ID_PREFIX "chatcmpl-"

typedef struct {
    yr_buf_t id, name, args; /* non-stream: what END writes; unused when streaming */
    yr_buf_t sig;            /* non-stream: the provider's signature of the call */
    size_t args_len;         /* argument bytes seen (stream and non-stream) */
} oai_tool_t;

struct yr_oai_enc {
    bool stream, include_usage;
    yr_buf_t model; /* the options' model and id seed, copied */
    yr_buf_t seed;

    bool started;  /* head and rid are built */
    bool finished; /* FINISH seen */
    bool over;     /* END or ERROR seen: nothing more is written */
    yr_buf_t rid;  /* the response id the client sees: "chatcmpl-…" */
    yr_buf_t head; /* '[data: ]{"id":…,"object":…,"created":…,"model":…,' */
    yr_finish_t finish;
    yr_usage_t usage;

    /* Non-stream: the message, built up until END. held counts the bytes
     * kept, each of which END writes at least once. */
    yr_buf_t text, reasoning, refusal;
    bool has_text, has_refusal;
    size_t held;

    oai_tool_t *tools;
    size_t ntools, tools_cap;
};

static yr_str_t str_of(const yr_buf_t *b)
{
    return (yr_str_t){b->data ? b->data : "", b->len};
}

static void restore(yr_buf_t *b, size_t len)
{
    b->len = len;
    if (b->data != NULL)
        b->data[len] = '\0';
}

static int copy_str(yr_buf_t *b, yr_str_t s, size_t max)
{
    yr_buf_init(b, max);
    return yr_buf_append_str(b, s);
}

yr_oai_enc_t *yr_oai_enc_new(const yr_oai_enc_opts_t *o)
{
    yr_oai_enc_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->stream = o->stream;
    e->include_usage = o->include_usage;
    yr_buf_init(&e->rid, MAX_NAME + sizeof(ID_PREFIX));
    yr_buf_init(&e->head, MAX_NAME * 12 + 256); /* id and model, escaped */
    yr_buf_init(&e->text, MAX_HELD);
    yr_buf_init(&e->reasoning, MAX_HELD);
    yr_buf_init(&e->refusal, MAX_HELD);
    if (copy_str(&e->model, o->model, MAX_NAME) < 0 ||
        copy_str(&e->seed, o->id_seed, MAX_NAME) < 0) {
        yr_oai_enc_free(e);
        return NULL;
    }
    return e;
}

static void tool_free(oai_tool_t *t)
{
    yr_buf_free(&t->id);
    yr_buf_free(&t->name);
    yr_buf_free(&t->args);
    yr_buf_free(&t->sig);
}

void yr_oai_enc_free(yr_oai_enc_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->ntools; i++)
        tool_free(&e->tools[i]);
    free(e->tools);
    yr_buf_free(&e->model);
    yr_buf_free(&e->seed);
    yr_buf_free(&e->rid);
    yr_buf_free(&e->head);
    yr_buf_free(&e->text);
    yr_buf_free(&e->reasoning);
    yr_buf_free(&e->refusal);
    free(e);
}

/* ---- the response's identity ------------------------------------------------------------- */

/* Builds the id and the head every object starts with, from START (or from
 * the options alone when the decoder sent content without a START). The id
 * is START's behind "chatcmpl-" (kept as it is when it already has that
 * prefix), else the seed's. */
static int start(yr_oai_enc_t *e, const yr_event_t *ev)
{
    yr_str_t id = ev != NULL && ev->id.len > 0 ? ev->id : str_of(&e->seed);
    yr_str_t model = e->model.len > 0 ? str_of(&e->model) : ev != NULL ? ev->name : YR_STR_NULL;
    int64_t created = ev != NULL && ev->created > 0 ? ev->created : (int64_t)time(NULL);
    if (id.len > MAX_NAME || model.len > MAX_NAME)
        return -E2BIG;
    yr_buf_reset(&e->rid);
    yr_buf_reset(&e->head);
    int rc = 0;
    if (!yr_str_has_prefix(id, YR_STR(ID_PREFIX)))
        rc = yr_buf_append_str(&e->rid, YR_STR(ID_PREFIX));
    if (rc == 0)
        rc = yr_buf_append_str(&e->rid, id);
    if (rc == 0 && e->stream)
        rc = yr_buf_append_str(&e->head, YR_STR("data: "));
    if (rc == 0)
        rc = yr_buf_append_str(&e->head, YR_STR("{\"id\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(&e->head, str_of(&e->rid));
    if (rc == 0)
        rc = yr_buf_printf(&e->head, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":",
                           e->stream ? "chat.completion.chunk" : "chat.completion", created);
    if (rc == 0)
        rc = yr_buf_append_json_str(&e->head, model);
    if (rc == 0)
        rc = yr_buf_append(&e->head, ",", 1);
    if (rc == 0)
        e->started = true;
    return rc;
}

/* The id of a call the provider gave none (Gemini's function calls may have
 * none): unique within the response, and across responses through its id. */
static int default_call_id(const yr_oai_enc_t *e, uint32_t index, yr_buf_t *b)
{
    yr_str_t rid = str_of(&e->rid);
    if (yr_str_has_prefix(rid, YR_STR(ID_PREFIX))) {
        rid.ptr += sizeof(ID_PREFIX) - 1;
        rid.len -= sizeof(ID_PREFIX) - 1;
    }
    int rc = yr_buf_append_str(b, YR_STR("call_"));
    if (rc == 0)
        rc = yr_buf_append_str(b, rid);
    if (rc == 0)
        rc = yr_buf_printf(b, "_%" PRIu32, index);
    return rc;
}

static yr_finish_t finish_of(const yr_oai_enc_t *e)
{
    if (e->finished)
        return e->finish;
    return e->ntools > 0 ? YR_FINISH_TOOL_CALLS : YR_FINISH_STOP;
}

static int64_t count(int64_t v)
{
    return v > 0 ? v : 0;
}

/* {"prompt_tokens":P,"completion_tokens":C,"total_tokens":T,
 *  "prompt_tokens_details":{"cached_tokens":X},
 *  "completion_tokens_details":{"reasoning_tokens":R}} */
static int write_usage(const yr_usage_t *u, yr_buf_t *out)
{
    int64_t p = count(u->prompt_tokens), c = count(u->completion_tokens);
    int64_t total = p > INT64_MAX - c ? INT64_MAX : p + c;
    return yr_buf_printf(out,
                         "{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
                         ",\"total_tokens\":%" PRId64
                         ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRId64
                         "},\"completion_tokens_details\":{\"reasoning_tokens\":%" PRId64 "}}",
                         p, c, total, count(u->cached_tokens), count(u->reasoning_tokens));
}

/* ---- stream: one chunk per event ---------------------------------------------------------- */

/* head "choices":[{"index":0,"delta": */
static int chunk_begin(const yr_oai_enc_t *e, yr_buf_t *out)
{
    int rc = yr_buf_append_str(out, str_of(&e->head));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\"choices\":[{\"index\":0,\"delta\":"));
    return rc;
}

/* ,"logprobs":null,"finish_reason":F}] (,"usage":null) }\n\n */
static int chunk_end(const yr_oai_enc_t *e, yr_buf_t *out, const char *finish)
{
    int rc = finish != NULL
                 ? yr_buf_printf(out, ",\"logprobs\":null,\"finish_reason\":\"%s\"}]", finish)
                 : yr_buf_append_str(out, YR_STR(",\"logprobs\":null,\"finish_reason\":null}]"));
    if (rc == 0 && e->include_usage)
        rc = yr_buf_append_str(out, YR_STR(",\"usage\":null"));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("}\n\n"));
    return rc;
}

/* A delta with one string field; key is its opening, e.g. '{"content":'.
 * Appends only, no printf: this runs for every streamed text delta. */
static int chunk_text(const yr_oai_enc_t *e, yr_buf_t *out, yr_str_t key, yr_str_t s)
{
    int rc = chunk_begin(e, out);
    if (rc == 0)
        rc = yr_buf_append_str(out, key);
    if (rc == 0)
        rc = yr_buf_append_json_str(out, s);
    if (rc == 0)
        rc = yr_buf_append(out, "}", 1);
    if (rc == 0)
        rc = chunk_end(e, out, NULL);
    return rc;
}

/* ,"extra_content":{"google":{"thought_signature":S}}: where Google's own
 * OpenAI-compatible endpoint puts a Gemini thoughtSignature, and where
 * clients that know it keep it for the next request. */
static int write_signature(yr_buf_t *out, yr_str_t sig)
{
    if (sig.len == 0)
        return 0;
    int rc = yr_buf_append_str(out, YR_STR(",\"extra_content\":{\"google\":{\"thought_signature\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(out, sig);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("}}"));
    return rc;
}

static int chunk_tool_start(const yr_oai_enc_t *e, yr_buf_t *out, uint32_t index, yr_str_t id,
                            yr_str_t name, yr_str_t sig)
{
    int rc = chunk_begin(e, out);
    if (rc == 0)
        rc = yr_buf_printf(out, "{\"tool_calls\":[{\"index\":%" PRIu32 ",\"id\":", index);
    if (rc == 0)
        rc = yr_buf_append_json_str(out, id);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR(",\"type\":\"function\",\"function\":{\"name\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(out, name);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR(",\"arguments\":\"\"}"));
    if (rc == 0)
        rc = write_signature(out, sig);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("}]}"));
    if (rc == 0)
        rc = chunk_end(e, out, NULL);
    return rc;
}

static int chunk_tool_args(const yr_oai_enc_t *e, yr_buf_t *out, uint32_t index, yr_str_t frag)
{
    int rc = chunk_begin(e, out);
    if (rc == 0)
        rc = yr_buf_printf(
            out, "{\"tool_calls\":[{\"index\":%" PRIu32 ",\"function\":{\"arguments\":", index);
    if (rc == 0)
        rc = yr_buf_append_json_str(out, frag);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("}}]}"));
    if (rc == 0)
        rc = chunk_end(e, out, NULL);
    return rc;
}

/* A call that streamed no arguments gets "{}", so that a client always
 * parses valid JSON; OpenAI itself never sends an empty string there. The
 * caller marks the calls (mark_tools_closed) once everything was written. */
static int close_tools(const yr_oai_enc_t *e, yr_buf_t *out, size_t from, size_t to)
{
    int rc = 0;
    for (size_t i = from; rc == 0 && i < to; i++)
        if (e->tools[i].args_len == 0)
            rc = chunk_tool_args(e, out, (uint32_t)i, YR_STR("{}"));
    return rc;
}

static void mark_tools_closed(yr_oai_enc_t *e, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (e->tools[i].args_len == 0)
            e->tools[i].args_len = 2;
}

/* head "choices":[{"index":0,"delta":<raw delta>, ...}]} */
static int chunk_raw(const yr_oai_enc_t *e, yr_buf_t *out, yr_str_t delta, const char *finish)
{
    int rc = chunk_begin(e, out);
    if (rc == 0)
        rc = yr_buf_append_str(out, delta);
    if (rc == 0)
        rc = chunk_end(e, out, finish);
    return rc;
}

/* FINISH, or END without one: the remaining "{}" arguments, then delta {}
 * with the finish reason. Nothing is committed: see commit_finish. */
static int write_finish(const yr_oai_enc_t *e, yr_buf_t *out, yr_finish_t f)
{
    int rc = close_tools(e, out, 0, e->ntools);
    if (rc == 0)
        rc = chunk_raw(e, out, YR_STR("{}"), yr_finish_openai(f));
    return rc;
}

static void commit_finish(yr_oai_enc_t *e, yr_finish_t f)
{
    mark_tools_closed(e, 0, e->ntools);
    e->finish = f;
    e->finished = true;
}

static int stream_end(yr_oai_enc_t *e, yr_buf_t *out)
{
    yr_finish_t f = finish_of(e);
    int rc = e->finished ? 0 : write_finish(e, out, f);
    if (rc == 0 && e->include_usage && e->usage.present) {
        rc = yr_buf_append_str(out, str_of(&e->head));
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR("\"choices\":[],\"usage\":"));
        if (rc == 0)
            rc = write_usage(&e->usage, out);
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR("}\n\n"));
    }
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("data: [DONE]\n\n"));
    if (rc == 0 && !e->finished)
        commit_finish(e, f);
    return rc;
}

/* ---- tools, both modes -------------------------------------------------------------------- */

/* Bytes kept for END must fit the buffer END writes into: each is written at
 * least once, so more than out->max of them cannot succeed. */
static int hold(const yr_oai_enc_t *e, const yr_buf_t *out, size_t n)
{
    return n > out->max || e->held > out->max - n ? -E2BIG : 0;
}

static int keep(yr_oai_enc_t *e, const yr_buf_t *out, yr_buf_t *b, yr_str_t s)
{
    int rc = hold(e, out, s.len);
    if (rc == 0)
        rc = yr_buf_append_str(b, s);
    if (rc == 0)
        e->held += s.len;
    return rc;
}

static int tool_start(yr_oai_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (ev->index != e->ntools)
        return -EINVAL; /* indexes count calls in order of first appearance */
    if (e->ntools == MAX_TOOLS)
        return -E2BIG;
    if (e->ntools == e->tools_cap) {
        size_t cap = e->tools_cap ? e->tools_cap * 2 : 4;
        oai_tool_t *p = realloc(e->tools, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        e->tools = p;
        e->tools_cap = cap;
    }
    oai_tool_t *t = &e->tools[e->ntools];
    *t = (oai_tool_t){0};
    yr_buf_init(&t->id, MAX_NAME + 32);
    yr_buf_init(&t->name, MAX_NAME);
    yr_buf_init(&t->args, MAX_HELD);
    yr_buf_init(&t->sig, MAX_HELD);
    if (ev->id.len > MAX_NAME || ev->name.len > MAX_NAME)
        return -E2BIG;
    int rc =
        ev->id.len > 0 ? yr_buf_append_str(&t->id, ev->id) : default_call_id(e, ev->index, &t->id);
    /* A Gemini thoughtSignature on the call (ev->signature) goes out as
     * extra_content.google.thought_signature (write_signature). */
    if (rc == 0 && e->stream)
        rc = chunk_tool_start(e, out, ev->index, str_of(&t->id), ev->name, ev->signature);
    if (rc == 0 && !e->stream) {
        size_t n = t->id.len + ev->name.len + ev->signature.len;
        rc = hold(e, out, n);
        if (rc == 0)
            rc = yr_buf_append_str(&t->name, ev->name);
        if (rc == 0)
            rc = yr_buf_append_str(&t->sig, ev->signature);
        if (rc == 0)
            e->held += n;
    }
    if (rc < 0) {
        tool_free(t);
        return rc;
    }
    if (e->stream) /* a stream needs only the count of argument bytes */
        tool_free(t);
    e->ntools++;
    return 0;
}

static int tool_args(yr_oai_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (ev->index >= e->ntools)
        return -EINVAL;
    if (ev->text.len == 0)
        return 0;
    oai_tool_t *t = &e->tools[ev->index];
    int rc =
        e->stream ? chunk_tool_args(e, out, ev->index, ev->text) : keep(e, out, &t->args, ev->text);
    if (rc == 0)
        t->args_len += ev->text.len;
    return rc;
}

static int tool_end(yr_oai_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (ev->index >= e->ntools)
        return -EINVAL;
    if (!e->stream) /* END writes "{}" for a call without arguments */
        return 0;
    int rc = close_tools(e, out, ev->index, ev->index + 1);
    if (rc == 0)
        mark_tools_closed(e, ev->index, ev->index + 1);
    return rc;
}

/* ---- non-stream: the whole object at END -------------------------------------------------- */

static int write_tool_calls(const yr_oai_enc_t *e, yr_buf_t *out)
{
    int rc = yr_buf_append_str(out, YR_STR(",\"tool_calls\":["));
    for (size_t i = 0; rc == 0 && i < e->ntools; i++) {
        const oai_tool_t *t = &e->tools[i];
        rc = yr_buf_append_str(out, i > 0 ? YR_STR(",{\"id\":") : YR_STR("{\"id\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(out, str_of(&t->id));
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR(",\"type\":\"function\",\"function\":{\"name\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(out, str_of(&t->name));
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR(",\"arguments\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(out, t->args.len > 0 ? str_of(&t->args) : YR_STR("{}"));
        if (rc == 0)
            rc = yr_buf_append(out, "}", 1);
        if (rc == 0)
            rc = write_signature(out, str_of(&t->sig));
        if (rc == 0)
            rc = yr_buf_append(out, "}", 1);
    }
    if (rc == 0)
        rc = yr_buf_append(out, "]", 1);
    return rc;
}

/* A string field, or null when nothing of it came. */
static int write_opt(yr_buf_t *out, const char *key, bool has, const yr_buf_t *v)
{
    int rc = yr_buf_printf(out, ",\"%s\":", key);
    if (rc == 0)
        rc = has ? yr_buf_append_json_str(out, str_of(v)) : yr_buf_append_str(out, YR_STR("null"));
    return rc;
}

/* {"id","object":"chat.completion","created","model","choices":[{"index":0,
 *  "message":{"role":"assistant","content","refusal"(,"tool_calls")
 *  (,"reasoning_content")},"logprobs":null,"finish_reason"}](,"usage")} */
static int write_completion(const yr_oai_enc_t *e, yr_buf_t *out)
{
    int rc = yr_buf_append_str(out, str_of(&e->head));
    if (rc == 0)
        rc = yr_buf_append_str(
            out, YR_STR("\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\""));
    if (rc == 0)
        rc = write_opt(out, "content", e->has_text, &e->text);
    if (rc == 0)
        rc = write_opt(out, "refusal", e->has_refusal, &e->refusal);
    if (rc == 0 && e->ntools > 0)
        rc = write_tool_calls(e, out);
    if (rc == 0 && e->reasoning.len > 0)
        rc = write_opt(out, "reasoning_content", true, &e->reasoning);
    if (rc == 0)
        rc = yr_buf_printf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]",
                           yr_finish_openai(finish_of(e)));
    if (rc == 0 && e->usage.present) {
        rc = yr_buf_append_str(out, YR_STR(",\"usage\":"));
        if (rc == 0)
            rc = write_usage(&e->usage, out);
    }
    if (rc == 0)
        rc = yr_buf_append(out, "}", 1);
    return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* A text-like delta: streamed as a one-field delta, or kept for END. */
static int on_text(yr_oai_enc_t *e, yr_buf_t *out, yr_str_t key, yr_buf_t *kept, yr_str_t text)
{
    if (e->stream)
        return text.len > 0 ? chunk_text(e, out, key, text) : 0;
    return keep(e, out, kept, text);
}

static int on_event(yr_oai_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    int rc;
    switch (ev->type) {
    case YR_EV_TEXT:
        rc = on_text(e, out, YR_STR("{\"content\":"), &e->text, ev->text);
        if (rc == 0)
            e->has_text = true;
        return rc;
    case YR_EV_REASONING:
        /* Only the text: a thinking block's signature and redacted thinking
         * have no OpenAI field and are dropped (a later change carries them
         * as extra_content). */
        return ev->redacted
                   ? 0
                   : on_text(e, out, YR_STR("{\"reasoning_content\":"), &e->reasoning, ev->text);
    case YR_EV_REFUSAL:
        rc = on_text(e, out, YR_STR("{\"refusal\":"), &e->refusal, ev->text);
        if (rc == 0)
            e->has_refusal = true;
        return rc;
    case YR_EV_TOOL_START: return tool_start(e, ev, out);
    case YR_EV_TOOL_ARGS: return tool_args(e, ev, out);
    case YR_EV_TOOL_END: return tool_end(e, ev, out);
    case YR_EV_FINISH:
        if (e->finished)
            return 0;
        rc = e->stream ? write_finish(e, out, ev->finish) : 0;
        if (rc == 0)
            commit_finish(e, ev->finish);
        return rc;
    case YR_EV_USAGE:
        e->usage = ev->usage;
        e->usage.present = true;
        return 0;
    case YR_EV_END:
        rc = e->stream ? stream_end(e, out) : write_completion(e, out);
        if (rc == 0)
            e->over = true;
        return rc;
    case YR_EV_START:
    case YR_EV_ERROR:
    default: return -EINVAL; /* handled by the caller */
    }
}

int yr_oai_enc_event(yr_oai_enc_t *e, const yr_event_t *ev, yr_buf_t *out)
{
    if (e->over)
        return 0;
    if (ev->type == YR_EV_ERROR) {
        e->over = true; /* the proxy reports it in the client's dialect */
        return 0;
    }
    if (ev->type == YR_EV_START && e->started)
        return -EINVAL;
    size_t mark = out->len;
    bool was_started = e->started;
    int rc = 0;
    if (!e->started) /* content without a START still gets a head */
        rc = start(e, ev->type == YR_EV_START ? ev : NULL);
    if (rc == 0 && e->stream && !was_started)
        rc = chunk_raw(e, out, YR_STR("{\"role\":\"assistant\",\"content\":\"\"}"), NULL);
    if (rc == 0 && ev->type != YR_EV_START)
        rc = on_event(e, ev, out);
    if (rc < 0) {
        restore(out, mark);
        e->started = was_started;
    }
    return rc;
}
