/* Route choice for one request, behind nginx's peer.get / peer.free seam:
 *
 *   yr_route_plan()  the candidate routes of a model (pinned vendor,
 *                    callable kinds), in the request's pool
 *   yr_peer_get()    the route of the next attempt, and how long to wait
 *                    before it (a BACKOFF), or none left
 *   yr_peer_free()   the attempt's outcome, fed back: route health, cool
 *                    downs and Retry-After scheduling live behind it
 *
 * Behind them: the model's strategy (priority, weighted, least-latency,
 * least-busy), rate-limit headroom (a route whose provider said it has no
 * requests left is used only when nothing else is), the shared health of
 * every route (route/health.h: cool-downs, circuits, in-flight counts), the
 * model's retries of one route with full-jitter backoff, its retry
 * conditions and the process-wide retry budget. */
#ifndef YR_ROUTE_H
#define YR_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/events.h"
#include "config/config.h"
#include "core/pool.h"
#include "providers/transport.h"

/* What one upstream attempt ended in; the proxy fills it, everything that
 * learns from attempts (metrics, health, limits, usage) reads it. */
typedef struct {
    const yr_route_conf_t *route;
    yr_outcome_t outcome;
    int status;             /* HTTP status of the upstream answer, 0: none */
    int64_t retry_after_ms; /* the provider's hint, -1: none */
    yr_head_info_t head;    /* what process_header read */
    yr_usage_t usage;
    bool usage_estimated;   /* the provider sent none: estimated from bytes (docs/accounting.md) */
    uint64_t out_text_bytes; /* text the client was sent (content, reasoning, tool arguments) */
    uint64_t start_ns, head_ns, first_event_ns, end_ns; /* uv_hrtime; 0: never */
    uint64_t send_ns;  /* the call went out (upstream time starts); 0: never */
    uint64_t span_id;  /* its trace span (obs/obs.h); 0: not traced */
} yr_attempt_t;

struct yr_route_health;

/* This request's view of one candidate route. */
typedef struct {
    struct yr_route_health *health; /* shared; NULL: none (table full) */
    uint32_t tries;                 /* attempts started on it */
    int64_t not_before_ms;          /* backoff before its next try */
    bool done;                      /* not to be tried again by this request */
    bool taken;                     /* an attempt holds a slot on it */
    uint64_t probe;                 /* ... as its circuit's probe (health.h) */
} yr_plan_slot_t;

typedef struct {
    const yr_model_conf_t *model;
    const yr_route_conf_t **routes; /* candidates, in the pool */
    yr_plan_slot_t *slots;          /* one per route, in the pool */
    size_t n;
    size_t unsupported; /* routes left out because this build cannot call their kind */
    bool pinned;
    int64_t deadline_ms; /* monotonic; waits never pass it (0: none) */
    uint32_t attempts;   /* handed out by yr_peer_get */
    int64_t wait_since_ms; /* first wait for a cooling or busy route; 0: none yet */
    /* Why yr_peer_get gave nothing (for the final error). */
    int64_t retry_in_ms;   /* > 0: the soonest a cooling route is usable again */
    bool busy;             /* routes were at their concurrency cap */
    bool budget_exhausted; /* the retry budget refused another attempt */
    uint64_t rng;
} yr_route_plan_t;

/* Decides whether a route may serve this request (e.g. its kind can count
 * tokens); NULL accepts every route. */
typedef bool (*yr_route_filter_fn)(const yr_route_conf_t *r, void *arg);

/* Fills plan with the routes of model that serve vendor (empty or "auto":
 * every vendor; case-insensitive), whose kind is callable (callable may be
 * NULL) and that filter accepts. Returns 0 (plan->n may be 0) or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_route_plan(yr_route_plan_t *plan, yr_pool_t *pool,
                                                      const yr_model_conf_t *model, yr_str_t vendor,
                                                      bool (*callable)(yr_provider_kind_t),
                                                      yr_route_filter_fn filter, void *arg);

/* The route for the next attempt, or NULL when none is left. When *delay_ms
 * is 0 the attempt is counted and holds a slot on the route until
 * yr_peer_free; otherwise nothing is taken: wait *delay_ms, then ask again.
 * now_ms is monotonic (yr_health_now_ms). */
const yr_route_conf_t *yr_peer_get(yr_route_plan_t *plan, int64_t now_ms, uint64_t *delay_ms);

/* The outcome of an attempt of plan's request on a->route: releases its
 * slot and teaches the route's health. */
void yr_peer_free(yr_route_plan_t *plan, const yr_attempt_t *a, int64_t now_ms);

/* Whether the request may go on (another route, or this one again) after
 * attempt a failed: the model's retry_on, and never after a failure caused
 * by the request itself. */
bool yr_route_may_retry(const yr_route_plan_t *plan, const yr_attempt_t *a);

/* The full-jitter backoff before try number `tries` + 1 of one route:
 * uniform in [0, min(cap, base * 2^(tries-1))]. */
uint64_t yr_route_backoff_ms(uint32_t tries, uint64_t *rng);

#define YR_BACKOFF_BASE_MS 100
#define YR_BACKOFF_CAP_MS 2000
#define YR_BUSY_RECHECK_MS 20 /* a route at its cap is looked at again this often */

#endif
