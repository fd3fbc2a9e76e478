/* Responses every gateway endpoint sends: JSON with the request id, and the
 * one error envelope (OpenAI's, or Anthropic's or Gemini's for their clients). After
 * either call the request may be gone: the caller must not touch g again. */
#ifndef YR_GW_RESPOND_H
#define YR_GW_RESPOND_H

#include "gateway/gateway.h"

void yr_gw_send_error(yr_gw_req_t *g, yr_err_t e, const char *message, const char *param,
                      const char *code, yr_str_t retry_after);
/* The HTTP status yr_gw_send_error sends for e to this client. */
int yr_gw_error_status(const yr_gw_req_t *g, yr_err_t e);
/* The same, with more response headers (at most 8). */
void yr_gw_send_error_h(yr_gw_req_t *g, yr_err_t e, const char *message, const char *param,
                        const char *code, yr_str_t retry_after, const yr_http_header_t *more,
                        size_t nmore);
void yr_gw_send_json(yr_gw_req_t *g, int status, yr_str_t body, const yr_http_header_t *extra,
                     size_t nextra);

#endif
