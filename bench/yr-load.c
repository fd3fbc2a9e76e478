/*
 * yr-load: the HTTP/1.1 load generator of yourouter's benchmark (bench/run).
 *
 * One thread, one libuv loop, keep-alive connections with TCP_NODELAY, at most
 * one request in flight per connection (no pipelining), http-parser for the
 * responses. Two ways to drive the load:
 *
 *   closed loop (-c N, no -R): N connections send as fast as the server
 *       answers; latency runs from the moment a request is written.
 *   open loop (-R RATE): request i is *scheduled* at t0 + i/RATE whether or
 *       not the server kept up, and its latency runs from that scheduled time
 *       (wrk2's correction for coordinated omission). When every connection
 *       is busy more are opened, up to -C; a request sent more than -L ms
 *       after its schedule counts as "late", one never sent as "unsent".
 *
 * Streaming (-s) records, per stream, the time to the first body byte and the
 * gap between successive reads that carried body (SSE) data. A stream is
 * "stalled" when one such gap exceeds the stall threshold (1 s) or it never
 * delivered `[DONE]` (cut, error, timeout, or still running at the end).
 *
 * Every run is bounded by -n requests and -d seconds (plus a grace period
 * for the requests in flight). Latency and TTFB samples are all stored
 * (bounded by -n) and sorted at the end; gap samples are stored up to a cap
 * and reservoir-sampled beyond it. The result is one JSON object on stdout.
 *
 * -p PID (repeatable) samples the VmRSS of those processes every 50 ms (max,
 * summed over the pids) and their utime+stime before and after the run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <http_parser.h>
#include <uv.h>

enum {
    MAX_HEADERS = 32,
    MAX_PIDS = 8,
    HEAD_CAP = 16384,          /* the request head template */
    READ_BUF = 65536,          /* one read buffer for the whole loop */
    SWEEP_MS = 20,             /* timeouts, stalls, RSS, deadlines */
    DEFAULT_CAP = 20000,       /* open loop: most connections */
    DEFAULT_CONNECTING = 256,  /* connects in flight at once */
};
#define GAP_SAMPLES_MAX ((size_t)32 * 1024 * 1024) /* 128 MiB of uint32 */
#define MAX_REQUESTS ((uint64_t)100 * 1000 * 1000)
#define NS_PER_S 1000000000.0

/* ---------------------------------------------------------------- samples */

/* Microsecond samples. Kept whole up to `max`; past it, reservoir sampling
 * (Vitter's algorithm R) keeps a uniform subset, so percentiles stay fair. */
typedef struct {
    uint32_t *v;
    size_t len, cap, max;
    uint64_t seen;
    uint64_t rng;
} samples_t;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void samples_add(samples_t *s, uint64_t ns)
{
    uint64_t us = ns / 1000;
    uint32_t v = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    s->seen++;
    if (s->len < s->max) {
        if (s->len == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 4096;
            if (ncap > s->max)
                ncap = s->max;
            uint32_t *nv = realloc(s->v, ncap * sizeof *nv);
            if (!nv) {
                fprintf(stderr, "yr-load: out of memory for samples\n");
                exit(1);
            }
            s->v = nv;
            s->cap = ncap;
        }
        s->v[s->len++] = v;
        return;
    }
    uint64_t j = splitmix64(&s->rng) % s->seen;
    if (j < s->max)
        s->v[j] = v;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static uint32_t pct(const samples_t *s, double q)
{
    if (s->len == 0)
        return 0;
    size_t rank = (size_t)ceil(q * (double)s->len);
    if (rank < 1)
        rank = 1;
    if (rank > s->len)
        rank = s->len;
    return s->v[rank - 1];
}

static void samples_print(const char *name, samples_t *s, bool comma)
{
    double sum = 0;
    if (s->len > 1)
        qsort(s->v, s->len, sizeof *s->v, cmp_u32);
    for (size_t i = 0; i < s->len; i++)
        sum += s->v[i];
    printf("\"%s\":{\"n\":%" PRIu64 ",\"kept\":%zu,\"mean\":%.1f,\"p50\":%" PRIu32
           ",\"p90\":%" PRIu32 ",\"p99\":%" PRIu32 ",\"p999\":%" PRIu32 ",\"max\":%" PRIu32 "}%s",
           name, s->seen, s->len, s->len ? sum / (double)s->len : 0.0, pct(s, 0.50),
           pct(s, 0.90), pct(s, 0.99), pct(s, 0.999), s->len ? s->v[s->len - 1] : 0,
           comma ? "," : "");
}

/* ------------------------------------------------------------ the options */

typedef struct {
    const char *url;
    char host[64];
    uint16_t port;
    char path[2048];
    const char *method;
    const char *body_file;
    const char *headers[MAX_HEADERS];
    int nheaders;
    uint64_t n;
    double duration_s, rate, timeout_s, grace_s, late_ms, stall_s;
    uint32_t conns, cap, max_connecting;
    bool stream, cap_set;
    int pids[MAX_PIDS];
    int npids;
} opts_t;

/* ---------------------------------------------------------- connections */

/* C_DRAINING: the response is in but libuv has not yet run the request's
 * write callback; the embedded uv_write_t cannot be reused before it has. */
typedef enum { C_CONNECTING, C_IDLE, C_BUSY, C_DRAINING, C_CLOSING } cstate_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    http_parser parser;
    cstate_t state;
    uint32_t slot;     /* index in g.slots */
    uint32_t idle_pos; /* index in g.idle, or UINT32_MAX */
    uint64_t sched_ns, sent_ns, last_data_ns;
    uint8_t done_match;    /* bytes of "[DONE]" matched so far */
    uint8_t content_match; /* bytes of "content":" matched so far */
    bool content_seen;
    bool done_seen, stalled, first_body, read_had_body, complete, writing;
    char clen[32];
    char nonce[24];
    uv_buf_t bufs[5];
} conn_t;

