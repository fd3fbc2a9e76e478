/* Store (SQLite) and `yourouter keys` tests. File-backed cases use a fresh
 * mkstemp file in /tmp each; the raw-table checks open it with sqlite3 directly. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/keys_cli.h"
#include "store/store.h"

#define SCHEMA_NOW 8  /* migrations in sqlite.c; 3 made the usage table whole */
#define WAIT_MS 10000 /* a store completion that takes longer fails the test */

typedef struct {
    char path[64];
    char url[96];
} tmpdb_t;

static void tmpdb_make(tmpdb_t *t)
{
    snprintf(t->path, sizeof(t->path), "/tmp/yr-store-test-XXXXXX");
    int fd = mkstemp(t->path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(t->url, sizeof(t->url), "sqlite://%s", t->path);
}

static void tmpdb_remove(const tmpdb_t *t)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char p[96];
        snprintf(p, sizeof(p), "%s%s", t->path, suffixes[i]);
        unlink(p);
    }
}

static yr_store_t *open_ok(const char *url)
{
    yr_store_t *s = NULL;
    char err[256] = "";
    int rc = yr_store_open(url, &s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "open %s: %d %s\n", url, rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static void create_ok(yr_store_t *s, const char *name, char key[YR_KEY_MAX_LEN],
                      yr_key_info_t *info)
{
    assert_int_equal(yr_store_key_create(s, name, key, info), 0);
}

static int lookup_key(yr_store_t *s, const char *key, yr_key_info_t *info)
{
    unsigned char hash[YR_KEY_HASH_LEN];
    yr_key_hash(key, strlen(key), hash);
    return yr_store_key_lookup(s, hash, info);
}

/* Runs one query on a raw sqlite3 connection and returns its first integer. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- opening -------------------------------------------------------------- */

static void test_open_memory(void **state)
{
    (void)state;
    yr_store_close(open_ok("sqlite::memory:"));
    yr_store_close(open_ok("sqlite://:memory:"));
    yr_store_close(NULL);
}

static void test_open_bad_urls(void **state)
{
    (void)state;
    yr_store_t *s = NULL;
    char err[256];

    err[0] = '\0';
    /* nothing listens there: a clear message that never shows the password */
    assert_int_equal(yr_store_open("postgres://u:secret@127.0.0.1:1/yr?connect_timeout=2", &s, err,
                                   sizeof(err)),
                     -ECONNREFUSED);
    assert_null(s);
    assert_non_null(strstr(err, "postgres: cannot connect"));
    assert_null(strstr(err, "secret"));

    err[0] = '\0';
    assert_int_equal(yr_store_open("mysql://u:secret@db/yr", &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'mysql'"));
    assert_null(strstr(err, "secret")); /* a url may carry a password */

    const char *bad[] = {"", "sqlite://", "sqlite:foo.db", "yourouter.db", "://x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(yr_store_open(bad[i], &s, err, sizeof(err)), -EINVAL);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(yr_store_open(NULL, &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(yr_store_open("mysql://x", &s, NULL, 0), -EINVAL); /* err is optional */
    assert_null(s);
}

static void test_open_not_a_database(void **state)
{
    (void)state;
    tmpdb_t t;
    yr_store_t *s = NULL;
    char err[256] = "";
    tmpdb_make(&t);
    FILE *f = fopen(t.path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a sqlite database\n", f);
    fclose(f);
    assert_true(yr_store_open(t.url, &s, err, sizeof(err)) < 0);
    assert_null(s);
    assert_true(strlen(err) > 0);
    tmpdb_remove(&t);
}

static void test_migrations_idempotent(void **state)
{
    (void)state;
    tmpdb_t t;
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    tmpdb_make(&t);

    yr_store_t *s = open_ok(t.url);
    create_ok(s, "first", key, NULL);
    yr_store_close(s);
    assert_int_equal(raw_int(t.path, "PRAGMA user_version"), SCHEMA_NOW);

    /* Reopening (twice at once) migrates nothing and loses nothing. */
    yr_store_t *a = open_ok(t.url);
    yr_store_t *b = open_ok(t.url);
    assert_int_equal(lookup_key(a, key, &info), 0);
    assert_string_equal(info.name, "first");
    assert_int_equal(lookup_key(b, key, NULL), 0);
    yr_store_close(a);
    yr_store_close(b);
    assert_int_equal(raw_int(t.path, "PRAGMA user_version"), SCHEMA_NOW);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM api_keys"), 1);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE name = 'usage'"), 1);
    assert_int_equal(
        raw_int(t.path, "SELECT count(*) FROM sqlite_master WHERE name = 'api_keys_active_name'"),
        1);
    tmpdb_remove(&t);
}

static void test_wal_mode(void **state)
{
    (void)state;
    tmpdb_t t;
    tmpdb_make(&t);
    yr_store_t *s = open_ok(t.url);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    yr_store_close(s);
    tmpdb_remove(&t);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    tmpdb_t t;
    yr_store_t *s = NULL;
    char err[256] = "";
    tmpdb_make(&t);
    yr_store_close(open_ok(t.url));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(yr_store_open(t.url, &s, err, sizeof(err)), -ENOTSUP);
    assert_non_null(strstr(err, "newer"));
    tmpdb_remove(&t);
}

/* ---- keys ----------------------------------------------------------------- */

/* Stored responses: scoped to their key, deleted, purged by age. */
static void test_responses(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    assert_int_equal(yr_store_response_put(s, "resp_old", 7, 1000, "[]", "{\"id\":1}"), 0);
    assert_int_equal(yr_store_response_put(s, "resp_new", 7, 5000, "[1]", "{\"id\":2}"), 0);
    char *items = NULL, *resp = NULL;
    assert_int_equal(yr_store_response_get(s, "resp_old", 8, &items, &resp), -ENOENT);
    assert_int_equal(yr_store_response_get(s, "resp_new", 7, &items, &resp), 0);
    assert_string_equal(items, "[1]");
    free(items);
    free(resp);
    assert_int_equal(yr_store_response_purge(s, 2000), 0);
    assert_int_equal(yr_store_response_get(s, "resp_old", 7, &items, &resp), -ENOENT);
    assert_int_equal(yr_store_response_get(s, "resp_new", 7, &items, &resp), 0);
    free(items);
    free(resp);
    assert_int_equal(yr_store_response_delete(s, "resp_new", 7), 0);
    assert_int_equal(yr_store_response_delete(s, "resp_new", 7), -ENOENT);
    yr_store_close(s);
}

/* Content rows: bytes kept exactly (NULs and cut UTF-8 too), hidden once
 * expired, purged by expiry; a key's opt-in round-trips through its row. */
static void test_content_log(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    char req[] = "{\"a\":1}", resp[] = {'o', 'k', '\0', (char)0xc3};
    yr_content_row_t r = {.request_id = "req-1", .key_id = 3, .created_ms = 1000,
                          .expires_ms = 5000, .status = 200, .stream = true,
                          .request = req, .request_len = strlen(req),
                          .response = resp, .response_len = sizeof(resp),
                          .response_truncated = true};
    assert_int_equal(yr_store_content_put(s, &r), 0);
    r.request_len = YR_CONTENT_MAX + 1;
    assert_int_equal(yr_store_content_put(s, &r), -EINVAL);
    yr_content_row_t got;
    assert_int_equal(yr_store_content_get(s, "req-1", 4999, &got), 0);
    assert_int_equal(got.key_id, 3);
    assert_int_equal(got.status, 200);
    assert_true(got.stream && got.response_truncated && !got.request_truncated);
    assert_int_equal(got.request_len, strlen(req));
    assert_memory_equal(got.request, req, strlen(req));
    assert_int_equal(got.response_len, sizeof(resp));
    assert_memory_equal(got.response, resp, sizeof(resp));
    yr_content_row_free(&got);
    assert_int_equal(yr_store_content_get(s, "req-1", 5000, &got), -ENOENT);
    assert_int_equal(yr_store_content_get(s, "nope", 0, &got), -ENOENT);
    int64_t n = -1;
    assert_int_equal(yr_store_content_purge(s, 4999, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(yr_store_content_purge(s, 5000, &n), 0);
    assert_int_equal(n, 1);

    yr_key_policy_t p = {.log_content = true, .log_retention_s = 3600};
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create_with(s, "logged", &p, key, &info), 0);
    assert_int_equal(yr_store_key_get(s, "logged", &info), 0);
    assert_true(info.policy.log_content);
    assert_int_equal(info.policy.log_retention_s, 3600);
    p.log_content = false;
    assert_int_equal(yr_store_key_update(s, "logged", &p, &info), -EINVAL); /* retention without */
    p.log_retention_s = 0;
    assert_int_equal(yr_store_key_update(s, "logged", &p, &info), 0);
    assert_false(info.policy.log_content);
    assert_int_equal(info.policy.log_retention_s, 0);
    p = (yr_key_policy_t){.log_content = true, .log_retention_s = YR_CONTENT_RETENTION_MAX + 1};
    assert_int_equal(yr_store_key_update(s, "logged", &p, &info), -EINVAL);
    yr_store_close(s);
}

static void test_key_format(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    char k1[YR_KEY_MAX_LEN];
    char k2[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    create_ok(s, "one", k1, &info);
    create_ok(s, "two", k2, NULL);

    assert_int_equal(strlen(k1), YR_KEY_LEN);
    assert_int_equal(strlen(k1), 3 + 43);
    assert_memory_equal(k1, "yr-", 3);
    for (size_t i = 3; i < strlen(k1); i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", k1[i]));
    /* 32 bytes = 256 bits; 43 chars carry 258, so the last char's low 2 bits
     * are zero: it is one of A, E, I, ..., 4, 8. */
    assert_non_null(strchr("AEIMQUYcgkosw048", k1[YR_KEY_LEN - 1]));
    assert_int_equal(strlen(info.prefix), YR_KEY_PREFIX_LEN);
    assert_memory_equal(info.prefix, k1, YR_KEY_PREFIX_LEN);
    assert_string_not_equal(k1, k2);
    assert_true(info.id > 0);
    assert_string_equal(info.name, "one");
    assert_true(info.created_at > 1600000000);
    assert_int_equal(info.revoked_at, 0);
    yr_store_close(s);
}

static void test_key_hash(void **state)
{
    (void)state;
    /* SHA-256("abc"), FIPS 180-2 appendix B.1 */
    static const unsigned char want[YR_KEY_HASH_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char got[YR_KEY_HASH_LEN];
    yr_key_hash("abcdef", 3, got);
    assert_memory_equal(got, want, sizeof(want));
}

typedef struct {
    yr_key_info_t rows[16];
    size_t n;
} collected_t;

static void on_key(const yr_key_info_t *k, void *arg)
{
    collected_t *c = arg;
    assert_true(c->n < 16);
    c->rows[c->n++] = *k;
}

static void test_create_list_lookup_revoke(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    char ka[YR_KEY_MAX_LEN], kb[YR_KEY_MAX_LEN], kc[YR_KEY_MAX_LEN];
    yr_key_info_t a, b, c, info;
    create_ok(s, "alpha", ka, &a);
    create_ok(s, "beta", kb, &b);
    create_ok(s, "gamma.prod_1-x", kc, &c);

    assert_int_equal(lookup_key(s, kb, &info), 0);
    assert_int_equal(info.id, b.id);
    assert_string_equal(info.name, "beta");
    assert_string_equal(info.prefix, b.prefix);
    assert_int_equal(info.created_at, b.created_at);
    assert_int_equal(info.revoked_at, 0);
    assert_int_equal(lookup_key(s, kb, NULL), 0);
    assert_int_equal(lookup_key(s, "yr-not-a-key", &info), -ENOENT);

    assert_int_equal(yr_store_key_revoke(s, "beta"), 0);
    assert_int_equal(lookup_key(s, kb, &info), -ENOENT);
    assert_int_equal(lookup_key(s, ka, NULL), 0);
    assert_int_equal(yr_store_key_revoke(s, "beta"), -ENOENT);

    /* by id, with the row it revoked reported back */
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)c.id);
    assert_int_equal(yr_store_key_revoke_info(s, id, &info), 0);
    assert_int_equal(info.id, c.id);
    assert_string_equal(info.name, "gamma.prod_1-x");
    assert_true(info.revoked_at > 0);
    assert_int_equal(lookup_key(s, kc, NULL), -ENOENT);
    assert_int_equal(yr_store_key_revoke(s, id), -ENOENT); /* ids match active keys only */

    assert_int_equal(yr_store_key_revoke(s, "nobody"), -ENOENT);
    assert_int_equal(yr_store_key_revoke(s, "999"), -ENOENT);
    assert_int_equal(yr_store_key_revoke(s, "99999999999999999999999"), -ENOENT);
    assert_int_equal(yr_store_key_revoke(s, ""), -ENOENT);

    collected_t col = {0};
    assert_int_equal(yr_store_key_list(s, on_key, &col), 0);
    assert_int_equal(col.n, 3);
    assert_string_equal(col.rows[0].name, "alpha");
    assert_string_equal(col.rows[1].name, "beta");
    assert_string_equal(col.rows[2].name, "gamma.prod_1-x");
    assert_int_equal(col.rows[0].revoked_at, 0);
    assert_true(col.rows[1].revoked_at > 0);
    assert_true(col.rows[2].revoked_at > 0);
    assert_string_equal(col.rows[0].prefix, a.prefix);
    yr_store_close(s);
}

static void test_list_empty(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    collected_t col = {0};
    assert_int_equal(yr_store_key_list(s, on_key, &col), 0);
    assert_int_equal(col.n, 0);
    yr_store_close(s);
}

static void test_duplicate_and_reuse(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    char k1[YR_KEY_MAX_LEN], k2[YR_KEY_MAX_LEN], k3[YR_KEY_MAX_LEN];
    yr_key_info_t i1, i2, info;
    create_ok(s, "ci", k1, &i1);
    assert_int_equal(yr_store_key_create(s, "ci", k2, NULL), -EEXIST);
    assert_int_equal(yr_store_key_create(s, "CI", k2, NULL), 0); /* names are case-sensitive */

    assert_int_equal(yr_store_key_revoke(s, "ci"), 0);
    create_ok(s, "ci", k3, &i2);
    assert_true(i2.id != i1.id);
    assert_int_equal(lookup_key(s, k1, NULL), -ENOENT);
    assert_int_equal(lookup_key(s, k3, &info), 0);
    assert_int_equal(info.id, i2.id);

    /* the name now means the new key only */
    assert_int_equal(yr_store_key_revoke_info(s, "ci", &info), 0);
    assert_int_equal(info.id, i2.id);
    assert_int_equal(yr_store_key_revoke(s, "ci"), -ENOENT);
    yr_store_close(s);
}

static void test_invalid_names(void **state)
{
    (void)state;
    yr_store_t *s = open_ok("sqlite::memory:");
    char key[YR_KEY_MAX_LEN];
    char longest[129];
    memset(longest, 'n', 128);
    longest[128] = '\0';

    const char *bad[] = {"", "a b", "a/b", "a\nb", "caf\xc3\xa9", "key'--", "123", "0", longest};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(yr_store_key_create(s, bad[i], key, NULL), -EINVAL);
    assert_int_equal(yr_store_key_create(s, NULL, key, NULL), -EINVAL);

    longest[127] = '\0';
    const char *good[] = {"a", "A.b_c-9", "1a", "-", "...", longest};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(yr_store_key_create(s, good[i], key, NULL), 0);

    collected_t col = {0};
    assert_int_equal(yr_store_key_list(s, on_key, &col), 0);
    assert_int_equal(col.n, 6);
    assert_string_equal(col.rows[5].name, longest);
    yr_store_close(s);
}

static bool contains(const void *hay, size_t n, const char *needle)
{
    return n > 0 && memmem(hay, n, needle, strlen(needle)) != NULL;
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    return contains(data, n, needle);
}

static void test_stored_hash_not_key(void **state)
{
    (void)state;
    tmpdb_t t;
    char key[YR_KEY_MAX_LEN];
    unsigned char hash[YR_KEY_HASH_LEN];
    tmpdb_make(&t);
    yr_store_t *s = open_ok(t.url);
    create_ok(s, "secret-holder", key, NULL);
    const char *body = key + 3; /* the random part, without "yr-" */

    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM api_keys", -1, &st, NULL), SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const void *v = sqlite3_column_blob(st, c);
            size_t n = (size_t)sqlite3_column_bytes(st, c);
            assert_false(contains(v, n, key));
            assert_false(contains(v, n, body));
            if (strcmp(sqlite3_column_name(st, c), "key_hash") == 0) {
                yr_key_hash(key, strlen(key), hash);
                assert_int_equal(n, YR_KEY_HASH_LEN);
                assert_memory_equal(v, hash, YR_KEY_HASH_LEN);
            }
        }
    }
    assert_int_equal(rows, 1);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* nor anywhere in the files, pages not yet checkpointed included */
    char wal[96];
    snprintf(wal, sizeof(wal), "%s-wal", t.path);
    assert_false(file_contains(t.path, body));
    assert_false(file_contains(wal, body));
    yr_store_close(s);
    assert_false(file_contains(t.path, body));
    tmpdb_remove(&t);
}

static void test_two_connections(void **state)
{
    (void)state;
    tmpdb_t t;
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    tmpdb_make(&t);
    yr_store_t *gateway = open_ok(t.url);
    yr_store_t *cli = open_ok(t.url);

    assert_int_equal(lookup_key(gateway, "yr-unknown", NULL), -ENOENT);
    create_ok(cli, "live", key, &info);
    assert_int_equal(lookup_key(gateway, key, NULL), 0);
    assert_int_equal(lookup_key(gateway, key, NULL), 0);
    assert_int_equal(yr_store_key_revoke(cli, "live"), 0);
    assert_int_equal(lookup_key(gateway, key, NULL), -ENOENT);

    /* and the other way round, by id */
    create_ok(gateway, "other", key, &info);
    assert_int_equal(lookup_key(cli, key, NULL), 0);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)info.id);
    assert_int_equal(yr_store_key_revoke(gateway, id), 0);
    assert_int_equal(lookup_key(cli, key, NULL), -ENOENT);

    yr_store_close(gateway);
    yr_store_close(cli);
    tmpdb_remove(&t);
}

/* Several processes open one fresh file at the same moment (racing on the
 * migration), then all write at once: the busy timeout must absorb it. */
#define PROCS 4
#define KEYS_PER_PROC 25

static int child_work(const char *url, int fd, int n)
{
    char c;
    yr_store_t *s = NULL;
    char key[YR_KEY_MAX_LEN];
    char err[256];
    if (read(fd, &c, 1) < 0) /* returns 0 when the parent closes the pipe */
        return 10;
    if (yr_store_open(url, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "child %d: %s\n", n, err);
        return 11;
    }
    for (int i = 0; i < KEYS_PER_PROC; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%d-%d", n, i);
        if (yr_store_key_create(s, name, key, NULL) != 0)
            return 12;
        if (lookup_key(s, key, NULL) != 0)
            return 13;
    }
    yr_store_close(s);
    return 0;
}

static void test_multi_process(void **state)
{
    (void)state;
    tmpdb_t t;
    int pipefd[2];
    pid_t pids[PROCS];
    tmpdb_make(&t);
    assert_int_equal(pipe(pipefd), 0);
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(pipefd[1]);
            _exit(child_work(t.url, pipefd[0], i));
        }
    }
    close(pipefd[0]);
    close(pipefd[1]); /* start them all */
    for (int i = 0; i < PROCS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM api_keys"), PROCS * KEYS_PER_PROC);
    assert_int_equal(raw_int(t.path, "PRAGMA user_version"), SCHEMA_NOW);
    tmpdb_remove(&t);
}

/* Another process holds the write lock for a while (a gateway writing a usage
 * batch): a CLI write waits for it rather than failing. */
static void test_busy_writer_waits(void **state)
{
    (void)state;
    tmpdb_t t;
    int ready[2];
    char key[YR_KEY_MAX_LEN];
    tmpdb_make(&t);
    yr_store_t *s = open_ok(t.url);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *db = NULL;
        int bad = sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
                  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK;
        if (write(ready[1], "x", 1) != 1 || bad)
            _exit(1);
        usleep(300 * 1000);
        _exit(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : 2);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(yr_store_key_create(s, "patient", key, NULL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(lookup_key(s, key, NULL), 0);
    close(ready[0]);
    close(ready[1]);
    yr_store_close(s);
    tmpdb_remove(&t);
}

/* ---- yourouter keys ------------------------------------------------------- */

typedef struct {
    int code;
    char out[4096];
    char err[4096];
} cli_result_t;

static void slurp(FILE *f, char *buf, size_t len)
{
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs yr_keys_cli with stdout and stderr captured. */
static void run_cli(cli_result_t *r, const char *url, int argc, ...)
{
    char *argv[8];
    va_list ap;
    assert_true(argc < 8);
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;

    FILE *fo = tmpfile();
    FILE *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO);
    int saved_err = dup(STDERR_FILENO);
    dup2(fileno(fo), STDOUT_FILENO);
    dup2(fileno(fe), STDERR_FILENO);
    r->code = yr_keys_cli(argc, argv, url);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    slurp(fo, r->out, sizeof(r->out));
    slurp(fe, r->err, sizeof(r->err));
}

/* Whether s holds an ISO-8601 UTC time as its own column:
 * " YYYY-MM-DDTHH:MM:SSZ ". */
static bool has_iso_time(const char *s)
{
    static const char pat[] = " dddd-dd-ddTdd:dd:ddZ ";
    size_t n = sizeof(pat) - 1;
    for (size_t len = strlen(s), at = 0; at + n <= len; at++) {
        size_t i = 0;
        for (; i < n; i++) {
            char c = s[at + i];
            if (pat[i] == 'd' ? !(c >= '0' && c <= '9') : c != pat[i])
                break;
        }
        if (i == n)
            return true;
    }
    return false;
}

static void test_cli_create_list_revoke(void **state)
{
    (void)state;
    tmpdb_t t;
    cli_result_t r;
    tmpdb_make(&t);

    run_cli(&r, t.url, 3, "create", "--name", "ci");
    assert_int_equal(r.code, 0);
    /* stdout is the key and a newline, nothing else */
    assert_int_equal(strlen(r.out), YR_KEY_LEN + 1);
    assert_memory_equal(r.out, "yr-", 3);
    assert_int_equal(r.out[YR_KEY_LEN], '\n');
    char key[YR_KEY_MAX_LEN];
    snprintf(key, sizeof(key), "%.*s", YR_KEY_LEN, r.out);
    char want[128];
    snprintf(want, sizeof(want), "created key 'ci' (id 1, prefix %.10s)\n", key);
    assert_string_equal(r.err, want);

    yr_store_t *s = open_ok(t.url);
    assert_int_equal(lookup_key(s, key, NULL), 0);

    run_cli(&r, t.url, 2, "create", "--name=deploy.bot");
    assert_int_equal(r.code, 0);
    assert_int_equal(strlen(r.out), YR_KEY_LEN + 1);

    run_cli(&r, t.url, 3, "create", "--name", "ci");
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "already exists"));

    run_cli(&r, t.url, 2, "revoke", "ci");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "revoked key 'ci' (id 1)\n");
    assert_int_equal(lookup_key(s, key, NULL), -ENOENT);

    run_cli(&r, t.url, 2, "revoke", "ci");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "'ci'"));

    run_cli(&r, t.url, 2, "revoke", "2");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.err, "revoked key 'deploy.bot' (id 2)\n");

    run_cli(&r, t.url, 3, "create", "--name", "ci");
    assert_int_equal(r.code, 0);

    run_cli(&r, t.url, 1, "list");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.err, "");
    /* header + 3 rows, oldest first */
    const char *line = r.out;
    const char *expect[] = {"ID", "1 ", "2 ", "3 "};
    const char *status[] = {"STATUS", "revoked", "revoked", "active"};
    const char *names[] = {"NAME", "ci", "deploy.bot", "ci"};
    for (int i = 0; i < 4; i++) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char row[256];
        snprintf(row, sizeof(row), "%.*s", (int)(nl - line), line);
        assert_memory_equal(row, expect[i], strlen(expect[i]));
        assert_non_null(strstr(row, names[i]));
        size_t rl = strlen(row), sl = strlen(status[i]);
        assert_true(rl > sl);
        assert_string_equal(row + rl - sl, status[i]);
        if (i > 0) {
            assert_non_null(strstr(row, "yr-"));
            assert_true(has_iso_time(row));
        }
        line = nl + 1;
    }
    assert_string_equal(line, "");
    assert_null(strstr(r.out, key + 3)); /* list never shows a key */

    yr_store_close(s);
    tmpdb_remove(&t);
}

