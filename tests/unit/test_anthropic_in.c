/* Anthropic inbound tests: request conversion (one table of accepted
 * requests compared as parsed JSON, one table of rejections with kind, path
 * and message), response conversion, full stream conversions (event order,
 * block indexes, every argument fragment kept), error bodies and the token
 * estimate.
 *
 * JSON in the tables is written with single quotes for readability; dq()
 * turns them into double quotes (no test text contains an apostrophe). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/anthropic_in.h"
#include "core/pool.h"
#include "providers/openai_decode.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the path of a translated answer --------------------------------------- */

/* OpenAI body or chunks -> yr_openai_decode_* -> typed events -> the
 * Anthropic encoder, as the proxy wires them. An in-band ERROR is a failure
 * here, as in the proxy (encoders never see it). */
typedef struct {
    yr_pool_t *pool;
    yr_call_ctx_t cx;
    yr_anth_enc_t *e;
    yr_buf_t *out;
} pipe_t;

static int on_pipe_event(void *arg, const yr_event_t *ev)
{
    pipe_t *p = arg;
    if (ev->type == YR_EV_ERROR)
        return -EINVAL;
    return yr_anth_enc_event(p->e, ev, p->out);
}

static pipe_t *pipe_new(yr_str_t model, yr_str_t seed, bool stream)
{
    pipe_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->pool = yr_pool_create(4096);
    p->e = yr_anth_enc_new(model, seed, stream, 0);
    assert_non_null(p->pool);
    assert_non_null(p->e);
    p->cx = (yr_call_ctx_t){.pool = p->pool, .request_id = YR_STR("req_test")};
    return p;
}

static void pipe_free(pipe_t *p)
{
    yr_anth_enc_free(p->e);
    yr_pool_destroy(p->pool);
    free(p);
}

/* One SSE data payload of the upstream stream. */
static int pipe_feed(pipe_t *p, yr_str_t data, yr_buf_t *out)
{
    yr_sse_event_t m = {YR_STR(""), data};
    bool done;
    p->out = out;
    return yr_openai_decode_event(&p->cx, &m, on_pipe_event, p, &done);
}

/* A chat.completion -> the Anthropic message, appended to out. */
static int anth_response(yr_str_t completion, yr_str_t model, yr_buf_t *out)
{
    pipe_t *p = pipe_new(model, YR_STR_NULL, false);
    p->out = out;
    int rc = yr_openai_decode_response(&p->cx, completion, on_pipe_event, p);
    pipe_free(p);
    return rc;
}

/* A heap copy of s with ' turned into ". */
static char *dq(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    assert_non_null(d);
    for (size_t i = 0; i <= n; i++)
        d[i] = s[i] == '\'' ? '"' : s[i];
    return d;
}

static json_t *parse(const char *s, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL)
        fail_msg("invalid JSON (%s): %.*s", e.text, (int)n, s);
    return j;
}

static void assert_json_eq(const char *what, const char *got, size_t got_len, const char *want)
{
    char *w = dq(want);
    json_t *g = parse(got, got_len);
    json_t *x = parse(w, strlen(w));
    if (!json_equal(g, x))
        fail_msg("%s:\n  got:  %.*s\n  want: %s", what, (int)got_len, got, w);
    json_decref(g);
    json_decref(x);
    free(w);
}

/* ---- requests: accepted ------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *in;
    const char *out;
} req_case_t;

#define HEAD "'model':'claude-x','max_tokens':100,"
#define OHEAD "'model':'claude-x',"
#define U(c) "{'role':'user','content':" c "}"
#define A(c) "{'role':'assistant','content':" c "}"
#define TU(id, name, input) "{'type':'tool_use','id':'" id "','name':'" name "','input':" input "}"
#define CALL(id, name, args)                                                                       \
    "{'id':'" id "','type':'function','function':{'name':'" name "','arguments':" args "}}"

/* clang-format off */
static const req_case_t req_cases[] = {
    {"minimal",
     "{" HEAD "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100}"},
    {"system string and sampling",
     "{" HEAD "'system':'be brief','temperature':0.7,'top_p':0.9,'top_k':5,"
     "'stop_sequences':['END','\\n\\nHuman:'],'metadata':{'user_id':'u-1'},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[{'role':'system','content':'be brief'}," U("'hi'") "],"
     "'max_tokens':100,'temperature':0.7,'top_p':0.9,'stop':['END','\\n\\nHuman:'],"
     "'user':'u-1'}"},
    {"system blocks joined, cache_control ignored",
     "{" HEAD "'system':[{'type':'text','text':'one','cache_control':{'type':'ephemeral'}},"
     "{'type':'text','text':'two'}],'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[{'role':'system','content':'one\\ntwo'}," U("'hi'") "],"
     "'max_tokens':100}"},
    {"empty system and nulls are absent",
     "{" HEAD "'system':'','temperature':null,'metadata':{'user_id':null},'stream':false,"
     "'tools':null,'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100}"},
    {"one text block becomes a string",
     "{" HEAD "'messages':[" U("[{'type':'text','text':'hi','cache_control':{'type':'ephemeral'}}]") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100}"},
    {"two text blocks stay parts",
     "{" HEAD "'messages':[" U("[{'type':'text','text':'a'},{'type':'text','text':'b'}]") "]}",
     "{" OHEAD "'messages':[" U("[{'type':'text','text':'a'},{'type':'text','text':'b'}]") "],"
     "'max_tokens':100}"},
    {"images: base64 and url",
     "{" HEAD "'messages':[" U("[{'type':'image','source':{'type':'base64','media_type':'image/png',"
     "'data':'iVBORw0KGgo='}},{'type':'image','source':{'type':'url','url':'https://x/y.jpg'}},"
     "{'type':'text','text':'what is it'}]") "]}",
     "{" OHEAD "'messages':[" U("[{'type':'image_url','image_url':{'url':"
     "'data:image/png;base64,iVBORw0KGgo='}},{'type':'image_url','image_url':{'url':"
     "'https://x/y.jpg'}},{'type':'text','text':'what is it'}]") "],'max_tokens':100}"},
    {"documents: pdf and text",
     "{" HEAD "'messages':[" U("[{'type':'document','title':'r.pdf','source':{'type':'base64',"
     "'media_type':'application/pdf','data':'JVBERi0='}},{'type':'document','source':{'type':"
     "'text','media_type':'text/plain','data':'plain doc'}}]") "]}",
     "{" OHEAD "'messages':[" U("[{'type':'file','file':{'filename':'r.pdf','file_data':"
     "'data:application/pdf;base64,JVBERi0='}},{'type':'text','text':'plain doc'}]") "],"
     "'max_tokens':100}"},
    {"tool round trip",
     "{" HEAD "'messages':[" U("'weather?'") ","
     A("[{'type':'text','text':'checking'}," TU("toolu_1", "get_weather", "{'city':'Paris'}") "]") ","
     U("[{'type':'tool_result','tool_use_id':'toolu_1','content':'18C'},"
       "{'type':'text','text':'and?'}]") "]}",
     "{" OHEAD "'messages':[" U("'weather?'") ","
     "{'role':'assistant','content':'checking','tool_calls':["
     CALL("toolu_1", "get_weather", "'{\\'city\\':\\'Paris\\'}'") "]},"
     "{'role':'tool','tool_call_id':'toolu_1','content':'18C'}," U("'and?'") "],"
     "'max_tokens':100}"},
    {"parallel tool results in order before text; blocks joined; is_error",
     "{" HEAD "'messages':[" U("'go'") ","
     A("[" TU("a", "f", "{}") "," TU("b", "g", "{'x':[1,2]}") "]") ","
     U("[{'type':'text','text':'first'},{'type':'tool_result','tool_use_id':'b','is_error':true,"
       "'content':[{'type':'text','text':'boom'},{'type':'text','text':'trace'}]},"
       "{'type':'tool_result','tool_use_id':'a'}]") "]}",
     "{" OHEAD "'messages':[" U("'go'") ","
     "{'role':'assistant','content':null,'tool_calls':["
     CALL("a", "f", "'{}'") "," CALL("b", "g", "'{\\'x\\':[1,2]}'") "]},"
     "{'role':'tool','tool_call_id':'b','content':'Error: boom\\ntrace'},"
     "{'role':'tool','tool_call_id':'a','content':''}," U("'first'") "],'max_tokens':100}"},
    {"is_error without content",
     "{" HEAD "'messages':[" U("'go'") "," A("[" TU("a", "f", "{}") "]") ","
     U("[{'type':'tool_result','tool_use_id':'a','is_error':true}]") "]}",
     "{" OHEAD "'messages':[" U("'go'") ",{'role':'assistant','content':null,'tool_calls':["
     CALL("a", "f", "'{}'") "]},{'role':'tool','tool_call_id':'a','content':'Error'}],"
     "'max_tokens':100}"},
    {"tool result image follows as a user message",
     "{" HEAD "'messages':[" U("'shot'") "," A("[" TU("s", "screenshot", "{}") "]") ","
     U("[{'type':'tool_result','tool_use_id':'s','content':[{'type':'text','text':'ok'},"
       "{'type':'image','source':{'type':'base64','media_type':'image/jpeg','data':'AAAA'}}]}]") "]}",
     "{" OHEAD "'messages':[" U("'shot'") ",{'role':'assistant','content':null,'tool_calls':["
     CALL("s", "screenshot", "'{}'") "]},{'role':'tool','tool_call_id':'s','content':'ok'},"
     U("[{'type':'image_url','image_url':{'url':'data:image/jpeg;base64,AAAA'}}]") "],"
     "'max_tokens':100}"},
    {"assistant text blocks joined, thinking dropped",
     "{" HEAD "'messages':[" U("'q'") ","
     A("[{'type':'thinking','thinking':'hmm','signature':'s'},{'type':'redacted_thinking',"
       "'data':'x'},{'type':'text','text':'a'},{'type':'text','text':'b'}]") ","
     U("'more'") "]}",
     "{" OHEAD "'messages':[" U("'q'") "," A("'a\\nb'") "," U("'more'") "],'max_tokens':100}"},
    {"final assistant prefill kept",
     "{" HEAD "'messages':[" U("'q'") "," A("'The answer is'") "]}",
     "{" OHEAD "'messages':[" U("'q'") "," A("'The answer is'") "],'max_tokens':100}"},
    {"empty final assistant dropped",
     "{" HEAD "'messages':[" U("'q'") "," A("[]") "]}",
     "{" OHEAD "'messages':[" U("'q'") "],'max_tokens':100}"},
    {"consecutive user messages pass through",
     "{" HEAD "'messages':[" U("'a'") "," U("'b'") "]}",
     "{" OHEAD "'messages':[" U("'a'") "," U("'b'") "],'max_tokens':100}"},
    {"stream asks for usage",
     "{" HEAD "'stream':true,'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'stream':true,"
     "'stream_options':{'include_usage':true}}"},
    {"tools and tool_choice auto",
     "{" HEAD "'tools':[{'name':'get_weather','description':'Weather now','input_schema':"
     "{'type':'object','properties':{'city':{'type':'string'}},'required':['city']},"
     "'cache_control':{'type':'ephemeral'}},{'type':'custom','name':'noop','input_schema':"
     "{'type':'object'},'strict':true}],'tool_choice':{'type':'auto'},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'tools':[{'type':'function',"
     "'function':{'name':'get_weather','description':'Weather now','parameters':{'type':'object',"
     "'properties':{'city':{'type':'string'}},'required':['city']}}},{'type':'function',"
     "'function':{'name':'noop','parameters':{'type':'object'},'strict':true}}],"
     "'tool_choice':'auto'}"},
    {"tool_choice any, no parallel",
     "{" HEAD "'tools':[{'name':'f','input_schema':{'type':'object'}}],'tool_choice':{'type':'any',"
     "'disable_parallel_tool_use':true},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'tools':[{'type':'function',"
     "'function':{'name':'f','parameters':{'type':'object'}}}],'tool_choice':'required',"
     "'parallel_tool_calls':false}"},
    {"tool_choice tool",
     "{" HEAD "'tools':[{'name':'f','input_schema':{'type':'object'}}],'tool_choice':{'type':'tool',"
     "'name':'f'},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'tools':[{'type':'function',"
     "'function':{'name':'f','parameters':{'type':'object'}}}],'tool_choice':{'type':'function',"
     "'function':{'name':'f'}}}"},
    {"tool_choice none keeps parallel default",
     "{" HEAD "'tools':[{'name':'f','input_schema':{'type':'object'}}],'tool_choice':{'type':'none',"
     "'disable_parallel_tool_use':true},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'tools':[{'type':'function',"
     "'function':{'name':'f','parameters':{'type':'object'}}}],'tool_choice':'none'}"},
    {"tool_choice without tools dropped",
     "{" HEAD "'tools':[],'tool_choice':{'type':'any'},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100}"},
    {"thinking budget low (1024)",
     "{'model':'claude-x','max_tokens':2049,'thinking':{'type':'enabled','budget_tokens':1024},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':2049,'reasoning_effort':'low'}"},
    {"thinking budget low (2048)",
     "{'model':'claude-x','max_tokens':2049,'thinking':{'type':'enabled','budget_tokens':2048},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':2049,'reasoning_effort':'low'}"},
    {"thinking budget medium",
     "{'model':'claude-x','max_tokens':20000,'thinking':{'type':'enabled','budget_tokens':8192},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':20000,'reasoning_effort':'medium'}"},
    {"thinking budget high",
     "{'model':'claude-x','max_tokens':20000,'thinking':{'type':'enabled','budget_tokens':8193},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':20000,'reasoning_effort':'high'}"},
    {"thinking adaptive: no effort",
     "{" HEAD "'thinking':{'type':'adaptive'},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100}"},
    {"output_config effort wins",
     "{" HEAD "'thinking':{'type':'disabled'},'output_config':{'effort':'max'},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'reasoning_effort':'high'}"},
    {"output_config effort xhigh",
     "{" HEAD "'output_config':{'effort':'xhigh'},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'reasoning_effort':'high'}"},
    {"system messages inside messages keep their place",
     "{" HEAD "'system':'top','messages':[" U("'a'") "," A("'b'") ","
     "{'role':'system','content':'be terse now'}," U("'c'") ","
     "{'role':'system','content':[{'type':'text','text':'x','cache_control':{'type':'ephemeral'}},"
     "{'type':'text','text':'y'}]}]}",
     "{" OHEAD "'messages':[{'role':'system','content':'top'}," U("'a'") "," A("'b'") ","
     "{'role':'system','content':'be terse now'}," U("'c'") ","
     "{'role':'system','content':'x\\ny'}],'max_tokens':100}"},
    {"output_config.format: strict schema",
     "{" HEAD "'output_config':{'format':{'type':'json_schema','schema':{'type':'object',"
     "'properties':{'a':{'type':'string'},'b':{'type':'array','items':{'type':'object',"
     "'properties':{'c':{'enum':[{'x':1}]}},'required':['c'],'additionalProperties':false}}},"
     "'required':['a','b'],'additionalProperties':false}},'effort':'low'},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,'reasoning_effort':'low',"
     "'response_format':{'type':'json_schema','json_schema':{'name':'response','schema':"
     "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'array','items':"
     "{'type':'object','properties':{'c':{'enum':[{'x':1}]}},'required':['c'],"
     "'additionalProperties':false}}},'required':['a','b'],'additionalProperties':false},"
     "'strict':true}}}"},
    {"output_config.format: optional property, not strict",
     "{" HEAD "'output_config':{'format':{'type':'json_schema','schema':{'type':'object',"
     "'properties':{'a':{'type':'string'},'b':{'type':'integer'}},'required':['a'],"
     "'additionalProperties':false}}},'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,"
     "'response_format':{'type':'json_schema','json_schema':{'name':'response','schema':"
     "{'type':'object','properties':{'a':{'type':'string'},'b':{'type':'integer'}},"
     "'required':['a'],'additionalProperties':false},'strict':false}}}"},
    {"output_format (beta spelling)",
     "{" HEAD "'output_format':{'type':'json_schema','schema':{'type':'object'}},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100,"
     "'response_format':{'type':'json_schema','json_schema':{'name':'response','schema':"
     "{'type':'object'},'strict':false}}}"},
    {"unknown top-level fields ignored",
     "{" HEAD "'service_tier':'auto','container':'c1','mcp_servers':[],'future':{'x':1},"
     "'messages':[" U("'hi'") "]}",
     "{" OHEAD "'messages':[" U("'hi'") "],'max_tokens':100}"},
};
/* clang-format on */

