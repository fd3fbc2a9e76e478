/* argv, config load, signals, run loop; nothing else. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "core/version.h"
#include "gateway/gateway.h"
#include "store/keys_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: yourouter serve [--config FILE]\n"
               "       yourouter check --config FILE\n"
               "       yourouter keys create|update|rotate|show|list|revoke ... [--config FILE]\n"
               "       yourouter usage [--by model|vendor|key|day] [--since 7d] [--key NAME]\n"
               "                       [--json] [--config FILE]\n"
               "       yourouter --version\n");
}

/* Removes "--config FILE" / "--config=FILE" from argv; returns the path. */
static const char *take_config(int *argc, char **argv)
{
    const char *path = NULL;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
            if (i + 1 < *argc)
                path = argv[++i];
            else
                path = "";
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    return path;
}

static int load_config(const char *path, yr_config_t **cfg)
{
    char err[1024];
    int rc = path ? yr_config_load(path, cfg, err, sizeof(err))
                  : yr_config_default(cfg, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "yourouter: %s\n", err);
    return rc;
}

static int cmd_serve(const char *path)
{
    yr_config_t *cfg;
    if (load_config(path, &cfg) < 0)
        return 2;
    enum yr_log_level level;
    if (cfg->server.log_level && yr_log_parse_level(cfg->server.log_level, &level) == 0)
        yr_log_set_level(level);
    if (cfg->server.master_key == NULL)
        yr_log_warn("no master key configured (YOUROUTER_MASTER_KEY): only keys from "
                    "'yourouter keys create' are accepted");
    if (cfg->nmodels == 0)
        yr_log_warn("no models configured: every chat request will be a 400");
    return yr_gateway_run(cfg, path); /* takes cfg over */
}

static int cmd_check(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        fprintf(stderr, "yourouter check: --config FILE is required\n");
        return 2;
    }
    yr_config_t *cfg;
    if (load_config(path, &cfg) < 0)
        return 1;
    printf("%s: OK (%zu providers, %zu models)\n", path, cfg->nproviders, cfg->nmodels);
    yr_config_free(cfg);
    return 0;
}

static int cmd_keys(int argc, char **argv, const char *path, bool usage_cmd)
{
    yr_config_t *cfg;
    if (load_config(path, &cfg) < 0)
        return 2;
    int code = usage_cmd ? yr_usage_cli(argc, argv, cfg->storage.url)
                         : yr_keys_cli(argc, argv, cfg->storage.url);
    yr_config_free(cfg);
    return code;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    const char *path = take_config(&argc, argv);
    if (path != NULL && path[0] == '\0') {
        fprintf(stderr, "yourouter: --config needs a file\n");
        return 2;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        if (argc != 0) {
            usage(stderr);
            return 2;
        }
        return yr_version_print(stdout) == 0 ? 0 : 1;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "yourouter: curl_global_init failed\n");
        return 1;
    }
    int code;
    if (strcmp(cmd, "serve") == 0 && argc == 0)
        code = cmd_serve(path);
    else if (strcmp(cmd, "check") == 0 && argc == 0)
        code = cmd_check(path);
    else if (strcmp(cmd, "keys") == 0)
        code = cmd_keys(argc, argv, path, false);
    else if (strcmp(cmd, "usage") == 0)
        code = cmd_keys(argc, argv, path, true);
    else {
        usage(stderr);
        code = 2;
    }
    curl_global_cleanup();
    return code;
}
