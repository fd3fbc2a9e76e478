/* The seams of the request path that are pure: the request state machine,
 * the route plan and the first peer policy, the transports' shared pieces
 * (retry hints, classification) and the admission no-op. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/reqstate.h"
#include "limits/limits.h"
#include "providers/provider.h"
#include "route/health.h"
#include "route/route.h"

/* ---- the request state machine ------------------------------------------------ */

static void test_states_follow_the_machine(void **state)
{
    (void)state;
    /* the path of a streamed request that failed over once */
    const yr_reqstate_t path[] = {YR_RS_AUTH,    YR_RS_ADMIT,   YR_RS_FETCHING, YR_RS_ATTEMPT,
                                  YR_RS_BACKOFF, YR_RS_ATTEMPT, YR_RS_ATTEMPT,  YR_RS_STREAMING,
                                  YR_RS_DONE};
    for (size_t i = 0; i + 1 < sizeof(path) / sizeof(path[0]); i++)
        if (!yr_reqstate_allowed(path[i], path[i + 1]))
            fail_msg("%s -> %s refused", yr_reqstate_name(path[i]),
                     yr_reqstate_name(path[i + 1]));
    /* every state may end */
    for (int s = 0; s < YR_RS_DONE; s++)
        assert_true(yr_reqstate_allowed((yr_reqstate_t)s, YR_RS_DONE));
    /* what must never happen */
    assert_false(yr_reqstate_allowed(YR_RS_STREAMING, YR_RS_ATTEMPT)); /* no retry after the 200 */
    assert_false(yr_reqstate_allowed(YR_RS_STREAMING, YR_RS_BACKOFF));
    assert_false(yr_reqstate_allowed(YR_RS_DONE, YR_RS_ATTEMPT));
    assert_false(yr_reqstate_allowed(YR_RS_DONE, YR_RS_DONE)); /* a request ends once */
    assert_false(yr_reqstate_allowed(YR_RS_AUTH, YR_RS_ATTEMPT)); /* no call before admission */
    assert_false(yr_reqstate_allowed(YR_RS_ADMIT, YR_RS_STREAMING));
    assert_false(yr_reqstate_allowed(YR_RS_BACKOFF, YR_RS_STREAMING));
    assert_false(yr_reqstate_allowed(YR_RS__COUNT, YR_RS_DONE));
    assert_string_equal(yr_reqstate_name(YR_RS_BACKOFF), "BACKOFF");
    assert_string_equal(yr_reqstate_name(YR_RS__COUNT), "?");
}

/* ---- route plans and the first policy --------------------------------------------- */

typedef struct {
    yr_provider_conf_t p[3];
    yr_route_conf_t r[4];
    yr_model_conf_t m;
    yr_pool_t *pool;
} cfg_fx_t;

static void cfg_fx(cfg_fx_t *f)
{
    memset(f, 0, sizeof(*f));
    f->p[0] = (yr_provider_conf_t){.name = "openai", .kind = YR_KIND_OPENAI};
    f->p[1] = (yr_provider_conf_t){.name = "Anthropic", .kind = YR_KIND_ANTHROPIC};
    /* a kind this build cannot call */
    f->p[2] = (yr_provider_conf_t){.name = "future", .kind = YR_KIND__COUNT};
    f->r[0] = (yr_route_conf_t){.provider = &f->p[1], .model = "claude"};
    f->r[1] = (yr_route_conf_t){.provider = &f->p[2], .model = "gemini"};
    f->r[2] = (yr_route_conf_t){.provider = &f->p[0], .model = "gpt-a"};
    f->r[3] = (yr_route_conf_t){.provider = &f->p[0], .model = "gpt-b"};
    for (size_t i = 0; i < 4; i++)
        f->r[i].weight = 1;
    f->m = (yr_model_conf_t){.id = "m",
                             .routes = f->r,
                             .nroutes = 4,
                             .retry_on = YR_RETRY_DEFAULT,
                             .timeout_ms = 600000,
                             .max_wait_ms = 2000,
                             .failure_threshold = 5,
                             .cooldown_ms = 5000,
                             .headroom = true};
    yr_health_reset_all(); /* the table is the process's: each test starts clean */
    f->pool = yr_pool_create(1024);
    assert_non_null(f->pool);
}

