/* Vertex AI: base64url, the service-account key file, the RS256 assertion
 * (verified with the public half of a key made here), the token endpoint's
 * answers, the URLs of both publishers, the Bearer header, the Claude body
 * (model out, anthropic_version in) and Gemini's roles. The token cache's
 * async behaviour is covered end to end by tests/sdk/vertex.test.mjs. */
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
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "config/config.h"
#include "providers/gcp_auth.h"
#include "providers/gemini.h"
#include "providers/vertex.h"

/* ---- base64url ------------------------------------------------------------------ */

static void b64(const char *in, size_t n, const char *want)
{
    yr_buf_t b;
    yr_buf_init(&b, 1024);
    assert_int_equal(yr_base64url(in, n, &b), 0);
    assert_int_equal(b.len, strlen(want));
    if (b.len)
        assert_memory_equal(b.data, want, b.len);
    yr_buf_free(&b);
}

static void test_base64url(void **state)
{
    (void)state;
    b64("", 0, ""); /* RFC 4648 §10 vectors, without padding */
    b64("f", 1, "Zg");
    b64("fo", 2, "Zm8");
    b64("foo", 3, "Zm9v");
    b64("foob", 4, "Zm9vYg");
    b64("fooba", 5, "Zm9vYmE");
    b64("foobar", 6, "Zm9vYmFy");
    b64("\xfb\xff\xbf", 3, "-_-_"); /* the URL-safe alphabet */
}

/* ---- a service account made here --------------------------------------------------- */

typedef struct {
    EVP_PKEY *key;
    char *pem;  /* PKCS#8 private key */
    char *json; /* the key file */
    yr_pool_t *pool;
} sa_fx_t;

static char *private_pem(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(bio);
    return s;
}

static char *key_file(const char *type, const char *email, const char *pem, const char *token_uri)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "type", type, "project_id", "proj-1",
                          "private_key_id", "kid-1", "client_email", email);
    if (pem)
        json_object_set_new(o, "private_key", json_string(pem));
    if (token_uri)
        json_object_set_new(o, "token_uri", json_string(token_uri));
    char *s = json_dumps(o, 0);
    json_decref(o);
    return s;
}

static sa_fx_t *sa_fx(void)
{
    sa_fx_t *f = calloc(1, sizeof(*f));
    f->key = EVP_RSA_gen(2048);
    assert_non_null(f->key);
    f->pem = private_pem(f->key);
    f->json = key_file("service_account", "sa@proj-1.iam.gserviceaccount.com", f->pem,
                       "https://oauth2.example/token");
    f->pool = yr_pool_create(4096);
    return f;
}

static void sa_free(sa_fx_t *f)
{
    EVP_PKEY_free(f->key);
    free(f->pem);
    free(f->json);
    yr_pool_destroy(f->pool);
    free(f);
}

/* base64url -> bytes (for checking the assertion) */
static size_t unb64(const char *s, size_t n, unsigned char *out)
{
    char tmp[8192];
    assert_true(n + 4 < sizeof(tmp));
    for (size_t i = 0; i < n; i++)
        tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t m = n;
    while (m % 4)
        tmp[m++] = '=';
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)m);
    assert_true(len >= 0);
    return (size_t)len - (m - n); /* padding decodes to zero bytes */
}

static json_t *jwt_part(const char *s, size_t n)
{
    unsigned char out[8192];
    size_t len = unb64(s, n, out);
    json_t *v = json_loadb((const char *)out, len, 0, NULL);
    assert_non_null(v);
    return v;
}

