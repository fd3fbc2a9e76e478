/* Content logging, opted into per key (policy log_content; docs/observability.md):
 * the request body a client sent and the answer it got, kept in the store's
 * content_log table for the key's retention, for the operator only.
 *
 * The request copies what it needs (yr_content_capture_t, owned by the
 * request's chat_t) while it runs; yr_content_submit hands it to the store
 * thread when the request ends. Never on the access log, metrics or spans. */
#ifndef YR_CONTENT_LOG_H
#define YR_CONTENT_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "gateway/gateway.h"
#include "store/store.h"

/* Content rows queued for the store thread, all workers together; beyond it
 * a row is dropped and counted (yr_content_dropped), like usage rows. */
#define YR_CONTENT_QUEUE_MAX 64

typedef struct {
    bool on;
    int64_t key_id, retention_s, created_ms;
    char request_id[64];
    char *request; /* malloc'ed copy of the body, at most YR_CONTENT_MAX */
    size_t request_len;
    bool request_truncated;
    yr_buf_t answer; /* the http layer's tap (yr_http_req_t.tap) */
} yr_content_capture_t;

/* Starts capturing g's request when its key opted in; nothing otherwise. */
void yr_content_begin(yr_content_capture_t *cap, yr_gw_req_t *g, const yr_key_info_t *key);
/* Queues the row (status: what the client got) and releases the capture;
 * safe on one that never began. Loop thread. */
void yr_content_submit(yr_content_capture_t *cap, yr_gw_req_t *g, int status, bool stream);
uint64_t yr_content_dropped(void);

/* GET /admin/requests/{id}/content and POST /admin/content/purge (master). */
bool yr_admin_content(yr_gw_req_t *g);

#endif
