"""--log: the run's JSON Lines log, against microgpt.py's recorded run and the
scalar path; what the CLI prints does not change."""
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import microgpt
from microgpt import runlog
from microgpt.data import DataError
from microgpt.train import SCHEDULES

TRAIN = str(Path(sys.executable).parent / "microgpt-train")
COMPILED = microgpt.BACKEND == "compiled"


def run(*args):
    return subprocess.run([TRAIN, *args], capture_output=True)


@pytest.mark.skipif(not COMPILED, reason="500 steps: minutes on the pure-Python backend")
@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_the_logs_losses_are_microgpt_pys(names_txt, references, tmp_path, recipe):
    log = tmp_path / "run.jsonl"
    result = run("--recipe", recipe, "--input", str(names_txt), "--log", str(log))
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout == references[recipe]["stdout"]
    records = runlog.read(log)
    assert [r["kind"] for r in records] == ["start"] + ["step"] * len(records[1:-1]) + ["end"]
    steps = records[1:-1]
    expected = references[recipe]["json"]
    assert [repr(r["loss"]) for r in steps] == expected["losses"]
    assert [r["step"] for r in steps] == list(range(1, len(expected["losses"]) + 1))
    settings = records[0]["settings"]
    decay = SCHEDULES[settings["lr_schedule"]]
    n = settings["num_steps"]
    assert [r["lr"] for r in steps] == [decay(settings["learning_rate"], i, n) for i in range(n)]
    assert all(r["grad_norm"] > 0 for r in steps)
    elapsed = [r["elapsed"] for r in steps]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    assert records[-1]["samples"] == expected["samples"] and records[-1]["step"] == n
    assert records[0]["recipe"] == recipe and records[0]["num_params"] == len(
        expected["final_params"])


def test_the_gradient_norm_and_rms_are_the_same_on_both_paths(names_txt):
    from microgpt.data import load_text
    text = load_text(names_txt)
    norms = {}
    for exact in ([False, True] if COMPILED else [True]):
        run_ = microgpt.Run(text, "v2", n_embd=8, n_head=2, num_steps=12, exact=exact)
        norms[exact] = [(s.step, s.loss.hex(), s.lr.hex(), s.grad_norm.hex(),
                         [(name, d.hex(), g.hex()) for name, d, g in s.matrix_rms])
                        for s in run_.steps()]
    # the norm's definition: g * g added up in parameter order, then sqrt
    run_ = microgpt.Run(text, "v2", n_embd=8, n_head=2, num_steps=12, exact=True)
    seen = []
    from microgpt.train import train
    gpt = run_.model.gpt

    def observe(step, lr_t):
        total = 0.0
        for p in gpt.params:
            total += p.grad * p.grad
        seen.append(math.sqrt(total).hex())
    list(train(gpt, run_.docs, run_.model.tokenizer, 12, observe=observe,
               **run_.recipe.training()))
    assert [n[3] for n in norms[True]] == seen
    names = [name for name, _, _ in norms[True][0][4]]
    assert names == list(gpt.state_dict) and len(names) == 9
    assert all(values == norms[True] for values in norms.values())


