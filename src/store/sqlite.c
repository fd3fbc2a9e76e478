/* The SQLite backend (store/backend.h).
 *
 * A gateway process and `yourouter keys` open the same file at the same time,
 * so every connection runs in WAL mode (readers never block the one writer)
 * with a busy timeout (a writer waits for another writer instead of failing).
 * Every statement is prepared once at open and reset right after
 * each use: a statement left un-reset would hold its read transaction open and
 * keep this connection on an old snapshot, so a key revoked by the CLI would
 * go on working in the gateway. Resetting is what makes a revoke visible to
 * the next lookup on every other connection. */
#include <errno.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/backend.h"

/* RETURNING lets a revoke report the row it changed in one atomic statement. */
#if SQLITE_VERSION_NUMBER < 3035000
#error "yourouter needs SQLite 3.35 or newer (UPDATE ... RETURNING)"
#endif

#define BUSY_TIMEOUT_MS 5000

/* The admin UI's aggregates (store.h): rows of the window [?1, ?2), of one
 * key (?4 > 0) or all, bucketed by ?3 ms. Requests are first attempts. */
#define WINDOW " FROM usage WHERE created_ms >= ?1 AND created_ms < ?2 AND (?4 = 0 OR key_id = ?4)"
#define SERIES_SUMS                                                                          \
    " SUM(attempt = 0) AS c1, COUNT(*) AS c2, SUM(prompt_tokens) AS c3,"                     \
    " SUM(completion_tokens) AS c4, SUM(cached_tokens) AS c5, SUM(cache_write_tokens) AS c6," \
    " SUM(reasoning_tokens) AS c7, SUM(cost_micros) AS c8, SUM(outcome IS NOT 'ok') AS c9"
#define SERIES(group) "SELECT created_ms / ?3 * ?3, " group "," SERIES_SUMS WINDOW " GROUP BY 1, 2 ORDER BY 1"
/* A sample rounded down to two significant digits: a histogram of at most
 * ~90 values per decade, so percentiles come from a GROUP BY, not a sort. */
#define HBUCKET(x)                                                                           \
    "CASE WHEN " x " < 100 THEN " x " WHEN " x " < 1000 THEN " x " / 10 * 10 WHEN " x        \
    " < 10000 THEN " x " / 100 * 100 WHEN " x " < 100000 THEN " x " / 1000 * 1000 ELSE " x   \
    " / 10000 * 10000 END"
#define HIST(which, x)                                                                       \
    "SELECT created_ms / ?3 * ?3, " which ", " HBUCKET(x) ", COUNT(*)" WINDOW                \
    " AND outcome = 'ok' AND " x " IS NOT NULL GROUP BY 1, 3"

#define ROLLUP_SUMS_DDL                                                                      \
    " requests INTEGER NOT NULL, attempts INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,"   \
    " completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,"                     \
    " cache_write_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,"                 \
    " cost_micros INTEGER NOT NULL, errors INTEGER NOT NULL"
#define ROLLUP_SUMS_SELECT                                                                   \
    " SUM(attempt = 0), COUNT(*), TOTAL(prompt_tokens), TOTAL(completion_tokens),"             \
    " TOTAL(cached_tokens), TOTAL(cache_write_tokens), TOTAL(reasoning_tokens),"               \
    " TOTAL(cost_micros), SUM(outcome IS NOT 'ok')"
#define ROLLUP_UPDATE(t) " DO UPDATE SET requests = " t ".requests + excluded.requests, attempts = " t ".attempts + excluded.attempts, prompt_tokens = " t ".prompt_tokens + excluded.prompt_tokens, completion_tokens = " t ".completion_tokens + excluded.completion_tokens, cached_tokens = " t ".cached_tokens + excluded.cached_tokens, cache_write_tokens = " t ".cache_write_tokens + excluded.cache_write_tokens, reasoning_tokens = " t ".reasoning_tokens + excluded.reasoning_tokens, cost_micros = " t ".cost_micros + excluded.cost_micros, errors = " t ".errors + excluded.errors"
#define ROLLUP_CLASS "CASE WHEN outcome = 'ok' THEN 'ok' ELSE COALESCE(error_class, outcome, 'unknown') END"
/* The same series from the hourly rollups (buckets of whole hours). */
#define RWINDOW " FROM usage_hourly WHERE hour_ms >= ?1 AND hour_ms < ?2 AND ?4 = 0"
#define RKWINDOW " FROM usage_key_hourly WHERE hour_ms >= ?1 AND hour_ms < ?2 AND (?4 = 0 OR key_id = ?4)"
#define RSUMS                                                                                \
    " SUM(requests) AS c1, SUM(attempts) AS c2, SUM(prompt_tokens) AS c3,"                    \
    " SUM(completion_tokens) AS c4, SUM(cached_tokens) AS c5, SUM(cache_write_tokens) AS c6,"  \
    " SUM(reasoning_tokens) AS c7, SUM(cost_micros) AS c8, SUM(errors) AS c9"
#define RSERIES(group) "SELECT hour_ms / ?3 * ?3, " group "," RSUMS RWINDOW " GROUP BY 1, 2 ORDER BY 1"

/* Each migration moves the schema from version i to i + 1 (PRAGMA
 * user_version). Never edit one that has shipped: append a new one. */
