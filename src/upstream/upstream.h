/* Upstream HTTP calls: one libcurl multi handle per worker, driven by the
 * worker's libuv loop (curl_multi_socket_action). Owns every easy handle.
 *
 * A call is started with yr_upstream_start() and ends exactly once: either
 * its on_done runs (the call is released right after it returns), or the
 * owner calls yr_upstream_cancel() first (then on_done never runs). Inside
 * on_head/on_data the owner must not cancel; it returns YR_UP_ABORT instead
 * and on_done follows with YR_UP_EABORTED. */
#ifndef YR_UPSTREAM_H
#define YR_UPSTREAM_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

typedef struct yr_upstream yr_upstream_t;
typedef struct yr_upstream_call yr_upstream_call_t;

enum { YR_UP_CONTINUE = 0, YR_UP_PAUSE = 1, YR_UP_ABORT = -1 };

/* Failure classes reported by on_done (0 = the transfer completed). */
enum yr_up_error {
    YR_UP_OK = 0,
    YR_UP_ECONNECT = -1,  /* DNS, refused, TLS handshake: nothing was sent */
    YR_UP_ETIMEDOUT = -2, /* no response head within first_byte_timeout */
    YR_UP_ETRANSFER = -3, /* the connection broke or timed out mid-response */
    YR_UP_EABORTED = -4,  /* the owner returned YR_UP_ABORT */
    YR_UP_EINTERNAL = -5,
    YR_UP_EIDLE = -6, /* the head came, then nothing for idle_timeout_ms */
};

typedef struct {
    /* Response head complete (status and headers known). */
    int (*on_head)(yr_upstream_call_t *call, void *data);
    /* A piece of the body. Return YR_UP_CONTINUE, YR_UP_PAUSE (the same bytes
     * are delivered again after yr_upstream_resume) or YR_UP_ABORT. */
    int (*on_data)(yr_upstream_call_t *call, const char *p, size_t n, void *data);
    void (*on_done)(yr_upstream_call_t *call, enum yr_up_error err, void *data);
} yr_upstream_cbs_t;

typedef struct {
    const char *url;
    const char *body; /* must outlive the call */
    size_t body_len;
    const char *const *headers; /* "Name: value" lines, NULL-terminated */
    uint32_t connect_timeout_ms;
    uint32_t first_byte_timeout_ms;
    /* 0: none. After the head, the longest silence between two body bytes
     * (time the owner keeps the call paused does not count). */
    uint32_t idle_timeout_ms;
    uint32_t timeout_ms;

    /* Optional; all zero = a POST to a provider, as above. */
    bool get;              /* GET instead of POST; body and body_len are ignored */
    long max_redirects;    /* 0: redirects are not followed (the 3xx is the
                            * answer); N > 0: up to N are followed, and on_head
                            * runs once, for the final response only */
    const char *protocols; /* for the URL and every redirect, e.g. "https";
                            * NULL = "http,https" (curl copies the string) */
    /* A connection guard, called with the resolved address right before
     * every connect of the call, redirects included (see
     * CURLOPT_OPENSOCKETFUNCTION: it creates the socket, or refuses with
     * CURL_SOCKET_BAD). So that the guard sees every peer of the call, a
     * guarded call also never goes through a proxy, speaks HTTP/1.1, and
     * uses connections of its own: fresh, closed when the call ends, kept
     * apart from the other calls' idle connections (a redirect cannot pick
     * one of those up without a connect). opensocket_data must outlive the
     * call. */
    curl_opensocket_callback opensocket;
    void *opensocket_data;
    /* 0: unlimited. Otherwise a response whose Content-Length is larger ends
     * with YR_UP_EABORTED before any body byte is delivered; a body without
     * a length is the caller's to count in on_data (return YR_UP_ABORT). */
    uint64_t max_body;
    /* PEM file of the CAs that verify the server (CURLOPT_CAINFO); NULL:
     * the system store. Verification itself is never turned off. */
    const char *ca_file;
    /* https: offer HTTP/2 in ALPN (then calls to the host share its
     * connections as streams); false: HTTP/1.1 only, as for every call
     * libcurl carries with a guard */
    bool http2;
    /* http: HTTP/2 with prior knowledge (h2c, no upgrade); for servers
     * known to speak it, the fuzz target and the benchmark */
    bool h2c;
} yr_upstream_req_t;

