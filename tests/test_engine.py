"""microgpt.Value against the pure-Python reference, microgpt.engine.Value.

The reference follows microgpt.py line for line; the compiled Value must
produce the same data and gradients, compared by their bits, on the same
programs, and fail where it fails.
"""
import gc
import math
import os

import pytest
from hypothesis import given, strategies as st

import microgpt
from microgpt import Value
from microgpt.engine import Value as Reference

BACKENDS = [Value, Reference] if Value is not Reference else [Value]


def bits(x):
    assert type(x) is float, x
    return x.hex()


# -- random expression graphs, both engines ----------------------------------

# 1.037195981225262 ** -1 != 1 / 1.037195981225262: a division by it shows whether it is x * c ** -1
CONSTANTS = [0, 1, 2, -1, 3, 0.5, -0.25, 1e-3, 7.0, -2.5, 1e10, 1.037195981225262]
EXPONENTS = [2, 3, -1, -2, 0, 1, 0.5, -0.5, 1.5, 2.0, 0.25]
UNARY = ["neg", "log", "exp", "relu", "pow"]
BINARY = ["add", "sub", "mul", "div"]
WITH_CONSTANT = ["add_c", "sub_c", "mul_c", "div_c", "c_add", "c_sub", "c_mul", "c_div"]


def apply(op, a, b, c, e):
    return {
        "neg": lambda: -a, "log": lambda: a.log(), "exp": lambda: a.exp(),
        "relu": lambda: a.relu(), "pow": lambda: a ** e,
        "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
        "add_c": lambda: a + c, "sub_c": lambda: a - c, "mul_c": lambda: a * c, "div_c": lambda: a / c,
        "c_add": lambda: c + a, "c_sub": lambda: c - a, "c_mul": lambda: c * a, "c_div": lambda: c / a,
        "sum": lambda: sum([a, b, a]),
    }[op]()


def run(engine, leaves, steps):
    """Build the graph, backward from the last node; every node's data and
    grad, or the type of the first exception."""
    nodes = [engine(x) for x in leaves]
    try:
        for op, i, j, c, e in steps:
            nodes.append(apply(op, nodes[i % len(nodes)], nodes[j % len(nodes)], c, e))
        nodes[-1].backward()
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        return type(exc)
    seen, stack, everything = set(), list(nodes), []
    while stack:    # the constants the operations created, too
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            everything.append(v)
            stack.extend(v._children)
    return ([(bits(v.data), bits(v.grad)) for v in nodes],
            sorted((bits(v.data), bits(v.grad)) for v in everything))


steps = st.tuples(st.sampled_from(UNARY + BINARY + WITH_CONSTANT + ["sum"]),
                  st.integers(0, 1000), st.integers(0, 1000),
                  st.sampled_from(CONSTANTS), st.sampled_from(EXPONENTS))
leaves = st.lists(st.one_of(st.floats(-4, 4, allow_nan=False), st.integers(-3, 3)),
                  min_size=1, max_size=4)


@given(leaves=leaves, steps=st.lists(steps, min_size=1, max_size=40))
def test_random_graphs_equal_reference(leaves, steps):
    assert run(Value, leaves, steps) == run(Reference, leaves, steps)


def test_gradients_accumulate_in_microgpt_order():
    # a sum over many paths: the order of accumulation shows in the last bits
    xs = [[engine(0.1 * (i + 1)) for i in range(50)] for engine in (Value, Reference)]
    results = []
    for x in xs:
        y = [xi * xj + xj.exp() for xi in x for xj in x[::7]]
        loss = sum(yi.log() for yi in y) / len(y)
        loss.backward()
        results.append([bits(xi.grad) for xi in x])
    assert results[0] == results[1]


# -- finite differences ------------------------------------------------------

def f_examples(x, y):
    return [
        x * y + x ** 2,
        (x * y + x ** 2).log(),
        (x - y).exp() / (1 + x.relu()),
        (x * x + 1e-5) ** -0.5 * y,
        -x / y - 3 / (y * y),
        sum(xi * yi for xi, yi in zip([x, y, x], [y, y, x])),
        (x.exp() + y.exp()).log() - x,
        (x + 2) ** 1.5 - (y * y) ** 0.25,
    ]


