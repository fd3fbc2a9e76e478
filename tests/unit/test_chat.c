/* Chat request tests: yr_chat_parse accepts the shapes clients send and
 * rejects bad ones with the right error kind, param and message (one table);
 * yr_json_replace_top_string swaps only the top-level key and keeps every
 * other byte. */
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

#include "api/chat.h"

/* ---- accepted requests ----------------------------------------------------- */

static void parse_ok(const char *body, yr_chat_req_t *req)
{
    yr_api_error_t err;
    memset(&err, 0, sizeof(err));
    int rc = yr_chat_parse(body, strlen(body), req, &err);
    if (rc != 0)
        fail_msg("rejected (%d, param '%s'): %s\nbody: %s", (int)err.err, err.param, err.message,
                 body);
    assert_true(req->model.len > 0);
    /* jansson (used by translating providers) accepts it too. */
    assert_int_equal(yr_chat_load_root(req), 0);
    assert_non_null(req->root);
}

static void test_accept_string_content(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse_ok("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &req);
    assert_int_equal(req.model.len, 6);
    assert_memory_equal(req.model.ptr, "gpt-4o", 6);
    assert_false(req.stream);
    assert_false(req.include_usage);
    /* model points into the body (no copy on the hot path) */
    assert_true(req.model.ptr > req.body && req.model.ptr < req.body + req.len);
    yr_chat_free(&req);
}

static void test_accept_all_roles_and_options(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse_ok(
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"temperature\":0.7,\"top_p\":1,\"max_tokens\":10,\"max_completion_tokens\":5,"
        "\"n\":128,\"seed\":-3,\"presence_penalty\":-1.5,\"frequency_penalty\":0,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
        "\"unknown_field\":{\"kept\":[1,2]},\"user\":\"u1\","
        "\"messages\":["
        "{\"role\":\"system\",\"content\":\"s\"},"
        "{\"role\":\"developer\",\"content\":\"d\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\",\"detail\":\"low\"}},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AAAA\",\"format\":\"wav\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"},"
        "{\"role\":\"assistant\",\"tool_calls\":[]},"
        "{\"role\":\"function\",\"name\":\"f\",\"content\":\"old style\"}"
        "]}",
        &req);
    assert_true(req.stream);
    assert_true(req.include_usage);
    assert_int_equal(req.model.len, 1);
    yr_chat_free(&req);
}

static void test_accept_nulls_for_optional_fields(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse_ok("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
             "\"stream\":null,\"temperature\":null,\"max_tokens\":null,\"n\":null,"
             "\"stream_options\":null}",
             &req);
    assert_false(req.stream);
    assert_false(req.include_usage);
    yr_chat_free(&req);
    /* stream false, include_usage false, image_url as a bare string */
    parse_ok("{\"model\":\"m\",\"stream\":false,\"stream_options\":{\"include_usage\":false},"
             "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
             "\"image_url\":\"data:image/png;base64,AA\"}]}]}",
             &req);
    assert_false(req.stream);
    assert_false(req.include_usage);
    yr_chat_free(&req);
}

static void test_accept_unicode_model(void **state)
{
    (void)state;
    yr_chat_req_t req;
    parse_ok("{\"model\":\"m\\u00e9\\ud83d\\ude00\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"\"}]}",
             &req);
    assert_int_equal(req.model.len, 1 + 2 + 4);
    assert_memory_equal(req.model.ptr, "m\xc3\xa9\xf0\x9f\x98\x80", 7);
    yr_chat_free(&req);
}

