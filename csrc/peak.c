/*
 * The peak-rate probe; peak.h says what it measures.
 *
 * The twelve updates are written out (EACH below) so that the compiler keeps
 * the sums and factors in registers. An empty asm statement that "changes" m
 * every iteration keeps the compiler from hoisting the loop-invariant
 * products x_i * m out of the loop, and the sums end in a volatile variable,
 * so the loop is not optimized away.
 */
#include "peak.h"

#define EACH(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)

/* m's value becomes unknown to the compiler, at no cost at run time */
#if defined(__GNUC__) && defined(__x86_64__)
#define OPAQUE(m) __asm__ volatile("" : "+x"(m))
#elif defined(__GNUC__) && defined(__aarch64__)
#define OPAQUE(m) __asm__ volatile("" : "+w"(m))
#else
#define OPAQUE(m) ((m) = *(volatile double *)&(m))     /* a load, any compiler */
#endif

static volatile double sink;    /* where every probe's sums end */


/* Portable: plain C doubles ------------------------------------------------ */

/* What the build makes of plain C, as it does of the kernels' portable
   loops: GCC 12 -O3 keeps the twelve updates scalar, clang 14 packs eight
   of them into SSE2 pairs. */

#define PORTABLE_DECLARE(i) double a##i = 0.0, x##i = 1.0 + ((i) + 1) / 64.0;
#define PORTABLE_UPDATE(i) a##i = a##i + x##i * m;
#define PORTABLE_SUM(i) sum += a##i;

static void mul_add_portable(uint64_t iterations)
{
    double m = 1e-9, sum = 0.0;
    uint64_t n;
    EACH(PORTABLE_DECLARE)
    for (n = 0; n < iterations; n++) {
        OPAQUE(m);
        EACH(PORTABLE_UPDATE)
    }
    EACH(PORTABLE_SUM)
    sink = sum;
}


/* AVX2 and AVX-512: 256- and 512-bit registers ----------------------------- */

#if defined(__GNUC__) && defined(__x86_64__)
#define HAVE_X86_VECTORS 1
#include <immintrin.h>

#define AVX2_DECLARE(i) __m256d a##i = _mm256_setzero_pd(), x##i = _mm256_set1_pd(1.0 + ((i) + 1) / 64.0);
#define AVX2_UPDATE(i) a##i = _mm256_add_pd(a##i, _mm256_mul_pd(x##i, m));
#define AVX2_SUM(i) sum = _mm256_add_pd(sum, a##i);

__attribute__((target("avx2")))
static void mul_add_avx2(uint64_t iterations)
{
    __m256d m = _mm256_set1_pd(1e-9), sum = _mm256_setzero_pd();
    double lanes[4];
    uint64_t n;
    EACH(AVX2_DECLARE)
    for (n = 0; n < iterations; n++) {
        __asm__ volatile("" : "+x"(m));
        EACH(AVX2_UPDATE)
    }
    EACH(AVX2_SUM)
    _mm256_storeu_pd(lanes, sum);
    sink = lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

#define AVX512_DECLARE(i) __m512d a##i = _mm512_setzero_pd(), x##i = _mm512_set1_pd(1.0 + ((i) + 1) / 64.0);
#define AVX512_UPDATE(i) a##i = _mm512_add_pd(a##i, _mm512_mul_pd(x##i, m));
#define AVX512_SUM(i) sum = _mm512_add_pd(sum, a##i);

__attribute__((target("avx512f")))
static void mul_add_avx512(uint64_t iterations)
{
    __m512d m = _mm512_set1_pd(1e-9), sum = _mm512_setzero_pd();
    double lanes[8];
    uint64_t n;
    int k;
    EACH(AVX512_DECLARE)
    for (n = 0; n < iterations; n++) {
        __asm__ volatile("" : "+v"(m));     /* "v": any of the 32 zmm registers */
        EACH(AVX512_UPDATE)
    }
    EACH(AVX512_SUM)
    _mm512_storeu_pd(lanes, sum);
    for (k = 1; k < 8; k++)
        lanes[0] += lanes[k];
    sink = lanes[0];
}
#endif


int peak_supported(int isa)
{
    switch (isa) {
    case PEAK_PORTABLE:
        return 1;
#ifdef HAVE_X86_VECTORS
    case PEAK_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    case PEAK_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
#endif
    default:
        return 0;
    }
}

int peak_lanes(int isa)
{
    switch (isa) {
    case PEAK_PORTABLE: return 1;
    case PEAK_AVX2: return 4;
    case PEAK_AVX512: return 8;
    default: return 0;
    }
}

void peak_mul_add(int isa, uint64_t iterations)
{
    if (!peak_supported(isa))
        return;
    switch (isa) {
#ifdef HAVE_X86_VECTORS
    case PEAK_AVX2:
        mul_add_avx2(iterations);
        break;
    case PEAK_AVX512:
        mul_add_avx512(iterations);
        break;
#endif
    default:
        mul_add_portable(iterations);
    }
}
