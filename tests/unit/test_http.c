/* HTTP server tests. A real server runs on a uv loop in this process, bound
 * to 127.0.0.1 port 0; the client side is a plain TCP socket watched by a
 * uv_poll on the same loop, so one thread drives both ends and every step is
 * "run the loop until this is true" (a watchdog timer turns a hang into a
 * failure; nothing sleeps). Responses are decoded by a small strict parser
 * here, independent of the server's http-parser. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "server/http.h"

#define MAX_BODY 1024
#define WATCHDOG_MS 10000
#define MAX_CLIENTS 8
#define MAX_SEEN 16

/* ---- what the handler saw --------------------------------------------------- */

typedef struct {
    char method[16];
    char path[128];
    char query[128];
    char x_test[128];
    char *body;
    size_t body_len;
    int http_minor;
    bool keep_alive;
    size_t nheaders;
} seen_t;

typedef struct {
    int fd;
    uv_poll_t poll;
    bool open;
    yr_buf_t in;
    size_t consumed; /* bytes of `in` already returned as responses */
    bool eof;
    bool reset;
} client_t;

static struct {
    uv_loop_t loop;
    uv_timer_t watchdog;
    bool timed_out;
    yr_http_server_t *srv;
    uint16_t port;
    int shutdown_calls;
    int handles_at_done; /* server handles still open when done first ran */
    /* handler side */
    seen_t seen[MAX_SEEN];
    int requests;
    int aborts;
    int abort_wrong_req;
    int errors;
    int last_error_status;
    int drains;
    int drain_pieces;
    yr_http_req_t *held[4]; /* requests left unanswered on purpose */
    yr_http_req_t *later;   /* answered from later_timer */
    uv_timer_t later_timer;
    int stream_write_rc;
    yr_http_req_t *kept; /* held with yr_http_req_hold by /held */
    int kept_pool_freed;
    client_t clients[MAX_CLIENTS];
} T;

/* ---- the server's handler ----------------------------------------------------- */

static void copy_slice(char *dst, size_t cap, yr_str_t s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.ptr ? s.ptr : "");
}

static bool path_is(const yr_http_req_t *req, const char *p)
{
    return yr_str_eq(req->path, yr_str(p));
}

static void on_abort(yr_http_req_t *req);

static void hold(yr_http_req_t *req)
{
    for (int i = 0; i < 4; i++) {
        if (T.held[i] == NULL) {
            T.held[i] = req;
            req->on_abort = on_abort;
            return;
        }
    }
    fail_msg("too many held requests");
}

static void on_abort(yr_http_req_t *req)
{
    T.aborts++;
    for (int i = 0; i < 4; i++) {
        if (T.held[i] == req) {
            T.held[i] = NULL;
            return;
        }
    }
    T.abort_wrong_req++; /* not a held request, or aborted twice */
}

static void on_drain(yr_http_req_t *req)
{
    T.drains++;
    if (T.drain_pieces < 5) {
        char piece[32];
        int n = snprintf(piece, sizeof(piece), "piece-%d;", T.drain_pieces++);
        if (yr_http_stream_write(req, piece, (size_t)n) != 0)
            T.stream_write_rc = -1;
        return;
    }
    yr_http_stream_end(req, false);
}

static void on_later(uv_timer_t *t)
{
    yr_http_req_t *req = T.later;
    T.later = NULL;
    yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), YR_STR("later"));
    (void)t;
}

static const char stream_big_char = 'B';

static void on_kept_pool_freed(void *arg)
{
    (void)arg;
    T.kept_pool_freed++;
}

