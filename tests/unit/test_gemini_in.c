/* Gemini inbound tests: the URL, request conversion (a table of accepted
 * requests compared as parsed JSON, a table of rejections with kind, param
 * and message), the encoder fed by the OpenAI decoder as the proxy wires
 * them (responses and streams in both framings), the framing helpers, error
 * bodies and the estimate.
 *
 * JSON in the tables is written with single quotes; dq() turns them into
 * double quotes (no test text contains an apostrophe). */
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

#include "api/gemini_in.h"
#include "core/pool.h"
#include "providers/openai_decode.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char *dq(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static void assert_json_eq(const char *got, size_t len, const char *want_sq)
{
    char *want = dq(want_sq);
    json_error_t e;
    json_t *a = json_loadb(got, len, 0, &e);
    json_t *b = json_loads(want, 0, &e);
    if (a == NULL || b == NULL || !json_equal(a, b)) {
        fprintf(stderr, "got:  %.*s\nwant: %s\n", (int)len, got, want);
        fail();
    }
    json_decref(a);
    json_decref(b);
    free(want);
}

static yr_gem_req_info_t info_for(const char *model, bool stream)
{
    yr_gem_req_info_t info = {.stream = stream, .method = stream ? YR_GEM_STREAM : YR_GEM_GENERATE};
    snprintf(info.model, sizeof(info.model), "%s", model);
    info.model_len = strlen(model);
    return info;
}

/* ---- the URL ------------------------------------------------------------------ */

