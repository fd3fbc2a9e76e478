/* Where a kind: bedrock provider gets its region and credentials, resolved
 * once when the config is loaded (and again by every reload, which is how
 * rotated keys in a credentials file are picked up):
 *
 *   region:      providers.X.region, else AWS_REGION, else AWS_DEFAULT_REGION
 *   credentials, the first that is there:
 *     1. api_key (a Bedrock API key: Authorization: Bearer)
 *     2. aws_access_key_id + aws_secret_access_key (+ aws_session_token)
 *     3. aws_profile: that profile of the credentials file
 *     4. AWS_BEARER_TOKEN_BEDROCK (a Bedrock API key)
 *     5. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN)
 *     6. the AWS_PROFILE (or "default") profile of the credentials file:
 *        aws_credentials_file, else AWS_SHARED_CREDENTIALS_FILE, else
 *        ~/.aws/credentials — when the file exists
 *
 * The credentials file is the AWS CLI's INI: [profile] sections of
 * "key = value" lines, '#' and ';' comments. Only static keys are read from
 * it (no credential_process, SSO or role assumption).
 *
 * Every string resolved lives in the config's pool; errors never quote a
 * secret. */
#ifndef YR_CONFIG_AWS_H
#define YR_CONFIG_AWS_H

#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/pool.h"

#define YR_AWS_MAX_CREDENTIALS_FILE (1u << 20)

typedef struct {
    yr_str_t access_key, secret_key, session_token; /* slices of the text */
} yr_aws_keys_t;

/* The keys of [profile] in INI text. 0, or -ENOENT when the profile is
 * absent, -EINVAL when it lacks one of the two keys (*err says which). */
__attribute__((warn_unused_result)) int yr_aws_ini_profile(yr_str_t text, const char *profile,
                                                           yr_aws_keys_t *out, const char **err);

/* Fills pc's region, base_url (when unset: the regional endpoint) and
 * credentials as above. 0, or -EINVAL with why (a sentence, no secret) in
 * err, or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_aws_resolve(yr_pool_t *pool, yr_provider_conf_t *pc,
                                                       char *err, size_t errlen);

#endif
