/* libFuzzer target for the AWS eventstream framing (providers/eventstream.c,
 * through providers/framing.c) and the Bedrock decoder behind it
 * (providers/bedrock_decode.c). The input is framed twice, whole and cut at
 * points the input chooses: both runs must give the same frames and the
 * same result (0, -EPROTO or -E2BIG: a corrupt or oversized message is
 * refused, never delivered). Every frame then goes through the Bedrock
 * stream decoder, and the raw input through its whole-answer decoder, with
 * ASan watching; the events they emit must keep the order events.h
 * promises (START first, nothing after END).
 *
 *   build-fuzz/tests/fuzz/fuzz_eventstream -max_total_time=60 NEW \
 *       tests/fuzz/corpus/eventstream */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/bedrock.h"
#include "providers/framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct {
    yr_buf_t log;
    yr_call_ctx_t *cx;
    bool started, ended, failed;
} sink_t;

static int on_event(void *arg, const yr_event_t *ev)
{
    sink_t *k = arg;
    CHECK(!k->ended);
    if (ev->type == YR_EV_START)
        k->started = true;
    else if (ev->type != YR_EV_ERROR)
        CHECK(k->started);
    if (ev->type == YR_EV_END)
        k->ended = true;
    /* every byte is read, so ASan sees an over-read */
    volatile char sum = 0;
    for (size_t i = 0; i < ev->text.len; i++)
        sum ^= ev->text.ptr[i];
    for (size_t i = 0; i < ev->id.len; i++)
        sum ^= ev->id.ptr[i];
    (void)sum;
    return 0;
}

static int on_frame(const yr_frame_t *m, void *arg)
{
    sink_t *k = arg;
    if (yr_buf_append(&k->log, m->event.ptr, m->event.len) < 0 ||
        yr_buf_append(&k->log, "\x1f", 1) < 0 ||
        yr_buf_append(&k->log, m->data.ptr, m->data.len) < 0 ||
        yr_buf_append(&k->log, "\x1e", 1) < 0)
        abort();
    if (k->cx != NULL && !k->failed) {
        bool done = false;
        int rc = yr_dialect_bedrock.event(k->cx, m, on_event, k, &done);
        CHECK(rc == 0 || rc == -EINVAL || rc == -ECANCELED);
        k->failed = rc < 0;
        CHECK(!done || k->ended);
    }
    return 0;
}

static int run(const char *in, size_t n, const uint8_t *cuts, size_t ncuts, sink_t *k,
               yr_call_ctx_t *cx)
{
    yr_framer_t f;
    yr_framer_init(&f, YR_FRAME_EVENTSTREAM, 0);
    yr_buf_init(&k->log, 1u << 26);
    k->cx = cx;
    k->started = k->ended = k->failed = false;
    int rc = 0;
    for (size_t pos = 0, c = 0; pos < n && rc == 0; c++) {
        size_t len = ncuts ? cuts[c % ncuts] : 0;
        if (len == 0 || len > n - pos)
            len = n - pos;
        rc = yr_framer_feed(&f, in + pos, len, on_frame, k);
        pos += len;
    }
    yr_framer_free(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20))
        return 0;
    size_t ncuts = data[0] % 8;
    if (size < 1 + ncuts)
        return 0;
    const uint8_t *cuts = data + 1;
    size_t n = size - 1 - ncuts;
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 1 + ncuts, n);

    yr_provider_conf_t prov = {.name = "aws", .kind = YR_KIND_BEDROCK};
    yr_route_conf_t route = {.provider = &prov, .model = "anthropic.claude-3-haiku-20240307-v1:0"};
    yr_pool_t *pool = yr_pool_create(4096);
    yr_call_ctx_t cx = {.pool = pool, .route = &route, .request_id = YR_STR("req-fuzz")};

    sink_t whole, split;
    int rw = run(in, n, NULL, 0, &whole, &cx);
    int rs = run(in, n, cuts, ncuts, &split, NULL);
    CHECK(rw == 0 || rw == -EPROTO || rw == -E2BIG);
    CHECK(rw == rs);
    CHECK(whole.log.len == split.log.len);
    CHECK(whole.log.len == 0 || memcmp(whole.log.data, split.log.data, whole.log.len) == 0);
    yr_buf_free(&whole.log);
    yr_buf_free(&split.log);

    /* the same bytes as a whole Converse answer */
    yr_call_ctx_t cx2 = {.pool = pool, .route = &route, .request_id = YR_STR("req-fuzz")};
    sink_t k = {0};
    int rc = yr_dialect_bedrock.response(&cx2, (yr_str_t){in, n}, on_event, &k);
    CHECK(rc == 0 || rc == -EINVAL);
    CHECK(rc != 0 || k.ended);
    yr_pool_destroy(pool);
    free(in);
    return 0;
}
