/* The PostgreSQL backend (store/backend.h), for several gateway instances
 * sharing one database.
 *
 * libpq, synchronous, on the store thread (or the CLI's thread): the event
 * loops never wait for it, as with SQLite. Every statement is prepared at
 * open and run with parameters only (never SQL built from values). A broken
 * connection is reset before the next statement, once; the statement's
 * failure is reported (the gateway answers 503, the usage writer retries
 * nothing and counts the batch as failed).
 *
 * The schema is the SQLite one in PostgreSQL types, versioned in
 * yourouter_schema; migrations run in one transaction under an advisory lock,
 * so instances starting together migrate once. A failed migration stops the
 * start with its message. Usage rows are inserted with ON CONFLICT DO
 * NOTHING on (request_id, attempt): a batch retried after a lost commit
 * acknowledgement never counts twice. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/backend.h"

#define KEY_COLUMNS                                                                       \
    "id, name, prefix, created_at, revoked_at, allowed_models, allowed_vendors, rpm, tpm,"   \
    " max_concurrency, budget_daily_micros, budget_monthly_micros, budget_total_micros,"     \
    " expires_at, metadata, prev_valid_until, content_retention_s"
#define POLICY_SET                                                                        \
    "allowed_models = $1, allowed_vendors = $2, rpm = $3, tpm = $4, max_concurrency = $5,"   \
    " budget_daily_micros = $6, budget_monthly_micros = $7, budget_total_micros = $8,"       \
    " expires_at = $9, metadata = $10, content_retention_s = $12"
#define TOTALS(group)                                                                     \
    "SELECT " group ", COUNT(DISTINCT request_id), COUNT(*), COALESCE(SUM(prompt_tokens),0),"  \
    " COALESCE(SUM(completion_tokens),0), COALESCE(SUM(cached_tokens),0),"                   \
    " COALESCE(SUM(cache_write_tokens),0), COALESCE(SUM(reasoning_tokens),0),"               \
    " COALESCE(SUM(cost_micros),0), COUNT(*) FILTER (WHERE outcome IS DISTINCT FROM 'ok')"   \
    " FROM usage WHERE created_ms >= $1 AND ($2 = 0 OR key_id = $2) GROUP BY 1"

/* The admin UI's aggregates: store.h, and sqlite.c for the same queries. */
#define WINDOW " FROM usage WHERE created_ms >= $1 AND created_ms < $2 AND ($4 = 0 OR key_id = $4)"
#define SERIES_SUMS                                                                          \
    " COUNT(*) FILTER (WHERE attempt = 0) AS c1, COUNT(*) AS c2,"                             \
    " COALESCE(SUM(prompt_tokens), 0) AS c3, COALESCE(SUM(completion_tokens), 0) AS c4,"      \
    " COALESCE(SUM(cached_tokens), 0) AS c5, COALESCE(SUM(cache_write_tokens), 0) AS c6,"     \
    " COALESCE(SUM(reasoning_tokens), 0) AS c7, COALESCE(SUM(cost_micros), 0) AS c8,"         \
    " COUNT(*) FILTER (WHERE outcome IS DISTINCT FROM 'ok') AS c9"
#define SERIES(group)                                                                        \
    "SELECT created_ms / $3::bigint * $3::bigint, " group "," SERIES_SUMS WINDOW              \
    " GROUP BY 1, 2 ORDER BY 1"
#define HBUCKET(x)                                                                           \
    "CASE WHEN " x " < 100 THEN " x " WHEN " x " < 1000 THEN " x " / 10 * 10 WHEN " x        \
    " < 10000 THEN " x " / 100 * 100 WHEN " x " < 100000 THEN " x " / 1000 * 1000 ELSE " x   \
    " / 10000 * 10000 END"
#define ROLLUP_SUMS_DDL                                                                      \
    " requests BIGINT NOT NULL, attempts BIGINT NOT NULL, prompt_tokens BIGINT NOT NULL,"      \
    " completion_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,"                       \
    " cache_write_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL,"                   \
    " cost_micros BIGINT NOT NULL, errors BIGINT NOT NULL"
#define ROLLUP_SUMS_SELECT                                                                   \
    " COUNT(*) FILTER (WHERE attempt = 0), COUNT(*), COALESCE(SUM(prompt_tokens), 0),"         \
    " COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0),"                   \
    " COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(reasoning_tokens), 0),"               \
    " COALESCE(SUM(cost_micros), 0), COUNT(*) FILTER (WHERE outcome IS DISTINCT FROM 'ok')"
#define ROLLUP_UPDATE(t) " DO UPDATE SET requests = " t ".requests + excluded.requests, attempts = " t ".attempts + excluded.attempts, prompt_tokens = " t ".prompt_tokens + excluded.prompt_tokens, completion_tokens = " t ".completion_tokens + excluded.completion_tokens, cached_tokens = " t ".cached_tokens + excluded.cached_tokens, cache_write_tokens = " t ".cache_write_tokens + excluded.cache_write_tokens, reasoning_tokens = " t ".reasoning_tokens + excluded.reasoning_tokens, cost_micros = " t ".cost_micros + excluded.cost_micros, errors = " t ".errors + excluded.errors"
#define RWINDOW " FROM usage_hourly WHERE hour_ms >= $1 AND hour_ms < $2 AND $4 = 0"
#define RKWINDOW " FROM usage_key_hourly WHERE hour_ms >= $1 AND hour_ms < $2 AND ($4 = 0 OR key_id = $4)"
#define RSUMS                                                                                \
    " SUM(requests) AS c1, SUM(attempts) AS c2, SUM(prompt_tokens) AS c3,"                    \
    " SUM(completion_tokens) AS c4, SUM(cached_tokens) AS c5, SUM(cache_write_tokens) AS c6,"  \
    " SUM(reasoning_tokens) AS c7, SUM(cost_micros) AS c8, SUM(errors) AS c9"
#define RSERIES(group)                                                                       \
    "SELECT hour_ms / $3::bigint * $3::bigint, " group "," RSUMS RWINDOW " GROUP BY 1, 2 ORDER BY 1"
#define HIST(which, x)                                                                       \
    "SELECT created_ms / $3::bigint * $3::bigint, " which ", " HBUCKET(x) ", COUNT(*)" WINDOW \
    " AND outcome = 'ok' AND " x " IS NOT NULL GROUP BY 1, 3"