@pytest.mark.parametrize("engine", BACKENDS)
@pytest.mark.parametrize("point", [(0.7, 1.3), (1.9, -0.4), (2.5, 0.9)])
@pytest.mark.parametrize("which", range(8))
def test_gradients_match_finite_differences(engine, point, which):
    eps = 1e-6
    x, y = engine(point[0]), engine(point[1])
    out = f_examples(x, y)[which]
    out.backward()
    for v, i in [(x, 0), (y, 1)]:
        hi, lo = list(point), list(point)
        hi[i] += eps
        lo[i] -= eps
        numeric = (f_examples(*map(engine, hi))[which].data
                   - f_examples(*map(engine, lo))[which].data) / (2 * eps)
        assert v.grad == pytest.approx(numeric, rel=1e-3, abs=1e-6)


# -- the microgpt.py semantics, one by one -----------------------------------

@pytest.mark.parametrize("engine", BACKENDS)
def test_node_reuse_adds_gradients(engine):
    a = engine(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0 and b.grad == 2.0 and c.grad == 1.0


@pytest.mark.parametrize("engine", BACKENDS)
def test_backward_accumulates_over_calls_and_sets_the_root(engine):
    a = engine(2.0)
    b = a * a
    b.backward()
    b.backward()
    assert a.grad == 8.0 and b.grad == 1.0


def test_passes_from_inner_nodes_and_the_root_each_visit_their_whole_graph():
    # each pass must reach every node below its root, whatever passes came before
    def passes(engine):
        x = [engine(0.5 + i) for i in range(6)]
        inner = sum(a * b for a, b in zip(x, x[1:]))
        root = (inner * x[0] + engine(2.0, x[:4], (1, 2, 3, 4))).exp().log()
        grads = []
        for start in (inner, root, inner, root, root):
            start.backward()
            grads.append([bits(v.grad) for v in x + [inner, root]])
        return grads
    assert passes(Value) == passes(Reference)


@pytest.mark.parametrize("engine", BACKENDS)
def test_operations_build_microgpt_nodes(engine):
    a, b = engine(2.0), engine(-3.0)
    cases = {
        "a + b": (a + b, [a, b], [1.0, 1.0]),
        "a * b": (a * b, [a, b], [-3.0, 2.0]),
        "a ** 3": (a ** 3, [a], [3 * 2.0 ** 2]),
        "a.log()": (a.log(), [a], [0.5]),
        "a.exp()": (a.exp(), [a], [math.exp(2.0)]),
        "b.relu()": (b.relu(), [b], [0.0]),
        "a.relu()": (a.relu(), [a], [1.0]),
    }
    for name, (out, children, grads) in cases.items():
        assert list(out._children) == children, name
        assert list(out._local_grads) == grads, name
        assert isinstance(out._children, tuple) and isinstance(out._local_grads, tuple)
    neg = -a                            # self * -1
    assert neg._children[0] is a and neg._children[1].data == -1.0
    assert neg._local_grads == (-1.0, 2.0)
    quotient = a / b                    # self * other**-1
    assert quotient._children[0] is a
    assert quotient._children[1]._children == (b,)
    assert quotient._children[1]._local_grads == (-1 * (-3.0) ** -2,)
    difference = a - b                  # self + (-other)
    assert difference._children[0] is a and difference._children[1]._children[0] is b
    summed = sum([a, b])                # 0 + a: a constant Value(0) child
    assert summed._children[0]._children[0] is a
    assert summed._children[0]._children[1].data == 0.0


@pytest.mark.parametrize("engine", BACKENDS)
def test_reflected_operators(engine):
    a = engine(4.0)
    assert (2 + a).data == 6.0 and (2 - a).data == -2.0
    assert (2 * a).data == 8.0 and (2 / a).data == 0.5
    assert (a - 1).data == 3.0 and (a / 2).data == 2.0


@pytest.mark.parametrize("engine", BACKENDS)
def test_data_and_grad_are_assignable_floats(engine):
    v = engine(3)
    assert type(v.data) is float and type(v.grad) is float
    v.data -= 0.5
    v.grad = 2
    assert v.data == 2.5 and v.grad == 2.0
    if engine is not Reference:         # a C double; the reference keeps what it is given
        assert type(v.grad) is float
        with pytest.raises(TypeError):
            v.data = "1.0"
    assert repr(engine(1.5)) == "Value(data=1.5, grad=0.0)"


@pytest.mark.parametrize("engine", BACKENDS)
def test_constructor_with_many_children(engine):
    a, b, c, d = (engine(float(i)) for i in range(1, 5))
    out = engine(10.0, (a, b, c, d, a), (1, 2.5, -1, 4, 0.5))
    assert out._children == (a, b, c, d, a)
    assert out._local_grads == (1.0, 2.5, -1.0, 4.0, 0.5)
    (out * out).backward()
    assert (a.grad, b.grad, c.grad, d.grad) == (30.0, 50.0, -20.0, 80.0)


# -- failures: the same exception as microgpt.py --------------------------------

@pytest.mark.parametrize("engine", BACKENDS)
@pytest.mark.parametrize("expression, error", [
    (lambda V: V(0.0).log(), ValueError),
    (lambda V: V(-1.0).log(), ValueError),
    (lambda V: V(-math.inf).log(), ValueError),
    (lambda V: V(0.0) ** -1, ZeroDivisionError),
    (lambda V: V(0.0) ** 0.5, ZeroDivisionError),      # the local gradient 0.5 * 0.0**-0.5
    (lambda V: V(0.0) / V(0.0), ZeroDivisionError),
    (lambda V: V(1.0) / 0, ZeroDivisionError),
    (lambda V: 1 / V(0.0), ZeroDivisionError),
    (lambda V: V(1000.0).exp(), OverflowError),
    (lambda V: V(10.0) ** 400, OverflowError),
    (lambda V: V(1.0) / 10**400, OverflowError),
    (lambda V: V(-8.0) ** (1 / 3), ValueError),
    (lambda V: V(2.0) ** V(2.0), TypeError),
    (lambda V: 2 ** V(2.0), TypeError),
    (lambda V: pow(V(2.0), 2, 3), TypeError),
    (lambda V: V("1.5"), TypeError),
    (lambda V: V(1.0) + "a", TypeError),
    (lambda V: "a" + V(1.0), TypeError),
    (lambda V: V(1.0) * None, TypeError),
    (lambda V: V(1.0) < V(2.0), TypeError),
])
def test_errors(engine, expression, error):
    with pytest.raises(error):
        expression(engine)


def test_negative_base_message_is_clear():
    with pytest.raises(ValueError, match="negative number cannot be raised to a fractional power"):
        Value(-2.0) ** 0.5


def test_compiled_constructor_checks_its_arguments():
    if microgpt.BACKEND != "compiled":
        pytest.skip("the pure-Python Value stores what it is given, as microgpt.py")
    a = Value(1.0)
    with pytest.raises(ValueError):
        Value(1.0, (a,), ())
    with pytest.raises(TypeError):
        Value(1.0, (1.0,), (1.0,))
    with pytest.raises(TypeError):
        Value(1.0, (a,), ("x",))


@pytest.mark.parametrize("engine", BACKENDS)
def test_special_floats_follow_python(engine):
    inf, nan = math.inf, math.nan
    assert engine(inf).log().data == inf
    assert math.isnan(engine(nan).log().data) and math.isnan(engine(nan).exp().data)
    assert engine(-inf).exp().data == 0.0
    assert engine(nan).relu().data == 0.0 and engine(-0.0).relu().data.hex() == "0x0.0p+0"
    for x, e in [(-2.0, 3), (-inf, 3), (-inf, 2), (inf, -1), (-0.0, 3), (-1.0, 1e300), (nan, 0)]:
        assert bits((engine(x) ** e).data) == bits(float(x) ** e)


def test_division_by_a_number_is_times_its_power_minus_one():
    """x / c is x * c ** -1 in microgpt.py, which is not x * (1 / c) for every c."""
    c = 1.037195981225262
    assert c ** -1 != 1 / c
    for x in [1.0, 3.0, -0.7]:
        results = [(engine(x) / c).data for engine in BACKENDS]
        assert [bits(r) for r in results] == [bits(x * c ** -1)] * len(BACKENDS)


@pytest.mark.parametrize("x", [0.0, -0.0, 5e-324, -5e-324])
def test_relu_local_gradient_at_zero(x):
    """relu's local gradient is float(data > 0): 0.0 at 0.0 and -0.0, as in
    microgpt.py; both engines, through a backward pass."""
    results = []
    for engine in BACKENDS:
        a = engine(x)
        y = a.relu() * 3.0
        y.backward()
        results.append((bits(y.data), bits(a.grad), [bits(g) for g in y._children[0]._local_grads]))
    assert all(r == results[0] for r in results)
    # 3.0 * float(x > 0): microgpt.py's relu has local gradient float(data > 0)
    assert results[0][1] == (3.0 * float(x > 0)).hex()


# -- depth -----------------------------------------------------------------------

@pytest.mark.parametrize("engine", BACKENDS)
def test_million_deep_chain(engine):
    root = engine(1.0)
    x = root
    for _ in range(1_000_000):
        x = engine(x.data, (x,), (1.0,))
    x = x * 0.5
    x.backward()
    assert root.grad == 0.5
    del x                               # frees a chain a million nodes deep
    gc.collect()
    assert root.grad == 0.5


def test_deep_chains_of_operators_free():
    x = Value(0.0)
    for _ in range(300_000):
        x = (x + 1.0) * 1.0
    x.backward()
    assert x.data == 300_000.0
    del x


# -- memory: the compiled Values' slabs ------------------------------------------

compiled = pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="the compiled Value's memory")


