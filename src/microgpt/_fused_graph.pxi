# The backward pass (included by _fused.pyx): the graph's topological
# order, each node's backward loop, attention's queries, keys and values as
# one group.

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
            _linear_backward_input(&linear, 1, NULL, t._last, a)
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
        if t._lengths == NULL:
            fused_cross_entropy_backward(t._saved, t._saved2, t._index, t._grad[0], a._grad,
                                         scratch, a.rows, a.cols)
        else:       # (1 / B) * sum(doc_losses) gives each document (1 / B) * the gradient
            n = 0
            for i in range(t._n_docs):
                fused_cross_entropy_backward(t._saved + n * a.cols, t._saved2 + 2 * n,
                                             t._index + n, (1.0 / <double>t._n_docs) * t._grad[0],
                                             a._grad + n * a.cols, scratch, t._lengths[i], a.cols)
                n += t._lengths[i]
        PyMem_Free(scratch)
    elif t._op == ATTENTION:
        _attention_backward(t)
    return 0


cdef int _linear_backward_input(PyObject **linears, int count, const ptrdiff_t *order,
                                const ptrdiff_t *last, Tensor x) except -1:
    """x's gradient from those of count linear layers of x, their outputs side
    by side, in the given order (default: each row's outputs, last first,
    but for last[t] if given, after the others)."""
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
        fused_linear_backward_input(w_rows, dy_cols, (<Tensor>linears[0]).cols, order, last,
                                    x._grad, x.rows, x.cols, nout)
    finally:
        PyMem_Free(w_rows)
        PyMem_Free(dy_cols)
    return 0


cdef int _attention_backward(Tensor t) except -1:
    cdef Tensor q = t._inputs[0]
    cdef Py_ssize_t n = t._first + t.rows, keys_end = 1 + t._n_keys
    cdef Py_ssize_t values_end = len(t._inputs), d, m, o = 0, e = 0, longest = 0
    cdef const double **k = NULL
    cdef const double **v = NULL
    cdef double **dk = NULL
    cdef double **dv = NULL
    cdef double *scratch = NULL
    for d in range(t._n_docs):
        longest = max(longest, t._lengths[d])
    try:
        k = <const double **>_rows(t._inputs, 1, keys_end, n, False)
        v = <const double **>_rows(t._inputs, keys_end, values_end, n, False)
        dk = _rows(t._inputs, 1, keys_end, n, True)
        dv = _rows(t._inputs, keys_end, values_end, n, True)
        scratch = _alloc(_product(2, t._first + longest), False)
        # the documents share nothing: any order adds up the same gradients
        for d in range(t._n_docs):
            m = t._lengths[d]
            fused_attention_backward(q._data + o * t.cols, k + o, v + o, t._saved + e,
                                     t._saved2 + 2 * t._n_head * o, t._grad + o * t.cols,
                                     q._grad + o * t.cols, dk + o, dv + o, scratch, m,
                                     t._first, t.cols, t._n_head, t._scale, t._separate)
            o += m
            e += m * t._n_head * (t._first + m)
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
            return _linear_backward_input(&single, 1, NULL, y._last, x)
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
                _linear_backward_input(self.linears, 3, self.order, NULL, x)
            else:                   # part of the graph only: no order to keep
                for i in range(3):
                    if (<Tensor>self.linears[i])._mark == _pass:
                        _linear_backward_input(&self.linears[i], 1, NULL, NULL, x)
        return 0


cdef _group_qkv(Tensor attn, Tensor q, Tensor k, Tensor v):
    """Mark q, k and v as one _QKV, owned by attn, if they are three linear
    layers of one input."""
    cdef _QKV group
    cdef Py_ssize_t r, i, n = _product(3, q.cols), d = 0, start = 0
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
        if r == start + attn._lengths[d]:   # the next document's first row
            start += attn._lengths[d]
            d += 1
        fused_attention_visit_order(attn._first + r - start, q.cols, attn._n_head, visit)
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


cdef ptrdiff_t *_doc_lengths(lengths, Py_ssize_t rows, str op, Py_ssize_t *count) except NULL:
    """The documents' lengths (ints, each at least 1, adding up to rows) as a
    new C array; their number at count."""
    cdef tuple copied = tuple(lengths)
    cdef Py_ssize_t i, total = 0, n = len(copied)
    cdef ptrdiff_t *result
    if n == 0:
        raise ValueError(f"{op}: no document lengths")
    result = <ptrdiff_t *>_alloc_items(n, sizeof(ptrdiff_t), False)
    try:
        for i in range(n):
            result[i] = PyNumber_AsSsize_t(copied[i], OverflowError)
            if not 1 <= result[i] <= rows - total:      # (so the total cannot overflow)
                raise ValueError(f"{op}: documents of lengths {_shortened(copied)} do not "
                                 f"split {rows} rows, each of at least one")
            total += result[i]
        if total != rows:
            raise ValueError(f"{op}: documents of lengths {_shortened(copied)} do not split "
                             f"{rows} rows, each of at least one")
    except BaseException:
        PyMem_Free(result)
        raise
    count[0] = n
    return result


cdef str _shortened(tuple values):
    text = repr(list(values))
    return text if len(text) <= 60 else text[:57] + "..."
