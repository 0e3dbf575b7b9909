#include "ntk_rng.h"

#include <math.h>

#include <Random123/philox.h>

/* 2*pi to double precision; M_PI is not part of C17. */
static const double ntk_two_pi = 6.283185307179586476925286766559;

void ntk_rng_philox(const uint64_t ctr[4], const uint64_t key[2], uint64_t out[4]) {
  philox4x64_ctr_t c = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
  philox4x64_key_t k = {{key[0], key[1]}};
  philox4x64_ctr_t r = philox4x64_R(10, c, k);
  for (int i = 0; i < 4; ++i) out[i] = r.v[i];
}

double ntk_rng_u01(uint64_t word) {
  /* k + 0.5 < 2^52 is exact, and the scaling by a power of two is exact too */
  return ((double)(word >> 12) + 0.5) * 0x1p-52;
}

static void block(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, uint64_t c,
                  uint64_t out[4]) {
  const uint64_t ctr[4] = {a, b, c, 0};
  const uint64_t key[2] = {seed, (uint64_t)stream};
  ntk_rng_philox(ctr, key, out);
}

double ntk_rng_uniform(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t out[4];
  block(seed, stream, a, b, c, out);
  return ntk_rng_u01(out[0]);
}

void ntk_rng_normal4(uint64_t seed, uint32_t stream, uint64_t a, uint64_t q, uint64_t c,
                     double z[4]) {
  /* counter word 3 = 1 keeps normals apart from uniforms drawn with the same (a, b, c) */
  const uint64_t ctr[4] = {a, q, c, 1};
  const uint64_t key[2] = {seed, (uint64_t)stream};
  uint64_t out[4];
  ntk_rng_philox(ctr, key, out);
  for (int p = 0; p < 2; ++p) {
    /* u1 < 1 strictly, so the radius is never 0 and the log never -inf */
    double r = sqrt(-2.0 * log(ntk_rng_u01(out[2 * p])));
    double t = ntk_two_pi * ntk_rng_u01(out[2 * p + 1]);
    z[2 * p] = r * cos(t);
    z[2 * p + 1] = r * sin(t);
  }
}

double ntk_rng_normal(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, uint64_t c) {
  double z[4];
  ntk_rng_normal4(seed, stream, a, b / 4, c, z);
  return z[b % 4];
}