static const char *const migrations[] = {
    /* 1: client keys. Only the SHA-256 of a key is stored. A revoked row stays
     * (usage rows point at it), and the partial index lets its name be reused
     * by a new active key. */
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  key_hash BLOB NOT NULL UNIQUE,"
    "  prefix TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);"
    "CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;",

    /* 2: one row per request, written by the usage writer. */
    "CREATE TABLE usage ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT NOT NULL,"
    "  key_id INTEGER,"
    "  model TEXT,"
    "  vendor TEXT,"
    "  status INTEGER,"
    "  prompt_tokens INTEGER,"
    "  completion_tokens INTEGER,"
    "  latency_ms INTEGER,"
    "  created_at INTEGER NOT NULL);",

    /* 3: the usage row the gateway writes (store.h yr_usage_row_t). Nothing
     * wrote table 2 yet, so its columns are renamed to say what they hold
     * (created_at is milliseconds: created_ms) and the rest are added. The
     * index serves per-key accounting over a time range. */
    "ALTER TABLE usage RENAME COLUMN model TO model_id;"
    "ALTER TABLE usage RENAME COLUMN vendor TO provider;"
    "ALTER TABLE usage RENAME COLUMN created_at TO created_ms;"
    "ALTER TABLE usage ADD COLUMN upstream_model TEXT;"
    "ALTER TABLE usage ADD COLUMN outcome TEXT;"
    "ALTER TABLE usage ADD COLUMN cached_tokens INTEGER;"
    "ALTER TABLE usage ADD COLUMN cache_write_tokens INTEGER;"
    "ALTER TABLE usage ADD COLUMN reasoning_tokens INTEGER;"
    "ALTER TABLE usage ADD COLUMN ttfb_ms INTEGER;"
    "CREATE INDEX usage_key_created ON usage(key_id, created_ms);",

    /* 4: what a key may do (limits, budgets in micro-USD, expiry, patterns
     * of allowed models and vendors), the previous secret of a rotation
     * with its grace, and one usage row per upstream attempt with its cost. */
    "ALTER TABLE api_keys ADD COLUMN allowed_models TEXT;"
    "ALTER TABLE api_keys ADD COLUMN allowed_vendors TEXT;"
    "ALTER TABLE api_keys ADD COLUMN rpm INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN tpm INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN max_concurrency INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN budget_daily_micros INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN budget_monthly_micros INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN budget_total_micros INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN metadata TEXT;"
    "ALTER TABLE api_keys ADD COLUMN prev_hash BLOB;"
    "ALTER TABLE api_keys ADD COLUMN prev_valid_until INTEGER;"
    "CREATE INDEX api_keys_prev_hash ON api_keys(prev_hash) WHERE prev_hash IS NOT NULL;"
    "ALTER TABLE usage ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE usage ADD COLUMN upstream_status INTEGER;"
    "ALTER TABLE usage ADD COLUMN cost_micros INTEGER;"
    "ALTER TABLE usage ADD COLUMN stream INTEGER;"
    "ALTER TABLE usage ADD COLUMN cancelled INTEGER;"
    "ALTER TABLE usage ADD COLUMN error_class TEXT;"
    "CREATE UNIQUE INDEX usage_request_attempt ON usage(request_id, attempt);"
    "CREATE INDEX usage_created ON usage(created_ms);",

    /* 5: whether the tokens of a row are the provider's or an estimate (a
     * stream it never reported usage for: cut, cancelled, or passthrough
     * without include_usage). */
    "ALTER TABLE usage ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;",

    /* 6: Responses API state (store: true), scoped to the key (0: master). */
    "CREATE TABLE responses ("
    "  id TEXT PRIMARY KEY,"
    "  key_id INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  input_items TEXT NOT NULL,"
    "  response TEXT NOT NULL);",

    /* 7: hourly rollups for the admin UI (store.h; docs/ui.md), so a week of
     * millions of rows is a few thousand rollup rows. Kept by every usage
     * write, in its transaction; filled here from the rows so far. The
     * latency histogram is HBUCKET's (two significant digits). */
    "CREATE TABLE usage_hourly ("
    "  hour_ms INTEGER NOT NULL, model_id TEXT NOT NULL, provider TEXT NOT NULL,"
    "  class TEXT NOT NULL," ROLLUP_SUMS_DDL ","
    "  PRIMARY KEY (hour_ms, model_id, provider, class)) WITHOUT ROWID;"
    "INSERT INTO usage_hourly SELECT created_ms / 3600000 * 3600000, COALESCE(model_id, ''),"
    " COALESCE(provider, ''), " ROLLUP_CLASS "," ROLLUP_SUMS_SELECT " FROM usage GROUP BY 1, 2, 3, 4;"
    "CREATE TABLE usage_key_hourly ("
    "  hour_ms INTEGER NOT NULL, key_id INTEGER NOT NULL," ROLLUP_SUMS_DDL ","
    "  PRIMARY KEY (hour_ms, key_id)) WITHOUT ROWID;"
    "CREATE INDEX usage_key_hourly_key ON usage_key_hourly(key_id, hour_ms, cost_micros);"
    "INSERT INTO usage_key_hourly SELECT created_ms / 3600000 * 3600000, COALESCE(key_id, 0),"
    ROLLUP_SUMS_SELECT " FROM usage GROUP BY 1, 2;"
    "CREATE TABLE usage_latency_hourly ("
    "  hour_ms INTEGER NOT NULL, which INTEGER NOT NULL, value INTEGER NOT NULL,"
    "  count INTEGER NOT NULL, PRIMARY KEY (hour_ms, which, value)) WITHOUT ROWID;"
    "INSERT INTO usage_latency_hourly SELECT created_ms / 3600000 * 3600000, 0,"
    " " HBUCKET("latency_ms") ", COUNT(*) FROM usage WHERE outcome = 'ok'"
    " AND latency_ms IS NOT NULL GROUP BY 1, 3;"
    "INSERT INTO usage_latency_hourly SELECT created_ms / 3600000 * 3600000, 1,"
    " " HBUCKET("ttfb_ms") ", COUNT(*) FROM usage WHERE outcome = 'ok'"
    " AND ttfb_ms IS NOT NULL GROUP BY 1, 3;",

    /* 8: content logging, opted into per key (log_content): the key's
     * retention in seconds (NULL: off), and one row per logged request,
     * purged at expires_ms. */
    "ALTER TABLE api_keys ADD COLUMN content_retention_s INTEGER;"
    "CREATE TABLE content_log ("
    "  request_id TEXT PRIMARY KEY,"
    "  key_id INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  stream INTEGER NOT NULL,"
    "  request BLOB NOT NULL,"
    "  request_truncated INTEGER NOT NULL,"
    "  response BLOB NOT NULL,"
    "  response_truncated INTEGER NOT NULL);"
    "CREATE INDEX content_log_expires ON content_log(expires_ms);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Every query that yields keys returns these columns, read by row_to_info(). */
#define KEY_COLUMNS                                                                       \
    "id, name, prefix, created_at, revoked_at, allowed_models, allowed_vendors, rpm, tpm,"   \
    " max_concurrency, budget_daily_micros, budget_monthly_micros, budget_total_micros,"     \
    " expires_at, metadata, prev_valid_until, content_retention_s"
#define POLICY_SET                                                                          \
    "allowed_models = ?1, allowed_vendors = ?2, rpm = ?3, tpm = ?4, max_concurrency = ?5,"   \
    " budget_daily_micros = ?6, budget_monthly_micros = ?7, budget_total_micros = ?8,"       \
    " expires_at = ?9, metadata = ?10, content_retention_s = ?12"
#define TOTALS(group)                                                                       \
    "SELECT " group ", COUNT(DISTINCT request_id), COUNT(*), SUM(prompt_tokens),"            \
    " SUM(completion_tokens), SUM(cached_tokens), SUM(cache_write_tokens),"                  \
    " SUM(reasoning_tokens), SUM(cost_micros), SUM(outcome IS NOT 'ok') FROM usage"          \
    " WHERE created_ms >= ?1 AND (?2 = 0 OR key_id = ?2) GROUP BY 1"

enum {
    STMT_INSERT,
    STMT_LIST,
    STMT_LOOKUP,
    STMT_REVOKE_NAME,
    STMT_REVOKE_ID,
    STMT_USAGE,
    STMT_UPDATE_NAME,
    STMT_UPDATE_ID,
    STMT_ROTATE_NAME,
    STMT_ROTATE_ID,
    STMT_GET_NAME,
    STMT_GET_ID,
    STMT_SPENT,
    STMT_TOTALS_MODEL,
    STMT_TOTALS_VENDOR,
    STMT_TOTALS_KEY,
    STMT_TOTALS_DAY,
    STMT_RESP_PUT,
    STMT_RESP_GET,
    STMT_RESP_DEL,
    STMT_RESP_PURGE,
    STMT_CONTENT_PUT,
    STMT_CONTENT_GET,
    STMT_CONTENT_PURGE,
    STMT_SERIES_MODEL,
    STMT_SERIES_VENDOR,
    STMT_SERIES_KEY,
    STMT_SERIES_CLASS,
    STMT_SERIES_NONE,
    STMT_HIST,
    STMT_RSERIES_MODEL,
    STMT_RSERIES_VENDOR,
    STMT_RSERIES_KEY,
    STMT_RSERIES_CLASS,
    STMT_RSERIES_NONE,
    STMT_RSERIES_KEYNONE,
    STMT_RHIST,
    STMT_ROLLUP,
    STMT_KEY_ROLLUP,
    STMT_RLATENCY,
    STMT_RECENT,
    STMT_KEY_PAGE,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT__COUNT
};

static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_INSERT] = "INSERT INTO api_keys (allowed_models, allowed_vendors, rpm, tpm,"
                    " max_concurrency, budget_daily_micros, budget_monthly_micros,"
                    " budget_total_micros, expires_at, metadata, name, key_hash, prefix,"
                    " created_at, content_retention_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                    " ?9, ?10, ?11, ?13, ?14, ?15, ?12)",
    [STMT_UPDATE_NAME] = "UPDATE api_keys SET " POLICY_SET
                         " WHERE name = ?11 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [STMT_UPDATE_ID] = "UPDATE api_keys SET " POLICY_SET
                       " WHERE id = ?11 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [STMT_ROTATE_NAME] = "UPDATE api_keys SET prev_hash = key_hash, prev_valid_until = ?3,"
                         " key_hash = ?1, prefix = ?2 WHERE name = ?4 AND revoked_at IS NULL"
                         " RETURNING " KEY_COLUMNS,
    [STMT_ROTATE_ID] = "UPDATE api_keys SET prev_hash = key_hash, prev_valid_until = ?3,"
                       " key_hash = ?1, prefix = ?2 WHERE id = ?4 AND revoked_at IS NULL"
                       " RETURNING " KEY_COLUMNS,
    [STMT_GET_NAME] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE name = ?1 AND revoked_at IS NULL",
    [STMT_GET_ID] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = ?1 AND revoked_at IS NULL",
    [STMT_RESP_PUT] = "INSERT OR REPLACE INTO responses (id, key_id, created_ms, input_items,"
                      " response) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_RESP_GET] = "SELECT input_items, response FROM responses WHERE id = ?1 AND key_id = ?2",
    [STMT_RESP_DEL] = "DELETE FROM responses WHERE id = ?1 AND key_id = ?2",
    [STMT_RESP_PURGE] = "DELETE FROM responses WHERE created_ms < ?1",
    [STMT_CONTENT_PUT] = "INSERT OR REPLACE INTO content_log (request_id, key_id, created_ms,"
                         " expires_ms, status, stream, request, request_truncated, response,"
                         " response_truncated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [STMT_CONTENT_GET] = "SELECT key_id, created_ms, expires_ms, status, stream, request,"
                         " request_truncated, response, response_truncated FROM content_log"
                         " WHERE request_id = ?1 AND expires_ms > ?2",
    [STMT_CONTENT_PURGE] = "DELETE FROM content_log WHERE expires_ms <= ?1",
    [STMT_SPENT] = "SELECT COALESCE(SUM(cost_micros), 0) FROM usage"
                   " WHERE key_id = ?1 AND created_ms >= ?2",
    [STMT_TOTALS_MODEL] = TOTALS("COALESCE(model_id, '')"),
    [STMT_TOTALS_VENDOR] = TOTALS("COALESCE(provider, '')"),
    [STMT_TOTALS_KEY] = TOTALS("COALESCE((SELECT name FROM api_keys k WHERE k.id = usage.key_id),"
                               " 'master')"),
    [STMT_TOTALS_DAY] = TOTALS("strftime('%Y-%m-%d', created_ms / 1000, 'unixepoch')"),
    [STMT_LIST] = "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id",
    [STMT_LOOKUP] = "SELECT " KEY_COLUMNS " FROM api_keys"
                    " WHERE (key_hash = ?1 OR (prev_hash = ?1 AND prev_valid_until > ?2))"
                    " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
    [STMT_REVOKE_NAME] = "UPDATE api_keys SET revoked_at = ?1"
                         " WHERE name = ?2 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [STMT_REVOKE_ID] = "UPDATE api_keys SET revoked_at = ?1"
                       " WHERE id = ?2 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [STMT_USAGE] = "INSERT INTO usage (request_id, key_id, model_id, provider, upstream_model,"
                   " status, outcome, prompt_tokens, completion_tokens, cached_tokens,"
                   " cache_write_tokens, reasoning_tokens, latency_ms, ttfb_ms, created_ms,"
                   " attempt, upstream_status, cost_micros, stream, cancelled, error_class,"
                   " usage_estimated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                   " ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    [STMT_SERIES_MODEL] = SERIES("COALESCE(model_id, '')"),
    [STMT_SERIES_VENDOR] = SERIES("COALESCE(provider, '')"),
    [STMT_SERIES_CLASS] = SERIES("CASE WHEN outcome = 'ok' THEN 'ok'"
                                 " ELSE COALESCE(error_class, outcome, 'unknown') END"),
    [STMT_SERIES_NONE] = SERIES("''"),
    [STMT_RSERIES_MODEL] = RSERIES("model_id"),
    [STMT_RSERIES_VENDOR] = RSERIES("provider"),
    [STMT_RSERIES_CLASS] = RSERIES("class"),
    [STMT_RSERIES_NONE] = RSERIES("''"),
    [STMT_RSERIES_KEYNONE] = "SELECT hour_ms / ?3 * ?3, ''," RSUMS RKWINDOW " GROUP BY 1 ORDER BY 1",
    [STMT_RSERIES_KEY] = "SELECT s.t, COALESCE(k.name, 'master'), s.c1, s.c2, s.c3, s.c4, s.c5,"
                         " s.c6, s.c7, s.c8, s.c9 FROM (SELECT hour_ms / ?3 * ?3 AS t, key_id,"
                         RSUMS RKWINDOW " GROUP BY 1, 2) s LEFT JOIN api_keys k"
                         " ON k.id = s.key_id ORDER BY 1",
    [STMT_RHIST] = "SELECT hour_ms / ?3 * ?3, which, value, SUM(count) FROM usage_latency_hourly"
                   " WHERE hour_ms >= ?1 AND hour_ms < ?2 GROUP BY 1, 2, 3 ORDER BY 1",
    [STMT_ROLLUP] = "INSERT INTO usage_hourly VALUES (?1, ?2, ?3, ?4, ?5, ?13, ?6, ?7, ?8, ?9, ?10,"
                    " ?11, ?12) ON CONFLICT (hour_ms, model_id, provider, class)"
                    ROLLUP_UPDATE("usage_hourly"),
    [STMT_KEY_ROLLUP] = "INSERT INTO usage_key_hourly VALUES (?1, ?2, ?3, ?11, ?4, ?5, ?6, ?7, ?8, ?9,"
                        " ?10) ON CONFLICT (hour_ms, key_id)" ROLLUP_UPDATE("usage_key_hourly"),
    [STMT_RLATENCY] = "INSERT INTO usage_latency_hourly VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT (hour_ms, which, value) DO UPDATE SET count ="
                      " usage_latency_hourly.count + excluded.count",
    /* Names joined to the groups, not to every row. */
    [STMT_SERIES_KEY] = "SELECT s.t, COALESCE(k.name, 'master'), s.c1, s.c2, s.c3, s.c4, s.c5,"
                        " s.c6, s.c7, s.c8, s.c9 FROM (SELECT created_ms / ?3 * ?3 AS t, key_id,"
                        SERIES_SUMS WINDOW " GROUP BY 1, 2) s LEFT JOIN api_keys k"
                        " ON k.id = s.key_id ORDER BY 1",
    [STMT_HIST] = HIST("0", "latency_ms") " UNION ALL " HIST("1", "ttfb_ms") " ORDER BY 1",
    /* A page of first attempts over usage_created (keyset, newest first),
     * then every attempt of those requests over usage_request_attempt. */
    [STMT_RECENT] = "WITH page AS (SELECT request_id, created_ms, id FROM usage WHERE attempt = 0"
                    " AND (created_ms, id) < (?1, ?2) AND (?3 = 0 OR key_id = ?3)"
                    " AND (?4 = 0 OR status >= 400) ORDER BY created_ms DESC, id DESC LIMIT ?5)"
                    " SELECT u.request_id, p.created_ms, p.id, COALESCE(k.name, 'master'),"
                    " u.model_id, u.status, u.attempt, u.provider, u.upstream_model, u.outcome,"
                    " u.error_class, u.upstream_status, u.prompt_tokens, u.completion_tokens,"
                    " u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens, u.cost_micros,"
                    " u.latency_ms, u.ttfb_ms, u.stream, u.cancelled, u.usage_estimated"
                    " FROM page p JOIN usage u ON u.request_id = p.request_id"
                    " LEFT JOIN api_keys k ON k.id = u.key_id"
                    " ORDER BY p.created_ms DESC, p.id DESC, u.attempt",
    /* Spend per budget window (whole hours: 00:00 UTC, the 1st) from the
     * per-key hourly rollup, per key of the page. */
    [STMT_KEY_PAGE] = "SELECT " KEY_COLUMNS ","
                      " (SELECT COALESCE(SUM(cost_micros), 0) FROM usage_key_hourly u"
                      "  WHERE u.key_id = k.id AND u.hour_ms >= ?4),"
                      " (SELECT COALESCE(SUM(cost_micros), 0) FROM usage_key_hourly u"
                      "  WHERE u.key_id = k.id AND u.hour_ms >= ?5),"
                      " (SELECT COALESCE(SUM(cost_micros), 0) FROM usage_key_hourly u"
                      "  WHERE u.key_id = k.id)"
                      " FROM api_keys k WHERE k.id > ?1 AND (?3 = 1 OR k.revoked_at IS NULL)"
                      " AND (?6 IS NULL OR instr(k.name, ?6) > 0) ORDER BY k.id LIMIT ?2",
    /* IMMEDIATE: take the write lock (or wait for it) before the first
     * insert, not half way through a batch. */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
};