static void test_jwt_verifies_with_the_public_key(void **state)
{
    (void)state;
    sa_fx_t *f = sa_fx();
    yr_gcp_sa_t sa;
    char err[256] = "";
    assert_int_equal(yr_gcp_sa_parse(f->pool, f->json, strlen(f->json), &sa, err, sizeof(err)), 0);
    assert_string_equal(sa.client_email, "sa@proj-1.iam.gserviceaccount.com");
    assert_string_equal(sa.token_uri, "https://oauth2.example/token");
    assert_string_equal(sa.project_id, "proj-1");

    yr_buf_t jwt;
    yr_buf_init(&jwt, 16384);
    assert_int_equal(yr_gcp_jwt(&sa, 1700000000, &jwt), 0);
    char *d1 = memchr(jwt.data, '.', jwt.len);
    char *d2 = memchr(d1 + 1, '.', (size_t)(jwt.data + jwt.len - d1 - 1));
    assert_non_null(d2);
    json_t *h = jwt_part(jwt.data, (size_t)(d1 - jwt.data));
    json_t *c = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_object_get(c, "iss")), sa.client_email);
    assert_string_equal(json_string_value(json_object_get(c, "aud")), sa.token_uri);
    assert_string_equal(json_string_value(json_object_get(c, "scope")), YR_GCP_SCOPE);
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1700003600);
    json_decref(h);
    json_decref(c);

    unsigned char sig[1024];
    size_t siglen = unb64(d2 + 1, (size_t)(jwt.data + jwt.len - d2 - 1), sig);
    assert_int_equal(siglen, 256);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, f->key), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, siglen, (unsigned char *)jwt.data,
                                      (size_t)(d2 - jwt.data)),
                     1);
    /* one changed byte of the signed part: no longer valid */
    jwt.data[3] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, f->key), 1);
    assert_int_not_equal(EVP_DigestVerify(md, sig, siglen, (unsigned char *)jwt.data,
                                          (size_t)(d2 - jwt.data)),
                         1);
    EVP_MD_CTX_free(md);
    yr_buf_free(&jwt);
    sa_free(f);
}

static void sa_refused(const char *json, const char *want)
{
    yr_pool_t *pool = yr_pool_create(4096);
    yr_gcp_sa_t sa;
    char err[256] = "";
    assert_int_equal(yr_gcp_sa_parse(pool, json, strlen(json), &sa, err, sizeof(err)), -EINVAL);
    if (strstr(err, want) == NULL)
        fail_msg("'%s' does not say '%s'", err, want);
    assert_null(strstr(err, "PRIVATE")); /* never quotes the key */
    yr_pool_destroy(pool);
}

static void test_key_file_refusals(void **state)
{
    (void)state;
    sa_fx_t *f = sa_fx();
    sa_refused("not json", "not a JSON object");
    char *s = key_file("authorized_user", "a@b", f->pem, NULL);
    sa_refused(s, "not a service-account key");
    free(s);
    s = key_file("service_account", "a@b", NULL, NULL);
    sa_refused(s, "no \"private_key\"");
    free(s);
    s = key_file("service_account", "a@b", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                 NULL);
    sa_refused(s, "not a PEM RSA private key");
    free(s);
    s = key_file("service_account", "a@b", f->pem, "ftp://x");
    sa_refused(s, "token_uri");
    free(s);
    /* token_uri defaults to Google's */
    s = key_file("service_account", "a@b", f->pem, NULL);
    yr_gcp_sa_t sa;
    char err[256];
    assert_int_equal(yr_gcp_sa_parse(f->pool, s, strlen(s), &sa, err, sizeof(err)), 0);
    assert_string_equal(sa.token_uri, YR_GCP_TOKEN_URI);
    free(s);
    sa_free(f);
}

