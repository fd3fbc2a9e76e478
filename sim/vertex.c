/* The simulator's Google Vertex AI: the two publishers over the Gemini and
 * Anthropic dialects, and a Google OAuth token endpoint.
 *
 *   POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
 *        (:streamGenerateContent?alt=sse, :countTokens)    the Gemini dialect,
 *        every content must have a role ("user" or "model")
 *   POST …/publishers/google/models/{m}:predict   text embeddings
 *        (instances/predictions, embeddings.c)
 *   POST …/publishers/anthropic/models/{m}:rawPredict (:streamRawPredict)
 *        the Anthropic dialect, with the model in the path: a body with
 *        "model" is refused (but for …/models/count-tokens:rawPredict, which
 *        needs it), "anthropic_version": "vertex-2023-10-16" is
 *        required in the body and no anthropic-version header is wanted
 *   POST /token   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&
 *        assertion=JWT: the RS256 signature is verified against the public
 *        key registered for the JWT's iss, and iat/exp/aud/scope checked; the
 *        answer is {"access_token","expires_in","token_type":"Bearer"} with a
 *        configurable lifetime, errors {"error":"invalid_grant",...} (400)
 *
 * Every Vertex call needs Authorization: Bearer T, where T is a token this
 * endpoint issued and that has not expired (or been revoked), or, for other
 * tokens, --require-key's key when one is set. Otherwise 401 UNAUTHENTICATED
 * as Google answers it (ErrorInfo reason ACCESS_TOKEN_EXPIRED for an expired
 * token).
 *
 * Control: POST /_sim/vertex {"accounts":[{"client_email","public_key"}],
 * "token_ttl_s"} (accounts are added; the lifetime replaces the default
 * 3600); GET /_sim/vertex {"token_requests","tokens_issued","rejected"};
 * POST /_sim/vertex/revoke expires every token issued so far.
 *
 * State: one process-wide table (the simulator is single-threaded), freed by
 * sim_vertex_shutdown. */
#include <errno.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define VX_MAX_TOKENS 1024
#define VX_VERSION "vertex-2023-10-16"

typedef struct {
    char token[48];
    uint64_t expires_ms; /* monotonic */
} vx_token_t;

static struct {
    json_t *accounts; /* client_email -> PEM public key */
    int64_t ttl_s;
    uint64_t token_requests, tokens_issued, rejected;
    vx_token_t tokens[VX_MAX_TOKENS]; /* a ring: the oldest is forgotten */
    size_t next;
    uint64_t seq;
} vx;

sim_dialect_t sim_dialect_vertex_gemini, sim_dialect_vertex_anthropic, sim_dialect_vertex_embed;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ---- paths ------------------------------------------------------------------------------- */

/* /v1/projects/{p}/locations/{l}/publishers/{publisher}/models/{m}:{method};
 * *method points past the ':'. */
static bool vertex_path(const yr_http_req_t *req, const char *publisher, yr_str_t *model,
                        yr_str_t *method)
{
    yr_str_t p = req->path;
    static const char *const seg[] = {"v1", "projects", NULL, "locations", NULL, "publishers"};
    size_t i = 0;
    for (size_t s = 0; s < sizeof(seg) / sizeof(seg[0]); s++) {
        if (i >= p.len || p.ptr[i] != '/')
            return false;
        size_t j = ++i;
        while (j < p.len && p.ptr[j] != '/')
            j++;
        if (j == i || (seg[s] != NULL && !yr_str_eq((yr_str_t){p.ptr + i, j - i}, yr_str(seg[s]))))
            return false;
        i = j;
    }
    size_t plen = strlen(publisher);
    if (p.len < i + plen + 9 || memcmp(p.ptr + i, "/", 1) != 0 ||
        memcmp(p.ptr + i + 1, publisher, plen) != 0 || memcmp(p.ptr + i + 1 + plen, "/models/", 8))
        return false;
    const char *m = p.ptr + i + 1 + plen + 8, *end = p.ptr + p.len;
    const char *colon = memchr(m, ':', (size_t)(end - m));
    if (colon == NULL || colon == m || memchr(m, '/', (size_t)(colon - m)) != NULL)
        return false;
    *model = (yr_str_t){m, (size_t)(colon - m)};
    *method = (yr_str_t){colon + 1, (size_t)(end - colon - 1)};
    return true;
}

static sim_route_t vg_route(const yr_http_req_t *req)
{
    yr_str_t model, method;
    if (req->method != HTTP_POST || !vertex_path(req, "google", &model, &method))
        return SIM_ROUTE_NONE;
    return yr_str_eq(method, YR_STR("generateContent")) ||
                   yr_str_eq(method, YR_STR("streamGenerateContent")) ||
                   yr_str_eq(method, YR_STR("countTokens"))
               ? SIM_ROUTE_CHAT
               : SIM_ROUTE_NONE;
}

