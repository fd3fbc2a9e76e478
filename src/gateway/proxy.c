/* POST /v1/chat/completions and /v1/messages: validate, pick routes, try
 * them in order, relay.
 *
 * The internal model is OpenAI's. An OpenAI client's body goes to the
 * provider's build_chat as it is; an Anthropic client's body is converted to
 * OpenAI first (api/anthropic_in.c) and the answer converted back, except
 * when the route is Anthropic itself: then the native passthrough forwards
 * the client's own bytes (providers/anthropic_native.c).
 *
 * States of one chat request (chat_t.state, changed only by set_state):
 *   FETCHING  image URLs are being fetched for a provider that takes images
 *             inline only (upstream/fetch.c, behind the SSRF guard)
 *   ATTEMPT   an upstream call is in flight and nothing was sent to the client;
 *             any retryable failure moves on to the next route
 *   STREAMING the 200 head and at least one event went to the client; from
 *             here a failure becomes an SSE error event, never a retry
 *   DONE      the response ended (or the client went away)
 * The chat_t lives in the request pool; a pool cleanup cancels a call still in
 * flight, so a client disconnect at any point releases everything. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/anthropic_in.h"
#include "api/chat.h"
#include "api/images.h"
#include "api/sse.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "providers/provider.h"
#include "upstream/fetch.h"

#define MAX_ROUTES 16
#define MAX_UPSTREAM_BODY (64 * 1024 * 1024) /* a non-streamed answer */
#define MAX_ERROR_BODY (64 * 1024)           /* what we keep of an upstream error */
#define STREAM_HIGH_WATER (256 * 1024)       /* pause upstream above this */
#define STREAM_LOW_WATER (64 * 1024)         /* resume below this */

enum chat_state { ST_FETCHING, ST_ATTEMPT, ST_STREAMING, ST_DONE };

struct chat;
typedef struct {
    struct chat *c;
    json_t *part;    /* the image_url content part, in c->chat.root */
    yr_fetch_t *f;   /* in flight, or NULL */
} image_slot_t;

typedef struct chat {
    yr_gw_req_t *g;
    enum chat_state state;
    image_slot_t *images; /* in the pool */
    size_t nimages, images_pending;
    yr_fetch_policy_t image_policy;
    yr_dialect_t dialect;
    bool count_tokens;             /* POST /v1/messages/count_tokens */
    const yr_native_ops_t *native; /* this attempt passes through, or NULL */
    yr_buf_t oai_body;             /* Anthropic client: its request as OpenAI */
    yr_anth_req_info_t ainfo;
    yr_anth_enc_t *enc;            /* Anthropic client, translated stream */
    yr_buf_t enc_out;
    yr_chat_req_t chat;
    const yr_model_conf_t *model;
    const yr_route_conf_t *routes[MAX_ROUTES];
    size_t nroutes, next;
    const yr_route_conf_t *route;
    const yr_provider_ops_t *ops;
    yr_upstream_call_t *call;
    yr_buf_t upbody;  /* upstream request body when rewritten */
    yr_buf_t resp;    /* upstream response (non-stream) or error body */
    yr_buf_t out;     /* translated events waiting to be written */
    yr_sse_parser_t sse;
    yr_call_ctx_t cx; /* the provider's view of this attempt */
    bool done_seen;
    unsigned events_out; /* upstream events that produced client output */
    bool event_failed; /* a malformed event, an error event or a failed client write */
    int event_rc;      /* why: -EPROTO, -ECANCELED (provider error event), -E2BIG, ... */
    /* the last failure, reported when every route failed */
    yr_err_t last_err;
    char last_msg[512];
    char last_param[96];
    char last_code[64];
    char retry_after[32];
    int status; /* final status for metrics */
} chat_t;

static void attempt_next(chat_t *c);

static void set_state(chat_t *c, enum chat_state s)
{
    yr_log_debug("%s: state %d -> %d", c->g->id, c->state, s);
    c->state = s;
}

static const char *vendor_name(const chat_t *c)
{
    return c->route ? c->route->provider->name : NULL;
}

static void finish(chat_t *c, int status)
{
    set_state(c, ST_DONE);
    c->status = status;
    yr_worker_t *w = c->g->w;
    uint64_t us = (uv_hrtime() - c->g->http->start_ns) / 1000;
    yr_metrics_request(&w->metrics, c->model ? c->model->id : NULL, vendor_name(c), status, us);
}

