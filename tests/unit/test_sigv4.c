/* SigV4 (providers/sigv4.c) against the AWS Signature Version 4 test suite
 * (tests/unit/data/sigv4, from aws-c-auth): for every case the canonical
 * request, the string to sign and the signature must be the published
 * ones. Then our own case: a Bedrock model id with ':' sent as %3A is
 * signed as %253A (the path's segments encoded once more). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>

#include "providers/sigv4.h"

#ifndef YR_TEST_DATA
#error "YR_TEST_DATA must name tests/unit/data"
#endif

static char *slurp(const char *dir, const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sigv4/%s/%s", YR_TEST_DATA, dir, file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

typedef struct {
    char method[16];
    yr_str_t path, query;
    yr_sigv4_hdr_t h[YR_SIGV4_MAX_HEADERS];
    size_t nh;
    char joined[YR_SIGV4_MAX_HEADERS][512]; /* folded values, unfolded with a space */
    yr_str_t body;
} req_t;

/* request.txt: "METHOD target HTTP/1.1", "Name:value" lines (indented
 * lines fold into the value before, RFC 7230 obs-fold), a blank line, the body. */
static void parse_request(char *text, req_t *r)
{
    memset(r, 0, sizeof(*r));
    char *line = text, *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    char *sp = strchr(line, ' '), *last = strrchr(line, ' ');
    assert_true(sp && last && last > sp);
    snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp - line), line);
    char *target = sp + 1;
    *last = '\0';
    char *q = strchr(target, '?');
    r->path = (yr_str_t){target, q ? (size_t)(q - target) : strlen(target)};
    r->query = q ? yr_str(q + 1) : YR_STR("");
    line = nl + 1;
    while (*line != '\0' && *line != '\n') {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (line[0] == ' ' || line[0] == '\t') { /* a continuation line */
            assert_true(r->nh > 0);
            char *j = r->joined[r->nh - 1];
            yr_str_t v = yr_str_trim(yr_str(line));
            size_t used = strlen(j);
            snprintf(j + used, 512 - used, " %.*s", (int)v.len, v.ptr);
            r->h[r->nh - 1].value = yr_str(j);
        } else {
            char *colon = strchr(line, ':');
            assert_non_null(colon);
            snprintf(r->joined[r->nh], 512, "%s", colon + 1);
            r->h[r->nh].name = (yr_str_t){line, (size_t)(colon - line)};
            r->h[r->nh].value = yr_str(r->joined[r->nh]);
            r->nh++;
        }
        if (nl == NULL)
            return;
        line = nl + 1;
    }
    if (*line == '\n')
        r->body = yr_str(line + 1);
}

static void run_case(const char *name)
{
    char *reqtext = slurp(name, "request.txt");
    char *ctxtext = slurp(name, "context.json");
    char *want_creq = rtrim(slurp(name, "header-canonical-request.txt"));
    char *want_sts = rtrim(slurp(name, "header-string-to-sign.txt"));
    char *want_sig = rtrim(slurp(name, "header-signature.txt"));
    json_t *ctx = json_loads(ctxtext, 0, NULL);
    assert_non_null(ctx);
    json_t *cred = json_object_get(ctx, "credentials");
    const char *token = json_string_value(json_object_get(cred, "token"));
    req_t r;
    parse_request(reqtext, &r);
    const char *date = "20150830T123600Z";
    r.h[r.nh++] = (yr_sigv4_hdr_t){YR_STR("X-Amz-Date"), yr_str(date)};
    if (token && !json_is_true(json_object_get(ctx, "omit_session_token")))
        r.h[r.nh++] = (yr_sigv4_hdr_t){YR_STR("X-Amz-Security-Token"), yr_str(token)};
    char hash[65];
    yr_sha256_hex(r.body.ptr ? r.body.ptr : "", r.body.len, hash);
    if (json_is_true(json_object_get(ctx, "sign_body")))
        r.h[r.nh++] = (yr_sigv4_hdr_t){YR_STR("x-amz-content-sha256"), yr_str(hash)};
    yr_sigv4_req_t sr = {
        .method = r.method, .path = r.path, .query = r.query, .headers = r.h,
        .nheaders = r.nh, .payload_hash = hash,
        .normalize = json_is_true(json_object_get(ctx, "normalize")),
    };
    yr_sigv4_key_t k = {
        .access_key = json_string_value(json_object_get(cred, "access_key_id")),
        .secret_key = json_string_value(json_object_get(cred, "secret_access_key")),
        .region = json_string_value(json_object_get(ctx, "region")),
        .service = json_string_value(json_object_get(ctx, "service")),
        .amz_date = date,
    };
    yr_sigv4_out_t o;
    yr_sigv4_out_init(&o);
    assert_int_equal(yr_sigv4_sign(&sr, &k, &o), 0);
    if (strcmp(o.creq.data, want_creq) != 0)
        fail_msg("%s: canonical request\n%s\n--- want\n%s", name, o.creq.data, want_creq);
    if (strcmp(o.sts.data, want_sts) != 0)
        fail_msg("%s: string to sign\n%s\n--- want\n%s", name, o.sts.data, want_sts);
    if (strcmp(o.signature, want_sig) != 0)
        fail_msg("%s: signature %s, want %s", name, o.signature, want_sig);
    /* the Authorization value parses back into what was signed */
    yr_sigv4_auth_t a;
    assert_int_equal(yr_sigv4_parse_auth((yr_str_t){o.authorization.data, o.authorization.len}, &a),
                     0);
    assert_true(yr_str_eq(a.signature, yr_str(want_sig)));
    assert_true(yr_str_eq(a.access_key, YR_STR("AKIDEXAMPLE")));
    assert_true(yr_str_eq(a.region, YR_STR("us-east-1")));
    assert_true(yr_str_eq(a.signed_headers, (yr_str_t){o.signed_headers.data, o.signed_headers.len}));
    yr_sigv4_out_free(&o);
    json_decref(ctx);
    free(reqtext);
    free(ctxtext);
    free(want_creq);
    free(want_sts);
    free(want_sig);
}