typedef struct {
    yr_store_t base; /* first: a yr_store_t * is a sq_t * */
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT__COUNT];
    struct rollups *rollups; /* a usage batch's rollup sums (lazily, ~50 KB) */
} sq_t;

#define set_err yr_store_set_err

static int sqlite_to_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH: return -EACCES;
    case SQLITE_CANTOPEN: return -ENOENT;
    case SQLITE_CONSTRAINT: return -EEXIST;
    case SQLITE_TOOBIG: return -E2BIG;
    default: return -EIO;
    }
}

/* Logs an unexpected SQLite failure and maps it to a negative errno. The
 * message names the operation; SQLite's text never contains bound values, so
 * no key material reaches the log. */
static int db_fail(sq_t *s, int rc, const char *what)
{
    yr_log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
    return sqlite_to_errno(rc);
}

static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    size_t len = text != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (len >= cap)
        len = cap - 1;
    if (len > 0)
        memcpy(dst, text, len);
    dst[len] = '\0';
}

static void row_to_info(sqlite3_stmt *st, yr_key_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->id = sqlite3_column_int64(st, 0);
    copy_text(info->name, sizeof(info->name), st, 1);
    copy_text(info->prefix, sizeof(info->prefix), st, 2);
    info->created_at = sqlite3_column_int64(st, 3);
    info->revoked_at = sqlite3_column_int64(st, 4); /* NULL reads as 0 */
    yr_key_policy_t *p = &info->policy;
    copy_text(p->allowed_models, sizeof(p->allowed_models), st, 5);
    copy_text(p->allowed_vendors, sizeof(p->allowed_vendors), st, 6);
    p->rpm = sqlite3_column_int64(st, 7);
    p->tpm = sqlite3_column_int64(st, 8);
    p->max_concurrency = sqlite3_column_int64(st, 9);
    for (int i = 0; i < YR_BUDGET__COUNT; i++)
        p->budget_micros[i] = sqlite3_column_int64(st, 10 + i);
    p->expires_at = sqlite3_column_int64(st, 13);
    copy_text(p->metadata, sizeof(p->metadata), st, 14);
    info->prev_valid_until = sqlite3_column_int64(st, 15);
    p->log_retention_s = sqlite3_column_int64(st, 16);
    p->log_content = p->log_retention_s > 0;
}

