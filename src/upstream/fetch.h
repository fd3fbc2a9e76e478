/* Fetching an image URL on behalf of a client (for providers that cannot take
 * a remote URL), behind an SSRF guard.
 *
 * The guard, yr_fetch_addr_allowed(), runs on the address curl is about to
 * connect to, right before every connect of the fetch (redirects included),
 * so a DNS name that resolves to an internal address, a rebinding DNS
 * server, a numeric spelling of 127.0.0.1 (2130706433, 0x7f000001, 0177.1)
 * or a redirect to an internal host are all refused at the address, whatever
 * the URL said. docs/fetch.md has the rules.
 *
 * A fetch runs on the worker's yr_upstream_t and ends exactly once: done
 * runs (never from inside yr_fetch_start), or the owner calls
 * yr_fetch_cancel() first (then done never runs). */
#ifndef YR_FETCH_H
#define YR_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "upstream/upstream.h"

#define YR_FETCH_DEFAULT_MAX_BYTES (10u * 1024 * 1024)
#define YR_FETCH_DEFAULT_TIMEOUT_MS 10000u
#define YR_FETCH_DEFAULT_MAX_REDIRECTS 3u
#define YR_FETCH_MAX_URL 2048 /* bytes; longer URLs are refused */
#define YR_FETCH_MAX_REDIRECTS 10u
#define YR_FETCH_MAX_TIMEOUT_MS 600000u /* longer timeouts are cut to this */
#define YR_FETCH_MAX_REASON 320         /* bytes of yr_fetch_result_t.reason, NUL included */

/* A cap shared by several fetches: every body byte a fetch receives is
 * charged to its budgets before it is kept, and a fetch that would take a
 * budget past its cap fails (YR_FETCH_ETOOBIG, the reason naming what). A
 * budget with release set gets a fetch's bytes back when the fetch ends (the
 * bytes in flight on a worker); without, charges stay (all images of one
 * request, which live on in the request). Owned by the caller, single
 * thread; must outlive every fetch charged to it. */
typedef struct {
    uint64_t cap;     /* 0: no cap */
    uint64_t used;
    bool release;
    const char *what; /* e.g. "the images of one request" */
    const char *setting; /* the config key that sets cap, for the reason */
} yr_fetch_budget_t;

typedef struct {
    uint64_t max_bytes;     /* body cap; 0 = YR_FETCH_DEFAULT_MAX_BYTES */
    /* Shared caps (NULL: none), charged in this order. Borrowed. */
    yr_fetch_budget_t *budgets[2];
    uint32_t timeout_ms;    /* the whole fetch, redirects included; 0 = default */
    uint32_t max_redirects; /* 0 = default (3); capped at YR_FETCH_MAX_REDIRECTS */
    bool no_redirects;      /* follow none (max_redirects is then ignored) */
    /* Exceptions to the guard: "10.0.0.0/8", "::1/128", "127.0.0.1",
     * "127.0.0.1/32:8080", "[::1]:8080", "[fd00::]/8:443". An entry lets an
     * otherwise refused address through when the address is in the CIDR
     * (no prefix = the one address) and, when a port is given, the port is
     * equal. Borrowed: the array and its strings must outlive every fetch
     * started with this policy.
     * Check each with yr_fetch_allow_valid() when loading the config;
     * invalid entries are ignored here. */
    const char *const *allow;
    size_t nallow;
    bool allow_http; /* default false: https only (for redirects too) */
} yr_fetch_policy_t;

/* Failure classes of yr_fetch_result_t.status. */
enum yr_fetch_error {
    YR_FETCH_OK = 0,
    YR_FETCH_EURL = -1,      /* refused before any connection: scheme, credentials, length */
    YR_FETCH_EBLOCKED = -2,  /* the guard refused every address of the host */
    YR_FETCH_ETOOBIG = -3,   /* body larger than max_bytes */
    YR_FETCH_ETIMEDOUT = -4, /* not complete within timeout_ms */
    YR_FETCH_EHTTP = -5,     /* the final response was not a 2xx */
    YR_FETCH_ENOTIMAGE = -6, /* not JPEG, PNG, GIF or WebP */
    YR_FETCH_ECONNECT = -7,  /* DNS, connect, TLS, redirect limits, broken transfer */
    YR_FETCH_EINTERNAL = -8, /* out of memory */
};

