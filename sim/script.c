/* Scripted behaviours: parsing, the FIFO queue, where a request's behaviour
 * comes from, and the dialect-neutral reply built from it.
 *
 * A behaviour is plain JSON; the parsed form only points into it, so holding
 * one reference to the object keeps every string alive. Unknown fields are
 * an error (a typo in a test should fail loudly, not silently do nothing);
 * fields starting with '_' are comments. */
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"

#define SIM_MAX_CHUNKS 1000000
#define SIM_MAX_QUEUE 100000

void sim_behaviour_init(sim_behaviour_t *b)
{
    memset(b, 0, sizeof(*b));
    b->cut_after = -1;
    b->stream_error_after = -1;
}

void sim_behaviour_clear(sim_behaviour_t *b)
{
    json_decref(b->tool_calls);
    json_decref(b->root);
    sim_behaviour_init(b);
}

static int bad(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static yr_str_t jstr(const json_t *v)
{
    return (yr_str_t){json_string_value(v), json_string_length(v)};
}

static int get_uint(const char *key, const json_t *v, uint64_t max, uint64_t *out, char *why,
                    size_t whylen)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return bad(why, whylen, "behaviour field '%s' must be an integer in [0, %llu]", key,
                   (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static bool is_token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Response headers go on the wire verbatim: names must be tokens and values
 * must not contain CR, LF or NUL. */
static int check_headers(const json_t *obj, char *why, size_t whylen)
{
    if (!json_is_object(obj))
        return bad(why, whylen, "behaviour field 'headers' must be an object");
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        size_t n = strlen(name);
        for (size_t i = 0; i < n; i++)
            if (!is_token_char((unsigned char)name[i]))
                return bad(why, whylen, "invalid header name in 'headers'");
        if (n == 0 || !json_is_string(v))
            return bad(why, whylen, "'headers' values must be strings");
        if (strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0 ||
            strcasecmp(name, "connection") == 0)
            return bad(why, whylen, "'headers' must not set %s: the server frames the response",
                       name);
        yr_str_t s = jstr(v);
        for (size_t i = 0; i < s.len; i++)
            if (s.ptr[i] == '\r' || s.ptr[i] == '\n' || s.ptr[i] == '\0')
                return bad(why, whylen, "header values must not contain CR, LF or NUL");
    }
    return 0;
}

static bool header_value_ok(yr_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] == '\r' || s.ptr[i] == '\n' || s.ptr[i] == '\0')
            return false;
    return true;
}

/* Normalises [{name, arguments (string or JSON value), id?}] into a new array
 * whose arguments are always strings. */
static int parse_tool_calls(const json_t *v, json_t **out, char *why, size_t whylen)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 128)
        return bad(why, whylen, "'tool_calls' must be an array of 1 to 128 objects");
    json_t *arr = json_array();
    if (arr == NULL)
        return -ENOMEM;
    size_t i;
    json_t *call;
    json_array_foreach(v, i, call)
    {
        json_t *name = json_object_get(call, "name");
        json_t *args = json_object_get(call, "arguments");
        json_t *id = json_object_get(call, "id");
        if (!json_is_object(call) || !json_is_string(name) || json_string_length(name) == 0 ||
            (id != NULL && !json_is_string(id))) {
            json_decref(arr);
            return bad(why, whylen, "tool_calls[%zu] needs a string 'name' (and 'id' if any)", i);
        }
        json_t *norm = NULL;
        if (args == NULL) {
            norm = json_string("{}");
        } else if (json_is_string(args)) {
            norm = json_incref(args);
        } else {
            char *s = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            norm = s ? json_string(s) : NULL;
            free(s);
        }
        json_t *o = norm ? json_pack("{s:O, s:o}", "name", name, "arguments", norm) : NULL;
        if (o != NULL && id != NULL)
            json_object_set(o, "id", id);
        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    *out = arr;
    return 0;
}

