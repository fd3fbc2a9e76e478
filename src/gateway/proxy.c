/* POST /v1/chat/completions, /v1/messages, /v1/messages/count_tokens and
 * the Gemini model methods (/v1beta/models/{model}:generateContent,
 * :streamGenerateContent, :countTokens): one request state machine
 * (gateway/reqstate.h) around a loop of attempts.
 *
 *   AUTH      yr_gw_authenticate: the client key -> g->identity
 *   ADMIT     yr_limits_admit: per-key limits
 *   FETCHING  image URLs fetched once for routes that take images inline
 *   ATTEMPT   yr_peer_get chose a route; its dialect built the body, its
 *             transport the URL and auth; the call is in flight. Any
 *             retryable failure before the 200 ends the attempt and asks
 *             yr_peer_get again.
 *   BACKOFF   the route layer asked to wait before the next attempt
 *   STREAMING the 200 went out: from here a failure is an explicit error
 *             event in the client's dialect, never a retry
 *   DONE      the response ended (or the client went away)
 *
 * Every attempt ends in attempt_end(), the one place that feeds metrics and
 * the route layer (yr_peer_free); the request ends in finish(), which feeds
 * the request metrics and releases the admission.
 *
 * Data path of one attempt: the client's body goes to the provider as it is
 * when the client speaks the route's dialect (pass_build / pass_event: the
 * hot OpenAI -> OpenAI path, and Anthropic -> Anthropic); otherwise it is
 * translated (build), and the answer decoded into typed events (api/events.h)
 * that the client's encoder (OpenAI chunks or Anthropic events) writes.
 *
 * Lifetime: the chat_t lives in the request pool; a pool cleanup cancels
 * whatever is in flight (call, fetches, backoff timer). Every callback that
 * may send holds the request (yr_http_req_hold) while it runs, so a send
 * that ends the request never frees the chat_t under the code using it. */
#include <errno.h>
#include <http_parser.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/anthropic_in.h"
#include "api/chat.h"
#include "api/gemini_in.h"
#include "api/responses.h"
#include "api/images.h"
#include "api/oai_enc.h"
#include "core/clock.h"
#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/content_log.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/reqstate.h"
#include "gateway/respond.h"
#include "limits/limits.h"
#include "providers/embeddings.h"
#include "obs/obs.h"
#include "providers/catalog.h"
#include "providers/fit.h"
#include "providers/framing.h"
#include "providers/openai_responses.h"
#include "providers/provider.h"
#include "limits/price.h"
#include "route/health.h"
#include "route/route.h"
#include "upstream/fetch.h"

#define MAX_UPSTREAM_BODY (64 * 1024 * 1024) /* a non-streamed answer */
#define MAX_ERROR_BODY (64 * 1024)           /* what we keep of an upstream error */
#define STREAM_HIGH_WATER (256 * 1024)       /* pause upstream above this */
#define STREAM_LOW_WATER (64 * 1024)         /* resume below this */
#define MAX_ATTEMPTS 64                      /* per request, whatever the policy says */
/* A request body at least this large leaves the heap holding its DOM,
 * translation and buffers after it ends: see trim_after(). */
#define TRIM_AFTER_BODY (1u << 20)
/* One deadline for all attempts of a request (the default whole-transfer
 * timeout of a provider); the resilient-routing issue makes it a setting. */
#define REQUEST_DEADLINE_MS (600u * 1000)
#define OFFLOAD_BYTES (256 * 1024) /* translate bodies this large on the thread pool */

struct chat;
typedef struct {
    struct chat *c;
    json_t *part;  /* the image_url content part, in c->chat.root */
    yr_fetch_t *f; /* in flight, or NULL */
} image_slot_t;

/* A route the request could not use, and the capability its model lacks. */
typedef struct {
    const yr_route_conf_t *route;
    unsigned cap; /* YR_CAP_* */
} skip_t;

typedef struct chat {
    yr_gw_req_t *g;
    struct chat *next, *prev; /* the worker's requests in flight (w->chats) */
    yr_reqstate_t state;
    yr_dialect_t dialect; /* the client's */
    bool count_tokens;    /* POST /v1/messages/count_tokens */
    uint64_t deadline_ns;

    /* the request */
    yr_chat_req_t chat;
    yr_buf_t oai_body; /* Anthropic client: its request as OpenAI */
    yr_api_error_t *oai_err; /* ... which could not be converted, and why (in the pool) */
    yr_anth_req_info_t ainfo;
    yr_gem_req_info_t ginfo; /* Gemini client: model and method from the URL */
    yr_resp_info_t rinfo;    /* Responses client: what the response object echoes */
    unsigned char rkey[32];  /* ... the key that seals provider state (resp_state.h) */
    yr_resp_secret_t rsecret;
    const yr_model_conf_t *model;
    yr_route_plan_t plan;
    yr_admission_t *adm;
    bool admitting, admitted;

    /* image fetching */
    image_slot_t *images; /* in the pool */
    size_t nimages, images_pending;
    yr_fetch_policy_t image_policy;
    yr_fetch_budget_t image_budget; /* all images of this request */

    /* attempts */
    yr_attempt_t *attempts; /* in the pool, max_attempts of them */
    size_t nattempts, max_attempts;
    yr_attempt_t *att; /* the current one */
    const yr_provider_kind_ops_t *kind;
    bool pass;                 /* the client speaks the route's dialect */
    yr_upstream_call_t *call;  /* in flight, or NULL */
    yr_cred_wait_t *cred_wait; /* the attempt waits for credentials, or NULL */
    bool cred_retried;         /* a refused credential was retried (once per request) */
    yr_upstream_req_t ureq;    /* the attempt's request while it waits */
    const char *path;
    const char *const *extra;
    uv_timer_t *backoff;       /* malloc'ed; closed and freed by its close callback */
    struct offload *work;      /* CPU work on the thread pool (offload); malloc'ed, freed
                                * when it comes back (the request is held meanwhile) */
    int work_rc;
    uint64_t tree_charged;     /* charged to the worker's tree_bytes (charge_tree) */
    yr_api_error_t work_err;   /* why a request could not be read (its parse offloaded) */
    const char *prev_items, *prev_response; /* a Responses conversation continued (pool) */
    yr_call_ctx_t cx;          /* the dialect's and transport's view of this attempt */
    yr_buf_t upbody;           /* upstream request body when rewritten */
    yr_buf_t resp;             /* upstream response (non-stream) or error body */
    yr_buf_t out;              /* client bytes waiting to be written */
    yr_framer_t framer;
    yr_oai_enc_t *oenc;        /* translated answer, OpenAI client */
    yr_anth_enc_t *aenc;       /* translated answer, Anthropic client */
    yr_gem_enc_t *genc;        /* translated answer, Gemini client */
    yr_resp_enc_t *renc;       /* translated answer, Responses client */
    yr_gem_frame_t gframe;     /* passthrough stream to a Gemini client: its framing */
    bool done_seen;
    unsigned events_out; /* upstream messages that produced client output */
    bool event_failed;   /* a malformed event, an error event or a failed client write */
    bool client_gone;    /* writing to the client failed: it left (not the route's fault) */
    int event_rc;        /* why: -EPROTO, -ECANCELED (provider error event), -E2BIG, ... */

    /* the last failure, reported when every route failed */
    yr_err_t last_err;
    char last_msg[512];
    char last_param[96];
    char last_code[64];
    char retry_after[32];
    /* the last failure that was not a rate limit: the final error when some
     * route failed for another reason (429 only when every route was rate
     * limited) */
    struct {
        bool set;
        int rank; /* failure_rank of the attempt it came from */
        yr_err_t err;
        char msg[512], param[96], code[64];
    } other;
    int64_t max_retry_ms; /* the longest retry hint of any attempt; -1: none */
    char *attempts_hdr;   /* x-yourouter-attempts, in the pool */
    /* Routes left out because their model lacks a capability the request
     * uses (in the pool, one per route of the model at most). */
    skip_t *skipped;
    size_t nskipped;
    /* Fitting the request to each attempt's model (providers/fit.h). */
    yr_fit_saved_t fit_saved; /* the client's values in chat.root */
    yr_buf_t fitted;          /* the OpenAI text fitted to the route, when it had to be */
    int status; /* final status for metrics */

    /* observability (obs/obs.h) */
    yr_trace_ctx_t trace;
    uint64_t up_ns;      /* upstream time of the attempts that ended */
    int64_t overhead_ms; /* as sent in x-yourouter-overhead-ms; -1: not sent */
    char overhead_hdr[24];
    /* what the successful answer said, for its span */
    char resp_id[128], resp_model[128], finish[32];
    yr_content_capture_t content; /* the key opted into content logging */
} chat_t;

static void attempt_next(chat_t *c);
static int attempt_start(chat_t *c, const yr_route_conf_t *r);
static void store_response(chat_t *c);

