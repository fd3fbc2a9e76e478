/* The OpenAI Chat Completions dialect: request validation with OpenAI's own
 * error messages, the chat.completion object, chat.completion.chunk events,
 * the model list and the error shape {"error":{message,type,param,code}}.
 *
 * Everything here is a pure function of the exchange: it renders into a
 * buffer and never touches the connection (exchange.c does). Responses are
 * written with the buffer API rather than built as a jansson tree: the
 * simulator is the benchmark's upstream and this is its hot path. */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define FINGERPRINT "fp_sim"

/* ---- errors ------------------------------------------------------------------------ */

static void oai_error_defaults(int status, sim_error_t *err)
{
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = NULL;
    const char *msg;
    switch (status) {
    case 400: msg = "Invalid request."; break;
    case 401:
        msg = "Incorrect API key provided.";
        code = "invalid_api_key";
        break;
    case 403:
        msg = "You are not allowed to access this resource.";
        type = "permission_error";
        code = "permission_denied";
        break;
    case 404:
        msg = "The model does not exist or you do not have access to it.";
        code = "model_not_found";
        break;
    case 408:
        msg = "Request timed out.";
        type = "timeout";
        break;
    case 409: msg = "Conflict."; break;
    case 413: msg = "Request too large."; break;
    case 422: msg = "Unprocessable request."; break;
    case 429:
        msg = "Rate limit reached for requests. Please try again later.";
        type = "requests";
        code = "rate_limit_exceeded";
        break;
    case 500:
        msg = "The server had an error while processing your request. Sorry about that!";
        break;
    case 502: msg = "Bad gateway."; break;
    case 503:
        msg = "The server is overloaded or not ready yet.";
        type = "service_unavailable";
        code = "service_unavailable";
        break;
    case 504:
        msg = "Gateway timeout.";
        type = "timeout";
        code = "timeout";
        break;
    default: msg = status >= 500 ? "The server had an error." : "Request failed."; break;
    }
    sim_error_set(err, status, type, code, "%s", msg);
}

static int append_json_or_null(yr_buf_t *b, yr_str_t s)
{
    if (s.ptr == NULL)
        return yr_buf_append_str(b, YR_STR("null"));
    return yr_buf_append_json_str(b, s);
}

static int oai_render_error(const sim_error_t *err, yr_buf_t *b)
{
    int rc = yr_buf_append_str(b, YR_STR("{\"error\":{\"message\":"));
    if (rc == 0)
        rc = append_json_or_null(b, err->message.ptr ? err->message : YR_STR(""));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"type\":"));
    if (rc == 0)
        rc = append_json_or_null(b, err->type);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"param\":"));
    if (rc == 0)
        rc = append_json_or_null(b, err->param);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"code\":"));
    if (rc == 0)
        rc = append_json_or_null(b, err->code);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc;
}

/* ---- routing and auth ------------------------------------------------------------------- */

static bool has_suffix(yr_str_t s, yr_str_t suffix)
{
    return s.len >= suffix.len && memcmp(s.ptr + s.len - suffix.len, suffix.ptr, suffix.len) == 0;
}

static sim_route_t oai_route(const yr_http_req_t *req)
{
    yr_str_t path = req->path;
    if (req->method == HTTP_POST && has_suffix(path, YR_STR("/chat/completions")))
        return SIM_ROUTE_CHAT;
    if (req->method != HTTP_GET)
        return SIM_ROUTE_NONE;
    if (has_suffix(path, YR_STR("/models")))
        return SIM_ROUTE_MODELS;
    /* .../models/{id}; a ':' belongs to Gemini's models/{m}:generateContent. */
    const char *slash = path.len ? memrchr(path.ptr, '/', path.len) : NULL;
    if (slash != NULL && slash > path.ptr && (size_t)(slash - path.ptr) + 1 < path.len) {
        yr_str_t head = {path.ptr, (size_t)(slash - path.ptr)};
        yr_str_t id = {slash + 1, path.len - head.len - 1};
        if (has_suffix(head, YR_STR("/models")) && memchr(id.ptr, ':', id.len) == NULL)
            return SIM_ROUTE_MODEL;
    }
    return SIM_ROUTE_NONE;
}

