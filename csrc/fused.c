/*
 * The fused operations of microgpt's fast path; fused.h says what each
 * computes.
 *
 * Forward loops are written next to the microgpt.py line they replace, and
 * keep its operation order. Backward loops compute the local gradients of
 * microgpt.py's scalar graph and add them up in the order its backward()
 * does: the reverse of the order in which its depth-first search finished
 * the nodes. That search finishes the terms of a sum first to last, so
 * their gradients come back last to first; it reaches a weight once per
 * position, so a weight's gradient is added from the last position to the
 * first. Where the order is less regular, it is spelled out: for the
 * queries, keys and values of attention by fused_attention_visit_order;
 * for the logits of the loss by the linear layer's `last` (the loss reaches
 * each row's target logit first, then the others in order: their gradients
 * come back last to first, the target's after all of them).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fused.h"
#include "pyfloat.h"
#include "threads.h"

/* On x86-64 the linear layers, attention, rmsnorm's backward pass and
   relu ** 2 also run as vector kernels (kernels_template.h: tiles of
   independent sums), for AVX2 and for AVX-512, chosen at run time (cpu.h).
   They compute the same doubles as the portable loops here; the tests
   compare them. Their work splits among the threads of threads.h by
   outputs: each output is one thread's. Adam is in adam.c, adam_avx2.c and
   adam_avx512.c. */


/* Softmax ------------------------------------------------------------------ */

/* softmax(logits): max_val, exps = [(val - max_val).exp()], total = sum(exps).
   Leaves exps in e (e may be x) and their sum in total; the probabilities
   are e * total**-1, a Value's division being a multiplication by the inverse. */
static int softmax_exps(const double *x, double *e, ptrdiff_t n, double *total)
{
    double max_val = x[0], sum = 0.0;
    ptrdiff_t i;

    for (i = 1; i < n; i++)
        if (x[i] > max_val)             /* max() keeps the first of equal values */
            max_val = x[i];
    for (i = 0; i < n; i++) {
        int status = pyfloat_exp(x[i] - max_val, &e[i]);
        if (status != PYFLOAT_OK)
            return status;
        sum = sum + e[i];
    }
    *total = sum;
    return PYFLOAT_OK;
}

/* From the gradients dp of the probabilities p = e * inverse (inverse =
   total**-1), those of the exps: each p adds inverse * dp to its e, and e * dp
   to its own total**-1 node, which adds -1 * total**-2 times that to total,
   the last p first; total then adds its gradient to every e. */
static void softmax_exps_backward(const double *e, double total, double inverse,
                                  const double *dp, double *de, ptrdiff_t n)
{
    double total_2 = 0.0, dtotal = 0.0;     /* total_2 set below; gcc cannot tell */
    ptrdiff_t i;

    pyfloat_reciprocal_square(total, &total_2);     /* total ** -1 succeeded: so does this */
    for (i = n - 1; i >= 0; i--)
        dtotal += (-1.0 * total_2) * (e[i] * dp[i]);
    for (i = 0; i < n; i++)
        de[i] = inverse * dp[i] + dtotal;
}

int fused_softmax(const double *x, double scale, double *y, ptrdiff_t rows, ptrdiff_t n)
{
    double total, inverse;
    ptrdiff_t t, i;

    for (t = 0; t < rows; t++) {
        double *yt = y + t * n;
        int status;
        for (i = 0; i < n; i++)                 /* [l / temperature for l in logits] */
            yt[i] = x[t * n + i] * scale;
        status = softmax_exps(yt, yt, n, &total);
        if (status == PYFLOAT_OK)
            status = pyfloat_reciprocal(total, &inverse);
        if (status != PYFLOAT_OK)
            return status;
        for (i = 0; i < n; i++)                 /* [e / total for e in exps] */
            yt[i] = yt[i] * inverse;
    }
    return PYFLOAT_OK;
}