static void cancel_fetches(chat_t *c)
{
    for (size_t i = 0; i < c->nimages; i++) {
        if (c->images[i].f != NULL) {
            yr_fetch_cancel(c->images[i].f);
            c->images[i].f = NULL;
        }
    }
    c->images_pending = 0;
}

static void on_pool_cleanup(void *arg)
{
    chat_t *c = arg;
    cancel_fetches(c); /* before the JSON tree they write into goes away */
    if (c->call != NULL) {
        yr_upstream_cancel(c->call);
        c->call = NULL;
    }
    if (c->state != ST_DONE)
        finish(c, 499); /* the client went away first */
    yr_metrics_inflight(&c->g->w->metrics, -1);
    yr_chat_free(&c->chat);
    yr_buf_free(&c->upbody);
    yr_buf_free(&c->resp);
    yr_buf_free(&c->out);
    yr_buf_free(&c->oai_body);
    yr_buf_free(&c->enc_out);
    yr_anth_enc_free(c->enc);
    yr_sse_free(&c->sse);
}

static void fail_request(chat_t *c, yr_err_t e, const char *msg, const char *param,
                         const char *code)
{
    finish(c, yr_err_info(e)->status);
    yr_gw_send_error(c->g, e, msg, param, code, YR_STR_NULL);
}

/* ---- the last failure ---------------------------------------------------- */

