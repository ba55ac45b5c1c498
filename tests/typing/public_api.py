"""microgpt's public API as a typed script uses it: checked by
``mypy --strict`` (tests/test_typing.py), where each assert_type says what
the stubs and annotations must give, and run as a program, where the same
lines must hold at run time."""
import sys
import tempfile
from pathlib import Path
from typing import assert_type

import numpy as np
from numpy.typing import NDArray

import microgpt
from microgpt import Run, Value, fused, load, random
from microgpt.model import Config
from microgpt.run import Model, Step

NAMES = "emma\nolivia\nava\nisabella\nsophia\nmia\namelia\nharper\n"


def values() -> float:
    a, b = Value(2.0), Value(3)
    c = a * b + a ** 2 - b / a + a ** -1
    d = 1 + a + (2 - a) + 3 * a + 4 / a + (-a)      # the reflected operators
    e = (a.log() + b.exp() + (a - 5).relu()) * c + d
    e.backward()
    assert_type(e, Value)
    assert_type(a.data, float)
    assert_type(a.grad, float)
    a.data = 1.5
    a.grad = 0.0
    node = Value(1.0, (a, b), (0.5, 2))
    assert node._children == (a, b)
    return e.data


def draws() -> list[float]:
    random.seed(42)
    state = random.getstate()
    x = random.random()
    assert_type(x, float)
    g = random.gauss(0, 1)
    assert_type(g, float)
    picks = random.choices(["a", "b", "c"], weights=[0.5, 0.25, 0.25], k=3)
    assert_type(picks, list[str])
    deck = [1, 2, 3, 4]
    random.shuffle(deck)
    random.setstate(state)
    assert random.random() == x
    rng = random.Random(7)
    assert_type(rng.random_array(3), NDArray[np.float64])
    out = np.empty(4)
    rng.gauss_into(out, 0.0, 0.02)
    assert_type(random.gauss_array(2, mu=1.0), NDArray[np.float64])
    assert_type(rng.randint(1, 6), int)
    return [x, g, *out.tolist()]


def fused_operations() -> float:
    fused.set_threads(1)
    assert_type(fused.threads(), int)
    assert_type(fused.kernel_isa(), str)
    parameters = fused.Parameters({"w": (3, 2), "wte": (4, 2)})
    w, wte = parameters.state_dict["w"], parameters.state_dict["wte"]
    x = fused.Tensor([[0.5, -1.0], [2.0, 0.25]])
    h = fused.rmsnorm(fused.add(x, fused.embedding(wte, [1, 3])))
    q = fused.linear(h, fused.Parameters({"q": (2, 2)}).state_dict["q"])
    att = fused.attention(q, [q], [q], n_head=1)
    logits = fused.linear(fused.relu_squared(fused.relu(att)), w)
    loss = fused.cross_entropy(logits, [0, 2])
    probabilities = fused.softmax(logits, temperature=0.5).tolist()
    assert_type(probabilities, list[list[float]])
    loss.backward()
    assert_type(loss.shape, tuple[int, int])
    adam = fused.Adam(parameters, learning_rate=0.01)
    adam.step(0, 0.01)
    assert_type(parameters.grad_norm(), float)
    assert_type(adam.m, "memoryview[float]")
    assert_type(fused.release_kept_memory(), int)
    gpt = fused.FusedGPT(Config(5, n_embd=4, n_head=2), random.Random(1))
    keys, values_ = gpt.empty_cache()
    assert_type(gpt.next_token_weights(0, 0, keys, values_, 1.0), list[float])
    data = loss.data
    return data if isinstance(data, float) else 0.0


def training(directory: Path) -> list[str]:
    names = directory / "names.txt"
    names.write_text(NAMES)
    run = Run(names, recipe="v2", num_steps=3, n_embd=8, n_head=2, num_samples=2)
    losses = [loss for loss in run]
    assert_type(losses, list[float])
    assert_type(run.step, int)
    path = directory / "run.safetensors"
    run.save(path)
    model = load(path)
    assert_type(model, Model)
    samples = model.sample(2, temperature=0.5, seed=1)
    assert_type(samples, list[str])
    assert_type(model.loss("emma"), float)
    more = microgpt.resume(str(path), names)
    steps = list(more.steps())
    assert_type(steps, list[Step])
    assert_type(more.evaluate(), float | None)
    return samples


def main() -> int:
    print(values(), draws()[:2])
    if microgpt.BACKEND == "compiled":      # the fused operations need the compiled core
        print(fused_operations())
    with tempfile.TemporaryDirectory() as directory:
        print(training(Path(directory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
