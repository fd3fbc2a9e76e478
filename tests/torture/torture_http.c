/* Allocation-failure torture for the HTTP server path (src/server/http.c,
 * its pools and buffers), in the style of torture_translate.c: one client
 * session with the Nth allocation of the server's thread failing, for
 * N = 1, 2, 3, ... until a session completes without reaching N.
 *
 * The server runs on a libuv loop on the main thread; the client is a
 * thread with blocking sockets that sends, on one connection, a POST with a
 * body (Expect: 100-continue), a chunked POST, and a GET of a streamed
 * answer with Connection: close, and reads until the server closes.
 * Only allocations made on the server's thread are failed (libuv's own,
 * inside the shared library, are not reached by --wrap).
 *
 * Every run must end: the client sees the connection close within 5 s (a
 * failed allocation may cost the connection, never hang it), every answer
 * it got is a whole 200 with the right body or a 5xx, and under ASan
 * nothing crashes or leaks (checked after each run). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "server/http.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static pthread_t server_thread;
static bool armed;
static unsigned long nth, count;
static bool injected;
static unsigned long trace_at; /* YR_TORTURE_TRACE=N: print where the Nth allocation is */

__attribute__((weak)) void __sanitizer_print_stack_trace(void);
__attribute__((weak)) int __lsan_do_recoverable_leak_check(void);

static bool fail_now(void)
{
    if (!armed || nth == 0 || !pthread_equal(pthread_self(), server_thread))
        return false;
    if (++count != nth)
        return false;
    injected = true;
    if (trace_at == nth && __sanitizer_print_stack_trace != NULL) {
        armed = false;
        fprintf(stderr, "allocation %lu fails here:\n", nth);
        __sanitizer_print_stack_trace();
        armed = true;
    }
    return true;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s (N=%lu)\n", __FILE__, __LINE__, #c, nth);     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- the server ------------------------------------------------------------------------------ */

static const char *const events[] = {"data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n",
                                     "data: [DONE]\n\n"};

static void on_head(yr_http_req_t *req)
{
    yr_http_req_continue(req);
}

static void on_request(yr_http_req_t *req)
{
    if (yr_str_eq(req->path, YR_STR("/stream"))) {
        yr_http_header_t h = {YR_STR("Cache-Control"), YR_STR("no-cache")};
        if (yr_http_stream_start(req, 200, &h, 1, YR_STR("text/event-stream")) < 0)
            return; /* the client is gone; the server ends the request */
        for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
            if (yr_http_stream_write(req, events[i], strlen(events[i])) < 0)
                break;
        yr_http_stream_end(req, false);
        return;
    }
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"got\":%zu}", req->body.len);
    yr_http_respond(req, 200, NULL, 0, YR_STR("application/json"), (yr_str_t){body, (size_t)n});
}

typedef struct {
    uv_loop_t loop;
    uv_async_t done; /* the client thread finished */
    yr_http_server_t *srv;
    uint16_t port;
    pthread_t client;
    /* the client's findings */
    char got[16384];
    size_t got_len;
    bool timed_out;
} run_t;

static void on_server_closed(yr_http_server_t *srv)
{
    (void)srv;
}

static void on_client_done(uv_async_t *a)
{
    run_t *r = a->data;
    yr_http_server_shutdown(r->srv, on_server_closed);
    yr_http_server_kill_all(r->srv);
    uv_close((uv_handle_t *)a, NULL);
}

/* ---- the client (its own thread, no allocations) --------------------------------------------- */

static const char session[] =
    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    "Content-Length: 27\r\nExpect: 100-continue\r\n\r\n{\"messages\":[\"0123456789\"]}"
    "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

