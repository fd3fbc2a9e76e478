#include "core/pool.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define POOL_ALIGN 16

typedef struct pool_block {
    struct pool_block *next;
    size_t size;
    size_t used;
    /* followed by the block's bytes, aligned to POOL_ALIGN */
} pool_block_t;

typedef struct pool_cleanup {
    struct pool_cleanup *next;
    yr_cleanup_fn fn;
    void *data;
} pool_cleanup_t;

struct yr_pool {
    pool_block_t *blocks; /* current block first */
    pool_cleanup_t *cleanups;
    size_t block_size;
    size_t handed_out;
    /* The first block shares the pool's allocation (one malloc per request
     * pool, not two): it follows this struct and is freed with it. */
    _Alignas(POOL_ALIGN) unsigned char first[];
};

#define BLOCK_HEADER ((sizeof(pool_block_t) + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1))

static pool_block_t *block_new(size_t size)
{
    if (size > SIZE_MAX - BLOCK_HEADER)
        return NULL;
    pool_block_t *b = malloc(BLOCK_HEADER + size);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static inline unsigned char *block_data(pool_block_t *b)
{
    return (unsigned char *)b + BLOCK_HEADER;
}

yr_pool_t *yr_pool_create(size_t block_size)
{
    block_size = block_size < 256 ? 256 : block_size;
    if (block_size > SIZE_MAX - sizeof(yr_pool_t) - BLOCK_HEADER)
        return NULL;
    yr_pool_t *pool = malloc(sizeof(*pool) + BLOCK_HEADER + block_size);
    if (pool == NULL)
        return NULL;
    pool_block_t *b = (pool_block_t *)pool->first;
    *b = (pool_block_t){.next = NULL, .size = block_size, .used = 0};
    pool->blocks = b;
    pool->cleanups = NULL;
    pool->block_size = block_size;
    pool->handed_out = 0;
    return pool;
}

void yr_pool_destroy(yr_pool_t *pool)
{
    if (pool == NULL)
        return;
    /* Cleanups first: they may still read pool memory. */
    pool_cleanup_t *c = pool->cleanups;
    while (c != NULL) {
        pool_cleanup_t *next = c->next;
        c->fn(c->data);
        c = next;
    }
    pool_block_t *b = pool->blocks;
    while (b != NULL) {
        pool_block_t *next = b->next;
        if ((unsigned char *)b != pool->first)
            free(b);
        b = next;
    }
    free(pool);
}

void *yr_palloc(yr_pool_t *pool, size_t size)
{
    if (size > SIZE_MAX - POOL_ALIGN)
        return NULL;
    size = (size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
    if (size == 0)
        size = POOL_ALIGN;
    pool_block_t *b = pool->blocks;
    if (b == NULL || b->size - b->used < size) {
        /* Large requests get a block of their own placed behind the current
         * one, so the current block's free tail stays usable. */
        if (size > pool->block_size / 4 && b != NULL) {
            pool_block_t *big = block_new(size);
            if (big == NULL)
                return NULL;
            big->used = size;
            big->next = b->next;
            b->next = big;
            pool->handed_out += size;
            return block_data(big);
        }
        b = block_new(size > pool->block_size ? size : pool->block_size);
        if (b == NULL)
            return NULL;
        b->next = pool->blocks;
        pool->blocks = b;
    }
    void *p = block_data(b) + b->used;
    b->used += size;
    pool->handed_out += size;
    return p;
}

void *yr_pcalloc(yr_pool_t *pool, size_t size)
{
    void *p = yr_palloc(pool, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

char *yr_pstrndup(yr_pool_t *pool, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = yr_palloc(pool, len + 1);
    if (p == NULL)
        return NULL;
    if (len > 0)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int yr_pool_cleanup_add(yr_pool_t *pool, yr_cleanup_fn fn, void *data)
{
    pool_cleanup_t *c = yr_palloc(pool, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->fn = fn;
    c->data = data;
    c->next = pool->cleanups;
    pool->cleanups = c;
    return 0;
}

size_t yr_pool_used(const yr_pool_t *pool)
{
    return pool->handed_out;
}
