"""
microgpt-report: the HTML page of a run, after the fact (microgpt.viz).

    microgpt-train --save m.safetensors --log run.jsonl
    microgpt-report m.safetensors --log run.jsonl -o report.html

From a finished run's checkpoint and its log it makes the page that
`microgpt-train --report` made, byte for byte. Without --log the loss and
parameter curves are left out (the page says so) and the samples are drawn
from the checkpoint's generator (after a finished run: the run's samples).
Needs matplotlib (pip install 'microgpt[report]'). Errors are one line on
stderr, exit status 2 (as microgpt-train's; see microgpt.errors).
"""
from .common import command, new_parser


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
    return command("microgpt-report", build_parser, make_report, argv)


def make_report(args, parser):
    """Write the page args ask for."""
    from ..checkpoint import load
    from ..trained import from_checkpoint
    from .checks import check_outputs, check_vocabulary, need_matplotlib
    need_matplotlib()
    check_outputs({"the report": args.output})
    ck = load(args.checkpoint)
    model = from_checkpoint(ck)
    if args.inspect is not None:
        check_vocabulary("--inspect", args.inspect, model.vocabulary, args.checkpoint)
    records = None
    if args.log is not None:
        from ..runlog import read
        records = read(args.log)
        check_log(records, ck, args.log, args.checkpoint)
    write_report(args.output, model, records, args.inspect)
    return 0


def check_log(records, ck, log, checkpoint):
    """Refuse the records of a log (microgpt.runlog.read) that are not of the
    run the Checkpoint ck is of: other settings, another text, samples of
    characters the model does not know."""
    from ..errors import DataError
    start = records[0]
    other = None
    settings = start.get("settings")
    if isinstance(settings, dict) and "batch_size" not in settings:
        settings = {**settings, "batch_size": 1}    # a log from before the setting
    if settings != ck.recipe.settings():
        other = "their settings differ"
    elif start.get("text_sha256", ck.text_sha256) != ck.text_sha256 or \
            start.get("vocab_size", len(ck.vocabulary) + 1) != len(ck.vocabulary) + 1:
        other = "it trained on another text"
    if other is not None:
        raise DataError(f"{log} is the log of another run than {checkpoint} ({other})")
    known = set(ck.vocabulary)
    for record in records:
        if record["kind"] == "end" and not all(set(s) <= known for s in record["samples"]):
            raise DataError(f"{log}: its samples have characters that are not in the "
                            f"vocabulary of {checkpoint}: the log of another run")


def write_report(path, model, records, inspect):
    """Make the HTML report and write it to path (atomically)."""
    from ..errors import OutputError, WriteError
    from ..viz import report, save
    page = report(model, records, inspect)
    try:
        save(path, page)
    except WriteError as exc:
        raise OutputError(f"cannot write the report: {exc}") from None
