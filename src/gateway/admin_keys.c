/* The admin API for client keys and usage (master key only; a client key
 * gets 403):
 *
 *   POST   /admin/keys                 create: the secret is in this answer only
 *   GET    /admin/keys                 list
 *   GET    /admin/keys/{id|name}       one key
 *   PATCH  /admin/keys/{id|name}       change limits (fields given; null clears)
 *   DELETE /admin/keys/{id|name}       revoke
 *   POST   /admin/keys/{id|name}/rotate  new secret; the old one works grace_seconds more
 *   GET    /admin/usage?by=model|vendor|key|day&since=7d&key=NAME
 *
 * Every operation runs the same store function `yourouter keys` runs
 * (store.h), on the store thread (yr_store_call_async); the request is held
 * until it comes back. Bodies and answers are JSON; errors use the gateway's
 * envelope. */
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/gateway.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "store/keys_cli.h"
#include "store/keyspec.h"

#define NAME_MAX_LEN 128
#define MAX_LIST_JSON (16u << 20)

typedef enum { K_CREATE, K_LIST, K_GET, K_UPDATE, K_REVOKE, K_ROTATE, K_USAGE } kop_t;

/* The op's arguments and results, copied into the store op. */
typedef struct {
    yr_gw_req_t *g; /* held while the op runs */
    kop_t op;
    char which[NAME_MAX_LEN]; /* id or name */
    char name[NAME_MAX_LEN];
    yr_key_policy_t policy;
    json_t *changes; /* K_UPDATE: the PATCH body (a reference the op owns) */
    char err[160];
    int64_t grace_s;
    yr_usage_by_t by;
    int64_t since_ms;
    yr_key_info_t info;
    char secret[YR_KEY_MAX_LEN];
    yr_buf_t out; /* K_LIST / K_USAGE: the JSON, built on the store thread */
    int out_rc;   /* ... and why it could not be (too large) */
} kcall_t;

static void send_err(yr_gw_req_t *g, yr_err_t e, const char *msg, const char *param)
{
    yr_gw_send_error(g, e, msg, param, NULL, YR_STR_NULL);
}

/* A JSON value as the text yr_keyspec_set takes: numbers as decimals,
 * arrays of strings joined by commas, objects serialised, null as "". */
static int field_text(json_t *v, char *buf, size_t len)
{
    if (json_is_null(v)) {
        buf[0] = '\0';
        return 0;
    }
    if (json_is_string(v))
        return snprintf(buf, len, "%s", json_string_value(v)) < (int)len ? 0 : -1;
    if (json_is_boolean(v))
        return snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false") < (int)len ? 0 : -1;
    if (json_is_integer(v))
        return snprintf(buf, len, "%lld", (long long)json_integer_value(v)) < (int)len ? 0 : -1;
    if (json_is_real(v))
        return snprintf(buf, len, "%.6f", json_real_value(v)) < (int)len ? 0 : -1;
    if (json_is_array(v)) {
        size_t off = 0, i;
        json_t *x;
        buf[0] = '\0';
        json_array_foreach(v, i, x)
        {
            if (!json_is_string(x))
                return -1;
            int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", json_string_value(x));
            if (n < 0 || (size_t)n >= len - off)
                return -1;
            off += (size_t)n;
        }
        return 0;
    }
    if (json_is_object(v)) {
        char *s = json_dumps(v, JSON_COMPACT);
        int rc = s != NULL && snprintf(buf, len, "%s", s) < (int)len ? 0 : -1;
        free(s);
        return rc;
    }
    return -1;
}

/* Applies the policy fields of body to p ("budgets": {daily, monthly,
 * total} too). 0, or -EINVAL with a message in err naming the field. */
