"""
What every command shares: command(), which answers each error with one line
on stderr and its exit status (microgpt.errors); writing to stdout, where a
failure is an OutputError; argparse with one-line usage errors; and the
argument types of numbers with bounds.

It imports nothing at its top but what the interpreter has already loaded:
a command's module imports it before command() can answer a Ctrl-C.
"""
import os
import sys

INTERRUPTED = 130       # microgpt.errors.INTERRUPTED, for a Ctrl-C before that is imported


def command(name, build_parser, work, argv=None):
    """The command `name`: argv parsed by build_parser(prog), then
    work(args, parser), which returns the exit status; every error a user
    can cause answered with one line on stderr and its exit status, and each
    warning shown as one line."""
    prog = name
    try:
        import warnings
        prog = program_name(name)
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *rest: stderr(f"{prog}: warning: {message}")
            return _answered(lambda: _parsed(build_parser(prog), work, argv), prog)
    except KeyboardInterrupt:
        stderr(f"\n{prog}: interrupted")     # a new line after the ^C the terminal shows
        return INTERRUPTED


def _parsed(parser, work, argv):
    return work(parser.parse_args(argv), parser)


def _answered(body, prog):
    from ..errors import FAILED, MicrogptError, OutputError, exit_status
    try:
        return body()
    except MicrogptError as exc:
        stderr(f"{prog}: error: {exc}")
        if isinstance(exc, OutputError):
            _silence_stdout()
        return exit_status(exc)
    except MemoryError:
        # the up-front estimate said it fits, but the machine disagreed (or
        # another process took the memory meanwhile): not a usage error
        stderr(f"{prog}: error: out of memory; a smaller model (--n-embd, --n-layer, "
               "--block-size) or input needs less")
        return FAILED
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, without a second error at exit
        _silence_stdout()
        return FAILED


def program_name(name):
    """The command's name, as argparse shows it."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0.endswith("__main__.py"):
        return "python -m microgpt"
    for module in ("sample", "report"):
        if argv0.endswith(os.path.join("microgpt", f"{module}.py")):
            return f"python -m microgpt.{module}"
    return os.path.basename(argv0) if argv0 else name


# Output --------------------------------------------------------------------------

def stderr(line):
    """One line on stderr, if there is a stderr to write to."""
    if sys.stderr is None:          # closed (2>&-): print(file=None) would use stdout
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def output(text, end="\n", flush=False):
    """print() to stdout, its failures as OutputError (a broken pipe as itself)."""
    if sys.stdout is None:
        raise _output_error("standard output is closed")
    try:
        print(text, end=end, flush=flush)
    except BrokenPipeError:
        raise
    except UnicodeEncodeError as exc:
        raise _output_error(f"{exc.object[exc.start]!r} cannot be written in the encoding "
                            f"of standard output ({exc.encoding}); "
                            "set PYTHONIOENCODING=utf-8") from None
    except OSError as exc:
        raise _output_error(exc.strerror or exc) from None


def flush():
    """Flush stdout, its failures as OutputError."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _output_error(exc.strerror or exc) from None


def _output_error(why):
    """The OutputError for a failed write. microgpt.errors is imported here,
    on the way to an error: output() runs once a training step, and an
    import statement there, even of a loaded module, would cost more than
    the print."""
    from ..errors import OutputError
    return OutputError(f"cannot write the output: {why}")


def _silence_stdout():
    """Point file descriptor 1 at /dev/null, so that the interpreter's own
    flush at exit succeeds instead of reporting the same error again."""
    if sys.stdout is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


# The command line -----------------------------------------------------------------

def new_parser(**kwargs):
    """An argparse.ArgumentParser whose usage errors are one line, and whose
    --help reports a failure to write."""
    import argparse

    from ..errors import USAGE_ERROR

    class Parser(argparse.ArgumentParser):
        def print_help(self, file=None):
            # argparse's own would drop a write error silently, and exit 0
            if file is None:
                output(self.format_help(), end="", flush=True)
            else:
                super().print_help(file)

        def error(self, message):
            # one line, without the usage argparse prints first: --help has it
            self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")

    return Parser(**kwargs)


# The bounds a number may be given, by name: (int or float, the test, in words)
BOUNDS = {
    "positive": (int, lambda x: x > 0, "a positive integer"),
    "count": (int, lambda x: x >= 0, "0 or more"),
    "threads": (int, lambda x: 1 <= x <= 256, "from 1 to 256"),
    "any": (int, lambda x: True, "an integer"),
    "decay rate": (float, lambda x: 0 <= x < 1, "at least 0 and less than 1"),
    "positive finite": (float, lambda x: 0 < x < float("inf"), "a positive finite number"),
    "finite, 0 or more": (float, lambda x: 0 <= x < float("inf"), "a finite number, 0 or more"),
}


def number(bound):
    """The argparse type of a number within one of BOUNDS: an int or a float,
    or a one-line error saying what it must be."""
    kind, within, words = BOUNDS[bound]

    def parse(text):
        value = _int(text) if kind is int else _float(text)
        if not within(value):
            raise _invalid(
                f"must be {words}, not {value if kind is int else text}")
        return value
    parse.__name__ = bound          # argparse names the type in some messages
    return parse


def step_count(text):
    """--steps: the learning rate's schedule divides by it as a float, so it must be one."""
    value = number("count")(text)
    try:
        float(value)
    except OverflowError:
        raise _invalid(
            f"must be at most about 1.8e308 (the learning rate's schedule divides by it), "
            f"not a {len(str(value))}-digit number") from None
    return value


def temperature(text):
    """--temperature: the logits are multiplied by its inverse, which must be finite."""
    value = number("positive finite")(text)
    try:
        value ** -1
    except OverflowError:
        raise _invalid(
            f"too small: its inverse overflows (the smallest is about "
            f"{1 / sys.float_info.max:.2g}), not {text}") from None
    return value


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise _invalid(f"not a number: {text!r}") from None


def _int(text):
    try:
        return int(text)
    except ValueError:
        digits = text.strip().lstrip("+-").replace("_", "")
        if digits.isdigit() and len(digits) > sys.get_int_max_str_digits() > 0:
            raise _invalid(
                f"an integer of {len(digits)} digits; Python reads at most "
                f"{sys.get_int_max_str_digits()}") from None
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise _invalid(f"not an integer: {shown!r}") from None


def _invalid(message):
    import argparse
    return argparse.ArgumentTypeError(message)
