"""
Time to quality: how good a names model the fast path trains in about a
second (Quality, ``quality_1s``), and how fast a trained model samples
(Sampling, ``sample_tokens_per_s``).

quality_1s trains recipe v2 at a few sizes and batch sizes, each for as
many steps as fit in its time budget: the steps are chosen from the step
rate of a short untimed run first, so that each run's learning rate decays
to 0 over the steps it takes, as a run of that length would. Each run then
reports the mean loss of the held-out documents (the last QUALITY_VAL_DOCS
of the shuffled names, never trained on), the steps, the documents a second
and the seconds its training took.
"""
import time

from microgpt.data import DataError, Text
from microgpt.recipe import V2

from .workloads import Benchmark, measure

QUALITY_SIZES = [(16, 1, 16), (32, 1, 16), (64, 1, 16)]     # n_embd, n_layer, block_size
QUALITY_BATCHES = [1, 4, 16, 32]
QUALITY_SECONDS = 1.0       # of training, per size and batch size (--quick: QUICK_SECONDS)
QUICK_SECONDS = 0.05
QUALITY_VAL_DOCS = 1000
PROBE_SECONDS = 0.15        # of steps timed to choose the steps that fit
SAMPLES = 200               # a timed run of sample_tokens_per_s
SAMPLING_STEPS = 300        # of batches of 16: the model sampled from


def quality_recipe(n_embd, n_layer, block_size, batch_size, num_steps):
    """Recipe v2 at this size (4 heads), batch size and number of steps."""
    return V2.replace(n_embd=n_embd, n_head=4, n_layer=n_layer, block_size=block_size,
                      batch_size=batch_size, num_steps=num_steps)


def steps_that_fit(text, recipe, seconds, val_docs):
    """How many steps of recipe take about `seconds`: from the median step
    time of PROBE_SECONDS of steps (at least 3), after 3 untimed ones."""
    from microgpt.run import Run
    run = Run(text, recipe.replace(num_steps=10 ** 9), val_docs=val_docs)
    times, steps = [], iter(run)
    for _ in range(3):          # the first steps allocate (and start the threads)
        next(steps)
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < PROBE_SECONDS:
        begin = time.perf_counter()
        next(steps)
        times.append(time.perf_counter() - begin)
    times.sort()
    return max(1, int(seconds / times[len(times) // 2]))


class Quality(Benchmark):
    """Runs of recipe v2 at QUALITY_SIZES x QUALITY_BATCHES, each for the
    steps that fit in QUALITY_SECONDS of training: their held-out loss, in
    ``runs``; the result is the best run's."""
    needs_docs = fused_only = True

    def __init__(self, description):
        super().__init__(None, description, len(QUALITY_SIZES) * len(QUALITY_BATCHES), 1,
                         warmup=0)

    def run(self, name, backend, repeats, docs, progress):
        from microgpt.run import Run
        seconds = QUICK_SECONDS if repeats == 1 else QUALITY_SECONDS
        if len(docs) <= QUALITY_VAL_DOCS:
            raise DataError(f"{name} holds out {QUALITY_VAL_DOCS} documents and trains on the "
                            f"others: the input has only {len(docs)}")
        text = Text("names.txt", docs)
        progress(f"{name} ({backend.name}, {seconds:g} s of training a run) ...\n")
        runs = []
        for n_embd, n_layer, block_size in QUALITY_SIZES:
            for batch_size in QUALITY_BATCHES:
                recipe = quality_recipe(n_embd, n_layer, block_size, batch_size, 1)
                steps = steps_that_fit(text, recipe, seconds, QUALITY_VAL_DOCS)
                run = Run(text, recipe.replace(num_steps=steps), val_docs=QUALITY_VAL_DOCS)
                start = time.perf_counter()
                for _ in run:
                    pass
                took = time.perf_counter() - start
                runs.append({"n_embd": n_embd, "n_layer": n_layer, "block_size": block_size,
                             "batch_size": batch_size, "steps": steps, "seconds": took,
                             "docs_per_s": steps * batch_size / took,
                             "val_loss": run.evaluate()})
                progress(f"  {n_embd}x{n_layer}x{block_size} batch {batch_size:2d}: {steps:6d} "
                         f"steps in {took:.2f} s, {runs[-1]['docs_per_s']:8.0f} docs/s, "
                         f"held-out loss {runs[-1]['val_loss']:.4f}\n")
        best = min(runs, key=lambda r: r["val_loss"])
        total = sum(r["seconds"] for r in runs) * 1e3
        entry = self.entry(name, backend.name, [total], best["val_loss"])
        entry.update(runs=runs, best=best, val_docs=QUALITY_VAL_DOCS, budget_seconds=seconds)
        return entry


class Sampling(Benchmark):
    """Tokens a second of sampling SAMPLES names from a model of recipe v2
    trained for SAMPLING_STEPS steps of 16 documents: each name's characters
    and the BOS that ends it (none where it fills the context) are the
    tokens drawn."""
    needs_docs = fused_only = True

    def __init__(self, description, repeats):
        super().__init__(None, description, 1, repeats)

    def run(self, name, backend, repeats, docs, progress):
        from microgpt.run import Run
        runs = repeats or self.repeats
        recipe = quality_recipe(16, 1, 16, 16, SAMPLING_STEPS)
        run = Run(Text("names.txt", docs), recipe)
        for _ in run:
            pass
        model, block_size = run.model, recipe.block_size
        progress(f"{name} ({backend.name}, {runs} run{'s' * (runs > 1)}) ... ")

        def workload():
            names = model.sample(SAMPLES, seed=42)
            return sum(min(len(n) + 1, block_size) for n in names), names[:3]
        times, (tokens, first) = measure(workload, runs, self.warmup)
        entry = self.entry(name, backend.name, times, first, iterations=tokens)
        entry["tokens_per_s"] = entry["ops_per_sec"]
        progress(f"{entry['tokens_per_s']:.0f} tokens/s\n")
        return entry
