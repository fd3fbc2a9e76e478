/* The first admission policy: everything is admitted, nothing is reserved. */
#include "limits/limits.h"

#include <errno.h>
#include <stdlib.h>

struct yr_limits {
    uint64_t admitted; /* so the seam is observable in tests */
};

int yr_limits_init(yr_limits_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void yr_limits_free(yr_limits_t *l)
{
    free(l);
}

int yr_limits_admit(yr_limits_t *l, const yr_admit_req_t *req, yr_admit_cb cb, void *arg,
                    yr_admission_t **adm, yr_admit_res_t *res)
{
    (void)req;
    (void)cb;
    (void)arg;
    *adm = NULL;
    *res = (yr_admit_res_t){.retry_after_ms = -1};
    l->admitted++;
    return 0;
}

void yr_limits_cancel(yr_limits_t *l, yr_admission_t *adm)
{
    (void)l;
    (void)adm;
}

void yr_limits_release(yr_limits_t *l, yr_admission_t *adm, const yr_usage_t *used)
{
    (void)l;
    (void)adm;
    (void)used;
}
