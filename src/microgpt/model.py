"""
microgpt.py's GPT on scalar Values: its parameters and its forward pass.

Every line is microgpt.py's, with the hyperparameters in a Config instead of
globals; the floats it computes, and so the gradients, are microgpt.py's bit
for bit. ``Value`` defaults to ``microgpt.Value`` (the compiled engine, or the
pure-Python one when ``MICROGPT_PUREPYTHON=1``); any class with microgpt.py's
Value interface works.
"""
import math

from . import Value as _Value
from .train import Adam


class Config:
    """The model's hyperparameters; the defaults are microgpt.py's first
    revision (its final one: microgpt.recipe.V2.config(vocab_size))."""

    def __init__(self, vocab_size: int, n_embd: int = 16, n_head: int = 4, n_layer: int = 1,
                 block_size: int = 8, activation: str = "relu2", init_std: float = 0.02,
                 zero_init_proj: bool = True) -> None:
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, not {activation!r}")
        self.vocab_size = vocab_size    # number of distinct tokens, BOS included
        self.n_embd = n_embd            # width of the residual stream
        self.n_head = n_head            # attention heads per layer
        self.n_layer = n_layer          # transformer blocks
        self.block_size = block_size    # longest context, in tokens
        self.head_dim = n_embd // n_head
        self.activation = activation    # of the MLP: "relu2" (relu ** 2) or "relu"
        self.init_std = init_std        # std of the parameters' random.gauss ...
        self.zero_init_proj = zero_init_proj    # ... but 0 for attn_wo and mlp_fc2 if true

    def stds(self) -> tuple[float, float]:
        """The std of each kind of matrix at initialisation: the projections
        back into the residual stream (attn_wo, mlp_fc2) and the others."""
        return (0 if self.zero_init_proj else self.init_std), self.init_std

    def layout(self) -> list[tuple[str, int, int, float]]:
        """microgpt.py's state_dict, in its order: (name, nout, nin, the std
        of the random.gauss it is drawn with) for each parameter matrix. The
        one description of the model's shape: the models, checkpoints, the
        memory estimate and the report all read it."""
        outer, layer = self._matrices()
        return outer + [(f'layer{i}.{name}', nout, nin, std)
                        for i in range(self.n_layer) for name, nout, nin, std in layer]

    def num_params(self) -> int:
        """How many parameters layout() has (worked out without listing them)."""
        outer, layer = self._matrices()
        return sum(nout * nin for _, nout, nin, _ in outer) + \
            self.n_layer * sum(nout * nin for _, nout, nin, _ in layer)

    def _matrices(self) -> tuple[list[tuple[str, int, int, float]],
                                 list[tuple[str, int, int, float]]]:
        """The matrices outside the layers, and those of each layer."""
        n_embd, vocab_size = self.n_embd, self.vocab_size
        proj_std, std = self.stds()
        outer = [('wte', vocab_size, n_embd, std), ('wpe', self.block_size, n_embd, std),
                 ('lm_head', vocab_size, n_embd, std)]
        layer = [('attn_wq', n_embd, n_embd, std), ('attn_wk', n_embd, n_embd, std),
                 ('attn_wv', n_embd, n_embd, std), ('attn_wo', n_embd, n_embd, proj_std),
                 ('mlp_fc1', 4 * n_embd, n_embd, std), ('mlp_fc2', n_embd, 4 * n_embd, proj_std)]
        return outer, layer

    def __repr__(self) -> str:
        return (f"Config(vocab_size={self.vocab_size}, n_embd={self.n_embd}, "
                f"n_head={self.n_head}, n_layer={self.n_layer}, block_size={self.block_size}, "
                f"activation={self.activation!r}, init_std={self.init_std!r}, "
                f"zero_init_proj={self.zero_init_proj!r})")


# Model architecture, microgpt.py's three helpers -------------------------------

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


# The MLP's activation, by revision: the first squares the relu, the final does not.
ACTIVATIONS = {
    "relu2": lambda x: [xi.relu() ** 2 for xi in x],
    "relu": lambda x: [xi.relu() for xi in x],
}


