/*
 * The matrix kernels of fused.c, written once for vectors of any width and
 * compiled once per instruction set: a template, not a header. fused.c
 * includes it once per instruction set, with
 *
 *   VW        doubles per vector (4: AVX2, 8: AVX-512)
 *   K(name)   this copy's name for name
 *   KERNEL    the attributes of its functions (the target instruction set)
 *
 *   TILE_ROWS, TILE_VECTORS   the shape of a tile (below)
 *
 * Each computes what the portable loops of fused.c compute, double for
 * double. A sum is kept in one vector lane from its first term to its last,
 * in the order microgpt.py adds them, and the lanes are different sums:
 * different outputs, positions or keys. The parallelism is across sums,
 * never within one. A tile is MR rows by NV vectors: MR * NV * VW
 * independent sums advanced together, enough to keep the multipliers and
 * the adders busy. Without fused multiply-adds each term needs a register
 * for its product, so AVX2's 16 registers take 6 x 2 accumulators, 2
 * operand vectors, a broadcast number and a product; AVX-512's 32 take
 * 6 x 4.
 *
 * Where a tile reaches past the last row, its extra rows repeat the last
 * one (so that every address a tile forms is the matrix's) and are neither
 * computed nor stored: with microgpt.py's 8 positions, a second tile of 6
 * rows would otherwise compute 4 for nothing. Whole tiles run without the
 * test.
 * The operators are GCC's vector extensions; a vector times a double
 * multiplies each lane by it. With -ffp-contract=off every a + b * c is two
 * roundings, as in Python.
 */

#if !defined(VW) || !defined(K) || !defined(KERNEL) || !defined(TILE_ROWS) || !defined(TILE_VECTORS)
#error "kernels_template.h is compiled by fused.c, with VW, K, KERNEL, TILE_ROWS and TILE_VECTORS defined"
#endif

#define MR TILE_ROWS
#define NV TILE_VECTORS
#define PANEL (NV * VW)         /* columns of one tile */

typedef double K(vec) __attribute__((vector_size(VW * 8)));
typedef double K(uvec) __attribute__((vector_size(VW * 8), aligned(8), may_alias));
#define VEC K(vec)
#define LOAD(p) (*(const K(uvec) *)(p))
#define STORE(p, v) (*(K(uvec) *)(p) = (v))
#define INLINE KERNEL static inline __attribute__((always_inline))


/* Dot products ------------------------------------------------------------ */

/* pack[j * PANEL + c] = rows[s0 + c][j] for j < len: PANEL rows side by side,
   those past n (and so past the last row) as 0.0 */
INLINE void K(pack_panel)(const double *const *rows, ptrdiff_t s0, ptrdiff_t n,
                          ptrdiff_t len, double *pack)
{
    ptrdiff_t j, c;

    for (c = 0; c < PANEL; c++) {
        const double *row = s0 + c < n ? rows[s0 + c] : 0;
        for (j = 0; j < len; j++)
            pack[j * PANEL + c] = row ? row[j] : 0.0;
    }
}

/* out[r][c] = sum(xr[r][j] * pack[j][c] for j), from 0.0, j first to last
   (reverse: last to first), for the first `rows` of MR rows (a constant
   where it is MR) and PANEL columns */
INLINE void K(dot_rows)(const double *const *xr, const double *pack, ptrdiff_t len,
                        int reverse, ptrdiff_t rows, double out[MR][PANEL])
{
    VEC acc[MR][NV];
    ptrdiff_t n, j;
    int r, v;

    for (r = 0; r < MR; r++)
        for (v = 0; v < NV; v++)
            acc[r][v] = (VEC){0};
    for (n = 0; n < len; n++) {
        VEC wv[NV];
        j = reverse ? len - 1 - n : n;
#pragma GCC unroll 8
        for (v = 0; v < NV; v++)
            wv[v] = LOAD(pack + j * PANEL + v * VW);
#pragma GCC unroll 8
        for (r = 0; r < MR; r++)
            if (r < rows) {
                const double s = xr[r][j];
#pragma GCC unroll 8
                for (v = 0; v < NV; v++)
                    acc[r][v] = acc[r][v] + wv[v] * s;
            }
    }
    for (r = 0; r < MR && r < rows; r++)
        for (v = 0; v < NV; v++)
            STORE(&out[r][v * VW], acc[r][v]);
}

/* dot_rows for a tile's true rows: all MR, or fewer in the last tile (its
   other rows of out are left as they were) */
INLINE void K(dot_tile)(const double *const *xr, const double *pack, ptrdiff_t len,
                        int reverse, ptrdiff_t rows, double out[MR][PANEL])
{
    if (rows >= MR)
        K(dot_rows)(xr, pack, len, reverse, MR, out);
    else
        K(dot_rows)(xr, pack, len, reverse, rows, out);
}

