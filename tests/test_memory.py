"""microgpt.memory: what a run needs, against what the code allocates."""
import json
import os
import random as stdlib_random
import subprocess
import sys
import tracemalloc

import pytest

import microgpt
from microgpt import memory
from microgpt.data import Tokenizer
from microgpt.engine import Value as PureValue
from microgpt.memory import batch_values, graph_values, needed
from microgpt.model import GPT, Config
from microgpt.train import sample, train

if microgpt.BACKEND == "compiled":
    from microgpt.fused import FusedGPT      # (imported here, not while tracemalloc counts)



# -- what a run needs ---------------------------------------------------------------

def graph_size(loss, params):
    """The Values reachable from loss, parameters not counted."""
    seen, stack = {id(loss)}, [loss]
    while stack:
        for child in stack.pop()._children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen - {id(p) for p in params})


@pytest.mark.parametrize("activation", ["relu2", "relu"])
@pytest.mark.parametrize("sizes, positions", [
    ((27, 16, 4, 1, 8), 8), ((27, 16, 4, 1, 8), 3), ((5, 8, 2, 2, 6), 5),
    ((30, 12, 3, 3, 7), 7), ((3, 4, 1, 1, 1), 1), ((9, 6, 6, 2, 4), 4),
])
def test_graph_values_counts_microgpt_py_graph(sizes, positions, activation):
    config = Config(*sizes, activation=activation)
    model = GPT(config, stdlib_random.Random(1), Value=PureValue)
    assert len(model.params) == memory.parameter_count(config)
    tokens = [stdlib_random.Random(2).randrange(config.vocab_size) for _ in range(positions + 1)]
    assert graph_size(model.loss(tokens), model.params) == graph_values(config, positions)


@pytest.mark.parametrize("lengths", [[3], [3, 1, 5], [2, 2, 2, 2]])
def test_batch_values_counts_the_batch_graph(lengths):
    config = Config(9, 8, 2, 2, 6)
    model = GPT(config, stdlib_random.Random(2), Value=PureValue)
    rng = stdlib_random.Random(4)
    batch = [[rng.randrange(config.vocab_size) for _ in range(m + 1)] for m in lengths]
    loss = model.batch_loss(batch) if len(batch) > 1 else model.loss(batch[0])
    counts = {}
    for m in lengths:
        counts[m] = counts.get(m, 0) + 1
    assert graph_size(loss, model.params) == batch_values(config, counts)
    if len(lengths) == 1:
        assert batch_values(config, counts) == graph_values(config, lengths[0])


def paths():
    return ["fused", "compiled", "python"] if microgpt.BACKEND == "compiled" else ["python"]


def make(path, config, rng):
    if path == "fused":
        return FusedGPT(config, rng)
    if path == "python":
        return GPT(config, rng, Value=PureValue)
    return GPT(config, rng)


@pytest.mark.parametrize("path", paths())
@pytest.mark.parametrize("steps, samples, batch_size", [(3, 2, 1), (0, 3, 1), (3, 0, 3)])
def test_the_estimate_is_what_the_run_allocates(path, steps, samples, batch_size):
    # tracemalloc sees every allocation of the run (the compiled ones too:
    # PyMem_Malloc, Python objects), though not the allocator's own overhead
    docs = ["abcdefghijkl", "mnopqrstuvwx", "yzabcdefghij"]      # every step 8 positions
    positions = 8
    sizes = (8, 2, 1) if path == "python" else (16, 4, 2)      # (tracemalloc is slow)
    if path == "fused" and steps:   # steps of more than the KEPT_AT_LEAST that may be kept
        docs, positions = [doc * 6 for doc in docs], 64
    tokenizer = Tokenizer(docs)
    config = Config(tokenizer.vocab_size, *sizes, positions)
    rng = microgpt.random.Random(42)
    if path == "fused":                     # memory earlier tests' tensors left for reuse
        from microgpt.fused import release_kept_memory
        release_kept_memory()
    if path == "compiled":                  # and earlier tests' Values
        from microgpt._engine import release_kept_memory
        release_kept_memory()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        model = make(path, config, rng)
        for _ in train(model, docs, tokenizer, steps, batch_size=batch_size):
            pass
        for _ in range(samples):
            sample(model, tokenizer, rng, 1e6)      # hot: uniform, long samples
        used = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    estimate = needed(config, path, positions, steps, samples, batch_size=batch_size).total
    # the scalar estimates allow for their allocator's fragmentation (see microgpt.memory)
    low, high = {"fused": (0.95, 1.1), "compiled": (0.95, 1.15), "python": (1.0, 1.4)}[path]
    assert low < estimate / used < high, (estimate, used, estimate / used)


