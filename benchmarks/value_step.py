"""Time microgpt.py's training step with the compiled Value and the pure-Python one.

The step is microgpt.py's, line for line, at its default size (n_embd 16,
n_head 4, n_layer 1, block_size 8, 27 tokens): forward over one name, loss,
backward, Adam. Both engines run in the same process, alternating, and the
speed-up is the median over rounds of (pure time / compiled time).

    python benchmarks/value_step.py [--rounds 7] [--steps 20]
"""
import argparse
import json
import math
import random as stdlib_random
import statistics
import sys
import time

import microgpt
from microgpt.engine import Value as PureValue

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia",
         "harper", "evelyn", "abigail", "emily", "elizabeth", "mila", "ella", "avery",
         "sofia", "camila", "aria", "scarlett"]


def make_trainer(Value, random, n_embd=16, n_head=4, n_layer=1, block_size=8):
    """microgpt.py's model and Adam, returning its training step as a function."""
    random.seed(42)
    uchars = [chr(ord('a') + i) for i in range(26)]
    BOS = len(uchars)
    vocab_size = len(uchars) + 1
    head_dim = n_embd // n_head
    matrix = lambda nout, nin, std=0.02: [[Value(random.gauss(0, std)) for _ in range(nin)] for _ in range(nout)]
    state_dict = {'wte': matrix(vocab_size, n_embd), 'wpe': matrix(block_size, n_embd), 'lm_head': matrix(vocab_size, n_embd)}
    for i in range(n_layer):
        state_dict[f'layer{i}.attn_wq'] = matrix(n_embd, n_embd)
        state_dict[f'layer{i}.attn_wk'] = matrix(n_embd, n_embd)
        state_dict[f'layer{i}.attn_wv'] = matrix(n_embd, n_embd)
        state_dict[f'layer{i}.attn_wo'] = matrix(n_embd, n_embd, std=0)
        state_dict[f'layer{i}.mlp_fc1'] = matrix(4 * n_embd, n_embd)
        state_dict[f'layer{i}.mlp_fc2'] = matrix(n_embd, 4 * n_embd, std=0)
    params = [p for mat in state_dict.values() for row in mat for p in row]

    def linear(x, w):
        return [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w]

    def softmax(logits):
        max_val = max(val.data for val in logits)
        exps = [(val - max_val).exp() for val in logits]
        total = sum(exps)
        return [e / total for e in exps]

    def rmsnorm(x):
        ms = sum(xi * xi for xi in x) / len(x)
        scale = (ms + 1e-5) ** -0.5
        return [xi * scale for xi in x]

    def gpt(token_id, pos_id, keys, values):
        tok_emb = state_dict['wte'][token_id]
        pos_emb = state_dict['wpe'][pos_id]
        x = [t + p for t, p in zip(tok_emb, pos_emb)]
        x = rmsnorm(x)
        for li in range(n_layer):
            x_residual = x
            x = rmsnorm(x)
            q = linear(x, state_dict[f'layer{li}.attn_wq'])
            k = linear(x, state_dict[f'layer{li}.attn_wk'])
            v = linear(x, state_dict[f'layer{li}.attn_wv'])
            keys[li].append(k)
            values[li].append(v)
            x_attn = []
            for h in range(n_head):
                hs = h * head_dim
                q_h = q[hs:hs+head_dim]
                k_h = [ki[hs:hs+head_dim] for ki in keys[li]]
                v_h = [vi[hs:hs+head_dim] for vi in values[li]]
                attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim**0.5 for t in range(len(k_h))]
                attn_weights = softmax(attn_logits)
                head_out = [sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h))) for j in range(head_dim)]
                x_attn.extend(head_out)
            x = linear(x_attn, state_dict[f'layer{li}.attn_wo'])
            x = [a + b for a, b in zip(x, x_residual)]
            x_residual = x
            x = rmsnorm(x)
            x = linear(x, state_dict[f'layer{li}.mlp_fc1'])
            x = [xi.relu() ** 2 for xi in x]
            x = linear(x, state_dict[f'layer{li}.mlp_fc2'])
            x = [a + b for a, b in zip(x, x_residual)]
        logits = linear(x, state_dict['lm_head'])
        return logits

    learning_rate, beta1, beta2, eps_adam = 1e-2, 0.9, 0.95, 1e-8
    m = [0.0] * len(params)
    v = [0.0] * len(params)
    num_steps = 500

    def train_step(step, doc):
        tokens = [BOS] + [uchars.index(ch) for ch in doc] + [BOS]
        n = min(block_size, len(tokens) - 1)
        keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
        losses = []
        for pos_id in range(n):
            token_id, target_id = tokens[pos_id], tokens[pos_id + 1]
            logits = gpt(token_id, pos_id, keys, values)
            probs = softmax(logits)
            loss_t = -probs[target_id].log()
            losses.append(loss_t)
        loss = (1 / n) * sum(losses)
        loss.backward()
        lr_t = learning_rate * 0.5 * (1 + math.cos(math.pi * step / num_steps))
        for i, p in enumerate(params):
            m[i] = beta1 * m[i] + (1 - beta1) * p.grad
            v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2
            m_hat = m[i] / (1 - beta1 ** (step + 1))
            v_hat = v[i] / (1 - beta2 ** (step + 1))
            p.data -= lr_t * m_hat / (v_hat ** 0.5 + eps_adam)
            p.grad = 0
        return loss.data

    return train_step


def time_steps(train_step, steps):
    """Seconds per step over `steps` steps, one name each."""
    start = time.perf_counter()
    for step in range(steps):
        train_step(step, NAMES[step % len(NAMES)])
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per round (default 20)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if microgpt.BACKEND != "compiled":
        parser.error("needs the compiled backend (unset MICROGPT_PUREPYTHON)")

    compiled_step = make_trainer(microgpt.Value, microgpt.random.Random())
    pure_step = make_trainer(PureValue, stdlib_random.Random())
    compiled_step(0, NAMES[0])      # warm-up
    pure_step(0, NAMES[0])
    compiled, pure = [], []
    for i in range(args.rounds):
        compiled.append(time_steps(compiled_step, args.steps))
        pure.append(time_steps(pure_step, args.steps))
        print(f"round {i + 1}: compiled {compiled[-1] * 1e3:7.2f} ms/step   "
              f"pure Python {pure[-1] * 1e3:7.2f} ms/step   {pure[-1] / compiled[-1]:5.1f}x",
              file=sys.stderr)
    result = {
        "compiled_ms_per_step": statistics.median(compiled) * 1e3,
        "pure_python_ms_per_step": statistics.median(pure) * 1e3,
        "speedup": statistics.median(p / c for p, c in zip(pure, compiled)),
        "rounds": args.rounds,
        "steps_per_round": args.steps,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"microgpt.py training step, median of {args.rounds} rounds: "
              f"compiled {result['compiled_ms_per_step']:.2f} ms, "
              f"pure Python {result['pure_python_ms_per_step']:.2f} ms, "
              f"speed-up {result['speedup']:.1f}x")


if __name__ == "__main__":
    main()
