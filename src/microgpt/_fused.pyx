"""The fused operations of the fast path: matrices of float64 in an autograd graph.

A ``Tensor`` is a row-major matrix of doubles (row t of an activation is
position t) that remembers the operation that made it. Each operation
(``embedding``, ``add``, ``linear``, ``rmsnorm``, ``relu``, ``relu_squared``,
``softmax``, ``attention``, ``cross_entropy``) is one node whose forward and
backward passes are C loops (csrc/fused.c). Forward results equal
microgpt.py's scalar Values bit for bit, and so do the gradients: the backward
passes add them up in the order microgpt.py's backward() does, for models
built like microgpt.py's GPT (see fused.c). ``Parameters`` keeps every
parameter in one contiguous array and ``Adam`` updates it in one loop.

Whatever Python code passes in, these give a Python exception or the right
answer: every object is whole from the moment it exists (made in
``__cinit__``; ``__init__`` changes nothing), arguments are checked before
use, sequences are copied once into memory of ours before they are read, and
every size is checked for overflow before memory is allocated for it.
"""
cimport cython
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.math cimport sqrt
from libc.string cimport memcpy, memset

from microgpt._pyfloat cimport PYFLOAT_OK, pyfloat_pow, raise_for

from operator import index as _index

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    Py_ssize_t PyNumber_AsSsize_t(object o, object exc) except? -1

cdef extern from "Python.h":
    int PyTraceMalloc_Track(unsigned int domain, size_t ptr, size_t size)
    int PyTraceMalloc_Untrack(unsigned int domain, size_t ptr)

cdef extern from "pages.h":
    const size_t PAGES_LARGE
    void *pages_alloc(size_t size) noexcept nogil
    void pages_free(void *p, size_t size) noexcept nogil

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
                                     ptrdiff_t dy_stride, const ptrdiff_t *order, double *dx,
                                     ptrdiff_t rows, ptrdiff_t nin, ptrdiff_t nout) noexcept nogil
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
    void fused_cross_entropy_visit_order(const ptrdiff_t *targets, ptrdiff_t rows, ptrdiff_t n,
                                         ptrdiff_t *order) noexcept nogil
    void fused_adam(double *p, double *g, double *m, double *v, ptrdiff_t n,
                    double lr_t, double beta1, double beta2, double eps,
                    double bias1, double bias2) noexcept nogil


def kernel_isa():
    """The instruction set the kernels run with on this CPU: "avx512", "avx2"
    or "portable" (MICROGPT_KERNELS=avx2 or =portable in the environment
    caps it)."""
    return fused_kernel_isa().decode()


def set_threads(n):
    """Run the kernels whose outputs split into independent parts (the
    linear layers, attention and Adam of big models) on n threads, this one
    included; returns how many are in use (fewer if the system would not
    start more). Each output is still computed by one thread, in the same
    order: the results are the same for any n. The default is 1."""
    n = _index(n)
    if not 1 <= n <= 256:
        raise ValueError(f"threads must be from 1 to 256, not {n}")
    return fused_set_threads(n)


def threads():
    """The number of threads the kernels use (set_threads)."""
    return fused_threads()


cdef enum Op:
    LEAF            # an input or a parameter
    EMBEDDING
    ADD
    LINEAR
    RMSNORM
    RELU
    RELU_SQUARED
    SOFTMAX
    ATTENTION
    CROSS_ENTROPY


cdef inline int _check(int status) except -1:
    """Raise what the scalar operation would have raised."""
    return 0 if status == PYFLOAT_OK else raise_for(status)


cdef Py_ssize_t _product(Py_ssize_t a, Py_ssize_t b) except -1:
    """a * b for sizes a, b >= 0, refused if it does not fit in a Py_ssize_t."""
    if b and a > PY_SSIZE_T_MAX // b:
        raise MemoryError(f"{a} x {b} is too large")
    return a * b


cdef void *_alloc_items(Py_ssize_t n, size_t item, bint zero) except NULL:
    """Memory for n items of item bytes each (at least one item), zeroed or not."""
    cdef void *p
    if n < 0 or <size_t>n > <size_t>PY_SSIZE_T_MAX // item:
        raise MemoryError(f"{n} items of {item} bytes are too large")
    n = max(n, 1)
    p = PyMem_Calloc(n, item) if zero else PyMem_Malloc(n * item)
    if p == NULL:               # the memory kept for reuse first: then out of memory
        _release_kept()
        p = PyMem_Calloc(n, item) if zero else PyMem_Malloc(n * item)
    if p == NULL:
        raise MemoryError()
    return p


cdef inline double *_alloc(Py_ssize_t n, bint zero) except NULL:
    return <double *>_alloc_items(n, sizeof(double), zero)


# The values and gradients of tensors, kept for the next tensor of the same
# size: a training step frees the matrices the next step asks for again, in
# the same sizes, and taking them back here costs less than malloc and free
# (and than the page faults of memory given back to the system: blocks of
# PAGES_LARGE bytes or more are pages of their own, csrc/pages.c). Kept blocks of n doubles form a list threaded through their first
# bytes, one list per size, in a table of _SIZES sizes found by n % _SIZES
# and the slots after it.
#
# What is kept never makes the tensors take more memory than the most they
# have had in use at once (_most_used), or than KEPT_AT_LEAST: when a new
# block would, kept blocks are freed first. Documents of varying length free blocks of sizes the next
# step may not ask for; so the memory a run's estimate counts, its largest
# step's tensors, bounds the kept blocks too. Any allocation that fails
# frees them all before it reports that memory ran out. All of this runs
# with the GIL held, which keeps it whole across threads.
cdef enum:
    _TRACE_DOMAIN = 0x6d677074       # tracemalloc's domain of the pages ("mgpt")
    _SIZES = 512
    # However little the tensors use, this much may be kept: a small model's
    # blocks for every length of its documents, reused from step to step
    # (without, microgpt.py's run would allocate 29 of a step's blocks anew)
    _KEPT_AT_LEAST = 1 << 20