static void test_target(void **state)
{
    (void)state;
    yr_gem_req_info_t info;
    yr_api_error_t err;
    assert_true(yr_gem_is_target(YR_STR("/v1beta/models/gpt-4o:generateContent")));
    assert_true(yr_gem_is_target(YR_STR("/v1/models/x:countTokens")));
    assert_false(yr_gem_is_target(YR_STR("/v1/models")));
    assert_false(yr_gem_is_target(YR_STR("/v1beta/models/gpt-4o")));
    assert_int_equal(
        yr_gem_parse_target(YR_STR("/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
                            YR_STR("foo=1&alt=sse"), &info, &err),
        0);
    assert_string_equal(info.model, "gemini-2.5-flash");
    assert_int_equal(info.method, YR_GEM_STREAM);
    assert_true(info.stream && info.sse);
    assert_int_equal(yr_gem_parse_target(YR_STR("/v1beta/models/a%3Ab:generateContent"), YR_STR(""),
                                         &info, &err),
                     0);
    assert_string_equal(info.model, "a:b");
    assert_false(info.stream || info.sse);
    assert_int_equal(yr_gem_parse_target(YR_STR("/v1beta/models/m:streamGenerateContent"),
                                         YR_STR("alt=json"), &info, &err),
                     0);
    assert_false(info.sse);
    assert_int_equal(
        yr_gem_parse_target(YR_STR("/v1beta/models/m:embedContent"), YR_STR(""), &info, &err),
        -EINVAL);
    assert_int_equal(err.err, YR_E_NOT_FOUND);
    const char *bad[] = {"/v1beta/models/:generateContent", "/v1beta/models/a%2:generateContent",
                         "/v1beta/models/a%2Fb:generateContent"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(yr_gem_parse_target(yr_str(bad[i]), YR_STR(""), &info, &err), -EINVAL);
        assert_int_equal(err.err, YR_E_INVALID_REQUEST);
    }
    char longp[400] = "/v1beta/models/";
    memset(longp + strlen(longp), 'm', 300);
    strcat(longp, ":generateContent");
    assert_int_equal(yr_gem_parse_target(yr_str(longp), YR_STR(""), &info, &err), -EINVAL);
}

static void test_model_path(void **state)
{
    (void)state;
    yr_gem_req_info_t info;
    assert_int_equal(yr_gem_parse_model_path(YR_STR("/v1beta/models"), &info), -ENOENT);
    assert_int_equal(yr_gem_parse_model_path(YR_STR("/v1beta/models/"), &info), -ENOENT);
    assert_int_equal(yr_gem_parse_model_path(YR_STR("/v1beta/models/gpt-4o"), &info), 0);
    assert_string_equal(info.model, "gpt-4o");
    assert_int_equal(yr_gem_parse_model_path(YR_STR("/v1beta/modelsx"), &info), -EINVAL);
    assert_int_equal(yr_gem_parse_model_path(YR_STR("/v1beta/models/a/b"), &info), -EINVAL);
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    assert_int_equal(yr_gem_model_json(YR_STR("m\"1"), &out), 0);
    assert_string_equal(out.data, "{\"name\":\"models/m\\\"1\",\"displayName\":\"m\\\"1\","
                                  "\"supportedGenerationMethods\":[\"generateContent\","
                                  "\"streamGenerateContent\",\"countTokens\"]}");
    out.max = out.len + 10;
    size_t had = out.len;
    assert_int_equal(yr_gem_model_json(YR_STR("x"), &out), -E2BIG);
    assert_int_equal(out.len, had);
    yr_buf_free(&out);
}

/* ---- request conversion -------------------------------------------------------------- */

static const struct {
    const char *name;
    bool stream;
    const char *in, *out;
} conversions[] = {
    {"text, default role", false, "{'contents':[{'parts':[{'text':'hi'}]}]}",
     "{'model':'m','messages':[{'role':'user','content':'hi'}]}"},
    {"stream asks for usage", true, "{'contents':[{'role':'user','parts':[{'text':'hi'}]}]}",
     "{'model':'m','messages':[{'role':'user','content':'hi'}],'stream':true,"
     "'stream_options':{'include_usage':true}}"},
    {"system instruction, model turn text joined, thought dropped", false,
     "{'systemInstruction':{'parts':[{'text':'a'},{'text':'b'}]},'contents':["
     "{'role':'user','parts':[{'text':'q'}]},"
     "{'role':'model','parts':[{'text':'plan','thought':true},{'text':'x'},{'text':'y'}]},"
     "{'role':'user','parts':[{'text':'more'},{'text':'again'}]}]}",
     "{'model':'m','messages':[{'role':'system','content':'a\\nb'},{'role':'user','content':'q'},"
     "{'role':'assistant','content':'xy'},{'role':'user','content':[{'type':'text','text':'more'},"
     "{'type':'text','text':'again'}]}]}"},
    {"images, pdf, audio, web image", false,
     "{'contents':[{'parts':[{'inlineData':{'mimeType':'image/png','data':'AAAA'}},"
     "{'inlineData':{'mimeType':'application/pdf','data':'QUJD'}},"
     "{'inlineData':{'mimeType':'audio/wav','data':'QUJD'}},"
     "{'fileData':{'mimeType':'image/jpeg','fileUri':'https://example.com/a.jpg'}}]}]}",
     "{'model':'m','messages':[{'role':'user','content':["
     "{'type':'image_url','image_url':{'url':'data:image/png;base64,AAAA'}},"
     "{'type':'file','file':{'filename':'document.pdf','file_data':'data:application/"
     "pdf;base64,QUJD'}},"
     "{'type':'input_audio','input_audio':{'data':'QUJD','format':'wav'}},"
     "{'type':'image_url','image_url':{'url':'https://example.com/a.jpg'}}]}]}"},
    {"function calls with and without id, signature, responses by id and by name", false,
     "{'contents':[{'parts':[{'text':'w?'}]},{'role':'model','parts':["
     "{'functionCall':{'name':'get','args':{'city':'Paris','n':1.5}},'thoughtSignature':'c2ln'},"
     "{'functionCall':{'id':'abc','name':'get','args':{'city':'Rome'}}}]},"
     "{'role':'user','parts':[{'functionResponse':{'id':'abc','name':'get','response':{'t':2}}},"
     "{'functionResponse':{'name':'get','response':{'output':'18C'}}},{'text':'thanks'}]}]}",
     "{'model':'m','messages':[{'role':'user','content':'w?'},{'role':'assistant','content':null,"
     "'tool_calls':[{'id':'call_1_0','type':'function','function':{'name':'get',"
     "'arguments':'{\\'city\\':\\'Paris\\',\\'n\\':1.5}'},"
     "'extra_content':{'google':{'thought_signature':'c2ln'}}},"
     "{'id':'abc','type':'function','function':{'name':'get','arguments':'{\\'city\\':\\'Rome\\'}'}"
     "}]},"
     "{'role':'tool','tool_call_id':'abc','content':'{\\'t\\':2}'},"
     "{'role':'tool','tool_call_id':'call_1_0','content':'{\\'output\\':\\'18C\\'}'},"
     "{'role':'user','content':'thanks'}]}"},
    {"tools: Gemini schema converted, JSON schema kept, ANY with one name forces it", false,
     "{'contents':[{'parts':[{'text':'x'}]}],'tools':[{'functionDeclarations':["
     "{'name':'a','description':'d','parameters':{'type':'OBJECT','properties':{'s':{'type':'"
     "STRING',"
     "'nullable':true,'enum':['x']},'l':{'type':'ARRAY','items':{'type':'INTEGER'}}},"
     "'propertyOrdering':['s','l'],'required':['s']}},"
     "{'name':'b','parametersJsonSchema':{'type':'object','additionalProperties':false}},"
     "{'name':'c'}]}],"
     "'toolConfig':{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['b']}}}",
     "{'model':'m','messages':[{'role':'user','content':'x'}],"
     "'tool_choice':{'type':'function','function':{'name':'b'}},'tools':["
     "{'type':'function','function':{'name':'b','parameters':{'type':'object',"
     "'additionalProperties':false}}}]}"},
    {"tools: all kept, mode ANY -> required, schema mapping", false,
     "{'contents':[{'parts':[{'text':'x'}]}],'tools':[{'functionDeclarations':["
     "{'name':'a','description':'d','parameters':{'type':'OBJECT','properties':{'s':{'type':'"
     "STRING',"
     "'nullable':true}},'propertyOrdering':['s']}},{'name':'c'}]}],"
     "'toolConfig':{'functionCallingConfig':{'mode':'ANY'}}}",
     "{'model':'m','messages':[{'role':'user','content':'x'}],'tool_choice':'required','tools':["
     "{'type':'function','function':{'name':'a','description':'d','parameters':{'type':'object',"
     "'properties':{'s':{'type':['string','null']}}}}},"
     "{'type':'function','function':{'name':'c','parameters':{'type':'object','properties':{}}}}]"
     "}"},
    {"generationConfig", false,
     "{'contents':[{'parts':[{'text':'x'}]}],'safetySettings':[{'category':'HARM_CATEGORY_HATE_"
     "SPEECH',"
     "'threshold':'BLOCK_NONE'}],'generationConfig':{'temperature':0.5,'topP':0.9,'topK':40,"
     "'maxOutputTokens':100,'stopSequences':['END'],'seed':7,'presencePenalty':0.1,"
     "'frequencyPenalty':0.2,'candidateCount':1,'responseMimeType':'application/json',"
     "'responseSchema':{'type':'OBJECT','properties':{'a':{'type':'STRING'}},'required':['a']},"
     "'thinkingConfig':{'thinkingBudget':4096,'includeThoughts':true}}}",
     "{'model':'m','messages':[{'role':'user','content':'x'}],'temperature':0.5,'top_p':0.9,"
     "'presence_penalty':0.1,'frequency_penalty':0.2,'max_tokens':100,'seed':7,'stop':['END'],"
     "'response_format':{'type':'json_schema','json_schema':{'name':'response','schema':{"
     "'type':'object','properties':{'a':{'type':'string'}},'required':['a']},'strict':false}},"
     "'reasoning_effort':'medium'}"},
    {"json mime alone, thinking level, budget 0 and -1 leave it", false,
     "{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'responseMimeType':'application/"
     "json',"
     "'thinkingConfig':{'thinkingLevel':'HIGH'}}}",
     "{'model':'m','messages':[{'role':'user','content':'x'}],'response_format':{'type':'json_"
     "object'},"
     "'reasoning_effort':'high'}"},
    {"thinking budget 0: nothing", false,
     "{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'thinkingConfig':{'thinkingBudget'"
     ":0}}}",
     "{'model':'m','messages':[{'role':'user','content':'x'}]}"},
    {"toolConfig without tools is dropped; NONE", false,
     "{'contents':[{'parts':[{'text':'x'}]}],'toolConfig':{'functionCallingConfig':{'mode':'NONE'}}"
     "}",
     "{'model':'m','messages':[{'role':'user','content':'x'}]}"},
};

static void test_conversions(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(conversions); i++) {
        char *in = dq(conversions[i].in);
        yr_gem_req_info_t info = info_for("m", conversions[i].stream);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 20);
        yr_api_error_t err;
        int rc = yr_gem_request_to_openai(in, strlen(in), &info, &out, &err);
        if (rc != 0)
            fprintf(stderr, "%s: %s\n", conversions[i].name, err.message);
        assert_int_equal(rc, 0);
        assert_json_eq(out.data, out.len, conversions[i].out);
        assert_true(info.input_tokens_estimate >= 1);
        yr_buf_free(&out);
        free(in);
    }
}

