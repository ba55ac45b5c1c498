"""The fused operations and the fast GPT against microgpt.py's scalar graph.

The oracle is the pure-Python Value running microgpt.py's own lines: every
forward result, every gradient, every Adam update and every training run of
the fast path must equal it bit for bit.
"""
import functools
import json
import math
import operator
import os
import random as stdlib_random
import subprocess
import sys
from fractions import Fraction

import pytest

import microgpt

pytestmark = pytest.mark.skipif(microgpt.BACKEND != "compiled",
                                reason="the fused operations are compiled only")

if microgpt.BACKEND == "compiled":
    from microgpt import fused
    from microgpt.fused import (Adam, FusedGPT, Parameters, Tensor, add, attention,
                                cross_entropy, embedding, linear, relu, relu_squared,
                                rmsnorm, softmax)
from microgpt import random
from microgpt.data import Tokenizer
from microgpt.engine import Value
from microgpt.model import GPT, Config
from microgpt import model as scalar
from microgpt.recipe import V1, V2
from microgpt.train import Adam as ScalarAdam, sample, train


def values(rows):
    return [[Value(x) for x in row] for row in rows]


def data(rows):
    return [[v.data for v in row] for row in rows]


def hexes(rows):
    return [[float(x).hex() for x in row] for row in rows]


def matrix(rng, rows, cols, scale=1.0):
    return [[rng.gauss(0, scale) for _ in range(cols)] for _ in range(rows)]


# -- forward: each operation against microgpt.py's lines -------------------------

@pytest.mark.parametrize("rows, nin, nout", [(1, 16, 16), (2, 3, 5), (7, 16, 64), (9, 64, 16),
                                             (5, 70, 27), (4, 1, 1), (3, 16, 6)])
def test_linear(rows, nin, nout):
    rng = stdlib_random.Random(rows * nin * nout)
    x, w = matrix(rng, rows, nin), matrix(rng, nout, nin)
    expected = [scalar.linear(row, values(w)) for row in values(x)]
    assert hexes(linear(Tensor(x), Tensor(w)).tolist()) == hexes(data(expected))


def test_rmsnorm_add_embedding():
    rng = stdlib_random.Random(1)
    table, other = matrix(rng, 6, 16), matrix(rng, 4, 16, 3.0)
    ids = [5, 0, 5, 2]
    got = rmsnorm(add(embedding(Tensor(table), ids), Tensor(other)))
    expected = [scalar.rmsnorm([t + o for t, o in zip(values(table)[i], row)])
                for i, row in zip(ids, values(other))]
    assert hexes(got.tolist()) == hexes(data(expected))


def squares_pow_rounds_differently(n=3):
    """Values x where Python's x ** 2 (pow) is not x * x: rare, so searched for."""
    rng, found = stdlib_random.Random(5), []
    while len(found) < n:
        x = rng.uniform(0.5, 2.0)
        if x ** 2 != x * x:
            found.append(x)
    return found


def test_relu_squared_is_pow_not_a_product():
    special = squares_pow_rounds_differently()
    rng = stdlib_random.Random(2)
    x = [special + [-1.5, 0.0, -0.0, 1e-200, 1e150, 3.0] + [rng.gauss(0, 1) for _ in range(500)]]
    expected = [[xi.relu() ** 2 for xi in row] for row in values(x)]
    assert hexes(relu_squared(Tensor(x)).tolist()) == hexes(data(expected))
    with pytest.raises(OverflowError):
        relu_squared(Tensor([[1e300]]))


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
def test_relu_squared_forward_and_backward_in_every_instruction_set(isa):
    """The vector kernels square where the product is pow's result and ask
    pow elsewhere; the gradient skips x <= 0 and NaN (no + 0.0 there)."""
    rng = stdlib_random.Random(4)
    x = (squares_pow_rounds_differently() + [-1.5, 0.0, -0.0, 1e-200, 1e150, 3.0, float("nan"),
         float("inf"), -float("inf"), 2.0 ** -60, 2.0 ** 60, 2.0 ** 61, 5e-324]
         + [rng.gauss(0, 1) for _ in range(101)])
    dy = [rng.gauss(0, 1) for _ in x]
    script = ("import json, sys\n"
              "from microgpt.fused import Tensor, linear, relu_squared\n"
              "x, dy = [[float.fromhex(v) for v in row] for row in json.loads(sys.stdin.read())]\n"
              "t = Tensor([x]); out = relu_squared(t); linear(out, Tensor([dy])).backward()\n"
              "print(json.dumps([[v.hex() for v in out.tolist()[0]],"
              " [v.hex() for v in t.grad.tolist()[0]]]))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         input=json.dumps([[v.hex() for v in x], [v.hex() for v in dy]]),
                         env=dict(os.environ, MICROGPT_KERNELS=isa))
    assert run.returncode == 0, run.stderr
    xs = values([x])
    ys = [[xi.relu() ** 2 for xi in row] for row in xs]
    scalar.linear(ys[0], values([dy]))[0].backward()
    assert json.loads(run.stdout) == [hexes(data(ys))[0], hexes([[v.grad for v in xs[0]]])[0]]


def test_relu_is_max_of_0():
    rng = stdlib_random.Random(2)
    x = [[-1.5, 0.0, -0.0, 1e-320, -1e-320, float("nan"), float("inf"), -float("inf"), 3.0]
         + [rng.gauss(0, 1) for _ in range(100)]]
    expected = [[xi.relu() for xi in row] for row in values(x)]
    assert hexes(relu(Tensor(x)).tolist()) == hexes(data(expected))


def test_relu_backward_equals_the_scalar_graph():
    """Its gradient is float(x > 0) times the output's, 0.0 times it too:
    an infinite output gradient makes NaN below 0 as in the scalar graph."""
    x0 = [[-1.5, 0.0, -0.0, 2.0, 0.5]]
    for dy in ([[0.25, -3.0, 1.0, -0.5, 7.0]], [[float("inf"), -float("inf"), 1.0, 2.0, 3.0]]):
        x = Tensor(x0)
        out = relu(x)
        xs = values(x0)
        ys = [[xi.relu() for xi in row] for row in xs]
        # push dy through both: a linear layer whose weights are dy, summed
        w = Tensor(dy)
        loss = linear(out, w)
        loss.backward()
        scalar_loss = scalar.linear(ys[0], values(dy))[0]
        scalar_loss.backward()
        assert hexes(x.grad.tolist()) == hexes([[v.grad for v in row] for row in xs])


