#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = YR_LOG_INFO;

void yr_log_set_level(enum yr_log_level level)
{
    atomic_store(&g_level, (int)level);
}

enum yr_log_level yr_log_get_level(void)
{
    return (enum yr_log_level)atomic_load(&g_level);
}

int yr_log_parse_level(const char *s, enum yr_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= YR_LOG_OFF; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum yr_log_level)i;
            return 0;
        }
    }
    return -1;
}

size_t yr_log_escape(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        char esc[4];
        size_t k = 0;
        if (ch == '\n' || ch == '\r' || ch == '\t') {
            esc[0] = '\\';
            esc[1] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : 't';
            k = 2;
        } else if (ch < 0x20 || ch == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
            k = 4;
        } else {
            esc[0] = (char)ch;
            k = 1;
        }
        if (o + k > cap - 1)
            break; /* cut: never half an escape */
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o] = '\0';
    return o;
}

void yr_log(enum yr_log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"debug", "info", "warn", "error"};
    if ((int)level < atomic_load(&g_level) || level >= YR_LOG_OFF)
        return;
    char msg[2048];
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, tags[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)m;
    /* The message may hold text from upstreams and clients: CR/LF, ESC and
     * other control bytes are escaped, so nothing can forge a log line or
     * drive a terminal. */
    size_t len = (size_t)n + yr_log_escape(msg, mlen, line + n, sizeof(line) - (size_t)n - 1);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
