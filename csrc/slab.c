/* Objects of one size, handed out of slabs in address order: see slab.h. */
#include "slab.h"

#include <stdint.h>

/* Slabs come straight from the operating system, aligned to their size: the
   C library's aligned blocks (posix_memalign) leave its bookkeeping in the
   pages around each block, resident memory that would add half again to a
   graph's. Pages of a slab never touched cost nothing. */
#ifdef _WIN32
#include <malloc.h>

static void *map_slab(void)
{
    return _aligned_malloc(SLAB_BYTES, SLAB_BYTES);
}

static void unmap_slab(void *s)
{
    _aligned_free(s);
}
#else
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* twice the size, then what lies outside the aligned slab in it given back */
static void *map_slab(void)
{
    size_t size = 2 * SLAB_BYTES;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *s, *end;
    if (p == MAP_FAILED)
        return NULL;
    s = (char *)(((uintptr_t)p + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1));
    end = s + SLAB_BYTES;
    if (s > p)
        munmap(p, (size_t)(s - p));
    if (end < p + size)
        munmap(end, (size_t)(p + size - end));
    return s;
}

static void unmap_slab(void *s)
{
    munmap(s, SLAB_BYTES);
}
#endif

/* Under AddressSanitizer a freed object is poisoned until handed out again,
   so that a use after free is reported as with malloc's own blocks. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

enum { IN_NO_LIST, IN_HALF_FREE, IN_EMPTY };

struct slab {
    struct slab *prev, *next;   /* in the list `list` names */
    char *bump;                 /* from here to the end: never handed out since empty */
    void *free;                 /* objects freed since, each holding the next */
    size_t live;                /* objects handed out and not freed */
    int list;
};

#define HEADER 64               /* the header's cache line; objects follow */

static struct slab *slab_of(void *p)
{
    return (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
}

static char *objects(struct slab *s)
{
    return (char *)s + HEADER;
}

static void push(struct slab **list, struct slab *s, int which)
{
    s->prev = NULL;
    s->next = *list;
    if (*list != NULL)
        (*list)->prev = s;
    *list = s;
    s->list = which;
}

static void unlink_slab(slab_pool *pool, struct slab *s)
{
    struct slab **list = s->list == IN_EMPTY ? &pool->empty : &pool->half_free;
    if (s->list == IN_NO_LIST)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        *list = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (s->list == IN_EMPTY)
        pool->empty_slabs--;
    s->list = IN_NO_LIST;
}

/* an empty slab hands its objects out from its start again */
static void reset(slab_pool *pool, struct slab *s)
{
    s->bump = objects(s);
    s->free = NULL;
    POISON(objects(s), pool->per_slab * pool->object_size);
}

int slab_pool_init(slab_pool *pool, size_t object_size,
                   void (*on_map)(void *, size_t), void (*on_unmap)(void *))
{
    if (object_size < 16 || object_size > 1024 || object_size % 16 != 0)
        return -1;
    pool->object_size = object_size;
    pool->per_slab = (SLAB_BYTES - HEADER) / object_size;
    pool->current = pool->half_free = pool->empty = NULL;
    pool->slabs = pool->empty_slabs = 0;
    pool->on_map = on_map;
    pool->on_unmap = on_unmap;
    return 0;
}

/* The slab to hand objects out of once the current one is full: an empty
   one (in address order again), else one at least half free (its holes),
   else a new one. */
static struct slab *next_slab(slab_pool *pool)
{
    struct slab *s = pool->empty != NULL ? pool->empty : pool->half_free;
    void *p = NULL;
    if (s != NULL) {
        unlink_slab(pool, s);
        return s;
    }
    p = map_slab();
    if (p == NULL)
        return NULL;
    UNPOISON(p, SLAB_BYTES);            /* whatever was mapped here before */
    s = (struct slab *)p;
    s->prev = s->next = NULL;
    s->live = 0;
    s->list = IN_NO_LIST;
    reset(pool, s);
    pool->slabs++;
    if (pool->on_map != NULL)
        pool->on_map(s, SLAB_BYTES);
    return s;
}

void *slab_alloc(slab_pool *pool)
{
    struct slab *s = pool->current;
    void *p;
    if (s == NULL || (s->bump == NULL && s->free == NULL)) {
        s = next_slab(pool);
        if (s == NULL)
            return NULL;
        pool->current = s;          /* the full one it replaces is in no list */
    }
    if (s->bump != NULL) {
        p = s->bump;
        UNPOISON(p, pool->object_size);
        s->bump += pool->object_size;
        if (s->bump == objects(s) + pool->per_slab * pool->object_size)
            s->bump = NULL;
    } else {
        p = s->free;
        UNPOISON(p, pool->object_size);
        s->free = *(void **)p;
    }
    s->live++;
    return p;
}

static void release(slab_pool *pool, struct slab *s)
{
    pool->slabs--;
    if (pool->on_unmap != NULL)
        pool->on_unmap(s);
    /* the pages may come back mapped for another use: no poison left on them */
    UNPOISON(s, SLAB_BYTES);
    unmap_slab(s);
}

void slab_free(slab_pool *pool, void *p)
{
    struct slab *s = slab_of(p);
    *(void **)p = s->free;
    s->free = p;
    POISON(p, pool->object_size);
    s->live--;
    if (s->live == 0) {
        if (s == pool->current) {
            reset(pool, s);
            return;
        }
        unlink_slab(pool, s);
        reset(pool, s);
        push(&pool->empty, s, IN_EMPTY);
        pool->empty_slabs++;
    } else if (s->live == pool->per_slab / 2 && s != pool->current && s->list == IN_NO_LIST) {
        push(&pool->half_free, s, IN_HALF_FREE);
    }
}

size_t slab_release_empty(slab_pool *pool)
{
    size_t released = 0;
    while (pool->empty != NULL) {
        struct slab *s = pool->empty;
        unlink_slab(pool, s);
        release(pool, s);
        released += SLAB_BYTES;
    }
    return released;
}
