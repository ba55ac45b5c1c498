/*
 * Python's float arithmetic in plain C: the results and the errors of
 * float.__pow__, math.log and math.exp in CPython, so that compiled code
 * computes the same doubles as Python and fails where Python fails.
 *
 * Each function stores its result through `out` and returns PYFLOAT_OK or
 * the error Python would raise; the Cython layer turns that into the
 * exception. The special cases follow CPython's float_pow (Objects/floatobject.c)
 * and math_1/m_log (Modules/mathmodule.c): Python decides them itself
 * instead of trusting the platform libm, so this file does too.
 */
#ifndef MICROGPT_PYFLOAT_H
#define MICROGPT_PYFLOAT_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum {
    PYFLOAT_OK = 0,
    PYFLOAT_ZERO_DIVISION,  /* ZeroDivisionError: 0.0 to a negative power */
    PYFLOAT_OVERFLOW,       /* OverflowError: result too large */
    PYFLOAT_DOMAIN,         /* ValueError: math domain error */
    PYFLOAT_COMPLEX         /* Python would return a complex number */
};

/* x is an odd integer: CPython's DOUBLE_IS_ODD_INTEGER */
static inline int pyfloat_is_odd_integer(double x)
{
    return fmod(fabs(x), 2.0) == 1.0;
}

/* x ** y for floats x and y, as float.__pow__ */
static inline int pyfloat_pow(double x, double y, double *out)
{
    int negate = 0, err;
    double r;

    if (y == 0.0) {                 /* x**0 is 1, even 0**0 and nan**0 */
        *out = 1.0;
        return PYFLOAT_OK;
    }
    if (isnan(x)) {                 /* nan**y = nan, unless y == 0 */
        *out = x;
        return PYFLOAT_OK;
    }
    if (isnan(y)) {                 /* x**nan = nan, unless x == 1 */
        *out = x == 1.0 ? 1.0 : y;
        return PYFLOAT_OK;
    }
    if (isinf(y)) {
        x = fabs(x);
        if (x == 1.0)
            *out = 1.0;
        else if ((y > 0.0) == (x > 1.0))
            *out = fabs(y);         /* inf */
        else
            *out = 0.0;
        return PYFLOAT_OK;
    }
    if (isinf(x)) {                 /* (+-inf)**y: sign only for odd integer y */
        int odd = pyfloat_is_odd_integer(y);
        if (y > 0.0)
            *out = odd ? x : fabs(x);
        else
            *out = odd ? copysign(0.0, x) : 0.0;
        return PYFLOAT_OK;
    }
    if (x == 0.0) {
        if (y < 0.0)
            return PYFLOAT_ZERO_DIVISION;
        *out = pyfloat_is_odd_integer(y) ? x : 0.0;
        return PYFLOAT_OK;
    }
    if (x < 0.0) {
        if (y != floor(y))
            return PYFLOAT_COMPLEX;
        x = -x;                     /* y is an integer: pow(|x|, y), negated if y is odd */
        negate = pyfloat_is_odd_integer(y);
    }
    if (x == 1.0) {                 /* 1**y is 1, and (-1)**y is +-1 for huge y too */
        *out = negate ? -1.0 : 1.0;
        return PYFLOAT_OK;
    }
    errno = 0;
    r = pow(x, y);
    err = errno;
    if (err == 0 && isinf(r))
        err = ERANGE;
    else if (err == ERANGE && r == 0.0)
        err = 0;                    /* underflow to zero is not an error */
    if (err)
        return err == ERANGE ? PYFLOAT_OVERFLOW : PYFLOAT_DOMAIN;
    *out = negate ? -r : r;
    return PYFLOAT_OK;
}

