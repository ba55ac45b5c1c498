"""Mutation testing: does the test suite notice a realistic mistake?

Each mutant below is one small change of the kind that breaks exactness
without breaking anything loudly -- a sum reassociated, a loop run the other
way, a pow() replaced by a product, a comparison loosened, a reset left out.
For each, the tool copies the project, applies the change, rebuilds what it
touches, and runs the test suite (stopping at the first failure). A mutant
is killed when the suite fails (or crashes, or hangs); one that survives
marks a missing test. Mutants known to compute the same results (equivalent)
are listed with the reason and left out of the rate.

    python tests/tools/mutants.py                 # all mutants, then the kill rate
    python tests/tools/mutants.py --list
    python tests/tools/mutants.py --only adam_bias1 relu_at_zero
    python tests/tools/mutants.py --root ../old-checkout --tests tests

It needs what building needs in the running environment (Cython 3,
setuptools >= 77, numpy), and microgpt installed there with its test
extra (`pip install '.[test]'`): some tests run the `microgpt-train`
script beside the interpreter, which then imports the mutated copy (the
tool puts it first on PYTHONPATH). The tests' data is in the project
(tests/data). A full run takes about half an hour on two cores.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (name, file, original text, mutated text, what it gets wrong)
MUTANTS = [
    # csrc/fused.c: the fused kernels
    ("softmax_backward_reassociated", "csrc/fused.c",
     "dx[t * n + i] += scale * (e[i] * de[i]);", "dx[t * n + i] += (scale * e[i]) * de[i];",
     "softmax's gradient through exp and the temperature, reassociated"),
    ("softmax_total_gradient_forward", "csrc/fused.c",
     "for (i = n - 1; i >= 0; i--)\n        dtotal +=", "for (i = 0; i < n; i++)\n        dtotal +=",
     "the softmax total's gradient summed first to last"),
    ("linear_portable_sum_reversed", "csrc/fused.c",
     "for (j = 0; j < nin; j++)\n                a = a + wi[j] * xt[j];",
     "for (j = nin - 1; j >= 0; j--)\n                a = a + wi[j] * xt[j];",
     "a dot product of the portable linear kernel summed backwards"),
    ("linear_weight_gradient_forward", "csrc/fused.c",
     "for (t = rows - 1; t >= 0; t--) {   /* the last position first */",
     "for (t = 0; t < rows; t++) {   /* the last position first */",
     "a weight's gradient added from the first position"),
    ("linear_input_gradient_order", "csrc/fused.c",
     "last ? last_after_the_others(k, nout, last[t]) : nout - 1 - k;",
     "last ? last_after_the_others(k, nout, last[t]) : k;",
     "an input's gradient added first output first"),
    ("rmsnorm_divides", "csrc/fused.c",
     "ms = ms * inverse_n;", "ms = ms / (double)n;",
     "rmsnorm's mean as a division instead of times len(x) ** -1"),
    ("rmsnorm_backward_reassociated", "csrc/fused.c",
     "dsum = inverse_n * ((-0.5 * power) * dscale);", "dsum = (inverse_n * (-0.5 * power)) * dscale;",
     "rmsnorm's gradient reassociated"),
    ("relu_squared_as_a_product", "csrc/fused.c",
     "y[i] = pyfloat_square(x[i] > 0 ? x[i] : 0.0);", "y[i] = (x[i] > 0 ? x[i] * x[i] : 0.0);",
     "relu ** 2 as a product, not pow"),
    ("relu_backward_skips_zero_gradients", "csrc/fused.c",
     "dx[i] += (x[i] > 0 ? 1.0 : 0.0) * dy[i];", "if (x[i] > 0) dx[i] += dy[i];",
     "relu's gradient leaves out 0.0 * dy (NaN for an infinite dy)"),
    ("relu_passes_negative_zero", "csrc/fused.c",
     "y[i] = x[i] > 0 ? x[i] : 0.0;", "y[i] = x[i] >= 0 ? x[i] : 0.0;",
     "relu(-0.0) is -0.0, where max(0, -0.0) is 0"),
    ("relu_squared_backward_reassociated", "csrc/fused.c",
     "dx[i] += (2.0 * x[i]) * dy[i];", "dx[i] += 2.0 * (x[i] * dy[i]);",
     "relu ** 2's gradient reassociated"),
    ("attention_weights_reassociated", "csrc/fused.c",
     "sum = sum + (e[s] * *inverse) * v[s][hs + j];", "sum = sum + e[s] * (*inverse * v[s][hs + j]);",
     "attention's weighted sum reassociated"),
    ("attention_backward_keys_forward", "csrc/fused.c",
     "for (s = n - 1; s >= 0; s--) {\n                const double dlogit",
     "for (s = 0; s < n; s++) {\n                const double dlogit",
     "queries' gradients added first key first"),
    ("attention_visit_order_position_0", "csrc/fused.c",
     "if (p == 0) {", "if (p == -1) {",
     "position 0's queries and keys finished like the others'"),
    ("cross_entropy_divides", "csrc/fused.c",
     "*loss = (1.0 / (double)rows) * total;", "*loss = total / (double)rows;",
     "the mean loss as a division instead of (1 / n) * sum"),
    ("cross_entropy_backward_reassociated", "csrc/fused.c",
     "(1.0 / (e[targets[t]] * inverse)) * (-1.0 * dloss_t)",
     "-1.0 * dloss_t / (e[targets[t]] * inverse)",
     "the loss's gradient reaching the target probability, reassociated"),
    ("cross_entropy_visit_order_natural", "src/microgpt/_fused_ops.pxi",
     "    if logits._op == LINEAR and logits._last == NULL:", "    if False:",
     "the logits finished in their own order, not the target's first"),
    ("cross_entropy_target_twice", "csrc/kernels_template.h",
     "#define NOT_FINAL(r) (k != final[r])", "#define NOT_FINAL(r) 1",
     "the vector kernels add the target's gradient in order as well as after the others"),
    ("adam_bias1", "csrc/adam.c",
     "m_hat = *m / bias1;", "m_hat = *m * (1.0 / bias1);",
     "the portable Adam's m_hat times an inverse"),
    ("adam_portable_bias1", "csrc/adam.c",
     "STORE2(square + (i - start), mi / bias1);", "STORE2(square + (i - start), mi * (1.0 / bias1));",
     "the portable vector Adam's m_hat times an inverse"),
    ("adam_portable_square_without_pow", "csrc/adam.c",
     "< ulp2(sq, PYFLOAT_NEAR_HALF * 0x1p-52)),", "< ulp2(sq, 0.5 * 0x1p-52)),",
     "the portable vector Adam trusts g * g even halfway between two doubles"),
    ("adam_portable_roots_not_asked", "csrc/adam.c",
     "pyfloat_pow(v[start + listed[k]] / bias2, 0.5, &root[listed[k]]));", "PYFLOAT_OK);",
     "the portable vector Adam's listed roots left as sqrt's, pow never asked"),
    ("adam_vector_bias1", "csrc/adam_avx2.c",
     "    return _mm256_fnmadd_pd(_mm256_fmsub_pd(q1, b, a), y, q1);", "    (void)q1;\n    return q0;",
     "the vector Adam's m_hat and v_hat as the moments times an inverse, uncorrected"),
    ("adam_vector_division_loses_zero_sign", "csrc/adam_avx2.c",
     "    return _mm256_fnmadd_pd(_mm256_fmsub_pd(q1, b, a), y, q1);",
     "    return _mm256_fmadd_pd(_mm256_fnmadd_pd(q1, b, a), y, q1);",
     "the vector Adam's last correction as q + (a - q b) y: m / bias1 of -0.0 as +0.0"),
    ("adam_vector_moments_out_of_range_kept", "csrc/adam_avx2.c",
     "    if (_mm256_movemask_pd(h->in_range) != 15)", "    if (0)",
     "the vector Adam's quotients of moments too small for their remainders kept"),
    ("adam_vector_square_without_pow", "csrc/adam_avx2.c",
     "_mm256_storeu_pd(square + j, sq);\n    oks[j / 4] = (unsigned char)_mm256_movemask_pd(ok);",
     "_mm256_storeu_pd(square + j, sq);\n    oks[j / 4] = 15;",
     "the vector Adam's p.grad ** 2 as a product, never pow"),
    # csrc/kernels_template.h: the vector kernels in tiles (AVX2 and AVX-512)
    ("tiles_dot_reversed", "csrc/kernels_template.h",
     "j = reverse ? len - 1 - n : n;", "j = reverse ? n : len - 1 - n;",
     "the tiles' dot products (linear, attention logits) summed the other way"),
    ("tiles_product_reassociated", "csrc/kernels_template.h",
     "acc[r][v] = acc[r][v] + wv[v] * s;", "acc[r][v] = acc[r][v] + wv[v] * (s * 1.0000000000000002);",
     "a tile's products off by an ulp (a stand-in for any changed operand)"),
    ("tiles_weight_gradient_forward", "csrc/kernels_template.h",
     "for (t = t_end - 1; t >= t_start && (gt = dys + t * dy_stride, 1); t--),",
     "for (t = t_start; t < t_end && (gt = dys + t * dy_stride, 1); t++),",
     "the tiles' weight gradients added from the first position"),
    ("tiles_weight_blocks_overlap", "csrc/kernels_template.h",
     "end > block ? end - block : 0, nin,", "end > block ? end - block - 1 : 0, nin,",
     "a block of a weight's gradient takes the first term of the next (added twice)"),
    ("tiles_input_gradient_forward", "csrc/kernels_template.h",
     "for (k = k_start; k < k_end; k++), ws[k] + j0, G, ALWAYS,",
     "for (k = k_end - 1; k >= k_start; k--), ws[k] + j0, G, ALWAYS,",
     "the tiles' input gradients added in the reverse of their order"),
    ("tiles_rows_past_their_last_position", "csrc/kernels_template.h",
     "#define LIVE(r) (s < n[r])", "#define LIVE(r) (s < n[MR - 1])",
     "a tile's rows all summed to its last row's length (terms a row never has)"),
    ("tiles_keys_from_rows_before_them", "csrc/kernels_template.h",
     "#define LIVE(i) (r >= lowest[i])", "#define LIVE(i) (r >= lowest[0])",
     "keys' and values' gradients from rows that do not attend to them (+ 0.0 terms)"),
    ("tiles_relu_squared_without_pow", "csrc/kernels_template.h",
     "(abs_error < PYFLOAT_NEAR_HALF * ulp));", "(abs_error < 0.5 * ulp));",
     "the vector relu ** 2 trusts the product even halfway between two doubles"),
    ("tiles_attention_logit_gradient_reassociated", "csrc/kernels_template.h",
     "d[s] = scale * (e[s] * de[s]);", "d[s] = (scale * e[s]) * de[s];",
     "the tiles' attention logit gradients reassociated"),
    ("threads_share_overlaps", "csrc/threads.c",
     "*end = units * (part + 1) / parts * unit;", "*end = units * (part + 2) / parts * unit;",
     "a thread's share runs into the next one's (outputs added twice)"),
    ("adam_vector_roots_not_asked", "csrc/adam_avx2.c",
     "pyfloat_pow(v[h->start + listed[k]] / bias2, 0.5, &h->root[listed[k]]));", "PYFLOAT_OK);",
     "the vector Adam's listed roots left as sqrt's, pow never asked"),
    ("adam_vector_later_chunks_range_unkept", "csrc/adam_avx2.c",
     "        next->in_range = in_range;\n", "",
     "the vector Adam's quotients of moments out of range kept in every chunk but the first"),
    ("adam_errors_unreported", "csrc/adam.c",
     "    return first.status;", "    return PYFLOAT_OK;",
     "Adam goes on with an overflowing square's inf where microgpt.py's Adam raises"),
    ("adam_list_lanes_of_four", "csrc/adam.h",
     "listed[count++] = (k + bit / 8) * lanes + bit % 8;",
     "listed[count++] = (k + bit / 8) * lanes + bit % 4;",
     "the lanes for pow listed as if every vector had four (AVX-512's last four lanes wrong)"),
    ("adam_avx512_roots_not_asked", "csrc/adam_avx512.c",
     "pyfloat_pow(v[start + listed[k]] / bias2, 0.5, &root[listed[k]]));", "PYFLOAT_OK);",
     "the AVX-512 Adam's listed roots left as sqrt's, pow never asked"),
    ("adam_avx512_moments_out_of_range_kept", "csrc/adam_avx512.c",
     "        if (in_range != 0xff)", "        if (0)",
     "the AVX-512 Adam's quotients of moments too small for their remainders kept"),
    ("adam_avx512_square_without_pow", "csrc/adam_avx512.c",
     "ok |= _mm512_cmp_pd_mask(gi, zero, _CMP_EQ_OQ);", "ok = 0xff;",
     "the AVX-512 Adam's p.grad ** 2 as a product, never pow"),
    ("adam_avx512_division_loses_zero_sign", "csrc/adam_avx512.c",
     "    return _mm512_fnmadd_pd(_mm512_fmsub_pd(q1, b, a), y, q1);",
     "    return _mm512_fmadd_pd(_mm512_fnmadd_pd(q1, b, a), y, q1);",
     "the AVX-512 Adam's last correction as q + (a - q b) y: m / bias1 of -0.0 as +0.0"),
    ("adam_avx512_bias1", "csrc/adam_avx512.c",
     "    return _mm512_fnmadd_pd(_mm512_fmsub_pd(q1, b, a), y, q1);", "    (void)q1;\n    return q0;",
     "the AVX-512 Adam's m_hat and v_hat as the moments times an inverse, uncorrected"),
    # csrc/pyfloat.h: Python's float semantics
    ("square_without_pow", "csrc/pyfloat.h",
     "    pyfloat_pow(x, 2.0, &r);\n    return r;", "    (void)r;\n    return p;",
     "x ** 2 as x * x, always"),
    ("root_without_pow", "csrc/pyfloat.h",
     "    pyfloat_pow(x, 0.5, &r);\n    return r;", "    (void)r;\n    return c;",
     "x ** 0.5 as sqrt(x), always"),
    ("corrected_powers_without_pow", "csrc/pyfloat.h",
     "if (fabs(d) < PYFLOAT_NEAR_HALF * pyfloat_ulp(fabs(r) * (1.0 - 0x1p-52))) {",
     "if (fabs(d) <= 0.5 * pyfloat_ulp(fabs(r) * (1.0 - 0x1p-52))) {",
     "x ** -1, -2, -0.5 and -1.5 as the nearest double, always"),
    ("reciprocal_as_a_division", "csrc/pyfloat.h",
     "    return pyfloat_corrected(q, pyfloat_one_minus_product(q, x), x, -1.0, out);",
     "    *out = q;\n    return PYFLOAT_OK;",
     "x ** -1 as 1 / x, always"),
    ("reciprocal_square_uncorrected", "csrc/pyfloat.h",
     "- q * pyfloat_square_error(x, p),", ",",
     "x ** -2 corrected for 1 / p only, not for p's rounding of x * x"),
    ("reciprocal_root_half_correction_lost", "csrc/pyfloat.h",
     "                                * 0.5, x, -0.5, out);", "                                , x, -0.5, out);",
     "x ** -0.5 corrected by q e instead of q e / 2"),
    ("reciprocal_root_cubed_uncorrected", "csrc/pyfloat.h",
     "- pyfloat_square_error(q, a) * u) * 0.5, x, -1.5, out);", ") * 0.5, x, -1.5, out);",
     "x ** -1.5 corrected without q ** 2's rounding"),
    ("pow_negative_zero", "csrc/pyfloat.h",
     "*out = pyfloat_is_odd_integer(y) ? x : 0.0;", "*out = 0.0;",
     "(-0.0) ** odd loses its sign"),
    ("embedding_backward_forward", "src/microgpt/_fused_graph.pxi",
     "for i in range(t.rows - 1, -1, -1):    # a row used twice: the last position first",
     "for i in range(t.rows):    # a row used twice: the last position first",
     "a table row used twice gets its gradients first position first"),
    ("backward_gradients_not_zeroed", "src/microgpt/_fused_tensor.pxi",
     "                _zero_unset_grads_of_inputs(<Tensor>topo[i])\n", "",
     "gradients summed onto the memory they were given, not onto zeros"),
    # src/microgpt/_engine.pyx: the compiled Value
    ("relu_at_zero", "src/microgpt/_engine.pyx",
     "1.0 if self.data > 0 else 0.0)", "1.0 if self.data >= 0 else 0.0)",
     "relu's local gradient 1 at zero"),
    ("topological_order_second_child_first", "src/microgpt/_engine.pyx",
     "child = _child(top.node, top.next_child)",
     "child = _child(top.node, top.nchildren - 1 - top.next_child)",
     "the search visits children last first"),
    ("division_by_a_number_as_one_over", "src/microgpt/_engine.pyx",
     "status = pyfloat_pow(other, -1.0, &inverse)", "inverse = 1.0 / other; status = PYFLOAT_OK",
     "x / c as x * (1 / c) instead of x * c ** -1"),
    # the Python layer
    ("scalar_rmsnorm_root", "src/microgpt/model.py",
     "scale = (ms + 1e-5) ** -0.5", "scale = 1 / (ms + 1e-5) ** 0.5",
     "the scalar rmsnorm's scale as one over a root"),
    ("cosine_schedule_reassociated", "src/microgpt/train.py",
     "math.cos(math.pi * step / num_steps)", "math.cos(step / num_steps * math.pi)",
     "the learning rate's cosine of a reassociated product"),
    ("linear_schedule_as_one_fraction", "src/microgpt/train.py",
     "learning_rate * (1 - step / num_steps)", "learning_rate * ((num_steps - step) / num_steps)",
     "the final revision's linear decay as one fraction"),
    ("scalar_adam_reassociated", "src/microgpt/train.py",
     "p.data -= lr_t * m_hat / (v_hat ** 0.5 + eps_adam)", "p.data -= lr_t * (m_hat / (v_hat ** 0.5 + eps_adam))",
     "the scalar Adam's update reassociated"),
    ("scalar_temperature_as_product", "src/microgpt/model.py",
     "probs = softmax([l / temperature for l in logits])", "probs = softmax([l * (1 / temperature) for l in logits])",
     "the scalar sampling divides by the temperature as a product with 1 / t"),
    ("fused_temperature_as_product", "src/microgpt/_fused_ops.pxi",
     "_check(pyfloat_pow(temperature, -1.0, &out._scale))", "out._scale = 1.0 / temperature",
     "the fused softmax's temperature as 1 / t instead of t ** -1"),
    ("documents_split_on_any_line_break", "src/microgpt/data.py",
     "text.strip().split('\\n')", "text.strip().splitlines()",
     "documents split at \\u2028, \\x0c and the like, as microgpt.py does not"),
    # the generator
    ("seed_keeps_pending_gauss", "src/microgpt/_random.pyx",
     "        self._seed(a)\n        self._set_gauss_next(None)", "        self._seed(a)",
     "seed() keeps the second value of a gauss pair"),
    ("randbelow_accepts_n", "csrc/mt19937.h",
     "while (r >= n)\n        r = mt19937_next_bits64(state, k);",
     "while (r > n)\n        r = mt19937_next_bits64(state, k);",
     "_randbelow(n) can return n"),
    ("gauss_pair_swapped", "src/microgpt/_random.pyx",
     "second[0] = sin(x2pi) * g2rad\n        return cos(x2pi) * g2rad",
     "second[0] = cos(x2pi) * g2rad\n        return sin(x2pi) * g2rad",
     "gauss returns the pair's second value first"),
]

# Mutants that compute the same results as the original, with the reason.
EQUIVALENT = {
    "tiles_keys_from_rows_before_them":
        "the extra terms are exactly 0.0 (a row's weights and logit gradients past its "
        "position are 0.0) times a finite gradient: + 0.0 leaves every sum as it is, which "
        "started at +0.0; only an infinite gradient into attention with a finite loss "
        "would show them",
    "relu_squared_backward_reassociated":
        "a factor of 2 is exact: (2 x) g and 2 (x g) differ only by overflow or underflow",
    "attention_visit_order_position_0":
        "at position 0 the softmax is over one logit, whose gradient is exactly 0 "
        "(de = dp - dp): the queries' and keys' gradients there are zeros, in any order",
}

# The extension each file is compiled into; a header rebuilds all that include it.
EXTENSIONS = {
    "csrc/fused.c": ["_fused"], "csrc/fused.h": ["_fused"], "csrc/kernels_template.h": ["_fused"],
    "csrc/adam.c": ["_fused"], "csrc/adam_avx2.c": ["_fused"], "csrc/adam_avx512.c": ["_fused"],
    "csrc/adam.h": ["_fused"],
    "csrc/cpu.c": ["_fused"], "csrc/cpu.h": ["_fused"],
    "csrc/threads.c": ["_fused"], "csrc/threads.h": ["_fused"],
    "csrc/pyfloat.h": ["_engine", "_fused"],
    "csrc/mt19937.c": ["_random"], "csrc/mt19937.h": ["_random"],
    "src/microgpt/_engine.pyx": ["_engine"], "src/microgpt/_fused.pyx": ["_fused"],
    **{f"src/microgpt/_fused_{part}.pxi": ["_fused"]
       for part in ("memory", "tensor", "graph", "ops", "parameters")},
    "src/microgpt/_cfused.pxd": ["_fused"],
    "src/microgpt/_random.pyx": ["_random"],
}


def copy_project(root, work):
    """The project's files, without its builds, into work (which exists)."""
    shutil.copytree(root, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.so", "_*.c", "build", "*.egg-info", ".hypothesis",
        ".pytest_cache", "results"))


