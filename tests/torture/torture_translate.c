/* Allocation-failure torture for the translators, in the style of curl's
 * torture tests: run one translation with the Nth allocation failing, for
 * N = 1, 2, 3, ... until a run completes without reaching N (every
 * allocation of that path has then been failed once). Every run where a
 * failure was injected must return an error, and under ASan nothing may
 * crash or leak (LeakSanitizer checks at exit).
 *
 * malloc, calloc and realloc are wrapped at link time
 * (-Wl,--wrap=..., tests/CMakeLists.txt), which reaches every call made by
 * the gateway's own code; jansson allocates inside libjansson, so its
 * allocator is replaced with json_set_alloc_funcs. Allocations made inside
 * other libraries (libc's strdup) are not failed.
 *
 * One exemption, jansson's own: its parser ignores a failed growth of the
 * token buffer (lex_save drops the byte), so json_loadb may *succeed* on
 * a truncated string when an allocation inside it failed. We cannot fix
 * the library; json_loadb and json_loads are wrapped too (--wrap), and a
 * run whose only injected failure happened inside them may succeed. Those
 * runs are counted and printed, not hidden.
 *
 * Paths (for the Anthropic, the Gemini and the Bedrock dialect each):
 *   request  an OpenAI chat request (messages, a tool, an image data URL)
 *            -> parse -> the route's request body;
 *   stream   the provider's event stream (text, a tool call, usage) ->
 *            its decoder -> the OpenAI chunk encoder;
 *   response (Gemini) a complete answer -> decoder -> OpenAI encoder.
 * A failed allocation must be reported as -ENOMEM (the gateway answers
 * 500): -EINVAL would blame the client (a 400) or, decoding, the provider
 * (a failover and a strike on its route). The exception is jansson's
 * loader when the failure makes it misread the text (see above). */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat.h"
#include "api/oai_enc.h"
#include "providers/bedrock.h"
#include "providers/provider.h"
#include "providers/vertex.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool armed;        /* count only inside the translation */
static unsigned long nth; /* the allocation to fail; 0 = none */
static unsigned long count;
static bool injected;
static bool in_loader;       /* inside jansson's json_loadb / json_loads */
static bool injected_loader; /* the injected failure was inside the loader */

json_t *__real_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *__real_json_loads(const char *input, size_t flags, json_error_t *error);
json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error);

json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
    in_loader = true;
    json_t *v = __real_json_loadb(buf, len, flags, error);
    in_loader = false;
    return v;
}

json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error)
{
    in_loader = true;
    json_t *v = __real_json_loads(input, flags, error);
    in_loader = false;
    return v;
}

/* The sanitizers' (weak: absent in a build without them): print the
 * current stack; check for leaks now, so a leak is pinned to the N that
 * caused it (nonzero when it found some). */
__attribute__((weak)) void __sanitizer_print_stack_trace(void);
__attribute__((weak)) int __lsan_do_recoverable_leak_check(void);
static unsigned long trace_at; /* YR_TORTURE_TRACE=N: where the Nth allocation is */

