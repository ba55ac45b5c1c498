"""
Training and sampling from Python: what microgpt-train and microgpt-sample do,
as objects a script or a notebook can use.

    import microgpt
    run = microgpt.Run("names.txt", recipe="v2")   # read, shuffle, draw the parameters
    for loss in run:                                # one training step each
        if run.step % 100 == 0:
            print(run.step, loss)
            run.save("names.safetensors")           # a checkpoint: carries on exactly
    run.model.sample(5)                             # the first five names microgpt.py prints

    model = microgpt.load("names.safetensors")      # the trained model, from the checkpoint
    model.sample(3, prompt="ma")                    # names beginning with "ma"
    model.loss("emma")                              # its mean next-character loss
    run = microgpt.resume("names.safetensors", "names.txt")   # the rest of the run

A Run is microgpt.py's run: the same documents in the same order, the same
parameters, the same losses and samples, bit for bit, on the fast path or
(exact=True) on microgpt.py's graph of scalar Values. A checkpoint written by
either path carries on on either, with the same results.
"""
from __future__ import annotations


from .data import DataError, Tokenizer
from .errors import quoted, shortened

TYPE_CHECKING = False   # True for type checkers only; typing itself costs start-up 6 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from os import PathLike
    from random import Random as StdlibRandom
    from typing import Any, Self

    import numpy as np
    from numpy.typing import NDArray

    from .checkpoint import Checkpoint
    from .data import Text
    from .fused import Adam as FusedAdam
    from .fused import FusedGPT
    from .model import GPT, Config
    from .random import Random
    from .recipe import Recipe
    from .train import Adam

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


class Step:
    """A training step: its number (from 1), its loss, the learning rate it
    used, the norm of the gradients it followed, and each matrix's (name,
    parameter RMS, gradient RMS) before the update; those three are None
    where the steps were not observed (Run.steps(observe=False))."""
    __slots__ = ("step", "loss", "lr", "grad_norm", "matrix_rms")
    step: int
    loss: float
    lr: float | None
    grad_norm: float | None
    matrix_rms: list[tuple[str, float, float]] | None

    def __init__(self, step: int, loss: float, lr: float | None, grad_norm: float | None,
                 matrix_rms: list[tuple[str, float, float]] | None) -> None:
        self.step, self.loss, self.lr, self.grad_norm = step, loss, lr, grad_norm
        self.matrix_rms = matrix_rms

    def __repr__(self) -> str:
        return (f"Step(step={self.step}, loss={self.loss!r}, lr={self.lr!r}, "
                f"grad_norm={self.grad_norm!r})")


