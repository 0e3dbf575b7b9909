/* Eigensolver table and drivers against LAPACK's dsyevd on the gathered matrix.
 *
 * Usage: mpirun -np P test_eig ROWS COLS.  Every check runs for block sizes 2, 3 and 64 on
 * the ROWS x COLS grid.  Checks are counted per rank without leaving the test (a rank that
 * jumped out of a collective would hang the others); the counts are summed at the end of
 * each test and asserted on all ranks together.
 *
 * Tolerances: a backward-stable symmetric eigensolver gives eigenvalue errors and residuals
 * of order N * eps * ||A|| (about 1e-14 here), so 1e-10 leaves a wide margin while still
 * catching wrong pairing, order or a lost column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_eig.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_scalapack.h"
#include "ntk_mpi_cmocka.h"

#define N 67 /* no block size divides it: partial last blocks everywhere */
#define TOL 1e-10

/* Wishart-like B B^T / nk with nk = 2N: well separated spectrum in about [0.03, 1]. */
static double wishart(int i, int j, void *ctx) {
  (void)ctx;
  const int nk = 2 * N;
  double s = 0.0;
  for (int k = 0; k < nk; ++k) s += hash_uniform((uint64_t)i, (uint64_t)k, 1) *
                                    hash_uniform((uint64_t)j, (uint64_t)k, 1);
  return s / nk;
}

/* Gaussian kernel on fixed points of [0, 3]: a fast-decaying spectrum with many
 * eigenvalues at rounding level, like an NTK at small width. */
static double kernel(int i, int j, void *ctx) {
  (void)ctx;
  double xi = 3.0 * (hash_uniform((uint64_t)i, 0, 2) + 1.0) / 2.0;
  double xj = 3.0 * (hash_uniform((uint64_t)j, 0, 2) + 1.0) / 2.0;
  return exp(-(xi - xj) * (xi - xj));
}

/* The lower triangle of the Wishart matrix with garbage above the diagonal. */
static double lower_only(int i, int j, void *ctx) {
  return i >= j ? wishart(i, j, ctx) : 1e3 * hash_uniform((uint64_t)i, (uint64_t)j, 3);
}

/* Serial reference: descending eigenvalues of the row-major symmetric n x n matrix. */
static void reference_eigs(int n, const double *full, double *ref_desc) {
  double *a = malloc((size_t)n * n * sizeof(double)), *w = malloc((size_t)n * sizeof(double));
  memcpy(a, full, (size_t)n * n * sizeof(double));
  double wq;
  int iwq, lwork = -1, liwork = -1, info = 0;
  dsyevd_("N", "L", &n, a, &n, w, &wq, &lwork, &iwq, &liwork, &info);
  lwork = (int)wq + 1;
  liwork = iwq;
  double *work = malloc((size_t)lwork * sizeof(double));
  int *iwork = malloc((size_t)liwork * sizeof(int));
  dsyevd_("N", "L", &n, a, &n, w, work, &lwork, iwork, &liwork, &info);
  EXPECT(info == 0, "reference dsyevd info %d", info);
  for (int i = 0; i < n; ++i) ref_desc[i] = w[n - 1 - i];
  free(a);
  free(w);
  free(work);
  free(iwork);
}

