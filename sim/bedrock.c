/* The simulator's AWS Bedrock Runtime dialect (Converse, ConverseStream):
 *
 *   POST …/model/{modelId}/converse          a Converse response
 *   POST …/model/{modelId}/converse-stream   the same as an AWS eventstream
 *        (application/vnd.amazon.eventstream): messageStart,
 *        contentBlockStart (toolUse), contentBlockDelta, contentBlockStop,
 *        messageStop, metadata; a scripted stream_error becomes an
 *        exception message (":message-type exception")
 *
 * Auth, as the service does it: with --aws-credentials AK:SECRET every
 * request must be SigV4-signed for service "bedrock" with those keys (the
 * signature is recomputed from the request as received: a wrong one is a
 * 403 InvalidSignatureException, an unknown key 403
 * UnrecognizedClientException); with --require-key KEY a Bedrock API key
 * (Authorization: Bearer KEY) is accepted too. Errors are {"message"} with
 * the type in x-amzn-ErrorType; every answer carries x-amzn-RequestId.
 * Validation covers what a gateway gets wrong: roles that do not alternate,
 * blank text, tool blocks without a toolConfig, an empty or non-object
 * toolUse input, unknown fields, the image and toolChoice shapes, thinking
 * settings. docs/sim.md lists it all. */
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "providers/eventstream.h"
#include "providers/sigv4.h"
#include "sim.h"

#define BR_THINK_ECHO 40

static char aws_access_key[128], aws_secret_key[256];

int sim_bedrock_credentials(const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == '\0' ||
        (size_t)(colon - spec) >= sizeof(aws_access_key) ||
        strlen(colon + 1) >= sizeof(aws_secret_key))
        return -EINVAL;
    memcpy(aws_access_key, spec, (size_t)(colon - spec));
    aws_access_key[colon - spec] = '\0';
    memcpy(aws_secret_key, colon + 1, strlen(colon + 1) + 1);
    return 0;
}

/* ---- errors --------------------------------------------------------------------------------- */

static void br_error_defaults(int status, sim_error_t *err)
{
    const char *type, *msg;
    switch (status) {
    case 400:
        type = "ValidationException";
        msg = "Malformed input request, please reformat your input and try again.";
        break;
    case 403:
        type = "AccessDeniedException";
        msg = "You don't have access to the model with the specified model ID.";
        break;
    case 404:
        type = "ResourceNotFoundException";
        msg = "The requested resource could not be found.";
        break;
    case 408:
        type = "ModelTimeoutException";
        msg = "Model has timed out in processing the request. Try your request again.";
        break;
    case 424:
        type = "ModelErrorException";
        msg = "The model returned an error.";
        break;
    case 429:
        type = "ThrottlingException";
        msg = "Too many requests, please wait before trying again.";
        break;
    case 503:
        type = "ServiceUnavailableException";
        msg = "Bedrock is unable to process your request.";
        break;
    default:
        type = status >= 500 ? "InternalServerException" : "ValidationException";
        msg = status >= 500 ? "The server encountered an internal error." : "Invalid request.";
        break;
    }
    sim_error_set(err, status, type, NULL, "%s", msg);
}

