# Tensor, the graph's node, and the buffers that show its memory
# (included by _fused.pyx).

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
    cdef ptrdiff_t *_last           # LINEAR: per row, the output whose gradient reaches its
                                    #   input after the others', which come last to first
                                    #   (set by cross_entropy; NULL: all last to first)
    cdef _QKV _qkv                  # LINEAR: the query, key and value linears it is one of;
                                    #   ATTENTION: those of its inputs, which it owns
    cdef double _scale              # SOFTMAX and ATTENTION scale factor
    cdef Py_ssize_t _first          # ATTENTION: position of the first row
    cdef ptrdiff_t *_lengths        # ATTENTION, CROSS_ENTROPY: the rows are _n_docs documents
    cdef Py_ssize_t _n_docs         #   of these lengths, one after the other (NULL: one)
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
        PyMem_Free(self._last)
        PyMem_Free(self._lengths)

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
