/* The kernels' instruction set; cpu.h says how it is chosen. */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fused.h"

int kernel_isa(void)
{
    static int answer = -1;     /* the same answer on any thread: no lock needed */
    if (answer < 0) {
        const char *cap = getenv("MICROGPT_KERNELS"), *off = getenv("MICROGPT_DISABLE_AVX2");
        int isa = ISA_PLAIN;
#ifdef HAVE_VECTORS
        isa = ISA_PORTABLE;
#endif
#ifdef HAVE_AVX2
        if (!__builtin_cpu_supports("sse3"))   /* PORTABLE_TARGET */
            isa = ISA_PLAIN;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            isa = __builtin_cpu_supports("avx512f") ? ISA_AVX512 : ISA_AVX2;
#endif
        if (cap && strcmp(cap, "avx2") == 0 && isa > ISA_AVX2)
            isa = ISA_AVX2;
        if (((cap && strcmp(cap, "portable") == 0) || (off && off[0] && off[0] != '0'))
            && isa > ISA_PORTABLE)
            isa = ISA_PORTABLE;
        if (cap && strcmp(cap, "plain") == 0)
            isa = ISA_PLAIN;
        answer = isa;
    }
    return answer;
}

const char *fused_kernel_isa(void)
{
    static const char *const names[] = {"plain", "portable", "avx2", "avx512"};
    return names[kernel_isa()];
}
