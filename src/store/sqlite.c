/* SQLite implementation of store.h.
 *
 * A gateway process and `yourouter keys` open the same file at the same time,
 * so every connection runs in WAL mode (readers never block the one writer)
 * with a busy timeout (a writer waits for another writer instead of failing).
 * Every statement is prepared once in yr_store_open() and reset right after
 * each use: a statement left un-reset would hold its read transaction open and
 * keep this connection on an old snapshot, so a key revoked by the CLI would
 * go on working in the gateway. Resetting is what makes a revoke visible to
 * the next lookup on every other connection. */
#include "store/store.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"

/* RETURNING lets a revoke report the row it changed in one atomic statement. */
#if SQLITE_VERSION_NUMBER < 3035000
#error "yourouter needs SQLite 3.35 or newer (UPDATE ... RETURNING)"
#endif

#define BUSY_TIMEOUT_MS 5000
#define KEY_RANDOM_BYTES 32
#define KEY_NAME_MAX 127

_Static_assert(sizeof(YR_KEY_PREFIX) - 1 + (KEY_RANDOM_BYTES * 4 + 2) / 3 == YR_KEY_LEN,
               "YR_KEY_LEN must match the key encoding");
_Static_assert(YR_KEY_LEN < YR_KEY_MAX_LEN, "YR_KEY_MAX_LEN must hold a key and its NUL");
_Static_assert(YR_KEY_PREFIX_LEN < sizeof(((yr_key_info_t *)0)->prefix), "prefix field");
_Static_assert(KEY_NAME_MAX < sizeof(((yr_key_info_t *)0)->name), "name field");

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
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Every query that yields keys returns these columns, read by row_to_info(). */
#define KEY_COLUMNS "id, name, prefix, created_at, revoked_at"

enum { STMT_INSERT, STMT_LIST, STMT_LOOKUP, STMT_REVOKE_NAME, STMT_REVOKE_ID, STMT__COUNT };

static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_INSERT] = "INSERT INTO api_keys (name, key_hash, prefix, created_at)"
                    " VALUES (?1, ?2, ?3, ?4)",
    [STMT_LIST] = "SELECT " KEY_COLUMNS " FROM api_keys ORDER BY created_at, id",
    [STMT_LOOKUP] = "SELECT " KEY_COLUMNS " FROM api_keys"
                    " WHERE key_hash = ?1 AND revoked_at IS NULL",
    [STMT_REVOKE_NAME] = "UPDATE api_keys SET revoked_at = ?1"
                         " WHERE name = ?2 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
    [STMT_REVOKE_ID] = "UPDATE api_keys SET revoked_at = ?1"
                       " WHERE id = ?2 AND revoked_at IS NULL RETURNING " KEY_COLUMNS,
};

struct yr_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT__COUNT];
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

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
static int db_fail(yr_store_t *s, int rc, const char *what)
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
    info->id = sqlite3_column_int64(st, 0);
    copy_text(info->name, sizeof(info->name), st, 1);
    copy_text(info->prefix, sizeof(info->prefix), st, 2);
    info->created_at = sqlite3_column_int64(st, 3);
    info->revoked_at = sqlite3_column_int64(st, 4); /* NULL reads as 0 */
}

/* Runs st to completion, reading its first row (if any) into info. Returns 0
 * when a row came back, -ENOENT when none did. Always resets st. Stepping to
 * SQLITE_DONE, not just to the first row, is what commits an UPDATE ...
 * RETURNING in autocommit mode. */
static int step_one(yr_store_t *s, sqlite3_stmt *st, yr_key_info_t *info, const char *what)
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

