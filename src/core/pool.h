/* Request arena: allocations are freed together when the pool is destroyed.
 * Non-memory resources attach a cleanup that runs (LIFO) at destroy time. */
#ifndef YR_POOL_H
#define YR_POOL_H

#include <stddef.h>

typedef struct yr_pool yr_pool_t;
typedef void (*yr_cleanup_fn)(void *data);

/* Returns a new pool owned by the caller (free with yr_pool_destroy), or NULL
 * when out of memory. block_size is the size of each backing block. */
yr_pool_t *yr_pool_create(size_t block_size);
void yr_pool_destroy(yr_pool_t *pool);

/* Memory owned by the pool; 16-byte aligned; NULL on overflow or OOM. */
void *yr_palloc(yr_pool_t *pool, size_t size);
void *yr_pcalloc(yr_pool_t *pool, size_t size);
/* NUL-terminated copy of s[0..len), owned by the pool. */
char *yr_pstrndup(yr_pool_t *pool, const char *s, size_t len);

/* Runs fn(data) when the pool is destroyed. Returns 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int yr_pool_cleanup_add(yr_pool_t *pool, yr_cleanup_fn fn,
                                                            void *data);

/* Bytes handed out so far (for tests and metrics). */
size_t yr_pool_used(const yr_pool_t *pool);

#endif
