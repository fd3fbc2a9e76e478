#include "metrics/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int status_codes[] = {200, 400, 401, 403, 404, 405, 408, 413,
                                   429, 431, 499, 500, 501, 502, 503, 504};
#define NSTATUS (sizeof(status_codes) / sizeof(status_codes[0]) + 1) /* + other */

static const char *const outcome_names[YR_ATT__COUNT] = {
    "ok",      "http_429",     "http_4xx",   "http_5xx",  "connect_error",
    "timeout", "bad_response", "stream_cut", "cancelled",
    "internal",
};

/* Upper bounds in microseconds. */
static const uint64_t lat_bounds_us[YR_LAT_BUCKETS] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};

static size_t status_slot(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return NSTATUS - 1;
}

/* ---- label registry ------------------------------------------------------------
 *
 * One set per label (model, vendor). Slot 0 is "none" (label ""), slots
 * 1..cap are names in order of first sight, slot cap + 1 is "other". The
 * hash table is twice the cap, so it never fills and probes stay short.
 *
 * Readers take no lock. An insert (under the mutex) writes names[k] and
 * bumps n before it stores the table entry with release; a reader that
 * loads the entry with acquire therefore sees the name, and a renderer that
 * loads n with acquire sees names[0..n). Entries are never removed or
 * moved, so a probe can never miss a name that was published before it. */

typedef struct {
    size_t cap, mask;
    _Atomic size_t n;
    char **names;            /* [cap]: names[k - 1] is slot k; owned */
    _Atomic uint32_t *table; /* [mask + 1]: 0 empty, else a slot */
} label_set_t;

struct yr_metrics_labels {
    pthread_mutex_t lock; /* serialises inserts; lookups never take it */
    label_set_t models, vendors, routes, keys;
};

#define NMODEL_SLOTS (YR_METRICS_MAX_MODELS + 2)
#define NVENDOR_SLOTS (YR_METRICS_MAX_VENDORS + 2)
_Static_assert((YR_METRICS_MAX_MODELS & (YR_METRICS_MAX_MODELS - 1)) == 0 &&
                   (YR_METRICS_MAX_VENDORS & (YR_METRICS_MAX_VENDORS - 1)) == 0 &&
                   (YR_METRICS_MAX_ROUTES & (YR_METRICS_MAX_ROUTES - 1)) == 0 &&
                   (YR_METRICS_MAX_KEYS & (YR_METRICS_MAX_KEYS - 1)) == 0,
               "label caps are powers of two (the hash mask)");

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int set_init(label_set_t *s, size_t cap)
{
    s->cap = cap;
    s->mask = cap * 2 - 1; /* cap is a power of two */
    atomic_init(&s->n, 0);
    s->names = calloc(cap, sizeof(*s->names));
    s->table = calloc(s->mask + 1, sizeof(*s->table));
    return s->names && s->table ? 0 : -ENOMEM;
}

static void set_free(label_set_t *s)
{
    size_t n = atomic_load(&s->n);
    for (size_t i = 0; s->names != NULL && i < n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->table);
}

/* The slot of name, or 0 when it has none yet; *pos is where the probe
 * ended (the empty entry an insert would take). */
static uint32_t set_find(const label_set_t *s, const char *name, uint32_t h, size_t *pos)
{
    size_t i = h & s->mask;
    for (;;) {
        uint32_t e = atomic_load_explicit(&s->table[i], memory_order_acquire);
        if (e == 0 || strcmp(s->names[e - 1], name) == 0) {
            *pos = i;
            return e;
        }
        i = (i + 1) & s->mask;
    }
}

static uint32_t set_slot(yr_metrics_labels_t *l, label_set_t *s, const char *name)
{
    if (name == NULL)
        return 0;
    uint32_t other = (uint32_t)s->cap + 1;
    if (strcmp(name, YR_METRICS_OTHER) == 0)
        return other; /* so a real "other" never renders as a second series */
    uint32_t h = name_hash(name);
    size_t pos;
    uint32_t slot = set_find(s, name, h, &pos);
    if (slot != 0)
        return slot;
    if (atomic_load_explicit(&s->n, memory_order_relaxed) >= s->cap)
        return other; /* full for good: no lock per request past the cap */
    pthread_mutex_lock(&l->lock);
    slot = set_find(s, name, h, &pos); /* another worker may have won */
    size_t n = atomic_load_explicit(&s->n, memory_order_relaxed);
    if (slot == 0 && n < s->cap) {
        char *copy = strdup(name);
        if (copy != NULL) {
            s->names[n] = copy;
            slot = (uint32_t)n + 1;
            atomic_store_explicit(&s->n, n + 1, memory_order_release);
            atomic_store_explicit(&s->table[pos], slot, memory_order_release);
        }
    }
    pthread_mutex_unlock(&l->lock);
    return slot != 0 ? slot : other; /* full (or out of memory): "other" */
}