void fused_softmax_backward(const double *x, double scale, const double *dy, double *dx,
                            double *scratch, ptrdiff_t rows, ptrdiff_t n)
{
    double total = 0.0, inverse = 0.0;      /* set below; gcc cannot tell */
    ptrdiff_t t, i;

    for (t = 0; t < rows; t++) {
        double *e = scratch, *de = scratch + n;
        for (i = 0; i < n; i++)                 /* the forward pass's exps again */
            e[i] = x[t * n + i] * scale;
        softmax_exps(e, e, n, &total);
        pyfloat_reciprocal(total, &inverse);
        softmax_exps_backward(e, total, inverse, dy + t * n, de, n);
        for (i = 0; i < n; i++)                 /* through exp, then l * temperature**-1 */
            dx[t * n + i] += scale * (e[i] * de[i]);
    }
}


#ifdef HAVE_VECTORS
/* The kernels of kernels_template.h: portable (vectors of two doubles, for
   any target; SSE3 on x86-64, cpu.h), and on x86-64 for AVX2 and for AVX-512 */
#define VW 2
#define TILE_ROWS 6
#define TILE_VECTORS 2
#define K(name) name##_vec2
#define KERNEL PORTABLE_TARGET
#include "kernels_template.h"
#undef VW
#undef TILE_ROWS
#undef TILE_VECTORS
#undef K
#undef KERNEL
#endif

#ifdef HAVE_AVX2
#define VW 4
#define TILE_ROWS 6
#define TILE_VECTORS 2
#define K(name) name##_avx2
#define KERNEL __attribute__((target("avx2")))
#include "kernels_template.h"
#undef VW
#undef TILE_ROWS
#undef TILE_VECTORS
#undef K
#undef KERNEL

#define VW 8
#define TILE_ROWS 6
#define TILE_VECTORS 4
#define K(name) name##_avx512
#define KERNEL __attribute__((target("avx512f")))
#include "kernels_template.h"
#undef VW
#undef TILE_ROWS
#undef TILE_VECTORS
#undef K
#undef KERNEL

#endif

/* name##_avx512, name##_avx2 or name##_vec2, as the CPU and the
   environment chose (never ISA_PLAIN: its callers run the plain loops) */