/* ------------------------------------------------------------ the state */

static struct {
    uv_loop_t *loop;
    opts_t o;
    struct sockaddr_in addr;
    char head[HEAD_CAP];
    size_t head_len;
    char *body;
    size_t body_len, nonce_at; /* nonce_at == SIZE_MAX: no NONCE in the body */
    bool open_loop;

    conn_t **slots;
    uint32_t *free_slots, nfree, slots_hi, nslots;
    conn_t **idle;
    uint32_t nidle;
    uint32_t open, connecting, inflight, max_open, max_inflight;

    uint64_t issued; /* requests written (or charged to a failed connect) */
    uint64_t t_start, t0, t_last, send_deadline, hard_deadline;
    double period_ns;
    bool stopping, finished;

    uv_timer_t sweep;
    uv_poll_t tick; /* a timerfd armed at the next scheduled send (open loop) */
    int tfd;
    bool tick_armed;
    uint64_t tick_ns;
    uint64_t sweeps;

    /* results */
    uint64_t ended, ok, non2xx, timeouts, resets, conn_errors, parse_errors, incomplete;
    uint64_t late, unsent, stalls, streams, bytes_in, max_lag_ns;
    uint64_t status_counts[600];
    samples_t lat, ttfb, ttfc, gap;

    /* the peer processes */
    uint64_t rss_start_kb, rss_max_kb, rss_end_kb, cpu_start_ticks, cpu_end_ticks;
    bool cpu_ok;
} g;

static char read_buf[READ_BUF];

static void dispatch(void);
static void conn_close(conn_t *c);

/* ---------------------------------------------------------------- /proc */

static bool read_small_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

static uint64_t peers_rss_kb(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < g.o.npids; i++) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/status", g.o.pids[i]);
        if (!read_small_file(path, buf, sizeof buf))
            continue;
        const char *p = strstr(buf, "VmRSS:");
        if (p)
            sum += strtoull(p + 6, NULL, 10);
    }
    return sum;
}

/* utime + stime in clock ticks, all threads of each pid. */
static bool peers_cpu_ticks(uint64_t *out)
{
    uint64_t sum = 0;
    for (int i = 0; i < g.o.npids; i++) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/stat", g.o.pids[i]);
        if (!read_small_file(path, buf, sizeof buf))
            return false;
        const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        if (!p)
            return false;
        p++;
        /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime(14) stime(15) */
        for (int field = 3; field < 14; field++) {
            p = strchr(p + 1, ' ');
            if (!p)
                return false;
        }
        char *end;
        uint64_t ut = strtoull(p + 1, &end, 10);
        uint64_t st = strtoull(end, NULL, 10);
        sum += ut + st;
    }
    *out = sum;
    return true;
}

/* ------------------------------------------------------------- requests */

static bool can_issue(uint64_t now)
{
    return !g.stopping && g.issued < g.o.n && now < g.send_deadline;
}

static void count_status(int status)
{
    if (status >= 100 && status < 600)
        g.status_counts[status]++;
}

/* One request ended (any outcome). Stream requests are judged for stalls. */
static void request_ended(conn_t *c)
{
    g.ended++;
    if (g.inflight)
        g.inflight--;
    g.t_last = uv_hrtime();
    if (g.o.stream) {
        g.streams++;
        if (c->stalled || !c->done_seen)
            g.stalls++;
    }
}

/* The request on `c` failed at the transport level (reset, EOF, timeout, bad
 * HTTP); the connection is closed. */
static void request_failed(conn_t *c, uint64_t *counter)
{
    (*counter)++;
    request_ended(c);
    conn_close(c);
}

static void idle_push(conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->writing = false;
    if (c->state == C_CLOSING) /* cancelled by uv_close */
        return;
    if (status < 0 && c->state == C_BUSY) {
        request_failed(c, &g.resets);
        dispatch();
        return;
    }
    if (c->state == C_DRAINING) {
        idle_push(c);
        dispatch();
    }
}

