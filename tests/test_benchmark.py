"""python -m microgpt.benchmark: the JSON schema, and that each workload
computes what its oracle computes."""
import datetime
import json
import random as stdlib_random
import subprocess
import sys
from pathlib import Path

import pytest

import microgpt
from microgpt.benchmark import (BENCHMARKS, FUSED_ONLY, LONG, MODEL, STANDARD, TRAINING,
                                long_documents, training_flops)
from microgpt.data import Tokenizer, load_docs
from microgpt.engine import Value as PureValue
from microgpt.model import GPT, Config
from microgpt.train import Adam, train

ROOT = Path(__file__).resolve().parents[1]


def harness(*args):
    return subprocess.run([sys.executable, "-m", "microgpt.benchmark", *args],
                          capture_output=True, text=True)


# every benchmark but the trainings and the fused-only ones, which have tests of their own
NAMES = [name for name in BENCHMARKS if name not in TRAINING and name not in FUSED_ONLY]
needs_compiled = pytest.mark.skipif(microgpt.BACKEND != "compiled",
                                    reason="the fused backend and the probe are compiled")


@pytest.fixture(scope="module")
def quick_report():
    result = harness("--quick", "--only", *NAMES)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)    # stdout is the JSON and nothing else


def entries(report, backend):
    return {e["name"]: e for e in report["benchmarks"] if e["backend"] == backend}


def test_schema(quick_report):
    r = quick_report
    assert r["language"] == "python" and r["implementation"] == "microgpt"
    assert r["version"] == ".".join(map(str, sys.version_info[:3]))
    assert r["microgpt_version"] == microgpt.__version__
    assert r["backend"] == microgpt.BACKEND
    stamp = datetime.datetime.strptime(r["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs(now - stamp) < datetime.timedelta(minutes=10)
    assert isinstance(r["machine"], dict) and r["machine"]["cpus"] >= 1
    for e in r["benchmarks"]:
        assert e["name"] in BENCHMARKS and e["description"]
        assert isinstance(e["iterations"], int) and e["iterations"] > 0
        assert 0 < e["min_ms"] <= e["time_ms"] <= e["max_ms"]
        assert e["repeats"] == 1
        assert e["ops_per_sec"] == pytest.approx(e["iterations"] / e["time_ms"] * 1e3)
    own = entries(r, microgpt.BACKEND)
    assert list(own) == NAMES                   # every benchmark, in order
    if microgpt.BACKEND == "compiled":
        baseline, fast = entries(r, "python"), entries(r, "fused")
        assert sorted(baseline) == sorted(STANDARD)
        assert sorted(fast) == sorted(name for name in MODEL if name not in TRAINING)
        for name in STANDARD:
            for measured in (own, fast):
                if name in measured:
                    assert measured[name]["speedup"] == pytest.approx(
                        baseline[name]["time_ms"] / measured[name]["time_ms"])


@pytest.mark.slow
@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="minutes on the pure-Python backend")
def test_the_trainings_are_microgpt_pys_default_runs(names_txt, references):
    result = harness("--quick", "--input", str(names_txt), "--only", *TRAINING)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for backend in ("compiled", "fused"):
        measured = entries(report, backend)
        assert list(measured) == list(TRAINING)
        for (name, recipe), steps in zip(TRAINING.items(), (500, 1000)):
            entry = measured[name]
            assert entry["iterations"] == steps and entry["repeats"] == 1
            assert entry["per_step_ms"] == pytest.approx(entry["time_ms"] / steps)
            # the last loss of microgpt.py's default run of that revision
            assert entry["result"] == float(references[recipe.name]["json"]["losses"][-1])


def test_workloads_compute_what_their_oracles_compute(quick_report, references):
    own = entries(quick_report, microgpt.BACKEND)
    rng = stdlib_random.Random(42)
    draws = [rng.random() for _ in range(1_000_000)]
    assert own["random_1m"]["result"] == draws[-1]
    rng = stdlib_random.Random(42)
    assert own["gauss_100k"]["result"] == [rng.gauss(0, 1) for _ in range(100_000)][-1]
    assert own["random_array_1m"]["result"] == draws[-1]
    assert own["gauss_array_100k"]["result"] == own["gauss_100k"]["result"]
    assert own["value_forward_10k"]["result"] == max(0.0, ((9999 + 1) * 2.0) ** 2)
    x, y = PureValue(2), PureValue(3)
    z = (x * y + x ** 2).log()
    z.backward()
    assert own["value_backward_1k"]["result"] == [z.data, x.grad, y.grad]
    # the model workloads, written out with the pure-Python oracle
    model = GPT(Config(27), stdlib_random.Random(42), Value=PureValue)
    keys, values = model.empty_cache()
    assert own["gpt_forward_10"]["result"] == [l.data for l in model.gpt(0, 0, keys, values)]
    model = GPT(Config(27), stdlib_random.Random(42), Value=PureValue)
    loss = model.loss([26] + [ord(c) % 26 for c in "test"] + [26])
    loss.backward()
    Adam(model.params).step(0, 0.01)
    assert own["training_step_1"]["result"] == loss.data
    if microgpt.BACKEND == "compiled":      # the baselines and the fast path computed the same
        for backend in ("python", "fused"):
            for name, entry in entries(quick_report, backend).items():
                assert entry["result"] == own[name]["result"], (backend, name)


def test_list_only_and_backend():
    listed = harness("--list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(BENCHMARKS)
    assert {"train_128x4x128", "train_64x2x64", "peak_mul_add"} <= set(BENCHMARKS)
    result = harness("--quick", "--only", "value_backward_1k", "gauss_100k", "--backend", "python")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(e["name"], e["backend"]) for e in report["benchmarks"]] == [
        ("value_backward_1k", "python"), ("gauss_100k", "python")]
    assert "value_backward_1k (python, 1 run) ..." in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--only", "nope"], "unknown benchmark 'nope'"),
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--backend", "fast"], "invalid choice: 'fast'"),
    (["--backend", "fused", "--only", "gpt_forward_10", "--repeat", "-1"], "at least 1"),
    (["--backend", "python", "--only", "train_64x2x64"],
     "train_64x2x64 runs on the fused backend only, not with --backend python"),
    (["--threads", "0"], "--threads must be from 1 to 256"),
])
def test_bad_arguments(args, message):
    result = harness(*args)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


