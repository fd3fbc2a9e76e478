/* Image fetching behind an SSRF guard.
 *
 * Where the guard sits matters more than what it says. Checking the URL's
 * host string is not enough: "2130706433", "0x7f000001", "0177.0.0.1",
 * "localhost", "[::ffff:127.0.0.1]", a public name whose DNS answers
 * 10.0.0.1 (or answers a public address to the check and 10.0.0.1 to the
 * connect: DNS rebinding) and a redirect to any of those all reach the
 * inside. So the guard runs in curl's opensocket callback, on the address
 * the socket is about to connect to, for every connect of the fetch, and
 * the upstream module makes sure no connection reaches a guarded call
 * without that callback (no proxy, no reused connection: upstream.h). The
 * URL checks before starting only give early, clear errors for schemes and
 * credentials; they are not what keeps the inside safe. */
#include "upstream/fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"

#define MAX_HOST 256        /* bytes of the host kept for reasons, NUL included */
#define MAX_ALLOW_ENTRY 96  /* longest allow entry accepted */
#define MAX_SCHEME 16       /* longer "schemes" are not ones we allow anyway */
#define SNIFF_BYTES 12      /* enough to tell the four image formats apart */
#define CURL_SLACK_MS 1000u /* curl's own timeout is a backstop behind ours */

/* ---- addresses ------------------------------------------------------------------ */

typedef struct {
    int family;    /* AF_INET or AF_INET6 */
    uint8_t b[16]; /* network order; IPv4 in b[0..3] */
    uint16_t port; /* host order */
} addr_t;

typedef struct {
    uint8_t net[16];
    uint8_t bits;
    const char *cls;
} range_t;

/* Refused IPv4 ranges. 255.255.255.255 comes before 240/4 to be named. */
static const range_t deny4[] = {
    {{0, 0, 0, 0}, 8, "unspecified"},
    {{10, 0, 0, 0}, 8, "private"},
    {{100, 64, 0, 0}, 10, "shared (carrier-grade NAT)"},
    {{127, 0, 0, 0}, 8, "loopback"},
    {{169, 254, 0, 0}, 16, "link-local"}, /* with the 169.254.169.254 metadata service */
    {{172, 16, 0, 0}, 12, "private"},
    {{192, 0, 0, 0}, 24, "IETF protocol assignment"},
    {{192, 168, 0, 0}, 16, "private"},
    {{198, 18, 0, 0}, 15, "benchmarking"},
    {{224, 0, 0, 0}, 4, "multicast"},
    {{255, 255, 255, 255}, 32, "broadcast"},
    {{240, 0, 0, 0}, 4, "reserved"},
};

/* Refused IPv6 ranges, before the embedded-IPv4 forms are looked at. */
static const range_t deny6[] = {
    {{0}, 128, "unspecified"},
    {{[15] = 1}, 128, "loopback"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xfe, 0xc0}, 10, "site-local"},
    {{0xfc}, 7, "unique-local (private)"},
    {{0xff}, 8, "multicast"},
    {{0x01, 0x00}, 64, "discard-only"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "local-use NAT64"},
};

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rem = bits % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rem));
    return (a[full] & mask) == (net[full] & mask);
}

static bool load_addr(const struct sockaddr *sa, addr_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof(s4));
        out->family = AF_INET;
        memcpy(out->b, &s4.sin_addr, 4);
        out->port = ntohs(s4.sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof(s6));
        out->family = AF_INET6;
        memcpy(out->b, &s6.sin6_addr, 16);
        out->port = ntohs(s6.sin6_port);
        return true;
    }
    return false;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* The IPv4 address an IPv6 address carries and reaches, in the forms a
 * host or a translator on the path turns into an IPv4 connection:
 * ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT), ::a.b.c.d (compatible),
 * 64:ff9b::a.b.c.d (NAT64 well-known prefix), 2002:AABB:CCDD::/48 (6to4). */