static void test_cli_usage(void **state)
{
    (void)state;
    cli_result_t r;
    const char *url = "sqlite::memory:";

    run_cli(&r, url, 0);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "usage:"));
    run_cli(&r, url, 1, "frobnicate");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 1, "create");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 2, "create", "--name");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 3, "create", "ci", "x");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 5, "create", "--name", "a", "--name", "b");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 3, "create", "--name", "bad name");
    assert_int_equal(r.code, 2);
    assert_string_equal(r.out, "");
    run_cli(&r, url, 3, "create", "--name", "42");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 2, "list", "extra");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 1, "revoke");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 3, "revoke", "a", "b");
    assert_int_equal(r.code, 2);
    run_cli(&r, url, 1, "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage:"));
    assert_string_equal(r.err, "");

    run_cli(&r, "postgres://u:secret@127.0.0.1:1/yr?connect_timeout=2", 1, "list");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "cannot open storage: postgres: cannot connect"));
    assert_null(strstr(r.err, "secret"));
    run_cli(&r, NULL, 1, "list");
    assert_int_equal(r.code, 1);
}

/* ---- schema 2 -> 3: the usage table ------------------------------------------ */

/* A database made by a build whose schema stopped at 2 gets the full usage
 * table, and keeps its keys. */
static void test_migrate_from_2(void **state)
{
    (void)state;
    tmpdb_t t;
    tmpdb_make(&t);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE api_keys (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " key_hash BLOB NOT NULL UNIQUE, prefix TEXT NOT NULL,"
                     " created_at INTEGER NOT NULL, revoked_at INTEGER);"
                     "CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name)"
                     " WHERE revoked_at IS NULL;"
                     "CREATE TABLE usage (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL,"
                     " key_id INTEGER, model TEXT, vendor TEXT, status INTEGER,"
                     " prompt_tokens INTEGER, completion_tokens INTEGER, latency_ms INTEGER,"
                     " created_at INTEGER NOT NULL);"
                     "INSERT INTO api_keys (name, key_hash, prefix, created_at)"
                     " VALUES ('old', x'00', 'yr-old', 1);"
                     "PRAGMA user_version = 2;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    yr_store_close(open_ok(t.url));
    assert_int_equal(raw_int(t.path, "PRAGMA user_version"), SCHEMA_NOW);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM api_keys WHERE name = 'old'"), 1);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM pragma_table_info('usage') WHERE name"
                                     " IN ('request_id', 'key_id', 'model_id', 'provider',"
                                     " 'upstream_model', 'status', 'outcome', 'prompt_tokens',"
                                     " 'completion_tokens', 'cached_tokens',"
                                     " 'cache_write_tokens', 'reasoning_tokens', 'latency_ms',"
                                     " 'ttfb_ms', 'created_ms')"),
                     15);
    tmpdb_remove(&t);
}

