/* The lean upstream client: HTTP/1.1 over a non-blocking socket watched by
 * one uv_poll for the connection's whole life, http-parser for the response,
 * OpenSSL on the descriptor for TLS, and HTTP/2 (nghttp2) to a host that
 * picks h2 in ALPN (the "HTTP/2" section). It carries every call libcurl is not
 * needed for (see yr_upstream_set_engine); the interface and its promises
 * are upstream.h's, unchanged.
 *
 * Why not libcurl for these: its fixed per-transfer work (URL parsing, the
 * connection-cache walk, the liveness poll of a reused connection, option
 * setting) was half of the loop thread's instructions per proxied request,
 * and its easy handle and receive buffer ~9.5 KB per stream (docs/engine.md).
 *
 * Ownership and lifetimes:
 * - yr_lean_t (one per worker, lazily) owns the hosts, every connection and
 *   the one receive buffer every read of the worker goes through (a call
 *   needs a buffer of its own only while its owner keeps it paused).
 * - A host (scheme, name, port, CA file) owns its TLS context, its last TLS
 *   session (resumption), its resolved addresses (cached 60 s, as curl does)
 *   and its idle connections (LIFO, so the warmest is reused).
 * - A connection belongs to the worker; while it carries a call, conn->call
 *   and call->lean->conn point at each other. A response read to its end on
 *   a keep-alive connection returns the connection to its host's idle list
 *   before on_done runs; anything else closes it.
 * - A call (yr_upstream_call_t + its lean part + the request head, one
 *   allocation) ends exactly once, in finish() or yr_lean_cancel(); it is
 *   freed when its timer handle has closed.
 * - Callbacks of the owner never run inside http-parser: the parser
 *   callbacks record what happened and feed() acts after the parser returns.
 *
 * An idle connection stays watched for reading: anything it says (the server
 * closing it, most often) closes it, so a reused connection needs no
 * liveness check. One that died unnoticed (the FIN and our request crossed)
 * is detected by the request getting no byte back, and the request is sent
 * again once on a new connection, as curl does. */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <nghttp2/nghttp2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "upstream/upstream_int.h"

#define RBUF_SIZE (64 * 1024)
#define MAX_ADDRS 8
#define DNS_TTL_MS 60000          /* curl's default DNS cache timeout */
#define IDLE_MAX_AGE_MS 118000    /* curl's default CURLOPT_MAXAGE_CONN */
#define IDLE_PER_HOST 1024        /* kept-alive connections per host */
#define HEAD_MAX (100 * 1024)     /* response head bytes kept (curl's limit) */
#define TLS_COPY_MAX (256 * 1024) /* a TLS request body up to this goes out in the head's write */
#define H2_WBUF (32 * 1024)        /* HTTP/2 frames gathered for one write */
#define H2_STREAM_WINDOW 65535     /* bytes a stream may have in flight: a paused one's bound */
#define H2_CONN_WINDOW (16 << 20)  /* so paused streams do not stall their neighbours */
#define H2_STREAMS_MAX 256         /* streams per connection, whatever the server allows */
#define H2_WAIT_MAX 100            /* calls that wait for a connection still shaking hands */

typedef struct lean_host lean_host_t;
typedef struct lean_conn lean_conn_t;
typedef struct yr_lean_call lean_call_t;

typedef struct yr_lean {
    yr_upstream_t *up;
    lean_host_t *hosts;
    lean_conn_t *conns; /* every open connection (all list) */
    /* calls whose resume (or a failure found while starting) runs on the
     * next loop turn, oldest first */
    lean_call_t *resumes, *resumes_tail;
    uv_idle_t resume_idle;
    bool idle_inited;
    nghttp2_session_callbacks *h2cbs; /* lazily, with the first HTTP/2 connection */
    nghttp2_option *h2opt;
    char rbuf[RBUF_SIZE];
    char wbuf[H2_WBUF];
} yr_lean_t;

struct lean_host {
    lean_host_t *next;
    bool tls;
    bool ip; /* the name is an address literal: no DNS, no SNI, IP SAN check */
    uint16_t port;
    char *name;    /* host name as in the URL (IPv6 without brackets) */
    char *ca_file; /* NULL: the system store */
    char *host_hdr; /* "Host: name[:port]\r\n" */
    size_t host_hdr_len;
    SSL_CTX *ctx;
    SSL_SESSION *session;
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t addr_lens[MAX_ADDRS];
    size_t naddrs;
    uint64_t addrs_until; /* loop time the cached addresses expire */
    lean_conn_t *idle;    /* LIFO of idle connections (conn->next_idle) */
    size_t nidle;
    bool h2_ok;           /* https: h2 offered in ALPN */
    bool h2c;             /* http: HTTP/2 with prior knowledge */
    int proto;            /* what the host answered ALPN with: 0 not yet, 1 HTTP/1.1, 2 h2 */
    lean_conn_t *h2conns; /* HTTP/2 connections, and the one shaking hands (prev_h2/next_h2) */
};

enum conn_state { C_CONNECTING, C_HANDSHAKE, C_READY };

struct lean_conn {
    uv_poll_t poll;
    yr_lean_t *l;
    int fd;
    enum conn_state state;
    int events; /* what the poll is started with */
    lean_host_t *host;
    SSL *ssl;
    yr_upstream_call_t *call; /* NULL while idle */
    lean_conn_t *next_idle;
    lean_conn_t *prev_all, *next_all;
    uint64_t idle_since;
    http_parser parser;
    bool closing;
    bool idle;
    bool read_wants_write; /* SSL_read needs the socket writable to go on */
    /* HTTP/2 (h2 != NULL): the calls are streams (lc->prev_link/next_link);
     * conn->call stays NULL. A connection still connecting to a host that
     * may speak h2 is a probe: calls wait on it instead of opening their own */
    nghttp2_session *h2;
    bool probe, in_h2, goaway, on_list;
    lean_conn_t *prev_h2, *next_h2;
    lean_call_t *streams;  /* attached calls */
    size_t nstreams;
    lean_call_t *waiters; /* calls waiting for the probe (lc->next_link) */
    size_t nwait;
    lean_call_t *ended;   /* calls a frame ended, finished after nghttp2 returns */
    char *wpend;          /* frames the socket did not take yet */
    size_t wpend_len, wpend_off;
    uint64_t reads;       /* reads that brought bytes (h2: did the server say anything since) */
};

struct yr_lean_call {
    lean_conn_t *conn;
    lean_host_t *host;
    struct lean_resolve *resolving;
    const char *path; /* into the head */
    const char *body;
    size_t body_len;
    const char *head; /* request head (and, on TLS, a copy of a small body) */
    size_t head_len;
    size_t wlen; /* bytes to send: head_len (+ body_len unless copied) */
    size_t woff; /* bytes sent */
    bool body_in_head;
    size_t addr_i; /* the address being tried */
    uint64_t connect_until, first_until, total_until; /* loop times, 0 = none */
    uint64_t attempt_until; /* this address's share of the connect budget, 0 = none */
    uint32_t connect_ms, total_ms;
    uint64_t max_body;
    uint64_t received; /* body bytes delivered */
    /* the response head: "name\0value\0" pairs */
    char *hdrs;
    size_t hdrs_len, hdrs_cap;
    bool in_value;
    bool got_bytes; /* the current connection answered with something */
    bool reused;    /* the request went out on a kept-alive connection */
    bool retried;   /* it was sent again after a dead kept-alive connection */
    bool complete;  /* the final response was read to its end */
    bool keep;      /* ... and the connection may carry another */
    enum yr_up_error err; /* set by a parser callback: finish with it */
    bool failed;
    /* paused: body bytes to hand over again, then raw bytes to parse */
    char *pend;
    size_t pend_body, pend_raw;
    bool resume_queued;
    bool starting;  /* inside yr_lean_try_start: the owner has no call yet */
    bool deferred;  /* it failed while starting: finish on the next turn */
    enum yr_up_error deferred_err;
    lean_call_t *prev_resume, *next_resume;
    yr_upstream_call_t *call;
    /* HTTP/2: the call is a stream of lc->conn (sid > 0 while it is open),
     * or waits for a probe (waiting) */
    bool h2, waiting, reconnect, end_queued, refused;
    int32_t sid;
    enum yr_up_error end_err;
    size_t hdr_only; /* bytes of the head without a copied body */
    size_t body_off; /* body bytes given to nghttp2 */
    size_t pend_cap;
    uint64_t reads_at; /* conn->reads when the request was submitted */
    lean_call_t *prev_link, *next_link, *next_ended;
};

struct lean_resolve {
    uv_getaddrinfo_t req;
    yr_upstream_call_t *call; /* NULL once the call ended */
};

static const http_parser_settings parser_settings;

static void conn_close(lean_conn_t *c);
static void idle_event(lean_conn_t *c);
static void call_connect(yr_upstream_call_t *call);
static void connect_next(yr_upstream_call_t *call, int last_errno);
static void conn_send(lean_conn_t *c);
static int call_wants(const lean_conn_t *c);
static void on_conn_poll(uv_poll_t *h, int status, int events);
static bool h2_join(yr_upstream_call_t *call);
static void h2_detach(yr_upstream_call_t *call);
static void h2_start(lean_conn_t *c);
static void h2_poll(lean_conn_t *c, int status, int events);
static void h2_resume(yr_upstream_call_t *call);
static void h2_unlink(lean_conn_t *c);
static void h2_requeue_waiters(lean_conn_t *c);
static int h2_wants(const lean_conn_t *c);

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t now_ms(const yr_upstream_t *up)
{
    return uv_now(up->loop);
}

static void set_error(yr_upstream_call_t *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(yr_upstream_call_t *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->errbuf, sizeof(call->errbuf), fmt, ap);
    va_end(ap);
}

static void conn_want(lean_conn_t *c, int events)
{
    if (c->events == events || c->closing)
        return;
    c->events = events;
    if (events == 0)
        uv_poll_stop(&c->poll);
    else
        uv_poll_start(&c->poll, events, on_conn_poll);
}

static void resume_unqueue(yr_lean_t *l, lean_call_t *lc)
{
    if (!lc->resume_queued)
        return;
    if (lc->prev_resume != NULL)
        lc->prev_resume->next_resume = lc->next_resume;
    else
        l->resumes = lc->next_resume;
    if (lc->next_resume != NULL)
        lc->next_resume->prev_resume = lc->prev_resume;
    else
        l->resumes_tail = lc->prev_resume;
    lc->resume_queued = false;
    lc->prev_resume = lc->next_resume = NULL;
    if (l->resumes == NULL)
        uv_idle_stop(&l->resume_idle);
}

