/* The Anthropic dialect's passthrough half (anthropic_native.c): a client
 * of the Messages API calling an Anthropic route gets its own bytes sent,
 * with only "model" spliced, and the answer validated and relayed as it is.
 * The functions of yr_dialect_ops_t's pass_* slots. */
#ifndef YR_ANTHROPIC_NATIVE_H
#define YR_ANTHROPIC_NATIVE_H

#include "providers/provider.h"

int yr_anth_pass_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                       yr_upstream_req_t *out, const char **path, const char *const **extra);
int yr_anth_pass_response(yr_call_ctx_t *cx, yr_str_t body);
/* anthropic.c's decoding slots of yr_dialect_anthropic, for the dialects
 * built on it (vertex.c). */
int yr_anth_response(yr_call_ctx_t *cx, yr_str_t body, yr_ev_fn fn, void *arg);
int yr_anth_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_ev_fn fn, void *arg, bool *done);
void yr_anth_parse_error(yr_str_t body, yr_provider_error_t *out);
int yr_anth_pass_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_buf_t *out, bool *done);

#endif
