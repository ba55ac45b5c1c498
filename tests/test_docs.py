"""The documentation's commands and examples, run: README.md and docs/*.md.

Each fenced block is of one kind, its info string's first word:

    console   `$ ` lines are commands, run in order in a new directory (which
              sees the project's benchmarks/ and examples/ as its root does), one bash
              each (with pipefail); the lines under a command are its output,
              stdout and stderr as a terminal shows them: a carriage return
              starts its line over, and a line `...` stands for any number of
              lines. A command without lines under it is not checked for its
              output. It must exit with 0, or with N where its line ends in
              `# exit status N`.
    python    run as a script in a new directory holding names.txt; a bare block
              right after it is its stdout, exactly.
    sh        commands the suite cannot run: each is in .ci/run, or begins with
              an entry of NOT_RUN below, which says why.
    text, ``  (bare) shown, not run: they may hold no command.

A second word `compiled-only` skips the block on the pure-Python backend: it
takes minutes there, or needs the compiled core.

Without jq on PATH, `| jq .` is run as `| python -m json.tool --indent 2`,
which prints the same lines for microgpt's JSON.

Every command in the text too (an inline `microgpt-train --lr 0.1`) is parsed
by the command's own parser; each command's table of flags lists exactly the
flags its parser has; and every link must resolve to a file of the project: a
flag renamed or removed in the code fails here until the docs follow.
"""
import contextlib
import functools
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import microgpt

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CI = ROOT / ".ci" / "run"
TIMEOUT = 300                   # seconds, per command
COMPILED_ONLY = "compiled-only"
KINDS = ("console", "python", "sh", "text", "")
PROJECT_DIRS = ("benchmarks", "examples")    # the project's, as a reader at its root sees them

# The commands of sh blocks that .ci/run does not run, by how they begin, and why not.
NOT_RUN = {
    "pip install": "installs the package; the suite runs on the installed package",
    "bash .ci/run": "the whole CI: fresh venvs of three Pythons, three builds",
    "python -m microgpt.benchmark": "every benchmark: minutes; test_benchmark.py runs each",
    "./benchmarks/run.sh": "the harness on three backends: many minutes",
    "python benchmarks/torch_step.py": "needs PyTorch, never a dependency",
    "python benchmarks/value_step.py --json": "half a minute; benchmarks.md runs it shortened",
    "python benchmarks/mlp_step.py --json": "half a minute; benchmarks.md runs it shortened",
    "python benchmarks/compare_builds.py": "needs two builds, each installed in a virtual "
                                           "environment; test_benchmark.py runs it on one, twice",
    "python benchmarks/batch_rate.py": "a minute; performance.md runs it shortened, "
                                        "test_benchmark.py checks its table",
    "python tests/tools/mutants.py": "rebuilds and tests the project once per mutant: half an hour",
}


# -- reading the docs --------------------------------------------------------------------

class Block:
    def __init__(self, path, line, kind, tags, lines, end):
        self.path, self.line, self.kind, self.tags = path, line, kind, tags
        self.lines, self.end = lines, end      # end: the line of the closing fence

    @property
    def id(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path):
    """The fenced blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        opening = re.match(r"```(.*)$", lines[i])
        if opening:
            words = opening.group(1).split()
            close = lines.index("```", i + 1)
            found.append(Block(path, i + 1, words[0] if words else "", words[1:],
                               lines[i + 1:close], close + 1))
            i = close
        i += 1
    return found


ALL_BLOCKS = [block for path in DOCS for block in blocks(path)]


def of_kind(kind):
    return [pytest.param(b, id=b.id) for b in ALL_BLOCKS if b.kind == kind]


def prose(path):
    """A file's text without its fenced blocks."""
    return re.sub(r"^```.*?^```$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def skip_if_compiled_only(block):
    if COMPILED_ONLY in block.tags and microgpt.BACKEND != "compiled":
        pytest.skip(f"{block.id} is {COMPILED_ONLY}: minutes on the pure-Python backend, "
                    "or it needs the compiled core")


@pytest.fixture
def shell(tmp_path):
    """The environment of a documented command: this Python as `python`, its
    console scripts first on PATH, and a new directory to work in."""
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    python = bin_dir / "python"         # a script, not a link: a venv's python finds its
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')   # venv by its own path
    python.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable),
                            os.environ.get("PATH", "")])
    work = tmp_path / "work"
    work.mkdir()
    for name in PROJECT_DIRS:
        (work / name).symlink_to(ROOT / name)
    return work, dict(os.environ, PATH=path)


