/*
 * The kernels' instruction set, chosen once per process: the widest of
 * AVX-512 and AVX2 (with FMA) the CPU has, else "portable": the kernels of
 * kernels_template.h on vectors of two doubles, which the compiler makes of
 * whatever the target has (NEON on ARM; SSE3 on x86-64, below), else
 * "plain". MICROGPT_KERNELS in the environment caps it: "avx2", "portable",
 * or "plain" (the plain C loops, all a compiler without vector extensions
 * builds); MICROGPT_DISABLE_AVX2=1 is "portable". Every one computes the
 * same doubles; the tests compare them.
 *
 * HAVE_VECTORS: the compiler has GCC's vector extensions (GCC, clang), for
 * the portable kernels; HAVE_AVX2: it can build the x86-64 ones too.
 *
 * PORTABLE_TARGET: the portable kernels' target. On x86-64 it is SSE3, for
 * one instruction: movddup, a double loaded into both lanes. The kernels
 * multiply a vector by one number at every term, and SSE2 has no load that
 * fills both lanes: a load and a shuffle each, which the shuffle unit
 * cannot keep up with (with SSE3 the portable step at 64x2x64 and
 * 128x4x128 takes 0.90-0.91 of the time, on Intel's Xeon). Every x86-64 CPU since 2005 has SSE3; one without it runs
 * the plain loops. NEON's multiply by a lane needs no copy, so elsewhere
 * the target is the compiler's.
 */
#ifndef MICROGPT_CPU_H
#define MICROGPT_CPU_H

#if defined(__GNUC__)
#define HAVE_VECTORS 1
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_AVX2 1
#define PORTABLE_TARGET __attribute__((target("sse3")))
#else
#define PORTABLE_TARGET
#endif

enum { ISA_PLAIN, ISA_PORTABLE, ISA_AVX2, ISA_AVX512 };

/* ISA_PLAIN, ISA_PORTABLE, ISA_AVX2 or ISA_AVX512 */
int kernel_isa(void);

#endif /* MICROGPT_CPU_H */
