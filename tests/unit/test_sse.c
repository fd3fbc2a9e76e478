/* SSE parser tests: framing with LF, CRLF and CR line ends; every split of a
 * stream (one byte at a time, and every 2-way and 3-way cut) gives the same
 * events; multi-line data, comments, event names, the size cap, the stop
 * value of the callback and yr_sse_partial(). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/sse.h"

/* Events collected as "event|data" records separated by '\x1e', so a whole
 * run compares as one string. */
typedef struct {
    yr_buf_t out;
    size_t count;
    size_t stop_at; /* return stop_value from the stop_at-th event (1-based); 0 = never */
    int stop_value;
} collector_t;

static void collector_init(collector_t *c)
{
    memset(c, 0, sizeof(*c));
    yr_buf_init(&c->out, 1 << 24);
}

static int on_event(const yr_sse_event_t *ev, void *arg)
{
    collector_t *c = arg;
    /* The slices are valid and sized; they are not required to be NUL-terminated. */
    assert_non_null(ev->event.ptr);
    assert_non_null(ev->data.ptr);
    assert_int_equal(yr_buf_append(&c->out, ev->event.ptr, ev->event.len), 0);
    assert_int_equal(yr_buf_append(&c->out, "|", 1), 0);
    assert_int_equal(yr_buf_append(&c->out, ev->data.ptr, ev->data.len), 0);
    assert_int_equal(yr_buf_append(&c->out, "\x1e", 1), 0);
    c->count++;
    if (c->stop_at != 0 && c->count == c->stop_at)
        return c->stop_value;
    return 0;
}

static const char *collected(collector_t *c)
{
    return c->out.data ? c->out.data : "";
}

/* Feeds the pieces of `in` cut at the given offsets (sorted) into a fresh
 * parser and returns the events; *partial says whether bytes were left. */
static void run_split(const char *in, size_t n, const size_t *cuts, size_t ncuts, collector_t *c,
                      bool *partial)
{
    yr_sse_parser_t p;
    yr_sse_init(&p, YR_SSE_MAX_EVENT);
    collector_init(c);
    size_t prev = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        assert_int_equal(yr_sse_feed(&p, in + prev, end - prev, on_event, c), 0);
        prev = end;
    }
    if (partial != NULL)
        *partial = yr_sse_partial(&p);
    yr_sse_free(&p);
}

/* The stream parsed whole must give `expect`; so must every 2-way and
 * 3-way split into non-empty pieces and the byte-at-a-time feed. */
static void check_all_splits(const char *in, const char *expect)
{
    size_t n = strlen(in);
    collector_t c;
    bool whole_partial;
    run_split(in, n, NULL, 0, &c, &whole_partial);
    assert_string_equal(collected(&c), expect);
    yr_buf_free(&c.out);

    for (size_t a = 1; a < n; a++) {
        size_t cuts[1] = {a};
        bool partial;
        run_split(in, n, cuts, 1, &c, &partial);
        if (strcmp(collected(&c), expect) != 0)
            fail_msg("split at %zu: got '%s' want '%s'", a, collected(&c), expect);
        assert_int_equal(partial, whole_partial);
        yr_buf_free(&c.out);
    }
    if (n <= 96) {
        for (size_t a = 1; a < n; a++) {
            for (size_t b = a + 1; b < n; b++) {
                size_t cuts[2] = {a, b};
                run_split(in, n, cuts, 2, &c, NULL);
                if (strcmp(collected(&c), expect) != 0)
                    fail_msg("split at %zu,%zu: got '%s' want '%s'", a, b, collected(&c), expect);
                yr_buf_free(&c.out);
            }
        }
    }
    /* One byte at a time. */
    yr_sse_parser_t p;
    yr_sse_init(&p, YR_SSE_MAX_EVENT);
    collector_init(&c);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(yr_sse_feed(&p, in + i, 1, on_event, &c), 0);
    assert_string_equal(collected(&c), expect);
    assert_int_equal(yr_sse_partial(&p), whole_partial);
    yr_buf_free(&c.out);
    yr_sse_free(&p);
}

static void test_lf_framing(void **state)
{
    (void)state;
    check_all_splits("data: hello\n\ndata: world\n\n", "|hello\x1e|world\x1e");
}

