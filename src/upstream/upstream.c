/* libcurl multi on libuv. The pattern is curl's multi-uv example plus the
 * pitfalls listed in STACK.md: a 0 ms timer is started (never a re-entrant
 * socket_action), transfers are removed only outside curl callbacks.
 *
 * One loop registration per connection, not per transfer: curl says
 * CURL_POLL_REMOVE when a transfer ends, and re-adds the same socket when the
 * next transfer reuses the connection. Closing the poll handle there cost an
 * epoll_ctl DEL and an ADD per request (bench/profile measured 3.6 epoll_ctl
 * per request). So a socket's uv_poll lives until curl closes the socket
 * (CURLOPT_CLOSESOCKETFUNCTION): REMOVE only marks it unwanted, its epoll
 * mask stays; an event on an unwanted socket (the server closed an idle
 * connection) stops the poll then, so a dead idle socket cannot spin the
 * loop. The sockets are found by descriptor in up->socks. */
#include "upstream/upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "upstream/upstream_int.h"

/* libcurl looks for a reusable connection by walking every connection it
 * has to the host, for every new transfer: with thousands of concurrent
 * streams to one provider that walk is quadratic (the bench measured
 * closed-loop throughput falling 35k -> 4.3k req/s from 50 to 4,000
 * connections). Several multi handles, each with its own connection cache,
 * keep the walks short; transfers fill shard 0 first, so at low load every
 * transfer still reuses the same warm connections. */

/* The variables libcurl looks at for a proxy (it ignores HTTP_PROXY in
 * capitals). Checked once: with none set, transfers say "no proxy" and
 * curl skips its getenv walk on every transfer. */
static bool proxy_env_set(void)
{
    static const char *const vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY",
                                       "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0')
            return true;
    }
    return false;
}

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    shard_t *sh;
    int wanted;  /* UV_READABLE|UV_WRITABLE curl asked for; 0 after REMOVE */
    int polling; /* the events the poll handle is started with (0: stopped) */
    bool inited; /* poll is initialised (a connection socket gets its ctx
                  * when opened, its poll when curl first wants events) */
    bool conn;   /* opened by on_curl_opensocket, closed by on_curl_closesocket;
                  * other sockets (the resolver's wake-up pipe, which curl
                  * closes without the callback) keep the per-transfer rule */
};

static void check_done(shard_t *sh);

/* ---- event loop glue ----------------------------------------------------- */

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *ctx = h->data;
    shard_t *sh = ctx->sh;
    if (ctx->wanted == 0) {
        /* Idle between transfers and the peer spoke (most likely it closed):
         * stop watching, or a level-triggered EOF would wake every turn.
         * curl's liveness check finds out when it next picks the socket. */
        uv_poll_stop(&ctx->poll);
        ctx->polling = 0;
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(sh->multi, ctx->fd, flags, &running);
    check_done(sh);
}

static sock_ctx_t *sock_find(yr_upstream_t *up, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < up->nsocks ? up->socks[fd] : NULL;
}

static int sock_put(yr_upstream_t *up, curl_socket_t fd, sock_ctx_t *ctx)
{
    if ((size_t)fd >= up->nsocks) {
        size_t n = up->nsocks ? up->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        sock_ctx_t **ns = realloc(up->socks, n * sizeof(*ns));
        if (ns == NULL)
            return -1;
        memset(ns + up->nsocks, 0, (n - up->nsocks) * sizeof(*ns));
        up->socks = ns;
        up->nsocks = n;
    }
    up->socks[fd] = ctx;
    return 0;
}

/* curl closes a socket: the poll handle goes first (uv_close removes the
 * descriptor from epoll at once), so a descriptor number the kernel hands
 * out again never meets a stale watcher. */
static int on_curl_closesocket(void *userp, curl_socket_t fd)
{
    yr_upstream_t *up = userp;
    sock_ctx_t *ctx = sock_find(up, fd);
    if (ctx != NULL) {
        up->socks[fd] = NULL;
        if (ctx->inited)
            uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
        else
            free(ctx);
    }
    return close(fd);
}

/* Every connection socket of a call is made here (through the call's guard
 * when it has one), so that its ctx exists before curl registers it. */
