"""The HTML report (microgpt.viz, --report, microgpt-report): its numbers
against the model's own, its views, that it names nothing outside itself,
and what Chromium shows of it."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import microgpt
from microgpt import figures, runlog, viz
from microgpt.data import load_text

pytest.importorskip("matplotlib", reason="the report needs matplotlib (microgpt[report])")

BIN = Path(sys.executable).parent
TRAIN, REPORT = str(BIN / "microgpt-train"), str(BIN / "microgpt-report")
COMPILED = microgpt.BACKEND == "compiled"
VIEWS = ["loss", "samples", "attention", "next-token", "embeddings", "parameters"]


@pytest.fixture(scope="module")
def text(names_txt):
    return load_text(names_txt)


@pytest.fixture(scope="module")
def finished(text, tmp_path_factory):
    """A small finished run: its checkpoint, its log, its --report page."""
    directory = tmp_path_factory.mktemp("run")
    paths = {name: directory / name for name in ("ck.safetensors", "run.jsonl", "r.html")}
    size = ["60", "200", "20", "20"] if COMPILED else ["10", "8", "5", "4"]   # pure: slow
    result = subprocess.run(
        [TRAIN, "--input", text.name, "--recipe", "v2", "--n-layer", "2", "--steps", size[0],
         "--val-docs", size[1], "--eval-every", size[2], "--samples", size[3],
         "--save", str(paths["ck.safetensors"]),
         "--log", str(paths["run.jsonl"]), "--report", str(paths["r.html"])],
        capture_output=True)
    assert result.returncode == 0, result.stderr
    return paths


@pytest.mark.parametrize("recipe, settings", [("v1", {}), ("v2", dict(n_layer=2))])
def test_the_numpy_forward_pass_is_the_models(text, recipe, settings):
    run = microgpt.Run(text, recipe, num_steps=15, **settings)
    list(run)
    model = run.model
    for word in ("emma", "christopher", ""):
        tokens = model.tokenizer.encode(word)[:-1][:model.config.block_size]
        logits, attention = viz.forward(model.state_dict, model.config, tokens)
        assert np.abs(logits - np.array(model.logits(word))).max() <= 1e-12
        assert len(attention) == model.config.n_layer
        for heads in attention:
            assert len(heads) == model.config.n_head
            for weights in heads:
                assert np.allclose(weights.sum(axis=1), 1.0)
                assert (np.triu(weights, 1) == 0).all()


def test_the_page_has_every_view_and_names_nothing_outside(finished):
    page = finished["r.html"].read_text()
    for view in VIEWS:
        assert f'<section id="{view}">' in page
    assert page.count("<svg") == 5 and "No log" not in page
    # no request can leave the page: no URL but the XML namespaces of inline SVG
    without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", without_namespaces)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page)
    assert not re.search(r"url\((?!#)", page) and "@import" not in page   # only url(#id)
    assert "held-out loss" in page and "layer 1 head 3" in page


def test_microgpt_report_makes_the_same_page(finished, tmp_path):
    out = tmp_path / "again.html"
    result = subprocess.run([REPORT, str(finished["ck.safetensors"]), "--log",
                             str(finished["run.jsonl"]), "-o", str(out)], capture_output=True)
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b""
    assert out.read_bytes() == finished["r.html"].read_bytes()


def test_without_a_log_the_page_says_so(finished, tmp_path):
    out = tmp_path / "nolog.html"
    result = subprocess.run([REPORT, str(finished["ck.safetensors"]), "-o", str(out),
                             "--inspect", "anna"], capture_output=True)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.count("No log:") == 2 and "Attention on “anna”" in page
    samples = runlog.read(finished["run.jsonl"])[-1]["samples"]
    assert "Samples drawn from the saved model" in page
    shown = re.findall(r'<div><span class="n">\d+</span>(.*?)</div>', page)
    letters = ["".join(re.findall(r">([^<])</span>", row)).rstrip("⏎") for row in shown]
    assert letters == samples      # the checkpoint's generator: the run's samples


@pytest.mark.skipif(not COMPILED, reason="500 steps: minutes on the pure-Python backend")
def test_report_and_log_leave_the_default_run_as_it_was(names_txt, references, tmp_path):
    result = subprocess.run([TRAIN, "--input", str(names_txt), "--report",
                             str(tmp_path / "r.html"), "--log", str(tmp_path / "run.jsonl")],
                            capture_output=True)
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout == references["v1"]["stdout"]
    losses = [r["loss"] for r in runlog.read(tmp_path / "run.jsonl") if r["kind"] == "step"]
    assert [repr(x) for x in losses] == references["v1"]["json"]["losses"]
    assert "Attention on “kalia”" in (tmp_path / "r.html").read_text()     # the first sample


@pytest.mark.parametrize("args, message", [
    (["--report", "{tmp}/missing/r.html"], "cannot write the report: {tmp}/missing: no such "
                                           "directory"),
    (["--report", "{tmp}"], "cannot write the report: {tmp} is a directory"),
    (["--report", "{tmp}/r.html", "--inspect", "Émile"], "--inspect 'Émile': 'É' not in the "
                                                         "vocabulary of {names}"),
    (["--inspect", "emma"], "--inspect needs --report PATH"),
])
def test_bad_report_requests_are_refused_before_training(names_txt, tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run([TRAIN, "--input", str(names_txt), *args], capture_output=True)
    assert result.returncode == 2 and result.stdout == b""
    expected = message.replace("{tmp}", str(tmp_path)).replace("{names}", str(names_txt))
    assert result.stderr.decode() == f"microgpt-train: error: {expected}\n"


def test_without_matplotlib_report_says_what_to_install(names_txt, tmp_path):
    script = textwrap.dedent("""
        import sys

        class NoMatplotlib:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "matplotlib":
                    raise ModuleNotFoundError(f"No module named {name!r}")

        sys.meta_path.insert(0, NoMatplotlib())
        sys.argv[0] = "microgpt-train"
        from microgpt.cli import main
        sys.exit(main())
        """)
    result = subprocess.run([sys.executable, "-c", script, "--input", str(names_txt),
                             "--report", str(tmp_path / "r.html")], capture_output=True)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == (
        "microgpt-train: error: --report needs matplotlib, which is not installed: pip install "
        "'microgpt[report]' (or pip install matplotlib)\n")


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), (b"not json\n", "not a microgpt log (a line is not JSON"),
    (b'{"kind": "step", "step": 1}\n', "not a microgpt log (it must begin with a start record)"),
    (b'{"kind": "start"}\n{"kind": "step", "step": "one", "loss": 1.0}\n',
     "line 2: not a step record"),
])
def test_bad_logs_are_one_line(finished, tmp_path, content, message):
    log = tmp_path / "bad.jsonl"
    if content is not None:
        log.write_bytes(content)
    result = subprocess.run([REPORT, str(finished["ck.safetensors"]), "--log", str(log), "-o",
                             str(tmp_path / "r.html")], capture_output=True)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode().startswith(f"microgpt-report: error: {log}: {message}")
    assert result.stderr.count(b"\n") == 1 and not (tmp_path / "r.html").exists()


def test_a_log_of_another_run_is_refused(finished, names_txt, tmp_path):
    other = tmp_path / "other.jsonl"
    assert subprocess.run([TRAIN, "--input", str(names_txt), "--steps", "3", "--log",
                           str(other)], capture_output=True).returncode == 0
    result = subprocess.run([REPORT, str(finished["ck.safetensors"]), "--log", str(other), "-o",
                             str(tmp_path / "r.html")], capture_output=True)
    assert result.returncode == 2
    assert b"is the log of another run" in result.stderr


# -- in a real browser -------------------------------------------------------------------

def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("MICROGPT_REQUIRE_CHROMIUM") == "1":
        pytest.fail("chromium is not installed (.ci/run installs it)")
    pytest.skip("chromium is not installed")


def headless(*args):
    # the browser is not ours to sanitize: no ASan runtime preloaded into it
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *args], capture_output=True, timeout=120,
                          env=env)


def test_chromium_shows_every_view(finished, tmp_path):
    url = finished["r.html"].resolve().as_uri()
    dom = headless("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    text = dom.stdout.decode()
    for view in VIEWS:
        assert re.search(rf'<section id="{view}">\s*<h2>', text), view
    assert text.count("<svg") == 5

    shot = tmp_path / "page.png"
    result = headless(f"--screenshot={shot}", "--window-size=1100,2400", url)
    assert result.returncode == 0 and shot.is_file(), result.stderr
    from matplotlib.image import imread
    pixels = imread(shot)[..., :3]
    ink = (pixels.mean(axis=2) < 0.9).mean()        # not white
    colour = (pixels.max(axis=2) - pixels.min(axis=2) > 0.2).mean()
    assert pixels.shape[:2] == (2400, 1100)
    assert ink > 0.03 and colour > 0.005, (ink, colour)    # a blank page has neither


def test_a_run_of_no_steps_says_so(names_txt, tmp_path):
    out = tmp_path / "r.html"
    result = subprocess.run([TRAIN, "--input", str(names_txt), "--steps", "0", "--samples", "2",
                             "--report", str(out)], capture_output=True)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.count("The run trained no steps") == 2 and page.count("<svg") == 3


# -- what the page shows of any run, and what it refuses ------------------------------------

def with_metadata(source, target, **changes):
    """A copy of the checkpoint at source with some metadata changed, at target."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    with safe_open(str(source), "numpy") as f:
        metadata = f.metadata()
    save_file(load_file(str(source)), str(target), metadata={**metadata, **changes})
    return target


