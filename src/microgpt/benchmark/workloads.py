"""
The benchmarks of python -m microgpt.benchmark: each workload, of its kind
(Benchmark: timed calls; Training: a whole default run; LongTraining: steps
of a bigger model, with their GFLOP/s; Peak: the CPU's peak rate), and the
backends they run on.
"""
import math
import statistics
import time

import microgpt
from microgpt import engine, random as mrandom
from microgpt._backend import compiled
from microgpt.data import DataError, Tokenizer
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
    """The instruction set the fused kernels run with: "avx512", "avx2",
    "portable" or "plain" (microgpt._fused.kernel_isa)."""
    return compiled("_fused").kernel_isa()


def probe_of(isa):
    """The peak probe's instruction set for the kernels' isa: the plain C
    doubles' probe for both the portable and the plain kernels."""
    return "portable" if isa == "plain" else isa


class Benchmark:
    """A workload with its description, its size and how often to time it:
    prepare() makes the workload for a backend, run() times it, entry() is
    what the JSON says of it. The kinds below add what theirs need."""
    needs_docs = False      # trains on the documents of --input (names.txt)
    fused_only = False      # runs on the fused backend only

    def __init__(self, make, description, iterations, repeats, warmup=1, python_repeats=None):
        self.make = make                # backend -> a workload: a call that returns its result
        self.description = description
        self.iterations = iterations    # operations in one run of the workload
        self.repeats = repeats          # timed runs, by default
        self.warmup = warmup            # untimed runs first
        self.python_repeats = python_repeats or repeats

    def prepare(self, backend, docs, runs):
        return self.make(backend)

    def run(self, name, backend, repeats, docs, progress):
        """Time the workload on backend: its entry."""
        runs = repeats or (self.python_repeats if backend.name == "python" else self.repeats)
        workload = self.prepare(backend, docs, self.warmup + runs)
        progress(self.announce(name, backend, runs))
        times, result = measure(workload, runs, self.warmup)
        entry = self.entry(name, backend.name, times, result, repeats)
        progress(self.summary(entry))
        return entry

    def announce(self, name, backend, runs):
        return f"{name} ({backend.name}, {runs} run{'s' * (runs > 1)}) ... "

    def summary(self, entry):
        return f"{entry['time_ms']:.3f} ms\n"

    def entry(self, name, backend, times, result, repeats=None, iterations=None):
        median = statistics.median(times)
        iterations = self.iterations if iterations is None else iterations
        return {
            "name": name,
            "description": self.description,
            "backend": backend,
            "iterations": iterations,
            "time_ms": median,
            "ops_per_sec": iterations / (median / 1e3) if median > 0 else math.inf,
            "min_ms": min(times),
            "max_ms": max(times),
            "repeats": len(times),
            "result": result,
        }


class Training(Benchmark):
    """microgpt.py's default run as a recipe has it, on the documents: the
    whole run a timed run (per_step_ms: per step)."""
    needs_docs = True

    def __init__(self, recipe, description, repeats=3):
        super().__init__(None, description, recipe.num_steps, repeats, warmup=0,
                         python_repeats=1)
        self.recipe = recipe

    def prepare(self, backend, docs, runs):
        recipe = self.recipe
        rng = backend.Random(recipe.seed)       # microgpt.py's shuffle, done once, untimed
        shuffled = list(docs)
        rng.shuffle(shuffled)
        tokenizer = Tokenizer(shuffled)
        after_shuffle = rng.getstate()

        def run():
            rng = backend.Random()
            rng.setstate(after_shuffle)
            model = backend.model(recipe.config(tokenizer.vocab_size), rng)
            for loss in train(model, shuffled, tokenizer, recipe.num_steps,
                              **recipe.training()):
                pass
            return loss
        return run

    def entry(self, *args, **kwargs):
        entry = super().entry(*args, **kwargs)
        entry["per_step_ms"] = entry["time_ms"] / self.iterations
        return entry


