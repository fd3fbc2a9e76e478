/* Fitting a request to the model of the route it goes to: the one seam
 * every dialect's build passes through (the proxy calls it on the OpenAI
 * form of the request, before the route's dialect sees it), so a request
 * that is valid for the model the client had in mind does not become a 400
 * on the model it was routed to:
 *
 *   max_tokens / max_completion_tokens above the model's output limit are
 *   clamped to it;
 *   reasoning_effort is dropped for a model that does not reason or has no
 *   such knob, and mapped to the nearest value it takes otherwise
 *   (thinking settings of Anthropic and Gemini clients arrive as
 *   reasoning_effort, so they follow).
 *
 * And the capability check routing uses: what the request uses that the
 * model lacks. Pure functions; the model comes from providers/catalog.h. */
#ifndef YR_FIT_H
#define YR_FIT_H

#include <jansson.h>
#include <stdbool.h>

#include "api/chat.h"
#include "api/json_tok.h"
#include "providers/catalog.h"

typedef struct {
    int64_t max_output; /* > 0: clamp the max-tokens fields to this */
    bool clamp_max_tokens, clamp_max_completion_tokens;
    bool drop_effort; /* remove reasoning_effort */
    yr_str_t effort;  /* .ptr: send this reasoning_effort instead */
} yr_fit_t;

/* What must change in chat for a model described by info. Returns true
 * when something does (out filled), false when the request fits as it is. */
bool yr_fit_plan(const yr_model_info_t *info, const yr_chat_req_t *chat, yr_fit_t *out);

/* The first capability (YR_CAP_* bit) the request's uses (YR_USES_*)
 * need and the model lacks; 0 when it has them all. Unknown models have
 * every capability. */
unsigned yr_fit_lacks(const yr_model_info_t *info, unsigned uses);

/* The OpenAI body text raw with f applied, into out (yr_json_edit_top:
 * every other byte kept). 0 or a buffer error. */
__attribute__((warn_unused_result)) int yr_fit_bytes(const yr_fit_t *f, yr_str_t raw,
                                                     yr_buf_t *out);

/* The same fit for a native passthrough body (an Anthropic client on an
 * Anthropic route, a Gemini client on a Gemini route), whose plan was made
 * from the request's OpenAI form. Anthropic: max_tokens clamped; thinking
 * dropped when the model has no reasoning, and a budget_tokens the clamp
 * left at or above max_tokens lowered to half of it (at least 1024, else
 * thinking goes). Gemini: generationConfig.maxOutputTokens clamped,
 * generationConfig.thinkingConfig dropped. A reasoning_effort mapping has
 * no native spelling and is left to the provider. Returns 1 when out holds
 * the fitted body, 0 when the body fits as it is, or a buffer error. */
__attribute__((warn_unused_result)) int yr_fit_anthropic_bytes(const yr_fit_t *f, yr_str_t raw,
                                                               yr_buf_t *out);
__attribute__((warn_unused_result)) int yr_fit_gemini_bytes(const yr_fit_t *f, yr_str_t raw,
                                                            yr_buf_t *out);

/* The client's own values of the fields a fit changes, kept so that every
 * attempt fits the request as the client sent it, not as the previous
 * attempt left it. Owned by the request (yr_fit_saved_free). */
typedef struct {
    bool saved;
    json_t *max_tokens, *max_completion_tokens, *effort; /* references; NULL: absent */
} yr_fit_saved_t;

/* The parsed request root with the client's values restored and f applied
 * (f NULL: only restored). 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_fit_tree(const yr_fit_t *f, json_t *root,
                                                    yr_fit_saved_t *saved);
void yr_fit_saved_free(yr_fit_saved_t *saved);

#endif
