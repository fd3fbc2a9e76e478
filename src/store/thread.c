/* The store thread: one per process, one database connection, serving every
 * worker (store.h, docs/store.md).
 *
 * Two queues feed it, both under t->mu and both bounded:
 * - key operations (YR_STORE_QUEUE_MAX), answered one by one; each op goes
 *   back to the client that submitted it (its done list, under c->mu) and the
 *   client's uv_async_t wakes that worker's loop, which runs the callback.
 * - usage rows (YR_USAGE_QUEUE_MAX), written up to YR_USAGE_BATCH_MAX per
 *   transaction. The first row of a batch waits YR_USAGE_LINGER_MS for
 *   company (a full batch, a flush or a stop writes at once): one transaction
 *   per row cost a WAL page or more each, and the checkpoints that followed
 *   every ~300 rows landed on 1 % of requests at concurrency 1 (their p99).
 *   Under load rows also pile up while a batch commits.
 * Key operations go first: a client waits on them; nobody waits on usage.
 *
 * An op is heap memory owned by the store from submit to free. Only the
 * worker's loop frees it (after its callback, or in place of it when it was
 * cancelled), so a cancel never races with the store thread writing the
 * result: the thread only ever touches the op, never the caller's memory. */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/backend.h"

/* Queued rows past which appenders yield to the writer: four batches. */
#define YR_USAGE_BEHIND (4 * YR_USAGE_BATCH_MAX)
#define OP_TEXT_MAX 128 /* a key name (<= 127) or a revoke argument */
#define LIST_MAX 65536  /* keys one async list returns at most */

typedef enum { OP_LOOKUP, OP_CREATE, OP_LIST, OP_REVOKE, OP_CALL } op_kind_t;
#define CALL_ARG_MAX (64 * 1024)

struct yr_store_op {
    yr_store_op_t *next; /* t->ops, then c->done */
    yr_store_client_t *client;
    op_kind_t kind;
    atomic_bool cancelled; /* set by the loop, read by both threads */
    int status;            /* written by the store thread */
    int preset;            /* nonzero: answered without the database */
    union {
        yr_store_lookup_cb lookup;
        yr_store_create_cb create;
        yr_store_list_cb list;
        yr_store_revoke_cb revoke;
        void (*done)(void *arg, int status);
    } cb;
    int (*call)(yr_store_t *s, void *arg); /* OP_CALL: runs on the store thread over callarg */
    void *callarg;                         /* OP_CALL: the op's own copy */
    void (*cleanup)(void *arg);            /* OP_CALL: frees what call put in callarg */
    void *arg;
    unsigned char hash[YR_KEY_HASH_LEN];
    char text[OP_TEXT_MAX];
    yr_key_info_t info;
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t *keys; /* OP_LIST: heap array */
    size_t nkeys;
    size_t capkeys;
};

typedef struct usage_node {
    struct usage_node *next;
    yr_usage_row_t row; /* its slices point into strings[] */
    char strings[];
} usage_node_t;

struct yr_store_thread {
    yr_store_t *db; /* the store thread's only, once started */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* ops or rows queued, or stopping */
    pthread_cond_t written; /* usage_done moved */
    /* Under mu: */
    yr_store_op_t *ops_head, *ops_tail;
    size_t nops;
    usage_node_t *usage_head, *usage_tail;
    size_t nusage;
    uint64_t usage_queued; /* rows ever queued */
    uint64_t usage_done;   /* rows ever written or failed */
    uint64_t dropped_unlogged;
    int64_t usage_since; /* mono ms the oldest queued row arrived; 0: due now */
    unsigned flushing;   /* yr_store_thread_flush() callers waiting */
    bool stopping;
    yr_store_stats_t stats;
    /* The store thread's: the rows of the batch being written. */
    yr_usage_row_t batch[YR_USAGE_BATCH_MAX];
};

