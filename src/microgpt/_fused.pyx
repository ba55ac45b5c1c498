"""The fused operations of the fast path: matrices of float64 in an autograd graph.

A ``Tensor`` is a row-major matrix of doubles (row t of an activation is
position t) that remembers the operation that made it. Each operation
(``embedding``, ``add``, ``linear``, ``rmsnorm``, ``relu``, ``relu_squared``,
``softmax``, ``attention``, ``cross_entropy``) is one node whose forward and
backward passes are C loops (csrc/fused.c). Forward results equal
microgpt.py's scalar Values bit for bit, and so do the gradients: the backward
passes add them up in the order microgpt.py's backward() does, for models
built like microgpt.py's GPT (see fused.c). ``Parameters`` keeps every
parameter in one contiguous array and ``Adam`` updates it in one loop.

Whatever Python code passes in, these give a Python exception or the right
answer: every object is whole from the moment it exists (made in
``__cinit__``; ``__init__`` changes nothing), arguments are checked before
use, sequences are copied once into memory of ours before they are read, and
every size is checked for overflow before memory is allocated for it.

The module is this file and the parts it includes: _fused_memory.pxi (the
tensors' memory), _fused_tensor.pxi (Tensor), _fused_graph.pxi (the backward
pass), _fused_ops.pxi (the operations) and _fused_parameters.pxi (Parameters
and Adam); _cfused.pxd declares the C they call.
"""
cimport cython
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.math cimport sqrt
from libc.string cimport memcpy, memset

from microgpt._pyfloat cimport PYFLOAT_OK, pyfloat_pow, raise_for

from operator import index as _index

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    Py_ssize_t PyNumber_AsSsize_t(object o, object exc) except? -1

cdef extern from "Python.h":
    int PyTraceMalloc_Track(unsigned int domain, size_t ptr, size_t size)
    int PyTraceMalloc_Untrack(unsigned int domain, size_t ptr)

from microgpt._cfused cimport *


def kernel_isa():
    """The instruction set the kernels run with on this CPU: "avx512", "avx2",
    "portable" (vectors of two doubles: NEON on ARM, SSE3 on x86-64) or "plain"
    (C loops: what a compiler without vector extensions builds, and what an
    x86-64 CPU without SSE3 runs). MICROGPT_KERNELS=avx2,
    =portable or =plain in the environment caps it."""
    return fused_kernel_isa().decode()


def set_threads(n):
    """Run the kernels whose outputs split into independent parts (the
    linear layers, attention and Adam of big models) on n threads, this one
    included; returns how many are in use (fewer if the system would not
    start more). Each output is still computed by one thread, in the same
    order: the results are the same for any n. The default is 1."""
    n = _index(n)
    if not 1 <= n <= 256:
        raise ValueError(f"threads must be from 1 to 256, not {n}")
    return fused_set_threads(n)


def threads():
    """The number of threads the kernels use (set_threads)."""
    return fused_threads()


cdef enum Op:
    LEAF            # an input or a parameter
    EMBEDDING
    ADD
    LINEAR
    RMSNORM
    RELU
    RELU_SQUARED
    SOFTMAX
    ATTENTION
    CROSS_ENTROPY


cdef inline int _check(int status) except -1:
    """Raise what the scalar operation would have raised."""
    return 0 if status == PYFLOAT_OK else raise_for(status)


cdef Py_ssize_t _product(Py_ssize_t a, Py_ssize_t b) except -1:
    """a * b for sizes a, b >= 0, refused if it does not fit in a Py_ssize_t."""
    if b and a > PY_SSIZE_T_MAX // b:
        raise MemoryError(f"{a} x {b} is too large")
    return a * b


include "_fused_memory.pxi"
include "_fused_tensor.pxi"
include "_fused_graph.pxi"
include "_fused_ops.pxi"
include "_fused_parameters.pxi"
