# The types of microgpt._peak (compiled from _peak.pyx), for type checkers.
from typing import Final, SupportsIndex

ISAS: Final[tuple[str, ...]]
ACCUMULATORS: Final[int]
MAX_ITERATIONS: Final[int]

def supported_isas() -> tuple[str, ...]: ...
def mul_add_rate(isa: str, iterations: SupportsIndex) -> tuple[int, float]: ...
