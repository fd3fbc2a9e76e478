/* The public upstream interface (upstream.h), pinned on both engines.
 *
 * Every case runs twice: on the lean HTTP/1.1 client (lean.c) and on
 * libcurl (upstream.c). The header promises the same behaviour from both,
 * so one script of server replies and one set of assertions serve both.
 *
 * The server is a raw libuv TCP listener on 127.0.0.1 (ephemeral port) on
 * the same loop as the client: it reads a request head and answers with the
 * case's script (whole, byte by byte, partly, or not at all). Nothing
 * sleeps; each step runs the loop until an event arrived, and a watchdog
 * turns a hang into a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "upstream/upstream.h"

#define WATCHDOG_MS 3000
#define SHORT_MS 200

/* ---- the scripted server ---------------------------------------------------------------- */

enum reply { R_WHOLE, R_BYTES, R_SILENT };

typedef struct conn {
    uv_tcp_t tcp;
    char in[4096];
    size_t inlen;
    bool closing;
} conn_t;

static struct {
    uv_loop_t loop;
    uv_timer_t watchdog;
    bool timed_out;
    yr_upstream_t *up;
    enum yr_up_engine engine;
    uv_tcp_t lsn;
    uint16_t port;
    int accepts;
    int requests;
    int conns_open;
    conn_t *conns[16]; /* every accepted connection still open */
    /* the script */
    const char *reply;
    size_t reply_len;
    enum reply mode;
    bool close_after; /* close the connection once the reply is written */
} T;

typedef struct {
    uv_write_t w;
    conn_t *c;
    bool last;
    char byte;
} wr_t;

static void on_conn_closed(uv_handle_t *h)
{
    T.conns_open--;
    for (size_t i = 0; i < 16; i++)
        if (T.conns[i] == h->data)
            T.conns[i] = NULL;
    free(h->data);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    wr_t *r = (wr_t *)w;
    if ((status != 0 || r->last) && T.close_after)
        conn_close(r->c);
    free(r);
}

static void send_piece(conn_t *c, const char *p, size_t n, bool last)
{
    wr_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->c = c;
    r->last = last;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(r);
        conn_close(c);
    }
}

static void answer(conn_t *c)
{
    T.requests++;
    if (T.mode == R_SILENT)
        return;
    if (T.mode == R_WHOLE) {
        send_piece(c, T.reply, T.reply_len, true);
        return;
    }
    for (size_t i = 0; i < T.reply_len; i++)
        send_piece(c, T.reply + i, 1, i + 1 == T.reply_len);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    conn_t *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->in + c->inlen, (unsigned)(sizeof(c->in) - c->inlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    (void)b;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->inlen += (size_t)n;
    /* Only GETs are sent: a request ends at its blank line. */
    for (;;) {
        char *end = NULL;
        for (size_t i = 0; i + 4 <= c->inlen; i++) {
            if (memcmp(c->in + i, "\r\n\r\n", 4) == 0) {
                end = c->in + i + 4;
                break;
            }
        }
        if (end == NULL)
            break;
        size_t used = (size_t)(end - c->in);
        memmove(c->in, end, c->inlen - used);
        c->inlen -= used;
        answer(c);
    }
    if (c->inlen == sizeof(c->in))
        conn_close(c);
}

static void on_accept(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    conn_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    uv_tcp_init(&T.loop, &c->tcp);
    c->tcp.data = c;
    T.conns_open++;
    for (size_t i = 0; i < 16; i++) {
        if (T.conns[i] == NULL) {
            T.conns[i] = c;
            break;
        }
    }
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    T.accepts++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void script(enum reply mode, bool close_after, const char *reply)
{
    T.mode = mode;
    T.close_after = close_after;
    T.reply = reply;
    T.reply_len = strlen(reply);
}

/* ---- the loop --------------------------------------------------------------------------- */

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    T.timed_out = true;
}

static void pump_until(const bool *flag, const char *what)
{
    while (!*flag) {
        if (T.timed_out)
            fail_msg("timed out waiting for %s", what);
        uv_run(&T.loop, UV_RUN_ONCE);
    }
}


static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    if (uv_loop_init(&T.loop) != 0)
        return -1;
    uv_timer_init(&T.loop, &T.watchdog);
    uv_timer_start(&T.watchdog, on_watchdog, WATCHDOG_MS, 0);
    if (yr_upstream_init(&T.loop, &T.up) != 0)
        return -1;
    uv_tcp_init(&T.loop, &T.lsn);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&T.lsn, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&T.lsn, 16, on_accept) != 0)
        return -1;
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&T.lsn, (struct sockaddr *)&got, &len);
    T.port = ntohs(got.sin_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    yr_upstream_close(T.up);
    uv_close((uv_handle_t *)&T.lsn, NULL);
    uv_close((uv_handle_t *)&T.watchdog, NULL);
    for (size_t i = 0; i < 16; i++)
        if (T.conns[i] != NULL)
            conn_close(T.conns[i]);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&T.loop), 0);
    return 0;
}

