/* content_log.h: per-key content logging, and the operator's view of it. */
#include "gateway/content_log.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "gateway/authn.h"
#include "gateway/proxy.h"
#include "gateway/respond.h"
#include "server/http.h"

/* Each worker purges expired rows with its next row, at most this often. */
#define PURGE_EVERY_MS 60000

static atomic_size_t pending;
static atomic_uint_fast64_t dropped;

uint64_t yr_content_dropped(void)
{
    return atomic_load(&dropped);
}

void yr_content_begin(yr_content_capture_t *cap, yr_gw_req_t *g, const yr_key_info_t *key)
{
    if (cap->on || key == NULL || !key->policy.log_content || key->policy.log_retention_s <= 0)
        return;
    yr_http_req_t *req = g->http;
    size_t n = req->body.len > YR_CONTENT_MAX ? YR_CONTENT_MAX : req->body.len;
    cap->request = malloc(n + 1);
    if (cap->request == NULL) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    if (n > 0)
        memcpy(cap->request, req->body.data, n);
    cap->request[n] = '\0';
    cap->request_len = n;
    cap->request_truncated = n < req->body.len;
    cap->on = true;
    cap->key_id = key->id;
    cap->retention_s = key->policy.log_retention_s;
    cap->created_ms = yr_wall_ms();
    size_t idl = g->request_id.len < sizeof(cap->request_id) ? g->request_id.len
                                                             : sizeof(cap->request_id) - 1;
    memcpy(cap->request_id, g->request_id.ptr, idl);
    cap->request_id[idl] = '\0';
    yr_buf_init(&cap->answer, YR_CONTENT_MAX);
    req->tap = &cap->answer;
    req->tap_truncated = false;
}

typedef struct {
    yr_content_row_t row; /* the buffers are the op's, freed by put_done */
    int64_t purge_at_ms;  /* > 0: also purge what expired by then */
} put_t;

static int put_run(yr_store_t *s, void *arg)
{
    put_t *p = arg;
    int rc = yr_store_content_put(s, &p->row);
    if (p->purge_at_ms > 0 && yr_store_content_purge(s, p->purge_at_ms, NULL) < 0)
        yr_log_warn("content log rows past their retention not purged");
    return rc;
}

static void put_done(void *arg, int status)
{
    put_t *p = arg;
    if (status != 0)
        yr_log_error("content of request %s not logged: %s", p->row.request_id,
                     strerror(-status));
    yr_content_row_free(&p->row);
    atomic_fetch_sub(&pending, 1);
}

void yr_content_submit(yr_content_capture_t *cap, yr_gw_req_t *g, int status, bool stream)
{
    if (!cap->on)
        return;
    cap->on = false;
    yr_http_req_t *req = g->http;
    bool answer_cut = req->tap_truncated;
    req->tap = NULL;
    put_t p = {.row = {.key_id = cap->key_id,
                       .created_ms = cap->created_ms,
                       .expires_ms = cap->created_ms + cap->retention_s * 1000,
                       .status = status,
                       .stream = stream,
                       .request = cap->request,
                       .request_len = cap->request_len,
                       .request_truncated = cap->request_truncated,
                       .response_truncated = answer_cut}};
    memcpy(p.row.request_id, cap->request_id, sizeof(p.row.request_id));
    cap->request = NULL;
    size_t len = 0;
    p.row.response = cap->answer.len > 0 ? yr_buf_steal(&cap->answer, &len) : NULL;
    p.row.response_len = p.row.response != NULL ? len : 0;
    yr_buf_free(&cap->answer);
    static _Thread_local int64_t last_purge_ms;
    int64_t now = yr_wall_ms();
    if (now - last_purge_ms >= PURGE_EVERY_MS) {
        last_purge_ms = now;
        p.purge_at_ms = now;
    }
    /* Bounded like usage rows: a row that does not fit is dropped, counted
     * and logged once per run of drops. put_done frees a queued row. */
    if (atomic_fetch_add(&pending, 1) >= YR_CONTENT_QUEUE_MAX ||
        yr_store_call_async(g->w->store, put_run, put_done, NULL, &p, sizeof(p), NULL) < 0) {
        atomic_fetch_sub(&pending, 1);
        if (atomic_fetch_add(&dropped, 1) % 1000 == 0)
            yr_log_warn("%s: content row dropped (queue full or store stopping)", g->id);
        yr_content_row_free(&p.row);
    }
}

