/* Image fetching and its SSRF guard.
 *
 * The first part drives the pure functions: yr_fetch_addr_allowed() over a
 * table of every refused range, its boundaries and every IPv6 form that
 * embeds an IPv4 address, allow entries, and the URL checks.
 *
 * The second part fetches for real: two of our HTTP servers (A and B) run
 * on 127.0.0.1 in this process, on the same uv loop as the upstream client,
 * and count the requests they receive, so "refused" is checked where it
 * matters: the server never saw the request. Nothing sleeps; each step runs
 * the loop until an event arrived (a watchdog turns a hang into a failure).
 * Each case runs in its own process. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <uv.h>

#include "providers/transport.h"
#include "server/http.h"
#include "upstream/fetch.h"
#include "upstream/upstream.h"

#define WATCHDOG_MS 15000

/* ---- addresses ----------------------------------------------------------------------- */

static const struct sockaddr *mk(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
    } else {
        fail_msg("bad test address %s", ip);
    }
    return (const struct sockaddr *)ss;
}

static bool allowed(const char *ip, uint16_t port, const yr_fetch_policy_t *pol)
{
    struct sockaddr_storage ss;
    return yr_fetch_addr_allowed(mk(ip, port, &ss), pol);
}

static const char *cls(const char *ip)
{
    struct sockaddr_storage ss;
    return yr_fetch_addr_class(mk(ip, 443, &ss));
}

typedef struct {
    const char *ip;
    const char *cls; /* NULL: allowed */
} row_t;

static void check_rows(const row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = cls(rows[i].ip);
        bool ok = allowed(rows[i].ip, 443, NULL);
        if (rows[i].cls == NULL) {
            if (!ok || got != NULL)
                fail_msg("%s should be allowed, got class %s", rows[i].ip, got ? got : "-");
        } else {
            if (ok)
                fail_msg("%s should be refused (%s)", rows[i].ip, rows[i].cls);
            if (got == NULL || strcmp(got, rows[i].cls) != 0)
                fail_msg("%s: class %s, expected %s", rows[i].ip, got ? got : "-", rows[i].cls);
        }
    }
}

#define ROWS(r) check_rows(r, sizeof(r) / sizeof(r[0]))

static void test_guard_ipv4_ranges(void **state)
{
    (void)state;
    static const row_t rows[] = {
        {"0.0.0.0", "unspecified"},
        {"0.255.255.255", "unspecified"},
        {"10.0.0.0", "private"},
        {"10.255.255.255", "private"},
        {"100.64.0.0", "shared (carrier-grade NAT)"},
        {"100.127.255.255", "shared (carrier-grade NAT)"},
        {"127.0.0.1", "loopback"},
        {"127.255.255.254", "loopback"},
        {"169.254.169.254", "link-local"}, /* cloud metadata */
        {"169.254.0.1", "link-local"},
        {"172.16.0.0", "private"},
        {"172.31.255.255", "private"},
        {"192.0.0.1", "IETF protocol assignment"},
        {"192.0.0.255", "IETF protocol assignment"},
        {"192.168.0.1", "private"},
        {"192.168.255.255", "private"},
        {"198.18.0.0", "benchmarking"},
        {"198.19.255.255", "benchmarking"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"240.0.0.1", "reserved"},
        {"254.255.255.255", "reserved"},
        {"255.255.255.255", "broadcast"},
    };
    ROWS(rows);
}

static void test_guard_ipv4_boundaries(void **state)
{
    (void)state;
    static const row_t rows[] = {
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        {"1.0.0.0", NULL},
        {"9.255.255.255", NULL},
        {"11.0.0.0", NULL},
        {"100.63.255.255", NULL},
        {"100.64.0.0", "shared (carrier-grade NAT)"},
        {"100.128.0.0", NULL},
        {"126.255.255.255", NULL},
        {"128.0.0.0", NULL},
        {"169.253.255.255", NULL},
        {"169.255.0.0", NULL},
        {"172.15.255.255", NULL},
        {"172.16.0.0", "private"},
        {"172.32.0.0", NULL},
        {"191.255.255.255", NULL},
        {"192.0.1.0", NULL},
        {"192.167.255.255", NULL},
        {"192.169.0.0", NULL},
        {"198.17.255.255", NULL},
        {"198.20.0.0", NULL},
        {"223.255.255.255", NULL},
        {"224.0.0.0", "multicast"},
    };
    ROWS(rows);
}

static void test_guard_ipv6_ranges(void **state)
{
    (void)state;
    static const row_t rows[] = {
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"fe80::1", "link-local"},
        {"febf:ffff::1", "link-local"},
        {"fec0::1", "site-local"},
        {"fc00::", "unique-local (private)"},
        {"fd12:3456:789a::1", "unique-local (private)"},
        {"ff02::1", "multicast"},
        {"ff0e::1", "multicast"},
        {"100::1", "discard-only"},
        {"64:ff9b:1::a00:1", "local-use NAT64"},
        /* public */
        {"2606:4700::1111", NULL},
        {"2001:4860:4860::8888", NULL},
        {"fbff:ffff::1", NULL},
        {"fe00::1", NULL},
        {"100:0:0:1::1", NULL},
    };
    ROWS(rows);
}

/* Every IPv6 spelling that reaches an IPv4 address is judged as that
 * address. */
