"""
The training log of --log: JSON Lines, one record per line, flushed as it
is written, so that a run that dies leaves every step it finished.

    {"kind": "start", "recipe": "v1", "settings": {...}, "num_docs": 32033, ...}
    {"kind": "step", "step": 1, "loss": 3.3630..., "lr": 0.01, "grad_norm": ..., "elapsed": ...}
    ...
    {"kind": "end", "step": 500, "elapsed": ..., "samples": ["kamon", ...]}

Floats are written as Python's repr, which reads back as the same float
(``json.loads``); a number that is not finite is written as null. elapsed
is seconds since training started.
"""
import json
import math


class RunLog:
    """A JSON Lines file being written, a record at a time (path None: no
    file); with keep, the records are also kept in .records, as read()
    would give them back."""

    def __init__(self, path, keep=False):
        self.path = path
        self.records = [] if keep else None
        self._file = open(path, "w", encoding="utf-8") if path is not None else None

    def write(self, kind, **fields):
        """One record: {"kind": kind, **fields}, as one line, flushed."""
        line = json.dumps({"kind": kind, **{k: _finite(v) for k, v in fields.items()}},
                          ensure_ascii=False, allow_nan=False)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        if self.records is not None:
            self.records.append(json.loads(line))

    def close(self):
        if self._file is not None:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read(path):
    """The records of a log, as dicts, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