def test_repeat_sets_the_runs():
    result = harness("--repeat", "3", "--only", "value_backward_1k", "--backend", "python")
    report = json.loads(result.stdout)
    assert report["benchmarks"][0]["repeats"] == 3


def test_compare_writes_a_table(tmp_path):
    def report(backend, times):
        return {"language": "python", "implementation": "microgpt", "backend": backend,
                "benchmarks": [{"name": n, "backend": backend, "time_ms": t} for n, t in times]}
    (tmp_path / "fast.json").write_text(json.dumps(report("compiled", [("a", 2.0), ("b", 0.5)])))
    (tmp_path / "slow.json").write_text(json.dumps(report("python", [("a", 30.0), ("c", 7.0)])))
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"),
                             str(tmp_path / "fast.json"), str(tmp_path / "slow.json")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "| benchmark | fast ms | slow ms | slow / fast |"
    assert lines[2] == "| a | 2.00 | 30.00 | 15x |"
    assert lines[3] == "| b | 0.500 |  |  |"
    assert lines[4] == "| c |  | 7.00 |  |"


def test_an_unusable_input_is_one_line(tmp_path):
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "microgpt.benchmark", "--quick", *args],
        capture_output=True, text=True)
    missing = run("--input", str(tmp_path / "missing.txt"), "--only", "train_500")
    assert missing.returncode == 2 and "missing.txt: no such file" in missing.stderr
    assert missing.stdout == "" and missing.stderr.count("\n") == 1


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="compares the compiled Value with the pure one")
def test_value_step_benchmark_runs():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "value_step.py"),
                             "--rounds", "1", "--steps", "2", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["speedup"] == pytest.approx(report["pure_python_ms_per_step"]
                                              / report["compiled_ms_per_step"])


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="compares the compiled Value with the pure one")
def test_mlp_step_benchmark_runs_both_engines_to_the_same_losses():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mlp_step.py"),
                             "--rounds", "2", "--steps", "2", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr     # (it exits 1 where the losses differ)
    report = json.loads(result.stdout)
    assert report["rounds"] == 2 and report["steps_per_round"] == 2
    assert 0 < report["last_loss"] < 10
    assert report["compiled_ms_per_step"] > 0 and report["pure_python_ms_per_step"] > 0


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="all backends need the compiled core")
def test_backend_all_runs_every_backend():
    result = harness("--backend", "all", "--quick", "--only", "gpt_forward_10", "random_1m")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backend"] == "all"
    assert [(e["name"], e["backend"]) for e in report["benchmarks"]] == [
        ("gpt_forward_10", "compiled"), ("gpt_forward_10", "fused"), ("gpt_forward_10", "python"),
        ("random_1m", "compiled"), ("random_1m", "python")]
    fused = report["benchmarks"][1]
    assert fused["result"] == report["benchmarks"][0]["result"] and fused["speedup"] > 0


