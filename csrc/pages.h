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

#endif