static void test_request_conversions(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(req_cases); i++) {
        char *in = dq(req_cases[i].in);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 20);
        yr_anth_req_info_t info;
        yr_api_error_t err;
        int rc = yr_anth_request_to_openai(in, strlen(in), &out, &info, &err);
        if (rc != 0)
            fail_msg("%s: rejected (%d): %s", req_cases[i].name, rc, err.message);
        assert_json_eq(req_cases[i].name, out.data, out.len, req_cases[i].out);
        assert_string_equal(info.model, "claude-x");
        assert_int_equal(info.model_len, 8);
        yr_buf_free(&out);
        free(in);
    }
}

static int convert(const char *single_quoted, yr_buf_t *out, yr_anth_req_info_t *info,
                   yr_api_error_t *err)
{
    char *in = dq(single_quoted);
    int rc = yr_anth_request_to_openai(in, strlen(in), out, info, err);
    free(in);
    return rc;
}

static void test_request_info(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    yr_anth_req_info_t info;
    yr_api_error_t err;
    assert_int_equal(convert("{" HEAD "'stream':true,'thinking':{'type':'enabled',"
                             "'budget_tokens':2048},'messages':[" U("'x'") "]}",
                             &out, &info, &err),
                     -EINVAL); /* budget 2048 >= max_tokens 100 */
    assert_string_equal(err.param, "max_tokens");
    yr_buf_reset(&out);
    assert_int_equal(convert("{'model':'claude-opus','max_tokens':4096,'stream':true,"
                             "'thinking':{'type':'enabled','budget_tokens':2048},"
                             "'messages':[" U("'x'") "]}",
                             &out, &info, &err),
                     0);
    assert_string_equal(info.model, "claude-opus");
    assert_true(info.stream);
    assert_true(info.thinking);
    yr_buf_reset(&out);
    assert_int_equal(convert("{" HEAD "'messages':[" U("'x'") "]}", &out, &info, &err), 0);
    assert_false(info.stream);
    assert_false(info.thinking);
    yr_buf_reset(&out);
    assert_int_equal(convert("{" HEAD "'thinking':{'type':'adaptive'},'messages':[" U("'x'") "]}",
                             &out, &info, &err),
                     0);
    assert_true(info.thinking);
    yr_buf_free(&out);
}

/* tool_use input -> arguments keeps every number's value, in its shortest
 * spelling; real stays real. */
static void test_request_number_spelling(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    yr_anth_req_info_t info;
    yr_api_error_t err;
    const char *body =
        "{\"model\":\"m\",\"max_tokens\":9,\"temperature\":0.7,\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"t\",\"name\":\"f\",\"input\":{\"a\":0.1,\"b\":10,\"c\":1.0,\"d\":1e300,"
        "\"e\":-0.30000000000000004,\"s\":\"\\u00e9\\n\"}}]},{\"role\":\"user\",\"content\":"
        "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"ok\"}]}]}";
    assert_int_equal(yr_anth_request_to_openai(body, strlen(body), &out, &info, &err), 0);
    assert_non_null(strstr(out.data, "\"temperature\":0.7}"));
    json_t *j = parse(out.data, out.len);
    json_t *call = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "messages"), 1), "tool_calls"), 0);
    const char *args =
        json_string_value(json_object_get(json_object_get(call, "function"), "arguments"));
    assert_string_equal(args, "{\"a\":0.1,\"b\":10,\"c\":1.0,\"d\":1e+300,"
                              "\"e\":-0.30000000000000004,\"s\":\"\xc3\xa9\\n\"}");
    json_decref(j);
    yr_buf_free(&out);
}

static void test_request_not_nul_terminated(void **state)
{
    (void)state;
    const char src[] = "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}";
    size_t n = sizeof(src) - 1;
    char *heap = malloc(n);
    memcpy(heap, src, n);
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    yr_anth_req_info_t info;
    yr_api_error_t err;
    assert_int_equal(yr_anth_request_to_openai(heap, n, &out, &info, &err), 0);
    assert_int_equal(yr_anth_request_to_openai(heap, n - 1, &out, &info, &err), -EINVAL);
    assert_int_equal(err.err, YR_E_INVALID_JSON);
    free(heap);
    yr_buf_free(&out);
}

static void test_request_output_cap(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 40);
    assert_int_equal(yr_buf_append_str(&out, YR_STR("kept")), 0);
    yr_anth_req_info_t info;
    yr_api_error_t err;
    assert_int_equal(
        convert("{" HEAD "'messages':[" U("'a fairly long message'") "]}", &out, &info, &err),
        -E2BIG);
    assert_int_equal(err.err, YR_E_TOO_LARGE);
    assert_int_equal(out.len, 4); /* nothing half-written */
    assert_string_equal(out.data, "kept");
    yr_buf_free(&out);
}

/* ---- requests: rejected ---------------------------------------------------- */

typedef struct {
    const char *name;
    const char *body;
    yr_err_t err;
    const char *param;
    const char *message; /* substring */
} rej_case_t;

#define M1(c) "{" HEAD "'messages':[" c "]}"
#define UB(b) M1(U("[" b "]"))
#define IMG(src) UB("{'type':'image','source':" src "}")
#define TOOLS(t) "{" HEAD "'tools':[" t "],'messages':[" U("'x'") "]}"

