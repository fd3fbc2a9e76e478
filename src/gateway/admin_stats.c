/* The admin API's read-only views for the UI (the master key or a UI
 * session: yr_gw_authenticate_master):
 *
 *   GET /admin/stats/series?since=24h&bucket=1h&by=model|vendor|key|class|none&key=K&top=8
 *   GET /admin/stats/latency?since=24h&bucket=1h&key=K
 *   GET /admin/requests?limit=50&before=CURSOR&key=K&errors=1
 *   GET /admin/keys?limit=100&after=ID&q=TEXT&revoked=1   (a page, with spend)
 *
 * Each is one store call (yr_store_call_async): the database aggregates
 * (store.h), the store thread shapes the JSON, the worker only sends it. */
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "store/keys_cli.h"
#include "store/keyspec.h"

#define MAX_ANSWER (16u << 20)
#define MAX_POINTS 100000 /* series rows read from the database */
#define MAX_BUCKETS 2000  /* since / bucket */
#define MAX_HIST 400000   /* histogram rows */

typedef enum { S_SERIES, S_LATENCY, S_RECENT, S_KEYS } sop_t;

typedef struct {
    int64_t bucket;
    int which;
    int64_t value, count;
} hist_t;

/* The call's arguments and what the store thread builds; copied into the
 * store op (yr_store_call_async). */
typedef struct {
    yr_gw_req_t *g; /* held while the op runs */
    sop_t op;
    char key[128]; /* a key's name or id to filter by; "" for all */
    char search[128];
    char by[8];
    int top;
    yr_usage_query_t q;
    yr_recent_query_t rq;
    yr_key_page_t kp;
    /* store thread */
    json_t *data; /* the list being built */
    yr_usage_total_t *pts;
    hist_t *hist;
    size_t n, cap;
    int rc;
    char cur[64]; /* S_RECENT: the request being built */
    json_t *attempts;
    int64_t last_ms, last_id;
    size_t nreq;
    yr_buf_t out;
} scall_t;

