"""Time two (or more) installed builds of microgpt side by side: a training
step per size, per instruction set and thread count, the builds' processes
taking turns.

    python benchmarks/compare_builds.py VENV_A VENV_B [VENV_C ...]
        [--sizes 16x1x8,64x2x64,128x4x128] [--isa portable,avx2,avx512]
        [--threads 1,2] [--rounds N] [--input names.txt] [--json]

Each VENV is a virtual environment with microgpt installed (its bin/python
runs the steps). A round runs, for each instruction set and thread count,
one process per build, the builds in rotating order; each process times the
steps of every size (each step alone, after warm-up steps) on the fast path:
microgpt.fused.FusedGPT trained by microgpt.train.train, the API every build
has had. The training is recipe v1's, as in benchmarks/torch_step.py: at
16x1x8 (microgpt.py's size) one name per step, shuffled with seed 42; at the
bigger sizes 30 names a document, in file order. A cell is the median over
rounds of each round's median ms per step; "B/A" is the later build's over
the first's, taken round by round (its median, and its range over rounds).
The instruction set is MICROGPT_KERNELS (avx512: the variable unset, on a
CPU that has it; portable also sets MICROGPT_DISABLE_AVX2=1, which older
builds read); a build prints the one it ran (kernel_isa()), or "?" if it is
too old to say (those have AVX2 kernels and plain C only). Threads other than 1 need a build with set_threads.

It prints the date, the CPU, its vector extensions and the Python beside the
table: everything a figure in docs/performance.md needs.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

SIZES = {"16x1x8": (50, 400), "64x2x64": (3, 20), "128x4x128": (2, 8)}  # (warm-up, timed)

# Runs in each build's interpreter: only names every build has
STEPS = r"""
import json, sys, time
from microgpt.data import Tokenizer, load_docs
from microgpt.fused import FusedGPT
from microgpt.model import Config
from microgpt.random import Random
from microgpt.train import train
import microgpt.fused as fused

names_path, sizes, threads = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
result = {"isa": fused.kernel_isa() if hasattr(fused, "kernel_isa") else "?", "ms": {}}
if threads != 1:
    if not hasattr(fused, "set_threads"):      # a build of one thread only
        print(json.dumps({**result, "ms": None}))
        sys.exit(0)
    fused.set_threads(threads)
