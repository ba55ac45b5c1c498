/*
 * The large blocks of tensors come from the operating system and go back
 * to it when freed. From the C library's heap they would not: glibc raises
 * its mmap threshold each time a large mapped block is freed, then serves
 * blocks of that size from its heap, which shrinks only from its top. A run
 * whose documents vary in length asks for ever other sizes, and the holes
 * its freed blocks leave in the heap keep the process's memory above the
 * most its tensors use at once (microgpt.memory's estimate).
 *
 * Tensors of steps that differ a little in size (batches of documents of
 * other lengths) reuse each other's blocks through pages_resize: on Linux,
 * mremap keeps the pages both sizes share, and a step does not fault its
 * tensors' pages in anew each time.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE             /* mremap */
#endif
#include "pages.h"

#ifdef _WIN32
#include <stdlib.h>

void *pages_alloc(size_t size)
{
    return calloc(1, size);
}

void pages_free(void *p, size_t size)
{
    (void)size;
    free(p);
}

void *pages_resize(void *p, size_t old_size, size_t new_size)
{
    (void)p, (void)old_size, (void)new_size;
    return NULL;
}
#else
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

void *pages_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void pages_free(void *p, size_t size)
{
    if (p != NULL)
        munmap(p, size);
}

void *pages_resize(void *p, size_t old_size, size_t new_size)
{
#ifdef __linux__
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
    return q == MAP_FAILED ? NULL : q;
#else
    (void)p, (void)old_size, (void)new_size;
    return NULL;
#endif
}
#endif