KEPT_AT_LEAST = _KEPT_AT_LEAST

cdef struct _Kept:
    Py_ssize_t n                # doubles per block; 0: a free slot
    void *first                 # the first kept block; each holds the next

cdef _Kept _kept[_SIZES]
cdef Py_ssize_t _kept_bytes = 0     # in the kept blocks
cdef Py_ssize_t _used_bytes = 0     # in blocks from _matrix not given back
cdef Py_ssize_t _most_used = _KEPT_AT_LEAST  # the most _used_bytes has been, or that
cdef Py_ssize_t _evict_at = 0       # the slot _free_kept begins with


cdef _Kept *_kept_of(Py_ssize_t n) noexcept:
    """The slot of blocks of n doubles (made if missing), or NULL if full."""
    cdef Py_ssize_t i, slot
    for i in range(_SIZES):
        slot = (n + i) % _SIZES
        if _kept[slot].n == n:
            return &_kept[slot]
        if _kept[slot].n == 0:
            _kept[slot].n = n
            return &_kept[slot]
    return NULL


cdef void _free_kept(Py_ssize_t nbytes) noexcept:
    """Free kept blocks, of any size, until nbytes are freed or none is left:
    the slots in turn, from where the last call stopped (what was kept
    longest ago goes first, and no call walks the table from its start)."""
    global _kept_bytes, _evict_at
    cdef Py_ssize_t i, slot, freed = 0
    cdef void *p
    for i in range(_SIZES):
        slot = (_evict_at + i) % _SIZES
        while _kept[slot].first != NULL and freed < nbytes:
            p = _kept[slot].first
            _kept[slot].first = (<void **>p)[0]
            _free_block(p, _kept[slot].n * <Py_ssize_t>sizeof(double))
            freed += _kept[slot].n * <Py_ssize_t>sizeof(double)
        if freed >= nbytes:
            _evict_at = slot
            break
    _kept_bytes -= freed
    if _kept_bytes == 0:        # (a slot emptied while others are kept stays
        for i in range(_SIZES): # its size's: the sizes after it probe past it)
            _kept[i].n = 0


cdef Py_ssize_t _release_kept() noexcept:
    """Free every kept block; the bytes freed."""
    global _most_used
    cdef Py_ssize_t released = _kept_bytes
    fused_release_space()
    _free_kept(_kept_bytes)
    _most_used = max(_used_bytes, <Py_ssize_t>_KEPT_AT_LEAST)
    return released


cdef double *_matrix(Py_ssize_t n, bint zero) except NULL:
    """n doubles for a tensor, zeroed or not: a kept block of that size if
    there is one, else new memory."""
    global _kept_bytes, _used_bytes, _most_used
    cdef _Kept *kept
    cdef Py_ssize_t nbytes
    cdef double *p
    if n < 0 or max(n, 1) > (PY_SSIZE_T_MAX - _most_used) // <Py_ssize_t>sizeof(double):
        raise MemoryError(f"{n} doubles are too many")
    nbytes = max(n, 1) * <Py_ssize_t>sizeof(double)
    kept = _kept_of(n) if n >= 1 else NULL
    if kept != NULL and kept.first != NULL:
        p = <double *>kept.first
        kept.first = (<void **>p)[0]
        _kept_bytes -= nbytes
        if zero:
            memset(p, 0, nbytes)
    else:
        # room first, then the block: at no moment more than the most in use
        # (_used_bytes + _kept_bytes <= _most_used: the sums do not overflow)
        if _used_bytes + nbytes + _kept_bytes > max(_most_used, _used_bytes + nbytes):
            _free_kept(_used_bytes + nbytes + _kept_bytes
                       - max(_most_used, _used_bytes + nbytes))
        p = _alloc(n, zero) if <size_t>nbytes < PAGES_LARGE else _pages(nbytes)
    _used_bytes += nbytes
    _most_used = max(_most_used, _used_bytes)
    return p


cdef Py_ssize_t _doubles_for(Py_ssize_t n) except -1:
    """How many doubles hold n ptrdiff_t: an index array of n, a block of
    _matrix's too (kept and reused, as a step's visit orders are)."""
    if n > PY_SSIZE_T_MAX // <Py_ssize_t>sizeof(ptrdiff_t):
        raise MemoryError(f"{n} indices are too many")
    return (n * <Py_ssize_t>sizeof(ptrdiff_t) + <Py_ssize_t>sizeof(double) - 1) \
        // <Py_ssize_t>sizeof(double)


cdef double *_pages(size_t nbytes) except NULL:
    """nbytes of zeros in pages of their own (csrc/pages.c): a large block,
    given back to the system when freed. tracemalloc sees them, in a domain
    of their own."""
    cdef void *p = pages_alloc(nbytes)
    if p == NULL:
        _release_kept()
        p = pages_alloc(nbytes)
    if p == NULL:
        raise MemoryError()
    PyTraceMalloc_Track(_TRACE_DOMAIN, <size_t>p, nbytes)
    return <double *>p


