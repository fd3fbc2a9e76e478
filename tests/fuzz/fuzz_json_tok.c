/* Differential fuzzing of the hot-path tokenizer against jansson: both must
 * give the same verdict on every input (our depth limit aside). */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yr_jdoc_t d;
    int rc = yr_json_parse(&d, (const char *)data, size, true);
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    bool ours = rc == 0, theirs = j != NULL;
    /* Known differences: our depth limit is lower, and jansson stops at a
     * NUL byte as if the text ended there (we refuse it as trailing data). */
    bool known = rc == -EINVAL && d.err &&
                 (strcmp(d.err, "nested too deeply") == 0 || memchr(data, 0, size) != NULL);
    if (ours != theirs && !known)
        abort();
    if (ours) {
        /* Every token lies inside the input, subtrees nest properly. */
        for (uint32_t i = 0; i < d.ntoks; i++)
            if (d.toks[i].end > size || d.toks[i].start > d.toks[i].end ||
                d.toks[i].next <= i || d.toks[i].next > d.ntoks)
                abort();
    }
    json_decref(j);
    yr_json_free(&d);
    return 0;
}
