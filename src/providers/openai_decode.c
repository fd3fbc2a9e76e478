/* TEMPORARY (replaced by the OpenAI decoder branch at merge). */
#include <errno.h>
#include "providers/openai_decode.h"
int yr_openai_decode_response(struct yr_call_ctx *cx, yr_str_t body, yr_ev_fn fn, void *arg)
{
    (void)cx, (void)body, (void)fn, (void)arg;
    return -ENOTSUP;
}
int yr_openai_decode_event(struct yr_call_ctx *cx, const yr_sse_event_t *m, yr_ev_fn fn, void *arg,
                           bool *done)
{
    (void)cx, (void)m, (void)fn, (void)arg, (void)done;
    return -ENOTSUP;
}
