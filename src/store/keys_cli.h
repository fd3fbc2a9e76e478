/* `yourouter keys ...`: create, list and revoke client keys in the configured
 * database, also while a gateway runs on it. */
#ifndef YR_KEYS_CLI_H
#define YR_KEYS_CLI_H

#include <stdint.h>

/* argv starts at the subcommand: {"create", "--name", "ci"}, {"list"},
 * {"revoke", "ci"}. storage_url is the configured storage url (main.c has
 * already taken --config out of argv). Prints results on stdout and messages
 * on stderr; a created key is the only thing `create` prints on stdout.
 * Returns the process exit code: 0 done, 1 failed (unknown key, name taken,
 * database error), 2 usage error. */
int yr_keys_cli(int argc, char **argv, const char *storage_url);

/* `yourouter usage [--by model|vendor|key|day] [--since 7d] [--key NAME|ID]
 * [--json]`: totals from the usage rows. Same exit codes. */
int yr_usage_cli(int argc, char **argv, const char *storage_url);

/* "7d", "24h", "90m" -> unix ms that long before now_ms; -1 when not such a
 * duration. Also the admin API's ?since=. */
int64_t yr_usage_since(const char *v, int64_t now_ms);

#endif
