/* Provider state that a stateless Responses client carries for the gateway
 * (store: false with include: ["reasoning.encrypted_content"]): what a
 * translated route needs back on the next turn (Anthropic thinking blocks
 * with their signatures, redacted_thinking data; Gemini thought signatures
 * of function calls) sealed into a reasoning item's encrypted_content.
 *
 *   yr1.<base64 of the JSON state>.<base64 of HMAC-SHA256(secret, "yr1." + JSON)>
 *
 * The MAC keeps clients from forging provider state (a signature the
 * gateway never saw); the state itself is not secret from its client (it
 * is the provider's own opaque tokens). Pure functions; docs/responses.md. */
#ifndef YR_RESP_STATE_H
#define YR_RESP_STATE_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

#define YR_RESP_STATE_MAX (4u << 20) /* a sealed state, as sent back */

typedef struct {
    const unsigned char *key;
    size_t key_len; /* 0: no secret, nothing is sealed or opened */
} yr_resp_secret_t;

/* The key of a secret (responses.secret, or the master key when none is
 * configured): SHA-256 of a domain prefix and it, so the MAC key is never
 * the bearer token itself. */
void yr_resp_secret_derive(const char *material, unsigned char key[32]);

/* Seals state (a JSON object) into a new malloc'ed string (the caller
 * frees it), or NULL (no secret, out of memory, too large). */
char *yr_resp_state_seal(const yr_resp_secret_t *s, const json_t *state);

/* The state sealed in text, as a new reference; NULL when text is not a
 * state this secret sealed (another provider's encrypted_content, a forged
 * or damaged one). */
json_t *yr_resp_state_open(const yr_resp_secret_t *s, const char *text, size_t len);

#endif