/* The policy as ?1..?10 (POLICY_SET's order); empty and zero are NULL. */
static void bind_policy(sqlite3_stmt *st, const yr_key_policy_t *p)
{
    static const yr_key_policy_t none;
    if (p == NULL)
        p = &none;
    const char *texts[2] = {p->allowed_models, p->allowed_vendors};
    for (int i = 0; i < 2; i++) {
        if (texts[i][0] != '\0')
            sqlite3_bind_text(st, 1 + i, texts[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 1 + i);
    }
    const int64_t nums[] = {p->rpm,
                            p->tpm,
                            p->max_concurrency,
                            p->budget_micros[YR_BUDGET_DAY],
                            p->budget_micros[YR_BUDGET_MONTH],
                            p->budget_micros[YR_BUDGET_TOTAL],
                            p->expires_at};
    for (int i = 0; i < 7; i++) {
        if (nums[i] > 0)
            sqlite3_bind_int64(st, 3 + i, nums[i]);
        else
            sqlite3_bind_null(st, 3 + i);
    }
    if (p->metadata[0] != '\0')
        sqlite3_bind_text(st, 10, p->metadata, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 10);
    if (p->log_content && p->log_retention_s > 0)
        sqlite3_bind_int64(st, 12, p->log_retention_s);
    else
        sqlite3_bind_null(st, 12);
}

/* Runs st to completion, reading its first row (if any) into info. Returns 0
 * when a row came back, -ENOENT when none did. Always resets st. Stepping to
 * SQLITE_DONE, not just to the first row, is what commits an UPDATE ...
 * RETURNING in autocommit mode. */
static int step_one(sq_t *s, sqlite3_stmt *st, yr_key_info_t *info, const char *what)
{
    int rc = -ENOENT;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (rc == -ENOENT && info != NULL)
            row_to_info(st, info);
        rc = 0;
    }
    if (src != SQLITE_DONE)
        rc = db_fail(s, src, what);
    stmt_done(st);
    return rc;
}

/* ---- opening and migrating ---------------------------------------------- */

static int exec(sq_t *s, const char *sql, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    set_err(err, errlen, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
    return sqlite_to_errno(rc);
}

/* Runs a one-row PRAGMA and returns its first column as an integer, or copies
 * it as text into buf when buf is not NULL. */
static int pragma(sq_t *s, const char *sql, int64_t *num, char *buf, size_t buflen, char *err,
                  size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        set_err(err, errlen, "sqlite: %s: %s", sql, sqlite3_errmsg(s->db));
        rc = sqlite_to_errno(rc);
        goto out;
    }
    if (num != NULL)
        *num = sqlite3_column_int64(st, 0);
    if (buf != NULL)
        copy_text(buf, buflen, st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Turning a new file into a WAL database needs an exclusive lock, and SQLite
 * answers SQLITE_BUSY at once there instead of running the busy handler, so
 * processes opening a fresh file together would fail. Retry for as long as the
 * busy timeout would have waited. (Once the file is in WAL mode the setting is
 * persistent and this succeeds at the first try.) */
static int set_wal(sq_t *s, char *mode, size_t len, char *err, size_t errlen)
{
    for (int waited = 0;; waited += 10) {
        int rc = pragma(s, "PRAGMA journal_mode = WAL", NULL, mode, len, err, errlen);
        if (rc != -EBUSY || waited >= BUSY_TIMEOUT_MS)
            return rc;
        sqlite3_sleep(10);
    }
}

static int configure(sq_t *s, bool in_memory, char *err, size_t errlen)
{
    char mode[16];
    int rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "sqlite: busy_timeout: %s", sqlite3_errmsg(s->db));
        return sqlite_to_errno(rc);
    }
    /* The first statement to touch the file: a path that is not a database
     * fails here, with SQLite's own words for it. */
    rc = set_wal(s, mode, sizeof(mode), err, errlen);
    if (rc != 0)
        return rc;
    if (!in_memory && strcmp(mode, "wal") != 0)
        yr_log_warn("store: journal_mode is '%s', not 'wal': readers will block writers", mode);
    /* NORMAL is durable in WAL mode except for the last commits before a power
     * loss; it never corrupts the database. The page cache: SQLite's default
     * (2 MB per connection) filled up with usage rows and was most of the
     * gateway's growth after start (idle RSS 14.2 -> 17.0 MB after 12,000
     * requests; 14.8 MB with 256 KB). The store appends and looks up by
     * index; the OS page cache serves the rest. */
    return exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -256",
                "pragmas", err, errlen);
}

