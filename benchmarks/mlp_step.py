"""Time a micrograd-style training step with the compiled Value and the pure-Python one.

The script is written the way micrograd's demo is: a small MLP of Neurons
(``sum(wi * xi for ...) + b``, ``relu``), trained by gradient descent on a
two-class problem with a max-margin loss, an L2 penalty (``p ** 2``)
and a mean (``/``). Both engines run the same step in the same process,
alternating; every loss must be the same double, and the speed-up is the
median over rounds of (pure time / compiled time).

    python benchmarks/mlp_step.py [--rounds 7] [--steps 10]
"""
import argparse
import json
import random as stdlib_random
import statistics
import sys
import time

import microgpt
from microgpt.engine import Value as PureValue


def make_trainer(Value, random, points=64, hidden=(16, 16)):
    """A micrograd-style MLP and its data; its training step as a function."""
    random.seed(1337)

    class Neuron:
        def __init__(self, nin, nonlin=True):
            self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
            self.b = Value(0)
            self.nonlin = nonlin

        def __call__(self, x):
            act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
            return act.relu() if self.nonlin else act

        def parameters(self):
            return self.w + [self.b]

    class Layer:
        def __init__(self, nin, nout, **kwargs):
            self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

        def __call__(self, x):
            out = [n(x) for n in self.neurons]
            return out[0] if len(out) == 1 else out

        def parameters(self):
            return [p for n in self.neurons for p in n.parameters()]

    class MLP:
        def __init__(self, nin, nouts):
            sz = [nin] + nouts
            self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1)
                           for i in range(len(nouts))]

        def __call__(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

        def parameters(self):
            return [p for layer in self.layers for p in layer.parameters()]

    # two interleaved spirals of points, labels -1 and 1
    X, y = [], []
    for i in range(points):
        label = 1 if i % 2 else -1
        r = i / points
        X.append([r * (1 + 0.1 * random.gauss(0, 1)) * label, (1 - r) * random.uniform(0.5, 1.5)])
        y.append(label)
    model = MLP(2, list(hidden) + [1])

    def train_step(step):
        scores = [model([Value(a), Value(b)]) for a, b in X]
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) / len(losses)
        reg_loss = 1e-4 * sum((p ** 2 for p in model.parameters()))
        loss = data_loss + reg_loss
        for p in model.parameters():
            p.grad = 0.0
        loss.backward()
        learning_rate = 1.0 - 0.9 * step / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return loss.data

    return train_step


def time_steps(train_step, steps, losses):
    """Seconds per step over `steps` steps; their losses appended to `losses`."""
    start = time.perf_counter()
    for _ in range(steps):
        losses.append(train_step(len(losses)))
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round (default 10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if microgpt.BACKEND != "compiled":
        parser.error("needs the compiled backend (unset MICROGPT_PUREPYTHON)")

    compiled_step = make_trainer(microgpt.Value, microgpt.random.Random())
    pure_step = make_trainer(PureValue, stdlib_random.Random())
    compiled_losses, pure_losses = [], []
    compiled, pure = [], []
    for i in range(args.rounds):
        compiled.append(time_steps(compiled_step, args.steps, compiled_losses))
        pure.append(time_steps(pure_step, args.steps, pure_losses))
        print(f"round {i + 1}: compiled {compiled[-1] * 1e3:7.2f} ms/step   "
              f"pure Python {pure[-1] * 1e3:7.2f} ms/step   {pure[-1] / compiled[-1]:5.1f}x",
              file=sys.stderr)
    if [x.hex() for x in compiled_losses] != [x.hex() for x in pure_losses]:
        sys.exit("mlp_step.py: the compiled Value's losses differ from the pure-Python one's")
    result = {
        "compiled_ms_per_step": statistics.median(compiled) * 1e3,
        "pure_python_ms_per_step": statistics.median(pure) * 1e3,
        "speedup": statistics.median(p / c for p, c in zip(pure, compiled)),
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "last_loss": compiled_losses[-1],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"micrograd-style MLP training step, median of {args.rounds} rounds: "
              f"compiled {result['compiled_ms_per_step']:.2f} ms, "
              f"pure Python {result['pure_python_ms_per_step']:.2f} ms, "
              f"speed-up {result['speedup']:.1f}x")


if __name__ == "__main__":
    main()
