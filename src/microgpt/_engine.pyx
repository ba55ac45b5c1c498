"""The compiled scalar autograd engine: microgpt.py's ``Value`` as a C type.

Every operation computes the same doubles as microgpt.py, in the same order,
and ``backward()`` accumulates gradients in microgpt.py's order: the
post-order of a depth-first search from the output, children in order, each
node once, walked in reverse. ``microgpt.engine`` is the same class in pure
Python and the oracle for this one.
"""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_REFCNT

from microgpt._pyfloat cimport (PYFLOAT_OK, pyfloat_exp, pyfloat_log, pyfloat_pow,
                                 raise_for)

cdef extern from "Python.h":
    PyObject *PyTuple_GET_ITEM(PyObject *p, Py_ssize_t pos)  # borrowed
    Py_ssize_t PyTuple_GET_SIZE(PyObject *p)

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define prefetch(p) __builtin_prefetch(p)
    #else
    #define prefetch(p) ((void)0)
    #endif
    """
    void prefetch(const void *p) noexcept nogil

cdef enum:
    PREFETCH_DISTANCE = 8   # nodes ahead, in the backward walk

@cython.final
@cython.freelist(64)
@cython.no_gc
@cython.auto_pickle(False)
cdef class Value:
    """A scalar in a computation graph, with its gradient.

    ``Value(data, children=(), local_grads=())`` as in microgpt.py: ``data``
    is the number, ``children`` the Values it was computed from and
    ``local_grads`` the derivative of ``data`` with respect to each child.

    ``data`` and ``grad`` are always floats (microgpt.py keeps an int where
    you pass one; the numbers, and what they print as floats, are the same).

    >>> a = Value(2.0); b = a * a + a
    >>> b.backward(); a.grad
    5.0
    """
    # Children live in C fields, not a tuple: two inline (every operation
    # has one or two), any further ones in _rest. A Value only references
    # Values created before it, so Values never form a reference cycle and
    # the type stays out of the cyclic GC: no GC header, no GC bookkeeping
    # per node (together about an eighth of microgpt.py's run time).
    # __dealloc__ does the trashcan's job instead: deep chains free in a loop.
    cdef public double data
    cdef public double grad
    cdef Value _a                  # first child, or None
    cdef Value _b                  # second child, or None (then _a too)
    cdef double _ga                # d(data)/d(_a.data)
    cdef double _gb                # d(data)/d(_b.data)
    cdef tuple _rest               # None, or (children[2:], their local gradients as floats)
    cdef unsigned long long _mark  # number of the backward pass that last visited this node

    def __init__(self, data, children=(), local_grads=()):
        if not isinstance(data, (int, float)):
            raise TypeError(f"Value data must be an int or a float, not {type(data).__name__}")
        children = tuple(children)
        local_grads = tuple(local_grads)
        if len(children) != len(local_grads):
            raise ValueError(f"{len(children)} children but {len(local_grads)} local gradients")
        for child in children:
            if not isinstance(child, Value):
                raise TypeError(f"children must be Values, not {type(child).__name__}")
        for g in local_grads:
            if not isinstance(g, (int, float)):
                raise TypeError(f"local gradients must be ints or floats, not {type(g).__name__}")
        n = len(children)
        self.data = data
        self.grad = 0.0
        self._a = children[0] if n > 0 else None
        self._ga = local_grads[0] if n > 0 else 0.0
        self._b = children[1] if n > 1 else None
        self._gb = local_grads[1] if n > 1 else 0.0
        self._rest = (children[2:], tuple([float(g) for g in local_grads[2:]])) if n > 2 else None

    @property
    def _children(self):
        """The Values this one was computed from, in order."""
        return tuple([<object>_child(<PyObject *>self, i) for i in range(_nchildren(<PyObject *>self))])

    @property
    def _local_grads(self):
        """d(data)/d(child.data) for each child, in order."""
        cdef tuple first = (self._ga, self._gb)[:_nchildren(<PyObject *>self)]
        return first + self._rest[1] if self._rest is not None else first

    # Operators, each written as microgpt.py writes it. An operand that is
    # not a Value becomes a constant leaf Value, as microgpt.py's Value(other).

    def __add__(self, other):
        if isinstance(other, Value):
            return _add(self, <Value>other)
        if _is_number(other):
            return _add(self, _leaf(other))
        return NotImplemented

    def __mul__(self, other):
        if isinstance(other, Value):
            return _mul(self, <Value>other)
        if _is_number(other):
            return _mul(self, _leaf(other))
        return NotImplemented

    def __pow__(self, other, modulo):
        if modulo is not None or not _is_number(other):
            return NotImplemented
        return _pow(self, other)

    def log(self):
        cdef double out
        cdef int status = pyfloat_log(self.data, &out)
        if status != PYFLOAT_OK:
            raise_for(status)
        return _unary(out, self, 1.0 / self.data)

    def exp(self):
        cdef double out
        cdef int status = pyfloat_exp(self.data, &out)
        if status != PYFLOAT_OK:
            raise_for(status, exp=True)
        return _unary(out, self, out)   # math.exp(data) again, the same double

    def relu(self):
        # max(0, data) and float(data > 0); nan and -0.0 give 0.0 in both
        return _unary(self.data if self.data > 0 else 0.0, self, 1.0 if self.data > 0 else 0.0)

    def __neg__(self):  # self * -1
        return _mul(self, _leaf(-1.0))

    def __radd__(self, other):  # other + self
        if _is_number(other):
            return _add(self, _leaf(other))
        return NotImplemented

    def __sub__(self, other):  # self + (-other)
        if isinstance(other, Value):
            return _add(self, _mul(<Value>other, _leaf(-1.0)))
        if _is_number(other):
            return _add(self, _leaf(-other))   # Python's -other: -0 is 0, -0.0 is -0.0
        return NotImplemented

    def __rsub__(self, other):  # other + (-self)
        if _is_number(other):
            return _add(_mul(self, _leaf(-1.0)), _leaf(other))
        return NotImplemented

    def __rmul__(self, other):  # other * self
        if _is_number(other):
            return _mul(self, _leaf(other))
        return NotImplemented

    def __truediv__(self, other):  # self * other**-1
        cdef double inverse
        cdef int status
        if isinstance(other, Value):
            return _mul(self, _pow(<Value>other, -1))
        if _is_number(other):
            status = pyfloat_pow(other, -1.0, &inverse)
            if status != PYFLOAT_OK:
                raise_for(status)
            return _mul(self, _leaf(inverse))
        return NotImplemented

    def __rtruediv__(self, other):  # other * self**-1
        if _is_number(other):
            return _mul(_pow(self, -1), _leaf(other))
        return NotImplemented

    def backward(self):
        """Set the gradient of every Value this one depends on.

        Walks the graph in microgpt.py's order, so gradients are the same
        doubles; gradients add up over calls, as in microgpt.py, except this
        Value's own, which is set to 1.
        """
        cdef Py_ssize_t i, j, n = _build_topo(self)
        cdef Value v
        cdef double g
        self.grad = 1.0
        for i in range(n - 1, -1, -1):
            if i >= PREFETCH_DISTANCE:
                # the walk jumps around memory; ask for the nodes coming next early
                prefetch(_topo[i - PREFETCH_DISTANCE])
            v = <Value>_topo[i]
            if v._a is None:
                continue
            g = v.grad
            v._a.grad += v._ga * g
            if v._b is None:
                continue
            v._b.grad += v._gb * g
            if v._rest is not None:
                for child, local_grad in zip(v._rest[0], v._rest[1]):
                    (<Value>child).grad += <double>local_grad * g

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    def __dealloc__(self):
        # Release the children here, counting the nesting, instead of in the
        # generated code after this returns: past MAX_DEPTH nested frees the
        # children are set aside and freed by the outermost call, in a loop,
        # so freeing a chain a million nodes deep needs no deep C stack.
        global _depth
        if _depth >= MAX_DEPTH:
            _set_aside(<PyObject *>self._a)
            _set_aside(<PyObject *>self._b)
        _depth += 1
        self._a = None
        self._b = None
        self._rest = None
        _depth -= 1
        if _depth == 0:
            _free_set_aside()


# Freeing deep graphs --------------------------------------------------------

cdef enum:
    MAX_DEPTH = 64          # nested Value frees before children are set aside

cdef int _depth = 0             # Value frees in progress, nested
cdef PyObject **_aside = NULL   # owned references to children whose free was put off
cdef Py_ssize_t _aside_count = 0
cdef Py_ssize_t _aside_size = 0

cdef inline void _set_aside(PyObject *child) noexcept:
    """Take a reference to child if the caller's is the last one, to free it later."""
    global _aside, _aside_count, _aside_size
    cdef void *grown
    if child == <PyObject *>None or Py_REFCNT(<object>child) > 1:
        return
    if _aside_count == _aside_size:
        grown = PyMem_Realloc(_aside, (2 * _aside_size + 256) * sizeof(PyObject *))
        if grown == NULL:
            return          # out of memory: free it now, recursively
        _aside = <PyObject **>grown
        _aside_size = 2 * _aside_size + 256
    Py_INCREF(<object>child)
    _aside[_aside_count] = child
    _aside_count += 1

