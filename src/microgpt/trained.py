"""
A trained model: what samples and scores text (microgpt.Model), from a run or
from a checkpoint (microgpt.load).

    model = microgpt.load("names.safetensors")      # the trained model, from the checkpoint
    model.sample(3, prompt="ma")                    # names beginning with "ma"
    model.loss("emma")                              # its mean next-character loss

On the fast path or (exact=True) on microgpt.py's graph of scalar Values:
the same numbers either way.
"""
from __future__ import annotations

from .data import Tokenizer
from .errors import quoted

TYPE_CHECKING = False   # True for type checkers only; typing itself costs start-up 6 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from os import PathLike
    from random import Random as StdlibRandom

    import numpy as np
    from numpy.typing import NDArray

    from .checkpoint import Checkpoint
    from .fused import FusedGPT
    from .model import GPT, Config
    from .random import Random
    from .recipe import Recipe

    FilePath = str | PathLike[str]


class Model:
    """A GPT with its vocabulary and its random generator: the part of a run
    that samples and scores text.

    config       microgpt.model.Config: the hyperparameters
    recipe       microgpt.recipe.Recipe: the settings it was trained with
    vocabulary   the characters it knows, in token order
    random       the generator sample() continues (microgpt.random.Random)
    """

    gpt: GPT | FusedGPT
    tokenizer: Tokenizer
    recipe: Recipe
    random: Random
    config: Config
    vocabulary: str

    def __init__(self, gpt: GPT | FusedGPT, tokenizer: Tokenizer, recipe: Recipe,
                 random: Random) -> None:
        self.gpt, self.tokenizer, self.recipe, self.random = gpt, tokenizer, recipe, random
        self.config = gpt.config
        self.vocabulary = "".join(tokenizer.uchars)

    @property
    def num_params(self) -> int:
        return len(self.gpt.params)

    @property
    def exact(self) -> bool:
        """True on microgpt.py's scalar graph, False on the fused operations."""
        return self.gpt.exact

    @property
    def state_dict(self) -> dict[str, NDArray[np.float64]]:
        """The parameter matrices by microgpt.py's names, as new float64 numpy
        arrays [nout, nin] (copies: changing them changes nothing here)."""
        import numpy as np
        from .checkpoint import shapes
        flat = np.array(self.gpt.values(), dtype=np.float64)
        result, offset = {}, 0
        for name, (nout, nin) in shapes(self.config).items():
            result[name] = flat[offset:offset + nout * nin].reshape(nout, nin)
            offset += nout * nin
        return result

    def generate(self, prompt: str = "", temperature: float | None = None,
                 random: StdlibRandom | None = None) -> str:
        """One new document, beginning with prompt, drawn with random (by
        default this model's generator, which it advances). SamplingError (an
        ArithmeticError) if the numbers break down."""
        return self._generate(prompt, temperature, random, None)

    def samples(self, num_samples: int | None = None, temperature: float | None = None,
                prompt: str = "", seed: int | float | str | bytes | bytearray | None = None
                ) -> Iterator[str]:
        """The documents sample() gives, one at a time, as they are drawn."""
        random = None
        if seed is not None:
            from . import random as microgpt_random
            random = microgpt_random.Random(seed)
        count = self.recipe.num_samples if num_samples is None else num_samples
        for number in range(1, count + 1):
            yield self._generate(prompt, temperature, random, number)

    def sample(self, num_samples: int | None = None, temperature: float | None = None,
               prompt: str = "", seed: int | float | str | bytes | bytearray | None = None
               ) -> list[str]:
        """num_samples new documents (the recipe's number by default), as
        microgpt.py's inference loop draws them. Without a seed they continue
        this model's generator: after a run, the samples the run printed.
        With one, a new generator seeded with it is used (this one stays)."""
        return list(self.samples(num_samples, temperature, prompt, seed))

    def _generate(self, prompt: str, temperature: float | None,
                  random: StdlibRandom | None, number: int | None) -> str:
        from .errors import SamplingError
        from .train import sample
        ids = self.encode_prompt(prompt)
        t = self.recipe.temperature if temperature is None else temperature
        try:
            return sample(self.gpt, self.tokenizer, self.random if random is None else random,
                          t, ids)
        except (ArithmeticError, ValueError) as exc:
            raise SamplingError(_sampling_failure(exc, self.gpt, t, number)) from None

    def loss(self, text: str) -> float:
        """The mean loss of predicting each next character of the document
        text (from BOS, to BOS), over its first block_size positions: the loss
        training reports for it."""
        tokens = self._encode(text, "the text")
        return float(self.gpt.loss(tokens).data)

    def logits(self, text: str) -> list[list[float]]:
        """The logits of the token after each of BOS and the characters of
        text (the first block_size of them): one row of vocab_size floats per
        position, the last for the token after text (BOS: the end)."""
        tokens = self._encode(text, "the text")[:-1][:self.config.block_size]
        return self.gpt.logits(tokens)

    def encode_prompt(self, prompt: str) -> list[int]:
        """The token ids of a prompt; ValueError for one the model cannot take."""
        ids = self._encode(prompt, "the prompt")[1:-1]
        if len(ids) >= self.config.block_size:
            raise ValueError(f"the prompt is {len(ids)} characters; this model's context "
                             f"holds at most {self.config.block_size - 1} before the first "
                             "it draws")
        return ids

    def _encode(self, text: str, what: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a str, not {type(text).__name__}")
        unknown = sorted(set(text) - set(self.vocabulary))
        if unknown:
            raise ValueError(f"{what} has {_characters(unknown)} not in the vocabulary "
                             f"({quoted(self.vocabulary)})")
        return self.tokenizer.encode(text)

    def grad_norm(self) -> float:
        """The Euclidean norm of the parameters' gradients: sqrt of g * g
        added up in parameter order (the same float on either path)."""
        return self.gpt.grad_norm()

    def matrix_rms(self) -> list[tuple[str, float, float]]:
        """For each matrix of state_dict, in order: (name, the root mean
        square of its parameters, that of its gradients)."""
        return self.gpt.matrix_rms()

    def _restore(self, ck: Checkpoint) -> None:
        """Take the parameters and the generator's state of a Checkpoint."""
        self.gpt.load(ck.params)
        self.random.setstate(ck.random_state)

    def __repr__(self) -> str:
        return (f"<microgpt.Model {self.num_params} parameters, vocabulary "
                f"{self.vocabulary!r}, {'exact' if self.exact else 'fused'}>")


def load(path: FilePath, exact: bool = False) -> Model:
    """The trained Model in a checkpoint file, with its generator where the
    run left it: on the fused operations, or with exact=True on microgpt.py's
    scalar graph (the same numbers)."""
    from .checkpoint import load as load_checkpoint
    return from_checkpoint(load_checkpoint(path), exact)


def from_checkpoint(ck: Checkpoint, exact: bool = False) -> Model:
    """The trained Model of a microgpt.checkpoint.Checkpoint, as load gives it."""
    from . import random
    model = _model(Tokenizer([ck.vocabulary]), ck.recipe, exact, random.Random(), draw=False)
    model._restore(ck)
    return model


def _model(tokenizer: Tokenizer, recipe: Recipe, exact: bool, rng: Random, draw: bool) -> Model:
    """A Model of the recipe on the fast path (exact: the scalar one, as
    always under MICROGPT_PUREPYTHON=1), its parameters drawn with rng, or
    0.0 if not draw."""
    from . import BACKEND
    config = recipe.config(tokenizer.vocab_size)
    gpt: GPT | FusedGPT
    if exact or BACKEND != "compiled":
        from .model import GPT
        gpt = GPT(config, rng if draw else None)
    else:
        from .fused import FusedGPT
        try:
            gpt = FusedGPT(config, rng if draw else None)
        except OverflowError:       # a size beyond a C integer
            raise MemoryError from None
    return Model(gpt, tokenizer, recipe, rng)


def _sampling_failure(exc, gpt, temperature, number):
    """Why sample `number` (None: a sample) failed: the trained parameters,
    or the temperature."""
    import math
    from .errors import why
    if not all(math.isfinite(p if isinstance(p, float) else p.data) for p in gpt.params):
        return ("sampling failed: the trained parameters are not all finite numbers "
                "(training diverged; a smaller --lr may help)")
    if temperature < 1:
        hint = (f"the logits divided by --temperature {temperature:g} overflowed; "
                "a larger --temperature may help")
    else:
        hint = "the trained model's numbers are too large; a smaller --lr may help"
    where = "" if number is None else f" at sample {number}"
    return f"sampling failed{where}: {why(exc)} ({hint})"


def _characters(chars: list[str]) -> str:
    shown = ", ".join(repr(c) for c in chars[:5]) + (", ..." if len(chars) > 5 else "")
    return f"character{'s' * (len(chars) > 1)} {shown}"