/* "sk-abc...wxyz" -> "sk-***wxyz": enough to recognise a key, not to use it.
 * Bytes outside printable ASCII become '?' so the message stays valid JSON. */
static void mask_key(yr_str_t key, char *out, size_t outlen)
{
    size_t head = key.len >= 12 ? 3 : 0, tail = key.len >= 12 ? 4 : 0;
    size_t o = 0;
    for (size_t i = 0; i < key.len && o + 1 < outlen; i++) {
        if (i == head && head + tail < key.len) {
            for (int k = 0; k < 3 && o + 1 < outlen; k++)
                out[o++] = '*';
            i = key.len - tail;
            if (i >= key.len)
                break;
        }
        unsigned char c = (unsigned char)key.ptr[i];
        out[o++] = (c >= 0x21 && c <= 0x7E) ? (char)c : '?';
    }
    out[o] = '\0';
}

static int oai_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    if (key.len == 0)
        return 0;
    yr_str_t h = yr_http_req_header(req, YR_STR("authorization"));
    yr_str_t bearer = YR_STR("bearer ");
    if (h.len < bearer.len || !yr_str_ieq((yr_str_t){h.ptr, bearer.len}, bearer)) {
        sim_error_set(err, 401, "invalid_request_error", NULL,
                      "You didn't provide an API key. You need to provide your API key in an "
                      "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                      "YOUR_KEY). You can obtain an API key from "
                      "https://platform.openai.com/account/api-keys.");
        return -EACCES;
    }
    yr_str_t presented = yr_str_trim((yr_str_t){h.ptr + bearer.len, h.len - bearer.len});
    if (sim_key_equal(presented, key))
        return 0;
    char masked[32];
    mask_key(presented, masked, sizeof(masked));
    sim_error_set(err, 401, "invalid_request_error", "invalid_api_key",
                  "Incorrect API key provided: %s. You can find your API key at "
                  "https://platform.openai.com/account/api-keys.",
                  masked);
    return -EACCES;
}

/* ---- request validation ------------------------------------------------------------------ */

static int invalid_type(sim_error_t *err, const char *param, const char *expected, const json_t *v)
{
    sim_error_set(err, 400, "invalid_request_error", "invalid_type",
                  "Invalid type for '%s': expected %s, but got %s instead.", param, expected,
                  sim_json_type_name(v));
    sim_error_param(err, "%s", param);
    return -EINVAL;
}

static int missing(sim_error_t *err, const char *param)
{
    sim_error_set(err, 400, "invalid_request_error", "missing_required_parameter",
                  "Missing required parameter: '%s'.", param);
    sim_error_param(err, "%s", param);
    return -EINVAL;
}

static int below_min(sim_error_t *err, const char *param, json_int_t min, json_int_t got)
{
    sim_error_set(err, 400, "invalid_request_error", "integer_below_min_value",
                  "Invalid '%s': integer below minimum value. Expected a value >= %lld, but got "
                  "%lld instead.",
                  param, (long long)min, (long long)got);
    sim_error_param(err, "%s", param);
    return -EINVAL;
}

static bool valid_role(const char *r)
{
    static const char *const roles[] = {"system",    "developer", "user",
                                        "assistant", "tool",      "function"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(r, roles[i]) == 0)
            return true;
    return false;
}

typedef struct {
    yr_buf_t *text; /* the last user message's text (when collecting) */
    size_t images;
    uint64_t bytes; /* every message's text */
} msg_scan_t;

