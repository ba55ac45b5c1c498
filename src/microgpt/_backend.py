"""Which implementation backs microgpt: the compiled core or pure Python.

``MICROGPT_PUREPYTHON=1`` selects the pure-Python modules (the readable
reference, and the oracle in tests), as ``MSGPACK_PUREPYTHON`` does for
msgpack. Otherwise the compiled modules must be importable: a missing build
is an error, not a silent switch to a path 80 times slower.

The compiled core is for CPython only: its C reads CPython's objects
directly (a ``__slots__`` member's offset in an instance, tuple items), which
an emulation of CPython's C API, as PyPy's, cannot serve. On any other
interpreter microgpt runs the pure-Python backend, and says so in one line
(a RuntimeWarning) unless ``MICROGPT_PUREPYTHON=1`` asked for it.
"""
import os
import sys

# sys.implementation, not the platform module, which costs microgpt-train's start-up 20 ms
IMPLEMENTATION = sys.implementation.name
CPYTHON = IMPLEMENTATION == "cpython"
PUREPYTHON = os.environ.get("MICROGPT_PUREPYTHON", "") not in ("", "0")
if not CPYTHON and not PUREPYTHON:
    import warnings
    PUREPYTHON = True
    # warn_explicit, at no line of a file: the warning is the one line, without a source line
    warnings.warn_explicit(
        f"microgpt's compiled core runs on CPython only; on {IMPLEMENTATION}, microgpt "
        "runs its pure-Python backend (MICROGPT_PUREPYTHON=1 says so, without this warning)",
        RuntimeWarning, "microgpt", 0, module="microgpt")
BACKEND = "python" if PUREPYTHON else "compiled"


def compiled(name):
    """Import the compiled module microgpt.<name>, explaining a missing build."""
    if not CPYTHON:
        raise ImportError(f"microgpt's compiled core runs on CPython only, not on "
                          f"{IMPLEMENTATION}: microgpt.{name} is not available here")
    try:
        return __import__(f"microgpt.{name}", fromlist=["*"])
    except ImportError as exc:
        raise ImportError(
            f"microgpt's compiled core is not built ({exc}); install the package with "
            "'pip install .', or set MICROGPT_PUREPYTHON=1 to use the pure-Python backend"
        ) from exc