static void test_include_thoughts_and_cap(void **state)
{
    (void)state;
    char *in = dq("{'contents':[{'parts':[{'text':'hello there'}]}],"
                  "'generationConfig':{'thinkingConfig':{'includeThoughts':true}}}");
    yr_gem_req_info_t info = info_for("m", false);
    yr_buf_t out;
    yr_buf_init(&out, 16);
    assert_int_equal(yr_buf_append_str(&out, YR_STR("keep")), 0);
    yr_api_error_t err;
    assert_int_equal(yr_gem_request_to_openai(in, strlen(in), &info, &out, &err), -E2BIG);
    assert_int_equal(err.err, YR_E_TOO_LARGE);
    assert_int_equal(out.len, 4);
    out.max = 4096;
    assert_int_equal(yr_gem_request_to_openai(in, strlen(in), &info, &out, &err), 0);
    assert_true(info.include_thoughts);
    yr_buf_free(&out);
    free(in);
}

static const struct {
    const char *in;
    yr_err_t kind;
    const char *param, *msg;
} rejects[] = {
    {"{'contents':", YR_E_INVALID_JSON, "", "Invalid JSON"},
    {"{'contents':[],'contents':[]}", YR_E_INVALID_JSON, "", "Invalid JSON"},
    {"[]", YR_E_INVALID_REQUEST, "", "JSON object"},
    {"{}", YR_E_INVALID_REQUEST, "contents", "is required"},
    {"{'systemInstruction':{'parts':[{'text':'s'}]},'contents':[]}", YR_E_INVALID_REQUEST,
     "contents", "must not be empty"},
    {"{'contents':[{'role':'system','parts':[{'text':'x'}]}]}", YR_E_INVALID_REQUEST,
     "contents.0.role", "'user' or 'model'"},
    {"{'contents':[{'parts':[]}]}", YR_E_INVALID_REQUEST, "contents.0.parts", "non-empty"},
    {"{'contents':[{'parts':[{'text':'a','inlineData':{}}]}]}", YR_E_INVALID_REQUEST,
     "contents.0.parts.0", "exactly one"},
    {"{'contents':[{'parts':[{'executableCode':{'code':'x'}}]}]}", YR_E_INVALID_REQUEST,
     "contents.0.parts.0", "code execution"},
    {"{'contents':[{'parts':[{'inlineData':{'mimeType':'video/mp4','data':'AAAA'}}]}]}",
     YR_E_INVALID_REQUEST, "contents.0.parts.0.inlineData.mimeType", "video/mp4"},
    {"{'contents':[{'parts':[{'inlineData':{'mimeType':'image/png','data':'%%'}}]}]}",
     YR_E_INVALID_REQUEST, "contents.0.parts.0.inlineData.data", "base64"},
    {"{'contents':[{'parts':[{'fileData':{'fileUri':'https://generativelanguage.googleapis.com/"
     "v1beta/files/abc'}}]}]}",
     YR_E_INVALID_REQUEST, "contents.0.parts.0.fileData.fileUri", "Files API"},
    {"{'contents':[{'parts':[{'functionCall':{'name':'f'}}]}]}", YR_E_INVALID_REQUEST,
     "contents.0.parts.0", "only allowed in model turns"},
    {"{'contents':[{'parts':[{'text':'q'}]},{'role':'model','parts':[{'functionCall':{'name':'f'}}]"
     "}]}",
     YR_E_INVALID_REQUEST, "contents", "has no functionResponse"},
    {"{'contents':[{'parts':[{'text':'q'}]},{'role':'model','parts':[{'functionCall':{'name':'f'}}]"
     "},"
     "{'parts':[{'functionResponse':{'name':'g','response':{}}}]}]}",
     YR_E_INVALID_REQUEST, "contents.2.parts.0.functionResponse", "answers no functionCall"},
    {"{'contents':[{'parts':[{'text':'q'}]},{'role':'model','parts':[{'functionCall':{'name':'f'}}]"
     "},"
     "{'parts':[{'functionResponse':{'name':'f','response':'x'}}]}]}",
     YR_E_INVALID_REQUEST, "contents.2.parts.0.functionResponse.response", "object"},
    {"{'contents':[{'role':'model','parts':[{'functionCall':{'name':'f','args':[1]}}]}]}",
     YR_E_INVALID_REQUEST, "contents.0.parts.0.functionCall.args", "object"},
    {"{'contents':[{'role':'model','parts':[{'functionCall':{'id':'a','name':'f'}},"
     "{'functionCall':{'id':'a','name':'f'}}]}]}",
     YR_E_INVALID_REQUEST, "contents.0.parts.1.functionCall.id", "unique"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'tools':[{'googleSearch':{}}]}", YR_E_INVALID_REQUEST,
     "tools.0", "googleSearch tool is not supported"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'tools':[{'functionDeclarations':[{'name':'a'},"
     "{'name':'a'}]}]}",
     YR_E_INVALID_REQUEST, "tools.0.functionDeclarations.1.name", "unique"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'tools':[{'functionDeclarations':[{'name':'a',"
     "'parameters':{},'parametersJsonSchema':{}}]}]}",
     YR_E_INVALID_REQUEST, "tools.0.functionDeclarations.0", "cannot both"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'tools':[{'functionDeclarations':[{'name':'a'}]}],"
     "'toolConfig':{'functionCallingConfig':{'mode':'ANY','allowedFunctionNames':['zz']}}}",
     YR_E_INVALID_REQUEST, "toolConfig.functionCallingConfig.allowedFunctionNames.0",
     "not a declared function"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'toolConfig':{'functionCallingConfig':{'mode':'SOME'}}"
     "}",
     YR_E_INVALID_REQUEST, "toolConfig.functionCallingConfig.mode", "AUTO"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'candidateCount':2}}",
     YR_E_INVALID_REQUEST, "generationConfig.candidateCount", "more than one candidate"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'temperature':3}}",
     YR_E_INVALID_REQUEST, "generationConfig.temperature", "between 0 and 2"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'maxOutputTokens':0}}",
     YR_E_INVALID_REQUEST, "generationConfig.maxOutputTokens", ">= 1"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'responseSchema':{'type':'STRING'}"
     "}}",
     YR_E_INVALID_REQUEST, "generationConfig.responseMimeType", "application/json"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'responseModalities':['IMAGE']}}",
     YR_E_INVALID_REQUEST, "generationConfig.responseModalities", "TEXT"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'generationConfig':{'thinkingConfig':"
     "{'thinkingBudget':100,'thinkingLevel':'LOW'}}}",
     YR_E_INVALID_REQUEST, "generationConfig.thinkingConfig", "cannot both"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'safetySettings':[{'category':1}]}",
     YR_E_INVALID_REQUEST, "safetySettings.0", "category"},
    {"{'contents':[{'parts':[{'text':'x'}]}],'cachedContent':'cachedContents/1'}",
     YR_E_INVALID_REQUEST, "cachedContent", "not supported"},
};

