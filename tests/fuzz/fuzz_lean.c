/* libFuzzer target for the lean upstream client's response handling
 * (src/upstream/lean.c): the status line, headers, Content-Length and
 * chunked bodies, interim responses, keep-alive reuse with leftover bytes,
 * and pause/resume around every body piece.
 *
 * The client is driven through its public interface (upstream.h) against a
 * server that is a plain socket of this process on 127.0.0.1: each input
 * starts a call, the server accepts it, reads the request and writes the
 * input as the response in pieces whose sizes come from the input, running
 * the loop one turn between pieces so the client sees each as its own read.
 * Then the server closes and the loop runs until the call ended (on_done
 * exactly once is checked). data[0] picks behaviours:
 *
 *   0x01  on_data pauses on every other piece; the resume comes from an idle
 *         handle a turn later (the same bytes must come again)
 *   0x02  a second call follows on the same host, so a kept-alive connection
 *         (and whatever the first response left on it) is reused
 *   0x04  max_body 64: a larger Content-Length is refused before the body
 *   0x08  on_data aborts on the third piece
 *   0x10  HTTP/2 with prior knowledge (h2c): the input is the server's
 *         frames (SETTINGS, HEADERS, DATA, RST_STREAM, GOAWAY...) after the
 *         client's preface; with 0x02 the second call is the connection's
 *         next stream
 *
 * data[1] sets the piece sizes. Build and run with scripts/fuzz. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "upstream/upstream.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t fz_loop;
static yr_upstream_t *fz_up;
static int fz_listen = -1;
static char fz_url[64];
static uv_idle_t fz_idle;

typedef struct {
    yr_upstream_call_t *call;
    unsigned flags;
    size_t pieces;
    bool paused_this; /* the piece delivered last was paused once already */
    bool want_resume;
    int done;
    size_t got;
    volatile unsigned char sink;
} fz_call_t;

static fz_call_t *fz_cur;
static void fz_on_idle(uv_idle_t *h);

static int fz_on_head(yr_upstream_call_t *call, void *data)
{
    (void)data;
    /* every accessor must be safe right after the head */
    yr_str_t v = yr_upstream_header(call, "content-type");
    yr_str_t ra = yr_upstream_retry_after(call);
    yr_str_t ct = yr_upstream_content_type(call);
    fz_cur->sink ^= (unsigned char)(v.len + ra.len + ct.len + (size_t)yr_upstream_status(call));
    if (v.len > 0)
        fz_cur->sink ^= (unsigned char)v.ptr[v.len - 1];
    return 0;
}

static int fz_on_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    (void)call;
    fz_call_t *fc = data;
    for (size_t i = 0; i < n; i++) /* touch every byte: ASan sees stale pointers */
        fc->sink ^= (unsigned char)p[i];
    if ((fc->flags & 0x01) && !fc->paused_this && (fc->pieces & 1) == 0) {
        fc->paused_this = true;
        fc->want_resume = true;
        uv_idle_start(&fz_idle, fz_on_idle);
        return YR_UP_PAUSE;
    }
    fc->paused_this = false;
    fc->pieces++;
    fc->got += n;
    if ((fc->flags & 0x08) && fc->pieces == 3)
        return YR_UP_ABORT;
    return YR_UP_CONTINUE;
}

static void fz_on_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    (void)call;
    (void)err;
    fz_call_t *fc = data;
    if (fc->done++ != 0)
        abort(); /* on_done ran twice */
    fc->want_resume = false;
    const char *t = yr_upstream_error_text(call);
    fc->sink ^= (unsigned char)strlen(t);
}

static const yr_upstream_cbs_t fz_cbs = {fz_on_head, fz_on_data, fz_on_done};

static void fz_on_idle(uv_idle_t *h)
{
    uv_idle_stop(h);
    fz_call_t *fc = fz_cur;
    if (fc != NULL && fc->want_resume && fc->done == 0) {
        fc->want_resume = false;
        yr_upstream_resume(fc->call);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uv_loop_init(&fz_loop);
    if (yr_upstream_init(&fz_loop, &fz_up) != 0)
        abort();
    yr_upstream_set_engine(fz_up, YR_UP_ENGINE_LEAN);
    uv_idle_init(&fz_loop, &fz_idle);
    fz_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fz_listen < 0 || fcntl(fz_listen, F_SETFL, O_NONBLOCK) != 0 ||
        bind(fz_listen, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fz_listen, 64) != 0 || getsockname(fz_listen, (struct sockaddr *)&a, &len) != 0)
        abort();
    snprintf(fz_url, sizeof(fz_url), "http://127.0.0.1:%u/v1/x", (unsigned)ntohs(a.sin_port));
    return 0;
}

