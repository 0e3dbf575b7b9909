/* The matrix-free eigensolver (ntk_eigs, SLEPc) against the dense one (ntk_eig, PDSYEVR)
 * on the same symmetric matrix, applied as an operator by PDGEMM.
 *
 * Usage: mpirun -np P test_eigs ROWS COLS; every check for block sizes 2, 3 and 64.
 *
 * Tolerances: the solver stops when ||A u - lambda u|| <= tol |lambda| (tol 1e-12 here);
 * for a symmetric matrix the eigenvalue error is then of order residual^2 / gap plus the
 * rounding of the products (N eps ||A||, ~1e-14), so 1e-10 relative against PDSYEVR leaves
 * a wide margin while a wrong order, a missed eigenvalue or a spurious copy fails by O(gap).
 * The recomputed residuals must stay below the tolerance the solver was given (with a
 * factor 10 for the rounding of the recomputation itself). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_config.h"
#include "ntk_eig.h"
#include "ntk_eigs.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_signal.h"
#define NTK_TEST_AT_END() ntk_eigs_finalize()
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define NTK_LSAN_DISABLE() __lsan_disable()
#define NTK_LSAN_ENABLE() __lsan_enable()
#else
#define NTK_LSAN_DISABLE() ((void)0)
#define NTK_LSAN_ENABLE() ((void)0)
#endif
#include "ntk_mpi_cmocka.h"

#define N 203 /* no block size divides it */
#define K 16
#define TOL 1e-10

/* Points in R^4 and a Gaussian kernel on them: a smooth, fast-decaying spectrum with
 * clustered small eigenvalues, as an NTK has (its top 16 are separated). */
static double point(int i, int c) { return 1.5 * hash_uniform((uint64_t)i, (uint64_t)c, 7); }
static double gauss(int i, int j, void *ctx) {
  (void)ctx;
  double s = 0.0;
  for (int c = 0; c < 4; ++c) {
    double t = point(i, c) - point(j, c);
    s += t * t;
  }
  return exp(-0.5 * s) + (i == j ? 1e-3 : 0.0);
}

/* The N x N Gaussian kernel on the test grid of block size nb. */
static void gauss_matrix(int nb, ntk_grid *g, ntk_dmat *A) {
  grid_for(nb, g);
  assert_int_equal(ntk_dmat_create(g, N, N, A), NTK_OK);
  ntk_dmat_fill(A, gauss, NULL);
}

typedef struct {
  const ntk_dmat *A;
  int fail_rank; /* >= 0: this rank's product fails (error path) */
  long long calls;
} dense_op;

static int dense_apply(void *ctx, const ntk_dmat *x, ntk_dmat *y) {
  dense_op *op = ctx;
  ++op->calls;
  /* a failure one rank detects before the collective part: the others skip it too */
  if (op->fail_rank >= 0)
    return op->fail_rank == op->A->g->rank
               ? ntk_err_set(NTK_ERR_RUNTIME, "test operator refuses on rank %d", op->fail_rank)
               : NTK_OK;
  return ntk_dmat_gemm('N', 'N', 1.0, op->A, x, 0.0, y);
}

