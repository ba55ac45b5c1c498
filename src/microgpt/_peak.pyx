"""A probe of this CPU's peak rate of double-precision multiplies and adds.

``mul_add_rate(isa, iterations)`` runs the probe of csrc/peak.c: per
iteration, twelve independent sums a_i = a_i + x_i * m, as a dot product
does, as separate multiplies and adds (never fused: the build's
-ffp-contract=off, what microgpt's kernels use), in registers of the given
instruction set. It returns the floating-point operations done (a multiply
and an add count one each) and the seconds they took::

    >>> from microgpt import _peak
    >>> flops, seconds = _peak.mul_add_rate("portable", 1_000_000)
    >>> flops
    24000000
    >>> gflops = flops / seconds / 1e9

``supported_isas()`` names the instruction sets this build and CPU can run.
One call runs on one core with the GIL released; a benchmark times a few
calls of tens of milliseconds each (``microgpt.benchmark``).
"""
from libc.stdint cimport uint64_t

from operator import index as _index
from time import perf_counter as _perf_counter

cdef extern from "peak.h":
    enum:
        PEAK_ACCUMULATORS
        PEAK_PORTABLE
        PEAK_AVX2
        PEAK_AVX512
    int peak_supported(int isa) noexcept nogil
    int peak_lanes(int isa) noexcept nogil
    void peak_mul_add(int isa, uint64_t iterations) noexcept nogil

ISAS = ("portable", "avx2", "avx512")    # plain C doubles; 256-bit and 512-bit registers
ACCUMULATORS = PEAK_ACCUMULATORS         # independent sums updated per iteration
MAX_ITERATIONS = 2 ** 32                 # seconds to minutes: a call cannot be interrupted
cdef dict _CODES = {"portable": PEAK_PORTABLE, "avx2": PEAK_AVX2, "avx512": PEAK_AVX512}


def supported_isas():
    """The instruction sets of ISAS that this build and this CPU can run the
    probe with, in ISAS's order: "portable" always; "avx2" and "avx512" on
    x86-64 built with GCC or clang, when the CPU (and the OS) support them."""
    return tuple(isa for isa in ISAS if peak_supported(_CODES[isa]))


def mul_add_rate(isa, iterations):
    """Run `iterations` iterations of the probe with the instruction set isa
    (one of supported_isas()) and return (flops, seconds): the operations
    done, an int, and the time they took. flops / seconds is the rate.

    A str that names no instruction set, or one this CPU or build cannot
    run, is a ValueError, any other isa a TypeError; iterations is an int
    (or has __index__) from 0 to MAX_ITERATIONS, else a TypeError or a
    ValueError."""
    cdef int code = _code(isa)
    if not peak_supported(code):
        raise ValueError(f"this CPU or build cannot run {isa!r}; it runs {supported_isas()}")
    n = _index(iterations)
    if not 0 <= n <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be from 0 to {MAX_ITERATIONS}, not {n}")
    cdef uint64_t count = n
    start = _perf_counter()
    with nogil:
        peak_mul_add(code, count)
    seconds = _perf_counter() - start
    return n * 2 * PEAK_ACCUMULATORS * peak_lanes(code), seconds


cdef int _code(isa) except -1:
    if not isinstance(isa, str):
        raise TypeError(f"isa must be a str, one of {ISAS}, not {type(isa).__name__}")
    code = _CODES.get(isa)
    if code is None:
        raise ValueError(f"unknown isa {isa!r}: one of {ISAS}")
    return code