static bool embedded_v4(const uint8_t *b, uint8_t v4[4])
{
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    bool mapped = all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff;
    bool siit = all_zero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0;
    bool compat = all_zero(b, 12) && !(all_zero(b + 12, 3) && b[15] <= 1); /* not :: or ::1 */
    if (mapped || siit || compat || memcmp(b, nat64, 12) == 0) {
        memcpy(v4, b + 12, 4);
        return true;
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        memcpy(v4, b + 2, 4);
        return true;
    }
    return false;
}

static const char *class_of(const range_t *t, size_t n, const uint8_t *b)
{
    for (size_t i = 0; i < n; i++)
        if (prefix_match(b, t[i].net, t[i].bits))
            return t[i].cls;
    return NULL;
}

static const char *addr_class(const addr_t *a)
{
    if (a->family == AF_INET)
        return class_of(deny4, sizeof(deny4) / sizeof(deny4[0]), a->b);
    const char *cls = class_of(deny6, sizeof(deny6) / sizeof(deny6[0]), a->b);
    uint8_t v4[4];
    if (cls == NULL && embedded_v4(a->b, v4))
        cls = class_of(deny4, sizeof(deny4) / sizeof(deny4[0]), v4);
    return cls;
}

const char *yr_fetch_addr_class(const struct sockaddr *sa)
{
    addr_t a;
    if (!load_addr(sa, &a))
        return "not an IP address";
    return addr_class(&a);
}

/* ---- allow entries ----------------------------------------------------------------- */

typedef struct {
    int family;
    uint8_t net[16];
    unsigned bits;
    int port; /* -1: any */
} cidr_t;

static int parse_num(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    return yr_str_to_u64((yr_str_t){p, n}, max, out);
}

/* "/bits" (optional) then ":port" (optional) after an address. */
static const char *parse_suffix(const char *p, const char *end, cidr_t *c)
{
    unsigned maxbits = c->family == AF_INET ? 32 : 128;
    c->bits = maxbits;
    c->port = -1;
    uint64_t v;
    if (p < end && *p == '/') {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *stop = colon ? colon : end;
        if (parse_num(p + 1, (size_t)(stop - p - 1), maxbits, &v) < 0)
            return c->family == AF_INET ? "the prefix length must be 0 to 32"
                                        : "the prefix length must be 0 to 128";
        c->bits = (unsigned)v;
        p = stop;
    }
    if (p < end && *p == ':') {
        if (parse_num(p + 1, (size_t)(end - p - 1), 65535, &v) < 0 || v == 0)
            return "the port must be 1 to 65535";
        c->port = (int)v;
        p = end;
    }
    return p == end ? NULL : "unexpected characters after the address";
}