cdef void _free_block(void *p, Py_ssize_t nbytes) noexcept:
    """Free a block of _matrix's: the C library's or pages of its own."""
    if <size_t>nbytes < PAGES_LARGE:
        PyMem_Free(p)
    else:
        PyTraceMalloc_Untrack(_TRACE_DOMAIN, <size_t>p)
        pages_free(p, nbytes)


cdef void _unmatrix(double *p, Py_ssize_t n) noexcept:
    """Give back a block of n doubles from _matrix: kept, or freed."""
    global _kept_bytes, _used_bytes
    cdef _Kept *kept
    cdef Py_ssize_t nbytes = max(n, 1) * <Py_ssize_t>sizeof(double)
    if p == NULL:
        return
    _used_bytes -= nbytes
    kept = _kept_of(n) if n >= 1 else NULL
    if kept == NULL:
        _free_block(p, nbytes)
        return
    (<void **>p)[0] = kept.first
    kept.first = p
    _kept_bytes += nbytes


def release_kept_memory():
    """Free the memory kept for reuse by tensors to come (and the vector
    kernels' work space); returns the tensors' part of it, in bytes. (A
    training step's tensors free theirs into it, never more than the most
    the tensors have had in use at once, or KEPT_AT_LEAST bytes.)"""
    return _release_kept()


@cython.auto_pickle(False)
cdef class _Array:
    """Memory of another object as a buffer of float64, for memoryview and numpy."""
    cdef double *ptr
    cdef int ndim
    cdef Py_ssize_t shape[2]
    cdef Py_ssize_t strides[2]
    cdef object owner           # keeps ptr alive; None: made by Python code, no memory

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self.owner is None:
            raise BufferError("an _Array made outside microgpt views no memory")
        view.buf = self.ptr
        view.obj = self
        view.len = self.shape[0] * (self.shape[1] if self.ndim == 2 else 1) * sizeof(double)
        view.readonly = 0
        view.itemsize = sizeof(double)
        # what the consumer asked for: plain bytes (PyBUF_SIMPLE), or more
        view.format = <char *>b"d" if flags & PyBUF_FORMAT else NULL
        view.ndim = self.ndim
        view.shape = self.shape if (flags & PyBUF_ND) == PyBUF_ND else NULL
        view.strides = self.strides if (flags & PyBUF_STRIDES) == PyBUF_STRIDES else NULL
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


cdef object _NODE = object()     # Tensor(_NODE): a node whose operation fills it in


@cython.final
@cython.no_gc       # a DAG: tensors only reference those made before them
@cython.auto_pickle(False)
cdef class Tensor:
    """A matrix of float64 in the autograd graph.

    ``Tensor([[1.0, 2.0], [3.0, 4.0]])`` makes a leaf. ``data`` and ``grad``
    are writable memoryviews of the values (``numpy.asarray(t.data)`` shares
    them), except that the data of a one-number tensor, such as a loss, is
    that number, as for a Value. ``backward()`` on a one-number tensor sets
    the gradient of everything it depends on. A tensor's shape and inputs
    never change: it is made whole by ``Tensor(rows)`` (or by an operation),
    and ``__init__`` changes nothing.
    """
    cdef double *_data
    cdef double *_grad              # NULL until a backward pass needs it
    cdef bint _grad_unset           # _grad's memory not yet zeroed (see backward)
    cdef readonly Py_ssize_t rows
    cdef readonly Py_ssize_t cols
    cdef bint _owned                # _data and _grad are this tensor's own memory
    cdef object _base               # a view's memory belongs to it
    cdef int _op                    # the operation that made this tensor
    cdef tuple _inputs              # the tensors it was made from
    cdef double *_saved             # what its backward pass needs: scales, probabilities, exps
    cdef double *_saved2            # and more: RMSNORM mean squares, softmax totals
    cdef Py_ssize_t _saved_n        # their sizes, in doubles
    cdef Py_ssize_t _saved2_n
    cdef ptrdiff_t *_index          # EMBEDDING ids, CROSS_ENTROPY targets
    cdef ptrdiff_t *_order          # LINEAR: its outputs, per row, in the order their
                                    #   gradients reach its input (set by its consumer)
    cdef _QKV _qkv                  # LINEAR: the query, key and value linears it is one of;
                                    #   ATTENTION: those of its inputs, which it owns
    cdef double _scale              # SOFTMAX and ATTENTION scale factor
    cdef Py_ssize_t _first          # ATTENTION: position of the first row
    cdef Py_ssize_t _n_head         # ATTENTION: heads
    cdef Py_ssize_t _n_keys         # ATTENTION: key tensors among the inputs
    cdef bint _separate             # ATTENTION: no tensor twice among them (so q, the keys
                                    #   and the values share no memory: each owns its own,
                                    #   or views a matrix of its own in Parameters)
    cdef unsigned long long _mark   # number of the backward pass that last visited it

    def __cinit__(self, rows):
        cdef tuple copied
        cdef Py_ssize_t t, i
        self._inputs = ()
        if rows is _NODE:
            return
        copied = tuple([tuple(row) for row in rows])    # read once: rows may change under us
        if not copied or not copied[0] or any([len(row) != len(copied[0]) for row in copied]):
            raise ValueError("a Tensor needs a non-empty list of non-empty rows of equal length")
        self.rows, self.cols = len(copied), len(copied[0])
        self._data = _matrix(_product(self.rows, self.cols), False)
        self._owned = True
        for t in range(self.rows):
            for i in range(self.cols):
                self._data[t * self.cols + i] = copied[t][i]

    def __dealloc__(self):
        if self._op == ATTENTION and self._qkv is not None:
            self._qkv.alive = False     # its linears' pointers to each other go stale
        if self._owned:
            _unmatrix(self._data, self.rows * self.cols)
            _unmatrix(self._grad, self.rows * self.cols)
        _unmatrix(self._saved, self._saved_n)
        _unmatrix(self._saved2, self._saved2_n)
        PyMem_Free(self._index)
        PyMem_Free(self._order)

    @property
    def shape(self):
        """(rows, cols)"""
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
        """Tensor(shape=(rows, cols))"""
        return f"Tensor(shape=({self.rows}, {self.cols}))"

    cdef int _ensure_grad(self) except -1:
        self._reserve_grad()
        _zero_unset_grad(self)
        return 0

    cdef int _reserve_grad(self) except -1:
        """Memory for the gradient, zeroed later by _zero_unset_grad."""
        if self._grad == NULL:
            if not self._owned:
                raise RuntimeError("a view has its gradient in its parameters")
            self._grad = _matrix(self.rows * self.cols, False)
            self._grad_unset = True
        return 0

    def backward(self):
        """Add to every tensor this one depends on the gradient of this one,
        which must be a single number (a loss); sets this one's gradient to 1."""
        cdef PyObject **topo = NULL
        cdef Py_ssize_t i, n
        if self.rows * self.cols != 1:
            raise ValueError(f"backward() needs a one-number tensor (a loss), not {self.shape}")
        n = _topological_order(self, &topo)
        try:
            # Every gradient's memory first (running out of it changes nothing);
            # each is zeroed just before its first sum, when the first tensor
            # made from it passes its gradient back: the zeros are then still
            # in the cache when the sums read them.
            for i in range(n):
                (<Tensor>topo[i])._reserve_grad()
            _zero_unset_grad(self)
            self._grad[0] = 1.0
            # From here on no Python object is made, so no Python code runs
            # (no garbage collection, no finalizer, no switch to another
            # thread) that could start a pass of its own halfway through this one.
            for i in range(n - 1, -1, -1):
                _zero_unset_grads_of_inputs(<Tensor>topo[i])
                _backward(<Tensor>topo[i])
        finally:
            for i in range(n):                  # what an error left unzeroed: no
                                                # gradient ever shows old memory
                _zero_unset_grad(<Tensor>topo[i])
            PyMem_Free(topo)