#ifdef HAVE_AVX2
#define BY_ISA(name, args) \
    (kernel_isa() == ISA_AVX512 ? name##_avx512 args : \
     kernel_isa() == ISA_AVX2 ? name##_avx2 args : name##_vec2 args)
#elif defined(HAVE_VECTORS)
#define BY_ISA(name, args) (name##_vec2 args)
#endif

/* BY_ISA for `columns` columns (outputs, positions) side by side: AVX-512's
   tiles are 32 columns wide, and for 16 or fewer at least half of one would
   be padding, where AVX2's tiles of 8 columns compute the same sums without
   it (measured on AMD's Zen 4, whose vectors of eight take two steps of
   four: microgpt.py's linear layers of 16 outputs 1.7-2x faster) */
#ifdef HAVE_AVX2
#define BY_ISA_FOR(columns, name, args) \
    (kernel_isa() == ISA_AVX512 && (columns) <= 16 ? name##_avx2 args : BY_ISA(name, args))
#elif defined(HAVE_VECTORS)
#define BY_ISA_FOR(columns, name, args) BY_ISA(name, args)
#endif

/* Whether a kernel over `rows` positions runs as vectors: always with AVX2
   and AVX-512; the portable kernels' vectors of two only from two tiles of
   rows on, below which the rows a tile computes over and its packing cost
   more than the second lane saves (measured: microgpt.py's model, of at
   most 8 positions, runs faster in the plain loops there) */
#define PORTABLE_ROWS 12        /* two of the portable kernels' tiles of 6 rows */
#define vectors_for(rows) \
    (kernel_isa() >= ISA_AVX2 || (kernel_isa() == ISA_PORTABLE && (rows) >= PORTABLE_ROWS))

/* The widest panel of kernels_template.h (4 vectors of 8 doubles): the unit of the
   threads' shares of columns, so that each share is whole panels of any
   instruction set. */
#define WIDEST_PANEL 32


/*
 * Work space of `each` bytes for each of `parts` parts; NULL if there is
 * no such memory, or if the size overflows (the caller then runs the plain
 * loops). `each` is a few rows of the kernel's matrices, which exist.
 *
 * The largest work space given back is kept for the calls to come: it can
 * be as large as a matrix (attention's backward pass takes positions x
 * positions), and freed it would go back to the system, to be faulted in
 * again at the next call. One block, taken and given back by atomic
 * exchange (kernels may run on several Python threads at once), its size in
 * its first bytes; fused_release_space frees it.
 */
#define SPACE_HEADER 64             /* keeps the space as aligned as malloc's */

static char *kept_space;

#ifdef HAVE_VECTORS
static size_t space_size(const char *block)
{
    return *(const size_t *)block;
}

static void *space_for(ptrdiff_t parts, size_t each)
{
    size_t size;
    char *block;
    if (each && (size_t)parts > (SIZE_MAX - SPACE_HEADER) / each)
        return NULL;
    size = parts * each;
    block = __atomic_exchange_n(&kept_space, NULL, __ATOMIC_ACQ_REL);
    if (block != NULL && space_size(block) < size) {
        free(block);
        block = NULL;
    }
    if (block == NULL) {
        block = malloc(SPACE_HEADER + size);
        if (block == NULL)
            return NULL;
        *(size_t *)block = size;
    }
    return block + SPACE_HEADER;
}

static void space_free(void *space)
{
    char *block = (char *)space - SPACE_HEADER;
    char *other = __atomic_exchange_n(&kept_space, block, __ATOMIC_ACQ_REL);
    if (other != NULL && space_size(other) > space_size(block))
        other = __atomic_exchange_n(&kept_space, other, __ATOMIC_ACQ_REL);   /* the larger */
    free(other);
}
#endif

void fused_release_space(void)
{
    free(__atomic_exchange_n(&kept_space, NULL, __ATOMIC_ACQ_REL));
}

int fused_set_threads(int n)
{
    return threads_set(n);
}

int fused_threads(void)
{
    return threads_count();
}


/* Linear ------------------------------------------------------------------- */

#ifdef HAVE_VECTORS
/* A kernel's arguments, for the threads that share its work */
struct linear_job {
    const double *x, *w, *dy;
    double *y, *dw, *dx;
    const double *const *w_rows, *const *dy_cols;
    const ptrdiff_t *order, *last;
    ptrdiff_t rows, nin, nout, dy_stride;
    char *space;                        /* work space, `each` bytes per part */
    size_t each;
};

static void linear_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct linear_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->nout, WIDEST_PANEL, part, parts, &start, &end);
    if (start < end)
        BY_ISA_FOR(end - start, linear, (j->x, j->w, j->y, j->rows, j->nin, j->nout, start,
                                         end, (double *)(j->space + part * j->each)));
}

static void linear_backward_weight_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct linear_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->nout, 8, part, parts, &start, &end);
    if (start < end)
        BY_ISA(linear_backward_weight, (j->x, j->dy, j->dw, j->rows, j->nin, j->nout,
                                        start, end, j->space + part * j->each));
}

static void linear_backward_input_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct linear_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->nin, WIDEST_PANEL, part, parts, &start, &end);
    if (start < end)
        BY_ISA(linear_backward_input, (j->w_rows, j->dy_cols, j->dy_stride, j->order, j->last,
                                       j->dx, j->rows, j->nin, j->nout, start, end,
                                       j->space + part * j->each));
}
#endif

