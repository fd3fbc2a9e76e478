/* libFuzzer target for the SSE parser. The input is parsed twice: whole, and
 * cut into pieces chosen from the input itself; both runs must produce the
 * same events (the framing may not depend on where the network split the
 * stream). A third run with a small cap and a callback that stops at some
 * event checks that limits and early stops are clean. Build and run from the
 * repository root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc
 *         tests/fuzz/fuzz_sse.c src/api/sse.c src/core/buf.c -o /tmp/fuzz_sse
 *   /tmp/fuzz_sse -max_total_time=60 tests/fuzz/corpus/sse
 *
 * -DFUZZ_SSE_EMPTY_FEEDS also feeds zero-length pieces between the others
 * (currently finds the known CR/LF bug; see tests/unit/test_sse.c). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    yr_buf_t log; /* "event\x1fdata\x1e" per event */
    size_t count;
    size_t stop_at; /* 1-based; 0 = never */
    size_t cap;     /* no event's data may be longer; 0 = unchecked */
} sink_t;

static int on_event(const yr_sse_event_t *ev, void *arg)
{
    sink_t *s = arg;
    /* Touch every byte so ASan sees a slice that points past its buffer. */
    volatile unsigned char x = 0;
    for (size_t i = 0; i < ev->event.len; i++)
        x ^= (unsigned char)ev->event.ptr[i];
    for (size_t i = 0; i < ev->data.len; i++)
        x ^= (unsigned char)ev->data.ptr[i];
    (void)x;
    if (s->cap != 0 && (ev->data.len > s->cap || ev->event.len > s->cap + 256))
        abort();
    if (yr_buf_append(&s->log, ev->event.ptr, ev->event.len) < 0 ||
        yr_buf_append(&s->log, "\x1f", 1) < 0 ||
        yr_buf_append(&s->log, ev->data.ptr, ev->data.len) < 0 ||
        yr_buf_append(&s->log, "\x1e", 1) < 0)
        abort();
    s->count++;
    if (s->stop_at != 0 && s->count == s->stop_at)
        return 7;
    return 0;
}

/* Feeds body in pieces whose sizes come from the `cuts` bytes. Each piece is
 * copied into its own heap block so an over-read is caught. */
static int feed_pieces(yr_sse_parser_t *p, const uint8_t *body, size_t n, const uint8_t *cuts,
                       size_t ncuts, sink_t *s)
{
    size_t off = 0, k = 0;
    int rc = 0;
    while (off < n && rc == 0) {
        size_t step = ncuts ? (size_t)cuts[k++ % ncuts] % 17 + 1 : n;
        if (step > n - off)
            step = n - off;
        char *piece = malloc(step);
        memcpy(piece, body + off, step);
        rc = yr_sse_feed(p, piece, step, on_event, s);
        free(piece);
        off += step;
#ifdef FUZZ_SSE_EMPTY_FEEDS
        if (rc == 0)
            rc = yr_sse_feed(p, (const char *)body + off, 0, on_event, s);
#endif
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > 256 * 1024)
        return 0;
    /* [0] number of cut bytes, [1] small cap, [2] stop_at, then cuts, then body */
    size_t ncuts = data[0] % 16;
    size_t small_cap = (size_t)data[1] + 1;
    size_t stop_at = data[2] % 8;
    if (size < 3 + ncuts)
        return 0;
    const uint8_t *cuts = data + 3;
    const uint8_t *body = data + 3 + ncuts;
    size_t n = size - 3 - ncuts;

    sink_t whole = {0}, split = {0};
    yr_buf_init(&whole.log, 64 << 20);
    yr_buf_init(&split.log, 64 << 20);
    yr_sse_parser_t a, b;
    yr_sse_init(&a, YR_SSE_MAX_EVENT);
    yr_sse_init(&b, YR_SSE_MAX_EVENT);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, body, n);
    int rca = yr_sse_feed(&a, copy, n, on_event, &whole);
    free(copy);
    int rcb = feed_pieces(&b, body, n, cuts, ncuts, &split);
    /* Under the default cap only an over-long event: name (256 bytes) fails,
     * and it must fail the same way however the input was cut. */
    if (rca != rcb || (rca != 0 && rca != -E2BIG)) {
        fprintf(stderr, "rc %d whole, %d split\n", rca, rcb);
        abort();
    }
    if (whole.log.len != split.log.len ||
        (whole.log.len && memcmp(whole.log.data, split.log.data, whole.log.len) != 0)) {
        fprintf(stderr, "events differ between whole (%zu) and split (%zu) feeding\n", whole.count,
                split.count);
        abort();
    }
    if (yr_sse_partial(&a) != yr_sse_partial(&b)) {
        fprintf(stderr, "partial differs: %d vs %d\n", yr_sse_partial(&a), yr_sse_partial(&b));
        abort();
    }
    yr_sse_free(&a);
    yr_sse_free(&b);

    /* Small cap and an early stop: only the documented results. */
    sink_t capped = {0};
    yr_buf_init(&capped.log, 64 << 20);
    capped.stop_at = stop_at;
    capped.cap = small_cap;
    yr_sse_parser_t c;
    yr_sse_init(&c, small_cap);
    int rcc = feed_pieces(&c, body, n, cuts, ncuts, &capped);
    if (rcc != 0 && rcc != 7 && rcc != -E2BIG)
        abort();
    if (rcc == 7 && capped.count != stop_at)
        abort();
    yr_sse_free(&c);

    yr_buf_free(&whole.log);
    yr_buf_free(&split.log);
    yr_buf_free(&capped.log);
    return 0;
}
