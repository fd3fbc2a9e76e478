/* Core tests: the request pool (alignment, big allocations, cleanups LIFO
 * before the memory goes) and the one buffer type (hard caps, growth, JSON
 * string escaping, consume/steal) plus the slice helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/pool.h"

/* ---- pool ------------------------------------------------------------------ */

static void test_pool_alignment_and_used(void **state)
{
    (void)state;
    yr_pool_t *p = yr_pool_create(512);
    assert_non_null(p);
    assert_int_equal(yr_pool_used(p), 0);
    size_t sizes[] = {1, 3, 16, 17, 0, 100, 255};
    size_t expect = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *q = yr_palloc(p, sizes[i]);
        assert_non_null(q);
        assert_int_equal((uintptr_t)q % 16, 0);
        memset(q, 0xab, sizes[i]); /* ASan catches an undersized block */
        size_t rounded = sizes[i] == 0 ? 16 : (sizes[i] + 15) / 16 * 16;
        expect += rounded;
        assert_int_equal(yr_pool_used(p), expect);
    }
    yr_pool_destroy(p);
}

static void test_pool_many_blocks_distinct(void **state)
{
    (void)state;
    yr_pool_t *p = yr_pool_create(256);
    assert_non_null(p);
    enum { N = 500 };
    unsigned char *ptrs[N];
    for (size_t i = 0; i < N; i++) {
        ptrs[i] = yr_palloc(p, 40);
        assert_non_null(ptrs[i]);
        memset(ptrs[i], (int)(i & 0xff), 40);
    }
    /* Nothing was handed out twice: every allocation kept its pattern. */
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < 40; j++)
            assert_int_equal(ptrs[i][j], i & 0xff);
    yr_pool_destroy(p);
}

static void test_pool_big_allocation_keeps_tail(void **state)
{
    (void)state;
    yr_pool_t *p = yr_pool_create(1024);
    assert_non_null(p);
    char *a = yr_palloc(p, 32);
    assert_non_null(a);
    /* Larger than a quarter block: gets its own block. */
    char *big = yr_palloc(p, 100000);
    assert_non_null(big);
    memset(big, 'x', 100000);
    /* The small block's free tail is still used for the next small one. */
    char *b = yr_palloc(p, 32);
    assert_non_null(b);
    assert_ptr_equal(b, a + 32);
    assert_int_equal(yr_pool_used(p), 32 + 100000 + 32);
    /* A first allocation bigger than a block works too. */
    yr_pool_t *p2 = yr_pool_create(256);
    char *c = yr_palloc(p2, 5000);
    assert_non_null(c);
    memset(c, 'y', 5000);
    yr_pool_destroy(p2);
    yr_pool_destroy(p);
}

static void test_pool_overflow_sizes(void **state)
{
    (void)state;
    yr_pool_t *p = yr_pool_create(256);
    assert_non_null(p);
    assert_null(yr_palloc(p, SIZE_MAX));
    assert_null(yr_palloc(p, SIZE_MAX - 8));
    assert_null(yr_pcalloc(p, SIZE_MAX));
    assert_null(yr_pstrndup(p, "x", SIZE_MAX));
    assert_int_equal(yr_pool_used(p), 0);
    yr_pool_destroy(p);
}

static void test_pool_calloc_and_strndup(void **state)
{
    (void)state;
    yr_pool_t *p = yr_pool_create(256);
    /* Dirty the block first so pcalloc really has to zero. */
    unsigned char *d = yr_palloc(p, 64);
    memset(d, 0xff, 64);
    unsigned char *z = yr_pcalloc(p, 64);
    assert_non_null(z);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    const char src[] = {'a', 'b', 'c', 'd'};
    char *s = yr_pstrndup(p, src, 3);
    assert_string_equal(s, "abc");
    char *e = yr_pstrndup(p, NULL, 0);
    assert_non_null(e);
    assert_string_equal(e, "");
    yr_pool_destroy(p);
    yr_pool_destroy(NULL); /* no-op */
}

typedef struct {
    int order[8];
    int n;
    const char *pool_str; /* pool memory read by a cleanup */
    char seen[16];
} cleanup_log_t;

static cleanup_log_t cleanup_log;

static void on_cleanup_1(void *data)
{
    cleanup_log.order[cleanup_log.n++] = 1;
    (void)data;
}

static void on_cleanup_2(void *data)
{
    cleanup_log.order[cleanup_log.n++] = 2;
    /* Cleanups run before the blocks are freed: pool memory is readable. */
    snprintf(cleanup_log.seen, sizeof(cleanup_log.seen), "%s", (const char *)data);
}

static void on_cleanup_3(void *data)
{
    cleanup_log.order[cleanup_log.n++] = *(int *)data;
}