static int migrate(sq_t *s, char *err, size_t errlen)
{
    int64_t version;
    bool in_txn = false;
    char sql[64];
    int rc = pragma(s, "PRAGMA user_version", &version, NULL, 0, err, errlen);
    if (rc != 0 || version == SCHEMA_VERSION)
        return rc;
    if (version < 0 || version > SCHEMA_VERSION) {
        set_err(err, errlen, "database schema version %lld is newer than this build (%d)",
                (long long)version, SCHEMA_VERSION);
        return -ENOTSUP;
    }
    /* IMMEDIATE takes the write lock up front, so two processes opening a new
     * file at once migrate it one after the other; the second one re-reads the
     * version under the lock and finds nothing left to do. */
    rc = exec(s, "BEGIN IMMEDIATE", "begin migration", err, errlen);
    if (rc != 0)
        goto out;
    in_txn = true;
    rc = pragma(s, "PRAGMA user_version", &version, NULL, 0, err, errlen);
    if (rc != 0)
        goto out;
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        rc = exec(s, migrations[v], "migration", err, errlen);
        if (rc != 0)
            goto out;
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
    rc = exec(s, sql, "set schema version", err, errlen);
    if (rc != 0)
        goto out;
    rc = exec(s, "COMMIT", "commit migration", err, errlen);
    if (rc == 0)
        in_txn = false;
out:
    if (in_txn)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int prepare_all(sq_t *s, char *err, size_t errlen)
{
    for (int i = 0; i < STMT__COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "sqlite: prepare: %s", sqlite3_errmsg(s->db));
            return sqlite_to_errno(rc);
        }
    }
    return 0;
}

static void sq_close(yr_store_t *base)
{
    sq_t *s = (sq_t *)base;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* The last connection to close checkpoints the WAL and removes it. */
    sqlite3_close(s->db);
    free(s->rollups);
    free(s);
}

static int sq_open(const char *path, yr_store_t **out, char *err, size_t errlen)
{
    sq_t *s = calloc(1, sizeof(*s));
    int rc;
    if (s == NULL) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* NOMUTEX: a connection belongs to one thread at a time (the store
     * thread, or the CLI), so SQLite's per-connection mutex would only cost
     * time. No SQLITE_OPEN_URI: the path is a plain filename, whatever
     * characters it holds. */
    int src = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        set_err(err, errlen, "sqlite: cannot open '%s': %s", path,
                s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
        rc = sqlite_to_errno(src);
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = configure(s, strcmp(path, ":memory:") == 0, err, errlen);
    if (rc == 0)
        rc = migrate(s, err, errlen);
    if (rc == 0)
        rc = prepare_all(s, err, errlen);
    if (rc != 0)
        goto out;
    *out = &s->base;
    s = NULL;
out:
    if (s != NULL)
        sq_close(&s->base);
    return rc;
}

/* ---- keys ---------------------------------------------------------------- */

static int sq_key_insert(yr_store_t *base, const char *name, const unsigned char *hash,
                         const char *prefix, int64_t now, const yr_key_policy_t *policy,
                         int64_t *id)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_INSERT];
    int rc;
    bind_policy(st, policy);
    sqlite3_bind_text(st, 11, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 13, hash, YR_KEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, now);
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = 0;
    else if (src == SQLITE_CONSTRAINT_UNIQUE)
        rc = -EEXIST; /* the active-name index: a 256-bit hash does not collide */
    else
        rc = db_fail(s, src, "create key");
    *id = sqlite3_last_insert_rowid(s->db);
    stmt_done(st);
    return rc;
}

static int sq_key_list(yr_store_t *base, yr_key_list_fn fn, void *arg)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_LIST];
    yr_key_info_t info;
    int src;
    int rc = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_info(st, &info);
        fn(&info, arg);
    }
    if (src != SQLITE_DONE)
        rc = db_fail(s, src, "list keys");
    stmt_done(st);
    return rc;
}

static int sq_key_revoke(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                         int64_t now, yr_key_info_t *info)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st;
    if (id > 0) {
        st = s->stmt[STMT_REVOKE_ID];
        sqlite3_bind_int64(st, 2, id);
    } else {
        st = s->stmt[STMT_REVOKE_NAME];
        sqlite3_bind_text(st, 2, name, (int)name_len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 1, now);
    return step_one(s, st, info, "revoke key");
}

/* Unix ms of the start of the current day and month, UTC. */
static void window_starts(int64_t now, int64_t *day_ms, int64_t *month_ms)
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    *day_ms = (now - (now % 86400)) * 1000;
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    *month_ms = (int64_t)timegm(&tm) * 1000;
}

static int sq_spent(sq_t *s, int64_t key_id, int64_t since_ms, int64_t *out)
{
    sqlite3_stmt *st = s->stmt[STMT_SPENT];
    sqlite3_bind_int64(st, 1, key_id);
    sqlite3_bind_int64(st, 2, since_ms);
    int src = sqlite3_step(st);
    int rc = 0;
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(s, src, "sum key spend");
    stmt_done(st);
    return rc;
}

static int sq_key_lookup(yr_store_t *base, const unsigned char *hash, int64_t now,
                         yr_key_info_t *info)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_LOOKUP];
    yr_key_info_t tmp;
    if (info == NULL)
        info = &tmp;
    sqlite3_bind_blob(st, 1, hash, YR_KEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = step_one(s, st, info, "look up key");
    if (rc != 0)
        return rc;
    const int64_t *b = info->policy.budget_micros;
    if (b[YR_BUDGET_DAY] > 0 || b[YR_BUDGET_MONTH] > 0 || b[YR_BUDGET_TOTAL] > 0) {
        int64_t since[YR_BUDGET__COUNT] = {0, 0, 0};
        window_starts(now, &since[YR_BUDGET_DAY], &since[YR_BUDGET_MONTH]);
        for (int i = 0; i < YR_BUDGET__COUNT && rc == 0; i++)
            if (b[i] > 0)
                rc = sq_spent(s, info->id, since[i], &info->spent_micros[i]);
    }
    return rc;
}

static int sq_key_update(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                         const yr_key_policy_t *policy, yr_key_info_t *info)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[id > 0 ? STMT_UPDATE_ID : STMT_UPDATE_NAME];
    bind_policy(st, policy);
    if (id > 0)
        sqlite3_bind_int64(st, 11, id);
    else
        sqlite3_bind_text(st, 11, name, (int)name_len, SQLITE_STATIC);
    return step_one(s, st, info, "update key");
}

