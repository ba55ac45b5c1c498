"""The compiled scalar autograd engine: microgpt.py's ``Value`` as a C type.

Every operation computes the same doubles as microgpt.py, in the same order,
and ``backward()`` accumulates gradients in microgpt.py's order: the
post-order of a depth-first search from the output, children in order, each
node once, walked in reverse. ``microgpt.engine`` is the same class in pure
Python and the oracle for this one.

The module is this file and the part it includes, _engine_memory.pxi (the
Values' memory: their slabs, and the freeing of deep graphs).
"""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_REFCNT, Py_XDECREF
from libc.stdint cimport uintptr_t
from libc.string cimport memcpy, memset

from microgpt._pyfloat cimport (PYFLOAT_OK, pyfloat_exp, pyfloat_log, pyfloat_pow,
                                 raise_for)

cdef extern from "Python.h":
    PyObject *PyTuple_GET_ITEM(PyObject *p, Py_ssize_t pos)  # borrowed
    Py_ssize_t PyTuple_GET_SIZE(PyObject *p)
    double PyFloat_AS_DOUBLE(PyObject *p)
    const Py_ssize_t PY_SSIZE_T_MAX

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

cdef enum:                  # the flags in the low bits of Value._a: see "Constructing nodes"
    BUILT = 1               # the node is built (its __init__ has run, or it is another's child)
    VISITED = 2             # a backward pass's search has reached it (its walk clears it)
    MANY = 4                # more than two children: _b is the tuple of the rest
    FLAGS = 7