# temperatures whose inverse is not exact; the last has t ** -1 != 1 / t
TEMPERATURES = [1.0, 0.5, 0.3, 0.7, 2.0, 1.037195981225262]


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_softmax(temperature):
    rng = stdlib_random.Random(3)
    x = matrix(rng, 3, 27, 4.0) + [[0.0] * 27, [1000.0, -1000.0] + [0.0] * 25]
    expected = [scalar.softmax([l / temperature for l in row]) for row in values(x)]
    assert hexes(softmax(Tensor(x), temperature).tolist()) == hexes(data(expected))


def scalar_attention(q, keys, values_, n_head):
    """microgpt.py's attention loop for one position, over the cache so far."""
    head_dim = len(q) // n_head
    x_attn = []
    for h in range(n_head):
        hs = h * head_dim
        q_h = q[hs:hs+head_dim]
        k_h = [ki[hs:hs+head_dim] for ki in keys]
        v_h = [vi[hs:hs+head_dim] for vi in values_]
        attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim**0.5 for t in range(len(k_h))]
        attn_weights = scalar.softmax(attn_logits)
        head_out = [sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h))) for j in range(head_dim)]
        x_attn.extend(head_out)
    return x_attn


@pytest.mark.parametrize("n_embd, n_head, chunks", [(16, 4, [5]), (12, 3, [1, 1, 1, 1]),
                                                    (6, 1, [2, 3]), (8, 8, [3, 1, 2])])
def test_attention_over_a_growing_cache(n_embd, n_head, chunks):
    rng = stdlib_random.Random(n_embd + n_head)
    keys, vals, scalar_keys, scalar_vals = [], [], [], []
    for rows in chunks:
        q, k, v = (matrix(rng, rows, n_embd) for _ in range(3))
        keys.append(Tensor(k))
        vals.append(Tensor(v))
        got = attention(Tensor(q), keys, vals, n_head).tolist()
        expected = []
        for qr, kr, vr in zip(values(q), values(k), values(v)):
            scalar_keys.append(kr)
            scalar_vals.append(vr)
            expected.append(scalar_attention(qr, scalar_keys, scalar_vals, n_head))
        assert hexes(got) == hexes(data(expected))


def test_cross_entropy():
    rng = stdlib_random.Random(14)
    logits, targets = matrix(rng, 6, 27, 3.0), [0, 26, 5, 5, 13, 1]
    losses = [-scalar.softmax(row)[t].log() for row, t in zip(values(logits), targets)]
    expected = (1 / len(losses)) * sum(losses)
    got = cross_entropy(Tensor(logits), targets)
    assert got.data.hex() == expected.data.hex()
    # rows whose losses add up to other doubles in another order, or divided by n:
    # the test sees any reassociation (added left to right, as the graph does: sum()
    # of floats is compensated from Python 3.12 on)
    terms = [x.data for x in losses]
    left_to_right = lambda xs: functools.reduce(operator.add, xs, 0)
    assert left_to_right(reversed(terms)) != left_to_right(terms)
    assert left_to_right(terms) / 6 != (1 / 6) * left_to_right(terms)
    with pytest.raises(ValueError):            # log(0): as Value.log raises
        cross_entropy(Tensor([[0.0, -1000.0]]), [1])


def pow_is_not_nearest(x, y):
    """Whether Python's x ** y, for x > 0 and y = -n / 2, is not the double
    nearest the exact power p: p ** 2 * x ** n is 1, compared exactly with
    the midpoints on either side of x ** y. pow's rare misroundings."""
    z, n = x ** y, round(-2 * y)
    below = (Fraction(z) + Fraction(math.nextafter(z, 0.0))) / 2
    above = (Fraction(z) + Fraction(math.nextafter(z, math.inf))) / 2
    return not below ** 2 * Fraction(x) ** n <= 1 <= above ** 2 * Fraction(x) ** n


def rows_whose_total_pow_is_not_nearest(y, count, rng):
    """Logit rows [0.0, l] whose softmax total, 1.0 + exp(l), has total ** y
    other than the nearest double: searched for."""
    rows = []
    while len(rows) < count:
        row = [0.0, -4.0 * rng.random()]
        if pow_is_not_nearest(1.0 + math.exp(row[1]), y):
            rows.append(row)
    return rows


def test_softmax_and_cross_entropy_take_pow_of_the_total_as_python_does():
    """total ** -1 (the probabilities) and total ** -2 (its gradient) where pow
    is not the nearest double: the kernels take the nearest only where it is
    pow's result, as Value's / and ** do."""
    rng = stdlib_random.Random(15)
    inverse_rows = rows_whose_total_pow_is_not_nearest(-1.0, 3, rng)
    rows = inverse_rows + rows_whose_total_pow_is_not_nearest(-2.0, 3, rng)
    expected = [scalar.softmax(row) for row in values(inverse_rows)]
    assert hexes(softmax(Tensor(inverse_rows), 1.0).tolist()) == hexes(data(expected))
    targets = [0, 1, 0, 0, 1, 0]
    logits = Tensor(rows)
    loss = cross_entropy(logits, targets)
    loss.backward()
    xs = values(rows)
    losses = [-scalar.softmax(row)[t].log() for row, t in zip(xs, targets)]
    scalar_loss = (1 / len(losses)) * sum(losses)
    scalar_loss.backward()
    assert loss.data.hex() == scalar_loss.data.hex()
    assert hexes(logits.grad.tolist()) == hexes([[v.grad for v in row] for row in xs])


