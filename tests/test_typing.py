"""microgpt's types, as a type checker sees them: py.typed, the stubs of the
compiled modules (and of microgpt.random) and the annotations of the public
modules. mypy --strict passes a script of the public API and reports each
misuse in another; stubtest finds the stubs true to the compiled modules."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (the test extra installs it)")

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / "tests" / "typing"
STUBBED = ["microgpt._engine", "microgpt._random", "microgpt._fused", "microgpt._peak",
           "microgpt.random"]


def _run(args, **env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=600)


def _mypy(path, tmp_path):
    # a cache of this test's own: none is left in the work tree
    result = _run(["-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), str(path)])
    return result, result.stdout + result.stderr


def test_the_public_api_type_checks_under_strict_mypy(tmp_path):
    result, output = _mypy(TYPING / "public_api.py", tmp_path)
    assert result.returncode == 0, output
    assert "Success: no issues found" in output


def test_each_misuse_of_the_public_api_is_a_mypy_error(tmp_path):
    path = TYPING / "misuse.py"
    marked = {number for number, line in enumerate(path.read_text().splitlines(), 1)
              if line.endswith("# error")}
    result, output = _mypy(path, tmp_path)
    reported = {int(number) for number in re.findall(r"misuse\.py:(\d+): error", output)}
    assert result.returncode == 1, output
    assert reported == marked, output


def test_the_public_api_script_runs():
    # the types the script asserts hold at run time too (without the fused
    # operations under MICROGPT_PUREPYTHON=1)
    result = _run([str(TYPING / "public_api.py")])
    assert result.returncode == 0, result.stderr


def test_the_stubs_match_the_compiled_modules(tmp_path):
    # against the compiled backend, whatever this run's: microgpt.random's stub is its
    env = {key: value for key, value in os.environ.items() if key != "MICROGPT_PUREPYTHON"}
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--allowlist",
         str(TYPING / "stubtest-allowlist.txt"), *STUBBED],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)   # its cache there
    assert result.returncode == 0, result.stdout + result.stderr
