/* Shared by the infinite-width limit tests (test_limit.c, test_limit_acts.c): the six
 * points on the unit sphere in R^3 both average finite networks on, and the abort-on-error
 * check (a failed collective call leaves nothing to compare).  The includer defines
 * `static int rank_;` first. */
#ifndef NTK_LIMIT_POINTS_H
#define NTK_LIMIT_POINTS_H
#include <mpi.h>
#include <stdio.h>

#include "ntk_error.h"

#define NPTS 6

#define OK(call)                                                                    \
  do {                                                                              \
    if ((call) != NTK_OK) {                                                         \
      fprintf(stderr, "rank %d: %s failed: %s\n", rank_, #call, ntk_err_message()); \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                 \
    }                                                                               \
  } while (0)

/* six points spread over the unit sphere in R^3, some close, some far apart */
static inline double points(int i, int j, void *ctx) {
  (void)ctx;
  static const double P[NPTS][3] = {{1, 0, 0},     {0.8, 0.6, 0},  {0, 1, 0},
                                    {0, 0.6, 0.8}, {-0.6, 0, 0.8}, {0.36, -0.48, 0.8}};
  return P[i][j];
}

#endif