static const char *parse_allow(const char *s, cidr_t *c)
{
    memset(c, 0, sizeof(*c));
    if (s == NULL)
        return "the entry is empty";
    size_t len = strnlen(s, MAX_ALLOW_ENTRY + 1);
    if (len == 0)
        return "the entry is empty";
    if (len > MAX_ALLOW_ENTRY)
        return "the entry is too long";
    const char *end = s + len, *a, *ae;
    if (s[0] == '[') { /* [v6], [v6]:port, [v6]/bits:port */
        const char *rb = memchr(s, ']', len);
        if (rb == NULL)
            return "'[' without ']'";
        a = s + 1;
        ae = rb;
        c->family = AF_INET6;
    } else {
        size_t colons = 0;
        for (const char *p = s; p < end; p++)
            colons += *p == ':';
        a = s;
        if (colons >= 2) { /* v6, v6/bits, v6/bits:port: a port needs the '/' or brackets */
            const char *slash = memchr(s, '/', len);
            ae = slash ? slash : end;
            c->family = AF_INET6;
        } else { /* v4, v4:port, v4/bits, v4/bits:port */
            ae = s + strcspn(s, "/:");
            c->family = AF_INET;
        }
    }
    char buf[INET6_ADDRSTRLEN + 1];
    size_t alen = (size_t)(ae - a);
    if (alen == 0 || alen >= sizeof(buf))
        return "no valid address";
    memcpy(buf, a, alen);
    buf[alen] = '\0';
    if (inet_pton(c->family, buf, c->net) != 1)
        return c->family == AF_INET ? "not a valid IPv4 address (use a.b.c.d)"
                                    : "not a valid IPv6 address";
    const char *err = parse_suffix(s[0] == '[' ? ae + 1 : ae, end, c);
    if (err != NULL)
        return err;
    /* Clear the host bits: 10.1.2.3/8 means 10.0.0.0/8. */
    for (unsigned i = c->bits; i < (c->family == AF_INET ? 32u : 128u); i++)
        c->net[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return NULL;
}

bool yr_fetch_allow_valid(const char *entry, const char **err)
{
    cidr_t c;
    const char *e = parse_allow(entry, &c);
    if (err != NULL)
        *err = e;
    return e == NULL;
}

static bool allow_match(const cidr_t *c, const addr_t *a)
{
    if (c->port >= 0 && c->port != a->port)
        return false;
    if (c->family == AF_INET6)
        return a->family == AF_INET6 && prefix_match(a->b, c->net, c->bits);
    uint8_t v4[4];
    if (a->family == AF_INET)
        return prefix_match(a->b, c->net, c->bits);
    return embedded_v4(a->b, v4) && prefix_match(v4, c->net, c->bits);
}

bool yr_fetch_addr_allowed(const struct sockaddr *sa, const yr_fetch_policy_t *pol)
{
    addr_t a;
    if (!load_addr(sa, &a))
        return false;
    if (addr_class(&a) == NULL)
        return true;
    for (size_t i = 0; pol != NULL && pol->allow != NULL && i < pol->nallow; i++) {
        cidr_t c;
        if (parse_allow(pol->allow[i], &c) == NULL && allow_match(&c, &a))
            return true;
    }
    return false;
}

/* ---- content ------------------------------------------------------------------------ */

const char *yr_fetch_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (p == NULL)
        return NULL;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return "image/jpeg";
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return "image/gif";
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return "image/webp";
    return NULL;
}

/* Copies what a reason may quote from the outside (a host, a media type,
 * curl's error text): printable ASCII only, capped, stopped at stop. */
static void quote_safe(char *dst, size_t cap, const char *src, size_t n, char stop)
{
    size_t o = 0;
    for (size_t i = 0; i < n && src[i] != '\0' && src[i] != stop && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[o] = '\0';
}

/* ---- URL checks --------------------------------------------------------------------- */

static int url_fail(char *reason, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int url_fail(char *reason, size_t cap, const char *fmt, ...)
{
    if (reason != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, cap, fmt, ap);
        va_end(ap);
    }
    return YR_FETCH_EURL;
}

/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static bool is_scheme_char(char c, bool first)
{
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return alpha || (!first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
}

/* Checks url against pol; on success the host (for reasons) goes to host and,
 * when norm is not NULL, curl's normalised URL to *norm (curl_free it). */
static int check_url(const char *url, const yr_fetch_policy_t *pol, char *reason, size_t cap,
                     char *host, size_t hostcap, char **norm)
{
    size_t len = url != NULL ? strnlen(url, YR_FETCH_MAX_URL + 1) : 0;
    if (len == 0)
        return url_fail(reason, cap, "the image URL is empty");
    if (len > YR_FETCH_MAX_URL)
        return url_fail(reason, cap, "the image URL is longer than %d bytes", YR_FETCH_MAX_URL);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '\\')
            return url_fail(reason, cap,
                            "the image URL contains a space, a control character "
                            "or a backslash");
    }
    size_t slen = 0;
    while (slen < len && slen < MAX_SCHEME && is_scheme_char(url[slen], slen == 0))
        slen++;
    if (slen == 0 || slen >= len || url[slen] != ':')
        return url_fail(reason, cap, "the image URL has no scheme (use https://)");
    yr_str_t scheme = {url, slen};
    bool https = yr_str_ieq(scheme, YR_STR("https"));
    bool http = yr_str_ieq(scheme, YR_STR("http"));
    if (http && !pol->allow_http)
        return url_fail(reason, cap, "image URLs must use https (http is not allowed here)");
    if (!https && !http)
        return url_fail(reason, cap, "the image URL scheme '%.*s' is not allowed (use https)",
                        (int)slen, url);
    const char *auth = url + slen + 1;
    if (len - slen - 1 < 2 || auth[0] != '/' || auth[1] != '/')
        return url_fail(reason, cap, "the image URL has no host");
    auth += 2;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0) /* curl would take "https:///x" as host "x" */
        return url_fail(reason, cap, "the image URL has no host");
    if (memchr(auth, '@', alen) != NULL)
        return url_fail(reason, cap, "image URLs must not contain credentials (user:password@)");

    CURLU *u = curl_url();
    if (u == NULL)
        return -ENOMEM;
    char *h = NULL, *user = NULL;
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        rc = url_fail(reason, cap, "the image URL is not a valid URL");
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        rc = url_fail(reason, cap, "image URLs must not contain credentials (user:password@)");
    } else if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || h == NULL || h[0] == '\0') {
        rc = url_fail(reason, cap, "the image URL has no host");
    } else {
        quote_safe(host, hostcap, h, strlen(h), '\0');
        if (norm != NULL && curl_url_get(u, CURLUPART_URL, norm, 0) != CURLUE_OK)
            rc = -ENOMEM;
    }
    curl_free(h);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

