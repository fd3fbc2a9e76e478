/* Persistent store: client keys and usage rows.
 *
 * Two ways in, over one backend (store/backend.h: SQLite today, PostgreSQL
 * later), so every SQL statement has exactly one code path:
 *
 * - Synchronous (yr_store_t): one database connection, used by one thread
 *   only. `yourouter keys` uses it, and so does the store thread.
 * - Asynchronous (yr_store_thread_t + yr_store_client_t): the gateway. One
 *   store thread per process owns one connection and serves every worker
 *   through a bounded request queue. A worker submits through its
 *   yr_store_client_t; the result comes back on the worker's own libuv loop
 *   (a uv_async_t), and the callback runs on the worker's thread. The event
 *   loop never runs SQL.
 *
 * Schema migrations run in yr_store_open(). docs/store.md has the ownership
 * and lifetime rules. */
#ifndef YR_STORE_H
#define YR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

#define YR_KEY_HASH_LEN 32 /* SHA-256 */
#define YR_KEY_MAX_LEN 64  /* a printed client key, with its NUL */
#define YR_KEY_PREFIX "yr-"
#define YR_KEY_LEN 46        /* "yr-" + 43 base64url chars (32 random bytes) */
#define YR_KEY_PREFIX_LEN 10 /* characters kept in yr_key_info_t.prefix */

/* Key operations waiting for the store thread, all workers together. A
 * submit beyond it fails with -EAGAIN (the caller answers 503). */
#define YR_STORE_QUEUE_MAX 1024
/* Usage rows waiting to be written, all workers together. Rows beyond it are
 * dropped, counted (yr_store_stats_t.usage_dropped) and logged. */
#define YR_USAGE_QUEUE_MAX 8192
/* Rows per write transaction. */
#define YR_USAGE_BATCH_MAX 256
/* How long the first row of a batch waits for more before it is written (a
 * full batch, a flush or a stop does not wait): a row reaches the database at
 * most this much later, and at a few thousand requests per second a
 * transaction carries dozens of rows instead of one. */
#define YR_USAGE_LINGER_MS 10
/* Longest string field of a usage row that is kept; longer ones are cut. */
#define YR_USAGE_STR_MAX 256

typedef struct yr_store yr_store_t;

/* Budget windows; each resets at 00:00 UTC (day), the 1st 00:00 UTC
 * (month) or never (total). */
enum { YR_BUDGET_DAY, YR_BUDGET_MONTH, YR_BUDGET_TOTAL, YR_BUDGET__COUNT };

/* What a key may do. Zero / empty: no limit. */
typedef struct {
    char allowed_models[256];  /* comma-separated patterns, '*' matches any run */
    char allowed_vendors[128]; /* comma-separated provider names */
    int64_t rpm;               /* requests per minute (sliding 60 s) */
    int64_t tpm;               /* tokens per minute (sliding 60 s) */
    int64_t max_concurrency;   /* requests in flight */
    int64_t budget_micros[YR_BUDGET__COUNT]; /* USD x 1e6 */
    int64_t expires_at;        /* unix seconds; 0: never */
    char metadata[512];        /* a JSON object, or "" */
    /* Content logging (docs/observability.md): the request bodies of this key
     * and the answers its clients got are kept log_retention_s seconds. Off
     * by default; on without a retention means YR_CONTENT_RETENTION_DEF. */
    bool log_content;
    int64_t log_retention_s; /* 0 when log_content is off */
} yr_key_policy_t;

#define YR_CONTENT_RETENTION_DEF (7 * 86400)
#define YR_CONTENT_RETENTION_MAX (90 * 86400)
/* Bytes of a request body, and of an answer, kept in a content row. */
#define YR_CONTENT_MAX (1024 * 1024)

typedef struct {
    int64_t id;
    char name[128];
    char prefix[16];    /* first characters of the key, safe to display */
    int64_t created_at; /* unix seconds */
    int64_t revoked_at; /* 0 when active */
    yr_key_policy_t policy;
    int64_t prev_valid_until; /* unix seconds the secret before a rotation stays valid; 0: none */
    /* Lookups of keys with budgets: spent in the current window of each
     * (from the usage rows written so far). */
    int64_t spent_micros[YR_BUDGET__COUNT];
} yr_key_info_t;

