"""
A drop-in for the standard library's ``random`` module.

``from microgpt import random`` in place of ``import random`` changes no
result: every public name of the standard module is here, every draw equals
CPython's bit for bit, for every seed, and states pass both ways between
``random.Random`` and ``microgpt.random.Random``.

``Random`` is a subclass of ``random.Random`` whose core is the compiled
MT19937 generator (``microgpt._random.Generator``): seeding, ``random()``,
``getrandbits()`` and the state, and, as C loops, ``gauss``, ``shuffle``,
``choices`` and the bulk draws. Every other method is the standard library's
own, running on that core. A subclass (or an instance) that brings its own
``random()``, ``getrandbits()`` or ``_randbelow()`` is honoured by all the
methods, as in the standard library. With ``MICROGPT_PUREPYTHON=1``,
``Random`` is the standard library's generator itself (``PythonRandom``).

Beyond the standard API, ``random_array(n)`` and ``gauss_array(n, mu, sigma)``
return n successive ``random()`` or ``gauss()`` draws as a float64 numpy array,
and ``gauss_into(out, mu, sigma)`` writes them into a buffer of doubles.
"""
import os as _os
import random as _stdlib
from operator import index as _index
from random import (BPF, LOG4, NV_MAGICCONST, RECIP_BPF, SG_MAGICCONST, TWOPI,  # noqa: F401
                    SystemRandom)
from sys import byteorder as _byteorder

from ._backend import PUREPYTHON, compiled

__all__ = _stdlib.__all__ + ["random_array", "gauss_array", "gauss_into"]


class PythonRandom(_stdlib.Random):
    """The standard library's generator with microgpt's bulk draws, in
    Python: ``Random`` under ``MICROGPT_PUREPYTHON=1``, and the bulk draws of
    any ``Random`` that brings its own ``random()``."""

    def random_array(self, n):
        """A float64 numpy array of the next n random() values."""
        import numpy
        count = _count(n)
        return numpy.fromiter(iter(self.random, None), numpy.float64, count)

    def gauss_array(self, n, mu=0.0, sigma=1.0):
        """A float64 numpy array of the next n gauss(mu, sigma) values."""
        import numpy
        count, mu, sigma = _count(n), _double(mu), _double(sigma)
        out = numpy.empty(count, dtype=numpy.float64)
        self.gauss_into(out, mu, sigma)
        return out

    def gauss_into(self, out, mu=0.0, sigma=1.0):
        """Fill out, a writable C-contiguous buffer of doubles (a numpy array,
        a memoryview), with the next gauss(mu, sigma) values, one per double."""
        view = _double_buffer(out)
        mu, sigma = _double(mu), _double(sigma)
        gauss = self.gauss
        for i in range(len(view)):
            view[i] = gauss(mu, sigma)


_DOUBLE_FORMATS = ("d", "@d", "=d", "<d" if _byteorder == "little" else ">d")


def _double_buffer(out):
    """out as a flat memoryview of doubles, if it is a writable C-contiguous
    buffer of them; TypeError otherwise (None, read-only, strided, float32).
    The same checks as in microgpt._random: the pure-Python backend has no compiled module."""
    view = memoryview(out)
    if view.readonly:
        raise TypeError("gauss_into needs a writable buffer, not a read-only one")
    if not view.c_contiguous:
        raise TypeError("gauss_into needs a C-contiguous buffer")
    if view.itemsize != 8 or view.format not in _DOUBLE_FORMATS:
        raise TypeError(f"gauss_into needs a buffer of doubles, not of format {view.format!r}")
    return view.cast("B").cast("d")


def _double(x):
    """x as the compiled generator takes a C double: float(x), strings refused."""
    if isinstance(x, (str, bytes, bytearray)):
        raise TypeError(f"must be real number, not {type(x).__name__}")
    return float(x)