def test_long_documents_join_consecutive_names():
    names = [f"n{i}" for i in range(65)]
    assert long_documents(names) == [" ".join(names[:30]), " ".join(names[30:60]),
                                     " ".join(names[60:])]      # the last group shorter
    assert long_documents(names, per_line=1) == names
    assert long_documents(["ann", "bo", "cy"], per_line=2) == ["ann bo", "cy"]
    assert long_documents([]) == []
    with pytest.raises(ValueError):
        long_documents(names, per_line=0)


def test_names_txt_in_long_documents_fills_every_context(names_txt):
    docs = load_docs(names_txt)
    lines = long_documents(docs)
    assert len(lines) == -(-len(docs) // 30) and " ".join(lines) == " ".join(docs)
    # T = min(block_size, len(tokens) - 1) is block_size at every step of both models
    block_size = max(recipe.block_size for recipe in LONG.values())
    tokenizer = Tokenizer(lines)
    assert min(len(tokenizer.encode(line)) - 1 for line in lines) >= block_size


@pytest.mark.parametrize("config, positions", [
    (Config(5, n_embd=8, n_head=2, n_layer=2, block_size=4), 3),
    (Config(27), 8),                                    # microgpt.py's model, a full block
])
def test_the_flop_count_is_a_steps_multiply_adds_counted_by_hand(config, positions):
    model = GPT(config, stdlib_random.Random(1), Value=PureValue)
    multiply_adds = 0
    for name, matrix in model.state_dict.items():
        if name not in ("wte", "wpe"):          # looked up, not multiplied
            nout, nin = len(matrix), len(matrix[0])
            # at each position: forward, the input's gradient, the weight's gradient
            multiply_adds += positions * 3 * nout * nin
    for layer in range(config.n_layer):
        for head in range(config.n_head):
            for t in range(positions):
                for s in range(t + 1):          # each key at or before the query
                    multiply_adds += 2 * config.head_dim     # forward: q.k, weight * v
                    multiply_adds += 4 * config.head_dim     # backward: into q, k, weight, v
    assert training_flops(config, positions) == 2 * multiply_adds


@needs_compiled
def test_the_bigger_models_report_their_rate_against_the_peak(names_txt):
    result = harness("--quick", "--input", str(names_txt), "--only", "train_64x2x64",
                     "peak_mul_add")
    assert result.returncode == 0, result.stderr
    assert "train_64x2x64 (fused, 2 untimed + 1 timed steps) ..." in result.stderr
    trained, peak = json.loads(result.stdout)["benchmarks"]
    assert (trained["name"], trained["backend"]) == ("train_64x2x64", "fused")
    assert (peak["name"], peak["backend"]) == ("peak_mul_add", "fused")
    # the probe: every instruction set the CPU has, the kernels' one timed
    from microgpt import _peak
    assert list(peak["gflops"]) == list(_peak.supported_isas())
    assert all(rate > 0 for rate in peak["gflops"].values())
    assert peak["result"] == peak["gflops"][peak["kernel_isa"]]
    assert peak["ops_per_sec"] == pytest.approx(peak["result"] * 1e9)
    # the training: one step a run, its flops over the same process's peak
    recipe = LONG["train_64x2x64"]
    lines = long_documents(load_docs(names_txt))
    tokenizer = Tokenizer(lines)
    config = recipe.config(tokenizer.vocab_size)
    assert trained["iterations"] == 1 and trained["repeats"] == 1
    assert trained["per_step_ms"] == trained["time_ms"] > 0
    assert trained["flops_per_step"] == training_flops(config, recipe.block_size)
    assert trained["gflops"] == pytest.approx(trained["flops_per_step"] / trained["time_ms"] / 1e6)
    assert trained["kernel_isa"] == peak["kernel_isa"] and trained["threads"] == 1
    assert trained["peak_gflops"] == peak["result"]        # one probe per process
    assert trained["peak_ratio"] == pytest.approx(trained["gflops"] / peak["result"])
    assert 0 < trained["peak_ratio"] < 1
    # seed 42, recipe v1, the lines unshuffled: the loss of the third of 3 steps
    from microgpt.fused import FusedGPT
    model = FusedGPT(config, microgpt.random.Random(42))
    losses = list(train(model, lines, tokenizer, 3, **recipe.training()))
    assert trained["result"] == losses[-1]


@needs_compiled
def test_on_two_threads_the_ratio_is_against_two_cores(names_txt):
    result = harness("--quick", "--threads", "2", "--input", str(names_txt), "--only",
                     "train_64x2x64")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    trained, = report["benchmarks"]
    assert report["threads"] == trained["threads"] == 2
    assert trained["peak_ratio"] == pytest.approx(trained["gflops"] / (2 * trained["peak_gflops"]))
    assert "of avx" in result.stderr or "of portable" in result.stderr


@needs_compiled
def test_documents_too_short_for_the_context_are_an_error(tmp_path):
    (tmp_path / "short.txt").write_text("ab\ncd\n")
    result = harness("--quick", "--input", str(tmp_path / "short.txt"), "--only", "train_64x2x64")
    assert result.returncode == 2 and result.stdout == ""
    assert "line 1 of the long documents (30 names a line) is shorter than the 64-token " \
           "context" in result.stderr


@needs_compiled
def test_the_peak_probe_counts_its_flops_and_rejects_bad_arguments():
    from microgpt import _peak
    supported = _peak.supported_isas()
    assert supported[0] == "portable" and set(supported) <= set(_peak.ISAS)
    flops, seconds = _peak.mul_add_rate("portable", 1000)
    assert flops == 1000 * 2 * _peak.ACCUMULATORS and seconds > 0
    lanes = {"portable": 1, "avx2": 4, "avx512": 8}
    for isa in supported:
        assert _peak.mul_add_rate(isa, 10)[0] == 10 * 2 * _peak.ACCUMULATORS * lanes[isa]
        assert _peak.mul_add_rate(isa, 0)[0] == 0
    for isa in set(_peak.ISAS) - set(supported):
        with pytest.raises(ValueError, match="cannot run"):
            _peak.mul_add_rate(isa, 10)
    for isa, iterations, error in [
            ("avx", 10, ValueError), ("AVX2", 10, ValueError), ("", 10, ValueError),
            (None, 10, TypeError), (b"portable", 10, TypeError), (2, 10, TypeError),
            ("portable", -1, ValueError), ("portable", _peak.MAX_ITERATIONS + 1, ValueError),
            ("portable", 2 ** 200, ValueError), ("portable", 1.0, TypeError),
            ("portable", "10", TypeError), ("portable", None, TypeError)]:
        with pytest.raises(error):
            _peak.mul_add_rate(isa, iterations)


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="times the fused path")
def test_compare_builds_times_two_builds_side_by_side():
    # this interpreter's environment, twice (once by a path relative to the
    # directory the tool starts in): the two columns time the same build
    venv = Path(sys.executable).parent.parent
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_builds.py"),
                             venv.name, str(venv), "--rounds", "1", "--sizes", "16x1x8",
                             "--isa", "portable", "--threads", "1,2", "--json"],
                            capture_output=True, text=True, cwd=venv.parent)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rounds"] == 1 and report["builds"] == [venv.name, str(venv)]
    assert [(r["isa"], r["threads"], r["size"]) for r in report["rows"]] == [
        ("portable", 1, "16x1x8"), ("portable", 2, "16x1x8")]
    for row in report["rows"]:
        assert row["ran"] == ["portable", "portable"]
        assert row["ms_0"] > 0 and row["ratio_1"] == pytest.approx(row["ms_1"] / row["ms_0"])


