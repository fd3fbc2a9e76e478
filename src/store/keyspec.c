/* keyspec.h: a key's policy from text, and a key as JSON. */
#include "store/keyspec.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits/price.h"

static int set_list(char *dst, size_t cap, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n >= cap) {
        snprintf(err, errlen, "list longer than %zu characters", cap - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "control characters are not allowed");
            return -EINVAL;
        }
    }
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_int(int64_t *dst, const char *v, char *err, size_t errlen)
{
    uint64_t n;
    if (yr_str_to_u64(yr_str(v), INT64_MAX / 2, &n) != 0) {
        snprintf(err, errlen, "must be a non-negative integer");
        return -EINVAL;
    }
    *dst = (int64_t)n;
    return 0;
}

/* Seconds of "30d", "12h", "90m", "45s"; -1 when not such a duration. */
static int64_t duration_s(const char *v)
{
    size_t n = strlen(v);
    if (n < 2)
        return -1;
    int64_t unit = v[n - 1] == 'd' ? 86400 : v[n - 1] == 'h' ? 3600 : v[n - 1] == 'm' ? 60
                 : v[n - 1] == 's' ? 1 : 0;
    uint64_t num;
    if (unit == 0 || yr_str_to_u64((yr_str_t){v, n - 1}, 100000000, &num) != 0)
        return -1;
    return (int64_t)num * unit;
}

int yr_keyspec_set(yr_key_policy_t *p, const char *field, const char *v, int64_t now, char *err,
                   size_t errlen)
{
    if (strcmp(field, "models") == 0)
        return set_list(p->allowed_models, sizeof(p->allowed_models), v, err, errlen);
    if (strcmp(field, "vendors") == 0)
        return set_list(p->allowed_vendors, sizeof(p->allowed_vendors), v, err, errlen);
    if (strcmp(field, "rpm") == 0)
        return set_int(&p->rpm, v, err, errlen);
    if (strcmp(field, "tpm") == 0)
        return set_int(&p->tpm, v, err, errlen);
    if (strcmp(field, "max_concurrency") == 0)
        return set_int(&p->max_concurrency, v, err, errlen);
    static const char *const budgets[YR_BUDGET__COUNT] = {"budget_daily", "budget_monthly",
                                                          "budget_total"};
    for (int b = 0; b < YR_BUDGET__COUNT; b++) {
        if (strcmp(field, budgets[b]) == 0) {
            int64_t micros = yr_price_parse(v);
            if (micros < 0) {
                snprintf(err, errlen, "must be an amount of USD such as 12.50");
                return -EINVAL;
            }
            p->budget_micros[b] = micros;
            return 0;
        }
    }
    if (strcmp(field, "expires_at") == 0) {
        if (strcmp(v, "never") == 0 || strcmp(v, "0") == 0) {
            p->expires_at = 0;
            return 0;
        }
        int64_t d = duration_s(v);
        if (d > 0) {
            p->expires_at = now + d;
            return 0;
        }
        return set_int(&p->expires_at, v, err, errlen);
    }
    if (strcmp(field, "metadata") == 0) {
        json_error_t je;
        json_t *j = json_loads(v, JSON_REJECT_DUPLICATES, &je);
        bool ok = j != NULL && json_is_object(j);
        json_decref(j);
        if (!ok) {
            snprintf(err, errlen, "must be a JSON object");
            return -EINVAL;
        }
        if (strlen(v) >= sizeof(p->metadata)) {
            snprintf(err, errlen, "longer than %zu bytes", sizeof(p->metadata) - 1);
            return -EINVAL;
        }
        memcpy(p->metadata, v, strlen(v) + 1);
        return 0;
    }
    if (strcmp(field, "log_content") == 0) {
        bool on = strcmp(v, "true") == 0 || strcmp(v, "on") == 0 || strcmp(v, "1") == 0;
        if (!on && strcmp(v, "false") != 0 && strcmp(v, "off") != 0 && strcmp(v, "0") != 0) {
            snprintf(err, errlen, "must be true or false");
            return -EINVAL;
        }
        p->log_content = on;
        if (!on)
            p->log_retention_s = 0;
        else if (p->log_retention_s == 0)
            p->log_retention_s = YR_CONTENT_RETENTION_DEF;
        return 0;
    }
    if (strcmp(field, "log_retention") == 0) {
        int64_t d = duration_s(v);
        uint64_t n;
        if (d < 0 && yr_str_to_u64(yr_str(v), YR_CONTENT_RETENTION_MAX, &n) == 0)
            d = (int64_t)n; /* plain seconds */
        if (d <= 0 || d > YR_CONTENT_RETENTION_MAX) {
            snprintf(err, errlen, "must be a duration from 1s to 90d");
            return -EINVAL;
        }
        if (!p->log_content) {
            snprintf(err, errlen, "needs log_content on");
            return -EINVAL;
        }
        p->log_retention_s = d;
        return 0;
    }
    snprintf(err, errlen, "unknown field");
    return -ENOENT;
}

static json_t *list_json(const char *list)
{
    json_t *a = json_array();
    for (const char *c = list; a != NULL && *c != '\0';) {
        size_t n = strcspn(c, ",");
        const char *s = c;
        size_t len = n;
        while (len > 0 && *s == ' ')
            s++, len--;
        while (len > 0 && s[len - 1] == ' ')
            len--;
        if (len > 0)
            json_array_append_new(a, json_stringn(s, len));
        c += n;
        if (*c == ',')
            c++;
    }
    return a;
}

static json_t *int_or_null(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static json_t *usd_or_null(int64_t micros)
{
    return micros > 0 ? json_real((double)micros / 1e6) : json_null();
}

int yr_keyspec_json(const yr_key_info_t *k, yr_buf_t *out)
{
    const yr_key_policy_t *p = &k->policy;
    json_t *meta = p->metadata[0] ? json_loads(p->metadata, 0, NULL) : NULL;
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:o, s:o, s:o, s:b,"
        " s:o}",
        "id", (json_int_t)k->id, "name", k->name, "prefix", k->prefix, "created_at",
        (json_int_t)k->created_at, "revoked_at", int_or_null(k->revoked_at), "models",
        list_json(p->allowed_models), "vendors", list_json(p->allowed_vendors), "rpm",
        int_or_null(p->rpm), "tpm", int_or_null(p->tpm), "max_concurrency",
        int_or_null(p->max_concurrency), "budgets", "daily",
        usd_or_null(p->budget_micros[YR_BUDGET_DAY]), "monthly",
        usd_or_null(p->budget_micros[YR_BUDGET_MONTH]), "total",
        usd_or_null(p->budget_micros[YR_BUDGET_TOTAL]), "expires_at", int_or_null(p->expires_at),
        "metadata", meta != NULL ? meta : json_null(), "rotated_until",
        int_or_null(k->prev_valid_until), "log_content", p->log_content, "log_retention",
        int_or_null(p->log_content ? p->log_retention_s : 0));
    if (j == NULL)
        return -ENOMEM;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        return -ENOMEM;
    int rc = yr_buf_append_str(out, yr_str(s));
    free(s);
    return rc;
}
