"""microgpt-train, run as a user runs it: a subprocess, its output and its exit status."""
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import microgpt
from microgpt import memory
from microgpt.commands.checks import check_memory
from microgpt.errors import NotEnoughMemory
from microgpt.memory import Available
from microgpt.model import Config

TRAIN = str(Path(sys.executable).parent / "microgpt-train")
SAMPLE = str(Path(sys.executable).parent / "microgpt-sample")
linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="needs Linux: /proc/meminfo, RLIMIT_AS, /dev/full, pty EIO")
compiled_only = pytest.mark.skipif(
    microgpt.BACKEND != "compiled",
    reason="500 steps take minutes on the pure-Python backend; test_train checks it step by step")


def run(*args, **kwargs):
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs["capture_output"] = True
    return subprocess.run([TRAIN, *args], **kwargs)


@compiled_only
@pytest.mark.parametrize("recipe, path", [
    ([], []), pytest.param([], ["--exact"], marks=pytest.mark.slow), (["--recipe", "v1"], []),
    (["--recipe", "v2"], []), pytest.param(["--recipe", "v2"], ["--exact"],
                                           marks=pytest.mark.slow),
    (["--recipe", "v1"], ["--batch-size", "1"]), (["--recipe", "v2"], ["--batch-size", "1"])],
    ids=["default", "default-exact", "v1", "v2", "v2-exact", "v1-batch-1", "v2-batch-1"])
def test_default_run_prints_microgpt_py_output_byte_for_byte(names_txt, references, recipe, path):
    result = run(*recipe, "--input", str(names_txt), *path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == references[recipe[1] if recipe else "v1"]["stdout"]
    assert result.stderr == b""


@compiled_only
def test_threads_change_nothing_but_the_time(names_txt, references, tmp_path):
    """A model big enough for the kernels to share their work (linear layers,
    attention over lines of 10 names, Adam): the same bytes on one thread and
    on three; and microgpt.py's on microgpt.py's model."""
    names = names_txt.read_text().split()
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(" ".join(names[i:i + 10]) for i in range(0, 400, 10)) + "\n")
    big = ["--n-embd", "128", "--n-layer", "2", "--block-size", "48", "--steps", "3",
           "--samples", "2", "--input", str(lines)]
    one, three = run(*big), run(*big, "--threads", "3")
    assert one.returncode == three.returncode == 0, three.stderr
    assert one.stdout == three.stdout
    result = run("--input", str(names_txt), "--threads", "2")
    assert result.stdout == references["v1"]["stdout"]


@pytest.mark.pure_python_pass
@pytest.mark.parametrize("recipe", ["v2", "v1"])     # minutes each: the longer first
def test_pure_python_backend_prints_both_revisions_byte_for_byte(names_txt, references, recipe):
    result = run("--recipe", recipe, "--input", str(names_txt))
    assert result.returncode == 0, result.stderr
    assert result.stdout == references[recipe]["stdout"], recipe


V2_BY_FLAGS = ["--block-size", "16", "--init-std", "0.08", "--no-zero-init-proj",
               "--activation", "relu", "--beta1", "0.85", "--beta2", "0.99",
               "--lr-schedule", "linear", "--steps", "1000"]