static void on_request(yr_http_req_t *req)
{
    assert_true(T.requests < MAX_SEEN);
    seen_t *s = &T.seen[T.requests++];
    copy_slice(s->method, sizeof(s->method), req->method_name);
    copy_slice(s->path, sizeof(s->path), req->path);
    copy_slice(s->query, sizeof(s->query), req->query);
    copy_slice(s->x_test, sizeof(s->x_test), yr_http_req_header(req, YR_STR("x-test")));
    s->body = malloc(req->body.len + 1);
    memcpy(s->body, req->body.data ? req->body.data : "", req->body.len);
    s->body[req->body.len] = '\0';
    s->body_len = req->body.len;
    s->http_minor = req->http_minor;
    s->keep_alive = req->keep_alive;
    s->nheaders = req->nheaders;
    assert_ptr_equal(yr_http_server_ctx(req->server), &T);

    if (path_is(req, "/hello")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), YR_STR("hello"));
    } else if (path_is(req, "/split")) {
        /* values a handler copied from elsewhere, one of them forged */
        yr_http_header_t h[] = {{YR_STR("X-Good"), YR_STR("a\tb")},
                                {YR_STR("X-Bad"), YR_STR("x\r\nX-Evil: 1")},
                                {YR_STR("X-Nul"), {"a\0b", 3}},
                                {YR_STR("X Bad"), YR_STR("v")}};
        yr_http_respond(req, 200, h, 4, YR_STR("text/plain"), YR_STR("ok"));
    } else if (path_is(req, "/echo")) {
        yr_http_header_t h[] = {{YR_STR("X-Echo-Method"), req->method_name}};
        yr_http_respond(req, 200, h, 1, YR_STR("application/octet-stream"),
                        (yr_str_t){req->body.data, req->body.len});
    } else if (path_is(req, "/info")) {
        /* Reads the head slices while building the response. */
        char body[512];
        int n = snprintf(body, sizeof(body), "%.*s %.*s ?%.*s x-test=%.*s",
                         (int)req->method_name.len, req->method_name.ptr, (int)req->path.len,
                         req->path.ptr, (int)req->query.len, req->query.ptr ? req->query.ptr : "",
                         (int)yr_http_req_header(req, YR_STR("X-Test")).len,
                         yr_http_req_header(req, YR_STR("X-Test")).ptr
                             ? yr_http_req_header(req, YR_STR("X-Test")).ptr
                             : "");
        yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), (yr_str_t){body, (size_t)n});
    } else if (path_is(req, "/query")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), req->query);
    } else if (path_is(req, "/stream")) {
        int rc = yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/event-stream"));
        char big[3000];
        memset(big, stream_big_char, sizeof(big));
        if (rc == 0)
            rc = yr_http_stream_write(req, "data: 1\n\n", 9);
        if (rc == 0)
            rc = yr_http_stream_write(req, "", 0); /* must not end the chunked body */
        if (rc == 0)
            rc = yr_http_stream_write(req, big, sizeof(big));
        if (rc == 0)
            rc = yr_http_stream_write(req, "x", 1);
        T.stream_write_rc = rc;
        yr_http_stream_end(req, false);
    } else if (path_is(req, "/drain")) {
        /* Pull-based: the next piece is written when the previous one drained. */
        req->on_drain = on_drain;
        T.drain_pieces = 0;
        int rc = yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/plain"));
        if (rc == 0)
            rc = yr_http_stream_write(req, "first;", 6);
        T.stream_write_rc = rc;
    } else if (path_is(req, "/hang")) {
        hold(req);
    } else if (path_is(req, "/stream-hang")) {
        hold(req);
        T.stream_write_rc = yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/plain"));
        if (T.stream_write_rc == 0)
            T.stream_write_rc = yr_http_stream_write(req, "partial", 7);
    } else if (path_is(req, "/abort")) {
        /* A response cut short on purpose: no on_abort for that. */
        req->on_abort = on_abort;
        T.stream_write_rc = yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/plain"));
        if (T.stream_write_rc == 0)
            T.stream_write_rc = yr_http_stream_write(req, "partial", 7);
        yr_http_abort(req);
    } else if (path_is(req, "/held")) {
        /* Holds the request across its end, as async work does. */
        T.kept = req;
        yr_http_req_hold(req);
        assert_int_equal(yr_pool_cleanup_add(req->pool, on_kept_pool_freed, &T), 0);
        req->on_abort = on_abort;
        T.stream_write_rc = yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/plain"));
    } else if (path_is(req, "/later")) {
        T.later = req;
        uv_timer_start(&T.later_timer, on_later, 0, 0);
    } else {
        yr_http_respond(req, 404, NULL, 0, YR_STR("text/plain"), YR_STR("not found"));
    }
}

static void on_error(yr_http_req_t *req, int status, const char *code, const char *message)
{
    T.errors++;
    T.last_error_status = status;
    (void)message;
    yr_http_respond(req, status, NULL, 0, YR_STR("text/plain"), yr_str(code));
}

/* ---- the loop ------------------------------------------------------------------ */

static void on_watchdog(uv_timer_t *t)
{
    T.timed_out = true;
    (void)t;
}

typedef bool (*pred_fn)(void *arg);

static void pump_until(pred_fn pred, void *arg, const char *what)
{
    while (!pred(arg)) {
        if (T.timed_out)
            fail_msg("timed out waiting for %s", what);
        uv_run(&T.loop, UV_RUN_ONCE);
    }
}

static void pump_a_little(void)
{
    for (int i = 0; i < 3; i++)
        uv_run(&T.loop, UV_RUN_NOWAIT);
}

static void count_server_handle(uv_handle_t *h, void *arg);

static void on_server_done(yr_http_server_t *s)
{
    if (T.shutdown_calls++ == 0) {
        int n = 0;
        uv_walk(&T.loop, count_server_handle, &n);
        T.handles_at_done = n;
    }
    (void)s;
}

static void count_server_handle(uv_handle_t *h, void *arg)
{
    if (h == (uv_handle_t *)&T.watchdog || h == (uv_handle_t *)&T.later_timer)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (h == (uv_handle_t *)&T.clients[i].poll)
            return;
    (*(int *)arg)++;
}

static bool server_handles_gone(void *arg)
{
    int n = 0;
    (void)arg;
    uv_walk(&T.loop, count_server_handle, &n);
    return T.shutdown_calls > 0 && n == 0;
}

static void server_start(size_t max_body, uint32_t idle_ms, bool with_on_error)
{
    yr_http_opts_t o = {
        .max_body = max_body,
        .idle_timeout_ms = idle_ms,
        .on_request = on_request,
        .on_error = with_on_error ? on_error : NULL,
        .ctx = &T,
    };
    assert_int_equal(yr_http_listen(&T.loop, "127.0.0.1", 0, false, &o, &T.srv), 0);
    assert_non_null(T.srv);
    T.port = yr_http_server_port(T.srv);
    assert_true(T.port != 0);
}

static void server_stop(void)
{
    if (T.srv == NULL)
        return;
    T.shutdown_calls = 0;
    yr_http_server_shutdown(T.srv, on_server_done);
    yr_http_server_kill_all(T.srv);
    pump_until(server_handles_gone, NULL, "server shutdown");
    yr_http_server_free(T.srv);
    T.srv = NULL;
}

/* ---- the client ------------------------------------------------------------------ */

static void on_client_poll(uv_poll_t *h, int status, int events)
{
    client_t *c = h->data;
    (void)events;
    if (status < 0) {
        c->eof = c->reset = true;
        uv_poll_stop(h);
        return;
    }
    for (;;) {
        char tmp[65536];
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            assert_int_equal(yr_buf_append(&c->in, tmp, (size_t)n), 0);
            continue;
        }
        if (n == 0) {
            c->eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->eof = c->reset = true;
        }
        break;
    }
    if (c->eof)
        uv_poll_stop(h);
}

