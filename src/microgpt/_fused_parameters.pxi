# Parameters in one array, and Adam over them (included by _fused.pyx).

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
        with learning rate lr_t, and zero the gradients. Raises what
        microgpt.py's Adam would (OverflowError: a gradient's square
        overflows), after updating every parameter."""
        cdef double power1, power2
        _storage_of(self._storage)
        _check(pyfloat_pow(self.beta1, step + 1, &power1))     # beta1 ** (step + 1)
        _check(pyfloat_pow(self.beta2, step + 1, &power2))
        _check(fused_adam(self._storage.data, self._storage.grad, self._m, self._v,
                          self._storage.size, lr_t, self.beta1, self.beta2, self.eps_adam,
                          1 - power1, 1 - power2))
