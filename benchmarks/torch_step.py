"""Time microgpt's training step beside PyTorch's eager mode on the same GPT.

The model is microgpt.py's GPT of recipe v1: token and position embeddings
added and RMS-normed (no weights), then per layer a pre-norm causal
attention (4 heads, q/k/v/o matrices, no biases) and a pre-norm MLP,
relu(x @ fc1.T) ** 2 @ fc2.T, each added to the residual; an untied lm_head.
One step is one document: [BOS] + its characters + [BOS], cut to the block,
forward over all its positions at once, the mean cross-entropy, backward,
and Adam (betas 0.9 and 0.95, eps 1e-8, lr 0.01 on v1's cosine decay). Step
i trains on document i. Sizes are "n_embd x n_layer x block_size":

    16x1x8      microgpt.py's default: names.txt, a name per document, shuffled (seed 42)
    64x2x64     30 names per document: the names in file order, 30 at a time,
    128x4x128   joined by a space (the last document may have fewer)

microgpt runs its fast path (microgpt.fused.FusedGPT under microgpt.train.train,
in float64). PyTorch runs on one thread (--threads N: both on N), in float32
and in float64, written as
a PyTorch user would: nn.Embedding, nn.Linear(bias=False), F.rms_norm,
attention as softmax(q @ k.T / sqrt(head_dim), causal mask by masked_fill) @ v
(--sdpa: F.scaled_dot_product_attention(is_causal=True)), F.cross_entropy,
zero_grad(set_to_none=True), and torch.optim.Adam(fused=True), the fastest
of its implementations here (--adam to change). Both start from microgpt's
parameters (the same draws from seed 42): "max |dloss|" is the largest
difference between microgpt's float64 losses and PyTorch's, a check that
they train the same model.

After warm-up steps each step is timed alone (time.perf_counter). The three
run alternately, a slice of their steps at a time in rotating order, in the
same process; a cell is the median ms per step, and "x" columns are
PyTorch's time over microgpt's.

    python benchmarks/torch_step.py [--input names.txt] [--sizes 16x1x8,64x2x64]
                                    [--steps N] [--warmup N] [--rounds N] [--threads N]
                                    [--isa avx512|avx2|portable] [--json]

--isa caps both to one instruction set, as a CPU without the wider ones
would run them; the table's header says which each then ran.

PyTorch is not a dependency of microgpt. Without it (or without microgpt's
compiled core, or the names) the script prints one line on stderr and exits
with status 2, as for a bad argument; it exits 0 after a run.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

# --isa caps both sides to one instruction set: microgpt's kernels by
# MICROGPT_KERNELS, PyTorch's by its three variables. They must be set before
# torch is imported, so the flag is read here, ahead of argparse.
ISA_ENVIRONMENT = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "AVX512",
               "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2": {"MICROGPT_KERNELS": "avx2", "ATEN_CPU_CAPABILITY": "avx2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "portable": {"MICROGPT_KERNELS": "portable", "ATEN_CPU_CAPABILITY": "default",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def _isa_in(argv):
    for i, arg in enumerate(argv):
        if arg == "--isa" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--isa="):
            return arg.split("=", 1)[1]
    return None


if _isa_in(sys.argv[1:]) in ISA_ENVIRONMENT:
    os.environ.pop("MICROGPT_KERNELS", None)
    os.environ.update(ISA_ENVIRONMENT[_isa_in(sys.argv[1:])])

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:
    print(f"torch_step.py: needs PyTorch, which cannot be imported ({exc})", file=sys.stderr)
    sys.exit(2)

import microgpt
from microgpt import benchmark as mbench
from microgpt.data import DataError, Tokenizer, load_docs, names_path
from microgpt.random import Random
from microgpt.recipe import V1
from microgpt.train import SCHEDULES, train

SIZES = {"16x1x8": 200, "64x2x64": 30, "128x4x128": 15}    # size: default timed steps


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size, sdpa):
        super().__init__()
        self.n_head, self.sdpa = n_head, sdpa
        self.attn_wq, self.attn_wk, self.attn_wv, self.attn_wo = (
            nn.Linear(n_embd, n_embd, bias=False) for _ in range(4))
        self.mlp_fc1 = nn.Linear(n_embd, 4 * n_embd, bias=False)
        self.mlp_fc2 = nn.Linear(4 * n_embd, n_embd, bias=False)
        self.register_buffer("causal", torch.ones(block_size, block_size, dtype=torch.bool).tril())

    def forward(self, x):
        T, C = x.shape
        heads = lambda t: t.view(T, self.n_head, C // self.n_head).transpose(0, 1)
        h = rmsnorm(x)
        q, k, v = heads(self.attn_wq(h)), heads(self.attn_wk(h)), heads(self.attn_wv(h))
        if self.sdpa:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.n_head))
            a = F.softmax(att.masked_fill(~self.causal[:T, :T], float("-inf")), dim=-1) @ v
        x = x + self.attn_wo(a.transpose(0, 1).reshape(T, C))
        return x + self.mlp_fc2(F.relu(self.mlp_fc1(rmsnorm(x))).square())


class GPT(nn.Module):
    def __init__(self, config, sdpa=False):
        super().__init__()
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.layers = nn.ModuleList(Block(c.n_embd, c.n_head, c.block_size, sdpa)
                                    for _ in range(c.n_layer))

    def forward(self, idx):
        x = rmsnorm(self.wte(idx) + self.wpe.weight[:idx.shape[0]])
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(x)


def rmsnorm(x):
    return F.rms_norm(x, (x.shape[-1],), eps=1e-5)


def torch_steps(config, docs, tokenizer, rng_state, num_steps, dtype, args):
    """PyTorch's training loop, a step per next(): yields each step's loss."""
    model = GPT(config, args.sdpa).to(dtype)
    rng = Random()
    rng.setstate(rng_state)                 # microgpt's parameters: the same draws
    proj_std, std = config.stds()
    with torch.no_grad():                   # named_parameters: in microgpt's order
        for name, w in model.named_parameters():
            draws = torch.empty(w.shape, dtype=torch.float64)
            proj = name.endswith(("attn_wo.weight", "mlp_fc2.weight"))
            rng.gauss_into(draws.numpy(), 0.0, proj_std if proj else std)
            w.copy_(draws)
    adam = {"fused": dict(fused=True), "foreach": dict(foreach=True), "loop": dict(foreach=False)}
    opt = torch.optim.Adam(model.parameters(), lr=V1.learning_rate, betas=(V1.beta1, V1.beta2),
                           eps=V1.eps_adam, **adam[args.adam])
    decay = SCHEDULES[V1.lr_schedule]
    for step in range(num_steps):
        tokens = tokenizer.encode(docs[step % len(docs)])
        n = min(config.block_size, len(tokens) - 1)
        loss = F.cross_entropy(model(torch.tensor(tokens[:n])), torch.tensor(tokens[1:n + 1]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = decay(V1.learning_rate, step, num_steps)
        opt.step()
        yield loss.item()


def compare(size, steps, names, args):
    from microgpt.fused import FusedGPT
    n_embd, n_layer, block_size = map(int, size.split("x"))
    rng = Random(V1.seed)
    if size == "16x1x8":
        docs = list(names)
        rng.shuffle(docs)                   # microgpt.py's shuffle
    else:
        docs = mbench.long_documents(names)
    tokenizer = Tokenizer(docs)
    recipe = V1.replace(n_embd=n_embd, n_head=4, n_layer=n_layer, block_size=block_size)
    config = recipe.config(tokenizer.vocab_size)
    num_steps = args.warmup + steps
    rng_state = rng.getstate()
    runs = {
        "microgpt": train(FusedGPT(config, rng), docs, tokenizer, num_steps,
                          **recipe.training()),
        "torch_float32": torch_steps(config, docs, tokenizer, rng_state, num_steps,
                                     torch.float32, args),
        "torch_float64": torch_steps(config, docs, tokenizer, rng_state, num_steps,
                                     torch.float64, args),
    }
    times = {name: [] for name in runs}
    losses = {name: [next(run) for _ in range(args.warmup)] for name, run in runs.items()}
    order = list(runs)
    for r in range(args.rounds):
        chunk = steps * (r + 1) // args.rounds - steps * r // args.rounds
        for name in order[r % 3:] + order[:r % 3]:
            run, timed = runs[name], times[name]
            for _ in range(chunk):
                start = time.perf_counter()
                losses[name].append(next(run))
                timed.append((time.perf_counter() - start) * 1e3)
    ms = {name: statistics.median(t) for name, t in times.items()}
    print(f"{size}:", ", ".join(f"{name} {value:.3f} ms" for name, value in ms.items()),
          file=sys.stderr, flush=True)
    return {
        "size": size, "n_embd": n_embd, "n_head": 4, "n_layer": n_layer,
        "block_size": block_size, "vocab_size": tokenizer.vocab_size, "docs": len(docs),
        "warmup": args.warmup, "steps": steps,
        **{f"{name}_ms": value for name, value in ms.items()},
        "torch_float32_x": ms["torch_float32"] / ms["microgpt"],
        "torch_float64_x": ms["torch_float64"] / ms["microgpt"],
        "max_loss_diff_float64": max(abs(a - b) for a, b in
                                     zip(losses["microgpt"], losses["torch_float64"])),
    }


def table(rows):
    lines = [f"{'size':>10} {'microgpt':>10} {'torch f32':>10} {'torch f64':>10} "
             f"{'f32 x':>7} {'f64 x':>7} {'max |dloss|':>12}",
             f"{'':>10} {'ms/step':>10} {'ms/step':>10} {'ms/step':>10}"]
    for r in rows:
        lines.append(f"{r['size']:>10} {r['microgpt_ms']:10.3f} {r['torch_float32_ms']:10.3f} "
                     f"{r['torch_float64_ms']:10.3f} {r['torch_float32_x']:7.2f} "
                     f"{r['torch_float64_x']:7.2f} {r['max_loss_diff_float64']:12.1e}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", metavar="FILE",
                        help="names.txt, a name per line (default: the one microgpt comes with)")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help="comma-separated n_embd x n_layer x block_size; 16x1x8 trains on "
                        f"names, the others on 30 names a document (default {','.join(SIZES)})")
    parser.add_argument("--steps", type=int, metavar="N", help="timed steps per size "
                        "(default " + ", ".join(f"{s} for {k}" for k, s in SIZES.items()) +
                        ", 30 for others)")
    parser.add_argument("--warmup", type=int, default=3, metavar="N",
                        help="untimed steps first (default 3)")
    parser.add_argument("--rounds", type=int, default=5, metavar="N",
                        help="alternations between the three (default 5)")
    parser.add_argument("--sdpa", action="store_true",
                        help="attention by F.scaled_dot_product_attention")
    parser.add_argument("--adam", choices=["fused", "foreach", "loop"], default="fused",
                        help="torch.optim.Adam's implementation (default fused)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="threads for PyTorch and for microgpt's kernels (default 1)")
    parser.add_argument("--isa", choices=list(ISA_ENVIRONMENT),
                        help="cap both to one instruction set (microgpt: MICROGPT_KERNELS; "
                        "PyTorch: ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, "
                        "ONEDNN_MAX_CPU_ISA); default: each its widest")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.isa is not None and argv is not None and _isa_in(sys.argv[1:]) != args.isa:
        parser.error("--isa must be given on the command line (it is read before torch loads)")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for size in sizes:
        parts = size.split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) for p in parts) or int(parts[0]) % 4:
            parser.error(f"bad size {size!r}: want NxLxB, N a multiple of 4 (4 heads)")
    if args.steps is not None and args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1, --warmup at least 0")
    if not 1 <= args.threads <= 256:
        parser.error(f"--threads must be from 1 to 256, not {args.threads}")
    if microgpt.BACKEND != "compiled":
        parser.exit(2, "torch_step.py: needs microgpt's compiled core "
                       "(unset MICROGPT_PUREPYTHON)\n")
    try:
        names = load_docs(args.input or names_path())
    except DataError as exc:
        parser.exit(2, f"torch_step.py: {exc}\n")
    torch.set_num_threads(args.threads)
    from microgpt.fused import kernel_isa, set_threads
    set_threads(args.threads)
    rows = [compare(size, args.steps or SIZES.get(size, 30), names, args) for size in sizes]
    isa = {"microgpt": kernel_isa(),
           "torch": torch.backends.cpu.get_cpu_capability()}
    if args.json:
        json.dump({"torch_version": torch.__version__, "microgpt_version": microgpt.__version__,
                   "threads": torch.get_num_threads(), "machine": mbench.machine(), "isa": isa,
                   "attention": "sdpa" if args.sdpa else "plain",
                   "adam": args.adam, "sizes": rows}, sys.stdout, indent=2)
        print()
    else:
        print(f"torch {torch.__version__}, {args.threads} thread{'s' * (args.threads > 1)}, "
              f"attention "
              f"{'F.scaled_dot_product_attention' if args.sdpa else 'plain'}, "
              f"Adam {args.adam}; microgpt {microgpt.__version__} fused (float64); "
              f"x = torch / microgpt")
        print(f"instruction sets: microgpt {isa['microgpt']}, torch {isa['torch']}")
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