static sim_route_t ve_route(const yr_http_req_t *req)
{
    yr_str_t model, method;
    return req->method == HTTP_POST && vertex_path(req, "google", &model, &method) &&
                   yr_str_eq(method, YR_STR("predict"))
               ? SIM_ROUTE_CHAT
               : SIM_ROUTE_NONE;
}

static sim_route_t vc_route(const yr_http_req_t *req)
{
    yr_str_t model, method;
    if (req->method != HTTP_POST || !vertex_path(req, "anthropic", &model, &method))
        return SIM_ROUTE_NONE;
    return yr_str_eq(method, YR_STR("rawPredict")) || yr_str_eq(method, YR_STR("streamRawPredict"))
               ? SIM_ROUTE_CHAT
               : SIM_ROUTE_NONE;
}

/* ---- auth ------------------------------------------------------------------------------------ */

static const vx_token_t *find_token(yr_str_t t)
{
    for (size_t i = 0; i < VX_MAX_TOKENS; i++)
        if (vx.tokens[i].token[0] != '\0' && yr_str_eq(t, yr_str(vx.tokens[i].token)))
            return &vx.tokens[i];
    return NULL;
}

static int vx_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    yr_str_t h = yr_str_trim(yr_http_req_header(req, YR_STR("authorization")));
    yr_str_t t = YR_STR_NULL;
    if (h.len > 7 && yr_str_ieq((yr_str_t){h.ptr, 7}, YR_STR("Bearer ")))
        t = yr_str_trim((yr_str_t){h.ptr + 7, h.len - 7});
    const char *reason = "CREDENTIALS_MISSING";
    if (t.len > 0 && yr_str_has_prefix(t, YR_STR("ya29.sim."))) {
        const vx_token_t *k = find_token(t);
        if (k != NULL && now_ms() < k->expires_ms)
            return 0;
        reason = k != NULL ? "ACCESS_TOKEN_EXPIRED" : "ACCESS_TOKEN_TYPE_UNSUPPORTED";
    } else if (t.len > 0) {
        if (key.len == 0 || sim_key_equal(t, key))
            return 0;
        reason = "ACCESS_TOKEN_TYPE_UNSUPPORTED";
    }
    vx.rejected++;
    sim_error_set(err, 401, "UNAUTHENTICATED", reason,
                  "Request had invalid authentication credentials. Expected OAuth 2 access "
                  "token, login cookie or other valid authentication credential. See "
                  "https://developers.google.com/identity/sign-in/web/devconsole-project.");
    return -EACCES;
}

/* ---- Gemini on Vertex -------------------------------------------------------------------- */

static int vg_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(body, "contents"), i, c)
    {
        const char *role = json_string_value(json_object_get(c, "role"));
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "model") != 0)) {
            sim_error_set(err, 400, "INVALID_ARGUMENT", NULL,
                          "Please use a valid role: user, model. (contents[%zu])", i);
            return -EINVAL;
        }
    }
    return sim_dialect_gemini.parse(x, body, err);
}

/* ---- Claude on Vertex ----------------------------------------------------------------------- */

static int vc_invalid(sim_error_t *err, const char *msg)
{
    sim_error_set(err, 400, "invalid_request_error", NULL, "%s", msg);
    return -EINVAL;
}

static int vc_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    yr_str_t model, method;
    if (!json_is_object(body) || !vertex_path(x->req, "anthropic", &model, &method))
        return vc_invalid(err, "There was an error parsing the body of your request: it must be "
                               "a JSON object.");
    /* Token counting has one endpoint for every model: that one is in the body. */
    bool count = yr_str_eq(model, YR_STR("count-tokens"));
    if (count && !json_is_string(json_object_get(body, "model")))
        return vc_invalid(err, "model: Field required");
    if (!count && json_object_get(body, "model") != NULL)
        return vc_invalid(err, "model: Extra inputs are not permitted (the model is in the URL)");
    const char *v = json_string_value(json_object_get(body, "anthropic_version"));
    if (v == NULL)
        return vc_invalid(err, "anthropic_version: Field required");
    if (strcmp(v, VX_VERSION) != 0)
        return vc_invalid(err, "anthropic_version: Input should be 'vertex-2023-10-16'");
    if (yr_http_req_header(x->req, YR_STR("anthropic-version")).ptr != NULL)
        return vc_invalid(err, "anthropic-version: the header is not used on Vertex AI (the "
                               "version goes in the body)");
    /* The Messages API form, on a copy: the recorded request stays as sent. */
    json_t *copy = json_deep_copy(body);
    if (copy == NULL || json_object_del(copy, "anthropic_version") < 0 ||
        (!count && json_object_set_new(copy, "model", sim_json_string(model.ptr, model.len)) < 0)) {
        json_decref(copy);
        sim_error_set(err, 500, "api_error", NULL, "out of memory");
        return -ENOMEM;
    }
    json_decref(x->body);
    x->body = copy;
    return sim_anthropic_parse_body(x, copy, err);
}

