/* The states of a proxied request and the moves between them:
 *
 *   AUTH -> ADMIT -> [FETCHING] -> ATTEMPT <-> BACKOFF
 *                                    |  ^ (next route)
 *                                    v  |
 *                                 STREAMING -> DONE
 *
 * Any state may end in DONE (an answer, an error, or the client leaving).
 * AUTH: the client key is being checked (the store may be asked).
 * ADMIT: per-key limits decide (may wait for shared counters).
 * FETCHING: image URLs are fetched for a route that takes images inline.
 * ATTEMPT: an upstream call is in flight and nothing was sent: any
 *   retryable failure moves on (peer_get), invisibly to the client.
 * BACKOFF: waiting before the next attempt (a retry hint, a backoff).
 * STREAMING: the 200 and at least one event went out: a failure now is an
 *   explicit error event, never a retry and never a silent end.
 * The table is pure, so the machine is unit-tested apart from sockets. */
#ifndef YR_REQSTATE_H
#define YR_REQSTATE_H

#include <stdbool.h>

typedef enum {
    YR_RS_AUTH = 0,
    YR_RS_ADMIT,
    YR_RS_FETCHING,
    YR_RS_ATTEMPT,
    YR_RS_BACKOFF,
    YR_RS_STREAMING,
    YR_RS_DONE,
    YR_RS__COUNT
} yr_reqstate_t;

const char *yr_reqstate_name(yr_reqstate_t s);
/* Whether from -> to is a move of the machine above (from == to is not,
 * except ATTEMPT -> ATTEMPT: the next route). */
bool yr_reqstate_allowed(yr_reqstate_t from, yr_reqstate_t to);

#endif