@cython.final
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
    # has one or two); a node built with more has its first inline and the
    # rest in a tuple, with their local gradients. A Value only references
    # Values created before it, so Values never form a reference cycle and
    # the type stays out of the cyclic GC: no GC header, no GC bookkeeping
    # per node (together about an eighth of microgpt.py's run time). The
    # fields that hold objects are plain pointers, each a reference of the
    # node's own or NULL, so that making and freeing a node counts no
    # references to None; _value_dealloc releases them, and does the
    # trashcan's job too: deep chains free in a loop. A node is 64 bytes, a
    # cache line of its slab (Values are 64-byte aligned there): its flags
    # live in the low bits of _a, which a pointer to a Value never uses.
    cdef public double data
    cdef public double grad
    cdef uintptr_t _a              # first child, or NULL; | the flags
    cdef PyObject *_b              # second child, or NULL; with MANY, (children[1:], their local gradients)
    cdef double _ga                # d(data)/d(first child's data)
    cdef double _gb                # d(data)/d(_b.data)

    def __init__(self, data, children=(), local_grads=()):
        """A node of data, computed from children with these local gradients (once)."""
        cdef double value, ga, gb
        if self._a & BUILT:
            # it may be another node's child by now: new children could make
            # a reference cycle, which this type, outside the cyclic GC, never frees
            raise RuntimeError("a Value is built once; __init__ cannot change it")
        if not isinstance(data, (int, float)):
            raise TypeError(f"Value data must be an int or a float, not {type(data).__name__}")
        children = tuple(children)
        local_grads = tuple(local_grads)
        if len(children) != len(local_grads):
            raise ValueError(f"{len(children)} children but {len(local_grads)} local gradients")
        for child in children:
            if not isinstance(child, Value):
                raise TypeError(f"children must be Values, not {type(child).__name__}")
            if child is self:
                raise ValueError("a Value cannot be its own child")
        for g in local_grads:
            if not isinstance(g, (int, float)):
                raise TypeError(f"local gradients must be ints or floats, not {type(g).__name__}")
        n = len(children)
        value = data
        ga = local_grads[0] if n > 0 else 0.0
        gb = local_grads[1] if n > 1 else 0.0
        rest = (children[1:], tuple([float(g) for g in local_grads[1:]])) if n > 2 else None
        if self._a & BUILT:         # the code just run (iterators, __float__) built or used it
            raise RuntimeError("a Value is built once; __init__ cannot change it")
        # from here on nothing runs but this: build the node in one go
        for child in children:
            _use(<Value>child)
        self.data, self._ga, self._gb = value, ga, gb
        self._a = (<uintptr_t>_reference(children[0]) if n > 0 else 0) | BUILT
        if n == 2:
            self._b = _reference(children[1])
        elif n > 2:
            self._b = _reference(rest)
            self._a |= MANY

    @property
    def _children(self):
        """The Values this one was computed from, in order."""
        return tuple([<object>_child(<PyObject *>self, i) for i in range(_nchildren(<PyObject *>self))])

    @property
    def _local_grads(self):
        """d(data)/d(child.data) for each child, in order."""
        if self._a & MANY:
            return (self._ga,) + (<tuple>self._b)[1]
        return (self._ga, self._gb)[:_nchildren(<PyObject *>self)]

    # Operators, each written as microgpt.py writes it. An operand that is
    # not a Value becomes a constant leaf Value, as microgpt.py's Value(other).

    def __add__(self, other):
        """self + other"""
        if isinstance(other, Value):
            return _add(self, <Value>other)
        if _is_number(other):
            return _add(self, _leaf(other))
        return NotImplemented

    def __mul__(self, other):
        """self * other"""
        if isinstance(other, Value):
            return _mul(self, <Value>other)
        if _is_number(other):
            return _mul(self, _leaf(other))
        return NotImplemented

    def __pow__(self, other, modulo):
        """self ** other, for an int or float other (no modulo)"""
        if modulo is not None or not _is_number(other):
            return NotImplemented
        return _pow(self, other)

    def log(self):
        """log(self), the natural logarithm"""
        cdef double out = 0.0      # set by pyfloat_log when it succeeds (0.0: gcc cannot tell)
        cdef int status = pyfloat_log(self.data, &out)
        if status != PYFLOAT_OK:
            raise_for(status)
        return _unary(out, self, 1.0 / self.data)

    def exp(self):
        """exp(self)"""
        cdef double out = 0.0      # set by pyfloat_exp when it succeeds (0.0: gcc cannot tell)
        cdef int status = pyfloat_exp(self.data, &out)
        if status != PYFLOAT_OK:
            raise_for(status, exp=True)
        return _unary(out, self, out)   # math.exp(data) again, the same double

    def relu(self):
        """max(0, self)"""
        # max(0, data) and float(data > 0); nan and -0.0 give 0.0 in both
        return _unary(self.data if self.data > 0 else 0.0, self, 1.0 if self.data > 0 else 0.0)

    def __neg__(self):
        """self * -1"""
        return _mul(self, _leaf(-1.0))

    def __radd__(self, other):
        """other + self"""
        if _is_number(other):
            return _add(self, _leaf(other))
        return NotImplemented

    def __sub__(self, other):
        """self + (-other)"""
        if isinstance(other, Value):
            return _add(self, _mul(<Value>other, _leaf(-1.0)))
        if _is_number(other):
            return _add(self, _leaf(-other))   # Python's -other: -0 is 0, -0.0 is -0.0
        return NotImplemented

    def __rsub__(self, other):
        """other + (-self)"""
        if _is_number(other):
            return _add(_mul(self, _leaf(-1.0)), _leaf(other))
        return NotImplemented

    def __rmul__(self, other):
        """other * self"""
        if _is_number(other):
            return _mul(self, _leaf(other))
        return NotImplemented

    def __truediv__(self, other):
        """self * other**-1"""
        cdef double inverse = 0.0  # set by pyfloat_pow when it succeeds (0.0: gcc cannot tell)
        cdef int status
        if isinstance(other, Value):
            return _mul(self, _pow(<Value>other, -1))
        if _is_number(other):
            status = pyfloat_pow(other, -1.0, &inverse)
            if status != PYFLOAT_OK:
                raise_for(status)
            return _mul(self, _leaf(inverse))
        return NotImplemented

    def __rtruediv__(self, other):
        """other * self**-1"""
        if _is_number(other):
            return _mul(_pow(self, -1), _leaf(other))
        return NotImplemented

    def backward(self):
        """Set the gradient of every Value this one depends on.

        Walks the graph in microgpt.py's order, so gradients are the same
        doubles; gradients add up over calls, as in microgpt.py, except this
        Value's own, which is set to 1.
        """
        cdef PyObject *nodes[STACK_NODES]
        cdef Buffer order = Buffer(<void *>&nodes[0], STACK_NODES, False)
        cdef PyObject **topo
        cdef PyObject *node
        cdef PyObject *first
        cdef uintptr_t a
        cdef Py_ssize_t i, n
        cdef double g
        try:
            n = _build_topo(self, &order)
        except BaseException:
            _release(&order)
            raise
        topo = <PyObject **>order.items
        # No Python code runs from the search's start to here and on (no
        # allocation of objects, no call), so no finalizer or other thread
        # can change the graph, its VISITED flags or the walk halfway.
        self.grad = 1.0
        for i in range(n - 1, -1, -1):
            if i >= PREFETCH_DISTANCE:
                # the walk jumps around memory; ask for the nodes coming next early
                prefetch(topo[i - PREFETCH_DISTANCE])
            node = topo[i]
            a = (<Value>node)._a
            (<Value>node)._a = a & ~(<uintptr_t>VISITED)    # for the next pass
            first = <PyObject *>(a & ~(<uintptr_t>FLAGS))
            if first != NULL:
                g = (<Value>node).grad
                (<Value>first).grad += (<Value>node)._ga * g
                if a & MANY:
                    _backward_rest((<Value>node)._b, g)
                elif (<Value>node)._b != NULL:
                    (<Value>(<Value>node)._b).grad += (<Value>node)._gb * g
            Py_DECREF(<object>node)     # the reference _build_topo took
        _release(&order)

    def __repr__(self):
        """Value(data=..., grad=...)"""
        return f"Value(data={self.data}, grad={self.grad})"


