/*
 * Worker threads for the kernels; threads.h says what they do.
 *
 * Worker i (from 1) runs part i of each task, the calling thread part 0.
 * A new task is announced by incrementing `generation`. Kernels follow each
 * other closely, so a worker that finished one spins for a while before it
 * sleeps on a condition variable, and so does the caller waiting for the
 * workers: waking a sleeping thread costs more than most parts take.
 */
#include "threads.h"

#if (defined(__unix__) || defined(__APPLE__)) && defined(__GNUC__)
#include <pthread.h>
#include <stdint.h>

#define SPINS 20000                     /* ~50 us of polling before sleeping */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_done = PTHREAD_COND_INITIALIZER;
static int wanted = 1;                  /* threads asked for, the caller's included */
static int started = 0;                 /* workers running */
static int sleeping = 0;                /* workers waiting on work_ready */
static unsigned long generation = 0;    /* tasks announced */
static ptrdiff_t remaining = 0;         /* workers' parts of this task not yet done */
static threads_task task_now;
static void *context_now;
static ptrdiff_t parts_now;
static int fork_handler = 0;
static unsigned long born[THREADS_MAX]; /* generation when worker i started: it waits for the next */

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg)
{
    const ptrdiff_t part = (ptrdiff_t)(intptr_t)arg;
    unsigned long seen = born[part];
    int spins;

    for (;;) {
        threads_task task;
        void *context;
        ptrdiff_t parts;
        for (spins = 0; spins < SPINS; spins++) {
            if (__atomic_load_n(&generation, __ATOMIC_ACQUIRE) != seen)
                break;
            relax();
        }
        /* the task, read as the caller wrote it: under the lock */
        pthread_mutex_lock(&lock);
        while (generation == seen) {
            sleeping++;
            pthread_cond_wait(&work_ready, &lock);
            sleeping--;
        }
        seen = generation;
        task = task_now;
        context = context_now;
        parts = parts_now;
        pthread_mutex_unlock(&lock);
        if (part < parts) {
            task(context, part, parts);
            if (__atomic_sub_fetch(&remaining, 1, __ATOMIC_ACQ_REL) == 0) {
                pthread_mutex_lock(&lock);
                pthread_cond_signal(&work_done);
                pthread_mutex_unlock(&lock);
            }
        }
    }
    return NULL;
}

/* In a child made by fork() only the forking thread exists: no workers, and
   the lock may have been held by one of them. */
static void after_fork_in_child(void)
{
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&work_ready, NULL);
    pthread_cond_init(&work_done, NULL);
    started = sleeping = 0;
    remaining = 0;
}

/* Start workers until there are n - 1 (or the system refuses). */
static void start_workers(int n)
{
    if (!fork_handler)
        fork_handler = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    while (started < n - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        int failed;
        if (pthread_attr_init(&attr) != 0)
            return;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        born[started + 1] = generation;     /* seen by the new thread: pthread_create orders it */
        failed = pthread_create(&thread, &attr, worker, (void *)(intptr_t)(started + 1));
        pthread_attr_destroy(&attr);
        if (failed)
            return;
        started++;
    }
}

int threads_set(int n)
{
    if (n < 1)
        n = 1;
    if (n > THREADS_MAX)
        n = THREADS_MAX;
    start_workers(n);
    wanted = n <= started + 1 ? n : started + 1;
    return wanted;
}

int threads_count(void)
{
    return wanted;
}

void threads_run(threads_task task, void *context, ptrdiff_t parts)
{
    ptrdiff_t part, helped;
    int spins;

    if (parts > wanted)
        parts = wanted;
    if (parts > 1 && started < parts - 1)
        start_workers((int)parts);          /* after a fork() */
    helped = parts - 1 <= started ? parts - 1 : started;
    if (helped < 1) {
        for (part = 0; part < parts; part++)
            task(context, part, parts);
        return;
    }
    pthread_mutex_lock(&lock);
    task_now = task;
    context_now = context;
    parts_now = helped + 1;
    __atomic_store_n(&remaining, helped, __ATOMIC_RELEASE);
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    if (sleeping)
        pthread_cond_broadcast(&work_ready);
    pthread_mutex_unlock(&lock);
    task(context, 0, helped + 1);
    for (spins = 0; spins < SPINS && __atomic_load_n(&remaining, __ATOMIC_ACQUIRE); spins++)
        relax();
    if (__atomic_load_n(&remaining, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&lock);
        while (__atomic_load_n(&remaining, __ATOMIC_ACQUIRE))
            pthread_cond_wait(&work_done, &lock);
        pthread_mutex_unlock(&lock);
    }
}

#else   /* no POSIX threads: everything on the caller's thread */

int threads_set(int n)
{
    (void)n;
    return 1;
}

int threads_count(void)
{
    return 1;
}

void threads_run(threads_task task, void *context, ptrdiff_t parts)
{
    (void)parts;
    task(context, 0, 1);
}

#endif


/* Work (multiply-adds) below which one thread does it all: waking the
   others would cost more than it saves. */
#define PARALLEL_WORK 131072.0

ptrdiff_t threads_parts(double work, ptrdiff_t most)
{
    ptrdiff_t parts = threads_count();
    if (work < PARALLEL_WORK || parts < 1)
        return 1;
    return parts < most ? parts : (most > 1 ? most : 1);
}

void threads_share(ptrdiff_t n, ptrdiff_t unit, ptrdiff_t part, ptrdiff_t parts,
                   ptrdiff_t *start, ptrdiff_t *end)
{
    const ptrdiff_t units = (n + unit - 1) / unit;
    *start = units * part / parts * unit;
    *end = units * (part + 1) / parts * unit;
    if (*start > n)
        *start = n;
    if (*end > n)
        *end = n;
}