static void on_resume_idle(uv_idle_t *hd);

static void resume_queue(yr_lean_t *l, lean_call_t *lc)
{
    if (lc->resume_queued)
        return;
    lc->resume_queued = true;
    lc->next_resume = NULL;
    lc->prev_resume = l->resumes_tail;
    if (l->resumes_tail != NULL)
        l->resumes_tail->next_resume = lc;
    else
        l->resumes = lc;
    l->resumes_tail = lc;
    uv_idle_start(&l->resume_idle, on_resume_idle);
}

static void on_call_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* The call's memory goes when its timer has closed (next loop turn). */
static void call_release(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    yr_lean_t *l = call->up->lean; /* NULL once yr_lean_close ran */
    if (l != NULL)
        resume_unqueue(l, lc);
    if (lc->resolving != NULL)
        lc->resolving->call = NULL;
    lc->resolving = NULL;
    free(lc->hdrs);
    lc->hdrs = NULL;
    free(lc->pend);
    lc->pend = NULL;
    call->up->active--;
    uv_timer_stop(&call->fb_timer);
    uv_close((uv_handle_t *)&call->fb_timer, on_call_timer_closed);
}

/* Detaches the call's connection: back to its host's idle list when it can
 * carry another request, closed otherwise. */
static void call_drop_conn(yr_upstream_call_t *call, bool keep)
{
    lean_call_t *lc = call->lean;
    lean_conn_t *c = lc->conn;
    if (c == NULL)
        return;
    if (lc->h2 || lc->waiting) {
        h2_detach(call);
        return;
    }
    lc->conn = NULL;
    c->call = NULL;
    lean_host_t *h = c->host;
    if (!keep || c->closing || h->nidle >= IDLE_PER_HOST || call->up->closing) {
        conn_close(c);
        return;
    }
    c->idle = true;
    c->idle_since = now_ms(call->up);
    c->next_idle = h->idle;
    h->idle = c;
    h->nidle++;
    conn_want(c, UV_READABLE);
    /* TLS records read ahead with the response sit in OpenSSL, where the
     * poll cannot see them: look now (a late session ticket may stay, any
     * data closes the connection before another call could read it) */
    if (c->ssl != NULL && SSL_has_pending(c->ssl))
        idle_event(c);
}

static void finish(yr_upstream_call_t *call, enum yr_up_error err)
{
    if (call->done)
        return;
    lean_call_t *lc = call->lean;
    if (lc->starting) { /* the owner hears of it once it has the call */
        call_drop_conn(call, false);
        lc->deferred = true;
        lc->deferred_err = err;
        uv_timer_stop(&call->fb_timer);
        resume_queue(call->up->lean, lc);
        return;
    }
    call->done = true;
    call_drop_conn(call, err == YR_UP_OK && lc->keep);
    call->cbs->on_done(call, err, call->data);
    call_release(call);
}

/* ---- timers: one per call, armed for the nearest deadline -------------------- */

static void arm_timer(yr_upstream_call_t *call);

static void on_call_timer(uv_timer_t *t)
{
    yr_upstream_call_t *call = t->data;
    lean_call_t *lc = call->lean;
    uint64_t now = now_ms(call->up);
    if (lc->total_until != 0 && now >= lc->total_until) {
        set_error(call, "Operation timed out after %u milliseconds with %llu bytes received",
                  (unsigned)lc->total_ms, (unsigned long long)lc->received);
        finish(call, call->head_done ? YR_UP_ETRANSFER : YR_UP_ETIMEDOUT);
        return;
    }
    if (lc->connect_until != 0 && now >= lc->connect_until) {
        set_error(call, "Connection timed out after %u milliseconds", (unsigned)lc->connect_ms);
        finish(call, YR_UP_ETIMEDOUT);
        return;
    }
    if (lc->attempt_until != 0 && now >= lc->attempt_until) {
        /* this address does not answer (a black-holed IPv6 route, most
         * often): the next one gets the rest, as curl gives it */
        lc->attempt_until = 0;
        call_drop_conn(call, false);
        lc->addr_i++;
        connect_next(call, ETIMEDOUT);
        if (!call->done && !lc->deferred)
            arm_timer(call);
        return;
    }
    if (!call->head_done && lc->first_until != 0 && now >= lc->first_until) {
        set_error(call, "no response head within the timeout");
        finish(call, YR_UP_ETIMEDOUT);
        return;
    }
    if (call->head_done && call->idle_ms > 0) {
        if (call->paused)
            call->last_data = now; /* the owner holds the call: not idle */
        if (now - call->last_data >= call->idle_ms) {
            set_error(call, "no data from the upstream for %u ms", (unsigned)call->idle_ms);
            finish(call, YR_UP_EIDLE);
            return;
        }
    }
    arm_timer(call);
}

static void arm_timer(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    uint64_t next = UINT64_MAX;
    if (lc->total_until != 0)
        next = lc->total_until;
    if (lc->connect_until != 0 && lc->connect_until < next)
        next = lc->connect_until;
    if (lc->attempt_until != 0 && lc->attempt_until < next)
        next = lc->attempt_until;
    if (!call->head_done && lc->first_until != 0 && lc->first_until < next)
        next = lc->first_until;
    if (call->head_done && call->idle_ms > 0 && call->last_data + call->idle_ms < next)
        next = call->last_data + call->idle_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&call->fb_timer);
        return;
    }
    uint64_t now = now_ms(call->up);
    uv_timer_start(&call->fb_timer, on_call_timer, next > now ? next - now : 0, 0);
}

/* ---- the response: http-parser callbacks -------------------------------------- */

static int hdr_append(lean_call_t *lc, const char *p, size_t n, bool nul)
{
    if (memchr(p, '\0', n) != NULL)
        return -1; /* curl refuses a NUL in a header too ("Nul byte in header") */
    size_t need = lc->hdrs_len + n + (nul ? 1 : 0);
    if (need > HEAD_MAX)
        return -1;
    if (need > lc->hdrs_cap) {
        size_t cap = lc->hdrs_cap ? lc->hdrs_cap : 1024;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(lc->hdrs, cap);
        if (nb == NULL)
            return -1;
        lc->hdrs = nb;
        lc->hdrs_cap = cap;
    }
    memcpy(lc->hdrs + lc->hdrs_len, p, n);
    lc->hdrs_len += n;
    if (nul)
        lc->hdrs[lc->hdrs_len++] = '\0';
    return 0;
}

static yr_upstream_call_t *parser_call(http_parser *p)
{
    return ((lean_conn_t *)p->data)->call;
}

static int on_message_begin(http_parser *p)
{
    yr_upstream_call_t *call = parser_call(p);
    lean_call_t *lc = call->lean;
    lc->hdrs_len = 0;
    lc->in_value = false;
    call->status = 0;
    call->retry_after_len = call->content_type_len = 0;
    call->has_hints = false;
    return 0;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
    (void)at;
    (void)n;
    parser_call(p)->status = (int)p->status_code; /* known before the headers */
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    if (parser_call(p)->head_done)
        return 0; /* a chunked trailer: not a header of the response (curl's CURLH_HEADER) */
    lean_call_t *lc = parser_call(p)->lean;
    if (lc->in_value) { /* a new header: end the previous value */
        if (hdr_append(lc, "", 0, true) < 0)
            return -1;
        lc->in_value = false;
    }
    return hdr_append(lc, at, n, false);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    if (parser_call(p)->head_done)
        return 0;
    lean_call_t *lc = parser_call(p)->lean;
    if (!lc->in_value) {
        if (hdr_append(lc, "", 0, true) < 0)
            return -1;
        lc->in_value = true;
    }
    return hdr_append(lc, at, n, false);
}

static void capture(char *dst, size_t cap, size_t *len, yr_str_t v)
{
    v = yr_str_trim(v);
    size_t n = v.len < cap ? v.len : cap - 1;
    memcpy(dst, v.ptr, n);
    dst[n] = '\0';
    *len = n;
}

static bool is_hint(const char *name)
{
    switch (name[0] | 0x20) {
    case 'r': return strcasecmp(name, "retry-after-ms") == 0;
    case 'x': return strncasecmp(name, "x-ratelimit-", 12) == 0 && name[12] != '\0';
    case 'a': return strncasecmp(name, "anthropic-ratelimit-", 20) == 0 && name[20] != '\0';
    default: return false;
    }
}

/* Walks "name\0value\0" pairs; returns the next offset, or 0 at the end. */
static size_t hdr_next(const lean_call_t *lc, size_t off, const char **name, yr_str_t *value)
{
    if (off >= lc->hdrs_len)
        return 0;
    *name = lc->hdrs + off;
    size_t nl = strnlen(*name, lc->hdrs_len - off);
    if (off + nl + 1 >= lc->hdrs_len)
        return 0;
    const char *v = *name + nl + 1;
    size_t vl = strnlen(v, lc->hdrs_len - (off + nl + 1));
    *value = (yr_str_t){v, vl};
    return off + nl + 1 + vl + 1;
}

static int head_complete(yr_upstream_call_t *call, uint64_t length);

