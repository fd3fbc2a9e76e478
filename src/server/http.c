/* HTTP/1.1 server: see http.h for the ownership rules.
 *
 * A connection is a small state machine:
 *   IDLE     waiting for (the rest of) a request head; the idle timer runs
 *   HEAD     a head with a body is complete; opts.on_head decides whether
 *            the body is read (nothing is read meanwhile)
 *   BODY     head parsed, reading the body
 *   HANDLING the handler owns the request; the parser is paused and any
 *            pipelined bytes wait in conn->leftover
 *   LINGER   the last response is written and our side shut down; what the
 *            client still sends is read and dropped, for a bounded time and
 *            size, so that closing does not reset the connection before the
 *            client read the response (nginx's lingering close)
 *   CLOSING  uv_close() was called
 * A request ends when its response is queued and every write completed; then
 * its pool is destroyed and the connection either closes or goes back to IDLE
 * and parses whatever was pipelined behind it. */
#include "server/http.h"

#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define READ_BUF_SIZE (64 * 1024)
#define MAX_LEFTOVER (256 * 1024)  /* pipelined bytes held while handling */
#define REQ_POOL_BLOCK 4096
#define DEFAULT_LINGER_MS 5000
#define LINGER_MIN_BYTES (64u * 1024 * 1024)
#define REFUSED_LINGER_MS 1000 /* lingering while over max_conns */

enum conn_state { CONN_IDLE, CONN_HEAD, CONN_BODY, CONN_HANDLING, CONN_LINGER, CONN_CLOSING };
enum head_scan_state { SCAN_START, SCAN_LINE, SCAN_LF, SCAN_DONE }; /* see head_scan */
enum limit_kind {
    LIMIT_HEADER,
    LIMIT_BODY,
    LIMIT_EVICT,
    LIMIT_CONNS,
    LIMIT_MEMORY,
    LIMIT_NOMEM,
    LIMIT__COUNT
};

typedef struct {
    uint32_t name_off, name_len, val_off, val_len;
} hdr_span_t;

struct yr_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    yr_http_server_t *server;
    yr_http_conn_t *prev, *next;
    http_parser parser;
    enum conn_state state;
    yr_http_req_t *req;
    /* head accumulation (the request target and header bytes) */
    yr_buf_t head;
    hdr_span_t spans[YR_HTTP_MAX_HEADERS];
    size_t nspans;
    bool in_value;
    bool head_too_large;
    size_t url_len;
    int early_status; /* 413 / 431 / 503 / 505 detected inside a parser callback */
    bool early_nomem; /* that 503 is for memory, not the body cap */
    bool broken;      /* a response write failed: closing on the next turn (conn_fail_soon) */
    uint8_t scan;     /* obs-fold scanner over the head's bytes (head_scan) */
    bool message_done;
    bool client_close; /* the client asked to close after this request */
    bool no_linger;    /* close outright after the response (timed out, refused) */
    bool head_done;    /* the parser paused at the end of a head for opts.on_head */
    size_t body_charged; /* of the worker's body_bytes, by this request */
    bool head_started; /* a head began (or the connection is new): its deadline runs */
    uint64_t head_deadline_ms; /* uv_now() by which the head must be complete */
    uint64_t body_start_ms;    /* uv_now() at the end of the head */
    uint64_t body_received;    /* body bytes so far */
    uint64_t idle_since_ms;    /* uv_now() when it last became IDLE (eviction order) */
    uint64_t linger_bytes; /* dropped while lingering */
    uv_shutdown_t shut;
    yr_buf_t leftover;
    size_t left_off; /* leftover bytes before this were parsed already */
    bool reading;
    /* response state */
    bool responded;
    bool response_done;
    bool chunked;
    bool close_after;
    bool head_said_close; /* the response head carried Connection: close */
    bool close_next;      /* the server wants out, but told the client too late:
                           * the next response says so, then the connection ends */
    bool abort_after_writes; /* yr_http_abort: drop the connection when flushed */
    size_t writes_inflight;
    size_t bytes_pending;
    int handles_open; /* tcp + timer, for the final free */
};

struct yr_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    yr_http_opts_t opts;
    uint16_t port;
    yr_http_conn_t *conns;
    size_t nconns;   /* open, not yet closing */
    size_t nclosing; /* uv_close issued, handles not yet released */
    size_t inflight;
    bool shutting_down;
    bool listener_closed;
    bool shutdown_reported;
    size_t body_bytes; /* body buffers of all requests on this worker (max_body_memory) */
    uint64_t limit_logged_ms[LIMIT__COUNT]; /* log_limit */
    uint64_t limit_hits[LIMIT__COUNT];
    void (*on_shutdown)(yr_http_server_t *);
    /* A connection that cannot get its memory is accepted into this handle
     * and closed at once: one left unaccepted would stop libuv from
     * watching the listener, and the worker would take no connection
     * again. One at a time; a second waits in the kernel until it closed. */
    uv_tcp_t drop;
    bool drop_busy, drop_waiting;
    char readbuf[READ_BUF_SIZE]; /* one read at a time per loop */
};

typedef struct {
    uv_write_t w;
    yr_http_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static const http_parser_settings parser_settings;
static void conn_close(yr_http_conn_t *c);
static void conn_feed(yr_http_conn_t *c, const char *data, size_t len, bool from_leftover);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_update_reading(yr_http_conn_t *c);

const char *yr_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
}

/* ---- connection lifecycle ---------------------------------------------- */

static void conn_unlink(yr_http_conn_t *c)
{
    yr_http_server_t *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    s->nclosing++;
}

/* Runs the shutdown callback exactly once, when the listener and every
 * connection handle have been released. */
static void maybe_shutdown_done(yr_http_server_t *s)
{
    if (s->shutting_down && !s->shutdown_reported && s->listener_closed && s->nconns == 0 &&
        s->nclosing == 0 && !s->drop_busy) {
        s->shutdown_reported = true;
        if (s->on_shutdown != NULL)
            s->on_shutdown(s);
    }
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    yr_http_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    yr_http_server_t *s = c->server;
    yr_buf_free(&c->head);
    yr_buf_free(&c->leftover);
    free(c);
    s->nclosing--;
    maybe_shutdown_done(s);
}

