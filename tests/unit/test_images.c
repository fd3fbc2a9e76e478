/* Remote image parts of a chat request: collecting them and inlining the
 * fetched bytes as data: URLs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "api/images.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_PRESERVE_ORDER, &err);
    if (j == NULL)
        fail_msg("bad test JSON: %s", err.text);
    return j;
}

static const char *const sample =
    "{\"model\":\"m\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":["
    "{\"type\":\"text\",\"text\":\"compare\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://a.example/"
    "1.png\",\"detail\":\"low\"}},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"HTTP://b.example/2.jpg\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"ok\"},"
    "{\"role\":\"user\",\"content\":["
    "{\"type\":\"image_url\",\"image_url\":\"https://c.example/3.gif\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://d.example/4.png\"}},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":42}},"
    "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AAAA\"}},"
    "{\"type\":\"text\",\"text\":\"https://not-an-image.example/\"},"
    "\"stray string\","
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://e.example/5.webp\"}}]}]}";

static void test_collect(void **state)
{
    (void)state;
    json_t *root = parse(sample);
    json_t *parts[8];
    size_t n = yr_images_collect(root, parts, 8);
    assert_int_equal(n, 4);
    assert_string_equal(yr_images_url(parts[0]), "https://a.example/1.png");
    assert_string_equal(yr_images_url(parts[1]), "HTTP://b.example/2.jpg");
    assert_string_equal(yr_images_url(parts[2]), "https://c.example/3.gif");
    assert_string_equal(yr_images_url(parts[3]), "https://e.example/5.webp");
    /* Capped: the total is still reported. */
    json_t *two[2] = {NULL, NULL};
    assert_int_equal(yr_images_collect(root, two, 2), 4);
    assert_ptr_equal(two[0], parts[0]);
    assert_ptr_equal(two[1], parts[1]);
    assert_int_equal(yr_images_collect(root, NULL, 0), 4);
    size_t mi = 99, pi = 99;
    assert_true(yr_images_where(root, parts[0], &mi, &pi));
    assert_int_equal(mi, 1);
    assert_int_equal(pi, 1);
    assert_true(yr_images_where(root, parts[3], &mi, &pi));
    assert_int_equal(mi, 3);
    assert_int_equal(pi, 6);
    assert_false(yr_images_where(root, root, &mi, &pi));
    assert_false(yr_images_where(NULL, parts[0], &mi, &pi));
    json_decref(root);
}

static void test_collect_nothing(void **state)
{
    (void)state;
    json_t *parts[4];
    static const char *const bodies[] = {
        "{}",
        "{\"messages\":{}}",
        "{\"messages\":[1,\"x\",null,{\"content\":\"text only\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        ("{\"messages\":[{\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
         "\"data:image/png;base64,AAAA\"}}]}]}"),
        "[]",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *root = parse(bodies[i]);
        assert_int_equal(yr_images_collect(root, parts, 4), 0);
        json_decref(root);
    }
    assert_int_equal(yr_images_collect(NULL, parts, 4), 0);
    assert_null(yr_images_url(NULL));
}

/* Decodes a data URL's payload with OpenSSL (the reference, not ours). */
static unsigned char *decode(yr_str_t b64, size_t *len)
{
    unsigned char *out = malloc(b64.len / 4 * 3 + 1);
    assert_non_null(out);
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64.ptr, (int)b64.len);
    assert_true(n >= 0);
    size_t pad = b64.len >= 2 ? (b64.ptr[b64.len - 1] == '=') + (b64.ptr[b64.len - 2] == '=') : 0;
    *len = (size_t)n - pad;
    return out;
}

static void expect_roundtrip(json_t *part, const char *type, const void *data, size_t len)
{
    yr_str_t mt, b64;
    const char *url = yr_images_url(part);
    assert_non_null(url);
    assert_true(yr_data_url_parse(yr_str(url), &mt, &b64) || len == 0);
    if (len == 0)
        return;
    assert_true(yr_str_eq(mt, yr_str(type)));
    size_t n;
    unsigned char *bytes = decode(b64, &n);
    assert_int_equal(n, len);
    assert_memory_equal(bytes, data, len);
    free(bytes);
}

