"""
microgpt: Karpathy's microgpt.py as a package, exact and fast.

``from microgpt import Value, random`` in a script written like microgpt.py,
in place of its own ``class Value`` and ``import random``, prints the same
bytes, faster: ``Value`` is the scalar autograd node of microgpt.py compiled
to C, and ``random`` a drop-in for the standard library module whose draws
equal CPython's bit for bit.

``Run``, ``load`` and ``resume`` train, keep and sample a model from Python
(microgpt.run): what microgpt-train and microgpt-sample do.

``BACKEND`` says which implementation is in use: ``"compiled"``, or
``"python"`` when the environment sets ``MICROGPT_PUREPYTHON=1`` or the
interpreter is not CPython (the compiled core is for CPython only).
"""
from ._backend import BACKEND, PUREPYTHON, compiled

__version__ = "0.1.0"
__all__ = ["Value", "random", "Run", "Model", "load", "resume", "BACKEND", "__version__"]
_RUN = ("Run", "Model", "load", "resume")       # from microgpt.run

TYPE_CHECKING = False   # True for type checkers only; typing itself costs start-up 6 ms
if TYPE_CHECKING:
    # the names __getattr__ loads, which type checkers do not see: a typo is an error, not an Any
    from . import random
    from ._engine import Value
    from .run import Model, Run, load, resume
else:
    def __getattr__(name):
        """Value and random, loaded on first use (PEP 562): importing microgpt
        loads no compiled module, so microgpt-train's start-up stays short and
        a Ctrl-C during it reaches main(), which answers it in one line."""
        if name == "Value":
            if PUREPYTHON:
                from .engine import Value
            else:
                Value = compiled("_engine").Value
            globals()["Value"] = Value
            return Value
        if name in _RUN:
            from . import run
            globals().update({key: getattr(run, key) for key in _RUN})
            return globals()[name]
        if name == "random":
            __import__(f"{__name__}.random")    # the import system sets microgpt.random
            return globals()["random"]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
del TYPE_CHECKING       # not part of the package's namespace (see __dir__)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