cdef inline void _zero_unset_grad(Tensor t) noexcept:
    if t._grad_unset:
        memset(t._grad, 0, t.rows * t.cols * sizeof(double))
        t._grad_unset = False


cdef void _zero_unset_grads_of_inputs(Tensor t) noexcept:
    cdef Py_ssize_t i
    for i in range(len(t._inputs)):
        _zero_unset_grad(<Tensor>PyTuple_GET_ITEM(t._inputs, i))


cdef Tensor _node(Py_ssize_t rows, Py_ssize_t cols, int op, tuple inputs):
    """A new tensor made by op from inputs, its values not yet computed."""
    cdef Tensor t = Tensor.__new__(Tensor, _NODE)
    t._data = _matrix(_product(rows, cols), False)
    t.rows, t.cols = rows, cols
    t._owned = True
    t._op = op
    t._inputs = inputs
    return t


cdef int _save(Tensor t, Py_ssize_t n, Py_ssize_t n2) except -1:
    """Room in t for n and n2 doubles that its backward pass needs."""
    t._saved = _matrix(n, False)
    t._saved_n = n
    t._saved2 = _matrix(n2, False)
    t._saved2_n = n2
    return 0


cdef unsigned long long _pass = 0

cdef struct Frame:
    PyObject *node
    Py_ssize_t next_input

cdef Py_ssize_t _topological_order(Tensor root, PyObject ***topo) except -1:
    """The post-order of a depth-first search from root, without recursion:
    borrowed references, in a new array stored at topo; returns its length."""
    global _pass
    cdef Py_ssize_t size = 64, depth = 1, n = 0
    cdef Frame *stack = <Frame *>PyMem_Malloc(size * sizeof(Frame))
    cdef PyObject **order = <PyObject **>PyMem_Malloc(size * sizeof(PyObject *))
    cdef Frame *top
    cdef Tensor node, child
    cdef void *grown
    try:
        if stack == NULL or order == NULL:
            raise MemoryError()
        _pass += 1
        root._mark = _pass
        stack[0].node, stack[0].next_input = <PyObject *>root, 0
        while depth:
            top = &stack[depth - 1]
            node = <Tensor>top.node
            if top.next_input < len(node._inputs):
                child = node._inputs[top.next_input]
                top.next_input += 1
                if child._mark != _pass:
                    child._mark = _pass
                    if depth == size:       # the stack and the order grow together
                        size *= 2
                        grown = PyMem_Realloc(stack, size * sizeof(Frame))
                        if grown == NULL:
                            raise MemoryError()
                        stack = <Frame *>grown
                        grown = PyMem_Realloc(order, size * sizeof(PyObject *))
                        if grown == NULL:
                            raise MemoryError()
                        order = <PyObject **>grown
                    stack[depth].node, stack[depth].next_input = <PyObject *>child, 0
                    depth += 1
            else:
                if n == size:
                    size *= 2
                    grown = PyMem_Realloc(order, size * sizeof(PyObject *))
                    if grown == NULL:
                        raise MemoryError()
                    order = <PyObject **>grown
                order[n] = top.node
                n += 1
                depth -= 1
    except BaseException:
        PyMem_Free(order)
        raise
    finally:
        PyMem_Free(stack)
    topo[0] = order
    return n


