/*
 * Adam's passes (adam.h) on x86-64's vectors: four parameters (AVX2 with
 * FMA) or eight (AVX-512), each loop compiled for its instruction set and
 * called only on a CPU that has it (cpu.h).
 */
#include <stdint.h>

#include "adam.h"
#include "cpu.h"
#include "pyfloat.h"

#ifdef HAVE_AVX2
#include <immintrin.h>

/*
 * The square and the root come from a product and a square root, whose
 * exact errors (one fused multiply-add each: an exact operation, unlike
 * a*b+c in two) show whether they are pow()'s results too, as in
 * pyfloat_square and pyfloat_root. A lane where either may not be takes
 * pow's instead, listed in its pass.
 */

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
/* pyfloat_ulp of four positive doubles */
__attribute__((target("avx2,fma")))
static __m256d ulp_avx2(__m256d x)
{
    const __m256d exponent = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7ff0000000000000LL));
    return _mm256_mul_pd(_mm256_and_pd(x, exponent), _mm256_set1_pd(0x1p-52));
}

/* lanes where low <= x <= high */
__attribute__((target("avx2,fma")))
static __m256d within_avx2(__m256d x, double low, double high)
{
    return _mm256_and_pd(_mm256_cmp_pd(x, _mm256_set1_pd(low), _CMP_GE_OQ),
                         _mm256_cmp_pd(x, _mm256_set1_pd(high), _CMP_LE_OQ));
}

/* (the loops list parameters' numbers in 64-bit lanes) */
typedef char ptrdiff_t_is_64_bits[sizeof(ptrdiff_t) == 8 ? 1 : -1];

/* the lane numbers of the bits set in a mask of four, first to last */
static const int64_t lanes_of[16][4] = {
    {0}, {0}, {1}, {0, 1}, {2}, {0, 2}, {1, 2}, {0, 1, 2}, {3}, {0, 3}, {1, 3}, {0, 1, 3},
    {2, 3}, {0, 2, 3}, {1, 2, 3}, {0, 1, 2, 3}};

/* appends to listed (at count, returned grown) j + the lanes not set in ok:
   all four are stored, and there is room for them while count <= j and
   j + 4 <= ADAM_CHUNK */
__attribute__((target("avx2,fma")))
static inline ptrdiff_t list_avx2(ptrdiff_t *listed, ptrdiff_t count, ptrdiff_t j, __m256d ok)
{
    const int bad = ~_mm256_movemask_pd(ok) & 15;
    _mm256_storeu_si256((__m256i *)(listed + count), _mm256_add_epi64(
        _mm256_set1_epi64x(j), _mm256_loadu_si256((const __m256i *)lanes_of[bad])));
    return count + __builtin_popcount((unsigned)bad);
}