/* The request leaves its connection. Its pool goes now, unless someone
 * still holds the request (yr_http_req_hold): then it is detached and the
 * last release destroys it, so a send that failed never frees memory under
 * the code that called it. */
static void req_destroy(yr_http_conn_t *c)
{
    yr_http_req_t *req = c->req;
    if (req == NULL)
        return;
    c->req = NULL;
    c->server->inflight--;
    /* Uncharged when the request leaves its connection; a held request's
     * body lives a little longer, until its last release. */
    c->server->body_bytes -= c->body_charged;
    c->body_charged = 0;
    if (req->holds > 0) {
        req->conn = NULL;
        return;
    }
    yr_pool_destroy(req->pool);
}

void yr_http_req_hold(yr_http_req_t *req)
{
    req->holds++;
}

void yr_http_req_release(yr_http_req_t *req)
{
    if (--req->holds == 0 && req->conn == NULL)
        yr_pool_destroy(req->pool);
}

bool yr_http_req_gone(const yr_http_req_t *req)
{
    return req->conn == NULL;
}

static void conn_close(yr_http_conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    bool aborted = c->req != NULL && !c->response_done;
    c->state = CONN_CLOSING;
    if (aborted && c->req->on_abort != NULL)
        c->req->on_abort(c->req);
    req_destroy(c);
    conn_unlink(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

/* ---- limits: deadlines, connections, the log ---------------------------- */

/* Under attack a limit is hit thousands of times a second: one line per
 * limit per second per worker, saying how many it stands for. */
static void log_limit(yr_http_server_t *s, enum limit_kind k, const char *what)
{
    uint64_t now = uv_now(s->loop);
    if (s->limit_logged_ms[k] != 0 && now - s->limit_logged_ms[k] < 1000) {
        s->limit_hits[k]++;
        return;
    }
    if (s->limit_hits[k] > 0)
        yr_log_warn("http: %s (and %llu more times since the last such line)", what,
                    (unsigned long long)s->limit_hits[k]);
    else
        yr_log_warn("http: %s", what);
    s->limit_logged_ms[k] = now;
    s->limit_hits[k] = 0;
}

static uint32_t idle_ms(const yr_http_server_t *s)
{
    return s->opts.idle_timeout_ms ? s->opts.idle_timeout_ms : 60000;
}

static uint32_t header_ms(const yr_http_server_t *s)
{
    return s->opts.header_timeout_ms ? s->opts.header_timeout_ms : idle_ms(s);
}

static uint32_t body_ms(const yr_http_server_t *s)
{
    return s->opts.body_timeout_ms ? s->opts.body_timeout_ms : idle_ms(s);
}

static void conn_early_error(yr_http_conn_t *c, int status, const char *code, const char *msg);

/* One timer per connection; what it means depends on the state. */
static void on_conn_timer(uv_timer_t *t)
{
    yr_http_conn_t *c = t->data;
    yr_http_server_t *s = c->server;
    if (c->broken) {
        conn_close(c);
        return;
    }
    switch (c->state) {
    case CONN_IDLE:
        if (c->head_started)
            log_limit(s, LIMIT_HEADER, "closed a connection whose request head was not complete "
                                       "within server.header_timeout_ms");
        conn_close(c);
        break;
    case CONN_BODY:
        log_limit(s, LIMIT_BODY, "answered 408 to a request body that arrived too slowly "
                                 "(server.body_timeout_ms / server.body_min_rate)");
        c->no_linger = true; /* a client this slow does not get more time */
        conn_early_error(c, 408, "request_timeout", "the request body arrived too slowly");
        break;
    default: conn_close(c); break;
    }
}

/* IDLE without a head begun: the keep-alive wait (idle_timeout_ms). Once a
 * head has begun (or the connection is new), the whole head must arrive
 * within header_timeout_ms of that: bytes do not push the deadline, so a
 * client sending a byte a second cannot hold the connection. */
static void conn_arm_idle(yr_http_conn_t *c)
{
    yr_http_server_t *s = c->server;
    uint64_t now = uv_now(s->loop);
    uint64_t due = c->head_started ? c->head_deadline_ms : now + idle_ms(s);
    uv_timer_start(&c->timer, on_conn_timer, due > now ? due - now : 0, 0);
}

static void conn_head_begins(yr_http_conn_t *c)
{
    if (c->head_started)
        return;
    c->head_started = true;
    c->head_deadline_ms = uv_now(c->server->loop) + header_ms(c->server);
    conn_arm_idle(c);
}

/* A body must keep coming (no gap over body_timeout_ms, nginx's
 * client_body_timeout) and, past that grace, average body_min_rate: each
 * byte received buys 1/min_rate s (Apache mod_reqtimeout's MinRate). */
static void conn_arm_body(yr_http_conn_t *c)
{
    yr_http_server_t *s = c->server;
    uint64_t now = uv_now(s->loop);
    uint64_t due = now + body_ms(s);
    if (s->opts.body_min_rate > 0) {
        uint64_t earned = c->body_received * 1000 / s->opts.body_min_rate;
        uint64_t by_rate = c->body_start_ms + body_ms(s) + earned;
        if (by_rate < due)
            due = by_rate;
    }
    uv_timer_start(&c->timer, on_conn_timer, due > now ? due - now : 0, 0);
}

/* Reads while the bytes a read may bring have somewhere to go. While a
 * request is being handled, pipelined bytes wait in leftover: reading stops
 * before one more read could overflow it (the kernel's buffers, then TCP,
 * push back on the client) and resumes once the requests waiting in it
 * were answered and it drained. */
static void conn_update_reading(yr_http_conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    bool want = c->state == CONN_HANDLING ? c->leftover.len + READ_BUF_SIZE <= MAX_LEFTOVER
                                          : c->state != CONN_HEAD;
    if (want && !c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    } else if (!want && c->reading) {
        c->reading = false;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

/* ---- writing ----------------------------------------------------------- */

static void conn_request_finished(yr_http_conn_t *c);

static void on_write_done(uv_write_t *w, int status)
{
    write_req_t *wr = (write_req_t *)w;
    yr_http_conn_t *c = wr->conn;
    c->writes_inflight--;
    c->bytes_pending -= wr->len;
    free(wr);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0 || (c->abort_after_writes && c->writes_inflight == 0)) {
        conn_close(c);
        return;
    }
    if (c->writes_inflight > 0 && !c->response_done)
        goto drain;
    if (c->response_done) {
        if (c->writes_inflight == 0)
            conn_request_finished(c);
        return;
    }
drain:
    if (c->req != NULL && c->req->on_drain != NULL && !c->response_done)
        c->req->on_drain(c->req);
}

/* A streamed response could not be written (out of memory, or the socket
 * failed): nothing more can follow, so the connection ends. Not at once:
 * the handler is inside its own call (an upstream callback) and its
 * on_abort must not run under it; the timer closes the connection on the
 * next loop turn, and every write until then fails. */
static void conn_fail_soon(yr_http_conn_t *c)
{
    c->broken = true;
    uv_timer_start(&c->timer, on_conn_timer, 0, 0);
}

/* A write done at once (conn_write's fast path) completes on the next loop
 * turn, as it would in uv_write's callback, never inside the handler's call:
 * the response finishes, or on_drain runs (once for all of the turn's
 * writes: it checks the pending size anyway). */
static void on_written_at_once(uv_timer_t *t)
{
    yr_http_conn_t *c = t->data;
    if (c->broken) { /* as on_conn_timer: conn_fail_soon's turn */
        conn_close(c);
        return;
    }
    if (c->state != CONN_HANDLING || c->writes_inflight > 0)
        return; /* a queued write's callback does the same */
    if (c->response_done)
        conn_request_finished(c);
    else if (c->req != NULL && c->req->on_drain != NULL)
        c->req->on_drain(c->req);
}

/* Writes n slices. When nothing is queued it first tries the socket at once
 * (one writev of the slices, no copy): on a healthy connection that is the
 * whole write, with no allocation, no write request and no epoll_ctl (libuv
 * 1.44 re-arms the descriptor after every uv_write completion; bench/profile
 * counted one epoll_ctl and one malloc per response). Whatever the socket did
 * not take is queued as one write (copied into one allocation). */
static int conn_write(yr_http_conn_t *c, const yr_str_t *parts, size_t n)
{
    if (c->state == CONN_CLOSING || c->broken)
        return -ECONNRESET;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += parts[i].len;
    size_t skip = 0; /* bytes the fast path wrote */
    /* Only while handling a fully read request: c->timer is free then (an
     * early answer during a body keeps its timers and the queued path). */
    if (c->writes_inflight == 0 && c->state == CONN_HANDLING && c->message_done && n <= 4) {
        uv_buf_t bufs[4];
        for (size_t i = 0; i < n; i++)
            bufs[i] = uv_buf_init((char *)parts[i].ptr, (unsigned)parts[i].len);
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)n);
        if (w < 0 && w != UV_EAGAIN)
            return -ECONNRESET;
        if (w > 0)
            skip = (size_t)w;
        if (skip == total) {
            /* Completes on the next turn: the response finishes, or the
             * handler's on_drain runs. A streamed write with no on_drain set
             * needs no turn at all (one timer per streamed event was ~9 %
             * of the proxy's CPU per event). */
            if (c->response_done || (c->req != NULL && c->req->on_drain != NULL))
                uv_timer_start(&c->timer, on_written_at_once, 0, 0);
            return 0;
        }
    }
    total -= skip;
    write_req_t *wr = malloc(sizeof(*wr) + total);
    if (wr == NULL)
        return -ENOMEM;
    wr->conn = c;
    wr->len = total;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = parts[i].len;
        const char *ptr = parts[i].ptr;
        size_t drop = skip < len ? skip : len;
        skip -= drop;
        if (len - drop)
            memcpy(wr->data + off, ptr + drop, len - drop);
        off += len - drop;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)total);
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write_done);
    if (rc < 0) {
        free(wr);
        return -ECONNRESET;
    }
    c->writes_inflight++;
    c->bytes_pending += total;
    return 0;
}