def test_the_log_is_written_as_the_run_goes(names_txt, tmp_path):
    log = tmp_path / "run.jsonl"
    process = subprocess.Popen([TRAIN, "--input", str(names_txt), "--steps", "100000",
                                "--log", str(log)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        lines = [process.stdout.readline() for _ in range(13)]      # 10 steps printed
        assert lines[-1].startswith(b"step   10 / 100000")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        process.kill()
    records = runlog.read(log)             # every line whole: each step flushed
    assert records[0]["kind"] == "start"
    assert [r["step"] for r in records[1:11]] == list(range(1, 11))


def test_resumed_runs_log_from_where_they_start(names_txt, tmp_path):
    ck, log = tmp_path / "ck.safetensors", tmp_path / "run.jsonl"
    assert run("--input", str(names_txt), "--steps", "8", "--save", str(ck)).returncode == 0
    whole = tmp_path / "whole.jsonl"
    assert run("--input", str(names_txt), "--steps", "8", "--log", str(whole)).returncode == 0
    # a finished run's checkpoint: no steps, the samples
    result = run("--input", str(names_txt), "--resume", str(ck), "--log", str(log))
    assert result.returncode == 0, result.stderr
    records = runlog.read(log)
    assert [r["kind"] for r in records] == ["start", "end"] and records[0]["step"] == 8
    assert records[1]["samples"] == runlog.read(whole)[-1]["samples"]


@pytest.mark.parametrize("target, message", [
    ("{tmp}", "cannot write the log: {tmp} is a directory"),
    ("{tmp}/missing/run.jsonl", "cannot write the log: {tmp}/missing: no such directory"),
])
def test_an_unwritable_log_is_refused_before_training(names_txt, tmp_path, target, message):
    result = run("--input", str(names_txt), "--log", target.replace("{tmp}", str(tmp_path)))
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == \
        f"microgpt-train: error: {message.replace('{tmp}', str(tmp_path))}\n"


def test_non_finite_numbers_are_null(tmp_path):
    with runlog.RunLog(tmp_path / "x.jsonl") as log:
        log.write("step", loss=float("inf"), lr=float("nan"), grad_norm=1.5)
    assert json.loads((tmp_path / "x.jsonl").read_text()) == \
        {"kind": "step", "loss": None, "lr": None, "grad_norm": 1.5}


# -- held-out documents ------------------------------------------------------------------

def test_held_out_documents_are_never_trained_on(names_txt, tmp_path):
    from microgpt.data import load_text
    text = load_text(names_txt)
    whole = microgpt.Run(text, "v1", num_steps=6)
    run_ = microgpt.Run(text, "v1", num_steps=6, val_docs=100)
    assert run_.docs == whole.docs[:-100] and run_.val_docs == whole.docs[-100:]
    losses = [run_.model.loss(doc) for doc in run_.val_docs]
    total = 0.0
    for loss in losses:
        total += loss
    assert run_.evaluate() == total / 100 and whole.evaluate() is None
    list(run_)
    run_.save(tmp_path / "ck.safetensors")
    resumed = microgpt.resume(tmp_path / "ck.safetensors", text)
    assert resumed.val_docs == run_.val_docs and resumed.evaluate() == run_.evaluate()
    if COMPILED:
        exact = microgpt.resume(tmp_path / "ck.safetensors", text, exact=True)
        assert exact.evaluate().hex() == run_.evaluate().hex()
    with pytest.raises(ValueError, match="leave documents to train on"):
        microgpt.Run(text, "v1", val_docs=len(text.docs))


def test_the_log_has_the_held_out_loss_and_stdout_does_not(names_txt, tmp_path):
    log = tmp_path / "run.jsonl"
    args = ["--input", str(names_txt), "--steps", "25", "--val-docs", "50"]
    plain = run(*args)
    logged = run(*args, "--eval-every", "10", "--log", str(log))
    assert logged.returncode == 0 and logged.stdout == plain.stdout
    assert b"val" not in logged.stdout
    evals = [r for r in runlog.read(log) if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 10, 20, 25]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert runlog.read(log)[0]["val_docs"] == 50


@pytest.mark.parametrize("args, message", [
    (["--val-docs", "40000"], "--val-docs 40000 leaves no documents to train on "
                              "({names} has 32033)"),
    (["--val-docs", "5", "--eval-every", "0"], "argument --eval-every: must be a positive "
                                               "integer, not 0"),
    (["--eval-every", "5"], "--eval-every needs --val-docs N"),
    (["--val-docs", "-1"], "argument --val-docs: must be 0 or more, not -1"),
])
def test_bad_held_out_settings_are_refused_before_training(names_txt, args, message):
    result = run("--input", str(names_txt), *args)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == \
        f"microgpt-train: error: {message.replace('{names}', str(names_txt))}\n"


def test_resume_keeps_the_held_out_documents(names_txt, tmp_path):
    ck = tmp_path / "ck.safetensors"
    assert run("--input", str(names_txt), "--steps", "4", "--val-docs", "30", "--save",
               str(ck)).returncode == 0
    result = run("--input", str(names_txt), "--resume", str(ck), "--val-docs", "31")
    assert result.returncode == 2
    assert b"--val-docs 31 contradicts" in result.stderr and b"holds out 30" in result.stderr
    assert run("--input", str(names_txt), "--resume", str(ck), "--val-docs", "30").returncode == 0


# -- what a log holds, and reading it back ------------------------------------------------

def test_non_finite_numbers_anywhere_in_a_record_are_null(tmp_path):
    with runlog.RunLog(tmp_path / "x.jsonl") as log:
        log.write("step", step=1, loss=1.0, rms={"wte": [float("nan"), 2.0]},
                  nested=({"a": [float("-inf")]},))
    assert json.loads((tmp_path / "x.jsonl").read_text()) == {
        "kind": "step", "step": 1, "loss": 1.0, "rms": {"wte": [None, 2.0]},
        "nested": [{"a": [None]}]}


def test_the_log_does_not_change_how_a_run_with_huge_numbers_goes_on(names_txt, tmp_path):
    # embeddings of 1e300: rmsnorm makes them 0, the loss stays finite, but their squares
    # (the parameters' RMS) overflow: without --log the run goes on, so it must with it
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    ck = tmp_path / "ck.safetensors"
    assert run("--input", str(names_txt), "--steps", "4", "--save", str(ck), "--save-every",
               "2", "--samples", "0").returncode == 0
    with safe_open(str(ck), "numpy") as f:
        metadata = f.metadata()
    tensors = load_file(str(ck))
    tensors["wte"][:] = 1e300
    save_file(tensors, str(ck), metadata={**metadata, "step": "2"})
    args = ["--input", str(names_txt), "--resume", str(ck)]
    plain, logged = run(*args), run(*args, "--log", str(tmp_path / "run.jsonl"))
    assert plain.returncode == 0, plain.stderr
    assert (logged.returncode, logged.stdout, logged.stderr) == (0, plain.stdout, b"")
    steps = [r for r in runlog.read(tmp_path / "run.jsonl") if r["kind"] == "step"]
    assert [r["step"] for r in steps] == [3, 4] and steps[0]["rms"]["wte"][0] is None


def write_log(path, text_name="names.txt", samples=("emma",)):
    with runlog.RunLog(path) as log:
        log.write("start", recipe="v1", settings={}, text_name=text_name)
        log.write("step", step=1, loss=3.0, lr=0.01)
        log.write("end", step=1, samples=list(samples))


def test_lines_end_at_newline_only(tmp_path):
    # U+2028, U+2029 and U+0085 end a line for str.splitlines, not for JSON Lines
    write_log(tmp_path / "run.jsonl", "a\u2028b\u2029c\x85d", ["x\u2028y"])
    records = runlog.read(tmp_path / "run.jsonl")
    assert records[0]["text_name"] == "a\u2028b\u2029c\x85d"
    assert records[-1]["samples"] == ["x\u2028y"]


def test_a_last_line_cut_short_is_left_out_with_a_warning(tmp_path):
    path = tmp_path / "run.jsonl"
    write_log(path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-12])                   # the disk filled in the end record
    with pytest.warns(UserWarning, match="last line .* is cut short"):
        records = runlog.read(path)
    assert [r["kind"] for r in records] == ["start", "step"]
    path.write_bytes(whole[:-1])                    # complete but for its newline: kept
    assert [r["kind"] for r in runlog.read(path)] == ["start", "step", "end"]
    middle = whole.replace(b'"loss": 3.0', b'"loss": 3.')
    path.write_bytes(middle)                        # broken in the middle: not a log
    with pytest.raises(DataError, match="line 2"):
        runlog.read(path)


@pytest.mark.parametrize("record, message", [
    ('{"kind": "start", "num_docs": "many"}', "not a start record of a microgpt log (its "
     "'num_docs' is not a whole number"),
    ('{"kind": "step", "step": 1, "loss": 1.0, "elapsed": "soon"}', "its 'elapsed' is not a "
     "number"),
    ('{"kind": "end", "step": 1, "samples": [1, 2]}', "its 'samples' is not of the right kind"),
    ('{"kind": "step", "step": 1}', "it has no 'loss'"),
    ('[1, 2]', "a JSON object with a kind"),
])
def test_records_of_the_wrong_shape_are_one_line(tmp_path, record, message):
    path = tmp_path / "run.jsonl"
    first = '{"kind": "start"}\n' if '"start"' not in record else ""
    path.write_text(first + record + "\n")
    with pytest.raises(DataError) as info:
        runlog.read(path)
    assert message in str(info.value) and "\n" not in str(info.value)