def rows_whose_mean_square_pow_is_not_nearest(y, count, rng):
    """Rows of 16 whose ms + 1e-5 (rmsnorm's, as microgpt.py adds and scales
    it) has (ms + 1e-5) ** y other than the nearest double: searched for."""
    rows = []
    while len(rows) < count:
        row = [rng.gauss(0, 1) for _ in range(16)]
        squares = 0
        for xi in row:
            squares = squares + xi * xi
        if pow_is_not_nearest(squares * 16 ** -1 + 1e-5, y):
            rows.append(row)
    return rows


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
def test_rmsnorm_takes_pow_of_the_mean_square_as_python_does(isa):
    """(ms + 1e-5) ** -0.5 (the scale) and ** -1.5 (its gradient) where pow is
    not the nearest double, through a linear layer and the loss."""
    rng = stdlib_random.Random(16)
    rows = (rows_whose_mean_square_pow_is_not_nearest(-0.5, 3, rng)
            + rows_whose_mean_square_pow_is_not_nearest(-1.5, 3, rng))
    w, targets = matrix(rng, 5, 16), [0, 1, 2, 3, 4, 0]
    script = ("import json, sys\n"
              "from microgpt.fused import Tensor, cross_entropy, linear, rmsnorm\n"
              "rows, w, targets = json.loads(sys.stdin.read())\n"
              "x = Tensor([[float.fromhex(v) for v in row] for row in rows])\n"
              "w = Tensor([[float.fromhex(v) for v in row] for row in w])\n"
              "y = rmsnorm(x); cross_entropy(linear(y, w), targets).backward()\n"
              "print(json.dumps([[[v.hex() for v in row] for row in t.tolist()]"
              " for t in (y, x.grad)]))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         input=json.dumps([hexes(rows), hexes(w), targets]),
                         env=dict(os.environ, MICROGPT_KERNELS=isa))
    assert run.returncode == 0, run.stderr
    xs, ws = values(rows), values(w)
    ys = [scalar.rmsnorm(row) for row in xs]
    losses = [-scalar.softmax(scalar.linear(y, ws))[t].log() for y, t in zip(ys, targets)]
    ((1 / len(losses)) * sum(losses)).backward()
    assert json.loads(run.stdout) == [hexes(data(ys)), hexes([[v.grad for v in row] for row in xs])]


# -- backward: the gradients of microgpt.py's graph, in its order -------------------

def test_backward_of_a_microgpt_block_equals_the_scalar_graph():
    """embedding, rmsnorm, q/k/v linears, attention, residual, MLP, loss."""
    rng = stdlib_random.Random(6)
    n_embd, n_head, vocab, n = 8, 2, 7, 5
    shapes = {'wte': (vocab, n_embd), 'wpe': (n, n_embd), 'lm_head': (vocab, n_embd),
              'wq': (n_embd, n_embd), 'wk': (n_embd, n_embd), 'wv': (n_embd, n_embd),
              'wo': (n_embd, n_embd), 'fc1': (4 * n_embd, n_embd), 'fc2': (n_embd, 4 * n_embd)}
    params = Parameters(shapes)
    flat = params.data
    for i in range(len(flat)):
        flat[i] = rng.gauss(0, 0.3)
    sv = {name: values(params.state_dict[name].tolist()) for name in shapes}
    tokens = [6, 1, 2, 3, 1, 6]

    sd = params.state_dict
    x = rmsnorm(add(embedding(sd['wte'], tokens[:n]), embedding(sd['wpe'], range(n))))
    x_residual = x
    x = rmsnorm(x)
    q, k, v = linear(x, sd['wq']), linear(x, sd['wk']), linear(x, sd['wv'])
    x = add(linear(attention(q, [k], [v], n_head), sd['wo']), x_residual)
    x = add(linear(relu_squared(linear(rmsnorm(x), sd['fc1'])), sd['fc2']), x)
    loss = cross_entropy(linear(x, sd['lm_head']), tokens[1:n + 1])
    loss.backward()

    keys, vals, losses = [], [], []
    for pos in range(n):
        x = scalar.rmsnorm([t + p for t, p in zip(sv['wte'][tokens[pos]], sv['wpe'][pos])])
        x_residual = x
        x = scalar.rmsnorm(x)
        q = scalar.linear(x, sv['wq'])
        keys.append(scalar.linear(x, sv['wk']))
        vals.append(scalar.linear(x, sv['wv']))
        x = scalar.linear(scalar_attention(q, keys, vals, n_head), sv['wo'])
        x = [a + b for a, b in zip(x, x_residual)]
        x_residual = x
        x = scalar.linear(scalar.rmsnorm(x), sv['fc1'])
        x = scalar.linear([xi.relu() ** 2 for xi in x], sv['fc2'])
        x = [a + b for a, b in zip(x, x_residual)]
        probs = scalar.softmax(scalar.linear(x, sv['lm_head']))
        losses.append(-probs[tokens[pos + 1]].log())
    scalar_loss = (1 / n) * sum(losses)
    scalar_loss.backward()

    assert loss.data.hex() == scalar_loss.data.hex()
    for name in shapes:
        assert params.state_dict[name].grad.tolist() == [[p.grad for p in row] for row in sv[name]], name


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_softmax_backward_equals_the_scalar_graph(temperature):
    """The gradients through softmax(x, temperature), bit for bit: the
    scalar graph is [l / temperature for l in x], softmax, linear, the loss."""
    rng = stdlib_random.Random(12)
    x0, w0, targets = matrix(rng, 4, 9, 2.0), matrix(rng, 5, 9), [4, 0, 2, 2]
    x, w = Tensor(x0), Tensor(w0)
    loss = cross_entropy(linear(softmax(x, temperature), w), targets)
    loss.backward()
    xs, ws = values(x0), values(w0)
    losses = [-scalar.softmax(scalar.linear(scalar.softmax([l / temperature for l in row]), ws))[t].log()
              for row, t in zip(xs, targets)]
    expected = (1 / len(losses)) * sum(losses)
    expected.backward()
    assert loss.data.hex() == expected.data.hex()
    assert hexes(x.grad.tolist()) == hexes([[v.grad for v in row] for row in xs])
    assert hexes(w.grad.tolist()) == hexes([[v.grad for v in row] for row in ws])


def test_gradients_are_right_for_any_graph():
    """Finite differences, on a graph unlike the GPT's (no order to match)."""
    rng = stdlib_random.Random(7)
    w0, x0 = matrix(rng, 5, 4), matrix(rng, 3, 4)

    def f(w, x):
        y = softmax(linear(rmsnorm(add(x, x)), w), 0.7)
        return cross_entropy(add(relu_squared(y), y), [1, 0, 4])

    w, x = Tensor(w0), Tensor(x0)
    f(w, x).backward()
    eps = 1e-6
    for tensor, base, grad in [(w, w0, w.grad.tolist()), (x, x0, x.grad.tolist())]:
        for i in range(len(base)):
            for j in range(len(base[0])):
                hi = [row[:] for row in base]
                lo = [row[:] for row in base]
                hi[i][j] += eps
                lo[i][j] -= eps
                args = lambda m: (Tensor(m), Tensor(x0)) if tensor is w else (Tensor(w0), Tensor(m))
                numeric = (f(*args(hi)).data - f(*args(lo)).data) / (2 * eps)
                assert grad[i][j] == pytest.approx(numeric, rel=1e-3, abs=1e-7)


