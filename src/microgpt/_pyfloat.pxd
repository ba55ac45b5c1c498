# The contract of csrc/pyfloat.h, shared by the compiled modules: Python's
# float operations in C, and the exceptions Python raises where they fail.
from libc.errno cimport ERANGE
from libc.string cimport strerror

cdef extern from "pyfloat.h":
    enum:
        PYFLOAT_OK
        PYFLOAT_ZERO_DIVISION
        PYFLOAT_OVERFLOW
        PYFLOAT_DOMAIN
        PYFLOAT_COMPLEX
    int pyfloat_pow(double x, double y, double *out) noexcept nogil
    int pyfloat_log(double x, double *out) noexcept nogil
    int pyfloat_exp(double x, double *out) noexcept nogil


cdef inline int raise_for(int status, bint exp=False) except -1:
    """Raise what Python raises for a float operation that failed with
    status (exp: it was math.exp, whose overflow message differs)."""
    if status == PYFLOAT_ZERO_DIVISION:
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if status == PYFLOAT_OVERFLOW:
        if exp:
            raise OverflowError("math range error")
        raise OverflowError(ERANGE, strerror(ERANGE).decode())
    if status == PYFLOAT_COMPLEX:
        raise ValueError("negative number cannot be raised to a fractional power "
                         "(Python would return a complex number)")
    raise ValueError("math domain error")
