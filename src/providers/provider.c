/* The provider kinds: which dialect over which transport. */
#include "providers/provider.h"
#include "providers/embeddings.h"
#include "providers/openai_responses.h"
#include "providers/vertex.h"

#include "providers/bedrock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const yr_provider_kind_ops_t kinds[] = {
    {YR_KIND_OPENAI, &yr_dialect_openai, &yr_transport_bearer},
    {YR_KIND_ANTHROPIC, &yr_dialect_anthropic, &yr_transport_anthropic},
    {YR_KIND_AZURE, &yr_dialect_azure, &yr_transport_azure},
    {YR_KIND_GEMINI, &yr_dialect_gemini, &yr_transport_gemini},
    {YR_KIND_BEDROCK, &yr_dialect_bedrock, &yr_transport_bedrock},
    {YR_KIND_VERTEX, &yr_dialect_vertex_gemini, &yr_transport_vertex},
};

static const yr_provider_kind_ops_t vertex_anthropic = {YR_KIND_VERTEX,
                                                        &yr_dialect_vertex_anthropic,
                                                        &yr_transport_vertex};

const yr_provider_kind_ops_t *yr_provider_kind(yr_provider_kind_t kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    return NULL;
}

const yr_provider_kind_ops_t *yr_provider_route_kind(const yr_route_conf_t *r)
{
    if (r->provider->kind == YR_KIND_VERTEX && yr_vertex_anthropic(r))
        return &vertex_anthropic;
    return yr_provider_kind(r->provider->kind);
}

const yr_provider_kind_ops_t *yr_provider_kind_for(const yr_route_conf_t *r, yr_dialect_t client)
{
    static const yr_provider_kind_ops_t responses = {YR_KIND_OPENAI, &yr_dialect_openai_responses,
                                                     &yr_transport_bearer};
    if (client == YR_DIALECT_RESPONSES && yr_provider_responses_native(r->provider))
        return &responses;
    if (client == YR_DIALECT_EMBEDDINGS)
        return yr_provider_embed_kind(r);
    return yr_provider_route_kind(r);
}

bool yr_provider_callable(yr_provider_kind_t kind)
{
    return yr_provider_kind(kind) != NULL;
}

int yr_provider_splice_model(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf,
                             yr_upstream_req_t *out)
{
    int rc = yr_json_replace_top_string(raw.ptr, raw.len, "model", yr_str(cx->route->model),
                                        body_buf);
    if (rc == -ENOENT) {
        /* The parser accepted a key spelled with escapes ("\u006dodel"). */
        snprintf(cx->error.message, sizeof(cx->error.message),
                 "the 'model' key must be written without escape sequences");
        snprintf(cx->error.param, sizeof(cx->error.param), "model");
        cx->error.err = YR_E_INVALID_REQUEST;
        return -EINVAL;
    }
    if (rc < 0)
        return rc;
    out->body = body_buf->data;
    out->body_len = body_buf->len;
    return 0;
}

void yr_provider_inband_error(yr_call_ctx_t *cx, const char *type, const char *message,
                              int status)
{
    snprintf(cx->error_type, sizeof(cx->error_type), "%s", type && type[0] ? type : "api_error");
    cx->error_status = status;
    bool retryable;
    cx->error.err = yr_err_from_upstream_status(status, &retryable);
    cx->error.param[0] = '\0';
    snprintf(cx->error.message, sizeof(cx->error.message), "%s",
             message && message[0] ? message : cx->error_type);
}