# -- the model -------------------------------------------------------------------------

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia",
         "harper", "evelyn", "zoë", "josé", "łukasz", "x", "yy", "abigail", "emily",
         "elizabeth", "mila", "ella", "avery", "sofia", "camila", "aria", "scarlett"]
V2_MODEL = dict(activation="relu", init_std=0.08, zero_init_proj=False)   # the final revision's
CONFIGS = [dict(), dict(n_embd=8, n_head=2, n_layer=2, block_size=12),
           dict(n_embd=12, n_head=3, block_size=16), dict(n_embd=32, n_head=8, block_size=5),
           dict(n_embd=6, n_head=1, n_layer=3, block_size=3),
           dict(V2_MODEL, block_size=16), dict(V2_MODEL, n_embd=8, n_head=2, n_layer=2, block_size=6),
           dict(V2_MODEL, n_embd=12, n_head=3, block_size=24)]


def both_models(config, seed=42):
    rng = random.Random(seed)
    docs = list(WORDS)
    rng.shuffle(docs)
    tokenizer = Tokenizer(docs)
    state = rng.getstate()
    exact = GPT(Config(tokenizer.vocab_size, **config), rng)
    rng.setstate(state)
    fast = FusedGPT(Config(tokenizer.vocab_size, **config), rng)
    return exact, fast, docs, tokenizer


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_gradients_equal_microgpt_py_bit_for_bit(config):
    exact, fast, docs, tokenizer = both_models(config)
    assert [p.data for p in exact.params] == list(fast.params)     # the same draws
    for doc in docs[:8]:
        tokens = tokenizer.encode(doc)
        a, b = exact.loss(tokens), fast.loss(tokens)
        assert a.data.hex() == b.data.hex()
        a.backward()
        b.backward()
        assert [p.grad for p in exact.params] == list(fast.parameters.grad), doc
        for p in exact.params:
            p.grad = 0.0
        grad = fast.parameters.grad
        for i in range(len(grad)):
            grad[i] = 0.0


@pytest.mark.parametrize("config, steps, recipe", [
    (CONFIGS[1], 40, V1.replace(learning_rate=0.02)), (CONFIGS[2], 30, V1.replace(learning_rate=0.005)),
    (CONFIGS[4], 40, V1.replace(learning_rate=0.1)), (CONFIGS[5], 40, V2),
    (CONFIGS[6], 40, V2), (CONFIGS[7], 30, V2.replace(beta1=0.0, eps_adam=1e-4))],
    ids=["two-layers", "long-context", "three-layers", "v2", "v2-two-layers",
         "v2-longer-context-than-any-doc"])
def test_training_equals_the_exact_path_bit_for_bit(config, steps, recipe):
    results = []
    for which in (0, 1):
        models = both_models(config, seed=3)
        model, docs, tokenizer = models[which], models[2], models[3]
        rng = random.Random(11)
        losses = list(train(model, docs, tokenizer, steps, **recipe.training()))
        params = [p.data for p in model.params] if which == 0 else list(model.params)
        names = [sample(model, tokenizer, rng, 0.7) for _ in range(5)]
        results.append(([x.hex() for x in losses], [x.hex() for x in params], names))
    assert results[0] == results[1]


@pytest.mark.parametrize("temperature", [0.5, 1.037195981225262])
def test_sampling_weights_equal_microgpt_py(temperature):
    """next_token_weights of both models, bit for bit, at a temperature whose
    inverse (t ** -1, as a Value divides) is not 1 / t."""
    exact, fast, docs, tokenizer = both_models(CONFIGS[1])
    caches = exact.empty_cache(), fast.empty_cache()
    for pos, token in enumerate(tokenizer.encode(docs[0])[:6]):
        a = exact.next_token_weights(token, pos, *caches[0], temperature)
        b = fast.next_token_weights(token, pos, *caches[1], temperature)
        assert [p.hex() for p in a] == [p.hex() for p in b]


# The vector kernels: each instruction set against the plain C loops (which
# the tests above hold to the scalar graph), on models big enough to fill their
# tiles and with sizes that leave rows and columns over.
KERNEL_RUN = """
import json, sys
from microgpt import random
from microgpt._fused import kernel_isa
from microgpt.benchmark import long_documents
from microgpt.data import Tokenizer, load_docs
from microgpt.fused import FusedGPT, set_threads
from microgpt.recipe import RECIPES
from microgpt.train import sample, train
config, recipe, steps, per_line, threads = json.loads(sys.argv[2])
assert set_threads(threads) == threads
docs = load_docs(sys.argv[1])
docs = long_documents(docs, per_line) if per_line > 1 else docs
rng = random.Random(42)
tokenizer = Tokenizer(docs)
recipe = RECIPES[recipe].replace(**config)
model = FusedGPT(recipe.config(tokenizer.vocab_size), rng)
losses = [x.hex() for x in train(model, docs, tokenizer, steps, **recipe.training())]
names = [sample(model, tokenizer, rng, 0.5) for _ in range(3)]
print(json.dumps([kernel_isa(), losses, [x.hex() for x in model.params], names]))
"""

KERNEL_CONFIGS = [
    (dict(), "v1", 60, 1),                                              # microgpt.py's model
    (dict(n_embd=12, n_head=3, block_size=16), "v2", 40, 1),
    (dict(n_embd=64, n_head=4, n_layer=2, block_size=64), "v1", 3, 30),
    (dict(n_embd=60, n_head=4, n_layer=2, block_size=37), "v2", 3, 30),   # head_dim 15
    (dict(n_embd=128, n_head=4, n_layer=4, block_size=128), "v1", 2, 30),
    (dict(n_embd=64, n_head=4, n_layer=2, block_size=64, batch_size=3), "v2", 2, 30),
]


@pytest.mark.parametrize("config, recipe, steps, per_line", KERNEL_CONFIGS,
                         ids=["default", "v2-small", "64x2x64", "60x2x37-v2", "128x4x128",
                              "64x2x64-batch-3"])
