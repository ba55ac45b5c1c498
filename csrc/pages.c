/*
 * The large blocks of tensors come from the operating system and go back
 * to it when freed. From the C library's heap they would not: glibc raises
 * its mmap threshold each time a large mapped block is freed, then serves
 * blocks of that size from its heap, which shrinks only from its top. A run
 * whose documents vary in length asks for ever other sizes, and the holes
 * its freed blocks leave in the heap keep the process's memory above the
 * most its tensors use at once (microgpt.memory's estimate).
 */
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
#endif