def test_fused_parameters_are_32_bytes_each():
    need = needed(Config(27, 1024, 4, 4, 64), "fused", 64, 1, 1)
    assert need.parameters == 2 * 27 * 1024 + 64 * 1024 + 4 * 12 * 1024 * 1024 == 50_452_480
    assert need.total == 32 * 50_452_480 + need.step_bytes


def test_the_estimate_grows_with_each_size():
    base = dict(vocab_size=27, n_embd=16, n_head=4, n_layer=1, block_size=8)
    for path in ("fused", "compiled", "python"):
        need = needed(Config(**base), path, 8, 10, 10).total
        for name, bigger in [("vocab_size", 54), ("n_embd", 32), ("n_layer", 2),
                             ("block_size", 16)]:
            assert needed(Config(**dict(base, **{name: bigger})), path, 16, 10, 10).total > need
        assert needed(Config(**base), path, 4, 10, 10).total < need      # shorter documents


# -- the estimate against the peak the machine counts ---------------------------------

PEAK = r"""
import json, random, sys
import microgpt
from microgpt.data import Tokenizer
from microgpt.fused import FusedGPT, set_threads
from microgpt.memory import needed
from microgpt.model import GPT, Config
from microgpt.train import sample, train

def status(name):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(name + ":"))

sizes, lengths, steps, samples, threads, batch_size = json.loads(sys.argv[1])
path = sys.argv[2]
rng = random.Random(0)
docs = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)) for n in lengths]
tokenizer = Tokenizer(docs)
config = Config(tokenizer.vocab_size, *sizes)
set_threads(threads)
need = needed(config, path, max(lengths) + 1, steps, samples,
              lengths=[n + 1 for n in lengths], threads=threads, batch_size=batch_size)
generator = microgpt.random.Random(42)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                # the peak (VmHWM) from here
start = status("VmRSS")
model = FusedGPT(config, generator) if path == "fused" else GPT(config, generator)
for _ in train(model, docs, tokenizer, steps, batch_size=batch_size):
    pass
for _ in range(samples):
    sample(model, tokenizer, generator, 1e6)
print(json.dumps([need.total, status("VmHWM") - start]))
"""

ALLOCATORS = 1.5e6

# (n_embd, n_head, n_layer, block_size), document lengths, steps, samples, threads
# [, batch size]
GRID = {
    "one head, block 2048": ((16, 1, 1, 2048), [2100], 3, 1, 1),
    "one head, block 2048, varying": ((16, 1, 1, 2048), [300, 2100, 1500, 700, 50], 6, 1, 1),
    "4 heads, block 512, varying": ((16, 4, 1, 512), [100, 200, 513, 400, 300, 20], 18, 1, 1),
    "two layers, varying": ((64, 4, 2, 64), [60, 70, 65, 30, 12, 64], 30, 2, 1),
    "128 wide": ((128, 4, 2, 128), [130, 120, 20], 6, 1, 1),
    "one head, two layers, varying": ((32, 1, 2, 256), [250, 10, 100, 255, 30, 200], 12, 1, 1),
    "two threads": ((16, 4, 1, 512), [100, 200, 513, 400, 300, 20], 12, 1, 2),
    "batches of 4, varying": ((16, 4, 1, 512), [100, 200, 513, 400, 300, 20], 6, 1, 1, 4),
    "batches of 3, two layers": ((64, 4, 2, 64), [60, 70, 65, 30, 12, 64, 5], 8, 1, 1, 3),
    "batches of 16, short": ((16, 4, 1, 16), [8, 3, 15, 6, 9], 12, 1, 1, 16),
}


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="the fused path is compiled")
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux's peak RSS")
@pytest.mark.skipif("LD_PRELOAD" in os.environ or "PYTHONMALLOC" in os.environ,
                    reason="another allocator (the sanitizers') has peaks of its own")