def values_memory():
    from microgpt._engine import _memory
    return _memory()


def graph(n):
    """A graph of about 3 n Values, as a training step makes them."""
    x = [Value(0.5 + i / n) for i in range(n)]
    return sum(a * b for a, b in zip(x, reversed(x)))


@compiled
def test_values_come_in_the_order_they_are_made():
    from microgpt._engine import release_kept_memory
    release_kept_memory()
    size = values_memory()["object_size"]
    made = [Value(float(i)) for i in range(2000)]
    steps = [id(b) - id(a) for a, b in zip(made, made[1:])]
    # next to each other but where a slab ends
    assert steps.count(size) >= len(steps) - len(steps) // values_memory()["per_slab"] - 2


@compiled
def test_a_freed_graph_memory_is_the_next_graphs():
    loss = graph(20_000)
    loss.backward()
    del loss
    slabs = values_memory()["slabs"]
    for _ in range(5):
        loss = graph(20_000)
        loss.backward()
        del loss
        assert values_memory()["slabs"] <= slabs


@compiled
def test_the_holes_of_slabs_half_free_are_filled_before_new_slabs():
    from microgpt._engine import release_kept_memory
    made = [Value(float(i)) for i in range(100_000)]
    kept = made[::10]               # every slab 90 % free
    del made
    release_kept_memory()
    slabs = values_memory()["slabs"]
    again = [Value(float(i)) for i in range(50_000)]
    assert values_memory()["slabs"] <= slabs + 1
    assert [v.data for v in kept] == [float(i) for i in range(0, 100_000, 10)]
    assert [v.data for v in again] == [float(i) for i in range(50_000)]