/* ---- one call --------------------------------------------------------------------------- */

typedef struct {
    bool done;
    int dones;
    int heads;
    enum yr_up_error err;
    int status;
    char body[8192];
    size_t len;
    int datas;
    int pause_left;  /* on_data returns YR_UP_PAUSE this many times */
    bool was_paused; /* yr_upstream_paused seen true while paused */
    bool abort_data; /* on_data returns YR_UP_ABORT */
    bool cancel_data; /* the test cancels after the first piece */
    bool got_data;
    char ctype[64], retry[16], xhdr[64];
    char done_xhdr[64]; /* x-TEST-header looked up in on_done */
    yr_upstream_call_t *call;
    uv_timer_t resume;
    bool resume_closed;
} res_t;

static void copy(char *dst, size_t cap, yr_str_t s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.ptr != NULL ? s.ptr : "");
}

static int on_head(yr_upstream_call_t *call, void *data)
{
    res_t *r = data;
    r->heads++;
    r->status = yr_upstream_status(call);
    copy(r->ctype, sizeof(r->ctype), yr_upstream_content_type(call));
    copy(r->retry, sizeof(r->retry), yr_upstream_retry_after(call));
    copy(r->xhdr, sizeof(r->xhdr), yr_upstream_header(call, "x-TEST-header"));
    return YR_UP_CONTINUE;
}

static void on_resume(uv_timer_t *t)
{
    res_t *r = t->data;
    assert_true(yr_upstream_paused(r->call));
    r->was_paused = true;
    yr_upstream_resume(r->call);
}

static int on_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    res_t *r = data;
    r->datas++;
    r->got_data = true;
    if (r->abort_data)
        return YR_UP_ABORT;
    if (r->pause_left > 0) {
        r->pause_left--;
        r->call = call;
        uv_timer_start(&r->resume, on_resume, 10, 0);
        return YR_UP_PAUSE;
    }
    assert_true(r->len + n <= sizeof(r->body));
    memcpy(r->body + r->len, p, n);
    r->len += n;
    return YR_UP_CONTINUE;
}

static void on_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    res_t *r = data;
    copy(r->done_xhdr, sizeof(r->done_xhdr), yr_upstream_header(call, "x-TEST-header"));
    r->dones++;
    r->err = err;
    r->done = true;
}

static const yr_upstream_cbs_t cbs = {on_head, on_data, on_done};

static yr_upstream_call_t *begin(res_t *r, uint16_t port, const yr_upstream_req_t *opt)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", (unsigned)port);
    yr_upstream_req_t req = {0};
    if (opt != NULL)
        req = *opt;
    req.url = url;
    req.get = true;
    if (req.connect_timeout_ms == 0)
        req.connect_timeout_ms = 1000;
    if (req.first_byte_timeout_ms == 0)
        req.first_byte_timeout_ms = 2000;
    if (req.timeout_ms == 0)
        req.timeout_ms = 2500;
    uv_timer_init(&T.loop, &r->resume);
    r->resume.data = r;
    yr_upstream_call_t *call = NULL;
    assert_int_equal(yr_upstream_start(T.up, &req, &cbs, r, &call), 0);
    assert_non_null(call);
    return call;
}

static void on_resume_closed(uv_handle_t *h)
{
    res_t *r = h->data;
    r->resume_closed = true;
}

/* The timer lives in r: it must be closed before r is reused. */
static void end(res_t *r)
{
    uv_close((uv_handle_t *)&r->resume, on_resume_closed);
    pump_until(&r->resume_closed, "the resume timer to close");
}

static void call_with(res_t *r, const yr_upstream_req_t *opt, int pauses, bool abort_data)
{
    memset(r, 0, sizeof(*r));
    r->pause_left = pauses;
    r->abort_data = abort_data;
    begin(r, T.port, opt);
    pump_until(&r->done, "on_done");
    end(r);
    assert_int_equal(r->dones, 1);
}

static void call(res_t *r, const yr_upstream_req_t *opt)
{
    call_with(r, opt, 0, false);
}

/* ---- the cases -------------------------------------------------------------------------- */

#define BODY "hello, upstream: the body arrives exactly"
#define CL_REPLY                                                                                   \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Test-Header: yes\r\n"                \
    "Content-Length: 41\r\n\r\n" BODY
