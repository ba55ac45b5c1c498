# cython: boundscheck=True, wraparound=True
# Indexing here reaches user sequences, so it keeps Python's checks.
"""The compiled generator behind ``microgpt.random``.

``Generator`` is what CPython's ``_random.Random`` is in C -- seeding, 32-bit
words, ``random()``, ``getrandbits()``, the state -- over the MT19937 core in
``csrc/mt19937.c``, plus the draws microgpt makes most as C loops: ``gauss``
and its bulk forms, ``shuffle``, ``choices``. Each computes what
``Lib/random.py`` computes, in the same order, so every result equals the
standard library's bit for bit. ``microgpt.random.Random``, a subclass of
``random.Random``, runs on a Generator and inherits everything else from the
standard library.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLong, PyLong_AsUnsignedLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.number cimport PyNumber_Index
from cpython.object cimport PyObject, PyObject_TypeCheck, PyTypeObject
from libc.math cimport cos, floor, isfinite, log, sin, sqrt
from libc.stdint cimport uint32_t, uint64_t

import os as _os
import sys as _sys
from time import time_ns as _time_ns

cdef extern from "mt19937.h":
    enum:
        MT19937_N
    ctypedef struct mt19937_state:
        uint32_t key[624]
        int pos
    void mt19937_init_by_array(mt19937_state *state, const uint32_t *init_key,
                               size_t key_length) noexcept nogil
    uint32_t mt19937_next32(mt19937_state *state) noexcept nogil
    double mt19937_next_double(mt19937_state *state) noexcept nogil
    uint64_t mt19937_next_bits64(mt19937_state *state, int k) noexcept nogil
    uint64_t mt19937_below(mt19937_state *state, uint64_t n) noexcept nogil

cdef double TWOPI = 6.283185307179586  # math.tau
cdef object _SIZE_T_MASK = 2 * _sys.maxsize + 1  # (size_t)-1, in Python ints: a C shift by 64 is undefined
cdef tuple _DOUBLE_FORMATS = ("d", "@d", "=d", "<d" if _sys.byteorder == "little" else ">d")
cdef object _sha512 = None


@cython.final
@cython.auto_pickle(False)     # microgpt.random.Random pickles through getstate()
cdef class Generator:
    """The compiled MT19937 generator: the core of ``microgpt.random.Random``.

    A new Generator is all zeros, as CPython's is before seeding: call seed().
    """

    cdef mt19937_state _state
    # gauss()'s pending value: whatever setstate() was given (None: none), or,
    # when gauss() drew it, a C double (no float object made for each pair)
    cdef object _gauss_next
    cdef double _gauss_double
    cdef bint _gauss_is_double
    # The Random that owns it draws through a random(), getrandbits() or
    # _randbelow() of its own (its class's or its instance's): the methods
    # below then give way to Lib/random.py's. Kept here to be read from C.
    cdef public bint own_core

    # -- the core: seeding, words, state (CPython's _random.Random) --------

    cpdef seed(self, a=None, version=2):
        """Initialize internal state from a seed.

        The only supported seed types are None, int, float, str, bytes, and
        bytearray, treated exactly as by ``random.seed``: an int by its
        absolute value, all bits used; a float by its hash; a str, bytes or
        bytearray (version 2) by its bytes followed by their SHA-512.
        """
        global _sha512
        if version == 1 and isinstance(a, (str, bytes)):
            a = a.decode('latin-1') if isinstance(a, bytes) else a
            x = ord(a[0]) << 7 if a else 0
            for c in map(ord, a):
                x = ((1000003 * x) ^ c) & 0xFFFFFFFFFFFFFFFF
            x ^= len(a)
            a = -2 if x == -1 else x

        elif version == 2 and isinstance(a, (str, bytes, bytearray)):
            if isinstance(a, str):
                a = a.encode()
            if _sha512 is None:
                import hashlib
                _sha512 = hashlib.sha512
            a = int.from_bytes(a + _sha512(a).digest(), 'big')

        elif not isinstance(a, (type(None), int, float, str, bytes, bytearray)):
            raise TypeError('The only supported seed types are: None,\n'
                            'int, float, str, bytes, and bytearray.')

        self._seed(a)
        self._set_gauss_next(None)

    cdef _seed(self, a):
        """_random.Random.seed: an int's absolute value or a hash as 32-bit words."""
        if a is None:
            try:
                key = _os.urandom(4 * MT19937_N)
            except NotImplementedError:
                key = (_time_ns() ^ _os.getpid()).to_bytes(16, 'little')
            self._init_by_bytes(key)
            return
        if isinstance(a, int):
            n = int.__abs__(a)      # int's own __abs__, as CPython does
        else:
            n = hash(a) & _SIZE_T_MASK     # (size_t)hash
        nwords = max(1, (n.bit_length() + 31) // 32)
        self._init_by_bytes(n.to_bytes(4 * nwords, 'little'))

    cdef _init_by_bytes(self, bytes key):
        """init_by_array over key read as little-endian 32-bit words."""
        cdef const unsigned char *b = <const unsigned char *>PyBytes_AS_STRING(key)
        cdef Py_ssize_t i, n = len(key) // 4
        cdef uint32_t *words = <uint32_t *>PyMem_Malloc(n * sizeof(uint32_t))
        if words == NULL:
            raise MemoryError()
        for i in range(n):
            words[i] = (b[4*i] | (<uint32_t>b[4*i + 1] << 8)
                        | (<uint32_t>b[4*i + 2] << 16) | (<uint32_t>b[4*i + 3] << 24))
        mt19937_init_by_array(&self._state, words, n)
        PyMem_Free(words)

    cpdef random(self):
        """random() -> x in the interval [0, 1)."""
        return mt19937_next_double(&self._state)

    cpdef getrandbits(self, k):
        """getrandbits(k) -> x.  Generates an int with k random bits."""
        cdef int bits = PyNumber_Index(k)    # a C int, as in CPython: floats refused, huge k overflows
        cdef Py_ssize_t i, words
        cdef uint32_t r
        cdef unsigned char *b
        if bits < 0:
            raise ValueError("number of bits must be non-negative")
        if bits == 0:
            return 0
        if bits <= 64:
            return mt19937_next_bits64(&self._state, bits)
        # 32 bits at a time from the least significant end, dropping the
        # low bits of the last word
        words = (bits - 1) // 32 + 1
        buffer = PyBytes_FromStringAndSize(NULL, 4 * words)
        b = <unsigned char *>PyBytes_AS_STRING(buffer)
        for i in range(words):
            r = mt19937_next32(&self._state)
            if bits < 32:
                r >>= 32 - bits
            b[4*i] = r & 0xff
            b[4*i + 1] = (r >> 8) & 0xff
            b[4*i + 2] = (r >> 16) & 0xff
            b[4*i + 3] = r >> 24
            bits -= 32
        return int.from_bytes(buffer, 'little')

    cpdef getstate(self):
        """Return internal state; can be passed to setstate() later."""
        cdef list words = [self._state.key[i] for i in range(MT19937_N)]
        words.append(self._state.pos)
        return 3, tuple(words), self._get_gauss_next()

    cpdef setstate(self, state):
        """Restore internal state from object returned by getstate()."""
        version = state[0]
        if version == 3:
            version, internalstate, gauss_next = state
            self._set_gauss_next(gauss_next)   # kept even if the words are refused, as in CPython
            self._setstate(internalstate)
        elif version == 2:
            version, internalstate, gauss_next = state
            self._set_gauss_next(gauss_next)
            # In version 2, the state was saved as signed ints, which causes
            #   inconsistencies between 32/64-bit systems. The state is
            #   really unsigned 32-bit ints, so we convert negative ints from
            #   version 2 to positive longs for version 3.
            try:
                internalstate = tuple([x % (2 ** 32) for x in internalstate])
            except ValueError as e:
                raise TypeError from e
            self._setstate(internalstate)
        else:
            raise ValueError("state with version %s passed to "
                             "Random.setstate() of version %s" %
                             (version, 3))

    cdef _setstate(self, state):
        """_random.Random.setstate: 624 words and a position, all checked first."""
        cdef uint32_t key[624]
        cdef long pos
        cdef Py_ssize_t i
        if not isinstance(state, tuple):
            raise TypeError("state vector must be a tuple")
        if len(state) != MT19937_N + 1:
            raise ValueError("state vector is the wrong size")
        for i in range(MT19937_N):
            key[i] = <uint32_t>PyLong_AsUnsignedLong(state[i])
        pos = PyLong_AsLong(state[MT19937_N])
        if pos < 0 or pos > MT19937_N:
            raise ValueError("invalid state")
        self._state.key = key
        self._state.pos = pos

    @property
    def gauss_next(self):
        """The second value of the last gauss() pair, or None (any object
        setstate() was given, as in CPython)."""
        return self._get_gauss_next()

    @gauss_next.setter
    def gauss_next(self, value):
        self._set_gauss_next(value)

    cdef inline object _get_gauss_next(self):
        return self._gauss_double if self._gauss_is_double else self._gauss_next

    cdef inline void _set_gauss_next(self, value):
        self._gauss_is_double = False
        self._gauss_next = value

    # -- draws built on the core, as Lib/random.py computes them ------------

    cpdef _randbelow(self, n):
        """Return a random int in the range [0,n).  Defined for n > 0."""
        if n <= 0:
            raise ValueError("_randbelow() is defined for n > 0 only")
        k = n.bit_length()
        if k <= 64:
            return mt19937_below(&self._state, n)
        r = self.getrandbits(k)  # 0 <= r < 2**k
        while r >= n:
            r = self.getrandbits(k)
        return r

    cpdef shuffle(self, x):
        """Shuffle list x in place, and return None."""
        cdef Py_ssize_t i, j
        cdef list items
        if type(x) is list:
            # the same swaps on the list's items, with no Python calls between them
            items = x
            for i in range(len(items) - 1, 0, -1):
                # pick an element in x[:i+1] with which to exchange x[i]
                j = <Py_ssize_t>mt19937_below(&self._state, i + 1)
                items[i], items[j] = items[j], items[i]
            return
        for i in reversed(range(1, len(x))):
            j = <Py_ssize_t>mt19937_below(&self._state, i + 1)
            x[i], x[j] = x[j], x[i]

    cdef object _choices(self, population, weights, cum_weights, k):
        """random.choices without weights or with float weights, as C loops;
        NotImplemented for any other weights."""
        cdef Py_ssize_t i, count
        cdef double nf
        if cum_weights is None:
            if weights is None:
                nf = len(population)    # n += 0.0, as CPython does
                count = _count(k)
                return [population[<Py_ssize_t>floor(mt19937_next_double(&self._state) * nf)]
                        for i in range(count)]
            if _all_floats(weights):
                return self._choices_float(population, weights, False, k)
        elif weights is None and _all_floats(cum_weights):
            return self._choices_float(population, cum_weights, True, k)
        return NotImplemented

    cdef list _choices_float(self, population, weights, bint cumulative, k):
        """choices() when every weight is a float: the running sums, the
        checks and bisect_right as CPython computes them, on C doubles."""
        cdef Py_ssize_t i, lo, hi, mid, count, n = len(population)
        cdef double total, x, running = 0.0
        cdef double *cum
        if len(weights) != n:
            raise ValueError('The number of weights does not match the population')
        if n == 0:
            raise IndexError('list index out of range')   # cum_weights[-1] of []
        cum = <double *>PyMem_Malloc(n * sizeof(double))
        if cum == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                if cumulative:
                    cum[i] = weights[i]
                else:
                    running = weights[i] if i == 0 else running + <double>weights[i]
                    cum[i] = running
            total = cum[n - 1]
            if total <= 0.0:
                raise ValueError('Total of weights must be greater than zero')
            if not isfinite(total):
                raise ValueError('Total of weights must be finite')
            count = _count(k)
            result = [None] * count
            for i in range(count):
                x = mt19937_next_double(&self._state) * total
                lo = 0
                hi = n - 1
                while lo < hi:      # bisect_right(cum, x, 0, n - 1)
                    mid = (lo + hi) // 2
                    if x < cum[mid]:
                        hi = mid
                    else:
                        lo = mid + 1
                result[i] = population[lo]
            return result
        finally:
            PyMem_Free(cum)

    cpdef gauss(self, mu=0.0, sigma=1.0):
        """Gaussian distribution, as random.gauss: mu is the mean, and sigma
        is the standard deviation. Values come in pairs; the second is kept
        for the next call (and in getstate())."""
        cdef double z
        if self._gauss_is_double:
            self._gauss_is_double = False
            z = self._gauss_double
        elif self._gauss_next is None:
            z = self._gauss_pair(&self._gauss_double)
            self._gauss_is_double = True
        else:
            pending = self._gauss_next
            self._gauss_next = None
            if type(pending) is not float:
                return mu + pending * sigma     # whatever setstate() put there, as Python computes it
            z = pending
        if _is_float_or_int(mu) and _is_float_or_int(sigma):
            return <double>mu + z * <double>sigma   # what Python computes for these types
        return mu + z * sigma

    cdef inline double _gauss_pair(self, double *second) noexcept:
        # When x and y are two variables from [0, 1), uniformly
        # distributed, then
        #
        #    cos(2*pi*x)*sqrt(-2*log(1-y))
        #    sin(2*pi*x)*sqrt(-2*log(1-y))
        #
        # are two *independent* variables with normal distribution
        # (mu = 0, sigma = 1).  (Lambert Meertens)
        cdef double x2pi = mt19937_next_double(&self._state) * TWOPI
        cdef double g2rad = sqrt(-2.0 * log(1.0 - mt19937_next_double(&self._state)))
        second[0] = sin(x2pi) * g2rad
        return cos(x2pi) * g2rad

    # -- bulk draws --------------------------------------------------------

    cpdef random_array(self, n):
        """A float64 numpy array of the next n random() values."""
        cdef Py_ssize_t i, count = _count_array(n)
        cdef double[::1] view
        import numpy
        out = numpy.empty(count, dtype=numpy.float64)
        view = out
        for i in range(count):
            view[i] = mt19937_next_double(&self._state)
        return out

    cpdef gauss_array(self, n, mu=0.0, sigma=1.0):
        """A float64 numpy array of the next n gauss(mu, sigma) values."""
        cdef Py_ssize_t count = _count_array(n)
        cdef double m = mu, s = sigma
        import numpy
        out = numpy.empty(count, dtype=numpy.float64)
        self._gauss_fill(out, m, s)
        return out

    cpdef gauss_into(self, out, mu=0.0, sigma=1.0):
        """Fill out, a writable C-contiguous buffer of doubles (a numpy array,
        a memoryview), with the next gauss(mu, sigma) values, one per double."""
        view = _double_buffer(out)
        self._gauss_fill(view, mu, sigma)

    cdef _gauss_fill(self, double[::1] view, double m, double s):
        """view[i] = gauss(m, s) for each i: the pairs on C doubles, the
        second value of the last pair left in the slot."""
        cdef Py_ssize_t i = 0, count = view.shape[0]
        cdef double second
        if count == 0:
            return
        if self._gauss_is_double:
            self._gauss_is_double = False
            view[0] = m + self._gauss_double * s
            i = 1
        elif self._gauss_next is not None:
            pending = self._gauss_next
            self._gauss_next = None
            if type(pending) is float:
                view[0] = m + <double>pending * s
            else:
                view[0] = m + pending * s   # as gauss() computes it, then stored as a double
            i = 1
        while i + 1 < count:
            view[i] = m + self._gauss_pair(&second) * s
            view[i + 1] = m + second * s
            i += 2
        if i < count:
            view[i] = m + self._gauss_pair(&self._gauss_double) * s
            self._gauss_is_double = True


# -- the methods of microgpt.random.Random that run on its generator ---------
# Plain functions of self, for Random's class dict: they bind, inherit and
# give way to a subclass's or an instance's own method as Python functions
# do, and reach the generator's C code with one attribute lookup.

cdef extern from *:
    """
    #include <structmember.h>
    /* Where a __slots__ member keeps its object in each instance. */
    static Py_ssize_t microgpt_member_offset(PyObject *descr)
    {
        return ((PyMemberDescrObject *)descr)->d_member->offset;
    }
    """
    Py_ssize_t microgpt_member_offset(object descr)

cdef object _Random = None              # microgpt.random.Random, once set_random_class is called
cdef Py_ssize_t _generator_offset = 0   # where its instances keep _generator


def set_random_class(cls):
    """Tell the methods below which class is microgpt.random.Random: its
    instances keep their Generator in the __slots__ member _generator."""
    global _Random, _generator_offset
    descr = cls.__dict__.get("_generator") if isinstance(cls, type) else None
    # a member of cls itself (not one borrowed from another class), inside
    # its instances: the methods below read it at that offset
    if type(descr).__name__ != "member_descriptor" or descr.__objclass__ is not cls:
        raise TypeError("Random._generator must be a __slots__ member of Random")
    offset = microgpt_member_offset(descr)
    if not sizeof(PyObject) <= offset <= cls.__basicsize__ - sizeof(PyObject *):
        raise TypeError("Random._generator is not inside Random's instances")
    _Random, _generator_offset = cls, offset


cdef inline Generator _generator(self):
    """self._generator, read straight from its slot: the attribute lookup
    would cost as much as a draw."""
    cdef PyObject *slot
    if _Random is not None and PyObject_TypeCheck(self, <PyTypeObject *>_Random):
        slot = (<PyObject **>(<char *><PyObject *>self + _generator_offset))[0]
        if slot is not NULL and type(<object>slot) is Generator:
            return <Generator>slot
    return self._generator      # unset, or not a Random: Python's lookup, and its error


def seed(self, a=None, version=2):
    """Initialize internal state from a seed, exactly as random.seed:
    None, int, float, str, bytes, or bytearray."""
    return _generator(self).seed(a, version)


def random(self):
    """random() -> x in the interval [0, 1)."""
    return _generator(self).random()


def getrandbits(self, k):
    """getrandbits(k) -> x.  Generates an int with k random bits."""
    return _generator(self).getrandbits(k)


def getstate(self):
    """Return internal state; can be passed to setstate() later."""
    return _generator(self).getstate()


def setstate(self, state):
    """Restore internal state from object returned by getstate()."""
    return _generator(self).setstate(state)


# The draws built on the core: C loops, unless the Random has a core of its
# own (Generator.own_core); then the next class's: Lib/random.py's
# algorithms, PythonRandom's bulk draws.

def _randbelow(self, n):
    """Return a random int in the range [0,n).  Defined for n > 0."""
    cdef Generator g = _generator(self)
    if g.own_core:
        return super(_Random, self)._randbelow(n)
    return g._randbelow(n)


def gauss(self, mu=0.0, sigma=1.0):
    """Gaussian distribution.

    mu is the mean, and sigma is the standard deviation.  This is
    slightly faster than the normalvariate() function.
    """
    cdef Generator g = _generator(self)
    if g.own_core:
        return super(_Random, self).gauss(mu, sigma)
    return g.gauss(mu, sigma)


def shuffle(self, x):
    """Shuffle list x in place, and return None."""
    cdef Generator g = _generator(self)
    if g.own_core:
        return super(_Random, self).shuffle(x)
    return g.shuffle(x)


def choices(self, population, weights=None, *, cum_weights=None, k=1):
    """Return a k sized list of population elements chosen with replacement.

    If the relative weights or cumulative weights are not specified,
    the selections are made with equal probability.
    """
    cdef Generator g = _generator(self)
    if not g.own_core:
        result = g._choices(population, weights, cum_weights, k)
        if result is not NotImplemented:
            return result
    # other weights than floats, or a core of its own: the standard library's loop
    return super(_Random, self).choices(population, weights, cum_weights=cum_weights, k=k)


def random_array(self, n):
    """A float64 numpy array of the next n random() values."""
    cdef Generator g = _generator(self)
    if g.own_core:
        return super(_Random, self).random_array(n)
    return g.random_array(n)


def gauss_array(self, n, mu=0.0, sigma=1.0):
    """A float64 numpy array of the next n gauss(mu, sigma) values."""
    cdef Generator g = _generator(self)
    if g.own_core:
        return super(_Random, self).gauss_array(n, mu, sigma)
    return g.gauss_array(n, mu, sigma)


def gauss_into(self, out, mu=0.0, sigma=1.0):
    """Fill out, a writable C-contiguous buffer of doubles (a numpy array,
    a memoryview), with the next gauss(mu, sigma) values, one per double."""
    cdef Generator g = _generator(self)
    if g.own_core:
        return super(_Random, self).gauss_into(out, mu, sigma)
    return g.gauss_into(out, mu, sigma)


# -- helpers -------------------------------------------------------------------

cdef object _double_buffer(object out):
    """out as a flat memoryview of doubles, if it is a writable C-contiguous
    buffer of them; TypeError otherwise (None, read-only, strided, float32).
    The same checks as in random.py: the pure-Python backend has no compiled module."""
    view = memoryview(out)
    if view.readonly:
        raise TypeError("gauss_into needs a writable buffer, not a read-only one")
    if not view.c_contiguous:
        raise TypeError("gauss_into needs a C-contiguous buffer")
    if view.itemsize != 8 or view.format not in _DOUBLE_FORMATS:
        raise TypeError(f"gauss_into needs a buffer of doubles, not of format {view.format!r}")
    return view.cast("B").cast("d")


cdef bint _all_floats(object weights) except -1:
    """weights is a list or tuple of floats (the C path of choices)."""
    if type(weights) is not list and type(weights) is not tuple:
        return False
    for w in weights:
        if type(w) is not float:
            return False
    return True


cdef inline bint _is_float_or_int(object x):
    return type(x) is float or type(x) is int


cdef Py_ssize_t _count(object k) except -1:
    """The number of draws itertools.repeat(None, k) makes: none for k < 0."""
    cdef Py_ssize_t count = PyNumber_Index(k)
    return count if count > 0 else 0


cdef Py_ssize_t _count_array(object n) except -1:
    cdef Py_ssize_t count = PyNumber_Index(n)
    if count < 0:
        raise ValueError(f"n must be non-negative, not {count}")
    return count
