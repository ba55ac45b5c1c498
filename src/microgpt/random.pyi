# The types of microgpt.random, for type checkers: the standard library's
# random module (typeshed's types), with Random's bulk draws. A stub, as the
# module binds its functions to a hidden instance's methods at import time.
import random as _stdlib
import sys
from random import SystemRandom as SystemRandom
from typing import SupportsIndex

import numpy as np
from _typeshed import WriteableBuffer
from numpy.typing import NDArray

# gauss_into's buffer of doubles: numpy declares its arrays Buffers on Python 3.12+ only
_Doubles = WriteableBuffer | NDArray[np.float64]

__all__ = ["Random", "seed", "random", "uniform", "randint", "choice", "sample", "randrange",
           "shuffle", "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate",
           "gammavariate", "triangular", "gauss", "betavariate", "paretovariate",
           "weibullvariate", "getstate", "setstate", "getrandbits", "choices", "SystemRandom",
           "randbytes", "random_array", "gauss_array", "gauss_into"]
if sys.version_info >= (3, 12):
    __all__ += ["binomialvariate"]

# the standard library module's constants, which it imports too
BPF: int
LOG4: float
NV_MAGICCONST: float
RECIP_BPF: float
SG_MAGICCONST: float
TWOPI: float

class PythonRandom(_stdlib.Random):
    def random_array(self, n: SupportsIndex) -> NDArray[np.float64]: ...
    def gauss_array(self, n: SupportsIndex, mu: float = 0.0,
                    sigma: float = 1.0) -> NDArray[np.float64]: ...
    def gauss_into(self, out: _Doubles, mu: float = 0.0, sigma: float = 1.0) -> None: ...

# Under MICROGPT_PUREPYTHON=1, Random is PythonRandom itself.
class Random(PythonRandom):
    def getrandbits(self, k: SupportsIndex) -> int: ...   # k can be passed by keyword
    @property
    def gauss_next(self) -> float | None: ...
    @gauss_next.setter
    def gauss_next(self, value: float | None) -> None: ...

_inst: Random
seed = _inst.seed
random = _inst.random
uniform = _inst.uniform
triangular = _inst.triangular
randint = _inst.randint
choice = _inst.choice
randrange = _inst.randrange
sample = _inst.sample
shuffle = _inst.shuffle
choices = _inst.choices
normalvariate = _inst.normalvariate
lognormvariate = _inst.lognormvariate
expovariate = _inst.expovariate
vonmisesvariate = _inst.vonmisesvariate
gammavariate = _inst.gammavariate
gauss = _inst.gauss
if sys.version_info >= (3, 12):
    binomialvariate = _inst.binomialvariate
betavariate = _inst.betavariate
paretovariate = _inst.paretovariate
weibullvariate = _inst.weibullvariate
getstate = _inst.getstate
setstate = _inst.setstate
getrandbits = _inst.getrandbits
randbytes = _inst.randbytes
random_array = _inst.random_array
gauss_array = _inst.gauss_array
gauss_into = _inst.gauss_into
