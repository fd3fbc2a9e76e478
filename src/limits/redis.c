/* One worker's connection to Redis for shared limits (redis.h): hiredis's
 * async API on the worker's libuv loop, reconnecting once a second while
 * the server is away. */
#include "limits/redis.h"

#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define RECONNECT_MS 1000
#define REPLY_TIMEOUT_MS 500 /* an answer later than this: the connection is treated as broken */
#define WATCH_MS 100

struct yr_redis {
    uv_loop_t *loop;
    redisAsyncContext *ac; /* NULL while disconnected */
    bool ready;            /* connected (and authenticated, db selected) */
    bool closing;
    bool said_down;        /* the outage was logged */
    uv_timer_t retry;
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
    size_t inflight; /* commands sent, replies not yet seen */
    struct pending *head, *tail; /* ... oldest first, for the reply watchdog */
    uv_timer_t watch;
};

typedef struct pending {
    struct pending *prev, *next;
    yr_redis_t *r;
    yr_redis_cb cb;
    void *arg;
    uint64_t sent_ms;
} pending_t;

/* redis://[user:password@]host[:port][/db] */
static int parse_url(yr_redis_t *r, const char *url)
{
    const char *p = strncmp(url, "redis://", 8) == 0 ? url + 8 : NULL;
    if (p == NULL)
        return -EINVAL; /* rediss:// needs hiredis >= 1.0 with TLS; Debian 12 ships 0.14 */
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon != NULL ? colon + 1 : p;
        if (colon != NULL && colon > p) { /* redis://user:password@ (an ACL user) */
            size_t ul = (size_t)(colon - p);
            if (ul >= sizeof(r->user))
                return -EINVAL;
            memcpy(r->user, p, ul);
            r->user[ul] = '\0';
        }
        /* percent-decoded, as in any URL */
        size_t o = 0;
        for (const char *c = pw; c < at; c++) {
            if (o + 1 >= sizeof(r->password))
                return -EINVAL;
            if (*c == '%' && at - c > 2) {
                char hex[3] = {c[1], c[2], 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (*end != '\0')
                    return -EINVAL;
                r->password[o++] = (char)v;
                c += 2;
            } else {
                r->password[o++] = *c;
            }
        }
        r->password[o] = '\0';
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(r->host))
        return -EINVAL;
    memcpy(r->host, p, hl);
    r->host[hl] = '\0';
    p += hl;
    r->port = 6379;
    if (*p == ':') {
        uint64_t port;
        size_t pl = strcspn(p + 1, "/");
        if (yr_str_to_u64((yr_str_t){p + 1, pl}, 65535, &port) != 0 || port == 0)
            return -EINVAL;
        r->port = (int)port;
        p += 1 + pl;
    }
    if (*p == '/' && p[1] != '\0') {
        uint64_t db;
        if (yr_str_to_u64(yr_str(p + 1), 15, &db) != 0)
            return -EINVAL;
        r->db = (int)db;
    }
    return 0;
}

static void connect_now(yr_redis_t *r);
static void on_watch(uv_timer_t *t);

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

static void schedule_retry(yr_redis_t *r)
{
    if (!r->closing)
        uv_timer_start(&r->retry, on_retry, RECONNECT_MS, 0);
}

