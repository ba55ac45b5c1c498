/*
 * Adam's passes (adam.h) on vectors of eight parameters: AVX-512, compiled
 * for it and called only on a CPU that has it (cpu.h). The checks and the
 * quotients are adam_avx2.c's, on vectors of eight.
 */
#include "adam.h"
#include "cpu.h"
#include "pyfloat.h"

#ifdef HAVE_AVX2
#include <immintrin.h>

/* k times pyfloat_ulp of eight positive doubles (ulp_avx2) */
__attribute__((target("avx512f")))
static inline __m512d ulp_avx512(__m512d x, double ulp_k)
{
    const __m512i exponent = _mm512_set1_epi64(0x7ff0000000000000LL);
    return _mm512_mul_pd(_mm512_castsi512_pd(_mm512_and_epi64(_mm512_castpd_si512(x), exponent)),
                         _mm512_set1_pd(ulp_k));
}

__attribute__((target("avx512f")))
static __mmask8 within_avx512(__m512d x, double low, double high)
{
    return _mm512_cmp_pd_mask(x, _mm512_set1_pd(low), _CMP_GE_OQ) &
           _mm512_cmp_pd_mask(x, _mm512_set1_pd(high), _CMP_LE_OQ);
}

/* divide_avx2 and in_range_avx2 on vectors of eight */
__attribute__((target("avx512f")))
static inline __m512d divide_avx512(__m512d a, __m512d b, __m512d y)
{
    const __m512d q0 = _mm512_mul_pd(a, y);
    const __m512d q1 = _mm512_fnmadd_pd(_mm512_fmsub_pd(q0, b, a), y, q0);
    return _mm512_fnmadd_pd(_mm512_fmsub_pd(q1, b, a), y, q1);
}

__attribute__((target("avx512f")))
static inline __mmask8 in_range_avx512(__m512d a)
{
    const __m512d size = _mm512_abs_pd(a);
    return _mm512_cmp_pd_mask(size, _mm512_set1_pd(0x1p+800), _CMP_LE_OQ) &
           (_mm512_cmp_pd_mask(size, _mm512_set1_pd(0x1p-800), _CMP_GE_OQ) |
            _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_EQ_OQ));
}

/* Adam's passes on vectors of eight: the squares; the moments, their
   quotients and the roots in one; the updates */
__attribute__((target("avx512f")))
ptrdiff_t adam_avx512(double *p, double *g, double *m, double *v, ptrdiff_t n,
                      double lr_t, double beta1, double beta2, double eps,
                      double bias1, double bias2, struct adam_error *error)
{
    const __m512d b1 = _mm512_set1_pd(beta1), b2 = _mm512_set1_pd(beta2);
    const __m512d c1 = _mm512_set1_pd(1 - beta1), c2 = _mm512_set1_pd(1 - beta2);
    const __m512d lr = _mm512_set1_pd(lr_t), e = _mm512_set1_pd(eps), zero = _mm512_setzero_pd();
    double square[ADAM_CHUNK], root[ADAM_CHUNK];  /* a chunk's g ** 2 (then m_hat), v_hat ** 0.5 */
    unsigned char oks[ADAM_OKS(8)];     /* each vector's checks passed (adam_list) */
    ptrdiff_t listed[ADAM_CHUNK], start, end = 0, count, i, k;
    double r1, r2;
    __m512d d1, d2, y1, y2;
    __mmask8 in_range;

    if (!reciprocal_of(bias1, &r1) || !reciprocal_of(bias2, &r2))
        return 0;
    d1 = _mm512_set1_pd(bias1);
    d2 = _mm512_set1_pd(bias2);
    y1 = _mm512_set1_pd(r1);
    y2 = _mm512_set1_pd(r2);
    for (start = 0; start + 8 <= n; start = end) {
        end = start + ADAM_CHUNK < n ? start + ADAM_CHUNK : start + (n - start) / 8 * 8;
        /* g ** 2 */
        for (i = start; i < end; i += 8) {
            const __m512d gi = _mm512_loadu_pd(g + i), sq = _mm512_mul_pd(gi, gi);
            const __m512d error = _mm512_abs_pd(_mm512_fmsub_pd(gi, gi, sq));
            __mmask8 ok;
            ADAM_AHEAD(i, n, p, g, m, v);
            ok = within_avx512(_mm512_abs_pd(gi), 0x1p-60, 0x1p+60) &
                 _mm512_cmp_pd_mask(error, ulp_avx512(sq, PYFLOAT_NEAR_HALF * 0x1p-52),
                                    _CMP_LT_OQ);
            ok |= _mm512_cmp_pd_mask(gi, zero, _CMP_EQ_OQ);
            _mm512_storeu_pd(square + (i - start), sq);
            oks[(i - start) / 8] = ok;
        }
        count = adam_list(oks, (end - start) / 8, 8, listed);
        for (k = 0; k < count; k++)     /* (an overflow leaves the product's inf) */
            adam_failed(error, 2 * (start + listed[k]),
                        pyfloat_pow(g[start + listed[k]], 2.0, &square[listed[k]]));
        /* the moments, m_hat, and v_hat ** 0.5 */
        in_range = 0xff;
        for (i = start; i < end; i += 8) {
            const __m512d gi = _mm512_loadu_pd(g + i);
            const __m512d mi = _mm512_add_pd(_mm512_mul_pd(b1, _mm512_loadu_pd(m + i)),
                                             _mm512_mul_pd(c1, gi));
            const __m512d vi = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_loadu_pd(v + i)),
                                             _mm512_mul_pd(c2, _mm512_loadu_pd(square + (i - start))));
            const __m512d m_hat = divide_avx512(mi, d1, y1);
            const __m512d v_hat = divide_avx512(vi, d2, y2), r = _mm512_sqrt_pd(v_hat);
            __mmask8 ok;
            /* the exact root is r + d / (2 r), d = v_hat - r**2 */
            const __m512d error = _mm512_abs_pd(_mm512_fnmadd_pd(r, r, v_hat));
            ok = (within_avx512(v_hat, 0x1p-120, 0x1p+120) &
                  _mm512_cmp_pd_mask(error, _mm512_mul_pd(
                                         ulp_avx512(r, 2.0 * PYFLOAT_NEAR_HALF * 0x1p-52), r),
                                     _CMP_LT_OQ)) |
                 _mm512_cmp_pd_mask(v_hat, zero, _CMP_EQ_OQ);
            _mm512_storeu_pd(m + i, mi);
            _mm512_storeu_pd(v + i, vi);
            _mm512_storeu_pd(square + (i - start), m_hat);
            _mm512_storeu_pd(root + (i - start), r);
            in_range &= in_range_avx512(mi) & in_range_avx512(vi);
            oks[(i - start) / 8] = ok;
        }
        if (in_range != 0xff)           /* a moment out of range: the divider's, and pow's */
            for (i = start; i < end; i++) {
                const double v_hat = v[i] / bias2;
                square[i - start] = m[i] / bias1;
                root[i - start] = pyfloat_root(v_hat);
                if (v_hat < 0.0 && isfinite(v_hat))
                    adam_failed(error, 2 * i + 1, PYFLOAT_COMPLEX);
            }
        else {
            count = adam_list(oks, (end - start) / 8, 8, listed);
            for (k = 0; k < count; k++)     /* v_hat again: the same division */
                adam_failed(error, 2 * (start + listed[k]) + 1,
                            pyfloat_pow(v[start + listed[k]] / bias2, 0.5, &root[listed[k]]));
        }
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