static void test_plan_keeps_config_order(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t plan;
    assert_int_equal(yr_route_plan(&plan, f.pool, &f.m, YR_STR("auto"), yr_provider_callable,
                                   NULL, NULL),
                     0);
    assert_false(plan.pinned);
    assert_int_equal(plan.n, 3); /* "future" is not callable */
    assert_int_equal(plan.unsupported, 1);
    uint64_t delay = 99;
    assert_ptr_equal(yr_peer_get(&plan, 0, &delay), &f.r[0]);
    assert_int_equal(delay, 0);
    yr_attempt_t a = {.route = &f.r[0], .outcome = YR_OUT_RATE_LIMITED, .status = 429};
    yr_peer_free(&plan, &a, 0);
    assert_ptr_equal(yr_peer_get(&plan, 0, &delay), &f.r[2]);
    assert_ptr_equal(yr_peer_get(&plan, 0, &delay), &f.r[3]);
    assert_null(yr_peer_get(&plan, 0, &delay)); /* each route once */
    assert_null(yr_peer_get(&plan, 0, &delay));
    yr_pool_destroy(f.pool);
}

static void test_plan_pins_a_vendor(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t plan;
    assert_int_equal(yr_route_plan(&plan, f.pool, &f.m, YR_STR("OpenAI"), yr_provider_callable,
                                   NULL, NULL),
                     0);
    assert_true(plan.pinned);
    assert_int_equal(plan.n, 2);
    assert_ptr_equal(plan.routes[0], &f.r[2]);
    assert_ptr_equal(plan.routes[1], &f.r[3]);
    assert_int_equal(yr_route_plan(&plan, f.pool, &f.m, YR_STR("google"), yr_provider_callable,
                                   NULL, NULL),
                     0);
    assert_int_equal(plan.n, 0);
    assert_int_equal(plan.unsupported, 0);
    /* an empty header is automatic routing */
    assert_int_equal(yr_route_plan(&plan, f.pool, &f.m, YR_STR_NULL, NULL, NULL, NULL), 0);
    assert_false(plan.pinned);
    assert_int_equal(plan.n, 4);
    yr_pool_destroy(f.pool);
}

static bool only_anthropic(const yr_route_conf_t *r, void *arg)
{
    (*(int *)arg)++;
    return r->provider->kind == YR_KIND_ANTHROPIC;
}

static void test_plan_filter(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t plan;
    int calls = 0;
    assert_int_equal(yr_route_plan(&plan, f.pool, &f.m, YR_STR_NULL, yr_provider_callable,
                                   only_anthropic, &calls),
                     0);
    assert_int_equal(calls, 3); /* asked only about callable routes */
    assert_int_equal(plan.n, 1);
    assert_ptr_equal(plan.routes[0], &f.r[0]);
    /* no routes at all: no allocation needed */
    yr_model_conf_t empty = {.id = "e"};
    assert_int_equal(yr_route_plan(&plan, f.pool, &empty, YR_STR_NULL, NULL, NULL, NULL), 0);
    assert_int_equal(plan.n, 0);
    uint64_t d;
    assert_null(yr_peer_get(&plan, 0, &d));
    yr_pool_destroy(f.pool);
}

/* ---- policies across requests ---------------------------------------------------- */

/* Plans a request on f's model (the callable routes r[0], r[2], r[3]). */
static void plan(cfg_fx_t *f, yr_route_plan_t *p)
{
    assert_int_equal(yr_route_plan(p, f->pool, &f->m, YR_STR_NULL, yr_provider_callable, NULL,
                                   NULL),
                     0);
    assert_int_equal(p->n, 3);
}

/* Gets a route at once (no delay). */
static const yr_route_conf_t *get(yr_route_plan_t *p, int64_t now)
{
    uint64_t d = 99;
    const yr_route_conf_t *r = yr_peer_get(p, now, &d);
    if (r != NULL)
        assert_int_equal(d, 0);
    return r;
}

static void done(yr_route_plan_t *p, const yr_route_conf_t *r, yr_outcome_t o, int status,
                 int64_t retry_after_ms, int64_t now)
{
    yr_attempt_t a = {.route = r, .outcome = o, .status = status, .retry_after_ms = retry_after_ms};
    yr_peer_free(p, &a, now);
}