#define CHUNKED_REPLY                                                                              \
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"    \
    "7\r\nhello, \r\n1\r\nu\r\n21\r\npstream: the body arrives exactly\r\n0\r\n\r\n"

static void test_content_length(void)
{
    res_t r;
    script(R_WHOLE, false, CL_REPLY);
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.len, strlen(BODY));
    assert_memory_equal(r.body, BODY, r.len);
    assert_string_equal(r.ctype, "application/json");
    assert_string_equal(r.xhdr, "yes");
    assert_string_equal(r.retry, "");
    script(R_WHOLE, false,
           "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}");
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.retry, "7");
    assert_string_equal(r.xhdr, "");
    assert_memory_equal(r.body, "{}", 2);
}

static void test_chunked_bytewise(void)
{
    res_t r;
    script(R_BYTES, false, CHUNKED_REPLY);
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/event-stream");
    assert_int_equal(r.len, strlen(BODY));
    assert_memory_equal(r.body, BODY, r.len);
}

/* A chunked trailer is not a header of the response (curl: CURLH_HEADER
 * excludes CURLH_TRAILER): a lookup after the body still finds the head's. */
static void test_trailer_not_header(void)
{
    res_t r;
    script(R_WHOLE, false,
           "HTTP/1.1 200 OK\r\nX-Test-Header: head\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n0\r\nX-Test-Header: trailer\r\nX-Other: t\r\n\r\n");
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    assert_memory_equal(r.body, "hello", 5);
    assert_int_equal(r.len, 5);
    assert_string_equal(r.xhdr, "head");
    assert_string_equal(r.done_xhdr, "head");
}

/* 101 Switching Protocols to a request that asked for no upgrade: the call
 * fails; on lean at once and with no body. */
static void test_switching_protocols(void)
{
    res_t r;
    script(R_WHOLE, false, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nxyz");
    uint64_t t0 = uv_now(&T.loop);
    call(&r, NULL);
    assert_true(r.err != YR_UP_OK);
    if (T.engine == YR_UP_ENGINE_LEAN) {
        /* curl hands the bytes after the 101 over as a body and waits for
         * the call's timeout: the lean client is stricter on purpose */
        assert_int_equal(r.len, 0);
        assert_true(uv_now(&T.loop) - t0 < 1500); /* not the first-byte timeout (2 s) */
    }
}

static void test_keepalive_reuse(void)
{
    res_t r;
    yr_upstream_stats_t s0, s1;
    script(R_WHOLE, false, CL_REPLY);
    yr_upstream_get_stats(T.up, &s0);
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    assert_memory_equal(r.body, BODY, strlen(BODY));
    yr_upstream_get_stats(T.up, &s1);
    assert_int_equal(T.accepts, 1);
    assert_int_equal(T.requests, 2);
    if (T.engine == YR_UP_ENGINE_LEAN) {
        assert_int_equal(s1.lean_calls - s0.lean_calls, 2);
        assert_int_equal(s1.conns_opened - s0.conns_opened, 1);
        assert_int_equal(s1.conns_reused - s0.conns_reused, 1);
    } else {
        assert_int_equal(s1.curl_calls - s0.curl_calls, 2);
        assert_int_equal(s1.lean_calls, s0.lean_calls);
        assert_int_equal(s1.conns_opened, s0.conns_opened);
        assert_int_equal(s1.conns_reused, s0.conns_reused);
    }
}

static void test_pause_resume(void)
{
    res_t r;
    script(R_WHOLE, false, CL_REPLY);
    call_with(&r, NULL, 1, false);
    assert_int_equal(r.err, YR_UP_OK);
    assert_true(r.was_paused);
    assert_true(r.datas >= 2);
    assert_int_equal(r.len, strlen(BODY));
    assert_memory_equal(r.body, BODY, r.len);
}

static void test_first_byte_timeout(void)
{
    res_t r;
    script(R_SILENT, false, "");
    yr_upstream_req_t o = {.first_byte_timeout_ms = SHORT_MS};
    uint64_t t0 = uv_now(&T.loop);
    call(&r, &o);
    assert_int_equal(r.err, YR_UP_ETIMEDOUT);
    assert_int_equal(r.heads, 0);
    assert_true(uv_now(&T.loop) - t0 >= SHORT_MS - 5);
}

static void test_idle_timeout(void)
{
    res_t r;
    script(R_WHOLE, false, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart");
    yr_upstream_req_t o = {.idle_timeout_ms = SHORT_MS};
    call(&r, &o);
    assert_int_equal(r.err, YR_UP_EIDLE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 4);
}

static void test_refused(void)
{
    /* A port nothing listens on: bound, learned, closed. */
    uv_tcp_t t;
    uv_tcp_init(&T.loop, &t);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&T.loop, UV_RUN_NOWAIT);
    res_t r;
    memset(&r, 0, sizeof(r));
    begin(&r, ntohs(got.sin_port), NULL);
    pump_until(&r.done, "on_done");
    end(&r);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.err, YR_UP_ECONNECT);
    assert_int_equal(r.heads, 0);
}

