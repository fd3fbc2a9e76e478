/* Observability unit tests: W3C traceparent parsing and formatting, the GenAI
 * histograms of two workers summed at render, the request without routes,
 * count_tokens kept out of the GenAI metrics, and the access log line. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "obs/obs.h"

static const char cfg_yaml[] = "server:\n"
                               "  listen: 127.0.0.1:0\n"
                               "  master_key: yr-master-SECRET-1111\n"
                               "observability:\n"
                               "  metrics_key_names: true\n"
                               "providers:\n"
                               "  oai:\n"
                               "    kind: openai\n"
                               "    base_url: https://api.example.com:8443/v1\n"
                               "    api_key: sk-openai-SECRET-2222\n"
                               "  gem:\n"
                               "    kind: gemini\n"
                               "    api_key: gem-SECRET-3333\n"
                               "models:\n"
                               "  - id: m1\n"
                               "    routes:\n"
                               "      - provider: oai\n"
                               "        model: up-1\n"
                               "      - provider: gem\n"
                               "        model: gemini-x\n";

typedef struct {
    yr_config_t *cfg;
    yr_metrics_labels_t *labels;
    yr_obs_t *o[2];
    int pipefd[2];
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    char err[256];
    assert_int_equal(
        yr_config_load_string("t.yaml", cfg_yaml, strlen(cfg_yaml), &f->cfg, err, sizeof(err)), 0);
    assert_int_equal(yr_metrics_labels_new(&f->labels), 0);
    yr_metrics_labels_add_config(f->labels, f->cfg);
    assert_int_equal(pipe(f->pipefd), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(yr_obs_init(&f->o[i], (size_t)i, NULL, NULL, NULL, f->labels, f->cfg,
                                     i == 0 ? f->pipefd[1] : -1),
                         0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 2; i++)
        yr_obs_free(f->o[i]);
    close(f->pipefd[0]);
    close(f->pipefd[1]);
    yr_metrics_labels_free(f->labels);
    yr_config_free(f->cfg);
    free(f);
    return 0;
}

/* ---- traceparent ----------------------------------------------------------------- */