class GPT:
    """microgpt.py's model: ``state_dict`` with its parameter matrices, ``params``
    with every parameter in its order, and ``gpt()``, the forward pass of one
    token with a KV cache. microgpt.fused.FusedGPT has the same methods."""

    exact = True        # microgpt.py's graph of scalar Values

    def __init__(self, config, random, Value=_Value):
        """Draw the parameters with random.gauss, in microgpt.py's order
        (random None: all 0.0, to be loaded)."""
        self.config = config
        draw = (lambda std: 0.0) if random is None else (lambda std: random.gauss(0, std))
        matrix = lambda nout, nin, std: [[Value(draw(std)) for _ in range(nin)] for _ in range(nout)]
        # wte, wpe, lm_head, then each layer's attn_wq ... mlp_fc2: Config.layout()
        state_dict = {name: matrix(nout, nin, std) for name, nout, nin, std in config.layout()}
        self.state_dict = state_dict
        self.params = [p for mat in state_dict.values() for row in mat for p in row]

    def empty_cache(self):
        """Empty keys and values for gpt(), one list per layer."""
        n_layer = self.config.n_layer
        return [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]

    def gpt(self, token_id, pos_id, keys, values):
        """The logits of the token after token_id at position pos_id; appends
        this position's keys and values to the cache."""
        state_dict = self.state_dict
        n_layer, n_head, head_dim = self.config.n_layer, self.config.n_head, self.config.head_dim
        activation = ACTIVATIONS[self.config.activation]
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
            x = activation(x)
            x = linear(x, state_dict[f'layer{li}.mlp_fc2'])
            x = [a + b for a, b in zip(x, x_residual)]
        logits = linear(x, state_dict['lm_head'])
        return logits

    def loss(self, tokens):
        """The mean loss of predicting each next token of a tokenized document,
        over its first block_size positions, as microgpt.py's training loop."""
        n = min(self.config.block_size, len(tokens) - 1)
        keys, values = self.empty_cache()
        losses = []
        for pos_id in range(n):
            token_id, target_id = tokens[pos_id], tokens[pos_id + 1]
            logits = self.gpt(token_id, pos_id, keys, values)
            probs = softmax(logits)
            loss_t = -probs[target_id].log()
            losses.append(loss_t)
        loss = (1 / n) * sum(losses)
        return loss

    def batch_loss(self, batch):
        """The mean of the loss() of each tokenized document of batch: the
        loss of a training step on several documents."""
        doc_losses = [self.loss(tokens) for tokens in batch]
        loss = (1 / len(batch)) * sum(doc_losses)
        return loss

    def optimizer(self, learning_rate, beta1=0.9, beta2=0.95, eps_adam=1e-8):
        """microgpt.py's Adam over the parameters."""
        return Adam(self.params, learning_rate, beta1, beta2, eps_adam)

    def next_token_weights(self, token_id, pos_id, keys, values, temperature):
        """The sampling weights of the next token: the softmax of the logits
        divided by the temperature, as floats."""
        logits = self.gpt(token_id, pos_id, keys, values)
        probs = softmax([l / temperature for l in logits])
        return [p.data for p in probs]

    def logits(self, tokens):
        """The logits after each of tokens (at most block_size), as rows of floats."""
        keys, values = self.empty_cache()
        return [[l.data for l in self.gpt(token_id, pos_id, keys, values)]
                for pos_id, token_id in enumerate(tokens)]

    def values(self):
        """Every parameter's value, in order, as a list of floats."""
        return [p.data for p in self.params]

    def load(self, values):
        """Set every parameter's value, in order, from a sequence of floats."""
        for p, x in zip(self.params, values):
            p.data = x

    def grad_norm(self):
        """The Euclidean norm of the gradients: sqrt of g * g added up in
        parameter order (the same float as FusedGPT's)."""
        total = 0.0
        for p in self.params:
            total = total + p.grad * p.grad
        return math.sqrt(total)

    def matrix_rms(self):
        """For each matrix of state_dict, in order: (name, the root mean
        square of its parameters, that of its gradients)."""
        result = []
        for name, matrix in self.state_dict.items():
            values = [p for row in matrix for p in row]
            data_total = grad_total = 0.0
            for p in values:
                data_total = data_total + p.data * p.data
                grad_total = grad_total + p.grad * p.grad
            result.append((name, math.sqrt(data_total / len(values)),
                           math.sqrt(grad_total / len(values))))
        return result
