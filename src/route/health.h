/* What the gateway knows about a route across requests: cool-downs from
 * Retry-After and quota errors, a circuit that opens after repeated
 * failures, requests in flight, time to first byte and the rate-limit
 * headroom the provider announced.
 *
 * One table for the process, shared by every worker (a mutex per entry; the
 * table's own lock is taken only to find or add an entry). An entry is keyed
 * by provider name, upstream model and a fingerprint of the route's key, so
 * a config reload that keeps a route keeps its health, and two keys of one
 * provider are two routes. Entries live until the process ends (at most
 * YR_HEALTH_MAX; past that a route goes without shared state: it is always
 * available, never ejected, and the table says so once in the log).
 *
 * Times are monotonic milliseconds (yr_health_now_ms). */
#ifndef YR_ROUTE_HEALTH_H
#define YR_ROUTE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "providers/transport.h"

#define YR_HEALTH_MAX 4096
#define YR_HEALTH_MAX_COOLDOWN_MS (300 * 1000)   /* an open circuit, at most */
#define YR_HEALTH_QUOTA_COOLDOWN_MS (600 * 1000) /* quota or spend exhausted, at least */
#define YR_HEALTH_MAX_HINT_MS (3600 * 1000)      /* a longer Retry-After is read as this */

typedef struct yr_route_health yr_route_health_t;

typedef enum {
    YR_CIRCUIT_CLOSED = 0,
    YR_CIRCUIT_OPEN,      /* ejected until its cool-down ends */
    YR_CIRCUIT_HALF_OPEN, /* cool-down over: one probe request decides */
} yr_circuit_t;

typedef struct {
    yr_circuit_t circuit;
    int64_t not_before_ms;  /* cooling (hint, quota) or open until then; 0: usable */
    bool probe_busy;        /* half open and its probe is in flight */
    uint32_t inflight;
    uint32_t consecutive_failures;
    uint32_t ejections;
    double ewma_ttfb_ms;    /* < 0: no successful answer yet */
    int64_t remaining_requests, remaining_tokens; /* announced and not yet reset; -1: unknown */
    bool low_headroom;      /* the provider said no requests (or tokens) are left ... */
    int64_t headroom_at_ms; /* ... until then */
} yr_health_view_t;

/* How the route's model judges failures (from its config). */
typedef struct {
    uint32_t failure_threshold; /* consecutive failures that eject */
    uint32_t cooldown_ms;       /* the first ejection; doubles with each */
    bool never_eject;           /* the model's only route */
} yr_health_policy_t;

/* Why a route cannot take an attempt now. */
typedef enum {
    YR_TAKE_OK = 0, /* taken: counted in flight until yr_health_done */
    YR_TAKE_COOLING,
    YR_TAKE_OPEN,
    YR_TAKE_BUSY,
} yr_take_t;

int64_t yr_health_now_ms(void);

/* The entry of r, found or added; NULL when the table is full or memory ran
 * out (the caller treats the route as healthy and unshared). */
yr_route_health_t *yr_health_of(const yr_route_conf_t *r);

void yr_health_view(yr_route_health_t *h, int64_t now_ms, yr_health_view_t *out);

/* Takes a slot on h for one attempt. force skips the circuit (the last route
 * standing) but never a cool-down or the concurrency cap. *ready_ms is when
 * a COOLING/OPEN route may be tried again (BUSY: 0, unknown). *probe is
 * nonzero when this attempt is the circuit's probe: pass it to done. */
yr_take_t yr_health_take(yr_route_health_t *h, int64_t now_ms, uint32_t max_concurrency,
                         bool force, int64_t *ready_ms, uint64_t *probe);

/* An attempt that took a slot ended: outcome, retry hint (-1: none), time to
 * first byte (-1: none) and the head's rate-limit headroom (may be NULL). */
void yr_health_done(yr_route_health_t *h, const yr_health_policy_t *pol, yr_outcome_t o,
                    int64_t retry_after_ms, int64_t ttfb_ms, const yr_head_info_t *head,
                    int64_t head_ms, uint64_t probe, int64_t now_ms);

/* The retry budget, one for the process: every request counts one, every
 * attempt after a request's first spends one retry; retries may be at most
 * YR_RETRY_BUDGET_PCT % of requests over the last 10 s, plus
 * YR_RETRY_BUDGET_FLOOR. */
#define YR_RETRY_BUDGET_PCT 20
#define YR_RETRY_BUDGET_FLOOR 10
void yr_retry_budget_request(int64_t now_ms);
/* Spends one retry; false when the budget is exhausted (nothing spent). */
bool yr_retry_budget_spend(int64_t now_ms);
/* Gives back a retry spent for an attempt that was not made after all. */
void yr_retry_budget_refund(int64_t now_ms);

/* Forgets what every route learnt (cool-downs, circuits, failures, latency,
 * headroom) and the retry budget; in-flight counts stay. An operator's "the
 * provider is back" (POST /admin/routes/reset). Safe while requests run. */
void yr_health_clear_all(void);

/* Calls fn for every entry (under the table lock; fn must not call back
 * into this module). key is "provider\nmodel\nfingerprint". */
void yr_health_each(void (*fn)(void *arg, const char *key, yr_route_health_t *h), void *arg);

/* For unit tests: frees every entry. Not safe while requests run. */
void yr_health_reset_all(void);

#endif