/* y[t][i] = sum(w[i][j] * x[t][j] for j), from 0.0: microgpt.py's linear,
   for the outputs i_start <= i < i_end, a panel of PANEL outputs at a time
   (pack: nin * PANEL doubles) */
KERNEL static void K(linear)(const double *x, const double *w, double *y, ptrdiff_t rows,
                             ptrdiff_t nin, ptrdiff_t nout, ptrdiff_t i_start, ptrdiff_t i_end,
                             double *pack)
{
    double out[MR][PANEL] __attribute__((aligned(64)));
    const double *xr[MR], *wrows[PANEL];
    ptrdiff_t i0, t0, c, j;
    int r;

    for (i0 = i_start; i0 < i_end; i0 += PANEL) {
        const ptrdiff_t width = i_end - i0 < PANEL ? i_end - i0 : PANEL;
        for (c = 0; c < width; c++)
            wrows[c] = w + (i0 + c) * nin;
        K(pack_panel)(wrows, 0, width, nin, pack);
        /* the next panel's rows of w, asked of memory while this one's tiles
           run: w is read once a call, and a panel's rows nin apart */
        for (c = 0; i0 + PANEL + c < i_end && c < PANEL; c++)
            for (j = 0; j < nin; j += 8)
                __builtin_prefetch(w + (i0 + PANEL + c) * nin + j);
        for (t0 = 0; t0 < rows; t0 += MR) {
            for (r = 0; r < MR; r++)
                xr[r] = x + (t0 + r < rows ? t0 + r : rows - 1) * nin;
            K(dot_tile)(xr, pack, nin, 0, rows - t0, out);
            for (r = 0; r < MR && t0 + r < rows; r++) {
                double *yt = y + (t0 + r) * nout + i0;
                if (width == PANEL)
                    for (c = 0; c < PANEL; c += VW)
                        STORE(yt + c, LOAD(&out[r][c]));
                else
                    for (c = 0; c < width; c++)
                        yt[c] = out[r][c];
            }
        }
    }
}


/* Sums of rows ------------------------------------------------------------- */

/* acc[r] += a(r, k) * b_k, k over the terms in order: the accumulation of
   the backward passes, each row of the tile a sum of rows b_k (NV vectors
   from column j0) times numbers. */
#define ROW_SUMS_TILE_OF(nv, load_acc, k_loop, b_row, a_of_r, live_r, store_acc, real_r) \
    do {                                                                        \
        VEC acc_[MR][NV];                                                       \
        int r_, v_;                                                             \
        for (r_ = 0; r_ < MR; r_++)                                             \
            for (v_ = 0; v_ < (nv); v_++)                                       \
                acc_[r_][v_] = LOAD(load_acc(r_) + v_ * VW);                    \
        k_loop {                                                                \
            const double *b_ = (b_row);                                         \
            VEC bv_[NV];                                                        \
            _Pragma("GCC unroll 8")                                             \
            for (v_ = 0; v_ < (nv); v_++)                                       \
                bv_[v_] = LOAD(b_ + v_ * VW);                                   \
            _Pragma("GCC unroll 8")                                             \
            for (r_ = 0; r_ < MR; r_++)                                         \
                if (real_r(r_) && live_r(r_)) {                                 \
                    const double a_ = a_of_r(r_);                               \
                    _Pragma("GCC unroll 8")                                     \
                    for (v_ = 0; v_ < (nv); v_++)                               \
                        acc_[r_][v_] = acc_[r_][v_] + bv_[v_] * a_;             \
                }                                                               \
        }                                                                       \
        for (r_ = 0; r_ < MR; r_++)                                             \
            if (real_r(r_))                                                     \
                for (v_ = 0; v_ < (nv); v_++)                                   \
                    STORE(store_acc(r_) + v_ * VW, acc_[r_][v_]);               \
    } while (0)

/* ... for nv = NV or 1 vectors, each written out with its constant: the
   compiler then keeps the accumulators in registers. Of the tile's rows
   the first `real` are computed and stored; the others, past the last row
   (repeating it), are only loaded: with microgpt.py's 8 positions a second
   tile of 6 rows would otherwise compute 4 for nothing. A whole tile runs
   without the test. */
#define REAL_ROW(r) ((r) < real_)
#define ROW_SUMS_TILE(nv, real, load_acc, k_loop, b_row, a_of_r, live_r, store_acc) \
    do {                                                                        \
        const ptrdiff_t real_ = (real);                                         \
        if ((nv) == NV && real_ >= MR)                                          \
            ROW_SUMS_TILE_OF(NV, load_acc, k_loop, b_row, a_of_r, live_r, store_acc, ALWAYS); \
        else if ((nv) == NV)                                                    \
            ROW_SUMS_TILE_OF(NV, load_acc, k_loop, b_row, a_of_r, live_r, store_acc, REAL_ROW); \
        else if (real_ >= MR)                                                   \
            ROW_SUMS_TILE_OF(1, load_acc, k_loop, b_row, a_of_r, live_r, store_acc, ALWAYS); \
        else                                                                    \
            ROW_SUMS_TILE_OF(1, load_acc, k_loop, b_row, a_of_r, live_r, store_acc, REAL_ROW); \
    } while (0)

