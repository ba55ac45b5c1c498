/*
 * Objects of one size, handed out of 16 KiB slabs in address order.
 *
 * A training step builds a graph of tens of thousands of small objects
 * and frees all of them together. Handed out one after another from empty
 * slabs, a graph lies in memory in the order it was built, which is close
 * to the order a backward pass and the freeing walk it (the other way), so
 * those walks run over memory nearly sequentially instead of jumping
 * between holes; and a free writes the object (its link in a free list)
 * without reading anything but its slab's header.
 *
 * Bounds: a new slab is taken only when none is empty or at least half
 * free, so the slabs never hold more than twice the bytes of the most
 * objects alive at once, plus one slab. Slabs a freed graph leaves empty are
 * kept for the graphs to come (a training step builds one as large), until
 * slab_release_empty gives them back to the operating system.
 *
 * Plain C, no Python.h; not thread-safe (its callers hold the GIL).
 */
#ifndef MICROGPT_SLAB_H
#define MICROGPT_SLAB_H

#include <stddef.h>

#define SLAB_BYTES ((size_t)16 * 1024)  /* a slab, aligned to its size */

struct slab;
struct chunk;

typedef struct {
    size_t object_size;         /* bytes, a multiple of 16 */
    size_t per_slab;            /* objects a slab holds */
    struct slab *current;       /* where objects come from; in no list */
    struct slab *half_free;     /* slabs at least half free (and not empty) */
    struct slab *empty;         /* slabs with no object in use */
    struct chunk *newest;       /* the chunk of memory slabs come from next */
    struct chunk *given_back;   /* chunks with slabs that gave their memory back */
    size_t slabs;               /* slabs held, empty ones included */
    size_t empty_slabs;
    /* told of each slab taken from and given back to the operating system
       (tracemalloc's accounts), or NULL */
    void (*on_map)(void *slab, size_t size);
    void (*on_unmap)(void *slab);
} slab_pool;

/* a pool of objects of object_size bytes (16 to 1024); -1 if that size is not one */
int slab_pool_init(slab_pool *pool, size_t object_size,
                   void (*on_map)(void *, size_t), void (*on_unmap)(void *));
/* an object of pool->object_size bytes, 16-byte aligned, not zeroed; NULL if out of memory */
void *slab_alloc(slab_pool *pool);
/* give back p, an object slab_alloc(pool) returned */
void slab_free(slab_pool *pool, void *p);
/* give the empty slabs kept for reuse back to the operating system; returns their bytes */
size_t slab_release_empty(slab_pool *pool);

#endif
