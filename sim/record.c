/* The control API under /_sim/: request recording, statistics, long-poll
 * waits, the script queue and reset. See docs/sim.md for the reference.
 *
 * Recordings are a ring of the last SIM_RECORDS_MAX requests, each a JSON
 * object sharing the exchange's parsed body (jansson values are never
 * mutated after parsing, so sharing a reference is safe).
 *
 * Waits are long polls: each holds its request until a condition on the
 * statistics holds or its timer fires. A statistics change only arms a 0 ms
 * timer; the waits are checked from there, never from inside the server's
 * callbacks that changed the statistics (which may be closing a connection). */
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define WAIT_DEFAULT_MS 5000

struct sim_wait {
    sim_wait_t *prev, *next;
    sim_t *sim;
    yr_http_req_t *req;
    sim_timer_t *timer;
    bool linked;
    /* conditions; -1 = not asked */
    int64_t requests, completed, aborted, active, cut;
};

/* ---- responses ----------------------------------------------------------------- */

void sim_respond_json(yr_http_req_t *req, int status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    static const yr_http_header_t nocache = {YR_STR("Cache-Control"), YR_STR("no-store")};
    if (s == NULL) {
        yr_http_respond(req, 500, NULL, 0, YR_STR("text/plain"), YR_STR("out of memory\n"));
        return;
    }
    yr_http_respond(req, status, &nocache, 1, YR_STR("application/json"), yr_str(s));
    free(s);
}

void sim_respond_control_error(yr_http_req_t *req, int status, const char *message)
{
    sim_respond_json(req, status,
                     json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type",
                               "invalid_request_error", "param", "code", "sim_control"));
}

/* ---- recording ------------------------------------------------------------------- */

static json_t *record_headers(const yr_http_req_t *req)
{
    json_t *h = json_object();
    char name[256];
    for (size_t i = 0; h != NULL && i < req->nheaders; i++) {
        yr_str_t n = req->headers[i].name, v = req->headers[i].value;
        if (n.len == 0 || n.len >= sizeof(name))
            continue;
        for (size_t k = 0; k < n.len; k++) {
            unsigned char c = (unsigned char)n.ptr[k];
            name[k] = c < 0x80 && c > 0x20 ? (char)tolower(c) : '?';
        }
        name[n.len] = '\0';
        json_t *old = json_object_get(h, name);
        json_t *val;
        if (old != NULL) {
            /* Repeated header: join the values as a list, like RFC 9110 allows. */
            yr_buf_t joined;
            yr_buf_init(&joined, YR_HTTP_MAX_HEADER_BYTES * 2);
            int rc = yr_buf_append(&joined, json_string_value(old), json_string_length(old));
            if (rc == 0)
                rc = yr_buf_append(&joined, ", ", 2);
            if (rc == 0)
                rc = yr_buf_append(&joined, v.ptr, v.len);
            val = rc == 0 ? sim_json_string(joined.data, joined.len) : NULL;
            yr_buf_free(&joined);
        } else {
            val = sim_json_string(v.ptr, v.len);
        }
        json_object_set_new(h, name, val ? val : json_string(""));
    }
    return h;
}

void sim_record(sim_t *sim, const yr_http_req_t *req, json_t *body)
{
    json_t *b;
    bool truncated = false;
    if (body != NULL && req->body.len <= SIM_RECORD_BODY_MAX) {
        b = json_incref(body);
    } else {
        size_t len = req->body.len;
        if (len > SIM_RECORD_BODY_MAX) {
            len = sim_utf8_floor(req->body.data, len, SIM_RECORD_BODY_MAX);
            truncated = true;
        }
        b = sim_json_string(req->body.data ? req->body.data : "", len);
    }
    json_t *rec = json_pack("{s:I, s:s%, s:o, s:o, s:o, s:o}", "seq", (json_int_t)++sim->rec_seq,
                            "method", req->method_name.ptr, req->method_name.len, "path",
                            sim_json_string(req->path.ptr, req->path.len), "query",
                            sim_json_string(req->query.ptr ? req->query.ptr : "", req->query.len),
                            "headers", record_headers(req), "body", b ? b : json_null());
    if (rec == NULL)
        return;
    if (truncated)
        json_object_set_new(rec, "body_truncated", json_true());
    size_t slot = (sim->rec_head + sim->rec_count) % SIM_RECORDS_MAX;
    if (sim->rec_count == SIM_RECORDS_MAX) {
        json_decref(sim->records[sim->rec_head]);
        sim->rec_head = (sim->rec_head + 1) % SIM_RECORDS_MAX;
        sim->rec_count--;
    }
    sim->records[slot] = rec;
    sim->rec_count++;
}