cdef void _free_set_aside() noexcept:
    global _depth, _aside_count
    cdef PyObject *child
    while _aside_count:
        _aside_count -= 1
        child = _aside[_aside_count]
        _depth += 1
        Py_DECREF(<object>child)
        _depth -= 1


# Constructing nodes --------------------------------------------------------

cdef inline bint _is_number(object x):
    return isinstance(x, (float, int))

cdef inline Value _leaf(double data):
    """A Value without children: a constant, or the start of a node."""
    cdef Value v = Value.__new__(Value)
    v.data = data
    return v

cdef inline Value _unary(double data, Value a, double ga):
    cdef Value v = _leaf(data)
    v._a = a
    v._ga = ga
    return v

cdef inline Value _binary(double data, Value a, double ga, Value b, double gb):
    cdef Value v = _leaf(data)
    v._a = a
    v._ga = ga
    v._b = b
    v._gb = gb
    return v

cdef inline Value _add(Value a, Value b):
    return _binary(a.data + b.data, a, 1.0, b, 1.0)

cdef inline Value _mul(Value a, Value b):
    return _binary(a.data * b.data, a, b.data, b, a.data)

cdef Value _pow(Value a, object exponent):
    """a ** exponent, with microgpt.py's local gradient exponent * a**(exponent - 1)."""
    cdef double out, below, e = exponent
    # exponent - 1 as Python computes it: exact integer arithmetic for an int
    cdef double e1 = exponent - 1 if isinstance(exponent, int) else e - 1.0
    cdef int status = pyfloat_pow(a.data, e, &out)
    if status == PYFLOAT_OK:
        status = pyfloat_pow(a.data, e1, &below)
    if status != PYFLOAT_OK:
        raise_for(status)
    return _unary(out, a, e * below)

