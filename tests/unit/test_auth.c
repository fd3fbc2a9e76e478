/* Auth tests against a real store: every key lookup goes through the store
 * thread and comes back on a libuv loop, as in the gateway. Each store is a
 * temp file; the test's own synchronous connection to it creates and revokes
 * keys the way `yourouter keys` would next to a running server. Master key,
 * created keys, revocation seen once the cache TTL passed (time is driven
 * explicitly), Authorization header parsing, cancellation, store failures,
 * and gateway/authn.c (included below) on top. */
#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
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
#define WAIT_MS 10000            /* a completion that takes longer fails the test */

/* One database a test uses: its file, the test's synchronous connection, and
 * (once an auth is made on it) the store thread, a loop and a client. */
typedef struct {
    char path[64];
    char url[96];
    bool temp; /* path is ours to remove */
    yr_store_t *s;
    yr_store_thread_t *t;
    uv_loop_t loop;
    yr_store_client_t *c;
    yr_auth_t *a;
} fixture_t;

static fixture_t fixtures[4];

static void remove_db(const char *path)
{
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[96];
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

/* "sqlite::memory:" becomes a fresh temp file: the store thread and the
 * test's connection must see the same database. */
static yr_store_t *open_store(const char *url)
{
    fixture_t *f = NULL;
    for (size_t i = 0; i < 4 && f == NULL; i++)
        if (fixtures[i].s == NULL)
            f = &fixtures[i];
    assert_non_null(f);
    memset(f, 0, sizeof(*f));
    if (strcmp(url, "sqlite::memory:") == 0) {
        snprintf(f->path, sizeof(f->path), "/tmp/yr-auth-test-XXXXXX");
        int fd = mkstemp(f->path);
        assert_true(fd >= 0);
        close(fd);
        snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
        f->temp = true;
    } else {
        snprintf(f->url, sizeof(f->url), "%s", url);
    }
    char err[256] = "";
    int rc = yr_store_open(f->url, &f->s, err, sizeof(err));
    if (rc != 0)
        fail_msg("open %s: %d %s", f->url, rc, err);
    return f->s;
}

static fixture_t *fixture_of_store(const yr_store_t *s)
{
    for (size_t i = 0; i < 4; i++)
        if (fixtures[i].s == s && s != NULL)
            return &fixtures[i];
    return NULL;
}

static fixture_t *fixture_of_auth(const yr_auth_t *a)
{
    for (size_t i = 0; i < 4; i++)
        if (fixtures[i].a == a && a != NULL)
            return &fixtures[i];
    return NULL;
}

static yr_auth_t *auth_new(yr_store_t *s, const char *master)
{
    yr_auth_t *a = NULL;
    fixture_t *f = fixture_of_store(s);
    yr_store_client_t *c = NULL;
    if (f != NULL) {
        char err[256] = "";
        if (yr_store_thread_start(f->url, &f->t, err, sizeof(err)) != 0)
            fail_msg("store thread: %s", err);
        assert_int_equal(uv_loop_init(&f->loop), 0);
        assert_int_equal(yr_store_client_init(&f->loop, f->t, &f->c), 0);
        c = f->c;
    }
    assert_int_equal(yr_auth_init(c, master, &a), 0);
    assert_non_null(a);
    if (f != NULL)
        f->a = a;
    return a;
}

/* Frees the auth, and the client, loop and store thread behind it. */
static void auth_done(yr_auth_t *a)
{
    fixture_t *f = fixture_of_auth(a);
    yr_auth_free(a);
    if (f == NULL)
        return;
    f->a = NULL;
    yr_store_client_close(f->c, NULL, NULL);
    f->c = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    yr_store_thread_stop(f->t);
    f->t = NULL;
}

static void store_done(yr_store_t *s)
{
    fixture_t *f = fixture_of_store(s);
    assert_non_null(f);
    assert_null(f->a); /* auth_done first */
    yr_store_close(s);
    if (f->temp)
        remove_db(f->path);
    memset(f, 0, sizeof(*f));
}

typedef struct {
    int calls;
    int status;
} answer_t;

static void on_answer(yr_auth_req_t *req, int status)
{
    answer_t *ans = req->data;
    ans->calls++;
    ans->status = status;
}

static void on_wait_timeout(uv_timer_t *t)
{
    (void)t;
    fail_msg("no store completion within %d ms", WAIT_MS);
}

/* Runs loop until *calls is nonzero, for at most WAIT_MS. */
static void run_until(uv_loop_t *loop, const int *calls)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_wait_timeout, WAIT_MS, 0);
    while (*calls == 0)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* The whole check, waiting for the store when it has to: 0, -EACCES or a
 * store error, as the synchronous check used to answer. *was_async says
 * whether it went to the store (may be NULL). */