/* math.log(x) for a float x */
static inline int pyfloat_log(double x, double *out)
{
    if (isfinite(x)) {
        if (x > 0.0) {
            *out = log(x);
            return PYFLOAT_OK;
        }
        return PYFLOAT_DOMAIN;      /* log(0) and log(negative) */
    }
    if (isnan(x) || x > 0.0) {      /* log(nan) = nan, log(inf) = inf */
        *out = x;
        return PYFLOAT_OK;
    }
    return PYFLOAT_DOMAIN;          /* log(-inf) */
}

/* math.exp(x) for a float x */
static inline int pyfloat_exp(double x, double *out)
{
    double r = exp(x);
    if (isinf(r) && isfinite(x))
        return PYFLOAT_OVERFLOW;
    *out = r;
    return PYFLOAT_OK;
}

/*
 * x ** 2 and x ** 0.5 as Python computes them -- with pow(), whose result is
 * not always x * x or sqrt(x) -- but fast. glibc's pow returns the correctly
 * rounded result except, rarely (about once in a thousand calls here), when
 * the exact result lies within a small fraction of an ulp of halfway between
 * two doubles. So: take the correctly rounded result (x * x, sqrt), measure
 * exactly how far the exact result is from it (Dekker's product), and call
 * pow() only when that is near half an ulp, where pow might round the other
 * way. glibc's pow errs by at most 0.54 ulp in all, and for these arguments
 * by less than 0.013 ulp before its final rounding (the exp and log error
 * bounds in its source); 0.48 leaves a margin. Arguments outside the checked
 * ranges simply call pow().
 */
#define PYFLOAT_SPLIT 134217729.0       /* 2**27 + 1: Veltkamp's split into 26 + 27 bits */
#define PYFLOAT_NEAR_HALF 0.48          /* ulps from the rounded result beyond which pow decides */

static inline double pyfloat_ulp(double x)      /* of a positive normal double */
{
    uint64_t bits;
    double power;
    memcpy(&bits, &x, sizeof bits);
    bits &= 0x7ff0000000000000ULL;              /* 2 ** exponent */
    memcpy(&power, &bits, sizeof power);
    return power * 0x1p-52;
}

/* x * x - p exactly, for p = x * x (no overflow or underflow) */
static inline double pyfloat_square_error(double x, double p)
{
    const double c = PYFLOAT_SPLIT * x, hi = c - (c - x), lo = x - hi;
    return ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
}

/* x ** 2 for a float x (no errors: an overflow gives inf) */
static inline double pyfloat_square(double x)
{
    const double a = fabs(x), p = x * x;
    double r = INFINITY;
    if (x == 0.0 || (a >= 0x1p-60 && a <= 0x1p+60 &&
                     fabs(pyfloat_square_error(x, p)) < PYFLOAT_NEAR_HALF * pyfloat_ulp(p)))
        return p;
    pyfloat_pow(x, 2.0, &r);
    return r;
}

/* x ** 0.5 for a float x >= 0 */
static inline double pyfloat_root(double x)
{
    const double c = sqrt(x);
    double r = c;
    /* the exact root is c + (x - c * c) / (2 c), to far more than needed here */
    if (x == 0.0 || (x >= 0x1p-120 && x <= 0x1p+120 &&
                     fabs((x - c * c) - pyfloat_square_error(c, c * c))
                     < PYFLOAT_NEAR_HALF * pyfloat_ulp(c) * 2.0 * c))
        return c;
    pyfloat_pow(x, 0.5, &r);
    return r;
}

/*
 * x ** -1, x ** -2, x ** -0.5 and x ** -1.5 the same way, for the softmax's
 * total and RMSNorm's mean square: q, a quotient within an ulp or two of
 * the exact result, and e = 1 - q**k x**j (the result is x ** -(j / k)),
 * from Dekker's error-free products, exact but for ulps of e itself. Then
 * the result is q (1 - e) ** (-1 / k), which is q + q e / k but for e ** 2
 * (e < 2**-50): r, that rounded, is the correctly rounded result unless
 * the exact one is near a midpoint, and how far it is from r is known to
 * far more than needed here. pow decides when that is near half an ulp;
 * the ulp is the one below r (the smaller where r is a power of two). For
 * x in the ranges below, |y log x| < 84: the bound of the squares' holds.
 */

