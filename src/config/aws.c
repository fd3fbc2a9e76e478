/* Region and credentials of kind: bedrock providers (config/aws.h). */
#include "config/aws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static yr_str_t strip_comment(yr_str_t line)
{
    for (size_t i = 0; i < line.len; i++)
        if (line.ptr[i] == '#' || line.ptr[i] == ';')
            /* a comment starts a line or follows a blank (values may hold '#') */
            if (i == 0 || line.ptr[i - 1] == ' ' || line.ptr[i - 1] == '\t')
                return yr_str_trim((yr_str_t){line.ptr, i});
    return yr_str_trim(line);
}

int yr_aws_ini_profile(yr_str_t text, const char *profile, yr_aws_keys_t *out, const char **err)
{
    *out = (yr_aws_keys_t){0};
    yr_str_t want = yr_str(profile);
    bool in = false, found = false;
    size_t i = 0;
    while (i < text.len) {
        size_t j = i;
        while (j < text.len && text.ptr[j] != '\n')
            j++;
        yr_str_t line = strip_comment((yr_str_t){text.ptr + i, j - i});
        i = j + 1;
        if (line.len == 0)
            continue;
        if (line.ptr[0] == '[') {
            yr_str_t name = line.ptr[line.len - 1] == ']'
                                ? yr_str_trim((yr_str_t){line.ptr + 1, line.len - 2})
                                : YR_STR_NULL;
            in = yr_str_eq(name, want);
            found = found || in;
            continue;
        }
        const char *eq = in ? memchr(line.ptr, '=', line.len) : NULL;
        if (eq == NULL)
            continue;
        yr_str_t k = yr_str_trim((yr_str_t){line.ptr, (size_t)(eq - line.ptr)});
        yr_str_t v = yr_str_trim((yr_str_t){eq + 1, (size_t)(line.ptr + line.len - eq - 1)});
        if (yr_str_eq(k, YR_STR("aws_access_key_id")))
            out->access_key = v;
        else if (yr_str_eq(k, YR_STR("aws_secret_access_key")))
            out->secret_key = v;
        else if (yr_str_eq(k, YR_STR("aws_session_token")))
            out->session_token = v;
    }
    if (!found)
        return -ENOENT;
    if (out->access_key.len == 0 || out->secret_key.len == 0) {
        *err =
            out->access_key.len == 0 ? "has no aws_access_key_id" : "has no aws_secret_access_key";
        return -EINVAL;
    }
    return 0;
}

static int dup(yr_pool_t *pool, yr_str_t s, const char **dst)
{
    if (s.len == 0) {
        *dst = NULL;
        return 0;
    }
    *dst = yr_pstrndup(pool, s.ptr, s.len);
    return *dst ? 0 : -ENOMEM;
}

/* Reads path (capped) into buf. 0, -ENOENT, or -EINVAL (err). */
static int read_file(const char *path, yr_buf_t *buf, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -ENOENT;
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = yr_buf_append(buf, chunk, n);
    fclose(f);
    if (rc == -E2BIG)
        snprintf(err, errlen, "the credentials file %s is larger than %u bytes", path,
                 YR_AWS_MAX_CREDENTIALS_FILE);
    return rc == -E2BIG ? -EINVAL : rc;
}

/* The profile's keys from the credentials file. 0; -ENOENT when the file
 * or the profile is not there (required: that is an error, err filled). */
static int from_file(yr_pool_t *pool, yr_provider_conf_t *pc, const char *profile, bool required,
                     char *err, size_t errlen)
{
    char home_path[1024];
    const char *path =
        pc->aws_credentials_file ? pc->aws_credentials_file : env("AWS_SHARED_CREDENTIALS_FILE");
    if (path == NULL) {
        const char *home = env("HOME");
        if (home == NULL)
            return -ENOENT;
        snprintf(home_path, sizeof(home_path), "%s/.aws/credentials", home);
        path = home_path;
    }
    yr_buf_t text;
    yr_buf_init(&text, YR_AWS_MAX_CREDENTIALS_FILE);
    int rc = read_file(path, &text, err, errlen);
    if (rc == -ENOENT && (required || pc->aws_credentials_file))
        snprintf(err, errlen, "cannot read the credentials file %s", path);
    yr_aws_keys_t keys;
    const char *why = "";
    if (rc == 0) {
        rc = yr_aws_ini_profile((yr_str_t){text.data ? text.data : "", text.len}, profile, &keys,
                                &why);
        if (rc == -ENOENT && required)
            snprintf(err, errlen, "profile '%.64s' is not in the credentials file %s", profile,
                     path);
        else if (rc == -EINVAL)
            snprintf(err, errlen, "profile '%.64s' of %s %s", profile, path, why);
    }
    if (rc == 0)
        rc = dup(pool, keys.access_key, &pc->aws_access_key_id);
    if (rc == 0)
        rc = dup(pool, keys.secret_key, &pc->aws_secret_access_key);
    if (rc == 0)
        rc = dup(pool, keys.session_token, &pc->aws_session_token);
    yr_buf_free(&text);
    if (rc == -ENOENT && (required || pc->aws_credentials_file))
        return -EINVAL;
    return rc;
}

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return false;
    return true;
}