int yr_fetch_check_url(const char *url, const yr_fetch_policy_t *pol, char *reason,
                       size_t reason_cap)
{
    static const yr_fetch_policy_t none = {0};
    char host[MAX_HOST];
    if (reason != NULL && reason_cap > 0)
        reason[0] = '\0';
    int rc =
        check_url(url, pol != NULL ? pol : &none, reason, reason_cap, host, sizeof(host), NULL);
    return rc == -ENOMEM ? url_fail(reason, reason_cap, "out of memory") : rc;
}

/* ---- fetches ------------------------------------------------------------------------- */

enum fetch_state {
    FS_NEW,
    FS_RUNNING,  /* the call is in flight */
    FS_DEFERRED, /* failed before connecting: done runs from the timer */
    FS_ENDED,    /* done ran or the owner cancelled: the timer is closing */
};

struct yr_fetch {
    yr_upstream_t *up;
    yr_upstream_call_t *call;
    yr_fetch_policy_t pol;
    yr_fetch_done_fn done;
    void *arg;
    enum fetch_state state;
    uv_timer_t timer; /* the total timeout, or the deferred report */
    yr_buf_t body;    /* capped at pol.max_bytes */
    uint64_t charged; /* bytes charged to pol.budgets */
    const yr_fetch_budget_t *over; /* the budget that refused, or NULL */
    int status;       /* the first failure recorded, 0 while none */
    int http_status;
    const char *image_type;
    const char *refused_class; /* the guard's last refusal */
    bool last_refused;         /* the last connect the guard saw was refused */
    char host[MAX_HOST];
    char reason[YR_FETCH_MAX_REASON];
};

static const char *const fetch_headers[] = {
    "Accept: image/jpeg, image/png, image/gif, image/webp",
    "User-Agent: yourouter-image-fetch",
    NULL,
};

static void set_state(yr_fetch_t *f, enum fetch_state s)
{
    static const char *const names[] = {"NEW", "RUNNING", "DEFERRED", "ENDED"};
    yr_log_debug("fetch %p: %s -> %s", (void *)f, names[f->state], names[s]);
    f->state = s;
}

