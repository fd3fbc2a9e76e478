/* Per-key limits (limits.c), the price table and costs (price.c), and the
 * policy text both the CLI and the admin API parse (keyspec.c). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "limits/limits.h"
#include "limits/price.h"
#include "store/keyspec.h"

static yr_key_info_t key(int64_t id)
{
    yr_key_info_t k = {.id = id};
    snprintf(k.name, sizeof(k.name), "k%lld", (long long)id);
    return k;
}

static int admit(yr_limits_t *l, const yr_key_info_t *k, int64_t max_tokens, int64_t max_cost,
                 yr_admission_t **adm, yr_admit_res_t *res)
{
    yr_admit_req_t r = {.who = {.key_id = k->id, .key = k},
                        .model = YR_STR("m"),
                        .max_tokens = max_tokens,
                        .input_tokens = 10,
                        .max_cost_micros = max_cost};
    return yr_limits_admit(l, &r, NULL, NULL, adm, res);
}

static void test_rpm_exact_at_the_boundary(void **state)
{
    (void)state;
    yr_limits_reset_all();
    yr_limits_t *l;
    assert_int_equal(yr_limits_init(&l), 0);
    yr_key_info_t k = key(1);
    k.policy.rpm = 5;
    yr_admission_t *adm[6];
    yr_admit_res_t res;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(admit(l, &k, 10, 0, &adm[i], &res), 0);
        assert_int_equal(res.requests.limit, 5);
        assert_int_equal(res.requests.remaining, 4 - i);
        yr_limits_release(l, adm[i], NULL, 0); /* ended requests still count in the minute */
    }
    assert_int_equal(admit(l, &k, 10, 0, &adm[5], &res), -EAGAIN);
    assert_string_equal(res.limit, "rpm");
    assert_int_equal(res.requests.remaining, 0);
    assert_true(res.retry_after_ms > 0 && res.retry_after_ms <= 60000);
    /* another key is not affected */
    yr_key_info_t other = key(2);
    other.policy.rpm = 1;
    assert_int_equal(admit(l, &other, 10, 0, &adm[0], &res), 0);
    yr_limits_release(l, adm[0], NULL, 0);
    /* the master key is never limited */
    yr_admit_req_t m = {.who = {.master = true}};
    assert_int_equal(yr_limits_admit(l, &m, NULL, NULL, &adm[0], &res), 0);
    assert_null(adm[0]);
    yr_limits_free(l);
}

static void test_tpm_counts_real_usage(void **state)
{
    (void)state;
    yr_limits_reset_all();
    yr_limits_t *l;
    assert_int_equal(yr_limits_init(&l), 0);
    yr_key_info_t k = key(3);
    k.policy.tpm = 1000;
    yr_admission_t *a, *b;
    yr_admit_res_t res;
    /* a request alone larger than the limit goes through when nothing is counted */
    assert_int_equal(admit(l, &k, 5000, 0, &a, &res), 0);
    /* while it is in flight its estimate counts */
    assert_int_equal(admit(l, &k, 100, 0, &b, &res), -EAGAIN);
    assert_string_equal(res.limit, "tpm");
    /* it used far less: the real count replaces the estimate */
    yr_usage_t used = {.prompt_tokens = 100, .completion_tokens = 50};
    yr_limits_release(l, a, &used, 0);
    assert_int_equal(admit(l, &k, 100, 0, &b, &res), 0);
    assert_int_equal(res.tokens.remaining, 1000 - 150 - 110);
    used = (yr_usage_t){.prompt_tokens = 700, .completion_tokens = 100};
    yr_limits_release(l, b, &used, 0);
    assert_int_equal(admit(l, &k, 100, 0, &b, &res), -EAGAIN); /* 950 used + 110 > 1000 */
    yr_limits_free(l);
}

static void test_concurrency(void **state)
{
    (void)state;
    yr_limits_reset_all();
    yr_limits_t *l;
    assert_int_equal(yr_limits_init(&l), 0);
    yr_key_info_t k = key(4);
    k.policy.max_concurrency = 2;
    yr_admission_t *a[3];
    yr_admit_res_t res;
    assert_int_equal(admit(l, &k, 1, 0, &a[0], &res), 0);
    assert_int_equal(admit(l, &k, 1, 0, &a[1], &res), 0);
    assert_int_equal(admit(l, &k, 1, 0, &a[2], &res), -EAGAIN);
    assert_string_equal(res.limit, "concurrency");
    yr_limits_release(l, a[0], NULL, 0);
    assert_int_equal(admit(l, &k, 1, 0, &a[2], &res), 0);
    yr_limits_release(l, a[1], NULL, 0);
    yr_limits_release(l, a[2], NULL, 0);
    yr_limits_free(l);
}

typedef struct {
    yr_limits_t *l;
    const yr_key_info_t *k;
    int admitted;
} race_t;