/* clang-format off */
static const rej_case_t rejects[] = {
    {"not json", "{'model':", YR_E_INVALID_JSON, "", "not valid JSON"},
    {"duplicate key", "{'model':'a','model':'b'}", YR_E_INVALID_JSON, "", "duplicate"},
    {"array body", "[1]", YR_E_INVALID_REQUEST, "", "must be a JSON object"},
    {"model missing", "{'max_tokens':1,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "model", "model: Field required"},
    {"model not string", "{'model':5,'max_tokens':1,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "model", "non-empty string"},
    {"model empty", "{'model':'','max_tokens':1,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "model", "non-empty string"},
    {"max_tokens missing", "{'model':'m','messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "max_tokens", "max_tokens: Field required"},
    {"max_tokens zero", "{'model':'m','max_tokens':0,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "max_tokens", "greater than or equal to 1"},
    {"max_tokens string", "{'model':'m','max_tokens':'9','messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "max_tokens", "valid integer"},
    {"max_tokens real", "{'model':'m','max_tokens':1.5,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "max_tokens", "valid integer"},
    {"messages missing", "{" HEAD "'system':'s'}",
     YR_E_INVALID_REQUEST, "messages", "Field required"},
    {"messages not array", "{" HEAD "'messages':{}}",
     YR_E_INVALID_REQUEST, "messages", "valid list"},
    {"messages empty", "{" HEAD "'messages':[]}",
     YR_E_INVALID_REQUEST, "messages", "at least one message"},
    {"message not object", M1("'hi'"),
     YR_E_INVALID_REQUEST, "messages.0", "an object"},
    {"role tool", M1("{'role':'tool','content':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.role", "'user', 'assistant' or 'system'"},
    {"system message empty", "{" HEAD "'messages':[" U("'a'") ",{'role':'system','content':''}]}",
     YR_E_INVALID_REQUEST, "messages.1", "non-empty content"},
    {"system message block not text",
     "{" HEAD "'messages':[" U("'a'") ",{'role':'system','content':[{'type':'image'}]}]}",
     YR_E_INVALID_REQUEST, "messages.1.content.0.type", "Input should be 'text'"},
    {"system message between tool_use and tool_result",
     "{" HEAD "'messages':[" U("'a'") "," A("[" TU("t1", "f", "{}") "]") ","
     "{'role':'system','content':'x'}," U("[{'type':'tool_result','tool_use_id':'t1'}]") "]}",
     YR_E_INVALID_REQUEST, "messages", "without tool_result blocks immediately after"},
    {"output_config not an object", "{" HEAD "'output_config':5,'messages':[" U("'a'") "]}",
     YR_E_INVALID_REQUEST, "output_config", "Input should be an object"},
    {"output format type", "{" HEAD "'output_config':{'format':{'type':'regex','schema':{}}},"
     "'messages':[" U("'a'") "]}",
     YR_E_INVALID_REQUEST, "output_config.format.type", "'json_schema'"},
    {"output format without schema", "{" HEAD "'output_config':{'format':{'type':'json_schema'}},"
     "'messages':[" U("'a'") "]}",
     YR_E_INVALID_REQUEST, "output_config.format.schema", "Field required"},
    {"output_format (beta) schema not an object",
     "{" HEAD "'output_format':{'type':'json_schema','schema':[]},'messages':[" U("'a'") "]}",
     YR_E_INVALID_REQUEST, "output_format.schema", "Input should be an object"},
    {"role missing", M1("{'content':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.role", "Field required"},
    {"content missing", M1("{'role':'user'}"),
     YR_E_INVALID_REQUEST, "messages.0.content", "Field required"},
    {"content number", M1(U("5")),
     YR_E_INVALID_REQUEST, "messages.0.content", "string or a list"},
    {"empty user content", M1(U("''")),
     YR_E_INVALID_REQUEST, "messages.0", "non-empty content"},
    {"empty middle assistant", M1(U("'a'") "," A("[]") "," U("'b'")),
     YR_E_INVALID_REQUEST, "messages.1", "non-empty content"},
    {"block not object", UB("'text'"),
     YR_E_INVALID_REQUEST, "messages.0.content.0", "an object"},
    {"block type missing", UB("{'text':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.type", "Field required"},
    {"unknown block type", UB("{'type':'video','url':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.type", "unknown content block type 'video'"},
    {"unsupported block type", UB("{'type':'search_result','source':'s'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.type", "not supported by this gateway"},
    {"text without text", UB("{'type':'text'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.text", "Field required"},
    {"tool_use in user", UB(TU("t", "f", "{}")),
     YR_E_INVALID_REQUEST, "messages.0.content.0.type", "only allowed in assistant messages"},
    {"thinking in user", UB("{'type':'thinking','thinking':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.type", "only allowed in assistant messages"},
    {"image in assistant",
     M1(U("'x'") "," A("[{'type':'image','source':{'type':'url','url':'u'}}]")),
     YR_E_INVALID_REQUEST, "messages.1.content.0.type", "only allowed in user messages"},
    {"tool_result in assistant",
     M1(U("'x'") "," A("[{'type':'tool_result','tool_use_id':'t'}]")),
     YR_E_INVALID_REQUEST, "messages.1.content.0.type", "only allowed in user messages"},
    {"image without source", UB("{'type':'image'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source", "Field required"},
    {"image source type", IMG("{'type':'ftp','url':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source.type", "'base64', 'url' or 'file'"},
    {"image media type", IMG("{'type':'base64','media_type':'image/bmp','data':'AAAA'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source.media_type", "image/jpeg"},
    {"image data missing", IMG("{'type':'base64','media_type':'image/png'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source.data", "Field required"},
    {"image data not base64", IMG("{'type':'base64','media_type':'image/png','data':'a b!'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source.data", "base64"},
    {"image data empty", IMG("{'type':'base64','media_type':'image/png','data':''}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source.data", "base64"},
    {"image url missing", IMG("{'type':'url'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source.url", "Field required"},
    {"image file source", IMG("{'type':'file','file_id':'f1'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source", "Files API"},
    {"document url source", UB("{'type':'document','source':{'type':'url','url':'u'}}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0.source", "not supported by this gateway"},
    {"tool_result without tool_use",
     UB("{'type':'tool_result','tool_use_id':'t1','content':'x'}"),
     YR_E_INVALID_REQUEST, "messages.0.content.0",
     "unexpected tool_use_id found in tool_result blocks: t1"},
    {"tool_result id mismatch",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "]") ","
        U("[{'type':'tool_result','tool_use_id':'t2'}]")),
     YR_E_INVALID_REQUEST, "messages.2.content.0", "unexpected tool_use_id"},
    {"tool_result answers an older turn",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "]") ","
        U("[{'type':'tool_result','tool_use_id':'t1'}]") "," A("'ok'") ","
        U("[{'type':'tool_result','tool_use_id':'t1'}]")),
     YR_E_INVALID_REQUEST, "messages.4.content.0", "unexpected tool_use_id"},
    {"tool_result id missing",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "]") ","
        U("[{'type':'tool_result','content':'r'}]")),
     YR_E_INVALID_REQUEST, "messages.2.content.0.tool_use_id", "Field required"},
    {"tool_use not answered",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "," TU("t2", "g", "{}") "]") ","
        U("[{'type':'tool_result','tool_use_id':'t1'}]")),
     YR_E_INVALID_REQUEST, "messages", "without tool_result blocks immediately after: t2"},
    {"tool_use followed by assistant",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "]") "," A("'more'")),
     YR_E_INVALID_REQUEST, "messages",
     "without tool_result blocks immediately after: t1 (messages.1)"},
    {"tool_use duplicate id",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "," TU("t1", "f", "{}") "]")),
     YR_E_INVALID_REQUEST, "messages.1.content.1.id", "unique"},
    {"tool_use input not object", M1(U("'x'") "," A("[" TU("t1", "f", "[1]") "]")),
     YR_E_INVALID_REQUEST, "messages.1.content.0.input", "valid dictionary"},
    {"tool_use name missing",
     M1(U("'x'") "," A("[{'type':'tool_use','id':'t1','input':{}}]")),
     YR_E_INVALID_REQUEST, "messages.1.content.0.name", "Field required"},
    {"tool_result is_error not bool",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "]") ","
        U("[{'type':'tool_result','tool_use_id':'t1','is_error':'yes'}]")),
     YR_E_INVALID_REQUEST, "messages.2.content.0.is_error", "boolean"},
    {"tool_result content with document",
     M1(U("'x'") "," A("[" TU("t1", "f", "{}") "]") ","
        U("[{'type':'tool_result','tool_use_id':'t1','content':[{'type':'document'}]}]")),
     YR_E_INVALID_REQUEST, "messages.2.content.0.content.0", "only text and image"},
    {"system number", "{" HEAD "'system':5,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "system", "string or a list of text blocks"},
    {"system image block", "{" HEAD "'system':[{'type':'image'}],'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "system.0.type", "'text'"},
    {"temperature too high", "{" HEAD "'temperature':1.5,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "temperature", "between 0 and 1"},
    {"temperature string", "{" HEAD "'temperature':'hot','messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "temperature", "between 0 and 1"},
    {"top_p negative", "{" HEAD "'top_p':-0.1,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "top_p", "between 0 and 1"},
    {"top_k negative", "{" HEAD "'top_k':-1,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "top_k", "non-negative integer"},
    {"stop_sequences string", "{" HEAD "'stop_sequences':'x','messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "stop_sequences", "valid list"},
    {"stop_sequences number", "{" HEAD "'stop_sequences':['a',1],'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "stop_sequences.1", "valid string"},
    {"stream string", "{" HEAD "'stream':'yes','messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "stream", "boolean"},
    {"metadata number", "{" HEAD "'metadata':5,'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "metadata", "an object"},
    {"metadata user_id number", "{" HEAD "'metadata':{'user_id':5},'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "metadata.user_id", "valid string"},
    {"tools object", "{" HEAD "'tools':{},'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "tools", "valid list"},
    {"tool name missing", TOOLS("{'input_schema':{'type':'object'}}"),
     YR_E_INVALID_REQUEST, "tools.0.name", "Field required"},
    {"tool schema missing", TOOLS("{'name':'f'}"),
     YR_E_INVALID_REQUEST, "tools.0.input_schema", "Field required"},
    {"tool schema not object type", TOOLS("{'name':'f','input_schema':{'type':'array'}}"),
     YR_E_INVALID_REQUEST, "tools.0.input_schema.type", "'object'"},
    {"server tool", TOOLS("{'type':'web_search_20250305','name':'web_search'}"),
     YR_E_INVALID_REQUEST, "tools.0.type", "not supported by this gateway"},
    {"duplicate tool names",
     TOOLS("{'name':'f','input_schema':{'type':'object'}},"
           "{'name':'f','input_schema':{'type':'object'}}"),
     YR_E_INVALID_REQUEST, "tools", "unique"},
    {"tool_choice string", "{" HEAD "'tool_choice':'auto','messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "tool_choice", "an object"},
    {"tool_choice type", "{" HEAD "'tool_choice':{'type':'required'},'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "tool_choice.type", "'auto', 'any', 'tool' or 'none'"},
    {"tool_choice tool without name",
     "{" HEAD "'tool_choice':{'type':'tool'},'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "tool_choice.name", "Field required"},
    {"thinking type", "{" HEAD "'thinking':{'type':'on'},'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "thinking.type", "'enabled', 'adaptive' or 'disabled'"},
    {"thinking budget missing",
     "{" HEAD "'thinking':{'type':'enabled'},'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "thinking.budget_tokens", "Field required"},
    {"thinking budget small",
     "{'model':'m','max_tokens':5000,'thinking':{'type':'enabled','budget_tokens':1023},"
     "'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "thinking.budget_tokens", "greater than or equal to 1024"},
    {"thinking budget over max_tokens",
     "{'model':'m','max_tokens':2000,'thinking':{'type':'enabled','budget_tokens':2000},"
     "'messages':[" U("'x'") "]}",
     YR_E_INVALID_REQUEST, "max_tokens", "greater than thinking.budget_tokens"},
};
/* clang-format on */

static void test_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rejects); i++) {
        const rej_case_t *c = &rejects[i];
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        yr_anth_req_info_t info;
        yr_api_error_t err;
        int rc = convert(c->body, &out, &info, &err);
        if (rc != -EINVAL)
            fail_msg("%s: rc %d, want -EINVAL (out: %s)", c->name, rc, out.data ? out.data : "");
        assert_int_equal(out.len, 0);
        if (err.err != c->err || strcmp(err.param, c->param) != 0 ||
            strstr(err.message, c->message) == NULL)
            fail_msg("%s: got kind %d param '%s' message '%s'; want kind %d param '%s' "
                     "message containing '%s'",
                     c->name, (int)err.err, err.param, err.message, (int)c->err, c->param,
                     c->message);
        /* The message names the path first, Anthropic style. */
        if (c->param[0] != '\0')
            assert_memory_equal(err.message, c->param, strlen(c->param));
        yr_buf_free(&out);
    }
}

/* ---- responses ------------------------------------------------------------------ */

static void response_ok(const char *completion, const char *model, const char *want)
{
    char *c = dq(completion);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    int rc = anth_response(yr_str(c), yr_str(model), &out);
    if (rc != 0)
        fail_msg("rejected (%d): %s", rc, c);
    assert_json_eq(c, out.data, out.len, want);
    yr_buf_free(&out);
    free(c);
}

/* Every field of the SDKs' Usage type, the nullable ones null. */
#define USAGE_NULLS "'cache_creation':null,'server_tool_use':null,'service_tier':null"
#define USAGE0                                                                                     \
    "'usage':{'input_tokens':0,'cache_creation_input_tokens':0,"                                   \
    "'cache_read_input_tokens':0,'output_tokens':0," USAGE_NULLS "}"

static void test_response_text(void **state)
{
    (void)state;
    response_ok("{'id':'chatcmpl-abc123','object':'chat.completion','model':'gpt-4o',"
                "'choices':[{'index':0,'message':{'role':'assistant','content':'Hello!'},"
                "'finish_reason':'stop'}],'usage':{'prompt_tokens':20,'completion_tokens':3,"
                "'total_tokens':23,'prompt_tokens_details':{'cached_tokens':8}}}",
                "claude-x",
                "{'id':'msg_abc123','type':'message','role':'assistant','model':'claude-x',"
                "'content':[{'type':'text','text':'Hello!'}],'stop_reason':'end_turn',"
                "'stop_sequence':null,'usage':{'input_tokens':12,'cache_creation_input_tokens':0,"
                "'cache_read_input_tokens':8,'output_tokens':3," USAGE_NULLS "}}");
}

static void test_response_thinking_and_tools(void **state)
{
    (void)state;
    response_ok("{'id':'chatcmpl-9','model':'m','choices':[{'index':0,'message':{'role':"
                "'assistant','content':'Let me look.','reasoning_content':'User wants weather.',"
                "'tool_calls':[{'id':'call_1','type':'function','function':{'name':'get_weather',"
                "'arguments':'{\\'city\\':\\'Paris\\'}'}},{'id':'call_2','type':'function',"
                "'function':{'name':'now','arguments':''}},{'id':'call_3','type':'function',"
                "'function':{'name':'bad','arguments':'{not json'}}]},"
                "'finish_reason':'tool_calls'}]}",
                "claude-x",
                "{'id':'msg_9','type':'message','role':'assistant','model':'claude-x','content':["
                "{'type':'thinking','thinking':'User wants weather.','signature':''},"
                "{'type':'text','text':'Let me look.'},"
                "{'type':'tool_use','id':'call_1','name':'get_weather','input':{'city':'Paris'}},"
                "{'type':'tool_use','id':'call_2','name':'now','input':{}},"
                "{'type':'tool_use','id':'call_3','name':'bad','input':{}}],"
                "'stop_reason':'tool_use','stop_sequence':null," USAGE0 "}");
    /* "reasoning" (OpenRouter) works too; tool calls without ids get one. */
    response_ok("{'id':'x','choices':[{'message':{'content':null,'reasoning':'r','tool_calls':["
                "{'function':{'name':'f','arguments':'{}'}}]},'finish_reason':'stop'}]}",
                "m",
                "{'id':'msg_x','type':'message','role':'assistant','model':'m','content':["
                "{'type':'thinking','thinking':'r','signature':''},"
                "{'type':'tool_use','id':'toolu_x_0','name':'f','input':{}}],"
                "'stop_reason':'tool_use','stop_sequence':null," USAGE0 "}");
}

static void test_response_stop_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *choice_extra;
        const char *reason;
        const char *seq;
    } cases[] = {
        {"'finish_reason':'length'", "'max_tokens'", "null"},
        {"'finish_reason':'content_filter'", "'refusal'", "null"},
        {"'finish_reason':null", "'end_turn'", "null"},
        {"'finish_reason':'stop','stop_reason':'###'", "'stop_sequence'", "'###'"},
        {"'finish_reason':'stop','matched_stop':'END'", "'stop_sequence'", "'END'"},
        {"'finish_reason':'stop','matched_stop':128009", "'end_turn'", "null"},
        {"'finish_reason':'weird'", "'end_turn'", "null"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char completion[512], want[512];
        snprintf(completion, sizeof(completion),
                 "{'id':'chatcmpl-1','choices':[{'message':{'content':'t'},%s}]}",
                 cases[i].choice_extra);
        snprintf(want, sizeof(want),
                 "{'id':'msg_1','type':'message','role':'assistant','model':'c','content':["
                 "{'type':'text','text':'t'}],'stop_reason':%s,'stop_sequence':%s," USAGE0 "}",
                 cases[i].reason, cases[i].seq);
        response_ok(completion, "c", want);
    }
    /* An OpenAI refusal: text from the refusal field, stop_reason refusal. */
    response_ok(
        "{'id':'1','choices':[{'message':{'content':null,'refusal':'I cannot'},"
        "'finish_reason':'stop'}]}",
        "c",
        "{'id':'msg_1','type':'message','role':'assistant','model':'c','content':["
        "{'type':'text','text':'I cannot'}],'stop_reason':'refusal','stop_sequence':null," USAGE0
        "}");
}

static void test_response_details(void **state)
{
    (void)state;
    /* Content parts are joined; the client model wins; empty output -> []. */
    response_ok("{'id':'chatcmpl-a','model':'up','choices':[{'message':{'content':[{'type':'text',"
                "'text':'a'},{'type':'image_url','image_url':{}},{'type':'text','text':'b'}]},"
                "'finish_reason':'stop'}]}",
                "",
                "{'id':'msg_a','type':'message','role':'assistant','model':'up','content':["
                "{'type':'text','text':'ab'}],'stop_reason':'end_turn','stop_sequence':null," USAGE0
                "}");
    response_ok("{'id':'chatcmpl-a','choices':[{'message':{'content':''},'finish_reason':'stop'}]}",
                "c",
                "{'id':'msg_a','type':'message','role':'assistant','model':'c','content':[],"
                "'stop_reason':'end_turn','stop_sequence':null," USAGE0 "}");
    /* No id: a stable hash. Arguments are copied byte for byte. */
    const char *c = "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{"
                    "\"name\":\"f\",\"arguments\":\"{\\\"n\\\": 12345678901234567890, "
                    "\\\"x\\\": 0.1}\"}}]},\"finish_reason\":\"tool_calls\"}]}";
    yr_buf_t out, out2;
    yr_buf_init(&out, 4096);
    yr_buf_init(&out2, 4096);
    assert_int_equal(anth_response(yr_str(c), YR_STR("m"), &out), 0);
    assert_int_equal(anth_response(yr_str(c), YR_STR("m"), &out2), 0);
    assert_string_equal(out.data, out2.data);
    assert_non_null(strstr(out.data, "\"input\":{\"n\": 12345678901234567890, \"x\": 0.1}"));
    json_t *j = json_loadb(out.data, out.len, JSON_DECODE_INT_AS_REAL, NULL);
    assert_non_null(j);
    const char *id = json_string_value(json_object_get(j, "id"));
    assert_int_equal(strlen(id), 4 + 16);
    assert_memory_equal(id, "msg_", 4);
    json_decref(j);
    yr_buf_free(&out);
    yr_buf_free(&out2);
}

static void test_response_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "nope",
        "[]",
        "{'choices':[]}",
        "{'choices':{}}",
        "{'choices':[{'finish_reason':'stop'}]}",
        "{'choices':[{'message':'hi'}]}",
        "{'choices':[{'message':{'content':5}}]}",
        "{'choices':[{'message':{'content':'x'},'finish_reason':5}]}",
        "{'choices':[{'message':{'tool_calls':{}}}]}",
        "{'choices':[{'message':{'tool_calls':[{'id':'c','function':{'arguments':'{}'}}]}}]}",
        "{'choices':[{'message':{'tool_calls':[{'type':'custom','function':{'name':'f'}}]}}]}",
        "{'choices':[{'message':{'tool_calls':[{'function':{'name':'f','arguments':5}}]}}]}",
        "{'choices':[{'message':{'reasoning_content':[]}}]}",
        "{'id':5,'choices':[{'message':{'content':'x'}}]}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char *c = dq(bad[i]);
        yr_buf_t out;
        yr_buf_init(&out, 4096);
        assert_int_equal(yr_buf_append_str(&out, YR_STR("pre")), 0);
        int rc = anth_response(yr_str(c), YR_STR("m"), &out);
        if (rc != -EINVAL)
            fail_msg("accepted (%d): %s -> %s", rc, c, out.data);
        assert_string_equal(out.data, "pre");
        yr_buf_free(&out);
        free(c);
    }
    /* Too small an output buffer: -E2BIG, nothing written. */
    yr_buf_t out;
    yr_buf_init(&out, 16);
    assert_int_equal(anth_response(YR_STR("{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}"),
                                   YR_STR("m"), &out),
                     -E2BIG);
    assert_int_equal(out.len, 0);
    yr_buf_free(&out);
}

/* ---- streams -------------------------------------------------------------------- */

typedef struct {
    char name[32];
    json_t *data;
} ev_t;

typedef struct {
    ev_t ev[256];
    size_t n;
} evs_t;

/* Splits "event: X\ndata: {...}\n\n" frames; each data's type must be X. */
static void parse_events(const char *s, size_t len, evs_t *out)
{
    out->n = 0;
    size_t i = 0;
    while (i < len) {
        assert_true(out->n < ARRAY_LEN(out->ev));
        assert_memory_equal(s + i, "event: ", 7);
        i += 7;
        const char *nl = memchr(s + i, '\n', len - i);
        assert_non_null(nl);
        size_t nlen = (size_t)(nl - (s + i));
        assert_true(nlen < sizeof(out->ev[0].name));
        memcpy(out->ev[out->n].name, s + i, nlen);
        out->ev[out->n].name[nlen] = '\0';
        i += nlen + 1;
        assert_memory_equal(s + i, "data: ", 6);
        i += 6;
        const char *end = strstr(s + i, "\n\n");
        assert_non_null(end);
        size_t dlen = (size_t)(end - (s + i));
        assert_null(memchr(s + i, '\n', dlen)); /* one data line */
        json_t *d = parse(s + i, dlen);
        assert_string_equal(json_string_value(json_object_get(d, "type")), out->ev[out->n].name);
        out->ev[out->n].data = d;
        out->n++;
        i += dlen + 2;
    }
}

static void free_events(evs_t *evs)
{
    for (size_t i = 0; i < evs->n; i++)
        json_decref(evs->ev[i].data);
    evs->n = 0;
}

/* Short names: start, ping, cbs:<type>@i, cbd:<delta type>@i, cbs!@i, delta, stop, error. */
static void event_order(const evs_t *evs, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < evs->n; i++) {
        const char *name = evs->ev[i].name;
        json_t *d = evs->ev[i].data;
        json_int_t idx = json_integer_value(json_object_get(d, "index"));
        char one[64];
        if (strcmp(name, "message_start") == 0)
            snprintf(one, sizeof(one), "start");
        else if (strcmp(name, "content_block_start") == 0)
            snprintf(
                one, sizeof(one), "open:%s@%lld",
                json_string_value(json_object_get(json_object_get(d, "content_block"), "type")),
                (long long)idx);
        else if (strcmp(name, "content_block_delta") == 0)
            snprintf(one, sizeof(one), "%s@%lld",
                     json_string_value(json_object_get(json_object_get(d, "delta"), "type")),
                     (long long)idx);
        else if (strcmp(name, "content_block_stop") == 0)
            snprintf(one, sizeof(one), "close@%lld", (long long)idx);
        else if (strcmp(name, "message_delta") == 0)
            snprintf(one, sizeof(one), "delta");
        else if (strcmp(name, "message_stop") == 0)
            snprintf(one, sizeof(one), "stop");
        else
            snprintf(one, sizeof(one), "%s", name);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "", one);
        assert_true(n < cap);
    }
}

/* Concatenation of the text / thinking / partial_json deltas of block idx. */
static void block_text(const evs_t *evs, json_int_t idx, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < evs->n; i++) {
        json_t *d = evs->ev[i].data;
        if (strcmp(evs->ev[i].name, "content_block_delta") != 0 ||
            json_integer_value(json_object_get(d, "index")) != idx)
            continue;
        json_t *delta = json_object_get(d, "delta");
        json_t *s = json_object_get(delta, "text");
        if (s == NULL)
            s = json_object_get(delta, "thinking");
        if (s == NULL)
            s = json_object_get(delta, "partial_json");
        assert_non_null(s);
        n += (size_t)snprintf(buf + n, cap - n, "%s", json_string_value(s));
        assert_true(n < cap);
    }
}

static json_t *find_event(const evs_t *evs, const char *name, size_t nth)
{
    for (size_t i = 0; i < evs->n; i++)
        if (strcmp(evs->ev[i].name, name) == 0 && nth-- == 0)
            return evs->ev[i].data;
    fail_msg("no event %s", name);
    return NULL;
}

/* Feeds every chunk (single-quoted JSON, or "[DONE]") and parses the output. */
static void run_stream(const char *const *chunks, size_t n, evs_t *evs)
{
    pipe_t *e = pipe_new(YR_STR("claude-x"), YR_STR("req_42"), true);
    assert_non_null(e);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        char *c = dq(chunks[i]);
        int rc = pipe_feed(e, yr_str(c), &out);
        if (rc != 0)
            fail_msg("chunk %zu rejected (%d): %s", i, rc, c);
        free(c);
    }
    assert_true(yr_anth_enc_done(e->e));
    parse_events(out.data, out.len, evs);
    yr_buf_free(&out);
    pipe_free(e);
}

#define CHUNK(delta, fr)                                                                           \
    "{'id':'chatcmpl-s1','object':'chat.completion.chunk','model':'up','choices':[{'index':0,"     \
    "'delta':" delta ",'finish_reason':" fr "}]}"
#define USAGE_CHUNK                                                                                \
    "{'id':'chatcmpl-s1','choices':[],'usage':{'prompt_tokens':30,'completion_tokens':7,"          \
    "'prompt_tokens_details':{'cached_tokens':10}}}"

static void test_stream_text(void **state)
{
    (void)state;
    static const char *const chunks[] = {
        CHUNK("{'role':'assistant','content':''}", "null"),
        CHUNK("{'content':'Hel'}", "null"),
        CHUNK("{'content':'lo'}", "null"),
        CHUNK("{}", "'stop'"),
        USAGE_CHUNK,
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024], text[256];
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order,
                        "start ping open:text@0 text_delta@0 text_delta@0 close@0 delta stop");
    block_text(&evs, 0, text, sizeof(text));
    assert_string_equal(text, "Hello");
    json_t *msg = json_object_get(find_event(&evs, "message_start", 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "id")), "msg_req_42");
    assert_string_equal(json_string_value(json_object_get(msg, "model")), "claude-x");
    assert_int_equal(json_array_size(json_object_get(msg, "content")), 0);
    assert_true(json_is_null(json_object_get(msg, "stop_reason")));
    json_t *md = find_event(&evs, "message_delta", 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "end_turn");
    assert_true(json_is_null(json_object_get(json_object_get(md, "delta"), "stop_sequence")));
    json_t *u = json_object_get(md, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 7);
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 20);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 10);
    free_events(&evs);
}

static void test_stream_thinking_then_text(void **state)
{
    (void)state;
    static const char *const chunks[] = {
        CHUNK("{'role':'assistant','reasoning_content':'Let me'}", "null"),
        CHUNK("{'reasoning_content':' think.'}", "null"),
        CHUNK("{'reasoning_content':null,'content':'42'}", "null"),
        CHUNK("{'content':'!'}", "'stop'"),
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024], text[256];
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order, "start ping open:thinking@0 thinking_delta@0 thinking_delta@0 "
                               "close@0 open:text@1 text_delta@1 text_delta@1 close@1 delta stop");
    block_text(&evs, 0, text, sizeof(text));
    assert_string_equal(text, "Let me think.");
    block_text(&evs, 1, text, sizeof(text));
    assert_string_equal(text, "42!");
    json_t *cb = json_object_get(find_event(&evs, "content_block_start", 0), "content_block");
    assert_string_equal(json_string_value(json_object_get(cb, "signature")), "");
    /* No usage chunk: output_tokens 0 and no input_tokens. */
    json_t *u = json_object_get(find_event(&evs, "message_delta", 0), "usage");
    assert_int_equal(json_object_size(u), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 0);
    free_events(&evs);
}

#define TC(i, rest) "{'tool_calls':[{'index':" #i "," rest "}]}"

static void test_stream_one_tool_five_fragments(void **state)
{
    (void)state;
    /* The original arguments: {"city": "Paris", "unit": "c"} */
    static const char *const chunks[] = {
        CHUNK("{'role':'assistant','content':'Checking.'}", "null"),
        CHUNK(TC(0, "'id':'call_w','type':'function','function':{'name':'get_weather',"
                    "'arguments':''}"),
              "null"),
        CHUNK(TC(0, "'function':{'arguments':'{\\'ci'}"), "null"),
        CHUNK(TC(0, "'function':{'arguments':'ty\\': \\'Pa'}"), "null"),
        CHUNK(TC(0, "'function':{'arguments':'ris\\', '}"), "null"),
        CHUNK(TC(0, "'function':{'arguments':'\\'unit\\': '}"), "null"),
        CHUNK(TC(0, "'function':{'arguments':'\\'c\\'}'}"), "null"),
        CHUNK("{}", "'tool_calls'"),
        USAGE_CHUNK,
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024], text[256];
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order, "start ping open:text@0 text_delta@0 close@0 open:tool_use@1 "
                               "input_json_delta@1 input_json_delta@1 input_json_delta@1 "
                               "input_json_delta@1 input_json_delta@1 close@1 delta stop");
    block_text(&evs, 1, text, sizeof(text));
    assert_string_equal(text, "{\"city\": \"Paris\", \"unit\": \"c\"}");
    json_t *cb = json_object_get(find_event(&evs, "content_block_start", 1), "content_block");
    assert_string_equal(json_string_value(json_object_get(cb, "id")), "call_w");
    assert_string_equal(json_string_value(json_object_get(cb, "name")), "get_weather");
    assert_int_equal(json_object_size(json_object_get(cb, "input")), 0);
    json_t *md = find_event(&evs, "message_delta", 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "tool_use");
    free_events(&evs);
}

static void check_tool_block(const evs_t *evs, size_t nth, json_int_t idx, const char *id,
                             const char *args)
{
    json_t *start = find_event(evs, "content_block_start", nth);
    assert_int_equal(json_integer_value(json_object_get(start, "index")), idx);
    json_t *cb = json_object_get(start, "content_block");
    assert_string_equal(json_string_value(json_object_get(cb, "id")), id);
    char text[512];
    block_text(evs, idx, text, sizeof(text));
    assert_string_equal(text, args);
}

static void test_stream_parallel_interleaved(void **state)
{
    (void)state;
    /* Both headers in one chunk, then fragments alternating 0,1,0,1. */
    static const char *const chunks[] = {
        CHUNK("{'role':'assistant','tool_calls':[{'index':0,'id':'call_a','type':'function',"
              "'function':{'name':'weather','arguments':''}},{'index':1,'id':'call_b','type':"
              "'function','function':{'name':'weather','arguments':''}}]}",
              "null"),
        CHUNK(TC(0, "'function':{'arguments':'{\\'city\\':'}"), "null"),
        CHUNK(TC(1, "'function':{'arguments':'{\\'city\\':'}"), "null"),
        CHUNK(TC(1, "'function':{'arguments':'\\'Ro'}"), "null"),
        CHUNK(TC(0, "'function':{'arguments':'\\'Paris\\'}'}"), "null"),
        CHUNK(TC(1, "'function':{'arguments':'me\\'}'}"), "null"),
        CHUNK("{}", "'tool_calls'"),
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024];
    event_order(&evs, order, sizeof(order));
    /* Call b's first two fragments wait until call a's object is complete,
     * then go out as one delta; its last fragment streams live. */
    assert_string_equal(order, "start ping open:tool_use@0 input_json_delta@0 input_json_delta@0 "
                               "close@0 open:tool_use@1 input_json_delta@1 input_json_delta@1 "
                               "close@1 delta stop");
    check_tool_block(&evs, 0, 0, "call_a", "{\"city\":\"Paris\"}");
    check_tool_block(&evs, 1, 1, "call_b", "{\"city\":\"Rome\"}");
    free_events(&evs);
}

static void test_stream_parallel_sequential(void **state)
{
    (void)state;
    /* OpenAI's own pattern: each call complete before the next starts; no
     * fragment is held back. Call c has no id: one is made up. */
    static const char *const chunks[] = {
        CHUNK(TC(0, "'id':'call_a','function':{'name':'f','arguments':''}"), "null"),
        CHUNK(TC(0, "'function':{'arguments':'{}'}"), "null"),
        CHUNK(TC(1, "'id':'call_b','function':{'name':'g','arguments':'{\\'x\\''}"), "null"),
        CHUNK(TC(1, "'function':{'arguments':':1}'}"), "null"),
        CHUNK(TC(2, "'function':{'name':'h','arguments':'{\\'y\\':[1,{}]}'}"), "null"),
        CHUNK(TC(2, "'function':{'arguments':'  '}"), "null"),
        CHUNK("{}", "'tool_calls'"),
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024];
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order, "start ping open:tool_use@0 input_json_delta@0 close@0 "
                               "open:tool_use@1 input_json_delta@1 input_json_delta@1 close@1 "
                               "open:tool_use@2 input_json_delta@2 input_json_delta@2 close@2 "
                               "delta stop");
    check_tool_block(&evs, 0, 0, "call_a", "{}");
    check_tool_block(&evs, 1, 1, "call_b", "{\"x\":1}");
    check_tool_block(&evs, 2, 2, "toolu_req_42_2", "{\"y\":[1,{}]}  ");
    free_events(&evs);
}

static void test_stream_held_until_finish(void **state)
{
    (void)state;
    /* Call 0's arguments never form a complete object: call 1 waits for the
     * finish_reason, then goes out whole. */
    static const char *const chunks[] = {
        CHUNK(TC(0, "'id':'a','function':{'name':'f','arguments':'{\\'x\\':'}"), "null"),
        CHUNK(TC(1, "'id':'b','function':{'name':'g','arguments':'{}'}"), "null"),
        CHUNK("{}", "'tool_calls'"),
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024];
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order, "start ping open:tool_use@0 input_json_delta@0 close@0 "
                               "open:tool_use@1 input_json_delta@1 close@1 delta stop");
    check_tool_block(&evs, 1, 1, "b", "{}");
    free_events(&evs);
}

static void test_stream_odd_tool_deltas(void **state)
{
    (void)state;
    /* No "index" (position is used), the name only in the second delta, a
     * thinking block first, and an OpenAI refusal delta at the end. */
    static const char *const chunks[] = {
        CHUNK("{'reasoning':'plan'}", "null"),
        CHUNK("{'tool_calls':[{'id':'c1','function':{'arguments':'{\\'a\\''}}]}", "null"),
        CHUNK("{'tool_calls':[{'function':{'name':'late','arguments':':1}'}}]}", "null"),
        CHUNK("{'refusal':'no more'}", "null"),
        CHUNK("{}", "'stop'"),
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    char order[1024], text[256];
    event_order(&evs, order, sizeof(order));
    /* The nameless first fragment waits for the name, then both go as one. */
    assert_string_equal(order, "start ping open:thinking@0 thinking_delta@0 close@0 "
                               "open:tool_use@1 input_json_delta@1 close@1 "
                               "open:text@2 text_delta@2 close@2 delta stop");
    check_tool_block(&evs, 1, 1, "c1", "{\"a\":1}");
    json_t *cb = json_object_get(find_event(&evs, "content_block_start", 1), "content_block");
    assert_string_equal(json_string_value(json_object_get(cb, "name")), "late");
    block_text(&evs, 2, text, sizeof(text));
    assert_string_equal(text, "no more");
    json_t *d = json_object_get(find_event(&evs, "message_delta", 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "stop_reason")), "refusal");
    free_events(&evs);
}

static void test_stream_finish_length_and_stop_sequence(void **state)
{
    (void)state;
    static const char *const c1[] = {CHUNK("{'content':'abc'}", "'length'"), "[DONE]"};
    evs_t evs;
    run_stream(c1, ARRAY_LEN(c1), &evs);
    json_t *d = json_object_get(find_event(&evs, "message_delta", 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "stop_reason")), "max_tokens");
    free_events(&evs);
    static const char *const c2[] = {
        "{'choices':[{'index':0,'delta':{'content':'x'},'finish_reason':'stop','stop_reason':"
        "'END'}]}",
        "[DONE]"};
    run_stream(c2, ARRAY_LEN(c2), &evs);
    d = json_object_get(find_event(&evs, "message_delta", 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "stop_reason")), "stop_sequence");
    assert_string_equal(json_string_value(json_object_get(d, "stop_sequence")), "END");
    free_events(&evs);
    /* content_filter -> refusal; a repeated finish_reason is ignored. */
    static const char *const c3[] = {CHUNK("{'content':'x'}", "'content_filter'"),
                                     CHUNK("{}", "'stop'"), "[DONE]"};
    run_stream(c3, ARRAY_LEN(c3), &evs);
    d = json_object_get(find_event(&evs, "message_delta", 0), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "stop_reason")), "refusal");
    free_events(&evs);
}

static void test_stream_usage_chunk(void **state)
{
    (void)state;
    /* Usage in the first chunk goes into message_start too. */
    static const char *const chunks[] = {
        "{'id':'x','choices':[{'index':0,'delta':{'content':'hi'},'finish_reason':null}],"
        "'usage':{'prompt_tokens':5,'completion_tokens':0}}",
        CHUNK("{}", "'stop'"),
        "{'id':'x','choices':[],'usage':{'prompt_tokens':5,'completion_tokens':2}}",
        "[DONE]",
    };
    evs_t evs;
    run_stream(chunks, ARRAY_LEN(chunks), &evs);
    json_t *u =
        json_object_get(json_object_get(find_event(&evs, "message_start", 0), "message"), "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 0);
    u = json_object_get(find_event(&evs, "message_delta", 0), "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 2);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 0);
    free_events(&evs);
}

static void test_stream_empty_and_finish(void **state)
{
    (void)state;
    static const char *const c1[] = {"[DONE]"};
    evs_t evs;
    run_stream(c1, ARRAY_LEN(c1), &evs);
    char order[256];
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order, "start ping delta stop");
    free_events(&evs);

    /* No seed: the id comes from the first chunk; finish() without [DONE]
     * closes the open block; it is idempotent; then events are refused. */
    pipe_t *e = pipe_new(YR_STR("m"), YR_STR_NULL, true);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    char *c = dq(CHUNK("{'content':'x'}", "null"));
    assert_int_equal(pipe_feed(e, yr_str(c), &out), 0);
    free(c);
    assert_false(yr_anth_enc_done(e->e));
    assert_int_equal(yr_anth_enc_finish(e->e, &out), 0);
    size_t len = out.len;
    assert_int_equal(yr_anth_enc_finish(e->e, &out), 0);
    assert_int_equal(out.len, len);
    assert_int_equal(pipe_feed(e, YR_STR("[DONE]"), &out), -EINVAL);
    parse_events(out.data, out.len, &evs);
    event_order(&evs, order, sizeof(order));
    assert_string_equal(order, "start ping open:text@0 text_delta@0 close@0 delta stop");
    json_t *msg = json_object_get(find_event(&evs, "message_start", 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "id")), "msg_s1");
    free_events(&evs);
    yr_buf_free(&out);
    pipe_free(e);
}

static void test_stream_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not json",
        "[1]",
        "{'choices':{}}",
        "{'choices':[5]}",
        "{'choices':[{'index':'0','delta':{}}]}",
        CHUNK("'text'", "null"),
        CHUNK("{'content':5}", "null"),
        CHUNK("{'reasoning_content':{}}", "null"),
        CHUNK("{'tool_calls':{}}", "null"),
        CHUNK("{'tool_calls':[5]}", "null"),
        CHUNK(TC(999, "'id':'a','function':{'name':'f'}"), "null"),
        CHUNK(TC(-1, "'id':'a','function':{'name':'f'}"), "null"),
        CHUNK(TC(0, "'id':'a','function':{'name':'f','arguments':{}}"), "null"),
        CHUNK(TC(0, "'id':5,'function':{'name':'f'}"), "null"),
        CHUNK("{}", "5"),
        "{'error':{'message':'upstream exploded'}}",
        "{'usage':5}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        pipe_t *e = pipe_new(YR_STR("m"), YR_STR("s"), true);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        char *c = dq(bad[i]);
        int rc = pipe_feed(e, yr_str(c), &out);
        if (rc != -EINVAL)
            fail_msg("accepted (%d): %s", rc, c);
        free(c);
        assert_int_equal(out.len, 0); /* nothing half-written */
        /* The decoder refuses anything after a malformed chunk (the encoder
         * saw none of it). */
        assert_int_equal(pipe_feed(e, YR_STR("[DONE]"), &out), -EINVAL);
        assert_int_equal(out.len, 0);
        /* The error event is still possible. */
        assert_int_equal(yr_anth_enc_error(e->e, "api_error", "bad upstream chunk", &out), 0);
        evs_t evs;
        parse_events(out.data, out.len, &evs);
        assert_int_equal(evs.n, 1);
        assert_string_equal(evs.ev[0].name, "error");
        free_events(&evs);
        yr_buf_free(&out);
        pipe_free(e);
    }
}

static void feed_ok(pipe_t *e, const char *chunk, yr_buf_t *out)
{
    char *c = dq(chunk);
    int rc = pipe_feed(e, yr_str(c), out);
    if (rc != 0)
        fail_msg("rejected (%d): %s", rc, c);
    free(c);
}

static void test_stream_protocol_errors(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    /* Text after the finish_reason. */
    pipe_t *e = pipe_new(YR_STR("m"), YR_STR("s"), true);
    feed_ok(e, CHUNK("{'content':'a'}", "'stop'"), &out);
    char *c = dq(CHUNK("{'content':'late'}", "null"));
    assert_int_equal(pipe_feed(e, yr_str(c), &out), -EINVAL);
    free(c);
    pipe_free(e);

    /* A fragment for a call whose block was closed: whitespace is fine,
     * anything else is an error (it cannot be delivered). */
    e = pipe_new(YR_STR("m"), YR_STR("s"), true);
    feed_ok(e, CHUNK(TC(0, "'id':'a','function':{'name':'f','arguments':'{}'}"), "null"), &out);
    feed_ok(e, CHUNK("{'content':'then text'}", "null"), &out);
    feed_ok(e, CHUNK(TC(0, "'function':{'arguments':' '}"), "null"), &out);
    c = dq(CHUNK(TC(0, "'function':{'arguments':'x'}"), "null"));
    assert_int_equal(pipe_feed(e, yr_str(c), &out), -EINVAL);
    free(c);
    pipe_free(e);

    /* A call that never gets a name. */
    e = pipe_new(YR_STR("m"), YR_STR("s"), true);
    feed_ok(e, CHUNK(TC(0, "'id':'a','function':{'arguments':'{}'}"), "null"), &out);
    assert_int_equal(pipe_feed(e, YR_STR("[DONE]"), &out), -EINVAL);
    pipe_free(e);
    yr_buf_free(&out);
}

static void test_stream_pending_cap(void **state)
{
    (void)state;
    pipe_t *e = pipe_new(YR_STR("m"), YR_STR("s"), true);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 22);
    feed_ok(e, CHUNK(TC(0, "'id':'a','function':{'name':'f','arguments':'{\\'x\\':'}"), "null"),
            &out);
    feed_ok(e, CHUNK(TC(1, "'id':'b','function':{'name':'g','arguments':''}"), "null"), &out);
    /* Call 1 is held back while call 0 is open; 64 KiB pieces reach the cap. */
    size_t piece = 64 * 1024;
    char *big = malloc(piece + 256);
    int n = snprintf(big, 256,
                     "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
                     "\"function\":{\"arguments\":\"");
    memset(big + n, 'a', piece);
    snprintf(big + n + piece, 64, "\"}}]}}]}");
    int rc = 0;
    size_t sent = 0;
    while (rc == 0 && sent <= YR_ANTH_ENC_MAX_PENDING) {
        rc = pipe_feed(e, yr_str(big), &out);
        sent += piece;
    }
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(sent, YR_ANTH_ENC_MAX_PENDING + piece);
    free(big);
    pipe_free(e);
    yr_buf_free(&out);
}

static void test_stream_out_cap(void **state)
{
    (void)state;
    pipe_t *e = pipe_new(YR_STR("m"), YR_STR("s"), true);
    yr_buf_t out;
    yr_buf_init(&out, 64); /* message_start alone is bigger */
    char *c = dq(CHUNK("{'content':'x'}", "null"));
    assert_int_equal(pipe_feed(e, yr_str(c), &out), -E2BIG);
    free(c);
    assert_int_equal(out.len, 0);
    assert_true(yr_anth_enc_done(e->e));
    yr_buf_free(&out);
    pipe_free(e);
    yr_anth_enc_free(NULL);
}

static void test_stream_error_event(void **state)
{
    (void)state;
    pipe_t *e = pipe_new(YR_STR("m"), YR_STR("s"), true);
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    feed_ok(e, CHUNK("{'content':'partial'}", "null"), &out);
    yr_buf_reset(&out);
    assert_int_equal(yr_anth_enc_error(e->e, "overloaded_error", "Overloaded \"now\"\n", &out), 0);
    assert_string_equal(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                                  "\"overloaded_error\",\"message\":\"Overloaded \\\"now\\\"\\n\"}}"
                                  "\n\n");
    assert_true(yr_anth_enc_done(e->e));
    yr_buf_reset(&out);
    assert_int_equal(yr_anth_enc_error(e->e, NULL, NULL, &out), 0);
    assert_non_null(strstr(out.data, "\"type\":\"api_error\",\"message\":\"\""));
    yr_buf_free(&out);
    pipe_free(e);
}

/* ---- the encoder, event by event ------------------------------------------------ */

#define EV(...) (&(yr_event_t){__VA_ARGS__})

/* Feeds events to a fresh encoder; returns the output (caller frees). */
static void encode(bool stream, int64_t estimate, const yr_event_t *const *evs, size_t n,
                   yr_buf_t *out)
{
    yr_anth_enc_t *e = yr_anth_enc_new(YR_STR("claude-x"), YR_STR("req_1"), stream, estimate);
    assert_non_null(e);
    yr_buf_init(out, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        int rc = yr_anth_enc_event(e, evs[i], out);
        if (rc != 0)
            fail_msg("event %zu (type %d) rejected (%d)", i, (int)evs[i]->type, rc);
    }
    assert_true(yr_anth_enc_done(e));
    yr_anth_enc_free(e);
}

static void test_enc_thinking_signature_redacted(void **state)
{
    (void)state;
    const yr_event_t *const evs[] = {
        EV(.type = YR_EV_START, .id = YR_STR("up_1"), .name = YR_STR("m")),
        EV(.type = YR_EV_REASONING, .text = YR_STR("step 1")),
        EV(.type = YR_EV_REASONING, .signature = YR_STR("sig-A")),
        EV(.type = YR_EV_REASONING, .text = YR_STR("again")), /* a new block: A was signed */
        EV(.type = YR_EV_REASONING, .redacted = true, .signature = YR_STR("opaque==")),
        EV(.type = YR_EV_TEXT, .text = YR_STR("answer")),
        EV(.type = YR_EV_END),
    };
    yr_buf_t out;
    encode(true, 0, evs, ARRAY_LEN(evs), &out);
    evs_t ev;
    parse_events(out.data, out.len, &ev);
    char order[1024];
    event_order(&ev, order, sizeof(order));
    assert_string_equal(order, "start ping open:thinking@0 thinking_delta@0 signature_delta@0 "
                               "close@0 open:thinking@1 thinking_delta@1 close@1 "
                               "open:redacted_thinking@2 close@2 open:text@3 text_delta@3 close@3 "
                               "delta stop");
    json_t *d = json_object_get(find_event(&ev, "content_block_delta", 1), "delta");
    assert_string_equal(json_string_value(json_object_get(d, "signature")), "sig-A");
    json_t *cb = json_object_get(find_event(&ev, "content_block_start", 2), "content_block");
    assert_string_equal(json_string_value(json_object_get(cb, "data")), "opaque==");
    free_events(&ev);
    yr_buf_free(&out);

    /* The same as one message. */
    encode(false, 0, evs, ARRAY_LEN(evs), &out);
    assert_json_eq(
        "message", out.data, out.len,
        "{'id':'msg_req_1','type':'message','role':'assistant','model':'claude-x',"
        "'content':[{'type':'thinking','thinking':'step 1','signature':'sig-A'},"
        "{'type':'thinking','thinking':'again','signature':''},"
        "{'type':'redacted_thinking','data':'opaque=='},{'type':'text','text':'answer'}],"
        "'stop_reason':'end_turn','stop_sequence':null," USAGE0 "}");
    yr_buf_free(&out);
}

static void test_enc_usage_and_estimate(void **state)
{
    (void)state;
    /* Cache writes are reported (Anthropic-sourced usage): input excludes
     * reads and writes. The estimate shows in message_start until usage is
     * known; message_delta has the exact figures. */
    const yr_usage_t u = {.prompt_tokens = 100,
                          .completion_tokens = 7,
                          .cached_tokens = 30,
                          .cache_write_tokens = 50,
                          .present = true};
    const yr_event_t *const evs[] = {
        EV(.type = YR_EV_START),
        EV(.type = YR_EV_TEXT, .text = YR_STR("x")),
        EV(.type = YR_EV_FINISH, .finish = YR_FINISH_LENGTH),
        EV(.type = YR_EV_USAGE, .usage = u),
        EV(.type = YR_EV_END),
    };
    yr_buf_t out;
    encode(true, 1234, evs, ARRAY_LEN(evs), &out);
    evs_t ev;
    parse_events(out.data, out.len, &ev);
    json_t *mu =
        json_object_get(json_object_get(find_event(&ev, "message_start", 0), "message"), "usage");
    assert_int_equal(json_integer_value(json_object_get(mu, "input_tokens")), 1234);
    assert_int_equal(json_integer_value(json_object_get(mu, "output_tokens")), 0);
    assert_true(json_is_null(json_object_get(mu, "service_tier")));
    json_t *md = find_event(&ev, "message_delta", 0);
    json_t *du = json_object_get(md, "usage");
    assert_int_equal(json_integer_value(json_object_get(du, "input_tokens")), 20);
    assert_int_equal(json_integer_value(json_object_get(du, "cache_creation_input_tokens")), 50);
    assert_int_equal(json_integer_value(json_object_get(du, "cache_read_input_tokens")), 30);
    assert_int_equal(json_integer_value(json_object_get(du, "output_tokens")), 7);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "max_tokens");
    free_events(&ev);
    yr_buf_free(&out);

    encode(false, 1234, evs, ARRAY_LEN(evs), &out);
    assert_json_eq("message", out.data, out.len,
                   "{'id':'msg_req_1','type':'message','role':'assistant','model':'claude-x',"
                   "'content':[{'type':'text','text':'x'}],'stop_reason':'max_tokens',"
                   "'stop_sequence':null,'usage':{'input_tokens':20,"
                   "'cache_creation_input_tokens':50,'cache_read_input_tokens':30,"
                   "'output_tokens':7," USAGE_NULLS "}}");
    yr_buf_free(&out);

    /* More cached and written than prompt: input is 0, never negative. */
    const yr_event_t *const evs2[] = {
        EV(.type = YR_EV_USAGE, .usage = {.prompt_tokens = 10,
                                          .cached_tokens = 8,
                                          .cache_write_tokens = 5,
                                          .present = true}),
        EV(.type = YR_EV_END),
    };
    encode(false, 0, evs2, ARRAY_LEN(evs2), &out);
    assert_non_null(strstr(out.data, "\"input_tokens\":0,"));
    yr_buf_free(&out);
}

static void test_enc_message_tools(void **state)
{
    (void)state;
    /* Interleaved calls collected into one message: each tool_use at its
     * TOOL_END; invalid arguments become {}; a call never ended is written
     * at END; no id: one is made from the message id. */
    const yr_event_t *const evs[] = {
        EV(.type = YR_EV_START, .id = YR_STR("chatcmpl-Q")),
        EV(.type = YR_EV_TEXT, .text = YR_STR("a")),
        EV(.type = YR_EV_TOOL_START, .index = 0, .id = YR_STR("t0"), .name = YR_STR("f")),
        EV(.type = YR_EV_TOOL_START, .index = 1, .name = YR_STR("g")),
        EV(.type = YR_EV_TOOL_ARGS, .index = 1, .text = YR_STR("{\"y\":")),
        EV(.type = YR_EV_TOOL_ARGS, .index = 0, .text = YR_STR("{\"x\": 1.50}")),
        EV(.type = YR_EV_TOOL_ARGS, .index = 1, .text = YR_STR("2}")),
        EV(.type = YR_EV_TOOL_END, .index = 1),
        EV(.type = YR_EV_TOOL_START, .index = 2, .id = YR_STR("t2"), .name = YR_STR("h")),
        EV(.type = YR_EV_TOOL_ARGS, .index = 2, .text = YR_STR("{broken")),
        EV(.type = YR_EV_TOOL_END, .index = 2),
        EV(.type = YR_EV_FINISH, .finish = YR_FINISH_TOOL_CALLS),
        EV(.type = YR_EV_END),
    };
    yr_anth_enc_t *e = yr_anth_enc_new(YR_STR(""), YR_STR_NULL, false, 0);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        assert_int_equal(yr_anth_enc_event(e, evs[i], &out), 0);
    assert_json_eq("message", out.data, out.len,
                   "{'id':'msg_Q','type':'message','role':'assistant','model':'',"
                   "'content':[{'type':'text','text':'a'},"
                   "{'type':'tool_use','id':'toolu_Q_1','name':'g','input':{'y':2}},"
                   "{'type':'tool_use','id':'t2','name':'h','input':{}},"
                   "{'type':'tool_use','id':'t0','name':'f','input':{'x':1.5}}],"
                   "'stop_reason':'tool_use','stop_sequence':null," USAGE0 "}");
    assert_non_null(strstr(out.data, "\"input\":{\"x\": 1.50}")); /* byte for byte */
    yr_anth_enc_free(e);
    yr_buf_free(&out);
}

static void test_enc_sequence_errors(void **state)
{
    (void)state;
    static const struct {
        yr_ev_type_t type;
        uint32_t index;
    } cases[] = {
        {YR_EV_ERROR, 0},     /* not for encoders */
        {YR_EV_START, 0},     /* twice */
        {YR_EV_TOOL_ARGS, 5}, /* a call never started */
        {YR_EV_TOOL_END, 5},  {YR_EV_TOOL_START, YR_ANTH_ENC_MAX_TOOLS},
    };
    for (int stream = 0; stream < 2; stream++) {
        for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
            yr_anth_enc_t *e = yr_anth_enc_new(YR_STR("m"), YR_STR("s"), stream, 0);
            yr_buf_t out;
            yr_buf_init(&out, 1 << 16);
            assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_START), &out), 0);
            size_t len = out.len; /* message_start, in a stream */
            assert_int_equal(len > 0, stream);
            const yr_event_t ev = {
                .type = cases[i].type, .index = cases[i].index, .name = YR_STR("f")};
            assert_int_equal(yr_anth_enc_event(e, &ev, &out), -EINVAL);
            assert_int_equal(out.len, len);
            assert_true(yr_anth_enc_done(e));
            assert_int_equal(yr_anth_enc_finish(e, &out), -EINVAL);
            yr_anth_enc_free(e);
            yr_buf_free(&out);
        }
        /* A tool call without a name; output after FINISH; after END. */
        yr_anth_enc_t *e = yr_anth_enc_new(YR_STR("m"), YR_STR("s"), stream, 0);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_TOOL_START), &out), -EINVAL);
        yr_anth_enc_free(e);
        e = yr_anth_enc_new(YR_STR("m"), YR_STR("s"), stream, 0);
        assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_FINISH), &out), 0);
        assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_FINISH), &out), 0); /* ignored */
        assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_TEXT, .text = YR_STR("x")), &out),
                         -EINVAL);
        yr_anth_enc_free(e);
        e = yr_anth_enc_new(YR_STR("m"), YR_STR("s"), stream, 0);
        assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_END), &out), 0);
        assert_true(yr_anth_enc_done(e));
        assert_int_equal(yr_anth_enc_finish(e, &out), 0); /* no-op */
        assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_END), &out), -EINVAL);
        yr_anth_enc_free(e);
        yr_buf_free(&out);
    }
    /* A message too big for out: -E2BIG at END, nothing written. */
    yr_anth_enc_t *e = yr_anth_enc_new(YR_STR("m"), YR_STR("s"), false, 0);
    yr_buf_t out;
    yr_buf_init(&out, 32);
    assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_TEXT, .text = YR_STR("hi")), &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(yr_anth_enc_event(e, EV(.type = YR_EV_END), &out), -E2BIG);
    assert_int_equal(out.len, 0);
    yr_anth_enc_free(e);
    yr_buf_free(&out);
}