/* "Date: ..." for the current second, cached per thread. */
static yr_str_t date_header(void)
{
    static _Thread_local char buf[64];
    static _Thread_local time_t cached;
    static _Thread_local size_t len;
    time_t now = time(NULL);
    if (now != cached || len == 0) {
        struct tm tm;
        gmtime_r(&now, &tm);
        len = strftime(buf, sizeof(buf), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        cached = now;
    }
    return (yr_str_t){buf, len};
}

/* A header field a response may carry: no CR, LF or other control byte
 * (HTAB aside) in its name or value, so that no value, whatever it was
 * copied from, can split the response or forge a header. */
static bool header_safe(const yr_http_header_t *h)
{
    for (size_t i = 0; i < h->name.len; i++)
        if ((unsigned char)h->name.ptr[i] <= ' ' || h->name.ptr[i] == 0x7f || h->name.ptr[i] == ':')
            return false;
    for (size_t i = 0; i < h->value.len; i++) {
        unsigned char ch = (unsigned char)h->value.ptr[i];
        if ((ch < ' ' && ch != '\t') || ch == 0x7f)
            return false;
    }
    return h->name.len > 0;
}

static int build_head(yr_http_req_t *req, yr_buf_t *out, int status,
                      const yr_http_header_t *headers, size_t nheaders, yr_str_t content_type,
                      long long content_length)
{
    /* Appends, not printf: this runs for every response. */
    yr_http_conn_t *c = req->conn;
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.%d %d ", req->http_minor ? 1 : 0, status);
    int rc = yr_buf_reserve(out, 256);
    if (rc == 0)
        rc = yr_buf_append(out, line, (size_t)n);
    if (rc == 0)
        rc = yr_buf_append_str(out, yr_str(yr_http_status_text(status)));
    if (rc == 0)
        rc = yr_buf_append_str(out, YR_STR("\r\n"));
    if (rc == 0)
        rc = yr_buf_append_str(out, date_header());
    for (size_t i = 0; rc == 0 && i < nheaders; i++) {
        if (!header_safe(&headers[i])) {
            yr_log_warn("http: dropped a response header with a control character in it");
            continue;
        }
        rc = yr_buf_append_str(out, headers[i].name);
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR(": "));
        if (rc == 0)
            rc = yr_buf_append_str(out, headers[i].value);
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR("\r\n"));
    }
    if (rc == 0 && content_type.len) {
        rc = yr_buf_append_str(out, YR_STR("Content-Type: "));
        if (rc == 0)
            rc = yr_buf_append_str(out, content_type);
        if (rc == 0)
            rc = yr_buf_append_str(out, YR_STR("\r\n"));
    }
    if (rc == 0) {
        if (content_length >= 0) {
            n = snprintf(line, sizeof(line), "Content-Length: %lld\r\n", content_length);
            rc = yr_buf_append(out, line, (size_t)n);
        } else if (c->chunked)
            rc = yr_buf_append_str(out, YR_STR("Transfer-Encoding: chunked\r\n"));
    }
    if (rc == 0) {
        c->head_said_close = c->close_after;
        if (c->close_after)
            rc = yr_buf_append_str(out, YR_STR("Connection: close\r\n\r\n"));
        else if (req->http_minor == 0)
            rc = yr_buf_append_str(out, YR_STR("Connection: keep-alive\r\n\r\n"));
        else
            rc = yr_buf_append_str(out, YR_STR("\r\n"));
    }
    return rc;
}

