/*
 * Adam's vector loops (fused_adam, adam.c): on vectors of two for any
 * target in adam.c, of four (AVX2) and eight (AVX-512) in adam_x86.c. Each
 * updates the first of the n parameters it is given, as many as fill its
 * vectors, and returns how many; adam.c's plain loop updates the rest.
 *
 * They take ADAM_CHUNK parameters at a time, in passes: the squares; the
 * moments and the quotients m_hat and v_hat; the roots; the updates. The
 * squares and the roots that only pow can give (some 4% of each) are listed
 * in their pass and asked of pow after it, one call after another:
 * independent calls, which the CPU overlaps, where a call inside the vector
 * loop would wait for pow and reload the loop's vectors after it (measured
 * with AVX2 on AMD's Zen 4: the default step 13% faster). The roots have a
 * pass of their own for the same reason: in the pass of the divisions, each
 * vector's division, root and check wait in line for the divider, holding
 * the scheduler's entries (Adam 4-6% faster, AVX2 and vectors of two, on
 * Intel's Xeon). On x86-64 the quotients m_hat and v_hat come from fused
 * multiply-adds instead of the divider (adam_x86.c); then the AVX-512 loop
 * takes them and the roots in one pass, and the AVX2 loop runs a chunk's
 * roots and updates beside the next chunk's squares and moments.
 */
#ifndef MICROGPT_ADAM_H
#define MICROGPT_ADAM_H

#include <stddef.h>

#define ADAM_CHUNK 512

ptrdiff_t adam_avx2(double *p, double *g, double *m, double *v, ptrdiff_t n, double lr_t,
                    double beta1, double beta2, double eps, double bias1, double bias2);
ptrdiff_t adam_avx512(double *p, double *g, double *m, double *v, ptrdiff_t n, double lr_t,
                      double beta1, double beta2, double eps, double bias1, double bias2);

#endif /* MICROGPT_ADAM_H */
