/* Route choice for one request (see route.h). */
#include "route/route.h"

#include <errno.h>
#include <stdint.h>

#include "route/health.h"

int yr_route_plan(yr_route_plan_t *plan, yr_pool_t *pool, const yr_model_conf_t *model,
                  yr_str_t vendor, bool (*callable)(yr_provider_kind_t), yr_route_filter_fn filter,
                  void *arg)
{
    *plan = (yr_route_plan_t){.model = model};
    plan->pinned = vendor.len > 0 && !yr_str_ieq(vendor, YR_STR("auto"));
    static _Thread_local uint64_t seq;
    plan->rng = (++seq * 0x9e3779b97f4a7c15ull) ^ (uint64_t)(uintptr_t)&seq ^
                (uint64_t)yr_health_now_ms();
    if (model->nroutes == 0)
        return 0;
    plan->routes = yr_palloc(pool, model->nroutes * sizeof(*plan->routes));
    plan->slots = yr_pcalloc(pool, model->nroutes * sizeof(*plan->slots));
    if (plan->routes == NULL || plan->slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < model->nroutes; i++) {
        const yr_route_conf_t *r = &model->routes[i];
        if (plan->pinned && !yr_str_ieq(vendor, yr_str(r->provider->name)))
            continue;
        if (callable != NULL && !callable(r->provider->kind)) {
            plan->unsupported++;
            continue;
        }
        if (filter != NULL && !filter(r, arg))
            continue;
        plan->slots[plan->n].health = yr_health_of(r);
        plan->routes[plan->n++] = r;
    }
    if (plan->n > 0)
        yr_retry_budget_request(yr_health_now_ms());
    return 0;
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64: fine for spreading load, not for secrets */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t yr_route_backoff_ms(uint32_t tries, uint64_t *rng)
{
    uint64_t ceil = YR_BACKOFF_BASE_MS;
    for (uint32_t i = 1; i < tries && ceil < YR_BACKOFF_CAP_MS; i++)
        ceil *= 2;
    if (ceil > YR_BACKOFF_CAP_MS)
        ceil = YR_BACKOFF_CAP_MS;
    return next_rand(rng) % (ceil + 1);
}

/* A candidate as the strategy sees it. */
typedef struct {
    size_t i;
    yr_health_view_t v;
    bool has_health;
} cand_t;

/* Orders two ready candidates: untried before retried, headroom before
 * none, then the strategy (weighted is drawn separately). */
static int cmp(const yr_route_plan_t *plan, const cand_t *a, const cand_t *b)
{
    uint32_t ta = plan->slots[a->i].tries, tb = plan->slots[b->i].tries;
    if (ta != tb)
        return ta < tb ? -1 : 1;
    if (plan->model->headroom && a->v.low_headroom != b->v.low_headroom)
        return a->v.low_headroom ? 1 : -1;
    switch (plan->model->strategy) {
    case YR_STRATEGY_LEAST_BUSY:
        if (a->v.inflight != b->v.inflight)
            return a->v.inflight < b->v.inflight ? -1 : 1;
        break;
    case YR_STRATEGY_LEAST_LATENCY:
        /* A route never measured is tried first: that is how it gets a figure. */
        if (a->v.ewma_ttfb_ms != b->v.ewma_ttfb_ms)
            return a->v.ewma_ttfb_ms < b->v.ewma_ttfb_ms ? -1 : 1;
        break;
    case YR_STRATEGY_PRIORITY:
    case YR_STRATEGY_WEIGHTED: break;
    }
    return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
}

/* Among the ready candidates, the one the strategy picks. */
static size_t choose(yr_route_plan_t *plan, const cand_t *ready, size_t nready)
{
    size_t best = 0;
    for (size_t k = 1; k < nready; k++)
        if (cmp(plan, &ready[k], &ready[best]) < 0)
            best = k;
    const cand_t *b = &ready[best];
    /* The group that ties with the best on tries and headroom. */
    size_t group[64], ng = 0;
    for (size_t k = 0; k < nready && ng < 64; k++) {
        if (plan->slots[ready[k].i].tries == plan->slots[b->i].tries &&
            (!plan->model->headroom || ready[k].v.low_headroom == b->v.low_headroom))
            group[ng++] = k;
    }
    if (plan->model->strategy == YR_STRATEGY_WEIGHTED && ng > 1) {
        uint64_t total = 0;
        for (size_t k = 0; k < ng; k++)
            total += plan->routes[ready[group[k]].i]->weight;
        if (total == 0)
            return group[0];
        uint64_t x = next_rand(&plan->rng) % total;
        for (size_t k = 0; k < ng; k++) {
            uint64_t w = plan->routes[ready[group[k]].i]->weight;
            if (x < w)
                return group[k];
            x -= w;
        }
        return group[ng - 1];
    }
    if (plan->model->strategy == YR_STRATEGY_LEAST_LATENCY && ng > 1 &&
        next_rand(&plan->rng) % 20 == 0)
        return group[next_rand(&plan->rng) % ng]; /* explore: a recovered route gets noticed */
    return best;
}

const yr_route_conf_t *yr_peer_get(yr_route_plan_t *plan, int64_t now_ms, uint64_t *delay_ms)
{
    *delay_ms = 0;
    plan->retry_in_ms = 0;
    plan->busy = false;
    cand_t ready[64];
    for (int round = 0; round < 4; round++) { /* another worker may take a slot first */
        size_t nready = 0, open = SIZE_MAX;
        int64_t open_at = INT64_MAX, own_at = INT64_MAX, cool_at = INT64_MAX;
        bool busy = false;
        for (size_t i = 0; i < plan->n; i++) {
            yr_plan_slot_t *s = &plan->slots[i];
            if (s->done || s->taken)
                continue;
            cand_t c = {.i = i, .v = {.ewma_ttfb_ms = -1, .remaining_requests = -1,
                                      .remaining_tokens = -1}};
            if (s->health != NULL) {
                yr_health_view(s->health, now_ms, &c.v);
                c.has_health = true;
            }
            bool circuit = c.v.circuit == YR_CIRCUIT_OPEN ||
                           (c.v.circuit == YR_CIRCUIT_HALF_OPEN && c.v.probe_busy);
            int64_t cooling = c.v.circuit != YR_CIRCUIT_OPEN && c.v.not_before_ms > now_ms
                                  ? c.v.not_before_ms
                                  : 0;
            /* No requests left until the provider's reset: a call now would
             * be a 429. Wait for the reset like a cool-down (headroom). */
            if (plan->model->headroom && c.v.low_headroom && c.v.headroom_at_ms > cooling)
                cooling = c.v.headroom_at_ms;
            uint32_t cap = plan->routes[i]->max_concurrency;
            if (cooling > 0 && cooling >= s->not_before_ms) {
                if (cooling < cool_at)
                    cool_at = cooling;
            } else if (s->not_before_ms > now_ms) {
                if (s->not_before_ms < own_at)
                    own_at = s->not_before_ms;
            } else if (circuit) {
                int64_t t = c.v.not_before_ms > 0 ? c.v.not_before_ms : now_ms;
                if (t < open_at) {
                    open_at = t;
                    open = i;
                }
            } else if (cap > 0 && c.v.inflight >= cap) {
                busy = true;
            } else if (nready < 64) {
                ready[nready++] = c;
            }
        }
        size_t pick = SIZE_MAX;
        bool force = false;
        if (nready > 0) {
            pick = ready[choose(plan, ready, nready)].i;
        } else if (open != SIZE_MAX && own_at == INT64_MAX && cool_at == INT64_MAX && !busy) {
            /* Every route left is ejected: the one that recovers first is
             * tried anyway rather than failing every request. */
            pick = open;
            force = true;
        }
        if (pick == SIZE_MAX) {
            /* Nothing usable now. The request's own backoff between tries
             * is waited out (within its deadline); a cooling or busy route
             * only within the model's max_wait_ms. Otherwise: give up. */
            if (plan->wait_since_ms == 0)
                plan->wait_since_ms = now_ms;
            int64_t limit = plan->wait_since_ms + (int64_t)plan->model->max_wait_ms;
            int64_t at = own_at;
            if (cool_at < at && cool_at <= limit)
                at = cool_at;
            if (busy && now_ms < limit) {
                int64_t again = now_ms + YR_BUSY_RECHECK_MS < limit ? now_ms + YR_BUSY_RECHECK_MS
                                                                    : limit;
                if (again < at)
                    at = again;
            }
            if (at == INT64_MAX || (plan->deadline_ms != 0 && at >= plan->deadline_ms)) {
                plan->retry_in_ms = cool_at != INT64_MAX ? cool_at - now_ms : 0;
                plan->busy = busy;
                return NULL;
            }
            *delay_ms = (uint64_t)(at - now_ms);
            return plan->routes[0]; /* which one does not matter: ask again then */
        }
        yr_plan_slot_t *s = &plan->slots[pick];
        if (plan->attempts > 0 && !yr_retry_budget_spend(now_ms)) {
            plan->budget_exhausted = true;
            return NULL;
        }
        if (s->health != NULL) {
            int64_t ready_at;
            if (yr_health_take(s->health, now_ms, plan->routes[pick]->max_concurrency, force,
                               &ready_at, &s->probe) != YR_TAKE_OK) {
                if (plan->attempts > 0)
                    yr_retry_budget_refund(now_ms); /* no attempt was made */
                plan->busy = true;
                continue; /* lost a race: look again */
            }
        }
        s->taken = true;
        s->tries++;
        plan->attempts++;
        plan->wait_since_ms = 0;
        return plan->routes[pick];
    }
    return NULL;
}

/* The retry_on condition an attempt's failure is. */
static uint32_t retry_bit(const yr_attempt_t *a)
{
    switch (a->outcome) {
    case YR_OUT_RATE_LIMITED: return YR_RETRY_429;
    case YR_OUT_OVERLOADED:
    case YR_OUT_SERVER_ERROR:
        switch (a->status) {
        case 500: return YR_RETRY_500;
        case 502: return YR_RETRY_502;
        case 503: return YR_RETRY_503;
        case 504: return YR_RETRY_504;
        case 529: return YR_RETRY_529;
        default: return YR_RETRY_OTHER_5XX;
        }
    case YR_OUT_CONNECT: return YR_RETRY_CONNECT;
    case YR_OUT_TIMEOUT: return YR_RETRY_TIMEOUT;
    case YR_OUT_STREAM_CUT: return YR_RETRY_RESET;
    case YR_OUT_BAD_RESPONSE: return YR_RETRY_BAD_RESPONSE;
    default: return 0;
    }
}

bool yr_route_may_retry(const yr_route_plan_t *plan, const yr_attempt_t *a)
{
    switch (a->outcome) {
    case YR_OUT_OK:
    case YR_OUT_CLIENT_ERROR:
    case YR_OUT_CANCELLED:
    case YR_OUT_INTERNAL:
    case YR_OUT__COUNT: return false;
    case YR_OUT_QUOTA:
    case YR_OUT_AUTH: return true; /* another route may have budget or a good key */
    default: return (plan->model->retry_on & retry_bit(a)) != 0;
    }
}

void yr_peer_free(yr_route_plan_t *plan, const yr_attempt_t *a, int64_t now_ms)
{
    for (size_t i = 0; i < plan->n; i++) {
        yr_plan_slot_t *s = &plan->slots[i];
        if (plan->routes[i] != a->route || !s->taken)
            continue;
        s->taken = false;
        if (s->health != NULL) {
            yr_health_policy_t pol = {
                .failure_threshold = plan->model->failure_threshold,
                .cooldown_ms = plan->model->cooldown_ms,
                .never_eject = plan->model->nroutes <= 1,
            };
            uint64_t first = a->first_event_ns ? a->first_event_ns : a->head_ns;
            int64_t ttfb = first != 0 && first >= a->start_ns
                               ? (int64_t)((first - a->start_ns) / 1000000u)
                               : -1;
            /* the head's reset times count from when the head arrived */
            int64_t head_ms = a->head_ns != 0 ? (int64_t)(a->head_ns / 1000000u) : now_ms;
            yr_health_done(s->health, &pol, a->outcome, a->retry_after_ms, ttfb,
                           a->head_ns != 0 ? &a->head : NULL, head_ms, s->probe, now_ms);
            s->probe = 0;
        }
        /* Tried again by this request only for a transient failure of its
         * own (never quota, auth or a rate limit with a hint: the hint is
         * the route's cool-down), after a backoff. */
        bool again = yr_route_may_retry(plan, a) && a->outcome != YR_OUT_QUOTA &&
                     a->outcome != YR_OUT_AUTH && s->tries <= plan->model->retries;
        if (again)
            s->not_before_ms = now_ms + (int64_t)yr_route_backoff_ms(s->tries, &plan->rng);
        else
            s->done = true;
        return;
    }
}
