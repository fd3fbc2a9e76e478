/* The machinery of one simulated request: routing to a dialect, auth,
 * picking the scripted behaviour, delays, stream pacing with backpressure,
 * and the scripted faults (hang, malformed, cut).
 *
 * An exchange lives in its request's pool. Its only non-memory resource is
 * an optional timer (headers_delay_ms / chunk_delay_ms), released by the pool
 * cleanup, which also settles the statistics: the server destroys the pool
 * exactly once, after the response was written or right after on_abort, so
 * every exchange ends up counted as completed or aborted.
 *
 * Phases (x->phase): NEW -> [DELAY] -> DONE, or NEW -> [DELAY] -> STREAMING
 * -> [CUTTING] -> DONE, or NEW -> HANG. Timer and drain callbacks act only in
 * the phase that armed them. */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/log.h"
#include "sim.h"

/* Dialects, first match wins. Add new ones here (see docs/sim.md). */
static const sim_dialect_t *const dialects[] = {
    &sim_dialect_responses,  /* POST .../responses */
    &sim_dialect_embeddings, /* POST .../embeddings */
    &sim_dialect_gemini_embed, /* models/{m}:batchEmbedContents, :embedContent */
    &sim_dialect_azure, /* before OpenAI: its paths end in /chat/completions too */
    &sim_dialect_openai,
    &sim_dialect_anthropic,
    &sim_dialect_vertex_embed, /* publishers/google/models/{m}:predict */
    &sim_dialect_vertex_gemini, /* before Gemini: its paths end in models/{m}:method too */
    &sim_dialect_vertex_anthropic,
    &sim_dialect_gemini,
    &sim_dialect_bedrock,
};

static void stream_pump(sim_exchange_t *x);

/* ---- timers --------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data); /* the sim_timer_t */
}

sim_timer_t *sim_timer_new(uv_loop_t *loop, void *owner)
{
    sim_timer_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    uv_timer_init(loop, &t->handle);
    t->owner = owner;
    t->handle.data = t;
    return t;
}

void sim_timer_close(sim_timer_t *t)
{
    if (t == NULL)
        return;
    t->owner = NULL;
    uv_close((uv_handle_t *)&t->handle, on_timer_closed);
}

static int arm_timer(sim_exchange_t *x, uint64_t ms, uv_timer_cb cb)
{
    if (x->timer == NULL) {
        x->timer = sim_timer_new(x->sim->loop, x);
        if (x->timer == NULL)
            return -ENOMEM;
    }
    return uv_timer_start(&x->timer->handle, cb, ms, 0);
}

static sim_exchange_t *timer_owner(uv_timer_t *h)
{
    return ((sim_timer_t *)h->data)->owner;
}

/* ---- lifetime and statistics ------------------------------------------------------- */

static void exchange_cleanup(void *data)
{
    sim_exchange_t *x = data;
    sim_t *sim = x->sim;
    sim_timer_close(x->timer);
    x->timer = NULL;
    if (sim->verbose)
        yr_log_info("%.*s %.*s: %s%s, %zu events, %.1f ms", (int)x->req->method_name.len,
                    x->req->method_name.ptr, (int)x->req->path.len, x->req->path.ptr,
                    x->aborted ? "aborted by the client" : "completed", x->cut ? " (cut)" : "",
                    x->events, (double)(uv_hrtime() - x->req->start_ns) / 1e6);
    sim_behaviour_clear(&x->beh);
    json_decref(x->body);
    x->body = NULL;
    sim->stats.active--;
    if (x->aborted)
        sim->stats.aborted++;
    else
        sim->stats.completed++;
    if (x->cut)
        sim->stats.cut++;
    sim_stats_changed(sim);
}

/* The client went away before the response ended. */
static void on_abort(yr_http_req_t *req)
{
    sim_exchange_t *x = req->data;
    if (!x->cut)
        x->aborted = true;
    x->phase = SIM_PHASE_DONE;
}

