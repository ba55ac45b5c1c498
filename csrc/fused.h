/*
 * The fused operations of microgpt's fast path: each computes what
 * microgpt.py computes with one scalar Value per number, as one loop.
 *
 * Forward kernels do the same float operations in the same order as
 * microgpt.py, so their results equal its results bit for bit: a sum starts
 * from 0 and adds the terms in order, a division by a Value is a
 * multiplication by its inverse (x ** -1), and pow, exp and log give what
 * the libm calls Python makes return (pyfloat.h: pow is asked where a
 * cheaper exact result may not be its). Backward kernels compute the local
 * gradients of microgpt.py's graph and add them (+=) in the order its
 * backward() does, so that the gradients are the same doubles too.
 *
 * Matrices are dense, row-major doubles; in activations row t is position t.
 * Kernels that can fail return a PYFLOAT_* status (pyfloat.h), as the scalar
 * operation would have raised. "scratch" arguments are work space of the
 * size given.
 */
#ifndef MICROGPT_FUSED_H
#define MICROGPT_FUSED_H

#include <stddef.h>

/* The instruction set the kernels run with: "avx512", "avx2" or "portable". */
const char *fused_kernel_isa(void);

/* Threads for the kernels whose outputs split into independent parts (the
   vector kernels: linear, attention, Adam), the caller's included: see
   threads.h. The results do not depend on the number. */
int fused_set_threads(int n);
int fused_threads(void);

/* Free the vector kernels' work space kept for their next call. */
void fused_release_space(void);

/* y[t][i] = sum(w[i][j] * x[t][j] for j) -- microgpt.py's linear(x, w) */
void fused_linear(const double *x, const double *w, double *y,
                  ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout);
/* dw += the weights' gradients, each from the last position to the first */
void fused_linear_backward_weight(const double *x, const double *dy, double *dw,
                                  ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout);
/* dx[t] += w_rows[i] * dy_cols[i][t * dy_stride] for the outputs i in
   order[t * nout ...]; with order NULL, last to first, but for last[t] if
   last is not NULL, which comes after all the others (the order in which a
   loss's gradients reach its logits' layer: cross_entropy's). The rows and
   columns come as pointers so that outputs of several matrices can be
   interleaved (the queries, keys and values of attention). */
void fused_linear_backward_input(const double *const *w_rows, const double *const *dy_cols,
                                 ptrdiff_t dy_stride, const ptrdiff_t *order,
                                 const ptrdiff_t *last, double *dx, ptrdiff_t rows,
                                 ptrdiff_t nin, ptrdiff_t nout);

/* y[t] = x[t] * (mean(x[t]**2) + 1e-5) ** -0.5 -- rmsnorm; keeps the scale
   and mean(x**2) + 1e-5 of each row for the backward pass */
int fused_rmsnorm(const double *x, double *y, double *scale, double *ms_eps,
                  ptrdiff_t rows, ptrdiff_t n);
void fused_rmsnorm_backward(const double *x, const double *scale, const double *ms_eps,
                            const double *dy, double *dx, ptrdiff_t rows, ptrdiff_t n);

/* y = relu(x), element-wise, as max(0, x): 0 for NaN and -0.0 */
void fused_relu(const double *x, double *y, ptrdiff_t n);
void fused_relu_backward(const double *x, const double *dy, double *dx, ptrdiff_t n);

/* y = relu(x) ** 2, element-wise */
int fused_relu_squared(const double *x, double *y, ptrdiff_t n);
void fused_relu_squared_backward(const double *x, const double *dy, double *dx, ptrdiff_t n);

/* y[t] = softmax(x[t] * scale) for each row; scale is 1.0 or temperature ** -1.
   The backward pass needs 2 * n doubles of scratch. */
int fused_softmax(const double *x, double scale, double *y, ptrdiff_t rows, ptrdiff_t n);
void fused_softmax_backward(const double *x, double scale, const double *dy, double *dx,
                            double *scratch, ptrdiff_t rows, ptrdiff_t n);

/*
 * Causal self-attention of `rows` new positions over a KV cache of
 * first + rows positions: k[s] and v[s] point at the key and value rows of
 * position s, and q row r is position first + r, which attends to positions
 * 0 .. first + r. Per head: logits = (q . k) * scale (scale is
 * (head_dim ** 0.5) ** -1), weights = softmax(logits), out = sum of
 * weights * v. exps keeps the softmax numerators (rows * n_head *
 * (first + rows) doubles) and sums their total and its inverse (2 * rows *
 * n_head) for the backward pass, which needs 2 * (first + rows) doubles of
 * scratch. separate: q and the key and value rows share no memory, so that
 * each gradient is a sum of its own (the vector kernels need that).
 */
int fused_attention(const double *q, const double *const *k, const double *const *v,
                    double *out, double *exps, double *sums, ptrdiff_t rows,
                    ptrdiff_t first, ptrdiff_t n_embd, ptrdiff_t n_head, double scale);
void fused_attention_backward(const double *q, const double *const *k,
                              const double *const *v, const double *exps, const double *sums,
                              const double *dout, double *dq, double *const *dk,
                              double *const *dv, double *scratch, ptrdiff_t rows,
                              ptrdiff_t first, ptrdiff_t n_embd, ptrdiff_t n_head, double scale,
                              int separate);
/* The order (3 * n_embd indices, q | k | v) in which microgpt.py's search
   first finishes position p's queries, keys and values. */
void fused_attention_visit_order(ptrdiff_t p, ptrdiff_t n_embd, ptrdiff_t n_head,
                                 ptrdiff_t *order);

/*
 * The mean over rows of -log(softmax(logits[t])[targets[t]]): microgpt.py's
 * loss, (1 / rows) * sum(losses). exps (rows * n) and sums (2 * rows: each
 * row's total and its inverse) keep the softmax for the backward pass, which
 * needs 2 * n doubles of scratch.
 */
int fused_cross_entropy(const double *logits, const ptrdiff_t *targets, double *exps,
                        double *sums, double *loss, ptrdiff_t rows, ptrdiff_t n);
void fused_cross_entropy_backward(const double *exps, const double *sums,
                                  const ptrdiff_t *targets, double dloss, double *dlogits,
                                  double *scratch, ptrdiff_t rows, ptrdiff_t n);

/*
 * One step of microgpt.py's Adam over n parameters, each formula in its
 * order; bias1 and bias2 are 1 - beta1 ** (step + 1) and 1 - beta2 ** (step + 1).
 * p.grad ** 2 and v_hat ** 0.5 are pow()'s results, as in Python
 * (pyfloat_square, pyfloat_root). Zeroes the gradients. Returns PYFLOAT_OK,
 * or the error microgpt.py's Adam would raise at the first parameter where
 * it would (an overflowing square; the root of a negative v_hat): every
 * parameter is updated all the same (where microgpt.py's loop stops).
 */
int fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
                double lr_t, double beta1, double beta2, double eps,
                double bias1, double bias2);

#endif /* MICROGPT_FUSED_H */