static client_t *client_connect(void)
{
    client_t *c = NULL;
    for (int i = 0; i < MAX_CLIENTS && c == NULL; i++)
        if (!T.clients[i].open && T.clients[i].fd == 0)
            c = &T.clients[i];
    assert_non_null(c);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd > 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(T.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Completes from the listen backlog before the server accepts. */
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    c->fd = fd;
    c->open = true;
    c->eof = c->reset = false;
    c->consumed = 0;
    yr_buf_init(&c->in, 16 << 20);
    assert_int_equal(uv_poll_init(&T.loop, &c->poll, fd), 0);
    c->poll.data = c;
    assert_int_equal(uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_client_poll), 0);
    return c;
}

static void client_close(client_t *c)
{
    if (!c->open)
        return;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, NULL);
    close(c->fd);
    c->open = false;
    yr_buf_free(&c->in);
}

/* Sends everything (pumping the loop when the socket is full). Returns false
 * when the server closed the connection first. */
static bool client_send(client_t *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (T.timed_out)
                fail_msg("timed out sending");
            uv_run(&T.loop, UV_RUN_ONCE);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return false;
        }
    }
    return true;
}

static void client_send_str(client_t *c, const char *s)
{
    assert_true(client_send(c, s, strlen(s)));
}

/* ---- a strict response decoder -------------------------------------------------- */

typedef struct {
    int minor;
    int status;
    char head[8192];
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
    size_t raw_len;      /* bytes of the stream this response took */
    size_t body_raw_off; /* where the (framed) body starts */
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* Copies the value of header `name` (first occurrence) into val; false when
 * absent. */
static bool resp_header(const resp_t *r, const char *name, char *val, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p != NULL && p[2] != '\r') {
        const char *line = p + 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL)
            return false;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(val, cap, "%.*s", (int)(end - v), v);
            return true;
        }
        p = end;
    }
    return false;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* 1 = complete, 0 = need more bytes, -1 = malformed (with a message). */
static int resp_parse(const char *buf, size_t len, bool eof, resp_t *r, char *why, size_t wlen)
{
    memset(r, 0, sizeof(*r));
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    if (end == NULL)
        return 0;
    size_t head_len = (size_t)(end - buf) + 4;
    if (head_len >= sizeof(r->head)) {
        snprintf(why, wlen, "head too long");
        return -1;
    }
    memcpy(r->head, buf, head_len);
    r->head[head_len] = '\0';
    char reason[64];
    if (sscanf(r->head, "HTTP/1.%d %d %63[^\r]", &r->minor, &r->status, reason) != 3) {
        snprintf(why, wlen, "bad status line: %.40s", r->head);
        return -1;
    }
    char v[64];
    bool chunked = resp_header(r, "Transfer-Encoding", v, sizeof(v));
    if (chunked && strcmp(v, "chunked") != 0) {
        snprintf(why, wlen, "unexpected transfer-encoding %s", v);
        return -1;
    }
    bool has_len = resp_header(r, "Content-Length", v, sizeof(v));
    if (chunked && has_len) {
        snprintf(why, wlen, "both content-length and chunked");
        return -1;
    }
    r->body_raw_off = head_len;
    size_t p = head_len;
    yr_buf_t body;
    yr_buf_init(&body, 16 << 20);
    int rc = 1;
    if (chunked) {
        for (;;) {
            size_t size = 0, q = p;
            while (q < len && hexval(buf[q]) >= 0)
                size = size * 16 + (size_t)hexval(buf[q++]);
            if (q + 2 > len) {
                rc = 0;
                break;
            }
            if (q == p || buf[q] != '\r' || buf[q + 1] != '\n') {
                snprintf(why, wlen, "bad chunk size line at %zu", p);
                rc = -1;
                break;
            }
            q += 2;
            if (q + size + 2 > len) {
                rc = 0;
                break;
            }
            if (buf[q + size] != '\r' || buf[q + size + 1] != '\n') {
                snprintf(why, wlen, "chunk not followed by CRLF at %zu", q + size);
                rc = -1;
                break;
            }
            if (size == 0) {
                p = q + 2;
                break;
            }
            assert_int_equal(yr_buf_append(&body, buf + q, size), 0);
            p = q + size + 2;
        }
    } else if (has_len) {
        size_t n = strtoul(v, NULL, 10);
        if (len - head_len < n) {
            rc = 0;
        } else {
            assert_int_equal(yr_buf_append(&body, buf + head_len, n), 0);
            p = head_len + n;
        }
    } else if (r->status == 204 || r->status == 304) {
        p = head_len;
    } else if (!eof) {
        rc = 0; /* close-delimited */
    } else {
        assert_int_equal(yr_buf_append(&body, buf + head_len, len - head_len), 0);
        p = len;
    }
    if (rc != 1) {
        yr_buf_free(&body);
        return rc;
    }
    r->raw_len = p;
    r->body_len = body.len;
    r->body = yr_buf_steal(&body, NULL);
    if (r->body == NULL)
        r->body = calloc(1, 1);
    return 1;
}

typedef struct {
    client_t *c;
    resp_t *r;
    int rc;
    char why[128];
    bool head_only;
} want_resp_t;

static bool resp_ready(void *arg)
{
    want_resp_t *w = arg;
    client_t *c = w->c;
    const char *buf = c->in.data ? c->in.data + c->consumed : "";
    size_t len = c->in.len - c->consumed;
    w->rc = resp_parse(buf, len, c->eof, w->r, w->why, sizeof(w->why));
    return w->rc != 0 || c->eof;
}

