/* The gateway's internal response model: a typed event stream.
 *
 * Every provider dialect turns what its provider sent (a full response body
 * or one stream message) into these events; every client-side encoder
 * (OpenAI chat chunks, Anthropic Messages events, and next Gemini and the
 * Responses API) turns them into what its client expects. A non-streamed
 * answer is the same sequence, collected by the encoder and written once at
 * YR_EV_END. So each mapping (finish reasons, usage, tool-call indexes)
 * exists once per provider, and each client format once.
 *
 * The order a decoder emits, for one response:
 *
 *   START
 *   ( TEXT | REASONING | REFUSAL | TOOL_START TOOL_ARGS* TOOL_END )*
 *   FINISH? USAGE? END
 *
 * Tool calls may interleave (OpenAI streams parallel calls by index): a
 * TOOL_ARGS always names the index of a call whose TOOL_START came before.
 * A decoder that never saw an explicit end of a call emits TOOL_END for it
 * before FINISH. USAGE may come more than once; each one replaces the last
 * (counts are cumulative, as every provider reports them). ERROR replaces
 * the tail of the sequence when the provider reported a failure in-band.
 *
 * Lifetime: every slice in an event is valid only during the call that
 * delivers it; a consumer copies what it keeps. */
#ifndef YR_EVENTS_H
#define YR_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
    YR_EV_START,      /* id (provider's response id), model (upstream's), created;
                       * usage when the opening message reported some (a
                       * USAGE event follows with it too) */
    YR_EV_TEXT,       /* text: a delta of the answer */
    YR_EV_REASONING,  /* text: a delta of the reasoning; signature: the block's
                       * signature (Anthropic thinking; may arrive in its own
                       * event with empty text); redacted: opaque data in
                       * signature, no text (Anthropic redacted_thinking) */
    YR_EV_REFUSAL,    /* text: a delta of a refusal (OpenAI message.refusal) */
    YR_EV_TOOL_START, /* index, id, name; signature: a provider's opaque token
                       * bound to this call (Gemini thoughtSignature), or empty */
    YR_EV_TOOL_ARGS,  /* index; text: a fragment of the JSON arguments */
    YR_EV_TOOL_END,   /* index */
    YR_EV_FINISH,     /* finish; stop_sequence (the matched one, or empty) */
    YR_EV_USAGE,      /* usage */
    YR_EV_ERROR,      /* status, error_type, text = message: the provider
                       * failed in-band (an SSE error event) */
    YR_EV_END,        /* the response is complete */
} yr_ev_type_t;

/* Why the answer ended, in OpenAI's terms (each dialect maps its own). */
typedef enum {
    YR_FINISH_STOP = 0,
    YR_FINISH_LENGTH,
    YR_FINISH_TOOL_CALLS,
    YR_FINISH_CONTENT_FILTER,
} yr_finish_t;

/* Token counts. prompt_tokens counts every input token, cached ones
 * included (OpenAI's convention; Anthropic reports input, cache reads and
 * cache writes apart, and its decoder adds them up). completion_tokens
 * includes reasoning tokens. */
typedef struct {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;      /* prompt tokens read from the provider's cache */
    int64_t cache_write_tokens; /* prompt tokens written to it (Anthropic) */
    int64_t cache_write_1h_tokens; /* ... of which written for 1 hour (priced higher) */
    int64_t reasoning_tokens;   /* completion tokens spent reasoning */
    bool present;
} yr_usage_t;

typedef struct {
    yr_ev_type_t type;
    uint32_t index;     /* TOOL_*: 0-based, in order of first appearance */
    yr_str_t id;        /* START: response id; TOOL_START: call id */
    yr_str_t name;      /* START: model; TOOL_START: function name */
    yr_str_t text;      /* TEXT/REASONING/REFUSAL/TOOL_ARGS: the delta; ERROR: message */
    yr_str_t signature; /* REASONING / TOOL_START, see above */
    bool redacted;      /* REASONING */
    int64_t created;    /* START: unix seconds (0: now) */
    yr_finish_t finish; /* FINISH */
    yr_str_t stop_sequence;
    yr_usage_t usage;   /* USAGE; START (see above) */
    int status;         /* ERROR: the HTTP status it stands for (529 = overloaded) */
    yr_str_t error_type; /* ERROR: the provider's type, e.g. overloaded_error */
} yr_event_t;

/* A consumer of events. Returns 0 to go on, or a negative code that the
 * producer stops at and returns as it is. */
typedef int (*yr_ev_fn)(void *arg, const yr_event_t *ev);

/* The OpenAI spelling of a finish reason ("stop", "length", ...). */
const char *yr_finish_openai(yr_finish_t f);

#endif