cdef int _backward(Tensor t) except -1:
    """Add t's gradient to its inputs' gradients, through t's operation."""
    cdef Tensor a, b
    cdef Py_ssize_t i, n
    cdef double *scratch
    cdef PyObject *linear
    if t._op == LEAF:
        return 0
    a = t._inputs[0]
    if t._op == EMBEDDING:
        for i in range(t.rows - 1, -1, -1):    # a row used twice: the last position first
            for n in range(t.cols):
                a._grad[t._index[i] * a.cols + n] += t._grad[i * t.cols + n]
    elif t._op == ADD:
        b = t._inputs[1]
        for i in range(t.rows * t.cols):
            a._grad[i] += t._grad[i]
            b._grad[i] += t._grad[i]
    elif t._op == LINEAR:
        b = t._inputs[1]
        fused_linear_backward_weight(a._data, t._grad, b._grad, t.rows, a.cols, t.cols)
        if t._qkv is None:
            linear = <PyObject *>t
            _linear_backward_input(&linear, 1, t._order, a)
        else:
            t._qkv.backward_input(t, a)
    elif t._op == RMSNORM:
        fused_rmsnorm_backward(a._data, t._saved, t._saved2, t._grad, a._grad, t.rows, t.cols)
    elif t._op == RELU:
        fused_relu_backward(a._data, t._grad, a._grad, t.rows * t.cols)
    elif t._op == RELU_SQUARED:
        fused_relu_squared_backward(a._data, t._grad, a._grad, t.rows * t.cols)
    elif t._op == SOFTMAX:
        scratch = _alloc(_product(2, t.cols), False)
        fused_softmax_backward(a._data, t._scale, t._grad, a._grad, scratch, t.rows, t.cols)
        PyMem_Free(scratch)
    elif t._op == CROSS_ENTROPY:
        scratch = _alloc(_product(2, a.cols), False)
        fused_cross_entropy_backward(t._saved, t._saved2, t._index, t._grad[0], a._grad, scratch,
                                     a.rows, a.cols)
        PyMem_Free(scratch)
    elif t._op == ATTENTION:
        _attention_backward(t)
    return 0


cdef int _linear_backward_input(PyObject **linears, int count, const ptrdiff_t *order,
                                Tensor x) except -1:
    """x's gradient from those of count linear layers of x, their outputs side
    by side, in the given order (default: each row's outputs, last first)."""
    cdef Py_ssize_t i, n, k = 0, nout = 0
    cdef const double **w_rows = NULL
    cdef const double **dy_cols = NULL
    cdef Tensor y, w
    for i in range(count):
        nout += (<Tensor>linears[i]).cols
    try:
        w_rows = <const double **>_alloc_items(nout, sizeof(double *), False)
        dy_cols = <const double **>_alloc_items(nout, sizeof(double *), False)
        for i in range(count):
            y = <Tensor>linears[i]
            w = y._inputs[1]
            for n in range(y.cols):
                w_rows[k] = w._data + n * w.cols
                dy_cols[k] = y._grad + n
                k += 1
        fused_linear_backward_input(w_rows, dy_cols, (<Tensor>linears[0]).cols, order, x._grad,
                                    x.rows, x.cols, nout)
    finally:
        PyMem_Free(w_rows)
        PyMem_Free(dy_cols)
    return 0


cdef int _attention_backward(Tensor t) except -1:
    cdef Tensor q = t._inputs[0]
    cdef Py_ssize_t n = t._first + t.rows, keys_end = 1 + t._n_keys
    cdef Py_ssize_t values_end = len(t._inputs)
    cdef const double **k = NULL
    cdef const double **v = NULL
    cdef double **dk = NULL
    cdef double **dv = NULL
    cdef double *scratch = NULL
    try:
        k = <const double **>_rows(t._inputs, 1, keys_end, n, False)
        v = <const double **>_rows(t._inputs, keys_end, values_end, n, False)
        dk = _rows(t._inputs, 1, keys_end, n, True)
        dv = _rows(t._inputs, keys_end, values_end, n, True)
        scratch = _alloc(_product(2, n), False)
        fused_attention_backward(q._data, k, v, t._saved, t._saved2, t._grad, q._grad, dk, dv,
                                 scratch, t.rows, t._first, t.cols, t._n_head, t._scale,
                                 t._separate)
    finally:
        PyMem_Free(k)
        PyMem_Free(v)
        PyMem_Free(dk)
        PyMem_Free(dv)
        PyMem_Free(scratch)
    return 0


cdef double **_rows(tuple tensors, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t n,
                    bint grad) except NULL:
    """Pointers to the n rows of tensors[start:stop], in order: to their data,
    or to their gradients."""
    cdef double **rows = <double **>_alloc_items(n, sizeof(double *), False)
    cdef Py_ssize_t i, j, r = 0
    cdef Tensor t
    for i in range(start, stop):
        t = tensors[i]
        for j in range(t.rows):
            rows[r] = (t._grad if grad else t._data) + j * t.cols
            r += 1
    return rows


