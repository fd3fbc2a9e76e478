/* Auth tests against a real store (SQLite in memory, and a temp file shared
 * with a second connection the way `yourouter keys revoke` would be): master
 * key, created keys, revocation seen once the cache TTL passed (time is
 * driven explicitly), and Authorization header parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "store/store.h"

#define MS (1000000ull)
#define TTL_NS ((uint64_t)YR_AUTH_TTL_MS * MS)
#define T0 (1000ull * 1000 * MS) /* an arbitrary monotonic start: 1000 s */

static yr_store_t *open_store(const char *url)
{
    yr_store_t *s = NULL;
    char err[256] = "";
    int rc = yr_store_open(url, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("open %s: %d %s", url, rc, err);
    return s;
}

static yr_auth_t *auth_new(yr_store_t *s, const char *master)
{
    yr_auth_t *a = NULL;
    assert_int_equal(yr_auth_init(s, master, &a), 0);
    assert_non_null(a);
    return a;
}

static int check(yr_auth_t *a, const char *token, uint64_t now, yr_identity_t *id)
{
    memset(id, 0x5a, sizeof(*id));
    return yr_auth_check(a, yr_str(token), now, id);
}

static void test_master_key(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, "yr-master-secret");
    yr_identity_t id;
    assert_int_equal(check(a, "yr-master-secret", T0, &id), 0);
    assert_true(id.master);
    assert_int_equal(id.key_id, 0);
    assert_int_equal(check(a, "yr-master-secreT", T0, &id), -EACCES);
    assert_int_equal(check(a, "yr-master-secret ", T0, &id), -EACCES);
    assert_int_equal(check(a, "yr-master-secre", T0, &id), -EACCES);
    assert_int_equal(check(a, "", T0, &id), -EACCES);
    /* The master key keeps working at any time: it is not cached. */
    assert_int_equal(check(a, "yr-master-secret", T0 + 10 * TTL_NS, &id), 0);
    assert_true(id.master);
    yr_auth_free(a);
    yr_store_close(s);
}

/* A reload replaces the master key: the new one works at once, the old one
 * stops, and a key too long for a token is refused with the old one kept. */
static void test_master_key_replaced(void **state)
{
    (void)state;
    yr_auth_t *a = auth_new(NULL, "yr-master-old");
    yr_identity_t id;
    assert_int_equal(yr_auth_set_master_key(a, "yr-master-new"), 0);
    assert_int_equal(check(a, "yr-master-new", T0, &id), 0);
    assert_true(id.master);
    assert_int_equal(check(a, "yr-master-old", T0, &id), -EACCES);
    char long_key[600];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(yr_auth_set_master_key(a, long_key), -EINVAL);
    assert_int_equal(check(a, "yr-master-new", T0, &id), 0);
    assert_int_equal(yr_auth_set_master_key(a, NULL), 0);
    assert_int_equal(check(a, "yr-master-new", T0, &id), -EACCES);
    yr_auth_free(a);
}

static void test_no_store_only_master(void **state)
{
    (void)state;
    yr_auth_t *a = auth_new(NULL, "m");
    yr_identity_t id;
    assert_int_equal(check(a, "m", T0, &id), 0);
    assert_true(id.master);
    assert_int_equal(check(a, "yr-anything", T0, &id), -EACCES);
    yr_auth_free(a);

    /* No master key and no store: nothing works, not even an empty token. */
    a = auth_new(NULL, NULL);
    assert_int_equal(check(a, "", T0, &id), -EACCES);
    assert_int_equal(check(a, "x", T0, &id), -EACCES);
    yr_auth_free(a);
    /* An empty master key is no master key. */
    a = auth_new(NULL, "");
    assert_int_equal(check(a, "", T0, &id), -EACCES);
    yr_auth_free(a);
}