/* One finished request, for accounting. Strings are slices (not necessarily
 * NUL-terminated) owned by the caller; yr_store_usage_append() copies them.
 * An empty slice is stored as NULL. Counts unknown to the caller are 0;
 * latency_ms / ttfb_ms are -1 when unknown (stored as NULL). */
typedef struct {
    yr_str_t request_id;     /* required */
    int64_t key_id;          /* api_keys.id; 0 for the master key (NULL) */
    yr_str_t model_id;       /* the model the client asked for */
    yr_str_t provider;       /* the provider (vendor) name of the last attempt */
    yr_str_t upstream_model; /* the model sent upstream */
    int http_status;         /* the status the client got */
    yr_str_t outcome;        /* "ok", "upstream_error", "client_abort", ... */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;      /* prompt tokens read from a provider cache */
    int64_t cache_write_tokens; /* prompt tokens written to a provider cache */
    int64_t reasoning_tokens;
    int64_t latency_ms; /* request start to last byte */
    int64_t ttfb_ms;    /* request start to the first upstream byte */
    int64_t created_ms; /* unix milliseconds; 0 = now */
    int attempt;            /* 0-based; (request_id, attempt) is unique */
    int upstream_status;    /* this attempt's HTTP status; 0: none */
    int64_t cost_micros;    /* USD x 1e6; -1: no price known (NULL) */
    bool stream;
    bool cancelled;         /* the client went away during this attempt */
    yr_str_t error_class;   /* the attempt's outcome when it failed; empty when ok */
    bool usage_estimated;   /* tokens estimated (the provider reported none) */
} yr_usage_row_t;

/* Usage totals of one group (a model, vendor, key name or day). */
typedef struct {
    char group[128];
    int64_t requests; /* distinct requests */
    int64_t attempts;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
        reasoning_tokens;
    int64_t cost_micros;
    int64_t errors; /* attempts that failed */
    int64_t bucket_ms; /* yr_store_usage_series: start of the time bucket (unix ms) */
} yr_usage_total_t;

/* Totals take MODEL..DAY; series take MODEL, VENDOR, KEY, CLASS (the
 * attempt's error class, "ok" when it succeeded) and NONE (one group, ""). */
typedef enum {
    YR_USAGE_BY_MODEL,
    YR_USAGE_BY_VENDOR,
    YR_USAGE_BY_KEY,
    YR_USAGE_BY_DAY,
    YR_USAGE_BY_CLASS,
    YR_USAGE_BY_NONE,
} yr_usage_by_t;
typedef void (*yr_usage_total_fn)(const yr_usage_total_t *t, void *arg);

/* Totals per group of the rows created at or after since_ms (unix ms),
 * for one key (key_id > 0) or all (0); largest cost first (by day: in
 * order). */
__attribute__((warn_unused_result)) int yr_store_usage_totals(yr_store_t *store, yr_usage_by_t by,
                                                              int64_t since_ms, int64_t key_id,
                                                              yr_usage_total_fn fn, void *arg);

typedef void (*yr_key_list_fn)(const yr_key_info_t *info, void *arg);

/* ---- aggregates for the admin UI (docs/ui.md) -----------------------------
 * Every one is one SQL statement, aggregated in the database over the
 * usage_created index (rows created in [since_ms, until_ms)), so its cost is
 * the rows of the window, never the table. */
typedef struct {
    int64_t since_ms, until_ms; /* until_ms 0: no upper bound */
    int64_t bucket_ms;          /* > 0 */
    int64_t key_id;             /* > 0: that key's rows only */
    yr_usage_by_t by;           /* series: MODEL, VENDOR, KEY, CLASS or NONE */
} yr_usage_query_t;