#define ALWAYS(r) 1

/* dw[i][j] += x[t][j] * dy[t][i], t from the last position to the first:
   tiles of MR outputs i by NV vectors of j, x's columns j0.. read at
   xs[t * x_stride] (a packed copy: rows of a power of two of doubles, such
   as 512, would put every position's numbers in the same few sets of the
   cache, evicting each other), the tile's numbers dy[t][i0 + r] at
   dys[t * dy_stride + r] (dy itself, or a copy packed for the same reason;
   rows past i_end are never read) */
INLINE void K(weight_tile)(const double *xs, ptrdiff_t x_stride, const double *dys,
                           ptrdiff_t dy_stride, double *dw, ptrdiff_t t_end, ptrdiff_t t_start,
                           ptrdiff_t nin, ptrdiff_t i0, ptrdiff_t i_end, ptrdiff_t j0,
                           const int nv)
{
    ptrdiff_t ir[MR], t;
    int r;

    for (r = 0; r < MR; r++)
        ir[r] = i0 + r < i_end ? i0 + r : i_end - 1;
#define DW(r) (dw + ir[r] * nin + j0)
#define G(r) gt[r]
    {
        const double *gt;
        ROW_SUMS_TILE(nv, i_end - i0, DW,
                      for (t = t_end - 1; t >= t_start && (gt = dys + t * dy_stride, 1); t--),
                      xs + t * x_stride, G, ALWAYS, DW);
    }
#undef DW
#undef G
}

/* Long sums are split into blocks of terms, so that the rows a block reads
   (BLOCK doubles, 64 KiB) stay in the caches nearest the core while every
   tile uses them. A block continues where the previous one left each sum:
   the terms are still added in order. */
#define BLOCK 8192

/* The work space of linear_backward_weight: a panel of x's columns, and
   dy's columns for a group of WEIGHT_GROUP outputs (16 tiles of 6) */
#define WEIGHT_GROUP 96
#define WEIGHT_SPACE(rows) ((size_t)(rows) * (32 + WEIGHT_GROUP) * sizeof(double))

/* for the outputs i_start <= i < i_end */
KERNEL static void K(linear_backward_weight)(const double *x, const double *dy, double *dw,
                                             ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout,
                                             ptrdiff_t i_start, ptrdiff_t i_end, void *space)
{
    /* dy's columns are packed for vectors of two and four (measured on Zen
       4, AVX2: the 64x2x64 step 3% faster, 128x4x128 8%); AVX-512's tiles
       of 32 columns read dy as it is (packed: 64x2x64 1.5% slower) */
    const int packed = VW < 8;
    const ptrdiff_t whole = nin / VW * VW, block = BLOCK / PANEL;
    const ptrdiff_t group = packed ? WEIGHT_GROUP / MR * MR : i_end - i_start;
    double *xs = space, *dys = xs + rows * 32;
    ptrdiff_t g0, g1, i0, j0, i, j, t, end;
    int r;

    /* a group of outputs at a time, whose packed columns of dy fit in the
       work space (unpacked: all the outputs at once) */
    for (g0 = i_start; g0 < i_end; g0 = g1) {
        g1 = g0 + group < i_end ? g0 + group : i_end;
        /* each tile's MR columns of dy side by side, by rows: the tile then
           reads its numbers in order, where dy's rows are nout doubles apart */
#define DY_OF(i0) (packed ? dys + ((i0) - g0) * rows : dy + (i0))
#define DY_STRIDE (packed ? MR : nout)
        for (i0 = g0; packed && i0 < g1; i0 += MR)
            for (t = 0; t < rows; t++)
                for (r = 0; r < MR && i0 + r < g1; r++)
                    dys[(i0 - g0) * rows + t * MR + r] = dy[t * nout + i0 + r];
        /* positions from the last: blocks of them, each over every output */
        for (j0 = 0; j0 + PANEL <= whole; j0 += PANEL) {
            for (t = 0; t < rows; t++)          /* x's panel of columns, packed */
                for (j = 0; j < PANEL; j += VW)
                    STORE(xs + t * PANEL + j, LOAD(x + t * nin + j0 + j));
            for (end = rows; end > 0; end -= block)
                for (i0 = g0; i0 < g1; i0 += MR) {
                    /* the next tile's sums, asked of memory while this one
                       runs: a gradient is read once a step, its rows nin
                       apart, which the CPU does not foresee */
                    for (r = 0; r < MR && i0 + MR + r < g1; r++)
                        for (j = 0; j < PANEL; j += 8)
                            __builtin_prefetch(dw + (i0 + MR + r) * nin + j0 + j, 1);
                    K(weight_tile)(xs, PANEL, DY_OF(i0), DY_STRIDE, dw, end,
                                   end > block ? end - block : 0, nin, i0, g1, j0, NV);
                }
        }
        for (; j0 < whole; j0 += VW)
            for (i0 = g0; i0 < g1; i0 += MR)
                K(weight_tile)(x + j0, nin, DY_OF(i0), DY_STRIDE, dw, rows, 0, nin, i0, g1,
                               j0, 1);
#undef DY_OF
#undef DY_STRIDE
    }
    for (i = i_start; i < i_end; i++)           /* the columns left over */
        for (j = whole; j < nin; j++) {
            double a = dw[i * nin + j];
            for (t = rows - 1; t >= 0; t--)
                a += x[t * nin + j] * dy[t * nout + i];
            dw[i * nin + j] = a;
        }
}

