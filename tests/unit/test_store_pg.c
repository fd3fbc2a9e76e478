/* The PostgreSQL backend against a real server (YR_TEST_PG_URL, started by
 * scripts/test-servers; skipped with 77 when unset). The same store API the
 * SQLite tests drive: keys with policies, rotation, revocation, usage rows
 * (idempotent per request and attempt) and their totals. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store/store.h"

static const char *url;
static char name_suffix[32];

static yr_store_t *open_pg(void)
{
    yr_store_t *s = NULL;
    char err[512] = "";
    if (yr_store_open(url, &s, err, sizeof(err)) != 0)
        fail_msg("cannot open %s: %s", url, err);
    return s;
}

static void name(char *buf, size_t len, const char *base)
{
    snprintf(buf, len, "%s-%s", base, name_suffix);
}

static void test_keys(void **state)
{
    (void)state;
    yr_store_t *s = open_pg();
    char n[64], key[YR_KEY_MAX_LEN], key2[YR_KEY_MAX_LEN];
    name(n, sizeof(n), "alpha");
    yr_key_policy_t pol = {.rpm = 60, .budget_micros = {[YR_BUDGET_DAY] = 5000000}};
    strcpy(pol.allowed_models, "gpt-*");
    yr_key_info_t info, got;
    assert_int_equal(yr_store_key_create_with(s, n, &pol, key, &info), 0);
    assert_true(info.id > 0);
    assert_int_equal(yr_store_key_create_with(s, n, NULL, key2, NULL), -EEXIST);
    unsigned char h[YR_KEY_HASH_LEN], h2[YR_KEY_HASH_LEN];
    yr_key_hash(key, strlen(key), h);
    assert_int_equal(yr_store_key_lookup(s, h, &got), 0);
    assert_int_equal(got.id, info.id);
    assert_int_equal(got.policy.rpm, 60);
    assert_string_equal(got.policy.allowed_models, "gpt-*");
    assert_int_equal(got.spent_micros[YR_BUDGET_DAY], 0);
    /* the stored hash is never a credential */
    unsigned char hh[YR_KEY_HASH_LEN];
    yr_key_hash((const char *)h, sizeof(h), hh);
    assert_int_equal(yr_store_key_lookup(s, hh, NULL), -ENOENT);

    pol.rpm = 0;
    pol.tpm = 999;
    assert_int_equal(yr_store_key_update(s, n, &pol, &got), 0);
    assert_int_equal(got.policy.rpm, 0);
    assert_int_equal(got.policy.tpm, 999);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)info.id);
    assert_int_equal(yr_store_key_get(s, id, &got), 0);
    assert_string_equal(got.name, n);

    assert_int_equal(yr_store_key_rotate(s, n, 60, key2, &got), 0);
    yr_key_hash(key2, strlen(key2), h2);
    assert_int_equal(yr_store_key_lookup(s, h2, NULL), 0);
    assert_int_equal(yr_store_key_lookup(s, h, NULL), 0); /* the old one, within its grace */
    assert_int_equal(yr_store_key_rotate(s, n, 0, key, &got), 0);
    assert_int_equal(yr_store_key_lookup(s, h2, NULL), -ENOENT); /* no grace */

    assert_int_equal(yr_store_key_revoke_info(s, n, &got), 0);
    assert_true(got.revoked_at > 0);
    yr_key_hash(key, strlen(key), h);
    assert_int_equal(yr_store_key_lookup(s, h, NULL), -ENOENT);
    assert_int_equal(yr_store_key_revoke(s, n), -ENOENT);
    /* the name is free again */
    assert_int_equal(yr_store_key_create_with(s, n, NULL, key, NULL), 0);
    /* expired keys do not work */
    name(n, sizeof(n), "expired");
    pol = (yr_key_policy_t){.expires_at = (int64_t)time(NULL) - 1};
    assert_int_equal(yr_store_key_create_with(s, n, &pol, key, NULL), 0);
    yr_key_hash(key, strlen(key), h);
    assert_int_equal(yr_store_key_lookup(s, h, NULL), -ENOENT);
    yr_store_close(s);
}

static void count(const yr_usage_total_t *t, void *arg)
{
    yr_usage_total_t *out = arg;
    if (strstr(t->group, name_suffix) != NULL)
        *out = *t;
}