static int scan_part(size_t mi, size_t pi, const json_t *part, msg_scan_t *s, sim_error_t *err)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu]", mi, pi);
    if (!json_is_object(part))
        return invalid_type(err, param, "an object", part);
    const json_t *type = json_object_get(part, "type");
    snprintf(param, sizeof(param), "messages[%zu].content[%zu].type", mi, pi);
    if (type == NULL)
        return missing(err, param);
    if (!json_is_string(type))
        return invalid_type(err, param, "a string", type);
    const char *t = json_string_value(type);
    if (strcmp(t, "text") == 0 || strcmp(t, "refusal") == 0) {
        const json_t *text = json_object_get(part, t);
        snprintf(param, sizeof(param), "messages[%zu].content[%zu].%s", mi, pi, t);
        if (text == NULL)
            return missing(err, param);
        if (!json_is_string(text))
            return invalid_type(err, param, "a string", text);
        s->bytes += json_string_length(text);
        if (s->text != NULL) {
            int rc = s->text->len ? yr_buf_append(s->text, "\n", 1) : 0;
            if (rc == 0)
                rc = yr_buf_append(s->text, json_string_value(text), json_string_length(text));
            if (rc < 0) {
                sim_error_set(err, 400, "invalid_request_error", NULL, "Message too long.");
                return rc;
            }
        }
        return 0;
    }
    if (strcmp(t, "image_url") == 0) {
        const json_t *url = json_object_get(json_object_get(part, "image_url"), "url");
        snprintf(param, sizeof(param), "messages[%zu].content[%zu].image_url.url", mi, pi);
        if (!json_is_string(url))
            return url ? invalid_type(err, param, "a string", url) : missing(err, param);
        if (s->text != NULL)
            s->images++;
        return 0;
    }
    if (strcmp(t, "input_audio") == 0 || strcmp(t, "file") == 0)
        return 0;
    sim_error_set(err, 400, "invalid_request_error", "invalid_value",
                  "Invalid value: '%.64s'. Supported values are: 'text', 'image_url', "
                  "'input_audio', 'refusal', and 'file'.",
                  t);
    sim_error_param(err, "%s", param);
    return -EINVAL;
}

static int scan_message(size_t i, const json_t *m, bool last_user, msg_scan_t *s, sim_error_t *err)
{
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (!json_is_object(m))
        return invalid_type(err, param, "an object", m);
    const json_t *role = json_object_get(m, "role");
    snprintf(param, sizeof(param), "messages[%zu].role", i);
    if (role == NULL)
        return missing(err, param);
    if (!json_is_string(role))
        return invalid_type(err, param, "a string", role);
    const char *r = json_string_value(role);
    if (!valid_role(r)) {
        sim_error_set(err, 400, "invalid_request_error", "invalid_value",
                      "Invalid value: '%.64s'. Supported values are: 'system', 'assistant', "
                      "'user', 'function', 'tool', and 'developer'.",
                      r);
        sim_error_param(err, "%s", param);
        return -EINVAL;
    }
    bool assistant = strcmp(r, "assistant") == 0;
    const json_t *content = json_object_get(m, "content");
    snprintf(param, sizeof(param), "messages[%zu].content", i);
    if (content == NULL && !assistant && strcmp(r, "function") != 0)
        return missing(err, param);
    if (strcmp(r, "tool") == 0 && !json_is_string(json_object_get(m, "tool_call_id"))) {
        snprintf(param, sizeof(param), "messages[%zu].tool_call_id", i);
        return missing(err, param);
    }
    if (content == NULL || (json_is_null(content) && (assistant || strcmp(r, "function") == 0)))
        return 0;
    msg_scan_t local = *s;
    if (!last_user)
        local.text = NULL;
    if (json_is_string(content)) {
        local.bytes += json_string_length(content);
        if (local.text != NULL && yr_buf_append(local.text, json_string_value(content),
                                                json_string_length(content)) < 0) {
            sim_error_set(err, 400, "invalid_request_error", NULL, "Message too long.");
            return -EINVAL;
        }
    } else if (json_is_array(content)) {
        size_t pi;
        const json_t *part;
        json_array_foreach(content, pi, part)
        {
            int rc = scan_part(i, pi, part, &local, err);
            if (rc < 0)
                return rc;
        }
    } else {
        return invalid_type(err, param, "one of a string or array of objects", content);
    }
    s->bytes = local.bytes;
    s->images = local.images;
    return 0;
}

static int parse_messages(sim_exchange_t *x, const json_t *msgs, sim_error_t *err)
{
    if (msgs == NULL)
        return missing(err, "messages");
    if (!json_is_array(msgs))
        return invalid_type(err, "messages", "an array", msgs);
    size_t n = json_array_size(msgs);
    if (n == 0) {
        sim_error_set(err, 400, "invalid_request_error", "empty_array",
                      "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.");
        sim_error_param(err, "messages");
        return -EINVAL;
    }
    size_t last_user = SIZE_MAX;
    for (size_t i = n; i-- > 0;) {
        const char *r = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
        if (r != NULL && strcmp(r, "user") == 0) {
            last_user = i;
            break;
        }
    }
    yr_buf_t text;
    yr_buf_init(&text, SIM_MAX_BODY);
    msg_scan_t s = {.text = &text};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = scan_message(i, json_array_get(msgs, i), i == last_user, &s, err);
    if (rc == 0) {
        x->prompt.prompt_bytes = s.bytes;
        x->prompt.images = s.images;
        char *t = yr_pstrndup(x->pool, text.data ? text.data : "", text.len);
        x->prompt.last_user_text = (yr_str_t){t, text.len};
        if (t == NULL)
            rc = -ENOMEM;
    }
    yr_buf_free(&text);
    return rc;
}