/* dx[t] += w_rows[o] * dy_cols[o][t * dy_stride] for the outputs o in the
   row's order: ws[k] = w_rows[o], gs[k] = dy_cols[o] for the k-th. The rows
   tr of a tile share that order (repeats allowed, as above); or, with
   `last`, the order last to first (ws[k] is output nout - 1 - k) without
   each row's last[t], which the caller adds after all the others. The k-th
   row of w, from column j0, is at packed + (k - k_start) * PANEL, a copy
   made for the tiles (as x's in the weights' gradient); or, without one, at
   ws[k] + j0. */
INLINE void K(input_tile)(const double *const *ws, const double *packed,
                          const double *const *gs, ptrdiff_t dy_stride, double *dx,
                          const ptrdiff_t *tr, ptrdiff_t real, const ptrdiff_t *last,
                          ptrdiff_t nin, ptrdiff_t nout, ptrdiff_t k_start, ptrdiff_t k_end,
                          ptrdiff_t j0, const int nv)
{
    ptrdiff_t off[MR], final[MR], k;
    int r;

    for (r = 0; r < MR; r++) {
        off[r] = tr[r] * dy_stride;
        final[r] = last ? nout - 1 - last[tr[r]] : -1;     /* the k that row skips */
    }
#define DX(r) (dx + tr[r] * nin + j0)
#define G(r) gs[k][off[r]]
#define NOT_FINAL(r) (k != final[r])
    if (packed && last)
        ROW_SUMS_TILE(nv, real, DX, for (k = k_start; k < k_end; k++),
                      packed + (k - k_start) * PANEL, G, NOT_FINAL, DX);
    else if (packed)
        ROW_SUMS_TILE(nv, real, DX, for (k = k_start; k < k_end; k++),
                      packed + (k - k_start) * PANEL, G, ALWAYS, DX);
    else if (last)
        ROW_SUMS_TILE(nv, real, DX, for (k = k_start; k < k_end; k++), ws[k] + j0, G,
                      NOT_FINAL, DX);
    else
        ROW_SUMS_TILE(nv, real, DX, for (k = k_start; k < k_end; k++), ws[k] + j0, G, ALWAYS,
                      DX);
#undef DX
#undef G
#undef NOT_FINAL
}

/* The work space of linear_backward_input: the outputs in their order (2 *
   nout pointers), the rows in classes (2 * rows indices), a block of w's
   rows packed */
#define INPUT_SPACE(rows, nout) \
    (2 * (nout) * sizeof(double *) + 2 * (rows) * sizeof(ptrdiff_t) + BLOCK * sizeof(double))