/* Where q is answered from: whole-hour buckets from a whole hour come from
 * the hourly rollups (usage_hourly by model, vendor and class; usage_key_hourly
 * by key or for one key), so their cost is hours x groups whatever the row
 * count; anything else from the rows. */
enum { YR_PLAN_ROWS, YR_PLAN_HOURLY, YR_PLAN_KEY_HOURLY };
static inline int yr_usage_plan(const yr_usage_query_t *q)
{
    if (q->bucket_ms % 3600000 != 0 || q->since_ms % 3600000 != 0 || q->until_ms % 3600000 != 0)
        return YR_PLAN_ROWS;
    if (q->by == YR_USAGE_BY_KEY || (q->by == YR_USAGE_BY_NONE && q->key_id > 0))
        return YR_PLAN_KEY_HOURLY;
    return q->key_id > 0 ? YR_PLAN_ROWS : YR_PLAN_HOURLY;
}

/* Totals per (time bucket, group), in bucket order; t->bucket_ms is set.
 * requests counts first attempts (every request has exactly one). */
__attribute__((warn_unused_result)) int yr_store_usage_series(yr_store_t *store,
                                                              const yr_usage_query_t *q,
                                                              yr_usage_total_fn fn, void *arg);

/* The distribution of latency_ms (which 0) and ttfb_ms (which 1) of the
 * successful attempts per time bucket, as (value, count) pairs where value is
 * the sample rounded down to two significant digits (exact below 100 ms). */
typedef void (*yr_usage_hist_fn)(int64_t bucket_ms, int which, int64_t value, int64_t count,
                                 void *arg);
__attribute__((warn_unused_result)) int yr_store_usage_hist(yr_store_t *store,
                                                            const yr_usage_query_t *q,
                                                            yr_usage_hist_fn fn, void *arg);

/* One attempt row of yr_store_usage_recent, with its request's fields. */
typedef struct {
    char request_id[64];
    int64_t created_ms; /* of the request's first attempt: the page cursor */
    int64_t row_id;     /* ... and its row id, to break ties */
    char key[128];      /* key name; "master" for the master key */
    char model_id[128];
    int status; /* the client's */
    int attempt;
    char provider[128], upstream_model[128], outcome[32], error_class[32];
    int upstream_status;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens;
    int64_t cost_micros; /* -1: unknown */
    int64_t latency_ms, ttfb_ms; /* -1: unknown */
    bool stream, cancelled, usage_estimated;
} yr_usage_rec_t;
typedef void (*yr_usage_rec_fn)(const yr_usage_rec_t *r, void *arg);

typedef struct {
    int64_t before_ms, before_id; /* cursor: requests strictly older; 0: the newest */
    int64_t key_id;               /* > 0: that key's requests only */
    bool errors_only;             /* the client got a 4xx or 5xx */
    int limit;                    /* requests, 1..200 */
} yr_recent_query_t;

/* The newest requests (keyset-paginated by (created_ms, id) of their first
 * attempt, newest first), every attempt of each in order. */
__attribute__((warn_unused_result)) int yr_store_usage_recent(yr_store_t *store,
                                                              const yr_recent_query_t *q,
                                                              yr_usage_rec_fn fn, void *arg);

typedef struct {
    int64_t after_id;       /* keys with a larger id; 0: from the first */
    int limit;              /* 1..500 */
    const char *search;     /* substring of the name; NULL or "": all */
    bool include_revoked;
    int64_t day_start, month_start; /* unix ms of the current budget windows */
} yr_key_page_t;

/* A page of keys in id order, each with spent_micros of its windows (day,
 * month, total) summed from its usage rows. */
__attribute__((warn_unused_result)) int yr_store_key_page(yr_store_t *store, const yr_key_page_t *q,
                                                          yr_key_list_fn fn, void *arg);

/* ---- synchronous: one connection, one thread --------------------------- */

/* Opens url ("sqlite://PATH", "sqlite::memory:") and migrates the schema.
 * Returns 0 and *out (caller owns; yr_store_close) or a negative code with a
 * message in err. */
__attribute__((warn_unused_result)) int yr_store_open(const char *url, yr_store_t **out, char *err,
                                                      size_t errlen);
