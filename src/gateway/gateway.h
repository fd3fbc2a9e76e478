/* The running gateway: one worker per core, each a libuv loop with its own
 * listener (SO_REUSEPORT), curl multi, store client, auth cache, limits and
 * metrics. Workers share only read-only config generations, the metric label
 * registry, the runtime flags and the store thread (reached through each
 * worker's store client). */
#ifndef YR_GATEWAY_H
#define YR_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "api/errors.h"
#include "auth/auth.h"
#include "config/config.h"
#include "config/gen.h"
#include "limits/limits.h"
#include "metrics/metrics.h"
#include "server/http.h"
#include "store/store.h"
#include "upstream/fetch.h"
#include "upstream/upstream.h"

typedef struct yr_runtime yr_runtime_t;

typedef struct yr_worker {
    size_t id;
    yr_runtime_t *rt;
    uv_loop_t loop;
    uv_async_t wake;
    uv_async_t reload; /* the main thread left a generation in pending */
    uv_timer_t deadline;
    /* The generation new requests pin (a reference; worker thread only),
     * the next one handed over by the main thread (a reference, or NULL),
     * and the number of the one in effect, which the main thread reads to
     * log when every worker runs a reload. */
    yr_cfg_gen_t *gen;
    _Atomic(yr_cfg_gen_t *) pending;
    _Atomic uint64_t applied;
    yr_http_server_t *http;
    yr_upstream_t *up;
    struct yr_gcp_tokens *gcp_tokens; /* Vertex service-account tokens (gcp_auth.h), on up */
    yr_store_client_t *store; /* completions of store ops land on this loop */
    yr_auth_t *auth;
    yr_limits_t *limits;
    yr_metrics_t metrics;
    struct yr_obs *obs; /* GenAI metrics, access log, traces (obs/obs.h) */
    uint64_t rng[2];
    pthread_t thread;
    bool stopping;
    /* The proxy's requests in flight on this worker (gateway/proxy.c links
     * them: chat_t.next/prev), so the shutdown deadline can end each one
     * explicitly (yr_proxy_shutdown). Worker thread only. */
    struct chat *chats;
    /* Image bytes being fetched on this worker (images.max_worker_bytes). */
    yr_fetch_budget_t image_bytes;
    /* What the JSON trees of the translations in flight on this worker are
     * estimated to take (server.max_translation_memory; proxy.c). */
    uint64_t tree_bytes;
} yr_worker_t;

struct yr_runtime {
    /* Main thread only: the newest generation (a reference), where it is
     * read from again on SIGHUP (NULL: the zero-config environment), and the
     * newest one every worker was seen running. */
    yr_cfg_gen_t *gen;
    const char *config_path;
    uint64_t announced;
    uv_async_t swapped; /* on the main loop: a worker installed a generation */
    yr_worker_t *workers;
    size_t nworkers;
    yr_metrics_t **all_metrics;
    struct yr_obs **all_obs;
    int access_log; /* fd of observability.access_log; -1: off */
    yr_store_thread_t *store; /* started before the workers, stopped after */
    yr_metrics_labels_t *labels; /* metric label slots, shared by every worker */
    _Atomic bool shutting_down;
    uint16_t port;
    int64_t started_at; /* unix seconds */
};

/* Runs the gateway until SIGTERM/SIGINT and a graceful drain; SIGHUP reloads
 * the config from config_path (NULL: yr_config_default). Takes cfg over: it
 * becomes generation 1, freed when nothing uses it any more. config_path
 * must outlive the call. Returns the process exit code. */
int yr_gateway_run(yr_config_t *cfg, const char *config_path);

/* The HTTP entry point of a worker (handler.c). */
void yr_gateway_on_request(yr_http_req_t *req);
void yr_gateway_on_head(yr_http_req_t *req);
void yr_gateway_on_http_error(yr_http_req_t *req, int status, const char *code,
                              const char *message);

/* Per-request state shared by handler.c and proxy.c. Lives in req->pool. */
typedef struct yr_gw_req {
    yr_http_req_t *http;
    yr_worker_t *w;
    char id[32];
    yr_str_t request_id;
    const yr_config_t *cfg; /* the generation this request runs on, pinned
                             * until req->pool is destroyed */
    yr_identity_t identity; /* set by yr_gw_authenticate */
    void *chat; /* proxy.c's state, when this is a chat request */
    void (*admin_next)(struct yr_gw_req *g); /* yr_gw_authenticate_master's continuation */
    yr_dialect_t dialect; /* the error format this client expects */
    bool authed;  /* authenticated at the head: yr_gw_authenticate answers at once */
    bool counted; /* in http_requests already */
} yr_gw_req_t;

#endif
