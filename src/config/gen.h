/* Config generations. A generation owns one validated yr_config_t and counts
 * who still reads it: the runtime (the newest generation), every worker (the
 * generation it hands to new requests) and every request (the generation it
 * started on). A reload makes a new generation and drops the runtime's and
 * the workers' references to the old one; the last request to end frees it.
 * So a reload never frees memory a request is still reading, and a request
 * sees one config from start to end. */
#ifndef YR_CONFIG_GEN_H
#define YR_CONFIG_GEN_H

#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"

typedef struct yr_cfg_gen {
    yr_config_t *cfg;      /* owned; read-only; freed by the last release */
    uint64_t number;       /* 1 for the config the process started with */
    _Atomic uint32_t refs; /* acquire/release only */
} yr_cfg_gen_t;

/* Makes cfg a generation that holds one reference, returned in *out (the
 * caller owns that reference). The generation takes cfg over, also when it
 * fails (then cfg is freed): 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_cfg_gen_new(yr_config_t *cfg, uint64_t number,
                                                       yr_cfg_gen_t **out);

/* One more reference to gen, which the caller must already hold one to (or
 * know is held, e.g. a worker's current generation on its own thread).
 * Returns gen. Any thread. */
yr_cfg_gen_t *yr_cfg_gen_acquire(yr_cfg_gen_t *gen);

/* Pins gen for the life of pool: one more reference, released by a pool
 * cleanup. Register it before any cleanup that reads the config, since
 * cleanups run last-in first-out. Returns gen->cfg (valid until the pool is
 * destroyed), or NULL when out of memory (nothing is pinned then). */
const yr_config_t *yr_cfg_gen_pin(yr_cfg_gen_t *gen, yr_pool_t *pool);

/* Drops one reference; the last one frees the config and the generation.
 * NULL is ignored. Any thread. */
void yr_cfg_gen_release(yr_cfg_gen_t *gen);

/* Called once for each restart-only setting a reload would change. key is a
 * static string such as "server.listen"; values are never passed, since some
 * (storage.url) may hold passwords. */
typedef void (*yr_cfg_ignored_fn)(const char *key, void *arg);

/* Settings that are read only when the gateway starts: the listen address,
 * the number of workers, storage.url and storage.redis_url (each worker opens
 * its store connection at start) and server.max_body_bytes and
 * server.idle_timeout_ms (copied into each listener). Wherever next differs
 * from running, next gets running's value and on_ignored is called, so the
 * next generation describes what actually runs, never half of a change.
 * Strings are copied into next's pool. 0, or -ENOMEM (next is then only fit
 * for yr_config_free). */
__attribute__((warn_unused_result)) int
yr_config_keep_restart_settings(yr_config_t *next, const yr_config_t *running,
                                yr_cfg_ignored_fn on_ignored, void *arg);

#endif