# -- console blocks ----------------------------------------------------------------------

def console_commands(block):
    """[(command, expected status, output lines)] of a console block."""
    commands = []
    for line in block.lines:
        if line.startswith("$ "):
            status = re.search(r"\s#\s*exit status (\d+)$", line)
            commands.append((line[2:], int(status.group(1)) if status else 0, []))
        else:
            assert commands, f"{block.id}: output before any `$ ` command"
            commands[-1][2].append(line)
    assert commands, f"{block.id}: a console block without a `$ ` command"
    return commands


def screen(text):
    """text as a terminal shows it, a line each: a carriage return starts its
    line over, and what follows overwrites what was there."""
    shown = []
    for line in text.split("\n"):
        cells, column = [], 0
        for ch in line:
            if ch == "\r":
                column = 0
                continue
            if column < len(cells):
                cells[column] = ch
            else:
                cells.append(ch)
            column += 1
        shown.append("".join(cells))
    if shown and shown[-1] == "":
        shown.pop()                 # the newline that ends the last line
    return shown


def matches(expected, actual):
    """Whether the lines match, a line `...` standing for any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


def as_run(command):
    if shutil.which("jq") is None:
        command = command.replace("| jq .", "| python -m json.tool --indent 2")
    return command


@pytest.mark.parametrize("block", of_kind("console"))
def test_console_block(block, shell):
    skip_if_compiled_only(block)
    work, env = shell
    for command, status, expected in console_commands(block):
        parse_command(command, block.id)
        result = subprocess.run(["bash", "-o", "pipefail", "-c", as_run(command)], cwd=work,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=TIMEOUT)
        shown = screen(result.stdout.decode("utf-8", "replace"))
        assert result.returncode == status, (f"{block.id}: $ {command}\nexit status "
                                             f"{result.returncode}, not {status}:\n"
                                             + "\n".join(shown[-20:]))
        if expected:
            assert matches(expected, shown), (f"{block.id}: $ {command}\nprinted:\n"
                                              + "\n".join(shown) + "\nnot:\n"
                                              + "\n".join(expected))


def test_the_output_rules_hold():
    assert screen("a\rb\n") == ["b"]
    assert screen("step 1 | 3.1\rstep 2 | 2.9\r\nnext\n") == ["step 2 | 2.9", "next"]
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert matches(["a", "...", "z"], ["a", "z"])
    assert not matches(["a", "...", "z"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])
    assert console_commands(Block(ROOT, 1, "console", [], ["$ x   # exit status 2", "y"], 3)) \
        == [("x   # exit status 2", 2, ["y"])]


# -- python blocks -----------------------------------------------------------------------

def output_of(block):
    """The bare block right after a python block (a blank line between): its
    stdout; None if there is none."""
    for other in ALL_BLOCKS:
        if other.path == block.path and other.line == block.end + 2 and other.kind == "":
            return other.lines
    return None


@pytest.mark.parametrize("block", of_kind("python"))
def test_python_block(block, shell, names_txt):
    skip_if_compiled_only(block)
    work, env = shell
    (work / "names.txt").symlink_to(names_txt)
    result = subprocess.run([sys.executable, "-c", "\n".join(block.lines)], cwd=work, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{block.id}:\n{result.stderr}"
    expected = output_of(block)
    if expected is not None:
        assert result.stdout.split("\n")[:-1] == expected, f"{block.id} printed:\n{result.stdout}"


# -- sh blocks, and the blocks that are shown only ----------------------------------------

def sh_commands():
    """(block, command) of every sh block's lines, comments left out."""
    for block in ALL_BLOCKS:
        if block.kind == "sh":
            for line in block.lines:
                command = line.split(" #")[0].strip()
                if command and not command.startswith("#"):
                    yield block, command


