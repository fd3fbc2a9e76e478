#include "metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const int status_codes[] = {200, 400, 401, 403, 404, 405, 408, 413, 429,
                                   431, 499, 500, 501, 502, 503, 504};
#define NSTATUS (sizeof(status_codes) / sizeof(status_codes[0]) + 1) /* + other */

static const char *const outcome_names[YR_ATT__COUNT] = {
    "ok", "http_429", "http_4xx", "http_5xx", "connect_error",
    "timeout", "bad_response", "stream_cut", "cancelled",
};

/* Upper bounds in microseconds. */
static const uint64_t lat_bounds_us[YR_LAT_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 30000000,
};

static size_t status_slot(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return NSTATUS - 1;
}

int yr_metrics_init(yr_metrics_t *m, const yr_config_t *cfg)
{
    *m = (yr_metrics_t){0};
    m->nmodels = cfg->nmodels;
    m->nvendors = cfg->nproviders;
    size_t nreq = (m->nmodels + 1) * (m->nvendors + 1) * NSTATUS;
    m->requests = calloc(nreq, sizeof(*m->requests));
    m->attempts = calloc((m->nvendors + 1) * YR_ATT__COUNT, sizeof(*m->attempts));
    if (m->requests == NULL || m->attempts == NULL) {
        yr_metrics_free(m);
        return -ENOMEM;
    }
    return 0;
}

void yr_metrics_free(yr_metrics_t *m)
{
    free(m->requests);
    free(m->attempts);
    m->requests = NULL;
    m->attempts = NULL;
}

void yr_metrics_add(_Atomic uint64_t *c, uint64_t v)
{
    /* Single writer: a plain load/store pair is enough and costs no lock. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void yr_metrics_inflight(yr_metrics_t *m, int64_t delta)
{
    atomic_store_explicit(&m->inflight,
                          atomic_load_explicit(&m->inflight, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

void yr_metrics_request(yr_metrics_t *m, size_t model, size_t vendor, int status,
                        uint64_t latency_us)
{
    if (model >= m->nmodels)
        model = m->nmodels;
    if (vendor >= m->nvendors)
        vendor = m->nvendors;
    size_t idx = (model * (m->nvendors + 1) + vendor) * NSTATUS + status_slot(status);
    yr_metrics_add(&m->requests[idx], 1);
    size_t b = 0;
    while (b < YR_LAT_BUCKETS && latency_us > lat_bounds_us[b])
        b++;
    yr_metrics_add(&m->lat_buckets[b], 1);
    yr_metrics_add(&m->lat_sum_us, latency_us);
    yr_metrics_add(&m->lat_count, 1);
}

void yr_metrics_attempt(yr_metrics_t *m, size_t vendor, enum yr_attempt_outcome o)
{
    if (vendor >= m->nvendors)
        vendor = m->nvendors;
    yr_metrics_add(&m->attempts[vendor * YR_ATT__COUNT + o], 1);
}

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static const char *model_label(const yr_config_t *cfg, size_t i)
{
    return i < cfg->nmodels ? cfg->models[i].id : "";
}

static const char *vendor_label(const yr_config_t *cfg, size_t i)
{
    return i < cfg->nproviders ? cfg->providers[i].name : "";
}

/* Appends a label value escaped as the exposition format requires. */
static int append_label(yr_buf_t *out, const char *v)
{
    int rc = 0;
    for (; rc == 0 && *v; v++) {
        if (*v == '"' || *v == '\\')
            rc = yr_buf_append(out, "\\", 1);
        if (rc == 0)
            rc = *v == '\n' ? yr_buf_append(out, "\\n", 2) : yr_buf_append(out, v, 1);
    }
    return rc;
}

static int render_requests(const yr_config_t *cfg, yr_metrics_t *const *all, size_t n,
                           yr_buf_t *out)
{
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_requests_total Chat requests by model, vendor and status.\n"
                    "# TYPE yourouter_requests_total counter\n"));
    size_t nm = all[0]->nmodels + 1, nv = all[0]->nvendors + 1;
    for (size_t mi = 0; rc == 0 && mi < nm; mi++) {
        for (size_t vi = 0; rc == 0 && vi < nv; vi++) {
            for (size_t si = 0; rc == 0 && si < NSTATUS; si++) {
                uint64_t sum = 0;
                for (size_t w = 0; w < n; w++)
                    sum += load(&all[w]->requests[(mi * nv + vi) * NSTATUS + si]);
                if (sum == 0)
                    continue;
                char status[8];
                if (si < NSTATUS - 1)
                    snprintf(status, sizeof(status), "%d", status_codes[si]);
                else
                    snprintf(status, sizeof(status), "other");
                rc = yr_buf_append_str(out, YR_STR("yourouter_requests_total{model=\""));
                if (rc == 0)
                    rc = append_label(out, model_label(cfg, mi));
                if (rc == 0)
                    rc = yr_buf_printf(out, "\",vendor=\"%s\",status=\"%s\"} %llu\n",
                                       vendor_label(cfg, vi), status, (unsigned long long)sum);
            }
        }
    }
    return rc;
}