/* Adam's passes on vectors of four */
__attribute__((target("avx2,fma")))
ptrdiff_t adam_avx2(double *p, double *g, double *m, double *v, ptrdiff_t n,
                    double lr_t, double beta1, double beta2, double eps,
                    double bias1, double bias2)
{
    const __m256d b1 = _mm256_set1_pd(beta1), b2 = _mm256_set1_pd(beta2);
    const __m256d c1 = _mm256_set1_pd(1 - beta1), c2 = _mm256_set1_pd(1 - beta2);
    const __m256d d1 = _mm256_set1_pd(bias1), d2 = _mm256_set1_pd(bias2);
    const __m256d lr = _mm256_set1_pd(lr_t), e = _mm256_set1_pd(eps), zero = _mm256_setzero_pd();
    const __m256d sign = _mm256_set1_pd(-0.0), near = _mm256_set1_pd(PYFLOAT_NEAR_HALF);
    double square[ADAM_CHUNK], root[ADAM_CHUNK];  /* a chunk's g ** 2 (then m_hat), v_hat ** 0.5 */
    ptrdiff_t listed[ADAM_CHUNK], start, end = 0, count, i, k;
    const int stream = n >= ADAM_STREAM;

    for (start = 0; start + 4 <= n; start = end) {
        end = start + ADAM_CHUNK < n ? start + ADAM_CHUNK : start + (n - start) / 4 * 4;
        /* g ** 2 */
        count = 0;
        for (i = start; i < end; i += 4) {
            const __m256d gi = _mm256_loadu_pd(g + i), sq = _mm256_mul_pd(gi, gi);
            const __m256d error = _mm256_andnot_pd(sign, _mm256_fmsub_pd(gi, gi, sq));
            __m256d ok;
            if (stream && i % 8 == 0)           /* a line of 64 bytes at a time */
                ADAM_AHEAD(i, n, p, g, m, v);
            ok = _mm256_and_pd(within_avx2(_mm256_andnot_pd(sign, gi), 0x1p-60, 0x1p+60),
                               _mm256_cmp_pd(error, _mm256_mul_pd(near, ulp_avx2(sq)),
                                             _CMP_LT_OQ));
            ok = _mm256_or_pd(ok, _mm256_cmp_pd(gi, zero, _CMP_EQ_OQ));
            _mm256_storeu_pd(square + (i - start), sq);
            count = list_avx2(listed, count, i - start, ok);
        }
        for (k = 0; k < count; k++)     /* (an overflow leaves the product's inf) */
            pyfloat_pow(g[start + listed[k]], 2.0, &square[listed[k]]);
        /* the moments, m_hat and v_hat; then v_hat ** 0.5 */
        for (i = start; i < end; i += 4) {
            const __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_loadu_pd(m + i)),
                                             _mm256_mul_pd(c1, _mm256_loadu_pd(g + i)));
            const __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_loadu_pd(v + i)),
                                             _mm256_mul_pd(c2, _mm256_loadu_pd(square + (i - start))));
            _mm256_storeu_pd(m + i, mi);
            _mm256_storeu_pd(v + i, vi);
            _mm256_storeu_pd(square + (i - start), _mm256_div_pd(mi, d1));     /* m_hat */
            _mm256_storeu_pd(root + (i - start), _mm256_div_pd(vi, d2));       /* v_hat */
        }
        count = 0;
        for (i = start; i < end; i += 4) {
            const __m256d v_hat = _mm256_loadu_pd(root + (i - start)), r = _mm256_sqrt_pd(v_hat);
            /* the exact root is r + d / (2 r), d = v_hat - r**2 */
            const __m256d error = _mm256_andnot_pd(sign, _mm256_fnmadd_pd(r, r, v_hat));
            const __m256d ok = _mm256_or_pd(
                _mm256_and_pd(within_avx2(v_hat, 0x1p-120, 0x1p+120),
                              _mm256_cmp_pd(error, _mm256_mul_pd(
                                  _mm256_mul_pd(near, _mm256_set1_pd(2.0)),
                                  _mm256_mul_pd(ulp_avx2(r), r)), _CMP_LT_OQ)),
                _mm256_cmp_pd(v_hat, zero, _CMP_EQ_OQ));
            _mm256_storeu_pd(root + (i - start), r);
            count = list_avx2(listed, count, i - start, ok);
        }
        for (k = 0; k < count; k++)     /* v_hat again: the same division */
            pyfloat_pow(v[start + listed[k]] / bias2, 0.5, &root[listed[k]]);
        /* p -= lr_t * m_hat / (v_hat ** 0.5 + eps) */
        for (i = start; i < end; i += 4) {
            _mm256_storeu_pd(p + i, _mm256_sub_pd(_mm256_loadu_pd(p + i), _mm256_div_pd(
                _mm256_mul_pd(lr, _mm256_loadu_pd(square + (i - start))),
                _mm256_add_pd(_mm256_loadu_pd(root + (i - start)), e))));
            _mm256_storeu_pd(g + i, zero);
        }
    }
    return end;
}

/* the same on vectors of eight */
__attribute__((target("avx512f")))
static __m512d ulp_avx512(__m512d x)
{
    const __m512i exponent = _mm512_set1_epi64(0x7ff0000000000000LL);
    return _mm512_mul_pd(_mm512_castsi512_pd(_mm512_and_epi64(_mm512_castpd_si512(x), exponent)),
                         _mm512_set1_pd(0x1p-52));
}

__attribute__((target("avx512f")))
static __mmask8 within_avx512(__m512d x, double low, double high)
{
    return _mm512_cmp_pd_mask(x, _mm512_set1_pd(low), _CMP_GE_OQ) &
           _mm512_cmp_pd_mask(x, _mm512_set1_pd(high), _CMP_LE_OQ);
}

