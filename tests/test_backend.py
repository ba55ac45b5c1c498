"""The choice of backend on an interpreter the compiled core cannot serve
(PyPy): the pure-Python backend, with one line of warning, and setup.py
compiling nothing. Each runs in a subprocess whose sys.implementation says
"pypy"."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_PYPY = "import sys; sys.implementation.name = 'pypy'\n"


def _run(code, **env):
    environ = {key: value for key, value in os.environ.items() if key != "MICROGPT_PUREPYTHON"}
    return subprocess.run([sys.executable, "-c", AS_PYPY + code], capture_output=True,
                          text=True, cwd=ROOT, env={**environ, **env}, timeout=120)


def test_another_interpreter_runs_the_pure_python_backend_and_says_so_in_one_line():
    result = _run(
        "import microgpt\n"
        "from microgpt import Value, engine, random\n"
        "a = Value(2.0); b = a * a + a; b.backward()\n"
        "print(microgpt.BACKEND, Value is engine.Value, a.grad,\n"
        "      random.Random is random.PythonRandom, random.random.__self__ is random._inst)\n"
        "try:\n"
        "    import microgpt.fused\n"
        "except ImportError as exc:\n"
        "    print(exc)\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "python True 5.0 True True"
    assert out[1] == ("microgpt's compiled core runs on CPython only, not on pypy: "
                      "microgpt._fused is not available here")
    assert result.stderr.splitlines() == [
        "microgpt:0: RuntimeWarning: microgpt's compiled core runs on CPython only; on pypy, "
        "microgpt runs its pure-Python backend (MICROGPT_PUREPYTHON=1 says so, without this "
        "warning)"]


def test_a_run_there_trains_and_samples_on_the_scalar_graph(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("emma\nolivia\nava\n")
    result = _run(f"import microgpt\n"
                  f"run = microgpt.Run({str(names)!r}, num_steps=2, n_embd=4, n_head=1)\n"
                  f"print(len(list(run)), run.model.exact, len(run.model.sample(2)))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2 True 2\n"


def test_asking_for_the_pure_python_backend_there_is_no_warning():
    result = _run("import microgpt; print(microgpt.BACKEND)", MICROGPT_PUREPYTHON="1")
    assert (result.returncode, result.stdout, result.stderr) == (0, "python\n", "")


def test_the_warning_is_a_warning_filters_can_turn_into_an_error():
    result = _run("import warnings; warnings.simplefilter('error')\n"
                  "try:\n"
                  "    import microgpt\n"
                  "except RuntimeWarning as warning:\n"
                  "    print('CPython only' in str(warning))\n")
    assert (result.returncode, result.stdout) == (0, "True\n"), result.stderr


def test_setup_py_compiles_nothing_there():
    # a stand-in for setuptools (which a venv of Python 3.12 on has not), to see what
    # setup.py would build without building it
    result = _run(
        "import types\n"
        "seen = {}\n"
        "setuptools, command, build = (types.ModuleType(name) for name in ("
        "'setuptools', 'setuptools.command', 'setuptools.command.build_ext'))\n"
        "setuptools.setup = lambda **kwargs: seen.update(kwargs)\n"
        "setuptools.Extension = lambda *args, **kwargs: (args, kwargs)\n"
        "build.build_ext = type('build_ext', (), {})\n"
        "sys.modules.update({m.__name__: m for m in (setuptools, command, build)})\n"
        "sys.argv = ['setup.py', 'build_ext']\n"
        "exec(compile(open('setup.py').read(), 'setup.py', 'exec'), {'__name__': '__main__'})\n"
        "print(seen['ext_modules'])\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
    assert "no compiled core on pypy" in result.stderr
