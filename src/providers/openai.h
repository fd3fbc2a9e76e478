/* The OpenAI dialect's functions, for dialects that are OpenAI's with a
 * difference (Azure's stream quirks): the request as OpenAI builds it, and
 * the passthrough validation of answers and chunks. */
#ifndef YR_OPENAI_H
#define YR_OPENAI_H

#include "providers/provider.h"

int yr_openai_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra);
int yr_openai_pass_response(yr_call_ctx_t *cx, yr_str_t body);
/* {"error":{message,param,type,code}} (or "error" as a string) into out. */
void yr_openai_parse_error(yr_str_t body, yr_provider_error_t *out);
int yr_openai_pass_event(yr_call_ctx_t *cx, const yr_frame_t *ev, yr_buf_t *out, bool *done);

#endif
