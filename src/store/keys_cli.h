/* `yourouter keys ...`: create, list and revoke client keys in the configured
 * database, also while a gateway runs on it. */
#ifndef YR_KEYS_CLI_H
#define YR_KEYS_CLI_H

/* argv starts at the subcommand: {"create", "--name", "ci"}, {"list"},
 * {"revoke", "ci"}. storage_url is the configured storage url (main.c has
 * already taken --config out of argv). Prints results on stdout and messages
 * on stderr; a created key is the only thing `create` prints on stdout.
 * Returns the process exit code: 0 done, 1 failed (unknown key, name taken,
 * database error), 2 usage error. */
int yr_keys_cli(int argc, char **argv, const char *storage_url);

#endif
