/* The AWS event stream decoder (providers/eventstream.c) against the
 * published vectors of aws-sdk-go (tests/unit/data/eventstream): every
 * positive message decodes to exactly the expected headers (all ten value
 * types) and payload, however its bytes are split across reads; every
 * corrupted one is refused. Plus the caps, the encoder round trip and the
 * framer's mapping of :message-type to frames. */
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
#include <openssl/evp.h>

#include "providers/eventstream.h"
#include "providers/framing.h"

#ifndef YR_TEST_DATA
#error "YR_TEST_DATA must name tests/unit/data"
#endif

static char *slurp(const char *rel, size_t *n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/eventstream/%s", YR_TEST_DATA, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static size_t b64(const char *in, unsigned char *out)
{
    size_t n = strlen(in);
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    assert_true(len >= 0);
    while (n > 0 && in[n - 1] == '=') {
        n--;
        len--;
    }
    return (size_t)len;
}

typedef struct {
    json_t *want;
    int calls;
} expect_t;

static void check_message(const yr_es_message_t *m, const json_t *want)
{
    assert_int_equal(m->total_len, json_integer_value(json_object_get(want, "total_length")));
    assert_int_equal(m->headers_len, json_integer_value(json_object_get(want, "headers_length")));
    assert_int_equal(m->prelude_crc,
                     (uint32_t)json_integer_value(json_object_get(want, "prelude_crc")));
    assert_int_equal(m->message_crc,
                     (uint32_t)json_integer_value(json_object_get(want, "message_crc")));
    json_t *hs = json_object_get(want, "headers");
    assert_int_equal(m->nheaders, json_array_size(hs));
    size_t i;
    json_t *h;
    json_array_foreach(hs, i, h)
    {
        const yr_es_header_t *got = &m->headers[i];
        const char *name = json_string_value(json_object_get(h, "name"));
        assert_true(yr_str_eq(got->name, yr_str(name)));
        assert_int_equal(got->type, json_integer_value(json_object_get(h, "type")));
        json_t *v = json_object_get(h, "value");
        if (json_is_boolean(v)) {
            assert_int_equal(got->num, json_is_true(v));
        } else if (json_is_integer(v)) {
            assert_int_equal(got->num, json_integer_value(v));
        } else {
            unsigned char raw[256];
            size_t n = b64(json_string_value(v), raw);
            assert_int_equal(got->bytes.len, n);
            assert_memory_equal(got->bytes.ptr, raw, n);
        }
    }
    unsigned char payload[256];
    size_t pn = b64(json_string_value(json_object_get(want, "payload")), payload);
    assert_int_equal(m->payload.len, pn);
    if (pn)
        assert_memory_equal(m->payload.ptr, payload, pn);
}

static int on_msg(const yr_es_message_t *m, void *arg)
{
    expect_t *e = arg;
    check_message(m, e->want);
    e->calls++;
    return 0;
}

static const char *const positives[] = {"all_headers", "empty_message", "int32_header",
                                        "payload_no_headers", "payload_one_str_header"};
static const char *const negatives[] = {"corrupted_header_len", "corrupted_headers",
                                        "corrupted_length", "corrupted_payload"};

static void test_positive_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(positives) / sizeof(positives[0]); v++) {
        char rel[128];
        size_t n, jn;
        snprintf(rel, sizeof(rel), "encoded/positive/%s", positives[v]);
        char *bytes = slurp(rel, &n);
        snprintf(rel, sizeof(rel), "decoded/positive/%s", positives[v]);
        char *js = slurp(rel, &jn);
        expect_t e = {.want = json_loadb(js, jn, 0, NULL)};
        assert_non_null(e.want);
        yr_es_message_t m;
        assert_int_equal(yr_es_decode((const uint8_t *)bytes, n, 0, &m), 0);
        check_message(&m, e.want);
        /* every split point, and byte by byte, through the parser */
        for (size_t cut = 0; cut <= n; cut++) {
            yr_es_parser_t p;
            yr_es_init(&p, 0);
            e.calls = 0;
            assert_int_equal(yr_es_feed(&p, bytes, cut, on_msg, &e), 0);
            assert_int_equal(yr_es_feed(&p, bytes + cut, n - cut, on_msg, &e), 0);
            assert_int_equal(e.calls, 1);
            assert_false(yr_es_partial(&p));
            yr_es_free(&p);
        }
        yr_es_parser_t p;
        yr_es_init(&p, 0);
        e.calls = 0;
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(yr_es_feed(&p, bytes + i, 1, on_msg, &e), 0);
            assert_int_equal(yr_es_partial(&p), i + 1 < n);
        }
        assert_int_equal(e.calls, 1);
        yr_es_free(&p);
        json_decref(e.want);
        free(bytes);
        free(js);
    }
}

