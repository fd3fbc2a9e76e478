/* libFuzzer target for Azure's stream-chunk normaliser and error parser
 * (src/providers/azure.c). Whatever Azure sends, a chunk the normaliser keeps
 * must still be one valid JSON value, every kept choice must have a delta,
 * and a dropped chunk is empty. Build with -DYR_FUZZ=ON (see CMakeLists.txt),
 * or by hand from the repository root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *         tests/fuzz/fuzz_azure.c src/providers/azure.c src/providers/transport.c \
 *         src/api/json_tok.c src/core/buf.c ... (simplest: the CMake target)
 *   build-fuzz/tests/fuzz/fuzz_azure -max_total_time=60 NEW tests/fuzz/corpus/azure */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_tok.h"
#include "providers/azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yr_str_t in = {(const char *)data, size};
    yr_buf_t scratch;
    yr_buf_init(&scratch, 1u << 20);
    yr_str_t out;
    int rc = yr_azure_stream_chunk(in, &scratch, &out);
    if (rc == 0 && out.len > 0 && !yr_str_eq(out, YR_STR("[DONE]"))) {
        yr_jdoc_t d;
        if (yr_json_parse(&d, out.ptr, out.len, false) != 0)
            abort(); /* a kept chunk is always valid JSON */
        int choices = yr_json_get(&d, 0, "choices");
        for (uint32_t i = 0; yr_json_type(&d, choices) == YR_JT_ARRAY && i < d.toks[choices].size;
             i++) {
            int c = yr_json_at(&d, choices, i);
            if (yr_json_type(&d, c) == YR_JT_OBJECT && yr_json_get(&d, c, "delta") < 0)
                abort(); /* every kept choice has a delta */
        }
        yr_json_free(&d);
    } else if (rc < 0 && rc != -EINVAL && rc != -ENOMEM && rc != -E2BIG &&
               rc != -ECANCELED) { /* -ECANCELED: an {"error":{...}} event */
        abort();
    }
    yr_buf_free(&scratch);

    yr_provider_error_t perr;
    yr_azure_parse_error(in, &perr);
    if (memchr(perr.message, '\0', sizeof(perr.message)) == NULL ||
        memchr(perr.code, '\0', sizeof(perr.code)) == NULL)
        abort();
    return 0;
}