static void test_guard_embedded_ipv4(void **state)
{
    (void)state;
    static const row_t rows[] = {
        {"::ffff:127.0.0.1", "loopback"}, /* IPv4-mapped */
        {"::ffff:7f00:1", "loopback"},
        {"::ffff:10.0.0.1", "private"},
        {"::ffff:169.254.169.254", "link-local"},
        {"::ffff:0.0.0.0", "unspecified"},
        {"::ffff:192.168.1.1", "private"},
        {"::127.0.0.1", "loopback"}, /* IPv4-compatible */
        {"::10.1.2.3", "private"},
        {"::0.0.0.2", "unspecified"},
        {"::ffff:0:127.0.0.1", "loopback"}, /* SIIT */
        {"::ffff:0:172.16.0.1", "private"},
        {"64:ff9b::127.0.0.1", "loopback"}, /* NAT64 */
        {"64:ff9b::10.0.0.1", "private"},
        {"64:ff9b::a9fe:a9fe", "link-local"},
        {"2002:7f00:1::1", "loopback"}, /* 6to4 */
        {"2002:c0a8:101::", "private"},
        /* public IPv4 inside: allowed */
        {"::ffff:8.8.8.8", NULL},
        {"64:ff9b::8.8.8.8", NULL},
        {"2002:808:808::1", NULL},
        {"::8.8.8.8", NULL},
    };
    ROWS(rows);
}

static void test_guard_other_families(void **state)
{
    (void)state;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_false(yr_fetch_addr_allowed((const struct sockaddr *)&un, NULL));
    assert_string_equal(yr_fetch_addr_class((const struct sockaddr *)&un), "not an IP address");
    assert_false(yr_fetch_addr_allowed(NULL, NULL));
    const char *any[] = {"0.0.0.0/0", "::/0"};
    yr_fetch_policy_t pol = {.allow = any, .nallow = 2};
    assert_false(yr_fetch_addr_allowed((const struct sockaddr *)&un, &pol));
}

static void test_guard_allow_cidr(void **state)
{
    (void)state;
    const char *a[] = {"10.0.0.0/8", "::1/128", "169.254.169.254", "fd00::/8", "192.168.1.7/16"};
    yr_fetch_policy_t pol = {.allow = a, .nallow = 5};
    assert_true(allowed("10.0.0.1", 443, &pol));
    assert_true(allowed("10.255.255.255", 80, &pol));
    assert_true(allowed("::ffff:10.1.2.3", 443, &pol)); /* the embedded address matches */
    assert_true(allowed("64:ff9b::10.1.2.3", 443, &pol));
    assert_true(allowed("::1", 1, &pol));
    assert_true(allowed("169.254.169.254", 80, &pol)); /* only by an explicit entry */
    assert_false(allowed("169.254.169.253", 80, &pol));
    assert_true(allowed("fd12::1", 443, &pol));
    assert_true(allowed("192.168.200.1", 443, &pol)); /* host bits of the entry ignored */
    assert_false(allowed("127.0.0.1", 443, &pol));
    assert_false(allowed("172.16.0.1", 443, &pol));
    assert_false(allowed("fc00::1", 443, &pol)); /* fc00::/8 is not fd00::/8 */
    assert_false(allowed("fe80::1", 443, &pol));
    /* Public addresses need no entry. */
    assert_true(allowed("8.8.8.8", 443, &pol));
    yr_fetch_policy_t none = {0};
    assert_false(allowed("10.0.0.1", 443, &none));
    /* An IPv4 entry does not stand for IPv6 loopback or unspecified. */
    const char *all4[] = {"0.0.0.0/0"};
    yr_fetch_policy_t v4 = {.allow = all4, .nallow = 1};
    assert_true(allowed("127.0.0.1", 80, &v4));
    assert_true(allowed("::ffff:127.0.0.1", 80, &v4));
    assert_false(allowed("::1", 80, &v4));
    assert_false(allowed("::", 80, &v4));
    assert_false(allowed("fe80::1", 80, &v4));
}

static void test_guard_allow_port(void **state)
{
    (void)state;
    const char *a[] = {"127.0.0.1/32:8080", "[::1]:9000", "[fd00::]/8:443", "10.0.0.0/8:5000"};
    yr_fetch_policy_t pol = {.allow = a, .nallow = 4};
    assert_true(allowed("127.0.0.1", 8080, &pol));
    assert_false(allowed("127.0.0.1", 8081, &pol));
    assert_false(allowed("127.0.0.2", 8080, &pol));
    assert_true(allowed("::ffff:127.0.0.1", 8080, &pol));
    assert_false(allowed("::ffff:127.0.0.1", 80, &pol));
    assert_true(allowed("::1", 9000, &pol));
    assert_false(allowed("::1", 9001, &pol));
    assert_true(allowed("fdab::1", 443, &pol));
    assert_false(allowed("fdab::1", 80, &pol));
    assert_true(allowed("10.9.9.9", 5000, &pol));
    assert_false(allowed("10.9.9.9", 5001, &pol));
}