def report(*args):
    return subprocess.run([REPORT, *map(str, args)], capture_output=True)


def test_a_checkpoint_whose_sampling_fails_is_one_line(finished, tmp_path):
    # finite numbers that load, and a temperature whose inverse overflows the logits
    ck = with_metadata(finished["ck.safetensors"], tmp_path / "ck.safetensors",
                       temperature="5.6e-309")
    result = report(ck, "-o", tmp_path / "r.html")
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.startswith(b"microgpt-report: error: sampling failed at sample 1: ")
    assert result.stderr.count(b"\n") == 1 and not (tmp_path / "r.html").exists()


def test_a_report_draws_a_bounded_number_of_samples(finished, tmp_path):
    ck = with_metadata(finished["ck.safetensors"], tmp_path / "ck.safetensors",
                       num_samples=str(10 ** 9))
    result = subprocess.run([REPORT, str(ck), "-o", str(tmp_path / "r.html")],
                            capture_output=True, timeout=900)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count('<span class="n">') == viz.MAX_SAMPLES


def rewritten_log(finished, tmp_path, change):
    records = runlog.read(finished["run.jsonl"])
    change(records)
    path = tmp_path / "changed.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def _set(record, key, value):
    record[key] = value


@pytest.mark.parametrize("change, message", [
    (lambda r: _set(r[0], "text_sha256", "0" * 64), "is the log of another run than"),
    (lambda r: _set(r[0], "vocab_size", 5), "is the log of another run than"),
    (lambda r: _set(r[-1], "samples", ["zzé"]), "its samples have characters that are not in"),
    (lambda r: _set(r[-1], "samples", [1]), "its 'samples' is not of the right kind"),
    (lambda r: _set(r[0], "num_docs", "many"), "its 'num_docs' is not a whole number"),
    (lambda r: _set(r[1], "elapsed", "soon"), "its 'elapsed' is not a number"),
])
def test_logs_that_do_not_fit_the_checkpoint_are_one_line(finished, tmp_path, change, message):
    log = rewritten_log(finished, tmp_path, change)
    result = report(finished["ck.safetensors"], "--log", log, "-o", tmp_path / "r.html")
    assert result.returncode == 2 and result.stdout == b""
    assert message in result.stderr.decode() and result.stderr.count(b"\n") == 1


