/*
 * The fused operations of microgpt's fast path: each computes what
 * microgpt.py computes with one scalar Value per number, as one loop.
 *
 * Forward kernels do the same float operations in the same order as
 * microgpt.py, so their results equal its results bit for bit: a sum starts
 * from 0 and adds the terms in order, a division by a Value is a
 * multiplication by its inverse (x ** -1), and pow, exp and log are the libm
 * calls Python makes (pyfloat.h). Backward kernels add the gradients (+=) of
 * their inputs in whatever order is fastest.
 *
 * Matrices are dense, row-major doubles; in activations row t is position t.
 * Kernels that can fail return a PYFLOAT_* status (pyfloat.h), as the scalar
 * operation would have raised.
 */
#ifndef MICROGPT_FUSED_H
#define MICROGPT_FUSED_H

#include <stddef.h>

/* y[t][i] = sum(w[i][j] * x[t][j] for j) -- microgpt.py's linear(x, w) */
void fused_linear(const double *x, const double *w, double *y,
                  ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout);
void fused_linear_backward(const double *x, const double *w, const double *dy,
                           double *dx, double *dw,
                           ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout);

/* y[t] = x[t] * (mean(x[t]**2) + 1e-5) ** -0.5 -- rmsnorm; scale[t] keeps the factor */
int fused_rmsnorm(const double *x, double *y, double *scale, ptrdiff_t rows, ptrdiff_t n);
void fused_rmsnorm_backward(const double *x, const double *scale, const double *dy,
                            double *dx, ptrdiff_t rows, ptrdiff_t n);

/* y = relu(x) ** 2, element-wise */
int fused_relu_squared(const double *x, double *y, ptrdiff_t n);
void fused_relu_squared_backward(const double *x, const double *dy, double *dx, ptrdiff_t n);

/* y[t] = softmax(x[t] * scale) for each row; scale is 1.0 or temperature ** -1 */
int fused_softmax(const double *x, double scale, double *y, ptrdiff_t rows, ptrdiff_t n);
void fused_softmax_backward(const double *y, double scale, const double *dy, double *dx,
                            ptrdiff_t rows, ptrdiff_t n);

/*
 * Causal self-attention of `rows` new positions over a KV cache of
 * first + rows positions: k[s] and v[s] point at the key and value rows of
 * position s, and q row r is position first + r, which attends to positions
 * 0 .. first + r. Per head: logits = (q . k) * scale (scale is
 * (head_dim ** 0.5) ** -1), weights = softmax(logits), out = sum of
 * weights * v. weights keeps rows * n_head * (first + rows) doubles for the
 * backward pass.
 */
int fused_attention(const double *q, const double *const *k, const double *const *v,
                    double *out, double *weights, ptrdiff_t rows, ptrdiff_t first,
                    ptrdiff_t n_embd, ptrdiff_t n_head, double scale);
void fused_attention_backward(const double *q, const double *const *k,
                              const double *const *v, const double *weights,
                              const double *dout, double *dq, double *const *dk,
                              double *const *dv, ptrdiff_t rows, ptrdiff_t first,
                              ptrdiff_t n_embd, ptrdiff_t n_head, double scale);

/*
 * The mean over rows of -log(softmax(logits[t])[targets[t]]): microgpt.py's
 * loss, (1 / rows) * sum(losses). probs keeps the softmax for the backward
 * pass.
 */
int fused_cross_entropy(const double *logits, const ptrdiff_t *targets, double *probs,
                        double *loss, ptrdiff_t rows, ptrdiff_t n);
void fused_cross_entropy_backward(const double *logits, const double *probs,
                                  const ptrdiff_t *targets, double dloss, double *dlogits,
                                  ptrdiff_t rows, ptrdiff_t n);

/*
 * One step of microgpt.py's Adam over n parameters, each formula in its
 * order; bias1 and bias2 are 1 - beta1 ** (step + 1) and 1 - beta2 ** (step + 1).
 * The square of the gradient and the square root of v_hat are g * g and
 * sqrt(), where microgpt.py calls pow(): both results are within an ulp of
 * pow's, and equal to it almost always. Zeroes the gradients.
 */
void fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
                double lr_t, double beta1, double beta2, double eps,
                double bias1, double bias2);

#endif /* MICROGPT_FUSED_H */