static int parse_tools(sim_exchange_t *x, const json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    const json_t *tools = json_object_get(body, "tools");
    const json_t *choice = json_object_get(body, "tool_choice");
    if (tools != NULL && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return invalid_type(err, "tools", "an array", tools);
        size_t i;
        const json_t *t;
        json_array_foreach(tools, i, t)
        {
            char param[48];
            snprintf(param, sizeof(param), "tools[%zu].function", i);
            const json_t *fn = json_object_get(t, "function");
            if (!json_is_object(t))
                return invalid_type(err, param, "an object", t);
            if (fn == NULL)
                return missing(err, param);
            snprintf(param, sizeof(param), "tools[%zu].function.name", i);
            const json_t *name = json_object_get(fn, "name");
            if (!json_is_string(name))
                return name ? invalid_type(err, param, "a string", name) : missing(err, param);
            if (i == 0)
                p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
        }
        p->has_tools = json_array_size(tools) > 0;
    }
    if (choice == NULL || json_is_null(choice))
        return 0;
    if (!p->has_tools) {
        sim_error_set(err, 400, "invalid_request_error", NULL,
                      "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                      "'tools' are specified.");
        sim_error_param(err, "tool_choice");
        return -EINVAL;
    }
    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);
        if (strcmp(c, "none") == 0)
            p->tool_choice = SIM_TOOLS_NONE;
        else if (strcmp(c, "required") == 0)
            p->tool_choice = SIM_TOOLS_REQUIRED;
        else if (strcmp(c, "auto") == 0)
            p->tool_choice = SIM_TOOLS_AUTO;
        else {
            sim_error_set(err, 400, "invalid_request_error", "invalid_value",
                          "Invalid value: '%.64s'. Supported values are: 'none', 'auto', and "
                          "'required'.",
                          c);
            sim_error_param(err, "tool_choice");
            return -EINVAL;
        }
        return 0;
    }
    const json_t *name = json_object_get(json_object_get(choice, "function"), "name");
    if (!json_is_object(choice))
        return invalid_type(err, "tool_choice", "one of a string or object", choice);
    if (!json_is_string(name))
        return missing(err, "tool_choice.function.name");
    p->tool_choice = SIM_TOOLS_NAMED;
    p->forced_tool = (yr_str_t){json_string_value(name), json_string_length(name)};
    return 0;
}

static int parse_uint_field(const json_t *body, const char *key, json_int_t min, json_int_t max,
                            uint64_t *out, sim_error_t *err)
{
    const json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return invalid_type(err, key, "an integer", v);
    json_int_t n = json_integer_value(v);
    if (n < min)
        return below_min(err, key, min, n);
    if (n > max) {
        sim_error_set(err, 400, "invalid_request_error", "integer_above_max_value",
                      "Invalid '%s': integer above maximum value. Expected a value <= %lld, but "
                      "got %lld instead.",
                      key, (long long)max, (long long)n);
        sim_error_param(err, "%s", key);
        return -EINVAL;
    }
    *out = (uint64_t)n;
    return 0;
}

