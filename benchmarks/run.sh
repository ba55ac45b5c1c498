#!/usr/bin/env bash
# Run microgpt's benchmark harness once per backend (compiled, fused, python),
# into benchmarks/results/<backend>.json, and compare them in
# benchmarks/results/comparison.md. Extra arguments go to the harness
# (--quick, --only NAME ..., --input FILE). The pure-Python trainings take
# about seven minutes together.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python}"
mkdir -p "$here/results"

for backend in compiled fused python; do
    out="$here/results/$backend.json"
    "$python" -m microgpt.benchmark --backend "$backend" "$@" > "$out.part"
    if command -v jq > /dev/null; then
        jq empty "$out.part"
    else
        "$python" -m json.tool "$out.part" > /dev/null
    fi
    mv "$out.part" "$out"
    echo "wrote $out" >&2
done

"$python" "$here/compare.py" "$here/results/compiled.json" "$here/results/fused.json" \
    "$here/results/python.json" \
    > "$here/results/comparison.md.part"
mv "$here/results/comparison.md.part" "$here/results/comparison.md"
echo "wrote $here/results/comparison.md" >&2
