/* Incremental Server-Sent Events parser (WHATWG framing: lines end in LF, CR
 * or CRLF; "data:" lines join with LF; a blank line dispatches; ":" lines are
 * comments). Bounded: an event larger than max_event is an error. */
#ifndef YR_SSE_H
#define YR_SSE_H

#include <stdbool.h>

#include "core/buf.h"

#define YR_SSE_MAX_EVENT (4 * 1024 * 1024)

typedef struct {
    yr_str_t event; /* "" when the event had no event: line */
    yr_str_t data;
} yr_sse_event_t;

/* Return 0 to continue, non-zero to stop parsing (returned by feed). */
typedef int (*yr_sse_fn)(const yr_sse_event_t *ev, void *arg);

typedef struct {
    yr_buf_t line;
    yr_buf_t data;
    yr_buf_t event;
    bool has_data;
    bool last_cr; /* the previous chunk ended in CR: skip a leading LF */
} yr_sse_parser_t;

void yr_sse_init(yr_sse_parser_t *p, size_t max_event);
void yr_sse_free(yr_sse_parser_t *p);
/* Feeds bytes; calls fn for every complete event. Returns 0, fn's non-zero
 * value, or -E2BIG when an event exceeds the cap or a line (any field,
 * comments included) exceeds it by more than a field name, however the
 * bytes were split across feeds. */
__attribute__((warn_unused_result)) int yr_sse_feed(yr_sse_parser_t *p, const char *buf, size_t n,
                                                     yr_sse_fn fn, void *arg);
/* True when bytes of an unfinished event are buffered. */
bool yr_sse_partial(const yr_sse_parser_t *p);

#endif