static void test_body_not_nul_terminated(void **state)
{
    (void)state;
    const char src[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    size_t n = sizeof(src) - 1;
    char *heap = malloc(n); /* no NUL after it: ASan flags any over-read */
    memcpy(heap, src, n);
    yr_chat_req_t req;
    yr_api_error_t err;
    assert_int_equal(yr_chat_parse(heap, n, &req, &err), 0);
    yr_chat_free(&req);
    /* A trailing garbage byte beyond len is not looked at. */
    assert_int_equal(yr_chat_parse(heap, n - 1, &req, &err), -EINVAL);
    assert_int_equal(err.err, YR_E_INVALID_JSON);
    assert_null(req.root);
    free(heap);
}

/* ---- rejected requests ----------------------------------------------------- */

typedef struct {
    const char *name;
    const char *body;
    yr_err_t err;
    const char *param;   /* "" = null */
    const char *message; /* a substring the message must contain */
} reject_case_t;

#define MSG1(c) "{\"model\":\"m\",\"messages\":[" c "]}"

static const reject_case_t rejects[] = {
    {"empty body", "", YR_E_INVALID_JSON, "", "could not parse the JSON body"},
    {"truncated", "{\"model\":\"m\",", YR_E_INVALID_JSON, "", "could not parse"},
    {"trailing garbage", MSG1("{\"role\":\"user\",\"content\":\"x\"}") "x", YR_E_INVALID_JSON, "",
     "could not parse"},
    {"bare string", "\"model\"", YR_E_INVALID_REQUEST, "", "must be a JSON object"},
    {"single quotes", "{'model':'m'}", YR_E_INVALID_JSON, "", "at byte 1"},
    {"duplicate model", "{\"model\":\"a\",\"model\":\"b\",\"messages\":[]}", YR_E_INVALID_JSON, "",
     "duplicate"},
    {"duplicate nested", MSG1("{\"role\":\"user\",\"role\":\"user\",\"content\":\"x\"}"),
     YR_E_INVALID_JSON, "", "duplicate"},
    {"array body", "[{\"model\":\"m\"}]", YR_E_INVALID_REQUEST, "", "must be a JSON object"},
    {"missing model", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     YR_E_INVALID_REQUEST, "model", "you must provide a model parameter"},
    {"empty model", "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     YR_E_INVALID_REQUEST, "model", "non-empty string"},
    {"numeric model", "{\"model\":4,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     YR_E_INVALID_REQUEST, "model", "non-empty string"},
    {"null model", "{\"model\":null,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     YR_E_INVALID_REQUEST, "model", "non-empty string"},
    {"missing messages", "{\"model\":\"m\"}", YR_E_INVALID_REQUEST, "messages",
     "'messages' is a required property"},
    {"messages object", "{\"model\":\"m\",\"messages\":{}}", YR_E_INVALID_REQUEST, "messages",
     "must be an array"},
    {"messages string", "{\"model\":\"m\",\"messages\":\"hi\"}", YR_E_INVALID_REQUEST, "messages",
     "must be an array"},
    {"messages empty", "{\"model\":\"m\",\"messages\":[]}", YR_E_INVALID_REQUEST, "messages",
     "at least one message"},
    {"message not object", MSG1("{\"role\":\"user\",\"content\":\"x\"},\"hi\""),
     YR_E_INVALID_REQUEST, "messages[1]", "messages[1] must be an object"},
    {"message missing role", MSG1("{\"content\":\"x\"}"), YR_E_INVALID_REQUEST, "messages[0].role",
     "is required"},
    {"role not string", MSG1("{\"role\":1,\"content\":\"x\"}"), YR_E_INVALID_REQUEST,
     "messages[0].role", "must be a string"},
    {"unknown role", MSG1("{\"role\":\"wizard\",\"content\":\"x\"}"), YR_E_INVALID_REQUEST,
     "messages[0].role", "'wizard' is not one of"},
    {"role case matters", MSG1("{\"role\":\"User\",\"content\":\"x\"}"), YR_E_INVALID_REQUEST,
     "messages[0].role", "'User'"},
    {"user without content", MSG1("{\"role\":\"user\"}"), YR_E_INVALID_REQUEST,
     "messages[0].content", "is required"},
    {"user null content", MSG1("{\"role\":\"user\",\"content\":null}"), YR_E_INVALID_REQUEST,
     "messages[0].content", "is required"},
    {"content number", MSG1("{\"role\":\"user\",\"content\":5}"), YR_E_INVALID_REQUEST,
     "messages[0].content", "must be a string or an array"},
    {"content object", MSG1("{\"role\":\"system\",\"content\":{\"text\":\"x\"}}"),
     YR_E_INVALID_REQUEST, "messages[0].content", "must be a string or an array"},
    {"content bool", MSG1("{\"role\":\"assistant\",\"content\":true}"), YR_E_INVALID_REQUEST,
     "messages[0].content", "must be a string or an array"},
    {"part not object", MSG1("{\"role\":\"user\",\"content\":[\"text\"]}"), YR_E_INVALID_REQUEST,
     "messages[0].content[0]", "must be an object"},
    {"part without type", MSG1("{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}"),
     YR_E_INVALID_REQUEST, "messages[0].content[0]",
     "messages[0].content[0].type must be a string"},
    {"part type number", MSG1("{\"role\":\"user\",\"content\":[{\"type\":3}]}"),
     YR_E_INVALID_REQUEST, "messages[0].content[0]", ".type must be a string"},
    {"text part without text",
     MSG1("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\"}]"
          "}"),
     YR_E_INVALID_REQUEST, "messages[0].content[1]", "content[1].text must be a string"},
    {"image_url without url",
     MSG1("{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}"),
     YR_E_INVALID_REQUEST, "messages[0].content[0]", "image_url.url must be a string"},
    {"image_url missing", MSG1("{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}"),
     YR_E_INVALID_REQUEST, "messages[0].content[0]", "image_url.url must be a string"},
    {"second message bad", MSG1("{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"nobody\"}"),
     YR_E_INVALID_REQUEST, "messages[1].role", "'nobody'"},
    {"stream string", "", YR_E_INVALID_REQUEST, "stream", "'stream' has the wrong type"},
    {"stream number", "", YR_E_INVALID_REQUEST, "stream", "'stream' has the wrong type"},
    {"temperature string", "", YR_E_INVALID_REQUEST, "temperature",
     "'temperature' has the wrong type"},
    {"top_p bool", "", YR_E_INVALID_REQUEST, "top_p", "wrong type"},
    {"max_tokens 0", "", YR_E_INVALID_REQUEST, "max_tokens", "'max_tokens' must be at least 1"},
    {"max_tokens negative", "", YR_E_INVALID_REQUEST, "max_tokens", "at least 1"},
    {"max_tokens real", "", YR_E_INVALID_REQUEST, "max_tokens", "wrong type"},
    {"max_completion_tokens string", "", YR_E_INVALID_REQUEST, "max_completion_tokens",
     "wrong type"},
    {"n 0", "", YR_E_INVALID_REQUEST, "n", "'n' must be between 1 and 128"},
    {"n 129", "", YR_E_INVALID_REQUEST, "n", "between 1 and 128"},
    {"n string", "", YR_E_INVALID_REQUEST, "n", "wrong type"},
    {"tools object", "", YR_E_INVALID_REQUEST, "tools", "wrong type"},
    {"stream_options array", "", YR_E_INVALID_REQUEST, "stream_options", "wrong type"},
    {"seed real", "", YR_E_INVALID_REQUEST, "seed", "wrong type"},
};

/* The "" bodies above are one valid request plus this extra member. */
static const char *const extra_members[][2] = {
    {"stream string", "\"stream\":\"true\""},
    {"stream number", "\"stream\":1"},
    {"temperature string", "\"temperature\":\"0.7\""},
    {"top_p bool", "\"top_p\":true"},
    {"max_tokens 0", "\"max_tokens\":0"},
    {"max_tokens negative", "\"max_tokens\":-5"},
    {"max_tokens real", "\"max_tokens\":10.5"},
    {"max_completion_tokens string", "\"max_completion_tokens\":\"5\""},
    {"n 0", "\"n\":0"},
    {"n 129", "\"n\":129"},
    {"n string", "\"n\":\"2\""},
    {"tools object", "\"tools\":{}"},
    {"stream_options array", "\"stream_options\":[]"},
    {"seed real", "\"seed\":1.5"},
};

static void test_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
        const reject_case_t *rc = &rejects[i];
        char body[1024];
        snprintf(body, sizeof(body), "%s", rc->body);
        for (size_t k = 0; k < sizeof(extra_members) / sizeof(extra_members[0]); k++) {
            if (strcmp(extra_members[k][0], rc->name) == 0)
                snprintf(
                    body, sizeof(body),
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s}",
                    extra_members[k][1]);
        }
        yr_chat_req_t req;
        yr_api_error_t err;
        memset(&err, 0x55, sizeof(err));
        memset(&req, 0x55, sizeof(req));
        int r = yr_chat_parse(body, strlen(body), &req, &err);
        if (r != -EINVAL)
            fail_msg("%s: accepted (rc %d): %s", rc->name, r, body);
        assert_null(req.root);
        if (err.err != rc->err)
            fail_msg("%s: err %d, want %d (%s)", rc->name, (int)err.err, (int)rc->err, err.message);
        if (strcmp(err.param, rc->param) != 0)
            fail_msg("%s: param '%s', want '%s'", rc->name, err.param, rc->param);
        assert_non_null(memchr(err.message, '\0', sizeof(err.message)));
        if (strstr(err.message, rc->message) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", rc->name, err.message, rc->message);
    }
}

static void test_error_message_bounded(void **state)
{
    (void)state;
    /* A huge role name and a deep index do not overflow the fixed buffers. */
    char body[4096];
    char role[2000];
    memset(role, 'r', sizeof(role) - 1);
    role[sizeof(role) - 1] = '\0';
    snprintf(body, sizeof(body), MSG1("{\"role\":\"%s\",\"content\":\"x\"}"), role);
    yr_chat_req_t req;
    yr_api_error_t err;
    assert_int_equal(yr_chat_parse(body, strlen(body), &req, &err), -EINVAL);
    assert_int_equal(err.err, YR_E_INVALID_REQUEST);
    assert_true(strlen(err.message) < sizeof(err.message));
    assert_null(strstr(err.message, role)); /* truncated to 40 characters */
}

/* ---- yr_json_replace_top_string ------------------------------------------- */

static void replace_is(const char *in, const char *value, const char *expect)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    int rc = yr_json_replace_top_string(in, strlen(in), "model", yr_str(value), &out);
    if (rc != 0)
        fail_msg("rc %d for %s", rc, in);
    assert_int_equal(out.len, strlen(expect));
    assert_string_equal(out.data, expect);
    /* Still valid JSON, and the top-level model really is the new value. */
    json_t *root = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "model")), value);
    json_decref(root);
    yr_buf_free(&out);
}