static void turn(void)
{
    uv_run(&fz_loop, UV_RUN_NOWAIT);
}

/* The call's connection: a new one when the client made one (it connects
 * inside yr_upstream_start, so on loopback it is in the backlog by now),
 * else the kept-alive one (peer). */
static int serve_accept(int peer)
{
    for (int i = 0; i < 50; i++) {
        int fd = accept4(fz_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (peer >= 0)
                close(peer);
            return fd;
        }
        if (peer >= 0)
            return peer;
        turn();
    }
    return -1;
}

/* Closes the server's end with a FIN, not a reset: what the client sent
 * meanwhile (an h2 SETTINGS ack, a WINDOW_UPDATE) is read first, or the
 * kernel would reset the connection and drop the response bytes the client
 * has not read yet. */
static void server_close(int fd)
{
    char b[4096];
    while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
        ;
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4; i++) {
        turn();
        while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
            ;
    }
    close(fd);
}

static void drain_request(int fd)
{
    char b[4096];
    for (int i = 0; i < 200; i++) {
        ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (r > 0 && memmem(b, (size_t)r, "\r\n\r\n", 4) != NULL)
            return;
        turn();
    }
}

/* One call; returns the server's socket (still open) for a second call. */
static int one_call(const uint8_t *resp, size_t n, unsigned flags, unsigned step, int peer,
                    bool close_after)
{
    fz_call_t fc = {.flags = flags};
    fz_cur = &fc;
    static const char body[] = "{\"model\":\"m\"}";
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    yr_upstream_req_t req = {
        .url = fz_url,
        .body = body,
        .body_len = sizeof(body) - 1,
        .headers = headers,
        .connect_timeout_ms = 2000,
        .timeout_ms = 3000,
        .max_body = (flags & 0x04) ? 64 : 0,
        .h2c = (flags & 0x10) != 0,
    };
    if (yr_upstream_start(fz_up, &req, &fz_cbs, &fc, &fc.call) != 0)
        abort();
    int fd = serve_accept(peer);
    if (fd >= 0) {
        drain_request(fd);
        size_t off = 0, k = 0;
        while (off < n && fc.done == 0) {
            size_t piece = 1 + ((step * (k + 1) * 7u) % 61u);
            if (piece > n - off)
                piece = n - off;
            ssize_t w = send(fd, resp + off, piece, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w <= 0)
                break;
            off += (size_t)w;
            k++;
            turn();
        }
        if (close_after) {
            server_close(fd);
            fd = -1;
        }
    }
    /* The response did not end by itself: the server's close ends it. */
    for (int i = 0; i < 2000 && fc.done == 0; i++) {
        if (fd >= 0 && i == 20) {
            server_close(fd);
            fd = -1;
        }
        /* a connection the call opens now (it resends after a dead
         * kept-alive one, or a refused h2 stream) is closed unanswered */
        int late = accept4(fz_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (late >= 0)
            server_close(late);
        turn();
    }
    if (fd >= 0 && fc.done == 0) {
        server_close(fd);
        fd = -1;
    }
    /* bounded: the call's own timeouts end it at the latest */
    while (fc.done == 0 && uv_run(&fz_loop, UV_RUN_ONCE) != 0)
        ;
    if (fc.done == 0)
        abort(); /* the call never ended */
    fz_cur = NULL;
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    unsigned step = data[1];
    const uint8_t *resp = data + 2;
    size_t n = size - 2;
    if (flags & 0x02) {
        size_t half = n / 2;
        int fd = one_call(resp, half, flags, step, -1, false);
        one_call(resp + half, n - half, flags, step, fd, true);
    } else {
        one_call(resp, n, flags, step, -1, true);
    }
    /* let closed handles and freed calls go before the next input */
    for (int i = 0; i < 4; i++)
        uv_run(&fz_loop, UV_RUN_NOWAIT);
    return 0;
}