class LongTraining(Benchmark):
    """One training step a timed run, of a bigger model of a recipe on
    long_documents of the names, in file order (unshuffled: the timing does
    not depend on the order). Its entry adds the step's flops, its GFLOP/s
    and their ratio to the peak of the instruction set the kernels run with."""
    needs_docs = fused_only = True

    def __init__(self, recipe, description, repeats):
        super().__init__(None, description, 1, repeats, warmup=2)
        self.recipe = recipe

    def prepare(self, backend, docs, runs):
        recipe = self.recipe
        lines = long_documents(docs)
        tokenizer = Tokenizer(lines)
        short = [step for step in range(runs)
                 if len(lines[step % len(lines)]) + 1 < recipe.block_size]
        if short:       # names.txt never: 30 names and 29 spaces outgrow a block of 128
            raise DataError(f"line {short[0] % len(lines) + 1} of the long documents (30 names "
                            f"a line) is shorter than the {recipe.block_size}-token context")
        model = backend.model(recipe.config(tokenizer.vocab_size), backend.Random(recipe.seed))
        losses = train(model, lines, tokenizer, runs, **recipe.training())
        self.flops = training_flops(model.config, recipe.block_size)
        return lambda: next(losses)

    def announce(self, name, backend, runs):
        return f"{name} ({backend.name}, {self.warmup} untimed + {runs} timed steps) ... "

    def entry(self, name, backend, times, result, repeats=None, iterations=None):
        entry = super().entry(name, backend, times, result)
        isa, threads = kernel_isa(), compiled("_fused").threads()
        peak = peak_mul_add(probe_of(isa), repeats or BENCHMARKS["peak_mul_add"].repeats)[0]
        gflops = self.flops / entry["time_ms"] / 1e6
        # the peak is one core's: on n threads, n cores' worth
        entry.update(per_step_ms=entry["time_ms"], flops_per_step=self.flops, gflops=gflops,
                     kernel_isa=isa, threads=threads, peak_gflops=peak,
                     peak_ratio=gflops / (peak * threads))
        return entry

    def summary(self, entry):
        threads = entry["threads"]
        return (f"{entry['time_ms']:.3f} ms a step, {entry['gflops']:.1f} GFLOP/s, "
                f"{entry['peak_ratio']:.1%} of {entry['kernel_isa']}'s peak"
                f"{f' on {threads} cores' if threads > 1 else ''}\n")


class Peak(Benchmark):
    """The probe's rate with each instruction set the CPU has (gflops), its
    times those of the fused kernels' one."""
    fused_only = True

    def run(self, name, backend, repeats, docs, progress):
        runs = repeats or self.repeats
        progress(f"{name} ({runs} run{'s' * (runs > 1)} each) ... ")
        gflops = {isa: peak_mul_add(isa, runs)[0]
                  for isa in compiled("_peak").supported_isas()}
        isa = kernel_isa()
        rate, times, flops = peak_mul_add(probe_of(isa), runs)
        progress(", ".join(f"{n} {value:.1f}" for n, value in gflops.items()) + " GFLOP/s\n")
        entry = self.entry(name, backend.name, times, rate, iterations=flops)
        entry.update(gflops=gflops, kernel_isa=isa)
        return entry


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
    "train_500": Training(
        TRAINING["train_500"], "microgpt.py's default training on names.txt, loaded and "
        "shuffled (seed 42): build the model, 500 steps (per_step_ms is per step)"),
    "train_1000_v2": Training(
        TRAINING["train_1000_v2"], "the same with microgpt.py's final revision (recipe v2): "
        "block 16, relu, 1000 steps (per_step_ms is per step)"),
    "train_128x4x128": LongTraining(
        LONG["train_128x4x128"], "recipe v1 with n_embd 128, n_head 4, n_layer 4, block_size "
        "128 (seed 42), on names.txt 30 names a line, in file order: one training step a run "
        "(fused only), 2 untimed, then 10 timed", 10),
    "train_64x2x64": LongTraining(
        LONG["train_64x2x64"], "the same with n_embd 64, n_head 4, n_layer 2, block_size 64: "
        "2 untimed steps, then 30 timed", 30),
    "peak_mul_add": Peak(
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


# Time to quality (benchmark/quality.py builds on Benchmark and measure, above).
from .quality import QUALITY_SECONDS, Quality, Sampling  # noqa: E402

BENCHMARKS.update({
    "quality_1s": Quality(
        f"recipe v2 at n_embd 16, 32 and 64 (4 heads, 1 layer, block 16), batch sizes 1, 4, "
        f"16 and 32, each trained for the steps that fit in {QUALITY_SECONDS:g} s (chosen "
        "from a measured step rate; --quick or --repeat 1: 0.05 s): runs lists each run's "
        "held-out loss (the last 1000 shuffled names), steps, docs_per_s and seconds; the "
        "result is the best held-out loss"),
    "sample_tokens_per_s": Sampling(
        "200 names sampled (seed 42, temperature 0.5) from recipe v2 trained 300 steps of "
        "batch 16: tokens drawn a second (iterations: the tokens of a run)", 5),
})

# Fused backend only: the bigger models take minutes a step on the scalar
# graph, the probe measures what the fused kernels could reach, and time to
# quality is the fast path's.
FUSED_ONLY = [name for name, bench in BENCHMARKS.items() if bench.fused_only]