static int grow(void **arr, size_t *cap, size_t n, size_t size, size_t max)
{
    if (n < *cap)
        return 0;
    if (n >= max)
        return -E2BIG;
    size_t nc = *cap ? *cap * 2 : 256;
    void *p = realloc(*arr, nc * size);
    if (p == NULL)
        return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

static json_t *totals_json(const yr_usage_total_t *t)
{
    return json_pack(
        "{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "t", (json_int_t)t->bucket_ms,
        "group", t->group, "requests", (json_int_t)t->requests, "attempts", (json_int_t)t->attempts,
        "prompt_tokens", (json_int_t)t->prompt_tokens, "completion_tokens",
        (json_int_t)t->completion_tokens, "cached_tokens", (json_int_t)t->cached_tokens,
        "cache_write_tokens", (json_int_t)t->cache_write_tokens, "reasoning_tokens",
        (json_int_t)t->reasoning_tokens, "cost_usd", (double)t->cost_micros / 1e6, "errors",
        (json_int_t)t->errors);
}

static void on_point(const yr_usage_total_t *t, void *arg)
{
    scall_t *sc = arg;
    if (sc->rc == 0)
        sc->rc = grow((void **)&sc->pts, &sc->cap, sc->n, sizeof(*t), MAX_POINTS);
    if (sc->rc == 0)
        sc->pts[sc->n++] = *t;
}

static void add_totals(yr_usage_total_t *a, const yr_usage_total_t *b)
{
    a->requests += b->requests;
    a->attempts += b->attempts;
    a->prompt_tokens += b->prompt_tokens;
    a->completion_tokens += b->completion_tokens;
    a->cached_tokens += b->cached_tokens;
    a->cache_write_tokens += b->cache_write_tokens;
    a->reasoning_tokens += b->reasoning_tokens;
    a->cost_micros += b->cost_micros;
    a->errors += b->errors;
}

static int by_group(const void *a, const void *b)
{
    return strcmp(((const yr_usage_total_t *)a)->group, ((const yr_usage_total_t *)b)->group);
}

static int by_requests_desc(const void *a, const void *b)
{
    const yr_usage_total_t *x = a, *y = b;
    return x->requests < y->requests   ? 1
           : x->requests > y->requests ? -1
                                       : strcmp(x->group, y->group);
}

/* The top groups by requests (in that order) into groups; every point of
 * another group is folded into "other" of its bucket. */
static int shape_series(scall_t *sc, json_t *groups)
{
    /* Totals per group: the points sorted by group, then summed in one
     * pass (a series by key may have thousands of groups). */
    yr_usage_total_t *g = sc->n ? malloc(sc->n * sizeof(*g)) : NULL;
    size_t ng = 0;
    int rc = sc->n && g == NULL ? -ENOMEM : 0;
    if (rc == 0 && sc->n > 0) {
        memcpy(g, sc->pts, sc->n * sizeof(*g));
        qsort(g, sc->n, sizeof(*g), by_group);
        for (size_t i = 0; i < sc->n; i++) {
            if (ng > 0 && strcmp(g[ng - 1].group, g[i].group) == 0) {
                add_totals(&g[ng - 1], &g[i]);
            } else {
                g[ng] = g[i];
                ng++;
            }
        }
    }
    if (rc == 0 && ng > 1)
        qsort(g, ng, sizeof(*g), by_requests_desc);
    size_t keep = ng <= (size_t)sc->top + 1 ? ng : (size_t)sc->top;
    for (size_t k = 0; rc == 0 && k < keep; k++)
        rc = json_array_append_new(groups, json_string(g[k].group)) ? -ENOMEM : 0;
    if (rc == 0 && keep < ng)
        rc = json_array_append_new(groups, json_string("other")) ? -ENOMEM : 0;
    yr_usage_total_t other = {0};
    for (size_t i = 0; rc == 0 && i < sc->n; i++) {
        const yr_usage_total_t *p = &sc->pts[i];
        bool top = false;
        for (size_t k = 0; k < keep && !top; k++)
            top = strcmp(g[k].group, p->group) == 0;
        if (top) {
            rc = json_array_append_new(sc->data, totals_json(p)) ? -ENOMEM : 0;
        } else {
            if (other.attempts > 0 && other.bucket_ms != p->bucket_ms) {
                rc = json_array_append_new(sc->data, totals_json(&other)) ? -ENOMEM : 0;
                other = (yr_usage_total_t){0};
            }
            other.bucket_ms = p->bucket_ms;
            snprintf(other.group, sizeof(other.group), "other");
            add_totals(&other, p);
        }
    }
    if (rc == 0 && other.attempts > 0)
        rc = json_array_append_new(sc->data, totals_json(&other)) ? -ENOMEM : 0;
    free(g);
    return rc;
}

static void on_hist(int64_t bucket, int which, int64_t value, int64_t count, void *arg)
{
    scall_t *sc = arg;
    if (sc->rc == 0)
        sc->rc = grow((void **)&sc->hist, &sc->cap, sc->n, sizeof(hist_t), MAX_HIST);
    if (sc->rc == 0)
        sc->hist[sc->n++] = (hist_t){bucket, which, value, count};
}

static int hist_cmp(const void *a, const void *b)
{
    const hist_t *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    if (x->which != y->which)
        return x->which - y->which;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* p50..p99 of h[0..n) (sorted by value): the smallest value with at least
 * p of the samples at or below it. */
static json_t *percentiles(const hist_t *h, size_t n, int64_t *total)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += h[i].count;
    *total = sum;
    static const double ps[] = {0.50, 0.90, 0.95, 0.99};
    static const char *const names[] = {"p50", "p90", "p95", "p99"};
    json_t *o = json_object();
    for (int k = 0; o != NULL && k < 4; k++) {
        int64_t need = (int64_t)(ps[k] * (double)sum + 0.999999), acc = 0;
        size_t i = 0;
        while (i + 1 < n && acc + h[i].count < need)
            acc += h[i++].count;
        json_object_set_new(o, names[k], n ? json_integer(h[i].value) : json_null());
    }
    return o;
}

/* One entry per bucket, and the window overall (the same bucket for all). */
static int shape_latency(scall_t *sc, json_t *overall)
{
    if (sc->n > 1)
        qsort(sc->hist, sc->n, sizeof(hist_t), hist_cmp);
    for (size_t i = 0; i < sc->n;) {
        int64_t b = sc->hist[i].bucket, count = 0, tcount = 0;
        size_t j = i;
        while (j < sc->n && sc->hist[j].bucket == b && sc->hist[j].which == 0)
            j++;
        size_t k = j;
        while (k < sc->n && sc->hist[k].bucket == b)
            k++;
        json_t *e = json_pack("{s:I, s:o, s:o}", "t", (json_int_t)b, "latency_ms",
                              percentiles(sc->hist + i, j - i, &count), "ttfb_ms",
                              percentiles(sc->hist + j, k - j, &tcount));
        if (e == NULL || json_object_set_new(e, "count", json_integer(count)) != 0 ||
            json_array_append_new(sc->data, e) != 0)
            return -ENOMEM;
        i = k;
    }
    for (size_t i = 0; i < sc->n; i++)
        sc->hist[i].bucket = 0;
    if (sc->n > 1)
        qsort(sc->hist, sc->n, sizeof(hist_t), hist_cmp);
    size_t j = 0;
    while (j < sc->n && sc->hist[j].which == 0)
        j++;
    int64_t count = 0, tcount = 0;
    json_object_set_new(overall, "latency_ms", percentiles(sc->hist, j, &count));
    json_object_set_new(overall, "ttfb_ms", percentiles(sc->hist + j, sc->n - j, &tcount));
    json_object_set_new(overall, "count", json_integer(count));
    return 0;
}

static json_t *int_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static void on_rec(const yr_usage_rec_t *r, void *arg)
{
    scall_t *sc = arg;
    if (sc->rc != 0)
        return;
    if (strcmp(sc->cur, r->request_id) != 0) {
        snprintf(sc->cur, sizeof(sc->cur), "%s", r->request_id);
        sc->attempts = json_array();
        json_t *q =
            json_pack("{s:s, s:I, s:s, s:s, s:i, s:b, s:o}", "request_id", r->request_id,
                      "created_ms", (json_int_t)r->created_ms, "key", r->key, "model", r->model_id,
                      "status", r->status, "stream", r->stream, "attempts", sc->attempts);
        if (q == NULL || json_array_append_new(sc->data, q) != 0) {
            sc->rc = -ENOMEM;
            return;
        }
        sc->last_ms = r->created_ms;
        sc->last_id = r->row_id;
        sc->nreq++;
    }
    json_t *a = json_pack(
        "{s:i, s:s, s:s, s:i, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:b, s:b}",
        "attempt", r->attempt, "provider", r->provider, "upstream_model", r->upstream_model,
        "upstream_status", r->upstream_status, "outcome", r->outcome, "error_class",
        r->error_class[0] ? r->error_class : NULL, "prompt_tokens", (json_int_t)r->prompt_tokens,
        "completion_tokens", (json_int_t)r->completion_tokens, "cached_tokens",
        (json_int_t)r->cached_tokens, "cache_write_tokens", (json_int_t)r->cache_write_tokens,
        "reasoning_tokens", (json_int_t)r->reasoning_tokens, "cost_usd",
        r->cost_micros < 0 ? json_null() : json_real((double)r->cost_micros / 1e6), "latency_ms",
        int_or_null(r->latency_ms), "ttfb_ms", int_or_null(r->ttfb_ms), "cancelled", r->cancelled,
        "usage_estimated", r->usage_estimated);
    if (a == NULL || json_array_append_new(sc->attempts, a) != 0)
        sc->rc = -ENOMEM;
}

static void on_key(const yr_key_info_t *k, void *arg)
{
    scall_t *sc = arg;
    if (sc->rc != 0)
        return;
    yr_buf_t b;
    yr_buf_init(&b, 64 * 1024);
    json_t *j = NULL;
    if (yr_keyspec_json(k, &b) == 0)
        j = json_loadb(b.data, b.len, 0, NULL);
    yr_buf_free(&b);
    json_t *spent =
        json_pack("{s:f, s:f, s:f}", "daily", (double)k->spent_micros[YR_BUDGET_DAY] / 1e6,
                  "monthly", (double)k->spent_micros[YR_BUDGET_MONTH] / 1e6, "total",
                  (double)k->spent_micros[YR_BUDGET_TOTAL] / 1e6);
    if (j == NULL || spent == NULL || json_object_set_new(j, "spent_usd", spent) != 0 ||
        json_array_append_new(sc->data, j) != 0) {
        sc->rc = -ENOMEM;
        return;
    }
    sc->last_id = k->id;
    sc->nreq++;
}

/* The key filter as an id (0: none). */
static int key_id(yr_store_t *s, const char *which, int64_t *id)
{
    *id = 0;
    if (which[0] == '\0')
        return 0;
    yr_key_info_t info;
    int rc = yr_store_key_get(s, which, &info);
    if (rc == 0)
        *id = info.id;
    return rc;
}

static int scall_build(yr_store_t *s, scall_t *sc, json_t *answer)
{
    int rc;
    switch (sc->op) {
    case S_SERIES: {
        if ((rc = key_id(s, sc->key, &sc->q.key_id)) != 0 ||
            (rc = yr_store_usage_series(s, &sc->q, on_point, sc)) != 0 || (rc = sc->rc) != 0)
            return rc;
        json_t *groups = json_array();
        json_object_set_new(answer, "object", json_string("usage_series"));
        json_object_set_new(answer, "by", json_string(sc->by));
        json_object_set_new(answer, "since_ms", json_integer(sc->q.since_ms));
        json_object_set_new(answer, "bucket_ms", json_integer(sc->q.bucket_ms));
        json_object_set_new(answer, "groups", groups);
        return shape_series(sc, groups);
    }
    case S_LATENCY: {
        if ((rc = key_id(s, sc->key, &sc->q.key_id)) != 0 ||
            (rc = yr_store_usage_hist(s, &sc->q, on_hist, sc)) != 0 || (rc = sc->rc) != 0)
            return rc;
        json_t *overall = json_object();
        json_object_set_new(answer, "object", json_string("latency"));
        json_object_set_new(answer, "since_ms", json_integer(sc->q.since_ms));
        json_object_set_new(answer, "bucket_ms", json_integer(sc->q.bucket_ms));
        json_object_set_new(answer, "overall", overall);
        return shape_latency(sc, overall);
    }
    case S_RECENT: {
        if ((rc = key_id(s, sc->key, &sc->rq.key_id)) != 0 ||
            (rc = yr_store_usage_recent(s, &sc->rq, on_rec, sc)) != 0 || (rc = sc->rc) != 0)
            return rc;
        char next[48];
        snprintf(next, sizeof(next), "%lld.%lld", (long long)sc->last_ms, (long long)sc->last_id);
        json_object_set_new(answer, "object", json_string("list"));
        json_object_set_new(answer, "next",
                            sc->nreq == (size_t)sc->rq.limit ? json_string(next) : json_null());
        return 0;
    }
    case S_KEYS: {
        sc->kp.search = sc->search;
        if ((rc = yr_store_key_page(s, &sc->kp, on_key, sc)) != 0 || (rc = sc->rc) != 0)
            return rc;
        json_object_set_new(answer, "object", json_string("list"));
        json_object_set_new(answer, "next",
                            sc->nreq == (size_t)sc->kp.limit ? json_integer(sc->last_id)
                                                             : json_null());
        return 0;
    }
    }
    return -EINVAL;
}

/* On the store thread. */
static int scall_run(yr_store_t *s, void *arg)
{
    scall_t *sc = arg;
    yr_buf_init(&sc->out, MAX_ANSWER);
    json_t *answer = json_object();
    sc->data = json_array();
    if (answer == NULL || sc->data == NULL) {
        json_decref(answer);
        return -ENOMEM;
    }
    int rc = scall_build(s, sc, answer);
    json_object_set(answer, "data", sc->data);
    char *text = rc == 0 ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    if (rc == 0)
        rc = text == NULL ? -ENOMEM : yr_buf_append_str(&sc->out, yr_str(text));
    free(text);
    return rc;
}

static void scall_cleanup(void *arg)
{
    scall_t *sc = arg;
    json_decref(sc->data);
    free(sc->pts);
    free(sc->hist);
    yr_buf_free(&sc->out);
}

static void scall_done(void *arg, int status)
{
    scall_t *sc = arg;
    yr_gw_req_t *g = sc->g;
    if (status == 0)
        yr_gw_send_json(g, 200, (yr_str_t){sc->out.data, sc->out.len}, NULL, 0);
    else if (status == -ENOENT)
        yr_gw_send_error(g, YR_E_NOT_FOUND, "no active key with that id or name", "key", NULL,
                         YR_STR_NULL);
    else if (status == -E2BIG)
        yr_gw_send_error(g, YR_E_INVALID_REQUEST,
                         "too many points: use a shorter window or a larger bucket", NULL, NULL,
                         YR_STR_NULL);
    else {
        yr_log_error("%s: admin stats failed: %s", g->id, strerror(-status));
        yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "the usage store failed, retry later", NULL,
                         NULL, YR_STR_NULL);
    }
    yr_http_req_release(g->http);
}