static void on_drain(yr_http_req_t *req)
{
    sim_exchange_t *x = req->data;
    size_t pending = yr_http_stream_pending(req);
    if (x->phase == SIM_PHASE_CUTTING) {
        if (pending == 0)
            stream_pump(x);
        return;
    }
    if (x->phase == SIM_PHASE_STREAMING && x->waiting_drain && pending <= SIM_STREAM_HIGH_WATER) {
        x->waiting_drain = false;
        stream_pump(x);
    }
}

/* ---- responses -------------------------------------------------------------------------- */

/* x-request-id, retry-after and the scripted headers; NULL/0 when out of memory. */
static yr_http_header_t *response_headers(sim_exchange_t *x, size_t *n)
{
    const sim_behaviour_t *b = &x->beh;
    size_t cap = 8 + json_object_size(b->headers);
    yr_http_header_t *h = yr_palloc(x->pool, cap * sizeof(*h));
    *n = 0;
    if (h == NULL)
        return NULL;
    h[(*n)++] = (yr_http_header_t){YR_STR("x-request-id"), yr_str(x->request_id)};
    const sim_dialect_t *d = x->dialect;
    if (d != NULL && d->request_id_header != NULL)
        h[(*n)++] = (yr_http_header_t){yr_str(d->request_id_header), yr_str(x->request_id)};
    if (d != NULL && d->error_type_header != NULL && x->err.status >= 400 && x->err.type.len > 0) {
        yr_str_t sfx = yr_str(d->error_type_suffix);
        char *v = yr_palloc(x->pool, x->err.type.len + sfx.len + 1);
        if (v != NULL) {
            memcpy(v, x->err.type.ptr, x->err.type.len);
            if (sfx.len)
                memcpy(v + x->err.type.len, sfx.ptr, sfx.len);
            h[(*n)++] = (yr_http_header_t){yr_str(d->error_type_header),
                                           {v, x->err.type.len + sfx.len}};
        }
    }
    if (b->retry_after.ptr != NULL)
        h[(*n)++] = (yr_http_header_t){YR_STR("retry-after"), b->retry_after};
    uint64_t secs;
    if (x->rl_over && x->dialect->retry_after_ms) {
        char *ms = yr_palloc(x->pool, 24);
        if (ms != NULL) /* --rate-limit knows the window's end to the millisecond */
            h[(*n)++] = (yr_http_header_t){
                YR_STR("retry-after-ms"),
                {ms, (size_t)snprintf(ms, 24, "%lld", (long long)x->rl_reset_ms)}};
    } else if (b->retry_after.ptr != NULL && x->dialect->retry_after_ms &&
               yr_str_to_u64(b->retry_after, UINT64_MAX / 1000, &secs) == 0) {
        char *ms = yr_palloc(x->pool, 24);
        if (ms != NULL) {
            int len = snprintf(ms, 24, "%llu", (unsigned long long)(secs * 1000));
            h[(*n)++] = (yr_http_header_t){YR_STR("retry-after-ms"), {ms, (size_t)len}};
        }
    }
    if (x->rl_active) {
        char *v = yr_palloc(x->pool, 96);
        if (v != NULL) {
            int l1 = snprintf(v, 32, "%u", x->sim->rl_limit);
            int l2 = snprintf(v + 32, 32, "%lld", (long long)x->rl_remaining);
            int l3 = snprintf(v + 64, 32, "%lldms", (long long)x->rl_reset_ms);
            h[(*n)++] = (yr_http_header_t){YR_STR("x-ratelimit-limit-requests"), {v, (size_t)l1}};
            h[(*n)++] =
                (yr_http_header_t){YR_STR("x-ratelimit-remaining-requests"), {v + 32, (size_t)l2}};
            h[(*n)++] =
                (yr_http_header_t){YR_STR("x-ratelimit-reset-requests"), {v + 64, (size_t)l3}};
        }
    }
    const char *name;
    json_t *v;
    json_object_foreach(b->headers, name, v)
    {
        h[(*n)++] = (yr_http_header_t){yr_str(name), {json_string_value(v), json_string_length(v)}};
    }
    return h;
}

