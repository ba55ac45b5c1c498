/*
 * The kernels' instruction set, chosen once per process: the widest of
 * AVX-512 and AVX2 (with FMA) the CPU has, else "portable": the kernels of
 * kernels_template.h on vectors of two doubles, which the compiler makes of
 * whatever the target has (SSE2 on x86-64, NEON on ARM). MICROGPT_KERNELS
 * in the environment caps it: "avx2", "portable", or "plain" (the plain C
 * loops, all a compiler without vector extensions builds);
 * MICROGPT_DISABLE_AVX2=1 is "portable". Every one computes the same
 * doubles; the tests compare them.
 *
 * HAVE_VECTORS: the compiler has GCC's vector extensions (GCC, clang), for
 * the portable kernels; HAVE_AVX2: it can build the x86-64 ones too.
 */
#ifndef MICROGPT_CPU_H
#define MICROGPT_CPU_H

#if defined(__GNUC__)
#define HAVE_VECTORS 1
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2 1
#endif

enum { ISA_PLAIN, ISA_PORTABLE, ISA_AVX2, ISA_AVX512 };

/* ISA_PLAIN, ISA_PORTABLE, ISA_AVX2 or ISA_AVX512 */
int kernel_isa(void);

#endif /* MICROGPT_CPU_H */