/* An integer parameter in [lo, hi], def when absent; -1 (after the 400)
 * when it is not one. */
static int int_param(yr_gw_req_t *g, const char *name, int64_t lo, int64_t hi, int64_t def,
                     int64_t *out)
{
    char buf[24];
    int r = yr_gw_query_param(g->http->query, name, buf, sizeof(buf));
    uint64_t v = (uint64_t)def;
    if (r == 0) {
        *out = def;
        return 0;
    }
    if (r < 0 || yr_str_to_u64(yr_str(buf), (uint64_t)hi, &v) != 0 || (int64_t)v < lo) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be an integer from %lld to %lld", name, (long long)lo,
                 (long long)hi);
        yr_gw_send_error(g, YR_E_INVALID_REQUEST, msg, name, NULL, YR_STR_NULL);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* since= and bucket= (durations such as 24h, 5m, 1d) into sc->q. */
static int window(yr_gw_req_t *g, scall_t *sc)
{
    char since[16] = "24h", bucket[16] = "1h";
    int a = yr_gw_query_param(g->http->query, "since", since, sizeof(since));
    int b = yr_gw_query_param(g->http->query, "bucket", bucket, sizeof(bucket));
    int64_t now = yr_wall_ms();
    int64_t s = a < 0 ? -1 : yr_usage_since(since, now);
    /* yr_usage_since(d, 0) is -duration, and -1 only for a bad one. */
    int64_t bk = b < 0 ? -1 : yr_usage_since(bucket, 0);
    if (s < 0 || bk == -1 || bk >= 0) {
        yr_gw_send_error(g, YR_E_INVALID_REQUEST,
                         "since and bucket are durations such as 7d, 24h, 5m",
                         s < 0 ? "since" : "bucket", NULL, YR_STR_NULL);
        return -1;
    }
    bk = -bk;
    if ((now - s) / bk > MAX_BUCKETS) {
        yr_gw_send_error(g, YR_E_INVALID_REQUEST, "more than 2000 buckets: use a larger bucket",
                         "bucket", NULL, YR_STR_NULL);
        return -1;
    }
    sc->q.since_ms = s / bk * bk; /* whole buckets */
    sc->q.bucket_ms = bk;
    return 0;
}