static void went_down(yr_redis_t *r, const char *why)
{
    r->ready = false;
    r->ac = NULL;
    if (!r->said_down)
        yr_log_warn("redis %s:%d unavailable (%s): limits are counted per instance until it "
                    "returns",
                    r->host, r->port, why);
    r->said_down = true;
    schedule_retry(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    yr_redis_t *r = ac->data;
    if (r->closing)
        return;
    went_down(r, status == REDIS_OK ? "closed" : ac->errstr);
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    yr_redis_t *r = ac->data;
    redisReply *rep = reply;
    if (r == NULL)
        return;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        yr_log_error("redis %s:%d: %s", r->host, r->port,
                     rep != NULL ? "AUTH or SELECT refused" : "no answer");
        redisAsyncDisconnect(ac);
        return;
    }
    if (priv == NULL)
        return; /* AUTH or SELECT: PING decides */
    if (!r->ready) {
        r->ready = true;
        if (r->said_down)
            yr_log_info("redis %s:%d is back: limits are shared again", r->host, r->port);
        r->said_down = false;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    yr_redis_t *r = ac->data;
    if (status != REDIS_OK) {
        went_down(r, ac->errstr); /* hiredis frees the context after this */
        return;
    }
    /* AUTH and SELECT go first; PING marks the connection ready. */
    if (r->password[0] != '\0' && r->user[0] != '\0')
        redisAsyncCommand(r->ac, on_setup, NULL, "AUTH %s %s", r->user, r->password);
    else if (r->password[0] != '\0')
        redisAsyncCommand(r->ac, on_setup, NULL, "AUTH %s", r->password);
    if (r->db != 0)
        redisAsyncCommand(r->ac, on_setup, NULL, "SELECT %d", r->db);
    redisAsyncCommand(r->ac, on_setup, r, "PING"); /* its answer marks the connection ready */
}

static void connect_now(yr_redis_t *r)
{
    if (r->closing || r->ac != NULL)
        return;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        went_down(r, "cannot connect");
        return;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(r, "cannot attach to the loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
}

int yr_redis_init(uv_loop_t *loop, const char *url, yr_redis_t **out)
{
    yr_redis_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->loop = loop;
    if (parse_url(r, url) < 0) {
        free(r);
        return -EINVAL;
    }
    uv_timer_init(loop, &r->retry);
    r->retry.data = r;
    uv_timer_init(loop, &r->watch);
    r->watch.data = r;
    uv_timer_start(&r->watch, on_watch, WATCH_MS, WATCH_MS);
    uv_unref((uv_handle_t *)&r->watch);
    connect_now(r);
    *out = r;
    return 0;
}

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_retry_closed(uv_handle_t *h)
{
    yr_redis_t *r = h->data;
    uv_close((uv_handle_t *)&r->watch, on_watch_closed);
}

/* A server that died without closing (or a network that dropped it) is
 * noticed by the age of the oldest unanswered command: the context is
 * freed, which answers every pending command with NULL (their callers fall
 * back to local counting), and a reconnect is scheduled. */
static void on_watch(uv_timer_t *t)
{
    yr_redis_t *r = t->data;
    if (r->head == NULL || r->ac == NULL)
        return;
    if (uv_now(r->loop) - r->head->sent_ms < REPLY_TIMEOUT_MS)
        return;
    redisAsyncContext *ac = r->ac;
    if (!r->said_down)
        yr_log_warn("redis %s:%d: no answer within %d ms: reconnecting", r->host, r->port,
                    REPLY_TIMEOUT_MS);
    r->ac = NULL;
    r->ready = false;
    redisAsyncFree(ac); /* answers every pending command with NULL; the disconnect callback
                           logs the outage and schedules the reconnect */
    schedule_retry(r);
}

void yr_redis_close(yr_redis_t *r)
{
    if (r == NULL)
        return;
    r->closing = true;
    r->ready = false;
    uv_timer_stop(&r->retry);
    uv_timer_stop(&r->watch);
    if (r->ac != NULL) {
        /* replies still due run their callbacks with NULL first */
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&r->retry, on_retry_closed);
}

bool yr_redis_ready(const yr_redis_t *r)
{
    return r != NULL && r->ready && r->ac != NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    pending_t *p = priv;
    redisReply *rep = reply;
    yr_redis_t *r = p->r;
    r->inflight--;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        r->tail = p->prev;
    int64_t v[8] = {0};
    size_t n = 0;
    int status = rep == NULL ? -EIO : rep->type == REDIS_REPLY_ERROR ? -EPROTO : 0;
    if (status == 0 && rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements && n < 8; i++)
            v[n++] = rep->element[i]->type == REDIS_REPLY_INTEGER ? rep->element[i]->integer : 0;
    } else if (status == 0 && rep->type == REDIS_REPLY_INTEGER) {
        v[n++] = rep->integer;
    }
    if (status == -EPROTO)
        yr_log_error("redis: script failed: %.200s", rep->str);
    if (p->cb != NULL)
        p->cb(p->arg, status, v, n);
    free(p);
}

int yr_redis_eval(yr_redis_t *r, const char *script, int nkeys, const char *const *args,
                  size_t nargs, yr_redis_cb cb, void *arg)
{
    if (!yr_redis_ready(r))
        return -ENOTCONN;
    enum { MAX_ARGS = 40 };
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    char nk[16];
    if (nargs + 3 > MAX_ARGS)
        return -E2BIG;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = nk;
    for (size_t i = 0; i < nargs; i++)
        argv[3 + i] = args[i];
    for (size_t i = 0; i < nargs + 3; i++)
        lens[i] = strlen(argv[i]);
    pending_t *p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    *p = (pending_t){.r = r, .cb = cb, .arg = arg, .sent_ms = uv_now(r->loop), .prev = r->tail};
    if (redisAsyncCommandArgv(r->ac, on_reply, p, (int)(nargs + 3), argv, lens) != REDIS_OK) {
        free(p);
        return -EIO;
    }
    if (r->tail != NULL)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    r->inflight++;
    return 0;
}