static void record_failure(chat_t *c, yr_err_t e, enum yr_attempt_outcome o, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

static void record_failure(chat_t *c, yr_err_t e, enum yr_attempt_outcome o, const char *fmt,
                           ...)
{
    c->last_err = e;
    c->last_param[0] = c->last_code[0] = c->retry_after[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_msg, sizeof(c->last_msg), fmt, ap);
    va_end(ap);
    yr_metrics_attempt(&c->g->w->metrics, vendor_name(c), o);
    yr_log_warn("%s: route %s/%s failed: %s", c->g->id, c->route->provider->name,
                c->route->model, c->last_msg);
}

/* An HTTP error from the provider. Returns true when another route may help. */
static bool record_http_failure(chat_t *c, const yr_upstream_call_t *call, int status)
{
    bool retryable;
    yr_err_t e = yr_err_from_upstream_status(status, &retryable);
    yr_api_error_t perr = {0};
    char ptype[64] = "", pcode[64] = "";
    c->ops->parse_error((yr_str_t){c->resp.data ? c->resp.data : "", c->resp.len}, &perr, ptype,
                        sizeof(ptype), pcode, sizeof(pcode));
    enum yr_attempt_outcome o = status == 429  ? YR_ATT_HTTP_429
                                : status >= 500 ? YR_ATT_HTTP_5XX
                                                : YR_ATT_HTTP_4XX;
    const char *vendor = c->route->provider->name;
    if (e == YR_E_UPSTREAM_BAD_REQUEST || e == YR_E_TOO_LARGE) {
        /* The provider's own words help the client fix the request. */
        record_failure(c, e, o, "%s rejected the request: %s", vendor,
                       perr.message[0] ? perr.message : yr_http_status_text(status));
        snprintf(c->last_param, sizeof(c->last_param), "%s", perr.param);
        snprintf(c->last_code, sizeof(c->last_code), "%s", pcode);
    } else if (e == YR_E_RATE_LIMITED) {
        record_failure(c, e, o, "%s is rate limiting requests: %s", vendor,
                       perr.message[0] ? perr.message : "too many requests");
    } else if (e == YR_E_UPSTREAM_AUTH) {
        record_failure(c, e, o, "%s rejected the gateway's provider credentials (HTTP %d)",
                       vendor, status);
    } else {
        record_failure(c, e, o, "%s returned HTTP %d%s%s", vendor, status,
                       perr.message[0] ? ": " : "", perr.message);
    }
    yr_str_t ra = yr_upstream_retry_after(call);
    if (status == 429 || status == 503 || status == 529)
        snprintf(c->retry_after, sizeof(c->retry_after), "%.*s", (int)ra.len, ra.ptr);
    return retryable;
}

static void fail_with_last(chat_t *c)
{
    yr_str_t ra = yr_str(c->retry_after);
    if (c->last_err == YR_E_RATE_LIMITED && ra.len == 0)
        ra = YR_STR("1");
    finish(c, yr_err_info(c->last_err)->status);
    yr_gw_send_error(c->g, c->last_err, c->last_msg, c->last_param[0] ? c->last_param : NULL,
                     c->last_code[0] ? c->last_code : NULL, ra);
}

/* ---- streaming ------------------------------------------------------------- */

static int commit_stream(chat_t *c)
{
    yr_http_header_t h[3] = {
        {YR_STR("x-request-id"), c->g->request_id},
        {YR_STR("Cache-Control"), YR_STR("no-cache")},
        {YR_STR("x-yourouter-vendor"), yr_str(c->route->provider->name)},
    };
    set_state(c, ST_STREAMING);
    return yr_http_stream_start(c->g->http, 200, h, 3, YR_STR("text/event-stream"));
}

/* Re-encodes the OpenAI events in c->out from offset `from` on for an
 * Anthropic client (what is before `from` is already encoded and held). */
static int transcode_out(chat_t *c, size_t from)
{
    const char *p = c->out.data + from;
    size_t n = c->out.len - from;
    int rc = 0;
    while (rc == 0 && n > 0) {
        const char *end = memmem(p, n, "\n\n", 2);
        size_t len = end ? (size_t)(end - p) : n;
        yr_str_t data = {p, len};
        if (yr_str_has_prefix(data, YR_STR("data: ")))
            rc = yr_anth_enc_event(c->enc, (yr_str_t){p + 6, len - 6}, &c->enc_out);
        size_t step = end ? len + 2 : n;
        p += step;
        n -= step;
    }
    c->out.len = from;
    if (c->out.data != NULL)
        c->out.data[from] = '\0';
    if (rc == 0)
        rc = yr_buf_append(&c->out, c->enc_out.data, c->enc_out.len);
    yr_buf_reset(&c->enc_out);
    return rc == -EINVAL ? -EPROTO : rc;
}

static int on_sse_event(const yr_sse_event_t *ev, void *arg)
{
    chat_t *c = arg;
    bool done = false;
    size_t had = c->out.len;
    int rc;
    if (c->native != NULL) {
        rc = c->native->event(&c->cx, ev, &c->out, &done);
    } else {
        rc = c->ops->chat_event(&c->cx, ev, &c->out, &done);
        if (rc == 0 && c->enc != NULL && c->out.len > had)
            rc = transcode_out(c, had);
    }
    if (rc < 0)
        return rc == -EINVAL ? -EPROTO : rc;
    if (c->out.len > had)
        c->events_out++;
    if (done)
        c->done_seen = true;
    return 0;
}

/* For providers that report overload right after their opening event
 * (Anthropic: overloaded_error after message_start), the 200 is committed
 * with the second event, not the first: holding that one content-free event
 * keeps failover possible without delaying any content. Others commit at
 * once, so time to first byte is the provider's. */
static int flush_out(chat_t *c)
{
    if (c->out.len == 0)
        return 0;
    if (c->state == ST_ATTEMPT && c->ops->hold_first_event && c->events_out < 2 &&
        !c->done_seen)
        return 0;
    if (c->state == ST_ATTEMPT && commit_stream(c) < 0)
        return -ECONNRESET;
    int rc = yr_http_stream_write(c->g->http, c->out.data, c->out.len);
    yr_buf_reset(&c->out);
    return rc;
}

/* Sends an SSE error event after the 200 was committed, then ends the
 * stream: the client sees an explicit failure, never a silent truncation. */
static void stream_fail(chat_t *c, yr_err_t e, const char *msg, enum yr_attempt_outcome o)
{
    yr_metrics_attempt(&c->g->w->metrics, vendor_name(c), o);
    yr_log_warn("%s: stream from %s failed after the first byte: %s", c->g->id,
                c->route->provider->name, msg);
    yr_buf_t ev;
    yr_buf_init(&ev, 4096);
    int rc;
    if (c->dialect == YR_DIALECT_ANTHROPIC) {
        /* Anthropic clients expect `event: error` (the SDK raises on it). */
        char m[700];
        snprintf(m, sizeof(m), "%s (request id: %.*s)", msg, (int)c->g->request_id.len,
                 c->g->request_id.ptr);
        rc = yr_buf_append_str(&ev, YR_STR("event: error\ndata: "));
        if (rc == 0)
            rc = yr_anth_error_body(e, yr_str(m), c->g->request_id, &ev);
    } else {
        rc = yr_buf_append_str(&ev, YR_STR("data: "));
        if (rc == 0)
            rc = yr_err_render(&ev, e, yr_str(msg), NULL, "stream_interrupted",
                               c->g->request_id);
    }
    if (rc == 0)
        rc = yr_buf_append_str(&ev, YR_STR("\n\n"));
    if (rc == 0 && yr_http_stream_write(c->g->http, ev.data, ev.len) < 0)
        rc = -ECONNRESET;
    yr_buf_free(&ev);
    finish(c, 502);
    yr_http_stream_end(c->g->http, true);
}

static int stream_data(chat_t *c, const char *p, size_t n)
{
    if (c->state == ST_STREAMING && yr_http_stream_pending(c->g->http) > STREAM_HIGH_WATER)
        return YR_UP_PAUSE;
    int rc = yr_sse_feed(&c->sse, p, n, on_sse_event, c);
    if (rc == 0)
        rc = flush_out(c);
    if (rc < 0) {
        c->event_failed = true;
        c->event_rc = rc;
        if (rc == -ECANCELED)
            snprintf(c->last_msg, sizeof(c->last_msg), "%s reported an error mid-stream: %.400s",
                     c->route->provider->name, c->cx.error.message);
        else if (rc == -E2BIG)
            snprintf(c->last_msg, sizeof(c->last_msg), "an event was larger than %d bytes",
                     YR_SSE_MAX_EVENT);
        else if (rc == -EPROTO)
            snprintf(c->last_msg, sizeof(c->last_msg), "malformed event in the stream");
        else
            snprintf(c->last_msg, sizeof(c->last_msg), "client write failed");
        return YR_UP_ABORT;
    }
    return YR_UP_CONTINUE;
}

static void on_drain(yr_http_req_t *req)
{
    yr_gw_req_t *g = req->data;
    chat_t *c = g->chat;
    if (c->call != NULL && yr_upstream_paused(c->call) &&
        yr_http_stream_pending(req) < STREAM_LOW_WATER)
        yr_upstream_resume(c->call);
}

/* ---- upstream callbacks -------------------------------------------------- */

static bool status_ok(int s)
{
    return s >= 200 && s < 300;
}

static int on_up_head(yr_upstream_call_t *call, void *data)
{
    chat_t *c = data;
    yr_buf_reset(&c->resp);
    c->resp.max = status_ok(yr_upstream_status(call)) ? MAX_UPSTREAM_BODY : MAX_ERROR_BODY;
    return 0;
}

static int on_up_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    chat_t *c = data;
    int status = yr_upstream_status(call);
    if (c->chat.stream && status_ok(status))
        return stream_data(c, p, n);
    if (yr_buf_append(&c->resp, p, n) < 0) {
        if (!status_ok(status))
            return YR_UP_CONTINUE; /* keep the head of an error body only */
        c->event_failed = true;
        snprintf(c->last_msg, sizeof(c->last_msg), "response larger than %d bytes",
                 MAX_UPSTREAM_BODY);
        return YR_UP_ABORT;
    }
    return YR_UP_CONTINUE;
}

