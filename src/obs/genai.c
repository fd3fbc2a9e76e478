/* The OpenTelemetry GenAI semantic-convention metrics as Prometheus
 * histograms, and the gateway's own counters and gauges (/metrics).
 *
 * Names follow the conventions with dots spelled as underscores
 * (gen_ai.client.token.usage -> gen_ai_client_token_usage); buckets are the
 * ExplicitBucketBoundaries the conventions recommend. Labels come from the
 * registry of metrics.c (model ids, "vendor/upstream_model" routes and, when
 * the operator opts in, key names: bounded, never a client's string) and
 * from fixed tables (operation, provider, status class). See
 * docs/observability.md for the label sets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/obs_int.h"
#include "route/health.h"

/* ---- buckets ----------------------------------------------------------------- */

typedef struct {
    const char *name, *help;
    size_t nb;
    uint64_t bounds[GENAI_MAX_BUCKETS];
    double scale; /* sum and bounds are divided by it when rendered */
} hist_def_t;

static const hist_def_t hist_defs[H__COUNT] = {
    [H_TOK_IN] = {"gen_ai_client_token_usage",
                  "Number of input and output tokens used.",
                  14,
                  {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
                   67108864},
                  1},
    [H_DUR] = {"gen_ai_server_request_duration",
               "Generative AI server request duration such as time-to-last byte or last output "
               "token, in seconds.",
               14,
               {10000, 20000, 40000, 80000, 160000, 320000, 640000, 1280000, 2560000, 5120000,
                10240000, 20480000, 40960000, 81920000},
               1e6},
    [H_TTFT] = {"gen_ai_server_time_to_first_token",
                "Time to generate first token for successful responses, in seconds.",
                16,
                {1000, 5000, 10000, 20000, 40000, 60000, 80000, 100000, 250000, 500000, 750000,
                 1000000, 2500000, 5000000, 7500000, 10000000},
                1e6},
    [H_TPOT] = {"gen_ai_server_time_per_output_token",
                "Time per output token generated after the first token for successful "
                "responses, in seconds.",
                13,
                {10000, 25000, 50000, 75000, 100000, 150000, 200000, 300000, 400000, 500000, 750000,
                 1000000, 2500000},
                1e6},
};

static const hist_def_t *def_of(int h)
{
    return &hist_defs[h == H_TOK_OUT ? H_TOK_IN : h];
}

/* ---- series keys --------------------------------------------------------------- */

#define KEY_TAG (1ull << 63)
#define NONE_KIND YR_KIND__COUNT

static uint64_t series_key(yr_obs_op_t op, unsigned kind, unsigned sc, uint32_t model,
                           uint32_t route)
{
    return KEY_TAG | (uint64_t)op << 56 | (uint64_t)kind << 48 | (uint64_t)sc << 40 |
           (uint64_t)model << 20 | route;
}

static unsigned key_op(uint64_t k)
{
    return (unsigned)(k >> 56 & 0x7f);
}
static unsigned key_kind(uint64_t k)
{
    return (unsigned)(k >> 48 & 0xff);
}
static unsigned key_sc(uint64_t k)
{
    return (unsigned)(k >> 40 & 0xff);
}
static uint32_t key_model(uint64_t k)
{
    return (uint32_t)(k >> 20 & 0xfffff);
}
static uint32_t key_route(uint64_t k)
{
    return (uint32_t)(k & 0xfffff);
}

