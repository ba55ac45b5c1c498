"""
microgpt-train: train microgpt.py's GPT on a text file, then sample from it.

With the defaults it is microgpt.py: the same hyperparameters, the same seed,
and the same output, byte for byte; with --recipe v2, microgpt.py's final
revision (microgpt.recipe). Each hyperparameter's flag overrides the recipe's
value; the output's format stays the recipe's.

Every error a user can cause is one line on stderr, never a traceback; the
exit statuses are microgpt.errors'. Everything that can be checked before
training is, once (preflight).
"""
import sys

from .common import command, flush, output, stderr


def main(argv=None):
    """The microgpt-train command; returns the exit status."""
    return command("microgpt-train", build_parser,
                   lambda args, parser: run(recipe_of(args, parser), args, parser), argv)


# The command line ------------------------------------------------------------

def build_parser(prog=None):
    import argparse

    from ..recipe import RECIPES
    from .common import new_parser, number, step_count, temperature

    parser = new_parser(
        prog=prog,
        description="Train microgpt.py's GPT on the lines of a text file, one line per step, "
                    "then print new samples. With no --input, trains on Karpathy's names.txt, "
                    "which comes with microgpt. A recipe is "
                    "a revision of microgpt.py: its hyperparameters and its output format; a "
                    "flag below overrides the recipe's value (the format stays the recipe's).",
        epilog="Exit status: 0 done, 2 a usage or input error (including a run that would "
               "not fit in memory), 1 the output could not be written or memory ran out "
               "at run time, 130 interrupted.")

    def setting(flag, field, help, metavar=None, **kwargs):
        """A flag for one of the recipe's settings; its default is the recipe's."""
        shown = {name: _shown(getattr(recipe, field)) for name, recipe in RECIPES.items()}
        if len(set(shown.values())) == 1:
            default = shown["v1"]
        else:
            default = ", ".join(f"{name} {value}" for name, value in shown.items())
        if metavar is None and "choices" not in kwargs and "action" not in kwargs:
            metavar = flag[2:].upper().replace("-", "_")
        if metavar is not None:     # (passed at all, it is deprecated for some actions on 3.12+)
            kwargs["metavar"] = metavar
        parser.add_argument(flag, dest=field, default=argparse.SUPPRESS,
                            help=f"{help} (default: {default})", **kwargs)

    parser.add_argument("--recipe", choices=RECIPES, default=argparse.SUPPRESS,
                        help="which microgpt.py to be: " + "; ".join(
                            f"{name}, {recipe.summary}" for name, recipe in RECIPES.items())
                        + " (default: v1)")
    parser.add_argument("--input", metavar="FILE",
                        help="UTF-8 text file, one document per line; - reads standard input "
                             "(default: names.txt)")
    setting("--steps", "num_steps", "training steps, --batch-size documents each",
            type=step_count, metavar="N")
    setting("--batch-size", "batch_size", "documents a step trains on, the mean of their "
            "losses; 1 is microgpt.py's step", type=number("positive"), metavar="B")
    setting("--n-embd", "n_embd", "embedding width", type=number("positive"))
    setting("--n-head", "n_head", "attention heads (must divide --n-embd)", type=number("positive"))
    setting("--n-layer", "n_layer", "transformer blocks", type=number("positive"))
    setting("--block-size", "block_size", "longest context, in tokens", type=number("positive"))
    setting("--activation", "activation", "the MLP's activation: relu2 is relu(x) ** 2",
            choices=("relu2", "relu"))
    setting("--init-std", "init_std", "std of the random initial parameters",
            type=number("finite, 0 or more"), metavar="STD")
    setting("--zero-init-proj", "zero_init_proj", "start attn_wo and mlp_fc2 at 0",
            action=argparse.BooleanOptionalAction)
    setting("--lr", "learning_rate", "Adam learning rate, decayed to 0 over the steps",
            type=number("positive finite"))
    setting("--lr-schedule", "lr_schedule", "how the learning rate decays",
            choices=("cosine", "linear"))
    setting("--beta1", "beta1", "Adam's decay rate of the mean gradient", type=number("decay rate"))
    setting("--beta2", "beta2", "Adam's decay rate of the mean squared gradient",
            type=number("decay rate"))
    setting("--eps", "eps_adam", "Adam's epsilon", type=number("positive finite"))
    setting("--seed", "seed", "seed of the random generator (shuffle, parameters, samples)",
            type=number("any"))
    setting("--samples", "num_samples", "documents to sample after training",
            type=number("count"), metavar="N")
    setting("--temperature", "temperature", "sampling temperature", type=temperature,
            metavar="T")
    parser.add_argument("--exact", action="store_true",
                        help="train on microgpt.py's graph of scalar Values instead of the "
                             "fused operations (the same numbers, much slower)")
    parser.add_argument("--threads", metavar="N", type=number("threads"), default=1,
                        help="run the fast path's matrix kernels (linear layers, attention, "
                             "Adam) on N threads when a model is big enough to gain from it; "
                             "the numbers are the same for any N (default: 1)")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="run even when the estimate of the memory the run needs "
                             "exceeds what is available")
    parser.add_argument("--save", metavar="PATH",
                        help="write a checkpoint (safetensors) to PATH after training, "
                             "before sampling; on Ctrl-C, of the last completed step")
    parser.add_argument("--save-every", metavar="N", type=number("positive"),
                        help="with --save: also every N steps")
    parser.add_argument("--log", metavar="PATH",
                        help="write the run's log to PATH as JSON Lines: a record per step "
                             "(loss, learning rate, gradient norm, time) and one with the "
                             "samples; what the run prints does not change")
    parser.add_argument("--val-docs", metavar="N", type=number("count"), default=0,
                        help="hold the last N of the shuffled documents out of training and "
                             "log their mean loss (--log); the run then differs from "
                             "microgpt.py's from the step that would have trained on one "
                             "of them (default: 0)")
    parser.add_argument("--eval-every", metavar="K", type=number("positive"),
                        help="with --val-docs: evaluate every K steps, and at the first and "
                             "last (default: 100)")
    parser.add_argument("--report", metavar="PATH",
                        help="write an HTML page of what the run learned to PATH: loss, "
                             "samples, attention, next-character probabilities, embeddings, "
                             "parameters (needs matplotlib: pip install 'microgpt[report]')")
    parser.add_argument("--inspect", metavar="WORD",
                        help="with --report: the document whose attention and "
                             "probabilities the page shows (default: the first sample)")
    parser.add_argument("--resume", metavar="PATH",
                        help="carry on the run saved in the checkpoint PATH to its last step, "
                             "on the text it was trained on (--input), printing from the first "
                             "step it trains; its settings are the checkpoint's")
    return parser