static void check_method(const ntk_grid *g, const ntk_dmat *A, const double *ref,
                         const ntk_dmat *Uref, const char *method, int nb) {
  dense_op op = {A, -1, 0};
  ntk_eigs_options opt = {method, 1e-12, 0, 0};
  double w[K], res[K];
  ntk_dmat Z = {0};
  ntk_eigs_stats st = {0};
  int rc = ntk_eigs_solve(g, N, dense_apply, &op, &opt, K, 1, w, res, &Z, &st);
  EXPECT(rc == NTK_OK, "%s nb=%d: %s", method, nb, ntk_err_message());
  if (rc) return;
  for (int i = 0; i < K; ++i) {
    EXPECT(fabs(w[i] - ref[i]) <= TOL * fabs(ref[i]), "%s nb=%d: lambda_%d %.17g vs %.17g",
           method, nb, i, w[i], ref[i]);
    EXPECT(res[i] <= 10 * opt.tol * fabs(w[i]), "%s nb=%d: residual_%d %.3g (lambda %.3g)",
           method, nb, i, res[i], w[i]);
  }
  /* every rank has the same values, bitwise */
  double w0[K];
  memcpy(w0, w, sizeof w);
  MPI_Bcast(w0, K, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  EXPECT(memcmp(w0, w, sizeof w) == 0, "%s nb=%d: eigenvalues differ across ranks", method, nb);
  /* the products counted are the callback's, less the K residual checks */
  EXPECT(st.products + K == op.calls, "%s nb=%d: %lld products reported, %lld made", method,
         nb, st.products, op.calls);
  EXPECT(st.products >= K && st.ncv >= K, "%s nb=%d: products %lld, ncv %d", method, nb,
         st.products, st.ncv);
  EXPECT(st.max_rel_residual <= 10 * opt.tol, "%s nb=%d: max relative residual %.3g", method,
         nb, st.max_rel_residual);
  /* eigenvectors: Z^T Uref is a signed identity (the top 16 are simple) */
  ntk_dmat C = {0};
  rc = ntk_dmat_create(g, K, K, &C);
  if (!rc) rc = ntk_dmat_gemm('T', 'N', 1.0, &Z, Uref, 0.0, &C);
  EXPECT(rc == NTK_OK, "overlap: %s", ntk_err_message());
  double *full = NULL;
  if (!rc) rc = ntk_dmat_gather(&C, 0, &full);
  if (g->rank == 0 && full) {
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) {
        const double want = i == j ? 1.0 : 0.0, got = fabs(full[i * K + j]);
        EXPECT(fabs(got - want) <= 1e-8, "%s nb=%d: |u_%d . v_%d| = %.12f", method, nb, i, j, got);
      }
  }
  free(full);
  ntk_dmat_free(&C);
  ntk_dmat_free(&Z);
}