static int check_slice_async(yr_auth_t *a, yr_str_t token, uint64_t now, yr_identity_t *id,
                             bool *was_async)
{
    yr_auth_req_t req;
    answer_t ans = {0, 1};
    memset(&req, 0, sizeof(req));
    req.data = &ans;
    int rc = yr_auth_check(a, &req, token, now, on_answer);
    if (was_async != NULL)
        *was_async = rc == -EINPROGRESS;
    if (rc == -EINPROGRESS) {
        fixture_t *f = fixture_of_auth(a);
        assert_non_null(f);
        assert_true(yr_auth_pending(&req));
        run_until(&f->loop, &ans.calls);
        assert_int_equal(ans.calls, 1);
        assert_false(yr_auth_pending(&req));
        rc = ans.status;
    } else {
        assert_int_equal(ans.calls, 0); /* answered now: never also called back */
    }
    if (rc == 0)
        *id = req.identity;
    return rc;
}

static int check_slice(yr_auth_t *a, yr_str_t token, uint64_t now, yr_identity_t *id)
{
    return check_slice_async(a, token, now, id, NULL);
}

static int check(yr_auth_t *a, const char *token, uint64_t now, yr_identity_t *id)
{
    memset(id, 0x5a, sizeof(*id));
    return check_slice(a, yr_str(token), now, id);
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
    auth_done(a);
    store_done(s);
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
    auth_done(a);

    /* No master key and no store: nothing works, not even an empty token. */
    a = auth_new(NULL, NULL);
    assert_int_equal(check(a, "", T0, &id), -EACCES);
    assert_int_equal(check(a, "x", T0, &id), -EACCES);
    auth_done(a);
    /* An empty master key is no master key. */
    a = auth_new(NULL, "");
    assert_int_equal(check(a, "", T0, &id), -EACCES);
    auth_done(a);
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
    auth_done(a);
    store_done(s);
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
    auth_done(a);
    store_done(s);
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
    auth_done(a);
    store_done(s);
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
    auth_done(a);
    store_done(cli);
    store_done(worker);
    remove_db(path);
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
    auth_done(a);
    store_done(s);
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
    assert_int_equal(check_slice(a, yr_auth_bearer(yr_str(header)), T0, &id), 0);
    assert_false(id.master);
    assert_int_equal(check_slice(a, yr_auth_bearer(YR_STR("Bearer m-key ")), T0, &id), 0);
    assert_true(id.master);
    assert_int_equal(check_slice(a, yr_auth_bearer(YR_STR("Bearer ")), T0, &id), -EACCES);
    auth_done(a);
    store_done(s);
}

/* ---- asynchronous lookups --------------------------------------------------- */

/* The first check of a key goes to the store thread and answers on the loop;
 * within the TTL the next one is answered in the call. */