/* Creates the per-worker client on loop. Owned by the caller; close it with
 * yr_upstream_close() once every call has ended (on_done ran or it was
 * cancelled), and let the loop run until its handles are closed. */
__attribute__((warn_unused_result)) int yr_upstream_init(uv_loop_t *loop, yr_upstream_t **out);
void yr_upstream_close(yr_upstream_t *up);
size_t yr_upstream_active(const yr_upstream_t *up);
/* The loop the client runs on (for timers of modules built on it). */
uv_loop_t *yr_upstream_loop(const yr_upstream_t *up);

/* Which client carries a call. LEAN (the default) is our own HTTP/1.1 + h2
 * client (src/upstream/lean.c) for every call it can serve: http or https,
 * no connection guard, no redirects to follow, no *_proxy variable set at
 * start; every other call, and every call with CURL, goes through libcurl. */
enum yr_up_engine { YR_UP_ENGINE_LEAN = 0, YR_UP_ENGINE_CURL = 1 };
void yr_upstream_set_engine(yr_upstream_t *up, enum yr_up_engine engine);

/* Counters for tests and the benchmark (monotonic, per worker). */
typedef struct {
    uint64_t lean_calls, curl_calls; /* calls started on each client */
    uint64_t conns_opened;           /* lean: connections made (TCP + TLS) */
    uint64_t conns_reused;           /* lean: calls sent on a kept-alive connection */
    uint64_t stale_retries;          /* lean: a kept-alive connection found dead, resent */
    uint64_t tls_resumed;            /* lean: TLS handshakes that resumed a session */
    uint64_t h2_conns;               /* lean: connections that speak HTTP/2 */
    uint64_t h2_streams;             /* lean: calls carried as HTTP/2 streams */
} yr_upstream_stats_t;
void yr_upstream_get_stats(const yr_upstream_t *up, yr_upstream_stats_t *out);

/* Starts a POST (a GET with req->get). On success *out is the call (owned
 * by the upstream module; valid until on_done returns or yr_upstream_cancel).
 * On error no callback ever runs. */
__attribute__((warn_unused_result)) int yr_upstream_start(yr_upstream_t *up,
                                                           const yr_upstream_req_t *req,
                                                           const yr_upstream_cbs_t *cbs,
                                                           void *data, yr_upstream_call_t **out);
void yr_upstream_cancel(yr_upstream_call_t *call);
void yr_upstream_resume(yr_upstream_call_t *call);
bool yr_upstream_paused(const yr_upstream_call_t *call);

int yr_upstream_status(const yr_upstream_call_t *call);
/* Response header values captured for the gateway (empty when absent). */
yr_str_t yr_upstream_retry_after(const yr_upstream_call_t *call);
yr_str_t yr_upstream_content_type(const yr_upstream_call_t *call);
/* Any header of the final response by name (case-insensitive; empty when
 * absent). Owned by curl: valid until the call's next callback returns. */
yr_str_t yr_upstream_header(const yr_upstream_call_t *call, const char *name);
/* Whether the response head carried a routing hint (retry-after-ms, or a
 * rate-limit header: x-ratelimit-*, anthropic-ratelimit-*), so that
 * process_header looks headers up only when there is something to find. */
bool yr_upstream_has_hints(const yr_upstream_call_t *call);
/* Short reason for logs (curl's error text for the last failure). */
const char *yr_upstream_error_text(const yr_upstream_call_t *call);

#endif
