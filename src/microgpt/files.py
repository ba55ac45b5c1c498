"""
Files written whole or not at all.

Everything microgpt writes to disk -- the downloaded names.txt, checkpoints
-- goes through ``write_atomically``: the bytes go to a temporary file in the
same directory, are flushed to the disk, and then replace the target in one
rename. A crash at any moment leaves the old file or the new one, never a
mix. The new file gets the permissions the umask gives any new file.
"""
import contextlib
import os


class WriteError(Exception):
    """A file cannot be written. The message is one line, naming the path."""


class ReadError(Exception):
    """A file cannot be read. The message is one line, naming the path."""


def read_bytes(path, kind):
    """The bytes of the file at path; ReadError if there are none to read
    (kind, as "a checkpoint", says what a directory in its place is not)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReadError(f"{path}: is a directory, not {kind}") from None
    except OSError as exc:
        raise ReadError(f"{path}: {exc.strerror or exc}") from None


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
    """A new binary file to write path's bytes into: it replaces path when
    the with block ends without an exception, and is removed when one ends
    it. Made first, so that a path that cannot be written fails before any
    work for it is done."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    if os.path.isdir(path):
        raise WriteError(f"{path} is a directory")
    fd, tmp = create_temporary(directory, name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise WriteError(f"{path} is a directory") from None
        except OSError as exc:
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_directory(directory)


def check_writable(path, create=False):
    """Raise WriteError now if write_atomically(path, ...) could not work
    (a directory in the way, a missing or read-only directory), so that a
    long computation does not end in a file it cannot write. With create,
    a missing directory is made (with its parents)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if create:
        make_directory(directory)
    if os.path.isdir(path):
        raise WriteError(f"{path} is a directory")
    if not os.path.isdir(directory):
        raise WriteError(not_a_directory(directory) or f"{directory}: no such directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise WriteError(f"cannot write in {directory}: permission denied")


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