static bool should_close(yr_http_req_t *req)
{
    yr_http_conn_t *c = req->conn;
    /* A response sent before the body was read ends the connection: the
     * rest of the body is not a request. */
    return !req->keep_alive || c->server->shutting_down || c->early_status != 0 ||
           !c->message_done || c->close_next;
}

/* A copy of response body bytes for req->tap, cut where it is full. */
static void tap_body(yr_http_req_t *req, const void *data, size_t len)
{
    yr_buf_t *t = req->tap;
    if (t == NULL || len == 0)
        return;
    size_t room = t->max > t->len ? t->max - t->len : 0;
    if (len > room) {
        req->tap_truncated = true;
        len = room;
    }
    if (len > 0 && yr_buf_append(t, data, len) < 0)
        req->tap_truncated = true;
}

void yr_http_respond(yr_http_req_t *req, int status, const yr_http_header_t *headers,
                     size_t nheaders, yr_str_t content_type, yr_str_t body)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL || c->responded)
        return;
    c->responded = true;
    req->status = status;
    c->close_after = should_close(req);
    yr_buf_t head;
    yr_buf_init(&head, YR_HTTP_MAX_HEADER_BYTES);
    bool is_head = req->method == HTTP_HEAD;
    int rc = build_head(req, &head, status, headers, nheaders, content_type, (long long)body.len);
    c->response_done = true;
    if (!is_head)
        tap_body(req, body.ptr, body.len);
    if (rc == 0) {
        yr_str_t parts[2] = {{head.data, head.len}, is_head ? YR_STR_NULL : body};
        rc = conn_write(c, parts, 2);
    }
    yr_buf_free(&head);
    if (rc < 0)
        conn_close(c);
}

int yr_http_stream_start(yr_http_req_t *req, int status, const yr_http_header_t *headers,
                         size_t nheaders, yr_str_t content_type)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL)
        return -ECONNRESET;
    if (c->responded)
        return -EALREADY;
    c->responded = true;
    req->status = status;
    c->chunked = req->http_major == 1 && req->http_minor >= 1;
    c->close_after = should_close(req) || !c->chunked;
    yr_buf_t head;
    yr_buf_init(&head, YR_HTTP_MAX_HEADER_BYTES);
    int rc = build_head(req, &head, status, headers, nheaders, content_type, -1);
    if (rc == 0) {
        yr_str_t part = {head.data, head.len};
        rc = conn_write(c, &part, 1);
    }
    yr_buf_free(&head);
    if (rc < 0) {
        conn_fail_soon(c);
        return -ECONNRESET;
    }
    return 0;
}

/* A write of a response in progress; one that fails ends the connection,
 * as a response with a hole in it must not go on. */
static int stream_write_parts(yr_http_conn_t *c, const yr_str_t *parts, size_t n)
{
    if (conn_write(c, parts, n) == 0)
        return 0;
    conn_fail_soon(c);
    return -ECONNRESET;
}

int yr_http_stream_write(yr_http_req_t *req, const void *data, size_t len)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL || !c->responded || c->response_done || c->state == CONN_CLOSING)
        return -ECONNRESET;
    if (len == 0 || req->method == HTTP_HEAD)
        return 0; /* a HEAD response has no body, streamed or not */
    tap_body(req, data, len);
    if (!c->chunked) {
        yr_str_t part = {data, len};
        return stream_write_parts(c, &part, 1);
    }
    char size_line[24];
    int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
    yr_str_t parts[3] = {{size_line, (size_t)n}, {data, len}, YR_STR("\r\n")};
    return stream_write_parts(c, parts, 3);
}

size_t yr_http_stream_pending(const yr_http_req_t *req)
{
    return req->conn ? req->conn->bytes_pending : 0;
}

bool yr_http_responded(const yr_http_req_t *req)
{
    return req->conn == NULL || req->conn->responded;
}

void yr_http_stream_end(yr_http_req_t *req, bool close_after)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL || !c->responded || c->response_done)
        return;
    c->response_done = true;
    if (close_after && !c->head_said_close && c->chunked && !c->server->shutting_down) {
        /* The head promised keep-alive (an interrupted stream ends here,
         * and its 200 went out first). A client may already be sending its
         * next request on this connection: closing now would reset that
         * request. So the response still ends cleanly, the next one is
         * answered with Connection: close, and then the connection ends;
         * an idle client is closed after linger_ms. */
        c->close_next = true;
    } else if (close_after) {
        c->close_after = true;
    }
    int rc = 0;
    if (c->chunked && req->method != HTTP_HEAD) {
        yr_str_t part = YR_STR("0\r\n\r\n");
        rc = conn_write(c, &part, 1);
    }
    if (rc < 0) {
        conn_close(c);
        return;
    }
    if (c->writes_inflight == 0)
        conn_request_finished(c);
}