/* Vertex's own refusals (auth) are google.rpc statuses; Claude's are
 * Anthropic's. */
static int vc_render_error(const sim_error_t *err, yr_buf_t *out)
{
    if (err->status == 401 || (err->type.ptr != NULL && yr_str_eq(err->type, YR_STR("UNAUTHENTICATED"))))
        return sim_dialect_gemini.render_error(err, out);
    return sim_dialect_anthropic.render_error(err, out);
}

/* ---- the token endpoint --------------------------------------------------------------------- */

static int b64url_decode(yr_str_t in, yr_buf_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (v < 0)
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char byte = (char)((acc >> bits) & 0xff);
            if (yr_buf_append(out, &byte, 1) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static json_t *b64_json(yr_str_t part)
{
    yr_buf_t b;
    yr_buf_init(&b, 16384);
    json_t *v = b64url_decode(part, &b) == 0 && b.len > 0 ? json_loadb(b.data, b.len, 0, NULL)
                                                          : NULL;
    yr_buf_free(&b);
    return v;
}

static bool verify_rs256(const char *pem, yr_str_t signed_part, yr_str_t sig64)
{
    yr_buf_t sig;
    yr_buf_init(&sig, 4096);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = k != NULL && md != NULL && b64url_decode(sig64, &sig) == 0 && sig.len > 0 &&
              EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
              EVP_DigestVerify(md, (const unsigned char *)sig.data, sig.len,
                               (const unsigned char *)signed_part.ptr, signed_part.len) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    BIO_free(bio);
    yr_buf_free(&sig);
    return ok;
}

static void token_error(yr_http_req_t *req, int status, const char *error, const char *desc)
{
    sim_respond_json(req, status, json_pack("{s:s,s:s}", "error", error, "error_description", desc));
}

/* The value of name in an application/x-www-form-urlencoded body (no
 * decoding: the assertion is base64url, the grant type checked encoded). */
static yr_str_t form_value(yr_str_t body, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n + 1 <= body.len; i++) {
        if ((i == 0 || body.ptr[i - 1] == '&') && memcmp(body.ptr + i, name, n) == 0 &&
            body.ptr[i + n] == '=') {
            size_t j = i + n + 1;
            while (j < body.len && body.ptr[j] != '&')
                j++;
            return (yr_str_t){body.ptr + i + n + 1, j - i - n - 1};
        }
    }
    return YR_STR_NULL;
}

static void token_request(yr_http_req_t *req)
{
    vx.token_requests++;
    yr_str_t body = {req->body.data ? req->body.data : "", req->body.len};
    yr_str_t grant = form_value(body, "grant_type");
    yr_str_t jwt = form_value(body, "assertion");
    if (!yr_str_eq(grant, YR_STR("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")) &&
        !yr_str_eq(grant, YR_STR("urn:ietf:params:oauth:grant-type:jwt-bearer"))) {
        token_error(req, 400, "unsupported_grant_type", "Invalid grant_type: ");
        return;
    }
    const char *d1 = memchr(jwt.ptr ? jwt.ptr : "", '.', jwt.len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(jwt.ptr + jwt.len - d1 - 1)) : NULL;
    if (d2 == NULL) {
        token_error(req, 400, "invalid_request", "Invalid JWT: the assertion is not a JWT");
        return;
    }
    json_t *hdr = b64_json((yr_str_t){jwt.ptr, (size_t)(d1 - jwt.ptr)});
    json_t *claims = b64_json((yr_str_t){d1 + 1, (size_t)(d2 - d1 - 1)});
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *scope = json_string_value(json_object_get(claims, "scope"));
    const char *aud = json_string_value(json_object_get(claims, "aud"));
    json_t *iat = json_object_get(claims, "iat"), *exp = json_object_get(claims, "exp");
    const char *pem = iss ? json_string_value(json_object_get(vx.accounts, iss)) : NULL;
    int64_t now = (int64_t)time(NULL);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (alg == NULL || strcmp(alg, "RS256") != 0)
        token_error(req, 400, "invalid_grant", "Invalid JWT: the algorithm must be RS256");
    else if (pem == NULL)
        token_error(req, 400, "invalid_grant", "Invalid grant: account not found");
    else if (!verify_rs256(pem, (yr_str_t){jwt.ptr, (size_t)(d2 - jwt.ptr)},
                           (yr_str_t){d2 + 1, (size_t)(jwt.ptr + jwt.len - d2 - 1)}))
        token_error(req, 400, "invalid_grant", "Invalid JWT Signature.");
    else if (!json_is_integer(iat) || !json_is_integer(exp) ||
             json_integer_value(iat) > now + 60 || json_integer_value(exp) <= now ||
             json_integer_value(exp) - json_integer_value(iat) > 3600)
        token_error(req, 400, "invalid_grant",
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                    "reasonable timeframe. Check your iat and exp values in the JWT claim.");
    else if (aud == NULL || strstr(aud, "/token") == NULL)
        token_error(req, 400, "invalid_grant", "Invalid JWT: Failed audience check.");
    else if (scope == NULL || strstr(scope, "https://www.googleapis.com/auth/cloud-platform") == NULL)
        token_error(req, 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    else {
        vx_token_t *t = &vx.tokens[vx.next];
        vx.next = (vx.next + 1) % VX_MAX_TOKENS;
        char rnd[25];
        sim_random_alnum(++vx.seq ^ 0x7E57ull, rnd, 24);
        snprintf(t->token, sizeof(t->token), "ya29.sim.%s", rnd);
        int64_t ttl = vx.ttl_s > 0 ? vx.ttl_s : 3600;
        t->expires_ms = now_ms() + (uint64_t)ttl * 1000u;
        vx.tokens_issued++;
        sim_respond_json(req, 200,
                         json_pack("{s:s,s:I,s:s}", "access_token", t->token, "expires_in",
                                   (json_int_t)ttl, "token_type", "Bearer"));
    }
    json_decref(hdr);
    json_decref(claims);
}

bool sim_vertex_request(sim_t *sim, yr_http_req_t *req)
{
    (void)sim;
    if (req->method != HTTP_POST || !yr_str_eq(req->path, YR_STR("/token")))
        return false;
    token_request(req);
    return true;
}

/* ---- control ------------------------------------------------------------------------------------ */

void sim_vertex_control(sim_t *sim, yr_http_req_t *req)
{
    (void)sim;
    if (yr_str_eq(req->path, YR_STR("/_sim/vertex/revoke")) && req->method == HTTP_POST) {
        for (size_t i = 0; i < VX_MAX_TOKENS; i++)
            vx.tokens[i].expires_ms = 0;
    } else if (yr_str_eq(req->path, YR_STR("/_sim/vertex")) && req->method == HTTP_POST) {
        json_t *b = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(b, "accounts"), i, a)
        {
            const char *email = json_string_value(json_object_get(a, "client_email"));
            json_t *pem = json_object_get(a, "public_key");
            if (email != NULL && json_is_string(pem))
                json_object_set(vx.accounts, email, pem);
        }
        json_t *ttl = json_object_get(b, "token_ttl_s");
        if (json_is_integer(ttl))
            vx.ttl_s = json_integer_value(ttl);
        json_decref(b);
    } else if (!(yr_str_eq(req->path, YR_STR("/_sim/vertex")) && req->method == HTTP_GET)) {
        sim_respond_control_error(req, 404, "unknown control endpoint (see docs/sim.md)");
        return;
    }
    sim_respond_json(req, 200,
                     json_pack("{s:I,s:I,s:I}", "token_requests", (json_int_t)vx.token_requests,
                               "tokens_issued", (json_int_t)vx.tokens_issued, "rejected",
                               (json_int_t)vx.rejected));
}

int sim_vertex_init(void)
{
    vx.accounts = json_object();
    sim_dialect_vertex_gemini = sim_dialect_gemini;
    sim_dialect_vertex_gemini.name = "vertex-gemini";
    sim_dialect_vertex_gemini.route = vg_route;
    sim_dialect_vertex_gemini.check_auth = vx_check_auth;
    sim_dialect_vertex_gemini.parse = vg_parse;
    sim_dialect_vertex_embed = sim_dialect_vertex_predict;
    sim_dialect_vertex_embed.route = ve_route;
    sim_dialect_vertex_embed.check_auth = vx_check_auth;
    sim_dialect_vertex_anthropic = sim_dialect_anthropic;
    sim_dialect_vertex_anthropic.name = "vertex-anthropic";
    sim_dialect_vertex_anthropic.route = vc_route;
    sim_dialect_vertex_anthropic.check_auth = vx_check_auth;
    sim_dialect_vertex_anthropic.parse = vc_parse;
    sim_dialect_vertex_anthropic.render_error = vc_render_error;
    return vx.accounts != NULL ? 0 : -ENOMEM;
}

void sim_vertex_shutdown(void)
{
    json_decref(vx.accounts);
    vx.accounts = NULL;
}
