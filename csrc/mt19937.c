/*
 * MT19937 seeding and state refill. Reference: M. Matsumoto and T. Nishimura,
 * "Mersenne Twister: a 623-dimensionally equidistributed uniform pseudo-random
 * number generator", ACM TOMACS 8(1), 1998, and their mt19937ar.c of 2002-01-26,
 * whose init_genrand and init_by_array CPython's random module uses unchanged.
 */
#include "mt19937.h"

#define MATRIX_A   0x9908b0dfU  /* constant vector a */
#define UPPER_MASK 0x80000000U  /* most significant w-r bits */
#define LOWER_MASK 0x7fffffffU  /* least significant r bits */

void mt19937_seed(mt19937_state *state, uint32_t seed)
{
    uint32_t *mt = state->key;
    int i;

    mt[0] = seed;
    for (i = 1; i < MT19937_N; i++)
        mt[i] = 1812433253U * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint32_t)i;
    state->pos = MT19937_N;
}

void mt19937_init_by_array(mt19937_state *state, const uint32_t *init_key,
                           size_t key_length)
{
    uint32_t *mt = state->key;
    size_t i = 1, j = 0, k;

    mt19937_seed(state, 19650218U);
    for (k = MT19937_N > key_length ? MT19937_N : key_length; k; k--) {
        /* non linear; the additions wrap modulo 2**32 */
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525U))
                + init_key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= MT19937_N) {
            mt[0] = mt[MT19937_N - 1];
            i = 1;
        }
        if (j >= key_length)
            j = 0;
    }
    for (k = MT19937_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941U))
                - (uint32_t)i;
        i++;
        if (i >= MT19937_N) {
            mt[0] = mt[MT19937_N - 1];
            i = 1;
        }
    }
    mt[0] = 0x80000000U; /* MSB is 1, assuring a non-zero initial array */
}

void mt19937_gen(mt19937_state *state)
{
    static const uint32_t mag01[2] = {0x0U, MATRIX_A};
    uint32_t *mt = state->key;
    uint32_t y;
    int kk;

    for (kk = 0; kk < MT19937_N - MT19937_M; kk++) {
        y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
        mt[kk] = mt[kk + MT19937_M] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    for (; kk < MT19937_N - 1; kk++) {
        y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
        mt[kk] = mt[kk + (MT19937_M - MT19937_N)] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    y = (mt[MT19937_N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
    mt[MT19937_N - 1] = mt[MT19937_M - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
    state->pos = 0;
}