static int on_headers_complete(http_parser *p)
{
    yr_upstream_call_t *call = parser_call(p);
    lean_call_t *lc = call->lean;
    if (lc->in_value || lc->hdrs_len > 0) {
        if (hdr_append(lc, "", 0, true) < 0)
            return -1;
        lc->in_value = false;
    }
    call->status = (int)p->status_code;
    if (call->status < 200)
        return 0; /* an interim response: the real one follows */
    bool sized = (p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX;
    return head_complete(call, sized ? p->content_length : UINT64_MAX);
}

/* The final response head is in lc->hdrs (HTTP/1.1 or h2): capture what the
 * gateway asks for, check the announced length (UINT64_MAX: none), tell the
 * owner. -1 (lc->err set) when the call must end. */
static int head_complete(yr_upstream_call_t *call, uint64_t length)
{
    lean_call_t *lc = call->lean;
    const char *name;
    yr_str_t v;
    for (size_t off = 0; (off = hdr_next(lc, off, &name, &v)) != 0;) {
        if (strcasecmp(name, "content-type") == 0)
            capture(call->content_type, sizeof(call->content_type), &call->content_type_len, v);
        else if (strcasecmp(name, "retry-after") == 0)
            capture(call->retry_after, sizeof(call->retry_after), &call->retry_after_len, v);
        else if (is_hint(name))
            call->has_hints = true;
    }
    call->head_done = true;
    call->last_data = now_ms(call->up);
    arm_timer(call);
    if (lc->max_body > 0 && length != UINT64_MAX && length > lc->max_body) {
        set_error(call, "Maximum file size exceeded");
        lc->err = YR_UP_EABORTED;
        lc->failed = true;
        return -1;
    }
    if (call->cbs->on_head != NULL && call->cbs->on_head(call, call->data) != 0) {
        set_error(call, "the response was refused by its owner");
        lc->err = YR_UP_EABORTED;
        lc->failed = true;
        return -1;
    }
    return 0;
}

/* A body piece to the owner: 0 delivered, 1 the owner paused (the same
 * bytes go again after resume), -1 the owner aborted. */
static int deliver(yr_upstream_call_t *call, const char *at, size_t n)
{
    if (call->idle_ms > 0)
        call->last_data = now_ms(call->up);
    int rc = call->cbs->on_data(call, at, n, call->data);
    if (rc == YR_UP_PAUSE) {
        call->paused = true;
        return 1;
    }
    if (rc != YR_UP_CONTINUE) {
        set_error(call, "Failure writing output to destination");
        call->lean->err = YR_UP_EABORTED;
        call->lean->failed = true;
        return -1;
    }
    call->lean->received += n;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    yr_upstream_call_t *call = parser_call(p);
    if (call->status < 200)
        return 0;
    int rc = deliver(call, at, n);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        /* kept aside by feed(): it knows where the piece is in its input */
        lean_call_t *lc = call->lean;
        lc->pend_body = n;
        lc->pend = (char *)at; /* a pointer into the input until feed() copies it */
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    yr_upstream_call_t *call = parser_call(p);
    if (call->status < 200)
        return 0;
    lean_call_t *lc = call->lean;
    lc->complete = true;
    lc->keep = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* stop: whatever follows is not this call's */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* A dead kept-alive connection (the server closed it as we sent): send the
 * request once more on a new one. True when that was done. */
static bool retry_stale(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    if (!lc->reused || lc->got_bytes || lc->retried || call->head_done)
        return false;
    lc->retried = true;
    lc->reused = false;
    call->up->stats.stale_retries++;
    call_drop_conn(call, false);
    lc->woff = 0;
    call_connect(call);
    return true;
}

/* The call's connection broke (why: NULL for a clean close) before its
 * response ended: over HTTP/1.1 and h2 alike, curl's words for each case. */
static void call_broken(yr_upstream_call_t *call, const char *why)
{
    if (!call->head_done) {
        if (!call->lean->got_bytes)
            set_error(call, "%s", why != NULL ? why : "Empty reply from server");
        else
            set_error(call, "the connection closed inside the response head%s%s",
                      why ? ": " : "", why ? why : "");
        finish(call, YR_UP_ECONNECT);
        return;
    }
    set_error(call, "transfer closed before the response ended%s%s", why ? ": " : "",
              why ? why : "");
    finish(call, YR_UP_ETRANSFER);
}

/* The connection ended (EOF, reset, a TLS alert) while carrying the call. */
static void conn_ended(lean_conn_t *c, const char *why)
{
    yr_upstream_call_t *call = c->call;
    lean_call_t *lc = call->lean;
    if (retry_stale(call))
        return;
    if (lc->got_bytes && why == NULL) {
        /* EOF: tell the parser, it may complete a response read to the close */
        http_parser_execute(&c->parser, &parser_settings, NULL, 0);
        if (lc->complete) {
            lc->keep = false;
            finish(call, YR_UP_OK);
            return;
        }
        if (lc->failed) {
            finish(call, lc->err);
            return;
        }
    }
    call_broken(call, why);
}

/* Parses n bytes of response. Runs the owner's callbacks (through the parser
 * callbacks) and ends the call when the response is complete or broken. */
static void feed(lean_conn_t *c, const char *data, size_t n)
{
    yr_upstream_call_t *call = c->call;
    lean_call_t *lc = call->lean;
    lc->got_bytes = true;
    size_t used = http_parser_execute(&c->parser, &parser_settings, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (lc->failed) {
        finish(call, lc->err);
        return;
    }
    if (c->parser.upgrade && !lc->complete) {
        set_error(call, "the upstream switched protocols (%u): not HTTP/1.1 any more",
                  c->parser.status_code);
        finish(call, call->head_done ? YR_UP_ETRANSFER : YR_UP_ECONNECT);
        return;
    }
    if (lc->complete) {
        if (used < n || (lc->woff < lc->wlen))
            lc->keep = false; /* extra bytes, or the request was not all sent */
        finish(call, YR_UP_OK);
        return;
    }
    if (e == HPE_PAUSED && call->paused) {
        /* keep the paused piece and the unparsed rest for the resume */
        size_t body = lc->pend_body;
        const char *at = lc->pend;
        size_t raw = n - used;
        char *keep = malloc(body + raw + 1);
        if (keep == NULL) {
            lc->pend = NULL; /* it pointed into the input */
            lc->pend_body = 0;
            set_error(call, "out of memory");
            finish(call, YR_UP_EINTERNAL);
            return;
        }
        memcpy(keep, at, body);
        memcpy(keep + body, data + used, raw);
        lc->pend = keep;
        lc->pend_raw = raw;
        conn_want(c, call_wants(c));
        return;
    }
    if (e != HPE_OK) {
        if (!call->head_done) {
            set_error(call, "the response head is too large or malformed (%s)",
                      http_errno_description(e));
            finish(call, YR_UP_ECONNECT);
        } else {
            set_error(call, "malformed response body (%s)", http_errno_description(e));
            finish(call, YR_UP_ETRANSFER);
        }
    }
}

/* ---- reading and writing ------------------------------------------------------ */

static const char *tls_error_text(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return "TLS connection error";
    ERR_error_string_n(e, buf, cap);
    return buf;
}

/* What a connection carrying a call waits for: writability while the
 * request is not all sent (or SSL_read needs to write), readability unless
 * the owner keeps the call paused. */
static int call_wants(const lean_conn_t *c)
{
    const lean_call_t *lc = c->call->lean;
    bool sending = lc->woff < lc->wlen;
    if (c->call->paused)
        return sending ? UV_WRITABLE : 0;
    return UV_READABLE | (sending || c->read_wants_write ? UV_WRITABLE : 0);
}

/* A drained TLS connection gives its record buffers back while it waits
 * for the next record: with read-ahead OpenSSL 3.0 keeps the ~16.6 KB read
 * buffer of every connection otherwise (SSL_MODE_RELEASE_BUFFERS does not
 * release it), which was most of what a TLS stream held. SSL_free_buffers
 * keeps them while a record is partly read or a write is pending. */
static void tls_drained(lean_conn_t *c)
{
    (void)SSL_free_buffers(c->ssl);
}

static int conn_wants(const lean_conn_t *c)
{
    return c->h2 != NULL ? h2_wants(c) : call_wants(c);
}

/* One read of the connection into buf: > 0 bytes, 0 nothing more for now,
 * -1 the connection ended (*why NULL for a clean close, else the reason,
 * written to eb). */
static ssize_t conn_recv(lean_conn_t *c, char *buf, size_t cap, const char **why, char *eb,
                         size_t ebcap)
{
    *why = NULL;
    if (c->ssl == NULL) {
        ssize_t n = read(c->fd, buf, cap);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            snprintf(eb, ebcap, "Recv failure: %s", strerror(errno));
            *why = eb;
            return -1;
        }
        return n == 0 ? -1 : n;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->ssl, buf, (int)cap);
    if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            tls_drained(c);
            return 0;
        }
        if (e == SSL_ERROR_WANT_WRITE) { /* a KeyUpdate reply that did not fit: rare */
            c->read_wants_write = true;
            conn_want(c, UV_READABLE | UV_WRITABLE);
            return 0;
        }
        if (!(e == SSL_ERROR_ZERO_RETURN ||
              (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)))
            *why = tls_error_text(eb, ebcap);
        return -1;
    }
    if (c->read_wants_write) {
        c->read_wants_write = false;
        conn_want(c, conn_wants(c));
    }
    return r;
}

/* After a read of n bytes: true when neither the socket nor OpenSSL has
 * more for now (the poll says when there is); a drained TLS connection
 * gives its record buffers back. */
static bool conn_drained(lean_conn_t *c, size_t n)
{
    if (c->ssl == NULL)
        return n < RBUF_SIZE;
    if (SSL_has_pending(c->ssl))
        return false;
    tls_drained(c);
    return true;
}

/* Reads what the connection has and feeds it to the call's parser. */
static void conn_read(lean_conn_t *c)
{
    char *buf = c->l->rbuf;
    for (;;) {
        const char *why;
        char eb[160];
        ssize_t n = conn_recv(c, buf, RBUF_SIZE, &why, eb, sizeof(eb));
        if (n == 0)
            return;
        if (n < 0) {
            conn_ended(c, why);
            return;
        }
        yr_upstream_call_t *call = c->call;
        feed(c, buf, (size_t)n);
        /* the call may have ended or paused; the connection may be idle */
        if (c->call != call || call->paused || c->closing || conn_drained(c, (size_t)n))
            return;
    }
}

static void write_failed(lean_conn_t *c, const char *why)
{
    yr_upstream_call_t *call = c->call;
    if (retry_stale(call))
        return;
    set_error(call, "Send failure: %s", why);
    finish(call, call->head_done ? YR_UP_ETRANSFER : YR_UP_ECONNECT);
}

/* Sends the rest of the request; polls for writability while it cannot. */
static void conn_send(lean_conn_t *c)
{
    yr_upstream_call_t *call = c->call;
    lean_call_t *lc = call->lean;
    while (lc->woff < lc->wlen) {
        const char *p;
        size_t n;
        if (lc->woff < lc->head_len) {
            p = lc->head + lc->woff;
            n = lc->head_len - lc->woff;
        } else {
            p = lc->body + (lc->woff - lc->head_len);
            n = lc->wlen - lc->woff;
        }
        ssize_t w;
        if (c->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    conn_want(c, UV_READABLE | UV_WRITABLE);
                    return;
                }
                char eb[160];
                write_failed(c, tls_error_text(eb, sizeof(eb)));
                return;
            }
            w = r;
        } else if (lc->woff < lc->head_len && lc->body_len > 0 && !lc->body_in_head) {
            struct iovec iov[2] = {{(void *)p, n}, {(void *)lc->body, lc->body_len}};
            w = writev(c->fd, iov, 2);
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
        }
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                conn_want(c, UV_READABLE | UV_WRITABLE);
                return;
            }
            write_failed(c, strerror(errno));
            return;
        }
        lc->woff += (size_t)w;
    }
    conn_want(c, call_wants(c));
}

/* Sends the call's request on a connection that is ready. */
static void conn_start_request(lean_conn_t *c)
{
    yr_upstream_call_t *call = c->call;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    call->lean->got_bytes = false;
    conn_send(c);
}