static void test_traceparent(void **state)
{
    fx_t *f = *state;
    yr_trace_ctx_t t;
    yr_obs_trace_begin(f->o[0], YR_STR("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                       &t);
    assert_int_equal(t.trace_id[0], 0x4b);
    assert_int_equal(t.trace_id[15], 0x36);
    assert_true(t.parent_id == 0x00f067aa0ba902b7ull);
    assert_int_equal(t.flags, 1);
    assert_true(t.span_id != 0);
    uint64_t a = yr_obs_span_id(f->o[0], &t), b = yr_obs_span_id(f->o[0], &t);
    assert_true(a != 0 && b != 0 && a != b);
    char line[80];
    yr_obs_traceparent(&t, 0x1122334455667788ull, line, sizeof(line));
    assert_string_equal(line,
                        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-1122334455667788-01");

    /* A later version may carry more fields; its first four are read. */
    yr_obs_trace_begin(
        f->o[0], YR_STR("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-whatever"), &t);
    assert_true(t.span_id != 0);
    assert_int_equal(t.flags, 0);

    static const char *const bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      /* short */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   /* separators */
        "",
    };
    /* Tracing is off here: an invalid header leaves the request untraced. */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        yr_obs_trace_begin(f->o[0], yr_str(bad[i]), &t);
        assert_true(t.span_id == 0);
        assert_true(yr_obs_span_id(f->o[0], &t) == 0);
    }
    assert_false(yr_obs_tracing(f->o[0]));
}

/* ---- GenAI histograms --------------------------------------------------------------- */

static yr_obs_req_t req_of(fx_t *f, yr_attempt_t *a, size_t n, int status, bool stream)
{
    return (yr_obs_req_t){
        .op = YR_OBS_OP_CHAT,
        .cfg = f->cfg,
        .model = &f->cfg->models[0],
        .client_model = YR_STR("m1"),
        .attempts = a,
        .nattempts = n,
        .status = status,
        .stream = stream,
        .start_ns = 1000000000ull,
        .end_ns = 1250000000ull, /* 250 ms */
        .request_id = YR_STR("req_1"),
        .key_name = "team-a",
        .key_id = 7,
        .cost_micros = 42,
        .overhead_ms = 3,
    };
}

static char *render(fx_t *f)
{
    yr_buf_t out;
    yr_buf_init(&out, 4 << 20);
    assert_int_equal(yr_obs_render(f->o, 2, f->cfg, &out), 0);
    assert_int_equal(yr_buf_append(&out, "", 1), 0);
    return yr_buf_steal(&out, NULL);
}

static void test_genai_sums_workers(void **state)
{
    fx_t *f = *state;
    const yr_route_conf_t *r0 = &f->cfg->models[0].routes[0], *r1 = &f->cfg->models[0].routes[1];
    yr_attempt_t a = {.route = r0,
                      .outcome = YR_OUT_OK,
                      .status = 200,
                      .usage = {.present = true, .prompt_tokens = 10, .completion_tokens = 5},
                      .start_ns = 1000000000ull,
                      .first_event_ns = 1050000000ull, /* TTFT 50 ms */
                      .end_ns = 1250000000ull};
    yr_obs_req_t r = req_of(f, &a, 1, 200, true);
    yr_obs_request_end(f->o[0], &r);
    a.usage.prompt_tokens = 20;
    yr_obs_request_end(f->o[1], &r);
    /* A failover: the first attempt (gemini) failed without usage. */
    yr_attempt_t two[2] = {
        {.route = r1, .outcome = YR_OUT_SERVER_ERROR, .status = 500},
        {.route = r0,
         .outcome = YR_OUT_OK,
         .status = 200,
         .usage = {.present = true, .prompt_tokens = 1, .completion_tokens = 1}}};
    r = req_of(f, two, 2, 200, false);
    yr_obs_request_end(f->o[1], &r);
    /* Every route failed. */
    two[1].outcome = YR_OUT_SERVER_ERROR;
    two[1].status = 503;
    two[1].usage = (yr_usage_t){0};
    r = req_of(f, two, 2, 502, false);
    yr_obs_request_end(f->o[0], &r);
    /* count_tokens: counted per key, not a GenAI generation. */
    r = req_of(f, NULL, 0, 200, false);
    r.op = YR_OBS_OP_COUNT_TOKENS;
    yr_obs_request_end(f->o[0], &r);

    char *txt = render(f);
    const char *lbl = "{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
                      "gen_ai_token_type=\"input\",gen_ai_request_model=\"m1\",route=\"oai/"
                      "up-1\",status_class=\"2xx\"}";
    char want[512];
    snprintf(want, sizeof(want), "gen_ai_client_token_usage_sum%s 31\n", lbl);
    assert_non_null(strstr(txt, want));
    snprintf(want, sizeof(want), "gen_ai_client_token_usage_count%s 3\n", lbl);
    assert_non_null(strstr(txt, want));
    /* 10 and 1 are <= 16, 20 is not */
    assert_non_null(strstr(txt, "gen_ai_token_type=\"input\",gen_ai_request_model=\"m1\","
                                "route=\"oai/up-1\",status_class=\"2xx\",le=\"16\"} 2\n"));
    assert_non_null(strstr(txt, "gen_ai_server_request_duration_count{gen_ai_operation_name="
                                "\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model="
                                "\"m1\",route=\"oai/up-1\",status_class=\"2xx\"} 3\n"));
    assert_non_null(strstr(txt, "gen_ai_server_request_duration_sum{gen_ai_operation_name="
                                "\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model="
                                "\"m1\",route=\"oai/up-1\",status_class=\"2xx\"} 0.750000\n"));
    /* The 502 is counted on its last route, in 5xx. */
    assert_non_null(strstr(txt, "route=\"oai/up-1\",status_class=\"5xx\"} 1\n"));
    /* TTFT only for the streamed successes: 50 ms, in le=0.06 not le=0.04 */
    assert_non_null(strstr(txt, "gen_ai_server_time_to_first_token_count{"));
    assert_non_null(strstr(txt, "status_class=\"2xx\",le=\"0.04\"} 0\n"));
    assert_non_null(strstr(txt, "status_class=\"2xx\",le=\"0.06\"} 2\n"));
    /* 200 ms for 4 more tokens: 50 ms each */
    assert_non_null(strstr(txt, "gen_ai_server_time_per_output_token_sum{gen_ai_operation_name="
                                "\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model="
                                "\"m1\",route=\"oai/up-1\",status_class=\"2xx\"} 0.100000\n"));
    assert_null(strstr(txt, "gen_ai_operation_name=\"count_tokens\""));
    assert_non_null(strstr(txt, "yourouter_retries_total 2\n"));
    assert_non_null(
        strstr(txt, "yourouter_key_requests_total{key=\"team-a\",status_class=\"2xx\"} 4\n"));
    assert_non_null(
        strstr(txt, "yourouter_key_tokens_total{key=\"team-a\",gen_ai_token_type=\"input\"} 31\n"));
    assert_null(strstr(txt, "SECRET"));
    free(txt);
}

static void test_limits_and_unrouted(void **state)
{
    fx_t *f = *state;
    yr_obs_limit_rejected(f->o[0], "tpm");
    yr_obs_limit_rejected(f->o[1], "tpm");
    yr_obs_limit_rejected(f->o[1], "something new");
    yr_obs_req_t r = req_of(f, NULL, 0, 400, false);
    r.model = NULL;
    yr_obs_request_end(f->o[0], &r);
    char *txt = render(f);
    assert_non_null(strstr(txt, "yourouter_limit_rejections_total{limit=\"tpm\"} 2\n"));
    assert_non_null(strstr(txt, "yourouter_limit_rejections_total{limit=\"other\"} 1\n"));
    assert_non_null(strstr(txt, "gen_ai_server_request_duration_count{gen_ai_operation_name="
                                "\"chat\",gen_ai_provider_name=\"\",gen_ai_request_model=\"\","
                                "route=\"\",status_class=\"4xx\"} 1\n"));
    assert_non_null(strstr(txt, "yourouter_route_circuit_state{route=\"gem/gemini-x\"} 0\n"));
    free(txt);
}

/* ---- the access log ------------------------------------------------------------------ */

static void test_access_log_line(void **state)
{
    fx_t *f = *state;
    yr_attempt_t a[2] = {
        {.route = &f->cfg->models[0].routes[1], .outcome = YR_OUT_RATE_LIMITED, .status = 429},
        {.route = &f->cfg->models[0].routes[0],
         .outcome = YR_OUT_OK,
         .status = 200,
         .usage = {.present = true, .prompt_tokens = 9, .completion_tokens = 4},
         .head_ns = 1100000000ull,
         .first_event_ns = 1120000000ull}};
    yr_obs_req_t r = req_of(f, a, 2, 200, true);
    r.client_model = YR_STR("m1\"\n");
    yr_obs_request_end(f->o[0], &r);
    char line[4096];
    ssize_t n = read(f->pipefd[0], line, sizeof(line) - 1);
    assert_true(n > 0 && line[n - 1] == '\n');
    line[n] = '\0';
    assert_ptr_equal(strchr(line, '\n'), line + n - 1); /* one line */
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req_1");
    assert_string_equal(json_string_value(json_object_get(j, "key")), "team-a");
    assert_int_equal(json_integer_value(json_object_get(j, "key_id")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "m1\"\n");
    assert_string_equal(json_string_value(json_object_get(j, "vendor")), "oai");
    assert_string_equal(json_string_value(json_object_get(j, "route")), "oai/up-1");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "outcomes"), 0)),
                        "rate_limited:429");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_int_equal(json_integer_value(json_object_get(j, "input_tokens")), 9);
    assert_int_equal(json_integer_value(json_object_get(j, "output_tokens")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "cost_micros")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "latency_ms")), 250);
    assert_int_equal(json_integer_value(json_object_get(j, "ttfb_ms")), 120);
    assert_int_equal(json_integer_value(json_object_get(j, "overhead_ms")), 3);
    assert_null(json_object_get(j, "trace_id")); /* not traced */
    json_decref(j);
    assert_null(strstr(line, "SECRET"));
}

