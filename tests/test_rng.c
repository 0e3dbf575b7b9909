/* ntk_rng: Philox4x64-10 known answers, the counter/key layout, the open unit interval,
 * normal moments and determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ntk_rng.h"

/* Random123's kat_vectors (philox4x64, 10 rounds): counter[4], key[2] -> out[4]. */
static const struct {
  uint64_t ctr[4], key[2], out[4];
} kat[3] = {
    {{0, 0, 0, 0},
     {0, 0},
     {0x16554d9eca36314cULL, 0xdb20fe9d672d0fdcULL, 0xd7e772cee186176bULL,
      0x7e68b68aec7ba23bULL}},
    {{0xffffffffffffffffULL, 0xffffffffffffffffULL, 0xffffffffffffffffULL,
      0xffffffffffffffffULL},
     {0xffffffffffffffffULL, 0xffffffffffffffffULL},
     {0x87b092c3013fe90bULL, 0x438c3c67be8d0224ULL, 0x9cc7d7c69cd777b6ULL,
      0xa09caebf594f0ba0ULL}},
    {{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL,
      0x082efa98ec4e6c89ULL},
     {0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL},
     {0xa528f45403e61d95ULL, 0x38c72dbd566e9788ULL, 0xa5a1610e72fd18b5ULL,
      0x57bd43b5e52b7fe6ULL}},
};

static void test_known_answers(void **state) {
  (void)state;
  for (int t = 0; t < 3; ++t) {
    uint64_t out[4];
    ntk_rng_philox(kat[t].ctr, kat[t].key, out);
    for (int i = 0; i < 4; ++i) assert_true(out[i] == kat[t].out[i]);
  }
}

/* uniform/normal are documented as key = {seed, stream}, counter = {a, b, c, 0}. */
static void test_layout(void **state) {
  (void)state;
  const uint64_t seed = 0x452821e638d01377ULL, a = 7, b = 123456789, c = 3;
  const uint32_t stream = 11;
  const uint64_t ctr[4] = {a, b, c, 0}, key[2] = {seed, stream};
  uint64_t out[4];
  ntk_rng_philox(ctr, key, out);
  assert_true(ntk_rng_uniform(seed, stream, a, b, c) ==
              ((double)(out[0] >> 12) + 0.5) * 0x1p-52);
  /* normals: counter (a, b / 4, c, 1); b = 4q + r takes cos/sin of word pair r / 2 */
  const uint64_t nctr[4] = {a, b / 4, c, 1};
  ntk_rng_philox(nctr, key, out);
  for (uint64_t r = 0; r < 4; ++r) {
    double u1 = ntk_rng_u01(out[2 * (r / 2)]), u2 = ntk_rng_u01(out[2 * (r / 2) + 1]);
    double t = 6.283185307179586476925286766559 * u2;
    double z = sqrt(-2.0 * log(u1)) * (r % 2 ? sin(t) : cos(t));
    assert_true(ntk_rng_normal(seed, stream, a, 4 * (b / 4) + r, c) == z);
  }
}

static void test_open_interval(void **state) {
  (void)state;
  /* the extreme words map strictly inside (0, 1) */
  assert_true(ntk_rng_u01(0) == 0x1p-53);
  assert_true(ntk_rng_u01(UINT64_MAX) == 1.0 - 0x1p-53);
  assert_true(ntk_rng_u01(UINT64_MAX) < 1.0);
  const int n = 100000;
  double s = 0.0, s2 = 0.0;
  for (int i = 0; i < n; ++i) {
    double u = ntk_rng_uniform(42, NTK_STREAM_USER, (uint64_t)i, 0, 0);
    assert_true(u > 0.0 && u < 1.0);
    s += u;
    s2 += u * u;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  /* mean of U(0,1): 1/2 with standard error sqrt(1/12/n) */
  assert_true(fabs(mean - 0.5) < 5.0 * sqrt(1.0 / 12.0 / n));
  /* variance 1/12; Var of the sample variance is (1/80 - 1/144)/n */
  assert_true(fabs(var - 1.0 / 12.0) < 5.0 * sqrt((1.0 / 80.0 - 1.0 / 144.0) / n));
}

static void test_normal_moments(void **state) {
  (void)state;
  const int n = 100000;
  double s = 0.0, s2 = 0.0, s4 = 0.0;
  for (int i = 0; i < n; ++i) {
    double z = ntk_rng_normal(7, NTK_STREAM_USER + 1, 5, (uint64_t)i, 2);
    assert_true(isfinite(z));
    s += z;
    s2 += z * z;
    s4 += z * z * z * z;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  assert_true(fabs(mean) < 5.0 * sqrt(1.0 / n));
  /* Var(z^2) = 2 for a standard normal */
  assert_true(fabs(var - 1.0) < 5.0 * sqrt(2.0 / n));
  /* fourth moment 3, Var(z^4) = 105 - 9 = 96 */
  assert_true(fabs(s4 / n - 3.0) < 5.0 * sqrt(96.0 / n));
}

static void test_determinism(void **state) {
  (void)state;
  for (uint64_t i = 0; i < 1000; ++i) {
    assert_true(ntk_rng_uniform(1, NTK_STREAM_W, i, 2, 3) ==
                ntk_rng_uniform(1, NTK_STREAM_W, i, 2, 3));
    assert_true(ntk_rng_normal(1, NTK_STREAM_W, i, 2, 3) ==
                ntk_rng_normal(1, NTK_STREAM_W, i, 2, 3));
  }
  /* each input changes the draw */
  double base = ntk_rng_uniform(1, NTK_STREAM_W, 4, 5, 6);
  assert_true(ntk_rng_uniform(2, NTK_STREAM_W, 4, 5, 6) != base);
  assert_true(ntk_rng_uniform(1, NTK_STREAM_B, 4, 5, 6) != base);
  assert_true(ntk_rng_uniform(1, NTK_STREAM_W, 5, 5, 6) != base);
  assert_true(ntk_rng_uniform(1, NTK_STREAM_W, 4, 6, 6) != base);
  assert_true(ntk_rng_uniform(1, NTK_STREAM_W, 4, 5, 7) != base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answers), cmocka_unit_test(test_layout),
      cmocka_unit_test(test_open_interval), cmocka_unit_test(test_normal_moments),
      cmocka_unit_test(test_determinism),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