/*
 * a / b for a divisor b of every lane (a bias correction) without the
 * divider, the AVX-512 loop's bottleneck (its division of eight lanes
 * takes twice as long as one of four; in the AVX2 loop the operations added
 * cost more than the division they save). q = a * (1 / b), corrected once
 * by the remainder: q += (a - q b) * (1 / b). Where the new remainder
 * a - q b (exact by fused multiply-add when q is within an ulp of a / b) is
 * below half an ulp of q times b, q is a / b correctly rounded, the
 * division's result: ties cannot happen (a quotient of doubles is never
 * halfway between two). Elsewhere ok is cleared and the lane is listed, to
 * be divided after its pass, as it is where q is a power of two (the
 * doubles below it are closer) or near the ends of the range (the
 * remainder could underflow).
 * Zeros divide exactly: a * (1 / b) keeps the sign. divide_setup makes
 * 1 / b and b / 2.
 */
struct divisor {
    double b, r, half;
};

/* b's reciprocal and half, if b is far enough from 0 and infinity for
   divide_avx512's remainders; 0 if not (then the vector loops are not used) */
static int divide_setup(double b, struct divisor *d)
{
    if (!(b >= 0x1p-60 && b <= 0x1p+60))
        return 0;
    d->b = b;
    d->r = 1.0 / b;
    d->half = 0.5 * b;
    return 1;
}

__attribute__((target("avx512f")))
static __m512d divide_avx512(__m512d a, const struct divisor *d, __mmask8 *ok)
{
    const __m512d b = _mm512_set1_pd(d->b), r = _mm512_set1_pd(d->r), zero = _mm512_setzero_pd();
    const __m512i mantissa = _mm512_set1_epi64(0x000fffffffffffffLL);
    const __m512d q0 = _mm512_mul_pd(a, r);
    const __m512d q = _mm512_fmadd_pd(_mm512_fnmadd_pd(q0, b, a), r, q0);
    const __m512d rest = _mm512_abs_pd(_mm512_fnmadd_pd(q, b, a));
    const __mmask8 exact = _mm512_cmp_pd_mask(a, zero, _CMP_EQ_OQ);
    __mmask8 good = _mm512_cmp_pd_mask(rest, _mm512_mul_pd(ulp_avx512(q), _mm512_set1_pd(d->half)),
                                       _CMP_LT_OQ);
    good &= within_avx512(_mm512_abs_pd(q), 0x1p-900, 0x1p+900);
    good &= _mm512_test_epi64_mask(_mm512_castpd_si512(q), mantissa);
    *ok &= good | exact;
    return _mm512_mask_blend_pd(exact, q, q0);
}

/* appends to listed (at count, returned grown) j + the lanes not set in ok,
   as list_avx2 does: compressed in a register, then stored whole (a
   compressing store to memory is microcoded on AMD's Zen 4, measured: Adam
   1.6x slower) */
__attribute__((target("avx512f")))
static inline ptrdiff_t list_avx512(ptrdiff_t *listed, ptrdiff_t count, ptrdiff_t j, __mmask8 ok)
{
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    _mm512_storeu_si512(listed + count, _mm512_maskz_compress_epi64(
        (__mmask8)~ok, _mm512_add_epi64(_mm512_set1_epi64(j), lanes)));
    return count + __builtin_popcount((unsigned)(__mmask8)~ok);
}

/* Adam's passes on vectors of eight, the quotients and the roots in one,
   the bias corrections divided by divide_avx512: the quotients it cannot
   vouch for are listed too, and divided after their pass */