def unset(command):
    """command without the environment variables it begins by setting."""
    return re.sub(r"^([A-Z_]+=\S* )+", "", command)


def test_every_sh_command_is_run_by_ci_or_says_why_not():
    ci = CI.read_text(encoding="utf-8")
    unaccounted = [f"{block.id}: {command}" for block, command in sh_commands()
                   if command not in ci and not unset(command).startswith(tuple(NOT_RUN))]
    assert not unaccounted, "run these in a console block, or add them to NOT_RUN:\n" + \
        "\n".join(unaccounted)
    unused = [entry for entry in NOT_RUN
              if not any(unset(command).startswith(entry) for _, command in sh_commands())]
    assert not unused, f"NOT_RUN names commands no doc shows: {unused}"


def test_the_readme_runs_the_tests_as_ci_does():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m pytest -n auto" in readme and "python -m pytest -n auto" in CI.read_text()


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in ALL_BLOCKS])
def test_a_block_is_of_a_known_kind_and_a_shown_block_holds_no_command(block):
    assert block.kind in KINDS, f"{block.id}: blocks are of the kinds {KINDS}"
    assert set(block.tags) <= {COMPILED_ONLY}, f"{block.id}: unknown tags {block.tags}"
    if block.kind in ("text", ""):
        commands = [line for line in block.lines
                    if line.startswith(("$ ", "microgpt-", "python -m", "pip "))]
        assert not commands, f"{block.id}: commands in a block that is not run: {commands}"


# -- commands in the text, and the flags -------------------------------------------------

@functools.cache
def parsers():
    """The parser of each command, by the words that call it."""
    from microgpt.benchmark import build_parser as benchmark
    from microgpt.commands import report, sample, train
    return {"python -m microgpt.benchmark": benchmark(),
            "python -m microgpt.sample": sample.build_parser("python -m microgpt.sample"),
            "python -m microgpt.report": report.build_parser("python -m microgpt.report"),
            "python -m microgpt": train.build_parser("python -m microgpt"),
            "microgpt-train": train.build_parser("microgpt-train"),
            "microgpt-sample": sample.build_parser("microgpt-sample"),
            "microgpt-report": report.build_parser("microgpt-report")}