static bool fail_now(void)
{
    if (!armed || nth == 0)
        return false;
    if (++count != nth)
        return false;
    injected = true;
    injected_loader = in_loader;
    if (trace_at == nth) {
        armed = false;
        fprintf(stderr, "allocation %lu fails here:\n", nth);
        if (__sanitizer_print_stack_trace != NULL)
            __sanitizer_print_stack_trace();
        armed = true;
    }
    return true;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

static void *json_alloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s (N=%lu)\n", __FILE__, __LINE__, #c, nth);     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char request_body[] =
    "{\"model\":\"claude\",\"max_tokens\":256,\"temperature\":0.5,\"stream\":true,"
    "\"stop\":[\"END\"],\"messages\":["
    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in this image?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
    "\"function\",\"function\":{\"name\":\"look\",\"arguments\":\"{\\\"zoom\\\":2}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a cat\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"look\",\"description\":\"Look\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"zoom\":{\"type\":\"integer\"}}}}}]}";

static yr_provider_conf_t provider = {
    .name = "anthropic",
    .kind = YR_KIND_ANTHROPIC,
    .base_url = "https://api.anthropic.com",
    .api_key = "sk-ant-torture",
    .connect_timeout_ms = 5000,
    .first_byte_timeout_ms = 120000,
    .timeout_ms = 600000,
    .anthropic_version = "2023-06-01",
    .default_max_tokens = 4096,
};
static yr_route_conf_t route = {.provider = &provider, .model = "claude-x"};
static yr_provider_conf_t gprovider = {
    .name = "gemini",
    .kind = YR_KIND_GEMINI,
    .base_url = "https://generativelanguage.googleapis.com",
    .api_key = "AIza-torture",
    .connect_timeout_ms = 5000,
    .first_byte_timeout_ms = 120000,
    .timeout_ms = 600000,
};
static yr_route_conf_t groute = {.provider = &gprovider, .model = "gemini-2.5-flash"};
static yr_provider_conf_t bprovider = {
    .name = "aws",
    .kind = YR_KIND_BEDROCK,
    .base_url = "https://bedrock-runtime.us-east-1.amazonaws.com",
    .region = "us-east-1",
    .aws_access_key_id = "AKIDTORTURE",
    .aws_secret_access_key = "secret",
    .connect_timeout_ms = 5000,
    .first_byte_timeout_ms = 120000,
    .timeout_ms = 600000,
    .default_max_tokens = 4096,
};
static yr_route_conf_t broute = {.provider = &bprovider,
                                 .model = "us.anthropic.claude-3-5-haiku-20241022-v1:0"};
static yr_provider_conf_t vprovider = {
    .name = "vertex",
    .kind = YR_KIND_VERTEX,
    .base_url = "https://us-east5-aiplatform.googleapis.com",
    .api_key = "ya29.torture",
    .project = "p",
    .location = "us-east5",
    .connect_timeout_ms = 5000,
    .first_byte_timeout_ms = 120000,
    .timeout_ms = 600000,
    .anthropic_version = "2023-06-01",
    .default_max_tokens = 4096,
};
static yr_route_conf_t vroute = {.provider = &vprovider, .model = "claude-sonnet-4@20250514"};

/* The dialect under torture, and its route. */
static const yr_dialect_ops_t *dialect = &yr_dialect_anthropic;
static const yr_route_conf_t *cur_route = &route;

/* request: parse + build. Returns the first error, or 0; *body_ok says the
 * built body was a JSON object (checked unarmed). */
static int run_request(bool *body_ok)
{
    yr_chat_req_t chat;
    yr_api_error_t err;
    yr_buf_t body;
    yr_buf_init(&body, 1 << 20);
    yr_pool_t *pool = NULL;
    int rc = yr_chat_parse(request_body, sizeof(request_body) - 1, &chat, &err);
    if (rc == 0)
        rc = yr_chat_load_root(&chat);
    if (rc == 0 && (pool = yr_pool_create(4096)) == NULL)
        rc = -ENOMEM;
    yr_upstream_req_t up = {0};
    if (rc == 0) {
        yr_call_ctx_t cx = {
            .pool = pool, .chat = &chat, .route = cur_route, .request_id = YR_STR("req-t")};
        const char *path = NULL;
        const char *const *extra = NULL;
        rc = dialect->build(&cx, YR_STR(""), &body, &up, &path, &extra);
    }
    armed = false;
    *body_ok = false;
    if (rc == 0) {
        json_t *v = json_loadb(up.body, up.body_len, 0, NULL);
        *body_ok = json_is_object(v) && (json_object_get(v, "messages") != NULL ||
                                         json_object_get(v, "contents") != NULL);
        json_decref(v);
    }
    yr_pool_destroy(pool);
    yr_chat_free(&chat);
    yr_buf_free(&body);
    return rc;
}

static const char *const anth_events[] = {
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
    "\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}",
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}",
    "{\"type\":\"ping\"}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}",
    "{\"type\":\"content_block_stop\",\"index\":0}",
    "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_1\",\"name\":\"look\",\"input\":{}}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"zoom\\\":\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"2}\"}}",
    "{\"type\":\"content_block_stop\",\"index\":1}",
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":12}}",
    "{\"type\":\"message_stop\"}",
    NULL,
};

static const char *const gem_events[] = {
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Thinking\","
    "\"thought\":true}]},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\"}",
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hello\"}]},"
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":1}}",
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":"
    "{\"name\":\"look\",\"args\":{\"zoom\":2}},\"thoughtSignature\":\"c2ln\"}]},"
    "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,"
    "\"candidatesTokenCount\":7,\"totalTokenCount\":16,\"thoughtsTokenCount\":3}}",
    NULL,
};

static const char gem_full[] =
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hello \"},"
    "{\"text\":\"there\"},{\"functionCall\":{\"name\":\"look\",\"args\":{\"zoom\":2}}}]},"
    "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,"
    "\"candidatesTokenCount\":7,\"totalTokenCount\":16},\"modelVersion\":\"gemini-2.5-flash\","
    "\"responseId\":\"r-1\"}";

