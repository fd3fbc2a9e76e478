/* The JSON access log: one line per proxied request (observability.access_log).
 *
 * Metadata only: ids, key name, model, vendor, route, attempts, status,
 * tokens, cost and timings. Prompts and answers are never written here
 * (docs/observability.md: content logging is per key and not in this log).
 *
 * One fd for the process, opened by the main thread before the workers
 * start. Each worker writes its lines itself with one write(2) of the whole
 * line on an O_APPEND fd, so lines of different workers never interleave
 * (a line is at most LINE_MAX_BYTES). Rotation: the operator renames the
 * file and sends SIGUSR1; the main thread opens the path again and dup2()s
 * it onto the same fd number, so a worker writing at that moment writes
 * either to the old file or the new one, never to a closed or reused fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/obs_int.h"

#define LINE_MAX_BYTES 4096

int yr_access_log_open(const char *spec)
{
    if (spec == NULL || spec[0] == '\0' || strcmp(spec, "off") == 0)
        return -1;
    if (strcmp(spec, "stdout") == 0)
        return STDOUT_FILENO;
    int fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    return fd >= 0 ? fd : -errno;
}

int yr_access_log_reopen(const char *spec, int fd)
{
    if (fd < 0 || fd == STDOUT_FILENO)
        return 0;
    int nfd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (nfd < 0)
        return -errno;
    int rc = dup3(nfd, fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(nfd);
    return rc;
}

void yr_access_log_close(int fd)
{
    if (fd > STDERR_FILENO)
        close(fd);
}

static void put_str(yr_buf_t *b, int *rc, const char *key, yr_str_t v)
{
    if (*rc == 0)
        *rc = yr_buf_printf(b, ",\"%s\":", key);
    if (*rc == 0)
        *rc = v.ptr != NULL ? yr_buf_append_json_str(b, v) : yr_buf_append_str(b, YR_STR("null"));
}

static void put_int(yr_buf_t *b, int *rc, const char *key, int64_t v, bool known)
{
    if (*rc == 0)
        *rc = known ? yr_buf_printf(b, ",\"%s\":%lld", key, (long long)v)
                    : yr_buf_printf(b, ",\"%s\":null", key);
}

static int64_t ms_between(uint64_t a, uint64_t b)
{
    return b >= a ? (int64_t)((b - a) / 1000000u) : 0;
}

static void timestamp(char *ts, size_t cap)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, cap - tl, ".%03ldZ", now.tv_nsec / 1000000);
}

/* Ends the line and writes it in one write(2). */
static void emit(yr_obs_t *o, yr_buf_t *b, int rc)
{
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}\n"));
    if (rc == 0 && write(o->log_fd, b->data, b->len) == (ssize_t)b->len)
        obs_add(&o->c.log_lines, 1);
    else
        obs_add(&o->c.log_failures, 1);
    yr_buf_free(b);
}

void yr_obs_http_end(yr_obs_t *o, yr_str_t request_id, yr_str_t method, yr_str_t path, int status,
                     uint64_t start_ns, uint64_t end_ns, const char *key_name)
{
    if (o->log_fd < 0)
        return;
    char ts[40];
    timestamp(ts, sizeof(ts));
    if (path.len > 256)
        path.len = 256;
    if (method.len > 16)
        method.len = 16;
    yr_buf_t b;
    yr_buf_init(&b, LINE_MAX_BYTES);
    int rc = yr_buf_printf(&b, "{\"ts\":\"%s\"", ts);
    put_str(&b, &rc, "request_id", request_id);
    put_str(&b, &rc, "method", method);
    put_str(&b, &rc, "path", path);
    put_str(&b, &rc, "key", key_name ? yr_str(key_name) : YR_STR_NULL);
    put_int(&b, &rc, "status", status, status > 0);
    put_int(&b, &rc, "latency_ms", ms_between(start_ns, end_ns), true);
    emit(o, &b, rc);
}

void yr_obs_log_record(yr_obs_t *o, const yr_obs_req_t *r)
{
    char ts[40];
    timestamp(ts, sizeof(ts));

    const yr_attempt_t *last = r->nattempts > 0 ? &r->attempts[r->nattempts - 1] : NULL;
    int64_t in = 0, out = 0, cached = 0, reasoning = 0;
    for (size_t i = 0; i < r->nattempts; i++) {
        in += r->attempts[i].usage.prompt_tokens;
        out += r->attempts[i].usage.completion_tokens;
        cached += r->attempts[i].usage.cached_tokens;
        reasoning += r->attempts[i].usage.reasoning_tokens;
    }
    uint64_t first = last ? (last->first_event_ns ? last->first_event_ns : last->head_ns) : 0;

    yr_buf_t b;
    yr_buf_init(&b, LINE_MAX_BYTES);
    int rc = yr_buf_printf(&b, "{\"ts\":\"%s\"", ts);
    put_str(&b, &rc, "request_id", r->request_id);
    put_str(&b, &rc, "operation", yr_str(yr_obs_op_name(r->op)));
    put_str(&b, &rc, "key", r->key_name ? yr_str(r->key_name) : YR_STR_NULL);
    put_int(&b, &rc, "key_id", r->key_id, r->key_id > 0);
    yr_str_t model = r->client_model;
    if (model.len > 200)
        model.len = 200;
    put_str(&b, &rc, "model", model.ptr ? model : YR_STR_NULL);
    put_str(&b, &rc, "vendor", last ? yr_str(last->route->provider->name) : YR_STR_NULL);
    char route[512];
    put_str(&b, &rc, "route",
            last && yr_metrics_route_name(last->route, route, sizeof(route)) ? yr_str(route)
                                                                             : YR_STR_NULL);
    put_int(&b, &rc, "attempts", (int64_t)r->nattempts, true);
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR(",\"outcomes\":["));
    for (size_t i = 0; rc == 0 && i < r->nattempts && i < 16; i++)
        rc = yr_buf_printf(&b, "%s\"%s:%d\"", i ? "," : "", yr_outcome_name(r->attempts[i].outcome),
                           r->attempts[i].status);
    if (rc == 0)
        rc = yr_buf_append_str(&b, YR_STR("]"));
    put_int(&b, &rc, "status", r->status, true);
    if (rc == 0)
        rc = yr_buf_printf(&b, ",\"stream\":%s", r->stream ? "true" : "false");
    put_int(&b, &rc, "input_tokens", in, true);
    put_int(&b, &rc, "output_tokens", out, true);
    put_int(&b, &rc, "cached_tokens", cached, true);
    put_int(&b, &rc, "reasoning_tokens", reasoning, true);
    put_int(&b, &rc, "cost_micros", r->cost_micros, r->cost_micros >= 0);
    put_int(&b, &rc, "latency_ms", ms_between(r->start_ns, r->end_ns), true);
    put_int(&b, &rc, "ttfb_ms", first ? ms_between(r->start_ns, first) : 0, first != 0);
    put_int(&b, &rc, "overhead_ms", r->overhead_ms, r->overhead_ms >= 0);
    if (rc == 0 && r->trace != NULL && r->trace->span_id != 0) {
        char tid[40];
        for (int i = 0; i < 16; i++)
            snprintf(tid + 2 * i, 3, "%02x", r->trace->trace_id[i]);
        put_str(&b, &rc, "trace_id", yr_str(tid));
    }
    emit(o, &b, rc);
}
