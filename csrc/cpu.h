/*
 * The instruction set of the vector kernels (fused.c's tiles, adam.c),
 * chosen once per process: the widest of AVX-512 and AVX2 (with FMA) the
 * CPU has, unless MICROGPT_KERNELS in the environment says "avx2" or
 * "portable" (the plain C loops; MICROGPT_DISABLE_AVX2=1 says the same).
 * Every instruction set computes the same doubles; the tests compare them.
 *
 * HAVE_AVX2: the compiler can build the x86-64 vector kernels (GCC or
 * clang on x86-64); elsewhere only the portable loops exist.
 */
#ifndef MICROGPT_CPU_H
#define MICROGPT_CPU_H

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2 1
#endif

enum { ISA_PORTABLE, ISA_AVX2, ISA_AVX512 };

/* ISA_PORTABLE, ISA_AVX2 or ISA_AVX512 */
int kernel_isa(void);

#endif /* MICROGPT_CPU_H */