static void *racer(void *arg)
{
    race_t *r = arg;
    yr_admission_t *adm;
    yr_admit_res_t res;
    if (admit(r->l, r->k, 100, 1000000 /* at most $1 */, &adm, &res) == 0) {
        r->admitted = 1;
        /* each really costs $1, settled after every racer has decided */
        yr_usage_t used = {.prompt_tokens = 10, .completion_tokens = 100};
        yr_limits_release(r->l, adm, &used, 1000000);
    }
    return NULL;
}

static void test_budget_race(void **state)
{
    (void)state;
    yr_limits_reset_all();
    yr_limits_t *l;
    assert_int_equal(yr_limits_init(&l), 0);
    yr_key_info_t k = key(5);
    k.policy.budget_micros[YR_BUDGET_DAY] = 10 * 1000000; /* $10 */
    k.spent_micros[YR_BUDGET_DAY] = 500000;               /* $0.50 spent already */
    enum { N = 50 };
    race_t r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (race_t){.l = l, .k = &k};
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r[i]), 0);
    }
    int admitted = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        admitted += r[i].admitted;
    }
    /* $9.50 left at $1 each: 9 fit, one more may pass while others are in flight */
    assert_true(admitted >= 9 && admitted <= 10);
    yr_admission_t *adm;
    yr_admit_res_t res;
    assert_int_equal(admit(l, &k, 100, 1000000, &adm, &res), -EAGAIN);
    assert_string_equal(res.limit, "budget_day");
    assert_true(res.retry_after_ms > 0 && res.retry_after_ms <= 86400 * 1000);
    yr_limits_free(l);
}

static void test_windows(void **state)
{
    (void)state;
    const int64_t t = 1764633600; /* 2025-12-02T00:00:00Z */
    assert_int_equal(yr_limits_window_left_s(YR_BUDGET_DAY, t), 86400);
    assert_int_equal(yr_limits_window_left_s(YR_BUDGET_DAY, t + 3600), 82800);
    assert_int_equal(yr_limits_window_left_s(YR_BUDGET_MONTH, t), 30 * 86400); /* to Jan 1 */
    assert_int_equal(yr_limits_window_left_s(YR_BUDGET_TOTAL, t), -1);
    assert_int_equal(yr_limits_day(t) + 1, yr_limits_day(t + 86400));
    assert_int_equal(yr_limits_month(t) + 1, yr_limits_month(t + 30 * 86400));
}

static void test_patterns(void **state)
{
    (void)state;
    yr_key_policy_t p = {0};
    assert_true(yr_key_allows_model(&p, YR_STR("anything")));
    strcpy(p.allowed_models, "gpt-4o*, claude-*-haiku*,exact");
    assert_true(yr_key_allows_model(&p, YR_STR("gpt-4o")));
    assert_true(yr_key_allows_model(&p, YR_STR("gpt-4o-mini")));
    assert_true(yr_key_allows_model(&p, YR_STR("claude-3-5-haiku-latest")));
    assert_true(yr_key_allows_model(&p, YR_STR("exact")));
    assert_false(yr_key_allows_model(&p, YR_STR("exactly")));
    assert_false(yr_key_allows_model(&p, YR_STR("gpt-4")));
    assert_false(yr_key_allows_model(&p, YR_STR("claude-sonnet-4")));
    assert_false(yr_key_allows_model(&p, YR_STR("GPT-4o"))); /* model ids are case sensitive */
    strcpy(p.allowed_vendors, "openai,Anthropic");
    assert_true(yr_key_allows_vendor(&p, YR_STR("anthropic")));
    assert_false(yr_key_allows_vendor(&p, YR_STR("google")));
}