static int apply_fields(json_t *body, yr_key_policy_t *p, char *err, size_t errlen)
{
    static const char *const fields[] = {"models",          "vendors",      "rpm",
                                         "tpm",             "max_concurrency", "budget_daily",
                                         "budget_monthly",  "budget_total", "expires_at",
                                         "metadata",        "log_content",  "log_retention"};
    char text[1024], why[128];
    int64_t now = (int64_t)time(NULL);
    json_t *budgets = json_object_get(body, "budgets");
    if (budgets != NULL && !json_is_object(budgets) && !json_is_null(budgets)) {
        snprintf(err, errlen, "budgets must be an object with daily, monthly, total");
        return -EINVAL;
    }
    static const char *const bnames[] = {"daily", "monthly", "total"};
    for (int b = 0; budgets != NULL && json_is_object(budgets) && b < 3; b++) {
        json_t *v = json_object_get(budgets, bnames[b]);
        if (v == NULL)
            continue;
        if (field_text(v, text, sizeof(text)) < 0 ||
            yr_keyspec_set(p, fields[5 + b], text[0] ? text : "0", now, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "budgets.%s: must be an amount of USD", bnames[b]);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        json_t *v = json_object_get(body, fields[i]);
        if (v == NULL)
            continue;
        bool clear = json_is_null(v);
        if (field_text(v, text, sizeof(text)) < 0) {
            snprintf(err, errlen, "%s: unsupported value", fields[i]);
            return -EINVAL;
        }
        const char *val = text;
        if (clear)
            val = strcmp(fields[i], "models") == 0 || strcmp(fields[i], "vendors") == 0 ? "" : "0";
        if (clear && strcmp(fields[i], "metadata") == 0) {
            p->metadata[0] = '\0';
            continue;
        }
        if (yr_keyspec_set(p, fields[i], val, now, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: %s", fields[i], why);
            return -EINVAL;
        }
    }
    return 0;
}

static void list_row(const yr_key_info_t *k, void *arg)
{
    kcall_t *kc = arg;
    int rc = kc->out.len > 1 ? yr_buf_append_str(&kc->out, YR_STR(",")) : 0;
    if (rc == 0)
        rc = yr_keyspec_json(k, &kc->out);
    if (rc < 0)
        kc->out_rc = rc;
}

static void usage_row(const yr_usage_total_t *t, void *arg)
{
    kcall_t *kc = arg;
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "group", t->group,
                          "requests", (json_int_t)t->requests, "attempts", (json_int_t)t->attempts,
                          "prompt_tokens", (json_int_t)t->prompt_tokens, "completion_tokens",
                          (json_int_t)t->completion_tokens, "cached_tokens",
                          (json_int_t)t->cached_tokens, "cache_write_tokens",
                          (json_int_t)t->cache_write_tokens, "reasoning_tokens",
                          (json_int_t)t->reasoning_tokens, "cost_usd",
                          (double)t->cost_micros / 1e6, "errors", (json_int_t)t->errors);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    int rc = s == NULL ? -ENOMEM : 0;
    if (rc == 0 && kc->out.len > 1)
        rc = yr_buf_append_str(&kc->out, YR_STR(","));
    if (rc == 0)
        rc = yr_buf_append_str(&kc->out, yr_str(s));
    free(s);
    if (rc < 0)
        kc->out_rc = rc;
}

/* On the store thread. */
static int kcall_run(yr_store_t *s, void *arg)
{
    kcall_t *kc = arg;
    yr_buf_init(&kc->out, MAX_LIST_JSON);
    switch (kc->op) {
    case K_CREATE:
        return yr_store_key_create_with(s, kc->name, &kc->policy, kc->secret, &kc->info);
    case K_GET: return yr_store_key_get(s, kc->which, &kc->info);
    case K_REVOKE: return yr_store_key_revoke_info(s, kc->which, &kc->info);
    case K_ROTATE: return yr_store_key_rotate(s, kc->which, kc->grace_s, kc->secret, &kc->info);
    case K_UPDATE: {
        /* read, change the fields given, write: the CLI's update too */
        int rc = yr_store_key_get(s, kc->which, &kc->info);
        if (rc != 0)
            return rc;
        if (apply_fields(kc->changes, &kc->info.policy, kc->err, sizeof(kc->err)) != 0)
            return -EINVAL;
        return yr_store_key_update(s, kc->which, &kc->info.policy, &kc->info);
    }
    case K_LIST: {
        int rc = yr_buf_append_str(&kc->out, YR_STR("["));
        if (rc == 0)
            rc = yr_store_key_list(s, list_row, kc);
        if (rc == 0)
            rc = kc->out_rc;
        return rc == 0 ? yr_buf_append_str(&kc->out, YR_STR("]")) : rc;
    }
    case K_USAGE: {
        int64_t key_id = 0;
        if (kc->which[0] != '\0') {
            int rc = yr_store_key_get(s, kc->which, &kc->info);
            if (rc != 0)
                return rc;
            key_id = kc->info.id;
        }
        int rc = yr_buf_append_str(&kc->out, YR_STR("["));
        if (rc == 0)
            rc = yr_store_usage_totals(s, kc->by, kc->since_ms, key_id, usage_row, kc);
        if (rc == 0)
            rc = kc->out_rc;
        return rc == 0 ? yr_buf_append_str(&kc->out, YR_STR("]")) : rc;
    }
    }
    return -EINVAL;
}

static void kcall_cleanup(void *arg)
{
    kcall_t *kc = arg;
    yr_buf_free(&kc->out);
    json_decref(kc->changes);
    OPENSSL_cleanse(kc->secret, sizeof(kc->secret));
}

/* The key as JSON, with the secret when there is one: {"key":..., ...}. */
static void send_key(yr_gw_req_t *g, int status, const kcall_t *kc, const char *extra)
{
    yr_buf_t b;
    yr_buf_init(&b, 64 * 1024);
    int rc = yr_buf_append_str(&b, YR_STR("{"));
    if (rc == 0 && kc->secret[0] != '\0')
        rc = yr_buf_printf(&b, "\"key\":\"%s\",", kc->secret); /* base64url: no escaping */
    if (rc == 0 && extra != NULL)
        rc = yr_buf_append_str(&b, yr_str(extra));
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR("\"object\":\"api_key\",\"api_key\":"));
    if (rc == 0)
        rc = yr_keyspec_json(&kc->info, &b);
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR("}"));
    if (rc < 0)
        send_err(g, YR_E_INTERNAL, "out of memory", NULL);
    else
        yr_gw_send_json(g, status, (yr_str_t){b.data, b.len}, NULL, 0);
    OPENSSL_cleanse(b.data, b.cap);
    yr_buf_free(&b);
}

