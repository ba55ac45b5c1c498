/*
 * Adam's vector loops (fused_adam, adam.c): on vectors of two for any
 * target in adam.c, of four (AVX2) in adam_avx2.c and of eight (AVX-512)
 * in adam_avx512.c. Each
 * updates the first of the n parameters it is given, as many as fill its
 * vectors, and returns how many; adam.c's plain loop updates the rest.
 *
 * They take ADAM_CHUNK parameters at a time, in passes: the squares; the
 * moments and the quotients m_hat and v_hat; the roots; the updates. The
 * squares and the roots that only pow can give (some 4% of each) are marked
 * in their pass and asked of pow after it (adam_list), one call after another:
 * independent calls, which the CPU overlaps, where a call inside the vector
 * loop would wait for pow and reload the loop's vectors after it (measured
 * with AVX2 on AMD's Zen 4: the default step 13% faster). The roots have a
 * pass of their own for the same reason: in the pass of the divisions, each
 * vector's division, root and check wait in line for the divider, holding
 * the scheduler's entries (Adam 4-6% faster, AVX2 and vectors of two, on
 * Intel's Xeon). On x86-64 the quotients m_hat and v_hat come from fused
 * multiply-adds instead of the divider (adam_avx2.c); then the AVX-512 loop
 * takes them and the roots in one pass, and the AVX2 loop runs a chunk's
 * roots and updates beside the next chunk's squares and moments.
 */
#ifndef MICROGPT_ADAM_H
#define MICROGPT_ADAM_H

#include <stddef.h>

#include "pyfloat.h"

#define ADAM_CHUNK 512

/*
 * Where microgpt.py's Adam would raise: p.grad ** 2 overflows (OverflowError)
 * or v_hat ** 0.5 is of a negative number (one written into v: ValueError,
 * as Value's). The loops go on, and keep the first such parameter in
 * microgpt.py's order: at is 2 i for parameter i's square, 2 i + 1 for its
 * root; status is PYFLOAT_OK while there is none.
 */
struct adam_error {
    ptrdiff_t at;
    int status;
};

static inline void adam_failed(struct adam_error *e, ptrdiff_t at, int status)
{
    if (status != PYFLOAT_OK && (e->status == PYFLOAT_OK || at < e->at)) {
        e->at = at;
        e->status = status;
    }
}

/* Each chunk's parameters are asked for a chunk ahead, while the one before
   is updated: for models whose parameters do not fit in the caches, the
   memory keeps streaming while lanes call pow. The AVX2 loop asks only from
   ADAM_STREAM parameters on: fewer (their four arrays in 256 KiB) stay in
   the caches from step to step, and there its requests cost more than they
   save (measured at microgpt.py's 4,064: Adam 3-5% faster without them);
   the AVX-512 loop's do not (without them, 1.4x slower) */
#define ADAM_STREAM 8192
#define ADAM_AHEAD(i, n, p, g, m, v)                                            \
    do {                                                                        \
        if ((i) + ADAM_CHUNK < (n)) {                                           \
            __builtin_prefetch((g) + (i) + ADAM_CHUNK, 1);                      \
            __builtin_prefetch((m) + (i) + ADAM_CHUNK, 1);                      \
            __builtin_prefetch((v) + (i) + ADAM_CHUNK, 1);                      \
            __builtin_prefetch((p) + (i) + ADAM_CHUNK, 1);                      \
        }                                                                       \
    } while (0)

/* 1 / b, if b is in the range the x86 loops' quotients need (adam_avx2.c);
   0 if not, and then the plain loop divides */
static inline int reciprocal_of(double b, double *r)
{
    if (!(b >= 0x1p-60 && b <= 0x1p+60))
        return 0;
    *r = 1.0 / b;
    return 1;
}

/* (the x86 loops list parameters' numbers in 64-bit lanes) */
typedef char ptrdiff_t_is_64_bits[sizeof(ptrdiff_t) == 8 ? 1 : -1];

#if defined(__GNUC__)
#include <stdint.h>
#include <string.h>

/*
 * The lanes to ask of pow are listed after their pass. In the pass each
 * vector's checks leave one byte, bit k set where lane k passed; the list is
 * made from the bytes read eight at a time, so that it costs a step for
 * each lane listed, not for each vector. (Made in the pass, lane numbers
 * stored for each vector, it took a fifth of the pass's operations: listed
 * after it, Adam over microgpt.py's 4,064 parameters takes 0.94 of the
 * time with AVX2 and 0.88-0.90 with vectors of two, on Intel's Xeon.)
 *
 * ADAM_OKS: the bytes of a chunk's vectors of `lanes`, as many as adam_list
 * reads (a whole number of words).
 */
#define ADAM_OKS(lanes) ((ADAM_CHUNK / (lanes) + 7) / 8 * 8)

/* listed[0 .. count - 1] = the lanes whose bit is clear in the bytes oks of
   `vectors` vectors of `lanes` (2, 4 or 8), first to last; returns count.
   The bytes after the vectors' are set (to all lanes passed) first. */
static inline ptrdiff_t adam_list(unsigned char *oks, ptrdiff_t vectors, int lanes,
                                  ptrdiff_t *listed)
{
    const uint64_t passed = UINT64_C(0x0101010101010101) * ((1u << lanes) - 1);
    ptrdiff_t k, count = 0;

    if (vectors % 8)
        memset(oks + vectors, 0xff, (size_t)(8 - vectors % 8));
    for (k = 0; k < vectors; k += 8) {
        uint64_t word, failed;
        memcpy(&word, oks + k, sizeof word);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);         /* byte b as bits 8b .. 8b + 7 */
#endif
        for (failed = ~word & passed; failed; failed &= failed - 1) {
            const int bit = __builtin_ctzll(failed);
            listed[count++] = (k + bit / 8) * lanes + bit % 8;
        }
    }
    return count;
}
#endif

ptrdiff_t adam_avx2(double *p, double *g, double *m, double *v, ptrdiff_t n, double lr_t,
                    double beta1, double beta2, double eps, double bias1, double bias2,
                    struct adam_error *error);
ptrdiff_t adam_avx512(double *p, double *g, double *m, double *v, ptrdiff_t n, double lr_t,
                      double beta1, double beta2, double eps, double bias1, double bias2,
                      struct adam_error *error);

#endif /* MICROGPT_ADAM_H */
