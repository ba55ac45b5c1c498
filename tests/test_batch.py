"""Mini-batches: a step on the mean loss of B documents.

The oracle is the scalar graph of microgpt.model.GPT.batch_loss, microgpt.py's
forward pass over each document and (1 / B) * sum(doc_losses): the fused
path's batched step (every document's positions in one call per operation)
must end with the same parameters, bit for bit, on one thread or several;
B = 1 is microgpt.py's step.
"""
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import microgpt
from microgpt import checkpoint, random
from microgpt.data import Tokenizer
from microgpt.engine import Value as PureValue
from microgpt.model import GPT
from microgpt.recipe import V1, V2
from microgpt.train import train

COMPILED = microgpt.BACKEND == "compiled"
compiled_only = pytest.mark.skipif(not COMPILED, reason="the fused path is compiled")
if COMPILED:
    from microgpt import fused
    from microgpt.fused import FusedGPT

# Names short and long: "elizabeth", "charlotte" and "isabella" are longer than
# the blocks of 3 and 6 below, "x" is a document of one character.
WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia",
         "harper", "evelyn", "zoë", "josé", "łukasz", "x", "yy", "abigail", "emily",
         "elizabeth", "mila", "ella", "avery", "sofia", "camila", "aria", "scarlett"]
V2_MODEL = dict(activation="relu", init_std=0.08, zero_init_proj=False)


def hexes(values):
    return [float(x).hex() for x in values]


def trained(model_class, recipe, steps, seed=3, **kwargs):
    """Losses and parameters (as hex) after `steps` steps of recipe on WORDS."""
    rng = random.Random(seed)
    docs = list(WORDS)
    rng.shuffle(docs)
    tokenizer = Tokenizer(docs)
    model = model_class(recipe.config(tokenizer.vocab_size), rng, **kwargs)
    losses = list(train(model, docs, tokenizer, steps, **recipe.training()))
    return hexes(losses), hexes(model.values())


CASES = {   # recipe, steps
    "v1": (V1, 4),
    "v1 two layers, block 3": (V1.replace(n_embd=8, n_head=2, n_layer=2, block_size=3), 4),
    "v2": (V2, 4),
    "v2 two layers, block 6": (V2.replace(n_embd=12, n_head=3, n_layer=2, block_size=6), 3),
}


@compiled_only
@pytest.mark.parametrize("batch_size", [2, 3, 7])
@pytest.mark.parametrize("case", CASES)
def test_a_batched_step_is_the_scalar_graphs_bit_for_bit(case, batch_size):
    recipe, steps = CASES[case]
    recipe = recipe.replace(batch_size=batch_size)
    assert trained(FusedGPT, recipe, steps) == trained(GPT, recipe, steps)


@compiled_only
def test_a_batched_step_on_two_threads_is_the_scalar_graphs():
    # 64 wide and 7 documents a step: rows x 64 x 64 linear layers big enough
    # to be split between the threads (csrc/threads.c)
    recipe = V2.replace(n_embd=64, n_head=4, n_layer=2, batch_size=7)
    expected = trained(GPT, recipe, 2)
    try:
        assert fused.set_threads(2) == 2
        assert trained(FusedGPT, recipe, 2) == expected
    finally:
        fused.set_threads(1)


def test_the_pure_python_engine_takes_the_same_batched_steps():
    recipe = V1.replace(n_embd=8, n_head=2, batch_size=3)
    assert trained(GPT, recipe, 2, Value=PureValue) == trained(GPT, recipe, 2)


def test_batch_size_1_is_microgpt_py_step_not_a_mean_of_one():
    # the loss of one document is microgpt.py's graph, without (1 / 1) * sum([loss])
    rng = random.Random(1)
    tokenizer = Tokenizer(WORDS)
    model = GPT(V1.config(tokenizer.vocab_size), rng)
    calls = []
    model.batch_loss = lambda batch: calls.append(batch)
    list(train(model, WORDS, tokenizer, 2, **V1.training()))
    assert calls == []


def test_the_steps_take_the_documents_in_order_wrapping_around():
    seen = []

    class Recorder:
        def batch_loss(self, batch):
            seen.append(batch)
            return Loss()

        def optimizer(self, *args):
            return Optimizer()

    class Loss:
        data = 0.0

        def backward(self):
            pass

    class Optimizer:
        def step(self, step, lr_t):
            pass

    tokenizer = Tokenizer(["ab", "c"])
    docs = ["a", "b", "c", "ab", "ba"]
    list(train(Recorder(), docs, tokenizer, 3, batch_size=4))      # 12 documents of 5
    expected = [docs[i % 5] for i in range(12)]
    assert [tokenizer.decode(tokens[1:-1]) for batch in seen for tokens in batch] == expected
    assert [len(batch) for batch in seen] == [4, 4, 4]


# -- the fused operations' lengths -------------------------------------------------

