"""python -m microgpt.benchmark: the JSON schema, and that each workload
computes what its oracle computes."""
import datetime
import json
import os
import random as stdlib_random
import subprocess
import sys
from pathlib import Path

import pytest

import microgpt
from microgpt.benchmark import BENCHMARKS, MODEL, STANDARD, TRAINING
from microgpt.engine import Value as PureValue
from microgpt.model import GPT, Config
from microgpt.train import Adam

ROOT = Path(__file__).resolve().parents[1]


def harness(*args):
    return subprocess.run([sys.executable, "-m", "microgpt.benchmark", *args],
                          capture_output=True, text=True)


# every benchmark but the trainings, which have a test of their own
NAMES = [name for name in BENCHMARKS if name not in TRAINING]


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


def test_without_names_txt_the_training_runs_are_skipped(tmp_path):
    env = dict(os.environ, MICROGPT_CACHE=str(tmp_path),
               MICROGPT_NAMES_URL="http://127.0.0.1:9/names.txt")
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "microgpt.benchmark", "--quick", *args],
        capture_output=True, text=True, env=env)
    result = run()
    assert result.returncode == 0, result.stderr
    assert "skipping train_500 and train_1000_v2: cannot download names.txt" in result.stderr
    names = {e["name"] for e in json.loads(result.stdout)["benchmarks"]}
    assert names == set(BENCHMARKS) - {"train_500", "train_1000_v2"}
    asked = run("--only", "train_1000_v2")
    assert asked.returncode == 2 and "error: cannot download names.txt" in asked.stderr
    assert asked.stdout == ""
    missing = run("--input", str(tmp_path / "missing.txt"))
    assert missing.returncode == 2 and "missing.txt: no such file" in missing.stderr
    assert missing.stdout == ""


@pytest.mark.skipif(microgpt.BACKEND != "compiled", reason="compares the compiled Value with the pure one")
def test_value_step_benchmark_runs():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "value_step.py"),
                             "--rounds", "1", "--steps", "2", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["speedup"] == pytest.approx(report["pure_python_ms_per_step"]
                                              / report["compiled_ms_per_step"])


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
