/* HTTP/1.1 server on libuv + http-parser: listener, connection state machine,
 * keep-alive, pipelining, HTTP/1.0, fixed and chunked responses with
 * backpressure. Used by the gateway and by the simulator.
 *
 * Ownership: each request owns a pool (req->pool). It is destroyed by the
 * server once the response has been written completely, or right after
 * on_abort returned when the client went away first. Handlers keep their
 * per-request state in req->pool and release non-memory resources with pool
 * cleanups or in on_abort. After yr_http_respond()/yr_http_stream_end() (or
 * once on_abort ran) the handler must not touch req again, unless it holds
 * the request (yr_http_req_hold): a held request's pool outlives its
 * connection until the last yr_http_req_release, and every call on a request
 * whose connection is gone is a harmless no-op (-ECONNRESET). The server
 * holds each request while its handler runs. */
#ifndef YR_HTTP_H
#define YR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/pool.h"

#define YR_HTTP_MAX_HEADERS 64
#define YR_HTTP_MAX_HEADER_BYTES (32 * 1024)

typedef struct yr_http_server yr_http_server_t;
typedef struct yr_http_conn yr_http_conn_t;
typedef struct yr_http_req yr_http_req_t;

typedef struct {
    yr_str_t name;
    yr_str_t value;
} yr_http_header_t;

typedef void (*yr_http_req_fn)(yr_http_req_t *req);

struct yr_http_req {
    yr_pool_t *pool;
    yr_http_conn_t *conn;
    yr_http_server_t *server;
    int method;         /* enum http_method */
    yr_str_t method_name;
    yr_str_t target;    /* raw request target */
    yr_str_t path;      /* target without the query */
    yr_str_t query;     /* after '?', without it */
    yr_http_header_t *headers; /* nheaders entries, in the pool */
    size_t nheaders;
    yr_buf_t body;      /* capped at the server's max_body */
    unsigned short http_major, http_minor;
    bool keep_alive;    /* what the client asked for; the server may still close */
    uint64_t start_ns;  /* uv_hrtime() when the head was complete */
    int status;         /* of the response once its head is written; 0: none yet */

    /* Set by the handler. */
    void *data;
    yr_http_req_fn on_abort; /* client disconnected before the response ended */
    yr_http_req_fn on_drain; /* a streamed write completed (check the pending size); set it
                              * only while waiting for one: each write then costs a loop turn */
    /* Not NULL: every byte of the response body (whole or streamed, without
     * chunk framing) is also appended here, up to tap->max; tap_truncated is
     * set when some did not fit. The handler owns the buffer. */
    yr_buf_t *tap;
    bool tap_truncated;

    unsigned holds; /* yr_http_req_hold minus releases; the server's own */
};

/* Writes an error response in the application's format (used for errors the
 * server detects itself: 400 bad HTTP, 413 body too large, 431 headers). */
typedef void (*yr_http_error_fn)(yr_http_req_t *req, int status, const char *code,
                                 const char *message);

typedef struct {
    size_t max_body;          /* bytes; larger bodies get 413 */
    uint32_t idle_timeout_ms; /* keep-alive idle and slow-head limit; 0 = 60 s */
    uint32_t linger_ms;       /* lingering close, at most; 0 = 5 s */
    uint32_t header_timeout_ms; /* a whole head, from its first byte (from accept for
                                 * a new connection); 0 = idle_timeout_ms */
    uint32_t body_timeout_ms;   /* longest gap in a body, and the grace before
                                 * body_min_rate applies; 0 = idle_timeout_ms */
    uint32_t body_min_rate;     /* bytes/s a body must average after the grace; 0 = none */
    size_t max_conns;           /* open connections; 0 = no limit */
    size_t max_body_memory;     /* body buffers of all requests in flight; 0 = no cap
                                 * (past it: 503) */
    /* Optional: a head announcing a body is complete, the body unread and
     * no 100 Continue sent. The handler calls yr_http_req_continue (now or
     * later) to have the body read, or responds at once: the body is then
     * never buffered and the connection closes after the response. */
    yr_http_req_fn on_head;
    yr_http_req_fn on_request;  /* head and body complete */
    yr_http_error_fn on_error;  /* may be NULL: plain-text errors */
    void *ctx;                  /* yr_http_server_ctx() */
} yr_http_opts_t;