static int parse_stream(sim_prompt_t *p, const json_t *body, sim_error_t *err)
{
    const json_t *stream = json_object_get(body, "stream");
    if (stream != NULL && !json_is_null(stream) && !json_is_boolean(stream))
        return invalid_type(err, "stream", "a boolean", stream);
    p->stream = json_is_true(stream);
    const json_t *so = json_object_get(body, "stream_options");
    if (so == NULL || json_is_null(so))
        return 0;
    if (!p->stream) {
        sim_error_set(err, 400, "invalid_request_error", NULL,
                      "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
        sim_error_param(err, "stream_options");
        return -EINVAL;
    }
    if (!json_is_object(so))
        return invalid_type(err, "stream_options", "an object", so);
    const json_t *iu = json_object_get(so, "include_usage");
    if (iu != NULL && !json_is_boolean(iu))
        return invalid_type(err, "stream_options.include_usage", "a boolean", iu);
    p->include_usage = json_is_true(iu);
    return 0;
}

static int oai_parse(sim_exchange_t *x, json_t *body, sim_error_t *err)
{
    sim_prompt_t *p = &x->prompt;
    memset(p, 0, sizeof(*p));
    if (!json_is_object(body)) {
        sim_error_set(err, 400, "invalid_request_error", NULL,
                      "We could not parse the JSON body of your request. (HINT: This likely "
                      "means you aren't using your HTTP library correctly. The OpenAI API "
                      "expects a JSON payload, but what was sent was not valid JSON.)");
        return -EINVAL;
    }
    const json_t *model = json_object_get(body, "model");
    if (model == NULL || json_is_null(model)) {
        sim_error_set(err, 400, "invalid_request_error", NULL,
                      "you must provide a model parameter");
        return -EINVAL;
    }
    if (!json_is_string(model))
        return invalid_type(err, "model", "a string", model);
    p->model = (yr_str_t){json_string_value(model), json_string_length(model)};
    int rc = parse_messages(x, json_object_get(body, "messages"), err);
    uint64_t n = 1, max_tokens = 0, max_completion = 0;
    if (rc == 0)
        rc = parse_stream(p, body, err);
    if (rc == 0)
        rc = parse_uint_field(body, "n", 1, SIM_MAX_N, &n, err);
    if (rc == 0)
        rc = parse_uint_field(body, "max_tokens", 1, INT32_MAX, &max_tokens, err);
    if (rc == 0)
        rc = parse_uint_field(body, "max_completion_tokens", 1, INT32_MAX, &max_completion, err);
    if (rc == 0)
        rc = parse_tools(x, body, err);
    p->n = (size_t)n;
    p->max_tokens = max_completion ? max_completion : max_tokens;
    return rc;
}

/* ---- responses -------------------------------------------------------------------------- */

static yr_str_t finish_str(const sim_reply_t *r)
{
    if (r->finish_override.ptr != NULL)
        return r->finish_override;
    switch (r->finish) {
    case SIM_FINISH_LENGTH: return YR_STR("length");
    case SIM_FINISH_TOOL_CALLS: return YR_STR("tool_calls");
    case SIM_FINISH_STOP: break;
    }
    return YR_STR("stop");
}

static int append_usage(sim_exchange_t *x, yr_buf_t *b)
{
    const sim_reply_t *r = &x->reply;
    json_int_t pt = (json_int_t)r->prompt_tokens, ct = (json_int_t)r->completion_tokens;
    if (r->usage_override == NULL)
        return yr_buf_printf(
            b,
            "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
            "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
            "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
            "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
            (long long)pt, (long long)ct, (long long)(pt + ct));
    json_t *u = json_pack("{s:I, s:I, s:I, s:{s:i, s:i}, s:{s:i, s:i, s:i, s:i}}", "prompt_tokens",
                          pt, "completion_tokens", ct, "total_tokens", pt + ct,
                          "prompt_tokens_details", "cached_tokens", 0, "audio_tokens", 0,
                          "completion_tokens_details", "reasoning_tokens", 0, "audio_tokens", 0,
                          "accepted_prediction_tokens", 0, "rejected_prediction_tokens", 0);
    return sim_append_usage(b, u, r->usage_override, "total_tokens", "prompt_tokens",
                            "completion_tokens");
}

static int append_call(yr_buf_t *b, const sim_call_t *c, size_t index, bool with_index,
                       bool empty_args)
{
    int rc = with_index ? yr_buf_printf(b, "{\"index\":%zu,\"id\":", index)
                        : yr_buf_append_str(b, YR_STR("{\"id\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, c->id);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"type\":\"function\",\"function\":{\"name\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, c->name);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"arguments\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, empty_args ? YR_STR("") : c->arguments);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}"));
    return rc;
}

static int append_head(sim_exchange_t *x, yr_buf_t *b, const char *object)
{
    int rc = yr_buf_printf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", x->id,
                           object, (long long)x->created);
    if (rc == 0)
        rc = yr_buf_append_json_str(b, x->prompt.model);
    return rc;
}