static void test_replace_simple(void **state)
{
    (void)state;
    replace_is("{\"model\":\"gpt-4o\",\"messages\":[]}", "gpt-4o-2024-08-06",
               "{\"model\":\"gpt-4o-2024-08-06\",\"messages\":[]}");
    replace_is("{\"messages\":[],\"model\":\"a\"}", "b", "{\"messages\":[],\"model\":\"b\"}");
    /* A value that needs escaping is written as a JSON string. */
    replace_is("{\"model\":\"a\"}", "we\"ird\\na\xc3\xa9",
               "{\"model\":\"we\\\"ird\\\\na\xc3\xa9\"}");
}

static void test_replace_preserves_bytes(void **state)
{
    (void)state;
    replace_is(" {\n  \"temperature\" : 0.7,\t\"max_tokens\":1e2 , \"x\":-0.0e+00,\r\n"
               "  \"model\" :  \"old\"  ,\n  \"name\":\"\\u00e9\\n\\/\",\"t\":true,\"f\":null }\n",
               "new",
               " {\n  \"temperature\" : 0.7,\t\"max_tokens\":1e2 , \"x\":-0.0e+00,\r\n"
               "  \"model\" :  \"new\"  ,\n  \"name\":\"\\u00e9\\n\\/\",\"t\":true,\"f\":null }\n");
}

