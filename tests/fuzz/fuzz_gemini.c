/* libFuzzer target for the Gemini decoder, error parser and passthrough
 * (src/providers/gemini_decode.c). The input is split at newlines into
 * stream events and also decoded as one full answer. Whatever Gemini sends,
 * the OpenAI client's chunks stay valid JSON, the decoder returns only its
 * documented codes, and the parsed error's strings are terminated. Build
 * with -DYR_FUZZ=ON (see CMakeLists.txt):
 *
 *   build-fuzz/tests/fuzz/fuzz_gemini -max_total_time=60 NEW tests/fuzz/corpus/gemini */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_tok.h"
#include "api/oai_enc.h"
#include "providers/gemini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int to_enc(void *arg, const yr_event_t *ev)
{
    void **a = arg;
    return ev->type == YR_EV_ERROR ? 0 : yr_oai_enc_event(a[0], ev, a[1]);
}

static bool known_rc(int rc)
{
    return rc == 0 || rc == -EINVAL || rc == -ECANCELED || rc == -ENOMEM || rc == -E2BIG;
}

/* Every "data: {...}\n\n" chunk the encoder wrote parses. */
static void check_chunks(const yr_buf_t *out)
{
    const char *p = out->data ? out->data : "", *end = p + out->len;
    while (p < end && (p = strstr(p, "data: ")) != NULL) {
        p += 6;
        const char *e = strstr(p, "\n\n");
        if (e == NULL)
            abort(); /* a chunk is always complete */
        if (!(e - p == 6 && memcmp(p, "[DONE]", 6) == 0)) {
            yr_jdoc_t d;
            if (yr_json_parse(&d, p, (size_t)(e - p), false) != 0)
                abort();
            yr_json_free(&d);
        }
        p = e + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yr_str_t in = {(const char *)data, size};
    yr_provider_conf_t prov = {.name = "google", .kind = YR_KIND_GEMINI, .base_url = "https://x"};
    yr_route_conf_t route = {.provider = &prov, .model = "gemini-3-pro-preview"};
    yr_chat_req_t chat = {.stream = true};
    for (int pass = 0; pass < 2; pass++) {
        yr_pool_t *pool = yr_pool_create(4096);
        yr_call_ctx_t cx = {.pool = pool, .chat = &chat, .route = &route,
                            .request_id = YR_STR("req-f")};
        yr_oai_enc_opts_t o = {.id_seed = cx.request_id, .stream = pass == 0, .include_usage = true};
        yr_buf_t out;
        yr_buf_init(&out, 1u << 22);
        void *arg[2] = {yr_oai_enc_new(&o), &out};
        if (pass == 0) {
            size_t start = 0;
            bool done = false;
            for (size_t i = 0; i <= size && !done; i++) {
                if (i < size && data[i] != '\n')
                    continue;
                yr_frame_t m = {.data = {in.ptr + start, i - start}};
                int rc = yr_dialect_gemini.event(&cx, &m, to_enc, arg, &done);
                if (!known_rc(rc))
                    abort();
                if (rc < 0)
                    break;
                start = i + 1;
            }
            check_chunks(&out);
            yr_buf_t pass_out;
            yr_buf_init(&pass_out, 1u << 22);
            yr_frame_t m = {.data = in};
            bool pdone = false;
            if (!known_rc(yr_dialect_gemini.pass_event(&cx, &m, &pass_out, &pdone)))
                abort();
            yr_buf_free(&pass_out);
        } else {
            int rc = yr_dialect_gemini.response(&cx, in, to_enc, arg);
            if (!known_rc(rc))
                abort();
            if (rc == 0) {
                yr_jdoc_t d;
                if (yr_json_parse(&d, out.data, out.len, false) != 0)
                    abort(); /* the chat.completion is valid JSON */
                yr_json_free(&d);
            }
            (void)yr_dialect_gemini.pass_response(&cx, in);
        }
        yr_oai_enc_free(arg[0]);
        yr_buf_free(&out);
        yr_pool_destroy(pool);
    }
    yr_provider_error_t perr;
    yr_gemini_parse_error(in, &perr);
    if (memchr(perr.message, '\0', sizeof(perr.message)) == NULL ||
        memchr(perr.type, '\0', sizeof(perr.type)) == NULL ||
        memchr(perr.code, '\0', sizeof(perr.code)) == NULL)
        abort();
    return 0;
}
