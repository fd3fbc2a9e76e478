/* The first routing policy: config order, each route once. */
#include "route/route.h"

#include <errno.h>

int yr_route_plan(yr_route_plan_t *plan, yr_pool_t *pool, const yr_model_conf_t *model,
                  yr_str_t vendor, bool (*callable)(yr_provider_kind_t), yr_route_filter_fn filter,
                  void *arg)
{
    *plan = (yr_route_plan_t){.model = model};
    plan->pinned = vendor.len > 0 && !yr_str_ieq(vendor, YR_STR("auto"));
    if (model->nroutes == 0)
        return 0;
    plan->routes = yr_palloc(pool, model->nroutes * sizeof(*plan->routes));
    if (plan->routes == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < model->nroutes; i++) {
        const yr_route_conf_t *r = &model->routes[i];
        if (plan->pinned && !yr_str_ieq(vendor, yr_str(r->provider->name)))
            continue;
        if (callable != NULL && !callable(r->provider->kind)) {
            plan->unsupported++;
            continue;
        }
        if (filter != NULL && !filter(r, arg))
            continue;
        plan->routes[plan->n++] = r;
    }
    return 0;
}

const yr_route_conf_t *yr_peer_get(yr_route_plan_t *plan, uint64_t now_ms, uint64_t *delay_ms)
{
    (void)now_ms;
    *delay_ms = 0;
    return plan->next < plan->n ? plan->routes[plan->next++] : NULL;
}

void yr_peer_free(yr_route_plan_t *plan, const yr_attempt_t *a)
{
    /* Health, cool-downs and Retry-After scheduling across requests belong
     * here (the resilient-routing issue); the first policy learns nothing. */
    (void)plan;
    (void)a;
}