static void kcall_done(void *arg, int status)
{
    kcall_t *kc = arg;
    yr_gw_req_t *g = kc->g;
    yr_http_req_t *req = g->http;
    if (status == -ENOENT) {
        send_err(g, YR_E_NOT_FOUND, "no active key with that id or name", NULL);
    } else if (status == -EEXIST) {
        send_err(g, YR_E_INVALID_REQUEST, "an active key with that name already exists", "name");
    } else if (status == -EINVAL) {
        send_err(g, YR_E_INVALID_REQUEST,
                 kc->err[0] ? kc->err
                            : "invalid key name: 1 to 127 characters from A-Z a-z 0-9 . _ - "
                              "(not only digits)",
                 NULL);
    } else if (status != 0) {
        yr_log_error("%s: admin key operation failed: %s", g->id, strerror(-status));
        send_err(g, YR_E_STORE_UNAVAILABLE, "the key store failed, retry later", NULL);
    } else if (kc->op == K_LIST || kc->op == K_USAGE) {
        yr_buf_t b;
        yr_buf_init(&b, MAX_LIST_JSON + 64);
        if (yr_buf_printf(&b, "{\"object\":\"list\",\"data\":%.*s}", (int)kc->out.len,
                          kc->out.data) < 0)
            send_err(g, YR_E_INTERNAL, "list too large", NULL);
        else
            yr_gw_send_json(g, 200, (yr_str_t){b.data, b.len}, NULL, 0);
        yr_buf_free(&b);
    } else if (kc->op == K_REVOKE) {
        send_key(g, 200, kc, "\"revoked\":true,");
    } else {
        send_key(g, kc->op == K_CREATE ? 201 : 200, kc, NULL);
    }
    yr_http_req_release(req);
}

static void submit(yr_gw_req_t *g, kcall_t *kc)
{
    kc->g = g;
    yr_http_req_hold(g->http);
    /* the op owns kc's changes from here, on failure too (kcall_cleanup ran) */
    int rc = yr_store_call_async(g->w->store, kcall_run, kcall_done, kcall_cleanup, kc,
                                 sizeof(*kc), NULL);
    OPENSSL_cleanse(kc, sizeof(*kc));
    if (rc < 0) {
        send_err(g, YR_E_STORE_UNAVAILABLE, "the key store is busy, retry later", NULL);
        yr_http_req_release(g->http);
    }
}

/* The request body as a JSON object, or NULL after sending the 400. */
static json_t *body_object(yr_gw_req_t *g, bool required)
{
    yr_http_req_t *req = g->http;
    if (req->body.len == 0 && !required)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(req->body.data ? req->body.data : "", req->body.len,
                           JSON_REJECT_DUPLICATES, &je);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        send_err(g, YR_E_INVALID_JSON, "the body must be a JSON object", NULL);
        return NULL;
    }
    return j;
}