include "_engine_memory.pxi"


# Constructing nodes --------------------------------------------------------
#
# A node is built once. Value.__new__ alone makes a node without the BUILT
# flag, which __init__ builds; every other node (an operation's result or
# constant) is BUILT when made, and so is any node once it is another's
# child. So __init__ only ever changes a node that no other node refers to,
# and no reference cycle can form. A backward pass's search flags the nodes
# it reaches VISITED, and its walk over them clears the flag.

cdef inline PyObject *_reference(object x) noexcept:
    """A new reference to x, to keep in a node's field."""
    Py_INCREF(x)
    return <PyObject *>x

cdef inline void _use(Value child) noexcept:
    """child becomes another node's child: it can no longer be built."""
    child._a |= BUILT

cdef inline bint _is_number(object x):
    return isinstance(x, (float, int))

cdef inline Value _leaf(double data):
    """A Value without children: a constant, or the start of a node."""
    cdef Value v = Value.__new__(Value)
    v.data = data
    v._a = BUILT
    return v

cdef inline Value _unary(double data, Value a, double ga):
    cdef Value v = _leaf(data)
    _use(a)
    v._a = <uintptr_t>_reference(a) | BUILT
    v._ga = ga
    return v

cdef inline Value _binary(double data, Value a, double ga, Value b, double gb):
    cdef Value v = _leaf(data)
    _use(a)
    _use(b)
    v._a = <uintptr_t>_reference(a) | BUILT
    v._ga = ga
    v._b = _reference(b)
    v._gb = gb
    return v

cdef inline Value _add(Value a, Value b):
    return _binary(a.data + b.data, a, 1.0, b, 1.0)

cdef inline Value _mul(Value a, Value b):
    return _binary(a.data * b.data, a, b.data, b, a.data)

cdef Value _pow(Value a, object exponent):
    """a ** exponent, with microgpt.py's local gradient exponent * a**(exponent - 1)."""
    cdef double out = 0.0, below = 0.0     # set when pyfloat_pow succeeds (0.0: gcc cannot tell)
    cdef double e = exponent
    # exponent - 1 as Python computes it: exact integer arithmetic for an int
    cdef double e1 = exponent - 1 if isinstance(exponent, int) else e - 1.0
    cdef int status = pyfloat_pow(a.data, e, &out)
    if status == PYFLOAT_OK:
        status = pyfloat_pow(a.data, e1, &below)
    if status != PYFLOAT_OK:
        raise_for(status)
    return _unary(out, a, e * below)

cdef inline Py_ssize_t _nchildren(PyObject *node) noexcept:
    cdef uintptr_t a = (<Value>node)._a
    if a & ~(<uintptr_t>FLAGS) == 0:
        return 0
    if a & MANY:
        return 1 + PyTuple_GET_SIZE(PyTuple_GET_ITEM((<Value>node)._b, 0))
    return 1 if (<Value>node)._b == NULL else 2

cdef inline PyObject *_child(PyObject *v, Py_ssize_t i) noexcept:
    """The i-th child of v, both borrowed references."""
    if i == 0:
        return <PyObject *>((<Value>v)._a & ~(<uintptr_t>FLAGS))
    if (<Value>v)._a & MANY:
        return PyTuple_GET_ITEM(PyTuple_GET_ITEM((<Value>v)._b, 0), i - 1)
    return (<Value>v)._b