def parse_command(command, where):
    """Parse a documented microgpt command with its parser (each command of a
    pipeline or list; other programs are left alone): a flag the parser does
    not have fails here."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words, redirected = [], False
    for word in [*lexer, ";"]:
        if redirected or word in (">", ">>", "<"):   # a redirection and its file
            redirected = not redirected
            continue
        if word not in ("|", "||", "&&", ";", "&"):
            words.append(word)
            continue
        while words and re.match(r"[A-Z_]+=", words[0]):    # VAR=value command ...
            words.pop(0)
        for name, parser in parsers().items():
            if words[:len(name.split())] == name.split():
                out = io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    try:
                        parser.parse_args(words[len(name.split()):])
                    except SystemExit as exc:
                        assert exc.code == 0, f"{where}: `{command}`: {out.getvalue()}"
                break
        words = []


def inline_commands():
    for path in DOCS:
        for span in re.findall(r"`([^`]+)`", prose(path)):
            span = " ".join(span.split())
            if unset(span).startswith(("microgpt-", "python -m microgpt")) and \
                    span not in parsers():      # a command's name alone names it
                yield path, span


def test_every_command_in_the_text_parses():
    commands = list(inline_commands())
    assert len(commands) > 10
    for path, command in commands:
        parse_command(command, path.name)
    for block, command in sh_commands():
        parse_command(command, block.id)


def options(parser):
    return {option for action in parser._actions for option in action.option_strings
            if option not in ("-h", "--help")}


def documented_flags(path):
    """The flags a page names at the start of a code span: `--lr LR`, `-o PATH`."""
    return {span.split()[0] for span in re.findall(r"`(-[^`]+)`", prose(path))}


def flag_table(path, heading):
    """The flags in the first cells of the tables of a page's section (from
    the heading to the next of its level): | `--lr LR` | ... |."""
    text = prose(path)
    level = heading.split()[0]
    section = text[text.index(heading + "\n"):]
    following = re.search(rf"^{level} ", section[len(heading):], flags=re.M)
    section = section[:len(heading) + following.start()] if following else section
    cells = re.findall(r"^\| ([^|]*)\|", section, flags=re.M)
    return {span.split()[0] for cell in cells for span in re.findall(r"`(-[^`]+)`", cell)}


def test_each_commands_table_lists_its_flags_exactly():
    from microgpt.benchmark import build_parser as benchmark
    from microgpt.commands import report, sample, train
    guide, benchmarks = ROOT / "docs" / "guide.md", ROOT / "docs" / "benchmarks.md"
    for path, heading, parser in [
            (guide, "## microgpt-train", train.build_parser("microgpt-train")),
            (guide, "## microgpt-sample", sample.build_parser("microgpt-sample")),
            (guide, "## microgpt-report", report.build_parser("microgpt-report")),
            (benchmarks, "## The flags", benchmark())]:
        listed = flag_table(path, heading)
        assert listed == options(parser), (
            f"{path.name}, {heading}: the table lists {sorted(listed - options(parser))} "
            f"that {parser.prog} does not have, and not {sorted(options(parser) - listed)}")


def test_every_flag_the_docs_name_belongs_to_a_command_or_a_script():
    known = set().union(*(options(p) for p in parsers().values()))
    scripts = "".join(p.read_text() for p in [*ROOT.glob("benchmarks/*"), ROOT / "setup.py",
                                              *ROOT.glob("tests/tools/*.py"), *ROOT.glob(".ci/*")])
    for path in DOCS:
        for flag in documented_flags(path):
            assert flag in known or flag.split("=")[0] in scripts, \
                f"{path.name} names {flag}, which no command or script has"


def test_every_environment_variable_the_docs_name_exists():
    sources = "".join(p.read_text(errors="replace") for pattern in
                      ("src/microgpt/*.py", "src/microgpt/*.pyx", "csrc/*.[ch]", "setup.py",
                       "tests/*.py", ".ci/*")
                      for p in ROOT.glob(pattern) if p.name != "test_docs.py")
    for path in DOCS:
        for name in set(re.findall(r"MICROGPT_[A-Z0-9_]+", path.read_text())):
            assert name in sources, f"{path.name} names {name}, which nothing reads"


# -- figures ------------------------------------------------------------------------------

# Amounts outside performance.md that are settings of the code, not measurements.
SETTINGS = {"about 20 ms": "the length of a peak probe's run (benchmark/workloads.py)",
            "1 MiB": "the least memory the fused operations may keep for reuse "
                     "(KEPT_AT_LEAST)",
            "10%": "how close tests/test_memory.py holds the memory estimate to the peak"}


def test_measurements_live_in_performance_md_alone():
    figure = r"\d[\d,.]*(\s?(ms|µs|GFLOP/s|KB|KiB|MB|MiB|GB|bytes)|x)\b"
    for path in DOCS:
        if path.name != "performance.md":
            text = prose(path)
            for setting in SETTINGS:
                text = text.replace(setting, "")
            found = [m.group(0) for m in re.finditer(figure, text)]
            assert not found, f"{path.name} quotes {found}: figures belong in performance.md"


# -- links --------------------------------------------------------------------------------

def anchors(path):
    """The anchors of a Markdown file's headings, as GitHub makes them."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", prose(path), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
        found.add(slug.replace(" ", "-"))
    return found


def test_every_link_resolves_to_a_file_of_the_project():
    checked = 0
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(path)):
            if re.match(r"[a-z]+:", target):
                continue                    # https://, mailto:
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            assert resolved.exists(), f"{path.name}: {target} is not a file of the project"
            assert ROOT in resolved.parents or resolved == ROOT, f"{path.name}: {target}"
            if anchor:
                assert anchor in anchors(resolved), f"{path.name}: {target}: no such heading"
            checked += 1
    assert checked > 10


def test_the_sdist_ships_the_docs_and_what_they_check():
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "graft docs" in manifest
    assert ".ci/run" in manifest, "test_docs.py reads .ci/run, in the sdist too"
