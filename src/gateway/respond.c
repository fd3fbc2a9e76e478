/* The response helpers of gateway/respond.h. */
#include <stdio.h>

#include "api/anthropic_in.h"
#include "api/errors.h"
#include "api/gemini_in.h"
#include "gateway/respond.h"
#include "gateway/ui.h"

#define MAX_ERROR_BODY 2048

void yr_gw_send_json(yr_gw_req_t *g, int status, yr_str_t body, const yr_http_header_t *extra,
                     size_t nextra)
{
    yr_http_header_t h[18];
    size_t n = 0;
    h[n++] = (yr_http_header_t){YR_STR("x-request-id"), g->request_id};
    n += yr_ui_response_headers(g->http, h + n, 5); /* no-store on /admin and /ui */
    for (size_t i = 0; i < nextra && n < 18; i++)
        h[n++] = extra[i];
    yr_http_respond(g->http, status, h, n, YR_STR("application/json"), body);
}

int yr_gw_error_status(const yr_gw_req_t *g, yr_err_t e)
{
    if (g->dialect == YR_DIALECT_GEMINI)
        return yr_gem_error_status(e);
    if (g->dialect == YR_DIALECT_ANTHROPIC)
        return yr_anth_error_status(e);
    return yr_err_info(e)->status;
}

void yr_gw_send_error(yr_gw_req_t *g, yr_err_t e, const char *message, const char *param,
                      const char *code, yr_str_t retry_after)
{
    yr_gw_send_error_h(g, e, message, param, code, retry_after, NULL, 0);
}

void yr_gw_send_error_h(yr_gw_req_t *g, yr_err_t e, const char *message, const char *param,
                        const char *code, yr_str_t retry_after, const yr_http_header_t *more,
                        size_t nmore)
{
    yr_buf_t body;
    yr_buf_init(&body, MAX_ERROR_BODY + 1024);
    int status = yr_err_info(e)->status;
    if (g->dialect == YR_DIALECT_ANTHROPIC) {
        /* Anthropic's shape; the message still quotes the request id. */
        char msg[MAX_ERROR_BODY];
        snprintf(msg, sizeof(msg), "%s (request id: %.*s)", message, (int)g->request_id.len,
                 g->request_id.ptr);
        status = yr_anth_error_status(e);
        if (yr_anth_error_body(e, yr_str(msg), g->request_id, &body) < 0)
            yr_buf_reset(&body);
    } else if (g->dialect == YR_DIALECT_GEMINI) {
        /* Gemini's {"error":{"code","message","status"}}; the message quotes
         * the request id. */
        char msg[MAX_ERROR_BODY];
        snprintf(msg, sizeof(msg), "%s (request id: %.*s)", message, (int)g->request_id.len,
                 g->request_id.ptr);
        status = yr_gem_error_status(e);
        if (yr_gem_error_body(e, yr_str(msg), &body) < 0)
            yr_buf_reset(&body);
    } else if (yr_err_render(&body, e, yr_str(message), param, code, g->request_id) < 0) {
        yr_buf_reset(&body);
        if (yr_err_render(&body, YR_E_INTERNAL, YR_STR("internal error"), NULL, NULL,
                          g->request_id) < 0)
            yr_buf_reset(&body);
    }
    yr_http_header_t extra[9];
    size_t nextra = 0;
    if (retry_after.len > 0)
        extra[nextra++] = (yr_http_header_t){YR_STR("Retry-After"), retry_after};
    for (size_t i = 0; i < nmore && nextra < 9; i++)
        extra[nextra++] = more[i];
    yr_gw_send_json(g, status, (yr_str_t){body.data ? body.data : "", body.len}, extra, nextra);
    yr_buf_free(&body);
}

