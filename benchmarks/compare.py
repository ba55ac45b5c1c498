"""Compare benchmark result files: one row per benchmark, one column per file.

    python benchmarks/compare.py results/compiled.json results/python.json [more.json ...]

Each file is the JSON of `python -m microgpt.benchmark` or of a microgpt port
in another language (the same schema), labelled by its file name. A cell is the benchmark's median
time_ms in that file, from the entry of the file's own backend when a file
holds several; the last columns give each file's time over the first file's.
The table is printed as Markdown.
"""
import json
import sys
from pathlib import Path


def load(path):
    """The file's label (its name), its report, and its time_ms by benchmark."""
    report = json.loads(Path(path).read_text())
    label = Path(path).stem
    times = {}
    for entry in report["benchmarks"]:
        own = entry.get("backend", report.get("backend")) == report.get("backend")
        if entry["name"] not in times or own:
            times[entry["name"]] = entry["time_ms"]
    return label, report, times


def ms(value):
    if value is None:
        return ""
    return f"{value:,.1f}" if value >= 100 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def table(files):
    loaded = [load(path) for path in files]
    names = []
    for _, _, times in loaded:
        names += [name for name in times if name not in names]
    first_label = loaded[0][0]
    header = ["benchmark"] + [f"{label} ms" for label, _, _ in loaded]
    header += [f"{label} / {first_label}" for label, _, _ in loaded[1:]]
    lines = ["| " + " | ".join(header) + " |",
             "|---|" + "---:|" * (len(header) - 1)]
    for name in names:
        cells = [ms(times.get(name)) for _, _, times in loaded]
        base = loaded[0][2].get(name)
        for _, _, times in loaded[1:]:
            other = times.get(name)
            cells.append(f"{other / base:.2g}x" if base and other else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [f"- {label}: {report.get('implementation', '?')} ({report.get('language', '?')}, "
             f"{report.get('backend', '?')}), {report.get('timestamp', '?')}, "
             f"{report.get('machine', {}).get('cpu', '?')}, "
             f"{report.get('machine', {}).get('cpus', '?')} CPUs, Python {report.get('version', '?')}"
             for label, report, _ in loaded]
    return "\n".join(lines + [""] + notes) + "\n"


def main(argv=None):
    files = (argv if argv is not None else sys.argv[1:])
    if not files:
        sys.exit(f"usage: python {sys.argv[0]} RESULT.json [RESULT.json ...]")
    try:
        sys.stdout.write(table(files))
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"compare.py: error: {exc}")


if __name__ == "__main__":
    main()