/* --rate-limit: counts this request against its key's window. True when it
 * is over the limit (the caller answers 429 with retry-after). */
static bool rate_limit(sim_exchange_t *x)
{
    sim_t *sim = x->sim;
    if (sim->rl_limit == 0)
        return false;
    yr_str_t key = yr_http_req_header(x->req, YR_STR("authorization"));
    if (key.len == 0)
        key = yr_http_req_header(x->req, YR_STR("x-api-key"));
    if (key.len == 0)
        key = yr_http_req_header(x->req, YR_STR("api-key"));
    if (key.len == 0)
        key = yr_http_req_header(x->req, YR_STR("x-goog-api-key"));
    if (key.len >= sizeof(sim->rl[0].key))
        key.len = sizeof(sim->rl[0].key) - 1;
    int64_t now = (int64_t)uv_now(sim->loop);
    int64_t window = now / sim->rl_window_ms;
    sim_rl_slot_t *slot = NULL, *oldest = &sim->rl[0];
    for (size_t i = 0; i < SIM_RL_KEYS && slot == NULL; i++) {
        if (strlen(sim->rl[i].key) == key.len && memcmp(sim->rl[i].key, key.ptr, key.len) == 0 &&
            (key.len > 0 || sim->rl[i].window != 0))
            slot = &sim->rl[i];
        else if (sim->rl[i].window < oldest->window)
            oldest = &sim->rl[i];
    }
    if (slot == NULL) {
        slot = oldest; /* a new key takes the slot used longest ago */
        memcpy(slot->key, key.ptr, key.len);
        slot->key[key.len] = '\0';
        slot->window = -1;
    }
    if (slot->window != window) {
        slot->window = window;
        slot->used = 0;
    }
    slot->used++;
    x->rl_active = true;
    x->rl_reset_ms = (window + 1) * sim->rl_window_ms - now;
    x->rl_remaining = slot->used >= sim->rl_limit ? 0 : sim->rl_limit - slot->used;
    if (slot->used <= sim->rl_limit)
        return false;
    sim->stats.rate_limited++;
    x->rl_over = true;
    return true;
}

static void respond(sim_exchange_t *x, int status, yr_str_t content_type, yr_str_t body)
{
    size_t n;
    yr_http_header_t *h = response_headers(x, &n);
    x->phase = SIM_PHASE_DONE;
    yr_http_respond(x->req, status, h, n, content_type, body);
}

static void respond_error(sim_exchange_t *x)
{
    yr_buf_t *b = &x->sim->scratch;
    yr_buf_reset(b);
    if (x->dialect->render_error(&x->err, b) < 0) {
        respond(x, 500, YR_STR("text/plain"), YR_STR("out of memory\n"));
        return;
    }
    respond(x, x->err.status, YR_STR("application/json"), (yr_str_t){b->data, b->len});
}

/* The provider's content filter refused the prompt (Azure), with the
 * behaviour's error overrides. */
static void filter_error(sim_exchange_t *x)
{
    const sim_behaviour_t *b = &x->beh;
    x->dialect->filter_error(b->content_filter, &x->err);
    if (b->error_message.ptr != NULL)
        x->err.message = b->error_message;
    respond_error(x);
}

static void internal_error(sim_exchange_t *x)
{
    x->dialect->error_defaults(500, &x->err);
    respond_error(x);
}

/* The scripted error: the dialect's defaults for the status, then whatever
 * the behaviour overrides. */
static void scripted_error(sim_exchange_t *x)
{
    const sim_behaviour_t *b = &x->beh;
    x->dialect->error_defaults(b->status, &x->err);
    if (b->error_message.ptr != NULL)
        x->err.message = b->error_message;
    if (b->error_type.ptr != NULL)
        x->err.type = b->error_type;
    if (b->error_code.ptr != NULL)
        x->err.code = b->error_code;
    if (b->error_param.ptr != NULL)
        x->err.param = b->error_param;
    x->err.retry_delay = b->retry_delay;
    x->err.quota_id = b->quota_id;
    respond_error(x);
}

