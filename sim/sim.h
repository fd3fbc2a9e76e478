/* yourouter-sim: a provider simulator for tests and benchmarks.
 *
 * The simulator is split in two halves:
 *   - the machinery (main.c, exchange.c, script.c, record.c): routing, the
 *     scripted behaviour of each request, delays, stream pacing with
 *     backpressure, faults, request recording and statistics;
 *   - dialects (openai.c, anthropic.c, azure.c): pure functions that
 *     validate a provider's request format and render its responses, stream
 *     events and errors into a buffer. A dialect never touches the network.
 *
 * Lifetimes: one sim_t per process. Each HTTP request to a non-control path
 * gets a sim_exchange_t allocated in the request's pool; non-memory resources
 * (its timer, JSON references) are released by a pool cleanup, which is also
 * where the statistics are settled. See docs/sim.md. */
#ifndef YR_SIM_H
#define YR_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/pool.h"
#include "server/http.h"

#define SIM_MAX_BODY (32u * 1024 * 1024)     /* request bodies; larger ones get 413 */
#define SIM_MAX_RESPONSE (64u * 1024 * 1024) /* one rendered response or event */
#define SIM_MAX_DELAY_MS (600u * 1000)       /* scripted delays and wait timeouts */
#define SIM_MAX_N 128                        /* choices per request (OpenAI's limit) */
#define SIM_STREAM_HIGH_WATER (256u * 1024)  /* stop queueing events above this */

typedef struct sim sim_t;
typedef struct sim_exchange sim_exchange_t;
typedef struct sim_dialect sim_dialect_t;

/* ---- scripted behaviour --------------------------------------------------- */

/* One scripted behaviour. Every string points into root, which the
 * behaviour holds one reference to (released by sim_behaviour_clear). */
typedef struct {
    json_t *root;
    bool has_text;
    yr_str_t text;
    json_t *tool_calls; /* array of {name, arguments (a JSON string), id?} */
    yr_str_t finish_reason;
    int status; /* 0: none */
    yr_str_t retry_after;
    yr_str_t error_message, error_type, error_code, error_param;
    uint64_t headers_delay_ms, chunk_delay_ms;
    uint64_t chunks;   /* 0: one piece per word */
    uint64_t repeat;   /* stream the content pieces this many times (1 = once) */
    int64_t cut_after; /* -1: none */
    bool malformed, hang;
    yr_str_t stream_error;      /* Anthropic: an `event: error` of this type mid-stream */
    yr_str_t content_filter;    /* Azure: this filter category flags the prompt (a 400) or,
                                 * with finish_reason content_filter, the output */
    int64_t stream_error_after; /* ... after this many events; -1: default (1) */
    json_t *usage;              /* object merged into the computed usage, or NULL */
    /* Gemini: a 429's google.rpc.RetryInfo.retryDelay ("57s") and
     * QuotaFailure quotaId; a prompt blocked (promptFeedback.blockReason);
     * an empty candidate (the budget went to thinking). */
    yr_str_t retry_delay, quota_id, block_reason;
    bool empty_candidate;
    bool has_body;
    yr_str_t body;
    yr_str_t content_type;
    json_t *headers;    /* object name -> string, extra response headers */
    char retry_buf[24]; /* retry_after given as a number */
} sim_behaviour_t;

/* Parses a behaviour object; takes a new reference to obj on success (and
 * owns the normalised tool_calls). On failure returns -EINVAL and writes a
 * message naming the bad field to why[0..whylen). */
__attribute__((warn_unused_result)) int sim_behaviour_parse(json_t *obj, sim_behaviour_t *b,
                                                            char *why, size_t whylen);
void sim_behaviour_init(sim_behaviour_t *b);
void sim_behaviour_clear(sim_behaviour_t *b);

/* ---- the dialect-neutral request and reply --------------------------------- */

enum sim_tool_choice { SIM_TOOLS_AUTO, SIM_TOOLS_NONE, SIM_TOOLS_REQUIRED, SIM_TOOLS_NAMED };

/* What a dialect extracts from a valid request. Strings point into the parsed
 * body or into the request pool. */
typedef struct {
    yr_str_t model;
    yr_str_t last_user_text; /* text parts of the last user message, "\n"-joined */
    size_t images;           /* image parts in that message */
    uint64_t prompt_bytes;   /* bytes of every message text */
    bool has_tools;
    enum sim_tool_choice tool_choice;
    yr_str_t forced_tool; /* the named tool, or the first tool for "required" */
    uint64_t max_tokens;  /* 0: unset */
    size_t n;             /* choices, >= 1 */
    bool stream, include_usage;
} sim_prompt_t;

enum sim_finish { SIM_FINISH_STOP, SIM_FINISH_LENGTH, SIM_FINISH_TOOL_CALLS };