static void relay_response(chat_t *c)
{
    yr_buf_t out, anth;
    yr_buf_init(&out, MAX_UPSTREAM_BODY);
    yr_buf_init(&anth, MAX_UPSTREAM_BODY);
    yr_str_t body = {c->resp.data ? c->resp.data : "", c->resp.len};
    yr_str_t client = body;
    int rc;
    if (c->native != NULL) {
        rc = c->native->response(&c->cx, body);
    } else {
        rc = c->ops->chat_response(&c->cx, body, &out, &client);
        if (rc == 0 && c->dialect == YR_DIALECT_ANTHROPIC) {
            rc = yr_anth_response_from_openai(client,
                                              (yr_str_t){c->ainfo.model, c->ainfo.model_len},
                                              &anth);
            client = (yr_str_t){anth.data, anth.len};
        }
    }
    if (rc < 0) {
        yr_buf_free(&out);
        yr_buf_free(&anth);
        record_failure(c, YR_E_UPSTREAM_ERROR, YR_ATT_BAD_RESPONSE,
                       "%s returned a response that is not a valid chat completion",
                       c->route->provider->name);
        attempt_next(c);
        return;
    }
    yr_metrics_attempt(&c->g->w->metrics, vendor_name(c), YR_ATT_OK);
    yr_http_header_t h[1] = {{YR_STR("x-yourouter-vendor"), yr_str(c->route->provider->name)}};
    finish(c, 200);
    yr_gw_send_json(c->g, 200, client, h, 1);
    yr_buf_free(&out);
    yr_buf_free(&anth);
}