static void test_replace_only_top_level(void **state)
{
    (void)state;
    /* A nested "model" key, and "model": inside string values, come first. */
    const char *in = "{\"messages\":[{\"role\":\"user\",\"content\":\"\\\"model\\\": \\\"x\\\"\","
                     "\"model\":\"nested\"}],"
                     "\"meta\":{\"model\":\"inner\",\"list\":[{\"model\":1}]},"
                     "\"note\":\"model\","
                     "\"model\":\"top\","
                     "\"tail\":\"\\\\\"}";
    const char *expect =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"\\\"model\\\": \\\"x\\\"\","
        "\"model\":\"nested\"}],"
        "\"meta\":{\"model\":\"inner\",\"list\":[{\"model\":1}]},"
        "\"note\":\"model\","
        "\"model\":\"R\","
        "\"tail\":\"\\\\\"}";
    replace_is(in, "R", expect);
}

static void test_replace_escaped_quotes_before_key(void **state)
{
    (void)state;
    /* Strings ending in an escaped backslash, and containing brackets and
     * braces, before the key. */
    replace_is("{\"a\":\"x\\\\\",\"b\":\"}{][\\\"\",\"c\":[\"]\",{\"}\":\"[\"}],\"model\":\"m\"}",
               "n",
               "{\"a\":\"x\\\\\",\"b\":\"}{][\\\"\",\"c\":[\"]\",{\"}\":\"[\"}],\"model\":\"n\"}");
    /* Keys that only look like model: longer, shorter, other case, spaces. */
    replace_is("{\"models\":\"a\",\"mode\":\"b\",\"Model\":\"c\",\" model\":1,\"model\":\"d\"}",
               "e",
               "{\"models\":\"a\",\"mode\":\"b\",\"Model\":\"c\",\" model\":1,\"model\":\"e\"}");
}