static void test_against_dense(void **state) {
  (void)state;
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    ntk_dmat A, U = {0};
    gauss_matrix(block_sizes[b], &g, &A);
    double ref[K];
    assert_int_equal(ntk_eig_solve("pdsyevr", &A, K, 1, ref, &U), NTK_OK);
    for (int m = 0; m < ntk_eigs_num_methods; ++m)
      check_method(&g, &A, ref, &U, ntk_eigs_methods[m].name, block_sizes[b]);
    ntk_dmat_free(&U);
    ntk_dmat_free(&A);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

/* Values only, and a configured basis size and iteration limit. */
static void test_values_only(void **state) {
  (void)state;
  ntk_grid g;
  ntk_dmat A;
  gauss_matrix(3, &g, &A);
  double ref[K], w[K];
  assert_int_equal(ntk_eig_solve("pdsyevr", &A, K, 0, ref, NULL), NTK_OK);
  dense_op op = {&A, -1, 0};
  ntk_eigs_options opt = {"krylovschur", 1e-12, 500, 40};
  ntk_eigs_stats st = {0};
  int rc = ntk_eigs_solve(&g, N, dense_apply, &op, &opt, K, 0, w, NULL, NULL, &st);
  EXPECT(rc == NTK_OK, "%s", ntk_err_message());
  EXPECT(st.ncv == 40, "ncv %d", st.ncv);
  for (int i = 0; rc == NTK_OK && i < K; ++i)
    EXPECT(fabs(w[i] - ref[i]) <= TOL * ref[i], "lambda_%d %.17g vs %.17g", i, w[i], ref[i]);
  /* one eigenpair, the whole spectrum of a tiny operator */
  rc = ntk_eigs_solve(&g, N, dense_apply, &op, &opt, 1, 0, w, NULL, NULL, NULL);
  EXPECT(rc == NTK_OK && fabs(w[0] - ref[0]) <= TOL * ref[0], "K = 1: %s", ntk_err_message());
  ntk_dmat_free(&A);
  ntk_grid_free(&g);
  assert_no_failures();
}

static void test_errors(void **state) {
  (void)state;
  ntk_grid g;
  ntk_dmat A;
  gauss_matrix(64, &g, &A);
  double w[K];
  dense_op op = {&A, -1, 0};
  ntk_eigs_options opt = {"nonesuch", 1e-12, 0, 0};
  ntk_err_clear();
  EXPECT(ntk_eigs_solve(&g, N, dense_apply, &op, &opt, K, 0, w, NULL, NULL, NULL) ==
             NTK_ERR_INPUT, "unknown method accepted");
  opt.method = "krylovschur";
  ntk_err_clear();
  EXPECT(ntk_eigs_solve(&g, N, dense_apply, &op, &opt, 0, 0, w, NULL, NULL, NULL) ==
             NTK_ERR_INPUT, "K = 0 accepted");
  /* one restart of a 17-vector basis cannot converge 16 pairs to 1e-14 */
  opt.tol = 1e-14;
  opt.max_it = 1;
  opt.ncv = 17;
  ntk_err_clear();
  int rc = ntk_eigs_solve(&g, N, dense_apply, &op, &opt, K, 0, w, NULL, NULL, NULL);
  EXPECT(rc == NTK_ERR_RUNTIME && strstr(ntk_err_message(), "converged"),
         "no convergence: rc %d '%s'", rc, ntk_err_message());
  /* a product failing on the last rank only: every rank returns its error, none hangs.
   * An error raised inside EPSSolve leaves some of SLEPc's work objects behind (PETSc does
   * not unwind its objects after an error; EPSDestroy frees the rest), which LeakSanitizer
   * would report at exit; ntkspec stops after such an error, so only this case is exempt
   * and every other solve here is still checked for leaks */
  opt = (ntk_eigs_options){"krylovschur", 1e-12, 0, 0};
  op.fail_rank = g.size - 1;
  ntk_err_clear();
  NTK_LSAN_DISABLE();
  rc = ntk_eigs_solve(&g, N, dense_apply, &op, &opt, K, 0, w, NULL, NULL, NULL);
  NTK_LSAN_ENABLE();
  EXPECT(rc == NTK_ERR_RUNTIME && strstr(ntk_err_message(), "test operator refuses"),
         "failing product: rc %d '%s'", rc, ntk_err_message());
  /* and the solver still works afterwards */
  op.fail_rank = -1;
  ntk_err_clear();
  rc = ntk_eigs_solve(&g, N, dense_apply, &op, &opt, K, 0, w, NULL, NULL, NULL);
  EXPECT(rc == NTK_OK, "after a failure: %s", ntk_err_message());
  ntk_err_clear();
  ntk_dmat_free(&A);
  ntk_grid_free(&g);
  assert_no_failures();
}

/* ntkspec's handlers, installed before PETSc starts (as main() does) */
static struct sigaction ours[3];
static const int stop_signals[3] = {SIGTERM, SIGINT, SIGUSR1};

static void test_table(void **state) {
  (void)state;
  ntk_signal_install();
  for (int i = 0; i < 3; ++i) sigaction(stop_signals[i], NULL, &ours[i]);
  assert_string_equal(ntk_eigs_methods[0].name, NTK_EIGS_DEFAULT);
  for (int i = 0; i < ntk_eigs_num_methods; ++i)
    assert_ptr_equal(ntk_eigs_find(ntk_eigs_methods[i].name), &ntk_eigs_methods[i]);
  assert_null(ntk_eigs_find("krylov"));
  /* the configuration's list of names (the config layer cannot see this table) is the table */
  const ntk_config_key *key = ntk_config_find_key("eigensolver.matrix_free");
  assert_non_null(key);
  int n = 0;
  while (key->choices[n]) {
    assert_non_null(ntk_eigs_find(key->choices[n]));
    ++n;
  }
  assert_int_equal(n, ntk_eigs_num_methods);
  ntk_config c;
  ntk_config_defaults(&c);
  assert_string_equal(c.eigensolver.matrix_free, NTK_EIGS_DEFAULT);
  assert_int_equal(ntk_eigs_ncv(1000, 16, 0), 32);
  assert_int_equal(ntk_eigs_ncv(1000, 4, 0), 19);
  assert_int_equal(ntk_eigs_ncv(20, 16, 0), 20);
  assert_int_equal(ntk_eigs_ncv(1000, 16, 50), 50);
}

/* PETSc has been started by now: ntkspec's signal handlers are still the ones installed */
static void test_signals_kept(void **state) {
  (void)state;
  for (int i = 0; i < 3; ++i) {
    struct sigaction now;
    sigaction(stop_signals[i], NULL, &now);
    assert_ptr_equal((void *)now.sa_handler, (void *)ours[i].sa_handler);
    assert_ptr_not_equal((void *)now.sa_handler, (void *)SIG_DFL);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_against_dense),
      cmocka_unit_test(test_values_only),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_signals_kept),
  };
  return ntk_test_run(argc, argv, "eigs", tests, sizeof tests / sizeof tests[0]);
}
