/* The pieces every transport is made of: URLs, header lines, timeouts,
 * retry hints and the status classification. */
#include "providers/transport.h"

#include "providers/provider.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const outcome_names[YR_OUT__COUNT] = {
    [YR_OUT_OK] = "ok",
    [YR_OUT_RATE_LIMITED] = "rate_limited",
    [YR_OUT_OVERLOADED] = "overloaded",
    [YR_OUT_SERVER_ERROR] = "server_error",
    [YR_OUT_QUOTA] = "quota_exhausted",
    [YR_OUT_AUTH] = "auth_failed",
    [YR_OUT_CLIENT_ERROR] = "client_error",
    [YR_OUT_CONNECT] = "connect_error",
    [YR_OUT_TIMEOUT] = "timeout",
    [YR_OUT_BAD_RESPONSE] = "bad_response",
    [YR_OUT_STREAM_CUT] = "stream_cut",
    [YR_OUT_CANCELLED] = "cancelled",
    [YR_OUT_INTERNAL] = "internal",
};

const char *yr_outcome_name(yr_outcome_t o)
{
    return o < YR_OUT__COUNT ? outcome_names[o] : "unknown";
}

bool yr_outcome_retryable(yr_outcome_t o)
{
    switch (o) {
    case YR_OUT_OK:
    case YR_OUT_CLIENT_ERROR:
    case YR_OUT_CANCELLED:
    case YR_OUT_INTERNAL: return false;
    default: return true; /* QUOTA too: another route has its own quota */
    }
}

char *yr_transport_header(yr_pool_t *pool, const char *name, const char *value, size_t vlen)
{
    size_t n = strlen(name) + vlen + 3;
    char *h = yr_palloc(pool, n);
    if (h != NULL)
        snprintf(h, n, "%s: %.*s", name, (int)vlen, value);
    return h;
}

char *yr_transport_url(yr_pool_t *pool, const yr_provider_conf_t *p, const char *path)
{
    size_t n = strlen(p->base_url) + strlen(path) + 1;
    char *url = yr_palloc(pool, n);
    if (url != NULL)
        snprintf(url, n, "%s%s", p->base_url, path);
    return url;
}

void yr_transport_timeouts(const yr_provider_conf_t *p, yr_upstream_req_t *out)
{
    out->connect_timeout_ms = p->connect_timeout_ms;
    out->first_byte_timeout_ms = p->first_byte_timeout_ms;
    out->idle_timeout_ms = p->idle_timeout_ms;
    out->timeout_ms = p->timeout_ms;
}

void yr_transport_route_timeouts(const yr_route_conf_t *r, yr_upstream_req_t *out)
{
    if (r->connect_timeout_ms > 0)
        out->connect_timeout_ms = r->connect_timeout_ms;
    if (r->first_byte_timeout_ms > 0)
        out->first_byte_timeout_ms = r->first_byte_timeout_ms;
    if (r->idle_timeout_ms > 0)
        out->idle_timeout_ms = r->idle_timeout_ms;
    if (r->timeout_ms > 0)
        out->timeout_ms = r->timeout_ms;
}

static bool contains(const char *s, const char *word)
{
    return s != NULL && s[0] != '\0' && strstr(s, word) != NULL;
}

yr_outcome_t yr_transport_classify_status(int status, const yr_provider_error_t *perr)
{
    /* Spend and quota exhaustion look like a 429 (OpenAI insufficient_quota)
     * or a 400 (Anthropic billing_error): a retry here will not help. */
    if (perr != NULL &&
        (contains(perr->type, "insufficient_quota") || contains(perr->code, "insufficient_quota") ||
         contains(perr->type, "billing_error")))
        return YR_OUT_QUOTA;
    if (status == 429)
        return YR_OUT_RATE_LIMITED;
    if (status == 503 || status == 529)
        return YR_OUT_OVERLOADED;
    if (status == 401 || status == 403)
        return YR_OUT_AUTH;
    if (status == 408 || status == 504)
        return YR_OUT_TIMEOUT;
    if (status == 404 || status >= 500)
        return YR_OUT_SERVER_ERROR; /* 404: the model is not at this provider */
    return YR_OUT_CLIENT_ERROR;
}