/* Waits for the next complete response on c and consumes it. */
static void read_response(client_t *c, resp_t *r)
{
    want_resp_t w = {.c = c, .r = r};
    pump_until(resp_ready, &w, "a response");
    if (w.rc < 0)
        fail_msg("malformed response: %s", w.why);
    if (w.rc == 0)
        fail_msg("connection closed after %zu bytes without a complete response",
                 c->in.len - c->consumed);
    c->consumed += r->raw_len;
}

static bool client_eof(void *arg)
{
    return ((client_t *)arg)->eof;
}

/* The server closed the connection, and sent nothing more. */
static void expect_closed(client_t *c)
{
    pump_until(client_eof, c, "the server to close");
    assert_int_equal(c->in.len, c->consumed);
}

static bool server_active_is(void *arg)
{
    return yr_http_server_active(T.srv) == *(size_t *)arg;
}

static bool requests_at_least(void *arg)
{
    return T.requests >= *(int *)arg;
}

static bool aborts_at_least(void *arg)
{
    return T.aborts >= *(int *)arg;
}

static void expect_header(const resp_t *r, const char *name, const char *value)
{
    char v[256];
    if (!resp_header(r, name, v, sizeof(v)))
        fail_msg("no %s header in\n%s", name, r->head);
    if (strcasecmp(v, value) != 0)
        fail_msg("%s: '%s', want '%s'", name, v, value);
}

static void expect_no_header(const resp_t *r, const char *name)
{
    char v[256];
    if (resp_header(r, name, v, sizeof(v)))
        fail_msg("unexpected %s: %s", name, v);
}

/* ---- fixtures ---------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    if (uv_loop_init(&T.loop) != 0)
        return -1;
    uv_timer_init(&T.loop, &T.watchdog);
    uv_timer_start(&T.watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_timer_init(&T.loop, &T.later_timer);
    server_start(MAX_BODY, 0, true);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_CLIENTS; i++)
        client_close(&T.clients[i]);
    server_stop();
    uv_close((uv_handle_t *)&T.watchdog, NULL);
    uv_close((uv_handle_t *)&T.later_timer, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&T.loop);
    for (int i = 0; i < MAX_SEEN; i++)
        free(T.seen[i].body);
    assert_int_equal(rc, 0);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_simple_get(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nX-Test:  spaced value \t\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    expect_header(&r, "Content-Length", "5");
    expect_header(&r, "Content-Type", "text/plain");
    expect_no_header(&r, "Transfer-Encoding");
    expect_no_header(&r, "Connection"); /* keep-alive is the 1.1 default */
    resp_free(&r);
    assert_int_equal(T.requests, 1);
    assert_string_equal(T.seen[0].method, "GET");
    assert_string_equal(T.seen[0].path, "/hello");
    assert_string_equal(T.seen[0].query, "x=1");
    assert_string_equal(T.seen[0].x_test, "spaced value");
    assert_int_equal(T.seen[0].nheaders, 2);
    assert_int_equal(T.seen[0].http_minor, 1);
    assert_true(T.seen[0].keep_alive);
    assert_int_equal(T.seen[0].body_len, 0);
    /* The connection stays open and the request is finished. */
    assert_false(c->eof);
    assert_int_equal(yr_http_server_active(T.srv), 1);
    assert_int_equal(yr_http_server_inflight(T.srv), 0);
    assert_int_equal(T.aborts, 0);
}

/* A header value with CR, LF or another control byte is never written: it
 * could split the response (found by fuzz_http, corpus/http/keeps-open). */
static void test_response_header_never_splits(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /split HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    expect_header(&r, "X-Good", "a\tb");
    expect_no_header(&r, "X-Bad");
    expect_no_header(&r, "X-Evil");
    expect_no_header(&r, "X-Nul");
    resp_free(&r);
    read_response(c, &r); /* the next answer on the connection is intact */
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    resp_free(&r);
    client_close(c);
}