@compiled
def test_empty_slabs_are_kept_until_released():
    from microgpt._engine import release_kept_memory
    from microgpt import _engine
    kept = [Value(1.0) for _ in range(200 * 30)]
    before = values_memory()
    made = [Value(2.0) for _ in range(200 * 100)]
    grown = values_memory()["slabs"]
    del made
    memory = values_memory()
    assert memory["slabs"] == grown                 # kept, for the next graph
    assert memory["empty_slabs"] >= grown - before["slabs"] - 1
    again = [Value(3.0) for _ in range(200 * 100)]
    # which takes them (but for the slab it shares with kept's last Values)
    assert values_memory()["slabs"] <= grown + 1
    del again
    slabs, empty = values_memory()["slabs"], values_memory()["empty_slabs"]
    assert release_kept_memory() == empty * 16 * 1024
    assert values_memory()["slabs"] == slabs - empty
    assert release_kept_memory() == 0
    assert values_memory()["empty_slabs"] == 0
    assert all(v.data == 1.0 for v in kept)
    assert _engine.release_kept_memory is release_kept_memory


@compiled
def test_tracemalloc_counts_the_values_memory():
    import tracemalloc
    from microgpt._engine import release_kept_memory
    release_kept_memory()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        made = [Value(float(i)) for i in range(100_000)]
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    size = values_memory()["object_size"]
    assert len(made) * size < used < len(made) * (size + 16) + 1_000_000   # and the list


@compiled
@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux's list of mappings")
def test_slabs_come_in_chunks_not_a_mapping_each_and_go_back():
    # the kernel allows 65,530 mappings: one a slab would stop at a gigabyte of Values
    from microgpt._engine import release_kept_memory

    def mappings():
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)

    def mapped():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

    before, slabs = mappings(), values_memory()["slabs"]
    made = [Value(1.0) for _ in range(1_000_000)]
    grown = values_memory()["slabs"] - slabs
    assert grown > 3000 and mappings() - before < grown // 32
    del made
    size = mapped()
    assert release_kept_memory() >= grown * 16 * 1024
    assert size - mapped() > 0.9 * grown * 16 * 1024       # unmapped, chunk by chunk
