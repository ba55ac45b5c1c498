"""The model and the training loop against microgpt.py.

The oracle for the default runs of both revisions (recipes v1 and v2) is
microgpt.py's recorded output (tests/data): every loss and every
final parameter, bit for bit. For other hyperparameters the oracle is the
pure-Python Value with the standard library's random, which follow
microgpt.py literally.
"""
import itertools
import random as stdlib_random

import pytest

import microgpt
from microgpt import random
from microgpt.data import Tokenizer, load_docs
from microgpt.engine import Value as PureValue
from microgpt.model import GPT, Config
from microgpt.recipe import RECIPES, V1, V2
from microgpt.train import Adam, cosine_decay, linear_decay, sample, train

compiled_only = pytest.mark.skipif(
    microgpt.BACKEND != "compiled",
    reason="needs the compiled backend next to the pure-Python one")


def microgpt_run(docs, rng, recipe=V1, Value=microgpt.Value, take=None, fused=False, **changes):
    """microgpt.py's program as the recipe (with changes) has it, on the
    seeded generator rng: shuffle, model, `take` of its training steps, samples."""
    recipe = recipe.replace(**changes)
    docs = list(docs)
    rng.shuffle(docs)
    tokenizer = Tokenizer(docs)
    config = recipe.config(tokenizer.vocab_size)
    if fused:
        from microgpt.fused import FusedGPT
        model = FusedGPT(config, rng)
    else:
        model = GPT(config, rng, Value=Value)
    steps = train(model, docs, tokenizer, recipe.num_steps, **recipe.training())
    losses = list(itertools.islice(steps, take))
    names = [sample(model, tokenizer, rng, recipe.temperature)
             for _ in range(recipe.num_samples)] if take is None else []
    params = list(model.params) if fused else [p.data for p in model.params]
    return losses, params, names


def hexes(xs):
    return [float(x).hex() for x in xs]


# -- microgpt.py's recorded run -------------------------------------------------

@compiled_only
@pytest.mark.parametrize("path", [pytest.param("exact", marks=pytest.mark.slow), "fused"])
@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_default_run_equals_microgpt_py_bit_for_bit(names_txt, references, recipe, path):
    losses, params, names = microgpt_run(load_docs(names_txt), random.Random(42),
                                         RECIPES[recipe], fused=path == "fused")
    expected = references[recipe]["json"]
    assert len(losses) == RECIPES[recipe].num_steps == len(expected["losses"])
    assert len(params) == {"v1": 4064, "v2": 4192}[recipe]
    assert hexes(losses) == hexes(float(s) for s in expected["losses"])
    assert hexes(params) == hexes(float(s) for s in expected["final_params"])
    assert names == expected["samples"]


@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_first_steps_equal_microgpt_py_on_every_backend(names_txt, references, recipe):
    # the first 25 steps of the run's schedule; all of them take minutes in pure Python
    losses, _, _ = microgpt_run(load_docs(names_txt), random.Random(42), RECIPES[recipe], take=25)
    assert hexes(losses) == hexes(float(s) for s in references[recipe]["json"]["losses"][:25])


# -- other hyperparameters: compiled against pure Python ------------------------------

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia",
         "harper", "evelyn", "zoë", "renée", "josé", "łukasz", "søren", "ævar", "naïve",
         "chloé", "anaïs", "björk", "ødegaard", "straße", "x", "yy"]


@compiled_only
@pytest.mark.parametrize("recipe, config", [
    (V1, dict(n_embd=8, n_head=2, n_layer=2, block_size=4, num_steps=12, learning_rate=0.02)),
    (V1, dict(n_embd=12, n_head=3, n_layer=1, block_size=12, num_steps=8, learning_rate=0.005)),
    (V1, dict(n_embd=32, n_head=8, n_layer=1, block_size=5, num_steps=5, temperature=1.5)),
    (V1, dict(n_embd=6, n_head=1, n_layer=3, block_size=2, num_steps=10, learning_rate=0.1,
              temperature=0.1)),
    (V1, dict(num_steps=0)),
    (V2, dict(n_embd=8, n_head=2, n_layer=2, block_size=4, num_steps=12)),
    (V2, dict(n_embd=12, n_head=3, block_size=24, num_steps=8, temperature=0.7)),
    (V1, dict(num_steps=6, activation="relu", lr_schedule="linear", beta1=0.0, beta2=0.5,
              eps_adam=1e-3, init_std=0.3, zero_init_proj=False)),
], ids=["two-layers", "long-context", "wide", "three-layers", "untrained", "v2-two-layers",
        "v2-long-context", "v1-mixed"])
def test_other_configurations_equal_the_pure_python_oracle(recipe, config):
    ours = microgpt_run(WORDS, random.Random(7), recipe, num_samples=5, **config)
    oracle = microgpt_run(WORDS, stdlib_random.Random(7), recipe, Value=PureValue,
                          num_samples=5, **config)
    assert hexes(ours[0]) == hexes(oracle[0])       # every loss
    assert hexes(ours[1]) == hexes(oracle[1])       # every final parameter
    assert ours[2] == oracle[2]                     # the samples


