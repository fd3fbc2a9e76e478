/* Metrics tests: two workers' counters sum in the rendered text, label values
 * are escaped, the latency histogram is cumulative, no secret from the
 * config ever appears in the output, series are keyed by name so they
 * survive a config reload, and the number of label values is capped. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "metrics/metrics.h"

static const char cfg_yaml[] = "server:\n"
                               "  listen: 127.0.0.1:0\n"
                               "  master_key: yr-master-SECRET-1111\n"
                               "providers:\n"
                               "  openai:\n"
                               "    kind: openai\n"
                               "    base_url: https://api.openai.com/v1\n"
                               "    api_key: sk-openai-SECRET-2222\n"
                               "  anthropic:\n"
                               "    kind: anthropic\n"
                               "    base_url: https://api.anthropic.com\n"
                               "    api_key: sk-ant-SECRET-3333\n"
                               "models:\n"
                               "  - id: gpt-4o\n"
                               "    routes:\n"
                               "      - provider: openai\n"
                               "  - id: 'we\"ird\\model'\n"
                               "    routes:\n"
                               "      - provider: anthropic\n"
                               "        model: claude-x\n";

#define WEIRD "we\"ird\\model"

typedef struct {
    yr_config_t *cfg;
    yr_metrics_labels_t *labels;
    yr_metrics_t w[2];
    yr_buf_t out;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256] = "";
    int rc = yr_config_load_string("metrics.yaml", cfg_yaml, sizeof(cfg_yaml) - 1, &f->cfg, err,
                                   sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "config: %s\n", err);
        free(f);
        return -1;
    }
    if (yr_metrics_labels_new(&f->labels) != 0)
        return -1;
    yr_metrics_labels_add_config(f->labels, f->cfg);
    if (yr_metrics_init(&f->w[0], f->labels) != 0 || yr_metrics_init(&f->w[1], f->labels) != 0)
        return -1;
    yr_buf_init(&f->out, 1 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    yr_metrics_free(&f->w[0]);
    yr_metrics_free(&f->w[1]);
    yr_metrics_labels_free(f->labels);
    yr_buf_free(&f->out);
    yr_config_free(f->cfg);
    free(f);
    return 0;
}

static const char *render(fixture_t *f, size_t n)
{
    yr_metrics_t *all[2] = {&f->w[0], &f->w[1]};
    yr_buf_reset(&f->out);
    assert_int_equal(yr_metrics_render(all, n, &f->out), 0);
    return f->out.data ? f->out.data : "";
}

/* The value on the line that starts with `series` followed by a space, or -1
 * when no such line exists. Fails when the series appears twice. */
static double value_of(const char *text, const char *series)
{
    size_t sl = strlen(series);
    double v = -1;
    int found = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends in LF */
        if ((size_t)(nl - line) > sl && memcmp(line, series, sl) == 0 && line[sl] == ' ') {
            char num[64];
            size_t n = (size_t)(nl - line) - sl - 1;
            assert_true(n < sizeof(num));
            memcpy(num, line + sl + 1, n);
            num[n] = '\0';
            char *end;
            v = strtod(num, &end);
            assert_true(*end == '\0');
            found++;
        }
        line = nl + 1;
    }
    if (found > 1)
        fail_msg("series %s appears %d times", series, found);
    return v;
}

static void test_config_names(void **state)
{
    fixture_t *f = *state;
    /* The tests below use these names. */
    assert_int_equal(f->cfg->nmodels, 2);
    assert_int_equal(f->cfg->nproviders, 2);
    assert_string_equal(f->cfg->models[1].id, WEIRD);
    assert_string_equal(f->cfg->providers[0].name, "openai");
    assert_string_equal(f->cfg->providers[1].name, "anthropic");
}

