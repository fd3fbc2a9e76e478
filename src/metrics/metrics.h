/* Prometheus metrics. Each worker owns one yr_metrics_t and is its only
 * writer (relaxed atomic load+store, no lock prefix on the hot path); the
 * /metrics handler sums every worker's counters.
 *
 * Series are keyed by name, not by position in a config, so they survive a
 * config reload: a model id or vendor name gets a label slot the first time
 * it is seen and keeps it for the life of the process, also after a reload
 * removed it (a Prometheus counter must not vanish or restart). The slots
 * live in one yr_metrics_labels_t that every worker's metrics share, so slot
 * k means the same name in every worker and rendering is a plain sum.
 * Cardinality is bounded: past YR_METRICS_MAX_MODELS model ids (or
 * YR_METRICS_MAX_VENDORS vendor names) new names count as "other". Callers
 * pass only names from the config, never a client's string, and nothing
 * secret is ever a label. */
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
    YR_ATT_INTERNAL,
    YR_ATT__COUNT
};

#define YR_LAT_BUCKETS 14
#define YR_METRICS_MAX_MODELS 256 /* distinct model labels; later ones are "other" */
#define YR_METRICS_MAX_VENDORS 64 /* distinct vendor labels; later ones are "other" */
#define YR_METRICS_MAX_ROUTES 256 /* distinct "vendor/upstream_model" route labels */
#define YR_METRICS_MAX_KEYS 1024  /* distinct key names (observability.metrics_key_names) */
#define YR_METRICS_OTHER "other"

/* The label sets of the registry. Slot 0 of each is "none" (label ""), the
 * last one (yr_metrics_nslots - 1) is "other". */
typedef enum {
    YR_LABEL_MODEL,
    YR_LABEL_VENDOR,
    YR_LABEL_ROUTE,
    YR_LABEL_KEY,
    YR_LABEL__COUNT
} yr_label_t;

/* The name -> slot registry shared by every worker's metrics. Lookups take
 * no lock; only the first sight of a name takes a mutex. */
typedef struct yr_metrics_labels yr_metrics_labels_t;

typedef struct {
    yr_metrics_labels_t *labels; /* shared, not owned; outlives the metrics */
    _Atomic uint64_t *requests;  /* [model slot][vendor slot][status] */
    _Atomic uint64_t *attempts;  /* [vendor slot][outcome] */
    _Atomic uint64_t lat_buckets[YR_LAT_BUCKETS + 1];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t lat_count;
    _Atomic int64_t inflight;
    _Atomic uint64_t http_requests; /* every HTTP request, any path */
} yr_metrics_t;

/* A registry owned by the caller (free with yr_metrics_labels_free after
 * every yr_metrics_t using it). 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_metrics_labels_new(yr_metrics_labels_t **out);
void yr_metrics_labels_free(yr_metrics_labels_t *labels);
/* Gives every model id and vendor name of cfg its slot now (config order
 * makes /metrics list them in that order), so that requests on cfg never
 * take the registry's lock. Names are copied; cfg may go away afterwards.
 * Any thread. */
void yr_metrics_labels_add_config(yr_metrics_labels_t *labels, const yr_config_t *cfg);

/* The slot of name in set which (registered at first sight, lock-free
 * afterwards; NULL: slot 0; past the set's cap: "other"). Any thread. */
uint32_t yr_metrics_slot(yr_metrics_labels_t *labels, yr_label_t which, const char *name);
/* Slots a set can hand out (none, names, other): the size of a per-slot array. */
size_t yr_metrics_nslots(yr_label_t which);
/* What slot renders as; valid until the registry is freed. */
const char *yr_metrics_slot_label(const yr_metrics_labels_t *labels, yr_label_t which,
                                  size_t slot);
/* Rendering visits slots [0, n) with n from yr_metrics_visit_count, mapped by
 * yr_metrics_visit_slot (only names published so far, then "other"). */
size_t yr_metrics_visit_count(const yr_metrics_labels_t *labels, yr_label_t which);
size_t yr_metrics_visit_slot(const yr_metrics_labels_t *labels, yr_label_t which, size_t nvisit,
                             size_t i);
/* Appends v escaped as a Prometheus label value. 0 or -E2BIG. */
__attribute__((warn_unused_result)) int yr_metrics_append_label(yr_buf_t *out, const char *v);
/* A route's label, "vendor/upstream_model", into buf (cap bytes); NULL when
 * it does not fit (such a route counts under "other"). */
const char *yr_metrics_route_name(const yr_route_conf_t *r, char *buf, size_t cap);

/* Allocates one worker's counters over labels; free with yr_metrics_free.
 * Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_metrics_init(yr_metrics_t *m,
                                                        yr_metrics_labels_t *labels);
void yr_metrics_free(yr_metrics_t *m);

/* model and vendor are names from the config, or NULL for none (a request
 * that failed before it was routed): its series has the label "". The
 * strings are not kept. */
void yr_metrics_request(yr_metrics_t *m, const char *model, const char *vendor, int status,
                        uint64_t latency_us);
void yr_metrics_attempt(yr_metrics_t *m, const char *vendor, enum yr_attempt_outcome o);
void yr_metrics_add(_Atomic uint64_t *c, uint64_t v);
void yr_metrics_inflight(yr_metrics_t *m, int64_t delta);

/* Renders the sum over n workers' metrics (which share one registry) as
 * Prometheus text, appended to out. 0, or -E2BIG when out's cap is hit. */
__attribute__((warn_unused_result)) int yr_metrics_render(yr_metrics_t *const *all, size_t n,
                                                          yr_buf_t *out);

#endif