static void test_allow_entry_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {
        "10.0.0.0/8",
        "127.0.0.1",
        "127.0.0.1:8080",
        "127.0.0.1/32:8080",
        "0.0.0.0/0",
        "::1",
        "::1/128",
        "[::1]",
        "[::1]:8080",
        "[fd00::]/8:443",
        "fd00::/8:443",
        "::/0",
        "::ffff:10.0.0.0/104",
    };
    static const char *const bad[] = {
        "",
        "nonsense",
        "10.0.0.0/33",
        "10.0.0.0/",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:",
        "127.0.0.1:80x",
        "1.2.3",
        "0177.0.0.1",
        "2130706433",
        "0x7f000001",
        "[::1",
        "[::1]x",
        "::1/129",
        "[::1]:",
        "10.0.0.0/8/8",
        "localhost",
        "127.0.0.1/-1",
        "[127.0.0.1]",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *err = "unset";
        if (!yr_fetch_allow_valid(good[i], &err))
            fail_msg("'%s' should be valid: %s", good[i], err);
        assert_null(err);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = NULL;
        if (yr_fetch_allow_valid(bad[i], &err))
            fail_msg("'%s' should be invalid", bad[i]);
        assert_non_null(err);
    }
    assert_false(yr_fetch_allow_valid(NULL, NULL));
    /* Invalid entries never let anything through. */
    yr_fetch_policy_t pol = {.allow = bad, .nallow = sizeof(bad) / sizeof(bad[0])};
    assert_false(allowed("127.0.0.1", 80, &pol));
    assert_false(allowed("10.0.0.0", 80, &pol));
}

/* ---- URL checks -------------------------------------------------------------------------- */

static int url_rc(const char *url, bool allow_http, char *reason, size_t cap)
{
    yr_fetch_policy_t pol = {.allow_http = allow_http};
    return yr_fetch_check_url(url, &pol, reason, cap);
}

static void expect_url_refused(const char *url, bool allow_http, const char *needle)
{
    char reason[YR_FETCH_MAX_REASON];
    if (url_rc(url, allow_http, reason, sizeof(reason)) != YR_FETCH_EURL)
        fail_msg("%s should be refused", url);
    if (strstr(reason, needle) == NULL)
        fail_msg("%s: reason '%s' lacks '%s'", url, reason, needle);
}

static void test_url_checks(void **state)
{
    (void)state;
    char reason[YR_FETCH_MAX_REASON];
    assert_int_equal(url_rc("https://example.com/a.png", false, reason, sizeof(reason)), 0);
    assert_string_equal(reason, "");
    assert_int_equal(url_rc("HTTPS://EXAMPLE.COM/a.png?x=1#f", false, reason, sizeof(reason)), 0);
    assert_int_equal(url_rc("http://example.com/a.png", true, reason, sizeof(reason)), 0);
    assert_int_equal(url_rc("https://[2606:4700::1111]:8443/a", false, reason, sizeof(reason)), 0);
    expect_url_refused("http://example.com/a.png", false, "must use https");
    expect_url_refused("file:///etc/passwd", true, "scheme 'file' is not allowed");
    expect_url_refused("ftp://example.com/a.png", true, "scheme 'ftp'");
    expect_url_refused("gopher://example.com:70/_x", true, "scheme 'gopher'");
    expect_url_refused("data:image/png;base64,iVBORw0KGgo=", true, "scheme 'data'");
    expect_url_refused("javascript:alert(1)", true, "scheme 'javascript'");
    expect_url_refused("dict://127.0.0.1:11211/stat", true, "scheme 'dict'");
    expect_url_refused("https://user:s3cr3t@example.com/a.png", false, "credentials");
    expect_url_refused("https://user@example.com/a.png", false, "credentials");
    expect_url_refused("https://:pw@example.com/a.png", false, "credentials");
    expect_url_refused("https://@example.com/a.png", false, "credentials");
    expect_url_refused("https:///a.png", false, "no host");
    expect_url_refused("https://", false, "no host");
    expect_url_refused("https:example.com/a.png", false, "no host");
    expect_url_refused("//example.com/a.png", false, "no scheme");
    expect_url_refused("example.com/a.png", false, "no scheme");
    expect_url_refused("", false, "empty");
    expect_url_refused("https://exa mple.com/", false, "space");
    expect_url_refused("https://example.com\\@127.0.0.1/", false, "backslash");
    expect_url_refused("https://example.com/\r\nHost: x", false, "control");
    /* The reason never carries the credentials. */
    url_rc("https://admin:hunter2@example.com/", false, reason, sizeof(reason));
    assert_null(strstr(reason, "hunter2"));
    assert_null(strstr(reason, "admin"));
    /* Length: 2048 bytes pass, 2049 do not. */
    char url[YR_FETCH_MAX_URL + 2];
    int n = snprintf(url, sizeof(url), "https://example.com/");
    memset(url + n, 'a', sizeof(url) - (size_t)n - 1);
    url[YR_FETCH_MAX_URL] = '\0';
    assert_int_equal(url_rc(url, false, reason, sizeof(reason)), 0);
    url[YR_FETCH_MAX_URL] = 'a';
    url[YR_FETCH_MAX_URL + 1] = '\0';
    expect_url_refused(url, false, "longer than 2048");
    assert_int_equal(yr_fetch_check_url(NULL, NULL, reason, sizeof(reason)), YR_FETCH_EURL);
}

