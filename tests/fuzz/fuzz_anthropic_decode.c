/* libFuzzer target for the Anthropic response decoder, error parser and
 * passthrough checks (src/providers/anthropic.c, anthropic_native.c): what
 * an Anthropic upstream sends. The input is split at newlines into stream
 * messages ("NAME\tDATA" gives the message an SSE event name, which the
 * decoder uses when the data has no "type"), and also decoded as one full
 * Messages response. The decoder's events go into the OpenAI client encoder,
 * as on an Anthropic route serving an OpenAI client. Whatever Anthropic
 * sends: only documented return codes, every chunk the client would get is
 * valid JSON, a successful response is one valid chat.completion, and the
 * parsed error's strings are terminated. Build with -DYR_FUZZ=ON:
 *
 *   build-fuzz/tests/fuzz/fuzz_anthropic_decode -max_total_time=60 NEW \
 *       tests/fuzz/corpus/anthropic_decode */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_tok.h"
#include "api/oai_enc.h"
#include "providers/dialect.h"
#include "providers/provider.h"

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

static void check_json(const char *p, size_t n)
{
    yr_jdoc_t d;
    if (yr_json_parse(&d, p, n, false) != 0)
        abort();
    yr_json_free(&d);
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
        if (!(e - p == 6 && memcmp(p, "[DONE]", 6) == 0))
            check_json(p, (size_t)(e - p));
        p = e + 2;
    }
}

/* One line -> one framed message: an optional "NAME\t" prefix of at most
 * 32 bytes is the SSE event name. */
static yr_frame_t frame_of(const char *p, size_t n)
{
    const char *tab = memchr(p, '\t', n < 33 ? n : 33);
    if (tab == NULL)
        return (yr_frame_t){.data = {p, n}};
    size_t k = (size_t)(tab - p);
    return (yr_frame_t){.event = {p, k}, .data = {tab + 1, n - k - 1}};
}

static void fuzz_stream(yr_call_ctx_t *cx, const char *in, size_t size, void **arg)
{
    const yr_dialect_ops_t *d = &yr_dialect_anthropic;
    size_t start = 0;
    bool done = false;
    for (size_t i = 0; i <= size && !done; i++) {
        if (i < size && in[i] != '\n')
            continue;
        yr_frame_t m = frame_of(in + start, i - start);
        int rc = d->event(cx, &m, to_enc, arg, &done);
        if (!known_rc(rc))
            abort();
        if (rc < 0)
            break;
        start = i + 1;
    }
    check_chunks(arg[1]);
    /* The passthrough check of each message, on a fresh state. */
    cx->state = NULL;
    yr_buf_t pass_out;
    yr_buf_init(&pass_out, 1u << 22);
    start = 0;
    done = false;
    for (size_t i = 0; i <= size && !done; i++) {
        if (i < size && in[i] != '\n')
            continue;
        yr_frame_t m = frame_of(in + start, i - start);
        int rc = d->pass_event(cx, &m, &pass_out, &done);
        if (!known_rc(rc))
            abort();
        if (rc < 0)
            break;
        start = i + 1;
    }
    yr_buf_free(&pass_out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    /* An exact-size copy: no NUL after it, so over-reads are caught. */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    yr_provider_conf_t prov = {
        .name = "anthropic", .kind = YR_KIND_ANTHROPIC, .base_url = "https://x"};
    yr_route_conf_t route = {.provider = &prov, .model = "claude-sonnet-4-20250514"};
    yr_chat_req_t chat = {.stream = true};
    for (int pass = 0; pass < 2; pass++) {
        yr_pool_t *pool = yr_pool_create(4096);
        if (pool == NULL)
            abort();
        yr_call_ctx_t cx = {
            .pool = pool, .chat = &chat, .route = &route, .request_id = YR_STR("req-f")};
        yr_oai_enc_opts_t o = {
            .id_seed = cx.request_id, .stream = pass == 0, .include_usage = true};
        yr_buf_t out;
        yr_buf_init(&out, 1u << 22);
        void *arg[2] = {yr_oai_enc_new(&o), &out};
        if (arg[0] == NULL)
            abort();
        if (pass == 0) {
            fuzz_stream(&cx, in, size, arg);
        } else {
            int rc = yr_dialect_anthropic.response(&cx, (yr_str_t){in, size}, to_enc, arg);
            if (!known_rc(rc))
                abort();
            if (rc == 0)
                check_json(out.data, out.len); /* the chat.completion */
            cx.state = NULL;
            (void)yr_dialect_anthropic.pass_response(&cx, (yr_str_t){in, size});
        }
        yr_oai_enc_free(arg[0]);
        yr_buf_free(&out);
        yr_pool_destroy(pool);
    }
    yr_provider_error_t perr;
    yr_dialect_anthropic.parse_error((yr_str_t){in, size}, &perr);
    if (memchr(perr.message, '\0', sizeof(perr.message)) == NULL ||
        memchr(perr.type, '\0', sizeof(perr.type)) == NULL ||
        memchr(perr.code, '\0', sizeof(perr.code)) == NULL)
        abort();
    free(in);
    return 0;
}
