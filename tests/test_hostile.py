"""The compiled API under hostile use: a clean exception or the right answer.

Whatever Python code passes to the compiled Value and the fused operations
(None, wrong types, sequences that change while they are read, sizes whose
product overflows, the same tensor in several places, objects made with
__new__ alone or __init__-ed twice, finalizers and threads running while a
backward pass does) must get a Python exception or the answer of the
oracle: the pure-Python Value running microgpt.py's lines. Never a crash,
never silent garbage. (The generator's hostile tests are in test_random.py.)
"""
import copy
import gc
import hashlib
import pickle
import struct
import sys
import threading

import pytest
from hypothesis import given, strategies as st

import microgpt
from microgpt import model as scalar
from microgpt.engine import Value as PureValue
from test_fused import scalar_attention

compiled = pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="the compiled core only")
pytestmark = compiled

if microgpt.BACKEND == "compiled":
    from microgpt import Value
    from microgpt.fused import (Adam, Parameters, Tensor, add, attention, cross_entropy,
                                embedding, linear, relu_squared, rmsnorm, softmax)

CLEAN = (TypeError, ValueError, IndexError, OverflowError, MemoryError, ZeroDivisionError)


def matrix(rows, cols, seed=0):
    import random
    rng = random.Random(seed)
    return [[rng.gauss(0, 1) for _ in range(cols)] for _ in range(rows)]


# -- Value: built once -------------------------------------------------------------

def test_a_value_cannot_be_rebuilt_into_a_cycle():
    a = Value(1.0)
    b = a * 2.0
    with pytest.raises(RuntimeError):
        a.__init__(0.0, (b,), (1.0,))          # a -> b -> a would never be freed
    with pytest.raises(RuntimeError):
        b.__init__(5.0)                        # an operation's result is built
    assert (a.data, b.data, b._children) == (1.0, 2.0, (a, b._children[1]))


def test_a_value_made_by_new_is_built_once_and_only_while_unused():
    a = Value.__new__(Value)
    a.__init__(3.0)
    assert a.data == 3.0
    with pytest.raises(RuntimeError):
        a.__init__(4.0)
    c = Value.__new__(Value)
    d = c + 1.0                                # c is d's child now
    with pytest.raises(RuntimeError):
        c.__init__(0.0, (d,), (1.0,))
    e = Value.__new__(Value)
    with pytest.raises(ValueError):
        e.__init__(1.0, (e,), (1.0,))          # its own child
    e.__init__(1.0)                            # a failed build leaves it unbuilt
    assert e.data == 1.0 and e._children == ()


def test_value_arguments_are_checked():
    for bad in [None, "1", [1.0], 1j]:
        with pytest.raises(TypeError):
            Value(bad)
    with pytest.raises(TypeError):
        Value(1.0, (None,), (1.0,))
    with pytest.raises(TypeError):
        Value(1.0, (Value(1.0),), (None,))
    with pytest.raises(ValueError):
        Value(1.0, (Value(1.0),), ())
    with pytest.raises(OverflowError):
        Value(10 ** 400)


# -- Value: each backward pass is on its own ----------------------------------------

def four_child_graph(V, n):
    """A graph whose nodes have four children: the backward pass's general case."""
    xs = [V(0.01 * (i + 1)) for i in range(n)]
    nodes = list(xs)
    for i in range(n):
        a, b, c, d = nodes[-1], nodes[-2], nodes[-3], nodes[i]
        nodes.append(V(a.data * 0.5 + b.data - c.data * d.data, (a, b, c, d),
                       (0.5, 1.0, -d.data, -c.data)))
    return xs, nodes[-1]


def pure_gradients(n):
    xs, y = four_child_graph(PureValue, n)
    y.backward()
    return [x.grad for x in xs]


class Churn:
    """Cyclic garbage whose finalizer runs `action` and leaves another Churn."""
    def __init__(self, action):
        self.cycle, self.action = self, action

    def __del__(self):
        if self.action is not None:
            self.action()
            Churn(self.action)


def churning(action):
    """A context in which every allocation of a tracked object collects
    garbage, running action() in a finalizer."""
    class Context:
        def __enter__(self):
            self.threshold = gc.get_threshold()
            Churn(action)
            gc.set_threshold(1)

        def __exit__(self, *exc):
            gc.set_threshold(*self.threshold)
            for obj in gc.get_objects():
                if isinstance(obj, Churn):
                    obj.action = None
            gc.collect()
    return Context()