__attribute__((target("avx512f")))
ptrdiff_t adam_avx512(double *p, double *g, double *m, double *v, ptrdiff_t n,
                      double lr_t, double beta1, double beta2, double eps,
                      double bias1, double bias2)
{
    const __m512d b1 = _mm512_set1_pd(beta1), b2 = _mm512_set1_pd(beta2);
    const __m512d c1 = _mm512_set1_pd(1 - beta1), c2 = _mm512_set1_pd(1 - beta2);
    const __m512d lr = _mm512_set1_pd(lr_t), e = _mm512_set1_pd(eps), zero = _mm512_setzero_pd();
    const __m512d near = _mm512_set1_pd(PYFLOAT_NEAR_HALF);
    double square[ADAM_CHUNK], root[ADAM_CHUNK];  /* a chunk's g ** 2 (then m_hat), v_hat ** 0.5 */
    ptrdiff_t listed[ADAM_CHUNK], divided[ADAM_CHUNK], start, end = 0, count, quotients, i, k;
    struct divisor by1, by2;

    if (!divide_setup(bias1, &by1) || !divide_setup(bias2, &by2))
        return 0;
    for (start = 0; start + 8 <= n; start = end) {
        end = start + ADAM_CHUNK < n ? start + ADAM_CHUNK : start + (n - start) / 8 * 8;
        /* g ** 2 */
        count = 0;
        for (i = start; i < end; i += 8) {
            const __m512d gi = _mm512_loadu_pd(g + i), sq = _mm512_mul_pd(gi, gi);
            const __m512d error = _mm512_abs_pd(_mm512_fmsub_pd(gi, gi, sq));
            __mmask8 ok;
            ADAM_AHEAD(i, n, p, g, m, v);
            ok = within_avx512(_mm512_abs_pd(gi), 0x1p-60, 0x1p+60) &
                 _mm512_cmp_pd_mask(error, _mm512_mul_pd(near, ulp_avx512(sq)), _CMP_LT_OQ);
            ok |= _mm512_cmp_pd_mask(gi, zero, _CMP_EQ_OQ);
            _mm512_storeu_pd(square + (i - start), sq);
            count = list_avx512(listed, count, i - start, ok);
        }
        for (k = 0; k < count; k++)     /* (an overflow leaves the product's inf) */
            pyfloat_pow(g[start + listed[k]], 2.0, &square[listed[k]]);
        /* the moments, m_hat, and v_hat ** 0.5 */
        count = quotients = 0;
        for (i = start; i < end; i += 8) {
            const __m512d gi = _mm512_loadu_pd(g + i);
            const __m512d mi = _mm512_add_pd(_mm512_mul_pd(b1, _mm512_loadu_pd(m + i)),
                                             _mm512_mul_pd(c1, gi));
            const __m512d vi = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_loadu_pd(v + i)),
                                             _mm512_mul_pd(c2, _mm512_loadu_pd(square + (i - start))));
            __mmask8 m_ok = 0xff, ok = 0xff;
            const __m512d m_hat = divide_avx512(mi, &by1, &m_ok);
            const __m512d v_hat = divide_avx512(vi, &by2, &ok), r = _mm512_sqrt_pd(v_hat);
            /* the exact root is r + d / (2 r), d = v_hat - r**2 */
            const __m512d error = _mm512_abs_pd(_mm512_fnmadd_pd(r, r, v_hat));
            ok &= (within_avx512(v_hat, 0x1p-120, 0x1p+120) &
                   _mm512_cmp_pd_mask(error, _mm512_mul_pd(_mm512_mul_pd(near, _mm512_set1_pd(2.0)),
                                      _mm512_mul_pd(ulp_avx512(r), r)), _CMP_LT_OQ)) |
                  _mm512_cmp_pd_mask(v_hat, zero, _CMP_EQ_OQ);
            _mm512_storeu_pd(m + i, mi);
            _mm512_storeu_pd(v + i, vi);
            _mm512_storeu_pd(square + (i - start), m_hat);
            _mm512_storeu_pd(root + (i - start), r);
            quotients = list_avx512(divided, quotients, i - start, m_ok);
            count = list_avx512(listed, count, i - start, ok);
        }
        for (k = 0; k < quotients; k++)
            square[divided[k]] = m[start + divided[k]] / bias1;
        for (k = 0; k < count; k++)     /* v_hat divided, and its root checked, as one */
            root[listed[k]] = pyfloat_root(v[start + listed[k]] / bias2);
        /* p -= lr_t * m_hat / (v_hat ** 0.5 + eps) */
        for (i = start; i < end; i += 8) {
            _mm512_storeu_pd(p + i, _mm512_sub_pd(_mm512_loadu_pd(p + i), _mm512_div_pd(
                _mm512_mul_pd(lr, _mm512_loadu_pd(square + (i - start))),
                _mm512_add_pd(_mm512_loadu_pd(root + (i - start)), e))));
            _mm512_storeu_pd(g + i, zero);
        }
    }
    return end;
}
#endif