static curl_socket_t on_curl_opensocket(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *addr)
{
    yr_upstream_call_t *call = clientp;
    yr_upstream_t *up = call->up;
    curl_socket_t fd = call->guard != NULL
                           ? call->guard(call->guard_data, purpose, addr)
                           : socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd == CURL_SOCKET_BAD)
        return fd;
    sock_ctx_t *ctx = sock_find(up, fd);
    if (ctx != NULL) { /* a descriptor we never saw closed: drop the old watcher */
        up->socks[fd] = NULL;
        if (ctx->inited)
            uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
        else
            free(ctx);
    }
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL || sock_put(up, fd, ctx) < 0) {
        free(ctx);
        close(fd);
        return CURL_SOCKET_BAD;
    }
    ctx->fd = fd;
    ctx->conn = true;
    return fd;
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    (void)socketp;
    shard_t *sh = userp;
    yr_upstream_t *up = sh->up;
    sock_ctx_t *ctx = sock_find(up, fd);
    if (what == CURL_POLL_REMOVE) {
        if (ctx == NULL)
            return 0;
        if (ctx->conn) {
            ctx->wanted = 0; /* the epoll mask stays until an event or the close */
        } else {
            up->socks[fd] = NULL;
            if (ctx->inited)
                uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
            else
                free(ctx);
        }
        return 0;
    }
    if (ctx == NULL) {
        ctx = calloc(1, sizeof(*ctx));
        if (ctx == NULL)
            return -1;
        ctx->fd = fd;
        if (sock_put(up, fd, ctx) < 0) {
            free(ctx);
            return -1;
        }
    }
    if (!ctx->inited) {
        if (uv_poll_init_socket(up->loop, &ctx->poll, fd) < 0) {
            if (!ctx->conn) { /* a connection's ctx stays: its close frees it */
                up->socks[fd] = NULL;
                free(ctx);
            }
            return -1;
        }
        ctx->poll.data = ctx;
        ctx->inited = true;
    }
    ctx->sh = sh; /* a connection stays in its shard's cache; set it anyway */
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    ctx->wanted = events;
    if (events != ctx->polling) {
        uv_poll_start(&ctx->poll, events, on_poll);
        ctx->polling = events;
    }
    return 0;
}

