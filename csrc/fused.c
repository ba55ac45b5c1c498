/*
 * The fused operations of microgpt's fast path; see fused.h for what each
 * computes. Every forward loop is written next to the microgpt.py line it
 * replaces, and keeps its operation order.
 */
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "fused.h"
#include "pyfloat.h"

/* softmax(logits): max_val, exps = [(val - max_val).exp()], total = sum(exps),
   [e / total] -- a Value divides by multiplying with total ** -1. In place
   is fine (y == x). */
static int softmax_row(const double *x, double *y, ptrdiff_t n)
{
    double max_val = x[0], total = 0.0, inverse;
    ptrdiff_t i;
    int status;

    for (i = 1; i < n; i++)
        if (x[i] > max_val)         /* max() keeps the first of equal values */
            max_val = x[i];
    for (i = 0; i < n; i++) {
        status = pyfloat_exp(x[i] - max_val, &y[i]);
        if (status != PYFLOAT_OK)
            return status;
        total = total + y[i];
    }
    status = pyfloat_pow(total, -1.0, &inverse);
    if (status != PYFLOAT_OK)
        return status;
    for (i = 0; i < n; i++)
        y[i] = y[i] * inverse;
    return PYFLOAT_OK;
}

void fused_linear(const double *x, const double *w, double *y,
                  ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
    ptrdiff_t t, i, j;

    for (t = 0; t < rows; t++) {
        const double *xt = x + t * nin;
        double *yt = y + t * nout;
        /* [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w], four rows wo at
           a time: four independent sums, each still in its own order */
        for (i = 0; i + 4 <= nout; i += 4) {
            const double *w0 = w + i * nin, *w1 = w0 + nin, *w2 = w1 + nin, *w3 = w2 + nin;
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            for (j = 0; j < nin; j++) {
                a0 = a0 + w0[j] * xt[j];
                a1 = a1 + w1[j] * xt[j];
                a2 = a2 + w2[j] * xt[j];
                a3 = a3 + w3[j] * xt[j];
            }
            yt[i] = a0;
            yt[i + 1] = a1;
            yt[i + 2] = a2;
            yt[i + 3] = a3;
        }
        for (; i < nout; i++) {
            const double *wi = w + i * nin;
            double a = 0.0;
            for (j = 0; j < nin; j++)
                a = a + wi[j] * xt[j];
            yt[i] = a;
        }
    }
}

void fused_linear_backward(const double *x, const double *w, const double *dy,
                           double *dx, double *dw,
                           ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
    ptrdiff_t t, i, j;

    /* row by row of w, so each row of w and dw is read once; the rows of x
       and dx are few (the positions of one document) and stay in cache.
       Positions from the last: microgpt.py's graph adds a weight's
       gradients up in that order. */
    for (i = 0; i < nout; i++) {
        const double *wi = w + i * nin;
        double *dwi = dw + i * nin;
        for (t = rows - 1; t >= 0; t--) {
            const double g = dy[t * nout + i];
            const double *xt = x + t * nin;
            double *dxt = dx + t * nin;
            for (j = 0; j < nin; j++) {
                dxt[j] += g * wi[j];
                dwi[j] += g * xt[j];
            }
        }
    }
}

int fused_rmsnorm(const double *x, double *y, double *scale, ptrdiff_t rows, ptrdiff_t n)
{
    double inverse_n, s;
    ptrdiff_t t, j;
    int status = pyfloat_pow((double)n, -1.0, &inverse_n);    /* / len(x) */

    if (status != PYFLOAT_OK)
        return status;
    for (t = 0; t < rows; t++) {
        const double *xt = x + t * n;
        double *yt = y + t * n;
        double ms = 0.0;
        for (j = 0; j < n; j++)                 /* ms = sum(xi * xi for xi in x) / len(x) */
            ms = ms + xt[j] * xt[j];
        ms = ms * inverse_n;
        status = pyfloat_pow(ms + 1e-5, -0.5, &s);  /* scale = (ms + 1e-5) ** -0.5 */
        if (status != PYFLOAT_OK)
            return status;
        scale[t] = s;
        for (j = 0; j < n; j++)                 /* [xi * scale for xi in x] */
            yt[j] = xt[j] * s;
    }
    return PYFLOAT_OK;
}

void fused_rmsnorm_backward(const double *x, const double *scale, const double *dy,
                            double *dx, ptrdiff_t rows, ptrdiff_t n)
{
    ptrdiff_t t, j;

    for (t = 0; t < rows; t++) {
        const double *xt = x + t * n, *dyt = dy + t * n;
        double *dxt = dx + t * n;
        const double s = scale[t];
        double dscale = 0.0, coef;
        for (j = 0; j < n; j++)
            dscale += dyt[j] * xt[j];
        /* scale = (ms + 1e-5) ** -0.5, so dscale/dms = -0.5 * scale**3, and
           dms/dx_j = 2 * x_j / n */
        coef = dscale * (-0.5 * s * s * s) * (2.0 / (double)n);
        for (j = 0; j < n; j++)
            dxt[j] += dyt[j] * s + coef * xt[j];
    }
}

