"""
microgpt-train: train microgpt.py's GPT on a text file, then sample from it.

With the defaults it is microgpt.py: the same hyperparameters, the same seed,
and the same output, byte for byte.

Every error a user can cause is one line on stderr, never a traceback. Exit
statuses: 0 done; 2 a usage or input error (a bad flag value, unusable
input, a failed download, a run that would not fit in memory, numbers that
break down); 1 the run could not finish for a reason outside the command
line (its output cannot be written, out of memory at run time); 130
interrupted (Ctrl-C).

Importing this module is cheap on purpose (the console script imports it
before main() can catch a Ctrl-C): everything heavy is imported in main().
"""
import os
import sys

USAGE_ERROR, FAILED, INTERRUPTED = 2, 1, 130


class TrainingError(Exception):
    """The numbers broke down in training (overflow, log of 0): too large a learning rate."""


class SamplingError(Exception):
    """The numbers broke down while sampling."""


class NotEnoughMemory(Exception):
    """The run would need more memory than there is."""


class OutputError(Exception):
    """Standard output cannot be written (closed, a full disk, an I/O error)."""


def main(argv=None):
    """The microgpt-train command; returns the exit status."""
    prog = _prog()
    try:
        return _main(argv, prog)
    except KeyboardInterrupt:
        _stderr(f"\n{prog}: interrupted")     # a new line after the ^C the terminal shows
        return INTERRUPTED


def _main(argv, prog):
    from .data import DataError
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        if args.n_embd % args.n_head:
            parser.error(f"--n-embd ({args.n_embd}) must be divisible by --n-head ({args.n_head})")
        run(args)
    except (DataError, TrainingError, SamplingError, NotEnoughMemory) as exc:
        _error(prog, exc)
        return USAGE_ERROR
    except MemoryError:
        # the up-front estimate said it fits, but the machine disagreed (or
        # another process took the memory meanwhile): not a usage error
        _error(prog, "out of memory; a smaller model (--n-embd, --n-layer, --block-size) or "
                     "input needs less")
        return FAILED
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, without a second error at exit
        _silence_stdout()
        return FAILED
    except OutputError as exc:
        _error(prog, f"cannot write the output: {exc}")
        _silence_stdout()
        return FAILED
    return 0


def _prog():
    """The command's name, as argparse shows it."""
    if sys.argv and sys.argv[0].endswith("__main__.py"):
        return "python -m microgpt"
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "microgpt-train"


def _error(prog, message):
    _stderr(f"{prog}: error: {message}")


def _stderr(line):
    """One line on stderr, if there is a stderr to write to."""
    if sys.stderr is None:          # closed (2>&-): print(file=None) would use stdout
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _print(text, end="\n", flush=False):
    """print() to stdout, its failures as OutputError (a broken pipe as itself)."""
    if sys.stdout is None:
        raise OutputError("standard output is closed")
    try:
        print(text, end=end, flush=flush)
    except BrokenPipeError:
        raise
    except UnicodeEncodeError as exc:
        raise OutputError(f"{exc.object[exc.start]!r} cannot be written in the "
                          f"encoding of standard output ({exc.encoding}); "
                          "set PYTHONIOENCODING=utf-8") from None
    except OSError as exc:
        raise OutputError(exc.strerror or str(exc)) from None


def _flush():
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(exc.strerror or str(exc)) from None


def _silence_stdout():
    """Point file descriptor 1 at /dev/null, so that the interpreter's own
    flush at exit succeeds instead of reporting the same error again."""
    if sys.stdout is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


# The command line ------------------------------------------------------------

def positive_int(text):
    value = _int(text)
    if value <= 0:
        raise _invalid(f"must be a positive integer, not {value}")
    return value


def non_negative_int(text):
    value = _int(text)
    if value < 0:
        raise _invalid(f"must be 0 or more, not {value}")
    return value