static void send_request(conn_t *c, uint64_t sched, uint64_t now)
{
    uint64_t seq = g.issued++;
    size_t nb = 0;
    c->bufs[nb++] = uv_buf_init(g.head, (unsigned)g.head_len);
    if (g.body) {
        size_t nonce_len = 0;
        if (g.nonce_at != SIZE_MAX)
            nonce_len = (size_t)snprintf(c->nonce, sizeof c->nonce, "%" PRIu64, seq);
        size_t total = g.body_len + nonce_len - (g.nonce_at != SIZE_MAX ? 5 : 0);
        int l = snprintf(c->clen, sizeof c->clen, "%zu\r\n\r\n", total);
        c->bufs[nb++] = uv_buf_init(c->clen, (unsigned)l);
        if (g.nonce_at == SIZE_MAX) {
            c->bufs[nb++] = uv_buf_init(g.body, (unsigned)g.body_len);
        } else {
            c->bufs[nb++] = uv_buf_init(g.body, (unsigned)g.nonce_at);
            c->bufs[nb++] = uv_buf_init(c->nonce, (unsigned)nonce_len);
            c->bufs[nb++] = uv_buf_init(g.body + g.nonce_at + 5,
                                        (unsigned)(g.body_len - g.nonce_at - 5));
        }
    }
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->sched_ns = sched;
    c->sent_ns = now;
    c->last_data_ns = 0;
    c->done_match = 0;
    c->content_match = 0;
    c->content_seen = false;
    c->done_seen = c->stalled = c->first_body = c->complete = false;
    c->state = C_BUSY;
    g.inflight++;
    if (g.inflight > g.max_inflight)
        g.max_inflight = g.inflight;
    uint64_t lag = now > sched ? now - sched : 0;
    if (lag > g.max_lag_ns)
        g.max_lag_ns = lag;
    if ((double)lag > g.o.late_ms * 1e6)
        g.late++;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, c->bufs, (unsigned)nb, on_write);
    if (rc < 0) {
        request_failed(c, &g.resets);
        return;
    }
    c->writing = true;
}

/* ---------------------------------------------------------- idle stack */

static void idle_push(conn_t *c)
{
    c->state = C_IDLE;
    c->idle_pos = g.nidle;
    g.idle[g.nidle++] = c;
}

static void idle_remove(conn_t *c)
{
    if (c->idle_pos == UINT32_MAX)
        return;
    conn_t *last = g.idle[--g.nidle];
    g.idle[c->idle_pos] = last;
    last->idle_pos = c->idle_pos;
    c->idle_pos = UINT32_MAX;
}

static conn_t *idle_pop(void)
{
    if (g.nidle == 0)
        return NULL;
    conn_t *c = g.idle[--g.nidle];
    c->idle_pos = UINT32_MAX;
    return c;
}

/* --------------------------------------------------------------- parsing */

/* Finds "[DONE]" across calls: the pattern has no repeated prefix, so one
 * counter of matched bytes suffices. */
static void match_done(conn_t *c, const char *at, size_t len)
{
    static const char pat[] = "[DONE]";
    const char *p = at, *end = at + len;
    while (p < end && c->done_match > 0) {
        if (*p == pat[c->done_match]) {
            p++;
            if (++c->done_match == 6) {
                c->done_seen = true;
                c->done_match = 0;
                return;
            }
        } else {
            c->done_match = 0;
        }
    }
    while (p < end) {
        const char *b = memchr(p, '[', (size_t)(end - p));
        if (!b)
            return;
        size_t avail = (size_t)(end - b);
        size_t k = 1;
        while (k < 6 && k < avail && b[k] == pat[k])
            k++;
        if (k == 6) {
            c->done_seen = true;
            return;
        }
        if (k == avail) { /* a prefix at the end of this piece */
            c->done_match = (uint8_t)k;
            return;
        }
        p = b + 1;
    }
}

static uint64_t g_read_now; /* uv_hrtime() of the read being parsed */

/* Time to the first content: the first `"content":"` followed by anything
 * but `"` (OpenAI's opening role chunk carries `"content":""`, which is
 * not content). Only the quote repeats inside the pattern, so on a mismatch
 * the match restarts at 1 if the byte is a quote, else at 0. */