/* {"message"}: the type goes in the x-amzn-ErrorType header (error_header). */
static int br_render_error(const sim_error_t *err, yr_buf_t *b)
{
    int rc = yr_buf_append_str(b, YR_STR("{\"message\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, err->message.ptr ? err->message : YR_STR(""));
    if (rc == 0)
        rc = yr_buf_append(b, "}", 1);
    return rc;
}

static int invalid(sim_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int invalid(sim_error_t *err, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sim_error_set(err, 400, "ValidationException", NULL, "%s", msg);
    return -EINVAL;
}

/* ---- routing and auth ----------------------------------------------------------------------- */

/* "/model/{id}/converse[-stream]" (after any prefix): the id, still encoded. */
static bool model_of(const yr_http_req_t *req, yr_str_t *id, bool *stream)
{
    yr_str_t p = req->path;
    const char *m = NULL;
    for (size_t i = 0; i + 7 <= p.len; i++)
        if (memcmp(p.ptr + i, "/model/", 7) == 0) {
            m = p.ptr + i + 7;
            break;
        }
    if (m == NULL)
        return false;
    const char *end = p.ptr + p.len, *slash = memchr(m, '/', (size_t)(end - m));
    if (slash == NULL || slash == m)
        return false;
    yr_str_t op = {slash, (size_t)(end - slash)};
    bool s = yr_str_eq(op, YR_STR("/converse-stream"));
    if (!s && !yr_str_eq(op, YR_STR("/converse")))
        return false;
    if (id != NULL)
        *id = (yr_str_t){m, (size_t)(slash - m)};
    if (stream != NULL)
        *stream = s;
    return true;
}

static sim_route_t br_route(const yr_http_req_t *req)
{
    return req->method == HTTP_POST && model_of(req, NULL, NULL) ? SIM_ROUTE_CHAT : SIM_ROUTE_NONE;
}

static yr_str_t header(const yr_http_req_t *req, const char *name)
{
    return yr_http_req_header(req, yr_str(name));
}

/* YYYYMMDDTHHMMSSZ -> unix seconds; -1 when malformed. */
static int64_t amz_time(yr_str_t d)
{
    if (d.len != 16 || d.ptr[8] != 'T' || d.ptr[15] != 'Z')
        return -1;
    int v[6];
    static const int at[6] = {0, 4, 6, 9, 11, 13}, len[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < len[i]; k++) {
            char c = d.ptr[at[i] + k];
            if (c < '0' || c > '9')
                return -1;
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    struct tm tm = {.tm_year = v[0] - 1900,
                    .tm_mon = v[1] - 1,
                    .tm_mday = v[2],
                    .tm_hour = v[3],
                    .tm_min = v[4],
                    .tm_sec = v[5]};
    return (int64_t)timegm(&tm);
}

/* Recomputes the signature of req from the headers it names. */
static int verify_sigv4(const yr_http_req_t *req, yr_str_t authz, sim_error_t *err)
{
    yr_sigv4_auth_t a;
    if (yr_sigv4_parse_auth(authz, &a) < 0) {
        sim_error_set(err, 403, "IncompleteSignatureException", NULL,
                      "Authorization header requires 'Credential', 'Signature' and "
                      "'SignedHeaders' parameters.");
        return -EACCES;
    }
    if (!sim_key_equal(a.access_key, yr_str(aws_access_key))) {
        sim_error_set(err, 403, "UnrecognizedClientException", NULL,
                      "The security token included in the request is invalid.");
        return -EACCES;
    }
    yr_sigv4_hdr_t hs[YR_SIGV4_MAX_HEADERS];
    size_t n = 0, i = 0;
    yr_str_t sh = a.signed_headers;
    while (i < sh.len) {
        size_t j = i;
        while (j < sh.len && sh.ptr[j] != ';')
            j++;
        char name[64];
        if (n == YR_SIGV4_MAX_HEADERS || j - i >= sizeof(name))
            goto bad;
        snprintf(name, sizeof(name), "%.*s", (int)(j - i), sh.ptr + i);
        yr_str_t v = header(req, name);
        if (v.ptr == NULL)
            goto bad;
        hs[n++] = (yr_sigv4_hdr_t){{sh.ptr + i, j - i}, v};
        i = j + 1;
    }
    yr_str_t date = header(req, "x-amz-date");
    if (date.len != 16 || a.date.len != 8 || memcmp(date.ptr, a.date.ptr, 8) != 0)
        goto bad;
    int64_t t = amz_time(date), now = (int64_t)time(NULL);
    if (t < 0 || t < now - 15 * 60 || t > now + 15 * 60) { /* the service allows 15 minutes */
        sim_error_set(err, 403, "InvalidSignatureException", NULL,
                      "Signature expired: %.16s is now earlier or later than the allowed 15 "
                      "minutes.",
                      date.ptr);
        return -EACCES;
    }
    char hash[65], amz_date[17], region[64], service[32], method[16];
    yr_sha256_hex(req->body.data ? req->body.data : "", req->body.len, hash);
    snprintf(amz_date, sizeof(amz_date), "%.*s", (int)date.len, date.ptr);
    snprintf(region, sizeof(region), "%.*s", (int)a.region.len, a.region.ptr);
    snprintf(service, sizeof(service), "%.*s", (int)a.service.len, a.service.ptr);
    snprintf(method, sizeof(method), "%.*s", (int)req->method_name.len, req->method_name.ptr);
    yr_sigv4_req_t r = {.method = method,
                        .path = req->path,
                        .query = req->query,
                        .headers = hs,
                        .nheaders = n,
                        .payload_hash = hash};
    yr_sigv4_key_t k = {.access_key = aws_access_key,
                        .secret_key = aws_secret_key,
                        .region = region,
                        .service = service,
                        .amz_date = amz_date};
    yr_sigv4_out_t o;
    yr_sigv4_out_init(&o);
    bool ok = strcmp(service, "bedrock") == 0 && yr_sigv4_sign(&r, &k, &o) == 0 &&
              sim_key_equal(yr_str(o.signature), a.signature);
    yr_sigv4_out_free(&o);
    if (ok)
        return 0;
bad:
    sim_error_set(err, 403, "InvalidSignatureException", NULL,
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method. Consult the "
                  "service documentation for details.");
    return -EACCES;
}

static int br_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    if (key.len == 0 && aws_access_key[0] == '\0')
        return 0;
    yr_str_t authz = yr_str_trim(header(req, "authorization"));
    if (authz.ptr == NULL || authz.len == 0) {
        sim_error_set(err, 403, "AccessDeniedException", NULL, "Missing Authentication Token");
        return -EACCES;
    }
    if (yr_str_has_prefix(authz, YR_STR("Bearer "))) {
        yr_str_t tok = yr_str_trim((yr_str_t){authz.ptr + 7, authz.len - 7});
        if (key.len > 0 && sim_key_equal(tok, key))
            return 0;
        sim_error_set(err, 403, "AccessDeniedException", NULL,
                      "Authentication failed: Please make sure your API Key is valid.");
        return -EACCES;
    }
    if (aws_access_key[0] == '\0') {
        sim_error_set(err, 403, "AccessDeniedException", NULL, "Missing Authentication Token");
        return -EACCES;
    }
    return verify_sigv4(req, authz, err);
}

/* ---- validation ----------------------------------------------------------------------------- */

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static int only_fields(const json_t *obj, const char *const *allowed, const char *at,
                       sim_error_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!in_list(allowed, k))
            return invalid(err,
                           "Malformed input request: #%s: extraneous key [%.64s] is not "
                           "permitted, please reformat your input and try again.",
                           at, k);
    }
    return 0;
}

/* Only white space, newlines included (the service's "blank"). */
static bool blank(const json_t *s)
{
    const char *p = json_string_value(s);
    for (size_t i = 0, n = json_string_length(s); i < n; i++)
        if (p[i] == '\0' || !strchr(" \t\r\n\f\v", p[i]))
            return false;
    return true;
}

typedef struct {
    bool tool_blocks;
    uint64_t bytes;
} scan_t;

static const char *const block_keys[] = {
    "text",         "image",      "document",         "video", "toolUse", "toolResult",
    "guardContent", "cachePoint", "reasoningContent", NULL};

static int check_image(const json_t *img, const char *at, sim_error_t *err)
{
    static const char *const formats[] = {"png", "jpeg", "gif", "webp", NULL};
    const char *f = json_string_value(json_object_get(img, "format"));
    const json_t *bytes = json_object_get(json_object_get(img, "source"), "bytes");
    if (f == NULL || !in_list(formats, f))
        return invalid(err,
                       "The format of the image at %s is not supported. Supported formats: "
                       "png, jpeg, gif, webp.",
                       at);
    if (!json_is_string(bytes) || json_string_length(bytes) == 0)
        return invalid(err, "The image at %s has no bytes.", at);
    return 0;
}

static int check_block(const json_t *b, size_t mi, size_t bi, bool assistant, scan_t *s,
                       sim_error_t *err)
{
    char at[64];
    snprintf(at, sizeof(at), "messages.%zu.content.%zu", mi, bi);
    if (!json_is_object(b) || json_object_size(b) != 1)
        return invalid(err, "The content block at %s must hold exactly one member.", at);
    const char *k = json_object_iter_key(json_object_iter((json_t *)b));
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)b));
    if (!in_list(block_keys, k))
        return invalid(err,
                       "Malformed input request: #/%s: extraneous key [%.64s] is not "
                       "permitted, please reformat your input and try again.",
                       at, k);
    if (strcmp(k, "text") == 0) {
        if (!json_is_string(v) || blank(v))
            return invalid(err,
                           "The text field in the ContentBlock object at %s is blank. Add "
                           "text to the text field, and try again.",
                           at);
        s->bytes += json_string_length(v);
    } else if (strcmp(k, "image") == 0) {
        return check_image(v, at, err);
    } else if (strcmp(k, "toolUse") == 0) {
        s->tool_blocks = true;
        if (!assistant)
            return invalid(err, "toolUse at %s belongs in an assistant message.", at);
        if (!json_is_string(json_object_get(v, "toolUseId")) ||
            !json_is_string(json_object_get(v, "name")))
            return invalid(err, "toolUse at %s needs toolUseId and name.", at);
        if (!json_is_object(json_object_get(v, "input")))
            return invalid(err, "The toolUse input at %s must be a JSON object.", at);
    } else if (strcmp(k, "toolResult") == 0) {
        s->tool_blocks = true;
        if (assistant)
            return invalid(err, "toolResult at %s belongs in a user message.", at);
        const json_t *st = json_object_get(v, "status");
        if (!json_is_string(json_object_get(v, "toolUseId")) ||
            !json_is_array(json_object_get(v, "content")) ||
            (st != NULL && !(json_is_string(st) && (strcmp(json_string_value(st), "success") == 0 ||
                                                    strcmp(json_string_value(st), "error") == 0))))
            return invalid(err,
                           "toolResult at %s needs toolUseId, content and a status of "
                           "success or error.",
                           at);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(v, "content"), i, c)
        {
            const json_t *t = json_object_get(c, "text");
            if (t != NULL && (!json_is_string(t) || blank(t)))
                return invalid(err,
                               "The text field in the ToolResultContentBlock at %s.content.%zu "
                               "is blank.",
                               at, i);
            if (t != NULL)
                s->bytes += json_string_length(t);
        }
    } else if (strcmp(k, "reasoningContent") == 0) {
        const json_t *rt = json_object_get(v, "reasoningText");
        if (!assistant || (rt != NULL && !json_is_string(json_object_get(rt, "signature"))))
            return invalid(err, "reasoningContent at %s needs a signature (assistant only).", at);
    }
    return 0;
}