def in_two_threads(work):
    """Run work() in two threads at once, switching between them as often as can be."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)


def test_a_backward_pass_inside_a_finalizer_leaves_the_outer_one_intact():
    expected = pure_gradients(60)

    def inner():
        four_child_graph(Value, 30)[1].backward()

    xs, y = four_child_graph(Value, 60)
    with churning(inner):
        y.backward()
    assert [x.grad for x in xs] == expected


def test_backward_passes_in_two_threads_are_right():
    expected = pure_gradients(60)
    results = []

    def work():
        for _ in range(100):
            xs, y = four_child_graph(Value, 60)
            y.backward()
            results.append([x.grad for x in xs] == expected)

    with churning(lambda: sum(range(50))):
        in_two_threads(work)
    assert len(results) == 200 and all(results)


# -- Tensor, Parameters, Adam: whole from the start -----------------------------------

@pytest.mark.parametrize("cls", ["Tensor", "Parameters", "Adam"])
def test_objects_cannot_be_made_without_their_arguments(cls):
    cls = {"Tensor": Tensor, "Parameters": Parameters, "Adam": Adam}[cls]
    with pytest.raises(TypeError):
        cls.__new__(cls)


def test_init_again_changes_nothing():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    view = t.data
    t.__init__([[5.0]])
    assert t.shape == (2, 2) and view.tolist() == [[1.0, 2.0], [3.0, 4.0]]

    params = Parameters({'w': (2, 3)})
    flat = params.data
    w = params.state_dict['w']
    params.__init__({'w': (0, 1)})
    params.__init__({'v': (1, 1)})
    assert params.size == 6 and params.state_dict['w'] is w and len(flat) == 6

    other = Parameters({'u': (1, 2)})
    opt = Adam(params, 0.1)
    opt.__init__(other, 0.5)
    params.grad[0] = 1.0
    opt.step(0, 0.1)
    assert params.data[0] != 0.0 and list(other.data) == [0.0, 0.0]
    assert opt.learning_rate == 0.1


def test_memory_views_are_of_live_memory_only():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    Array = type(memoryview(t.data).obj)
    with pytest.raises(BufferError):
        memoryview(Array())                     # made by Python: views nothing
    assert bytes(t.data) == struct.pack("4d", 1.0, 2.0, 3.0, 4.0)
    assert hashlib.sha256(t.data).digest() == hashlib.sha256(bytes(t.data)).digest()


@pytest.mark.parametrize("make", [lambda: Tensor([[1.0]]), lambda: Parameters({'w': (1, 1)}),
                                  lambda: Adam(Parameters({'w': (1, 1)}))],
                         ids=["Tensor", "Parameters", "Adam"])
def test_no_pickle_or_copy_of_c_memory(make):
    obj = make()
    with pytest.raises(TypeError):
        pickle.dumps(obj)
    with pytest.raises(TypeError):
        copy.copy(obj)


# -- the operations check their arguments ----------------------------------------------

def operations():
    """Each operation with valid arguments, as (name, function, args)."""
    x, w = Tensor(matrix(2, 4, 1)), Tensor(matrix(3, 4, 2))
    q, k, v = Tensor(matrix(2, 4, 3)), Tensor(matrix(2, 4, 4)), Tensor(matrix(2, 4, 5))
    return [("embedding", embedding, [w, [2, 0]]), ("add", add, [x, q]),
            ("linear", linear, [x, w]), ("rmsnorm", rmsnorm, [x]),
            ("relu_squared", relu_squared, [x]), ("softmax", softmax, [x, 0.7]),
            ("attention", attention, [q, [k], [v], 2]), ("cross_entropy", cross_entropy, [x, [3, 1]])]


HOSTILE = st.sampled_from([None, 0, 1.5, "x", b"x", [[1.0]], [None], (), [[]], object(), 2 ** 70,
                           -1, float("nan"), [2.5], [True, None], range(10 ** 12)])


@given(st.data())
def test_any_hostile_argument_gets_a_clean_exception_or_an_answer(data):
    name, op, args = data.draw(st.sampled_from(operations()), label="operation")
    position = data.draw(st.integers(0, len(args) - 1), label="argument")
    args = list(args)
    args[position] = data.draw(HOSTILE, label="value")
    try:
        result = op(*args)
    except CLEAN:
        return
    assert isinstance(result, Tensor)           # a hostile value that is also valid
    result.tolist()


@pytest.mark.parametrize("name, args", [
    ("linear", lambda t: (None, t)), ("linear", lambda t: (t, None)), ("add", lambda t: (None, t)),
    ("add", lambda t: (t, None)), ("embedding", lambda t: (None, [0])),
    ("rmsnorm", lambda t: (None,)), ("relu_squared", lambda t: (None,)),
    ("softmax", lambda t: (None,)), ("cross_entropy", lambda t: (None, [0])),
    ("attention", lambda t: (None, [t], [t], 1)), ("attention", lambda t: (t, [None], [t], 1)),
    ("attention", lambda t: (t, [t], [None], 1)), ("Adam", lambda t: (None,)),
])
def test_none_is_not_a_tensor(name, args):
    from microgpt import fused
    with pytest.raises(TypeError):
        getattr(fused, name)(*args(Tensor([[1.0, 2.0]])))


def test_ids_and_targets_are_ints_as_list_indices_are():
    table = Tensor([[1.0], [2.0], [3.0]])
    for bad in ([1.9], [1.0], ["1"], [None]):
        with pytest.raises(TypeError):
            embedding(table, bad)
        with pytest.raises(TypeError):
            cross_entropy(Tensor([[1.0, 2.0, 3.0]]), bad)
    with pytest.raises(IndexError):
        embedding(table, [2 ** 70])
    with pytest.raises(IndexError):
        embedding(table, [-1])
    np = pytest.importorskip("numpy")
    assert embedding(table, np.array([2, True])).tolist() == [[3.0], [2.0]]


class Shrinking:
    """A sequence of zeros that is 1000 long when first asked, then 1."""
    def __init__(self):
        self.n = None

    def __len__(self):
        self.n = 1000 if self.n is None else 1
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return 0


class Clearing:
    """An id whose __index__ empties the list it is in."""
    def __init__(self, value, victim):
        self.value, self.victim = value, victim

    def __index__(self):
        self.victim.clear()
        gc.collect()
        return self.value


@pytest.mark.parametrize("op", ["embedding", "cross_entropy"])
def test_a_sequence_changing_while_it_is_read_is_read_once(op):
    table, logits = Tensor(matrix(3, 4)), Tensor(matrix(1000, 4))
    if op == "embedding":
        assert embedding(table, Shrinking()).tolist() == [table.tolist()[0]] * 1000
    else:
        assert cross_entropy(logits, Shrinking()).data == cross_entropy(logits, [0] * 1000).data
    victim = []
    victim.extend([Clearing(2, victim), Clearing(1, victim), 0, 1, 2])
    if op == "embedding":
        assert embedding(table, victim).tolist() == [table.tolist()[i] for i in (2, 1, 0, 1, 2)]
    else:
        logits = Tensor(matrix(5, 4))
        assert cross_entropy(logits, victim).data == cross_entropy(logits, [2, 1, 0, 1, 2]).data


def test_rows_changing_while_a_tensor_is_made_are_read_once():
    rows = [[1.0, 2.0], [3.0, 4.0]]

    class Sneaky:
        def __float__(self):
            for row in rows:
                row.clear()
            rows.clear()
            return 9.0

    rows.append([Sneaky(), 6.0])
    assert Tensor(rows).tolist() == [[1.0, 2.0], [3.0, 4.0], [9.0, 6.0]]


def test_sizes_that_overflow_are_refused():
    with pytest.raises(MemoryError):
        Parameters({'w': (2 ** 32, 2 ** 32)})           # 2**64 parameters
    with pytest.raises(MemoryError):
        Parameters({'a': (2 ** 31, 2 ** 31), 'b': (2 ** 31, 2 ** 31)})
    with pytest.raises(MemoryError):
        Parameters({'w': (2 ** 61, 2)})                 # 2**62 parameters, 2**65 bytes
    with pytest.raises(OverflowError):
        Parameters({'w': (2 ** 70, 1)})
    with pytest.raises(MemoryError):
        embedding(Tensor([[1.0]]), range(10 ** 12))
    for bad in [{'w': (2.5, 3)}, {'w': (2, None)}, {1: (1, 1)}, {'w': (1, 1, 1)}]:
        with pytest.raises((TypeError, ValueError)):
            Parameters(bad)
    assert Parameters({}).size == 0


# -- the same tensor in several places ------------------------------------------------

@pytest.mark.parametrize("alias", ["q is k is v", "k is v"])
def test_attention_of_a_tensor_with_itself_has_the_gradients(alias):
    """The gradients are right (they reach the input), possibly not in the
    scalar graph's order: equal to within rounding."""
    X, W, W2, targets = matrix(3, 4, 7), matrix(4, 4, 8), matrix(4, 4, 9), [1, 3, 0]
    x, w, w2 = Tensor(X), Tensor(W), Tensor(W2)
    q = linear(x, w)
    k = q if alias == "q is k is v" else linear(x, w2)
    loss = cross_entropy(attention(q, [k], [k], 2), targets)
    loss.backward()

    xs, ws, w2s = ([[PureValue(v) for v in row] for row in m] for m in (X, W, W2))
    keys, losses = [], []
    for pos in range(3):
        qs = scalar.linear(xs[pos], ws)
        keys.append(qs if alias == "q is k is v" else scalar.linear(xs[pos], w2s))
        out = scalar_attention(qs, keys, keys, 2)
        losses.append(-scalar.softmax(out)[targets[pos]].log())
    expected = (1 / 3) * sum(losses)
    expected.backward()
    assert loss.data == expected.data
    for tensor, values in [(x, xs), (w, ws)]:
        got, want = tensor.grad.tolist(), [[v.grad for v in row] for row in values]
        assert any(g != 0.0 for row in got for g in row)
        assert got == [[pytest.approx(g, rel=1e-12, abs=1e-16) for g in row] for row in want]