static void match_content(conn_t *c, const char *at, size_t len)
{
    static const char pat[] = "\"content\":\"";
    enum { PAT_LEN = sizeof pat - 1 };
    for (size_t i = 0; i < len; i++) {
        char ch = at[i];
        if (c->content_match == PAT_LEN) {
            if (ch != '"') {
                c->content_seen = true;
                samples_add(&g.ttfc, g_read_now - c->sched_ns);
                return;
            }
            c->content_match = 0; /* an empty string */
            continue;
        }
        if (ch == pat[c->content_match])
            c->content_match++;
        else
            c->content_match = ch == '"' ? 1 : 0;
    }
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (!g.o.stream || len == 0)
        return 0;
    if (!c->read_had_body) {
        c->read_had_body = true;
        uint64_t now = g_read_now;
        if (!c->first_body) {
            c->first_body = true;
            if (p->status_code >= 200 && p->status_code < 300)
                samples_add(&g.ttfb, now - c->sched_ns);
        } else {
            uint64_t gap = now - c->last_data_ns;
            samples_add(&g.gap, gap);
            if ((double)gap > g.o.stall_s * NS_PER_S)
                c->stalled = true;
        }
        c->last_data_ns = now;
    }
    if (!c->content_seen && p->status_code >= 200 && p->status_code < 300)
        match_content(c, at, len);
    match_done(c, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->complete = true;
    http_parser_pause(p, 1); /* one response per request; never pipelined */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void request_done(conn_t *c, uint64_t now, bool eof)
{
    int status = c->parser.status_code;
    bool keep = !eof && http_should_keep_alive(&c->parser);
    if (status >= 200 && status < 300) {
        if (g.o.stream && !c->done_seen) {
            g.incomplete++;
        } else {
            g.ok++;
            samples_add(&g.lat, now - c->sched_ns);
        }
    } else {
        g.non2xx++;
        count_status(status);
    }
    request_ended(c);
    if (!keep) {
        conn_close(c);
        return;
    }
    if (c->writing)
        c->state = C_DRAINING; /* on_write makes it idle */
    else
        idle_push(c);
}

/* ------------------------------------------------------------ libuv I/O */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread == 0 || c->state == C_CLOSING)
        return;
    if (nread < 0) {
        if (c->state == C_BUSY) {
            /* a close-delimited body ends at EOF */
            if (nread == UV_EOF) {
                g_read_now = uv_hrtime();
                http_parser_execute(&c->parser, &parser_settings, NULL, 0);
                if (c->complete) {
                    request_done(c, g_read_now, true);
                    dispatch();
                    return;
                }
            }
            request_failed(c, &g.resets);
        } else {
            conn_close(c); /* the server closed an idle connection */
        }
        dispatch();
        return;
    }
    g.bytes_in += (uint64_t)nread;
    if (c->state != C_BUSY) { /* bytes nobody asked for */
        g.parse_errors++;
        conn_close(c);
        dispatch();
        return;
    }
    g_read_now = uv_hrtime();
    c->read_had_body = false;
    size_t used = http_parser_execute(&c->parser, &parser_settings, buf->base, (size_t)nread);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
    if (c->complete) {
        request_done(c, g_read_now, false);
        if (used < (size_t)nread && (c->state == C_IDLE || c->state == C_DRAINING)) { /* extra bytes */
            idle_remove(c);
            g.parse_errors++;
            conn_close(c);
        }
    } else if (err != HPE_OK) {
        request_failed(c, &g.parse_errors);
    }
    dispatch();
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    g.free_slots[g.nfree++] = c->slot;
    g.slots[c->slot] = NULL;
    free(c);
    dispatch();
}

static void conn_close(conn_t *c)
{
    if (c->state == C_CLOSING || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->state == C_IDLE)
        idle_remove(c);
    if (c->state == C_CONNECTING && g.connecting)
        g.connecting--;
    c->state = C_CLOSING;
    g.open--;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (c->state == C_CLOSING)
        return;
    g.connecting--;
    c->state = C_IDLE; /* not in the idle stack yet */
    if (status < 0) {
        g.conn_errors++;
        if (!g.open_loop && g.issued < g.o.n) {
            g.issued++; /* a closed loop charges the failed connect to the budget */
            g.ended++;
        }
        c->state = C_CLOSING;
        g.open--;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        g.conn_errors++;
        c->state = C_CLOSING;
        g.open--;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    idle_push(c);
    dispatch();
}

static bool conn_open(void)
{
    if (g.nfree == 0)
        return false;
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return false;
    int rc = uv_tcp_init(g.loop, &c->tcp);
    if (rc < 0) {
        free(c);
        return false;
    }
    c->slot = g.free_slots[--g.nfree];
    g.slots[c->slot] = c;
    if (c->slot >= g.slots_hi)
        g.slots_hi = c->slot + 1;
    c->tcp.data = c;
    c->connect_req.data = c;
    c->write_req.data = c;
    c->idle_pos = UINT32_MAX;
    c->state = C_CONNECTING;
    g.open++;
    g.connecting++;
    if (g.open > g.max_open)
        g.max_open = g.open;
    uv_tcp_nodelay(&c->tcp, 1);
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&g.addr, on_connect);
    if (rc < 0) {
        fprintf(stderr, "yr-load: connect: %s\n", uv_strerror(rc));
        g.conn_errors++;
        conn_close(c);
        return false;
    }
    return true;
}

/* --------------------------------------------------------- scheduling */