static void test_keep_alive_sequential(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    resp_free(&r);
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping");
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ping");
    expect_header(&r, "X-Echo-Method", "POST");
    resp_free(&r);
    /* Unknown path on the same connection still answered. */
    client_send_str(c, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    read_response(c, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    assert_int_equal(T.requests, 3);
    assert_false(c->eof);
    assert_int_equal(yr_http_server_active(T.srv), 1);
    /* Connection: close from the client ends it after the response. */
    client_send_str(c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    expect_header(&r, "Connection", "close");
    resp_free(&r);
    expect_closed(c);
    size_t zero = 0;
    pump_until(server_active_is, &zero, "the connection to go");
}

static void test_pipelined(void **state)
{
    (void)state;
    client_t *c = client_connect();
    /* All in one write: a deferred answer first, a body in the middle. */
    client_send_str(c, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /query?n=2 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nthree"
                       "GET /stream HTTP/1.1\r\n\r\n"
                       "GET /query?n=5 HTTP/1.1\r\nConnection: close\r\n\r\n");
    const char *bodies[] = {"later", "n=2", "three", NULL, "n=5"};
    for (int i = 0; i < 5; i++) {
        resp_t r;
        read_response(c, &r);
        assert_int_equal(r.status, 200);
        if (bodies[i] != NULL) {
            assert_string_equal(r.body, bodies[i]);
        } else {
            assert_int_equal(r.body_len, 9 + 3000 + 1);
            expect_header(&r, "Transfer-Encoding", "chunked");
        }
        resp_free(&r);
    }
    expect_closed(c);
    assert_int_equal(T.requests, 5);
    assert_string_equal(T.seen[0].path, "/later");
    assert_string_equal(T.seen[1].query, "n=2");
    assert_string_equal(T.seen[2].body, "three");
    assert_string_equal(T.seen[3].path, "/stream");
    assert_string_equal(T.seen[4].query, "n=5");
}

static void test_pipelined_split_mid_request(void **state)
{
    (void)state;
    client_t *c = client_connect();
    /* The second request's head straddles two writes while the first is
     * being handled. */
    client_send_str(c, "GET /later HTTP/1.1\r\n\r\nGET /query?x");
    pump_a_little();
    client_send_str(c, "=y HTTP/1.1\r\nHost: t\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_string_equal(r.body, "later");
    resp_free(&r);
    read_response(c, &r);
    assert_string_equal(r.body, "x=y");
    resp_free(&r);
    assert_int_equal(T.requests, 2);
}

static void test_http10(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hello HTTP/1.0\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    expect_header(&r, "Connection", "close");
    expect_header(&r, "Content-Length", "5");
    resp_free(&r);
    expect_closed(c);
    assert_int_equal(T.seen[0].http_minor, 0);
    assert_false(T.seen[0].keep_alive);
}

static void test_http10_stream_is_close_delimited(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /stream HTTP/1.0\r\nHost: t\r\n\r\n");
    resp_t r;
    read_response(c, &r); /* complete only at EOF: no length, no chunks */
    assert_true(c->eof);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.status, 200);
    expect_header(&r, "Connection", "close");
    expect_header(&r, "Content-Type", "text/event-stream");
    expect_no_header(&r, "Transfer-Encoding");
    expect_no_header(&r, "Content-Length");
    assert_int_equal(r.body_len, 9 + 3000 + 1);
    assert_memory_equal(r.body, "data: 1\n\n", 9);
    for (size_t i = 9; i < 9 + 3000; i++)
        assert_int_equal(r.body[i], stream_big_char);
    assert_int_equal(r.body[9 + 3000], 'x');
    resp_free(&r);
    assert_int_equal(T.stream_write_rc, 0);
}

static void test_http10_keep_alive(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.minor, 0);
    expect_header(&r, "Connection", "keep-alive");
    resp_free(&r);
    client_send_str(c, "GET /query?again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_response(c, &r);
    assert_string_equal(r.body, "again");
    resp_free(&r);
    assert_false(c->eof);
}

static void test_chunked_stream_framing(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    expect_header(&r, "Transfer-Encoding", "chunked");
    expect_no_header(&r, "Content-Length");
    expect_no_header(&r, "Connection");
    /* The exact framing: one chunk per write, no empty chunk for the empty
     * write, then the terminator. */
    const char *raw = c->in.data + r.body_raw_off;
    assert_memory_equal(raw, "9\r\ndata: 1\n\n\r\nbb8\r\n", 19);
    assert_memory_equal(raw + 19 + 3000, "\r\n1\r\nx\r\n0\r\n\r\n", 13);
    assert_int_equal(r.raw_len - r.body_raw_off, 19 + 3000 + 13);
    assert_int_equal(r.body_len, 3010);
    assert_memory_equal(r.body, "data: 1\n\n", 9);
    assert_int_equal(r.body[3009], 'x');
    resp_free(&r);
    assert_int_equal(T.stream_write_rc, 0);
    /* The connection is reusable after a chunked response. */
    client_send_str(c, "GET /hello HTTP/1.1\r\n\r\n");
    read_response(c, &r);
    assert_string_equal(r.body, "hello");
    resp_free(&r);
    assert_false(c->eof);
}

static void test_stream_pull_on_drain(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /drain HTTP/1.1\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "first;piece-0;piece-1;piece-2;piece-3;piece-4;");
    resp_free(&r);
    assert_int_equal(T.stream_write_rc, 0);
    assert_int_equal(T.drains, 6);
    assert_int_equal(yr_http_server_inflight(T.srv), 0);
}

static bool input_ends_with(void *arg)
{
    client_t *c = ((want_resp_t *)arg)->c;
    const char *suffix = ((want_resp_t *)arg)->why;
    size_t n = strlen(suffix);
    return c->eof || (c->in.len >= n && memcmp(c->in.data + c->in.len - n, suffix, n) == 0);
}

static void test_head_request(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "HEAD /hello HTTP/1.1\r\n\r\nGET /query?after-head HTTP/1.1\r\n\r\n");
    want_resp_t w = {.c = c};
    snprintf(w.why, sizeof(w.why), "after-head");
    pump_until(input_ends_with, &w, "both responses");
    assert_false(c->eof);
    /* A HEAD response announces the length but carries no body: the next
     * response starts right after its head. */
    const char *buf = c->in.data;
    assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n", 17);
    const char *first_end = strstr(buf, "\r\n\r\n");
    assert_non_null(first_end);
    assert_memory_equal(first_end + 4, "HTTP/1.1 200 OK\r\n", 17);
    char head[512];
    snprintf(head, sizeof(head), "%.*s", (int)(first_end + 2 - buf), buf);
    assert_non_null(strstr(head, "Content-Length: 5\r\n"));
    assert_int_equal(T.requests, 2);
    assert_string_equal(T.seen[0].method, "HEAD");
}

/* A streamed (chunked) response to HEAD: head only, no chunks and no
 * terminal chunk, so a pipelined request behind it is answered cleanly. */
static void test_head_stream(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "HEAD /stream HTTP/1.1\r\n\r\nGET /query?after-head HTTP/1.1\r\n\r\n");
    want_resp_t w = {.c = c};
    snprintf(w.why, sizeof(w.why), "after-head");
    pump_until(input_ends_with, &w, "both responses");
    const char *buf = c->in.data;
    const char *first_end = strstr(buf, "\r\n\r\n");
    assert_non_null(first_end);
    assert_memory_equal(first_end + 4, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(T.requests, 2);
}

static void test_body_too_large(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\nabc");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 413);
    expect_header(&r, "Connection", "close");
    assert_string_equal(r.body, "request_too_large");
    resp_free(&r);
    expect_closed(c);
    assert_int_equal(T.requests, 0); /* the handler never saw it */
    assert_int_equal(T.errors, 1);
    assert_int_equal(T.last_error_status, 413);
    /* A Content-Length of exactly max_body is fine. */
    client_t *c2 = client_connect();
    char req[128 + MAX_BODY];
    int n =
        snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", MAX_BODY);
    memset(req + n, 'k', MAX_BODY);
    assert_true(client_send(c2, req, (size_t)n + MAX_BODY));
    read_response(c2, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, MAX_BODY);
    resp_free(&r);
}

static void test_chunked_body_too_large(void **state)
{
    (void)state;
    client_t *c = client_connect();
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "400\r\n");
    memset(req + n, 'a', 0x400);
    n += 0x400;
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n1\r\nb\r\n0\r\n\r\n");
    client_send(c, req, (size_t)n);
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 413);
    expect_header(&r, "Connection", "close");
    resp_free(&r);
    expect_closed(c);
    assert_int_equal(T.requests, 0);
}