static void test_retry_after_holds_across_requests(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t a, b, c;
    plan(&f, &a);
    assert_ptr_equal(get(&a, 1000), &f.r[0]);
    done(&a, &f.r[0], YR_OUT_RATE_LIMITED, 429, 30000, 1000);
    assert_true(yr_route_may_retry(&a, &(yr_attempt_t){.outcome = YR_OUT_RATE_LIMITED}));
    assert_ptr_equal(get(&a, 1000), &f.r[2]); /* failover at once */
    done(&a, &f.r[2], YR_OUT_OK, 200, -1, 1010);
    /* the next request does not call the cooling route before its time */
    plan(&f, &b);
    assert_ptr_equal(get(&b, 20000), &f.r[2]);
    done(&b, &f.r[2], YR_OUT_OK, 200, -1, 20010);
    /* after it, the first route is first again */
    plan(&f, &c);
    assert_ptr_equal(get(&c, 31000), &f.r[0]);
    done(&c, &f.r[0], YR_OUT_OK, 200, -1, 31000);
    yr_pool_destroy(f.pool);
}

static void test_all_cooling_waits_or_fails_fast(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t a, b;
    plan(&f, &a);
    const int64_t hint[] = {1500, 60000, 90000};
    for (size_t i = 0; i < 3; i++) {
        const yr_route_conf_t *r = get(&a, 0);
        assert_non_null(r);
        done(&a, r, YR_OUT_RATE_LIMITED, 429, hint[i], 0);
    }
    assert_null(get(&a, 0)); /* each route once */
    /* a new request waits for the soonest route within max_wait_ms ... */
    plan(&f, &b);
    uint64_t d = 0;
    assert_non_null(yr_peer_get(&b, 100, &d));
    assert_int_equal(d, 1400);
    assert_ptr_equal(get(&b, 1500), &f.r[0]); /* and gets it when it is back */
    done(&b, &f.r[0], YR_OUT_RATE_LIMITED, 429, 120000, 1500);
    /* ... but not past it: then it says when to come back */
    assert_null(yr_peer_get(&b, 1500, &d));
    assert_int_equal(b.retry_in_ms, 60000 - 1500);
    yr_pool_destroy(f.pool);
}

static void test_circuit_opens_probes_and_closes(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.failure_threshold = 2;
    f.m.cooldown_ms = 1000;
    yr_route_plan_t p;
    for (int i = 0; i < 2; i++) {
        plan(&f, &p);
        assert_ptr_equal(get(&p, 0), &f.r[0]);
        done(&p, &f.r[0], YR_OUT_SERVER_ERROR, 500, -1, 0);
    }
    yr_route_health_t *h = yr_health_of(&f.r[0]);
    yr_health_view_t v;
    yr_health_view(h, 10, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_OPEN);
    assert_int_equal(v.ejections, 1);
    plan(&f, &p);
    assert_ptr_equal(get(&p, 500), &f.r[2]); /* ejected: skipped */
    done(&p, &f.r[2], YR_OUT_OK, 200, -1, 500);
    /* cool-down over: one probe; a concurrent request does not pile on */
    yr_route_plan_t probe, other;
    plan(&f, &probe);
    plan(&f, &other);
    assert_ptr_equal(get(&probe, 1000), &f.r[0]);
    assert_ptr_equal(get(&other, 1000), &f.r[2]);
    /* the probe fails: open again, for twice as long */
    done(&probe, &f.r[0], YR_OUT_SERVER_ERROR, 502, -1, 1100);
    yr_health_view(h, 1100, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_OPEN);
    assert_int_equal(v.not_before_ms, 1100 + 2000);
    plan(&f, &p);
    assert_ptr_equal(get(&p, 3100), &f.r[0]); /* the next probe succeeds */
    done(&p, &f.r[0], YR_OUT_OK, 200, -1, 3100);
    yr_health_view(h, 3100, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_CLOSED);
    assert_int_equal(v.consecutive_failures, 0);
    yr_pool_destroy(f.pool);
}

