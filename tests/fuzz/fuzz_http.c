/* libFuzzer target for the HTTP server's request parsing and connection state
 * machine. It includes http.c to reach its static functions: each input gets
 * a fresh connection on one end of a socketpair (responses go to the other
 * end, which is drained and discarded), and the input bytes are delivered
 * through on_read() in pieces whose sizes come from the input, exactly as
 * libuv would deliver reads. The handler touches every slice of the request
 * (so ASan sees stale pointers), and answers in different ways by path:
 * immediately, streamed, later from a timer, or never (the request is then
 * aborted by an EOF). With data[0] & 0x20 a head hook (opts.on_head)
 * refuses, delays or passes each head with a body, and checks that nothing
 * of the body was read before its verdict. Bytes are only delivered while
 * the server reads, as libuv would. Build and run from the repository root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc
 *         tests/fuzz/fuzz_http.c src/core/buf.c src/core/pool.c src/core/log.c
 *         -luv -lhttp_parser -o /tmp/fuzz_http
 *   /tmp/fuzz_http -max_total_time=60 /tmp/new-inputs tests/fuzz/corpus/http
 *
 * The handler echoes a byte of the request into a response header (X-Kind),
 * so a control byte there checks that the server never writes a header
 * that could split its response (tests/fuzz/corpus/http/keeps-open: a bare
 * CR from a chunked body made the answer after it unreadable). */
#include "../../src/server/http.c"

#include <fcntl.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_BODY 4096

static uv_loop_t fz_loop;
static yr_http_server_t *fz_srv;
static int fz_peer = -1;
static yr_http_req_t *fz_held;  /* answered at the end, or aborted */
static yr_http_req_t *fz_later; /* answered from fz_timer */
static uv_timer_t fz_timer;
static size_t fz_requests;
static volatile unsigned char fz_sink;

/* The response oracle: every response the handler (or on_error) starts is
 * recorded in order, with whether it answers a HEAD; the bytes the peer
 * receives must parse as exactly that sequence of HTTP responses. */
#define FZ_MAX_RESPONSES 8192
static bool fz_is_head[FZ_MAX_RESPONSES];
static size_t fz_expected, fz_got;
static bool fz_check_responses;
static http_parser fz_rp;

static void expect_response(const yr_http_req_t *req)
{
    if (fz_expected < FZ_MAX_RESPONSES)
        fz_is_head[fz_expected] = req->method == HTTP_HEAD;
    fz_expected++;
}

static int on_resp_headers(http_parser *p)
{
    if (p->status_code < 100 || p->status_code > 599)
        abort();
    if (p->status_code < 200)
        return 0; /* 100 Continue: interim, not an answer */
    if (fz_got >= fz_expected) {
        fprintf(stderr, "more responses than requests answered\n");
        abort();
    }
    /* 1 = this response has no body (answer to HEAD). */
    return fz_got < FZ_MAX_RESPONSES && fz_is_head[fz_got] ? 1 : 0;
}

static int on_resp_complete(http_parser *p)
{
    if (p->status_code >= 200)
        fz_got++;
    return 0;
}

static const http_parser_settings fz_resp_settings = {
    .on_headers_complete = on_resp_headers,
    .on_message_complete = on_resp_complete,
};

static void check_response_bytes(const char *buf, size_t n)
{
    if (!fz_check_responses)
        return;
    size_t used = http_parser_execute(&fz_rp, &fz_resp_settings, buf, n);
    if (HTTP_PARSER_ERRNO(&fz_rp) != HPE_OK || used != n) {
        fprintf(stderr, "malformed response stream: %s after %zu responses\n",
                http_errno_name(HTTP_PARSER_ERRNO(&fz_rp)), fz_got);
        abort();
    }
}

static void touch(yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        fz_sink ^= (unsigned char)s.ptr[i];
}

static void touch_head(yr_http_req_t *req);

static void on_fz_abort(yr_http_req_t *req)
{
    if (req == fz_held) {
        fz_held = NULL;
    } else if (req == fz_later) {
        fz_later = NULL;
        uv_timer_stop(&fz_timer);
    } else {
        abort(); /* aborted twice, or a request that was never held */
    }
}

static void on_fz_timer(uv_timer_t *t)
{
    yr_http_req_t *req = fz_later;
    (void)t;
    if (req == NULL)
        abort();
    fz_later = NULL;
    touch_head(req);
    expect_response(req);
    yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), YR_STR("later"));
}

static bool head_readable(const yr_http_req_t *req)
{
    (void)req; /* every slice, chunked requests too (their trailers are not kept) */
    return true;
}

