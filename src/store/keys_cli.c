/* `yourouter keys create|list|revoke`. stdout carries only results (the new
 * key, the table) so scripts can capture them; everything said to a human
 * goes to stderr. */
#include "store/keys_cli.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char usage_text[] = "usage: yourouter keys create --name NAME [--config FILE]\n"
                                 "       yourouter keys list [--config FILE]\n"
                                 "       yourouter keys revoke NAME|ID [--config FILE]\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("yourouter keys: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static yr_store_t *open_store(const char *url)
{
    char err[256];
    yr_store_t *store = NULL;
    if (url == NULL) {
        fputs("yourouter keys: no storage url configured\n", stderr);
        return NULL;
    }
    if (yr_store_open(url, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "yourouter keys: cannot open storage: %s\n", err);
        return NULL;
    }
    return store;
}

/* Flushes stdout and reports whether everything written to it got out. */
static bool stdout_ok(void)
{
    return fflush(stdout) == 0 && !ferror(stdout);
}

static int cmd_create(int argc, char **argv, const char *url)
{
    const char *name = NULL;
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    yr_store_t *store = NULL;
    int code = EXIT_FAIL;
    for (int i = 0; i < argc; i++) {
        const char *value;
        if (strcmp(argv[i], "--name") == 0) {
            if (i + 1 >= argc)
                return usage_error("--name needs a value");
            value = argv[++i];
        } else if (strncmp(argv[i], "--name=", 7) == 0) {
            value = argv[i] + 7;
        } else {
            return usage_error("create: unexpected argument '%s'", argv[i]);
        }
        if (name != NULL)
            return usage_error("create: --name given twice");
        name = value;
    }
    if (name == NULL)
        return usage_error("create needs --name NAME");

    store = open_store(url);
    if (store == NULL)
        goto out;
    int rc = yr_store_key_create(store, name, key, &info);
    if (rc == -EEXIST) {
        fprintf(stderr, "yourouter keys: an active key named '%s' already exists\n", name);
        goto out;
    }
    if (rc == -EINVAL) {
        /* The name is not echoed: it may hold control characters. */
        fputs("yourouter keys: invalid name: use 1 to 127 characters from A-Z a-z 0-9 . _ -"
              " (not only digits)\n",
              stderr);
        code = EXIT_USAGE;
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "yourouter keys: cannot create key: %s\n", strerror(-rc));
        goto out;
    }
    /* The key exists only in this buffer now. If it cannot reach stdout
     * nobody will ever hold it, so take it back rather than leave a live key
     * that no one knows. */
    if (printf("%s\n", key) < 0 || !stdout_ok()) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)info.id);
        if (yr_store_key_revoke(store, id) == 0)
            fprintf(stderr, "yourouter keys: cannot write the key to stdout; key '%s' revoked\n",
                    name);
        else
            fprintf(stderr,
                    "yourouter keys: cannot write the key to stdout, and revoking it "
                    "(id %lld) failed\n",
                    (long long)info.id);
        goto out;
    }
    fprintf(stderr, "created key '%s' (id %lld, prefix %s)\n", info.name, (long long)info.id,
            info.prefix);
    code = EXIT_OK;
out:
    OPENSSL_cleanse(key, sizeof(key));
    yr_store_close(store);
    return code;
}

typedef struct {
    yr_key_info_t *rows;
    size_t n;
    size_t cap;
    int err;
} key_rows_t;

static void on_key(const yr_key_info_t *key, void *arg)
{
    key_rows_t *kr = arg;
    if (kr->err != 0)
        return;
    if (kr->n == kr->cap) {
        size_t cap = kr->cap ? kr->cap * 2 : 16;
        yr_key_info_t *rows =
            cap <= SIZE_MAX / sizeof(*rows) ? realloc(kr->rows, cap * sizeof(*rows)) : NULL;
        if (rows == NULL) {
            kr->err = -ENOMEM;
            return;
        }
        kr->rows = rows;
        kr->cap = cap;
    }
    kr->rows[kr->n++] = *key;
}

static void format_time(int64_t t, char *out, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, len, "%lld", (long long)t);
}

static void print_keys(const key_rows_t *kr)
{
    int idw = 2;
    int namew = 4;
    for (size_t i = 0; i < kr->n; i++) {
        char id[24];
        int w = snprintf(id, sizeof(id), "%lld", (long long)kr->rows[i].id);
        int nw = (int)strlen(kr->rows[i].name);
        idw = w > idw ? w : idw;
        namew = nw > namew ? nw : namew;
    }
    printf("%-*s  %-*s  %-*s  %-20s  %s\n", idw, "ID", namew, "NAME", YR_KEY_PREFIX_LEN, "PREFIX",
           "CREATED", "STATUS");
    for (size_t i = 0; i < kr->n; i++) {
        const yr_key_info_t *k = &kr->rows[i];
        char created[32];
        format_time(k->created_at, created, sizeof(created));
        printf("%-*lld  %-*s  %-*s  %-20s  %s\n", idw, (long long)k->id, namew, k->name,
               YR_KEY_PREFIX_LEN, k->prefix, created, k->revoked_at != 0 ? "revoked" : "active");
    }
}

static int cmd_list(int argc, char **argv, const char *url)
{
    key_rows_t kr = {0};
    yr_store_t *store = NULL;
    int code = EXIT_FAIL;
    if (argc > 0)
        return usage_error("list: unexpected argument '%s'", argv[0]);
    store = open_store(url);
    if (store == NULL)
        goto out;
    int rc = yr_store_key_list(store, on_key, &kr);
    if (rc == 0)
        rc = kr.err;
    if (rc != 0) {
        fprintf(stderr, "yourouter keys: cannot list keys: %s\n", strerror(-rc));
        goto out;
    }
    print_keys(&kr);
    if (!stdout_ok()) {
        fputs("yourouter keys: cannot write to stdout\n", stderr);
        goto out;
    }
    code = EXIT_OK;
out:
    free(kr.rows);
    yr_store_close(store);
    return code;
}

static int cmd_revoke(int argc, char **argv, const char *url)
{
    yr_key_info_t info;
    yr_store_t *store = NULL;
    int code = EXIT_FAIL;
    if (argc != 1)
        return usage_error(argc == 0 ? "revoke needs a key NAME or ID"
                                     : "revoke takes one key NAME or ID");
    store = open_store(url);
    if (store == NULL)
        goto out;
    int rc = yr_store_key_revoke_info(store, argv[0], &info);
    if (rc == -ENOENT) {
        fprintf(stderr, "yourouter keys: no active key with name or id '%s'\n", argv[0]);
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "yourouter keys: cannot revoke key: %s\n", strerror(-rc));
        goto out;
    }
    fprintf(stderr, "revoked key '%s' (id %lld)\n", info.name, (long long)info.id);
    code = EXIT_OK;
out:
    yr_store_close(store);
    return code;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv, const char *url);
} commands[] = {
    {"create", cmd_create},
    {"list", cmd_list},
    {"revoke", cmd_revoke},
};

int yr_keys_cli(int argc, char **argv, const char *storage_url)
{
    if (argc < 1 || argv[0] == NULL)
        return usage_error("missing command");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1, storage_url);
    if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "--help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    return usage_error("unknown command '%s'", argv[0]);
}