/* ---- cuts ------------------------------------------------------------------------------------ */

/* Drops the connection after what was already queued: the fault cut_after
 * simulates. yr_http_abort() does not run on_abort (we chose this), and the
 * pool cleanup releases the exchange. */
static void cut_connection(sim_exchange_t *x)
{
    x->cut = true;
    x->phase = SIM_PHASE_DONE;
    yr_http_abort(x->req);
}

/* Non-streamed cut: a complete head announcing the whole body, then half of
 * it, then the connection goes away. */
static void cut_fixed_response(sim_exchange_t *x, yr_str_t body)
{
    yr_http_req_t *req = x->req;
    yr_buf_t out;
    yr_buf_init(&out, SIM_MAX_RESPONSE);
    int rc = yr_buf_printf(&out,
                           "HTTP/1.%d 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\nx-request-id: %s\r\n\r\n",
                           req->http_minor ? 1 : 0, body.len, x->request_id);
    if (rc == 0)
        rc = yr_buf_append(&out, body.ptr, body.len / 2);
    if (rc == 0)
        rc = yr_http_write_raw(req, out.data, out.len);
    yr_buf_free(&out);
    cut_connection(x);
}

/* ---- streaming ------------------------------------------------------------------------------ */

static void on_chunk_timer(uv_timer_t *h)
{
    sim_exchange_t *x = timer_owner(h);
    if (x == NULL || x->phase != SIM_PHASE_STREAMING)
        return;
    x->delay_elapsed = true;
    stream_pump(x);
}

/* The stream failed on our side or the socket: end it without more events. */
static void stream_fail(sim_exchange_t *x, bool client_gone)
{
    if (client_gone)
        x->aborted = true;
    x->phase = SIM_PHASE_DONE;
    yr_http_stream_end(x->req, true);
}

/* Writes events until the stream ends, a delay is due, or the queue is full.
 * Called from the head, the chunk timer and on_drain; must not touch x after
 * yr_http_stream_end (the request may be gone). */
static void stream_pump(sim_exchange_t *x)
{
    yr_http_req_t *req = x->req;
    const sim_behaviour_t *b = &x->beh;
    yr_buf_t *buf = &x->sim->scratch;
    for (;;) {
        bool cut_due = b->cut_after >= 0 && x->events >= (uint64_t)b->cut_after;
        if (cut_due || x->phase == SIM_PHASE_CUTTING) {
            /* Let what is queued reach the socket, then cut (from on_drain). */
            x->phase = SIM_PHASE_CUTTING;
            if (yr_http_stream_pending(req) == 0)
                cut_connection(x);
            return;
        }
        if (yr_http_stream_pending(req) > SIM_STREAM_HIGH_WATER) {
            x->waiting_drain = true;
            return;
        }
        if (b->chunk_delay_ms > 0 && x->events > 0 && !x->delay_elapsed) {
            if (arm_timer(x, b->chunk_delay_ms, on_chunk_timer) < 0)
                stream_fail(x, false);
            return;
        }
        x->delay_elapsed = false;
        yr_buf_reset(buf);
        int rc;
        if (x->events == x->malformed_at && !x->malformed_sent) {
            x->malformed_sent = true;
            rc = yr_buf_append_str(buf, x->dialect->malformed_event);
            rc = rc < 0 ? rc : SIM_EVENT;
        } else {
            rc = x->dialect->stream_next(x, buf);
        }
        if (rc < 0) {
            stream_fail(x, false);
            return;
        }
        if (rc == SIM_EVENT_LAST && b->cut_after >= 0) {
            x->phase = SIM_PHASE_CUTTING; /* a scripted cut never sends the terminator */
            continue;
        }
        if (yr_http_stream_write(req, buf->data, buf->len) < 0) {
            stream_fail(x, true);
            return;
        }
        x->events++;
        if (rc == SIM_EVENT_LAST) {
            x->phase = SIM_PHASE_DONE;
            yr_http_stream_end(req, false);
            return;
        }
    }
}

