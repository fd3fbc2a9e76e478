#include "api/sse.h"

#include <errno.h>

void yr_sse_init(yr_sse_parser_t *p, size_t max_event)
{
    /* A buffered line still holds its "data: " prefix: leave room for the
     * longest field name so the cap means the same wherever a read splits. */
    yr_buf_init(&p->line, max_event + 16);
    yr_buf_init(&p->data, max_event);
    yr_buf_init(&p->event, 256);
    p->has_data = false;
    p->last_cr = false;
}

void yr_sse_free(yr_sse_parser_t *p)
{
    yr_buf_free(&p->line);
    yr_buf_free(&p->data);
    yr_buf_free(&p->event);
}

bool yr_sse_partial(const yr_sse_parser_t *p)
{
    return p->line.len > 0 || p->has_data || p->event.len > 0;
}

static int dispatch(yr_sse_parser_t *p, yr_sse_fn fn, void *arg)
{
    int rc = 0;
    if (p->has_data) {
        yr_sse_event_t ev = {
            .event = {p->event.data ? p->event.data : "", p->event.len},
            .data = {p->data.data ? p->data.data : "", p->data.len},
        };
        rc = fn(&ev, arg);
    }
    yr_buf_reset(&p->data);
    yr_buf_reset(&p->event);
    p->has_data = false;
    return rc;
}

/* Handles one complete line (without its terminator). */
static int process_line(yr_sse_parser_t *p, yr_str_t line, yr_sse_fn fn, void *arg)
{
    if (line.len == 0)
        return dispatch(p, fn, arg);
    if (line.ptr[0] == ':')
        return 0;
    const char *colon = memchr(line.ptr, ':', line.len);
    yr_str_t field = line, value = YR_STR_NULL;
    if (colon != NULL) {
        field.len = (size_t)(colon - line.ptr);
        value.ptr = colon + 1;
        value.len = line.len - field.len - 1;
        if (value.len > 0 && value.ptr[0] == ' ') {
            value.ptr++;
            value.len--;
        }
    }
    int rc = 0;
    if (yr_str_eq(field, YR_STR("data"))) {
        if (p->has_data)
            rc = yr_buf_append(&p->data, "\n", 1);
        if (rc == 0 && value.len > 0)
            rc = yr_buf_append(&p->data, value.ptr, value.len);
        p->has_data = true;
    } else if (yr_str_eq(field, YR_STR("event"))) {
        yr_buf_reset(&p->event);
        rc = yr_buf_append(&p->event, value.ptr ? value.ptr : "", value.len);
    }
    return rc == -E2BIG || rc == 0 ? rc : -ENOMEM;
}

int yr_sse_feed(yr_sse_parser_t *p, const char *buf, size_t n, yr_sse_fn fn, void *arg)
{
    if (n == 0)
        return 0;
    size_t i = 0;
    if (p->last_cr && n > 0 && buf[0] == '\n')
        i = 1;
    p->last_cr = false;
    while (i < n) {
        size_t start = i;
        /* memchr is vectorised; CR line ends are rare, look for them only
         * before the next LF. */
        const char *lf = memchr(buf + i, '\n', n - i);
        size_t stop = lf ? (size_t)(lf - buf) : n;
        const char *cr = memchr(buf + i, '\r', stop - i);
        i = cr ? (size_t)(cr - buf) : stop;
        if (i == n) {
            /* Incomplete line: keep it for the next feed. */
            return yr_buf_append(&p->line, buf + start, n - start);
        }
        yr_str_t line = {buf + start, i - start};
        /* A line that arrived whole is held to the cap a split one meets in
         * p->line, whatever its field (comments too): the outcome must not
         * depend on where the network cut the stream. */
        if (line.len > p->line.max)
            return -E2BIG;
        if (p->line.len > 0) {
            int rc = yr_buf_append(&p->line, line.ptr, line.len);
            if (rc < 0)
                return rc;
            line = (yr_str_t){p->line.data, p->line.len};
        }
        if (buf[i] == '\r') {
            if (i + 1 < n && buf[i + 1] == '\n')
                i++;
            else if (i + 1 == n)
                p->last_cr = true;
        }
        i++;
        int rc = process_line(p, line, fn, arg);
        yr_buf_reset(&p->line);
        if (rc != 0)
            return rc;
    }
    return 0;
}
