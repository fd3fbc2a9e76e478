/* Workers and their lifetime. The main thread builds every worker (loop,
 * listener, store client, curl multi) before any thread starts, then
 * waits for signals on its own loop: SIGTERM/SIGINT ask each worker to
 * drain, SIGHUP reloads the config into a new generation that each worker
 * installs on its own thread. The store thread is started before the
 * workers and stopped after they are joined: a worker's loop only ends once
 * its store ops have come back. */
#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config/gen.h"
#include "core/log.h"
#include "gateway/proxy.h"
#include "providers/gcp_auth.h"
#include "gateway/gateway.h"
#include "obs/obs.h"

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void worker_close_all(yr_worker_t *w)
{
    yr_gcp_tokens_free(w->gcp_tokens); /* cancels its exchange: before the client closes */
    w->gcp_tokens = NULL;
    yr_obs_close(w->obs); /* its export call is on w->up */
    if (w->up != NULL) {
        yr_upstream_close(w->up);
        w->up = NULL;
    }
    /* Every request is gone, so every pending lookup was cancelled; the
     * client closes once those have come back from the store thread. */
    yr_store_client_close(w->store, NULL, NULL);
    w->store = NULL;
    yr_limits_close(w->limits);
    if (!uv_is_closing((uv_handle_t *)&w->deadline))
        uv_close((uv_handle_t *)&w->deadline, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&w->wake))
        uv_close((uv_handle_t *)&w->wake, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&w->reload))
        uv_close((uv_handle_t *)&w->reload, on_handle_closed);
}

static void on_http_drained(yr_http_server_t *s)
{
    yr_worker_t *w = yr_http_server_ctx(s);
    worker_close_all(w);
}

/* How long the error events written at the deadline get to reach their
 * clients before the connections are closed regardless. */
#define SHUTDOWN_FLUSH_MS 1000

static void on_flush_deadline(uv_timer_t *t)
{
    yr_worker_t *w = t->data;
    yr_log_warn("worker %zu: closing %zu connections", w->id, yr_http_server_active(w->http));
    yr_http_server_kill_all(w->http);
}

/* Streams still running end with an explicit error event (never a silent
 * stop), answers not started with a 503; the connections close once those
 * are written (on_http_drained), or after SHUTDOWN_FLUSH_MS. */
static void on_deadline(uv_timer_t *t)
{
    yr_worker_t *w = t->data;
    yr_log_warn("worker %zu: shutdown deadline reached, ending %zu connections", w->id,
                yr_http_server_active(w->http));
    uv_timer_start(&w->deadline, on_flush_deadline, SHUTDOWN_FLUSH_MS, 0);
    yr_proxy_shutdown(w); /* may drain the server: then the timer is closed */
}

static void on_wake(uv_async_t *a)
{
    yr_worker_t *w = a->data;
    if (w->stopping)
        return;
    w->stopping = true;
    uint32_t ms = w->gen->cfg->server.shutdown_timeout_ms;
    uv_timer_start(&w->deadline, on_deadline, ms, 0);
    uv_unref((uv_handle_t *)&w->deadline);
    yr_http_server_shutdown(w->http, on_http_drained);
}

/* The main thread left a new generation: install it for new requests. The
 * requests in flight keep the one they pinned, so dropping ours frees the
 * old config only once the last of them ended. */
static void on_reload(uv_async_t *a)
{
    yr_worker_t *w = a->data;
    yr_cfg_gen_t *next = atomic_exchange(&w->pending, NULL);
    if (next == NULL)
        return; /* sends coalesce: an earlier callback took it */
    /* The main thread checked the key against the same limit, so this only
     * guards the invariant that a generation is applied whole or not. */
    if (yr_auth_set_master_key(w->auth, next->cfg->server.master_key) < 0) {
        yr_log_error("worker %zu: generation %llu not applied: master key refused", w->id,
                     (unsigned long long)next->number);
        yr_cfg_gen_release(next);
        return;
    }
    yr_cfg_gen_release(w->gen);
    w->gen = next;
    atomic_store(&w->applied, next->number);
    uv_async_send(&w->rt->swapped);
}