static void test_usage(void **state)
{
    (void)state;
    yr_store_t *s = open_pg();
    char n[64], key[YR_KEY_MAX_LEN], rid[64], model[64];
    name(n, sizeof(n), "spender");
    name(model, sizeof(model), "model");
    yr_key_policy_t pol = {.budget_micros = {[YR_BUDGET_DAY] = 10000000}};
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create_with(s, n, &pol, key, &info), 0);
    snprintf(rid, sizeof(rid), "req_%s", name_suffix);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000;
    yr_usage_row_t rows[2] = {
        {.request_id = yr_str(rid), .key_id = info.id, .model_id = yr_str(model),
         .provider = YR_STR("a"), .http_status = 200, .outcome = YR_STR("server_error"),
         .attempt = 0, .upstream_status = 500, .cost_micros = 0, .latency_ms = 5, .ttfb_ms = -1,
         .created_ms = now_ms, .error_class = YR_STR("server_error")},
        {.request_id = yr_str(rid), .key_id = info.id, .model_id = yr_str(model),
         .provider = YR_STR("b"), .http_status = 200, .outcome = YR_STR("ok"), .attempt = 1,
         .upstream_status = 200, .prompt_tokens = 100, .completion_tokens = 20,
         .cached_tokens = 40, .cost_micros = 1234, .latency_ms = 9, .ttfb_ms = 3,
         .created_ms = now_ms, .stream = true},
    };
    assert_int_equal(yr_store_usage_write(s, rows, 2), 0);
    /* a batch written again (a lost commit acknowledgement) counts once */
    assert_int_equal(yr_store_usage_write(s, rows, 2), 0);
    yr_usage_total_t t = {0};
    assert_int_equal(yr_store_usage_totals(s, YR_USAGE_BY_MODEL, now_ms - 1000, 0, count, &t), 0);
    assert_int_equal(t.requests, 1);
    assert_int_equal(t.attempts, 2);
    assert_int_equal(t.prompt_tokens, 100);
    assert_int_equal(t.cached_tokens, 40);
    assert_int_equal(t.cost_micros, 1234);
    assert_int_equal(t.errors, 1);
    t = (yr_usage_total_t){0};
    assert_int_equal(yr_store_usage_totals(s, YR_USAGE_BY_KEY, now_ms - 1000, info.id, count, &t), 0);
    assert_string_equal(t.group, n);
    /* a lookup of a key with a budget says what it spent today */
    unsigned char h[YR_KEY_HASH_LEN];
    yr_key_hash(key, strlen(key), h);
    yr_key_info_t got;
    assert_int_equal(yr_store_key_lookup(s, h, &got), 0);
    assert_int_equal(got.spent_micros[YR_BUDGET_DAY], 1234);
    yr_store_close(s);
}

/* Stored responses: scoped to their key, deleted, purged by age. */
static void test_responses(void **state)
{
    (void)state;
    yr_store_t *s = open_pg();
    char old[64], fresh[64];
    name(old, sizeof(old), "resp_old");
    name(fresh, sizeof(fresh), "resp_new");
    assert_int_equal(yr_store_response_put(s, old, 7, 1000, "[]", "{\"id\":1}"), 0);
    assert_int_equal(yr_store_response_put(s, fresh, 7, 5000, "[1]", "{\"id\":2}"), 0);
    char *items = NULL, *resp = NULL;
    assert_int_equal(yr_store_response_get(s, old, 8, &items, &resp), -ENOENT);
    assert_int_equal(yr_store_response_get(s, fresh, 7, &items, &resp), 0);
    assert_string_equal(items, "[1]");
    free(items);
    free(resp);
    assert_int_equal(yr_store_response_purge(s, 2000), 0);
    assert_int_equal(yr_store_response_get(s, old, 7, &items, &resp), -ENOENT);
    assert_int_equal(yr_store_response_delete(s, fresh, 7), 0);
    assert_int_equal(yr_store_response_delete(s, fresh, 7), -ENOENT);
    yr_store_close(s);
}

static void *opener(void *arg)
{
    (void)arg;
    yr_store_t *s = NULL;
    char err[256];
    int rc = yr_store_open(url, &s, err, sizeof(err));
    yr_store_close(s);
    return (void *)(intptr_t)rc;
}

/* Instances starting together migrate once (the advisory lock). */
static void test_concurrent_open(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, opener, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_int_equal((intptr_t)rc, 0);
    }
}

int main(void)
{
    url = getenv("YR_TEST_PG_URL");
    if (url == NULL || url[0] == '\0') {
        fprintf(stderr, "YR_TEST_PG_URL not set: skipped (scripts/test starts a server)\n");
        return 77;
    }
    snprintf(name_suffix, sizeof(name_suffix), "%ld%d", (long)time(NULL), (int)(clock() % 1000));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_open),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