/* ConverseStream: eventstream frames (event type, payload). */
static const char *const br_names[] = {
    "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop",
    "contentBlockDelta", "contentBlockStop", "contentBlockStart", "contentBlockDelta",
    "contentBlockStop", "messageStop", "metadata", NULL,
};
static const char *const br_events[] = {
    "{\"role\":\"assistant\"}",
    "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"hm\"}}}",
    "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"S\"}}}",
    "{\"contentBlockIndex\":0}",
    "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Hello\"}}",
    "{\"contentBlockIndex\":1}",
    "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"look\"}}}",
    "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"{\\\"zoom\\\":2}\"}}}",
    "{\"contentBlockIndex\":2}",
    "{\"stopReason\":\"tool_use\"}",
    "{\"usage\":{\"inputTokens\":25,\"outputTokens\":12,\"cacheReadInputTokens\":3}}",
    NULL,
};

static const char br_full[] =
    "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hello\"},"
    "{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"look\",\"input\":{\"zoom\":2}}}]}},"
    "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":9,\"outputTokens\":7}}";

static const char *const *stream_events = anth_events;
static const char *const *stream_names = NULL; /* the frames' event names, when they have one */
static const char *full_answer = gem_full;

static int to_enc(void *arg, const yr_event_t *ev)
{
    void **a = arg;
    return ev->type == YR_EV_ERROR ? 0 : yr_oai_enc_event(a[0], ev, a[1]);
}

/* stream: decode + encode. *done says the stream reached its end. */
static int run_stream(const yr_chat_req_t *chat, bool *done)
{
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    yr_pool_t *pool = yr_pool_create(4096);
    yr_oai_enc_opts_t o = {
        .id_seed = YR_STR("req-t"), .stream = stream_events != NULL, .include_usage = true};
    void *arg[2] = {yr_oai_enc_new(&o), &out};
    int rc = pool == NULL || arg[0] == NULL ? -ENOMEM : 0;
    *done = false;
    yr_call_ctx_t cx = {
        .pool = pool, .chat = chat, .route = cur_route, .request_id = YR_STR("req-t")};
    if (stream_events == NULL) { /* a complete answer */
        rc = rc == 0 ? dialect->response(&cx, yr_str(full_answer), to_enc, arg) : rc;
        *done = rc == 0;
    }
    for (size_t i = 0; rc == 0 && stream_events != NULL && stream_events[i] != NULL; i++) {
        yr_frame_t m = {.event = stream_names ? yr_str(stream_names[i]) : YR_STR(""),
                        .data = yr_str(stream_events[i])};
        rc = dialect->event(&cx, &m, to_enc, arg, done);
    }
    armed = false;
    yr_oai_enc_free(arg[0]);
    yr_pool_destroy(pool);
    yr_buf_free(&out);
    return rc;
}

typedef struct {
    unsigned long runs, enomem, einval, other, swallowed;
} stats_t;

/* A failed allocation is never a silent success: the run must return an
 * error, except when jansson's loader swallowed it (see the top). */
static void account(stats_t *s, int rc)
{
    s->runs++;
    CHECK(__lsan_do_recoverable_leak_check == NULL || __lsan_do_recoverable_leak_check() == 0);
    if (rc == 0) {
        CHECK(injected_loader);
        s->swallowed++;
    } else if (rc == -ENOMEM) {
        s->enomem++;
    } else if (rc == -EINVAL) { /* reported as the client's or upstream's fault */
        s->einval++;
    } else {
        s->other++;
    }
}

static void report(const char *path, const stats_t *s)
{
    printf("%s: %lu allocations, each failed once: %lu -ENOMEM, %lu -EINVAL, %lu other errors, "
           "%lu swallowed inside jansson's loader\n",
           path, s->runs, s->enomem, s->einval, s->other, s->swallowed);
}

static void torture_request(const char *name)
{
    stats_t st = {0};
    for (nth = 1;; nth++) {
        CHECK(nth < 100000);
        count = 0;
        injected = injected_loader = false;
        armed = true;
        bool body_ok;
        int rc = run_request(&body_ok);
        if (!injected) {
            CHECK(rc == 0 && body_ok); /* every allocation was failed once */
            break;
        }
        account(&st, rc);
        /* out of memory is never the client's fault (a 400) */
        CHECK(rc != -EINVAL || injected_loader);
    }
    report(name, &st);
}

static void torture_decode(const char *name)
{
    yr_chat_req_t chat;
    yr_api_error_t err;
    nth = 0;
    CHECK(yr_chat_parse(request_body, sizeof(request_body) - 1, &chat, &err) == 0);
    stats_t st = {0};
    for (nth = 1;; nth++) {
        CHECK(nth < 100000);
        count = 0;
        injected = injected_loader = false;
        armed = true;
        bool done;
        int rc = run_stream(&chat, &done);
        if (!injected) {
            CHECK(rc == 0 && done);
            break;
        }
        account(&st, rc);
        /* Decoding: out of memory is never the provider's fault. */
        CHECK(rc != -EINVAL || injected_loader);
    }
    yr_chat_free(&chat);
    report(name, &st);
}

int main(void)
{
    json_set_alloc_funcs(json_alloc, free);
    setvbuf(stdout, NULL, _IOLBF, 0); /* LeakSanitizer exits without flushing */
    const char *t = getenv("YR_TORTURE_TRACE");
    trace_at = t ? strtoul(t, NULL, 10) : 0;

    torture_request("anthropic request");
    stream_events = anth_events;
    torture_decode("anthropic stream");

    dialect = &yr_dialect_gemini;
    cur_route = &groute;
    torture_request("gemini request");
    stream_events = gem_events;
    torture_decode("gemini stream");
    stream_events = NULL;
    torture_decode("gemini response");

    dialect = &yr_dialect_bedrock;
    cur_route = &broute;
    torture_request("bedrock request");
    stream_events = br_events;
    stream_names = br_names;
    torture_decode("bedrock stream");
    stream_events = stream_names = NULL;
    full_answer = br_full;
    torture_decode("bedrock response");
    /* Claude on Vertex: Anthropic's build, then the body rewrite */
    dialect = &yr_dialect_vertex_anthropic;
    cur_route = &vroute;
    torture_request("vertex claude request");
    return 0;
}