static void test_only_the_probe_decides(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.failure_threshold = 1;
    f.m.cooldown_ms = 1000;
    yr_route_plan_t old, p, probe;
    plan(&f, &old);
    assert_ptr_equal(get(&old, 0), &f.r[0]); /* in flight before the ejection */
    plan(&f, &p);
    assert_ptr_equal(get(&p, 0), &f.r[0]);
    done(&p, &f.r[0], YR_OUT_SERVER_ERROR, 500, -1, 10); /* ejected until 1010 */
    plan(&f, &probe);
    assert_ptr_equal(get(&probe, 1010), &f.r[0]); /* the half-open probe */
    done(&old, &f.r[0], YR_OUT_OK, 200, -1, 1020); /* the old attempt ends well: no verdict */
    yr_health_view_t v;
    yr_health_view(yr_health_of(&f.r[0]), 1020, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_HALF_OPEN);
    done(&probe, &f.r[0], YR_OUT_OK, 200, -1, 1030); /* the probe's does */
    yr_health_view(yr_health_of(&f.r[0]), 1030, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_CLOSED);
    /* every route ejected: the forced pick is a probe too, and its success closes */
    yr_health_reset_all();
    for (int i = 0; i < 3; i++) {
        plan(&f, &p);
        const yr_route_conf_t *r = &f.r[i == 0 ? 0 : i + 1];
        yr_route_health_t *h = yr_health_of(r);
        int64_t at;
        uint64_t tok;
        assert_int_equal(yr_health_take(h, 0, 0, false, &at, &tok), YR_TAKE_OK);
        yr_health_policy_t pol = {.failure_threshold = 1, .cooldown_ms = 10000};
        yr_health_done(h, &pol, YR_OUT_SERVER_ERROR, -1, -1, NULL, 0, tok, 0);
    }
    plan(&f, &p);
    const yr_route_conf_t *forced = get(&p, 100);
    assert_ptr_equal(forced, &f.r[0]);
    done(&p, forced, YR_OUT_OK, 200, -1, 110);
    yr_health_view(yr_health_of(&f.r[0]), 110, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_CLOSED);
    yr_pool_destroy(f.pool);
}

static void test_last_route_is_never_ejected(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.nroutes = 1; /* r[0] only */
    f.m.failure_threshold = 1;
    yr_route_plan_t p;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(yr_route_plan(&p, f.pool, &f.m, YR_STR_NULL, NULL, NULL, NULL), 0);
        assert_ptr_equal(get(&p, i), &f.r[0]);
        done(&p, &f.r[0], YR_OUT_CONNECT, 0, -1, i);
    }
    yr_health_view_t v;
    yr_health_view(yr_health_of(&f.r[0]), 10, &v);
    assert_int_equal(v.circuit, YR_CIRCUIT_CLOSED);
    assert_int_equal(v.consecutive_failures, 5);
    yr_pool_destroy(f.pool);
}

static void test_every_route_ejected_still_serves(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.failure_threshold = 1;
    f.m.cooldown_ms = 10000;
    yr_route_plan_t p;
    plan(&f, &p);
    for (int i = 0; i < 3; i++) {
        const yr_route_conf_t *r = get(&p, i);
        assert_non_null(r);
        done(&p, r, YR_OUT_SERVER_ERROR, 500, -1, i);
    }
    /* all three open: the one that recovers first is tried rather than none */
    plan(&f, &p);
    assert_ptr_equal(get(&p, 100), &f.r[0]);
    yr_pool_destroy(f.pool);
}

static void test_retries_of_one_route_back_off(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.retries = 1;
    f.m.nroutes = 1;
    yr_route_plan_t p;
    assert_int_equal(yr_route_plan(&p, f.pool, &f.m, YR_STR_NULL, NULL, NULL, NULL), 0);
    assert_ptr_equal(get(&p, 0), &f.r[0]);
    done(&p, &f.r[0], YR_OUT_OVERLOADED, 529, -1, 0);
    uint64_t d = 0;
    const yr_route_conf_t *r = yr_peer_get(&p, 0, &d);
    assert_non_null(r);
    assert_true(d <= YR_BACKOFF_BASE_MS);
    /* full jitter may draw 0 ms: then that call already took the route */
    if (d > 0)
        r = get(&p, (int64_t)d);
    assert_ptr_equal(r, &f.r[0]); /* the second try */
    done(&p, &f.r[0], YR_OUT_OVERLOADED, 529, -1, (int64_t)d);
    assert_null(yr_peer_get(&p, 5000, &d)); /* retries spent */
    /* a request error is never retried, not even once */
    assert_false(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_CLIENT_ERROR}));
    /* the backoff is full jitter under a doubling cap */
    uint64_t rng = 7, max = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t b = yr_route_backoff_ms(3, &rng);
        assert_true(b <= 4 * YR_BACKOFF_BASE_MS);
        max = b > max ? b : max;
        assert_true(yr_route_backoff_ms(30, &rng) <= YR_BACKOFF_CAP_MS);
    }
    assert_true(max > 2 * YR_BACKOFF_BASE_MS);
    yr_pool_destroy(f.pool);
}