static int sq_key_rotate(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                         const unsigned char *hash, const char *prefix, int64_t prev_valid_until,
                         yr_key_info_t *info)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[id > 0 ? STMT_ROTATE_ID : STMT_ROTATE_NAME];
    sqlite3_bind_blob(st, 1, hash, YR_KEY_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, prev_valid_until);
    if (id > 0)
        sqlite3_bind_int64(st, 4, id);
    else
        sqlite3_bind_text(st, 4, name, (int)name_len, SQLITE_STATIC);
    return step_one(s, st, info, "rotate key");
}

static int sq_key_get(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                      yr_key_info_t *info)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[id > 0 ? STMT_GET_ID : STMT_GET_NAME];
    if (id > 0)
        sqlite3_bind_int64(st, 1, id);
    else
        sqlite3_bind_text(st, 1, name, (int)name_len, SQLITE_STATIC);
    return step_one(s, st, info, "get key");
}

static int sq_usage_totals(yr_store_t *base, yr_usage_by_t by, int64_t since_ms, int64_t key_id,
                           yr_usage_total_fn fn, void *arg)
{
    sq_t *s = (sq_t *)base;
    static const int which[] = {
        [YR_USAGE_BY_MODEL] = STMT_TOTALS_MODEL,
        [YR_USAGE_BY_VENDOR] = STMT_TOTALS_VENDOR,
        [YR_USAGE_BY_KEY] = STMT_TOTALS_KEY,
        [YR_USAGE_BY_DAY] = STMT_TOTALS_DAY,
    };
    if ((unsigned)by > YR_USAGE_BY_DAY)
        return -EINVAL;
    sqlite3_stmt *st = s->stmt[which[by]];
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, key_id);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        yr_usage_total_t t = {0};
        copy_text(t.group, sizeof(t.group), st, 0);
        int64_t *v[] = {&t.requests,          &t.attempts,           &t.prompt_tokens,
                        &t.completion_tokens, &t.cached_tokens,      &t.cache_write_tokens,
                        &t.reasoning_tokens,  &t.cost_micros,        &t.errors};
        for (int i = 0; i < 9; i++)
            *v[i] = sqlite3_column_int64(st, 1 + i);
        fn(&t, arg);
    }
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "usage totals");
    stmt_done(st);
    return rc;
}

static void bind_window(sqlite3_stmt *st, const yr_usage_query_t *q)
{
    sqlite3_bind_int64(st, 1, q->since_ms);
    sqlite3_bind_int64(st, 2, q->until_ms > 0 ? q->until_ms : INT64_MAX);
    sqlite3_bind_int64(st, 3, q->bucket_ms);
    sqlite3_bind_int64(st, 4, q->key_id);
}

static int sq_usage_series(yr_store_t *base, const yr_usage_query_t *q, yr_usage_total_fn fn,
                           void *arg)
{
    sq_t *s = (sq_t *)base;
    int which = q->by == YR_USAGE_BY_MODEL    ? STMT_SERIES_MODEL
                : q->by == YR_USAGE_BY_VENDOR ? STMT_SERIES_VENDOR
                : q->by == YR_USAGE_BY_KEY    ? STMT_SERIES_KEY
                : q->by == YR_USAGE_BY_CLASS  ? STMT_SERIES_CLASS
                                              : STMT_SERIES_NONE;
    int plan = yr_usage_plan(q);
    if (plan == YR_PLAN_KEY_HOURLY)
        which = q->by == YR_USAGE_BY_KEY ? STMT_RSERIES_KEY : STMT_RSERIES_KEYNONE;
    else if (plan == YR_PLAN_HOURLY)
        which += STMT_RSERIES_MODEL - STMT_SERIES_MODEL;
    sqlite3_stmt *st = s->stmt[which];
    bind_window(st, q);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        yr_usage_total_t t = {.bucket_ms = sqlite3_column_int64(st, 0)};
        copy_text(t.group, sizeof(t.group), st, 1);
        int64_t *v[] = {&t.requests,          &t.attempts,      &t.prompt_tokens,
                        &t.completion_tokens, &t.cached_tokens, &t.cache_write_tokens,
                        &t.reasoning_tokens,  &t.cost_micros,   &t.errors};
        for (int i = 0; i < 9; i++)
            *v[i] = sqlite3_column_int64(st, 2 + i);
        fn(&t, arg);
    }
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "usage series");
    stmt_done(st);
    return rc;
}

static int sq_usage_hist(yr_store_t *base, const yr_usage_query_t *q, yr_usage_hist_fn fn,
                         void *arg)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[yr_usage_plan(q) == YR_PLAN_HOURLY ? STMT_RHIST : STMT_HIST];
    bind_window(st, q);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        fn(sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2),
           sqlite3_column_int64(st, 3), arg);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "usage histogram");
    stmt_done(st);
    return rc;
}

static int64_t int_or(sqlite3_stmt *st, int col, int64_t null_value)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? null_value
                                                       : sqlite3_column_int64(st, col);
}

static int sq_usage_recent(yr_store_t *base, const yr_recent_query_t *q, yr_usage_rec_fn fn,
                           void *arg)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_RECENT];
    sqlite3_bind_int64(st, 1, q->before_ms > 0 ? q->before_ms : INT64_MAX);
    sqlite3_bind_int64(st, 2, q->before_ms > 0 ? q->before_id : INT64_MAX);
    sqlite3_bind_int64(st, 3, q->key_id);
    sqlite3_bind_int(st, 4, q->errors_only);
    sqlite3_bind_int(st, 5, q->limit);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        yr_usage_rec_t r = {0};
        copy_text(r.request_id, sizeof(r.request_id), st, 0);
        r.created_ms = sqlite3_column_int64(st, 1);
        r.row_id = sqlite3_column_int64(st, 2);
        copy_text(r.key, sizeof(r.key), st, 3);
        copy_text(r.model_id, sizeof(r.model_id), st, 4);
        r.status = sqlite3_column_int(st, 5);
        r.attempt = sqlite3_column_int(st, 6);
        copy_text(r.provider, sizeof(r.provider), st, 7);
        copy_text(r.upstream_model, sizeof(r.upstream_model), st, 8);
        copy_text(r.outcome, sizeof(r.outcome), st, 9);
        copy_text(r.error_class, sizeof(r.error_class), st, 10);
        r.upstream_status = sqlite3_column_int(st, 11);
        int64_t *v[] = {&r.prompt_tokens, &r.completion_tokens, &r.cached_tokens,
                        &r.cache_write_tokens, &r.reasoning_tokens};
        for (int i = 0; i < 5; i++)
            *v[i] = sqlite3_column_int64(st, 12 + i);
        r.cost_micros = int_or(st, 17, -1);
        r.latency_ms = int_or(st, 18, -1);
        r.ttfb_ms = int_or(st, 19, -1);
        r.stream = sqlite3_column_int(st, 20) != 0;
        r.cancelled = sqlite3_column_int(st, 21) != 0;
        r.usage_estimated = sqlite3_column_int(st, 22) != 0;
        fn(&r, arg);
    }
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "recent requests");
    stmt_done(st);
    return rc;
}