# -- the pieces ------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_parameters_in_microgpt_py_order(recipe):
    rng, oracle = random.Random(3), stdlib_random.Random(3)
    config = RECIPES[recipe].replace(n_embd=4, n_head=2, n_layer=2, block_size=3).config(5)
    model = GPT(config, rng)
    assert list(model.state_dict) == [
        'wte', 'wpe', 'lm_head',
        'layer0.attn_wq', 'layer0.attn_wk', 'layer0.attn_wv', 'layer0.attn_wo',
        'layer0.mlp_fc1', 'layer0.mlp_fc2',
        'layer1.attn_wq', 'layer1.attn_wk', 'layer1.attn_wv', 'layer1.attn_wo',
        'layer1.mlp_fc1', 'layer1.mlp_fc2']
    shapes = [(len(m), len(m[0])) for m in model.state_dict.values()]
    assert shapes == [(5, 4), (3, 4), (5, 4)] + [(4, 4)] * 4 + [(16, 4), (4, 16)] + [(4, 4)] * 4 + [(16, 4), (4, 16)]
    # microgpt.py's first revision: std 0.02, attn_wo and mlp_fc2 at 0; its final: 0.08 for all
    stds = {'attn_wo': 0, 'mlp_fc2': 0} if recipe == "v1" else {}
    expected = []
    for name, mat in model.state_dict.items():
        std = stds.get(name.split('.')[-1], {"v1": 0.02, "v2": 0.08}[recipe])
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


@pytest.mark.parametrize("num_steps", [1, 7, 500, 1000])
def test_learning_rate_schedules_are_microgpt_py_expressions(num_steps):
    import math
    for step in range(num_steps):
        # the first revision's line, then the final one's
        assert cosine_decay(0.01, step, num_steps).hex() == \
            (0.01 * 0.5 * (1 + math.cos(math.pi * step / num_steps))).hex()
        assert linear_decay(0.01, step, num_steps).hex() == (0.01 * (1 - step / num_steps)).hex()


def test_the_recipes_are_the_two_revisions():
    # the differences tests/data/README.md lists, setting by setting
    differ = {field for field in V1.FIELDS if getattr(V1, field) != getattr(V2, field)}
    assert differ == {"block_size", "init_std", "zero_init_proj", "activation", "num_steps",
                      "beta1", "beta2", "lr_schedule", "step_end", "inference_header"}
    assert (V1.block_size, V2.block_size, V1.num_steps, V2.num_steps) == (8, 16, 500, 1000)
    assert (V1.beta1, V1.beta2, V2.beta1, V2.beta2) == (0.9, 0.95, 0.85, 0.99)
    assert (V1.init_std, V1.zero_init_proj, V2.init_std, V2.zero_init_proj) == (0.02, True, 0.08, False)
    assert (V1.activation, V2.activation, V1.lr_schedule, V2.lr_schedule) == \
        ("relu2", "relu", "cosine", "linear")
    assert (V1.step_end, V2.step_end) == ("\n", "\r")
    assert V2.inference_header == "--- inference (new, hallucinated names) ---"


def test_a_recipe_is_built_on_with_replace():
    wider = V2.replace(n_embd=32, n_layer=2)
    assert (wider.n_embd, wider.n_layer, wider.block_size, wider.activation) == (32, 2, 16, "relu")
    assert wider.name == "v2+" and wider != V2 and V2.n_embd == 16
    assert V2.replace() is V2 and V2.replace(n_embd=16) == V2
    config = wider.config(27)
    assert (config.vocab_size, config.n_embd, config.init_std, config.activation) == \
        (27, 32, 0.08, "relu")
    assert wider.training() == dict(learning_rate=0.01, beta1=0.85, beta2=0.99, eps_adam=1e-8,
                                    lr_schedule="linear", batch_size=1)


@pytest.mark.parametrize("changes, message", [
    (dict(beta1=1.0), "beta1 must be at least 0 and less than 1"),
    (dict(beta2=-0.1), "beta2 must be at least 0 and less than 1"),
    (dict(eps_adam=0.0), "eps_adam must be a positive finite number"),
    (dict(init_std=-1), "init_std must be a finite number, 0 or more"),
    (dict(init_std=10 ** 400), "init_std must be a finite number, 0 or more"),
    (dict(activation="gelu"), "activation must be one of"),
    (dict(lr_schedule="step"), "lr_schedule must be one of"),
    (dict(n_embd=10), "n_embd must be divisible by n_head"),
    (dict(n_layer=True), "n_layer must be a positive integer"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(learning_rate=float("nan")), "learning_rate must be a positive finite number"),
])
def test_a_recipe_refuses_what_microgpt_py_cannot_run(changes, message):
    with pytest.raises(ValueError, match=message):
        V1.replace(**changes)


def test_a_recipe_names_unknown_settings():
    with pytest.raises(TypeError, match="unknown \\['lr'\\]"):
        V1.replace(lr=0.1)
    with pytest.raises(ValueError, match="activation must be one of"):
        Config(27, activation="swish")
