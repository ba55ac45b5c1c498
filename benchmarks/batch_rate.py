"""Documents a second of the fast path's training step, per batch size.

    python benchmarks/batch_rate.py [--sizes 16x1x16,128x4x128] [--batches 1,4,16,32]
        [--threads 1] [--rounds 5] [--docs 3000] [--json]

For each size (n_embd x n_layer x block_size, 4 heads, recipe v2 otherwise)
and batch size (--batch-size), trains on names.txt, shuffled as
microgpt-train does, and times the steps after the first (which allocates):
at least --docs documents' worth (fewer for the bigger sizes: see SCALE),
in each of --rounds rounds, the batch sizes taking turns within a round. A
cell is the median over rounds of the documents trained a second, and in
brackets that over the first batch size's, taken round by round. The
instruction set is the kernels' own choice, or MICROGPT_KERNELS's.

It prints the date, the CPU, the kernels' instruction set and the Python
beside the table: everything a figure in docs/performance.md needs.
"""
import argparse
import datetime
import json
import platform
import statistics
import time

import microgpt
from microgpt.data import load_text, names_path
from microgpt.fused import kernel_isa, set_threads

SCALE = {16: 1, 32: 2, 64: 8, 128: 50}      # n_embd: fewer documents a round, by this


def rate(text, n_embd, n_layer, block_size, batch_size, docs):
    """Documents a second of steps of batch_size, docs documents' worth."""
    steps = max(2, docs // batch_size) + 1
    run = microgpt.Run(text, "v2", n_embd=n_embd, n_head=4, n_layer=n_layer,
                       block_size=block_size, batch_size=batch_size, num_steps=steps)
    losses = iter(run)
    next(losses)
    start = time.perf_counter()
    for _ in losses:
        pass
    return (steps - 1) * batch_size / (time.perf_counter() - start)


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16x1x16,32x1x16,64x1x16,128x4x128")
    parser.add_argument("--batches", default="1,4,16,32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    set_threads(args.threads)
    text = load_text(names_path())
    sizes = [tuple(map(int, size.split("x"))) for size in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    table = {}
    for size in sizes:
        docs = max(1, args.docs // SCALE.get(size[0], 1))
        rounds = []
        for _ in range(args.rounds):
            rounds.append({b: rate(text, *size, b, docs) for b in batches})
        table["x".join(map(str, size))] = {
            b: {"docs_per_s": statistics.median(r[b] for r in rounds),
                "vs_batch_1": statistics.median(r[b] / r[batches[0]] for r in rounds)}
            for b in batches}
    about = {"date": datetime.date.today().isoformat(), "cpu": cpu(), "isa": kernel_isa(),
             "threads": args.threads, "python": platform.python_version(),
             "rounds": args.rounds}
    if args.json:
        print(json.dumps({"about": about, "table": table}, indent=2))
        return
    print(" | ".join(f"{key} {value}" for key, value in about.items()))
    print(f"| size | {' | '.join(f'B={b}' for b in batches)} |")
    print(f"|---|{'---|' * len(batches)}")
    for size, row in table.items():
        cells = [f"{row[b]['docs_per_s']:,.0f} ({row[b]['vs_batch_1']:.2f}x)" for b in batches]
        print(f"| {size} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