def test_a_log_with_a_loss_that_was_not_finite_makes_a_page(finished, tmp_path):
    # --log writes a non-finite loss as null
    def last_loss_null(records):
        _set([r for r in records if r["kind"] == "step"][-1], "loss", None)
    log = rewritten_log(finished, tmp_path, last_loss_null)
    result = report(finished["ck.safetensors"], "--log", log, "-o", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert "final loss not a number" in (tmp_path / "r.html").read_text()


def test_a_log_cut_short_by_a_full_disk_still_makes_a_page(finished, tmp_path):
    log = tmp_path / "cut.jsonl"
    log.write_bytes(finished["run.jsonl"].read_bytes()[:-40])
    result = report(finished["ck.safetensors"], "--log", log, "-o", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rb"microgpt-report: warning: .*cut.jsonl: its last line \(line \d+, "
                        rb"\d+ characters\) is cut short; read up to the record before it\n",
                        result.stderr), result.stderr


def odd_run(tmp_path, docs):
    text = tmp_path / "odd.txt"
    text.write_text("\n".join(docs) + "\n", encoding="utf-8")
    paths = [tmp_path / n for n in ("ck.safetensors", "run.jsonl", "r.html")]
    result = subprocess.run([TRAIN, "--input", str(text), "--steps", "3", "--samples", "3",
                             "--n-embd", "8", "--n-head", "2", "--save", str(paths[0]),
                             "--log", str(paths[1]), "--report", str(paths[2]),
                             "--inspect", docs[0]], capture_output=True)
    return result, paths


def test_characters_that_show_nothing_are_shown_as_code_points(tmp_path):
    docs = ["a\x01b", "c\uffffd", "e\x1bf", "g\u202eh", "i\u2028j\x85k"]
    result, (ck, log, page) = odd_run(tmp_path, docs)
    assert result.returncode == 0, result.stderr
    html = page.read_text(encoding="utf-8")
    body = html[html.index("<body>"):]
    unseen = [c for c in body if c not in "\n" and viz._unseen(c)]
    assert unseen == []             # none of them raw: each as a marked code point
    assert '“a<span class="esc">U+0001</span>b”' in body      # the document inspected
    again = report(ck, "--log", log, "-o", tmp_path / "again.html", "--inspect", docs[0])
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.html").read_bytes() == page.read_bytes()


def test_characters_no_font_has_are_one_line(tmp_path):
    result, paths = odd_run(tmp_path, ["日本", "東京", "abc"])
    assert result.returncode == 0
    warnings = [line for line in result.stderr.decode().splitlines() if line]
    assert "Glyph" not in result.stderr.decode() and len(warnings) <= 1, warnings
    families, missing = figures._families("日本東京abc")
    if missing:
        assert warnings == [f"microgpt-train: warning: no installed font has {len(missing)} of "
                            f"the text's characters ({''.join(sorted(missing))!r}): the figures "
                            "were laid out without them, and a browser shows them with fonts "
                            "of its own"]
    else:
        assert warnings == [] and len(families) > 1