static void test_created_key_and_unknown(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, "master");
    char k1[YR_KEY_MAX_LEN], k2[YR_KEY_MAX_LEN];
    yr_key_info_t i1, i2;
    assert_int_equal(yr_store_key_create(s, "alice", k1, &i1), 0);
    assert_int_equal(yr_store_key_create(s, "bob", k2, &i2), 0);
    assert_true(i1.id != i2.id);
    yr_identity_t id;
    assert_int_equal(check(a, k1, T0, &id), 0);
    assert_false(id.master);
    assert_int_equal(id.key_id, i1.id);
    assert_int_equal(check(a, k2, T0, &id), 0);
    assert_int_equal(id.key_id, i2.id);
    /* Cached answers give the same identity. */
    assert_int_equal(check(a, k1, T0 + 1, &id), 0);
    assert_int_equal(id.key_id, i1.id);
    /* A key with one character changed, and a truncated one. */
    char bad[YR_KEY_MAX_LEN];
    memcpy(bad, k1, sizeof(bad));
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    assert_int_equal(check(a, bad, T0, &id), -EACCES);
    bad[10] = k1[10];
    bad[YR_KEY_LEN - 1] = '\0';
    assert_int_equal(check(a, bad, T0, &id), -EACCES);
    /* Twice: the negative answer is cached and stays negative. */
    assert_int_equal(check(a, "yr-not-a-key", T0, &id), -EACCES);
    assert_int_equal(check(a, "yr-not-a-key", T0 + 1, &id), -EACCES);
    /* Over-long tokens are refused before hashing. */
    char longtok[600];
    memset(longtok, 'a', sizeof(longtok) - 1);
    longtok[sizeof(longtok) - 1] = '\0';
    assert_int_equal(check(a, longtok, T0, &id), -EACCES);
    yr_auth_free(a);
    yr_store_close(s);
}

static void test_revoked_after_ttl(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, NULL);
    char key[YR_KEY_MAX_LEN], other[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create(s, "svc", key, &info), 0);
    assert_int_equal(yr_store_key_create(s, "keeper", other, NULL), 0);
    yr_identity_t id;
    assert_int_equal(check(a, key, T0, &id), 0);
    assert_int_equal(id.key_id, info.id);
    assert_int_equal(check(a, other, T0, &id), 0);

    assert_int_equal(yr_store_key_revoke(s, "svc"), 0);
    /* Within the TTL the cached answer may still be used: not asserted. */
    (void)check(a, key, T0 + TTL_NS / 2, &id);
    /* Past the TTL of the first lookup the key is refused... */
    assert_int_equal(check(a, key, T0 + TTL_NS + 1 * MS, &id), -EACCES);
    /* ...and stays refused, cached or not. */
    assert_int_equal(check(a, key, T0 + TTL_NS + 2 * MS, &id), -EACCES);
    assert_int_equal(check(a, key, T0 + 5 * TTL_NS, &id), -EACCES);
    /* Another key is untouched. */
    assert_int_equal(check(a, other, T0 + 5 * TTL_NS, &id), 0);
    yr_auth_free(a);
    yr_store_close(s);
}

/* A key is re-checked at most TTL after it was last looked up, even when it
 * is used continuously (a hot key does not stay cached forever). */
static void test_revoked_while_in_constant_use(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, NULL);
    char key[YR_KEY_MAX_LEN];
    assert_int_equal(yr_store_key_create(s, "hot", key, NULL), 0);
    yr_identity_t id;
    uint64_t t = T0;
    for (int i = 0; i < 100; i++, t += 10 * MS)
        assert_int_equal(check(a, key, t, &id), 0);
    uint64_t revoked_at = t;
    assert_int_equal(yr_store_key_revoke(s, "hot"), 0);
    int rc = 0;
    for (; t <= revoked_at + TTL_NS + 1 * MS; t += 10 * MS) {
        rc = check(a, key, t, &id);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, -EACCES);
    assert_true(t <= revoked_at + TTL_NS + 1 * MS);
    yr_auth_free(a);
    yr_store_close(s);
}

/* The revocation comes through another connection to the same database file,
 * as when an operator runs `yourouter keys revoke` next to a running server. */
static void test_revoked_via_other_connection(void **state)
{
    (void)state;
    char path[] = "/tmp/yr-auth-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char url[128];
    snprintf(url, sizeof(url), "sqlite://%s", path);
    yr_store_t *worker = open_store(url);
    yr_store_t *cli = open_store(url);
    yr_auth_t *a = auth_new(worker, "m");
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create(cli, "team-a", key, &info), 0);
    yr_identity_t id;
    assert_int_equal(check(a, key, T0, &id), 0);
    assert_int_equal(id.key_id, info.id);
    char idstr[32];
    snprintf(idstr, sizeof(idstr), "%lld", (long long)info.id);
    assert_int_equal(yr_store_key_revoke(cli, idstr), 0);
    assert_int_equal(check(a, key, T0 + TTL_NS + 1 * MS, &id), -EACCES);
    /* A key created through the other connection is seen by the worker. */
    char key2[YR_KEY_MAX_LEN];
    assert_int_equal(yr_store_key_create(cli, "team-b", key2, NULL), 0);
    assert_int_equal(check(a, key2, T0 + TTL_NS + 2 * MS, &id), 0);
    yr_auth_free(a);
    yr_store_close(cli);
    yr_store_close(worker);
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

