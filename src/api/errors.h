/* The one table mapping gateway and provider failures to OpenAI error JSON
 * and an HTTP status. */
#ifndef YR_ERRORS_H
#define YR_ERRORS_H

#include "core/buf.h"

typedef enum {
    YR_E_INVALID_JSON,
    YR_E_INVALID_REQUEST,
    YR_E_MODEL_NOT_FOUND,
    YR_E_VENDOR_NOT_SERVING,
    YR_E_UNAUTHORIZED,
    YR_E_FORBIDDEN,
    YR_E_NOT_FOUND,
    YR_E_METHOD_NOT_ALLOWED,
    YR_E_TOO_LARGE,
    YR_E_HEADERS_TOO_LARGE,
    YR_E_REQUEST_TIMEOUT,    /* the client was too slow sending its request: 408 */
    YR_E_HTTP_VERSION,       /* not HTTP/1.0 or 1.1: 505 */
    YR_E_OVERLOADED,         /* the gateway's own limits (connections, body memory): 503 */
    YR_E_RATE_LIMITED,       /* upstream 429 */
    YR_E_UPSTREAM_BAD_REQUEST, /* upstream 4xx relayed */
    YR_E_UPSTREAM_ERROR,     /* upstream 5xx / bad response: 502 */
    YR_E_UPSTREAM_UNAVAILABLE, /* upstream 503/529 or unreachable: 503 */
    YR_E_UPSTREAM_TIMEOUT,   /* 504 */
    YR_E_UPSTREAM_AUTH,      /* provider rejected the gateway's key: 502 */
    YR_E_NOT_IMPLEMENTED,
    YR_E_SHUTTING_DOWN,
    YR_E_STORE_UNAVAILABLE,  /* the key store failed or is overloaded: 503 */
    YR_E_INTERNAL,
    YR_E__COUNT
} yr_err_t;

/* The protocol a client speaks to the gateway (and errors are written in). */
typedef enum {
    YR_DIALECT_OPENAI = 0,
    YR_DIALECT_ANTHROPIC,
    YR_DIALECT_GEMINI,
    YR_DIALECT_RESPONSES, /* OpenAI Responses API clients (/v1/responses) */
    YR_DIALECT_EMBEDDINGS, /* OpenAI embeddings clients (/v1/embeddings); OpenAI's errors */
} yr_dialect_t;

typedef struct {
    int status;
    const char *type;
    const char *code; /* NULL = JSON null */
} yr_err_info_t;

const yr_err_info_t *yr_err_info(yr_err_t e);

/* Appends {"error":{"message","type","param","code"}} to out. The request id
 * is added to the message as " (request id: ID)". code overrides the table's
 * code when not NULL; param may be NULL. */
__attribute__((warn_unused_result)) int yr_err_render(yr_buf_t *out, yr_err_t e,
                                                       yr_str_t message, const char *param,
                                                       const char *code, yr_str_t request_id);

/* The status the client gets for an upstream HTTP error status, and the
 * error kind; *retryable says whether another route may be tried. */
yr_err_t yr_err_from_upstream_status(int upstream_status, bool *retryable);

#endif