static void on_up_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    chat_t *c = data;
    int status = yr_upstream_status(call);
    const char *vendor = c->route->provider->name;
    /* The call ends here. Cleared first: a response sent below may end the
     * request (and free c) before this function returns. */
    c->call = NULL;
    if (c->state == ST_STREAMING) {
        if (err == YR_UP_OK && c->done_seen && !yr_sse_partial(&c->sse)) {
            yr_metrics_attempt(&c->g->w->metrics, vendor_name(c), YR_ATT_OK);
            finish(c, 200);
            yr_http_stream_end(c->g->http, false);
        } else if (c->event_failed) {
            stream_fail(c, YR_E_UPSTREAM_ERROR, c->last_msg, YR_ATT_BAD_RESPONSE);
        } else {
            stream_fail(c, YR_E_UPSTREAM_ERROR,
                        err == YR_UP_OK ? "the upstream stream ended before it was complete"
                                        : "the upstream connection broke mid-stream",
                        YR_ATT_STREAM_CUT);
        }
        return;
    }
    bool retry = true;
    if (err == YR_UP_OK && status_ok(status)) {
        if (!c->chat.stream) {
            relay_response(c);
            return;
        }
        record_failure(c, YR_E_UPSTREAM_ERROR, YR_ATT_BAD_RESPONSE,
                       "%s ended the stream before it was complete", vendor);
    } else if (err == YR_UP_OK) {
        retry = record_http_failure(c, call, status);
    } else if (err == YR_UP_ECONNECT) {
        record_failure(c, YR_E_UPSTREAM_ERROR, YR_ATT_CONNECT, "could not reach %s: %s", vendor,
                       yr_upstream_error_text(call));
    } else if (err == YR_UP_ETIMEDOUT) {
        record_failure(c, YR_E_UPSTREAM_TIMEOUT, YR_ATT_TIMEOUT,
                       "%s did not answer within %u ms", vendor,
                       (unsigned)c->route->provider->first_byte_timeout_ms);
    } else if (c->event_failed && c->event_rc == -ECANCELED) {
        /* An error event before anything reached the client: as good as an
         * HTTP error with that status (e.g. overloaded_error = 529). */
        yr_err_t e = yr_err_from_upstream_status(c->cx.error_status, &retry);
        char why[512];
        snprintf(why, sizeof(why), "%s", c->last_msg);
        record_failure(c, e,
                       c->cx.error_status == 429 ? YR_ATT_HTTP_429
                       : c->cx.error_status >= 500 ? YR_ATT_HTTP_5XX
                                                   : YR_ATT_HTTP_4XX,
                       "%s", why);
    } else if (c->event_failed) {
        char why[512];
        snprintf(why, sizeof(why), "%s", c->last_msg);
        record_failure(c, YR_E_UPSTREAM_ERROR, YR_ATT_BAD_RESPONSE, "%s: %s", vendor, why);
    } else {
        record_failure(c, YR_E_UPSTREAM_ERROR, YR_ATT_STREAM_CUT,
                       "the connection to %s broke before the response was complete", vendor);
    }
    if (retry)
        attempt_next(c);
    else
        fail_with_last(c);
}

static const yr_upstream_cbs_t up_cbs = {
    .on_head = on_up_head,
    .on_data = on_up_data,
    .on_done = on_up_done,
};

/* ---- attempts -------------------------------------------------------------- */

