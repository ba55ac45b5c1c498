"""Build the compiled core: the Cython modules in src/microgpt over the C in csrc.

Compiler directives are set here, once. MICROGPT_CYTHON_DEBUG=1 turns
Cython's bounds and initialization checks back on for debugging.

Warnings: the C in csrc and the C Cython generates compile without a warning
under -Wall -Wextra with gcc and clang. MICROGPT_WERROR=1 adds
-Wall -Wextra -Werror, so that CI keeps it so. By default no warning flag is
added to Python's own (which has -Wall): a user's compiler, newer than ours,
may find new things to say, and a build that pip runs hides them anyway.

Floating point: results must equal CPython's bit for bit, so no -ffast-math
and no -march=native, and -ffp-contract=off keeps the compiler from fusing
a*b+c into one rounding where the CPU has FMA. The -fno-builtin flags keep
each libm call the call Python makes: pow(x, 2.0) stays pow, not x*x, and
sin(x) next to cos(x) stays two calls, not one sincos.

Layout: -falign-functions=64 starts every function on a cache line, so that
a change to one function does not move the loops of the others across
instruction-fetch boundaries: without it, a few bytes more in Adam made the
portable kernels' training step 2% slower (docs/performance.md).

On an interpreter other than CPython (PyPy) nothing is compiled: the core's
C reads CPython's objects directly, which PyPy's emulation of the C API
cannot serve (it crashes). The package installed there is the pure-Python
backend, which microgpt then selects itself (microgpt/_backend.py).
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("MICROGPT_CYTHON_DEBUG") == "1"
WERROR = os.environ.get("MICROGPT_WERROR") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

UNIX_FLAGS = ["-ffp-contract=off", "-fno-builtin-pow", "-fno-builtin-sin", "-fno-builtin-cos",
              "-falign-functions=64"]
THREADS = ["-pthread"]     # the kernels' worker threads (csrc/threads.c)
WARNINGS = ["-Wall", "-Wextra", "-Werror"] if WERROR else []


class BuildExt(build_ext):
    def build_extensions(self):
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = UNIX_FLAGS + THREADS + WARNINGS + ext.extra_compile_args
                ext.extra_link_args = THREADS + ext.extra_link_args
        super().build_extensions()


extensions = [
    Extension("microgpt._engine", ["src/microgpt/_engine.pyx", "csrc/slab.c"],
              include_dirs=["csrc"]),
    Extension("microgpt._random", ["src/microgpt/_random.pyx", "csrc/mt19937.c"],
              include_dirs=["csrc"]),
    Extension("microgpt._fused", ["src/microgpt/_fused.pyx", "csrc/fused.c", "csrc/adam.c",
                                  "csrc/adam_avx2.c", "csrc/adam_avx512.c", "csrc/cpu.c",
                                  "csrc/threads.c", "csrc/pages.c"],
              include_dirs=["csrc"]),
    Extension("microgpt._peak", ["src/microgpt/_peak.pyx", "csrc/peak.c"], include_dirs=["csrc"]),
]

if sys.implementation.name == "cpython":
    from Cython.Build import cythonize
    ext_modules = cythonize(extensions, compiler_directives=DIRECTIVES)
else:
    print(f"microgpt: no compiled core on {sys.implementation.name} (it is for CPython only); "
          "the package runs its pure-Python backend", file=sys.stderr)
    ext_modules = []

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
