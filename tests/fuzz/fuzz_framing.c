/* libFuzzer target for the upstream stream framer (src/providers/framing.c),
 * the layer every streamed provider body goes through before its dialect.
 * The input is framed twice, whole and cut at points the input chooses
 * (the network may split anywhere): both runs must give the same messages,
 * each within the cap, and the same final state (error, partial). (The
 * AWS eventstream framing has its own target, fuzz_eventstream.)
 *
 *   build-fuzz/tests/fuzz/fuzz_framing -max_total_time=60 NEW \
 *       tests/fuzz/corpus/framing */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct {
    yr_buf_t log; /* "event\x1fdata\x1e" per message */
    size_t cap;
} sink_t;

static int on_frame(const yr_frame_t *m, void *arg)
{
    sink_t *k = arg;
    CHECK(m->data.len <= k->cap && m->event.len <= 256); /* the parser caps names at 256 */
    /* Every byte is read, so ASan sees an over-read. */
    if (yr_buf_append(&k->log, m->event.ptr, m->event.len) < 0 ||
        yr_buf_append(&k->log, "\x1f", 1) < 0 ||
        yr_buf_append(&k->log, m->data.ptr, m->data.len) < 0 ||
        yr_buf_append(&k->log, "\x1e", 1) < 0)
        abort();
    return 0;
}

/* Feeds in in pieces of the given lengths (cycled; 0 = the rest). */
static int run(const char *in, size_t n, const uint8_t *cuts, size_t ncuts, size_t cap, sink_t *k,
               bool *partial)
{
    yr_framer_t f;
    yr_framer_init(&f, YR_FRAME_SSE, cap);
    yr_buf_init(&k->log, 1u << 24);
    k->cap = cap;
    int rc = 0;
    for (size_t pos = 0, c = 0; pos < n && rc == 0; c++) {
        size_t len = ncuts ? cuts[c % ncuts] : 0;
        if (len == 0 || len > n - pos)
            len = n - pos;
        rc = yr_framer_feed(&f, in + pos, len, on_frame, k);
        pos += len;
    }
    *partial = yr_framer_partial(&f);
    yr_framer_free(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1 << 20))
        return 0;
    size_t ncuts = data[0] % 8;
    size_t cap = 64u << (data[1] % 12); /* 64 B .. 128 KiB */
    if (size < 2 + ncuts)
        return 0;
    const uint8_t *cuts = data + 2;
    size_t n = size - 2 - ncuts;
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 2 + ncuts, n);

    sink_t whole, split;
    bool pw, ps;
    int rw = run(in, n, NULL, 0, cap, &whole, &pw);
    int rs = run(in, n, cuts, ncuts, cap, &split, &ps);
    CHECK(rw == 0 || rw == -E2BIG);
    CHECK(rw == rs);
    if (rw == 0) {
        CHECK(pw == ps);
        CHECK(whole.log.len == split.log.len);
        CHECK(whole.log.len == 0 || memcmp(whole.log.data, split.log.data, whole.log.len) == 0);
    }
    yr_buf_free(&whole.log);
    yr_buf_free(&split.log);
    free(in);
    return 0;
}
