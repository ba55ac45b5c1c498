"""The model and the training loop against microgpt.py.

The oracle for the default run is microgpt.py's recorded output
(../shared/reference): every loss and every final parameter, bit for bit.
For other hyperparameters the oracle is the pure-Python Value with the
standard library's random, which follow microgpt.py literally.
"""
import itertools
import random as stdlib_random

import pytest

import microgpt
from microgpt import random
from microgpt.data import Tokenizer, load_docs
from microgpt.engine import Value as PureValue
from microgpt.model import GPT, Config
from microgpt.train import Adam, sample, train

compiled_only = pytest.mark.skipif(
    microgpt.BACKEND != "compiled",
    reason="needs the compiled backend next to the pure-Python one")


def microgpt_run(docs, rng, Value=microgpt.Value, steps=500, take=None, lr=0.01,
                 samples=20, temperature=0.5, **sizes):
    """microgpt.py's program: shuffle, model, `take` of `steps` training steps, samples."""
    docs = list(docs)
    rng.shuffle(docs)
    tokenizer = Tokenizer(docs)
    model = GPT(Config(tokenizer.vocab_size, **sizes), rng, Value=Value)
    losses = list(itertools.islice(train(model, docs, tokenizer, steps, lr), take))
    names = [sample(model, tokenizer, rng, temperature) for _ in range(samples)] if take is None else []
    return losses, [p.data for p in model.params], names


def hexes(xs):
    return [float(x).hex() for x in xs]


# -- microgpt.py's recorded run -------------------------------------------------

@compiled_only
def test_default_run_equals_microgpt_py_bit_for_bit(names_txt, reference):
    losses, params, names = microgpt_run(load_docs(names_txt), random.Random(42))
    expected = reference["json"]
    assert len(losses) == 500 and len(params) == 4064
    assert hexes(losses) == hexes(float(s) for s in expected["losses"])
    assert hexes(params) == hexes(float(s) for s in expected["final_params"])
    assert names == expected["samples"]


def test_first_steps_equal_microgpt_py_on_every_backend(names_txt, reference):
    # the first 25 steps of the 500-step schedule; all 500 take minutes in pure Python
    losses, _, _ = microgpt_run(load_docs(names_txt), random.Random(42), take=25)
    assert hexes(losses) == hexes(float(s) for s in reference["json"]["losses"][:25])


# -- other hyperparameters: compiled against pure Python ------------------------------

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia",
         "harper", "evelyn", "zoë", "renée", "josé", "łukasz", "søren", "ævar", "naïve",
         "chloé", "anaïs", "björk", "ødegaard", "straße", "x", "yy"]


@compiled_only
@pytest.mark.parametrize("config", [
    dict(n_embd=8, n_head=2, n_layer=2, block_size=4, steps=12, lr=0.02),
    dict(n_embd=12, n_head=3, n_layer=1, block_size=12, steps=8, lr=0.005),
    dict(n_embd=32, n_head=8, n_layer=1, block_size=5, steps=5, temperature=1.5),
    dict(n_embd=6, n_head=1, n_layer=3, block_size=2, steps=10, lr=0.1, temperature=0.1),
    dict(steps=0),
], ids=["two-layers", "long-context", "wide", "three-layers", "untrained"])
def test_other_configurations_equal_the_pure_python_oracle(config):
    ours = microgpt_run(WORDS, random.Random(7), samples=5, **config)
    oracle = microgpt_run(WORDS, stdlib_random.Random(7), Value=PureValue, samples=5, **config)
    assert hexes(ours[0]) == hexes(oracle[0])       # every loss
    assert hexes(ours[1]) == hexes(oracle[1])       # every final parameter
    assert ours[2] == oracle[2]                     # the samples


# -- the pieces ------------------------------------------------------------------------

def test_parameters_in_microgpt_py_order():
    rng, oracle = random.Random(3), stdlib_random.Random(3)
    model = GPT(Config(vocab_size=5, n_embd=4, n_head=2, n_layer=2, block_size=3), rng)
    assert list(model.state_dict) == [
        'wte', 'wpe', 'lm_head',
        'layer0.attn_wq', 'layer0.attn_wk', 'layer0.attn_wv', 'layer0.attn_wo',
        'layer0.mlp_fc1', 'layer0.mlp_fc2',
        'layer1.attn_wq', 'layer1.attn_wk', 'layer1.attn_wv', 'layer1.attn_wo',
        'layer1.mlp_fc1', 'layer1.mlp_fc2']
    shapes = [(len(m), len(m[0])) for m in model.state_dict.values()]
    assert shapes == [(5, 4), (3, 4), (5, 4)] + [(4, 4)] * 4 + [(16, 4), (4, 16)] + [(4, 4)] * 4 + [(16, 4), (4, 16)]
    stds = {'attn_wo': 0, 'mlp_fc2': 0}
    expected = []
    for name, mat in model.state_dict.items():
        std = stds.get(name.split('.')[-1], 0.02)
        expected += [oracle.gauss(0, std) for row in mat for _ in row]  # std 0 still draws
    assert hexes(p.data for p in model.params) == hexes(expected)
    assert rng.getstate() == oracle.getstate()


def test_config_checks_the_heads():
    with pytest.raises(ValueError, match="divisible"):
        Config(vocab_size=27, n_embd=10, n_head=4)
    assert Config(27).head_dim == 4


def test_adam_is_microgpt_py_adam():
    params = [PureValue(x) for x in (0.5, -1.0, 2.0)]
    grads = [0.25, -3.0, 0.0]
    for p, g in zip(params, grads):
        p.grad = g
    Adam(params, learning_rate=0.01).step(0, 0.005)
    for p, x, g in zip(params, (0.5, -1.0, 2.0), grads):
        m = 0.9 * 0.0 + (1 - 0.9) * g
        v = 0.95 * 0.0 + (1 - 0.95) * g ** 2
        m_hat = m / (1 - 0.9 ** 1)
        v_hat = v / (1 - 0.95 ** 1)
        assert p.data.hex() == (x - 0.005 * m_hat / (v_hat ** 0.5 + 1e-8)).hex()
        assert p.grad == 0
