/* The Responses passthrough (openai_responses.c): for the proxy. */
#ifndef YR_OPENAI_RESPONSES_H
#define YR_OPENAI_RESPONSES_H

#include "providers/provider.h"

extern const yr_dialect_ops_t yr_dialect_openai_responses;

/* A passthrough stream that failed after it started: response.failed (the
 * response as response.created announced it, status failed, the error),
 * numbered after the last event relayed, appended to out. */
__attribute__((warn_unused_result)) int yr_oai_resp_pass_failed(yr_call_ctx_t *cx, const char *code,
                                                                yr_str_t message, yr_buf_t *out);

/* The response object as the upstream ended it (the body, or
 * response.completed's), in the request pool; NULL before that. */
const char *yr_oai_resp_pass_final(const yr_call_ctx_t *cx);

#endif
