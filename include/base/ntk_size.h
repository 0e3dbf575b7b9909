/* ntk_size: counts and byte sizes that cannot overflow.
 *
 * Every size derived from configuration keys (a shape, a buffer, a memory term) is an
 * int64 computed with these helpers.  A result beyond INT64_MAX saturates at NTK_SIZE_MAX
 * instead of wrapping, so an extreme key (train.steps near 2^31, fourier.features 2^30,
 * a width near 2^31) reaches the memory and shape checks as "too large" and is refused,
 * never as a small or negative number that passes them.  Negative operands count as 0:
 * a size is never negative. */
#ifndef NTK_SIZE_H
#define NTK_SIZE_H
#include <stdint.h>

#define NTK_SIZE_MAX INT64_MAX

/* a * b, or NTK_SIZE_MAX when it does not fit. */
static inline int64_t ntk_size_mul(int64_t a, int64_t b) {
  int64_t r;
  if (a <= 0 || b <= 0) return 0;
  return __builtin_mul_overflow(a, b, &r) ? NTK_SIZE_MAX : r;
}
/* a + b, or NTK_SIZE_MAX when it does not fit. */
static inline int64_t ntk_size_add(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0) a = 0;
  if (b < 0) b = 0;
  return __builtin_add_overflow(a, b, &r) ? NTK_SIZE_MAX : r;
}
static inline int64_t ntk_size_mul3(int64_t a, int64_t b, int64_t c) {
  return ntk_size_mul(ntk_size_mul(a, b), c);
}
static inline int64_t ntk_size_max(int64_t a, int64_t b) { return a > b ? a : b; }
/* x (bytes, a measured factor times a size) as a size: saturating, never negative. */
static inline int64_t ntk_size_from_double(double x) {
  if (!(x > 0)) return 0;
  return x >= 9.2e18 ? NTK_SIZE_MAX : (int64_t)x;
}
/* 1 and *r = a * b when the product fits an int64, else 0 (*r untouched). */
static inline int ntk_mul_checked(int64_t a, int64_t b, int64_t *r) {
  int64_t t;
  if (__builtin_mul_overflow(a, b, &t)) return 0;
  *r = t;
  return 1;
}

#endif
