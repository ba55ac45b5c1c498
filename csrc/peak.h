/*
 * A probe of the CPU's peak rate of separate double-precision multiplies and
 * adds: the operations microgpt's kernels may use (-ffp-contract=off keeps
 * every a + x * m two roundings, so never a fused multiply-add).
 *
 * Each iteration of the probe updates PEAK_ACCUMULATORS independent sums
 * a_i = a_i + x_i * m, as a dot product does: the products do not depend on
 * the sums, so only the adds form dependency chains, and twelve of them are
 * enough to keep every adder of a current CPU busy. An iteration is
 * PEAK_ACCUMULATORS * peak_lanes(isa) multiplies and as many adds.
 *
 * Plain C, no Python.h.
 */
#ifndef MICROGPT_PEAK_H
#define MICROGPT_PEAK_H

#include <stdint.h>

#define PEAK_ACCUMULATORS 12

/* The instruction sets the probe is written for. */
enum {
    PEAK_PORTABLE,      /* plain C doubles, as the build compiles them; any compiler */
    PEAK_AVX2,          /* 256-bit registers, 4 doubles (x86-64, GCC or clang) */
    PEAK_AVX512,        /* 512-bit registers, 8 doubles (x86-64, GCC or clang) */
    PEAK_ISAS
};

/* 1 if this build and this CPU can run the probe for isa, else 0 (also for
   an isa out of range). */
int peak_supported(int isa);

/* Doubles per register for isa: 1, 4 or 8 (0 for an isa out of range). */
int peak_lanes(int isa);

/* Run `iterations` iterations of the probe for isa, which must be one
   peak_supported() accepts (otherwise nothing is run). */
void peak_mul_add(int isa, uint64_t iterations);

#endif