static int oai_render(sim_exchange_t *x, yr_buf_t *b)
{
    const sim_reply_t *r = &x->reply;
    int rc = append_head(x, b, "chat.completion");
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR(",\"choices\":["));
    for (size_t i = 0; rc == 0 && i < x->prompt.n; i++) {
        rc = yr_buf_printf(b, "%s{\"index\":%zu,\"message\":{\"role\":\"assistant\",\"content\":",
                           i ? "," : "", i);
        if (rc == 0)
            rc = r->has_text ? yr_buf_append_json_str(b, r->text)
                             : yr_buf_append_str(b, YR_STR("null"));
        if (rc == 0 && r->ncalls > 0) {
            rc = yr_buf_append_str(b, YR_STR(",\"tool_calls\":["));
            for (size_t k = 0; rc == 0 && k < r->ncalls; k++) {
                rc = k ? yr_buf_append(b, ",", 1) : 0;
                if (rc == 0)
                    rc = append_call(b, &r->calls[k], k, false, false);
            }
            if (rc == 0)
                rc = yr_buf_append(b, "]", 1);
        }
        if (rc == 0)
            rc = yr_buf_append_str(b,
                                   YR_STR(",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
                                          "\"finish_reason\":"));
        if (rc == 0)
            rc = yr_buf_append_json_str(b, finish_str(r));
        if (rc == 0)
            rc = yr_buf_append(b, "}", 1);
    }
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("],\"usage\":"));
    if (rc == 0)
        rc = append_usage(x, b);
    if (rc == 0)
        rc = yr_buf_append_str(
            b, YR_STR(",\"service_tier\":\"default\",\"system_fingerprint\":\"" FINGERPRINT "\"}"));
    return rc;
}

/* ---- streaming ----------------------------------------------------------------------------- */

enum oai_stream_phase {
    OS_ROLE,
    OS_CONTENT,
    OS_CALL_HEAD,
    OS_CALL_ARGS,
    OS_FINISH,
    OS_USAGE,
    OS_DONE
};

typedef struct {
    enum oai_stream_phase phase;
    size_t choice;
    size_t call;
    size_t round; /* rounds of content done (behaviour 'repeat') */
    sim_pieces_t pieces;
} oai_stream_t;

/* "data: {...chunk head...,"choices":[{"index":i,"delta":" */
static int chunk_open(sim_exchange_t *x, yr_buf_t *b, size_t choice)
{
    int rc = yr_buf_append_str(b, YR_STR("data: "));
    if (rc == 0)
        rc = append_head(x, b, "chat.completion.chunk");
    if (rc == 0)
        rc = yr_buf_printf(b,
                           ",\"service_tier\":\"default\",\"system_fingerprint\":\"" FINGERPRINT
                           "\",\"choices\":[{\"index\":%zu,\"delta\":",
                           choice);
    return rc;
}

/* ","logprobs":null,"finish_reason":...}]...}\n\n" */
static int chunk_close(sim_exchange_t *x, yr_buf_t *b, yr_str_t finish)
{
    int rc = yr_buf_append_str(b, YR_STR(",\"logprobs\":null,\"finish_reason\":"));
    if (rc == 0)
        rc = append_json_or_null(b, finish);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}]"));
    if (rc == 0 && x->prompt.include_usage)
        rc = yr_buf_append_str(b, YR_STR(",\"usage\":null"));
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}\n\n"));
    return rc;
}

