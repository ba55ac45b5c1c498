"""microgpt.data: documents, the tokenizer, and downloading names.txt.

The downloads go to a real HTTP server on 127.0.0.1, started here, that
serves the shared names.txt correctly, wrongly, or not at all.
"""
import hashlib
import http.server
import io
import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from microgpt import data
from microgpt.data import (NAMES_SHA256, CacheError, DataError, Tokenizer, cache_dir, download,
                           load_docs, names_path)


# -- documents -----------------------------------------------------------------

def test_documents_are_stripped_non_empty_lines(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes("\ufeff emma \r\n\n\t\nolivia\r\n  ava\n\nzoë ✓\n  \n".encode("utf-8"))
    assert load_docs(path) == ["emma", "olivia", "ava", "zoë ✓"]


@pytest.mark.parametrize("text, docs", [
    # separators that str.splitlines() would split on, inside lines
    ("a\u2028b\nc\x0cd\n\x1ce\x1c\nf\x85g\n", ["a\u2028b", "c\x0cd", "e", "f\x85g"]),
    # '\r' and '\r\n' end lines (open()'s universal newlines); lines of whitespace only
    ("  x\r\ny\rz\r\r\n\u2028\n\x0c\x0b\n\x85\n w \u2029\n", ["x", "y", "z", "w"]),
    ("\u00a0nbsp\u00a0\n\u3000ideographic\u3000\n\x1d\x1e\x1f\n", ["nbsp", "ideographic"]),
])
def test_lines_are_split_on_newlines_only_as_microgpt_py_does(tmp_path, text, docs):
    # microgpt.py: open('input.txt').read(), split on '\n' only, str.strip() each line
    path = tmp_path / "docs.txt"
    path.write_bytes(text.encode("utf-8"))
    with open(path, encoding="utf-8") as f:             # its read(): universal newlines
        oracle = f.read()
    assert [l.strip() for l in oracle.strip().split('\n') if l.strip()] == docs
    assert load_docs(path) == docs


def test_input_minus_reads_standard_input(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO("\ufeffemma\r\nolivia\n\n zoë \n".encode("utf-8")))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert load_docs("-") == ["emma", "olivia", "zoë"]


@pytest.mark.parametrize("content, message", [
    (b"", "<stdin>: no documents (the input is empty or only blank lines)"),
    (b"emma\n\xff", "<stdin>: not UTF-8 text (invalid byte at offset 5)"),
    (b"\xef\xbb\xbfemma\n\xc3\x28", "<stdin>: not UTF-8 text (invalid byte at offset 8)"),
    (None, "<stdin>: standard input is closed"),
])
def test_unusable_standard_input(monkeypatch, content, message):
    stdin = None if content is None else io.TextIOWrapper(io.BytesIO(content))
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(DataError) as caught:
        load_docs("-")
    assert str(caught.value) == message


def test_names_txt_has_32033_documents(names_txt):
    docs = load_docs(names_txt)
    assert len(docs) == 32033 and docs[0] == "emma" and docs[-1] == "zzyzx"


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("dir", "is a directory"),
    (b"", "no documents"),
    (b"\n \n\t\r\n", "no documents"),
    (b"emma\n\xff\xfeolivia\n", "not UTF-8 text \\(invalid byte at offset 5\\)"),
])
def test_unusable_files(tmp_path, content, message):
    path = tmp_path / "input.txt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_docs(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_tokenizer():
    tok = Tokenizer(["bca", "ab", "é"])
    assert tok.uchars == ["a", "b", "c", "é"]
    assert tok.BOS == 4 and tok.vocab_size == 5
    assert tok.encode("cab") == [4, 2, 0, 1, 4]
    assert tok.decode([2, 0, 1, 3]) == "cabé"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROGPT_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Path(cache_dir()) == tmp_path / "mine"
    monkeypatch.delenv("MICROGPT_CACHE")
    assert Path(cache_dir()) == tmp_path / "xdg" / "microgpt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Path(cache_dir()) == tmp_path / "home" / ".cache" / "microgpt"