static int key_param(yr_gw_req_t *g, scall_t *sc)
{
    if (yr_gw_query_param(g->http->query, "key", sc->key, sizeof(sc->key)) >= 0)
        return 0;
    yr_gw_send_error(g, YR_E_NOT_FOUND, "no active key with that id or name", "key", NULL,
                     YR_STR_NULL);
    return -1;
}

static void submit(yr_gw_req_t *g, scall_t *sc)
{
    sc->g = g;
    yr_http_req_hold(g->http);
    int rc = yr_store_call_async(g->w->store, scall_run, scall_done, scall_cleanup, sc, sizeof(*sc),
                                 NULL);
    if (rc < 0) {
        yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "the usage store is busy, retry later", NULL,
                         NULL, YR_STR_NULL);
        yr_http_req_release(g->http);
    }
}

static void series(yr_gw_req_t *g)
{
    scall_t sc = {.op = S_SERIES};
    static const char *const bys[] = {"model", "vendor", "key", "class", "none"};
    static const yr_usage_by_t byv[] = {YR_USAGE_BY_MODEL, YR_USAGE_BY_VENDOR, YR_USAGE_BY_KEY,
                                        YR_USAGE_BY_CLASS, YR_USAGE_BY_NONE};
    snprintf(sc.by, sizeof(sc.by), "model");
    int r = yr_gw_query_param(g->http->query, "by", sc.by, sizeof(sc.by));
    size_t k = 0;
    while (r >= 0 && k < 5 && strcmp(sc.by, bys[k]) != 0)
        k++;
    if (r < 0 || k == 5) {
        yr_gw_send_error(g, YR_E_INVALID_REQUEST, "by is one of model, vendor, key, class, none",
                         "by", NULL, YR_STR_NULL);
        return;
    }
    int64_t top;
    if (window(g, &sc) != 0 || key_param(g, &sc) != 0 || int_param(g, "top", 1, 50, 8, &top) != 0)
        return;
    sc.q.by = byv[k];
    sc.top = (int)top;
    submit(g, &sc);
}

