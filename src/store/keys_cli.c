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

#include "store/keyspec.h"
#include "store/store.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: yourouter keys create --name NAME [LIMITS] [--config FILE]\n"
    "       yourouter keys update NAME|ID LIMITS [--config FILE]\n"
    "       yourouter keys rotate NAME|ID [--grace SECONDS] [--config FILE]\n"
    "       yourouter keys show NAME|ID [--config FILE]\n"
    "       yourouter keys list [--json] [--config FILE]\n"
    "       yourouter keys revoke NAME|ID [--config FILE]\n"
    "LIMITS: --models PATTERNS --vendors NAMES --rpm N --tpm N --max-concurrency N\n"
    "        --budget-daily USD --budget-monthly USD --budget-total USD\n"
    "        --expires 30d|UNIX|never --metadata JSON   (0 or empty: no limit)\n"
    "CONTENT: --log-content true|false --log-retention 7d   (prompts and answers kept,\n"
    "        opt-in; retention 1s..90d, default 7d)\n";

/* --budget-daily -> budget_daily: the flag's field for yr_keyspec_set, or
 * NULL when it is not a policy flag. */
static const char *policy_field(const char *flag, char *buf, size_t len)
{
    static const char *const flags[] = {"--models", "--vendors", "--rpm", "--tpm",
                                        "--max-concurrency", "--budget-daily", "--budget-monthly",
                                        "--budget-total", "--expires", "--metadata",
                                        "--log-content", "--log-retention"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strcmp(flag, flags[i]) == 0) {
            snprintf(buf, len, "%s", strcmp(flag, "--expires") == 0 ? "expires_at" : flag + 2);
            for (char *c = buf; *c; c++)
                if (*c == '-')
                    *c = '_';
            return buf;
        }
    }
    return NULL;
}

/* Applies argv[*i] (a policy flag) and its value to p. 1: it was one (and
 * *i moved past the value); 0: not a policy flag; -1: bad value (said). */
static int policy_arg(int argc, char **argv, int *i, yr_key_policy_t *p)
{
    char field[32], err[160];
    if (policy_field(argv[*i], field, sizeof(field)) == NULL)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "yourouter keys: %s needs a value\n", argv[*i]);
        return -1;
    }
    if (yr_keyspec_set(p, field, argv[*i + 1], (int64_t)time(NULL), err, sizeof(err)) != 0) {
        fprintf(stderr, "yourouter keys: %s: %s\n", argv[*i], err);
        return -1;
    }
    *i += 1;
    return 1;
}

