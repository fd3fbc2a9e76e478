/* Error table tests: rendered bodies are valid OpenAI error JSON (parsed back
 * with jansson), and upstream statuses map to the right kind and retry
 * decision. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/errors.h"

/* Renders and parses; returns the "error" object (owned by *root). */
static json_t *render(yr_err_t e, yr_str_t msg, const char *param, const char *code, yr_str_t rid,
                      json_t **root)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    assert_int_equal(yr_err_render(&out, e, msg, param, code, rid), 0);
    json_error_t jerr;
    *root = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL)
        fail_msg("invalid JSON: %s (%s)", out.data, jerr.text);
    yr_buf_free(&out);
    assert_true(json_is_object(*root));
    assert_int_equal(json_object_size(*root), 1);
    json_t *err = json_object_get(*root, "error");
    assert_true(json_is_object(err));
    assert_int_equal(json_object_size(err), 4);
    return err;
}

static void test_render_basic(void **state)
{
    (void)state;
    json_t *root;
    json_t *err = render(YR_E_MODEL_NOT_FOUND, YR_STR("The model 'x' does not exist"), "model",
                         NULL, YR_STR("req_123"), &root);
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "The model 'x' does not exist (request id: req_123)");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(err, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "model_not_found");
    json_decref(root);
}

static void test_render_null_param_and_code(void **state)
{
    (void)state;
    json_t *root;
    /* YR_E_INVALID_REQUEST has no code in the table: JSON null. */
    json_t *err = render(YR_E_INVALID_REQUEST, YR_STR("bad"), NULL, NULL, YR_STR("r1"), &root);
    assert_true(json_is_null(json_object_get(err, "param")));
    assert_true(json_is_null(json_object_get(err, "code")));
    assert_string_equal(json_string_value(json_object_get(err, "message")), "bad (request id: r1)");
    json_decref(root);
    /* An empty param string is a string, not null. */
    err = render(YR_E_INVALID_REQUEST, YR_STR("bad"), "", NULL, YR_STR("r1"), &root);
    assert_true(json_is_string(json_object_get(err, "param")));
    assert_string_equal(json_string_value(json_object_get(err, "param")), "");
    json_decref(root);
}

static void test_render_code_override(void **state)
{
    (void)state;
    json_t *root;
    json_t *err = render(YR_E_RATE_LIMITED, YR_STR("slow down"), NULL, "insufficient_quota",
                         YR_STR("r"), &root);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "insufficient_quota");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "rate_limit_error");
    json_decref(root);
    /* Without override the table's code. */
    err = render(YR_E_RATE_LIMITED, YR_STR("slow down"), NULL, NULL, YR_STR("r"), &root);
    assert_string_equal(json_string_value(json_object_get(err, "code")), "rate_limit_exceeded");
    json_decref(root);
}

static void test_render_escapes(void **state)
{
    (void)state;
    json_t *root;
    const char msg[] = "quote \" backslash \\ newline \n tab \t ctl \x01 utf8 \xc3\xa9";
    json_t *err = render(YR_E_INVALID_REQUEST, YR_STR(msg), "messages[0].\"x\"", "c\\d",
                         YR_STR("id\"1"), &root);
    char expect[256];
    snprintf(expect, sizeof(expect), "%s (request id: id\"1)", msg);
    assert_string_equal(json_string_value(json_object_get(err, "message")), expect);
    assert_string_equal(json_string_value(json_object_get(err, "param")), "messages[0].\"x\"");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "c\\d");
    json_decref(root);
}

static void test_render_no_request_id(void **state)
{
    (void)state;
    json_t *root;
    json_t *err = render(YR_E_INTERNAL, YR_STR("oops"), NULL, NULL, YR_STR_NULL, &root);
    assert_string_equal(json_string_value(json_object_get(err, "message")), "oops");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "server_error");
    json_decref(root);
    /* An empty message with an id. */
    err = render(YR_E_INTERNAL, YR_STR_NULL, NULL, NULL, YR_STR("x"), &root);
    assert_string_equal(json_string_value(json_object_get(err, "message")), " (request id: x)");
    json_decref(root);
}

static void test_render_appends(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    assert_int_equal(yr_buf_append(&out, "data: ", 6), 0);
    assert_int_equal(yr_err_render(&out, YR_E_UPSTREAM_ERROR, YR_STR("m"), NULL, NULL, YR_STR("r")),
                     0);
    assert_memory_equal(out.data, "data: {\"error\":{", 16);
    json_t *root = json_loadb(out.data + 6, out.len - 6, 0, NULL);
    assert_non_null(root);
    json_decref(root);
    yr_buf_free(&out);
    /* A full output buffer reports the cap. */
    yr_buf_init(&out, 20);
    assert_int_equal(yr_err_render(&out, YR_E_UPSTREAM_ERROR, YR_STR("m"), NULL, NULL, YR_STR("r")),
                     -E2BIG);
    yr_buf_free(&out);
}