/* ---- TLS ---------------------------------------------------------------------- */

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    lean_host_t *h = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (h->session != NULL)
        SSL_SESSION_free(h->session);
    h->session = sess;
    return 1; /* we keep the reference */
}

static int host_tls_ctx(lean_host_t *h, yr_upstream_call_t *call)
{
    if (h->ctx != NULL)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return -ENOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = h->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, h->ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        set_error(call, "error setting certificate verify locations: CAfile: %s",
                  h->ca_file != NULL ? h->ca_file : "(system)");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    static const unsigned char alpn[] = "\x08http/1.1";
    static const unsigned char alpn2[] = "\x02h2\x08http/1.1";
    if (h->h2_ok)
        SSL_CTX_set_alpn_protos(ctx, alpn2, sizeof(alpn2) - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    /* read-ahead: one recv per burst of records; conn_read drains with
     * SSL_has_pending, which sees the read-ahead bytes, so nothing stalls */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* moving: an h2 write retried from a buffer that grew (h2_hold) */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_app_data(ctx, h);
    h->ctx = ctx;
    return 0;
}

static void conn_handshake(lean_conn_t *c)
{
    yr_upstream_call_t *call = c->call;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->state = C_READY;
        call->lean->connect_until = 0;
        if (SSL_session_reused(c->ssl))
            call->up->stats.tls_resumed++;
        const unsigned char *proto = NULL;
        unsigned plen = 0;
        SSL_get0_alpn_selected(c->ssl, &proto, &plen);
        if (plen == 2 && memcmp(proto, "h2", 2) == 0) {
            c->host->proto = 2;
            h2_start(c);
            return;
        }
        if (c->host->h2_ok)
            c->host->proto = 1; /* it speaks HTTP/1.1 only: no call waits for a probe again */
        if (c->probe) {
            h2_unlink(c);
            h2_requeue_waiters(c);
        }
        conn_start_request(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        conn_want(c, UV_READABLE);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_want(c, UV_READABLE | UV_WRITABLE);
        return;
    }
    long v = SSL_get_verify_result(c->ssl);
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        set_error(call, "SSL: no alternative certificate subject name matches target host name '%s'",
                  c->host->name); /* curl's words */
        ERR_clear_error();
    } else if (v != X509_V_OK) {
        set_error(call, "SSL certificate problem: %s", X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else {
        char eb[160];
        set_error(call, "TLS handshake with %s failed: %s", c->host->name,
                  tls_error_text(eb, sizeof(eb)));
    }
    finish(call, YR_UP_ECONNECT);
}

static int conn_tls_start(lean_conn_t *c)
{
    lean_host_t *h = c->host;
    SSL *ssl = SSL_new(h->ctx);
    if (ssl == NULL)
        return -ENOMEM;
    c->ssl = ssl;
    if (SSL_set_fd(ssl, c->fd) != 1)
        return -ENOMEM;
    SSL_set_connect_state(ssl);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (h->ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h->name) != 1)
            return -EINVAL;
    } else {
        if (SSL_set_tlsext_host_name(ssl, h->name) != 1 || SSL_set1_host(ssl, h->name) != 1)
            return -EINVAL;
    }
    if (h->session != NULL)
        SSL_set_session(ssl, h->session);
    c->state = C_HANDSHAKE;
    conn_handshake(c);
    return 0;
}

/* ---- connections ---------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *hd)
{
    lean_conn_t *c = hd->data;
    if (c->ssl != NULL)
        SSL_free(c->ssl); /* the descriptor is closed already */
    if (c->h2 != NULL)
        nghttp2_session_del(c->h2); /* never inside its own callbacks: a turn later */
    free(c->wpend);
    free(c);
}

static void idle_unlink(lean_conn_t *c)
{
    lean_host_t *h = c->host;
    for (lean_conn_t **pp = &h->idle; *pp != NULL; pp = &(*pp)->next_idle) {
        if (*pp == c) {
            *pp = c->next_idle;
            h->nidle--;
            break;
        }
    }
    c->next_idle = NULL;
    c->idle = false;
}

static void conn_close(lean_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->idle)
        idle_unlink(c);
    h2_unlink(c);
    h2_requeue_waiters(c);
    yr_lean_t *l = c->l;
    if (c->prev_all != NULL)
        c->prev_all->next_all = c->next_all;
    else
        l->conns = c->next_all;
    if (c->next_all != NULL)
        c->next_all->prev_all = c->prev_all;
    uv_close((uv_handle_t *)&c->poll, on_conn_closed); /* leaves epoll at once */
    close(c->fd);
    c->fd = -1;
}

/* An idle connection spoke: the server closed it (or broke the protocol).
 * A TLS 1.3 session ticket arriving late is the one thing it may say. */
static void idle_event(lean_conn_t *c)
{
    if (c->ssl != NULL) {
        char b[256];
        ERR_clear_error();
        int r = SSL_read(c->ssl, b, sizeof(b));
        if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
            return;
        ERR_clear_error();
    } else {
        char b;
        ssize_t r = recv(c->fd, &b, 1, MSG_PEEK);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
    }
    conn_close(c);
}

static void conn_connected(lean_conn_t *c);

static void on_conn_poll(uv_poll_t *hd, int status, int events)
{
    lean_conn_t *c = hd->data;
    if (c->closing)
        return;
    if (c->h2 != NULL) {
        h2_poll(c, status, events);
        return;
    }
    if (c->call == NULL) {
        idle_event(c);
        return;
    }
    yr_upstream_call_t *call = c->call;
    switch (c->state) {
    case C_CONNECTING:
        conn_connected(c);
        return;
    case C_HANDSHAKE:
        conn_handshake(c);
        return;
    case C_READY: break;
    }
    if (status < 0) {
        /* an error on the socket (a reset: libuv says UV_EBADF for POLLERR
         * and has stopped the poll): reading tells which */
        c->events = 0;
        events |= UV_READABLE;
    }
    if ((events & UV_WRITABLE) && call->lean->woff < call->lean->wlen) {
        conn_send(c);
        if (c->call != call || c->closing)
            return;
    }
    if (((events & UV_READABLE) || ((events & UV_WRITABLE) && c->read_wants_write)) &&
        !call->paused)
        conn_read(c);
}

static lean_conn_t *conn_new(yr_upstream_call_t *call, int fd)
{
    yr_lean_t *l = call->up->lean;
    lean_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (uv_poll_init_socket(call->up->loop, &c->poll, fd) < 0) {
        free(c);
        return NULL;
    }
    c->poll.data = c;
    c->l = l;
    c->fd = fd;
    c->host = call->lean->host;
    c->next_all = l->conns;
    if (l->conns != NULL)
        l->conns->prev_all = c;
    l->conns = c;
    return c;
}

/* Tries the call's addresses from lc->addr_i on; fails the call when none
 * takes a connection. */
static void connect_next(yr_upstream_call_t *call, int last_errno)
{
    lean_call_t *lc = call->lean;
    lean_host_t *h = lc->host;
    lc->attempt_until = 0;
    while (lc->addr_i < h->naddrs) {
        const struct sockaddr_storage *a = &h->addrs[lc->addr_i];
        int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_errno = errno;
            lc->addr_i++;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        int r = connect(fd, (const struct sockaddr *)a, h->addr_lens[lc->addr_i]);
        if (r < 0 && errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            lc->addr_i++;
            continue;
        }
        lean_conn_t *c = conn_new(call, fd);
        if (c == NULL) {
            close(fd);
            set_error(call, "out of memory");
            finish(call, YR_UP_EINTERNAL);
            return;
        }
        c->call = call;
        lc->conn = c;
        call->up->stats.conns_opened++;
        c->state = C_CONNECTING;
        if (h->h2c || (h->tls && h->h2_ok && h->proto != 1)) {
            /* it may speak h2: the calls that come meanwhile wait for it */
            c->probe = true;
            c->on_list = true;
            c->next_h2 = h->h2conns;
            if (h->h2conns != NULL)
                h->h2conns->prev_h2 = c;
            h->h2conns = c;
        }
        if (r == 0) {
            conn_connected(c);
            return;
        }
        conn_want(c, UV_WRITABLE);
        /* more addresses to try: this one gets half of what is left of the
         * connect budget (curl's split), so a dead first address cannot
         * spend all of it */
        uint64_t now = now_ms(call->up);
        uint64_t until = lc->connect_until != 0 ? lc->connect_until
                         : lc->first_until != 0 ? lc->first_until
                                                : lc->total_until;
        if (lc->addr_i + 1 < h->naddrs && until > now) {
            lc->attempt_until = now + (until - now) / 2;
            arm_timer(call);
        }
        return;
    }
    set_error(call, "Failed to connect to %s port %u: %s", h->name, (unsigned)h->port,
              strerror(last_errno ? last_errno : ECONNREFUSED));
    finish(call, YR_UP_ECONNECT);
}

static void conn_connected(lean_conn_t *c)
{
    yr_upstream_call_t *call = c->call;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS)
        return;
    if (err != 0) {
        call_drop_conn(call, false);
        call->lean->addr_i++;
        connect_next(call, err);
        return;
    }
    call->lean->attempt_until = 0;
    if (c->host->tls) {
        int rc = conn_tls_start(c);
        if (rc < 0) {
            set_error(call, "TLS setup failed for %s", c->host->name);
            finish(call, YR_UP_ECONNECT);
        }
        return;
    }
    c->state = C_READY;
    call->lean->connect_until = 0;
    if (c->host->h2c) {
        h2_start(c);
        return;
    }
    conn_start_request(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct lean_resolve *r = req->data;
    yr_upstream_call_t *call = r->call;
    if (call == NULL) {
        uv_freeaddrinfo(res);
        free(r);
        return;
    }
    lean_call_t *lc = call->lean;
    lc->resolving = NULL;
    lean_host_t *h = lc->host;
    if (status == 0) {
        h->naddrs = 0;
        for (struct addrinfo *ai = res; ai != NULL && h->naddrs < MAX_ADDRS; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(h->addrs[0]) ||
                (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
                continue;
            memcpy(&h->addrs[h->naddrs], ai->ai_addr, ai->ai_addrlen);
            h->addr_lens[h->naddrs++] = (socklen_t)ai->ai_addrlen;
        }
        h->addrs_until = now_ms(call->up) + DNS_TTL_MS;
    }
    uv_freeaddrinfo(res);
    free(r);
    if (status != 0 || h->naddrs == 0) {
        set_error(call, "Could not resolve host: %s", h->name);
        finish(call, YR_UP_ECONNECT);
        return;
    }
    lc->addr_i = 0;
    connect_next(call, 0);
}

/* A connection for the call: a kept-alive one of its host, else a new one. */
static void call_connect(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    lean_host_t *h = lc->host;
    uint64_t now = now_ms(call->up);
    if ((h->h2c || (h->tls && h->h2_ok && h->proto != 1)) && h2_join(call))
        return;
    while (h->idle != NULL) {
        lean_conn_t *c = h->idle;
        idle_unlink(c);
        if (now - c->idle_since > IDLE_MAX_AGE_MS) {
            conn_close(c);
            continue;
        }
        c->call = call;
        lc->conn = c;
        lc->reused = true;
        call->up->stats.conns_reused++;
        conn_start_request(c);
        return;
    }
    if (lc->connect_ms > 0) {
        lc->connect_until = now + lc->connect_ms;
        arm_timer(call);
    }
    if (h->tls && host_tls_ctx(h, call) < 0) {
        finish(call, YR_UP_ECONNECT);
        return;
    }
    if (h->ip || (h->naddrs > 0 && now < h->addrs_until)) {
        lc->addr_i = 0;
        connect_next(call, 0);
        return;
    }
    struct lean_resolve *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        set_error(call, "out of memory");
        finish(call, YR_UP_EINTERNAL);
        return;
    }
    r->call = call;
    r->req.data = r;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)h->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(call->up->loop, &r->req, on_resolved, h->name, port, &hints);
    if (rc < 0) {
        free(r);
        set_error(call, "Could not resolve host: %s (%s)", h->name, uv_strerror(rc));
        finish(call, YR_UP_ECONNECT);
        return;
    }
    lc->resolving = r;
}