static uint64_t open_loop_due(uint64_t now)
{
    if (now < g.t0)
        return 0;
    double due = floor((double)(now - g.t0) / g.period_ns) + 1.0;
    uint64_t limit = g.o.n;
    return due >= (double)limit ? limit : (uint64_t)due;
}

static void finish(void);

static void on_tick(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
    uint64_t expirations;
    if (read(g.tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        fprintf(stderr, "yr-load: timerfd: %s\n", strerror(errno));
    g.tick_armed = false;
    dispatch();
}

/* Wakes the loop at `at` (uv_hrtime's clock, CLOCK_MONOTONIC), to the
 * microsecond: libuv's own timers tick in milliseconds, which would add up
 * to 1 ms of scheduling error to every open-loop latency. */
static void tick_at(uint64_t at)
{
    struct itimerspec its = { 0 };
    its.it_value.tv_sec = (time_t)(at / 1000000000u);
    its.it_value.tv_nsec = (long)(at % 1000000000u);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    if (timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        g.tick_armed = true;
}

static void dispatch_closed(uint64_t now)
{
    conn_t *c;
    while ((c = idle_pop()) != NULL) {
        if (can_issue(now)) {
            send_request(c, now, now);
        } else {
            c->idle_pos = UINT32_MAX;
            c->state = C_IDLE;
            conn_close(c);
        }
    }
    while (g.open < g.o.conns && g.connecting < g.o.max_connecting &&
           g.issued + g.connecting < g.o.n && can_issue(now)) {
        if (!conn_open())
            break;
    }
    if (!can_issue(now) && g.inflight == 0 && g.connecting == 0)
        finish();
}

static void dispatch_open(uint64_t now)
{
    if (g.t0 == 0) { /* warming up: wait for the initial connections */
        if (g.connecting > 0)
            return;
        g.t0 = now;
        g.send_deadline = g.t0 + (uint64_t)(g.o.duration_s * NS_PER_S);
        g.hard_deadline = g.send_deadline + (uint64_t)(g.o.grace_s * NS_PER_S);
    }
    uint64_t due = can_issue(now) ? open_loop_due(now) : g.issued;
    conn_t *c;
    while (g.issued < due && (c = idle_pop()) != NULL) {
        uint64_t sched = g.t0 + (uint64_t)((double)g.issued * g.period_ns);
        send_request(c, sched, now);
    }
    if (g.issued < due) {
        uint64_t want = due - g.issued;
        while (g.connecting < want && g.connecting < g.o.max_connecting && g.open < g.o.cap) {
            if (!conn_open())
                break;
        }
    }
    bool more = can_issue(now) && g.issued < g.o.n;
    if (more && g.issued >= due) {
        uint64_t next = g.t0 + (uint64_t)((double)g.issued * g.period_ns);
        if (!g.tick_armed || next != g.tick_ns) {
            g.tick_ns = next;
            tick_at(next);
        }
    }
    if (!more) {
        while ((c = idle_pop()) != NULL) {
            c->state = C_IDLE;
            conn_close(c);
        }
        if (g.inflight == 0)
            finish();
    }
}

static void dispatch(void)
{
    if (g.finished)
        return;
    uint64_t now = uv_hrtime();
    if (g.open_loop)
        dispatch_open(now);
    else
        dispatch_closed(now);
}

/* ---------------------------------------------------------- the sweep */

static void abort_inflight(void)
{
    for (uint32_t i = 0; i < g.slots_hi; i++) {
        conn_t *c = g.slots[i];
        if (c && c->state == C_BUSY)
            request_failed(c, &g.timeouts);
    }
}

static void on_sweep(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_hrtime();
    uint64_t timeout = (uint64_t)(g.o.timeout_s * NS_PER_S);
    uint64_t stall = (uint64_t)(g.o.stall_s * NS_PER_S);
    for (uint32_t i = 0; i < g.slots_hi; i++) {
        conn_t *c = g.slots[i];
        if (!c || c->state != C_BUSY)
            continue;
        if (now - c->sent_ns > timeout) {
            request_failed(c, &g.timeouts);
            continue;
        }
        /* a stream silent for longer than the threshold is stalled already */
        uint64_t since = c->last_data_ns ? c->last_data_ns : c->sent_ns;
        if (g.o.stream && now - since > stall)
            c->stalled = true;
    }
    if (g.o.npids > 0) {
        uint64_t rss = peers_rss_kb();
        if (rss > g.rss_max_kb)
            g.rss_max_kb = rss;
    }
    if (g.send_deadline && now >= g.send_deadline && !g.stopping) {
        g.stopping = true;
    }
    if (g.hard_deadline && now >= g.hard_deadline) {
        abort_inflight();
        finish();
        return;
    }
    dispatch();
}

/* Closes what is left at the end. Connections go through conn_close so that
 * the callbacks libuv still runs for them (a cancelled write or connect) see
 * C_CLOSING and do nothing. */
static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP)
        conn_close(h->data);
    else
        uv_close(h, NULL);
}

static void finish(void)
{
    if (g.finished)
        return;
    g.finished = true;
    if (g.open_loop && g.t0) {
        uint64_t due = open_loop_due(g.send_deadline);
        g.unsent = due > g.issued ? due - g.issued : 0;
    }
    if (!g.t_last)
        g.t_last = uv_hrtime();
    if (g.open_loop)
        uv_poll_stop(&g.tick);
    uv_timer_stop(&g.sweep);
    uv_walk(g.loop, close_walk, NULL);
}

/* ------------------------------------------------------------ setup */

static void usage(void)
{
    fprintf(stderr,
            "usage: yr-load -u http://IP:PORT/PATH [options]\n"
            "  -c N      connections (closed loop), or connections opened before an open loop (1)\n"
            "  -R RATE   open loop at RATE requests/s (latency from the scheduled time)\n"
            "  -C N      open loop: most connections (%d)\n"
            "  -n N      most requests (1000)\n"
            "  -d SECS   stop sending after SECS (60)\n"
            "  -g SECS   grace for requests in flight after -d (5)\n"
            "  -t SECS   request timeout (10)\n"
            "  -b FILE   request body (POST); the first literal NONCE becomes a counter\n"
            "  -m METHOD (POST with -b, else GET)\n"
            "  -H 'Name: value'  extra request header (repeatable)\n"
            "  -s        streaming: TTFB, inter-read gaps, stalls, [DONE]\n"
            "  -S SECS   a stream gap above this is a stall (1)\n"
            "  -L MS     open loop: a send later than this after its schedule is late (10)\n"
            "  -k N      connects in flight at once (%d)\n"
            "  -p PID    sample RSS and CPU of PID (repeatable)\n",
            DEFAULT_CAP, DEFAULT_CONNECTING);
    exit(2);
}

static double num_arg(const char *s, double lo, double hi, char opt)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "yr-load: -%c: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        exit(2);
    }
    return v;
}

