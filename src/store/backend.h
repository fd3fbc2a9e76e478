/* The storage backend interface, private to src/store/.
 *
 * A backend is a table of synchronous functions over one connection; it only
 * speaks SQL. Everything that does not depend on the database lives in
 * store.c (url dispatch, key generation, name rules, the public sync API) and
 * thread.c (the store thread, queues, completions). SQLite is sqlite.c; a
 * PostgreSQL backend is another table next to it, picked by url scheme in
 * store.c.
 *
 * A connection (yr_store_t) is used by one thread at a time. Every function
 * returns 0 or a negative errno value and logs unexpected database errors
 * itself (never with bound values: no names, hashes or keys in logs). */
#ifndef YR_STORE_BACKEND_H
#define YR_STORE_BACKEND_H

#include "store/store.h"

typedef struct yr_store_backend yr_store_backend_t;

/* Every backend's connection struct starts with this. */
struct yr_store {
    const yr_store_backend_t *be;
};

struct yr_store_backend {
    const char *name;
    /* target: what follows the scheme (for SQLite, the file name or
     * ":memory:"). Migrates the schema. *out is freed with close(). */
    int (*open)(const char *target, yr_store_t **out, char *err, size_t errlen);
    void (*close)(yr_store_t *s);
    /* Inserts an active key; *id is its new row id. -EEXIST when an active
     * key already has this name. */
    int (*key_insert)(yr_store_t *s, const char *name, const unsigned char *hash,
                      const char *prefix, int64_t now, const yr_key_policy_t *policy,
                      int64_t *id);
    /* The active key by id (> 0) or name: replace its policy / its secret
     * (the old one valid until prev_valid_until) / read it. -ENOENT. */
    int (*key_update)(yr_store_t *s, const char *name, size_t name_len, int64_t id,
                      const yr_key_policy_t *policy, yr_key_info_t *info);
    int (*key_rotate)(yr_store_t *s, const char *name, size_t name_len, int64_t id,
                      const unsigned char *hash, const char *prefix, int64_t prev_valid_until,
                      yr_key_info_t *info);
    int (*key_get)(yr_store_t *s, const char *name, size_t name_len, int64_t id,
                   yr_key_info_t *info);
    int (*key_list)(yr_store_t *s, yr_key_list_fn fn, void *arg);
    /* By id when id > 0, else by name. -ENOENT when no active key matches;
     * info (may be NULL) gets the revoked row. */
    int (*key_revoke)(yr_store_t *s, const char *name, size_t name_len, int64_t id, int64_t now,
                      yr_key_info_t *info);
    /* By the hash of its secret, or of its previous secret within its grace;
     * never an expired key. now is unix seconds. Fills spent_micros when the
     * key has budgets. */
    int (*key_lookup)(yr_store_t *s, const unsigned char *hash, int64_t now, yr_key_info_t *info);
    /* Stored Responses API responses, scoped to the key that made them. */
    int (*response_put)(yr_store_t *s, const char *id, int64_t key_id, int64_t created_ms,
                        const char *input_items, const char *response);
    int (*response_get)(yr_store_t *s, const char *id, int64_t key_id, char **input_items,
                        char **response);
    int (*response_delete)(yr_store_t *s, const char *id, int64_t key_id);
    /* Deletes every response created before before_ms (responses.retention_days). */
    int (*response_purge)(yr_store_t *s, int64_t before_ms);
    /* Content rows (store.h yr_content_row_t). */
    int (*content_put)(yr_store_t *s, const yr_content_row_t *row);
    int (*content_get)(yr_store_t *s, const char *id, int64_t now_ms, yr_content_row_t *row);
    int (*content_purge)(yr_store_t *s, int64_t now_ms, int64_t *deleted);
    int (*usage_totals)(yr_store_t *s, yr_usage_by_t by, int64_t since_ms, int64_t key_id,
                        yr_usage_total_fn fn, void *arg);
    /* The admin UI's aggregates (store.h). */
    int (*usage_series)(yr_store_t *s, const yr_usage_query_t *q, yr_usage_total_fn fn, void *arg);
    int (*usage_hist)(yr_store_t *s, const yr_usage_query_t *q, yr_usage_hist_fn fn, void *arg);
    int (*usage_recent)(yr_store_t *s, const yr_recent_query_t *q, yr_usage_rec_fn fn, void *arg);
    int (*key_page)(yr_store_t *s, const yr_key_page_t *q, yr_key_list_fn fn, void *arg);
    /* n rows, one transaction: all or none. */
    int (*usage_write)(yr_store_t *s, const yr_usage_row_t *rows, size_t n);
};

extern const yr_store_backend_t yr_store_sqlite;
extern const yr_store_backend_t yr_store_postgres; /* target: the whole postgres:// url */

/* The hourly rollups (usage_hourly, usage_latency_hourly) the admin UI reads
 * for buckets of whole hours, kept by both backends in the transaction that
 * writes the rows: a row's error class as the series group it (the SQL
 * CLASS expression's twin), and a sample rounded down to two significant
 * digits (HBUCKET's). */
#define YR_HOUR_MS 3600000
void yr_usage_class(const yr_usage_row_t *r, char *buf, size_t cap);
int64_t yr_usage_hbucket(int64_t v);

/* snprintf into err when err is not NULL (errlen may be 0). */
void yr_store_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