typedef struct {
    int status;                /* YR_FETCH_OK or a negative enum yr_fetch_error */
    int http_status;           /* of the final response; 0 when none */
    const char *content_type;  /* on success: "image/jpeg", "image/png", "image/gif" or
                                * "image/webp", from the magic bytes (static string) */
    const unsigned char *data; /* the body on success (NULL otherwise) */
    size_t len;
    /* Always set: "" on success, else one sentence for the client that names
     * the URL's host (never credentials, path or query). */
    const char *reason;
    /* YR_FETCH_ETOOBIG because of a budget: that one (else NULL). */
    const yr_fetch_budget_t *over;
} yr_fetch_result_t;

typedef struct yr_fetch yr_fetch_t;

/* Called once when the fetch ends. res and everything it points to (data,
 * reason) is owned by the fetch and valid only until done returns: copy or
 * encode what you keep. The fetch is freed after done returns; do not call
 * yr_fetch_cancel on it from done. Other fetches may be cancelled from done. */
typedef void (*yr_fetch_done_fn)(void *arg, const yr_fetch_result_t *res);

/* Starts fetching url (copied) with policy pol (copied; its allow strings are
 * borrowed). A URL the policy refuses (scheme, credentials, no host, too long)
 * is not an error here: done reports YR_FETCH_EURL on a later loop turn and
 * nothing connects. On success *out is the fetch, valid until done returns or
 * yr_fetch_cancel. Returns 0, -EINVAL (NULL arguments) or -ENOMEM; on error
 * done never runs. */
__attribute__((warn_unused_result)) int yr_fetch_start(yr_upstream_t *up, const char *url,
                                                       const yr_fetch_policy_t *pol,
                                                       yr_fetch_done_fn done, void *arg,
                                                       yr_fetch_t **out);

/* Stops a fetch that has not ended; done will not run. NULL is a no-op. */
void yr_fetch_cancel(yr_fetch_t *f);

/* The guard: true when a connection to sa (AF_INET or AF_INET6, port
 * included) may be opened. Refuses loopback, private, link-local (with the
 * 169.254.169.254 metadata address), unspecified, CGNAT, benchmarking,
 * IETF-reserved, multicast and broadcast addresses, IPv6 unique-local,
 * site-local and discard-only ones, and IPv4 addresses embedded in IPv6
 * (mapped, compatible, SIIT-translated, NAT64 64:ff9b::/96, 6to4) by the
 * IPv4 rules — unless an allow entry of pol matches. Other families are
 * refused. Pure; pol may be NULL (no exceptions). */
bool yr_fetch_addr_allowed(const struct sockaddr *sa, const yr_fetch_policy_t *pol);

/* Why the guard refuses sa without exceptions ("loopback", "private", ...,
 * "not an IP address"), or NULL when it is a public address. Static string. */
const char *yr_fetch_addr_class(const struct sockaddr *sa);

/* Checks one allow entry's syntax (for the config validator). Returns true,
 * or false with *err (static string) saying what is wrong. */
bool yr_fetch_allow_valid(const char *entry, const char **err);

/* The URL checks yr_fetch_start applies before connecting: length, scheme
 * (https, or http with allow_http), no userinfo, a host. Returns 0, or
 * YR_FETCH_EURL with a reason (naming at most the host) in reason. Pure. */
int yr_fetch_check_url(const char *url, const yr_fetch_policy_t *pol, char *reason,
                       size_t reason_cap);

/* The image type of the first bytes of a body ("image/png", ...), or NULL
 * when they are not JPEG, PNG, GIF or WebP. Static string. */
const char *yr_fetch_sniff(const void *data, size_t len);

#endif
