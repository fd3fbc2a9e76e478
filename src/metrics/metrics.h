/* Prometheus metrics. Each worker owns one yr_metrics_t and is its only
 * writer (relaxed atomic load+store, no lock prefix on the hot path); the
 * /metrics handler sums every worker's counters. Labels come only from the
 * config (model ids, vendor names) and fixed tables, so cardinality is
 * bounded; nothing secret is ever a label. */
#ifndef YR_METRICS_H
#define YR_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"

enum yr_attempt_outcome {
    YR_ATT_OK,
    YR_ATT_HTTP_429,
    YR_ATT_HTTP_4XX,
    YR_ATT_HTTP_5XX,
    YR_ATT_CONNECT,
    YR_ATT_TIMEOUT,
    YR_ATT_BAD_RESPONSE,
    YR_ATT_STREAM_CUT,
    YR_ATT_CANCELLED,
    YR_ATT__COUNT
};

#define YR_LAT_BUCKETS 14

typedef struct {
    size_t nmodels, nvendors; /* label slots: +1 each for "none/other" */
    _Atomic uint64_t *requests; /* [model][vendor][status] */
    _Atomic uint64_t *attempts; /* [vendor][outcome] */
    _Atomic uint64_t lat_buckets[YR_LAT_BUCKETS + 1];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t lat_count;
    _Atomic int64_t inflight;
    _Atomic uint64_t http_requests; /* every HTTP request, any path */
} yr_metrics_t;

/* Allocates the arrays for cfg's models and vendors; free with
 * yr_metrics_free. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_metrics_init(yr_metrics_t *m, const yr_config_t *cfg);
void yr_metrics_free(yr_metrics_t *m);

/* model_index/vendor_index may be SIZE_MAX for none. */
void yr_metrics_request(yr_metrics_t *m, size_t model_index, size_t vendor_index, int status,
                        uint64_t latency_us);
void yr_metrics_attempt(yr_metrics_t *m, size_t vendor_index, enum yr_attempt_outcome o);
void yr_metrics_add(_Atomic uint64_t *c, uint64_t v);
void yr_metrics_inflight(yr_metrics_t *m, int64_t delta);

/* Renders the sum over n workers' metrics as Prometheus text. */
__attribute__((warn_unused_result)) int yr_metrics_render(const yr_config_t *cfg,
                                                           yr_metrics_t *const *all, size_t n,
                                                           yr_buf_t *out);

#endif