static void stream_begin(sim_exchange_t *x, int status)
{
    size_t n;
    yr_http_header_t *h = response_headers(x, &n);
    x->dstate = yr_pcalloc(x->pool, x->dialect->stream_state_size);
    if (x->dstate == NULL) {
        internal_error(x);
        return;
    }
    x->malformed_at = SIZE_MAX;
    if (x->beh.malformed) {
        size_t total = x->dialect->stream_events(x);
        x->malformed_at = total / 2 ? total / 2 : 1;
    }
    x->phase = SIM_PHASE_STREAMING;
    if (yr_http_stream_start(x->req, status, h, n, x->dialect->stream_content_type) < 0) {
        stream_fail(x, true);
        return;
    }
    stream_pump(x);
}

/* ---- the reply ----------------------------------------------------------------------------------
 */

static void send_reply(sim_exchange_t *x)
{
    const sim_behaviour_t *b = &x->beh;
    int status = b->status >= 200 && b->status < 300 ? b->status : 200;
    if (x->prompt.stream) {
        stream_begin(x, status);
        return;
    }
    yr_buf_t *buf = &x->sim->scratch;
    yr_buf_reset(buf);
    if (x->dialect->render(x, buf) < 0) {
        internal_error(x);
        return;
    }
    yr_str_t body = {buf->data, buf->len};
    if (b->cut_after >= 0) {
        cut_fixed_response(x, body);
        return;
    }
    if (b->malformed)
        body.len /= 2; /* a complete HTTP response whose JSON is cut short */
    respond(x, status, YR_STR("application/json"), body);
}

static void act(sim_exchange_t *x)
{
    const sim_behaviour_t *b = &x->beh;
    switch (x->action) {
    case SIM_ACT_RAW:
        respond(x, b->status ? b->status : 200,
                b->content_type.ptr ? b->content_type : YR_STR("application/json"), b->body);
        break;
    case SIM_ACT_ERROR: respond_error(x); break;
    case SIM_ACT_STATUS: scripted_error(x); break;
    case SIM_ACT_FILTER: filter_error(x); break;
    case SIM_ACT_REPLY: send_reply(x); break;
    }
}

static void on_headers_timer(uv_timer_t *h)
{
    sim_exchange_t *x = timer_owner(h);
    if (x != NULL && x->phase == SIM_PHASE_DELAY)
        act(x);
}

static void chat_start(sim_exchange_t *x)
{
    sim_behaviour_t *b = &x->beh;
    char why[300];
    if (sim_script_pick(x, why, sizeof(why)) < 0) {
        sim_error_set(&x->err, 400, "invalid_request_error", "sim_invalid_behaviour", "%s", why);
        respond_error(x);
        return;
    }
    if (b->hang) {
        x->phase = SIM_PHASE_HANG; /* until the client goes away */
        return;
    }
    if (rate_limit(x)) {
        char *ra = yr_palloc(x->pool, 24);
        if (ra != NULL)
            b->retry_after = (yr_str_t){ra, (size_t)snprintf(ra, 24, "%lld",
                                                            (long long)(x->rl_reset_ms + 999) / 1000)};
        b->status = 429;
        b->has_body = false;
    }
    if (b->has_body) {
        x->action = SIM_ACT_RAW;
    } else if (b->status >= 300) {
        x->action = SIM_ACT_STATUS;
    } else if (b->content_filter.ptr != NULL && x->dialect->filter_error != NULL &&
               !yr_str_eq(b->finish_reason, YR_STR("content_filter"))) {
        x->action = SIM_ACT_FILTER; /* the prompt is refused before it is read */
    } else if (x->dialect->parse(x, x->body, &x->err) < 0) {
        x->action = SIM_ACT_ERROR;
    } else if (sim_reply_build(x) < 0) {
        x->dialect->error_defaults(500, &x->err);
        x->action = SIM_ACT_ERROR;
    } else {
        x->action = SIM_ACT_REPLY;
    }
    if (b->headers_delay_ms > 0) {
        x->phase = SIM_PHASE_DELAY;
        if (arm_timer(x, b->headers_delay_ms, on_headers_timer) == 0)
            return;
    }
    act(x);
}