/* ---- the store thread: async key operations ----------------------------------- */

typedef struct {
    uv_loop_t loop;
    yr_store_thread_t *t;
    yr_store_client_t *c;
    int calls;
    int status;
    yr_key_info_t info;
    char key[YR_KEY_MAX_LEN];
    size_t nkeys;
    char names[8][128];
} async_t;

static void async_start(async_t *a, const char *url)
{
    char err[256] = "";
    memset(a, 0, sizeof(*a));
    int rc = yr_store_thread_start(url, &a->t, err, sizeof(err));
    if (rc != 0)
        fail_msg("store thread %s: %d %s", url, rc, err);
    assert_int_equal(uv_loop_init(&a->loop), 0);
    assert_int_equal(yr_store_client_init(&a->loop, a->t, &a->c), 0);
}

static void on_client_closed(void *arg)
{
    (*(int *)arg)++;
}

static void async_stop(async_t *a)
{
    int closed = 0;
    yr_store_client_close(a->c, on_client_closed, &closed);
    assert_int_equal(closed, 0); /* from the loop, not from inside the call */
    assert_int_equal(uv_run(&a->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&a->loop), 0);
    yr_store_thread_stop(a->t);
}

static void on_wait_timeout(uv_timer_t *t)
{
    (void)t;
    fail_msg("no store completion within %d ms", WAIT_MS);
}