/* Text and images of the last user message that has some. */
static void user_text(sim_exchange_t *x, const json_t *content)
{
    yr_buf_t t;
    yr_buf_init(&t, SIM_MAX_BODY);
    size_t images = 0, i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        const json_t *s = json_object_get(b, "text");
        if (json_is_string(s)) {
            if ((t.len > 0 && yr_buf_append(&t, "\n", 1) < 0) ||
                yr_buf_append(&t, json_string_value(s), json_string_length(s)) < 0)
                break;
        }
        if (json_object_get(b, "image") != NULL)
            images++;
    }
    if (t.len > 0 || images > 0) {
        char *copy = t.len ? yr_pstrndup(x->pool, t.data, t.len) : NULL;
        x->prompt.last_user_text = copy ? (yr_str_t){copy, t.len} : YR_STR("");
        x->prompt.images = images;
    }
    yr_buf_free(&t);
}

static int parse_messages(sim_exchange_t *x, const json_t *msgs, scan_t *s, sim_error_t *err)
{
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return invalid(err, "A conversation must start with a user message. Try again with a "
                            "conversation that starts with a user message.");
    size_t mi;
    json_t *m;
    const char *prev = NULL;
    json_array_foreach(msgs, mi, m)
    {
        static const char *const fields[] = {"role", "content", NULL};
        char at[32];
        snprintf(at, sizeof(at), "/messages/%zu", mi);
        if (!json_is_object(m) || only_fields(m, fields, at, err) < 0)
            return json_is_object(m) ? -EINVAL : invalid(err, "messages.%zu must be an object", mi);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            return invalid(err, "messages.%zu.role must be user or assistant", mi);
        if (mi == 0 && strcmp(role, "user") != 0)
            return invalid(err, "A conversation must start with a user message. Try again with "
                                "a conversation that starts with a user message.");
        if (prev != NULL && strcmp(prev, role) == 0)
            return invalid(err, "A conversation must alternate between user and assistant "
                                "roles. Make sure the conversation alternates between user and "
                                "assistant roles and try again.");
        prev = role;
        const json_t *content = json_object_get(m, "content");
        if (!json_is_array(content) || json_array_size(content) == 0)
            return invalid(err,
                           "The content field in the Message object at messages.%zu is "
                           "empty. Add a ContentBlock object to the content field and try "
                           "again.",
                           mi);
        bool assistant = role[0] == 'a';
        size_t bi;
        json_t *b;
        json_array_foreach(content, bi, b)
        {
            if (check_block(b, mi, bi, assistant, s, err) < 0)
                return -EINVAL;
        }
        if (!assistant)
            user_text(x, content);
    }
    return 0;
}