static size_t key_hash(uint64_t k)
{
    k ^= k >> 33; /* splitmix64's finaliser */
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

/* The worker's series for key, allocated at first sight; NULL past the
 * table's fill limit (counted) or out of memory. Worker thread only. */
static genai_series_t *series_get(yr_obs_t *o, uint64_t key)
{
    size_t i = key_hash(key) & (GENAI_SERIES - 1);
    for (size_t n = 0; n < GENAI_SERIES; n++, i = (i + 1) & (GENAI_SERIES - 1)) {
        genai_series_t *s = atomic_load_explicit(&o->series[i], memory_order_relaxed);
        if (s != NULL && s->key == key)
            return s;
        if (s != NULL)
            continue;
        /* At most 3/4 full, so every probe ends at an empty entry. */
        if (n > GENAI_SERIES / 4 * 3 || (s = calloc(1, sizeof(*s))) == NULL)
            break;
        s->key = key;
        atomic_store_explicit(&o->series[i], s, memory_order_release);
        return s;
    }
    obs_add(&o->c.series_dropped, 1);
    return NULL;
}

/* A reader's lookup (any thread). */
static const genai_series_t *series_find(yr_obs_t *o, uint64_t key)
{
    size_t i = key_hash(key) & (GENAI_SERIES - 1);
    for (size_t n = 0; n < GENAI_SERIES; n++, i = (i + 1) & (GENAI_SERIES - 1)) {
        const genai_series_t *s = atomic_load_explicit(&o->series[i], memory_order_acquire);
        if (s == NULL)
            return NULL;
        if (s->key == key)
            return s;
    }
    return NULL;
}

void yr_obs_genai_free(yr_obs_t *o)
{
    for (size_t i = 0; i < GENAI_SERIES; i++)
        free(atomic_load(&o->series[i]));
}

/* ---- recording ------------------------------------------------------------------ */

static void observe(genai_series_t *s, int h, uint64_t v)
{
    const hist_def_t *d = def_of(h);
    size_t b = 0;
    while (b < d->nb && v > d->bounds[b])
        b++;
    obs_add(&s->h[h].b[b], 1);
    obs_add(&s->h[h].sum, v);
    obs_add(&s->h[h].count, 1);
}

static uint32_t route_slot(yr_obs_t *o, const yr_attempt_t *a)
{
    char buf[512];
    if (a == NULL)
        return 0;
    const char *name = yr_metrics_route_name(a->route, buf, sizeof(buf));
    return yr_metrics_slot(o->labels, YR_LABEL_ROUTE, name != NULL ? name : YR_METRICS_OTHER);
}

static unsigned status_class(int status)
{
    return status >= 100 && status < 600 ? (unsigned)(status / 100) : 0;
}

static void record_key(yr_obs_t *o, const yr_obs_req_t *r, uint64_t in, uint64_t outt)
{
    if (o->key_series == NULL || r->key_name == NULL)
        return;
    size_t k = yr_metrics_slot(o->labels, YR_LABEL_KEY, r->key_name);
    _Atomic uint64_t *row = &o->key_series[k * KEY__COUNT];
    unsigned sc = status_class(r->status);
    if (sc >= 2 && sc <= 5)
        obs_add(&row[sc == 2 ? KEY_REQ_2XX : sc == 5 ? KEY_REQ_5XX : KEY_REQ_4XX], 1);
    obs_add(&row[KEY_TOK_IN], in);
    obs_add(&row[KEY_TOK_OUT], outt);
}

void yr_obs_genai_record(yr_obs_t *o, const yr_obs_req_t *r)
{
    uint64_t tin = 0, tout = 0;
    uint32_t model = yr_metrics_slot(o->labels, YR_LABEL_MODEL, r->model ? r->model->id : NULL);
    unsigned sc = status_class(r->status);
    bool genai = r->op != YR_OBS_OP_COUNT_TOKENS;
    /* Tokens by the attempt that used them (its route and provider). */
    for (size_t i = 0; i < r->nattempts; i++) {
        const yr_attempt_t *a = &r->attempts[i];
        if (!a->usage.present && !a->usage_estimated)
            continue;
        uint64_t in = a->usage.prompt_tokens > 0 ? (uint64_t)a->usage.prompt_tokens : 0;
        uint64_t out = a->usage.completion_tokens > 0 ? (uint64_t)a->usage.completion_tokens : 0;
        tin += in;
        tout += out;
        genai_series_t *s = genai ? series_get(o, series_key(r->op, a->route->provider->kind, sc,
                                                             model, route_slot(o, a)))
                                  : NULL;
        if (s != NULL) {
            observe(s, H_TOK_IN, in);
            observe(s, H_TOK_OUT, out);
        }
    }
    record_key(o, r, tin, tout);
    if (!genai)
        return;
    const yr_attempt_t *last = r->nattempts > 0 ? &r->attempts[r->nattempts - 1] : NULL;
    genai_series_t *s =
        series_get(o, series_key(r->op, last ? last->route->provider->kind : NONE_KIND, sc, model,
                                 route_slot(o, last)));
    if (s == NULL)
        return;
    observe(s, H_DUR, r->end_ns > r->start_ns ? (r->end_ns - r->start_ns) / 1000 : 0);
    if (r->status != 200 || !r->stream || last == NULL || last->first_event_ns == 0 ||
        last->first_event_ns < r->start_ns)
        return;
    observe(s, H_TTFT, (last->first_event_ns - r->start_ns) / 1000);
    int64_t ct = last->usage.completion_tokens;
    if (ct > 1 && r->end_ns > last->first_event_ns)
        observe(s, H_TPOT, (r->end_ns - last->first_event_ns) / 1000 / (uint64_t)(ct - 1));
}

/* ---- rendering ------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every series key any worker has, sorted and unique; *n is their count.
 * NULL when there are none or memory ran out. Owned by the caller. */
static uint64_t *collect_keys(yr_obs_t *const *all, size_t nw, size_t *n)
{
    *n = 0;
    uint64_t *keys = malloc(nw * GENAI_SERIES * sizeof(*keys));
    if (keys == NULL)
        return NULL;
    for (size_t w = 0; w < nw; w++)
        for (size_t i = 0; i < GENAI_SERIES; i++) {
            const genai_series_t *s =
                atomic_load_explicit(&all[w]->series[i], memory_order_acquire);
            if (s != NULL)
                keys[(*n)++] = s->key;
        }
    qsort(keys, *n, sizeof(*keys), cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < *n; i++)
        if (u == 0 || keys[u - 1] != keys[i])
            keys[u++] = keys[i];
    *n = u;
    return keys;
}

static int render_labels(yr_buf_t *out, const yr_metrics_labels_t *l, uint64_t k,
                         const char *token_type)
{
    static const char *const classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    unsigned sc = key_sc(k);
    int rc = yr_buf_printf(out, "{gen_ai_operation_name=\"%s\",gen_ai_provider_name=\"%s\"",
                           yr_obs_op_name((yr_obs_op_t)key_op(k)),
                           yr_obs_provider_name((yr_provider_kind_t)key_kind(k)));
    if (rc == 0 && token_type != NULL)
        rc = yr_buf_printf(out, ",gen_ai_token_type=\"%s\"", token_type);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR(",gen_ai_request_model=\""));
    if (rc == 0)
        rc = yr_metrics_append_label(out, yr_metrics_slot_label(l, YR_LABEL_MODEL, key_model(k)));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\",route=\""));
    if (rc == 0)
        rc = yr_metrics_append_label(out, yr_metrics_slot_label(l, YR_LABEL_ROUTE, key_route(k)));
    if (rc == 0)
        rc = yr_buf_printf(out, "\",status_class=\"%s\"", sc < 6 ? classes[sc] : "");
    return rc;
}