static int parse_field(sim_behaviour_t *b, const char *key, json_t *v, char *why, size_t whylen)
{
    if (strcmp(key, "text") == 0) {
        if (!json_is_string(v))
            return bad(why, whylen, "behaviour field 'text' must be a string");
        b->has_text = true;
        b->text = jstr(v);
    } else if (strcmp(key, "tool_calls") == 0) {
        return parse_tool_calls(v, &b->tool_calls, why, whylen);
    } else if (strcmp(key, "finish_reason") == 0 || strcmp(key, "error_message") == 0 ||
               strcmp(key, "error_type") == 0 || strcmp(key, "error_code") == 0 ||
               strcmp(key, "error_param") == 0 || strcmp(key, "body") == 0 ||
               strcmp(key, "content_type") == 0 || strcmp(key, "stream_error") == 0 ||
               strcmp(key, "content_filter") == 0 || strcmp(key, "retry_delay") == 0 ||
               strcmp(key, "quota_id") == 0 || strcmp(key, "block_reason") == 0) {
        if (!json_is_string(v))
            return bad(why, whylen, "behaviour field '%s' must be a string", key);
        yr_str_t s = jstr(v);
        if (strcmp(key, "finish_reason") == 0)
            b->finish_reason = s;
        else if (strcmp(key, "error_message") == 0)
            b->error_message = s;
        else if (strcmp(key, "error_type") == 0)
            b->error_type = s;
        else if (strcmp(key, "error_code") == 0)
            b->error_code = s;
        else if (strcmp(key, "error_param") == 0)
            b->error_param = s;
        else if (strcmp(key, "stream_error") == 0)
            b->stream_error = s;
        else if (strcmp(key, "retry_delay") == 0)
            b->retry_delay = s;
        else if (strcmp(key, "quota_id") == 0)
            b->quota_id = s;
        else if (strcmp(key, "block_reason") == 0)
            b->block_reason = s;
        else if (strcmp(key, "content_filter") == 0) {
            static const char *const categories[] = {"hate", "sexual", "violence", "self_harm",
                                                     "jailbreak"};
            bool known = false;
            for (size_t i = 0; i < sizeof(categories) / sizeof(categories[0]); i++)
                known = known || yr_str_eq(s, yr_str(categories[i]));
            if (!known)
                return bad(why, whylen,
                           "behaviour field 'content_filter' must be one of hate, sexual, "
                           "violence, self_harm, jailbreak");
            b->content_filter = s;
        }
        else if (strcmp(key, "body") == 0) {
            b->has_body = true;
            b->body = s;
        } else {
            if (s.len == 0 || !header_value_ok(s))
                return bad(why, whylen, "invalid 'content_type'");
            b->content_type = s;
        }
    } else if (strcmp(key, "status") == 0) {
        uint64_t st = 0;
        if (get_uint(key, v, 599, &st, why, whylen) < 0 || st < 200)
            return bad(why, whylen, "behaviour field 'status' must be an integer in [200, 599]");
        b->status = (int)st;
    } else if (strcmp(key, "retry_after") == 0) {
        if (json_is_string(v) && header_value_ok(jstr(v))) {
            b->retry_after = jstr(v);
        } else if (json_is_integer(v) || json_is_real(v)) {
            int n = json_is_integer(v)
                        ? snprintf(b->retry_buf, sizeof(b->retry_buf), "%lld",
                                   (long long)json_integer_value(v))
                        : snprintf(b->retry_buf, sizeof(b->retry_buf), "%g", json_real_value(v));
            if (n < 0 || (size_t)n >= sizeof(b->retry_buf))
                return bad(why, whylen, "invalid 'retry_after'");
            b->retry_after = (yr_str_t){b->retry_buf, (size_t)n};
        } else {
            return bad(why, whylen, "'retry_after' must be a string or a number");
        }
    } else if (strcmp(key, "headers_delay_ms") == 0) {
        return get_uint(key, v, SIM_MAX_DELAY_MS, &b->headers_delay_ms, why, whylen);
    } else if (strcmp(key, "chunk_delay_ms") == 0) {
        return get_uint(key, v, SIM_MAX_DELAY_MS, &b->chunk_delay_ms, why, whylen);
    } else if (strcmp(key, "chunks") == 0) {
        if (get_uint(key, v, SIM_MAX_CHUNKS, &b->chunks, why, whylen) < 0 || b->chunks == 0)
            return bad(why, whylen, "behaviour field 'chunks' must be an integer in [1, %d]",
                       SIM_MAX_CHUNKS);
    } else if (strcmp(key, "repeat") == 0) {
        if (get_uint(key, v, 1000000, &b->repeat, why, whylen) < 0 || b->repeat == 0)
            return bad(why, whylen, "behaviour field 'repeat' must be an integer in [1, 1000000]");
    } else if (strcmp(key, "cut_after") == 0 || strcmp(key, "stream_error_after") == 0) {
        uint64_t n;
        if (get_uint(key, v, 1000000000, &n, why, whylen) < 0)
            return -EINVAL;
        if (key[0] == 'c')
            b->cut_after = (int64_t)n;
        else
            b->stream_error_after = (int64_t)n;
    } else if (strcmp(key, "malformed") == 0 || strcmp(key, "hang") == 0 ||
               strcmp(key, "empty_candidate") == 0) {
        if (!json_is_boolean(v))
            return bad(why, whylen, "behaviour field '%s' must be a boolean", key);
        if (key[0] == 'm')
            b->malformed = json_is_true(v);
        else if (key[0] == 'h')
            b->hang = json_is_true(v);
        else
            b->empty_candidate = json_is_true(v);
    } else if (strcmp(key, "usage") == 0) {
        if (!json_is_object(v))
            return bad(why, whylen, "behaviour field 'usage' must be an object");
        b->usage = v;
    } else if (strcmp(key, "headers") == 0) {
        if (check_headers(v, why, whylen) < 0)
            return -EINVAL;
        b->headers = v;
    } else if (key[0] != '_') {
        return bad(why, whylen, "unknown behaviour field '%.64s'", key);
    }
    return 0;
}