static void test_sniff(void **state)
{
    (void)state;
    assert_string_equal(yr_fetch_sniff("\xff\xd8\xff\xe0\x00\x10JFIF", 10), "image/jpeg");
    assert_string_equal(yr_fetch_sniff("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "image/png");
    assert_string_equal(yr_fetch_sniff("GIF89a\x01\x00", 8), "image/gif");
    assert_string_equal(yr_fetch_sniff("GIF87a\x01\x00", 8), "image/gif");
    assert_string_equal(yr_fetch_sniff("RIFF\x24\0\0\0WEBPVP8 ", 16), "image/webp");
    assert_null(yr_fetch_sniff("RIFF\x24\0\0\0WAVEfmt ", 16));
    assert_null(yr_fetch_sniff("<html><body>", 12));
    assert_null(yr_fetch_sniff("\x89PNG", 4));
    assert_null(yr_fetch_sniff("", 0));
    assert_null(yr_fetch_sniff(NULL, 10));
}

/* ---- live fetches: the servers ---------------------------------------------------------- */

/* A 1x1 PNG. */
static const unsigned char png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

#define BIG_BYTES (64 * 1024)
#define CAP_BYTES (16 * 1024)

typedef struct {
    yr_http_server_t *srv;
    uint16_t port;
    int requests;
    char last_path[128];
    bool shut;
} srv_t;

typedef struct {
    bool done;
    int calls;
    int status;
    int http_status;
    char content_type[32];
    unsigned char data[256];
    size_t len;
    char reason[YR_FETCH_MAX_REASON];
    yr_fetch_t *cancel_other; /* cancelled from done */
} fres_t;

static struct {
    uv_loop_t loop;
    uv_timer_t watchdog;
    bool timed_out;
    yr_upstream_t *up;
    srv_t a, b;
    yr_http_req_t *held[4];
    int aborts;
    char allow_a[64];
    const char *allow[1];
} T;

static void on_held_abort(yr_http_req_t *req)
{
    T.aborts++;
    for (int i = 0; i < 4; i++)
        if (T.held[i] == req)
            T.held[i] = NULL;
}

static void redirect(yr_http_req_t *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void redirect(yr_http_req_t *req, const char *fmt, ...)
{
    char loc[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(loc, sizeof(loc), fmt, ap);
    va_end(ap);
    yr_http_header_t h[] = {{YR_STR("Location"), yr_str(loc)}};
    yr_http_respond(req, 302, h, 1, YR_STR("text/plain"), YR_STR("moved"));
}

static bool path_is(const yr_http_req_t *req, const char *p)
{
    return yr_str_eq(req->path, yr_str(p));
}

static void on_request(yr_http_req_t *req)
{
    srv_t *s = yr_http_server_ctx(req->server);
    s->requests++;
    snprintf(s->last_path, sizeof(s->last_path), "%.*s", (int)req->path.len, req->path.ptr);
    yr_str_t png_s = {(const char *)png, sizeof(png)};
    if (path_is(req, "/x.png")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("image/png"), png_s);
    } else if (path_is(req, "/octet")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("application/octet-stream"), png_s);
    } else if (path_is(req, "/lying.jpg")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("image/jpeg"), png_s);
    } else if (path_is(req, "/page")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("text/html; charset=utf-8"),
                        YR_STR("<!doctype html><html><body>not an image</body></html>"));
    } else if (path_is(req, "/tiny")) {
        yr_http_respond(req, 200, NULL, 0, YR_STR("image/png"), YR_STR("abc"));
    } else if (path_is(req, "/404")) {
        yr_http_respond(req, 404, NULL, 0, YR_STR("text/plain"), YR_STR("no such image"));
    } else if (path_is(req, "/big")) {
        /* Content-Length announces more than the cap. */
        static unsigned char big[BIG_BYTES];
        memcpy(big, png, 8);
        yr_http_respond(req, 200, NULL, 0, YR_STR("image/png"),
                        (yr_str_t){(const char *)big, sizeof(big)});
    } else if (path_is(req, "/stream-big")) {
        /* No length: only counting the body finds out. */
        static unsigned char piece[CAP_BYTES / 2];
        memcpy(piece, png, 8);
        int rc = yr_http_stream_start(req, 200, NULL, 0, YR_STR("image/png"));
        for (int i = 0; rc == 0 && i < BIG_BYTES / (int)sizeof(piece); i++)
            rc = yr_http_stream_write(req, piece, sizeof(piece));
        yr_http_stream_end(req, false);
    } else if (path_is(req, "/slow")) {
        for (int i = 0; i < 4; i++) {
            if (T.held[i] == NULL) {
                T.held[i] = req;
                req->on_abort = on_held_abort;
                return;
            }
        }
        fail_msg("too many held requests");
    } else if (path_is(req, "/limited")) {
        yr_http_header_t h[] = {
            {YR_STR("Retry-After"), YR_STR("7")},
            {YR_STR("retry-after-ms"), YR_STR("1500")},
            {YR_STR("x-ratelimit-remaining-requests"), YR_STR("42")},
            {YR_STR("x-ratelimit-remaining-tokens"), YR_STR("9000")},
            {YR_STR("x-ratelimit-reset-requests"), YR_STR("1m30s")},
            {YR_STR("x-ratelimit-reset-tokens"), YR_STR("250ms")},
        };
        yr_http_respond(req, 429, h, 6, YR_STR("application/json"), YR_STR("{}"));
    } else if (path_is(req, "/to-b")) {
        redirect(req, "http://127.0.0.1:%u/x.png", (unsigned)T.b.port);
    } else if (path_is(req, "/to-b-mapped")) {
        redirect(req, "http://[::ffff:127.0.0.1]:%u/x.png", (unsigned)T.b.port);
    } else if (path_is(req, "/to-self")) {
        redirect(req, "http://127.0.0.1:%u/x.png?via=redirect", (unsigned)T.a.port);
    } else if (path_is(req, "/loop")) {
        redirect(req, "/loop");
    } else if (path_is(req, "/to-file")) {
        redirect(req, "file:///etc/passwd");
    } else if (path_is(req, "/to-https")) {
        redirect(req, "https://127.0.0.1:%u/x.png", (unsigned)T.a.port);
    } else {
        yr_http_respond(req, 404, NULL, 0, YR_STR("text/plain"), YR_STR("not found"));
    }
}