static void fail(yr_fetch_t *f, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first failure only: later ones are consequences of it. */
static void fail(yr_fetch_t *f, int status, const char *fmt, ...)
{
    if (f->status != 0)
        return;
    f->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
    va_end(ap);
}

static void on_timer_closed(uv_handle_t *h)
{
    yr_fetch_t *f = h->data;
    free(f);
}

/* Whether n more body bytes fit every budget (else the failure is
 * recorded); charge() takes them from every budget, or from none. */
static bool fits(yr_fetch_t *f, uint64_t n)
{
    for (size_t i = 0; i < 2; i++) {
        const yr_fetch_budget_t *b = f->pol.budgets[i];
        if (b != NULL && b->cap > 0 && (b->used > b->cap || n > b->cap - b->used)) {
            if (f->status == 0)
                f->over = b;
            fail(f, YR_FETCH_ETOOBIG,
                 "the image at host '%s' would take %s past %llu bytes (%s)", f->host, b->what,
                 (unsigned long long)b->cap, b->setting);
            return false;
        }
    }
    return true;
}

static bool charge(yr_fetch_t *f, size_t n)
{
    if (!fits(f, n))
        return false;
    for (size_t i = 0; i < 2; i++)
        if (f->pol.budgets[i] != NULL)
            f->pol.budgets[i]->used += n;
    f->charged += n;
    return true;
}

static void uncharge(yr_fetch_t *f)
{
    for (size_t i = 0; i < 2; i++) {
        yr_fetch_budget_t *b = f->pol.budgets[i];
        if (b != NULL && b->release)
            b->used -= f->charged < b->used ? f->charged : b->used;
    }
    f->charged = 0;
}

/* Frees the fetch once its timer has closed (on a later loop turn). */
static void release(yr_fetch_t *f)
{
    uncharge(f);
    yr_buf_free(&f->body);
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, on_timer_closed);
}

/* Reports the outcome once, then frees the fetch. */
static void finish(yr_fetch_t *f)
{
    yr_fetch_result_t res = {
        .status = f->status,
        .http_status = f->http_status,
        .reason = f->status == 0 ? "" : f->reason,
        .over = f->over,
    };
    if (f->status == 0) {
        res.content_type = f->image_type;
        res.data = (const unsigned char *)f->body.data;
        res.len = f->body.len;
    }
    set_state(f, FS_ENDED); /* so a cancel from inside done is a no-op */
    f->done(f->arg, &res);
    release(f);
}

static void on_timer(uv_timer_t *t)
{
    yr_fetch_t *f = t->data;
    if (f->state == FS_RUNNING) {
        yr_upstream_cancel(f->call);
        f->call = NULL;
        fail(f, YR_FETCH_ETIMEDOUT, "the image host '%s' did not deliver the image within %u ms",
             f->host, (unsigned)f->pol.timeout_ms);
    }
    finish(f);
}

/* The guard, right before every connect: refuse (no socket, no packet) or
 * create the socket curl asked for. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address)
{
    yr_fetch_t *f = clientp;
    const struct sockaddr *sa = &address->addr;
    bool sized = (address->family == AF_INET && address->addrlen >= sizeof(struct sockaddr_in)) ||
                 (address->family == AF_INET6 && address->addrlen >= sizeof(struct sockaddr_in6));
    bool ok = purpose == CURLSOCKTYPE_IPCXN && sized && yr_fetch_addr_allowed(sa, &f->pol);
    f->last_refused = !ok;
    if (!ok) {
        const char *cls = sized ? yr_fetch_addr_class(sa) : NULL;
        f->refused_class = cls != NULL ? cls : "non-IP";
        char ip[INET6_ADDRSTRLEN] = "?";
        addr_t a = {0};
        if (sized && load_addr(sa, &a))
            inet_ntop(a.family, a.b, ip, sizeof(ip));
        yr_log_info("image fetch from host '%s': refused to connect to %s port %u (%s)", f->host,
                    ip, sized ? (unsigned)a.port : 0u, f->refused_class);
        return CURL_SOCKET_BAD;
    }
    int type = address->socktype;
#ifdef SOCK_CLOEXEC
    type |= SOCK_CLOEXEC;
#endif
    return socket(address->family, type, address->protocol);
}

static int on_head(yr_upstream_call_t *call, void *data)
{
    yr_fetch_t *f = data;
    f->http_status = yr_upstream_status(call);
    if (f->http_status < 200 || f->http_status > 299) {
        fail(f, YR_FETCH_EHTTP, "the image host '%s' answered HTTP %d", f->host, f->http_status);
        return YR_UP_ABORT; /* no need for the error page */
    }
    /* A length that cannot fit a budget is refused before its first byte. */
    uint64_t len;
    yr_str_t cl = yr_upstream_header(call, "content-length");
    if (cl.len > 0 && yr_str_to_u64(cl, UINT64_MAX, &len) == 0 && len > 0 &&
        len <= f->pol.max_bytes) {
        if (!fits(f, len))
            return YR_UP_ABORT; /* charged byte by byte as they come */
    }
    return YR_UP_CONTINUE;
}