def test_flags_override_the_recipe_and_the_format_stays_the_recipes(names_txt):
    common = ["--input", str(names_txt), "--steps", "40", "--samples", "4"]
    v2 = run("--recipe", "v2", *common)
    v1_as_v2 = run("--recipe", "v1", *V2_BY_FLAGS, *common)     # the later --steps wins
    v2_restated = run("--recipe", "v2", *V2_BY_FLAGS, "--eps", "1e-8", "--lr", "0.01", *common)
    assert v2.returncode == v1_as_v2.returncode == v2_restated.returncode == 0
    assert v2_restated.stdout == v2.stdout
    lines = v2.stdout.decode().split("\n")
    steps = lines[3].split("\r")     # the 40 step lines, each ended by a carriage return
    assert len(steps) == 41 and steps[-1] == "" and steps[39].startswith("step   40 /   40 | loss ")
    assert lines[4] == "--- inference (new, hallucinated names) ---"
    # the same numbers in v1's format: each step on its own line
    as_v1 = v2.stdout.replace(b"\r", b"\n").replace(b" (new, hallucinated names)", b"")
    assert v1_as_v2.stdout == as_v1
    assert v1_as_v2.stdout != run("--recipe", "v1", *common).stdout


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
    words = " ".join(text.split())
    options = text[text.index("\noptions:\n"):text.index("\nExit status")]
    entries = {" ".join(entry.split()) for entry in re.split(r"\n  (?=-)", options)[1:]}
    for flag, default in [("--recipe {v1,v2}", "v1"), ("--input FILE", "names.txt"),
                          ("--steps N", "v1 500, v2 1000"), ("--n-embd N_EMBD", "16"),
                          ("--n-head N_HEAD", "4"), ("--n-layer N_LAYER", "1"),
                          ("--block-size BLOCK_SIZE", "v1 8, v2 16"),
                          ("--activation {relu2,relu}", "v1 relu2, v2 relu"),
                          ("--init-std STD", "v1 0.02, v2 0.08"),
                          ("--zero-init-proj, --no-zero-init-proj", "v1 on, v2 off"),
                          ("--lr LR", "0.01"), ("--lr-schedule {cosine,linear}", "v1 cosine, v2 linear"),
                          ("--beta1 BETA1", "v1 0.9, v2 0.85"), ("--beta2 BETA2", "v1 0.95, v2 0.99"),
                          ("--eps EPS", "1e-08"), ("--seed SEED", "42"), ("--samples N", "20"),
                          ("--temperature T", "0.5"), ("--exact", None),
                          ("--no-memory-check", None)]:
        entry, = [entry for entry in entries if entry.startswith(flag + " ")]
        if default is not None:
            assert f"(default: {default})" in entry, flag
        else:
            assert "(default:" not in entry, flag
    assert "v1, microgpt.py as first published; v2, microgpt.py's final revision" in words
    assert "- reads standard input" in words and "Exit status: 0 done, 2 a usage" in words
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
    (["--temperature", "5e-324"], "argument --temperature: too small: its inverse overflows "
                                  "(the smallest is about 5.6e-309), not 5e-324"),
    (["--temperature", "5.5e-309"], "argument --temperature: too small: its inverse overflows"),
    (["--steps", "1" + "0" * 309], "argument --steps: must be at most about 1.8e308 (the "
                                   "learning rate's schedule divides by it), not a 310-digit number"),
    (["--samples", "1x" * 2500], "argument --samples: not an integer: '1x1x1x1x1x1x1x1x1x1x...(5000 "
                                 "characters)'"),
    (["--lr", "0"], "argument --lr: must be a positive finite number"),
    (["--lr=-1e-3"], "argument --lr: must be a positive finite number"),
    (["--lr", "inf"], "argument --lr: must be a positive finite number"),
    (["--lr", "fast"], "argument --lr: not a number: 'fast'"),
    (["--seed", "x"], "argument --seed: not an integer: 'x'"),
    (["--seed", "9" * 5000], "argument --seed: an integer of 5000 digits; Python reads at most 4300"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--threads", "0"], "argument --threads: must be from 1 to 256, not 0"),
    (["--threads", "257"], "argument --threads: must be from 1 to 256, not 257"),
    (["--recipe", "v3"], "argument --recipe: invalid choice: 'v3' (choose from 'v1', 'v2')"),
    (["--recipe"], "argument --recipe: expected one argument"),
    (["--activation", "foo"], "argument --activation: invalid choice: 'foo' (choose from "
                              "'relu2', 'relu')"),
    (["--lr-schedule", "step"], "argument --lr-schedule: invalid choice: 'step'"),
    (["--beta1", "1.5"], "argument --beta1: must be at least 0 and less than 1, not 1.5"),
    (["--beta2", "1"], "argument --beta2: must be at least 0 and less than 1, not 1"),
    (["--beta2", "nan"], "argument --beta2: must be at least 0 and less than 1, not nan"),
    (["--beta1", "-0.1"], "argument --beta1: must be at least 0 and less than 1, not -0.1"),
    (["--eps", "0"], "argument --eps: must be a positive finite number, not 0"),
    (["--eps", "x"], "argument --eps: not a number: 'x'"),
    (["--init-std", "-1"], "argument --init-std: must be a finite number, 0 or more, not -1"),
    (["--init-std", "inf"], "argument --init-std: must be a finite number, 0 or more, not inf"),
    (["--recipe", "v2", "--n-head", "3"], "--n-embd (16) must be divisible by --n-head (3)"),
    (["--zero-init-proj=1"], "argument --zero-init-proj/--no-zero-init-proj: ignored "
                             "explicit argument '1'"),
])
def test_invalid_values_are_usage_errors(args, message):
    result = run(*args)
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.startswith(f"microgpt-train: error: {message}")
    assert stderr.endswith("\n") and stderr.count("\n") == 1      # one line, no usage
    assert result.stdout == b""


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


