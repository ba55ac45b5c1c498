"""
From microgpt to PyTorch: the same model, built from a checkpoint.

    python examples/to_pytorch.py m.safetensors [TEXT]

Reads the checkpoint (safetensors loads in PyTorch directly), builds
microgpt.py's GPT as an ordinary batched PyTorch module in float64, and
checks that its logits for TEXT (default: "emma") equal microgpt's within
1e-12. From there the model is PyTorch's: train it on a GPU, export it, ...

microgpt does not need PyTorch; this script does (pip install torch).
"""
import json
import sys

try:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError as exc:
    sys.exit(f"to_pytorch.py: needs PyTorch, which cannot be imported ({exc}): pip install torch")

import microgpt
from microgpt.errors import InputError


class GPT(torch.nn.Module):
    """microgpt.py's GPT, a whole sequence at a time (causal attention)."""

    def __init__(self, state_dict, n_head, n_layer, activation):
        super().__init__()
        self.n_head, self.n_layer, self.activation = n_head, n_layer, activation
        self.weights = torch.nn.ParameterDict(
            {name.replace(".", "_"): torch.nn.Parameter(w) for name, w in state_dict.items()})

    def w(self, name):
        return self.weights[name.replace(".", "_")]

    @staticmethod
    def rmsnorm(x):
        return x * (x.pow(2).mean(-1, keepdim=True) + 1e-5) ** -0.5

    def forward(self, tokens):
        T = tokens.shape[0]
        x = self.rmsnorm(self.w("wte")[tokens] + self.w("wpe")[:T])
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        for i in range(self.n_layer):
            residual = x
            x = self.rmsnorm(x)
            q, k, v = (x @ self.w(f"layer{i}.attn_{m}").T for m in ("wq", "wk", "wv"))
            q, k, v = (t.view(T, self.n_head, -1).transpose(0, 1) for t in (q, k, v))
            logits = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
            weights = logits.masked_fill(~causal, float("-inf")).softmax(-1)
            x = (weights @ v).transpose(0, 1).reshape(T, -1)
            x = x @ self.w(f"layer{i}.attn_wo").T + residual
            residual = x
            x = torch.relu(self.rmsnorm(x) @ self.w(f"layer{i}.mlp_fc1").T)
            if self.activation == "relu2":
                x = x ** 2
            x = x @ self.w(f"layer{i}.mlp_fc2").T + residual
        return x @ self.w("lm_head").T


def from_checkpoint(path):
    """The PyTorch GPT of a microgpt checkpoint, and its vocabulary."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    state_dict = {name: t for name, t in tensors.items()
                  if not name.startswith(("adam.", "random."))}
    model = GPT(state_dict, json.loads(meta["n_head"]), json.loads(meta["n_layer"]),
                json.loads(meta["activation"]))
    return model, meta["vocabulary"]


def main(path, text="emma"):
    try:                            # microgpt checks the checkpoint and the text first
        ours = microgpt.load(path)
        expected = torch.tensor(ours.logits(text), dtype=torch.float64)
    except (InputError, ValueError) as exc:
        sys.exit(f"to_pytorch.py: error: {exc}")
    model, vocabulary = from_checkpoint(path)
    bos = len(vocabulary)
    tokens = torch.tensor([bos] + [vocabulary.index(c) for c in text])
    tokens = tokens[:ours.config.block_size]
    with torch.no_grad():
        theirs = model(tokens)
    difference = (theirs - expected).abs().max().item()
    print(f"logits of {text!r}: {tuple(theirs.shape)}, largest difference from microgpt "
          f"{difference:.3g}")
    if not difference <= 1e-12:
        sys.exit("the PyTorch model does not compute microgpt's logits")
    return difference


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
