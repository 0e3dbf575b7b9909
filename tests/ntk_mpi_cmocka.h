/* What the MPI cmocka suites (test_grid, test_eig) share: a test runs on every rank of a
 * ROWS x COLS grid, for block sizes 2, 3 and 64.  EXPECT counts a rank's failed checks
 * without leaving the test (a rank that jumped out of a collective would hang the others)
 * and prints the first 20 with the rank; assert_no_failures sums the counts at the end of a
 * test and asserts on all ranks together; ntk_test_run is the whole main().  Include after
 * cmocka.h. */
#ifndef NTK_MPI_CMOCKA_H
#define NTK_MPI_CMOCKA_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"

static int g_rows, g_cols, g_rank, g_size;
static int fails, printed;
static const int block_sizes[] = {2, 3, 64};
#define NBS ((int)(sizeof block_sizes / sizeof block_sizes[0]))

#define EXPECT(cond, ...)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      ++fails;                                                              \
      if (printed++ < 20) {                                                 \
        fprintf(stderr, "[rank %d] %s:%d: ", g_rank, __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
      }                                                                     \
    }                                                                       \
  } while (0)

/* Collective: every rank fails the test when any rank counted a failure. */
static inline void assert_no_failures(void) {
  int total = 0;
  MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  fails = printed = 0;
  assert_int_equal(total, 0);
}

/* Deterministic uniform [-1, 1) from (i, j, seed): splitmix64 of the triple. */
static inline double hash_uniform(uint64_t i, uint64_t j, uint64_t seed) {
  uint64_t z = i * 0x9E3779B97F4A7C15ULL ^ (j + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL ^
               seed * 0x94D049BB133111EBULL;
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ULL;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}

/* The suite's ROWS x COLS grid with block size nb. */
static inline void grid_for(int nb, ntk_grid *g) {
  int rc = ntk_grid_create(MPI_COMM_WORLD, g_rows, g_cols, nb, g);
  if (rc) fprintf(stderr, "grid: %s\n", ntk_err_message());
  assert_int_equal(rc, NTK_OK);
}

/* What a suite must end before MPI_Finalize (test_eigs: PETSc); define before including. */
#ifndef NTK_TEST_AT_END
#define NTK_TEST_AT_END() ((void)0)
#endif

/* main() of a suite: `mpirun -np P test_SUITE ROWS COLS`; one cmocka report (rank 0's);
 * the exit status is 1 when any rank failed a test. */
static inline int ntk_test_run(int argc, char **argv, const char *suite,
                               const struct CMUnitTest *tests, size_t count) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  ntk_log_init(MPI_COMM_WORLD, 0);
  if (argc != 3) {
    if (g_rank == 0) fprintf(stderr, "usage: test_%s ROWS COLS\n", suite);
    MPI_Finalize();
    return 2;
  }
  g_rows = atoi(argv[1]);
  g_cols = atoi(argv[2]);
  /* failures still reach stderr from any rank */
  if (g_rank != 0 && !freopen("/dev/null", "w", stdout)) return 1;
  char name[64];
  snprintf(name, sizeof name, "%s %dx%d", suite, g_rows, g_cols);
  int failed = _cmocka_run_group_tests(name, tests, count, NULL, NULL);
  int worst = 0;
  MPI_Allreduce(&failed, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  NTK_TEST_AT_END();
  MPI_Finalize();
  return worst ? 1 : 0;
}

#endif