@compiled_only
def test_documents_attend_only_to_their_own_positions():
    """attention with lengths equals attention over each document alone, and
    cross_entropy with lengths the mean of the documents' losses."""
    from microgpt.fused import Tensor, attention, cross_entropy
    rng = random.Random(5)
    lengths, cols, n_head, vocab = [3, 1, 4], 8, 2, 5
    rows = [[rng.gauss(0, 1) for _ in range(cols)] for _ in range(sum(lengths))]
    q, k, v = Tensor(rows), Tensor(rows[::-1]), Tensor([[x * 0.5 for x in r] for r in rows])
    together = attention(q, [k], [v], n_head, lengths).tolist()
    alone, start = [], 0
    for m in lengths:
        part = [Tensor(t.tolist()[start:start + m]) for t in (q, k, v)]
        alone += attention(part[0], [part[1]], [part[2]], n_head).tolist()
        start += m
    assert [hexes(r) for r in together] == [hexes(r) for r in alone]

    logits = Tensor([[rng.gauss(0, 1) for _ in range(vocab)] for _ in range(sum(lengths))])
    targets = [rng.randrange(vocab) for _ in range(sum(lengths))]
    total, start = 0.0, 0
    for m in lengths:
        part = Tensor(logits.tolist()[start:start + m])
        total = total + cross_entropy(part, targets[start:start + m]).data
        start += m
    assert cross_entropy(logits, targets, lengths).data.hex() == (total * (1 / 3)).hex()


@compiled_only
def test_bad_lengths_are_refused():
    from microgpt.fused import Tensor, attention, cross_entropy
    x = Tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    for bad in ([], [1, 1], [2, 2], [0, 3], [-1, 4], [4, -1], [3, 0], [2 ** 62, 2 ** 62]):
        with pytest.raises(ValueError, match="lengths|no document"):
            attention(x, [x], [x], 1, bad)
        with pytest.raises(ValueError, match="lengths|no document"):
            cross_entropy(x, [0, 1, 0], bad)
    for bad in (["1", 2], [1.0, 2], 3):
        with pytest.raises(TypeError):
            attention(x, [x], [x], 1, bad)
    with pytest.raises(OverflowError):
        cross_entropy(x, [0, 1, 0], [2 ** 80, 3])
    two = Tensor([[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(ValueError, match="cache"):   # a cache of more than the batch's rows
        attention(two, [x], [x], 1, [1, 1])


# -- microgpt-train --batch-size -----------------------------------------------------

TRAIN = str(Path(sys.executable).parent / "microgpt-train")


def train_cli(*args):
    return subprocess.run([TRAIN, *args], capture_output=True, text=True)


@pytest.mark.parametrize("value, message", [
    ("0", "must be a positive integer, not 0"), ("-3", "must be a positive integer, not -3"),
    ("1.5", "not an integer"), ("x", "not an integer")])
def test_a_bad_batch_size_is_one_line(value, message):
    result = train_cli("--batch-size", value, "--steps", "1")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


@compiled_only
def test_fast_and_exact_print_the_same_batched_run():
    args = ["--batch-size", "5", "--steps", "6", "--samples", "3", "--n-embd", "8",
            "--n-head", "2"]
    fast, exact = train_cli(*args), train_cli(*args, "--exact")
    assert fast.returncode == exact.returncode == 0, fast.stderr + exact.stderr
    assert fast.stdout == exact.stdout and "step    6 /    6" in fast.stdout


@pytest.mark.parametrize("exact", [False, True] if COMPILED else [True])
def test_a_resumed_batched_run_is_the_run_that_never_stopped(tmp_path, exact):
    path = str(tmp_path / "m.safetensors")
    small = ["--batch-size", "4", "--n-embd", "8", "--n-head", "2", "--samples", "2"]
    path_flag = ["--exact"] if exact else []
    whole = train_cli(*small, "--steps", "6", "--save", path, *path_flag)
    assert whole.returncode == 0, whole.stderr
    assert checkpoint.load(path).recipe.batch_size == 4
    half = microgpt.Run(None, "v1", exact=exact, n_embd=8, n_head=2, num_steps=6, batch_size=4,
                        num_samples=2)
    for _ in zip(range(3), half):
        pass
    half.save(path)
    rest = train_cli("--resume", path, *path_flag)
    assert rest.returncode == 0, rest.stderr
    lines = whole.stdout.splitlines()
    assert rest.stdout.splitlines() == lines[6:] and lines[6].startswith("step    4 /    6")
    refused = train_cli("--resume", path, "--batch-size", "2")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (f"microgpt-train: error: --batch-size 2 contradicts {path}, "
                              "whose run has 4; a resumed run keeps its settings\n")
    assert train_cli("--resume", path, "--batch-size", "4").stdout == rest.stdout


def test_a_checkpoint_from_before_batches_is_of_batch_size_1(tmp_path):
    np = pytest.importorskip("numpy")
    from safetensors.numpy import load as load_tensors
    from safetensors.numpy import save as save_tensors
    run = microgpt.Run(None, "v1")          # microgpt.py's recipe itself, by its name
    good = checkpoint.to_bytes(run.checkpoint())
    header = json.loads(good[8:8 + struct.unpack("<Q", good[:8])[0]])
    metadata = dict(header["__metadata__"])
    del metadata["batch_size"]
    tensors = {k: np.array(v) for k, v in load_tensors(good).items()}
    (tmp_path / "old.safetensors").write_bytes(save_tensors(tensors, metadata=metadata))
    loaded = checkpoint.load(tmp_path / "old.safetensors")
    assert loaded.recipe.batch_size == 1 and loaded.recipe == run.recipe
    assert loaded.recipe.summary == run.recipe.summary


def test_run_takes_batch_size_and_checks_it():
    run = microgpt.Run(None, "v2", n_embd=8, n_head=2, num_steps=2, batch_size=40000)
    assert run.recipe.batch_size == 40000 > len(run.docs)        # it wraps around
    for bad in (0, -1, 1.0, True, "2"):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            microgpt.Run(None, "v2", batch_size=bad)