int yr_gw_query_param(yr_str_t q, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < q.len;) {
        size_t end = i;
        while (end < q.len && q.ptr[end] != '&')
            end++;
        if (end - i > nl && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=') {
            size_t vl = end - i - nl - 1;
            if (vl >= len)
                return -1;
            memcpy(buf, q.ptr + i + nl + 1, vl);
            buf[vl] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

static void keys_authed(yr_gw_req_t *g)
{
    yr_http_req_t *req = g->http;
    kcall_t kc = {0};
    yr_str_t path = req->path;
    bool is_usage = yr_str_eq(path, YR_STR("/admin/usage"));
    yr_str_t rest = path.len > 11 ? (yr_str_t){path.ptr + 11, path.len - 11} : YR_STR_NULL; /* after /admin/keys */
    if (is_usage) {
        if (req->method != HTTP_GET) {
            send_err(g, YR_E_METHOD_NOT_ALLOWED, "GET /admin/usage", NULL);
            return;
        }
        char by[16] = "model", since[16] = "7d";
        int qb = yr_gw_query_param(req->query, "by", by, sizeof(by));
        int qs = yr_gw_query_param(req->query, "since", since, sizeof(since));
        if (yr_gw_query_param(req->query, "key", kc.which, sizeof(kc.which)) < 0) {
            send_err(g, YR_E_NOT_FOUND, "no active key with that id or name", NULL);
            return;
        }
        if (qb < 0)
            by[0] = '\0'; /* too long for any: refused below */
        if (qs < 0)
            since[0] = '\0';
        static const char *const bys[] = {"model", "vendor", "key", "day"};
        size_t k = 0;
        while (k < 4 && strcmp(by, bys[k]) != 0)
            k++;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        kc.since_ms = yr_usage_since(since, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (k == 4 || kc.since_ms < 0) {
            send_err(g, YR_E_INVALID_REQUEST,
                     k == 4 ? "by is one of model, vendor, key, day"
                            : "since is a duration such as 7d, 24h or 90m",
                     k == 4 ? "by" : "since");
            return;
        }
        kc.by = (yr_usage_by_t)k;
        kc.op = K_USAGE;
        submit(g, &kc);
        return;
    }
    if (rest.len == 0) { /* /admin/keys */
        if (req->method == HTTP_GET) {
            kc.op = K_LIST;
            submit(g, &kc);
            return;
        }
        if (req->method != HTTP_POST) {
            send_err(g, YR_E_METHOD_NOT_ALLOWED, "GET or POST /admin/keys", NULL);
            return;
        }
        json_t *body = body_object(g, true);
        if (body == NULL)
            return;
        json_t *name = json_object_get(body, "name");
        char err[160] = "";
        if (!json_is_string(name) || json_string_length(name) >= sizeof(kc.name)) {
            json_decref(body);
            send_err(g, YR_E_INVALID_REQUEST, "name is required (1 to 127 characters)", "name");
            return;
        }
        snprintf(kc.name, sizeof(kc.name), "%s", json_string_value(name));
        if (apply_fields(body, &kc.policy, err, sizeof(err)) != 0) {
            json_decref(body);
            send_err(g, YR_E_INVALID_REQUEST, err, NULL);
            return;
        }
        json_decref(body);
        kc.op = K_CREATE;
        submit(g, &kc);
        return;
    }
    /* /admin/keys/{which}[/rotate] */
    if (rest.ptr[0] != '/' || rest.len < 2) {
        send_err(g, YR_E_NOT_FOUND, "no such admin path", NULL);
        return;
    }
    yr_str_t which = {rest.ptr + 1, rest.len - 1};
    bool rotate = false;
    if (which.len > 7 && memcmp(which.ptr + which.len - 7, "/rotate", 7) == 0) {
        rotate = true;
        which.len -= 7;
    }
    if (which.len >= sizeof(kc.which) || memchr(which.ptr, '/', which.len) != NULL) {
        send_err(g, YR_E_NOT_FOUND, "no active key with that id or name", NULL);
        return;
    }
    memcpy(kc.which, which.ptr, which.len);
    if (rotate) {
        if (req->method != HTTP_POST) {
            send_err(g, YR_E_METHOD_NOT_ALLOWED, "POST /admin/keys/{key}/rotate", NULL);
            return;
        }
        json_t *body = body_object(g, false);
        if (body == NULL)
            return;
        json_t *grace = json_object_get(body, "grace_seconds");
        kc.grace_s = json_is_integer(grace) ? json_integer_value(grace) : 3600;
        json_decref(body);
        if (kc.grace_s < 0 || kc.grace_s > 365 * 86400) {
            send_err(g, YR_E_INVALID_REQUEST, "grace_seconds: 0 to a year", "grace_seconds");
            return;
        }
        kc.op = K_ROTATE;
    } else if (req->method == HTTP_GET) {
        kc.op = K_GET;
    } else if (req->method == HTTP_DELETE) {
        kc.op = K_REVOKE;
    } else if (req->method == HTTP_PATCH) {
        kc.changes = body_object(g, true);
        if (kc.changes == NULL)
            return;
        kc.op = K_UPDATE;
    } else {
        send_err(g, YR_E_METHOD_NOT_ALLOWED, "GET, PATCH or DELETE /admin/keys/{key}", NULL);
        return;
    }
    submit(g, &kc);
}

bool yr_admin_keys(yr_gw_req_t *g)
{
    yr_str_t p = g->http->path;
    if (!yr_str_eq(p, YR_STR("/admin/usage")) && !yr_str_eq(p, YR_STR("/admin/keys")) &&
        !yr_str_has_prefix(p, YR_STR("/admin/keys/")))
        return false;
    yr_gw_authenticate_master(g, keys_authed);
    return true;
}