static int exec(yr_store_t *s, const char *sql, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    set_err(err, errlen, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
    return sqlite_to_errno(rc);
}

/* Runs a one-row PRAGMA and returns its first column as an integer, or copies
 * it as text into buf when buf is not NULL. */
static int pragma(yr_store_t *s, const char *sql, int64_t *num, char *buf, size_t buflen, char *err,
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
static int set_wal(yr_store_t *s, char *mode, size_t len, char *err, size_t errlen)
{
    for (int waited = 0;; waited += 10) {
        int rc = pragma(s, "PRAGMA journal_mode = WAL", NULL, mode, len, err, errlen);
        if (rc != -EBUSY || waited >= BUSY_TIMEOUT_MS)
            return rc;
        sqlite3_sleep(10);
    }
}

static int configure(yr_store_t *s, bool in_memory, char *err, size_t errlen)
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
     * loss; it never corrupts the database. */
    return exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "pragmas", err, errlen);
}

static int migrate(yr_store_t *s, char *err, size_t errlen)
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

static int prepare_all(yr_store_t *s, char *err, size_t errlen)
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

/* Splits a storage url into the SQLite filename. Never echoes the url in an
 * error: a postgres url may carry a password. */
static int parse_url(const char *url, const char **path, char *err, size_t errlen)
{
    yr_str_t u = yr_str(url);
    if (url == NULL || u.len == 0) {
        set_err(err, errlen, "storage url is empty");
        return -EINVAL;
    }
    if (strcmp(url, "sqlite::memory:") == 0) {
        *path = ":memory:";
        return 0;
    }
    if (yr_str_has_prefix(u, YR_STR("sqlite://"))) {
        *path = url + strlen("sqlite://");
        if (**path != '\0')
            return 0;
        set_err(err, errlen, "storage url 'sqlite://' has no path (use sqlite://FILE)");
        return -EINVAL;
    }
    if (yr_str_has_prefix(u, YR_STR("postgres://")) ||
        yr_str_has_prefix(u, YR_STR("postgresql://"))) {
        set_err(err, errlen, "postgres storage is not available in this build yet");
        return -ENOTSUP;
    }
    const char *colon = strchr(url, ':');
    size_t slen = colon != NULL ? (size_t)(colon - url) : 0;
    for (size_t i = 0; i < slen; i++)
        if (!((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z')))
            slen = 0;
    if (slen > 0 && slen <= 16)
        set_err(err, errlen,
                "unsupported storage url scheme '%.*s' (use sqlite://FILE, "
                "sqlite::memory: or postgres://...)",
                (int)slen, url);
    else
        set_err(err, errlen,
                "storage url must start with sqlite:// or postgres:// (e.g. "
                "sqlite://yourouter.db)");
    return -EINVAL;
}

int yr_store_open(const char *url, yr_store_t **out, char *err, size_t errlen)
{
    const char *path = NULL;
    yr_store_t *s = NULL;
    int rc = parse_url(url, &path, err, errlen);
    if (rc != 0)
        goto out;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        set_err(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    /* NOMUTEX: a connection belongs to one thread, so SQLite's per-connection
     * mutex would only cost time on the lookup path. No SQLITE_OPEN_URI: the
     * path is a plain filename, whatever characters it holds. */
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
    *out = s;
    s = NULL;
out:
    yr_store_close(s);
    return rc;
}

void yr_store_close(yr_store_t *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* The last connection to close checkpoints the WAL and removes it. */
    sqlite3_close(s->db);
    free(s);
}

/* ---- keys ---------------------------------------------------------------- */

/* SHA256() looks the algorithm up in OpenSSL 3's provider tables on every
 * call; the fetched EVP_MD is immutable and thread-safe, so fetch it once. */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void yr_key_hash(const char *key, size_t len, unsigned char out[YR_KEY_HASH_LEN])
{
    pthread_once(&g_sha256_once, sha256_fetch);
    if (g_sha256 == NULL || EVP_Digest(key, len, out, NULL, g_sha256, NULL) != 1)
        SHA256((const unsigned char *)key, len, out);
}

static bool name_is_valid(const char *name)
{
    size_t len = strnlen(name, KEY_NAME_MAX + 1);
    bool all_digits = true;
    if (len == 0 || len > KEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool digit = c >= '0' && c <= '9';
        if (!(digit || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
              c == '-'))
            return false;
        all_digits = all_digits && digit;
    }
    return !all_digits;
}

/* RFC 4648 §5 base64url without padding; out must hold 4*ceil(n/3)+1 bytes. */
static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)in[i] << 16;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (left > 1)
            out[o++] = abc[(v >> 6) & 63];
        if (left > 2)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
}

static int make_key(char key[YR_KEY_MAX_LEN])
{
    unsigned char raw[KEY_RANDOM_BYTES];
    size_t plen = sizeof(YR_KEY_PREFIX) - 1;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        yr_log_error("store: RAND_bytes failed: cannot create a key");
        return -EIO;
    }
    memcpy(key, YR_KEY_PREFIX, plen);
    base64url(raw, sizeof(raw), key + plen);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int yr_store_key_create(yr_store_t *s, const char *name, char *key_out, yr_key_info_t *info)
{
    char key[YR_KEY_MAX_LEN];
    unsigned char hash[YR_KEY_HASH_LEN];
    char prefix[YR_KEY_PREFIX_LEN + 1];
    sqlite3_stmt *st = s->stmt[STMT_INSERT];
    int64_t now = (int64_t)time(NULL);
    int rc;
    if (name == NULL || !name_is_valid(name))
        return -EINVAL;
    rc = make_key(key);
    if (rc != 0)
        goto out;
    yr_key_hash(key, YR_KEY_LEN, hash);
    memcpy(prefix, key, YR_KEY_PREFIX_LEN);
    prefix[YR_KEY_PREFIX_LEN] = '\0';

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
    sqlite3_bind_text(st, 3, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = 0;
    } else if (src == SQLITE_CONSTRAINT_UNIQUE) {
        rc = -EEXIST; /* the active-name index: a 256-bit hash does not collide */
    } else {
        rc = db_fail(s, src, "create key");
    }
    int64_t id = sqlite3_last_insert_rowid(s->db);
    stmt_done(st);
    if (rc != 0)
        goto out;

    memcpy(key_out, key, YR_KEY_LEN + 1);
    if (info != NULL) {
        info->id = id;
        snprintf(info->name, sizeof(info->name), "%s", name);
        snprintf(info->prefix, sizeof(info->prefix), "%s", prefix);
        info->created_at = now;
        info->revoked_at = 0;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int yr_store_key_list(yr_store_t *s, void (*fn)(const yr_key_info_t *, void *), void *arg)
{
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

int yr_store_key_revoke_info(yr_store_t *s, const char *name_or_id, yr_key_info_t *info)
{
    yr_str_t arg = yr_str(name_or_id);
    uint64_t id;
    sqlite3_stmt *st;
    if (name_or_id == NULL)
        return -EINVAL;
    if (arg.len > 0 && strspn(name_or_id, "0123456789") == arg.len) {
        /* Names are never all digits, so this cannot shadow a name. */
        if (yr_str_to_u64(arg, INT64_MAX, &id) != 0)
            return -ENOENT; /* larger than any id */
        st = s->stmt[STMT_REVOKE_ID];
        sqlite3_bind_int64(st, 2, (int64_t)id);
    } else {
        if (arg.len > KEY_NAME_MAX)
            return -ENOENT; /* longer than any name */
        st = s->stmt[STMT_REVOKE_NAME];
        sqlite3_bind_text(st, 2, name_or_id, (int)arg.len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    return step_one(s, st, info, "revoke key");
}

int yr_store_key_revoke(yr_store_t *s, const char *name_or_id)
{
    return yr_store_key_revoke_info(s, name_or_id, NULL);
}

int yr_store_key_lookup(yr_store_t *s, const unsigned char *hash, yr_key_info_t *info)
{
    sqlite3_stmt *st = s->stmt[STMT_LOOKUP];
    sqlite3_bind_blob(st, 1, hash, YR_KEY_HASH_LEN, SQLITE_STATIC);
    return step_one(s, st, info, "look up key");
}