/* Runs the loop until a->calls reaches n, for at most WAIT_MS. */
static void async_wait(async_t *a, int n)
{
    uv_timer_t guard;
    uv_timer_init(&a->loop, &guard);
    uv_timer_start(&guard, on_wait_timeout, WAIT_MS, 0);
    while (a->calls < n)
        uv_run(&a->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&a->loop, UV_RUN_NOWAIT);
}

static void on_lookup(void *arg, int status, const yr_key_info_t *info)
{
    async_t *a = arg;
    a->calls++;
    a->status = status;
    if (status == 0)
        a->info = *info;
    else
        assert_null(info);
}

static void on_create(void *arg, int status, const char *key, const yr_key_info_t *info)
{
    async_t *a = arg;
    a->calls++;
    a->status = status;
    if (status == 0) {
        snprintf(a->key, sizeof(a->key), "%s", key);
        a->info = *info;
    }
}

static void on_list(void *arg, int status, const yr_key_info_t *keys, size_t n)
{
    async_t *a = arg;
    a->calls++;
    a->status = status;
    a->nkeys = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(a->names[i], sizeof(a->names[i]), "%s", keys[i].name);
}

static void on_revoke(void *arg, int status, const yr_key_info_t *info)
{
    async_t *a = arg;
    a->calls++;
    a->status = status;
    if (status == 0)
        a->info = *info;
}

