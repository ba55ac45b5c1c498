/*
 * Adam's passes (adam.h) on vectors of four parameters: AVX2 with FMA,
 * compiled for it and called only on a CPU that has it (cpu.h).
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

/*
 * The bias corrections m / bias1 and v / bias2 are divisions by a number of
 * every lane, made without the divider, which the roots and the updates'
 * divisions keep busy: y = 1 / b rounded is within half an ulp of 1 / b, so
 * q0 = a y is within two ulps of a / b; one correction by the remainder,
 * q1 = q0 - (q0 b - a) y, leaves q1 within an ulp; then the remainder
 * q1 b - a is exact, and a second correction rounds to a / b itself, the
 * division's result (Markstein's theorem: IBM J. Res. Dev. 34(1), 1990).
 * Each step is one fused multiply-add, rounded once. It holds while the
 * remainders cannot underflow nor the products overflow: b in [2**-60,
 * 2**60] (else the vector loops are not used) and a zero or |a| in
 * [2**-800, 2**800] (a chunk with another moment is divided by the divider).
 * Zeros keep their sign: the remainder q b - a of a zero is +0.0, and
 * q - (+0.0) y is q.
 */

/* a / b from y = 1 / b, for a zero or |a| in [2**-800, 2**800] */
__attribute__((target("avx2,fma")))
static inline __m256d divide_avx2(__m256d a, __m256d b, __m256d y)
{
    const __m256d q0 = _mm256_mul_pd(a, y);
    const __m256d q1 = _mm256_fnmadd_pd(_mm256_fmsub_pd(q0, b, a), y, q0);
    return _mm256_fnmadd_pd(_mm256_fmsub_pd(q1, b, a), y, q1);
}

/* lanes where divide_avx2 may take a: zero, or |a| in [2**-800, 2**800] */
__attribute__((target("avx2,fma")))
static inline __m256d in_range_avx2(__m256d a)
{
    const __m256d size = _mm256_andnot_pd(_mm256_set1_pd(-0.0), a);
    return _mm256_and_pd(_mm256_cmp_pd(size, _mm256_set1_pd(0x1p+800), _CMP_LE_OQ),
                         _mm256_or_pd(_mm256_cmp_pd(size, _mm256_set1_pd(0x1p-800), _CMP_GE_OQ),
                                      _mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_EQ_OQ)));
}

/* k times pyfloat_ulp of four positive doubles, from ulp_k = k * 2**-52:
   the power of two of each times ulp_k, exact (a check's bound in one
   product) */
__attribute__((target("avx2,fma")))
static inline __m256d ulp_avx2(__m256d x, double ulp_k)
{
    const __m256d exponent = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7ff0000000000000LL));
    return _mm256_mul_pd(_mm256_and_pd(x, exponent), _mm256_set1_pd(ulp_k));
}

/* lanes where low <= x <= high */
__attribute__((target("avx2,fma")))
static inline __m256d within_avx2(__m256d x, double low, double high)
{
    return _mm256_and_pd(_mm256_cmp_pd(x, _mm256_set1_pd(low), _CMP_GE_OQ),
                         _mm256_cmp_pd(x, _mm256_set1_pd(high), _CMP_LE_OQ));
}

/*
 * The AVX2 loop runs two chunks' passes at once: a chunk's roots beside the
 * next one's squares, then its updates beside the next one's moments. The
 * roots and the updates wait for the divider, the squares and the moments
 * (their quotients by fused multiply-adds) for the other units: together
 * both run (Adam 11-16% faster than the passes one after the other, on
 * Intel's Xeon; the AVX-512 loop, whose pass of the moments also takes the
 * roots, was not faster so).
 */
struct adam4 {
    __m256d b1, b2, c1, c2, d1, d2, y1, y2, lr, e;      /* y1, y2: 1 / bias1, 1 / bias2 */
};

struct chunk4 {
    ptrdiff_t start, end;                   /* its parameters */
    __m256d in_range;                       /* lanes whose every moment was in range */
    double square[ADAM_CHUNK], root[ADAM_CHUNK];  /* g ** 2 (then m_hat); v_hat (then its root) */
    unsigned char ok_squares[ADAM_OKS(4)], ok_roots[ADAM_OKS(4)];  /* (adam_list) */
};

/* the chunk of parameters from start, as yet without squares */
__attribute__((target("avx2,fma")))
static void chunk4_begin(struct chunk4 *h, ptrdiff_t start, ptrdiff_t n)
{
    h->start = start;
    h->end = start + ADAM_CHUNK < n ? start + ADAM_CHUNK : start + (n - start) / 4 * 4;
    h->in_range = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
}

