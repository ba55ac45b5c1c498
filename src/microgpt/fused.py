"""
microgpt.py's GPT on fused operations: the fast path.

The model of ``microgpt.model`` -- the same parameters, drawn in the same
order, and the same forward pass -- written with operations that each take
all the positions of a document at once (``microgpt._fused``): one graph node
per operation instead of one per number. It computes the same doubles as
microgpt.py's scalar graph: the forward pass does the same float operations
in the same order; the backward pass computes the same local gradients and
adds them up in the order microgpt.py's backward() does; Adam's ``** 2`` and
``** 0.5`` are pow()'s results. So training prints, and ends with, exactly
what microgpt.py does (tested against its recorded run).

The operations work from any model code: ``embedding``, ``add``, ``linear``,
``rmsnorm``, ``relu``, ``relu_squared``, ``softmax``, ``attention`` and
``cross_entropy`` take and return ``Tensor`` objects, and ``backward()`` on a
one-number tensor fills in the gradients. (The gradient order is
microgpt.py's for models built as here; for others the gradients are right,
possibly differing from a scalar graph's in their last bits.)
"""
from __future__ import annotations

from ._backend import compiled

compiled("_fused")      # first, for the ImportError that says what to do when it is missing
from ._fused import (KEPT_AT_LEAST, Adam, Parameters, Tensor, add, attention,  # noqa: E402
                     cross_entropy, embedding, kernel_isa, linear, release_kept_memory, relu,
                     relu_squared, rmsnorm, set_threads, softmax, threads)

TYPE_CHECKING = False   # True for type checkers only; typing itself costs start-up 6 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from random import Random

    from .model import Config

    Cache = list[list[Tensor]]      # per layer, the keys (or values) of each gpt() call

__all__ = ["FusedGPT", "Tensor", "Parameters", "Adam", "embedding", "add", "linear",
           "rmsnorm", "relu", "relu_squared", "softmax", "attention", "cross_entropy",
           "kernel_isa", "KEPT_AT_LEAST", "release_kept_memory", "set_threads", "threads"]

# The MLP's activation, by revision, as model.ACTIVATIONS.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu2": relu_squared, "relu": relu}


