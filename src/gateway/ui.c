/* The admin web UI: static pages built into the binary (ui/, embedded by
 * cmake/ui_embed.cmake), a master-key login that opens a session
 * (gateway/ui_session.h), and the session check of the admin API.
 *
 *   GET  /ui, /ui/          the app (a live session), else 303 to /ui/login
 *   GET  /ui/login          the login page
 *   POST /ui/login          {"password": master key} -> Set-Cookie, {"csrf"}
 *   POST /ui/logout         ends the session (CSRF token required)
 *   GET  /ui/session        {"csrf", "expires_in_s"} of the caller's session
 *   GET  /ui/assets/NAME    app.js, style.css, ... (no secrets: no session)
 *
 * Every answer under /ui carries a Content-Security-Policy without inline
 * script, X-Frame-Options DENY, nosniff and no-referrer; pages and JSON are
 * no-store. docs/ui.md explains the cookie and CSRF design. */
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "gateway/respond.h"
#include "gateway/ui.h"
#include "gateway/ui_assets.h"
#include "gateway/ui_session.h"

#define COOKIE_NAME "yr_session"
#define MAX_LOGIN_BODY 4096
#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"               \
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

static int64_t now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

static const char *master_key(const yr_gw_req_t *g)
{
    return g->cfg->server.master_key;
}

size_t yr_ui_response_headers(const yr_http_req_t *req, yr_http_header_t *out, size_t cap)
{
    bool ui = yr_str_eq(req->path, YR_STR("/ui")) || yr_str_has_prefix(req->path, YR_STR("/ui/"));
    bool admin = yr_str_has_prefix(req->path, YR_STR("/admin/"));
    size_t n = 0;
    if ((ui || admin) && n < cap)
        out[n++] = (yr_http_header_t){YR_STR("Cache-Control"), YR_STR("no-store")};
    if (!ui)
        return n;
    const yr_http_header_t sec[] = {
        {YR_STR("Content-Security-Policy"), YR_STR(CSP)},
        {YR_STR("X-Frame-Options"), YR_STR("DENY")},
        {YR_STR("X-Content-Type-Options"), YR_STR("nosniff")},
        {YR_STR("Referrer-Policy"), YR_STR("no-referrer")},
    };
    for (size_t i = 0; i < sizeof(sec) / sizeof(sec[0]) && n < cap; i++)
        out[n++] = sec[i];
    return n;
}

yr_str_t yr_ui_cookie(const yr_http_req_t *req)
{
    yr_str_t h = yr_http_req_header(req, YR_STR("cookie"));
    const size_t nl = sizeof(COOKIE_NAME) - 1;
    for (size_t i = 0; i < h.len;) {
        size_t end = i;
        while (end < h.len && h.ptr[end] != ';')
            end++;
        yr_str_t pair = yr_str_trim((yr_str_t){h.ptr + i, end - i});
        if (pair.len > nl && memcmp(pair.ptr, COOKIE_NAME, nl) == 0 && pair.ptr[nl] == '=')
            return (yr_str_t){pair.ptr + nl + 1, pair.len - nl - 1};
        i = end + 1;
    }
    return YR_STR_NULL;
}

/* Whether the request reached us over TLS, as far as we may believe: the
 * gateway itself speaks plain HTTP, so only a trusted proxy can say. */
static bool over_tls(const yr_gw_req_t *g)
{
    return g->cfg->server.trust_forwarded_proto &&
           yr_str_ieq(yr_str_trim(yr_http_req_header(g->http, YR_STR("x-forwarded-proto"))),
                      YR_STR("https"));
}

/* A browser names the page that sent a request in Origin (every POST, and
 * every cross-origin fetch): it must be this host. Absent: not a browser's
 * cross-site request (those always carry it), so the other checks decide. */
static bool origin_ok(const yr_http_req_t *req)
{
    yr_str_t o = yr_http_req_header(req, YR_STR("origin"));
    if (o.len == 0)
        return true;
    yr_str_t host = yr_http_req_header(req, YR_STR("host"));
    if (yr_str_has_prefix(o, YR_STR("https://")))
        o = (yr_str_t){o.ptr + 8, o.len - 8};
    else if (yr_str_has_prefix(o, YR_STR("http://")))
        o = (yr_str_t){o.ptr + 7, o.len - 7};
    else
        return false;
    return host.len > 0 && yr_str_ieq(o, host);
}

/* The live session of the request's cookie: its CSRF token in csrf. */
static bool session_of(const yr_gw_req_t *g, char *csrf, int64_t *expires_ms)
{
    yr_str_t token = yr_ui_cookie(g->http);
    return token.len > 0 && yr_ui_session_find(token, master_key(g), now_ms(), csrf, expires_ms);
}

