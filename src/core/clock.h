/* Wall-clock time in milliseconds since the Unix epoch: what request ids,
 * stored rows and retention cut-offs are stamped with. Durations use the
 * monotonic clock instead (uv_hrtime, yr_health_now_ms). */
#ifndef YR_CLOCK_H
#define YR_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t yr_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