static int sq_key_page(yr_store_t *base, const yr_key_page_t *q, yr_key_list_fn fn, void *arg)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_KEY_PAGE];
    sqlite3_bind_int64(st, 1, q->after_id);
    sqlite3_bind_int(st, 2, q->limit);
    sqlite3_bind_int(st, 3, q->include_revoked);
    sqlite3_bind_int64(st, 4, q->day_start);
    sqlite3_bind_int64(st, 5, q->month_start);
    if (q->search != NULL && q->search[0] != '\0')
        sqlite3_bind_text(st, 6, q->search, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        yr_key_info_t info;
        row_to_info(st, &info);
        for (int b = 0; b < YR_BUDGET__COUNT; b++)
            info.spent_micros[b] = sqlite3_column_int64(st, 17 + b);
        fn(&info, arg);
    }
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "key page");
    stmt_done(st);
    return rc;
}

/* ---- usage --------------------------------------------------------------- */

static void bind_str(sqlite3_stmt *st, int col, yr_str_t v)
{
    if (v.len == 0 || v.len > INT32_MAX)
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_text(st, col, v.ptr, (int)v.len, SQLITE_STATIC);
}

/* A value of -1 (unknown) is stored as NULL. */
static void bind_ms(sqlite3_stmt *st, int col, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, col);
    else
        sqlite3_bind_int64(st, col, v);
}

static int run_simple(sq_t *s, int which, const char *what)
{
    sqlite3_stmt *st = s->stmt[which];
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, what);
    stmt_done(st);
    return rc;
}

/* The hourly rollups (backend.h) of one batch, summed per group first: a
 * batch of 256 rows of one model, key and hour is 3-4 upserts, not ~900
 * (at 30,000 requests/s the store thread spent a quarter of the gateway's
 * core on them). The groups point into the batch's rows. */
#define ROLLUP_SUMS 8
typedef struct {
    int64_t hour;
    yr_str_t model, provider;
    char cls[64];
    int64_t v[ROLLUP_SUMS], attempts;
} rollup_group_t;
typedef struct {
    int64_t hour, key_id;
    int64_t v[ROLLUP_SUMS], attempts;
} key_rollup_group_t;
typedef struct {
    int64_t hour, bucket, count;
    int which;
} latency_group_t;
typedef struct rollups {
    rollup_group_t g[YR_USAGE_BATCH_MAX];
    key_rollup_group_t k[YR_USAGE_BATCH_MAX];
    latency_group_t l[2 * YR_USAGE_BATCH_MAX];
    size_t ng, nk, nl;
} rollups_t;

static bool str_same(yr_str_t a, yr_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void rollup_add(rollups_t *acc, const yr_usage_row_t *r)
{
    char cls[64];
    yr_usage_class(r, cls, sizeof(cls));
    int64_t hour = r->created_ms / YR_HOUR_MS * YR_HOUR_MS;
    bool ok = yr_str_eq(r->outcome, YR_STR("ok"));
    const int64_t v[ROLLUP_SUMS] = {r->attempt == 0,       r->prompt_tokens,    r->completion_tokens,
                                    r->cached_tokens,      r->cache_write_tokens, r->reasoning_tokens,
                                    r->cost_micros > 0 ? r->cost_micros : 0, !ok};
    size_t i = 0;
    while (i < acc->ng && !(acc->g[i].hour == hour && str_same(acc->g[i].model, r->model_id) &&
                            str_same(acc->g[i].provider, r->provider) &&
                            strcmp(acc->g[i].cls, cls) == 0))
        i++;
    rollup_group_t *g = &acc->g[i];
    if (i == acc->ng) {
        acc->ng++;
        *g = (rollup_group_t){.hour = hour, .model = r->model_id, .provider = r->provider};
        snprintf(g->cls, sizeof(g->cls), "%s", cls);
    }
    int64_t key = r->key_id > 0 ? r->key_id : 0;
    size_t ki = 0;
    while (ki < acc->nk && !(acc->k[ki].hour == hour && acc->k[ki].key_id == key))
        ki++;
    key_rollup_group_t *k = &acc->k[ki];
    if (ki == acc->nk) {
        acc->nk++;
        *k = (key_rollup_group_t){.hour = hour, .key_id = key};
    }
    for (int j = 0; j < ROLLUP_SUMS; j++) {
        g->v[j] += v[j];
        k->v[j] += v[j];
    }
    g->attempts++;
    k->attempts++;
    const int64_t samples[2] = {r->latency_ms, r->ttfb_ms};
    for (int w = 0; ok && w < 2; w++) {
        if (samples[w] < 0)
            continue;
        int64_t b = yr_usage_hbucket(samples[w]);
        size_t j = 0;
        while (j < acc->nl && !(acc->l[j].hour == hour && acc->l[j].which == w && acc->l[j].bucket == b))
            j++;
        if (j == acc->nl)
            acc->l[acc->nl++] = (latency_group_t){.hour = hour, .bucket = b, .which = w};
        acc->l[j].count++;
    }
}

static int rollup_flush(sq_t *s, const rollups_t *acc)
{
    for (size_t i = 0; i < acc->ng; i++) {
        const rollup_group_t *g = &acc->g[i];
        sqlite3_stmt *st = s->stmt[STMT_ROLLUP];
        sqlite3_bind_int64(st, 1, g->hour);
        sqlite3_bind_text(st, 2, g->model.ptr ? g->model.ptr : "", (int)g->model.len, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, g->provider.ptr ? g->provider.ptr : "", (int)g->provider.len,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 4, g->cls, -1, SQLITE_STATIC);
        for (int j = 0; j < ROLLUP_SUMS; j++)
            sqlite3_bind_int64(st, 5 + j, g->v[j]);
        sqlite3_bind_int64(st, 13, g->attempts);
        int src = sqlite3_step(st);
        stmt_done(st);
        if (src != SQLITE_DONE)
            return db_fail(s, src, "usage rollup");
    }
    for (size_t i = 0; i < acc->nk; i++) {
        const key_rollup_group_t *k = &acc->k[i];
        sqlite3_stmt *st = s->stmt[STMT_KEY_ROLLUP];
        sqlite3_bind_int64(st, 1, k->hour);
        sqlite3_bind_int64(st, 2, k->key_id);
        for (int j = 0; j < ROLLUP_SUMS; j++)
            sqlite3_bind_int64(st, 3 + j, k->v[j]);
        sqlite3_bind_int64(st, 11, k->attempts);
        int src = sqlite3_step(st);
        stmt_done(st);
        if (src != SQLITE_DONE)
            return db_fail(s, src, "key usage rollup");
    }
    for (size_t i = 0; i < acc->nl; i++) {
        const latency_group_t *l = &acc->l[i];
        sqlite3_stmt *st = s->stmt[STMT_RLATENCY];
        sqlite3_bind_int64(st, 1, l->hour);
        sqlite3_bind_int(st, 2, l->which);
        sqlite3_bind_int64(st, 3, l->bucket);
        sqlite3_bind_int64(st, 4, l->count);
        int src = sqlite3_step(st);
        stmt_done(st);
        if (src != SQLITE_DONE)
            return db_fail(s, src, "latency rollup");
    }
    return 0;
}

static int insert_usage(sq_t *s, const yr_usage_row_t *r)
{
    sqlite3_stmt *st = s->stmt[STMT_USAGE];
    bind_str(st, 1, r->request_id);
    if (r->key_id > 0)
        sqlite3_bind_int64(st, 2, r->key_id);
    else
        sqlite3_bind_null(st, 2);
    bind_str(st, 3, r->model_id);
    bind_str(st, 4, r->provider);
    bind_str(st, 5, r->upstream_model);
    sqlite3_bind_int(st, 6, r->http_status);
    bind_str(st, 7, r->outcome);
    sqlite3_bind_int64(st, 8, r->prompt_tokens);
    sqlite3_bind_int64(st, 9, r->completion_tokens);
    sqlite3_bind_int64(st, 10, r->cached_tokens);
    sqlite3_bind_int64(st, 11, r->cache_write_tokens);
    sqlite3_bind_int64(st, 12, r->reasoning_tokens);
    bind_ms(st, 13, r->latency_ms);
    bind_ms(st, 14, r->ttfb_ms);
    sqlite3_bind_int64(st, 15, r->created_ms);
    sqlite3_bind_int(st, 16, r->attempt);
    if (r->upstream_status > 0)
        sqlite3_bind_int(st, 17, r->upstream_status);
    else
        sqlite3_bind_null(st, 17);
    bind_ms(st, 18, r->cost_micros);
    sqlite3_bind_int(st, 19, r->stream);
    sqlite3_bind_int(st, 20, r->cancelled);
    bind_str(st, 21, r->error_class);
    sqlite3_bind_int(st, 22, r->usage_estimated);
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "write usage");
    stmt_done(st);
    return rc;
}