int fused_relu_squared(const double *x, double *y, ptrdiff_t n)
{
    ptrdiff_t i;

    for (i = 0; i < n; i++) {                   /* [xi.relu() ** 2 for xi in x] */
        int status = pyfloat_pow(x[i] > 0 ? x[i] : 0.0, 2.0, &y[i]);
        if (status != PYFLOAT_OK)
            return status;
    }
    return PYFLOAT_OK;
}

void fused_relu_squared_backward(const double *x, const double *dy, double *dx, ptrdiff_t n)
{
    ptrdiff_t i;

    for (i = 0; i < n; i++)
        if (x[i] > 0)
            dx[i] += dy[i] * (2.0 * x[i]);
}

int fused_softmax(const double *x, double scale, double *y, ptrdiff_t rows, ptrdiff_t n)
{
    ptrdiff_t t, i;

    for (t = 0; t < rows; t++) {
        int status;
        for (i = 0; i < n; i++)                 /* [l / temperature for l in logits] */
            y[t * n + i] = x[t * n + i] * scale;
        status = softmax_row(y + t * n, y + t * n, n);
        if (status != PYFLOAT_OK)
            return status;
    }
    return PYFLOAT_OK;
}

void fused_softmax_backward(const double *y, double scale, const double *dy, double *dx,
                            ptrdiff_t rows, ptrdiff_t n)
{
    ptrdiff_t t, i;

    for (t = 0; t < rows; t++) {
        const double *yt = y + t * n, *dyt = dy + t * n;
        double dot = 0.0;
        for (i = 0; i < n; i++)
            dot += yt[i] * dyt[i];
        for (i = 0; i < n; i++)
            dx[t * n + i] += yt[i] * (dyt[i] - dot) * scale;
    }
}

int fused_attention(const double *q, const double *const *k, const double *const *v,
                    double *out, double *weights, ptrdiff_t rows, ptrdiff_t first,
                    ptrdiff_t n_embd, ptrdiff_t n_head, double scale)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    ptrdiff_t r, h, s, j;

    for (r = 0; r < rows; r++) {
        const double *qr = q + r * n_embd;
        const ptrdiff_t n = first + r + 1;      /* this position and those before it */
        for (h = 0; h < n_head; h++) {
            const ptrdiff_t hs = h * head_dim;
            double *attn_weights = weights + (r * n_head + h) * positions;
            int status;
            /* attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim**0.5 ...] */
            for (s = 0; s < n; s++) {
                double dot = 0.0;
                for (j = 0; j < head_dim; j++)
                    dot = dot + qr[hs + j] * k[s][hs + j];
                attn_weights[s] = dot * scale;
            }
            for (; s < positions; s++)
                attn_weights[s] = 0.0;
            status = softmax_row(attn_weights, attn_weights, n);
            if (status != PYFLOAT_OK)
                return status;
            /* head_out = [sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h))) for j ...] */
            for (j = 0; j < head_dim; j++) {
                double sum = 0.0;
                for (s = 0; s < n; s++)
                    sum = sum + attn_weights[s] * v[s][hs + j];
                out[r * n_embd + hs + j] = sum;
            }
        }
    }
    return PYFLOAT_OK;
}

void fused_attention_backward(const double *q, const double *const *k,
                              const double *const *v, const double *weights,
                              const double *dout, double *dq, double *const *dk,
                              double *const *dv, ptrdiff_t rows, ptrdiff_t first,
                              ptrdiff_t n_embd, ptrdiff_t n_head, double scale)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    ptrdiff_t r, h, s, j;

    for (r = 0; r < rows; r++) {
        const ptrdiff_t n = first + r + 1;
        for (h = 0; h < n_head; h++) {
            const ptrdiff_t hs = h * head_dim;
            const double *w = weights + (r * n_head + h) * positions;
            const double *dor = dout + r * n_embd + hs;
            double dot = 0.0;
            /* through head_out: d(weight s) = dout . v[s], d(v[s]) += weight s * dout;
               dot collects sum(w_s * dw_s) for the softmax */
            for (s = 0; s < n; s++) {
                double dws = 0.0;
                for (j = 0; j < head_dim; j++) {
                    dws += dor[j] * v[s][hs + j];
                    dv[s][hs + j] += w[s] * dor[j];
                }
                dot += w[s] * dws;
            }
            /* through the softmax and the logits; dws is recomputed rather than stored */
            for (s = 0; s < n; s++) {
                double dws = 0.0, dlogit;
                for (j = 0; j < head_dim; j++)
                    dws += dor[j] * v[s][hs + j];
                dlogit = w[s] * (dws - dot) * scale;
                for (j = 0; j < head_dim; j++) {
                    dq[r * n_embd + hs + j] += dlogit * k[s][hs + j];
                    dk[s][hs + j] += dlogit * q[r * n_embd + hs + j];
                }
            }
        }
    }
}

