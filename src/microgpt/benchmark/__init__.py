"""
python -m microgpt.benchmark: microgpt's benchmarks, as JSON on stdout.

The schema is the one microgpt ports in other languages write, so results
sit beside theirs::

    {"language": "python", "implementation": "microgpt", "version": "3.11.7",
     "microgpt_version": "0.1.0", "backend": "compiled", "timestamp": "...Z",
     "machine": {...},
     "benchmarks": [{"name": "random_1m", "description": "...", "backend": "compiled",
                     "iterations": 1000000, "time_ms": ..., "ops_per_sec": ...,
                     "min_ms": ..., "max_ms": ..., "repeats": ..., "speedup": ..., "result": ...}]}

``time_ms`` is the median over the repeats of the whole workload (after a
warm-up run), ``ops_per_sec`` is iterations per second at that median, and
``speedup`` (on compiled entries) is the pure-Python median over the compiled
one. ``result`` is what the workload computed (the last draw, a loss, the
logits), so that backends can be checked against each other. Progress goes to
stderr; stdout holds nothing but the JSON.

The bigger models (LONG) run on the fused backend only, one training step
per timed run, and add ``flops_per_step``, ``gflops`` and ``peak_ratio``: the
GFLOP/s of their matrix products over the peak rate of separate multiplies
and adds that ``peak_mul_add`` probes (microgpt._peak), in the same process,
for the instruction set the fused kernels run with.
"""
import argparse
import datetime
import json
import os
import platform
import sys

import microgpt
from microgpt._backend import compiled
from microgpt.data import DataError, load_docs, names_path

from .workloads import (BENCHMARKS, CONFIG, FUSED_ONLY, LONG, MODEL, STANDARD, TRAINING,
                        VOCAB_SIZE, Backend, Benchmark, backends, kernel_isa, long_documents,
                        measure, peak_mul_add, training_flops)

__all__ = ["main", "run_benchmark", "runs_of", "machine", "BENCHMARKS", "CONFIG", "FUSED_ONLY",
           "LONG", "MODEL", "STANDARD", "TRAINING", "VOCAB_SIZE", "Backend", "Benchmark",
           "backends", "kernel_isa", "long_documents", "measure", "peak_mul_add",
           "training_flops"]


def run_benchmark(name, backend, repeats, docs, progress):
    """BENCHMARKS[name] timed on backend: its entry."""
    return BENCHMARKS[name].run(name, backend, repeats, docs, progress)


def runs_of(name, backend, top):
    """The backends a benchmark runs on, for --backend `backend` (None: the
    default), the baselines of its speedup last. FUSED_ONLY run on "fused"
    where it is among them, else on none."""
    if name in FUSED_ONLY:
        return ["fused"] if backend in (None, "fused", "all") and top != "python" else []
    if backend in ("compiled", "fused", "python"):
        return [backend]
    runs = [top]
    if top == "compiled" and name in MODEL:
        runs.append("fused")                # the fast path too, where it differs
    if backend == "all" or (backend is None and name in STANDARD and top != "python"):
        runs.append("python")
    return runs




def _and(names):
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def machine():
    info = {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "compiler": platform.python_compiler(),
    }
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m microgpt.benchmark",
        description="Run microgpt's benchmarks and print the results as JSON on stdout "
                    "(progress on stderr).")
    parser.add_argument("--backend", choices=["compiled", "fused", "python", "all"],
                        help="compiled: the compiled Value and generator; fused: the same "
                             "with the GPT on fused operations (microgpt-train's default); "
                             "python: the pure-Python backend; all: all three. Default: "
                             "compiled, fused where it differs (the model benchmarks), and "
                             "the pure-Python runs of the six standard benchmarks that give "
                             "each its speedup. The bigger models and the peak probe run on "
                             "fused only (by default, with fused and with all)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="timed runs per benchmark (default: 3 to 7, by benchmark; "
                             "the bigger models' timed steps: 10 and 30)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true",
                        help="one timed run each, for tests and CI")
    parser.add_argument("--input", metavar="FILE",
                        help="names.txt for the training runs (default: the one microgpt comes with)")
    parser.add_argument("--threads", type=int, metavar="N", default=1,
                        help="threads for the fused kernels (default: 1); the bigger "
                             "models' peak_ratio is then against N cores' peak")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for name, bench in BENCHMARKS.items():
            print(f"{name:20s} {bench.description}")
        return 0
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if not 1 <= args.threads <= 256:
        parser.error(f"--threads must be from 1 to 256, not {args.threads}")
    names = args.only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (see --list)")
    available = backends()
    if args.backend in ("compiled", "fused", "all") and "compiled" not in available:
        parser.error(f"--backend {args.backend} needs the compiled core, "
                     "and MICROGPT_PUREPYTHON=1 turns it off")
    if args.threads > 1:
        if "compiled" not in available:
            parser.error("--threads needs the compiled core, "
                         "and MICROGPT_PUREPYTHON=1 turns it off")
        compiled("_fused").set_threads(args.threads)
    top = args.backend if args.backend in available else \
        "compiled" if "compiled" in available else "python"   # the first column of "all" too
    repeats = 1 if args.quick else args.repeat

    def progress(text):
        print(text, end="", file=sys.stderr, flush=True)

    idle = [name for name in names if not runs_of(name, args.backend, top)]
    if idle:
        where = f"--backend {args.backend}" if args.backend else "MICROGPT_PUREPYTHON=1"
        if args.only:
            parser.error(f"{idle[0]} runs on the fused backend only, not with {where}")
        progress(f"{parser.prog}: skipping {_and(idle)}: fused backend only, not with {where}\n")
        names = [name for name in names if name not in idle]

    docs = None
    training = [name for name in names if BENCHMARKS[name].needs_docs]
    if training:
        try:
            docs = load_docs(args.input if args.input else names_path())
        except DataError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 2

    entries = []
    try:
        for name in names:
            measured = {}
            for backend_name in runs_of(name, args.backend, top):
                entry = run_benchmark(name, available[backend_name], repeats, docs, progress)
                measured[backend_name] = entry
                entries.append(entry)
            for backend_name in ("compiled", "fused"):
                if backend_name in measured and "python" in measured:
                    measured[backend_name]["speedup"] = (measured["python"]["time_ms"]
                                                         / measured[backend_name]["time_ms"])
    except DataError as exc:                # documents too short for a long context
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{parser.prog}: interrupted", file=sys.stderr)
        return 130

    report = {
        "language": "python",
        "implementation": "microgpt",
        "version": platform.python_version(),
        "microgpt_version": microgpt.__version__,
        "backend": args.backend or top,
        "threads": args.threads,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "benchmarks": entries,
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0
