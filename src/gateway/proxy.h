/* The proxied endpoints: each runs the request state machine of proxy.c
 * (docs/architecture.md). Called once the caller is authenticated. */
#ifndef YR_GW_PROXY_H
#define YR_GW_PROXY_H

#include "gateway/gateway.h"

/* POST /v1/chat/completions */
void yr_proxy_chat(yr_gw_req_t *g);
/* POST /v1/messages (Anthropic clients) */
void yr_proxy_messages(yr_gw_req_t *g);
/* POST /v1/messages/count_tokens */
void yr_proxy_count_tokens(yr_gw_req_t *g);
/* POST /v1beta/models/{model}:generateContent, :streamGenerateContent,
 * :countTokens (Gemini clients; g->dialect is YR_DIALECT_GEMINI) */
void yr_proxy_gemini(yr_gw_req_t *g);
/* POST /v1/embeddings (OpenAI format, routed like chat). */
void yr_proxy_embeddings(yr_gw_req_t *g);
/* POST /v1/responses: the Responses API over every route (api/responses.h). */
void yr_proxy_responses(yr_gw_req_t *g);
/* GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items. */
void yr_proxy_responses_stored(yr_gw_req_t *g);
/* The shutdown deadline passed: every proxied request still running on w
 * ends now, explicitly: a stream with the error event of its client's
 * dialect (never a silent stop), a request whose answer has not started
 * with a 503. Requests still authenticating or waiting for admission are
 * left to the connection close. */
void yr_proxy_shutdown(yr_worker_t *w);

/* /admin/routes[...]: handled (true), or not an admin route path (false). */
bool yr_admin_routes(yr_gw_req_t *g);
/* /admin/keys[...] and /admin/usage (admin_keys.c): handled, or not such a path. */
bool yr_admin_keys(yr_gw_req_t *g);
/* The query parameter name=value (undecoded; the admin API's values need no
 * escaping), copied into buf: 1; 0 when absent; -1 when longer than buf
 * holds. */
int yr_gw_query_param(yr_str_t q, const char *name, char *buf, size_t len);
/* The admin UI's read-only views (admin_stats.c): series, latency, recent
 * requests, key pages. False when the path is not one of them. */
bool yr_admin_stats(yr_gw_req_t *g);

#endif