def _count(n):
    n = _index(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, not {n}")
    return n


if PUREPYTHON:
    Random = PythonRandom
else:
    _random = compiled("_random")

    class Random(PythonRandom):
        """Random number generator: ``random.Random`` on the compiled MT19937
        core, with the same results, bit for bit.

        >>> import random as stdlib
        >>> Random(42).gauss(0, 1) == stdlib.Random(42).gauss(0, 1)
        True
        """

        __slots__ = ("_generator",)

        def __new__(cls, *args, **kwargs):
            # here rather than in __init__, so that a subclass skipping __init__ has a core too
            self = super().__new__(cls, *args, **kwargs)
            self._generator = _random.Generator()
            self._generator.own_core = cls._own_core
            return self

        # The core, where random.Random has _random.Random's C methods.
        seed = _random.seed
        random = _random.random
        getrandbits = _random.getrandbits
        getstate = _random.getstate
        setstate = _random.setstate

        # Lib/random.py's algorithms as C loops on the core; on a subclass with
        # a core of its own, the standard library's (see __init_subclass__).
        _randbelow = _random._randbelow     # in the class dict, so that the stdlib's subclasses inherit it
        gauss = _random.gauss
        shuffle = _random.shuffle
        choices = _random.choices
        random_array = _random.random_array
        gauss_array = _random.gauss_array
        gauss_into = _random.gauss_into

        @property
        def gauss_next(self):
            """The second value of the last gauss() pair, or None."""
            return self._generator.gauss_next

        @gauss_next.setter
        def gauss_next(self, value):
            self._generator.gauss_next = value

        # A subclass or an instance with its own random(), getrandbits() or
        # _randbelow() draws through them everywhere, as in the standard
        # library: on it, the C loops (gauss, shuffle, choices, _randbelow,
        # the bulk draws) give way to Lib/random.py's algorithms and
        # PythonRandom's bulk draws. Its generator's own_core says so.
        _own_core = False

        def __init_subclass__(cls, /, **kwargs):
            own = set()
            for c in cls.__mro__:
                if c is Random:
                    break
                own.update(c.__dict__)
            cls._own_core = not own.isdisjoint(_CORE)
            super().__init_subclass__(**kwargs)

        def __setattr__(self, name, value):
            super().__setattr__(name, value)
            if name in _CORE or name == "__class__":
                _note_core(self)

        def __delattr__(self, name):
            super().__delattr__(name)
            if name in _CORE:
                _note_core(self)

    def _note_core(self):      # after an instance gained or lost a core of its own
        self._generator.own_core = type(self)._own_core or not _CORE.isdisjoint(vars(self))

    _CORE = frozenset(["random", "getrandbits", "_randbelow"])

    _random.set_random_class(Random)


# One hidden instance, whose methods are the module's functions, as in the
# standard library; those the compiled generator implements whole are bound
# to it directly, at C speed.
_inst = Random()
_core = _inst if PUREPYTHON else _inst._generator
seed = _core.seed
random = _core.random
uniform = _inst.uniform
triangular = _inst.triangular
randint = _inst.randint
choice = _inst.choice
randrange = _inst.randrange
sample = _inst.sample
shuffle = _core.shuffle
choices = _inst.choices
normalvariate = _inst.normalvariate
lognormvariate = _inst.lognormvariate
expovariate = _inst.expovariate
vonmisesvariate = _inst.vonmisesvariate
gammavariate = _inst.gammavariate
gauss = _core.gauss
betavariate = _inst.betavariate
paretovariate = _inst.paretovariate
weibullvariate = _inst.weibullvariate
getstate = _core.getstate
setstate = _core.setstate
getrandbits = _core.getrandbits
randbytes = _inst.randbytes
if hasattr(_stdlib, "binomialvariate"):     # Python 3.12+
    binomialvariate = _inst.binomialvariate
random_array = _core.random_array
gauss_array = _core.gauss_array
gauss_into = _core.gauss_into

if hasattr(_os, "fork"):
    # a forked child must not repeat its parent's draws (as the standard library's)
    _os.register_at_fork(after_in_child=_inst.seed)