static void test_enc_sink(void **state)
{
    (void)state;
    yr_anth_enc_t *e = yr_anth_enc_new(YR_STR("m"), YR_STR("s"), true, 0);
    yr_buf_t out;
    yr_buf_init(&out, 1 << 16);
    yr_anth_sink_t sink = {e, &out};
    assert_int_equal(yr_anth_enc_sink(&sink, EV(.type = YR_EV_START)), 0);
    assert_int_equal(yr_anth_enc_sink(&sink, EV(.type = YR_EV_END)), 0);
    evs_t ev;
    parse_events(out.data, out.len, &ev);
    char order[256];
    event_order(&ev, order, sizeof(order));
    assert_string_equal(order, "start ping delta stop");
    free_events(&ev);
    yr_anth_enc_free(e);
    yr_buf_free(&out);
}

/* ---- error bodies ------------------------------------------------------------------ */

static void test_error_bodies(void **state)
{
    (void)state;
    static const struct {
        yr_err_t e;
        const char *type;
        int status;
    } cases[] = {
        {YR_E_INVALID_JSON, "invalid_request_error", 400},
        {YR_E_INVALID_REQUEST, "invalid_request_error", 400},
        {YR_E_MODEL_NOT_FOUND, "invalid_request_error", 400},
        {YR_E_UPSTREAM_BAD_REQUEST, "invalid_request_error", 400},
        {YR_E_UNAUTHORIZED, "authentication_error", 401},
        {YR_E_FORBIDDEN, "permission_error", 403},
        {YR_E_NOT_FOUND, "not_found_error", 404},
        {YR_E_METHOD_NOT_ALLOWED, "invalid_request_error", 405},
        {YR_E_TOO_LARGE, "request_too_large", 413},
        {YR_E_HEADERS_TOO_LARGE, "invalid_request_error", 431},
        {YR_E_RATE_LIMITED, "rate_limit_error", 429},
        {YR_E_INTERNAL, "api_error", 500},
        {YR_E_NOT_IMPLEMENTED, "api_error", 501},
        {YR_E_UPSTREAM_ERROR, "api_error", 502},
        {YR_E_UPSTREAM_AUTH, "api_error", 502},
        {YR_E_UPSTREAM_UNAVAILABLE, "overloaded_error", 503},
        {YR_E_SHUTTING_DOWN, "overloaded_error", 503},
        {YR_E_UPSTREAM_TIMEOUT, "timeout_error", 504},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        assert_string_equal(yr_anth_error_type(cases[i].e), cases[i].type);
        assert_int_equal(yr_anth_error_status(cases[i].e), cases[i].status);
        yr_buf_t out;
        yr_buf_init(&out, 4096);
        assert_int_equal(
            yr_anth_error_body(cases[i].e, YR_STR("boom \"x\""), YR_STR("req_1"), &out), 0);
        char want[256];
        snprintf(want, sizeof(want),
                 "{'type':'error','error':{'type':'%s','message':'boom \\'x\\''},"
                 "'request_id':'req_1'}",
                 cases[i].type);
        assert_json_eq("error body", out.data, out.len, want);
        yr_buf_free(&out);
    }
    /* No request id: null. Cap respected, nothing half-written. */
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    assert_int_equal(yr_anth_error_body(YR_E_INTERNAL, YR_STR_NULL, YR_STR_NULL, &out), 0);
    assert_string_equal(out.data, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                  "\"message\":\"\"},\"request_id\":null}");
    yr_buf_free(&out);
    yr_buf_init(&out, 20);
    assert_int_equal(yr_anth_error_body(YR_E_INTERNAL, YR_STR("m"), YR_STR("r"), &out), -E2BIG);
    assert_int_equal(out.len, 0);
    yr_buf_free(&out);
    /* A request error renders with its own message. */
    yr_api_error_t err;
    yr_anth_req_info_t info;
    yr_buf_init(&out, 4096);
    assert_int_equal(convert("{'model':'m','messages':[" U("'x'") "]}", &out, &info, &err),
                     -EINVAL);
    assert_int_equal(yr_anth_error_body(err.err, yr_str(err.message), YR_STR("r"), &out), 0);
    assert_json_eq("request error", out.data, out.len,
                   "{'type':'error','error':{'type':'invalid_request_error','message':"
                   "'max_tokens: Field required'},'request_id':'r'}");
    yr_buf_free(&out);
}

