/* OTLP/HTTP trace export, JSON encoding (opentelemetry-proto's
 * ExportTraceServiceRequest as JSON: hex trace and span ids, enums as
 * integers, 64-bit integers as strings).
 *
 * One span per request (kind SERVER, named "{operation} {model}") and one
 * child per upstream attempt (kind CLIENT, "{operation} {upstream model}"),
 * attributed per the GenAI semantic conventions. The client's W3C
 * traceparent gives the trace id and the request span's parent; each
 * attempt's span id goes upstream in the attempt's own traceparent.
 *
 * Off the request path: a finished request encodes its spans into the
 * worker's bounded queue (observability.otlp_queue spans; beyond it they
 * are dropped and counted). A per-worker timer takes up to otlp_batch spans
 * every otlp_interval_ms and posts them with the worker's upstream client,
 * one export in flight at a time, bounded by otlp_timeout_ms. A collector
 * that is slow or gone only makes the queue fill and drop: no request ever
 * waits for it. A failed export is not retried (its spans are counted as
 * failed). Spans still queued when the worker stops are dropped.
 *
 * Ownership: the queue's strings are malloc'ed by trace_record and freed
 * when their batch is built; the batch body is owned by the exporter until
 * its call ends (or is cancelled by yr_obs_trace_close). */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "obs/obs_int.h"

#define SPAN_MAX_BYTES (16 * 1024) /* one encoded span; longer ones are dropped */

struct trace_q {
    char *url;
    char *service;
    uint32_t timeout_ms, interval_ms, batch;
    char **spans; /* ring of encoded span objects */
    size_t cap, head, len;
    uv_timer_t timer;
    bool timer_started;
    yr_upstream_call_t *call; /* the export in flight, or NULL */
    yr_buf_t body;            /* its body */
    size_t in_flight;         /* spans in it */
};

static const char *const export_headers[] = {"Content-Type: application/json", NULL};

bool yr_obs_tracing(const yr_obs_t *o)
{
    return o != NULL && o->tq != NULL;
}

static uint64_t rand64(yr_obs_t *o)
{
    /* xorshift64*: ids need to be unique, not secret */
    uint64_t x = o->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    o->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static char *endpoint_url(const char *ep)
{
    /* The OTLP/HTTP default path when the URL has none. */
    const char *host = strstr(ep, "://");
    bool has_path = host != NULL && strchr(host + 3, '/') != NULL;
    size_t n = strlen(ep) + sizeof("/v1/traces");
    char *url = malloc(n);
    if (url != NULL)
        snprintf(url, n, "%s%s", ep, has_path ? "" : "/v1/traces");
    return url;
}

int yr_obs_trace_init(yr_obs_t *o, const yr_config_t *cfg)
{
    if (RAND_bytes((unsigned char *)&o->rng, sizeof(o->rng)) != 1)
        o->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)o;
    o->rng |= 1;
    const char *ep = cfg->observability.otlp_endpoint;
    if (ep == NULL || ep[0] == '\0')
        return 0;
    struct trace_q *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    o->tq = q;
    q->cap = cfg->observability.otlp_queue;
    q->batch = cfg->observability.otlp_batch;
    q->timeout_ms = cfg->observability.otlp_timeout_ms;
    q->interval_ms = cfg->observability.otlp_interval_ms;
    q->url = endpoint_url(ep);
    q->service =
        strdup(cfg->observability.service_name ? cfg->observability.service_name : "yourouter");
    q->spans = calloc(q->cap, sizeof(*q->spans));
    yr_buf_init(&q->body, (size_t)q->batch * SPAN_MAX_BYTES + 4096);
    return q->url && q->service && q->spans ? 0 : -ENOMEM;
}

/* ---- export ----------------------------------------------------------------- */

static void export_next(yr_obs_t *o);

static int on_export_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    (void)call, (void)p, (void)n, (void)data;
    return YR_UP_CONTINUE; /* the collector's answer says nothing we use */
}

static void on_export_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    yr_obs_t *o = data;
    struct trace_q *q = o->tq;
    int status = yr_upstream_status(call);
    q->call = NULL;
    if (err == YR_UP_OK && status >= 200 && status < 300) {
        obs_add(&o->c.spans_exported, q->in_flight);
    } else {
        obs_add(&o->c.spans_failed, q->in_flight);
        obs_add(&o->c.export_failures, 1);
        yr_log_debug("worker %zu: trace export failed (HTTP %d, %s)", o->worker_id, status,
                     err == YR_UP_OK ? "ok" : yr_upstream_error_text(call));
    }
    q->in_flight = 0;
    yr_buf_reset(&q->body);
    if (q->len >= q->batch)
        export_next(o); /* a full batch waits: no need to wait for the timer */
}

