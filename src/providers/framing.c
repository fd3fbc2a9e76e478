#include "providers/framing.h"

#include <errno.h>

void yr_framer_init(yr_framer_t *f, yr_framing_t kind, size_t max_message)
{
    f->kind = kind;
    yr_sse_init(&f->sse, max_message);
    /* An eventstream message carries a whole tool input or image at worst:
     * its own cap, not the SSE event's. */
    yr_es_init(&f->es, YR_ES_MAX_MESSAGE);
}

void yr_framer_free(yr_framer_t *f)
{
    yr_sse_free(&f->sse);
    yr_es_free(&f->es);
}

typedef struct {
    yr_framer_t *f;
    yr_frame_fn fn;
    void *arg;
} es_sink_t;

/* One eventstream message -> the frame a dialect reads. */
static int on_es_message(const yr_es_message_t *m, void *arg)
{
    const es_sink_t *k = arg;
    yr_str_t type = yr_es_header_str(m, ":message-type");
    yr_frame_t fr = {.data = m->payload};
    const char *prefix = NULL;
    yr_str_t name = YR_STR_NULL;
    if (yr_str_eq(type, YR_STR("event"))) {
        fr.event = yr_es_header_str(m, ":event-type");
        if (fr.event.len == 0)
            return -EPROTO;
        return k->fn(&fr, k->arg);
    }
    if (yr_str_eq(type, YR_STR("exception"))) {
        prefix = "exception:";
        name = yr_es_header_str(m, ":exception-type");
    } else if (yr_str_eq(type, YR_STR("error"))) {
        prefix = "error:";
        name = yr_es_header_str(m, ":error-code");
        fr.data = yr_es_header_str(m, ":error-message");
    } else {
        return -EPROTO;
    }
    char *buf = k->f->es_event;
    size_t cap = sizeof(k->f->es_event);
    int n = snprintf(buf, cap, "%s%.*s", prefix, (int)(name.len < cap ? name.len : cap - 1),
                     name.ptr ? name.ptr : "");
    fr.event = (yr_str_t){buf, n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1)};
    return k->fn(&fr, k->arg);
}

int yr_framer_feed(yr_framer_t *f, const char *p, size_t n, yr_frame_fn fn, void *arg)
{
    switch (f->kind) {
    case YR_FRAME_SSE: return yr_sse_feed(&f->sse, p, n, fn, arg);
    case YR_FRAME_EVENTSTREAM: {
        es_sink_t k = {f, fn, arg};
        return yr_es_feed(&f->es, p, n, on_es_message, &k);
    }
    default: return -ENOTSUP;
    }
}

bool yr_framer_partial(const yr_framer_t *f)
{
    return f->kind == YR_FRAME_SSE ? yr_sse_partial(&f->sse) : yr_es_partial(&f->es);
}