static void test_crlf_framing(void **state)
{
    (void)state;
    check_all_splits("data: hello\r\n\r\ndata: world\r\n\r\n", "|hello\x1e|world\x1e");
}

static void test_cr_framing(void **state)
{
    (void)state;
    check_all_splits("data: hello\r\rdata: world\r\r", "|hello\x1e|world\x1e");
}

static void test_mixed_line_ends(void **state)
{
    (void)state;
    /* CR then LF as two ends would be "\r" + "\n"; only CRLF adjacent is one. */
    check_all_splits("data: a\r\ndata: b\rdata: c\n\r\n"
                     "data: d\n\r"
                     "data: e\r\n\n",
                     "|a\nb\nc\x1e|d\x1e|e\x1e");
}

static void test_openai_stream(void **state)
{
    (void)state;
    check_all_splits("data: {\"id\":\"1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                     "data: {\"id\":\"1\",\"choices\":[]}\n\n"
                     "data: [DONE]\n\n",
                     "|{\"id\":\"1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\x1e"
                     "|{\"id\":\"1\",\"choices\":[]}\x1e"
                     "|[DONE]\x1e");
}

static void test_multiline_data_and_event_names(void **state)
{
    (void)state;
    check_all_splits("event: message_start\n"
                     "data: line1\n"
                     "data: line2\n"
                     "data:\n"
                     "data:  two-spaces\n"
                     "\n"
                     "event: ping\n"
                     "data: {}\n"
                     "\n"
                     "data: after-ping\n"
                     "\n",
                     "message_start|line1\nline2\n\n two-spaces\x1e"
                     "ping|{}\x1e"
                     "|after-ping\x1e");
}

static void test_comments_and_unknown_fields(void **state)
{
    (void)state;
    check_all_splits(": keep-alive\n"
                     ":\n"
                     "id: 7\n"
                     "retry: 1000\n"
                     "data: x\n"
                     ": comment inside an event\n"
                     "data: y\n"
                     "\n"
                     ": only a comment\n"
                     "\n"
                     "data\n"
                     "\n",
                     "|x\ny\x1e|\x1e");
}

static void test_field_without_space_and_colons(void **state)
{
    (void)state;
    check_all_splits("data:no-space\n\ndata: a: b :c\n\nevent:e1\ndata:\n\n",
                     "|no-space\x1e|a: b :c\x1e"
                     "e1|\x1e");
}

static void test_blank_lines_without_data_dispatch_nothing(void **state)
{
    (void)state;
    /* An event name alone, then blank lines: no event, and the name is
     * forgotten (it does not stick to the next event). */
    check_all_splits("\n\n\r\n\revent: lonely\n\n\ndata: z\n\n", "|z\x1e");
}

static void test_partial(void **state)
{
    (void)state;
    yr_sse_parser_t p;
    yr_sse_init(&p, 1024);
    collector_t c;
    collector_init(&c);
    assert_false(yr_sse_partial(&p));
    assert_int_equal(yr_sse_feed(&p, "da", 2, on_event, &c), 0);
    assert_true(yr_sse_partial(&p)); /* an unfinished line */
    assert_int_equal(yr_sse_feed(&p, "ta: x\n", 6, on_event, &c), 0);
    assert_true(yr_sse_partial(&p)); /* data without its blank line */
    assert_int_equal(c.count, 0);
    assert_int_equal(yr_sse_feed(&p, "\n", 1, on_event, &c), 0);
    assert_false(yr_sse_partial(&p));
    assert_int_equal(c.count, 1);
    assert_int_equal(yr_sse_feed(&p, "event: e\n", 9, on_event, &c), 0);
    assert_true(yr_sse_partial(&p)); /* an event name waiting for data */
    assert_int_equal(yr_sse_feed(&p, ": c\n", 4, on_event, &c), 0);
    assert_true(yr_sse_partial(&p));
    assert_int_equal(yr_sse_feed(&p, "\n", 1, on_event, &c), 0);
    assert_false(yr_sse_partial(&p));
    assert_int_equal(yr_sse_feed(&p, ": just a comment\n", 17, on_event, &c), 0);
    assert_false(yr_sse_partial(&p));
    assert_int_equal(c.count, 1);
    /* A stream that ends with CR: the event is complete, nothing partial. */
    assert_int_equal(yr_sse_feed(&p, "data: q\r\r", 9, on_event, &c), 0);
    assert_false(yr_sse_partial(&p));
    assert_int_equal(c.count, 2);
    assert_string_equal(collected(&c), "|x\x1e|q\x1e");
    yr_buf_free(&c.out);
    yr_sse_free(&p);
}

/* Found by fuzz_framing: a comment line longer than the cap was accepted
 * when it arrived in one read and refused when it was split; now it is
 * refused both ways (tests/fuzz/corpus/framing/long-line-split). */
static void test_long_comment_same_whole_or_split(void **state)
{
    (void)state;
    char line[101];
    memset(line, 'c', sizeof(line));
    line[0] = ':';
    line[100] = '\n';
    for (size_t cut = 0; cut < 2; cut++) {
        yr_sse_parser_t p;
        yr_sse_init(&p, 64);
        collector_t c;
        collector_init(&c);
        int rc = 0;
        if (cut)
            rc = yr_sse_feed(&p, line, 40, on_event, &c);
        if (rc == 0)
            rc = yr_sse_feed(&p, line + (cut ? 40 : 0), sizeof(line) - (cut ? 40 : 0), on_event,
                             &c);
        assert_int_equal(rc, -E2BIG);
        assert_int_equal(c.count, 0);
        yr_sse_free(&p);
    }
    /* A comment within the cap still passes whole. */
    yr_sse_parser_t p;
    yr_sse_init(&p, 64);
    collector_t c;
    collector_init(&c);
    char ok[62];
    memset(ok, 'c', sizeof(ok));
    ok[0] = ':';
    ok[61] = '\n';
    assert_int_equal(yr_sse_feed(&p, ok, sizeof(ok), on_event, &c), 0);
    yr_sse_free(&p);
}

static void test_cap_exceeded(void **state)
{
    (void)state;
    /* One line longer than the cap, split across feeds. */
    yr_sse_parser_t p;
    yr_sse_init(&p, 64);
    collector_t c;
    collector_init(&c);
    char line[100];
    memset(line, 'a', sizeof(line));
    memcpy(line, "data: ", 6);
    assert_int_equal(yr_sse_feed(&p, line, 50, on_event, &c), 0);
    assert_int_equal(yr_sse_feed(&p, line + 50, 50, on_event, &c), -E2BIG);
    assert_int_equal(c.count, 0);
    yr_sse_free(&p);

    /* The same line in a single feed. */
    yr_sse_init(&p, 64);
    char full[102];
    memcpy(full, line, 100);
    memcpy(full + 100, "\n\n", 2);
    int rc = yr_sse_feed(&p, full, sizeof(full), on_event, &c);
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(c.count, 0);
    yr_sse_free(&p);

    /* Many short data lines that together pass the cap. */
    yr_sse_init(&p, 64);
    rc = 0;
    for (int i = 0; i < 40 && rc == 0; i++)
        rc = yr_sse_feed(&p, "data: 0123456789\n", 17, on_event, &c);
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(c.count, 0);
    yr_sse_free(&p);

    /* Right at the cap is fine. */
    yr_sse_init(&p, 64);
    char ok[64 + 8];
    memcpy(ok, "data:", 5);
    memset(ok + 5, 'b', 59);
    memcpy(ok + 64, "\n\n", 2);
    assert_int_equal(yr_sse_feed(&p, ok, 66, on_event, &c), 0);
    assert_int_equal(c.count, 1);
    yr_sse_free(&p);
    yr_buf_free(&c.out);
}

static void test_event_name_cap(void **state)
{
    (void)state;
    yr_sse_parser_t p;
    yr_sse_init(&p, 4096);
    collector_t c;
    collector_init(&c);
    char ev[400];
    memcpy(ev, "event: ", 7);
    memset(ev + 7, 'n', 300);
    ev[307] = '\n';
    assert_int_equal(yr_sse_feed(&p, ev, 308, on_event, &c), -E2BIG);
    yr_sse_free(&p);
    yr_buf_free(&c.out);
}

static void test_stop_value_propagated(void **state)
{
    (void)state;
    const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    yr_sse_parser_t p;
    yr_sse_init(&p, 1024);
    collector_t c;
    collector_init(&c);
    c.stop_at = 2;
    c.stop_value = 42;
    assert_int_equal(yr_sse_feed(&p, in, strlen(in), on_event, &c), 42);
    /* Parsing stopped right after the second event. */
    assert_int_equal(c.count, 2);
    assert_string_equal(collected(&c), "|1\x1e|2\x1e");
    yr_sse_free(&p);
    yr_buf_free(&c.out);

    /* A negative stop value comes back as is, too. */
    yr_sse_init(&p, 1024);
    collector_init(&c);
    c.stop_at = 1;
    c.stop_value = -ECANCELED;
    assert_int_equal(yr_sse_feed(&p, in, strlen(in), on_event, &c), -ECANCELED);
    assert_int_equal(c.count, 1);
    yr_sse_free(&p);
    yr_buf_free(&c.out);
}

static void test_data_not_nul_terminated_input(void **state)
{
    (void)state;
    /* The input buffer has no NUL after it; ASan sees an over-read. */
    const char src[] = "data: abc\n\n";
    size_t n = sizeof(src) - 1;
    char *heap = malloc(n);
    memcpy(heap, src, n);
    yr_sse_parser_t p;
    yr_sse_init(&p, 1024);
    collector_t c;
    collector_init(&c);
    for (size_t cut = 0; cut <= n; cut++) {
        assert_int_equal(yr_sse_feed(&p, heap, cut, on_event, &c), 0);
        assert_int_equal(yr_sse_feed(&p, heap + cut, n - cut, on_event, &c), 0);
    }
    assert_int_equal(c.count, n + 1);
    yr_sse_free(&p);
    yr_buf_free(&c.out);
    free(heap);
}

/* An empty feed between the CR and the LF of one CRLF must not turn it into
 * two line ends (which would dispatch "a" and "b" as two events). */
static void test_empty_feed_keeps_crlf(void **state)
{
    (void)state;
    const char *in = "data: a\r\ndata: b\r\n\r\n";
    size_t n = strlen(in);
    yr_sse_parser_t p;
    yr_sse_init(&p, 1024);
    collector_t c;
    collector_init(&c);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(yr_sse_feed(&p, in + i, 1, on_event, &c), 0);
        assert_int_equal(yr_sse_feed(&p, in + i, 0, on_event, &c), 0);
    }
    assert_string_equal(collected(&c), "|a\nb\x1e");
    assert_false(yr_sse_partial(&p));
    yr_sse_free(&p);
    yr_buf_free(&c.out);
}

