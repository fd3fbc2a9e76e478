/* A transport is how a provider is reached, independent of what its bodies
 * say (that is the dialect's business, providers/dialect.h):
 *   - the URL (scheme, host, path shape: Azure deployments, Bedrock model
 *     paths, Vertex publishers) and the auth (a static header key today;
 *     SigV4 and OAuth credentials with a per-worker cache next),
 *   - the framing of a streamed body (SSE today; AWS eventstream next),
 *   - process_header: the status and the response headers that matter to
 *     routing (retry hints, rate-limit headroom),
 *   - the classification of a failure into one outcome.
 * A provider kind is one dialect over one transport (providers/kinds.c).
 *
 * Pure functions over the call context and buffers; no I/O. Credentials that
 * need I/O come through an async step the proxy drives (credentials: kind
 * vertex's OAuth tokens, providers/gcp_auth.h). */
#ifndef YR_TRANSPORT_H
#define YR_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "api/chat.h"
#include "config/config.h"
#include "core/pool.h"
#include "upstream/upstream.h"

struct yr_call_ctx;

/* How a streamed body is cut into messages. */
typedef enum {
    YR_FRAME_SSE = 0,   /* text/event-stream */
    YR_FRAME_EVENTSTREAM, /* application/vnd.amazon.eventstream (providers/eventstream.h) */
} yr_framing_t;

/* What one attempt ended in: the single vocabulary metrics, route health,
 * limits and the usage log share. */
typedef enum {
    YR_OUT_OK = 0,
    YR_OUT_RATE_LIMITED,  /* 429 or equivalent: try elsewhere, honour the hint */
    YR_OUT_OVERLOADED,    /* Anthropic 529, 503 */
    YR_OUT_SERVER_ERROR,  /* other 5xx */
    YR_OUT_QUOTA,         /* spend or quota exhausted: not worth retrying soon */
    YR_OUT_AUTH,          /* the provider refused the gateway's credentials */
    YR_OUT_CLIENT_ERROR,  /* 4xx caused by the request: never retried */
    YR_OUT_CONNECT,       /* nothing was sent */
    YR_OUT_TIMEOUT,       /* no head (or no event) in time */
    YR_OUT_BAD_RESPONSE,  /* malformed body or event */
    YR_OUT_STREAM_CUT,    /* the connection ended mid-response */
    YR_OUT_CANCELLED,     /* the client went away */
    YR_OUT_INTERNAL,      /* the gateway itself failed (out of memory): not the route's fault */
    YR_OUT__COUNT
} yr_outcome_t;

const char *yr_outcome_name(yr_outcome_t o);
/* True when another route (or a later try) may succeed. */
bool yr_outcome_retryable(yr_outcome_t o);

/* What the response head told us. Filled by process_header. */
typedef struct {
    int status;
    int64_t retry_after_ms; /* -1: none given */
    /* Rate-limit headroom the provider announced; -1 when absent. */
    int64_t remaining_requests, remaining_tokens;
    int64_t reset_requests_ms, reset_tokens_ms;
    /* An error's type when the head carries it rather than the body
     * (Bedrock's x-amzn-ErrorType); "" when absent. */
    char error_type[64];
} yr_head_info_t;

/* A provider's error body, parsed by the dialect. */
typedef struct {
    char message[512];
    char param[96];
    char type[64]; /* e.g. overloaded_error, insufficient_quota, RESOURCE_EXHAUSTED */
    char code[64];
    int64_t retry_after_ms; /* from the body (Gemini RetryInfo), -1 when absent */
} yr_provider_error_t;

/* A credential fetch in flight (an OAuth token, STS keys), owned by the
 * transport that started it. */
typedef struct yr_cred_wait yr_cred_wait_t;
typedef void (*yr_cred_done_fn)(void *arg, int rc);