def no_network():
    """The command prefix that runs a command with no network (a network
    namespace of its own, with only a loopback that is down), or skips."""
    import shutil
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--net", "true"],
                                         capture_output=True).returncode != 0:
        pytest.skip("needs unshare --net (util-linux, and the right to make a namespace)")
    return [unshare, "--net"]


@compiled_only
@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_with_no_network_the_default_run_is_microgpt_pys(references, recipe):
    result = subprocess.run([*no_network(), TRAIN, "--recipe", recipe], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == references[recipe]["stdout"] and result.stderr == b""


@pytest.mark.parametrize("lr, message", [
    ("1e10", "training failed at step 2: the logarithm of 0 (the numbers blew up; a smaller --lr "
             "may help)"),
    ("1e300", "sampling failed: the trained parameters are not all finite numbers (training "
              "diverged; a smaller --lr may help)"),
])
def test_a_diverging_run_is_a_one_line_error(names_txt, lr, message):
    result = run("--input", str(names_txt), "--lr", lr, "--steps", "5", "--samples", "2")
    assert result.returncode == 2
    assert result.stderr.decode() == f"microgpt-train: error: {message}\n"


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
    # A job in the background of a shell script starts with SIGINT ignored,
    # and Python then leaves it ignored (no KeyboardInterrupt): so that the
    # run under test takes Ctrl-C wherever the suite was started, SIGINT is
    # caught here while it starts (a handler is not inherited: the child
    # starts with the default)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen([TRAIN, "--input", str(names_txt), "--steps", "100000"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
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
    process.stderr.close()
    process.wait(timeout=120)
    assert b"Traceback" not in stderr and b"Error" not in stderr


# -- memory: refused up front, in one line ------------------------------------------------

@linux_only
@pytest.mark.parametrize("args, pattern", [
    (["--n-embd", "100000"], "3.8 TB of memory \\(120,001,200,000 parameters at 32 bytes each "
                             "with their gradients and Adam's moments, "),
    (["--n-embd", "100000", "--exact"], "[0-9.,]+ TB of memory \\(120,001,200,000 parameters as "
                                        "scalar Values, 240,003,800,078 Values in a step's graph, "),
])
def test_a_run_that_cannot_fit_is_refused_before_anything(tmp_path, args, pattern):
    if microgpt.BACKEND != "compiled":      # the pure-Python backend has the scalar path only
        pattern = pattern.replace("3.8 TB of memory \\(120,001,200,000 parameters at 32 bytes each "
                                  "with their gradients and Adam's moments",
                                  "[0-9.,]+ TB of memory \\(120,001,200,000 parameters as scalar "
                                  "Values, 240,003,800,078 Values in a step's graph")
    result = run(*args)
    assert result.returncode == 2 and result.stdout == b""
    stderr = result.stderr.decode()
    assert re.match(f"microgpt-train: error: this run needs at least {pattern}.*; [0-9.]+ [kMGT]B "
                    "is available[^\n]*\n$", stderr), stderr


def test_the_check_refuses_only_what_does_not_fit(monkeypatch):
    config = Config(27, 4096, 4, 2, 64)             # 403 M parameters: 12.97 GB
    monkeypatch.setattr(memory, "available", lambda: Available(13 * 10**9, "memory"))
    check_memory(config, "fused", 16, 500, 20)
    monkeypatch.setattr(memory, "available", lambda: Available(12.9 * 10**9, "memory"))
    with pytest.raises(NotEnoughMemory) as caught:
        check_memory(config, "fused", 16, 500, 20)
    step = memory.format_bytes(memory.needed(config, "fused", 16, 500, 20).step_bytes)
    assert str(caught.value) == (
        "this run needs about 13.0 GB of memory (403,136,512 parameters at 32 bytes each with "
        f"their gradients and Adam's moments, {step} for a step's activations); 12.9 GB is "
        "available")
    monkeypatch.setattr(memory, "available", lambda: None)      # nothing known: no refusal
    check_memory(Config(27, 10**6), "fused", 16, 500, 20)


address_space_limits = pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer's shadow memory needs more address space than the limit leaves")


def limit_address_space(size):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (size, size))


@linux_only
@address_space_limits
def test_the_memory_check_counts_the_documents_and_ulimit(tmp_path):
    # 5,000 positions: attention keeps 4 x 5,000 x 5,000 numbers, twice, over 1 GiB (the
    # first check, before the documents are read, cannot know that and lets it pass)
    path = tmp_path / "long.txt"
    path.write_text("ab" * 2500 + "\n", encoding="utf-8")
    result = run("--input", str(path), "--block-size", "5000",
                 preexec_fn=limit_address_space(1 << 30))
    assert result.returncode == 2 and result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr.startswith("microgpt-train: error: this run needs about ")
    assert "(83,168 parameters " in stderr and stderr.endswith(" is available under ulimit -v\n")