/* Checks one solve; `full` and `ref` are valid on rank 0 only. */
static void check_solve(const char *name, const ntk_dmat *A, int top_k, int want,
                        const double *full, const double *ref, const char *what) {
  const int K = top_k ? top_k : N;
  double *w = calloc((size_t)K, sizeof(double)), *w0 = calloc((size_t)K, sizeof(double));
  double *saved = malloc((size_t)A->lld * (A->nloc ? A->nloc : 1) * sizeof(double));
  memcpy(saved, A->a, (size_t)A->lld * A->nloc * sizeof(double));
  ntk_dmat Z;
  memset(&Z, 0, sizeof Z);
  int rc = ntk_eig_solve(name, A, top_k, want, w, want ? &Z : NULL);
  EXPECT(rc == NTK_OK, "%s %s nb=%d top_k=%d vectors=%d: error %d: %s", name, what, A->g->nb,
         top_k, want, rc, ntk_err_message());
  if (rc != NTK_OK) { /* the error is agreed, so every rank skips the collectives below */
    ntk_err_clear();
    goto done;
  }
  EXPECT(memcmp(saved, A->a, (size_t)A->lld * A->nloc * sizeof(double)) == 0,
         "%s modified the caller's matrix", name);
  for (int i = 0; i + 1 < K; ++i)
    EXPECT(w[i] >= w[i + 1], "%s %s: eigenvalues not descending at %d: %g < %g", name, what, i,
           w[i], w[i + 1]);
  memcpy(w0, w, (size_t)K * sizeof(double));
  MPI_Bcast(w0, K, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  EXPECT(memcmp(w0, w, (size_t)K * sizeof(double)) == 0,
         "%s %s: eigenvalues differ from rank 0's", name, what);
  if (g_rank == 0)
    for (int i = 0; i < K; ++i)
      EXPECT(fabs(w[i] - ref[i]) <= TOL * ref[0],
             "%s %s nb=%d top_k=%d vectors=%d: lambda_%d = %.17g, LAPACK %.17g", name, what,
             A->g->nb, top_k, want, i, w[i], ref[i]);
  if (!want) goto done;
  EXPECT(Z.m == N && Z.n == K && Z.g == A->g, "%s: Z is %d x %d, expected %d x %d", name, Z.m,
         Z.n, N, K);
  double *z = NULL;
  rc = ntk_dmat_gather(&Z, 0, &z);
  EXPECT(rc == NTK_OK, "gather Z");
  if (g_rank == 0 && z) {
    /* column c of z (row-major N x K) is z[i*K + c]; ||A||_2 = ref[0] for PSD A */
    double worst_res = 0.0, worst_orth = 0.0;
    for (int c = 0; c < K; ++c) {
      double r2 = 0.0;
      for (int i = 0; i < N; ++i) {
        double az = 0.0;
        for (int j = 0; j < N; ++j) az += full[(size_t)i * N + j] * z[(size_t)j * K + c];
        double r = az - w[c] * z[(size_t)i * K + c];
        r2 += r * r;
      }
      double res = sqrt(r2) / ref[0];
      if (res > worst_res) worst_res = res;
      for (int d = 0; d <= c; ++d) {
        double dot = 0.0;
        for (int i = 0; i < N; ++i) dot += z[(size_t)i * K + c] * z[(size_t)i * K + d];
        double e = fabs(dot - (c == d ? 1.0 : 0.0));
        if (e > worst_orth) worst_orth = e;
      }
    }
    EXPECT(worst_res < TOL, "%s %s nb=%d top_k=%d: residual %.3g", name, what, A->g->nb, top_k,
           worst_res);
    EXPECT(worst_orth < TOL, "%s %s nb=%d top_k=%d: orthonormality error %.3g", name, what,
           A->g->nb, top_k, worst_orth);
  }
  free(z);
  ntk_dmat_free(&Z);
done:
  free(w);
  free(w0);
  free(saved);
}

/* Every solver, K in {all, 1, 5, N}, with and without vectors, on matrix fn. */
static void run_matrix(ntk_entry_fn fn, const char *what) {
  for (size_t b = 0; b < sizeof block_sizes / sizeof block_sizes[0]; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    ntk_dmat A;
    assert_int_equal(ntk_dmat_create(&g, N, N, &A), NTK_OK);
    ntk_dmat_fill(&A, fn, NULL);
    double *full = NULL, ref[N];
    assert_int_equal(ntk_dmat_gather(&A, 0, &full), NTK_OK);
    if (g_rank == 0) reference_eigs(N, full, ref);
    const int ks[] = {0, 1, 5, N};
    for (int s = 0; s < ntk_num_eigensolvers; ++s)
      for (size_t k = 0; k < sizeof ks / sizeof ks[0]; ++k)
        for (int want = 0; want <= 1; ++want)
          check_solve(ntk_eigensolvers[s].name, &A, ks[k], want, full, ref, what);
    free(full);
    ntk_dmat_free(&A);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

static void test_wishart(void **state) {
  (void)state;
  run_matrix(wishart, "wishart");
}

static void test_kernel(void **state) {
  (void)state;
  run_matrix(kernel, "kernel");
}

/* Distributed checks of K eigenpairs (w, Z) of the symmetric S against the descending
 * reference ref (valid on rank 0): eigenvalues, ||S Z - Z diag(w)||_F and ||Z^T Z - I||_F,
 * both relative to ||S||_2 = ref[0] (S is PSD). */
static void check_pairs(const char *what, const ntk_dmat *S, const double *w, const ntk_dmat *Z,
                        int K, const double *ref) {
  const ntk_grid *g = S->g;
  ntk_dmat R, G;
  assert_int_equal(ntk_dmat_create(g, S->m, K, &R), NTK_OK);
  assert_int_equal(ntk_dmat_create(g, K, K, &G), NTK_OK);
  assert_int_equal(ntk_dmat_gemm('N', 'N', 1.0, S, Z, 0.0, &R), NTK_OK);
  for (int jl = 0; jl < R.nloc; ++jl) {
    int j = ntk_dmat_col_l2g(&R, jl);
    for (int il = 0; il < R.mloc; ++il)
      R.a[il + (size_t)jl * R.lld] -= w[j] * Z->a[il + (size_t)jl * Z->lld];
  }
  assert_int_equal(ntk_dmat_gemm('T', 'N', 1.0, Z, Z, 0.0, &G), NTK_OK);
  for (int jl = 0; jl < G.nloc; ++jl) {
    int il, j = ntk_dmat_col_l2g(&G, jl);
    if (ntk_dmat_row_g2l(&G, j, &il)) G.a[il + (size_t)jl * G.lld] -= 1.0;
  }
  double res = ntk_dmat_norm_fro(&R), orth = ntk_dmat_norm_fro(&G);
  if (g_rank == 0) {
    for (int i = 0; i < K; ++i)
      EXPECT(fabs(w[i] - ref[i]) <= TOL * ref[0], "%s nb=%d: lambda_%d %.17g vs LAPACK %.17g",
             what, g->nb, i, w[i], ref[i]);
    EXPECT(res < TOL * ref[0], "%s nb=%d: residual %.3g", what, g->nb, res / ref[0]);
    EXPECT(orth < TOL, "%s nb=%d: orthonormality error %.3g", what, g->nb, orth);
  }
  ntk_dmat_free(&R);
  ntk_dmat_free(&G);
}

/* Solve A for the top K with vectors by every solver; check against the symmetric S. */
static void solve_and_check(const char *what, const ntk_dmat *A, const ntk_dmat *S, int K) {
  double *full = NULL, *ref = calloc((size_t)S->m, sizeof(double));
  double *w = calloc((size_t)K, sizeof(double));
  assert_int_equal(ntk_dmat_gather(S, 0, &full), NTK_OK);
  if (g_rank == 0) reference_eigs(S->m, full, ref);
  for (int s = 0; s < ntk_num_eigensolvers; ++s) {
    const char *name = ntk_eigensolvers[s].name;
    char label[96];
    snprintf(label, sizeof label, "%s %s top_k=%d", name, what, K);
    ntk_dmat Z;
    int rc = ntk_eig_solve(name, A, K, 1, w, &Z);
    EXPECT(rc == NTK_OK, "%s: %s", label, ntk_err_message());
    if (rc) {
      ntk_err_clear();
      continue;
    }
    check_pairs(label, S, w, &Z, K, ref);
    ntk_dmat_free(&Z);
  }
  free(full);
  free(ref);
  free(w);
}

/* Only the lower triangle may be read: garbage above the diagonal changes nothing. */
static void test_lower_triangle_only(void **state) {
  (void)state;
  for (size_t b = 0; b < sizeof block_sizes / sizeof block_sizes[0]; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    ntk_dmat A, S;
    assert_int_equal(ntk_dmat_create(&g, N, N, &A), NTK_OK);
    assert_int_equal(ntk_dmat_create(&g, N, N, &S), NTK_OK);
    ntk_dmat_fill(&A, lower_only, NULL);
    ntk_dmat_fill(&S, wishart, NULL);
    solve_and_check("upper garbage", &A, &S, 5);
    ntk_dmat_free(&A);
    ntk_dmat_free(&S);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

/* Block size 64 with several blocks per process and fewer wanted vectors than a block:
 * the configuration where PDSYEVR's and PDSYEVD's own workspace formulas leave PDORMTR
 * short (see ntk_eig.c).  N = 300 gives process (0,0) at least two blocks of rows on every
 * grid of this suite. */
static double wishart_large(int i, int j, void *ctx) {
  (void)ctx;
  double s = 0.0;
  for (int k = 0; k < 40; ++k)
    s += hash_uniform((uint64_t)i, (uint64_t)k, 4) * hash_uniform((uint64_t)j, (uint64_t)k, 4);
  return s / 40 + (i == j ? 0.05 : 0.0);
}

static void test_large_blocks(void **state) {
  (void)state;
  ntk_grid g;
  grid_for(64, &g);
  ntk_dmat A;
  assert_int_equal(ntk_dmat_create(&g, 300, 300, &A), NTK_OK);
  ntk_dmat_fill(&A, wishart_large, NULL);
  solve_and_check("N=300", &A, &A, 5);
  solve_and_check("N=300", &A, &A, 70);
  ntk_dmat_free(&A);
  ntk_grid_free(&g);
  assert_no_failures();
}

static void test_table(void **state) {
  (void)state;
  assert_true(ntk_num_eigensolvers >= 2);
  assert_string_equal(ntk_eigensolvers[0].name, NTK_EIG_DEFAULT);
  assert_string_equal(NTK_EIG_DEFAULT, "auto");
  /* auto's measured rule (docs/PERFORMANCE.md), and that it never names itself */
  assert_string_equal(ntk_eig_auto_choice(1000, 10, 0), "pdsyevr");
  assert_string_equal(ntk_eig_auto_choice(1000, 1000, 1), "pdsyevr");
  assert_string_equal(ntk_eig_auto_choice(2048, 16, 1), "pdsyevr");
  assert_string_equal(ntk_eig_auto_choice(2048, 2048, 1), "pdsyevd");
  assert_string_equal(ntk_eig_auto_choice(2048, 2048, 0), "elpa2");
  assert_string_equal(ntk_eig_auto_choice(2047, 2047, 0), "pdsyevr");
  assert_string_equal(ntk_eig_auto_choice(4096, 16, 0), "elpa2");
  assert_string_equal(ntk_eig_auto_choice(4096, 16, 1), "elpa2");
  assert_string_equal(ntk_eig_auto_choice(4096, 4096, 0), "elpa2");
  assert_string_equal(ntk_eig_auto_choice(4096, 4096, 1), "pdsyevd");
  assert_string_equal(ntk_eig_resolve("auto", 4096, 0, 1), "pdsyevd");
  assert_string_equal(ntk_eig_resolve("auto", 4096, 64, 1), "elpa2");
  assert_string_equal(ntk_eig_resolve("pdsyev", 8192, 0, 1), "pdsyev");
  assert_true(ntk_eigensolvers[0].supports_top_k);
  for (int i = 0; i < ntk_num_eigensolvers; ++i) {
    const ntk_eigensolver *s = &ntk_eigensolvers[i];
    assert_ptr_equal(ntk_eig_find(s->name), s);
    assert_non_null(s->solve);
    /* every back-end declares its memory for the estimate ("auto" is its choice's) */
    if (i > 0) assert_non_null(s->cost);
    assert_true(s->doc && strlen(s->doc) > 10 && !strchr(s->doc, '\n'));
    for (int j = 0; j < i; ++j) assert_string_not_equal(ntk_eigensolvers[j].name, s->name);
  }
  assert_non_null(ntk_eig_find("pdsyevd"));
  assert_null(ntk_eig_find("PDSYEVR"));
  assert_null(ntk_eig_find(""));
  assert_null(ntk_eig_find(NULL));
}

static void test_errors(void **state) {
  (void)state;
  ntk_grid g;
  grid_for(3, &g);
  ntk_dmat A, Z;
  assert_int_equal(ntk_dmat_create(&g, N, N, &A), NTK_OK);
  ntk_dmat_fill(&A, wishart, NULL);
  double w[N + 1];

  int rc = ntk_eig_solve("lanczos", &A, 0, 0, w, NULL);
  assert_int_equal(rc, NTK_ERR_INPUT);
  assert_non_null(strstr(ntk_err_message(), "lanczos"));
  for (int i = 0; i < ntk_num_eigensolvers; ++i)
    assert_non_null(strstr(ntk_err_message(), ntk_eigensolvers[i].name));
  ntk_err_clear();

  for (int s = 0; s < ntk_num_eigensolvers; ++s) {
    const char *name = ntk_eigensolvers[s].name;
    assert_int_equal(ntk_eig_solve(name, &A, N + 1, 0, w, NULL), NTK_ERR_INPUT);
    assert_non_null(strstr(ntk_err_message(), "top_k"));
    ntk_err_clear();
    assert_int_equal(ntk_eig_solve(name, &A, -1, 1, w, &Z), NTK_ERR_INPUT);
    ntk_err_clear();
    assert_int_equal(ntk_eig_solve(name, &A, 5, 1, w, NULL), NTK_ERR_INTERNAL);
    ntk_err_clear();
  }
  ntk_dmat R;
  assert_int_equal(ntk_dmat_create(&g, N, N - 1, &R), NTK_OK);
  assert_int_equal(ntk_eig_solve("pdsyevr", &R, 0, 0, w, NULL), NTK_ERR_INTERNAL);
  ntk_err_clear();
  ntk_dmat_free(&R);
  ntk_dmat_free(&A);
  ntk_grid_free(&g);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_wishart),
      cmocka_unit_test(test_kernel),
      cmocka_unit_test(test_lower_triangle_only),
      cmocka_unit_test(test_large_blocks),
  };
  return ntk_test_run(argc, argv, "eig", tests, sizeof tests / sizeof tests[0]);
}
