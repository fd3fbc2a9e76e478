/* LD_PRELOAD allocation counter for bench/profile: counts malloc, calloc,
 * realloc, free (and posix_memalign/aligned_alloc) calls of the whole
 * process and writes them to $YR_ALLOC_COUNT_OUT when the process exits.
 * It forwards to glibc's __libc_* entry points, so it needs no dlsym (which
 * itself allocates). Counting only: no sizes, no stacks, near-zero cost. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong n_malloc, n_calloc, n_realloc, n_free, n_memalign;

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p != NULL)
        atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed);
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("YR_ALLOC_COUNT_OUT");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "{\"malloc\":%lu,\"calloc\":%lu,\"realloc\":%lu,\"free\":%lu,\"memalign\":%lu}\n",
            (unsigned long)n_malloc, (unsigned long)n_calloc, (unsigned long)n_realloc,
            (unsigned long)n_free, (unsigned long)n_memalign);
    fclose(f);
}
