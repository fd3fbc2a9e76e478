/* libFuzzer target for the image fetcher's SSRF guard and URL checks
 * (src/upstream/fetch.c): the parts that judge bytes a client (and a
 * redirecting upstream) controls. The first byte picks the mode:
 *
 *   even  an address: byte 1 picks IPv4 or IPv6, then 4 or 16 address bytes
 *         and 2 port bytes; the rest, split at '\n', is an allow list (each
 *         entry checked with yr_fetch_allow_valid, as the config does).
 *         Without exceptions the guard allows exactly the addresses
 *         yr_fetch_addr_class calls public; an allow list only ever adds;
 *         an IPv4 address and its IPv4-mapped IPv6 form get one verdict.
 *   odd   a URL (the rest, NUL-terminated): yr_fetch_check_url returns 0
 *         or YR_FETCH_EURL, its reason is terminated within the cap, and
 *         an accepted URL starts with https:// (or http:// when allowed).
 *
 *   build-fuzz/tests/fuzz/fuzz_fetch_guard -max_total_time=60 NEW \
 *       tests/fuzz/corpus/fetch_guard */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream/fetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ALLOW 16
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Splits s (NUL-terminated, writable) at '\n' into the valid entries. */
static size_t allow_list(char *s, const char **out)
{
    size_t n = 0;
    for (char *p = s; p != NULL && n < MAX_ALLOW;) {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        const char *err = NULL;
        if (yr_fetch_allow_valid(p, &err))
            out[n++] = p;
        else
            CHECK(err != NULL && err[0] != '\0');
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

static void fuzz_addr(const uint8_t *d, size_t size)
{
    if (size < 1 + 16 + 2)
        return;
    bool v6 = d[0] & 1;
    struct sockaddr_storage ss = {0};
    uint16_t port;
    memcpy(&port, d + (v6 ? 17 : 5), 2);
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = port;
        memcpy(&s6->sin6_addr, d + 1, 16);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = port;
        memcpy(&s4->sin_addr, d + 1, 4);
    }
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    const char *cls = yr_fetch_addr_class(sa);
    bool bare = yr_fetch_addr_allowed(sa, NULL);
    CHECK(bare == (cls == NULL));
    if (cls != NULL)
        CHECK(cls[0] != '\0');

    size_t rest = size - 19;
    char *s = malloc(rest + 1);
    memcpy(s, d + 19, rest);
    s[rest] = '\0';
    const char *allow[MAX_ALLOW];
    yr_fetch_policy_t pol = {.allow = allow, .nallow = allow_list(s, allow)};
    bool with = yr_fetch_addr_allowed(sa, &pol);
    CHECK(!bare || with); /* exceptions only add */
    yr_fetch_policy_t none = {0};
    CHECK(yr_fetch_addr_allowed(sa, &none) == bare);

    if (!v6) { /* ::ffff:a.b.c.d is judged as a.b.c.d */
        struct sockaddr_in6 m = {.sin6_family = AF_INET6, .sin6_port = port};
        m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&m.sin6_addr.s6_addr[12], d + 1, 4);
        CHECK(yr_fetch_addr_allowed((const struct sockaddr *)&m, NULL) == bare);
    }
    free(s);
}

static void fuzz_url(const uint8_t *d, size_t size)
{
    char *url = malloc(size + 1);
    memcpy(url, d, size);
    url[size] = '\0';
    for (int http = 0; http < 2; http++) {
        yr_fetch_policy_t pol = {.allow_http = http};
        char reason[YR_FETCH_MAX_REASON];
        memset(reason, 'x', sizeof(reason));
        int rc = yr_fetch_check_url(url, &pol, reason, sizeof(reason));
        CHECK(rc == 0 || rc == YR_FETCH_EURL);
        if (rc == 0) {
            CHECK(strlen(url) <= YR_FETCH_MAX_URL);
            CHECK(strncasecmp(url, "https://", 8) == 0 ||
                  (http && strncasecmp(url, "http://", 7) == 0));
            const char *auth = strstr(url, "://") + 3; /* no credentials in the authority */
            CHECK(memchr(auth, '@', strcspn(auth, "/?#")) == NULL);
        } else {
            CHECK(memchr(reason, '\0', sizeof(reason)) != NULL && reason[0] != '\0');
        }
    }
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    if (data[0] & 1)
        fuzz_url(data + 1, size - 1);
    else
        fuzz_addr(data + 1, size - 1);
    return 0;
}
