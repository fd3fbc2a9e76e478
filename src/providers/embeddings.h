/* POST /v1/embeddings: the route kinds that embed (embeddings.c). */
#ifndef YR_EMBEDDINGS_H
#define YR_EMBEDDINGS_H

#include "api/errors.h"
#include "providers/provider.h"

extern const yr_dialect_ops_t yr_dialect_openai_embed;
extern const yr_dialect_ops_t yr_dialect_azure_embed;
extern const yr_dialect_ops_t yr_dialect_gemini_embed;
extern const yr_dialect_ops_t yr_dialect_vertex_embed;

/* The embeddings dialect x transport of a route's kind; NULL when it
 * cannot embed (a Vertex route of the anthropic publisher included). */
const yr_provider_kind_ops_t *yr_provider_embed_kind(const yr_route_conf_t *r);

/* What routing needs of an embeddings request: a JSON object with a model
 * (copied into model, cap bytes) and an input. -EINVAL with err filled. */
__attribute__((warn_unused_result)) int yr_embed_peek(const char *body, size_t len, char *model,
                                                      size_t cap, yr_api_error_t *err);

#endif
