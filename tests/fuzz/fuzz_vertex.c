/* libFuzzer target for the Vertex AI body rewrite and the token endpoint's
 * answers (src/providers/vertex.c, gcp_auth.c). Whatever the body, a Claude
 * body the rewrite accepts stays one JSON object that has an
 * anthropic_version and, outside token counting, no model (for bodies
 * without duplicate keys: with them "the model" has no single meaning); a
 * token is never empty and never holds a byte that could end a header line.
 *
 *   build-fuzz/tests/fuzz/fuzz_vertex -max_total_time=60 NEW tests/fuzz/corpus/vertex */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_tok.h"
#include "providers/gcp_auth.h"
#include "providers/vertex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_body(yr_str_t in, bool count)
{
    yr_buf_t b;
    yr_buf_init(&b, 1u << 20);
    yr_str_t out;
    int rc = yr_vertex_claude_body(in, count, &b, &out);
    yr_jdoc_t d;
    bool unique = yr_json_parse(&d, in.ptr, in.len, true) == 0;
    yr_json_free(&d);
    if (rc == 0) {
        if (yr_json_parse(&d, out.ptr, out.len, false) != 0 || yr_json_type(&d, 0) != YR_JT_OBJECT)
            abort(); /* still one JSON object */
        if (unique && yr_json_get(&d, 0, "anthropic_version") < 0)
            abort();
        if (unique && !count && yr_json_get(&d, 0, "model") >= 0)
            abort();
        yr_json_free(&d);
    } else if (rc != -EINVAL && rc != -ENOMEM && rc != -E2BIG) {
        abort();
    }
    yr_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yr_str_t in = {(const char *)data, size};
    check_body(in, false);
    check_body(in, true);
    char tok[YR_GCP_MAX_TOKEN], why[256];
    int64_t exp;
    if (yr_gcp_token_parse(200, in, tok, sizeof(tok), &exp, why, sizeof(why)) == 0) {
        if (tok[0] == '\0')
            abort();
        for (const char *p = tok; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                abort();
    }
    return 0;
}