static void not_an_image(yr_fetch_t *f, yr_upstream_call_t *call)
{
    char declared[64];
    yr_str_t ct = yr_upstream_content_type(call);
    quote_safe(declared, sizeof(declared), ct.ptr, ct.len, ';');
    fail(f, YR_FETCH_ENOTIMAGE,
         "the file at image host '%s' is not a JPEG, PNG, GIF or WebP image (it was sent as "
         "'%s')",
         f->host, declared[0] ? declared : "no content type");
}

static int on_data(yr_upstream_call_t *call, const char *p, size_t n, void *data)
{
    yr_fetch_t *f = data;
    if (f->body.len + n > f->pol.max_bytes) {
        fail(f, YR_FETCH_ETOOBIG, "the image at host '%s' is larger than %llu bytes", f->host,
             (unsigned long long)f->pol.max_bytes);
        return YR_UP_ABORT;
    }
    if (!charge(f, n))
        return YR_UP_ABORT; /* before keeping more: the cap is never passed */
    int rc = yr_buf_append(&f->body, p, n);
    if (rc == -E2BIG) {
        fail(f, YR_FETCH_ETOOBIG, "the image at host '%s' is larger than %llu bytes", f->host,
             (unsigned long long)f->pol.max_bytes);
        return YR_UP_ABORT;
    }
    if (rc < 0) {
        fail(f, YR_FETCH_EINTERNAL, "out of memory while fetching the image from host '%s'",
             f->host);
        return YR_UP_ABORT;
    }
    /* Decide as soon as the magic bytes are in: no need to download 10 MB
     * of HTML to refuse it. */
    if (f->image_type == NULL && f->body.len >= SNIFF_BYTES) {
        f->image_type = yr_fetch_sniff(f->body.data, f->body.len);
        if (f->image_type == NULL) {
            not_an_image(f, call);
            return YR_UP_ABORT;
        }
    }
    return YR_UP_CONTINUE;
}

static void on_call_done(yr_upstream_call_t *call, enum yr_up_error err, void *data)
{
    yr_fetch_t *f = data;
    char why[160];
    quote_safe(why, sizeof(why), yr_upstream_error_text(call), CURL_ERROR_SIZE, '\0');
    switch (err) {
    case YR_UP_OK:
        if (f->http_status < 200 || f->http_status > 299)
            fail(f, YR_FETCH_EHTTP, "the image host '%s' answered HTTP %d", f->host,
                 f->http_status);
        if (f->image_type == NULL)
            f->image_type = yr_fetch_sniff(f->body.data, f->body.len);
        if (f->image_type == NULL)
            not_an_image(f, call);
        break;
    case YR_UP_EABORTED: /* ours (reason set), or a Content-Length over max_body */
        fail(f, YR_FETCH_ETOOBIG, "the image at host '%s' is larger than %llu bytes", f->host,
             (unsigned long long)f->pol.max_bytes);
        break;
    case YR_UP_ETIMEDOUT:
        fail(f, YR_FETCH_ETIMEDOUT, "the image host '%s' did not deliver the image within %u ms",
             f->host, (unsigned)f->pol.timeout_ms);
        break;
    case YR_UP_ECONNECT:
        if (f->last_refused)
            fail(f, YR_FETCH_EBLOCKED,
                 "refused to fetch the image from host '%s': it resolves or redirects to a %s "
                 "address, which this gateway does not connect to",
                 f->host, f->refused_class);
        else
            fail(f, YR_FETCH_ECONNECT, "could not fetch the image from host '%s': %s", f->host,
                 why[0] ? why : "connection failed");
        break;
    case YR_UP_ETRANSFER:
        fail(f, YR_FETCH_ECONNECT, "the transfer of the image from host '%s' broke: %s", f->host,
             why[0] ? why : "connection lost");
        break;
    default:
        fail(f, YR_FETCH_EINTERNAL, "could not fetch the image from host '%s'", f->host);
        break;
    }
    f->call = NULL; /* released by the upstream module when this returns */
    finish(f);
}