def test_every_instruction_set_computes_the_same_run(names_txt, config, recipe, steps, per_line):
    """MICROGPT_KERNELS=plain (the C loops), portable (vectors of two), avx2
    and the CPU's best, on one thread and on three: the same losses,
    parameters and samples, bit for bit."""
    runs = {}
    for isa, threads in [("plain", 1), ("portable", 1), ("portable", 3), ("avx2", 1),
                         ("best", 1), ("avx2", 3), ("best", 3)]:
        env = dict(os.environ, MICROGPT_KERNELS=isa, MICROGPT_DISABLE_AVX2="0")
        run = subprocess.run([sys.executable, "-c", KERNEL_RUN, str(names_txt),
                              json.dumps([config, recipe, steps, per_line, threads])],
                             capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        used, *result = json.loads(run.stdout)
        runs[used, threads] = result
    assert ("plain", 1) in runs and ("portable", 3) in runs
    assert all(result == runs["plain", 1] for result in runs.values()), sorted(runs)


def runs_in_every_instruction_set(script):
    """script's JSON on stdout, run with the plain loops, the portable, AVX2
    and best kernels on one thread, and the best on two: {(isa, threads): result}."""
    runs = {}
    for isa, threads in [("plain", 1), ("portable", 1), ("avx2", 1), ("best", 1), ("best", 2)]:
        prefix = f"from microgpt.fused import set_threads; set_threads({threads})\n"
        run = subprocess.run([sys.executable, "-c", prefix + script], capture_output=True,
                             text=True, env=dict(os.environ, MICROGPT_KERNELS=isa), timeout=60)
        assert run.returncode == 0, run.stderr
        runs[isa, threads] = json.loads(run.stdout)
    return runs


ATTENTION_RUN = """
import json, math
from microgpt.fused import Tensor, attention, cross_entropy, linear
rows, n_embd = 13, 16
x = Tensor([[math.sin(3 * t + j) for j in range(n_embd)] for t in range(rows)])
w = [Tensor([[math.cos(5 * i + j + c) / 4 for j in range(n_embd)] for i in range(n_embd)])
     for c in range(3)]
q, k, v = (linear(x, m) for m in w)
finite = attention(q, [k], [v], 2)
cross_entropy(linear(finite, w[0]), [t % n_embd for t in range(rows)]).backward()
v.data[4, 3] = math.inf                 # position 4's value: rows 0 to 3 may not see it
out = attention(q, [k], [v], 2)
print(json.dumps([[[float(a).hex() for a in row] for row in t.tolist()]
                  for t in (out, finite, x.grad, w[0].grad, w[1].grad, w[2].grad)]))
"""


def test_attention_rows_take_no_term_of_positions_they_do_not_see():
    """A row's sums stop at its own position, also inside a tile of rows that
    reach further: an infinite value at position 4, inside the first tile of
    rows (0.0 * inf is NaN), shows any term taken too many; the same in every
    instruction set and thread count, forward and backward."""
    runs = runs_in_every_instruction_set(ATTENTION_RUN)
    out = runs["plain", 1][0]
    assert all("nan" not in a and "inf" not in a for row in out[:4] for a in row)
    assert any("nan" in a or "inf" in a for a in out[4])
    assert all(result == runs["plain", 1] for result in runs.values())


LONG_SUMS_RUN = """
import json, math
from microgpt.fused import Tensor, cross_entropy, linear
rows, nin, nout = 1030, 21, 103
x = Tensor([[math.sin(3 * t + 7 * j) for j in range(nin)] for t in range(rows)])
w = Tensor([[math.cos(5 * i + j) / 4 for j in range(nin)] for i in range(nout)])
y = linear(x, w)
cross_entropy(y, [t % nout for t in range(rows)]).backward()
print(json.dumps([[[float(a).hex() for a in row] for row in t.tolist()]
                  for t in (x, y.grad, w.grad)]))
"""


def test_weight_gradients_longer_than_a_block_of_terms_keep_their_order():
    """The kernels add a weight's gradient over 1,030 positions in blocks of
    terms (256 or 1,024 positions, by instruction set), and over 103 outputs
    in groups of 96 and tiles of 6 (103 is a multiple of neither), and 21
    columns (panels, single vectors and columns left over, by instruction
    set): each sum is still microgpt.py's,
    x[t][j] * dy[t][i] added from the last position to the first, from 0.0,
    in every instruction set and thread count."""
    runs = runs_in_every_instruction_set(LONG_SUMS_RUN)
    x, dy, dw = ([[float.fromhex(a) for a in row] for row in t] for t in runs["plain", 1])
    expected = []
    for i in range(len(dw)):
        row = []
        for j in range(len(x[0])):
            a = 0.0
            for t in reversed(range(len(x))):
                a += x[t][j] * dy[t][i]
            row.append(a.hex())
        expected.append(row)
    assert runs["plain", 1][2] == expected
    assert all(result == runs["plain", 1] for result in runs.values())


FORK_RUN = """
import os, sys
from microgpt.fused import Tensor, linear, set_threads
x = Tensor([[(i * 7 + j) % 13 / 13 for j in range(96)] for i in range(64)])
w = Tensor([[(i * 5 + j) % 11 / 11 for j in range(96)] for i in range(128)])
set_threads(2)
before = linear(x, w).tolist()
pid = os.fork()
if pid == 0:            # the workers are gone in the child: it starts its own
    os._exit(0 if linear(x, w).tolist() == before else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), linear(x, w).tolist() == before)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_threads_carry_on_after_fork():
    run = subprocess.run([sys.executable, "-c", FORK_RUN], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "True"]


def test_threads_are_checked_and_counted():
    try:
        assert fused.threads() == 1
        assert fused.set_threads(2) == 2 and fused.threads() == 2
        for bad, error in [(0, ValueError), (257, ValueError), (10 ** 30, ValueError),
                           (-1, ValueError), (2.0, TypeError), ("2", TypeError), (None, TypeError)]:
            with pytest.raises(error):
                fused.set_threads(bad)
        assert fused.threads() == 2
    finally:
        fused.set_threads(1)


def test_kernels_called_from_python_threads_at_once():
    """Python threads sharing the kernels' worker threads: each gets its own
    answer (the GIL lets one kernel run at a time)."""
    import threading
    rng = stdlib_random.Random(6)
    xs = [Tensor(matrix(rng, 48, 64)) for _ in range(4)]
    w = Tensor(matrix(rng, 96, 64))
    expected = [linear(x, w).tolist() for x in xs]
    results = {}

    def work(i):
        for _ in range(30):
            y = linear(xs[i], w)
            loss = cross_entropy(y, [i] * 48)
            loss.backward()
            results[i] = y.tolist()

    fused.set_threads(2)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        fused.set_threads(1)
    assert [results[i] for i in range(4)] == expected


def test_disable_avx2_means_the_portable_kernels():
    script = "from microgpt._fused import kernel_isa; print(kernel_isa())"
    for env, expected in [(dict(MICROGPT_DISABLE_AVX2="1"), {"portable", "plain"}),
                          (dict(MICROGPT_KERNELS="portable"), {"portable", "plain"}),
                          (dict(MICROGPT_KERNELS="plain"), {"plain"}),
                          (dict(MICROGPT_KERNELS="avx2"), {"avx2", "portable", "plain"})]:
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=dict(os.environ, **env))
        assert run.stdout.strip() in expected


BIG_EXACT = [(dict(n_embd=64, n_head=4, n_layer=2, block_size=64), 2),
             (dict(n_embd=128, n_head=4, n_layer=4, block_size=3), 2)]


@pytest.mark.parametrize("config, steps", BIG_EXACT, ids=["64x2x64", "128x4x3"])
def test_bigger_models_train_as_the_exact_path(config, steps):
    """The scalar graph (the --exact path) and the fast path, from the same
    draws, end two steps with the same parameters, bit for bit: the vector
    kernels' full tiles against microgpt.py's Values."""
    results = []
    for which in (0, 1):
        models = both_models(config, seed=5)
        model, docs, tokenizer = models[which], models[2], models[3]
        losses = list(train(model, docs, tokenizer, steps, **V1.training()))
        params = [p.data for p in model.params] if which == 0 else list(model.params)
        results.append(([x.hex() for x in losses], [x.hex() for x in params]))
        del models, model
    assert results[0] == results[1]


# -- Adam ------------------------------------------------------------------------------

def adam_cases():
    rng = stdlib_random.Random(8)
    grads = squares_pow_rounds_differently(5) + [0.0, -0.0, 1e-300, -1e-30, 1e-19, 3e150, 1e-3]
    grads += [rng.gauss(0, 10 ** rng.uniform(-8, 1)) for _ in range(2003)]
    return grads


def adam_every_lane_to_pow():
    """Gradients too small or too large for the vector kernels' checks of
    their squares: every lane is pow's, more than a chunk (512) of them."""
    rng = stdlib_random.Random(12)
    return [rng.choice((1, -1)) * rng.uniform(1, 9) * 10.0 ** rng.choice((-25, -30, 19, 40))
            for _ in range(1031)]


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
@pytest.mark.parametrize("cases", [adam_cases, adam_every_lane_to_pow])
def test_adam_equals_microgpt_py_adam(isa, cases):
    """p.grad ** 2 and v_hat ** 0.5 are pow()'s results, even where pow rounds
    otherwise than x * x or sqrt, or the vector kernels leave every lane to
    pow; in every kernel: the plain loop, vectors of two, AVX2, the best."""
    script = ("import json, sys, random\n"
              "from microgpt.fused import Parameters, Adam\n"
              "grads = json.loads(sys.stdin.read())\n"
              "params = Parameters({'w': (1, len(grads))}); rng = random.Random(9)\n"
              "data = params.data\n"
              "for i in range(len(grads)): data[i] = rng.gauss(0, 1)\n"
              "opt = Adam(params, 0.01)\n"
              "for step in range(3):\n"
              "    for i, g in enumerate(grads): params.grad[i] = g * (step + 1)\n"
              "    opt.step(step, 0.01 * (1 - step / 10))\n"
              "print(json.dumps([x.hex() for x in params.data]))")
    grads = cases()
    assert len(grads) % 8 == 7      # the vector kernels' last parameters are the portable loop's
    run = subprocess.run([sys.executable, "-c", script], input=json.dumps(grads),
                         capture_output=True, text=True,
                         env=dict(os.environ, MICROGPT_KERNELS=isa))
    assert run.returncode == 0, run.stderr
    rng = stdlib_random.Random(9)
    params = [Value(rng.gauss(0, 1)) for _ in grads]
    opt = ScalarAdam(params, 0.01)
    for step in range(3):
        for p, g in zip(params, grads):
            p.grad = g * (step + 1)
        opt.step(step, 0.01 * (1 - step / 10))
    assert json.loads(run.stdout) == [p.data.hex() for p in params]


# Gradients whose first m / (1 - beta1) is a power of two (where the doubles
# below are closer), zeros of either sign, and quotients near the ends of the
# range, where a remainder could underflow or overflow (the vector kernels
# divide a chunk of 512 parameters with such a moment, or such a square's, by
# the divider)
DIVISION_EDGES = [1.0, 2.0, 0.5, -4.0, 3.0, 0.0, -0.0, 1e-275, -1e-271, 2e-270, 5e-324,
                  1e150, -1e-160, 0.1, 0.3]
DIVISION_EDGES_IN_RANGE = [x for x in DIVISION_EDGES if x == 0 or 1e-100 < abs(x) < 1e100]


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
@pytest.mark.parametrize("beta1, beta2, first, steps", [
    (0.9, 0.95, 0, 3), (0.85, 0.99, 997, 3), (0.999999, 0.5, 0, 3), (0.0, 0.0, 5, 3),
    (-3.0, 0.95, 0, 1), (-2.0 ** 21, 0.95, 0, 3)],
    ids=["v1", "v2-late", "tiny-bias", "no-bias", "negative-zero", "bias-out-of-range"])
def test_adam_divides_by_its_bias_corrections_as_python_does(isa, beta1, beta2, first, steps):
    """m / (1 - beta1 ** (step + 1)) and v / (1 - beta2 ** (step + 1)) are the
    divisions' results in every lane, whatever the vector kernels compute
    them with: at power-of-two quotients, zeros, the ends of the range, bias
    corrections near 0 and near 1, and (a negative beta1) moments of -0.0
    and corrections that are negative or too large for the vector loops."""
    rng = stdlib_random.Random(11)
    grads = DIVISION_EDGES + [rng.gauss(0, 10 ** rng.uniform(-6, 2)) for _ in range(1000)]
    # (past the first chunk, only moments in range: the vector kernels' own quotients)
    grads += [rng.choice(DIVISION_EDGES_IN_RANGE) * rng.choice((1, 3, 0.75)) for _ in range(200)]
    grads = grads[:len(grads) // 8 * 8]     # every parameter in a vector of eight
    start = [rng.choice((0.0, -0.0, rng.gauss(0, 1))) for _ in grads]   # -0.0 shows m's sign
    script = ("import json, sys\n"
              "from microgpt.fused import Parameters, Adam\n"
              "grads, start, beta1, beta2, first, steps = json.loads(sys.stdin.read())\n"
              "params = Parameters({'w': (1, len(grads))})\n"
              "for i, x in enumerate(start): params.data[i] = float.fromhex(x)\n"
              "opt = Adam(params, 0.01, beta1, beta2)\n"
              "for step in range(first, first + steps):\n"
              "    for i, g in enumerate(grads): params.grad[i] = g / (step - first + 1)\n"
              "    opt.step(step, 0.01)\n"
              "print(json.dumps([x.hex() for x in params.data]))")
    run = subprocess.run([sys.executable, "-c", script],
                         input=json.dumps([grads, [x.hex() for x in start], beta1, beta2,
                                           first, steps]),
                         capture_output=True, text=True, env=dict(os.environ, MICROGPT_KERNELS=isa))
    assert run.returncode == 0, run.stderr
    params = [Value(x) for x in start]
    opt = ScalarAdam(params, 0.01, beta1, beta2)
    for step in range(first, first + steps):
        for p, g in zip(params, grads):
            p.grad = g / (step - first + 1)
        opt.step(step, 0.01)
    assert json.loads(run.stdout) == [p.data.hex() for p in params]


def assert_one_adam_step_from_zero_is_python_adam(isa, grads, beta1, beta2, step):
    """One Adam step at `step` on parameters from 0.0 (so that an update's last
    bit shows in them), in the kernels of isa, is microgpt.py's Adam's."""
    script = ("import json, sys\n"
              "from microgpt.fused import Parameters, Adam\n"
              "grads, beta1, beta2, step = json.loads(sys.stdin.read())\n"
              "params = Parameters({'w': (1, len(grads))})\n"
              "opt = Adam(params, 0.01, beta1, beta2)\n"
              "for i, g in enumerate(grads): params.grad[i] = g\n"
              "opt.step(step, 0.01)\n"
              "print(json.dumps([x.hex() for x in params.data]))")
    run = subprocess.run([sys.executable, "-c", script],
                         input=json.dumps([grads, beta1, beta2, step]),
                         capture_output=True, text=True, env=dict(os.environ, MICROGPT_KERNELS=isa))
    assert run.returncode == 0, run.stderr
    params = [Value(0.0) for _ in grads]
    opt = ScalarAdam(params, 0.01, beta1, beta2)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step(step, 0.01)
    assert json.loads(run.stdout) == [p.data.hex() for p in params]


def quotients_nearest_a_midpoint(b, count, rng):
    """Numbers a whose quotient a / b is as near as a quotient of doubles can
    be to halfway between two doubles (the cases where a quotient from
    b's reciprocal, a * (1 / b), rounds the wrong way): a / b = (M + n / B)
    times a power of two, B b's odd significand, M a midpoint's (odd, 54
    bits), n a small odd number."""
    B, scale = b.as_integer_ratio()             # b = B / scale: B odd, scale a power of two
    found = []
    while len(found) < count:
        n = rng.choice((1, -1, 3, -3, 5))
        M = (-n * pow(B, -1, 2 ** 53)) % 2 ** 53 + 2 ** 53    # B M + n = 0 (mod 2 ** 53)
        A = (B * M + n) >> 53
        if A < 2 ** 53:
            a = math.ldexp(A, rng.randint(-60, 40))
            found.append(rng.choice((a, -a)))
    return found


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
def test_adam_divides_quotients_nearest_a_midpoint_as_python_does(isa):
    """m_hat = m / (1 - beta1 ** (step + 1)) is the division's result where
    the quotient is nearest halfway between two doubles, the hardest
    quotients to round (beta1 = 0.5 makes m exactly half the gradient, and
    the correction 1 - 2 ** -21 at step 20)."""
    rng = stdlib_random.Random(14)
    bias1 = 1 - 0.5 ** 21
    moments = quotients_nearest_a_midpoint(bias1, 1024, rng)
    # the cases are hard: the reciprocal's quotient rounds otherwise in many
    assert sum(m * (1 / bias1) != m / bias1 for m in moments) > 100
    assert_one_adam_step_from_zero_is_python_adam(isa, [2 * m for m in moments], 0.5, 0.95, 20)


def quotient_from_reciprocal(a, b):
    """a / b as the vector kernels compute it for moments in their range:
    a * (1 / b), corrected twice by the remainder, each step one fused
    multiply-add (csrc/adam_avx2.c), emulated exactly."""
    def fma(x, y, z):                   # x * y + z, rounded once
        return float(Fraction(x) * Fraction(y) + Fraction(z))
    y = 1 / b
    q = a * y
    for _ in range(2):
        q = fma(-fma(q, b, -a), y, q)
    return q


@functools.cache
def grads_with_moments_below_the_vector_range():
    """Gradients from a normal distribution, and in every 84 of them one whose
    first-step moments are so small (near 2 ** -1022) that the remainders of
    the vector kernels' quotients underflow and the update their quotients
    (emulated here) would make is not the division's."""
    rng = stdlib_random.Random(15)
    bias1, bias2 = 1 - 0.9, 1 - 0.95

    def update(g, divide):              # the first step's update of a parameter at 0.0
        m, v = 0.9 * 0.0 + (1 - 0.9) * g, 0.95 * 0.0 + (1 - 0.95) * g ** 2
        return 0.0 - 0.01 * divide(m, bias1) / (divide(v, bias2) ** 0.5 + 1e-8)

    grads = [rng.gauss(0, 1) for _ in range(24 * 84)]
    for k in range(24):
        while True:
            g = rng.choice((1, -1)) * math.ldexp(rng.randrange(2 ** 52, 2 ** 53),
                                                 rng.randint(-1070, -1018) - 52)
            if update(g, quotient_from_reciprocal) != update(g, operator.truediv):
                break
        grads[k * 84 + rng.randrange(84)] = g
    return grads


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
def test_adam_divides_moments_below_the_vector_range_as_python_does(isa):
    """Moments below the range of the vector kernels' quotients, in every
    chunk the vector loops take: the division's results all the same."""
    assert_one_adam_step_from_zero_is_python_adam(
        isa, grads_with_moments_below_the_vector_range(), 0.9, 0.95, 0)


@pytest.mark.parametrize("isa", ["best", "avx2", "portable", "plain"])
def test_adam_raises_where_microgpt_py_would(isa):
    """A gradient whose square overflows: microgpt.py's Adam raises
    OverflowError at p.grad ** 2, and so does this one, in every chunk and
    instruction set; a negative second moment (written into v) gives the
    ValueError of Value's fractional power of a negative number."""
    script = ("import json, sys\n"
              "from microgpt.fused import Parameters, Adam\n"
              "grads, where, negative_v = json.loads(sys.stdin.read())\n"
              "params = Parameters({'w': (1, len(grads))})\n"
              "opt = Adam(params, 0.01, 0.9, 0.95)\n"
              "for i, g in enumerate(grads): params.grad[i] = g\n"
              "if negative_v: opt.v[where] = -1.0\n"
              "try:\n"
              "    opt.step(0, 0.01)\n"
              "except Exception as e:\n"
              "    print(type(e).__name__)\n")
    rng = stdlib_random.Random(21)
    for where in (3, 700, 1999):
        grads = [rng.gauss(0, 1) for _ in range(2000)]
        huge = grads[:]
        huge[where] = rng.choice((1, -1)) * 1e200
        params = [Value(0.0) for _ in huge]
        for p, g in zip(params, huge):
            p.grad = g
        with pytest.raises(OverflowError):
            ScalarAdam(params, 0.01, 0.9, 0.95).step(0, 0.01)
        for grads, negative_v, expected in ((huge, False, "OverflowError"),
                                            (grads, True, "ValueError")):
            run = subprocess.run([sys.executable, "-c", script],
                                 input=json.dumps([grads, where, negative_v]),
                                 capture_output=True, text=True,
                                 env=dict(os.environ, MICROGPT_KERNELS=isa))
            assert run.returncode == 0 and run.stdout.strip() == expected, run.stderr


# -- the objects -----------------------------------------------------------------------

def test_parameters_are_one_array_seen_by_numpy_without_copies():
    np = pytest.importorskip("numpy")
    params = Parameters({'a': (2, 3), 'b': (4, 1)})
    flat = np.asarray(params.data)
    assert flat.shape == (10,) and flat.dtype == np.float64 and not flat.any()
    a = np.asarray(params.state_dict['a'].data)
    assert a.shape == (2, 3)
    a[1, 2] = 7.5                       # one memory: the views see each other's writes
    assert flat[5] == 7.5 and params.state_dict['a'].tolist()[1][2] == 7.5
    np.asarray(params.grad)[6] = 2.0
    assert np.asarray(params.state_dict['b'].grad)[0, 0] == 2.0
    with pytest.raises(ValueError):
        Parameters({'bad': (0, 3)})


def test_tensor_api_and_errors():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.shape == (2, 2) and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert repr(t) == "Tensor(shape=(2, 2))"
    nll = lambda row, i: -math.log(math.exp(row[i]) / sum(math.exp(x) for x in row))
    assert cross_entropy(t, [0, 1]).data == pytest.approx((nll([1, 2], 0) + nll([3, 4], 1)) / 2)
    with pytest.raises(ValueError):
        t.backward()                    # not a single number
    with pytest.raises(ValueError):
        Tensor([[1.0], [2.0, 3.0]])
    with pytest.raises(ValueError):
        add(t, Tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError):
        linear(t, Tensor([[1.0, 2.0, 3.0]]))
    with pytest.raises(IndexError):
        embedding(t, [2])
    with pytest.raises(IndexError):
        cross_entropy(t, [0, 2])
    with pytest.raises(ValueError):
        attention(t, [t], [t], 3)
    with pytest.raises(ValueError):
        attention(t, [], [], 1)


def test_the_cli_path_does_not_import_numpy():
    check = ("import sys, microgpt.cli, microgpt.fused\n"
             "from microgpt.cli import main\n"
             "main(['--input', sys.argv[1], '--steps', '2', '--samples', '1'])\n"
             "assert 'numpy' not in sys.modules, 'numpy was imported'\n")
    words = os.path.join(os.path.dirname(__file__), "conftest.py")   # any text file will do
    run = subprocess.run([sys.executable, "-c", check, words], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_memory_kept_for_reuse_is_released_on_request():
    """Freed tensors leave their memory for the next of their size; taken
    back, a gradient starts at zero again, and release_kept_memory frees it."""
    fused.release_kept_memory()
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    y = relu(x)
    cross_entropy(y, [0, 1]).backward()
    del y
    assert fused.release_kept_memory() > 0
    assert fused.release_kept_memory() == 0
    for _ in range(3):
        y = relu(x)
        loss = cross_entropy(y, [1, 0])
        loss.backward()
        expected = [list(row) for row in y.grad.tolist()]
        del loss, y
        z = relu(x)
        cross_entropy(z, [1, 0]).backward()
        assert z.grad.tolist() == expected      # from zero, not from the freed one's


def test_gradients_start_at_zero_in_memory_left_by_other_tensors():
    """backward() zeroes each gradient just before its first sum: the NaNs of
    freed tensors, whose memory the gradients take back, never show through
    (a tensor used twice, one in the middle, the leaves, one never reached)."""
    rng = stdlib_random.Random(11)
    w0, x0 = matrix(rng, 3, 3), matrix(rng, 2, 3)

    def gradients():
        x, w = Tensor(x0), Tensor(w0)
        h = linear(x, w)
        s = add(relu(h), h)                     # h reaches the loss twice
        unused = relu(x)
        cross_entropy(s, [0, 2]).backward()
        return [hexes(t.grad.tolist()) for t in (x, w, h, s, unused)]

    fused.release_kept_memory()
    expected = gradients()
    xs, ws = values(x0), values(w0)
    hs = [scalar.linear(row, ws) for row in xs]
    losses = [-scalar.softmax([a.relu() + a for a in row])[t].log() for row, t in zip(hs, [0, 2])]
    ((1 / 2) * sum(losses)).backward()
    for got, oracle in [(expected[0], xs), (expected[1], ws)]:
        assert [[float.fromhex(g) for g in row] for row in got] == \
            [[pytest.approx(v.grad, rel=1e-12) for v in row] for row in oracle]
    assert expected[4] == hexes([[0.0] * 3] * 2)
    nan = float("nan")
    litter = [Tensor([[nan] * 3] * n) for n in (1, 2, 3) for _ in range(8)]
    litter += [Tensor([[nan]]) for _ in range(8)]
    del litter                                  # their memory is kept, NaNs and all
    assert gradients() == expected
