"""microgpt.memory: what a run needs, against what the code allocates, and
what the machine has, read from /proc and cgroup files made up here."""
import random as stdlib_random
import resource
import tracemalloc

import pytest

import microgpt
from microgpt import memory
from microgpt.data import Tokenizer
from microgpt.engine import Value as PureValue
from microgpt.memory import available, format_bytes, graph_values, needed
from microgpt.model import GPT, Config
from microgpt.train import sample, train

if microgpt.BACKEND == "compiled":
    from microgpt.fused import FusedGPT      # (imported here, not while tracemalloc counts)

GiB, MiB = 1 << 30, 1 << 20


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


def paths():
    return ["fused", "compiled", "python"] if microgpt.BACKEND == "compiled" else ["python"]


def make(path, config, rng):
    if path == "fused":
        return FusedGPT(config, rng)
    if path == "python":
        return GPT(config, rng, Value=PureValue)
    return GPT(config, rng)


@pytest.mark.parametrize("path", paths())
@pytest.mark.parametrize("steps, samples", [(3, 2), (0, 3)])
def test_the_estimate_is_what_the_run_allocates(path, steps, samples):
    # tracemalloc sees every allocation of the run (the compiled ones too:
    # PyMem_Malloc, Python objects), though not the allocator's own overhead
    docs = ["abcdefghijkl", "mnopqrstuvwx", "yzabcdefghij"]      # every step 8 positions
    tokenizer = Tokenizer(docs)
    sizes = (8, 2, 1) if path == "python" else (16, 4, 2)      # (tracemalloc is slow)
    config = Config(tokenizer.vocab_size, *sizes, 8)
    rng = microgpt.random.Random(42)
    if path == "fused":                     # memory earlier tests' tensors left for reuse
        from microgpt.fused import release_kept_memory
        release_kept_memory()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        model = make(path, config, rng)
        for _ in train(model, docs, tokenizer, steps):
            pass
        for _ in range(samples):
            sample(model, tokenizer, rng, 1e6)      # hot: uniform, long samples
        used = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    estimate = needed(config, path, 8, steps, samples).total
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


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 999, 1000, 12_345_678, 999.9e6, 38.6e9, 123.4e9,
                                      3.84e12, 1234e12)] == [
        "0 bytes", "999 bytes", "1.0 kB", "12.3 MB", "1,000 MB", "38.6 GB", "123 GB",
        "3.8 TB", "1,234 TB"]


# -- what the machine has ------------------------------------------------------------

@pytest.fixture
def no_rlimits(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY,) * 2)


def fake(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path / "proc"), str(tmp_path / "cgroup")


def test_mem_available(tmp_path, no_rlimits):
    proc, cgroup = fake(tmp_path, {"proc/meminfo": "MemTotal: 8000000 kB\nMemFree: 1000 kB\n"
                                                   "MemAvailable: 4000000 kB\n"})
    got = available(proc, cgroup)
    assert (got.total, got.source) == (4000000 * 1024, "memory")
    assert got.describe() == "4.1 GB is available"


def test_nothing_known_is_none(tmp_path, no_rlimits):
    assert available(*fake(tmp_path, {})) is None


def test_cgroup_v2_every_level_counts(tmp_path, no_rlimits):
    proc, cgroup = fake(tmp_path, {
        "proc/meminfo": "MemAvailable: 16000000 kB\n",
        "proc/self/cgroup": "0::/user.slice/app.scope\n",
        "cgroup/cgroup.controllers": "memory\n",
        "cgroup/user.slice/app.scope/memory.max": f"{2 * GiB}\n",
        "cgroup/user.slice/app.scope/memory.current": f"{GiB}\n",
        "cgroup/user.slice/app.scope/memory.stat": f"anon 1\ninactive_file {256 * MiB}\n",
        "cgroup/user.slice/memory.max": "max\n",
        "cgroup/user.slice/memory.current": f"{5 * GiB}\n",
    })
    got = available(proc, cgroup)       # 2 GiB - (1 GiB - 256 MiB of droppable cache)
    assert (got.total, got.source) == (GiB + 256 * MiB, "cgroup")
    assert got.describe() == "1.3 GB is available under the cgroup's memory limit"
    (tmp_path / "cgroup/user.slice/app.scope/memory.current").write_text(f"{GiB + 200 * MiB}\n")
    assert available(proc, cgroup).total == GiB + 56 * MiB     # usage is read each time
    (tmp_path / "cgroup/user.slice/memory.max").write_text(f"{5 * GiB + 100 * MiB}\n")
    memory._LIMITED.clear()             # which cgroups have a limit: read once a process
    assert available(proc, cgroup).total == 100 * MiB          # the parent's limit is tighter


def test_cgroup_v2_inside_a_namespace(tmp_path, no_rlimits):
    # /proc/self/cgroup names a path the namespace's mount does not show: its root is ours
    proc, cgroup = fake(tmp_path, {
        "proc/self/cgroup": "0::/../../somewhere\n",
        "cgroup/memory.max": f"{GiB}\n",
        "cgroup/memory.current": f"{GiB - 10 * MiB}\n",
    })
    assert available(proc, cgroup).total == 10 * MiB


def test_cgroup_v1(tmp_path, no_rlimits):
    proc, cgroup = fake(tmp_path, {
        "proc/meminfo": "MemAvailable: 16000000 kB\n",
        "proc/self/cgroup": "5:cpu,cpuacct:/\n4:memory:/jobs/42\n0::/\n",
        "cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",    # no limit
        "cgroup/memory/memory.usage_in_bytes": f"{40 * GiB}\n",
        "cgroup/memory/jobs/42/memory.limit_in_bytes": f"{512 * MiB}\n",
        "cgroup/memory/jobs/42/memory.usage_in_bytes": f"{200 * MiB}\n",
        "cgroup/memory/jobs/42/memory.stat": f"cache 1\ntotal_inactive_file {100 * MiB}\n",
    })
    got = available(proc, cgroup)
    assert (got.total, got.source) == (412 * MiB, "cgroup")


def test_ulimit_v_and_d(tmp_path, monkeypatch):
    limits = {resource.RLIMIT_AS: (GiB, GiB), resource.RLIMIT_DATA: (3 * GiB, 3 * GiB)}
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: limits.get(which, (resource.RLIM_INFINITY,) * 2))
    proc, cgroup = fake(tmp_path, {
        "proc/meminfo": "MemAvailable: 16000000 kB\n",
        "proc/self/status": "Name: python\nVmSize:\t  102400 kB\nVmData:\t   51200 kB\n",
    })
    got = available(proc, cgroup)
    assert (got.total, got.source) == (GiB - 100 * MiB, "ulimit -v")
    assert got.describe() == "969 MB is available under ulimit -v"
    limits[resource.RLIMIT_AS] = (resource.RLIM_INFINITY,) * 2
    limits[resource.RLIMIT_DATA] = (GiB // 2, GiB)
    got = available(proc, cgroup)
    assert (got.total, got.source) == (GiB // 2 - 50 * MiB, "ulimit -d")


def test_this_machine():
    got = available()
    if got is not None:
        assert got.total >= 0 and got.source in ("memory", "cgroup", "ulimit -v", "ulimit -d")