/* Bounded decimal parse: the digits of s, or -1. */
static int64_t parse_uint(yr_str_t s, bool allow_fraction)
{
    s = yr_str_trim(s);
    if (s.len == 0 || s.len > 15)
        return -1;
    int64_t v = 0;
    size_t i = 0;
    for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++)
        v = v * 10 + (s.ptr[i] - '0');
    if (i == 0)
        return -1;
    if (i < s.len && !(allow_fraction && s.ptr[i] == '.'))
        return -1;
    return v;
}

static int month_of(const char *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(names + 3 * i, m, 3) == 0)
            return i;
    return -1;
}

/* IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110's preferred form). */
static int64_t parse_http_date(yr_str_t s)
{
    s = yr_str_trim(s);
    if (s.len != 29 || s.ptr[3] != ',' || memcmp(s.ptr + 26, "GMT", 3) != 0)
        return -1;
    char b[30];
    memcpy(b, s.ptr, 29);
    b[29] = '\0';
    struct tm tm = {0};
    int64_t day = parse_uint((yr_str_t){b + 5, 2}, false);
    int mon = month_of(b + 8);
    int64_t year = parse_uint((yr_str_t){b + 12, 4}, false);
    int64_t hh = parse_uint((yr_str_t){b + 17, 2}, false);
    int64_t mm = parse_uint((yr_str_t){b + 20, 2}, false);
    int64_t ss = parse_uint((yr_str_t){b + 23, 2}, false);
    if (day < 1 || mon < 0 || year < 1970 || hh < 0 || mm < 0 || ss < 0)
        return -1;
    tm.tm_mday = (int)day;
    tm.tm_mon = mon;
    tm.tm_year = (int)year - 1900;
    tm.tm_hour = (int)hh;
    tm.tm_min = (int)mm;
    tm.tm_sec = (int)ss;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (int64_t)t;
}

int64_t yr_retry_after_ms(yr_str_t retry_after, yr_str_t retry_after_ms, int64_t now_unix)
{
    int64_t ms = parse_uint(retry_after_ms, true);
    if (ms >= 0)
        return ms;
    int64_t s = parse_uint(retry_after, false);
    if (s >= 0)
        return s * 1000;
    int64_t at = parse_http_date(retry_after);
    if (at < 0)
        return -1;
    return at > now_unix ? (at - now_unix) * 1000 : 0;
}

/* ---- process_header and the two static-key transports ------------------------------ */

static int64_t hint_int(const yr_upstream_call_t *call, const char *name)
{
    yr_str_t v = yr_upstream_header(call, name);
    return v.len ? parse_uint(v, true) : -1;
}

/* Reset hints are durations: OpenAI's "1s", "6m0s", "20ms"; Anthropic's are
 * RFC 3339 timestamps (kept as absent here: the resilience issue reads them). */
static int64_t duration_ms(yr_str_t v)
{
    int64_t total = 0, num = -1;
    bool any = false;
    for (size_t i = 0; i < v.len; i++) {
        char ch = v.ptr[i];
        if (ch >= '0' && ch <= '9') {
            num = (num < 0 ? 0 : num) * 10 + (ch - '0');
            if (num > 1000000000)
                return -1;
        } else if (ch == '.') {
            /* fractions: skip to the unit */
            while (i + 1 < v.len && v.ptr[i + 1] >= '0' && v.ptr[i + 1] <= '9')
                i++;
        } else if (num >= 0) {
            if (ch == 'm' && i + 1 < v.len && v.ptr[i + 1] == 's') {
                total += num;
                i++;
            } else if (ch == 'h') {
                total += num * 3600000;
            } else if (ch == 'm') {
                total += num * 60000;
            } else if (ch == 's') {
                total += num * 1000;
            } else {
                return -1;
            }
            num = -1;
            any = true;
        } else {
            return -1;
        }
    }
    return any && num < 0 ? total : -1;
}

