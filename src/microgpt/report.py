"""
microgpt-report: the HTML page of a run, after the fact (microgpt.viz).

    microgpt-train --save m.safetensors --log run.jsonl
    microgpt-report m.safetensors --log run.jsonl -o report.html

From a finished run's checkpoint and its log it makes the page that
`microgpt-train --report` made, byte for byte. Without --log the loss and
parameter curves are left out (the page says so) and the samples are drawn
from the checkpoint's generator (after a finished run: the run's samples).
Needs matplotlib (pip install 'microgpt[report]'). Errors are one line on
stderr, exit status 2 (as microgpt-train's; see microgpt.cli).
"""
import sys

from .cli import command, new_parser


def build_parser(prog=None):
    parser = new_parser(
        prog=prog,
        description="Make the HTML page of what a run learned (loss, samples, attention, "
                    "next-character probabilities, embeddings, parameters) from its "
                    "checkpoint and, for the curves, its log.",
        epilog="Exit status: 0 done, 2 a usage error, an unusable checkpoint or log, 1 the "
               "page could not be written, 130 interrupted.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint (.safetensors) of microgpt-train --save")
    parser.add_argument("--log", metavar="PATH", help="the run's log (microgpt-train --log)")
    parser.add_argument("-o", "--output", metavar="PATH", required=True,
                        help="where to write the page (.html)")
    parser.add_argument("--inspect", metavar="WORD",
                        help="the document whose attention and probabilities the page shows "
                             "(default: the first sample)")
    return parser


def main(argv=None):
    """The microgpt-report command; returns the exit status."""
    def body(prog):
        parser = build_parser(prog)
        args = parser.parse_args(argv)
        from .cli import check_report, write_report
        from .data import DataError
        args.report = args.output
        check_report(args)
        from .run import load
        model = load(args.checkpoint)
        if args.inspect is not None:
            unknown = sorted(set(args.inspect) - set(model.vocabulary))
            if unknown:
                raise DataError(f"--inspect {args.inspect!r}: {', '.join(map(repr, unknown))} "
                                f"not in the vocabulary of {args.checkpoint}")
        records = read_log(args.log) if args.log is not None else None
        if records is not None and records[0].get("settings") != model.recipe.settings():
            raise DataError(f"{args.log} is the log of another run than {args.checkpoint} "
                            "(their settings differ)")
        write_report(args.output, model, records, args.inspect)
        return 0
    return command(body, "microgpt-report")


def read_log(path):
    """The records of a --log file; DataError, one line, if it is not one."""
    import json
    from .data import DataError
    from .files import ReadError, read_bytes
    try:
        lines = str(read_bytes(path, "a log"), "utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except ReadError as exc:
        raise DataError(str(exc)) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a microgpt log (not UTF-8 text)") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{path}: not a microgpt log (a line is not JSON: "
                        f"{getattr(exc, 'msg', exc)})") from None
    if not records or not all(isinstance(r, dict) for r in records) or \
            records[0].get("kind") != "start":
        raise DataError(f"{path}: not a microgpt log (it must begin with a start record)")
    for number, record in enumerate(records, 1):
        if record.get("kind") == "step" and not _is_step(record):
            raise DataError(f"{path}: line {number}: not a step record of a microgpt log")
    return records


def _is_step(record):
    number = lambda x: x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))
    rms = record.get("rms", {})
    return (isinstance(record.get("step"), int) and number(record.get("loss"))
            and number(record.get("lr")) and isinstance(rms, dict)
            and all(isinstance(v, list) and len(v) == 2 and all(map(number, v))
                    for v in rms.values()))


if __name__ == "__main__":
    sys.exit(main())