static void test_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rejects); i++) {
        char *in = dq(rejects[i].in);
        yr_gem_req_info_t info = info_for("m", false);
        yr_buf_t out;
        yr_buf_init(&out, 1 << 20);
        yr_api_error_t err;
        int rc = yr_gem_request_to_openai(in, strlen(in), &info, &out, &err);
        if (rc != -EINVAL || err.err != rejects[i].kind ||
            strcmp(err.param, rejects[i].param) != 0 ||
            strstr(err.message, rejects[i].msg) == NULL) {
            fprintf(stderr, "case %zu (%s): rc %d kind %d param '%s' message '%s'\n", i, in, rc,
                    err.err, err.param, err.message);
            fail();
        }
        assert_int_equal(out.len, 0);
        yr_buf_free(&out);
        free(in);
    }
}

static void test_peek_and_estimate(void **state)
{
    (void)state;
    yr_api_error_t err;
    assert_int_equal(yr_gem_peek("{\"a\":1}", 7, &err), 0);
    assert_int_equal(yr_gem_peek("{\"a\":1,\"a\":2}", 13, &err), -EINVAL);
    assert_int_equal(err.err, YR_E_INVALID_JSON);
    assert_int_equal(yr_gem_peek("[1]", 3, &err), -EINVAL);
    int64_t small, big, wrapped;
    char *a = dq("{'contents':[{'parts':[{'text':'hello there, how are you'}]}]}");
    char *b = dq("{'contents':[{'parts':[{'text':'hello there, how are you'},"
                 "{'inlineData':{'mimeType':'image/png','data':'AAAA'}}]}]}");
    char *c = dq("{'generateContentRequest':{'model':'models/x','contents':[{'parts':"
                 "[{'text':'hello there, how are you'}]}]}}");
    assert_int_equal(yr_gem_count_tokens_estimate(a, strlen(a), &small, &err), 0);
    assert_int_equal(yr_gem_count_tokens_estimate(b, strlen(b), &big, &err), 0);
    assert_int_equal(yr_gem_count_tokens_estimate(c, strlen(c), &wrapped, &err), 0);
    assert_int_equal(small, (24 + 3) / 4 + 4);
    assert_int_equal(big, small + 1600);
    assert_int_equal(wrapped, small);
    assert_int_equal(yr_gem_count_tokens_estimate("{}", 2, &small, &err), -EINVAL);
    assert_string_equal(err.param, "contents");
    free(a);
    free(b);
    free(c);
}

