/*
 * Worker threads for the kernels of fused.c: a kernel whose outputs split
 * into independent parts (panels of outputs, heads, ranges of parameters)
 * runs the parts at once, one per thread. Each output is still computed by
 * one thread, with the same operations in the same order, so the results
 * do not depend on the number of threads.
 *
 * threads_set(n) asks for n threads in all (the caller's included; 1, the
 * default, runs everything on the caller's thread). Without POSIX threads
 * there is one thread. Callers of threads_run hold the GIL: one kernel runs
 * at a time.
 */
#ifndef MICROGPT_THREADS_H
#define MICROGPT_THREADS_H

#include <stddef.h>

typedef void (*threads_task)(void *context, ptrdiff_t part, ptrdiff_t parts);

/* Use n threads (1 <= n <= THREADS_MAX); returns the number now in use,
   fewer than n if the system would not start more. */
int threads_set(int n);
int threads_count(void);
#define THREADS_MAX 256

/* task(context, part, parts) for each part in 0 .. parts - 1, at once
   (parts <= threads_count()); returns when all are done. */
void threads_run(threads_task task, void *context, ptrdiff_t parts);

/* The parts a kernel of `work` multiply-adds splits into, at most `most`:
   one per thread if that is worth waking them, else 1. */
ptrdiff_t threads_parts(double work, ptrdiff_t most);

/* [*start, *end): part `part` of `parts` of n items, in whole units */
void threads_share(ptrdiff_t n, ptrdiff_t unit, ptrdiff_t part, ptrdiff_t parts,
                   ptrdiff_t *start, ptrdiff_t *end);

#endif /* MICROGPT_THREADS_H */