static void test_async_key_ops(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a;
    yr_store_op_t *op = NULL;
    tmpdb_make(&t);
    async_start(&a, t.url);

    assert_int_equal(yr_store_create_async(a.c, "async-one", on_create, &a, &op), 0);
    assert_non_null(op);
    assert_int_equal(a.calls, 0); /* never from inside the submit */
    async_wait(&a, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(strlen(a.key), YR_KEY_LEN);
    int64_t id = a.info.id;
    assert_string_equal(a.info.name, "async-one");

    unsigned char hash[YR_KEY_HASH_LEN];
    yr_key_hash(a.key, strlen(a.key), hash);
    assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup, &a, NULL), 0);
    async_wait(&a, 2);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.info.id, id);

    /* The synchronous API (the CLI's) on another connection sees it. */
    yr_store_t *s = open_ok(t.url);
    assert_int_equal(lookup_key(s, a.key, NULL), 0);
    char key2[YR_KEY_MAX_LEN];
    create_ok(s, "sync-two", key2, NULL);

    assert_int_equal(yr_store_create_async(a.c, "async-one", on_create, &a, NULL), 0);
    async_wait(&a, 3);
    assert_int_equal(a.status, -EEXIST);
    char longname[200];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(yr_store_create_async(a.c, longname, on_create, &a, NULL), 0);
    async_wait(&a, 4);
    assert_int_equal(a.status, -EINVAL);

    assert_int_equal(yr_store_list_async(a.c, on_list, &a, NULL), 0);
    async_wait(&a, 5);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.nkeys, 2);
    assert_string_equal(a.names[0], "async-one");
    assert_string_equal(a.names[1], "sync-two");

    assert_int_equal(yr_store_revoke_async(a.c, "async-one", on_revoke, &a, NULL), 0);
    async_wait(&a, 6);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.info.id, id);
    assert_int_equal(yr_store_revoke_async(a.c, longname, on_revoke, &a, NULL), 0);
    async_wait(&a, 7);
    assert_int_equal(a.status, -ENOENT);
    assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup, &a, NULL), 0);
    async_wait(&a, 8);
    assert_int_equal(a.status, -ENOENT);
    assert_int_equal(lookup_key(s, a.key, NULL), -ENOENT); /* and the CLI's side agrees */

    yr_store_stats_t st;
    yr_store_stats(a.t, &st);
    assert_int_equal(st.ops_done, 8);
    assert_int_equal(st.ops_rejected, 0);
    assert_int_equal(yr_store_lookup_async(a.c, NULL, on_lookup, &a, NULL), -EINVAL);
    yr_store_close(s);
    async_stop(&a);
    tmpdb_remove(&t);
}