static void test_retry_on_is_the_models(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.retry_on = YR_RETRY_429 | YR_RETRY_CONNECT;
    yr_route_plan_t p;
    plan(&f, &p);
    assert_true(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_RATE_LIMITED, .status = 429}));
    assert_true(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_CONNECT}));
    assert_false(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_SERVER_ERROR, .status = 500}));
    assert_false(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_OVERLOADED, .status = 529}));
    assert_false(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_STREAM_CUT}));
    /* quota and auth fail over whatever the list says: another route may do */
    assert_true(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_QUOTA, .status = 429}));
    assert_true(yr_route_may_retry(&p, &(yr_attempt_t){.outcome = YR_OUT_AUTH, .status = 401}));
    /* quota cools its route for a long time */
    assert_ptr_equal(get(&p, 0), &f.r[0]);
    done(&p, &f.r[0], YR_OUT_QUOTA, 429, -1, 0);
    yr_health_view_t v;
    yr_health_view(yr_health_of(&f.r[0]), 0, &v);
    assert_int_equal(v.not_before_ms, YR_HEALTH_QUOTA_COOLDOWN_MS);
    yr_pool_destroy(f.pool);
}

static void test_strategies(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t p;
    /* weighted: r[0] 3, r[2] 1, r[3] 0 (last resort) */
    f.m.strategy = YR_STRATEGY_WEIGHTED;
    f.r[0].weight = 3;
    f.r[2].weight = 1;
    f.r[3].weight = 0;
    int count[4] = {0};
    for (int i = 0; i < 1000; i++) {
        plan(&f, &p);
        const yr_route_conf_t *r = get(&p, 0);
        count[r - f.r]++;
        done(&p, r, YR_OUT_OK, 200, -1, 0);
    }
    assert_true(count[0] > 650 && count[0] < 850);
    assert_int_equal(count[0] + count[2], 1000);

    /* least-busy: a route with a request in flight is passed over */
    yr_health_reset_all();
    f.m.strategy = YR_STRATEGY_LEAST_BUSY;
    yr_route_plan_t busy;
    plan(&f, &busy);
    assert_ptr_equal(get(&busy, 0), &f.r[0]);
    plan(&f, &p);
    assert_ptr_equal(get(&p, 0), &f.r[2]);
    done(&p, &f.r[2], YR_OUT_OK, 200, -1, 0);
    done(&busy, &f.r[0], YR_OUT_OK, 200, -1, 0);

    /* least-latency: unmeasured first, then the fastest */
    yr_health_reset_all();
    f.m.strategy = YR_STRATEGY_LEAST_LATENCY;
    const int64_t ttfb[3] = {300, 40, 120};
    const yr_route_conf_t *order[3] = {&f.r[0], &f.r[2], &f.r[3]};
    for (int i = 0; i < 3; i++) {
        yr_route_health_t *h = yr_health_of(order[i]);
        int64_t at;
        uint64_t probe;
        assert_int_equal(yr_health_take(h, 0, 0, false, &at, &probe), YR_TAKE_OK);
        yr_health_policy_t pol = {.failure_threshold = 5, .cooldown_ms = 1000};
        yr_health_done(h, &pol, YR_OUT_OK, -1, ttfb[i], NULL, 0, probe, 0);
    }
    /* 1 in 20 picks explore (among 3 routes): over 200 picks, none explored
     * away from the fastest 1 time in ~800 runs; over 1,000, never */
    int fastest = 0;
    for (int i = 0; i < 1000; i++) {
        plan(&f, &p);
        const yr_route_conf_t *r = get(&p, 0);
        fastest += r == &f.r[2];
        yr_peer_free(&p, &(yr_attempt_t){.route = r, .outcome = YR_OUT_CANCELLED}, 0);
    }
    assert_true(fastest >= 850 && fastest < 1000); /* mostly the fastest, a little exploration */
    yr_pool_destroy(f.pool);
}