static void test_token_answers(void **state)
{
    (void)state;
    char tok[64], why[256];
    int64_t exp = 0;
    assert_int_equal(yr_gcp_token_parse(200, yr_str("{\"access_token\":\"ya29.abc\",\"expires_in\":3599,"
                                                    "\"token_type\":\"Bearer\"}"),
                                        tok, sizeof(tok), &exp, why, sizeof(why)),
                     0);
    assert_string_equal(tok, "ya29.abc");
    assert_int_equal(exp, 3599);
    assert_int_equal(yr_gcp_token_parse(200, yr_str("{\"access_token\":\"t2\"}"), tok, sizeof(tok),
                                        &exp, why, sizeof(why)),
                     0);
    assert_int_equal(exp, 3600);
    /* an empty token is never one */
    assert_int_equal(yr_gcp_token_parse(200, yr_str("{\"access_token\":\"\"}"), tok, sizeof(tok),
                                        &exp, why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "no usable access_token"));
    assert_int_equal(yr_gcp_token_parse(400, yr_str("{\"error\":\"invalid_grant\",\"error_description\":"
                                                    "\"Invalid JWT Signature.\"}"),
                                        tok, sizeof(tok), &exp, why, sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "HTTP 400: invalid_grant: Invalid JWT Signature.");
    assert_int_equal(yr_gcp_token_parse(503, yr_str("<html>"), tok, sizeof(tok), &exp, why,
                                        sizeof(why)),
                     -EINVAL);
    assert_string_equal(why, "HTTP 503");
}

/* ---- URLs and headers ------------------------------------------------------------------ */

typedef struct {
    yr_provider_conf_t provider;
    yr_route_conf_t route;
    yr_chat_req_t chat;
    yr_pool_t *pool;
    yr_call_ctx_t cx;
    yr_upstream_req_t up;
} fx_t;

static fx_t *fx_new(const char *location, const char *model)
{
    fx_t *f = calloc(1, sizeof(*f));
    bool global = strcmp(location, "global") == 0;
    f->provider = (yr_provider_conf_t){
        .name = "vtx",
        .kind = YR_KIND_VERTEX,
        .base_url = global ? "https://aiplatform.googleapis.com"
                           : "https://us-east5-aiplatform.googleapis.com",
        .project = "my-proj",
        .location = location,
    };
    f->route = (yr_route_conf_t){.provider = &f->provider, .model = model};
    f->pool = yr_pool_create(4096);
    f->cx = (yr_call_ctx_t){.pool = f->pool, .chat = &f->chat, .route = &f->route};
    return f;
}

static void fx_free(fx_t *f)
{
    yr_pool_destroy(f->pool);
    free(f);
}

static const char *header(const yr_upstream_req_t *up, const char *prefix)
{
    for (size_t i = 0; up->headers[i] != NULL; i++)
        if (strncasecmp(up->headers[i], prefix, strlen(prefix)) == 0)
            return up->headers[i];
    return NULL;
}

static void url_is(const char *location, const char *model, bool stream, bool count,
                   const char *want)
{
    fx_t *f = fx_new(location, model);
    f->chat.stream = stream;
    f->cx.count_tokens = count;
    assert_int_equal(yr_transport_vertex.prepare(&f->cx, "/ignored", NULL, &f->up), 0);
    assert_string_equal(f->up.url, want);
    fx_free(f);
}

static void test_urls(void **state)
{
    (void)state;
    const char *g = "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
                    "us-east5/publishers/";
    char want[512];
    snprintf(want, sizeof(want), "%sgoogle/models/gemini-2.5-flash:generateContent", g);
    url_is("us-east5", "gemini-2.5-flash", false, false, want);
    snprintf(want, sizeof(want), "%sgoogle/models/gemini-2.5-flash:streamGenerateContent?alt=sse", g);
    url_is("us-east5", "gemini-2.5-flash", true, false, want);
    snprintf(want, sizeof(want), "%sgoogle/models/gemini-2.5-flash:countTokens", g);
    url_is("us-east5", "models/gemini-2.5-flash", false, true, want);
    snprintf(want, sizeof(want), "%santhropic/models/claude-sonnet-4@20250514:rawPredict", g);
    url_is("us-east5", "claude-sonnet-4@20250514", false, false, want);
    snprintf(want, sizeof(want), "%santhropic/models/claude-sonnet-4@20250514:streamRawPredict", g);
    url_is("us-east5", "claude-sonnet-4@20250514", true, false, want);
    snprintf(want, sizeof(want), "%santhropic/models/count-tokens:rawPredict", g);
    url_is("us-east5", "claude-sonnet-4@20250514", true, true, want);
    url_is("global", "gemini 2?", false, false,
           "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/"
           "google/models/gemini%202%3F:generateContent");
}

static void test_publisher_choice(void **state)
{
    (void)state;
    fx_t *f = fx_new("us-east5", "claude-opus-4@20250514");
    assert_true(yr_vertex_anthropic(&f->route));
    assert_ptr_equal(yr_provider_route_kind(&f->route)->dialect, &yr_dialect_vertex_anthropic);
    f->route.model = "gemini-2.5-pro";
    assert_false(yr_vertex_anthropic(&f->route));
    assert_ptr_equal(yr_provider_route_kind(&f->route)->dialect, &yr_dialect_vertex_gemini);
    f->provider.publisher = "anthropic"; /* the config wins over the name */
    assert_true(yr_vertex_anthropic(&f->route));
    f->provider.publisher = "google";
    f->route.model = "claude-like-gemma";
    assert_false(yr_vertex_anthropic(&f->route));
    assert_ptr_equal(yr_provider_kind(YR_KIND_VERTEX)->transport, &yr_transport_vertex);
    fx_free(f);
}

static void test_headers(void **state)
{
    (void)state;
    fx_t *f = fx_new("us-east5", "claude-sonnet-4@20250514");
    const char *extra[] = {"anthropic-version: 2023-06-01", "anthropic-beta: b1", NULL};
    f->cx.access_token = "ya29.token";
    assert_int_equal(yr_transport_vertex.prepare(&f->cx, "/v1/messages", extra, &f->up), 0);
    assert_string_equal(header(&f->up, "authorization:"), "Authorization: Bearer ya29.token");
    assert_null(header(&f->up, "anthropic-version:")); /* the version is in the body */
    assert_string_equal(header(&f->up, "anthropic-beta:"), "anthropic-beta: b1");
    fx_free(f);
    /* a static token: the provider's api_key */
    f = fx_new("us-east5", "gemini-2.5-flash");
    f->provider.api_key = "static-token-1";
    yr_cred_wait_t *w = (yr_cred_wait_t *)1;
    assert_int_equal(yr_transport_vertex.credentials(&f->cx, NULL, NULL, &w), 0);
    assert_null(w);
    assert_int_equal(yr_transport_vertex.prepare(&f->cx, "/x", NULL, &f->up), 0);
    assert_string_equal(header(&f->up, "authorization:"), "Authorization: Bearer static-token-1");
    fx_free(f);
}

/* ---- bodies ------------------------------------------------------------------------------ */

static void claude_body(const char *in, bool count, const char *want)
{
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    assert_int_equal(yr_buf_append_str(&b, yr_str(in)), 0);
    yr_str_t out;
    assert_int_equal(yr_vertex_claude_body((yr_str_t){b.data, b.len}, count, &b, &out), 0);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.ptr, want, out.len);
    yr_buf_free(&b);
}