# Topological order ---------------------------------------------------------
#
# An explicit stack instead of microgpt.py's recursion, visiting the same
# nodes in the same order, so a graph of any depth works. Visited nodes are
# flagged VISITED instead of being put in a set, and the walk that follows
# clears the flag of each: from the search's first step to the walk's last
# no Python code runs, so no other pass (a finalizer's, another thread's)
# can start while flags are set. Each call has buffers of its own, and the
# order holds a reference to every node in it, so nothing another call does
# can pull a node or a buffer from under it.

cdef struct Frame:
    PyObject *node
    Py_ssize_t next_child
    Py_ssize_t nchildren

cdef struct Buffer:         # an array that grows, starting in the caller's stack frame
    void *items
    Py_ssize_t size         # in items
    bint on_heap            # items is memory of ours, to free

cdef enum:
    STACK_FRAMES = 64       # the depth and the number of nodes a backward pass
    STACK_NODES = 256       # handles without allocating memory

cdef int _grow(Buffer *buffer, size_t item) except -1:
    cdef Py_ssize_t n = 2 * buffer.size
    cdef void *grown = NULL
    if <size_t>n <= (<size_t>PY_SSIZE_T_MAX) // item:
        if buffer.on_heap:
            grown = PyMem_Realloc(buffer.items, n * item)
        else:
            grown = PyMem_Malloc(n * item)
            if grown != NULL:
                memcpy(grown, buffer.items, buffer.size * item)
    if grown == NULL:
        raise MemoryError()
    buffer.items, buffer.size, buffer.on_heap = grown, n, True
    return 0

cdef inline void _release(Buffer *buffer) noexcept:
    if buffer.on_heap:
        PyMem_Free(buffer.items)

cdef inline void _push(Frame *frame, PyObject *node) noexcept:
    frame.node = node
    frame.next_child = 0
    frame.nchildren = _nchildren(node)
    # its children are visited soon (the first one next); start loading them
    if frame.nchildren:
        prefetch(_child(node, 0))
        if frame.nchildren > 1:
            prefetch(_child(node, 1))

cdef void _backward_rest(PyObject *rest, double g) noexcept:
    """The second and later children of a node with MANY: rest is its _b."""
    cdef PyObject *children = PyTuple_GET_ITEM(rest, 0)
    cdef PyObject *grads = PyTuple_GET_ITEM(rest, 1)
    cdef Py_ssize_t j
    for j in range(PyTuple_GET_SIZE(children)):
        (<Value>PyTuple_GET_ITEM(children, j)).grad += \
            PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(grads, j)) * g

cdef Py_ssize_t _build_topo(Value root, Buffer *order) except -1:
    """Fill order with the post-order of a depth-first search from root,
    flagging each node VISITED and taking a reference to it; returns their
    number. Where it fails (out of memory), no node is left VISITED."""
    cdef Frame frames[STACK_FRAMES]
    cdef Buffer stack = Buffer(<void *>&frames[0], STACK_FRAMES, False)
    cdef Py_ssize_t n = 0, depth = 1
    cdef Frame *top
    cdef PyObject *child
    root._a |= VISITED
    _push(&(<Frame *>stack.items)[0], <PyObject *>root)
    try:
        while depth:
            top = &(<Frame *>stack.items)[depth - 1]
            if top.next_child < top.nchildren:
                child = _child(top.node, top.next_child)
                top.next_child += 1
                if not (<Value>child)._a & VISITED:
                    if depth == stack.size:
                        _grow(&stack, sizeof(Frame))
                    (<Value>child)._a |= VISITED
                    _push(&(<Frame *>stack.items)[depth], child)
                    depth += 1
            else:
                if n == order.size:
                    _grow(order, sizeof(PyObject *))
                Py_INCREF(<object>top.node)
                (<PyObject **>order.items)[n] = top.node
                n += 1
                depth -= 1
    except BaseException:
        # every node it reached is on the stack or in the order
        while depth:
            depth -= 1
            (<Value>(<Frame *>stack.items)[depth].node)._a &= ~(<uintptr_t>VISITED)
        while n:
            n -= 1
            (<Value>(<PyObject **>order.items)[n])._a &= ~(<uintptr_t>VISITED)
            Py_DECREF(<object>(<PyObject **>order.items)[n])
        raise
    finally:
        _release(&stack)
    return n