int yr_http_write_raw(yr_http_req_t *req, const void *data, size_t len)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL || c->response_done || c->state == CONN_CLOSING)
        return -ECONNRESET;
    c->responded = true;
    yr_str_t part = {data, len};
    return stream_write_parts(c, &part, 1);
}

void yr_http_abort(yr_http_req_t *req)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL)
        return;
    c->responded = c->response_done = true; /* the handler chose this: no on_abort */
    if (c->writes_inflight == 0)
        conn_close(c);
    else
        c->abort_after_writes = true;
}

/* ---- requests ------------------------------------------------------------ */

static void respond_error(yr_http_req_t *req, int status, const char *code, const char *msg)
{
    yr_http_server_t *s = req->server;
    req->keep_alive = false;
    if (s->opts.on_error != NULL) {
        s->opts.on_error(req, status, code, msg);
        return;
    }
    yr_http_respond(req, status, NULL, 0, YR_STR("text/plain"), yr_str(msg));
}

/* Parsed bytes leave leftover in bulk, not one request at a time: copying
 * the rest after each of thousands of small pipelined requests was
 * quadratic. */
static void leftover_compact(yr_http_conn_t *c)
{
    yr_buf_t *b = &c->leftover;
    if (c->left_off >= b->len) {
        yr_buf_free(b); /* an idle connection keeps no buffer */
        c->left_off = 0;
    } else if (c->left_off >= READ_BUF_SIZE && c->state == CONN_HANDLING) {
        memmove(b->data, b->data + c->left_off, b->len - c->left_off);
        b->len -= c->left_off;
        c->left_off = 0;
    }
}

static void on_shutdown_done(uv_shutdown_t *sr, int status)
{
    yr_http_conn_t *c = sr->data;
    if (status < 0 && status != UV_ECANCELED && c->state == CONN_LINGER)
        conn_close(c);
}

static uint32_t linger_ms(const yr_http_server_t *s)
{
    return s->opts.linger_ms ? s->opts.linger_ms : DEFAULT_LINGER_MS;
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* How much a lingering connection drops before it closes anyway: enough for
 * the largest body a client may try to send us twice over. */
static uint64_t linger_max_bytes(const yr_http_server_t *s)
{
    uint64_t twice = 2 * (uint64_t)s->opts.max_body;
    return twice > LINGER_MIN_BYTES ? twice : LINGER_MIN_BYTES;
}

/* Closes after the last response without resetting it: shuts our side down
 * (the FIN follows the queued response) and drops what the client still
 * sends until it closes, linger_ms passed or linger_max_bytes arrived. A
 * client uploading a body we refused thus reads our answer instead of an
 * ECONNRESET. */
static void conn_linger(yr_http_conn_t *c)
{
    yr_http_server_t *s = c->server;
    c->state = CONN_LINGER;
    c->linger_bytes = 0;
    yr_buf_free(&c->leftover); /* never parsed now: it counts as dropped */
    c->left_off = 0;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown_done) < 0) {
        conn_close(c);
        return;
    }
    /* A refused connection beyond max_conns holds its descriptor briefly. */
    uint32_t ms = linger_ms(s);
    if (s->opts.max_conns > 0 && s->nconns > s->opts.max_conns && ms > REFUSED_LINGER_MS)
        ms = REFUSED_LINGER_MS;
    uv_timer_start(&c->timer, on_linger_timeout, ms, 0);
    if (!c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

static void conn_request_finished(yr_http_conn_t *c)
{
    bool close = c->close_after;
    /* Unless the client itself said this was its last request and sent
     * nothing more, it may still be writing: closing outright would reset
     * the connection, and the reset can destroy the response in flight. */
    bool linger = !c->message_done || c->leftover.len > c->left_off || c->parser.nread > 0 ||
                  (!c->client_close && !c->server->shutting_down);
    req_destroy(c);
    c->responded = c->response_done = c->chunked = c->close_after = false;
    c->message_done = false;
    c->scan = SCAN_START;
    if (close || c->server->shutting_down) {
        if (linger && !c->no_linger)
            conn_linger(c);
        else
            conn_close(c);
        return;
    }
    c->state = CONN_IDLE;
    c->head_started = false;
    c->idle_since_ms = uv_now(c->server->loop);
    bool pipelined = c->leftover.len > c->left_off;
    if (pipelined)
        conn_head_begins(c);
    else if (c->close_next)
        uv_timer_start(&c->timer, on_linger_timeout, linger_ms(c->server), 0);
    else
        conn_arm_idle(c);
    http_parser_pause(&c->parser, 0);
    if (pipelined) /* parse what was pipelined behind the finished request */
        conn_feed(c, c->leftover.data + c->left_off, c->leftover.len - c->left_off, true);
    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_BODY)
        conn_arm_body(c);
    leftover_compact(c);
    conn_update_reading(c);
}

static int req_begin(yr_http_conn_t *c)
{
    yr_pool_t *pool = yr_pool_create(REQ_POOL_BLOCK);
    if (pool == NULL)
        return -ENOMEM;
    yr_http_req_t *req = yr_pcalloc(pool, sizeof(*req));
    if (req == NULL) {
        yr_pool_destroy(pool);
        return -ENOMEM;
    }
    req->pool = pool;
    req->conn = c;
    req->server = c->server;
    yr_buf_init(&req->body, c->server->opts.max_body);
    if (yr_pool_cleanup_add(pool, (yr_cleanup_fn)yr_buf_free, &req->body) < 0) {
        yr_pool_destroy(pool);
        return -ENOMEM;
    }
    c->req = req;
    c->server->inflight++;
    yr_buf_reset(&c->head);
    c->nspans = 0;
    c->in_value = false;
    c->head_too_large = false;
    c->url_len = 0;
    c->early_status = 0;
    c->early_nomem = false;
    c->client_close = false;
    return 0;
}

