/* ntk_rng: counter-based random numbers (Random123 Philox4x64-10, Debian's
 * librandom123-dev).  Every random number ntkspec uses is a pure function of
 * (seed, stream, a, b, c): the key is (seed, stream), the counter (a, b, c, 0) for uniforms and
 * (a, b / 4, c, 1) for normals.  Streams
 * name what is drawn (a tensor, the data, the masks); a, b, c are global indices such as
 * (row, column, layer) or (block, step).  So parameters, data and masks are the same for
 * any rank count and grid shape, and no generator state needs to be saved. */
#ifndef NTK_RNG_H
#define NTK_RNG_H
#include <stdint.h>

typedef enum {
  NTK_STREAM_FOURIER_G = 1,
  NTK_STREAM_W0,
  NTK_STREAM_B0,
  NTK_STREAM_W,      /* a = row, b = col, c = layer */
  NTK_STREAM_B,      /* a = layer, b = neuron */
  NTK_STREAM_V,
  NTK_STREAM_B_OUT,
  NTK_STREAM_DATA_X,     /* a = sample, b = feature, c = 0 train / 1 test */
  NTK_STREAM_DATA_Y,
  NTK_STREAM_DATA_NOISE,
  NTK_STREAM_TEACHER,    /* teacher network weights */
  NTK_STREAM_SUBSET,     /* dataset subsetting / shuffling */
  NTK_STREAM_MASK,       /* a = block, b = step, c = mask sample */
  NTK_STREAM_MINIBATCH,  /* a = step, b = position */
  NTK_STREAM_EIGS_START, /* the matrix-free eigensolver's start vector: a = sample */
  NTK_STREAM_HUTCHINSON, /* Hutchinson probes of ||Theta||_F: a = sample, b = probe, c = step */
  NTK_STREAM_USER = 1000 /* first stream free for tests and extensions */
} ntk_stream;

/* Raw Philox4x64-10 block: out = philox(counter = ctr[4], key = key[2]). */
void ntk_rng_philox(const uint64_t ctr[4], const uint64_t key[2], uint64_t out[4]);
/* Uniform in the open interval (0, 1): the top 52 bits k of out[0] give (k + 1/2) 2^-52.
 * Every such midpoint is an exact double, the smallest 2^-53 and the largest 1 - 2^-53.
 * (A 53-bit midpoint grid is not representable above 1/2: its top value rounds to 1.0.) */
double ntk_rng_uniform(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, uint64_t c);
/* The same map from one raw 64-bit word to (0, 1), for callers holding a Philox block. */
double ntk_rng_u01(uint64_t word);
/* Standard normals: one Philox block at counter (a, q, c, 1) gives the four normals
 * b = 4q .. 4q+3 (Box-Muller on words (0,1) -> cos, sin and (2,3) -> cos, sin), so that
 * filling a matrix row costs a quarter of a block per entry (ntk_rng_normal4). */
void ntk_rng_normal4(uint64_t seed, uint32_t stream, uint64_t a, uint64_t q, uint64_t c,
                     double z[4]);
/* The normal for index b: entry b % 4 of ntk_rng_normal4(seed, stream, a, b / 4, c). */
double ntk_rng_normal(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, uint64_t c);

#endif