/* Reads every slice of the request's head. */
static void touch_head(yr_http_req_t *req)
{
    if (!head_readable(req))
        return;
    touch(req->method_name);
    touch(req->target);
    touch(req->path);
    touch(req->query);
    for (size_t i = 0; i < req->nheaders; i++) {
        touch(req->headers[i].name);
        touch(req->headers[i].value);
    }
    touch(yr_http_req_header(req, YR_STR("content-type")));
}

static void on_fz_request(yr_http_req_t *req)
{
    fz_requests++;
    if (req->nheaders > YR_HTTP_MAX_HEADERS || req->body.len > FUZZ_MAX_BODY)
        abort();
    touch_head(req);
    touch((yr_str_t){req->body.data, req->body.len});
    if (fz_held != NULL || fz_later != NULL)
        abort(); /* a second request dispatched while one is unanswered */
    /* The second byte of the path picks the behaviour (the first body byte
     * for chunked requests). */
    char kind = '\0';
    if (head_readable(req))
        kind = req->path.len > 1 ? req->path.ptr[1] : '\0';
    else if (req->body.len > 0)
        kind = req->body.data[0];
    yr_http_header_t h[] = {{YR_STR("X-Kind"), {&kind, 1}}};
    /* Streamed answers would carry a body even for HEAD (the stream API does
     * not suppress it), so HEAD always gets a plain response. */
    if (req->method == HTTP_HEAD && (kind == 's' || kind == 'c'))
        kind = '\0';
    if (kind != 'h' && kind != 'l')
        expect_response(req);
    switch (kind) {
    case 's': { /* streamed, chunked on 1.1 */
        if (yr_http_stream_start(req, 200, h, 1, YR_STR("text/event-stream")) != 0)
            abort();
        if (yr_http_stream_write(req, req->body.data, req->body.len) != 0 ||
            yr_http_stream_write(req, "", 0) != 0 ||
            yr_http_stream_write(req, "data: [DONE]\n\n", 14) != 0)
            abort();
        yr_http_stream_end(req, false);
        break;
    }
    case 'c': /* streamed, then the server closes */
        if (yr_http_stream_start(req, 200, NULL, 0, YR_STR("text/plain")) == 0)
            yr_http_stream_end(req, true);
        break;
    case 'h': /* left hanging */
        fz_held = req;
        req->on_abort = on_fz_abort;
        break;
    case 'l': /* answered on the next loop iteration */
        fz_later = req;
        req->on_abort = on_fz_abort;
        uv_timer_start(&fz_timer, on_fz_timer, 0, 0);
        break;
    default:
        yr_http_respond(req, 200, h, 1, YR_STR("application/octet-stream"),
                        (yr_str_t){req->body.data, req->body.len});
        break;
    }
}

/* opts.on_head (when data[0] & 0x20): the second byte of the path says
 * whether the head is refused at once ('d'), judged on the next loop
 * iteration ('w', like an async key lookup) or let through now. */
static yr_http_req_t *fz_head_later;
static uv_timer_t fz_head_timer;

static void on_fz_head_abort(yr_http_req_t *req)
{
    if (req != fz_head_later)
        abort();
    fz_head_later = NULL;
    uv_timer_stop(&fz_head_timer);
}

static void on_fz_head_timer(uv_timer_t *t)
{
    yr_http_req_t *req = fz_head_later;
    (void)t;
    if (req == NULL)
        abort();
    fz_head_later = NULL;
    req->on_abort = NULL;
    touch_head(req);
    yr_http_req_continue(req);
}

static void on_fz_head(yr_http_req_t *req)
{
    if (req->body.len != 0 || fz_head_later != NULL)
        abort(); /* a body read before the verdict, or a second head */
    touch_head(req);
    char kind = req->path.len > 1 ? req->path.ptr[1] : '\0';
    if (kind == 'd') {
        expect_response(req);
        yr_http_respond(req, 401, NULL, 0, YR_STR("text/plain"), YR_STR("denied"));
    } else if (kind == 'w') {
        fz_head_later = req;
        req->on_abort = on_fz_head_abort;
        uv_timer_start(&fz_head_timer, on_fz_head_timer, 0, 0);
    } else {
        yr_http_req_continue(req);
    }
}

