"""
microgpt-sample: new documents from a checkpoint.

    microgpt-sample m.safetensors                 # the samples the run printed
    microgpt-sample m.safetensors --prompt ma     # names beginning with "ma"

Without --seed the samples continue the checkpoint's random generator, so
after a finished `microgpt-train --save m.safetensors` the first ones are
exactly the `sample NN: ...` lines the run printed. With --seed they come
from a new generator seeded with it. --samples and --temperature default to
the checkpoint's recipe. Errors are one line on stderr, exit status 2 (as
microgpt-train's; see microgpt.errors).
"""
from .common import command, flush, new_parser, number, output, temperature


def build_parser(prog=None):
    parser = new_parser(
        prog=prog,
        description="Print new documents from a model saved by microgpt-train --save. "
                    "Without --seed they continue the run's random generator: after a "
                    "finished run, the samples it printed.",
        epilog="Exit status: 0 done, 2 a usage error or an unusable checkpoint, 1 the output "
               "could not be written, 130 interrupted.")
    parser.add_argument("checkpoint", metavar="PATH", help="a checkpoint (.safetensors)")
    parser.add_argument("--samples", metavar="N", type=number("count"),
                        help="how many (default: the run's, 20 for microgpt.py)")
    parser.add_argument("--temperature", metavar="T", type=temperature,
                        help="sampling temperature (default: the run's, 0.5 for microgpt.py)")
    parser.add_argument("--seed", type=number("any"),
                        help="seed a new generator (default: continue the checkpoint's)")
    parser.add_argument("--prompt", metavar="TEXT", default="",
                        help="the beginning of every sample (characters of the vocabulary)")
    parser.add_argument("--exact", action="store_true",
                        help="sample on microgpt.py's graph of scalar Values (the same numbers, "
                             "slower)")
    return parser


def main(argv=None):
    """The microgpt-sample command; returns the exit status."""
    return command("microgpt-sample", build_parser, sample, argv)


def sample(args, parser):
    """Print the samples args ask for."""
    from ..trained import load
    model = load(args.checkpoint, exact=args.exact)
    try:
        model.encode_prompt(args.prompt)
    except ValueError as exc:
        parser.error(f"--prompt: {exc}")
    count = model.recipe.num_samples if args.samples is None else args.samples
    for i, text in enumerate(model.samples(count, args.temperature, args.prompt, args.seed), 1):
        output(f"sample {i:2d}: {text}")
    flush()
    return 0
