/* Per-key admission: RPM, TPM, concurrency and budgets (local counters, or
 * Redis shared by every instance). A request is admitted before its first
 * attempt and released once it ended, with what it actually used:
 *
 *   yr_limits_admit()    0: admitted now; 1: pending (cb runs later, on the
 *                        worker's loop); -EAGAIN: over a limit (*res says
 *                        which and when to come back)
 *   yr_limits_cancel()   the request went away while pending: cb never runs
 *   yr_limits_release()  the request ended; usage settles reservations
 *
 * The policy here admits everything (no limits are configured yet): the
 * keys-and-usage issue fills it in behind these calls. */
#ifndef YR_LIMITS_H
#define YR_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "api/events.h"
#include "auth/auth.h"
#include "core/buf.h"

typedef struct yr_limits yr_limits_t;
typedef struct yr_admission yr_admission_t;

typedef struct {
    yr_identity_t who;
    yr_str_t model;
    int64_t max_tokens; /* the request's output bound, for TPM and budget reservations; -1: none */
} yr_admit_req_t;

typedef struct {
    int64_t retry_after_ms; /* when -EAGAIN */
    const char *limit;      /* which limit refused: "rpm", "tpm", ... (static) */
} yr_admit_res_t;

typedef void (*yr_admit_cb)(void *arg, int rc, const yr_admit_res_t *res);

/* One per worker; owned by the caller. */
__attribute__((warn_unused_result)) int yr_limits_init(yr_limits_t **out);
void yr_limits_free(yr_limits_t *l);

/* *adm is what release/cancel take (may be NULL when nothing was reserved). */
__attribute__((warn_unused_result)) int yr_limits_admit(yr_limits_t *l, const yr_admit_req_t *req,
                                                        yr_admit_cb cb, void *arg,
                                                        yr_admission_t **adm, yr_admit_res_t *res);
void yr_limits_cancel(yr_limits_t *l, yr_admission_t *adm);
void yr_limits_release(yr_limits_t *l, yr_admission_t *adm, const yr_usage_t *used);

#endif