/* ---- token estimate ------------------------------------------------------------------ */

static int64_t estimate(const char *single_quoted, yr_api_error_t *err)
{
    char *b = dq(single_quoted);
    int64_t t = -1;
    int rc = yr_anth_count_tokens_estimate(b, strlen(b), &t, err);
    free(b);
    return rc == 0 ? t : rc;
}

static void test_count_tokens(void **state)
{
    (void)state;
    yr_api_error_t err;
    /* 4 (system) + 12 (user) bytes = 4 tokens, + 2 messages * 4. */
    assert_int_equal(
        estimate("{'model':'m','system':'abcd','messages':[" U("'hello world!'") "]}", &err),
        4 + 8);
    /* One image: 1600 flat, + 1 message. Text "ab" rounds up to 1. */
    assert_int_equal(estimate("{'model':'m','messages':[" U(
                                  "[{'type':'text','text':'ab'},{'type':'image','source':{'type':"
                                  "'url','url':'https://x/i.png'}}]") "]}",
                              &err),
                     1 + 1600 + 4);
    /* Tool schemas, tool_use names and inputs count as text. */
    const char *tools = "{'model':'m','tools':[{'name':'f','input_schema':{'type':'object'}}],"
                        "'messages':[" U("'x'") "]}";
    /* {"name":"f","parameters":{"type":"object"}} = 43 bytes, + 'x' = 44 -> 11 + 4 */
    assert_int_equal(estimate(tools, &err), 11 + 4);
    assert_int_equal(
        estimate("{'model':'m','messages':[" U("'q'") "," A("[" TU("t", "fn", "{'a':1}") "]") "," U(
                     "[{'type':'tool_result','tool_use_id':'t','content':'1234567'}]") "]}",
                 &err),
        /* q=1, fn+{"a":1}=2+7, 1234567=7 -> 17 bytes -> 5; 3 messages */ 5 + 12);
    /* Rejections are the Messages API's, minus max_tokens. */
    assert_int_equal(estimate("{'model':'m'}", &err), -EINVAL);
    assert_string_equal(err.param, "messages");
    assert_int_equal(estimate("{'model':'m','max_tokens':0,'messages':[" U("'x'") "]}", &err),
                     -EINVAL);
    assert_string_equal(err.param, "max_tokens");
    assert_int_equal(estimate("{'model':'m','messages':[" U("''") "," A("''") "]}", &err), -EINVAL);
}