static int sq_usage_write(yr_store_t *base, const yr_usage_row_t *rows, size_t n)
{
    sq_t *s = (sq_t *)base;
    if (n > YR_USAGE_BATCH_MAX) { /* the queue never makes one: write it in parts */
        int rc = 0;
        for (size_t off = 0; off < n && rc == 0; off += YR_USAGE_BATCH_MAX)
            rc = sq_usage_write(base, rows + off,
                                n - off < YR_USAGE_BATCH_MAX ? n - off : YR_USAGE_BATCH_MAX);
        return rc;
    }
    if (s->rollups == NULL && (s->rollups = malloc(sizeof(*s->rollups))) == NULL)
        return -ENOMEM;
    rollups_t *acc = s->rollups;
    acc->ng = acc->nk = acc->nl = 0;
    int rc = run_simple(s, STMT_BEGIN, "begin usage batch");
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = insert_usage(s, &rows[i]);
        if (rc == 0)
            rollup_add(acc, &rows[i]);
        /* SQLite does its work on this thread, tens of microseconds a row. A
         * batch that is not full means the writer keeps up: it steps aside
         * after every row, so a worker on the same core (pinned, or under an
         * equal real-time priority, which is never preempted) waits for one
         * row and not for the batch: at concurrency 1 on one core that took
         * the p99 from ~1,050 to 410-650 µs (docs/store.md). A full batch
         * means the writer is behind and writes on (store_main yields
         * between batches). With a core to spare the call returns at once. */
        if (n < YR_USAGE_BATCH_MAX)
            sched_yield();
    }
    if (rc == 0)
        rc = rollup_flush(s, acc);
    if (rc == 0)
        rc = run_simple(s, STMT_COMMIT, "commit usage batch");
    /* A failed COMMIT (SQLITE_BUSY) leaves the transaction open. */
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        (void)run_simple(s, STMT_ROLLBACK, "roll back usage batch");
    return rc;
}

static int sq_response_put(yr_store_t *base, const char *id, int64_t key_id, int64_t created_ms,
                           const char *input_items, const char *response)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_RESP_PUT];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, key_id);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_text(st, 4, input_items, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, response, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "store response");
    stmt_done(st);
    return rc;
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? strdup((const char *)t) : strdup("");
}

static int sq_response_get(yr_store_t *base, const char *id, int64_t key_id, char **input_items,
                           char **response)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_RESP_GET];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, key_id);
    int src = sqlite3_step(st);
    int rc = -ENOENT;
    if (src == SQLITE_ROW) {
        *input_items = dup_col(st, 0);
        *response = dup_col(st, 1);
        rc = *input_items && *response ? 0 : -ENOMEM;
    } else if (src != SQLITE_DONE) {
        rc = db_fail(s, src, "read response");
    }
    stmt_done(st);
    return rc;
}

static int sq_response_delete(yr_store_t *base, const char *id, int64_t key_id)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_RESP_DEL];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, key_id);
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? (sqlite3_changes(s->db) > 0 ? 0 : -ENOENT)
                                : db_fail(s, src, "delete response");
    stmt_done(st);
    return rc;
}

static int sq_response_purge(yr_store_t *base, int64_t before_ms)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_RESP_PURGE];
    sqlite3_bind_int64(st, 1, before_ms);
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "purge responses");
    stmt_done(st);
    return rc;
}

static int sq_content_put(yr_store_t *base, const yr_content_row_t *r)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_CONTENT_PUT];
    sqlite3_bind_text(st, 1, r->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->key_id);
    sqlite3_bind_int64(st, 3, r->created_ms);
    sqlite3_bind_int64(st, 4, r->expires_ms);
    sqlite3_bind_int(st, 5, r->status);
    sqlite3_bind_int(st, 6, r->stream);
    sqlite3_bind_blob(st, 7, r->request ? r->request : "", (int)r->request_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, r->request_truncated);
    sqlite3_bind_blob(st, 9, r->response ? r->response : "", (int)r->response_len,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 10, r->response_truncated);
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "log content");
    stmt_done(st);
    return rc;
}

static char *dup_blob(sqlite3_stmt *st, int col, size_t *len)
{
    const void *b = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    char *out = malloc(*len + 1);
    if (out != NULL) {
        if (*len > 0)
            memcpy(out, b, *len);
        out[*len] = '\0';
    }
    return out;
}

static int sq_content_get(yr_store_t *base, const char *id, int64_t now_ms, yr_content_row_t *r)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_CONTENT_GET];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    int src = sqlite3_step(st);
    int rc = -ENOENT;
    if (src == SQLITE_ROW) {
        snprintf(r->request_id, sizeof(r->request_id), "%s", id);
        r->key_id = sqlite3_column_int64(st, 0);
        r->created_ms = sqlite3_column_int64(st, 1);
        r->expires_ms = sqlite3_column_int64(st, 2);
        r->status = sqlite3_column_int(st, 3);
        r->stream = sqlite3_column_int(st, 4) != 0;
        r->request = dup_blob(st, 5, &r->request_len);
        r->request_truncated = sqlite3_column_int(st, 6) != 0;
        r->response = dup_blob(st, 7, &r->response_len);
        r->response_truncated = sqlite3_column_int(st, 8) != 0;
        rc = r->request && r->response ? 0 : -ENOMEM;
        if (rc != 0)
            yr_content_row_free(r);
    } else if (src != SQLITE_DONE) {
        rc = db_fail(s, src, "read content");
    }
    stmt_done(st);
    return rc;
}

static int sq_content_purge(yr_store_t *base, int64_t now_ms, int64_t *deleted)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = s->stmt[STMT_CONTENT_PURGE];
    sqlite3_bind_int64(st, 1, now_ms);
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_fail(s, src, "purge content");
    *deleted = rc == 0 ? sqlite3_changes(s->db) : 0;
    stmt_done(st);
    return rc;
}

const yr_store_backend_t yr_store_sqlite = {
    .content_put = sq_content_put,
    .content_get = sq_content_get,
    .content_purge = sq_content_purge,
    .response_put = sq_response_put,
    .response_purge = sq_response_purge,
    .response_get = sq_response_get,
    .response_delete = sq_response_delete,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .key_insert = sq_key_insert,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .key_lookup = sq_key_lookup,
    .key_update = sq_key_update,
    .key_rotate = sq_key_rotate,
    .key_get = sq_key_get,
    .usage_totals = sq_usage_totals,
    .usage_series = sq_usage_series,
    .usage_hist = sq_usage_hist,
    .usage_recent = sq_usage_recent,
    .key_page = sq_key_page,
    .usage_write = sq_usage_write,
};