static void test_too_many_headers(void **state)
{
    (void)state;
    /* 64 headers are fine... */
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: v\r\n", i);
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    client_t *c = client_connect();
    assert_true(client_send(c, req, n));
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(T.seen[0].nheaders, 64);
    /* ...65 are not. */
    n = (size_t)snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: v\r\n", i);
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    client_t *c2 = client_connect();
    assert_true(client_send(c2, req, n));
    read_response(c2, &r);
    assert_int_equal(r.status, 431);
    expect_header(&r, "Connection", "close");
    assert_string_equal(r.body, "headers_too_large");
    resp_free(&r);
    expect_closed(c2);
    assert_int_equal(T.requests, 1);
}

static void test_header_bytes_too_large(void **state)
{
    (void)state;
    size_t big = YR_HTTP_MAX_HEADER_BYTES + 100;
    char *req = malloc(big + 64);
    size_t n = (size_t)snprintf(req, 64, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'v', big);
    n += big;
    memcpy(req + n, "\r\n\r\n", 4);
    n += 4;
    client_t *c = client_connect();
    client_send(c, req, n); /* the server may close before it read all */
    free(req);
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    pump_until(client_eof, c, "close");
    assert_int_equal(T.requests, 0);
}

static void test_malformed_request_line(void **state)
{
    (void)state;
    const char *bad[] = {
        "BLAH / HTTP/1.1\r\n\r\n",    "GET / HTTP/A.1\r\n\r\n",
        "\x01GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        client_t *c = client_connect();
        client_send_str(c, bad[i]);
        resp_t r;
        read_response(c, &r);
        if (r.status != 400)
            fail_msg("case %zu: status %d", i, r.status);
        expect_header(&r, "Connection", "close");
        assert_string_equal(r.body, "invalid_request");
        resp_free(&r);
        expect_closed(c);
        client_close(c);
    }
    assert_int_equal(T.requests, 0);
    assert_int_equal(T.errors, 5);
}

static void test_malformed_after_good_request(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hello HTTP/1.1\r\n\r\nBLAH\x01 / HTTP/1.1\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    read_response(c, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    expect_closed(c);
    assert_int_equal(T.requests, 1);
}

static void test_default_error_responses(void **state)
{
    (void)state;
    /* Without on_error the server answers in plain text itself. */
    server_stop();
    server_start(MAX_BODY, 0, false);
    client_t *c = client_connect();
    client_send_str(c, "BLAH / HTTP/1.1\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 400);
    expect_header(&r, "Content-Type", "text/plain");
    assert_string_equal(r.body, "malformed HTTP request");
    resp_free(&r);
    expect_closed(c);
    assert_int_equal(T.errors, 0);
}

static void test_client_abort_while_handling(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hang HTTP/1.1\r\n\r\n");
    pump_until(requests_at_least, &(int){1}, "the request");
    assert_non_null(T.held[0]);
    assert_int_equal(yr_http_server_inflight(T.srv), 1);
    client_close(c);
    pump_until(aborts_at_least, &(int){1}, "on_abort");
    size_t zero = 0;
    pump_until(server_active_is, &zero, "the connection to go");
    pump_a_little();
    assert_int_equal(T.aborts, 1);
    assert_int_equal(T.abort_wrong_req, 0);
    assert_int_equal(yr_http_server_inflight(T.srv), 0);
    /* Shutting the server down does not call it again. */
    server_stop();
    assert_int_equal(T.aborts, 1);
}

static void test_client_abort_mid_stream(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /stream-hang HTTP/1.1\r\n\r\n");
    pump_until(requests_at_least, &(int){1}, "the request");
    assert_int_equal(T.stream_write_rc, 0);
    client_close(c);
    pump_until(aborts_at_least, &(int){1}, "on_abort");
    size_t zero = 0;
    pump_until(server_active_is, &zero, "the connection to go");
    pump_a_little();
    server_stop();
    assert_int_equal(T.aborts, 1);
    assert_int_equal(T.abort_wrong_req, 0);
}

/* A held request outlives its connection: calls on it are harmless, and
 * its pool goes with the last release, not before. */
static void test_held_request_outlives_its_connection(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /held HTTP/1.1\r\n\r\n");
    pump_until(requests_at_least, &(int){1}, "the request");
    assert_int_equal(T.stream_write_rc, 0);
    client_close(c);
    pump_until(aborts_at_least, &(int){1}, "on_abort");
    size_t zero = 0;
    pump_until(server_active_is, &zero, "the connection to go");
    pump_a_little();
    assert_int_equal(T.kept_pool_freed, 0);
    yr_http_req_t *req = T.kept;
    assert_true(yr_http_req_gone(req));
    assert_true(yr_http_responded(req));
    assert_int_equal(yr_http_stream_write(req, "x", 1), -ECONNRESET);
    assert_int_equal(yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/plain")), -ECONNRESET);
    assert_int_equal(yr_http_stream_pending(req), 0);
    yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), YR_STR("late"));
    yr_http_stream_end(req, true);
    yr_http_abort(req);
    assert_int_equal(yr_http_req_header(req, YR_STR("host")).len, 0); /* the head is still readable */
    assert_int_equal(T.kept_pool_freed, 0);
    yr_http_req_release(req);
    assert_int_equal(T.kept_pool_freed, 1);
    assert_int_equal(yr_http_server_inflight(T.srv), 0);
    server_stop();
}

static void test_handler_abort_cuts_response(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /abort HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    pump_until(client_eof, c, "the server to close");
    assert_int_equal(T.stream_write_rc, 0);
    /* The head and the chunk queued before the abort arrive, then nothing. */
    const char *end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
    assert_non_null(end);
    assert_string_equal(end + 4, "7\r\npartial\r\n");
    assert_int_equal(T.requests, 1); /* the pipelined request is dropped */
    assert_int_equal(T.aborts, 0);
    assert_int_equal(T.abort_wrong_req, 0);
}

static void test_no_abort_after_complete_response(void **state)
{
    (void)state;
    client_t *c = client_connect();
    client_send_str(c, "GET /hello HTTP/1.1\r\n\r\n");
    resp_t r;
    read_response(c, &r);
    resp_free(&r);
    client_close(c);
    size_t zero = 0;
    pump_until(server_active_is, &zero, "the connection to go");
    assert_int_equal(T.aborts, 0);
}

static void test_body_in_many_small_writes(void **state)
{
    (void)state;
    enum { N = 1000 };
    server_stop();
    server_start(4 * N, 0, true);
    client_t *c = client_connect();
    const char *head[] = {
        "PO",          "ST /ec", "ho HTTP/1.1\r", "\nContent-Len", "gth: 1000\r\n", "X-Test: ",
        "split\r\n\r", "\n"};
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
        client_send_str(c, head[i]);
        pump_a_little();
    }
    char body[N];
    for (size_t i = 0; i < N; i++)
        body[i] = (char)(' ' + (i * 7) % 90);
    for (size_t off = 0; off < N;) {
        size_t step = 1 + off % 5;
        if (off + step > N)
            step = N - off;
        assert_true(client_send(c, body + off, step));
        pump_a_little();
        off += step;
        if (off < N)
            assert_int_equal(T.requests, 0); /* not dispatched early */
    }
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, N);
    assert_memory_equal(r.body, body, N);
    resp_free(&r);
    assert_int_equal(T.requests, 1);
    assert_int_equal(T.seen[0].body_len, N);
    assert_memory_equal(T.seen[0].body, body, N);
    assert_string_equal(T.seen[0].x_test, "split");
}

