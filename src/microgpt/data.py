"""
The data: documents from a text file, the tokenizer, and the default dataset.

A document is a stripped, non-empty line of a UTF-8 text file, as in
microgpt.py. The default dataset is Karpathy's names.txt (32,033 names),
downloaded once into a per-user cache and checked against its SHA-256.
"""
import os

NAMES_URL = ("https://raw.githubusercontent.com/karpathy/makemore/"
             "988aa59e4d8fefa526d06f3b453ad116258398d4/names.txt")
NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
DOWNLOAD_TIMEOUT = 30.0  # seconds without progress before a download gives up


class DataError(Exception):
    """Data that cannot be used. The message is one line, meant for the user."""


# Let there be an input dataset ---------------------------------------------

def load_docs(path):
    """The documents of a UTF-8 text file: its stripped, non-empty lines."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:  # a leading BOM is not content
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a text file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror or exc}") from None
    docs = [l.strip() for l in text.strip().split('\n') if l.strip()]
    if not docs:
        raise DataError(f"{path}: no documents (the file is empty or only blank lines)")
    return docs


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
    (a mirror, say); the checksum stays."""
    url = url or os.environ.get("MICROGPT_NAMES_URL") or NAMES_URL
    path = os.path.join(cache_dir(), "names.txt")
    if os.path.isfile(path) and _sha256(_read_bytes(path)) == NAMES_SHA256:
        return path
    try:
        download(url, path, NAMES_SHA256, timeout)
    except DataError as exc:
        raise DataError(f"cannot download names.txt from {url}: {exc}. "
                        "Pass --input FILE to train on a local file.") from None
    return path


def download(url, path, sha256, timeout=DOWNLOAD_TIMEOUT):
    """Fetch url into path, atomically: the bytes go to a temporary file next
    to path, which replaces path only once they are complete and match sha256."""
    import http.client
    import tempfile
    import urllib.error
    import urllib.request

    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write to the cache {directory}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
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
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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

