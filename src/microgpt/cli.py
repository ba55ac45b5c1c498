"""
microgpt-train: train microgpt.py's GPT on a text file, then sample from it.

With the defaults it is microgpt.py: the same hyperparameters, the same seed,
and the same output, byte for byte; with --recipe v2, microgpt.py's final
revision (microgpt.recipe). Each hyperparameter's flag overrides the recipe's
value; the output's format stays the recipe's.

Every error a user can cause is one line on stderr, never a traceback. Exit
statuses: 0 done; 2 a usage or input error (a bad flag value, unusable
input or output path, a run that would not fit in memory, numbers that
break down); 1 the run could not finish for a reason outside the command
line (its output cannot be written, out of memory at run time); 130
interrupted (Ctrl-C).

Importing this module is cheap on purpose (the console script imports it
before main() can catch a Ctrl-C): everything heavy is imported in main().
"""
import os
import sys


def __getattr__(name):
    """The errors that lived here before microgpt.errors (imported when first
    asked for: this module's import is the console script's, before main()
    can answer a Ctrl-C, so it imports nothing of its own)."""
    if name in ("TrainingError", "SamplingError", "NotEnoughMemory", "ResumeError",
                "OutputError", "USAGE_ERROR", "FAILED", "INTERRUPTED"):
        from . import errors
        return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv=None):
    """The microgpt-train command; returns the exit status."""
    def body(prog):
        parser = build_parser(prog)
        args = parser.parse_args(argv)
        return run(recipe_of(args, parser), args, parser)
    return command(body, "microgpt-train")


def command(body, name):
    """Run body(prog), a command's work, answering every error a user can
    cause with one line on stderr and its exit status (microgpt.errors), and
    showing each warning as one line."""
    prog = name
    try:
        import warnings
        prog = _prog(name)
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *rest: _stderr(f"{prog}: warning: {message}")
            return _errors_answered(body, prog)
    except KeyboardInterrupt:
        _stderr(f"\n{prog}: interrupted")     # a new line after the ^C the terminal shows
        return 130      # errors.INTERRUPTED, which a Ctrl-C may have kept from being imported


def _errors_answered(body, prog):
    from .errors import FAILED, MicrogptError, OutputError, exit_status
    try:
        return body(prog)
    except MicrogptError as exc:
        _error(prog, exc)
        if isinstance(exc, OutputError):
            _silence_stdout()
        return exit_status(exc)
    except MemoryError:
        # the up-front estimate said it fits, but the machine disagreed (or
        # another process took the memory meanwhile): not a usage error
        _error(prog, "out of memory; a smaller model (--n-embd, --n-layer, --block-size) or "
                     "input needs less")
        return FAILED
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, without a second error at exit
        _silence_stdout()
        return FAILED


def _prog(name="microgpt-train"):
    """The command's name, as argparse shows it."""
    if sys.argv and sys.argv[0].endswith("__main__.py"):
        return "python -m microgpt"
    for module in ("sample", "report"):
        if sys.argv and sys.argv[0].endswith(os.path.join("microgpt", f"{module}.py")):
            return f"python -m microgpt.{module}"
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else name


def _error(prog, message):
    _stderr(f"{prog}: error: {message}")


def _stderr(line):
    """One line on stderr, if there is a stderr to write to."""
    if sys.stderr is None:          # closed (2>&-): print(file=None) would use stdout
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _print(text, end="\n", flush=False):
    """print() to stdout, its failures as OutputError (a broken pipe as itself)."""
    from .errors import OutputError
    if sys.stdout is None:
        raise OutputError("cannot write the output: standard output is closed")
    try:
        print(text, end=end, flush=flush)
    except BrokenPipeError:
        raise
    except UnicodeEncodeError as exc:
        raise OutputError(f"cannot write the output: {exc.object[exc.start]!r} cannot be "
                          f"written in the encoding of standard output ({exc.encoding}); "
                          "set PYTHONIOENCODING=utf-8") from None
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None


def _flush():
    from .errors import OutputError
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None


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


# The command line ------------------------------------------------------------

def positive_int(text):
    value = _int(text)
    if value <= 0:
        raise _invalid(f"must be a positive integer, not {value}")
    return value


