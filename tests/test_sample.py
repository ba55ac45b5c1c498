"""microgpt-sample, run as a user runs it, against the Python API it is built on."""
import subprocess
import sys
from pathlib import Path

import pytest

import microgpt

SAMPLE = str(Path(sys.executable).parent / "microgpt-sample")


def sample(*args):
    return subprocess.run([SAMPLE, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def saved(names_txt, tmp_path_factory):
    """A finished small run's checkpoint, and the samples the run would print."""
    run = microgpt.Run(str(names_txt), "v1", n_embd=8, n_head=2, num_steps=40)
    list(run)
    path = tmp_path_factory.mktemp("ck") / "small.safetensors"
    run.save(path)
    return path, run.model.sample()


def lines(samples):
    return "".join(f"sample {i:2d}: {s}\n" for i, s in enumerate(samples, 1))


def test_without_a_seed_it_prints_the_runs_samples(saved):
    path, samples = saved
    result = sample(str(path))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == lines(samples)
    assert len(samples) == 20


def test_options_as_the_api_has_them(saved):
    path, _ = saved
    model = microgpt.load(path)
    expected = model.sample(7, temperature=0.8, prompt="ka", seed=5)
    result = sample(str(path), "--samples", "7", "--temperature", "0.8", "--prompt", "ka",
                    "--seed", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout == lines(expected)
    assert all(s.startswith("ka") for s in expected)
    again = sample(str(path), "--samples", "7", "--temperature", "0.8", "--prompt", "ka",
                   "--seed", "5", "--exact")
    assert again.stdout == result.stdout


def test_python_dash_m_is_the_same_program(saved):
    path, samples = saved
    result = subprocess.run([sys.executable, "-m", "microgpt.sample", str(path),
                             "--samples", "3"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == lines(samples[:3])
    bad = subprocess.run([sys.executable, "-m", "microgpt.sample", str(path), "--prompt", "?"],
                         capture_output=True, text=True)
    assert bad.stderr.startswith("python -m microgpt.sample: error: ")


@pytest.mark.parametrize("args, message", [
    (["--prompt", "Zed"], "--prompt: the prompt has character 'Z' not in the vocabulary"),
    (["--prompt", "abcdefgh"], "--prompt: the prompt is 8 characters; this model's context "
                               "holds at most 7"),
    (["--samples", "-1"], "must be 0 or more"),
    (["--temperature", "0"], "must be a positive finite number"),
])
def test_bad_options_are_one_line(saved, args, message):
    path, _ = saved
    result = sample(str(path), *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("microgpt-sample: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_help_names_every_option():
    result = sample("--help")
    assert result.returncode == 0
    for option in ("--samples", "--temperature", "--seed", "--prompt", "--exact"):
        assert option in result.stdout