/* Out of memory inside a parser callback: a 503 (conn_early_error retries
 * the request's own allocation), never a 400 that blames the client. */
static int parse_nomem(yr_http_conn_t *c)
{
    c->early_status = 503;
    c->early_nomem = true;
    http_parser_pause(&c->parser, 1);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    yr_http_conn_t *c = p->data;
    return req_begin(c) < 0 ? parse_nomem(c) : 0;
}

static int head_append(yr_http_conn_t *c, const char *at, size_t len)
{
    int rc = yr_buf_append(&c->head, at, len);
    if (rc < 0) {
        c->early_status = rc == -E2BIG ? 431 : 503;
        c->early_nomem = rc != -E2BIG;
        http_parser_pause(&c->parser, 1);
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    yr_http_conn_t *c = p->data;
    if (head_append(c, at, len) < 0)
        return 0;
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    yr_http_conn_t *c = p->data;
    /* After the head, these callbacks report chunked trailers: ignore them
     * (appending would move the head buffer under the request's slices). */
    if (c->early_status || c->state != CONN_IDLE)
        return 0;
    if (c->in_value || c->nspans == 0) {
        if (c->nspans == YR_HTTP_MAX_HEADERS) {
            c->early_status = 431;
            http_parser_pause(p, 1);
            return 0;
        }
        hdr_span_t *sp = &c->spans[c->nspans++];
        sp->name_off = (uint32_t)c->head.len;
        sp->name_len = 0;
        sp->val_off = sp->val_len = 0;
        c->in_value = false;
    }
    if (head_append(c, at, len) == 0)
        c->spans[c->nspans - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    yr_http_conn_t *c = p->data;
    if (c->early_status || c->nspans == 0 || c->state != CONN_IDLE)
        return 0;
    hdr_span_t *sp = &c->spans[c->nspans - 1];
    if (!c->in_value) {
        c->in_value = true;
        sp->val_off = (uint32_t)c->head.len;
    }
    if (head_append(c, at, len) == 0)
        sp->val_len += (uint32_t)len;
    return 0;
}

/* Charges body memory to the worker: the buffer grows by n bytes at most.
 * 0, 413 (past max_body) or 503 (past max_body_memory, or the allocation
 * failed: the client may retry, and the process never dies of it). */
static int body_reserve(yr_http_conn_t *c, size_t n)
{
    yr_http_server_t *s = c->server;
    yr_buf_t *b = &c->req->body;
    size_t before = b->cap;
    int rc = yr_buf_reserve(b, n);
    if (rc == -E2BIG)
        return 413;
    c->body_charged += b->cap - before;
    s->body_bytes += b->cap - before;
    if (rc < 0 || (s->opts.max_body_memory > 0 && s->body_bytes > s->opts.max_body_memory)) {
        log_limit(s, LIMIT_MEMORY, "answered 503 to a request body: the bodies in flight on "
                                   "this worker would pass server.max_body_memory");
        return 503;
    }
    return 0;
}

/* The body may come: reserve what its Content-Length announces, answer an
 * Expect: 100-continue, start the body's clock. 0 or an error status. */
static int body_begin(yr_http_conn_t *c)
{
    http_parser *p = &c->parser;
    yr_http_req_t *req = c->req;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
        int status = body_reserve(c, (size_t)p->content_length);
        if (status != 0)
            return status;
    }
    yr_str_t expect = yr_http_req_header(req, YR_STR("expect"));
    if (expect.len > 0 && yr_str_ieq(expect, YR_STR("100-continue")) && req->http_minor >= 1) {
        /* The client waits for this before sending a large body. */
        yr_str_t cont = YR_STR("HTTP/1.1 100 Continue\r\n\r\n");
        if (conn_write(c, &cont, 1) < 0)
            return 503;
    }
    c->state = CONN_BODY;
    c->body_start_ms = uv_now(c->server->loop);
    c->body_received = 0;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    yr_http_conn_t *c = p->data;
    yr_http_req_t *req = c->req;
    if (c->early_status)
        return 0;
    if (p->http_major != 1 || p->http_minor > 1) {
        c->early_status = 505;
        http_parser_pause(p, 1);
        return 0;
    }
    /* The head buffer no longer grows: slices into it stay valid. */
    const char *base = c->head.data ? c->head.data : "";
    req->target = (yr_str_t){base, c->url_len};
    req->path = req->target;
    const char *q = memchr(req->target.ptr, '?', req->target.len);
    if (q != NULL) {
        req->path.len = (size_t)(q - req->target.ptr);
        req->query = (yr_str_t){q + 1, req->target.len - req->path.len - 1};
    }
    /* Exactly as many as arrived: a fixed array of 64 cost 2 KB a request. */
    req->headers = yr_palloc(req->pool, (c->nspans ? c->nspans : 1) * sizeof(*req->headers));
    if (req->headers == NULL)
        return parse_nomem(c);
    for (size_t i = 0; i < c->nspans; i++) {
        req->headers[i].name = (yr_str_t){base + c->spans[i].name_off, c->spans[i].name_len};
        req->headers[i].value =
            yr_str_trim((yr_str_t){base + c->spans[i].val_off, c->spans[i].val_len});
    }
    req->nheaders = c->nspans;
    req->method = p->method;
    req->method_name = yr_str(http_method_str((enum http_method)p->method));
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    req->keep_alive = http_should_keep_alive(p) != 0;
    c->client_close = !req->keep_alive;
    req->start_ns = uv_hrtime();
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->server->opts.max_body) {
        c->early_status = 413;
        http_parser_pause(p, 1);
        return 0;
    }
    bool has_body = (p->flags & F_CHUNKED) ||
                    ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
    if (has_body && c->server->opts.on_head != NULL) {
        /* The handler judges the head before a byte of the body is read
         * or 100 Continue sent (yr_http_req_continue). */
        c->head_done = true;
        http_parser_pause(p, 1);
        return 0;
    }
    int status = body_begin(c);
    if (status != 0) {
        c->early_status = status;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    yr_http_conn_t *c = p->data;
    if (c->early_status)
        return 0;
    c->body_received += len;
    int status = body_reserve(c, len);
    if (status == 0 && yr_buf_append(&c->req->body, at, len) < 0)
        status = 503; /* cannot happen after the reserve */
    if (status != 0) {
        c->early_status = status;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    yr_http_conn_t *c = p->data;
    if (c->early_status)
        return 0;
    c->message_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The head is complete and the body unread: the handler decides (at once or
 * later) to read it (yr_http_req_continue) or to answer without it. Nothing
 * is read meanwhile: body bytes wait in the kernel, not in our memory.
 * Reading stops only when the handler did not decide at once: no read can
 * happen inside on_head anyway, and a stop and start in the same loop turn
 * cost libuv two epoll_ctl per request (bench/profile). */
static void conn_head_ready(yr_http_conn_t *c)
{
    c->state = CONN_HEAD;
    uv_timer_stop(&c->timer);
    yr_http_req_t *req = c->req;
    yr_http_req_hold(req);
    c->server->opts.on_head(req);
    /* c lives until its handles' close callbacks, a later loop turn */
    if (c->state == CONN_HEAD)
        conn_update_reading(c);
    yr_http_req_release(req);
}

void yr_http_req_continue(yr_http_req_t *req)
{
    yr_http_conn_t *c = req->conn;
    if (c == NULL || c->state != CONN_HEAD || c->responded)
        return;
    c->head_done = false;
    int status = body_begin(c);
    if (status == 413) {
        conn_early_error(c, 413, "request_too_large", "request body is larger than the limit");
        return;
    }
    if (status != 0) {
        conn_early_error(c, 503, "server_overloaded",
                         "the gateway holds too many request bodies right now, retry shortly");
        return;
    }
    http_parser_pause(&c->parser, 0);
    if (c->leftover.len > c->left_off)
        conn_feed(c, c->leftover.data + c->left_off, c->leftover.len - c->left_off, true);
    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_BODY)
        conn_arm_body(c);
    leftover_compact(c);
    conn_update_reading(c);
}

static void conn_dispatch(yr_http_conn_t *c)
{
    c->state = CONN_HANDLING;
    uv_timer_stop(&c->timer);
    /* Held across the handler: whatever it sends, the request outlives the call. */
    yr_http_req_t *req = c->req;
    yr_http_req_hold(req);
    c->server->opts.on_request(req);
    yr_http_req_release(req);
}

static void conn_early_error(yr_http_conn_t *c, int status, const char *code, const char *msg)
{
    if (c->req == NULL && req_begin(c) < 0) {
        conn_close(c);
        return;
    }
    yr_http_req_t *req = c->req;
    if (req->http_major == 0) {
        req->http_major = 1;
        req->http_minor = 1;
    }
    c->state = CONN_HANDLING;
    uv_timer_stop(&c->timer);
    yr_http_req_hold(req);
    respond_error(req, status, code, msg);
    yr_http_req_release(req);
}

/* http-parser joins a header line that starts with a space or tab to the
 * previous value (obsolete line folding). RFC 9112 5.2 lets a server refuse
 * it with a 400, which we do: no proxy before or after us may read such a
 * head the same way. So the head's bytes are scanned for a line start
 * followed by SP/HTAB until the empty line that ends the head. */
static bool head_scan(yr_http_conn_t *c, const char *data, size_t len)
{
    for (size_t i = 0; i < len && c->scan != SCAN_DONE; i++) {
        char ch = data[i];
        switch (c->scan) {
        case SCAN_START: /* empty lines before the request line are allowed */
            if (ch != '\r' && ch != '\n')
                c->scan = SCAN_LINE;
            break;
        case SCAN_LINE:
            if (ch == '\n')
                c->scan = SCAN_LF;
            break;
        default: /* SCAN_LF: at the start of a header line */
            if (ch == ' ' || ch == '\t')
                return false;
            c->scan = ch == '\r' || ch == '\n' ? SCAN_DONE : SCAN_LINE;
            break;
        }
    }
    return true;
}

/* Parses bytes: from a read, or (from_leftover) the unparsed rest of
 * leftover, whose offset moves past what the parser took before a request
 * is dispatched (the handler may end it and parse further at once). */
static void conn_feed(yr_http_conn_t *c, const char *data, size_t len, bool from_leftover)
{
    if (c->scan != SCAN_DONE && !head_scan(c, data, len)) {
        conn_early_error(c, 400, "invalid_request",
                         "obsolete header line folding is not accepted");
        return;
    }
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    if (c->early_status == 505) {
        conn_early_error(c, 505, "http_version_not_supported",
                         "only HTTP/1.0 and HTTP/1.1 are supported");
        return;
    }
    if (c->early_status == 413) {
        conn_early_error(c, 413, "request_too_large", "request body is larger than the limit");
        return;
    }
    if (c->early_status == 503) {
        conn_early_error(c, 503, "server_overloaded",
                         c->early_nomem
                             ? "the gateway is out of memory right now, retry shortly"
                             : "the gateway holds too many request bodies right now, retry shortly");
        return;
    }
    if (c->early_status == 431) {
        conn_early_error(c, 431, "headers_too_large", "request headers are too large");
        return;
    }
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (err != HPE_OK && err != HPE_PAUSED) {
        conn_early_error(c, 400, "invalid_request", "malformed HTTP request");
        return;
    }
    if (from_leftover)
        c->left_off += n;
    if (c->head_done) {
        if (!from_leftover && n < len && yr_buf_append(&c->leftover, data + n, len - n) < 0) {
            conn_close(c);
            return;
        }
        conn_head_ready(c);
        return;
    }
    if (c->message_done) {
        if (!from_leftover && n < len && yr_buf_append(&c->leftover, data + n, len - n) < 0) {
            conn_close(c);
            return;
        }
        conn_dispatch(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    yr_http_conn_t *c = h->data;
    buf->base = c->server->readbuf;
    buf->len = sizeof(c->server->readbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    yr_http_conn_t *c = stream->data;
    if (nread < 0) {
        /* EOF or reset: an unfinished request is aborted. */
        conn_close(c);
        return;
    }
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_LINGER) {
        c->linger_bytes += (uint64_t)nread;
        if (c->linger_bytes > linger_max_bytes(c->server))
            conn_close(c);
        return;
    }
    if (c->state == CONN_HANDLING && !c->message_done)
        return; /* the rest of a body refused early (413, 400, ...): dropped */
    if (c->state == CONN_HANDLING) {
        /* Pipelined bytes wait until the current response is done. When too
         * many arrive, stop reading (TCP pushes back on the client). */
        if (yr_buf_append(&c->leftover, buf->base, (size_t)nread) < 0) {
            conn_close(c); /* cannot happen: reading stopped before it could */
            return;
        }
        conn_update_reading(c);
        return;
    }
    if (c->state == CONN_IDLE)
        conn_head_begins(c); /* the first byte starts the head's clock */
    conn_feed(c, buf->base, (size_t)nread, false);
    if (c->state == CONN_BODY)
        conn_arm_body(c);
}

/* ---- listening ------------------------------------------------------------ */

/* At max_conns a new connection takes the place of the one that has been
 * waiting longest without a request being handled: an idle keep-alive
 * connection or an unfinished head (nginx reuses connections the same
 * way). So slow clients crowd out each other, not a client that has a
 * request ready. False when every connection is busy. */
static bool conn_evict(yr_http_server_t *s)
{
    yr_http_conn_t *victim = NULL;
    for (yr_http_conn_t *c = s->conns; c != NULL; c = c->next)
        if (c->state == CONN_IDLE && (victim == NULL || c->idle_since_ms <= victim->idle_since_ms))
            victim = c;
    if (victim == NULL)
        return false;
    log_limit(s, LIMIT_EVICT, "server.max_connections reached: closed the connection idle "
                              "the longest to make room");
    conn_close(victim);
    return true;
}

static void drop_connection(yr_http_server_t *s);

static void on_drop_closed(uv_handle_t *h)
{
    yr_http_server_t *s = h->data;
    s->drop_busy = false;
    if (s->drop_waiting && !s->listener_closed) {
        s->drop_waiting = false;
        drop_connection(s);
    }
    maybe_shutdown_done(s);
}

static void drop_connection(yr_http_server_t *s)
{
    if (s->drop_busy) {
        s->drop_waiting = true;
        return;
    }
    if (uv_tcp_init(s->loop, &s->drop) < 0)
        return;
    s->drop.data = s;
    s->drop_busy = true;
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->drop);
    uv_close((uv_handle_t *)&s->drop, on_drop_closed);
    log_limit(s, LIMIT_NOMEM, "out of memory: closed a new connection at once");
}

static void on_connection(uv_stream_t *listener, int status)
{
    yr_http_server_t *s = listener->data;
    if (status < 0 || s->shutting_down)
        return;
    bool full = s->opts.max_conns > 0 && s->nconns >= s->opts.max_conns && !conn_evict(s);
    yr_http_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        drop_connection(s);
        return;
    }
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    yr_buf_init(&c->head, YR_HTTP_MAX_HEADER_BYTES);
    yr_buf_init(&c->leftover, MAX_LEFTOVER);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = CONN_IDLE;
    c->idle_since_ms = uv_now(s->loop);
    conn_head_begins(c); /* the first head is due header_timeout_ms after accept */
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (full) {
        /* Accepted only to say no, clearly, and close. */
        log_limit(s, LIMIT_CONNS, "refused a connection with 503: server.max_connections "
                                  "reached and none was idle");
        /* It lingers like any refusal: closing on the request the client
         * sent meanwhile would reset the 503 away. */
        conn_early_error(c, 503, "too_many_connections",
                         "the gateway has too many open connections, retry shortly");
    }
}

static int resolve_host(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -EINVAL;
}

static void on_failed_listener_closed(uv_handle_t *h)
{
    free(h->data);
}

int yr_http_listen(uv_loop_t *loop, const char *host, uint16_t port, bool reuseport,
                   const yr_http_opts_t *opts, yr_http_server_t **out)
{
    struct sockaddr_storage ss;
    int rc = resolve_host(host, port, &ss);
    if (rc < 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    socklen_t alen = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, alen) < 0 || listen(fd, 4096) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    yr_http_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        return -ENOMEM;
    }
    s->loop = loop;
    s->opts = *opts;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection);
    if (rc < 0) {
        /* The handle owns fd now; s is freed once the loop closed it. */
        uv_close((uv_handle_t *)&s->listener, on_failed_listener_closed);
        *out = NULL;
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                               : ((struct sockaddr_in6 *)&bound)->sin6_port);
    *out = s;
    return 0;
}