void fused_linear(const double *x, const double *w, double *y,
                  ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
    ptrdiff_t t, i, j;

#ifdef HAVE_VECTORS
    if (rows >= 2 && vectors_for(rows)) {
        /* each part packs panels of w: nin * WIDEST_PANEL doubles */
        const ptrdiff_t parts = threads_parts((double)rows * nin * nout,
                                          (nout + WIDEST_PANEL - 1) / WIDEST_PANEL);
        struct linear_job job = {x, w, 0, y, 0, 0, 0, 0, 0, 0, rows, nin, nout, 0, 0,
                                 nin * WIDEST_PANEL * sizeof(double)};
        job.space = space_for(parts, job.each);
        if (job.space) {
            threads_run(linear_part, &job, parts);
            space_free(job.space);
            return;
        }
    }
#endif
    for (t = 0; t < rows; t++) {
        const double *xt = x + t * nin;
        double *yt = y + t * nout;
        /* [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w], four rows wo at
           a time: four independent sums, each in its own order */
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

static void linear_backward_weight(const double *x, const double *dy, double *dw,
                            ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
    ptrdiff_t t, i, j;

    for (i = 0; i < nout; i++) {            /* wi * xi gives wi the gradient xi * g */
        double *dwi = dw + i * nin;
        for (t = rows - 1; t >= 0; t--) {   /* the last position first */
            const double g = dy[t * nout + i];
            const double *xt = x + t * nin;
            for (j = 0; j < nin; j++)
                dwi[j] += xt[j] * g;
        }
    }
}

/* the k-th of nout outputs in the order last to first, but for `final`,
   which comes after all the others */
static inline ptrdiff_t last_after_the_others(ptrdiff_t k, ptrdiff_t nout, ptrdiff_t final)
{
    const ptrdiff_t i = nout - 1 - k;
    return k == nout - 1 ? final : i > final ? i : i - 1;
}

static void linear_backward_input(const double *const *w_rows, const double *const *dy_cols,
                           ptrdiff_t dy_stride, const ptrdiff_t *order, const ptrdiff_t *last,
                           double *dx, ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
    ptrdiff_t t, k, j;

    for (t = 0; t < rows; t++) {            /* wi * xi gives xi the gradient wi * g */
        double *dxt = dx + t * nin;
        for (k = 0; k < nout; k++) {
            const ptrdiff_t i = order ? order[t * nout + k] :
                                last ? last_after_the_others(k, nout, last[t]) : nout - 1 - k;
            const double g = dy_cols[i][t * dy_stride];
            const double *wi = w_rows[i];
            for (j = 0; j < nin; j++)
                dxt[j] += wi[j] * g;
        }
    }
}

void fused_linear_backward_weight(const double *x, const double *dy, double *dw,
                                  ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout)
{
#ifdef HAVE_VECTORS
    if (kernel_isa() >= ISA_PORTABLE) {
        const ptrdiff_t parts = threads_parts((double)rows * nin * nout, (nout + 7) / 8);
        struct linear_job job = {x, 0, dy, 0, dw, 0, 0, 0, 0, 0, rows, nin, nout, 0, 0,
                                 WEIGHT_SPACE(rows)};
        job.space = space_for(parts, job.each);
        if (job.space) {
            threads_run(linear_backward_weight_part, &job, parts);
            space_free(job.space);
            return;
        }
    }
#endif
    linear_backward_weight(x, dy, dw, rows, nin, nout);
}

void fused_linear_backward_input(const double *const *w_rows, const double *const *dy_cols,
                                 ptrdiff_t dy_stride, const ptrdiff_t *order,
                                 const ptrdiff_t *last, double *dx, ptrdiff_t rows,
                                 ptrdiff_t nin, ptrdiff_t nout)
{
#ifdef HAVE_VECTORS
    if (vectors_for(rows)) {
        const ptrdiff_t parts = threads_parts((double)rows * nin * nout,
                                          (nin + WIDEST_PANEL - 1) / WIDEST_PANEL);
        struct linear_job job = {0, 0, 0, 0, 0, dx, w_rows, dy_cols, order, last, rows, nin,
                                 nout, dy_stride, 0, INPUT_SPACE(rows, nout)};
        job.space = space_for(parts, job.each);
        if (job.space) {
            threads_run(linear_backward_input_part, &job, parts);
            space_free(job.space);
            return;
        }
    }
#endif
    linear_backward_input(w_rows, dy_cols, dy_stride, order, last, dx, rows, nin, nout);
}


/* RMSNorm and ReLU squared -------------------------------------------------- */

int fused_rmsnorm(const double *x, double *y, double *scale, double *ms_eps,
                  ptrdiff_t rows, ptrdiff_t n)
{
    double inverse_n, s;
    ptrdiff_t t, j;
    int status = pyfloat_reciprocal((double)n, &inverse_n);    /* / len(x) */

    if (status != PYFLOAT_OK)
        return status;
    for (t = 0; t < rows; t++) {
        const double *xt = x + t * n;
        double *yt = y + t * n;
        double ms = 0.0;
        for (j = 0; j < n; j++)                 /* ms = sum(xi * xi for xi in x) / len(x) */
            ms = ms + xt[j] * xt[j];
        ms = ms * inverse_n;
        ms_eps[t] = ms + 1e-5;
        status = pyfloat_reciprocal_root(ms_eps[t], &s);  /* scale = (ms + 1e-5) ** -0.5 */
        if (status != PYFLOAT_OK)
            return status;
        scale[t] = s;
        for (j = 0; j < n; j++)                 /* [xi * scale for xi in x] */
            yt[j] = xt[j] * s;
    }
    return PYFLOAT_OK;
}

/* The loops of fused_rmsnorm_backward, inlined below into copies for AVX2
   and AVX-512 too, which the compiler vectorizes: each element's three
   additions stay in their order. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void rmsnorm_backward(const double *x, const double *scale, const double *ms_eps,
                                    const double *dy, double *dx, ptrdiff_t rows, ptrdiff_t n)
{
    double inverse_n = 0.0, power = 0.0;    /* set below; gcc cannot tell */
    ptrdiff_t t, j;

    pyfloat_reciprocal((double)n, &inverse_n);
    for (t = 0; t < rows; t++) {
        const double *xt = x + t * n, *dyt = dy + t * n;
        double *dxt = dx + t * n;
        const double s = scale[t];
        double dscale = 0.0, dsum;
        for (j = n - 1; j >= 0; j--)            /* xi * scale gives scale xi * g */
            dscale += xt[j] * dyt[j];
        /* ** -0.5 has the local gradient -0.5 * (ms + 1e-5) ** -1.5, + 1e-5 passes
           it on, and ms = sum * len(x)**-1 gives the sum len(x)**-1 times that */
        pyfloat_reciprocal_root_cubed(ms_eps[t], &power);
        dsum = inverse_n * ((-0.5 * power) * dscale);
        for (j = 0; j < n; j++) {
            dxt[j] += s * dyt[j];               /* xi * scale */
            dxt[j] += xt[j] * dsum;             /* xi * xi, once as each factor */
            dxt[j] += xt[j] * dsum;
        }
    }
}

#ifdef HAVE_AVX2
__attribute__((target("avx2")))
static void rmsnorm_backward_avx2(const double *x, const double *scale, const double *ms_eps,
                                  const double *dy, double *dx, ptrdiff_t rows, ptrdiff_t n)
{
    rmsnorm_backward(x, scale, ms_eps, dy, dx, rows, n);
}

__attribute__((target("avx512f")))
static void rmsnorm_backward_avx512(const double *x, const double *scale, const double *ms_eps,
                                    const double *dy, double *dx, ptrdiff_t rows, ptrdiff_t n)
{
    rmsnorm_backward(x, scale, ms_eps, dy, dx, rows, n);
}
#endif

void fused_rmsnorm_backward(const double *x, const double *scale, const double *ms_eps,
                            const double *dy, double *dx, ptrdiff_t rows, ptrdiff_t n)
{
#ifdef HAVE_AVX2
    if (kernel_isa() == ISA_AVX512) {
        rmsnorm_backward_avx512(x, scale, ms_eps, dy, dx, rows, n);
        return;
    }
    if (kernel_isa() == ISA_AVX2) {
        rmsnorm_backward_avx2(x, scale, ms_eps, dy, dx, rows, n);
        return;
    }
#endif
    rmsnorm_backward(x, scale, ms_eps, dy, dx, rows, n);    /* two at a time where the target can */
}

void fused_relu(const double *x, double *y, ptrdiff_t n)
{
    ptrdiff_t i;

    for (i = 0; i < n; i++)                     /* max(0, xi) */
        y[i] = x[i] > 0 ? x[i] : 0.0;
}

void fused_relu_backward(const double *x, const double *dy, double *dx, ptrdiff_t n)
{
    ptrdiff_t i;

    /* the local gradient float(xi > 0) times the output's gradient, also
       when it is 0.0: 0.0 * inf is NaN in the scalar graph too */
    for (i = 0; i < n; i++)
        dx[i] += (x[i] > 0 ? 1.0 : 0.0) * dy[i];
}

int fused_relu_squared(const double *x, double *y, ptrdiff_t n)
{
    ptrdiff_t i;

#ifdef HAVE_AVX2
    if (kernel_isa() == ISA_AVX512)
        return relu_squared_avx512(x, y, n);
    if (kernel_isa() == ISA_AVX2)
        return relu_squared_avx2(x, y, n);
#endif
#ifdef HAVE_VECTORS
    if (kernel_isa() == ISA_PORTABLE)
        return relu_squared_vec2(x, y, n);
#endif
    for (i = 0; i < n; i++) {                   /* [xi.relu() ** 2 for xi in x] */
        y[i] = pyfloat_square(x[i] > 0 ? x[i] : 0.0);
        if (isinf(y[i]) && isfinite(x[i]))
            return PYFLOAT_OVERFLOW;
    }
    return PYFLOAT_OK;
}

void fused_relu_squared_backward(const double *x, const double *dy, double *dx, ptrdiff_t n)
{
    ptrdiff_t i;

#ifdef HAVE_AVX2
    if (kernel_isa() == ISA_AVX512) {
        relu_squared_backward_avx512(x, dy, dx, n);
        return;
    }
    if (kernel_isa() == ISA_AVX2) {
        relu_squared_backward_avx2(x, dy, dx, n);
        return;
    }
#endif
#ifdef HAVE_VECTORS
    if (kernel_isa() == ISA_PORTABLE) {
        relu_squared_backward_vec2(x, dy, dx, n);
        return;
    }
#endif
    for (i = 0; i < n; i++)                     /* ** 2 gives 2 * r ** 1, relu 1.0 */
        if (x[i] > 0)
            dx[i] += (2.0 * x[i]) * dy[i];
}


/* Attention ------------------------------------------------------------------ */

#ifdef HAVE_VECTORS
/* attention's arguments, for the threads that share its heads (the forward
   pass writes exps: the logits, then their softmax) */
struct attention_job {
    const double *q, *const *k, *const *v, *exps, *sums, *dout;
    double *dq, *const *dk, *const *dv, *out;
    ptrdiff_t rows, first, n_embd, n_head;
    double scale;
    char *space;                        /* work space, `each` bytes per part */
    size_t each;
};

static void attention_logits_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct attention_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->n_head, 1, part, parts, &start, &end);     /* this part's heads */
    BY_ISA_FOR(j->first + j->rows, attention_logits_of_heads,
               (j->q, j->k, (double *)j->exps, j->rows, j->first, j->n_embd, j->n_head,
                j->scale, start, end, j->space + part * j->each));
}

