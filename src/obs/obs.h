/* Observability of a worker: the OpenTelemetry GenAI metrics and the
 * gateway's own gauges (obs/genai.c), the event-loop lag timer, the JSON
 * access log (obs/accesslog.c) and OTLP trace export (obs/trace.c).
 *
 * The proxy ends every request in one place (finish); it fills a
 * yr_obs_req_t there and calls yr_obs_request_end, which feeds all three.
 * Nothing here is on the hot path beyond counting into the worker's own
 * shard (one writer, relaxed atomics, as metrics.c) and, when enabled, one
 * write(2) of an access log line and one span encoded into the worker's
 * bounded queue. /metrics sums every worker's shard.
 *
 * Ownership: one yr_obs_t per worker (yr_obs_init on the main thread before
 * the worker starts, yr_obs_close on the worker's loop when it stops, then
 * yr_obs_free after the loop ended). The access log is the process's
 * (yr_access_log_open / _reopen / _close, main thread). See
 * docs/observability.md. */
#ifndef YR_OBS_H
#define YR_OBS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "metrics/metrics.h"
#include "route/route.h"

struct yr_upstream;
struct yr_http_server;

/* gen_ai.operation.name */
typedef enum {
    YR_OBS_OP_CHAT,             /* chat completions, Anthropic messages, Responses */
    YR_OBS_OP_GENERATE_CONTENT, /* Gemini generateContent */
    YR_OBS_OP_EMBEDDINGS,
    YR_OBS_OP_COUNT_TOKENS, /* not a generation: no GenAI metrics, still logged and traced */
    YR_OBS_OP__COUNT
} yr_obs_op_t;

const char *yr_obs_op_name(yr_obs_op_t op);
/* gen_ai.provider.name of a provider kind (the semconv registry's values:
 * openai, anthropic, gcp.gemini, azure.ai.openai, aws.bedrock,
 * gcp.vertex_ai). */
const char *yr_obs_provider_name(yr_provider_kind_t kind);

/* A request's W3C trace context: the client's traceparent (or a fresh
 * trace), the request's own span id. Lives in the request (chat_t). */
typedef struct {
    uint8_t trace_id[16];
    uint64_t parent_id; /* the client's span; 0: none (a root span) */
    uint64_t span_id;   /* the request's span; 0: not traced */
    uint8_t flags;      /* trace-flags, passed on */
} yr_trace_ctx_t;

/* What a finished request was, for the metrics, the log and its spans.
 * Everything is borrowed for the duration of the call. */
typedef struct {
    yr_obs_op_t op;
    const yr_config_t *cfg;
    const yr_model_conf_t *model; /* NULL: failed before a model was known */
    yr_str_t client_model;        /* what the client asked for (log and span only) */
    const yr_attempt_t *attempts;
    size_t nattempts;
    int status;
    bool stream;
    uint64_t start_ns, end_ns; /* uv_hrtime */
    yr_str_t request_id;
    const char *key_name; /* NULL: the master key or no key */
    int64_t key_id;
    int64_t cost_micros; /* all attempts; -1: some had no known price */
    const yr_trace_ctx_t *trace;
    /* What the answer said (successful attempt; empty when unknown). */
    const char *response_id, *response_model, *finish_reason;
    const char *error_type; /* NULL on success */
    int64_t overhead_ms;    /* x-yourouter-overhead-ms; -1: none */
} yr_obs_req_t;

#define YR_OBS_LAG_BUCKETS 12
#define YR_OBS_NLIMITS 8

typedef struct yr_obs yr_obs_t;

/* Per-worker counters read by /metrics (single writer: the worker). */
typedef struct {
    _Atomic uint64_t retries; /* attempts after a request's first */
    _Atomic uint64_t limit_rejections[YR_OBS_NLIMITS];
    _Atomic uint64_t lag_buckets[YR_OBS_LAG_BUCKETS + 1];
    _Atomic uint64_t lag_sum_us, lag_count;
    _Atomic uint64_t lag_max_us;  /* the worst of the last two 10 s windows */
    _Atomic uint64_t connections; /* sampled by the lag timer */
    _Atomic uint64_t upstream_active;
    _Atomic uint64_t spans_queued, spans_exported, spans_dropped, spans_failed;
    _Atomic uint64_t export_calls, export_failures;
    _Atomic uint64_t log_lines, log_failures;
    _Atomic uint64_t series_dropped; /* GenAI series past the shard's table */
} yr_obs_counters_t;