static void on_watchdog(uv_timer_t *t)
{
    T.timed_out = true;
    (void)t;
}

static void pump_until(const bool *flag, const char *what)
{
    while (!*flag) {
        if (T.timed_out)
            fail_msg("timed out waiting for %s", what);
        uv_run(&T.loop, UV_RUN_ONCE);
    }
}

static void pump_until_int(const int *v, int at_least, const char *what)
{
    while (*v < at_least) {
        if (T.timed_out)
            fail_msg("timed out waiting for %s", what);
        uv_run(&T.loop, UV_RUN_ONCE);
    }
}

static void pump_a_little(void)
{
    for (int i = 0; i < 5; i++)
        uv_run(&T.loop, UV_RUN_NOWAIT);
}

static void server_start(srv_t *s)
{
    yr_http_opts_t o = {.max_body = 1024, .on_request = on_request, .ctx = s};
    assert_int_equal(yr_http_listen(&T.loop, "127.0.0.1", 0, false, &o, &s->srv), 0);
    s->port = yr_http_server_port(s->srv);
    assert_true(s->port != 0);
}

static void on_server_done(yr_http_server_t *srv)
{
    srv_t *s = yr_http_server_ctx(srv);
    s->shut = true;
}

static void server_stop(srv_t *s)
{
    if (s->srv == NULL)
        return;
    yr_http_server_shutdown(s->srv, on_server_done);
    yr_http_server_kill_all(s->srv);
    pump_until(&s->shut, "server shutdown");
    yr_http_server_free(s->srv);
    s->srv = NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    if (uv_loop_init(&T.loop) != 0)
        return -1;
    uv_timer_init(&T.loop, &T.watchdog);
    uv_timer_start(&T.watchdog, on_watchdog, WATCHDOG_MS, 0);
    if (yr_upstream_init(&T.loop, &T.up) != 0)
        return -1;
    server_start(&T.a);
    server_start(&T.b);
    snprintf(T.allow_a, sizeof(T.allow_a), "127.0.0.1/32:%u", (unsigned)T.a.port);
    T.allow[0] = T.allow_a;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    server_stop(&T.a);
    server_stop(&T.b);
    assert_int_equal(yr_upstream_active(T.up), 0);
    yr_upstream_close(T.up);
    uv_close((uv_handle_t *)&T.watchdog, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&T.loop), 0);
    return 0;
}

/* ---- live fetches: the client ------------------------------------------------------------ */

static void on_fetch_done(void *arg, const yr_fetch_result_t *r)
{
    fres_t *x = arg;
    x->calls++;
    x->done = true;
    x->status = r->status;
    x->http_status = r->http_status;
    assert_non_null(r->reason);
    snprintf(x->reason, sizeof(x->reason), "%s", r->reason);
    if (r->status == YR_FETCH_OK) {
        assert_non_null(r->content_type);
        assert_non_null(r->data);
        assert_string_equal(r->reason, "");
        snprintf(x->content_type, sizeof(x->content_type), "%s", r->content_type);
        assert_true(r->len <= sizeof(x->data));
        memcpy(x->data, r->data, r->len);
        x->len = r->len;
    } else {
        assert_null(r->data);
        assert_true(r->reason[0] != '\0');
    }
    if (x->cancel_other != NULL) {
        yr_fetch_cancel(x->cancel_other);
        x->cancel_other = NULL;
    }
}

static yr_fetch_t *fetch_begin(const char *url, const yr_fetch_policy_t *pol, fres_t *x)
{
    memset(x, 0, sizeof(*x));
    yr_fetch_t *f = NULL;
    assert_int_equal(yr_fetch_start(T.up, url, pol, on_fetch_done, x, &f), 0);
    assert_non_null(f);
    assert_false(x->done); /* never from inside yr_fetch_start */
    return f;
}

static void fetch(const char *url, const yr_fetch_policy_t *pol, fres_t *x)
{
    fetch_begin(url, pol, x);
    pump_until(&x->done, url);
    pump_a_little(); /* the fetch frees itself on the next turn */
    assert_int_equal(x->calls, 1);
    if (x->status != YR_FETCH_OK)
        assert_null(strstr(x->reason, "SECRET")); /* never the path or query */
}

static const char *url_a(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%u%s", (unsigned)T.a.port, path);
    return buf;
}

static yr_fetch_policy_t policy_a(void)
{
    return (yr_fetch_policy_t){.allow = T.allow, .nallow = 1, .allow_http = true};
}

/* Every spelling of this machine is refused at the address, so the server
 * never sees a connection, let alone a request. */
static void test_fetch_loopback_spellings_refused(void **state)
{
    (void)state;
    static const char *const hosts[] = {
        "127.0.0.1", "2130706433",         "0177.0.0.1", "0x7f000001", "127.1", "0x7f.1",
        "0.0.0.0",   "[::ffff:127.0.0.1]", "localhost",  "LOCALHOST",  "[::1]", "[::ffff:7f00:1]",
    };
    yr_fetch_policy_t pol = {.allow_http = true}; /* no exceptions */
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char url[256];
        snprintf(url, sizeof(url), "http://%s:%u/x.png?token=SECRET", hosts[i], (unsigned)T.a.port);
        fres_t r;
        fetch(url, &pol, &r);
        if (r.status != YR_FETCH_EBLOCKED)
            fail_msg("%s: status %d (%s)", url, r.status, r.reason);
        if (strstr(r.reason, "loopback") == NULL && strstr(r.reason, "unspecified") == NULL)
            fail_msg("%s: reason '%s'", url, r.reason);
        assert_non_null(strstr(r.reason, "host '"));
    }
    pump_a_little();
    assert_int_equal(T.a.requests, 0);
    assert_int_equal(yr_http_server_active(T.a.srv), 0);
}