static void test_many_keys(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, NULL);
    enum { N = 64 };
    static char keys[N][YR_KEY_MAX_LEN];
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        yr_key_info_t info;
        assert_int_equal(yr_store_key_create(s, name, keys[i], &info), 0);
        ids[i] = info.id;
        assert_int_equal(strlen(keys[i]), YR_KEY_LEN);
        assert_memory_equal(keys[i], YR_KEY_PREFIX, 3);
    }
    yr_identity_t id;
    for (int i = 0; i < N; i++) {
        assert_int_equal(check(a, keys[i], T0, &id), 0);
        assert_int_equal(id.key_id, ids[i]);
    }
    for (int i = 0; i < N; i += 2) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(yr_store_key_revoke(s, name), 0);
    }
    for (int i = 0; i < N; i++) {
        int rc = check(a, keys[i], T0 + TTL_NS + 1 * MS, &id);
        if (i % 2 == 0) {
            assert_int_equal(rc, -EACCES);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(id.key_id, ids[i]);
        }
    }
    yr_auth_free(a);
    yr_store_close(s);
}

/* ---- Authorization header -------------------------------------------------- */

static void bearer_is(const char *header, const char *token)
{
    yr_str_t t = yr_auth_bearer(yr_str(header));
    if (token == NULL) {
        if (t.ptr != NULL || t.len != 0)
            fail_msg("'%s': got '%.*s', want none", header, (int)t.len, t.ptr);
        return;
    }
    if (t.len != strlen(token) || memcmp(t.ptr, token, t.len) != 0)
        fail_msg("'%s': got '%.*s', want '%s'", header, (int)t.len, t.ptr ? t.ptr : "", token);
}

static void test_bearer_parsing(void **state)
{
    (void)state;
    bearer_is("Bearer abc", "abc");
    bearer_is("bearer abc", "abc");
    bearer_is("BEARER abc", "abc");
    bearer_is("BeArEr yr-xyz_123", "yr-xyz_123");
    bearer_is("Bearer    abc   ", "abc");
    bearer_is("Bearer \tabc\t", "abc");
    bearer_is("Bearer a b", "a b");
    bearer_is("Bearer ", NULL);
    bearer_is("Bearer      ", NULL);
    bearer_is("Bearer", NULL);
    bearer_is("", NULL);
    bearer_is("abc", NULL);
    bearer_is("Basic dXNlcjpwYXNz", NULL);
    bearer_is("Bearerabc", NULL);
    bearer_is(" Bearer abc", NULL);
    bearer_is("Token abc", NULL);
    assert_null(yr_auth_bearer(YR_STR_NULL).ptr);

    char h[7 + 600 + 1];
    memcpy(h, "Bearer ", 7);
    memset(h + 7, 't', 512);
    h[7 + 512] = '\0';
    yr_str_t t = yr_auth_bearer(yr_str(h));
    assert_int_equal(t.len, 512);
    assert_ptr_equal(t.ptr, h + 7);
    memset(h + 7, 't', 513);
    h[7 + 513] = '\0';
    bearer_is(h, NULL);
    /* Trailing spaces do not count towards the limit. */
    memset(h + 7, 't', 512);
    memset(h + 7 + 512, ' ', 50);
    h[7 + 562] = '\0';
    t = yr_auth_bearer(yr_str(h));
    assert_int_equal(t.len, 512);
}

static void test_bearer_then_check(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, "m-key");
    char key[YR_KEY_MAX_LEN];
    assert_int_equal(yr_store_key_create(s, "x", key, NULL), 0);
    char header[128];
    snprintf(header, sizeof(header), "bearer   %s  ", key);
    yr_identity_t id;
    /* The slice is not NUL-terminated where the token ends. */
    assert_int_equal(yr_auth_check(a, yr_auth_bearer(yr_str(header)), T0, &id), 0);
    assert_false(id.master);
    assert_int_equal(yr_auth_check(a, yr_auth_bearer(YR_STR("Bearer m-key ")), T0, &id), 0);
    assert_true(id.master);
    assert_int_equal(yr_auth_check(a, yr_auth_bearer(YR_STR("Bearer ")), T0, &id), -EACCES);
    yr_auth_free(a);
    yr_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_key),
        cmocka_unit_test(test_master_key_replaced),
        cmocka_unit_test(test_no_store_only_master),
        cmocka_unit_test(test_created_key_and_unknown),
        cmocka_unit_test(test_revoked_after_ttl),
        cmocka_unit_test(test_revoked_while_in_constant_use),
        cmocka_unit_test(test_revoked_via_other_connection),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_bearer_parsing),
        cmocka_unit_test(test_bearer_then_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
