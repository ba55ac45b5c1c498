"""
Files read and written for the user: read only what can be read, written
whole or not at all, and never in place of something that is not a file.

Everything microgpt writes to disk -- checkpoints, reports, the names.txt
cache -- goes through ``write_atomically``: the bytes go to a temporary file
in the same directory, are flushed to the disk, and then replace the target
in one rename. A crash at any moment leaves the old file or the new one,
never a mix. The new file gets the permissions the umask gives any new file.

What a path may name, to be written: nothing yet, a regular file, or a
symbolic link to one (the file it points to is replaced, and the link
stays). A directory, a named pipe, a device or a socket is refused: a rename
would put a file in its place. To be read: a regular file, or a named pipe
where a stream will do (``read_bytes(..., stream=True)``); a device would
give no end of bytes.

File names are bytes on Linux, and need not be UTF-8. ``name_of`` gives a
path as text any UTF-8 file can hold (a checkpoint, a log, a page), and
``path_of`` turns that text back into the path.
"""
import contextlib
import os
import re
import stat

from .errors import ReadError, WriteError

__all__ = ["ReadError", "WriteError", "read_bytes", "open_for_reading", "write_atomically",
           "atomic_file", "check_writable", "same_file", "name_of", "path_of"]


def kind_of(mode):
    """What a file of this st_mode is, in words ('a named pipe (FIFO)')."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


# Reading -----------------------------------------------------------------------

def read_bytes(path, kind, stream=False):
    """The bytes of the file at path; ReadError if there are none to read
    (kind, as "a checkpoint", says what the path should be). With stream,
    a named pipe is read too (to its end)."""
    with open_for_reading(path, kind, stream) as f:
        try:
            return f.read()
        except OSError as exc:
            raise ReadError(f"{os.fspath(path)}: {exc.strerror or exc}") from None


def open_for_reading(path, kind, stream=False):
    """The file at path opened for reading in binary, once it is known to be
    a regular file (or with stream, a named pipe); ReadError if not."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or (stream and stat.S_ISFIFO(mode))):
            raise ReadError(f"{path}: is {kind_of(mode)}, not {kind}")
        return open(path, "rb")
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReadError(f"{path}: {exc.strerror or exc}") from None


# Writing -----------------------------------------------------------------------

def write_atomically(path, data):
    """Write the bytes of data to path, replacing it whole or not at all."""
    with atomic_file(path) as out:
        try:
            out.write(data)
        except OSError as exc:
            raise WriteError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") \
                from None


@contextlib.contextmanager
def atomic_file(path):
    """A new binary file to write path's bytes into: it replaces path (or
    the file a symbolic link at path points to) when the with block ends
    without an exception, and is removed when one ends it. Made first, so
    that a path that cannot be written fails before any work for it is done."""
    path = os.fspath(path)
    target = _target(path)
    directory, name = os.path.split(target)
    fd, tmp = create_temporary(directory, name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        _target(path)           # still a file to replace, after all the writing
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_directory(directory)


def check_writable(path, create=False):
    """Raise WriteError now if write_atomically(path, ...) could not work
    (something not a regular file in the way, a missing or read-only
    directory), so that a long computation does not end in a file it cannot
    write. With create, a missing directory is made (with its parents)."""
    path = os.fspath(path)
    directory = os.path.dirname(_target(path))
    if create:
        make_directory(directory)
    if not os.path.isdir(directory):
        raise WriteError(not_a_directory(directory) or f"{directory}: no such directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise WriteError(f"cannot write in {directory}: permission denied")


def _target(path):
    """The absolute path a write to path replaces: path itself, or the end
    of the symbolic links it is; WriteError if something that is not a
    regular file is there."""
    target = os.path.realpath(path)
    try:
        # what path is, through its links: os.stat follows the links of
        # /proc too (/dev/stdout to a pipe), which realpath cannot name
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return target
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        shown = path if target == os.path.abspath(path) else f"{path} (-> {target})"
        if stat.S_ISDIR(mode):
            raise WriteError(f"{shown} is a directory")
        raise WriteError(f"{shown} is {kind_of(mode)}, not a regular file; microgpt "
                         "writes only regular files")
    return target


def create_temporary(directory, name):
    """A new file .name.XXXX.part in directory, made (with its parents) with
    mode 0o666, which the umask (and a default ACL) trims as for any new
    file; tempfile.mkstemp's would be 0o600. Returns (fd, path)."""
    make_directory(directory)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | \
        getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteError(f"cannot write in {directory}: {exc.strerror or exc}") from None
    raise WriteError(f"cannot write in {directory}: no unused temporary name")


def make_directory(directory):
    """Make directory and its parents, unless it exists."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise WriteError(not_a_directory(directory) or
                         f"cannot create {directory}: {exc.strerror or exc}") from None


def not_a_directory(directory):
    """'X is a file, not a directory' for the first of directory and its
    parents that exists and is not a directory; None if there is none."""
    while True:
        if os.path.lexists(directory):
            return None if os.path.isdir(directory) else \
                f"{directory} is a file, not a directory"
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def fsync_directory(directory):
    """Make a rename in directory durable, where the system allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def same_file(path, other):
    """Whether path and other name one file (through links too), whether it
    exists yet or not."""
    try:
        return os.path.samefile(path, other)
    except OSError:                 # one of them is not there (yet)
        return os.path.realpath(path) == os.path.realpath(other)


# Names -------------------------------------------------------------------------

def name_of(path):
    """path (str, bytes or os.PathLike) as text that UTF-8 can hold: the
    bytes of the file system's name that are not UTF-8 shown as \\xNN
    (os.fsdecode keeps them as lone surrogates, which UTF-8 cannot)."""
    path = os.fspath(path)
    raw = path if isinstance(path, bytes) else None
    if raw is None:
        try:
            raw = path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:      # a surrogate not made by surrogateescape
            return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def path_of(name):
    """The path whose name_of is name (the \\xNN of bytes 80 to ff put back)."""
    raw = re.sub(rb"\\x([89a-f][0-9a-f])", lambda m: bytes([int(m[1], 16)]),
                 name.encode("utf-8"))
    return os.fsdecode(raw)