static void test_headroom_moves_traffic_before_a_429(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    yr_route_plan_t p;
    plan(&f, &p);
    assert_ptr_equal(get(&p, 0), &f.r[0]);
    yr_attempt_t a = {.route = &f.r[0], .outcome = YR_OUT_OK, .status = 200, .retry_after_ms = -1,
                      .head_ns = 1,
                      .head = {.status = 200, .retry_after_ms = -1, .remaining_requests = 0,
                               .remaining_tokens = -1, .reset_requests_ms = 5000,
                               .reset_tokens_ms = -1}};
    yr_peer_free(&p, &a, 0);
    /* the provider said no requests are left on r[0] until 5 s: r[2] first */
    plan(&f, &p);
    assert_ptr_equal(get(&p, 100), &f.r[2]);
    done(&p, &f.r[2], YR_OUT_OK, 200, -1, 100);
    /* when nothing else is left, it is waited for like a cool-down: a call
     * before the reset would be a 429 */
    assert_ptr_equal(get(&p, 100), &f.r[3]);
    done(&p, &f.r[3], YR_OUT_SERVER_ERROR, 500, -1, 100);
    uint64_t d = 0;
    assert_null(yr_peer_get(&p, 100, &d)); /* 4.9 s is past max_wait_ms */
    assert_int_equal(p.retry_in_ms, 4900);
    /* without headroom it is just the next route */
    f.m.headroom = false;
    plan(&f, &p);
    assert_ptr_equal(get(&p, 100), &f.r[0]);
    done(&p, &f.r[0], YR_OUT_OK, 200, -1, 100);
    f.m.headroom = true;
    /* after the reset it is first again */
    plan(&f, &p);
    assert_ptr_equal(get(&p, 5000), &f.r[0]);
    yr_pool_destroy(f.pool);
}

static void test_concurrency_cap_queues_briefly(void **state)
{
    (void)state;
    cfg_fx_t f;
    cfg_fx(&f);
    f.m.nroutes = 1;
    f.r[0].max_concurrency = 1;
    f.m.max_wait_ms = 50;
    yr_route_plan_t a, b;
    assert_int_equal(yr_route_plan(&a, f.pool, &f.m, YR_STR_NULL, NULL, NULL, NULL), 0);
    assert_int_equal(yr_route_plan(&b, f.pool, &f.m, YR_STR_NULL, NULL, NULL, NULL), 0);
    assert_ptr_equal(get(&a, 1000), &f.r[0]);
    uint64_t d = 0;
    assert_non_null(yr_peer_get(&b, 1000, &d)); /* full: look again soon */
    assert_int_equal(d, YR_BUSY_RECHECK_MS);
    assert_non_null(yr_peer_get(&b, 1040, &d));
    assert_null(yr_peer_get(&b, 1060, &d)); /* waited max_wait_ms: give up */
    assert_true(b.busy);
    done(&a, &f.r[0], YR_OUT_OK, 200, -1, 1070);
    assert_int_equal(yr_route_plan(&b, f.pool, &f.m, YR_STR_NULL, NULL, NULL, NULL), 0);
    assert_ptr_equal(get(&b, 1070), &f.r[0]);
    yr_pool_destroy(f.pool);
}

static void test_retry_budget(void **state)
{
    (void)state;
    yr_health_reset_all();
    const int64_t t = 100000;
    for (int i = 0; i < 100; i++)
        yr_retry_budget_request(t);
    int spent = 0;
    while (spent < 1000 && yr_retry_budget_spend(t))
        spent++;
    assert_int_equal(spent, YR_RETRY_BUDGET_FLOOR + 100 * YR_RETRY_BUDGET_PCT / 100);
    /* the window slides: ten seconds later the budget is back */
    assert_true(yr_retry_budget_spend(t + 10000));
    yr_health_reset_all();
}

/* ---- transports' shared pieces -------------------------------------------------------- */

static void test_retry_after(void **state)
{
    (void)state;
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    const int64_t now = 784111777;
    assert_int_equal(yr_retry_after_ms(YR_STR("30"), YR_STR_NULL, now), 30000);
    assert_int_equal(yr_retry_after_ms(YR_STR(" 0 "), YR_STR_NULL, now), 0);
    assert_int_equal(yr_retry_after_ms(YR_STR("30"), YR_STR("1500"), now), 1500); /* ms wins */
    assert_int_equal(yr_retry_after_ms(YR_STR_NULL, YR_STR("20.5"), now), 20);
    assert_int_equal(yr_retry_after_ms(YR_STR("Sun, 06 Nov 1994 08:50:07 GMT"), YR_STR_NULL, now),
                     30000);
    assert_int_equal(yr_retry_after_ms(YR_STR("Sun, 06 Nov 1994 08:49:00 GMT"), YR_STR_NULL, now),
                     0); /* in the past: now */
    assert_int_equal(yr_retry_after_ms(YR_STR("soon"), YR_STR_NULL, now), -1);
    assert_int_equal(yr_retry_after_ms(YR_STR("-5"), YR_STR_NULL, now), -1);
    assert_int_equal(yr_retry_after_ms(YR_STR("1e9"), YR_STR_NULL, now), -1);
    assert_int_equal(yr_retry_after_ms(YR_STR("99999999999999999999"), YR_STR_NULL, now), -1);
    assert_int_equal(yr_retry_after_ms(YR_STR("Sun, 06 Foo 1994 08:50:07 GMT"), YR_STR_NULL, now),
                     -1);
    assert_int_equal(yr_retry_after_ms(YR_STR_NULL, YR_STR_NULL, now), -1);
}