static void parse_url(const char *url)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        fprintf(stderr, "yr-load: only http://IPv4:PORT/path URLs\n");
        exit(2);
    }
    p += 7;
    const char *colon = strchr(p, ':');
    const char *slash = strchr(p, '/');
    if (!colon || (slash && slash < colon) || (size_t)(colon - p) >= sizeof g.o.host) {
        fprintf(stderr, "yr-load: the URL needs IP:PORT\n");
        exit(2);
    }
    memcpy(g.o.host, p, (size_t)(colon - p));
    g.o.host[colon - p] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (port == 0 || port > 65535 || (*end && *end != '/')) {
        fprintf(stderr, "yr-load: bad port in %s\n", url);
        exit(2);
    }
    g.o.port = (uint16_t)port;
    snprintf(g.o.path, sizeof g.o.path, "%s", *end ? end : "/");
    if (uv_ip4_addr(g.o.host, g.o.port, &g.addr) != 0) {
        fprintf(stderr, "yr-load: '%s' is not an IPv4 address\n", g.o.host);
        exit(2);
    }
}

static void load_body(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "yr-load: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) {
            fprintf(stderr, "yr-load: out of memory\n");
            exit(1);
        }
        size_t n = fread(b + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        if (cap >= ((size_t)64 << 20)) {
            fprintf(stderr, "yr-load: %s: over 64 MiB\n", path);
            exit(2);
        }
        cap *= 2;
        b = realloc(b, cap);
    }
    fclose(f);
    g.body = b;
    g.body_len = len;
    g.nonce_at = SIZE_MAX;
    char *at = memmem(b, len, "NONCE", 5);
    if (at)
        g.nonce_at = (size_t)(at - b);
}

static void build_head(void)
{
    const char *method = g.o.method ? g.o.method : (g.body ? "POST" : "GET");
    bool has_ct = false;
    int n = snprintf(g.head, sizeof g.head, "%s %s HTTP/1.1\r\nHost: %s:%u\r\n", method, g.o.path,
                     g.o.host, g.o.port);
    size_t len = (size_t)n;
    for (int i = 0; i < g.o.nheaders; i++) {
        if (strncasecmp(g.o.headers[i], "content-type:", 13) == 0)
            has_ct = true;
        n = snprintf(g.head + len, sizeof g.head - len, "%s\r\n", g.o.headers[i]);
        if (n < 0 || (size_t)n >= sizeof g.head - len)
            goto too_long;
        len += (size_t)n;
    }
    if (g.body) {
        n = snprintf(g.head + len, sizeof g.head - len, "%sContent-Length: ",
                     has_ct ? "" : "Content-Type: application/json\r\n");
    } else {
        n = snprintf(g.head + len, sizeof g.head - len, "\r\n");
    }
    if (n < 0 || (size_t)n >= sizeof g.head - len)
        goto too_long;
    g.head_len = len + (size_t)n;
    return;
too_long:
    fprintf(stderr, "yr-load: request head over %d bytes\n", HEAD_CAP);
    exit(2);
}

