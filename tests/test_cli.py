"""microgpt-train, run as a user runs it: a subprocess, its output and its exit status."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import microgpt

TRAIN = str(Path(sys.executable).parent / "microgpt-train")
compiled_only = pytest.mark.skipif(
    microgpt.BACKEND != "compiled",
    reason="500 steps take minutes on the pure-Python backend; test_train checks it step by step")


def run(*args, **kwargs):
    return subprocess.run([TRAIN, *args], capture_output=True, **kwargs)


@compiled_only
@pytest.mark.parametrize("path", [[], ["--exact"]], ids=["fused", "exact"])
def test_default_run_prints_microgpt_py_output_byte_for_byte(names_txt, reference, path):
    result = run("--input", str(names_txt), *path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == reference["stdout"]
    assert result.stderr == b""


def test_python_dash_m_is_the_same_program(names_txt):
    args = ["--input", str(names_txt), "--steps", "3", "--samples", "2", "--n-embd", "8"]
    script = run(*args)
    module = subprocess.run([sys.executable, "-m", "microgpt", *args], capture_output=True)
    assert script.returncode == module.returncode == 0
    assert script.stdout == module.stdout
    n_params = 2 * 27 * 8 + 8 * 8 + 12 * 8 * 8   # wte, lm_head, wpe; 4 attention + 2 MLP matrices
    assert script.stdout.startswith(f"num docs: 32033\nvocab size: 27\nnum params: {n_params}\n".encode())
    assert b"step    3 /    3 | loss " in script.stdout and b"sample  2: " in script.stdout


def test_help_lists_every_flag_with_its_default():
    result = run("--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    for flag, default in [("--input", None), ("--steps", "500"), ("--n-embd", "16"),
                          ("--n-head", "4"), ("--n-layer", "1"), ("--block-size", "8"),
                          ("--lr", "0.01"), ("--seed", "42"), ("--samples", "20"),
                          ("--temperature", "0.5"), ("--exact", None)]:
        assert flag in text
        if default is not None:
            assert f"(default: {default})" in text
    module = subprocess.run([sys.executable, "-m", "microgpt", "--help"], capture_output=True)
    assert module.stdout.decode().startswith("usage: python -m microgpt")


@pytest.mark.parametrize("args, message", [
    (["--n-embd", "10"], "--n-embd (10) must be divisible by --n-head (4)"),
    (["--n-embd", "0"], "argument --n-embd: must be a positive integer, not 0"),
    (["--n-head", "-2"], "argument --n-head: must be a positive integer, not -2"),
    (["--n-layer", "0"], "argument --n-layer: must be a positive integer"),
    (["--block-size", "0"], "argument --block-size: must be a positive integer"),
    (["--steps", "-1"], "argument --steps: must be 0 or more, not -1"),
    (["--steps", "many"], "argument --steps: not an integer: 'many'"),
    (["--samples", "-5"], "argument --samples: must be 0 or more"),
    (["--temperature", "0"], "argument --temperature: must be a positive finite number"),
    (["--temperature", "-0.5"], "argument --temperature: must be a positive finite number"),
    (["--lr", "0"], "argument --lr: must be a positive finite number"),
    (["--lr=-1e-3"], "argument --lr: must be a positive finite number"),
    (["--lr", "inf"], "argument --lr: must be a positive finite number"),
    (["--lr", "fast"], "argument --lr: not a number: 'fast'"),
    (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_invalid_values_are_usage_errors(args, message):
    result = run(*args)
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.startswith("usage: microgpt-train")
    assert f"microgpt-train: error: {message}" in stderr
    assert "Traceback" not in stderr and result.stdout == b""


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("dir", "is a directory"),
    (b"", "no documents"),
    (b"\n   \n\n", "no documents"),
    (b"emma\n\xc3\x28\n", "not UTF-8 text"),
])
def test_unusable_input_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "input.txt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    result = run("--input", str(path))
    assert result.returncode == 2
    assert result.stderr.decode().startswith(f"microgpt-train: error: {path}: {message}")
    assert result.stderr.count(b"\n") == 1 and b"Traceback" not in result.stderr
    assert result.stdout == b""


def test_failed_download_is_one_line_error(tmp_path):
    env = dict(os.environ, MICROGPT_CACHE=str(tmp_path / "cache"),
               MICROGPT_NAMES_URL="http://127.0.0.1:9/names.txt")
    result = run("--steps", "1", env=env)
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.startswith("microgpt-train: error: cannot download names.txt from "
                             "http://127.0.0.1:9/names.txt: Connection refused.")
    assert "--input FILE" in stderr and stderr.count("\n") == 1
    assert not any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("lr, where", [("1e10", "at step 2: math domain error"),
                                       ("1e300", "in sampling: Total of weights must be finite")])
def test_a_diverging_run_is_a_one_line_error(names_txt, lr, where):
    result = run("--input", str(names_txt), "--lr", lr, "--steps", "5", "--samples", "2")
    assert result.returncode == 2
    assert result.stderr.decode() == (f"microgpt-train: error: training failed {where} (the numbers "
                                      "overflowed; a smaller --lr may help)\n")


def test_any_characters_work(tmp_path):
    path = tmp_path / "words.txt"
    docs = ["zoë", "renée", "日本", "😀 ok", "straße"]
    path.write_text("\n".join(docs), encoding="utf-8")
    result = run("--input", str(path), "--steps", "2", "--samples", "3", "--block-size", "4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[:2] == ["num docs: 5", f"vocab size: {len(set(''.join(docs))) + 1}"]
    assert lines[-4] == "--- inference ---" and lines[-1].startswith("sample  3: ")


def test_steps_are_printed_as_they_happen_and_ctrl_c_stops_cleanly(names_txt):
    process = subprocess.Popen([TRAIN, "--input", str(names_txt), "--steps", "100000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = [process.stdout.readline() for _ in range(4)]   # arrives before the run ends
        assert lines[3].startswith(b"step    1 / 100000 | loss ")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert stderr.decode().strip() == "microgpt-train: interrupted"


def test_a_closed_pipe_is_not_an_error(names_txt):
    process = subprocess.Popen([TRAIN, "--input", str(names_txt), "--steps", "2000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()          # as `microgpt-train | head -1` does
    stderr = process.stderr.read()
    process.wait(timeout=120)
    assert b"Traceback" not in stderr and b"Error" not in stderr