static void *client_main(void *arg)
{
    run_t *r = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(r->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        /* a reset while sending only means the server closed early */
        (void)!send(fd, session, sizeof(session) - 1, MSG_NOSIGNAL);
        for (;;) {
            ssize_t n = recv(fd, r->got + r->got_len, sizeof(r->got) - 1 - r->got_len, 0);
            if (n > 0) {
                r->got_len += (size_t)n;
                if (r->got_len == sizeof(r->got) - 1)
                    break;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                r->timed_out = true;
            break; /* EOF or reset */
        }
    }
    close(fd);
    r->got[r->got_len] = '\0';
    uv_async_send(&r->done);
    return NULL;
}

/* ---- checking what the client saw -------------------------------------------------------------- */

static const char *const want_bodies[] = {"{\"got\":27}", "{\"got\":11}"};

/* Walks the answers: each complete one is a 200 with the expected body (or
 * the expected stream) or a 5xx; an incomplete tail is a connection lost.
 * Returns how many complete 200s there were. */
static int check_answers(const run_t *r)
{
    const char *p = r->got, *end = r->got + r->got_len;
    int ok = 0, idx = 0;
    while (p < end) {
        if (strncmp(p, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0) {
            p += 25;
            continue;
        }
        CHECK(strncmp(p, "HTTP/1.1 ", 9) == 0 || (size_t)(end - p) < 9);
        if ((size_t)(end - p) < 12)
            break;
        int status = atoi(p + 9);
        const char *hend = strstr(p, "\r\n\r\n");
        if (hend == NULL)
            break; /* the head was cut */
        if (!(status == 200 || status >= 500))
            fprintf(stderr, "unexpected answer (N=%lu):\n%s\n", nth, r->got);
        CHECK(status == 200 || status >= 500);
        if (status >= 500)
            return ok; /* a clean error, and the connection closes after it */
        if (idx < 2) {
            const char *cl = strstr(p, "Content-Length: ");
            CHECK(cl != NULL && cl < hend);
            size_t n = strtoul(cl + 16, NULL, 10);
            if ((size_t)(end - (hend + 4)) < n)
                break; /* the body was cut */
            CHECK(n == strlen(want_bodies[idx]) && memcmp(hend + 4, want_bodies[idx], n) == 0);
            p = hend + 4 + n;
        } else {
            /* the stream: chunked, every event in order, or cut short */
            const char *q = hend + 4;
            size_t e = 0;
            for (;;) {
                char *after;
                unsigned long n = strtoul(q, &after, 16);
                if (after == q || after + 2 > end)
                    return ok; /* cut */
                if (n == 0) {
                    CHECK(e == sizeof(events) / sizeof(events[0]));
                    p = end;
                    ok++;
                    break;
                }
                q = after + 2;
                if ((size_t)(end - q) < n)
                    return ok;
                CHECK(e < sizeof(events) / sizeof(events[0]) && n == strlen(events[e]) &&
                      memcmp(q, events[e], n) == 0);
                e++;
                q += n + 2;
            }
            break;
        }
        ok++;
        idx++;
    }
    return ok;
}

/* One client session against a fresh server; the Nth allocation fails. */
static int run_once(run_t *r)
{
    memset(r, 0, sizeof(*r));
    CHECK(uv_loop_init(&r->loop) == 0);
    yr_http_opts_t o = {.max_body = 1 << 20,
                        .max_body_memory = 8 << 20,
                        .idle_timeout_ms = 4000,
                        .linger_ms = 200,
                        .on_head = on_head,
                        .on_request = on_request,
                        .ctx = r};
    CHECK(yr_http_listen(&r->loop, "127.0.0.1", 0, false, &o, &r->srv) == 0);
    r->port = yr_http_server_port(r->srv);
    CHECK(uv_async_init(&r->loop, &r->done, on_client_done) == 0);
    r->done.data = r;
    count = 0;
    injected = false;
    armed = true;
    CHECK(pthread_create(&r->client, NULL, client_main, r) == 0);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    armed = false;
    pthread_join(r->client, NULL);
    yr_http_server_free(r->srv);
    CHECK(uv_loop_close(&r->loop) == 0);
    CHECK(!r->timed_out); /* a failed allocation never leaves the client hanging */
    return check_answers(r);
}

int main(void)
{
    server_thread = pthread_self();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *t = getenv("YR_TORTURE_TRACE");
    trace_at = t ? strtoul(t, NULL, 10) : 0;
    static run_t r;
    unsigned long runs = 0, full = 0, partial = 0;
    for (nth = 1;; nth++) {
        CHECK(nth < 20000);
        int ok = run_once(&r);
        CHECK(__lsan_do_recoverable_leak_check == NULL || __lsan_do_recoverable_leak_check() == 0);
        if (!injected) {
            CHECK(ok == 3); /* every allocation was failed once; now all succeed */
            break;
        }
        runs++;
        if (ok == 3)
            full++;
        else
            partial++;
    }
    printf("http: %lu allocations, each failed once: %lu sessions still complete, %lu ended "
           "early with a 5xx or a closed connection, none hung\n",
           runs, full, partial);
    return 0;
}