cdef inline Py_ssize_t _nchildren(PyObject *node) noexcept:
    if (<Value>node)._a is None:
        return 0
    if (<Value>node)._b is None:
        return 1
    if (<Value>node)._rest is None:
        return 2
    return 2 + PyTuple_GET_SIZE(PyTuple_GET_ITEM(<PyObject *>(<Value>node)._rest, 0))

cdef inline PyObject *_child(PyObject *v, Py_ssize_t i) noexcept:
    """The i-th child of v, both borrowed references."""
    if i == 0:
        return <PyObject *>(<Value>v)._a
    if i == 1:
        return <PyObject *>(<Value>v)._b
    return PyTuple_GET_ITEM(PyTuple_GET_ITEM(<PyObject *>(<Value>v)._rest, 0), i - 2)


# Topological order ---------------------------------------------------------
#
# An explicit stack instead of microgpt.py's recursion, visiting the same
# nodes in the same order, so a graph of any depth works. Visited nodes are
# marked with the number of the pass instead of being put in a set. The two
# buffers hold borrowed references (the graph owns the nodes and no Python
# code runs while they are in use) and are kept between calls.

cdef struct Frame:
    PyObject *node
    Py_ssize_t next_child
    Py_ssize_t nchildren

cdef unsigned long long _pass = 0
cdef PyObject **_topo = NULL
cdef Py_ssize_t _topo_size = 0
cdef Frame *_stack = NULL
cdef Py_ssize_t _stack_size = 0

cdef int _grow(void **buffer, Py_ssize_t *size, size_t item) except -1:
    cdef Py_ssize_t n = 2 * size[0] if size[0] else 4096
    cdef void *grown = PyMem_Realloc(buffer[0], n * item)
    if grown == NULL:
        raise MemoryError()
    buffer[0] = grown
    size[0] = n
    return 0

cdef inline void _push(Frame *frame, PyObject *node) noexcept:
    frame.node = node
    frame.next_child = 0
    frame.nchildren = _nchildren(node)
    # its children are visited soon (the first one next); start loading them
    if frame.nchildren:
        prefetch(_child(node, 0))
        if frame.nchildren > 1:
            prefetch(_child(node, 1))

cdef Py_ssize_t _build_topo(Value root) except -1:
    """Fill _topo with the post-order of a depth-first search from root."""
    global _pass
    cdef Py_ssize_t ntopo = 0, depth = 1
    cdef Frame *top
    cdef PyObject *child
    _pass += 1
    if _stack_size == 0:
        _grow(<void **>&_stack, &_stack_size, sizeof(Frame))
    root._mark = _pass
    _push(&_stack[0], <PyObject *>root)
    while depth:
        top = &_stack[depth - 1]
        if top.next_child < top.nchildren:
            child = _child(top.node, top.next_child)
            top.next_child += 1
            if (<Value>child)._mark != _pass:
                (<Value>child)._mark = _pass
                if depth == _stack_size:
                    _grow(<void **>&_stack, &_stack_size, sizeof(Frame))
                _push(&_stack[depth], child)
                depth += 1
        else:
            if ntopo == _topo_size:
                _grow(<void **>&_topo, &_topo_size, sizeof(PyObject *))
            _topo[ntopo] = top.node
            ntopo += 1
            depth -= 1
    return ntopo
