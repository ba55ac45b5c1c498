"""Checkpoints (microgpt.checkpoint) and the Python API over them (microgpt.run):
what is saved comes back bit for bit, a resumed run is the run that never
stopped, on either path and either backend, and a file that is not a good
checkpoint is a one-line error, never a crash."""
import json
import os
import pickle
import random as stdlib_random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

import microgpt
from microgpt import checkpoint
from microgpt.checkpoint import CheckpointError
from microgpt.data import Text, load_text
from microgpt.recipe import V1, V2

COMPILED = microgpt.BACKEND == "compiled"
PATHS = [False, True] if COMPILED else [True]       # exact: the fused path, then the scalar one
SMALL = dict(n_embd=8, n_head=2, num_steps=24)      # small enough for the pure backend


def hexes(values):
    return [float(x).hex() for x in np.asarray(values, dtype=np.float64).ravel()]


def state_of(run):
    """What a run is, bit for bit: its step, parameters, Adam's moments and generator."""
    ck = run.checkpoint()
    return ck.step, [hexes(a) for a in (ck.params, ck.adam_m, ck.adam_v)], ck.random_state


@pytest.fixture(scope="module")
def names(names_txt):
    return load_text(names_txt)


# -- the default run, saved ---------------------------------------------------------------

@pytest.mark.skipif(not COMPILED, reason="500 steps: the CLI tests run it on this backend")
@pytest.mark.parametrize("recipe", ["v1", "v2"])
def test_a_finished_run_saves_microgpt_py_final_parameters(names, references, tmp_path,
                                                           recipe):
    run = microgpt.Run(names, recipe)
    losses = list(run)
    expected = references[recipe]["json"]
    assert [repr(x) for x in losses] == expected["losses"]
    run.save(tmp_path / "ck.safetensors")
    tensors = load_tensors((tmp_path / "ck.safetensors").read_bytes())
    params = np.concatenate([tensors[name].ravel()
                             for name in checkpoint.shapes(run.model.config)])
    assert params.dtype == np.float64
    assert [repr(x) for x in params.tolist()] == expected["final_params"]
    model = microgpt.load(tmp_path / "ck.safetensors")
    assert model.sample() == expected["samples"]


def test_the_file_is_safetensors_with_the_documented_names(names, tmp_path):
    run = microgpt.Run(names, "v1", n_layer=2, **SMALL)
    for _ in zip(range(5), run):
        pass
    path = tmp_path / "ck.safetensors"
    run.save(path)
    tensors = load_tensors(path.read_bytes())
    names_ = ["wte", "wpe", "lm_head"] + [f"layer{i}.{m}" for i in range(2) for m in
                                           ("attn_wq", "attn_wk", "attn_wv", "attn_wo",
                                            "mlp_fc1", "mlp_fc2")]
    assert set(tensors) == {*names_, *(f"adam.m.{n}" for n in names_),
                            *(f"adam.v.{n}" for n in names_),
                            "random.mt", "random.index", "random.gauss_next"}
    assert tensors["wte"].shape == (27, 8) and tensors["layer1.mlp_fc2"].shape == (8, 32)
    assert tensors["random.mt"].dtype == np.uint32 and tensors["random.mt"].shape == (624,)
    state = run.model.random.getstate()
    assert tuple(tensors["random.mt"].tolist()) + (int(tensors["random.index"]),) == state[1]
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata()
    assert metadata["format"] == "microgpt-checkpoint" and metadata["format_version"] == "1"
    assert metadata["microgpt_version"] == microgpt.__version__
    assert metadata["recipe"] == "v1+" and json.loads(metadata["n_layer"]) == 2
    assert json.loads(metadata["learning_rate"]) == 0.01 and metadata["step"] == "5"
    assert metadata["vocabulary"] == "abcdefghijklmnopqrstuvwxyz"
    assert metadata["text_sha256"] == names.sha256 and metadata["text_name"] == names.name
    import hashlib
    assert names.sha256 == hashlib.sha256(Path(names.name).read_bytes()).hexdigest()


def test_a_pending_gauss_value_is_kept_exactly(names, tmp_path):
    run = microgpt.Run(names, "v1", **SMALL)
    for value in (None, 0.1 + 0.2, -5e-324):
        rng = run.model.random
        state = rng.getstate()
        rng.setstate((state[0], state[1], value))
        run.save(tmp_path / "ck.safetensors")
        loaded = checkpoint.load(tmp_path / "ck.safetensors").random_state
        assert loaded == rng.getstate()
        assert loaded[2] is None if value is None else loaded[2].hex() == value.hex()


