"""A script written the microgpt.py way, run twice: once with the pure-Python
reference Value and the standard library's random, once with
``from microgpt import Value, random``. Every loss, every parameter and every
sample must be the same, floats compared by their bits."""
import math
import random as stdlib_random

import pytest

import microgpt
from microgpt.engine import Value as ReferenceValue

DOCS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia",
        "harper", "evelyn", "abigail", "emily", "ella", "elizabeth", "camila", "luna"]


def microgpt_script(Value, random, n_embd=8, n_head=2, n_layer=1, block_size=6, num_steps=4):
    """microgpt.py, small: the same lines, with Value and random passed in."""
    random.seed(42)
    docs = list(DOCS)
    random.shuffle(docs)
    uchars = sorted(set(''.join(docs)))
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
    trace = []
    for step in range(num_steps):
        doc = docs[step % len(docs)]
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
        trace.append(("loss", loss.data))
        trace.extend(("grad", p.grad) for p in params)
        lr_t = learning_rate * 0.5 * (1 + math.cos(math.pi * step / num_steps))
        for i, p in enumerate(params):
            m[i] = beta1 * m[i] + (1 - beta1) * p.grad
            v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2
            m_hat = m[i] / (1 - beta1 ** (step + 1))
            v_hat = v[i] / (1 - beta2 ** (step + 1))
            p.data -= lr_t * m_hat / (v_hat ** 0.5 + eps_adam)
            p.grad = 0
    trace.extend(("param", p.data) for p in params)
    temperature = 0.5
    for sample_idx in range(5):
        keys, values = [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]
        token_id = BOS
        sample = []
        for pos_id in range(block_size):
            logits = gpt(token_id, pos_id, keys, values)
            probs = softmax([l / temperature for l in logits])
            token_id = random.choices(range(vocab_size), weights=[p.data for p in probs])[0]
            if token_id == BOS:
                break
            sample.append(uchars[token_id])
        trace.append(("sample", ''.join(sample)))
    # microgpt.py's `p.grad = 0` leaves an int where no gradient arrived
    return [(kind, x if kind == "sample" else float(x).hex()) for kind, x in trace]


@pytest.mark.parametrize("config", [
    {},
    {"n_embd": 12, "n_head": 3, "block_size": 8, "num_steps": 6},
    {"n_embd": 4, "n_head": 1, "n_layer": 2, "block_size": 3, "num_steps": 3},
], ids=["small", "wider", "two-layers"])
def test_dropin_prints_the_same(config):
    reference = microgpt_script(ReferenceValue, stdlib_random.Random(), **config)
    ours = microgpt_script(microgpt.Value, microgpt.random, **config)
    assert len(reference) == len(ours)
    for i, (expected, got) in enumerate(zip(reference, ours)):
        assert got == expected, f"entry {i}: {got} != {expected}"