static void test_classify(void **state)
{
    (void)state;
    yr_provider_error_t none = {.retry_after_ms = -1};
    assert_int_equal(yr_transport_classify_status(429, &none), YR_OUT_RATE_LIMITED);
    assert_int_equal(yr_transport_classify_status(529, &none), YR_OUT_OVERLOADED);
    assert_int_equal(yr_transport_classify_status(503, &none), YR_OUT_OVERLOADED);
    assert_int_equal(yr_transport_classify_status(500, &none), YR_OUT_SERVER_ERROR);
    assert_int_equal(yr_transport_classify_status(404, &none), YR_OUT_SERVER_ERROR);
    assert_int_equal(yr_transport_classify_status(401, &none), YR_OUT_AUTH);
    assert_int_equal(yr_transport_classify_status(504, &none), YR_OUT_TIMEOUT);
    assert_int_equal(yr_transport_classify_status(400, &none), YR_OUT_CLIENT_ERROR);
    assert_int_equal(yr_transport_classify_status(422, NULL), YR_OUT_CLIENT_ERROR);
    yr_provider_error_t quota = {.code = "insufficient_quota", .retry_after_ms = -1};
    assert_int_equal(yr_transport_classify_status(429, &quota), YR_OUT_QUOTA);
    yr_provider_error_t billing = {.type = "billing_error", .retry_after_ms = -1};
    assert_int_equal(yr_transport_classify_status(400, &billing), YR_OUT_QUOTA);
    assert_true(yr_outcome_retryable(YR_OUT_RATE_LIMITED));
    assert_true(yr_outcome_retryable(YR_OUT_QUOTA)); /* another route has its own quota */
    assert_false(yr_outcome_retryable(YR_OUT_CLIENT_ERROR));
    assert_false(yr_outcome_retryable(YR_OUT_OK));
    assert_false(yr_outcome_retryable(YR_OUT_CANCELLED));
    for (int o = 0; o < YR_OUT__COUNT; o++)
        assert_string_not_equal(yr_outcome_name((yr_outcome_t)o), "unknown");
}

static void test_admission_noop(void **state)
{
    (void)state;
    yr_limits_t *l;
    assert_int_equal(yr_limits_init(&l), 0);
    yr_admit_req_t r = {.who = {.key_id = 7}, .model = YR_STR("m"), .max_tokens = 100};
    yr_admission_t *adm = (yr_admission_t *)1;
    yr_admit_res_t res;
    assert_int_equal(yr_limits_admit(l, &r, NULL, NULL, &adm, &res), 0);
    assert_null(adm);
    assert_int_equal(res.retry_after_ms, -1);
    yr_usage_t used = {.prompt_tokens = 3, .present = true};
    yr_limits_release(l, adm, &used, 0);
    yr_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_follow_the_machine),
        cmocka_unit_test(test_plan_keeps_config_order),
        cmocka_unit_test(test_plan_pins_a_vendor),
        cmocka_unit_test(test_plan_filter),
        cmocka_unit_test(test_retry_after_holds_across_requests),
        cmocka_unit_test(test_all_cooling_waits_or_fails_fast),
        cmocka_unit_test(test_circuit_opens_probes_and_closes),
        cmocka_unit_test(test_only_the_probe_decides),
        cmocka_unit_test(test_last_route_is_never_ejected),
        cmocka_unit_test(test_every_route_ejected_still_serves),
        cmocka_unit_test(test_retries_of_one_route_back_off),
        cmocka_unit_test(test_retry_on_is_the_models),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_headroom_moves_traffic_before_a_429),
        cmocka_unit_test(test_concurrency_cap_queues_briefly),
        cmocka_unit_test(test_retry_budget),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_admission_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