static void test_chunked_request_body_small_writes(void **state)
{
    (void)state;
    client_t *c = client_connect();
    const char *in = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n"
                     "1;ext=1\r\n \r\n"
                     "A\r\n0123456789\r\n"
                     "0\r\n\r\n";
    for (size_t i = 0; in[i]; i++) {
        assert_true(client_send(c, in + i, 1));
        pump_a_little();
    }
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello 0123456789");
    resp_free(&r);
}

/* Trailer fields after a chunked request body must not invalidate the head
 * slices (path, headers) the handler reads. */
static void test_chunked_request_with_trailer(void **state)
{
    (void)state;
    client_t *c = client_connect();
    char req[8192];
    size_t n = (size_t)snprintf(req, sizeof(req),
                                "POST /info?q=1 HTTP/1.1\r\nX-Test: before\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n0\r\nX-Trailer: ");
    memset(req + n, 't', 3000);
    n += 3000;
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n\r\n");
    assert_true(client_send(c, req, n));
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /info ?q=1 x-test=before");
    resp_free(&r);
    assert_string_equal(T.seen[0].body, "abc");
}

static void test_idle_timeout_closes_slow_head(void **state)
{
    (void)state;
    server_stop();
    server_start(MAX_BODY, 50, true);
    client_t *c = client_connect();
    client_send_str(c, "GET /hello HTTP/1.1\r\nHost:");
    expect_closed(c);
    assert_int_equal(T.requests, 0);
    assert_true(c->in.len == 0);
}

/* ---- opts.on_head: the handler judges a head before its body is read ---------- */

static struct {
    yr_http_req_t *held; /* waiting for the test to decide */
    int heads;
    size_t body_len_at_head;
} H;

static void on_head(yr_http_req_t *req)
{
    H.heads++;
    H.body_len_at_head = req->body.len;
    if (path_is(req, "/deny")) {
        yr_http_respond(req, 401, NULL, 0, YR_STR("text/plain"), YR_STR("no"));
        return;
    }
    yr_http_req_hold(req); /* decided later, like an async key lookup */
    H.held = req;
}

static bool heads_at_least(void *arg)
{
    return H.heads >= *(int *)arg;
}

typedef struct {
    client_t *c;
    size_t n;
} want_in_t;

static bool input_has(void *arg)
{
    want_in_t *w = arg;
    return w->c->in.len >= w->n;
}

static void server_start_with_head(void)
{
    server_stop();
    yr_http_opts_t o = {.max_body = MAX_BODY, .on_head = on_head, .on_request = on_request,
                        .on_error = on_error, .ctx = &T};
    assert_int_equal(yr_http_listen(&T.loop, "127.0.0.1", 0, false, &o, &T.srv), 0);
    T.port = yr_http_server_port(T.srv);
}