# -- downloads, from a real server --------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    names = b""          # set by the fixture
    requests = []

    def do_GET(self):
        Handler.requests.append(self.path)
        if self.path == "/names.txt":
            self.send_body(self.names)
        elif self.path == "/wrong.txt":
            self.send_body(self.names.replace(b"emma", b"anna", 1))
        elif self.path == "/cut.txt":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.names)))
            self.end_headers()
            self.wfile.write(self.names[:len(self.names) // 2])
            self.wfile.flush()
            self.close_connection = True    # the server hangs up mid-transfer
        elif self.path == "/stall.txt":
            time.sleep(3)
            self.send_body(self.names)
        else:
            self.send_error(404, "Not Found")

    def send_body(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(names_txt):
    Handler.names = names_txt.read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROGPT_CACHE", str(tmp_path / "cache"))
    Handler.requests.clear()
    return tmp_path / "cache"


def test_download_caches_names_txt(server, cache, names_txt):
    path = Path(names_path(f"{server}/names.txt"))
    assert path == cache / "names.txt"
    assert path.read_bytes() == names_txt.read_bytes()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NAMES_SHA256
    assert Path(names_path(f"{server}/names.txt")) == path     # from the cache,
    assert Handler.requests == ["/names.txt"]             # without asking again
    assert os.listdir(cache) == ["names.txt"]


def test_a_damaged_cache_is_downloaded_again(server, cache):
    cache.mkdir()
    (cache / "names.txt").write_text("emma\n")
    path = Path(names_path(f"{server}/names.txt"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NAMES_SHA256
    assert Handler.requests == ["/names.txt"]


@pytest.mark.parametrize("route, cause", [
    ("/missing.txt", "HTTP error 404 Not Found"),
    ("/wrong.txt", "checksum mismatch"),
    ("/cut.txt", "the connection closed after 114072 of 228145 bytes"),
])
def test_failed_downloads_leave_nothing_behind(server, cache, route, cause):
    with pytest.raises(DataError) as caught:
        names_path(f"{server}{route}")
    message = str(caught.value)
    assert cause in message and f"{server}{route}" in message
    assert "--input FILE" in message and "\n" not in message
    assert os.listdir(cache) == []      # no partial file, no names.txt


def test_a_failed_download_keeps_an_older_file(server, cache, tmp_path):
    target = tmp_path / "keep" / "names.txt"
    target.parent.mkdir()
    target.write_bytes(b"the previous contents\n")
    with pytest.raises(DataError, match="checksum"):
        download(f"{server}/wrong.txt", target, NAMES_SHA256)
    assert target.read_bytes() == b"the previous contents\n"
    assert os.listdir(target.parent) == ["names.txt"]


def test_a_stalled_server_times_out(server, cache):
    start = time.perf_counter()
    with pytest.raises(DataError, match="timed out"):
        names_path(f"{server}/stall.txt", timeout=0.5)
    assert time.perf_counter() - start < 2.5
    assert os.listdir(cache) == []


def test_no_server_at_all(cache):
    with pytest.raises(DataError, match="Connection refused"):
        names_path("http://127.0.0.1:9/names.txt")
    assert os.listdir(cache) == []


@pytest.mark.parametrize("where", ["cache", "cache/deeper"])
def test_a_file_where_the_cache_directory_should_be(server, monkeypatch, tmp_path, where):
    blocker = tmp_path / "cache"
    blocker.write_text("mine\n")
    monkeypatch.setenv("MICROGPT_CACHE", str(tmp_path / where))
    with pytest.raises(DataError) as caught:
        names_path(f"{server}/names.txt")
    assert str(caught.value) == (
        f"cannot save names.txt in the cache: {blocker} is a file, not a directory. Set "
        "MICROGPT_CACHE to a writable directory, or pass --input FILE to train on a local file.")
    assert blocker.read_text() == "mine\n" and os.listdir(tmp_path) == ["cache"]


def test_an_unwritable_cache(server, cache, monkeypatch):
    cache.mkdir()
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(data.os, "open", refuse)      # as a read-only directory would (even for root)
    with pytest.raises(DataError) as caught:
        names_path(f"{server}/names.txt")
    assert str(caught.value).startswith(
        f"cannot save names.txt in the cache: cannot write in {cache}: Permission denied. Set "
        "MICROGPT_CACHE to a writable directory")
    assert Handler.requests == [] and os.listdir(cache) == []


def test_a_full_disk_leaves_nothing_behind(server, cache, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(data.os, "fsync", full)
    with pytest.raises(CacheError, match="No space left on device"):
        download(f"{server}/names.txt", cache / "names.txt", NAMES_SHA256)
    assert os.listdir(cache) == []


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_something_else_where_names_txt_should_be_is_left_alone(server, cache, kind):
    cache.mkdir()
    target = cache / "names.txt"
    if kind == "directory":
        target.mkdir()
        (target / "precious").write_text("keep me\n")
    else:
        os.mkfifo(target)
    with pytest.raises(DataError) as caught:
        names_path(f"{server}/names.txt")
    what = "a directory" if kind == "directory" else "not a regular file"
    assert str(caught.value) == (f"{target} is {what}, where the cache keeps names.txt; move it "
                                 "away, set MICROGPT_CACHE to another directory, or pass "
                                 "--input FILE")
    assert Handler.requests == [] and sorted(os.listdir(cache)) == ["names.txt"]
    if kind == "directory":
        assert (target / "precious").read_text() == "keep me\n"
    else:
        assert stat.S_ISFIFO(os.lstat(target).st_mode)


def test_download_over_a_directory_is_a_cache_error(server, tmp_path):
    target = tmp_path / "names.txt"
    target.mkdir()
    with pytest.raises(CacheError, match="is a directory"):
        download(f"{server}/names.txt", target, NAMES_SHA256)
    assert os.listdir(tmp_path) == ["names.txt"] and os.listdir(target) == []


def test_a_damaged_cache_while_offline_says_both(cache):
    cache.mkdir()
    (cache / "names.txt").write_bytes(b"emma\nolivia\n")
    with pytest.raises(DataError) as caught:
        names_path("http://127.0.0.1:9/names.txt")
    message = str(caught.value)
    assert message.startswith(f"the cached {cache / 'names.txt'} is damaged (its SHA-256 does "
                              "not match) and downloading it again from "
                              "http://127.0.0.1:9/names.txt failed: Connection refused.")
    assert "--input FILE" in message and "\n" not in message
    assert (cache / "names.txt").read_bytes() == b"emma\nolivia\n"    # left as it was
    assert os.listdir(cache) == ["names.txt"]


def test_an_unreadable_cached_file(cache, monkeypatch):
    cache.mkdir()
    (cache / "names.txt").write_bytes(b"emma\n")
    def refuse(path):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(data, "_read_bytes", refuse)    # chmod 000 would not stop root
    with pytest.raises(DataError, match=f"cannot read the cached {cache / 'names.txt'}: "
                                        "Permission denied"):
        names_path("http://127.0.0.1:9/names.txt")
    assert (cache / "names.txt").read_bytes() == b"emma\n"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_downloaded_file_gets_the_users_umask(server, cache, umask, mode):
    old = os.umask(umask)
    try:
        path = Path(names_path(f"{server}/names.txt"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