/* ---- HTTP/2 ------------------------------------------------------------------- */

/* A host that picked h2 in ALPN (or is known to speak h2c) carries its calls
 * as streams of a few connections: nghttp2 frames and parses, we move the
 * bytes. While the host's first connection still shakes hands the calls that
 * come meanwhile wait for it (a probe) instead of opening one each, as
 * curl's CURLOPT_PIPEWAIT does; should it answer HTTP/1.1 they go on as
 * before, each on its own connection.
 *
 * Callbacks of nghttp2 run inside nghttp2_session_mem_recv: they record what
 * a frame did to a call (c->ended) and h2_read finishes the calls once
 * nghttp2 has returned; nothing sends from inside them (c->in_h2). The body
 * reaches the owner from inside them, as it does from http-parser's. A
 * paused stream's bytes are kept (lc->pend) and not acknowledged, so its
 * flow-control window, not memory, bounds what it holds. */

static void h2_conn_fail(lean_conn_t *c, const char *why);
static void h2_flush(lean_conn_t *c);
static void h2_process_ended(lean_conn_t *c);

static void link_push(lean_call_t **head, lean_call_t *lc)
{
    lc->prev_link = NULL;
    lc->next_link = *head;
    if (*head != NULL)
        (*head)->prev_link = lc;
    *head = lc;
}

static void link_drop(lean_call_t **head, lean_call_t *lc)
{
    if (lc->prev_link != NULL)
        lc->prev_link->next_link = lc->next_link;
    else
        *head = lc->next_link;
    if (lc->next_link != NULL)
        lc->next_link->prev_link = lc->prev_link;
    lc->prev_link = lc->next_link = NULL;
}

static void h2_unlink(lean_conn_t *c)
{
    if (!c->on_list)
        return;
    lean_host_t *h = c->host;
    if (c->prev_h2 != NULL)
        c->prev_h2->next_h2 = c->next_h2;
    else
        h->h2conns = c->next_h2;
    if (c->next_h2 != NULL)
        c->next_h2->prev_h2 = c->prev_h2;
    c->prev_h2 = c->next_h2 = NULL;
    c->on_list = false;
}

static void h2_link(lean_conn_t *c)
{
    if (c->on_list)
        return;
    lean_host_t *h = c->host;
    c->prev_h2 = NULL;
    c->next_h2 = h->h2conns;
    if (h->h2conns != NULL)
        h->h2conns->prev_h2 = c;
    h->h2conns = c;
    c->on_list = true;
}

/* The calls waiting for a probe that will not carry them look for a
 * connection again, on the next turn. */
static void h2_requeue_waiters(lean_conn_t *c)
{
    while (c->waiters != NULL) {
        lean_call_t *lc = c->waiters;
        link_drop(&c->waiters, lc);
        c->nwait--;
        lc->waiting = false;
        lc->conn = NULL;
        lc->reconnect = true;
        resume_queue(c->l, lc);
    }
}

static int h2_wants(const lean_conn_t *c)
{
    return UV_READABLE | (c->wpend_off < c->wpend_len || c->read_wants_write ? UV_WRITABLE : 0);
}

static size_t h2_room(const lean_conn_t *c)
{
    uint32_t max = nghttp2_session_get_remote_settings(c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return max < H2_STREAMS_MAX ? max : H2_STREAMS_MAX;
}

static yr_upstream_call_t *h2_call(nghttp2_session *s, int32_t sid)
{
    return sid > 0 ? nghttp2_session_get_stream_user_data(s, sid) : NULL;
}

/* Bytes the owner took: the window opens again for the server. */
static void h2_consume(nghttp2_session *s, int32_t sid, size_t n)
{
    if (sid <= 0 || nghttp2_session_consume(s, sid, n) != 0)
        (void)nghttp2_session_consume_connection(s, n);
}

/* A frame ended the call: finished once nghttp2 has returned. */
static void h2_end(yr_upstream_call_t *call, enum yr_up_error err)
{
    lean_call_t *lc = call->lean;
    lean_conn_t *c = lc->conn;
    if (lc->end_queued || c == NULL)
        return;
    lc->end_queued = true;
    lc->end_err = err;
    lc->next_ended = c->ended;
    c->ended = lc;
}

/* The call leaves c->ended (it is finished, or sent elsewhere, otherwise). */
static void h2_unend(lean_conn_t *c, lean_call_t *lc)
{
    if (!lc->end_queued)
        return;
    for (lean_call_t **pp = &c->ended; *pp != NULL; pp = &(*pp)->next_ended) {
        if (*pp == lc) {
            *pp = lc->next_ended;
            break;
        }
    }
    lc->next_ended = NULL;
    lc->end_queued = false;
    lc->refused = false;
}

static ssize_t h2_body_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)src;
    (void)ud;
    yr_upstream_call_t *call = h2_call(s, sid);
    if (call == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    lean_call_t *lc = call->lean;
    size_t n = lc->body_len - lc->body_off;
    if (n > length)
        n = length;
    memcpy(buf, lc->body + lc->body_off, n);
    lc->body_off += n;
    if (lc->body_off == lc->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static bool hop_by_hop(const char *name, size_t n)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return true;
    return false;
}

static uint8_t *nv_bytes(const char *p)
{
    return (uint8_t *)(uintptr_t)p; /* nghttp2 copies them (NGHTTP2_NV_FLAG_NONE) */
}

/* The call's request as h2 HEADERS (and DATA): the head built for HTTP/1.1
 * is the one source of what is sent, read back here, names lower-cased,
 * Host as :authority, the hop-by-hop headers h2 forbids left out. */
static int32_t h2_submit(lean_conn_t *c, yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    const char *p = lc->head, *end = lc->head + lc->hdr_only;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    const char *sp2 = sp != NULL ? memchr(sp + 1, ' ', (size_t)(end - sp - 1)) : NULL;
    const char *eol = sp2 != NULL ? memchr(sp2, '\n', (size_t)(end - sp2)) : NULL;
    if (eol == NULL)
        return NGHTTP2_ERR_INVALID_ARGUMENT;
    size_t lines = 0;
    for (const char *q = eol + 1; q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        lines++;
    nghttp2_nv *nv = malloc((lines + 4) * sizeof(*nv));
    char *lower = malloc(lc->hdr_only);
    if (nv == NULL || lower == NULL) {
        free(nv);
        free(lower);
        return NGHTTP2_ERR_NOMEM;
    }
    const char *scheme = c->host->tls ? "https" : "http";
    nv[0] = (nghttp2_nv){nv_bytes(":method"), nv_bytes(p), 7, (size_t)(sp - p), NGHTTP2_NV_FLAG_NONE};
    nv[1] = (nghttp2_nv){nv_bytes(":scheme"), nv_bytes(scheme), 7, strlen(scheme), NGHTTP2_NV_FLAG_NONE};
    nv[2] = (nghttp2_nv){nv_bytes(":authority"), nv_bytes(""), 10, 0, NGHTTP2_NV_FLAG_NONE};
    nv[3] = (nghttp2_nv){nv_bytes(":path"), nv_bytes(sp + 1), 5, (size_t)(sp2 - sp - 1),
                         NGHTTP2_NV_FLAG_NONE};
    size_t k = 4;
    char *lo = lower;
    for (const char *q = eol + 1; q < end;) {
        const char *le = memchr(q, '\n', (size_t)(end - q));
        if (le == NULL)
            break;
        const char *line_end = le > q && le[-1] == '\r' ? le - 1 : le;
        const char *colon = memchr(q, ':', (size_t)(line_end - q));
        if (colon != NULL && colon > q) {
            size_t nl = (size_t)(colon - q);
            for (size_t i = 0; i < nl; i++)
                lo[i] = (char)((q[i] >= 'A' && q[i] <= 'Z') ? q[i] + 32 : q[i]);
            const char *v = colon + 1;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(line_end - v);
            if (nl == 4 && memcmp(lo, "host", 4) == 0) {
                nv[2].value = nv_bytes(v);
                nv[2].valuelen = vl;
            } else if (!hop_by_hop(lo, nl) &&
                       !(nl == 2 && memcmp(lo, "te", 2) == 0 &&
                         !(vl == 8 && strncasecmp(v, "trailers", 8) == 0))) {
                nv[k++] = (nghttp2_nv){nv_bytes(lo), nv_bytes(v), nl, vl, NGHTTP2_NV_FLAG_NONE};
                lo += nl;
            }
        }
        q = le + 1;
    }
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = h2_body_read};
    lc->body_off = 0;
    int32_t sid = nghttp2_submit_request(c->h2, NULL, nv, k, lc->body_len > 0 ? &prd : NULL, call);
    free(nv);
    free(lower);
    return sid;
}

/* The call becomes a stream of c. The caller flushes. */
static void h2_attach(lean_conn_t *c, yr_upstream_call_t *call, bool reused)
{
    lean_call_t *lc = call->lean;
    lc->conn = c;
    lc->h2 = true;
    lc->reused = reused;
    lc->got_bytes = false;
    lc->connect_until = lc->attempt_until = 0;
    link_push(&c->streams, lc);
    c->nstreams++;
    call->up->stats.h2_streams++;
    int32_t sid = h2_submit(c, call);
    if (sid == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE && !lc->retried) {
        c->goaway = true; /* no stream ids left: a new connection takes it */
        h2_unlink(c);
        lc->retried = true;
        h2_detach(call);
        call_connect(call);
        return;
    }
    if (sid < 0) {
        set_error(call, "HTTP/2: the request could not be sent (%s)", nghttp2_strerror(sid));
        finish(call, YR_UP_ECONNECT);
        return;
    }
    lc->sid = sid;
    lc->reads_at = c->reads;
    arm_timer(call);
}

/* A connection of the host carries the call (or it waits for one shaking
 * hands). False: none can, a new connection is needed. */
static bool h2_join(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    lean_host_t *h = lc->host;
    uint64_t now = now_ms(call->up);
    for (lean_conn_t *c = h->h2conns, *next; c != NULL; c = next) {
        next = c->next_h2;
        if (c->closing || c->goaway)
            continue;
        if (c->h2 == NULL) {
            if (c->nwait + 1 >= H2_WAIT_MAX)
                continue;
            lc->waiting = true;
            lc->conn = c;
            link_push(&c->waiters, lc);
            c->nwait++;
            if (lc->connect_ms > 0 && lc->connect_until == 0) {
                lc->connect_until = now + lc->connect_ms;
                arm_timer(call);
            }
            return true;
        }
        if (c->nstreams == 0 && now - c->idle_since > IDLE_MAX_AGE_MS) {
            conn_close(c);
            continue;
        }
        if (c->nstreams >= h2_room(c))
            continue;
        call->up->stats.conns_reused++;
        h2_attach(c, call, true);
        if (lc->conn == c)
            h2_flush(c);
        return true;
    }
    return false;
}

/* The call leaves its connection (ended, cancelled, sent elsewhere). */
static void h2_detach(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    lean_conn_t *c = lc->conn;
    lc->conn = NULL;
    lc->h2 = false;
    if (lc->waiting) {
        link_drop(&c->waiters, lc);
        c->nwait--;
        lc->waiting = false;
        return;
    }
    link_drop(&c->streams, lc);
    c->nstreams--;
    h2_unend(c, lc);
    if (c->nstreams == 0)
        c->idle_since = now_ms(call->up);
    if (!c->closing && lc->pend_body > 0) /* kept, never delivered: the window is the server's again */
        (void)nghttp2_session_consume_connection(c->h2, lc->pend_body);
    lc->pend_body = 0;
    if (!c->closing && lc->sid > 0) {
        (void)nghttp2_session_set_stream_user_data(c->h2, lc->sid, NULL);
        (void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, lc->sid,
                                        lc->complete ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
    }
    lc->sid = 0;
    if (c->closing)
        return;
    if ((c->goaway && c->nstreams == 0) || call->up->closing) {
        conn_close(c);
        return;
    }
    h2_flush(c);
}

static int h2_on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    yr_upstream_call_t *call = h2_call(s, f->hd.stream_id);
    if (call == NULL || f->hd.type != NGHTTP2_HEADERS || call->head_done)
        return 0; /* trailers are not headers of the response (curl's CURLH_HEADER) */
    lean_call_t *lc = call->lean;
    lc->got_bytes = true;
    lc->hdrs_len = 0;
    call->status = 0;
    call->retry_after_len = call->content_type_len = 0;
    call->has_hints = false;
    return 0;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    yr_upstream_call_t *call = h2_call(s, f->hd.stream_id);
    if (call == NULL || f->hd.type != NGHTTP2_HEADERS || call->head_done || call->lean->failed)
        return 0;
    lean_call_t *lc = call->lean;
    if (nl == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < vl && i < 3; i++)
            st = st * 10 + (value[i] - '0'); /* nghttp2 checked: three digits */
        call->status = st;
        return 0;
    }
    if (nl > 0 && name[0] == ':')
        return 0;
    if (hdr_append(lc, (const char *)name, nl, true) < 0 ||
        hdr_append(lc, (const char *)value, vl, true) < 0) {
        set_error(call, "the response head is too large or malformed (HTTP/2)");
        lc->failed = true;
        lc->err = YR_UP_ECONNECT;
        h2_end(call, YR_UP_ECONNECT);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    return 0;
}

static uint64_t h2_content_length(const lean_call_t *lc)
{
    const char *name;
    yr_str_t v;
    for (size_t off = 0; (off = hdr_next(lc, off, &name, &v)) != 0;) {
        if (strcasecmp(name, "content-length") != 0)
            continue;
        uint64_t n = 0;
        for (size_t i = 0; i < v.len; i++) {
            if (v.ptr[i] < '0' || v.ptr[i] > '9' || n > UINT64_MAX / 10 - 9)
                return UINT64_MAX; /* nghttp2 refuses a bad one; none is a guess */
            n = n * 10 + (uint64_t)(v.ptr[i] - '0');
        }
        return n;
    }
    return UINT64_MAX;
}

static int h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    lean_conn_t *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        /* no new streams; the ones it did not take close as refused */
        c->goaway = true;
        h2_unlink(c);
        return 0;
    }
    yr_upstream_call_t *call = h2_call(s, f->hd.stream_id);
    if (call == NULL)
        return 0;
    lean_call_t *lc = call->lean;
    if (lc->failed || lc->end_queued)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !call->head_done && call->status >= 200 &&
        head_complete(call, h2_content_length(lc)) < 0) {
        h2_end(call, lc->err);
        return 0;
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && call->head_done) {
        lc->complete = true;
        if (lc->pend_body == 0)
            h2_end(call, YR_UP_OK); /* else the resume ends it, after the kept bytes */
    }
    return 0;
}

