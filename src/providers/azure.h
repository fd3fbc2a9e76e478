/* Azure OpenAI's transport pieces that are worth testing on their own (see
 * providers/azure.c). Pure functions: no I/O. */
#ifndef YR_AZURE_H
#define YR_AZURE_H

#include "providers/transport.h"

/* A response header by name; empty when absent. */
typedef yr_str_t (*yr_header_fn)(void *arg, const char *name);

/* The URL of p's API shape for deployment and the dialect's endpoint path
 * ("/chat/completions"), in pool; NULL when out of memory. */
char *yr_azure_url(yr_pool_t *pool, const yr_provider_conf_t *p, const char *deployment,
                   const char *path);
/* The head of a response: status, retry hint (retry-after-ms, else
 * retry-after), x-ratelimit-remaining-requests / -tokens. */
void yr_azure_head_info(int status, yr_header_fn header, void *arg, int64_t now_unix,
                        yr_head_info_t *info);
/* An Azure error body (OpenAI's shape, or the front door's
 * {"statusCode","message"}) -> out; code is content_filter for a filtered
 * prompt even when only innererror names it. */
void yr_azure_parse_error(yr_str_t body, yr_provider_error_t *out);
/* One stream chunk's data in the shape OpenAI clients expect. *out is data
 * itself, or the chunk rewritten into scratch (owned by the caller) with
 * "delta":{} added to choices that had none; out->len == 0 when the chunk
 * carries nothing for the client (the prompt-filter chunk with
 * choices: [], a filter annotation without delta or finish_reason).
 * Returns 0; -ECANCELED when data is an error event {"error":{...}} (read
 * it with yr_azure_parse_error); -EINVAL when data is not a JSON object;
 * -ENOMEM / -E2BIG. */
__attribute__((warn_unused_result)) int yr_azure_stream_chunk(yr_str_t data, yr_buf_t *scratch,
                                                              yr_str_t *out);

#endif