@cython.final
@cython.no_gc
@cython.auto_pickle(False)
cdef class _QKV:
    """The query, key and value linear layers of one attention call, all of
    the same input. microgpt.py's search finishes their outputs interleaved
    (fused_attention_visit_order), so the input's gradient is added up from
    the three together, in that order reversed, once all three have their
    gradients: when the last of them is reached in the backward pass.

    The attention tensor owns this, and keeps the three alive; they point
    back to it, and while it lives their borrowed pointers here are good."""
    cdef PyObject *linears[3]
    cdef bint alive                 # the attention tensor (and so the three) exists
    cdef ptrdiff_t *order           # (a block of _matrix's, of order_n doubles)
    cdef Py_ssize_t order_n
    cdef unsigned long long backward_pass
    cdef int waiting                # linears of this pass still to come

    def __dealloc__(self):
        _unmatrix(<double *>self.order, self.order_n)

    cdef int backward_input(self, Tensor y, Tensor x) except -1:
        cdef PyObject *single = <PyObject *>y
        cdef int i, reached = 0
        if not self.alive:          # the graph is gone: no order left to keep
            return _linear_backward_input(&single, 1, y._order, x)
        if self.backward_pass != _pass:
            self.backward_pass = _pass
            self.waiting = 0
            for i in range(3):
                self.waiting += (<Tensor>self.linears[i])._mark == _pass
        self.waiting -= 1
        if self.waiting == 0:
            for i in range(3):
                reached += (<Tensor>self.linears[i])._mark == _pass
            if reached == 3:
                _linear_backward_input(self.linears, 3, self.order, x)
            else:                   # part of the graph only: no order to keep
                for i in range(3):
                    if (<Tensor>self.linears[i])._mark == _pass:
                        _linear_backward_input(&self.linears[i], 1, NULL, x)
        return 0


cdef _group_qkv(Tensor attn, Tensor q, Tensor k, Tensor v):
    """Mark q, k and v as one _QKV, owned by attn, if they are three linear
    layers of one input."""
    cdef _QKV group
    cdef Py_ssize_t r, i, n = _product(3, q.cols)
    cdef ptrdiff_t *visit
    cdef Tensor y
    if q is k or k is v or q is v:
        return
    for y in (q, k, v):
        if y._op != LINEAR or y._qkv is not None or y._inputs[0] is not q._inputs[0] or \
                y.cols != q.cols or y.rows != q.rows:
            return
    group = _QKV.__new__(_QKV)
    group.order_n = _doubles_for(_product(q.rows, n))
    group.order = <ptrdiff_t *>_matrix(group.order_n, False)
    visit = <ptrdiff_t *>_alloc_items(n, sizeof(ptrdiff_t), False)
    for r in range(q.rows):
        fused_attention_visit_order(attn._first + r, q.cols, attn._n_head, visit)
        for i in range(n):                  # gradients come back in reverse
            group.order[r * n + i] = visit[n - 1 - i]
    PyMem_Free(visit)
    group.linears[0], group.linears[1], group.linears[2] = <PyObject *>q, <PyObject *>k, <PyObject *>v
    group.alive = True
    q._qkv = k._qkv = v._qkv = attn._qkv = group


cdef ptrdiff_t *_indices(tuple values, Py_ssize_t limit, str message) except NULL:
    """The ints values (each taken by __index__, as a list index is) as a new
    C array, each checked to be in range(limit)."""
    cdef Py_ssize_t i, n = len(values)
    cdef ptrdiff_t *index = <ptrdiff_t *>_alloc_items(n, sizeof(ptrdiff_t), False)
    try:
        for i in range(n):
            index[i] = PyNumber_AsSsize_t(values[i], IndexError)
            if not 0 <= index[i] < limit:
                raise IndexError(message.format(values[i], limit))
    except BaseException:
        PyMem_Free(index)
        raise
    return index


# The operations ------------------------------------------------------------
#
# Each checks its arguments and copies any sequence it is given (a tuple of
# it, read once) before it reads a number: what it computes cannot change
# under it.

def embedding(Tensor table not None, ids):
    """The rows ids of table: [table[i] for i in ids], each id an int in
    range(table.rows)."""
    cdef tuple copied = tuple(ids)
    cdef Py_ssize_t t, n = len(copied)
    cdef Tensor out = _node(n, table.cols, EMBEDDING, (table,))
    out._index = _indices(copied, table.rows, "row {} of a table of {} rows")
    for t in range(n):
        memcpy(out._data + t * table.cols, table._data + out._index[t] * table.cols,
               table.cols * sizeof(double))
    return out


def add(Tensor a not None, Tensor b not None):
    """a + b, element by element: [x + y for x, y in zip(a, b)] for each row."""
    cdef Py_ssize_t i
    cdef Tensor out
    if a.rows != b.rows or a.cols != b.cols:
        raise ValueError(f"add: shapes {a.shape} and {b.shape} differ")
    out = _node(a.rows, a.cols, ADD, (a, b))
    for i in range(a.rows * a.cols):
        out._data[i] = a._data[i] + b._data[i]
    return out


def linear(Tensor x not None, Tensor w not None):
    """microgpt.py's linear(x, w) for each row of x: w is (nout, nin), x (rows, nin)."""
    cdef Tensor out
    if x.cols != w.cols:
        raise ValueError(f"linear: rows of {x.cols} values times a {w.shape} matrix")
    out = _node(x.rows, w.rows, LINEAR, (x, w))
    fused_linear(x._data, w._data, out._data, x.rows, x.cols, w.rows)
    return out


