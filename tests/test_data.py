"""microgpt.data: documents, the tokenizer, and the names.txt that comes with microgpt."""
import hashlib
import io
import sys
from pathlib import Path

import pytest

from microgpt.data import NAMES_SHA256, DataError, Tokenizer, load_docs, names_path


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


# -- the dataset that comes with microgpt ----------------------------------------------

def test_the_bundled_names_txt_is_makemores():
    # the SHA-256 of names.txt at karpathy/makemore commit 988aa59 (its origin, in its README)
    path = Path(names_path())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NAMES_SHA256 == \
        "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
    assert path.stat().st_size == 228_145
    for name in ("LICENSE", "README.md"):           # its license and origin beside it
        assert (path.parent / name).is_file()
    assert "MIT" in (path.parent / "LICENSE").read_text()
    assert NAMES_SHA256 in (path.parent / "README.md").read_text()