static void test_async_then_cached(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, "m");
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create(s, "async", key, &info), 0);
    yr_identity_t id;
    bool was_async = false;
    assert_int_equal(check_slice_async(a, yr_str(key), T0, &id, &was_async), 0);
    assert_true(was_async);
    assert_int_equal(id.key_id, info.id);
    assert_int_equal(check_slice_async(a, yr_str(key), T0 + 1, &id, &was_async), 0);
    assert_false(was_async);
    assert_int_equal(id.key_id, info.id);
    /* Unknown: one lookup, then the cached refusal. */
    assert_int_equal(check_slice_async(a, YR_STR("yr-nope"), T0, &id, &was_async), -EACCES);
    assert_true(was_async);
    assert_int_equal(check_slice_async(a, YR_STR("yr-nope"), T0 + 1, &id, &was_async), -EACCES);
    assert_false(was_async);
    /* The master key never waits. */
    assert_int_equal(check_slice_async(a, YR_STR("m"), T0, &id, &was_async), 0);
    assert_false(was_async);
    /* Past the TTL the key goes back to the store. */
    assert_int_equal(check_slice_async(a, yr_str(key), T0 + TTL_NS + 1, &id, &was_async), 0);
    assert_true(was_async);
    auth_done(a);
    store_done(s);
}

/* Cancelled lookups never call back, and the request memory may go at once
 * (heap here, so ASan sees any late write into it). */
static void test_cancel_before_completion(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    yr_auth_t *a = auth_new(s, NULL);
    fixture_t *f = fixture_of_auth(a);
    char key[YR_KEY_MAX_LEN], other[YR_KEY_MAX_LEN];
    assert_int_equal(yr_store_key_create(s, "gone", key, NULL), 0);
    assert_int_equal(yr_store_key_create(s, "stays", other, NULL), 0);
    answer_t cancelled = {0, 1};
    enum { N = 32 };
    for (int i = 0; i < N; i++) {
        yr_auth_req_t *req = calloc(1, sizeof(*req));
        assert_non_null(req);
        req->data = &cancelled;
        assert_int_equal(yr_auth_check(a, req, yr_str(key), T0, on_answer), -EINPROGRESS);
        assert_true(yr_auth_pending(req));
        yr_auth_cancel(req);
        assert_false(yr_auth_pending(req));
        yr_auth_cancel(req); /* twice is harmless */
        free(req);
    }
    /* The store answers in order: once this one is back, so are those. */
    yr_identity_t id;
    assert_int_equal(check(a, other, T0, &id), 0);
    assert_int_equal(cancelled.calls, 0);
    /* A cancelled lookup filled no cache entry: the key is looked up again. */
    bool was_async = false;
    assert_int_equal(check_slice_async(a, yr_str(key), T0 + 1, &id, &was_async), 0);
    assert_true(was_async);
    /* Cancel, then close at once: the client waits for the op to come back,
     * and nothing leaks. */
    yr_auth_req_t last = {.data = &cancelled};
    assert_int_equal(yr_auth_check(a, &last, yr_str(other), T0 + TTL_NS * 4, on_answer),
                     -EINPROGRESS);
    yr_auth_cancel(&last);
    assert_non_null(f);
    auth_done(a);
    assert_int_equal(cancelled.calls, 0);
    store_done(s);
}

/* Requests for one key that miss the cache together share one store lookup;
 * a waiter that leaves does not take the answer from the others. */
static void test_concurrent_misses_share_a_lookup(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    fixture_t *f = fixture_of_store(s);
    yr_auth_t *a = auth_new(s, NULL);
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create(s, "shared", key, &info), 0);
    yr_store_stats_t before, after;
    yr_store_stats(f->t, &before);
    enum { N = 8 };
    yr_auth_req_t reqs[N];
    answer_t ans[N];
    for (int i = 0; i < N; i++) {
        memset(&reqs[i], 0, sizeof(reqs[i]));
        ans[i] = (answer_t){0, 1};
        reqs[i].data = &ans[i];
        assert_int_equal(yr_auth_check(a, &reqs[i], yr_str(key), T0, on_answer), -EINPROGRESS);
    }
    yr_auth_cancel(&reqs[0]); /* the first, the middle and the last leave */
    yr_auth_cancel(&reqs[3]);
    yr_auth_cancel(&reqs[N - 1]);
    run_until(&f->loop, &ans[1].calls);
    for (int i = 0; i < N; i++) {
        bool left = i == 0 || i == 3 || i == N - 1;
        assert_int_equal(ans[i].calls, left ? 0 : 1);
        if (!left) {
            assert_int_equal(ans[i].status, 0);
            assert_int_equal(reqs[i].identity.key_id, info.id);
        }
    }
    yr_store_stats(f->t, &after);
    assert_int_equal(after.ops_done - before.ops_done, 1);

    /* All of them leave: the lookup itself is cancelled and nothing leaks. */
    for (int i = 0; i < N; i++) {
        ans[i] = (answer_t){0, 1};
        assert_int_equal(yr_auth_check(a, &reqs[i], YR_STR("yr-nobody"), T0, on_answer),
                         -EINPROGRESS);
    }
    for (int i = N - 1; i >= 0; i--)
        yr_auth_cancel(&reqs[i]);
    /* A lookup pending when the auth is freed (a caller's bug) is dropped
     * without calling back or leaking. */
    yr_auth_req_t late = {.data = &ans[0]};
    assert_int_equal(yr_auth_check(a, &late, YR_STR("yr-late"), T0, on_answer), -EINPROGRESS);
    auth_done(a);
    for (int i = 0; i < N; i++)
        assert_int_equal(ans[i].calls, 0);
    store_done(s);
}