static void latency(yr_gw_req_t *g)
{
    scall_t sc = {.op = S_LATENCY};
    if (window(g, &sc) != 0 || key_param(g, &sc) != 0)
        return;
    submit(g, &sc);
}

static void recent(yr_gw_req_t *g)
{
    scall_t sc = {.op = S_RECENT};
    int64_t limit, errors;
    if (int_param(g, "limit", 1, 200, 50, &limit) != 0 ||
        int_param(g, "errors", 0, 1, 0, &errors) != 0 || key_param(g, &sc) != 0)
        return;
    char before[48];
    int r = yr_gw_query_param(g->http->query, "before", before, sizeof(before));
    if (r != 0) {
        char *dot = r > 0 ? strchr(before, '.') : NULL;
        uint64_t ms = 0, id = 0;
        if (dot == NULL ||
            yr_str_to_u64((yr_str_t){before, (size_t)(dot - before)}, INT64_MAX, &ms) != 0 ||
            yr_str_to_u64(yr_str(dot + 1), INT64_MAX, &id) != 0 || ms == 0) {
            yr_gw_send_error(g, YR_E_INVALID_REQUEST, "before is the next cursor of a page",
                             "before", NULL, YR_STR_NULL);
            return;
        }
        sc.rq.before_ms = (int64_t)ms;
        sc.rq.before_id = (int64_t)id;
    }
    sc.rq.limit = (int)limit;
    sc.rq.errors_only = errors != 0;
    submit(g, &sc);
}

