/*
 * MT19937, the Mersenne Twister of Matsumoto and Nishimura (1998), with the
 * seeding and output conventions of CPython's random module, so that a
 * generator seeded here produces the same words and doubles as random.Random.
 *
 * Plain C, no Python.h. The hot functions are static inline so that the
 * Cython layer compiles them into its own loops.
 */
#ifndef MICROGPT_MT19937_H
#define MICROGPT_MT19937_H

#include <stddef.h>
#include <stdint.h>

#define MT19937_N 624
#define MT19937_M 397

typedef struct {
    uint32_t key[MT19937_N];
    int pos;                    /* next word to temper; MT19937_N means "regenerate first" */
} mt19937_state;

void mt19937_seed(mt19937_state *state, uint32_t seed);    /* init_genrand */
void mt19937_init_by_array(mt19937_state *state, const uint32_t *init_key,
                           size_t key_length);
void mt19937_gen(mt19937_state *state);                     /* refill all 624 words */

static inline uint32_t mt19937_next32(mt19937_state *state)
{
    uint32_t y;

    if (state->pos >= MT19937_N)
        mt19937_gen(state);
    y = state->key[state->pos++];
    /* Tempering */
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

/* A double in [0, 1) with 53 random bits, exactly as random.random():
   27 bits from one word and 26 from the next. */
static inline double mt19937_next_double(mt19937_state *state)
{
    uint32_t a = mt19937_next32(state) >> 5;
    uint32_t b = mt19937_next32(state) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* getrandbits(k) for 0 < k <= 64, as one integer. CPython fills the result
   32 bits at a time from the least significant end and drops the low bits
   of the last word, so for 32 < k <= 64 the first word is the low half. */
static inline uint64_t mt19937_next_bits64(mt19937_state *state, int k)
{
    uint64_t lo, hi;

    if (k <= 32)
        return mt19937_next32(state) >> (32 - k);
    lo = mt19937_next32(state);
    hi = mt19937_next32(state) >> (64 - k);
    return lo | (hi << 32);
}

/* n.bit_length() for n < 2**64 */
static inline int mt19937_bit_length(uint64_t n)
{
    int k = 0, shift;

    for (shift = 32; shift; shift >>= 1)
        if (n >> shift) {
            n >>= shift;
            k += shift;
        }
    return k + (int)n;
}

/* _randbelow(n) for 0 < n < 2**64, as random.Random's: getrandbits of
   n.bit_length() bits until the number is below n */
static inline uint64_t mt19937_below(mt19937_state *state, uint64_t n)
{
    const int k = mt19937_bit_length(n);
    uint64_t r = mt19937_next_bits64(state, k);

    while (r >= n)
        r = mt19937_next_bits64(state, k);
    return r;
}

#endif /* MICROGPT_MT19937_H */