/* A broken store is a store error (the gateway's 503), never -EACCES (401),
 * and it is not cached: the key works again once the store does. */
static void test_store_failure_is_not_401(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    fixture_t *f = fixture_of_store(s);
    yr_auth_t *a = auth_new(s, NULL);
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create(s, "fragile", key, &info), 0);
    /* Move the table away behind the store thread's back. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "ALTER TABLE api_keys RENAME TO api_keys_away", NULL, NULL, NULL),
        SQLITE_OK);
    yr_identity_t id;
    int rc = check(a, key, T0, &id);
    assert_true(rc < 0);
    assert_int_not_equal(rc, -EACCES);
    assert_int_not_equal(rc, -EINPROGRESS);
    assert_int_equal(
        sqlite3_exec(db, "ALTER TABLE api_keys_away RENAME TO api_keys", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(check(a, key, T0 + 1, &id), 0);
    assert_int_equal(id.key_id, info.id);
    /* A lookup that cannot even be queued (the client is closing) is a
     * store error too, answered in the call. */
    yr_store_client_close(f->c, NULL, NULL);
    yr_auth_req_t req = {0};
    assert_int_equal(yr_auth_check(a, &req, YR_STR("yr-other"), T0, on_answer), -ESHUTDOWN);
    f->c = NULL;
    auth_done(a);
    store_done(s);
}

/* ---- gateway/authn.c ----------------------------------------------------------- */

/* authn.c is compiled into this test, with the error sender replaced by a
 * recorder (respond.c is then never linked in). */
#include "gateway/authn.c"

static struct {
    int count;
    yr_err_t err;
} sent;

void yr_gw_send_error(yr_gw_req_t *g, yr_err_t e, const char *message, const char *param,
                      const char *code, yr_str_t retry_after)
{
    (void)g, (void)message, (void)param, (void)code, (void)retry_after;
    sent.count++;
    sent.err = e;
}

static int nexts;
static int64_t next_key_id;

static void on_next(yr_gw_req_t *g)
{
    nexts++;
    next_key_id = g->identity.key_id;
}

typedef struct {
    yr_worker_t w;
    yr_http_req_t http;
    yr_http_header_t hdr;
    char value[128];
    yr_gw_req_t g;
} fake_req_t;

static fake_req_t *fake_req(yr_auth_t *a, const char *key)
{
    fake_req_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->w.auth = a;
    r->http.pool = yr_pool_create(4096);
    assert_non_null(r->http.pool);
    snprintf(r->value, sizeof(r->value), "Bearer %s", key);
    r->hdr = (yr_http_header_t){YR_STR("Authorization"), yr_str(r->value)};
    r->http.headers = &r->hdr;
    r->http.nheaders = 1;
    r->g.http = &r->http;
    r->g.w = &r->w;
    return r;
}

static void fake_req_free(fake_req_t *r)
{
    yr_pool_destroy(r->http.pool);
    free(r);
}

