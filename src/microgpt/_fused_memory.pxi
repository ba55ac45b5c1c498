# The tensors' memory (included by _fused.pyx): allocation, the blocks
# kept for reuse, large blocks as pages of their own.

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


cdef inline Py_ssize_t _block_doubles(Py_ssize_t n) noexcept:
    """The doubles of the block that holds n: n itself for the C library's
    blocks; for pages of their own, n rounded up to the next of eight steps
    between powers of two (at most 1/8 more), so that the tensors of steps
    whose sizes differ a little (batches of documents of other lengths)
    reuse each other's blocks instead of faulting in new pages."""
    cdef Py_ssize_t step = 1
    if <size_t>n * sizeof(double) < PAGES_LARGE:
        return n
    while step <= n >> 3:       # the power of two step * 4 <= n < step * 8
        step <<= 1
    return (n + step - 1) // step * step


cdef double *_matrix(Py_ssize_t n, bint zero) except NULL:
    """n doubles for a tensor, zeroed or not: a kept block of that size if
    there is one, else new memory."""
    global _kept_bytes, _used_bytes, _most_used
    cdef _Kept *kept
    cdef Py_ssize_t nbytes, used = n
    cdef double *p
    if n < 0 or max(n, 1) > (PY_SSIZE_T_MAX - _most_used) // <Py_ssize_t>sizeof(double) // 2:
        raise MemoryError(f"{n} doubles are too many")
    n = _block_doubles(n)
    nbytes = max(n, 1) * <Py_ssize_t>sizeof(double)
    kept = _kept_of(n) if n >= 1 else NULL
    if kept != NULL and kept.first != NULL:
        p = <double *>kept.first
        kept.first = (<void **>p)[0]
        _kept_bytes -= nbytes
        if zero:
            memset(p, 0, max(used, 1) * sizeof(double))
    else:
        # a kept block of pages of another size, resized, if there is one
        p = _resized_kept(n) if <size_t>nbytes >= PAGES_LARGE else NULL
        # room first, then the block: at no moment more than the most in use
        # (_used_bytes + _kept_bytes <= _most_used: the sums do not overflow)
        if _used_bytes + nbytes + _kept_bytes > max(_most_used, _used_bytes + nbytes):
            _free_kept(_used_bytes + nbytes + _kept_bytes
                       - max(_most_used, _used_bytes + nbytes))
        if p == NULL:
            p = _alloc(n, zero) if <size_t>nbytes < PAGES_LARGE else _pages(nbytes)
        elif zero:
            memset(p, 0, max(used, 1) * sizeof(double))
    _used_bytes += nbytes
    _most_used = max(_most_used, _used_bytes)
    return p


cdef double *_resized_kept(Py_ssize_t n) noexcept:
    """A kept block of pages, taken from the kept ones and resized to n
    doubles (the one nearest that size: the fewest pages given back or
    faulted in), or NULL if none is kept or the system cannot resize it
    (the block is then freed)."""
    global _kept_bytes
    cdef Py_ssize_t i, best = -1, size
    cdef void *p
    cdef void *q
    for i in range(_SIZES):
        size = _kept[i].n
        if _kept[i].first == NULL or <size_t>size * sizeof(double) < PAGES_LARGE:
            continue
        if best < 0 or abs(size - n) < abs(_kept[best].n - n):
            best = i
    if best < 0:
        return NULL
    p = _kept[best].first
    _kept[best].first = (<void **>p)[0]
    size = _kept[best].n * <Py_ssize_t>sizeof(double)
    _kept_bytes -= size
    PyTraceMalloc_Untrack(_TRACE_DOMAIN, <size_t>p)
    q = pages_resize(p, size, n * sizeof(double))
    if q == NULL:
        pages_free(p, size)
        return NULL
    PyTraceMalloc_Track(_TRACE_DOMAIN, <size_t>q, n * sizeof(double))
    return <double *>q


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
    cdef Py_ssize_t nbytes
    if p == NULL:
        return
    n = _block_doubles(n)
    nbytes = max(n, 1) * <Py_ssize_t>sizeof(double)
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