/* Builds a worker's observability state on the main thread (the timers are
 * started by yr_obs_start on the worker's thread). 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_obs_init(yr_obs_t **out, size_t worker_id,
                                                    uv_loop_t *loop, struct yr_upstream *up,
                                                    const struct yr_http_server *http,
                                                    yr_metrics_labels_t *labels,
                                                    const yr_config_t *cfg, int log_fd);
/* On the worker's thread: starts the lag timer and the trace exporter. */
void yr_obs_start(yr_obs_t *o);
/* On the worker's thread: stops the timers, cancels an export in flight;
 * the handles close with the loop. Before the upstream client is closed. */
void yr_obs_close(yr_obs_t *o);
void yr_obs_free(yr_obs_t *o);
/* After the worker's loop is gone: counters for /metrics stay readable
 * until yr_obs_free. */
yr_obs_counters_t *yr_obs_counters(yr_obs_t *o);

/* The request ended (called exactly once per proxied request). */
void yr_obs_request_end(yr_obs_t *o, const yr_obs_req_t *r);
/* Whether an access log is written (observability.access_log is not off). */
bool yr_obs_logging(const yr_obs_t *o);
/* A request the proxy did not handle (401 at the head, /v1/models, admin,
 * /health, /metrics, 404s) ended: one access log line with its method,
 * path (never the query) and status. key_name may be NULL. */
void yr_obs_http_end(yr_obs_t *o, yr_str_t request_id, yr_str_t method, yr_str_t path, int status,
                     uint64_t start_ns, uint64_t end_ns, const char *key_name);
/* A key was refused by one of its limits ("rpm", "tpm", "concurrency",
 * "budget_day", ...). */
void yr_obs_limit_rejected(yr_obs_t *o, const char *limit);

/* ---- tracing (obs/trace.c) ------------------------------------------------ */

/* Whether spans are exported (observability.otlp_endpoint is set). */
bool yr_obs_tracing(const yr_obs_t *o);
/* Starts a request's context: the client's traceparent when it is valid
 * (its trace id and parent), else a fresh trace. span_id stays 0 when
 * tracing is off and the client sent no traceparent (nothing to pass on). */
void yr_obs_trace_begin(yr_obs_t *o, yr_str_t traceparent, yr_trace_ctx_t *t);
/* A fresh span id for an attempt of a traced request (0 when untraced). */
uint64_t yr_obs_span_id(yr_obs_t *o, const yr_trace_ctx_t *t);
/* "traceparent: 00-{trace}-{span}-{flags}" into buf (at least 72 bytes). */
void yr_obs_traceparent(const yr_trace_ctx_t *t, uint64_t span_id, char *buf, size_t cap);

/* ---- /metrics (obs/genai.c) ----------------------------------------------- */

/* Appends the GenAI histograms, the per-key series (when enabled) and every
 * worker's counters and gauges, summed over the n workers, the health of
 * cfg's routes and the process's RSS. 0, -E2BIG or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_obs_render(yr_obs_t *const *all, size_t n,
                                                      const yr_config_t *cfg, yr_buf_t *out);

/* ---- the access log (obs/accesslog.c) -------------------------------------- */

/* Opens observability.access_log: -1 for "off", 1 for stdout, else a file
 * opened for appending (the caller owns the fd: yr_access_log_close). A
 * negative errno when the file cannot be opened. Main thread. */
int yr_access_log_open(const char *spec);
/* SIGUSR1: opens the path again and puts it under the same fd (dup2), so
 * workers writing meanwhile never see a closed fd. 0 or a negative errno. */
int yr_access_log_reopen(const char *spec, int fd);
void yr_access_log_close(int fd);

#endif