/* Each moves the schema from version i to i + 1. Never edit a shipped one. */
static const char *const migrations[] = {
    "CREATE TABLE api_keys ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  key_hash BYTEA NOT NULL UNIQUE,"
    "  prefix TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  revoked_at BIGINT,"
    "  allowed_models TEXT, allowed_vendors TEXT,"
    "  rpm BIGINT, tpm BIGINT, max_concurrency BIGINT,"
    "  budget_daily_micros BIGINT, budget_monthly_micros BIGINT, budget_total_micros BIGINT,"
    "  expires_at BIGINT, metadata TEXT,"
    "  prev_hash BYTEA, prev_valid_until BIGINT);"
    "CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;"
    "CREATE INDEX api_keys_prev_hash ON api_keys(prev_hash) WHERE prev_hash IS NOT NULL;"
    "CREATE TABLE usage ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  request_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL DEFAULT 0,"
    "  key_id BIGINT,"
    "  model_id TEXT, provider TEXT, upstream_model TEXT,"
    "  status INTEGER, upstream_status INTEGER, outcome TEXT, error_class TEXT,"
    "  prompt_tokens BIGINT, completion_tokens BIGINT, cached_tokens BIGINT,"
    "  cache_write_tokens BIGINT, reasoning_tokens BIGINT, cost_micros BIGINT,"
    "  latency_ms BIGINT, ttfb_ms BIGINT, stream BOOLEAN, cancelled BOOLEAN,"
    "  created_ms BIGINT NOT NULL,"
    "  UNIQUE (request_id, attempt));"
    "CREATE INDEX usage_key_created ON usage(key_id, created_ms);"
    "CREATE INDEX usage_created ON usage(created_ms);",
    /* 2 */
    "ALTER TABLE usage ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT false;",
    /* 3 */
    ("CREATE TABLE responses (id TEXT PRIMARY KEY, key_id BIGINT NOT NULL,"
     " created_ms BIGINT NOT NULL, input_items TEXT NOT NULL, response TEXT NOT NULL);"),
    /* 4: the admin UI's hourly rollups (sqlite.c migration 7). */
    ("CREATE TABLE usage_hourly (hour_ms BIGINT NOT NULL, model_id TEXT NOT NULL,"
     " provider TEXT NOT NULL, class TEXT NOT NULL," ROLLUP_SUMS_DDL ","
     " PRIMARY KEY (hour_ms, model_id, provider, class));"
     "INSERT INTO usage_hourly SELECT created_ms / 3600000 * 3600000, COALESCE(model_id, ''),"
     " COALESCE(provider, ''), CASE WHEN outcome = 'ok' THEN 'ok'"
     " ELSE COALESCE(error_class, outcome, 'unknown') END," ROLLUP_SUMS_SELECT
     " FROM usage GROUP BY 1, 2, 3, 4;"
     "CREATE TABLE usage_key_hourly (hour_ms BIGINT NOT NULL, key_id BIGINT NOT NULL,"
     ROLLUP_SUMS_DDL ", PRIMARY KEY (hour_ms, key_id));"
     "CREATE INDEX usage_key_hourly_key ON usage_key_hourly(key_id, hour_ms, cost_micros);"
     "INSERT INTO usage_key_hourly SELECT created_ms / 3600000 * 3600000, COALESCE(key_id, 0),"
     ROLLUP_SUMS_SELECT " FROM usage GROUP BY 1, 2;"
     "CREATE TABLE usage_latency_hourly (hour_ms BIGINT NOT NULL, which INTEGER NOT NULL,"
     " value BIGINT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (hour_ms, which, value));"
     "INSERT INTO usage_latency_hourly SELECT created_ms / 3600000 * 3600000, 0, "
     HBUCKET("latency_ms") ", COUNT(*) FROM usage WHERE outcome = 'ok' AND latency_ms IS NOT NULL"
     " GROUP BY 1, 3;"
     "INSERT INTO usage_latency_hourly SELECT created_ms / 3600000 * 3600000, 1, "
     HBUCKET("ttfb_ms") ", COUNT(*) FROM usage WHERE outcome = 'ok' AND ttfb_ms IS NOT NULL"
     " GROUP BY 1, 3;"),
    /* 5: content logging (sqlite.c migration 8). */
    ("ALTER TABLE api_keys ADD COLUMN content_retention_s BIGINT;"
     "CREATE TABLE content_log (request_id TEXT PRIMARY KEY, key_id BIGINT NOT NULL,"
     " created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, status INTEGER NOT NULL,"
     " stream BOOLEAN NOT NULL, request BYTEA NOT NULL, request_truncated BOOLEAN NOT NULL,"
     " response BYTEA NOT NULL, response_truncated BOOLEAN NOT NULL);"
     "CREATE INDEX content_log_expires ON content_log(expires_ms);"),
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum {
    Q_INSERT,
    Q_LIST,
    Q_LOOKUP,
    Q_REVOKE_NAME,
    Q_REVOKE_ID,
    Q_UPDATE_NAME,
    Q_UPDATE_ID,
    Q_ROTATE_NAME,
    Q_ROTATE_ID,
    Q_GET_NAME,
    Q_GET_ID,
    Q_SPENT,
    Q_USAGE,
    Q_TOTALS_MODEL,
    Q_TOTALS_VENDOR,
    Q_TOTALS_KEY,
    Q_TOTALS_DAY,
    Q_RESP_PUT,
    Q_RESP_GET,
    Q_RESP_DEL,
    Q_RESP_PURGE,
    Q_CONTENT_PUT,
    Q_CONTENT_GET,
    Q_CONTENT_PURGE,
    Q_SERIES_MODEL,
    Q_SERIES_VENDOR,
    Q_SERIES_KEY,
    Q_SERIES_CLASS,
    Q_SERIES_NONE,
    Q_HIST,
    Q_RSERIES_MODEL,
    Q_RSERIES_VENDOR,
    Q_RSERIES_KEY,
    Q_RSERIES_CLASS,
    Q_RSERIES_NONE,
    Q_RSERIES_KEYNONE,
    Q_RHIST,
    Q_ROLLUP,
    Q_KEY_ROLLUP,
    Q_RLATENCY,
    Q_RECENT,
    Q_KEY_PAGE,
    Q__COUNT
};

static const char *const q_sql[Q__COUNT] = {
    [Q_INSERT] = "INSERT INTO api_keys (allowed_models, allowed_vendors, rpm, tpm,"
                 " max_concurrency, budget_daily_micros, budget_monthly_micros,"
                 " budget_total_micros, expires_at, metadata, name, key_hash, prefix, created_at,"
                 " content_retention_s)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                 " RETURNING id",
    [Q_LIST] = "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id",
    [Q_LOOKUP] = "SELECT " KEY_COLUMNS " FROM api_keys"
                 " WHERE (key_hash = $1 OR (prev_hash = $1 AND prev_valid_until > $2))"
                 " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    [Q_REVOKE_NAME] = "UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL"
                      " RETURNING " KEY_COLUMNS,
    [Q_REVOKE_ID] = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
                    " RETURNING " KEY_COLUMNS,
    [Q_UPDATE_NAME] = "UPDATE api_keys SET " POLICY_SET
                      " WHERE name = $11 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [Q_UPDATE_ID] = "UPDATE api_keys SET " POLICY_SET
                    " WHERE id = $11 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [Q_ROTATE_NAME] = "UPDATE api_keys SET prev_hash = key_hash, prev_valid_until = $3,"
                      " key_hash = $1, prefix = $2 WHERE name = $4 AND revoked_at IS NULL"
                      " RETURNING " KEY_COLUMNS,
    [Q_ROTATE_ID] = "UPDATE api_keys SET prev_hash = key_hash, prev_valid_until = $3,"
                    " key_hash = $1, prefix = $2 WHERE id = $4 AND revoked_at IS NULL"
                    " RETURNING " KEY_COLUMNS,
    [Q_GET_NAME] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE name = $1 AND revoked_at IS NULL",
    [Q_GET_ID] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
    [Q_SPENT] = "SELECT COALESCE(SUM(cost_micros), 0) FROM usage WHERE key_id = $1"
                " AND created_ms >= $2",
    [Q_USAGE] = "INSERT INTO usage (request_id, key_id, model_id, provider, upstream_model,"
                " status, outcome, prompt_tokens, completion_tokens, cached_tokens,"
                " cache_write_tokens, reasoning_tokens, latency_ms, ttfb_ms, created_ms, attempt,"
                " upstream_status, cost_micros, stream, cancelled, error_class, usage_estimated)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                " $17, $18, $19, $20, $21, $22) ON CONFLICT (request_id, attempt) DO NOTHING",
    [Q_RESP_PUT] = "INSERT INTO responses (id, key_id, created_ms, input_items, response)"
                   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
                   " input_items = EXCLUDED.input_items, response = EXCLUDED.response",
    [Q_RESP_GET] = "SELECT input_items, response FROM responses WHERE id = $1 AND key_id = $2",
    [Q_RESP_DEL] = "DELETE FROM responses WHERE id = $1 AND key_id = $2",
    [Q_RESP_PURGE] = "DELETE FROM responses WHERE created_ms < $1",
    [Q_CONTENT_PUT] = "INSERT INTO content_log (request_id, key_id, created_ms, expires_ms, status,"
                      " stream, request, request_truncated, response, response_truncated)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                      " ON CONFLICT (request_id) DO NOTHING",
    [Q_CONTENT_GET] = "SELECT key_id, created_ms, expires_ms, status, stream, request,"
                      " request_truncated, response, response_truncated FROM content_log"
                      " WHERE request_id = $1 AND expires_ms > $2",
    [Q_CONTENT_PURGE] = "DELETE FROM content_log WHERE expires_ms <= $1",
    [Q_SERIES_MODEL] = SERIES("COALESCE(model_id, '')"),
    [Q_SERIES_VENDOR] = SERIES("COALESCE(provider, '')"),
    [Q_SERIES_CLASS] = SERIES("CASE WHEN outcome = 'ok' THEN 'ok'"
                              " ELSE COALESCE(error_class, outcome, 'unknown') END"),
    [Q_SERIES_NONE] = SERIES("''"),
    [Q_SERIES_KEY] = "SELECT s.t, COALESCE(k.name, 'master'), s.c1, s.c2, s.c3, s.c4, s.c5, s.c6,"
                     " s.c7, s.c8, s.c9 FROM (SELECT created_ms / $3::bigint * $3::bigint AS t,"
                     " key_id," SERIES_SUMS WINDOW " GROUP BY 1, 2) s LEFT JOIN api_keys k"
                     " ON k.id = s.key_id ORDER BY 1",
    [Q_HIST] = HIST("0", "latency_ms") " UNION ALL " HIST("1", "ttfb_ms") " ORDER BY 1",
    [Q_RSERIES_MODEL] = RSERIES("model_id"),
    [Q_RSERIES_VENDOR] = RSERIES("provider"),
    [Q_RSERIES_CLASS] = RSERIES("class"),
    [Q_RSERIES_NONE] = RSERIES("''"),
    [Q_RSERIES_KEYNONE] = "SELECT hour_ms / $3::bigint * $3::bigint, ''," RSUMS RKWINDOW
                          " GROUP BY 1 ORDER BY 1",
    [Q_RSERIES_KEY] = "SELECT s.t, COALESCE(k.name, 'master'), s.c1, s.c2, s.c3, s.c4, s.c5, s.c6,"
                      " s.c7, s.c8, s.c9 FROM (SELECT hour_ms / $3::bigint * $3::bigint AS t,"
                      " key_id," RSUMS RKWINDOW " GROUP BY 1, 2) s LEFT JOIN api_keys k"
                      " ON k.id = s.key_id ORDER BY 1",
    [Q_RHIST] = "SELECT hour_ms / $3::bigint * $3::bigint, which, value, SUM(count)"
                " FROM usage_latency_hourly WHERE hour_ms >= $1 AND hour_ms < $2 AND $4 = 0"
                " GROUP BY 1, 2, 3 ORDER BY 1",
    [Q_ROLLUP] = "INSERT INTO usage_hourly VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11,"
                 " $12) ON CONFLICT (hour_ms, model_id, provider, class)" ROLLUP_UPDATE("usage_hourly"),
    [Q_KEY_ROLLUP] = "INSERT INTO usage_key_hourly VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10)"
                     " ON CONFLICT (hour_ms, key_id)" ROLLUP_UPDATE("usage_key_hourly"),
    [Q_RLATENCY] = "INSERT INTO usage_latency_hourly VALUES ($1, $2, $3, 1) ON CONFLICT"
                   " (hour_ms, which, value) DO UPDATE SET count = usage_latency_hourly.count + 1",
    [Q_RECENT] = "WITH page AS (SELECT request_id, created_ms, id FROM usage WHERE attempt = 0"
                 " AND (created_ms, id) < ($1::bigint, $2::bigint) AND ($3 = 0 OR key_id = $3)"
                 " AND ($4 = 0 OR status >= 400) ORDER BY created_ms DESC, id DESC LIMIT $5)"
                 " SELECT u.request_id, p.created_ms, p.id, COALESCE(k.name, 'master'),"
                 " u.model_id, u.status, u.attempt, u.provider, u.upstream_model, u.outcome,"
                 " u.error_class, u.upstream_status, u.prompt_tokens, u.completion_tokens,"
                 " u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens, u.cost_micros,"
                 " u.latency_ms, u.ttfb_ms, u.stream, u.cancelled, u.usage_estimated"
                 " FROM page p JOIN usage u ON u.request_id = p.request_id"
                 " LEFT JOIN api_keys k ON k.id = u.key_id"
                 " ORDER BY p.created_ms DESC, p.id DESC, u.attempt",
    [Q_KEY_PAGE] = "SELECT " KEY_COLUMNS ","
                   " (SELECT COALESCE(SUM(cost_micros), 0) FROM usage_key_hourly u"
                   "  WHERE u.key_id = k.id AND u.hour_ms >= $4),"
                   " (SELECT COALESCE(SUM(cost_micros), 0) FROM usage_key_hourly u"
                   "  WHERE u.key_id = k.id AND u.hour_ms >= $5),"
                   " (SELECT COALESCE(SUM(cost_micros), 0) FROM usage_key_hourly u"
                   "  WHERE u.key_id = k.id)"
                   " FROM api_keys k WHERE k.id > $1 AND ($3 = 1 OR k.revoked_at IS NULL)"
                   " AND ($6::text IS NULL OR strpos(k.name, $6::text) > 0) ORDER BY k.id LIMIT $2",
    [Q_TOTALS_MODEL] = TOTALS("COALESCE(model_id, '')"),
    [Q_TOTALS_VENDOR] = TOTALS("COALESCE(provider, '')"),
    [Q_TOTALS_KEY] = TOTALS("COALESCE((SELECT name FROM api_keys k WHERE k.id = usage.key_id),"
                            " 'master')"),
    [Q_TOTALS_DAY] = TOTALS("to_char(to_timestamp(created_ms / 1000) AT TIME ZONE 'UTC',"
                            " 'YYYY-MM-DD')"),
};