def _shown(value):
    """A recipe's value as --help shows it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def recipe_of(args, parser):
    """The recipe of --recipe, with the settings given as flags (None with
    --resume: the checkpoint's are used)."""
    from ..recipe import RECIPES, Recipe
    if args.save_every is not None and args.save is None:
        parser.error("--save-every needs --save PATH")
    if args.eval_every is not None and not args.val_docs:
        parser.error("--eval-every needs --val-docs N")
    if args.resume is not None:
        return None
    recipe = RECIPES[getattr(args, "recipe", "v1")]
    changes = {field: value for field, value in vars(args).items() if field in Recipe.FIELDS}
    n_embd, n_head = changes.get("n_embd", recipe.n_embd), changes.get("n_head", recipe.n_head)
    if n_embd % n_head:
        parser.error(f"--n-embd ({n_embd}) must be divisible by --n-head ({n_head})")
    return recipe.replace(**changes)


def contradictions(args, parser, ck, path):
    """Refuse flags that would change a resumed run's settings."""
    from ..errors import ResumeError, shortened
    from ..recipe import Recipe
    flags = {action.dest: action.option_strings[0] for action in parser._actions
             if action.option_strings}
    if args.val_docs and args.val_docs != ck.val_docs:
        raise ResumeError(f"--val-docs {args.val_docs} contradicts {path}, whose run holds "
                          f"out {ck.val_docs}; a resumed run keeps its settings")
    given = getattr(args, "recipe", None)
    if given is not None and given != ck.recipe.name:
        raise ResumeError(f"--recipe {given} contradicts {path}, a run of recipe "
                          f"{shortened(ck.recipe.name)}; a resumed run keeps its settings")
    for field, value in vars(args).items():
        if field in Recipe.FIELDS and value != getattr(ck.recipe, field):
            raise ResumeError(f"{flags[field]} {_shown(value)} contradicts {path}, whose run "
                              f"has {_shown(getattr(ck.recipe, field))}; a resumed run keeps "
                              "its settings")


# The run ---------------------------------------------------------------------

def run(recipe, args, parser):
    """microgpt.py as the recipe has it, on the input and path args give; or
    the rest of the run in --resume. Returns the exit status."""
    from .. import BACKEND, random  # noqa: F401 (the compiled modules, before any output)
    from ..errors import INTERRUPTED
    from ..run import Run
    from .report import write_report

    path = "fused" if not args.exact and BACKEND == "compiled" else BACKEND
    if path == "fused" and args.threads > 1:
        from ..fused import set_threads
        set_threads(args.threads)
    ck, text = preflight(recipe, args, parser, path)
    if ck is not None:
        run = Run.resume(ck, text, exact=args.exact)
    else:
        output(f"num docs: {len(text.docs)}")
        output(f"vocab size: {len(text.characters) + 1}")
        run = Run(text, recipe, exact=args.exact, val_docs=args.val_docs)
        output(f"num params: {run.model.num_params}")
    wanted = args.log is not None or args.report is not None
    log = _open_log(args.log, run, path, keep=args.report is not None) if wanted else None
    try:
        if not training(run, args, parser.prog, log):
            return INTERRUPTED
        samples = sampling(run.model, run.recipe)
        if log is not None:
            log.write("end", step=run.step, samples=samples)
    finally:
        if log is not None:
            log.close()
    if args.report is not None:
        write_report(args.report, run.model, log.log.records, args.inspect)
    return 0


def preflight(recipe, args, parser, path):
    """Every check that can be made before training, made once: standard
    output, the checkpoint to resume and its flags, each path the run will
    write, the report's needs, the memory (before the data, with the
    smallest vocabulary, then with the text's), the text and what the flags
    ask of it. Returns (the checkpoint to resume or None, the text)."""
    from ..data import load_text, names_path
    from ..errors import DataError, OutputError, PathError
    from .checks import check_memory, check_outputs, check_vocabulary, need_matplotlib
    if sys.stdout is None:
        raise OutputError("cannot write the output: standard output is closed")
    if args.inspect is not None and args.report is None:
        raise PathError("--inspect needs --report PATH")
    if args.report is not None:
        need_matplotlib()
    ck = None
    if args.resume is not None:
        from ..checkpoint import load
        ck = load(args.resume)
        contradictions(args, parser, ck, args.resume)
        recipe = ck.recipe
    outputs = {"the checkpoint": args.save, "the log": args.log, "the report": args.report}
    check_outputs({what: where for what, where in outputs.items() if where is not None},
                  args.input)
    check = not args.no_memory_check
    if check:       # before the data, with the smallest vocabulary: no reading for nothing
        check_memory(recipe.config(2), path, 1, recipe.num_steps, recipe.num_samples,
                     at_least=True, batch_size=recipe.batch_size)
    if args.input is not None:
        text = load_text(args.input)
    elif ck is not None:
        from ..run import checkpoint_text
        text = checkpoint_text(ck)
    else:
        text = load_text(names_path())
    if args.inspect is not None:
        check_vocabulary("--inspect", args.inspect, text.characters, text.name)
    if args.val_docs >= len(text.docs):
        raise DataError(f"--val-docs {args.val_docs} leaves no documents to train on "
                        f"({text.name} has {len(text.docs)})")
    if check:       # the two longest documents: a bound for any order of them (for
        from heapq import nlargest      # batches, steps of the longest only)
        longest = nlargest(2, map(len, text.docs))
        check_memory(recipe.config(len(text.characters) + 1), path, longest[0] + 1,
                     recipe.num_steps, recipe.num_samples,
                     lengths=[n + 1 for n in longest[:1 if recipe.batch_size > 1 else 2]],
                     threads=args.threads if path == "fused" else 1,
                     batch_size=recipe.batch_size)
    return ck, text


def _open_log(path, run, computation, keep=False):
    """The --log file (path None: none), begun with the run's settings; with
    keep, its records kept in memory for the report."""
    from .. import __version__
    from ..errors import PathError
    from ..runlog import RunLog
    try:
        log = _Log(RunLog(path, keep=keep))
    except OSError as exc:
        raise PathError(f"cannot write the log: {path}: {exc.strerror or exc}") from None
    log.write("start", recipe=run.recipe.name, settings=run.recipe.settings(),
              num_docs=len(run.docs), vocab_size=run.model.config.vocab_size,
              num_params=run.model.num_params, path=computation, step=run.step,
              text_name=run.text.name, text_sha256=run.text.sha256,
              val_docs=len(run.val_docs), microgpt_version=__version__)
    return log


class _Log:
    """A RunLog whose write errors are OutputErrors, with the time since
    training started in its step records."""

    def __init__(self, log):
        self.log, self.start, self.failed = log, None, False

    def write(self, kind, **fields):
        import time
        if self.start is None:
            self.start = time.perf_counter()
        if kind != "start":
            fields["elapsed"] = time.perf_counter() - self.start
        from ..errors import OutputError
        try:
            self.log.write(kind, **fields)
        except OSError as exc:
            self.failed = True
            raise OutputError(f"cannot write the log {self.log.path}: "
                              f"{exc.strerror or exc}") from None

    def close(self):
        try:
            self.log.close()
        except OSError:
            pass


def training(run, args, prog, log=None):
    """Train the run to its last step, printing each step's line; save the
    checkpoint if asked. False if Ctrl-C stopped it (with --save: after the
    step it was in, which is then saved). A log that cannot be written stops
    the run too, its steps saved first."""
    from ..errors import OutputError, TrainingError, why
    recipe, num_steps, save = run.recipe, run.num_steps, args.save
    every = args.eval_every or 100

    def evaluate():
        try:
            return run.evaluate()
        except (ArithmeticError, ValueError) as exc:
            raise TrainingError(f"evaluating the held-out documents failed after step "
                                f"{run.step}: {why(exc)}") from None
    stop, first = [], run.step
    handler = _catch_interrupt(stop) if save is not None else None
    try:
        if log is not None and run.val_docs:
            log.write("eval", step=run.step, val_loss=evaluate())
        for step in run.steps(observe=log is not None):
            if log is not None:     # first: a step printed is a step logged
                log.write("step", step=step.step, loss=step.loss, lr=step.lr,
                          grad_norm=step.grad_norm,
                          rms={name: [data, grad] for name, data, grad in step.matrix_rms})
            output(f"step {run.step:4d} / {num_steps:4d} | loss {step.loss:.4f}",
                   end=recipe.step_end, flush=True)
            if log is not None and run.val_docs and \
                    (run.step % every == 0 or run.step == num_steps):
                log.write("eval", step=run.step, val_loss=evaluate())
            if args.save_every and run.step % args.save_every == 0 and run.step < num_steps:
                run.save(save)
            if stop:
                break
        if save is not None:
            run.save(save)
    except OutputError:
        if log is not None and log.failed and save is not None and run.step > first:
            _save_what_was_trained(run, save, prog)
        raise
    finally:
        if handler is not None:
            import signal
            signal.signal(signal.SIGINT, handler)
    if run.val_docs and log is None:
        loss = evaluate()
        stderr(f"held-out loss after step {run.step} ({len(run.val_docs)} documents): "
                f"{loss:.4f}")
    if stop:
        stderr(f"\n{prog}: interrupted after step {run.step} of {num_steps}; saved it "
                f"in {save} (carry on with --resume {save})")
        return False
    return True


def _save_what_was_trained(run, save, prog):
    """Save the run after its log failed, saying so: the steps it trained
    are not lost with the log."""
    from ..errors import OutputError
    try:
        run.save(save)
    except OutputError as exc:
        stderr(f"{prog}: could not save step {run.step} either: {exc}")
    else:
        stderr(f"{prog}: saved step {run.step} of {run.num_steps} in {save} "
               f"(carry on with --resume {save})")


def _catch_interrupt(stop):
    """Make Ctrl-C append to stop instead of raising KeyboardInterrupt, so that
    training ends after a whole step; the previous handler, or None where
    Python only lets the main thread set one."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))


def sampling(model, recipe):
    """Print the inference header and the recipe's samples, as microgpt.py;
    return the samples."""
    output("\n" + recipe.inference_header)
    samples = []
    for sample_idx, text in enumerate(model.samples()):
        output(f"sample {sample_idx+1:2d}: {text}")
        samples.append(text)
    flush()
    return samples