/* The label a slot renders as. */
static const char *set_label(const label_set_t *s, size_t slot)
{
    if (slot == 0)
        return "";
    return slot <= s->cap ? s->names[slot - 1] : YR_METRICS_OTHER;
}

int yr_metrics_labels_new(yr_metrics_labels_t **out)
{
    yr_metrics_labels_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return -ENOMEM;
    }
    if (set_init(&l->models, YR_METRICS_MAX_MODELS) < 0 ||
        set_init(&l->vendors, YR_METRICS_MAX_VENDORS) < 0 ||
        set_init(&l->routes, YR_METRICS_MAX_ROUTES) < 0 ||
        set_init(&l->keys, YR_METRICS_MAX_KEYS) < 0) {
        yr_metrics_labels_free(l);
        return -ENOMEM;
    }
    *out = l;
    return 0;
}

void yr_metrics_labels_free(yr_metrics_labels_t *l)
{
    if (l == NULL)
        return;
    set_free(&l->models);
    set_free(&l->vendors);
    set_free(&l->routes);
    set_free(&l->keys);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void yr_metrics_labels_add_config(yr_metrics_labels_t *l, const yr_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        (void)set_slot(l, &l->models, cfg->models[i].id);
    for (size_t i = 0; i < cfg->nproviders; i++)
        (void)set_slot(l, &l->vendors, cfg->providers[i].name);
    char buf[512];
    for (size_t i = 0; i < cfg->nmodels; i++)
        for (size_t j = 0; j < cfg->models[i].nroutes; j++) {
            const char *name = yr_metrics_route_name(&cfg->models[i].routes[j], buf, sizeof(buf));
            if (name != NULL)
                (void)set_slot(l, &l->routes, name);
        }
}

const char *yr_metrics_route_name(const yr_route_conf_t *r, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", r->provider->name, r->model);
    return n >= 0 && (size_t)n < cap ? buf : NULL;
}

static label_set_t *set_of(const yr_metrics_labels_t *l, yr_label_t which)
{
    const label_set_t *sets[YR_LABEL__COUNT] = {&l->models, &l->vendors, &l->routes, &l->keys};
    return (label_set_t *)sets[which];
}

uint32_t yr_metrics_slot(yr_metrics_labels_t *l, yr_label_t which, const char *name)
{
    return set_slot(l, set_of(l, which), name);
}

size_t yr_metrics_nslots(yr_label_t which)
{
    static const size_t caps[YR_LABEL__COUNT] = {YR_METRICS_MAX_MODELS, YR_METRICS_MAX_VENDORS,
                                                 YR_METRICS_MAX_ROUTES, YR_METRICS_MAX_KEYS};
    return caps[which] + 2;
}

const char *yr_metrics_slot_label(const yr_metrics_labels_t *l, yr_label_t which, size_t slot)
{
    return set_label(set_of(l, which), slot);
}

/* ---- counters ------------------------------------------------------------------- */

int yr_metrics_init(yr_metrics_t *m, yr_metrics_labels_t *labels)
{
    *m = (yr_metrics_t){.labels = labels};
    /* Every slot up front (about 2.3 MB of counters): the kernel maps the
     * pages only when a series is first counted. */
    m->requests = calloc((size_t)NMODEL_SLOTS * NVENDOR_SLOTS * NSTATUS, sizeof(*m->requests));
    m->attempts = calloc((size_t)NVENDOR_SLOTS * YR_ATT__COUNT, sizeof(*m->attempts));
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

void yr_metrics_request(yr_metrics_t *m, const char *model, const char *vendor, int status,
                        uint64_t latency_us)
{
    size_t mi = set_slot(m->labels, &m->labels->models, model);
    size_t vi = set_slot(m->labels, &m->labels->vendors, vendor);
    yr_metrics_add(&m->requests[(mi * NVENDOR_SLOTS + vi) * NSTATUS + status_slot(status)], 1);
    size_t b = 0;
    while (b < YR_LAT_BUCKETS && latency_us > lat_bounds_us[b])
        b++;
    yr_metrics_add(&m->lat_buckets[b], 1);
    yr_metrics_add(&m->lat_sum_us, latency_us);
    yr_metrics_add(&m->lat_count, 1);
}

void yr_metrics_attempt(yr_metrics_t *m, const char *vendor, enum yr_attempt_outcome o)
{
    size_t vi = set_slot(m->labels, &m->labels->vendors, vendor);
    yr_metrics_add(&m->attempts[vi * YR_ATT__COUNT + o], 1);
}

static int append_label(yr_buf_t *out, const char *v);

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Rendering visits "none", the names published so far and "other": i runs
 * over [0, n + 2) and maps to a slot. */
static size_t visit_count(const label_set_t *s)
{
    return atomic_load_explicit(&s->n, memory_order_acquire) + 2;
}

static size_t visit_slot(const label_set_t *s, size_t nvisit, size_t i)
{
    return i + 1 < nvisit ? i : s->cap + 1;
}

size_t yr_metrics_visit_count(const yr_metrics_labels_t *l, yr_label_t which)
{
    return visit_count(set_of(l, which));
}

size_t yr_metrics_visit_slot(const yr_metrics_labels_t *l, yr_label_t which, size_t nvisit,
                             size_t i)
{
    return visit_slot(set_of(l, which), nvisit, i);
}

int yr_metrics_append_label(yr_buf_t *out, const char *v)
{
    return append_label(out, v);
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

static int render_request_series(const yr_metrics_labels_t *l, size_t mi, size_t vi, size_t si,
                                 uint64_t count, yr_buf_t *out)
{
    char status[8];
    if (si < NSTATUS - 1)
        snprintf(status, sizeof(status), "%d", status_codes[si]);
    else
        snprintf(status, sizeof(status), "other");
    int rc = yr_buf_append_str(out, YR_STR("yourouter_requests_total{model=\""));
    if (rc == 0)
        rc = append_label(out, set_label(&l->models, mi));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\",vendor=\""));
    if (rc == 0)
        rc = append_label(out, set_label(&l->vendors, vi));
    if (rc == 0)
        rc = yr_buf_printf(out, "\",status=\"%s\"} %llu\n", status, (unsigned long long)count);
    return rc;
}

static int render_requests(yr_metrics_t *const *all, size_t n, yr_buf_t *out)
{
    const yr_metrics_labels_t *l = all[0]->labels;
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_requests_total Chat requests by model, vendor and status.\n"
                    "# TYPE yourouter_requests_total counter\n"));
    size_t nm = visit_count(&l->models), nv = visit_count(&l->vendors);
    for (size_t i = 0; rc == 0 && i < nm; i++) {
        size_t mi = visit_slot(&l->models, nm, i);
        for (size_t j = 0; rc == 0 && j < nv; j++) {
            size_t vi = visit_slot(&l->vendors, nv, j);
            for (size_t si = 0; rc == 0 && si < NSTATUS; si++) {
                uint64_t sum = 0;
                for (size_t w = 0; w < n; w++)
                    sum += load(&all[w]->requests[(mi * NVENDOR_SLOTS + vi) * NSTATUS + si]);
                if (sum != 0)
                    rc = render_request_series(l, mi, vi, si, sum, out);
            }
        }
    }
    return rc;
}

