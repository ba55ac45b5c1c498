"""The compiled modules document themselves: help() on an operator, method or
function shows its signature (setup.py's embedsignature) and what it does."""
import inspect

import pytest

from microgpt import _engine, _fused, _random

OPERATORS = {
    "__add__": "self + other", "__radd__": "other + self",
    "__sub__": "self + (-other)", "__rsub__": "other + (-self)",
    "__mul__": "self * other", "__rmul__": "other * self",
    "__truediv__": "self * other**-1", "__rtruediv__": "other * self**-1",
    "__neg__": "self * -1", "__pow__": "self ** other",
}


def _signature_and_text(doc):
    """The first line of a docstring and the text after it."""
    assert doc, "no docstring"
    first, _, rest = doc.partition("\n")
    return first, rest.strip()


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_value_operators_say_what_they_compute(name):
    first, text = _signature_and_text(getattr(_engine.Value, name).__doc__)
    assert first.startswith(f"Value.{name}(self")
    assert text.startswith(OPERATORS[name])


@pytest.mark.parametrize("name", ["log", "exp", "relu", "backward", "__repr__"])
def test_value_methods_have_docstrings(name):
    first, text = _signature_and_text(getattr(_engine.Value, name).__doc__)
    assert first == f"Value.{name}(self)"
    assert text


def _documented(module):
    """The public functions of module, and the methods of its public classes."""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            yield obj.__name__, obj
            for attr, member in sorted(vars(obj).items()):
                if callable(member) and not attr.startswith("__"):
                    yield f"{obj.__name__}.{attr}", member
        elif callable(obj):
            yield name, obj


@pytest.mark.parametrize("module", [_random, _fused], ids=lambda m: m.__name__)
def test_public_names_have_signatures_and_docstrings(module):
    names = list(_documented(module))
    assert len(names) > 5
    for qualname, obj in names:
        if inspect.isclass(obj):                # no signature embedded: the text says it
            assert obj.__doc__, qualname
            continue
        first, text = _signature_and_text(obj.__doc__)
        assert first.startswith(f"{qualname}("), qualname
        assert text, f"{qualname} has a signature but no description"