void yr_store_close(yr_store_t *store);

/* Creates a key: writes the printable key (NUL-terminated) into key_out, which
 * must hold YR_KEY_MAX_LEN bytes, and stores only its SHA-256. -EEXIST when an
 * active key already has that name; -EINVAL unless name is 1..127 characters
 * of [A-Za-z0-9._-] and not all digits (all digits means an id to revoke).
 * info may be NULL. */
__attribute__((warn_unused_result)) int yr_store_key_create(yr_store_t *store, const char *name,
                                                            char *key_out, yr_key_info_t *info);
/* The same, with a policy (NULL: no limits). -EINVAL for a bad policy
 * (a pattern list or metadata too long, negative limits). */
__attribute__((warn_unused_result)) int yr_store_key_create_with(yr_store_t *store, const char *name,
                                                                 const yr_key_policy_t *policy,
                                                                 char *key_out,
                                                                 yr_key_info_t *info);
/* Replaces the policy of the active key with this name or id. 0, -ENOENT. */
__attribute__((warn_unused_result)) int yr_store_key_update(yr_store_t *store,
                                                            const char *name_or_id,
                                                            const yr_key_policy_t *policy,
                                                            yr_key_info_t *info);
/* Gives the active key a new secret (into key_out, YR_KEY_MAX_LEN bytes);
 * the old one keeps working for grace_s seconds. 0, -ENOENT. */
__attribute__((warn_unused_result)) int yr_store_key_rotate(yr_store_t *store,
                                                            const char *name_or_id,
                                                            int64_t grace_s, char *key_out,
                                                            yr_key_info_t *info);
/* The active key with this name or id. 0, -ENOENT. */
__attribute__((warn_unused_result)) int yr_store_key_get(yr_store_t *store, const char *name_or_id,
                                                         yr_key_info_t *info);
/* Responses API state (store: true): a response and the input items it
 * answered, for the key that created it (0: the master key). get: -ENOENT
 * when absent or another key's; *input_items and *response are malloc'ed
 * (the caller frees). */
__attribute__((warn_unused_result)) int yr_store_response_put(yr_store_t *store, const char *id,
                                                              int64_t key_id, int64_t created_ms,
                                                              const char *input_items,
                                                              const char *response);
__attribute__((warn_unused_result)) int yr_store_response_get(yr_store_t *store, const char *id,
                                                              int64_t key_id, char **input_items,
                                                              char **response);
__attribute__((warn_unused_result)) int yr_store_response_delete(yr_store_t *store, const char *id,
                                                                 int64_t key_id);
/* Deletes the responses of every key created before before_ms (unix ms). */
__attribute__((warn_unused_result)) int yr_store_response_purge(yr_store_t *store,
                                                                int64_t before_ms);
/* Content logging: one row per request of a key with log_content. The
 * request and response bytes are malloc'ed by get (yr_content_row_free);
 * put only reads them. get: -ENOENT when absent or expired at now_ms.
 * purge: deletes every row expired at now_ms; *deleted (may be NULL) gets
 * the count. */
typedef struct {
    char request_id[64];
    int64_t key_id;
    int64_t created_ms, expires_ms;
    int status;
    bool stream;
    char *request, *response;
    size_t request_len, response_len;
    bool request_truncated, response_truncated;
} yr_content_row_t;
__attribute__((warn_unused_result)) int yr_store_content_put(yr_store_t *store,
                                                             const yr_content_row_t *row);
__attribute__((warn_unused_result)) int yr_store_content_get(yr_store_t *store, const char *id,
                                                             int64_t now_ms,
                                                             yr_content_row_t *row);
__attribute__((warn_unused_result)) int yr_store_content_purge(yr_store_t *store, int64_t now_ms,
                                                               int64_t *deleted);
void yr_content_row_free(yr_content_row_t *row);
/* Calls fn for every key, oldest first. info is valid only during the call;
 * fn must not call back into the same store. */
