"""
The scalar autograd engine in pure Python: microgpt.py's Value.

This is the reference that the compiled ``microgpt._engine.Value`` is tested
against, and what ``microgpt.Value`` is when ``MICROGPT_PUREPYTHON=1``. It
follows microgpt.py line for line, with three differences a user can see:

- ``data`` and ``grad`` start as floats (microgpt.py keeps an int where you
  pass one; the numbers, and what they print as floats, are the same), and
  the operators only make floats;
- ``backward()`` walks the graph with an explicit stack, so a graph of any
  depth works (microgpt.py recurses, and stops at Python's recursion limit);
- a negative number to a fractional power raises ValueError (Python would
  return a complex number, which no later operation could use).
"""
import math


class Value:
    """A scalar in a computation graph, with its gradient.

    >>> a = Value(2.0); b = a * a + a
    >>> b.backward(); a.grad
    5.0
    """
    __slots__ = ('data', 'grad', '_children', '_local_grads')

    def __init__(self, data, children=(), local_grads=()):
        self.data = data if type(data) is float else _number(data)  # scalar value of this node
        self.grad = 0.0                 # derivative of the loss w.r.t. this node
        self._children = children       # children of this node in the graph
        self._local_grads = local_grads # local derivative of this node w.r.t. its children

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other):
        if not isinstance(other, (int, float)):
            return NotImplemented
        return Value(_pow(self.data, other), (self,), (other * _pow(self.data, other - 1),))

    def log(self): return Value(math.log(self.data), (self,), (1 / self.data,))
    def exp(self): return Value(math.exp(self.data), (self,), (math.exp(self.data),))
    def relu(self): return Value(max(0, self.data), (self,), (float(self.data > 0),))
    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return other + (-self)
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * other**-1
    def __rtruediv__(self, other): return other * self**-1

    def backward(self):
        # topological order: the post-order of a depth-first search from self,
        # children in order, each node once; microgpt.py's recursive build_topo
        # with the recursion replaced by a stack of child iterators
        topo = []
        visited = {self}
        stack = [(self, iter(self._children))]
        while stack:
            v, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._children)))
                    break
            else:
                stack.pop()
                topo.append(v)
        self.grad = 1.0
        for v in reversed(topo):
            for child, local_grad in zip(v._children, v._local_grads):
                child.grad += local_grad * v.grad

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def _number(x):
    """An int or float operand as a float; anything else is a TypeError."""
    if not isinstance(x, (int, float)):
        raise TypeError(f"Value data must be an int or a float, not {type(x).__name__}")
    return float(x)


def _pow(x, y):
    """x ** y as Python computes it, refusing a complex result."""
    result = x ** y
    if isinstance(result, complex):
        raise ValueError("negative number cannot be raised to a fractional power "
                         "(Python would return a complex number)")
    return result
