"""Mistakes that ``mypy --strict`` must report, one on each line marked
"# error" (tests/test_typing.py): the public names have real types, so a
misuse is an error rather than an Any that lets it through."""
import microgpt
from microgpt import Run, Value, fused, load, random

Value(1.0) + "1"  # error
2 ** Value(3.0)  # error
Value("2")  # error
Value(1.0).backward().data  # error
microgpt.Valeu  # error
random.gauss("0", 1)  # error
random.Random(1).gauss_array(3.5)  # error
x: str = random.random()  # error
Run(recipe=2)  # error
load(3)  # error
n: int = load("ckpt").sample(2)  # error
fused.Tensor([[1.0]]).data + 1.0  # error
fused.softmax(fused.Tensor([[1.0]]), "hot")  # error
fused.set_threads("2")  # error