/* The cap is about the event, so whether an event fits must not depend on
 * how the stream was cut: data of exactly max_event bytes fits whole and must
 * fit when the "data:" line arrives in pieces too. */
static void test_cap_independent_of_split(void **state)
{
    (void)state;
    enum { CAP = 64 };
    char in[5 + CAP + 2];
    memcpy(in, "data:", 5);
    memset(in + 5, 'b', CAP);
    memcpy(in + 5 + CAP, "\n\n", 2);
    for (size_t cut = 0; cut <= sizeof(in); cut++) {
        yr_sse_parser_t p;
        yr_sse_init(&p, CAP);
        collector_t c;
        collector_init(&c);
        int rc = yr_sse_feed(&p, in, cut, on_event, &c);
        if (rc == 0)
            rc = yr_sse_feed(&p, in + cut, sizeof(in) - cut, on_event, &c);
        if (rc != 0 || c.count != 1)
            fail_msg("cut at %zu: rc %d, %zu events", cut, rc, c.count);
        yr_sse_free(&p);
        yr_buf_free(&c.out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf_framing),
        cmocka_unit_test(test_crlf_framing),
        cmocka_unit_test(test_cr_framing),
        cmocka_unit_test(test_mixed_line_ends),
        cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_multiline_data_and_event_names),
        cmocka_unit_test(test_comments_and_unknown_fields),
        cmocka_unit_test(test_long_comment_same_whole_or_split),
        cmocka_unit_test(test_field_without_space_and_colons),
        cmocka_unit_test(test_blank_lines_without_data_dispatch_nothing),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_cap_exceeded),
        cmocka_unit_test(test_event_name_cap),
        cmocka_unit_test(test_stop_value_propagated),
        cmocka_unit_test(test_data_not_nul_terminated_input),
        cmocka_unit_test(test_empty_feed_keeps_crlf),
        cmocka_unit_test(test_cap_independent_of_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
