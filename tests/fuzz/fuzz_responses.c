/* libFuzzer target for the Responses API's parsers: the request conversion
 * (with sealed reasoning state to open) and the passthrough's validation of
 * a response body and of stream events. The first byte picks the mode:
 * even: the rest is a Responses request; odd: the rest is stream event data
 * lines ('\n'-separated), then the whole rest once more as a body. Nothing
 * may crash or leak; a conversion that fails must say why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/resp_state.h"
#include "api/responses.h"
#include "providers/openai_responses.h"
#include "providers/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void request(const char *p, size_t n)
{
    static unsigned char key[32];
    if (key[0] == 0)
        yr_resp_secret_derive("fuzz", key);
    yr_resp_secret_t s = {key, sizeof(key)};
    yr_resp_info_t info;
    yr_api_error_t err = {0};
    yr_buf_t out;
    yr_buf_init(&out, 4u << 20);
    int rc = yr_resp_request_to_openai(p, n, NULL, NULL, &s, &info, &out, &err);
    if (rc != 0 && err.message[0] == '\0')
        abort();
    yr_resp_info_free(&info);
    yr_buf_free(&out);
}

static void stream(const char *p, size_t n)
{
    yr_pool_t *pool = yr_pool_create(4096);
    yr_route_conf_t route = {.model = "m"};
    yr_chat_req_t chat = {.model = YR_STR("m")};
    yr_call_ctx_t cx = {.pool = pool, .route = &route, .chat = &chat};
    yr_buf_t out;
    yr_buf_init(&out, 8u << 20);
    bool done = false;
    for (size_t i = 0; i < n && !done;) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (p + i)) : n - i;
        yr_frame_t m = {.event = YR_STR(""), .data = {p + i, len}};
        int rc = yr_dialect_openai_responses.pass_event(&cx, &m, &out, &done);
        if (rc == -ECANCELED && cx.error.message[0] == '\0')
            abort();
        i += len + 1;
    }
    yr_buf_reset(&out);
    if (yr_oai_resp_pass_failed(&cx, "server_error", YR_STR("x"), &out) != 0)
        abort();
    yr_call_ctx_t cx2 = {.pool = pool, .route = &route, .chat = &chat};
    (void)yr_dialect_openai_responses.pass_response(&cx2, (yr_str_t){p, n});
    yr_buf_free(&out);
    yr_pool_destroy(pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    size_t n = size - 1;
    char *p = malloc(n ? n : 1); /* exact size: over-reads are caught */
    memcpy(p, data + 1, n);
    if (data[0] % 2 == 0)
        request(p, n);
    else
        stream(p, n);
    free(p);
    return 0;
}