static int render_attempts(yr_metrics_t *const *all, size_t n, yr_buf_t *out)
{
    const yr_metrics_labels_t *l = all[0]->labels;
    int rc = yr_buf_append_str(
        out, YR_STR("# HELP yourouter_upstream_attempts_total Upstream attempts by vendor and "
                    "outcome.\n# TYPE yourouter_upstream_attempts_total counter\n"));
    size_t nv = visit_count(&l->vendors);
    for (size_t j = 0; rc == 0 && j < nv; j++) {
        size_t vi = visit_slot(&l->vendors, nv, j);
        for (size_t o = 0; rc == 0 && o < YR_ATT__COUNT; o++) {
            uint64_t sum = 0;
            for (size_t w = 0; w < n; w++)
                sum += load(&all[w]->attempts[vi * YR_ATT__COUNT + o]);
            if (sum == 0)
                continue;
            rc = yr_buf_append_str(out, YR_STR("yourouter_upstream_attempts_total{vendor=\""));
            if (rc == 0)
                rc = append_label(out, set_label(&l->vendors, vi));
            if (rc == 0)
                rc = yr_buf_printf(out, "\",outcome=\"%s\"} %llu\n", outcome_names[o],
                                   (unsigned long long)sum);
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

int yr_metrics_render(yr_metrics_t *const *all, size_t n, yr_buf_t *out)
{
    if (n == 0)
        return 0;
    int rc = render_requests(all, n, out);
    if (rc == 0)
        rc = render_attempts(all, n, out);
    if (rc == 0)
        rc = render_latency(all, n, out);
    return rc;
}
