#include "api/errors.h"

static const yr_err_info_t err_table[YR_E__COUNT] = {
    [YR_E_INVALID_JSON] = {400, "invalid_request_error", "invalid_json"},
    [YR_E_INVALID_REQUEST] = {400, "invalid_request_error", NULL},
    [YR_E_MODEL_NOT_FOUND] = {400, "invalid_request_error", "model_not_found"},
    [YR_E_VENDOR_NOT_SERVING] = {400, "invalid_request_error", "vendor_not_serving_model"},
    [YR_E_UNAUTHORIZED] = {401, "invalid_request_error", "invalid_api_key"},
    [YR_E_FORBIDDEN] = {403, "invalid_request_error", "forbidden"},
    [YR_E_NOT_FOUND] = {404, "invalid_request_error", "not_found"},
    [YR_E_METHOD_NOT_ALLOWED] = {405, "invalid_request_error", "method_not_allowed"},
    [YR_E_TOO_LARGE] = {413, "invalid_request_error", "request_too_large"},
    [YR_E_HEADERS_TOO_LARGE] = {431, "invalid_request_error", "headers_too_large"},
    [YR_E_REQUEST_TIMEOUT] = {408, "invalid_request_error", "request_timeout"},
    [YR_E_HTTP_VERSION] = {505, "invalid_request_error", "http_version_not_supported"},
    [YR_E_OVERLOADED] = {503, "server_error", "server_overloaded"},
    [YR_E_RATE_LIMITED] = {429, "rate_limit_error", "rate_limit_exceeded"},
    [YR_E_UPSTREAM_BAD_REQUEST] = {400, "invalid_request_error", "upstream_rejected_request"},
    [YR_E_UPSTREAM_ERROR] = {502, "server_error", "upstream_error"},
    [YR_E_UPSTREAM_UNAVAILABLE] = {503, "server_error", "upstream_unavailable"},
    [YR_E_UPSTREAM_TIMEOUT] = {504, "server_error", "upstream_timeout"},
    [YR_E_UPSTREAM_AUTH] = {502, "server_error", "upstream_auth_failed"},
    [YR_E_NOT_IMPLEMENTED] = {501, "server_error", "not_implemented"},
    [YR_E_SHUTTING_DOWN] = {503, "server_error", "shutting_down"},
    [YR_E_STORE_UNAVAILABLE] = {503, "server_error", "store_unavailable"},
    [YR_E_INTERNAL] = {500, "server_error", "internal_error"},
};

const yr_err_info_t *yr_err_info(yr_err_t e)
{
    return &err_table[e < YR_E__COUNT ? e : YR_E_INTERNAL];
}

int yr_err_render(yr_buf_t *out, yr_err_t e, yr_str_t message, const char *param,
                  const char *code, yr_str_t request_id)
{
    const yr_err_info_t *info = yr_err_info(e);
    if (code == NULL)
        code = info->code;
    yr_buf_t msg;
    yr_buf_init(&msg, message.len + request_id.len + 32);
    int rc = yr_buf_append_str(&msg, message);
    if (rc == 0 && request_id.len > 0)
        rc = yr_buf_printf(&msg, " (request id: %.*s)", (int)request_id.len, request_id.ptr);
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("{\"error\":{\"message\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(out, (yr_str_t){msg.data ? msg.data : "", msg.len});
    if (rc == 0)
        rc = yr_buf_printf(out, ",\"type\":\"%s\",\"param\":", info->type);
    if (rc == 0)
        rc = param ? yr_buf_append_json_str(out, yr_str(param))
                   : yr_buf_append_str(out, YR_STR("null"));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR(",\"code\":"));
    if (rc == 0)
        rc = code ? yr_buf_append_json_str(out, yr_str(code))
                  : yr_buf_append_str(out, YR_STR("null"));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("}}"));
    yr_buf_free(&msg);
    return rc;
}

yr_err_t yr_err_from_upstream_status(int s, bool *retryable)
{
    *retryable = true;
    switch (s) {
    case 429: return YR_E_RATE_LIMITED;
    case 401:
    case 403: return YR_E_UPSTREAM_AUTH; /* this route's key is bad; others may work */
    case 404: return YR_E_UPSTREAM_ERROR; /* the model is not at this provider */
    case 408: return YR_E_UPSTREAM_TIMEOUT;
    case 503:
    case 529: return YR_E_UPSTREAM_UNAVAILABLE;
    case 504: return YR_E_UPSTREAM_TIMEOUT;
    default: break;
    }
    if (s >= 500)
        return YR_E_UPSTREAM_ERROR;
    /* Any other 4xx is about the request itself: every route would refuse it. */
    *retryable = false;
    if (s == 413)
        return YR_E_TOO_LARGE;
    return YR_E_UPSTREAM_BAD_REQUEST;
}