/* for the columns col_start <= j < col_end (col_start a multiple of PANEL) */
KERNEL static void K(linear_backward_input)(const double *const *w_rows,
                                            const double *const *dy_cols, ptrdiff_t dy_stride,
                                            const ptrdiff_t *order, const ptrdiff_t *last,
                                            double *dx, ptrdiff_t rows, ptrdiff_t nin,
                                            ptrdiff_t nout, ptrdiff_t col_start,
                                            ptrdiff_t col_end, void *space)
{
    const double **ws = space, **gs = ws + nout;
    ptrdiff_t *class = (ptrdiff_t *)(gs + nout);
    double *packed = (double *)(class + 2 * rows);
    const ptrdiff_t whole = (col_end < nin ? col_end : nin / VW * VW), block = BLOCK / PANEL;
    ptrdiff_t *done = class + rows, t0, t, n, c0, tr[MR], k, k0, j, j0;
    int r;

    for (t = 0; t < rows; t++)
        done[t] = 0;
    for (t0 = 0; t0 < rows; t0++) {
        const ptrdiff_t *o0 = order ? order + t0 * nout : 0;
        if (done[t0])
            continue;
        /* the rows whose outputs come in the order of row t0's */
        for (n = 0, t = t0; t < rows; t++)
            if (!done[t] && (!order || memcmp(order + t * nout, o0, nout * sizeof *o0) == 0)) {
                class[n++] = t;
                done[t] = 1;
            }
        for (k = 0; k < nout; k++) {
            const ptrdiff_t o = order ? o0[k] : nout - 1 - k;
            ws[k] = w_rows[o];
            gs[k] = dy_cols[o];
        }
#define TILE_ROWS_OF_CLASS                                                      \
        for (r = 0; r < MR; r++)                                                \
            tr[r] = class[c0 + r < n ? c0 + r : n - 1]
        for (j0 = col_start; j0 + PANEL <= whole; j0 += PANEL)
            for (k0 = 0; k0 < nout; k0 += block) {
                const ptrdiff_t k1 = k0 + block < nout ? k0 + block : nout;
                for (k = k0; k < k1; k++)       /* w's rows k0 .. k1, packed */
                    for (j = 0; j < PANEL; j += VW)
                        STORE(packed + (k - k0) * PANEL + j, LOAD(ws[k] + j0 + j));
                for (c0 = 0; c0 < n; c0 += MR) {
                    TILE_ROWS_OF_CLASS;
                    K(input_tile)(ws, packed, gs, dy_stride, dx, tr, n - c0, last, nin, nout,
                                  k0, k1, j0, NV);
                }
            }
        for (; j0 < whole; j0 += VW)
            for (c0 = 0; c0 < n; c0 += MR) {
                TILE_ROWS_OF_CLASS;
                K(input_tile)(ws, 0, gs, dy_stride, dx, tr, n - c0, last, nin, nout, 0, nout,
                              j0, 1);
            }
#undef TILE_ROWS_OF_CLASS
        for (c0 = 0; c0 < n; c0++)              /* the columns left over */
            for (j = whole > col_start ? whole : col_start; j < col_end; j++) {
                double a = dx[class[c0] * nin + j];
                for (k = 0; k < nout; k++)
                    if (!last || k != nout - 1 - last[class[c0]])
                        a += ws[k][j] * gs[k][class[c0] * dy_stride];
                dx[class[c0] * nin + j] = a;
            }
        if (last)                               /* each row's last output, after the others */
            for (c0 = 0; c0 < n; c0++) {
                const double *w_last = w_rows[last[class[c0]]];
                const double g = dy_cols[last[class[c0]]][class[c0] * dy_stride];
                for (j = col_start; j < col_end; j++)
                    dx[class[c0] * nin + j] += w_last[j] * g;
            }
        if (!order)
            break;
    }
}


/* Attention ------------------------------------------------------------------ */

/* For one head (columns hs .. hs + len of q's rows, and of the key rows k):
   e[r][s] = (q[r] . k[s]) * scale for the positions s <= first + r that row
   r attends to, 0.0 after them; e row r at exps + r * stride. */
KERNEL static void K(attention_logits)(const double *q, ptrdiff_t q_stride,
                                       const double *const *k, double *exps, ptrdiff_t stride,
                                       ptrdiff_t rows, ptrdiff_t first, ptrdiff_t len,
                                       double scale, int reverse, double *pack)
{
    double out[MR][PANEL] __attribute__((aligned(64)));
    const ptrdiff_t positions = first + rows;
    const double *xr[MR];
    ptrdiff_t s0, r0, s, c;
    int r;

    for (s0 = 0; s0 < positions; s0 += PANEL) {
        K(pack_panel)(k, s0, positions, len, pack);
        /* rows before s0 - first do not reach this panel */
        for (r0 = s0 - first > 0 ? s0 - first : 0; r0 < rows; r0 += MR) {
            for (r = 0; r < MR; r++)
                xr[r] = q + (r0 + r < rows ? r0 + r : rows - 1) * q_stride;
            K(dot_tile)(xr, pack, len, reverse, rows - r0, out);
            for (r = 0; r < MR && r0 + r < rows; r++) {
                double *e = exps + (r0 + r) * stride;
                const ptrdiff_t n = first + r0 + r + 1;
                if (s0 + PANEL <= n)            /* the row attends to the whole panel */
                    for (c = 0; c < PANEL; c += VW)
                        STORE(e + s0 + c, LOAD(&out[r][c]) * scale);
                else
                    for (c = 0; c < PANEL && s0 + c < positions; c++)
                        e[s0 + c] = s0 + c < n ? out[r][c] * scale : 0.0;
            }
        }
        for (r = 0; r < (s0 - first < rows ? s0 - first : rows); r++)
            for (s = s0; s < s0 + PANEL && s < positions; s++)
                exps[r * stride + s] = 0.0;
    }
}

