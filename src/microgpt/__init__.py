"""
microgpt: Karpathy's microgpt.py as a package, exact and fast.

``from microgpt import Value, random`` in a script written like microgpt.py,
in place of its own ``class Value`` and ``import random``, prints the same
bytes, faster: ``Value`` is the scalar autograd node of microgpt.py compiled
to C, and ``random`` a drop-in for the standard library module whose draws
equal CPython's bit for bit.

``BACKEND`` says which implementation is in use: ``"compiled"``, or
``"python"`` when the environment sets ``MICROGPT_PUREPYTHON=1``.
"""
from ._backend import BACKEND, PUREPYTHON, compiled

if PUREPYTHON:
    from .engine import Value
else:
    Value = compiled("_engine").Value

from . import random  # noqa: E402  (after Value: random needs nothing from it)

__version__ = "0.1.0"
__all__ = ["Value", "random", "BACKEND", "__version__"]