static void attention_values_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct attention_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->n_head, 1, part, parts, &start, &end);     /* this part's heads */
    BY_ISA_FOR(j->first + j->rows, attention_values_of_heads,
               (j->v, j->exps, j->sums, j->out, j->rows, j->first, j->n_embd, j->n_head,
                start, end, j->space + part * j->each));
}

static void attention_backward_part(void *context, ptrdiff_t part, ptrdiff_t parts)
{
    struct attention_job *j = context;
    ptrdiff_t start, end;
    threads_share(j->n_head, 1, part, parts, &start, &end);     /* this part's heads */
    BY_ISA(attention_backward, (j->q, j->k, j->v, j->exps, j->sums, j->dout, j->dq,
                                j->dk, j->dv, j->rows, j->first, j->n_embd, j->n_head,
                                j->scale, start, end, j->space + part * j->each));
}
#endif

int fused_attention(const double *q, const double *const *k, const double *const *v,
                    double *out, double *exps, double *sums, ptrdiff_t rows,
                    ptrdiff_t first, ptrdiff_t n_embd, ptrdiff_t n_head, double scale)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    ptrdiff_t r, h, s, j;

#ifdef HAVE_VECTORS
    if (rows > 1 && vectors_for(rows)) {
        const ptrdiff_t parts = threads_parts((double)rows * positions * n_embd, n_head);
        struct attention_job job = {q, k, v, exps, sums, 0, 0, 0, 0, out, rows, first, n_embd,
                                    n_head, scale, 0,
                                    ATTENTION_SPACE(head_dim, rows, positions)};
        job.space = space_for(parts, job.each);
        if (job.space) {
            int status = PYFLOAT_OK;
            threads_run(attention_logits_part, &job, parts);
            /* the softmax of each row, in the order of the loops below, so
               that the first failure is theirs */
            for (r = 0; r < rows && status == PYFLOAT_OK; r++)
                for (h = 0; h < n_head && status == PYFLOAT_OK; h++) {
                    double *e = exps + (r * n_head + h) * positions;
                    double *total = sums + 2 * (r * n_head + h);
                    status = softmax_exps(e, e, first + r + 1, total);
                    if (status == PYFLOAT_OK)
                        status = pyfloat_reciprocal(*total, total + 1);
                }
            if (status == PYFLOAT_OK)
                threads_run(attention_values_part, &job, parts);
            space_free(job.space);
            return status;
        }
    }
