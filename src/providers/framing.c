#include "providers/framing.h"

#include <errno.h>

void yr_framer_init(yr_framer_t *f, yr_framing_t kind, size_t max_message)
{
    f->kind = kind;
    yr_sse_init(&f->sse, max_message);
}

void yr_framer_free(yr_framer_t *f)
{
    yr_sse_free(&f->sse);
}

int yr_framer_feed(yr_framer_t *f, const char *p, size_t n, yr_frame_fn fn, void *arg)
{
    switch (f->kind) {
    case YR_FRAME_SSE: return yr_sse_feed(&f->sse, p, n, fn, arg);
    default: return -ENOTSUP;
    }
}

bool yr_framer_partial(const yr_framer_t *f)
{
    return f->kind == YR_FRAME_SSE && yr_sse_partial(&f->sse);
}