__attribute__((warn_unused_result)) int yr_store_key_list(yr_store_t *store, yr_key_list_fn fn,
                                                          void *arg);
/* Revokes the active key with this name, or with this numeric id.
 * Returns 0, or -ENOENT when no active key matches. */
__attribute__((warn_unused_result)) int yr_store_key_revoke(yr_store_t *store,
                                                            const char *name_or_id);
/* The same, and fills info (when not NULL) with the key just revoked, so a
 * caller can say which key an id or name resolved to. */
__attribute__((warn_unused_result)) int
yr_store_key_revoke_info(yr_store_t *store, const char *name_or_id, yr_key_info_t *info);
/* Finds an active key by the SHA-256 of its text. 0 (info filled when not
 * NULL), -ENOENT when unknown or revoked, other negatives on errors. */
__attribute__((warn_unused_result)) int
yr_store_key_lookup(yr_store_t *store, const unsigned char *hash, yr_key_info_t *info);
/* Writes n rows in one transaction: all or none. 0 or a negative code. */
__attribute__((warn_unused_result)) int yr_store_usage_write(yr_store_t *store,
                                                             const yr_usage_row_t *rows, size_t n);

/* SHA-256 of a key's text (the stored form). */
void yr_key_hash(const char *key, size_t len, unsigned char out[YR_KEY_HASH_LEN]);

/* ---- asynchronous: the store thread ------------------------------------ */

typedef struct yr_store_thread yr_store_thread_t;
typedef struct yr_store_client yr_store_client_t;
typedef struct yr_store_op yr_store_op_t;

/* Counters, read with yr_store_stats() from any thread. */
typedef struct {
    uint64_t ops_done;      /* key operations run */
    uint64_t ops_rejected;  /* submits refused: queue full or stopping */
    uint64_t usage_written; /* rows committed */
    uint64_t usage_batches; /* transactions that committed them */
    uint64_t usage_dropped; /* rows refused: queue full, out of memory, stopped */
    uint64_t usage_failed;  /* rows lost: still failing when the store stopped */
    uint64_t usage_retries; /* batches tried again after a failed write */
    uint64_t usage_depth;   /* rows queued now, not yet written */
} yr_store_stats_t;

/* Opens url (as yr_store_open, on the calling thread, so a bad url or schema
 * fails the start) and starts the store thread, which owns that connection
 * from then on. Returns 0 and *out (caller owns; yr_store_thread_stop), or a
 * negative code with a message in err. */
__attribute__((warn_unused_result)) int
yr_store_thread_start(const char *url, yr_store_thread_t **out, char *err, size_t errlen);
/* Writes every usage row still queued, runs the key operations still queued,
 * joins the thread, closes the connection and frees t. Every client must be
 * closed (its close callback run) before: call it after the workers are
 * joined. NULL is a no-op. */
void yr_store_thread_stop(yr_store_thread_t *t);
/* Blocks until every usage row appended before the call has been written
 * (or dropped), without the linger. Tests and shutdown paths; never on an
 * event loop. */
void yr_store_thread_flush(yr_store_thread_t *t);
void yr_store_stats(yr_store_thread_t *t, yr_store_stats_t *out);

/* A worker's side of the store: a uv_async_t on loop that delivers the
 * completions of the ops submitted through it. Every function taking a
 * client (or an op submitted through it) runs on loop's thread, except
 * yr_store_usage_append(), which only needs the client to be open. Returns 0
 * and *out (owned by the caller until yr_store_client_close), or a negative
 * code. */
__attribute__((warn_unused_result)) int yr_store_client_init(uv_loop_t *loop, yr_store_thread_t *t,
                                                             yr_store_client_t **out);
/* Closes the client once its last op has come back from the store thread
 * (cancelled ops included), then frees it and calls on_closed (may be NULL)
 * from its loop. Submitting after this call fails with -ESHUTDOWN. The loop
 * keeps running until then. NULL is a no-op. */
void yr_store_client_close(yr_store_client_t *c, void (*on_closed)(void *arg), void *arg);