typedef struct {
    yr_store_t base; /* first */
    PGconn *conn;
} pg_t;

/* Parameters as text (NULL = SQL NULL); binary only for hashes. */
typedef struct {
    const char *v[24];
    int len[24];
    int fmt[24];
    char num[24][24];
    int n;
} params_t;

static void p_text(params_t *p, const char *s)
{
    p->v[p->n] = s != NULL && s[0] != '\0' ? s : NULL;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_textn(params_t *p, yr_str_t s, char *buf, size_t cap)
{
    if (s.len == 0) {
        p_text(p, NULL);
        return;
    }
    size_t n = s.len < cap ? s.len : cap - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    p_text(p, buf);
}

static void p_int(params_t *p, int64_t v, bool null_if_zero)
{
    if (null_if_zero && v <= 0) {
        p_text(p, NULL);
        return;
    }
    snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
    p_text(p, p->num[p->n]);
}

static void p_bool(params_t *p, bool v)
{
    p_text(p, v ? "true" : "false");
}

static void p_bin(params_t *p, const unsigned char *b, int len)
{
    p->v[p->n] = (const char *)b;
    p->len[p->n] = len;
    p->fmt[p->n] = 1;
    p->n++;
}

static void p_policy(params_t *p, const yr_key_policy_t *pol)
{
    static const yr_key_policy_t none;
    if (pol == NULL)
        pol = &none;
    p_text(p, pol->allowed_models);
    p_text(p, pol->allowed_vendors);
    p_int(p, pol->rpm, true);
    p_int(p, pol->tpm, true);
    p_int(p, pol->max_concurrency, true);
    for (int b = 0; b < YR_BUDGET__COUNT; b++)
        p_int(p, pol->budget_micros[b], true);
    p_int(p, pol->expires_at, true);
    p_text(p, pol->metadata);
}

static bool conn_ok(pg_t *s)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        return true;
    PQreset(s->conn); /* once; prepared statements went with the old session */
    if (PQstatus(s->conn) != CONNECTION_OK)
        return false;
    for (int i = 0; i < Q__COUNT; i++) {
        char name[16];
        snprintf(name, sizeof(name), "q%d", i);
        PGresult *r = PQprepare(s->conn, name, q_sql[i], 0, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok)
            return false;
    }
    return true;
}

