"""microgpt.data: documents, the tokenizer, and downloading names.txt.

The downloads go to a real HTTP server on 127.0.0.1, started here, that
serves the shared names.txt correctly, wrongly, or not at all.
"""
import hashlib
import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from microgpt.data import (NAMES_SHA256, DataError, Tokenizer, cache_dir, download,
                           load_docs, names_path)


# -- documents -----------------------------------------------------------------

def test_documents_are_stripped_non_empty_lines(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes("\ufeff emma \r\n\n\t\nolivia\r\n  ava\n\nzoë ✓\n  \n".encode("utf-8"))
    assert load_docs(path) == ["emma", "olivia", "ava", "zoë ✓"]


def test_names_txt_has_32033_documents(names_txt):
    docs = load_docs(names_txt)
    assert len(docs) == 32033 and docs[0] == "emma" and docs[-1] == "zzyzx"


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("dir", "is a directory"),
    (b"", "no documents"),
    (b"\n \n\t\r\n", "no documents"),
    (b"emma\n\xff\xfeolivia\n", "not UTF-8"),
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


def test_an_unwritable_cache(server, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MICROGPT_CACHE", str(blocker / "cache"))
    with pytest.raises(DataError, match="cannot write to the cache"):
        names_path(f"{server}/names.txt")
