# The C this module's operations call: csrc/fused.h (the kernels, their
# threads and work space) and csrc/pages.h (memory in pages of its own).
cdef extern from "pages.h":
    const size_t PAGES_LARGE
    void *pages_alloc(size_t size) noexcept nogil
    void pages_free(void *p, size_t size) noexcept nogil
    void *pages_resize(void *p, size_t old_size, size_t new_size) noexcept nogil

cdef extern from "fused.h":
    const char *fused_kernel_isa() noexcept nogil
    int fused_set_threads(int n) noexcept nogil
    int fused_threads() noexcept nogil
    void fused_release_space() noexcept nogil
    void fused_linear(const double *x, const double *w, double *y,
                      ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout) noexcept nogil
    void fused_linear_backward_weight(const double *x, const double *dy, double *dw,
                                      ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout) noexcept nogil
    void fused_linear_backward_input(const double *const *w_rows, const double *const *dy_cols,
                                     ptrdiff_t dy_stride, const ptrdiff_t *order,
                                     const ptrdiff_t *last, double *dx, ptrdiff_t rows,
                                     ptrdiff_t nin, ptrdiff_t nout) noexcept nogil
    int fused_rmsnorm(const double *x, double *y, double *scale, double *ms_eps,
                      ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_rmsnorm_backward(const double *x, const double *scale, const double *ms_eps,
                                const double *dy, double *dx, ptrdiff_t rows,
                                ptrdiff_t n) noexcept nogil
    void fused_relu(const double *x, double *y, ptrdiff_t n) noexcept nogil
    void fused_relu_backward(const double *x, const double *dy, double *dx,
                             ptrdiff_t n) noexcept nogil
    int fused_relu_squared(const double *x, double *y, ptrdiff_t n) noexcept nogil
    void fused_relu_squared_backward(const double *x, const double *dy, double *dx,
                                     ptrdiff_t n) noexcept nogil
    int fused_softmax(const double *x, double scale, double *y,
                      ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_softmax_backward(const double *x, double scale, const double *dy, double *dx,
                                double *scratch, ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    int fused_attention(const double *q, const double *const *k, const double *const *v,
                        double *out, double *exps, double *sums, ptrdiff_t rows,
                        ptrdiff_t first, ptrdiff_t n_embd, ptrdiff_t n_head,
                        double scale) noexcept nogil
    void fused_attention_backward(const double *q, const double *const *k,
                                  const double *const *v, const double *exps,
                                  const double *sums, const double *dout, double *dq,
                                  double *const *dk, double *const *dv, double *scratch,
                                  ptrdiff_t rows, ptrdiff_t first, ptrdiff_t n_embd,
                                  ptrdiff_t n_head, double scale, int separate) noexcept nogil
    void fused_attention_visit_order(ptrdiff_t p, ptrdiff_t n_embd, ptrdiff_t n_head,
                                     ptrdiff_t *order) noexcept nogil
    int fused_cross_entropy(const double *logits, const ptrdiff_t *targets, double *exps,
                            double *sums, double *loss, ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_cross_entropy_backward(const double *exps, const double *sums,
                                      const ptrdiff_t *targets, double dloss, double *dlogits,
                                      double *scratch, ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    int fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
                   double lr_t, double beta1, double beta2, double eps,
                   double bias1, double bias2) noexcept nogil