static const yr_upstream_cbs_t export_cbs = {
    .on_data = on_export_data,
    .on_done = on_export_done,
};

/* Takes up to a batch of spans off the queue and posts them. */
static void export_next(yr_obs_t *o)
{
    struct trace_q *q = o->tq;
    if (q->call != NULL || q->len == 0)
        return;
    yr_buf_reset(&q->body);
    int rc = yr_buf_append_str(&q->body, YR_STR("{\"resourceSpans\":[{\"resource\":{"
                                                "\"attributes\":[{\"key\":\"service.name\","
                                                "\"value\":{\"stringValue\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(&q->body, yr_str(q->service));
    if (rc == 0)
        rc = yr_buf_append_str(&q->body, YR_STR("}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
                                                "\"yourouter\"},\"spans\":["));
    size_t n = 0;
    while (rc == 0 && q->len > 0 && n < q->batch) {
        char *s = q->spans[q->head];
        q->spans[q->head] = NULL;
        q->head = (q->head + 1) % q->cap;
        q->len--;
        if (n > 0)
            rc = yr_buf_append(&q->body, ",", 1);
        if (rc == 0)
            rc = yr_buf_append_str(&q->body, yr_str(s));
        free(s);
        n++;
    }
    if (rc == 0)
        rc = yr_buf_append_str(&q->body, YR_STR("]}]}]}"));
    yr_upstream_req_t req = {
        .url = q->url,
        .body = q->body.data,
        .body_len = q->body.len,
        .headers = export_headers,
        .connect_timeout_ms = q->timeout_ms,
        .first_byte_timeout_ms = q->timeout_ms,
        .idle_timeout_ms = q->timeout_ms,
        .timeout_ms = q->timeout_ms,
        .max_body = 64 * 1024,
    };
    obs_add(&o->c.export_calls, 1);
    q->in_flight = n;
    if (rc < 0 || yr_upstream_start(o->up, &req, &export_cbs, o, &q->call) < 0) {
        q->call = NULL;
        obs_add(&o->c.spans_failed, n);
        obs_add(&o->c.export_failures, 1);
        q->in_flight = 0;
        yr_buf_reset(&q->body);
    }
}

static void on_export_timer(uv_timer_t *t)
{
    export_next(t->data);
}

void yr_obs_trace_start(yr_obs_t *o)
{
    struct trace_q *q = o->tq;
    if (q == NULL)
        return;
    uv_timer_init(o->loop, &q->timer);
    q->timer.data = o;
    uv_unref((uv_handle_t *)&q->timer);
    uv_timer_start(&q->timer, on_export_timer, q->interval_ms, q->interval_ms);
    q->timer_started = true;
}

void yr_obs_trace_close(yr_obs_t *o)
{
    struct trace_q *q = o->tq;
    if (q == NULL)
        return;
    if (q->timer_started && !uv_is_closing((uv_handle_t *)&q->timer))
        uv_close((uv_handle_t *)&q->timer, NULL);
    if (q->call != NULL) {
        yr_upstream_cancel(q->call);
        q->call = NULL;
        obs_add(&o->c.spans_failed, q->in_flight);
        q->in_flight = 0;
    }
}

void yr_obs_trace_free(yr_obs_t *o)
{
    struct trace_q *q = o->tq;
    if (q == NULL)
        return;
    for (size_t i = 0; q->spans != NULL && i < q->cap; i++)
        free(q->spans[i]);
    free(q->spans);
    free(q->url);
    free(q->service);
    yr_buf_free(&q->body);
    free(q);
    o->tq = NULL;
}

/* ---- context ------------------------------------------------------------------ */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1; /* W3C: lowercase only */
}

static bool parse_hex(const char *p, size_t n, uint8_t *out)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= out[i] != 0;
    }
    return nonzero; /* all-zero ids are invalid */
}

/* version "-" trace-id(32) "-" parent-id(16) "-" flags(2): a version 00
 * header is exactly that; a later version may append fields after a '-'. */
