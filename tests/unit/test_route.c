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
    f->p[2] = (yr_provider_conf_t){.name = "vertex", .kind = YR_KIND_VERTEX};
    f->r[0] = (yr_route_conf_t){.provider = &f->p[1], .model = "claude"};
    f->r[1] = (yr_route_conf_t){.provider = &f->p[2], .model = "gemini"};
    f->r[2] = (yr_route_conf_t){.provider = &f->p[0], .model = "gpt-a"};
    f->r[3] = (yr_route_conf_t){.provider = &f->p[0], .model = "gpt-b"};
    f->m = (yr_model_conf_t){.id = "m", .routes = f->r, .nroutes = 4};
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
    assert_int_equal(plan.n, 3); /* vertex is not callable in this build */
    assert_int_equal(plan.unsupported, 1);
    uint64_t delay = 99;
    assert_ptr_equal(yr_peer_get(&plan, 0, &delay), &f.r[0]);
    assert_int_equal(delay, 0);
    yr_attempt_t a = {.route = &f.r[0], .outcome = YR_OUT_RATE_LIMITED, .status = 429};
    yr_peer_free(&plan, &a);
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
    yr_limits_release(l, adm, &used);
    yr_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_follow_the_machine),
        cmocka_unit_test(test_plan_keeps_config_order),
        cmocka_unit_test(test_plan_pins_a_vendor),
        cmocka_unit_test(test_plan_filter),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_admission_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