static void records_clear(sim_t *sim)
{
    for (size_t i = 0; i < sim->rec_count; i++)
        json_decref(sim->records[(sim->rec_head + i) % SIM_RECORDS_MAX]);
    sim->rec_head = sim->rec_count = 0;
}

/* Looks up key=value in a query string; value must be a decimal integer. */
static int query_u64(yr_str_t query, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            yr_str_t v = {p + klen + 1, (size_t)(stop - p) - klen - 1};
            return yr_str_to_u64(v, INT64_MAX, out) < 0 ? -EINVAL : 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static void records_get(sim_t *sim, yr_http_req_t *req)
{
    uint64_t last = sim->rec_count;
    if (query_u64(req->query, "last", &last) < 0) {
        sim_respond_control_error(req, 400, "'last' must be a non-negative integer");
        return;
    }
    size_t n = last < sim->rec_count ? (size_t)last : sim->rec_count;
    json_t *arr = json_array();
    for (size_t i = sim->rec_count - n; arr != NULL && i < sim->rec_count; i++)
        json_array_append(arr, sim->records[(sim->rec_head + i) % SIM_RECORDS_MAX]);
    sim_respond_json(req, 200, arr);
}

/* ---- statistics and waits ---------------------------------------------------------- */

static json_t *stats_json(const sim_t *sim)
{
    const sim_stats_t *s = &sim->stats;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)s->requests,
                     "active", (json_int_t)s->active, "completed", (json_int_t)s->completed,
                     "aborted", (json_int_t)s->aborted, "cut", (json_int_t)s->cut, "queued",
                     (json_int_t)json_array_size(sim->queue), "rate_limited",
                     (json_int_t)s->rate_limited);
}

static bool wait_satisfied(const sim_wait_t *w)
{
    const sim_stats_t *s = &w->sim->stats;
    return (w->requests < 0 || s->requests >= (uint64_t)w->requests) &&
           (w->completed < 0 || s->completed >= (uint64_t)w->completed) &&
           (w->aborted < 0 || s->aborted >= (uint64_t)w->aborted) &&
           (w->cut < 0 || s->cut >= (uint64_t)w->cut) &&
           (w->active < 0 || s->active <= (uint64_t)w->active);
}

