/* Logging to stderr, one line per call (a single write, so lines from
 * different workers never interleave). Never pass secrets here. */
#ifndef YR_LOG_H
#define YR_LOG_H

#include <stddef.h>

enum yr_log_level { YR_LOG_DEBUG, YR_LOG_INFO, YR_LOG_WARN, YR_LOG_ERROR, YR_LOG_OFF };

void yr_log_set_level(enum yr_log_level level);
enum yr_log_level yr_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns 0 or -1. */
int yr_log_parse_level(const char *s, enum yr_log_level *out);
/* Every line is escaped (yr_log_escape) before it is written. */
void yr_log(enum yr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies in[0..n) to out (cap bytes, NUL-terminated) with LF, CR and tab as
 * \n, \r, \t and other control bytes (ESC, DEL, ...) as \xNN; cut at
 * an escape boundary when out is full. Returns the length written. */
size_t yr_log_escape(const char *in, size_t n, char *out, size_t cap);

/* Debug lines sit on hot paths: their arguments are not even evaluated
 * unless debug logging is on. */
#define yr_log_debug(...)                                                                          \
    do {                                                                                           \
        if (yr_log_get_level() == YR_LOG_DEBUG)                                                    \
            yr_log(YR_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define yr_log_info(...) yr_log(YR_LOG_INFO, __VA_ARGS__)
#define yr_log_warn(...) yr_log(YR_LOG_WARN, __VA_ARGS__)
#define yr_log_error(...) yr_log(YR_LOG_ERROR, __VA_ARGS__)

#endif
