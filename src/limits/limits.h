/* Per-key admission: RPM, TPM, concurrency and budgets. A request is
 * admitted before its first attempt and released once it ended, with what
 * it actually used:
 *
 *   yr_limits_admit()    0: admitted now; 1: pending (cb runs later, on the
 *                        worker's loop); -EAGAIN: over a limit (*res says
 *                        which and when to come back)
 *   yr_limits_cancel()   the request went away while pending: cb never runs
 *   yr_limits_release()  the request ended; usage settles reservations
 *
 * The counters are the process's (one table shared by every worker, a mutex
 * per key), so a key's limits hold whatever worker its requests land on:
 * - RPM: admitted requests in the last 60 s (per-second buckets);
 * - TPM: tokens the key's requests used in the last 60 s, plus what the
 *   requests in flight may still use (their max_tokens estimates, settled
 *   to the real count when they end);
 * - concurrency: requests in flight;
 * - budgets (day / month / total, micro-USD): what the usage rows of the
 *   window said at the key's first lookup, plus every cost settled since,
 *   plus the maximum cost of every request in flight (reserved at admission:
 *   concurrent requests overspend by at most one request's maximum cost,
 *   when its estimate was too low).
 * Several instances share these through Redis (the multi-instance step);
 * without it each instance counts alone. The master key is never limited. */
#ifndef YR_LIMITS_H
#define YR_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/events.h"
#include "auth/auth.h"
#include "core/buf.h"
#include <uv.h>

typedef struct yr_limits yr_limits_t;
typedef struct yr_admission yr_admission_t;

typedef struct {
    yr_identity_t who;
    yr_str_t model;
    int64_t max_tokens;   /* the request's output bound (-1: none), for TPM */
    int64_t input_tokens; /* an estimate of the prompt, for TPM */
    int64_t max_cost_micros; /* what the request may cost at most, for budgets (0: unknown) */
    int64_t deadline_ms;     /* the request's time limit; a lost release stops counting after */
} yr_admit_req_t;

/* A limit's state as OpenAI's x-ratelimit-* headers say it. */
typedef struct {
    int64_t limit;     /* 0: the key has no such limit */
    int64_t remaining;
    int64_t reset_ms;  /* until a slot frees up (or the window resets) */
} yr_limit_state_t;

typedef struct {
    int64_t retry_after_ms; /* when -EAGAIN */
    const char *limit;      /* which limit refused: "rpm", "tpm", "concurrency", "budget_day",
                               "budget_month", "budget_total" (static) */
    yr_limit_state_t requests, tokens; /* for the headers, admitted or not */
} yr_admit_res_t;

typedef void (*yr_admit_cb)(void *arg, int rc, const yr_admit_res_t *res);

/* One per worker; owned by the caller. The counters behind it are shared. */
__attribute__((warn_unused_result)) int yr_limits_init(yr_limits_t **out);
void yr_limits_free(yr_limits_t *l);
/* Shares the counters through Redis at url (storage.redis_url); on l's
 * loop. While Redis is away admission falls back to this instance's
 * counters (fail open, bounded by the same limits per instance). */
__attribute__((warn_unused_result)) int yr_limits_use_redis(yr_limits_t *l, uv_loop_t *loop,
                                                            const char *url);
/* Closes the Redis connection (on the loop, before it stops). */
void yr_limits_close(yr_limits_t *l);

/* *adm is what release/cancel take (may be NULL when nothing was reserved). */
__attribute__((warn_unused_result)) int yr_limits_admit(yr_limits_t *l, const yr_admit_req_t *req,
                                                        yr_admit_cb cb, void *arg,
                                                        yr_admission_t **adm, yr_admit_res_t *res);
void yr_limits_cancel(yr_limits_t *l, yr_admission_t *adm);
/* used: what the request's attempts used in all; cost_micros: what it cost
 * (-1: unknown: nothing is added to the budgets). */
void yr_limits_release(yr_limits_t *l, yr_admission_t *adm, const yr_usage_t *used,
                       int64_t cost_micros);

/* Whether the key's policy lets it use this model id / provider name:
 * comma-separated patterns, '*' matching any run of characters, case
 * sensitive for models, insensitive for vendors; an empty list allows all. */
bool yr_key_allows_model(const yr_key_policy_t *p, yr_str_t model);
bool yr_key_allows_vendor(const yr_key_policy_t *p, yr_str_t vendor);

/* The current day / month window numbers of unix time t (UTC), and the
 * seconds until each ends. For budgets and their Retry-After. */
int64_t yr_limits_day(int64_t t);
int64_t yr_limits_month(int64_t t);
int64_t yr_limits_window_left_s(int budget, int64_t t);

/* For unit tests: forget every key's counters. Not while requests run. */
void yr_limits_reset_all(void);

#endif
