# The operations, one graph node each (included by _fused.pyx).
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


def attention(Tensor q not None, keys, values, Py_ssize_t n_head, lengths=None):
    """Causal self-attention of the rows of q over a KV cache.

    keys and values are lists of tensors, microgpt.py's keys[li] and
    values[li] with each gpt() call's rows appended; the rows of q are the
    last positions of the cache. Each head of each row attends to its
    position and those before it, as in microgpt.py's loop over heads.

    lengths, if given, splits the rows into documents of these lengths, one
    after the other, each attending only to its own positions (from 0): a
    batch. The cache then holds exactly q's rows.
    """
    cdef Py_ssize_t n = 0, n_values = 0, head_dim, n_keys, i, d, m, o = 0, e = 0
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
    if lengths is not None and n != q.rows:
        raise ValueError(f"attention: documents of given lengths need a cache of their "
                         f"{q.rows} rows only, not {n}")
    if n_head <= 0 or q.cols % n_head:
        raise ValueError(f"attention: {q.cols} values do not split into {n_head} heads")
    head_dim = q.cols // n_head
    out = _node(q.rows, q.cols, ATTENTION, inputs)
    out._first, out._n_head, out._n_keys = n - q.rows, n_head, n_keys
    if lengths is None:
        out._lengths = <ptrdiff_t *>_alloc_items(1, sizeof(ptrdiff_t), False)
        out._lengths[0], out._n_docs = q.rows, 1
    else:
        out._lengths = _doc_lengths(lengths, q.rows, "attention", &out._n_docs)
    out._separate = len({id(t) for t in inputs}) == len(inputs)
    _check(pyfloat_pow(head_dim, 0.5, &root))            # head_dim**0.5
    _check(pyfloat_pow(root, -1.0, &out._scale))         # / x is * x**-1
    _product(_product(q.rows, n_head), n)   # bounds the exps of the documents, so their sum
    for d in range(out._n_docs):
        e += out._lengths[d] * n_head * (out._first + out._lengths[d])
    _save(out, e, _product(_product(2, q.rows), n_head))
    e = 0
    try:
        k = <const double **>_rows(inputs, 1, 1 + n_keys, n, False)
        v = <const double **>_rows(inputs, 1 + n_keys, len(inputs), n, False)
        for d in range(out._n_docs):    # a document's rows, keys and values begin at row o
            m = out._lengths[d]
            status = fused_attention(q._data + o * q.cols, k + o, v + o, out._data + o * q.cols,
                                     out._saved + e, out._saved2 + 2 * n_head * o, m,
                                     out._first, q.cols, n_head, out._scale)
            if status != PYFLOAT_OK:
                break
            o += m
            e += m * n_head * (out._first + m)
    finally:
        PyMem_Free(k)
        PyMem_Free(v)
    _check(status)
    if n_keys and len(inputs) > 1 + n_keys:
        _group_qkv(out, q, inputs[n_keys], inputs[len(inputs) - 1])
    return out


def cross_entropy(Tensor logits not None, targets, lengths=None):
    """The mean over rows of -log(softmax(logits[t])[targets[t]]), as
    microgpt.py's (1 / n) * sum(losses): a one-number tensor. Each target is
    an int in range(logits.cols).

    lengths, if given, splits the rows into documents of these lengths, one
    after the other: the loss is then the mean of the documents' means, (1 /
    B) * sum(doc_losses) for B documents.
    """
    cdef tuple copied = tuple(targets)
    cdef Py_ssize_t n = len(copied), d, o = 0, cols = logits.cols
    cdef Tensor out
    cdef double total = 0.0, doc_loss
    if n != logits.rows or n == 0:
        raise ValueError(f"cross_entropy: {n} targets for {logits.rows} rows")
    out = _node(1, 1, CROSS_ENTROPY, (logits,))
    out._index = _indices(copied, logits.cols, "target {} of {} classes")
    if lengths is not None:
        out._lengths = _doc_lengths(lengths, logits.rows, "cross_entropy", &out._n_docs)
    _save(out, _product(logits.rows, logits.cols), _product(2, logits.rows))
    if out._lengths == NULL:
        _check(fused_cross_entropy(logits._data, out._index, out._saved, out._saved2,
                                   out._data, logits.rows, logits.cols))
    else:
        for d in range(out._n_docs):
            _check(fused_cross_entropy(logits._data + o * cols, out._index + o,
                                       out._saved + o * cols, out._saved2 + 2 * o, &doc_loss,
                                       out._lengths[d], cols))
            total = total + doc_loss                        # sum(doc_losses)
            o += out._lengths[d]
        out._data[0] = total * (1.0 / <double>out._n_docs)  # (1 / B) * that
    if logits._op == LINEAR and logits._last == NULL:
        # -probs[target_id].log() reaches a row's target first, then
        # sum(exps) the others in order: their gradients come back to the
        # layer's input last to first, the target's after them
        logits._last = <ptrdiff_t *>_alloc_items(n, sizeof(ptrdiff_t), False)
        memcpy(logits._last, out._index, n * sizeof(ptrdiff_t))
    return out

