/* A worker's Redis connection for the limits shared by every instance
 * (limits.c): hiredis async on the worker's loop. While Redis is away the
 * connection retries once a second and yr_redis_ready() is false: the
 * limits are then counted per instance (the documented fail-open mode,
 * bounded by the same limits on each instance), and the outage and the
 * recovery are logged once each. redis://[user:password@]host[:port][/db];
 * rediss:// is refused (Debian 12's hiredis 0.14 has no TLS). */
#ifndef YR_REDIS_H
#define YR_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

typedef struct yr_redis yr_redis_t;

/* status 0: values are the integers of the script's reply (an array of
 * integers, or one integer); negative: no answer (-EIO) or a script error. */
typedef void (*yr_redis_cb)(void *arg, int status, const int64_t *values, size_t n);

__attribute__((warn_unused_result)) int yr_redis_init(uv_loop_t *loop, const char *url,
                                                      yr_redis_t **out);
/* On the loop's thread; replies still due run their callbacks with -EIO. */
void yr_redis_close(yr_redis_t *r);
bool yr_redis_ready(const yr_redis_t *r);
/* EVAL script with nkeys of args as KEYS, the rest as ARGV. 0 when sent
 * (cb runs later, exactly once), -ENOTCONN when not ready. */
__attribute__((warn_unused_result)) int yr_redis_eval(yr_redis_t *r, const char *script, int nkeys,
                                                      const char *const *args, size_t nargs,
                                                      yr_redis_cb cb, void *arg);

#endif