static void test_costs_follow_each_providers_token_rules(void **state)
{
    (void)state;
    yr_price_t p;
    /* OpenAI: prompt_tokens includes the cached ones, billed at the cached price */
    assert_true(yr_price_builtin("gpt-4o-2024-08-06", &p));
    yr_usage_t u = {.prompt_tokens = 1000000, .cached_tokens = 400000, .completion_tokens = 100000};
    /* 600k x 2.50 + 400k x 1.25 + 100k x 10 = 1.5 + 0.5 + 1.0 USD */
    assert_int_equal(yr_cost_micros(&p, &u), 3000000);
    assert_true(yr_price_builtin("gpt-4o-mini", &p));
    assert_int_equal(p.input, 150000); /* not gpt-4o's: the longest prefix wins */
    /* Anthropic, normalised (prompt = input + cache reads + cache writes) */
    assert_true(yr_price_builtin("claude-sonnet-4-20250514", &p));
    u = (yr_usage_t){.prompt_tokens = 10000 + 50000 + 20000, .cached_tokens = 50000,
                     .cache_write_tokens = 20000, .completion_tokens = 1000};
    /* 10k x 3 + 50k x 0.30 + 20k x 3.75 + 1k x 15 = 0.03 + 0.015 + 0.075 + 0.015 */
    assert_int_equal(yr_cost_micros(&p, &u), 135000);
    /* 1-hour cache writes at 2x input, the rest of the writes at 1.25x */
    u = (yr_usage_t){.prompt_tokens = 30000, .cache_write_tokens = 30000,
                     .cache_write_1h_tokens = 10000};
    assert_true(yr_price_builtin("claude-sonnet-4-5", &p));
    assert_int_equal(yr_cost_micros(&p, &u), 20000 * 3750 / 1000 + 10000 * 6000 / 1000);
    /* Gemini: reasoning is part of completion, priced as output */
    assert_true(yr_price_builtin("models/gemini-2.5-flash", &p));
    u = (yr_usage_t){.prompt_tokens = 1000, .completion_tokens = 300, .reasoning_tokens = 200};
    assert_int_equal(yr_cost_micros(&p, &u), 300 /* 1k x 0.30 */ + 750 /* 300 x 2.50 */);
    /* long context: the whole prompt at the higher tier */
    assert_true(yr_price_builtin("gemini-2.5-pro", &p));
    u = (yr_usage_t){.prompt_tokens = 300000, .completion_tokens = 0};
    assert_int_equal(yr_cost_micros(&p, &u), 750000);
    /* inference-profile and namespaced ids find their family */
    assert_true(yr_price_builtin("us.anthropic.claude-3-5-haiku-20241022-v1:0", &p));
    assert_int_equal(p.input, 800000);
    assert_false(yr_price_builtin("my-local-llama", &p));
    /* never negative, even with inconsistent counts */
    u = (yr_usage_t){.prompt_tokens = 10, .cached_tokens = 50, .completion_tokens = -5};
    assert_true(yr_cost_micros(&p, &u) >= 0);
    assert_int_equal(yr_price_parse("2.50"), 2500000);
    assert_int_equal(yr_price_parse("0.075"), 75000);
    assert_int_equal(yr_price_parse("10"), 10000000);
    assert_int_equal(yr_price_parse("-1"), -1);
    assert_int_equal(yr_price_parse("1e3"), -1);
    assert_int_equal(yr_price_parse(""), -1);
}

static void test_keyspec(void **state)
{
    (void)state;
    yr_key_policy_t p = {0};
    char err[160];
    const int64_t now = 1000000;
    assert_int_equal(yr_keyspec_set(&p, "rpm", "60", now, err, sizeof(err)), 0);
    assert_int_equal(p.rpm, 60);
    assert_int_equal(yr_keyspec_set(&p, "budget_monthly", "12.5", now, err, sizeof(err)), 0);
    assert_int_equal(p.budget_micros[YR_BUDGET_MONTH], 12500000);
    assert_int_equal(yr_keyspec_set(&p, "expires_at", "30d", now, err, sizeof(err)), 0);
    assert_int_equal(p.expires_at, now + 30 * 86400);
    assert_int_equal(yr_keyspec_set(&p, "expires_at", "never", now, err, sizeof(err)), 0);
    assert_int_equal(p.expires_at, 0);
    assert_int_equal(yr_keyspec_set(&p, "metadata", "{\"team\":\"ml\"}", now, err, sizeof(err)), 0);
    assert_int_equal(yr_keyspec_set(&p, "metadata", "[1]", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "rpm", "-3", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "rpm", "ten", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "models", "a\nb", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "colour", "x", now, err, sizeof(err)), -ENOENT);
    assert_int_equal(yr_keyspec_set(&p, "models", "gpt-4o*,claude-*", now, err, sizeof(err)), 0);
    /* content logging: a retention needs the opt-in, which defaults it */
    assert_int_equal(yr_keyspec_set(&p, "log_retention", "1d", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "log_content", "maybe", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "log_content", "true", now, err, sizeof(err)), 0);
    assert_int_equal(p.log_retention_s, YR_CONTENT_RETENTION_DEF);
    assert_int_equal(yr_keyspec_set(&p, "log_retention", "91d", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "log_retention", "0", now, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_keyspec_set(&p, "log_retention", "12h", now, err, sizeof(err)), 0);
    assert_int_equal(p.log_retention_s, 12 * 3600);
    yr_key_info_t k = {.id = 7, .created_at = 1, .policy = p};
    strcpy(k.name, "ci");
    strcpy(k.prefix, "yr-abc");
    yr_buf_t b;
    yr_buf_init(&b, 65536);
    assert_int_equal(yr_keyspec_json(&k, &b), 0);
    assert_non_null(strstr(b.data, "\"models\":[\"gpt-4o*\",\"claude-*\"]"));
    assert_non_null(strstr(b.data, "\"monthly\":12.5"));
    assert_non_null(strstr(b.data, "\"rpm\":60"));
    assert_non_null(strstr(b.data, "\"log_content\":true,\"log_retention\":43200"));
    assert_non_null(strstr(b.data, "\"metadata\":{\"team\":\"ml\"}"));
    assert_null(strstr(b.data, "\"key\"")); /* never a secret */
    yr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm_exact_at_the_boundary),
        cmocka_unit_test(test_tpm_counts_real_usage),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_budget_race),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_costs_follow_each_providers_token_rules),
        cmocka_unit_test(test_keyspec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