/* One histogram series: the sum over workers of hist h of series k. */
static int render_hist(yr_obs_t *const *all, size_t nw, uint64_t k, int h, const char *tt,
                       yr_buf_t *out)
{
    const hist_def_t *d = def_of(h);
    uint64_t b[GENAI_MAX_BUCKETS + 1] = {0}, sum = 0, count = 0;
    for (size_t w = 0; w < nw; w++) {
        const genai_series_t *s = series_find(all[w], k);
        if (s == NULL)
            continue;
        for (size_t i = 0; i <= d->nb; i++)
            b[i] += atomic_load_explicit(&s->h[h].b[i], memory_order_relaxed);
        sum += atomic_load_explicit(&s->h[h].sum, memory_order_relaxed);
        count += atomic_load_explicit(&s->h[h].count, memory_order_relaxed);
    }
    if (count == 0)
        return 0;
    const yr_metrics_labels_t *l = all[0]->labels;
    int rc = 0;
    uint64_t cum = 0;
    /* Buckets are summed from the counts read above, so they never pass
     * _count even while workers keep counting. */
    for (size_t i = 0; rc == 0 && i <= d->nb; i++) {
        cum += b[i];
        rc = yr_buf_printf(out, "%s_bucket", d->name);
        if (rc == 0)
            rc = render_labels(out, l, k, tt);
        if (rc == 0 && i < d->nb && d->scale == 1) /* exact: token counts */
            rc = yr_buf_printf(out, ",le=\"%llu\"} %llu\n", (unsigned long long)d->bounds[i],
                               (unsigned long long)cum);
        else if (rc == 0 && i < d->nb)
            rc = yr_buf_printf(out, ",le=\"%g\"} %llu\n", (double)d->bounds[i] / d->scale,
                               (unsigned long long)cum);
        else if (rc == 0)
            rc = yr_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    const char *suffix[2] = {"_sum", "_count"};
    for (int j = 0; rc == 0 && j < 2; j++) {
        rc = yr_buf_printf(out, "%s%s", d->name, suffix[j]);
        if (rc == 0)
            rc = render_labels(out, l, k, tt);
        if (rc == 0 && j == 0)
            rc = d->scale == 1 ? yr_buf_printf(out, "} %llu\n", (unsigned long long)sum)
                               : yr_buf_printf(out, "} %.6f\n", (double)sum / d->scale);
        else if (rc == 0)
            rc = yr_buf_printf(out, "} %llu\n", (unsigned long long)cum);
    }
    return rc;
}

static int render_genai(yr_obs_t *const *all, size_t nw, yr_buf_t *out)
{
    size_t nk;
    uint64_t *keys = collect_keys(all, nw, &nk);
    if (keys == NULL)
        return -ENOMEM;
    static const int families[] = {H_TOK_IN, H_DUR, H_TTFT, H_TPOT};
    int rc = 0;
    for (size_t f = 0; rc == 0 && f < 4; f++) {
        const hist_def_t *d = &hist_defs[families[f]];
        rc = yr_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", d->name, d->help, d->name);
        for (size_t i = 0; rc == 0 && i < nk; i++) {
            if (families[f] == H_TOK_IN) {
                rc = render_hist(all, nw, keys[i], H_TOK_IN, "input", out);
                if (rc == 0)
                    rc = render_hist(all, nw, keys[i], H_TOK_OUT, "output", out);
            } else {
                rc = render_hist(all, nw, keys[i], families[f], NULL, out);
            }
        }
    }
    free(keys);
    return rc;
}

static uint64_t sum_of(yr_obs_t *const *all, size_t nw, size_t off)
{
    uint64_t s = 0;
    for (size_t w = 0; w < nw; w++)
        s += atomic_load_explicit((const _Atomic uint64_t *)((const char *)&all[w]->c + off),
                                  memory_order_relaxed);
    return s;
}

#define SUM(field) sum_of(all, nw, offsetof(yr_obs_counters_t, field))

static int render_keys(yr_obs_t *const *all, size_t nw, yr_buf_t *out)
{
    if (all[0]->key_series == NULL)
        return 0;
    const yr_metrics_labels_t *l = all[0]->labels;
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_key_requests_total Requests by key name and status class "
                    "(observability.metrics_key_names).\n"
                    "# TYPE yourouter_key_requests_total counter\n"));
    static const char *const what[KEY__COUNT] = {"2xx", "4xx", "5xx", "input", "output"};
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        if (pass == 1)
            rc = yr_buf_append_str(
                out, YR_STR("# HELP yourouter_key_tokens_total Tokens by key name and type.\n"
                            "# TYPE yourouter_key_tokens_total counter\n"));
        size_t nv = yr_metrics_visit_count(l, YR_LABEL_KEY);
        for (size_t i = 0; rc == 0 && i < nv; i++) {
            size_t k = yr_metrics_visit_slot(l, YR_LABEL_KEY, nv, i);
            for (int c = pass ? KEY_TOK_IN : 0; rc == 0 && c < (pass ? KEY__COUNT : KEY_TOK_IN);
                 c++) {
                uint64_t v = 0;
                for (size_t w = 0; w < nw; w++)
                    v += atomic_load_explicit(&all[w]->key_series[k * KEY__COUNT + (size_t)c],
                                              memory_order_relaxed);
                if (v == 0)
                    continue;
                rc = yr_buf_append_str(out, pass ? YR_STR("yourouter_key_tokens_total{key=\"")
                                                 : YR_STR("yourouter_key_requests_total{key=\""));
                if (rc == 0)
                    rc = yr_metrics_append_label(out, yr_metrics_slot_label(l, YR_LABEL_KEY, k));
                if (rc == 0)
                    rc = yr_buf_printf(out, "\",%s=\"%s\"} %llu\n",
                                       pass ? "gen_ai_token_type" : "status_class", what[c],
                                       (unsigned long long)v);
            }
        }
    }
    return rc;
}

