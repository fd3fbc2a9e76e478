/* The Responses API's pure parts: sealing provider state into
 * encrypted_content (and refusing forged state), the encoder's reasoning
 * state, refusals and namespace calls, the request conversion of sealed
 * reasoning, tools and tool_choice, and the passthrough's event checks. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/resp_state.h"
#include "api/responses.h"
#include "providers/openai_responses.h"
#include "providers/provider.h"

static unsigned char key1[32], key2[32];
static const yr_resp_secret_t s1 = {key1, 32}, s2 = {key2, 32};

static int setup(void **st)
{
    (void)st;
    yr_resp_secret_derive("secret-one", key1);
    yr_resp_secret_derive("secret-two", key2);
    return 0;
}

static void seal_and_open(void **st)
{
    (void)st;
    json_t *state = json_pack("{s:i, s:[{s:s, s:s, s:s}]}", "v", 1, "b", "type", "thinking",
                              "thinking", "hmm", "signature", "sig-1");
    char *sealed = yr_resp_state_seal(&s1, state);
    assert_non_null(sealed);
    assert_memory_equal(sealed, "yr1.", 4);
    json_t *back = yr_resp_state_open(&s1, sealed, strlen(sealed));
    assert_true(json_equal(back, state));
    json_decref(back);
    /* another secret, a changed byte, a forged body with the old MAC */
    assert_null(yr_resp_state_open(&s2, sealed, strlen(sealed)));
    char *bad = strdup(sealed);
    bad[6] = bad[6] == 'A' ? 'B' : 'A';
    assert_null(yr_resp_state_open(&s1, bad, strlen(bad)));
    free(bad);
    assert_null(yr_resp_state_open(&s1, "yr1.e30=.AAAA", 13));
    assert_null(yr_resp_state_open(&s1, "gAAAAABo-openai", 15));
    yr_resp_secret_t none = {0};
    assert_null(yr_resp_state_seal(&none, state));
    json_decref(state);
    free(sealed);
}

/* Runs events through a non-streamed encoder; returns the stored response. */
static json_t *encode(const yr_resp_info_t *info, const yr_event_t *evs, size_t n, bool client,
                      json_t **client_out)
{
    yr_resp_enc_opts_t o = {
        .id_seed = YR_STR("req_1"), .model = YR_STR("m"), .info = info, .secret = s1};
    yr_resp_enc_t *e = yr_resp_enc_new(&o);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(yr_resp_enc_event(e, &evs[i], &out), 0);
    json_t *stored = json_loads(yr_resp_enc_final(e), 0, NULL);
    if (client)
        *client_out = json_loadb(out.data, out.len, 0, NULL);
    yr_buf_free(&out);
    yr_resp_enc_free(e);
    return stored;
}

static void anthropic_thinking_sealed(void **st)
{
    (void)st;
    yr_resp_info_t info = {.include_enc = false};
    yr_event_t evs[] = {
        {.type = YR_EV_START},
        {.type = YR_EV_REASONING, .text = YR_STR("Let me ")},
        {.type = YR_EV_REASONING, .text = YR_STR("think.")},
        {.type = YR_EV_REASONING, .signature = YR_STR("SIG")},
        {.type = YR_EV_REASONING, .redacted = true, .signature = YR_STR("OPAQUE")},
        {.type = YR_EV_TOOL_START, .index = 0, .id = YR_STR("toolu_1"), .name = YR_STR("f")},
        {.type = YR_EV_TOOL_ARGS, .index = 0, .text = YR_STR("{}")},
        {.type = YR_EV_TOOL_END, .index = 0},
        {.type = YR_EV_FINISH, .finish = YR_FINISH_TOOL_CALLS},
        {.type = YR_EV_END},
    };
    json_t *client = NULL;
    json_t *r = encode(&info, evs, sizeof(evs) / sizeof(evs[0]), true, &client);
    json_t *rs = json_array_get(json_object_get(r, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(rs, "type")), "reasoning");
    const char *enc = json_string_value(json_object_get(rs, "encrypted_content"));
    assert_non_null(enc);
    json_t *state = yr_resp_state_open(&s1, enc, strlen(enc));
    json_t *want =
        json_pack("[{s:s, s:s, s:s}, {s:s, s:s}]", "type", "thinking", "thinking", "Let me think.",
                  "signature", "SIG", "type", "redacted_thinking", "data", "OPAQUE");
    assert_true(json_equal(json_object_get(state, "b"), want));
    /* the client did not ask: not in its copy */
    json_t *crs = json_array_get(json_object_get(client, "output"), 0);
    assert_null(json_object_get(crs, "encrypted_content"));
    json_decref(want);
    json_decref(state);
    json_decref(client);
    json_decref(r);
}