typedef struct {
    yr_str_t id;
    yr_str_t name;
    yr_str_t arguments; /* JSON text */
} sim_call_t;

/* What the simulated model answers; the same for every choice. */
typedef struct {
    bool has_text; /* false: content is null (tool calls only) */
    yr_str_t text;
    sim_call_t *calls;
    size_t ncalls;
    enum sim_finish finish;
    yr_str_t finish_override; /* scripted finish_reason, sent verbatim */
    uint64_t prompt_tokens;
    uint64_t completion_tokens; /* for all choices together */
    json_t *usage_override;     /* borrowed from the behaviour */
    size_t chunks;              /* content pieces when streaming; 0 = per word */
    size_t repeat;              /* rounds of content pieces when streaming (>= 1) */
} sim_reply_t;

/* Builds x->reply from x->prompt and x->beh (the deterministic text, token
 * counts, forced tool calls, max_tokens truncation). Memory from x->pool. */
__attribute__((warn_unused_result)) int sim_reply_build(sim_exchange_t *x);

/* ---- errors ------------------------------------------------------------------ */

/* An error to render in a dialect's shape. NULL ptr fields render as null. */
typedef struct {
    int status;
    yr_str_t message;
    yr_str_t type;
    yr_str_t param;
    yr_str_t code;
    yr_str_t filtered; /* Azure: the content filter category that fired, or none */
    yr_str_t retry_delay, quota_id; /* Gemini: RetryInfo / QuotaFailure details */
    char msgbuf[512];
    char parambuf[96];
} sim_error_t;