/* ---- the answer: OpenAI decoder -> Gemini encoder ------------------------------------- */

typedef struct {
    yr_pool_t *pool;
    yr_call_ctx_t cx;
    yr_gem_enc_t *e;
    yr_buf_t out;
} pipe_t;

static int on_pipe_event(void *arg, const yr_event_t *ev)
{
    pipe_t *p = arg;
    if (ev->type == YR_EV_ERROR)
        return -EINVAL;
    return yr_gem_enc_event(p->e, ev, &p->out);
}

static pipe_t *pipe_new(bool stream, bool sse, bool thoughts)
{
    pipe_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->pool = yr_pool_create(4096);
    yr_gem_enc_opts_t o = {.model = YR_STR("gemini-x"),
                           .id_seed = YR_STR("req_1"),
                           .stream = stream,
                           .sse = sse,
                           .include_thoughts = thoughts,
                           .input_tokens_estimate = 9};
    p->e = yr_gem_enc_new(&o);
    assert_non_null(p->e);
    p->cx = (yr_call_ctx_t){.pool = p->pool, .request_id = YR_STR("req_1")};
    yr_buf_init(&p->out, 1 << 20);
    return p;
}

static void pipe_free(pipe_t *p)
{
    yr_gem_enc_free(p->e);
    yr_pool_destroy(p->pool);
    yr_buf_free(&p->out);
    free(p);
}