/* Cancelled ops never call back; their memory comes back with them. */
static void test_async_cancel(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a, never;
    tmpdb_make(&t);
    async_start(&a, t.url);
    memset(&never, 0, sizeof(never));
    unsigned char hash[YR_KEY_HASH_LEN] = {1};
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        yr_store_op_t *op = NULL;
        assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup, &never, &op), 0);
        yr_store_cancel(op);
    }
    /* A create cancelled at once: it may or may not have run, but its key
     * (the only copy) is wiped and its callback never runs. */
    yr_store_op_t *op = NULL;
    assert_int_equal(yr_store_create_async(a.c, "maybe", on_create, &never, &op), 0);
    yr_store_cancel(op);
    assert_int_equal(yr_store_list_async(a.c, on_list, &never, &op), 0);
    yr_store_cancel(op);
    /* FIFO: when this one is back, the cancelled ones are too. */
    assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup, &a, NULL), 0);
    async_wait(&a, 1);
    assert_int_equal(a.status, -ENOENT);
    assert_int_equal(never.calls, 0);
    /* Cancelled and still in flight when the client closes. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup, &never, &op), 0);
        yr_store_cancel(op);
    }
    async_stop(&a);
    assert_int_equal(never.calls, 0);
    tmpdb_remove(&t);
}

/* Callbacks may cancel another op (even one completed in the same batch:
 * it is then not called) and close their own client. */
typedef struct {
    async_t *a;
    yr_store_op_t *victim;
    int calls;
    int closed;
} reenter_t;

static void on_lookup_cancels(void *arg, int status, const yr_key_info_t *info)
{
    (void)status, (void)info;
    reenter_t *r = arg;
    r->calls++;
    yr_store_cancel(r->victim);
}

static void on_lookup_closes(void *arg, int status, const yr_key_info_t *info)
{
    (void)status, (void)info;
    reenter_t *r = arg;
    r->calls++;
    yr_store_client_close(r->a->c, on_client_closed, &r->closed);
    assert_int_equal(r->closed, 0);
}

static void test_async_callbacks_reenter(void **state)
{
    (void)state;
    async_t a, never;
    reenter_t r = {.a = &a};
    memset(&never, 0, sizeof(never));
    async_start(&a, "sqlite::memory:");
    unsigned char hash[YR_KEY_HASH_LEN] = {3};
    assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup_cancels, &r, NULL), 0);
    assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup, &never, &r.victim), 0);
    assert_int_equal(yr_store_lookup_async(a.c, hash, on_lookup_closes, &r, NULL), 0);
    /* The loop ends by itself: the last callback closed the client. */
    assert_int_equal(uv_run(&a.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.closed, 1);
    assert_int_equal(never.calls, 0);
    assert_int_equal(uv_loop_close(&a.loop), 0);
    yr_store_thread_stop(a.t);
}

/* Holds the database's write lock from another connection, so the store
 * thread blocks in its busy handler on the next write. */
static sqlite3 *hold_write_lock(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void release_write_lock(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The op queue is bounded: with the store thread stuck behind a lock, a
 * submit past YR_STORE_QUEUE_MAX fails at once with -EAGAIN (its callback
 * never runs), and everything queued is answered once the lock goes. */
static void test_async_queue_full(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a;
    tmpdb_make(&t);
    async_start(&a, t.url);
    sqlite3 *lock = hold_write_lock(t.path);
    assert_int_equal(yr_store_create_async(a.c, "blocked", on_create, &a, NULL), 0);
    unsigned char hash[YR_KEY_HASH_LEN] = {2};
    int queued = 1, rc = 0;
    /* The thread took at most one batch (the create and what followed it)
     * before it blocked: the queue is full within two queues' worth. */
    for (int i = 0; i < 2 * YR_STORE_QUEUE_MAX + 2; i++) {
        rc = yr_store_lookup_async(a.c, hash, on_lookup, &a, NULL);
        if (rc != 0)
            break;
        queued++;
    }
    assert_int_equal(rc, -EAGAIN);
    assert_true(queued >= YR_STORE_QUEUE_MAX);
    yr_store_stats_t st;
    yr_store_stats(a.t, &st);
    assert_int_equal(st.ops_rejected, 1);
    release_write_lock(lock);
    async_wait(&a, queued);
    assert_int_equal(a.calls, queued);
    async_stop(&a);
    tmpdb_remove(&t);
}

/* ---- usage rows ------------------------------------------------------------------ */

static yr_usage_row_t usage_row(const char *request_id, int64_t key_id)
{
    return (yr_usage_row_t){
        .request_id = yr_str(request_id),
        .key_id = key_id,
        .model_id = YR_STR("fast-chat"),
        .provider = YR_STR("anthropic"),
        .upstream_model = YR_STR("claude-3-5-haiku-latest"),
        .http_status = 200,
        .outcome = YR_STR("ok"),
        .prompt_tokens = 11,
        .completion_tokens = 22,
        .cached_tokens = 3,
        .cache_write_tokens = 4,
        .reasoning_tokens = 5,
        .latency_ms = 120,
        .ttfb_ms = 45,
        .created_ms = 1764650000123,
    };
}

static void raw_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(out, len, "%s", v != NULL ? (const char *)v : "NULL");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_usage_batch_read_back(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a;
    tmpdb_make(&t);
    async_start(&a, t.url);
    /* The row's strings are the caller's and are copied: reuse them at once. */
    char rid[32];
    enum { N = 600 }; /* more than two batches */
    for (int i = 0; i < N; i++) {
        snprintf(rid, sizeof(rid), "req-%04d", i);
        yr_usage_row_t r = usage_row(rid, i % 2 ? 7 : 0);
        if (i == 1) {
            r.latency_ms = -1;
            r.ttfb_ms = -1;
            r.upstream_model = YR_STR_NULL;
            r.created_ms = 0; /* now */
        }
        assert_int_equal(yr_store_usage_append(a.c, &r), 0);
        memset(rid, 'x', sizeof(rid) - 1);
    }
    yr_usage_row_t bad = usage_row("", 1);
    assert_int_equal(yr_store_usage_append(a.c, &bad), -EINVAL);
    yr_store_thread_flush(a.t);
    yr_store_stats_t st;
    yr_store_stats(a.t, &st);
    assert_int_equal(st.usage_written, N);
    assert_int_equal(st.usage_dropped, 1);
    assert_int_equal(st.usage_failed, 0);

    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage"), N);
    char text[256];
    raw_text(t.path,
             "SELECT request_id || '|' || key_id || '|' || model_id || '|' || provider || '|' ||"
             " upstream_model || '|' || status || '|' || outcome || '|' || prompt_tokens || '|' ||"
             " completion_tokens || '|' || cached_tokens || '|' || cache_write_tokens || '|' ||"
             " reasoning_tokens || '|' || latency_ms || '|' || ttfb_ms || '|' || created_ms"
             " FROM usage WHERE request_id = 'req-0003'",
             text, sizeof(text));
    assert_string_equal(text, "req-0003|7|fast-chat|anthropic|claude-3-5-haiku-latest|200|ok|"
                              "11|22|3|4|5|120|45|1764650000123");
    /* The master key (0), unknown times and empty strings are NULLs. */
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage WHERE request_id = 'req-0000'"
                                     " AND key_id IS NULL"),
                     1);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage WHERE request_id = 'req-0001'"
                                     " AND latency_ms IS NULL AND ttfb_ms IS NULL"
                                     " AND upstream_model IS NULL"),
                     1);
    assert_true(raw_int(t.path, "SELECT created_ms FROM usage WHERE request_id = 'req-0001'") >
                1764650000123);
    /* Appended in order, written in order. */
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage u JOIN usage v ON v.id = u.id + 1"
                                     " WHERE v.request_id < u.request_id"),
                     0);
    async_stop(&a);
    tmpdb_remove(&t);
}

