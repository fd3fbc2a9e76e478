/* Route health shared by every worker (see health.h). */
#include "route/health.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define WINDOW_BUCKETS 10 /* seconds of failure-rate history */
#define EWMA_ALPHA 0.3

typedef struct {
    int64_t sec;
    uint32_t ok, fail;
} bucket_t;

struct yr_route_health {
    pthread_mutex_t mu;
    uint64_t hash;
    char *key; /* provider \n model \n key fingerprint; malloc'ed, lives with the process */
    yr_circuit_t circuit;
    int64_t cool_until_ms; /* Retry-After, quota */
    int64_t open_until_ms; /* circuit */
    bool probe_busy;
    uint64_t probe_seq; /* the probe in flight is the attempt holding this token */
    uint32_t inflight;
    uint32_t consecutive_failures;
    uint32_t ejections;
    double ewma_ttfb_ms;
    int64_t remaining_requests, reset_requests_at_ms;
    int64_t remaining_tokens, reset_tokens_at_ms;
    bucket_t window[WINDOW_BUCKETS];
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static yr_route_health_t *table[YR_HEALTH_MAX * 2]; /* open addressing, never shrinks */
static size_t table_n;
static bool table_full_logged;

int64_t yr_health_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void health_init(yr_route_health_t *h)
{
    h->ewma_ttfb_ms = -1;
    h->remaining_requests = h->remaining_tokens = -1;
}

yr_route_health_t *yr_health_of(const yr_route_conf_t *r)
{
    /* The key's fingerprint only: the secret itself is not kept here. */
    const char *secret = yr_route_key(r);
    char key[2 * 256 + 64];
    int n = snprintf(key, sizeof(key), "%s\n%s\n%016llx", r->provider->name, r->model,
                     (unsigned long long)fnv1a(0xcbf29ce484222325ull, secret));
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    uint64_t hash = fnv1a(0xcbf29ce484222325ull, key);
    const size_t cap = sizeof(table) / sizeof(table[0]);
    yr_route_health_t *found = NULL;
    pthread_mutex_lock(&table_mu);
    size_t i = (size_t)(hash & (cap - 1));
    for (; table[i] != NULL; i = (i + 1) & (cap - 1)) {
        if (table[i]->hash == hash && strcmp(table[i]->key, key) == 0) {
            found = table[i];
            break;
        }
    }
    if (found == NULL && table_n < YR_HEALTH_MAX) {
        found = calloc(1, sizeof(*found));
        char *k = found != NULL ? strdup(key) : NULL;
        if (k == NULL) {
            free(found);
            found = NULL;
        } else {
            pthread_mutex_init(&found->mu, NULL);
            found->hash = hash;
            found->key = k;
            health_init(found);
            table[i] = found;
            table_n++;
        }
    } else if (found == NULL && !table_full_logged) {
        table_full_logged = true;
        yr_log_warn("route health: more than %d distinct routes; new ones go without health",
                    YR_HEALTH_MAX);
    }
    pthread_mutex_unlock(&table_mu);
    return found;
}

_Static_assert((sizeof(table) / sizeof(table[0]) & (sizeof(table) / sizeof(table[0]) - 1)) ==
                          0,
                      "the table size is a power of two");

/* Headroom the provider announced, until its reset. Under h->mu. */
static bool low_headroom(const yr_route_health_t *h, int64_t now_ms)
{
    return (h->remaining_requests == 0 && now_ms < h->reset_requests_at_ms) ||
           (h->remaining_tokens == 0 && now_ms < h->reset_tokens_at_ms);
}

/* A circuit whose cool-down is over is half open. Under h->mu. */
static void advance(yr_route_health_t *h, int64_t now_ms)
{
    if (h->circuit == YR_CIRCUIT_OPEN && now_ms >= h->open_until_ms) {
        h->circuit = YR_CIRCUIT_HALF_OPEN;
        h->probe_busy = false;
    }
    if (h->remaining_requests >= 0 && now_ms >= h->reset_requests_at_ms)
        h->remaining_requests = -1;
    if (h->remaining_tokens >= 0 && now_ms >= h->reset_tokens_at_ms)
        h->remaining_tokens = -1;
}

void yr_health_view(yr_route_health_t *h, int64_t now_ms, yr_health_view_t *out)
{
    pthread_mutex_lock(&h->mu);
    advance(h, now_ms);
    int64_t nb = h->cool_until_ms > now_ms ? h->cool_until_ms : 0;
    if (h->circuit == YR_CIRCUIT_OPEN && h->open_until_ms > nb)
        nb = h->open_until_ms;
    *out = (yr_health_view_t){
        .circuit = h->circuit,
        .not_before_ms = nb,
        .probe_busy = h->probe_busy,
        .inflight = h->inflight,
        .consecutive_failures = h->consecutive_failures,
        .ejections = h->ejections,
        .ewma_ttfb_ms = h->ewma_ttfb_ms,
        .remaining_requests = h->remaining_requests,
        .remaining_tokens = h->remaining_tokens,
        .low_headroom = low_headroom(h, now_ms),
    };
    if (out->low_headroom) {
        int64_t r = h->remaining_requests == 0 ? h->reset_requests_at_ms : 0;
        int64_t t = h->remaining_tokens == 0 ? h->reset_tokens_at_ms : 0;
        out->headroom_at_ms = r > t ? r : t;
    }
    pthread_mutex_unlock(&h->mu);
}

yr_take_t yr_health_take(yr_route_health_t *h, int64_t now_ms, uint32_t max_concurrency,
                         bool force, int64_t *ready_ms, uint64_t *probe)
{
    yr_take_t t = YR_TAKE_OK;
    *ready_ms = 0;
    *probe = 0;
    pthread_mutex_lock(&h->mu);
    advance(h, now_ms);
    if (h->cool_until_ms > now_ms) {
        t = YR_TAKE_COOLING;
        *ready_ms = h->cool_until_ms;
    } else if (!force && h->circuit == YR_CIRCUIT_OPEN) {
        t = YR_TAKE_OPEN;
        *ready_ms = h->open_until_ms;
    } else if (!force && h->circuit == YR_CIRCUIT_HALF_OPEN && h->probe_busy) {
        t = YR_TAKE_OPEN; /* its probe decides; others wait for the verdict */
    } else if (max_concurrency > 0 && h->inflight >= max_concurrency) {
        t = YR_TAKE_BUSY;
    } else {
        h->inflight++;
        /* the half-open probe, or a forced pick of an ejected route (every
         * route was ejected): this attempt's verdict decides the circuit */
        if (h->circuit != YR_CIRCUIT_CLOSED && !h->probe_busy) {
            h->probe_busy = true;
            *probe = ++h->probe_seq;
        }
        if (h->remaining_requests > 0)
            h->remaining_requests--; /* this attempt uses one: the next request sees it */
    }
    pthread_mutex_unlock(&h->mu);
    return t;
}

static bucket_t *bucket_now(yr_route_health_t *h, int64_t now_ms)
{
    int64_t sec = now_ms / 1000;
    bucket_t *b = &h->window[sec % WINDOW_BUCKETS];
    if (b->sec != sec)
        *b = (bucket_t){.sec = sec};
    return b;
}

static bool window_says_eject(const yr_route_health_t *h, const yr_health_policy_t *pol,
                              int64_t now_ms)
{
    uint32_t ok = 0, fail = 0;
    int64_t sec = now_ms / 1000;
    for (size_t i = 0; i < WINDOW_BUCKETS; i++) {
        if (sec - h->window[i].sec < WINDOW_BUCKETS) {
            ok += h->window[i].ok;
            fail += h->window[i].fail;
        }
    }
    /* Enough traffic to judge, and at least half of it failing. */
    return ok + fail >= 4 * pol->failure_threshold && fail * 2 >= ok + fail;
}

static void eject(yr_route_health_t *h, const yr_health_policy_t *pol, int64_t now_ms)
{
    h->ejections++;
    uint64_t cd = pol->cooldown_ms;
    for (uint32_t i = 1; i < h->ejections && cd < YR_HEALTH_MAX_COOLDOWN_MS; i++)
        cd *= 2;
    if (cd > YR_HEALTH_MAX_COOLDOWN_MS)
        cd = YR_HEALTH_MAX_COOLDOWN_MS;
    h->circuit = YR_CIRCUIT_OPEN;
    h->open_until_ms = now_ms + (int64_t)cd;
    h->probe_busy = false;
    yr_log_warn("route %.*s ejected for %llu ms (%u consecutive failures, ejection %u)",
                (int)strcspn(h->key, "\n"), h->key, (unsigned long long)cd,
                h->consecutive_failures, h->ejections);
}

static void cool(yr_route_health_t *h, int64_t until_ms)
{
    if (until_ms > h->cool_until_ms)
        h->cool_until_ms = until_ms;
}

void yr_health_done(yr_route_health_t *h, const yr_health_policy_t *pol, yr_outcome_t o,
                    int64_t retry_after_ms, int64_t ttfb_ms, const yr_head_info_t *head,
                    int64_t head_ms, uint64_t probe_token, int64_t now_ms)
{
    if (retry_after_ms > YR_HEALTH_MAX_HINT_MS)
        retry_after_ms = YR_HEALTH_MAX_HINT_MS;
    pthread_mutex_lock(&h->mu);
    advance(h, now_ms);
    if (h->inflight > 0)
        h->inflight--;
    /* only the attempt that took the probe decides: an older one still in
     * flight when the circuit went half open says nothing of now */
    bool probe = probe_token != 0 && probe_token == h->probe_seq && h->probe_busy &&
                 h->circuit != YR_CIRCUIT_CLOSED;
    if (head != NULL && head->remaining_requests >= 0) {
        h->remaining_requests = head->remaining_requests;
        h->reset_requests_at_ms = head_ms + (head->reset_requests_ms >= 0 ? head->reset_requests_ms
                                                                            : 1000);
    }
    if (head != NULL && head->remaining_tokens >= 0) {
        h->remaining_tokens = head->remaining_tokens;
        h->reset_tokens_at_ms = head_ms + (head->reset_tokens_ms >= 0 ? head->reset_tokens_ms
                                                                        : 1000);
    }
    switch (o) {
    case YR_OUT_OK:
        h->consecutive_failures = 0;
        bucket_now(h, now_ms)->ok++;
        if (probe) {
            h->circuit = YR_CIRCUIT_CLOSED;
            h->probe_busy = false;
            yr_log_info("route %.*s is back (its probe succeeded)", (int)strcspn(h->key, "\n"),
                        h->key);
        }
        if (ttfb_ms >= 0)
            h->ewma_ttfb_ms = h->ewma_ttfb_ms < 0
                                  ? (double)ttfb_ms
                                  : EWMA_ALPHA * (double)ttfb_ms + (1 - EWMA_ALPHA) * h->ewma_ttfb_ms;
        break;
    case YR_OUT_RATE_LIMITED:
        /* The provider is fine, this key is out of requests: its hint says
         * for how long. Not a health failure. */
        if (retry_after_ms > 0)
            cool(h, now_ms + retry_after_ms);
        if (probe)
            h->probe_busy = false;
        break;
    case YR_OUT_QUOTA:
        /* Spend or quota exhausted: no use trying this route for a while. */
        cool(h, now_ms + (retry_after_ms > YR_HEALTH_QUOTA_COOLDOWN_MS ? retry_after_ms
                                                                       : YR_HEALTH_QUOTA_COOLDOWN_MS));
        if (probe)
            h->probe_busy = false;
        break;
    case YR_OUT_AUTH:
        /* The gateway's key for this route is refused: another route may
         * have a good one; a reload with a new key is a new route. */
        if (!pol->never_eject)
            cool(h, now_ms + YR_HEALTH_QUOTA_COOLDOWN_MS);
        if (probe)
            h->probe_busy = false;
        break;
    case YR_OUT_OVERLOADED:
    case YR_OUT_SERVER_ERROR:
    case YR_OUT_CONNECT:
    case YR_OUT_TIMEOUT:
    case YR_OUT_BAD_RESPONSE:
    case YR_OUT_STREAM_CUT:
        if (retry_after_ms > 0)
            cool(h, now_ms + retry_after_ms);
        h->consecutive_failures++;
        bucket_now(h, now_ms)->fail++;
        if (pol->never_eject) {
            if (probe)
                h->probe_busy = false;
        } else if (probe || h->consecutive_failures >= pol->failure_threshold ||
                   window_says_eject(h, pol, now_ms)) {
            if (h->circuit != YR_CIRCUIT_OPEN)
                eject(h, pol, now_ms);
        }
        break;
    case YR_OUT_CLIENT_ERROR:
    case YR_OUT_CANCELLED:
    case YR_OUT_INTERNAL:
    case YR_OUT__COUNT:
        /* Says nothing about the route. */
        if (probe)
            h->probe_busy = false;
        break;
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- the retry budget ---------------------------------------------------- */

static pthread_mutex_t budget_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t sec;
    uint32_t requests, retries;
} budget[WINDOW_BUCKETS];

static void budget_totals(int64_t now_ms, uint64_t *req, uint64_t *ret)
{
    int64_t sec = now_ms / 1000;
    *req = *ret = 0;
    for (size_t i = 0; i < WINDOW_BUCKETS; i++) {
        if (sec - budget[i].sec < WINDOW_BUCKETS) {
            *req += budget[i].requests;
            *ret += budget[i].retries;
        }
    }
}

/* The bucket of this second, emptied when it last held an older one. */
static size_t budget_bucket(int64_t now_ms)
{
    int64_t sec = now_ms / 1000;
    size_t i = (size_t)(sec % WINDOW_BUCKETS);
    if (budget[i].sec != sec) {
        budget[i].sec = sec;
        budget[i].requests = budget[i].retries = 0;
    }
    return i;
}

void yr_retry_budget_request(int64_t now_ms)
{
    pthread_mutex_lock(&budget_mu);
    budget[budget_bucket(now_ms)].requests++;
    pthread_mutex_unlock(&budget_mu);
}

bool yr_retry_budget_spend(int64_t now_ms)
{
    pthread_mutex_lock(&budget_mu);
    uint64_t req, ret;
    size_t i = budget_bucket(now_ms);
    budget_totals(now_ms, &req, &ret);
    bool ok = ret < YR_RETRY_BUDGET_FLOOR + req * YR_RETRY_BUDGET_PCT / 100;
    if (ok)
        budget[i].retries++;
    pthread_mutex_unlock(&budget_mu);
    return ok;
}

void yr_health_clear_all(void)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        yr_route_health_t *h = table[i];
        if (h == NULL)
            continue;
        pthread_mutex_lock(&h->mu);
        uint32_t inflight = h->inflight;
        h->circuit = YR_CIRCUIT_CLOSED;
        h->cool_until_ms = h->open_until_ms = 0;
        h->probe_busy = false;
        h->consecutive_failures = h->ejections = 0;
        memset(h->window, 0, sizeof(h->window));
        health_init(h);
        h->inflight = inflight;
        pthread_mutex_unlock(&h->mu);
    }
    pthread_mutex_unlock(&table_mu);
    pthread_mutex_lock(&budget_mu);
    memset(budget, 0, sizeof(budget));
    pthread_mutex_unlock(&budget_mu);
}

void yr_health_each(void (*fn)(void *arg, const char *key, yr_route_health_t *h), void *arg)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i] != NULL)
            fn(arg, table[i]->key, table[i]);
    pthread_mutex_unlock(&table_mu);
}

void yr_retry_budget_refund(int64_t now_ms)
{
    pthread_mutex_lock(&budget_mu);
    size_t i = budget_bucket(now_ms);
    if (budget[i].retries > 0)
        budget[i].retries--;
    pthread_mutex_unlock(&budget_mu);
}

void yr_health_reset_all(void)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i] != NULL) {
            pthread_mutex_destroy(&table[i]->mu);
            free(table[i]->key);
            free(table[i]);
            table[i] = NULL;
        }
    }
    table_n = 0;
    table_full_logged = false;
    pthread_mutex_unlock(&table_mu);
    pthread_mutex_lock(&budget_mu);
    memset(budget, 0, sizeof(budget));
    pthread_mutex_unlock(&budget_mu);
}