static void test_claude_body(void **state)
{
    (void)state;
    claude_body("{\"model\":\"claude-x\",\"max_tokens\":5,\"messages\":[]}", false,
                "{\"anthropic_version\":\"vertex-2023-10-16\",\"max_tokens\":5,\"messages\":[]}");
    claude_body("{\"max_tokens\":5, \"model\" : \"m\"}", false,
                "{\"max_tokens\":5, \"anthropic_version\":\"vertex-2023-10-16\"}");
    /* the client's own version wins; the model goes with its comma */
    claude_body("{\"model\":\"m\", \"anthropic_version\":\"v\"}", false, "{ \"anthropic_version\":\"v\"}");
    claude_body("{\"anthropic_version\":\"v\",\"model\":\"m\"}", false, "{\"anthropic_version\":\"v\"}");
    claude_body("{\"a\":1,\"model\":\"m\",\"b\":2}", false,
                "{\"a\":1,\"anthropic_version\":\"vertex-2023-10-16\",\"b\":2}");
    /* count-tokens reads the model from the body */
    claude_body("{\"model\":\"m\",\"messages\":[]}", true,
                "{\"anthropic_version\":\"vertex-2023-10-16\",\"model\":\"m\",\"messages\":[]}");
    claude_body("{\"anthropic_version\":\"v\",\"model\":\"m\"}", true,
                "{\"anthropic_version\":\"v\",\"model\":\"m\"}");
}

static void gemini_roles(const char *in, const char *want_role0, bool rewritten)
{
    fx_t *f = fx_new("us-east5", "gemini-2.5-flash");
    yr_buf_t b;
    yr_buf_init(&b, 1 << 20);
    const char *path;
    const char *const *extra;
    assert_int_equal(yr_dialect_vertex_gemini.pass_build(&f->cx, yr_str(in), &b, &f->up, &path,
                                                         &extra),
                     0);
    assert_true((f->up.body == in) == !rewritten);
    json_t *root = json_loadb(f->up.body, f->up.body_len, 0, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(root, "contents"), 0), "role")),
        want_role0);
    json_decref(root);
    yr_buf_free(&b);
    fx_free(f);
}