@needs_compiled
def test_quality_runs_are_the_runs_they_say(names_txt):
    from microgpt.benchmark.quality import (QUALITY_BATCHES, QUALITY_SIZES, QUALITY_VAL_DOCS,
                                            SAMPLES, SAMPLING_STEPS, quality_recipe)
    result = harness("--quick", "--input", str(names_txt), "--only", "quality_1s",
                     "sample_tokens_per_s")
    assert result.returncode == 0, result.stderr
    quality, sampling = json.loads(result.stdout)["benchmarks"]
    assert (quality["name"], quality["backend"]) == ("quality_1s", "fused")
    runs = quality["runs"]
    assert [(r["n_embd"], r["n_layer"], r["block_size"], r["batch_size"]) for r in runs] == \
        [size + (b,) for size in QUALITY_SIZES for b in QUALITY_BATCHES]
    for r in runs:
        assert r["steps"] >= 1 and r["seconds"] > 0
        assert r["docs_per_s"] == pytest.approx(r["steps"] * r["batch_size"] / r["seconds"])
    assert quality["best"] == min(runs, key=lambda r: r["val_loss"])
    assert quality["result"] == quality["best"]["val_loss"]
    assert quality["val_docs"] == QUALITY_VAL_DOCS and quality["budget_seconds"] == 0.05
    # the held-out loss is that of the run of the same settings, bit for bit
    first = runs[0]
    from microgpt.data import load_text
    run = microgpt.Run(load_text(names_txt), quality_recipe(
        first["n_embd"], first["n_layer"], first["block_size"], first["batch_size"],
        first["steps"]), val_docs=QUALITY_VAL_DOCS)
    list(run)
    assert run.evaluate() == first["val_loss"]
    # sampling: the first names of a model trained as it says, and their tokens
    trained = microgpt.Run(load_text(names_txt), quality_recipe(16, 1, 16, 16, SAMPLING_STEPS))
    list(trained)
    names = trained.model.sample(SAMPLES, seed=42)
    assert sampling["result"] == names[:3]
    assert sampling["iterations"] == sum(min(len(n) + 1, 16) for n in names)
    assert sampling["tokens_per_s"] == sampling["ops_per_sec"] > 0


@needs_compiled
def test_quality_needs_more_documents_than_it_holds_out(tmp_path):
    (tmp_path / "few.txt").write_text("ab\ncd\n" * 100)
    result = harness("--quick", "--input", str(tmp_path / "few.txt"), "--only", "quality_1s")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.endswith("quality_1s holds out 1000 documents and trains on the "
                                  "others: the input has only 200\n"), result.stderr


@needs_compiled
def test_batch_rate_times_each_batch_size_against_the_first():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "batch_rate.py"), "--rounds", "2",
         "--docs", "40", "--sizes", "16x1x16,8x2x8", "--batches", "1,4", "--json"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["about"]["rounds"] == 2 and report["about"]["threads"] == 1
    from microgpt.fused import kernel_isa
    assert report["about"]["isa"] == kernel_isa()
    assert list(report["table"]) == ["16x1x16", "8x2x8"]
    for row in report["table"].values():
        assert list(row) == ["1", "4"]
        assert row["1"]["vs_batch_1"] == 1.0
        assert row["1"]["docs_per_s"] > 0 and row["4"]["docs_per_s"] > 0
