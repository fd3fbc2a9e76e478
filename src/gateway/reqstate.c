#include "gateway/reqstate.h"

static const char *const names[YR_RS__COUNT] = {
    [YR_RS_AUTH] = "AUTH",         [YR_RS_ADMIT] = "ADMIT",   [YR_RS_FETCHING] = "FETCHING",
    [YR_RS_ATTEMPT] = "ATTEMPT",   [YR_RS_BACKOFF] = "BACKOFF", [YR_RS_STREAMING] = "STREAMING",
    [YR_RS_DONE] = "DONE",
};

#define B(s) (1u << (s))

/* allowed[from] = the set of states it may move to */
static const unsigned allowed[YR_RS__COUNT] = {
    [YR_RS_AUTH] = B(YR_RS_ADMIT) | B(YR_RS_DONE),
    [YR_RS_ADMIT] = B(YR_RS_FETCHING) | B(YR_RS_ATTEMPT) | B(YR_RS_DONE),
    [YR_RS_FETCHING] = B(YR_RS_ATTEMPT) | B(YR_RS_DONE),
    [YR_RS_ATTEMPT] = B(YR_RS_ATTEMPT) | B(YR_RS_BACKOFF) | B(YR_RS_STREAMING) | B(YR_RS_DONE),
    [YR_RS_BACKOFF] = B(YR_RS_ATTEMPT) | B(YR_RS_DONE),
    [YR_RS_STREAMING] = B(YR_RS_DONE),
    [YR_RS_DONE] = 0,
};

const char *yr_reqstate_name(yr_reqstate_t s)
{
    return s < YR_RS__COUNT ? names[s] : "?";
}

bool yr_reqstate_allowed(yr_reqstate_t from, yr_reqstate_t to)
{
    return from < YR_RS__COUNT && to < YR_RS__COUNT && (allowed[from] & B(to)) != 0;
}
