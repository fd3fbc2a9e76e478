/* Google Vertex AI (kind vertex): Gemini and Claude through one Google Cloud
 * project, a transport over two existing dialects.
 *
 *   publisher google     the Gemini dialect (gemini.c, gemini_decode.c) with
 *                        role_required; POST {base}/v1/projects/{project}/
 *                        locations/{location}/publishers/google/models/
 *                        {model}:generateContent (:streamGenerateContent?alt=sse,
 *                        :countTokens)
 *   publisher anthropic  the Anthropic dialect (anthropic.c) with the body's
 *                        "model" replaced by "anthropic_version":
 *                        "vertex-2023-10-16" and no anthropic-version header;
 *                        .../publishers/anthropic/models/{model}:rawPredict
 *                        (:streamRawPredict; count-tokens:rawPredict, the
 *                        model kept in the body)
 *
 * The base URL is https://{location}-aiplatform.googleapis.com, or
 * https://aiplatform.googleapis.com for the location "global" (config.c).
 * Auth: Authorization: Bearer, with the provider's api_key (an access token
 * the user manages) or a service-account token from the worker's cache
 * (gcp_auth.h), fetched by the transport's credentials step. A 401 drops the
 * cached token (the proxy then retries the request once with a new one). Errors are
 * google.rpc statuses (UNAUTHENTICATED, RESOURCE_EXHAUSTED...) for both
 * publishers, or Anthropic's own error bodies from Claude. */
#ifndef YR_VERTEX_H
#define YR_VERTEX_H

#include <stdbool.h>

#include "providers/provider.h"

#define YR_VERTEX_ANTHROPIC_VERSION "vertex-2023-10-16"

/* Whether route r calls a model of the anthropic publisher: the provider's
 * publisher, else the model's name (claude*). */
bool yr_vertex_anthropic(const yr_route_conf_t *r);

/* The body of a Claude call from an Anthropic Messages body: "model" out
 * (kept for count_tokens, where Vertex reads it), "anthropic_version" in
 * unless the body has one. raw must be a valid JSON object; the result is
 * in body_buf, or raw itself when nothing changes. 0 or a buffer error. */
__attribute__((warn_unused_result)) int yr_vertex_claude_body(yr_str_t raw, bool count_tokens,
                                                               yr_buf_t *body_buf,
                                                               yr_str_t *out);

extern const yr_transport_ops_t yr_transport_vertex;
/* The same for text embeddings: the publisher model's :predict. */
extern const yr_transport_ops_t yr_transport_vertex_embed;
extern const yr_dialect_ops_t yr_dialect_vertex_gemini;
extern const yr_dialect_ops_t yr_dialect_vertex_anthropic;

#endif
