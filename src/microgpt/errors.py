"""
Every error microgpt raises for something a user can do about, in one place.

Each message is one line, meant for the user, naming the file or the value
at fault. Each class is also a built-in type, so a caller catches what it
knows (as msgpack's exceptions do): ``ValueError`` for input that cannot be
used, ``ArithmeticError`` for numbers that broke down, ``OSError`` for
output that cannot be written.

The commands answer an error with its line on stderr and ``exit_status``:

    InputError and its kinds    2   the command line or its input: fix them
    OutputError and WriteError  1   the run's output could not be written
    MemoryError                 1   memory ran out at run time
    KeyboardInterrupt         130   interrupted (Ctrl-C)
"""
USAGE_ERROR, FAILED, INTERRUPTED = 2, 1, 130


class MicrogptError(Exception):
    """An error whose message is one line for the user."""


class InputError(MicrogptError, ValueError):
    """The command line, or what it names, cannot be used (exit status 2)."""


class DataError(InputError):
    """Data that cannot be used: a text, a log, a checkpoint."""


class ReadError(DataError):
    """A file cannot be read."""


class CheckpointError(DataError):
    """A checkpoint that cannot be read, or a path it cannot be saved to."""


class PathError(InputError):
    """A path the run would write to cannot be written: found before any work."""


class ResumeError(InputError):
    """--resume with flags that contradict the checkpoint."""


class NotEnoughMemory(InputError):
    """The run would need more memory than there is."""


class TrainingError(InputError, ArithmeticError):
    """The numbers broke down in training (overflow, log of 0): too large a learning rate."""


class SamplingError(InputError, ArithmeticError):
    """The numbers broke down while sampling."""


class OutputError(MicrogptError, OSError):
    """The run's output cannot be written: standard output, or a file at the
    end of the run (a full disk, a file too large). Exit status 1."""


class WriteError(OutputError):
    """A file cannot be written. The message names the path."""


def exit_status(exc):
    """The exit status a command gives for exc."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, InputError):
        return USAGE_ERROR
    return FAILED


class MicrogptWarning(UserWarning):
    """Something the user should know, that does not stop the command: shown
    by the commands as one line on stderr."""


def why(exc):
    """What went wrong in the numbers, in words (not an errno tuple)."""
    message = str(exc)
    if isinstance(exc, OverflowError):
        return "a number overflowed"
    if isinstance(exc, ZeroDivisionError):
        return "a division by zero"
    if message == "math domain error":
        return "the logarithm of 0"
    if message == "Total of weights must be finite":
        return "the next token's probabilities are not finite numbers"
    if message == "Total of weights must be greater than zero":
        return "the next token's probabilities are all 0"
    return message or type(exc).__name__


def quoted(value, limit=60):
    """repr(value), cut to about limit characters: a value quoted in an error
    keeps the error one short line."""
    return shortened(repr(value), limit)


def shortened(text, limit=200):
    """text, or its beginning and how long it is when it is longer than limit."""
    if len(text) <= limit:
        return text
    return f"{text[:max(limit - 30, 10)]}...({len(text):,} characters)"