static bool parse_traceparent(yr_str_t tp, yr_trace_ctx_t *t)
{
    uint8_t parent[8], flags;
    if (tp.len < 55 || tp.ptr[2] != '-' || tp.ptr[35] != '-' || tp.ptr[52] != '-')
        return false;
    int v1 = hexval(tp.ptr[0]), v2 = hexval(tp.ptr[1]);
    if (v1 < 0 || v2 < 0)
        return false;
    int ver = v1 << 4 | v2;
    if (ver == 0xff || (ver == 0 && tp.len != 55) || (ver != 0 && tp.len > 55 && tp.ptr[55] != '-'))
        return false;
    if (!parse_hex(tp.ptr + 3, 16, t->trace_id) || !parse_hex(tp.ptr + 36, 8, parent))
        return false;
    int hi = hexval(tp.ptr[53]), lo = hexval(tp.ptr[54]);
    if (hi < 0 || lo < 0)
        return false;
    flags = (uint8_t)(hi << 4 | lo);
    t->parent_id = 0;
    for (int i = 0; i < 8; i++)
        t->parent_id = t->parent_id << 8 | parent[i];
    t->flags = flags;
    return true;
}

uint64_t yr_obs_span_id(yr_obs_t *o, const yr_trace_ctx_t *t)
{
    if (t->span_id == 0)
        return 0;
    uint64_t id;
    while ((id = rand64(o)) == 0)
        ;
    return id;
}

void yr_obs_trace_begin(yr_obs_t *o, yr_str_t tp, yr_trace_ctx_t *t)
{
    *t = (yr_trace_ctx_t){0};
    bool have = tp.len > 0 && parse_traceparent(tp, t);
    if (!have) {
        *t = (yr_trace_ctx_t){0};
        if (!yr_obs_tracing(o))
            return; /* nothing to record, nothing to pass on */
        uint64_t a = rand64(o), b = rand64(o);
        memcpy(t->trace_id, &a, 8);
        memcpy(t->trace_id + 8, &b, 8);
        t->flags = 1; /* sampled */
    }
    t->span_id = 1; /* so that yr_obs_span_id gives one */
    t->span_id = yr_obs_span_id(o, t);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void hex64(uint64_t v, char out[17])
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    hex(b, 8, out);
}

void yr_obs_traceparent(const yr_trace_ctx_t *t, uint64_t span_id, char *buf, size_t cap)
{
    char tid[33], sid[17];
    hex(t->trace_id, 16, tid);
    hex64(span_id, sid);
    snprintf(buf, cap, "traceparent: 00-%s-%s-%02x", tid, sid, t->flags);
}

/* ---- encoding --------------------------------------------------------------- */

typedef struct {
    yr_buf_t *b;
    int rc;
    bool first;
} enc_t;

static void raw(enc_t *e, const char *s)
{
    if (e->rc == 0)
        e->rc = yr_buf_append_str(e->b, yr_str(s));
}

static void attr_begin(enc_t *e, const char *key)
{
    raw(e, e->first ? "{\"key\":\"" : ",{\"key\":\"");
    e->first = false;
    raw(e, key); /* our own constant names */
    raw(e, "\",\"value\":");
}

static void attr_str(enc_t *e, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    attr_begin(e, key);
    raw(e, "{\"stringValue\":");
    if (e->rc == 0)
        e->rc = yr_buf_append_json_str(e->b, yr_str(v));
    raw(e, "}}");
}

static void attr_int(enc_t *e, const char *key, int64_t v)
{
    attr_begin(e, key);
    if (e->rc == 0)
        e->rc = yr_buf_printf(e->b, "{\"intValue\":\"%lld\"}}", (long long)v);
}

static void attr_str_array(enc_t *e, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    attr_begin(e, key);
    raw(e, "{\"arrayValue\":{\"values\":[{\"stringValue\":");
    if (e->rc == 0)
        e->rc = yr_buf_append_json_str(e->b, yr_str(v));
    raw(e, "}]}}}");
}