/* Raises RLIMIT_NOFILE to `want` if it may; returns the limit in force. */
static uint64_t raise_nofile(uint64_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur >= want)
        return rl.rlim_cur;
    if (rl.rlim_max < want) {
        struct rlimit hard = { want, want };
        if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
            return want;
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    return rl.rlim_cur;
}

static void parse_args(int argc, char **argv)
{
    opts_t *o = &g.o;
    o->n = 1000;
    o->conns = 1;
    o->cap = DEFAULT_CAP;
    o->max_connecting = DEFAULT_CONNECTING;
    o->duration_s = 60;
    o->grace_s = 5;
    o->timeout_s = 10;
    o->late_ms = 10;
    o->stall_s = 1;
    int ch;
    while ((ch = getopt(argc, argv, "u:c:R:C:n:d:g:t:b:m:H:sS:L:k:p:h")) != -1) {
        switch (ch) {
        case 'u': o->url = optarg; break;
        case 'c': o->conns = (uint32_t)num_arg(optarg, 0, 1000000, 'c'); break;
        case 'R': o->rate = num_arg(optarg, 0.001, 10000000, 'R'); break;
        case 'C':
            o->cap = (uint32_t)num_arg(optarg, 1, 1000000, 'C');
            o->cap_set = true;
            break;
        case 'n': o->n = (uint64_t)num_arg(optarg, 1, (double)MAX_REQUESTS, 'n'); break;
        case 'd': o->duration_s = num_arg(optarg, 0.001, 86400, 'd'); break;
        case 'g': o->grace_s = num_arg(optarg, 0, 3600, 'g'); break;
        case 't': o->timeout_s = num_arg(optarg, 0.001, 3600, 't'); break;
        case 'b': o->body_file = optarg; break;
        case 'm': o->method = optarg; break;
        case 'H':
            if (o->nheaders == MAX_HEADERS || !strchr(optarg, ':')) {
                fprintf(stderr, "yr-load: -H 'Name: value', at most %d\n", MAX_HEADERS);
                exit(2);
            }
            o->headers[o->nheaders++] = optarg;
            break;
        case 's': o->stream = true; break;
        case 'S': o->stall_s = num_arg(optarg, 0.001, 3600, 'S'); break;
        case 'L': o->late_ms = num_arg(optarg, 0, 3600000, 'L'); break;
        case 'k': o->max_connecting = (uint32_t)num_arg(optarg, 1, 100000, 'k'); break;
        case 'p':
            if (o->npids == MAX_PIDS) {
                fprintf(stderr, "yr-load: at most %d -p\n", MAX_PIDS);
                exit(2);
            }
            o->pids[o->npids++] = (int)num_arg(optarg, 1, INT_MAX, 'p');
            break;
        default: usage();
        }
    }
    if (!o->url || optind != argc)
        usage();
    g.open_loop = o->rate > 0;
    if (!g.open_loop && o->conns == 0)
        o->conns = 1;
    if (!g.open_loop)
        o->cap = o->conns;
    if (o->conns > o->cap)
        o->cap = o->conns;
}