def step_count(text):
    """--steps: the cosine schedule divides by it as a float, so it must be one."""
    value = non_negative_int(text)
    try:
        float(value)
    except OverflowError:
        raise _invalid(f"must be at most about 1.8e308 (the learning rate's schedule "
                       f"divides by it), not a {len(str(value))}-digit number") from None
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise _invalid(f"not a number: {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise _invalid(f"must be a positive finite number, not {text}")
    return value


def temperature(text):
    """--temperature: the logits are multiplied by its inverse, which must be finite."""
    value = positive_float(text)
    try:
        value ** -1
    except OverflowError:
        raise _invalid(f"too small: its inverse overflows (the smallest is about "
                       f"{1 / sys.float_info.max:.2g}), not {text}") from None
    return value


def integer(text):
    """--seed: any integer, as random.seed takes (a negative one seeds as its absolute value)."""
    return _int(text)


def _int(text):
    try:
        return int(text)
    except ValueError:
        digits = text.strip().lstrip("+-").replace("_", "")
        if digits.isdigit() and len(digits) > sys.get_int_max_str_digits() > 0:
            raise _invalid(f"an integer of {len(digits)} digits; Python reads at most "
                           f"{sys.get_int_max_str_digits()}") from None
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise _invalid(f"not an integer: {shown!r}") from None


def _invalid(message):
    import argparse
    return argparse.ArgumentTypeError(message)


def build_parser(prog=None):
    import argparse

    class Parser(argparse.ArgumentParser):
        def print_help(self, file=None):
            # argparse's own would drop a write error silently, and exit 0
            if file is None:
                _print(self.format_help(), end="", flush=True)
            else:
                super().print_help(file)

    parser = Parser(
        prog=prog,
        description="Train microgpt.py's GPT on the lines of a text file, one line per step, "
                    "then print new samples. With no --input, trains on Karpathy's names.txt, "
                    "downloaded once into ~/.cache/microgpt (or $MICROGPT_CACHE).",
        epilog="Exit status: 0 done, 2 a usage or input error (including a run that would "
               "not fit in memory), 1 the output could not be written or memory ran out "
               "at run time, 130 interrupted.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input", metavar="FILE",
                        help="UTF-8 text file, one document per line; - reads standard input "
                             "(default: names.txt)")
    parser.add_argument("--steps", type=step_count, default=500,
                        help="training steps, one document each")
    parser.add_argument("--n-embd", type=positive_int, default=16, help="embedding width")
    parser.add_argument("--n-head", type=positive_int, default=4,
                        help="attention heads (must divide --n-embd)")
    parser.add_argument("--n-layer", type=positive_int, default=1, help="transformer blocks")
    parser.add_argument("--block-size", type=positive_int, default=8,
                        help="longest context, in tokens")
    parser.add_argument("--lr", type=positive_float, default=0.01,
                        help="Adam learning rate, decayed to 0 over the steps by a cosine")
    parser.add_argument("--seed", type=integer, default=42,
                        help="seed of the random generator (shuffle, parameters, samples)")
    parser.add_argument("--samples", type=non_negative_int, default=20,
                        help="documents to sample after training")
    parser.add_argument("--temperature", type=temperature, default=0.5,
                        help="sampling temperature")
    parser.add_argument("--exact", action="store_true",
                        help="train on microgpt.py's graph of scalar Values instead of the "
                             "fused operations (the same numbers, much slower)")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="run even when the estimate of the memory the run needs "
                             "exceeds what is available")
    return parser


# The run ---------------------------------------------------------------------

def make_model(config, rng, exact):
    """The fused fast path; microgpt.py's scalar graph with --exact, and
    under MICROGPT_PUREPYTHON=1, where only the scalar one exists."""
    from . import BACKEND
    if exact or BACKEND != "compiled":
        from .model import GPT
        return GPT(config, rng)
    from .fused import FusedGPT
    try:
        return FusedGPT(config, rng)
    except OverflowError:       # a size beyond a C integer (with --no-memory-check)
        raise MemoryError from None