static int delta_string(sim_exchange_t *x, yr_buf_t *b, size_t choice, yr_str_t content)
{
    int rc = chunk_open(x, b, choice);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("{\"content\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, content);
    if (rc == 0)
        rc = yr_buf_append(b, "}", 1);
    if (rc == 0)
        rc = chunk_close(x, b, YR_STR_NULL);
    return rc;
}

/* The first chunk of a choice. When the answer starts with a tool call,
 * OpenAI puts the first call's head in it, with content null. */
static int delta_role(sim_exchange_t *x, yr_buf_t *b, oai_stream_t *st)
{
    const sim_reply_t *r = &x->reply;
    int rc = chunk_open(x, b, st->choice);
    if (rc == 0 && r->has_text) {
        rc = yr_buf_append_str(
            b, YR_STR("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"));
        sim_pieces_init(&st->pieces, r->text, r->chunks);
        st->phase = OS_CONTENT;
    } else if (rc == 0) {
        rc = yr_buf_append_str(b,
                               YR_STR("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["));
        if (rc == 0)
            rc = append_call(b, &r->calls[0], 0, true, true);
        if (rc == 0)
            rc = yr_buf_append_str(b, YR_STR("],\"refusal\":null}"));
        st->call = 0;
        sim_pieces_init(&st->pieces, r->calls[0].arguments, sim_args_chunks(r->calls[0].arguments));
        st->phase = OS_CALL_ARGS;
    }
    if (rc == 0)
        rc = chunk_close(x, b, YR_STR_NULL);
    return rc;
}

static int delta_call_head(sim_exchange_t *x, yr_buf_t *b, oai_stream_t *st)
{
    const sim_call_t *c = &x->reply.calls[st->call];
    int rc = chunk_open(x, b, st->choice);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("{\"tool_calls\":["));
    if (rc == 0)
        rc = append_call(b, c, st->call, true, true);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("]}"));
    if (rc == 0)
        rc = chunk_close(x, b, YR_STR_NULL);
    sim_pieces_init(&st->pieces, c->arguments, sim_args_chunks(c->arguments));
    st->phase = OS_CALL_ARGS;
    return rc;
}

static int delta_call_args(sim_exchange_t *x, yr_buf_t *b, oai_stream_t *st, yr_str_t frag)
{
    int rc = chunk_open(x, b, st->choice);
    if (rc == 0)
        rc = yr_buf_printf(
            b, "{\"tool_calls\":[{\"index\":%zu,\"function\":{\"arguments\":", st->call);
    if (rc == 0)
        rc = yr_buf_append_json_str(b, frag);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}}]}"));
    if (rc == 0)
        rc = chunk_close(x, b, YR_STR_NULL);
    return rc;
}

static int usage_chunk(sim_exchange_t *x, yr_buf_t *b)
{
    int rc = yr_buf_append_str(b, YR_STR("data: "));
    if (rc == 0)
        rc = append_head(x, b, "chat.completion.chunk");
    if (rc == 0)
        rc = yr_buf_append_str(
            b, YR_STR(",\"service_tier\":\"default\",\"system_fingerprint\":\"" FINGERPRINT
                      "\",\"choices\":[],\"usage\":"));
    if (rc == 0)
        rc = append_usage(x, b);
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("}\n\n"));
    return rc;
}

static int oai_stream_next(sim_exchange_t *x, yr_buf_t *b)
{
    oai_stream_t *st = x->dstate;
    const sim_reply_t *r = &x->reply;
    yr_str_t piece;
    for (;;) {
        switch (st->phase) {
        case OS_ROLE: return delta_role(x, b, st) < 0 ? -ENOMEM : SIM_EVENT;
        case OS_CONTENT:
            if (sim_pieces_next(&st->pieces, &piece))
                return delta_string(x, b, st->choice, piece) < 0 ? -ENOMEM : SIM_EVENT;
            if (++st->round < r->repeat) {
                sim_pieces_init(&st->pieces, r->text, r->chunks);
                break;
            }
            st->round = 0;
            st->call = 0;
            st->phase = r->ncalls > 0 ? OS_CALL_HEAD : OS_FINISH;
            break;
        case OS_CALL_HEAD: return delta_call_head(x, b, st) < 0 ? -ENOMEM : SIM_EVENT;
        case OS_CALL_ARGS:
            if (sim_pieces_next(&st->pieces, &piece))
                return delta_call_args(x, b, st, piece) < 0 ? -ENOMEM : SIM_EVENT;
            st->phase = ++st->call < r->ncalls ? OS_CALL_HEAD : OS_FINISH;
            break;
        case OS_FINISH: {
            int rc = chunk_open(x, b, st->choice);
            if (rc == 0)
                rc = yr_buf_append_str(b, YR_STR("{}"));
            if (rc == 0)
                rc = chunk_close(x, b, finish_str(r));
            st->phase = ++st->choice < x->prompt.n ? OS_ROLE
                        : x->prompt.include_usage  ? OS_USAGE
                                                   : OS_DONE;
            return rc < 0 ? -ENOMEM : SIM_EVENT;
        }
        case OS_USAGE: st->phase = OS_DONE; return usage_chunk(x, b) < 0 ? -ENOMEM : SIM_EVENT;
        case OS_DONE:
            return yr_buf_append_str(b, YR_STR("data: [DONE]\n\n")) < 0 ? -ENOMEM : SIM_EVENT_LAST;
        }
    }
}

