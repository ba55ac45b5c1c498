"""microgpt.files: what a path may be, to be written or read, and file names
that are not UTF-8 (the oracle: what is on disk afterwards, by os.stat)."""
import os
import re
import socket
import stat

import pytest

from microgpt import files
from microgpt.files import ReadError, WriteError

def unix_socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server


@pytest.mark.parametrize("kind", ["a named pipe (FIFO)", "a character device"])
def test_what_is_not_a_regular_file_is_never_replaced(tmp_path, request, kind):
    if kind == "a character device":
        target = request.getfixturevalue("char_device")
    else:
        target = tmp_path / "x"
        os.mkfifo(target)
    before = os.stat(target)
    for attempt in (lambda: files.check_writable(target),
                    lambda: files.write_atomically(target, b"data")):
        with pytest.raises(WriteError, match=re.escape(f"is {kind}, not a regular file")):
            attempt()
    after = os.stat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_socket_is_never_replaced(tmp_path):
    path = tmp_path / "s"
    server = unix_socket(path)
    try:
        with pytest.raises(WriteError, match="is a socket"):
            files.write_atomically(path, b"data")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        server.close()


def test_a_symbolic_link_is_followed_and_stays(tmp_path):
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to("real")
    files.check_writable(tmp_path / "link")
    files.write_atomically(tmp_path / "link", b"new")
    assert os.path.islink(tmp_path / "link")
    assert (tmp_path / "real").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_link_to_what_is_not_a_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to("pipe")
    with pytest.raises(WriteError, match=r"link \(-> .*pipe\) is a named pipe"):
        files.write_atomically(tmp_path / "link", b"data")
    assert os.path.islink(tmp_path / "link") and stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


def test_a_dangling_link_makes_its_target(tmp_path):
    (tmp_path / "link").symlink_to("made")
    files.write_atomically(tmp_path / "link", b"data")
    assert os.path.islink(tmp_path / "link") and (tmp_path / "made").read_bytes() == b"data"


def test_reading_refuses_what_has_no_end(tmp_path):
    with pytest.raises(ReadError, match="/dev/zero: is a character device, not a checkpoint"):
        files.read_bytes("/dev/zero", "a checkpoint")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    with pytest.raises(ReadError, match="is a named pipe"):
        files.read_bytes(path, "a checkpoint")


@pytest.mark.parametrize("raw", [b"n\xffames.txt", b"caf\xe9.txt", b"ok.txt", b"a\\xffb"])
def test_any_file_name_has_a_name_utf8_can_hold_and_back(tmp_path, raw):
    path = os.path.join(os.fsencode(tmp_path), raw)
    name = files.name_of(os.fsdecode(path))
    assert name == files.name_of(path)
    name.encode("utf-8")                        # no surrogates left
    if b"\\x" not in raw:                       # (a name written as an escape is ambiguous)
        assert os.fsencode(files.path_of(name)) == path