int fused_cross_entropy(const double *logits, const ptrdiff_t *targets, double *probs,
                        double *loss, ptrdiff_t rows, ptrdiff_t n)
{
    double total = 0.0, log_p;
    ptrdiff_t t;

    for (t = 0; t < rows; t++) {
        /* probs = softmax(logits); loss_t = -probs[target_id].log() */
        int status = softmax_row(logits + t * n, probs + t * n, n);
        if (status == PYFLOAT_OK)
            status = pyfloat_log(probs[t * n + targets[t]], &log_p);
        if (status != PYFLOAT_OK)
            return status;
        total = total + log_p * -1.0;           /* sum(losses), negated as Value(-1) * */
    }
    *loss = (1.0 / (double)rows) * total;       /* (1 / n) * sum(losses) */
    return PYFLOAT_OK;
}

void fused_cross_entropy_backward(const double *logits, const double *probs,
                                  const ptrdiff_t *targets, double dloss, double *dlogits,
                                  ptrdiff_t rows, ptrdiff_t n)
{
    /* The local gradients of microgpt.py's scalar graph, in its order, so the
       gradient of each logit is the same double: through (1 / n) * sum,
       -1 *, log (1 / p), p = e * total**-1, total = sum(e), e = exp(l - max). */
    const double g_loss = (1.0 / (double)rows) * dloss;
    ptrdiff_t t, i;

    for (t = 0; t < rows; t++) {
        const double *l = logits + t * n, *p = probs + t * n;
        const ptrdiff_t target = targets[t];
        double max_val = l[0], total = 0.0, inverse, e_target, g_p, g_total, minus_total_2;
        for (i = 1; i < n; i++)
            if (l[i] > max_val)
                max_val = l[i];
        for (i = 0; i < n; i++)
            total = total + exp(l[i] - max_val);
        pyfloat_pow(total, -1.0, &inverse);
        pyfloat_pow(total, -2.0, &minus_total_2);
        e_target = exp(l[target] - max_val);
        g_p = (1.0 / p[target]) * (-1.0 * g_loss);      /* log's 1/p, times the -1 */
        g_total = (-1.0 * minus_total_2) * (e_target * g_p);    /* (total ** -1)' */
        for (i = 0; i < n; i++) {
            const double e = exp(l[i] - max_val);
            const double g_e = i == target ? inverse * g_p + g_total : g_total;
            dlogits[t * n + i] += e * g_e;             /* exp's local gradient is e */
        }
    }
}

void fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
                double lr_t, double beta1, double beta2, double eps,
                double bias1, double bias2)
{
    const double one_minus_beta1 = 1 - beta1, one_minus_beta2 = 1 - beta2;
    ptrdiff_t i = 0;

#ifdef __SSE2__
    /* Two parameters at a time. The compiler will not vectorize this loop
       itself (sqrt() may set errno), and the divisions and square root
       dominate it; the vector instructions are the same IEEE operations. */
    {
        const __m128d b1 = _mm_set1_pd(beta1), b2 = _mm_set1_pd(beta2);
        const __m128d c1 = _mm_set1_pd(one_minus_beta1), c2 = _mm_set1_pd(one_minus_beta2);
        const __m128d d1 = _mm_set1_pd(bias1), d2 = _mm_set1_pd(bias2);
        const __m128d lr = _mm_set1_pd(lr_t), e = _mm_set1_pd(eps), zero = _mm_setzero_pd();
        for (; i + 2 <= n; i += 2) {
            __m128d gi = _mm_loadu_pd(g + i);
            __m128d mi = _mm_add_pd(_mm_mul_pd(b1, _mm_loadu_pd(m + i)), _mm_mul_pd(c1, gi));
            __m128d vi = _mm_add_pd(_mm_mul_pd(b2, _mm_loadu_pd(v + i)),
                                    _mm_mul_pd(c2, _mm_mul_pd(gi, gi)));
            __m128d m_hat = _mm_div_pd(mi, d1), v_hat = _mm_div_pd(vi, d2);
            __m128d step = _mm_div_pd(_mm_mul_pd(lr, m_hat), _mm_add_pd(_mm_sqrt_pd(v_hat), e));
            _mm_storeu_pd(m + i, mi);
            _mm_storeu_pd(v + i, vi);
            _mm_storeu_pd(p + i, _mm_sub_pd(_mm_loadu_pd(p + i), step));
            _mm_storeu_pd(g + i, zero);
        }
    }
#endif
    for (; i < n; i++) {
        double m_hat, v_hat;
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i];
        v[i] = beta2 * v[i] + one_minus_beta2 * (g[i] * g[i]);
        m_hat = m[i] / bias1;
        v_hat = v[i] / bias2;
        p[i] -= lr_t * m_hat / (sqrt(v_hat) + eps);
        g[i] = 0.0;
    }
}
