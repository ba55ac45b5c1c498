"""
The training log of --log: JSON Lines, one record per line, flushed as it
is written, so that a run that dies leaves every step it finished.

    {"kind": "start", "recipe": "v1", "settings": {...}, "num_docs": 32033, ...}
    {"kind": "step", "step": 1, "loss": 3.3630..., "lr": 0.01, "grad_norm": ..., "elapsed": ...}
    ...
    {"kind": "end", "step": 500, "elapsed": ..., "samples": ["kamon", ...]}

Floats are written as Python's repr, which reads back as the same float
(``json.loads``); a number that is not finite, anywhere in a record, is
written as null. elapsed is seconds since training started.

``read`` is the one reader of these files: it splits lines at "\\n" only
(a name may hold U+2028 or U+0085), reads a log up to its last complete
record (a full disk can cut the last line short), and checks each record's
fields, so that whoever reads the records can trust their types.
"""
import json
import math
import warnings

from .errors import DataError, MicrogptWarning


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
        line = json.dumps({"kind": kind, **finite(fields)}, ensure_ascii=False,
                          allow_nan=False)
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


def finite(value):
    """value with every float in it that is not finite (in lists, tuples and
    dicts too) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


# Reading -------------------------------------------------------------------------

def read(path):
    """The records of a log, as dicts, in order; DataError, one line, if the
    file is not a microgpt log. A last line cut short (the run's disk filled
    up) is left out, with a MicrogptWarning saying so."""
    from .files import read_bytes
    data = read_bytes(path, "a log", stream=True)
    try:
        lines = str(data, "utf-8").split("\n")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a microgpt log (not UTF-8 text)") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            if number == len(lines) and records:        # no "\n" after it: cut short
                warnings.warn(f"{path}: its last line (line {number}, {len(line)} "
                              "characters) is cut short; read up to the record before it",
                              MicrogptWarning, stacklevel=2)
                break
            raise DataError(f"{path}: not a microgpt log (a line is not JSON: "
                            f"{getattr(exc, 'msg', exc)}, line {number})") from None
        if not records and not (isinstance(record, dict) and record.get("kind") == "start"):
            raise DataError(f"{path}: not a microgpt log (it must begin with a start record)")
        problem = _problem(record)
        if problem is not None:
            raise DataError(f"{path}: line {number}: {problem}")
        records.append(record)
    if not records:
        raise DataError(f"{path}: not a microgpt log (it must begin with a start record)")
    return records


def _number(x):
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _count(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _text(x):
    return isinstance(x, str)


def _numbers(x):
    return isinstance(x, list) and len(x) == 2 and all(map(_number, x))


# The fields of each kind of record, and what each must be. Fields that are
# not listed are allowed (a newer microgpt may add some); a kind that is not
# listed is read, unchecked.
FIELDS = {
    "start": {"recipe": _text, "settings": lambda x: isinstance(x, dict), "num_docs": _count,
              "vocab_size": _count, "num_params": _count, "path": _text, "step": _count,
              "text_name": _text, "val_docs": _count},
    "step": {"step": _count, "loss": _number, "lr": _number, "grad_norm": _number,
             "elapsed": _number,
             "rms": lambda x: isinstance(x, dict) and all(map(_numbers, x.values()))},
    "eval": {"step": _count, "val_loss": _number, "elapsed": _number},
    "end": {"step": _count, "elapsed": _number,
            "samples": lambda x: isinstance(x, list) and all(map(_text, x))},
}
REQUIRED = {"step": {"step", "loss"}, "eval": {"step", "val_loss"}, "end": {"samples"}}


def _problem(record):
    """What is wrong with a record, in words; None if nothing."""
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return "not a record of a microgpt log (a JSON object with a kind)"
    kind = record["kind"]
    for field, valid in FIELDS.get(kind, {}).items():
        if field not in record:
            if field in REQUIRED.get(kind, ()):
                return f"not a {kind} record of a microgpt log (it has no {field!r})"
        elif not valid(record[field]):
            return (f"not a {kind} record of a microgpt log (its {field!r} is not "
                    f"{_expected(valid)})")
    return None


def _expected(valid):
    return {_number: "a number", _count: "a whole number, 0 or more",
            _text: "a string"}.get(valid, "of the right kind")