static void pipe_chunks(pipe_t *p, const char *const *chunks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *d = dq(chunks[i]);
        yr_sse_event_t m = {YR_STR(""), yr_str(d)};
        bool done = false;
        assert_int_equal(yr_openai_decode_event(&p->cx, &m, on_pipe_event, p, &done), 0);
        free(d);
    }
}

static void test_response_text_usage(void **state)
{
    (void)state;
    pipe_t *p = pipe_new(false, false, true);
    char *body = dq("{'id':'chatcmpl-1','object':'chat.completion','created':1,'model':'gpt-4o',"
                    "'choices':[{'index':0,'message':{'role':'assistant','content':'hi',"
                    "'reasoning_content':'think'},'finish_reason':'length'}],"
                    "'usage':{'prompt_tokens':10,'completion_tokens':7,'total_tokens':17,"
                    "'prompt_tokens_details':{'cached_tokens':4},"
                    "'completion_tokens_details':{'reasoning_tokens':5}}}");
    assert_int_equal(yr_openai_decode_response(&p->cx, yr_str(body), on_pipe_event, p), 0);
    assert_json_eq(p->out.data, p->out.len,
                   "{'candidates':[{'content':{'parts':[{'text':'think','thought':true},"
                   "{'text':'hi'}],'role':'model'},'finishReason':'MAX_TOKENS','index':0}],"
                   "'usageMetadata':{'promptTokenCount':10,'candidatesTokenCount':2,"
                   "'totalTokenCount':17,'cachedContentTokenCount':4,'thoughtsTokenCount':5},"
                   "'modelVersion':'gemini-x','responseId':'req_1'}");
    free(body);
    pipe_free(p);
}

static void test_response_tools_no_thoughts(void **state)
{
    (void)state;
    pipe_t *p = pipe_new(false, false, false);
    char *body =
        dq("{'id':'chatcmpl-1','object':'chat.completion','created':1,'model':'gpt-4o',"
           "'choices':[{'index':0,'message':{'role':'assistant','content':null,"
           "'reasoning_content':'hidden','tool_calls':["
           "{'id':'call_a','type':'function','function':{'name':'f','arguments':'{\\'x\\':1.0}'}},"
           "{'id':'call_b','type':'function','function':{'name':'g','arguments':'oops'}}]},"
           "'finish_reason':'tool_calls'}]}");
    assert_int_equal(yr_openai_decode_response(&p->cx, yr_str(body), on_pipe_event, p), 0);
    assert_non_null(strstr(p->out.data, "\"args\":{\"x\":1.0}"));
    assert_json_eq(p->out.data, p->out.len,
                   "{'candidates':[{'content':{'parts':[{'functionCall':{'id':'call_a','name':'f',"
                   "'args':{'x':1.0}}},{'functionCall':{'id':'call_b','name':'g','args':{}}}],"
                   "'role':'model'},'finishReason':'STOP','index':0}],"
                   "'usageMetadata':{'promptTokenCount':9,'candidatesTokenCount':0,"
                   "'totalTokenCount':9},'modelVersion':'gemini-x','responseId':'req_1'}");
    free(body);
    pipe_free(p);
}

/* Google's OpenAI-compatible endpoint carries the signature in
 * extra_content.google.thought_signature: it reaches the functionCall part. */
static void test_signature_from_openai_compatible(void **state)
{
    (void)state;
    pipe_t *p = pipe_new(false, false, false);
    char *body = dq("{'id':'c','object':'chat.completion','created':1,'model':'gemini-3',"
                    "'choices':[{'index':0,'message':{'role':'assistant','content':null,"
                    "'tool_calls':[{'id':'call_a','type':'function','function':{'name':'f',"
                    "'arguments':'{}'},'extra_content':{'google':{'thought_signature':'c2ln'}}}]},"
                    "'finish_reason':'tool_calls'}]}");
    assert_int_equal(yr_openai_decode_response(&p->cx, yr_str(body), on_pipe_event, p), 0);
    assert_non_null(strstr(p->out.data, "\"args\":{}},\"thoughtSignature\":\"c2ln\"}"));
    free(body);
    pipe_free(p);
    p = pipe_new(true, true, false);
    const char *chunks[] = {
        "{'id':'c','object':'chat.completion.chunk','created':1,'model':'m','choices':[{'index':0,"
        "'delta':{'role':'assistant','tool_calls':[{'index':0,'id':'call_a','type':'function',"
        "'function':{'name':'f','arguments':'{}'},'extra_content':{'google':{'thought_signature':"
        "'c2ln'}}}]},'finish_reason':'tool_calls'}]}",
        "[DONE]",
    };
    pipe_chunks(p, chunks, ARRAY_LEN(chunks));
    assert_non_null(strstr(p->out.data, "\"thoughtSignature\":\"c2ln\""));
    pipe_free(p);
}