static void test_replace_non_string_value(void **state)
{
    (void)state;
    /* Whatever the old value was, the result has a string there. */
    replace_is("{\"model\":null}", "m", "{\"model\":\"m\"}");
    replace_is("{\"model\":12.5e3,\"x\":1}", "m", "{\"model\":\"m\",\"x\":1}");
    replace_is("{\"model\":{\"a\":[1,{\"b\":\"}\"}]},\"x\":1}", "m", "{\"model\":\"m\",\"x\":1}");
    replace_is("{\"model\":[\"]\",[]],\"x\":1}", "m", "{\"model\":\"m\",\"x\":1}");
    replace_is("{\"model\":true}", "m", "{\"model\":\"m\"}");
}

static void test_replace_absent(void **state)
{
    (void)state;
    const char *cases[] = {
        "{}",
        " { } ",
        "{\"messages\":[{\"model\":\"x\"}]}",
        "{\"a\":\"\\\"model\\\":\\\"x\\\"\"}",
        "{\"meta\":{\"model\":\"m\"},\"Model\":\"n\"}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yr_buf_t out;
        yr_buf_init(&out, 4096);
        int rc = yr_json_replace_top_string(cases[i], strlen(cases[i]), "model", YR_STR("z"), &out);
        if (rc != -ENOENT)
            fail_msg("case %zu: rc %d", i, rc);
        yr_buf_free(&out);
    }
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    assert_int_equal(yr_json_replace_top_string("[]", 2, "model", YR_STR("z"), &out), -EINVAL);
    assert_int_equal(yr_json_replace_top_string("", 0, "model", YR_STR("z"), &out), -EINVAL);
    yr_buf_free(&out);
}