static void keys_page(yr_gw_req_t *g)
{
    scall_t sc = {.op = S_KEYS};
    int64_t limit, after, revoked;
    if (int_param(g, "limit", 1, 500, 100, &limit) != 0 ||
        int_param(g, "after", 0, INT64_MAX, 0, &after) != 0 ||
        int_param(g, "revoked", 0, 1, 0, &revoked) != 0)
        return;
    if (yr_gw_query_param(g->http->query, "q", sc.search, sizeof(sc.search)) < 0) {
        yr_gw_send_error(g, YR_E_INVALID_REQUEST, "q is too long", "q", NULL, YR_STR_NULL);
        return;
    }
    int64_t now = yr_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    sc.kp = (yr_key_page_t){.after_id = after,
                            .limit = (int)limit,
                            .include_revoked = revoked != 0,
                            .day_start = now / 86400000 * 86400000,
                            .month_start = (int64_t)timegm(&tm) * 1000};
    submit(g, &sc);
}

bool yr_admin_stats(yr_gw_req_t *g)
{
    yr_http_req_t *req = g->http;
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    yr_str_t p = req->path;
    char probe[2];
    yr_gw_authed_fn fn = NULL;
    if (yr_str_eq(p, YR_STR("/admin/stats/series")))
        fn = series;
    else if (yr_str_eq(p, YR_STR("/admin/stats/latency")))
        fn = latency;
    else if (yr_str_eq(p, YR_STR("/admin/requests")))
        fn = recent;
    else if (yr_str_eq(p, YR_STR("/admin/keys")) && get &&
             yr_gw_query_param(req->query, "limit", probe, sizeof(probe)) != 0)
        fn = keys_page; /* the paged list; without limit, yr_admin_keys lists all */
    else
        return false;
    if (!get) {
        yr_gw_send_error(g, YR_E_METHOD_NOT_ALLOWED, "only GET here", NULL, NULL, YR_STR_NULL);
        return true;
    }
    yr_gw_authenticate_master(g, fn);
    return true;
}