@linux_only
@address_space_limits
@compiled_only
def test_out_of_memory_at_run_time_is_one_line(names_txt):
    # past the check, the fused parameters (1.5 GB) cannot be allocated under 1 GiB
    result = run("--input", str(names_txt), "--n-embd", "4000", "--no-memory-check",
                 preexec_fn=limit_address_space(1 << 30))
    assert result.returncode == 1
    assert result.stderr == (b"microgpt-train: error: out of memory; a smaller model (--n-embd, "
                             b"--n-layer, --block-size) or input needs less\n")


# -- the output: a full disk, a closed stdout, an I/O error ----------------------------------

SMALL = ["--steps", "2", "--samples", "2", "--n-embd", "4", "--n-head", "1"]


@linux_only
@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [SMALL, ["--steps", "0", "--samples", "0"], ["--help"]],
                         ids=["run", "no-steps", "help"])
def test_a_full_disk_is_one_line(names_txt, unbuffered, args):
    env = dict(os.environ, PYTHONUNBUFFERED=unbuffered)
    with open("/dev/full", "wb") as full:
        result = run("--input", str(names_txt), *args, stdout=full, stderr=subprocess.PIPE,
                     env=env)
    assert result.returncode == 1
    assert result.stderr == b"microgpt-train: error: cannot write the output: No space left on device\n"


def test_a_closed_stdout_is_one_line_before_any_work(tmp_path):
    result = run(*SMALL, stdout=None, stderr=subprocess.PIPE,
                 preexec_fn=lambda: os.close(1))                  # microgpt-train >&-
    assert result.returncode == 1
    assert result.stderr == b"microgpt-train: error: cannot write the output: standard output is closed\n"


@linux_only
def test_an_io_error_on_stdout_is_one_line(names_txt):
    master, terminal = os.openpty()
    os.close(master)                # the terminal hung up: writes give EIO
    try:
        result = run("--input", str(names_txt), *SMALL, stdout=terminal, stderr=subprocess.PIPE)
    finally:
        os.close(terminal)
    assert result.returncode == 1
    assert result.stderr == b"microgpt-train: error: cannot write the output: Input/output error\n"