static int render_attempts(const yr_config_t *cfg, yr_metrics_t *const *all, size_t n,
                           yr_buf_t *out)
{
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_upstream_attempts_total Upstream attempts by vendor and "
                    "outcome.\n# TYPE yourouter_upstream_attempts_total counter\n"));
    size_t nv = all[0]->nvendors + 1;
    for (size_t vi = 0; rc == 0 && vi < nv; vi++) {
        for (size_t o = 0; rc == 0 && o < YR_ATT__COUNT; o++) {
            uint64_t sum = 0;
            for (size_t w = 0; w < n; w++)
                sum += load(&all[w]->attempts[vi * YR_ATT__COUNT + o]);
            if (sum == 0)
                continue;
            rc = yr_buf_printf(out,
                               "yourouter_upstream_attempts_total{vendor=\"%s\",outcome=\"%s\"} "
                               "%llu\n",
                               vendor_label(cfg, vi), outcome_names[o], (unsigned long long)sum);
        }
    }
    return rc;
}

static int render_latency(yr_metrics_t *const *all, size_t n, yr_buf_t *out)
{
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_request_duration_seconds Chat request latency, until the "
                    "response ended.\n# TYPE yourouter_request_duration_seconds histogram\n"));
    uint64_t cum = 0;
    for (size_t b = 0; rc == 0 && b <= YR_LAT_BUCKETS; b++) {
        for (size_t w = 0; w < n; w++)
            cum += load(&all[w]->lat_buckets[b]);
        if (b < YR_LAT_BUCKETS)
            rc = yr_buf_printf(out, "yourouter_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                               (double)lat_bounds_us[b] / 1e6, (unsigned long long)cum);
        else
            rc = yr_buf_printf(out, "yourouter_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                               (unsigned long long)cum);
    }
    uint64_t sum = 0, count = 0;
    int64_t inflight = 0;
    uint64_t http = 0;
    for (size_t w = 0; w < n; w++) {
        sum += load(&all[w]->lat_sum_us);
        count += load(&all[w]->lat_count);
        inflight += atomic_load_explicit(&all[w]->inflight, memory_order_relaxed);
        http += load(&all[w]->http_requests);
    }
    if (rc == 0)
        rc = yr_buf_printf(out,
                           "yourouter_request_duration_seconds_sum %.6f\n"
                           "yourouter_request_duration_seconds_count %llu\n"
                           "# HELP yourouter_inflight_requests Chat requests in progress.\n"
                           "# TYPE yourouter_inflight_requests gauge\n"
                           "yourouter_inflight_requests %lld\n"
                           "# HELP yourouter_http_requests_total HTTP requests on any path.\n"
                           "# TYPE yourouter_http_requests_total counter\n"
                           "yourouter_http_requests_total %llu\n",
                           (double)sum / 1e6, (unsigned long long)count, (long long)inflight,
                           (unsigned long long)http);
    return rc;
}

int yr_metrics_render(const yr_config_t *cfg, yr_metrics_t *const *all, size_t n, yr_buf_t *out)
{
    if (n == 0)
        return 0;
    int rc = render_requests(cfg, all, n, out);
    if (rc == 0)
        rc = render_attempts(cfg, all, n, out);
    if (rc == 0)
        rc = render_latency(all, n, out);
    return rc;
}
