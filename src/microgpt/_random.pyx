# cython: boundscheck=True, wraparound=True
# Indexing here reaches user sequences, so it keeps Python's checks.
"""The compiled generator behind ``microgpt.random``.

``Random`` is CPython's ``random.Random`` over the MT19937 core in
``csrc/mt19937.c``: the same seeding, the same 32-bit words, the same
doubles, and the algorithms of ``Lib/random.py`` above them written out in
the same order, so every result equals the standard library's bit for bit.
The draws microgpt makes most (``random``, ``gauss``, ``shuffle``,
``choices``) run as C loops; the rest is CPython's Python, compiled.
"""
cimport cython
from cpython.long cimport PyLong_AsLong, PyLong_AsUnsignedLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport cos, floor, isfinite, log, sin, sqrt
from libc.stdint cimport uint32_t, uint64_t

import os as _os
import sys as _sys
from _collections_abc import Sequence as _Sequence
from bisect import bisect as _bisect
from itertools import accumulate as _accumulate, repeat as _repeat
from math import ceil as _ceil, floor as _floor, isfinite as _isfinite, log as _log
from operator import index as _index
from time import time_ns as _time_ns
from warnings import warn as _warn

cdef extern from "mt19937.h":
    enum:
        MT19937_N
    ctypedef struct mt19937_state:
        uint32_t key[624]
        int pos
    void mt19937_seed(mt19937_state *state, uint32_t seed) noexcept nogil
    void mt19937_init_by_array(mt19937_state *state, const uint32_t *init_key,
                               size_t key_length) noexcept nogil
    uint32_t mt19937_next32(mt19937_state *state) noexcept nogil
    double mt19937_next_double(mt19937_state *state) noexcept nogil
    uint64_t mt19937_next_bits64(mt19937_state *state, int k) noexcept nogil

cdef double TWOPI = 6.283185307179586  # math.tau
cdef object _ONE = 1
cdef bint _LEGACY_RANDRANGE = _sys.version_info < (3, 12)  # floats accepted, with a warning
cdef object _SIZE_T_MASK = 2 * _sys.maxsize + 1  # (size_t)-1, in Python ints: a C shift by 64 is undefined
cdef object _sha512 = None


cdef inline int _bit_length(uint64_t n) noexcept nogil:
    cdef int k = 0
    if n >> 32:
        n >>= 32
        k += 32
    if n >> 16:
        n >>= 16
        k += 16
    if n >> 8:
        n >>= 8
        k += 8
    if n >> 4:
        n >>= 4
        k += 4
    if n >> 2:
        n >>= 2
        k += 2
    if n >> 1:
        n >>= 1
        k += 1
    return k + <int>n


cdef inline uint64_t _below(mt19937_state *state, uint64_t n) noexcept nogil:
    """_randbelow(n) for 0 < n < 2**64: getrandbits(n.bit_length()) until below n."""
    cdef int k = _bit_length(n)
    cdef uint64_t r = mt19937_next_bits64(state, k)
    while r >= n:
        r = mt19937_next_bits64(state, k)
    return r