/* ---- fidelity: the estimate, the passthrough check ------------------------------- */

static void test_request_estimate(void **state)
{
    (void)state;
    /* The conversion fills the same estimate count_tokens gives. */
    static const char *const bodies[] = {
        "{" HEAD "'messages':[" U("'hi'") "]}",
        "{" HEAD "'system':'You are a careful assistant.','tools':[{'name':'f','input_schema':"
        "{'type':'object','properties':{'x':{'type':'string'}}}}],'messages':[" U(
            "[{'type':'text','text':'look'},{'type':'image','source':{'type':'url','url':'https://"
            "x/y'}}]") "," A("[" TU("t", "f", "{'x':'1'}") "]") "," U("[{'type':'tool_result','"
                                                                      "tool_use_id':'t',"
                                                                      "'content':'done'}]") "]}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
        yr_buf_t out;
        yr_buf_init(&out, 1 << 16);
        yr_anth_req_info_t info;
        yr_api_error_t err;
        assert_int_equal(convert(bodies[i], &out, &info, &err), 0);
        int64_t want = estimate(bodies[i], &err);
        assert_true(want > 0);
        assert_int_equal(info.input_tokens_estimate, want);
        yr_buf_free(&out);
    }
}

static int peek(const char *single_quoted, yr_anth_req_info_t *info, yr_api_error_t *err)
{
    char *b = dq(single_quoted);
    int rc = yr_anth_peek(b, strlen(b), info, err);
    free(b);
    return rc;
}