/* Rows that trickle in (one every 250 µs, as at a few thousand requests per
 * second) share transactions: the first row of a batch waits
 * YR_USAGE_LINGER_MS for the others. Without the linger each row was its
 * own transaction (20 here); the bound allows the pacing to stretch 8-fold
 * on a loaded machine. The rows are not flushed: the linger alone writes
 * them. */
static void test_usage_rows_linger_into_batches(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a;
    tmpdb_make(&t);
    async_start(&a, t.url);
    enum { N = 20 };
    char rid[32];
    for (int i = 0; i < N; i++) {
        snprintf(rid, sizeof(rid), "linger-%02d", i);
        yr_usage_row_t r = usage_row(rid, 1);
        assert_int_equal(yr_store_usage_append(a.c, &r), 0);
        nanosleep(&(struct timespec){0, 250 * 1000}, NULL);
    }
    yr_store_stats_t st = {0};
    for (int i = 0; i < 1000 && st.usage_written < N; i++) {
        nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
        yr_store_stats(a.t, &st);
    }
    assert_int_equal(st.usage_written, N);
    assert_true(st.usage_batches >= 1);
    assert_true(st.usage_batches <= 4);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage WHERE request_id LIKE 'linger-%'"),
                     N);
    async_stop(&a);
    tmpdb_remove(&t);
}

/* The hourly rollups of a batch are summed per group before they are
 * written (sqlite.c): whatever the batch (several groups, two hours, more
 * rows than a batch holds, failed attempts, several writes into one group),
 * every rollup row equals the sums of the usage rows of its group. */
static void test_usage_rollups_of_batches(void **state)
{
    (void)state;
    tmpdb_t t;
    tmpdb_make(&t);
    yr_store_t *s = open_ok(t.url);
    static yr_usage_row_t rows[700];
    static char rids[700][24];
    const char *models[] = {"m-a", "m-b", "m-c"};
    int64_t hour = 1700000000000 / 3600000 * 3600000;
    for (int i = 0; i < 700; i++) {
        snprintf(rids[i], sizeof(rids[i]), "r%d", i / 2);
        yr_usage_row_t r = usage_row(rids[i], i % 4 == 0 ? 0 : 1 + i % 2);
        r.attempt = i % 2;
        r.model_id = yr_str(models[i % 3]);
        r.provider = i % 5 == 0 ? YR_STR("openai") : YR_STR("anthropic");
        r.created_ms = hour + (i % 7 == 0 ? 3600000 : 0) + i;
        r.prompt_tokens = i;
        r.cost_micros = i % 6 == 0 ? -1 : i * 3;
        r.latency_ms = i % 90;
        r.ttfb_ms = i % 11 == 0 ? -1 : i % 40;
        if (i % 3 == 1) {
            r.outcome = YR_STR("upstream_error");
            r.error_class = i % 2 ? YR_STR("rate_limited") : YR_STR("server_error");
        }
        rows[i] = r;
    }
    assert_int_equal(yr_store_usage_write(s, rows, 1), 0);
    assert_int_equal(yr_store_usage_write(s, rows + 1, 199), 0);
    assert_int_equal(yr_store_usage_write(s, rows + 200, 500), 0); /* more than a batch */
    yr_store_close(s);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage"), 700);
    assert_true(raw_int(t.path, "SELECT count(*) FROM usage_hourly") > 6);
#define GROUP_OF_H                                                                                  \
    " FROM usage u WHERE COALESCE(u.model_id, '') = h.model_id AND COALESCE(u.provider, '') ="    \
    " h.provider AND u.created_ms / 3600000 * 3600000 = h.hour_ms AND (CASE WHEN u.outcome ="     \
    " 'ok' THEN 'ok' ELSE COALESCE(u.error_class, u.outcome, 'unknown') END) = h.class"
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage_hourly h WHERE"
                                     " attempts != (SELECT count(*)" GROUP_OF_H ")"
                                     " OR requests != (SELECT SUM(u.attempt = 0)" GROUP_OF_H ")"
                                     " OR prompt_tokens != (SELECT SUM(u.prompt_tokens)" GROUP_OF_H ")"
                                     " OR cost_micros != (SELECT SUM(MAX(COALESCE(u.cost_micros, 0), 0))" GROUP_OF_H ")"
                                     " OR errors != (SELECT SUM(u.outcome != 'ok')" GROUP_OF_H ")"),
                     0);
    assert_int_equal(raw_int(t.path, "SELECT SUM(attempts) FROM usage_hourly"), 700);
