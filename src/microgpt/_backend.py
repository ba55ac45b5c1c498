"""Which implementation backs microgpt: the compiled core or pure Python.

``MICROGPT_PUREPYTHON=1`` selects the pure-Python modules (the readable
reference, and the oracle in tests), as ``MSGPACK_PUREPYTHON`` does for
msgpack. Otherwise the compiled modules must be importable: a missing build
is an error, not a silent switch to a path 80 times slower.
"""
import os

PUREPYTHON = os.environ.get("MICROGPT_PUREPYTHON", "") not in ("", "0")
BACKEND = "python" if PUREPYTHON else "compiled"


def compiled(name):
    """Import the compiled module microgpt.<name>, explaining a missing build."""
    try:
        return __import__(f"microgpt.{name}", fromlist=["*"])
    except ImportError as exc:
        raise ImportError(
            f"microgpt's compiled core is not built ({exc}); install the package with "
            "'pip install .', or set MICROGPT_PUREPYTHON=1 to use the pure-Python backend"
        ) from exc