static void on_fz_error(yr_http_req_t *req, int status, const char *code, const char *message)
{
    (void)message;
    touch_head(req);
    expect_response(req);
    yr_http_respond(req, status, NULL, 0, YR_STR("text/plain"), yr_str(code));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    yr_log_set_level(YR_LOG_OFF);
    if (uv_loop_init(&fz_loop) != 0)
        abort();
    uv_timer_init(&fz_loop, &fz_timer);
    uv_timer_init(&fz_loop, &fz_head_timer);
    fz_srv = calloc(1, sizeof(*fz_srv));
    fz_srv->loop = &fz_loop;
    fz_srv->opts.max_body = FUZZ_MAX_BODY;
    fz_srv->opts.on_request = on_fz_request;
    fz_srv->listener_closed = true;
    return 0;
}

/* Reads what the server sent; true once the server closed its end. */
static bool drain_peer(void)
{
    char tmp[65536];
    for (;;) {
        ssize_t n = recv(fz_peer, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0)
            check_response_bytes(tmp, (size_t)n);
        else
            return n == 0;
    }
}

static void pump(void)
{
    for (int i = 0; i < 4; i++) {
        drain_peer();
        uv_run(&fz_loop, UV_RUN_NOWAIT);
    }
}

/* The connection is alive while it is on the server's list. */
static yr_http_conn_t *conn_alive(void)
{
    return fz_srv->conns;
}

static yr_http_conn_t *fz_conn_open(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    fz_peer = sv[1];
    yr_http_server_t *s = fz_srv;
    yr_http_conn_t *c = calloc(1, sizeof(*c));
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
    s->conns = c;
    s->nconns = 1;
    if (uv_tcp_open(&c->tcp, sv[0]) != 0)
        abort();
    c->state = CONN_IDLE;
    conn_arm_idle(c);
    /* Reads are delivered by hand below; libuv reads only if the server
     * itself restarts reading after pausing it. */
    c->reading = true;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 128 * 1024)
        return 0;
    /* data[0]: piece size pattern and options; the rest is the byte stream. */
    uint32_t seed = data[0] * 2654435761u + data[1];
    bool answer_held = data[0] & 0x80;
    fz_srv->opts.on_error = (data[0] & 0x40) ? on_fz_error : NULL;
    fz_srv->opts.on_head = (data[0] & 0x20) ? on_fz_head : NULL;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    fz_requests = 0;
    fz_expected = fz_got = 0;
    /* Only when errors are answered by on_fz_error can every response be
     * accounted for. */
    fz_check_responses = fz_srv->opts.on_error != NULL;
    http_parser_init(&fz_rp, HTTP_RESPONSE);
    yr_http_conn_t *c = fz_conn_open();
    size_t off = 0;
    int stalls = 0;
    while (off < n && conn_alive() == c) {
        if (!c->reading) {
            /* libuv delivers nothing while the server does not read (a
             * head awaiting its verdict, a full pipelining buffer). */
            pump();
            if (++stalls > 16)
                break;
            continue;
        }
        stalls = 0;
        seed = seed * 1103515245u + 12345u;
        size_t step = (data[0] & 7) == 0 ? n - off : 1 + (seed >> 16) % (1u << (data[0] & 7) * 2);
        if (step > n - off)
            step = n - off;
        memcpy(fz_srv->readbuf, in + off, step);
        uv_buf_t buf = uv_buf_init(fz_srv->readbuf, (unsigned)step);
        on_read((uv_stream_t *)&c->tcp, (ssize_t)step, &buf);
        off += step;
        pump();
    }
    if (fz_held != NULL && answer_held && conn_alive() == c) {
        yr_http_req_t *req = fz_held;
        fz_held = NULL;
        expect_response(req);
        yr_http_respond(req, 200, NULL, 0, YR_STR("text/plain"), YR_STR("held"));
        pump();
    }
    for (int i = 0; i < 4; i++)
        pump();
    /* The client goes away: whatever is unanswered is aborted. */
    if (conn_alive() == c) {
        uv_buf_t none = uv_buf_init(NULL, 0);
        on_read((uv_stream_t *)&c->tcp, UV_EOF, &none);
    }
    pump();
    bool eof = false;
    for (int i = 0; i < 8 && !eof; i++) {
        eof = drain_peer();
        uv_run(&fz_loop, UV_RUN_NOWAIT);
    }
    if (!eof)
        abort();                   /* the server did not close its end */
    check_response_bytes(NULL, 0); /* EOF ends a close-delimited body */
    if (fz_check_responses && fz_got != fz_expected) {
        fprintf(stderr, "%zu responses started, %zu received whole\n", fz_expected, fz_got);
        abort();
    }
    if (fz_held != NULL || fz_later != NULL)
        abort(); /* on_abort did not run */
    if (fz_srv->nconns != 0 || fz_srv->conns != NULL || fz_srv->inflight != 0)
        abort();
    close(fz_peer);
    fz_peer = -1;
    return 0;
}