static void test_suite(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/sigv4", YR_TEST_DATA);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int cases = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        run_case(e->d_name);
        cases++;
    }
    closedir(d);
    assert_int_equal(cases, 38); /* every case of the suite, none skipped */
}

/* Our own vector: a Bedrock model id with ':' (and an inference-profile
 * prefix), sent as one segment with %3A, signed as %253A. The expected
 * signature was computed independently (Python hmac and hashlib) from
 * the canonical request below. */
static void test_bedrock_model_path(void **state)
{
    (void)state;
    const char *body = "{\"messages\":[]}";
    char hash[65];
    yr_sha256_hex(body, strlen(body), hash);
    yr_sigv4_hdr_t h[] = {
        {YR_STR("host"), YR_STR("bedrock-runtime.us-east-1.amazonaws.com")},
        {YR_STR("x-amz-date"), YR_STR("20240101T000000Z")},
        {YR_STR("content-type"), YR_STR("application/json")},
    };
    yr_sigv4_req_t r = {
        .method = "POST",
        .path = YR_STR("/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"),
        .headers = h, .nheaders = 3, .payload_hash = hash,
    };
    yr_sigv4_key_t k = {.access_key = "AKIDEXAMPLE",
                        .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                        .region = "us-east-1", .service = "bedrock",
                        .amz_date = "20240101T000000Z"};
    yr_sigv4_out_t o;
    yr_sigv4_out_init(&o);
    assert_int_equal(yr_sigv4_sign(&r, &k, &o), 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "POST\n/model/us.anthropic.claude-3-5-haiku-20241022-v1%%253A0/converse\n\n"
             "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n"
             "x-amz-date:20240101T000000Z\n\ncontent-type;host;x-amz-date\n%s",
             hash);
    assert_string_equal(o.creq.data, want);
    assert_string_equal(o.signature,
                        "9f47b7d164cb764ee84b4c1502532ba49564daa4bc613e7b73a0345a0876daa3");
    assert_non_null(strstr(o.authorization.data,
                           "Credential=AKIDEXAMPLE/20240101/us-east-1/bedrock/aws4_request, "
                           "SignedHeaders=content-type;host;x-amz-date, Signature="));
    yr_sigv4_out_free(&o);
}

static void test_parse_auth_refuses(void **state)
{
    (void)state;
    yr_sigv4_auth_t a;
    static const char *const bad[] = {
        "Bearer x",
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/bedrock/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/aws4_request, SignedHeaders=host, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host, Signature=abc",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(yr_sigv4_parse_auth(yr_str(bad[i]), &a), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite),
        cmocka_unit_test(test_bedrock_model_path),
        cmocka_unit_test(test_parse_auth_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