/* a * b - p exactly, for p = a * b (Dekker's product: no overflow or underflow) */
static inline double pyfloat_product_error(double a, double b, double p)
{
    const double ca = PYFLOAT_SPLIT * a, a_hi = ca - (ca - a), a_lo = a - a_hi;
    const double cb = PYFLOAT_SPLIT * b, b_hi = cb - (cb - b), b_lo = b - b_hi;
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo;
}

/* 1 - a * b for a * b within a few ulps of 1: 1 - (h + l), where 1 - h is exact */
static inline double pyfloat_one_minus_product(double a, double b)
{
    const double h = a * b;
    return (1.0 - h) - pyfloat_product_error(a, b, h);
}

/* x ** y from q and e / k (above): r, or pow's result if r may not be it */
static inline int pyfloat_corrected(double q, double e_k, double x, double y, double *out)
{
    const double c = q * e_k, r = q + c, d = c - (r - q);   /* d: exact - r (r - q is exact) */
    if (fabs(d) < PYFLOAT_NEAR_HALF * pyfloat_ulp(fabs(r) * (1.0 - 0x1p-52))) {
        *out = r;
        return PYFLOAT_OK;
    }
    return pyfloat_pow(x, y, out);
}

/* x ** -1 for a float x: e = 1 - q x */
static inline int pyfloat_reciprocal(double x, double *out)
{
    double q;
    if (!(fabs(x) >= 0x1p-60 && fabs(x) <= 0x1p+60))
        return pyfloat_pow(x, -1.0, out);
    q = 1.0 / x;
    return pyfloat_corrected(q, pyfloat_one_minus_product(q, x), x, -1.0, out);
}

/* x ** -2 for a float x: e = 1 - q x**2 = (1 - q p) - q (x**2 - p), p = x * x */
static inline int pyfloat_reciprocal_square(double x, double *out)
{
    double p, q;
    if (!(fabs(x) >= 0x1p-60 && fabs(x) <= 0x1p+60))
        return pyfloat_pow(x, -2.0, out);
    p = x * x;
    q = 1.0 / p;
    return pyfloat_corrected(q, pyfloat_one_minus_product(q, p) - q * pyfloat_square_error(x, p),
                             x, -2.0, out);
}

/* x ** -0.5 for a float x: e = 1 - q**2 x = (1 - a x) - b x, q**2 = a + b */
static inline int pyfloat_reciprocal_root(double x, double *out)
{
    double q, a;
    if (!(x >= 0x1p-60 && x <= 0x1p+60))
        return pyfloat_pow(x, -0.5, out);
    q = 1.0 / sqrt(x);
    a = q * q;
    return pyfloat_corrected(q, (pyfloat_one_minus_product(a, x) - pyfloat_square_error(q, a) * x)
                                * 0.5, x, -0.5, out);
}

/* x ** -1.5 for a float x: e = 1 - q**2 x**3, q**2 = a + b, x**3 = u + v
   (u = x * x * x rounded twice, v its error but for the ulps of v) */
static inline int pyfloat_reciprocal_root_cubed(double x, double *out)
{
    double q, a, s, u, v;
    if (!(x >= 0x1p-40 && x <= 0x1p+40))
        return pyfloat_pow(x, -1.5, out);
    q = 1.0 / (x * sqrt(x));
    a = q * q;
    s = x * x;
    u = s * x;
    v = pyfloat_product_error(s, x, u) + pyfloat_square_error(x, s) * x;
    return pyfloat_corrected(q, ((pyfloat_one_minus_product(a, u) - a * v)
                                 - pyfloat_square_error(q, a) * u) * 0.5, x, -1.5, out);
}

#endif /* MICROGPT_PYFLOAT_H */