static void test_authn_continuation_and_errors(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    fixture_t *f = fixture_of_store(s);
    yr_auth_t *a = auth_new(s, NULL);
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    assert_int_equal(yr_store_key_create(s, "gw", key, &info), 0);
    memset(&sent, 0, sizeof(sent));
    nexts = 0;

    /* A valid key: nothing happens until the store answered. */
    fake_req_t *r = fake_req(a, key);
    yr_gw_authenticate(&r->g, on_next);
    assert_int_equal(nexts, 0);
    run_until(&f->loop, &nexts);
    assert_int_equal(nexts, 1);
    assert_int_equal(next_key_id, info.id);
    assert_int_equal(r->g.identity.key_id, info.id);
    assert_int_equal(sent.count, 0);
    fake_req_free(r); /* the pool cleanup after completion is a no-op */

    /* An unknown key: the 401, and no continuation. */
    r = fake_req(a, "yr-unknown-key");
    yr_gw_authenticate(&r->g, on_next);
    run_until(&f->loop, &sent.count);
    assert_int_equal(sent.count, 1);
    assert_int_equal(sent.err, YR_E_UNAUTHORIZED);
    assert_int_equal(nexts, 1);
    fake_req_free(r);

    /* The store fails: a 503, never a 401. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "ALTER TABLE api_keys RENAME TO api_keys_away", NULL, NULL, NULL),
        SQLITE_OK);
    memset(&sent, 0, sizeof(sent));
    r = fake_req(a, "yr-another-unknown-key");
    yr_gw_authenticate(&r->g, on_next);
    run_until(&f->loop, &sent.count);
    assert_int_equal(sent.count, 1);
    assert_int_equal(sent.err, YR_E_STORE_UNAVAILABLE);
    assert_int_equal(yr_err_info(sent.err)->status, 503);
    assert_string_equal(yr_err_info(sent.err)->code, "store_unavailable");
    assert_int_equal(nexts, 1);
    fake_req_free(r);
    assert_int_equal(
        sqlite3_exec(db, "ALTER TABLE api_keys_away RENAME TO api_keys", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    auth_done(a);
    store_done(s);
}

/* The client goes away while its lookup is pending: the request pool's
 * cleanup cancels it, and neither the continuation nor an error runs. */
static void test_authn_client_gone_while_pending(void **state)
{
    (void)state;
    yr_store_t *s = open_store("sqlite::memory:");
    fixture_t *f = fixture_of_store(s);
    yr_auth_t *a = auth_new(s, NULL);
    char key[YR_KEY_MAX_LEN];
    assert_int_equal(yr_store_key_create(s, "leaver", key, NULL), 0);
    memset(&sent, 0, sizeof(sent));
    nexts = 0;
    fake_req_t *r = fake_req(a, key);
    yr_gw_authenticate(&r->g, on_next);
    assert_int_equal(nexts, 0);
    fake_req_free(r); /* what the server does on a disconnect */
    /* A later lookup through the same store is answered after the cancelled
     * one came back. */
    r = fake_req(a, "yr-after");
    yr_gw_authenticate(&r->g, on_next);
    run_until(&f->loop, &sent.count);
    assert_int_equal(sent.err, YR_E_UNAUTHORIZED);
    assert_int_equal(sent.count, 1);
    assert_int_equal(nexts, 0);
    fake_req_free(r);
    /* And one pending when the worker shuts down. */
    r = fake_req(a, key);
    yr_gw_authenticate(&r->g, on_next);
    fake_req_free(r);
    auth_done(a);
    assert_int_equal(nexts, 0);
    assert_int_equal(sent.count, 1);
    store_done(s);
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
        cmocka_unit_test(test_async_then_cached),
        cmocka_unit_test(test_cancel_before_completion),
        cmocka_unit_test(test_concurrent_misses_share_a_lookup),
        cmocka_unit_test(test_store_failure_is_not_401),
        cmocka_unit_test(test_authn_continuation_and_errors),
        cmocka_unit_test(test_authn_client_gone_while_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