def rmsnorm(Tensor x not None):
    """microgpt.py's rmsnorm(x) for each row of x."""
    cdef Tensor out = _node(x.rows, x.cols, RMSNORM, (x,))
    _save(out, x.rows, x.rows)
    _check(fused_rmsnorm(x._data, out._data, out._saved, out._saved2, x.rows, x.cols))
    return out


def relu(Tensor x not None):
    """[xi.relu() for xi in x], element by element."""
    cdef Tensor out = _node(x.rows, x.cols, RELU, (x,))
    fused_relu(x._data, out._data, x.rows * x.cols)
    return out


def relu_squared(Tensor x not None):
    """[xi.relu() ** 2 for xi in x], element by element."""
    cdef Tensor out = _node(x.rows, x.cols, RELU_SQUARED, (x,))
    _check(fused_relu_squared(x._data, out._data, x.rows * x.cols))
    return out


def softmax(Tensor x not None, double temperature=1.0):
    """microgpt.py's softmax of each row of x, divided by temperature first
    (as [l / temperature for l in logits]: times temperature ** -1)."""
    cdef Tensor out = _node(x.rows, x.cols, SOFTMAX, (x,))
    _check(pyfloat_pow(temperature, -1.0, &out._scale))
    _check(fused_softmax(x._data, out._scale, out._data, x.rows, x.cols))
    return out


def attention(Tensor q not None, keys, values, Py_ssize_t n_head):
    """Causal self-attention of the rows of q over a KV cache.

    keys and values are lists of tensors, microgpt.py's keys[li] and
    values[li] with each gpt() call's rows appended; the rows of q are the
    last positions of the cache. Each head of each row attends to its
    position and those before it, as in microgpt.py's loop over heads.
    """
    cdef Py_ssize_t n = 0, n_values = 0, head_dim, n_keys, i
    cdef tuple inputs = (q,) + tuple(keys)
    cdef Tensor out, t
    cdef double root
    cdef int status = PYFLOAT_OK
    cdef const double **k = NULL
    cdef const double **v = NULL
    n_keys = len(inputs) - 1
    inputs += tuple(values)
    for i in range(1, len(inputs)):
        if not isinstance(inputs[i], Tensor):
            raise TypeError(f"attention: keys and values must be Tensors, "
                            f"not {type(inputs[i]).__name__}")
        t = inputs[i]
        if t.cols != q.cols:
            raise ValueError(f"attention: keys and values of {t.cols} values, queries of {q.cols}")
        if i <= n_keys:
            n += t.rows
        else:
            n_values += t.rows
    if n != n_values or n < q.rows:
        raise ValueError(f"attention: {n} keys and {n_values} values for {q.rows} queries")
    if n_head <= 0 or q.cols % n_head:
        raise ValueError(f"attention: {q.cols} values do not split into {n_head} heads")
    head_dim = q.cols // n_head
    out = _node(q.rows, q.cols, ATTENTION, inputs)
    out._first, out._n_head, out._n_keys = n - q.rows, n_head, n_keys
    out._separate = len({id(t) for t in inputs}) == len(inputs)
    _check(pyfloat_pow(head_dim, 0.5, &root))            # head_dim**0.5
    _check(pyfloat_pow(root, -1.0, &out._scale))         # / x is * x**-1
    _save(out, _product(_product(q.rows, n_head), n), _product(_product(2, q.rows), n_head))
    try:
        k = <const double **>_rows(inputs, 1, 1 + n_keys, n, False)
        v = <const double **>_rows(inputs, 1 + n_keys, len(inputs), n, False)
        status = fused_attention(q._data, k, v, out._data, out._saved, out._saved2, q.rows,
                                 out._first, q.cols, n_head, out._scale)
    finally:
        PyMem_Free(k)
        PyMem_Free(v)
    _check(status)
    if n_keys and len(inputs) > 1 + n_keys:
        _group_qkv(out, q, inputs[n_keys], inputs[len(inputs) - 1])
    return out


def cross_entropy(Tensor logits not None, targets):
    """The mean over rows of -log(softmax(logits[t])[targets[t]]), as
    microgpt.py's (1 / n) * sum(losses): a one-number tensor. Each target is
    an int in range(logits.cols)."""
    cdef tuple copied = tuple(targets)
    cdef Py_ssize_t n = len(copied)
    cdef Tensor out
    if n != logits.rows or n == 0:
        raise ValueError(f"cross_entropy: {n} targets for {logits.rows} rows")
    out = _node(1, 1, CROSS_ENTROPY, (logits,))
    out._index = _indices(copied, logits.cols, "target {} of {} classes")
    _save(out, _product(logits.rows, logits.cols), _product(2, logits.rows))
    _check(fused_cross_entropy(logits._data, out._index, out._saved, out._saved2, out._data,
                               logits.rows, logits.cols))
    if logits._op == LINEAR and logits._order == NULL:
        logits._order = _reversed_visit_order(out._index, logits.rows, logits.cols)
    return out


cdef ptrdiff_t *_reversed_visit_order(const ptrdiff_t *targets, Py_ssize_t rows,
                                      Py_ssize_t n) except NULL:
    """The order the logits' gradients reach the linear layer's input: the
    reverse of the order in which the loss reaches the logits."""
    cdef Py_ssize_t size = _product(rows, n), t, i
    cdef ptrdiff_t *visit = <ptrdiff_t *>_alloc_items(size, sizeof(ptrdiff_t), False)
    cdef ptrdiff_t *order
    try:
        order = <ptrdiff_t *>_alloc_items(size, sizeof(ptrdiff_t), False)
    except BaseException:
        PyMem_Free(visit)
        raise
    fused_cross_entropy_visit_order(targets, rows, n, visit)
    for t in range(rows):
        for i in range(n):
            order[t * n + i] = visit[t * n + n - 1 - i]
    PyMem_Free(visit)
    return order