/* ---- the config section ------------------------------------------------------------ */

static void test_config_section(void **state)
{
    (void)state;
    char err[256];
    yr_config_t *cfg;
    assert_int_equal(yr_config_load_string("d.yaml", "", 0, &cfg, err, sizeof(err)), 0);
    assert_null(cfg->observability.otlp_endpoint);
    assert_string_equal(cfg->observability.access_log, "off");
    assert_string_equal(cfg->observability.service_name, "yourouter");
    assert_int_equal(cfg->observability.otlp_queue, 4096);
    assert_int_equal(cfg->observability.otlp_batch, 512);
    assert_int_equal(cfg->observability.otlp_interval_ms, 1000);
    assert_int_equal(cfg->observability.otlp_timeout_ms, 2000);
    assert_false(cfg->observability.metrics_key_names);
    yr_config_free(cfg);
    static const char bad_url[] = "observability:\n  otlp_endpoint: ftp://user:pw@x/\n";
    assert_true(yr_config_load_string("b.yaml", bad_url, strlen(bad_url), &cfg, err, sizeof(err)) <
                0);
    assert_non_null(strstr(err, "b.yaml:2: observability.otlp_endpoint"));
    assert_null(strstr(err, "pw")); /* the URL may hold credentials: never quoted */
    static const char bad_queue[] = "observability:\n  otlp_queue: 0\n";
    assert_true(
        yr_config_load_string("q.yaml", bad_queue, strlen(bad_queue), &cfg, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "q.yaml:2: observability.otlp_queue"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_traceparent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_genai_sums_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_unrouted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_log_line, setup, teardown),
        cmocka_unit_test(test_config_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
