"""
The data: documents from a text file, the tokenizer, and the default dataset.

A document is a stripped, non-empty line of a UTF-8 text file (or of
standard input), as in microgpt.py. The default dataset is Karpathy's
names.txt (32,033 names), which ships inside the package
(microgpt/datasets/, with its license and origin): no network is needed.
"""
import os

from .errors import DataError  # noqa: F401 (its home was here)

# names.txt of karpathy/makemore at commit 988aa59e4d8fefa526d06f3b453ad116258398d4
NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"


# Let there be an input dataset ---------------------------------------------

def load_docs(path):
    """The documents of a UTF-8 text file: its stripped, non-empty lines, as
    microgpt.py reads them (a leading BOM is not content). path "-" reads
    standard input."""
    return load_text(path).docs


class Text:
    """A text file's documents, its name, the characters it uses and the
    SHA-256 of its bytes (a checkpoint keeps it, to resume only on the same
    text). The last two are worked out when first asked for."""

    def __init__(self, name, docs, data=None, sha256=None):
        from .files import name_of
        self.name, self.docs = name_of(name), docs     # a file name need not be UTF-8
        self._data, self._sha256, self._characters = data, sha256, None

    @property
    def sha256(self):
        if self._sha256 is None:
            self._sha256 = _sha256(self._data)
        return self._sha256

    @property
    def characters(self):
        """Every character of the documents once, sorted: the vocabulary."""
        if self._characters is None:
            self._characters = "".join(sorted(set("".join(self.docs))))
        return self._characters


def load_text(path):
    """load_docs(path), with the file's name and SHA-256, as a Text."""
    path = os.fspath(path)
    if path == "-":
        name, data = "<stdin>", _read_stdin()
    else:
        from .files import name_of, read_bytes
        name = name_of(path)
        data = read_bytes(path, "a text file", stream=True)
    text = _decode(data, name)
    docs = [l.strip() for l in text.strip().split('\n') if l.strip()]
    if not docs:
        raise DataError(f"{name}: no documents (the {'input' if path == '-' else 'file'} "
                        "is empty or only blank lines)")
    return Text(name, docs, data)


def _read_stdin():
    import sys
    stdin = sys.stdin
    if stdin is None:               # closed: <&-
        raise DataError("<stdin>: standard input is closed")
    try:
        buffer = getattr(stdin, "buffer", None)
        return buffer.read() if buffer is not None else stdin.read().encode("utf-8")
    except OSError as exc:
        raise DataError(f"<stdin>: {exc.strerror or exc}") from None


def _decode(data, name):
    """The text of UTF-8 bytes as open(...).read() gives it: universal
    newlines ('\\r\\n' and '\\r' become '\\n'), and without a leading BOM."""
    bom = b"\xef\xbb\xbf"
    start = len(bom) if data.startswith(bom) else 0
    try:
        text = str(memoryview(data)[start:], "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text (invalid byte at offset {start + exc.start})") \
            from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# Let there be a Tokenizer ------------------------------------------------------

class Tokenizer:
    """Characters to token ids and back: one id per distinct character of the
    documents, in sorted order, and one more, BOS, that starts and ends each
    document."""

    def __init__(self, docs):
        self.uchars = sorted(set(''.join(docs)))
        self.BOS = len(self.uchars)
        self.vocab_size = len(self.uchars) + 1
        self._ids = {ch: i for i, ch in enumerate(self.uchars)}

    def encode(self, doc):
        """[BOS] + the ids of the characters of doc + [BOS]."""
        return [self.BOS] + [self._ids[ch] for ch in doc] + [self.BOS]

    def decode(self, ids):
        return ''.join(self.uchars[i] for i in ids)


# The default dataset -----------------------------------------------------------

def names_path():
    """The path of names.txt, the copy in the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "names.txt")


def _sha256(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()
