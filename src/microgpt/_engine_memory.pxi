# The Values' memory: part of _engine.pyx (included there, after Value).

cdef extern from "Python.h":
    ctypedef struct PyTypeObject:
        Py_ssize_t tp_basicsize
    PyObject *PyObject_Init(PyObject *op, PyTypeObject *type)
    PyObject *PyErr_NoMemory()
    int PyTraceMalloc_Track(unsigned int domain, size_t ptr, size_t size)
    int PyTraceMalloc_Untrack(unsigned int domain, size_t ptr)

cdef extern from "slab.h":
    ctypedef struct slab_pool:
        size_t object_size
        size_t per_slab
        size_t slabs
        size_t empty_slabs
    int slab_pool_init(slab_pool *pool, size_t object_size,
                       void (*on_map)(void *, size_t) noexcept,
                       void (*on_unmap)(void *) noexcept)
    void *slab_alloc(slab_pool *pool) noexcept
    void slab_free(slab_pool *pool, void *p) noexcept
    size_t slab_release_empty(slab_pool *pool) noexcept

cdef extern from *:
    """
    typedef PyObject *(*value_allocfunc)(PyTypeObject *, Py_ssize_t);
    static void set_allocator(PyObject *type, value_allocfunc alloc, freefunc free_,
                              destructor dealloc)
    {
        ((PyTypeObject *)type)->tp_alloc = alloc;
        ((PyTypeObject *)type)->tp_free = free_;
        ((PyTypeObject *)type)->tp_dealloc = dealloc;
    }
    """
    ctypedef PyObject *(*value_allocfunc)(PyTypeObject *, Py_ssize_t) noexcept
    ctypedef void (*freefunc)(void *) noexcept
    ctypedef void (*destructor)(PyObject *) noexcept
    void set_allocator(object type, value_allocfunc alloc, freefunc free_, destructor dealloc)


# Memory ---------------------------------------------------------------------
#
# Every Value comes from one slab pool (csrc/slab.c) instead of Python's
# allocator: a graph then lies in memory in the order it was built, and the
# backward pass and the freeing of the graph, which walk it nearly in the
# reverse order, read memory nearly sequentially. The type is final, so
# every instance is exactly a Value and the type's own slots allocate it.

cdef enum:
    TRACE_DOMAIN = 0x6d677074   # tracemalloc's domain of the slabs ("mgpt")

cdef slab_pool _values

cdef void _on_map(void *slab, size_t size) noexcept:
    PyTraceMalloc_Track(TRACE_DOMAIN, <size_t>slab, size)

cdef void _on_unmap(void *slab) noexcept:
    PyTraceMalloc_Untrack(TRACE_DOMAIN, <size_t>slab)

cdef PyObject *_value_alloc(PyTypeObject *type, Py_ssize_t nitems) noexcept:
    """The type's tp_alloc: a zeroed object of the type, or NULL and MemoryError."""
    cdef void *p = slab_alloc(&_values)
    if p == NULL:
        return PyErr_NoMemory()
    memset(p, 0, type.tp_basicsize)
    return PyObject_Init(<PyObject *>p, type)

cdef void _value_free(void *p) noexcept:
    slab_free(&_values, p)

cdef void _value_dealloc(PyObject *node) noexcept:
    """The type's tp_dealloc: releases the children, counting the nesting.

    Past MAX_DEPTH nested frees the children are set aside and freed by the
    outermost call, in a loop, so freeing a chain a million nodes deep needs
    no deep C stack. No Python code runs: children are Values, and the
    tuple of the rest holds Values and floats."""
    global _depth
    cdef PyObject *a = <PyObject *>((<Value>node)._a & ~(<uintptr_t>FLAGS))
    cdef PyObject *b = (<Value>node)._b
    cdef bint many = (<Value>node)._a & MANY
    if b != NULL:
        prefetch(b)         # its count is read next but one: start loading it with a's
    slab_free(&_values, node)
    if _depth >= MAX_DEPTH:
        a = _set_aside(a)
        if not many:        # (the tuple of the rest frees its items with the trashcan)
            b = _set_aside(b)
    _depth += 1
    Py_XDECREF(a)
    Py_XDECREF(b)
    _depth -= 1
    if _depth == 0 and _aside_count:
        _free_set_aside()

if slab_pool_init(&_values, (<size_t>(<PyTypeObject *><PyObject *>Value).tp_basicsize + 15) // 16 * 16,
                  _on_map, _on_unmap) != 0:
    raise ImportError("microgpt._engine: no slab pool for a Value's size")
set_allocator(Value, _value_alloc, _value_free, _value_dealloc)


def release_kept_memory():
    """Free the memory kept for Values to come (the slabs that freed graphs
    left empty); returns it, in bytes. (It is never more than the most the
    Values have taken at once.)"""
    return slab_release_empty(&_values)


def _memory():
    """The Values' memory, for tests: {object_size, per_slab, slabs, empty_slabs}."""
    return {"object_size": _values.object_size, "per_slab": _values.per_slab,
            "slabs": _values.slabs, "empty_slabs": _values.empty_slabs}


# Freeing deep graphs --------------------------------------------------------

cdef enum:
    MAX_DEPTH = 64          # nested Value frees before children are set aside

cdef int _depth = 0             # Value frees in progress, nested
cdef PyObject **_aside = NULL   # owned references to children whose free was put off
cdef Py_ssize_t _aside_count = 0
cdef Py_ssize_t _aside_size = 0

cdef inline PyObject *_set_aside(PyObject *child) noexcept:
    """Keep the caller's reference to child, if it is the last one, to free
    child later: returns NULL then, else child (for the caller to release)."""
    global _aside, _aside_count, _aside_size
    cdef void *grown
    if child == NULL or Py_REFCNT(<object>child) > 1:
        return child
    if _aside_count == _aside_size:
        grown = PyMem_Realloc(_aside, (2 * _aside_size + 256) * sizeof(PyObject *))
        if grown == NULL:
            return child    # out of memory: free it now, recursively
        _aside = <PyObject **>grown
        _aside_size = 2 * _aside_size + 256
    _aside[_aside_count] = child
    _aside_count += 1
    return NULL

cdef void _free_set_aside() noexcept:
    global _depth, _aside_count
    cdef PyObject *child
    while _aside_count:
        _aside_count -= 1
        child = _aside[_aside_count]
        _depth += 1
        Py_DECREF(<object>child)
        _depth -= 1
