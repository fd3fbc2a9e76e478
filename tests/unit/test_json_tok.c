/* The hot-path tokenizer: every valid text accepted, every invalid one
 * refused, and the same verdict as jansson (which translating providers use
 * on the same bodies) except for our lower depth limit. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/json_tok.h"

static const char *const valid[] = {
    "{}", "[]", " {\"a\" : [1, -2, 3.5e-3, 0, -0.0, 1E+2, true, false, null]} ",
    "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
    "{\"utf8\":\"h\xc3\xa9llo \xf0\x9f\x98\x80\"}", "[[[[[]]]]]", "{\"a\":{\"a\":{\"a\":1}}}",
    "{\"n\":-9223372036854775808}", "{\"n\":9223372036854775807}", "{\"r\":1e308}",
    "{\"a\":1,\"b\":{\"a\":2}}", "\"top level string\"", "42",
};

static const char *const invalid[] = {
    "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "[01]",
    "[1.]", "[.5]", "[1e]", "[+1]", "[-]", "[tru]", "[nul]", "\"abc", "\"a\\x\"",
    "\"\\u12\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
    "\"tab\there\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"",
    "{} {}", "[1] x", "{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}",
    "{\"o\":{\"k\":1,\"k\":2}}", "{\"n\":9223372036854775808}", "{\"n\":-9223372036854775809}",
    "{\"r\":1e999}", "[NaN]", "[Infinity]",
};

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        yr_jdoc_t d;
        int rc = yr_json_parse(&d, valid[i], strlen(valid[i]), true);
        if (rc != 0)
            fail_msg("refused %s: %s at %zu", valid[i], d.err, d.err_off);
        json_t *j = json_loadb(valid[i], strlen(valid[i]), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                               NULL);
        if (j == NULL)
            fail_msg("jansson refuses %s", valid[i]);
        json_decref(j);
        yr_json_free(&d);
        if (yr_json_validate(valid[i], strlen(valid[i])) != 0)
            fail_msg("validate-only refused %s", valid[i]);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        yr_jdoc_t d;
        int rc = yr_json_parse(&d, invalid[i], strlen(invalid[i]), true);
        if (rc != -EINVAL)
            fail_msg("accepted (%d) %s", rc, invalid[i]);
        assert_non_null(d.err);
        json_t *j = json_loadb(invalid[i], strlen(invalid[i]),
                               JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
        if (j != NULL)
            fail_msg("jansson accepts %s", invalid[i]);
        yr_json_free(&d);
        /* validate-only allows duplicate keys; everything else it refuses */
        if (strstr(invalid[i], "\"a\":1,\"") == NULL && strstr(invalid[i], "\"k\":1") == NULL &&
            yr_json_validate(invalid[i], strlen(invalid[i])) != -EINVAL)
            fail_msg("validate-only accepted %s", invalid[i]);
    }
}

static void test_depth_limit(void **state)
{
    (void)state;
    char deep[2 * (YR_JSON_MAX_DEPTH + 2) + 1];
    size_t n = 0;
    for (int i = 0; i < YR_JSON_MAX_DEPTH + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i < YR_JSON_MAX_DEPTH + 1; i++)
        deep[n++] = ']';
    yr_jdoc_t d;
    assert_int_equal(yr_json_parse(&d, deep, n, false), 0);
    yr_json_free(&d);
    memmove(deep + 1, deep, n);
    deep[0] = '[';
    deep[n + 1] = ']';
    assert_int_equal(yr_json_parse(&d, deep, n + 2, false), -EINVAL);
    assert_string_equal(d.err, "nested too deeply");
    yr_json_free(&d);
}

static void test_lookups(void **state)
{
    (void)state;
    const char *js = "{\"model\":\"gpt\\u002d4o\",\"messages\":[{\"role\":\"user\"},{\"role\":\"tool\"}],"
                     "\"n\":3,\"t\":0.5,\"usage\":{\"prompt_tokens\":12}}";
    yr_jdoc_t d;
    assert_int_equal(yr_json_parse(&d, js, strlen(js), true), 0);
    int model = yr_json_get(&d, 0, "model");
    assert_true(yr_json_str_eq(&d, model, "gpt-4o"));
    yr_buf_t b;
    yr_buf_init(&b, 64);
    assert_int_equal(yr_json_str_decode(&d, model, &b), 0);
    assert_string_equal(b.data, "gpt-4o");
    yr_buf_free(&b);
    int msgs = yr_json_get(&d, 0, "messages");
    assert_int_equal(yr_json_type(&d, msgs), YR_JT_ARRAY);
    assert_int_equal(d.toks[msgs].size, 2);
    assert_true(yr_json_str_eq(&d, yr_json_get(&d, yr_json_at(&d, msgs, 1), "role"), "tool"));
    assert_int_equal(yr_json_at(&d, msgs, 2), -1);
    int64_t v;
    assert_true(yr_json_int(&d, yr_json_get(&d, 0, "n"), &v));
    assert_int_equal(v, 3);
    assert_false(yr_json_int(&d, yr_json_get(&d, 0, "t"), &v));
    assert_true(yr_json_int(&d, yr_json_get(&d, yr_json_get(&d, 0, "usage"), "prompt_tokens"), &v));
    assert_int_equal(v, 12);
    assert_int_equal(yr_json_get(&d, 0, "absent"), -1);
    yr_json_free(&d);
}

/* A raw NUL byte is refused wherever it is: jansson alone takes one right
 * after a number as the number's end (fuzz_gemini_in found the converter
 * accepting a body the strict tokenizer refuses). */
static void test_nul_byte_refused(void **state)
{
    (void)state;
    static const char after_number[] = "{\"a\":200\0,\"b\":1}";
    json_error_t je;
    json_t *j = json_loadb(after_number, sizeof(after_number) - 1, 0, &je);
    assert_non_null(j); /* what jansson does on its own */
    json_decref(j);
    assert_null(yr_json_loadb(after_number, sizeof(after_number) - 1, 0, &je));
    assert_int_equal(json_error_code(&je), json_error_invalid_syntax);
    assert_int_equal(je.position, 8);
    assert_int_equal(je.line, 1);
    assert_int_equal(je.column, 9);
    assert_int_equal(yr_json_load(after_number, sizeof(after_number) - 1, 0, &j), -EINVAL);
    yr_jdoc_t d;
    assert_true(yr_json_parse(&d, after_number, sizeof(after_number) - 1, true) < 0);
    yr_json_free(&d);
    static const char fine[] = "{\"a\":200,\"b\":\"\\u0041\"}";
    j = yr_json_loadb(fine, sizeof(fine) - 1, 0, &je);
    assert_non_null(j);
    json_decref(j);
}

static void test_many_keys_duplicate(void **state)
{
    (void)state;
    /* 5,000 keys and a duplicate at the end: found, and not in k^2 time. */
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    assert_int_equal(yr_buf_append_str(&b, YR_STR("{")), 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(yr_buf_printf(&b, "\"k%d\":%d,", i, i), 0);
    assert_int_equal(yr_buf_append_str(&b, YR_STR("\"k17\":0}")), 0);
    yr_jdoc_t d;
    assert_int_equal(yr_json_parse(&d, b.data, b.len, true), -EINVAL);
    assert_string_equal(d.err, "duplicate key");
    yr_json_free(&d);
    assert_int_equal(yr_json_parse(&d, b.data, b.len, false), 0);
    yr_json_free(&d);
    yr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_depth_limit),  cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_many_keys_duplicate), cmocka_unit_test(test_nul_byte_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
