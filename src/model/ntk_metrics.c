#include "ntk_metrics.h"

#include <math.h>
#include <float.h>
#include <stdlib.h>

#include "ntk_eig.h"
#include "ntk_error.h"

int ntk_metrics_kernel(const ntk_dmat *theta, const double *w, int K, const ntk_dmat *Y,
                       ntk_kernel_metrics *km) {
  const int N = theta->m;
  km->lambda_max = w[0];
  km->lambda_min = K == N ? w[K - 1] : NAN;
  km->condition_number = K == N ? w[0] / w[K - 1] : NAN;
  km->trace = ntk_dmat_trace(theta);
  km->frobenius = ntk_dmat_norm_fro(theta);
  km->effective_rank = km->trace * km->trace / (km->frobenius * km->frobenius);
  /* sum_c y_c^T Theta y_c / (||Theta||_F sum_c ||y_c||^2) */
  ntk_dmat TY;
  NTK_CHECK(ntk_dmat_create(theta->g, N, Y->n, &TY));
  NTK_CHECK(ntk_dmat_gemm('N', 'N', 1.0, theta, Y, 0.0, &TY));
  double loc[2] = {0.0, 0.0}, tot[2];
  for (int jl = 0; jl < Y->nloc; ++jl)
    for (int il = 0; il < Y->mloc; ++il) {
      double y = Y->a[il + (size_t)jl * Y->lld];
      loc[0] += y * TY.a[il + (size_t)jl * TY.lld];
      loc[1] += y * y;
    }
  MPI_Allreduce(loc, tot, 2, MPI_DOUBLE, MPI_SUM, theta->g->comm);
  km->alignment = tot[0] / (km->frobenius * tot[1]);
  ntk_dmat_free(&TY);
  return NTK_OK;
}

int ntk_metrics_loss(const ntk_dmat *f, const ntk_dmat *Y, int classification, double *loss,
                     double *accuracy) {
  double s = 0.0, tot = 0.0;
  for (int jl = 0; jl < f->nloc; ++jl)
    for (int il = 0; il < f->mloc; ++il) {
      double r = f->a[il + (size_t)jl * f->lld] - Y->a[il + (size_t)jl * Y->lld];
      s += r * r;
    }
  MPI_Allreduce(&s, &tot, 1, MPI_DOUBLE, MPI_SUM, f->g->comm);
  *loss = tot / (2.0 * f->m);
  *accuracy = NAN;
  if (!classification) return NTK_OK;
  double *fr = NULL, *yr = NULL;
  NTK_CHECK(ntk_dmat_replicate_rows(f, &fr));
  NTK_CHECK(ntk_dmat_replicate_rows(Y, &yr));
  const int k = f->n;
  double correct = 0.0, all = 0.0;
  /* every rank of a grid row holds the same rows: count them on grid column 0 only */
  if (f->g->mycol == 0)
    for (int il = 0; il < f->mloc; ++il) {
      int af = 0, ay = 0;
      for (int c = 1; c < k; ++c) {
        if (fr[(size_t)il * k + c] > fr[(size_t)il * k + af]) af = c;
        if (yr[(size_t)il * k + c] > yr[(size_t)il * k + ay]) ay = c;
      }
      correct += af == ay;
    }
  MPI_Allreduce(&correct, &all, 1, MPI_DOUBLE, MPI_SUM, f->g->comm);
  *accuracy = all / f->m;
  free(fr);
  free(yr);
  return NTK_OK;
}

int ntk_metrics_all_finite(const ntk_dmat *A) {
  int ok = 1;
  for (int jl = 0; jl < A->nloc && ok; ++jl)
    for (int il = 0; il < A->mloc; ++il)
      if (!isfinite(A->a[il + (size_t)jl * A->lld])) {
        ok = 0;
        break;
      }
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, A->g->comm);
  return all;
}

int ntk_metrics_residual(const ntk_dmat *f, const ntk_dmat *Y, ntk_dmat *R) {
  if (R->m != f->m || R->n != f->n || Y->m != f->m || Y->n != f->n)
    return ntk_err_set(NTK_ERR_INTERNAL, "metrics: residual shapes differ");
  for (int jl = 0; jl < f->nloc; ++jl)
    for (int il = 0; il < f->mloc; ++il)
      R->a[il + (size_t)jl * R->lld] =
          f->a[il + (size_t)jl * f->lld] - Y->a[il + (size_t)jl * Y->lld];
  return NTK_OK;
}

int ntk_metrics_residual_energy(const ntk_dmat *U, const ntk_dmat *R, double *energy,
                                double *total) {
  const int K = U->n;
  ntk_dmat P;
  NTK_CHECK(ntk_dmat_create(U->g, K, R->n, &P));
  int err = ntk_dmat_gemm('T', 'N', 1.0, U, R, 0.0, &P);
  if (err) {
    ntk_dmat_free(&P);
    NTK_CHECK(err);
  }
  /* K + 1 sums in one reduction: every row of P lives on one process row, so summing the
   * local squares of each row over all ranks gives sum_c P_ic^2 */
  double *loc = ntk_calloc((size_t)K + 1, sizeof(double), "residual energies");
  if (!loc) {
    ntk_dmat_free(&P);
    return ntk_err_code();
  }
  for (int jl = 0; jl < P.nloc; ++jl)
    for (int il = 0; il < P.mloc; ++il) {
      double v = P.a[il + (size_t)jl * P.lld];
      loc[ntk_dmat_row_l2g(&P, il)] += v * v;
    }
  for (int jl = 0; jl < R->nloc; ++jl)
    for (int il = 0; il < R->mloc; ++il) {
      double v = R->a[il + (size_t)jl * R->lld];
      loc[K] += v * v;
    }
  MPI_Allreduce(MPI_IN_PLACE, loc, K + 1, MPI_DOUBLE, MPI_SUM, U->g->comm);
  for (int i = 0; i < K; ++i) energy[i] = loc[i];
  if (total) *total = loc[K];
  free(loc);
  ntk_dmat_free(&P);
  return NTK_OK;
}

double ntk_metrics_max_shift(const double *w, const double *w0, int K) {
  double m = 0.0;
  for (int i = 0; i < K; ++i) {
    double d = fabs(w[i] - w0[i]);
    if (d > m || isnan(d)) m = d;
  }
  return m;
}

int ntk_metrics_diff_norm2(const char *solver, const ntk_dmat *A, const ntk_dmat *B,
                           double *norm2) {
  const int N = A->m;
  ntk_dmat D;
  double *w = NULL;
  NTK_CHECK(ntk_dmat_copy(A, &D));
  const size_t len = (size_t)D.lld * D.nloc;
  for (size_t e = 0; e < len; ++e) D.a[e] -= B->a[e];
  int err = NTK_OK;
  w = ntk_malloc((size_t)N * sizeof(double), "difference eigenvalues");
  if (!w) err = ntk_err_code();
  if (!err) err = ntk_eig_solve(solver, &D, 0, 0, w, NULL);
  if (!err) *norm2 = fabs(w[0]) > fabs(w[N - 1]) ? fabs(w[0]) : fabs(w[N - 1]);
  free(w);
  ntk_dmat_free(&D);
  NTK_CHECK(err);
  return NTK_OK;
}

double ntk_metrics_rounding_floor(int N, double lambda_max) {
  return 64.0 * DBL_EPSILON * N * fabs(lambda_max);
}

int ntk_metrics_weyl_holds(double max_shift, double norm2, int N, double lambda_max) {
  return max_shift <= norm2 + ntk_metrics_rounding_floor(N, lambda_max);
}