static bool csrf_ok(const yr_http_req_t *req, const char *csrf)
{
    yr_str_t h = yr_str_trim(yr_http_req_header(req, YR_STR("x-csrf-token")));
    return h.len == YR_UI_TOKEN_HEX && CRYPTO_memcmp(h.ptr, csrf, YR_UI_TOKEN_HEX) == 0;
}

int yr_ui_admin_session(yr_gw_req_t *g)
{
    char csrf[YR_UI_TOKEN_HEX + 1];
    if (!session_of(g, csrf, NULL)) {
        yr_gw_send_error(g, YR_E_UNAUTHORIZED, "the UI session is missing or expired: log in again",
                         NULL, "session_expired", YR_STR_NULL);
        return -1;
    }
    bool ok = origin_ok(g->http) && csrf_ok(g->http, csrf);
    OPENSSL_cleanse(csrf, sizeof(csrf));
    if (!ok) {
        yr_gw_send_error(g, YR_E_FORBIDDEN,
                         "a UI session call needs its x-csrf-token header and this origin", NULL,
                         "csrf_failed", YR_STR_NULL);
        return -1;
    }
    return 0;
}

/* A page or asset, with the security headers and what else is given. */
static void send_body(yr_gw_req_t *g, int status, yr_str_t type, yr_str_t body,
                      const yr_http_header_t *more, size_t nmore)
{
    yr_http_header_t h[12];
    size_t n = 0;
    h[n++] = (yr_http_header_t){YR_STR("x-request-id"), g->request_id};
    n += yr_ui_response_headers(g->http, h + n, 6);
    for (size_t i = 0; i < nmore && n < 12; i++)
        h[n++] = more[i];
    yr_http_respond(g->http, status, h, n, type, body);
}

static const yr_ui_asset_t *asset(yr_str_t name)
{
    for (const yr_ui_asset_t *a = yr_ui_assets; a->name != NULL; a++)
        if (yr_str_eq(name, yr_str(a->name)))
            return a;
    return NULL;
}

static void send_asset(yr_gw_req_t *g, const char *name)
{
    const yr_ui_asset_t *a = asset(yr_str(name));
    if (a == NULL) {
        yr_gw_send_error(g, YR_E_NOT_FOUND, "no such UI file", NULL, NULL, YR_STR_NULL);
        return;
    }
    send_body(g, 200, yr_str(a->content_type), (yr_str_t){(const char *)a->data, a->len}, NULL, 0);
}

static void redirect(yr_gw_req_t *g, const char *to)
{
    yr_http_header_t loc = {YR_STR("Location"), yr_str(to)};
    send_body(g, 303, YR_STR("text/plain; charset=utf-8"), YR_STR("see the login page\n"), &loc, 1);
}

/* Set-Cookie for token (NULL: the one that deletes it). */
static void cookie_header(const yr_gw_req_t *g, const char *token, char *buf, size_t len)
{
    snprintf(buf, len, COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%u%s",
             token != NULL ? token : "", token != NULL ? g->cfg->server.ui_session_ttl_s : 0,
             over_tls(g) ? "; Secure" : "");
}

/* The master key from the login body ({"password": ...}), or NULL after
 * sending the error. The caller frees *doc. */
static const char *login_password(yr_gw_req_t *g, json_t **doc, size_t *len)
{
    yr_http_req_t *req = g->http;
    yr_str_t type = yr_http_req_header(req, YR_STR("content-type"));
    /* JSON only: a cross-site HTML form cannot send it without a CORS
     * preflight, which we never answer. */
    if (!yr_str_has_prefix(type, YR_STR("application/json"))) {
        yr_gw_send_error(g, YR_E_INVALID_REQUEST, "send the login as application/json", NULL, NULL,
                         YR_STR_NULL);
        return NULL;
    }
    if (req->body.len > MAX_LOGIN_BODY) {
        yr_gw_send_error(g, YR_E_TOO_LARGE, "the login body is too large", NULL, NULL, YR_STR_NULL);
        return NULL;
    }
    json_t *j = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    json_t *pw = json_object_get(j, "password");
    if (!json_is_string(pw)) {
        json_decref(j);
        yr_gw_send_error(g, YR_E_INVALID_REQUEST, "the body must be {\"password\": \"...\"}",
                         "password", NULL, YR_STR_NULL);
        return NULL;
    }
    *doc = j;
    *len = json_string_length(pw);
    return json_string_value(pw);
}