static void gemini_signature_namespace_refusal(void **st)
{
    (void)st;
    yr_resp_info_t info = {.include_enc = true, .namespaces = json_pack("[s]", "crm")};
    yr_event_t evs[] = {
        {.type = YR_EV_START},
        {.type = YR_EV_REFUSAL, .text = YR_STR("no")},
        {.type = YR_EV_TOOL_START,
         .index = 0,
         .name = YR_STR("crm__lookup"),
         .signature = YR_STR("GSIG")},
        {.type = YR_EV_TOOL_END, .index = 0},
        {.type = YR_EV_END},
    };
    json_t *r = encode(&info, evs, sizeof(evs) / sizeof(evs[0]), false, NULL);
    json_t *out = json_object_get(r, "output");
    assert_int_equal(json_array_size(out), 3);
    json_t *msg = json_array_get(out, 0), *rs = json_array_get(out, 1),
           *fc = json_array_get(out, 2);
    json_t *part = json_array_get(json_object_get(msg, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "type")), "refusal");
    assert_string_equal(json_string_value(json_object_get(part, "refusal")), "no");
    assert_string_equal(json_string_value(json_object_get(fc, "name")), "lookup");
    assert_string_equal(json_string_value(json_object_get(fc, "namespace")), "crm");
    const char *enc = json_string_value(json_object_get(rs, "encrypted_content"));
    json_t *state = yr_resp_state_open(&s1, enc, strlen(enc));
    const char *call_id = json_string_value(json_object_get(fc, "call_id"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(state, "s"), call_id)),
                        "GSIG");
    json_decref(state);
    json_decref(r);
    json_decref(info.namespaces);
}

static json_t *convert(const char *body, int want_rc, yr_resp_info_t *info)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    yr_api_error_t err = {0};
    int rc = yr_resp_request_to_openai(body, strlen(body), NULL, NULL, &s1, info, &out, &err);
    assert_int_equal(rc, want_rc);
    json_t *chat = rc == 0 ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    yr_buf_free(&out);
    return chat;
}

static void sealed_reasoning_restored(void **st)
{
    (void)st;
    json_t *state = json_pack("{s:i, s:[{s:s, s:s, s:s}], s:{s:s}}", "v", 1, "b", "type",
                              "thinking", "thinking", "t", "signature", "S1", "s", "call_9", "G9");
    char *sealed = yr_resp_state_seal(&s1, state);
    char body[2048];
    snprintf(
        body, sizeof(body),
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"encrypted_content\":\"%s\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_9\",\"name\":\"f\",\"namespace\":\"ns\","
        "\"arguments\":\"{}\"},{\"type\":\"web_search_call\",\"id\":\"ws_1\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_9\",\"output\":\"ok\"}],"
        "\"prompt_cache_key\":\"x\",\"service_tier\":\"auto\"}",
        sealed);
    yr_resp_info_t info;
    json_t *chat = convert(body, 0, &info);
    json_t *asst = json_array_get(json_object_get(chat, "messages"), 1);
    assert_true(json_equal(json_object_get(asst, "thinking_blocks"), json_object_get(state, "b")));
    json_t *tc = json_array_get(json_object_get(asst, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(tc, "function"), "name")),
                        "ns__f");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(tc, "extra_content"), "google"), "thought_signature")),
        "G9");
    assert_int_equal(json_array_size(json_object_get(chat, "messages")), 3);
    json_decref(chat);
    yr_resp_info_free(&info);
    free(sealed);
    json_decref(state);
}