static void test_cut_mid_body(void)
{
    res_t r;
    script(R_WHOLE, true, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart");
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_ETRANSFER);
    assert_int_equal(r.len, 4);
}

static void test_max_body(void)
{
    res_t r;
    script(R_WHOLE, false, CL_REPLY);
    yr_upstream_req_t o = {.max_body = 10};
    call(&r, &o);
    assert_int_equal(r.err, YR_UP_EABORTED);
    assert_false(r.got_data);
    /* At the cap it passes. */
    o.max_body = strlen(BODY);
    call(&r, &o);
    assert_int_equal(r.err, YR_UP_OK);
    assert_int_equal(r.len, strlen(BODY));
}

static void test_abort_from_data(void)
{
    res_t r;
    script(R_WHOLE, false, CL_REPLY);
    call_with(&r, NULL, 0, true);
    assert_int_equal(r.err, YR_UP_EABORTED);
    assert_int_equal(r.datas, 1);
    /* Nothing more arrives later. */
    for (int i = 0; i < 5; i++)
        uv_run(&T.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.dones, 1);
}

static void test_cancel_mid_body(void)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    script(R_WHOLE, false, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart");
    yr_upstream_call_t *c = begin(&r, T.port, NULL);
    pump_until(&r.got_data, "the first body bytes");
    yr_upstream_cancel(c);
    assert_int_equal(yr_upstream_active(T.up), 0);
    /* The server sees the client go; on_done never runs. */
    while (T.conns_open > 0) {
        if (T.timed_out)
            fail_msg("the cancelled connection stayed open");
        uv_run(&T.loop, UV_RUN_ONCE);
    }
    end(&r);
    assert_int_equal(r.dones, 0);
}

static void test_stale_keepalive(void)
{
    res_t r;
    yr_upstream_stats_t s0, s1;
    /* The reply says keep-alive, then the server closes the idle connection. */
    script(R_WHOLE, true, CL_REPLY);
    yr_upstream_get_stats(T.up, &s0);
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    while (T.conns_open > 0) {
        if (T.timed_out)
            fail_msg("the server did not close");
        uv_run(&T.loop, UV_RUN_ONCE);
    }
    call(&r, NULL);
    assert_int_equal(r.err, YR_UP_OK);
    assert_int_equal(r.len, strlen(BODY));
    assert_memory_equal(r.body, BODY, r.len);
    assert_int_equal(T.accepts, 2);
    yr_upstream_get_stats(T.up, &s1);
    if (T.engine == YR_UP_ENGINE_LEAN)
        assert_true(s1.stale_retries > s0.stale_retries ||
                    s1.conns_opened - s0.conns_opened == 2);
}

/* ---- runner: every case on both engines ------------------------------------------------- */

#define CASES(X)                                                                                   \
    X(test_content_length)                                                                         \
    X(test_chunked_bytewise)                                                                       \
    X(test_trailer_not_header)                                                                     \
    X(test_switching_protocols)                                                                    \
    X(test_keepalive_reuse)                                                                        \
    X(test_pause_resume)                                                                           \
    X(test_first_byte_timeout)                                                                     \
    X(test_idle_timeout)                                                                           \
    X(test_refused)                                                                                \
    X(test_cut_mid_body)                                                                           \
    X(test_max_body)                                                                               \
    X(test_abort_from_data)                                                                        \
    X(test_cancel_mid_body)                                                                        \
    X(test_stale_keepalive)

#define ON_ENGINE(name, eng)                                                                       \
    static void name##_##eng(void **state)                                                        \
    {                                                                                              \
        (void)state;                                                                               \
        T.engine = YR_UP_ENGINE_##eng;                                                             \
        yr_upstream_set_engine(T.up, T.engine);                                                    \
        name();                                                                                    \
    }
#define BOTH(name) ON_ENGINE(name, LEAN) ON_ENGINE(name, CURL)
CASES(BOTH)

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
#define ENTRIES(name)                                                                              \
    cmocka_unit_test_setup_teardown(name##_LEAN, setup, teardown),                                 \
        cmocka_unit_test_setup_teardown(name##_CURL, setup, teardown),
    const struct CMUnitTest tests[] = {CASES(ENTRIES)};
#undef ENTRIES
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