static void test_counters_sum_across_workers(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 2; i++)
        yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 1000);
    for (int i = 0; i < 3; i++)
        yr_metrics_request(&f->w[1], "gpt-4o", "openai", 200, 1000);
    yr_metrics_request(&f->w[1], "gpt-4o", "openai", 429, 1000);
    yr_metrics_request(&f->w[0], "gpt-4o", "anthropic", 502, 1000);
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 418, 1000); /* not in the table: "other" */
    yr_metrics_request(&f->w[1], NULL, NULL, 401, 10);           /* before routing */
    yr_metrics_request(&f->w[1], NULL, NULL, 404, 10);           /* no such model */
    yr_metrics_attempt(&f->w[0], "openai", YR_ATT_OK);
    yr_metrics_attempt(&f->w[1], "openai", YR_ATT_OK);
    yr_metrics_attempt(&f->w[1], "openai", YR_ATT_OK);
    yr_metrics_attempt(&f->w[0], "anthropic", YR_ATT_HTTP_429);
    yr_metrics_attempt(&f->w[1], NULL, YR_ATT_CONNECT);
    yr_metrics_inflight(&f->w[0], 3);
    yr_metrics_inflight(&f->w[1], -1);
    yr_metrics_add(&f->w[0].http_requests, 7);
    yr_metrics_add(&f->w[1].http_requests, 5);

    const char *t = render(f, 2);
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"openai\","
                            "status=\"200\"}") == 5);
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"openai\","
                            "status=\"429\"}") == 1);
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"anthropic\","
                            "status=\"502\"}") == 1);
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"openai\","
                            "status=\"other\"}") == 1);
    assert_true(value_of(t, "yourouter_requests_total{model=\"\",vendor=\"\",status=\"401\"}") ==
                1);
    assert_true(value_of(t, "yourouter_requests_total{model=\"\",vendor=\"\",status=\"404\"}") ==
                1);
    /* Zero series are not printed. */
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"openai\","
                            "status=\"500\"}") == -1);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"openai\","
                            "outcome=\"ok\"}") == 3);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"anthropic\","
                            "outcome=\"http_429\"}") == 1);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"\","
                            "outcome=\"connect_error\"}") == 1);
    assert_true(value_of(t, "yourouter_inflight_requests") == 2);
    assert_true(value_of(t, "yourouter_http_requests_total") == 12);
    assert_true(value_of(t, "yourouter_request_duration_seconds_count") == 10);

    /* One worker alone shows only its own counts. */
    t = render(f, 1);
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"openai\","
                            "status=\"200\"}") == 2);
    assert_true(value_of(t, "yourouter_http_requests_total") == 7);
    assert_true(value_of(t, "yourouter_inflight_requests") == 3);
}

static void test_every_series_has_help_and_type(void **state)
{
    fixture_t *f = *state;
    yr_metrics_request(&f->w[0], WEIRD, "anthropic", 200, 1);
    const char *t = render(f, 2);
    const char *families[] = {"yourouter_requests_total", "yourouter_upstream_attempts_total",
                              "yourouter_request_duration_seconds", "yourouter_inflight_requests",
                              "yourouter_http_requests_total"};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char help[128], type[128];
        snprintf(help, sizeof(help), "\n# HELP %s ", families[i]);
        snprintf(type, sizeof(type), "\n# TYPE %s ", families[i]);
        bool first = strncmp(t, help + 1, strlen(help) - 1) == 0;
        assert_true(first || strstr(t, help) != NULL);
        assert_non_null(strstr(t, type));
    }
    assert_non_null(strstr(t, "# TYPE yourouter_request_duration_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE yourouter_requests_total counter\n"));
    assert_non_null(strstr(t, "# TYPE yourouter_inflight_requests gauge\n"));
}

static void test_label_escaping(void **state)
{
    fixture_t *f = *state;
    yr_metrics_request(&f->w[0], WEIRD, "anthropic", 200, 1000);
    yr_metrics_request(&f->w[1], WEIRD, "anthropic", 200, 1000);
    const char *t = render(f, 2);
    /* we"ird\model -> we\"ird\\model */
    assert_true(value_of(t, "yourouter_requests_total{model=\"we\\\"ird\\\\model\","
                            "vendor=\"anthropic\",status=\"200\"}") == 2);
    /* No raw quote inside the label value: each series line has exactly the
     * label quotes plus the escaped ones. */
    assert_null(strstr(t, "model=\"we\"ird"));
}

