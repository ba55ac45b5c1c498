"""
python -m microgpt.benchmark: microgpt's benchmarks, as JSON on stdout.

The schema is the one microgpt ports in other languages write, so results
sit beside theirs::

    {"language": "python", "implementation": "microgpt", "version": "3.11.7",
     "microgpt_version": "0.1.0", "backend": "compiled", "timestamp": "...Z",
     "machine": {...},
     "benchmarks": [{"name": "random_1m", "description": "...", "backend": "compiled",
                     "iterations": 1000000, "time_ms": ..., "ops_per_sec": ...,
                     "min_ms": ..., "max_ms": ..., "repeats": ..., "speedup": ..., "result": ...}]}

``time_ms`` is the median over the repeats of the whole workload (after a
warm-up run), ``ops_per_sec`` is iterations per second at that median, and
``speedup`` (on compiled entries) is the pure-Python median over the compiled
one. ``result`` is what the workload computed (the last draw, a loss, the
logits), so that backends can be checked against each other. Progress goes to
stderr; stdout holds nothing but the JSON.

The bigger models (LONG) run on the fused backend only, one training step
per timed run, and add ``flops_per_step``, ``gflops`` and ``peak_ratio``: the
GFLOP/s of their matrix products over the peak rate of separate multiplies
and adds that ``peak_mul_add`` probes (microgpt._peak), in the same process,
for the instruction set the fused kernels run with.
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

import microgpt
from microgpt import engine, random as mrandom
from microgpt._backend import compiled
from microgpt.data import DataError, Tokenizer, load_docs, names_path
from microgpt.model import GPT, Config
from microgpt.recipe import V1, V2
from microgpt.train import train

STANDARD = ["random_1m", "gauss_100k", "value_forward_10k", "value_backward_1k",
            "gpt_forward_10", "training_step_1"]
TRAINING = {"train_500": V1, "train_1000_v2": V2}   # microgpt.py's default runs, by revision
MODEL = ["gpt_forward_10", "training_step_1", *TRAINING]     # those the fused GPT changes
CONFIG = dict(n_embd=16, n_head=4, n_layer=1, block_size=8)     # microgpt.py's model
VOCAB_SIZE = 27
LONG = {    # bigger models of recipe v1, on documents that fill their context
    "train_128x4x128": V1.replace(n_embd=128, n_head=4, n_layer=4, block_size=128),
    "train_64x2x64": V1.replace(n_embd=64, n_head=4, n_layer=2, block_size=64),
}
# Fused backend only: the bigger models take minutes a step on the scalar
# graph, and the probe measures what the fused kernels could reach.
FUSED_ONLY = [*LONG, "peak_mul_add"]
PEAK_SECONDS = 0.02     # one timed run of the peak probe, per instruction set


class Backend:
    """What a benchmark runs on: a Value class, a Random class, and a GPT."""

    def __init__(self, name, Value, Random, model=None):
        self.name, self.Value, self.Random = name, Value, Random
        self._model = model

    def model(self, config, rng):
        """microgpt.py's GPT: the scalar one on this backend's Value, or the fused one."""
        if self._model is not None:
            return self._model(config, rng)
        return GPT(config, rng, Value=self.Value)


def backends():
    """The backends this process can run, by name: "python" (the pure-Python
    Value and the standard library's generator), and unless
    MICROGPT_PUREPYTHON=1 "compiled" (the compiled Value and generator) and
    "fused" (the same, with the GPT on fused operations: microgpt-train's
    default)."""
    found = {"python": Backend("python", engine.Value, mrandom.PythonRandom)}
    if microgpt.BACKEND == "compiled":
        from microgpt.fused import FusedGPT
        found["compiled"] = Backend("compiled", microgpt.Value, mrandom.Random)
        found["fused"] = Backend("fused", microgpt.Value, mrandom.Random, FusedGPT)
    return found


# The workloads. Each takes a backend and returns a function that runs the
# workload once and returns its result.

def random_1m(b):
    def run():
        rng = b.Random(42)
        for _ in range(1_000_000):
            x = rng.random()
        return x
    return run


def gauss_100k(b):
    def run():
        rng = b.Random(42)
        for _ in range(100_000):
            x = rng.gauss(0, 1)
        return x
    return run


def value_forward_10k(b):
    Value = b.Value

    def run():
        for i in range(10_000):
            v = Value(i)
            v = v + 1
            v = v * 2
            v = v ** 2
            v = v.relu()
        return v.data
    return run


def value_backward_1k(b):
    Value = b.Value

    def run():
        for _ in range(1_000):
            x = Value(2)
            y = Value(3)
            z = (x * y + x ** 2).log()
            z.backward()
        return [z.data, x.grad, y.grad]
    return run


def gpt_forward_10(b):
    def run():
        model = b.model(Config(VOCAB_SIZE, **CONFIG), b.Random(42))
        for _ in range(10):
            keys, values = model.empty_cache()
            logits = model.gpt([0], [0], keys, values) if b.name == "fused" else \
                model.gpt(0, 0, keys, values)
        return logits.tolist()[0] if b.name == "fused" else [l.data for l in logits]
    return run


def training_step_1(b):
    doc = "test"
    tokens = [26] + [ord(c) % 26 for c in doc] + [26]

    def run():
        model = b.model(Config(VOCAB_SIZE, **CONFIG), b.Random(42))
        loss = model.loss(tokens)
        loss.backward()
        model.optimizer(0.01).step(0, 0.01)     # lr_t at step 0 of the cosine schedule
        return loss.data
    return run


def random_array_1m(b):
    return lambda: float(b.Random(42).random_array(1_000_000)[-1])


def gauss_array_100k(b):
    return lambda: float(b.Random(42).gauss_array(100_000, 0.0, 1.0)[-1])


def training(recipe):
    """The workload of microgpt.py's default run as the recipe has it."""
    def make(b, docs):
        rng = b.Random(recipe.seed)         # microgpt.py's shuffle, done once, untimed
        shuffled = list(docs)
        rng.shuffle(shuffled)
        tokenizer = Tokenizer(shuffled)
        after_shuffle = rng.getstate()

        def run():
            rng = b.Random()
            rng.setstate(after_shuffle)
            model = b.model(recipe.config(tokenizer.vocab_size), rng)
            for loss in train(model, shuffled, tokenizer, recipe.num_steps, **recipe.training()):
                pass
            return loss
        return run
    return make


def long_documents(names, per_line=30):
    """Documents that fill a long context: the names in their order, each
    consecutive group of per_line joined by a space (the last group may be
    shorter).

    >>> long_documents(["emma", "olivia", "ava"], per_line=2)
    ['emma olivia', 'ava']
    """
    if per_line < 1:
        raise ValueError(f"per_line must be at least 1, not {per_line}")
    return [" ".join(names[i:i + per_line]) for i in range(0, len(names), per_line)]


def training_flops(config, positions):
    """The floating-point operations of one training step (forward and
    backward) on a document of `positions` positions, T = min(block_size,
    len(tokens) - 1), counting the multiply-adds of the matrix products and
    of attention only, 2 flops each. A linear layer nin -> nout is 3 * 2*T*nin*nout
    (forward, input gradient, weight gradient); attention, per layer and head
    of head_dim d, is 6 * 2*d per causal (query, key) pair, T*(T+1)/2 pairs:
    q.k and weights*v forward, four such products backward."""
    n_embd, T = config.n_embd, positions
    linears = config.n_layer * (4 * n_embd * n_embd + 2 * n_embd * 4 * n_embd) \
        + n_embd * config.vocab_size                    # attention's four, the MLP's two; lm_head
    pairs = T * (T + 1) // 2
    attention = config.n_layer * config.n_head * 6 * 2 * config.head_dim * pairs
    return 3 * 2 * T * linears + attention


def long_training(recipe):
    """The steps of a training of recipe's model on long_documents of the
    names, in file order (unshuffled: the timing does not depend on the
    order, and the steps are the first lines), one step per call."""
    def make(b, docs, steps):
        lines = long_documents(docs)
        tokenizer = Tokenizer(lines)
        short = [step for step in range(steps)
                 if len(lines[step % len(lines)]) + 1 < recipe.block_size]
        if short:       # names.txt never: 30 names and 29 spaces outgrow a block of 128
            raise DataError(f"line {short[0] % len(lines) + 1} of the long documents (30 names "
                            f"a line) is shorter than the {recipe.block_size}-token context")
        model = b.model(recipe.config(tokenizer.vocab_size), b.Random(recipe.seed))
        losses = train(model, lines, tokenizer, steps, **recipe.training())
        return lambda: next(losses), training_flops(model.config, recipe.block_size)
    return make


def peak_mul_add(isa, runs):
    """The peak-rate probe of microgpt._peak with instruction set isa:
    (GFLOP/s at the median time, the times in ms, the flops of one run).
    Runs of doubling length first (untimed: they also wake the vector units
    up) find a length of about PEAK_SECONDS, then `runs` runs are timed.
    Measured once per process; later calls give the same numbers."""
    if isa not in _peaks:
        _peak = compiled("_peak")
        iterations = 1 << 12
        while True:
            flops, seconds = _peak.mul_add_rate(isa, iterations)
            if seconds >= PEAK_SECONDS / 4 or iterations >= _peak.MAX_ITERATIONS:
                break
            iterations *= 2
        iterations = min(_peak.MAX_ITERATIONS,
                         max(1, round(iterations * PEAK_SECONDS / max(seconds, 1e-9))))
        timed = [_peak.mul_add_rate(isa, iterations) for _ in range(runs)]
        times = [seconds * 1e3 for _, seconds in timed]
        flops = timed[0][0]
        _peaks[isa] = (flops / statistics.median(times) / 1e6, times, flops)
    return _peaks[isa]


_peaks = {}     # by instruction set: what peak_mul_add measured


def kernel_isa():
    """The instruction set the fused kernels run with: "avx512", "avx2" or
    "portable" (microgpt._fused.kernel_isa)."""
    return compiled("_fused").kernel_isa()


class Benchmark:
    """A workload with its description, its size and how often to time it."""

    def __init__(self, make, description, iterations, repeats, warmup=1, python_repeats=None):
        self.make = make                # backend (and docs, for TRAINING and LONG) -> workload
        self.description = description
        self.iterations = iterations    # operations in one run of the workload
        self.repeats = repeats          # timed runs, by default
        self.warmup = warmup            # untimed runs first
        self.python_repeats = python_repeats or repeats


BENCHMARKS = {
    "random_1m": Benchmark(random_1m, "1,000,000 calls of random()", 1_000_000, 5),
    "gauss_100k": Benchmark(gauss_100k, "100,000 calls of gauss(0, 1)", 100_000, 5),
    "value_forward_10k": Benchmark(
        value_forward_10k, "10,000 times: v = Value(i); v = v + 1; v = v * 2; v = v ** 2; "
        "v = v.relu()", 10_000, 5),
    "value_backward_1k": Benchmark(
        value_backward_1k, "1,000 times: x = Value(2); y = Value(3); "
        "z = (x * y + x ** 2).log(); z.backward()", 1_000, 5),
    "gpt_forward_10": Benchmark(
        gpt_forward_10, "seed 42, build the state dict (n_embd 16, n_head 4, n_layer 1, "
        "block_size 8, vocab 27), then 10 calls of gpt(0, 0) with a fresh KV cache", 10, 7),
    "training_step_1": Benchmark(
        training_step_1, "seed 42, build the state dict, forward 'test' ([26] + "
        "[ord(c) % 26 for c in doc] + [26]) at every position, mean loss, backward, "
        "one Adam update", 1, 7),
    "random_array_1m": Benchmark(
        random_array_1m, "random_array(1,000,000): 1M draws into a numpy array", 1_000_000, 5),
    "gauss_array_100k": Benchmark(
        gauss_array_100k, "gauss_array(100,000, 0, 1): 100K draws into a numpy array",
        100_000, 5),
    "train_500": Benchmark(
        training(V1), "microgpt.py's default training on names.txt, loaded and shuffled "
        "(seed 42): build the model, 500 steps (per_step_ms is per step)", 500, 3,
        warmup=0, python_repeats=1),
    "train_1000_v2": Benchmark(
        training(V2), "the same with microgpt.py's final revision (recipe v2): block 16, "
        "relu, 1000 steps (per_step_ms is per step)", 1000, 3, warmup=0, python_repeats=1),
    "train_128x4x128": Benchmark(
        long_training(LONG["train_128x4x128"]), "recipe v1 with n_embd 128, n_head 4, n_layer "
        "4, block_size 128 (seed 42), on names.txt 30 names a line, in file order: one "
        "training step a run (fused only), 2 untimed, then 10 timed", 1, 10, warmup=2),
    "train_64x2x64": Benchmark(
        long_training(LONG["train_64x2x64"]), "the same with n_embd 64, n_head 4, n_layer 2, "
        "block_size 64: 2 untimed steps, then 30 timed", 1, 30, warmup=2),
    "peak_mul_add": Benchmark(
        None, "the CPU's peak rate of separate double multiplies and adds, one core "
        "(microgpt._peak): GFLOP/s by instruction set; a run is one of about 20 ms with "
        "the fused kernels' one, iterations its flops", 1, 5),
}


def measure(workload, repeats, warmup):
    """Time `repeats` runs of the workload (after `warmup` untimed ones), in
    ms; and what the last run returned."""
    for _ in range(warmup):
        workload()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = workload()
        times.append((time.perf_counter() - start) * 1e3)
    return times, result


def run_benchmark(name, backend, repeats, docs, progress):
    bench = BENCHMARKS[name]
    if name == "peak_mul_add":
        return run_peak(bench, backend, repeats, progress)
    runs = repeats or (bench.python_repeats if backend.name == "python" else bench.repeats)
    if name in LONG:
        workload, flops = bench.make(backend, docs, bench.warmup + runs)
        progress(f"{name} ({backend.name}, {bench.warmup} untimed + {runs} timed steps) ... ")
    else:
        workload = bench.make(backend, docs) if name in TRAINING else bench.make(backend)
        progress(f"{name} ({backend.name}, {runs} run{'s' * (runs > 1)}) ... ")
    times, result = measure(workload, runs, bench.warmup)
    entry = _entry(name, bench, backend.name, bench.iterations, times, result)
    if name in TRAINING:
        entry["per_step_ms"] = entry["time_ms"] / bench.iterations
    if name in LONG:        # a run is a step
        isa, threads = kernel_isa(), compiled("_fused").threads()
        peak = peak_mul_add(isa, repeats or BENCHMARKS["peak_mul_add"].repeats)[0]
        gflops = flops / entry["time_ms"] / 1e6
        # the peak is one core's: on n threads, n cores' worth
        entry.update(per_step_ms=entry["time_ms"], flops_per_step=flops, gflops=gflops,
                     kernel_isa=isa, threads=threads, peak_gflops=peak,
                     peak_ratio=gflops / (peak * threads))
        progress(f"{entry['time_ms']:.3f} ms a step, {gflops:.1f} GFLOP/s, "
                 f"{entry['peak_ratio']:.1%} of {isa}'s peak"
                 f"{f' on {threads} cores' if threads > 1 else ''}\n")
    else:
        progress(f"{entry['time_ms']:.3f} ms\n")
    return entry


def run_peak(bench, backend, repeats, progress):
    """peak_mul_add's entry: the probe's rate with each instruction set the
    CPU has, its times those of the fused kernels' one."""
    runs = repeats or bench.repeats
    progress(f"peak_mul_add ({runs} run{'s' * (runs > 1)} each) ... ")
    gflops = {isa: peak_mul_add(isa, runs)[0] for isa in compiled("_peak").supported_isas()}
    isa = kernel_isa()
    rate, times, flops = peak_mul_add(isa, runs)
    progress(", ".join(f"{name} {value:.1f}" for name, value in gflops.items()) + " GFLOP/s\n")
    entry = _entry("peak_mul_add", bench, backend.name, flops, times, rate)
    entry.update(gflops=gflops, kernel_isa=isa)
    return entry


def _entry(name, bench, backend, iterations, times, result):
    median = statistics.median(times)
    return {
        "name": name,
        "description": bench.description,
        "backend": backend,
        "iterations": iterations,
        "time_ms": median,
        "ops_per_sec": iterations / (median / 1e3) if median > 0 else math.inf,
        "min_ms": min(times),
        "max_ms": max(times),
        "repeats": len(times),
        "result": result,
    }


def runs_of(name, backend, top):
    """The backends a benchmark runs on, for --backend `backend` (None: the
    default), the baselines of its speedup last. FUSED_ONLY run on "fused"
    where it is among them, else on none."""
    if name in FUSED_ONLY:
        return ["fused"] if backend in (None, "fused", "all") and top != "python" else []
    if backend in ("compiled", "fused", "python"):
        return [backend]
    runs = [top]
    if top == "compiled" and name in MODEL:
        runs.append("fused")                # the fast path too, where it differs
    if backend == "all" or (backend is None and name in STANDARD and top != "python"):
        runs.append("python")
    return runs


def _and(names):
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def machine():
    info = {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "compiler": platform.python_compiler(),
    }
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m microgpt.benchmark",
        description="Run microgpt's benchmarks and print the results as JSON on stdout "
                    "(progress on stderr).")
    parser.add_argument("--backend", choices=["compiled", "fused", "python", "all"],
                        help="compiled: the compiled Value and generator; fused: the same "
                             "with the GPT on fused operations (microgpt-train's default); "
                             "python: the pure-Python backend; all: all three. Default: "
                             "compiled, fused where it differs (the model benchmarks), and "
                             "the pure-Python runs of the six standard benchmarks that give "
                             "each its speedup. The bigger models and the peak probe run on "
                             "fused only (by default, with fused and with all)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="timed runs per benchmark (default: 3 to 7, by benchmark; "
                             "the bigger models' timed steps: 10 and 30)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true",
                        help="one timed run each, for tests and CI")
    parser.add_argument("--input", metavar="FILE",
                        help="names.txt for the training runs (default: the one microgpt comes with)")
    parser.add_argument("--threads", type=int, metavar="N", default=1,
                        help="threads for the fused kernels (default: 1); the bigger "
                             "models' peak_ratio is then against N cores' peak")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for name, bench in BENCHMARKS.items():
            print(f"{name:18s} {bench.description}")
        return 0
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if not 1 <= args.threads <= 256:
        parser.error(f"--threads must be from 1 to 256, not {args.threads}")
    names = args.only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (see --list)")
    available = backends()
    if args.backend in ("compiled", "fused", "all") and "compiled" not in available:
        parser.error(f"--backend {args.backend} needs the compiled core, "
                     "and MICROGPT_PUREPYTHON=1 turns it off")
    if args.threads > 1:
        if "compiled" not in available:
            parser.error("--threads needs the compiled core, "
                         "and MICROGPT_PUREPYTHON=1 turns it off")
        compiled("_fused").set_threads(args.threads)
    top = args.backend if args.backend in available else \
        "compiled" if "compiled" in available else "python"   # the first column of "all" too
    repeats = 1 if args.quick else args.repeat

    def progress(text):
        print(text, end="", file=sys.stderr, flush=True)

    idle = [name for name in names if not runs_of(name, args.backend, top)]
    if idle:
        where = f"--backend {args.backend}" if args.backend else "MICROGPT_PUREPYTHON=1"
        if args.only:
            parser.error(f"{idle[0]} runs on the fused backend only, not with {where}")
        progress(f"{parser.prog}: skipping {_and(idle)}: fused backend only, not with {where}\n")
        names = [name for name in names if name not in idle]

    docs = None
    training = [name for name in names if name in TRAINING or name in LONG]
    if training:
        try:
            docs = load_docs(args.input if args.input else names_path())
        except DataError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 2

    entries = []
    try:
        for name in names:
            measured = {}
            for backend_name in runs_of(name, args.backend, top):
                entry = run_benchmark(name, available[backend_name], repeats, docs, progress)
                measured[backend_name] = entry
                entries.append(entry)
            for backend_name in ("compiled", "fused"):
                if backend_name in measured and "python" in measured:
                    measured[backend_name]["speedup"] = (measured["python"]["time_ms"]
                                                         / measured[backend_name]["time_ms"])
    except DataError as exc:                # documents too short for a long context
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted", file=sys.stderr)
        return 130

    report = {
        "language": "python",
        "implementation": "microgpt",
        "version": platform.python_version(),
        "microgpt_version": microgpt.__version__,
        "backend": args.backend or top,
        "threads": args.threads,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "benchmarks": entries,
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