/* Formats the message into err->msgbuf (truncated at a UTF-8 boundary). */
void sim_error_set(sim_error_t *err, int status, const char *type, const char *code,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Formats err->param into err->parambuf. */
void sim_error_param(sim_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- dialects ------------------------------------------------------------------- */

typedef enum { SIM_ROUTE_NONE, SIM_ROUTE_CHAT, SIM_ROUTE_MODELS, SIM_ROUTE_MODEL } sim_route_t;

/* stream_next results */
#define SIM_EVENT 1      /* one event appended */
#define SIM_EVENT_LAST 2 /* the stream's final event appended (e.g. [DONE]) */

struct sim_dialect {
    const char *name;
    /* Which endpoint of this dialect req addresses (method and path). */
    sim_route_t (*route)(const yr_http_req_t *req);
    /* 0 when req presents key (or key.len == 0), else fills err (401). */
    int (*check_auth)(const yr_http_req_t *req, yr_str_t key, sim_error_t *err);
    /* Validates body (may be NULL: not JSON) and fills x->prompt; returns 0
     * or -EINVAL with err filled. Allocates from x->pool. */
    int (*parse)(sim_exchange_t *x, json_t *body, sim_error_t *err);
    /* Fills err's type, code and message for a bare status. */
    void (*error_defaults)(int status, sim_error_t *err);
    int (*render_error)(const sim_error_t *err, yr_buf_t *out);
    /* The complete non-streamed response body for x->reply. */
    int (*render)(sim_exchange_t *x, yr_buf_t *out);
    /* Streaming: x->dstate points to stream_state_size zeroed bytes.
     * stream_next appends the next event and returns SIM_EVENT or
     * SIM_EVENT_LAST (or a negative error); stream_events tells how many
     * events the whole stream has (to inject faults "in the middle"). */
    size_t stream_state_size;
    int (*stream_next)(sim_exchange_t *x, yr_buf_t *out);
    size_t (*stream_events)(const sim_exchange_t *x);
    yr_str_t stream_content_type;
    yr_str_t malformed_event; /* an event whose payload is not JSON */
    /* GET of the model list (SIM_ROUTE_MODELS) or one model (SIM_ROUTE_MODEL). */
    int (*render_models)(const yr_http_req_t *req, sim_route_t route, yr_buf_t *out);
    /* Providers with a content filter (Azure): fills err for a prompt the
     * behaviour's content_filter category flags. NULL: the field is ignored. */
    void (*filter_error)(yr_str_t category, sim_error_t *err);
    /* A retry-after of N seconds also goes out as retry-after-ms (Azure). */
    bool retry_after_ms;
    /* Bedrock: the header an error's type goes in (x-amzn-ErrorType), with
     * what the service appends to it (":http://internal.amazon.com/..."),
     * and a second name for the request id (x-amzn-RequestId); NULL: none. */
    const char *error_type_header;
    const char *error_type_suffix;
    const char *request_id_header;
};

extern const sim_dialect_t sim_dialect_openai;
extern const sim_dialect_t sim_dialect_anthropic;
extern const sim_dialect_t sim_dialect_azure;
extern const sim_dialect_t sim_dialect_gemini;
extern const sim_dialect_t sim_dialect_responses;  /* responses.c: OpenAI /v1/responses */
extern const sim_dialect_t sim_dialect_embeddings; /* embeddings.c: OpenAI and Azure */
extern const sim_dialect_t sim_dialect_gemini_embed; /* embeddings.c: Gemini */
extern const sim_dialect_t sim_dialect_vertex_predict; /* embeddings.c: Vertex's :predict */
/* OpenAI's auth check and error shape, for the dialects that share them. */
int sim_oai_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err);
void sim_oai_error_defaults(int status, sim_error_t *err);
int sim_oai_render_error(const sim_error_t *err, yr_buf_t *out);
extern const sim_dialect_t sim_dialect_bedrock;

/* bedrock.c: --aws-credentials AK:SECRET, the keys SigV4 signatures are
 * checked with. 0 or -EINVAL. */
int sim_bedrock_credentials(const char *spec);
/* vertex.c: Gemini and Claude on Vertex AI, copies of the two dialects with
 * Vertex's paths, auth and checks (filled by sim_vertex_init). */
extern sim_dialect_t sim_dialect_vertex_gemini, sim_dialect_vertex_anthropic;
extern sim_dialect_t sim_dialect_vertex_embed; /* …/publishers/google/models/{m}:predict */
/* anthropic.c: the Messages body checks without the header ones. */
int sim_anthropic_parse_body(sim_exchange_t *x, json_t *body, sim_error_t *err);

/* ---- the machinery ------------------------------------------------------------- */

/* A heap timer: its memory must outlive uv_close(), unlike the pool's. */
typedef struct sim_timer {
    uv_timer_t handle;
    void *owner;
} sim_timer_t;

sim_timer_t *sim_timer_new(uv_loop_t *loop, void *owner);
void sim_timer_close(sim_timer_t *t); /* NULL is fine; frees after the loop closed it */

typedef struct {
    uint64_t requests;  /* non-control requests received */
    uint64_t active;    /* ... still in progress */
    uint64_t completed; /* ... whose response was sent completely (or cut on purpose) */
    uint64_t aborted;   /* ... whose client went away first */
    uint64_t cut;       /* ... cut by a scripted cut_after (also counted as completed) */
    uint64_t rate_limited; /* ... answered 429 by --rate-limit */
} sim_stats_t;

#define SIM_RL_KEYS 16
typedef struct {
    char key[128]; /* the credential header's value, cut */
    int64_t window;
    uint32_t used;
} sim_rl_slot_t;

typedef struct sim_wait sim_wait_t;

struct sim {
    uv_loop_t *loop;
    yr_http_server_t *server;
    yr_str_t require_key; /* len 0: no auth */
    bool verbose;
    bool record;
    bool stopping;
    sim_stats_t stats;
    /* script queue: a ring of behaviour objects (json references) */
    json_t *queue; /* array; popped from the front */
    /* recording */
    json_t **records; /* ring of SIM_RECORDS_MAX */
    size_t rec_head, rec_count;
    uint64_t rec_seq;
    /* long polls */
    sim_wait_t *waits;
    uv_timer_t wait_check; /* re-checks the waits after stats changed */
    bool wait_check_armed;
    uint64_t id_counter;
    uint32_t rl_limit, rl_window_ms; /* --rate-limit; 0: none */
    sim_rl_slot_t rl[SIM_RL_KEYS];
    yr_buf_t scratch; /* one render at a time (single thread) */
};

#define SIM_RECORDS_MAX 1000
#define SIM_RECORD_BODY_MAX (1024u * 1024)

enum sim_phase {
    SIM_PHASE_NEW,
    SIM_PHASE_DELAY,     /* waiting for headers_delay_ms */
    SIM_PHASE_HANG,      /* waiting for the client to go away */
    SIM_PHASE_STREAMING, /* head sent; events being paced */
    SIM_PHASE_CUTTING,   /* waiting for queued bytes to flush before the cut */
    SIM_PHASE_DONE,      /* response handed to the server (or cut) */
};

enum sim_action {
    SIM_ACT_REPLY,  /* the dialect's rendering of x->reply */
    SIM_ACT_ERROR,  /* x->err (validation, auth, internal) */
    SIM_ACT_STATUS, /* the behaviour's status with its error overrides */
    SIM_ACT_RAW,    /* the behaviour's raw body */
    SIM_ACT_FILTER, /* the dialect's content-filter refusal of the prompt */
};

struct sim_exchange {
    sim_t *sim;
    yr_http_req_t *req;
    yr_pool_t *pool;
    const sim_dialect_t *dialect;
    json_t *body; /* parsed request body (one reference) or NULL */
    sim_behaviour_t beh;
    sim_prompt_t prompt;
    sim_reply_t reply;
    sim_error_t err;
    enum sim_phase phase;
    enum sim_action action;
    sim_timer_t *timer;
    char id[48];         /* the completion id, e.g. chatcmpl-... */
    char request_id[40]; /* x-request-id */
    int64_t created;
    size_t events;       /* stream events written */
    size_t malformed_at; /* inject the malformed event before this event */
    bool delay_elapsed;
    bool waiting_drain;
    bool malformed_sent;
    bool aborted, cut;
    bool rl_active; /* --rate-limit counted this request */
    bool rl_over;   /* ... and it was over the limit */
    int64_t rl_remaining, rl_reset_ms;
    void *dstate;
};

/* exchange.c */
/* Starts handling req (every non-control path). */
void sim_exchange_start(sim_t *sim, yr_http_req_t *req);
/* An OpenAI-shaped error for the server's own errors (bad HTTP, 413, 431). */
void sim_on_http_error(yr_http_req_t *req, int status, const char *code, const char *message);

/* script.c */
/* Picks x's behaviour: queue, then the x-sim header, then the x_sim body
 * field. Returns 0 (x->beh may stay empty) or -EINVAL with why filled. */
__attribute__((warn_unused_result)) int sim_script_pick(sim_exchange_t *x, char *why,
                                                        size_t whylen);
void sim_script_control(sim_t *sim, yr_http_req_t *req); /* /_sim/script */

/* Control-API responses (JSON, no caching); v is consumed. */
void sim_respond_json(yr_http_req_t *req, int status, json_t *v);
void sim_respond_control_error(yr_http_req_t *req, int status, const char *message);

/* record.c */
void sim_record(sim_t *sim, const yr_http_req_t *req, json_t *body);
void sim_stats_changed(sim_t *sim);
/* Handles /_sim/...; responds to every path under it. */
void sim_control(sim_t *sim, yr_http_req_t *req);
void sim_control_shutdown(sim_t *sim); /* frees queue and recordings */

/* vertex.c: the OAuth token endpoint (true when req was one), its control
 * API (/_sim/vertex...), and the dialects' setup and teardown. */
bool sim_vertex_request(sim_t *sim, yr_http_req_t *req);
void sim_vertex_control(sim_t *sim, yr_http_req_t *req);
__attribute__((warn_unused_result)) int sim_vertex_init(void);
void sim_vertex_shutdown(void);
__attribute__((warn_unused_result)) int sim_control_init(sim_t *sim);

/* text.c: pure helpers */
size_t sim_utf8_floor(const char *s, size_t len, size_t max); /* longest prefix <= max bytes */
size_t sim_utf8_count(yr_str_t s);                            /* code points (valid UTF-8) */
size_t sim_count_words(yr_str_t s);
yr_str_t sim_first_words(yr_str_t s, size_t n); /* the first n words, inner spacing kept */
/* A JSON string from arbitrary bytes (invalid UTF-8 becomes U+FFFD). New reference or NULL. */
json_t *sim_json_string(const char *p, size_t len);
const char *sim_json_type_name(const json_t *v); /* "a string", "an integer", ... */
/* Deterministic, random-looking alphanumerics: fills out[0..n) and NUL-terminates it
 * (out has n + 1 bytes). */
void sim_random_alnum(uint64_t seed, char *out, size_t n);

/* Splits a string into pieces for streaming: one per word (the whitespace
 * before a word belongs to it), or `chunks` pieces of about equal code-point
 * count. Pieces never split a UTF-8 sequence; their concatenation is s. */
typedef struct {
    yr_str_t s;
    size_t off;
    size_t chunks; /* 0: per word; else min(chunks, code points) */
    size_t done;
    size_t cps;    /* code points in s (chunks mode) */
    size_t cp_off; /* code points consumed */
} sim_pieces_t;

void sim_pieces_init(sim_pieces_t *p, yr_str_t s, size_t chunks);
bool sim_pieces_next(sim_pieces_t *p, yr_str_t *piece);
size_t sim_pieces_count(yr_str_t s, size_t chunks);
/* Fragments for streamed tool-call arguments: at least 2 when possible. */
size_t sim_args_chunks(yr_str_t args);

/* Appends the usage override merge: base (new reference consumed) updated
 * with override, total recomputed unless overridden, dumped compactly. */
__attribute__((warn_unused_result)) int sim_append_usage(yr_buf_t *out, json_t *base,
                                                         const json_t *override,
                                                         const char *total_key, const char *a_key,
                                                         const char *b_key);

/* Constant-time comparison of a presented key with the expected one. */
bool sim_key_equal(yr_str_t a, yr_str_t b);

#endif
