"""
The checks a command makes before any work, so that a long run does not end
in an error it could have had at once: the paths it will write, the report's
needs, the words it is given, and the memory it will take.
"""


def check_outputs(outputs, input=None):
    """Refuse now each path a run would write to that it could not, or should
    not: {"the log": path, ...}. Two outputs in one file, or an output in
    place of the input, would lose one of them."""
    from ..errors import PathError, WriteError
    from ..files import check_writable, same_file
    for what, where in outputs.items():
        try:
            check_writable(where)
        except WriteError as exc:
            verb = "save" if what == "the checkpoint" else "write"
            raise PathError(f"cannot {verb} {what}: {exc}") from None
    named = list(outputs.items())
    for i, (what, where) in enumerate(named):
        if input not in (None, "-") and same_file(where, input):
            raise PathError(f"{what} would be written over the input {input}; give it "
                            "another path")
        for other, there in named[i + 1:]:
            if same_file(where, there):
                raise PathError(f"{what} and {other} would be written to the same file "
                                f"{where}; give them different paths")


def need_matplotlib():
    """Refuse a report without matplotlib, before any work."""
    from ..errors import PathError
    try:
        import matplotlib  # noqa: F401 (the report's figures; imported only for a report)
    except ImportError:
        raise PathError("--report needs matplotlib, which is not installed: pip install "
                        "'microgpt[report]' (or pip install matplotlib)") from None


def check_vocabulary(flag, word, characters, where):
    """Refuse a word with characters that are not in the vocabulary."""
    from ..errors import DataError, quoted
    unknown = sorted(set(word) - set(characters))
    if unknown:
        raise DataError(f"{flag} {quoted(word)}: {', '.join(map(repr, unknown[:5]))}"
                        f"{', ...' if len(unknown) > 5 else ''} not in the vocabulary of "
                        f"{where}")


def check_memory(config, path, positions, steps, samples, at_least=False, lengths=None,
                 threads=1, batch_size=1):
    """Raise NotEnoughMemory if the run's estimate (microgpt.memory.needed)
    exceeds what is available."""
    from ..errors import NotEnoughMemory
    from .. import memory
    have = memory.available()
    if have is None:                # nothing to go by (not Linux): do not refuse
        return
    need = memory.needed(config, path, positions, steps, samples, lengths, threads, batch_size)
    if need.total > have.total:
        raise NotEnoughMemory(
            f"this run needs {'at least' if at_least else 'about'} "
            f"{memory.format_bytes(need.total)} of memory ({need.describe()}); "
            f"{have.describe()}")
