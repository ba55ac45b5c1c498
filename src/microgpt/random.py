"""
A drop-in for the standard library's ``random`` module.

``from microgpt import random`` in place of ``import random`` changes no
result: every draw equals CPython's bit for bit, for every seed, and states
pass both ways between ``random.Random`` and ``microgpt.random.Random``.
Underneath is the compiled MT19937 generator (``microgpt._random``), or the
standard library's own when ``MICROGPT_PUREPYTHON=1``.

Beyond the standard API, ``random_array(n)`` and ``gauss_array(n, mu, sigma)``
return n successive ``random()`` or ``gauss()`` draws as a float64 numpy array,
and ``gauss_into(out, mu, sigma)`` writes them into a buffer of doubles.
"""
from operator import index as _index

from ._backend import PUREPYTHON, compiled

__all__ = ["Random", "seed", "random", "getrandbits", "randbytes", "randrange",
           "randint", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
           "getstate", "setstate", "random_array", "gauss_array", "gauss_into"]


def _python_random():
    """The pure-Python backend's Random: the standard library's generator,
    with microgpt's bulk draws added. (Made on first use: the compiled
    backend does not import the standard library's random at all.)"""
    import random as _stdlib

    class PythonRandom(_stdlib.Random):
        __doc__ = _python_random.__doc__

        def random_array(self, n):
            """A float64 numpy array of the next n random() values."""
            import numpy
            return numpy.array([self.random() for _ in range(_count(n))], dtype=numpy.float64)

        def gauss_array(self, n, mu=0.0, sigma=1.0):
            """A float64 numpy array of the next n gauss(mu, sigma) values."""
            import numpy
            mu, sigma = float(mu), float(sigma)
            return numpy.array([self.gauss(mu, sigma) for _ in range(_count(n))],
                               dtype=numpy.float64)

        def gauss_into(self, out, mu=0.0, sigma=1.0):
            """Fill out, a writable contiguous buffer of doubles (a memoryview, a
            numpy array), with the next len(out) gauss(mu, sigma) values."""
            view = memoryview(out)
            if view.format not in ("d", "=d", "<d") or not view.c_contiguous:
                raise ValueError(f"gauss_into needs a contiguous buffer of doubles, not {view.format!r}")
            view = view.cast("B").cast("d")
            mu, sigma = float(mu), float(sigma)
            for i in range(len(view)):
                view[i] = self.gauss(mu, sigma)

    PythonRandom.__module__, PythonRandom.__qualname__ = __name__, "PythonRandom"
    return PythonRandom


def _count(n):
    n = _index(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, not {n}")
    return n


def __getattr__(name):          # PythonRandom, made when first asked for
    global PythonRandom
    if name == "PythonRandom":
        PythonRandom = _python_random()
        return PythonRandom
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Random = __getattr__("PythonRandom") if PUREPYTHON else compiled("_random").Random

# One hidden instance, seeded from the operating system, whose methods are
# the module's functions, as in the standard library.
_inst = Random()
seed = _inst.seed
random = _inst.random
getrandbits = _inst.getrandbits
randbytes = _inst.randbytes
randrange = _inst.randrange
randint = _inst.randint
choice = _inst.choice
choices = _inst.choices
shuffle = _inst.shuffle
sample = _inst.sample
uniform = _inst.uniform
gauss = _inst.gauss
getstate = _inst.getstate
setstate = _inst.setstate
random_array = _inst.random_array
gauss_array = _inst.gauss_array
gauss_into = _inst.gauss_into