/* acc[r] += a[r][s] * b[s] over the positions s of each row, from s_start
   (first to last) or down from the row's last one (reverse): the sums of
   the attention's output and of the queries' gradients. Row r of the tile
   attends to first + r0 + r + 1 positions. */
INLINE void K(position_sums_tile)(const double *a, ptrdiff_t a_stride, const double *a_scale,
                                  const double *const *b, double *out, ptrdiff_t out_stride,
                                  ptrdiff_t rows, ptrdiff_t first, ptrdiff_t r0,
                                  ptrdiff_t j0, int reverse, const int nv)
{
    ptrdiff_t tr[MR], n[MR], s;
    int r;

    for (r = 0; r < MR; r++) {
        tr[r] = r0 + r < rows ? r0 + r : rows - 1;
        n[r] = first + tr[r] + 1;
    }
#define OUT(r) (out + tr[r] * out_stride + j0)
#define A(r) (a_scale ? a[tr[r] * a_stride + s] * a_scale[tr[r]] : a[tr[r] * a_stride + s])
#define LIVE(r) (s < n[r])
    if (!reverse)
        ROW_SUMS_TILE(nv, rows - r0, OUT, for (s = 0; s < n[MR - 1]; s++), b[s] + j0, A, LIVE,
                      OUT);
    else
        ROW_SUMS_TILE(nv, rows - r0, OUT, for (s = n[MR - 1] - 1; s >= 0; s--), b[s] + j0, A,
                      LIVE, OUT);
#undef OUT
#undef A
#undef LIVE
}

/* acc[s] += a[r][s] * b[r] over the rows r that attend to position s, the
   last first: the sums of the keys' and the values' gradients. */
INLINE void K(row_sums_tile)(const double *a, ptrdiff_t a_stride, const double *a_scale,
                             const double *b, ptrdiff_t b_stride, double *const *out,
                             ptrdiff_t positions, ptrdiff_t rows, ptrdiff_t first,
                             ptrdiff_t s0, ptrdiff_t j0, const int nv)
{
    ptrdiff_t ts[MR], lowest[MR], r;
    int i;

    for (i = 0; i < MR; i++) {
        ts[i] = s0 + i < positions ? s0 + i : positions - 1;
        lowest[i] = ts[i] - first > 0 ? ts[i] - first : 0;   /* the first row attending to it */
    }
#define OUT(i) (out[ts[i]] + j0)
#define A(i) (a_scale ? a[r * a_stride + ts[i]] * a_scale[r] : a[r * a_stride + ts[i]])
#define LIVE(i) (r >= lowest[i])
    ROW_SUMS_TILE(nv, positions - s0, OUT, for (r = rows - 1; r >= lowest[0]; r--),
                  b + r * b_stride + j0, A, LIVE, OUT);
#undef OUT
#undef A
#undef LIVE
}

/* The column blocks of a head: NV vectors while they fit, then one, then
   the columns left over one by one (scalar, in fused.c's order). */
#define HEAD_COLUMNS(len, call)                                                 \
    do {                                                                        \
        const ptrdiff_t whole_ = (len) / VW * VW;                               \
        ptrdiff_t j0;                                                           \
        for (j0 = 0; j0 + PANEL <= whole_; j0 += PANEL)                         \
            call(NV);                                                           \
        for (; j0 < whole_; j0 += VW)                                           \
            call(1);                                                            \
    } while (0)

/* sum((e[s] * inverse) * v[s][j] for s), from 0.0, for the columns j of
   one head that are left over after its whole vectors */
KERNEL static void K(values_left_over)(const double *e, double inverse, const double *const *v,
                                       double *out, ptrdiff_t n, ptrdiff_t from, ptrdiff_t len)
{
    ptrdiff_t s, j;

    for (j = from; j < len; j++) {
        double sum = 0.0;
        for (s = 0; s < n; s++)
            sum = sum + (e[s] * inverse) * v[s][j];
        out[j] = sum;
    }
}

/*
 * fused_attention in tiles, for the heads h_start <= h < h_end: the logits
 * of a head at once (dot products of queries and keys; fused.c takes their
 * softmax), then the weighted sums of its values. Work space: see
 * ATTENTION_SPACE.
 */
#define ATTENTION_SPACE(head_dim, rows, positions)                              \
    (((head_dim) * 32 + (rows)) * sizeof(double) + (positions) * sizeof(double *))

KERNEL static void K(attention_logits_of_heads)(const double *q, const double *const *k,
                                                double *exps, ptrdiff_t rows, ptrdiff_t first,
                                                ptrdiff_t n_embd, ptrdiff_t n_head, double scale,
                                                ptrdiff_t h_start, ptrdiff_t h_end, void *space)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    double *pack = space;
    const double **kh = (const double **)(pack + head_dim * PANEL + rows);
    ptrdiff_t h, s;

    for (h = h_start; h < h_end; h++) {
        for (s = 0; s < positions; s++)
            kh[s] = k[s] + h * head_dim;
        K(attention_logits)(q + h * head_dim, n_embd, kh, exps + h * positions,
                            n_head * positions, rows, first, head_dim, scale, 0, pack);
    }
}