static void attempt_next(chat_t *c)
{
    while (c->next < c->nroutes) {
        c->route = c->routes[c->next++];
        c->ops = yr_provider_ops(c->route->provider->kind);
        yr_buf_reset(&c->upbody);
        yr_buf_reset(&c->resp);
        yr_buf_reset(&c->out);
        yr_sse_free(&c->sse);
        yr_sse_init(&c->sse, YR_SSE_MAX_EVENT);
        c->done_seen = c->event_failed = false;
        c->events_out = 0;
        c->event_rc = 0;
        
        c->native = c->dialect == YR_DIALECT_OPENAI
                        ? NULL
                        : yr_native_ops(c->route->provider->kind, c->dialect);
        c->cx = (yr_call_ctx_t){
            .pool = c->g->http->pool,
            .chat = &c->chat,
            .route = c->route,
            .request_id = c->g->request_id,
            .client_version = yr_http_req_header(c->g->http, YR_STR("anthropic-version")),
            .client_beta = yr_http_req_header(c->g->http, YR_STR("anthropic-beta")),
            .count_tokens = c->count_tokens,
        };
        if (c->native == NULL && c->route->provider->kind != YR_KIND_OPENAI &&
            yr_chat_load_root(&c->chat) < 0) {
            /* Only translating providers need the DOM: build it once. */
            record_failure(c, YR_E_INTERNAL, YR_ATT_CONNECT, "could not parse the request");
            continue;
        }
        yr_anth_enc_free(c->enc);
        c->enc = NULL;
        if (c->dialect == YR_DIALECT_ANTHROPIC && c->native == NULL && c->chat.stream) {
            c->enc = yr_anth_enc_new((yr_str_t){c->ainfo.model, c->ainfo.model_len},
                                     c->g->request_id);
            if (c->enc == NULL) {
                record_failure(c, YR_E_INTERNAL, YR_ATT_CONNECT, "out of memory");
                continue;
            }
        }
        yr_upstream_req_t ureq = {0};
        yr_str_t client_raw = {c->g->http->body.data ? c->g->http->body.data : "",
                               c->g->http->body.len};
        yr_str_t oai_raw = c->dialect == YR_DIALECT_OPENAI
                               ? client_raw
                               : (yr_str_t){c->oai_body.data, c->oai_body.len};
        int rc = c->native ? c->native->build(&c->cx, client_raw, &c->upbody, &ureq)
                           : c->ops->build_chat(&c->cx, oai_raw, &c->upbody, &ureq);
        if (rc == -EINVAL) {
            record_failure(c, YR_E_INVALID_REQUEST, YR_ATT_HTTP_4XX, "%s",
                           c->cx.error.message);
            snprintf(c->last_param, sizeof(c->last_param), "%s", c->cx.error.param);
            continue;
        }
        if (rc == 0)
            rc = yr_upstream_start(c->g->w->up, &ureq, &up_cbs, c, &c->call);
        if (rc == 0)
            return;
        record_failure(c, YR_E_INTERNAL, YR_ATT_CONNECT, "could not start the call to %s: %s",
                       c->route->provider->name, strerror(-rc));
    }
    fail_with_last(c);
}

/* Collects the routes that may serve this request; sends the 400 otherwise. */
static int pick_routes(chat_t *c)
{
    yr_str_t vendor = yr_http_req_header(c->g->http, YR_STR("vendor"));
    /* Routes come in config order; chat_new and route_and_go are below. */
    bool pinned = vendor.len > 0 && !yr_str_ieq(vendor, YR_STR("auto"));
    size_t unsupported = 0;
    for (size_t i = 0; i < c->model->nroutes && c->nroutes < MAX_ROUTES; i++) {
        const yr_route_conf_t *r = &c->model->routes[i];
        if (pinned && !yr_str_ieq(vendor, yr_str(r->provider->name)))
            continue;
        if (yr_provider_ops(r->provider->kind) == NULL) {
            unsupported++;
            continue;
        }
        if (c->count_tokens && yr_native_ops(r->provider->kind, c->dialect) == NULL)
            continue; /* only the provider's own API can count */
        c->routes[c->nroutes++] = r;
    }
    if (c->nroutes > 0)
        return 0;
    if (c->count_tokens)
        return -EINVAL; /* the caller estimates instead */
    char msg[512];
    if (pinned && unsupported == 0) {
        char list[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < c->model->nroutes && off < sizeof(list); i++) {
            const char *name = c->model->routes[i].provider->name;
            if (strstr(list, name) != NULL)
                continue;
            off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "", name);
        }
        snprintf(msg, sizeof(msg), "vendor '%.*s' does not serve model '%s'; vendors that do: %s",
                 (int)(vendor.len > 64 ? 64 : vendor.len), vendor.ptr, c->model->id, list);
        fail_request(c, YR_E_VENDOR_NOT_SERVING, msg, "vendor", NULL);
    } else {
        snprintf(msg, sizeof(msg),
                 "model '%s' is only served by provider kinds this build cannot call yet",
                 c->model->id);
        fail_request(c, YR_E_NOT_IMPLEMENTED, msg, NULL, NULL);
    }
    return -EINVAL;
}