/*
 * The passes below take a chunk's arrays and their indices (i of the
 * parameters, j = i - the chunk's start) as arguments, and the loops keep
 * them and the moments' range in local variables. Read through the chunk
 * (struct chunk4), which a vector store may write for all the compiler
 * knows, they were loaded again at every vector, and the range stored
 * too: a chain through memory from each vector's moments to the next
 * one's (Adam 3-6% slower, on Intel's Xeon).
 */

/* g ** 2, for parameters i .. i + 3 */
__attribute__((target("avx2,fma")))
static inline void squares4(const double *g, double *square, unsigned char *oks, ptrdiff_t i,
                            ptrdiff_t j)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256d gi = _mm256_loadu_pd(g + i), sq = _mm256_mul_pd(gi, gi);
    const __m256d error = _mm256_andnot_pd(sign, _mm256_fmsub_pd(gi, gi, sq));
    const __m256d ok = _mm256_or_pd(
        _mm256_and_pd(within_avx2(_mm256_andnot_pd(sign, gi), 0x1p-60, 0x1p+60),
                      _mm256_cmp_pd(error, ulp_avx2(sq, PYFLOAT_NEAR_HALF * 0x1p-52), _CMP_LT_OQ)),
        _mm256_cmp_pd(gi, _mm256_setzero_pd(), _CMP_EQ_OQ));
    _mm256_storeu_pd(square + j, sq);
    oks[j / 4] = (unsigned char)_mm256_movemask_pd(ok);
}

/* after the squares: pow's where a check failed (an overflow leaves the
   product's inf) */
static void chunk4_squares_done(struct chunk4 *h, const double *g, struct adam_error *e)
{
    ptrdiff_t listed[ADAM_CHUNK], count, k;
    count = adam_list(h->ok_squares, (h->end - h->start) / 4, 4, listed);
    for (k = 0; k < count; k++)
        adam_failed(e, 2 * (h->start + listed[k]),
                    pyfloat_pow(g[h->start + listed[k]], 2.0, &h->square[listed[k]]));
}

/* the moments; m_hat and v_hat; returns the lanes whose moments are in
   divide_avx2's range */
__attribute__((target("avx2,fma")))
static inline __m256d moments4(const struct adam4 *c, const double *g, double *m, double *v,
                               double *square, double *root, ptrdiff_t i, ptrdiff_t j)
{
    const __m256d mi = _mm256_add_pd(_mm256_mul_pd(c->b1, _mm256_loadu_pd(m + i)),
                                     _mm256_mul_pd(c->c1, _mm256_loadu_pd(g + i)));
    const __m256d vi = _mm256_add_pd(_mm256_mul_pd(c->b2, _mm256_loadu_pd(v + i)),
                                     _mm256_mul_pd(c->c2, _mm256_loadu_pd(square + j)));
    _mm256_storeu_pd(m + i, mi);
    _mm256_storeu_pd(v + i, vi);
    _mm256_storeu_pd(square + j, divide_avx2(mi, c->d1, c->y1));
    _mm256_storeu_pd(root + j, divide_avx2(vi, c->d2, c->y2));
    return _mm256_and_pd(in_range_avx2(mi), in_range_avx2(vi));
}

/* after the moments: the divider's quotients, if a moment was out of range */
__attribute__((target("avx2,fma")))
static void chunk4_moments_done(struct chunk4 *h, const double *m, const double *v,
                                double bias1, double bias2)
{
    ptrdiff_t i;
    if (_mm256_movemask_pd(h->in_range) != 15)
        for (i = h->start; i < h->end; i++) {
            h->square[i - h->start] = m[i] / bias1;
            h->root[i - h->start] = v[i] / bias2;
        }
}

/* v_hat ** 0.5, for root[j .. j + 3] */
__attribute__((target("avx2,fma")))
static inline void roots4(double *root, unsigned char *oks, ptrdiff_t j)
{
    const __m256d v_hat = _mm256_loadu_pd(root + j), r = _mm256_sqrt_pd(v_hat);
    /* the exact root is r + d / (2 r), d = v_hat - r**2 */
    const __m256d error = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_fnmadd_pd(r, r, v_hat));
    const __m256d ok = _mm256_or_pd(
        _mm256_and_pd(within_avx2(v_hat, 0x1p-120, 0x1p+120),
                      _mm256_cmp_pd(error, _mm256_mul_pd(
                                        ulp_avx2(r, 2.0 * PYFLOAT_NEAR_HALF * 0x1p-52), r),
                                    _CMP_LT_OQ)),
        _mm256_cmp_pd(v_hat, _mm256_setzero_pd(), _CMP_EQ_OQ));
    _mm256_storeu_pd(root + j, r);
    oks[j / 4] = (unsigned char)_mm256_movemask_pd(ok);
}

/* after the roots: pow's where a check failed, of v_hat again (the same
   division) */