static int render_lag(yr_obs_t *const *all, size_t nw, yr_buf_t *out)
{
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_event_loop_lag_seconds How late each worker's 100 ms "
                    "timer fired: time its loop was busy.\n"
                    "# TYPE yourouter_event_loop_lag_seconds histogram\n"));
    for (size_t w = 0; rc == 0 && w < nw; w++) {
        const yr_obs_counters_t *c = &all[w]->c;
        uint64_t cum = 0;
        for (size_t b = 0; rc == 0 && b <= YR_OBS_LAG_BUCKETS; b++) {
            cum += atomic_load_explicit(&c->lag_buckets[b], memory_order_relaxed);
            if (b < YR_OBS_LAG_BUCKETS)
                rc = yr_buf_printf(out,
                                   "yourouter_event_loop_lag_seconds_bucket{worker=\"%zu\","
                                   "le=\"%g\"} %llu\n",
                                   all[w]->worker_id, (double)yr_obs_lag_bounds_us[b] / 1e6,
                                   (unsigned long long)cum);
            else
                rc = yr_buf_printf(out,
                                   "yourouter_event_loop_lag_seconds_bucket{worker=\"%zu\","
                                   "le=\"+Inf\"} %llu\n",
                                   all[w]->worker_id, (unsigned long long)cum);
        }
        if (rc == 0)
            rc = yr_buf_printf(out,
                               "yourouter_event_loop_lag_seconds_sum{worker=\"%zu\"} %.6f\n"
                               "yourouter_event_loop_lag_seconds_count{worker=\"%zu\"} %llu\n",
                               all[w]->worker_id,
                               (double)atomic_load_explicit(&c->lag_sum_us, memory_order_relaxed) /
                                   1e6,
                               all[w]->worker_id, (unsigned long long)cum);
    }
    static const struct {
        const char *name, *help;
        size_t off;
        double scale;
    } gauges[] = {
        {"yourouter_event_loop_lag_max_seconds",
         "The worst lag of each worker in the last 10-20 s.",
         offsetof(yr_obs_counters_t, lag_max_us), 1e6},
        {"yourouter_connections", "Open client connections of each worker.",
         offsetof(yr_obs_counters_t, connections), 1},
        {"yourouter_upstream_active_transfers", "Upstream transfers in flight on each worker.",
         offsetof(yr_obs_counters_t, upstream_active), 1},
    };
    for (size_t g = 0; rc == 0 && g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        rc = yr_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                           gauges[g].name);
        for (size_t w = 0; rc == 0 && w < nw; w++) {
            uint64_t v = atomic_load_explicit(
                (const _Atomic uint64_t *)((const char *)&all[w]->c + gauges[g].off),
                memory_order_relaxed);
            rc = yr_buf_printf(out, "%s{worker=\"%zu\"} %g\n", gauges[g].name, all[w]->worker_id,
                               (double)v / gauges[g].scale);
        }
    }
    return rc;
}