int sim_behaviour_parse(json_t *obj, sim_behaviour_t *b, char *why, size_t whylen)
{
    sim_behaviour_init(b);
    if (!json_is_object(obj))
        return bad(why, whylen, "a behaviour must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int rc = parse_field(b, key, v, why, whylen);
        if (rc < 0) {
            sim_behaviour_clear(b);
            return rc;
        }
    }
    b->root = json_incref(obj);
    return 0;
}

/* ---- where a behaviour comes from ----------------------------------------------- */

int sim_script_pick(sim_exchange_t *x, char *why, size_t whylen)
{
    sim_t *sim = x->sim;
    if (json_array_size(sim->queue) > 0) {
        json_t *obj = json_incref(json_array_get(sim->queue, 0));
        json_array_remove(sim->queue, 0);
        int rc = sim_behaviour_parse(obj, &x->beh, why, whylen); /* validated when queued */
        json_decref(obj);
        return rc;
    }
    yr_str_t hdr = yr_http_req_header(x->req, YR_STR("x-sim"));
    if (hdr.ptr != NULL) {
        json_error_t jerr;
        json_t *obj = json_loadb(hdr.ptr, hdr.len, 0, &jerr);
        if (obj == NULL)
            return bad(why, whylen, "x-sim header: invalid JSON: %s", jerr.text);
        char inner[200];
        int rc = sim_behaviour_parse(obj, &x->beh, inner, sizeof(inner));
        json_decref(obj);
        if (rc < 0)
            return bad(why, whylen, "x-sim header: %s", inner);
        return 0;
    }
    json_t *field = json_object_get(x->body, "x_sim");
    if (field != NULL) {
        char inner[200];
        if (sim_behaviour_parse(field, &x->beh, inner, sizeof(inner)) < 0)
            return bad(why, whylen, "x_sim field: %s", inner);
    }
    return 0;
}

/* ---- the reply ---------------------------------------------------------------------- */

#define REPLY_MARKER "Reply with exactly: "
#define REPLY_PREFIX "Hello from yourouter-sim. You said: "
#define ECHO_MAX 200

/* "Reply with exactly: X" -> X (up to the end of that line). */
static bool find_exact_reply(yr_str_t text, yr_str_t *out)
{
    yr_str_t m = YR_STR(REPLY_MARKER);
    if (text.len < m.len)
        return false;
    for (size_t i = 0; i + m.len <= text.len; i++) {
        if (memcmp(text.ptr + i, m.ptr, m.len) != 0)
            continue;
        const char *start = text.ptr + i + m.len;
        size_t left = text.len - i - m.len, n = 0;
        while (n < left && start[n] != '\n' && start[n] != '\r')
            n++;
        *out = (yr_str_t){start, n};
        return true;
    }
    return false;
}

static int default_text(sim_exchange_t *x, yr_str_t *out)
{
    const sim_prompt_t *p = &x->prompt;
    if (find_exact_reply(p->last_user_text, out))
        return 0;
    yr_buf_t b;
    yr_buf_init(&b, 4096);
    size_t echo = sim_utf8_floor(p->last_user_text.ptr, p->last_user_text.len, ECHO_MAX);
    int rc = yr_buf_append_str(&b, YR_STR(REPLY_PREFIX));
    if (rc == 0)
        rc = yr_buf_append(&b, p->last_user_text.ptr, echo);
    if (rc == 0 && p->images > 0)
        rc = yr_buf_printf(&b, " [%zu image%s]", p->images, p->images == 1 ? "" : "s");
    char *s = rc == 0 ? yr_pstrndup(x->pool, b.data, b.len) : NULL;
    *out = (yr_str_t){s, b.len};
    yr_buf_free(&b);
    return s ? 0 : -ENOMEM;
}

static int make_call(sim_exchange_t *x, sim_call_t *c, yr_str_t name, yr_str_t args, yr_str_t id)
{
    c->name = name;
    c->arguments = args;
    if (id.len > 0) {
        c->id = id;
        return 0;
    }
    char *buf = yr_palloc(x->pool, 5 + 24 + 1);
    if (buf == NULL)
        return -ENOMEM;
    memcpy(buf, "call_", 5);
    sim_random_alnum(0xC411ull ^ ++x->sim->id_counter, buf + 5, 24);
    c->id = (yr_str_t){buf, 29};
    return 0;
}

