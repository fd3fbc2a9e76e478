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

#define NATIVE_MIN_BUDGET 1024 /* Anthropic's least thinking budget */

static bool clamps(const yr_fit_t *f)
{
    return f->clamp_max_tokens || f->clamp_max_completion_tokens;
}

int yr_fit_anthropic_bytes(const yr_fit_t *f, yr_str_t raw, yr_buf_t *out)
{
    yr_jdoc_t d;
    if (yr_json_parse(&d, raw.ptr, raw.len, false) < 0 || yr_json_type(&d, 0) != YR_JT_OBJECT) {
        yr_json_free(&d);
        return 0; /* the provider says what is wrong with it */
    }
    const char *keys[2];
    yr_str_t vals[2];
    char num[24], th[96];
    size_t n = 0;
    int64_t max = -1, budget = -1;
    bool has_max = yr_json_int(&d, yr_json_get(&d, 0, "max_tokens"), &max);
    if (has_max && clamps(f) && max > f->max_output) {
        max = f->max_output;
        keys[n] = "max_tokens";
        vals[n++] = (yr_str_t){num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)max)};
    }
    int t = yr_json_get(&d, 0, "thinking");
    bool enabled = t >= 0 && yr_json_str_eq(&d, yr_json_get(&d, t, "type"), "enabled") &&
                   yr_json_int(&d, yr_json_get(&d, t, "budget_tokens"), &budget);
    if (t >= 0 &&
        (f->drop_effort || (enabled && has_max && budget >= max && max / 2 < NATIVE_MIN_BUDGET))) {
        keys[n] = "thinking";
        vals[n++] = YR_STR_NULL;
    } else if (enabled && has_max && budget >= max) {
        keys[n] = "thinking";
        vals[n++] = (yr_str_t){th, (size_t)snprintf(th, sizeof(th),
                                                    "{\"type\":\"enabled\",\"budget_tokens\":%lld}",
                                                    (long long)(max / 2))};
    }
    yr_json_free(&d);
    if (n == 0)
        return 0;
    int rc = yr_json_edit_top(raw.ptr, raw.len, keys, vals, n, out);
    return rc < 0 ? rc : 1;
}

int yr_fit_gemini_bytes(const yr_fit_t *f, yr_str_t raw, yr_buf_t *out)
{
    yr_jdoc_t d;
    if (yr_json_parse(&d, raw.ptr, raw.len, false) < 0 || yr_json_type(&d, 0) != YR_JT_OBJECT) {
        yr_json_free(&d);
        return 0;
    }
    int gc = yr_json_get(&d, 0, "generationConfig");
    const char *keys[2];
    yr_str_t vals[2];
    char num[24];
    size_t n = 0;
    int64_t max;
    if (yr_json_type(&d, gc) == YR_JT_OBJECT) {
        if (clamps(f) && yr_json_int(&d, yr_json_get(&d, gc, "maxOutputTokens"), &max) &&
            max > f->max_output) {
            keys[n] = "maxOutputTokens";
            vals[n++] = (yr_str_t){
                num, (size_t)snprintf(num, sizeof(num), "%lld", (long long)f->max_output)};
        }
        if (f->drop_effort && yr_json_get(&d, gc, "thinkingConfig") >= 0) {
            keys[n] = "thinkingConfig";
            vals[n++] = YR_STR_NULL;
        }
    }
    yr_str_t inner = n > 0
                         ? (yr_str_t){raw.ptr + d.toks[gc].start, d.toks[gc].end - d.toks[gc].start}
                         : YR_STR_NULL;
    yr_json_free(&d);
    if (n == 0)
        return 0;
    yr_buf_t gen;
    yr_buf_init(&gen, inner.len + 64);
    int rc = yr_json_edit_top(inner.ptr, inner.len, keys, vals, n, &gen);
    const char *outer[1] = {"generationConfig"};
    yr_str_t v[1] = {{gen.data, gen.len}};
    if (rc == 0)
        rc = yr_json_edit_top(raw.ptr, raw.len, outer, v, 1, out);
    yr_buf_free(&gen);
    return rc < 0 ? rc : 1;
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