static int render_counters(yr_obs_t *const *all, size_t nw, yr_buf_t *out)
{
    int rc = yr_buf_printf(
        out,
        "# HELP yourouter_retries_total Upstream attempts after a request's first (retries and "
        "failovers).\n# TYPE yourouter_retries_total counter\nyourouter_retries_total %llu\n"
        "# HELP yourouter_limit_rejections_total Requests refused by a key's limit.\n"
        "# TYPE yourouter_limit_rejections_total counter\n",
        (unsigned long long)SUM(retries));
    for (size_t i = 0; rc == 0 && i < YR_OBS_NLIMITS; i++)
        rc = yr_buf_printf(out, "yourouter_limit_rejections_total{limit=\"%s\"} %llu\n",
                           yr_obs_limit_names[i], (unsigned long long)SUM(limit_rejections[i]));
    if (rc == 0)
        rc = yr_buf_printf(
            out,
            "# HELP yourouter_trace_spans_total Spans, by what became of them.\n"
            "# TYPE yourouter_trace_spans_total counter\n"
            "yourouter_trace_spans_total{result=\"queued\"} %llu\n"
            "yourouter_trace_spans_total{result=\"exported\"} %llu\n"
            "yourouter_trace_spans_total{result=\"dropped\"} %llu\n"
            "yourouter_trace_spans_total{result=\"failed\"} %llu\n"
            "# HELP yourouter_trace_exports_total OTLP export calls, by result.\n"
            "# TYPE yourouter_trace_exports_total counter\n"
            "yourouter_trace_exports_total{result=\"ok\"} %llu\n"
            "yourouter_trace_exports_total{result=\"failed\"} %llu\n"
            "# HELP yourouter_access_log_lines_total Access log lines, by result.\n"
            "# TYPE yourouter_access_log_lines_total counter\n"
            "yourouter_access_log_lines_total{result=\"written\"} %llu\n"
            "yourouter_access_log_lines_total{result=\"failed\"} %llu\n"
            "# HELP yourouter_genai_series_dropped_total GenAI metric observations without a "
            "series (a worker's table is full).\n"
            "# TYPE yourouter_genai_series_dropped_total counter\n"
            "yourouter_genai_series_dropped_total %llu\n",
            (unsigned long long)SUM(spans_queued), (unsigned long long)SUM(spans_exported),
            (unsigned long long)SUM(spans_dropped), (unsigned long long)SUM(spans_failed),
            (unsigned long long)(SUM(export_calls) - SUM(export_failures)),
            (unsigned long long)SUM(export_failures), (unsigned long long)SUM(log_lines),
            (unsigned long long)SUM(log_failures), (unsigned long long)SUM(series_dropped));
    return rc;
}

