/* Memory straight from the operating system, in whole pages. */
#ifndef MICROGPT_PAGES_H
#define MICROGPT_PAGES_H

#include <stddef.h>

/* blocks of at least this many bytes come from pages_alloc (the size from
   which glibc maps blocks of its own, until it raises its threshold) */
#define PAGES_LARGE ((size_t)16 * 1024)

/* size bytes of zeroed memory, or NULL */
void *pages_alloc(size_t size);
/* give back what pages_alloc(size) returned (NULL: nothing) */
void pages_free(void *p, size_t size);
/* the block p of old_size bytes from pages_alloc, as a block of new_size
   bytes (its contents not kept), or NULL where it cannot be done (p is then
   unchanged): the pages it keeps are not faulted in anew */
void *pages_resize(void *p, size_t old_size, size_t new_size);

#endif