KERNEL static void K(attention_values_of_heads)(const double *const *v, const double *exps,
                                                const double *sums, double *out, ptrdiff_t rows,
                                                ptrdiff_t first, ptrdiff_t n_embd,
                                                ptrdiff_t n_head, ptrdiff_t h_start,
                                                ptrdiff_t h_end, void *space)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    const ptrdiff_t stride = n_head * positions;
    double *inverses = (double *)space + head_dim * PANEL;
    const double **vh = (const double **)(inverses + rows);
    ptrdiff_t h, r, s, j, r0;

    for (h = h_start; h < h_end; h++) {
        const ptrdiff_t hs = h * head_dim;
        for (s = 0; s < positions; s++)
            vh[s] = v[s] + hs;
        for (r = 0; r < rows; r++) {
            inverses[r] = sums[2 * (r * n_head + h) + 1];
            for (j = 0; j < head_dim; j++)
                out[r * n_embd + hs + j] = 0.0;     /* each sum from 0.0 */
        }
        for (r0 = 0; r0 < rows; r0 += MR) {
#define CALL(nv) K(position_sums_tile)(exps + h * positions, stride, inverses, vh, out + hs, \
                                       n_embd, rows, first, r0, j0, 0, nv)
            HEAD_COLUMNS(head_dim, CALL);
#undef CALL
        }
        if (head_dim % VW)
            for (r = 0; r < rows; r++)
                K(values_left_over)(exps + h * positions + r * stride, inverses[r], vh,
                                    out + r * n_embd + hs, first + r + 1,
                                    head_dim / VW * VW, head_dim);
    }
}

/*
 * fused_attention_backward in tiles, for the heads h_start <= h < h_end of
 * q, keys and values that share no memory (each gradient is then a sum of
 * its own, and the sums can be taken in any order of rows, each in fused.c's
 * order of terms). Work space: see ATTENTION_BACKWARD_SPACE.
 */
#define ATTENTION_BACKWARD_SPACE(head_dim, rows, positions)                     \
    (((head_dim) * 32 + (rows) * (positions) + (positions) + (rows)) * sizeof(double) \
     + 4 * (positions) * sizeof(double *))

KERNEL static void K(attention_backward)(const double *q, const double *const *k,
                                         const double *const *v, const double *exps,
                                         const double *sums, const double *dout, double *dq,
                                         double *const *dk, double *const *dv, ptrdiff_t rows,
                                         ptrdiff_t first, ptrdiff_t n_embd, ptrdiff_t n_head,
                                         double scale, ptrdiff_t h_start, ptrdiff_t h_end,
                                         void *space)
{
    const ptrdiff_t head_dim = n_embd / n_head, positions = first + rows;
    const ptrdiff_t stride = n_head * positions, whole = head_dim / VW * VW;
    /* a panel, the logits' gradients, de, the rows' inverses, pointers to
       the key and value rows and to their gradients */
    double *pack = space, *dl = pack + head_dim * PANEL, *de = dl + rows * positions;
    double *inverses = de + positions;
    const double **rows_of = (const double **)(inverses + rows);
    double **grads_of = (double **)(rows_of + 2 * positions);
    ptrdiff_t h, r, s, j, r0, s0, lowest;

    for (h = h_start; h < h_end; h++) {
        const ptrdiff_t hs = h * head_dim;
        const double *e_h = exps + h * positions;
        const double **kh = rows_of, **vh = rows_of + positions;
        double **dkh = grads_of, **dvh = grads_of + positions;
        for (s = 0; s < positions; s++) {
            kh[s] = k[s] + hs;
            vh[s] = v[s] + hs;
            dkh[s] = dk[s] + hs;
            dvh[s] = dv[s] + hs;
        }
        for (r = 0; r < rows; r++)
            inverses[r] = sums[2 * (r * n_head + h) + 1];
        /* the weights' gradients: v[s] . dout[r], the last j first */
        K(attention_logits)(dout + hs, n_embd, vh, dl, positions, rows, first, head_dim, 1.0, 1,
                            pack);
        /* through the softmax, exp and the scale: the logits' gradients */
        for (r = 0; r < rows; r++) {
            const ptrdiff_t n = first + r + 1;
            const double *e = e_h + r * stride;
            double *d = dl + r * positions;
            softmax_exps_backward(e, sums[2 * (r * n_head + h)], inverses[r], d, de, n);
            for (s = 0; s < n; s++)
                d[s] = scale * (e[s] * de[s]);
        }
        /* v[s] += weight[r][s] * dout[r] and k[s] += dlogit[r][s] * q[r], the
           last row first; q[r] += dlogit[r][s] * k[s], the last key first */
        for (s0 = 0; s0 < positions; s0 += MR) {
#define CALL(nv) K(row_sums_tile)(e_h, stride, inverses, dout + hs, n_embd, dvh, positions, \
                                  rows, first, s0, j0, nv)
            HEAD_COLUMNS(head_dim, CALL);
#undef CALL
#define CALL(nv) K(row_sums_tile)(dl, positions, 0, q + hs, n_embd, dkh, positions, rows, \
                                  first, s0, j0, nv)
            HEAD_COLUMNS(head_dim, CALL);
#undef CALL
        }
        for (r0 = 0; r0 < rows; r0 += MR) {
#define CALL(nv) K(position_sums_tile)(dl, positions, 0, kh, dq + hs, n_embd, rows, first, \
                                       r0, j0, 1, nv)
            HEAD_COLUMNS(head_dim, CALL);
