/*
 * microgpt.py's Adam over all the parameters at once (fused_adam in
 * fused.h): portable C, plain and on vectors of two, and on x86-64 the same
 * formulas on vectors of four (AVX2) or eight (AVX-512) parameters
 * (adam_avx2.c, adam_avx512.c), chosen by cpu.h. Ranges of parameters are independent, so
 * they split among the threads of threads.h.
 */
#include <math.h>
#include <stdint.h>

#include "adam.h"
#include "cpu.h"
#include "fused.h"
#include "pyfloat.h"
#include "threads.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* One parameter's update, microgpt.py's Adam formula by formula: p.grad ** 2
   and v_hat ** 0.5 are pow()'s results (pyfloat_square, pyfloat_root; where
   Python would raise, noted in e as parameter i's) */
static inline void adam_one(double *p, double *g, double *m, double *v, double lr_t,
                            double beta1, double beta2, double eps, double bias1, double bias2,
                            ptrdiff_t i, struct adam_error *e)
{
    double m_hat, v_hat, square;
    square = pyfloat_square(*g);                            /* p.grad ** 2 */
    if (isinf(square) && isfinite(*g))
        adam_failed(e, 2 * i, PYFLOAT_OVERFLOW);
    *m = beta1 * *m + (1 - beta1) * *g;
    *v = beta2 * *v + (1 - beta2) * square;
    m_hat = *m / bias1;
    v_hat = *v / bias2;
    if (v_hat < 0.0 && isfinite(v_hat))
        adam_failed(e, 2 * i + 1, PYFLOAT_COMPLEX);
    *p -= lr_t * m_hat / (pyfloat_root(v_hat) + eps);       /* v_hat ** 0.5 */
    *g = 0.0;
}

#ifdef HAVE_VECTORS
/*
 * Adam's passes (adam.h) on vectors of two parameters, for any target
 * (GCC's vector extensions: SSE2 on x86-64, NEON on ARM): pyfloat_square's
 * and pyfloat_root's checks, operation for operation, the exact errors by
 * Veltkamp's split, as no fused multiply-add can be counted on.
 */
typedef double vec2 __attribute__((vector_size(16)));
typedef double uvec2 __attribute__((vector_size(16), aligned(8), may_alias));
typedef int64_t mask2 __attribute__((vector_size(16)));     /* -1 where true, 0 where not */
#define LOAD2(p) (*(const uvec2 *)(p))
#define STORE2(p, x) (*(uvec2 *)(p) = (x))

static inline vec2 abs2(vec2 x)
{
    return (vec2)((mask2)x & 0x7fffffffffffffffLL);
}

/* k times pyfloat_ulp of two positive doubles, from ulp_k = k * 2**-52: the
   power of two of each times ulp_k, exact (a check's bound in one product) */
static inline vec2 ulp2(vec2 x, double ulp_k)
{
    return (vec2)((mask2)x & 0x7ff0000000000000LL) * ulp_k;
}

static inline vec2 square_error2(vec2 x, vec2 p)    /* pyfloat_square_error */
{
    const vec2 c = PYFLOAT_SPLIT * x, hi = c - (c - x), lo = x - hi;
    return ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
}

static inline vec2 sqrt2(vec2 x)
{
#if defined(__SSE2__)
    return (vec2)_mm_sqrt_pd((__m128d)x);
#elif defined(__aarch64__) && defined(__ARM_NEON)
    return vsqrtq_f64(x);
#else
    return (vec2){sqrt(x[0]), sqrt(x[1])};
#endif
}

/* a & b and a | b of masks: on SSE2 as the instructions of doubles, as GCC 12
   makes & and | of 64-bit lanes' comparisons into steps on each lane */
static inline mask2 and2(mask2 a, mask2 b)
{
#if defined(__SSE2__)
    return (mask2)_mm_and_pd((__m128d)a, (__m128d)b);
#else
    return a & b;
#endif
}

static inline mask2 or2(mask2 a, mask2 b)
{
#if defined(__SSE2__)
    return (mask2)_mm_or_pd((__m128d)a, (__m128d)b);
#else
    return a | b;
#endif
}

/* ok's lanes as adam_list's byte: bit k set where lane k is */
static inline unsigned char bits2(mask2 ok)
{
#if defined(__SSE2__)
    return (unsigned char)_mm_movemask_pd((__m128d)ok);
#else
    return (unsigned char)((ok[0] & 1) | (ok[1] & 2));
#endif
}