static void test_render_long_message(void **state)
{
    (void)state;
    char msg[10000];
    memset(msg, 'm', sizeof(msg));
    char rid[300];
    memset(rid, 'r', sizeof(rid));
    json_t *root;
    json_t *err = render(YR_E_UPSTREAM_ERROR, (yr_str_t){msg, sizeof(msg)}, NULL, NULL,
                         (yr_str_t){rid, sizeof(rid)}, &root);
    const char *m = json_string_value(json_object_get(err, "message"));
    assert_int_equal(strlen(m), sizeof(msg) + sizeof(" (request id: )") - 1 + sizeof(rid));
    assert_memory_equal(m + sizeof(msg), " (request id: rrr", 17);
    json_decref(root);
}

static void test_table_every_kind(void **state)
{
    (void)state;
    static const struct {
        yr_err_t e;
        int status;
        const char *type;
    } rows[] = {
        {YR_E_INVALID_JSON, 400, "invalid_request_error"},
        {YR_E_INVALID_REQUEST, 400, "invalid_request_error"},
        {YR_E_MODEL_NOT_FOUND, 400, "invalid_request_error"},
        {YR_E_UNAUTHORIZED, 401, "invalid_request_error"},
        {YR_E_FORBIDDEN, 403, "invalid_request_error"},
        {YR_E_NOT_FOUND, 404, "invalid_request_error"},
        {YR_E_METHOD_NOT_ALLOWED, 405, "invalid_request_error"},
        {YR_E_TOO_LARGE, 413, "invalid_request_error"},
        {YR_E_HEADERS_TOO_LARGE, 431, "invalid_request_error"},
        {YR_E_RATE_LIMITED, 429, "rate_limit_error"},
        {YR_E_UPSTREAM_BAD_REQUEST, 400, "invalid_request_error"},
        {YR_E_UPSTREAM_ERROR, 502, "server_error"},
        {YR_E_UPSTREAM_UNAVAILABLE, 503, "server_error"},
        {YR_E_UPSTREAM_TIMEOUT, 504, "server_error"},
        {YR_E_UPSTREAM_AUTH, 502, "server_error"},
        {YR_E_NOT_IMPLEMENTED, 501, "server_error"},
        {YR_E_SHUTTING_DOWN, 503, "server_error"},
        {YR_E_INTERNAL, 500, "server_error"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const yr_err_info_t *info = yr_err_info(rows[i].e);
        assert_int_equal(info->status, rows[i].status);
        assert_string_equal(info->type, rows[i].type);
    }
    /* Every kind renders valid JSON with its table status's type. */
    for (int e = 0; e < YR_E__COUNT; e++) {
        const yr_err_info_t *info = yr_err_info((yr_err_t)e);
        assert_non_null(info->type);
        assert_true(info->status >= 400 && info->status < 600);
        json_t *root;
        json_t *err = render((yr_err_t)e, YR_STR("x"), NULL, NULL, YR_STR("id"), &root);
        assert_string_equal(json_string_value(json_object_get(err, "type")), info->type);
        if (info->code)
            assert_string_equal(json_string_value(json_object_get(err, "code")), info->code);
        else
            assert_true(json_is_null(json_object_get(err, "code")));
        json_decref(root);
    }
    /* Out-of-range kinds fall back to internal. */
    assert_ptr_equal(yr_err_info(YR_E__COUNT), yr_err_info(YR_E_INTERNAL));
    assert_ptr_equal(yr_err_info((yr_err_t)1000), yr_err_info(YR_E_INTERNAL));
}

static void test_from_upstream_status(void **state)
{
    (void)state;
    static const struct {
        int status;
        yr_err_t e;
        bool retryable;
        int client_status;
    } rows[] = {
        {429, YR_E_RATE_LIMITED, true, 429},          {400, YR_E_UPSTREAM_BAD_REQUEST, false, 400},
        {422, YR_E_UPSTREAM_BAD_REQUEST, false, 400}, {401, YR_E_UPSTREAM_AUTH, true, 502},
        {403, YR_E_UPSTREAM_AUTH, true, 502},         {404, YR_E_UPSTREAM_ERROR, true, 502},
        {408, YR_E_UPSTREAM_TIMEOUT, true, 504},      {413, YR_E_TOO_LARGE, false, 413},
        {500, YR_E_UPSTREAM_ERROR, true, 502},        {501, YR_E_UPSTREAM_ERROR, true, 502},
        {502, YR_E_UPSTREAM_ERROR, true, 502},        {503, YR_E_UPSTREAM_UNAVAILABLE, true, 503},
        {529, YR_E_UPSTREAM_UNAVAILABLE, true, 503},  {504, YR_E_UPSTREAM_TIMEOUT, true, 504},
        {599, YR_E_UPSTREAM_ERROR, true, 502},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bool retry = !rows[i].retryable;
        yr_err_t e = yr_err_from_upstream_status(rows[i].status, &retry);
        if (e != rows[i].e || retry != rows[i].retryable)
            fail_msg("status %d: kind %d retry %d, want %d %d", rows[i].status, (int)e, retry,
                     (int)rows[i].e, rows[i].retryable);
        assert_int_equal(yr_err_info(e)->status, rows[i].client_status);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_basic),
        cmocka_unit_test(test_render_null_param_and_code),
        cmocka_unit_test(test_render_code_override),
        cmocka_unit_test(test_render_escapes),
        cmocka_unit_test(test_render_no_request_id),
        cmocka_unit_test(test_render_appends),
        cmocka_unit_test(test_render_long_message),
        cmocka_unit_test(test_table_every_kind),
        cmocka_unit_test(test_from_upstream_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
