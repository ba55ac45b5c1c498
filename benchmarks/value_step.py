"""Time microgpt.py's training step with the compiled Value and the pure-Python one.

The step is microgpt.py's, line for line (microgpt.model.GPT and
microgpt.train.Adam), at its default size (n_embd 16, n_head 4, n_layer 1,
block_size 8, 27 tokens): forward over one name, loss, backward, Adam. Both
engines run in the same process, alternating, and the speed-up is the median
over rounds of (pure time / compiled time).

    python benchmarks/value_step.py [--rounds 7] [--steps 20]
"""
import argparse
import json
import math
import random as stdlib_random
import statistics
import sys
import time

import microgpt
from microgpt.data import Tokenizer
from microgpt.engine import Value as PureValue
from microgpt.model import GPT, Config

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia",
         "harper", "evelyn", "abigail", "emily", "elizabeth", "mila", "ella", "avery",
         "sofia", "camila", "aria", "scarlett"]
TOKENIZER = Tokenizer(["abcdefghijklmnopqrstuvwxyz"])     # 26 letters and BOS


def make_trainer(Value, random):
    """microgpt.py's model and Adam; its training step as a function."""
    random.seed(42)
    model = GPT(Config(TOKENIZER.vocab_size), random, Value=Value)
    optimizer = model.optimizer(0.01)

    def train_step(step, doc):
        loss = model.loss(TOKENIZER.encode(doc))
        loss.backward()
        optimizer.step(step, 0.01 * 0.5 * (1 + math.cos(math.pi * step / 500)))
        return loss.data

    return train_step


def time_steps(train_step, steps):
    """Seconds per step over `steps` steps."""
    start = time.perf_counter()
    for step in range(steps):
        train_step(step)
    return (time.perf_counter() - start) / steps


def side_by_side(doc, make_trainer, argv=None, steps=20, title="microgpt.py training step",
                 finish=dict):
    """The command line of a side-by-side script: the training steps that
    make_trainer(Value, random) makes for each engine, alternating rounds;
    finish() adds to the result (or exits where the engines disagree)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--steps", type=int, default=steps,
                        help=f"training steps per round (default {steps})")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if microgpt.BACKEND != "compiled":
        parser.error("needs the compiled backend (unset MICROGPT_PUREPYTHON)")

    compiled_step = make_trainer(microgpt.Value, microgpt.random.Random())
    pure_step = make_trainer(PureValue, stdlib_random.Random())
    compiled, pure = [], []
    for i in range(args.rounds):
        compiled.append(time_steps(compiled_step, args.steps))
        pure.append(time_steps(pure_step, args.steps))
        print(f"round {i + 1}: compiled {compiled[-1] * 1e3:7.2f} ms/step   "
              f"pure Python {pure[-1] * 1e3:7.2f} ms/step   {pure[-1] / compiled[-1]:5.1f}x",
              file=sys.stderr)
    result = {
        "compiled_ms_per_step": statistics.median(compiled) * 1e3,
        "pure_python_ms_per_step": statistics.median(pure) * 1e3,
        "speedup": statistics.median(p / c for p, c in zip(pure, compiled)),
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        **finish(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{title}, median of {args.rounds} rounds: "
              f"compiled {result['compiled_ms_per_step']:.2f} ms, "
              f"pure Python {result['pure_python_ms_per_step']:.2f} ms, "
              f"speed-up {result['speedup']:.1f}x")


def main(argv=None):
    def trainer(Value, random):
        train_step = make_trainer(Value, random)
        return lambda step: train_step(step, NAMES[step % len(NAMES)])
    side_by_side(__doc__, trainer, argv)


if __name__ == "__main__":
    main()