static const char *const tool_stream[] = {
    "{'id':'c1','object':'chat.completion.chunk','created':1,'model':'gpt-4o','choices':[{'index':"
    "0,"
    "'delta':{'role':'assistant','content':'ok'},'finish_reason':null}]}",
    "{'id':'c1','object':'chat.completion.chunk','created':1,'model':'gpt-4o','choices':[{'index':"
    "0,"
    "'delta':{'tool_calls':[{'index':0,'id':'call_1','type':'function','function':{'name':'f',"
    "'arguments':'{\\'a\\''}}]},'finish_reason':null}]}",
    "{'id':'c1','object':'chat.completion.chunk','created':1,'model':'gpt-4o','choices':[{'index':"
    "0,"
    "'delta':{'tool_calls':[{'index':0,'function':{'arguments':':2}'}}]},'finish_reason':null}]}",
    "{'id':'c1','object':'chat.completion.chunk','created':1,'model':'gpt-4o','choices':[{'index':"
    "0,"
    "'delta':{},'finish_reason':'tool_calls'}]}",
    "{'id':'c1','object':'chat.completion.chunk','created':1,'model':'gpt-4o','choices':[],"
    "'usage':{'prompt_tokens':3,'completion_tokens':4,'total_tokens':7}}",
    "[DONE]",
};

static void test_stream_sse(void **state)
{
    (void)state;
    pipe_t *p = pipe_new(true, true, false);
    pipe_chunks(p, tool_stream, ARRAY_LEN(tool_stream));
    const char *want =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}],\"role\":\"model\"},"
        "\"index\":0}],\"modelVersion\":\"gemini-x\",\"responseId\":\"req_1\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"call_1\","
        "\"name\":\"f\",\"args\":{\"a\":2}}}],\"role\":\"model\"},\"index\":0}],"
        "\"modelVersion\":\"gemini-x\",\"responseId\":\"req_1\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\"},\"finishReason\":\"STOP\","
        "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4,"
        "\"totalTokenCount\":7},\"modelVersion\":\"gemini-x\",\"responseId\":\"req_1\"}\r\n\r\n";
    assert_string_equal(p->out.data, want);
    pipe_free(p);
}

static void test_stream_array(void **state)
{
    (void)state;
    pipe_t *p = pipe_new(true, false, false);
    pipe_chunks(p, tool_stream, ARRAY_LEN(tool_stream));
    json_error_t e;
    json_t *arr = json_loadb(p->out.data, p->out.len, 0, &e);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 3);
    assert_non_null(strstr(p->out.data, "},\r\n{"));
    json_decref(arr);
    pipe_free(p);
}

static void test_encoder_signature_thoughts_sequence(void **state)
{
    (void)state;
    pipe_t *p = pipe_new(true, true, true);
    yr_event_t evs[] = {
        {.type = YR_EV_START, .id = YR_STR("x"), .name = YR_STR("m")},
        {.type = YR_EV_REASONING, .text = YR_STR("hmm"), .signature = YR_STR("anth-sig")},
        {.type = YR_EV_TOOL_START, .index = 0, .name = YR_STR("f"), .signature = YR_STR("c2ln")},
        {.type = YR_EV_TOOL_END, .index = 0},
        {.type = YR_EV_FINISH, .finish = YR_FINISH_CONTENT_FILTER},
    };
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        assert_int_equal(yr_gem_enc_event(p->e, &evs[i], &p->out), 0);
    assert_non_null(strstr(p->out.data, "{\"text\":\"hmm\",\"thought\":true}"));
    assert_null(strstr(p->out.data, "anth-sig"));
    assert_non_null(
        strstr(p->out.data,
               "{\"functionCall\":{\"name\":\"f\",\"args\":{}},\"thoughtSignature\":\"c2ln\"}"));
    size_t len = p->out.len;
    yr_event_t late = {.type = YR_EV_TEXT, .text = YR_STR("late")};
    assert_int_equal(yr_gem_enc_event(p->e, &late, &p->out), -EINVAL);
    assert_int_equal(p->out.len, len);
    yr_event_t end = {.type = YR_EV_END};
    assert_int_equal(yr_gem_enc_event(p->e, &end, &p->out), -EINVAL); /* failed: refuses all */
    pipe_free(p);

    p = pipe_new(false, false, false);
    yr_event_t end2 = {.type = YR_EV_FINISH, .finish = YR_FINISH_CONTENT_FILTER};
    assert_int_equal(yr_gem_enc_event(p->e, &end2, &p->out), 0);
    assert_int_equal(yr_gem_enc_event(p->e, &end, &p->out), 0);
    assert_non_null(strstr(p->out.data, "\"finishReason\":\"SAFETY\""));
    assert_non_null(strstr(p->out.data, "\"content\":{\"role\":\"model\"}"));
    yr_event_t err = {.type = YR_EV_ERROR};
    assert_int_equal(yr_gem_enc_event(p->e, &err, &p->out), -EINVAL);
    pipe_free(p);
}