typedef struct yr_transport_ops {
    const char *name;
    yr_framing_t framing;
    /* Optional (NULL: the key is in the config). Makes sure cx has what
     * prepare needs to sign or authorise the call, from a per-worker cache
     * that it refreshes. Returns 0 when it is there now; 1 when done will run
     * later on the worker's loop (*wait is the fetch, for cancel_credentials:
     * then done never runs); a negative code on failure. */
    int (*credentials)(struct yr_call_ctx *cx, yr_cred_done_fn done, void *arg,
                       yr_cred_wait_t **wait);
    void (*cancel_credentials)(yr_cred_wait_t *wait);
    /* Fills out->url, out->headers (NULL-terminated, in cx->pool) and the
     * timeouts for a body the dialect already put in out->body. path is the
     * dialect's endpoint ("/chat/completions", "/v1/messages", ...);
     * a transport may ignore it and build its own (Azure deployments).
     * extra are protocol headers of the dialect ("anthropic-version: ...")
     * to send as they are; NULL-terminated, may be NULL. Returns 0 or
     * -ENOMEM / -EINVAL (cx->error filled: a misconfigured provider). */
    int (*prepare)(struct yr_call_ctx *cx, const char *path, const char *const *extra,
                   yr_upstream_req_t *out);
    /* The head of the response: status and routing hints. */
    void (*process_header)(struct yr_call_ctx *cx, const yr_upstream_call_t *call,
                           yr_head_info_t *info);
    /* An HTTP error (status, parsed body) -> outcome. */
    yr_outcome_t (*classify)(int status, const yr_provider_error_t *perr);
} yr_transport_ops_t;

/* Parses Retry-After (delta seconds or an HTTP-date, relative to now_unix)
 * and retry-after-ms; -1 when neither is usable. */
int64_t yr_retry_after_ms(yr_str_t retry_after, yr_str_t retry_after_ms, int64_t now_unix);

/* The generic pieces transports are made of. */

/* base_url + path, in pool; NULL when out of memory. */
char *yr_transport_url(yr_pool_t *pool, const yr_provider_conf_t *p, const char *path);
/* "Name: value" in pool; NULL when out of memory. */
char *yr_transport_header(yr_pool_t *pool, const char *name, const char *value, size_t vlen);
/* The provider's timeouts into out. */
void yr_transport_timeouts(const yr_provider_conf_t *p, yr_upstream_req_t *out);
/* The route's own timeouts over what prepare set (the proxy applies them). */
void yr_transport_route_timeouts(const yr_route_conf_t *r, yr_upstream_req_t *out);
/* process_header for every provider that speaks HTTP status codes and the
 * usual headers: Retry-After / retry-after-ms, x-ratelimit-* (OpenAI and
 * compatibles, Azure), anthropic-ratelimit-*. */
void yr_transport_generic_head(struct yr_call_ctx *cx, const yr_upstream_call_t *call,
                               yr_head_info_t *info);
/* Status-only classification (429 -> RATE_LIMITED, 529/503 -> OVERLOADED,
 * 401/403 -> AUTH, 5xx -> SERVER_ERROR, other 4xx -> CLIENT_ERROR), with
 * quota errors recognised by type/code (insufficient_quota, billing_error). */
yr_outcome_t yr_transport_classify_status(int status, const yr_provider_error_t *perr);

/* Content-Type, Accept, User-Agent, "auth_name: auth_prefix{api_key}" when
 * the provider has a key, and extra; NULL-terminated, in cx->pool, into
 * out->headers. 0 or -ENOMEM. */
int yr_transport_common_headers(struct yr_call_ctx *cx, const char *auth_name,
                                const char *auth_prefix, const char *const *extra,
                                yr_upstream_req_t *out);

extern const yr_transport_ops_t yr_transport_bearer;    /* OpenAI and compatibles */
extern const yr_transport_ops_t yr_transport_anthropic; /* x-api-key */
extern const yr_transport_ops_t yr_transport_azure;     /* api-key, deployments or v1 */
extern const yr_transport_ops_t yr_transport_gemini;    /* x-goog-api-key (gemini_decode.c) */
/* yr_transport_vertex (Bearer OAuth tokens, Vertex paths) is in vertex.h. */

#endif