static void wait_unlink(sim_wait_t *w)
{
    if (!w->linked)
        return;
    w->linked = false;
    if (w->prev)
        w->prev->next = w->next;
    else
        w->sim->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void wait_answer(sim_wait_t *w, int status)
{
    wait_unlink(w);
    sim_timer_close(w->timer);
    w->timer = NULL;
    sim_respond_json(w->req, status, stats_json(w->sim));
}

static void on_wait_check(uv_timer_t *t)
{
    sim_t *sim = t->data;
    sim->wait_check_armed = false;
    sim_wait_t *w = sim->waits;
    while (w != NULL) {
        sim_wait_t *next = w->next;
        if (wait_satisfied(w))
            wait_answer(w, 200);
        w = next;
    }
}

void sim_stats_changed(sim_t *sim)
{
    if (sim->waits == NULL || sim->wait_check_armed || sim->stopping)
        return;
    sim->wait_check_armed = uv_timer_start(&sim->wait_check, on_wait_check, 0, 0) == 0;
}

static void on_wait_timeout(uv_timer_t *t)
{
    sim_wait_t *w = ((sim_timer_t *)t->data)->owner;
    if (w != NULL && w->linked)
        wait_answer(w, 408);
}

static void wait_cleanup(void *data)
{
    sim_wait_t *w = data;
    wait_unlink(w);
    sim_timer_close(w->timer);
    w->timer = NULL;
}

static void on_wait_abort(yr_http_req_t *req)
{
    wait_cleanup(req->data);
}

static void wait_get(sim_t *sim, yr_http_req_t *req)
{
    sim_wait_t *w = yr_pcalloc(req->pool, sizeof(*w));
    if (w == NULL || yr_pool_cleanup_add(req->pool, wait_cleanup, w) < 0) {
        sim_respond_control_error(req, 500, "out of memory");
        return;
    }
    w->sim = sim;
    w->req = req;
    static const char *const keys[] = {"requests", "completed", "aborted", "active", "cut"};
    int64_t *fields[] = {&w->requests, &w->completed, &w->aborted, &w->active, &w->cut};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        uint64_t v;
        int rc = query_u64(req->query, keys[i], &v);
        if (rc < 0) {
            sim_respond_control_error(req, 400, "wait conditions must be non-negative integers");
            return;
        }
        *fields[i] = rc > 0 ? (int64_t)v : -1;
    }
    uint64_t timeout = WAIT_DEFAULT_MS;
    if (query_u64(req->query, "timeout_ms", &timeout) < 0 || timeout > SIM_MAX_DELAY_MS) {
        sim_respond_control_error(req, 400, "'timeout_ms' must be an integer in [0, 600000]");
        return;
    }
    if (wait_satisfied(w)) {
        sim_respond_json(req, 200, stats_json(sim));
        return;
    }
    w->timer = sim_timer_new(sim->loop, w);
    if (w->timer == NULL || uv_timer_start(&w->timer->handle, on_wait_timeout, timeout, 0) < 0) {
        sim_respond_control_error(req, 500, "cannot start the wait timer");
        return;
    }
    req->data = w;
    req->on_abort = on_wait_abort;
    w->next = sim->waits;
    if (sim->waits)
        sim->waits->prev = w;
    sim->waits = w;
    w->linked = true;
}

/* ---- routing ---------------------------------------------------------------------------- */

static bool path_is(yr_str_t path, const char *name)
{
    return yr_str_eq(path, yr_str(name));
}

void sim_control(sim_t *sim, yr_http_req_t *req)
{
    yr_str_t p = req->path;
    int m = req->method;
    if (path_is(p, "/_sim/script")) {
        sim_script_control(sim, req);
    } else if (path_is(p, "/_sim/requests") && m == HTTP_GET) {
        records_get(sim, req);
    } else if (path_is(p, "/_sim/requests") && m == HTTP_DELETE) {
        records_clear(sim);
        sim_respond_json(req, 200, json_pack("{s:i}", "recorded", 0));
    } else if (path_is(p, "/_sim/stats") && m == HTTP_GET) {
        sim_respond_json(req, 200, stats_json(sim));
    } else if (path_is(p, "/_sim/wait") && m == HTTP_GET) {
        wait_get(sim, req);
    } else if (path_is(p, "/_sim/vertex") || yr_str_has_prefix(p, YR_STR("/_sim/vertex/"))) {
        sim_vertex_control(sim, req);
    } else if (path_is(p, "/_sim/reset") && m == HTTP_POST) {
        json_array_clear(sim->queue);
        records_clear(sim);
        /* active is a gauge of requests still in flight: it is not reset. */
        sim->stats.requests = sim->stats.completed = sim->stats.aborted = sim->stats.cut = 0;
        sim_respond_json(req, 200, stats_json(sim));
    } else {
        sim_respond_control_error(req, 404, "unknown control endpoint (see docs/sim.md)");
    }
}

int sim_control_init(sim_t *sim)
{
    sim->queue = json_array();
    sim->records = calloc(SIM_RECORDS_MAX, sizeof(*sim->records));
    if (sim->queue == NULL || sim->records == NULL)
        return -ENOMEM;
    uv_timer_init(sim->loop, &sim->wait_check);
    sim->wait_check.data = sim;
    return sim_vertex_init();
}

void sim_control_shutdown(sim_t *sim)
{
    json_decref(sim->queue);
    sim->queue = NULL;
    if (sim->records != NULL)
        records_clear(sim);
    free(sim->records);
    sim->records = NULL;
    sim_vertex_shutdown();
}