#undef CALL
        }
        for (j = whole; j < head_dim; j++) {    /* the columns left over */
            for (s = 0; s < positions; s++) {
                double a_v = dvh[s][j], a_k = dkh[s][j];
                lowest = s - first > 0 ? s - first : 0;
                for (r = rows - 1; r >= lowest; r--) {
                    a_v += (e_h[r * stride + s] * inverses[r]) * dout[r * n_embd + hs + j];
                    a_k += q[r * n_embd + hs + j] * dl[r * positions + s];
                }
                dvh[s][j] = a_v;
                dkh[s][j] = a_k;
            }
            for (r = 0; r < rows; r++) {
                double a = dq[r * n_embd + hs + j];
                for (s = first + r; s >= 0; s--)
                    a += kh[s][j] * dl[r * positions + s];
                dq[r * n_embd + hs + j] = a;
            }
        }
    }
}


/* Element by element ------------------------------------------------------- */

typedef long long K(mask) __attribute__((vector_size(VW * 8)));
#define MASK K(mask)

/* relu(x) ** 2 as pyfloat_square(max(x, 0)): the product r * r wherever
   Dekker's exact error shows it is pow's result too, else fused.c's
   pyfloat_square (which asks pow) for the vector's lanes. */
KERNEL static int K(relu_squared)(const double *x, double *y, ptrdiff_t n)
{
    const MASK exponent = (MASK){0} + 0x7ff0000000000000LL;
    ptrdiff_t i, l;

    for (i = 0; i + VW <= n; i += VW) {
        const VEC xv = LOAD(x + i);
        const VEC r = (VEC)((MASK)xv & (xv > 0.0));             /* max(0, x): 0.0 for NaN */
        const VEC p = r * r;
        const VEC c = PYFLOAT_SPLIT * r, hi = c - (c - r), lo = r - hi;
        const VEC error = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
        const VEC abs_error = (VEC)((MASK)error & ~((MASK){0} + (long long)0x8000000000000000ULL));
        const VEC ulp = (VEC)((MASK)p & exponent) * 0x1p-52;
        const MASK ok = (r == 0.0) | ((r >= 0x1p-60) & (r <= 0x1p+60) &
                                      (abs_error < PYFLOAT_NEAR_HALF * ulp));
        int all = 1;
        for (l = 0; l < VW; l++)
            all &= ok[l] != 0;
        if (all) {
            STORE(y + i, p);
            continue;
        }
        for (l = i; l < i + VW; l++) {
            y[l] = pyfloat_square(x[l] > 0 ? x[l] : 0.0);
            if (isinf(y[l]) && isfinite(x[l]))
                return PYFLOAT_OVERFLOW;
        }
    }
    for (; i < n; i++) {
        y[i] = pyfloat_square(x[i] > 0 ? x[i] : 0.0);
        if (isinf(y[i]) && isfinite(x[i]))
            return PYFLOAT_OVERFLOW;
    }
    return PYFLOAT_OK;
}

/* dx += (2.0 * x) * dy where x > 0 (elsewhere dx is left as it is): the
   loop of fused.c, which the compiler turns into vectors of this width */
KERNEL static void K(relu_squared_backward)(const double *x, const double *dy, double *dx,
                                            ptrdiff_t n)
{
    ptrdiff_t i;

    for (i = 0; i < n; i++)
        dx[i] = x[i] > 0 ? dx[i] + (2.0 * x[i]) * dy[i] : dx[i];
}

#undef MASK

#undef MR
#undef NV
#undef PANEL
#undef VEC
#undef LOAD
#undef STORE
#undef INLINE
#undef ROW_SUMS_TILE
#undef ROW_SUMS_TILE_OF
#undef ALWAYS
#undef REAL_ROW
#undef HEAD_COLUMNS
