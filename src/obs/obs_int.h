/* The inside of a worker's yr_obs_t, shared by the files of src/obs only. */
#ifndef YR_OBS_INT_H
#define YR_OBS_INT_H

#include "obs/obs.h"
#include "upstream/upstream.h"

/* ---- GenAI histograms: one shard per worker ---------------------------------
 *
 * A series is one combination of labels (operation, provider, request model,
 * route, status class). The worker is the only writer of its shard: it finds
 * its series in an open-addressing table of GENAI_SERIES entries, allocating
 * it (and publishing it with a release store) at first sight. The renderer,
 * on any worker's thread, loads entries with acquire and sums counters with
 * relaxed loads. Series are never removed; past the table's size new ones are
 * counted in series_dropped. */
enum { H_TOK_IN, H_TOK_OUT, H_DUR, H_TTFT, H_TPOT, H__COUNT };
#define GENAI_MAX_BUCKETS 16
#define GENAI_SERIES 2048 /* per worker, a power of two */

typedef struct {
    _Atomic uint64_t b[GENAI_MAX_BUCKETS + 1];
    _Atomic uint64_t sum; /* tokens, or microseconds */
    _Atomic uint64_t count;
} genai_hist_t;

typedef struct {
    uint64_t key; /* set before publication, then constant */
    genai_hist_t h[H__COUNT];
} genai_series_t;

/* Per-key series (observability.metrics_key_names): [key slot][...]. */
enum { KEY_REQ_2XX, KEY_REQ_4XX, KEY_REQ_5XX, KEY_TOK_IN, KEY_TOK_OUT, KEY__COUNT };

struct trace_q; /* obs/trace.c */

struct yr_obs {
    size_t worker_id;
    uv_loop_t *loop;
    yr_upstream_t *up;
    const struct yr_http_server *http; /* its connection count is sampled */
    yr_metrics_labels_t *labels;       /* shared, not owned */
    bool key_names;
    int log_fd; /* -1: no access log; shared by the process, not owned */
    yr_obs_counters_t c;
    _Atomic(genai_series_t *) series[GENAI_SERIES];
    _Atomic uint64_t *key_series; /* [nslots(KEY)][KEY__COUNT] or NULL */
    /* the lag timer */
    uv_timer_t lag_timer;
    bool lag_started;
    uint64_t lag_expected_ns;
    uint64_t lag_window_start_ns, lag_cur_max_us, lag_prev_max_us;
    /* tracing */
    struct trace_q *tq; /* NULL: no export */
    uint64_t rng;
    int64_t unix_offset_ns; /* wall clock - uv_hrtime, at init */
};

/* genai.c */
void yr_obs_genai_record(yr_obs_t *o, const yr_obs_req_t *r);
void yr_obs_genai_free(yr_obs_t *o);

/* trace.c */
__attribute__((warn_unused_result)) int yr_obs_trace_init(yr_obs_t *o, const yr_config_t *cfg);
void yr_obs_trace_start(yr_obs_t *o);
void yr_obs_trace_record(yr_obs_t *o, const yr_obs_req_t *r);
void yr_obs_trace_close(yr_obs_t *o);
void yr_obs_trace_free(yr_obs_t *o);

extern const uint64_t yr_obs_lag_bounds_us[YR_OBS_LAG_BUCKETS];
extern const char *const yr_obs_limit_names[YR_OBS_NLIMITS];

/* accesslog.c */
void yr_obs_log_record(yr_obs_t *o, const yr_obs_req_t *r);

/* A single-writer counter bump (as yr_metrics_add). */
static inline void obs_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

#endif