#endif
    for (r = 0; r < rows; r++) {
        const double *qr = q + r * n_embd;
        const ptrdiff_t n = first + r + 1;      /* this position and those before it */
        for (h = 0; h < n_head; h++) {
            const ptrdiff_t hs = h * head_dim;
            double *e = exps + (r * n_head + h) * positions;
            double *total = sums + 2 * (r * n_head + h), *inverse = total + 1;
            int status;
            /* attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim**0.5 ...] */
            for (s = 0; s < n; s++) {
                double dot = 0.0;
                for (j = 0; j < head_dim; j++)
                    dot = dot + qr[hs + j] * k[s][hs + j];
                e[s] = dot * scale;
            }
            for (; s < positions; s++)
                e[s] = 0.0;
            /* attn_weights = softmax(attn_logits) */
            status = softmax_exps(e, e, n, total);
            if (status == PYFLOAT_OK)
                status = pyfloat_reciprocal(*total, inverse);
            if (status != PYFLOAT_OK)
                return status;
            /* head_out = [sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h))) for j ...] */
            for (j = 0; j < head_dim; j++) {
                double sum = 0.0;
                for (s = 0; s < n; s++)
                    sum = sum + (e[s] * *inverse) * v[s][hs + j];
                out[r * n_embd + hs + j] = sum;
            }
        }
    }
    return PYFLOAT_OK;
}

