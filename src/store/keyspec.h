/* A key's policy as text, both ways: the one parser behind `yourouter keys
 * create|update --rpm 10 ...` and the admin API's JSON fields, and the one
 * JSON rendering of a key both print. */
#ifndef YR_KEYSPEC_H
#define YR_KEYSPEC_H

#include <stddef.h>

#include "core/buf.h"
#include "store/store.h"

/* Sets one field of p from its text. Fields: models, vendors (comma
 * separated lists), rpm, tpm, max_concurrency (non-negative integers; 0: no
 * limit), budget_daily, budget_monthly, budget_total (USD, e.g. "12.50"),
 * expires_at (unix seconds, or a duration from now: "30d", "12h", "90m";
 * "0" or "never": no expiry), metadata (a JSON object), log_content
 * (true/false; on defaults log_retention to 7d, off clears it),
 * log_retention (a duration 1s..90d, or seconds; needs log_content on).
 * now: unix seconds.
 * 0, or -EINVAL with a message in err (which never quotes the value), or
 * -ENOENT for an unknown field. */
int yr_keyspec_set(yr_key_policy_t *p, const char *field, const char *value, int64_t now,
                   char *err, size_t errlen);

/* {"id","name","prefix","created_at","revoked_at"|null,"models":[...],"vendors":[...],
 *  "rpm","tpm","max_concurrency","budgets":{"daily","monthly","total"} (USD or null),
 *  "expires_at"|null,"metadata"|null, "rotated_until"|null,
 *  "log_content": bool, "log_retention": seconds|null}. Never the secret. */
int yr_keyspec_json(const yr_key_info_t *k, yr_buf_t *out);

#endif