/* ---- image fetching ------------------------------------------------------- */

static void on_image_done(void *arg, const yr_fetch_result_t *res)
{
    image_slot_t *slot = arg;
    chat_t *c = slot->c;
    slot->f = NULL;
    c->images_pending--;
    int rc = res->status;
    if (rc == YR_FETCH_OK) {
        rc = yr_images_inline(slot->part, res->content_type, res->data, res->len);
        /* The body grows by the base64 of the image. */
        c->upbody.max += 4 * ((res->len + 2) / 3) + 256;
    }
    if (rc != 0) {
        /* The URL is the client's: no failover, a 400 that says why. */
        size_t mi = 0, pi = 0;
        char param[96] = "";
        if (yr_images_where(c->chat.root, slot->part, &mi, &pi))
            snprintf(param, sizeof(param), "messages[%zu].content[%zu].image_url.url", mi, pi);
        cancel_fetches(c);
        bool internal = res->status == YR_FETCH_EINTERNAL || rc == -ENOMEM;
        fail_request(c, internal ? YR_E_INTERNAL : YR_E_INVALID_REQUEST,
                     res->reason ? res->reason : "could not fetch the image", param[0] ? param : NULL,
                     internal ? NULL : "image_fetch_failed");
        return;
    }
    if (c->images_pending == 0) {
        c->chat.rewritten = true;
        set_state(c, ST_ATTEMPT);
        attempt_next(c);
    }
}

/* When a chosen route takes images inline only, fetches every remote image
 * of the request once (not once per attempt). Returns 1 when fetches were
 * started (attempt_next runs when they end), 0 when there is nothing to
 * fetch, -1 when the request was failed. */
static int fetch_images(chat_t *c)
{
    bool wanted = false;
    for (size_t i = 0; i < c->nroutes && !wanted; i++)
        wanted = c->routes[i]->provider->inline_images &&
                 yr_native_ops(c->routes[i]->provider->kind, c->dialect) == NULL;
    if (!wanted)
        return 0;
    const yr_config_t *cfg = c->g->cfg;
    if (yr_chat_load_root(&c->chat) < 0) {
        fail_request(c, YR_E_INTERNAL, "could not parse the request", NULL, NULL);
        return -1;
    }
    size_t max = cfg->images.max_per_request;
    json_t *parts[64];
    size_t n = yr_images_collect(c->chat.root, parts, max < 64 ? max : 64);
    if (n == 0)
        return 0;
    if (n > max) {
        char msg[128];
        snprintf(msg, sizeof(msg), "at most %zu image URLs per request can be fetched", max);
        fail_request(c, YR_E_INVALID_REQUEST, msg, "messages", "too_many_images");
        return -1;
    }
    c->image_policy = (yr_fetch_policy_t){
        .max_bytes = cfg->images.max_bytes,
        .timeout_ms = cfg->images.timeout_ms,
        .max_redirects = cfg->images.max_redirects,
        .no_redirects = cfg->images.max_redirects == 0,
        .allow = cfg->images.allow,
        .nallow = cfg->images.nallow,
        .allow_http = cfg->images.allow_http,
    };
    c->images = yr_pcalloc(c->g->http->pool, n * sizeof(*c->images));
    if (c->images == NULL) {
        fail_request(c, YR_E_INTERNAL, "out of memory", NULL, NULL);
        return -1;
    }
    set_state(c, ST_FETCHING);
    for (size_t i = 0; i < n; i++) {
        image_slot_t *slot = &c->images[i];
        *slot = (image_slot_t){.c = c, .part = parts[i]};
        c->nimages++;
        if (yr_fetch_start(c->g->w->up, yr_images_url(parts[i]), &c->image_policy, on_image_done,
                           slot, &slot->f) < 0) {
            cancel_fetches(c);
            fail_request(c, YR_E_INTERNAL, "could not start an image fetch", NULL, NULL);
            return -1;
        }
        c->images_pending++;
    }
    return 1;
}