static int parse_system(const json_t *sys, scan_t *s, sim_error_t *err)
{
    if (sys == NULL)
        return 0;
    if (!json_is_array(sys))
        return invalid(err, "system must be an array of SystemContentBlock");
    size_t i;
    json_t *b;
    json_array_foreach(sys, i, b)
    {
        const json_t *t = json_object_get(b, "text");
        if (t != NULL && (!json_is_string(t) || blank(t)))
            return invalid(err, "The text field in the SystemContentBlock at system.%zu is blank.",
                           i);
        if (t == NULL && json_object_get(b, "cachePoint") == NULL &&
            json_object_get(b, "guardContent") == NULL)
            return invalid(err,
                           "system.%zu: a SystemContentBlock holds text, cachePoint or "
                           "guardContent",
                           i);
        if (t != NULL)
            s->bytes += json_string_length(t);
    }
    return 0;
}

static int parse_tools(sim_exchange_t *x, const json_t *tc, const scan_t *s, sim_error_t *err)
{
    if (tc == NULL) {
        if (s->tool_blocks)
            return invalid(err, "The toolConfig field must be defined when using toolUse and "
                                "toolResult content blocks.");
        return 0;
    }
    const json_t *tools = json_object_get(tc, "tools");
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return invalid(err, "toolConfig.tools must be a non-empty array");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *spec = json_object_get(t, "toolSpec");
        if (!json_is_string(json_object_get(spec, "name")) ||
            !json_is_object(json_object_get(json_object_get(spec, "inputSchema"), "json")))
            return invalid(err, "toolConfig.tools.%zu.toolSpec needs a name and inputSchema.json",
                           i);
        if (i == 0)
            x->prompt.forced_tool = (yr_str_t){json_string_value(json_object_get(spec, "name")),
                                               json_string_length(json_object_get(spec, "name"))};
    }
    x->prompt.has_tools = true;
    x->prompt.tool_choice = SIM_TOOLS_AUTO;
    const json_t *ch = json_object_get(tc, "toolChoice");
    if (ch == NULL)
        return 0;
    if (!json_is_object(ch) || json_object_size(ch) != 1)
        return invalid(err, "toolConfig.toolChoice holds exactly one of auto, any, tool");
    if (json_object_get(ch, "any") != NULL) {
        x->prompt.tool_choice = SIM_TOOLS_REQUIRED;
    } else if (json_object_get(ch, "tool") != NULL) {
        const json_t *n = json_object_get(json_object_get(ch, "tool"), "name");
        if (!json_is_string(n))
            return invalid(err, "toolConfig.toolChoice.tool needs a name");
        x->prompt.tool_choice = SIM_TOOLS_NAMED;
        x->prompt.forced_tool = (yr_str_t){json_string_value(n), json_string_length(n)};
    } else if (json_object_get(ch, "auto") == NULL) {
        return invalid(err, "toolConfig.toolChoice holds exactly one of auto, any, tool");
    }
    return 0;
}

