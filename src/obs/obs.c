/* A worker's observability state: its lifetime, the event-loop lag timer,
 * and the one entry point of a finished request (docs/observability.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/obs_int.h"
#include "server/http.h"

#define LAG_INTERVAL_MS 100
#define LAG_WINDOW_NS (10ull * 1000000000u) /* the max gauge covers 10-20 s */

/* Upper bounds in microseconds. */
const uint64_t yr_obs_lag_bounds_us[YR_OBS_LAG_BUCKETS] = {
    1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};

const char *const yr_obs_limit_names[YR_OBS_NLIMITS] = {
    "rpm", "tpm", "concurrency", "budget_day", "budget_month", "budget_total", "expired", "other",
};

const char *yr_obs_op_name(yr_obs_op_t op)
{
    static const char *const names[YR_OBS_OP__COUNT] = {"chat", "generate_content", "embeddings",
                                                        "count_tokens"};
    return op < YR_OBS_OP__COUNT ? names[op] : "chat";
}

const char *yr_obs_provider_name(yr_provider_kind_t kind)
{
    /* The semconv registry's gen_ai.provider.name values; an OpenAI-compatible
     * server (vLLM, a local model) speaks OpenAI's flavour, so it is openai. */
    static const char *const names[YR_KIND__COUNT] = {
        [YR_KIND_OPENAI] = "openai",       [YR_KIND_ANTHROPIC] = "anthropic",
        [YR_KIND_GEMINI] = "gcp.gemini",   [YR_KIND_AZURE] = "azure.ai.openai",
        [YR_KIND_BEDROCK] = "aws.bedrock", [YR_KIND_VERTEX] = "gcp.vertex_ai",
    };
    return kind < YR_KIND__COUNT && names[kind] != NULL ? names[kind] : "";
}

int yr_obs_init(yr_obs_t **out, size_t worker_id, uv_loop_t *loop, struct yr_upstream *up,
                const struct yr_http_server *http, yr_metrics_labels_t *labels,
                const yr_config_t *cfg, int log_fd)
{
    yr_obs_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    o->worker_id = worker_id;
    o->loop = loop;
    o->up = up;
    o->http = http;
    o->labels = labels;
    o->log_fd = log_fd;
    o->key_names = cfg->observability.metrics_key_names;
    if (o->key_names) {
        o->key_series =
            calloc(yr_metrics_nslots(YR_LABEL_KEY) * KEY__COUNT, sizeof(*o->key_series));
        if (o->key_series == NULL)
            goto fail;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o->unix_offset_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - (int64_t)uv_hrtime();
    if (yr_obs_trace_init(o, cfg) < 0)
        goto fail;
    *out = o;
    return 0;
fail:
    yr_obs_free(o);
    return -ENOMEM;
}

/* How late the timer fired is how long the loop was busy elsewhere: a
 * translation, a large JSON body, a slow syscall. */
static void on_lag(uv_timer_t *t)
{
    yr_obs_t *o = t->data;
    uint64_t now = uv_hrtime();
    uint64_t lag_us = now > o->lag_expected_ns ? (now - o->lag_expected_ns) / 1000 : 0;
    size_t b = 0;
    while (b < YR_OBS_LAG_BUCKETS && lag_us > yr_obs_lag_bounds_us[b])
        b++;
    obs_add(&o->c.lag_buckets[b], 1);
    obs_add(&o->c.lag_sum_us, lag_us);
    obs_add(&o->c.lag_count, 1);
    if (now - o->lag_window_start_ns >= LAG_WINDOW_NS) {
        o->lag_prev_max_us = o->lag_cur_max_us;
        o->lag_cur_max_us = 0;
        o->lag_window_start_ns = now;
    }
    if (lag_us > o->lag_cur_max_us)
        o->lag_cur_max_us = lag_us;
    uint64_t mx = o->lag_cur_max_us > o->lag_prev_max_us ? o->lag_cur_max_us : o->lag_prev_max_us;
    atomic_store_explicit(&o->c.lag_max_us, mx, memory_order_relaxed);
    atomic_store_explicit(&o->c.upstream_active, yr_upstream_active(o->up), memory_order_relaxed);
    if (o->http != NULL)
        atomic_store_explicit(&o->c.connections, yr_http_server_active(o->http),
                              memory_order_relaxed);
    o->lag_expected_ns = now + (uint64_t)LAG_INTERVAL_MS * 1000000u;
    uv_timer_start(t, on_lag, LAG_INTERVAL_MS, 0);
}

void yr_obs_start(yr_obs_t *o)
{
    uv_timer_init(o->loop, &o->lag_timer);
    o->lag_timer.data = o;
    uv_unref((uv_handle_t *)&o->lag_timer); /* never keeps a draining loop alive */
    o->lag_started = true;
    o->lag_window_start_ns = uv_hrtime();
    o->lag_expected_ns = uv_hrtime() + (uint64_t)LAG_INTERVAL_MS * 1000000u;
    uv_timer_start(&o->lag_timer, on_lag, LAG_INTERVAL_MS, 0);
    yr_obs_trace_start(o);
}

void yr_obs_close(yr_obs_t *o)
{
    if (o == NULL)
        return;
    if (o->lag_started && !uv_is_closing((uv_handle_t *)&o->lag_timer))
        uv_close((uv_handle_t *)&o->lag_timer, NULL);
    yr_obs_trace_close(o);
}

void yr_obs_free(yr_obs_t *o)
{
    if (o == NULL)
        return;
    yr_obs_trace_free(o);
    yr_obs_genai_free(o);
    free(o->key_series);
    free(o);
}

yr_obs_counters_t *yr_obs_counters(yr_obs_t *o)
{
    return &o->c;
}

void yr_obs_request_end(yr_obs_t *o, const yr_obs_req_t *r)
{
    if (r->nattempts > 1)
        obs_add(&o->c.retries, r->nattempts - 1);
    yr_obs_genai_record(o, r);
    if (o->log_fd >= 0)
        yr_obs_log_record(o, r);
    if (r->trace != NULL && r->trace->span_id != 0)
        yr_obs_trace_record(o, r);
}

bool yr_obs_logging(const yr_obs_t *o)
{
    return o->log_fd >= 0;
}

void yr_obs_limit_rejected(yr_obs_t *o, const char *limit)
{
    size_t i = 0;
    while (i + 1 < YR_OBS_NLIMITS && (limit == NULL || strcmp(limit, yr_obs_limit_names[i]) != 0))
        i++;
    obs_add(&o->c.limit_rejections[i], 1);
}
