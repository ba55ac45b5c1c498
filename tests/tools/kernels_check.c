/*
 * The fused kernels without Python, for a machine the tests cannot run on
 * (another architecture, under qemu-user): each kernel on awkward shapes,
 * and one line, a hash of every output's bits. Run it once per instruction
 * set (MICROGPT_KERNELS=plain, portable, ...): the lines must be equal.
 * tests/tools/cross_check.sh builds and runs it for aarch64.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fused.h"

static uint64_t state = 0x9e3779b97f4a7c15ULL, hash = 1469598103934665603ULL;

static double draw(void)                        /* in [-1, 1) */
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 4503599627370496.0 - 1.0;
}

static double *numbers(ptrdiff_t n)
{
    double *a = malloc((size_t)(n ? n : 1) * sizeof(double));
    ptrdiff_t i;
    for (i = 0; i < n; i++)
        a[i] = draw();
    return a;
}

static void mix(const double *a, ptrdiff_t n)   /* FNV-1a of the bits */
{
    const unsigned char *b = (const unsigned char *)a;
    size_t i;
    for (i = 0; i < (size_t)n * sizeof(double); i++)
        hash = (hash ^ b[i]) * 1099511628211ULL;
}

static void linear(ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
    double *x = numbers(rows * nin), *w = numbers(nout * nin), *y = numbers(rows * nout);
    double *dy = numbers(rows * nout), *dw = numbers(nout * nin), *dx = numbers(rows * nin);
    const double **w_rows = malloc(nout * sizeof(double *)), **dy_cols = malloc(nout * sizeof(double *));
    ptrdiff_t *last = malloc((size_t)rows * sizeof(ptrdiff_t)), i;
    for (i = 0; i < nout; i++) {
        w_rows[i] = w + i * nin;
        dy_cols[i] = dy + i;
    }
    for (i = 0; i < rows; i++)                  /* cross-entropy's targets, repeating */
        last[i] = (i * 7 + 3) % nout;
    fused_linear(x, w, y, rows, nin, nout);
    fused_linear_backward_weight(x, dy, dw, rows, nin, nout);
    fused_linear_backward_input(w_rows, dy_cols, nout, NULL, NULL, dx, rows, nin, nout);
    mix(y, rows * nout);
    mix(dw, nout * nin);
    mix(dx, rows * nin);
    fused_linear_backward_input(w_rows, dy_cols, nout, NULL, last, dx, rows, nin, nout);
    mix(dx, rows * nin);
    free(x), free(w), free(y), free(dy), free(dw), free(dx), free(w_rows), free(dy_cols);
    free(last);
}

static void attention(ptrdiff_t rows, ptrdiff_t n_embd, ptrdiff_t n_head)
{
    double *q = numbers(rows * n_embd), *kv = numbers(2 * rows * n_embd);
    double *out = numbers(rows * n_embd), *dout = numbers(rows * n_embd);
    double *exps = numbers(rows * n_head * rows), *sums = numbers(2 * rows * n_head);
    double *dq = numbers(rows * n_embd), *dkv = numbers(2 * rows * n_embd);
    double *scratch = numbers(2 * rows);
    const double **k = malloc(rows * sizeof(double *)), **v = malloc(rows * sizeof(double *));
    double **dk = malloc(rows * sizeof(double *)), **dv = malloc(rows * sizeof(double *));
    const double scale = 1.0 / 2.0;
    ptrdiff_t s;
    for (s = 0; s < rows; s++) {
        k[s] = kv + s * n_embd;
        v[s] = kv + (rows + s) * n_embd;
        dk[s] = dkv + s * n_embd;
        dv[s] = dkv + (rows + s) * n_embd;
    }
    fused_attention(q, k, v, out, exps, sums, rows, 0, n_embd, n_head, scale);
    fused_attention_backward(q, k, v, exps, sums, dout, dq, dk, dv, scratch, rows, 0, n_embd,
                             n_head, scale, 1);
    mix(out, rows * n_embd);
    mix(dq, rows * n_embd);
    mix(dkv, 2 * rows * n_embd);
    free(q), free(kv), free(out), free(dout), free(exps), free(sums), free(dq), free(dkv);
    free(scratch), free(k), free(v), free(dk), free(dv);
}

static void elementwise(ptrdiff_t rows, ptrdiff_t n)
{
    double *x = numbers(rows * n), *y = numbers(rows * n), *dy = numbers(rows * n);
    double *dx = numbers(rows * n), *scale = numbers(rows), *ms = numbers(rows);
    double *p = numbers(rows * n), *m = numbers(rows * n), *v = numbers(rows * n);
    ptrdiff_t i;
    fused_relu_squared(x, y, rows * n);
    fused_relu_squared_backward(x, dy, dx, rows * n);
    mix(y, rows * n);
    mix(dx, rows * n);
    fused_rmsnorm(x, y, scale, ms, rows, n);
    fused_rmsnorm_backward(x, scale, ms, dy, dx, rows, n);
    mix(y, rows * n);
    mix(dx, rows * n);
    for (i = 0; i < rows * n; i++)
        v[i] = v[i] * v[i];                     /* second moments are >= 0 */
    fused_adam(p, dy, m, v, rows * n, 0.01, 0.9, 0.95, 1e-8, 0.1, 0.05);
    mix(p, rows * n);
    mix(m, rows * n);
    mix(v, rows * n);
    free(x), free(y), free(dy), free(dx), free(scale), free(ms), free(p), free(m), free(v);
}

int main(void)
{
    static const ptrdiff_t shapes[][3] = {{1, 16, 16}, {7, 16, 27}, {8, 16, 64}, {13, 64, 16},
                                          {37, 60, 240}, {64, 64, 64}, {128, 128, 512}};
    size_t i;
    for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        linear(shapes[i][0], shapes[i][1], shapes[i][2]);
        attention(shapes[i][0], shapes[i][1], 4);
        elementwise(shapes[i][0], shapes[i][1]);
    }
    printf("%s %016llx\n", fused_kernel_isa(), (unsigned long long)hash);
    return 0;
}