def build(work, force=()):
    """Build the extensions in place; force: those to compile again."""
    for name in force:
        for path in (work / "src" / "microgpt").glob(f"{name}.*.so"):
            path.unlink()
        for path in (work / "src" / "microgpt").glob(f"{name}.c"):
            path.unlink()
        shutil.rmtree(work / "build", ignore_errors=True)
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=work,
                          capture_output=True, text=True)


def run_tests(work, tests, timeout):
    env = dict(os.environ, PYTHONPATH=str(work / "src"), PYTHONDONTWRITEBYTECODE="1")
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                              *tests], cwd=work, env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timed out)"
    if run.returncode == 0:
        return "survived"
    if run.returncode < 0:
        return f"killed (crashed: signal {-run.returncode})"
    failed = [line for line in run.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return "killed" + (f" ({failed[0].split(' - ')[0]})" if failed else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project to mutate (default: this one)")
    parser.add_argument("--tests", nargs="*", default=["tests"], help="what pytest runs")
    parser.add_argument("--only", nargs="*", help="mutant names")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run counts as hung")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m[0] in args.only]
    if args.list:
        for name, path, _, _, what in mutants:
            print(f"{name:40s} {path:28s} {what}")
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="microgpt-mutants-") as tmp:
        work = Path(tmp)
        copy_project(args.root.resolve(), work)
        first = build(work)
        if first.returncode:
            print(first.stderr[-2000:], file=sys.stderr)
            return 1
        baseline = run_tests(work, args.tests, args.timeout)
        if baseline != "survived":
            print(f"the unmutated project fails its tests: {baseline}", file=sys.stderr)
            return 1
        for name, path, old, new, what in mutants:
            source = work / path
            text = source.read_text()
            if text.count(old) != 1:
                results[name] = "not applicable (the text is not in this version)"
                print(f"{name:40s} {results[name]}", flush=True)
                continue
            started = time.perf_counter()
            source.write_text(text.replace(old, new))
            try:
                extensions = EXTENSIONS.get(path, [])
                built = build(work, force=extensions if path.endswith(".h") else ())
                if built.returncode:
                    results[name] = "not applicable (does not compile)"
                else:
                    results[name] = run_tests(work, args.tests, args.timeout)
            finally:
                source.write_text(text)
                if path.endswith(".h"):
                    build(work, force=EXTENSIONS[path])
            print(f"{name:40s} {results[name]}  [{time.perf_counter() - started:.0f} s]", flush=True)
    counted = [n for n, r in results.items() if not r.startswith("not applicable") and n not in EQUIVALENT]
    killed = [n for n in counted if results[n].startswith("killed")]
    print(f"\nkilled {len(killed)} of {len(counted)} non-equivalent mutants "
          f"({100 * len(killed) / max(len(counted), 1):.0f}%)")
    for name in counted:
        if name not in killed:
            print(f"  survived: {name}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