static void test_on_head_continue_later(void **state)
{
    (void)state;
    server_start_with_head();
    client_t *c = client_connect();
    /* Head and the first body bytes in one packet, then the rest. */
    client_send_str(c, "POST /echo HTTP/1.1\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\nabc");
    pump_until(heads_at_least, &(int){1}, "the head hook");
    assert_int_equal(H.body_len_at_head, 0);
    pump_a_little();
    assert_int_equal(T.requests, 0);
    assert_int_equal(c->in.len, 0); /* no 100 Continue before the handler said yes */
    client_send_str(c, "def");
    pump_a_little();
    assert_int_equal(T.requests, 0);
    yr_http_req_t *req = H.held;
    H.held = NULL;
    yr_http_req_continue(req);
    yr_http_req_release(req);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    pump_until(input_has, &(want_in_t){c, sizeof(cont) - 1}, "100 Continue");
    assert_memory_equal(c->in.data, cont, sizeof(cont) - 1);
    c->consumed = sizeof(cont) - 1;
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abcdef");
    resp_free(&r);
    /* A request without a body skips the hook; the connection is reused. */
    client_send_str(c, "GET /hello HTTP/1.1\r\n\r\n");
    read_response(c, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(H.heads, 1);
}

static void test_on_head_answer_without_body(void **state)
{
    (void)state;
    server_start_with_head();
    client_t *c = client_connect();
    client_send_str(c, "POST /deny HTTP/1.1\r\nContent-Length: 100\r\n\r\nsome of it");
    resp_t r;
    read_response(c, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strcasestr(r.head, "connection: close"));
    resp_free(&r);
    client_send_str(c, "more of the body"); /* dropped while lingering */
    expect_closed(c);
    assert_int_equal(T.requests, 0);
}

/* Graceful shutdown while two requests are in flight, then the deadline
 * passes and kill_all drops both: done must run exactly once, and only when
 * no server handle is left (the caller may free the server in it). */
static void test_shutdown_done_runs_once(void **state)
{
    (void)state;
    client_t *a = client_connect();
    client_t *b = client_connect();
    client_send_str(a, "GET /hang HTTP/1.1\r\n\r\n");
    client_send_str(b, "GET /hang HTTP/1.1\r\n\r\n");
    pump_until(requests_at_least, &(int){2}, "two requests");
    T.shutdown_calls = 0;
    T.handles_at_done = -1;
    yr_http_server_shutdown(T.srv, on_server_done);
    pump_a_little(); /* the listener is closed; both requests still run */
    assert_int_equal(T.shutdown_calls, 0);
    assert_int_equal(yr_http_server_active(T.srv), 2);
    yr_http_server_kill_all(T.srv);
    pump_until(server_handles_gone, NULL, "server shutdown");
    pump_a_little();
    assert_int_equal(T.aborts, 2);
    assert_int_equal(T.abort_wrong_req, 0);
    assert_int_equal(T.shutdown_calls, 1);
    assert_int_equal(T.handles_at_done, 0);
    yr_http_server_free(T.srv);
    T.srv = NULL;
    expect_closed(a);
    expect_closed(b);
}

/* Each case runs in a child process with its own loop and server, so a
 * sanitizer report or a crash fails that case alone. In the child a failed
 * assertion aborts (CMOCKA_TEST_ABORT) instead of returning into the
 * parent's test runner. */
static void run_forked(void (*body)(void **), const char *name)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("CMOCKA_TEST_ABORT", "1", 1);
        void *st = NULL;
        if (setup(&st) != 0)
            _exit(3);
        body(&st);
        teardown(&st);
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("%s: child killed by signal %d", name, WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s: child exited with %d", name, WEXITSTATUS(status));
}

#define HTTP_TESTS(X)                                                                              \
    X(test_simple_get)                                                                             \
    X(test_keep_alive_sequential)                                                                  \
    X(test_pipelined)                                                                              \
    X(test_pipelined_split_mid_request)                                                            \
    X(test_http10)                                                                                 \
    X(test_http10_stream_is_close_delimited)                                                       \
    X(test_http10_keep_alive)                                                                      \
    X(test_chunked_stream_framing)                                                                 \
    X(test_stream_pull_on_drain)                                                                   \
    X(test_head_request)                                                                           \
    X(test_head_stream)                                                                            \
    X(test_body_too_large)                                                                         \
    X(test_chunked_body_too_large)                                                                 \
    X(test_too_many_headers)                                                                       \
    X(test_header_bytes_too_large)                                                                 \
    X(test_malformed_request_line)                                                                 \
    X(test_malformed_after_good_request)                                                           \
    X(test_default_error_responses)                                                                \
    X(test_client_abort_while_handling)                                                            \
    X(test_client_abort_mid_stream)                                                                \
    X(test_held_request_outlives_its_connection)                                                   \
    X(test_handler_abort_cuts_response)                                                            \
    X(test_no_abort_after_complete_response)                                                       \
    X(test_body_in_many_small_writes)                                                              \
    X(test_chunked_request_body_small_writes)                                                      \
    X(test_chunked_request_with_trailer)                                                           \
    X(test_response_header_never_splits)                                                           \
    X(test_idle_timeout_closes_slow_head)                                                          \
    X(test_on_head_continue_later)                                                                 \
    X(test_on_head_answer_without_body)                                                            \
    X(test_shutdown_done_runs_once)

#define FORKED_WRAPPER(name)                                                                       \
    static void forked_##name(void **state)                                                        \
    {                                                                                              \
        (void)state;                                                                               \
        run_forked(name, #name);                                                                   \
    }
HTTP_TESTS(FORKED_WRAPPER)

int main(void)
{
#define FORKED_ENTRY(name) {#name, forked_##name, NULL, NULL, NULL},
    const struct CMUnitTest tests[] = {HTTP_TESTS(FORKED_ENTRY)};
#undef FORKED_ENTRY
    return cmocka_run_group_tests(tests, NULL, NULL);
}