/* ---- entry -------------------------------------------------------------------------------------
 */

static void not_found(sim_exchange_t *x)
{
    json_t *path = sim_json_string(x->req->path.ptr, x->req->path.len);
    sim_error_set(&x->err, 404, "invalid_request_error", NULL, "Invalid URL (%.*s %.200s)",
                  (int)x->req->method_name.len, x->req->method_name.ptr,
                  path ? json_string_value(path) : "");
    json_decref(path);
    respond_error(x);
}

static void models(sim_exchange_t *x, sim_route_t route)
{
    yr_buf_t *b = &x->sim->scratch;
    yr_buf_reset(b);
    if (x->dialect->render_models(x->req, route, b) < 0) {
        internal_error(x);
        return;
    }
    respond(x, 200, YR_STR("application/json"), (yr_str_t){b->data, b->len});
}

void sim_exchange_start(sim_t *sim, yr_http_req_t *req)
{
    sim_exchange_t *x = yr_pcalloc(req->pool, sizeof(*x));
    if (x == NULL || yr_pool_cleanup_add(req->pool, exchange_cleanup, x) < 0) {
        yr_http_respond(req, 500, NULL, 0, YR_STR("text/plain"), YR_STR("out of memory\n"));
        return;
    }
    x->sim = sim;
    x->req = req;
    x->pool = req->pool;
    x->dialect = &sim_dialect_openai; /* its error shape answers unknown paths */
    sim_behaviour_init(&x->beh);
    req->data = x;
    req->on_abort = on_abort;
    req->on_drain = on_drain;
    sim->stats.requests++;
    sim->stats.active++;

    uint64_t seq = ++sim->id_counter;
    memcpy(x->request_id, "req_", 4);
    sim_random_alnum(seq ^ 0x5EEDull, x->request_id + 4, 28);
    memcpy(x->id, "chatcmpl-", 9);
    sim_random_alnum(seq, x->id + 9, 29);
    x->created = (int64_t)time(NULL);
    if (req->body.len > 0) {
        json_error_t jerr;
        x->body = json_loadb(req->body.data, req->body.len, JSON_DECODE_ANY, &jerr);
    }
    if (sim->record)
        sim_record(sim, req, x->body);
    sim_stats_changed(sim);

    sim_route_t route = SIM_ROUTE_NONE;
    for (size_t i = 0; i < sizeof(dialects) / sizeof(dialects[0]) && route == SIM_ROUTE_NONE; i++) {
        route = dialects[i]->route(req);
        if (route != SIM_ROUTE_NONE)
            x->dialect = dialects[i];
    }
    if (route == SIM_ROUTE_NONE) {
        not_found(x);
        return;
    }
    if (x->dialect->check_auth(req, sim->require_key, &x->err) < 0) {
        respond_error(x);
        return;
    }
    if (route == SIM_ROUTE_CHAT)
        chat_start(x);
    else
        models(x, route);
}

void sim_on_http_error(yr_http_req_t *req, int status, const char *code, const char *message)
{
    sim_error_t err;
    sim_error_set(&err, status, "invalid_request_error", code, "%s", message);
    yr_buf_t b;
    yr_buf_init(&b, 4096);
    if (sim_dialect_openai.render_error(&err, &b) == 0)
        yr_http_respond(req, status, NULL, 0, YR_STR("application/json"),
                        (yr_str_t){b.data, b.len});
    else
        yr_http_respond(req, status, NULL, 0, YR_STR("text/plain"), yr_str(message));
    yr_buf_free(&b);
}
