/* kind: bedrock configuration (config/aws.c): the region and the regional
 * endpoint, and the credential chain — static keys, a Bedrock API key, the
 * AWS_* environment, a credentials-file profile — with the errors a user
 * sees when something is missing, and secrets redacted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/aws.h"
#include "config/config.h"

static const char *const aws_env[] = {
    "AWS_REGION",         "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",  "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",  "AWS_PROFILE",        "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_SHARED_CREDENTIALS_FILE",
};

static char home[256];

/* Each case starts with no AWS_* variable and an empty HOME (so
 * ~/.aws/credentials of the machine is never read). */
static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(aws_env) / sizeof(aws_env[0]); i++)
        unsetenv(aws_env[i]);
    snprintf(home, sizeof(home), "/tmp/yr-aws-test-%d", (int)getpid());
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    return 0;
}

static yr_config_t *load(const char *yaml, char *err, size_t errlen)
{
    yr_config_t *cfg = NULL;
    err[0] = '\0';
    if (yr_config_load_string("cfg.yaml", yaml, strlen(yaml), &cfg, err, errlen) != 0)
        return NULL;
    return cfg;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_static_keys_and_endpoint(void **state)
{
    (void)state;
    char err[512];
    yr_config_t *cfg = load("providers:\n  aws:\n    kind: bedrock\n    region: eu-west-3\n"
                            "    aws_access_key_id: AKIDTEST\n"
                            "    aws_secret_access_key: sekrit/KEY+1\n"
                            "    aws_session_token: tok-123\n",
                            err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    const yr_provider_conf_t *p = &cfg->providers[0];
    assert_string_equal(p->base_url, "https://bedrock-runtime.eu-west-3.amazonaws.com");
    assert_string_equal(p->region, "eu-west-3");
    assert_string_equal(p->aws_access_key_id, "AKIDTEST");
    assert_string_equal(p->aws_secret_access_key, "sekrit/KEY+1");
    assert_string_equal(p->aws_session_token, "tok-123");
    assert_null(p->api_key);
    /* the secret and the token never reach a message */
    char msg[256] = "signature by sekrit/KEY+1 with tok-123";
    yr_config_redact(cfg, msg, sizeof(msg));
    assert_string_equal(msg, "signature by [redacted] with [redacted]");
    yr_config_free(cfg);
}

static void test_region_from_env_and_base_url_kept(void **state)
{
    (void)state;
    char err[512];
    setenv("AWS_REGION", "ap-south-1", 1);
    yr_config_t *cfg = load("providers:\n  aws:\n    kind: bedrock\n    api_key: brk-1\n", err,
                            sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].base_url,
                        "https://bedrock-runtime.ap-south-1.amazonaws.com");
    assert_string_equal(cfg->providers[0].api_key, "brk-1");
    yr_config_free(cfg);
    cfg = load("providers:\n  aws:\n    kind: bedrock\n    base_url: http://127.0.0.1:9\n"
               "    api_key: brk-1\n",
               err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].base_url, "http://127.0.0.1:9");
    assert_string_equal(cfg->providers[0].region, "ap-south-1");
    yr_config_free(cfg);
}

static void test_errors(void **state)
{
    (void)state;
    char err[512];
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    api_key: k\n", err, sizeof(err)));
    assert_string_equal(err, "cfg.yaml:3: providers.aws: kind bedrock needs a region (region:, or "
                             "AWS_REGION)");
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    region: 'US East'\n", err,
                     sizeof(err)));
    assert_non_null(strstr(err, "providers.aws.region: must be printable ASCII"));
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    region: US-EAST-1\n    api_key: k\n",
                     err, sizeof(err)));
    assert_non_null(strstr(err, "region 'US-EAST-1' is not an AWS region name"));
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n", err,
                     sizeof(err)));
    assert_non_null(strstr(err, "kind bedrock has no credentials: set api_key"));
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n"
                     "    aws_access_key_id: AKID\n",
                     err, sizeof(err)));
    assert_non_null(strstr(err, "aws_access_key_id is set without aws_secret_access_key"));
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n", err,
                     sizeof(err)));
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set"));
    assert_null(strstr(err, "AKIDENV"));
}