/* The host (and port) of a provider's base URL: server.address. */
static void server_of(const char *url, char *host, size_t cap, int64_t *port)
{
    const char *p = strstr(url, "://");
    *port = strncmp(url, "https", 5) == 0 ? 443 : 80;
    host[0] = '\0';
    if (p == NULL)
        return;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n); /* never the userinfo */
    if (at != NULL) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    const char *colon = NULL;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', n);
        colon = close != NULL && (size_t)(close + 1 - p) < n && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', n);
    }
    size_t hl = colon != NULL ? (size_t)(colon - p) : n;
    if (colon != NULL) {
        int64_t v = 0;
        for (const char *d = colon + 1; d < p + n && *d >= '0' && *d <= '9'; d++)
            v = v * 10 + (*d - '0');
        *port = v;
    }
    snprintf(host, cap, "%.*s", (int)(hl < cap ? hl : cap - 1), p);
}

typedef struct {
    const char *name_model;
    uint64_t span_id, parent_id;
    int kind; /* 2 SERVER, 3 CLIENT */
    uint64_t start_ns, end_ns;
    const char *error_type; /* NULL: ok */
} span_head_t;

static void span_open(enc_t *e, yr_obs_t *o, const yr_obs_req_t *r, const span_head_t *h)
{
    char tid[33], sid[17], pid[17];
    hex(r->trace->trace_id, 16, tid);
    hex64(h->span_id, sid);
    raw(e, "{\"traceId\":\"");
    raw(e, tid);
    raw(e, "\",\"spanId\":\"");
    raw(e, sid);
    if (h->parent_id != 0) {
        hex64(h->parent_id, pid);
        raw(e, "\",\"parentSpanId\":\"");
        raw(e, pid);
    }
    raw(e, "\",\"name\":");
    char name[300];
    snprintf(name, sizeof(name), "%s %s", yr_obs_op_name(r->op), h->name_model);
    if (e->rc == 0)
        e->rc = yr_buf_append_json_str(e->b, yr_str(name));
    if (e->rc == 0)
        e->rc = yr_buf_printf(e->b,
                              ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\","
                              "\"endTimeUnixNano\":\"%lld\",\"attributes\":[",
                              h->kind, (long long)((int64_t)h->start_ns + o->unix_offset_ns),
                              (long long)((int64_t)h->end_ns + o->unix_offset_ns));
    e->first = true;
}

static void span_close(enc_t *e, const span_head_t *h)
{
    raw(e, "]");
    if (h->error_type != NULL) {
        raw(e, ",\"status\":{\"code\":2,\"message\":");
        if (e->rc == 0)
            e->rc = yr_buf_append_json_str(e->b, yr_str(h->error_type));
        raw(e, "}");
    }
    raw(e, "}");
}

/* Queues one encoded span (the buffer is taken over), or drops it. */
static void enqueue(yr_obs_t *o, yr_buf_t *b, int rc)
{
    struct trace_q *q = o->tq;
    size_t len;
    char *s = rc == 0 && yr_buf_append(b, "", 1) == 0 ? yr_buf_steal(b, &len) : NULL;
    yr_buf_free(b);
    if (s == NULL || q->len >= q->cap) {
        free(s);
        obs_add(&o->c.spans_dropped, 1);
        return;
    }
    q->spans[(q->head + q->len) % q->cap] = s;
    q->len++;
    obs_add(&o->c.spans_queued, 1);
}

static const char *attempt_error(const yr_attempt_t *a, char *buf, size_t cap)
{
    if (a->outcome == YR_OUT_OK)
        return NULL;
    snprintf(buf, cap, "%s", yr_outcome_name(a->outcome));
    return buf;
}

static void record_attempt(yr_obs_t *o, const yr_obs_req_t *r, size_t i, bool last_ok)
{
    const yr_attempt_t *a = &r->attempts[i];
    if (a->span_id == 0)
        return;
    char err[64], host[256];
    int64_t port;
    span_head_t h = {
        .name_model = a->route->model,
        .span_id = a->span_id,
        .parent_id = r->trace->span_id,
        .kind = 3,
        .start_ns = a->start_ns,
        .end_ns = a->end_ns ? a->end_ns : r->end_ns,
        .error_type = attempt_error(a, err, sizeof(err)),
    };
    yr_buf_t b;
    yr_buf_init(&b, SPAN_MAX_BYTES);
    enc_t e = {.b = &b};
    span_open(&e, o, r, &h);
    attr_str(&e, "gen_ai.operation.name", yr_obs_op_name(r->op));
    attr_str(&e, "gen_ai.provider.name", yr_obs_provider_name(a->route->provider->kind));
    attr_str(&e, "gen_ai.request.model", a->route->model);
    server_of(a->route->provider->base_url ? a->route->provider->base_url : "", host, sizeof(host),
              &port);
    attr_str(&e, "server.address", host);
    if (host[0] != '\0')
        attr_int(&e, "server.port", port);
    attr_str(&e, "yourouter.vendor", a->route->provider->name);
    if (a->status > 0)
        attr_int(&e, "http.response.status_code", a->status);
    attr_str(&e, "error.type", h.error_type);
    if (a->usage.present || a->usage_estimated) {
        attr_int(&e, "gen_ai.usage.input_tokens", a->usage.prompt_tokens);
        attr_int(&e, "gen_ai.usage.output_tokens", a->usage.completion_tokens);
    }
    if (last_ok) {
        attr_str(&e, "gen_ai.response.model", r->response_model);
        attr_str(&e, "gen_ai.response.id", r->response_id);
        attr_str_array(&e, "gen_ai.response.finish_reasons", r->finish_reason);
    }
    span_close(&e, &h);
    enqueue(o, &b, e.rc);
}