static size_t oai_stream_events(const sim_exchange_t *x)
{
    const sim_reply_t *r = &x->reply;
    size_t per_choice = 2; /* role + finish */
    if (r->has_text)
        per_choice += sim_pieces_count(r->text, r->chunks);
    for (size_t i = 0; i < r->ncalls; i++)
        per_choice +=
            (i > 0 || r->has_text) +
            sim_pieces_count(r->calls[i].arguments, sim_args_chunks(r->calls[i].arguments));
    return per_choice * x->prompt.n + x->prompt.include_usage + 1;
}

/* ---- models -----------------------------------------------------------------------------------
 */

static const struct {
    const char *id;
    long long created;
    const char *owned_by;
} oai_models[] = {
    {"gpt-4o", 1715367049, "system"},  {"gpt-4o-mini", 1721172741, "system"},
    {"gpt-4.1", 1744316542, "system"}, {"gpt-4.1-mini", 1744318173, "system"},
    {"o4-mini", 1744225351, "system"}, {"gpt-3.5-turbo", 1677610602, "openai"},
};

static int append_model(yr_buf_t *b, yr_str_t id, long long created, const char *owned_by)
{
    int rc = yr_buf_append_str(b, YR_STR("{\"id\":"));
    if (rc == 0)
        rc = yr_buf_append_json_str(b, id);
    if (rc == 0)
        rc = yr_buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"%s\"}",
                           created, owned_by);
    return rc;
}

static int oai_render_models(const yr_http_req_t *req, sim_route_t route, yr_buf_t *b)
{
    if (route == SIM_ROUTE_MODEL) {
        /* Every id exists: the simulator serves whatever model it is asked for. */
        const char *slash = memrchr(req->path.ptr, '/', req->path.len);
        yr_str_t id = {slash + 1, req->path.len - (size_t)(slash + 1 - req->path.ptr)};
        json_t *s = sim_json_string(id.ptr, id.len);
        if (s == NULL)
            return -ENOMEM;
        int rc = append_model(b, (yr_str_t){json_string_value(s), json_string_length(s)},
                              1700000000, "system");
        json_decref(s);
        return rc;
    }
    int rc = yr_buf_append_str(b, YR_STR("{\"object\":\"list\",\"data\":["));
    for (size_t i = 0; rc == 0 && i < sizeof(oai_models) / sizeof(oai_models[0]); i++) {
        rc = i ? yr_buf_append(b, ",", 1) : 0;
        if (rc == 0)
            rc = append_model(b, yr_str(oai_models[i].id), oai_models[i].created,
                              oai_models[i].owned_by);
    }
    if (rc == 0)
        rc = yr_buf_append_str(b, YR_STR("]}"));
    return rc;
}

const sim_dialect_t sim_dialect_openai = {
    .name = "openai",
    .route = oai_route,
    .check_auth = oai_check_auth,
    .parse = oai_parse,
    .error_defaults = oai_error_defaults,
    .render_error = oai_render_error,
    .render = oai_render,
    .stream_state_size = sizeof(oai_stream_t),
    .stream_next = oai_stream_next,
    .stream_events = oai_stream_events,
    .stream_content_type = YR_STR("text/event-stream; charset=utf-8"),
    .malformed_event = YR_STR("data: {not json\n\n"),
    .render_models = oai_render_models,
};

/* For the other OpenAI dialects of the simulator (responses.c, embeddings.c). */
int sim_oai_check_auth(const yr_http_req_t *req, yr_str_t key, sim_error_t *err)
{
    return oai_check_auth(req, key, err);
}

void sim_oai_error_defaults(int status, sim_error_t *err)
{
    oai_error_defaults(status, err);
}

int sim_oai_render_error(const sim_error_t *err, yr_buf_t *out)
{
    return oai_render_error(err, out);
}