static const yr_upstream_cbs_t fetch_cbs = {
    .on_head = on_head,
    .on_data = on_data,
    .on_done = on_call_done,
};

static void apply_defaults(yr_fetch_policy_t *p)
{
    if (p->max_bytes == 0)
        p->max_bytes = YR_FETCH_DEFAULT_MAX_BYTES;
    if (p->max_bytes > SIZE_MAX / 2)
        p->max_bytes = SIZE_MAX / 2;
    if (p->timeout_ms == 0)
        p->timeout_ms = YR_FETCH_DEFAULT_TIMEOUT_MS;
    if (p->timeout_ms > YR_FETCH_MAX_TIMEOUT_MS)
        p->timeout_ms = YR_FETCH_MAX_TIMEOUT_MS;
    if (p->no_redirects)
        p->max_redirects = 0;
    else if (p->max_redirects == 0)
        p->max_redirects = YR_FETCH_DEFAULT_MAX_REDIRECTS;
    else if (p->max_redirects > YR_FETCH_MAX_REDIRECTS)
        p->max_redirects = YR_FETCH_MAX_REDIRECTS;
}

int yr_fetch_start(yr_upstream_t *up, const char *url, const yr_fetch_policy_t *pol,
                   yr_fetch_done_fn done, void *arg, yr_fetch_t **out)
{
    if (up == NULL || pol == NULL || done == NULL || out == NULL)
        return -EINVAL;
    yr_fetch_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->up = up;
    f->pol = *pol;
    apply_defaults(&f->pol);
    f->done = done;
    f->arg = arg;
    yr_buf_init(&f->body, (size_t)f->pol.max_bytes);
    snprintf(f->host, sizeof(f->host), "?");
    char *norm = NULL;
    int rc = check_url(url, &f->pol, f->reason, sizeof(f->reason), f->host, sizeof(f->host), &norm);
    if (rc == -ENOMEM) {
        free(f);
        return rc;
    }
    uv_timer_init(yr_upstream_loop(up), &f->timer);
    f->timer.data = f;
    if (rc == YR_FETCH_EURL) {
        /* Refused before connecting; reported from the loop like any other
         * outcome, so done never runs inside this call. */
        f->status = YR_FETCH_EURL;
        set_state(f, FS_DEFERRED);
        uv_timer_start(&f->timer, on_timer, 0, 0);
        *out = f;
        return 0;
    }
    yr_upstream_req_t req = {
        .url = norm,
        .headers = fetch_headers,
        .connect_timeout_ms = f->pol.timeout_ms,
        .timeout_ms = f->pol.timeout_ms + CURL_SLACK_MS, /* no overflow: capped */
        .get = true,
        .max_redirects = (long)f->pol.max_redirects,
        .protocols = f->pol.allow_http ? "http,https" : "https",
        .opensocket = on_open_socket,
        .opensocket_data = f,
        .max_body = f->pol.max_bytes,
    };
    set_state(f, FS_RUNNING);
    rc = yr_upstream_start(up, &req, &fetch_cbs, f, &f->call);
    curl_free(norm); /* curl copied the URL */
    if (rc < 0) {
        uv_close((uv_handle_t *)&f->timer, on_timer_closed);
        return rc;
    }
    uv_timer_start(&f->timer, on_timer, f->pol.timeout_ms, 0);
    *out = f;
    return 0;
}

void yr_fetch_cancel(yr_fetch_t *f)
{
    if (f == NULL || f->state == FS_ENDED)
        return;
    if (f->call != NULL) {
        yr_upstream_cancel(f->call);
        f->call = NULL;
    }
    set_state(f, FS_ENDED);
    release(f);
}