static void test_histogram_cumulative(void **state)
{
    fixture_t *f = *state;
    /* bounds (us): 1000 2500 5000 10000 25000 50000 100000 250000 500000
     * 1e6 2.5e6 5e6 1e7 3e7 */
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 0);       /* le 0.001 */
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 1000);    /* le 0.001 (bound inclusive) */
    yr_metrics_request(&f->w[1], "gpt-4o", "openai", 200, 1001);    /* le 0.0025 */
    yr_metrics_request(&f->w[1], "gpt-4o", "openai", 200, 4000);    /* le 0.005 */
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 2000000); /* le 2.5 */
    yr_metrics_request(&f->w[1], "gpt-4o", "openai", 200, 30000000); /* le 30 */
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 60000000); /* only +Inf */
    const char *t = render(f, 2);
    static const struct {
        const char *le;
        double count;
    } want[] = {
        {"0.001", 2}, {"0.0025", 3}, {"0.005", 4}, {"0.01", 4}, {"0.025", 4},
        {"0.05", 4},  {"0.1", 4},    {"0.25", 4},  {"0.5", 4},  {"1", 4},
        {"2.5", 5},   {"5", 5},      {"10", 5},    {"30", 6},   {"+Inf", 7},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char series[96];
        snprintf(series, sizeof(series), "yourouter_request_duration_seconds_bucket{le=\"%s\"}",
                 want[i].le);
        double v = value_of(t, series);
        if (v != want[i].count)
            fail_msg("%s = %g, want %g\n%s", series, v, want[i].count, t);
    }
    assert_true(value_of(t, "yourouter_request_duration_seconds_count") == 7);
    double sum = value_of(t, "yourouter_request_duration_seconds_sum");
    double expect = (0 + 1000 + 1001 + 4000 + 2000000 + 30000000 + 60000000) / 1e6;
    assert_true(sum > expect - 1e-6 && sum < expect + 1e-6);
    /* Bucket lines appear in increasing le order, so a scraper sees them
     * cumulative top to bottom. */
    const char *p = t;
    double prev = -1;
    int lines = 0;
    while ((p = strstr(p, "yourouter_request_duration_seconds_bucket{")) != NULL) {
        const char *sp = strchr(p, ' ');
        double v = strtod(sp + 1, NULL);
        assert_true(v >= prev);
        prev = v;
        lines++;
        p = sp;
    }
    assert_int_equal(lines, YR_LAT_BUCKETS + 1);
}

static void test_no_secrets(void **state)
{
    fixture_t *f = *state;
    const char *models[] = {"gpt-4o", WEIRD, NULL}, *vendors[] = {"openai", "anthropic", NULL};
    for (size_t m = 0; m <= 2; m++)
        for (size_t v = 0; v <= 2; v++)
            yr_metrics_request(&f->w[m % 2], models[m], vendors[v], 200, 1000 * m);
    for (size_t v = 0; v <= 2; v++)
        for (int o = 0; o < YR_ATT__COUNT; o++)
            yr_metrics_attempt(&f->w[v % 2], vendors[v], (enum yr_attempt_outcome)o);
    const char *t = render(f, 2);
    assert_true(strlen(t) > 1000);
    const char *secrets[] = {"SECRET", "sk-openai", "sk-ant", "yr-master", "2222", "3333", "1111"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(t, secrets[i]) != NULL)
            fail_msg("output contains '%s'", secrets[i]);
    /* Outcome names all show up for the configured vendors. */
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"anthropic\","
                            "outcome=\"cancelled\"}") == 1);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"openai\","
                            "outcome=\"stream_cut\"}") == 1);
}

static void test_empty_render(void **state)
{
    fixture_t *f = *state;
    const char *t = render(f, 2);
    /* Nothing happened: no labelled series, histogram all zero. */
    assert_null(strstr(t, "yourouter_requests_total{"));
    assert_null(strstr(t, "yourouter_upstream_attempts_total{"));
    assert_true(value_of(t, "yourouter_request_duration_seconds_bucket{le=\"+Inf\"}") == 0);
    assert_true(value_of(t, "yourouter_request_duration_seconds_count") == 0);
    assert_true(value_of(t, "yourouter_inflight_requests") == 0);
    /* Zero workers render nothing at all. */
    yr_buf_reset(&f->out);
    assert_int_equal(yr_metrics_render(NULL, 0, &f->out), 0);
    assert_int_equal(f->out.len, 0);
}

static void test_render_cap(void **state)
{
    fixture_t *f = *state;
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 1000);
    yr_metrics_t *all[2] = {&f->w[0], &f->w[1]};
    yr_buf_t small;
    yr_buf_init(&small, 200);
    assert_int_equal(yr_metrics_render(all, 2, &small), -E2BIG);
    yr_buf_free(&small);
}

/* A reload replaces the config: the old one is freed, a model goes away and
 * another arrives. Old series keep their counts (nothing points into the
 * freed config) and new ones start next to them. */