void fused_attention_backward(const double *q, const double *const *k,
                              const double *const *v, const double *exps, const double *sums,
                              const double *dout, double *dq, double *const *dk,
                              double *const *dv, double *scratch, ptrdiff_t rows,
                              ptrdiff_t first, ptrdiff_t n_embd, ptrdiff_t n_head, double scale,
                              int separate)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    ptrdiff_t r, h, s, j;

#ifdef HAVE_VECTORS
    if (separate && rows > 1 && vectors_for(rows)) {
        const ptrdiff_t parts = threads_parts((double)rows * positions * n_embd, n_head);
        struct attention_job job = {q, k, v, exps, sums, dout, dq, dk, dv, 0, rows, first,
                                    n_embd, n_head, scale, 0,
                                    ATTENTION_BACKWARD_SPACE(head_dim, rows, positions)};
        job.space = space_for(parts, job.each);
        if (job.space) {
            threads_run(attention_backward_part, &job, parts);
            space_free(job.space);
            return;
        }
    }
#endif
    /* the last position first: a key or value gets its gradients from the
       positions attending to it, last first */
    for (r = rows - 1; r >= 0; r--) {
        const ptrdiff_t n = first + r + 1;
        const double *qr = q + r * n_embd;
        double *dqr = dq + r * n_embd;
        for (h = 0; h < n_head; h++) {
            const ptrdiff_t hs = h * head_dim;
            const double *e = exps + (r * n_head + h) * positions;
            const double *dor = dout + r * n_embd + hs;
            const double total = sums[2 * (r * n_head + h)];
            const double inverse = sums[2 * (r * n_head + h) + 1];
            double *dw = scratch, *de = scratch + positions;
            /* head_out: weight s gets v[s][j] * g (the last j first), and
               v[s][j] gets weight s * g */
            for (s = 0; s < n; s++) {
                const double weight = e[s] * inverse;
                double sum = 0.0;
                for (j = head_dim - 1; j >= 0; j--)
                    sum += v[s][hs + j] * dor[j];
                dw[s] = sum;
                for (j = 0; j < head_dim; j++)
                    dv[s][hs + j] += weight * dor[j];
            }
            softmax_exps_backward(e, total, inverse, dw, de, n);
            /* through exp, * (head_dim**0.5)**-1 and the q . k sum: q gets
               k * g (the last key first), k gets q * g */
            for (s = n - 1; s >= 0; s--) {
                const double dlogit = scale * (e[s] * de[s]);
                for (j = 0; j < head_dim; j++) {
                    dqr[hs + j] += k[s][hs + j] * dlogit;
                    dk[s][hs + j] += qr[hs + j] * dlogit;
                }
            }
        }
    }
}