static void *worker_main(void *arg)
{
    yr_worker_t *w = arg;
    yr_obs_start(w->obs);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Client connections per worker. By default half the open-file limit, shared
 * by the workers: the other half is for upstream connections, the store and
 * the process itself, so a flood of clients is refused with a 503 before
 * accept() fails for want of a descriptor. */
static size_t max_connections(const yr_config_t *cfg)
{
    if (cfg->server.max_connections > 0)
        return cfg->server.max_connections;
    struct rlimit rl;
    uint64_t nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
    uint64_t per = nofile > 128 ? (nofile - 64) / 2 / cfg->server.workers : 16;
    return per < 16 ? 16 : per;
}

static int worker_init(yr_runtime_t *rt, yr_worker_t *w, size_t id, uint16_t port)
{
    const yr_config_t *cfg = rt->gen->cfg;
    w->id = id;
    w->rt = rt;
    w->gen = yr_cfg_gen_acquire(rt->gen);
    atomic_store(&w->applied, rt->gen->number);
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_async_init(&w->loop, &w->reload, on_reload);
    w->reload.data = w;
    uv_timer_init(&w->loop, &w->deadline);
    w->deadline.data = w;
    if (RAND_bytes((unsigned char *)w->rng, sizeof(w->rng)) != 1)
        return -EIO;
    w->rng[0] |= 1;
    if ((rc = yr_store_client_init(&w->loop, rt->store, &w->store)) < 0)
        return rc;
    if ((rc = yr_auth_init(w->store, cfg->server.master_key, &w->auth)) < 0)
        return rc;
    if ((rc = yr_limits_init(&w->limits)) < 0)
        return rc;
    if (cfg->storage.redis_url != NULL &&
        (rc = yr_limits_use_redis(w->limits, &w->loop, cfg->storage.redis_url)) < 0) {
        yr_log_error("storage.redis_url: cannot use it (redis://[user:password@]host[:port][/db];"
                     " rediss:// needs a hiredis with TLS)");
        return rc;
    }
    if ((rc = yr_metrics_init(&w->metrics, rt->labels)) < 0)
        return rc;
    if ((rc = yr_upstream_init(&w->loop, &w->up)) < 0)
        return rc;
    if (cfg->server.upstream_engine != NULL && strcmp(cfg->server.upstream_engine, "curl") == 0)
        yr_upstream_set_engine(w->up, YR_UP_ENGINE_CURL);
    if ((rc = yr_gcp_tokens_new(w->up, &w->gcp_tokens)) < 0)
        return rc;
    yr_http_opts_t opts = {
        .max_body = cfg->server.max_body_bytes,
        .idle_timeout_ms = cfg->server.idle_timeout_ms,
        .linger_ms = cfg->server.linger_ms,
        .header_timeout_ms = cfg->server.header_timeout_ms,
        .body_timeout_ms = cfg->server.body_timeout_ms,
        .body_min_rate = (uint32_t)cfg->server.body_min_rate,
        .max_conns = max_connections(cfg),
        /* Never below one body of the largest size, or it could not pass. */
        .max_body_memory = cfg->server.max_body_memory > cfg->server.max_body_bytes
                               ? cfg->server.max_body_memory
                               : cfg->server.max_body_bytes,
        .on_head = yr_gateway_on_head,
        .on_request = yr_gateway_on_request,
        .on_error = yr_gateway_on_http_error,
        .ctx = w,
    };
    if (id == 0)
        yr_log_info("at most %zu client connections per worker (server.max_connections%s)",
                    opts.max_conns, cfg->server.max_connections ? "" : ": from the open-file limit");
    rc = yr_http_listen(&w->loop, cfg->server.listen_host, port, true, &opts, &w->http);
    if (rc < 0) {
        yr_log_error("cannot listen on %s:%u: %s", cfg->server.listen_host, (unsigned)port,
                     rc > -4096 ? uv_strerror(rc) : "error");
        return rc;
    }
    return yr_obs_init(&w->obs, id, &w->loop, w->up, w->http, rt->labels, cfg, rt->access_log);
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
    if (w->up != NULL || w->store != NULL)
        worker_close_all(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        yr_log_warn("worker %zu: loop closed with handles still open", w->id);
    yr_http_server_free(w->http);
    yr_auth_free(w->auth);
    yr_limits_free(w->limits);
    yr_metrics_free(&w->metrics);
    yr_obs_free(w->obs);
    w->obs = NULL;
    yr_cfg_gen_release(atomic_exchange(&w->pending, NULL));
    yr_cfg_gen_release(w->gen);
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
                (unsigned)rt->gen->cfg->server.shutdown_timeout_ms);
    for (size_t i = 0; i < rt->nworkers; i++)
        uv_async_send(&rt->workers[i].wake);
    uv_signal_stop(sig);
}

/* ---- reload (main thread) ---------------------------------------------------- */

static void on_restart_only(const char *key, void *arg)
{
    (void)arg;
    yr_log_warn("reload: %s changed; ignored until a restart", key);
}

/* What the loader accepts but a worker could not apply: refused here, before
 * any worker sees the generation, so no worker applies it half. */
static int check_applicable(const yr_config_t *cfg, char *err, size_t errlen)
{
    yr_auth_t *probe;
    int rc = yr_auth_init(NULL, cfg->server.master_key, &probe);
    if (rc == -EINVAL)
        snprintf(err, errlen, "%s: server.master_key: longer than a bearer token can be",
                 cfg->path);
    else if (rc < 0)
        snprintf(err, errlen, "%s: out of memory", cfg->path);
    else
        yr_auth_free(probe);
    return rc;
}

/* Reads the config source again and validates it whole. 0 and *out (owned by
 * the caller), or a negative code with the reason in err. */
static int reload_read(yr_runtime_t *rt, yr_config_t **out, char *err, size_t errlen)
{
    yr_config_t *cfg = NULL;
    int rc = rt->config_path ? yr_config_load(rt->config_path, &cfg, err, errlen)
                             : yr_config_default(&cfg, err, errlen);
    if (rc == 0)
        rc = check_applicable(cfg, err, errlen);
    if (rc == 0) {
        rc = yr_config_keep_restart_settings(cfg, rt->gen->cfg, on_restart_only, NULL);
        if (rc < 0)
            snprintf(err, errlen, "%s: out of memory", cfg->path);
    }
    if (rc < 0) {
        yr_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* Makes gen the newest generation and hands every worker a reference to it.
 * A worker that has not installed the previous one yet gets this one
 * instead; the reference it skipped is dropped here. */
static void publish(yr_runtime_t *rt, yr_cfg_gen_t *gen)
{
    yr_cfg_gen_t *old = rt->gen;
    rt->gen = gen;
    for (size_t i = 0; i < rt->nworkers; i++) {
        yr_worker_t *w = &rt->workers[i];
        yr_cfg_gen_release(atomic_exchange(&w->pending, yr_cfg_gen_acquire(gen)));
        uv_async_send(&w->reload);
    }
    yr_cfg_gen_release(old);
}

static void reload(yr_runtime_t *rt)
{
    char err[1024];
    yr_config_t *cfg;
    yr_cfg_gen_t *gen;
    uint64_t running = rt->gen->number;
    if (reload_read(rt, &cfg, err, sizeof(err)) < 0) {
        yr_log_error("reload refused, generation %llu keeps serving: %s",
                     (unsigned long long)running, err);
        return;
    }
    if (yr_cfg_gen_new(cfg, running + 1, &gen) < 0) {
        yr_log_error("reload refused, generation %llu keeps serving: out of memory",
                     (unsigned long long)running);
        return;
    }
    enum yr_log_level level;
    if (cfg->server.log_level && yr_log_parse_level(cfg->server.log_level, &level) == 0)
        yr_log_set_level(level);
    if (cfg->server.master_key == NULL)
        yr_log_warn("reload: no master key configured: only keys from 'yourouter keys create' "
                    "are accepted");
    /* Before any worker can count a request on the new names. */
    yr_metrics_labels_add_config(rt->labels, cfg);
    publish(rt, gen);
}

/* SIGUSR1: the access log file was rotated (renamed); write a new one. */
static void on_sigusr1(uv_signal_t *sig, int signum)
{
    (void)signum;
    yr_runtime_t *rt = sig->data;
    const char *spec = rt->gen->cfg->observability.access_log;
    int rc = yr_access_log_reopen(spec, rt->access_log);
    if (rc < 0)
        yr_log_error("observability.access_log: cannot reopen it: %s", strerror(-rc));
    else if (rt->access_log > 2)
        yr_log_info("observability.access_log reopened");
}

static void on_sighup(uv_signal_t *sig, int signum)
{
    (void)signum;
    yr_runtime_t *rt = sig->data;
    /* Draining workers may have closed their reload handles. */
    if (atomic_load(&rt->shutting_down))
        return;
    reload(rt);
}

/* A worker installed a generation: once all of them run the newest, say so.
 * A generation that was replaced before every worker took it is never
 * announced, so each line means "from now on, every new request runs N". */
static void on_swapped(uv_async_t *a)
{
    yr_runtime_t *rt = a->data;
    uint64_t newest = rt->gen->number;
    if (rt->announced == newest)
        return;
    for (size_t i = 0; i < rt->nworkers; i++)
        if (atomic_load(&rt->workers[i].applied) != newest)
            return;
    rt->announced = newest;
    const yr_config_t *cfg = rt->gen->cfg;
    yr_log_info("config generation %llu in effect on %zu workers (%zu models, %zu providers)",
                (unsigned long long)newest, rt->nworkers, cfg->nmodels, cfg->nproviders);
}

int yr_gateway_run(yr_config_t *cfg, const char *config_path)
{
    yr_runtime_t rt = {.config_path = config_path,
                       .announced = 1,
                       .nworkers = cfg->server.workers ? cfg->server.workers : 1,
                       .access_log = -1};
    int exit_code = 1;
    size_t built = 0;
    if (yr_cfg_gen_new(cfg, 1, &rt.gen) < 0)
        return exit_code;
    rt.started_at = (int64_t)time(NULL);
    rt.workers = calloc(rt.nworkers, sizeof(*rt.workers));
    rt.all_metrics = calloc(rt.nworkers, sizeof(*rt.all_metrics));
    rt.all_obs = calloc(rt.nworkers, sizeof(*rt.all_obs));
    if (rt.workers == NULL || rt.all_metrics == NULL || rt.all_obs == NULL ||
        yr_metrics_labels_new(&rt.labels) < 0)
        goto out;
    rt.access_log = yr_access_log_open(cfg->observability.access_log);
    if (rt.access_log < -1) {
        yr_log_error("observability.access_log: cannot open it: %s", strerror(-rt.access_log));
        rt.access_log = -1;
        goto out;
    }
    char err[512];
    if (check_applicable(cfg, err, sizeof(err)) < 0) { /* what a reload would refuse */
        yr_log_error("%s", err);
        goto out;
    }
    yr_metrics_labels_add_config(rt.labels, cfg);
    if (yr_store_thread_start(cfg->storage.url, &rt.store, err, sizeof(err)) < 0) {
        yr_log_error("storage: %s", err);
        goto out;
    }
    uint16_t port = cfg->server.listen_port;
    for (; built < rt.nworkers; built++) {
        yr_worker_t *w = &rt.workers[built];
        if (worker_init(&rt, w, built, port) < 0) {
            built++;
            goto out;
        }
        rt.all_metrics[built] = &w->metrics;
        rt.all_obs[built] = w->obs;
        port = yr_http_server_port(w->http); /* the others join worker 0's port */
    }
    rt.port = port;

    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    uv_signal_t sigterm, sigint, sighup, sigusr1;
    uv_signal_init(&main_loop, &sigterm);
    uv_signal_init(&main_loop, &sigint);
    uv_signal_init(&main_loop, &sighup);
    uv_signal_init(&main_loop, &sigusr1);
    sigterm.data = sigint.data = sighup.data = sigusr1.data = &rt;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sighup, on_sighup, SIGHUP);
    uv_signal_start(&sigusr1, on_sigusr1, SIGUSR1);
    uv_async_init(&main_loop, &rt.swapped, on_swapped);
    rt.swapped.data = &rt;

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
        /* Signals (and reload acknowledgements) until SIGTERM/SIGINT. */
        while (!atomic_load(&rt.shutting_down))
            uv_run(&main_loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(rt.workers[i].thread, NULL);
    /* Only now: a worker may acknowledge a reload until it has ended. */
    uv_close((uv_handle_t *)&rt.swapped, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
    uv_close((uv_handle_t *)&sigusr1, NULL);
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
    /* After every worker loop ended: writes the usage rows still queued. */
    yr_store_thread_stop(rt.store);
    free(rt.workers);
    free(rt.all_metrics);
    free(rt.all_obs);
    yr_access_log_close(rt.access_log);
    yr_metrics_labels_free(rt.labels);
    yr_cfg_gen_release(rt.gen); /* the workers and requests have released theirs */
    return exit_code;
}
