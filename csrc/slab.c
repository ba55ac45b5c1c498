/* Objects of one size, handed out of slabs in address order: see slab.h. */
#include "slab.h"

#include <stdint.h>
#include <stdlib.h>

/* Slabs come from the operating system in chunks of CHUNK_SLABS, aligned to
   a slab's size: the C library's aligned blocks (posix_memalign) leave its
   bookkeeping in the pages around each block, resident memory that would
   add half again to a graph's, and a mapping a slab would run into the
   kernel's limit on mappings (65,530 by default: a gigabyte of slabs). Pages
   of a chunk never touched cost nothing; a slab given back has its pages
   discarded, and a chunk all of whose slabs are given back is unmapped. */
#define CHUNK_SLABS 64
#define CHUNK_BYTES (CHUNK_SLABS * SLAB_BYTES)

#ifdef _WIN32
#include <malloc.h>

static void *map_chunk(void)
{
    return _aligned_malloc(CHUNK_BYTES, SLAB_BYTES);
}

static void unmap_chunk(void *c)
{
    _aligned_free(c);
}

static int discard(void *p, size_t size)     /* not here: the slab is kept */
{
    (void)p, (void)size;
    return -1;
}
#else
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* a slab's size more, then what lies outside the aligned chunk given back */
static void *map_chunk(void)
{
    size_t size = CHUNK_BYTES + SLAB_BYTES;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *c, *end;
    if (p == MAP_FAILED)
        return NULL;
    c = (char *)(((uintptr_t)p + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1));
    end = c + CHUNK_BYTES;
    if (c > p)
        munmap(p, (size_t)(c - p));
    if (end < p + size)
        munmap(end, (size_t)(p + size - end));
    return c;
}

static void unmap_chunk(void *c)
{
    munmap(c, CHUNK_BYTES);
}

/* the pages' memory back to the system; touched again, they read as zeros */
static int discard(void *p, size_t size)
{
    return madvise(p, size, MADV_DONTNEED);
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

struct chunk {
    struct chunk *prev, *next;  /* in the pool's list of chunks with slabs given back */
    char *base;                 /* CHUNK_SLABS slabs */
    uint64_t given_back;        /* bit i: slab i holds no memory */
    int handed;                 /* slabs handed out so far, from the base on */
    int listed;
};

struct slab {
    struct slab *prev, *next;   /* in the list `list` names */
    char *bump;                 /* from here to the end: never handed out since empty */
    void *free;                 /* objects freed since, each holding the next */
    size_t live;                /* objects handed out and not freed */
    struct chunk *chunk;
    int list;
};

#define HEADER 64               /* the header's cache line; objects follow */
_Static_assert(sizeof(struct slab) <= HEADER, "a slab's header fits its cache line");

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
    pool->newest = pool->given_back = NULL;
    pool->slabs = pool->empty_slabs = 0;
    pool->on_map = on_map;
    pool->on_unmap = on_unmap;
    return 0;
}

static void list_chunk(slab_pool *pool, struct chunk *c)
{
    c->prev = NULL;
    c->next = pool->given_back;
    if (c->next != NULL)
        c->next->prev = c;
    pool->given_back = c;
    c->listed = 1;
}

static void unlist_chunk(slab_pool *pool, struct chunk *c)
{
    if (!c->listed)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        pool->given_back = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->listed = 0;
}

/* A slab with memory: one given back before (the lowest of a chunk's), else
   the next of the newest chunk, else the first of a new chunk. */
static struct slab *new_slab(slab_pool *pool)
{
    struct chunk *c = pool->given_back;
    struct slab *s;
    int i;
    if (c != NULL) {
        for (i = 0; !(c->given_back >> i & 1); i++)
            ;
        c->given_back &= ~((uint64_t)1 << i);
        if (c->given_back == 0)
            unlist_chunk(pool, c);
    } else if (pool->newest != NULL && pool->newest->handed < CHUNK_SLABS) {
        c = pool->newest;
        i = c->handed++;
    } else {
        c = malloc(sizeof *c);
        if (c == NULL)
            return NULL;
        c->base = map_chunk();
        if (c->base == NULL) {
            free(c);
            return NULL;
        }
        UNPOISON(c->base, CHUNK_BYTES);         /* whatever was mapped here before */
        c->prev = c->next = NULL;
        c->given_back = 0;
        c->handed = 1;
        c->listed = 0;
        pool->newest = c;
        i = 0;
    }
    s = (struct slab *)(c->base + (size_t)i * SLAB_BYTES);
    s->prev = s->next = NULL;
    s->live = 0;
    s->chunk = c;
    s->list = IN_NO_LIST;
    reset(pool, s);
    pool->slabs++;
    if (pool->on_map != NULL)
        pool->on_map(s, SLAB_BYTES);
    return s;
}

/* The slab to hand objects out of once the current one is full: an empty
   one (in address order again), else one at least half free (its holes),
   else a new one. */
static struct slab *next_slab(slab_pool *pool)
{
    struct slab *s = pool->empty != NULL ? pool->empty : pool->half_free;
    if (s != NULL) {
        unlink_slab(pool, s);
        return s;
    }
    return new_slab(pool);
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

/* s, empty and in no list, gives its memory back: 0, or -1 where it cannot */
static int give_back(slab_pool *pool, struct slab *s)
{
    struct chunk *c = s->chunk;
    int i = (int)(((char *)s - c->base) / SLAB_BYTES);
    /* the pages may come back mapped for another use: no poison left on them */
    UNPOISON(s, SLAB_BYTES);
    if (discard(s, SLAB_BYTES) != 0) {
        reset(pool, s);
        return -1;
    }
    pool->slabs--;
    if (pool->on_unmap != NULL)
        pool->on_unmap(s);
    c->given_back |= (uint64_t)1 << i;
    if (!c->listed)
        list_chunk(pool, c);
    /* all its slabs given back: the chunk goes too (but the newest, the
       only one with slabs it has not handed out yet) */
    if (c != pool->newest && c->given_back == ~(uint64_t)0) {
        unlist_chunk(pool, c);
        unmap_chunk(c->base);
        free(c);
    }
    return 0;
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
    struct slab *kept = NULL, *s;
    while (pool->empty != NULL) {
        s = pool->empty;
        unlink_slab(pool, s);
        if (give_back(pool, s) == 0)
            released += SLAB_BYTES;
        else {
            s->next = kept;             /* kept, where pages cannot be discarded */
            kept = s;
        }
    }
    while (kept != NULL) {
        s = kept;
        kept = s->next;
        push(&pool->empty, s, IN_EMPTY);
        pool->empty_slabs++;
    }
    return released;
}