static void chunk4_roots_done(struct chunk4 *h, const double *v, double bias2,
                              struct adam_error *e)
{
    ptrdiff_t listed[ADAM_CHUNK], count, k;
    count = adam_list(h->ok_roots, (h->end - h->start) / 4, 4, listed);
    for (k = 0; k < count; k++)
        adam_failed(e, 2 * (h->start + listed[k]) + 1,
                    pyfloat_pow(v[h->start + listed[k]] / bias2, 0.5, &h->root[listed[k]]));
}

/* p -= lr_t * m_hat / (v_hat ** 0.5 + eps) */
__attribute__((target("avx2,fma")))
static inline void update4(const struct adam4 *c, double *p, double *g, const double *square,
                           const double *root, ptrdiff_t i, ptrdiff_t j)
{
    _mm256_storeu_pd(p + i, _mm256_sub_pd(_mm256_loadu_pd(p + i), _mm256_div_pd(
        _mm256_mul_pd(c->lr, _mm256_loadu_pd(square + j)),
        _mm256_add_pd(_mm256_loadu_pd(root + j), c->e))));
    _mm256_storeu_pd(g + i, _mm256_setzero_pd());
}

__attribute__((target("avx2,fma")))
ptrdiff_t adam_avx2(double *p, double *g, double *m, double *v, ptrdiff_t n,
                    double lr_t, double beta1, double beta2, double eps,
                    double bias1, double bias2, struct adam_error *error)
{
    struct adam4 c;
    struct chunk4 chunks[2], *h = &chunks[0], *next = &chunks[1], *swap;
    const int stream = n >= ADAM_STREAM;
    double y1, y2;
    ptrdiff_t i, j, both;

    if (n < 4 || !reciprocal_of(bias1, &y1) || !reciprocal_of(bias2, &y2))
        return 0;
    c.b1 = _mm256_set1_pd(beta1);
    c.b2 = _mm256_set1_pd(beta2);
    c.c1 = _mm256_set1_pd(1 - beta1);
    c.c2 = _mm256_set1_pd(1 - beta2);
    c.d1 = _mm256_set1_pd(bias1);
    c.d2 = _mm256_set1_pd(bias2);
    c.y1 = _mm256_set1_pd(y1);
    c.y2 = _mm256_set1_pd(y2);
    c.lr = _mm256_set1_pd(lr_t);
    c.e = _mm256_set1_pd(eps);

    chunk4_begin(h, 0, n);                      /* the first chunk's squares and moments */
    {
        double *square = h->square, *root = h->root;
        unsigned char *oks = h->ok_squares;
        const ptrdiff_t end = h->end;
        __m256d in_range = h->in_range;
        for (i = 0; i < end; i += 4) {
            if (stream && i % 8 == 0)           /* a line of 64 bytes at a time */
                ADAM_AHEAD(i, n, p, g, m, v);
            squares4(g, square, oks, i, i);
        }
        chunk4_squares_done(h, g, error);
        for (i = 0; i < end; i += 4)
            in_range = _mm256_and_pd(in_range, moments4(&c, g, m, v, square, root, i, i));
        h->in_range = in_range;
    }
    chunk4_moments_done(h, m, v, bias1, bias2);
    for (;;) {
        /* h's roots and updates; the next chunk's squares and moments, as
           far as it goes (every chunk is whole but the last) */
        double *square = h->square, *root = h->root;
        double *next_square = next->square, *next_root = next->root;
        unsigned char *oks = h->ok_roots, *next_oks = next->ok_squares;
        const ptrdiff_t start = h->start, end = h->end;
        ptrdiff_t next_start = 0;
        __m256d in_range;

        both = 0;
        if (end + 4 <= n) {
            chunk4_begin(next, end, n);
            next_start = next->start;
            both = next->end - next_start;
        }
        for (j = 0; j < both; j += 4) {
            roots4(root, oks, j);
            if (stream && j % 8 == 0)
                ADAM_AHEAD(next_start + j, n, p, g, m, v);
            squares4(g, next_square, next_oks, next_start + j, j);
        }
        for (j = both; j < end - start; j += 4)
            roots4(root, oks, j);
        chunk4_roots_done(h, v, bias2, error);
        if (both)
            chunk4_squares_done(next, g, error);
        in_range = next->in_range;
        for (j = 0; j < both; j += 4) {
            update4(&c, p, g, square, root, start + j, j);
            in_range = _mm256_and_pd(in_range, moments4(&c, g, m, v, next_square, next_root,
                                                        next_start + j, j));
        }
        next->in_range = in_range;
        for (j = both; j < end - start; j += 4)
            update4(&c, p, g, square, root, start + j, j);
        if (!both)
            return end;
        chunk4_moments_done(next, m, v, bias1, bias2);
        swap = h;
        h = next;
        next = swap;
    }
}
#endif