static int parse_inference(sim_exchange_t *x, const json_t *ic, sim_error_t *err)
{
    static const char *const fields[] = {"maxTokens", "temperature", "topP", "stopSequences", NULL};
    if (ic == NULL)
        return 0;
    if (!json_is_object(ic) || only_fields(ic, fields, "/inferenceConfig", err) < 0)
        return json_is_object(ic) ? -EINVAL : invalid(err, "inferenceConfig must be an object");
    const json_t *mt = json_object_get(ic, "maxTokens");
    if (mt != NULL && (!json_is_integer(mt) || json_integer_value(mt) < 1))
        return invalid(err, "inferenceConfig.maxTokens must be an integer >= 1");
    if (mt != NULL)
        x->prompt.max_tokens = (uint64_t)json_integer_value(mt);
    static const char *const unit[] = {"temperature", "topP"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(ic, unit[i]);
        if (v != NULL &&
            (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1))
            return invalid(err, "inferenceConfig.%s must be between 0 and 1", unit[i]);
    }
    const json_t *stop = json_object_get(ic, "stopSequences");
    size_t i;
    json_t *v;
    if (stop != NULL && !json_is_array(stop))
        return invalid(err, "inferenceConfig.stopSequences must be an array of strings");
    json_array_foreach(stop, i, v)
    {
        if (!json_is_string(v))
            return invalid(err, "inferenceConfig.stopSequences must be an array of strings");
    }
    return 0;
}

static bool thinking_enabled(const json_t *body)
{
    const json_t *th =
        json_object_get(json_object_get(body, "additionalModelRequestFields"), "thinking");
    return yr_str_eq((yr_str_t){json_string_value(json_object_get(th, "type")),
                                json_string_length(json_object_get(th, "type"))},
                     YR_STR("enabled"));
}