static void on_multi_timer(uv_timer_t *t)
{
    shard_t *sh = t->data;
    int running;
    curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(sh);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    shard_t *sh = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&sh->timer);
    else
        uv_timer_start(&sh->timer, on_multi_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_up_timer_closed(uv_handle_t *h)
{
    shard_t *sh = h->data;
    yr_upstream_t *up = sh->up;
    if (--up->timers_open == 0) {
        free(up->socks);
        free(up);
    }
}

int yr_upstream_init(uv_loop_t *loop, yr_upstream_t **out)
{
    yr_upstream_t *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return -ENOMEM;
    up->loop = loop;
    up->env_proxy = proxy_env_set();
    for (size_t i = 0; i < SHARDS; i++) {
        shard_t *sh = &up->shards[i];
        sh->up = up;
        sh->multi = curl_multi_init();
        if (sh->multi == NULL) {
            for (size_t j = 0; j < i; j++)
                curl_multi_cleanup(up->shards[j].multi);
            free(up);
            return -ENOMEM;
        }
        curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
        curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
        curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
        /* Keep enough idle keep-alive connections for a busy worker. */
        curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, (long)SHARD_SOFT_MAX * 2);
        curl_multi_setopt(sh->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    }
    for (size_t i = 0; i < SHARDS; i++) {
        uv_timer_init(loop, &up->shards[i].timer);
        up->shards[i].timer.data = &up->shards[i];
        up->timers_open++;
    }
    *out = up;
    return 0;
}

void yr_upstream_close(yr_upstream_t *up)
{
    up->closing = true;
    yr_lean_close(up);
    for (size_t i = 0; i < up->neasy; i++)
        curl_easy_cleanup(up->easy_cache[i]);
    up->neasy = 0;
    /* Idle connections close here; their sockets get CURL_POLL_REMOVE. */
    for (size_t i = 0; i < SHARDS; i++) {
        curl_multi_cleanup(up->shards[i].multi);
        up->shards[i].multi = NULL;
    }
    /* Every easy handle has left the share by now (call_release). */
    if (up->guarded_conns != NULL)
        curl_share_cleanup(up->guarded_conns);
    up->guarded_conns = NULL;
    /* curl closed its sockets above; anything left is a watcher of ours. */
    for (size_t fd = 0; fd < up->nsocks; fd++) {
        sock_ctx_t *ctx = up->socks[fd];
        if (ctx == NULL)
            continue;
        up->socks[fd] = NULL;
        if (ctx->inited)
            uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
        else
            free(ctx);
    }
    for (size_t i = 0; i < SHARDS; i++) {
        uv_timer_stop(&up->shards[i].timer);
        uv_close((uv_handle_t *)&up->shards[i].timer, on_up_timer_closed);
    }
}

/* Shard 0 until it holds SHARD_SOFT_MAX transfers, then the next, ...;
 * when all are that busy, the least busy. Guarded transfers (their own
 * connection cache in a share) always use shard 0. */
static shard_t *pick_shard(yr_upstream_t *up, bool guarded)
{
    if (guarded)
        return &up->shards[0];
    shard_t *best = &up->shards[0];
    for (size_t i = 0; i < SHARDS; i++) {
        if (up->shards[i].active < SHARD_SOFT_MAX)
            return &up->shards[i];
        if (up->shards[i].active < best->active)
            best = &up->shards[i];
    }
    return best;
}

size_t yr_upstream_active(const yr_upstream_t *up)
{
    return up->active;
}

uv_loop_t *yr_upstream_loop(const yr_upstream_t *up)
{
    return up->loop;
}

/* ---- calls ----------------------------------------------------------------- */

static void on_call_timer_closed(uv_handle_t *h)
{
    yr_upstream_call_t *call = h->data;
    free(call);
}

/* Detaches the easy handle and frees the call (the timer close completes the
 * free on the next loop turn). Never from inside a curl callback. */
static void call_release(yr_upstream_call_t *call)
{
    yr_upstream_t *up = call->up;
    if (call->easy != NULL) {
        curl_multi_remove_handle(call->sh->multi, call->easy);
        /* curl_easy_reset keeps the share: leave it here, or the next call
         * on this handle would use the guarded connections. */
        if (call->guarded)
            curl_easy_setopt(call->easy, CURLOPT_SHARE, NULL);
        if (up->neasy < EASY_CACHE_MAX && !up->closing) {
            curl_easy_reset(call->easy);
            up->easy_cache[up->neasy++] = call->easy;
        } else {
            curl_easy_cleanup(call->easy);
        }
        call->easy = NULL;
        up->active--;
        call->sh->active--;
    }
    call->headers = NULL; /* part of the call's allocation */
    uv_timer_stop(&call->fb_timer);
    uv_close((uv_handle_t *)&call->fb_timer, on_call_timer_closed);
}

static void call_finish(yr_upstream_call_t *call, enum yr_up_error err)
{
    if (call->done)
        return;
    call->done = true;
    curl_multi_remove_handle(call->sh->multi, call->easy);
    call->cbs->on_done(call, err, call->data);
    call_release(call);
}

static enum yr_up_error classify(yr_upstream_call_t *call, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return YR_UP_OK;
    case CURLE_WRITE_ERROR: return YR_UP_EABORTED;
    case CURLE_FILESIZE_EXCEEDED: return YR_UP_EABORTED; /* over req->max_body */
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return YR_UP_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return call->head_done ? YR_UP_ETRANSFER : YR_UP_ETIMEDOUT;
    default:
        return call->head_done ? YR_UP_ETRANSFER : YR_UP_ECONNECT;
    }
}