class FusedGPT:
    """microgpt.py's model on fused operations: ``state_dict`` with Tensor
    views of its parameter matrices (``layers`` has each layer's, by their
    names after ``layer{li}.``), ``params`` with every parameter in its order
    (a memoryview of the one contiguous array), and ``gpt()``: the methods
    of microgpt.model.GPT, on the fused operations."""

    exact = False       # the fused operations (the same floats)

    def __init__(self, config: Config, random: Random | None) -> None:
        """Draw the parameters with random.gauss, in microgpt.py's order
        (random None: all 0.0, to be loaded)."""
        self.config = config
        matrices = config.layout()
        self.parameters = Parameters({name: (nout, nin) for name, nout, nin, _ in matrices})
        self.state_dict = self.parameters.state_dict
        self.params = self.parameters.data
        # each layer's matrices by their names after f'layer{li}.': gpt() takes
        # them there, without making and hashing the names anew on every call
        self.layers = [{name.removeprefix(f'layer{li}.'): matrix
                        for name, matrix in self.state_dict.items() if name.startswith(f'layer{li}.')}
                       for li in range(config.n_layer)]
        if random is not None:
            offset = 0
            for _, nout, nin, std in matrices:
                _gauss(random, self.params[offset:offset + nout * nin], std)
                offset += nout * nin

    def empty_cache(self) -> tuple[Cache, Cache]:
        """Empty keys and values for gpt(), one list per layer."""
        n_layer = self.config.n_layer
        return [[] for _ in range(n_layer)], [[] for _ in range(n_layer)]

    def gpt(self, token_ids: Sequence[int], pos_ids: Sequence[int], keys: Cache,
            values: Cache, lengths: Sequence[int] | None = None) -> Tensor:
        """The logits after each token of token_ids, at positions pos_ids,
        the positions that follow those already in the cache (one row each);
        appends their keys and values to the cache. With lengths, the tokens
        are documents of these lengths one after the other (a batch, on an
        empty cache), each attending to its own positions only."""
        state_dict, n_layer, n_head = self.state_dict, self.config.n_layer, self.config.n_head
        activation = ACTIVATIONS[self.config.activation]
        tok_emb = embedding(state_dict['wte'], token_ids)
        pos_emb = embedding(state_dict['wpe'], pos_ids)
        x = add(tok_emb, pos_emb)
        x = rmsnorm(x)
        for li in range(n_layer):
            layer = self.layers[li]         # layer['attn_wq'] is state_dict[f'layer{li}.attn_wq']
            x_residual = x
            x = rmsnorm(x)
            q = linear(x, layer['attn_wq'])
            k = linear(x, layer['attn_wk'])
            v = linear(x, layer['attn_wv'])
            keys[li].append(k)
            values[li].append(v)
            x_attn = attention(q, keys[li], values[li], n_head, lengths)
            x = linear(x_attn, layer['attn_wo'])
            x = add(x, x_residual)
            x_residual = x
            x = rmsnorm(x)
            x = linear(x, layer['mlp_fc1'])
            x = activation(x)
            x = linear(x, layer['mlp_fc2'])
            x = add(x, x_residual)
        logits = linear(x, state_dict['lm_head'])
        return logits

    def loss(self, tokens: Sequence[int]) -> Tensor:
        """The mean loss of predicting each next token of a tokenized document,
        over its first block_size positions, all at once."""
        n = min(self.config.block_size, len(tokens) - 1)
        keys, values = self.empty_cache()
        logits = self.gpt(tokens[:n], range(n), keys, values)
        return cross_entropy(logits, tokens[1:n + 1])

    def batch_loss(self, batch: Sequence[Sequence[int]]) -> Tensor:
        """The mean of the documents' losses (each as loss() has it), all
        the documents' positions at once: microgpt.model.GPT.batch_loss."""
        block_size = self.config.block_size
        token_ids: list[int] = []
        pos_ids: list[int] = []
        targets: list[int] = []
        lengths: list[int] = []
        for tokens in batch:
            n = min(block_size, len(tokens) - 1)
            token_ids += tokens[:n]
            pos_ids += range(n)
            targets += tokens[1:n + 1]
            lengths.append(n)
        keys, values = self.empty_cache()
        logits = self.gpt(token_ids, pos_ids, keys, values, lengths)
        return cross_entropy(logits, targets, lengths)

    def next_token_weights(self, token_id: int, pos_id: int, keys: Cache, values: Cache,
                           temperature: float) -> list[float]:
        """The sampling weights of the next token: the softmax of the logits
        divided by the temperature, as floats."""
        logits = self.gpt([token_id], [pos_id], keys, values)
        return softmax(logits, temperature).tolist()[0]

    def optimizer(self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.95,
                  eps_adam: float = 1e-8) -> Adam:
        """microgpt.py's Adam over the parameters, as one compiled loop."""
        return Adam(self.parameters, learning_rate, beta1, beta2, eps_adam)

    def logits(self, tokens: Sequence[int]) -> list[list[float]]:
        """The logits after each of tokens (at most block_size), as rows of floats."""
        keys, values = self.empty_cache()
        return self.gpt(tokens, range(len(tokens)), keys, values).tolist()

    def values(self) -> memoryview[float]:
        """Every parameter's value, in order (a view of them)."""
        return self.params

    def load(self, values: Sequence[float]) -> None:
        """Set every parameter's value, in order, from a sequence of floats."""
        self.params[:] = values

    def grad_norm(self) -> float:
        """The Euclidean norm of the gradients, as microgpt.model.GPT's."""
        return self.parameters.grad_norm()

    def matrix_rms(self) -> list[tuple[str, float, float]]:
        """For each matrix: (name, its parameters' RMS, its gradients')."""
        return self.parameters.matrix_rms()


def _gauss(random: Random, out: memoryview[float], std: float) -> None:
    """out[i] = random.gauss(0, std) for each i, in order: in one call to
    microgpt's generator, one call per number for any other."""
    if hasattr(random, "gauss_into"):
        random.gauss_into(out, 0, std)
    else:
        for i in range(len(out)):
            out[i] = random.gauss(0, std)