static int parse_thinking(const sim_exchange_t *x, const json_t *body, sim_error_t *err)
{
    if (!thinking_enabled(body))
        return 0;
    const json_t *th =
        json_object_get(json_object_get(body, "additionalModelRequestFields"), "thinking");
    const json_t *bt = json_object_get(th, "budget_tokens");
    if (!json_is_integer(bt) || json_integer_value(bt) < 1024)
        return invalid(err, "thinking.budget_tokens: Input should be greater than or equal to "
                            "1024");
    if (x->prompt.max_tokens > 0 && (uint64_t)json_integer_value(bt) >= x->prompt.max_tokens)
        return invalid(err, "`max_tokens` must be greater than `thinking.budget_tokens`");
    const json_t *t = json_object_get(json_object_get(body, "inferenceConfig"), "temperature");
    if (t != NULL && json_number_value(t) != 1.0)
        return invalid(err, "`temperature` may only be set to 1 when thinking is enabled");
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int br_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    static const char *const fields[] = {"messages",        "system",
                                         "inferenceConfig", "toolConfig",
                                         "guardrailConfig", "additionalModelRequestFields",
                                         "promptVariables", "additionalModelResponseFieldPaths",
                                         "requestMetadata", "performanceConfig",
                                         "x_sim",           NULL};
    if (!json_is_object(body))
        return invalid(err, "Malformed input request, please reformat your input and try "
                            "again.");
    if (only_fields(body, fields, "", err) < 0)
        return -EINVAL;
    yr_str_t id;
    bool stream = false;
    model_of(x->req, &id, &stream);
    /* the id as the service reads it: percent-decoded */
    char *m = yr_palloc(x->pool, id.len + 1);
    size_t n = 0;
    if (m == NULL)
        return invalid(err, "out of memory");
    for (size_t i = 0; i < id.len; i++) {
        int hi = i + 2 < id.len && id.ptr[i] == '%' ? hexval(id.ptr[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(id.ptr[i + 2]) : -1;
        if (lo >= 0) {
            m[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            m[n++] = id.ptr[i];
        }
    }
    m[n] = '\0';
    x->prompt.model = (yr_str_t){m, n};
    x->prompt.stream = stream;
    x->prompt.include_usage = true;
    x->prompt.n = 1;
    scan_t s = {0};
    int rc = parse_messages(x, json_object_get(body, "messages"), &s, err);
    if (rc == 0)
        rc = parse_system(json_object_get(body, "system"), &s, err);
    if (rc == 0)
        rc = parse_tools(x, json_object_get(body, "toolConfig"), &s, err);
    if (rc == 0)
        rc = parse_inference(x, json_object_get(body, "inferenceConfig"), err);
    if (rc == 0)
        rc = parse_thinking(x, body, err);
    x->prompt.prompt_bytes = s.bytes;
    return rc;
}

/* ---- answers -------------------------------------------------------------------------------- */

static const char *stop_reason(const sim_reply_t *r)
{
    switch (r->finish) {
    case SIM_FINISH_LENGTH: return "max_tokens";
    case SIM_FINISH_TOOL_CALLS: return "tool_use";
    case SIM_FINISH_STOP: break;
    }
    return "end_turn";
}

static json_t *stop_json(const sim_reply_t *r)
{
    return r->finish_override.ptr ? json_stringn(r->finish_override.ptr, r->finish_override.len)
                                  : json_string(stop_reason(r));
}

/* "Reasoning about: " + the first bytes of the user's text (in the pool). */
static yr_str_t reasoning_text(sim_exchange_t *x)
{
    yr_str_t u = x->prompt.last_user_text;
    size_t n = sim_utf8_floor(u.ptr ? u.ptr : "", u.len, BR_THINK_ECHO);
    char *s = yr_palloc(x->pool, n + 32);
    if (s == NULL)
        return YR_STR("Reasoning.");
    int len = snprintf(s, n + 32, "Reasoning about: %.*s", (int)n, u.ptr ? u.ptr : "");
    return (yr_str_t){s, (size_t)len};
}

static uint64_t output_tokens(sim_exchange_t *x)
{
    uint64_t n = x->reply.completion_tokens;
    if (thinking_enabled(x->body))
        n += sim_count_words(reasoning_text(x));
    return n;
}

static json_t *usage_json(sim_exchange_t *x)
{
    uint64_t in = x->reply.prompt_tokens, out = output_tokens(x);
    json_t *u = json_pack("{s:I, s:I, s:I}", "inputTokens", (json_int_t)in, "outputTokens",
                          (json_int_t)out, "totalTokens", (json_int_t)(in + out));
    if (u != NULL && x->reply.usage_override != NULL) {
        json_object_update(u, x->reply.usage_override);
        json_int_t total = 0;
        static const char *const parts[] = {"inputTokens", "outputTokens", "cacheReadInputTokens",
                                            "cacheWriteInputTokens"};
        for (size_t i = 0; i < 4; i++)
            total += json_integer_value(json_object_get(u, parts[i]));
        if (json_object_get(x->reply.usage_override, "totalTokens") == NULL)
            json_object_set_new(u, "totalTokens", json_integer(total));
    }
    return u;
}

static void signature(const sim_exchange_t *x, char out[65])
{
    uint64_t h = 0x84222325cbf29ce4ull;
    for (const char *p = x->id; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    sim_random_alnum(h, out, 64);
}

static yr_str_t tool_id(const sim_exchange_t *x, size_t i, char buf[40])
{
    const sim_call_t *c = &x->reply.calls[i];
    if (json_object_get(json_array_get(x->beh.tool_calls, i), "id") != NULL || c->id.len != 29)
        return c->id;
    memcpy(buf, "tooluse_", 8);
    memcpy(buf + 8, c->id.ptr + 5, 22);
    return (yr_str_t){buf, 30};
}

static json_t *input_json(const sim_call_t *c)
{
    json_t *v = json_loadb(c->arguments.ptr, c->arguments.len, 0, NULL);
    if (json_is_object(v))
        return v;
    json_decref(v);
    return json_object();
}

static int dump(json_t *v, yr_buf_t *b)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    int rc = s ? yr_buf_append_str(b, yr_str(s)) : -ENOMEM;
    free(s);
    json_decref(v);
    return rc;
}

static int br_render(sim_exchange_t *x, yr_buf_t *b)
{
    const sim_reply_t *r = &x->reply;
    json_t *content = json_array();
    if (content == NULL)
        return -ENOMEM;
    if (thinking_enabled(x->body)) {
        char sig[65];
        signature(x, sig);
        yr_str_t t = reasoning_text(x);
        json_array_append_new(content,
                              json_pack("{s:{s:{s:s%, s:s}}}", "reasoningContent", "reasoningText",
                                        "text", t.ptr, t.len, "signature", sig));
    }
    if (r->has_text && r->text.len > 0)
        json_array_append_new(content, json_pack("{s:s%}", "text", r->text.ptr, r->text.len));
    for (size_t i = 0; i < r->ncalls; i++) {
        char idb[40];
        yr_str_t id = tool_id(x, i, idb);
        json_array_append_new(content,
                              json_pack("{s:{s:s%, s:s%, s:o}}", "toolUse", "toolUseId", id.ptr,
                                        id.len, "name", r->calls[i].name.ptr, r->calls[i].name.len,
                                        "input", input_json(&r->calls[i])));
    }
    json_t *root = json_pack("{s:{s:{s:s, s:o}}, s:o, s:o, s:{s:i}}", "output", "message", "role",
                             "assistant", "content", content, "stopReason", stop_json(r), "usage",
                             usage_json(x), "metrics", "latencyMs", 42);
    return dump(root, b);
}

/* ---- the stream ----------------------------------------------------------------------------- */

enum br_phase {
    BR_START,
    BR_THINK,
    BR_THINK_SIG,
    BR_THINK_STOP,
    BR_TEXT,
    BR_TEXT_STOP,
    BR_CALL_START,
    BR_CALL_DELTA,
    BR_CALL_STOP,
    BR_STOP,
    BR_METADATA,
};

typedef struct {
    enum br_phase phase;
    sim_pieces_t pieces;
    size_t block, call, round;
    yr_str_t thinking;
} br_stream_t;

/* One eventstream message: :event-type name, :content-type, :message-type
 * event (or exception), payload v (consumed). */
static int message(yr_buf_t *b, const char *kind, const char *name, json_t *v)
{
    yr_buf_t payload;
    yr_buf_init(&payload, SIM_MAX_RESPONSE);
    int rc = dump(v, &payload);
    bool ex = strcmp(kind, "exception") == 0;
    yr_es_header_t h[] = {
        {.name = ex ? YR_STR(":exception-type") : YR_STR(":event-type"),
         .type = YR_ES_STRING,
         .bytes = yr_str(name)},
        {.name = YR_STR(":content-type"),
         .type = YR_ES_STRING,
         .bytes = YR_STR("application/json")},
        {.name = YR_STR(":message-type"), .type = YR_ES_STRING, .bytes = yr_str(kind)},
    };
    if (rc == 0)
        rc = yr_es_encode(b, h, 3, (yr_str_t){payload.data ? payload.data : "", payload.len});
    yr_buf_free(&payload);
    return rc;
}

/* Bedrock pads events with a "p" field of random length (against traffic
 * analysis); kept so a decoder that trips on unknown fields is caught. */
static json_t *delta(size_t block, const char *kind, const char *field, yr_str_t v)
{
    if (field == NULL) /* {"text": "..."} */
        return json_pack("{s:I, s:{s:s%}, s:s}", "contentBlockIndex", (json_int_t)block, "delta",
                         kind, v.ptr, v.len, "p", "abcdefghij");
    return json_pack("{s:I, s:{s:{s:s%}}, s:s}", "contentBlockIndex", (json_int_t)block, "delta",
                     kind, field, v.ptr, v.len, "p", "abcdefghij");
}

static const char *exception_message(yr_str_t type)
{
    if (yr_str_eq(type, YR_STR("throttlingException")))
        return "Too many requests, please wait before trying again.";
    if (yr_str_eq(type, YR_STR("modelStreamErrorException")))
        return "An error occurred while streaming the response. Retry your request.";
    if (yr_str_eq(type, YR_STR("serviceUnavailableException")))
        return "The service is unavailable. Try again later.";
    return "The server encountered an internal error.";
}

static int br_stream_next(sim_exchange_t *x, yr_buf_t *b)
{
    br_stream_t *st = x->dstate;
    const sim_reply_t *r = &x->reply;
    const sim_behaviour_t *beh = &x->beh;
    yr_str_t piece;
    if (beh->stream_error.len > 0 &&
        x->events >= (uint64_t)(beh->stream_error_after >= 0 ? beh->stream_error_after : 1)) {
        char name[64];
        snprintf(name, sizeof(name), "%.*s",
                 (int)(beh->stream_error.len < 63 ? beh->stream_error.len : 63),
                 beh->stream_error.ptr);
        json_t *v = json_pack("{s:s}", "message",
                              beh->error_message.ptr ? beh->error_message.ptr
                                                     : exception_message(beh->stream_error));
        return message(b, "exception", name, v) < 0 ? -ENOMEM : SIM_EVENT_LAST;
    }
    for (;;) {
        switch (st->phase) {
        case BR_START:
            st->phase = thinking_enabled(x->body)    ? BR_THINK
                        : r->has_text && r->text.len ? BR_TEXT
                        : r->ncalls                  ? BR_CALL_START
                                                     : BR_STOP;
            if (st->phase == BR_THINK) {
                st->thinking = reasoning_text(x);
                sim_pieces_init(&st->pieces, st->thinking, 0);
            } else if (st->phase == BR_TEXT) {
                sim_pieces_init(&st->pieces, r->text, r->chunks);
            }
            return message(b, "event", "messageStart", json_pack("{s:s}", "role", "assistant")) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        case BR_THINK:
            if (sim_pieces_next(&st->pieces, &piece))
                return message(b, "event", "contentBlockDelta",
                               delta(st->block, "reasoningContent", "text", piece)) < 0
                           ? -ENOMEM
                           : SIM_EVENT;
            st->phase = BR_THINK_SIG;
            break;
        case BR_THINK_SIG: {
            char sig[65];
            signature(x, sig);
            st->phase = BR_THINK_STOP;
            return message(b, "event", "contentBlockDelta",
                           delta(st->block, "reasoningContent", "signature", yr_str(sig))) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        }
        case BR_THINK_STOP:
            st->phase = r->has_text && r->text.len ? BR_TEXT : r->ncalls ? BR_CALL_START : BR_STOP;
            if (st->phase == BR_TEXT)
                sim_pieces_init(&st->pieces, r->text, r->chunks);
            return message(b, "event", "contentBlockStop",
                           json_pack("{s:I}", "contentBlockIndex", (json_int_t)st->block++)) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        case BR_TEXT:
            if (sim_pieces_next(&st->pieces, &piece))
                return message(b, "event", "contentBlockDelta",
                               delta(st->block, "text", NULL, piece)) < 0
                           ? -ENOMEM
                           : SIM_EVENT;
            if (++st->round < r->repeat) {
                sim_pieces_init(&st->pieces, r->text, r->chunks);
                break;
            }
            st->phase = BR_TEXT_STOP;
            break;
        case BR_TEXT_STOP:
            st->phase = r->ncalls ? BR_CALL_START : BR_STOP;
            return message(b, "event", "contentBlockStop",
                           json_pack("{s:I}", "contentBlockIndex", (json_int_t)st->block++)) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        case BR_CALL_START: {
            const sim_call_t *c = &r->calls[st->call];
            char idb[40];
            yr_str_t id = tool_id(x, st->call, idb);
            sim_pieces_init(&st->pieces, c->arguments, sim_args_chunks(c->arguments));
            st->phase = BR_CALL_DELTA;
            return message(b, "event", "contentBlockStart",
                           json_pack("{s:I, s:{s:{s:s%, s:s%}}}", "contentBlockIndex",
                                     (json_int_t)st->block, "start", "toolUse", "toolUseId", id.ptr,
                                     id.len, "name", c->name.ptr, c->name.len)) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        }
        case BR_CALL_DELTA:
            if (sim_pieces_next(&st->pieces, &piece))
                return message(b, "event", "contentBlockDelta",
                               delta(st->block, "toolUse", "input", piece)) < 0
                           ? -ENOMEM
                           : SIM_EVENT;
            st->phase = BR_CALL_STOP;
            break;
        case BR_CALL_STOP:
            st->phase = ++st->call < r->ncalls ? BR_CALL_START : BR_STOP;
            return message(b, "event", "contentBlockStop",
                           json_pack("{s:I}", "contentBlockIndex", (json_int_t)st->block++)) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        case BR_STOP:
            st->phase = BR_METADATA;
            return message(b, "event", "messageStop",
                           json_pack("{s:o}", "stopReason", stop_json(r))) < 0
                       ? -ENOMEM
                       : SIM_EVENT;
        case BR_METADATA:
            return message(b, "event", "metadata",
                           json_pack("{s:o, s:{s:i}}", "usage", usage_json(x), "metrics",
                                     "latencyMs", 42)) < 0
                       ? -ENOMEM
                       : SIM_EVENT_LAST;
        }
    }
}

static size_t br_stream_events(const sim_exchange_t *x)
{
    const sim_reply_t *r = &x->reply;
    size_t n = 3; /* messageStart, messageStop, metadata */
    if (thinking_enabled(x->body)) {
        yr_str_t u = x->prompt.last_user_text;
        size_t echo = sim_utf8_floor(u.ptr ? u.ptr : "", u.len, BR_THINK_ECHO);
        n += 2 + 2 + sim_count_words((yr_str_t){u.ptr, echo}); /* "Reasoning about:", sig, stop */
    }
    if (r->has_text && r->text.len)
        n += 1 + sim_pieces_count(r->text, r->chunks) * r->repeat;
    for (size_t i = 0; i < r->ncalls; i++)
        n += 2 + sim_pieces_count(r->calls[i].arguments, sim_args_chunks(r->calls[i].arguments));
    return n;
}

/* A contentBlockDelta whose payload is not JSON (valid CRCs). */
static const char malformed[] =
    "\x00\x00\x00\x70\x00\x00\x00\x57\x69\xff\xfb\xf1\x0d\x3a\x6d\x65\x73\x73\x61\x67\x65\x2d"
    "\x74\x79\x70\x65\x07\x00\x05\x65\x76\x65\x6e\x74\x0b\x3a\x65\x76\x65\x6e\x74\x2d\x74\x79"
    "\x70\x65\x07\x00\x11\x63\x6f\x6e\x74\x65\x6e\x74\x42\x6c\x6f\x63\x6b\x44\x65\x6c\x74\x61"
    "\x0d\x3a\x63\x6f\x6e\x74\x65\x6e\x74\x2d\x74\x79\x70\x65\x07\x00\x10\x61\x70\x70\x6c\x69"
    "\x63\x61\x74\x69\x6f\x6e\x2f\x6a\x73\x6f\x6e\x7b\x6e\x6f\x74\x20\x6a\x73\x6f\x6e\xcf\x2a"
    "\x18\xa7";

const sim_dialect_t sim_dialect_bedrock = {
    .name = "bedrock",
    .route = br_route,
    .check_auth = br_check_auth,
    .parse = br_parse,
    .error_defaults = br_error_defaults,
    .render_error = br_render_error,
    .render = br_render,
    .stream_state_size = sizeof(br_stream_t),
    .stream_next = br_stream_next,
    .stream_events = br_stream_events,
    .stream_content_type = YR_STR("application/vnd.amazon.eventstream"),
    .malformed_event = {malformed, sizeof(malformed) - 1},
    .render_models = NULL,
    .error_type_header = "x-amzn-ErrorType",
    .error_type_suffix = ":http://internal.amazon.com/coral/com.amazon.bedrock/",
    .request_id_header = "x-amzn-RequestId",
};