static int resolve_region(yr_pool_t *pool, yr_provider_conf_t *pc, char *err, size_t errlen)
{
    const char *r = pc->region ? pc->region : env("AWS_REGION");
    if (r == NULL)
        r = env("AWS_DEFAULT_REGION");
    if (r == NULL) {
        snprintf(err, errlen, "kind bedrock needs a region (region:, or AWS_REGION)");
        return -EINVAL;
    }
    if (!region_ok(r)) {
        snprintf(err, errlen, "region '%.40s' is not an AWS region name (such as us-east-1)", r);
        return -EINVAL;
    }
    if (pc->region != r && (pc->region = yr_pstrndup(pool, r, strlen(r))) == NULL)
        return -ENOMEM;
    if (pc->base_url != NULL)
        return 0;
    char url[128];
    snprintf(url, sizeof(url), "https://bedrock-runtime.%s.amazonaws.com", r);
    pc->base_url = yr_pstrndup(pool, url, strlen(url));
    return pc->base_url ? 0 : -ENOMEM;
}

static int from_env(yr_pool_t *pool, yr_provider_conf_t *pc)
{
    int rc = dup(pool, yr_str(env("AWS_ACCESS_KEY_ID")), &pc->aws_access_key_id);
    if (rc == 0)
        rc = dup(pool, yr_str(env("AWS_SECRET_ACCESS_KEY")), &pc->aws_secret_access_key);
    if (rc == 0)
        rc = dup(pool, yr_str(env("AWS_SESSION_TOKEN")), &pc->aws_session_token);
    return rc;
}

int yr_aws_resolve(yr_pool_t *pool, yr_provider_conf_t *pc, char *err, size_t errlen)
{
    int rc = resolve_region(pool, pc, err, errlen);
    if (rc < 0 || pc->api_key != NULL)
        return rc;
    bool have_id = pc->aws_access_key_id != NULL, have_secret = pc->aws_secret_access_key != NULL;
    if (have_id != have_secret) {
        snprintf(err, errlen, "%s is set without %s",
                 have_id ? "aws_access_key_id" : "aws_secret_access_key",
                 have_id ? "aws_secret_access_key" : "aws_access_key_id");
        return -EINVAL;
    }
    if (have_id)
        return 0;
    if (pc->aws_profile != NULL)
        return from_file(pool, pc, pc->aws_profile, true, err, errlen);
    const char *bearer = env("AWS_BEARER_TOKEN_BEDROCK");
    if (bearer != NULL)
        return dup(pool, yr_str(bearer), &pc->api_key);
    if (env("AWS_ACCESS_KEY_ID") != NULL || env("AWS_SECRET_ACCESS_KEY") != NULL) {
        if (env("AWS_ACCESS_KEY_ID") == NULL || env("AWS_SECRET_ACCESS_KEY") == NULL) {
            snprintf(err, errlen,
                     "(environment): AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                     "must be set together");
            return -EINVAL;
        }
        return from_env(pool, pc);
    }
    const char *profile = env("AWS_PROFILE");
    rc = from_file(pool, pc, profile ? profile : "default", profile != NULL, err, errlen);
    if (rc == -ENOENT || (rc == 0 && pc->aws_access_key_id == NULL)) {
        snprintf(err, errlen,
                 "kind bedrock has no credentials: set api_key (a Bedrock API key), "
                 "aws_access_key_id and aws_secret_access_key, aws_profile, or the AWS_* "
                 "environment variables");
        return -EINVAL;
    }
    return rc;
}