static int build_calls(sim_exchange_t *x)
{
    const sim_prompt_t *p = &x->prompt;
    sim_reply_t *r = &x->reply;
    bool allowed = p->has_tools && p->tool_choice != SIM_TOOLS_NONE;
    bool forced =
        p->has_tools && (p->tool_choice == SIM_TOOLS_REQUIRED || p->tool_choice == SIM_TOOLS_NAMED);
    const json_t *scripted = x->beh.tool_calls;
    if (!(allowed && scripted != NULL) && !forced)
        return 0;
    size_t n = scripted ? json_array_size(scripted) : 1;
    r->calls = yr_pcalloc(x->pool, n * sizeof(*r->calls));
    if (r->calls == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (scripted != NULL) {
            const json_t *c = json_array_get(scripted, i);
            rc = make_call(x, &r->calls[i], jstr(json_object_get(c, "name")),
                           jstr(json_object_get(c, "arguments")), jstr(json_object_get(c, "id")));
        } else {
            rc = make_call(x, &r->calls[i], p->forced_tool, YR_STR("{}"), YR_STR_NULL);
        }
        if (rc < 0)
            return rc;
    }
    r->ncalls = n;
    return 0;
}

int sim_reply_build(sim_exchange_t *x)
{
    const sim_prompt_t *p = &x->prompt;
    const sim_behaviour_t *b = &x->beh;
    sim_reply_t *r = &x->reply;
    memset(r, 0, sizeof(*r));
    int rc = build_calls(x);
    if (rc < 0)
        return rc;
    if (b->has_text) {
        r->has_text = true;
        r->text = b->text;
    } else if (r->ncalls == 0) {
        r->has_text = true;
        rc = default_text(x, &r->text);
        if (rc < 0)
            return rc;
    }
    r->finish = r->ncalls > 0 ? SIM_FINISH_TOOL_CALLS : SIM_FINISH_STOP;
    size_t words = sim_count_words(r->text);
    if (r->ncalls == 0 && p->max_tokens > 0 && words > p->max_tokens) {
        r->text = sim_first_words(r->text, (size_t)p->max_tokens);
        words = (size_t)p->max_tokens;
        r->finish = SIM_FINISH_LENGTH;
    }
    uint64_t per_choice = r->has_text ? words : 0;
    for (size_t i = 0; i < r->ncalls; i++) {
        size_t t = (r->calls[i].name.len + r->calls[i].arguments.len) / 4;
        per_choice += t ? t : 1;
    }
    if (per_choice == 0)
        per_choice = 1;
    r->completion_tokens = per_choice * (p->n ? p->n : 1);
    r->prompt_tokens = p->prompt_bytes / 4 ? p->prompt_bytes / 4 : 1;
    r->finish_override = b->finish_reason;
    r->usage_override = b->usage;
    r->chunks = (size_t)b->chunks;
    r->repeat = b->repeat ? (size_t)b->repeat : 1;
    return 0;
}

/* ---- /_sim/script --------------------------------------------------------------------- */

static json_t *remaining(const sim_t *sim)
{
    return json_pack("{s:I}", "remaining", (json_int_t)json_array_size(sim->queue));
}

static void script_post(sim_t *sim, yr_http_req_t *req)
{
    json_error_t jerr;
    json_t *v = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, &jerr);
    if (v == NULL) {
        sim_respond_control_error(req, 400, "the script must be a JSON array of behaviours");
        return;
    }
    if (json_is_object(v)) {
        json_t *arr = json_pack("[o]", v);
        v = arr;
    }
    char why[200];
    size_t i;
    json_t *obj;
    json_array_foreach(v, i, obj)
    {
        sim_behaviour_t b;
        if (sim_behaviour_parse(obj, &b, why, sizeof(why)) < 0) {
            json_decref(v);
            char msg[260];
            snprintf(msg, sizeof(msg), "behaviour %zu: %s", i, why);
            sim_respond_control_error(req, 400, msg);
            return;
        }
        sim_behaviour_clear(&b);
    }
    if (json_array_size(sim->queue) + json_array_size(v) > SIM_MAX_QUEUE) {
        json_decref(v);
        sim_respond_control_error(req, 413, "the script queue is full");
        return;
    }
    int rc = json_array_extend(sim->queue, v);
    json_decref(v);
    if (rc < 0) {
        sim_respond_control_error(req, 500, "out of memory");
        return;
    }
    sim_respond_json(req, 200, remaining(sim));
}

void sim_script_control(sim_t *sim, yr_http_req_t *req)
{
    switch (req->method) {
    case HTTP_GET: sim_respond_json(req, 200, remaining(sim)); break;
    case HTTP_POST: script_post(sim, req); break;
    case HTTP_DELETE:
        json_array_clear(sim->queue);
        sim_respond_json(req, 200, remaining(sim));
        break;
    default: sim_respond_control_error(req, 405, "use GET, POST or DELETE"); break;
    }
}