static void test_series_survive_reload(void **state)
{
    fixture_t *f = *state;
    yr_metrics_request(&f->w[0], "gpt-4o", "openai", 200, 1000);
    yr_metrics_attempt(&f->w[1], "anthropic", YR_ATT_OK);
    static const char next_yaml[] = "providers:\n"
                                    "  openai: {kind: openai, base_url: 'https://h/v1'}\n"
                                    "  local: {kind: openai, base_url: 'http://127.0.0.1:1'}\n"
                                    "models:\n"
                                    "  - {id: new-model, routes: [{provider: local}]}\n"
                                    "  - {id: gpt-4o, routes: [{provider: openai}]}\n";
    yr_config_t *next = NULL;
    char err[256] = "";
    assert_int_equal(yr_config_load_string("next.yaml", next_yaml, sizeof(next_yaml) - 1, &next,
                                           err, sizeof(err)),
                     0);
    yr_metrics_labels_add_config(f->labels, next);
    yr_config_free(f->cfg);
    f->cfg = next;
    yr_metrics_request(&f->w[1], "gpt-4o", "openai", 200, 1000);
    yr_metrics_request(&f->w[0], "new-model", "local", 502, 1000);
    yr_metrics_attempt(&f->w[0], "local", YR_ATT_HTTP_5XX);
    const char *t = render(f, 2);
    assert_true(value_of(t, "yourouter_requests_total{model=\"gpt-4o\",vendor=\"openai\","
                            "status=\"200\"}") == 2);
    assert_true(value_of(t, "yourouter_requests_total{model=\"new-model\",vendor=\"local\","
                            "status=\"502\"}") == 1);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"anthropic\","
                            "outcome=\"ok\"}") == 1);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"local\","
                            "outcome=\"http_5xx\"}") == 1);
}

/* Past the cap, new names share the "other" slot, and a real model named
 * "other" shares it too, so no series is ever printed twice. */
static void test_label_cap(void **state)
{
    fixture_t *f = *state;
    const int extra = 40;
    int named = YR_METRICS_MAX_MODELS - 2; /* the config took two slots */
    for (int i = 0; i < named + extra; i++) {
        char id[32];
        snprintf(id, sizeof(id), "m-%d", i);
        yr_metrics_request(&f->w[i % 2], id, "openai", 200, 1000);
        yr_metrics_request(&f->w[i % 2], id, "openai", 200, 1000); /* same slot again */
    }
    yr_metrics_request(&f->w[0], "other", "openai", 200, 1000);
    const char *t = render(f, 2);
    assert_true(value_of(t, "yourouter_requests_total{model=\"m-0\",vendor=\"openai\","
                            "status=\"200\"}") == 2);
    char series[128];
    snprintf(series, sizeof(series),
             "yourouter_requests_total{model=\"m-%d\",vendor=\"openai\",status=\"200\"}",
             named - 1);
    assert_true(value_of(t, series) == 2);
    snprintf(series, sizeof(series),
             "yourouter_requests_total{model=\"m-%d\",vendor=\"openai\",status=\"200\"}", named);
    assert_true(value_of(t, series) == -1);
    assert_true(value_of(t, "yourouter_requests_total{model=\"other\",vendor=\"openai\","
                            "status=\"200\"}") == 2 * extra + 1);
    /* Vendors are capped the same way. */
    for (int i = 0; i < YR_METRICS_MAX_VENDORS + 3; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v-%d", i);
        yr_metrics_attempt(&f->w[0], v, YR_ATT_OK);
    }
    t = render(f, 2);
    assert_true(value_of(t, "yourouter_upstream_attempts_total{vendor=\"other\","
                            "outcome=\"ok\"}") == 5); /* 64 - 2 from the config fit */
}

#define RACE_NAMES 100

typedef struct {
    yr_metrics_t *m;
    int reverse;
} racer_t;

static void *count_names(void *arg)
{
    racer_t *r = arg;
    for (int k = 0; k < RACE_NAMES; k++) {
        int i = r->reverse ? RACE_NAMES - 1 - k : k;
        char id[32];
        snprintf(id, sizeof(id), "race-%d", i);
        yr_metrics_request(r->m, id, "openai", 200, 1000);
    }
    return NULL;
}

/* Two workers see the same new names at the same time: each name still gets
 * exactly one slot, so the rendered sums are right. */
static void test_first_sight_race(void **state)
{
    fixture_t *f = *state;
    racer_t r[2] = {{&f->w[0], 0}, {&f->w[1], 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, count_names, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    const char *text = render(f, 2);
    for (int i = 0; i < RACE_NAMES; i++) {
        char series[128];
        snprintf(series, sizeof(series),
                 "yourouter_requests_total{model=\"race-%d\",vendor=\"openai\",status=\"200\"}", i);
        if (value_of(text, series) != 2)
            fail_msg("%s is not 2", series);
    }
    assert_null(strstr(text, "model=\"other\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_sum_across_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_series_has_help_and_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_cumulative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_survive_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_sight_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