static void test_gemini_roles(void **state)
{
    (void)state;
    gemini_roles("{\"contents\":[{\"role\":\"model\",\"parts\":[]}]}", "model", false);
    gemini_roles("{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}", "user", true);
    gemini_roles("{\"contents\":[{\"role\":\"user\",\"parts\":[]},{\"parts\":[]}]}", "user", true);
    /* the Gemini API itself keeps the client's bytes */
    fx_t *f = fx_new("us-east5", "gemini-2.5-flash");
    const char *in = "{\"contents\":[{\"parts\":[]}]}";
    yr_buf_t b;
    yr_buf_init(&b, 1024);
    const char *path;
    const char *const *extra;
    assert_int_equal(yr_dialect_gemini.pass_build(&f->cx, yr_str(in), &b, &f->up, &path, &extra), 0);
    assert_ptr_equal(f->up.body, in);
    yr_buf_free(&b);
    fx_free(f);
}

/* ---- config ------------------------------------------------------------------------------- */

static yr_config_t *load(const char *yaml, char *err, size_t errlen)
{
    yr_config_t *cfg = NULL;
    err[0] = '\0';
    if (yr_config_load_string("cfg.yaml", yaml, strlen(yaml), &cfg, err, errlen) < 0)
        return NULL;
    return cfg;
}

static void test_config(void **state)
{
    (void)state;
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    char err[512];
    yr_config_t *cfg = load("providers: {v: {kind: vertex, api_key: tok123, project: p1}}", err,
                            sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].base_url, "https://us-central1-aiplatform.googleapis.com");
    assert_null(cfg->providers[0].gcp_sa);
    yr_config_free(cfg);
    cfg = load("providers: {v: {kind: vertex, api_key: tok123, project: p1, location: global, "
               "publisher: anthropic}}",
               err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].base_url, "https://aiplatform.googleapis.com");
    assert_string_equal(cfg->providers[0].publisher, "anthropic");
    yr_config_free(cfg);

    assert_null(load("providers: {v: {kind: vertex, project: p1}}", err, sizeof(err)));
    assert_non_null(strstr(err, "kind vertex needs credentials"));
    assert_null(load("providers: {v: {kind: vertex, api_key: tok123}}", err, sizeof(err)));
    assert_non_null(strstr(err, "needs a project"));
    assert_null(load("providers: {v: {kind: vertex, api_key: t, project: 'a/b'}}", err, sizeof(err)));
    assert_non_null(strstr(err, "project"));
    assert_null(load("providers: {v: {kind: vertex, project: p, credentials_json: 'secret-junk'}}",
                     err, sizeof(err)));
    assert_non_null(strstr(err, "cfg.yaml:1: providers.v: the service-account credentials are not"));
    assert_null(strstr(err, "secret-junk"));
    assert_null(load("providers: {v: {kind: vertex, project: p, credentials_file: /nonexistent/sa.json}}",
                     err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read the file"));

    /* inline JSON: the project comes from the key file */
    sa_fx_t *f = sa_fx();
    yr_buf_t y;
    yr_buf_init(&y, 1 << 16);
    assert_int_equal(yr_buf_printf(&y, "providers: {v: {kind: vertex, credentials_json: '%s'}}",
                                   f->json),
                     0);
    cfg = load(y.data, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->providers[0].project, "proj-1");
    assert_string_equal(cfg->providers[0].gcp_sa->client_email, "sa@proj-1.iam.gserviceaccount.com");
    yr_config_free(cfg);
    /* ... or from the file GOOGLE_APPLICATION_CREDENTIALS names */
    char path[] = "/tmp/yr-sa-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f->json, strlen(f->json)), (ssize_t)strlen(f->json));
    close(fd);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
    cfg = load("providers: {v: {kind: vertex, project: other}}", err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].project, "other"); /* the config wins */
    assert_non_null(cfg->providers[0].gcp_sa);
    yr_config_free(cfg);
    /* a static token and a service account are exclusive */
    yr_buf_reset(&y);
    assert_int_equal(yr_buf_printf(&y, "providers: {v: {kind: vertex, credentials_file: %s, "
                                       "api_key: t12345}}",
                                   path),
                     0);
    assert_null(load(y.data, err, sizeof(err)));
    assert_non_null(strstr(err, "exclusive"));
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unlink(path);
    yr_buf_free(&y);
    sa_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),
        cmocka_unit_test(test_jwt_verifies_with_the_public_key),
        cmocka_unit_test(test_key_file_refusals),
        cmocka_unit_test(test_token_answers),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_publisher_choice),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_claude_body),
        cmocka_unit_test(test_gemini_roles),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