def thread_count(text):
    value = _int(text)
    if not 1 <= value <= 256:
        raise _invalid(f"must be from 1 to 256, not {value}")
    return value


def non_negative_int(text):
    value = _int(text)
    if value < 0:
        raise _invalid(f"must be 0 or more, not {value}")
    return value


def decay_rate(text):
    """--beta1, --beta2: an exponential decay rate, at least 0 and less than 1."""
    value = _float(text)
    if not 0 <= value < 1:
        raise _invalid(f"must be at least 0 and less than 1, not {text}")
    return value


def non_negative_float(text):
    value = _float(text)
    if not (value >= 0 and value < float("inf")):
        raise _invalid(f"must be a finite number, 0 or more, not {text}")
    return value


def step_count(text):
    """--steps: the learning rate's schedule divides by it as a float, so it must be one."""
    value = non_negative_int(text)
    try:
        float(value)
    except OverflowError:
        raise _invalid(f"must be at most about 1.8e308 (the learning rate's schedule "
                       f"divides by it), not a {len(str(value))}-digit number") from None
    return value


def positive_float(text):
    value = _float(text)
    if not (value > 0 and value < float("inf")):
        raise _invalid(f"must be a positive finite number, not {text}")
    return value


def temperature(text):
    """--temperature: the logits are multiplied by its inverse, which must be finite."""
    value = positive_float(text)
    try:
        value ** -1
    except OverflowError:
        raise _invalid(f"too small: its inverse overflows (the smallest is about "
                       f"{1 / sys.float_info.max:.2g}), not {text}") from None
    return value


def integer(text):
    """--seed: any integer, as random.seed takes (a negative one seeds as its absolute value)."""
    return _int(text)


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
            raise _invalid(f"an integer of {len(digits)} digits; Python reads at most "
                           f"{sys.get_int_max_str_digits()}") from None
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise _invalid(f"not an integer: {shown!r}") from None


def _invalid(message):
    import argparse
    return argparse.ArgumentTypeError(message)


def new_parser(**kwargs):
    """An argparse.ArgumentParser whose usage errors are one line, and whose
    --help reports a failure to write."""
    from .errors import USAGE_ERROR
    import argparse

    class Parser(argparse.ArgumentParser):
        def print_help(self, file=None):
            # argparse's own would drop a write error silently, and exit 0
            if file is None:
                _print(self.format_help(), end="", flush=True)
            else:
                super().print_help(file)

        def error(self, message):
            # one line, without the usage argparse prints first: --help has it
            self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")

    return Parser(**kwargs)


