"""
The data: documents from a text file, the tokenizer, and the default dataset.

A document is a stripped, non-empty line of a UTF-8 text file (or of
standard input), as in microgpt.py. The default dataset is Karpathy's
names.txt (32,033 names), downloaded once into a per-user cache and checked
against its SHA-256.
"""
import os

NAMES_URL = ("https://raw.githubusercontent.com/karpathy/makemore/"
             "988aa59e4d8fefa526d06f3b453ad116258398d4/names.txt")
NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
DOWNLOAD_TIMEOUT = 30.0  # seconds without progress before a download gives up


from .errors import CacheError, DataError  # noqa: F401 (their home was here)


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

def cache_dir():
    """$MICROGPT_CACHE, else $XDG_CACHE_HOME/microgpt, else ~/.cache/microgpt."""
    if os.environ.get("MICROGPT_CACHE"):
        return os.environ["MICROGPT_CACHE"]
    if os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "microgpt")
    return os.path.join(os.path.expanduser("~"), ".cache", "microgpt")


def names_path(url=None, timeout=DOWNLOAD_TIMEOUT):
    """The path of names.txt in the cache, downloading it first if it is missing
    or does not match its checksum. $MICROGPT_NAMES_URL replaces the address
    (a mirror, say); the checksum stays. Raises DataError, with a message
    that says what to do, if there is no good copy and none can be had."""
    url = url or os.environ.get("MICROGPT_NAMES_URL") or NAMES_URL
    path = os.path.join(cache_dir(), "names.txt")
    state = _cached(path, NAMES_SHA256)
    if state == "good":
        return path
    try:
        download(url, path, NAMES_SHA256, timeout)
    except CacheError as exc:
        raise DataError(f"cannot save names.txt in the cache: {exc}. Set MICROGPT_CACHE to a "
                        "writable directory, or pass --input FILE to train on a local "
                        "file.") from None
    except DataError as exc:
        if state == "damaged":
            raise DataError(f"the cached {path} is damaged (its SHA-256 does not match) and "
                            f"downloading it again from {url} failed: {exc}. Pass --input "
                            "FILE to train on a local file.") from None
        raise DataError(f"cannot download names.txt from {url}: {exc}. "
                        "Pass --input FILE to train on a local file.") from None
    return path


def _cached(path, sha256):
    """The cached copy at path: "good", "missing" or "damaged"; a DataError
    if something that is not a file is in its place, or it cannot be read
    (neither is ours to replace)."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        raise DataError(f"cannot read the cache: {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise DataError(f"{path} is {kind}, where the cache keeps names.txt; move it away, "
                        "set MICROGPT_CACHE to another directory, or pass --input FILE")
    try:
        data = _read_bytes(path)
    except OSError as exc:
        raise DataError(f"cannot read the cached {path}: {exc.strerror or exc}. Fix or "
                        "remove it, or pass --input FILE") from None
    return "good" if _sha256(data) == sha256 else "damaged"


def download(url, path, sha256, timeout=DOWNLOAD_TIMEOUT):
    """Fetch url into path, atomically: the bytes go to a temporary file next
    to path, which replaces path only once they are complete and match
    sha256. The file gets the permissions the umask gives a new file.
    Raises DataError for the network or the checksum, CacheError (a
    DataError) for the local file system; either way nothing is left behind."""
    import http.client
    import urllib.error
    import urllib.request

    from .files import WriteError, atomic_file

    try:
        with atomic_file(path) as out:      # made first: an unwritable cache fails at once
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    data = response.read()  # raises IncompleteRead if cut short
            except urllib.error.HTTPError as exc:
                raise DataError(f"HTTP error {exc.code} {exc.reason}") from None
            except urllib.error.URLError as exc:
                raise DataError(f"{_reason(exc.reason)}") from None
            except http.client.IncompleteRead as exc:
                expected = len(exc.partial) + (exc.expected or 0)
                raise DataError(f"the connection closed after {len(exc.partial)} "
                                f"of {expected} bytes") from None
            except (http.client.HTTPException, OSError) as exc:
                raise DataError(_reason(exc)) from None
            got = _sha256(data)
            if got != sha256:
                raise DataError(f"checksum mismatch (sha256 {got}, expected {sha256})")
            try:
                out.write(data)
            except OSError as exc:
                raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    except WriteError as exc:
        raise CacheError(str(exc)) from None


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _sha256(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def _reason(exc):
    """A short description of a network error."""
    import socket
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "host not found (no network?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

