"""Time a micrograd-style training step with the compiled Value and the pure-Python one.

The script is written the way micrograd's demo is: a small MLP of Neurons
(``sum(wi * xi for ...) + b``, ``relu``), trained by gradient descent on a
two-class problem with a max-margin loss, an L2 penalty (``p ** 2``)
and a mean (``/``). Both engines run the same step in the same process,
alternating; every loss must be the same double, and the speed-up is the
median over rounds of (pure time / compiled time).

    python benchmarks/mlp_step.py [--rounds 7] [--steps 10]
"""
import sys

import microgpt
from microgpt.engine import Value as PureValue
from value_step import side_by_side     # (this folder is the script's, on sys.path)


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


def main(argv=None):
    losses = {}         # each engine's losses, in order

    def trainer(Value, random):
        train_step = make_trainer(Value, random)
        losses[Value] = []
        done = 0

        def step(_):
            nonlocal done
            losses[Value].append(train_step(done))
            done += 1
        return step

    def finish():
        compiled, pure = losses[microgpt.Value], losses[PureValue]
        if [x.hex() for x in compiled] != [x.hex() for x in pure]:
            sys.exit("mlp_step.py: the compiled Value's losses differ from the pure-Python one's")
        return {"last_loss": compiled[-1]}

    side_by_side(__doc__, trainer, argv, steps=10, title="micrograd-style MLP training step",
                 finish=finish)


if __name__ == "__main__":
    main()
