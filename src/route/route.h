/* Route choice for one request, behind nginx's peer.get / peer.free seam:
 *
 *   yr_route_plan()  the candidate routes of a model (pinned vendor,
 *                    callable kinds), in the request's pool
 *   yr_peer_get()    the route of the next attempt, and how long to wait
 *                    before it (a BACKOFF), or none left
 *   yr_peer_free()   the attempt's outcome, fed back: route health, cool
 *                    downs and Retry-After scheduling live behind it
 *
 * The policy here is the first one: config order, each route once, no
 * waiting. Strategies (weighted, least-latency, headroom-aware), health
 * across requests and retries of one route plug in behind these three calls
 * without the proxy changing. Pure functions over the plan: unit-testable. */
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
    uint64_t start_ns, head_ns, first_event_ns, end_ns; /* uv_hrtime; 0: never */
} yr_attempt_t;

typedef struct {
    const yr_model_conf_t *model;
    const yr_route_conf_t **routes; /* candidates, in the pool */
    size_t n;
    size_t next;      /* the policy's cursor */
    size_t unsupported; /* routes left out because this build cannot call their kind */
    bool pinned;
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

/* The route for the next attempt, or NULL when none is left. *delay_ms is
 * how long to wait before starting it (0: at once). now_ms is monotonic. */
const yr_route_conf_t *yr_peer_get(yr_route_plan_t *plan, uint64_t now_ms, uint64_t *delay_ms);

/* The outcome of an attempt of plan's request on a->route. */
void yr_peer_free(yr_route_plan_t *plan, const yr_attempt_t *a);

#endif