/* Binds host:port (port 0 picks one) with SO_REUSEPORT when reuseport is set,
 * and starts accepting on loop. The server is owned by the caller and freed
 * by yr_http_server_close(). Returns 0 or a negative errno/uv error. */
__attribute__((warn_unused_result)) int yr_http_listen(uv_loop_t *loop, const char *host,
                                                        uint16_t port, bool reuseport,
                                                        const yr_http_opts_t *opts,
                                                        yr_http_server_t **out);
uint16_t yr_http_server_port(const yr_http_server_t *server);
void *yr_http_server_ctx(const yr_http_server_t *server);
size_t yr_http_server_active(const yr_http_server_t *server); /* open connections */
size_t yr_http_server_inflight(const yr_http_server_t *server); /* unfinished requests */

/* Graceful stop: closes the listener and idle connections, lets in-flight
 * requests finish (their connections close afterwards). done runs once every
 * connection is closed; then free the server with yr_http_server_free(). */
void yr_http_server_shutdown(yr_http_server_t *server, void (*done)(yr_http_server_t *));
/* Closes every connection at once (the shutdown deadline passed). */
void yr_http_server_kill_all(yr_http_server_t *server);
void yr_http_server_free(yr_http_server_t *server);

/* Keeps req (and its pool) alive across a call that may end it. Every hold
 * needs one release; the last release of a finished request destroys its
 * pool, so the caller must not touch req (or its pool) after releasing. */
void yr_http_req_hold(yr_http_req_t *req);
void yr_http_req_release(yr_http_req_t *req);
/* True once the connection is gone (the response ended or the client left). */
bool yr_http_req_gone(const yr_http_req_t *req);

/* After opts.on_head: read the body (then on_request runs). A no-op once
 * the request was answered or its connection is gone. */
void yr_http_req_continue(yr_http_req_t *req);

/* Case-insensitive header lookup; YR_STR_NULL when absent. */
yr_str_t yr_http_req_header(const yr_http_req_t *req, yr_str_t name);

/* A complete response; body is copied. headers are extra headers (the server
 * adds Content-Length, Connection and Date). */
void yr_http_respond(yr_http_req_t *req, int status, const yr_http_header_t *headers,
                     size_t nheaders, yr_str_t content_type, yr_str_t body);

/* Starts a streamed response (chunked on HTTP/1.1, close-delimited on 1.0).
 * Returns 0, or -ECONNRESET when the client is gone. */
__attribute__((warn_unused_result)) int yr_http_stream_start(yr_http_req_t *req, int status,
                                                              const yr_http_header_t *headers,
                                                              size_t nheaders,
                                                              yr_str_t content_type);
/* Queues data (copied). Returns 0 or -ECONNRESET. */
__attribute__((warn_unused_result)) int yr_http_stream_write(yr_http_req_t *req, const void *data,
                                                              size_t len);
/* Bytes queued to the socket and not yet written. */
size_t yr_http_stream_pending(const yr_http_req_t *req);
/* Ends the stream; the connection closes after it when close_after is set. */
void yr_http_stream_end(yr_http_req_t *req, bool close_after);

/* Queues bytes as they are, without any framing (simulators use this to
 * send broken responses). Returns 0 or -ECONNRESET. */
__attribute__((warn_unused_result)) int yr_http_write_raw(yr_http_req_t *req, const void *data,
                                                           size_t len);
/* Drops the connection once the bytes already queued are written: a response
 * cut short on purpose. on_abort does not run; req must not be used after. */
void yr_http_abort(yr_http_req_t *req);

/* True once the response head has been queued. */
bool yr_http_responded(const yr_http_req_t *req);

const char *yr_http_status_text(int status);

#endif