# Parameters and Adam ----------------------------------------------------------

@cython.final
@cython.auto_pickle(False)
cdef class _Storage:
    """n doubles of data and n of gradients, zeroed; the memory of Parameters."""
    cdef double *data
    cdef double *grad
    cdef Py_ssize_t size

    def __dealloc__(self):
        PyMem_Free(self.data)
        PyMem_Free(self.grad)


@cython.final
@cython.auto_pickle(False)
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

    def __cinit__(self, shapes):
        cdef Py_ssize_t offset = 0, total = 0, rows, cols, count
        cdef list layout = []
        cdef Tensor view
        for name, shape in dict(shapes).items():
            if not isinstance(name, str):
                raise TypeError(f"parameter names must be strings, not {type(name).__name__}")
            rows, cols = [_index(n) for n in shape]
            if rows <= 0 or cols <= 0:
                raise ValueError(f"{name}: a matrix of {rows} x {cols}")
            count = _product(rows, cols)
            if total > PY_SSIZE_T_MAX - count:
                raise MemoryError(f"{total} + {count} parameters are too many")
            total += count
            layout.append((name, rows, cols))
        self._storage = _Storage.__new__(_Storage)
        self._storage.data = _alloc(total, True)
        self._storage.grad = _alloc(total, True)
        self._storage.size = self.size = total
        self.state_dict = {}
        for name, rows, cols in layout:
            view = Tensor.__new__(Tensor, _NODE)
            view.rows, view.cols = rows, cols
            view._data = self._storage.data + offset
            view._grad = self._storage.grad + offset
            view._base = self._storage
            view._op = LEAF
            self.state_dict[name] = view
            offset += rows * cols

    @property
    def data(self):
        """Every parameter, in order, as a 1-D memoryview."""
        return _view(_storage_of(self._storage).data, self.size, 1, self._storage, 1)

    @property
    def grad(self):
        """Every parameter's gradient, in order, as a 1-D memoryview."""
        return _view(_storage_of(self._storage).grad, self.size, 1, self._storage, 1)

    def matrix_rms(self):
        """For each matrix, in order: (name, the root mean square of its
        parameters, that of its gradients), each sum added up in order."""
        cdef _Storage storage = _storage_of(self._storage)
        cdef Tensor t
        cdef double data_total, grad_total
        cdef Py_ssize_t i, n
        result = []
        for name, t in self.state_dict.items():
            n = t.rows * t.cols
            data_total = grad_total = 0.0
            for i in range(n):
                data_total = data_total + t._data[i] * t._data[i]
                grad_total = grad_total + t._grad[i] * t._grad[i]
            result.append((name, sqrt(data_total / n), sqrt(grad_total / n)))
        return result

    def grad_norm(self):
        """The gradients' Euclidean norm: sqrt of g * g added up in parameter
        order, first to last (as a Python loop over them would)."""
        cdef _Storage storage = _storage_of(self._storage)
        cdef double total = 0.0
        cdef Py_ssize_t i
        for i in range(storage.size):
            total = total + storage.grad[i] * storage.grad[i]
        return sqrt(total)


cdef inline _Storage _storage_of(_Storage storage):
    """storage; None while Parameters is being made (code run by its
    arguments' conversions can reach it through the garbage collector)."""
    if storage is None:
        raise RuntimeError("these Parameters are still being made")
    return storage


@cython.final
@cython.auto_pickle(False)
cdef class Adam:
    """microgpt.py's Adam over Parameters, as one loop (csrc/fused.c)."""
    cdef _Storage _storage
    cdef double *_m                 # first moment buffer
    cdef double *_v                 # second moment buffer
    cdef readonly double learning_rate, beta1, beta2, eps_adam

    def __cinit__(self, Parameters parameters not None, double learning_rate=1e-2,
                  double beta1=0.9, double beta2=0.95, double eps_adam=1e-8):
        self.learning_rate, self.beta1, self.beta2, self.eps_adam = \
            learning_rate, beta1, beta2, eps_adam
        self._storage = _storage_of(parameters._storage)
        self._m = _alloc(self._storage.size, True)
        self._v = _alloc(self._storage.size, True)

    def __dealloc__(self):
        PyMem_Free(self._m)
        PyMem_Free(self._v)

    @property
    def m(self):
        """The first moment buffer, one per parameter in order, as a 1-D memoryview."""
        return _view(self._m, _storage_of(self._storage).size, 1, self, 1)

    @property
    def v(self):
        """The second moment buffer, one per parameter in order, as a 1-D memoryview."""
        return _view(self._v, _storage_of(self._storage).size, 1, self, 1)

    def step(self, step, double lr_t):
        """Update every parameter from its gradient at step `step` (from 0),
        with learning rate lr_t, and zero the gradients."""
        cdef double power1, power2
        _storage_of(self._storage)
        _check(pyfloat_pow(self.beta1, step + 1, &power1))     # beta1 ** (step + 1)
        _check(pyfloat_pow(self.beta2, step + 1, &power2))
        fused_adam(self._storage.data, self._storage.grad, self._m, self._v,
                   self._storage.size, lr_t, self.beta1, self.beta2, self.eps_adam,
                   1 - power1, 1 - power2)