/* Resident memory from /proc/self/statm (its second field, in pages). */
static int render_memory(yr_buf_t *out)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    char line[128];
    unsigned long long size = 0, rss = 0;
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    if (ok) {
        char *end;
        size = strtoull(line, &end, 10);
        rss = strtoull(end, NULL, 10);
    }
    long page = sysconf(_SC_PAGESIZE);
    if (!ok || page <= 0)
        return 0;
    (void)size;
    return yr_buf_printf(out,
                         "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                         "# TYPE process_resident_memory_bytes gauge\n"
                         "process_resident_memory_bytes %llu\n",
                         rss * (unsigned long long)page);
}

/* Route health, by "vendor/upstream_model" of the running config (a route
 * listed under several models, or with two keys, is shown once: the first). */
static int render_routes(yr_metrics_labels_t *l, const yr_config_t *cfg, yr_buf_t *out)
{
    if (cfg == NULL)
        return 0;
    size_t nslots = yr_metrics_nslots(YR_LABEL_ROUTE);
    uint8_t *seen = calloc(nslots, 1);
    if (seen == NULL)
        return -ENOMEM;
    int64_t now = yr_health_now_ms();
    static const char *const fam[4][3] = {
        {"yourouter_route_circuit_state", "gauge",
         "Circuit of each route: 0 closed, 1 open, 2 half open, 3 cooling down after a retry "
         "hint."},
        {"yourouter_route_circuit_openings_total", "counter",
         "Times each route's circuit opened (ejections)."},
        {"yourouter_route_inflight", "gauge", "Attempts in flight on each route, all workers."},
        {"yourouter_route_consecutive_failures", "gauge",
         "Failures of each route since its last success."},
    };
    int rc = 0;
    for (int f = 0; rc == 0 && f < 4; f++) {
        memset(seen, 0, nslots);
        rc = yr_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam[f][0], fam[f][2], fam[f][0],
                           fam[f][1]);
        for (size_t m = 0; rc == 0 && m < cfg->nmodels; m++)
            for (size_t j = 0; rc == 0 && j < cfg->models[m].nroutes; j++) {
                const yr_route_conf_t *r = &cfg->models[m].routes[j];
                char buf[512];
                const char *name = yr_metrics_route_name(r, buf, sizeof(buf));
                size_t slot = name ? yr_metrics_slot(l, YR_LABEL_ROUTE, name) : nslots - 1;
                if (slot == nslots - 1 || seen[slot])
                    continue;
                seen[slot] = 1;
                yr_route_health_t *h = yr_health_of(r);
                yr_health_view_t v = {0};
                if (h != NULL)
                    yr_health_view(h, now, &v);
                long long val = f == 0   ? (v.circuit == YR_CIRCUIT_CLOSED && v.not_before_ms > now
                                                ? 3
                                                : (long long)v.circuit)
                                : f == 1 ? (long long)v.ejections
                                : f == 2 ? (long long)v.inflight
                                         : (long long)v.consecutive_failures;
                rc = yr_buf_printf(out, "%s{route=\"", fam[f][0]);
                if (rc == 0)
                    rc = yr_metrics_append_label(out, name);
                if (rc == 0)
                    rc = yr_buf_printf(out, "\"} %lld\n", val);
            }
    }
    free(seen);
    return rc;
}

int yr_obs_render(yr_obs_t *const *all, size_t nw, const yr_config_t *cfg, yr_buf_t *out)
{
    if (nw == 0)
        return 0;
    int rc = render_genai(all, nw, out);
    if (rc == 0)
        rc = render_keys(all, nw, out);
    if (rc == 0)
        rc = render_counters(all, nw, out);
    if (rc == 0)
        rc = render_lag(all, nw, out);
    if (rc == 0)
        rc = render_routes(all[0]->labels, cfg, out);
    if (rc == 0)
        rc = render_memory(out);
    return rc;
}
