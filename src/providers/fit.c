/* Fitting a request to a route's model (fit.h). */
#include "providers/fit.h"

#include <errno.h>
#include <stdio.h>

_Static_assert((unsigned)YR_USES_TOOLS == (unsigned)YR_CAP_TOOLS &&
                   (unsigned)YR_USES_IMAGES == (unsigned)YR_CAP_VISION &&
                   (unsigned)YR_USES_JSON_SCHEMA == (unsigned)YR_CAP_JSON_SCHEMA &&
                   (unsigned)YR_USES_REASONING == (unsigned)YR_CAP_REASONING,
               "a request uses what a model must have: the same bits");

bool yr_fit_plan(const yr_model_info_t *info, const yr_chat_req_t *chat, yr_fit_t *out)
{
    *out = (yr_fit_t){.max_output = info->max_output};
    if (info->max_output > 0) {
        out->clamp_max_tokens = chat->max_tokens_param > (int64_t)info->max_output;
        out->clamp_max_completion_tokens =
            chat->max_completion_tokens_param > (int64_t)info->max_output;
    }
    if (chat->uses & YR_USES_REASONING) {
        if (!(info->caps & YR_CAP_REASONING)) {
            out->drop_effort = true;
        } else if (chat->effort.ptr != NULL) {
            yr_str_t to = yr_catalog_map_effort(info->efforts, chat->effort);
            if (to.ptr == NULL)
                out->drop_effort = true;
            else if (!yr_str_eq(to, chat->effort))
                out->effort = to;
        }
    }
    return out->clamp_max_tokens || out->clamp_max_completion_tokens || out->drop_effort ||
           out->effort.ptr != NULL;
}

unsigned yr_fit_lacks(const yr_model_info_t *info, unsigned uses)
{
    /* reasoning is adjusted, never a reason to refuse */
    unsigned missing = uses & ~info->caps & (YR_CAP_TOOLS | YR_CAP_VISION | YR_CAP_JSON_SCHEMA);
    return missing & (~missing + 1); /* the lowest bit */
}

int yr_fit_bytes(const yr_fit_t *f, yr_str_t raw, yr_buf_t *out)
{
    const char *keys[3];
    yr_str_t vals[3];
    char num[24], eff[40];
    size_t n = 0;
    int len = snprintf(num, sizeof(num), "%lld", (long long)f->max_output);
    if (f->clamp_max_tokens) {
        keys[n] = "max_tokens";
        vals[n++] = (yr_str_t){num, (size_t)len};
    }
    if (f->clamp_max_completion_tokens) {
        keys[n] = "max_completion_tokens";
        vals[n++] = (yr_str_t){num, (size_t)len};
    }
    if (f->drop_effort) {
        keys[n] = "reasoning_effort";
        vals[n++] = YR_STR_NULL;
    } else if (f->effort.ptr != NULL) {
        len = snprintf(eff, sizeof(eff), "\"%.*s\"", (int)f->effort.len, f->effort.ptr);
        keys[n] = "reasoning_effort";
        vals[n++] = (yr_str_t){eff, (size_t)len};
    }
    return yr_json_edit_top(raw.ptr, raw.len, keys, vals, n, out);
}

static const char *const saved_keys[3] = {"max_tokens", "max_completion_tokens",
                                          "reasoning_effort"};

static json_t **saved_slot(yr_fit_saved_t *s, size_t i)
{
    return i == 0 ? &s->max_tokens : i == 1 ? &s->max_completion_tokens : &s->effort;
}

int yr_fit_tree(const yr_fit_t *f, json_t *root, yr_fit_saved_t *saved)
{
    if (!json_is_object(root))
        return 0;
    for (size_t i = 0; i < 3; i++) {
        json_t **slot = saved_slot(saved, i);
        if (!saved->saved) {
            *slot = json_incref(json_object_get(root, saved_keys[i]));
        } else if (*slot != NULL) {
            if (json_object_set(root, saved_keys[i], *slot) < 0)
                return -ENOMEM;
        } else {
            json_object_del(root, saved_keys[i]);
        }
    }
    saved->saved = true;
    if (f == NULL)
        return 0;
    int rc = 0;
    if (f->clamp_max_tokens)
        rc |= json_object_set_new(root, "max_tokens", json_integer(f->max_output));
    if (f->clamp_max_completion_tokens)
        rc |= json_object_set_new(root, "max_completion_tokens", json_integer(f->max_output));
    if (f->drop_effort)
        json_object_del(root, "reasoning_effort");
    else if (f->effort.ptr != NULL)
        rc |= json_object_set_new(root, "reasoning_effort",
                                  json_stringn(f->effort.ptr, f->effort.len));
    return rc < 0 ? -ENOMEM : 0;
}

void yr_fit_saved_free(yr_fit_saved_t *saved)
{
    json_decref(saved->max_tokens);
    json_decref(saved->max_completion_tokens);
    json_decref(saved->effort);
    *saved = (yr_fit_saved_t){0};
}