static void test_pool_cleanups_lifo(void **state)
{
    (void)state;
    memset(&cleanup_log, 0, sizeof(cleanup_log));
    yr_pool_t *p = yr_pool_create(256);
    char *str = yr_pstrndup(p, "still-here", 10);
    int *three = yr_palloc(p, sizeof(int));
    *three = 3;
    assert_int_equal(yr_pool_cleanup_add(p, on_cleanup_1, NULL), 0);
    assert_int_equal(yr_pool_cleanup_add(p, on_cleanup_2, str), 0);
    assert_int_equal(yr_pool_cleanup_add(p, on_cleanup_3, three), 0);
    assert_int_equal(cleanup_log.n, 0);
    yr_pool_destroy(p);
    assert_int_equal(cleanup_log.n, 3);
    assert_int_equal(cleanup_log.order[0], 3);
    assert_int_equal(cleanup_log.order[1], 2);
    assert_int_equal(cleanup_log.order[2], 1);
    assert_string_equal(cleanup_log.seen, "still-here");
}

/* ---- slices ---------------------------------------------------------------- */

static void test_str_helpers(void **state)
{
    (void)state;
    assert_true(yr_str_eq(YR_STR("abc"), yr_str("abc")));
    assert_false(yr_str_eq(YR_STR("abc"), YR_STR("abd")));
    assert_false(yr_str_eq(YR_STR("abc"), YR_STR("ab")));
    assert_true(yr_str_eq(YR_STR_NULL, YR_STR("")));
    assert_int_equal(yr_str(NULL).len, 0);
    assert_true(yr_str_ieq(YR_STR("Content-LENGTH"), YR_STR("content-length")));
    assert_false(yr_str_ieq(YR_STR("Content-Lengt"), YR_STR("content-length")));
    assert_false(yr_str_ieq(YR_STR("a"), YR_STR("b")));
    assert_true(yr_str_has_prefix(YR_STR("Bearer x"), YR_STR("Bearer")));
    assert_false(yr_str_has_prefix(YR_STR("Bear"), YR_STR("Bearer")));
    assert_true(yr_str_has_prefix(YR_STR("x"), YR_STR("")));
    yr_str_t t = yr_str_trim(YR_STR(" \t a b \t "));
    assert_int_equal(t.len, 3);
    assert_memory_equal(t.ptr, "a b", 3);
    assert_int_equal(yr_str_trim(YR_STR(" \t  ")).len, 0);
    assert_int_equal(yr_str_trim(YR_STR_NULL).len, 0);
    /* Only space and tab are trimmed. */
    assert_int_equal(yr_str_trim(YR_STR("\nx\r")).len, 3);
}