struct yr_store_client {
    uv_async_t async;
    yr_store_thread_t *t;
    pthread_mutex_t mu;
    yr_store_op_t *done_head, *done_tail; /* under mu */
    /* Loop thread only: */
    size_t inflight; /* submitted, not yet freed */
    bool closing;
    bool dispatching;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

/* ---- the store thread ------------------------------------------------------ */

static void on_list_row(const yr_key_info_t *info, void *arg)
{
    yr_store_op_t *op = arg;
    if (op->status != 0)
        return;
    if (op->nkeys == op->capkeys) {
        size_t cap = op->capkeys ? op->capkeys * 2 : 16;
        yr_key_info_t *keys = cap <= LIST_MAX ? realloc(op->keys, cap * sizeof(*keys)) : NULL;
        if (keys == NULL) {
            op->status = cap <= LIST_MAX ? -ENOMEM : -E2BIG;
            return;
        }
        op->keys = keys;
        op->capkeys = cap;
    }
    op->keys[op->nkeys++] = *info;
}

static void op_run(yr_store_t *db, yr_store_op_t *op)
{
    if (op->preset != 0) {
        op->status = op->preset;
        return;
    }
    switch (op->kind) {
    case OP_LOOKUP: op->status = yr_store_key_lookup(db, op->hash, &op->info); break;
    case OP_CREATE: op->status = yr_store_key_create(db, op->text, op->key, &op->info); break;
    case OP_REVOKE: op->status = yr_store_key_revoke_info(db, op->text, &op->info); break;
    case OP_CALL: op->status = op->call(db, op->callarg); break;
    case OP_LIST: {
        int rc = yr_store_key_list(db, on_list_row, op);
        op->status = rc != 0 ? rc : op->status;
        break;
    }
    }
}

/* Hands a finished op back to its client's loop. The async send happens
 * under c->mu: the loop can only take the op (and then, with nothing left in
 * flight, close and free the client) after this function let go of it. */
static void op_deliver(yr_store_op_t *op)
{
    yr_store_client_t *c = op->client;
    op->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->done_tail != NULL)
        c->done_tail->next = op;
    else
        c->done_head = op;
    c->done_tail = op;
    uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
}

static void run_ops(yr_store_thread_t *t, yr_store_op_t *list)
{
    while (list != NULL) {
        yr_store_op_t *op = list;
        list = op->next;
        /* A cancelled op is not worth a database round trip. */
        if (!atomic_load_explicit(&op->cancelled, memory_order_relaxed)) {
            op_run(t->db, op);
            /* Counted before the callback can run, so a caller that got
             * its answer sees it counted. */
            pthread_mutex_lock(&t->mu);
            t->stats.ops_done++;
            pthread_mutex_unlock(&t->mu);
        }
        op_deliver(op);
    }
}

/* Writes a batch taken off the queue in one transaction: 0 or the error
 * (the batch stays the caller's). */
static int write_usage(yr_store_thread_t *t, usage_node_t *list)
{
    size_t n = 0;
    for (usage_node_t *u = list; u != NULL && n < YR_USAGE_BATCH_MAX; u = u->next)
        t->batch[n++] = u->row;
    return yr_store_usage_write(t->db, t->batch, n);
}