names = load_docs(names_path)
for size, (warmup, steps) in sizes.items():
    n_embd, n_layer, block_size = map(int, size.split("x"))
    rng = Random(42)
    if size == "16x1x8":
        docs = list(names)
        rng.shuffle(docs)
    else:
        docs = [" ".join(names[i:i + 30]) for i in range(0, len(names), 30)]
    tokenizer = Tokenizer(docs)
    config = Config(tokenizer.vocab_size, n_embd=n_embd, n_head=4, n_layer=n_layer,
                    block_size=block_size)
    run = train(FusedGPT(config, rng), docs, tokenizer, warmup + steps, learning_rate=0.01)
    for _ in range(warmup):
        next(run)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        next(run)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    result["ms"][size] = times[len(times) // 2]
print(json.dumps(result))
"""


def cpu():
    """The CPU's model name and the vector extensions the kernels use."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    except OSError:
        pass
    return model, sorted(flags & {"avx2", "fma", "avx512f", "asimd", "neon", "sve"})


def run_build(venv, isa, threads, sizes, names):
    env = dict(os.environ)
    env.pop("MICROGPT_KERNELS", None)
    env.pop("MICROGPT_DISABLE_AVX2", None)
    if isa != "avx512":
        env["MICROGPT_KERNELS"] = isa
    if isa == "portable":
        env["MICROGPT_DISABLE_AVX2"] = "1"      # what builds before MICROGPT_KERNELS read
    python = str(Path(venv).absolute() / "bin" / "python")   # the steps run from /
    done = subprocess.run([python, "-c", STEPS, names, json.dumps(sizes), str(threads)],
                          env=env, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        sys.exit(f"compare_builds.py: {venv} failed: "
                 f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venvs", nargs="+", metavar="VENV")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--isa", default="portable,avx2,avx512")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--rounds", type=int, default=5, metavar="N")
    parser.add_argument("--input", metavar="FILE", help="names.txt (default: the one the "
                        "first build's microgpt comes with, else ./names.txt)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if len(args.venvs) < 2:
        parser.error("give at least two virtual environments")
    sizes = {size: SIZES[size] for size in args.sizes.split(",")}
    isas, thread_counts = args.isa.split(","), [int(t) for t in args.threads.split(",")]
    names = args.input or subprocess.run(
        [str(Path(args.venvs[0]) / "bin" / "python"), "-c",
         "from microgpt.data import names_path; print(names_path())"],
        capture_output=True, text=True).stdout.strip() or "names.txt"
    names = str(Path(names).resolve())

    ms = {}         # (isa, threads, venv) -> size -> [round medians]
    shown = {}      # (isa, venv) -> the instruction set the build says it ran
    for r in range(args.rounds):
        for isa in isas:
            for threads in thread_counts:
                order = args.venvs[r % len(args.venvs):] + args.venvs[:r % len(args.venvs)]
                for venv in order:
                    result = run_build(venv, isa, threads, sizes, names)
                    shown[isa, venv] = result["isa"]
                    for size in sizes:
                        value = result["ms"][size] if result["ms"] else None
                        ms.setdefault((isa, threads, venv), {}).setdefault(size, []).append(value)
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    model, flags = cpu()
    rows = []
    first = args.venvs[0]
    for isa in isas:
        for threads in thread_counts:
            for size in sizes:
                row = {"isa": isa, "threads": threads, "size": size,
                       "ran": [shown[isa, v] for v in args.venvs]}
                base = ms[isa, threads, first][size]
                for i, venv in enumerate(args.venvs):
                    values = ms[isa, threads, venv][size]
                    row[f"ms_{i}"] = None if None in values else statistics.median(values)
                    if i:
                        ratios = [b / a for a, b in zip(base, values) if a and b]
                        row[f"ratio_{i}"] = statistics.median(ratios) if ratios else None
                        row[f"ratio_{i}_range"] = [min(ratios), max(ratios)] if ratios else None
                rows.append(row)
    about = {"date": datetime.date.today().isoformat(), "cpu": model, "flags": flags,
             "python": platform.python_version(), "rounds": args.rounds,
             "builds": args.venvs}
    if args.json:
        print(json.dumps({**about, "rows": rows}, indent=2))
        return 0
    print(f"{about['date']}, {model} ({' '.join(flags)}), Python {about['python']}, "
          f"{args.rounds} rounds; ms per step, median of the rounds' medians")
    for i, venv in enumerate(args.venvs):
        print(f"  {chr(65 + i)}: {venv}")
    head = f"{'isa':>8} {'thr':>3} {'size':>10}" + "".join(
        f" {chr(65 + i) + ' ms':>9}" for i in range(len(args.venvs))) + "".join(
        f" {chr(65 + i) + '/A':>6} {'range':>11}" for i in range(1, len(args.venvs)))
    print(head)
    for row in rows:
        ran = "" if all(r in (row["isa"], "?") for r in row["ran"]) else \
            f"  (ran {', '.join(row['ran'])})"
        cells = ["n/a" if row[f"ms_{i}"] is None else f"{row[f'ms_{i}']:.4f}"
                 for i in range(len(args.venvs))]
        ratios = ["       n/a         " if row[f"ratio_{i}"] is None else
                  f"{row[f'ratio_{i}']:6.3f} {row[f'ratio_{i}_range'][0]:5.3f}-"
                  f"{row[f'ratio_{i}_range'][1]:5.3f}" for i in range(1, len(args.venvs))]
        print(f"{row['isa']:>8} {row['threads']:3d} {row['size']:>10}" +
              "".join(f" {c:>9}" for c in cells) + "".join(f" {r}" for r in ratios) + ran)
    return 0


if __name__ == "__main__":
    sys.exit(main())
