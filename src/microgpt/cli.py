"""
microgpt-train: train microgpt.py's GPT on a text file, then sample from it.

With the defaults it is microgpt.py: the same hyperparameters, the same seed,
and the same output, byte for byte.
"""
import argparse
import math
import os
import sys

from . import BACKEND, random
from .data import DataError, Tokenizer, load_docs, names_path
from .model import GPT, Config
from .train import sample, train


def positive_int(text):
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def non_negative_int(text):
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text}")
    return value


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def build_parser(prog=None):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train microgpt.py's GPT on the lines of a text file, one line per step, "
                    "then print new samples. With no --input, trains on Karpathy's names.txt, "
                    "downloaded once into ~/.cache/microgpt (or $MICROGPT_CACHE).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input", metavar="FILE",
                        help="UTF-8 text file, one document per line (default: names.txt)")
    parser.add_argument("--steps", type=non_negative_int, default=500,
                        help="training steps, one document each")
    parser.add_argument("--n-embd", type=positive_int, default=16, help="embedding width")
    parser.add_argument("--n-head", type=positive_int, default=4,
                        help="attention heads (must divide --n-embd)")
    parser.add_argument("--n-layer", type=positive_int, default=1, help="transformer blocks")
    parser.add_argument("--block-size", type=positive_int, default=8,
                        help="longest context, in tokens")
    parser.add_argument("--lr", type=positive_float, default=0.01,
                        help="Adam learning rate, decayed to 0 over the steps by a cosine")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed of the random generator (shuffle, parameters, samples)")
    parser.add_argument("--samples", type=non_negative_int, default=20,
                        help="documents to sample after training")
    parser.add_argument("--temperature", type=positive_float, default=0.5,
                        help="sampling temperature")
    parser.add_argument("--exact", action="store_true",
                        help="train on microgpt.py's graph of scalar Values instead of the "
                             "fused operations (the same numbers, much slower)")
    return parser


def main(argv=None):
    """The microgpt-train command; returns the exit status."""
    prog = None
    if argv is None and sys.argv and sys.argv[0].endswith("__main__.py"):
        prog = "python -m microgpt"
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.n_embd % args.n_head:
        parser.error(f"--n-embd ({args.n_embd}) must be divisible by --n-head ({args.n_head})")
    try:
        run(args)
    except (DataError, TrainingError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, without a second error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def make_model(config, rng, exact):
    """The fused fast path; microgpt.py's scalar graph with --exact, and
    under MICROGPT_PUREPYTHON=1, where only the scalar one exists."""
    if exact or BACKEND != "compiled":
        return GPT(config, rng)
    from .fused import FusedGPT
    return FusedGPT(config, rng)


class TrainingError(Exception):
    """The numbers broke down (overflow, log of 0): too large a learning rate."""


def run(args):
    """microgpt.py, with the hyperparameters from args."""
    rng = random.Random(args.seed)
    docs = load_docs(args.input if args.input is not None else names_path())
    rng.shuffle(docs)
    print(f"num docs: {len(docs)}")
    tokenizer = Tokenizer(docs)
    print(f"vocab size: {tokenizer.vocab_size}")
    config = Config(tokenizer.vocab_size, args.n_embd, args.n_head, args.n_layer, args.block_size)
    model = make_model(config, rng, args.exact)
    print(f"num params: {len(model.params)}")
    num_steps = args.steps
    step = 0
    try:
        for step, loss in enumerate(train(model, docs, tokenizer, num_steps, args.lr), 1):
            print(f"step {step:4d} / {num_steps:4d} | loss {loss:.4f}", flush=True)
        step = None
        print("\n--- inference ---")
        for sample_idx in range(args.samples):
            print(f"sample {sample_idx+1:2d}: {sample(model, tokenizer, rng, args.temperature)}")
    except (ArithmeticError, ValueError) as exc:   # as microgpt.py would raise them
        where = f"at step {step + 1}" if step is not None else "in sampling"
        raise TrainingError(f"training failed {where}: {exc} (the numbers overflowed; "
                            "a smaller --lr may help)") from None
    sys.stdout.flush()