static void free_usage(usage_node_t *list)
{
    while (list != NULL) {
        usage_node_t *next = list->next;
        free(list);
        list = next;
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes up to YR_USAGE_BATCH_MAX rows off the queue; t->mu is held. */
static usage_node_t *take_usage(yr_store_thread_t *t, size_t *n)
{
    usage_node_t *head = t->usage_head, *last = head;
    size_t k = 1;
    while (k < YR_USAGE_BATCH_MAX && last->next != NULL) {
        last = last->next;
        k++;
    }
    t->usage_head = last->next;
    if (t->usage_head == NULL)
        t->usage_tail = NULL;
    last->next = NULL;
    t->nusage -= k;
    t->usage_since = 0; /* what is left has waited a batch already */
    *n = k;
    return head;
}

/* When the queued rows should be written (mono ms; INT64_MAX: nothing
 * queued): after the retry backoff, and after the linger unless the batch is
 * full or someone flushes. t->mu is held. */
static int64_t usage_due(const yr_store_thread_t *t, int64_t retry_at)
{
    if (t->usage_head == NULL)
        return INT64_MAX;
    int64_t due = t->nusage >= YR_USAGE_BATCH_MAX || t->flushing > 0 || t->usage_since == 0
                      ? 0
                      : t->usage_since + YR_USAGE_LINGER_MS;
    return due > retry_at ? due : retry_at;
}

/* A failed batch goes back to the front of the queue and is tried again
 * after a backoff (100 ms doubling to 2 s): a database that is restarting
 * loses no row (writes are idempotent per request and attempt). Rows queued
 * meanwhile wait behind it, bounded by YR_USAGE_QUEUE_MAX (beyond: dropped
 * and counted). Only a stop gives up, after YR_USAGE_STOP_RETRY_MS. */
#define YR_USAGE_STOP_RETRY_MS 5000

static void *store_main(void *arg)
{
    yr_store_thread_t *t = arg;
    int64_t retry_at = 0, backoff = 0, stop_deadline = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        int64_t at;
        while (t->ops_head == NULL && !t->stopping && (at = usage_due(t, retry_at)) > mono_ms()) {
            if (at == INT64_MAX) {
                pthread_cond_wait(&t->work, &t->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t wait = at - mono_ms();
                ts.tv_sec += wait / 1000;
                ts.tv_nsec += (long)(wait % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&t->work, &t->mu, &ts);
            }
        }
        if (t->ops_head != NULL) {
            yr_store_op_t *list = t->ops_head;
            t->ops_head = t->ops_tail = NULL;
            t->nops = 0;
            pthread_mutex_unlock(&t->mu);
            run_ops(t, list);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        if (t->usage_head != NULL) {
            size_t n;
            usage_node_t *batch = take_usage(t, &n);
            uint64_t dropped = t->dropped_unlogged;
            t->dropped_unlogged = 0;
            pthread_mutex_unlock(&t->mu);
            if (dropped > 0)
                yr_log_warn(
                    "store: %llu usage rows were dropped (queue full, out of memory or stopping)",
                    (unsigned long long)dropped);
            if (t->stopping && retry_at > 0 && stop_deadline == 0)
                stop_deadline = mono_ms() + YR_USAGE_STOP_RETRY_MS;
            int rc = write_usage(t, batch);
            pthread_mutex_lock(&t->mu);
            if (rc == 0 || (stop_deadline != 0 && mono_ms() >= stop_deadline)) {
                if (rc != 0)
                    yr_log_error("store: stopping: usage batch of %zu rows lost: %s", n,
                                 strerror(-rc));
                else if (backoff != 0)
                    yr_log_info("store: usage writes work again");
                t->stats.usage_written += rc == 0 ? n : 0;
                t->stats.usage_batches += rc == 0;
                t->stats.usage_failed += rc == 0 ? 0 : n;
                t->usage_done += n;
                retry_at = backoff = 0;
                bool behind = t->usage_head != NULL;
                pthread_mutex_unlock(&t->mu);
                free_usage(batch);
                if (behind) /* let a worker on this core run between batches */
                    sched_yield();
                pthread_mutex_lock(&t->mu);
                pthread_cond_broadcast(&t->written);
                continue;
            }
            /* back to the front of the queue, tried again later */
            usage_node_t *last = batch;
            while (last->next != NULL)
                last = last->next;
            last->next = t->usage_head;
            t->usage_head = batch;
            if (t->usage_tail == NULL)
                t->usage_tail = last;
            t->nusage += n;
            t->stats.usage_retries++;
            if (backoff == 0)
                yr_log_error("store: usage batch of %zu rows not written (%s): retrying", n,
                             strerror(-rc));
            backoff = backoff == 0 ? 100 : backoff * 2 > 2000 ? 2000 : backoff * 2;
            retry_at = mono_ms() + backoff;
            if (t->stopping) { /* no waiting on the condition now: pace the retries */
                pthread_mutex_unlock(&t->mu);
                struct timespec ts = {0, 50 * 1000000};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&t->mu);
            }
            continue;
        }
        break; /* stopping, and both queues are empty */
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int yr_store_thread_start(const char *url, yr_store_thread_t **out, char *err, size_t errlen)
{
    yr_store_thread_t *t = calloc(1, sizeof(*t));
    int rc;
    if (t == NULL) {
        yr_store_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = yr_store_open(url, &t->db, err, errlen);
    if (rc != 0)
        goto out;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->work, NULL);
    pthread_cond_init(&t->written, NULL);
    if (pthread_create(&t->thread, NULL, store_main, t) != 0) {
        yr_store_set_err(err, errlen, "cannot start the store thread");
        pthread_cond_destroy(&t->written);
        pthread_cond_destroy(&t->work);
        pthread_mutex_destroy(&t->mu);
        rc = -EAGAIN;
        goto out;
    }
    *out = t;
    t = NULL;
out:
    if (t != NULL) {
        yr_store_close(t->db);
        free(t);
    }
    return rc;
}

void yr_store_thread_stop(yr_store_thread_t *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    if (t->dropped_unlogged > 0)
        yr_log_warn("store: %llu usage rows were dropped (queue full, out of memory or stopping)",
                    (unsigned long long)t->dropped_unlogged);
    yr_store_close(t->db);
    pthread_cond_destroy(&t->written);
    pthread_cond_destroy(&t->work);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void yr_store_thread_flush(yr_store_thread_t *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t target = t->usage_queued;
    t->flushing++;
    pthread_cond_signal(&t->work); /* no lingering for a flush */
    while (t->usage_done < target)
        pthread_cond_wait(&t->written, &t->mu);
    t->flushing--;
    pthread_mutex_unlock(&t->mu);
}

void yr_store_stats(yr_store_thread_t *t, yr_store_stats_t *out)
{
    pthread_mutex_lock(&t->mu);
    *out = t->stats;
    out->usage_depth = t->nusage;
    pthread_mutex_unlock(&t->mu);
}

/* ---- clients: the worker's side ------------------------------------------- */

static void op_free(yr_store_op_t *op)
{
    free(op->keys);
    if (op->cleanup != NULL && op->callarg != NULL)
        op->cleanup(op->callarg);
    free(op->callarg);
    OPENSSL_cleanse(op->key, sizeof(op->key)); /* a created key's only copy */
    free(op);
}

static void op_callback(yr_store_op_t *op)
{
    const yr_key_info_t *info = op->status == 0 ? &op->info : NULL;
    switch (op->kind) {
    case OP_LOOKUP: op->cb.lookup(op->arg, op->status, info); break;
    case OP_CREATE: op->cb.create(op->arg, op->status, info ? op->key : NULL, info); break;
    case OP_REVOKE: op->cb.revoke(op->arg, op->status, info); break;
    case OP_CALL: op->cb.done(op->callarg, op->status); break;
    case OP_LIST:
        op->cb.list(op->arg, op->status, op->status == 0 ? op->keys : NULL,
                    op->status == 0 ? op->nkeys : 0);
        break;
    }
}

static void on_client_closed(uv_handle_t *h)
{
    yr_store_client_t *c = h->data;
    void (*fn)(void *) = c->on_closed;
    void *arg = c->closed_arg;
    pthread_mutex_destroy(&c->mu);
    free(c);
    if (fn != NULL)
        fn(arg);
}

static void client_maybe_close(yr_store_client_t *c)
{
    if (c->closing && c->inflight == 0 && !c->dispatching &&
        !uv_is_closing((uv_handle_t *)&c->async))
        uv_close((uv_handle_t *)&c->async, on_client_closed);
}

static void on_client_async(uv_async_t *a)
{
    yr_store_client_t *c = a->data;
    pthread_mutex_lock(&c->mu);
    yr_store_op_t *list = c->done_head;
    c->done_head = c->done_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    c->dispatching = true;
    while (list != NULL) {
        yr_store_op_t *op = list;
        list = op->next;
        c->inflight--;
        /* Read on the loop thread, which is the only writer: a cancel made
         * by an earlier callback of this same batch is seen. */
        if (!atomic_load_explicit(&op->cancelled, memory_order_relaxed))
            op_callback(op);
        op_free(op);
    }
    c->dispatching = false;
    client_maybe_close(c);
}

int yr_store_client_init(uv_loop_t *loop, yr_store_thread_t *t, yr_store_client_t **out)
{
    yr_store_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    int rc = uv_async_init(loop, &c->async, on_client_async);
    if (rc < 0) {
        free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->async.data = c;
    c->t = t;
    *out = c;
    return 0;
}

void yr_store_client_close(yr_store_client_t *c, void (*on_closed)(void *arg), void *arg)
{
    if (c == NULL || c->closing)
        return;
    c->closing = true;
    c->on_closed = on_closed;
    c->closed_arg = arg;
    client_maybe_close(c);
}

static yr_store_op_t *op_new(yr_store_client_t *c, op_kind_t kind, void *arg)
{
    yr_store_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->client = c;
    op->kind = kind;
    op->arg = arg;
    atomic_init(&op->cancelled, false);
    return op;
}

/* Queues op, or frees it and returns why not (its callback never runs). */
static int submit(yr_store_client_t *c, yr_store_op_t *op, yr_store_op_t **handle)
{
    yr_store_thread_t *t = c->t;
    int rc = 0;
    if (c->closing) {
        rc = -ESHUTDOWN;
        goto out;
    }
    pthread_mutex_lock(&t->mu);
    if (t->stopping) {
        rc = -ESHUTDOWN;
    } else if (t->nops >= YR_STORE_QUEUE_MAX) {
        rc = -EAGAIN;
    } else {
        if (t->ops_tail != NULL)
            t->ops_tail->next = op;
        else
            t->ops_head = op;
        t->ops_tail = op;
        t->nops++;
        pthread_cond_signal(&t->work);
    }
    if (rc != 0)
        t->stats.ops_rejected++;
    pthread_mutex_unlock(&t->mu);
out:
    if (rc != 0) {
        op_free(op);
        return rc;
    }
    c->inflight++;
    if (handle != NULL)
        *handle = op;
    return 0;
}

int yr_store_lookup_async(yr_store_client_t *c, const unsigned char *hash, yr_store_lookup_cb cb,
                          void *arg, yr_store_op_t **handle)
{
    if (cb == NULL || hash == NULL)
        return -EINVAL;
    yr_store_op_t *op = op_new(c, OP_LOOKUP, arg);
    if (op == NULL)
        return -ENOMEM;
    op->cb.lookup = cb;
    memcpy(op->hash, hash, YR_KEY_HASH_LEN);
    return submit(c, op, handle);
}

/* Copies a name (or revoke argument) into op; one that does not fit is
 * longer than any name, and gets too_long without a database round trip. */
static void op_set_text(yr_store_op_t *op, const char *text, int too_long)
{
    size_t len = strnlen(text, OP_TEXT_MAX);
    if (len == OP_TEXT_MAX) {
        op->preset = too_long;
        return;
    }
    memcpy(op->text, text, len);
    op->text[len] = '\0';
}

int yr_store_create_async(yr_store_client_t *c, const char *name, yr_store_create_cb cb, void *arg,
                          yr_store_op_t **handle)
{
    if (cb == NULL || name == NULL)
        return -EINVAL;
    yr_store_op_t *op = op_new(c, OP_CREATE, arg);
    if (op == NULL)
        return -ENOMEM;
    op->cb.create = cb;
    op_set_text(op, name, -EINVAL);
    return submit(c, op, handle);
}

int yr_store_list_async(yr_store_client_t *c, yr_store_list_cb cb, void *arg,
                        yr_store_op_t **handle)
{
    if (cb == NULL)
        return -EINVAL;
    yr_store_op_t *op = op_new(c, OP_LIST, arg);
    if (op == NULL)
        return -ENOMEM;
    op->cb.list = cb;
    return submit(c, op, handle);
}

int yr_store_revoke_async(yr_store_client_t *c, const char *name_or_id, yr_store_revoke_cb cb,
                          void *arg, yr_store_op_t **handle)
{
    if (cb == NULL || name_or_id == NULL)
        return -EINVAL;
    yr_store_op_t *op = op_new(c, OP_REVOKE, arg);
    if (op == NULL)
        return -ENOMEM;
    op->cb.revoke = cb;
    op_set_text(op, name_or_id, -ENOENT);
    return submit(c, op, handle);
}

int yr_store_call_async(yr_store_client_t *c, int (*fn)(yr_store_t *s, void *arg),
                        void (*done)(void *arg, int status), void (*cleanup)(void *arg),
                        const void *arg, size_t argsize, yr_store_op_t **handle)
{
    if (fn == NULL || done == NULL || argsize == 0 || argsize > CALL_ARG_MAX)
        return -EINVAL;
    yr_store_op_t *op = op_new(c, OP_CALL, NULL);
    void *copy = op != NULL ? malloc(argsize) : NULL;
    if (copy == NULL) {
        free(op);
        if (cleanup != NULL)
            cleanup((void *)arg); /* as when the queue refuses it (op_free) */
        return -ENOMEM;
    }
    op->callarg = copy;
    memcpy(op->callarg, arg, argsize);
    op->call = fn;
    op->cb.done = done;
    op->cleanup = cleanup;
    return submit(c, op, handle);
}

void yr_store_cancel(yr_store_op_t *op)
{
    if (op != NULL)
        atomic_store_explicit(&op->cancelled, true, memory_order_relaxed);
}

/* ---- usage ------------------------------------------------------------------ */

static size_t cut(yr_str_t s)
{
    return s.len > YR_USAGE_STR_MAX ? YR_USAGE_STR_MAX : s.len;
}

/* Copies s into *p and returns the slice of the copy. */
static yr_str_t put_str(char **p, yr_str_t s)
{
    size_t n = cut(s);
    yr_str_t r = {n ? *p : NULL, n};
    if (n > 0)
        memcpy(*p, s.ptr, n);
    *p += n;
    return r;
}

static usage_node_t *usage_copy(const yr_usage_row_t *row)
{
    size_t n = cut(row->request_id) + cut(row->model_id) + cut(row->provider) +
               cut(row->upstream_model) + cut(row->outcome) + cut(row->error_class);
    usage_node_t *u = malloc(sizeof(*u) + n);
    if (u == NULL)
        return NULL;
    char *p = u->strings;
    u->next = NULL;
    u->row = *row;
    u->row.request_id = put_str(&p, row->request_id);
    u->row.model_id = put_str(&p, row->model_id);
    u->row.provider = put_str(&p, row->provider);
    u->row.upstream_model = put_str(&p, row->upstream_model);
    u->row.outcome = put_str(&p, row->outcome);
    u->row.error_class = put_str(&p, row->error_class);
    if (u->row.created_ms == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        u->row.created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    return u;
}

int yr_store_usage_append(yr_store_client_t *c, const yr_usage_row_t *row)
{
    yr_store_thread_t *t = c->t;
    usage_node_t *u = NULL;
    bool first_drop = false;
    int rc = 0;
    if (row == NULL || row->request_id.len == 0)
        rc = -EINVAL;
    else if ((u = usage_copy(row)) == NULL)
        rc = -ENOMEM;
    pthread_mutex_lock(&t->mu);
    if (rc == 0 && t->stopping)
        rc = -ESHUTDOWN;
    else if (rc == 0 && t->nusage >= YR_USAGE_QUEUE_MAX)
        rc = -EAGAIN;
    if (rc == 0) {
        /* The store thread needs waking for the first row (it sleeps until
         * rows come, then lingers) and for a full batch; the rows between
         * wait for it without a wake-up each. */
        bool wake = t->usage_head == NULL || t->nusage + 1 == YR_USAGE_BATCH_MAX;
        if (t->usage_tail != NULL) {
            t->usage_tail->next = u;
        } else {
            t->usage_head = u;
            t->usage_since = mono_ms();
        }
        t->usage_tail = u;
        t->nusage++;
        t->usage_queued++;
        if (wake)
            pthread_cond_signal(&t->work);
    } else {
        t->stats.usage_dropped++;
        if (rc != -EINVAL)
            first_drop = t->dropped_unlogged++ == 0;
    }
    bool behind = t->nusage > YR_USAGE_BEHIND;
    pthread_mutex_unlock(&t->mu);
    /* The writer is batches behind: a worker that never blocks (saturated,
     * on the writer's core, under an equal real-time priority) would starve
     * it and rows would be dropped; stepping aside once per row lets it
     * write a batch. Costs nothing while the writer keeps up or has a core. */
    if (behind)
        sched_yield();
    if (rc != 0) {
        free(u);
        /* Once per run of drops; the store thread logs the count when the
         * queue moves again, so an overload costs two log lines, not one per
         * request. */
        if (first_drop)
            yr_log_warn("store: dropping usage rows (%s; queue cap %d rows)", strerror(-rc),
                        YR_USAGE_QUEUE_MAX);
        else if (rc == -EINVAL)
            yr_log_error("store: usage row without a request id dropped");
    }
    return rc;
}