cdef class Random:
    """Random number generator with the API and the output of ``random.Random``.

    >>> import random as stdlib
    >>> Random(42).random() == stdlib.Random(42).random()
    True
    """

    VERSION = 3     # used by getstate/setstate

    cdef mt19937_state _state
    cdef double _gauss_next      # the second value of the last gauss pair
    cdef bint _has_gauss_next    # whether _gauss_next is waiting to be returned

    def __cinit__(self, *args, **kwargs):
        mt19937_seed(&self._state, 5489)  # defined even if a subclass skips __init__

    def __init__(self, x=None):
        """Initialize an instance; x controls seeding, as for seed()."""
        self.seed(x)

    # -- the core: seeding, words, state (CPython's _random.Random) --------

    def seed(self, a=None, version=2):
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
        self._has_gauss_next = False

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
        cdef const unsigned char[:] b = key
        cdef Py_ssize_t i, n = len(key) // 4
        cdef uint32_t *words = <uint32_t *>PyMem_Malloc(n * sizeof(uint32_t))
        if words == NULL:
            raise MemoryError()
        for i in range(n):
            words[i] = (b[4*i] | (<uint32_t>b[4*i + 1] << 8)
                        | (<uint32_t>b[4*i + 2] << 16) | (<uint32_t>b[4*i + 3] << 24))
        mt19937_init_by_array(&self._state, words, n)
        PyMem_Free(words)

    def random(self):
        """random() -> x in the interval [0, 1)."""
        return mt19937_next_double(&self._state)

    def getrandbits(self, k):
        """getrandbits(k) -> x.  Generates an int with k random bits."""
        cdef int bits = _index(k)   # a C int, as in CPython: floats refused, huge k overflows
        cdef Py_ssize_t i, words
        cdef uint32_t r
        cdef unsigned char[:] b
        if bits < 0:
            raise ValueError("number of bits must be non-negative")
        if bits == 0:
            return 0
        if bits <= 64:
            return mt19937_next_bits64(&self._state, bits)
        # 32 bits at a time from the least significant end, dropping the
        # low bits of the last word
        words = (bits - 1) // 32 + 1
        buffer = bytearray(4 * words)
        b = buffer
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

    def getstate(self):
        """Return internal state; can be passed to setstate() later."""
        return self.VERSION, self._getstate(), self.gauss_next

    cdef tuple _getstate(self):
        cdef list state = [self._state.key[i] for i in range(MT19937_N)]
        state.append(self._state.pos)
        return tuple(state)

    def setstate(self, state):
        """Restore internal state from object returned by getstate()."""
        version = state[0]
        if version == 3:
            version, internalstate, self.gauss_next = state
            self._setstate(internalstate)
        elif version == 2:
            version, internalstate, self.gauss_next = state
            # In version 2, the state was saved as signed ints, which causes
            #   inconsistencies between 32/64-bit systems. The state is
            #   really unsigned 32-bit ints, so we convert negative ints from
            #   version 2 to positive longs for version 3.
            try:
                internalstate = tuple(x % (2 ** 32) for x in internalstate)
            except ValueError as e:
                raise TypeError from e
            self._setstate(internalstate)
        else:
            raise ValueError("state with version %s passed to "
                             "Random.setstate() of version %s" %
                             (version, self.VERSION))

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
        """The second value of the last gauss() pair, or None."""
        return self._gauss_next if self._has_gauss_next else None

    @gauss_next.setter
    def gauss_next(self, value):
        if value is None:
            self._has_gauss_next = False
        else:
            self._gauss_next = value
            self._has_gauss_next = True

    # -- pickle and copy ---------------------------------------------------

    def __getstate__(self):  # for pickle
        return self.getstate()

    def __setstate__(self, state):  # for pickle
        self.setstate(state)

    def __reduce__(self):
        return self.__class__, (), self.getstate()

    # -- integers and sequences (Lib/random.py) ----------------------------

    def _randbelow(self, n):
        """Return a random int in the range [0,n).  Defined for n > 0."""
        if n <= 0:
            raise ValueError("_randbelow() is defined for n > 0 only")
        k = n.bit_length()
        if k <= 64:
            return _below(&self._state, n)
        r = self.getrandbits(k)  # 0 <= r < 2**k
        while r >= n:
            r = self.getrandbits(k)
        return r

    def randbytes(self, n):
        """Generate n random bytes."""
        return self.getrandbits(n * 8).to_bytes(n, 'little')

    def randrange(self, start, stop=None, step=_ONE):
        """Choose a random item from range(stop) or range(start, stop[, step]).

        Roughly equivalent to ``choice(range(start, stop, step))`` but
        supports arbitrarily large ranges and is optimized for common cases.
        """
        istart = _randrange_index(start, "arg 1")
        if stop is None:
            # We don't check for "step != 1" because it hasn't been
            # type checked and converted to an integer yet.
            if step is not _ONE:
                raise TypeError('Missing a non-None stop argument')
            if istart > 0:
                return self._randbelow(istart)
            raise ValueError("empty range for randrange()")

        # stop argument supplied.
        istop = _randrange_index(stop, "stop")
        width = istop - istart
        istep = _randrange_index(step, "step")
        # Fast path.
        if istep == 1:
            if width > 0:
                return istart + self._randbelow(width)
            if _LEGACY_RANDRANGE:
                raise ValueError("empty range for randrange() (%d, %d, %d)" % (istart, istop, width))
            raise ValueError(f"empty range in randrange({start}, {stop})")

        # Non-unit step argument supplied.
        if istep > 0:
            n = (width + istep - 1) // istep
        elif istep < 0:
            n = (width + istep + 1) // istep
        else:
            raise ValueError("zero step for randrange()")
        if n <= 0:
            if _LEGACY_RANDRANGE:
                raise ValueError("empty range for randrange()")
            raise ValueError(f"empty range in randrange({start}, {stop}, {step})")
        return istart + istep * self._randbelow(n)

    def randint(self, a, b):
        """Return random integer in range [a, b], including both end points."""
        return self.randrange(a, b+1)

    def choice(self, seq):
        """Choose a random element from a non-empty sequence."""
        # As an accommodation for NumPy, we don't use "if not seq"
        # because bool(numpy.array()) raises a ValueError.
        cdef Py_ssize_t n = len(seq)
        if not n:
            raise IndexError('Cannot choose from an empty sequence')
        return seq[<Py_ssize_t>_below(&self._state, n)]

    def shuffle(self, x):
        """Shuffle list x in place, and return None."""
        cdef Py_ssize_t i, j
        cdef list items
        if type(x) is list:
            # the same swaps on the list's items, with no Python calls between them
            items = x
            for i in range(len(items) - 1, 0, -1):
                # pick an element in x[:i+1] with which to exchange x[i]
                j = <Py_ssize_t>_below(&self._state, i + 1)
                items[i], items[j] = items[j], items[i]
            return
        for i in reversed(range(1, len(x))):
            j = <Py_ssize_t>_below(&self._state, i + 1)
            x[i], x[j] = x[j], x[i]

    def sample(self, population, k, *, counts=None):
        """Chooses k unique random elements from a population sequence.

        Returns a new list containing elements from the population while
        leaving the original population unchanged, in selection order, as
        ``random.sample`` does (counts= repeats elements).
        """
        if not isinstance(population, _Sequence):
            raise TypeError("Population must be a sequence.  "
                            "For dicts or sets, use sorted(d).")
        n = len(population)
        if counts is not None:
            cum_counts = list(_accumulate(counts))
            if len(cum_counts) != n:
                raise ValueError('The number of counts does not match the population')
            total = cum_counts.pop()
            if not isinstance(total, int):
                raise TypeError('Counts must be integers')
            if total <= 0:
                raise ValueError('Total of counts must be greater than zero')
            selections = self.sample(range(total), k=k)
            bisect = _bisect
            return [population[bisect(cum_counts, s)] for s in selections]
        randbelow = self._randbelow
        if not 0 <= k <= n:
            raise ValueError("Sample larger than population or is negative")
        result = [None] * k
        setsize = 21        # size of a small set minus size of an empty list
        if k > 5:
            setsize += 4 ** _ceil(_log(k * 3, 4))  # table size for big sets
        if n <= setsize:
            # An n-length list is smaller than a k-length set.
            # Invariant:  non-selected at pool[0 : n-i]
            pool = list(population)
            for i in range(k):
                j = randbelow(n - i)
                result[i] = pool[j]
                pool[j] = pool[n - i - 1]  # move non-selected item into vacancy
        else:
            selected = set()
            selected_add = selected.add
            for i in range(k):
                j = randbelow(n)
                while j in selected:
                    j = randbelow(n)
                selected_add(j)
                result[i] = population[j]
        return result

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        """Return a k sized list of population elements chosen with replacement.

        If the relative weights or cumulative weights are not specified,
        the selections are made with equal probability.
        """
        cdef Py_ssize_t i, count
        cdef double nf
        n = len(population)
        if cum_weights is None:
            if weights is None:
                nf = n          # n += 0.0, as CPython does
                count = _count(k)
                return [population[<Py_ssize_t>floor(mt19937_next_double(&self._state) * nf)]
                        for i in range(count)]
            if _all_floats(weights):
                return self._choices_float(population, n, weights, False, k)
            try:
                cum_weights = list(_accumulate(weights))
            except TypeError:
                if not isinstance(weights, int):
                    raise
                k = weights
                raise TypeError(
                    f'The number of choices must be a keyword argument: {k=}'
                ) from None
        elif weights is not None:
            raise TypeError('Cannot specify both weights and cumulative weights')
        elif _all_floats(cum_weights):
            return self._choices_float(population, n, cum_weights, True, k)
        if len(cum_weights) != n:
            raise ValueError('The number of weights does not match the population')
        total = cum_weights[-1] + 0.0   # convert to float
        if total <= 0.0:
            raise ValueError('Total of weights must be greater than zero')
        if not _isfinite(total):
            raise ValueError('Total of weights must be finite')
        random = self.random
        bisect = _bisect
        hi = n - 1
        return [population[bisect(cum_weights, random() * total, 0, hi)]
                for _ in _repeat(None, k)]

    cdef list _choices_float(self, population, Py_ssize_t n, weights, bint cumulative, k):
        """choices() when every weight is a float: the running sums, the
        checks and bisect_right as CPython computes them, on C doubles."""
        cdef Py_ssize_t i, lo, hi, mid, count, m = len(weights)
        cdef double total, x, running = 0.0
        cdef double *cum
        if m != n:
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

    # -- real-valued distributions -----------------------------------------

    def uniform(self, a, b):
        "Get a random number in the range [a, b) or [a, b] depending on rounding."
        return a + (b - a) * self.random()

    def gauss(self, mu=0.0, sigma=1.0):
        """Gaussian distribution, as random.gauss: mu is the mean, and sigma
        is the standard deviation. Values come in pairs; the second is kept
        for the next call (and in getstate())."""
        cdef double z = self._gauss()
        if _is_float_or_int(mu) and _is_float_or_int(sigma):
            return <double>mu + z * <double>sigma   # what Python computes for these types
        return mu + z * sigma

    cdef double _gauss(self) noexcept:
        # When x and y are two variables from [0, 1), uniformly
        # distributed, then
        #
        #    cos(2*pi*x)*sqrt(-2*log(1-y))
        #    sin(2*pi*x)*sqrt(-2*log(1-y))
        #
        # are two *independent* variables with normal distribution
        # (mu = 0, sigma = 1).  (Lambert Meertens)
        cdef double x2pi, g2rad, z
        if self._has_gauss_next:
            self._has_gauss_next = False
            return self._gauss_next
        x2pi = mt19937_next_double(&self._state) * TWOPI
        g2rad = sqrt(-2.0 * log(1.0 - mt19937_next_double(&self._state)))
        z = cos(x2pi) * g2rad
        self._gauss_next = sin(x2pi) * g2rad
        self._has_gauss_next = True
        return z

    # -- bulk draws --------------------------------------------------------

    def random_array(self, n):
        """A float64 numpy array of the next n random() values."""
        cdef Py_ssize_t i, count = _count_array(n)
        cdef double[::1] view
        import numpy
        out = numpy.empty(count, dtype=numpy.float64)
        view = out
        for i in range(count):
            view[i] = mt19937_next_double(&self._state)
        return out

    def gauss_array(self, n, mu=0.0, sigma=1.0):
        """A float64 numpy array of the next n gauss(mu, sigma) values."""
        cdef Py_ssize_t count = _count_array(n)
        import numpy
        out = numpy.empty(count, dtype=numpy.float64)
        self.gauss_into(out, mu, sigma)
        return out

    def gauss_into(self, out, mu=0.0, sigma=1.0):
        """Fill out, a writable contiguous buffer of doubles (a memoryview, a
        numpy array), with the next len(out) gauss(mu, sigma) values."""
        cdef double[::1] view = out
        cdef double m = mu, s = sigma
        cdef Py_ssize_t i
        for i in range(view.shape[0]):
            view[i] = m + self._gauss() * s


cdef object _randrange_index(object value, str what):
    """operator.index(value), or, before Python 3.12, an integral float with a warning."""
    if not _LEGACY_RANDRANGE:
        return _index(value)
    try:
        return _index(value)
    except TypeError:
        ivalue = int(value)
        if ivalue != value:
            _warn('randrange() will raise TypeError in the future',
                  DeprecationWarning, 1)  # Cython adds no frames: 1 is the caller
            raise ValueError(f"non-integer {what} for randrange()")
        _warn('non-integer arguments to randrange() have been deprecated '
              'since Python 3.10 and will be removed in a subsequent '
              'version',
              DeprecationWarning, 1)  # Cython adds no frames: 1 is the caller
        return ivalue


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
    cdef Py_ssize_t count = _index(k)
    return count if count > 0 else 0


cdef Py_ssize_t _count_array(object n) except -1:
    cdef Py_ssize_t count = _index(n)
    if count < 0:
        raise ValueError(f"n must be non-negative, not {count}")
    return count
