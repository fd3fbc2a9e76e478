/* Workers and their lifetime. The main thread builds every worker (loop,
 * listener, store connection, curl multi) before any thread starts, then
 * waits for SIGTERM/SIGINT on its own loop and asks each worker to drain. */
#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/gateway.h"

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void worker_close_all(yr_worker_t *w)
{
    if (w->up != NULL) {
        yr_upstream_close(w->up);
        w->up = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&w->deadline))
        uv_close((uv_handle_t *)&w->deadline, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&w->wake))
        uv_close((uv_handle_t *)&w->wake, on_handle_closed);
}

static void on_http_drained(yr_http_server_t *s)
{
    yr_worker_t *w = yr_http_server_ctx(s);
    worker_close_all(w);
}

static void on_deadline(uv_timer_t *t)
{
    yr_worker_t *w = t->data;
    yr_log_warn("worker %zu: shutdown deadline reached, closing %zu connections", w->id,
                yr_http_server_active(w->http));
    yr_http_server_kill_all(w->http);
}

static void on_wake(uv_async_t *a)
{
    yr_worker_t *w = a->data;
    if (w->stopping)
        return;
    w->stopping = true;
    uint32_t ms = w->rt->cfg->server.shutdown_timeout_ms;
    uv_timer_start(&w->deadline, on_deadline, ms, 0);
    uv_unref((uv_handle_t *)&w->deadline);
    yr_http_server_shutdown(w->http, on_http_drained);
}

static void *worker_main(void *arg)
{
    yr_worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int worker_init(yr_runtime_t *rt, yr_worker_t *w, size_t id, uint16_t port)
{
    const yr_config_t *cfg = rt->cfg;
    char err[256];
    w->id = id;
    w->rt = rt;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->deadline);
    w->deadline.data = w;
    if (RAND_bytes((unsigned char *)w->rng, sizeof(w->rng)) != 1)
        return -EIO;
    w->rng[0] |= 1;
    if ((rc = yr_store_open(cfg->storage.url, &w->store, err, sizeof(err))) < 0) {
        yr_log_error("storage: %s", err);
        return rc;
    }
    if ((rc = yr_auth_init(w->store, cfg->server.master_key, &w->auth)) < 0)
        return rc;
    if ((rc = yr_metrics_init(&w->metrics, rt->labels)) < 0)
        return rc;
    if ((rc = yr_upstream_init(&w->loop, &w->up)) < 0)
        return rc;
    yr_http_opts_t opts = {
        .max_body = cfg->server.max_body_bytes,
        .idle_timeout_ms = cfg->server.idle_timeout_ms,
        .on_request = yr_gateway_on_request,
        .on_error = yr_gateway_on_http_error,
        .ctx = w,
    };
    rc = yr_http_listen(&w->loop, cfg->server.listen_host, port, true, &opts, &w->http);
    if (rc < 0) {
        yr_log_error("cannot listen on %s:%u: %s", cfg->server.listen_host, (unsigned)port,
                     rc > -4096 ? uv_strerror(rc) : "error");
        return rc;
    }
    return 0;
}

static void worker_destroy(yr_worker_t *w)
{
    if (w->rt == NULL)
        return;
    /* Close whatever is still open and let the loop release it. */
    if (w->http != NULL && !w->stopping) {
        w->stopping = true;
        yr_http_server_shutdown(w->http, on_http_drained);
        yr_http_server_kill_all(w->http);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->up != NULL)
        worker_close_all(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        yr_log_warn("worker %zu: loop closed with handles still open", w->id);
    yr_http_server_free(w->http);
    yr_auth_free(w->auth);
    yr_store_close(w->store);
    yr_metrics_free(&w->metrics);
}

/* ---- main thread ------------------------------------------------------------ */

static void on_signal(uv_signal_t *sig, int signum)
{
    yr_runtime_t *rt = sig->data;
    if (atomic_exchange(&rt->shutting_down, true)) {
        yr_log_warn("second signal: exiting now");
        _exit(1);
    }
    yr_log_info("signal %d: draining in-flight requests (up to %u ms)", signum,
                (unsigned)rt->cfg->server.shutdown_timeout_ms);
    for (size_t i = 0; i < rt->nworkers; i++)
        uv_async_send(&rt->workers[i].wake);
    uv_signal_stop(sig);
}

int yr_gateway_run(const yr_config_t *cfg)
{
    yr_runtime_t rt = {.cfg = cfg, .nworkers = cfg->server.workers ? cfg->server.workers : 1};
    rt.started_at = (int64_t)time(NULL);
    rt.workers = calloc(rt.nworkers, sizeof(*rt.workers));
    rt.all_metrics = calloc(rt.nworkers, sizeof(*rt.all_metrics));
    int exit_code = 1;
    size_t built = 0;
    if (rt.workers == NULL || rt.all_metrics == NULL || yr_metrics_labels_new(&rt.labels) < 0)
        goto out;
    yr_metrics_labels_add_config(rt.labels, cfg);
    uint16_t port = cfg->server.listen_port;
    for (; built < rt.nworkers; built++) {
        yr_worker_t *w = &rt.workers[built];
        if (worker_init(&rt, w, built, port) < 0) {
            built++;
            goto out;
        }
        rt.all_metrics[built] = &w->metrics;
        port = yr_http_server_port(w->http); /* the others join worker 0's port */
    }
    rt.port = port;

    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    uv_signal_t sigterm, sigint;
    uv_signal_init(&main_loop, &sigterm);
    uv_signal_init(&main_loop, &sigint);
    sigterm.data = sigint.data = &rt;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);

    size_t started = 0;
    for (; started < rt.nworkers; started++)
        if (pthread_create(&rt.workers[started].thread, NULL, worker_main,
                           &rt.workers[started]) != 0)
            break;
    if (started < rt.nworkers) {
        yr_log_error("could not start worker threads");
        atomic_store(&rt.shutting_down, true);
        for (size_t i = 0; i < started; i++)
            uv_async_send(&rt.workers[i].wake);
    } else {
        yr_log_info("yourouter listening on %s:%u with %zu workers, %zu models, %zu providers",
                    cfg->server.listen_host, (unsigned)rt.port, rt.nworkers, cfg->nmodels,
                    cfg->nproviders);
        printf("listening on %s:%u\n", cfg->server.listen_host, (unsigned)rt.port);
        fflush(stdout);
        /* Runs until a signal closes both signal handles. */
        while (!atomic_load(&rt.shutting_down))
            uv_run(&main_loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(rt.workers[i].thread, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_run(&main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&main_loop);
    exit_code = started == rt.nworkers ? 0 : 1;
    if (exit_code == 0)
        yr_log_info("shutdown complete");
out:
    for (size_t i = 0; i < built; i++)
        worker_destroy(&rt.workers[i]);
    free(rt.workers);
    free(rt.all_metrics);
    yr_metrics_labels_free(rt.labels);
    return exit_code;
}