/* Keeps a piece of a paused stream: at most its window, which is not
 * acknowledged while it is kept. */
static int h2_keep(yr_upstream_call_t *call, const uint8_t *data, size_t len)
{
    lean_call_t *lc = call->lean;
    size_t need = lc->pend_body + len;
    if (need > lc->pend_cap) {
        size_t cap = lc->pend_cap ? lc->pend_cap * 2 : 16384;
        while (cap < need)
            cap *= 2;
        char *nb = cap <= 4 * H2_STREAM_WINDOW ? realloc(lc->pend, cap) : NULL;
        if (nb == NULL) {
            set_error(call, "the upstream sent past its HTTP/2 window, or out of memory");
            lc->failed = true;
            lc->err = YR_UP_EINTERNAL;
            h2_end(call, YR_UP_EINTERNAL);
            return -1;
        }
        lc->pend = nb;
        lc->pend_cap = cap;
    }
    memcpy(lc->pend + lc->pend_body, data, len);
    lc->pend_body = need;
    return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                      size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    yr_upstream_call_t *call = h2_call(s, sid);
    if (call == NULL || call->lean->failed || call->lean->end_queued) {
        h2_consume(s, sid, len);
        return 0;
    }
    lean_call_t *lc = call->lean;
    if (call->paused || lc->pend_body > 0) {
        if (h2_keep(call, data, len) < 0)
            h2_consume(s, sid, len);
        return 0;
    }
    int rc = deliver(call, (const char *)data, len);
    if (rc > 0) {
        if (h2_keep(call, data, len) < 0) /* the same bytes go again after resume */
            h2_consume(s, sid, len);
        return 0;
    }
    h2_consume(s, sid, len);
    if (rc < 0)
        h2_end(call, lc->err);
    return 0;
}

static int h2_on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    (void)ud;
    yr_upstream_call_t *call = h2_call(s, sid);
    if (call == NULL)
        return 0;
    lean_call_t *lc = call->lean;
    lc->sid = 0;
    if (lc->end_queued || lc->complete)
        return 0;
    if (code == NGHTTP2_REFUSED_STREAM && !call->head_done && !lc->retried) {
        lc->refused = true; /* the server did not process it: safe to send again */
        h2_end(call, YR_UP_ECONNECT);
        return 0;
    }
    set_error(call, "HTTP/2 stream %d was not closed cleanly: %s (err %u)", (int)sid,
              nghttp2_http2_strerror(code), (unsigned)code); /* curl's words */
    h2_end(call, call->head_done ? YR_UP_ETRANSFER : YR_UP_ECONNECT);
    return 0;
}

static int h2_setup(yr_lean_t *l)
{
    if (l->h2cbs != NULL)
        return 0;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_stream_close);
    if (nghttp2_option_new(&l->h2opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(l->h2opt, 1);
    l->h2cbs = cb;
    return 0;
}

/* The probe's connection speaks h2: its call and the calls waiting for it
 * become its first streams. */
static void h2_start(lean_conn_t *c)
{
    yr_lean_t *l = c->l;
    yr_upstream_call_t *owner = c->call;
    if (h2_setup(l) < 0 || nghttp2_session_client_new2(&c->h2, l->h2cbs, c, l->h2opt) != 0) {
        c->h2 = NULL;
        set_error(owner, "out of memory");
        finish(owner, YR_UP_EINTERNAL);
        return;
    }
    static const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
    };
    (void)nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    (void)nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    owner->up->stats.h2_conns++;
    c->call = NULL;
    c->probe = false;
    c->state = C_READY;
    c->idle_since = now_ms(owner->up);
    h2_link(c);
    owner->lean->conn = NULL;
    conn_want(c, UV_READABLE);
    h2_attach(c, owner, false);
    while (c->waiters != NULL && !c->closing) {
        lean_call_t *lc = c->waiters;
        link_drop(&c->waiters, lc);
        c->nwait--;
        lc->waiting = false;
        lc->conn = NULL;
        if (c->nstreams >= h2_room(c)) {
            lc->reconnect = true;
            resume_queue(l, lc);
            continue;
        }
        h2_attach(c, lc->call, false);
    }
    h2_flush(c);
}

/* Writes what it can: > 0 bytes taken, 0 the socket is full, -1 the
 * connection failed (and its calls with it). */
static ssize_t h2_write(lean_conn_t *c, const char *p, size_t n)
{
    char eb[160];
    if (c->ssl != NULL) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        char why[200];
        snprintf(why, sizeof(why), "Send failure: %s", tls_error_text(eb, sizeof(eb)));
        h2_conn_fail(c, why);
        return -1;
    }
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w >= 0)
        return w;
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    snprintf(eb, sizeof(eb), "Send failure: %s", strerror(errno));
    h2_conn_fail(c, eb);
    return -1;
}

/* Appends to what waits for the socket (a TLS write is retried with the
 * same bytes first, more may follow). */
