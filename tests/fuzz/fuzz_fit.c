/* libFuzzer target for fitting a request to a route's model (providers/
 * fit.h). Every input that yr_chat_parse accepts is fitted for a few model
 * shapes, two ways: as bytes (yr_fit_bytes, what the OpenAI passthrough
 * sends) and as a tree (yr_fit_tree, what the translating dialects read).
 * Both must give the same document; the next attempt's yr_fit_tree(NULL)
 * must give the client's back. The native spellings (Anthropic, Gemini)
 * must stay valid JSON. Run with scripts/fuzz fuzz_fit. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat.h"
#include "providers/fit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *load(const char *p, size_t n)
{
    return json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
}

static void check_valid(const yr_buf_t *b)
{
    json_t *j = load(b->data, b->len);
    if (j == NULL)
        abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    char *body = malloc(size ? size : 1); /* exact size: over-reads are caught */
    memcpy(body, data, size);
    yr_chat_req_t req;
    yr_api_error_t err;
    if (yr_chat_parse(body, size, &req, &err) != 0 || yr_chat_load_root(&req) != 0) {
        yr_chat_free(&req);
        free(body);
        return 0;
    }
    json_t *orig = json_deep_copy(req.root);
    const yr_model_info_t models[] = {
        {.known = true, .max_output = 16, .caps = YR_CAP_TOOLS},
        {.known = true, .max_output = 100000, .caps = YR_CAP_ALL,
         .efforts = YR_EFFORT_LOW | YR_EFFORT_HIGH},
        {.known = true, .caps = YR_CAP_REASONING, .efforts = 0},
        {.caps = YR_CAP_ALL, .efforts = YR_EFFORT_ALL},
    };
    yr_fit_saved_t saved = {0};
    yr_buf_t out;
    yr_buf_init(&out, size * 2 + 4096);
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        yr_fit_t f;
        bool change = yr_fit_plan(&models[i], &req, &f);
        if (yr_fit_tree(change ? &f : NULL, req.root, &saved) != 0)
            abort();
        yr_buf_reset(&out);
        if (change) {
            if (yr_fit_bytes(&f, (yr_str_t){body, size}, &out) != 0)
                abort();
            json_t *bytes = load(out.data, out.len);
            if (bytes == NULL || !json_equal(bytes, req.root))
                abort(); /* the two ways disagree */
            json_decref(bytes);
        } else if (!json_equal(orig, req.root)) {
            abort(); /* nothing to change, yet the tree is not the client's */
        }
        yr_buf_reset(&out);
        int rc = yr_fit_anthropic_bytes(&f, (yr_str_t){body, size}, &out);
        if (rc < 0)
            abort();
        if (rc == 1)
            check_valid(&out);
        yr_buf_reset(&out);
        rc = yr_fit_gemini_bytes(&f, (yr_str_t){body, size}, &out);
        if (rc < 0)
            abort();
        if (rc == 1)
            check_valid(&out);
    }
    if (yr_fit_tree(NULL, req.root, &saved) != 0 || !json_equal(orig, req.root))
        abort(); /* the next attempt starts from the client's values */
    yr_buf_free(&out);
    yr_fit_saved_free(&saved);
    json_decref(orig);
    yr_chat_free(&req);
    free(body);
    return 0;
}