class Run:
    """A training run: microgpt.py's, or any recipe's.

    Run(input, recipe, exact, val_docs, **settings) reads the documents (a
    path, "-" for standard input, a microgpt.data.Text, or None for
    names.txt, which comes with microgpt), shuffles them and draws the parameters, as
    microgpt.py does. recipe is "v1", "v2" or a microgpt.recipe.Recipe;
    settings change some of its values (n_layer=2). val_docs > 0 holds the
    last val_docs of the shuffled documents out of training, for evaluate()
    (and so trains on other documents than microgpt.py). Iterating over the
    run trains it, one step per item, yielding the step's loss, up to
    recipe.num_steps.

    step   steps done;  model   the Model being trained;  docs   the documents in order;
    val_docs   those held out;  text   the microgpt.data.Text they came from
    """

    step: int
    model: Model
    docs: list[str]
    val_docs: list[str]
    text: Text
    recipe: Recipe
    optimizer: Adam | FusedAdam
    _broken: str | None         # why the run cannot go on, if it cannot

    def __init__(self, input: FilePath | Text | None = None, recipe: str | Recipe = "v1",
                 exact: bool = False, val_docs: int = 0, **settings: object) -> None:
        from .data import Text, load_text, names_path
        text = input if isinstance(input, Text) else \
            load_text(names_path() if input is None else input)
        self._start(text, _recipe(recipe, settings), exact, val_docs, draw=True)

    def _start(self, text: Text, recipe: Recipe, exact: bool, val_docs: int,
               draw: bool) -> None:
        """microgpt.py's start: the documents shuffled, the tokenizer, and the
        parameters drawn (if draw; a resumed run loads them) with the same
        generator, then Adam."""
        from . import random
        rng = random.Random(recipe.seed)
        docs = list(text.docs)
        rng.shuffle(docs)
        tokenizer = Tokenizer([text.characters])     # Tokenizer(docs), the set worked out once
        if not (isinstance(val_docs, int) and 0 <= val_docs < len(docs)):
            raise ValueError(f"val_docs must be at least 0 and leave documents to train on "
                             f"(there are {len(docs)}), not {val_docs!r}")
        cut = len(docs) - val_docs
        self.docs, self.val_docs = docs[:cut], docs[cut:]
        self.recipe, self.step, self.text = recipe, 0, text
        self.model = _model(tokenizer, recipe, exact, rng, draw)
        training = recipe.training()
        self.optimizer = self.model.gpt.optimizer(
            training["learning_rate"], training["beta1"], training["beta2"],
            training["eps_adam"])
        self._broken, self._training = None, False

    @property
    def num_steps(self) -> int:
        return self.recipe.num_steps

    def __iter__(self) -> Iterator[float]:
        """Train, one step per item, yielding the step's loss."""
        for step in self.steps(observe=False):
            yield step.loss

    def steps(self, observe: bool = True) -> Iterator[Step]:
        """Train as iterating does, yielding a Step per step: its loss, and
        with observe the learning rate it used, the gradients' norm and each
        matrix's RMS before the update (without, those are None: less work).

        One iterator trains a run at a time: while one is part-way through
        (started, not finished or closed), another raises RuntimeError, for
        both would train on the run's next documents."""
        from .errors import TrainingError, why
        from .train import train
        if self._broken is not None:
            raise RuntimeError(self._broken)
        if self._training:
            raise RuntimeError("another iterator is training this run (it has not finished "
                               "or been closed); a run trains through one iterator at a time")
        seen: dict[str, Any] = dict.fromkeys(("lr", "grad_norm", "matrix_rms"))

        def look(step: int, lr_t: float) -> None:
            seen["lr"], seen["grad_norm"] = lr_t, self.model.grad_norm()
            seen["matrix_rms"] = self.model.matrix_rms()
        model = self.model
        losses = train(model.gpt, self.docs, model.tokenizer, self.recipe.num_steps,
                       start=self.step, optimizer=self.optimizer,
                       observe=look if observe else None, **self.recipe.training())
        self._training = True
        try:
            while True:
                self._broken = (f"the run stopped in the middle of step {self.step + 1}; "
                                "its last checkpoint is the state to carry on from")
                try:
                    loss = next(losses)
                except StopIteration:
                    self._broken = None
                    return
                except (ArithmeticError, ValueError) as exc:    # as microgpt.py would raise them
                    raise TrainingError(f"training failed at step {self.step + 1}: {why(exc)} "
                                        "(the numbers blew up; a smaller --lr may help)") \
                        from None
                self.step += 1
                self._broken = None
                yield Step(self.step, loss, seen["lr"], seen["grad_norm"], seen["matrix_rms"])
        finally:
            self._training = False

    def evaluate(self) -> float | None:
        """The mean of the held-out documents' losses (each as Model.loss
        gives it, added up in order); None without held-out documents."""
        if not self.val_docs:
            return None
        total = 0.0
        for doc in self.val_docs:
            total = total + self.model.loss(doc)
        return total / len(self.val_docs)

    def checkpoint(self) -> Checkpoint:
        """The run's state now, as a microgpt.checkpoint.Checkpoint."""
        from .checkpoint import Checkpoint
        if self._broken is not None:
            raise RuntimeError(self._broken)
        model = self.model
        return Checkpoint(self.recipe, model.vocabulary, model.gpt.values(),
                          self.optimizer.m, self.optimizer.v, model.random.getstate(),
                          self.step, self.text.name, self.text.sha256,
                          val_docs=len(self.val_docs))

    def save(self, path: FilePath) -> None:
        """Write the run's state to path (a safetensors file), atomically."""
        from .checkpoint import save
        save(path, self.checkpoint())

    @classmethod
    def resume(cls, checkpoint: FilePath | Checkpoint, input: FilePath | Text | None = None,
               exact: bool = False) -> Self:
        """The run saved in checkpoint (a path or a Checkpoint), ready to carry
        on, on the text it was trained on (input as for Run; its SHA-256
        must be the checkpoint's)."""
        from .checkpoint import Checkpoint, load
        from .data import Text, load_text
        ck = checkpoint if isinstance(checkpoint, Checkpoint) else load(checkpoint)
        where = ck.path or "the checkpoint"
        if input is None:
            text = checkpoint_text(ck)
        else:
            text = input if isinstance(input, Text) else load_text(input)
        if text.sha256 != ck.text_sha256:
            raise DataError(f"{where} was trained on {shortened(ck.text_name)} (SHA-256 "
                            f"{ck.text_sha256[:16]}...), not on {text.name} (SHA-256 "
                            f"{text.sha256[:16]}...); give that text with --input")
        if ck.val_docs >= len(text.docs):
            raise DataError(f"{where}: it holds out {ck.val_docs} documents, and "
                            f"{text.name} has only {len(text.docs)}")
        if text.characters != ck.vocabulary:
            raise DataError(f"{where}: its vocabulary is not that of {text.name}")
        run = cls.__new__(cls)
        run._start(text, ck.recipe, exact, ck.val_docs, draw=False)
        run._restore(ck)
        return run

    def _restore(self, ck: Checkpoint) -> None:
        self.model._restore(ck)
        for ours, theirs in ((self.optimizer.m, ck.adam_m), (self.optimizer.v, ck.adam_v)):
            ours[:] = theirs.tolist() if isinstance(ours, list) else theirs
        self.step = ck.step


def checkpoint_text(ck: Checkpoint) -> Text:
    """The text a Checkpoint was trained on, found by its name and checked
    by its SHA-256: names.txt, or the file it names, from the working
    directory or else from the checkpoint's own; DataError if neither is it."""
    import os
    from .data import NAMES_SHA256, load_text, names_path
    from .files import path_of
    if ck.text_sha256 == NAMES_SHA256:
        return load_text(names_path())
    where = ck.path or "the checkpoint"
    path = path_of(ck.text_name)
    candidates = [path]
    if ck.path is not None and not os.path.isabs(path):
        candidates.append(os.path.join(os.path.dirname(ck.path), path))
    for candidate in candidates if ck.text_name != "<stdin>" else ():
        if os.path.isfile(candidate):
            text = load_text(candidate)
            if text.sha256 == ck.text_sha256:
                return text
    raise DataError(f"{where} was trained on {shortened(ck.text_name)} (SHA-256 "
                    f"{ck.text_sha256[:16]}...), "
                    "which is not there as it was; give that text with --input")


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


def resume(path: FilePath | Checkpoint, input: FilePath | Text | None = None,
           exact: bool = False) -> Run:
    """Run.resume(path, input, exact): the run of a checkpoint, to carry on."""
    return Run.resume(path, input, exact)


def _recipe(recipe: str | Recipe, settings: dict[str, object]) -> Recipe:
    from .recipe import RECIPES, Recipe
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; the recipes are {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    elif not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a name or a Recipe, not {type(recipe).__name__}")
    return recipe.replace(**settings)


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
