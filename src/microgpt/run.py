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
from .errors import shortened
from .trained import Model, _model, from_checkpoint, load  # noqa: F401 (microgpt.run's names)

__all__ = ["Run", "Step", "Model", "load", "resume", "from_checkpoint", "checkpoint_text"]

TYPE_CHECKING = False   # True for type checkers only; typing itself costs start-up 6 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from os import PathLike
    from typing import Any, Self

    from .checkpoint import Checkpoint
    from .data import Text
    from .fused import Adam as FusedAdam
    from .recipe import Recipe
    from .train import Adam

    FilePath = str | PathLike[str]


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
        from .checkpoint import Checkpoint
        from .checkpoint import load as load_checkpoint
        from .data import Text, load_text
        ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
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
