/* The running gateway: one worker per core, each a libuv loop with its own
 * listener (SO_REUSEPORT), curl multi, store connection, auth cache and
 * metrics. Workers share only the read-only config and the runtime flags. */
#ifndef YR_GATEWAY_H
#define YR_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "api/errors.h"
#include "auth/auth.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "server/http.h"
#include "store/store.h"
#include "upstream/upstream.h"

typedef struct yr_runtime yr_runtime_t;

typedef struct yr_worker {
    size_t id;
    yr_runtime_t *rt;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t deadline;
    yr_http_server_t *http;
    yr_upstream_t *up;
    yr_store_t *store;
    yr_auth_t *auth;
    yr_metrics_t metrics;
    uint64_t rng[2];
    pthread_t thread;
    bool stopping;
} yr_worker_t;

struct yr_runtime {
    const yr_config_t *cfg;
    yr_worker_t *workers;
    size_t nworkers;
    yr_metrics_t **all_metrics;
    yr_metrics_labels_t *labels; /* metric label slots, shared by every worker */
    _Atomic bool shutting_down;
    uint16_t port;
    int64_t started_at; /* unix seconds */
};

/* Runs the gateway until SIGTERM/SIGINT and a graceful drain. Returns the
 * process exit code. */
int yr_gateway_run(const yr_config_t *cfg);

/* The HTTP entry point of a worker (handler.c). */
void yr_gateway_on_request(yr_http_req_t *req);
void yr_gateway_on_http_error(yr_http_req_t *req, int status, const char *code,
                              const char *message);

/* Per-request state shared by handler.c and proxy.c. Lives in req->pool. */
typedef struct {
    yr_http_req_t *http;
    yr_worker_t *w;
    char id[32];
    yr_str_t request_id;
    const yr_config_t *cfg; /* the configuration this request runs on */
    yr_identity_t identity; /* set by yr_gw_authenticate */
    void *chat; /* proxy.c's state, when this is a chat request */
    yr_dialect_t dialect; /* the error format this client expects */
} yr_gw_req_t;

#endif