def test_characters_the_output_cannot_encode(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("éèêë\n", encoding="utf-8")
    result = run("--input", str(path), "--steps", "0", "--samples", "20",
                 env=dict(os.environ, PYTHONIOENCODING="ascii"))
    assert result.returncode == 1
    assert result.stderr == (b"microgpt-train: error: cannot write the output: '\\xeb' cannot be "
                             b"written in the encoding of standard output (ascii); set "
                             b"PYTHONIOENCODING=utf-8\n")


# -- Ctrl-C while starting -------------------------------------------------------------

@pytest.mark.parametrize("module", ["warnings", "microgpt.errors", "argparse", "microgpt.data",
                                    "microgpt.random", "microgpt.model", "microgpt.train"])
def test_ctrl_c_during_start_up_is_one_line(names_txt, module):
    # what the console script does, with a Ctrl-C arriving while `module` is imported
    script = textwrap.dedent(f"""
        import sys

        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == {module!r}:
                    raise KeyboardInterrupt

        sys.meta_path.insert(0, CtrlC())
        sys.argv[0] = "microgpt-train"
        from microgpt.cli import main
        sys.exit(main())
        """)
    result = subprocess.run([sys.executable, "-c", script, "--input", str(names_txt)],
                            capture_output=True)
    assert result.returncode == 130
    assert result.stderr == b"\nmicrogpt-train: interrupted\n" and result.stdout == b""


def test_importing_the_cli_loads_nothing_heavy():
    check = ("import sys, microgpt.cli\n"
             "heavy = [m for m in ('microgpt._engine', 'microgpt._random', 'microgpt._fused', "
             "'microgpt.random', 'argparse') if m in sys.modules]\n"
             "assert not heavy, heavy\n"
             "from microgpt import Value, random\n"
             "assert microgpt.Value is Value and microgpt.random is random\n"
             "assert {'Value', 'random', 'BACKEND'} <= set(dir(microgpt))\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- sampling, seeds, standard input ---------------------------------------------------

def test_sampling_that_overflows_blames_the_temperature(names_txt):
    args = ["--input", str(names_txt), "--steps", "2", "--lr", "0.5", "--n-embd", "4",
            "--n-head", "1", "--samples", "2"]
    assert run(*args).returncode == 0          # at the default temperature the model samples
    result = run(*args, "--temperature", "5.6e-309")
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "microgpt-train: error: sampling failed at sample 1: the next token's probabilities are "
        "not finite numbers (the logits divided by --temperature 5.6e-309 overflowed; a larger "
        "--temperature may help)\n")


def test_a_negative_seed_is_the_seed_of_its_absolute_value(names_txt):
    # as random.seed(-42) in CPython (and microgpt.py with it)
    runs = [run("--input", str(names_txt), *SMALL, "--seed", seed) for seed in ("-42", "42", "43")]
    assert all(r.returncode == 0 for r in runs)
    assert runs[0].stdout == runs[1].stdout != runs[2].stdout


def test_input_minus_reads_standard_input():
    result = run("--input", "-", *SMALL, input="emma\r\nolivia\n\nava\n".encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"num docs: 3\nvocab size: 8\n")


@pytest.mark.parametrize("stdin, message", [
    (b"", "<stdin>: no documents (the input is empty or only blank lines)"),
    (b"emma\nli\xe9\n", "<stdin>: not UTF-8 text (invalid byte at offset 7)"),
    (None, "<stdin>: standard input is closed"),
])
def test_unusable_standard_input_is_one_line(stdin, message):
    kwargs = {"input": stdin} if stdin is not None else {"preexec_fn": lambda: os.close(0)}
    result = run("--input", "-", *SMALL, **kwargs)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == f"microgpt-train: error: {message}\n"


# -- --save and --resume -----------------------------------------------------------------

def steps_done(stdout, step_end=b"\n"):
    """The stdout's step lines count."""
    return stdout.count(b" | loss ")


def prefix_through_step(stdout, step, step_end=b"\n"):
    """stdout up to the end of step `step`'s line."""
    marker = re.compile(rb"step +%d / +\d+ \| loss [0-9.]+" % step + re.escape(step_end))
    match = marker.search(stdout)
    assert match, (step, stdout[-200:])
    return stdout[:match.end()]


@compiled_only
@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_save_keeps_microgpt_py_final_parameters(names_txt, references, tmp_path, recipe):
    from safetensors.numpy import load
    path = tmp_path / "ck.safetensors"
    result = run("--recipe", recipe, "--input", str(names_txt), "--save", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == references[recipe]["stdout"] and result.stderr == b""
    tensors = load(path.read_bytes())
    names = ["wte", "wpe", "lm_head"] + [f"layer0.{m}" for m in (
        "attn_wq", "attn_wk", "attn_wv", "attn_wo", "mlp_fc1", "mlp_fc2")]
    params = [repr(x) for name in names for x in tensors[name].ravel().tolist()]
    assert params == references[recipe]["json"]["final_params"]
    sampled = subprocess.run([SAMPLE, str(path)], capture_output=True)
    assert sampled.returncode == 0 and sampled.stderr == b""
    lines = references[recipe]["stdout"].splitlines(keepends=True)
    assert sampled.stdout == b"".join(lines[-20:])


# a run slow enough to be stopped while it trains, and quick to check
SLOW = (["--exact"] if microgpt.BACKEND == "compiled" else
        ["--steps", "40", "--n-embd", "8", "--n-head", "2"])


def stopped_and_resumed(names_txt, tmp_path, stop, args, resume_args):
    """Run microgpt-train with args, stop it with signal `stop` at a random
    step, resume it from its checkpoint; the whole run's stdout, as the two
    runs printed it, and the interrupted run's exit status and stderr."""
    import random
    path = tmp_path / "ck.safetensors"
    process = subprocess.Popen([TRAIN, "--input", str(names_txt), "--save", str(path), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        at = random.Random().randrange(5, 30)
        stdout = b""
        while steps_done(stdout) < at:
            stdout += process.stdout.readline()
        process.send_signal(stop)
        rest, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    stdout += rest
    from microgpt.checkpoint import load
    step = load(path).step
    assert step >= 3        # a checkpoint of step 3 at least: the kill or Ctrl-C came after 5
    resumed = run("--input", str(names_txt), "--resume", str(path), *resume_args)
    assert resumed.returncode == 0 and resumed.stderr == b"", resumed.stderr
    return prefix_through_step(stdout, step) + resumed.stdout, process.returncode, stderr, step


@pytest.fixture(scope="module")
def slow_whole(names_txt, references):
    """The stdout of the SLOW run, uninterrupted."""
    if SLOW == ["--exact"]:
        return references["v1"]["stdout"]      # the default run (tested above)
    return run("--input", str(names_txt), *SLOW).stdout


def test_a_killed_run_resumes_to_the_same_bytes(names_txt, tmp_path, slow_whole):
    # SIGKILL at a random step: the last --save-every checkpoint carries on (on the fast path)
    joined, status, _, step = stopped_and_resumed(
        names_txt, tmp_path, signal.SIGKILL, [*SLOW, "--save-every", "3"], [])
    assert status == -signal.SIGKILL and step % 3 == 0
    assert joined == slow_whole


def test_ctrl_c_saves_the_last_step_and_resumes_to_the_same_bytes(names_txt, tmp_path,
                                                                  slow_whole):
    joined, status, stderr, step = stopped_and_resumed(
        names_txt, tmp_path, signal.SIGINT, SLOW, SLOW[1:] if SLOW[0] == "--exact" else SLOW)
    assert status == 130
    path = tmp_path / "ck.safetensors"
    assert stderr.decode() == (f"\nmicrogpt-train: interrupted after step {step} of "
                               f"{500 if SLOW == ['--exact'] else 40}; saved it in {path} "
                               f"(carry on with --resume {path})\n")
    assert joined == slow_whole


def test_a_finished_checkpoint_resumes_to_its_samples(names_txt, tmp_path):
    args = ["--recipe", "v2", "--steps", "30", "--input", str(names_txt)]
    whole = run(*args, "--save", str(tmp_path / "ck.safetensors"))
    resumed = run("--input", str(names_txt), "--resume", str(tmp_path / "ck.safetensors"))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(b"\n--- inference (new, hallucinated names) ---\n")
    assert whole.stdout.endswith(resumed.stdout)


def test_resume_refuses_flags_that_contradict_the_checkpoint(names_txt, tmp_path):
    path = tmp_path / "ck.safetensors"
    assert run("--steps", "3", "--input", str(names_txt), "--save", str(path)).returncode == 0
    before = path.read_bytes()
    for args, message in [
            (["--steps", "5"], f"--steps 5 contradicts {path}, whose run has 3"),
            (["--recipe", "v2"], f"--recipe v2 contradicts {path}, a run of recipe v1+"),
            (["--activation", "relu"], "--activation relu contradicts"),
            (["--no-zero-init-proj"], "--zero-init-proj off contradicts")]:
        result = run("--input", str(names_txt), "--resume", str(path), "--save", str(path),
                     *args)
        assert result.returncode == 2 and result.stdout == b""
        assert result.stderr.decode() == f"microgpt-train: error: {message}" + \
            result.stderr.decode().split(message, 1)[1]
        assert result.stderr.count(b"\n") == 1
    # the same values are no contradiction
    result = run("--input", str(names_txt), "--resume", str(path), "--steps", "3")
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == before


def test_resume_on_another_text_names_both(names_txt, tmp_path):
    path = tmp_path / "ck.safetensors"
    assert run("--steps", "3", "--input", str(names_txt), "--save", str(path)).returncode == 0
    other = tmp_path / "words.txt"
    other.write_text("one\ntwo\n")
    result = run("--input", str(other), "--resume", str(path))
    assert result.returncode == 2 and result.stdout == b""
    assert re.fullmatch(rf"microgpt-train: error: {re.escape(str(path))} was trained on "
                        rf"{re.escape(str(names_txt))} \(SHA-256 [0-9a-f]{{16}}\.\.\.\), not on "
                        rf"{re.escape(str(other))} \(SHA-256 [0-9a-f]{{16}}\.\.\.\); give that "
                        r"text with --input\n", result.stderr.decode())


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory, not a checkpoint"),
    (lambda p: p.write_bytes(b"\x80\x04K\x01."), "not a safetensors file"),
    (lambda p: p.write_bytes(os.urandom(3000)), "not a safetensors file"),
], ids=["missing", "directory", "pickle", "random"])
def test_unusable_checkpoints_are_one_line_and_overwrite_nothing(names_txt, tmp_path, make,
                                                                message):
    path = tmp_path / "ck.safetensors"
    make(path)
    before = path.read_bytes() if path.is_file() else None
    for command in ([TRAIN, "--input", str(names_txt), "--resume", str(path), "--save",
                     str(path)], [SAMPLE, str(path)]):
        result = subprocess.run(command, capture_output=True)
        assert result.returncode == 2 and result.stdout == b""
        name = Path(command[0]).name
        assert result.stderr.decode().startswith(f"{name}: error: {path}: {message}")
        assert result.stderr.count(b"\n") == 1
        assert (path.read_bytes() if path.is_file() else None) == before


@pytest.mark.parametrize("args, message", [
    (["--save-every", "5"], "--save-every needs --save PATH"),
    (["--save", "{tmp}"], "cannot save the checkpoint: {tmp} is a directory"),
    (["--save", "{tmp}/no/such/dir/ck.safetensors"], "no such directory"),
    (["--save-every", "0", "--save", "x"], "must be a positive integer"),
])
def test_unusable_save_paths_are_refused_before_training(names_txt, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run("--input", str(names_txt), *args)
    assert result.returncode == 2 and result.stdout == b""
    assert message.replace("{tmp}", str(tmp_path)) in result.stderr.decode()
    assert result.stderr.count(b"\n") == 1


def test_save_does_not_change_stdout(names_txt, tmp_path):
    args = ["--input", str(names_txt), "--steps", "20", "--recipe", "v2"]
    plain = run(*args)
    saved = run(*args, "--save", str(tmp_path / "ck.safetensors"), "--save-every", "7")
    assert saved.returncode == 0 and saved.stdout == plain.stdout and saved.stderr == b""
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]     # no temporary left


# -- what a run leaves behind ------------------------------------------------------------

def test_a_text_whose_file_name_is_not_utf8_saves_logs_and_reports(names_txt, tmp_path):
    # a name Linux takes, with a byte UTF-8 cannot decode: the run's results are all kept
    raw = os.path.join(os.fsencode(tmp_path), b"n\xffames.txt")
    with open(raw, "wb") as f:
        f.write(names_txt.read_bytes()[:3000])
    ck, log, page = (tmp_path / name for name in ("m.safetensors", "run.jsonl", "r.html"))
    outputs = ["--save", str(ck), "--log", str(log)]
    if microgpt.BACKEND == "compiled":
        outputs += ["--report", str(page)]
    result = subprocess.run([os.fsencode(TRAIN), b"--input", raw, *SMALL[:2], *map(
        os.fsencode, outputs)], capture_output=True)
    assert result.returncode == 0, result.stderr
    from microgpt import checkpoint, runlog
    assert checkpoint.load(ck).text_name == f"{tmp_path}/n\\xffames.txt"
    assert runlog.read(log)[0]["text_name"] == f"{tmp_path}/n\\xffames.txt"
    if microgpt.BACKEND == "compiled":
        assert "n\\xffames.txt" in page.read_text(encoding="utf-8")
    # and --resume finds that text by the name it keeps
    resumed = run("--resume", str(ck))
    assert resumed.returncode == 0, resumed.stderr
    assert result.stdout.endswith(resumed.stdout)


@linux_only
@pytest.mark.parametrize("flag", ["--save", "--log", "--report"])
def test_outputs_that_are_not_regular_files_are_refused_before_training(names_txt, tmp_path,
                                                                       char_device, flag):
    pipe, null = tmp_path / "pipe", char_device
    os.mkfifo(pipe)
    for target in (pipe, null):
        result = run("--input", str(names_txt), *SMALL, flag, str(target), timeout=60)
        assert result.returncode == 2 and result.stdout == b""
        assert b"not a regular file; microgpt writes only regular files\n" in result.stderr
        assert result.stderr.count(b"\n") == 1
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and stat.S_ISCHR(os.lstat(null).st_mode)


def test_a_symbolic_link_output_writes_its_target(names_txt, tmp_path):
    (tmp_path / "link").symlink_to("m.safetensors")
    result = run("--input", str(names_txt), *SMALL, "--save", str(tmp_path / "link"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link").is_symlink() and (tmp_path / "m.safetensors").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--save", "{tmp}/x", "--log", "{tmp}/x"],
     "the checkpoint and the log would be written to the same file {tmp}/x"),
    (["--log", "{input}"], "the log would be written over the input {input}"),
    (["--save", "{tmp}/link"], "the checkpoint would be written over the input {input}"),
])
def test_outputs_never_overwrite_each_other_or_the_input(names_txt, tmp_path, args, message):
    text = tmp_path / "names.txt"
    text.write_bytes(names_txt.read_bytes()[:2000])
    (tmp_path / "link").symlink_to("names.txt")
    fill = lambda a: a.replace("{tmp}", str(tmp_path)).replace("{input}", str(text))
    result = run("--input", str(text), *SMALL, *map(fill, args))
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == f"microgpt-train: error: {fill(message)}; give " + \
        result.stderr.decode().split("; give ", 1)[1]
    assert text.read_bytes() == names_txt.read_bytes()[:2000]


