/* Internal to src/upstream: the worker's client and a call, shared by the
 * libcurl engine (upstream.c) and our own HTTP/1.1 and HTTP/2 client (lean.c). */
#ifndef YR_UPSTREAM_INT_H
#define YR_UPSTREAM_INT_H

#include "upstream/upstream.h"

/* libcurl looks for a reusable connection by walking every connection it
 * has to the host, for every new transfer: with thousands of concurrent
 * streams to one provider that walk is quadratic (the bench measured
 * closed-loop throughput falling 35k -> 4.3k req/s from 50 to 4,000
 * connections). Several multi handles, each with its own connection cache,
 * keep the walks short; transfers fill shard 0 first, so at low load every
 * transfer still reuses the same warm connections. */
#define SHARDS 16
#define SHARD_SOFT_MAX 256 /* active transfers before the next shard is used */
#define EASY_CACHE_MAX 64

typedef struct sock_ctx sock_ctx_t;

typedef struct shard {
    yr_upstream_t *up;
    CURLM *multi;
    uv_timer_t timer;
    size_t active;
} shard_t;

struct yr_upstream {
    uv_loop_t *loop;
    shard_t shards[SHARDS];
    size_t timers_open;
    size_t active;
    CURL *easy_cache[EASY_CACHE_MAX];
    size_t neasy;
    CURLSH *guarded_conns; /* the connection cache of guarded calls (lazily) */
    sock_ctx_t **socks;    /* by descriptor: every socket curl has open and we poll */
    size_t nsocks;
    bool env_proxy; /* a *_proxy variable was set at start: curl reads them */
    bool closing;
    enum yr_up_engine engine;
    yr_upstream_stats_t stats;
    struct yr_lean *lean; /* lean.c's per-worker state (lazily) */
};

struct yr_upstream_call {
    yr_upstream_t *up;
    shard_t *sh;
    CURL *easy;
    struct curl_slist *headers; /* in mem[] */
    uv_timer_t fb_timer; /* first-byte timeout, then the idle timeout */
    uint32_t idle_ms;    /* 0: no idle timeout */
    uint64_t last_data;  /* loop time of the last body byte (or the head) */
    const yr_upstream_cbs_t *cbs;
    void *data;
    int status;
    bool head_done;
    bool paused;
    bool done;
    bool follow;        /* curl follows redirects: a 3xx with Location is not the answer */
    bool location_seen; /* the current response has a non-empty Location */
    bool guarded;       /* uses up->guarded_conns */
    curl_opensocket_callback guard; /* req->opensocket, called by on_curl_opensocket */
    void *guard_data;
    char retry_after[32];
    size_t retry_after_len;
    char content_type[128];
    size_t content_type_len;
    bool has_hints; /* the current response has a routing hint header */
    char errbuf[CURL_ERROR_SIZE];
    struct yr_lean_call *lean; /* non-NULL: the lean client carries the call */
    _Alignas(struct curl_slist) char mem[]; /* curl: the header list (headers_build);
                                             * lean: its request head */
};
/* lean.c. yr_lean_try_start: 1 = the lean client took the call (*out set),
 * 0 = it cannot serve this request (libcurl should), < 0 = failed. */
int yr_lean_try_start(yr_upstream_t *up, const yr_upstream_req_t *req,
                      const yr_upstream_cbs_t *cbs, void *data, yr_upstream_call_t **out);
void yr_lean_cancel(yr_upstream_call_t *call);
void yr_lean_resume(yr_upstream_call_t *call);
yr_str_t yr_lean_header(const yr_upstream_call_t *call, const char *name);
/* Closes every lean connection and frees the lean state (no callback runs). */
void yr_lean_close(yr_upstream_t *up);

#endif