static int on_never(const yr_es_message_t *m, void *arg)
{
    (void)m;
    (void)arg;
    fail_msg("a corrupted message reached the callback");
    return 0;
}

static void test_negative_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(negatives) / sizeof(negatives[0]); v++) {
        char rel[128];
        size_t n, jn;
        snprintf(rel, sizeof(rel), "encoded/negative/%s", negatives[v]);
        char *bytes = slurp(rel, &n);
        snprintf(rel, sizeof(rel), "decoded/negative/%s", negatives[v]);
        char *why = slurp(rel, &jn);
        yr_es_message_t m;
        assert_int_equal(yr_es_decode((const uint8_t *)bytes, n, 0, &m), -EPROTO);
        /* through the parser: refused as soon as the bad CRC is seen; a
         * prelude error before any payload byte is needed */
        yr_es_parser_t p;
        yr_es_init(&p, 0);
        int rc = 0;
        size_t i;
        for (i = 0; i < n && rc == 0; i++)
            rc = yr_es_feed(&p, bytes + i, 1, on_never, NULL);
        assert_int_equal(rc, -EPROTO);
        if (strncmp(why, "Prelude", 7) == 0)
            assert_int_equal(i, YR_ES_PRELUDE);
        yr_es_free(&p);
        free(bytes);
        free(why);
    }
}

static void test_caps(void **state)
{
    (void)state;
    /* a prelude announcing more than the cap: -E2BIG at the 12th byte */
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    yr_es_header_t h = {.name = YR_STR(":event-type"), .type = YR_ES_STRING,
                        .bytes = YR_STR("x")};
    assert_int_equal(yr_es_encode(&out, &h, 1, YR_STR("{\"a\":1}")), 0);
    yr_es_parser_t p;
    yr_es_init(&p, 20);
    assert_int_equal(yr_es_feed(&p, out.data, out.len, on_never, NULL), -E2BIG);
    yr_es_free(&p);
    /* the 24 MiB ceiling holds whatever max is asked for */
    yr_es_init(&p, SIZE_MAX);
    assert_int_equal(p.max, YR_ES_MAX_MESSAGE);
    yr_es_free(&p);
    /* total below 16, headers longer than the message */
    unsigned char bad[16] = {0, 0, 0, 8, 0, 0, 0, 0};
    yr_es_message_t m;
    assert_int_equal(yr_es_decode(bad, sizeof(bad), 0, &m), -EPROTO);
    yr_buf_free(&out);
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    yr_es_header_t hs[] = {
        {.name = YR_STR(":message-type"), .type = YR_ES_STRING, .bytes = YR_STR("event")},
        {.name = YR_STR("t"), .type = YR_ES_BOOL_TRUE},
        {.name = YR_STR("f"), .type = YR_ES_BOOL_FALSE},
        {.name = YR_STR("b"), .type = YR_ES_BYTE, .num = -3},
        {.name = YR_STR("s"), .type = YR_ES_SHORT, .num = -300},
        {.name = YR_STR("i"), .type = YR_ES_INT, .num = -70000},
        {.name = YR_STR("l"), .type = YR_ES_LONG, .num = -5000000000LL},
        {.name = YR_STR("ba"), .type = YR_ES_BYTES, .bytes = YR_STR("\x00\x01")},
        {.name = YR_STR("ts"), .type = YR_ES_TIMESTAMP, .num = 1700000000000LL},
        {.name = YR_STR("u"), .type = YR_ES_UUID, .bytes = YR_STR("0123456789abcdef")},
    };
    size_t nh = sizeof(hs) / sizeof(hs[0]);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    assert_int_equal(yr_es_encode(&out, hs, nh, YR_STR("payload")), 0);
    yr_es_message_t m;
    assert_int_equal(yr_es_decode((const uint8_t *)out.data, out.len, 0, &m), 0);
    assert_int_equal(m.nheaders, nh);
    for (size_t i = 0; i < nh; i++) {
        assert_true(yr_str_eq(m.headers[i].name, hs[i].name));
        assert_int_equal(m.headers[i].type, hs[i].type);
        if (hs[i].type == YR_ES_BOOL_TRUE)
            assert_int_equal(m.headers[i].num, 1);
        else if (hs[i].bytes.len)
            assert_true(yr_str_eq(m.headers[i].bytes, hs[i].bytes));
        else
            assert_int_equal(m.headers[i].num, hs[i].num);
    }
    assert_true(yr_str_eq(m.payload, YR_STR("payload")));
    /* one flipped bit anywhere is caught */
    for (size_t i = 0; i < out.len; i++) {
        out.data[i] ^= 0x10;
        assert_int_not_equal(yr_es_decode((const uint8_t *)out.data, out.len, 0, &m), 0);
        out.data[i] ^= 0x10;
    }
    yr_buf_free(&out);
}