/* Completion callbacks. They run on the client's loop thread, exactly once
 * per op, unless the op was cancelled first (then never). status is 0 or a
 * negative code as for the synchronous function of the same name. Pointers
 * passed are valid during the call only; the op is freed right after it. */
typedef void (*yr_store_lookup_cb)(void *arg, int status, const yr_key_info_t *info);
typedef void (*yr_store_create_cb)(void *arg, int status, const char *key,
                                   const yr_key_info_t *info);
typedef void (*yr_store_list_cb)(void *arg, int status, const yr_key_info_t *keys, size_t n);
typedef void (*yr_store_revoke_cb)(void *arg, int status, const yr_key_info_t *info);

/* Submit functions: 0 and *op (a handle, valid until the callback has run or
 * yr_store_cancel() was called; op may be NULL when the caller will never
 * cancel), or a negative code and the callback never runs: -EAGAIN (queue
 * full), -ESHUTDOWN (client closing or thread stopping), -ENOMEM, -EINVAL.
 * Arguments are copied: nothing the caller passes needs to outlive the call. */
__attribute__((warn_unused_result)) int yr_store_lookup_async(yr_store_client_t *c,
                                                              const unsigned char *hash,
                                                              yr_store_lookup_cb cb, void *arg,
                                                              yr_store_op_t **op);
__attribute__((warn_unused_result)) int yr_store_create_async(yr_store_client_t *c,
                                                              const char *name,
                                                              yr_store_create_cb cb, void *arg,
                                                              yr_store_op_t **op);
__attribute__((warn_unused_result)) int
yr_store_list_async(yr_store_client_t *c, yr_store_list_cb cb, void *arg, yr_store_op_t **op);
__attribute__((warn_unused_result)) int yr_store_revoke_async(yr_store_client_t *c,
                                                              const char *name_or_id,
                                                              yr_store_revoke_cb cb, void *arg,
                                                              yr_store_op_t **op);
/* Runs fn(store, arg) on the store thread, then done(arg, status) on the
 * client's loop (status: fn's return). arg is copied into the op (argsize
 * bytes, at most 64 KiB) and both functions get that copy, so nothing of the
 * caller's needs to outlive the call; the copy is freed after done. This is
 * how the admin API runs the same synchronous functions the CLI does. */
/* cleanup (may be NULL) runs on the copy when the op is freed, after done
 * or in its place when the op was cancelled: it frees what fn allocated.
 * When the call fails (the queue is full, out of memory, shutting down),
 * cleanup has already run on arg: the caller must not free what arg owns. */
__attribute__((warn_unused_result)) int
yr_store_call_async(yr_store_client_t *c, int (*fn)(yr_store_t *s, void *arg),
                    void (*done)(void *arg, int status), void (*cleanup)(void *arg),
                    const void *arg, size_t argsize, yr_store_op_t **op);
/* Cancels an op whose callback has not run yet: the callback never runs and
 * the op's memory is released by the store (when it comes back from the
 * store thread; a create that already ran stays done). After the call the
 * handle must not be used. Loop thread only. */
void yr_store_cancel(yr_store_op_t *op);

/* Queues one usage row, fire and forget: copies the row and every string
 * (each cut at YR_USAGE_STR_MAX bytes), so the caller may free or reuse all
 * of it on return; never blocks on the database (it takes the queue's mutex
 * for a pointer push). Rows are written in batches of up to
 * YR_USAGE_BATCH_MAX, one transaction each, by the store thread, within
 * YR_USAGE_LINGER_MS of the batch's first row (later only while the database
 * is slow or failing); every row
 * queued before yr_store_thread_stop() is written. Returns 0 when queued;
 * -EAGAIN when YR_USAGE_QUEUE_MAX rows are waiting, -ENOMEM, -ESHUTDOWN,
 * -EINVAL (no request id): the row is dropped and counted, and the caller has
 * nothing to undo (the return value is for tests and metrics; ignoring it is
 * fine). Any thread, while c is open. */
int yr_store_usage_append(yr_store_client_t *c, const yr_usage_row_t *row);

#endif