def test_a_tensor_twice_in_one_operation():
    """a a-transpose, a + a: the gradients of the scalar graph, to within rounding."""
    A = matrix(2, 3, 10)
    a = Tensor(A)
    loss = cross_entropy(add(linear(a, a), linear(a, a)), [1, 0])
    loss.backward()
    av = [[PureValue(x) for x in row] for row in A]
    losses = []
    for t, target in enumerate([1, 0]):
        logits = [y + y for y in scalar.linear(av[t], av)]
        losses.append(-scalar.softmax(logits)[target].log())
    expected = (1 / 2) * sum(losses)
    expected.backward()
    assert loss.data == pytest.approx(expected.data, rel=1e-15)
    assert a.grad.tolist() == [[pytest.approx(v.grad, rel=1e-12) for v in row] for row in av]


# -- the fast path under finalizers and threads -----------------------------------------

def fused_gradients(noise=None):
    from microgpt import random
    from microgpt.data import Tokenizer
    from microgpt.fused import FusedGPT
    from microgpt.model import Config
    tokenizer = Tokenizer(["emma", "olivia", "isabella"])
    model = FusedGPT(Config(tokenizer.vocab_size, n_embd=8, n_head=2, n_layer=2), random.Random(3))
    loss = model.loss(tokenizer.encode("isabella"))
    if noise is None:
        loss.backward()
    else:
        with churning(noise):
            loss.backward()
    return list(model.parameters.grad)