def build_parser(prog=None):
    import argparse
    from .recipe import RECIPES

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
        parser.add_argument(flag, dest=field, default=argparse.SUPPRESS, metavar=metavar,
                            help=f"{help} (default: {default})", **kwargs)

    parser.add_argument("--recipe", choices=RECIPES, default=argparse.SUPPRESS,
                        help="which microgpt.py to be: " + "; ".join(
                            f"{name}, {recipe.summary}" for name, recipe in RECIPES.items())
                        + " (default: v1)")
    parser.add_argument("--input", metavar="FILE",
                        help="UTF-8 text file, one document per line; - reads standard input "
                             "(default: names.txt)")
    setting("--steps", "num_steps", "training steps, one document each", type=step_count,
            metavar="N")
    setting("--n-embd", "n_embd", "embedding width", type=positive_int)
    setting("--n-head", "n_head", "attention heads (must divide --n-embd)", type=positive_int)
    setting("--n-layer", "n_layer", "transformer blocks", type=positive_int)
    setting("--block-size", "block_size", "longest context, in tokens", type=positive_int)
    setting("--activation", "activation", "the MLP's activation: relu2 is relu(x) ** 2",
            choices=("relu2", "relu"))
    setting("--init-std", "init_std", "std of the random initial parameters",
            type=non_negative_float, metavar="STD")
    setting("--zero-init-proj", "zero_init_proj", "start attn_wo and mlp_fc2 at 0",
            action=argparse.BooleanOptionalAction)
    setting("--lr", "learning_rate", "Adam learning rate, decayed to 0 over the steps",
            type=positive_float)
    setting("--lr-schedule", "lr_schedule", "how the learning rate decays",
            choices=("cosine", "linear"))
    setting("--beta1", "beta1", "Adam's decay rate of the mean gradient", type=decay_rate)
    setting("--beta2", "beta2", "Adam's decay rate of the mean squared gradient",
            type=decay_rate)
    setting("--eps", "eps_adam", "Adam's epsilon", type=positive_float)
    setting("--seed", "seed", "seed of the random generator (shuffle, parameters, samples)",
            type=integer)
    setting("--samples", "num_samples", "documents to sample after training",
            type=non_negative_int, metavar="N")
    setting("--temperature", "temperature", "sampling temperature", type=temperature,
            metavar="T")
    parser.add_argument("--exact", action="store_true",
                        help="train on microgpt.py's graph of scalar Values instead of the "
                             "fused operations (the same numbers, much slower)")
    parser.add_argument("--threads", metavar="N", type=thread_count, default=1,
                        help="run the fast path's matrix kernels (linear layers, attention, "
                             "Adam) on N threads when a model is big enough to gain from it; "
                             "the numbers are the same for any N (default: 1)")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="run even when the estimate of the memory the run needs "
                             "exceeds what is available")
    parser.add_argument("--save", metavar="PATH",
                        help="write a checkpoint (safetensors) to PATH after training, "
                             "before sampling; on Ctrl-C, of the last completed step")
    parser.add_argument("--save-every", metavar="N", type=positive_int,
                        help="with --save: also every N steps")
    parser.add_argument("--log", metavar="PATH",
                        help="write the run's log to PATH as JSON Lines: a record per step "
                             "(loss, learning rate, gradient norm, time) and one with the "
                             "samples; what the run prints does not change")
    parser.add_argument("--val-docs", metavar="N", type=non_negative_int, default=0,
                        help="hold the last N of the shuffled documents out of training and "
                             "log their mean loss (--log); the run then differs from "
                             "microgpt.py's from the step that would have trained on one "
                             "of them (default: 0)")
    parser.add_argument("--eval-every", metavar="K", type=positive_int,
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
    from .recipe import RECIPES, Recipe
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
    from .errors import ResumeError, shortened
    from .recipe import Recipe
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
    from . import BACKEND, random   # noqa: F401 (the compiled modules, before any output)
    from .errors import INTERRUPTED
    from .run import Run

    path = "fused" if not args.exact and BACKEND == "compiled" else BACKEND
    if path == "fused" and args.threads > 1:
        from .fused import set_threads
        set_threads(args.threads)
    ck, text = preflight(recipe, args, parser, path)
    if ck is not None:
        run = Run.resume(ck, text, exact=args.exact)
    else:
        _print(f"num docs: {len(text.docs)}")
        _print(f"vocab size: {len(text.characters) + 1}")
        run = Run(text, recipe, exact=args.exact, val_docs=args.val_docs)
        _print(f"num params: {run.model.num_params}")
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
    from .errors import DataError, OutputError, PathError
    from .data import load_text, names_path
    if sys.stdout is None:
        raise OutputError("cannot write the output: standard output is closed")
    if args.inspect is not None and args.report is None:
        raise PathError("--inspect needs --report PATH")
    if args.report is not None:
        need_matplotlib()
    ck = None
    if args.resume is not None:
        from .checkpoint import load
        ck = load(args.resume)
        contradictions(args, parser, ck, args.resume)
        recipe = ck.recipe
    outputs = {"the checkpoint": args.save, "the log": args.log, "the report": args.report}
    check_outputs({what: where for what, where in outputs.items() if where is not None},
                  args.input)
    check = not args.no_memory_check
    if check:       # before the data, with the smallest vocabulary: no reading for nothing
        check_memory(recipe.config(2), path, 1, recipe.num_steps, recipe.num_samples,
                     at_least=True)
    if args.input is not None:
        text = load_text(args.input)
    elif ck is not None:
        from .run import checkpoint_text
        text = checkpoint_text(ck)
    else:
        text = load_text(names_path())
    if check:
        check_memory(recipe.config(len(text.characters) + 1), path,
                     max(map(len, text.docs)) + 1, recipe.num_steps, recipe.num_samples)
    if args.inspect is not None:
        check_vocabulary("--inspect", args.inspect, text.characters, text.name)
    if args.val_docs >= len(text.docs):
        raise DataError(f"--val-docs {args.val_docs} leaves no documents to train on "
                        f"({text.name} has {len(text.docs)})")
    return ck, text


def check_outputs(outputs, input=None):
    """Refuse now each path a run would write to that it could not, or should
    not: {"the log": path, ...}. Two outputs in one file, or an output in
    place of the input, would lose one of them."""
    from .errors import PathError, WriteError
    from .files import check_writable, same_file
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
    from .errors import PathError
    try:
        import matplotlib  # noqa: F401 (the report's figures; imported only for a report)
    except ImportError:
        raise PathError("--report needs matplotlib, which is not installed: pip install "
                        "'microgpt[report]' (or pip install matplotlib)") from None


def check_vocabulary(flag, word, characters, where):
    """Refuse a word with characters that are not in the vocabulary."""
    from .errors import DataError, quoted
    unknown = sorted(set(word) - set(characters))
    if unknown:
        raise DataError(f"{flag} {quoted(word)}: {', '.join(map(repr, unknown[:5]))}"
                        f"{', ...' if len(unknown) > 5 else ''} not in the vocabulary of "
                        f"{where}")


def write_report(path, model, records, inspect):
    """Make the HTML report and write it to path (atomically)."""
    from .errors import OutputError, WriteError
    from .viz import report, save
    page = report(model, records, inspect)
    try:
        save(path, page)
    except WriteError as exc:
        raise OutputError(f"cannot write the report: {exc}") from None


def _open_log(path, run, computation, keep=False):
    """The --log file (path None: none), begun with the run's settings; with
    keep, its records kept in memory for the report."""
    from .errors import PathError
    from . import __version__
    from .runlog import RunLog
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
        self.log, self.start = log, None

    def write(self, kind, **fields):
        import time
        if self.start is None:
            self.start = time.perf_counter()
        if kind != "start":
            fields["elapsed"] = time.perf_counter() - self.start
        from .errors import OutputError
        try:
            self.log.write(kind, **fields)
        except OSError as exc:
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
    step it was in, which is then saved)."""
    from .errors import TrainingError, why
    recipe, num_steps, save = run.recipe, run.num_steps, args.save
    every = args.eval_every or 100

    def evaluate():
        try:
            return run.evaluate()
        except (ArithmeticError, ValueError) as exc:
            raise TrainingError(f"evaluating the held-out documents failed after step "
                                f"{run.step}: {why(exc)}") from None
    stop = []
    handler = _catch_interrupt(stop) if save is not None else None
    try:
        if log is not None and run.val_docs:
            log.write("eval", step=run.step, val_loss=evaluate())
        for step in run.steps(observe=log is not None):
            if log is not None:     # first: a step printed is a step logged
                log.write("step", step=step.step, loss=step.loss, lr=step.lr,
                          grad_norm=step.grad_norm,
                          rms={name: [data, grad] for name, data, grad in step.matrix_rms})
            _print(f"step {run.step:4d} / {num_steps:4d} | loss {step.loss:.4f}",
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
    finally:
        if handler is not None:
            import signal
            signal.signal(signal.SIGINT, handler)
    if run.val_docs and log is None:
        loss = evaluate()
        _stderr(f"held-out loss after step {run.step} ({len(run.val_docs)} documents): "
                f"{loss:.4f}")
    if stop:
        _stderr(f"\n{prog}: interrupted after step {run.step} of {num_steps}; saved it "
                f"in {save} (carry on with --resume {save})")
        return False
    return True


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
    _print("\n" + recipe.inference_header)
    samples = []
    for sample_idx, text in enumerate(model.samples()):
        _print(f"sample {sample_idx+1:2d}: {text}")
        samples.append(text)
    _flush()
    return samples


def check_memory(config, path, positions, steps, samples, at_least=False):
    """Raise NotEnoughMemory if the run's estimate exceeds what is available."""
    from .errors import NotEnoughMemory
    from . import memory
    have = memory.available()
    if have is None:                # nothing to go by (not Linux): do not refuse
        return
    need = memory.needed(config, path, positions, steps, samples)
    if need.total > have.total:
        raise NotEnoughMemory(
            f"this run needs {'at least' if at_least else 'about'} "
            f"{memory.format_bytes(need.total)} of memory ({need.describe()}); "
            f"{have.describe()}")