/* ---- framing and errors ---------------------------------------------------------------- */

static void test_frames(void **state)
{
    (void)state;
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    yr_gem_frame_t f = {.sse = false};
    assert_int_equal(yr_gem_frame_end(&f, &out), 0);
    assert_string_equal(out.data, "[]");
    yr_buf_reset(&out);
    f = (yr_gem_frame_t){.sse = false};
    assert_int_equal(
        yr_gem_frame_sse(&f, YR_STR(": c\r\n\r\ndata: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n"), &out),
        0);
    assert_int_equal(yr_gem_frame_error(&f, YR_E_UPSTREAM_TIMEOUT, YR_STR("slow"), &out), 0);
    assert_string_equal(out.data, "[{\"a\":1},\r\n{\"b\":2},\r\n{\"error\":{\"code\":504,"
                                  "\"message\":\"slow\",\"status\":\"DEADLINE_EXCEEDED\"}}]");
    assert_int_equal(yr_gem_frame_chunk(&f, YR_STR("{}"), &out), -EINVAL);
    yr_buf_reset(&out);
    f = (yr_gem_frame_t){.sse = true};
    assert_int_equal(yr_gem_frame_sse(&f, YR_STR("data: {\"a\":1}\n\n"), &out), 0);
    assert_int_equal(yr_gem_frame_end(&f, &out), 0);
    assert_string_equal(out.data, "data: {\"a\":1}\r\n\r\n");
    assert_int_equal(yr_gem_frame_sse(&f, YR_STR("data: {\"a\""), &out), -EINVAL);
    assert_string_equal(out.data, "data: {\"a\":1}\r\n\r\n");
    yr_buf_free(&out);
}

static void test_error_bodies(void **state)
{
    (void)state;
    static const struct {
        yr_err_t e;
        int status;
        const char *name;
    } t[] = {
        {YR_E_INVALID_REQUEST, 400, "INVALID_ARGUMENT"},
        {YR_E_MODEL_NOT_FOUND, 404, "NOT_FOUND"},
        {YR_E_UNAUTHORIZED, 401, "UNAUTHENTICATED"},
        {YR_E_RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"},
        {YR_E_UPSTREAM_ERROR, 502, "INTERNAL"},
        {YR_E_UPSTREAM_UNAVAILABLE, 503, "UNAVAILABLE"},
        {YR_E_UPSTREAM_TIMEOUT, 504, "DEADLINE_EXCEEDED"},
        {YR_E_NOT_IMPLEMENTED, 501, "UNIMPLEMENTED"},
        {YR_E_TOO_LARGE, 413, "INVALID_ARGUMENT"},
    };
    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        assert_int_equal(yr_gem_error_status(t[i].e), t[i].status);
        assert_string_equal(yr_gem_error_status_name(t[i].e), t[i].name);
    }
    yr_buf_t out;
    yr_buf_init(&out, 4096);
    assert_int_equal(yr_gem_error_body(YR_E_MODEL_NOT_FOUND, YR_STR("no \"m\""), &out), 0);
    assert_string_equal(
        out.data,
        "{\"error\":{\"code\":404,\"message\":\"no \\\"m\\\"\",\"status\":\"NOT_FOUND\"}}");
    yr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_model_path),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_include_thoughts_and_cap),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_peek_and_estimate),
        cmocka_unit_test(test_response_text_usage),
        cmocka_unit_test(test_response_tools_no_thoughts),
        cmocka_unit_test(test_signature_from_openai_compatible),
        cmocka_unit_test(test_stream_sse),
        cmocka_unit_test(test_stream_array),
        cmocka_unit_test(test_encoder_signature_thoughts_sequence),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_error_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