/* Runs prepared statement q. The result (caller PQclears) or NULL after
 * logging (never with values: libpq's message for a failed statement names
 * the constraint, not the data). *rc gets the errno. */
static PGresult *run(pg_t *s, int q, const params_t *p, const char *what, int *rc)
{
    *rc = 0;
    if (!conn_ok(s)) {
        yr_log_error("store: %s: postgres connection lost: %s", what, PQerrorMessage(s->conn));
        *rc = -EIO;
        return NULL;
    }
    char name[16];
    snprintf(name, sizeof(name), "q%d", q);
    PGresult *r = PQexecPrepared(s->conn, name, p != NULL ? p->n : 0, p != NULL ? p->v : NULL,
                                 p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "23505") == 0) {
        *rc = -EEXIST; /* unique violation: the active-name index */
    } else {
        /* the primary message and the SQLSTATE only: DETAIL lines quote values */
        const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        yr_log_error("store: %s: %s (SQLSTATE %s)", what, primary ? primary : "error",
                     state ? state : "?");
        *rc = -EIO;
    }
    PQclear(r);
    return NULL;
}

static int64_t col_int(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void col_text(PGresult *r, int row, int col, char *dst, size_t cap)
{
    const char *v = PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
    snprintf(dst, cap, "%s", v);
}

static void row_to_info(PGresult *r, int row, yr_key_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->id = col_int(r, row, 0);
    col_text(r, row, 1, info->name, sizeof(info->name));
    col_text(r, row, 2, info->prefix, sizeof(info->prefix));
    info->created_at = col_int(r, row, 3);
    info->revoked_at = col_int(r, row, 4);
    yr_key_policy_t *p = &info->policy;
    col_text(r, row, 5, p->allowed_models, sizeof(p->allowed_models));
    col_text(r, row, 6, p->allowed_vendors, sizeof(p->allowed_vendors));
    p->rpm = col_int(r, row, 7);
    p->tpm = col_int(r, row, 8);
    p->max_concurrency = col_int(r, row, 9);
    for (int b = 0; b < YR_BUDGET__COUNT; b++)
        p->budget_micros[b] = col_int(r, row, 10 + b);
    p->expires_at = col_int(r, row, 13);
    col_text(r, row, 14, p->metadata, sizeof(p->metadata));
    info->prev_valid_until = col_int(r, row, 15);
    p->log_retention_s = col_int(r, row, 16);
    p->log_content = p->log_retention_s > 0;
}

/* The first row into info: 0, or -ENOENT when there was none. */
static int one_row(pg_t *s, int q, const params_t *p, yr_key_info_t *info, const char *what)
{
    int rc;
    PGresult *r = run(s, q, p, what, &rc);
    if (r == NULL)
        return rc;
    rc = PQntuples(r) > 0 ? 0 : -ENOENT;
    if (rc == 0 && info != NULL)
        row_to_info(r, 0, info);
    PQclear(r);
    return rc;
}

/* ---- opening and migrating ---------------------------------------------- */

static int exec_simple(pg_t *s, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -EIO;
    if (rc != 0)
        yr_store_set_err(err, errlen, "postgres: %s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static int migrate(pg_t *s, char *err, size_t errlen)
{
    int rc = exec_simple(s, "BEGIN", err, errlen);
    if (rc == 0)
        rc = exec_simple(s, "SELECT pg_advisory_xact_lock(727165)", err, errlen); /* "yourouter" */
    if (rc == 0)
        rc = exec_simple(s, "CREATE TABLE IF NOT EXISTS yourouter_schema (version INTEGER NOT NULL)",
                         err, errlen);
    int64_t version = 0;
    if (rc == 0) {
        PGresult *r = PQexec(s->conn, "SELECT COALESCE(MAX(version), 0) FROM yourouter_schema");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            rc = -EIO;
        PQclear(r);
    }
    if (rc == 0 && (version < 0 || version > SCHEMA_VERSION)) {
        yr_store_set_err(err, errlen,
                         "postgres: database schema version %lld is newer than this build (%d)",
                         (long long)version, SCHEMA_VERSION);
        rc = -ENOTSUP;
    }
    for (int64_t v = version; rc == 0 && v < SCHEMA_VERSION; v++)
        rc = exec_simple(s, migrations[v], err, errlen);
    if (rc == 0 && version < SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof(sql), "DELETE FROM yourouter_schema; INSERT INTO yourouter_schema"
                                   " VALUES (%d)",
                 SCHEMA_VERSION);
        rc = exec_simple(s, sql, err, errlen);
    }
    if (rc == 0)
        rc = exec_simple(s, "COMMIT", err, errlen);
    else
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

static void pg_close(yr_store_t *base)
{
    pg_t *s = (pg_t *)base;
    PQfinish(s->conn);
    free(s);
}

static int pg_open(const char *url, yr_store_t **out, char *err, size_t errlen)
{
    pg_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        yr_store_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    /* A url libpq cannot parse: its message may quote the bad part (a
     * password), so say only that it is invalid. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    PQfreemem(perr);
    if (opts == NULL) {
        yr_store_set_err(err, errlen, "postgres: the storage url is not a valid postgres:// url");
        free(s);
        return -EINVAL;
    }
    PQconninfoFree(opts);
    s->conn = PQconnectdb(url);
    if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
        /* a connection failure names host and port, never the password */
        yr_store_set_err(err, errlen, "postgres: cannot connect: %s",
                         s->conn ? PQerrorMessage(s->conn) : "out of memory");
        rc = -ECONNREFUSED;
    }
    if (rc == 0)
        rc = exec_simple(s, "SET client_min_messages = warning", err, errlen);
    if (rc == 0)
        rc = migrate(s, err, errlen);
    for (int i = 0; rc == 0 && i < Q__COUNT; i++) {
        char name[16];
        snprintf(name, sizeof(name), "q%d", i);
        PGresult *r = PQprepare(s->conn, name, q_sql[i], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            yr_store_set_err(err, errlen, "postgres: prepare: %s", PQresultErrorMessage(r));
            rc = -EIO;
        }
        PQclear(r);
    }
    if (rc != 0) {
        pg_close(&s->base);
        /* trailing newline from libpq */
        size_t n = err != NULL ? strlen(err) : 0;
        if (n > 0 && err[n - 1] == '\n')
            err[n - 1] = '\0';
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static int pg_key_insert(yr_store_t *base, const char *name, const unsigned char *hash,
                         const char *prefix, int64_t now, const yr_key_policy_t *policy,
                         int64_t *id)
{
    pg_t *s = (pg_t *)base;
    params_t p = {0};
    p_policy(&p, policy);
    p_text(&p, name);
    p_bin(&p, hash, YR_KEY_HASH_LEN);
    p_text(&p, prefix);
    p_int(&p, now, false);
    p_int(&p, policy != NULL && policy->log_content ? policy->log_retention_s : 0, true);
    int rc;
    PGresult *r = run(s, Q_INSERT, &p, "create key", &rc);
    if (r == NULL)
        return rc;
    *id = col_int(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_key_list(yr_store_t *base, yr_key_list_fn fn, void *arg)
{
    pg_t *s = (pg_t *)base;
    int rc;
    PGresult *r = run(s, Q_LIST, NULL, "list keys", &rc);
    if (r == NULL)
        return rc;
    yr_key_info_t info;
    for (int i = 0; i < PQntuples(r); i++) {
        row_to_info(r, i, &info);
        fn(&info, arg);
    }
    PQclear(r);
    return 0;
}

static void p_which(params_t *p, const char *name, size_t len, int64_t id, char *buf, size_t cap)
{
    if (id > 0)
        p_int(p, id, false);
    else
        p_textn(p, (yr_str_t){name, len}, buf, cap);
}

static int pg_key_revoke(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                         int64_t now, yr_key_info_t *info)
{
    char buf[256];
    params_t p = {0};
    p_int(&p, now, false);
    p_which(&p, name, name_len, id, buf, sizeof(buf));
    return one_row((pg_t *)base, id > 0 ? Q_REVOKE_ID : Q_REVOKE_NAME, &p, info, "revoke key");
}

static int pg_key_update(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                         const yr_key_policy_t *policy, yr_key_info_t *info)
{
    char buf[256];
    params_t p = {0};
    p_policy(&p, policy);
    p_which(&p, name, name_len, id, buf, sizeof(buf));
    p_int(&p, policy != NULL && policy->log_content ? policy->log_retention_s : 0, true);
    return one_row((pg_t *)base, id > 0 ? Q_UPDATE_ID : Q_UPDATE_NAME, &p, info, "update key");
}

static int pg_key_rotate(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                         const unsigned char *hash, const char *prefix, int64_t prev_valid_until,
                         yr_key_info_t *info)
{
    char buf[256];
    params_t p = {0};
    p_bin(&p, hash, YR_KEY_HASH_LEN);
    p_text(&p, prefix);
    p_int(&p, prev_valid_until, false);
    p_which(&p, name, name_len, id, buf, sizeof(buf));
    return one_row((pg_t *)base, id > 0 ? Q_ROTATE_ID : Q_ROTATE_NAME, &p, info, "rotate key");
}

static int pg_key_get(yr_store_t *base, const char *name, size_t name_len, int64_t id,
                      yr_key_info_t *info)
{
    char buf[256];
    params_t p = {0};
    p_which(&p, name, name_len, id, buf, sizeof(buf));
    return one_row((pg_t *)base, id > 0 ? Q_GET_ID : Q_GET_NAME, &p, info, "get key");
}

static int pg_key_lookup(yr_store_t *base, const unsigned char *hash, int64_t now,
                         yr_key_info_t *info)
{
    pg_t *s = (pg_t *)base;
    yr_key_info_t tmp;
    if (info == NULL)
        info = &tmp;
    params_t p = {0};
    p_bin(&p, hash, YR_KEY_HASH_LEN);
    p_int(&p, now, false);
    int rc = one_row(s, Q_LOOKUP, &p, info, "look up key");
    if (rc != 0)
        return rc;
    const int64_t *b = info->policy.budget_micros;
    if (b[0] <= 0 && b[1] <= 0 && b[2] <= 0)
        return 0;
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    int64_t since[YR_BUDGET__COUNT] = {(now - now % 86400) * 1000, (int64_t)timegm(&tm) * 1000, 0};
    for (int i = 0; i < YR_BUDGET__COUNT && rc == 0; i++) {
        if (b[i] <= 0)
            continue;
        params_t q = {0};
        p_int(&q, info->id, false);
        p_int(&q, since[i], false);
        PGresult *r = run(s, Q_SPENT, &q, "sum key spend", &rc);
        if (r != NULL) {
            info->spent_micros[i] = col_int(r, 0, 0);
            PQclear(r);
        }
    }
    return rc;
}

/* ---- usage --------------------------------------------------------------- */

/* The row's share of the hourly rollups (backend.h). */
static int rollup_usage(pg_t *s, const yr_usage_row_t *u)
{
    char cls[64], bufs[2][YR_USAGE_STR_MAX + 1];
    yr_usage_class(u, cls, sizeof(cls));
    int64_t hour = u->created_ms / YR_HOUR_MS * YR_HOUR_MS;
    bool ok = yr_str_eq(u->outcome, YR_STR("ok"));
    const int64_t v[] = {u->attempt == 0,       u->prompt_tokens,    u->completion_tokens,
                         u->cached_tokens,      u->cache_write_tokens, u->reasoning_tokens,
                         u->cost_micros > 0 ? u->cost_micros : 0, !ok};
    params_t p = {0};
    p_int(&p, hour, false);
    snprintf(bufs[0], sizeof(bufs[0]), "%.*s", (int)u->model_id.len, u->model_id.ptr ? u->model_id.ptr : "");
    snprintf(bufs[1], sizeof(bufs[1]), "%.*s", (int)u->provider.len, u->provider.ptr ? u->provider.ptr : "");
    /* p_text makes "" a NULL: these columns are NOT NULL, so bind "" itself */
    for (int i = 0; i < 2; i++) {
        p.v[p.n] = bufs[i];
        p.len[p.n] = 0;
        p.fmt[p.n] = 0;
        p.n++;
    }
    p_text(&p, cls);
    for (int i = 0; i < 8; i++)
        p_int(&p, v[i], false);
    int rc;
    PQclear(run(s, Q_ROLLUP, &p, "usage rollup", &rc));
    params_t k = {0};
    p_int(&k, hour, false);
    p_int(&k, u->key_id > 0 ? u->key_id : 0, false);
    for (int i = 0; i < 8; i++)
        p_int(&k, v[i], false);
    if (rc == 0)
        PQclear(run(s, Q_KEY_ROLLUP, &k, "key usage rollup", &rc));
    const int64_t samples[2] = {u->latency_ms, u->ttfb_ms};
    for (int w = 0; rc == 0 && ok && w < 2; w++) {
        if (samples[w] < 0)
            continue;
        params_t l = {0};
        p_int(&l, hour, false);
        p_int(&l, w, false);
        p_int(&l, yr_usage_hbucket(samples[w]), false);
        PQclear(run(s, Q_RLATENCY, &l, "latency rollup", &rc));
    }
    return rc;
}

static int insert_usage(pg_t *s, const yr_usage_row_t *u)
{
    char bufs[6][YR_USAGE_STR_MAX + 1];
    params_t p = {0};
    p_textn(&p, u->request_id, bufs[0], sizeof(bufs[0]));
    p_int(&p, u->key_id, true);
    p_textn(&p, u->model_id, bufs[1], sizeof(bufs[1]));
    p_textn(&p, u->provider, bufs[2], sizeof(bufs[2]));
    p_textn(&p, u->upstream_model, bufs[3], sizeof(bufs[3]));
    p_int(&p, u->http_status, false);
    p_textn(&p, u->outcome, bufs[4], sizeof(bufs[4]));
    p_int(&p, u->prompt_tokens, false);
    p_int(&p, u->completion_tokens, false);
    p_int(&p, u->cached_tokens, false);
    p_int(&p, u->cache_write_tokens, false);
    p_int(&p, u->reasoning_tokens, false);
    if (u->latency_ms >= 0)
        p_int(&p, u->latency_ms, false);
    else
        p_text(&p, NULL);
    if (u->ttfb_ms >= 0)
        p_int(&p, u->ttfb_ms, false);
    else
        p_text(&p, NULL);
    p_int(&p, u->created_ms, false);
    p_int(&p, u->attempt, false);
    p_int(&p, u->upstream_status, true);
    if (u->cost_micros >= 0)
        p_int(&p, u->cost_micros, false);
    else
        p_text(&p, NULL);
    p_bool(&p, u->stream);
    p_bool(&p, u->cancelled);
    p_textn(&p, u->error_class, bufs[5], sizeof(bufs[5]));
    p_bool(&p, u->usage_estimated);
    int rc;
    PGresult *r = run(s, Q_USAGE, &p, "write usage", &rc);
    /* ON CONFLICT DO NOTHING: a row written before (a batch retried after a
     * lost commit acknowledgement) is not counted in the rollups again. */
    bool inserted = r != NULL && strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return rc == 0 && inserted ? rollup_usage(s, u) : rc;
}

static int pg_usage_write(yr_store_t *base, const yr_usage_row_t *rows, size_t n)
{
    pg_t *s = (pg_t *)base;
    if (!conn_ok(s))
        return -EIO;
    int rc = exec_simple(s, "BEGIN", NULL, 0);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = insert_usage(s, &rows[i]);
    if (rc == 0)
        rc = exec_simple(s, "COMMIT", NULL, 0);
    if (rc != 0)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

static int pg_usage_totals(yr_store_t *base, yr_usage_by_t by, int64_t since_ms, int64_t key_id,
                           yr_usage_total_fn fn, void *arg)
{
    static const int which[] = {
        [YR_USAGE_BY_MODEL] = Q_TOTALS_MODEL,
        [YR_USAGE_BY_VENDOR] = Q_TOTALS_VENDOR,
        [YR_USAGE_BY_KEY] = Q_TOTALS_KEY,
        [YR_USAGE_BY_DAY] = Q_TOTALS_DAY,
    };
    if ((unsigned)by > YR_USAGE_BY_DAY)
        return -EINVAL;
    params_t p = {0};
    p_int(&p, since_ms, false);
    p_int(&p, key_id, false);
    int rc;
    PGresult *r = run((pg_t *)base, which[by], &p, "usage totals", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        yr_usage_total_t t = {0};
        col_text(r, i, 0, t.group, sizeof(t.group));
        int64_t *v[] = {&t.requests,         &t.attempts,      &t.prompt_tokens,
                        &t.completion_tokens, &t.cached_tokens, &t.cache_write_tokens,
                        &t.reasoning_tokens,  &t.cost_micros,   &t.errors};
        for (int k = 0; k < 9; k++)
            *v[k] = col_int(r, i, 1 + k);
        fn(&t, arg);
    }
    PQclear(r);
    return 0;
}

static void p_window(params_t *p, const yr_usage_query_t *q)
{
    p_int(p, q->since_ms, false);
    p_int(p, q->until_ms > 0 ? q->until_ms : INT64_MAX, false);
    p_int(p, q->bucket_ms, false);
    p_int(p, q->key_id, false);
}

static bool col_bool(PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static int64_t col_int_or(PGresult *r, int row, int col, int64_t null_value)
{
    return PQgetisnull(r, row, col) ? null_value : col_int(r, row, col);
}

static int pg_usage_series(yr_store_t *base, const yr_usage_query_t *q, yr_usage_total_fn fn,
                           void *arg)
{
    int which = q->by == YR_USAGE_BY_MODEL    ? Q_SERIES_MODEL
                : q->by == YR_USAGE_BY_VENDOR ? Q_SERIES_VENDOR
                : q->by == YR_USAGE_BY_KEY    ? Q_SERIES_KEY
                : q->by == YR_USAGE_BY_CLASS  ? Q_SERIES_CLASS
                                              : Q_SERIES_NONE;
    int plan = yr_usage_plan(q);
    if (plan == YR_PLAN_KEY_HOURLY)
        which = q->by == YR_USAGE_BY_KEY ? Q_RSERIES_KEY : Q_RSERIES_KEYNONE;
    else if (plan == YR_PLAN_HOURLY)
        which += Q_RSERIES_MODEL - Q_SERIES_MODEL;
    params_t p = {0};
    p_window(&p, q);
    int rc;
    PGresult *r = run((pg_t *)base, which, &p, "usage series", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        yr_usage_total_t t = {.bucket_ms = col_int(r, i, 0)};
        col_text(r, i, 1, t.group, sizeof(t.group));
        int64_t *v[] = {&t.requests,          &t.attempts,      &t.prompt_tokens,
                        &t.completion_tokens, &t.cached_tokens, &t.cache_write_tokens,
                        &t.reasoning_tokens,  &t.cost_micros,   &t.errors};
        for (int k = 0; k < 9; k++)
            *v[k] = col_int(r, i, 2 + k);
        fn(&t, arg);
    }
    PQclear(r);
    return 0;
}

static int pg_usage_hist(yr_store_t *base, const yr_usage_query_t *q, yr_usage_hist_fn fn,
                         void *arg)
{
    params_t p = {0};
    p_window(&p, q);
    int rc;
    PGresult *r = run((pg_t *)base, yr_usage_plan(q) == YR_PLAN_HOURLY ? Q_RHIST : Q_HIST,
                      &p, "usage histogram", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r); i++)
        fn(col_int(r, i, 0), (int)col_int(r, i, 1), col_int(r, i, 2), col_int(r, i, 3), arg);
    PQclear(r);
    return 0;
}

static int pg_usage_recent(yr_store_t *base, const yr_recent_query_t *q, yr_usage_rec_fn fn,
                           void *arg)
{
    params_t p = {0};
    p_int(&p, q->before_ms > 0 ? q->before_ms : INT64_MAX, false);
    p_int(&p, q->before_ms > 0 ? q->before_id : INT64_MAX, false);
    p_int(&p, q->key_id, false);
    p_int(&p, q->errors_only, false);
    p_int(&p, q->limit, false);
    int rc;
    PGresult *r = run((pg_t *)base, Q_RECENT, &p, "recent requests", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        yr_usage_rec_t u = {0};
        col_text(r, i, 0, u.request_id, sizeof(u.request_id));
        u.created_ms = col_int(r, i, 1);
        u.row_id = col_int(r, i, 2);
        col_text(r, i, 3, u.key, sizeof(u.key));
        col_text(r, i, 4, u.model_id, sizeof(u.model_id));
        u.status = (int)col_int(r, i, 5);
        u.attempt = (int)col_int(r, i, 6);
        col_text(r, i, 7, u.provider, sizeof(u.provider));
        col_text(r, i, 8, u.upstream_model, sizeof(u.upstream_model));
        col_text(r, i, 9, u.outcome, sizeof(u.outcome));
        col_text(r, i, 10, u.error_class, sizeof(u.error_class));
        u.upstream_status = (int)col_int(r, i, 11);
        int64_t *v[] = {&u.prompt_tokens, &u.completion_tokens, &u.cached_tokens,
                        &u.cache_write_tokens, &u.reasoning_tokens};
        for (int k = 0; k < 5; k++)
            *v[k] = col_int(r, i, 12 + k);
        u.cost_micros = col_int_or(r, i, 17, -1);
        u.latency_ms = col_int_or(r, i, 18, -1);
        u.ttfb_ms = col_int_or(r, i, 19, -1);
        u.stream = col_bool(r, i, 20);
        u.cancelled = col_bool(r, i, 21);
        u.usage_estimated = col_bool(r, i, 22);
        fn(&u, arg);
    }
    PQclear(r);
    return 0;
}

static int pg_key_page(yr_store_t *base, const yr_key_page_t *q, yr_key_list_fn fn, void *arg)
{
    params_t p = {0};
    p_int(&p, q->after_id, false);
    p_int(&p, q->limit, false);
    p_int(&p, q->include_revoked, false);
    p_int(&p, q->day_start, false);
    p_int(&p, q->month_start, false);
    p_text(&p, q->search);
    int rc;
    PGresult *r = run((pg_t *)base, Q_KEY_PAGE, &p, "key page", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        yr_key_info_t info;
        row_to_info(r, i, &info);
        for (int b = 0; b < YR_BUDGET__COUNT; b++)
            info.spent_micros[b] = col_int(r, i, 17 + b);
        fn(&info, arg);
    }
    PQclear(r);
    return 0;
}

static int pg_response_put(yr_store_t *base, const char *id, int64_t key_id, int64_t created_ms,
                           const char *input_items, const char *response)
{
    params_t p = {0};
    p_text(&p, id);
    p_int(&p, key_id, false);
    p_int(&p, created_ms, false);
    p_text(&p, input_items); /* never empty: a JSON array */
    p_text(&p, response);
    int rc;
    PQclear(run((pg_t *)base, Q_RESP_PUT, &p, "store response", &rc));
    return rc;
}

static int pg_response_get(yr_store_t *base, const char *id, int64_t key_id, char **input_items,
                           char **response)
{
    params_t p = {0};
    p_text(&p, id);
    p_int(&p, key_id, false);
    int rc;
    PGresult *r = run((pg_t *)base, Q_RESP_GET, &p, "read response", &rc);
    if (r == NULL)
        return rc;
    rc = -ENOENT;
    if (PQntuples(r) > 0) {
        *input_items = strdup(PQgetvalue(r, 0, 0));
        *response = strdup(PQgetvalue(r, 0, 1));
        rc = *input_items && *response ? 0 : -ENOMEM;
        if (rc != 0) {
            free(*input_items);
            free(*response);
            *input_items = *response = NULL;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_response_delete(yr_store_t *base, const char *id, int64_t key_id)
{
    params_t p = {0};
    p_text(&p, id);
    p_int(&p, key_id, false);
    int rc;
    PGresult *r = run((pg_t *)base, Q_RESP_DEL, &p, "delete response", &rc);
    if (r == NULL)
        return rc;
    rc = strcmp(PQcmdTuples(r), "0") == 0 ? -ENOENT : 0;
    PQclear(r);
    return rc;
}

static int pg_response_purge(yr_store_t *base, int64_t before_ms)
{
    params_t p = {0};
    p_int(&p, before_ms, false);
    int rc;
    PGresult *r = run((pg_t *)base, Q_RESP_PURGE, &p, "purge responses", &rc);
    if (r == NULL)
        return rc;
    PQclear(r);
    return 0;
}

static int pg_content_put(yr_store_t *base, const yr_content_row_t *r)
{
    params_t p = {0};
    p_text(&p, r->request_id);
    p_int(&p, r->key_id, false);
    p_int(&p, r->created_ms, false);
    p_int(&p, r->expires_ms, false);
    p_int(&p, r->status, false);
    p_text(&p, r->stream ? "true" : "false");
    p_bin(&p, (const unsigned char *)(r->request ? r->request : ""), (int)r->request_len);
    p_text(&p, r->request_truncated ? "true" : "false");
    p_bin(&p, (const unsigned char *)(r->response ? r->response : ""), (int)r->response_len);
    p_text(&p, r->response_truncated ? "true" : "false");
    int rc;
    PQclear(run((pg_t *)base, Q_CONTENT_PUT, &p, "log content", &rc));
    return rc;
}

/* A bytea column (text format) as malloc'ed bytes, NUL-terminated. */
static char *col_bytea(PGresult *r, int col, size_t *len)
{
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, col), &n);
    char *out = b != NULL ? malloc(n + 1) : NULL;
    if (out != NULL) {
        memcpy(out, b, n);
        out[n] = '\0';
        *len = n;
    }
    PQfreemem(b);
    return out;
}

static int pg_content_get(yr_store_t *base, const char *id, int64_t now_ms, yr_content_row_t *c)
{
    params_t p = {0};
    p_text(&p, id);
    p_int(&p, now_ms, false);
    int rc;
    PGresult *r = run((pg_t *)base, Q_CONTENT_GET, &p, "read content", &rc);
    if (r == NULL)
        return rc;
    rc = -ENOENT;
    if (PQntuples(r) > 0) {
        snprintf(c->request_id, sizeof(c->request_id), "%s", id);
        c->key_id = col_int(r, 0, 0);
        c->created_ms = col_int(r, 0, 1);
        c->expires_ms = col_int(r, 0, 2);
        c->status = (int)col_int(r, 0, 3);
        c->stream = PQgetvalue(r, 0, 4)[0] == 't';
        c->request = col_bytea(r, 5, &c->request_len);
        c->request_truncated = PQgetvalue(r, 0, 6)[0] == 't';
        c->response = col_bytea(r, 7, &c->response_len);
        c->response_truncated = PQgetvalue(r, 0, 8)[0] == 't';
        rc = c->request && c->response ? 0 : -ENOMEM;
        if (rc != 0)
            yr_content_row_free(c);
    }
    PQclear(r);
    return rc;
}

static int pg_content_purge(yr_store_t *base, int64_t now_ms, int64_t *deleted)
{
    params_t p = {0};
    p_int(&p, now_ms, false);
    int rc;
    PGresult *r = run((pg_t *)base, Q_CONTENT_PURGE, &p, "purge content", &rc);
    if (r == NULL)
        return rc;
    *deleted = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

const yr_store_backend_t yr_store_postgres = {
    .content_put = pg_content_put,
    .content_get = pg_content_get,
    .content_purge = pg_content_purge,
    .response_put = pg_response_put,
    .response_purge = pg_response_purge,
    .response_get = pg_response_get,
    .response_delete = pg_response_delete,
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .key_insert = pg_key_insert,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .key_lookup = pg_key_lookup,
    .key_update = pg_key_update,
    .key_rotate = pg_key_rotate,
    .key_get = pg_key_get,
    .usage_totals = pg_usage_totals,
    .usage_series = pg_usage_series,
    .usage_hist = pg_usage_hist,
    .usage_recent = pg_usage_recent,
    .key_page = pg_key_page,
    .usage_write = pg_usage_write,
};