@linux_only
def test_a_checkpoint_that_cannot_be_written_at_the_end_is_status_1(names_txt, tmp_path):
    def small_files():      # ulimit -f: writes past 64 kB fail (EFBIG) instead of killing
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))
    path = tmp_path / "m.safetensors"
    result = run("--input", str(names_txt), *SMALL, "--n-embd", "16", "--save", str(path),
                 preexec_fn=small_files)
    assert result.returncode == 1
    assert result.stderr.decode() == (f"microgpt-train: error: cannot save the checkpoint: "
                                      f"cannot write {path}: File too large\n")
    assert list(tmp_path.iterdir()) == []           # no half-written file, no temporary


def test_held_out_documents_without_a_log_say_their_loss(names_txt):
    result = run("--input", str(names_txt), *SMALL, "--val-docs", "50")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rb"held-out loss after step 2 \(50 documents\): \d\.\d{4}\n",
                        result.stderr), result.stderr
    assert b"held-out" not in result.stdout


def test_the_console_script_imports_nothing_before_main(tmp_path):
    # a Ctrl-C is answered from main() on: before it, only the package and this module load
    check = ("import sys\nbefore = set(sys.modules)\nimport microgpt.commands.train\n"
             "print(sorted(set(sys.modules) - before))\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("['microgpt', 'microgpt._backend', 'microgpt.commands', "
                                     "'microgpt.commands.common', 'microgpt.commands.train']")


def test_resume_without_input_reads_the_text_the_checkpoint_names(tmp_path):
    # names.txt (which comes with microgpt) found by its SHA-256; any other text by its name
    path = tmp_path / "ck.safetensors"
    whole = run("--steps", "6", "--samples", "3")
    part = microgpt.Run(None, "v1", num_steps=6, num_samples=3)
    for _ in zip(range(3), part):
        pass
    part.save(path)
    resumed = run("--resume", str(path))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == prefix_after_step(whole.stdout, 3)
    other = tmp_path / "words.txt"
    other.write_text("one\ntwo\nthree\n")
    saved = run("--input", str(other), "--steps", "4", "--save", str(tmp_path / "w.safetensors"))
    assert saved.returncode == 0
    other.write_text("one\ntwo\nfour\n")        # changed since: refused, naming it
    result = run("--resume", str(tmp_path / "w.safetensors"))
    assert result.returncode == 2 and result.stdout == b""
    assert re.fullmatch(rf"microgpt-train: error: {re.escape(str(tmp_path / 'w.safetensors'))} "
                        rf"was trained on {re.escape(str(other))} \(SHA-256 [0-9a-f]{{16}}"
                        r"\.\.\.\), which is not there as it was; give that text with --input\n",
                        result.stderr.decode())


def prefix_after_step(stdout, step):
    """stdout after the end of step `step`'s line."""
    return stdout[len(prefix_through_step(stdout, step)):]


@linux_only
def test_an_output_through_proc_to_a_pipe_is_refused_before_training(names_txt):
    # /dev/stdout is a link into /proc to the pipe run() reads: not a file to replace
    result = run("--input", str(names_txt), *SMALL, "--save", "/dev/stdout")
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.startswith(b"microgpt-train: error: cannot save the checkpoint: "
                                    b"/dev/stdout (-> /proc/")
    assert result.stderr.endswith(b") is a named pipe (FIFO), not a regular file; "
                                  b"microgpt writes only regular files\n")


def test_a_log_that_fails_keeps_the_steps_trained_in_the_checkpoint(names_txt, tmp_path,
                                                                   monkeypatch, capsys):
    import errno

    from microgpt import runlog
    from microgpt.commands import train
    write = runlog.RunLog.write

    def full_disk_at_step_3(self, kind, **fields):
        if kind == "step" and fields["step"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, kind, **fields)
    monkeypatch.setattr(runlog.RunLog, "write", full_disk_at_step_3)
    ck, log = tmp_path / "ck.safetensors", tmp_path / "log.jsonl"
    argv = ["--input", str(names_txt), "--steps", "5", "--samples", "2", "--n-embd", "4",
            "--n-head", "1"]
    assert train.main(argv + ["--save", str(ck), "--log", str(log)]) == 1
    err = capsys.readouterr().err
    prog = err.split(": ", 1)[0]        # the name this process gives the command
    assert err == (f"{prog}: saved step 3 of 5 in {ck} (carry on with --resume {ck})\n"
                   f"{prog}: error: cannot write the log {log}: No space left on device\n")
    # the oracle: the same run stopped after its third step, saved by the Python API
    run = microgpt.Run(str(names_txt), "v1", num_steps=5, num_samples=2, n_embd=4, n_head=1)
    for _ in zip(range(3), run):
        pass
    run.save(tmp_path / "oracle.safetensors")
    assert ck.read_bytes() == (tmp_path / "oracle.safetensors").read_bytes()
