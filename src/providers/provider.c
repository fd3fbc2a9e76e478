#include "providers/provider.h"

const yr_provider_ops_t *yr_provider_ops(yr_provider_kind_t kind)
{
    switch (kind) {
    case YR_KIND_OPENAI: return &yr_provider_openai;
    case YR_KIND_ANTHROPIC: return &yr_provider_anthropic;
    default: return NULL;
    }
}