static void check_done(shard_t *sh)
{
    CURLMsg *msg;
    int left;
    while (sh->multi != NULL && (msg = curl_multi_info_read(sh->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        yr_upstream_call_t *call = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        CURLcode rc = msg->data.result;
        if (call == NULL)
            continue;
        if (rc != CURLE_OK && call->errbuf[0] == '\0') {
            /* curl does not always word a failure (a response head over its
             * limits ends with an empty buffer): the reason is never empty. */
            if (!call->head_done && call->status > 0)
                snprintf(call->errbuf, sizeof(call->errbuf),
                         "the response head is too large or malformed (curl: %s)",
                         curl_easy_strerror(rc));
            else
                snprintf(call->errbuf, sizeof(call->errbuf), "%s", curl_easy_strerror(rc));
        }
        call_finish(call, classify(call, rc));
    }
}

static void on_first_byte_timeout(uv_timer_t *t)
{
    yr_upstream_call_t *call = t->data;
    snprintf(call->errbuf, sizeof(call->errbuf), "no response head within the timeout");
    call_finish(call, YR_UP_ETIMEDOUT);
}

/* Between body bytes: re-armed lazily (a write only records the time; the
 * timer, when it fires early, sleeps the rest), so a busy stream costs no
 * timer operation per chunk. A paused call is not idle: the owner holds it. */
static void on_idle_timeout(uv_timer_t *t)
{
    yr_upstream_call_t *call = t->data;
    uint64_t now = uv_now(call->up->loop);
    if (call->paused)
        call->last_data = now;
    uint64_t quiet = now - call->last_data;
    if (quiet < call->idle_ms) {
        uv_timer_start(&call->fb_timer, on_idle_timeout, call->idle_ms - quiet, 0);
        return;
    }
    snprintf(call->errbuf, sizeof(call->errbuf), "no data from the upstream for %u ms",
             (unsigned)call->idle_ms);
    call_finish(call, YR_UP_EIDLE);
}

static void capture(char *dst, size_t cap, size_t *len, const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    *len = n;
}

/* Whether a header line is a routing hint (yr_upstream_has_hints). */
static bool is_hint(const char *p, size_t n)
{
    /* Runs for every header line: the first letter rules most out. */
    const char *prefix;
    switch (p[0] | 0x20) {
    case 'r': prefix = "retry-after-ms:"; break;
    case 'x': prefix = "x-ratelimit-"; break;
    case 'a': prefix = "anthropic-ratelimit-"; break;
    default: return false;
    }
    size_t k = strlen(prefix);
    return n > k && strncasecmp(p, prefix, k) == 0;
}

/* True when a header value has more than blanks and the line end. */
static bool has_value(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
            return true;
    return false;
}

static bool header_is(const char *line, size_t n, const char *name, size_t *vstart)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return false;
    *vstart = k + 1;
    return true;
}

static size_t on_curl_header(char *p, size_t size, size_t nitems, void *userdata)
{
    yr_upstream_call_t *call = userdata;
    size_t n = size * nitems;
    size_t v;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line (also after a 1xx): parse "HTTP/x[.y] NNN". */
        const char *sp = memchr(p, ' ', n);
        call->status = 0;
        if (sp != NULL && (size_t)(sp - p) + 4 <= n) {
            int s = 0;
            for (int i = 1; i <= 3; i++)
                s = s * 10 + (sp[i] - '0');
            call->status = s;
        }
        call->retry_after_len = call->content_type_len = 0;
        call->has_hints = false;
        call->location_seen = false;
    } else if (n <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        /* With redirects followed, curl reads a 3xx with a Location and goes
         * on to the next URL: only the last response is the answer. */
        bool redirect =
            call->follow && call->status >= 300 && call->status < 400 && call->location_seen;
        if (call->status >= 200 && !call->head_done && !redirect) {
            call->head_done = true;
            uv_timer_stop(&call->fb_timer);
            if (call->idle_ms > 0) {
                call->last_data = uv_now(call->up->loop);
                uv_timer_start(&call->fb_timer, on_idle_timeout, call->idle_ms, 0);
            }
            if (call->cbs->on_head != NULL && call->cbs->on_head(call, call->data) != 0)
                return 0;
        }
    } else if (header_is(p, n, "retry-after", &v)) {
        capture(call->retry_after, sizeof(call->retry_after), &call->retry_after_len, p + v,
                n - v);
    } else if (header_is(p, n, "content-type", &v)) {
        capture(call->content_type, sizeof(call->content_type), &call->content_type_len, p + v,
                n - v);
    } else if (header_is(p, n, "location", &v)) {
        call->location_seen = has_value(p + v, n - v);
    } else if (is_hint(p, n)) {
        call->has_hints = true;
    }
    return n;
}