static void test_env_chain(void **state)
{
    (void)state;
    char err[512];
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    yr_config_t *cfg = load("providers:\n  aws:\n    kind: bedrock\n    region: us-west-2\n", err,
                            sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].aws_access_key_id, "AKIDENV");
    assert_string_equal(cfg->providers[0].aws_secret_access_key, "envsecret");
    assert_string_equal(cfg->providers[0].aws_session_token, "envtoken");
    char msg[64] = "x envsecret y";
    yr_config_redact(cfg, msg, sizeof(msg));
    assert_string_equal(msg, "x [redacted] y");
    yr_config_free(cfg);
    /* a Bedrock API key in the environment wins over keys there */
    setenv("AWS_BEARER_TOKEN_BEDROCK", "brk-env", 1);
    cfg = load("providers:\n  aws:\n    kind: bedrock\n    region: us-west-2\n", err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].api_key, "brk-env");
    assert_null(cfg->providers[0].aws_access_key_id);
    yr_config_free(cfg);
}

static const char creds[] = "# the AWS CLI's file\n"
                            "[default]\n"
                            "aws_access_key_id = AKIDDEFAULT\n"
                            "aws_secret_access_key = defsecret\n"
                            "\n"
                            "[prod] ; comment\n"
                            "aws_access_key_id=AKIDPROD\n"
                            "  aws_secret_access_key =  prod#secret   \n"
                            "aws_session_token = prodtoken ; trailing comment\n"
                            "[broken]\n"
                            "aws_access_key_id = AKIDBROKEN\n";

static void test_ini(void **state)
{
    (void)state;
    yr_aws_keys_t k;
    const char *why = NULL;
    assert_int_equal(yr_aws_ini_profile(yr_str(creds), "prod", &k, &why), 0);
    assert_true(yr_str_eq(k.access_key, YR_STR("AKIDPROD")));
    assert_true(yr_str_eq(k.secret_key, YR_STR("prod#secret")));
    assert_true(yr_str_eq(k.session_token, YR_STR("prodtoken")));
    assert_int_equal(yr_aws_ini_profile(yr_str(creds), "default", &k, &why), 0);
    assert_true(yr_str_eq(k.access_key, YR_STR("AKIDDEFAULT")));
    assert_int_equal(k.session_token.len, 0);
    assert_int_equal(yr_aws_ini_profile(yr_str(creds), "nope", &k, &why), -ENOENT);
    assert_int_equal(yr_aws_ini_profile(yr_str(creds), "broken", &k, &why), -EINVAL);
    assert_string_equal(why, "has no aws_secret_access_key");
}

static void test_profiles(void **state)
{
    (void)state;
    char err[512], path[300], yaml[600];
    snprintf(path, sizeof(path), "%s/creds", home);
    write_file(path, creds);
    snprintf(yaml, sizeof(yaml),
             "providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n"
             "    aws_profile: prod\n    aws_credentials_file: %s\n",
             path);
    yr_config_t *cfg = load(yaml, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(cfg->providers[0].aws_access_key_id, "AKIDPROD");
    assert_string_equal(cfg->providers[0].aws_session_token, "prodtoken");
    yr_config_free(cfg);
    /* a named profile that is not there */
    snprintf(yaml, sizeof(yaml),
             "providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n"
             "    aws_profile: staging\n    aws_credentials_file: %s\n",
             path);
    assert_null(load(yaml, err, sizeof(err)));
    assert_non_null(strstr(err, "profile 'staging' is not in the credentials file"));
    /* ~/.aws/credentials, profile from AWS_PROFILE, after the environment */
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/.aws", home);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/.aws/credentials", home);
    write_file(path, creds);
    cfg = load("providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n", err,
               sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->providers[0].aws_access_key_id, "AKIDDEFAULT");
    yr_config_free(cfg);
    setenv("AWS_PROFILE", "broken", 1);
    assert_null(load("providers:\n  aws:\n    kind: bedrock\n    region: us-east-1\n", err,
                     sizeof(err)));
    assert_non_null(strstr(err, "profile 'broken' of"));
    assert_non_null(strstr(err, "has no aws_secret_access_key"));
    unlink(path);
    rmdir(dir);
    snprintf(path, sizeof(path), "%s/creds", home);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_static_keys_and_endpoint, setup),
        cmocka_unit_test_setup(test_region_from_env_and_base_url_kept, setup),
        cmocka_unit_test_setup(test_errors, setup),
        cmocka_unit_test_setup(test_env_chain, setup),
        cmocka_unit_test_setup(test_ini, setup),
        cmocka_unit_test_setup(test_profiles, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