static int h2_hold(lean_conn_t *c, const char *p, size_t n)
{
    size_t need = c->wpend_len + n;
    char *nb = realloc(c->wpend, need);
    if (nb == NULL) {
        h2_conn_fail(c, "out of memory");
        return -1;
    }
    memcpy(nb + c->wpend_len, p, n);
    c->wpend = nb;
    c->wpend_len = need;
    return 0;
}

/* Sends n bytes, or keeps what the socket does not take. True when all went. */
static bool h2_out(lean_conn_t *c, const char *p, size_t n)
{
    while (c->wpend_off == c->wpend_len && n > 0) {
        ssize_t w = h2_write(c, p, n);
        if (w < 0)
            return false;
        if (w == 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    if (n == 0)
        return true;
    if (c->wpend_off == c->wpend_len)
        c->wpend_off = c->wpend_len = 0;
    if (h2_hold(c, p, n) == 0)
        conn_want(c, h2_wants(c));
    return false;
}

/* Everything nghttp2 has to send, gathered into few writes. */
static void h2_flush(lean_conn_t *c)
{
    if (c->in_h2 || c->closing || c->h2 == NULL)
        return;
    while (c->wpend_off < c->wpend_len) {
        ssize_t w = h2_write(c, c->wpend + c->wpend_off, c->wpend_len - c->wpend_off);
        if (w < 0)
            return;
        if (w == 0) {
            conn_want(c, h2_wants(c));
            return;
        }
        c->wpend_off += (size_t)w;
    }
    free(c->wpend);
    c->wpend = NULL;
    c->wpend_off = c->wpend_len = 0;
    char *wb = c->l->wbuf;
    size_t used = 0;
    for (;;) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(c->h2, &d);
        if (n < 0) {
            char eb[96];
            snprintf(eb, sizeof(eb), "HTTP/2: %s", nghttp2_strerror((int)n));
            h2_conn_fail(c, eb);
            return;
        }
        if (n == 0)
            break;
        if (used + (size_t)n > H2_WBUF) {
            if (!h2_out(c, wb, used)) {
                if (!c->closing)
                    (void)h2_hold(c, (const char *)d, (size_t)n);
                return;
            }
            used = 0;
        }
        if ((size_t)n > H2_WBUF) {
            if (!h2_out(c, (const char *)d, (size_t)n))
                return;
            continue;
        }
        memcpy(wb + used, d, (size_t)n);
        used += (size_t)n;
    }
    if (used > 0 && !h2_out(c, wb, used))
        return;
    conn_want(c, h2_wants(c));
    if (nghttp2_session_want_read(c->h2) == 0 && nghttp2_session_want_write(c->h2) == 0) {
        /* both sides said goodbye, or nghttp2 ended the session on a
         * protocol error (its GOAWAY is out): the streams end with it */
        h2_conn_fail(c, "the HTTP/2 session ended");
        return;
    }
    /* sending closes streams too (an RST nghttp2 queued on a stream error,
     * a request refused after a GOAWAY): their calls end now */
    h2_process_ended(c);
}

/* The calls nghttp2's callbacks ended, finished now that it has returned. */
static void h2_process_ended(lean_conn_t *c)
{
    if (c->in_h2)
        return;
    while (c->ended != NULL) {
        lean_call_t *lc = c->ended;
        c->ended = lc->next_ended;
        lc->next_ended = NULL;
        lc->end_queued = false;
        yr_upstream_call_t *call = lc->call;
        if (call->done)
            continue;
        if (lc->refused) {
            lc->refused = false;
            lc->retried = true;
            call->up->stats.stale_retries++;
            h2_detach(call);
            call_connect(call);
            continue;
        }
        finish(call, lc->end_err);
    }
}

static void h2_read(lean_conn_t *c)
{
    char *buf = c->l->rbuf;
    for (;;) {
        const char *why;
        char eb[160];
        ssize_t n = conn_recv(c, buf, RBUF_SIZE, &why, eb, sizeof(eb));
        if (n == 0)
            break;
        if (n < 0) {
            h2_conn_fail(c, why);
            return;
        }
        c->reads++;
        c->in_h2 = true;
        ssize_t r = nghttp2_session_mem_recv(c->h2, (const uint8_t *)buf, (size_t)n);
        c->in_h2 = false;
        h2_process_ended(c);
        if (r < 0) {
            snprintf(eb, sizeof(eb), "HTTP/2 framing layer: %s", nghttp2_strerror((int)r));
            h2_conn_fail(c, eb);
            return;
        }
        if (c->closing)
            return;
        if (conn_drained(c, (size_t)n))
            break;
    }
    if (c->goaway && c->nstreams == 0) {
        conn_close(c);
        return;
    }
    h2_flush(c);
}

static void h2_poll(lean_conn_t *c, int status, int events)
{
    if (status < 0) { /* an error on the socket (a reset): reading tells which */
        c->events = 0;
        events |= UV_READABLE;
    }
    if (events & UV_WRITABLE) {
        h2_flush(c);
        if (c->closing)
            return;
    }
    if ((events & UV_READABLE) || c->read_wants_write)
        h2_read(c);
}

/* The connection broke: its streams end, except those that never got a
 * byte on a reused connection (sent again once, as over HTTP/1.1) and those
 * read to their end that the owner holds paused. */
static void h2_conn_fail(lean_conn_t *c, const char *why)
{
    if (c->closing)
        return;
    c->goaway = true;
    h2_unlink(c);
    while (c->streams != NULL) {
        lean_call_t *lc = c->streams;
        yr_upstream_call_t *call = lc->call;
        link_drop(&c->streams, lc);
        c->nstreams--;
        h2_unend(c, lc);
        lc->conn = NULL;
        lc->sid = 0;
        if (call->done || lc->complete)
            continue; /* a complete one stays lc->h2: h2_resume ends it */
        lc->h2 = false;
        /* sent again only when the server said nothing at all since the
         * request went out on a reused connection (curl's rule for a dead
         * kept-alive one); anything read may mean it was processed */
        if (lc->reused && !lc->got_bytes && !lc->retried && !call->head_done &&
            c->reads == lc->reads_at) {
            lc->retried = true;
            call->up->stats.stale_retries++;
            call_connect(call);
            continue;
        }
        call_broken(call, why);
    }
    conn_close(c);
}

/* A paused stream goes on: the bytes kept for it, then its window opens. */
static void h2_resume(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    lean_conn_t *c = lc->conn;
    size_t n = lc->pend_body;
    if (n > 0) {
        int rc = deliver(call, lc->pend, n);
        if (rc < 0) {
            finish(call, lc->err);
            return;
        }
        if (rc > 0)
            return; /* paused again on the same bytes */
        lc->pend_body = 0;
        if (c != NULL && !c->closing)
            h2_consume(c->h2, lc->sid, n);
    }
    if (lc->complete) {
        finish(call, YR_UP_OK);
        return;
    }
    if (c != NULL)
        h2_flush(c);
}

/* ---- URLs, hosts, the request head ------------------------------------------- */

typedef struct {
    bool tls;
    bool ip;
    char name[256];
    uint16_t port;
    bool default_port;
    const char *path; /* from the first '/' or '?' (may be "") */
} url_t;

/* Accepts http(s)://host[:port][/path][?query] with a plain host name, an
 * IPv4 address or a bracketed IPv6 one, and nothing the lean client would
 * have to interpret (user info, fragments, spaces, bytes beyond ASCII):
 * anything else is left to libcurl. */
static bool url_parse(const char *url, url_t *u)
{
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        u->tls = false;
        p = url + 7;
    } else {
        return false;
    }
    for (const char *q = url; *q != '\0'; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '#')
            return false;
    const char *end = p + strcspn(p, "/?");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL)
        return false;
    const char *host = p, *host_end, *portp = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return false;
        host = p + 1;
        host_end = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return false;
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon != NULL ? colon : end;
        if (colon != NULL)
            portp = colon + 1;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof(u->name))
        return false;
    memcpy(u->name, host, hl);
    u->name[hl] = '\0';
    for (size_t i = 0; i < hl; i++) {
        char ch = u->name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '.' || ch == '_' || (*p == '[' && ch == ':');
        if (!ok)
            return false;
    }
    u->port = u->tls ? 443 : 80;
    u->default_port = true;
    if (portp != NULL) {
        unsigned long v = 0;
        if (portp == end)
            return false;
        for (const char *q = portp; q < end; q++) {
            if (*q < '0' || *q > '9')
                return false;
            v = v * 10 + (unsigned long)(*q - '0');
            if (v > 65535)
                return false;
        }
        if (v == 0)
            return false;
        u->default_port = v == (u->tls ? 443u : 80u);
        u->port = (uint16_t)v;
    }
    unsigned char tmp[16];
    u->ip = *p == '[' ? inet_pton(AF_INET6, u->name, tmp) == 1
                      : inet_pton(AF_INET, u->name, tmp) == 1;
    if (*p == '[' && !u->ip)
        return false;
    u->path = end;
    return true;
}

static void host_free(lean_host_t *h)
{
    if (h->session != NULL)
        SSL_SESSION_free(h->session);
    if (h->ctx != NULL)
        SSL_CTX_free(h->ctx);
    free(h->name);
    free(h->ca_file);
    free(h->host_hdr);
    free(h);
}

static lean_host_t *host_get(yr_lean_t *l, const url_t *u, const char *ca_file, bool h2)
{
    bool h2_ok = u->tls && h2, h2c = !u->tls && h2;
    for (lean_host_t *h = l->hosts; h != NULL; h = h->next) {
        if (h->tls == u->tls && h->port == u->port && h->h2_ok == h2_ok && h->h2c == h2c &&
            strcasecmp(h->name, u->name) == 0 &&
            (!h->tls || (h->ca_file == NULL ? ca_file == NULL
                                            : ca_file != NULL && strcmp(h->ca_file, ca_file) == 0)))
            return h;
    }
    lean_host_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->tls = u->tls;
    h->h2_ok = h2_ok;
    h->h2c = h2c;
    h->ip = u->ip;
    h->port = u->port;
    h->name = strdup(u->name);
    h->ca_file = ca_file != NULL && u->tls ? strdup(ca_file) : NULL;
    bool v6 = strchr(u->name, ':') != NULL;
    char hdr[320];
    int n = u->default_port ? snprintf(hdr, sizeof(hdr), "Host: %s%s%s\r\n", v6 ? "[" : "",
                                       u->name, v6 ? "]" : "")
                            : snprintf(hdr, sizeof(hdr), "Host: %s%s%s:%u\r\n", v6 ? "[" : "",
                                       u->name, v6 ? "]" : "", (unsigned)u->port);
    if (h->ip) { /* an address literal is its own resolution, forever */
        if (v6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&h->addrs[0];
            a->sin6_family = AF_INET6;
            a->sin6_port = htons(u->port);
            inet_pton(AF_INET6, u->name, &a->sin6_addr);
            h->addr_lens[0] = sizeof(*a);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&h->addrs[0];
            a->sin_family = AF_INET;
            a->sin_port = htons(u->port);
            inet_pton(AF_INET, u->name, &a->sin_addr);
            h->addr_lens[0] = sizeof(*a);
        }
        h->naddrs = 1;
    }
    h->host_hdr = strdup(hdr);
    h->host_hdr_len = (size_t)n;
    if (h->name == NULL || h->host_hdr == NULL || (ca_file != NULL && u->tls && h->ca_file == NULL)) {
        host_free(h);
        return NULL;
    }
    h->next = l->hosts;
    l->hosts = h;
    return h;
}