static chat_t *chat_new(yr_gw_req_t *g, yr_dialect_t dialect)
{
    yr_http_req_t *req = g->http;
    chat_t *c = yr_pcalloc(req->pool, sizeof(*c));
    if (c == NULL || yr_pool_cleanup_add(req->pool, on_pool_cleanup, c) < 0) {
        yr_gw_send_error(g, YR_E_INTERNAL, "out of memory", NULL, NULL, YR_STR_NULL);
        return NULL;
    }
    c->g = g;
    c->dialect = dialect;
    g->chat = c;
    /* Translation can grow a body (tool-result wrappers, default schemas). */
    yr_buf_init(&c->upbody, req->body.len * 2 + 64 * 1024);
    yr_buf_init(&c->resp, MAX_UPSTREAM_BODY);
    yr_buf_init(&c->out, YR_SSE_MAX_EVENT * 2);
    yr_buf_init(&c->enc_out, YR_SSE_MAX_EVENT * 2);
    yr_buf_init(&c->oai_body, req->body.len * 2 + 4096);
    yr_sse_init(&c->sse, YR_SSE_MAX_EVENT);
    yr_metrics_inflight(&g->w->metrics, 1);
    req->on_drain = on_drain;
    return c;
}

/* Parses the OpenAI body, resolves the model and starts the first attempt. */
static void route_and_go(chat_t *c, yr_str_t oai)
{
    yr_api_error_t err;
    if (yr_chat_parse(oai.ptr, oai.len, &c->chat, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    c->model = yr_config_model(c->g->cfg, c->chat.model);
    if (c->model == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "The model '%.*s' does not exist or is not served here",
                 (int)(c->chat.model.len > 200 ? 200 : c->chat.model.len), c->chat.model.ptr);
        fail_request(c, YR_E_MODEL_NOT_FOUND, msg, "model", NULL);
        return;
    }
    if (pick_routes(c) < 0)
        return;
    if (fetch_images(c) != 0)
        return; /* fetching, or failed */
    set_state(c, ST_ATTEMPT);
    attempt_next(c);
}

void yr_proxy_chat(yr_gw_req_t *g)
{
    chat_t *c = chat_new(g, YR_DIALECT_OPENAI);
    if (c != NULL)
        route_and_go(c, (yr_str_t){g->http->body.data ? g->http->body.data : "",
                                   g->http->body.len});
}

/* count_tokens for a model none of whose routes can count: an estimate. */
static void count_tokens_locally(chat_t *c)
{
    int64_t tokens;
    yr_api_error_t err;
    yr_http_req_t *req = c->g->http;
    if (yr_anth_count_tokens_estimate(req->body.data ? req->body.data : "", req->body.len,
                                      &tokens, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"input_tokens\":%lld}", (long long)tokens);
    yr_http_header_t h[1] = {{YR_STR("x-yourouter-estimate"), YR_STR("true")}};
    finish(c, 200);
    yr_gw_send_json(c->g, 200, (yr_str_t){body, (size_t)n}, h, 1);
}

/* count_tokens: only an Anthropic route can count; the request is not a
 * Messages request (no max_tokens), so only its model is read here. */
static void count_tokens(chat_t *c)
{
    yr_http_req_t *req = c->g->http;
    json_t *root = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    const char *model = json_string_value(json_object_get(root, "model"));
    c->model = model ? yr_config_model(c->g->cfg, yr_str(model)) : NULL;
    json_decref(root);
    if (c->model == NULL || pick_routes(c) < 0) {
        if (c->state != ST_DONE)
            count_tokens_locally(c); /* it validates and names what is wrong */
        return;
    }
    set_state(c, ST_ATTEMPT);
    attempt_next(c);
}

void yr_proxy_count_tokens(yr_gw_req_t *g)
{
    chat_t *c = chat_new(g, YR_DIALECT_ANTHROPIC);
    if (c == NULL)
        return;
    c->count_tokens = true;
    count_tokens(c);
}

void yr_proxy_messages(yr_gw_req_t *g)
{
    chat_t *c = chat_new(g, YR_DIALECT_ANTHROPIC);
    if (c == NULL)
        return;
    yr_http_req_t *req = g->http;
    yr_api_error_t err;
    if (yr_anth_request_to_openai(req->body.data ? req->body.data : "", req->body.len,
                                  &c->oai_body, &c->ainfo, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    route_and_go(c, (yr_str_t){c->oai_body.data, c->oai_body.len});
}