#define GROUP_OF_K                                                                                  \
    " FROM usage u WHERE COALESCE(u.key_id, 0) = k.key_id AND u.created_ms / 3600000 * 3600000 =" \
    " k.hour_ms"
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage_key_hourly k WHERE"
                                     " attempts != (SELECT count(*)" GROUP_OF_K ")"
                                     " OR prompt_tokens != (SELECT SUM(u.prompt_tokens)" GROUP_OF_K ")"),
                     0);
    assert_int_equal(raw_int(t.path, "SELECT SUM(attempts) FROM usage_key_hourly"), 700);
    /* every successful attempt's latency, and its ttfb when it has one */
    assert_int_equal(raw_int(t.path, "SELECT SUM(count) FROM usage_latency_hourly WHERE which = 0"),
                     raw_int(t.path, "SELECT count(*) FROM usage WHERE outcome = 'ok'"));
    assert_int_equal(raw_int(t.path, "SELECT SUM(count) FROM usage_latency_hourly WHERE which = 1"),
                     raw_int(t.path, "SELECT count(*) FROM usage WHERE outcome = 'ok' AND ttfb_ms IS NOT NULL"));
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage_latency_hourly WHERE which = 0 AND"
                                     " hour_ms = 1699999200000 AND value = 5"),
                     1);
#undef GROUP_OF_H
#undef GROUP_OF_K
    tmpdb_remove(&t);
}

/* A full usage queue drops (and counts) rows instead of blocking the
 * caller, and a graceful stop writes every row that was queued. */
static void test_usage_queue_full_and_drain(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a;
    tmpdb_make(&t);
    async_start(&a, t.url);
    sqlite3 *lock = hold_write_lock(t.path);
    int queued = 0, dropped = 0;
    char rid[32];
    for (int i = 0; i < YR_USAGE_QUEUE_MAX + 2 * YR_USAGE_BATCH_MAX; i++) {
        snprintf(rid, sizeof(rid), "r%d", i);
        yr_usage_row_t r = usage_row(rid, 1);
        int rc = yr_store_usage_append(a.c, &r);
        if (rc == 0)
            queued++;
        else
            dropped++, assert_int_equal(rc, -EAGAIN);
    }
    assert_true(queued >= YR_USAGE_QUEUE_MAX);
    assert_true(dropped >= YR_USAGE_BATCH_MAX);
    yr_store_stats_t st;
    yr_store_stats(a.t, &st);
    assert_int_equal(st.usage_dropped, dropped);
    release_write_lock(lock);
    /* Stop right away: nothing queued may be lost. */
    async_stop(&a);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage"), queued);
    tmpdb_remove(&t);
}

/* A write that fails is tried again until the database works again: a
 * restart of the database loses no row. */
static void test_usage_write_failure_retried(void **state)
{
    (void)state;
    tmpdb_t t;
    async_t a;
    tmpdb_make(&t);
    async_start(&a, t.url);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE usage RENAME TO usage_away", NULL, NULL, NULL),
                     SQLITE_OK);
    yr_usage_row_t r = usage_row("kept-1", 1);
    assert_int_equal(yr_store_usage_append(a.c, &r), 0);
    yr_store_stats_t st;
    for (int i = 0; i < 500; i++) { /* the first write fails within a few ms */
        yr_store_stats(a.t, &st);
        if (st.usage_retries > 0)
            break;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    assert_true(st.usage_retries > 0);
    assert_int_equal(st.usage_written, 0);
    r = usage_row("kept-2", 1);
    assert_int_equal(yr_store_usage_append(a.c, &r), 0); /* queued behind it */
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE usage_away RENAME TO usage", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    yr_store_thread_flush(a.t);
    yr_store_stats(a.t, &st);
    assert_int_equal(st.usage_written, 2);
    assert_int_equal(st.usage_failed, 0);
    async_stop(&a);
    assert_int_equal(raw_int(t.path, "SELECT count(*) FROM usage WHERE request_id LIKE 'kept-%'"),
                     2);
    tmpdb_remove(&t);
}

/* The store thread fails to start on what yr_store_open refuses, with the
 * same message; after a client closed, submits are refused. */
static void test_thread_start_errors_and_closed_client(void **state)
{
    (void)state;
    yr_store_thread_t *t = NULL;
    char err[256] = "";
    assert_int_equal(yr_store_thread_start("postgres://u:secret@127.0.0.1:1/yr?connect_timeout=2",
                                           &t, err, sizeof(err)),
                     -ECONNREFUSED);
    assert_null(t);
    assert_non_null(strstr(err, "postgres: cannot connect"));
    assert_null(strstr(err, "secret"));
    yr_store_thread_stop(NULL);
    yr_store_client_close(NULL, NULL, NULL);

    async_t a;
    async_start(&a, "sqlite::memory:");
    yr_store_client_t *c = a.c;
    int closed = 0;
    yr_store_client_close(c, on_client_closed, &closed);
    unsigned char hash[YR_KEY_HASH_LEN] = {0};
    assert_int_equal(yr_store_lookup_async(c, hash, on_lookup, &a, NULL), -ESHUTDOWN);
    assert_int_equal(uv_run(&a.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&a.loop), 0);
    yr_store_thread_stop(a.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_memory),
        cmocka_unit_test(test_open_bad_urls),
        cmocka_unit_test(test_open_not_a_database),
        cmocka_unit_test(test_migrations_idempotent),
        cmocka_unit_test(test_wal_mode),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_content_log),
        cmocka_unit_test(test_key_format),
        cmocka_unit_test(test_key_hash),
        cmocka_unit_test(test_create_list_lookup_revoke),
        cmocka_unit_test(test_list_empty),
        cmocka_unit_test(test_duplicate_and_reuse),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_stored_hash_not_key),
        cmocka_unit_test(test_two_connections),
        cmocka_unit_test(test_multi_process),
        cmocka_unit_test(test_busy_writer_waits),
        cmocka_unit_test(test_cli_create_list_revoke),
        cmocka_unit_test(test_cli_usage),
        cmocka_unit_test(test_migrate_from_2),
        cmocka_unit_test(test_async_key_ops),
        cmocka_unit_test(test_async_cancel),
        cmocka_unit_test(test_async_callbacks_reenter),
        cmocka_unit_test(test_async_queue_full),
        cmocka_unit_test(test_usage_batch_read_back),
        cmocka_unit_test(test_usage_rows_linger_into_batches),
        cmocka_unit_test(test_usage_queue_full_and_drain),
        cmocka_unit_test(test_usage_write_failure_retried),
        cmocka_unit_test(test_usage_rollups_of_batches),
        cmocka_unit_test(test_thread_start_errors_and_closed_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