# -- resume: the run that never stopped --------------------------------------------------

@pytest.mark.parametrize("recipe", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("before", PATHS, ids=lambda e: "exact" if e else "fused")
@pytest.mark.parametrize("after", PATHS, ids=lambda e: "exact" if e else "fused")
def test_a_resumed_run_is_the_run_that_never_stopped(names, tmp_path, recipe, before, after):
    recipe = recipe.replace(**SMALL)
    whole = microgpt.Run(names, recipe, exact=before)
    whole_losses = list(whole)
    whole_samples = whole.model.sample(5)

    first = microgpt.Run(names, recipe, exact=before)
    losses = [loss for _, loss in zip(range(11), first)]
    first.save(tmp_path / "ck.safetensors")
    second = microgpt.resume(tmp_path / "ck.safetensors", names, exact=after)
    assert second.step == 11 and second.model.exact == after
    losses += list(second)
    assert hexes(losses) == hexes(whole_losses)
    assert state_of(second)[1] == state_of(whole)[1]
    assert second.model.sample(5) == whole_samples


def test_a_finished_runs_checkpoint_samples_what_the_run_sampled(names, tmp_path):
    run = microgpt.Run(names, "v2", **SMALL)
    list(run)
    run.save(tmp_path / "ck.safetensors")
    expected = run.model.sample(4, prompt="", temperature=0.7)
    for exact in PATHS:
        model = microgpt.load(tmp_path / "ck.safetensors", exact=exact)
        assert model.sample(4, temperature=0.7) == expected
        assert model.config.block_size == 16 and model.recipe == V2.replace(**SMALL)


def test_resume_needs_the_same_text(names, tmp_path):
    run = microgpt.Run(names, "v1", **SMALL)
    run.save(tmp_path / "ck.safetensors")
    other = Text("other.txt", names.docs[:-1], sha256="0" * 64)
    with pytest.raises(microgpt.data.DataError, match=r"ck.safetensors was trained on .*"
                       r"names.txt .*, not on other.txt"):
        microgpt.resume(tmp_path / "ck.safetensors", other)


def test_a_run_stopped_inside_a_step_cannot_be_saved(names, tmp_path):
    run = microgpt.Run(names, "v1", **SMALL)

    class Stop(Exception):
        pass

    def stop(*args):
        raise Stop
    run.optimizer = type("Broken", (), {"step": stop, "m": [], "v": []})()
    with pytest.raises(Stop):
        next(iter(run))
    with pytest.raises(RuntimeError, match="middle of step 1"):
        run.save(tmp_path / "ck.safetensors")
    assert not (tmp_path / "ck.safetensors").exists()


@pytest.mark.skipif(not COMPILED, reason="compares the compiled backend with the pure one")
@pytest.mark.parametrize("writer", ["compiled", "python"])
def test_checkpoints_carry_over_between_backends(names_txt, names, tmp_path, writer):
    # the run's first 9 steps on one backend, the rest on the other
    recipe = V2.replace(**SMALL)
    whole = microgpt.Run(names, recipe)
    list(whole)
    script = textwrap.dedent(f"""
        import sys, microgpt
        from microgpt.recipe import V2
        assert microgpt.BACKEND == "python"
        recipe = V2.replace(**{SMALL!r})
        if sys.argv[1] == "start":
            run = microgpt.Run({str(names_txt)!r}, recipe)
            for _ in zip(range(9), run):
                pass
        else:
            run = microgpt.resume(sys.argv[2], {str(names_txt)!r})
            list(run)
        run.save(sys.argv[2])
        """)
    path = tmp_path / "ck.safetensors"
    pure = lambda stage: subprocess.run(
        [sys.executable, "-c", script, stage, str(path)], capture_output=True, text=True,
        env={**os.environ, "MICROGPT_PUREPYTHON": "1"})
    if writer == "compiled":
        run = microgpt.Run(names, recipe)
        for _ in zip(range(9), run):
            pass
        run.save(path)
        result = pure("finish")
        assert result.returncode == 0, result.stderr
        finished = microgpt.resume(path, names)
    else:
        result = pure("start")
        assert result.returncode == 0, result.stderr
        finished = microgpt.resume(path, names)
        list(finished)
    assert finished.step == recipe.num_steps
    assert state_of(finished) == state_of(whole)


# -- the API's checks --------------------------------------------------------------------

def test_model_loss_is_the_training_loss(names, tmp_path):
    run = microgpt.Run(names, "v1", **SMALL)
    doc = run.docs[0]
    before = run.model.loss(doc)
    assert hexes([next(iter(run))]) == hexes([before])     # step 1 trains on docs[0]
    for exact in PATHS:
        run.save(tmp_path / "ck.safetensors")
        model = microgpt.load(tmp_path / "ck.safetensors", exact=exact)
        assert model.loss(doc) == run.model.loss(doc)
    with pytest.raises(ValueError, match=r"the text has characters 'A', 'Z' not in the "
                                         "vocabulary"):
        run.model.loss("ZoA")
    with pytest.raises(TypeError):
        run.model.loss(None)


def test_prompts_begin_every_sample(names):
    run = microgpt.Run(names, "v1", **SMALL)
    list(run)
    samples = run.model.sample(10, prompt="ma", seed=3)
    assert all(s.startswith("ma") for s in samples)
    assert run.model.sample(10, prompt="ma", seed=3) == samples     # a seed is a new generator
    with pytest.raises(ValueError, match="at most 7"):
        run.model.sample(1, prompt="abcdefgh")
    with pytest.raises(ValueError, match="'!' not in the vocabulary"):
        run.model.sample(1, prompt="a!")


def test_state_dict_is_numpy_copies_in_microgpt_py_order(names):
    run = microgpt.Run(names, "v1", **SMALL)
    state = run.model.state_dict
    assert list(state) == list(checkpoint.shapes(run.model.config))
    assert hexes(np.concatenate([a.ravel() for a in state.values()])) == \
        hexes(run.model.gpt.values())
    state["wte"][:] = 7.0
    assert run.model.state_dict["wte"][0, 0] != 7.0


def test_unknown_recipes_and_settings_are_refused(names):
    with pytest.raises(ValueError, match="unknown recipe 'v3'"):
        microgpt.Run(names, "v3")
    with pytest.raises(TypeError):
        microgpt.Run(names, "v1", no_such_setting=1)
    with pytest.raises(ValueError, match="n_head"):
        microgpt.Run(names, "v1", n_head=5)


# -- bad files ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good(names, tmp_path_factory):
    """A small valid checkpoint's bytes."""
    run = microgpt.Run(names, "v1", n_embd=4, n_head=1, num_steps=3)
    list(run)
    return checkpoint.to_bytes(run.checkpoint())


def rewritten(good, change):
    """The good checkpoint with its tensors and metadata changed by change(tensors, meta)."""
    tensors = {k: v.copy() for k, v in load_tensors(good).items()}
    header = json.loads(good[8:8 + struct.unpack("<Q", good[:8])[0]])
    metadata = dict(header["__metadata__"])
    change(tensors, metadata)
    return save_tensors(tensors, metadata=metadata)


def _set(mapping, key, value):
    mapping[key] = value


BAD = {
    "empty": lambda good: b"",
    "truncated": lambda good: good[:len(good) // 2],
    "random bytes": lambda good: stdlib_random.Random(1).randbytes(5000),
    "a pickle": lambda good: pickle.dumps({"wte": [[0.1]]}),
    "no metadata": lambda good: save_tensors({"wte": np.zeros((2, 2))}),
    "missing tensor": lambda good: rewritten(good, lambda t, m: t.pop("adam.v.wte")),
    "extra tensor": lambda good: rewritten(good, lambda t, m: _set(t, "x", np.zeros(1))),
    "wrong shape": lambda good: rewritten(good, lambda t, m: _set(t, "wpe", np.zeros((8, 5)))),
    "wrong dtype": lambda good: rewritten(
        good, lambda t, m: _set(t, "wte", t["wte"].astype(np.float32))),
    "NaN parameter": lambda good: rewritten(
        good, lambda t, m: t["lm_head"].__setitem__((0, 0), np.nan)),
    "negative second moment": lambda good: rewritten(
        good, lambda t, m: t["adam.v.wte"].__setitem__((1, 1), -1.0)),
    "unknown version": lambda good: rewritten(
        good, lambda t, m: _set(m, "format_version", "2")),
    "not microgpt's": lambda good: rewritten(good, lambda t, m: _set(m, "format", "other")),
    "bad setting": lambda good: rewritten(good, lambda t, m: _set(m, "beta1", "1.5")),
    "setting not JSON": lambda good: rewritten(good, lambda t, m: _set(m, "n_embd", "four")),
    "huge n_layer": lambda good: rewritten(good, lambda t, m: _set(m, "n_layer", "10" * 20)),
    "step past the end": lambda good: rewritten(good, lambda t, m: _set(m, "step", "4")),
    "vocabulary unsorted": lambda good: rewritten(
        good, lambda t, m: _set(m, "vocabulary", m["vocabulary"][::-1])),
    "random index": lambda good: rewritten(
        good, lambda t, m: _set(t, "random.index", np.array(625, dtype=np.int64))),
}

MESSAGES = {
    "empty": "not a safetensors file", "truncated": "not a safetensors file",
    "random bytes": "not a safetensors file", "a pickle": "not a safetensors file",
    "no metadata": "not a microgpt checkpoint", "missing tensor": "'adam.v.wte' is missing",
    "extra tensor": "unexpected tensor 'x'", "wrong shape": "'wpe' has shape [8, 5], not [8, 4]",
    "wrong dtype": "'wte' is float32, not float64", "NaN parameter": "'lm_head' holds a NaN",
    "negative second moment": "'adam.v.wte' holds a negative number",
    "unknown version": "format version '2'; this microgpt reads version 1",
    "not microgpt's": "not a microgpt checkpoint", "bad setting": "beta1 must be",
    "setting not JSON": "'n_embd' is not JSON", "huge n_layer": "too few for n_layer",
    "step past the end": "step 4 is outside 0 to num_steps (3)",
    "vocabulary unsorted": "distinct characters in sorted order",
    "random index": "random.index 625 is outside",
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_checkpoint_is_a_one_line_error_naming_the_file(good, tmp_path, case):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(BAD[case](good))
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert MESSAGES[case] in message


def test_missing_files_and_directories(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "none.safetensors")
    with pytest.raises(CheckpointError, match="is a directory"):
        checkpoint.load(tmp_path)


def test_damaged_checkpoints_never_crash(good):
    # thousands of flipped and cut copies: each an error or a checkpoint, in-process
    rng = stdlib_random.Random(20261130)
    outcomes = {"error": 0, "loaded": 0}
    for case in range(3000):
        data = bytearray(good)
        for _ in range(rng.choice((1, 1, 2, 8))):
            at = rng.randrange(len(data)) if rng.random() < 0.5 else rng.randrange(200)
            data[at] ^= 1 << rng.randrange(8)
        if rng.random() < 0.2:
            data = data[:rng.randrange(len(data) + 1)]
        try:
            ck = checkpoint.from_bytes(bytes(data))
        except CheckpointError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
        else:
            checkpoint.from_bytes(checkpoint.to_bytes(ck))      # what loads, saves
            outcomes["loaded"] += 1
    assert outcomes["error"] > 100 and outcomes["loaded"] > 100, outcomes


# -- the bridge to PyTorch ---------------------------------------------------------------

@pytest.mark.parametrize("recipe, text", [("v1", "emma"), ("v2", "christopher")])
def test_the_pytorch_example_computes_microgpts_logits(names, tmp_path, recipe, text):
    pytest.importorskip("torch", reason="torch is not installed (never a dependency)")
    run = microgpt.Run(names, recipe, n_layer=2, num_steps=20)
    list(run)
    run.save(tmp_path / "ck.safetensors")
    example = Path(__file__).resolve().parents[1] / "examples" / "to_pytorch.py"
    result = subprocess.run([sys.executable, str(example), str(tmp_path / "ck.safetensors"),
                             text], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shape = (min(len(text) + 1, run.model.config.block_size), 27)
    assert result.stdout.startswith(f"logits of {text!r}: {shape}, largest difference")


def test_logits_are_the_scalar_graphs(names):
    run = microgpt.Run(names, "v2", n_layer=2, num_steps=5)
    list(run)
    fused = run.model.logits("christopher")
    if COMPILED:
        ck = run.checkpoint()
        exact = microgpt.run._model(run.model.tokenizer, run.recipe, True,
                                    microgpt.random.Random(), draw=False)
        exact._restore(ck)
        assert [hexes(row) for row in exact.logits("christopher")] == \
            [hexes(row) for row in fused]
    assert len(fused) == 12 and all(len(row) == 27 for row in fused)


# -- the README's example ----------------------------------------------------------------

@pytest.mark.skipif(not COMPILED, reason="1000 steps: minutes on the pure-Python backend")
def test_the_readmes_python_example_prints_what_the_readme_shows(names_txt, tmp_path):
    import re
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Keep a model"):readme.index("## Speed")]
    code, shown = re.search(r"```python\n(.*?)```\n\n```\n(.*?)```", section, re.S).groups()
    (tmp_path / "names.txt").symlink_to(names_txt)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown


# -- reading only what a checkpoint can be, and the same bytes for the same run -----------

def test_a_checkpoint_is_read_no_further_than_its_header_says(good, tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(good)
    with open(path, "r+b") as f:                # 4 GiB, sparse: reading it would take them
        f.truncate(4 << 30)
    with pytest.raises(CheckpointError, match=r"it is 4,294,967,296 bytes; its header says "):
        checkpoint.load(path)
    path.write_bytes(good + b"\0")               # one byte past the end is not it either
    with pytest.raises(CheckpointError, match="its header says"):
        checkpoint.load(path)
    for device in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(device):
            with pytest.raises(CheckpointError, match=f"{device}: is a character device"):
                checkpoint.load(device)


def test_a_generator_state_no_seed_reaches_is_refused(good, tmp_path):
    def zero(t, m):
        t["random.mt"][:] = 0
        t["random.mt"][0] = 0x7fffffff         # the lower 31 bits of the first word are unused
    path = tmp_path / "zero.safetensors"
    path.write_bytes(rewritten(good, zero))
    with pytest.raises(CheckpointError, match="random.mt is not a state of MT19937"):
        checkpoint.load(path)
    top = lambda t, m: (t["random.mt"].__setitem__(slice(None), 0),
                        t["random.mt"].__setitem__(0, 0x80000000))
    path.write_bytes(rewritten(good, top))      # its top bit alone is a state
    checkpoint.load(path)


@pytest.mark.parametrize("key", ["n_embd", "step", "text_sha256", "vocabulary",
                                 "format_version"])
def test_an_error_quotes_a_huge_value_cut_short(good, tmp_path, key):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(rewritten(good, lambda t, m: _set(m, key, "x" * 1_000_000)))
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert len(str(info.value)) < 300 + len(str(path)), str(info.value)[:400]


def test_the_same_run_saves_the_same_bytes(names_txt, tmp_path):
    # two processes (the metadata's order must not depend on one's hash seed)
    script = ("import sys, microgpt\n"
              "run = microgpt.Run(sys.argv[1], 'v2', n_embd=4, n_head=1, num_steps=2)\n"
              "list(run)\nrun.save(sys.argv[2])\n")
    for i, seed in enumerate(("1", "2", "3")):
        result = subprocess.run([sys.executable, "-c", script, str(names_txt),
                                 str(tmp_path / f"{i}.safetensors")],
                                env=dict(os.environ, PYTHONHASHSEED=seed), capture_output=True)
        assert result.returncode == 0, result.stderr
    saved = [(tmp_path / f"{i}.safetensors").read_bytes() for i in range(3)]
    assert saved[0] == saved[1] == saved[2]
    checkpoint.from_bytes(saved[0])


def test_the_pytorch_example_without_pytorch_is_one_line(good, tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "to_pytorch.py"
    script = textwrap.dedent(f"""
        import runpy, sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NoTorch())
        sys.argv = [{str(example)!r}, "ck.safetensors"]
        runpy.run_path(sys.argv[0], run_name="__main__")
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr == ("to_pytorch.py: needs PyTorch, which cannot be imported (No module "
                             "named 'torch'): pip install torch\n")


def test_a_run_trains_through_one_iterator_at_a_time(names):
    run = microgpt.Run(names, "v1", **SMALL)
    first = iter(run)
    next(first)
    with pytest.raises(RuntimeError, match="another iterator is training this run"):
        next(iter(run))
    with pytest.raises(RuntimeError, match="another iterator"):
        next(run.steps())
    assert run.step == 1
    first.close()                               # once it is done with, another may go on
    losses = [loss for loss in run]
    assert run.step == SMALL["num_steps"] and len(losses) == SMALL["num_steps"] - 1
    whole = microgpt.Run(names, "v1", **SMALL)
    assert state_of(whole) != state_of(run)
    list(whole)
    assert state_of(whole) == state_of(run)     # the same steps, each once