uint16_t yr_http_server_port(const yr_http_server_t *s)
{
    return s->port;
}

void *yr_http_server_ctx(const yr_http_server_t *s)
{
    return s->opts.ctx;
}

size_t yr_http_server_active(const yr_http_server_t *s)
{
    return s->nconns;
}

size_t yr_http_server_inflight(const yr_http_server_t *s)
{
    return s->inflight;
}

static void on_listener_closed(uv_handle_t *h)
{
    yr_http_server_t *s = h->data;
    s->listener_closed = true;
    maybe_shutdown_done(s);
}

void yr_http_server_shutdown(yr_http_server_t *s, void (*done)(yr_http_server_t *))
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    s->on_shutdown = done;
    if (!s->listener_closed && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    /* Idle connections go now; busy ones close when their response ends. */
    yr_http_conn_t *c = s->conns;
    while (c != NULL) {
        yr_http_conn_t *next = c->next;
        if ((c->state == CONN_IDLE && c->req == NULL) || c->state == CONN_LINGER)
            conn_close(c);
        c = next;
    }
}

void yr_http_server_kill_all(yr_http_server_t *s)
{
    while (s->conns != NULL)
        conn_close(s->conns);
}

void yr_http_server_free(yr_http_server_t *s)
{
    free(s);
}

yr_str_t yr_http_req_header(const yr_http_req_t *req, yr_str_t name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (yr_str_ieq(req->headers[i].name, name))
            return req->headers[i].value;
    return YR_STR_NULL;
}