static ptrdiff_t adam_vec2(double *p, double *g, double *m, double *v, ptrdiff_t n,
                           double lr_t, double beta1, double beta2, double eps,
                           double bias1, double bias2, struct adam_error *e)
{
    double square[ADAM_CHUNK], root[ADAM_CHUNK];  /* a chunk's g ** 2 (then m_hat), v_hat ** 0.5 */
    unsigned char oks[ADAM_OKS(2)];     /* each vector's checks passed (adam_list) */
    ptrdiff_t listed[ADAM_CHUNK], start, end = 0, count, i, k;

    for (start = 0; start + 2 <= n; start = end) {
        end = start + ADAM_CHUNK < n ? start + ADAM_CHUNK : start + (n - start) / 2 * 2;
        /* g ** 2 */
        for (i = start; i < end; i += 2) {
            const vec2 gi = LOAD2(g + i), sq = gi * gi, a = abs2(gi);
            const mask2 ok = or2(and2(and2(a >= 0x1p-60, a <= 0x1p+60),
                                      abs2(square_error2(gi, sq))
                                      < ulp2(sq, PYFLOAT_NEAR_HALF * 0x1p-52)),
                                 gi == 0.0);
            STORE2(square + (i - start), sq);
            oks[(i - start) / 2] = bits2(ok);
        }
        count = adam_list(oks, (end - start) / 2, 2, listed);
        for (k = 0; k < count; k++)     /* (an overflow leaves the product's inf) */
            adam_failed(e, 2 * (start + listed[k]),
                        pyfloat_pow(g[start + listed[k]], 2.0, &square[listed[k]]));
        /* the moments, m_hat and v_hat; then v_hat ** 0.5 */
        for (i = start; i < end; i += 2) {
            const vec2 mi = beta1 * LOAD2(m + i) + (1 - beta1) * LOAD2(g + i);
            const vec2 vi = beta2 * LOAD2(v + i) + (1 - beta2) * LOAD2(square + (i - start));
            STORE2(m + i, mi);
            STORE2(v + i, vi);
            STORE2(square + (i - start), mi / bias1);       /* m_hat */
            STORE2(root + (i - start), vi / bias2);         /* v_hat */
        }
        for (i = start; i < end; i += 2) {
            const vec2 v_hat = LOAD2(root + (i - start)), r = sqrt2(v_hat), rr = r * r;
            const mask2 ok = or2(and2(and2(v_hat >= 0x1p-120, v_hat <= 0x1p+120),
                                      abs2((v_hat - rr) - square_error2(r, rr))
                                      < ulp2(r, 2.0 * PYFLOAT_NEAR_HALF * 0x1p-52) * r),
                                 v_hat == 0.0);
            STORE2(root + (i - start), r);
            oks[(i - start) / 2] = bits2(ok);
        }
        count = adam_list(oks, (end - start) / 2, 2, listed);
        for (k = 0; k < count; k++)     /* v_hat again: the same division */
            adam_failed(e, 2 * (start + listed[k]) + 1,
                        pyfloat_pow(v[start + listed[k]] / bias2, 0.5, &root[listed[k]]));
        /* p -= lr_t * m_hat / (v_hat ** 0.5 + eps) */
        for (i = start; i < end; i += 2) {
            STORE2(p + i, LOAD2(p + i) - lr_t * LOAD2(square + (i - start)) /
                                         (LOAD2(root + (i - start)) + eps));
            STORE2(g + i, (vec2){0.0});
        }
    }
    return end;
}
#endif

/* fused_adam of parameters start .. start + n - 1 (their numbers from 0 in e) */
static void adam_range(double *p, double *g, double *m, double *v, ptrdiff_t n,
                       double lr_t, double beta1, double beta2, double eps,
                       double bias1, double bias2, struct adam_error *e)
{
    ptrdiff_t i = 0;

#ifdef HAVE_AVX2
    if (kernel_isa() == ISA_AVX512)
        i = adam_avx512(p, g, m, v, n, lr_t, beta1, beta2, eps, bias1, bias2, e);
    else if (kernel_isa() == ISA_AVX2)
        i = adam_avx2(p, g, m, v, n, lr_t, beta1, beta2, eps, bias1, bias2, e);
    else
#endif
#ifdef HAVE_VECTORS
    if (kernel_isa() == ISA_PORTABLE)
        i = adam_vec2(p, g, m, v, n, lr_t, beta1, beta2, eps, bias1, bias2, e);
#endif
    for (; i < n; i++)
        adam_one(p + i, g + i, m + i, v + i, lr_t, beta1, beta2, eps, bias1, bias2, i, e);
}

struct adam_job {
    double *p, *g, *m, *v;
    ptrdiff_t n;
    double lr_t, beta1, beta2, eps, bias1, bias2;
    struct adam_error *errors;      /* each part's, numbered from its start */
    ptrdiff_t *starts;
};

static void adam_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct adam_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->n, 8, part, parts, &start, &end);
    j->starts[part] = start;
    adam_range(j->p + start, j->g + start, j->m + start, j->v + start, end - start, j->lr_t,
               j->beta1, j->beta2, j->eps, j->bias1, j->bias2, &j->errors[part]);
}

int fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
               double lr_t, double beta1, double beta2, double eps,
               double bias1, double bias2)
{
    struct adam_error errors[THREADS_MAX], first = {0, PYFLOAT_OK};
    ptrdiff_t starts[THREADS_MAX], k;
    struct adam_job job = {p, g, m, v, n, lr_t, beta1, beta2, eps, bias1, bias2, errors, starts};
    /* a parameter's update is some twenty operations */
    const ptrdiff_t parts = threads_parts(20.0 * n, (n + 7) / 8);

    for (k = 0; k < parts; k++)
        job.errors[k].status = PYFLOAT_OK;
    threads_run(adam_part, &job, parts);
    for (k = 0; k < parts; k++)
        adam_failed(&first, 2 * job.starts[k] + job.errors[k].at, job.errors[k].status);
    return first.status;
}