/* A caller's header line as libcurl would send it: "Name:" with nothing
 * after the colon is not sent (curl: "remove an internal header"), "Name;"
 * is sent with an empty value. Returns the bytes it takes (0: none). */
static size_t header_line(const char *line, char *out, bool *is_host)
{
    size_t n = strlen(line);
    const char *colon = memchr(line, ':', n);
    *is_host = false;
    if (colon == NULL) {
        if (n > 0 && line[n - 1] == ';') {
            if (out != NULL) {
                memcpy(out, line, n - 1);
                memcpy(out + n - 1, ":\r\n", 3);
            }
            return n + 2;
        }
        return 0;
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0')
        return 0;
    *is_host = colon - line == 4 && strncasecmp(line, "host", 4) == 0;
    if (out != NULL) {
        memcpy(out, line, n);
        memcpy(out + n, "\r\n", 2);
    }
    return n + 2;
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        if (strncasecmp(headers[i], name, k) == 0 && headers[i][k] == ':')
            return true;
    return false;
}

/* Bytes of the request head (out == NULL) or writes it. */
static size_t head_build(char *out, const yr_upstream_req_t *req, const url_t *u,
                         const lean_host_t *h)
{
    size_t n = 0;
#define PUT(p, len)                                                                                \
    do {                                                                                           \
        if (out != NULL)                                                                           \
            memcpy(out + n, (p), (len));                                                           \
        n += (len);                                                                                \
    } while (0)
    const char *method = req->get ? "GET " : "POST ";
    PUT(method, strlen(method));
    if (u->path[0] != '/')
        PUT("/", 1);
    PUT(u->path, strlen(u->path));
    PUT(" HTTP/1.1\r\n", 11);
    bool own_host = false;
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        bool is_host;
        size_t k = header_line(req->headers[i], out != NULL ? out + n : NULL, &is_host);
        n += k;
        own_host |= is_host && k > 0;
    }
    if (!own_host)
        PUT(h->host_hdr, h->host_hdr_len);
    if (!has_header(req->headers, "accept"))
        PUT("Accept: */*\r\n", 13);
    if (!req->get) {
        char cl[40];
        int k = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", req->body_len);
        PUT(cl, (size_t)k);
    }
    PUT("\r\n", 2);
#undef PUT
    return n;
}

/* ---- the interface ------------------------------------------------------------ */

static yr_lean_t *lean_get(yr_upstream_t *up)
{
    if (up->lean != NULL)
        return up->lean;
    yr_lean_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->up = up;
    uv_idle_init(up->loop, &l->resume_idle);
    l->resume_idle.data = l;
    l->idle_inited = true;
    up->lean = l;
    return l;
}

/* Whether scheme is one of the comma-separated names in list (curl's
 * CURLOPT_PROTOCOLS_STR syntax; "http" must not match "https"). */
static bool proto_listed(const char *list, const char *scheme)
{
    size_t n = strlen(scheme);
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && strncasecmp(p, scheme, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

int yr_lean_try_start(yr_upstream_t *up, const yr_upstream_req_t *req,
                      const yr_upstream_cbs_t *cbs, void *data, yr_upstream_call_t **out)
{
    url_t u;
    if (req->opensocket != NULL || req->max_redirects > 0 || !url_parse(req->url, &u))
        return 0;
    if (req->protocols != NULL && !proto_listed(req->protocols, u.tls ? "https" : "http"))
        return 0; /* let curl refuse it in its words */
    yr_lean_t *l = lean_get(up);
    if (l == NULL)
        return -ENOMEM;
    lean_host_t *h = host_get(l, &u, req->ca_file, u.tls ? req->http2 : req->h2c);
    if (h == NULL)
        return -ENOMEM;
    size_t head_len = head_build(NULL, req, &u, h);
    bool copy_body = h->tls && !req->get && req->body_len <= TLS_COPY_MAX;
    size_t extra = sizeof(lean_call_t) + head_len + (copy_body ? req->body_len : 0);
    yr_upstream_call_t *call = calloc(1, sizeof(*call) + extra);
    if (call == NULL)
        return -ENOMEM;
    lean_call_t *lc = (lean_call_t *)(void *)call->mem;
    char *head = call->mem + sizeof(*lc);
    call->up = up;
    call->cbs = cbs;
    call->data = data;
    call->lean = lc;
    call->idle_ms = req->idle_timeout_ms;
    lc->call = call;
    lc->host = h;
    head_build(head, req, &u, h);
    lc->head = head;
    lc->head_len = head_len;
    lc->hdr_only = head_len;
    if (!req->get) {
        lc->body = req->body;
        lc->body_len = req->body_len;
    }
    if (copy_body && lc->body_len > 0) {
        memcpy(head + head_len, lc->body, lc->body_len);
        lc->head_len += lc->body_len;
        lc->body_in_head = true;
    }
    lc->wlen = lc->head_len + (lc->body_in_head ? 0 : lc->body_len);
    lc->max_body = req->max_body;
    lc->connect_ms = req->connect_timeout_ms;
    lc->total_ms = req->timeout_ms;
    uint64_t now = now_ms(up);
    if (req->first_byte_timeout_ms)
        lc->first_until = now + req->first_byte_timeout_ms;
    if (req->timeout_ms)
        lc->total_until = now + req->timeout_ms;
    uv_timer_init(up->loop, &call->fb_timer);
    call->fb_timer.data = call;
    up->active++;
    up->stats.lean_calls++;
    arm_timer(call);
    *out = call;
    /* Nothing reaches the owner before it has the call: a failure found now
     * (a refused connect, a bad CA file) is reported from the next turn. */
    lc->starting = true;
    call_connect(call);
    lc->starting = false;
    return 1;
}

/* A paused call goes on: the piece it paused on, then the bytes after it. */
static void resume_now(yr_upstream_call_t *call)
{
    lean_call_t *lc = call->lean;
    lean_conn_t *c = lc->conn;
    if (!call->done && lc->h2) {
        h2_resume(call);
        return;
    }
    if (call->done || c == NULL)
        return;
    char *keep = lc->pend;
    size_t body = lc->pend_body, raw = lc->pend_raw;
    lc->pend = NULL;
    lc->pend_body = lc->pend_raw = 0;
    if (body > 0) {
        int rc = deliver(call, keep, body);
        if (rc < 0) {
            free(keep);
            finish(call, lc->err);
            return;
        }
        if (rc > 0) { /* paused again on the same piece */
            lc->pend = keep;
            lc->pend_body = body;
            lc->pend_raw = raw;
            return;
        }
    }
    http_parser_pause(&c->parser, 0);
    if (raw > 0)
        feed(c, keep + body, raw); /* copies what it keeps if it pauses again */
    free(keep);
    if (call->done || call->paused || c->call != call || c->closing)
        return;
    conn_want(c, call_wants(c));
    if (c->ssl != NULL && SSL_has_pending(c->ssl))
        conn_read(c); /* decrypted bytes the poll will not announce */
}

static void on_resume_idle(uv_idle_t *hd)
{
    yr_lean_t *l = hd->data;
    /* only what was queued before this turn: a resume queued by a callback
     * run here waits for the next turn */
    size_t n = 0;
    for (lean_call_t *lc = l->resumes; lc != NULL; lc = lc->next_resume)
        n++;
    while (n-- > 0 && l->resumes != NULL) {
        lean_call_t *lc = l->resumes;
        resume_unqueue(l, lc);
        yr_upstream_call_t *call = lc->call;
        if (lc->deferred) {
            lc->deferred = false;
            finish(call, lc->deferred_err);
        } else if (lc->reconnect) { /* its probe went away, or spoke HTTP/1.1 */
            lc->reconnect = false;
            call_connect(call);
        } else {
            resume_now(call);
        }
    }
}

void yr_lean_resume(yr_upstream_call_t *call)
{
    if (call->done || call->up->lean == NULL)
        return;
    call->paused = false;
    call->last_data = now_ms(call->up);
    resume_queue(call->up->lean, call->lean);
}

void yr_lean_cancel(yr_upstream_call_t *call)
{
    call->done = true;
    call_drop_conn(call, false);
    call_release(call);
}

yr_str_t yr_lean_header(const yr_upstream_call_t *call, const char *name)
{
    const lean_call_t *lc = call->lean;
    const char *n;
    yr_str_t v;
    if (!call->head_done)
        return (yr_str_t){"", 0};
    for (size_t off = 0; (off = hdr_next(lc, off, &n, &v)) != 0;)
        if (strcasecmp(n, name) == 0)
            return yr_str_trim(v);
    return (yr_str_t){"", 0};
}

static void on_lean_closed(uv_handle_t *hd)
{
    yr_lean_t *l = hd->data;
    if (l->h2cbs != NULL)
        nghttp2_session_callbacks_del(l->h2cbs);
    nghttp2_option_del(l->h2opt);
    free(l);
}

void yr_lean_close(yr_upstream_t *up)
{
    yr_lean_t *l = up->lean;
    if (l == NULL)
        return;
    up->lean = NULL;
    while (l->conns != NULL) {
        lean_conn_t *c = l->conns;
        if (c->call != NULL) {
            c->call->lean->conn = NULL;
            c->call = NULL;
        }
        for (lean_call_t *lc = c->streams; lc != NULL; lc = lc->next_link)
            lc->conn = NULL;
        for (lean_call_t *lc = c->waiters; lc != NULL; lc = lc->next_link) {
            lc->conn = NULL;
            lc->waiting = false;
        }
        c->streams = c->waiters = NULL;
        c->nstreams = c->nwait = 0;
        conn_close(c);
    }
    while (l->hosts != NULL) {
        lean_host_t *h = l->hosts;
        l->hosts = h->next;
        host_free(h);
    }
    uv_idle_stop(&l->resume_idle);
    uv_close((uv_handle_t *)&l->resume_idle, on_lean_closed);
}
