/* The framer of a streamed upstream body: cuts raw bytes into the messages
 * a dialect decodes, in the framing its transport names: SSE, or the AWS
 * eventstream (providers/eventstream.h). An eventstream message becomes a
 * frame whose event is its :event-type and data its payload; an exception
 * message's event is "exception:" + its :exception-type (data: the
 * payload), an error message's "error:" + its :error-code (data: its
 * :error-message), so a dialect cannot take one for an event (event types
 * have no ':'). Bounded: a message larger than the cap is
 * an error (-E2BIG; the eventstream's cap is YR_ES_MAX_MESSAGE), a corrupt
 * one -EPROTO. Owned by its attempt; yr_framer_free releases it. */
#ifndef YR_FRAMING_H
#define YR_FRAMING_H

#include "api/sse.h"
#include "providers/dialect.h"
#include "providers/eventstream.h"

typedef int (*yr_frame_fn)(const yr_frame_t *m, void *arg);

typedef struct {
    yr_framing_t kind;
    yr_sse_parser_t sse;
    yr_es_parser_t es;
    char es_event[96]; /* the event name of an exception or error frame */
} yr_framer_t;

void yr_framer_init(yr_framer_t *f, yr_framing_t kind, size_t max_message);
void yr_framer_free(yr_framer_t *f);
/* Feeds bytes; fn runs for every complete message. Returns 0, fn's non-zero
 * value, -E2BIG, -EPROTO, or -ENOTSUP for a framing this build cannot read. */
__attribute__((warn_unused_result)) int yr_framer_feed(yr_framer_t *f, const char *p, size_t n,
                                                        yr_frame_fn fn, void *arg);
/* True when bytes of an unfinished message are buffered. */
bool yr_framer_partial(const yr_framer_t *f);

#endif