def test_a_fused_backward_pass_inside_a_finalizer_leaves_the_outer_one_intact():
    def inner():
        w = Tensor([[0.5, -0.25], [1.0, 2.0]])
        cross_entropy(linear(w, w), [0, 1]).backward()
    assert fused_gradients(inner) == fused_gradients()


def test_fused_training_in_two_threads_is_right():
    expected = fused_gradients()
    results = []

    def work():
        for _ in range(20):
            results.append(fused_gradients() == expected)

    in_two_threads(work)
    assert len(results) == 40 and all(results)


# -- code that runs while an object is being made -------------------------------------

def test_a_value_built_or_used_by_its_own_arguments_is_refused():
    a = Value.__new__(Value)
    made = []

    def children():                     # uses a before a is built: a cycle in the making
        made.append(a + 1.0)
        yield made[0]

    with pytest.raises(RuntimeError):
        a.__init__(2.0, children(), (1.0,))
    assert a.data == 0.0 and a._children == ()

    b = Value.__new__(Value)

    class Sneaky(float):
        def __float__(self):            # builds b first, from inside b's own build
            b.__init__(7.0)
            return 0.25

    with pytest.raises(RuntimeError):
        b.__init__(3.0, (Value(1.0), Value(1.0), Value(1.0)), (1.0, 1.0, Sneaky(0.5)))
    assert b.data == 7.0 and b._children == ()


def test_parameters_and_adam_reached_while_being_made():
    """Their arguments' conversions run Python code, which can find the
    half-made object through the garbage collector: it refuses to be used."""
    reached = []

    def poke():
        for obj in gc.get_objects():
            if type(obj) in (Parameters, Adam):
                for use in (lambda: obj.data, lambda: obj.grad, lambda: obj.step(0, 0.1),
                            lambda: Adam(obj)):
                    try:
                        use()
                    except (RuntimeError, AttributeError, TypeError) as exc:
                        reached.append(type(exc))

    class Rows:
        def __index__(self):
            poke()
            return 2

    class Rate:
        def __float__(self):
            poke()
            return 0.5

    params = Parameters({'w': (Rows(), 3)})
    assert params.size == 6 and reached.count(RuntimeError) == 3     # data, grad, Adam(obj)
    reached.clear()
    opt = Adam(params, Rate())
    assert opt.learning_rate == 0.5 and reached.count(RuntimeError) == 1   # step