static void test_peek(void **state)
{
    (void)state;
    yr_anth_req_info_t info;
    yr_api_error_t err;
    /* Only what the gateway needs: what Anthropic checks is Anthropic's. */
    assert_int_equal(peek("{'model':'claude-\\u0078','stream':true,'thinking':{'type':'enabled'},"
                          "'messages':'not checked','max_tokens':'nor this','top_k':-5}",
                          &info, &err),
                     0);
    assert_string_equal(info.model, "claude-x");
    assert_int_equal(info.model_len, 8);
    assert_true(info.stream);
    assert_true(info.thinking);
    assert_int_equal(info.input_tokens_estimate, 0);
    assert_int_equal(
        peek("{'model':'m','stream':null,'thinking':{'type':'adaptive'}}", &info, &err), 0);
    assert_false(info.stream);
    assert_true(info.thinking);
    assert_int_equal(peek("{'model':'m','thinking':{'type':'disabled'}}", &info, &err), 0);
    assert_false(info.thinking);
    assert_int_equal(peek("{'model':'m','thinking':5}", &info, &err), 0);
    assert_false(info.thinking);

    static const struct {
        const char *body;
        yr_err_t kind;
        const char *param, *message;
    } bad[] = {
        {"{'model':'m'", YR_E_INVALID_JSON, "", "not valid JSON"},
        {"{'model':'a','model':'b'}", YR_E_INVALID_JSON, "", "duplicate"},
        {"['model']", YR_E_INVALID_REQUEST, "", "JSON object"},
        {"{}", YR_E_INVALID_REQUEST, "model", "Field required"},
        {"{'model':5}", YR_E_INVALID_REQUEST, "model", "non-empty string"},
        {"{'model':''}", YR_E_INVALID_REQUEST, "model", "non-empty string"},
        {"{'model':'m','stream':'yes'}", YR_E_INVALID_REQUEST, "stream", "boolean"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int rc = peek(bad[i].body, &info, &err);
        if (rc != -EINVAL || err.err != bad[i].kind || strcmp(err.param, bad[i].param) != 0 ||
            strstr(err.message, bad[i].message) == NULL)
            fail_msg("%s: rc %d kind %d param '%s' message '%s'", bad[i].body, rc, (int)err.err,
                     err.param, err.message);
    }
    /* A model longer than the gateway keeps. */
    char big[YR_ANTH_MODEL_MAX + 64];
    int n = snprintf(big, sizeof(big), "{\"model\":\"");
    memset(big + n, 'm', YR_ANTH_MODEL_MAX + 1);
    snprintf(big + n + YR_ANTH_MODEL_MAX + 1, 8, "\"}");
    assert_int_equal(yr_anth_peek(big, strlen(big), &info, &err), -EINVAL);
    assert_string_equal(err.param, "model");
    assert_non_null(strstr(err.message, "at most"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_conversions),
        cmocka_unit_test(test_request_info),
        cmocka_unit_test(test_request_number_spelling),
        cmocka_unit_test(test_request_not_nul_terminated),
        cmocka_unit_test(test_request_output_cap),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_response_text),
        cmocka_unit_test(test_response_thinking_and_tools),
        cmocka_unit_test(test_response_stop_reasons),
        cmocka_unit_test(test_response_details),
        cmocka_unit_test(test_response_invalid),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_thinking_then_text),
        cmocka_unit_test(test_stream_one_tool_five_fragments),
        cmocka_unit_test(test_stream_parallel_interleaved),
        cmocka_unit_test(test_stream_parallel_sequential),
        cmocka_unit_test(test_stream_held_until_finish),
        cmocka_unit_test(test_stream_odd_tool_deltas),
        cmocka_unit_test(test_stream_finish_length_and_stop_sequence),
        cmocka_unit_test(test_stream_usage_chunk),
        cmocka_unit_test(test_stream_empty_and_finish),
        cmocka_unit_test(test_stream_malformed),
        cmocka_unit_test(test_stream_protocol_errors),
        cmocka_unit_test(test_stream_pending_cap),
        cmocka_unit_test(test_stream_out_cap),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_enc_thinking_signature_redacted),
        cmocka_unit_test(test_enc_usage_and_estimate),
        cmocka_unit_test(test_enc_message_tools),
        cmocka_unit_test(test_enc_sequence_errors),
        cmocka_unit_test(test_enc_sink),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_count_tokens),
        cmocka_unit_test(test_request_estimate),
        cmocka_unit_test(test_peek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