static void tools_flattened_dropped_refused(void **st)
{
    (void)st;
    yr_resp_info_t info;
    json_t *chat =
        convert("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"},"
                "{\"type\":\"namespace\",\"name\":\"crm\",\"description\":\"d\",\"tools\":"
                "[{\"type\":\"function\",\"name\":\"a\"},{\"type\":\"custom\",\"name\":\"c\"}]}],"
                "\"tool_choice\":{\"type\":\"function\",\"name\":\"a\",\"namespace\":\"crm\"}}",
                0, &info);
    assert_string_equal(info.dropped_tools, "web_search,custom");
    json_t *tools = json_object_get(chat, "tools");
    assert_int_equal(json_array_size(tools), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(tools, 0), "function"), "name")),
                        "crm__a");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(chat, "tool_choice"), "function"), "name")),
        "crm__a");
    json_decref(chat);
    yr_resp_info_free(&info);
    /* a choice that needs a built-in tool: readable (model set), not translatable */
    convert("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}],"
            "\"tool_choice\":{\"type\":\"web_search\"}}",
            -EINVAL, &info);
    assert_string_equal(info.model, "m");
    yr_resp_info_free(&info);
    convert("{\"input\":\"x\"}", -EINVAL, &info);
    assert_string_equal(info.model, "");
}

static int relay(yr_call_ctx_t *cx, const char *data, yr_buf_t *out, bool *done)
{
    yr_frame_t m = {.event = YR_STR(""), .data = yr_str(data)};
    return yr_dialect_openai_responses.pass_event(cx, &m, out, done);
}

static void passthrough_events(void **st)
{
    (void)st;
    yr_pool_t *pool = yr_pool_create(4096);
    yr_call_ctx_t cx = {.pool = pool};
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    bool done = false;
    assert_int_equal(relay(&cx,
                           "{\"type\":\"response.created\",\"sequence_number\":0,"
                           "\"response\":{\"id\":\"resp_1\",\"output\":[]}}",
                           &out, &done),
                     0);
    assert_false(cx.content_seen);
    assert_int_equal(relay(&cx, "{not json", &out, &done), -EINVAL);
    /* a failure before content fails over */
    yr_call_ctx_t cx2 = {.pool = pool};
    assert_int_equal(relay(&cx2,
                           "{\"type\":\"response.failed\",\"response\":{\"error\":"
                           "{\"code\":\"rate_limit_exceeded\",\"message\":\"slow\"}}}",
                           &out, &done),
                     -ECANCELED);
    assert_int_equal(cx2.error_status, 429);
    assert_int_equal(relay(&cx,
                           "{\"type\":\"response.output_text.delta\",\"sequence_number\":1,"
                           "\"delta\":\"hi\"}",
                           &out, &done),
                     0);
    assert_true(cx.content_seen);
    assert_int_equal(relay(&cx,
                           "{\"type\":\"response.completed\",\"sequence_number\":2,"
                           "\"response\":{\"id\":\"resp_1\",\"output\":[],\"usage\":"
                           "{\"input_tokens\":5,\"output_tokens\":7,\"input_tokens_details\":"
                           "{\"cached_tokens\":2},\"output_tokens_details\":"
                           "{\"reasoning_tokens\":3}}}}",
                           &out, &done),
                     0);
    assert_true(done);
    assert_int_equal(cx.usage.prompt_tokens, 5);
    assert_int_equal(cx.usage.completion_tokens, 7);
    assert_int_equal(cx.usage.cached_tokens, 2);
    assert_int_equal(cx.usage.reasoning_tokens, 3);
    assert_non_null(strstr(yr_oai_resp_pass_final(&cx), "resp_1"));
    assert_non_null(strstr(out.data, "event: response.output_text.delta\ndata: {"));
    yr_buf_reset(&out);
    assert_int_equal(yr_oai_resp_pass_failed(&cx, "server_error", YR_STR("cut"), &out), 0);
    assert_non_null(strstr(out.data, "\"sequence_number\":3"));
    assert_non_null(strstr(out.data, "\"status\":\"failed\""));
    yr_buf_free(&out);
    yr_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seal_and_open),
        cmocka_unit_test(anthropic_thinking_sealed),
        cmocka_unit_test(gemini_signature_namespace_refusal),
        cmocka_unit_test(sealed_reasoning_restored),
        cmocka_unit_test(tools_flattened_dropped_refused),
        cmocka_unit_test(passthrough_events),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