static void test_fetch_allowed_png(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/x.png"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_OK);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.content_type, "image/png");
    assert_int_equal(r.len, sizeof(png));
    assert_memory_equal(r.data, png, sizeof(png));
    assert_int_equal(T.a.requests, 1);
    /* The exception is for port A only. */
    char other[128];
    snprintf(other, sizeof(other), "http://127.0.0.1:%u/x.png", (unsigned)T.b.port);
    fetch(other, &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EBLOCKED);
    assert_int_equal(T.b.requests, 0);
}

static void test_fetch_sniffed_type_wins(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/octet"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_OK);
    assert_string_equal(r.content_type, "image/png");
    fetch(url_a(url, sizeof(url), "/lying.jpg"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_OK);
    assert_string_equal(r.content_type, "image/png");
}

static void test_fetch_redirect_to_other_port_refused(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/to-b?SECRET"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EBLOCKED);
    assert_non_null(strstr(r.reason, "loopback"));
    assert_int_equal(T.a.requests, 1);
    fetch(url_a(url, sizeof(url), "/to-b-mapped"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EBLOCKED);
    assert_int_equal(T.a.requests, 2);
    pump_a_little();
    assert_int_equal(T.b.requests, 0);
    assert_int_equal(yr_http_server_active(T.b.srv), 0);
}

typedef struct {
    int heads;
    int status;
    bool done;
    enum yr_up_error err;
    size_t bytes;
    bool hints;
    yr_head_info_t head; /* what a transport's process_header read */
} plain_t;

static int plain_head(yr_upstream_call_t *call, void *data)
{
    plain_t *p = data;
    p->heads++;
    p->status = yr_upstream_status(call);
    p->hints = yr_upstream_has_hints(call);
    yr_transport_generic_head(NULL, call, &p->head);
    return YR_UP_CONTINUE;
}

static int plain_data(yr_upstream_call_t *call, const char *d, size_t n, void *data)
{
    plain_t *p = data;
    (void)call;
    (void)d;
    p->bytes += n;
    return YR_UP_CONTINUE;
}

static void plain_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    plain_t *p = data;
    (void)call;
    p->err = err;
    p->done = true;
}

static const yr_upstream_cbs_t plain_cbs = {plain_head, plain_data, plain_done};

/* An ordinary (unguarded) GET, as a provider call would be. */
static void plain_get(const char *url, long max_redirects, plain_t *p)
{
    memset(p, 0, sizeof(*p));
    yr_upstream_req_t req = {
        .url = url, .get = true, .max_redirects = max_redirects, .connect_timeout_ms = 5000};
    yr_upstream_call_t *call;
    assert_int_equal(yr_upstream_start(T.up, &req, &plain_cbs, p, &call), 0);
    pump_until(&p->done, url);
    pump_a_little();
}

/* process_header runs in the head callback: every hint is readable there. */
static void test_head_hints_reach_process_header(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/limited", (unsigned)T.a.port);
    plain_t p;
    plain_get(url, 0, &p);
    assert_int_equal(p.err, YR_UP_OK);
    assert_int_equal(p.status, 429);
    assert_true(p.hints);
    assert_int_equal(p.head.status, 429);
    assert_int_equal(p.head.retry_after_ms, 1500); /* retry-after-ms wins over Retry-After */
    assert_int_equal(p.head.remaining_requests, 42);
    assert_int_equal(p.head.remaining_tokens, 9000);
    assert_int_equal(p.head.reset_requests_ms, 90000);
    assert_int_equal(p.head.reset_tokens_ms, 250);
    /* an answer without hints: nothing parsed, every figure absent */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/x.png", (unsigned)T.a.port);
    plain_get(url, 0, &p);
    assert_false(p.hints);
    assert_int_equal(p.head.status, 200);
    assert_int_equal(p.head.retry_after_ms, -1);
    assert_int_equal(p.head.remaining_requests, -1);
    assert_int_equal(p.head.reset_tokens_ms, -1);
}

/* curl may reuse a cached connection when it follows a redirect. An idle
 * keep-alive connection to B left by an ordinary call must not carry the
 * fetch's redirect to B: the guard would never see a connect. */
static void test_fetch_redirect_cannot_reuse_idle_connection(void **state)
{
    (void)state;
    char url[128];
    plain_t p;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/x.png", (unsigned)T.b.port);
    plain_get(url, 0, &p);
    assert_int_equal(p.err, YR_UP_OK);
    assert_int_equal(p.status, 200);
    assert_int_equal(T.b.requests, 1);
    assert_int_equal(yr_http_server_active(T.b.srv), 1); /* idle, kept alive */

    yr_fetch_policy_t pol = policy_a();
    fres_t r;
    fetch(url_a(url, sizeof(url), "/to-b"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EBLOCKED);
    assert_int_equal(T.b.requests, 1);
    /* Nor the first hop. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/x.png", (unsigned)T.b.port);
    fetch(url, &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EBLOCKED);
    assert_int_equal(T.b.requests, 1);
}

/* A's own connections are not kept either: each fetch connects (and is
 * checked) anew. */
static void test_fetch_connections_not_kept(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/x.png"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_OK);
    bool closed = false;
    while (!closed) {
        if (T.timed_out)
            fail_msg("the fetch's connection stayed open");
        closed = yr_http_server_active(T.a.srv) == 0;
        if (!closed)
            uv_run(&T.loop, UV_RUN_ONCE);
    }
}

static void test_fetch_redirect_same_origin_followed(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/to-self"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_OK);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.content_type, "image/png");
    assert_int_equal(T.a.requests, 2);
    assert_string_equal(T.a.last_path, "/x.png");
    /* Redirects off: the 302 is the answer. */
    pol.no_redirects = true;
    fetch(url_a(url, sizeof(url), "/to-self"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EHTTP);
    assert_int_equal(r.http_status, 302);
    assert_int_equal(T.a.requests, 3);
}

static void test_fetch_redirect_limits(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    pol.max_redirects = 2;
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/loop"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ECONNECT);
    assert_int_equal(T.a.requests, 3); /* the first and two redirects */
    fetch(url_a(url, sizeof(url), "/to-file"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ECONNECT);
    assert_int_equal(T.a.requests, 4);
    /* A redirect to https stays inside the guard too (nothing listens for
     * TLS here: the handshake fails, after the guard let port A through). */
    fetch(url_a(url, sizeof(url), "/to-https"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ECONNECT);
}

static void test_fetch_schemes_refused_before_connect(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[160];
    const char *schemes[] = {"file", "ftp", "gopher", "data", "dict", "ldap", "tftp", "telnet"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strcmp(schemes[i], "data") == 0)
            snprintf(url, sizeof(url), "data:image/png;base64,iVBORw0KGgo=");
        else if (strcmp(schemes[i], "file") == 0)
            snprintf(url, sizeof(url), "file:///etc/passwd");
        else
            snprintf(url, sizeof(url), "%s://127.0.0.1:%u/x.png", schemes[i], (unsigned)T.a.port);
        fres_t r;
        fetch_begin(url, &pol, &r);
        assert_int_equal(yr_upstream_active(T.up), 0); /* no transfer at all */
        pump_until(&r.done, url);
        assert_int_equal(r.status, YR_FETCH_EURL);
        assert_non_null(strstr(r.reason, "is not allowed"));
    }
    pump_a_little();
    assert_int_equal(T.a.requests, 0);
}

static void test_fetch_https_required(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    pol.allow_http = false;
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/x.png"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EURL);
    assert_non_null(strstr(r.reason, "https"));
    assert_int_equal(T.a.requests, 0);
}

static void test_fetch_too_big(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    pol.max_bytes = CAP_BYTES;
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/big"), &pol, &r); /* Content-Length */
    assert_int_equal(r.status, YR_FETCH_ETOOBIG);
    assert_non_null(strstr(r.reason, "larger than 16384 bytes"));
    fetch(url_a(url, sizeof(url), "/stream-big"), &pol, &r); /* chunked: counted */
    assert_int_equal(r.status, YR_FETCH_ETOOBIG);
    assert_int_equal(T.a.requests, 2);
    /* Right at the cap is fine. */
    pol.max_bytes = sizeof(png);
    fetch(url_a(url, sizeof(url), "/x.png"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_OK);
    pol.max_bytes = sizeof(png) - 1;
    fetch(url_a(url, sizeof(url), "/x.png"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ETOOBIG);
}

static void test_fetch_timeout(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    pol.timeout_ms = 200;
    char url[128];
    fres_t r;
    uint64_t t0 = uv_now(&T.loop);
    fetch(url_a(url, sizeof(url), "/slow"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ETIMEDOUT);
    assert_non_null(strstr(r.reason, "within 200 ms"));
    assert_true(uv_now(&T.loop) - t0 >= 200);
    assert_int_equal(T.a.requests, 1);
    pump_until_int(&T.aborts, 1, "the server to see the client go");
}

static void test_fetch_not_an_image(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/page"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ENOTIMAGE);
    assert_non_null(strstr(r.reason, "'text/html'"));
    assert_non_null(strstr(r.reason, "host '127.0.0.1'"));
    fetch(url_a(url, sizeof(url), "/tiny"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ENOTIMAGE);
    fetch(url_a(url, sizeof(url), "/404"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EHTTP);
    assert_int_equal(r.http_status, 404);
    assert_non_null(strstr(r.reason, "HTTP 404"));
}

static void test_fetch_userinfo_rejected(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[160];
    fres_t r;
    snprintf(url, sizeof(url), "http://alice:SECRETpw@127.0.0.1:%u/x.png", (unsigned)T.a.port);
    fetch(url, &pol, &r);
    assert_int_equal(r.status, YR_FETCH_EURL);
    assert_null(strstr(r.reason, "SECRETpw"));
    assert_null(strstr(r.reason, "alice"));
    assert_non_null(strstr(r.reason, "credentials"));
    assert_int_equal(T.a.requests, 0);
}

static void test_fetch_cancel(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t r;
    yr_fetch_t *f = fetch_begin(url_a(url, sizeof(url), "/slow"), &pol, &r);
    pump_until_int(&T.a.requests, 1, "the request");
    yr_fetch_cancel(f);
    pump_until_int(&T.aborts, 1, "the server to see the client go");
    assert_int_equal(r.calls, 0);
    assert_int_equal(yr_upstream_active(T.up), 0);
    /* A refusal waiting to be reported can be cancelled too. */
    f = fetch_begin("ftp://example.com/x.png", &pol, &r);
    yr_fetch_cancel(f);
    pump_a_little();
    assert_int_equal(r.calls, 0);
    yr_fetch_cancel(NULL);
}

/* The first result arrives while another fetch is in flight; cancelling it
 * from done (e.g. one image failed, the request is lost) is allowed. */
static void test_fetch_cancel_other_from_done(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    char url[128];
    fres_t slow, quick;
    yr_fetch_t *fs = fetch_begin(url_a(url, sizeof(url), "/slow"), &pol, &slow);
    pump_until_int(&T.a.requests, 1, "the slow request");
    fetch_begin(url_a(url, sizeof(url), "/x.png"), &pol, &quick);
    quick.cancel_other = fs;
    pump_until(&quick.done, "the quick fetch");
    assert_int_equal(quick.status, YR_FETCH_OK);
    pump_until_int(&T.aborts, 1, "the server to see the slow client go");
    assert_int_equal(slow.calls, 0);
    assert_int_equal(yr_upstream_active(T.up), 0);
}

/* Easy handles are reused: after a guarded fetch, an ordinary call on the
 * same client must not inherit the guard, the redirect settings, the size
 * cap or the connection cache. */
static void test_upstream_options_do_not_leak(void **state)
{
    (void)state;
    yr_fetch_policy_t pol = policy_a();
    pol.max_bytes = 10;
    char url[128];
    fres_t r;
    fetch(url_a(url, sizeof(url), "/x.png"), &pol, &r);
    assert_int_equal(r.status, YR_FETCH_ETOOBIG);
    plain_t p;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/x.png", (unsigned)T.b.port);
    plain_get(url, 0, &p); /* B is not in the fetch's allow list */
    assert_int_equal(p.err, YR_UP_OK);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.bytes, sizeof(png));
    plain_get(url_a(url, sizeof(url), "/to-self"), 0, &p); /* no redirects followed */
    assert_int_equal(p.err, YR_UP_OK);
    assert_int_equal(p.status, 302);
    assert_int_equal(p.heads, 1);
}

/* With redirects followed, on_head runs once, for the final response. */
static void test_upstream_redirect_single_head(void **state)
{
    (void)state;
    char url[128];
    plain_t p;
    plain_get(url_a(url, sizeof(url), "/to-self"), 3, &p);
    assert_int_equal(p.err, YR_UP_OK);
    assert_int_equal(p.heads, 1);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.bytes, sizeof(png));
    assert_int_equal(T.a.requests, 2);
}

/* ---- runner ------------------------------------------------------------------------------ */

static void run_forked(void (*body)(void **), const char *name)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("CMOCKA_TEST_ABORT", "1", 1);
        void *st = NULL;
        if (setup(&st) != 0)
            _exit(3);
        body(&st);
        teardown(&st);
        curl_global_cleanup();
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("%s: child killed by signal %d", name, WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s: child exited with %d", name, WEXITSTATUS(status));
}

#define LIVE_TESTS(X)                                                                              \
    X(test_fetch_loopback_spellings_refused)                                                       \
    X(test_fetch_allowed_png)                                                                      \
    X(test_fetch_sniffed_type_wins)                                                                \
    X(test_fetch_redirect_to_other_port_refused)                                                   \
    X(test_head_hints_reach_process_header)                                                        \
    X(test_fetch_redirect_cannot_reuse_idle_connection)                                            \
    X(test_fetch_connections_not_kept)                                                             \
    X(test_fetch_redirect_same_origin_followed)                                                    \
    X(test_fetch_redirect_limits)                                                                  \
    X(test_fetch_schemes_refused_before_connect)                                                   \
    X(test_fetch_https_required)                                                                   \
    X(test_fetch_too_big)                                                                          \
    X(test_fetch_timeout)                                                                          \
    X(test_fetch_not_an_image)                                                                     \
    X(test_fetch_userinfo_rejected)                                                                \
    X(test_fetch_cancel)                                                                           \
    X(test_fetch_cancel_other_from_done)                                                           \
    X(test_upstream_options_do_not_leak)                                                           \
    X(test_upstream_redirect_single_head)

#define FORKED_WRAPPER(name)                                                                       \
    static void forked_##name(void **state)                                                        \
    {                                                                                              \
        (void)state;                                                                               \
        run_forked(name, #name);                                                                   \
    }
LIVE_TESTS(FORKED_WRAPPER)

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
#define FORKED_ENTRY(name) {#name, forked_##name, NULL, NULL, NULL},
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_guard_ipv4_ranges),
                                       cmocka_unit_test(test_guard_ipv4_boundaries),
                                       cmocka_unit_test(test_guard_ipv6_ranges),
                                       cmocka_unit_test(test_guard_embedded_ipv4),
                                       cmocka_unit_test(test_guard_other_families),
                                       cmocka_unit_test(test_guard_allow_cidr),
                                       cmocka_unit_test(test_guard_allow_port),
                                       cmocka_unit_test(test_allow_entry_syntax),
                                       cmocka_unit_test(test_url_checks),
                                       cmocka_unit_test(test_sniff),
                                       LIVE_TESTS(FORKED_ENTRY)};
#undef FORKED_ENTRY
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