static size_t on_curl_write(char *p, size_t size, size_t nmemb, void *userdata)
{
    yr_upstream_call_t *call = userdata;
    size_t n = size * nmemb;
    if (call->idle_ms > 0)
        call->last_data = uv_now(call->up->loop);
    int rc = call->cbs->on_data(call, p, n, call->data);
    if (rc == YR_UP_PAUSE) {
        call->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    return rc == YR_UP_CONTINUE ? n : 0;
}

static CURL *easy_get(yr_upstream_t *up)
{
    if (up->neasy > 0)
        return up->easy_cache[--up->neasy];
    return curl_easy_init();
}

/* A guarded call sees only connections its guard let through: none from a
 * proxy (the guard would see the proxy's address), none reused from another
 * call (no connect, so no guard). Guarded calls share a connection cache of
 * their own, apart from the multi's, because curl may reuse a cached
 * connection when it follows a redirect even with CURLOPT_FRESH_CONNECT; and
 * since those connections are never kept (HTTP/1.1, FORBID_REUSE), that
 * cache holds only connections in use by one call. */
static int set_guard(yr_upstream_t *up, CURL *e, const yr_upstream_req_t *req)
{
    if (up->guarded_conns == NULL) {
        CURLSH *sh = curl_share_init();
        if (sh == NULL)
            return -ENOMEM;
        if (curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
            curl_share_cleanup(sh);
            return -ENOTSUP;
        }
        up->guarded_conns = sh;
    }
    if (curl_easy_setopt(e, CURLOPT_SHARE, up->guarded_conns) != CURLE_OK)
        return -ENOMEM;
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* "" ignores the *_proxy environment too */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 0L);
    return 0;
}

/* Every option a call depends on is set here: a cached handle was reset
 * (curl_easy_reset), so nothing leaks from the previous call but the share,
 * which call_release removes. */
static int set_options(yr_upstream_call_t *call, const yr_upstream_req_t *req)
{
    CURL *e = call->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    if (req->get) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_curl_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, call);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_curl_closesocket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, call->up);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     (long)(req->http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
    if (!call->up->env_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* none configured: skip the lookup */
    const char *protocols = req->protocols != NULL ? req->protocols : "http,https";
    if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocols) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, protocols) != CURLE_OK)
        return -EINVAL;
    if (req->max_redirects > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, req->max_redirects);
        call->follow = true;
    }
    if (req->max_body > 0) {
        /* curl_off_t is a signed 64-bit integer on every platform we build on. */
        curl_off_t max =
            req->max_body > (uint64_t)INT64_MAX ? (curl_off_t)INT64_MAX : (curl_off_t)req->max_body;
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, max);
    }
    /* curl's receive buffer is allocated per transfer; 16 KB by default made
     * it the largest per-stream cost (SSE events are a few hundred bytes). */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (req->ca_file != NULL && curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file) != CURLE_OK)
        return -ENOMEM;
    if (req->timeout_ms)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->opensocket != NULL) {
        call->guard = req->opensocket;
        call->guard_data = req->opensocket_data;
        int rc = set_guard(call->up, e, req);
        if (rc < 0)
            return rc;
        call->guarded = true;
    }
    return 0;
}

/* The header list lives in the call's own allocation (nodes, then the
 * strings): curl reads CURLOPT_HTTPHEADER without owning it, and
 * curl_slist_append cost two mallocs per header per request. */
static struct curl_slist *headers_build(char *mem, const char *const *headers, size_t n)
{
    struct curl_slist *nodes = (struct curl_slist *)mem;
    char *str = mem + (n + 1) * sizeof(*nodes);
    static char expect[] = "Expect:"; /* no 100-continue round trip */
    nodes[0] = (struct curl_slist){.data = expect, .next = n > 0 ? &nodes[1] : NULL};
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(headers[i]) + 1;
        memcpy(str, headers[i], len);
        nodes[i + 1] = (struct curl_slist){.data = str, .next = i + 1 < n ? &nodes[i + 2] : NULL};
        str += len;
    }
    return nodes;
}

