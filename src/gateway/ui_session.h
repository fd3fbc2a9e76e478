/* Admin UI sessions: a master-key login becomes a random token in a cookie.
 *
 * One table per process, shared by every worker under a mutex (a login, a
 * logout, and one lookup per admin UI request: never on the proxy path).
 * Only the SHA-256 of a token is kept, with its CSRF token, its expiry
 * (monotonic clock) and the SHA-256 of the master key it was opened with:
 * a session dies when it expires, at logout, when the table is full and it
 * is the one closest to expiry, or when the master key changes (a reload).
 * Nothing is allocated: the table is static and lives as long as the
 * process. docs/ui.md has the whole design. */
#ifndef YR_UI_SESSION_H
#define YR_UI_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

#define YR_UI_MAX_SESSIONS 256
#define YR_UI_TOKEN_HEX 64 /* 32 random bytes, hex; the cookie value */
#define YR_UI_LOGIN_FAILURES_PER_MIN 10

/* Opens a session for a caller that proved it knows master_key. Writes the
 * token and the CSRF token (YR_UI_TOKEN_HEX characters and a NUL each).
 * 0, or -EIO when the random generator failed. */
__attribute__((warn_unused_result)) int yr_ui_session_open(const char *master_key, int64_t now_ms,
                                                           int64_t ttl_ms, char *token, char *csrf);
/* Whether token names a live session opened with master_key; if so its
 * CSRF token is copied into csrf (when not NULL) and *expires_ms set. */
bool yr_ui_session_find(yr_str_t token, const char *master_key, int64_t now_ms, char *csrf,
                        int64_t *expires_ms);
/* Ends the session of token (a no-op when there is none). */
void yr_ui_session_close(yr_str_t token);
/* Constant-time: whether password is the master key (never when there is
 * none). */
bool yr_ui_password_ok(yr_str_t password, const char *master_key);
/* Login throttling, process-wide: whether a login may be tried now, and
 * counting a failed one (at most YR_UI_LOGIN_FAILURES_PER_MIN a minute). */
bool yr_ui_login_allowed(int64_t now_ms);
void yr_ui_login_failed(int64_t now_ms);
/* Forgets every session and failure (tests). */
void yr_ui_sessions_reset(void);

#endif