static void test_str_to_u64(void **state)
{
    (void)state;
    uint64_t v = 12345;
    assert_int_equal(yr_str_to_u64(YR_STR("0"), 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(yr_str_to_u64(YR_STR("007"), 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(yr_str_to_u64(YR_STR("18446744073709551615"), UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 42;
    assert_int_equal(yr_str_to_u64(YR_STR("18446744073709551616"), UINT64_MAX, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("99999999999999999999"), UINT64_MAX, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("000000000000000000001"), UINT64_MAX, &v), -EINVAL);
    assert_int_equal(v, 42); /* untouched on failure */
    assert_int_equal(yr_str_to_u64(YR_STR(""), 10, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("-1"), 10, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("+1"), 10, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("1 "), 10, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("1a"), 10, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("0x10"), 100, &v), -EINVAL);
    /* The bound is inclusive. */
    assert_int_equal(yr_str_to_u64(YR_STR("65535"), 65535, &v), 0);
    assert_int_equal(v, 65535);
    assert_int_equal(yr_str_to_u64(YR_STR("65536"), 65535, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("100"), 99, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("19"), 15, &v), -EINVAL);
    /* Does not stop at a NUL inside the slice. */
    assert_int_equal(yr_str_to_u64((yr_str_t){"1\0", 2}, 100, &v), -EINVAL);
}

/* A single digit larger than a small max must be rejected too: "7" is not in
 * [0, 5]. */
static void test_str_to_u64_small_max(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(yr_str_to_u64(YR_STR("5"), 5, &v), 0);
    assert_int_equal(v, 5);
    v = 0;
    assert_int_equal(yr_str_to_u64(YR_STR("7"), 5, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("9"), 0, &v), -EINVAL);
    assert_int_equal(yr_str_to_u64(YR_STR("1"), 0, &v), -EINVAL);
}

/* ---- buffers --------------------------------------------------------------- */

static void test_buf_append_and_cap(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(yr_buf_append(&b, "hello", 5), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    assert_int_equal(yr_buf_append_str(&b, YR_STR("world")), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    /* Exactly at the cap: one more byte is an error and changes nothing. */
    assert_int_equal(yr_buf_append(&b, "!", 1), -E2BIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(yr_buf_append(&b, "", 0), 0);
    assert_true(b.cap <= 11); /* never allocates past max + NUL */
    yr_buf_free(&b);
    assert_null(b.data);

    yr_buf_init(&b, 4);
    assert_int_equal(yr_buf_append(&b, "12345", 5), -E2BIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(yr_buf_reserve(&b, SIZE_MAX), -E2BIG);
    assert_int_equal(yr_buf_append(&b, "1234", 4), 0);
    assert_int_equal(yr_buf_reserve(&b, SIZE_MAX), -E2BIG);
    yr_buf_free(&b);
}

static void test_buf_zero_max(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 0);
    assert_int_equal(yr_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(yr_buf_append(&b, "x", 1), -E2BIG);
    assert_int_equal(yr_buf_printf(&b, "%d", 1), -E2BIG);
    yr_buf_free(&b);
}

static void test_buf_growth_large(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    char chunk[1000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(yr_buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 1000000);
    assert_true(b.cap > b.len);
    for (size_t i = 0; i < b.len; i += 997)
        assert_int_equal(b.data[i], 'a' + (i % 1000) % 26);
    assert_int_equal(b.data[b.len], '\0');
    /* 48576 bytes left under the cap. */
    assert_int_equal(yr_buf_append(&b, chunk, 1000), 0);
    yr_buf_free(&b);
}

static void test_buf_printf_growth(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 100000);
    assert_int_equal(yr_buf_printf(&b, "%s=%d;", "a", 1), 0);
    assert_string_equal(b.data, "a=1;");
    /* Past the initial 256-byte allocation in one call. */
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(yr_buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 5001);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[5], 'z');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    /* Many small calls. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(yr_buf_printf(&b, "%03d", i), 0);
    assert_int_equal(b.len, 5005 + 3000);
    assert_memory_equal(b.data + 5005, "000001002", 9);
    assert_memory_equal(b.data + b.len - 3, "999", 3);
    /* An empty format on an unallocated buffer leaves a valid string. */
    yr_buf_t e;
    yr_buf_init(&e, 10);
    assert_int_equal(yr_buf_printf(&e, "%s", ""), 0);
    assert_int_equal(e.len, 0);
    yr_buf_free(&e);
    yr_buf_free(&b);
}

static void test_buf_printf_cap(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 8);
    assert_int_equal(yr_buf_printf(&b, "%s", "1234"), 0);
    assert_int_equal(yr_buf_printf(&b, "%s", "56789"), -E2BIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "1234");
    assert_int_equal(yr_buf_printf(&b, "%d", 5678), 0);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(b.len, 8);
    yr_buf_free(&b);
}

static void test_buf_consume_reset_steal(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 64);
    assert_int_equal(yr_buf_append(&b, "abcdefgh", 8), 0);
    yr_buf_consume(&b, 3);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "defgh");
    yr_buf_consume(&b, 0);
    assert_string_equal(b.data, "defgh");
    yr_buf_consume(&b, 5);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(yr_buf_append(&b, "xy", 2), 0);
    yr_buf_consume(&b, 100); /* more than len: empties */
    assert_int_equal(b.len, 0);
    /* Consumed bytes free room under the cap. */
    char fill[64];
    memset(fill, 'q', sizeof(fill));
    assert_int_equal(yr_buf_append(&b, fill, 64), 0);
    assert_int_equal(yr_buf_append(&b, "r", 1), -E2BIG);
    yr_buf_consume(&b, 1);
    assert_int_equal(yr_buf_append(&b, "r", 1), 0);
    assert_int_equal(b.data[63], 'r');
    yr_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(yr_buf_append(&b, "steal", 5), 0);
    size_t len = 0;
    char *s = yr_buf_steal(&b, &len);
    assert_int_equal(len, 5);
    assert_string_equal(s, "steal");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 64); /* still usable */
    free(s);
    assert_int_equal(yr_buf_append(&b, "again", 5), 0);
    assert_string_equal(b.data, "again");
    yr_buf_free(&b);
    yr_buf_reset(&b); /* on a freed buffer: no crash */
    yr_buf_free(&b);
}

/* ---- JSON strings ---------------------------------------------------------- */

static void json_str_is(yr_str_t in, const char *expect)
{
    yr_buf_t b;
    yr_buf_init(&b, 4096);
    assert_int_equal(yr_buf_append_json_str(&b, in), 0);
    assert_string_equal(b.data, expect);
    /* And jansson reads back exactly the input bytes. */
    json_error_t jerr;
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL)
        fail_msg("jansson rejected %s: %s", b.data, jerr.text);
    assert_true(json_is_string(v));
    assert_int_equal(json_string_length(v), in.len);
    assert_memory_equal(json_string_value(v), in.ptr ? in.ptr : "", in.len);
    json_decref(v);
    yr_buf_free(&b);
}

static void test_json_str_escapes(void **state)
{
    (void)state;
    json_str_is(YR_STR(""), "\"\"");
    json_str_is(YR_STR_NULL, "\"\"");
    json_str_is(YR_STR("plain text"), "\"plain text\"");
    json_str_is(YR_STR("a\"b\\c"), "\"a\\\"b\\\\c\"");
    json_str_is(YR_STR("l1\nl2\r\tx"), "\"l1\\nl2\\r\\tx\"");
    json_str_is(YR_STR("\x01\x08\x0c\x1f"), "\"\\u0001\\u0008\\u000c\\u001f\"");
    json_str_is((yr_str_t){"a\0b", 3}, "\"a\\u0000b\"");
    /* '/' and DEL need no escape; UTF-8 passes through byte for byte. */
    json_str_is(YR_STR("a/b\x7f"), "\"a/b\x7f\"");
    json_str_is(YR_STR("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
                "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* Escapes at the very start and end of the input. */
    json_str_is(YR_STR("\"x\""), "\"\\\"x\\\"\"");
    json_str_is(YR_STR("\n"), "\"\\n\"");
}

static void test_json_str_every_control_char(void **state)
{
    (void)state;
    char in[32];
    for (int i = 0; i < 32; i++)
        in[i] = (char)i;
    yr_buf_t b;
    yr_buf_init(&b, 4096);
    assert_int_equal(yr_buf_append_json_str(&b, (yr_str_t){in, 32}), 0);
    for (size_t i = 0; i < b.len; i++)
        assert_true((unsigned char)b.data[i] >= 0x20);
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    assert_int_equal(json_string_length(v), 32);
    assert_memory_equal(json_string_value(v), in, 32);
    json_decref(v);
    yr_buf_free(&b);
}

static void test_json_str_cap(void **state)
{
    (void)state;
    yr_buf_t b;
    /* "abc" needs 5 bytes with its quotes. */
    yr_buf_init(&b, 4);
    assert_int_equal(yr_buf_append_json_str(&b, YR_STR("abc")), -E2BIG);
    yr_buf_free(&b);
    yr_buf_init(&b, 5);
    assert_int_equal(yr_buf_append_json_str(&b, YR_STR("abc")), 0);
    assert_string_equal(b.data, "\"abc\"");
    yr_buf_free(&b);
    /* An escape that does not fit. */
    yr_buf_init(&b, 9);
    assert_int_equal(yr_buf_append_json_str(&b, YR_STR("ab\x01")), -E2BIG);
    yr_buf_free(&b);
    yr_buf_init(&b, 10);
    assert_int_equal(yr_buf_append_json_str(&b, YR_STR("ab\x01")), 0);
    assert_string_equal(b.data, "\"ab\\u0001\"");
    yr_buf_free(&b);
}

/* Control bytes in a log line are escaped: no forged lines, no terminal
 * escapes (issue 8 #8). */
static void test_log_escape(void **state)
{
    (void)state;
    char out[64];
    const char in[] = "a\r\n2026 error forged\x1b[31m\x7f\t\xc3\xa9";
    size_t n = yr_log_escape(in, sizeof(in) - 1, out, sizeof(out));
    assert_string_equal(out, "a\\r\\n2026 error forged\\x1b[31m\\x7f\\t\xc3\xa9");
    assert_int_equal(n, strlen(out));
    /* Full: cut at an escape boundary, never half of one. */
    char small[6];
    n = yr_log_escape("ab\ncd", 5, small, sizeof(small));
    assert_string_equal(small, "ab\\nc");
    n = yr_log_escape("abcd\x1b", 5, small, sizeof(small));
    assert_string_equal(small, "abcd");
    assert_int_equal(n, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_alignment_and_used),
        cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_pool_many_blocks_distinct),
        cmocka_unit_test(test_pool_big_allocation_keeps_tail),
        cmocka_unit_test(test_pool_overflow_sizes),
        cmocka_unit_test(test_pool_calloc_and_strndup),
        cmocka_unit_test(test_pool_cleanups_lifo),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_str_to_u64),
        cmocka_unit_test(test_str_to_u64_small_max),
        cmocka_unit_test(test_buf_append_and_cap),
        cmocka_unit_test(test_buf_zero_max),
        cmocka_unit_test(test_buf_growth_large),
        cmocka_unit_test(test_buf_printf_growth),
        cmocka_unit_test(test_buf_printf_cap),
        cmocka_unit_test(test_buf_consume_reset_steal),
        cmocka_unit_test(test_json_str_escapes),
        cmocka_unit_test(test_json_str_every_control_char),
        cmocka_unit_test(test_json_str_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