typedef struct {
    char seen[8][64];
    int n;
} frames_t;

static int on_frame(const yr_frame_t *f, void *arg)
{
    frames_t *fs = arg;
    snprintf(fs->seen[fs->n++], 64, "%.*s|%.*s", (int)f->event.len, f->event.ptr,
             (int)f->data.len, f->data.ptr);
    return 0;
}

static void put(yr_buf_t *b, const char *mt, const char *tname, const char *type,
                const char *payload)
{
    yr_es_header_t hs[] = {
        {.name = YR_STR(":message-type"), .type = YR_ES_STRING, .bytes = yr_str(mt)},
        {.name = yr_str(tname), .type = YR_ES_STRING, .bytes = yr_str(type)},
        {.name = YR_STR(":content-type"), .type = YR_ES_STRING,
         .bytes = YR_STR("application/json")},
    };
    assert_int_equal(yr_es_encode(b, hs, 3, yr_str(payload)), 0);
}

static void test_framer(void **state)
{
    (void)state;
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    put(&b, "event", ":event-type", "messageStart", "{\"role\":\"assistant\"}");
    put(&b, "exception", ":exception-type", "throttlingException", "{\"message\":\"slow\"}");
    yr_es_header_t err[] = {
        {.name = YR_STR(":message-type"), .type = YR_ES_STRING, .bytes = YR_STR("error")},
        {.name = YR_STR(":error-code"), .type = YR_ES_STRING, .bytes = YR_STR("InternalError")},
        {.name = YR_STR(":error-message"), .type = YR_ES_STRING, .bytes = YR_STR("boom")},
    };
    assert_int_equal(yr_es_encode(&b, err, 3, YR_STR("")), 0);
    yr_framer_t f;
    yr_framer_init(&f, YR_FRAME_EVENTSTREAM, 1024);
    frames_t fs = {0};
    for (size_t i = 0; i < b.len; i += 7)
        assert_int_equal(yr_framer_feed(&f, b.data + i, b.len - i < 7 ? b.len - i : 7, on_frame,
                                        &fs),
                         0);
    assert_false(yr_framer_partial(&f));
    assert_int_equal(fs.n, 3);
    assert_string_equal(fs.seen[0], "messageStart|{\"role\":\"assistant\"}");
    assert_string_equal(fs.seen[1], "exception:throttlingException|{\"message\":\"slow\"}");
    assert_string_equal(fs.seen[2], "error:InternalError|boom");
    /* a message without :message-type is malformed */
    yr_buf_reset(&b);
    yr_es_header_t none = {.name = YR_STR(":event-type"), .type = YR_ES_STRING,
                           .bytes = YR_STR("x")};
    assert_int_equal(yr_es_encode(&b, &none, 1, YR_STR("{}")), 0);
    assert_int_equal(yr_framer_feed(&f, b.data, b.len, on_frame, &fs), -EPROTO);
    yr_framer_free(&f);
    yr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positive_vectors), cmocka_unit_test(test_negative_vectors),
        cmocka_unit_test(test_caps),             cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_framer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