/* ---- the operator's view ------------------------------------------------- */

typedef struct {
    yr_gw_req_t *g;
    int op; /* 0 get, 1 purge */
    char id[64];
    int64_t now_ms, deleted;
    yr_content_row_t row;
} view_t;

static int view_run(yr_store_t *s, void *arg)
{
    view_t *v = arg;
    if (v->op == 1)
        return yr_store_content_purge(s, v->now_ms, &v->deleted);
    return yr_store_content_get(s, v->id, v->now_ms, &v->row);
}

static void view_cleanup(void *arg)
{
    yr_content_row_free(&((view_t *)arg)->row);
}

/* Bytes as a JSON string; a truncated body may end inside a UTF-8 sequence,
 * which is dropped. null when the bytes are not UTF-8 text. */
static json_t *text_json(const char *b, size_t n, bool truncated)
{
    json_t *j = json_stringn(b, n);
    for (size_t k = 1; j == NULL && truncated && k <= 3 && k <= n; k++)
        j = json_stringn(b, n - k);
    return j != NULL ? j : json_null();
}

static void view_done(void *arg, int status)
{
    view_t *v = arg;
    yr_gw_req_t *g = v->g;
    if (status == -ENOENT) {
        yr_gw_send_error(g, YR_E_NOT_FOUND, "no logged content for that request id", NULL, NULL,
                         YR_STR_NULL);
    } else if (status != 0) {
        yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "the store failed, retry later", NULL, NULL,
                         YR_STR_NULL);
    } else {
        const yr_content_row_t *r = &v->row;
        json_t *j =
            v->op == 1
                ? json_pack("{s:s, s:I}", "object", "content.purge", "deleted",
                            (json_int_t)v->deleted)
                : json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:b, s:o, s:b, s:o, s:b}", "object",
                            "request.content", "request_id", v->id, "key_id",
                            (json_int_t)r->key_id, "created_ms", (json_int_t)r->created_ms,
                            "expires_ms", (json_int_t)r->expires_ms, "status", r->status,
                            "stream", r->stream, "request",
                            text_json(r->request, r->request_len, r->request_truncated),
                            "request_truncated", r->request_truncated, "response",
                            text_json(r->response, r->response_len, r->response_truncated),
                            "response_truncated", r->response_truncated);
        char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (s == NULL)
            yr_gw_send_error(g, YR_E_INTERNAL, "out of memory", NULL, NULL, YR_STR_NULL);
        else
            yr_gw_send_json(g, 200, yr_str(s), NULL, 0);
        free(s);
    }
    yr_http_req_release(g->http);
}

#define REQ_PREFIX "/admin/requests/"
#define REQ_SUFFIX "/content"

/* The request id of a /admin/requests/{id}/content path, or false. */
static bool path_id(yr_str_t path, char *id, size_t cap)
{
    size_t pl = sizeof(REQ_PREFIX) - 1, sl = sizeof(REQ_SUFFIX) - 1;
    if (path.len <= pl + sl || memcmp(path.ptr, REQ_PREFIX, pl) != 0 ||
        memcmp(path.ptr + path.len - sl, REQ_SUFFIX, sl) != 0)
        return false;
    size_t n = path.len - pl - sl;
    if (n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = path.ptr[pl + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    memcpy(id, path.ptr + pl, n);
    id[n] = '\0';
    return true;
}

static void view_authed(yr_gw_req_t *g)
{
    view_t v = {.g = g, .now_ms = yr_wall_ms()};
    if (!path_id(g->http->path, v.id, sizeof(v.id)))
        v.op = 1;
    yr_http_req_hold(g->http);
    if (yr_store_call_async(g->w->store, view_run, view_done, view_cleanup, &v, sizeof(v), NULL) <
        0) {
        yr_http_req_release(g->http);
        yr_gw_send_error(g, YR_E_STORE_UNAVAILABLE, "the store is busy, retry later", NULL, NULL,
                         YR_STR_NULL);
    }
}

bool yr_admin_content(yr_gw_req_t *g)
{
    yr_http_req_t *req = g->http;
    char id[64];
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    if ((get && path_id(req->path, id, sizeof(id))) ||
        (req->method == HTTP_POST && yr_str_eq(req->path, YR_STR("/admin/content/purge")))) {
        yr_gw_authenticate_master(g, view_authed);
        return true;
    }
    return false;
}
