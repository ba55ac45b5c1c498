#!/usr/bin/env bash
# The fused kernels on aarch64, under qemu-user: kernels_check.c built with
# Debian's cross compiler, run with the plain C loops and with the portable
# vector kernels (NEON there), and natively with every instruction set this
# CPU has. Every line must show the same hash: the same bits on both
# architectures and with every kernel.
#
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#   bash tests/tools/cross_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sources="tests/tools/kernels_check.c csrc/fused.c csrc/adam.c csrc/adam_avx2.c csrc/adam_avx512.c csrc/cpu.c csrc/threads.c"
flags="-O3 -ffp-contract=off -fno-builtin-pow -fno-builtin-sin -fno-builtin-cos -Wall -Wextra -Werror -Icsrc"
gcc $flags $sources -lm -pthread -o "$work/native"
aarch64-linux-gnu-gcc $flags $sources -lm -pthread -o "$work/aarch64"
hashes=""
for isa in plain portable avx2 avx512; do
    line="$(MICROGPT_KERNELS=$isa "$work/native")"
    echo "x86-64 ($isa asked): $line"
    hashes="$hashes ${line##* }"
done
for isa in plain portable; do
    line="$(MICROGPT_KERNELS=$isa qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/aarch64")"
    echo "aarch64 ($isa asked): $line"
    hashes="$hashes ${line##* }"
done
if [ "$(echo $hashes | tr ' ' '\n' | sort -u | wc -l)" != 1 ]; then
    echo "cross_check.sh: the kernels differ" >&2
    exit 1
fi
echo "the same bits everywhere"
