#include "providers/provider.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const yr_provider_ops_t *yr_provider_ops(yr_provider_kind_t kind)
{
    switch (kind) {
    case YR_KIND_OPENAI: return &yr_provider_openai;
    case YR_KIND_ANTHROPIC: return &yr_provider_anthropic;
    case YR_KIND_AZURE: return &yr_provider_azure; /* glue until dialect x transport */
    default: return NULL;
    }
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

char *yr_provider_header(yr_pool_t *pool, const char *name, const char *value, size_t vlen)
{
    size_t n = strlen(name) + vlen + 3;
    char *h = yr_palloc(pool, n);
    if (h != NULL)
        snprintf(h, n, "%s: %.*s", name, (int)vlen, value);
    return h;
}

char *yr_provider_url(yr_pool_t *pool, const yr_provider_conf_t *p, const char *path)
{
    size_t n = strlen(p->base_url) + strlen(path) + 1;
    char *url = yr_palloc(pool, n);
    if (url != NULL)
        snprintf(url, n, "%s%s", p->base_url, path);
    return url;
}

void yr_provider_timeouts(const yr_provider_conf_t *p, yr_upstream_req_t *out)
{
    out->connect_timeout_ms = p->connect_timeout_ms;
    out->first_byte_timeout_ms = p->first_byte_timeout_ms;
    out->timeout_ms = p->timeout_ms;
}