def run(args):
    """microgpt.py, with the hyperparameters from args."""
    from . import BACKEND, random
    from .data import Tokenizer, load_docs, names_path
    from .model import Config
    from .train import sample, train

    if sys.stdout is None:
        raise OutputError("standard output is closed")
    path = "fused" if not args.exact and BACKEND == "compiled" else BACKEND
    sizes = args.n_embd, args.n_head, args.n_layer, args.block_size
    check = not args.no_memory_check
    if check:       # before the data, with the smallest vocabulary: no download for nothing
        check_memory(Config(2, *sizes), path, 1, args.steps, args.samples, at_least=True)
    rng = random.Random(args.seed)
    docs = load_docs(args.input if args.input is not None else names_path())
    rng.shuffle(docs)
    tokenizer = Tokenizer(docs)
    config = Config(tokenizer.vocab_size, *sizes)
    if check:
        check_memory(config, path, max(map(len, docs)) + 1, args.steps, args.samples)
    _print(f"num docs: {len(docs)}")
    _print(f"vocab size: {tokenizer.vocab_size}")
    model = make_model(config, rng, args.exact)
    _print(f"num params: {len(model.params)}")
    num_steps = args.steps
    step = 0
    try:
        for step, loss in enumerate(train(model, docs, tokenizer, num_steps, args.lr), 1):
            _print(f"step {step:4d} / {num_steps:4d} | loss {loss:.4f}", flush=True)
    except (ArithmeticError, ValueError) as exc:   # as microgpt.py would raise them
        raise TrainingError(f"training failed at step {step + 1}: {_why(exc)} "
                            "(the numbers blew up; a smaller --lr may help)") from None
    _print("\n--- inference ---")
    for sample_idx in range(args.samples):
        try:
            text = sample(model, tokenizer, rng, args.temperature)
        except (ArithmeticError, ValueError) as exc:
            raise SamplingError(_sampling_failure(exc, model, args.temperature,
                                                  sample_idx + 1)) from None
        _print(f"sample {sample_idx+1:2d}: {text}")
    _flush()


def check_memory(config, path, positions, steps, samples, at_least=False):
    """Raise NotEnoughMemory if the run's estimate exceeds what is available."""
    from . import memory
    have = memory.available()
    if have is None:                # nothing to go by (not Linux): do not refuse
        return
    need = memory.needed(config, path, positions, steps, samples)
    if need.total > have.total:
        raise NotEnoughMemory(
            f"this run needs {'at least' if at_least else 'about'} "
            f"{memory.format_bytes(need.total)} of memory ({need.describe()}); "
            f"{have.describe()}")


def _why(exc):
    """What went wrong in the numbers, in words (not an errno tuple)."""
    message = str(exc)
    if isinstance(exc, OverflowError):
        return "a number overflowed"
    if isinstance(exc, ZeroDivisionError):
        return "a division by zero"
    if message == "math domain error":
        return "the logarithm of 0"
    if message == "Total of weights must be finite":
        return "the next token's probabilities are not finite numbers"
    if message == "Total of weights must be greater than zero":
        return "the next token's probabilities are all 0"
    return message or type(exc).__name__


def _sampling_failure(exc, model, temperature, number):
    """Why sample `number` failed: the trained parameters, or the temperature."""
    import math
    params = model.params
    if not all(math.isfinite(p if isinstance(p, float) else p.data) for p in params):
        return (f"sampling failed: the trained parameters are not all finite numbers "
                "(training diverged; a smaller --lr may help)")
    if temperature < 1:
        hint = (f"the logits divided by --temperature {temperature:g} overflowed; "
                "a larger --temperature may help")
    else:
        hint = "the trained model's numbers are too large; a smaller --lr may help"
    return f"sampling failed at sample {number}: {_why(exc)} ({hint})"
