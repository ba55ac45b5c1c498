"""
The two published revisions of microgpt.py, as recipes.

A recipe is everything microgpt-train takes from a revision of microgpt.py:
the model's size and initialisation, its activation, the optimizer and its
schedule, the seed and the sampling, and how the output looks. ``V1`` is
microgpt.py as first published, ``V2`` its final revision; each run with
its own settings prints what that revision prints, byte for byte.

Build on one with ``replace``, as microgpt-train does with its flags::

    from microgpt.recipe import RECIPES
    wider = RECIPES["v2"].replace(n_embd=32, n_layer=2)
"""
import math

ACTIVATIONS = ("relu2", "relu")        # xi.relu() ** 2, xi.relu()
SCHEDULES = ("cosine", "linear")       # of the learning rate, down to 0


class Recipe:
    """A revision of microgpt.py's hyperparameters and output format."""

    FIELDS = (
        # the model (microgpt.model.Config)
        "n_embd", "n_head", "n_layer", "block_size",
        "init_std",             # std of random.gauss for every parameter matrix ...
        "zero_init_proj",       # ... but attn_wo and mlp_fc2 at std 0 when true
        "activation",           # of the MLP: one of ACTIVATIONS
        # training (microgpt.train.train)
        "num_steps", "learning_rate", "beta1", "beta2", "eps_adam",
        "lr_schedule",          # one of SCHEDULES
        "batch_size",           # documents a step: 1 is microgpt.py's, more their mean loss
        # the run
        "seed", "num_samples", "temperature",
        "step_end",             # what ends each "step ... | loss ..." line
        "inference_header",     # the line before the samples
    )
    __slots__ = ("name", "summary") + FIELDS
    name: str
    summary: str
    n_embd: int
    n_head: int
    n_layer: int
    block_size: int
    init_std: float
    zero_init_proj: bool
    activation: str
    num_steps: int
    learning_rate: float
    beta1: float
    beta2: float
    eps_adam: float
    lr_schedule: str
    batch_size: int
    seed: int
    num_samples: int
    temperature: float
    step_end: str
    inference_header: str

    def __init__(self, name, summary, **settings):
        missing = [field for field in self.FIELDS if field not in settings]
        unknown = [key for key in settings if key not in self.FIELDS]
        if missing or unknown:
            raise TypeError(f"Recipe {name!r}: missing {missing}, unknown {unknown}")
        self.name, self.summary = name, summary
        for field in self.FIELDS:
            setattr(self, field, settings[field])
        self._check()

    def config(self, vocab_size):
        """The model's hyperparameters, for a vocabulary of vocab_size tokens."""
        from .model import Config
        return Config(vocab_size, self.n_embd, self.n_head, self.n_layer, self.block_size,
                      activation=self.activation, init_std=self.init_std,
                      zero_init_proj=self.zero_init_proj)

    def training(self):
        """microgpt.train.train's keyword arguments: the optimizer and its schedule."""
        return dict(learning_rate=self.learning_rate, beta1=self.beta1, beta2=self.beta2,
                    eps_adam=self.eps_adam, lr_schedule=self.lr_schedule,
                    batch_size=self.batch_size)

    def replace(self, **changes):
        """A copy with some settings changed: the name says it is changed."""
        if not changes:
            return self
        settings = {field: getattr(self, field) for field in self.FIELDS}
        settings.update(changes)
        changed = ", ".join(f"{key}={value!r}" for key, value in changes.items())
        return Recipe(f"{self.name}+", f"{self.summary}; changed: {changed}", **settings)

    def settings(self):
        """Every setting, by name."""
        return {field: getattr(self, field) for field in self.FIELDS}

    def __eq__(self, other):
        if not isinstance(other, Recipe):
            return NotImplemented
        return self.settings() == other.settings()

    __hash__ = None

    def __repr__(self):
        settings = ", ".join(f"{key}={value!r}" for key, value in self.settings().items())
        return f"Recipe({self.name!r}, {settings})"

    def _check(self):
        for field in ("n_embd", "n_head", "n_layer", "block_size", "batch_size"):
            _require(_is_int(getattr(self, field)) and getattr(self, field) > 0, field,
                     "a positive integer")
        _require(self.n_embd % self.n_head == 0, "n_embd", f"divisible by n_head ({self.n_head})")
        _require(_is_int(self.num_steps) and self.num_steps >= 0, "num_steps", "0 or more")
        _require(_is_int(self.num_samples) and self.num_samples >= 0, "num_samples", "0 or more")
        _require(_is_int(self.seed), "seed", "an integer")
        _require(_finite(self.init_std) and self.init_std >= 0, "init_std",
                 "a finite number, 0 or more")
        _require(isinstance(self.zero_init_proj, bool), "zero_init_proj", "True or False")
        _require(self.activation in ACTIVATIONS, "activation", f"one of {ACTIVATIONS}")
        _require(_finite(self.learning_rate) and self.learning_rate > 0, "learning_rate",
                 "a positive finite number")
        for field in ("beta1", "beta2"):
            _require(_finite(getattr(self, field)) and 0 <= getattr(self, field) < 1, field,
                     "at least 0 and less than 1")
        _require(_finite(self.eps_adam) and self.eps_adam > 0, "eps_adam",
                 "a positive finite number")
        _require(self.lr_schedule in SCHEDULES, "lr_schedule", f"one of {SCHEDULES}")
        _require(_finite(self.temperature) and self.temperature > 0, "temperature",
                 "a positive finite number")
        _require(isinstance(self.step_end, str) and isinstance(self.inference_header, str),
                 "step_end", "a string, as inference_header")


def _require(ok, field, what):
    if not ok:
        raise ValueError(f"recipe setting {field} must be {what}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:           # an int beyond any float
        return False


V1 = Recipe(
    "v1", "microgpt.py as first published",
    n_embd=16, n_head=4, n_layer=1, block_size=8,
    init_std=0.02, zero_init_proj=True, activation="relu2",
    num_steps=500, learning_rate=0.01, beta1=0.9, beta2=0.95, eps_adam=1e-8,
    lr_schedule="cosine", batch_size=1,
    seed=42, num_samples=20, temperature=0.5,
    step_end="\n", inference_header="--- inference ---",
)

V2 = Recipe(
    "v2", "microgpt.py's final revision: block 16, init std 0.08 everywhere, relu, "
    "Adam betas 0.85 and 0.99, a linear decay, 1000 steps, step lines ending in \\r",
    n_embd=16, n_head=4, n_layer=1, block_size=16,
    init_std=0.08, zero_init_proj=False, activation="relu",
    num_steps=1000, learning_rate=0.01, beta1=0.85, beta2=0.99, eps_adam=1e-8,
    lr_schedule="linear", batch_size=1,
    seed=42, num_samples=20, temperature=0.5,
    step_end="\r", inference_header="--- inference (new, hallucinated names) ---",
)

RECIPES = {"v1": V1, "v2": V2}
