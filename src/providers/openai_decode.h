/* TEMPORARY (replaced by the OpenAI decoder branch at merge). */
#ifndef YR_OPENAI_DECODE_H
#define YR_OPENAI_DECODE_H
#include "providers/dialect.h"
struct yr_call_ctx;
int yr_openai_decode_response(struct yr_call_ctx *cx, yr_str_t body, yr_ev_fn fn, void *arg);
int yr_openai_decode_event(struct yr_call_ctx *cx, const yr_sse_event_t *m, yr_ev_fn fn, void *arg,
                           bool *done);
#endif