@pytest.mark.parametrize("kernels", ["", "plain"])
@pytest.mark.parametrize("case", GRID)
def test_the_estimate_is_the_peak_the_machine_counts(case, kernels):
    # one process a run: the peak of its resident memory (VmHWM) from the
    # moment the estimate is made, with documents of lengths that vary (the
    # kept memory of freed tensors, the heap's holes), one head and long
    # blocks (the attention's positions x positions), one thread and two
    env = dict(os.environ, MICROGPT_KERNELS=kernels) if kernels else None
    shape = (GRID[case] + (1,))[:6]
    done = subprocess.run([sys.executable, "-c", PEAK, json.dumps(shape), "fused"], env=env,
                          capture_output=True, text=True, check=True)
    estimate, peak = json.loads(done.stdout)
    # within 10%; a small run, within what the allocators keep of their own
    # (pymalloc's arenas, the C library's heap of blocks under 16 KiB, which
    # documents of varying length leave with holes): about a megabyte
    assert abs(estimate - peak) < max(0.1 * peak, ALLOCATORS), (estimate, peak, estimate / peak)


SCALAR_GRID = {
    "microgpt.py's size, varying": ((16, 4, 1, 16), [15, 12, 8, 15], 4, 1, 1),
    "two layers, 32 wide": ((32, 4, 2, 32), [30, 20, 31], 3, 1, 1),
}


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="the compiled Value's memory")
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux's peak RSS")
@pytest.mark.skipif("LD_PRELOAD" in os.environ or "PYTHONMALLOC" in os.environ,
                    reason="another allocator (the sanitizers') has peaks of its own")
@pytest.mark.parametrize("case", SCALAR_GRID)
def test_the_scalar_estimate_is_the_peak_the_machine_counts(case):
    # the compiled Values' slabs, two graphs alive at a step's peak
    shape = (SCALAR_GRID[case] + (1,))[:6]
    done = subprocess.run([sys.executable, "-c", PEAK, json.dumps(shape), "compiled"],
                          capture_output=True, text=True, check=True)
    estimate, peak = json.loads(done.stdout)
    assert abs(estimate - peak) < max(0.1 * peak, ALLOCATORS), (estimate, peak, estimate / peak)


KEPT_THEN_MORE = r"""
import resource
import microgpt
from microgpt.data import Tokenizer
from microgpt.fused import FusedGPT
from microgpt.model import Config
from microgpt.train import train

def status(name):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(name + ":"))

docs = ["a" * 1023, "b" * 1023]
tokenizer = Tokenizer(docs)
model = FusedGPT(Config(tokenizer.vocab_size, 16, 1, 1, 1024), microgpt.random.Random(1))
for _ in train(model, docs, tokenizer, 2):
    pass
# the steps' tensors (tens of MB) are kept for reuse; the address space now
# ends 4 MiB above what is mapped, and a model of 12.8 MB is asked for
limit = status("VmSize") + (4 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
FusedGPT(Config(27, 128, 4, 4, 64), microgpt.random.Random(2))
"""


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="the fused path is compiled")
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux's VmSize")
@pytest.mark.skipif("LD_PRELOAD" in os.environ,
                    reason="AddressSanitizer's shadow memory needs more address space")
def test_memory_runs_out_only_once_the_kept_memory_is_freed():
    subprocess.run([sys.executable, "-c", KEPT_THEN_MORE], check=True)


BATCHES_OF_OTHER_SIZES = r"""
import resource
import microgpt
from microgpt.data import Tokenizer
from microgpt.fused import FusedGPT
from microgpt.model import Config
from microgpt.train import train

rng = microgpt.random.Random(3)
docs = ["".join(rng.choice("abcdefgh") for _ in range(rng.randrange(1, 16))) for _ in range(997)]
tokenizer = Tokenizer(docs)
model = FusedGPT(Config(tokenizer.vocab_size, 16, 4, 1, 16), rng)
steps = train(model, docs, tokenizer, 400, batch_size=16)
for _ in range(100):        # every size of block the steps ask for has been seen
    next(steps)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(300):
    next(steps)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 300)
"""


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="the fused path is compiled")
@pytest.mark.skipif(sys.platform != "linux", reason="mremap resizes the kept blocks")
@pytest.mark.skipif("LD_PRELOAD" in os.environ or "PYTHONMALLOC" in os.environ,
                    reason="another allocator (the sanitizers') faults in pages of its own")
def test_batches_of_other_sizes_reuse_the_pages_of_the_kept_blocks():
    # a step's blocks of pages (16 KiB and more), whose sizes change with
    # the batch's positions, come from the kept ones resized, not as new
    # pages: about 32 page faults a step, where new blocks took 231
    faults = float(subprocess.run([sys.executable, "-c", BATCHES_OF_OTHER_SIZES], check=True,
                                  capture_output=True, text=True).stdout)
    assert faults < 60, faults