static void test_replace_buffer_cap(void **state)
{
    (void)state;
    const char *in = "{\"model\":\"a\",\"x\":1}";
    yr_buf_t out;
    yr_buf_init(&out, 10);
    assert_int_equal(yr_json_replace_top_string(in, strlen(in), "model", YR_STR("b"), &out),
                     -E2BIG);
    yr_buf_free(&out);
    /* Room for the text plus the new value (the function reserves that much
     * up front, before it knows the old value's length). */
    yr_buf_init(&out, strlen(in) + 1 + 2);
    assert_int_equal(yr_json_replace_top_string(in, strlen(in), "model", YR_STR("b"), &out), 0);
    assert_string_equal(out.data, "{\"model\":\"b\",\"x\":1}");
    yr_buf_free(&out);
}

/* Every body yr_chat_parse accepts can be rewritten, and the rewrite parses
 * to the same document except for the model. */
static void test_replace_after_parse(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{ \"messages\" : [ { \"role\" : \"user\" , \"content\" : [ { \"type\" : \"text\" , "
        "\"text\" : \"\\\"model\\\":\\\"no\\\"\" } ] } ] , \"temperature\" : 0.70 , "
        "\"model\" : \"fast-chat\" , \"stream\" : true }",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        yr_chat_req_t req;
        parse_ok(bodies[i], &req);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        assert_int_equal(yr_json_replace_top_string(bodies[i], strlen(bodies[i]), "model",
                                                    YR_STR("upstream-name"), &out),
                         0);
        json_t *after = json_loadb(out.data, out.len, 0, NULL);
        assert_non_null(after);
        assert_string_equal(json_string_value(json_object_get(after, "model")), "upstream-name");
        assert_int_equal(
            json_object_set_new(after, "model",
                                json_string(json_string_value(json_object_get(req.root, "model")))),
            0);
        assert_true(json_equal(after, req.root));
        /* The length changed only by the difference in model names. */
        assert_int_equal(out.len + req.model.len, strlen(bodies[i]) + strlen("upstream-name"));
        json_decref(after);
        yr_chat_free(&req);
        yr_buf_free(&out);
    }
}

/* JSON lets a key be spelled with escapes: {"\u006dodel": ...} is the key
 * "model", and yr_chat_parse (jansson) routes on it. The rewrite must find the
 * same key, or an aliased model fails at the upstream step with -ENOENT. */
static void test_replace_escaped_key_that_parse_accepts(void **state)
{
    (void)state;
    const char *body = "{\"\\u006dodel\":\"alias\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}";
    yr_chat_req_t req;
    parse_ok(body, &req);
    assert_int_equal(req.model.len, 5);
    assert_memory_equal(req.model.ptr, "alias", 5);
    yr_chat_free(&req);
    /* The splice compares raw key bytes: it reports the key as absent, and
     * the OpenAI provider turns that into a 400 rather than forwarding a
     * body whose model was not rewritten (see integ/chat.test.mjs). */
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    int rc = yr_json_replace_top_string(body, strlen(body), "model", YR_STR("up"), &out);
    assert_int_equal(rc, -ENOENT);
    yr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_string_content),
        cmocka_unit_test(test_accept_all_roles_and_options),
        cmocka_unit_test(test_accept_nulls_for_optional_fields),
        cmocka_unit_test(test_accept_unicode_model),
        cmocka_unit_test(test_body_not_nul_terminated),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_error_message_bounded),
        cmocka_unit_test(test_replace_simple),
        cmocka_unit_test(test_replace_preserves_bytes),
        cmocka_unit_test(test_replace_only_top_level),
        cmocka_unit_test(test_replace_escaped_quotes_before_key),
        cmocka_unit_test(test_replace_non_string_value),
        cmocka_unit_test(test_replace_absent),
        cmocka_unit_test(test_replace_buffer_cap),
        cmocka_unit_test(test_replace_after_parse),
        cmocka_unit_test(test_replace_escaped_key_that_parse_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