void yr_transport_generic_head(struct yr_call_ctx *cx, const yr_upstream_call_t *call,
                               yr_head_info_t *info)
{
    (void)cx;
    yr_str_t ra = yr_upstream_retry_after(call);
    if (ra.len == 0 && !yr_upstream_has_hints(call)) {
        /* Most answers say nothing about limits: nothing to parse. */
        *info = (yr_head_info_t){.status = yr_upstream_status(call),
                                 .retry_after_ms = -1,
                                 .remaining_requests = -1,
                                 .remaining_tokens = -1,
                                 .reset_requests_ms = -1,
                                 .reset_tokens_ms = -1};
        return;
    }
    *info = (yr_head_info_t){
        .status = yr_upstream_status(call),
        .retry_after_ms = yr_retry_after_ms(ra,
                                            yr_upstream_header(call, "retry-after-ms"),
                                            (int64_t)time(NULL)),
        .remaining_requests = hint_int(call, "x-ratelimit-remaining-requests"),
        .remaining_tokens = hint_int(call, "x-ratelimit-remaining-tokens"),
        .reset_requests_ms = duration_ms(yr_upstream_header(call, "x-ratelimit-reset-requests")),
        .reset_tokens_ms = duration_ms(yr_upstream_header(call, "x-ratelimit-reset-tokens")),
    };
    if (info->remaining_requests < 0)
        info->remaining_requests = hint_int(call, "anthropic-ratelimit-requests-remaining");
    if (info->remaining_tokens < 0)
        info->remaining_tokens = hint_int(call, "anthropic-ratelimit-tokens-remaining");
}

/* Content-Type, Accept, User-Agent, the auth line (when the provider has a
 * key), the dialect's extra lines; NULL-terminated, in the pool. */
int yr_transport_common_headers(struct yr_call_ctx *cx, const char *auth_name,
                                const char *auth_prefix, const char *const *extra,
                                yr_upstream_req_t *out)
{
    size_t nextra = 0;
    while (extra != NULL && extra[nextra] != NULL)
        nextra++;
    const char **h = yr_palloc(cx->pool, (5 + nextra) * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    size_t n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = cx->chat->stream ? "Accept: text/event-stream" : "Accept: application/json";
    h[n++] = "User-Agent: yourouter/0.1";
    for (size_t i = 0; i < nextra; i++)
        h[n++] = extra[i];
    const char *key = yr_route_key(cx->route);
    if (key != NULL && key[0] != '\0') {
        size_t plen = strlen(auth_prefix), klen = strlen(key);
        char *v = yr_palloc(cx->pool, plen + klen + 1);
        if (v == NULL)
            return -ENOMEM;
        memcpy(v, auth_prefix, plen);
        memcpy(v + plen, key, klen + 1);
        if ((h[n++] = yr_transport_header(cx->pool, auth_name, v, plen + klen)) == NULL)
            return -ENOMEM;
    }
    h[n] = NULL;
    out->headers = h;
    return 0;
}

static int bearer_prepare(struct yr_call_ctx *cx, const char *path, const char *const *extra,
                          yr_upstream_req_t *out)
{
    out->url = yr_transport_url(cx->pool, cx->route->provider, path);
    if (out->url == NULL)
        return -ENOMEM;
    yr_transport_timeouts(cx->route->provider, out);
    return yr_transport_common_headers(cx, "Authorization", "Bearer ", extra, out);
}

static int anthropic_prepare(struct yr_call_ctx *cx, const char *path, const char *const *extra,
                             yr_upstream_req_t *out)
{
    out->url = yr_transport_url(cx->pool, cx->route->provider, path);
    if (out->url == NULL)
        return -ENOMEM;
    yr_transport_timeouts(cx->route->provider, out);
    return yr_transport_common_headers(cx, "x-api-key", "", extra, out);
}

const yr_transport_ops_t yr_transport_bearer = {
    .name = "bearer",
    .framing = YR_FRAME_SSE,
    .prepare = bearer_prepare,
    .process_header = yr_transport_generic_head,
    .classify = yr_transport_classify_status,
};

const yr_transport_ops_t yr_transport_anthropic = {
    .name = "anthropic",
    .framing = YR_FRAME_SSE,
    .prepare = anthropic_prepare,
    .process_header = yr_transport_generic_head,
    .classify = yr_transport_classify_status,
};