static void set_state(chat_t *c, yr_reqstate_t s)
{
    if (!yr_reqstate_allowed(c->state, s))
        yr_log_error("%s: illegal state move %s -> %s", c->g->id, yr_reqstate_name(c->state),
                     yr_reqstate_name(s));
    yr_log_debug("%s: %s -> %s", c->g->id, yr_reqstate_name(c->state), yr_reqstate_name(s));
    c->state = s;
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static const char *vendor_name(const chat_t *c)
{
    return c->att && c->att->route ? c->att->route->provider->name : "?";
}

/* ---- the ends of attempts and of the request -------------------------------- */

/* The metrics' outcome labels, as they were before outcomes existed: by the
 * HTTP status when there was one, else by what happened. */
static enum yr_attempt_outcome metrics_outcome(const yr_attempt_t *a)
{
    if (a->outcome == YR_OUT_OK)
        return YR_ATT_OK;
    if (a->status == 429)
        return YR_ATT_HTTP_429;
    if (a->status >= 500)
        return YR_ATT_HTTP_5XX;
    if (a->status >= 400)
        return YR_ATT_HTTP_4XX;
    switch (a->outcome) {
    case YR_OUT_RATE_LIMITED: return YR_ATT_HTTP_429;
    case YR_OUT_CLIENT_ERROR:
    case YR_OUT_AUTH:
    case YR_OUT_QUOTA: return YR_ATT_HTTP_4XX;
    case YR_OUT_OVERLOADED:
    case YR_OUT_SERVER_ERROR: return YR_ATT_HTTP_5XX;
    case YR_OUT_TIMEOUT: return YR_ATT_TIMEOUT;
    case YR_OUT_BAD_RESPONSE: return YR_ATT_BAD_RESPONSE;
    case YR_OUT_STREAM_CUT: return YR_ATT_STREAM_CUT;
    case YR_OUT_CANCELLED: return YR_ATT_CANCELLED;
    case YR_OUT_INTERNAL: return YR_ATT_INTERNAL;
    default: return YR_ATT_CONNECT;
    }
}

static yr_str_t client_body(const chat_t *c);

/* Bytes of the JSON string values of "content", "reasoning_content" and
 * "arguments" in a passthrough chunk: what the client was sent as text, for
 * an estimate when the provider never says its usage. Escapes count as
 * their bytes (close enough for bytes / 4). */
static uint64_t chunk_text_bytes(yr_str_t d)
{
    static const char *const keys[] = {"\"content\":\"", "\"reasoning_content\":\"",
                                       "\"arguments\":\""};
    uint64_t n = 0;
    for (size_t k = 0; k < 3; k++) {
        size_t kl = strlen(keys[k]);
        for (size_t i = 0; i + kl <= d.len;) {
            const char *hit = memmem(d.ptr + i, d.len - i, keys[k], kl);
            if (hit == NULL)
                break;
            size_t j = (size_t)(hit - d.ptr) + kl;
            while (j < d.len && d.ptr[j] != '"') {
                j += d.ptr[j] == '\\' ? 2 : 1;
                n++;
            }
            i = j + 1;
        }
    }
    return n;
}

/* How much a failure tells the client: what the provider said (an HTTP
 * error or an error event, with its words) beats a malformed answer or a
 * timeout, which beat a connection that failed or broke. The final error is
 * the most telling non-429 failure (the later one among equals). */
static int failure_rank(const yr_attempt_t *a, yr_outcome_t o)
{
    switch (o) {
    case YR_OUT_INTERNAL: return 4; /* the gateway's own failure says it all */
    case YR_OUT_CLIENT_ERROR:
    case YR_OUT_AUTH:
    case YR_OUT_QUOTA:
    case YR_OUT_OVERLOADED:
    case YR_OUT_SERVER_ERROR: return 3;
    case YR_OUT_TIMEOUT:
    case YR_OUT_BAD_RESPONSE: return a->status >= 400 ? 3 : 2;
    default: return 1;
    }
}

/* Every attempt ends here, exactly once. */
static void attempt_end(chat_t *c, yr_outcome_t o)
{
    yr_attempt_t *a = c->att;
    if (a == NULL || a->end_ns != 0)
        return;
    a->outcome = o;
    a->end_ns = now_ns();
    if (c->cx.usage.present && !a->usage.present)
        a->usage = c->cx.usage; /* passthrough: the dialect read it */
    if (!a->usage.present && a->out_text_bytes > 0) {
        /* A stream the provider never gave usage for (cut, cancelled, or a
         * passthrough without include_usage): what the client got is
         * accounted, estimated at 4 bytes a token. */
        a->usage.prompt_tokens = (int64_t)client_body(c).len / 4;
        a->usage.completion_tokens = (int64_t)((a->out_text_bytes + 3) / 4);
        a->usage_estimated = true;
    }
    yr_metrics_attempt(&c->g->w->metrics, a->route->provider->name, metrics_outcome(a));
    yr_peer_free(&c->plan, a, yr_health_now_ms());
    if (a->retry_after_ms > c->max_retry_ms)
        c->max_retry_ms = a->retry_after_ms;
    if (o != YR_OUT_OK && o != YR_OUT_RATE_LIMITED && o != YR_OUT_CANCELLED &&
        c->last_msg[0] != '\0' && (!c->other.set || failure_rank(a, o) >= c->other.rank)) {
        c->other.set = true;
        c->other.rank = failure_rank(a, o);
        c->other.err = c->last_err;
        snprintf(c->other.msg, sizeof(c->other.msg), "%s", c->last_msg);
        snprintf(c->other.param, sizeof(c->other.param), "%s", c->last_param);
        snprintf(c->other.code, sizeof(c->other.code), "%s", c->last_code);
    }
    yr_log_debug("%s: attempt %zu on %s/%s: %s (HTTP %d)", c->g->id, c->nattempts,
                 a->route->provider->name, a->route->model, yr_outcome_name(o), a->status);
}

static int64_t ms_since(uint64_t start_ns, uint64_t t_ns)
{
    return t_ns >= start_ns && t_ns != 0 ? (int64_t)((t_ns - start_ns) / 1000000u) : -1;
}

/* A route's price: its config's, else the catalog's, else the built-in
 * table's by its model (providers/catalog.h). */
static bool route_price(const yr_route_conf_t *r, yr_price_t *p)
{
    return yr_catalog_route_price(r, p);
}

/* What an attempt cost: micro-USD by its route's price; 0 when it used
 * nothing, -1 when it used tokens of a model without a known price. */
static int64_t attempt_cost(const yr_attempt_t *a)
{
    const yr_usage_t *u = &a->usage;
    if (u->prompt_tokens <= 0 && u->completion_tokens <= 0)
        return 0;
    yr_price_t p;
    return route_price(a->route, &p) ? yr_cost_micros(&p, u) : -1;
}

/* One usage row per upstream attempt ((request id, attempt) is unique), or
 * one for a request that reached a model but made no attempt. store/ copies
 * the row. */
static void record_usage(chat_t *c, int status, uint64_t end_ns)
{
    if (c->model == NULL)
        return;
    uint64_t start = c->g->http->start_ns;
    size_t n = c->nattempts > 0 ? c->nattempts : 1;
    for (size_t i = 0; i < n; i++) {
        const yr_attempt_t *a = c->nattempts > 0 ? &c->attempts[i] : NULL;
        bool last = i + 1 == n;
        yr_outcome_t o = a != NULL ? a->outcome : YR_OUT__COUNT;
        yr_usage_row_t row = {
            .request_id = c->g->request_id,
            .key_id = c->g->identity.key_id,
            .model_id = yr_str(c->model->id),
            .http_status = status,
            .outcome = yr_str(status == 499 && last ? "client_abort"
                              : a != NULL           ? yr_outcome_name(o)
                                                    : "no_attempt"),
            .latency_ms = ms_since(start, a != NULL && a->end_ns ? a->end_ns : end_ns),
            .ttfb_ms = -1,
            .attempt = (int)i,
            .stream = c->chat.stream,
            .cost_micros = a != NULL ? attempt_cost(a) : 0,
        };
        if (a != NULL) {
            row.provider = yr_str(a->route->provider->name);
            row.upstream_model = yr_str(a->route->model);
            row.upstream_status = a->status;
            row.cancelled = o == YR_OUT_CANCELLED;
            row.usage_estimated = a->usage_estimated;
            row.error_class = o == YR_OUT_OK ? YR_STR_NULL : yr_str(yr_outcome_name(o));
            row.prompt_tokens = a->usage.prompt_tokens;
            row.completion_tokens = a->usage.completion_tokens;
            row.cached_tokens = a->usage.cached_tokens;
            row.cache_write_tokens = a->usage.cache_write_tokens;
            row.reasoning_tokens = a->usage.reasoning_tokens;
            row.ttfb_ms = ms_since(start, a->first_event_ns ? a->first_event_ns : a->head_ns);
        }
        if (yr_store_usage_append(c->g->w->store, &row) < 0)
            yr_log_debug("%s: usage row not queued", c->g->id);
    }
}

/* Time spent in the gateway itself: the request's time so far minus the
 * upstream time of its attempts (send to done), in ms. */
static int64_t overhead_ms(const chat_t *c, uint64_t now)
{
    uint64_t total = now - c->g->http->start_ns;
    return total > c->up_ns ? (int64_t)((total - c->up_ns) / 1000000u) : 0;
}

/* The request's view for metrics, the access log and its spans. */
static void observe_request(chat_t *c, int status, uint64_t end)
{
    const yr_key_info_t *key = c->g->identity.key;
    int64_t cost = 0; /* only the access log shows it: no price lookups otherwise */
    for (size_t i = 0; yr_obs_logging(c->g->w->obs) && i < c->nattempts; i++) {
        int64_t ac = attempt_cost(&c->attempts[i]);
        cost = ac < 0 || cost < 0 ? -1 : cost + ac;
    }
    const yr_attempt_t *last = c->nattempts > 0 ? &c->attempts[c->nattempts - 1] : NULL;
    char err[16];
    const char *et = NULL;
    if (status >= 400) {
        snprintf(err, sizeof(err), "%d", status);
        et = last != NULL && last->outcome != YR_OUT_OK ? yr_outcome_name(last->outcome) : err;
    }
    yr_obs_req_t r = {
        .op = c->count_tokens                       ? YR_OBS_OP_COUNT_TOKENS
              : c->dialect == YR_DIALECT_GEMINI     ? YR_OBS_OP_GENERATE_CONTENT
              : c->dialect == YR_DIALECT_EMBEDDINGS ? YR_OBS_OP_EMBEDDINGS
                                                    : YR_OBS_OP_CHAT,
        .cfg = c->g->cfg,
        .model = c->model,
        .client_model = c->chat.model.len > 0 ? c->chat.model
                        : c->model != NULL    ? yr_str(c->model->id)
                                              : YR_STR_NULL,
        .attempts = c->attempts,
        .nattempts = c->nattempts,
        .status = status,
        .stream = c->chat.stream,
        .start_ns = c->g->http->start_ns,
        .end_ns = end,
        .request_id = c->g->request_id,
        .key_name = key != NULL ? key->name : NULL,
        .key_id = c->g->identity.key_id,
        .cost_micros = cost,
        .trace = &c->trace,
        .response_id = c->resp_id,
        .response_model = c->resp_model,
        .finish_reason = c->finish,
        .error_type = et,
        .overhead_ms = c->overhead_ms >= 0 ? c->overhead_ms : overhead_ms(c, end),
    };
    yr_obs_request_end(c->g->w->obs, &r);
}

/* The request ends here, exactly once. */
static void finish(chat_t *c, int status)
{
    set_state(c, YR_RS_DONE);
    c->status = status;
    yr_worker_t *w = c->g->w;
    uint64_t end = now_ns();
    uint64_t us = (end - c->g->http->start_ns) / 1000;
    yr_metrics_request(&w->metrics, c->model ? c->model->id : NULL,
                       c->att ? c->att->route->provider->name : NULL, status, us);
    if (c->admitted) {
        /* Every attempt's tokens and cost count against the key. */
        yr_usage_t used = {0};
        int64_t cost = 0;
        for (size_t i = 0; i < c->nattempts; i++) {
            const yr_attempt_t *a = &c->attempts[i];
            used.prompt_tokens += a->usage.prompt_tokens;
            used.completion_tokens += a->usage.completion_tokens;
            int64_t ac = attempt_cost(a);
            cost += ac > 0 ? ac : 0;
        }
        yr_limits_release(w->limits, c->adm, &used, cost);
        c->admitted = false;
        c->adm = NULL;
    }
    record_usage(c, status, end);
    observe_request(c, status, end);
    if (c->dialect == YR_DIALECT_RESPONSES && status == 200 && c->rinfo.store)
        store_response(c);
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

static void on_backoff_closed(uv_handle_t *h)
{
    free(h);
}

static void stop_backoff(chat_t *c)
{
    if (c->backoff != NULL) {
        uv_close((uv_handle_t *)c->backoff, on_backoff_closed);
        c->backoff = NULL;
    }
}

static void free_encoders(chat_t *c)
{
    yr_oai_enc_free(c->oenc);
    yr_anth_enc_free(c->aenc);
    yr_gem_enc_free(c->genc);
    yr_resp_enc_free(c->renc);
    c->renc = NULL;
    c->oenc = NULL;
    c->aenc = NULL;
    c->genc = NULL;
}

/* After a large request, once the worker has no other proxied request in
 * flight, the free memory of the heap goes back to the OS: glibc keeps it
 * otherwise (its mmap threshold grows with every large free, so the next big
 * buffers come from the heap too), and six 8 MB translated requests left the
 * process at several times its idle size. Only then: malloc_trim walks the
 * heap, which is worth it only when a lot was freed. */
static void trim_after(const chat_t *c)
{
#ifdef __GLIBC__
    if (c->g->http->body.len >= TRIM_AFTER_BODY && c->g->w->chats == NULL)
        malloc_trim(0);
#else
    (void)c;
#endif
}

static void chat_unlink(chat_t *c)
{
    yr_worker_t *w = c->g->w;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (w->chats == c)
        w->chats = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void on_pool_cleanup(void *arg)
{
    chat_t *c = arg;
    chat_unlink(c);
    cancel_fetches(c); /* before the JSON tree they write into goes away */
    stop_backoff(c);
    if (c->cred_wait != NULL) {
        c->kind->transport->cancel_credentials(c->cred_wait);
        c->cred_wait = NULL;
        attempt_end(c, YR_OUT_CANCELLED);
    }
    if (c->call != NULL) {
        yr_upstream_cancel(c->call);
        c->call = NULL;
        attempt_end(c, YR_OUT_CANCELLED);
    }
    if (c->state != YR_RS_DONE)
        finish(c, 499); /* the client went away first */
    yr_content_submit(&c->content, c->g, c->status, c->chat.stream); /* all was sent by now */
    if (c->admitting)
        yr_limits_cancel(c->g->w->limits, c->adm);
    yr_metrics_inflight(&c->g->w->metrics, -1);
    c->g->w->tree_bytes -= c->tree_charged;
    yr_chat_free(&c->chat);
    yr_resp_info_free(&c->rinfo);
    yr_buf_free(&c->upbody);
    yr_buf_free(&c->resp);
    yr_buf_free(&c->out);
    yr_buf_free(&c->oai_body);
    yr_buf_free(&c->fitted);
    yr_fit_saved_free(&c->fit_saved);
    free_encoders(c);
    yr_framer_free(&c->framer);
    trim_after(c);
}

static void fail_request(chat_t *c, yr_err_t e, const char *msg, const char *param,
                         const char *code)
{
    finish(c, yr_gw_error_status(c->g, e));
    yr_gw_send_error(c->g, e, msg, param, code, YR_STR_NULL);
}

/* ---- the last failure ---------------------------------------------------- */

/* Upstream text (an error's message, param, code) may echo a configured key
 * back (a provider quoting the key it refused): it is redacted before it is
 * logged or relayed. */
static void scrub(const chat_t *c, char *s, size_t cap)
{
    yr_config_redact(c->g->cfg, s, cap);
}

static void scrub_last(chat_t *c)
{
    scrub(c, c->last_msg, sizeof(c->last_msg));
    scrub(c, c->last_param, sizeof(c->last_param));
    scrub(c, c->last_code, sizeof(c->last_code));
}

static void record_failure(chat_t *c, yr_err_t e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void record_failure(chat_t *c, yr_err_t e, const char *fmt, ...)
{
    c->last_err = e;
    c->last_param[0] = c->last_code[0] = c->retry_after[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_msg, sizeof(c->last_msg), fmt, ap);
    va_end(ap);
    scrub(c, c->last_msg, sizeof(c->last_msg));
    yr_log_warn("%s: route %s/%s failed: %s", c->g->id, c->att->route->provider->name,
                c->att->route->model, c->last_msg);
}

/* An HTTP error from the provider: classified by the transport, worded for
 * the client. Returns the outcome. */
static yr_outcome_t record_http_failure(chat_t *c, const yr_upstream_call_t *call, int status)
{
    bool retryable;
    yr_err_t e = yr_err_from_upstream_status(status, &retryable);
    yr_provider_error_t perr;
    c->kind->dialect->parse_error((yr_str_t){c->resp.data ? c->resp.data : "", c->resp.len},
                                  &perr);
    if (perr.type[0] == '\0' && c->att->head.error_type[0] != '\0') /* Bedrock: in the head */
        snprintf(perr.type, sizeof(perr.type), "%s", c->att->head.error_type);
    yr_outcome_t o = c->kind->transport->classify(status, &perr);
    if (o == YR_OUT_AUTH && e != YR_E_UPSTREAM_AUTH) {
        /* The provider refused the gateway's key under another status
         * (Gemini: 400 API_KEY_INVALID): not the client's fault, and another
         * route's key may work. */
        e = YR_E_UPSTREAM_AUTH;
        retryable = true;
    }
    const char *vendor = vendor_name(c);
    if (e == YR_E_UPSTREAM_BAD_REQUEST || e == YR_E_TOO_LARGE) {
        /* The provider's own words help the client fix the request. */
        record_failure(c, e, "%s rejected the request: %s", vendor,
                       perr.message[0] ? perr.message : yr_http_status_text(status));
        snprintf(c->last_param, sizeof(c->last_param), "%s", perr.param);
        snprintf(c->last_code, sizeof(c->last_code), "%s", perr.code);
        scrub_last(c);
    } else if (e == YR_E_RATE_LIMITED) {
        record_failure(c, e, "%s is rate limiting requests: %s", vendor,
                       perr.message[0] ? perr.message : "too many requests");
    } else if (e == YR_E_UPSTREAM_AUTH) {
        record_failure(c, e, "%s rejected the gateway's provider credentials (HTTP %d)", vendor,
                       status);
    } else {
        record_failure(c, e, "%s returned HTTP %d%s%s", vendor, status,
                       perr.message[0] ? ": " : "", perr.message);
    }
    if (status == 429 || status == 503 || status == 529) {
        yr_str_t ra = yr_upstream_retry_after(call);
        if (ra.len > 0)
            snprintf(c->retry_after, sizeof(c->retry_after), "%.*s", (int)ra.len, ra.ptr);
        else if (perr.retry_after_ms >= 0)
            snprintf(c->retry_after, sizeof(c->retry_after), "%lld",
                     (long long)((perr.retry_after_ms + 999) / 1000));
    }
    if (c->att->retry_after_ms < 0)
        c->att->retry_after_ms = perr.retry_after_ms;
    /* Other 4xx are about the request: every route would refuse it. */
    return retryable ? o : YR_OUT_CLIENT_ERROR;
}

/* x-yourouter-overhead-ms: the gateway's own time. A streamed answer says
 * it when its head goes out: the time until the current attempt was sent,
 * minus the attempts before it (their upstream time is not ours). */
static yr_str_t overhead_header(chat_t *c, bool streaming)
{
    uint64_t now = now_ns();
    if (streaming && c->att != NULL && c->att->send_ns != 0)
        now = c->att->send_ns;
    c->overhead_ms = overhead_ms(c, now);
    snprintf(c->overhead_hdr, sizeof(c->overhead_hdr), "%lld", (long long)c->overhead_ms);
    return yr_str(c->overhead_hdr);
}

/* x-yourouter-attempts: every attempt as provider/model=outcome:status,
 * in order ("openai/gpt-4o=rate_limited:429, backup/mini=ok:200"). */
static yr_str_t attempts_header(chat_t *c)
{
    if (c->attempts_hdr == NULL) {
        const size_t cap = 1024;
        c->attempts_hdr = yr_palloc(c->g->http->pool, cap);
        if (c->attempts_hdr == NULL)
            return YR_STR_NULL;
        size_t off = 0;
        c->attempts_hdr[0] = '\0';
        /* routes that could not take the request, and why: skipped:vision */
        for (size_t i = 0; i < c->nskipped && off + 1 < cap; i++) {
            int n = snprintf(c->attempts_hdr + off, cap - off, "%s%s/%s=skipped:%s", i ? ", " : "",
                             c->skipped[i].route->provider->name, c->skipped[i].route->model,
                             yr_cap_name(c->skipped[i].cap));
            if (n < 0 || (size_t)n >= cap - off) {
                c->attempts_hdr[off] = '\0';
                break;
            }
            off += (size_t)n;
        }
        for (size_t i = 0; i < c->nattempts && off + 1 < cap; i++) {
            const yr_attempt_t *a = &c->attempts[i];
            const char *sep = i > 0 || c->nskipped > 0 ? ", " : "";
            int n = snprintf(c->attempts_hdr + off, cap - off, "%s%s/%s=%s:%d", sep,
                             a->route->provider->name, a->route->model,
                             a->end_ns ? yr_outcome_name(a->outcome) : "ok", a->status);
            if (n < 0 || (size_t)n >= cap - off) {
                c->attempts_hdr[off] = '\0';
                break;
            }
            off += (size_t)n;
        }
    }
    return yr_str(c->attempts_hdr);
}

/* Every route failed, or none could be tried: one error that says why. A 429
 * only when every attempt was rate limited (with the longest hint), else
 * the last other failure; a route that is cooling (or full) with no attempt
 * left is a 429 that says when to come back. */
static void fail_with_last(chat_t *c)
{
    char ra_buf[32];
    yr_http_header_t h[2] = {{YR_STR("x-yourouter-overhead-ms"), overhead_header(c, false)},
                             {YR_STR("x-yourouter-attempts"), attempts_header(c)}};
    size_t nh = c->nattempts + c->nskipped > 0 && h[1].value.len > 0 ? 2 : 1;
    if (c->nattempts == 0 && (c->plan.retry_in_ms > 0 || c->plan.busy)) {
        char msg[400];
        int64_t s = c->plan.retry_in_ms > 0 ? (c->plan.retry_in_ms + 999) / 1000 : 1;
        snprintf(ra_buf, sizeof(ra_buf), "%lld", (long long)s);
        if (c->plan.retry_in_ms > 0)
            snprintf(msg, sizeof(msg),
                     "every route of model '%s' is cooling down after rate limits or failures; "
                     "retry after %lld s",
                     c->model->id, (long long)s);
        else
            snprintf(msg, sizeof(msg), "every route of model '%s' is at its concurrency limit",
                     c->model->id);
        finish(c, 429);
        yr_gw_send_error_h(c->g, YR_E_RATE_LIMITED, msg, NULL, "routes_unavailable",
                           yr_str(ra_buf), NULL, 0);
        return;
    }
    if (c->other.set) {
        /* The most telling failure that was not a rate limit (the last
         * attempt's, unless an earlier one said more). */
        c->last_err = c->other.err;
        snprintf(c->last_msg, sizeof(c->last_msg), "%s", c->other.msg);
        snprintf(c->last_param, sizeof(c->last_param), "%s", c->other.param);
        snprintf(c->last_code, sizeof(c->last_code), "%s", c->other.code);
        c->retry_after[0] = '\0';
    }
    if (c->last_msg[0] == '\0' && c->plan.budget_exhausted) {
        c->last_err = YR_E_UPSTREAM_UNAVAILABLE;
        snprintf(c->last_msg, sizeof(c->last_msg),
                 "the gateway's retry budget is exhausted (providers are failing)");
    } else if (c->last_msg[0] == '\0') {
        /* no attempt could be made and nothing failed: out of time, or every
         * route was taken by other requests at that moment */
        bool late = now_ns() >= c->deadline_ns;
        c->last_err = late ? YR_E_UPSTREAM_TIMEOUT : YR_E_UPSTREAM_UNAVAILABLE;
        snprintf(c->last_msg, sizeof(c->last_msg), "%s",
                 late ? "the request's deadline passed before a route could be tried"
                      : "no route of this model could take the request");
    }
    scrub_last(c);
    yr_str_t ra = yr_str(c->retry_after);
    if (c->max_retry_ms > 0) {
        /* The longest hint any attempt was given, whatever the final error:
         * a 429's Retry-After must not be lost to a later route's 5xx. */
        snprintf(ra_buf, sizeof(ra_buf), "%lld", (long long)((c->max_retry_ms + 999) / 1000));
        ra = yr_str(ra_buf);
    }
    if ((c->last_err == YR_E_RATE_LIMITED || c->last_err == YR_E_OVERLOADED) && ra.len == 0)
        ra = YR_STR("1");
    yr_log_warn("%s: model %s failed after %zu attempt(s) [%.*s]%s: %s", c->g->id, c->model->id,
                c->nattempts, (int)h[1].value.len, h[1].value.ptr,
                c->plan.budget_exhausted ? " (retry budget exhausted)" : "", c->last_msg);
    finish(c, yr_gw_error_status(c->g, c->last_err));
    yr_gw_send_error_h(c->g, c->last_err, c->last_msg, c->last_param[0] ? c->last_param : NULL,
                       c->last_code[0] ? c->last_code : NULL, ra, h, nh);
}

/* ---- the client's encoder (translated attempts) ---------------------------- */

static int encoder_new(chat_t *c, bool stream)
{
    free_encoders(c);
    if (c->dialect == YR_DIALECT_ANTHROPIC) {
        c->aenc = yr_anth_enc_new((yr_str_t){c->ainfo.model, c->ainfo.model_len},
                                  c->g->request_id, stream, c->ainfo.input_tokens_estimate);
        return c->aenc ? 0 : -ENOMEM;
    }
    if (c->dialect == YR_DIALECT_RESPONSES) {
        yr_resp_enc_opts_t ro = {
            .id_seed = c->g->request_id,
            .model = yr_str(c->rinfo.model),
            .stream = stream,
            .info = &c->rinfo,
            .input_tokens_estimate = (int64_t)client_body(c).len / 4,
            .secret = c->rsecret,
        };
        c->renc = yr_resp_enc_new(&ro);
        return c->renc ? 0 : -ENOMEM;
    }
    if (c->dialect == YR_DIALECT_GEMINI) {
        yr_gem_enc_opts_t go = {
            .model = {c->ginfo.model, c->ginfo.model_len},
            .id_seed = c->g->request_id,
            .stream = stream,
            .sse = c->ginfo.sse,
            .include_thoughts = c->ginfo.include_thoughts,
            .input_tokens_estimate = c->ginfo.input_tokens_estimate,
        };
        c->genc = yr_gem_enc_new(&go);
        return c->genc ? 0 : -ENOMEM;
    }
    yr_oai_enc_opts_t o = {
        .id_seed = c->g->request_id,
        .stream = stream,
        .include_usage = c->chat.include_usage,
    };
    c->oenc = yr_oai_enc_new(&o);
    return c->oenc ? 0 : -ENOMEM;
}

/* The consumer of a translated attempt's events. */
static int on_event(void *arg, const yr_event_t *ev)
{
    chat_t *c = arg;
    switch (ev->type) {
    case YR_EV_ERROR:
        /* The provider failed in-band: before the 200 this fails over. */
        if (c->cx.error_status == 0)
            yr_provider_inband_error(&c->cx, ev->error_type.len ? ev->error_type.ptr : NULL,
                                     ev->text.ptr, ev->status ? ev->status : 500);
        return -ECANCELED;
    case YR_EV_USAGE: c->att->usage = ev->usage; break;
    case YR_EV_START:
        snprintf(c->resp_id, sizeof(c->resp_id), "%.*s", (int)ev->id.len,
                 ev->id.ptr ? ev->id.ptr : "");
        snprintf(c->resp_model, sizeof(c->resp_model), "%.*s", (int)ev->name.len,
                 ev->name.ptr ? ev->name.ptr : "");
        break;
    case YR_EV_FINISH:
        snprintf(c->finish, sizeof(c->finish), "%s", yr_finish_openai(ev->finish));
        break;
    case YR_EV_TOOL_ARGS: c->att->out_text_bytes += ev->text.len; break;
    case YR_EV_TEXT:
    case YR_EV_REASONING:
    case YR_EV_REFUSAL:
        c->att->out_text_bytes += ev->text.len;
        if (c->att->first_event_ns == 0)
            c->att->first_event_ns = now_ns();
        break;
    case YR_EV_TOOL_START:
        if (c->att->first_event_ns == 0)
            c->att->first_event_ns = now_ns();
        break;
    default: break;
    }
    if (c->genc)
        return yr_gem_enc_event(c->genc, ev, &c->out);
    if (c->renc)
        return yr_resp_enc_event(c->renc, ev, &c->out);
    return c->aenc ? yr_anth_enc_event(c->aenc, ev, &c->out) : yr_oai_enc_event(c->oenc, ev, &c->out);
}

/* ---- streaming ------------------------------------------------------------- */

/* x-yourouter-dropped: the built-in tools of a Responses request that a
 * translated route could not run (passthrough routes run them). */
static size_t dropped_header(const chat_t *c, yr_http_header_t *h)
{
    if (c->dialect != YR_DIALECT_RESPONSES || c->pass || c->rinfo.dropped_tools[0] == '\0')
        return 0;
    *h = (yr_http_header_t){YR_STR("x-yourouter-dropped"), yr_str(c->rinfo.dropped_tools)};
    return 1;
}

static int commit_stream(chat_t *c)
{
    yr_http_header_t h[7] = {
        {YR_STR("x-request-id"), c->g->request_id},
        {YR_STR("Cache-Control"), YR_STR("no-cache")},
        {YR_STR("x-yourouter-vendor"), yr_str(vendor_name(c))},
        {YR_STR("x-yourouter-provider"), yr_str(vendor_name(c))},
        {YR_STR("x-yourouter-attempts"), attempts_header(c)},
        {YR_STR("x-yourouter-overhead-ms"), overhead_header(c, true)},
    };
    size_t nh = 6 + dropped_header(c, &h[6]);
    set_state(c, YR_RS_STREAMING);
    /* Gemini without alt=sse: one JSON array, written as it comes. */
    bool array = c->dialect == YR_DIALECT_GEMINI && !c->ginfo.sse;
    return yr_http_stream_start(c->g->http, 200, h, nh,
                                array ? YR_STR("application/json") : YR_STR("text/event-stream"));
}

/* The first string value of "key": in d, into out (cap bytes) unless
 * out already holds one (last: the last value wins). Escapes stay as
 * they are: these are ids, model names and finish reasons. */
static void peek_value(yr_str_t d, const char *key, char *out, size_t cap, bool last)
{
    if (out[0] != '\0' && !last)
        return;
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl <= d.len;) {
        const char *hit = memmem(d.ptr + i, d.len - i, key, kl);
        if (hit == NULL)
            return;
        size_t j = (size_t)(hit - d.ptr) + kl, k = j;
        while (k < d.len && d.ptr[k] != '"')
            k += d.ptr[k] == '\\' ? 2 : 1;
        if (k < d.len && k > j) {
            snprintf(out, cap, "%.*s", (int)(k - j), d.ptr + j);
            if (!last)
                return;
        }
        i = k + 1;
    }
}

/* A passthrough answer is relayed, not decoded: for its span, its id,
 * model and finish reason are read from the bytes (traced requests only;
 * OpenAI, Anthropic and Gemini spellings). */
static void peek_answer(chat_t *c, yr_str_t d)
{
    peek_value(d, "\"id\":\"", c->resp_id, sizeof(c->resp_id), false);
    peek_value(d, "\"responseId\":\"", c->resp_id, sizeof(c->resp_id), false);
    peek_value(d, "\"model\":\"", c->resp_model, sizeof(c->resp_model), false);
    peek_value(d, "\"modelVersion\":\"", c->resp_model, sizeof(c->resp_model), false);
    peek_value(d, "\"finish_reason\":\"", c->finish, sizeof(c->finish), true);
    peek_value(d, "\"stop_reason\":\"", c->finish, sizeof(c->finish), true);
    peek_value(d, "\"finishReason\":\"", c->finish, sizeof(c->finish), true);
}

static int on_frame(const yr_frame_t *m, void *arg)
{
    chat_t *c = arg;
    bool done = false;
    size_t had = c->out.len;
    int rc;
    if (c->pass && c->dialect == YR_DIALECT_GEMINI && !c->ginfo.sse) {
        /* The provider's SSE relayed, re-framed as the client's JSON array. */
        yr_buf_t sse;
        yr_buf_init(&sse, YR_SSE_MAX_EVENT * 2);
        rc = c->kind->dialect->pass_event(&c->cx, m, &sse, &done);
        if (rc == 0)
            rc = yr_gem_frame_sse(&c->gframe, (yr_str_t){sse.data ? sse.data : "", sse.len},
                                  &c->out);
        yr_buf_free(&sse);
    } else {
        rc = c->pass ? c->kind->dialect->pass_event(&c->cx, m, &c->out, &done)
                     : c->kind->dialect->event(&c->cx, m, on_event, c, &done);
    }
    if (rc < 0)
        return rc == -EINVAL ? -EPROTO : rc;
    if (c->pass)
        c->att->out_text_bytes += chunk_text_bytes(m->data);
    if (c->pass && c->trace.span_id != 0 && yr_obs_tracing(c->g->w->obs))
        peek_answer(c, m->data);
    if (c->out.len > had) {
        c->events_out++;
        /* The first content: translated answers mark it in on_event;
         * passthrough dialects that can tell in cx.content_seen. */
        bool content = c->pass && (!c->kind->dialect->pass_marks_content || c->cx.content_seen);
        if (content && c->att->first_event_ns == 0)
            c->att->first_event_ns = now_ns();
    }
    if (done)
        c->done_seen = true;
    return 0;
}

/* Whether the 200 must wait: a failure before the client saw any content
 * fails over, whatever the dialect. So the opening events that carry none
 * (OpenAI's role chunk, Anthropic's message_start) are held until the first
 * content (a translated answer's TEXT, TOOL_START, ...; a passthrough
 * dialect's cx.content_seen) or the end; holding them delays no content.
 * Passthrough dialects that cannot tell content apart hold their first
 * event when they report overload right after it (hold_first_event:
 * Anthropic's overloaded_error after message_start). The held bytes stay
 * under half of c->out's cap: past that the stream commits. */
static bool hold_output(const chat_t *c)
{
    if (c->state != YR_RS_ATTEMPT || c->done_seen || c->out.len >= YR_SSE_MAX_EVENT)
        return false;
    const yr_dialect_ops_t *d = c->kind->dialect;
    if (d->hold_first_event && c->events_out < 2)
        return true;
    bool knows_content = !c->pass || d->pass_marks_content;
    return knows_content && c->att->first_event_ns == 0;
}

static int flush_out(chat_t *c)
{
    if (c->out.len == 0)
        return 0;
    if (hold_output(c))
        return 0;
    if (c->state == YR_RS_ATTEMPT && commit_stream(c) < 0)
        return -ECONNRESET;
    int rc = yr_http_stream_write(c->g->http, c->out.data, c->out.len);
    yr_buf_reset(&c->out);
    return rc;
}

/* Sends an SSE error event after the 200 was committed, then ends the
 * stream: the client sees an explicit failure, never a silent truncation. */
static void stream_fail(chat_t *c, yr_err_t e, const char *why, yr_outcome_t o)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", why);
    scrub(c, msg, sizeof(msg));
    attempt_end(c, o);
    yr_log_warn("%s: stream from %s failed after the first byte: %s", c->g->id, vendor_name(c),
                msg);
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
    } else if (c->dialect == YR_DIALECT_RESPONSES && c->pass) {
        char m[700];
        snprintf(m, sizeof(m), "%s (request id: %.*s)", msg, (int)c->g->request_id.len,
                 c->g->request_id.ptr);
        rc = yr_oai_resp_pass_failed(&c->cx,
                                     e == YR_E_RATE_LIMITED ? "rate_limit_exceeded" : "server_error",
                                     yr_str(m), &ev);
        goto write;
    } else if (c->dialect == YR_DIALECT_RESPONSES && c->renc != NULL) {
        /* response.failed with the error: never a silent completed */
        char m[700];
        snprintf(m, sizeof(m), "%s (request id: %.*s)", msg, (int)c->g->request_id.len,
                 c->g->request_id.ptr);
        rc = yr_resp_enc_fail(c->renc, e, yr_str(m), &ev);
        goto write;
    } else if (c->dialect == YR_DIALECT_GEMINI) {
        /* A chunk with an error object (the SDK raises on it), in the
         * client's framing; nothing follows it. */
        char m[700];
        snprintf(m, sizeof(m), "%s (request id: %.*s)", msg, (int)c->g->request_id.len,
                 c->g->request_id.ptr);
        rc = c->genc ? yr_gem_enc_error(c->genc, e, yr_str(m), &ev)
                     : yr_gem_frame_error(&c->gframe, e, yr_str(m), &ev);
        goto write;
    } else {
        rc = yr_buf_append_str(&ev, YR_STR("data: "));
        if (rc == 0)
            rc = yr_err_render(&ev, e, yr_str(msg), NULL, "stream_interrupted",
                               c->g->request_id);
    }
    if (rc == 0)
        rc = yr_buf_append_str(&ev, YR_STR("\n\n"));
write:
    /* Events decoded before the failing one, in the same upstream read,
     * are still waiting: the client gets them first. */
    if (c->out.len > 0 && yr_http_stream_write(c->g->http, c->out.data, c->out.len) < 0)
        rc = -ECONNRESET;
    yr_buf_reset(&c->out);
    if (rc == 0 && yr_http_stream_write(c->g->http, ev.data, ev.len) < 0)
        rc = -ECONNRESET;
    yr_buf_free(&ev);
    finish(c, 502);
    yr_http_stream_end(c->g->http, true);
}

static void on_drain(yr_http_req_t *req);

static int stream_data(chat_t *c, const char *p, size_t n)
{
    if (c->state == YR_RS_STREAMING && yr_http_stream_pending(c->g->http) > STREAM_HIGH_WATER) {
        c->g->http->on_drain = on_drain; /* until the client has taken enough */
        return YR_UP_PAUSE;
    }
    int rc = yr_framer_feed(&c->framer, p, n, on_frame, c);
    if (rc == 0)
        rc = flush_out(c);
    if (rc < 0) {
        c->event_failed = true;
        c->event_rc = rc;
        if (rc == -ECANCELED) {
            snprintf(c->last_msg, sizeof(c->last_msg), "%s reported an error mid-stream: %.400s",
                     vendor_name(c), c->cx.error.message);
            scrub(c, c->last_msg, sizeof(c->last_msg));
        } else if (rc == -E2BIG) {
            snprintf(c->last_msg, sizeof(c->last_msg), "an event was larger than %d bytes",
                     YR_SSE_MAX_EVENT);
        } else if (rc == -EPROTO) {
            snprintf(c->last_msg, sizeof(c->last_msg), "malformed event in the stream");
        } else if (rc == -ENOMEM) {
            snprintf(c->last_msg, sizeof(c->last_msg),
                     "the gateway ran out of memory translating the stream");
        } else {
            snprintf(c->last_msg, sizeof(c->last_msg), "client write failed");
            c->client_gone = true;
        }
        return YR_UP_ABORT;
    }
    return YR_UP_CONTINUE;
}

/* Set while the upstream is paused for a slow client (stream_data): a write
 * the client took at once then needs no loop turn to report it. */
static void on_drain(yr_http_req_t *req)
{
    yr_gw_req_t *g = req->data;
    chat_t *c = g->chat;
    if (yr_http_stream_pending(req) >= STREAM_LOW_WATER)
        return;
    req->on_drain = NULL;
    if (c->call != NULL && yr_upstream_paused(c->call))
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
    int status = yr_upstream_status(call);
    c->att->head_ns = now_ns();
    c->att->status = status;
    c->kind->transport->process_header(&c->cx, call, &c->att->head);
    c->att->retry_after_ms = c->att->head.retry_after_ms;
    yr_buf_reset(&c->resp);
    c->resp.max = status_ok(status) ? MAX_UPSTREAM_BODY : MAX_ERROR_BODY;
    return 0;
}

static int on_up_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    chat_t *c = data;
    int status = yr_upstream_status(call);
    if (c->chat.stream && status_ok(status) && !c->count_tokens)
        return stream_data(c, p, n); /* writes only queue: nothing here ends the request */
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

/* CPU work that may run on the thread pool (offload, below): work(c) there,
 * then done(c, gone) back on the loop; gone: the client left (or the loop
 * is closing) and the request will be finished by its pool cleanup. */
typedef void (*offload_work_fn)(chat_t *c);
typedef void (*offload_done_fn)(chat_t *c, bool gone);
static void offload_if_large(chat_t *c, size_t len, offload_work_fn work, offload_done_fn done);

/* A complete answer checked (passthrough) or translated into c->out. */
static void relay_decode(chat_t *c)
{
    yr_str_t body = {c->resp.data ? c->resp.data : "", c->resp.len};
    if (c->pass) {
        c->work_rc = c->kind->dialect->pass_response(&c->cx, body);
        return;
    }
    yr_buf_reset(&c->out);
    c->out.max = MAX_UPSTREAM_BODY;
    c->work_rc = encoder_new(c, false);
    if (c->work_rc == 0)
        c->work_rc = c->kind->dialect->response(&c->cx, body, on_event, c);
}

static void relay_decoded(chat_t *c, bool gone)
{
    yr_str_t body = {c->resp.data ? c->resp.data : "", c->resp.len};
    yr_str_t client = body;
    int rc = c->work_rc;
    if (gone) { /* the provider served it: its usage counts (the request ends 499) */
        attempt_end(c, rc == 0 ? YR_OUT_OK : YR_OUT_CANCELLED);
        return;
    }
    if (c->pass && rc == 0 && c->cx.pass_out.len > 0)
        client = c->cx.pass_out; /* the dialect translated it (embeddings from Gemini) */
    else if (!c->pass)
        client = (yr_str_t){c->out.data ? c->out.data : "", c->out.len};
    if (rc == -ENOMEM) {
        record_failure(c, YR_E_INTERNAL, "the gateway ran out of memory translating the answer");
        attempt_end(c, YR_OUT_INTERNAL);
        attempt_next(c);
        return;
    }
    if (rc < 0) {
        record_failure(c, YR_E_UPSTREAM_ERROR,
                       "%s returned a response that is not a valid chat completion",
                       vendor_name(c));
        attempt_end(c, YR_OUT_BAD_RESPONSE);
        attempt_next(c);
        return;
    }
    attempt_end(c, YR_OUT_OK);
    if (c->pass && c->trace.span_id != 0 && yr_obs_tracing(c->g->w->obs))
        peek_answer(c, body);
    yr_http_header_t h[5] = {
        {YR_STR("x-yourouter-vendor"), yr_str(vendor_name(c))},
        {YR_STR("x-yourouter-provider"), yr_str(vendor_name(c))},
        {YR_STR("x-yourouter-attempts"), attempts_header(c)},
        {YR_STR("x-yourouter-overhead-ms"), overhead_header(c, false)},
    };
    size_t nh = 4 + dropped_header(c, &h[4]);
    finish(c, 200);
    yr_gw_send_json(c->g, 200, client, h, nh);
}

/* Checking or translating a large answer (validating 8 MB: 40 ms) runs off
 * the loop too (offload, below). */
static void relay_response(chat_t *c)
{
    offload_if_large(c, c->resp.len, relay_decode, relay_decoded);
}

/* A stream that was already committed ended. */
static void stream_done(chat_t *c, enum yr_up_error err)
{
    if (err == YR_UP_OK && c->done_seen && !yr_framer_partial(&c->framer)) {
        if (c->pass && c->dialect == YR_DIALECT_GEMINI) {
            /* The closing "]" of a JSON-array stream (nothing for SSE). */
            yr_buf_reset(&c->out);
            if (yr_gem_frame_end(&c->gframe, &c->out) == 0 && c->out.len > 0 &&
                yr_http_stream_write(c->g->http, c->out.data, c->out.len) < 0)
                yr_log_debug("%s: client write failed at the end", c->g->id);
        }
        attempt_end(c, YR_OUT_OK);
        finish(c, 200);
        yr_http_stream_end(c->g->http, false);
    } else if (c->event_failed && c->event_rc == -ENOMEM) {
        stream_fail(c, YR_E_INTERNAL, c->last_msg, YR_OUT_INTERNAL);
    } else if (c->event_failed) {
        stream_fail(c, YR_E_UPSTREAM_ERROR, c->last_msg, YR_OUT_BAD_RESPONSE);
    } else if (err == YR_UP_EIDLE) {
        char why[128];
        snprintf(why, sizeof(why), "%s sent nothing for %u ms mid-stream", vendor_name(c),
                 (unsigned)c->ureq.idle_timeout_ms);
        stream_fail(c, YR_E_UPSTREAM_TIMEOUT, why, YR_OUT_TIMEOUT);
    } else {
        stream_fail(c, YR_E_UPSTREAM_ERROR,
                    err == YR_UP_OK ? "the upstream stream ended before it was complete"
                                    : "the upstream connection broke mid-stream",
                    YR_OUT_STREAM_CUT);
    }
}

/* An attempt that ended before anything reached the client: why, as an
 * outcome (the failure is recorded for the final error). */
static yr_outcome_t attempt_failure(chat_t *c, yr_upstream_call_t *call, enum yr_up_error err,
                                    int status)
{
    const char *vendor = vendor_name(c);
    if (err == YR_UP_OK && status_ok(status)) {
        record_failure(c, YR_E_UPSTREAM_ERROR, "%s ended the stream before it was complete",
                       vendor);
        return YR_OUT_BAD_RESPONSE;
    }
    if (err == YR_UP_OK)
        return record_http_failure(c, call, status);
    if (err == YR_UP_ECONNECT) {
        if (status > 0) /* a status line came: the head itself failed */
            record_failure(c, YR_E_UPSTREAM_ERROR, "%s sent a response the gateway cannot read: %s",
                           vendor, yr_upstream_error_text(call));
        else
            record_failure(c, YR_E_UPSTREAM_ERROR, "could not reach %s: %s", vendor,
                           yr_upstream_error_text(call));
        return YR_OUT_CONNECT;
    }
    if (err == YR_UP_ETIMEDOUT) {
        record_failure(c, YR_E_UPSTREAM_TIMEOUT, "%s did not answer within %u ms", vendor,
                       (unsigned)c->ureq.first_byte_timeout_ms);
        return YR_OUT_TIMEOUT;
    }
    if (err == YR_UP_EIDLE) {
        /* Silent after its head, before the client saw anything: a timeout
         * like no head at all, so another route may answer. */
        record_failure(c, YR_E_UPSTREAM_TIMEOUT, "%s sent nothing for %u ms", vendor,
                       (unsigned)c->ureq.idle_timeout_ms);
        return YR_OUT_TIMEOUT;
    }
    if (c->event_failed && c->event_rc == -ECANCELED) {
        /* An error event before anything reached the client: as good as an
         * HTTP error with that status (e.g. overloaded_error = 529). */
        bool retry;
        yr_err_t e = yr_err_from_upstream_status(c->cx.error_status, &retry);
        char why[512];
        snprintf(why, sizeof(why), "%s", c->last_msg);
        record_failure(c, e, "%s", why);
        c->att->status = c->cx.error_status;
        yr_provider_error_t perr = {.retry_after_ms = c->cx.error_retry_after_ms > 0
                                                          ? c->cx.error_retry_after_ms
                                                          : -1};
        snprintf(perr.type, sizeof(perr.type), "%s", c->cx.error_type);
        snprintf(perr.code, sizeof(perr.code), "%s", c->cx.error_code);
        yr_outcome_t o = c->kind->transport->classify(c->cx.error_status, &perr);
        if (perr.retry_after_ms > 0) { /* the event's own hint (Gemini RetryInfo) */
            if (c->att->retry_after_ms < 0)
                c->att->retry_after_ms = perr.retry_after_ms;
            snprintf(c->retry_after, sizeof(c->retry_after), "%lld",
                     (long long)((perr.retry_after_ms + 999) / 1000));
        }
        return retry ? o : YR_OUT_CLIENT_ERROR;
    }
    if (c->event_failed && c->event_rc == -ENOMEM) {
        record_failure(c, YR_E_INTERNAL, "the gateway ran out of memory translating the answer");
        return YR_OUT_INTERNAL;
    }
    if (c->event_failed) {
        char why[512];
        snprintf(why, sizeof(why), "%s", c->last_msg);
        record_failure(c, YR_E_UPSTREAM_ERROR, "%s: %s", vendor, why);
        return YR_OUT_BAD_RESPONSE;
    }
    record_failure(c, YR_E_UPSTREAM_ERROR,
                   "the connection to %s broke before the response was complete", vendor);
    return YR_OUT_STREAM_CUT;
}

/* A credential the transport's cache still held good was refused (a 401:
 * a revoked or rotated token, which the transport dropped in
 * process_header): once per request, the same route again with a fresh
 * one, before any other route. Its spare attempt slot is allocated in
 * plan_routes; the route's health learns from the first try only. */
static bool retry_refused_credential(chat_t *c, yr_outcome_t o, int status)
{
    if (o != YR_OUT_AUTH || status != 401 || c->cred_retried || c->cx.access_token == NULL ||
        c->kind->transport->credentials == NULL || now_ns() >= c->deadline_ns)
        return false;
    c->cred_retried = true;
    return attempt_start(c, c->att->route) == 0;
}

static void up_done(chat_t *c, yr_upstream_call_t *call, enum yr_up_error err)
{
    int status = yr_upstream_status(call);
    if (c->client_gone) {
        /* the client left while we wrote to it: cancelled, not a route failure */
        bool streaming = c->state == YR_RS_STREAMING;
        attempt_end(c, YR_OUT_CANCELLED);
        finish(c, 499);
        if (streaming)
            yr_http_stream_end(c->g->http, true);
        else
            yr_http_respond(c->g->http, 499, NULL, 0, YR_STR("text/plain"), YR_STR(""));
        return;
    }
    if (c->state == YR_RS_STREAMING) {
        stream_done(c, err);
        return;
    }
    if (err == YR_UP_OK && status_ok(status) && (!c->chat.stream || c->count_tokens)) {
        relay_response(c);
        return;
    }
    yr_outcome_t o = attempt_failure(c, call, err, status);
    attempt_end(c, o);
    if (retry_refused_credential(c, o, status))
        return;
    if (yr_route_may_retry(&c->plan, c->att))
        attempt_next(c);
    else
        fail_with_last(c);
}

static void on_up_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    chat_t *c = data;
    c->call = NULL; /* the call ends here */
    if (c->att != NULL && c->att->send_ns != 0)
        c->up_ns += now_ns() - c->att->send_ns;
    yr_http_req_t *req = c->g->http;
    yr_http_req_hold(req);
    up_done(c, call, err);
    yr_http_req_release(req); /* may end the request: c is gone after this */
}