void yr_obs_trace_record(yr_obs_t *o, const yr_obs_req_t *r)
{
    if (o->tq == NULL || !(r->trace->flags & 1))
        return; /* not exporting, or the client's trace is not sampled */
    size_t nspans = 1;
    for (size_t i = 0; i < r->nattempts; i++)
        nspans += r->attempts[i].span_id != 0;
    if (o->tq->len + nspans > o->tq->cap) {
        /* A collector that keeps up never gets here: no encoding for spans
         * that would be dropped anyway. */
        obs_add(&o->c.spans_dropped, nspans);
        return;
    }
    const yr_attempt_t *last = r->nattempts > 0 ? &r->attempts[r->nattempts - 1] : NULL;
    bool ok = r->status >= 200 && r->status < 300;
    char err[16];
    const char *et = r->error_type;
    if (!ok && et == NULL) {
        snprintf(err, sizeof(err), "%d", r->status);
        et = err;
    }
    char model[200];
    snprintf(model, sizeof(model), "%.*s",
             (int)(r->client_model.len < 199 ? r->client_model.len : 199),
             r->client_model.ptr ? r->client_model.ptr : "");
    if (model[0] == '\0' && r->model != NULL)
        snprintf(model, sizeof(model), "%s", r->model->id);
    span_head_t h = {
        .name_model = model,
        .span_id = r->trace->span_id,
        .parent_id = r->trace->parent_id,
        .kind = 2,
        .start_ns = r->start_ns,
        .end_ns = r->end_ns,
        .error_type = ok ? NULL : et,
    };
    yr_buf_t b;
    yr_buf_init(&b, SPAN_MAX_BYTES);
    enc_t e = {.b = &b};
    int64_t in = 0, out = 0;
    bool usage = false;
    for (size_t i = 0; i < r->nattempts; i++) {
        const yr_attempt_t *a = &r->attempts[i];
        if (a->usage.present || a->usage_estimated) {
            usage = true;
            in += a->usage.prompt_tokens;
            out += a->usage.completion_tokens;
        }
    }
    span_open(&e, o, r, &h);
    attr_str(&e, "gen_ai.operation.name", yr_obs_op_name(r->op));
    if (last != NULL)
        attr_str(&e, "gen_ai.provider.name", yr_obs_provider_name(last->route->provider->kind));
    attr_str(&e, "gen_ai.request.model", model);
    if (ok) {
        attr_str(&e, "gen_ai.response.model", r->response_model);
        attr_str(&e, "gen_ai.response.id", r->response_id);
        attr_str_array(&e, "gen_ai.response.finish_reasons", r->finish_reason);
    }
    if (usage) {
        attr_int(&e, "gen_ai.usage.input_tokens", in);
        attr_int(&e, "gen_ai.usage.output_tokens", out);
    }
    attr_int(&e, "http.response.status_code", r->status);
    attr_str(&e, "error.type", h.error_type);
    char rid[80];
    snprintf(rid, sizeof(rid), "%.*s", (int)(r->request_id.len < 79 ? r->request_id.len : 79),
             r->request_id.ptr ? r->request_id.ptr : "");
    attr_str(&e, "yourouter.request_id", rid);
    attr_int(&e, "yourouter.attempts", (int64_t)r->nattempts);
    span_close(&e, &h);
    enqueue(o, &b, e.rc);
    for (size_t i = 0; i < r->nattempts; i++)
        record_attempt(o, r, i, ok && i + 1 == r->nattempts);
}