static void login(yr_gw_req_t *g)
{
    int64_t now = now_ms();
    if (!origin_ok(g->http)) {
        yr_gw_send_error(g, YR_E_FORBIDDEN, "login from another origin", NULL, "csrf_failed",
                         YR_STR_NULL);
        return;
    }
    if (!yr_ui_login_allowed(now)) {
        yr_gw_send_error(g, YR_E_RATE_LIMITED, "too many failed logins: wait a minute", NULL,
                         "login_throttled", YR_STR("60"));
        return;
    }
    json_t *doc = NULL;
    size_t len = 0;
    const char *pw = login_password(g, &doc, &len);
    if (pw == NULL)
        return;
    bool ok = yr_ui_password_ok((yr_str_t){pw, len}, master_key(g));
    OPENSSL_cleanse((char *)pw, len); /* jansson's copy of the key, */
    json_decref(doc);
    if (g->http->body.data != NULL)
        OPENSSL_cleanse(g->http->body.data, g->http->body.len); /* and the request's */
    if (!ok) {
        yr_ui_login_failed(now);
        yr_log_warn("%s: admin UI login refused: wrong master key", g->id);
        yr_gw_send_error(g, YR_E_UNAUTHORIZED, "wrong master key", NULL, NULL, YR_STR_NULL);
        return;
    }
    char token[YR_UI_TOKEN_HEX + 1], csrf[YR_UI_TOKEN_HEX + 1], cookie[256], body[128];
    if (yr_ui_session_open(master_key(g), now, (int64_t)g->cfg->server.ui_session_ttl_s * 1000,
                           token, csrf) != 0) {
        yr_gw_send_error(g, YR_E_INTERNAL, "could not open a session", NULL, NULL, YR_STR_NULL);
        return;
    }
    cookie_header(g, token, cookie, sizeof(cookie));
    int n = snprintf(body, sizeof(body), "{\"csrf\":\"%s\",\"expires_in_s\":%u}", csrf,
                     g->cfg->server.ui_session_ttl_s);
    yr_http_header_t set = {YR_STR("Set-Cookie"), yr_str(cookie)};
    yr_log_info("%s: admin UI session opened", g->id);
    yr_gw_send_json(g, 200, (yr_str_t){body, (size_t)n}, &set, 1);
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(cookie, sizeof(cookie));
    OPENSSL_cleanse(csrf, sizeof(csrf));
}

static void logout(yr_gw_req_t *g)
{
    if (yr_ui_admin_session(g) != 0)
        return;
    yr_ui_session_close(yr_ui_cookie(g->http));
    char cookie[128];
    cookie_header(g, NULL, cookie, sizeof(cookie));
    yr_http_header_t set = {YR_STR("Set-Cookie"), yr_str(cookie)};
    yr_gw_send_json(g, 200, YR_STR("{\"logged_out\":true}"), &set, 1);
}

static void session_info(yr_gw_req_t *g)
{
    char csrf[YR_UI_TOKEN_HEX + 1], body[160];
    int64_t expires = 0;
    if (!session_of(g, csrf, &expires)) {
        yr_gw_send_error(g, YR_E_UNAUTHORIZED, "no UI session: log in", NULL, "session_expired",
                         YR_STR_NULL);
        return;
    }
    int64_t left = (expires - now_ms()) / 1000;
    int n = snprintf(body, sizeof(body), "{\"csrf\":\"%s\",\"expires_in_s\":%lld}", csrf,
                     (long long)(left > 0 ? left : 0));
    yr_gw_send_json(g, 200, (yr_str_t){body, (size_t)n}, NULL, 0);
    OPENSSL_cleanse(csrf, sizeof(csrf));
}

bool yr_ui_handle(yr_gw_req_t *g)
{
    yr_http_req_t *req = g->http;
    yr_str_t p = req->path;
    if (!yr_str_eq(p, YR_STR("/ui")) && !yr_str_has_prefix(p, YR_STR("/ui/")))
        return false;
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    bool post = req->method == HTTP_POST;
    if ((yr_str_eq(p, YR_STR("/ui")) || yr_str_eq(p, YR_STR("/ui/"))) && get) {
        if (session_of(g, NULL, NULL))
            send_asset(g, "index.html");
        else
            redirect(g, "/ui/login");
    } else if (yr_str_eq(p, YR_STR("/ui/login")) && get) {
        send_asset(g, "login.html");
    } else if (yr_str_eq(p, YR_STR("/ui/login")) && post) {
        login(g);
    } else if (yr_str_eq(p, YR_STR("/ui/logout")) && post) {
        logout(g);
    } else if (yr_str_eq(p, YR_STR("/ui/session")) && get) {
        session_info(g);
    } else if (yr_str_has_prefix(p, YR_STR("/ui/assets/")) && get) {
        yr_str_t name = {p.ptr + 11, p.len - 11};
        const yr_ui_asset_t *a = asset(name);
        /* The pages go through their routes (the app needs a session). */
        if (a == NULL || yr_str_has_prefix(yr_str(a->content_type), YR_STR("text/html")))
            yr_gw_send_error(g, YR_E_NOT_FOUND, "no such UI file", NULL, NULL, YR_STR_NULL);
        else
            send_asset(g, a->name);
    } else {
        yr_gw_send_error(g, YR_E_NOT_FOUND, "no such UI page", NULL, NULL, YR_STR_NULL);
    }
    return true;
}