int yr_upstream_start(yr_upstream_t *up, const yr_upstream_req_t *req,
                      const yr_upstream_cbs_t *cbs, void *data, yr_upstream_call_t **out)
{
    if (up->engine == YR_UP_ENGINE_LEAN && !up->env_proxy) {
        int lrc = yr_lean_try_start(up, req, cbs, data, out);
        if (lrc != 0)
            return lrc < 0 ? lrc : 0;
    }
    size_t nh = 0, hbytes = 0;
    for (; req->headers != NULL && req->headers[nh] != NULL; nh++)
        hbytes += strlen(req->headers[nh]) + 1;
    /* the nodes stay aligned: the call struct ends on a pointer boundary */
    size_t extra = (nh + 1) * sizeof(struct curl_slist) + hbytes;
    yr_upstream_call_t *call = calloc(1, sizeof(*call) + extra);
    if (call == NULL)
        return -ENOMEM;
    call->up = up;
    call->cbs = cbs;
    call->data = data;
    call->idle_ms = req->idle_timeout_ms;
    call->easy = easy_get(up);
    if (call->easy == NULL) {
        free(call);
        return -ENOMEM;
    }
    call->headers = headers_build(call->mem, req->headers, nh);
    CURL *e = call->easy;
    int rc = set_options(call, req);
    if (rc < 0) {
        curl_easy_cleanup(e); /* also leaves the share */
        free(call);
        return rc;
    }
    uv_timer_init(up->loop, &call->fb_timer);
    call->fb_timer.data = call;
    call->sh = pick_shard(up, call->guarded);
    if (curl_multi_add_handle(call->sh->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        call->easy = NULL;
        uv_close((uv_handle_t *)&call->fb_timer, on_call_timer_closed);
        return -ENOMEM;
    }
    up->active++;
    up->stats.curl_calls++;
    call->sh->active++;
    if (req->first_byte_timeout_ms)
        uv_timer_start(&call->fb_timer, on_first_byte_timeout, req->first_byte_timeout_ms, 0);
    *out = call;
    return 0;
}

void yr_upstream_cancel(yr_upstream_call_t *call)
{
    if (call == NULL || call->done)
        return;
    if (call->lean != NULL) {
        yr_lean_cancel(call);
        return;
    }
    call->done = true;
    call_release(call);
}

void yr_upstream_resume(yr_upstream_call_t *call)
{
    if (call->done || !call->paused)
        return;
    if (call->lean != NULL) {
        yr_lean_resume(call);
        return;
    }
    call->paused = false;
    curl_easy_pause(call->easy, CURLPAUSE_CONT);
}

bool yr_upstream_paused(const yr_upstream_call_t *call)
{
    return call->paused;
}

int yr_upstream_status(const yr_upstream_call_t *call)
{
    return call->status;
}

yr_str_t yr_upstream_retry_after(const yr_upstream_call_t *call)
{
    return (yr_str_t){call->retry_after, call->retry_after_len};
}

bool yr_upstream_has_hints(const yr_upstream_call_t *call)
{
    return call->has_hints;
}

yr_str_t yr_upstream_content_type(const yr_upstream_call_t *call)
{
    return (yr_str_t){call->content_type, call->content_type_len};
}

yr_str_t yr_upstream_header(const yr_upstream_call_t *call, const char *name)
{
    /* curl keeps every header of the transfer; request -1 is the final
     * response after redirects, index 0 the first of repeated headers. */
    if (call->lean != NULL)
        return yr_lean_header(call, name);
    struct curl_header *h = NULL;
    if (call->easy == NULL ||
        curl_easy_header(call->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
        return YR_STR_NULL;
    return yr_str(h->value);
}

void yr_upstream_set_engine(yr_upstream_t *up, enum yr_up_engine engine)
{
    up->engine = engine;
}

void yr_upstream_get_stats(const yr_upstream_t *up, yr_upstream_stats_t *out)
{
    *out = up->stats;
}

const char *yr_upstream_error_text(const yr_upstream_call_t *call)
{
    return call->errbuf;
}