static const yr_upstream_cbs_t up_cbs = {
    .on_head = on_up_head,
    .on_data = on_up_data,
    .on_done = on_up_done,
};

/* ---- attempts -------------------------------------------------------------- */

static yr_str_t client_body(const chat_t *c)
{
    return (yr_str_t){c->g->http->body.data ? c->g->http->body.data : "", c->g->http->body.len};
}

static int attempt_failed_to_start(chat_t *c, int rc)
{
    record_failure(c, YR_E_INTERNAL, "could not start the call to %s: %s", vendor_name(c),
                   strerror(rc < 0 ? -rc : rc));
    /* out of memory is the gateway's trouble, not a strike on the route */
    attempt_end(c, rc == -ENOMEM ? YR_OUT_INTERNAL : YR_OUT_CONNECT);
    return -1;
}

/* The attempt's W3C traceparent (its own span as the parent of whatever
 * the provider records), after the transport's headers. */
static int add_traceparent(chat_t *c)
{
    size_t n = 0;
    while (c->ureq.headers != NULL && c->ureq.headers[n] != NULL)
        n++;
    const char **h = yr_palloc(c->g->http->pool, (n + 2) * sizeof(*h));
    char *line = yr_palloc(c->g->http->pool, 80);
    if (h == NULL || line == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        h[i] = c->ureq.headers[i];
    yr_obs_traceparent(&c->trace, c->att->span_id, line, 80);
    h[n] = line;
    h[n + 1] = NULL;
    c->ureq.headers = h;
    return 0;
}

/* What translating a request takes, measured (a Release build, 8 MB
 * bodies): the client's tree ~120 bytes per JSON value, kept as long as the
 * request (failover re-translates from it); the provider's tree ~180 bytes
 * per value, freed once dumped; the body, its translation and the dump's
 * buffer. A conversation of 90,000 short messages (8.2 MB, 450,000 values)
 * peaks at ~150 MB; one 8 MB string at ~20 MB. */
#define TREE_BYTES_PER_VALUE 300

/* Charges the request's translation to its worker before its tree is
 * built, so that the trees of all translations in flight on a worker stay
 * within server.max_translation_memory: past it a request gets 503 with
 * Retry-After (or 413 when it alone is larger), never an allocation
 * failure. 0, or -1 with *e and msg set. Kept until the request ends. */
static int charge_tree(chat_t *c, yr_err_t *e, char *msg, size_t cap)
{
    if (c->tree_charged > 0)
        return 0;
    uint64_t est = 3 * (uint64_t)client_body(c).len +
                   (uint64_t)c->chat.nvalues * TREE_BYTES_PER_VALUE;
    uint64_t limit = c->g->cfg->server.max_translation_memory;
    yr_worker_t *w = c->g->w;
    if (est > limit) {
        *e = YR_E_TOO_LARGE;
        snprintf(msg, cap,
                 "the request is too large to translate: it would take about %llu MiB, and "
                 "server.max_translation_memory allows %llu MiB",
                 (unsigned long long)(est >> 20), (unsigned long long)(limit >> 20));
        return -1;
    }
    if (w->tree_bytes + est > limit) {
        *e = YR_E_OVERLOADED;
        snprintf(msg, cap, "the gateway is translating too many large requests right now "
                           "(server.max_translation_memory), retry shortly");
        return -1;
    }
    w->tree_bytes += est;
    c->tree_charged = est;
    return 0;
}

/* charge_tree for an attempt; -1 when the attempt was ended for it. */
static int attempt_charge_tree(chat_t *c)
{
    yr_err_t e;
    char msg[256];
    if (!c->kind->dialect->needs_tree || charge_tree(c, &e, msg, sizeof(msg)) == 0)
        return 0;
    record_failure(c, e, "%s", msg);
    if (e == YR_E_OVERLOADED)
        snprintf(c->retry_after, sizeof(c->retry_after), "1");
    attempt_end(c, YR_OUT_INTERNAL); /* the gateway's limit: no route would do better */
    return -1;
}

/* The request's JSON tree, for dialects that translate from it. The body
 * was validated already, so a failure is memory, or JSON that jansson
 * refuses (a \u0000 in a string, an integer beyond 64 bits): then the
 * request cannot be translated, a 400 (attempt_built). */
static int load_tree(chat_t *c)
{
    if (!c->kind->dialect->needs_tree)
        return 0;
    int rc = yr_chat_load_root(&c->chat);
    if (rc == -EINVAL) {
        snprintf(c->cx.error.message, sizeof(c->cx.error.message),
                 "the request holds JSON that cannot be translated for vendor '%s' (a \\u0000 "
                 "character in a string, or an integer beyond 64 bits)",
                 vendor_name(c));
        c->cx.error.param[0] = '\0';
    }
    return rc;
}

/* The body is built and the credentials are there: URL, auth, send. */
static int attempt_send(chat_t *c)
{
    int rc = c->kind->transport->prepare(&c->cx, c->path, c->extra, &c->ureq);
    if (rc == 0) {
        yr_transport_route_timeouts(c->att->route, &c->ureq);
        c->ureq.ca_file = c->att->route->provider->tls_ca_file;
        c->ureq.http2 = c->att->route->provider->tls_http2;
        /* no try outlives the request's deadline */
        uint64_t now = now_ns();
        uint64_t left = c->deadline_ns > now ? (c->deadline_ns - now) / 1000000u + 1 : 1;
        if (c->ureq.timeout_ms == 0 || c->ureq.timeout_ms > left)
            c->ureq.timeout_ms = (uint32_t)(left > UINT32_MAX ? UINT32_MAX : left);
        if (c->ureq.first_byte_timeout_ms > c->ureq.timeout_ms)
            c->ureq.first_byte_timeout_ms = c->ureq.timeout_ms;
        if (c->ureq.idle_timeout_ms > c->ureq.timeout_ms)
            c->ureq.idle_timeout_ms = c->ureq.timeout_ms;
    }
    if (rc == 0 && c->att->span_id != 0)
        rc = add_traceparent(c);
    c->att->send_ns = now_ns();
    if (rc == 0)
        rc = yr_upstream_start(c->g->w->up, &c->ureq, &up_cbs, c, &c->call);
    return rc == 0 ? 0 : attempt_failed_to_start(c, rc);
}

/* The transport could not get its credentials (a token exchange failed):
 * the attempt failed as refused credentials, with the transport's words
 * (they name the account), and another route may have other ones. */
static int attempt_no_credentials(chat_t *c, int rc)
{
    if (rc == -ENOMEM)
        return attempt_failed_to_start(c, rc); /* the gateway's trouble */
    if (c->cx.error.message[0] == '\0')
        snprintf(c->cx.error.message, sizeof(c->cx.error.message), "%s",
                 strerror(rc < 0 ? -rc : rc));
    record_failure(c, YR_E_UPSTREAM_AUTH, "%s: %s", vendor_name(c), c->cx.error.message);
    attempt_end(c, YR_OUT_AUTH);
    return -1;
}

static void on_credentials(void *arg, int rc)
{
    chat_t *c = arg;
    c->cred_wait = NULL;
    yr_http_req_t *req = c->g->http;
    yr_http_req_hold(req);
    if ((rc == 0 ? attempt_send(c) : attempt_no_credentials(c, rc)) < 0)
        attempt_next(c);
    yr_http_req_release(req);
}

/* The one seam every dialect's build passes through: the OpenAI form of
 * the request (raw, and chat.root when parsed) fitted to the model of the
 * attempt's route (providers/fit.h): max tokens clamped to its output
 * limit, reasoning_effort dropped or mapped. Every attempt starts from what
 * the client sent. 0 or -ENOMEM. */
static int fit_request(chat_t *c, yr_str_t *raw)
{
    yr_model_info_t info;
    yr_fit_t f;
    yr_catalog_route_info(c->att->route, &info);
    bool change = yr_fit_plan(&info, &c->chat, &f);
    if (c->chat.root != NULL && yr_fit_tree(change ? &f : NULL, c->chat.root, &c->fit_saved) < 0)
        return -ENOMEM;
    if (!change)
        return 0;
    yr_buf_reset(&c->fitted);
    int rc = yr_fit_bytes(&f, *raw, &c->fitted);
    if (rc < 0)
        return rc == -EINVAL ? 0 : -ENOMEM; /* not an object: the dialect says so */
    *raw = (yr_str_t){c->fitted.data, c->fitted.len};
    return 0;
}

/* A native passthrough (an Anthropic or Gemini client on its own kind of
 * provider) gets the same fit in its own spelling, planned from the
 * request's OpenAI form. 0 or -ENOMEM. */
static int fit_native(chat_t *c, yr_str_t *raw)
{
    yr_model_info_t info;
    yr_fit_t f;
    if (c->count_tokens || c->oai_err != NULL)
        return 0; /* nothing to fit, or no OpenAI form to plan from */
    yr_catalog_route_info(c->att->route, &info);
    if (!yr_fit_plan(&info, &c->chat, &f))
        return 0;
    yr_buf_reset(&c->fitted);
    int rc = c->dialect == YR_DIALECT_ANTHROPIC ? yr_fit_anthropic_bytes(&f, *raw, &c->fitted)
             : c->dialect == YR_DIALECT_GEMINI  ? yr_fit_gemini_bytes(&f, *raw, &c->fitted)
                                                : 0;
    if (rc < 0)
        return -ENOMEM;
    if (rc == 1)
        *raw = (yr_str_t){c->fitted.data, c->fitted.len};
    return 0;
}

/* The dialect turns the request into the route's body. Pure over c's
 * request and buffers (it may run on the thread pool, see offload_build). */
static int build_body(chat_t *c)
{
    yr_str_t raw = c->dialect == YR_DIALECT_OPENAI || c->pass
                       ? client_body(c)
                       : (yr_str_t){c->oai_body.data, c->oai_body.len};
    if (c->pass && c->dialect == YR_DIALECT_RESPONSES && c->rinfo.pass_body != NULL)
        raw = yr_str(c->rinfo.pass_body); /* the stored conversation inlined */
    bool openai_form = !c->pass || c->dialect == YR_DIALECT_OPENAI;
    if ((openai_form ? fit_request(c, &raw) : fit_native(c, &raw)) < 0)
        return -ENOMEM;
    return c->pass ? c->kind->dialect->pass_build(&c->cx, raw, &c->upbody, &c->ureq, &c->path,
                                                  &c->extra)
                   : c->kind->dialect->build(&c->cx, raw, &c->upbody, &c->ureq, &c->path,
                                             &c->extra);
}

/* The body is built (rc from build_body): credentials, then the call. 0
 * when in flight (or waiting for credentials); else the attempt was ended
 * and -1 returned. */
static int attempt_built(chat_t *c, int rc)
{
    if (rc == -ENOMEM) {
        record_failure(c, YR_E_INTERNAL, "the gateway ran out of memory translating the request");
        attempt_end(c, YR_OUT_INTERNAL);
        return -1;
    }
    if (rc == -EINVAL) {
        record_failure(c, YR_E_INVALID_REQUEST, "%s", c->cx.error.message);
        snprintf(c->last_param, sizeof(c->last_param), "%s", c->cx.error.param);
        attempt_end(c, YR_OUT_CLIENT_ERROR);
        return -1;
    }
    if (rc == 0 && c->kind->transport->credentials != NULL) {
        rc = c->kind->transport->credentials(&c->cx, on_credentials, c, &c->cred_wait);
        if (rc == 1)
            return 0; /* attempt_send runs when they are there */
        if (rc < 0)
            return attempt_no_credentials(c, rc);
    }
    return rc == 0 ? attempt_send(c) : attempt_failed_to_start(c, rc);
}

/* ---- CPU work off the loop ------------------------------------------------------------------ */

/* Reading (validating, converting) or translating a large request (a full
 * JSON tree of a multi-megabyte body) takes long enough to stall every
 * other request of the worker: 40 ms to validate 8 MB, 200 ms for its
 * tree. So it runs on libuv's thread pool. Only that thread touches the
 * request meanwhile: the request is held (a client that leaves only
 * detaches it), no timer of it runs, and the loop resumes it in done. */

struct offload {
    uv_work_t w;
    chat_t *c;
    offload_work_fn work;
    offload_done_fn done;
};

static void offload_run(uv_work_t *w)
{
    struct offload *o = w->data;
    o->work(o->c);
}

static void offload_back(uv_work_t *w, int status)
{
    struct offload *o = w->data;
    chat_t *c = o->c;
    offload_done_fn done = o->done;
    free(o);
    c->work = NULL;
    yr_http_req_t *req = c->g->http;
    done(c, status == UV_ECANCELED || yr_http_req_gone(req));
    yr_http_req_release(req);
}

/* Queues work(c) on the thread pool and done(c, gone) after it. 0, or -1
 * when it could not be queued (nothing ran: the caller works in place). */
static int offload(chat_t *c, offload_work_fn work, offload_done_fn done)
{
    struct offload *o = malloc(sizeof(*o));
    if (o == NULL)
        return -1;
    *o = (struct offload){.c = c, .work = work, .done = done};
    o->w.data = o; /* before it is queued: a pool thread may take it at once */
    c->work = o;
    yr_http_req_hold(c->g->http);
    if (uv_queue_work(&c->g->w->loop, &o->w, offload_run, offload_back) != 0) {
        yr_http_req_release(c->g->http);
        free(o);
        c->work = NULL;
        return -1;
    }
    return 0;
}

/* Runs work then done, on the thread pool when the body is large. */
static void offload_if_large(chat_t *c, size_t len, offload_work_fn work, offload_done_fn done)
{
    if (len >= OFFLOAD_BYTES && offload(c, work, done) == 0)
        return;
    work(c);
    done(c, false);
}

static void build_work(chat_t *c)
{
    c->work_rc = load_tree(c);
    if (c->work_rc == 0)
        c->work_rc = build_body(c);
}

static void built(chat_t *c, bool gone)
{
    if (gone) {
        attempt_end(c, YR_OUT_CANCELLED); /* the pool cleanup finishes the request (499) */
        return;
    }
    if (attempt_built(c, c->work_rc) < 0)
        attempt_next(c);
}

static int offload_build(chat_t *c)
{
    if (offload(c, build_work, built) == 0)
        return 0;
    int rc = load_tree(c); /* in place, then */
    return attempt_built(c, rc < 0 ? rc : build_body(c));
}

/* Starts an attempt on route r. Returns 0 when the call is in flight (or
 * waits for credentials); otherwise the attempt was ended (and recorded)
 * and -1 returned. */
static int attempt_start(chat_t *c, const yr_route_conf_t *r)
{
    yr_attempt_t *a = &c->attempts[c->nattempts++];
    *a = (yr_attempt_t){.route = r,
                        .start_ns = now_ns(),
                        .retry_after_ms = -1,
                        .span_id = yr_obs_span_id(c->g->w->obs, &c->trace)};
    c->att = a;
    c->resp_id[0] = c->resp_model[0] = c->finish[0] = '\0';
    c->kind = yr_provider_kind_for(r, c->dialect);
    c->pass = c->kind->dialect->native_client == c->dialect;
    yr_buf_reset(&c->upbody);
    yr_buf_reset(&c->resp);
    yr_buf_reset(&c->out);
    c->out.max = YR_SSE_MAX_EVENT * 2;
    yr_framer_free(&c->framer);
    yr_framer_init(&c->framer, c->kind->transport->framing, YR_SSE_MAX_EVENT);
    c->done_seen = c->event_failed = false;
    c->gframe = (yr_gem_frame_t){.sse = c->ginfo.sse};
    c->events_out = 0;
    c->event_rc = 0;
    free_encoders(c);
    c->cx = (yr_call_ctx_t){
        .pool = c->g->http->pool,
        .chat = &c->chat,
        .route = r,
        .request_id = c->g->request_id,
        .client_version = yr_http_req_header(c->g->http, YR_STR("anthropic-version")),
        .client_beta = yr_http_req_header(c->g->http, YR_STR("anthropic-beta")),
        .count_tokens = c->count_tokens,
        .gcp_tokens = c->g->w->gcp_tokens,
    };
    if (!c->pass && c->oai_err != NULL) {
        /* The client's request has no faithful form for this route. */
        c->last_err = c->oai_err->err;
        snprintf(c->last_msg, sizeof(c->last_msg), "%s", c->oai_err->message);
        snprintf(c->last_param, sizeof(c->last_param), "%s", c->oai_err->param);
        c->last_code[0] = c->retry_after[0] = '\0';
        attempt_end(c, YR_OUT_CLIENT_ERROR);
        return -1;
    }
    if (!c->pass && c->chat.stream && encoder_new(c, true) < 0) {
        record_failure(c, YR_E_INTERNAL, "out of memory");
        attempt_end(c, YR_OUT_CONNECT);
        return -1;
    }
    c->ureq = (yr_upstream_req_t){0};
    c->path = NULL;
    c->extra = NULL;
    if (!c->pass && attempt_charge_tree(c) < 0)
        return -1;
    if (!c->pass && client_body(c).len >= OFFLOAD_BYTES)
        return offload_build(c);
    int rc = c->pass ? 0 : load_tree(c);
    return attempt_built(c, rc < 0 ? rc : build_body(c));
}

static void on_backoff(uv_timer_t *t)
{
    chat_t *c = t->data;
    stop_backoff(c);
    yr_http_req_t *req = c->g->http;
    yr_http_req_hold(req);
    attempt_next(c); /* the route layer decides again: the wait may have changed things */
    yr_http_req_release(req);
}

/* Waits delay_ms (BACKOFF), then asks the route layer again. 0, or -1 when
 * the wait cannot be armed or would pass the request's deadline. */
static int start_backoff(chat_t *c, uint64_t delay_ms)
{
    uint64_t now = now_ns();
    if (now >= c->deadline_ns || delay_ms >= (c->deadline_ns - now) / 1000000u)
        return -1;
    c->backoff = malloc(sizeof(*c->backoff));
    if (c->backoff == NULL)
        return -1;
    uv_timer_init(&c->g->w->loop, c->backoff);
    c->backoff->data = c;
    uv_timer_start(c->backoff, on_backoff, delay_ms, 0);
    set_state(c, YR_RS_BACKOFF);
    return 0;
}

static void attempt_next(chat_t *c)
{
    if (c->state != YR_RS_ATTEMPT)
        set_state(c, YR_RS_ATTEMPT);
    for (;;) {
        uint64_t delay = 0;
        const yr_route_conf_t *r = NULL;
        if (c->nattempts < c->max_attempts && now_ns() < c->deadline_ns)
            r = yr_peer_get(&c->plan, yr_health_now_ms(), &delay);
        if (r == NULL)
            break;
        if (delay > 0) {
            if (start_backoff(c, delay) == 0)
                return;
            break; /* waiting would pass the deadline: fail with what we know */
        }
        if (attempt_start(c, r) == 0)
            return;
    }
    fail_with_last(c);
}

/* ---- routes ------------------------------------------------------------------ */

/* Whether r's model has what the request uses (images, tools, a JSON
 * schema); a route that lacks it is skipped and listed with the reason in
 * x-yourouter-attempts. Models the catalog does not know are capable. */
static bool route_can_serve(chat_t *c, const yr_route_conf_t *r)
{
    yr_model_info_t info;
    yr_catalog_route_info(r, &info);
    unsigned lacks = yr_fit_lacks(&info, c->chat.uses);
    if (lacks == 0)
        return true;
    if (c->skipped == NULL)
        c->skipped = yr_pcalloc(c->g->http->pool, c->model->nroutes * sizeof(*c->skipped));
    if (c->skipped != NULL && c->nskipped < c->model->nroutes) {
        c->skipped[c->nskipped].route = r;
        c->skipped[c->nskipped++].cap = lacks;
    }
    yr_log_debug("%s: route %s/%s skipped: its model has no %s", c->g->id, r->provider->name,
                 r->model, yr_cap_name(lacks));
    return false;
}

/* A route this request may use: its key allows the vendor, its model has
 * the capabilities the request uses, and for count_tokens only the
 * provider's own API can count. */
static bool route_usable(const yr_route_conf_t *r, void *arg)
{
    chat_t *c = arg;
    const yr_key_info_t *key = c->g->identity.key;
    if (key != NULL && !yr_key_allows_vendor(&key->policy, yr_str(r->provider->name)))
        return false;
    if (c->dialect == YR_DIALECT_EMBEDDINGS)
        return yr_provider_embed_kind(r) != NULL;
    const yr_provider_kind_ops_t *k = yr_provider_route_kind(r);
    if (c->count_tokens)
        return k != NULL && k->dialect->native_client == c->dialect;
    return route_can_serve(c, r);
}

/* Every route the request could use lacks a capability it needs: a 400
 * that names the capability (and which routes lack it, in the header). */
static void fail_unservable(chat_t *c)
{
    unsigned cap = c->skipped[0].cap;
    const char *what = cap == YR_CAP_VISION  ? "images"
                       : cap == YR_CAP_TOOLS ? "tools"
                                             : "a JSON schema";
    const char *param = cap == YR_CAP_VISION  ? "messages"
                        : cap == YR_CAP_TOOLS ? "tools"
                                              : "response_format";
    char msg[512];
    snprintf(msg, sizeof(msg),
             "model '%s' cannot serve this request: it uses %s, and no route of it has a model "
             "with the '%s' capability (%s/%s has not)",
             c->model->id, what, yr_cap_name(cap), c->skipped[0].route->provider->name,
             c->skipped[0].route->model);
    yr_http_header_t h[1] = {{YR_STR("x-yourouter-attempts"), attempts_header(c)}};
    finish(c, yr_gw_error_status(c->g, YR_E_INVALID_REQUEST));
    yr_gw_send_error_h(c->g, YR_E_INVALID_REQUEST, msg, param, "capability_not_supported",
                       YR_STR_NULL, h, h[0].value.len > 0 ? 1 : 0);
}

/* Plans the routes that may serve this request; sends the 400 otherwise. */
static int plan_routes(chat_t *c)
{
    yr_str_t vendor = yr_http_req_header(c->g->http, YR_STR("vendor"));
    if (yr_route_plan(&c->plan, c->g->http->pool, c->model, vendor, yr_provider_callable,
                      route_usable, c) < 0) {
        fail_request(c, YR_E_INTERNAL, "out of memory", NULL, NULL);
        return -ENOMEM;
    }
    if (c->plan.n > 0) {
        c->deadline_ns = c->g->http->start_ns + (uint64_t)c->model->timeout_ms * 1000000u;
        size_t per = 1 + (size_t)c->model->retries;
        c->max_attempts = c->plan.n * per < MAX_ATTEMPTS ? c->plan.n * per : MAX_ATTEMPTS;
        uint64_t left_ms = c->deadline_ns > now_ns() ? (c->deadline_ns - now_ns()) / 1000000u : 0;
        c->plan.deadline_ms = yr_health_now_ms() + (int64_t)left_ms;
        /* + 1: the retry of a refused credential (retry_refused_credential) */
        c->attempts = yr_pcalloc(c->g->http->pool, (c->max_attempts + 1) * sizeof(*c->attempts));
        if (c->attempts == NULL) {
            fail_request(c, YR_E_INTERNAL, "out of memory", NULL, NULL);
            return -ENOMEM;
        }
        return 0;
    }
    if (c->count_tokens)
        return -EINVAL; /* the caller estimates instead */
    char msg[512];
    if (c->nskipped > 0) {
        fail_unservable(c);
        return -EINVAL;
    }
    const yr_key_info_t *key = c->g->identity.key;
    if (key != NULL && key->policy.allowed_vendors[0] != '\0' && c->plan.unsupported == 0) {
        snprintf(msg, sizeof(msg), "this key may not use the vendors that serve model '%s'%s",
                 c->model->id, c->plan.pinned ? " (or the vendor asked for)" : "");
        fail_request(c, YR_E_FORBIDDEN, msg, c->plan.pinned ? "vendor" : "model",
                     "vendor_not_allowed");
        return -EINVAL;
    }
    if (c->dialect == YR_DIALECT_EMBEDDINGS && c->plan.unsupported == 0) {
        snprintf(msg, sizeof(msg),
                 "model '%s' has no route that can embed (embeddings need an openai, azure, "
                 "gemini or vertex route of the google publisher)%s",
                 c->model->id, c->plan.pinned ? " of the vendor asked for" : "");
        fail_request(c, YR_E_INVALID_REQUEST, msg, "model", "model_not_supported");
        return -EINVAL;
    }
    if (c->plan.pinned && c->plan.unsupported == 0) {
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

static void image_done(image_slot_t *slot, const yr_fetch_result_t *res)
{
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
        bool big = res->status == YR_FETCH_ETOOBIG;
        if (big && res->over == &c->g->w->image_bytes) {
            /* Not this request's fault: the worker is busy fetching. */
            cancel_fetches(c);
            finish(c, yr_gw_error_status(c->g, YR_E_UPSTREAM_UNAVAILABLE));
            yr_gw_send_error(c->g, YR_E_UPSTREAM_UNAVAILABLE, res->reason, NULL,
                             "image_fetch_busy", YR_STR("1"));
            return;
        }
        fail_request(c, internal ? YR_E_INTERNAL : big ? YR_E_TOO_LARGE : YR_E_INVALID_REQUEST,
                     res->reason ? res->reason : "could not fetch the image",
                     param[0] ? param : NULL,
                     internal ? NULL : big ? "image_too_large" : "image_fetch_failed");
        return;
    }
    if (c->images_pending == 0) {
        c->chat.rewritten = true;
        attempt_next(c);
    }
}

static void on_image_done(void *arg, const yr_fetch_result_t *res)
{
    image_slot_t *slot = arg;
    yr_http_req_t *req = slot->c->g->http;
    yr_http_req_hold(req);
    image_done(slot, res);
    yr_http_req_release(req);
}

/* When a planned route translates and takes images inline only, fetches
 * every remote image of the request once (not once per attempt). Returns 1
 * when fetches were started (the attempts start when they end), 0 when there
 * is nothing to fetch, -1 when the request was failed. */
static int fetch_images(chat_t *c)
{
    bool wanted = false;
    for (size_t i = 0; i < c->plan.n && !wanted; i++) {
        const yr_provider_conf_t *p = c->plan.routes[i]->provider;
        const yr_provider_kind_ops_t *k = yr_provider_kind_for(c->plan.routes[i], c->dialect);
        const yr_dialect_ops_t *d = k != NULL ? k->dialect : NULL;
        wanted = d != NULL && (p->inline_images || d->inline_images) && d->native_client != c->dialect;
    }
    if (!wanted || c->oai_err != NULL)
        return 0;
    const yr_config_t *cfg = c->g->cfg;
    yr_err_t te;
    char tmsg[256];
    if (charge_tree(c, &te, tmsg, sizeof(tmsg)) < 0) {
        finish(c, yr_gw_error_status(c->g, te));
        yr_gw_send_error(c->g, te, tmsg, NULL, NULL,
                         te == YR_E_OVERLOADED ? YR_STR("1") : YR_STR_NULL);
        return -1;
    }
    int lrc = yr_chat_load_root(&c->chat);
    if (lrc < 0) {
        fail_request(c, lrc == -ENOMEM ? YR_E_INTERNAL : YR_E_INVALID_REQUEST,
                     lrc == -ENOMEM ? "out of memory"
                                    : "the request holds JSON that cannot be translated (a "
                                      "\\u0000 character in a string, or an integer beyond 64 "
                                      "bits)",
                     NULL, NULL);
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
    /* Amplification caps: a small request naming many large images must not
     * become a huge upstream body, nor many of them a worker's memory. */
    c->image_budget = (yr_fetch_budget_t){
        .cap = cfg->images.max_request_bytes,
        .what = "the images of this request",
        .setting = "images.max_request_bytes",
    };
    yr_fetch_budget_t *wb = &c->g->w->image_bytes;
    wb->cap = cfg->images.max_worker_bytes; /* the newest generation's */
    wb->release = true;
    wb->what = "the images this gateway worker is fetching";
    wb->setting = "images.max_worker_bytes";
    c->image_policy.budgets[0] = &c->image_budget;
    c->image_policy.budgets[1] = wb;
    c->images = yr_pcalloc(c->g->http->pool, n * sizeof(*c->images));
    if (c->images == NULL) {
        fail_request(c, YR_E_INTERNAL, "out of memory", NULL, NULL);
        return -1;
    }
    set_state(c, YR_RS_FETCHING);
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

/* ---- the request ------------------------------------------------------------ */

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
    c->state = YR_RS_AUTH;
    c->max_retry_ms = -1;
    c->overhead_ms = -1;
    yr_obs_trace_begin(g->w->obs, yr_http_req_header(req, YR_STR("traceparent")), &c->trace);
    c->deadline_ns = req->start_ns + (uint64_t)REQUEST_DEADLINE_MS * 1000000u;
    g->chat = c;
    c->next = g->w->chats;
    if (c->next != NULL)
        c->next->prev = c;
    g->w->chats = c;
    /* Translation can grow a body (tool-result wrappers, default schemas). */
    yr_buf_init(&c->upbody, req->body.len * 2 + 64 * 1024);
    yr_buf_init(&c->resp, MAX_UPSTREAM_BODY);
    yr_buf_init(&c->out, YR_SSE_MAX_EVENT * 2);
    yr_buf_init(&c->oai_body, req->body.len * 2 + 4096);
    yr_buf_init(&c->fitted, req->body.len * 2 + 4096);
    yr_framer_init(&c->framer, YR_FRAME_SSE, YR_SSE_MAX_EVENT);
    yr_metrics_inflight(&g->w->metrics, 1);
    return c;
}

/* The model is known and admitted: plan, fetch what must be fetched, go. */
static void route_and_go(chat_t *c)
{
    if (plan_routes(c) < 0)
        return;
    if (fetch_images(c) != 0)
        return; /* fetching, or failed */
    attempt_next(c);
}

static void on_admitted(void *arg, int rc, const yr_admit_res_t *res);

/* The most a request may cost on any route of its model: its prompt (the
 * body's bytes / 4) and max_tokens of output (4096 when it set none) at the
 * dearest known price. 0 when no route has a price. */
static int64_t max_cost(const chat_t *c, int64_t input_tokens, int64_t max_tokens)
{
    int64_t most = 0;
    yr_usage_t u = {.prompt_tokens = input_tokens,
                    .completion_tokens = max_tokens <= 0        ? 4096
                                         : max_tokens > 100000000 ? 100000000
                                                                  : max_tokens};
    for (size_t i = 0; i < c->model->nroutes; i++) {
        yr_price_t p;
        if (route_price(&c->model->routes[i], &p)) {
            int64_t v = yr_cost_micros(&p, &u);
            most = v > most ? v : most;
        }
    }
    return most;
}

/* ADMIT: the model exists and the key may use it; then its limits. Then
 * the request goes on to routing. */
static void admit(chat_t *c, int64_t max_tokens)
{
    set_state(c, YR_RS_ADMIT);
    c->model = yr_config_model(c->g->cfg, c->chat.model);
    if (c->model == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "The model '%.*s' does not exist or is not served here",
                 (int)(c->chat.model.len > 200 ? 200 : c->chat.model.len), c->chat.model.ptr);
        fail_request(c, YR_E_MODEL_NOT_FOUND, msg, "model", NULL);
        return;
    }
    const yr_key_info_t *k = c->g->identity.key;
    if (k != NULL && !yr_key_allows_model(&k->policy, yr_str(c->model->id))) {
        char msg[400];
        snprintf(msg, sizeof(msg), "this key may not use model '%s'", c->model->id);
        fail_request(c, YR_E_FORBIDDEN, msg, "model", "model_not_allowed");
        return;
    }
    yr_content_begin(&c->content, c->g, k);
    int64_t input = (int64_t)client_body(c).len / 4;
    yr_admit_req_t ar = {.who = c->g->identity,
                         .model = c->chat.model,
                         .max_tokens = max_tokens,
                         .input_tokens = input,
                         .max_cost_micros = max_cost(c, input, max_tokens),
                         .deadline_ms = c->model->timeout_ms};
    yr_admit_res_t res;
    int rc = yr_limits_admit(c->g->w->limits, &ar, on_admitted, c, &c->adm, &res);
    if (rc == 1) {
        c->admitting = true; /* on_admitted runs later */
        return;
    }
    on_admitted(c, rc, &res);
}

/* OpenAI's duration spelling for x-ratelimit-reset-*: "1s", "6m0s", "20ms". */
static void reset_text(char *buf, size_t len, int64_t ms)
{
    if (ms < 1000)
        snprintf(buf, len, "%lldms", (long long)(ms > 0 ? ms : 0));
    else if (ms < 60000)
        snprintf(buf, len, "%llds", (long long)((ms + 999) / 1000));
    else
        snprintf(buf, len, "%lldm%llds", (long long)(ms / 60000), (long long)(ms % 60000 / 1000));
}

/* A key over one of its limits: 429 in OpenAI's shape, with Retry-After and
 * the x-ratelimit-* headers OpenAI sends. */
static void send_limited(chat_t *c, const yr_admit_res_t *res)
{
    const char *which = res->limit ? res->limit : "rate";
    yr_obs_limit_rejected(c->g->w->obs, res->limit);
    bool budget = strncmp(which, "budget", 6) == 0;
    char msg[200], ra[24], v[6][32];
    if (budget)
        snprintf(msg, sizeof(msg), "this key has spent its %s budget", which + 7);
    else
        snprintf(msg, sizeof(msg), "this key is over its %s limit", which);
    snprintf(ra, sizeof(ra), "%lld",
             (long long)(res->retry_after_ms > 0 ? (res->retry_after_ms + 999) / 1000 : 1));
    yr_http_header_t h[6];
    size_t n = 0;
    const yr_limit_state_t *st[2] = {&res->requests, &res->tokens};
    static const char *const names[2][3] = {
        {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
         "x-ratelimit-reset-requests"},
        {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
    };
    for (int i = 0; i < 2; i++) {
        if (st[i]->limit <= 0)
            continue;
        snprintf(v[n], sizeof(v[n]), "%lld", (long long)st[i]->limit);
        h[n] = (yr_http_header_t){yr_str(names[i][0]), yr_str(v[n])};
        n++;
        snprintf(v[n], sizeof(v[n]), "%lld", (long long)st[i]->remaining);
        h[n] = (yr_http_header_t){yr_str(names[i][1]), yr_str(v[n])};
        n++;
        reset_text(v[n], sizeof(v[n]), st[i]->reset_ms);
        h[n] = (yr_http_header_t){yr_str(names[i][2]), yr_str(v[n])};
        n++;
    }
    finish(c, 429);
    /* OpenAI: a spent quota is insufficient_quota, a rate limit rate_limit_exceeded */
    yr_gw_send_error_h(c->g, YR_E_RATE_LIMITED, msg, NULL,
                       budget ? "insufficient_quota" : "rate_limit_exceeded",
                       res->retry_after_ms > 0 || !budget ? yr_str(ra) : YR_STR_NULL, h, n);
}

static void admitted(chat_t *c, int rc, const yr_admit_res_t *res)
{
    c->admitting = false;
    c->admitted = rc == 0;
    if (rc == -EAGAIN) {
        send_limited(c, res);
        return;
    }
    if (rc < 0) {
        fail_request(c, YR_E_INTERNAL, "could not check the key's limits", NULL, NULL);
        return;
    }
    route_and_go(c);
}

static void on_admitted(void *arg, int rc, const yr_admit_res_t *res)
{
    chat_t *c = arg;
    yr_http_req_t *req = c->g->http;
    yr_http_req_hold(req);
    admitted(c, rc, res);
    yr_http_req_release(req);
}

/* ---- POST /v1/chat/completions ---------------------------------------------- */

/* The request read; fails it with c->work_err when it could not be. */
static void request_read(chat_t *c, bool gone)
{
    if (gone)
        return;
    if (c->work_rc < 0) {
        yr_api_error_t *e = &c->work_err;
        fail_request(c, e->err, e->message, e->param[0] ? e->param : NULL, NULL);
        return;
    }
    admit(c, c->chat.max_tokens);
}

static void chat_read(chat_t *c)
{
    yr_str_t body = client_body(c);
    c->work_rc = yr_chat_parse(body.ptr, body.len, &c->chat, &c->work_err);
}

static void chat_authed(yr_gw_req_t *g)
{
    chat_t *c = g->chat;
    offload_if_large(c, client_body(c).len, chat_read, request_read);
}

void yr_proxy_chat(yr_gw_req_t *g)
{
    if (chat_new(g, YR_DIALECT_OPENAI) != NULL)
        yr_gw_authenticate(g, chat_authed);
}

/* ---- POST /v1/messages --------------------------------------------------------- */

/* What the gateway itself needs of a Messages request (a JSON object, the
 * model, stream); the rest is the provider's to judge on passthrough routes. */
static int peek_messages(chat_t *c, yr_api_error_t *err)
{
    yr_str_t body = client_body(c);
    return yr_anth_peek(body.ptr, body.len, &c->ainfo, err);
}

/* A request the OpenAI form cannot express (why: e) still goes to routes
 * of the client's own dialect untouched. 0, or -ENOMEM with work_err set. */
static int keep_oai_err(chat_t *c, const yr_api_error_t *e)
{
    c->oai_err = yr_palloc(c->g->http->pool, sizeof(*c->oai_err));
    if (c->oai_err == NULL) {
        c->work_err = (yr_api_error_t){.err = YR_E_INTERNAL};
        snprintf(c->work_err.message, sizeof(c->work_err.message), "out of memory");
        return -ENOMEM;
    }
    *c->oai_err = *e;
    return 0;
}

static void messages_read(chat_t *c)
{
    yr_str_t body = client_body(c);
    if ((c->work_rc = peek_messages(c, &c->work_err)) < 0)
        return;
    /* The OpenAI form serves translated routes; a request it cannot express
     * still goes to Anthropic routes untouched (oai_err says why not). */
    yr_anth_req_info_t info;
    yr_api_error_t conv = {0}, err;
    if (yr_anth_request_to_openai(body.ptr, body.len, &c->oai_body, &info, &conv) == 0 &&
        yr_chat_parse(c->oai_body.data, c->oai_body.len, &c->chat, &err) == 0) {
        c->ainfo = info;
        return; /* the OpenAI form of the request carries its max_tokens */
    }
    c->work_rc = keep_oai_err(c, conv.message[0] ? &conv : &err);
    c->chat.model = (yr_str_t){c->ainfo.model, c->ainfo.model_len};
    c->chat.stream = c->ainfo.stream;
    c->chat.max_tokens = -1;
}

static void messages_authed(yr_gw_req_t *g)
{
    chat_t *c = g->chat;
    offload_if_large(c, client_body(c).len, messages_read, request_read);
}

void yr_proxy_messages(yr_gw_req_t *g)
{
    if (chat_new(g, YR_DIALECT_ANTHROPIC) != NULL)
        yr_gw_authenticate(g, messages_authed);
}

/* ---- POST /v1/messages/count_tokens ---------------------------------------------- */

/* count_tokens for a model none of whose routes can count: an estimate. */
static void count_tokens_locally(chat_t *c)
{
    int64_t tokens;
    yr_api_error_t err;
    yr_str_t body = client_body(c);
    if (yr_anth_count_tokens_estimate(body.ptr, body.len, &tokens, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    char out[64];
    int n = snprintf(out, sizeof(out), "{\"input_tokens\":%lld}", (long long)tokens);
    yr_http_header_t h[1] = {{YR_STR("x-yourouter-estimate"), YR_STR("true")}};
    finish(c, 200);
    yr_gw_send_json(c->g, 200, (yr_str_t){out, (size_t)n}, h, 1);
}

/* count_tokens is not a Messages request (no max_tokens): only its model is
 * read here; a route that can count gets the client's bytes. */
static void count_authed(yr_gw_req_t *g)
{
    chat_t *c = g->chat;
    yr_api_error_t err;
    if (peek_messages(c, &err) < 0) {
        count_tokens_locally(c); /* it validates and names what is wrong */
        return;
    }
    c->chat.model = (yr_str_t){c->ainfo.model, c->ainfo.model_len};
    c->chat.stream = false;
    set_state(c, YR_RS_ADMIT);
    c->model = yr_config_model(c->g->cfg, c->chat.model);
    if (c->model == NULL || plan_routes(c) < 0) {
        if (c->state != YR_RS_DONE)
            count_tokens_locally(c);
        return;
    }
    attempt_next(c);
}

void yr_proxy_count_tokens(yr_gw_req_t *g)
{
    chat_t *c = chat_new(g, YR_DIALECT_ANTHROPIC);
    if (c == NULL)
        return;
    c->count_tokens = true;
    yr_gw_authenticate(g, count_authed);
}

/* ---- POST /v1beta/models/{model}:{method} (Gemini clients) ------------------------- */

/* countTokens for a model none of whose routes can count: an estimate. */
static void gemini_count_locally(chat_t *c)
{
    int64_t tokens;
    yr_api_error_t err;
    yr_str_t body = client_body(c);
    if (yr_gem_count_tokens_estimate(body.ptr, body.len, &tokens, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    char out[64];
    int n = snprintf(out, sizeof(out), "{\"totalTokens\":%lld}", (long long)tokens);
    yr_http_header_t h[1] = {{YR_STR("x-yourouter-estimate"), YR_STR("true")}};
    finish(c, 200);
    yr_gw_send_json(c->g, 200, (yr_str_t){out, (size_t)n}, h, 1);
}

/* countTokens: a Gemini route counts (the client's bytes); others estimate. */
static void gemini_count(chat_t *c)
{
    c->count_tokens = true;
    c->chat.model = (yr_str_t){c->ginfo.model, c->ginfo.model_len};
    c->chat.stream = false;
    yr_api_error_t err;
    yr_str_t body = client_body(c);
    if (yr_gem_peek(body.ptr, body.len, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    set_state(c, YR_RS_ADMIT);
    c->model = yr_config_model(c->g->cfg, c->chat.model);
    if (c->model == NULL || plan_routes(c) < 0) {
        if (c->state != YR_RS_DONE)
            gemini_count_locally(c);
        return;
    }
    attempt_next(c);
}

static void gemini_read(chat_t *c)
{
    yr_str_t body = client_body(c);
    if ((c->work_rc = yr_gem_peek(body.ptr, body.len, &c->work_err)) < 0)
        return;
    /* As for Anthropic clients: the OpenAI form serves translated routes; a
     * request it cannot express still goes to Gemini routes untouched. */
    yr_api_error_t conv = {0}, err;
    if (yr_gem_request_to_openai(body.ptr, body.len, &c->ginfo, &c->oai_body, &conv) < 0 ||
        yr_chat_parse(c->oai_body.data, c->oai_body.len, &c->chat, &err) < 0) {
        c->work_rc = keep_oai_err(c, conv.message[0] ? &conv : &err);
        c->chat.max_tokens = -1; /* not converted: unknown */
    }
    /* The URL names the model and whether to stream, for every route;
     * maxOutputTokens, when converted, is the OpenAI form's max_tokens. */
    c->chat.model = (yr_str_t){c->ginfo.model, c->ginfo.model_len};
    c->chat.stream = c->ginfo.stream;
}

static void gemini_authed(yr_gw_req_t *g)
{
    chat_t *c = g->chat;
    yr_http_req_t *req = g->http;
    yr_api_error_t err;
    if (yr_gem_parse_target(req->path, req->query, &c->ginfo, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    if (c->ginfo.method == YR_GEM_COUNT) {
        gemini_count(c);
        return;
    }
    offload_if_large(c, client_body(c).len, gemini_read, request_read);
}

/* ---- POST /v1/responses ---------------------------------------------------- */

/* A stored response, read or written on the store thread. The strings are
 * the op's (malloc'ed; freed by the cleanup). */
typedef struct {
    yr_gw_req_t *g; /* held while the op runs (NULL for a put: nobody waits) */
    char id[64];
    int64_t key_id;
    int64_t created_ms;
    int64_t purge_before_ms; /* a put: also delete responses older than this (0: no) */
    char *items, *response;
    int op; /* 0 get, 1 put, 2 delete */
    int want; /* GET: 0 the response, 1 its input items; POST: continue a request */
} stored_t;

static int stored_run(yr_store_t *s, void *arg)
{
    stored_t *st = arg;
    if (st->op == 1) {
        int rc = yr_store_response_put(s, st->id, st->key_id, st->created_ms, st->items,
                                       st->response);
        if (st->purge_before_ms > 0 && yr_store_response_purge(s, st->purge_before_ms) < 0)
            yr_log_warn("stored responses past responses.retention_days not purged");
        return rc;
    }
    if (st->op == 2)
        return yr_store_response_delete(s, st->id, st->key_id);
    return yr_store_response_get(s, st->id, st->key_id, &st->items, &st->response);
}

static void stored_cleanup(void *arg)
{
    stored_t *st = arg;
    free(st->items);
    free(st->response);
}

static void stored_put_done(void *arg, int status)
{
    stored_t *st = arg;
    if (status != 0)
        yr_log_error("response %s not stored: %s", st->id, strerror(-status));
}

/* store: true: the response and what it answered, for the key that made it. */
static void store_response(chat_t *c)
{
    /* A passthrough's response is the upstream's, under its id: ours to
     * continue from on any route, whatever the upstream keeps. */
    const char *final = c->pass       ? yr_oai_resp_pass_final(&c->cx)
                        : c->renc != NULL ? yr_resp_enc_final(c->renc)
                                          : NULL;
    if (final == NULL || c->rinfo.items == NULL)
        return;
    stored_t st = {.op = 1, .key_id = c->g->identity.key_id};
    if (c->pass) {
        json_t *r = json_loads(final, 0, NULL);
        const char *id = json_string_value(json_object_get(r, "id"));
        bool ok = id != NULL && strlen(id) < sizeof(st.id);
        if (ok)
            snprintf(st.id, sizeof(st.id), "%s", id);
        json_decref(r);
        if (!ok)
            return;
    } else {
        snprintf(st.id, sizeof(st.id), "%s", yr_resp_enc_id(c->renc));
    }
    st.created_ms = yr_wall_ms();
    /* Retention: each worker purges what is older, at most once an hour
     * (with its next put), so no timer and no extra thread are needed. */
    static _Thread_local int64_t last_purge_ms;
    uint32_t days = c->g->cfg->responses.retention_days;
    if (days > 0 && st.created_ms - last_purge_ms >= 3600 * 1000) {
        last_purge_ms = st.created_ms;
        st.purge_before_ms = st.created_ms - (int64_t)days * 86400 * 1000;
    }
    st.items = json_dumps(c->rinfo.items, JSON_COMPACT);
    st.response = strdup(final);
    if (st.items == NULL || st.response == NULL) {
        yr_log_error("%s: response %s not stored (out of memory)", c->g->id, st.id);
        stored_cleanup(&st);
    } else if (yr_store_call_async(c->g->w->store, stored_run, stored_put_done, stored_cleanup,
                                   &st, sizeof(st), NULL) < 0) {
        /* the store ran stored_cleanup */
        yr_log_error("%s: response %s not stored (queue full or out of memory)", c->g->id,
                     st.id);
    }
}

/* The request, converted with the conversation it continues (or none). */
/* The key that seals and opens provider state in encrypted_content. */
static void responses_secret(chat_t *c)
{
    const yr_config_t *cfg = c->g->cfg;
    const char *m = cfg->responses.secret ? cfg->responses.secret : cfg->server.master_key;
    c->rsecret = (yr_resp_secret_t){0};
    if (m == NULL || m[0] == '\0')
        return; /* nothing to key it with: no state is sealed (docs/responses.md) */
    yr_resp_secret_derive(m, c->rkey);
    c->rsecret = (yr_resp_secret_t){c->rkey, sizeof(c->rkey)};
}

/* The request, converted with the conversation it continues (or none). A
 * request the translation cannot express still goes to Responses upstreams
 * (passthrough) as it is; translated routes report why not (oai_err). */
static void responses_read(chat_t *c)
{
    yr_str_t body = client_body(c);
    yr_api_error_t err = {0};
    int rc = yr_resp_request_to_openai(body.ptr, body.len, c->prev_items, c->prev_response,
                                       &c->rsecret, &c->rinfo, &c->oai_body, &err);
    if (rc == 0)
        rc = yr_chat_parse(c->oai_body.data, c->oai_body.len, &c->chat, &err);
    c->work_rc = 0;
    if (rc < 0 && c->rinfo.model[0] == '\0') {
        c->work_rc = rc;
        c->work_err = err;
        return;
    }
    if (rc < 0) {
        c->work_rc = keep_oai_err(c, &err);
        c->chat.model = yr_str(c->rinfo.model);
        c->chat.stream = c->rinfo.stream;
        c->chat.max_tokens = c->rinfo.max_output_tokens;
    }
}

/* prev_items / prev_response: the stored conversation it continues (or
 * NULL), malloc'ed; the request takes them over (freed when it ends). */
static void responses_convert(chat_t *c, char *prev_items, char *prev_response)
{
    yr_pool_t *pool = c->g->http->pool;
    char *prev[2] = {prev_items, prev_response};
    for (size_t i = 0; i < 2; i++)
        if (prev[i] != NULL && yr_pool_cleanup_add(pool, free, prev[i]) < 0) {
            free(prev_items);
            free(prev_response);
            fail_request(c, YR_E_INTERNAL, "out of memory", NULL, NULL);
            return;
        }
    c->prev_items = prev_items;
    c->prev_response = prev_response;
    responses_secret(c);
    size_t len = client_body(c).len + (prev_items ? strlen(prev_items) : 0) +
                 (prev_response ? strlen(prev_response) : 0);
    offload_if_large(c, len, responses_read, request_read);
}

static void on_previous(void *arg, int status)
{
    stored_t *st = arg;
    yr_gw_req_t *g = st->g;
    yr_http_req_t *req = g->http;
    chat_t *c = g->chat;
    if (status == -ENOENT) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Previous response with id '%s' not found.", st->id);
        fail_request(c, YR_E_NOT_FOUND, msg, "previous_response_id", NULL);
    } else if (status != 0) {
        fail_request(c, YR_E_STORE_UNAVAILABLE, "could not read the previous response, retry later",
                     NULL, NULL);
    } else {
        responses_convert(c, st->items, st->response);
        st->items = st->response = NULL; /* the request's now */
    }
    yr_http_req_release(req);
}

static void responses_authed(yr_gw_req_t *g)
{
    chat_t *c = g->chat;
    yr_str_t body = client_body(c);
    yr_api_error_t err = {0};
    stored_t st = {.op = 0, .g = g, .key_id = g->identity.key_id};
    if (yr_resp_previous_id(body.ptr, body.len, st.id, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    if (st.id[0] == '\0') {
        responses_convert(c, NULL, NULL);
        return;
    }
    yr_http_req_hold(g->http);
    if (yr_store_call_async(g->w->store, stored_run, on_previous, stored_cleanup, &st, sizeof(st),
                            NULL) < 0) {
        yr_http_req_release(g->http);
        fail_request(c, YR_E_STORE_UNAVAILABLE, "the store is busy, retry later", NULL, NULL);
    }
}

void yr_proxy_responses(yr_gw_req_t *g)
{
    if (chat_new(g, YR_DIALECT_RESPONSES) != NULL)
        yr_gw_authenticate(g, responses_authed);
}

/* GET /v1/responses/{id}, GET .../input_items, DELETE /v1/responses/{id}:
 * only the key that created the response sees it (another key: 404). */
static void on_stored(void *arg, int status)
{
    stored_t *st = arg;
    yr_gw_req_t *g = st->g;
    yr_http_req_t *req = g->http;
    if (status == -ENOENT) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Response with id '%s' not found.", st->id);
        yr_gw_send_error(g, YR_E_NOT_FOUND, msg, NULL, NULL, YR_STR_NULL);
    } else if (status != 0) {
        yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "the store failed, retry later", NULL, NULL,
                         YR_STR_NULL);
    } else if (st->op == 2) {
        char b[160];
        int n = snprintf(b, sizeof(b), "{\"id\":\"%s\",\"object\":\"response\",\"deleted\":true}",
                         st->id);
        yr_gw_send_json(g, 200, (yr_str_t){b, (size_t)n}, NULL, 0);
    } else if (st->want == 1) {
        json_t *items = json_loads(st->items, 0, NULL);
        json_t *list = json_pack("{s:s, s:O, s:b}", "object", "list", "data",
                                 json_is_array(items) ? items : json_array(), "has_more", 0);
        size_t n = json_array_size(items);
        json_t *first = n ? json_object_get(json_array_get(items, 0), "id") : NULL;
        json_t *last = n ? json_object_get(json_array_get(items, n - 1), "id") : NULL;
        json_object_set(list, "first_id", first ? first : json_null());
        json_object_set(list, "last_id", last ? last : json_null());
        char *s = json_dumps(list, JSON_COMPACT);
        json_decref(list);
        json_decref(items);
        if (s != NULL)
            yr_gw_send_json(g, 200, yr_str(s), NULL, 0);
        else
            yr_gw_send_error(g, YR_E_INTERNAL, "out of memory", NULL, NULL, YR_STR_NULL);
        free(s);
    } else {
        yr_gw_send_json(g, 200, yr_str(st->response), NULL, 0);
    }
    yr_http_req_release(req);
}

static void stored_authed(yr_gw_req_t *g)
{
    yr_http_req_t *req = g->http;
    yr_str_t rest = {req->path.ptr + 14, req->path.len - 14}; /* after /v1/responses/ */
    stored_t st = {.g = g, .key_id = g->identity.key_id};
    if (rest.len > 12 && memcmp(rest.ptr + rest.len - 12, "/input_items", 12) == 0) {
        rest.len -= 12;
        st.want = 1;
    }
    bool del = req->method == HTTP_DELETE;
    if ((del && st.want) || (!del && req->method != HTTP_GET) || rest.len == 0 ||
        rest.len >= sizeof(st.id) || memchr(rest.ptr, '/', rest.len) != NULL) {
        yr_gw_send_error(g, del || req->method == HTTP_GET ? YR_E_NOT_FOUND : YR_E_METHOD_NOT_ALLOWED,
                         "no such response path", NULL, NULL, YR_STR_NULL);
        return;
    }
    memcpy(st.id, rest.ptr, rest.len);
    st.op = del ? 2 : 0;
    yr_http_req_hold(req);
    if (yr_store_call_async(g->w->store, stored_run, on_stored, stored_cleanup, &st, sizeof(st),
                            NULL) < 0) {
        yr_http_req_release(req);
        yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "the store is busy, retry later", NULL, NULL,
                         YR_STR_NULL);
    }
}

void yr_proxy_responses_stored(yr_gw_req_t *g)
{
    yr_gw_authenticate(g, stored_authed);
}

/* ---- POST /v1/embeddings ------------------------------------------------------ */

/* Routed like chat: the model and that the body is one; the route's
 * dialect (providers/embeddings.c) passes it through or translates it. */
static void embeddings_authed(yr_gw_req_t *g)
{
    chat_t *c = g->chat;
    yr_str_t body = client_body(c);
    yr_api_error_t err;
    char *model = yr_palloc(g->http->pool, 256);
    if (model == NULL) {
        fail_request(c, YR_E_INTERNAL, "out of memory", NULL, NULL);
        return;
    }
    if (yr_embed_peek(body.ptr, body.len, model, 256, &err) < 0) {
        fail_request(c, err.err, err.message, err.param[0] ? err.param : NULL, NULL);
        return;
    }
    c->chat.model = yr_str(model);
    c->chat.stream = false;
    c->chat.max_tokens = 0;
    admit(c, 0);
}

void yr_proxy_embeddings(yr_gw_req_t *g)
{
    if (chat_new(g, YR_DIALECT_EMBEDDINGS) != NULL)
        yr_gw_authenticate(g, embeddings_authed);
}

void yr_proxy_gemini(yr_gw_req_t *g)
{
    if (chat_new(g, YR_DIALECT_GEMINI) != NULL)
        yr_gw_authenticate(g, gemini_authed);
}

/* ---- shutdown ---------------------------------------------------------------- */

static void shutdown_one(chat_t *c)
{
    static const char why[] = "the gateway is shutting down and its shutdown deadline passed";
    if (c->work != NULL)
        return; /* a pool thread has the request: it ends when the work comes back, gone */
    if (c->state == YR_RS_STREAMING) {
        if (c->call != NULL) {
            yr_upstream_cancel(c->call);
            c->call = NULL;
        }
        stream_fail(c, YR_E_SHUTTING_DOWN, why, YR_OUT_CANCELLED);
        return;
    }
    if (c->state != YR_RS_ATTEMPT && c->state != YR_RS_BACKOFF && c->state != YR_RS_FETCHING)
        return; /* authenticating or admitting: the connection close ends it */
    cancel_fetches(c);
    stop_backoff(c);
    if (c->cred_wait != NULL) {
        c->kind->transport->cancel_credentials(c->cred_wait);
        c->cred_wait = NULL;
    }
    if (c->call != NULL) {
        yr_upstream_cancel(c->call);
        c->call = NULL;
    }
    attempt_end(c, YR_OUT_CANCELLED);
    fail_request(c, YR_E_SHUTTING_DOWN, why, NULL, "shutting_down");
}

void yr_proxy_shutdown(yr_worker_t *w)
{
    chat_t *c = w->chats;
    while (c != NULL) {
        chat_t *next = c->next; /* c may be gone after its release */
        yr_http_req_t *req = c->g->http;
        yr_http_req_hold(req);
        shutdown_one(c);
        yr_http_req_release(req);
        c = next;
    }
}