static void print_results(void)
{
    double dur = (double)(g.t_last - (g.t0 ? g.t0 : g.t_start)) / NS_PER_S;
    if (dur <= 0)
        dur = 1e-9;
    uint64_t errors = g.non2xx + g.timeouts + g.resets + g.conn_errors + g.parse_errors +
                      g.incomplete;
    printf("{\"url\":\"%s\",\"mode\":\"%s\",\"stream\":%s,\"connections\":%" PRIu32
           ",\"rate\":%.3f,\"n\":%" PRIu64 ",",
           g.o.url, g.open_loop ? "open" : "closed", g.o.stream ? "true" : "false", g.o.conns,
           g.o.rate, g.o.n);
    printf("\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"non2xx\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"resets\":%" PRIu64
           ",\"conn_errors\":%" PRIu64 ",\"parse_errors\":%" PRIu64 ",\"incomplete\":%" PRIu64 ",",
           g.ended, g.ok, errors, g.non2xx, g.timeouts, g.resets, g.conn_errors, g.parse_errors,
           g.incomplete);
    printf("\"status\":{");
    bool first = true;
    for (int s = 100; s < 600; s++) {
        if (g.status_counts[s]) {
            printf("%s\"%d\":%" PRIu64, first ? "" : ",", s, g.status_counts[s]);
            first = false;
        }
    }
    printf("},\"late\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"max_send_lag_us\":%" PRIu64
           ",\"max_conns\":%" PRIu32 ",\"max_inflight\":%" PRIu32 ",",
           g.late, g.unsent, g.max_lag_ns / 1000, g.max_open, g.max_inflight);
    printf("\"duration_s\":%.6f,\"rps\":%.1f,\"ok_rps\":%.1f,\"bytes_in\":%" PRIu64 ",", dur,
           (double)g.ended / dur, (double)g.ok / dur, g.bytes_in);
    samples_print("latency_us", &g.lat, true);
    if (g.o.stream) {
        samples_print("ttfb_us", &g.ttfb, true);
        samples_print("ttfc_us", &g.ttfc, true);
        samples_print("gap_us", &g.gap, true);
        printf("\"streams\":%" PRIu64 ",\"stalls\":%" PRIu64 ",", g.streams, g.stalls);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\"load_cpu_us\":%" PRIu64,
           (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
               (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec);
    if (g.o.npids > 0) {
        printf(",\"peer\":{\"pids\":[");
        for (int i = 0; i < g.o.npids; i++)
            printf("%s%d", i ? "," : "", g.o.pids[i]);
        long hz = sysconf(_SC_CLK_TCK);
        double cpu_us = g.cpu_ok ? (double)(g.cpu_end_ticks - g.cpu_start_ticks) * 1e6 /
                                       (double)(hz > 0 ? hz : 100)
                                 : -1;
        printf("],\"rss_start_kb\":%" PRIu64 ",\"rss_max_kb\":%" PRIu64 ",\"rss_end_kb\":%" PRIu64
               ",\"cpu_us\":%.0f,\"cpu_us_per_req\":%.2f}",
               g.rss_start_kb, g.rss_max_kb, g.rss_end_kb, cpu_us,
               g.cpu_ok && g.ended ? cpu_us / (double)g.ended : -1.0);
    }
    printf("}\n");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a server that closed is an EPIPE on write, not a kill */
    parse_args(argc, argv);
    parse_url(g.o.url);
    if (g.o.body_file)
        load_body(g.o.body_file);
    build_head();
    uint64_t nofile = raise_nofile((uint64_t)g.o.cap + 64);
    if (nofile < (uint64_t)g.o.cap + 64) {
        if (g.o.cap_set || !g.open_loop)
            fprintf(stderr, "yr-load: RLIMIT_NOFILE is %llu: at most %llu connections\n",
                    (unsigned long long)nofile, (unsigned long long)(nofile > 64 ? nofile - 64 : 1));
        g.o.cap = nofile > 64 ? (uint32_t)(nofile - 64) : 1;
        if (g.o.conns > g.o.cap)
            g.o.conns = g.o.cap;
    }

    g.nslots = g.o.cap;
    g.slots = calloc(g.nslots, sizeof *g.slots);
    g.free_slots = malloc(g.nslots * sizeof *g.free_slots);
    g.idle = malloc(g.nslots * sizeof *g.idle);
    if (!g.slots || !g.free_slots || !g.idle) {
        fprintf(stderr, "yr-load: out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < g.nslots; i++)
        g.free_slots[i] = g.nslots - 1 - i; /* pop low slots first */
    g.nfree = g.nslots;

    size_t nmax = (size_t)g.o.n;
    g.lat.max = nmax;
    g.ttfb.max = nmax;
    g.ttfc.max = nmax;
    g.ttfc.rng = 4;
    g.gap.max = GAP_SAMPLES_MAX;
    g.lat.rng = 1;
    g.ttfb.rng = 2;
    g.gap.rng = 3;
    if (g.open_loop)
        g.period_ns = NS_PER_S / g.o.rate;

    g.loop = uv_default_loop();
    if (g.open_loop) {
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (g.tfd < 0 || uv_poll_init(g.loop, &g.tick, g.tfd) < 0 ||
            uv_poll_start(&g.tick, UV_READABLE, on_tick) < 0) {
            fprintf(stderr, "yr-load: timerfd: %s\n", strerror(errno));
            return 1;
        }
    }
    uv_timer_init(g.loop, &g.sweep);

    if (g.o.npids > 0) {
        g.rss_start_kb = peers_rss_kb();
        g.rss_max_kb = g.rss_start_kb;
        g.cpu_ok = peers_cpu_ticks(&g.cpu_start_ticks);
    }
    g.t_start = uv_hrtime();
    if (!g.open_loop) {
        g.send_deadline = g.t_start + (uint64_t)(g.o.duration_s * NS_PER_S);
        g.hard_deadline = g.send_deadline + (uint64_t)(g.o.grace_s * NS_PER_S);
    } else {
        /* warm-up connections; the schedule starts once they are up */
        g.send_deadline = UINT64_MAX;
        for (uint32_t i = 0; i < g.o.conns && i < g.o.max_connecting; i++)
            conn_open();
    }
    uv_timer_start(&g.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    dispatch();
    uv_run(g.loop, UV_RUN_DEFAULT);

    if (g.o.npids > 0) {
        g.rss_end_kb = peers_rss_kb();
        uint64_t end;
        g.cpu_ok = g.cpu_ok && peers_cpu_ticks(&end);
        g.cpu_end_ticks = g.cpu_ok ? end : 0;
    }
    print_results();
    uv_loop_close(g.loop);
    return 0;
}