static void test_inline(void **state)
{
    (void)state;
    json_t *root = parse(sample);
    json_t *parts[8];
    assert_int_equal(yr_images_collect(root, parts, 8), 4);
    static const unsigned char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    assert_int_equal(yr_images_inline(parts[0], "image/png", png, sizeof(png) - 1), 0);
    /* detail stays, and so does the key order. */
    char *dump = json_dumps(parts[0], JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_string_equal(dump, "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;"
                              "base64,iVBORw0KGgoAAAANSUhEUg==\",\"detail\":\"low\"}}");
    free(dump);
    expect_roundtrip(parts[0], "image/png", png, sizeof(png) - 1);
    /* The string form stays a string. */
    assert_int_equal(yr_images_inline(parts[2], "image/gif", "GIF89a", 6), 0);
    assert_true(json_is_string(json_object_get(parts[2], "image_url")));
    assert_string_equal(yr_images_url(parts[2]), "data:image/gif;base64,R0lGODlh");
    /* Inlined parts are no longer remote. */
    assert_int_equal(yr_images_collect(root, parts, 8), 2);
    json_decref(root);
}

/* Sizes around the 3-byte groups and the encoder's chunking. */
static void test_inline_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {
        1, 2, 3, 4, 5, 3 * 16384 - 1, 3 * 16384, 3 * 16384 + 1, 3 * 16384 + 2, 1000003};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        unsigned char *data = malloc(len);
        assert_non_null(data);
        for (size_t k = 0; k < len; k++)
            data[k] = (unsigned char)(k * 131 + 7);
        json_t *part = parse("{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y\"}}");
        assert_int_equal(yr_images_inline(part, "image/jpeg", data, len), 0);
        const char *url = yr_images_url(part);
        assert_int_equal(strlen(url), strlen("data:image/jpeg;base64,") + (len + 2) / 3 * 4);
        expect_roundtrip(part, "image/jpeg", data, len);
        json_decref(part);
        free(data);
    }
}

static void test_inline_refuses(void **state)
{
    (void)state;
    json_t *part = parse("{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y\"}}");
    assert_int_equal(yr_images_inline(part, "text/html", "x", 1), -EINVAL);
    assert_int_equal(yr_images_inline(part, "image/svg+xml", "x", 1), -EINVAL);
    assert_int_equal(yr_images_inline(part, NULL, "x", 1), -EINVAL);
    assert_int_equal(yr_images_inline(part, "image/png", NULL, 1), -EINVAL);
    assert_string_equal(yr_images_url(part), "https://x/y");
    json_t *text = parse("{\"type\":\"text\",\"text\":\"hi\"}");
    assert_int_equal(yr_images_inline(text, "image/png", "x", 1), -EINVAL);
    json_decref(text);
    assert_int_equal(yr_images_inline(NULL, "image/png", "x", 1), -EINVAL);
    json_decref(part);
}

static void test_data_url_parse(void **state)
{
    (void)state;
    yr_str_t mt, b64;
    assert_true(yr_data_url_parse(YR_STR("data:image/png;base64,iVBORw0KGgo="), &mt, &b64));
    assert_true(yr_str_eq(mt, YR_STR("image/png")));
    assert_true(yr_str_eq(b64, YR_STR("iVBORw0KGgo=")));
    assert_true(yr_data_url_parse(YR_STR("DATA:image/jpeg;name=a.jpg;BASE64,/9j/"), &mt, &b64));
    assert_true(yr_str_eq(mt, YR_STR("image/jpeg")));
    assert_true(yr_str_eq(b64, YR_STR("/9j/")));
    assert_true(yr_data_url_parse(YR_STR("data:image/svg+xml;base64,PHN2Zz4="), &mt, NULL));
    assert_true(yr_str_eq(mt, YR_STR("image/svg+xml")));
    static const char *const bad[] = {
        "https://x/y.png",
        "data:image/png,rawbytes",   /* not base64 */
        "data:;base64,AAAA",         /* no media type */
        "data:image/png;base64,",    /* no payload */
        "data:image/png;base64",     /* no comma */
        "data:imagepng;base64,AAAA", /* no subtype */
        "data:image/png/x;base64,AAAA",
        "data:/png;base64,AAAA",
        "data:image/;base64,AAAA",
        "data:image/png;base64,AA AA", /* not base64 characters */
        "data:image/png;base64,AA\"AA",
        "data:ima ge/png;base64,AAAA",
        "data:",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (yr_data_url_parse(yr_str(bad[i]), &mt, &b64))
            fail_msg("'%s' should not parse", bad[i]);
    assert_false(yr_data_url_parse(YR_STR_NULL, &mt, &b64));
    /* Not NUL-terminated: only len bytes are read. */
    const char buf[] = "data:image/gif;base64,R0lGODlhXXXX";
    assert_true(yr_data_url_parse((yr_str_t){buf, sizeof(buf) - 1 - 4}, &mt, &b64));
    assert_true(yr_str_eq(b64, YR_STR("R0lGODlh")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect),        cmocka_unit_test(test_collect_nothing),
        cmocka_unit_test(test_inline),         cmocka_unit_test(test_inline_sizes),
        cmocka_unit_test(test_inline_refuses), cmocka_unit_test(test_data_url_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
