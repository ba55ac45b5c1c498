"""The fused operations of the fast path: matrices of float64 in an autograd graph.

A ``Tensor`` is a row-major matrix of doubles (row t of an activation is
position t) that remembers the operation that made it. Each operation
(``embedding``, ``add``, ``linear``, ``rmsnorm``, ``relu_squared``,
``softmax``, ``attention``, ``cross_entropy``) is one node whose forward and
backward passes are C loops (csrc/fused.c). Forward results equal
microgpt.py's scalar Values bit for bit; gradients are the same sums added
in another order. ``Parameters`` keeps every parameter in one contiguous
array and ``Adam`` updates it in one loop.
"""
cimport cython
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from libc.string cimport memcpy

import errno as _errno
import os as _os

cdef extern from "pyfloat.h":
    enum:
        PYFLOAT_OK
        PYFLOAT_ZERO_DIVISION
        PYFLOAT_OVERFLOW
        PYFLOAT_DOMAIN
        PYFLOAT_COMPLEX
    int pyfloat_pow(double x, double y, double *out) noexcept nogil

cdef extern from "fused.h":
    void fused_linear(const double *x, const double *w, double *y,
                      ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout) noexcept nogil
    void fused_linear_backward(const double *x, const double *w, const double *dy,
                               double *dx, double *dw,
                               ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout) noexcept nogil
    int fused_rmsnorm(const double *x, double *y, double *scale,
                      ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_rmsnorm_backward(const double *x, const double *scale, const double *dy,
                                double *dx, ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    int fused_relu_squared(const double *x, double *y, ptrdiff_t n) noexcept nogil
    void fused_relu_squared_backward(const double *x, const double *dy, double *dx,
                                     ptrdiff_t n) noexcept nogil
    int fused_softmax(const double *x, double scale, double *y,
                      ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_softmax_backward(const double *y, double scale, const double *dy, double *dx,
                                ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    int fused_attention(const double *q, const double *const *k, const double *const *v,
                        double *out, double *weights, ptrdiff_t rows, ptrdiff_t first,
                        ptrdiff_t n_embd, ptrdiff_t n_head, double scale) noexcept nogil
    void fused_attention_backward(const double *q, const double *const *k,
                                  const double *const *v, const double *weights,
                                  const double *dout, double *dq, double *const *dk,
                                  double *const *dv, ptrdiff_t rows, ptrdiff_t first,
                                  ptrdiff_t n_embd, ptrdiff_t n_head, double scale) noexcept nogil
    int fused_cross_entropy(const double *logits, const ptrdiff_t *targets, double *probs,
                            double *loss, ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_cross_entropy_backward(const double *logits, const double *probs,
                                      const ptrdiff_t *targets, double dloss, double *dlogits,
                                      ptrdiff_t rows, ptrdiff_t n) noexcept nogil
    void fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
                    double lr_t, double beta1, double beta2, double eps,
                    double bias1, double bias2) noexcept nogil


cdef enum Op:
    LEAF            # an input or a parameter
    EMBEDDING
    ADD
    LINEAR
    RMSNORM
    RELU_SQUARED
    SOFTMAX
    ATTENTION
    CROSS_ENTROPY


cdef int _check(int status) except -1:
    """Raise what the scalar operation would have raised."""
    if status == PYFLOAT_OK:
        return 0
    if status == PYFLOAT_ZERO_DIVISION:
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if status == PYFLOAT_OVERFLOW:
        raise OverflowError(_errno.ERANGE, _os.strerror(_errno.ERANGE))
    raise ValueError("math domain error")


cdef double *_alloc(Py_ssize_t n, bint zero) except NULL:
    cdef void *p = PyMem_Calloc(max(n, 1), sizeof(double)) if zero else \
        PyMem_Malloc(max(n, 1) * sizeof(double))
    if p == NULL:
        raise MemoryError()
    return <double *>p


cdef class _Array:
    """Memory of another object as a buffer of float64, for memoryview and numpy."""
    cdef double *ptr
    cdef int ndim
    cdef Py_ssize_t shape[2]
    cdef Py_ssize_t strides[2]
    cdef object owner           # keeps ptr alive

    def __getbuffer__(self, Py_buffer *view, int flags):
        view.buf = self.ptr
        view.obj = self
        view.len = self.shape[0] * (self.shape[1] if self.ndim == 2 else 1) * sizeof(double)
        view.readonly = 0
        view.itemsize = sizeof(double)
        view.format = b"d"
        view.ndim = self.ndim
        view.shape = self.shape
        view.strides = self.strides
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass


cdef object _view(double *ptr, Py_ssize_t rows, Py_ssize_t cols, object owner, int ndim=2):
    """A writable memoryview of rows x cols doubles at ptr, owned by owner."""
    cdef _Array a = _Array.__new__(_Array)
    a.ptr, a.ndim, a.owner = ptr, ndim, owner
    a.shape[0], a.shape[1] = rows, cols
    a.strides[0], a.strides[1] = cols * sizeof(double), sizeof(double)
    if ndim == 1:
        a.shape[0], a.strides[0] = rows * cols, sizeof(double)
    return memoryview(a)


@cython.final
cdef class Tensor:
    """A matrix of float64 in the autograd graph.

    ``Tensor([[1.0, 2.0], [3.0, 4.0]])`` makes a leaf. ``data`` and ``grad``
    are writable memoryviews of the values (``numpy.asarray(t.data)`` shares
    them), except that the data of a one-number tensor, such as a loss, is
    that number, as for a Value. ``backward()`` on a one-number tensor sets
    the gradient of everything it depends on.
    """
    cdef double *_data
    cdef double *_grad              # NULL until a backward pass needs it
    cdef readonly Py_ssize_t rows
    cdef readonly Py_ssize_t cols
    cdef bint _owned                # _data and _grad are this tensor's own memory
    cdef object _base               # a view's memory belongs to it
    cdef int _op                    # the operation that made this tensor
    cdef tuple _inputs              # the tensors it was made from
    cdef double *_saved             # what its backward pass needs (scales, probabilities, weights)
    cdef ptrdiff_t *_index          # EMBEDDING ids, CROSS_ENTROPY targets
    cdef double _scale              # SOFTMAX and ATTENTION scale factor
    cdef Py_ssize_t _first          # ATTENTION: position of the first row
    cdef Py_ssize_t _n_head         # ATTENTION: heads
    cdef Py_ssize_t _n_keys         # ATTENTION: key tensors among the inputs
    cdef unsigned long long _mark   # number of the backward pass that last visited it

    def __init__(self, rows):
        rows = [list(row) for row in rows]
        if not rows or any(len(row) != len(rows[0]) for row in rows):
            raise ValueError("a Tensor needs a non-empty list of rows of equal length")
        self._release()
        self.rows, self.cols = len(rows), len(rows[0])
        self._data = _alloc(self.rows * self.cols, False)
        self._owned = True
        self._op = LEAF
        self._inputs = ()
        for t, row in enumerate(rows):
            for i, x in enumerate(row):
                self._data[t * self.cols + i] = x

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        if self._owned:
            PyMem_Free(self._data)
            PyMem_Free(self._grad)
        self._data = self._grad = NULL
        PyMem_Free(self._saved)
        PyMem_Free(self._index)
        self._saved = NULL
        self._index = NULL

    @property
    def shape(self):
        return (self.rows, self.cols)

    @property
    def data(self):
        """The values: a float for a one-number tensor, else a (rows, cols) memoryview."""
        if self.rows * self.cols == 1:
            return self._data[0]
        return _view(self._data, self.rows, self.cols, self)

    @property
    def grad(self):
        """The gradient, a (rows, cols) memoryview (zeros before any backward pass)."""
        self._ensure_grad()
        return _view(self._grad, self.rows, self.cols, self)

    def tolist(self):
        """The values as a list of rows of floats."""
        return [[self._data[t * self.cols + i] for i in range(self.cols)]
                for t in range(self.rows)]

    def __repr__(self):
        return f"Tensor(shape=({self.rows}, {self.cols}))"

    cdef int _ensure_grad(self) except -1:
        if self._grad == NULL:
            if not self._owned:
                raise RuntimeError("a view has its gradient in its parameters")
            self._grad = _alloc(self.rows * self.cols, True)
        return 0

    def backward(self):
        """Add to every tensor this one depends on the gradient of this one,
        which must be a single number (a loss); sets this one's gradient to 1."""
        cdef Tensor t
        cdef list topo
        if self.rows * self.cols != 1:
            raise ValueError(f"backward() needs a one-number tensor (a loss), not {self.shape}")
        topo = _topological_order(self)
        for t in topo:
            t._ensure_grad()
        self._grad[0] = 1.0
        for t in reversed(topo):
            _backward(t)


cdef Tensor _node(Py_ssize_t rows, Py_ssize_t cols, int op, tuple inputs):
    """A new tensor made by op from inputs, its values not yet computed."""
    cdef Tensor t = Tensor.__new__(Tensor)
    t.rows, t.cols = rows, cols
    t._data = _alloc(rows * cols, False)
    t._owned = True
    t._op = op
    t._inputs = inputs
    return t


cdef unsigned long long _pass = 0

cdef list _topological_order(Tensor root):
    """The post-order of a depth-first search from root, without recursion."""
    global _pass
    cdef list topo = [], stack = [(root, 0)]
    cdef Tensor node, child
    cdef Py_ssize_t i, top
    _pass += 1
    root._mark = _pass
    while stack:
        top = len(stack) - 1            # (no negative indexing: wraparound is off)
        node, i = stack[top]
        if i < len(node._inputs):
            stack[top] = (node, i + 1)
            child = node._inputs[i]
            if child._mark != _pass:
                child._mark = _pass
                stack.append((child, 0))
        else:
            stack.pop()
            topo.append(node)
    return topo


cdef int _backward(Tensor t) except -1:
    """Add t's gradient to its inputs' gradients, through t's operation."""
    cdef Tensor a, b
    cdef Py_ssize_t i, n
    cdef double **dk
    cdef double **dv
    cdef const double **k
    cdef const double **v
    if t._op == LEAF:
        return 0
    a = t._inputs[0]
    if t._op == EMBEDDING:
        for i in range(t.rows):
            for n in range(t.cols):
                a._grad[t._index[i] * a.cols + n] += t._grad[i * t.cols + n]
    elif t._op == ADD:
        b = t._inputs[1]
        for i in range(t.rows * t.cols):
            a._grad[i] += t._grad[i]
            b._grad[i] += t._grad[i]
    elif t._op == LINEAR:
        b = t._inputs[1]
        fused_linear_backward(a._data, b._data, t._grad, a._grad, b._grad, t.rows, a.cols, t.cols)
    elif t._op == RMSNORM:
        fused_rmsnorm_backward(a._data, t._saved, t._grad, a._grad, t.rows, t.cols)
    elif t._op == RELU_SQUARED:
        fused_relu_squared_backward(a._data, t._grad, a._grad, t.rows * t.cols)
    elif t._op == SOFTMAX:
        fused_softmax_backward(t._data, t._scale, t._grad, a._grad, t.rows, t.cols)
    elif t._op == CROSS_ENTROPY:
        fused_cross_entropy_backward(a._data, t._saved, t._index, t._grad[0], a._grad,
                                     a.rows, a.cols)
    elif t._op == ATTENTION:
        n = t._first + t.rows
        k = <const double **>_rows(t._inputs[1:1 + t._n_keys], n, False)
        v = <const double **>_rows(t._inputs[1 + t._n_keys:], n, False)
        dk = _rows(t._inputs[1:1 + t._n_keys], n, True)
        dv = _rows(t._inputs[1 + t._n_keys:], n, True)
        fused_attention_backward(a._data, k, v, t._saved, t._grad, a._grad, dk, dv,
                                 t.rows, t._first, t.cols, t._n_head, t._scale)
        PyMem_Free(k)
        PyMem_Free(v)
        PyMem_Free(dk)
        PyMem_Free(dv)
    return 0


cdef double **_rows(tuple tensors, Py_ssize_t n, bint grad) except NULL:
    """Pointers to the n rows of the tensors, in order: their data, or their grad."""
    cdef double **rows = <double **>PyMem_Malloc(max(n, 1) * sizeof(double *))
    cdef Py_ssize_t i, r = 0
    cdef Tensor t
    if rows == NULL:
        raise MemoryError()
    for t in tensors:
        for i in range(t.rows):
            rows[r] = (t._grad if grad else t._data) + i * t.cols
            r += 1
    return rows


# The operations ------------------------------------------------------------

def embedding(Tensor table, ids):
    """The rows ids of table: [table[i] for i in ids]."""
    cdef Py_ssize_t t, n = len(ids)
    cdef Tensor out = _node(n, table.cols, EMBEDDING, (table,))
    out._index = <ptrdiff_t *>PyMem_Malloc(max(n, 1) * sizeof(ptrdiff_t))
    if out._index == NULL:
        raise MemoryError()
    for t in range(n):
        out._index[t] = ids[t]
        if not 0 <= out._index[t] < table.rows:
            raise IndexError(f"row {ids[t]} of a table of {table.rows} rows")
        memcpy(out._data + t * table.cols, table._data + out._index[t] * table.cols,
               table.cols * sizeof(double))
    return out


def add(Tensor a, Tensor b):
    """a + b, element by element: [x + y for x, y in zip(a, b)] for each row."""
    cdef Py_ssize_t i
    cdef Tensor out
    if a.rows != b.rows or a.cols != b.cols:
        raise ValueError(f"add: shapes {a.shape} and {b.shape} differ")
    out = _node(a.rows, a.cols, ADD, (a, b))
    for i in range(a.rows * a.cols):
        out._data[i] = a._data[i] + b._data[i]
    return out


def linear(Tensor x, Tensor w):
    """microgpt.py's linear(x, w) for each row of x: w is (nout, nin), x (rows, nin)."""
    cdef Tensor out
    if x.cols != w.cols:
        raise ValueError(f"linear: rows of {x.cols} values times a {w.shape} matrix")
    out = _node(x.rows, w.rows, LINEAR, (x, w))
    fused_linear(x._data, w._data, out._data, x.rows, x.cols, w.rows)
    return out


def rmsnorm(Tensor x):
    """microgpt.py's rmsnorm(x) for each row of x."""
    cdef Tensor out = _node(x.rows, x.cols, RMSNORM, (x,))
    out._saved = _alloc(x.rows, False)
    _check(fused_rmsnorm(x._data, out._data, out._saved, x.rows, x.cols))
    return out


def relu_squared(Tensor x):
    """[xi.relu() ** 2 for xi in x], element by element."""
    cdef Tensor out = _node(x.rows, x.cols, RELU_SQUARED, (x,))
    _check(fused_relu_squared(x._data, out._data, x.rows * x.cols))
    return out


def softmax(Tensor x, temperature=1.0):
    """microgpt.py's softmax of each row of x, divided by temperature first
    (as [l / temperature for l in logits]: times temperature ** -1)."""
    cdef Tensor out = _node(x.rows, x.cols, SOFTMAX, (x,))
    _check(pyfloat_pow(temperature, -1.0, &out._scale))
    _check(fused_softmax(x._data, out._scale, out._data, x.rows, x.cols))
    return out


def attention(Tensor q, keys, values, Py_ssize_t n_head):
    """Causal self-attention of the rows of q over a KV cache.

    keys and values are lists of tensors, microgpt.py's keys[li] and
    values[li] with each gpt() call's rows appended; the rows of q are the
    last positions of the cache. Each head of each row attends to its
    position and those before it, as in microgpt.py's loop over heads.
    """
    cdef Py_ssize_t n = 0, n_values = 0, head_dim
    cdef Tensor out, t
    cdef double root
    cdef int status
    cdef const double **k
    cdef const double **v
    keys, values = tuple(keys), tuple(values)
    for t in keys + values:
        if t.cols != q.cols:
            raise ValueError(f"attention: keys and values of {t.cols} values, queries of {q.cols}")
    for t in keys:
        n += t.rows
    for t in values:
        n_values += t.rows
    if n != n_values or n < q.rows:
        raise ValueError(f"attention: {n} keys and {n_values} values for {q.rows} queries")
    if n_head <= 0 or q.cols % n_head:
        raise ValueError(f"attention: {q.cols} values do not split into {n_head} heads")
    head_dim = q.cols // n_head
    out = _node(q.rows, q.cols, ATTENTION, (q,) + keys + values)
    out._first, out._n_head, out._n_keys = n - q.rows, n_head, len(keys)
    _check(pyfloat_pow(head_dim, 0.5, &root))            # head_dim**0.5
    _check(pyfloat_pow(root, -1.0, &out._scale))         # / x is * x**-1
    out._saved = _alloc(q.rows * n_head * n, False)
    k = <const double **>_rows(keys, n, False)
    v = <const double **>_rows(values, n, False)
    status = fused_attention(q._data, k, v, out._data, out._saved, q.rows, out._first,
                             q.cols, n_head, out._scale)
    PyMem_Free(k)
    PyMem_Free(v)
    _check(status)
    return out


def cross_entropy(Tensor logits, targets):
    """The mean over rows of -log(softmax(logits[t])[targets[t]]), as
    microgpt.py's (1 / n) * sum(losses): a one-number tensor."""
    cdef Py_ssize_t t, n = len(targets)
    cdef Tensor out
    if n != logits.rows or n == 0:
        raise ValueError(f"cross_entropy: {n} targets for {logits.rows} rows")
    out = _node(1, 1, CROSS_ENTROPY, (logits,))
    out._index = <ptrdiff_t *>PyMem_Malloc(n * sizeof(ptrdiff_t))
    if out._index == NULL:
        raise MemoryError()
    for t in range(n):
        out._index[t] = targets[t]
        if not 0 <= out._index[t] < logits.cols:
            raise IndexError(f"target {targets[t]} of {logits.cols} classes")
    out._saved = _alloc(logits.rows * logits.cols, False)
    _check(fused_cross_entropy(logits._data, out._index, out._saved, out._data,
                               logits.rows, logits.cols))
    return out


# Parameters and Adam ----------------------------------------------------------

@cython.final
cdef class _Storage:
    """n doubles of data and n of gradients, zeroed; the memory of Parameters."""
    cdef double *data
    cdef double *grad
    cdef Py_ssize_t size

    def __dealloc__(self):
        PyMem_Free(self.data)
        PyMem_Free(self.grad)


@cython.final
cdef class Parameters:
    """Named parameter matrices in one contiguous float64 array.

    ``Parameters({'wte': (27, 16), ...})`` allocates the matrices in the
    order given, zeroed. ``state_dict[name]`` is a Tensor viewing its
    matrix; ``data`` and ``grad`` are 1-D memoryviews of all of them
    (``numpy.asarray(parameters.data)`` shares the memory).
    """
    cdef _Storage _storage
    cdef readonly dict state_dict
    cdef readonly Py_ssize_t size

    def __init__(self, shapes):
        cdef Py_ssize_t offset = 0, rows, cols
        cdef Tensor view
        shapes = {name: (int(rows), int(cols)) for name, (rows, cols) in dict(shapes).items()}
        self.size = sum([rows * cols for rows, cols in shapes.values()])
        self._storage = _Storage.__new__(_Storage)
        self._storage.size = self.size
        self._storage.data = _alloc(self.size, True)
        self._storage.grad = _alloc(self.size, True)
        self.state_dict = {}
        for name, (rows, cols) in shapes.items():
            if rows <= 0 or cols <= 0:
                raise ValueError(f"{name}: a matrix of {rows} x {cols}")
            view = Tensor.__new__(Tensor)
            view.rows, view.cols = rows, cols
            view._data = self._storage.data + offset
            view._grad = self._storage.grad + offset
            view._owned = False
            view._base = self._storage
            view._op = LEAF
            view._inputs = ()
            self.state_dict[name] = view
            offset += rows * cols

    @property
    def data(self):
        """Every parameter, in order, as a 1-D memoryview."""
        return _view(self._storage.data, self.size, 1, self._storage, 1)

    @property
    def grad(self):
        """Every parameter's gradient, in order, as a 1-D memoryview."""
        return _view(self._storage.grad, self.size, 1, self._storage, 1)


@cython.final
cdef class Adam:
    """microgpt.py's Adam over Parameters, as one loop (csrc/fused.c)."""
    cdef _Storage _storage
    cdef double *_m                 # first moment buffer
    cdef double *_v                 # second moment buffer
    cdef readonly double learning_rate, beta1, beta2, eps_adam

    def __init__(self, Parameters parameters, learning_rate=1e-2, beta1=0.9, beta2=0.95,
                 eps_adam=1e-8):
        self._storage = parameters._storage
        PyMem_Free(self._m)
        PyMem_Free(self._v)
        self._m = _alloc(self._storage.size, True)
        self._v = _alloc(self._storage.size, True)
        self.learning_rate, self.beta1, self.beta2, self.eps_adam = \
            learning_rate, beta1, beta2, eps_adam

    def __dealloc__(self):
        PyMem_Free(self._m)
        PyMem_Free(self._v)

    def step(self, step, lr_t):
        """Update every parameter from its gradient at step `step` (from 0),
        with learning rate lr_t, and zero the gradients."""
        cdef double power1, power2
        _check(pyfloat_pow(self.beta1, step + 1, &power1))     # beta1 ** (step + 1)
        _check(pyfloat_pow(self.beta2, step + 1, &power2))
        fused_adam(self._storage.data, self._storage.grad, self._m, self._v,
                   self._storage.size, lr_t, self.beta1, self.beta2, self.eps_adam,
                   1 - power1, 1 - power2)