/* A key as JSON on stdout. */
static bool print_key_json(const yr_key_info_t *k)
{
    yr_buf_t b;
    yr_buf_init(&b, 64 * 1024);
    bool ok = yr_keyspec_json(k, &b) == 0 && printf("%.*s\n", (int)b.len, b.data) >= 0;
    yr_buf_free(&b);
    return ok;
}

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
    yr_key_policy_t policy = {0};
    for (int i = 0; i < argc; i++) {
        const char *value;
        int pr = policy_arg(argc, argv, &i, &policy);
        if (pr < 0)
            return EXIT_USAGE;
        if (pr > 0)
            continue;
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
    int rc = yr_store_key_create_with(store, name, &policy, key, &info);
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
    bool json = argc == 1 && strcmp(argv[0], "--json") == 0;
    if (argc > 0 && !json)
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
    if (json) {
        for (size_t i = 0; i < kr.n; i++)
            if (!print_key_json(&kr.rows[i]))
                break;
    } else {
        print_keys(&kr);
    }
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

static int report(int rc, const char *what, const char *which)
{
    if (rc == -ENOENT)
        fprintf(stderr, "yourouter keys: no active key with name or id '%s'\n", which);
    else if (rc != 0)
        fprintf(stderr, "yourouter keys: cannot %s key: %s\n", what, strerror(-rc));
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* update NAME|ID LIMITS: the flags given replace those fields; the others
 * keep their values. */
static int cmd_update(int argc, char **argv, const char *url)
{
    if (argc < 2)
        return usage_error("update needs a key NAME or ID and at least one limit");
    yr_store_t *store = open_store(url);
    if (store == NULL)
        return EXIT_FAIL;
    yr_key_info_t info;
    int rc = yr_store_key_get(store, argv[0], &info);
    int code = report(rc, "read", argv[0]);
    for (int i = 1; code == EXIT_OK && i < argc; i++) {
        int pr = policy_arg(argc, argv, &i, &info.policy);
        if (pr == 0)
            fprintf(stderr, "yourouter keys: update: unexpected argument '%s'\n", argv[i]);
        if (pr <= 0)
            code = EXIT_USAGE;
    }
    if (code == EXIT_OK) {
        rc = yr_store_key_update(store, argv[0], &info.policy, &info);
        code = report(rc, "update", argv[0]);
    }
    if (code == EXIT_OK)
        code = print_key_json(&info) && stdout_ok() ? EXIT_OK : EXIT_FAIL;
    yr_store_close(store);
    return code;
}

static int cmd_rotate(int argc, char **argv, const char *url)
{
    uint64_t grace = 3600;
    if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--grace") == 0))
        return usage_error("rotate takes a key NAME or ID and an optional --grace SECONDS");
    if (argc == 3 && yr_str_to_u64(yr_str(argv[2]), 365u * 86400, &grace) != 0)
        return usage_error("--grace needs seconds (at most a year)");
    yr_store_t *store = open_store(url);
    if (store == NULL)
        return EXIT_FAIL;
    char key[YR_KEY_MAX_LEN];
    yr_key_info_t info;
    int rc = yr_store_key_rotate(store, argv[0], (int64_t)grace, key, &info);
    int code = report(rc, "rotate", argv[0]);
    if (code == EXIT_OK) {
        if (printf("%s\n", key) < 0 || !stdout_ok())
            code = EXIT_FAIL; /* the old secret still works for the grace period */
        else
            fprintf(stderr, "rotated key '%s' (id %lld); the old secret works for %llu s\n",
                    info.name, (long long)info.id, (unsigned long long)grace);
    }
    OPENSSL_cleanse(key, sizeof(key));
    yr_store_close(store);
    return code;
}

static int cmd_show(int argc, char **argv, const char *url)
{
    if (argc != 1)
        return usage_error("show takes one key NAME or ID");
    yr_store_t *store = open_store(url);
    if (store == NULL)
        return EXIT_FAIL;
    yr_key_info_t info;
    int code = report(yr_store_key_get(store, argv[0], &info), "read", argv[0]);
    if (code == EXIT_OK)
        code = print_key_json(&info) && stdout_ok() ? EXIT_OK : EXIT_FAIL;
    yr_store_close(store);
    return code;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv, const char *url);
} commands[] = {
    {"create", cmd_create}, {"list", cmd_list}, {"revoke", cmd_revoke},
    {"update", cmd_update}, {"rotate", cmd_rotate}, {"show", cmd_show},
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

/* ---- yourouter usage ------------------------------------------------------ */

int64_t yr_usage_since(const char *v, int64_t now_ms)
{
    size_t n = v != NULL ? strlen(v) : 0;
    if (n < 2)
        return -1;
    int64_t unit = v[n - 1] == 'd' ? 86400000 : v[n - 1] == 'h' ? 3600000 : v[n - 1] == 'm' ? 60000 : 0;
    uint64_t num;
    if (unit == 0 || yr_str_to_u64((yr_str_t){v, n - 1}, 100000, &num) != 0)
        return -1;
    return now_ms - (int64_t)num * unit;
}

typedef struct {
    bool json;
    size_t rows;
    bool failed;
} usage_print_t;

static void on_total(const yr_usage_total_t *t, void *arg)
{
    usage_print_t *u = arg;
    int rc;
    if (u->json)
        rc = printf("{\"group\":\"%s\",\"requests\":%lld,\"attempts\":%lld,\"prompt_tokens\":%lld,"
                    "\"completion_tokens\":%lld,\"cached_tokens\":%lld,\"cache_write_tokens\":%lld,"
                    "\"reasoning_tokens\":%lld,\"cost_usd\":%.6f,\"errors\":%lld}\n",
                    t->group, (long long)t->requests, (long long)t->attempts,
                    (long long)t->prompt_tokens, (long long)t->completion_tokens,
                    (long long)t->cached_tokens, (long long)t->cache_write_tokens,
                    (long long)t->reasoning_tokens, (double)t->cost_micros / 1e6,
                    (long long)t->errors);
    else
        rc = printf("%-32s %9lld %9lld %12lld %12lld %10lld %10lld %10lld %12.6f %7lld\n",
                    t->group, (long long)t->requests, (long long)t->attempts,
                    (long long)t->prompt_tokens, (long long)t->completion_tokens,
                    (long long)t->cached_tokens, (long long)t->cache_write_tokens,
                    (long long)t->reasoning_tokens, (double)t->cost_micros / 1e6,
                    (long long)t->errors);
    u->failed = u->failed || rc < 0;
    u->rows++;
}

int yr_usage_cli(int argc, char **argv, const char *url)
{
    static const char *const bys[] = {"model", "vendor", "key", "day"};
    yr_usage_by_t by = YR_USAGE_BY_MODEL;
    const char *since = "7d", *key = NULL;
    usage_print_t up = {0};
    for (int i = 0; i < argc; i++) {
        bool has = i + 1 < argc;
        if (strcmp(argv[i], "--json") == 0) {
            up.json = true;
        } else if (strcmp(argv[i], "--by") == 0 && has) {
            const char *v = argv[++i];
            size_t k = 0;
            while (k < 4 && strcmp(v, bys[k]) != 0)
                k++;
            if (k == 4)
                return usage_error("usage: --by is one of model, vendor, key, day");
            by = (yr_usage_by_t)k;
        } else if (strcmp(argv[i], "--since") == 0 && has) {
            since = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0 && has) {
            key = argv[++i];
        } else {
            return usage_error("usage: unexpected argument '%s'", argv[i]);
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t since_ms = yr_usage_since(since, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    if (since_ms < 0)
        return usage_error("usage: --since is a duration such as 7d, 24h or 90m");
    yr_store_t *store = open_store(url);
    if (store == NULL)
        return EXIT_FAIL;
    int64_t key_id = 0;
    int code = EXIT_OK;
    if (key != NULL) {
        yr_key_info_t info;
        code = report(yr_store_key_get(store, key, &info), "read", key);
        key_id = info.id;
    }
    if (code == EXIT_OK && !up.json)
        printf("%-32s %9s %9s %12s %12s %10s %10s %10s %12s %7s\n", bys[by], "REQUESTS",
               "ATTEMPTS", "PROMPT", "COMPLETION", "CACHED", "CACHE_WR", "REASONING", "COST_USD",
               "ERRORS");
    if (code == EXIT_OK) {
        int rc = yr_store_usage_totals(store, by, since_ms, key_id, on_total, &up);
        if (rc != 0) {
            fprintf(stderr, "yourouter usage: cannot read usage: %s\n", strerror(-rc));
            code = EXIT_FAIL;
        } else if (up.failed || !stdout_ok()) {
            code = EXIT_FAIL;
        }
    }
    yr_store_close(store);
    return code;
}