/*
 * The order in which microgpt.py's depth-first search finishes the query,
 * key and value outputs of position p, numbered q | k | v (3 * n_embd). Head
 * by head, through the first output of the head: its first attention logit
 * finishes the queries, the later logits the keys of position p (the
 * earlier positions' keys are finished), the weighted sums the values. At
 * position 0 the first logit is also the one with position 0's own key, so
 * queries and keys come in turns.
 */
void fused_attention_visit_order(ptrdiff_t p, ptrdiff_t n_embd, ptrdiff_t n_head,
                                 ptrdiff_t *order)
{
    const ptrdiff_t head_dim = n_embd / n_head;
    ptrdiff_t h, j, k = 0;

    for (h = 0; h < n_head; h++) {
        const ptrdiff_t hs = h * head_dim;
        if (p == 0) {
            for (j = 0; j < head_dim; j++) {
                order[k++] = hs + j;
                order[k++] = n_embd + hs + j;
            }
        } else {
            for (j = 0; j < head_dim; j++)
                order[k++] = hs + j;
            for (j = 0; j < head_dim; j++)
                order[k++] = n_embd + hs + j;
        }
        for (j = 0; j < head_dim; j++)
            order[k++] = 2 * n_embd + hs + j;
    }
}


/* Cross-entropy --------------------------------------------------------------- */

int fused_cross_entropy(const double *logits, const ptrdiff_t *targets, double *exps,
                        double *sums, double *loss, ptrdiff_t rows, ptrdiff_t n)
{
    double total = 0.0, log_p;
    ptrdiff_t t;

    for (t = 0; t < rows; t++) {
        /* probs = softmax(logits); loss_t = -probs[target_id].log() */
        double *e = exps + t * n, *sum = sums + 2 * t, *inverse = sum + 1;
        int status = softmax_exps(logits + t * n, e, n, sum);
        if (status == PYFLOAT_OK)
            status = pyfloat_reciprocal(*sum, inverse);
        if (status == PYFLOAT_OK)
            status = pyfloat_log(e[targets[t]] * *inverse, &log_p);
        if (status != PYFLOAT_OK)
            return status;
        total = total + log_p * -1.0;           /* sum(losses), each -x being x * -1 */
    }
    *loss = (1.0 / (double)rows) * total;       /* (1 / n) * sum(losses) */
    return PYFLOAT_OK;
}

void fused_cross_entropy_backward(const double *exps, const double *sums,
                                  const ptrdiff_t *targets, double dloss, double *dlogits,
                                  double *scratch, ptrdiff_t rows, ptrdiff_t n)
{
    /* (1 / n) * sum gives each loss_t (1 / n) * dloss; * -1 and log give the
       target's probability (1 / p) * -1 * that, the others nothing */
    const double dloss_t = (1.0 / (double)rows) * dloss;
    ptrdiff_t t, i;

    for (t = 0; t < rows; t++) {
        const double *e = exps + t * n, total = sums[2 * t], inverse = sums[2 * t + 1];
        double *dp = scratch, *de = scratch + n;
        for (i = 0; i < n; i++)
            dp[i] = 0.0;
        dp[targets[t]] = (1.0 / (e[targets[t]] * inverse)) * (-1.0 * dloss_t);
        softmax_exps_backward(e, total, inverse, dp, de, n);
        for (i = 0; i < n; i++)                 /* through exp, then val - max_val */
            dlogits[t * n + i] += e[i] * de[i];
    }
}
